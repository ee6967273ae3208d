//! paved's controllers in-process (the claim suite and the RDS suite run them scoped to a
//! test's namespace, and read their metrics directly), the world an RDS test starts from, and
//! stand-ins for the RDS controller where a claim test runs only the claim controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use paved::api::{Composition, ConditionStatus, Instance, PostgreSQLInstance, ProviderConfig};
use paved::claim::{ClaimConfig, ClaimMetrics};
use paved::rds::{RdsConfig, RdsMetrics};
use serde_json::{Value, json};

use super::aws::{create_direct, emulator_rds, list_ids, purge_where};
use super::cluster::{
    FIELD_MANAGER, apply_json, client, install_crds, test_namespace, until, wait_deleted, wait_for,
};
use super::env::e2e_env;
use super::fixtures::{
    Conditioned, aws_credentials_secret, cond, decoded, has_status, instance_json, is,
    is_true_cond, provider_config_with_secret, seed_claim_yaml, seed_file,
};

// ---------------------------------------------------------------------------------------------
// the RDS controller

/// An RDS test's world: its namespace, the credentials Secret `aws-creds` in it, a
/// ProviderConfig pointing at the emulator (or the fault proxy), and its own, emptied, region.
pub struct RdsEnv {
    pub client: Client,
    pub ns: String,
    pub region: String,
    pub pc: String,
    /// The emulator, directly, in this test's region.
    pub rds: aws_sdk_rds::Client,
    pub instances: Api<Instance>,
    pub secrets: Api<Secret>,
}

impl RdsEnv {
    /// Namespace `<prefix>-<random>`, credentials Secret, ProviderConfig `pc-<namespace>`
    /// pointing at `endpoint` (the emulator unless given), and `region` rid of this test's leftovers.
    pub async fn new(prefix: &str, region: &str, endpoint: Option<&str>) -> RdsEnv {
        let client = client().await;
        install_crds(&client).await;
        let ns = test_namespace(&client, prefix).await;
        let moto = e2e_env().moto_url;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let creds: Secret = serde_json::from_value(aws_credentials_secret()).unwrap();
        secrets
            .create(&PostParams::default(), &creds)
            .await
            .unwrap();
        let pc = format!("pc-{ns}");
        let pc_obj: ProviderConfig = serde_json::from_value(provider_config_with_secret(
            &pc,
            endpoint.unwrap_or(&moto),
            &ns,
        ))
        .unwrap();
        Api::<ProviderConfig>::all(client.clone())
            .patch(
                &pc,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&pc_obj),
            )
            .await
            .unwrap();
        let rds = emulator_rds(region).await;
        // Only this test's leftovers (their namespaces were `<prefix>-<random>` too): another
        // test may be using the same region right now.
        let mine = format!("{prefix}-");
        purge_where(&rds, |id| id.starts_with(&mine)).await;
        RdsEnv {
            instances: Api::namespaced(client.clone(), &ns),
            secrets,
            client,
            ns,
            region: region.into(),
            pc,
            rds,
        }
    }

    /// The identifiers of this namespace's RDS instances in the test's region (paved derives
    /// `<namespace>-<name>-<hash>`); other tests may have instances in the same region.
    pub async fn own_ids(&self) -> Vec<String> {
        self.own_ids_in(&self.rds).await
    }

    /// [`RdsEnv::own_ids`] in the region of `rds`.
    pub async fn own_ids_in(&self, rds: &aws_sdk_rds::Client) -> Vec<String> {
        let mine = format!("{}-", self.ns);
        let mut ids = list_ids(rds).await;
        ids.retain(|id| id.starts_with(&mine));
        ids
    }

    /// [`instance_json`] in this test's region with its ProviderConfig.
    pub fn instance_json(&self, name: &str, extra: Value) -> Value {
        instance_json(name, &self.region, &self.pc, extra)
    }

    /// Create the Instance `name` (see [`RdsEnv::instance_json`]).
    pub async fn create(&self, name: &str, extra: Value) -> Instance {
        let obj: Instance = serde_json::from_value(self.instance_json(name, extra)).unwrap();
        self.instances
            .create(&PostParams::default(), &obj)
            .await
            .unwrap()
    }

    /// Merge-patch the Instance's spec.
    pub async fn patch_spec(&self, name: &str, patch: Value) {
        self.instances
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "spec": patch })),
            )
            .await
            .unwrap();
    }

    /// Wait until the Instance is Ready (Available) and Synced (ReconcileSuccess).
    pub async fn wait_ready(&self, name: &str, secs: u64) -> Instance {
        wait_for(
            &self.instances,
            name,
            secs,
            "Ready and Synced",
            instance_ready_and_synced,
        )
        .await
    }

    /// Wait until all `n` Instances of the namespace are Ready and Synced (a watch).
    pub async fn wait_all_ready(&self, n: usize, secs: u64) {
        super::cluster::wait_all(
            &self.instances,
            secs,
            "all Instances Ready",
            |items| {
                items
                    .iter()
                    .filter(|i| instance_ready_and_synced(i))
                    .count()
                    == n
            },
            |items| {
                let ready = items
                    .iter()
                    .filter(|i| instance_ready_and_synced(i))
                    .count();
                format!("only {ready}/{n} ready")
            },
        )
        .await;
    }

    /// Wait until the Instance is Synced=False with this reason.
    pub async fn wait_synced_false(&self, name: &str, reason: &str, secs: u64) -> Instance {
        wait_for(
            &self.instances,
            name,
            secs,
            &format!("Synced=False {reason}"),
            |i: &Instance| is(i, "Synced", "False", reason),
        )
        .await
    }

    /// Delete the Instance and wait until it is gone.
    pub async fn delete_and_wait(&self, name: &str, secs: u64) {
        self.instances
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_deleted(&self.instances, name, secs).await;
    }

    /// The Secret's data, decoded.
    pub async fn secret_data(&self, name: &str) -> BTreeMap<String, String> {
        decoded(&self.secrets.get(name).await.unwrap())
    }

    /// Set one key of a Secret (merge patch), as a user rotating a password would.
    pub async fn set_secret_key(&self, name: &str, key: &str, value: &str) {
        self.secrets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "stringData": { key: value } })),
            )
            .await
            .unwrap();
    }

    /// Create an instance in this region behind paved's back (after deleting the one an earlier
    /// run of the test may have left under that name).
    pub async fn create_direct(&self, id: &str, tags: &[(&str, &str)]) {
        purge_where(&self.rds, |found| found == id).await;
        create_direct(&self.rds, id, tags).await;
    }
}

/// Wait until condition `t` of the named object is True.
pub async fn wait_true<K>(api: &Api<K>, name: &str, secs: u64, t: &str) -> K
where
    K: Conditioned
        + kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    wait_for(api, name, secs, &format!("{t}=True"), |o: &K| {
        is_true_cond(o, t)
    })
    .await
}

/// Wait until the claim's connection Secret `my-app-db-credentials` holds every key the
/// stand-in wrote.
pub async fn wait_published(client: &Client, ns: &str, secs: u64, what: &str) -> Secret {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    wait_for(
        &secrets,
        "my-app-db-credentials",
        secs,
        what,
        secret_has_all_keys,
    )
    .await
}

/// Ready=True Available and Synced=True ReconcileSuccess.
pub fn instance_ready_and_synced(i: &Instance) -> bool {
    is(i, "Ready", "True", "Available") && is(i, "Synced", "True", "ReconcileSuccess")
}

/// The Instance's `crossplane.io/external-name`.
pub fn external_name(i: &Instance) -> String {
    i.annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .expect("external-name annotation")
}

/// The RDS controller's configuration with the short intervals of the tests.
pub fn fast() -> RdsConfig {
    RdsConfig {
        poll_interval: Duration::from_secs(2),
        transitional_poll_interval: Duration::from_secs(1),
        aws_requests_per_second: 50.0,
        ..RdsConfig::default()
    }
}

/// An RDS test's world whose AWS endpoint hangs: the emulator behind a [`FaultProxy`] that
/// accepts calls and never answers (`set_stall(true)`), and the RDS controller on it with
/// `--aws-timeout 3s`. The proxy is returned to name its URL and to stop stalling.
pub async fn behind_a_hung_endpoint(
    prefix: &str,
    region: &str,
) -> (super::proxy::FaultProxy, RdsEnv, RdsController) {
    let proxy = super::proxy::FaultProxy::start(&super::env::e2e_env().moto_url).await;
    let env = RdsEnv::new(prefix, region, Some(&proxy.url())).await;
    let cfg = RdsConfig {
        aws_timeout: Duration::from_secs(3),
        ..fast()
    };
    let ctl = RdsController::start(&env.client, &env.ns, cfg).await;
    proxy.set_stall(true);
    (proxy, env, ctl)
}

/// The RDS controller running in-process on one namespace.
pub struct RdsController {
    handle: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub metrics: Arc<RdsMetrics>,
}

impl RdsController {
    /// Start it on `ns` with `cfg` and wait until its caches are synced.
    pub async fn start(client: &Client, ns: &str, cfg: RdsConfig) -> RdsController {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(RdsMetrics::new(&mut registry));
        let ready = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = RdsConfig {
            namespaces: vec![ns.to_string()],
            ..cfg
        };
        let (client, m, r) = (client.clone(), metrics.clone(), ready.clone());
        let handle = tokio::spawn(async move {
            paved::rds::run(client, cfg, m, r, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        until(30, "controller caches synced", || {
            ready.load(Ordering::SeqCst)
        })
        .await;
        RdsController {
            handle,
            stop: Some(tx),
            metrics,
        }
    }

    /// Kill it where it stands (a crash): nothing runs to completion.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }

    pub fn calls(&self, op: &str) -> u64 {
        self.metrics.calls(op)
    }

    /// Calls that change something in AWS.
    pub fn mutating_calls(&self) -> u64 {
        [
            "CreateDBInstance",
            "ModifyDBInstance",
            "DeleteDBInstance",
            "AddTagsToResource",
            "RemoveTagsFromResource",
        ]
        .iter()
        .map(|o| self.calls(o))
        .sum()
    }

    pub fn polls(&self) -> u64 {
        self.metrics.fleet_polls.get()
    }

    /// Successful reconciles so far.
    pub fn reconciles(&self) -> u64 {
        self.metrics
            .reconciles
            .get_or_create(&paved::rds::metrics::ReconcileLabels {
                result: "success".into(),
            })
            .get()
    }
}

// ---------------------------------------------------------------------------------------------
// the claim controller

/// The claim controller running in-process on one namespace.
pub struct ClaimController {
    pub metrics: Arc<ClaimMetrics>,
    pub ready: Arc<AtomicBool>,
    registry: prometheus_client::registry::Registry,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ClaimController {
    pub async fn start(client: &Client, ns: &str, resync: Duration) -> ClaimController {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(ClaimMetrics::new(&mut registry));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ready = Arc::new(AtomicBool::new(false));
        let config = ClaimConfig {
            namespaces: vec![ns.to_string()],
            resync,
            ..Default::default()
        };
        let task = tokio::spawn(paved::claim::run(
            client.clone(),
            config,
            Arc::clone(&metrics),
            Arc::clone(&ready),
            async move {
                let _ = rx.await;
            },
        ));
        ClaimController {
            metrics,
            ready,
            registry,
            stop: Some(tx),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("controller stops within 30s")
            .expect("controller task")
            .expect("controller result");
    }

    fn encoded(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// The `paved_claim_kube_writes_total` lines of the metrics.
    pub fn writes_by_operation(&self) -> String {
        self.encoded()
            .lines()
            .filter(|l| l.starts_with("paved_claim_kube_writes_total"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many direct reads (watch-cache misses) of this kind the controller counted.
    pub fn reads(&self, kind: &str) -> u64 {
        let needle = format!("paved_claim_kube_reads_total{{kind=\"{kind}\"}}");
        sample_value(&self.encoded(), |l| l.starts_with(&needle))
    }

    /// How many writes of this operation the controller counted.
    pub fn writes(&self, operation: &str) -> u64 {
        let needle = format!("operation=\"{operation}\"}}");
        sample_value(&self.writes_by_operation(), |l| l.contains(&needle))
    }

    /// Wait (event-driven) until `n` more reconciles than `from` have finished.
    pub async fn wait_reconciles(&self, from: u64, n: u64, secs: u64) {
        let mut rx = self.metrics.subscribe_reconciles();
        tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|c| *c >= from + n))
            .await
            .unwrap_or_else(|_| panic!("{n} reconciles did not happen within {secs}s"))
            .unwrap();
    }
}

/// The value of the first sample line `pick` chooses (0 when none).
fn sample_value(text: &str, pick: impl Fn(&str) -> bool) -> u64 {
    text.lines()
        .find(|l| pick(l))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// claims and Compositions, and standing in for the RDS controller

/// Label on every Composition a claim test creates (besides the seed one), for cleanup.
pub const TEST_COMPOSITION_LABEL: &str = "paved-test/claim";

/// A copy of the seed Composition named `name`, labelled for cleanup.
pub fn test_composition(name: &str) -> Value {
    let mut c = seed_file("composition.yaml");
    c["metadata"]["name"] = json!(name);
    c["metadata"]["labels"] = json!({TEST_COMPOSITION_LABEL: "true"});
    c
}

/// Delete the Compositions earlier tests left behind, so that the seed Composition is the one
/// for PostgreSQLInstance, and (re)apply the seed Composition.
pub async fn only_seed_composition(client: &Client) {
    delete_compositions_labelled(client, TEST_COMPOSITION_LABEL).await;
    let api: Api<Composition> = Api::all(client.clone());
    apply_json(client, &seed_file("composition.yaml"), None, false)
        .await
        .unwrap();
    let others: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|c| {
            c.spec.composite_type_ref.kind == "PostgreSQLInstance"
                && c.name_any() != "postgresql-aws"
        })
        .map(|c| c.name_any())
        .collect();
    assert!(
        others.is_empty(),
        "other Compositions for PostgreSQLInstance exist in the shared API server: {others:?}"
    );
}

/// Delete the Compositions labelled `label` (those a failed run of a suite left behind: other
/// suites need to find only their own Compositions for PostgreSQLInstance).
pub async fn delete_compositions_labelled(client: &Client, label: &str) {
    let api: Api<Composition> = Api::all(client.clone());
    let lp = ListParams::default().labels(label);
    for c in api.list(&lp).await.unwrap() {
        let _ = api.delete(&c.name_any(), &DeleteParams::default()).await;
    }
}

pub async fn delete_composition(client: &Client, name: &str) {
    let api: Api<Composition> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

pub async fn apply_claim(client: &Client, claim: &Value) {
    apply_json(client, claim, None, false).await.unwrap();
}

/// Wait for the claim's Synced=False and return its (reason, message).
pub async fn wait_error(claims: &Api<PostgreSQLInstance>, name: &str) -> (String, String) {
    let c = wait_for(claims, name, 30, "Synced=False", |c| {
        has_status(c, "Synced", ConditionStatus::False)
    })
    .await;
    let s = cond(&c, "Synced").unwrap();
    (s.reason.clone(), s.message.clone())
}

/// No Instance exists in `ns`.
pub async fn no_instances(client: &Client, ns: &str) {
    let api: Api<Instance> = Api::namespaced(client.clone(), ns);
    let items = api.list(&ListParams::default()).await.unwrap().items;
    assert!(
        items.is_empty(),
        "no composed object may be created, found {:?}",
        items.iter().map(|i| i.name_any()).collect::<Vec<_>>()
    );
}

/// Stand in for the RDS controller: set the Instance's Ready condition.
pub async fn set_instance_ready(
    client: &Client,
    ns: &str,
    name: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    let api: Api<Instance> = Api::namespaced(client.clone(), ns);
    let mut condition = json!({"type": "Ready", "status": status, "reason": reason,
                        "lastTransitionTime": "2024-01-01T00:00:00Z"});
    if !message.is_empty() {
        condition["message"] = json!(message);
    }
    let patch = json!({"status": {
        "conditions": [condition],
        "atProvider": {"status": if status == "True" { "available" } else { "creating" }},
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Stand in for the RDS controller: the Instance is Ready=True Available.
pub async fn set_instance_available(client: &Client, ns: &str, name: &str) {
    set_instance_ready(client, ns, name, "True", "Available", "").await;
}

/// The connection keys the stand-in writes.
pub fn connection_keys() -> BTreeMap<String, String> {
    [
        ("username", "pgadmin"),
        ("password", "s3cr3t-from-the-test"),
        ("endpoint", "db.example.internal"),
        ("host", "db.example.internal"),
        ("port", "5432"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Stand in for the RDS controller: write the Instance's connection Secret (labelled as managed
/// by paved, as the RDS controller labels it).
pub async fn write_instance_secret(client: &Client, ns: &str, instance: &Instance) -> String {
    let name = instance
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .expect("rendered writeConnectionSecretToRef")
        .name
        .clone();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": {paved::claim::MANAGED_BY_LABEL: paved::claim::MANAGED_BY_VALUE}},
        "stringData": connection_keys(),
    });
    apply_json(client, &secret, None, false).await.unwrap();
    name
}

/// The Secret holds every key the stand-in wrote.
pub fn secret_has_all_keys(s: &Secret) -> bool {
    let data = s.data.clone().unwrap_or_default();
    connection_keys()
        .iter()
        .all(|(k, v)| data.get(k).is_some_and(|d| d.0 == v.as_bytes()))
}

/// The seed claim composed and Ready (Instance marked Ready, its Secret written).
pub async fn seed_ready(client: &Client, ns: &str) -> (PostgreSQLInstance, Instance) {
    claim_ready(client, ns, &seed_claim_yaml(ns)).await
}

/// `claim` (the seed's `my-app-db`, perhaps with other fields) applied, composed and Ready:
/// its Instance marked Ready by the stand-in, the Instance's Secret written and published.
pub async fn claim_ready(
    client: &Client,
    ns: &str,
    claim: &Value,
) -> (PostgreSQLInstance, Instance) {
    apply_claim(client, claim).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), ns);
    let inst = wait_for(&instances, "my-app-db-rds-instance", 30, "composed", |_| {
        true
    })
    .await;
    write_instance_secret(client, ns, &inst).await;
    set_instance_available(client, ns, "my-app-db-rds-instance").await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), ns);
    wait_published(client, ns, 30, "published").await;
    let claim = wait_for(&claims, "my-app-db", 30, "Ready", |c| {
        has_status(c, "Ready", ConditionStatus::True)
    })
    .await;
    (
        claim,
        instances.get("my-app-db-rds-instance").await.unwrap(),
    )
}

/// A failpoint that stops the RDS controller at `site` for good (the task hangs there, as if
/// the process had died) and sends the identifier it stopped for.
pub fn failpoint_at(
    site: paved::rds::FailpointSite,
) -> (
    paved::rds::Failpoint,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let fp: paved::rds::Failpoint = Arc::new(move |s, id| {
        let tx = tx.clone();
        let id = id.to_string();
        Box::pin(async move {
            if s == site {
                let _ = tx.send(id);
                futures::future::pending::<()>().await;
            }
        })
    });
    (fp, rx)
}

// ---------------------------------------------------------------------------------------------
// the seed behind the fault proxy (the chaos suite and the scale benchmark)

/// The seed Composition in `region`, its ProviderConfig pointing at a fresh [`FaultProxy`] in
/// front of the emulator, both named `name` and deleted when `cleanup` is dropped.
pub struct SeedBehindProxy {
    pub proxy: super::proxy::FaultProxy,
    pub provider_config: String,
    pub composition: String,
    pub cleanup: super::cluster::ClusterCleanup,
}

impl SeedBehindProxy {
    pub async fn new(
        client: &Client,
        env: &super::E2eEnv,
        name: &str,
        region: &str,
    ) -> SeedBehindProxy {
        let proxy = super::proxy::FaultProxy::start(&env.moto_url).await;
        let mut cleanup = super::cluster::ClusterCleanup::new(env);
        cleanup.composition(name);
        cleanup.provider_config(name);
        super::cluster::apply(
            client,
            &super::fixtures::provider_config(name, &proxy.url()),
        )
        .await
        .expect("ProviderConfig");
        super::cluster::apply(
            client,
            &super::fixtures::seed_composition(name, region, name),
        )
        .await
        .expect("Composition");
        SeedBehindProxy {
            proxy,
            provider_config: name.to_string(),
            composition: name.to_string(),
            cleanup,
        }
    }
}
