//! The RDS controller against the real local control plane (kube-apiserver + etcd) and the RDS
//! emulator over HTTP. Each test has its own namespace, ProviderConfig and AWS region (the
//! emulator partitions state by region), and runs the controller in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "support/faulty_proxy.rs"]
mod faulty_proxy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use paved::api::instance::Instance;
use paved::api::provider_config::ProviderConfig;
use paved::rds::client::{StaticCredentials, http_client, sdk_client};
use paved::rds::{Failpoint, FailpointSite, RdsConfig, RdsMetrics};
use serde_json::{Value, json};

use faulty_proxy::{Faults, FaultyProxy};

// ---------------------------------------------------------------------------------------------
// harness

struct Env {
    client: Client,
    ns: String,
    region: String,
    pc: String,
    rds: aws_sdk_rds::Client,
    instances: Api<Instance>,
    secrets: Api<Secret>,
}

async fn direct_rds(region: &str, endpoint: &str) -> aws_sdk_rds::Client {
    let creds = StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    };
    sdk_client(http_client(), region, Some(endpoint), Some(creds)).await
}

/// Namespace, credentials Secret, ProviderConfig pointing at `endpoint` (the emulator unless
/// given), and an emptied region.
async fn env(prefix: &str, region: &str, endpoint: Option<&str>) -> Env {
    let client = common::client().await;
    common::install_crds(&client).await;
    let ns = common::test_namespace(&client, prefix).await;
    let moto = common::e2e_env().moto_url;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let creds: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-creds"},
        "stringData": {"credentials": "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let pc = format!("pc-{ns}");
    let pcs: Api<ProviderConfig> = Api::all(client.clone());
    let pc_obj: ProviderConfig = serde_json::from_value(json!({
        "apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
        "metadata": {"name": pc},
        "spec": {
            "credentials": {"source": "Secret", "secretRef": {"name": "aws-creds", "key": "credentials", "namespace": ns}},
            "endpoint": {"url": {"type": "Static", "static": endpoint.unwrap_or(&moto)}}
        }
    }))
    .unwrap();
    pcs.patch(
        &pc,
        &PatchParams::apply("paved-tests").force(),
        &Patch::Apply(&pc_obj),
    )
    .await
    .unwrap();
    let rds = direct_rds(region, &moto).await;
    purge_region(&rds).await;
    Env {
        instances: Api::namespaced(client.clone(), &ns),
        secrets,
        client,
        ns,
        region: region.into(),
        pc,
        rds,
    }
}

/// Delete every instance left in this test's region by earlier runs.
async fn purge_region(rds: &aws_sdk_rds::Client) {
    let ids = list_ids(rds).await;
    for id in ids {
        let _ = rds
            .modify_db_instance()
            .db_instance_identifier(&id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await;
        let _ = rds
            .delete_db_instance()
            .db_instance_identifier(&id)
            .skip_final_snapshot(true)
            .send()
            .await;
    }
}

async fn list_ids(rds: &aws_sdk_rds::Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = rds
            .describe_db_instances()
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        ids.extend(
            out.db_instances()
                .iter()
                .filter_map(|i| i.db_instance_identifier().map(str::to_string)),
        );
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return ids;
        }
    }
}

async fn describe(rds: &aws_sdk_rds::Client, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => out.db_instances().first().cloned(),
        Err(e) => {
            let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&e).map(str::to_string);
            assert_eq!(code.as_deref(), Some("DBInstanceNotFound"), "{e:?}");
            None
        }
    }
}

/// A running controller.
struct Ctl {
    handle: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    metrics: Arc<RdsMetrics>,
}

impl Ctl {
    async fn start(env: &Env, cfg: RdsConfig) -> Ctl {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(RdsMetrics::new(&mut registry));
        let ready = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = RdsConfig {
            namespaces: vec![env.ns.clone()],
            ..cfg
        };
        let (client, m, r) = (env.client.clone(), metrics.clone(), ready.clone());
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
        Ctl {
            handle,
            stop: Some(tx),
            metrics,
        }
    }

    /// Kill it where it stands (a crash): nothing runs to completion.
    async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }

    fn calls(&self, op: &str) -> u64 {
        self.metrics.calls(op)
    }

    /// Calls that change something in AWS.
    fn mutating_calls(&self) -> u64 {
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

    fn polls(&self) -> u64 {
        self.metrics.fleet_polls.get()
    }
}

fn fast() -> RdsConfig {
    RdsConfig {
        poll_interval: Duration::from_secs(2),
        transitional_poll_interval: Duration::from_secs(1),
        aws_requests_per_second: 50.0,
        ..RdsConfig::default()
    }
}

/// Wait until `f` holds (checked every 50 ms: for in-process counters, which have no watch).
async fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "not {what} within {secs}s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn instance_json(env: &Env, name: &str, extra: Value) -> Value {
    let mut v = json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
        "metadata": {"name": name},
        "spec": {
            "forProvider": {
                "region": env.region,
                "engine": "postgres",
                "engineVersion": "16.3",
                "instanceClass": "db.t3.micro",
                "allocatedStorage": 20,
                "dbName": "app",
                "applyImmediately": true,
                "skipFinalSnapshot": true
            },
            "providerConfigRef": {"name": env.pc},
            "writeConnectionSecretToRef": {"name": format!("{name}-conn")}
        }
    });
    merge(&mut v, extra);
    v
}

async fn create(env: &Env, name: &str, extra: Value) -> Instance {
    let obj: Instance = serde_json::from_value(instance_json(env, name, extra)).unwrap();
    env.instances
        .create(&PostParams::default(), &obj)
        .await
        .unwrap()
}

async fn patch_spec(env: &Env, name: &str, patch: Value) {
    env.instances
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": patch })),
        )
        .await
        .unwrap();
}

fn cond<'a>(i: &'a Instance, t: &str) -> Option<&'a paved::api::Condition> {
    i.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)
}

fn is(i: &Instance, t: &str, status: &str, reason: &str) -> bool {
    cond(i, t).is_some_and(|c| format!("{:?}", c.status) == status && c.reason == reason)
}

async fn wait_ready(env: &Env, name: &str, secs: u64) -> Instance {
    common::wait_for(
        &env.instances,
        name,
        secs,
        "Ready and Synced",
        |i: &Instance| {
            is(i, "Ready", "True", "Available") && is(i, "Synced", "True", "ReconcileSuccess")
        },
    )
    .await
}

fn external_name(i: &Instance) -> String {
    i.annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .expect("external-name annotation")
}

async fn secret_data(env: &Env, name: &str) -> BTreeMap<String, String> {
    let s = env.secrets.get(name).await.unwrap();
    s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

async fn create_direct(env: &Env, id: &str, tags: &[(&str, &str)]) {
    let mut req = env
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.small")
        .allocated_storage(30)
        .master_username("someone")
        .master_user_password("someone-elses-password");
    for (k, v) in tags {
        req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// tests

/// Create → available → connection Secret with every key; identifier and password persisted;
/// ownership tags; storage increase reaches the emulator; a resync of the available instance
/// writes nothing and calls nothing per instance.
#[tokio::test]
async fn create_secret_storage_increase_and_quiet_resync() {
    let env = env("rds-create", "eu-west-3", None).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(&env, "orders", json!({})).await;
    let i = wait_ready(&env, "orders", 60).await;
    let id = external_name(&i);
    assert!(id.starts_with(&format!("{}-orders-", env.ns)), "{id}");
    assert!(
        i.finalizers()
            .iter()
            .any(|f| f == "finalizer.managedresource.crossplane.io")
    );

    // connection Secret: every key, owned by the Instance
    let conn = secret_data(&env, "orders-conn").await;
    for k in [
        "username", "password", "address", "host", "port", "endpoint", "dbname", "uri",
    ] {
        assert!(
            conn.contains_key(k),
            "connection Secret lacks {k}: {:?}",
            conn.keys()
        );
    }
    let pw = secret_data(&env, "orders-master-password").await["password"].clone();
    assert!(pw.len() >= 32);
    assert_eq!(conn["password"], pw);
    assert_eq!(conn["username"], "postgres");
    assert_eq!(conn["dbname"], "app");
    assert_eq!(
        conn["endpoint"],
        format!("{}:{}", conn["address"], conn["port"])
    );
    assert!(
        conn["uri"].starts_with("postgresql://postgres:"),
        "{}",
        conn["uri"]
    );
    assert!(conn["uri"].ends_with(&format!("@{}/app?sslmode=require", conn["endpoint"])));
    let secret = env.secrets.get("orders-conn").await.unwrap();
    assert_eq!(secret.owner_references()[0].uid, i.uid().unwrap());
    assert_eq!(secret.labels()["app.kubernetes.io/managed-by"], "paved");

    // AWS: owner tags, status mirrors it
    let aws = describe(&env.rds, &id)
        .await
        .expect("instance in the emulator");
    let tags: BTreeMap<_, _> = aws
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(tags["paved.io/owner"], format!("{}/orders", env.ns));
    assert_eq!(tags["paved.io/owner-uid"], i.uid().unwrap());
    let at = i.status.as_ref().unwrap().at_provider.as_ref().unwrap();
    assert_eq!(at.status.as_deref(), Some("available"));
    assert_eq!(at.allocated_storage, Some(20));
    assert_eq!(ctl.calls("CreateDBInstance"), 1);

    // quiet: several polls later, no write to the Instance or its Secret, no per-instance call
    // The first fleet listing after CreateDBInstance may refine status.atProvider once (the
    // create answer and DescribeDBInstances differ slightly); from then on, nothing changes.
    let p = ctl.polls();
    until(30, "one fleet poll after Ready", || ctl.polls() > p).await;
    let p = ctl.polls();
    until(30, "a second fleet poll", || ctl.polls() > p).await;
    let rv_i = env
        .instances
        .get("orders")
        .await
        .unwrap()
        .resource_version();
    let rv_s = env
        .secrets
        .get("orders-conn")
        .await
        .unwrap()
        .resource_version();
    let (polls, describes, mutating) = (
        ctl.polls(),
        ctl.calls("DescribeDBInstances"),
        ctl.mutating_calls(),
    );
    until(30, "3 more fleet polls", || ctl.polls() >= polls + 3).await;
    let polls_delta = ctl.polls() - polls;
    let describes_delta = ctl.calls("DescribeDBInstances") - describes;
    assert!(
        describes_delta <= polls_delta + 1,
        "{describes_delta} describes for {polls_delta} polls"
    );
    assert_eq!(ctl.mutating_calls(), mutating);
    assert_eq!(
        env.instances
            .get("orders")
            .await
            .unwrap()
            .resource_version(),
        rv_i
    );
    assert_eq!(
        env.secrets
            .get("orders-conn")
            .await
            .unwrap()
            .resource_version(),
        rv_s
    );

    // storage increase
    patch_spec(
        &env,
        "orders",
        json!({"forProvider": {"allocatedStorage": 30}}),
    )
    .await;
    common::wait_for(
        &env.instances,
        "orders",
        60,
        "allocatedStorage 30",
        |i: &Instance| {
            i.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|a| a.allocated_storage)
                == Some(30)
        },
    )
    .await;
    assert_eq!(
        describe(&env.rds, &id).await.unwrap().allocated_storage(),
        Some(30)
    );
    assert_eq!(ctl.calls("ModifyDBInstance"), 1);
    ctl.stop().await;
}

/// Drift made behind paved's back is corrected once, and not looped.
#[tokio::test]
async fn out_of_band_drift_is_corrected_once() {
    let env = env("rds-drift", "eu-north-1", None).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(&env, "drift", json!({"spec": {"forProvider": {"backupRetentionPeriod": 7, "tags": {"team": "payments"}}}})).await;
    let i = wait_ready(&env, "drift", 60).await;
    let id = external_name(&i);
    let modifies = ctl.calls("ModifyDBInstance");
    let add_tags = ctl.calls("AddTagsToResource");

    env.rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .backup_retention_period(1)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let arn = describe(&env.rds, &id)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    env.rds
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let aws = describe(&env.rds, &id).await.unwrap();
        let team = aws
            .tag_list()
            .iter()
            .find(|t| t.key() == Some("team"))
            .and_then(|t| t.value())
            .map(str::to_string);
        if aws.backup_retention_period() == Some(7) && team.as_deref() == Some("payments") {
            break;
        }
        assert!(Instant::now() < deadline, "drift not corrected: {aws:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // paved counts a call when its answer is back, which can be just after the describe above saw
    // its effect (the sandbox's RDS shim is one more hop for that answer)
    until(10, "paved's corrections counted", || {
        ctl.calls("ModifyDBInstance") > modifies && ctl.calls("AddTagsToResource") > add_tags
    })
    .await;
    assert_eq!(ctl.calls("ModifyDBInstance"), modifies + 1);
    assert_eq!(ctl.calls("AddTagsToResource"), add_tags + 1);
    // and not looped: three more polls, no more calls
    let polls = ctl.polls();
    until(30, "3 more fleet polls", || ctl.polls() >= polls + 3).await;
    assert_eq!(ctl.calls("ModifyDBInstance"), modifies + 1);
    assert_eq!(ctl.calls("AddTagsToResource"), add_tags + 1);
    wait_ready(&env, "drift", 10).await;
    ctl.stop().await;
}

/// Immutable changes and a storage decrease are refused, naming the field, with no AWS call.
#[tokio::test]
async fn immutable_change_is_refused_without_aws_call() {
    let env = env("rds-immutable", "ca-central-1", None).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(&env, "imm", json!({})).await;
    wait_ready(&env, "imm", 60).await;
    let mutating = ctl.mutating_calls();

    patch_spec(
        &env,
        "imm",
        json!({"forProvider": {"dbName": "other", "allocatedStorage": 10}}),
    )
    .await;
    let i = common::wait_for(
        &env.instances,
        "imm",
        30,
        "Synced=False ImmutableField",
        |i: &Instance| is(i, "Synced", "False", "ImmutableField"),
    )
    .await;
    let msg = &cond(&i, "Synced").unwrap().message;
    assert!(msg.contains("dbName"), "{msg}");
    assert!(msg.contains("allocatedStorage"), "{msg}");
    let polls = ctl.polls();
    until(30, "2 more fleet polls", || ctl.polls() >= polls + 2).await;
    assert_eq!(
        ctl.mutating_calls(),
        mutating,
        "no AWS call for an immutable change"
    );

    // set back: synced again, still no call
    patch_spec(
        &env,
        "imm",
        json!({"forProvider": {"dbName": "app", "allocatedStorage": 20}}),
    )
    .await;
    wait_ready(&env, "imm", 30).await;
    assert_eq!(ctl.mutating_calls(), mutating);
    ctl.stop().await;
}

/// Delete takes a final snapshot; Orphan leaves the instance; an instance already gone is
/// released at once; deletion protection keeps the finalizer with a condition until the spec
/// turns it off.
#[tokio::test]
async fn delete_policies() {
    let env = env("rds-delete", "sa-east-1", None).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(
        &env,
        "snap",
        json!({"spec": {"forProvider": {"skipFinalSnapshot": false}}}),
    )
    .await;
    create(
        &env,
        "orphan",
        json!({"spec": {"deletionPolicy": "Orphan"}}),
    )
    .await;
    create(&env, "gone", json!({})).await;
    create(
        &env,
        "protected",
        json!({"spec": {"forProvider": {"deletionProtection": true}}}),
    )
    .await;
    let mut ids = BTreeMap::new();
    for n in ["snap", "orphan", "gone", "protected"] {
        ids.insert(n, external_name(&wait_ready(&env, n, 60).await));
    }

    // Delete with a final snapshot
    env.instances
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_deleted(&env.instances, "snap", 60).await;
    assert!(describe(&env.rds, &ids["snap"]).await.is_none());
    let snaps = env
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(&ids["snap"])
        .send()
        .await
        .unwrap();
    let names: Vec<_> = snaps
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{}-final-", ids["snap"]))),
        "no final snapshot: {names:?}"
    );

    // Orphan
    let deletes = ctl.calls("DeleteDBInstance");
    env.instances
        .delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_deleted(&env.instances, "orphan", 30).await;
    assert!(
        describe(&env.rds, &ids["orphan"]).await.is_some(),
        "orphaned instance must survive"
    );
    assert_eq!(ctl.calls("DeleteDBInstance"), deletes);
    // its generated password Secret is kept (no owner any more): the database still runs
    let pw = env.secrets.get("orphan-master-password").await.unwrap();
    assert!(pw.owner_references().is_empty());

    // already gone in AWS
    env.rds
        .delete_db_instance()
        .db_instance_identifier(&ids["gone"])
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    env.instances
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_deleted(&env.instances, "gone", 30).await;
    assert_eq!(ctl.calls("DeleteDBInstance"), deletes);

    // deletion protection
    env.instances
        .delete("protected", &DeleteParams::default())
        .await
        .unwrap();
    let i = common::wait_for(
        &env.instances,
        "protected",
        30,
        "Synced=False DeletionProtection",
        |i: &Instance| is(i, "Synced", "False", "DeletionProtection"),
    )
    .await;
    assert!(
        i.finalizers()
            .iter()
            .any(|f| f == "finalizer.managedresource.crossplane.io")
    );
    assert!(describe(&env.rds, &ids["protected"]).await.is_some());
    patch_spec(
        &env,
        "protected",
        json!({"forProvider": {"deletionProtection": false}}),
    )
    .await;
    common::wait_deleted(&env.instances, "protected", 60).await;
    assert!(describe(&env.rds, &ids["protected"]).await.is_none());
    ctl.stop().await;
}

/// Observe-only adopts a pre-existing instance by external-name, reports it, never changes it,
/// and leaves it behind on delete.
#[tokio::test]
async fn observe_only_adoption() {
    let env = env("rds-observe", "ap-south-1", None).await;
    create_direct(&env, "legacy-db", &[("owner", "dba-team")]).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(
        &env,
        "legacy",
        json!({
            "metadata": {"annotations": {"crossplane.io/external-name": "legacy-db"}},
            "spec": {"managementPolicies": ["Observe"], "forProvider": {"instanceClass": "db.t3.large"}}
        }),
    )
    .await;
    let i = common::wait_for(&env.instances, "legacy", 60, "Ready", |i: &Instance| {
        is(i, "Ready", "True", "Available")
    })
    .await;
    let at = i.status.as_ref().unwrap().at_provider.as_ref().unwrap();
    assert_eq!(at.identifier.as_deref(), Some("legacy-db"));
    assert_eq!(at.instance_class.as_deref(), Some("db.t3.small"));
    assert_eq!(at.username.as_deref(), Some("someone"));
    let synced = cond(&i, "Synced").unwrap();
    assert!(
        synced.message.contains("instanceClass"),
        "drift reported: {synced:?}"
    );
    // connection details without a password (paved does not know it)
    let conn = secret_data(&env, "legacy-conn").await;
    assert_eq!(conn["username"], "someone");
    assert!(!conn.contains_key("password"));
    assert_eq!(ctl.mutating_calls(), 0);

    env.instances
        .delete("legacy", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_deleted(&env.instances, "legacy", 30).await;
    assert!(describe(&env.rds, "legacy-db").await.is_some());
    assert_eq!(ctl.mutating_calls(), 0);
    ctl.stop().await;
}

/// An identifier that exists without this object's ownership tags is not touched.
#[tokio::test]
async fn foreign_instance_is_refused() {
    let env = env("rds-foreign", "ap-southeast-2", None).await;
    create_direct(
        &env,
        "theirs",
        &[
            ("paved.io/owner", "other-ns/other"),
            ("paved.io/owner-uid", "1234"),
        ],
    )
    .await;
    let ctl = Ctl::start(&env, fast()).await;
    create(
        &env,
        "mine",
        json!({"metadata": {"annotations": {"crossplane.io/external-name": "theirs"}}}),
    )
    .await;
    let i = common::wait_for(
        &env.instances,
        "mine",
        60,
        "Synced=False ExternalResourceNotOwned",
        |i: &Instance| is(i, "Synced", "False", "ExternalResourceNotOwned"),
    )
    .await;
    let msg = &cond(&i, "Synced").unwrap().message;
    assert!(
        msg.contains("other-ns/other") && msg.contains("managementPolicies"),
        "{msg}"
    );
    assert!(env.secrets.get_opt("mine-conn").await.unwrap().is_none());
    assert_eq!(ctl.mutating_calls(), 0);
    // deleting the object does not delete their instance
    env.instances
        .delete("mine", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_deleted(&env.instances, "mine", 30).await;
    assert!(describe(&env.rds, "theirs").await.is_some());
    assert_eq!(ctl.mutating_calls(), 0);
    ctl.stop().await;
}

/// crossplane.io/paused: "true" stops all AWS calls; unpausing resumes.
#[tokio::test]
async fn paused_object_makes_no_calls() {
    let env = env("rds-paused", "us-west-1", None).await;
    let ctl = Ctl::start(&env, fast()).await;
    create(
        &env,
        "zzz",
        json!({"metadata": {"annotations": {"crossplane.io/paused": "true"}}}),
    )
    .await;
    common::wait_for(
        &env.instances,
        "zzz",
        30,
        "Synced=False ReconcilePaused",
        |i: &Instance| is(i, "Synced", "False", "ReconcilePaused"),
    )
    .await;
    // a few poll intervals: nothing at all reaches AWS
    let quiet = tokio::time::timeout(
        Duration::from_secs(5),
        until(5, "any AWS call", || ctl.metrics.total_calls() > 0),
    )
    .await;
    assert!(quiet.is_err(), "a paused object made AWS calls");
    assert_eq!(ctl.metrics.total_calls(), 0);
    assert!(list_ids(&env.rds).await.is_empty());

    env.instances
        .patch(
            "zzz",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"crossplane.io/paused": "false"}}})),
        )
        .await
        .unwrap();
    wait_ready(&env, "zzz", 60).await;
    assert_eq!(ctl.calls("CreateDBInstance"), 1);
    ctl.stop().await;
}

/// Stop the controller at a failpoint, restart it, and check: one instance, the password in
/// the Secret is the one CreateDBInstance was given (recorded by the proxy: RDS never returns it).
async fn crash_at(site: FailpointSite, prefix: &str, region: &str) {
    let proxy = FaultyProxy::start(&common::e2e_env().moto_url, Faults::default()).await;
    let env = env(prefix, region, Some(&proxy.url)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let fp: Failpoint = Arc::new(move |s, id| {
        let tx = tx.clone();
        let id = id.to_string();
        Box::pin(async move {
            if s == site {
                let _ = tx.send(id);
                futures::future::pending::<()>().await;
            }
        })
    });
    let ctl = Ctl::start(
        &env,
        RdsConfig {
            failpoint: Some(fp),
            ..fast()
        },
    )
    .await;
    create(&env, "crashy", json!({})).await;
    let id = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .unwrap()
        .unwrap();
    ctl.kill().await;

    // persisted before the crash
    let i = env.instances.get("crashy").await.unwrap();
    assert_eq!(external_name(&i), id);
    let pw = secret_data(&env, "crashy-master-password").await["password"].clone();
    let creates_before = proxy.stats.forwarded_of("CreateDBInstance").len();
    match site {
        FailpointSite::BeforeCreate => {
            assert_eq!(creates_before, 0);
            assert!(describe(&env.rds, &id).await.is_none());
        }
        FailpointSite::AfterCreate => {
            assert_eq!(creates_before, 1);
            assert!(describe(&env.rds, &id).await.is_some());
        }
        other => panic!("crash_at does not cover {other:?}"),
    }

    let ctl = Ctl::start(&env, fast()).await;
    wait_ready(&env, "crashy", 60).await;
    let creates = proxy.stats.forwarded_of("CreateDBInstance");
    assert_eq!(
        creates.len(),
        1,
        "exactly one CreateDBInstance across both runs"
    );
    assert_eq!(
        creates[0].params.get("MasterUserPassword"),
        Some(&pw),
        "password is the Secret's"
    );
    assert_eq!(
        list_ids(&env.rds).await,
        vec![id.clone()],
        "exactly one instance"
    );
    assert_eq!(secret_data(&env, "crashy-conn").await["password"], pw);
    ctl.stop().await;
}

#[tokio::test]
async fn crash_before_create_is_safe() {
    crash_at(
        FailpointSite::BeforeCreate,
        "rds-crash-before",
        "eu-central-1",
    )
    .await;
}

#[tokio::test]
async fn crash_after_create_is_safe() {
    crash_at(FailpointSite::AfterCreate, "rds-crash-after", "eu-west-2").await;
}

/// 30% throttling and 10% 500s in front of the emulator: everything converges, with a bounded
/// number of calls compared to the same work without faults.
#[tokio::test]
async fn converges_through_throttling_and_5xx() {
    let proxy = FaultyProxy::start(&common::e2e_env().moto_url, Faults::default()).await;
    let env = env("rds-faults", "ap-northeast-3", Some(&proxy.url)).await;
    let cfg = RdsConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let ctl = Ctl::start(&env, cfg).await;
    let started = Instant::now();
    let clean_names: Vec<String> = (0..10).map(|i| format!("clean-{i}")).collect();
    let faulty_names: Vec<String> = (0..10).map(|i| format!("faulty-{i}")).collect();
    for n in &clean_names {
        create(
            &env,
            n.as_str(),
            json!({"spec": {"forProvider": {"tags": {"k": "v"}}}}),
        )
        .await;
    }
    for n in &clean_names {
        wait_ready(&env, n.as_str(), 60).await;
    }
    let clean = proxy.stats.requests.load(Ordering::SeqCst);
    let clean_secs = started.elapsed().as_secs_f64();

    proxy.set_faults(Faults {
        throttle: 0.3,
        server_error: 0.1,
    });
    let before = proxy.stats.requests.load(Ordering::SeqCst);
    let started = Instant::now();
    for n in &faulty_names {
        create(
            &env,
            n.as_str(),
            json!({"spec": {"forProvider": {"tags": {"k": "v"}}}}),
        )
        .await;
    }
    for n in &faulty_names {
        wait_ready(&env, n.as_str(), 120).await;
    }
    let faulty = proxy.stats.requests.load(Ordering::SeqCst) - before;
    let s = &proxy.stats;
    println!(
        "fault-free: {clean} requests in {clean_secs:.1}s; with faults: {faulty} requests in {:.1}s ({} throttled, {} 500s in total)",
        started.elapsed().as_secs_f64(),
        s.throttled.load(Ordering::SeqCst),
        s.server_errors.load(Ordering::SeqCst)
    );
    assert!(
        faulty <= 3 * clean + 10,
        "{faulty} requests with faults vs {clean} without"
    );
    assert_eq!(
        list_ids(&env.rds).await.len(),
        20,
        "one instance per object, no duplicates"
    );
    assert!(
        ctl.metrics
            .calls_with_outcome("CreateDBInstance", "success")
            == 20
    );
    ctl.stop().await;
}

/// 200 idle instances cost about ceil(200/100) = 2 DescribeDBInstances per poll interval, and
/// no Kubernetes writes.
#[tokio::test]
async fn idle_fleet_costs_one_listing_per_poll() {
    const N: usize = 200;
    let env = env("rds-fleet", "us-east-2", None).await;
    let cfg = RdsConfig {
        poll_interval: Duration::from_secs(3),
        aws_requests_per_second: 100.0,
        concurrency: 64,
        ..fast()
    };
    let ctl = Ctl::start(&env, cfg).await;
    let started = Instant::now();
    let names: Vec<String> = (0..N).map(|i| format!("db-{i:03}")).collect();
    for chunk in names.chunks(25) {
        futures::future::join_all(chunk.iter().map(|n| create(&env, n, json!({})))).await;
    }
    let lp = ListParams::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = env.instances.list(&lp).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|i| {
                is(i, "Ready", "True", "Available") && is(i, "Synced", "True", "ReconcileSuccess")
            })
            .count();
        if ready == N {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready}/{N} ready");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{N} instances ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(list_ids(&env.rds).await.len(), N);

    let versions = |l: kube::core::ObjectList<Instance>| -> BTreeMap<String, String> {
        l.items
            .iter()
            .map(|i| (i.name_any(), i.resource_version().unwrap_or_default()))
            .collect()
    };
    // let the last status writes settle: one full poll
    let p = ctl.polls();
    until(30, "one more poll", || ctl.polls() > p).await;
    let before = versions(env.instances.list(&lp).await.unwrap());
    let (polls, describes, mutating) = (
        ctl.polls(),
        ctl.calls("DescribeDBInstances"),
        ctl.mutating_calls(),
    );
    let window = Instant::now();
    until(60, "4 more fleet polls", || ctl.polls() >= polls + 4).await;
    let polls_delta = ctl.polls() - polls;
    let describes_delta = ctl.calls("DescribeDBInstances") - describes;
    let secs = window.elapsed().as_secs_f64();
    println!(
        "idle: {describes_delta} DescribeDBInstances over {polls_delta} polls in {secs:.1}s ({:.2} per poll)",
        describes_delta as f64 / polls_delta as f64
    );
    // 2 pages per poll; one poll may be half-way at the window's edges
    assert!(
        describes_delta >= 2 * polls_delta - 2 && describes_delta <= 2 * polls_delta + 2,
        "{describes_delta} describes for {polls_delta} polls"
    );
    assert_eq!(
        ctl.mutating_calls(),
        mutating,
        "no mutating call while idle"
    );
    let after = versions(env.instances.list(&lp).await.unwrap());
    assert_eq!(before, after, "no Kubernetes write while idle");

    // clean up: the region of this test is reused by the next run
    ctl.stop().await;
    purge_region(&env.rds).await;
}

/// The Kubernetes writes the RDS controller makes for an Instance to reach Ready, counted twice:
/// by paved's own `paved_rds_kube_writes` metric and, for the Instance itself, by the
/// resourceVersions a watch of the API server sees. Per Instance, at most: one metadata patch
/// (finalizer + external-name annotation, before CreateDBInstance), one master password Secret
/// (before CreateDBInstance), one status apply (the emulator answers CreateDBInstance with an
/// `available` instance; real RDS adds one `creating` status), one connection Secret, and one
/// Event (creation). Several fleet polls later, still nothing more.
#[tokio::test]
async fn writes_per_instance_to_ready() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    const N: usize = 30;
    let env = env("rds-writes", "me-south-1", None).await;

    // Every version of every Instance the API server reports.
    let versions: Arc<std::sync::Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>> =
        Arc::default();
    let seen = versions.clone();
    let watch = tokio::spawn(
        watcher(env.instances.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each(move |o| {
                if let Ok(i) = o {
                    seen.lock()
                        .unwrap()
                        .entry(i.name_any())
                        .or_default()
                        .insert(i.resource_version().unwrap_or_default());
                }
                futures::future::ready(())
            }),
    );

    let cfg = RdsConfig {
        poll_interval: Duration::from_secs(2),
        aws_requests_per_second: 20.0,
        ..fast()
    };
    let ctl = Ctl::start(&env, cfg).await;
    let names: Vec<String> = (0..N).map(|i| format!("w-{i:02}")).collect();
    futures::future::join_all(names.iter().map(|n| create(&env, n, json!({})))).await;
    let lp = ListParams::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = env.instances.list(&lp).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|i| {
                is(i, "Ready", "True", "Available") && is(i, "Synced", "True", "ReconcileSuccess")
            })
            .count();
        if ready == N {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready}/{N} ready");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A few fleet polls later: the listing must not rewrite anything the create answer wrote.
    let p = ctl.polls();
    until(30, "3 fleet polls after Ready", || ctl.polls() >= p + 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.abort();

    let m = &ctl.metrics;
    let per = |k: &str| m.writes(k) as f64 / N as f64;
    let kinds = paved::rds::metrics::KUBE_WRITES;
    let breakdown: Vec<String> = kinds.iter().map(|k| format!("{k}={:.2}", per(k))).collect();
    let total = m.total_writes() as f64 / N as f64;
    let instance_updates: usize = versions.lock().unwrap().values().map(|v| v.len() - 1).sum();
    println!(
        "{N} Instances: {total:.2} writes per Instance ({}); Instance versions after create per Instance (API server watch): {:.2}",
        breakdown.join(", "),
        instance_updates as f64 / N as f64
    );
    assert_eq!(
        m.writes("instance_metadata"),
        N as u64,
        "one metadata patch each"
    );
    assert_eq!(
        m.writes("password_secret"),
        N as u64,
        "one password Secret each"
    );
    assert_eq!(
        m.writes("connection_secret"),
        N as u64,
        "one connection Secret each"
    );
    assert_eq!(
        m.writes("instance_status"),
        N as u64,
        "one status write each"
    );
    assert_eq!(m.writes("event"), N as u64, "one creation Event each");
    assert!(total <= 5.0, "{total} writes per Instance");
    assert_eq!(
        instance_updates,
        2 * N,
        "the API server saw exactly metadata + status per Instance"
    );
    assert_eq!(ctl.calls("CreateDBInstance"), N as u64);

    ctl.stop().await;
    purge_region(&env.rds).await;
}

/// Set one key of a Secret (merge patch), as a user rotating a password would.
async fn set_secret_key(env: &Env, name: &str, key: &str, value: &str) {
    env.secrets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "stringData": { key: value } })),
        )
        .await
        .unwrap();
}

fn reconciles(ctl: &Ctl) -> u64 {
    ctl.metrics
        .reconciles
        .get_or_create(&paved::rds::metrics::ReconcileLabels {
            result: "success".into(),
        })
        .get()
}

/// Master password rotation, for a generated password (`<name>-master-password`) and for one
/// the user keeps in passwordSecretRef: changing the Secret sends exactly one ModifyDBInstance
/// with the new MasterUserPassword (recorded by the proxy: RDS never returns it), the connection
/// Secret then publishes it, an Event says so without the password, and forced resyncs (an
/// edit of the Instance, several fleet polls) send nothing more.
#[tokio::test]
async fn master_password_rotation() {
    let proxy = FaultyProxy::start(&common::e2e_env().moto_url, Faults::default()).await;
    let env = env("rds-rotate", "ap-southeast-1", Some(&proxy.url)).await;
    let byo: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "byo-password"},
        "stringData": {"pw": "first-Password-0123456789"}
    }))
    .unwrap();
    env.secrets
        .create(&PostParams::default(), &byo)
        .await
        .unwrap();
    let ctl = Ctl::start(&env, fast()).await;
    create(&env, "gen", json!({})).await;
    create(
        &env,
        "byo",
        json!({"spec": {"forProvider": {"passwordSecretRef": {"name": "byo-password", "key": "pw"}}}}),
    )
    .await;
    let mut ids = BTreeMap::new();
    for n in ["gen", "byo"] {
        ids.insert(n, external_name(&wait_ready(&env, n, 60).await));
    }
    assert_eq!(
        secret_data(&env, "byo-conn").await["password"],
        "first-Password-0123456789"
    );
    assert!(proxy.stats.forwarded_of("ModifyDBInstance").is_empty());
    assert_eq!(ctl.calls("ModifyDBInstance"), 0);

    // rotate both
    let new = BTreeMap::from([
        ("gen", "rotated-Generated-0123456789"),
        ("byo", "rotated-Byo-0123456789"),
    ]);
    set_secret_key(&env, "gen-master-password", "password", new["gen"]).await;
    set_secret_key(&env, "byo-password", "pw", new["byo"]).await;
    for n in ["gen", "byo"] {
        let want = new[n].to_string();
        common::wait_for(
            &env.secrets,
            &format!("{n}-conn"),
            30,
            "the connection Secret with the new password",
            move |s: &Secret| {
                s.data
                    .as_ref()
                    .and_then(|d| d.get("password"))
                    .is_some_and(|p| p.0 == want.as_bytes())
            },
        )
        .await;
        let conn = secret_data(&env, &format!("{n}-conn")).await;
        assert!(
            conn["uri"].contains(&format!(":{}@", new[n])),
            "uri with the new password"
        );
    }
    let modifies = proxy.stats.forwarded_of("ModifyDBInstance");
    assert_eq!(modifies.len(), 2, "one ModifyDBInstance per Instance");
    for n in ["gen", "byo"] {
        let m: Vec<_> = modifies
            .iter()
            .filter(|s| s.params.get("DBInstanceIdentifier") == Some(&ids[n]))
            .collect();
        assert_eq!(m.len(), 1, "{n}: exactly one ModifyDBInstance");
        assert_eq!(
            m[0].params.get("MasterUserPassword").map(String::as_str),
            Some(new[n]),
            "{n}: the new password reached RDS"
        );
    }
    assert_eq!(
        ctl.calls("ModifyDBInstance"),
        2,
        "counted in the AWS call metric"
    );

    // an Event per rotation, without the password; nor is it in the Instance
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rotated: Vec<_> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("PasswordRotated"))
            .collect();
        if rotated.len() == 2 {
            for e in &rotated {
                let text = serde_json::to_string(e).unwrap();
                assert!(!new.values().any(|p| text.contains(p)), "{text}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PasswordRotated events: {rotated:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in ["gen", "byo"] {
        let i = wait_ready(&env, n, 10).await;
        let text = serde_json::to_string(&i).unwrap();
        assert!(!text.contains(new[n]), "password in the Instance: {text}");
    }

    // forced resync: an edit of each Instance, then several fleet polls: nothing more is sent
    let before = reconciles(&ctl);
    for n in ["gen", "byo"] {
        env.instances
            .patch(
                n,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"annotations": {"paved.test/resync": "1"}}})),
            )
            .await
            .unwrap();
    }
    let polls = ctl.polls();
    until(30, "3 more fleet polls", || ctl.polls() >= polls + 3).await;
    assert!(
        reconciles(&ctl) >= before + 2,
        "the Instances were reconciled"
    );
    assert_eq!(proxy.stats.forwarded_of("ModifyDBInstance").len(), 2);
    assert_eq!(ctl.calls("ModifyDBInstance"), 2);
    for n in ["gen", "byo"] {
        assert_eq!(
            secret_data(&env, &format!("{n}-conn")).await["password"],
            new[n]
        );
        wait_ready(&env, n, 10).await;
    }
    ctl.stop().await;
}

/// A crash between the ModifyDBInstance that carries a new master password and the rewrite of
/// the connection Secret: the next run sends the same password once more, then publishes it,
/// then sends nothing.
#[tokio::test]
async fn crash_after_password_modify_is_safe() {
    let proxy = FaultyProxy::start(&common::e2e_env().moto_url, Faults::default()).await;
    let env = env("rds-rotate-crash", "ap-northeast-1", Some(&proxy.url)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let fp: Failpoint = Arc::new(move |s, id| {
        let tx = tx.clone();
        let id = id.to_string();
        Box::pin(async move {
            if s == FailpointSite::AfterPasswordModify {
                let _ = tx.send(id);
                futures::future::pending::<()>().await;
            }
        })
    });
    let ctl = Ctl::start(
        &env,
        RdsConfig {
            failpoint: Some(fp),
            ..fast()
        },
    )
    .await;
    create(&env, "crashy", json!({})).await;
    let id = external_name(&wait_ready(&env, "crashy", 60).await);
    let old = secret_data(&env, "crashy-conn").await["password"].clone();
    let new = "after-the-Crash-0123456789";
    set_secret_key(&env, "crashy-master-password", "password", new).await;
    let at = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at, id);
    ctl.kill().await;
    let sent = proxy.stats.forwarded_of("ModifyDBInstance");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].params.get("MasterUserPassword").map(String::as_str),
        Some(new)
    );
    assert_eq!(
        secret_data(&env, "crashy-conn").await["password"],
        old,
        "the crash came before the connection Secret was rewritten"
    );

    let ctl = Ctl::start(&env, fast()).await;
    common::wait_for(
        &env.secrets,
        "crashy-conn",
        30,
        "the connection Secret with the new password",
        |s: &Secret| {
            s.data
                .as_ref()
                .and_then(|d| d.get("password"))
                .is_some_and(|p| p.0 == new.as_bytes())
        },
    )
    .await;
    let sent = proxy.stats.forwarded_of("ModifyDBInstance");
    assert_eq!(sent.len(), 2, "sent once more after the restart");
    assert!(
        sent.iter()
            .all(|s| s.params.get("MasterUserPassword").map(String::as_str) == Some(new)),
        "the same password both times"
    );
    let polls = ctl.polls();
    until(30, "3 more fleet polls", || ctl.polls() >= polls + 3).await;
    assert_eq!(proxy.stats.forwarded_of("ModifyDBInstance").len(), 2);
    wait_ready(&env, "crashy", 10).await;
    ctl.stop().await;
}
