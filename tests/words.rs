//! Plain words: what paved tells a user when something goes wrong, against the real API server
//! and the emulator (through the fault proxy where the emulator cannot misbehave by itself).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use paved::rds::RdsConfig;
use serde_json::json;

/// A hung AWS endpoint is never silent: with `--aws-timeout 3s`, a new Instance whose endpoint
/// accepts calls and never answers says, within a few seconds, Synced=False AWSUnavailable
/// naming the endpoint and the timeout, and its Warning Event says it without a countdown.
#[tokio::test]
async fn a_hung_endpoint_is_named_within_the_timeout() {
    let proxy = FaultProxy::start(&e2e_env().moto_url).await;
    let env = RdsEnv::new("words-hang", "ap-east-1", Some(&proxy.url())).await;
    let ctl = RdsController::start(
        &env.client,
        &env.ns,
        RdsConfig {
            aws_timeout: Duration::from_secs(3),
            ..fast()
        },
    )
    .await;
    proxy.set_stall(true);
    let started = Instant::now();
    env.create("hung", json!({})).await;
    let i = env.wait_synced_false("hung", "AWSUnavailable", 20).await;
    let waited = started.elapsed();
    let c = cond(&i, "Synced").unwrap();
    let want = format!("no answer from {} within 3 s", proxy.url());
    assert!(c.message.contains(&want), "{}", c.message);
    for bad in ["{", "Some(", "SdkBody", "TimeoutError"] {
        assert!(!c.message.contains(bad), "{}", c.message);
    }
    // one timeout, not four retries of it (nor the 30 s default)
    assert!(waited < Duration::from_secs(12), "took {waited:?}");

    let events = wait_event(&env.client, &env.ns, "hung", "AWSUnavailable", 20).await;
    assert!(events.contains(&want), "{events}");
    assert!(!events.contains("retrying in"), "{events}");
    proxy.set_stall(false);
    ctl.stop().await;
}

/// Wait until an Event about `name` with `reason` exists; its notes, one per line.
async fn wait_event(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
    secs: u64,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let evs = events_about(client, ns, name).await;
        let notes: Vec<String> = evs
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.note.clone().unwrap_or_default())
            .collect();
        if !notes.is_empty() {
            return notes.join("\n");
        }
        assert!(
            Instant::now() < deadline,
            "no Event {reason} about {ns}/{name} within {secs} s; Events: {:?}",
            evs.iter()
                .map(|e| (e.reason.clone(), e.note.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
