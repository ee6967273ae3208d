//! `paved run` as a process: leader election with two replicas against the real API server and
//! the RDS emulator, failover after SIGKILL, graceful release on SIGTERM, probes and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use paved::api::Instance;

const REGION: &str = "sa-east-1"; // this test's own region in the shared emulator

#[tokio::test]
async fn two_replicas_one_leader_failover_without_double_create() {
    let (client, ns) = setup("leader").await;
    let lease_name = "paved-leader-test";

    let a = Paved::replica(&ns, lease_name, "a");
    let b = Paved::replica(&ns, lease_name, "b");
    let first = wait_for_leader(&[&a, &b], 60).await;
    let (leader, standby) = if first == 0 { (a, b) } else { (b, a) };
    assert!(!standby.is_leader().await, "both replicas claim leadership");
    // The standby is live and ready (as a standby), so rolling updates are not blocked (once it
    // serves at all: the leader may be elected before the other process has bound its port).
    standby.wait_serving(Duration::from_secs(60)).await;
    assert_eq!(
        standby
            .get(standby.health_port, "/healthz")
            .await
            .map(|r| r.0),
        Some(200)
    );
    let (code, body) = standby.get(standby.health_port, "/readyz").await.unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("standby"), "{body}");

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get(lease_name).await.unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    let expected = format!("{ns}-replica-{}", if first == 0 { "a" } else { "b" });
    assert!(
        holder.starts_with(&expected),
        "lease holder {holder}, expected {expected}-*"
    );

    // The leader provisions an Instance.
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    instances
        .create(
            &PostParams::default(),
            &bare_instance("db-one", &ns, REGION),
        )
        .await
        .unwrap();
    wait_true(&instances, "db-one", 90, "Ready").await;

    // Kill the leader without warning: the standby takes over within the lease duration.
    let mut leader = leader;
    let killed_at = Instant::now();
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let _ = wait_for_leader(&[&standby], 30).await;
    let took = killed_at.elapsed();
    eprintln!("failover took {took:?} (lease duration 4s, retry period 500ms)");
    assert!(
        took < Duration::from_secs(4 + 3),
        "failover took {took:?}, lease duration is 4s"
    );

    // The new leader provisions a second Instance and re-observes the first without creating it again.
    instances
        .create(
            &PostParams::default(),
            &bare_instance("db-two", &ns, REGION),
        )
        .await
        .unwrap();
    wait_true(&instances, "db-two", 90, "Ready").await;
    wait_true(&instances, "db-one", 30, "Ready").await;

    let mut ids = ids_tagged_with(REGION, &ns).await;
    ids.sort();
    assert_eq!(
        ids.len(),
        2,
        "expected exactly one RDS instance per Instance, got {ids:?}"
    );
}

#[tokio::test]
async fn sigterm_releases_the_lease_for_an_immediate_takeover() {
    let (_, ns) = setup("release").await;
    let lease_name = "paved-release-test";
    let a = Paved::replica(&ns, lease_name, "a");
    let first = wait_for_leader(&[&a], 60).await;
    assert_eq!(first, 0);
    let b = Paved::replica(&ns, lease_name, "b");
    // b is up (its probe answers) and waiting.
    b.wait_serving(Duration::from_secs(60)).await;
    assert!(!b.is_leader().await);

    let stopped_at = Instant::now();
    assert!(a.sigterm().success());
    let mut a = a;
    let exit = a.child.wait().unwrap();
    assert!(
        exit.success(),
        "paved run exited with {exit:?} on SIGTERM:\n{}",
        a.log_tail(40)
    );
    let _ = wait_for_leader(&[&b], 30).await;
    eprintln!("takeover after SIGTERM took {:?}", stopped_at.elapsed());
    let log = a.log_text();
    assert!(
        log.contains("released leadership"),
        "no release logged:\n{log}"
    );
}
