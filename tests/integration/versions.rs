//! The Instance API versions against the real kube-apiserver: a Composition composing a v1beta3
//! Instance provisions it to Ready through the one RDS controller (the emulator behind it), and
//! `paved run`'s conversion webhook moves objects between v1beta1 (lists) and v1beta3 (objects)
//! for the API server, so that a v1beta1 object written and read as v1beta3 round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use paved::api::{ConditionStatus, Instance, PostgreSQLInstance};
use serde_json::{Value, json};

const TEST_LABEL: &str = "paved-test/versions";

fn composition(name: &str, instance_api_version: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name, "labels": {TEST_LABEL: "true"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "mode": "Pipeline",
            "pipeline": [
                {"step": "patch-and-transform", "functionRef": {"name": "function-patch-and-transform"},
                 "input": {
                    "apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources",
                    "patchSets": [{"name": "sizing", "patches": [
                        {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"},
                        {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion"}
                    ]}],
                    "resources": [{
                        "name": "rds-instance",
                        "base": {
                            "apiVersion": instance_api_version, "kind": "Instance",
                            "spec": {"forProvider": {"region": "ap-northeast-2", "instanceClass": "db.t3.micro", "engine": "postgres", "skipFinalSnapshot": true}}
                        },
                        "patches": [{"type": "PatchSet", "patchSetName": "sizing"}],
                        "connectionDetails": [
                            {"name": "username", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "username"},
                            {"name": "password", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "password"}
                        ]
                    }]
                 }},
                {"step": "ready", "functionRef": {"name": "function-auto-ready"}}
            ]
        }
    })
}

fn condition(c: &PostgreSQLInstance, t: &str) -> Option<paved::api::Condition> {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == t).cloned())
}

fn instance_resource(group: &str, version: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: "Instance".into(),
        plural: "instances".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_v1beta3_instance_becomes_ready_through_the_same_controller() {
    let (client, ns) = setup("versions-ready").await;
    delete_compositions_labelled(&client, TEST_LABEL).await;
    let comp_name = format!("pg-v1beta3-{ns}");
    apply_json(
        &client,
        &composition(&comp_name, "rds.aws.upbound.io/v1beta3"),
        None,
        false,
    )
    .await
    .unwrap();
    let mut paved = Paved::start(&["--namespaces", &ns], None, &format!("{ns}-paved"));
    paved.wait_ready(Duration::from_secs(90)).await;
    let mut claim = yaml_docs(&read_project_file("examples/seed/claim.yaml")).remove(0);
    claim["metadata"]["namespace"] = json!(ns);
    claim["spec"]["compositionRef"] = json!({"name": comp_name});
    apply_json(&client, &claim, None, false).await.unwrap();

    let claims: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), &ns);
    let ready = wait_for(&claims, "my-app-db", 120, "Ready", |c| {
        condition(c, "Ready").is_some_and(|r| r.status == ConditionStatus::True)
    })
    .await;
    let refs = ready.status.unwrap().resource_refs;
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].api_version, "rds.aws.upbound.io/v1beta3");

    // Composed and stored at v1beta3, reconciled by the one RDS controller.
    let v3: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &instance_resource("rds.aws.upbound.io", "v1beta3"),
    );
    let composed = v3.get(&refs[0].name).await.unwrap();
    let status = &composed.data["status"];
    assert_eq!(status["atProvider"]["status"], "available", "{status}");
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        "{status}"
    );
    assert_eq!(composed.data["spec"]["forProvider"]["allocatedStorage"], 20);
    // The same object read at v1beta1, the version the controller reads.
    let v1: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let typed = v1.get(&refs[0].name).await.unwrap();
    assert_eq!(typed.spec.for_provider.region, "ap-northeast-2");

    delete_until_gone(&claims, "my-app-db", 120).await;
    paved.stop();
    delete_composition(&client, &comp_name).await;
}

/// A CA and a serving certificate for 127.0.0.1 (openssl), as cert-manager would issue them.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=paved-test-ca",
            "-days",
            "1",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
}

/// The test copy's group: the Instance CRD exactly as paved generates it, in a group of its own,
/// so that its webhook conversion does not change the shared Instance CRD other tests use.
const TEST_GROUP: &str = "rds.versions-test.paved.dev";

/// The Instance CRD with `conversion`, served in `group` instead (a fresh copy, established), so
/// that a test can change its conversion without touching the real one other tests use.
async fn instance_crd_in(
    client: &kube::Client,
    group: &str,
    conversion: &paved::api::Conversion,
) -> (Api<CustomResourceDefinition>, String) {
    let mut crd = paved::api::all_crds_with(conversion)
        .into_iter()
        .find(|c| c.spec.group == "rds.aws.upbound.io")
        .unwrap();
    crd.spec.group = group.into();
    let name = format!("instances.{group}");
    crd.metadata.name = Some(name.clone());
    crd.metadata.annotations = None;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(&name, &DeleteParams::default()).await;
    wait_deleted(&crds, &name, 60).await;
    crds.create(&PostParams::default(), &crd).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds.clone(), &name, conditions::is_crd_established()),
    )
    .await
    .unwrap()
    .unwrap();
    (crds, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversion_webhook_round_trips_v1beta1_through_v1beta3_storage() {
    let client = client().await;
    let ns = test_namespace(&client, "versions-webhook").await;
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cert = dir.path().join("tls.crt").display().to_string();
    let key = dir.path().join("tls.key").display().to_string();
    let mut paved = Paved::start(
        &[
            "--namespaces",
            &ns,
            "--conversion-webhook-addr",
            &addr,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
        ],
        None,
        &format!("{ns}-paved"),
    );
    paved.wait_ready(Duration::from_secs(90)).await;

    let conversion = paved::api::Conversion::Url {
        url: format!("https://{addr}/convert"),
        ca_bundle: std::fs::read(dir.path().join("ca.crt")).unwrap(),
    };
    let (crds, name) = instance_crd_in(&client, TEST_GROUP, &conversion).await;

    let api = |version: &str| -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &ns, &instance_resource(TEST_GROUP, version))
    };
    let written = json!({
        "apiVersion": format!("{TEST_GROUP}/v1beta1"), "kind": "Instance",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"forProvider": {
            "region": "eu-west-1",
            "instanceClass": "db.t3.micro",
            "name": "appdb",
            "blueGreenUpdate": [{"enabled": true}],
            "restoreToPointInTime": [{"sourceDbInstanceIdentifier": "src", "useLatestRestorableTime": true}]
        }}
    });
    let obj: DynamicObject = serde_json::from_value(written.clone()).unwrap();
    // The first write may race the CRD's discovery; retry briefly.
    let mut created = None;
    for _ in 0..50 {
        match api("v1beta1").create(&PostParams::default(), &obj).await {
            Ok(o) => {
                created = Some(o);
                break;
            }
            Err(e) => {
                eprintln!("create at v1beta1: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(created.is_some(), "the v1beta1 object was never created");

    // Read as v1beta3 (the storage version): the singleton blocks are objects.
    let v3 = api("v1beta3").get("legacy").await.unwrap();
    let fp = &v3.data["spec"]["forProvider"];
    assert_eq!(fp["blueGreenUpdate"], json!({"enabled": true}), "{fp}");
    assert_eq!(
        fp["restoreToPointInTime"],
        json!({"sourceDbInstanceIdentifier": "src", "useLatestRestorableTime": true})
    );
    assert_eq!(fp["name"], "appdb");
    // Read back as v1beta1: what was written.
    let v1 = api("v1beta1").get("legacy").await.unwrap();
    assert_eq!(v1.data["spec"], written["spec"]);

    // Written at v1beta3 (objects), read at v1beta1 and v1beta2 (lists).
    let mut v3_written = json!({
        "apiVersion": format!("{TEST_GROUP}/v1beta3"), "kind": "Instance",
        "metadata": {"name": "current", "namespace": ns},
        "spec": {"forProvider": {"region": "eu-west-1", "instanceClass": "db.t3.micro",
            "s3Import": {"bucketName": "backups", "sourceEngine": "postgres"}}}
    });
    api("v1beta3")
        .create(
            &PostParams::default(),
            &serde_json::from_value(v3_written.clone()).unwrap(),
        )
        .await
        .unwrap();
    for version in ["v1beta1", "v1beta2"] {
        let got = api(version).get("current").await.unwrap();
        assert_eq!(
            got.data["spec"]["forProvider"]["s3Import"],
            json!([{"bucketName": "backups", "sourceEngine": "postgres"}]),
            "{version}"
        );
    }
    // An update at v1beta1 goes through the webhook and lands as an object again.
    let mut old = api("v1beta1").get("current").await.unwrap();
    old.data["spec"]["forProvider"]["s3Import"][0]["bucketPrefix"] = json!("nightly");
    api("v1beta1")
        .replace("current", &PostParams::default(), &old)
        .await
        .unwrap();
    v3_written["spec"]["forProvider"]["s3Import"]["bucketPrefix"] = json!("nightly");
    let got = api("v1beta3").get("current").await.unwrap();
    assert_eq!(got.data["spec"], v3_written["spec"]);

    let live = crds.get(&name).await.unwrap();
    assert_eq!(
        live.status.unwrap().stored_versions,
        Some(vec!["v1beta3".to_string()])
    );
    // The webhook really answered: a v1beta1 list of two blocks cannot be one object, and the
    // API server reports the webhook's message.
    let mut two = written.clone();
    two["metadata"]["name"] = json!("two");
    two["spec"]["forProvider"]["blueGreenUpdate"] = json!([{"enabled": true}, {"enabled": false}]);
    let e = api("v1beta1")
        .create(
            &PostParams::default(),
            &serde_json::from_value(two).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("spec.forProvider.blueGreenUpdate has 2 elements"),
        "{e}"
    );

    for n in ["legacy", "current"] {
        let _ = api("v1beta3").delete(n, &DeleteParams::default()).await;
    }
    let _ = crds.delete(&name, &DeleteParams::default()).await;
    paved.stop();
}

/// The group of the CRD the self-managed webhook test points at itself (not the real
/// Instance CRD, which other tests use at the same time).
const OWN_CERT_GROUP: &str = "rds.versions-own-cert.paved.dev";

/// `paved run --conversion-webhook-secret` on the webhook's port `port`, pointing
/// `instances.<OWN_CERT_GROUP>` at itself.
fn paved_with_own_certificate(ns: &str, port: u16) -> Paved {
    let addr = format!("127.0.0.1:{port}");
    let url = format!("https://{addr}/convert");
    let secret = format!("{ns}/paved-webhook-tls");
    let crd = format!("instances.{OWN_CERT_GROUP}");
    Paved::start(
        &[
            "--namespaces",
            ns,
            "--conversion-webhook-addr",
            &addr,
            "--conversion-webhook-secret",
            &secret,
            "--conversion-webhook-url",
            &url,
            "--conversion-webhook-crd",
            &crd,
        ],
        None,
        &format!("{ns}-paved"),
    )
}

fn ca_bundle(crd: &CustomResourceDefinition) -> Option<Vec<u8>> {
    let conv = crd.spec.conversion.as_ref()?;
    (conv.strategy == "Webhook").then_some(())?;
    let cc = conv.webhook.as_ref()?.client_config.as_ref()?;
    cc.ca_bundle.as_ref().map(|b| b.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paved_makes_its_own_webhook_certificate_and_points_the_crd_at_itself() {
    let client = client().await;
    let ns = test_namespace(&client, "versions-own-cert").await;
    // The CRD as `crds/` ships it: strategy None.
    let (crds, name) =
        instance_crd_in(&client, OWN_CERT_GROUP, &paved::api::Conversion::None).await;

    let port = free_port();
    let mut paved = paved_with_own_certificate(&ns, port);
    paved.wait_ready(Duration::from_secs(90)).await;
    // The CRD now calls paved, trusting the CA paved keeps in its Secret.
    let pointed = wait_for(&crds, &name, 60, "pointed at the webhook", |c| {
        ca_bundle(c).is_some()
    })
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let stored = secrets.get("paved-webhook-tls").await.unwrap();
    let data = stored.data.clone().unwrap();
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(data.get(key).is_some_and(|v| !v.0.is_empty()), "{key}");
    }
    assert_eq!(ca_bundle(&pointed).unwrap(), data["ca.crt"].0);
    let cc = pointed
        .spec
        .conversion
        .unwrap()
        .webhook
        .unwrap()
        .client_config
        .unwrap();
    assert_eq!(cc.url.unwrap(), format!("https://127.0.0.1:{port}/convert"));

    // A v1beta1 object with list blocks is stored at v1beta3 as objects, through the webhook.
    let api = |version: &str| -> Api<DynamicObject> {
        Api::namespaced_with(
            client.clone(),
            &ns,
            &instance_resource(OWN_CERT_GROUP, version),
        )
    };
    let written: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{OWN_CERT_GROUP}/v1beta1"), "kind": "Instance",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"forProvider": {"region": "eu-west-1", "instanceClass": "db.t3.micro",
            "blueGreenUpdate": [{"enabled": true}]}}
    }))
    .unwrap();
    let mut created = false;
    for _ in 0..50 {
        match api("v1beta1")
            .create(&PostParams::default(), &written)
            .await
        {
            Ok(_) => {
                created = true;
                break;
            }
            Err(e) => {
                eprintln!("create at v1beta1: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(created, "the v1beta1 object was never created");
    let v3 = api("v1beta3").get("legacy").await.unwrap();
    assert_eq!(
        v3.data["spec"]["forProvider"]["blueGreenUpdate"],
        json!({"enabled": true})
    );

    // A restart reuses the certificate: the Secret and the CRD's CA are unchanged, and the
    // API server still trusts the webhook.
    paved.stop();
    let mut again = paved_with_own_certificate(&ns, port);
    again.wait_ready(Duration::from_secs(90)).await;
    let after = secrets.get("paved-webhook-tls").await.unwrap();
    assert_eq!(after.data, stored.data);
    assert_eq!(
        ca_bundle(&crds.get(&name).await.unwrap()),
        Some(data["ca.crt"].0.clone())
    );
    let mut read = None;
    for _ in 0..50 {
        match api("v1beta1").get("legacy").await {
            Ok(o) => {
                read = Some(o);
                break;
            }
            Err(e) => {
                eprintln!("read at v1beta1: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert_eq!(
        read.unwrap().data["spec"]["forProvider"]["blueGreenUpdate"],
        json!([{"enabled": true}])
    );
    let _ = api("v1beta3")
        .delete("legacy", &DeleteParams::default())
        .await;
    let _ = crds.delete(&name, &DeleteParams::default()).await;
    again.stop();
}
