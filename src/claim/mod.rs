//! The claim controller: PostgreSQLInstance → Composition → composed objects → status and a
//! connection Secret. (Work in progress: the public API below is the contract with `paved run`.)

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How the claim controller runs.
#[derive(Clone, Debug)]
pub struct ClaimConfig {
    /// Namespaces to serve; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// How often a claim is reconciled when nothing changed (watches do the real work).
    pub resync: Duration,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        Self { namespaces: Vec::new(), resync: Duration::from_secs(600) }
    }
}

/// Prometheus metrics of the claim controller.
#[derive(Debug)]
pub struct ClaimMetrics {}

impl ClaimMetrics {
    pub fn new(_registry: &mut prometheus_client::registry::Registry) -> Self {
        Self {}
    }
}

/// Run the claim controller until `shutdown` resolves.
pub async fn run(
    _client: kube::Client,
    _config: ClaimConfig,
    _metrics: Arc<ClaimMetrics>,
    _ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
