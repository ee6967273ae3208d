//! The namespaced twins (`rds.aws.m.upbound.io`, `ec2.aws.m.upbound.io`, the Crossplane v2 shape)
//! against the real API server and the emulator: a Pipeline Composition composes a v1beta3
//! Instance beside a twin Instance inside a twin network, through a namespaced ProviderConfig;
//! both become Ready through the one controller of their kind, and deleting the claim removes
//! everything. A twin's reference into another namespace is refused before any lookup or AWS
//! call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use paved::api::PostgreSQLInstance;
use serde_json::{Value, json};

/// The twin `kind` (plural `plural`) in `group`.
fn twin_api(client: &kube::Client, ns: &str, group: &str, kind: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1beta1", kind));
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn is_true(o: &DynamicObject, t: &str) -> bool {
    condition(&serde_json::to_value(o).unwrap(), t).is_some_and(|c| c["status"] == "True")
}

fn synced_false(o: &DynamicObject) -> Option<(String, String)> {
    let v = serde_json::to_value(o).unwrap();
    let c = condition(&v, "Synced")?;
    (c["status"] == "False").then(|| {
        (
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["message"].as_str().unwrap_or_default().to_string(),
        )
    })
}

fn external_name_of(o: &DynamicObject) -> String {
    o.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("crossplane.io/external-name"))
        .cloned()
        .unwrap()
}

/// The namespaced ProviderConfig `team` (aws.m.upbound.io) in `ns`, on the emulator, reading the
/// credentials Secret of its own namespace.
async fn namespaced_provider_config(client: &kube::Client, ns: &str) {
    apply(
        client,
        &json!({"apiVersion": "aws.m.upbound.io/v1beta1", "kind": "ProviderConfig",
                "metadata": {"name": "team", "namespace": ns},
                "spec": {"credentials": {"source": "Secret", "secretRef": {"name": "aws-creds", "key": "credentials"}},
                         "endpoint": {"url": {"type": "Static", "static": e2e_env().moto_url}}}}),
    )
    .await
    .unwrap();
}

/// One function-patch-and-transform step (with a patch set): a v1beta3 Instance through the
/// cluster-wide ProviderConfig `pc`, and the twin network with a twin Instance through the
/// namespaced ProviderConfig `team`.
fn composition(name: &str, region: &str, pc: &str, vpc: &str, subnets: &[String]) -> Value {
    let twin_pc = json!({"kind": "ProviderConfig", "name": "team"});
    let engine = json!({"region": region, "engine": "postgres", "engineVersion": "16.3",
                        "instanceClass": "db.t3.micro", "skipFinalSnapshot": true});
    let mut twin_engine = engine.clone();
    twin_engine["dbSubnetGroupNameSelector"] = json!({"matchControllerRef": true});
    twin_engine["vpcSecurityGroupIdSelector"] = json!({"matchControllerRef": true});
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        // Labelled so that the claim tests delete it if this test fails before it does.
        "metadata": {"name": name, "labels": {TEST_COMPOSITION_LABEL: "true"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "mode": "Pipeline",
            "pipeline": [
                {"step": "patch-and-transform",
                 "functionRef": {"name": "function-patch-and-transform"},
                 "input": {
                    "apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources",
                    "patchSets": [{"name": "sizing", "patches": [
                        {"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}]}],
                    "resources": [
                        {"name": "stored", "base": {
                            "apiVersion": "rds.aws.upbound.io/v1beta3", "kind": "Instance",
                            "spec": {"providerConfigRef": {"name": pc}, "forProvider": engine}},
                         "patches": [{"type": "PatchSet", "patchSetName": "sizing"}]},
                        {"name": "subnets", "base": {
                            "apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "SubnetGroup",
                            "spec": {"providerConfigRef": twin_pc,
                                     "forProvider": {"region": region, "description": "twin subnets", "subnetIds": subnets}}}},
                        {"name": "firewall", "base": {
                            "apiVersion": "ec2.aws.m.upbound.io/v1beta1", "kind": "SecurityGroup",
                            "spec": {"providerConfigRef": twin_pc,
                                     "forProvider": {"region": region, "vpcId": vpc, "description": "twin postgres"}}}},
                        {"name": "ingress", "base": {
                            "apiVersion": "ec2.aws.m.upbound.io/v1beta1", "kind": "SecurityGroupRule",
                            "spec": {"providerConfigRef": twin_pc,
                                     "forProvider": {"region": region, "type": "ingress", "protocol": "tcp",
                                                     "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.20.0.0/16"],
                                                     "securityGroupIdSelector": {"matchControllerRef": true}}}}},
                        {"name": "twin", "base": {
                            "apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "Instance",
                            "spec": {"providerConfigRef": twin_pc, "forProvider": twin_engine}},
                         "patches": [
                            {"type": "PatchSet", "patchSetName": "sizing"},
                            {"type": "FromCompositeFieldPath", "fromFieldPath": "metadata.name",
                             "toFieldPath": "spec.writeConnectionSecretToRef.name",
                             "transforms": [{"type": "string", "string": {"type": "Format", "fmt": "%s-twin-conn"}}]}]}
                    ]
                 }},
                {"step": "ready", "functionRef": {"name": "function-auto-ready"}}
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_composes_a_v1beta3_instance_and_a_twin_inside_its_twin_network() {
    let region = "af-south-1";
    let env = RdsEnv::new("twins", region, None).await;
    namespaced_provider_config(&env.client, &env.ns).await;
    let ec2 = emulator_ec2(region).await;
    let (vpc, subnets) = existing_network(&ec2, region).await;
    let comp = format!("twins-{}", env.ns);
    apply_json(
        &env.client,
        &composition(&comp, region, &env.pc, &vpc, &subnets),
        None,
        false,
    )
    .await
    .unwrap();
    let rds = RdsController::start(&env.client, &env.ns, fast()).await;
    let claims_ctl = ClaimController::start(&env.client, &env.ns, Duration::from_secs(600)).await;
    apply_claim(
        &env.client,
        &json!({
            "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
            "metadata": {"name": "app", "namespace": env.ns},
            "spec": {"parameters": {"storageGB": 20, "version": "16", "environment": "dev"},
                     "compositionRef": {"name": comp}}
        }),
    )
    .await;

    let claims: Api<PostgreSQLInstance> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(&claims, "app", 180, "Ready", |c| is_true_cond(c, "Ready")).await;

    // The v1beta3 Instance and the twin, both Ready, each reconciled by the Instance controller.
    let stored = env.instances.get("app-stored").await.unwrap();
    assert!(instance_ready_and_synced(&stored));
    let twins = twin_api(&env.client, &env.ns, "rds.aws.m.upbound.io", "Instance");
    let twin = twins.get("app-twin").await.unwrap();
    assert!(
        is_true(&twin, "Ready") && is_true(&twin, "Synced"),
        "{twin:?}"
    );
    assert_eq!(twin.data["spec"]["forProvider"]["allocatedStorage"], 20);

    // The twin database is in the twin subnet group, behind the twin security group.
    let sng = twin_api(&env.client, &env.ns, "rds.aws.m.upbound.io", "SubnetGroup")
        .get("app-subnets")
        .await
        .unwrap();
    let sg = twin_api(
        &env.client,
        &env.ns,
        "ec2.aws.m.upbound.io",
        "SecurityGroup",
    )
    .get("app-firewall")
    .await
    .unwrap();
    let rule = twin_api(
        &env.client,
        &env.ns,
        "ec2.aws.m.upbound.io",
        "SecurityGroupRule",
    )
    .get("app-ingress")
    .await
    .unwrap();
    assert!(is_true(&sng, "Ready") && is_true(&sg, "Ready") && is_true(&rule, "Ready"));
    let group_name = external_name_of(&sng);
    let sg_id = sg.data["status"]["atProvider"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = external_name_of(&twin);
    let db = paved::rds::client::from_sdk(&describe(&env.rds, &id).await.unwrap());
    assert_eq!(
        db.db_subnet_group_name.as_deref(),
        Some(group_name.as_str())
    );
    assert_eq!(db.vpc_security_group_ids, vec![sg_id.clone()]);
    // The v1beta3 one is in the default network: its Composition wired nothing.
    let stored_db = describe(&env.rds, &external_name(&stored)).await.unwrap();
    assert_ne!(
        stored_db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name()),
        Some(group_name.as_str())
    );

    // The twin's connection Secret, named without a namespace, is in the object's namespace.
    let conn = env.secret_data("app-twin-conn").await;
    for key in ["username", "password", "endpoint", "port"] {
        assert!(
            conn.get(key).is_some_and(|v| !v.is_empty()),
            "twin connection Secret lacks {key}: {:?}",
            conn.keys()
        );
    }

    // Deleting the claim removes both databases and the whole twin network.
    delete_until_gone(&claims, "app", 240).await;
    // With the default Background policy the composed objects go after the claim, each once
    // its AWS resource is gone: the Instances first, the groups when nothing uses them.
    wait_deleted(&env.instances, "app-stored", 120).await;
    wait_deleted(&twins, "app-twin", 120).await;
    for (group, kind, name) in [
        ("ec2.aws.m.upbound.io", "SecurityGroupRule", "app-ingress"),
        ("ec2.aws.m.upbound.io", "SecurityGroup", "app-firewall"),
        ("rds.aws.m.upbound.io", "SubnetGroup", "app-subnets"),
    ] {
        wait_deleted(&twin_api(&env.client, &env.ns, group, kind), name, 120).await;
    }
    let left_db = describe(&env.rds, &id).await;
    assert!(left_db.is_none(), "{left_db:?}");
    assert!(describe(&env.rds, &external_name(&stored)).await.is_none());
    assert_network_gone(&ec2, &env.rds, &sg_id, &group_name).await;
    claims_ctl.stop().await;
    rds.stop().await;
    delete_until_gone(
        &Api::<paved::api::Composition>::all(env.client.clone()),
        &comp,
        30,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_reference_into_another_namespace_is_refused_without_a_lookup_or_aws_call() {
    let region = "me-central-1";
    let env = RdsEnv::new("twin-xns", region, None).await;
    namespaced_provider_config(&env.client, &env.ns).await;
    // The victim's subnet group, in its own namespace (no controller runs there).
    let victim = test_namespace(&env.client, "twin-victim").await;
    apply(
        &env.client,
        &json!({"apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "SubnetGroup",
                "metadata": {"name": "theirs", "namespace": victim,
                             "annotations": {"crossplane.io/external-name": "victim-subnets"}},
                "spec": {"forProvider": {"region": region, "subnetIds": ["subnet-1", "subnet-2"]}}}),
    )
    .await
    .unwrap();
    let rds = RdsController::start(&env.client, &env.ns, fast()).await;
    let twins = twin_api(&env.client, &env.ns, "rds.aws.m.upbound.io", "Instance");
    apply(
        &env.client,
        &json!({"apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "Instance",
                "metadata": {"name": "thief", "namespace": env.ns},
                "spec": {"providerConfigRef": {"kind": "ProviderConfig", "name": "team"},
                         "forProvider": {"region": region, "engine": "postgres", "instanceClass": "db.t3.micro",
                                         "allocatedStorage": 20, "skipFinalSnapshot": true,
                                         "dbSubnetGroupNameRef": {"name": "theirs", "namespace": victim}}}}),
    )
    .await
    .unwrap();
    let refused = wait_for(&twins, "thief", 60, "Synced=False", |o| {
        synced_false(o).is_some()
    })
    .await;
    let (reason, message) = synced_false(&refused).unwrap();
    assert_eq!(reason, "CrossNamespaceReference", "{message}");
    assert!(
        message.contains("spec.forProvider.dbSubnetGroupNameRef") && message.contains(&victim),
        "{message}"
    );
    // Nothing was resolved into the spec, and nothing was created.
    assert!(
        refused.data["spec"]["forProvider"]
            .get("dbSubnetGroupName")
            .is_none()
    );
    assert_eq!(rds.calls("CreateDBInstance"), 0);
    assert!(env.own_ids().await.is_empty());
    delete_until_gone(&twins, "thief", 60).await;
    rds.stop().await;
}
