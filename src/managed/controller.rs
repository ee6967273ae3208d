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
use crate::kube::compact::CompactObject;
use crate::kube::events::Recorder;
use crate::kube::object_metrics::states_of;
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

fn error_policy<K: ExternalClient>(obj: Arc<K>, err: &Error, _ctx: Arc<Ctx<K>>) -> Action {
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
                    let conditions = obj.status().map(ManagedStatus::conditions);
                    t.count(&kind, states_of(conditions.unwrap_or_default()));
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
    Store<K>,
) {
    // 0 would mean unbounded in kube-runtime: every queued object at once, each holding its
    // object, Secrets and an AWS call in flight. More than 64 buys nothing under the AWS rate.
    let concurrency = shared.config.concurrency.clamp(1, 64);
    let objects: Api<K> = match &scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // What paved never reads (managedFields, kubectl's last-applied annotation) is dropped
    // before it is stored.
    let (store, objects_synced, objects) = synced::cached(objects, synced::watch_config());
    // Dropped at shutdown, with the reflector's writer (see `watch::until_shutdown`).
    // An object others reference announces each change once the store has it.
    let announce = shared.targets.clone();
    let objects = watch::settled_objects(objects, false).inspect(move |o| {
        if let Ok(o) = o
            && let Some(t) = o.as_target()
        {
            // No receiver (no referencing kind running) is not an error.
            let _ = announce.send(Arc::new(t));
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
fn users_of<K: ExternalClient>(objects: &Store<K>, name: Option<&str>) -> Vec<ObjectRef<K>> {
    objects
        .state()
        .into_iter()
        .filter(|o| name.is_none_or(|n| o.provider_config_name() == n))
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// For each ProviderConfig announced changed, the objects in `store` that use it.
fn users_of_changed<K: ExternalClient>(
    changed: tokio::sync::broadcast::Receiver<Arc<str>>,
    store: Store<K>,
) -> futures::stream::BoxStream<'static, ObjectRef<K>>
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
    store: Store<K>,
) -> futures::stream::BoxStream<'static, ObjectRef<K>>
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
            let objects = store.state();
            let woken = waiting_on(objects.iter().map(|o| &**o), &t);
            if !woken.is_empty() {
                tracing::debug!(kind = K::kind(&()).as_ref(), target = %format!("{} {}/{}", t.kind, t.namespace, t.name), woken = woken.len(), "waking objects waiting for a reference");
            }
            futures::stream::iter(
                woken
                    .into_iter()
                    .map(|(ns, name)| ObjectRef::<K>::new(&name).within(&ns)),
            )
        })
        .boxed()
}
