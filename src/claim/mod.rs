//! The claim controller: PostgreSQLInstance → Composition → composed objects → status and a
//! connection Secret, event-driven and quiet.
//!
//! One reconcile ([`reconcile`]) is a pipeline, one file per step:
//! 1. [`choose`] the Composition (pure, over the Composition cache);
//! 2. [`observe`] the composed objects and their connection Secrets (watch caches);
//! 3. [`render`] them with the composition engine (pure);
//! 4. [`plan`] what to apply (pure, shared with `paved render`);
//! 5. [`apply`] what differs (server-side apply);
//! 6. [`prune`] what is no longer composed;
//! 7. [`publish`] the connection Secret;
//! 8. write the [`status`] when it changed;
//! 9. emit the [`events`] of the transitions.
//!
//! A claim being deleted goes through [`cleanup`] instead.
//!
//! What wakes a claim: a change to its spec, labels, annotations or finalizers (status writes are
//! filtered out, so paved's own status writes never loop); a change to its Composition; a change
//! to any object composed for it, whatever its kind ([`watches`]); a change to a connection
//! Secret it reads; a long resync; and on errors a per-claim exponential backoff.

mod apply;
#[cfg(test)]
mod builders;
mod choose;
mod cleanup;
mod config;
mod context;
mod diff;
mod error;
mod events;
mod finalizer;
mod kinds;
mod live;
mod metrics;
mod names;
pub(crate) mod object;
mod observe;
pub mod plan;
mod prune;
mod publish;
mod reconcile;
mod render;
mod revision;
mod status;
mod watches;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kube::compact::CompactObject;
use crate::kube::events::Recorder;
use crate::kube::{synced, watch};
use futures::{FutureExt, StreamExt};
use kube::api::DynamicObject;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::CancelableJoinHandle;
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, applier, predicates};
use kube::{Api, ResourceExt};

pub use crate::kube::meta::{MANAGED_BY as MANAGED_BY_VALUE, MANAGED_BY_LABEL};
pub use choose::{CLAIM_API_VERSION, CLAIM_KIND};
pub use config::ClaimConfig;
pub use error::Error;
pub use metrics::ClaimMetrics;
pub use names::{FIELD_MANAGER, FINALIZER};

use crate::api::Composition;
use crate::xrd::ServedKind;

/// The claim controller's source of the `paved_objects` gauge.
const CLAIMS_SOURCE: &str = "claims";

/// A claim change worth a reconcile: spec (generation), labels, annotations (Compositions may
/// patch from them), finalizers, deletion. Status changes are not.
fn claim_predicate(o: &CompactObject) -> Option<u64> {
    let deleting = |o: &CompactObject| {
        kube::Resource::meta(o)
            .deletion_timestamp
            .as_ref()
            .map(|_| 1u64)
    };
    predicates::generation
        .combine(predicates::labels)
        .combine(predicates::annotations)
        .combine(predicates::finalizers)
        .combine(deleting)
        .hash_property(o)
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

/// The claims of one kind in one namespace scope: their cache, the queue of their reconciles
/// (their own changes and the triggers of [`watches`]) and the signal that the cache is filled.
struct ClaimScope<Q> {
    scope: watches::Scope,
    reader: reflector::Store<CompactObject>,
    queue: Q,
    synced: synced::SyncedRx,
}

fn claim_scope(
    client: &kube::Client,
    kind: &Arc<ServedKind>,
    ns: &Option<String>,
    resync: std::time::Duration,
) -> ClaimScope<
    impl futures::Stream<Item = Result<ObjectRef<CompactObject>, Infallible>> + Send + use<>,
> {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let (tx, rx) = futures::channel::mpsc::unbounded::<ObjectRef<CompactObject>>();
    // Claims are cached slimmed (no managedFields: status writes compare against the desired
    // status only) and compact (the body as text, rebuilt when a reconcile reads it), with our
    // own "initial list done" signal and the watch's health.
    let (reader, synced, events) = synced::cached_as(
        api,
        crate::kube::synced::watch_config(),
        ar.clone(),
        CompactObject::with_metadata,
    );
    // Each claim once the store has it (see `kube::watch`: a relist's claims wait for its end).
    let own_ar = ar.clone();
    let own = watch::settled_objects(events, false)
        .predicate_filter(claim_predicate, PredicateConfig::default())
        .filter_map(move |r| {
            std::future::ready(match r {
                Ok(o) => Some(ObjectRef::from_obj_with(&o, own_ar.clone())),
                // Logged once per outage by the watch's health.
                Err(e) => {
                    tracing::debug!(error = %e, "watch of claims failed; retrying");
                    None
                }
            })
        });
    // The safety net: every cached claim once per resync interval, triggered or not.
    let all = reader.clone();
    let resync_ar = kind.api_resource();
    let resyncs = watch::resync_ticks(resync).flat_map(move |()| {
        futures::stream::iter(
            all.state()
                .iter()
                .map(|c| ObjectRef::from_obj_with(&**c, resync_ar.clone()))
                .collect::<Vec<_>>(),
        )
    });
    ClaimScope {
        scope: watches::Scope {
            kind: Arc::clone(kind),
            namespace: ns.clone(),
            claims: reader.clone(),
            trigger: tx,
        },
        reader,
        queue: futures::stream::select(futures::stream::select(own, rx), resyncs)
            .map(Ok::<_, Infallible>),
        synced,
    }
}

/// Turn `ready` true once every cache is filled.
fn signal_ready(
    synced: Vec<synced::SyncedRx>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::select! {
            ok = synced::wait_all(synced) => if ok {
                ready.store(true, Ordering::SeqCst);
                tracing::info!("claim controller caches synced");
            },
            _ = shutdown => {}
        }
    });
}

/// Start serving one claim kind: a watch and a reconcile queue per namespace scope. Returns
/// the appliers' tasks and the caches' synced signals.
fn serve_kind(
    ctx: &Arc<context::Context>,
    kind: &Arc<ServedKind>,
    namespaces: &[Option<String>],
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<synced::SyncedRx>) {
    let (mut tasks, mut synced) = (Vec::new(), Vec::new());
    tracing::info!(kind = %kind.kind, api_version = %kind.api_version(), "serving claim kind");
    for ns in namespaces {
        let s = claim_scope(&ctx.client, kind, ns, ctx.config.resync);
        ctx.watches.add_scope(s.scope);
        synced.push(s.synced);
        let cfg = kube::runtime::Config::default().concurrency(ctx.config.concurrency);
        let k = Arc::clone(kind);
        let reconcile = move |cached: Arc<CompactObject>, ctx: Arc<context::Context>| {
            let kind = Arc::clone(&k);
            CancelableJoinHandle::spawn(
                async move {
                    let obj = cached.to_dynamic().map_err(|e| {
                        tracing::warn!(object = %format!("{}/{}", cached.namespace().unwrap_or_default(), cached.name_any()), error = %e, "cached claim unreadable");
                        Error::CachedClaimUnreadable(e)
                    })?;
                    reconcile::reconcile(object::Claim::new(Arc::new(obj), kind), ctx).await
                },
                &tokio::runtime::Handle::current(),
            )
        };
        let queue = s.queue.take_until(shutdown.clone());
        let run = applier(
            reconcile,
            reconcile::error_policy,
            Arc::clone(ctx),
            s.reader,
            queue,
            cfg,
        )
        .for_each(|res| {
            log_result(res);
            std::future::ready(())
        });
        tasks.push(tokio::spawn(run));
    }
    (tasks, synced)
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

    let watches = watches::Watches::new(client.clone(), namespaces.clone());
    let (compositions, comp_writer) = reflector::store::<Composition>();
    let (comp_synced_tx, comp_synced) = synced::channel();
    watches.start_compositions(comp_writer, comp_synced_tx);
    watches.start_secrets(crate::secrets::feeds_or_own(&client, &namespaces, secrets));

    let reporter = Reporter {
        controller: "paved-claim".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    // The `paved_objects` gauge counts the claim caches when scraped.
    let objects = metrics.objects.clone();
    let counted = Arc::clone(&watches);
    objects.add(CLAIMS_SOURCE, move |t| counted.count_claims(t));
    let events = Arc::clone(&metrics);
    let recorder = Recorder::new(client.clone(), reporter).counting(move || events.write("event"));
    let ctx = Arc::new(context::Context::new(
        client.clone(),
        config.clone(),
        metrics,
        recorder,
        (compositions, comp_synced.clone()),
        Arc::clone(&watches),
    ));

    // The built-in kind, always; the kinds of XRDs as the XRD controller serves them.
    let builtin = Arc::new(ServedKind::builtin());
    let (mut tasks, mut synced) = serve_kind(&ctx, &builtin, &namespaces, shutdown.clone());
    synced.push(comp_synced);
    let mut served = if config.xrds {
        // Not part of readiness: the built-in kind is served whatever happens to XRDs (a
        // missing CRD or permission is logged and retried).
        let (served, _xrd_synced) = crate::xrd::controller::start(client.clone(), shutdown.clone());
        Some(served)
    } else {
        None
    };
    signal_ready(synced, Arc::clone(&ready), shutdown.clone());
    tracing::info!(namespaces = ?config.namespaces, "claim controller started");

    let mut by_kind: std::collections::HashMap<Arc<ServedKind>, Vec<tokio::task::JoinHandle<()>>> =
        std::collections::HashMap::new();
    loop {
        let changed = async {
            match served.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.clone() => break,
            ok = changed => {
                if !ok { break; }
                let now: Vec<Arc<ServedKind>> = served
                    .as_ref()
                    .map(|rx| rx.borrow().values().cloned().collect())
                    .unwrap_or_default();
                by_kind.retain(|k, handles| {
                    let keep = now.iter().any(|n| n == k);
                    if !keep {
                        tracing::info!(kind = %k.kind, api_version = %k.api_version(), "no longer serving claim kind");
                        watches.remove_kind(k);
                        for h in handles.iter() { h.abort(); }
                    }
                    keep
                });
                for k in now {
                    if *k != *builtin && !by_kind.contains_key(&k) {
                        let (t, _) = serve_kind(&ctx, &k, &namespaces, shutdown.clone());
                        by_kind.insert(k, t);
                    }
                }
            }
        }
    }
    for t in by_kind.into_values().flatten() {
        tasks.push(t);
    }
    for t in tasks {
        let _ = t.await;
    }
    watches.stop();
    objects.remove(CLAIMS_SOURCE);
    ready.store(false, Ordering::SeqCst);
    tracing::info!("claim controller stopped");
    Ok(())
}

fn log_result<T>(res: Result<T, kube::runtime::controller::Error<Error, Infallible>>) {
    use kube::runtime::controller::Error as E;
    match res {
        Ok(_) | Err(E::ReconcilerFailed(..)) => {}
        Err(e @ E::ObjectNotFound(_)) => tracing::debug!(error = %e, "claim gone"),
        Err(other) => tracing::warn!(error = %other, "claim controller"),
    }
}
