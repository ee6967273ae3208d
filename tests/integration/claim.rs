//! The claim controller against the real local API server. Each test runs the controller
//! in-process, scoped to its own namespace, and stands in for the RDS controller where needed
//! (marks the Instance Ready through its status subresource, writes its connection Secret).
//! No kube-controller-manager runs, so no owner-reference garbage collection happens.
//!
//! Every test here creates Compositions for PostgreSQLInstance or relies on the one seed
//! Composition being the only one, so `.config/nextest.toml` runs them one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use paved::api::common::ConditionStatus;
use paved::api::{Composition, Instance, PostgreSQLInstance};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_claim_composes_the_instance_and_becomes_ready_within_a_second() {
    let (client, ns) = setup("claim-seed").await;
    only_seed_composition(&client).await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    apply_claim(&client, &seed_claim_yaml(&ns)).await;

    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let inst = wait_for(&instances, "my-app-db-rds-instance", 30, "composed", |_| {
        true
    })
    .await;
    let claim = wait_for(&claims, "my-app-db", 30, "Synced", |c| {
        has_status(c, "Synced", ConditionStatus::True)
    })
    .await;

    // Exactly the rendered object: spec, labels, one controller owner reference to the claim.
    let comp: Composition = serde_json::from_value(seed_file("composition.yaml")).unwrap();
    let claim_json = serde_json::to_value(&claim).unwrap();
    let rendered = paved::compose::render(&paved::compose::RenderInput {
        claim: &claim_json,
        composition_name: "postgresql-aws",
        composition: &comp.spec,
        observed: &BTreeMap::new(),
    })
    .unwrap();
    let desired = &rendered.resources[0].desired;
    assert_eq!(serde_json::to_value(&inst.spec).unwrap(), desired["spec"]);
    assert_eq!(
        serde_json::to_value(inst.labels()).unwrap(),
        desired["metadata"]["labels"]
    );
    for (k, v) in desired["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            inst.annotations().get(k).map(|a| json!(a)),
            Some(v.clone()),
            "annotation {k}"
        );
    }
    // Born with what the RDS controller would otherwise write before its first AWS call: its
    // finalizer and the derived identifier (one write per Instance saved).
    assert_eq!(
        inst.annotations()
            .get("crossplane.io/external-name")
            .map(String::as_str),
        Some(paved::rds::naming::derive_identifier(&ns, "my-app-db-rds-instance").as_str())
    );
    assert_eq!(
        inst.finalizers(),
        ["finalizer.managedresource.crossplane.io"]
    );
    let fp = &inst.spec.for_provider;
    assert_eq!(fp.region, "ap-northeast-2");
    assert_eq!(fp.instance_class.as_deref(), Some("db.t3.micro"));
    assert_eq!(fp.engine.as_deref(), Some("postgres"));
    assert_eq!(fp.allocated_storage, Some(20));
    assert_eq!(fp.engine_version.as_deref(), Some("14"));
    assert_eq!(
        inst.labels()
            .get("crossplane.io/claim-name")
            .map(String::as_str),
        Some("my-app-db")
    );
    assert_eq!(
        inst.labels()
            .get("crossplane.io/claim-namespace")
            .map(String::as_str),
        Some(ns.as_str())
    );
    let owners = inst.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "PostgreSQLInstance");
    assert_eq!(owners[0].name, "my-app-db");
    assert_eq!(Some(&owners[0].uid), claim.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));
    let status = claim.status.clone().unwrap();
    assert_eq!(
        status.composition_ref.as_ref().map(|r| r.name.as_str()),
        Some("postgresql-aws")
    );
    assert!(
        claim.spec.composition_ref.is_none(),
        "the choice is never written into the spec"
    );
    assert_eq!(status.resource_refs.len(), 1);
    assert_eq!(status.resource_refs[0].name, "my-app-db-rds-instance");
    assert_eq!(
        cond(&claim, "Synced").map(|c| (c.reason.as_str(), c.observed_generation)),
        Some(("ReconcileSuccess", claim.metadata.generation))
    );
    assert!(
        claim
            .finalizers()
            .iter()
            .any(|f| f == paved::claim::FINALIZER)
    );

    // Not ready yet: the message names the composed resource and its own reason.
    set_instance_ready(
        &client,
        &ns,
        "my-app-db-rds-instance",
        "False",
        "Creating",
        "RDS status \"creating\"",
    )
    .await;
    let expected = format!(
        "rds-instance (Instance {ns}/my-app-db-rds-instance): Creating: RDS status \"creating\""
    );
    let c = wait_for(
        &claims,
        "my-app-db",
        10,
        "Ready=False with the Instance's reason",
        |c| cond(c, "Ready").is_some_and(|r| r.message == expected),
    )
    .await;
    assert_eq!(
        cond(&c, "Ready").map(|r| (r.status, r.reason.as_str())),
        Some((ConditionStatus::False, "Creating"))
    );

    // The RDS controller's part: Instance Ready, its connection Secret written.
    let t0 = Instant::now();
    set_instance_available(&client, &ns, "my-app-db-rds-instance").await;
    write_instance_secret(&client, &ns, &inst).await;
    let secret = wait_published(&client, &ns, 10, "holding every key").await;
    let claim = wait_for(&claims, "my-app-db", 10, "Ready and published", |c| {
        has_status(c, "Ready", ConditionStatus::True)
            && c.status.as_ref().is_some_and(|s| {
                s.connection_details
                    .as_ref()
                    .and_then(|d| d.last_published_time.as_ref())
                    .is_some()
            })
    })
    .await;
    let elapsed = t0.elapsed();
    eprintln!(
        "Instance Ready + Secret written → claim Ready and Secret published: {elapsed:?}; writes so far: {}",
        ctl.metrics.writes_total()
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "claim Ready after {elapsed:?}"
    );
    // Writes to reach Ready (issue 7 budgets ~6 per claim for everything). Exactly one each of
    // finalizer, Instance apply and claim Secret. Status: one when composed (Synced, Ready=False,
    // resourceRefs, compositionRef together), one because this test changes the Instance's
    // Ready message (Creating "RDS status creating"), which the claim must show, one when Ready
    // (with lastPublishedTime), and at most one more when a reconcile lands between the test's
    // two steps (Instance Ready, then its Secret), so that Ready and the publication come apart.
    // Events: "ComposedResourcesApplied" and "Available" (+ "ConnectionSecretPublished" in
    // that split case).
    let writes = ctl.writes_by_operation();
    eprintln!("{writes}");
    assert_eq!(ctl.writes("finalizer"), 1, "{writes}");
    assert_eq!(ctl.writes("apply"), 1, "{writes}");
    assert_eq!(ctl.writes("secret"), 1, "{writes}");
    assert!(ctl.writes("status") <= 4, "{writes}");
    assert!(ctl.writes("event") <= 3, "{writes}");
    assert_eq!(
        ctl.writes("delete") + ctl.writes("secret_delete"),
        0,
        "{writes}"
    );
    // Reads come from the watch caches. GETs: at most one of the claim's Secret before its
    // first publication (a Secret of that name without paved's label must be seen, never
    // overwritten), one of the Instance's connection Secret if the cache lags it, and one of
    // the Instance if the cache lags its creation.
    let (object_gets, secret_gets) = (ctl.reads("object"), ctl.reads("secret"));
    eprintln!("GETs to reach Ready: objects {object_gets}, secrets {secret_gets}");
    assert!(object_gets <= 1, "{object_gets} GETs of composed objects");
    assert!(secret_gets <= 2, "{secret_gets} GETs of Secrets");
    assert_eq!(
        cond(&claim, "Ready").map(|r| r.reason.as_str()),
        Some("Available")
    );
    assert!(
        claim
            .status
            .as_ref()
            .unwrap()
            .connection_details
            .as_ref()
            .and_then(|d| d.last_published_time.as_ref())
            .is_some()
    );
    // The claim's Secret: owned by the claim, labelled as managed by paved.
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("paved")
    );
    assert_eq!(
        secret.owner_references().first().map(|o| &o.uid),
        claim.metadata.uid.as_ref()
    );

    // storageGB change reaches the Instance.
    let mut bigger = seed_claim_yaml(&ns);
    bigger["spec"]["parameters"]["storageGB"] = json!(50);
    apply_claim(&client, &bigger).await;
    wait_for(
        &instances,
        "my-app-db-rds-instance",
        10,
        "allocatedStorage 50",
        |i| i.spec.for_provider.allocated_storage == Some(50),
    )
    .await;

    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composition_edit_reaches_the_instance_without_restart() {
    let (client, ns) = setup("claim-compedit").await;
    let comp_name = format!("pg-{ns}");
    apply_json(&client, &test_composition(&comp_name), None, false)
        .await
        .unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    apply_claim(&client, &claim).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    wait_for(&instances, "my-app-db-rds-instance", 30, "composed", |i| {
        i.spec.for_provider.instance_class.as_deref() == Some("db.t3.micro")
    })
    .await;

    let mut comp = test_composition(&comp_name);
    comp["spec"]["resources"][0]["base"]["spec"]["forProvider"]["instanceClass"] =
        json!("db.t3.small");
    apply_json(&client, &comp, None, false).await.unwrap();
    wait_for(
        &instances,
        "my-app-db-rds-instance",
        10,
        "instanceClass db.t3.small",
        |i| i.spec.for_provider.instance_class.as_deref() == Some("db.t3.small"),
    )
    .await;

    // The Composition disappears: reported on the claim, the Instance is kept.
    delete_composition(&client, &comp_name).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (reason, message) = wait_error(&claims, "my-app-db").await;
    assert_eq!(reason, "ReconcileError");
    assert!(
        message.contains(&format!("{comp_name:?}")) && message.contains("does not exist"),
        "{message}"
    );
    assert!(
        instances
            .get_opt("my-app-db-rds-instance")
            .await
            .unwrap()
            .is_some(),
        "resources are kept"
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_of_a_ready_claim_writes_nothing() {
    let (client, ns) = setup("claim-quiet").await;
    only_seed_composition(&client).await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_millis(300)).await;
    let (claim, inst) = seed_ready(&client, &ns).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    // Let the reconciles triggered by reaching Ready settle, then take the baseline.
    ctl.wait_reconciles(ctl.metrics.reconciles_total(), 2, 30)
        .await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let rv = || async {
        (
            claims.get("my-app-db").await.unwrap().resource_version(),
            instances
                .get("my-app-db-rds-instance")
                .await
                .unwrap()
                .resource_version(),
            secrets
                .get("my-app-db-credentials")
                .await
                .unwrap()
                .resource_version(),
        )
    };
    let before = rv().await;
    let writes = ctl.metrics.writes_total();
    eprintln!("{}", ctl.writes_by_operation());
    eprintln!(
        "writes for the seed claim to reach Ready (incl. events): {writes}; claim rv {:?}, instance rv {:?}",
        claim.resource_version(),
        inst.resource_version()
    );
    let from = ctl.metrics.reconciles_total();
    ctl.wait_reconciles(from, 5, 30).await;
    assert_eq!(
        ctl.metrics.writes_total(),
        writes,
        "a resync of a Ready claim must not write"
    );
    assert_eq!(
        rv().await,
        before,
        "resourceVersions unchanged across resyncs"
    );
    ctl.stop().await;
}

/// `ready` (what `/readyz` reports) must turn true on every start. It used to stay false in about
/// one start in three: the readiness task and the applier both awaited
/// `Store::wait_until_ready` on the claim store, whose oneshot keeps only the last waker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_becomes_ready_on_every_start() {
    let (client, ns) = setup("claim-ready").await;
    // A claim waiting for a Composition that does not exist: reconciles run (and wait on the
    // Composition cache) while the controller starts.
    let mut claim = seed_claim_yaml(&ns);
    claim["metadata"]["name"] = json!("waits");
    claim["spec"]["compositionRef"] = json!({"name": "no-such-composition-ready-test"});
    apply_claim(&client, &claim).await;
    for i in 0..10 {
        let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
        let t0 = Instant::now();
        while !ctl.ready.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "start {i}: the claim controller did not become ready within 10s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ctl.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_composition_matches_the_selector() {
    let (client, ns) = setup("claim-nocomp").await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionSelector"] = json!({"matchLabels": {"paved-test/ns": ns}});
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (reason, message) = wait_error(&claims, "my-app-db").await;
    assert_eq!(reason, "ReconcileError");
    assert!(
        message.starts_with(&format!(
            "no Composition for database.example.com/v1alpha1 PostgreSQLInstance matches spec.compositionSelector.matchLabels {{paved-test/ns={ns}}}"
        )),
        "{message}"
    );
    assert!(
        message.contains("set spec.compositionRef.name"),
        "{message}"
    );
    no_instances(&client, &ns).await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matching_compositions_are_refused_naming_both() {
    let (client, ns) = setup("claim-twocomp").await;
    let (a, b) = (format!("a-{ns}"), format!("b-{ns}"));
    for name in [&a, &b] {
        let mut c = test_composition(name);
        c["metadata"]["labels"]["paved-test/ns"] = json!(ns);
        apply_json(&client, &c, None, false).await.unwrap();
    }
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionSelector"] = json!({"matchLabels": {"paved-test/ns": ns}});
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (reason, message) = wait_error(&claims, "my-app-db").await;
    assert_eq!(reason, "ReconcileError");
    assert_eq!(
        message,
        format!(
            "2 Compositions match spec.compositionSelector.matchLabels {{paved-test/ns={ns}}}: {a:?}, {b:?}; set spec.compositionRef.name to one of them or make the selector more specific"
        )
    );
    no_instances(&client, &ns).await;
    ctl.stop().await;
    delete_composition(&client, &a).await;
    delete_composition(&client, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composition_ref_to_a_missing_composition() {
    let (client, ns) = setup("claim-noref").await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": format!("missing-{ns}")});
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (reason, message) = wait_error(&claims, "my-app-db").await;
    assert_eq!(reason, "ReconcileError");
    assert!(
        message.starts_with(&format!(
            "spec.compositionRef names Composition \"missing-{ns}\", which does not exist"
        )),
        "{message}"
    );
    no_instances(&client, &ns).await;
    ctl.stop().await;
}

/// A claim using a per-test Composition whose first resource is changed by `edit`; returns the
/// Synced=False message once reported, and checks nothing was composed.
async fn composition_error(
    prefix: &str,
    edit: impl FnOnce(&mut Value),
    claim_edit: impl FnOnce(&mut Value),
) -> String {
    let (client, ns) = setup(prefix).await;
    let comp_name = format!("pg-{ns}");
    let mut comp = test_composition(&comp_name);
    edit(&mut comp);
    apply_json(&client, &comp, None, false).await.unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    claim_edit(&mut claim);
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (reason, message) = wait_error(&claims, "my-app-db").await;
    assert_eq!(reason, "ReconcileError");
    no_instances(&client, &ns).await;
    ctl.stop().await;
    delete_composition(&client, &comp_name).await;
    message
}

/// A Required patch whose source is missing skips that resource, as Crossplane's
/// function-patch-and-transform does: the claim is synced but not Ready, the message names the
/// missing field, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_patch_source_missing() {
    let (client, ns) = setup("claim-required").await;
    let comp_name = format!("pg-{ns}");
    let mut comp = test_composition(&comp_name);
    comp["spec"]["resources"][0]["patches"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fromFieldPath": "spec.parameters.environment", "toFieldPath": "metadata.labels.environment", "policy": {"fromFieldPath": "Required"}}));
    apply_json(&client, &comp, None, false).await.unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    claim["spec"]["parameters"]
        .as_object_mut()
        .unwrap()
        .remove("environment");
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let c = wait_for(&claims, "my-app-db", 30, "Synced=True, Ready=False", |c| {
        has_status(c, "Synced", ConditionStatus::True)
            && has_status(c, "Ready", ConditionStatus::False)
    })
    .await;
    let message = cond(&c, "Ready").unwrap().message.clone();
    assert!(
        message.contains("spec.parameters.environment") && message.contains("rds-instance"),
        "{message}"
    );
    no_instances(&client, &ns).await;
    ctl.stop().await;
    delete_composition(&client, &comp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_type_error() {
    let message = composition_error(
        "claim-transform",
        |c| {
            c["spec"]["resources"][0]["patches"][1]["transforms"] =
                json!([{"type": "math", "math": {"multiply": 2}}]);
        },
        |_| {},
    )
    .await;
    assert!(
        message.contains("spec.parameters.version") && message.contains("rds-instance"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_of_a_kind_the_api_server_does_not_serve() {
    let message = composition_error(
        "claim-unserved",
        |c| {
            c["spec"]["resources"][0]["base"]["apiVersion"] = json!("widgets.example.com/v1");
            c["spec"]["resources"][0]["base"]["kind"] = json!("Widget");
        },
        |_| {},
    )
    .await;
    assert!(
        message.contains(r#"apiVersion "widgets.example.com/v1" kind "Widget""#),
        "{message}"
    );
    assert!(message.contains(r#"resource "rds-instance""#), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_step_of_another_function_is_refused_by_name() {
    let message = composition_error(
        "claim-pipeline",
        |c| {
            c["spec"]["mode"] = json!("Pipeline");
            c["spec"]["pipeline"] = json!([{"step": "render-templates", "functionRef": {"name": "function-go-templating"},
                "input": {"apiVersion": "gotemplating.fn.crossplane.io/v1beta1", "kind": "GoTemplate", "source": "Inline", "inline": {"template": ""}}}]);
        },
        |_| {},
    )
    .await;
    assert!(
        message.contains("render-templates") && message.contains("function-go-templating"),
        "{message}"
    );
}

/// Delete the claim with the given policy while the Instance carries a finalizer (as the RDS
/// controller's): Background releases the claim at once, Foreground waits for the Instance.
async fn deletion(policy: &str) {
    let (client, ns) = setup(&format!("claim-del-{}", policy.to_lowercase())).await;
    only_seed_composition(&client).await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositeDeletePolicy"] = json!(policy);
    claim_ready(&client, &ns, &claim).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let fin = json!({"metadata": {"finalizers": ["test.paved.dev/hold"]}});
    instances
        .patch(
            "my-app-db-rds-instance",
            &PatchParams::default(),
            &Patch::Merge(&fin),
        )
        .await
        .unwrap();

    claims
        .delete("my-app-db", &DeleteParams::default())
        .await
        .unwrap();
    if policy == "Background" {
        wait_deleted(&claims, "my-app-db", 30).await;
        let i = instances.get("my-app-db-rds-instance").await.unwrap();
        assert!(
            i.metadata.deletion_timestamp.is_some(),
            "the Instance was deleted"
        );
    } else {
        let c = wait_for(&claims, "my-app-db", 30, "Deleting", |c| {
            cond(c, "Ready").is_some_and(|r| r.reason == "Deleting")
        })
        .await;
        assert!(
            cond(&c, "Ready")
                .unwrap()
                .message
                .contains("my-app-db-rds-instance")
        );
        assert!(
            instances
                .get("my-app-db-rds-instance")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        );
    }
    // The RDS controller finishes: the Instance goes.
    let unhold = json!({"metadata": {"finalizers": null}});
    instances
        .patch(
            "my-app-db-rds-instance",
            &PatchParams::default(),
            &Patch::Merge(&unhold),
        )
        .await
        .unwrap();
    wait_deleted(&instances, "my-app-db-rds-instance", 30).await;
    wait_deleted(&claims, "my-app-db", 30).await;
    wait_deleted(&secrets, "my-app-db-credentials", 30).await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_background() {
    deletion("Background").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_foreground() {
    deletion("Foreground").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_deleted_while_composed_objects_are_already_gone() {
    let (client, ns) = setup("claim-gone").await;
    only_seed_composition(&client).await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositeDeletePolicy"] = json!("Foreground");
    apply_claim(&client, &claim).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    wait_for(&instances, "my-app-db-rds-instance", 30, "composed", |_| {
        true
    })
    .await;
    wait_for(&claims, "my-app-db", 30, "Synced", |c| {
        has_status(c, "Synced", ConditionStatus::True)
    })
    .await;
    // paved is down while the Instance disappears and the claim is deleted.
    ctl.stop().await;
    instances
        .delete("my-app-db-rds-instance", &DeleteParams::default())
        .await
        .unwrap();
    // The Instance is born with the RDS controller's finalizer; that controller (not running
    // here) releases it once AWS is done.
    instances
        .patch(
            "my-app-db-rds-instance",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    wait_deleted(&instances, "my-app-db-rds-instance", 30).await;
    claims
        .delete("my-app-db", &DeleteParams::default())
        .await
        .unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    wait_deleted(&claims, "my-app-db", 30).await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_paved_does_not_own_is_never_overwritten() {
    let (client, ns) = setup("claim-foreign").await;
    only_seed_composition(&client).await;
    let foreign = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "my-app-db-credentials", "namespace": ns}, "stringData": {"mine": "yes"}});
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(foreign).unwrap(),
        )
        .await
        .unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    apply_claim(&client, &seed_claim_yaml(&ns)).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let inst = wait_for(&instances, "my-app-db-rds-instance", 30, "composed", |_| {
        true
    })
    .await;
    write_instance_secret(&client, &ns, &inst).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let (_, message) = wait_error(&claims, "my-app-db").await;
    assert!(
        message.contains("is not owned by this claim; paved will not overwrite it"),
        "{message}"
    );
    let s = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("my-app-db-credentials")
        .await
        .unwrap();
    assert_eq!(
        s.data.unwrap().keys().cloned().collect::<Vec<_>>(),
        vec!["mine".to_string()]
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_claims_are_accepted_by_the_api_server() {
    let (client, ns) = setup("claim-examples").await;
    let dir = project_root().join("examples/claims");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        for doc in yaml_docs(&std::fs::read_to_string(&path).unwrap()) {
            apply_json(&client, &doc, Some(&ns), true)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "examples found: {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_served_kind_is_composed_and_unlisted_objects_are_deleted() {
    let (client, ns) = setup("claim-prune").await;
    let comp_name = format!("pg-{ns}");
    let mut comp = test_composition(&comp_name);
    comp["spec"]["resources"].as_array_mut().unwrap().push(json!({
        "name": "settings",
        "base": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"pool": "10"}},
        "patches": [{"fromFieldPath": "spec.parameters.version", "toFieldPath": "data.version"}],
    }));
    apply_json(&client, &comp, None, false).await.unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    apply_claim(&client, &claim).await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = wait_for(&cms, "my-app-db-settings", 30, "composed", |_| true).await;
    assert_eq!(
        cm.data.unwrap().get("version").map(String::as_str),
        Some("14")
    );
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    wait_for(&claims, "my-app-db", 30, "two resourceRefs", |c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.resource_refs.len() == 2)
    })
    .await;

    // A change to the composed object is noticed (watch) and undone.
    let drift = json!({"data": {"version": "9"}});
    cms.patch(
        "my-app-db-settings",
        &PatchParams::default(),
        &Patch::Merge(&drift),
    )
    .await
    .unwrap();
    wait_for(&cms, "my-app-db-settings", 10, "restored", |c| {
        c.data
            .as_ref()
            .and_then(|d| d.get("version"))
            .map(String::as_str)
            == Some("14")
    })
    .await;

    // The Composition stops listing it: it is deleted.
    comp["spec"]["resources"].as_array_mut().unwrap().pop();
    apply_json(&client, &comp, None, false).await.unwrap();
    wait_deleted(&cms, "my-app-db-settings", 10).await;
    wait_for(&claims, "my-app-db", 10, "one resourceRef", |c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.resource_refs.len() == 1)
    })
    .await;
    ctl.stop().await;
    delete_composition(&client, &comp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_paved_did_not_compose_is_never_taken_over() {
    // The caches of composed kinds hold only objects with the claim-name label (so composing a
    // ConfigMap or Secret does not cache the cluster's). A ConfigMap someone else made, with
    // the name the claim's resource would get, is not in the cache: paved must still see it
    // (a GET on the cache miss) and refuse to overwrite it.
    let (client, ns) = setup("claim-foreign").await;
    let comp_name = format!("pg-{ns}");
    let mut comp = test_composition(&comp_name);
    comp["spec"]["resources"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "name": "settings",
            "base": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"pool": "10"}},
        }));
    apply_json(&client, &comp, None, false).await.unwrap();
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &ns);
    let theirs: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "my-app-db-settings", "namespace": ns},
        "data": {"owner": "another team", "pool": "99"},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &theirs).await.unwrap();
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    apply_claim(&client, &claim).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let refused = wait_for(&claims, "my-app-db", 30, "refused", |c| {
        cond(c, "Synced").is_some_and(|s| {
            s.status == ConditionStatus::False && s.message.contains("not controlled by this claim")
        })
    })
    .await;
    let msg = &cond(&refused, "Synced").unwrap().message;
    assert!(msg.contains("my-app-db-settings"), "{msg}");
    // Theirs is untouched: same data, no owner reference, no claim label.
    let after = cms.get("my-app-db-settings").await.unwrap();
    assert_eq!(after.data, theirs.data);
    assert!(after.metadata.owner_references.is_none());
    assert!(
        after
            .metadata
            .labels
            .is_none_or(|l| !l.contains_key("crossplane.io/claim-name"))
    );
    ctl.stop().await;
    delete_composition(&client, &comp_name).await;
}

/// The instanceClass of a composed Instance, once it has one.
async fn instance_class(instances: &Api<Instance>, name: &str) -> Option<String> {
    let i = instances.get_opt(name).await.unwrap()?;
    serde_json::to_value(&i.spec).unwrap()["forProvider"]["instanceClass"]
        .as_str()
        .map(str::to_string)
}

async fn wait_class(instances: &Api<Instance>, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = instance_class(instances, name).await;
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: instanceClass {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The revisions of a Composition: (name, revision number), oldest number first.
async fn revisions_of(client: &kube::Client, comp: &str) -> Vec<(String, i64)> {
    let api: Api<paved::api::CompositionRevision> = Api::all(client.clone());
    let lp =
        kube::api::ListParams::default().labels(&format!("crossplane.io/composition-name={comp}"));
    let mut out: Vec<(String, i64)> = api
        .list(&lp)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| (r.name_any(), r.spec.revision))
        .collect();
    out.sort_by_key(|r| r.1);
    out
}

async fn wait_revisions(client: &kube::Client, comp: &str, n: usize) -> Vec<(String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = revisions_of(client, comp).await;
        if got.len() == n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{comp}: revisions {got:?}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_claim_keeps_its_revision_until_it_is_moved() {
    // A platform team changes a Composition. The claim under compositionUpdatePolicy Manual
    // stays on the revision it was pinned to; the Automatic one follows at once; moving the
    // Manual claim's compositionRevisionRef rolls the change out to it.
    let (client, ns) = setup("claim-revisions").await;
    let comp_name = format!("pg-{ns}");
    let mut comp = test_composition(&comp_name);
    apply_json(&client, &comp, None, false).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let revisions = tokio::spawn(paved::composition::run(client.clone(), async {
        let _ = stop_rx.await;
    }));
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let first = wait_revisions(&client, &comp_name, 1).await;
    assert_eq!(first[0].1, 1);
    assert!(
        first[0].0.starts_with(&format!("{comp_name}-")),
        "{first:?}"
    );

    let mut manual = seed_claim_yaml(&ns);
    manual["spec"]["compositionRef"] = json!({"name": comp_name});
    manual["spec"]["compositionUpdatePolicy"] = json!("Manual");
    apply_claim(&client, &manual).await;
    let mut auto = seed_claim_yaml(&ns);
    auto["metadata"]["name"] = json!("auto-db");
    auto["spec"]["writeConnectionSecretToRef"]["name"] = json!("auto-db-credentials");
    auto["spec"]["compositionRef"] = json!({"name": comp_name});
    apply_claim(&client, &auto).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    wait_class(&instances, "my-app-db-rds-instance", "db.t3.micro").await;
    wait_class(&instances, "auto-db-rds-instance", "db.t3.micro").await;
    // The Manual claim was pinned to the newest revision: its spec names it.
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let pinned = claims.get("my-app-db").await.unwrap();
    assert_eq!(
        pinned
            .spec
            .composition_revision_ref
            .as_ref()
            .map(|r| r.name.as_str()),
        Some(first[0].0.as_str())
    );
    assert!(
        claims
            .get("auto-db")
            .await
            .unwrap()
            .spec
            .composition_revision_ref
            .is_none()
    );

    // The change: a bigger class. Revision 2; the Automatic claim follows, the Manual does not.
    comp["spec"]["resources"][0]["base"]["spec"]["forProvider"]["instanceClass"] =
        json!("db.t3.small");
    apply_json(&client, &comp, None, false).await.unwrap();
    let two = wait_revisions(&client, &comp_name, 2).await;
    assert_eq!(two[1].1, 2);
    wait_class(&instances, "auto-db-rds-instance", "db.t3.small").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        instance_class(&instances, "my-app-db-rds-instance")
            .await
            .as_deref(),
        Some("db.t3.micro"),
        "the Manual claim must stay on its revision"
    );

    // Moved by a person: the change reaches it.
    manual["spec"]["compositionRevisionRef"] = json!({"name": two[1].0});
    apply_claim(&client, &manual).await;
    wait_class(&instances, "my-app-db-rds-instance", "db.t3.small").await;

    // Undone: the first revision becomes the newest again (raised to 3), no third object.
    comp["spec"]["resources"][0]["base"]["spec"]["forProvider"]["instanceClass"] =
        json!("db.t3.micro");
    apply_json(&client, &comp, None, false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = revisions_of(&client, &comp_name).await;
        if got.iter().any(|(n, r)| *n == first[0].0 && *r == 3) {
            assert_eq!(got.len(), 2, "{got:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A reference to a revision that does not exist is refused with the name.
    manual["spec"]["compositionRevisionRef"] = json!({"name": "no-such-revision"});
    apply_claim(&client, &manual).await;
    let refused = wait_for(&claims, "my-app-db", 30, "refused", |c| {
        cond(c, "Synced").is_some_and(|s| {
            s.status == ConditionStatus::False && s.message.contains("CompositionRevision")
        })
    })
    .await;
    assert!(
        cond(&refused, "Synced")
            .unwrap()
            .message
            .contains("\"no-such-revision\"")
    );
    // ... and its Instance is left as it was.
    assert_eq!(
        instance_class(&instances, "my-app-db-rds-instance")
            .await
            .as_deref(),
        Some("db.t3.small")
    );
    ctl.stop().await;
    let _ = stop_tx.send(());
    let _ = revisions.await;
    delete_composition(&client, &comp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_the_connection_secret_moves_it() {
    let (client, ns) = setup("claim-rename").await;
    only_seed_composition(&client).await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    seed_ready(&client, &ns).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // Renamed: the new Secret holds the credentials and the old one is gone.
    let mut claim = seed_claim_yaml(&ns);
    claim["spec"]["writeConnectionSecretToRef"]["name"] = json!("my-app-db-creds-v2");
    apply_claim(&client, &claim).await;
    wait_for(
        &secrets,
        "my-app-db-creds-v2",
        30,
        "published",
        secret_has_all_keys,
    )
    .await;
    wait_deleted(&secrets, "my-app-db-credentials", 30).await;

    // A Secret the claim does not control is never touched, whatever its name.
    let foreign = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "unrelated", "namespace": ns,
            "labels": {paved::claim::MANAGED_BY_LABEL: paved::claim::MANAGED_BY_VALUE}},
        "stringData": {"k": "v"}});
    apply_json(&client, &foreign, None, false).await.unwrap();

    // Removed: no Secret is kept for the claim.
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    claims
        .patch(
            "my-app-db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"writeConnectionSecretToRef": null}})),
        )
        .await
        .unwrap();
    wait_deleted(&secrets, "my-app-db-creds-v2", 30).await;
    let c = wait_for(&claims, "my-app-db", 30, "Synced", |c| {
        has_status(c, "Synced", ConditionStatus::True)
            && c.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .all(|x| x.observed_generation == c.metadata.generation)
            })
    })
    .await;
    assert!(has_status(&c, "Ready", ConditionStatus::True));
    assert!(secrets.get_opt("unrelated").await.unwrap().is_some());
    ctl.stop().await;
}
