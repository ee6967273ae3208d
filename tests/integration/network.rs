//! The network around the database, against the real API server and the emulator: the platform
//! team's existing VPC and subnets are made with the emulator's EC2 API; paved composes a DB
//! subnet group, a security group and its ingress rule, and an Instance wired to them by
//! selectors and references, and deletes them in dependency order (the emulator's shim refuses,
//! as AWS does, to delete a group still in use).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use paved::api::{Instance, PostgreSQLInstance, SecurityGroup, SecurityGroupRule, SubnetGroup};
use serde_json::{Value, json};

fn claim(ns: &str, name: &str, composition: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parameters": {"storageGB": 20, "version": "16", "environment": "dev"},
                 "compositionRef": {"name": composition},
                 "writeConnectionSecretToRef": {"name": format!("{name}-credentials")}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_with_its_network_becomes_ready_inside_it_and_is_deleted_in_order() {
    let region = "eu-west-3";
    let env = RdsEnv::new("net", region, None).await;
    let ec2 = emulator_ec2(region).await;
    let (vpc, subnets) = existing_network(&ec2, region).await;
    let comp = format!("net-{}", env.ns);
    apply_json(
        &env.client,
        &network_composition(&comp, region, &env.pc, &vpc, &subnets),
        None,
        false,
    )
    .await
    .unwrap();
    let rds = RdsController::start(&env.client, &env.ns, fast()).await;
    let claims_ctl = ClaimController::start(&env.client, &env.ns, Duration::from_secs(600)).await;
    apply_claim(&env.client, &claim(&env.ns, "app", &comp)).await;

    let claims: Api<PostgreSQLInstance> = Api::namespaced(env.client.clone(), &env.ns);
    let claim = wait_for(&claims, "app", 120, "Ready", |c| is_true_cond(c, "Ready")).await;
    assert!(is_true_cond(&claim, "Ready"));

    // The emulator shows the database in that subnet group, behind that group, with the rule.
    let sgs: Api<SecurityGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let sngs: Api<SubnetGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let rules: Api<SecurityGroupRule> = Api::namespaced(env.client.clone(), &env.ns);
    let sg = sgs.get("app-security-group").await.unwrap();
    let sg_id = sg
        .status
        .as_ref()
        .and_then(|s| s.at_provider.as_ref())
        .and_then(|a| a.id.clone())
        .unwrap();
    let sng = sngs.get("app-subnet-group").await.unwrap();
    let group_name = sng
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let inst = env.instances.get("app-rds-instance").await.unwrap();
    assert_eq!(
        inst.spec.for_provider.db_subnet_group_name.as_deref(),
        Some(group_name.as_str())
    );
    assert_eq!(
        inst.spec
            .for_provider
            .vpc_security_group_ids
            .clone()
            .unwrap_or_default(),
        vec![sg_id.clone()]
    );
    let id = inst
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let db = paved::rds::client::from_sdk(&describe(&env.rds, &id).await.unwrap());
    assert_eq!(
        db.db_subnet_group_name.as_deref(),
        Some(group_name.as_str())
    );
    assert_eq!(db.vpc_security_group_ids, vec![sg_id.clone()]);
    let ingress = ec2.describe_security_group_rules().send().await.unwrap();
    let ours: Vec<_> = ingress
        .security_group_rules()
        .iter()
        .filter(|r| r.group_id() == Some(sg_id.as_str()) && r.is_egress() == Some(false))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].cidr_ipv4(), Some("10.20.0.0/16"));
    assert_eq!(ours[0].from_port(), Some(5432));
    let rule = rules.get("app-postgres-ingress").await.unwrap();
    assert!(is_true_cond(&rule, "Ready"));

    // Deletion removes all four: the Instance first; the groups wait until nothing uses them.
    delete_until_gone(&claims, "app", 180).await;
    for n in ["app-rds-instance"] {
        wait_deleted(&env.instances, n, 60).await;
    }
    wait_deleted(&rules, "app-postgres-ingress", 60).await;
    wait_deleted(&sgs, "app-security-group", 60).await;
    wait_deleted(&sngs, "app-subnet-group", 60).await;
    assert!(describe(&env.rds, &id).await.is_none());
    assert_network_gone(&ec2, &env.rds, &sg_id, &group_name).await;
    claims_ctl.stop().await;
    rds.stop().await;
    // Other suites expect only their own Compositions for PostgreSQLInstance.
    delete_until_gone(
        &Api::<paved::api::Composition>::all(env.client.clone()),
        &comp,
        30,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_subnet_id_and_unready_references_are_named_and_refs_and_labels_resolve() {
    let region = "eu-north-1";
    let env = RdsEnv::new("netref", region, None).await;
    let ec2 = emulator_ec2(region).await;
    let (vpc, subnets) = existing_network(&ec2, region).await;
    let rds = RdsController::start(&env.client, &env.ns, fast()).await;
    let sngs: Api<SubnetGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let sgs: Api<SecurityGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let pc = json!({"name": env.pc});

    // A subnet that does not exist: AWS's message in Synced.
    let broken: SubnetGroup = serde_json::from_value(json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
        "metadata": {"name": "broken"},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": region, "subnetIds": [subnets[0].clone(), "subnet-doesnotexist"]}}
    }))
    .unwrap();
    sngs.create(&PostParams::default(), &broken).await.unwrap();
    let b = wait_for(&sngs, "broken", 60, "Synced=False", |o| {
        cond(o, "Synced").is_some_and(|c| c.message.contains("subnet-doesnotexist"))
    })
    .await;
    let c = cond(&b, "Synced").unwrap();
    assert_eq!(c.reason, "AWSError");
    assert!(
        c.message.contains("InvalidSubnetID.NotFound"),
        "{}",
        c.message
    );

    // An Instance naming a subnet group by Ref and security groups by labels waits for them,
    // naming what it waits for, and creates nothing meanwhile.
    let inst: Instance = serde_json::from_value(env.instance_json(
        "wired",
        json!({"spec": {"forProvider": {
            "dbSubnetGroupNameRef": {"name": "net"},
            "vpcSecurityGroupIdSelector": {"matchLabels": {"role": "db"}}
        }}}),
    ))
    .unwrap();
    env.instances
        .create(&PostParams::default(), &inst)
        .await
        .unwrap();
    let w = wait_for(&env.instances, "wired", 60, "waiting", |o| {
        cond(o, "Synced").is_some_and(|c| c.reason == "ReferenceNotReady")
    })
    .await;
    let msg = &cond(&w, "Synced").unwrap().message;
    assert!(
        msg.contains("SubnetGroup net (dbSubnetGroupNameRef)"),
        "{msg}"
    );
    assert!(
        env.own_ids().await.is_empty(),
        "no database without its network"
    );

    let net: SubnetGroup = serde_json::from_value(json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
        "metadata": {"name": "net"},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": region, "subnetIds": subnets}}
    }))
    .unwrap();
    sngs.create(&PostParams::default(), &net).await.unwrap();
    let sg: SecurityGroup = serde_json::from_value(json!({
        "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroup",
        "metadata": {"name": "db-sg", "labels": {"role": "db"}},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": region, "vpcId": vpc}}
    }))
    .unwrap();
    sgs.create(&PostParams::default(), &sg).await.unwrap();
    let other: SecurityGroup = serde_json::from_value(json!({
        "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroup",
        "metadata": {"name": "web-sg", "labels": {"role": "web"}},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": region, "vpcId": vpc}}
    }))
    .unwrap();
    sgs.create(&PostParams::default(), &other).await.unwrap();
    let inst = env.wait_ready("wired", 120).await;
    let sg = sgs.get("db-sg").await.unwrap();
    let sg_id = sg
        .status
        .and_then(|s| s.at_provider)
        .and_then(|a| a.id)
        .unwrap();
    let net = sngs.get("net").await.unwrap();
    let net_name = net
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let id = inst
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let db = paved::rds::client::from_sdk(&describe(&env.rds, &id).await.unwrap());
    assert_eq!(db.db_subnet_group_name.as_deref(), Some(net_name.as_str()));
    assert_eq!(db.vpc_security_group_ids, vec![sg_id]);

    // Deleting the subnet group while the database uses it: it waits, naming the dependency.
    sngs.delete("net", &DeleteParams::default()).await.unwrap();
    let d = wait_for(&sngs, "net", 60, "DependencyViolation", |o| {
        cond(o, "Synced").is_some_and(|c| c.reason == "DependencyViolation")
    })
    .await;
    assert!(
        cond(&d, "Synced").unwrap().message.contains(&id),
        "{:?}",
        cond(&d, "Synced")
    );
    // Counted under paved's reason with AWS's own code, not "none".
    assert!(
        rds.metrics.failures(
            "SubnetGroup",
            "DependencyViolation",
            "InvalidDBSubnetGroupStateFault"
        ) > 0
    );
    assert_eq!(
        rds.metrics
            .failures("SubnetGroup", "DependencyViolation", "none"),
        0
    );
    delete_until_gone(&env.instances, "wired", 60).await;
    wait_deleted(&sngs, "net", 60).await;
    for n in ["db-sg", "web-sg"] {
        delete_until_gone(&sgs, n, 60).await;
    }
    delete_until_gone(&sngs, "broken", 60).await;
    rds.stop().await;
}

/// Re-adoption of the network kinds against the emulator: a claim composes a SubnetGroup and a
/// SecurityGroup with `deletionPolicy: Orphan`. Deleting both objects leaves the groups in AWS;
/// the claim composes them again, and the new objects re-adopt the very groups their orphaned
/// predecessors left (same group name, same `sg-` id, no duplicate in the emulator, no second
/// create, the ownership tags rewritten to the new objects), each with a
/// ReadoptedExternalResource Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_claim_readopts_the_groups_its_orphaned_objects_left() {
    let region = "ap-northeast-3";
    let env = RdsEnv::new("netadopt", region, None).await;
    let ec2 = emulator_ec2(region).await;
    let (vpc, subnets) = existing_network(&ec2, region).await;
    let comp = format!("netadopt-{}", env.ns);
    // Deleted even when the test fails: other suites expect only their own Compositions.
    let mut cleanup = ClusterCleanup::new(&e2e_env());
    cleanup.composition(&comp);
    let composition = json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        "metadata": {"name": comp},
        "spec": {
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "resources": [
                {"name": "subnet-group", "base": {
                    "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
                    "spec": {"providerConfigRef": {"name": env.pc}, "deletionPolicy": "Orphan",
                             "forProvider": {"region": region, "description": "db subnets", "subnetIds": subnets}}}},
                {"name": "security-group", "base": {
                    "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroup",
                    "spec": {"providerConfigRef": {"name": env.pc}, "deletionPolicy": "Orphan",
                             "forProvider": {"region": region, "vpcId": vpc, "description": "postgres"}}}}
            ]
        }
    });
    apply_json(&env.client, &composition, None, false)
        .await
        .unwrap();
    let rds = RdsController::start(&env.client, &env.ns, fast()).await;
    let claims_ctl = ClaimController::start(&env.client, &env.ns, Duration::from_secs(600)).await;
    apply_claim(&env.client, &claim(&env.ns, "keep", &comp)).await;

    let sgs: Api<SecurityGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let sngs: Api<SubnetGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let (sg_name, sng_name) = ("keep-security-group", "keep-subnet-group");
    let sg = wait_for(&sgs, sg_name, 90, "Ready", |o| is_true_cond(o, "Ready")).await;
    let sng = wait_for(&sngs, sng_name, 90, "Ready", |o| is_true_cond(o, "Ready")).await;
    let sg_id = sg
        .status
        .as_ref()
        .and_then(|s| s.at_provider.as_ref())
        .and_then(|a| a.id.clone())
        .unwrap();
    let group_name = sng
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let (old_sg_uid, old_sng_uid) = (sg.uid().unwrap(), sng.uid().unwrap());
    let sg_tags = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_security_groups()
                .group_ids(id)
                .send()
                .await
                .unwrap();
            let g = out.security_groups().first().cloned().unwrap();
            g.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        }
    };
    let sng_tags = || async {
        let arn = env
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(&group_name)
            .send()
            .await
            .unwrap()
            .db_subnet_groups()
            .first()
            .and_then(|g| g.db_subnet_group_arn().map(str::to_string))
            .unwrap();
        let out = env
            .rds
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .unwrap();
        out.tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let claim_uid = Api::<PostgreSQLInstance>::namespaced(env.client.clone(), &env.ns)
        .get("keep")
        .await
        .unwrap()
        .uid()
        .unwrap();
    assert_eq!(
        sg_tags(sg_id.clone()).await["paved.io/composed-by"],
        format!("{claim_uid}/security-group")
    );
    assert_eq!(
        sng_tags().await["paved.io/composed-by"],
        format!("{claim_uid}/subnet-group")
    );
    let groups_in_vpc = || async {
        let out = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .security_groups()
            .iter()
            .filter(|g| g.group_name() != Some("default"))
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(groups_in_vpc().await, vec![sg_id.clone()]);

    // Orphan both; the claim composes them again.
    sgs.delete(sg_name, &DeleteParams::default()).await.unwrap();
    sngs.delete(sng_name, &DeleteParams::default())
        .await
        .unwrap();
    let sg2 = wait_for(&sgs, sg_name, 90, "recomposed and Ready", |o| {
        o.uid().as_deref() != Some(old_sg_uid.as_str()) && is_true_cond(o, "Ready")
    })
    .await;
    let sng2 = wait_for(&sngs, sng_name, 90, "recomposed and Ready", |o| {
        o.uid().as_deref() != Some(old_sng_uid.as_str()) && is_true_cond(o, "Ready")
    })
    .await;
    assert_eq!(
        sg2.status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.id.clone())
            .as_deref(),
        Some(sg_id.as_str()),
        "the same security group"
    );
    assert_eq!(
        sng2.annotations()
            .get("crossplane.io/external-name")
            .map(String::as_str),
        Some(group_name.as_str())
    );
    assert_eq!(
        groups_in_vpc().await,
        vec![sg_id.clone()],
        "no second group"
    );
    assert_eq!(rds.calls("CreateSecurityGroup"), 1);
    assert_eq!(rds.calls("CreateDBSubnetGroup"), 1);
    let (new_sg_uid, new_sng_uid) = (sg2.uid().unwrap(), sng2.uid().unwrap());
    for _ in 0..120 {
        let sg_owner = sg_tags(sg_id.clone())
            .await
            .get("paved.io/owner-uid")
            .cloned();
        let sng_owner = sng_tags().await.get("paved.io/owner-uid").cloned();
        if sg_owner.as_deref() == Some(new_sg_uid.as_str())
            && sng_owner.as_deref() == Some(new_sng_uid.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        sg_tags(sg_id.clone()).await.get("paved.io/owner-uid"),
        Some(&new_sg_uid),
        "the security group's tags rewritten to the new object"
    );
    assert_eq!(
        sng_tags().await.get("paved.io/owner-uid"),
        Some(&new_sng_uid),
        "the subnet group's tags rewritten to the new object"
    );
    // The Event names the external-name (a security group's is its group name, not its ID).
    let sg_external = sg2
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    for (name, id) in [(sg_name, sg_external), (sng_name, group_name.clone())] {
        wait_event(&env.client, &env.ns, name, 20, |r, n| {
            r == "ReadoptedExternalResource" && n.contains(&id)
        })
        .await;
    }

    // Clean up: the claim goes (its objects orphan the groups), then the groups in AWS.
    let claims: Api<PostgreSQLInstance> = Api::namespaced(env.client.clone(), &env.ns);
    delete_until_gone(&claims, "keep", 120).await;
    claims_ctl.stop().await;
    rds.stop().await;
    ec2.delete_security_group()
        .group_id(&sg_id)
        .send()
        .await
        .unwrap();
    env.rds
        .delete_db_subnet_group()
        .db_subnet_group_name(&group_name)
        .send()
        .await
        .unwrap();
    drop(cleanup);
}

/// An Instance waiting for its SubnetGroup is woken when the group changes, not by a timer:
/// with the poll (the timer retry of a waiting object) and the resync at an hour, it becomes
/// Ready once the group does (without the wake it would wait the hour). Which objects a change
/// wakes is table-tested in `managed::refs` (`who_refers_to_a_target`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_waiting_for_its_subnet_group_is_woken_when_the_group_is_ready() {
    let region = "eu-west-3";
    let env = RdsEnv::new("netwake", region, None).await;
    let ec2 = emulator_ec2(region).await;
    let (_vpc, subnets) = existing_network(&ec2, region).await;
    let hour = Duration::from_secs(3600);
    let cfg = paved::rds::RdsConfig {
        poll_interval: hour,
        resync: hour,
        ..fast()
    };
    let rds = RdsController::start(&env.client, &env.ns, cfg).await;
    let sngs: Api<SubnetGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let pc = json!({"name": env.pc});
    let group = |name: &str| -> SubnetGroup {
        serde_json::from_value(json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
            "metadata": {"name": name},
            "spec": {"providerConfigRef": pc, "forProvider": {"region": region, "subnetIds": subnets}}
        }))
        .unwrap()
    };
    let waits = || {
        rds.metrics
            .failures("Instance", "ReferenceNotReady", "none")
    };

    env.create(
        "woken",
        json!({"spec": {"forProvider": {"dbSubnetGroupNameRef": {"name": "net"}}}}),
    )
    .await;
    wait_for(&env.instances, "woken", 60, "waiting", |o| {
        cond(o, "Synced").is_some_and(|c| c.reason == "ReferenceNotReady")
    })
    .await;
    assert!(waits() >= 1);

    // Another group in the namespace: it is not the one the Instance waits for.
    sngs.create(&PostParams::default(), &group("other"))
        .await
        .unwrap();
    wait_ready_obj(&sngs, "other", 60).await;
    assert!(
        env.own_ids().await.is_empty(),
        "no database without its group"
    );

    // Its group becomes Ready: it is woken and becomes Ready too, although its timer retry is
    // an hour away.
    sngs.create(&PostParams::default(), &group("net"))
        .await
        .unwrap();
    let net = wait_ready_obj(&sngs, "net", 60).await;
    let inst = env.wait_ready("woken", 120).await;
    let name = net
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    assert_eq!(
        inst.spec.for_provider.db_subnet_group_name.as_deref(),
        Some(name.as_str())
    );
    assert!(waits() >= 1);

    delete_until_gone(&env.instances, "woken", 60).await;
    for n in ["net", "other"] {
        delete_until_gone(&sngs, n, 60).await;
    }
    rds.stop().await;
}

async fn wait_ready_obj(api: &Api<SubnetGroup>, name: &str, secs: u64) -> SubnetGroup {
    wait_for(api, name, secs, "Ready", |o| {
        has_status(o, "Ready", paved::api::ConditionStatus::True)
    })
    .await
}
