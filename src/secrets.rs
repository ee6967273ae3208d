//! One cache of the Secrets paved manages, shared by the claim and RDS controllers.
//!
//! Both controllers read the same Secrets, those labelled `app.kubernetes.io/managed-by=paved`:
//! the master password Secrets, the Instances' connection Secrets and the claims' connection
//! Secrets. With a watch and a store each, `paved run` kept every one of them twice (heaptrack at
//! 500 claims: 3.75 MB per copy, ~2.5 KB per Secret) and the API server served two watches. Here
//! one watch per namespace scope fills one store; every consumer gets its own feed of changed
//! (and deleted) Secrets, sent only after the store has them, so a reconcile woken by a Secret
//! always finds it in the store.
//!
//! kube-runtime's shared reflector (`store_shared`/`subscribe`) was the first choice, but it does
//! not pass deletions on, and both controllers act on a deleted Secret (re-publish it).
//!
//! The store keeps each Secret as compact JSON text ([`CompactObject`]): name, namespace, uid,
//! resourceVersion and ownerReferences stay typed (what the lookups and the owner wake-ups
//! read), and a reader rebuilds the whole Secret with [`get`]. As a typed `Secret`,
//! each took ~2.6 KB of heap (heaptrack, N=1000: 7.7 MB for 3000 Secrets), most of it the
//! `BTreeMap` nodes of its labels and data.

use std::sync::{Arc, LazyLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;

use crate::kube::compact::CompactObject;
use crate::kube::synced::SyncedRx;

/// Label selector of the Secrets paved writes, the only ones it caches.
pub const MANAGED_SECRETS: &str = crate::kube::meta::MANAGED_SELECTOR;

/// The API resource of a Secret, the dynamic type of the cache's keys.
pub static SECRET: LazyLock<ApiResource> = LazyLock::new(|| ApiResource::erase::<Secret>(&()));

/// The cache's key of Secret `ns/name`.
pub fn key(ns: &str, name: &str) -> ObjectRef<CompactObject> {
    ObjectRef::new_with(name, SECRET.clone()).within(ns)
}

/// Secret `ns/name` from `store`, rebuilt: `None` when the store does not have it, or holds
/// text that does not rebuild (it should not: the caller then reads the API server).
pub fn get(store: &Store<CompactObject>, ns: &str, name: &str) -> Option<Secret> {
    rebuild(&*store.get(&key(ns, name))?)
}

/// The whole Secret of a cached one: `None` when its text does not rebuild (it should not:
/// the caller then reads the API server).
pub fn rebuild(cached: &CompactObject) -> Option<Secret> {
    match cached.to_typed() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(secret = %format!("{}/{}", cached.namespace().unwrap_or_default(), cached.name_any()), error = %e, "cached Secret does not rebuild; reading it from the API server");
            None
        }
    }
}

/// An empty store, for a controller that reads no Secrets.
pub fn empty_store() -> Store<CompactObject> {
    kube::runtime::reflector::store::Writer::new(SECRET.clone()).as_reader()
}

/// The cache of one namespace scope (`None`: all namespaces).
pub struct SecretScope {
    pub namespace: Option<String>,
    /// The Secrets in compact form (see the module's text); read them with [`get`].
    pub store: Store<CompactObject>,
    /// Turns true once the initial list is in the store (a `watch` channel: every waiter wakes,
    /// unlike `Store::wait_until_ready`, see [`crate::kube::synced`]).
    pub synced: SyncedRx,
}

impl SecretScope {
    /// Wait until the initial list is in the store; false if the watch task is gone.
    pub async fn wait_synced(&self) -> bool {
        crate::kube::synced::wait(&self.synced).await
    }
}

/// What one consumer gets for one scope: the shared cache and its own feed of changes.
pub struct SecretFeed {
    pub scope: Arc<SecretScope>,
    /// Each changed or deleted Secret, in the compact form (its metadata holds what an owner
    /// wake-up reads).
    pub changes: mpsc::UnboundedReceiver<CompactObject>,
}

impl SecretFeed {
    /// Two feeds of the same scope, each getting every change (for two controllers that take
    /// one consumer's share, as the Instance and its namespaced twin do).
    pub fn split(self) -> (SecretFeed, SecretFeed) {
        let (tx_a, rx_a) = mpsc::unbounded_channel();
        let (tx_b, rx_b) = mpsc::unbounded_channel();
        let mut changes = self.changes;
        tokio::spawn(async move {
            loop {
                // Both gone: stop at once, so that the watch sees its consumer go.
                let both_gone = futures::future::join(tx_a.closed(), tx_b.closed());
                let secret = tokio::select! {
                    s = changes.recv() => s,
                    _ = both_gone => None,
                };
                let Some(secret) = secret else { break };
                let _ = tx_a.send(secret.clone());
                let _ = tx_b.send(secret);
            }
        });
        let twin = SecretFeed {
            scope: Arc::clone(&self.scope),
            changes: rx_b,
        };
        (
            SecretFeed {
                scope: self.scope,
                changes: rx_a,
            },
            twin,
        )
    }

    /// The feed as a stream (what `Controller::owns_stream` takes).
    pub fn into_stream(self) -> impl futures::Stream<Item = CompactObject> + Send + 'static {
        futures::stream::unfold(self.changes, |mut rx| async move {
            rx.recv().await.map(|s| (s, rx))
        })
    }
}

/// Start one watch per scope and return, for each of `consumers`, one feed per scope (in the
/// order of `namespaces`). A watch stops when every consumer has dropped its feed.
pub fn start(
    client: &kube::Client,
    namespaces: &[Option<String>],
    consumers: usize,
) -> Vec<Vec<SecretFeed>> {
    let mut feeds: Vec<Vec<SecretFeed>> = (0..consumers).map(|_| Vec::new()).collect();
    for ns in namespaces {
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &*SECRET),
            None => Api::all_with(client.clone(), &*SECRET),
        };
        // Slimmed and compact, with its synced signal and the watch's health
        // (`kube::synced::cached_as`).
        let (store, synced, stream) = crate::kube::synced::cached_as(
            api,
            crate::kube::synced::watch_config().labels(MANAGED_SECRETS),
            SECRET.clone(),
            CompactObject::new,
        );
        let scope = Arc::new(SecretScope {
            namespace: ns.clone(),
            store,
            synced,
        });
        let mut senders = Vec::with_capacity(consumers);
        for f in feeds.iter_mut() {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            f.push(SecretFeed {
                scope: Arc::clone(&scope),
                changes: rx,
            });
        }
        // Each Secret once the store has it (see `kube::watch`), deletions included.
        let stream = crate::kube::watch::settled_objects(stream, true);
        let watched = ns.clone();
        tokio::spawn(async move {
            let all_gone = {
                let senders = senders.clone();
                async move {
                    futures::future::join_all(senders.iter().map(|s| s.closed())).await;
                }
            };
            let forward = stream.for_each(|res| {
                match res {
                    Ok(secret) => {
                        for tx in &senders {
                            // A consumer that is gone simply gets nothing more.
                            let _ = tx.send(secret.clone());
                        }
                    }
                    // Logged once per outage by the watch's health (`kube::watch`).
                    Err(e) => {
                        tracing::debug!(namespace = ?watched, error = %e, "watch of paved's Secrets failed; retrying")
                    }
                }
                std::future::ready(())
            });
            tokio::select! {
                _ = forward => {}
                _ = all_gone => {}
            }
        });
    }
    feeds
}

/// The namespace scopes of a controller's namespace list (empty: all namespaces).
pub fn scopes(namespaces: &[String]) -> Vec<Option<String>> {
    if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    }
}

/// The feeds a controller reads: those `paved run` shares (`Some`), or one watch of its own per
/// scope (`None`, when a controller runs alone, as in tests).
pub fn feeds_or_own(
    client: &kube::Client,
    scopes: &[Option<String>],
    shared: Option<Vec<SecretFeed>>,
) -> Vec<SecretFeed> {
    match shared {
        Some(f) => f,
        None => start(client, scopes, 1).pop().unwrap_or_default(),
    }
}
