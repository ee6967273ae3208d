//! The managed-resource lifecycle against the real API server, with an RDS account in memory
//! (`paved::managed::memory::MemoryRds`) where the emulator cannot answer as AWS would: an
//! instance that has failed, a snapshot name taken by an earlier deletion. Everything on the
//! Kubernetes side (finalizer, status, Events, Secrets) is real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::*;
use paved::managed::memory::{MemoryRds, Request};
use paved::rds::RdsConfig;
use serde_json::json;

fn with(account: &Arc<MemoryRds>) -> RdsConfig {
    RdsConfig {
        rds_api: Some(account.clone()),
        ..fast()
    }
}

/// The DeleteDBInstance requests the account received.
fn deletes(account: &MemoryRds) -> Vec<paved::managed::model::DeleteRequest> {
    account
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::Delete(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// An instance RDS reports as `failed` cannot be snapshotted: paved deletes it without a final
/// snapshot, says so in a Warning Event, and the deletion finishes instead of hanging.
#[tokio::test]
async fn a_failed_instance_is_deleted_without_a_snapshot() {
    let env = RdsEnv::new("life-failed", "eu-north-1", None).await;
    let account = Arc::new(MemoryRds::default());
    let ctl = RdsController::start(&env.client, &env.ns, with(&account)).await;
    env.create(
        "broken",
        json!({"spec": {"forProvider": {"skipFinalSnapshot": false}}}),
    )
    .await;
    let i = env.wait_ready("broken", 60).await;
    let id = external_name(&i);
    account.set_status(&id, "failed");
    env.delete_and_wait("broken", 60).await;

    let d = deletes(&account);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].skip_final_snapshot, "{d:?}");
    assert_eq!(d[0].final_snapshot_identifier, None);
    assert_eq!(d[0].delete_automated_backups, Some(false), "backups kept");
    assert!(account.instance(&id).is_none());
    wait_event(&env.client, &env.ns, "broken", 10, |reason, note| {
        reason == "DeletingWithoutSnapshot" && note.contains("failed")
    })
    .await;
    ctl.stop().await;
}

/// A Composition names the same finalSnapshotIdentifier for every database: the second deletion
/// under that name (another object) does not collide with the first one's snapshot.
#[tokio::test]
async fn final_snapshots_of_two_deletions_never_collide() {
    let env = RdsEnv::new("life-snap", "eu-south-1", None).await;
    let account = Arc::new(MemoryRds::default());
    let ctl = RdsController::start(&env.client, &env.ns, with(&account)).await;
    let spec = json!({"spec": {"forProvider": {
        "skipFinalSnapshot": false, "finalSnapshotIdentifier": "orders-final"}}});
    for round in 0..2 {
        let name = format!("orders-{round}");
        env.create(&name, spec.clone()).await;
        env.wait_ready(&name, 60).await;
        env.delete_and_wait(&name, 60).await;
        // the deletion time in the name has a one-second resolution
        if round == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }
    let snapshots = account.snapshots();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    assert!(
        snapshots.iter().all(|s| s.starts_with("orders-final-")),
        "{snapshots:?}"
    );
    assert_eq!(deletes(&account).len(), 2);
    ctl.stop().await;
}

/// Removing the external-name restores it (no second database); editing it is refused; deleting
/// the object then deletes the database it manages, not the edited name, and never orphans it.
#[tokio::test]
async fn an_edited_or_removed_external_name_never_orphans_the_database() {
    use kube::api::{Patch, PatchParams};
    let env = RdsEnv::new("life-name", "eu-west-2", None).await;
    let account = Arc::new(MemoryRds::default());
    let ctl = RdsController::start(&env.client, &env.ns, with(&account)).await;
    env.create("orders", json!({})).await;
    let id = external_name(&env.wait_ready("orders", 60).await);
    let annotate = |v: serde_json::Value| json!({"metadata": {"annotations": {"crossplane.io/external-name": v}}});
    env.instances
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(&annotate(json!(null))),
        )
        .await
        .unwrap();
    let restored = wait_for(
        &env.instances,
        "orders",
        60,
        "external-name restored",
        |i| {
            i.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("crossplane.io/external-name"))
                == Some(&id)
        },
    )
    .await;
    assert_eq!(external_name(&restored), id);
    // The Event is recorded after the write that restores the annotation.
    wait_event(&env.client, &env.ns, "orders", 10, |reason, note| {
        reason == "ExternalNameRestored" && note.contains(&id)
    })
    .await;

    env.instances
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(&annotate(json!("someone-else"))),
        )
        .await
        .unwrap();
    env.wait_synced_false("orders", "ImmutableField", 60).await;
    env.delete_and_wait("orders", 60).await;
    assert!(
        account.instance(&id).is_none(),
        "the managed database was deleted"
    );
    let creates = account
        .requests()
        .iter()
        .filter(|r| matches!(r, Request::Create(_)))
        .count();
    assert_eq!(creates, 1, "no second database");
    let d = deletes(&account);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].identifier, id);
    ctl.stop().await;
}

/// An Instance a claim composed with `deletionPolicy: Orphan` is deleted and the claim composes
/// it again: the new object re-adopts the database its predecessor left running (no second
/// CreateDBInstance, the tags rewritten to it, a Normal Event) and owns the kept master-password
/// Secret again. The same name composed by *another* claim is refused.
#[tokio::test]
async fn the_same_claim_readopts_what_an_orphaned_predecessor_left_running() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::ResourceExt;
    use kube::api::{Api, PostParams};
    let env = RdsEnv::new("life-readopt", "eu-west-2", None).await;
    let account = Arc::new(MemoryRds::default());
    let ctl = RdsController::start(&env.client, &env.ns, with(&account)).await;
    // Two claims (no claim controller runs here: they only own the Instances).
    let claims: Api<paved::api::PostgreSQLInstance> = Api::namespaced(env.client.clone(), &env.ns);
    let mut uids = Vec::new();
    for name in ["team-db", "other-db"] {
        let c: paved::api::PostgreSQLInstance = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
            "metadata": {"name": name},
            "spec": {"parameters": {"storageGB": 20, "version": "14", "environment": "staging"}}
        }))
        .unwrap();
        uids.push(
            claims
                .create(&PostParams::default(), &c)
                .await
                .unwrap()
                .uid()
                .unwrap(),
        );
    }
    let composed = |claim: &str, uid: &str| {
        json!({
            "metadata": {
                "labels": {"crossplane.io/claim-name": claim, "crossplane.io/claim-namespace": env.ns},
                "annotations": {"crossplane.io/composition-resource-name": "rds-instance"},
                "ownerReferences": [{
                    "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
                    "name": claim, "uid": uid, "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {"deletionPolicy": "Orphan"}
        })
    };
    let orphan_it = || async {
        delete_until_gone(&env.instances, "orders", 60).await;
    };

    env.create("orders", composed("team-db", &uids[0])).await;
    let first = env.wait_ready("orders", 60).await;
    let id = external_name(&first);
    let tags = account.instance(&id).unwrap().tags;
    assert_eq!(
        tags["paved.io/composed-by"],
        format!("{}/rds-instance", uids[0])
    );
    orphan_it().await;
    assert!(account.instance(&id).is_some(), "orphaned, left running");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let kept = secrets.get("orders-master-password").await.unwrap();
    assert!(kept.owner_references().is_empty(), "kept without its owner");

    // The same claim composes it again.
    env.create("orders", composed("team-db", &uids[0])).await;
    let second = env.wait_ready("orders", 60).await;
    assert_eq!(external_name(&second), id);
    let creates = account
        .requests()
        .into_iter()
        .filter(|r| matches!(r, Request::Create(_)))
        .count();
    assert_eq!(creates, 1, "no second database");
    let new_uid = second.uid().unwrap();
    until(30, "the tags rewritten to the new object", || {
        account
            .instance(&id)
            .unwrap()
            .tags
            .get("paved.io/owner-uid")
            == Some(&new_uid)
    })
    .await;
    wait_event(&env.client, &env.ns, "orders", 10, |reason, note| {
        reason == "ReadoptedExternalResource" && note.contains(&id)
    })
    .await;
    let owned = secrets.get("orders-master-password").await.unwrap();
    assert_eq!(
        owned
            .owner_references()
            .iter()
            .map(|o| o.uid.clone())
            .collect::<Vec<_>>(),
        vec![new_uid],
        "the kept Secret is this Instance's again"
    );

    // Another claim composing an Instance of that name: not its database.
    orphan_it().await;
    env.create("orders", composed("other-db", &uids[1])).await;
    env.wait_synced_false("orders", "ExternalResourceNotOwned", 60)
        .await;
    assert_eq!(
        account
            .instance(&id)
            .unwrap()
            .tags
            .get("paved.io/composed-by"),
        Some(&format!("{}/rds-instance", uids[0])),
        "untouched"
    );
    ctl.stop().await;
}
