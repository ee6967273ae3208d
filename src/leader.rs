//! Leader election with a `coordination.k8s.io/v1` Lease, the way controller-runtime does it:
//! a candidate takes the Lease when it is free or expired (renewTime + leaseDurationSeconds in
//! the past), renews it every `retry_period`, and gives up leadership (the process stops its
//! controllers) when it cannot renew within `renew_deadline`. Every write carries the
//! resourceVersion it read, so two candidates can never both win the same term.
//!
//! Safe under partition: every attempt (its GET and its write) is bounded by a timeout, so a
//! hung API server connection cannot keep the leader from noticing its deadline (kube-client has
//! no read timeout of its own). The leader counts its deadline from the moment it *sent* its last
//! successful renewal, the time it wrote as renewTime, and the renew deadline is shorter than the
//! lease: it stops before any other candidate can see the Lease expired.

use std::sync::Mutex;
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

impl LeaseSettings {
    /// `lease_duration > renew_deadline > retry_period > 0`, as client-go requires: a leader must
    /// give up (renew deadline) before its Lease can expire for the others (lease duration), and
    /// get several tries in between.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("--lease-retry-period must be more than 0".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "--lease-renew-deadline ({:?}) must be longer than --lease-retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "--lease-duration ({:?}) must be longer than --lease-renew-deadline ({:?}): otherwise a leader that cannot renew may still be reconciling when another takes over",
                self.lease_duration, self.renew_deadline
            ));
        }
        Ok(())
    }

    /// The longest one attempt (GET + write) may take while acquiring: shorter than the lease.
    fn attempt_timeout(&self) -> Duration {
        self.renew_deadline
    }
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
    #[error("lease {namespace}/{name}: the API server did not answer within {timeout:?}")]
    Timeout {
        namespace: String,
        name: String,
        timeout: Duration,
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
    /// When the attempt that last acquired or renewed the Lease was *started* (its renewTime is
    /// no earlier than this).
    renewed_at: Mutex<Option<tokio::time::Instant>>,
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            renewed_at: Mutex::new(None),
        }
    }

    fn lost(&self) -> LeaderError {
        LeaderError::Lost {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            deadline: self.settings.renew_deadline,
        }
    }

    fn set_renewed(&self, at: tokio::time::Instant) {
        *self.renewed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    /// One attempt, abandoned at `deadline` (a hung request counts as a failed one).
    async fn attempt_until(&self, deadline: tokio::time::Instant) -> Result<Attempt, LeaderError> {
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
            Ok(r) => r,
            Err(_) => Err(LeaderError::Timeout {
                namespace: self.settings.namespace.clone(),
                name: self.settings.name.clone(),
                timeout,
            }),
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
            let started = tokio::time::Instant::now();
            match self
                .attempt_until(started + self.settings.attempt_timeout())
                .await
            {
                Ok(Attempt::Acquired) => {
                    self.set_renewed(started);
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

    /// Keep renewing the Lease. Returns only when leadership is lost: the Lease was taken, or no
    /// renewal succeeded within the renew deadline, counted from when the last successful one was
    /// sent. A renewal that hangs is abandoned at that deadline, so this returns in time whatever
    /// the API server does.
    pub async fn hold(&self) -> LeaderError {
        loop {
            let last = self
                .renewed_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(tokio::time::Instant::now);
            let deadline = last + self.settings.renew_deadline;
            let next = tokio::time::Instant::now() + self.settings.retry_period;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return self.lost();
            }
            tokio::time::sleep_until(next).await;
            let started = tokio::time::Instant::now();
            match self.attempt_until(deadline).await {
                Ok(Attempt::Acquired) => {
                    debug!(lease = %self.settings.name, "renewed");
                    self.set_renewed(started);
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    warn!(lease = %self.settings.name, %holder, "lease taken by another replica");
                    return self.lost();
                }
                Err(e) => {
                    warn!(error = %e, "renewing the lease failed");
                    if tokio::time::Instant::now() >= deadline {
                        return self.lost();
                    }
                }
            }
        }
    }

    /// Give the Lease up (on graceful shutdown) so a standby takes over at once instead of
    /// waiting for it to expire.
    pub async fn release(&self) {
        let timeout = self.settings.attempt_timeout();
        let Ok(Ok(Some(mut lease))) =
            tokio::time::timeout(timeout, self.api.get_opt(&self.settings.name)).await
        else {
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
        let pp = PostParams::default();
        let replace = self.api.replace(&self.settings.name, &pp, &lease);
        match tokio::time::timeout(timeout, replace).await {
            Ok(Ok(_)) => info!(lease = %self.settings.name, "released leadership"),
            Ok(Err(e)) => warn!(error = %e, "releasing the lease failed; it will expire"),
            Err(_) => warn!("releasing the lease timed out; it will expire"),
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

    fn settings(lease: u64, renew: u64, retry: u64) -> LeaseSettings {
        LeaseSettings {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew),
            retry_period: Duration::from_millis(retry),
        }
    }

    #[test]
    fn renew_deadline_is_shorter_than_the_lease() {
        assert!(settings(15_000, 10_000, 2_000).validate().is_ok());
        assert!(settings(4_000, 3_000, 500).validate().is_ok());
        for (lease, renew, retry) in [(10_000, 10_000, 2_000), (5_000, 10_000, 2_000)] {
            let e = settings(lease, renew, retry).validate();
            assert!(
                e.as_ref().is_err_and(|e| e.contains("--lease-duration")),
                "{e:?}"
            );
        }
        assert!(settings(15_000, 2_000, 2_000).validate().is_err());
        assert!(settings(15_000, 10_000, 0).validate().is_err());
        // an attempt never outlives the renew deadline, hence never the lease
        let s = settings(4_000, 3_000, 500);
        assert!(s.attempt_timeout() < s.lease_duration);
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
