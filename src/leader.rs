//! Leader election with a `coordination.k8s.io/v1` Lease, the way controller-runtime does it:
//! a candidate takes the Lease when it is free or expired (renewTime + leaseDurationSeconds in
//! the past), renews it every `retry_period`, and gives up leadership (the process stops its
//! controllers) when it cannot renew within `renew_deadline`. Every write carries the
//! resourceVersion it read, so two candidates can never both win the same term.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::{debug, info, warn};

/// Settings of the elector.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This candidate's identity (pod name + a random suffix).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Errors talking to the API server about the Lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "lease {namespace}/{name}: could not renew within the renew deadline ({deadline:?}); leadership lost"
    )]
    Lost {
        namespace: String,
        name: String,
        deadline: Duration,
    },
}

/// What one attempt to take or keep the Lease found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Acquired,
    HeldByOther(String),
}

pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    fn err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source,
        }
    }

    /// Wait until this candidate holds the Lease. API errors are retried (logged), so a
    /// flapping API server only delays the start.
    pub async fn acquire(&self) {
        let mut last_holder = String::new();
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Acquired) => {
                    info!(lease = %self.settings.name, identity = %self.settings.identity, "became leader");
                    return;
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    if holder != last_holder {
                        info!(lease = %self.settings.name, %holder, "waiting for leadership; lease held by another replica");
                        last_holder = holder;
                    }
                }
                Err(e) => warn!(error = %e, "leader election: will retry"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Keep renewing the Lease. Returns only when leadership is lost.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renew = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Acquired) => {
                    debug!(lease = %self.settings.name, "renewed");
                    last_renew = tokio::time::Instant::now();
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    warn!(lease = %self.settings.name, %holder, "lease taken by another replica");
                    return LeaderError::Lost {
                        namespace: self.settings.namespace.clone(),
                        name: self.settings.name.clone(),
                        deadline: self.settings.renew_deadline,
                    };
                }
                Err(e) => {
                    warn!(error = %e, "renewing the lease failed");
                    if last_renew.elapsed() > self.settings.renew_deadline {
                        return LeaderError::Lost {
                            namespace: self.settings.namespace.clone(),
                            name: self.settings.name.clone(),
                            deadline: self.settings.renew_deadline,
                        };
                    }
                }
            }
        }
    }

    /// Give the Lease up (on graceful shutdown) so a standby takes over at once instead of
    /// waiting for it to expire.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        // A 1-second duration makes any stale reader treat it as expired quickly.
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!(lease = %self.settings.name, "released leadership"),
            Err(e) => warn!(error = %e, "releasing the lease failed; it will expire"),
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, LeaderError> {
        let now = Timestamp::now();
        let duration_secs = i32::try_from(self.settings.lease_duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1);
        let existing = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.err(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Acquired),
                // Someone else created it first.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    Ok(Attempt::HeldByOther(String::from("(just created)")))
                }
                Err(e) => Err(self.err(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.settings.identity;
        if !mine && !holder.is_empty() && !expired(spec, now) {
            return Ok(Attempt::HeldByOther(holder));
        }
        if !mine {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.settings.identity.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(MicroTime(now));
        // replace carries metadata.resourceVersion: a concurrent winner makes this a 409.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Acquired),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(Attempt::HeldByOther(String::from("(conflict)")))
            }
            Err(e) => Err(self.err(e)),
        }
    }
}

/// A Lease is expired when its holder has not renewed it for leaseDurationSeconds.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    match renew
        .0
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
    {
        Ok(until) => until < now,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renew_secs_ago: i64, duration: i32) -> (LeaseSpec, Timestamp) {
        let now = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let renew =
            Timestamp::from_second(1_700_000_000 - renew_secs_ago).unwrap_or(Timestamp::UNIX_EPOCH);
        (
            LeaseSpec {
                holder_identity: Some("other".into()),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(renew)),
                ..Default::default()
            },
            now,
        )
    }

    #[test]
    fn lease_expiry() {
        let (s, now) = spec(5, 15);
        assert!(!expired(&s, now));
        let (s, now) = spec(16, 15);
        assert!(expired(&s, now));
        let (mut s, now) = spec(16, 15);
        s.renew_time = None;
        assert!(
            expired(&s, now),
            "a lease never renewed nor acquired is free"
        );
    }
}
