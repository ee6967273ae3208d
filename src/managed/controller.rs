//! The controllers of managed objects: their shared state, and the watches and queues of each
//! kind in each namespace scope. One watch per kind: each reflector fills the store the
//! reconciles read and, once the store has an object, passes it on as the Controller's trigger
//! (so a reconcile triggered by a Secret always finds that Secret in the store). The kinds are
//! registered in [`run_with_secrets`], one line each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};

use crate::api::instance::Instance;
use crate::api::provider_config::ProviderConfig;
use crate::api::twin::M;
use crate::kube::backoff::{Backoffs, exponential};
use crate::kube::compact::{Compact, CompactObject, Facts};
use crate::kube::events::Recorder;
use crate::kube::object_metrics::{State, states_of};
use crate::kube::overlay::Overlay;
use crate::kube::synced::{self, SyncedRx};
use crate::kube::watch;
use crate::secrets::SecretFeed;

use super::aws::{Buckets, Clients};
use super::client;
use super::config::RdsConfig;
use super::error::Error;
use super::kind::{ExternalClient, ManagedStatus};
use super::lifecycle;
use super::metrics::RdsMetrics;
use super::observe::Fleets;
use super::refs::Target;
use super::resolve::{Refers, waiting_on};

/// State shared by the controllers of every kind and every watched namespace: the API client,
/// settings, metrics, Events, and the AWS side (clients, token buckets, fleet caches).
pub(crate) struct Shared {
    pub client: kube::Client,
    pub config: RdsConfig,
    pub metrics: Arc<RdsMetrics>,
    pub recorder: Recorder,
    pub fleets: Fleets,
    /// The clients and listings of the network kinds.
    pub(crate) net: super::network::NetShared,
    pub(crate) buckets: Buckets,
    pub(crate) clients: Clients,
    pub(crate) http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    /// Changes to objects that others reference (SubnetGroups, SecurityGroups,
    /// ParameterGroups), announced by their kind's own watch: the controllers of the kinds that
    /// reference them wake the objects waiting for the changed one.
    pub(crate) targets: tokio::sync::broadcast::Sender<Arc<Target>>,
}

/// How many announced target changes a slow controller may fall behind before it misses some
/// (a missed change is caught by the waiting object's next poll).
const TARGET_BACKLOG: usize = 1024;

/// How many ProviderConfig changes a slow controller may fall behind before it misses some (then
/// it looks again at every object it has).
const PROVIDER_CONFIG_BACKLOG: usize = 64;

/// The ProviderConfigs, watched once for every kind and namespace scope (they are
/// cluster-scoped, the same for all): the store the reconciles read, and the name of each
/// changed or deleted one, after the store has it, for each controller to wake its users.
struct ProviderConfigs {
    store: Store<ProviderConfig>,
    changed: tokio::sync::broadcast::Sender<Arc<str>>,
}

/// Context of the controller of one kind in one namespace scope.
pub(crate) struct Ctx<K: ExternalClient> {
    pub shared: Arc<Shared>,
    /// paved's Secrets (the kinds that publish or read Secrets; empty for the others).
    pub secrets: Store<CompactObject>,
    pub provider_configs: Store<ProviderConfig>,
    /// Backoff per object (`namespace/name`) after AWS errors.
    pub backoffs: Backoffs<String>,
    /// What this controller last wrote to an object, until the store has caught up.
    pub latest: Overlay<String, K>,
}

/// What the controllers' caches keep of each object beside its text ([`Compact`]): what the
/// gauge, the ProviderConfig wake-ups and the reference wake-ups read, so that none of them
/// rebuilds every object.
#[derive(Clone, Debug)]
pub struct Cached {
    /// (Ready, Synced), for the `paved_objects` gauge.
    states: (State, State),
    /// The ProviderConfig it uses: a change to that one looks at it again.
    provider_config: String,
    /// Whether it has references still to resolve (only those objects are rebuilt to see
    /// whether a changed target is one of them).
    waiting: bool,
    /// It as a reference target, announced once the store has it.
    target: Option<Arc<Target>>,
}

impl<K: ExternalClient + Refers> Facts for K {
    type Of = Cached;
    fn facts(&self) -> Cached {
        let conditions = self.status().map(ManagedStatus::conditions);
        Cached {
            states: states_of(conditions.unwrap_or_default()),
            provider_config: self.provider_config_name().to_string(),
            waiting: !self.wanted().is_empty(),
            target: self.as_target().map(Arc::new),
        }
    }
}

impl Shared {
    fn new(client: &kube::Client, config: RdsConfig, metrics: Arc<RdsMetrics>) -> Self {
        let counted = metrics.clone();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "paved-rds".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        )
        .counting(move || counted.record_write("event"));
        Self {
            client: client.clone(),
            recorder,
            config,
            metrics,
            fleets: Fleets::default(),
            net: Default::default(),
            buckets: Buckets::default(),
            clients: Clients::default(),
            http: client::http_client(),
            targets: tokio::sync::broadcast::channel(TARGET_BACKLOG).0,
        }
    }
}

fn error_policy<K: ExternalClient + Refers>(
    obj: Arc<Compact<K>>,
    err: &Error,
    _ctx: Arc<Ctx<K>>,
) -> Action {
    tracing::warn!(kind = K::kind(&()).as_ref(), object = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()), error = %err, "reconcile failed");
    Action::requeue(exponential(
        3,
        Duration::from_secs(2),
        Duration::from_secs(30),
    ))
}

/// Run the controllers of every managed kind until `shutdown` resolves, with a Secret watch of
/// their own. `ready` turns true once every cache is synced.
pub async fn run(
    client: kube::Client,
    config: RdsConfig,
    metrics: Arc<RdsMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_secrets(client, config, metrics, ready, shutdown, None).await
}

/// [`run`], reading paved's Secrets from `secrets` (one feed per namespace scope, shared with
/// the claim controller by `paved run`) instead of a watch of its own.
pub async fn run_with_secrets(
    client: kube::Client,
    config: RdsConfig,
    metrics: Arc<RdsMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    secrets: Option<Vec<SecretFeed>>,
) -> anyhow::Result<()> {
    crate::init_crypto();
    let scopes = crate::secrets::scopes(&config.namespaces);
    let (feeds, twin_feeds): (Vec<_>, Vec<_>) =
        crate::secrets::feeds_or_own(&client, &scopes, secrets)
            .into_iter()
            .map(SecretFeed::split)
            .unzip();
    let shared = Arc::new(Shared::new(&client, config, metrics));
    let shutdown = shutdown.boxed().shared();
    let mut kinds = Kinds::new(&client, &shared, &scopes, shutdown);
    // The managed kinds, one line each. The first takes paved's Secrets (the Instance owns its
    // password and connection Secrets).
    kinds.run::<Instance>(Some(feeds))?;
    kinds.run::<crate::api::SubnetGroup>(None)?;
    kinds.run::<crate::api::SecurityGroup>(None)?;
    kinds.run::<crate::api::SecurityGroupRule>(None)?;
    kinds.run::<crate::api::ParameterGroup>(None)?;
    // Their namespaced twins (`*.aws.m.upbound.io`), read into the same types.
    kinds.run::<M<Instance>>(Some(twin_feeds))?;
    kinds.run::<M<crate::api::SubnetGroup>>(None)?;
    kinds.run::<M<crate::api::SecurityGroup>>(None)?;
    kinds.run::<M<crate::api::SecurityGroupRule>>(None)?;
    kinds.run::<M<crate::api::ParameterGroup>>(None)?;

    let counted = std::mem::take(&mut kinds.counted);
    let ready_flag = ready.clone();
    let synced = std::mem::take(&mut kinds.synced);
    let mark_ready = async move {
        if synced::wait_all(synced).await {
            ready_flag.store(true, Ordering::SeqCst);
            tracing::info!("managed-resource controllers' caches synced");
        }
        std::future::pending::<()>().await;
    };
    futures::future::select(
        Box::pin(futures::future::join_all(kinds.runs)),
        Box::pin(mark_ready),
    )
    .await;
    ready.store(false, Ordering::SeqCst);
    for name in counted {
        shared.metrics.objects.remove(&name);
    }
    Ok(())
}

type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// The controllers being started: one per kind and namespace scope.
struct Kinds<'a> {
    client: &'a kube::Client,
    shared: &'a Arc<Shared>,
    scopes: &'a [Option<String>],
    shutdown: Shutdown,
    runs: Vec<futures::future::BoxFuture<'static, ()>>,
    synced: Vec<SyncedRx>,
    /// The `paved_objects` sources added (removed when the controllers stop).
    counted: Vec<String>,
    provider_configs: ProviderConfigs,
}

impl<'a> Kinds<'a> {
    fn new(
        client: &'a kube::Client,
        shared: &'a Arc<Shared>,
        scopes: &'a [Option<String>],
        shutdown: Shutdown,
    ) -> Self {
        let pcs: Api<ProviderConfig> = Api::all(client.clone());
        let (store, pcs_synced, events) = synced::cached(pcs, synced::watch_config());
        let changed = tokio::sync::broadcast::channel(PROVIDER_CONFIG_BACKLOG).0;
        let announce = changed.clone();
        let feed = watch::until_shutdown(
            watch::settled_objects(events, true).boxed(),
            shutdown.clone(),
        )
        .for_each(move |pc| {
            if let Ok(pc) = pc {
                // No receiver (no controller running yet, or any more) is not an error.
                let _ = announce.send(Arc::from(pc.name_any()));
            }
            std::future::ready(())
        });
        Self {
            client,
            shared,
            scopes,
            shutdown,
            runs: vec![feed.boxed()],
            synced: vec![pcs_synced],
            counted: Vec::new(),
            provider_configs: ProviderConfigs { store, changed },
        }
    }

    /// Start the controller of kind `K` in every scope; `feeds`: paved's Secrets, one per scope,
    /// for a kind that reads or writes them.
    fn run<K: ExternalClient + Refers>(
        &mut self,
        mut feeds: Option<Vec<SecretFeed>>,
    ) -> anyhow::Result<()>
    where
        K::DynamicType: Default,
    {
        let mut stores = Vec::new();
        for scope in self.scopes {
            let feed = match feeds.as_mut() {
                Some(f) => match f.iter().position(|f| f.scope.namespace == *scope) {
                    Some(i) => Some(f.swap_remove(i)),
                    None => anyhow::bail!("no Secret cache for namespace scope {scope:?}"),
                },
                None => None,
            };
            let (run, synced, store) = scope_controller::<K>(
                self.client,
                self.shared,
                &self.provider_configs,
                scope.clone(),
                feed,
                self.shutdown.clone(),
            );
            self.runs.push(run.boxed());
            self.synced.extend(synced);
            stores.push(store);
        }
        // The `paved_objects` gauge reads this kind's caches when scraped.
        // A twin's objects are counted with its kind's, from a source of their own.
        let kind = K::kind(&()).to_string();
        let name = format!("managed/{}/{kind}", K::api_version(&()));
        self.shared.metrics.objects.add(name.clone(), move |t| {
            t.kind(&kind);
            for store in &stores {
                for obj in store.state() {
                    t.count(&kind, obj.facts().states);
                }
            }
        });
        self.counted.push(name);
        Ok(())
    }
}

/// The controller of kind `K` in one namespace scope (`None`: all namespaces), and the synced
/// signals of its caches (its objects, paved's Secrets when it reads them).
fn scope_controller<K: ExternalClient + Refers>(
    client: &kube::Client,
    shared: &Arc<Shared>,
    provider_configs: &ProviderConfigs,
    scope: Option<String>,
    feed: Option<SecretFeed>,
    shutdown: Shutdown,
) -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    Vec<SyncedRx>,
    Store<Compact<K>>,
) {
    // 0 would mean unbounded in kube-runtime: every queued object at once, each holding its
    // object, Secrets and an AWS call in flight. More than 64 buys nothing under the AWS rate.
    let concurrency = shared.config.concurrency.clamp(1, 64);
    let objects: Api<K> = match &scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // What paved never reads (managedFields, kubectl's last-applied annotation) is dropped
    // before it is stored, and the rest kept as compact text (see `kube::compact`).
    let (store, objects_synced, objects) =
        synced::cached_as(objects, synced::watch_config(), (), Compact::new);
    // Dropped at shutdown, with the reflector's writer (see `watch::until_shutdown`).
    // An object others reference announces each change once the store has it.
    let announce = shared.targets.clone();
    let objects = watch::settled_objects(objects, false).inspect(move |o| {
        if let Ok(o) = o
            && let Some(t) = &o.facts().target
        {
            // No receiver (no referencing kind running) is not an error.
            let _ = announce.send(Arc::clone(t));
        }
    });
    let stream = watch::until_shutdown(objects.boxed(), shutdown.clone());
    let mut synced = vec![objects_synced];
    // paved's Secrets: one cache shared with the claim controller (see `crate::secrets`).
    let (secret_store, secret_stream) = match feed {
        Some(feed) => {
            synced.push(feed.scope.synced.clone());
            let store = feed.scope.store.clone();
            let stream = feed
                .into_stream()
                .map(Ok::<CompactObject, watcher::Error>)
                .boxed();
            (store, stream)
        }
        None => (
            crate::secrets::empty_store(),
            futures::stream::empty().boxed(),
        ),
    };
    let pc_users = watch::until_shutdown(
        users_of_changed(provider_configs.changed.subscribe(), store.clone()),
        shutdown.clone(),
    );
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        secrets: secret_store,
        provider_configs: provider_configs.store.clone(),
        backoffs: Backoffs::default(),
        latest: Overlay::default(),
    });
    let counted = store.clone();
    // Ended at shutdown like the objects' stream: the broadcast it reads outlives the controller.
    let wakes = watch::until_shutdown(wakes::<K>(shared, store.clone()), shutdown.clone());
    let run = Controller::for_stream(stream, store)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .owns_stream_with(
            watch::until_shutdown(secret_stream, shutdown.clone()),
            crate::secrets::SECRET.clone(),
        )
        .reconcile_all_on(watch::resync_ticks(shared.config.resync))
        .reconcile_on(wakes)
        .reconcile_on(pc_users)
        .graceful_shutdown_on(shutdown)
        .run(lifecycle::reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        });
    (run, synced, counted)
}

/// The objects that use the ProviderConfig `name` (`None`: some changes were missed, so every
/// object): a change to it looks at them again.
fn users_of<K: ExternalClient + Refers>(
    objects: &Store<Compact<K>>,
    name: Option<&str>,
) -> Vec<ObjectRef<Compact<K>>> {
    objects
        .state()
        .into_iter()
        .filter(|o| name.is_none_or(|n| o.facts().provider_config == n))
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// For each ProviderConfig announced changed, the objects in `store` that use it.
fn users_of_changed<K: ExternalClient + Refers>(
    changed: tokio::sync::broadcast::Receiver<Arc<str>>,
    store: Store<Compact<K>>,
) -> futures::stream::BoxStream<'static, ObjectRef<Compact<K>>>
where
    K::DynamicType: Default,
{
    received(changed)
        .flat_map(move |name| futures::stream::iter(users_of(&store, name.as_deref())))
        .boxed()
}

/// The messages of a broadcast `rx` as a stream, with `None` where a lagging receiver missed
/// some; it ends when every sender is gone.
fn received<T: Clone + Send + 'static>(
    rx: tokio::sync::broadcast::Receiver<T>,
) -> futures::stream::BoxStream<'static, Option<T>> {
    futures::stream::unfold(rx, |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        match rx.recv().await {
            Ok(t) => Some((Some(t), rx)),
            Err(RecvError::Lagged(_)) => Some((None, rx)),
            Err(RecvError::Closed) => None,
        }
    })
    .boxed()
}

/// The objects of kind `K` to wake when an object they reference changes: for each announced
/// change of a kind `K` refers to, the objects in `store` still waiting for it (none when `K`
/// refers to nothing). A change missed by a lagging receiver is caught by the
/// waiting object's next poll (its timer retry).
fn wakes<K: ExternalClient + Refers>(
    shared: &Shared,
    store: Store<Compact<K>>,
) -> futures::stream::BoxStream<'static, ObjectRef<Compact<K>>>
where
    K::DynamicType: Default,
{
    if K::REFERS_TO.is_empty() {
        return futures::stream::empty().boxed();
    }
    // A change missed by lagging is caught by the waiting object's next poll.
    received(shared.targets.subscribe())
        .filter_map(|t| std::future::ready(t.filter(|t| K::REFERS_TO.contains(&t.kind))))
        .flat_map(move |t| {
            // Only the objects still waiting for a reference are rebuilt.
            let waiting: Vec<K> = store
                .state()
                .iter()
                .filter(|o| o.facts().waiting)
                .filter_map(|o| o.get().ok())
                .collect();
            let woken = waiting_on(waiting.iter(), &t);
            if !woken.is_empty() {
                tracing::debug!(kind = K::kind(&()).as_ref(), target = %format!("{} {}/{}", t.kind, t.namespace, t.name), woken = woken.len(), "waking objects waiting for a reference");
            }
            futures::stream::iter(
                woken
                    .into_iter()
                    .map(|(ns, name)| ObjectRef::<Compact<K>>::new(&name).within(&ns)),
            )
        })
        .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::api::SubnetGroup;
    use kube::Resource;

    fn json<T: serde::Serialize>(o: &T) -> serde_json::Value {
        serde_json::to_value(o).unwrap()
    }

    fn instance() -> Instance {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {
                "name": "db", "namespace": "team", "uid": "u-1", "resourceVersion": "7",
                "generation": 2,
                "labels": {"crossplane.io/claim-name": "db"},
                "annotations": {"crossplane.io/external-name": "team-db"},
                "finalizers": ["finalizer.managedresource.crossplane.io"]
            },
            "spec": {
                "forProvider": {
                    "region": "eu-west-1", "instanceClass": "db.t3.micro", "allocatedStorage": 20,
                    "dbSubnetGroupNameRef": {"name": "net"}
                },
                "providerConfigRef": {"name": "team-a"}
            },
            "status": {
                "atProvider": {"status": "available", "address": "db.example.com"},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-12-01T10:00:00Z"},
                    {"type": "Synced", "status": "False", "reason": "ReconcileError", "lastTransitionTime": "2026-12-01T10:00:00Z"}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_compact_object_rebuilds_whole_and_keeps_what_its_readers_need() {
        let obj = instance();
        let c = Compact::new(obj.clone());
        assert_eq!(
            json(&c.get().unwrap()),
            json(&obj),
            "rebuilt whole, metadata included"
        );
        let meta = c.meta();
        assert_eq!(
            (meta.name.as_deref(), meta.namespace.as_deref()),
            (Some("db"), Some("team"))
        );
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert!(meta.labels.is_none() && meta.finalizers.is_none() && meta.generation.is_none());
        let facts = c.facts();
        assert_eq!(facts.states, (State::True, State::False));
        assert_eq!(facts.provider_config, "team-a");
        assert!(
            facts.waiting,
            "the subnet group reference is not resolved yet"
        );
        assert!(facts.target.is_none(), "an Instance is no reference target");
        // Decoding the kind's JSON gives the same compact object (kube-runtime's bound).
        let decoded: Compact<Instance> = serde_json::from_value(json(&obj)).unwrap();
        assert_eq!(json(&decoded.get().unwrap()), json(&obj));
        assert_eq!(ObjectRef::from_obj(&decoded), ObjectRef::from_obj(&c));
    }

    #[test]
    fn a_compact_target_carries_its_announcement_and_a_bare_object_its_defaults() {
        let group: SubnetGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
            "metadata": {"name": "net", "namespace": "team", "labels": {"tier": "db"}},
            "spec": {"forProvider": {"region": "eu-west-1", "subnetIds": ["subnet-1"]}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let c = Compact::new(group.clone());
        let target = c.facts().target.as_deref().unwrap();
        assert_eq!(
            (target.namespace.as_str(), target.name.as_str()),
            ("team", "net")
        );
        assert_eq!(target.labels.get("tier").map(String::as_str), Some("db"));
        // No status yet, no ProviderConfig named: Unknown states, the default ProviderConfig.
        assert_eq!(c.facts().states, (State::Unknown, State::Unknown));
        assert_eq!(c.facts().provider_config, "default");
        assert_eq!(json(&c.get().unwrap()), json(&group));
    }
}
