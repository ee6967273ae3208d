//! The RDS controller against the real local control plane (kube-apiserver + etcd) and the RDS
//! emulator over HTTP. Each test has its own namespace, ProviderConfig and AWS region (the
//! emulator partitions state by region), and runs the controller in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use paved::api::instance::Instance;
use paved::rds::{FailpointSite, RdsConfig};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// tests

/// Create → available → connection Secret with every key; identifier and password persisted;
/// ownership tags; storage increase reaches the emulator; a resync of the available instance
/// writes nothing and calls nothing per instance.
#[tokio::test]
async fn create_secret_storage_increase_and_quiet_resync() {
    let env = RdsEnv::new("rds-create", "eu-west-3", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create("orders", json!({})).await;
    let i = env.wait_ready("orders", 60).await;
    let id = external_name(&i);
    assert!(id.starts_with(&format!("{}-orders-", env.ns)), "{id}");
    assert!(
        i.finalizers()
            .iter()
            .any(|f| f == "finalizer.managedresource.crossplane.io")
    );

    // connection Secret: every key, owned by the Instance
    let conn = env.secret_data("orders-conn").await;
    for k in [
        "username", "password", "address", "host", "port", "endpoint", "dbname", "uri",
    ] {
        assert!(
            conn.contains_key(k),
            "connection Secret lacks {k}: {:?}",
            conn.keys()
        );
    }
    let pw = env.secret_data("orders-master-password").await["password"].clone();
    assert!(pw.len() >= 32);
    assert_eq!(conn["password"], pw);
    assert_eq!(
        conn["attribute.password"], pw,
        "the Upbound provider's key too"
    );
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
    env.patch_spec("orders", json!({"forProvider": {"allocatedStorage": 30}}))
        .await;
    wait_for(
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
    let env = RdsEnv::new("rds-drift", "eu-north-1", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create("drift", json!({"spec": {"forProvider": {"backupRetentionPeriod": 7, "tags": {"team": "payments"}}}})).await;
    let i = env.wait_ready("drift", 60).await;
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
    env.wait_ready("drift", 10).await;
    ctl.stop().await;
}

/// Immutable changes and a storage decrease are refused, naming the field, with no AWS call.
#[tokio::test]
async fn immutable_change_is_refused_without_aws_call() {
    let env = RdsEnv::new("rds-immutable", "ca-central-1", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create("imm", json!({})).await;
    env.wait_ready("imm", 60).await;
    let mutating = ctl.mutating_calls();

    env.patch_spec(
        "imm",
        json!({"forProvider": {"dbName": "other", "allocatedStorage": 10}}),
    )
    .await;
    let i = env.wait_synced_false("imm", "ImmutableField", 30).await;
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
    env.patch_spec(
        "imm",
        json!({"forProvider": {"dbName": "app", "allocatedStorage": 20}}),
    )
    .await;
    env.wait_ready("imm", 30).await;
    assert_eq!(ctl.mutating_calls(), mutating);
    ctl.stop().await;
}

/// Delete takes a final snapshot; Orphan leaves the instance; an instance already gone is
/// released at once; deletion protection keeps the finalizer with a condition until the spec
/// turns it off.
#[tokio::test]
async fn delete_policies() {
    let env = RdsEnv::new("rds-delete", "sa-east-1", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "snap",
        json!({"spec": {"forProvider": {"skipFinalSnapshot": false}}}),
    )
    .await;
    env.create("orphan", json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    env.create("gone", json!({})).await;
    env.create(
        "protected",
        json!({"spec": {"forProvider": {"deletionProtection": true}}}),
    )
    .await;
    let mut ids = BTreeMap::new();
    for n in ["snap", "orphan", "gone", "protected"] {
        ids.insert(n, external_name(&env.wait_ready(n, 60).await));
    }

    // Delete with a final snapshot
    env.delete_and_wait("snap", 60).await;
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
    env.delete_and_wait("orphan", 30).await;
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
    env.delete_and_wait("gone", 30).await;
    assert_eq!(ctl.calls("DeleteDBInstance"), deletes);

    // deletion protection
    env.instances
        .delete("protected", &DeleteParams::default())
        .await
        .unwrap();
    let i = env
        .wait_synced_false("protected", "DeletionProtection", 30)
        .await;
    assert!(
        i.finalizers()
            .iter()
            .any(|f| f == "finalizer.managedresource.crossplane.io")
    );
    assert!(describe(&env.rds, &ids["protected"]).await.is_some());
    env.patch_spec(
        "protected",
        json!({"forProvider": {"deletionProtection": false}}),
    )
    .await;
    wait_deleted(&env.instances, "protected", 60).await;
    assert!(describe(&env.rds, &ids["protected"]).await.is_none());
    ctl.stop().await;
}

/// Observe-only adopts a pre-existing instance by external-name, reports it, never changes it,
/// and leaves it behind on delete.
#[tokio::test]
async fn observe_only_adoption() {
    let env = RdsEnv::new("rds-observe", "ap-south-1", None).await;
    env.create_direct("legacy-db", &[("owner", "dba-team")])
        .await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "legacy",
        json!({
            "metadata": {"annotations": {"crossplane.io/external-name": "legacy-db"}},
            "spec": {"managementPolicies": ["Observe"], "forProvider": {"instanceClass": "db.t3.large"}}
        }),
    )
    .await;
    let i = wait_for(&env.instances, "legacy", 60, "Ready", |i: &Instance| {
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
    let conn = env.secret_data("legacy-conn").await;
    assert_eq!(conn["username"], "someone");
    assert!(!conn.contains_key("password"));
    assert_eq!(ctl.mutating_calls(), 0);

    env.delete_and_wait("legacy", 30).await;
    assert!(describe(&env.rds, "legacy-db").await.is_some());
    assert_eq!(ctl.mutating_calls(), 0);
    ctl.stop().await;
}

/// An identifier that exists without this object's ownership tags is not touched.
#[tokio::test]
async fn foreign_instance_is_refused() {
    let env = RdsEnv::new("rds-foreign", "ap-southeast-2", None).await;
    env.create_direct(
        "theirs",
        &[
            ("paved.io/owner", "other-ns/other"),
            ("paved.io/owner-uid", "1234"),
        ],
    )
    .await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "mine",
        json!({"metadata": {"annotations": {"crossplane.io/external-name": "theirs"}}}),
    )
    .await;
    let i = env
        .wait_synced_false("mine", "ExternalResourceNotOwned", 60)
        .await;
    let msg = &cond(&i, "Synced").unwrap().message;
    // The refusal never names whose it is: the other team's namespace and object stay private.
    assert!(
        msg.contains("another object") && !msg.contains("other-ns") && !msg.contains("1234"),
        "{msg}"
    );
    assert!(env.secrets.get_opt("mine-conn").await.unwrap().is_none());
    assert_eq!(ctl.mutating_calls(), 0);
    // deleting the object does not delete their instance
    env.delete_and_wait("mine", 30).await;
    assert!(describe(&env.rds, "theirs").await.is_some());
    assert_eq!(ctl.mutating_calls(), 0);
    ctl.stop().await;
}

/// Attack: another namespace names a victim's RDS instance (tagged as another object's) with a
/// policy set without Create (take-over) or with Observe only (peeking). Both are refused before
/// any change; nothing of the victim is published; deleting the attacker's object leaves the
/// victim running with its tags and storage unchanged.
#[tokio::test]
async fn takeover_and_peeking_of_another_objects_instance_are_refused() {
    let env = RdsEnv::new("rds-attack", "sa-east-1", None).await;
    let owner = [
        ("paved.io/owner", "victim-ns/orders"),
        ("paved.io/owner-uid", "0b6f-victim-uid"),
        ("team", "victims"),
    ];
    env.create_direct("victim-db", &owner).await;
    let before = describe(&env.rds, "victim-db").await.unwrap();
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    let take = |policies: serde_json::Value| {
        json!({
            "metadata": {"annotations": {"crossplane.io/external-name": "victim-db"}},
            "spec": {"managementPolicies": policies,
                     "forProvider": {"allocatedStorage": 99, "tags": {"team": "attackers"}}}
        })
    };
    env.create("takeover", take(json!(["Observe", "Update", "Delete"])))
        .await;
    env.create("peek", take(json!(["Observe"]))).await;
    for name in ["takeover", "peek"] {
        let i = env
            .wait_synced_false(name, "ExternalResourceNotOwned", 60)
            .await;
        let msg = &cond(&i, "Synced").unwrap().message;
        assert!(msg.contains("another object"), "{msg}");
        assert!(
            !msg.contains("victim-ns") && !msg.contains("victim-uid"),
            "{msg}"
        );
        assert!(
            i.status.as_ref().unwrap().at_provider.is_none(),
            "{name}: nothing of the victim is observed into status"
        );
        assert!(
            env.secrets
                .get_opt(&format!("{name}-conn"))
                .await
                .unwrap()
                .is_none(),
            "{name}: no connection Secret with the victim's endpoint"
        );
    }
    assert_eq!(ctl.mutating_calls(), 0);
    env.delete_and_wait("takeover", 30).await;
    env.delete_and_wait("peek", 30).await;
    assert_eq!(ctl.mutating_calls(), 0);
    let after = describe(&env.rds, "victim-db").await.unwrap();
    assert_eq!(after.allocated_storage(), before.allocated_storage());
    assert_eq!(after.tag_list(), before.tag_list());
    ctl.stop().await;
}

/// An untagged instance (not paved's) is adopted with a policy set without Create only where
/// the ProviderConfig allows adoption; until then, `AdoptionNotAllowed` and no change.
#[tokio::test]
async fn adoption_needs_the_provider_configs_consent() {
    let env = RdsEnv::new("rds-adopt", "ca-central-1", None).await;
    env.create_direct("legacy-app", &[("owner", "dba-team")])
        .await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "legacy",
        json!({
            "metadata": {"annotations": {"crossplane.io/external-name": "legacy-app"}},
            "spec": {"managementPolicies": ["Observe", "Update", "Delete"],
                     "forProvider": {"allocatedStorage": 30, "dbName": null, "engineVersion": null,
                                     "username": "someone", "instanceClass": "db.t3.small"}}
        }),
    )
    .await;
    let i = env
        .wait_synced_false("legacy", "AdoptionNotAllowed", 60)
        .await;
    let msg = &cond(&i, "Synced").unwrap().message;
    assert!(
        msg.contains(&env.pc) && msg.contains("allowAdoption"),
        "{msg}"
    );
    assert_eq!(ctl.mutating_calls(), 0);

    let pcs: Api<paved::api::provider_config::ProviderConfig> = Api::all(env.client.clone());
    pcs.patch(
        &env.pc,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"allowAdoption": true}})),
    )
    .await
    .unwrap();
    env.wait_ready("legacy", 60).await;
    let tags: BTreeMap<String, String> = describe(&env.rds, "legacy-app")
        .await
        .unwrap()
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags.get("paved.io/owner"),
        Some(&format!("{}/legacy", env.ns))
    );
    assert_eq!(tags.get("owner").map(String::as_str), Some("dba-team"));
    env.delete_and_wait("legacy", 60).await;
    ctl.stop().await;
}

/// Placement is immutable: a region change of an existing database is refused with a condition
/// naming the field, no second database appears in the new region, and deleting the object waits
/// until the region is set back (it never deletes, nor forgets, the wrong one).
#[tokio::test]
async fn a_region_change_never_makes_a_second_database() {
    let env = RdsEnv::new("rds-move", "eu-central-2", None).await;
    let elsewhere = "il-central-1"; // a region no other test uses: this one purges it
    let other = emulator_rds(elsewhere).await;
    purge_region(&other).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create("orders", json!({})).await;
    let id = external_name(&env.wait_ready("orders", 60).await);
    let creates = ctl.calls("CreateDBInstance");

    env.patch_spec("orders", json!({"forProvider": {"region": elsewhere}}))
        .await;
    let i = env.wait_synced_false("orders", "ImmutableField", 60).await;
    let msg = &cond(&i, "Synced").unwrap().message;
    assert!(
        msg.contains("spec.forProvider.region changed from eu-central-2 to il-central-1"),
        "{msg}"
    );
    assert!(
        env.own_ids_in(&other).await.is_empty(),
        "no second database"
    );
    env.instances
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.instances.get_opt("orders").await.unwrap().is_some(),
        "deletion waits"
    );
    assert!(describe(&env.rds, &id).await.is_some());
    assert_eq!(ctl.calls("CreateDBInstance"), creates);
    assert_eq!(ctl.calls("DeleteDBInstance"), 0);

    env.patch_spec("orders", json!({"forProvider": {"region": "eu-central-2"}}))
        .await;
    wait_deleted(&env.instances, "orders", 60).await;
    assert!(describe(&env.rds, &id).await.is_none());
    assert!(env.own_ids_in(&other).await.is_empty());
    ctl.stop().await;
}

/// crossplane.io/paused: "true" stops all AWS calls; unpausing resumes.
#[tokio::test]
async fn paused_object_makes_no_calls() {
    let env = RdsEnv::new("rds-paused", "us-west-1", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "zzz",
        json!({"metadata": {"annotations": {"crossplane.io/paused": "true"}}}),
    )
    .await;
    env.wait_synced_false("zzz", "ReconcilePaused", 30).await;
    // a few poll intervals: nothing at all reaches AWS (the 5 s window is the outer timeout;
    // the inner wait's own bound is longer, so that it never fires first)
    let quiet = tokio::time::timeout(
        Duration::from_secs(5),
        until(60, "any AWS call", || ctl.metrics.total_calls() > 0),
    )
    .await;
    assert!(quiet.is_err(), "a paused object made AWS calls");
    assert_eq!(ctl.metrics.total_calls(), 0);
    assert!(env.own_ids().await.is_empty());

    env.instances
        .patch(
            "zzz",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"crossplane.io/paused": "false"}}})),
        )
        .await
        .unwrap();
    env.wait_ready("zzz", 60).await;
    assert_eq!(ctl.calls("CreateDBInstance"), 1);
    ctl.stop().await;
}

/// Stop the controller at a failpoint, restart it, and check: one instance, the password in
/// the Secret is the one CreateDBInstance was given (recorded by the proxy: RDS never returns it).
async fn crash_at(site: FailpointSite, prefix: &str, region: &str) {
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    let env = RdsEnv::new(prefix, region, Some(&proxy.url())).await;
    let (fp, mut rx) = failpoint_at(site);
    let ctl = RdsController::start(
        &env.client,
        &env.ns,
        RdsConfig {
            failpoint: Some(fp),
            ..fast()
        },
    )
    .await;
    env.create("crashy", json!({})).await;
    let id = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .unwrap()
        .unwrap();
    ctl.kill().await;

    // persisted before the crash
    let i = env.instances.get("crashy").await.unwrap();
    assert_eq!(external_name(&i), id);
    let pw = env.secret_data("crashy-master-password").await["password"].clone();
    let creates_before = proxy.forwarded_of("CreateDBInstance").len();
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

    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.wait_ready("crashy", 60).await;
    let creates = proxy.forwarded_of("CreateDBInstance");
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
        env.own_ids().await,
        vec![id.clone()],
        "exactly one instance"
    );
    assert_eq!(env.secret_data("crashy-conn").await["password"], pw);
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
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    let env = RdsEnv::new("rds-faults", "ap-northeast-3", Some(&proxy.url())).await;
    let cfg = RdsConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let ctl = RdsController::start(&env.client, &env.ns, cfg).await;
    let started = Instant::now();
    let clean_names: Vec<String> = (0..10).map(|i| format!("clean-{i}")).collect();
    let faulty_names: Vec<String> = (0..10).map(|i| format!("faulty-{i}")).collect();
    for n in &clean_names {
        env.create(
            n.as_str(),
            json!({"spec": {"forProvider": {"tags": {"k": "v"}}}}),
        )
        .await;
    }
    for n in &clean_names {
        env.wait_ready(n.as_str(), 60).await;
    }
    let clean = proxy.total();
    let clean_secs = started.elapsed().as_secs_f64();

    proxy.set_faults(Faults {
        throttle: 0.3,
        server_error: 0.1,
    });
    let before = proxy.total();
    let started = Instant::now();
    for n in &faulty_names {
        env.create(
            n.as_str(),
            json!({"spec": {"forProvider": {"tags": {"k": "v"}}}}),
        )
        .await;
    }
    for n in &faulty_names {
        env.wait_ready(n.as_str(), 120).await;
    }
    let faulty = proxy.total() - before;
    println!(
        "fault-free: {clean} requests in {clean_secs:.1}s; with faults: {faulty} requests in {:.1}s ({} throttled, {} 500s in total)",
        started.elapsed().as_secs_f64(),
        proxy.count(&Outcome::Throttled),
        proxy.count(&Outcome::ServerError)
    );
    assert!(
        faulty <= 3 * clean + 10,
        "{faulty} requests with faults vs {clean} without"
    );
    assert_eq!(
        env.own_ids().await.len(),
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
    let env = RdsEnv::new("rds-fleet", "us-east-2", None).await;
    let cfg = RdsConfig {
        poll_interval: Duration::from_secs(3),
        aws_requests_per_second: 100.0,
        concurrency: 64,
        ..fast()
    };
    let ctl = RdsController::start(&env.client, &env.ns, cfg).await;
    let started = Instant::now();
    let names: Vec<String> = (0..N).map(|i| format!("db-{i:03}")).collect();
    for chunk in names.chunks(25) {
        futures::future::join_all(chunk.iter().map(|n| env.create(n, json!({})))).await;
    }
    env.wait_all_ready(N, 600).await;
    let lp = ListParams::default();
    println!(
        "{N} instances ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(env.own_ids().await.len(), N);

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
    let env = RdsEnv::new("rds-writes", "me-south-1", None).await;

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
    let ctl = RdsController::start(&env.client, &env.ns, cfg).await;
    let names: Vec<String> = (0..N).map(|i| format!("w-{i:02}")).collect();
    futures::future::join_all(names.iter().map(|n| env.create(n, json!({})))).await;
    env.wait_all_ready(N, 120).await;
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

/// Master password rotation, for a generated password (`<name>-master-password`) and for one
/// the user keeps in passwordSecretRef: changing the Secret sends exactly one ModifyDBInstance
/// with the new MasterUserPassword (recorded by the proxy: RDS never returns it), the connection
/// Secret then publishes it, an Event says so without the password, and forced resyncs (an
/// edit of the Instance, several fleet polls) send nothing more.
#[tokio::test]
async fn master_password_rotation() {
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    let env = RdsEnv::new("rds-rotate", "ap-southeast-1", Some(&proxy.url())).await;
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
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create("gen", json!({})).await;
    env.create(
        "byo",
        json!({"spec": {"forProvider": {"passwordSecretRef": {"name": "byo-password", "key": "pw"}}}}),
    )
    .await;
    let mut ids = BTreeMap::new();
    for n in ["gen", "byo"] {
        ids.insert(n, external_name(&env.wait_ready(n, 60).await));
    }
    assert_eq!(
        env.secret_data("byo-conn").await["password"],
        "first-Password-0123456789"
    );
    assert!(proxy.forwarded_of("ModifyDBInstance").is_empty());
    assert_eq!(ctl.calls("ModifyDBInstance"), 0);

    // rotate both
    let new = BTreeMap::from([
        ("gen", "rotated-Generated-0123456789"),
        ("byo", "rotated-Byo-0123456789"),
    ]);
    env.set_secret_key("gen-master-password", "password", new["gen"])
        .await;
    env.set_secret_key("byo-password", "pw", new["byo"]).await;
    for n in ["gen", "byo"] {
        let want = new[n].to_string();
        wait_for(
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
        let conn = env.secret_data(&format!("{n}-conn")).await;
        assert!(
            conn["uri"].contains(&format!(":{}@", new[n])),
            "uri with the new password"
        );
    }
    let modifies = proxy.forwarded_of("ModifyDBInstance");
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
        let i = env.wait_ready(n, 10).await;
        let text = serde_json::to_string(&i).unwrap();
        assert!(!text.contains(new[n]), "password in the Instance: {text}");
    }

    // forced resync: an edit of each Instance, then several fleet polls: nothing more is sent
    let before = ctl.reconciles();
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
        ctl.reconciles() >= before + 2,
        "the Instances were reconciled"
    );
    assert_eq!(proxy.forwarded_of("ModifyDBInstance").len(), 2);
    assert_eq!(ctl.calls("ModifyDBInstance"), 2);
    for n in ["gen", "byo"] {
        assert_eq!(
            env.secret_data(&format!("{n}-conn")).await["password"],
            new[n]
        );
        env.wait_ready(n, 10).await;
    }
    ctl.stop().await;
}

/// A crash between the ModifyDBInstance that carries a new master password and the rewrite of
/// the connection Secret: the next run sends the same password once more, then publishes it,
/// then sends nothing.
#[tokio::test]
async fn crash_after_password_modify_is_safe() {
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    let env = RdsEnv::new("rds-rotate-crash", "ap-northeast-1", Some(&proxy.url())).await;
    let (fp, mut rx) = failpoint_at(FailpointSite::AfterPasswordModify);
    let ctl = RdsController::start(
        &env.client,
        &env.ns,
        RdsConfig {
            failpoint: Some(fp),
            ..fast()
        },
    )
    .await;
    env.create("crashy", json!({})).await;
    let id = external_name(&env.wait_ready("crashy", 60).await);
    let old = env.secret_data("crashy-conn").await["password"].clone();
    let new = "after-the-Crash-0123456789";
    env.set_secret_key("crashy-master-password", "password", new)
        .await;
    let at = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at, id);
    ctl.kill().await;
    let sent = proxy.forwarded_of("ModifyDBInstance");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].params.get("MasterUserPassword").map(String::as_str),
        Some(new)
    );
    assert_eq!(
        env.secret_data("crashy-conn").await["password"],
        old,
        "the crash came before the connection Secret was rewritten"
    );

    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    wait_for(
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
    let sent = proxy.forwarded_of("ModifyDBInstance");
    assert_eq!(sent.len(), 2, "sent once more after the restart");
    assert!(
        sent.iter()
            .all(|s| s.params.get("MasterUserPassword").map(String::as_str) == Some(new)),
        "the same password both times"
    );
    let polls = ctl.polls();
    until(30, "3 more fleet polls", || ctl.polls() >= polls + 3).await;
    assert_eq!(proxy.forwarded_of("ModifyDBInstance").len(), 2);
    env.wait_ready("crashy", 10).await;
    ctl.stop().await;
}

/// spec.forProvider.identifier: the RDS instance gets exactly that identifier (it becomes the
/// external-name). One that collides with an instance paved did not create for this object —
/// untagged, or tagged as another object's — is refused without naming any owner and without
/// any AWS change; the victims keep their tags and storage, and no second instance appears. An
/// invalid one is refused naming the field before anything is written or sent, and changing it
/// after creation is refused as an immutable field.
#[tokio::test]
async fn an_explicit_identifier_is_used_and_never_takes_over_another_instance() {
    let env = RdsEnv::new("rds-ident", "ap-southeast-4", None).await;
    env.create_direct("rds-ident-untagged", &[("owner", "dba-team")])
        .await;
    env.create_direct(
        "rds-ident-theirs",
        &[
            ("paved.io/owner", "other-ns/other"),
            ("paved.io/owner-uid", "5678-other-uid"),
        ],
    )
    .await;
    let before: Vec<_> = [
        describe(&env.rds, "rds-ident-untagged").await.unwrap(),
        describe(&env.rds, "rds-ident-theirs").await.unwrap(),
    ]
    .into();
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    let with_identifier =
        |id: &str| json!({"spec": {"forProvider": {"identifier": id, "allocatedStorage": 50}}});

    // (a) exactly that identifier, Ready
    env.create("chosen", with_identifier("rds-ident-chosen"))
        .await;
    let i = env.wait_ready("chosen", 60).await;
    assert_eq!(external_name(&i), "rds-ident-chosen");
    let db = describe(&env.rds, "rds-ident-chosen").await.unwrap();
    assert!(
        db.tag_list()
            .iter()
            .any(|t| t.key() == Some("paved.io/owner-uid") && t.value() == i.uid().as_deref())
    );
    assert_eq!(ctl.calls("CreateDBInstance"), 1);

    // (b) collisions: refused, nothing changed, no owner named
    env.create("collide-untagged", with_identifier("rds-ident-untagged"))
        .await;
    env.create("collide-theirs", with_identifier("rds-ident-theirs"))
        .await;
    for name in ["collide-untagged", "collide-theirs"] {
        let c = env
            .wait_synced_false(name, "ExternalResourceNotOwned", 60)
            .await;
        let msg = &cond(&c, "Synced").unwrap().message;
        assert!(msg.contains("spec.forProvider.identifier"), "{msg}");
        for private in ["dba-team", "other-ns", "5678-other-uid"] {
            assert!(!msg.contains(private), "{msg}");
        }
        assert!(c.status.as_ref().unwrap().at_provider.is_none(), "{name}");
    }
    assert_eq!(ctl.mutating_calls(), 1, "only the first create");
    let mut ids = list_ids(&env.rds).await;
    ids.retain(|id| id.starts_with("rds-ident-"));
    ids.sort();
    assert_eq!(
        ids,
        ["rds-ident-chosen", "rds-ident-theirs", "rds-ident-untagged"],
        "no second instance"
    );

    // (c) invalid: named, nothing written or sent
    env.create("bad", with_identifier("Orders--Main-")).await;
    let b = env.wait_synced_false("bad", "InvalidSpec", 60).await;
    let msg = &cond(&b, "Synced").unwrap().message;
    assert!(
        msg.contains("spec.forProvider.identifier") && msg.contains("Orders--Main-"),
        "{msg}"
    );
    assert!(
        !b.annotations().contains_key("crossplane.io/external-name"),
        "no external-name from an invalid identifier"
    );

    // changing it after creation: immutable
    env.patch_spec(
        "chosen",
        json!({"forProvider": {"identifier": "rds-ident-renamed"}}),
    )
    .await;
    let r = env.wait_synced_false("chosen", "ImmutableField", 60).await;
    let msg = &cond(&r, "Synced").unwrap().message;
    assert!(
        msg.contains("spec.forProvider.identifier") && msg.contains("rds-ident-chosen"),
        "{msg}"
    );
    assert!(describe(&env.rds, "rds-ident-renamed").await.is_none());
    assert_eq!(ctl.mutating_calls(), 1);

    // deleting the refused objects leaves the victims as they were
    for name in ["collide-untagged", "collide-theirs", "bad"] {
        env.delete_and_wait(name, 30).await;
    }
    assert_eq!(ctl.mutating_calls(), 1);
    for b in before {
        let id = b.db_instance_identifier().unwrap();
        let after = describe(&env.rds, id).await.unwrap();
        assert_eq!(after.allocated_storage(), b.allocated_storage(), "{id}");
        assert_eq!(after.tag_list(), b.tag_list(), "{id}");
    }
    env.patch_spec(
        "chosen",
        json!({"forProvider": {"identifier": "rds-ident-chosen"}}),
    )
    .await;
    env.wait_ready("chosen", 60).await;
    env.delete_and_wait("chosen", 60).await;
    assert!(describe(&env.rds, "rds-ident-chosen").await.is_none());
    ctl.stop().await;
}

/// A new PostgreSQL instance with storage below the minimum of its storage type (gp2 or an
/// unset type: 20 GiB; io1: 100 GiB) is refused before any AWS call, naming the field, the
/// minimum and the type; nothing is created in the emulator.
#[tokio::test]
async fn storage_below_the_minimum_of_its_type_is_refused_before_create() {
    let env = RdsEnv::new("rds-minstore", "eu-south-2", None).await;
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.create(
        "small",
        json!({"spec": {"forProvider": {"allocatedStorage": 19}}}),
    )
    .await;
    env.create(
        "small-io1",
        json!({"spec": {"forProvider": {"allocatedStorage": 50, "storageType": "io1", "iops": 1000}}}),
    )
    .await;
    for (name, parts) in [
        ("small", ["is 19 GiB", "minimum of 20 GiB", "gp2/gp3"]),
        ("small-io1", ["is 50 GiB", "minimum of 100 GiB", "on io1"]),
    ] {
        let i = env.wait_synced_false(name, "InvalidSpec", 60).await;
        let msg = &cond(&i, "Synced").unwrap().message;
        assert!(msg.contains("spec.forProvider.allocatedStorage"), "{msg}");
        for p in parts {
            assert!(msg.contains(p), "{name}: {msg}");
        }
    }
    // Below the CRD's bound that holds for every engine and type: the API server refuses.
    let tiny = env.instance_json(
        "tiny",
        json!({"spec": {"forProvider": {"allocatedStorage": 4}}}),
    );
    let err = create_json(&env.client, &{
        let mut t = tiny;
        t["metadata"]["namespace"] = json!(env.ns);
        t
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("allocatedStorage"), "{err}");
    assert_eq!(ctl.mutating_calls(), 0);
    assert!(env.own_ids().await.is_empty());
    for name in ["small", "small-io1"] {
        env.delete_and_wait(name, 30).await;
    }
    ctl.stop().await;
}
