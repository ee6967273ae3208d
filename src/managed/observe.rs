//! Shared observation: one paginated DescribeDBInstances per (ProviderConfig, region) per poll
//! interval feeds every Instance; targeted describes only for instances in a transitional state.
//!
//! Each entry remembers when it was observed, so that knowledge newer than the last fleet listing
//! (the answer of a CreateDBInstance, a ModifyDBInstance, a targeted describe) is never
//! overwritten by an older listing, and an instance created after a listing started is not taken
//! for absent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::RdsApi;
use super::metrics::RdsMetrics;
use super::model::{AwsError, DbInstance, is_transitional};

/// After a failed fleet listing, callers get the same error for this long instead of calling
/// AWS again (every Instance of the fleet would otherwise retry at once).
const FAILED_LISTING_HOLD: Duration = Duration::from_secs(5);

/// One instance as last observed. Boxed: a `DbInstance` is ~750 bytes inline, and a hash map
/// keeps ~2 slots per entry at 1000 entries (each the size of the value), twice over while it
/// grows. Unboxed, the map of 1000 instances took 7.2 MB at its peak (heaptrack).
#[derive(Debug)]
struct Entry {
    instance: Option<Box<DbInstance>>,
    observed_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    listed_at: Option<Instant>,
    failed: Option<(Instant, AwsError)>,
}

/// What paved knows about the RDS instances of one (ProviderConfig, region).
#[derive(Debug, Default)]
pub struct Fleet {
    state: Mutex<State>,
    listing: tokio::sync::Mutex<()>,
}

impl Fleet {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update of a cache: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record what a call just told us about `identifier` (`None`: it does not exist).
    pub fn record(&self, identifier: &str, instance: Option<DbInstance>) {
        self.lock().entries.insert(
            identifier.to_string(),
            Entry {
                instance: instance.map(Box::new),
                observed_at: Instant::now(),
            },
        );
    }

    fn fresh_listing(&self, poll: Duration) -> Result<bool, AwsError> {
        let st = self.lock();
        if st.listed_at.is_some_and(|t| t.elapsed() < poll) {
            return Ok(true);
        }
        if let Some((at, e)) = &st.failed
            && at.elapsed() < FAILED_LISTING_HOLD
        {
            return Err(e.clone());
        }
        Ok(false)
    }

    /// Make sure the fleet listing is younger than `poll`: at most one listing runs at a time,
    /// and callers that waited for it use its result.
    pub async fn ensure_listed(
        &self,
        api: &dyn RdsApi,
        poll: Duration,
        metrics: &RdsMetrics,
    ) -> Result<(), AwsError> {
        if self.fresh_listing(poll)? {
            return Ok(());
        }
        let _one_at_a_time = self.listing.lock().await;
        if self.fresh_listing(poll)? {
            return Ok(());
        }
        let started = Instant::now();
        metrics.fleet_polls.inc();
        let mut listed: Vec<DbInstance> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            match api.describe_page(marker.as_deref()).await {
                Ok(page) => {
                    listed.extend(page.instances);
                    marker = page.marker;
                    if marker.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    self.lock().failed = Some((Instant::now(), e.clone()));
                    return Err(e);
                }
            }
        }
        let mut st = self.lock();
        st.entries.retain(|_, e| e.observed_at > started);
        // A later page wins for an identifier listed twice (as the map it was collected in did).
        for inst in listed {
            if st
                .entries
                .get(&inst.identifier)
                .is_none_or(|e| e.observed_at <= started)
            {
                st.entries.insert(
                    inst.identifier.clone(),
                    Entry {
                        instance: Some(Box::new(inst)),
                        observed_at: started,
                    },
                );
            }
        }
        // Identifiers not listed and not known better are absent as of `started`; absence is
        // the lack of an entry.
        st.listed_at = Some(started);
        st.failed = None;
        Ok(())
    }

    /// The instance as last observed, refreshing the fleet listing when it is older than `poll`,
    /// and describing this one instance when it is in a transitional state and its observation
    /// is older than `transitional`.
    pub async fn observe(
        &self,
        api: &dyn RdsApi,
        identifier: &str,
        poll: Duration,
        transitional: Duration,
        metrics: &RdsMetrics,
    ) -> Result<Option<DbInstance>, AwsError> {
        self.ensure_listed(api, poll, metrics).await?;
        let (current, age) = {
            let st = self.lock();
            match st.entries.get(identifier) {
                Some(e) => (e.instance.as_deref().cloned(), e.observed_at.elapsed()),
                None => (None, st.listed_at.map(|t| t.elapsed()).unwrap_or_default()),
            }
        };
        let stale_transitional = current
            .as_ref()
            .is_some_and(|i| is_transitional(i.status()))
            && age >= transitional;
        if stale_transitional {
            return self.describe_now(api, identifier).await;
        }
        Ok(current)
    }

    /// A targeted DescribeDBInstances, recorded.
    pub async fn describe_now(
        &self,
        api: &dyn RdsApi,
        identifier: &str,
    ) -> Result<Option<DbInstance>, AwsError> {
        let i = api.describe(identifier).await?;
        self.record(identifier, i.clone());
        Ok(i)
    }

    /// How many instances the cache knows about (for tests and logs).
    pub fn len(&self) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.instance.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fleets, by (ProviderConfig, region).
#[derive(Debug, Default)]
pub struct Fleets {
    fleets: Mutex<HashMap<(String, String), Arc<Fleet>>>,
}

impl Fleets {
    pub fn get(&self, provider_config: &str, region: &str) -> Arc<Fleet> {
        let mut m = self.fleets.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((provider_config.to_string(), region.to_string()))
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::fake::FakeRds;
    use crate::managed::model::*;
    use std::sync::atomic::Ordering;

    fn account(n: usize, status: &'static str) -> Arc<FakeRds> {
        Arc::new(FakeRds::account(n, status))
    }

    #[tokio::test]
    async fn one_listing_serves_the_fleet() {
        let acct = account(250, "available");
        let fleet = Arc::new(Fleet::default());
        let metrics = Arc::new(RdsMetrics::default());
        let mut tasks = Vec::new();
        for i in 0..250 {
            let (acct, fleet, metrics) = (acct.clone(), fleet.clone(), metrics.clone());
            tasks.push(tokio::spawn(async move {
                let id = format!("db-{i}");
                fleet
                    .observe(
                        &*acct,
                        &id,
                        Duration::from_secs(60),
                        Duration::from_secs(20),
                        &metrics,
                    )
                    .await
            }));
        }
        for t in tasks {
            let r = t.await.ok().and_then(|r| r.ok()).flatten();
            assert!(r.is_some());
        }
        assert_eq!(acct.pages.load(Ordering::SeqCst), 3, "ceil(250/100) pages");
        assert_eq!(acct.describes.load(Ordering::SeqCst), 0);
        assert_eq!(metrics.fleet_polls.get(), 1);
        // absent identifiers are absent without a call
        let none = fleet
            .observe(
                &*acct,
                "nope",
                Duration::from_secs(60),
                Duration::from_secs(20),
                &metrics,
            )
            .await;
        assert_eq!(none, Ok(None));
        assert_eq!(acct.pages.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn transitional_instances_are_described_individually() {
        let acct = account(3, "modifying");
        let fleet = Fleet::default();
        let metrics = RdsMetrics::default();
        let poll = Duration::from_secs(60);
        let r = fleet
            .observe(&*acct, "db-1", poll, Duration::ZERO, &metrics)
            .await;
        assert!(r.is_ok());
        assert_eq!(acct.describes.load(Ordering::SeqCst), 1);
        let r = fleet
            .observe(&*acct, "db-1", poll, Duration::from_secs(20), &metrics)
            .await;
        assert!(r.is_ok());
        assert_eq!(acct.describes.load(Ordering::SeqCst), 1, "fresh enough");
    }

    #[tokio::test]
    async fn newer_knowledge_survives_a_listing() {
        let acct = account(0, "available");
        let fleet = Fleet::default();
        let metrics = RdsMetrics::default();
        // listing says nothing exists; then we create "new" (recorded after the listing)
        assert_eq!(
            fleet
                .observe(
                    &*acct,
                    "new",
                    Duration::from_secs(60),
                    Duration::from_secs(20),
                    &metrics
                )
                .await,
            Ok(None)
        );
        fleet.record(
            "new",
            Some(DbInstance {
                identifier: "new".into(),
                status: Some("available".into()),
                ..Default::default()
            }),
        );
        let r = fleet
            .observe(
                &*acct,
                "new",
                Duration::from_secs(60),
                Duration::from_secs(20),
                &metrics,
            )
            .await;
        assert!(matches!(r, Ok(Some(_))));
    }
}
