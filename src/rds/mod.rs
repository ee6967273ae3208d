//! The RDS controller: reconciles `Instance` (`rds.aws.upbound.io/v1beta1`) with AWS RDS.
//! (skeleton: the implementation lands in the following commits)

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Settings of the RDS controller.
#[derive(Clone, Debug)]
pub struct RdsConfig {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// How often one paginated DescribeDBInstances per (ProviderConfig, region) refreshes every
    /// Instance.
    pub poll_interval: Duration,
    /// How often an instance in a transitional state (creating, modifying, ...) is described.
    pub transitional_poll_interval: Duration,
    /// Token bucket rate per AWS account and region.
    pub aws_requests_per_second: f64,
}

impl Default for RdsConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            poll_interval: Duration::from_secs(60),
            transitional_poll_interval: Duration::from_secs(20),
            aws_requests_per_second: 8.0,
        }
    }
}

/// Prometheus metrics of the RDS controller.
#[derive(Debug, Default)]
pub struct RdsMetrics {}

impl RdsMetrics {
    pub fn new(_registry: &mut prometheus_client::registry::Registry) -> Self {
        Self {}
    }
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    _client: kube::Client,
    _config: RdsConfig,
    _metrics: Arc<RdsMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    shutdown.await;
    Ok(())
}
