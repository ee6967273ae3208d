//! Compositions in mode Pipeline end to end: `paved run` as a process against the real
//! kube-apiserver and the RDS emulator, and `paved render`. function-patch-and-transform steps
//! (with patch sets) and function-auto-ready run in paved; any other Function is refused by step
//! and name, before anything is written and with no AWS call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use paved::api::{ConditionStatus, Instance, PostgreSQLInstance};
use serde_json::{Value, json};

/// On the Compositions these tests create: one a failed run left behind is deleted by the next
/// (other test files need to find only their own Compositions for PostgreSQLInstance).
const TEST_LABEL: &str = "paved-test/pipeline";

const GO_TEMPLATING_MESSAGE: &str = r#"runs Function "function-go-templating""#;

fn pipeline_composition(name: &str, extra_step: Option<Value>) -> Value {
    let mut pipeline = vec![
        json!({
            "step": "patch-and-transform",
            "functionRef": {"name": "crossplane-contrib-function-patch-and-transform"},
            "input": {
                "apiVersion": "pt.fn.crossplane.io/v1beta1",
                "kind": "Resources",
                "patchSets": [{"name": "sizing", "patches": [
                    {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"},
                    {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion"}
                ]}],
                "resources": [{
                    "name": "rds-instance",
                    "base": {
                        "apiVersion": "rds.aws.upbound.io/v1beta1",
                        "kind": "Instance",
                        "spec": {"forProvider": {"region": "ap-northeast-2", "instanceClass": "db.t3.micro", "engine": "postgres", "skipFinalSnapshot": true}}
                    },
                    "patches": [
                        {"type": "PatchSet", "patchSetName": "sizing"},
                        {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.environment", "toFieldPath": "metadata.labels.environment"}
                    ],
                    // Mode Pipeline publishes only the declared connection details.
                    "connectionDetails": [
                        {"name": "username", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "username"},
                        {"name": "password", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "password"},
                        {"name": "host", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "host"},
                        {"name": "port", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "port"}
                    ]
                }]
            }
        }),
        json!({"step": "automatically-detect-ready-composed-resources", "functionRef": {"name": "function-auto-ready"}}),
    ];
    pipeline.extend(extra_step);
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name, "labels": {TEST_LABEL: "true"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "mode": "Pipeline",
            "pipeline": pipeline
        }
    })
}

fn go_templating_step() -> Value {
    json!({"step": "render-templates", "functionRef": {"name": "function-go-templating"},
        "input": {"apiVersion": "gotemplating.fn.crossplane.io/v1beta1", "kind": "GoTemplate", "source": "Inline", "inline": {"template": ""}}})
}

fn claim(ns: &str, composition: &str) -> Value {
    let mut claim = yaml_docs(&read_project_file("examples/seed/claim.yaml")).remove(0);
    claim["metadata"]["namespace"] = json!(ns);
    claim["spec"]["compositionRef"] = json!({"name": composition});
    claim
}

fn condition(c: &PostgreSQLInstance, t: &str) -> Option<paved::api::Condition> {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == t).cloned())
}

/// `comp` applied, then `paved run` on `ns` (ready), then the claim `cl` applied.
async fn compose(client: &kube::Client, ns: &str, comp: &Value, cl: &Value) -> Paved {
    apply_json(client, comp, None, false).await.unwrap();
    let mut paved = Paved::start(&["--namespaces", ns], None, &format!("{ns}-paved"));
    paved.wait_ready(std::time::Duration::from_secs(90)).await;
    apply_json(client, cl, None, false).await.unwrap();
    paved
}

/// The sum of paved's AWS call counters.
fn aws_call_count(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("paved_rds_aws_calls"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_composition_provisions_an_instance_to_ready_with_its_secret() {
    let (client, ns) = setup("pipeline-ready").await;
    delete_compositions_labelled(&client, TEST_LABEL).await;
    let comp_name = format!("pg-pipeline-{ns}");
    let paved = compose(
        &client,
        &ns,
        &pipeline_composition(&comp_name, None),
        &claim(&ns, &comp_name),
    )
    .await;

    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let ready = wait_for(&claims, "my-app-db", 120, "Ready", |c| {
        condition(c, "Ready").is_some_and(|r| r.status == ConditionStatus::True)
    })
    .await;
    assert_eq!(
        ready.status.unwrap().composition_ref.unwrap().name,
        comp_name
    );

    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let inst = instances.get("my-app-db-rds-instance").await.unwrap();
    assert_eq!(inst.spec.for_provider.allocated_storage, Some(20));
    assert_eq!(inst.spec.for_provider.engine_version.as_deref(), Some("14"));
    assert_eq!(
        inst.metadata
            .labels
            .unwrap_or_default()
            .get("environment")
            .map(String::as_str),
        Some("staging")
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let creds = secrets.get("my-app-db-credentials").await.unwrap();
    let data = creds.data.unwrap_or_default();
    for key in ["username", "password", "host", "port"] {
        assert!(
            data.get(key).is_some_and(|v| !v.0.is_empty()),
            "credentials lack {key}: {:?}",
            data.keys()
        );
    }
    assert!(aws_call_count(&paved.metrics_text().await) > 0.0);

    delete_until_gone(&claims, "my-app-db", 120).await;
    wait_deleted(&instances, "my-app-db-rds-instance", 120).await;
    delete_composition(&client, &comp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_templating_step_is_refused_by_name_with_no_aws_call() {
    let (client, ns) = setup("pipeline-refused").await;
    delete_compositions_labelled(&client, TEST_LABEL).await;
    let comp_name = format!("pg-gotemplating-{ns}");
    let comp = pipeline_composition(&comp_name, Some(go_templating_step()));
    let paved = compose(&client, &ns, &comp, &claim(&ns, &comp_name)).await;

    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let refused = wait_for(&claims, "my-app-db", 60, "Synced=False", |c| {
        condition(c, "Synced").is_some_and(|s| s.status == ConditionStatus::False)
    })
    .await;
    let synced = condition(&refused, "Synced").unwrap();
    assert!(
        synced.message.contains("render-templates")
            && synced.message.contains(GO_TEMPLATING_MESSAGE),
        "{}",
        synced.message
    );
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    assert!(
        instances
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let metrics = paved.metrics_text().await;
    assert_eq!(aws_call_count(&metrics), 0.0, "{metrics}");

    delete_until_gone(&claims, "my-app-db", 60).await;
    delete_composition(&client, &comp_name).await;
}

fn render(composition: &Value, dir: &std::path::Path) -> std::process::Output {
    let comp_path = dir.join("composition.yaml");
    std::fs::write(&comp_path, serde_yaml_ng::to_string(composition).unwrap()).unwrap();
    let claim_path = dir.join("claim.yaml");
    std::fs::write(
        &claim_path,
        serde_yaml_ng::to_string(&claim("my-team", "pg")).unwrap(),
    )
    .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["render", "--claim"])
        .arg(&claim_path)
        .arg("--composition")
        .arg(&comp_path)
        .output()
        .unwrap()
}

#[test]
fn paved_render_runs_a_pipeline_and_refuses_go_templating_with_the_same_message() {
    let dir = std::env::temp_dir().join(format!("paved-pipeline-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = render(&pipeline_composition("pg", None), &dir);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let docs = yaml_docs(&stdout);
    assert_eq!(docs.len(), 1, "{stdout}");
    assert_eq!(docs[0]["kind"], "Instance");
    assert_eq!(docs[0]["spec"]["forProvider"]["allocatedStorage"], 20);

    let refused = render(
        &pipeline_composition("pg", Some(go_templating_step())),
        &dir,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("render-templates") && stderr.contains(GO_TEMPLATING_MESSAGE),
        "{stderr}"
    );
    assert!(
        stderr.contains("spec.pipeline[2].functionRef.name"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn paved_render_prints_every_error_with_its_path_and_json_on_request() {
    let dir = std::env::temp_dir().join(format!("paved-pipeline-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut comp = pipeline_composition("pg", Some(go_templating_step()));
    comp["spec"]["pipeline"][0]["input"]["resource"] = json!([]);
    let text = render(&comp, &dir);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert_eq!(text.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 errors"), "{stderr}");
    assert!(
        stderr.contains("spec.pipeline[0].input.resource")
            && stderr.contains("spec.pipeline[2].functionRef.name"),
        "{stderr}"
    );

    let comp_path = dir.join("composition.yaml");
    let claim_path = dir.join("claim.yaml");
    let json_out = std::process::Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["render", "--output", "json", "--claim"])
        .arg(&claim_path)
        .arg("--composition")
        .arg(&comp_path)
        .output()
        .unwrap();
    assert_eq!(json_out.status.code(), Some(1));
    let list: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().any(|e| {
        e["step"] == "render-templates"
            && e["path"] == "spec.pipeline[2].functionRef.name"
            && e["message"]
                .as_str()
                .unwrap()
                .contains(GO_TEMPLATING_MESSAGE)
    }));

    let ok = render(&pipeline_composition("pg", None), &dir);
    assert!(ok.status.success());
    let json_ok = std::process::Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["render", "--output", "json", "--claim"])
        .arg(&claim_path)
        .arg("--composition")
        .arg(&comp_path)
        .output()
        .unwrap();
    assert!(json_ok.status.success());
    let doc: Value = serde_json::from_slice(&json_ok.stdout).unwrap();
    assert_eq!(doc["resources"][0]["kind"], "Instance");
    assert_eq!(doc["skipped"], json!([]));
    std::fs::remove_dir_all(&dir).ok();
}

/// Data safety: a resource that exists and that a Required patch can no longer render (its
/// source removed from the claim) is skipped, and kept: never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_resource_a_required_patch_skips_is_kept() {
    let (client, ns) = setup("pipeline-skip").await;
    delete_compositions_labelled(&client, TEST_LABEL).await;
    let comp_name = format!("pg-required-{ns}");
    let mut comp = yaml_docs(&read_project_file("examples/seed/composition.yaml")).remove(0);
    comp["metadata"] = json!({"name": comp_name, "labels": {TEST_LABEL: "true"}});
    comp["spec"]["resources"][0]["base"]["spec"]["forProvider"]["skipFinalSnapshot"] = json!(true);
    comp["spec"]["resources"][0]["patches"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fromFieldPath": "spec.parameters.environment", "toFieldPath": "metadata.labels.environment", "policy": {"fromFieldPath": "Required"}}));
    let mut cl = claim(&ns, &comp_name);
    let _paved = compose(&client, &ns, &comp, &cl).await;
    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    wait_for(&claims, "my-app-db", 120, "Ready", |c| {
        condition(c, "Ready").is_some_and(|r| r.status == ConditionStatus::True)
    })
    .await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let uid = instances
        .get("my-app-db-rds-instance")
        .await
        .unwrap()
        .metadata
        .uid;

    cl["spec"]["parameters"]
        .as_object_mut()
        .unwrap()
        .remove("environment");
    apply_json(&client, &cl, None, false).await.unwrap();
    let skipped = wait_for(
        &claims,
        "my-app-db",
        60,
        "Ready=False naming the field",
        |c| {
            condition(c, "Ready").is_some_and(|r| {
                r.status == ConditionStatus::False
                    && r.message.contains("spec.parameters.environment")
            })
        },
    )
    .await;
    let status = skipped.status.unwrap();
    assert!(
        status
            .resource_refs
            .iter()
            .any(|r| r.name == "my-app-db-rds-instance"),
        "{:?}",
        status.resource_refs
    );
    // Several resyncs later it is still there, the same object, not being deleted.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let inst = instances.get("my-app-db-rds-instance").await.unwrap();
    assert_eq!(inst.metadata.uid, uid);
    assert!(inst.metadata.deletion_timestamp.is_none());

    delete_until_gone(&claims, "my-app-db", 120).await;
    wait_deleted(&instances, "my-app-db-rds-instance", 120).await;
    delete_composition(&client, &comp_name).await;
}
