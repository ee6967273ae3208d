//! The claim controller: PostgreSQLInstance → Composition → composed objects → status and a
//! connection Secret, event-driven and quiet.
//!
//! Pipeline of one reconcile ([`reconcile`]): choose the Composition ([`select`], pure) → read the
//! composed objects and their connection Secrets → render with the composition engine (pure) →
//! server-side apply only what differs ([`diff`], pure) → delete what is no longer listed →
//! publish the connection Secret → write status only when it changed → events on transitions.
//!
//! What wakes a claim: a change to its spec, labels, annotations or finalizers (status writes are
//! filtered out, so paved's own status writes never loop); a change to its Composition; a change
//! to any object composed for it, whatever its kind ([`watches`]); a change to a connection
//! Secret it reads; a long resync; and on errors a per-claim exponential backoff.

mod diff;
mod engine;
mod error;
mod metrics;
mod reconcile;
mod select;
mod watches;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::events::Recorder;
use futures::{FutureExt, StreamExt};
use kube::Api;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, applier, predicates, watcher};

pub use error::Error;
pub use metrics::ClaimMetrics;
pub use select::{CLAIM_API_VERSION, CLAIM_KIND};
pub use watches::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

use crate::api::{Composition, PostgreSQLInstance};

/// The field manager of every server-side apply of the claim controller.
pub const FIELD_MANAGER: &str = "paved";
/// The finalizer paved puts on claims, so that composed objects are deleted with them.
pub const FINALIZER: &str = "paved.dev/claim";

/// How the claim controller runs.
#[derive(Clone, Debug)]
pub struct ClaimConfig {
    /// Namespaces to serve; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// How often a claim is reconciled when nothing changed (watches do the real work).
    pub resync: Duration,
    /// How many claims are reconciled at the same time.
    pub concurrency: u16,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            resync: Duration::from_secs(600),
            concurrency: 16,
        }
    }
}

/// A claim change worth a reconcile: spec (generation), labels, annotations (Compositions may
/// patch from them), finalizers, deletion. Status changes are not.
fn claim_predicate(o: &PostgreSQLInstance) -> Option<u64> {
    let deleting = |o: &PostgreSQLInstance| o.metadata.deletion_timestamp.as_ref().map(|_| 1u64);
    predicates::generation
        .combine(predicates::labels)
        .combine(predicates::annotations)
        .combine(predicates::finalizers)
        .combine(deleting)
        .hash_property(o)
}

/// Flag a cache as synced when its watcher finishes the initial list (the reflector has already
/// applied the event to the store when the stream yields it).
///
/// Why not `Store::wait_until_ready`: in kube-runtime 5 it awaits a `futures` oneshot receiver
/// shared by every waiter, and that receiver keeps only the *last* waker registered. With two
/// tasks waiting on the same store (the applier holding its runner on the claim store, plus a
/// readiness task or a reconcile), whichever polled first is never woken: it hangs forever.
/// A `tokio::sync::watch` channel wakes every waiter.
pub(crate) fn mark_synced<K, E>(
    tx: &tokio::sync::watch::Sender<bool>,
    e: &Result<watcher::Event<K>, E>,
) {
    if matches!(e, Ok(watcher::Event::InitDone)) && !*tx.borrow() {
        tx.send_replace(true);
    }
}

/// Run the claim controller until `shutdown` resolves. `ready` turns true once the claim and
/// Composition caches are filled.
pub async fn run(
    client: kube::Client,
    config: ClaimConfig,
    metrics: Arc<ClaimMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_secrets(client, config, metrics, ready, shutdown, None).await
}

/// [`run`], reading paved's Secrets from `secrets` (one feed per namespace scope, shared with
/// the RDS controller by `paved run`) instead of a watch of its own.
pub async fn run_with_secrets(
    client: kube::Client,
    config: ClaimConfig,
    metrics: Arc<ClaimMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    secrets: Option<Vec<crate::secrets::SecretFeed>>,
) -> anyhow::Result<()> {
    let shutdown = shutdown.boxed().shared();
    let namespaces = crate::secrets::scopes(&config.namespaces);

    // One claim cache and queue per namespace scope.
    let mut scopes = Vec::new();
    let mut queues = Vec::new();
    // Our own "initial list done" signal per cache: see [`mark_synced`].
    let mut synced = Vec::new();
    for ns in &namespaces {
        let api: Api<PostgreSQLInstance> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (reader, writer) = reflector::store();
        let (tx, rx) = futures::channel::mpsc::unbounded::<ObjectRef<PostgreSQLInstance>>();
        let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
        synced.push(synced_rx);
        // Claims are cached without managedFields: status writes compare against the desired
        // status only.
        let stream = watcher(api, watches::watch_config())
            .modify(|c: &mut PostgreSQLInstance| watches::slim(&mut c.metadata, None));
        let own = reflector::reflector(writer, stream)
            .default_backoff()
            .inspect(move |e| mark_synced(&synced_tx, e))
            .applied_objects()
            .predicate_filter(claim_predicate, PredicateConfig::default())
            .filter_map(|r| {
                std::future::ready(match r {
                    Ok(o) => Some(ObjectRef::from_obj(&o)),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch of claims failed; retrying");
                        None
                    }
                })
            });
        let queue = futures::stream::select(own, rx).map(Ok::<_, Infallible>);
        scopes.push(watches::Scope {
            namespace: ns.clone(),
            claims: reader.clone(),
            trigger: tx,
        });
        queues.push((reader, queue));
    }

    let watches = watches::Watches::new(client.clone(), scopes);
    let (compositions, comp_writer) = reflector::store::<Composition>();
    let (comp_synced_tx, comp_synced) = tokio::sync::watch::channel(false);
    watches.start_compositions(comp_writer, comp_synced_tx);
    let secret_feeds = match secrets {
        Some(f) => f,
        None => crate::secrets::start(&client, &namespaces, 1)
            .pop()
            .unwrap_or_default(),
    };
    watches.start_secrets(secret_feeds);

    let reporter = Reporter {
        controller: "paved-claim".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(reconcile::Context::new(
        client.clone(),
        config.clone(),
        metrics,
        recorder,
        compositions.clone(),
        comp_synced.clone(),
        Arc::clone(&watches),
    ));

    // Ready once every cache is filled. Not `Store::wait_until_ready`: see [`mark_synced`].
    {
        synced.push(comp_synced);
        let ready = Arc::clone(&ready);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let all = async {
                for mut s in synced {
                    if s.wait_for(|v| *v).await.is_err() {
                        return false;
                    }
                }
                true
            };
            tokio::select! {
                ok = all => if ok {
                    ready.store(true, Ordering::SeqCst);
                    tracing::info!("claim controller caches synced");
                },
                _ = shutdown => {}
            }
        });
    }

    let mut runs = Vec::new();
    for (reader, queue) in queues {
        let ctx = Arc::clone(&ctx);
        let queue = queue.take_until(shutdown.clone());
        let cfg = kube::runtime::Config::default().concurrency(config.concurrency);
        let run = applier(
            |claim, ctx| {
                CancelableJoinHandle::spawn(
                    reconcile::reconcile(claim, ctx),
                    &tokio::runtime::Handle::current(),
                )
            },
            reconcile::error_policy,
            ctx,
            reader,
            queue,
            cfg,
        )
        .for_each(|res| {
            if let Err(e) = res {
                match e {
                    kube::runtime::controller::Error::ObjectNotFound(_) => {
                        tracing::debug!(error = %e, "claim gone")
                    }
                    kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                    other => tracing::warn!(error = %other, "claim controller"),
                }
            }
            std::future::ready(())
        });
        runs.push(run);
    }
    tracing::info!(namespaces = ?config.namespaces, "claim controller started");
    futures::future::join_all(runs).await;
    watches.stop();
    ready.store(false, Ordering::SeqCst);
    tracing::info!("claim controller stopped");
    Ok(())
}
