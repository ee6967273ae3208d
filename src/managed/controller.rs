//! The controller of managed objects: its shared state, and the watches and queues of each
//! namespace scope. One watch per kind: each reflector fills the store the reconciles read and,
//! once the store has an object, passes it on as the Controller's trigger (so a reconcile
//! triggered by a Secret always finds that Secret in the store).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};

use crate::api::instance::Instance;
use crate::api::provider_config::ProviderConfig;
use crate::kube::backoff::{Backoffs, exponential};
use crate::kube::events::Recorder;
use crate::kube::overlay::Overlay;
use crate::kube::synced::{self, SyncedRx};
use crate::kube::watch;
use crate::secrets::SecretFeed;

use super::aws::{Buckets, Clients};
use super::client;
use super::config::RdsConfig;
use super::error::Error;
use super::lifecycle;
use super::metrics::RdsMetrics;
use super::observe::Fleets;

/// State shared by the controllers of all watched namespaces.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub config: RdsConfig,
    pub metrics: Arc<RdsMetrics>,
    pub recorder: Recorder,
    pub fleets: Fleets,
    /// Backoff per Instance (`namespace/name`) after AWS errors.
    pub backoffs: Backoffs<String>,
    /// What this controller last wrote to an Instance, until the store has caught up.
    pub latest: Overlay<String, Instance>,
    pub(crate) buckets: Buckets,
    pub(crate) clients: Clients,
    pub(crate) http: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

/// Context of one controller.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub secrets: Store<Secret>,
    pub provider_configs: Store<ProviderConfig>,
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
            backoffs: Backoffs::default(),
            latest: Overlay::default(),
            buckets: Buckets::default(),
            clients: Clients::default(),
            http: client::http_client(),
        }
    }
}

fn error_policy(obj: Arc<Instance>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(namespace = ?obj.namespace(), name = %obj.name_any(), error = %err, "reconcile failed");
    Action::requeue(exponential(
        3,
        Duration::from_secs(2),
        Duration::from_secs(30),
    ))
}

/// Run the controller until `shutdown` resolves. `ready` turns true once the caches (Instances,
/// managed Secrets, ProviderConfigs) are synced.
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
    let mut feeds = crate::secrets::feeds_or_own(&client, &scopes, secrets);
    let shared = Arc::new(Shared::new(&client, config, metrics));
    let shutdown = shutdown.boxed().shared();

    let mut runs = Vec::new();
    let mut synced = Vec::new();
    for scope in scopes {
        let Some(i) = feeds.iter().position(|f| f.scope.namespace == scope) else {
            anyhow::bail!("no Secret cache for namespace scope {scope:?}");
        };
        let feed = feeds.swap_remove(i);
        let (run, scope_synced) = scope_controller(&client, &shared, scope, feed, shutdown.clone());
        runs.push(run);
        synced.extend(scope_synced);
    }
    let ready_flag = ready.clone();
    let mark_ready = async move {
        if synced::wait_all(synced).await {
            ready_flag.store(true, Ordering::SeqCst);
            tracing::info!("RDS controller caches synced");
        }
        std::future::pending::<()>().await;
    };
    futures::future::select(
        Box::pin(futures::future::join_all(runs)),
        Box::pin(mark_ready),
    )
    .await;
    ready.store(false, Ordering::SeqCst);
    Ok(())
}

/// The controller of one namespace scope (`None`: all namespaces), and the synced signals of its
/// caches (Instances, paved's Secrets, ProviderConfigs).
fn scope_controller(
    client: &kube::Client,
    shared: &Arc<Shared>,
    scope: Option<String>,
    feed: SecretFeed,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    Vec<SyncedRx>,
) {
    // 0 would mean unbounded in kube-runtime: every queued Instance at once, each holding its
    // object, Secrets and an AWS call in flight. More than 64 buys nothing under the AWS rate.
    let concurrency = shared.config.concurrency.clamp(1, 64);
    let instances: Api<Instance> = match &scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // What paved never reads (managedFields, kubectl's last-applied annotation) is dropped
    // before it is stored.
    let (instance_store, instances_synced, instances) =
        synced::cached(instances, watcher::Config::default());
    let instance_stream = watch::settled_objects(instances, false);
    // paved's Secrets: one cache shared with the claim controller (see `crate::secrets`).
    let secrets_synced = feed.scope.synced.clone();
    let secret_store = feed.scope.store.clone();
    let secret_stream = feed.into_stream().map(Ok::<Secret, watcher::Error>);
    let pcs: Api<ProviderConfig> = Api::all(client.clone());
    let (pc_store, pcs_synced, pcs) = synced::cached(pcs, watcher::Config::default());
    let pc_stream = watch::settled_objects(pcs, true);
    let mapper_store = instance_store.clone();
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        secrets: secret_store,
        provider_configs: pc_store,
    });
    let run = Controller::for_stream(instance_stream, instance_store)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .owns_stream(secret_stream)
        .reconcile_all_on(watch::resync_ticks(shared.config.resync))
        .watches_stream(pc_stream, move |pc: ProviderConfig| {
            users_of(&mapper_store, &pc.name_any())
        })
        .graceful_shutdown_on(shutdown)
        .run(lifecycle::reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        });
    (run, vec![instances_synced, secrets_synced, pcs_synced])
}

/// The Instances that use the ProviderConfig `name` (a change to it looks at them again).
fn users_of(instances: &Store<Instance>, name: &str) -> Vec<ObjectRef<Instance>> {
    instances
        .state()
        .into_iter()
        .filter(|i| {
            i.spec
                .provider_config_ref
                .as_ref()
                .map(|r| r.name.as_str())
                .unwrap_or("default")
                == name
        })
        .map(|i| ObjectRef::from_obj(&*i))
        .collect()
}
