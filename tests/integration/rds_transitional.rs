//! Transitional polling, against the real controller, a real kube-apiserver and the RDS emulator.
//!
//! The emulator reports every instance `available` at once, so a proxy in front of it
//! (the harness's fault proxy, tests/common/proxy.rs) rewrites the DBInstanceStatus of one identifier to `creating`
//! in the CreateDBInstance and DescribeDBInstances answers until the test flips it back. While it
//! is `creating`, the Instance must say so (Ready=False, reason Creating, the RDS status in the
//! message) and be described on its own (DescribeDBInstances with DBInstanceIdentifier) at the
//! transitional cadence, while the fleet-wide listing keeps its own, slower interval; once RDS
//! says `available`, the Instance must be Ready within one transitional interval, and the
//! targeted describes stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::PostParams;
use paved::api::instance::Instance;
use paved::rds::RdsConfig;
use serde_json::json;

/// This test's region in the emulator (no other test uses it).
const REGION: &str = "us-west-2";
/// The RDS identifier (set as the external-name, so that the proxy knows it before the create).
const ID: &str = "transit-db";
/// The fleet-wide listing interval.
const POLL: Duration = Duration::from_secs(6);
/// The transitional cadence: the shortest the configuration takes in practice (the tests of
/// tests/integration/rds.rs use the same), 15–30 s in production (default 20 s).
const TRANSITIONAL: Duration = Duration::from_secs(1);

#[tokio::test]
async fn transitional_instance_is_described_individually_until_available() {
    let test_started = Instant::now();
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    proxy.set_status(ID, Some("creating"));
    // namespace, credentials, a ProviderConfig pointing at the proxy, the region emptied
    let env = RdsEnv::new("rds-transit", REGION, Some(&proxy.url())).await;

    // the controller, with the short intervals
    let cfg = RdsConfig {
        poll_interval: POLL,
        transitional_poll_interval: TRANSITIONAL,
        aws_requests_per_second: 50.0,
        ..RdsConfig::default()
    };
    let ctl = RdsController::start(&env.client, &env.ns, cfg).await;

    let (instances, secrets) = (&env.instances, &env.secrets);
    let obj: Instance = serde_json::from_value(env.instance_json(
        "transit",
        json!({"metadata": {"annotations": {"crossplane.io/external-name": ID}}}),
    ))
    .unwrap();
    instances
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();

    // 1. creating: Ready=False Creating, the RDS status in the message
    let i = wait_for(
        instances,
        "transit",
        30,
        "Ready=False Creating",
        |i: &Instance| {
            cond(i, "Ready")
                .is_some_and(|c| format!("{:?}", c.status) == "False" && c.reason == "Creating")
        },
    )
    .await;
    let window_start = Instant::now();
    let c = cond(&i, "Ready").unwrap();
    assert!(
        c.message.contains("creating") && c.message.contains(ID),
        "{c:?}"
    );
    let at = i.status.as_ref().unwrap().at_provider.as_ref().unwrap();
    assert_eq!(at.status.as_deref(), Some("creating"));
    let creates = proxy.forwarded_of("CreateDBInstance");
    assert_eq!(creates.len(), 1);
    assert!(
        creates[0].status_rewritten,
        "the create answer said creating"
    );

    // 2. two more fleet listings (about two poll intervals) while it stays `creating`
    let listings_before = proxy.calls().iter().filter(|s| s.is_listing()).count();
    proxy
        .wait_calls(
            4 * POLL.as_secs() + 10,
            "two more fleet listings",
            |calls| calls.iter().filter(|s| s.is_listing()).count() >= listings_before + 2,
        )
        .await;
    let window_end = Instant::now();
    let seen = proxy.calls();
    let listing_times: Vec<Instant> = seen
        .iter()
        .filter(|s| s.is_listing())
        .map(|s| s.at)
        .collect();
    let in_window: Vec<&Call> = seen
        .iter()
        .filter(|s| s.at >= window_start && s.at <= window_end)
        .collect();
    let targeted_times: Vec<Instant> = in_window
        .iter()
        .filter(|s| s.describes(ID))
        .map(|s| s.at)
        .collect();
    // Every observation of the instance: a targeted describe, or a fleet listing (which the
    // next targeted describe counts from).
    let observation_times: Vec<Instant> = in_window
        .iter()
        .filter(|s| s.describes(ID) || s.is_listing())
        .map(|s| s.at)
        .collect();
    let window = window_end - window_start;
    let listing_gaps = gaps(&listing_times);
    let targeted_gaps = gaps(&targeted_times);
    let observation_gaps = gaps(&observation_times);
    println!(
        "window {:.1}s: {} targeted describes (gaps {:?}), {} fleet listings in all (gaps {:?})",
        window.as_secs_f64(),
        targeted_times.len(),
        targeted_gaps
            .iter()
            .map(|g| g.as_secs_f64())
            .collect::<Vec<_>>(),
        listing_times.len(),
        listing_gaps
            .iter()
            .map(|g| g.as_secs_f64())
            .collect::<Vec<_>>(),
    );
    // targeted describes at the transitional cadence: about one per interval, never faster
    let expected = window.as_secs_f64() / TRANSITIONAL.as_secs_f64();
    assert!(
        targeted_times.len() as f64 >= expected * 0.6,
        "{} targeted describes in {:.1}s, expected about {expected:.0}",
        targeted_times.len(),
        window.as_secs_f64()
    );
    assert!(
        targeted_times.len() as f64 <= expected + 2.0,
        "{} targeted describes in {:.1}s, expected about {expected:.0}",
        targeted_times.len(),
        window.as_secs_f64()
    );
    for g in &targeted_gaps {
        assert!(
            *g >= TRANSITIONAL.mul_f64(0.9),
            "targeted describes {:.2}s apart, faster than the transitional interval",
            g.as_secs_f64()
        );
    }
    for g in &observation_gaps {
        assert!(
            *g <= TRANSITIONAL + Duration::from_millis(800),
            "the creating instance went {:.2}s without an observation: the transitional cadence was lost",
            g.as_secs_f64()
        );
    }
    assert!(
        in_window
            .iter()
            .filter(|s| s.describes(ID) || s.is_listing())
            .all(|s| s.status_rewritten),
        "every answer in the window said creating"
    );
    // the fleet-wide listing keeps its own interval (a listing is one page here)
    assert!(listing_gaps.len() >= 2);
    for g in &listing_gaps {
        assert!(
            *g >= POLL.mul_f64(0.9),
            "fleet listings {:.2}s apart, faster than the poll interval",
            g.as_secs_f64()
        );
        assert!(
            *g <= POLL + 2 * TRANSITIONAL + Duration::from_millis(800),
            "fleet listings {:.2}s apart, slower than the poll interval",
            g.as_secs_f64()
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
        cond(&i, "Ready").is_some_and(|c| c.reason == "Creating"),
        "{:?}",
        cond(&i, "Ready")
    );
    let synced = cond(&i, "Synced");
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
    wait_for(
        instances,
        "transit",
        10,
        "Ready=True Available",
        |i: &Instance| {
            cond(i, "Ready")
                .is_some_and(|c| format!("{:?}", c.status) == "True" && c.reason == "Available")
        },
    )
    .await;
    let to_ready = flipped.elapsed();
    println!(
        "Ready {:.2}s after RDS said available (transitional interval {:.0}s)",
        to_ready.as_secs_f64(),
        TRANSITIONAL.as_secs_f64()
    );
    assert!(
        to_ready <= TRANSITIONAL + Duration::from_millis(1500),
        "Ready {:.2}s after RDS said available",
        to_ready.as_secs_f64()
    );
    let ready_at = Instant::now();
    let conn = secrets.get("transit-conn").await.unwrap();
    assert!(conn.data.unwrap().contains_key("password"));

    // 4. available: no more targeted describes, only the fleet listing (wait for the next one)
    let listings_now = proxy.calls().iter().filter(|s| s.is_listing()).count();
    proxy
        .wait_calls(2 * POLL.as_secs() + 5, "the next fleet listing", |calls| {
            calls.iter().filter(|s| s.is_listing()).count() > listings_now
        })
        .await;
    let after: Vec<Call> = proxy
        .calls()
        .into_iter()
        .filter(|s| s.at > ready_at && s.describes(ID))
        .collect();
    assert!(
        after.is_empty(),
        "{} targeted describes of an available instance",
        after.len()
    );
    assert_eq!(ctl.calls("CreateDBInstance"), 1);
    assert_eq!(ctl.calls("ModifyDBInstance"), 0);

    ctl.stop().await;
    purge_region(&env.rds).await;
    println!("wall time {:.1}s", test_started.elapsed().as_secs_f64());
}
