//! Settings of the managed-resource controller.

use std::time::Duration;

use super::client::{Failpoint, RdsApi, RetryPolicy};
use super::model::ErrorClass;
use crate::kube::backoff::Curve;

/// Settings of the RDS controller.
#[derive(Clone)]
pub struct RdsConfig {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// How often one paginated DescribeDBInstances per (ProviderConfig, region) refreshes every
    /// Instance (and how often an idle Instance is looked at). Default 60 s.
    pub poll_interval: Duration,
    /// How often an instance in a transitional state (creating, modifying, deleting, ...) is
    /// described on its own. Default 20 s.
    pub transitional_poll_interval: Duration,
    /// How often every cached Instance is reconciled even if nothing triggered it (the safety
    /// net for a lost watch event; an unchanged Instance makes no write). Zero: never.
    pub resync: Duration,
    /// Token bucket rate per AWS identity (account, as far as paved can tell without asking
    /// AWS: see [`BucketKey`]), endpoint and region, shared by every ProviderConfig that resolves
    /// to the same one. Default 8 requests/s, under the RDS API's limit of about 12.
    pub aws_requests_per_second: f64,
    /// How long one AWS call waits for an answer (`--aws-timeout`, default 30 s). A call without
    /// one fails: the object says `AWSUnavailable: ... no answer from <endpoint> within 30 s`.
    pub aws_timeout: Duration,
    /// Retries of throttling and 5xx answers within one call.
    pub retry: RetryPolicy,
    /// Longest wait before retrying after a non-transient AWS error (invalid parameters, quota,
    /// capacity, authorization). Default 5 minutes. A spec change retries at once.
    pub error_backoff_max: Duration,
    /// Instances reconciled at the same time.
    pub concurrency: u16,
    /// Test hook: run at the failpoint sites (see [`FailpointSite`]).
    pub failpoint: Option<Failpoint>,
    /// Test hook: the RDS API every object talks to, behind the usual guard (token bucket,
    /// retries, metrics), instead of the SDK client its ProviderConfig names. For lifecycle
    /// tests with an account in memory ([`super::memory::MemoryRds`]).
    pub rds_api: Option<std::sync::Arc<dyn RdsApi>>,
    /// An Instance that names no ProviderConfig while none named `default` exists uses paved's
    /// own AWS credential chain (the pod's identity). Off by default: such an Instance is
    /// refused with Synced=False instead (`paved run --allow-pod-identity`).
    pub allow_pod_identity: bool,
}

impl std::fmt::Debug for RdsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsConfig")
            .field("namespaces", &self.namespaces)
            .field("poll_interval", &self.poll_interval)
            .field("resync", &self.resync)
            .field(
                "transitional_poll_interval",
                &self.transitional_poll_interval,
            )
            .field("aws_requests_per_second", &self.aws_requests_per_second)
            .field("aws_timeout", &self.aws_timeout)
            .field("retry", &self.retry)
            .field("error_backoff_max", &self.error_backoff_max)
            .field("concurrency", &self.concurrency)
            .field("failpoint", &self.failpoint.is_some())
            .field("rds_api", &self.rds_api.is_some())
            .field("allow_pod_identity", &self.allow_pod_identity)
            .finish()
    }
}

impl Default for RdsConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            poll_interval: Duration::from_secs(60),
            transitional_poll_interval: Duration::from_secs(20),
            resync: Duration::from_secs(600),
            aws_requests_per_second: 8.0,
            aws_timeout: super::client::DEFAULT_AWS_TIMEOUT,
            retry: RetryPolicy::default(),
            error_backoff_max: Duration::from_secs(300),
            concurrency: 32,
            failpoint: None,
            rds_api: None,
            allow_pod_identity: false,
        }
    }
}

/// Field manager of everything this controller writes.
pub const FIELD_MANAGER: &str = "paved-rds";

/// The backoff curve after an AWS error of `class`: quick for throttling, 5xx and states that
/// pass (up to a minute), slow for errors that need a human or a spec change.
pub(crate) fn error_curve(class: ErrorClass, cfg: &RdsConfig) -> Curve {
    match class {
        ErrorClass::Transient | ErrorClass::InvalidState => Curve {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60).min(cfg.error_backoff_max),
        },
        _ => Curve {
            base: Duration::from_secs(10),
            max: cfg.error_backoff_max,
        },
    }
}
