//! The claim tells the truth about its composed resources (issue 17): the claim controller and
//! the RDS controller in-process, against the real local API server and the RDS emulator behind
//! the fault proxy (where the emulator is too permissive, the proxy answers as AWS refuses).
//! Every scenario asserts the claim's reason and that its message names the composed resource
//! (or the Secret) and quotes what it says; the short `status.problem` (the PROBLEM printer
//! column) is read as kubectl prints it.
//!
//! Each test creates a Composition for PostgreSQLInstance of its own (the seed's, in the test's
//! region, pointing at its ProviderConfig): `.config/nextest.toml` runs this binary in the
//! `compositions` group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use paved::api::PostgreSQLInstance;
use serde_json::json;

/// The claim of every test, and what paved composes for it.
const CLAIM: &str = "db";
const INSTANCE: &str = "db-rds-instance";
const SECRET: &str = "db-credentials";

/// A test's world: its namespace and ProviderConfig (through the fault proxy), a Composition of
/// its own, and both controllers running on the namespace.
struct World {
    env: RdsEnv,
    proxy: FaultProxy,
    composition: String,
    claims: Api<PostgreSQLInstance>,
    rds: Option<RdsController>,
    ctl: Option<ClaimController>,
    _cleanup: ClusterCleanup,
}

impl World {
    async fn new(prefix: &str, region: &str) -> World {
        let e2e = e2e_env();
        let proxy = FaultProxy::start(&e2e.moto_url).await;
        let env = RdsEnv::new(prefix, region, Some(&proxy.url())).await;
        let composition = format!("truth-{}", env.ns);
        let mut cleanup = ClusterCleanup::new(&e2e);
        cleanup.composition(&composition);
        cleanup.provider_config(&env.pc);
        let mut c = seed_composition(&composition, region, &env.pc);
        c["metadata"]["labels"] = json!({"paved-test": "truth"});
        apply(&env.client, &c).await.expect("Composition");
        let rds = RdsController::start(&env.client, &env.ns, fast()).await;
        let ctl = ClaimController::start(&env.client, &env.ns, Duration::from_secs(600)).await;
        World {
            claims: Api::namespaced(env.client.clone(), &env.ns),
            env,
            proxy,
            composition,
            rds: Some(rds),
            ctl: Some(ctl),
            _cleanup: cleanup,
        }
    }

    fn ns(&self) -> &str {
        &self.env.ns
    }

    fn ctl(&self) -> &ClaimController {
        self.ctl.as_ref().unwrap()
    }

    /// "rds-instance (Instance <ns>/db-rds-instance)": how the claim names its Instance.
    fn instance_words(&self) -> String {
        format!("rds-instance (Instance {}/{INSTANCE})", self.ns())
    }

    async fn apply_claim(&self, storage: i64) {
        let mut c = seed_claim(CLAIM, self.ns(), &self.composition);
        c["spec"]["parameters"]["storageGB"] = json!(storage);
        apply_claim(&self.env.client, &c).await;
    }

    async fn patch_claim(&self, patch: serde_json::Value) {
        self.claims
            .patch(CLAIM, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn wait_claim(
        &self,
        secs: u64,
        what: &str,
        cond: impl Fn(&PostgreSQLInstance) -> bool,
    ) -> PostgreSQLInstance {
        wait_for(&self.claims, CLAIM, secs, what, cond).await
    }

    /// The claim Ready and Synced, its Secret published.
    async fn wait_claim_ready(&self) -> PostgreSQLInstance {
        self.wait_claim(90, "Ready and Synced", |c| {
            is(c, "Ready", "True", "Available")
                && is(c, "Synced", "True", "ReconcileSuccess")
                && problem(c).is_none()
        })
        .await
    }

    async fn stop(mut self) {
        if let Some(c) = self.ctl.take() {
            c.stop().await;
        }
        if let Some(r) = self.rds.take() {
            r.stop().await;
        }
    }
}

fn problem(c: &PostgreSQLInstance) -> Option<String> {
    c.status.as_ref().and_then(|s| s.problem.clone())
}

/// (reason, message) of a condition.
fn said(c: &impl Conditioned, t: &str) -> (String, String) {
    let c = cond(c, t).unwrap_or_else(|| panic!("no {t} condition"));
    (c.reason.clone(), c.message.clone())
}

/// The claim's row as `kubectl get -o wide` prints it, with the header.
fn kubectl_wide(ns: &str) -> String {
    let out = kubectl(&[
        "get",
        "postgresqlinstances.database.example.com",
        CLAIM,
        "-n",
        ns,
        "-o",
        "wide",
    ]);
    assert!(
        out.status.success(),
        "kubectl get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// (a) An immutable change reaches the composed Instance (a major version upgrade without
/// allowMajorVersionUpgrade): the Instance is Synced=False ImmutableField; the claim says
/// ComposedResourceError naming the Instance and quoting its message, stays Ready (the database
/// still runs), and `kubectl get` shows the problem in the PROBLEM column. Undoing the change
/// makes the claim Synced again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_change_shows_on_the_claim_naming_the_instance() {
    let w = World::new("truth-immutable", "af-south-1").await;
    w.apply_claim(20).await;
    w.wait_claim_ready().await;

    w.patch_claim(json!({"spec": {"parameters": {"version": "16"}}}))
        .await;
    let inst = w
        .env
        .wait_synced_false(INSTANCE, "ImmutableField", 60)
        .await;
    let (_, inst_msg) = said(&inst, "Synced");
    assert!(inst_msg.contains("major version upgrade"), "{inst_msg}");
    let words = w.instance_words();
    let claim = w
        .wait_claim(30, "Synced=False ComposedResourceError", |c| {
            is(c, "Synced", "False", "ComposedResourceError")
        })
        .await;
    let (_, msg) = said(&claim, "Synced");
    assert_eq!(msg, format!("{words}: ImmutableField: {inst_msg}"));
    // The database still runs: Ready says so.
    assert!(
        is(&claim, "Ready", "True", "Available"),
        "{:?}",
        claim.status
    );
    assert_eq!(
        problem(&claim).as_deref(),
        Some("Blocked: rds-instance: ImmutableField")
    );

    // (e) The printer column, as the API server serves it and kubectl prints it.
    let crds: Api<CustomResourceDefinition> = Api::all(w.env.client.clone());
    let crd = crds
        .get("postgresqlinstances.database.example.com")
        .await
        .unwrap();
    let col = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == "PROBLEM")
        .cloned()
        .expect("a PROBLEM column");
    assert_eq!(col.json_path, ".status.problem");
    assert_eq!(col.priority, None, "shown by plain kubectl get");
    let table = kubectl_wide(w.ns());
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PROBLEM"), "{table}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(CLAIM) && row.contains("Blocked: rds-instance: ImmutableField"),
        "{table}"
    );
    eprintln!("{table}");

    // Set back: Synced again, no problem.
    w.patch_claim(json!({"spec": {"parameters": {"version": "14"}}}))
        .await;
    w.wait_claim_ready().await;
    w.stop().await;
}

/// (b) AWS refuses: the fault proxy answers CreateDBInstance as AWS does for a storage size it
/// does not accept. Throttled first: the claim waits (Synced=False Waiting, Ready=False
/// Waiting), never "Creating"; then refused: Blocked, quoting AWS's code and message and naming
/// the Instance. A spec change after AWS accepts again brings it to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_refusal_shows_on_the_claim() {
    let w = World::new("truth-refusal", "ap-east-1").await;
    let words = w.instance_words();
    w.proxy
        .set_refusal("CreateDBInstance", Some(("Throttling", "Rate exceeded")));
    w.apply_claim(20).await;
    let claim = w
        .wait_claim(60, "Ready=False Waiting", |c| {
            is(c, "Ready", "False", "Waiting") && is(c, "Synced", "False", "Waiting")
        })
        .await;
    let (_, msg) = said(&claim, "Ready");
    assert!(
        msg.starts_with(&format!("{words}: AWSUnavailable: ")) && msg.contains("Throttling"),
        "{msg}"
    );
    assert!(!msg.contains("retrying in"), "no countdown quoted: {msg}");
    assert_eq!(
        problem(&claim).as_deref(),
        Some("Waiting: rds-instance: AWSUnavailable")
    );

    let refusal = "Invalid storage size for engine name postgres and storage type gp2: 20";
    w.proxy
        .set_refusal("CreateDBInstance", Some(("InvalidParameterValue", refusal)));
    let claim = w
        .wait_claim(60, "Ready=False Blocked", |c| {
            is(c, "Ready", "False", "Blocked")
        })
        .await;
    let quoted = format!("InvalidParameterValue: {refusal}");
    for t in ["Synced", "Ready"] {
        let (reason, msg) = said(&claim, t);
        assert!(
            msg.starts_with(&format!("{words}: AWSError: ")) && msg.contains(&quoted),
            "{t} {reason}: {msg}"
        );
    }
    assert!(is(&claim, "Synced", "False", "ComposedResourceError"));
    assert_eq!(
        problem(&claim).as_deref(),
        Some("Blocked: rds-instance: AWSError")
    );
    let table = kubectl_wide(w.ns());
    assert!(table.contains("Blocked: rds-instance: AWSError"), "{table}");

    // AWS accepts again; a spec change retries at once.
    w.proxy.set_refusal("CreateDBInstance", None);
    w.patch_claim(json!({"spec": {"parameters": {"storageGB": 21}}}))
        .await;
    w.wait_claim_ready().await;
    w.stop().await;
}

/// (c) The claim's connection Secret cannot be written (a Secret of that name exists that paved
/// does not own) while its Instance is Ready: Ready says Available, from the Instance observed
/// in the same reconcile, and Synced says why the Secret is not written, naming it. Nothing is
/// written on the retries while nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_instance_when_the_secret_cannot_be_written() {
    let w = World::new("truth-secret", "me-central-1").await;
    let foreign = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": w.ns()}, "stringData": {"mine": "yes"}});
    w.env
        .secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value::<Secret>(foreign).unwrap(),
        )
        .await
        .unwrap();
    w.apply_claim(20).await;
    w.env.wait_ready(INSTANCE, 60).await;
    let claim = w
        .wait_claim(60, "Ready=True with Synced=False", |c| {
            is(c, "Ready", "True", "Available") && is(c, "Synced", "False", "ReconcileError")
        })
        .await;
    let (_, msg) = said(&claim, "Synced");
    assert!(
        msg.contains(&format!("Secret {}/{SECRET}", w.ns()))
            && msg.contains("is not owned by this claim"),
        "{msg}"
    );
    assert_eq!(
        problem(&claim).as_deref(),
        Some("ReconcileError: ConnectionSecretConflict")
    );
    // The Secret is left as it was.
    let data = w.env.secret_data(SECRET).await;
    assert_eq!(data.keys().collect::<Vec<_>>(), ["mine"]);

    // Another reconcile of the same failure (woken by an annotation) writes nothing.
    let ctl = w.ctl();
    let (writes, from) = (ctl.metrics.writes_total(), ctl.metrics.reconciles_total());
    w.patch_claim(json!({"metadata": {"annotations": {"paved-test/poke": "1"}}}))
        .await;
    let rv = w.claims.get(CLAIM).await.unwrap().resource_version();
    ctl.wait_reconciles(from, 1, 60).await;
    assert_eq!(
        ctl.metrics.writes_total(),
        writes,
        "{}",
        ctl.writes_by_operation()
    );
    assert_eq!(w.claims.get(CLAIM).await.unwrap().resource_version(), rv);
    w.stop().await;
}

/// (d) A paused claim (`crossplane.io/paused: "true"`) is not composed: a spec change reaches no
/// composed object, a deleted connection Secret is not written again, and the claim says
/// ReconcilePaused. Unpausing resumes. A paused claim being deleted keeps its finalizer and its
/// Instance until it is unpaused, as in Crossplane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_claim_composes_nothing_and_says_so() {
    let w = World::new("truth-paused", "ap-southeast-3").await;
    w.apply_claim(20).await;
    w.wait_claim_ready().await;
    let pause = |v: &str| json!({"metadata": {"annotations": {"crossplane.io/paused": v}}});

    w.patch_claim(pause("true")).await;
    let claim = w
        .wait_claim(30, "Synced=False ReconcilePaused", |c| {
            is(c, "Synced", "False", "ReconcilePaused")
        })
        .await;
    let (_, msg) = said(&claim, "Synced");
    assert!(
        msg.contains("crossplane.io/paused is \"true\"") && msg.contains("does not compose"),
        "{msg}"
    );
    assert!(
        is(&claim, "Ready", "True", "Available"),
        "Ready follows the Instance"
    );
    assert_eq!(problem(&claim).as_deref(), Some("ReconcilePaused"));
    let table = kubectl_wide(w.ns());
    assert!(table.contains("ReconcilePaused"), "{table}");

    let ctl = w.ctl();
    let (applies, secret_writes) = (ctl.writes("apply"), ctl.writes("secret"));
    w.env
        .secrets
        .delete(SECRET, &DeleteParams::default())
        .await
        .unwrap();
    w.patch_claim(json!({"spec": {"parameters": {"storageGB": 30}}}))
        .await;
    let generation = w.claims.get(CLAIM).await.unwrap().metadata.generation;
    w.wait_claim(30, "the spec change seen, paused", |c| {
        cond(c, "Synced")
            .is_some_and(|s| s.reason == "ReconcilePaused" && s.observed_generation == generation)
    })
    .await;
    let inst = w.env.instances.get(INSTANCE).await.unwrap();
    assert_eq!(inst.spec.for_provider.allocated_storage, Some(20));
    assert_eq!(
        ctl.writes("apply"),
        applies,
        "{}",
        ctl.writes_by_operation()
    );
    assert_eq!(ctl.writes("secret"), secret_writes);
    assert!(w.env.secrets.get_opt(SECRET).await.unwrap().is_none());

    // Unpaused: composed again.
    w.patch_claim(pause("false")).await;
    w.wait_claim_ready().await;
    let inst = w.env.instances.get(INSTANCE).await.unwrap();
    assert_eq!(inst.spec.for_provider.allocated_storage, Some(30));
    wait_for(&w.env.secrets, SECRET, 30, "published again", |_| true).await;

    // Deleting a paused claim waits until it is unpaused.
    w.patch_claim(pause("true")).await;
    w.wait_claim(30, "paused", |c| {
        is(c, "Synced", "False", "ReconcilePaused")
    })
    .await;
    w.claims
        .delete(CLAIM, &DeleteParams::default())
        .await
        .unwrap();
    let claim = w
        .wait_claim(30, "deletion waits", |c| {
            cond(c, "Synced").is_some_and(|s| s.message.contains("deletion waits"))
        })
        .await;
    assert!(claim.metadata.deletion_timestamp.is_some());
    assert!(
        claim
            .finalizers()
            .iter()
            .any(|f| f == paved::claim::FINALIZER)
    );
    let inst = w.env.instances.get(INSTANCE).await.unwrap();
    assert!(
        inst.metadata.deletion_timestamp.is_none(),
        "the Instance stays"
    );
    w.patch_claim(pause("false")).await;
    wait_deleted(&w.claims, CLAIM, 60).await;
    wait_deleted(&w.env.instances, INSTANCE, 90).await;
    w.stop().await;
}

#[test]
fn claims_show_the_problem_column_as_generated() {
    // The committed CRD carries the PROBLEM column over status.problem (the API-server tests
    // above read it as served).
    let crd = yaml_docs(&read_project_file(
        "crds/database.example.com_postgresqlinstances.yaml",
    ))
    .remove(0);
    let cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CLAIM_PRINTER_COLUMNS);
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
    assert_eq!(status["properties"]["problem"]["type"], "string");
}

/// Storage below RDS's minimum for the storage type a Composition chose (io1, minimum 100 GiB,
/// which a claim's storageGB of 50 does not reach): refused before any AWS call. The Instance
/// says InvalidSpec naming spec.forProvider.allocatedStorage, the minimum and the type; the
/// claim says so naming the Instance; the emulator has no instance and saw no create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_below_the_minimum_of_its_type_is_refused_on_the_claim_before_any_aws_call() {
    let w = World::new("truth-storage", "ca-west-1").await;
    let mut c = seed_composition(&w.composition, &w.env.region, &w.env.pc);
    c["metadata"]["labels"] = json!({"paved-test": "truth"});
    for r in c["spec"]["resources"].as_array_mut().unwrap() {
        if r["base"]["kind"] == "Instance" {
            r["base"]["spec"]["forProvider"]["storageType"] = json!("io1");
            r["base"]["spec"]["forProvider"]["iops"] = json!(1000);
        }
    }
    apply(&w.env.client, &c).await.expect("Composition");
    w.apply_claim(50).await;
    let inst = w.env.wait_synced_false(INSTANCE, "InvalidSpec", 60).await;
    let (_, inst_msg) = said(&inst, "Synced");
    for part in [
        "spec.forProvider.allocatedStorage is 50 GiB",
        "minimum of 100 GiB",
        "on io1",
    ] {
        assert!(inst_msg.contains(part), "{inst_msg}");
    }
    let words = w.instance_words();
    let claim = w
        .wait_claim(30, "Synced=False ComposedResourceError", |c| {
            is(c, "Synced", "False", "ComposedResourceError")
        })
        .await;
    let (_, msg) = said(&claim, "Synced");
    assert_eq!(msg, format!("{words}: InvalidSpec: {inst_msg}"));
    assert_eq!(
        problem(&claim).as_deref(),
        Some("Blocked: rds-instance: InvalidSpec")
    );
    assert!(w.proxy.creates().is_empty(), "no CreateDBInstance");
    assert!(
        w.env.own_ids().await.is_empty(),
        "no instance in the emulator"
    );

    // Raised to the minimum: created, Ready.
    w.apply_claim(100).await;
    w.wait_claim_ready().await;
    assert_eq!(w.proxy.creates().len(), 1);
    w.stop().await;
}

/// A Composition that names the RDS identifier (`forProvider.identifier`): the claim's Instance
/// gets exactly that external-name from its first apply, and the emulator shows exactly that
/// DBInstanceIdentifier, created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_identifier_is_the_rds_identifier() {
    let w = World::new("truth-ident", "ap-southeast-7").await;
    let mut c = seed_composition(&w.composition, &w.env.region, &w.env.pc);
    c["metadata"]["labels"] = json!({"paved-test": "truth"});
    for r in c["spec"]["resources"].as_array_mut().unwrap() {
        if r["base"]["kind"] == "Instance" {
            r["base"]["spec"]["forProvider"]["identifier"] = json!("truth-ident-orders");
        }
    }
    apply(&w.env.client, &c).await.expect("Composition");
    w.apply_claim(20).await;
    w.wait_claim_ready().await;
    let inst = w.env.instances.get(INSTANCE).await.unwrap();
    assert_eq!(external_name(&inst), "truth-ident-orders");
    assert!(describe(&w.env.rds, "truth-ident-orders").await.is_some());
    let creates = w.proxy.creates();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].identifier, "truth-ident-orders");
    w.stop().await;
}

/// Operators see the fleet: `paved run` (a real process, behind the fault proxy) counts an AWS
/// refusal in `paved_rds_reconcile_failures_total` with the kind, the condition reason and
/// AWS's own error code, and `paved_objects` shows the Instance and its claim in the states
/// their conditions say; once AWS accepts, the gauge follows them to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_refusal_is_counted_by_code_and_the_fleet_gauge_follows() {
    let rig = Rig::new(e2e_env(), "metrics", "eu-south-2").await;
    let refusal = "Invalid storage size for engine name postgres and storage type gp2: 20";
    rig.proxy
        .set_refusal("CreateDBInstance", Some(("InvalidParameterValue", refusal)));
    let mut claim = seed_claim(CLAIM, &rig.ns, &rig.composition);
    claim["spec"]["parameters"]["storageGB"] = json!(20);
    apply_claim(&rig.client, &claim).await;

    let instances: Api<paved::api::Instance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let claims: Api<PostgreSQLInstance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let failures = |m: &Metrics| {
        m.sum_by(
            "paved_rds_reconcile_failures_total",
            "aws_error_code",
            &[("kind", "Instance"), ("reason", "AWSError")],
        )
        .get("InvalidParameterValue")
        .copied()
        .unwrap_or(0.0)
    };
    // The counter, then the gauge agreeing with what the API server says of both objects.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = rig.paved.metrics().await;
        let instance = instances.list(&Default::default()).await.unwrap().items;
        let claim = claims.get_opt(CLAIM).await.unwrap();
        if failures(&m) >= 1.0
            && let [instance] = instance.as_slice()
            && let Some(claim) = claim
        {
            let i = states(instance.status.as_ref().map(|s| s.conditions.as_slice()));
            let c = states(claim.status.as_ref().map(|s| s.conditions.as_slice()));
            if i.1 == "False"
                && gauge(&m, "Instance", i) == 1.0
                && gauge(&m, "PostgreSQLInstance", c) == 1.0
            {
                // every other state of these kinds is 0
                assert_eq!(m.sum_by("paved_objects", "kind", &[])["Instance"], 1.0);
                assert_eq!(
                    m.sum_by("paved_objects", "kind", &[])["PostgreSQLInstance"],
                    1.0
                );
                // the managed kinds nothing composed report their states too, at 0
                assert_eq!(m.sum_by("paved_objects", "kind", &[])["SubnetGroup"], 0.0);
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure counted with aws_error_code=InvalidParameterValue, or a gauge that disagrees, within 60 s:\n{}",
            rig.paved
                .metrics_text()
                .await
                .lines()
                .filter(|l| l.starts_with("paved_rds_reconcile_failures")
                    || (l.starts_with("paved_objects") && !l.ends_with(" 0")))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = rig.paved.metrics_text().await;
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"paved_rds_reconcile_failures_total{kind="Instance",reason="AWSError",aws_error_code="InvalidParameterValue"} "#
        )),
        "{text}"
    );

    // AWS accepts; a spec change retries at once; the gauge follows both objects to Ready.
    rig.proxy.set_refusal("CreateDBInstance", None);
    claims
        .patch(
            CLAIM,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"parameters": {"storageGB": 21}}})),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let m = rig.paved.metrics().await;
        let ready = ("True", "True");
        if gauge(&m, "Instance", ready) == 1.0 && gauge(&m, "PostgreSQLInstance", ready) == 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gauge did not show both objects Ready and Synced within 90 s:\n{}",
            rig.paved
                .metrics_text()
                .await
                .lines()
                .filter(|l| l.starts_with("paved_objects") && !l.ends_with(" 0"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// (Ready, Synced) of these conditions, as the gauge labels them.
fn states(conditions: Option<&[paved::api::common::Condition]>) -> (&'static str, &'static str) {
    let of = |t: &str| match conditions
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status)
    {
        Some(paved::api::common::ConditionStatus::True) => "True",
        Some(paved::api::common::ConditionStatus::False) => "False",
        _ => "Unknown",
    };
    (of("Ready"), of("Synced"))
}

/// `paved_objects{kind, ready, synced}`.
fn gauge(m: &Metrics, kind: &str, (ready, synced): (&str, &str)) -> f64 {
    m.sum_by(
        "paved_objects",
        "kind",
        &[("kind", kind), ("ready", ready), ("synced", synced)],
    )
    .get(kind)
    .copied()
    .unwrap_or(-1.0)
}
