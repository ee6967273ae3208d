//! CompositeResourceDefinitions against the real local API server: paved serves each XRD's
//! claim kind as a CRD the API server enforces, and composes its claims through the same
//! pipeline as the built-in PostgreSQLInstance. The claim controller (with its XRD
//! controller) runs in-process; the test stands in for the RDS controller (marks the Instance
//! Ready, writes its connection Secret), as tests/integration/claim.rs does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use paved::api::common::ConditionStatus;
use paved::api::{CompositeResourceDefinition, Instance, PostgreSQLInstance};
use serde_json::{Value, json};

fn xrd(group: &str, extra_props: Value) -> Value {
    let mut props = json!({
        "size": {"type": "string", "enum": ["small", "large"], "default": "small",
                 "description": "How big the database is: small or large."},
        "storageGB": {"type": "integer", "minimum": 20, "maximum": 100, "default": 20},
    });
    if let Value::Object(extra) = extra_props {
        for (k, v) in extra {
            props[k] = v;
        }
    }
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": format!("xsqls.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": "XSQL", "plural": "xsqls"},
            "claimNames": {"kind": "SQL", "plural": "sqls"},
            "connectionSecretKeys": ["host", "password"],
            "versions": [{"name": "v1alpha1", "served": true, "referenceable": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": props},
                    "status": {"type": "object", "properties": {"address": {"type": "string"}}}
                }}}}]
        }
    })
}

/// Server-side apply through a known API (no discovery: CRDs come and go during these tests).
async fn ssa(
    api: &Api<DynamicObject>,
    obj: &Value,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let name = obj["metadata"]["name"].as_str().unwrap();
    let mut pp = kube::api::PatchParams::apply("paved-test").force();
    pp.dry_run = dry_run;
    api.patch(name, &pp, &kube::api::Patch::Apply(obj)).await
}

fn xrd_api(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource::erase::<CompositeResourceDefinition>(&()),
    )
}

fn claim_api(client: &kube::Client, group: &str, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1alpha1", "SQL");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "sqls"),
    )
}

async fn wait_established(client: &kube::Client, name: &str) -> CompositeResourceDefinition {
    let api: Api<CompositeResourceDefinition> = Api::all(client.clone());
    wait_for(&api, name, 60, "Established and Offered", |x| {
        let s = x.status.clone().unwrap_or_default();
        paved::xrd::controller::is_true(&s, "Established")
            && paved::xrd::controller::is_true(&s, "Offered")
    })
    .await
}

async fn delete_xrd(client: &kube::Client, name: &str) {
    let api: Api<CompositeResourceDefinition> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

fn composition(name: &str, group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        "metadata": {"name": name, "labels": {TEST_COMPOSITION_LABEL: "true"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": format!("{group}/v1alpha1"), "kind": "XSQL"},
            "resources": [{
                "name": "db",
                "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "spec": {"forProvider": {"region": "eu-west-1", "engine": "postgres",
                        "engineVersion": "16", "instanceClass": "db.t3.micro",
                        "username": "pgadmin", "skipFinalSnapshot": true},
                        "writeConnectionSecretToRef": {"namespace": "x", "name": "x"}}},
                "patches": [
                    {"fromFieldPath": "spec.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"},
                    {"fromFieldPath": "spec.size", "toFieldPath": "spec.forProvider.instanceClass",
                     "transforms": [{"type": "map", "map": {"small": "db.t3.micro", "large": "db.m5.large"}}]},
                    {"fromFieldPath": "spec.claimRef.namespace", "toFieldPath": "spec.writeConnectionSecretToRef.namespace"},
                    {"fromFieldPath": "metadata.labels[crossplane.io/claim-name]", "toFieldPath": "spec.writeConnectionSecretToRef.name",
                     "transforms": [{"type": "string", "string": {"fmt": "%s-rds"}}]},
                    {"fromFieldPath": "metadata.labels[crossplane.io/claim-namespace]", "toFieldPath": "metadata.labels[team]"},
                    {"fromFieldPath": "spec.tier", "toFieldPath": "metadata.labels[tier]"},
                    {"type": "ToCompositeFieldPath", "fromFieldPath": "spec.forProvider.region", "toFieldPath": "status.address"}
                ],
                "connectionDetails": [
                    {"fromConnectionSecretKey": "host"},
                    {"fromConnectionSecretKey": "password"},
                    {"fromConnectionSecretKey": "username"}
                ]
            }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xrd_claim_kind_is_served_enforced_composed_and_evolves() {
    let (client, ns) = setup("xrd").await;
    let group = format!("x{}.example.org", random_suffix(6));
    let xrd_name = format!("xsqls.{group}");
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    ssa(&xrd_api(&client), &xrd(&group, json!({})), false)
        .await
        .unwrap();
    let x = wait_established(&client, &xrd_name).await;
    assert!(
        x.metadata
            .finalizers
            .unwrap()
            .contains(&"paved.dev/xrd".to_string())
    );

    // The CRD: Established, namespaced, categories, columns, and the XRD's descriptions (what
    // `kubectl explain sql.spec.size` prints).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(&format!("sqls.{group}")).await.unwrap();
    assert!(
        crd.status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    let schema = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
    assert_eq!(
        schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]["description"],
        "How big the database is: small or large."
    );
    // The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
    let api_version = format!("--api-version={group}/v1alpha1");
    let mut text = String::new();
    for _ in 0..60 {
        let cache = tempfile::tempdir().unwrap();
        let cache_flag = format!("--cache-dir={}", cache.path().display());
        let out = kubectl(&[&cache_flag, "explain", "sqls.spec.size", &api_version]);
        text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        text.contains("How big the database is: small or large."),
        "kubectl explain: {text}"
    );
    let cols: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    // PROBLEM (status.problem): the claim's first problem in short, as on PostgreSQLInstance.
    assert_eq!(cols, CLAIM_PRINTER_COLUMNS);

    // The API server enforces the schema: an invalid claim is refused naming the field;
    // defaults are applied.
    let claims = claim_api(&client, &group, &ns);
    let bad = json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "SQL",
        "metadata": {"name": "bad", "namespace": ns}, "spec": {"size": "huge", "storageGB": 5}});
    let err = ssa(&claims, &bad, false).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("spec.size") && msg.contains("spec.storageGB"),
        "{msg}"
    );
    let comp_name = format!("xsql-{}", random_suffix(5));
    apply_json(&client, &composition(&comp_name, &group), None, false)
        .await
        .unwrap();
    let good = json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "SQL",
        "metadata": {"name": "orders", "namespace": ns},
        "spec": {"writeConnectionSecretToRef": {"name": "orders-conn"}}});
    ssa(&claims, &good, false).await.unwrap();
    let stored = claims.get("orders").await.unwrap();
    assert_eq!(stored.data["spec"]["size"], "small", "default applied");
    assert_eq!(stored.data["spec"]["storageGB"], 20, "default applied");

    // Composed with the Composition for the XR kind: claimRef and the claim labels.
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let inst = wait_for(&instances, "orders-db", 30, "composed", |_| true).await;

    // The fleet gauge counts the XRD's claim kind under its kind name, in the state the API
    // server shows (from the claim controller's cache, at scrape time).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = claims.get("orders").await.unwrap().data["status"].clone();
        let of = |t: &str| {
            status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                .and_then(|c| c["status"].as_str())
                .unwrap_or("Unknown")
                .to_string()
        };
        let (ready, synced) = (of("Ready"), of("Synced"));
        let samples = ctl.metrics.objects.tally().samples();
        let sql: Vec<_> = samples.iter().filter(|(l, _)| l.kind == "SQL").collect();
        let total: u64 = sql.iter().map(|(_, n)| n).sum();
        let here = sql
            .iter()
            .find(|(l, _)| l.ready == ready && l.synced == synced)
            .map(|(_, n)| *n);
        if sql.len() == 9 && total == 1 && here == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "paved_objects{{kind=\"SQL\"}} does not show the claim Ready={ready} Synced={synced}: {sql:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(inst.spec.for_provider.allocated_storage, Some(20));
    assert_eq!(
        inst.spec.for_provider.instance_class.as_deref(),
        Some("db.t3.micro")
    );
    let wcs = inst.spec.write_connection_secret_to_ref.clone().unwrap();
    assert_eq!(
        (wcs.namespace.as_deref(), wcs.name.as_str()),
        (Some(ns.as_str()), "orders-rds")
    );
    assert_eq!(
        inst.metadata.labels.as_ref().unwrap().get("team"),
        Some(&ns)
    );
    let owner = &inst.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SQL", "orders")
    );

    // Ready, and the Secret holds only the connectionSecretKeys.
    write_instance_secret(&client, &ns, &inst).await;
    set_instance_available(&client, &ns, "orders-db").await;
    let ready = wait_for(&claims, "orders", 30, "Ready", |c| {
        is_true(&serde_json::to_value(c).unwrap(), "Ready")
    })
    .await;
    assert_eq!(
        ready.data["status"]["address"], "eu-west-1",
        "ToCompositeFieldPath"
    );
    assert_eq!(ready.data["status"]["compositionRef"]["name"], comp_name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let s = wait_for(&secrets, "orders-conn", 30, "published", |_| true).await;
    let mut keys: Vec<_> = s.data.unwrap().into_keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["host", "password"],
        "filtered to connectionSecretKeys"
    );

    // An XRD update adding a field reaches the CRD, and a claim can use it.
    let tier = json!({"tier": {"type": "string", "description": "Service tier."}});
    ssa(&xrd_api(&client), &xrd(&group, tier), false)
        .await
        .unwrap();
    let mut accepted = false;
    for _ in 0..60 {
        let with_tier = json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "SQL",
            "metadata": {"name": "orders", "namespace": ns},
            "spec": {"tier": "gold", "writeConnectionSecretToRef": {"name": "orders-conn"}}});
        // Refused ("field not declared in schema") until paved has updated the CRD.
        if ssa(&claims, &with_tier, false).await.is_ok()
            && claims.get("orders").await.unwrap().data["spec"]["tier"] == "gold"
        {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(accepted, "spec.tier kept (not pruned) after the XRD update");
    // ...and the Composition's patch of it reaches the composed Instance.
    wait_for(&instances, "orders-db", 30, "tier label", |i| {
        i.metadata.labels.as_ref().and_then(|l| l.get("tier")) == Some(&"gold".to_string())
    })
    .await;

    // The seed claim is still Ready beside the XRD kind.
    only_seed_composition(&client).await;
    let _ = seed_ready(&client, &ns).await;
    let pg: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let seed = pg.get("my-app-db").await.unwrap();
    assert!(has_status(&seed, "Ready", ConditionStatus::True));

    // Deleting the XRD while a claim exists is held; the CRD stays.
    delete_xrd(&client, &xrd_name).await;
    let xrds: Api<CompositeResourceDefinition> = Api::all(client.clone());
    let held = wait_for(&xrds, &xrd_name, 30, "deletion held", |x| {
        x.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.reason == "DeletionHeld" && c.message.contains("orders"))
        })
    })
    .await;
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        crds.get_opt(&format!("sqls.{group}"))
            .await
            .unwrap()
            .is_some()
    );
    // Once the claim is gone, the XRD and its CRD go.
    delete_until_gone(&claims, "orders", 60).await;
    wait_deleted(&xrds, &xrd_name, 60).await;
    wait_deleted(&crds, &format!("sqls.{group}"), 60).await;
    delete_composition(&client, &comp_name).await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schema_and_a_conflicting_crd_are_reported_on_the_xrd() {
    let (client, ns) = setup("xrd-bad").await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let group = format!("b{}.example.org", random_suffix(6));
    let mut bad = xrd(&group, json!({"size": {"type": "string", "default": 5}}));
    bad["metadata"]["name"] = json!(format!("bad.{group}"));
    ssa(&xrd_api(&client), &bad, false).await.unwrap();
    let api: Api<CompositeResourceDefinition> = Api::all(client.clone());
    let x = wait_for(&api, &format!("bad.{group}"), 30, "InvalidSchema", |x| {
        x.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.reason == "InvalidSchema")
        })
    })
    .await;
    let msg = &x.status.unwrap().conditions[0].message;
    assert!(msg.contains("default"), "{msg}");
    // The built-in kind's CRD is not taken over.
    let mut conflict = xrd("database.example.com", json!({}));
    conflict["metadata"]["name"] = json!(format!("conflict-{}", random_suffix(5)));
    conflict["spec"]["claimNames"] =
        json!({"kind": "PostgreSQLInstance", "plural": "postgresqlinstances"});
    let cname = conflict["metadata"]["name"].as_str().unwrap().to_string();
    ssa(&xrd_api(&client), &conflict, false).await.unwrap();
    wait_for(&api, &cname, 30, "ConflictingCRD", |x| {
        x.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "ConflictingCRD"))
    })
    .await;
    delete_xrd(&client, &format!("bad.{group}")).await;
    delete_xrd(&client, &cname).await;
    wait_deleted(&api, &cname, 30).await;
    // The built-in CRD survived.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("postgresqlinstances.database.example.com")
            .await
            .unwrap()
            .is_some()
    );
    ctl.stop().await;
}

/// Every corpus XRD becomes a served kind and its example claim is accepted by the API server
/// (one at a time: several entries define the same kind). Skipped without the corpus (a fresh
/// clone has no ../shared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_xrd_becomes_a_served_kind_accepting_its_example() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/compositions");
    let dir = if dir.exists() {
        dir
    } else {
        std::path::PathBuf::from("/work/shared/corpus/compositions")
    };
    if !dir.exists() {
        eprintln!("no corpus at {}: skipped", dir.display());
        return;
    }
    let (client, ns) = setup("xrd-corpus").await;
    let ctl = ClaimController::start(&client, &ns, Duration::from_secs(600)).await;
    let api: Api<CompositeResourceDefinition> = Api::all(client.clone());
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("definition.yaml").exists())
        .map(|e| e.path())
        .collect();
    entries.sort();
    let (mut served, mut accepted, mut problems) = (0, 0, Vec::new());
    for entry in &entries {
        let short = entry.file_name().unwrap().to_string_lossy().to_string();
        let def = yaml_docs(&std::fs::read_to_string(entry.join("definition.yaml")).unwrap())
            .into_iter()
            .find(|d| d["kind"] == "CompositeResourceDefinition")
            .unwrap();
        let name = def["metadata"]["name"].as_str().unwrap().to_string();
        let mut ar = ApiResource::erase::<CompositeResourceDefinition>(&());
        if def["apiVersion"] == "apiextensions.crossplane.io/v2" {
            ar.version = "v2".into();
            ar.api_version = "apiextensions.crossplane.io/v2".into();
        }
        ssa(&Api::all_with(client.clone(), &ar), &def, false)
            .await
            .unwrap();
        let ok = tokio::time::timeout(Duration::from_secs(30), wait_established(&client, &name))
            .await
            .is_ok();
        if !ok {
            let x = api.get(&name).await.unwrap();
            problems.push(format!("{short}: not served: {:?}", x.status));
            delete_xrd(&client, &name).await;
            continue;
        }
        served += 1;
        let x = api.get(&name).await.unwrap();
        let claim_type = x
            .status
            .unwrap()
            .controllers
            .unwrap()
            .composite_resource_claim_type
            .unwrap();
        let examples =
            yaml_docs(&std::fs::read_to_string(entry.join("example-claim.yaml")).unwrap());
        let mut this_ok = false;
        for ex in examples
            .into_iter()
            .filter(|e| e["kind"] == claim_type.kind.as_str())
        {
            let mut ex = ex;
            ex["metadata"]["namespace"] = json!(ns);
            // Dry run: accepted by the API server's validation, nothing composed.
            let plural = def["spec"]["claimNames"]["plural"]
                .as_str()
                .filter(|_| !x_v2(&def))
                .or(def["spec"]["names"]["plural"].as_str())
                .unwrap();
            let (g, v) = claim_type.api_version.split_once('/').unwrap();
            let gvk = GroupVersionKind::gvk(g, v, &claim_type.kind);
            let api = Api::namespaced_with(
                client.clone(),
                &ns,
                &ApiResource::from_gvk_with_plural(&gvk, plural),
            );
            match ssa(&api, &ex, true).await {
                Ok(_) => this_ok = true,
                Err(e) => problems.push(format!("{short}: example refused: {e}")),
            }
        }
        if this_ok {
            accepted += 1;
        } else {
            problems.push(format!(
                "{short}: no example of kind {} accepted",
                claim_type.kind
            ));
        }
        delete_xrd(&client, &name).await;
        wait_deleted(&api, &name, 60).await;
    }
    eprintln!(
        "corpus: {served}/{} XRDs served, {accepted}/{} example claims accepted",
        entries.len(),
        entries.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    ctl.stop().await;
}

fn x_v2(def: &Value) -> bool {
    def["spec"]["scope"] == "Namespaced"
        || (def["apiVersion"] == "apiextensions.crossplane.io/v2" && def["spec"]["scope"].is_null())
}

/// `paved render --xrd`: the claim is validated against its XRD offline, defaults applied as
/// the API server would, every error in one run; Compositions may name the XR kind.
#[test]
fn render_validates_the_claim_against_the_xrd_offline() {
    let dir = tempfile::tempdir().unwrap();
    let group = "render.example.org";
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_yaml_ng::to_string(v).unwrap()).unwrap();
        p
    };
    let xrd_file = write("xrd.yaml", &xrd(group, json!({})));
    let comp_file = write("composition.yaml", &composition("c", group));
    let claim = |spec: Value| {
        json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "SQL",
            "metadata": {"name": "orders", "namespace": "shop"}, "spec": spec})
    };
    let args = |claim_file| paved::render::RenderArgs {
        claim: claim_file,
        composition: comp_file.clone(),
        observed: None,
        include_claim: false,
        xrd: Some(xrd_file.clone()),
        output: paved::render::OutputFormat::Yaml,
    };
    let bad = write(
        "bad.yaml",
        &claim(json!({"size": "huge", "storageGB": 5000, "extra": 1})),
    );
    let mut out = Vec::new();
    let err = paved::render::run(&args(bad), &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(3 errors)"), "{err}");
    for field in [
        "spec.size: Unsupported value",
        "spec.storageGB: Invalid value: 5000",
        "spec.extra: Unknown field",
    ] {
        assert!(err.contains(field), "{field} in {err}");
    }
    // Defaults applied: storageGB 20 and size small reach the composed Instance.
    let good = write("good.yaml", &claim(json!({})));
    let mut out = Vec::new();
    paved::render::run(&args(good), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("allocatedStorage: 20"), "{text}");
    assert!(text.contains("instanceClass: db.t3.micro"), "{text}");
}
