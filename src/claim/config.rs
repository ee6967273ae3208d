//! How the claim controller runs (a leaf module: every step may read it).

use std::time::Duration;

/// How the claim controller runs.
#[derive(Clone, Debug)]
pub struct ClaimConfig {
    /// Namespaces to serve; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// How often a claim is reconciled when nothing changed (watches do the real work).
    pub resync: Duration,
    /// How many claims are reconciled at the same time.
    pub concurrency: u16,
    /// Serve the claim kinds CompositeResourceDefinitions define (the XRD controller runs
    /// with the claim controller), besides the built-in PostgreSQLInstance.
    pub xrds: bool,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            resync: Duration::from_secs(600),
            concurrency: 16,
            xrds: true,
        }
    }
}
