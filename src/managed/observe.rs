//! Shared observation: one paginated DescribeDBInstances per (ProviderConfig, region) per poll
//! interval feeds every Instance; targeted describes only for instances in a transitional state.
//!
//! The fleet is a [`Listing`] of instances (the batched observation every kind uses: knowledge
//! newer than the last listing, from a CreateDBInstance, a ModifyDBInstance or a targeted
//! describe, is never overwritten by an older listing, and an instance created after a listing
//! started is not taken for absent), with the targeted describes of transitional instances on
//! top.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::RdsApi;
use super::listing::{Listed, Listing, Page};
use super::metrics::RdsMetrics;
use super::model::{AwsError, DbInstance, is_transitional};

/// Listed boxed: a `DbInstance` is ~750 bytes inline, and a hash map keeps ~2 slots per entry at
/// 1000 entries (each the size of the value), twice over while it grows. Unboxed, the map of
/// 1000 instances took 7.2 MB at its peak (heaptrack).
impl Listed for Box<DbInstance> {
    fn key(&self) -> String {
        self.identifier.clone()
    }
}

/// What paved knows about the RDS instances of one (ProviderConfig, region).
#[derive(Debug, Default)]
pub struct Fleet {
    listing: Listing<Box<DbInstance>>,
}

impl Fleet {
    /// Record what a call just told us about `identifier` (`None`: it does not exist).
    pub fn record(&self, identifier: &str, instance: Option<DbInstance>) {
        self.listing.record(identifier, instance.map(Box::new));
    }

    /// Make sure the fleet listing is younger than `poll`: at most one listing runs at a time,
    /// and callers that waited for it use its result.
    pub async fn ensure_listed(
        &self,
        api: &dyn RdsApi,
        poll: Duration,
        metrics: &RdsMetrics,
    ) -> Result<(), AwsError> {
        self.listing
            .ensure_listed(poll, |marker| {
                Box::pin(async move {
                    if marker.is_none() {
                        // The first page: one fleet poll begins.
                        metrics.fleet_polls.inc();
                    }
                    let page = api.describe_page(marker.as_deref()).await?;
                    Ok(Page {
                        items: page.instances.into_iter().map(Box::new).collect(),
                        next: page.marker,
                    })
                })
            })
            .await
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
        let (current, age) = self.listing.known(identifier);
        let current = current.map(|i| *i);
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
        self.listing.len()
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
