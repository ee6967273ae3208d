//! Watching many claims at once: when each was first seen Ready, and waiting for a set of them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use paved::api::PostgreSQLInstance;
use serde_json::Value;

use super::fixtures::{conditions_text, is_true};

/// Watches the claims of a namespace and remembers when each was first seen Ready.
pub struct ReadyTracker {
    ready: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>>,
    latest: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Value>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyTracker {
    pub fn start(client: &Client, namespace: &str) -> ReadyTracker {
        Self::start_kinds(
            client,
            namespace,
            &[ApiResource::erase::<PostgreSQLInstance>(&())],
        )
    }

    /// Watch the claims of every kind in `kinds` (names must be unique across them).
    pub fn start_kinds(client: &Client, namespace: &str, kinds: &[ApiResource]) -> ReadyTracker {
        let ready = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let latest = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let changed = std::sync::Arc::new(tokio::sync::Notify::new());
        let streams = kinds.iter().map(|ar| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
            watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed()
        });
        let mut all = futures::stream::select_all(streams);
        let (r, l, c) = (ready.clone(), latest.clone(), changed.clone());
        let task = tokio::spawn(async move {
            while let Some(item) = all.next().await {
                let Ok(claim) = item else { continue };
                let now = Instant::now();
                let v = serde_json::to_value(&claim).unwrap_or(Value::Null);
                let name = claim.metadata.name.clone().unwrap_or_default();
                if is_true(&v, "Ready") {
                    r.lock().unwrap().entry(name.clone()).or_insert(now);
                }
                l.lock().unwrap().insert(name, v);
                c.notify_waiters();
            }
        });
        ReadyTracker {
            ready,
            latest,
            changed,
            task,
        }
    }

    pub fn ready_count(&self) -> usize {
        self.ready.lock().unwrap().len()
    }

    pub fn ready_at(&self) -> BTreeMap<String, Instant> {
        self.ready.lock().unwrap().clone()
    }

    /// The last seen state of every claim.
    pub fn latest(&self) -> BTreeMap<String, Value> {
        self.latest.lock().unwrap().clone()
    }

    /// Wait until every claim in `names` has been seen Ready; on timeout, the names that were not
    /// with their conditions.
    pub async fn wait_all(
        &self,
        names: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let missing: Vec<String> = {
                let r = self.ready.lock().unwrap();
                names
                    .iter()
                    .filter(|n| !r.contains_key(*n))
                    .cloned()
                    .collect()
            };
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let latest = self.latest();
                let lines: Vec<String> = missing
                    .iter()
                    .take(10)
                    .map(|n| {
                        format!(
                            "  {n}: {}",
                            latest
                                .get(n)
                                .map(conditions_text)
                                .unwrap_or_else(|| "(never seen)".into())
                        )
                    })
                    .collect();
                return Err(format!(
                    "{} of {} claims not Ready:\n{}",
                    missing.len(),
                    names.len(),
                    lines.join("\n")
                ));
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(500).min(deadline - Instant::now()),
                notified,
            )
            .await;
        }
    }
}

impl Drop for ReadyTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
