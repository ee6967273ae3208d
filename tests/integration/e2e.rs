//! The golden path end to end, the way a platform team runs it: `paved run` as a process,
//! authenticated as the chart's ServiceAccount with only the chart's RBAC, against the real
//! kube-apiserver and the RDS emulator. The seed Composition and claim (claim in a namespace of
//! this test) → RDS instance → credentials Secret → delete → final snapshot, instance gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use paved::api::{Instance, PostgreSQLInstance};

const REGION: &str = "ap-northeast-2"; // the seed Composition's region

#[tokio::test]
async fn seed_end_to_end_as_the_least_privileged_service_account() {
    let (admin, ns) = setup("golden").await;
    common::chart::apply_chart_rbac(&admin).await;
    ensure_namespace(&admin, common::chart::NAMESPACE).await;

    // paved, as the chart runs it: leader election on, the Lease in paved-system.
    let env = e2e_env();
    let mut paved = Paved::start(
        &[
            &["--namespaces", &ns][..],
            &fast_leader_election(common::chart::NAMESPACE, common::chart::LEASE_NAME),
            &["--log-format", "json"],
        ]
        .concat(),
        Some(&env.kubeconfig_least_privilege),
        &format!("{ns}-paved"),
    );
    paved.wait_ready(Duration::from_secs(90)).await;

    // The platform team's Composition and the developer's claim, as written (the claim moved to
    // this test's namespace), plus the tracking metadata ArgoCD puts on what it syncs.
    let composition = yaml_docs(&read_project_file("examples/seed/composition.yaml")).remove(0);
    apply_json(&admin, &composition, None, false).await.unwrap();
    let mut claim = yaml_docs(&read_project_file("examples/seed/claim.yaml")).remove(0);
    claim["metadata"]["labels"] = serde_json::json!({"app.kubernetes.io/instance": "my-app"});
    claim["metadata"]["annotations"] = serde_json::json!({"argocd.argoproj.io/tracking-id": "my-app:database.example.com/PostgreSQLInstance:my-team/my-app-db"});
    apply_json(&admin, &claim, Some(&ns), false).await.unwrap();

    let claims: Api<PostgreSQLInstance> = Api::namespaced(admin.clone(), &ns);
    let ready = wait_for(
        &claims,
        "my-app-db",
        120,
        "Ready",
        |c: &PostgreSQLInstance| is_true_cond(c, "Ready"),
    )
    .await;
    assert!(is_true_cond(&ready, "Synced"), "{:?}", ready.conditions());
    let status = ready.status.unwrap();
    assert_eq!(status.composition_ref.unwrap().name, "postgresql-aws");

    // The composed Instance: rendered from the seed, owned by the claim, no ArgoCD tracking
    // metadata (ArgoCD would otherwise prune it as its own).
    let instances: Api<Instance> = Api::namespaced(admin.clone(), &ns);
    let inst = instances.get("my-app-db-rds-instance").await.unwrap();
    assert_eq!(inst.spec.for_provider.allocated_storage, Some(20));
    assert_eq!(inst.spec.for_provider.engine_version.as_deref(), Some("14"));
    assert_eq!(
        inst.spec.for_provider.instance_class.as_deref(),
        Some("db.t3.micro")
    );
    let labels = inst.metadata.labels.clone().unwrap_or_default();
    let annotations = inst.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !labels.contains_key("app.kubernetes.io/instance"),
        "{labels:?}"
    );
    assert!(
        !annotations
            .keys()
            .any(|k| k.starts_with("argocd.argoproj.io/")),
        "{annotations:?}"
    );
    assert!(
        !labels.keys().any(|k| k.starts_with("argocd.argoproj.io/")),
        "{labels:?}"
    );
    let owner = &inst.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("PostgreSQLInstance", "my-app-db", Some(true))
    );

    // The credentials the developer asked for, matching what AWS reports.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let creds = decoded(&secrets.get("my-app-db-credentials").await.unwrap());
    for key in [
        "username", "password", "address", "host", "port", "endpoint", "uri",
    ] {
        assert!(
            creds.get(key).is_some_and(|v| !v.is_empty()),
            "credentials lack {key}: {:?}",
            creds.keys()
        );
    }
    let identifier = annotations
        .get("crossplane.io/external-name")
        .expect("external-name annotation")
        .clone();
    let rds = emulator_rds(REGION).await;
    let db = rds
        .describe_db_instances()
        .db_instance_identifier(&identifier)
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    assert_eq!(db.allocated_storage(), Some(20));
    assert_eq!(db.engine_version(), Some("14"));
    let address = db.endpoint().and_then(|e| e.address()).unwrap();
    assert_eq!(creds["host"], address);
    assert_eq!(creds["username"], "postgres");
    assert!(
        creds["uri"].starts_with("postgresql://postgres:")
            && creds["uri"].ends_with("?sslmode=require")
    );
    assert!(creds["password"].len() >= 32);

    // `kubectl delete` of the composed Instance while its claim wants it: held, not done (it
    // would delete the database and the claim would make an empty one under the same name).
    instances
        .delete("my-app-db-rds-instance", &DeleteParams::default())
        .await
        .unwrap();
    let held = wait_for(
        &instances,
        "my-app-db-rds-instance",
        60,
        "Synced=False DeletionHeld",
        |i: &Instance| {
            i.conditions()
                .iter()
                .any(|c| c.type_ == "Synced" && c.reason == "DeletionHeld")
        },
    )
    .await;
    let why = held
        .conditions()
        .iter()
        .find(|c| c.type_ == "Synced")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        why.contains(&format!("claim PostgreSQLInstance {ns}/my-app-db"))
            && why.contains("paved.io/allow-deletion"),
        "{why}"
    );
    assert!(held.metadata.deletion_timestamp.is_some());
    let still = rds
        .describe_db_instances()
        .db_instance_identifier(&identifier)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.db_instances()[0].db_instance_status(),
        Some("available"),
        "the database was not touched"
    );

    // Deleting the claim: the Instance goes, RDS takes a final snapshot (the seed does not say
    // skipFinalSnapshot) and the instance is deleted; nothing is left behind.
    delete_until_gone(&claims, "my-app-db", 120).await;
    wait_deleted(&instances, "my-app-db-rds-instance", 120).await;
    let gone = rds
        .describe_db_instances()
        .db_instance_identifier(&identifier)
        .send()
        .await;
    assert!(
        gone.is_err(),
        "RDS instance {identifier} still exists after the claim was deleted"
    );
    let snaps = rds
        .describe_db_snapshots()
        .db_instance_identifier(&identifier)
        .send()
        .await
        .unwrap();
    assert!(
        snaps
            .db_snapshots()
            .iter()
            .any(|s| s.snapshot_type() == Some("manual")),
        "no final snapshot of {identifier}"
    );

    // Nothing was refused for lack of permission along the way.
    let log = paved.log_text();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "paved hit RBAC denials:\n{}",
        paved.log_tail(40)
    );
    apply_json(&admin, &composition, None, false).await.unwrap(); // left for other tests as found
}
