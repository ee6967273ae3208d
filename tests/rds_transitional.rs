//! Transitional polling, against the real controller, a real kube-apiserver and the RDS emulator.
//!
//! The emulator reports every instance `available` at once, so a proxy in front of it
//! (tests/support/faulty_proxy.rs) rewrites the DBInstanceStatus of one identifier to `creating`
//! in the CreateDBInstance and DescribeDBInstances answers until the test flips it back. While it
//! is `creating`, the Instance must say so (Ready=False, reason Creating, the RDS status in the
//! message) and be described on its own (DescribeDBInstances with DBInstanceIdentifier) at the
//! transitional cadence, while the fleet-wide listing keeps its own, slower interval; once RDS
//! says `available`, the Instance must be Ready within one transitional interval, and the
//! targeted describes stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "support/faulty_proxy.rs"]
mod faulty_proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use paved::api::instance::Instance;
use paved::api::provider_config::ProviderConfig;
use paved::rds::{RdsConfig, RdsMetrics};
use serde_json::json;

use faulty_proxy::{Faults, FaultyProxy, Seen};

/// This test's region in the emulator (no other test uses it).
const REGION: &str = "us-west-2";
/// The RDS identifier (set as the external-name, so that the proxy knows it before the create).
const ID: &str = "transit-db";
/// The fleet-wide listing interval.
const POLL: Duration = Duration::from_secs(6);
/// The transitional cadence: the shortest the configuration takes in practice (the tests of
/// tests/rds.rs use the same), 15–30 s in production (default 20 s).
const TRANSITIONAL: Duration = Duration::from_secs(1);

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Is this a fleet-wide listing (no identifier) or a targeted describe of `ID`?
fn listing(s: &Seen) -> bool {
    s.action == "DescribeDBInstances"
        && s.outcome == "forwarded"
        && !s.params.contains_key("DBInstanceIdentifier")
}

fn targeted(s: &Seen) -> bool {
    s.action == "DescribeDBInstances"
        && s.outcome == "forwarded"
        && s.params.get("DBInstanceIdentifier").map(String::as_str) == Some(ID)
}

/// Gaps between consecutive times.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

fn ready(i: &Instance) -> Option<&paved::api::Condition> {
    i.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Wait until `f` holds (checked every 50 ms: for the proxy's records, which have no watch).
async fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "not {what} within {secs}s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn purge_region(rds: &aws_sdk_rds::Client) {
    let out = rds.describe_db_instances().send().await.unwrap();
    for i in out.db_instances() {
        if let Some(id) = i.db_instance_identifier() {
            let _ = rds
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await;
        }
    }
}

#[tokio::test]
async fn transitional_instance_is_described_individually_until_available() {
    let test_started = Instant::now();
    let moto = common::e2e_env().moto_url;
    let proxy = FaultyProxy::start(&moto, Faults::default()).await;
    proxy.set_status(ID, Some("creating"));
    let direct = common::emulator_rds(REGION).await;
    purge_region(&direct).await;

    // namespace, credentials, a ProviderConfig pointing at the proxy
    let client = common::client().await;
    common::install_crds(&client).await;
    let ns = common::test_namespace(&client, "rds-transit").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let creds: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-creds"},
        "stringData": {"credentials": "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let pc = format!("pc-{ns}");
    let pc_obj: ProviderConfig = serde_json::from_value(json!({
        "apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
        "metadata": {"name": pc},
        "spec": {
            "credentials": {"source": "Secret", "secretRef": {"name": "aws-creds", "key": "credentials", "namespace": ns}},
            "endpoint": {"url": {"type": "Static", "static": proxy.url}}
        }
    }))
    .unwrap();
    Api::<ProviderConfig>::all(client.clone())
        .patch(
            &pc,
            &PatchParams::apply("paved-tests").force(),
            &Patch::Apply(&pc_obj),
        )
        .await
        .unwrap();

    // the controller, with the short intervals
    let metrics = Arc::new(RdsMetrics::new(
        &mut prometheus_client::registry::Registry::default(),
    ));
    let is_ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cfg = RdsConfig {
        namespaces: vec![ns.clone()],
        poll_interval: POLL,
        transitional_poll_interval: TRANSITIONAL,
        aws_requests_per_second: 50.0,
        ..RdsConfig::default()
    };
    let ctl = tokio::spawn({
        let (client, metrics, is_ready) = (client.clone(), metrics.clone(), is_ready.clone());
        async move {
            paved::rds::run(client, cfg, metrics, is_ready, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        }
    });
    until(30, "controller caches synced", || {
        is_ready.load(Ordering::SeqCst)
    })
    .await;

    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    let obj: Instance = serde_json::from_value(json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
        "metadata": {"name": "transit", "annotations": {"crossplane.io/external-name": ID}},
        "spec": {
            "forProvider": {
                "region": REGION,
                "engine": "postgres",
                "engineVersion": "16.3",
                "instanceClass": "db.t3.micro",
                "allocatedStorage": 20,
                "dbName": "app",
                "applyImmediately": true,
                "skipFinalSnapshot": true
            },
            "providerConfigRef": {"name": pc},
            "writeConnectionSecretToRef": {"name": "transit-conn"}
        }
    }))
    .unwrap();
    instances
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();

    // 1. creating: Ready=False Creating, the RDS status in the message
    let i = common::wait_for(
        &instances,
        "transit",
        30,
        "Ready=False Creating",
        |i: &Instance| {
            ready(i).is_some_and(|c| format!("{:?}", c.status) == "False" && c.reason == "Creating")
        },
    )
    .await;
    let window_start = Instant::now();
    let c = ready(&i).unwrap();
    assert!(
        c.message.contains("creating") && c.message.contains(ID),
        "{c:?}"
    );
    let at = i.status.as_ref().unwrap().at_provider.as_ref().unwrap();
    assert_eq!(at.status.as_deref(), Some("creating"));
    let creates = proxy.stats.forwarded_of("CreateDBInstance");
    assert_eq!(creates.len(), 1);
    assert!(
        creates[0].status_rewritten,
        "the create answer said creating"
    );

    // 2. two more fleet listings (about two poll intervals) while it stays `creating`
    let listings_before = proxy.stats.seen().iter().filter(|s| listing(s)).count();
    until(4 * POLL.as_secs() + 10, "two more fleet listings", || {
        proxy.stats.seen().iter().filter(|s| listing(s)).count() >= listings_before + 2
    })
    .await;
    let window_end = Instant::now();
    let seen = proxy.stats.seen();
    let listing_times: Vec<Instant> = seen.iter().filter(|s| listing(s)).map(|s| s.at).collect();
    let in_window: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.at >= window_start && s.at <= window_end)
        .collect();
    let targeted_times: Vec<Instant> = in_window
        .iter()
        .filter(|s| targeted(s))
        .map(|s| s.at)
        .collect();
    // Every observation of the instance: a targeted describe, or a fleet listing (which the
    // next targeted describe counts from).
    let observation_times: Vec<Instant> = in_window
        .iter()
        .filter(|s| targeted(s) || listing(s))
        .map(|s| s.at)
        .collect();
    let window = window_end - window_start;
    let listing_gaps = gaps(&listing_times);
    let targeted_gaps = gaps(&targeted_times);
    let observation_gaps = gaps(&observation_times);
    println!(
        "window {:.1}s: {} targeted describes (gaps {:?}), {} fleet listings in all (gaps {:?})",
        secs(window),
        targeted_times.len(),
        targeted_gaps.iter().map(|g| secs(*g)).collect::<Vec<_>>(),
        listing_times.len(),
        listing_gaps.iter().map(|g| secs(*g)).collect::<Vec<_>>(),
    );
    // targeted describes at the transitional cadence: about one per interval, never faster
    let expected = secs(window) / secs(TRANSITIONAL);
    assert!(
        targeted_times.len() as f64 >= expected * 0.6,
        "{} targeted describes in {:.1}s, expected about {expected:.0}",
        targeted_times.len(),
        secs(window)
    );
    assert!(
        targeted_times.len() as f64 <= expected + 2.0,
        "{} targeted describes in {:.1}s, expected about {expected:.0}",
        targeted_times.len(),
        secs(window)
    );
    for g in &targeted_gaps {
        assert!(
            *g >= TRANSITIONAL.mul_f64(0.9),
            "targeted describes {:.2}s apart, faster than the transitional interval",
            secs(*g)
        );
    }
    for g in &observation_gaps {
        assert!(
            *g <= TRANSITIONAL + Duration::from_millis(800),
            "the creating instance went {:.2}s without an observation: the transitional cadence was lost",
            secs(*g)
        );
    }
    assert!(
        in_window
            .iter()
            .filter(|s| targeted(s) || listing(s))
            .all(|s| s.status_rewritten),
        "every answer in the window said creating"
    );
    // the fleet-wide listing keeps its own interval (a listing is one page here)
    assert!(listing_gaps.len() >= 2);
    for g in &listing_gaps {
        assert!(
            *g >= POLL.mul_f64(0.9),
            "fleet listings {:.2}s apart, faster than the poll interval",
            secs(*g)
        );
        assert!(
            *g <= POLL + 2 * TRANSITIONAL + Duration::from_millis(800),
            "fleet listings {:.2}s apart, slower than the poll interval",
            secs(*g)
        );
    }
    // nothing else reached AWS while it was creating
    assert!(
        in_window.iter().all(|s| s.action == "DescribeDBInstances"),
        "only describes while creating: {:?}",
        in_window.iter().map(|s| &s.action).collect::<Vec<_>>()
    );
    let i = instances.get("transit").await.unwrap();
    assert!(
        ready(&i).is_some_and(|c| c.reason == "Creating"),
        "{:?}",
        ready(&i)
    );
    let synced = i
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"));
    assert!(
        synced.is_some_and(|c| format!("{:?}", c.status) == "True"),
        "nothing is wrong while RDS creates: {synced:?}"
    );
    assert!(
        secrets.get_opt("transit-conn").await.unwrap().is_none(),
        "no connection Secret before the instance is available"
    );

    // 3. RDS says available: Ready within one transitional interval
    proxy.set_status(ID, None);
    let flipped = Instant::now();
    common::wait_for(
        &instances,
        "transit",
        10,
        "Ready=True Available",
        |i: &Instance| {
            ready(i).is_some_and(|c| format!("{:?}", c.status) == "True" && c.reason == "Available")
        },
    )
    .await;
    let to_ready = flipped.elapsed();
    println!(
        "Ready {:.2}s after RDS said available (transitional interval {:.0}s)",
        secs(to_ready),
        secs(TRANSITIONAL)
    );
    assert!(
        to_ready <= TRANSITIONAL + Duration::from_millis(1500),
        "Ready {:.2}s after RDS said available",
        secs(to_ready)
    );
    let ready_at = Instant::now();
    let conn = secrets.get("transit-conn").await.unwrap();
    assert!(conn.data.unwrap().contains_key("password"));

    // 4. available: no more targeted describes, only the fleet listing (wait for the next one)
    let listings_now = proxy.stats.seen().iter().filter(|s| listing(s)).count();
    until(2 * POLL.as_secs() + 5, "the next fleet listing", || {
        proxy.stats.seen().iter().filter(|s| listing(s)).count() > listings_now
    })
    .await;
    let after: Vec<Seen> = proxy
        .stats
        .seen()
        .into_iter()
        .filter(|s| s.at > ready_at && targeted(s))
        .collect();
    assert!(
        after.is_empty(),
        "{} targeted describes of an available instance",
        after.len()
    );
    assert_eq!(metrics.calls("CreateDBInstance"), 1);
    assert_eq!(metrics.calls("ModifyDBInstance"), 0);

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), ctl).await;
    purge_region(&direct).await;
    println!("wall time {:.1}s", secs(test_started.elapsed()));
}
