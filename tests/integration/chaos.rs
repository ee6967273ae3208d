//! The fault suite: paved as a real process against the real API server and the RDS emulator,
//! with a fault-injecting proxy in front of the emulator. Each test states its invariant as
//! assertions and prints its figures.
//!
//! `make test` runs the short version (small N, few kills, a 10 s outage).
//! `make chaos` runs the full one: `PAVED_CHAOS_FULL=1` (50 claims, 20 kills, a 60 s outage, ...),
//! and the long proptest run over field paths and rendering, which lives next to the engine
//! (`src/compose/proptests.rs`).
//!
//! Every test uses its own namespace, AWS region, ProviderConfig and Composition (by name, with
//! spec.compositionRef), and deletes its cluster-scoped objects when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use paved::api::Instance;
use serde_json::{Value, json};

fn full() -> bool {
    std::env::var("PAVED_CHAOS_FULL").is_ok_and(|v| v == "1" || v == "true")
}

fn pick<T>(short: T, long: T) -> T {
    if full() { long } else { short }
}

/// AWS requests per second paved may send (its default, what the rig runs it with).
const AWS_RPS: f64 = PAVED_DEFAULT_AWS_RPS;

// ---------------------------------------------------------------------------------------------
// crashes

/// Invariant: killing paved with SIGKILL at random moments while it provisions never creates a
/// second RDS instance and never loses a password. In the end every claim is Ready, there is
/// exactly one RDS instance per claim, and each was created with the password that its claim's
/// Secret holds (the proxy records CreateDBInstance's MasterUserPassword as AWS received it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_at_random_moments() {
    let (n, kills, max_gap_ms) = pick((10, 5, 1500), (50, 20, 1500));
    let rig = Rig::new(e2e_env(), "crash", "eu-north-1").await;
    let mut rig = rig;
    let names = rig.claim_names("db", n);
    let tracker = ReadyTracker::start(&rig.client, &rig.ns);
    let t0 = Instant::now();
    rig.apply_claims(&names).await;
    let mut kill_times = Vec::new();
    for _ in 0..kills {
        let gap = rand::random_range(100..max_gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        rig.paved.crash_and_restart();
        kill_times.push(t0.elapsed().as_secs_f64());
    }
    let ready_at_last_kill = tracker.ready_count();
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let res = tracker
        .wait_all(&wanted, Duration::from_secs(pick(150, 600)))
        .await;
    rig.print_aws("crash");
    println!(
        "[crash] {n} claims, {kills} SIGKILLs at {:?} s; {ready_at_last_kill} Ready at the last kill; all Ready after {:.1} s; paved started {} times",
        kill_times
            .iter()
            .map(|t| (t * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64(),
        rig.paved.starts
    );
    if let Err(e) = res {
        panic!(
            "invariant: every claim becomes Ready after the crashes. {e}\npaved log tail:\n{}",
            rig.paved.log_tail(40)
        );
    }

    // exactly one RDS instance per claim
    let creds = rig.claim_credentials(&names).await;
    let identifiers: BTreeSet<String> = creds.values().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        identifiers.len(),
        n,
        "invariant: each claim has its own RDS identifier"
    );
    let in_region = rds_identifiers(&rig.env.moto_url, &rig.region).await;
    let ours: Vec<&String> = in_region
        .iter()
        .filter(|id| id.starts_with(&format!("{}-", rig.ns)))
        .collect();
    println!(
        "[crash] RDS instances of this namespace in {}: {}",
        rig.region,
        ours.len()
    );
    assert_eq!(
        ours.len(),
        n,
        "invariant: exactly {n} RDS instances exist, one per claim: {ours:?}"
    );
    for id in &identifiers {
        assert!(
            in_region.contains(id),
            "invariant: the RDS instance {id} named by the Instance exists"
        );
    }
    let creates = rig.proxy.creates();
    let successful: BTreeMap<String, usize> = creates
        .iter()
        .filter(|c| c.outcome == Outcome::Forwarded(200))
        .fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.identifier.clone()).or_insert(0) += 1;
            m
        });
    println!(
        "[crash] CreateDBInstance attempts: {}, successful: {} (distinct identifiers {})",
        creates.len(),
        successful.values().sum::<usize>(),
        successful.len()
    );
    assert_eq!(
        successful.len(),
        n,
        "invariant: exactly {n} successful CreateDBInstance identifiers: {successful:?}"
    );
    assert!(
        successful.values().all(|&c| c == 1),
        "invariant: no identifier was created twice: {successful:?}"
    );

    // the password AWS was given is the one in the Secret
    for (claim, (id, secret_pw)) in &creds {
        let sent: BTreeSet<Option<String>> = creates
            .iter()
            .filter(|c| &c.identifier == id)
            .map(|c| c.password.clone())
            .collect();
        assert_eq!(
            sent.len(),
            1,
            "invariant: every CreateDBInstance for {id} carries the same password ({} different)",
            sent.len()
        );
        let sent = sent.into_iter().next().unwrap();
        assert!(
            sent.is_some(),
            "CreateDBInstance for {id} had no MasterUserPassword"
        );
        assert!(
            secret_pw.is_some(),
            "claim {claim}: its Secret has no password"
        );
        assert!(
            sent == *secret_pw,
            "invariant: claim {claim}: the password RDS instance {id} was created with differs from the one in {claim}-credentials"
        );
    }
    println!(
        "[crash] passwords: {n}/{n} Secrets hold the password their RDS instance was created with"
    );

    // and every database takes a login with its claim's Secret (the sandbox's PostgreSQL behind
    // the emulator: e2e/lib/rds_backend.py), by uri and by host/port/username/password
    let secrets: Api<Secret> = Api::namespaced(rig.client.clone(), &rig.ns);
    let t = Instant::now();
    let logins: Vec<(String, String)> = futures::stream::iter(names.iter().map(|name| {
        let secrets = secrets.clone();
        async move {
            let secret = format!("{name}-credentials");
            let data = postgres::secret_strings(&secrets.get(&secret).await.unwrap());
            postgres::login_with_secret(&secret, &data).await
        }
    }))
    .buffer_unordered(8)
    .collect()
    .await;
    let roles: BTreeSet<&String> = logins.iter().map(|(user, _)| user).collect();
    assert_eq!(
        roles.len(),
        n,
        "invariant: each claim's Secret logs in to a database of its own: {logins:?}"
    );
    println!(
        "[crash] logins: {n}/{n} databases took a login with their Secret (uri and fields) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    rig.paved.stop();
}

// ---------------------------------------------------------------------------------------------
// throttling and errors

/// Provision `names` through a proxy with `faults`; return (seconds to all Ready, AWS calls until
/// then, the max calls in any 1 s window, the rig).
async fn provision_with_faults(
    test: &str,
    region: &str,
    n: usize,
    faults: Faults,
) -> (f64, usize, usize, Rig) {
    let mut rig = Rig::new(e2e_env(), test, region).await;
    rig.proxy.set_faults(faults);
    let names = rig.claim_names("db", n);
    let tracker = ReadyTracker::start(&rig.client, &rig.ns);
    let t0 = Instant::now();
    rig.apply_claims(&names).await;
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    if let Err(e) = tracker
        .wait_all(&wanted, Duration::from_secs(pick(180, 600)))
        .await
    {
        rig.print_aws(test);
        panic!(
            "invariant: every claim converges (faults {faults:?}). {e}\npaved log tail:\n{}",
            rig.paved.log_tail(40)
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let calls = rig.proxy.total();
    let burst = rig.proxy.max_calls_in_window(Duration::from_secs(1));
    rig.print_aws(test);
    rig.paved.stop();
    (secs, calls, burst, rig)
}

/// Invariant: with 30% of AWS calls throttled and 5% answered with HTTP 500, every claim still
/// converges, paved makes at most twice the AWS calls of a fault-free run, and never more calls
/// in a second than its rate limit allows (no retry storm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_throttling_and_errors() {
    let n = pick(30, 50);
    let (clean_secs, clean_calls, clean_burst, _clean) =
        provision_with_faults("clean", "eu-west-3", n, Faults::default()).await;
    let (secs, calls, burst, rig) = provision_with_faults(
        "throttle",
        "eu-south-1",
        n,
        Faults {
            throttle: 0.30,
            server_error: 0.05,
        },
    )
    .await;
    let outcomes =
        rig.proxy
            .calls()
            .iter()
            .fold(BTreeMap::new(), |mut m: BTreeMap<String, usize>, c| {
                *m.entry(format!("{:?}", c.outcome)).or_insert(0) += 1;
                m
            });
    println!(
        "[throttle] {n} claims. fault-free: {clean_calls} AWS calls, {clean_secs:.1} s, max {clean_burst}/s. \
         30% Throttling + 5% HTTP 500: {calls} AWS calls ({:.2}x), {secs:.1} s, max {burst}/s; outcomes {outcomes:?}",
        calls as f64 / clean_calls.max(1) as f64
    );
    assert!(
        calls <= 2 * clean_calls,
        "invariant: at most 2x the AWS calls of the fault-free run ({calls} > 2 x {clean_calls})"
    );
    let limit = (2.0 * AWS_RPS).ceil() as usize + 1; // a full bucket plus one second of refill
    assert!(
        burst <= limit,
        "invariant: no retry storm: {burst} calls within one second > {limit} (rate {AWS_RPS}/s)"
    );
    assert!(rig.paved.starts == 1);
}

// ---------------------------------------------------------------------------------------------
// outage

fn looks_like_outage(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "dispatch",
        "connect",
        "unreachable",
        "timeout",
        "timed out",
        "io error",
        "refused",
        "transient",
        "unavailable",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Invariant: while the RDS API is unreachable, the affected objects' conditions say so; when it
/// returns, every claim converges, with the same paved process (no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_outage_mid_run() {
    let (n, outage) = pick((10, Duration::from_secs(10)), (20, Duration::from_secs(60)));
    let mut rig = Rig::new(e2e_env(), "outage", "eu-central-2").await;
    let pid = rig.paved.pid();
    let names = rig.claim_names("db", n);
    let (first, second) = names.split_at(n / 2);
    let tracker = ReadyTracker::start(&rig.client, &rig.ns);
    let t0 = Instant::now();
    rig.apply_claims(first).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.proxy.set_outage(true);
    let outage_start = Instant::now();
    let calls_before = rig.proxy.total();
    rig.apply_claims(second).await;
    // During the outage: wait for the conditions to report it.
    let instances: Api<Instance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let mut reported: BTreeMap<String, String> = BTreeMap::new();
    while outage_start.elapsed() < outage {
        for i in instances
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let v = serde_json::to_value(&i).unwrap();
            if let Some(c) = condition(&v, "Synced")
                && c["status"] == "False"
                && looks_like_outage(c["message"].as_str().unwrap_or(""))
            {
                reported.insert(
                    i.metadata.name.clone().unwrap_or_default(),
                    format!("{}: {}", c["reason"], c["message"]),
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ready_during = tracker.ready_count();
    let calls_during = rig.proxy.total() - calls_before;
    rig.proxy.set_outage(false);
    let back = Instant::now();
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let res = tracker
        .wait_all(&wanted, Duration::from_secs(pick(150, 400)))
        .await;
    println!(
        "[outage] {n} claims, emulator unreachable for {:?} from t={:.1}s; {ready_during} Ready at its end; {calls_during} calls reached the proxy during it (answered by closing); all Ready {:.1} s after it ended",
        outage,
        outage_start.duration_since(t0).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    for (name, msg) in reported.iter().take(3) {
        println!("[outage] Instance {name}: Synced=False {msg}");
    }
    rig.print_aws("outage");
    assert!(
        !reported.is_empty(),
        "invariant: during the outage an Instance's Synced condition says the RDS API is unreachable; none did.\npaved log tail:\n{}",
        rig.paved.log_tail(30)
    );
    if let Err(e) = res {
        panic!(
            "invariant: every claim converges after the outage. {e}\npaved log tail:\n{}",
            rig.paved.log_tail(40)
        );
    }
    assert!(
        rig.paved.alive() && rig.paved.pid() == pid && rig.paved.starts == 1,
        "invariant: no restart of paved"
    );
    rig.paved.stop();
}

// ---------------------------------------------------------------------------------------------
// API server restart

/// Invariant: when the API server restarts mid-run, paved's watches recover by themselves (same
/// process) and every claim, including those created after the restart, converges.
/// Uses a control plane of its own, so that restarting it disturbs no other test.
/// Rounds of the API server restart: 1 in `make test`, 20 in `make chaos` (or
/// `PAVED_RESTART_ROUNDS`).
fn restart_rounds() -> usize {
    std::env::var("PAVED_RESTART_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| pick(1, 20))
}

/// "p50 / p90 / max" of some seconds.
fn distribution(mut secs: Vec<f64>) -> String {
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| secs[((secs.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "min {:.1} s, p50 {:.1} s, p90 {:.1} s, max {:.1} s over {} rounds",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0),
        secs.len()
    )
}

/// The API server restarts while claims are being composed (half of them created just before,
/// half after), again and again, under one paved process: every claim reaches Ready. Before
/// `kube::watch::settled_objects`, a claim or Instance created while a watch was down could be
/// triggered before the store had it and then never reconciled (issue 18: 1 run in 4 failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_mid_run() {
    let n = pick(6, 20);
    let rounds = restart_rounds();
    let own = OwnControlPlane::up("e2e-chaos-restart");
    let mut rig = Rig::new(own.env.clone(), "restart", "eu-west-1").await;
    let pid = rig.paved.pid();
    let mut after = Vec::new();
    for round in 0..rounds {
        let names = rig.claim_names(&format!("r{round:02}-db"), n);
        let (first, second) = names.split_at(n / 2);
        let client = rig.env.client().await;
        let tracker = ReadyTracker::start(&client, &rig.ns);
        rig.apply_claims_with(&client, first, 16).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let t = Instant::now();
        own.restart_apiserver();
        let restart_secs = t.elapsed().as_secs_f64();
        let ready_at_restart = tracker.ready_count();
        // a fresh client: the restarted server has new connections
        let client = rig.env.client().await;
        let t_after = Instant::now();
        rig.apply_claims_with(&client, second, 8).await;
        let wanted: BTreeSet<String> = names.iter().cloned().collect();
        let res = tracker
            .wait_all(&wanted, Duration::from_secs(pick(150, 300)))
            .await;
        let secs = t_after.elapsed().as_secs_f64();
        println!(
            "[restart {round}] {n} claims; the API server restarted in {restart_secs:.1} s with {ready_at_restart} Ready; all were Ready {secs:.1} s after it"
        );
        if let Err(e) = res {
            panic!(
                "invariant: paved's watches recover after the API server restart (round {round}). {e}\npaved log tail:\n{}",
                rig.paved.log_tail(40)
            );
        }
        after.push(secs);
    }
    println!("[restart] Ready after the restart: {}", distribution(after));
    assert!(
        rig.paved.alive() && rig.paved.pid() == pid,
        "invariant: the same paved process, no restart"
    );
    // The watches said so: each was re-established after the outage, and /readyz is ok again.
    let log = std::fs::read_to_string(&rig.paved.log).unwrap_or_default();
    assert!(
        log.contains("watch re-established after"),
        "paved logs when a watch comes back; log tail:\n{}",
        rig.paved.log_tail(40)
    );
    rig.paved.stop();
}

/// The API server restarts while Instances are being created and deleted: every deleted one is
/// gone (from Kubernetes and from the RDS API), every created one Ready, none created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_while_creating_and_deleting() {
    let m = pick(6, 16);
    let own = OwnControlPlane::up("e2e-chaos-churn");
    let mut rig = Rig::new(own.env.clone(), "churn", "eu-north-1").await;
    let api: Api<Instance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let instance = |name: &str| {
        let mut v = instance_json(name, &rig.region, &rig.provider_config, json!({}));
        v["metadata"]["namespace"] = json!(rig.ns);
        v
    };
    let old: Vec<String> = (0..m).map(|i| format!("old-{i:02}")).collect();
    for name in &old {
        apply(&rig.client, &instance(name)).await.unwrap();
    }
    let ready = |items: &[std::sync::Arc<Instance>], names: &[String]| {
        names.iter().all(|n| {
            items.iter().any(|i| {
                i.metadata.name.as_deref() == Some(n.as_str()) && is_true_cond(&**i, "Ready")
            })
        })
    };
    let describe = |items: &[std::sync::Arc<Instance>]| {
        items
            .iter()
            .map(|i| {
                format!(
                    "{}: Ready={}",
                    i.metadata.name.clone().unwrap_or_default(),
                    is_true_cond(&**i, "Ready")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    wait_all(
        &api,
        120,
        "the first Instances Ready",
        |i| ready(i, &old),
        describe,
    )
    .await;
    let old_ids: BTreeMap<String, String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|i| {
            let id = i
                .metadata
                .annotations
                .as_ref()?
                .get("crossplane.io/external-name")?
                .clone();
            Some((i.metadata.name?, id))
        })
        .collect();
    let (gone, kept) = old.split_at(m / 2);
    let new: Vec<String> = (0..m).map(|i| format!("new-{i:02}")).collect();
    // The churn: deletions and creations in flight, then the restart in the middle of them.
    for name in gone {
        api.delete(name, &Default::default()).await.unwrap();
    }
    for name in &new[..m / 2] {
        apply(&rig.client, &instance(name)).await.unwrap();
    }
    let t = Instant::now();
    own.restart_apiserver();
    let restart_secs = t.elapsed().as_secs_f64();
    let client = rig.env.client().await;
    let api: Api<Instance> = Api::namespaced(client.clone(), &rig.ns);
    for name in &new[m / 2..] {
        apply(&client, &instance(name)).await.unwrap();
    }
    let t_after = Instant::now();
    let mut wanted: Vec<String> = kept.to_vec();
    wanted.extend(new.iter().cloned());
    let gone_names = gone.to_vec();
    wait_all(
        &api,
        pick(150, 300),
        "every kept and new Instance Ready, every deleted one gone",
        |items| {
            ready(items, &wanted)
                && !items.iter().any(|i| {
                    gone_names
                        .iter()
                        .any(|g| i.metadata.name.as_deref() == Some(g.as_str()))
                })
        },
        describe,
    )
    .await;
    println!(
        "[churn] {m} Instances, {} deleted and {m} created around an API server restart of {restart_secs:.1} s; all at their end state {:.1} s after it",
        gone.len(),
        t_after.elapsed().as_secs_f64()
    );
    let rds = emulator_rds_at(&rig.env.moto_url, &rig.region).await;
    for name in gone {
        let id = &old_ids[name];
        assert!(
            describe_gone(&rds, id).await,
            "invariant: the RDS instance {id} of deleted Instance {name} is deleted"
        );
    }
    let creates = rig.proxy.creates();
    let mut ids: Vec<&str> = creates.iter().map(|c| c.identifier.as_str()).collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        all,
        ids.len(),
        "invariant: no RDS instance is created twice: {creates:?}"
    );
    assert_eq!(ids.len(), 2 * m, "one CreateDBInstance per Instance");
    rig.paved.stop();
}

/// Whether the RDS instance `id` no longer exists (or is on its way out).
async fn describe_gone(rds: &aws_sdk_rds::Client, id: &str) -> bool {
    match describe(rds, id).await {
        None => true,
        Some(i) => i.db_instance_status() == Some("deleting"),
    }
}

// ---------------------------------------------------------------------------------------------
// bad input

/// What must happen to a bad input.
#[derive(Debug)]
enum Expect {
    /// The API server refuses the object (schema validation or size).
    Rejected,
    /// The claim's Synced condition is False with one of these reasons and a message containing
    /// this text.
    Claim {
        reasons: &'static [&'static str],
        contains: String,
    },
    /// The composed Instance's Synced condition is False with a message containing this text.
    Instance { contains: String },
    /// The claim is Synced=True and Ready=False with a message containing this text, and no
    /// Instance is composed for it (the engine skipped the resource).
    Skipped { contains: String },
}

struct Case {
    name: String,
    what: &'static str,
    composition: Option<Value>,
    claim: Option<Value>,
    secret: Option<Value>,
    expect: Expect,
}

/// A change that turns a valid object into a bad one.
type Mutation = Box<dyn Fn(&mut Value)>;

fn deep(depth: usize) -> Value {
    let mut v = json!("bottom");
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// The ~50 hand-written bad inputs.
fn bad_cases(ns: &str, region: &str, pc: &str, suffix: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let comp_name = |i: usize| format!("chaos-input-{suffix}-{i:02}");
    let base_comp = |i: usize| seed_composition(&comp_name(i), region, pc);
    let claim = |i: usize, comp: &str| {
        let mut c = seed_claim(&format!("invalid-{i:02}"), ns, comp);
        c["metadata"]["name"] = json!(format!("invalid-{i:02}"));
        c
    };

    // (1) claims the API server must refuse: wrong types, out-of-range and huge values, missing
    // required fields, bad enums and patterns.
    let claim_mutations: Vec<(&'static str, Mutation)> = vec![
        (
            "storageGB is a string",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!("twenty")),
        ),
        (
            "storageGB below 20",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!(5)),
        ),
        (
            "storageGB above 65536",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!(10_000_000)),
        ),
        (
            "storageGB beyond int64",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!(1e300)),
        ),
        (
            "storageGB fractional",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!(20.5)),
        ),
        (
            "storageGB negative",
            Box::new(|c| c["spec"]["parameters"]["storageGB"] = json!(-1)),
        ),
        (
            "version is a number",
            Box::new(|c| c["spec"]["parameters"]["version"] = json!(14)),
        ),
        (
            "version not offered",
            Box::new(|c| c["spec"]["parameters"]["version"] = json!("9")),
        ),
        (
            "version huge",
            Box::new(|c| c["spec"]["parameters"]["version"] = json!("1".repeat(100_000))),
        ),
        (
            "environment not a DNS label",
            Box::new(|c| c["spec"]["parameters"]["environment"] = json!("Staging_Prod")),
        ),
        (
            "environment too long",
            Box::new(|c| c["spec"]["parameters"]["environment"] = json!("a".repeat(200))),
        ),
        (
            "parameters missing",
            Box::new(|c| {
                c["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("parameters")
                    .map(|_| ())
                    .unwrap_or(())
            }),
        ),
        (
            "parameters is a string",
            Box::new(|c| c["spec"]["parameters"] = json!("big")),
        ),
        (
            "storageGB missing",
            Box::new(|c| {
                c["spec"]["parameters"]
                    .as_object_mut()
                    .unwrap()
                    .remove("storageGB")
                    .map(|_| ())
                    .unwrap_or(())
            }),
        ),
        ("spec is a list", Box::new(|c| c["spec"] = json!([1, 2]))),
        (
            "compositionRef is a string",
            Box::new(|c| c["spec"]["compositionRef"] = json!("postgresql-aws")),
        ),
        (
            "writeConnectionSecretToRef without name",
            Box::new(|c| c["spec"]["writeConnectionSecretToRef"] = json!({})),
        ),
        (
            "compositeDeletePolicy unknown",
            Box::new(|c| c["spec"]["compositeDeletePolicy"] = json!("Sometimes")),
        ),
        (
            "parameters deeply nested",
            Box::new(|c| c["spec"]["parameters"] = deep(400)),
        ),
        (
            "compositionSelector.matchLabels not a map",
            Box::new(|c| c["spec"]["compositionSelector"] = json!({"matchLabels": [1]})),
        ),
    ];
    for (i, (what, mutate)) in claim_mutations.into_iter().enumerate() {
        let mut c = claim(i, "whatever");
        mutate(&mut c);
        cases.push(Case {
            name: format!("invalid-{i:02}"),
            what,
            composition: None,
            claim: Some(c),
            secret: None,
            expect: Expect::Rejected,
        });
    }

    // (2) Compositions the API server must refuse.
    let i0 = cases.len();
    let comp_rejections: Vec<(&'static str, Mutation)> = vec![
        (
            "unknown patch type",
            Box::new(|c| {
                c["spec"]["resources"][0]["patches"][0]["type"] = json!("FromCompositeFieldPathz")
            }),
        ),
        (
            "unknown transform type",
            Box::new(|c| {
                c["spec"]["resources"][0]["patches"][0]["transforms"] = json!([{"type": "rot13"}])
            }),
        ),
        (
            "unknown math transform type",
            Box::new(|c| {
                c["spec"]["resources"][0]["patches"][0]["transforms"] =
                    json!([{"type": "math", "math": {"type": "Divide", "multiply": 2}}])
            }),
        ),
        (
            "unknown fromFieldPath policy",
            Box::new(|c| {
                c["spec"]["resources"][0]["patches"][0]["policy"] =
                    json!({"fromFieldPath": "Sometimes"})
            }),
        ),
        (
            "resources is a string",
            Box::new(|c| c["spec"]["resources"] = json!("rds")),
        ),
        (
            "base is a string",
            Box::new(|c| c["spec"]["resources"][0]["base"] = json!("Instance")),
        ),
        (
            "compositeTypeRef missing",
            Box::new(|c| {
                c["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("compositeTypeRef")
                    .map(|_| ())
                    .unwrap_or(())
            }),
        ),
        (
            "patches is a map",
            Box::new(|c| c["spec"]["resources"][0]["patches"] = json!({"a": 1})),
        ),
        (
            "huge Composition (4 MiB)",
            Box::new(|c| {
                c["spec"]["resources"][0]["base"]["metadata"] =
                    json!({"annotations": {"huge": "x".repeat(4 << 20)}})
            }),
        ),
        (
            "unknown mode",
            Box::new(|c| c["spec"]["mode"] = json!("Functions")),
        ),
    ];
    for (k, (what, mutate)) in comp_rejections.into_iter().enumerate() {
        let i = i0 + k;
        let mut comp = base_comp(i);
        mutate(&mut comp);
        cases.push(Case {
            name: comp_name(i),
            what,
            composition: Some(comp),
            claim: None,
            secret: None,
            expect: Expect::Rejected,
        });
    }

    // (3) Compositions the API server accepts and paved must refuse, each with a specific
    // condition on the claim that uses it.
    let i0 = cases.len();
    let p = |from: &str, to: &str| json!({"type": "FromCompositeFieldPath", "fromFieldPath": from, "toFieldPath": to});
    let deep_path = format!("spec.parameters{}", ".a".repeat(300));
    let comp_errors: Vec<(&'static str, Value, &'static [&'static str], String)> = vec![
        (
            "malformed fromFieldPath (unclosed bracket)",
            json!([p("spec.parameters[", "spec.forProvider.allocatedStorage")]),
            &["InvalidFieldPath"],
            "spec.parameters[".into(),
        ),
        (
            "malformed toFieldPath (empty segment)",
            json!([p(
                "spec.parameters.storageGB",
                "spec.forProvider..allocatedStorage"
            )]),
            &["InvalidFieldPath"],
            "spec.forProvider..allocatedStorage".into(),
        ),
        (
            "malformed fromFieldPath (stray bracket)",
            json!([p(
                "spec.parameters.storageGB]",
                "spec.forProvider.allocatedStorage"
            )]),
            &["InvalidFieldPath"],
            "storageGB]".into(),
        ),
        (
            "malformed toFieldPath (unclosed index)",
            json!([p("spec.parameters.storageGB", "spec.forProvider.tags[abc")]),
            &["InvalidFieldPath"],
            "tags[abc".into(),
        ),
        (
            "array index beyond the limit",
            json!([p(
                "spec.parameters.version",
                "spec.forProvider.vpcSecurityGroupIds[100000]"
            )]),
            &["InvalidFieldPath", "PatchError"],
            "100000".into(),
        ),
        (
            "patch targets metadata.name",
            json!([p("spec.parameters.environment", "metadata.name")]),
            &["InvalidPatchTarget"],
            "metadata.name".into(),
        ),
        (
            "patch targets kind",
            json!([p("spec.parameters.environment", "kind")]),
            &["InvalidPatchTarget"],
            "kind".into(),
        ),
        (
            "ToCompositeFieldPath outside status",
            json!([{"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": "spec.parameters.version"}]),
            &["InvalidPatchTarget", "InvalidComposition"],
            "spec.parameters.version".into(),
        ),
        (
            "unknown PatchSet",
            json!([{"type": "PatchSet", "patchSetName": "nope"}]),
            &["InvalidComposition"],
            "nope".into(),
        ),
        (
            "CombineFromComposite without combine",
            json!([{"type": "CombineFromComposite", "toFieldPath": "spec.forProvider.instanceClass"}]),
            &["InvalidComposition"],
            "combine".into(),
        ),
        (
            "environment patch",
            json!([{"type": "FromEnvironmentFieldPath", "fromFieldPath": "tier", "toFieldPath": "spec.forProvider.instanceClass"}]),
            &["InvalidComposition"],
            "FromEnvironmentFieldPath".into(),
        ),
        (
            "map transform without the key",
            json!([{"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion", "transforms": [{"type": "map", "map": {"15": "15.4"}}]}]),
            &["TransformError"],
            "14".into(),
        ),
        (
            "math on a string",
            json!([{"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion", "transforms": [{"type": "math", "math": {"type": "Multiply", "multiply": 2}}]}]),
            &["TransformError"],
            "math".into(),
        ),
        (
            "convert \"staging\" to int64",
            json!([{"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.port", "transforms": [{"type": "convert", "convert": {"toType": "int64"}}]}]),
            &["TransformError"],
            "staging".into(),
        ),
        (
            "invalid regexp",
            json!([{"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.instanceClass", "transforms": [{"type": "match", "match": {"patterns": [{"type": "regexp", "regexp": "(", "result": "x"}]}}]}]),
            &["InvalidComposition", "TransformError"],
            "(".into(),
        ),
        (
            "string Format without fmt",
            json!([{"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.instanceClass", "transforms": [{"type": "string", "string": {"type": "Format"}}]}]),
            &["InvalidComposition", "TransformError"],
            "fmt".into(),
        ),
        (
            "patch through a scalar",
            json!([p("spec.parameters.storageGB", "spec.forProvider.engine.x")]),
            &["PatchError"],
            "engine".into(),
        ),
    ];
    for (k, (what, patches, reasons, contains)) in comp_errors.into_iter().enumerate() {
        let i = i0 + k;
        let mut comp = base_comp(i);
        comp["spec"]["resources"][0]["patches"] = patches;
        let cl = claim(i, &comp_name(i));
        cases.push(Case {
            name: format!("invalid-{i:02}"),
            what,
            composition: Some(comp),
            claim: Some(cl),
            secret: None,
            expect: Expect::Claim { reasons, contains },
        });
    }

    // A Required patch whose source is missing skips the resource (as Crossplane's
    // function-patch-and-transform does): the claim is synced, not Ready, nothing is created.
    for (what, from, contains) in [
        (
            "missing Required source",
            "spec.parameters.tier".to_string(),
            "spec.parameters.tier",
        ),
        (
            "missing Required source, 300 levels deep",
            deep_path.clone(),
            "spec.parameters.a.a",
        ),
    ] {
        let i = cases.len();
        let mut comp = base_comp(i);
        comp["spec"]["resources"][0]["patches"] = json!([{"fromFieldPath": from, "toFieldPath": "spec.forProvider.instanceClass", "policy": {"fromFieldPath": "Required"}}]);
        let cl = claim(i, &comp_name(i));
        cases.push(Case {
            name: format!("invalid-{i:02}"),
            what,
            composition: Some(comp),
            claim: Some(cl),
            secret: None,
            expect: Expect::Skipped {
                contains: contains.into(),
            },
        });
    }

    // (4) bases paved cannot compose, and a Composition/claim mismatch
    let i0 = cases.len();
    let base_errors: Vec<(&'static str, Mutation, &'static [&'static str], String)> = vec![
        (
            "base kind not served",
            Box::new(|c: &mut Value| {
                c["spec"]["resources"][0]["base"]["apiVersion"] = json!("widgets.example.com/v1");
                c["spec"]["resources"][0]["base"]["kind"] = json!("Widget");
            }),
            &["KindNotServed"],
            "Widget".into(),
        ),
        (
            "base is cluster-scoped",
            Box::new(|c: &mut Value| {
                c["spec"]["resources"][0]["base"] =
                    json!({"apiVersion": "v1", "kind": "Namespace"});
                c["spec"]["resources"][0]["patches"] = json!([]);
            }),
            &["InvalidComposedResource"],
            "cluster-scoped".into(),
        ),
        (
            "base without apiVersion",
            Box::new(|c: &mut Value| {
                c["spec"]["resources"][0]["base"]
                    .as_object_mut()
                    .unwrap()
                    .remove("apiVersion")
                    .map(|_| ())
                    .unwrap_or(())
            }),
            &["InvalidComposedResource"],
            "apiVersion".into(),
        ),
        (
            "Composition for another claim type",
            Box::new(|c: &mut Value| {
                c["spec"]["compositeTypeRef"] =
                    json!({"apiVersion": "database.example.com/v1alpha1", "kind": "MySQLInstance"})
            }),
            &["CompositionInvalid"],
            "MySQLInstance".into(),
        ),
        (
            "mode Pipeline with a Function paved does not run",
            Box::new(|c: &mut Value| {
                c["spec"]["mode"] = json!("Pipeline");
                c["spec"]["pipeline"] = json!([{"step": "x", "functionRef": {"name": "f"}}]);
            }),
            &["UnsupportedFunction"],
            "Function \"f\"".into(),
        ),
        (
            "huge value: storage multiplied past the Instance maximum",
            Box::new(|c: &mut Value| {
                c["spec"]["resources"][0]["patches"][0]["transforms"] = json!([{"type": "math", "math": {"type": "Multiply", "multiply": 1_000_000_000}}])
            }),
            &["ApiInvalid"],
            "allocatedStorage".into(),
        ),
    ];
    for (k, (what, mutate, reasons, contains)) in base_errors.into_iter().enumerate() {
        let i = i0 + k;
        let mut comp = base_comp(i);
        mutate(&mut comp);
        let cl = claim(i, &comp_name(i));
        cases.push(Case {
            name: format!("invalid-{i:02}"),
            what,
            composition: Some(comp),
            claim: Some(cl),
            secret: None,
            expect: Expect::Claim { reasons, contains },
        });
    }
    let i = cases.len();
    cases.push(Case {
        name: format!("invalid-{i:02}"),
        what: "compositionRef names no Composition",
        composition: None,
        claim: Some(claim(i, "chaos-no-such-composition")),
        secret: None,
        expect: Expect::Claim {
            reasons: &["CompositionNotFound"],
            contains: "chaos-no-such-composition".into(),
        },
    });

    // (5) non-UTF-8 and empty master passwords in a user-provided Secret
    for (what, bytes) in [
        (
            "non-UTF-8 bytes in the password Secret",
            vec![0xffu8, 0xfe, 0x00, 0x80, b'p', b'w'],
        ),
        (
            "lone continuation byte in the password Secret",
            vec![b'a'; 12].into_iter().chain([0x80u8]).collect(),
        ),
    ] {
        let i = cases.len();
        let secret_name = format!("invalid-{i:02}-master");
        let mut comp = base_comp(i);
        comp["spec"]["resources"][0]["base"]["spec"]["forProvider"]["passwordSecretRef"] =
            json!({"name": secret_name, "namespace": ns, "key": "password"});
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": ns},
            "data": {"password": base64_encode(&bytes)}
        });
        cases.push(Case {
            name: format!("invalid-{i:02}"),
            what,
            composition: Some(comp),
            claim: Some(claim(i, &comp_name(i))),
            secret: Some(secret),
            expect: Expect::Instance {
                contains: "printable ASCII".into(),
            },
        });
    }
    cases
}

/// Invariant: each of ~55 invalid claims and Compositions is refused by the API server or gets a
/// specific condition (reason + a message naming the problem); none causes an AWS call for it or
/// a panic; the valid claims applied alongside become Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely() {
    let mut rig = Rig::new(e2e_env(), "input", "ap-south-2").await;
    let suffix = random_suffix(5);
    let pc = format!("chaos-input-pc-{suffix}");
    apply(&rig.client, &provider_config(&pc, &rig.proxy.url()))
        .await
        .unwrap();
    let cases = bad_cases(&rig.ns, &rig.region, &pc, &suffix);
    let mut cleanup = ClusterCleanup::new(&rig.env);
    cleanup.provider_config(&pc);
    for c in &cases {
        if let Some(comp) = &c.composition {
            cleanup.composition(comp["metadata"]["name"].as_str().unwrap());
        }
    }
    let valid = rig.claim_names("valid", 5);
    let tracker = ReadyTracker::start(&rig.client, &rig.ns);
    rig.apply_claims(&valid).await;

    let mut failures = Vec::new();
    let mut rejected = 0;
    for c in &cases {
        if let Some(s) = &c.secret {
            apply(&rig.client, s).await.unwrap();
        }
        if let Some(comp) = &c.composition {
            let r = apply(&rig.client, comp).await;
            match (&c.expect, r) {
                (Expect::Rejected, Err(_)) => {
                    rejected += 1;
                    continue;
                }
                (Expect::Rejected, Ok(())) => {
                    failures.push(format!(
                        "{} ({}): the API server accepted the Composition",
                        c.name, c.what
                    ));
                    continue;
                }
                (_, Err(e)) => {
                    failures.push(format!(
                        "{} ({}): the API server refused the Composition: {e}",
                        c.name, c.what
                    ));
                    continue;
                }
                (_, Ok(())) => {}
            }
        }
        if let Some(cl) = &c.claim {
            match (&c.expect, apply(&rig.client, cl).await) {
                (Expect::Rejected, Err(_)) => rejected += 1,
                (Expect::Rejected, Ok(())) => failures.push(format!(
                    "{} ({}): the API server accepted the claim",
                    c.name, c.what
                )),
                (_, Err(e)) => failures.push(format!(
                    "{} ({}): the API server refused the claim: {e}",
                    c.name, c.what
                )),
                (_, Ok(())) => {}
            }
        }
    }
    let wanted: BTreeSet<String> = valid.iter().cloned().collect();
    let valid_res = tracker.wait_all(&wanted, Duration::from_secs(120)).await;

    // conditions: give paved until the deadline to report each
    let claims: Api<paved::api::PostgreSQLInstance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let instances: Api<Instance> = Api::namespaced(rig.client.clone(), &rig.ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<&Case> = cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Rejected))
        .collect();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut reason_seen: BTreeMap<String, (String, bool)> = BTreeMap::new();
    loop {
        let mut still = Vec::new();
        for c in pending {
            let state = match &c.expect {
                Expect::Claim { reasons, contains } => {
                    let obj = claims
                        .get_opt(&c.name)
                        .await
                        .ok()
                        .flatten()
                        .map(|o| serde_json::to_value(o).unwrap());
                    let text = obj.as_ref().map(conditions_text).unwrap_or_default();
                    // The message must name the problem. The reason is recorded: the bounded
                    // category (`reasons`) is what an alert would key on.
                    let ok = obj
                        .as_ref()
                        .and_then(|o| condition(o, "Synced"))
                        .is_some_and(|s| {
                            s["status"] == "False"
                                && s["message"]
                                    .as_str()
                                    .is_some_and(|m| m.contains(contains.as_str()))
                        });
                    if let Some(s) = obj.as_ref().and_then(|o| condition(o, "Synced"))
                        && s["status"] == "False"
                    {
                        let r = s["reason"].as_str().unwrap_or("").to_string();
                        let specific = reasons.iter().any(|x| *x == r);
                        reason_seen.insert(c.name.clone(), (r, specific));
                    }
                    (ok, text)
                }
                Expect::Instance { contains } => {
                    let list = instances
                        .list(&Default::default())
                        .await
                        .map(|l| l.items)
                        .unwrap_or_default();
                    let inst = list.into_iter().find(|i| {
                        i.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("crossplane.io/claim-name"))
                            == Some(&c.name)
                    });
                    let obj = inst.map(|o| serde_json::to_value(o).unwrap());
                    let text = obj
                        .as_ref()
                        .map(conditions_text)
                        .unwrap_or_else(|| "(no Instance)".into());
                    let ok = obj
                        .as_ref()
                        .and_then(|o| condition(o, "Synced"))
                        .is_some_and(|s| {
                            s["status"] == "False"
                                && s["message"]
                                    .as_str()
                                    .is_some_and(|m| m.contains(contains.as_str()))
                        });
                    (ok, text)
                }
                Expect::Skipped { contains } => {
                    let obj = claims
                        .get_opt(&c.name)
                        .await
                        .ok()
                        .flatten()
                        .map(|o| serde_json::to_value(o).unwrap());
                    let text = obj.as_ref().map(conditions_text).unwrap_or_default();
                    let composed = instances
                        .list(&Default::default())
                        .await
                        .map(|l| l.items)
                        .unwrap_or_default()
                        .into_iter()
                        .any(|i| {
                            i.metadata
                                .labels
                                .as_ref()
                                .and_then(|l| l.get("crossplane.io/claim-name"))
                                == Some(&c.name)
                        });
                    let ok = !composed
                        && obj.as_ref().is_some_and(|o| {
                            condition(o, "Synced").is_some_and(|s| s["status"] == "True")
                                && condition(o, "Ready").is_some_and(|r| {
                                    r["status"] == "False"
                                        && r["message"]
                                            .as_str()
                                            .is_some_and(|m| m.contains(contains.as_str()))
                                })
                        });
                    (ok, text)
                }
                Expect::Rejected => (true, String::new()),
            };
            seen.insert(c.name.clone(), state.1);
            if !state.0 {
                still.push(c);
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for c in &pending {
        failures.push(format!(
            "{} ({}): expected {:?}; got {}",
            c.name,
            c.what,
            c.expect,
            seen.get(&c.name).cloned().unwrap_or_default()
        ));
    }

    // zero AWS calls for any invalid object; one CreateDBInstance per valid claim
    let calls = rig.proxy.calls();
    let touching: Vec<String> = calls
        .iter()
        .filter(|c| {
            c.identifier
                .as_deref()
                .is_some_and(|id| id.contains("-invalid-"))
        })
        .map(|c| format!("{} {}", c.action, c.identifier.clone().unwrap_or_default()))
        .collect();
    let creates: BTreeSet<String> = rig
        .proxy
        .creates()
        .into_iter()
        .map(|c| c.identifier)
        .collect();
    let log = rig.paved.log_text();
    let panicked = log.contains("panicked");
    println!(
        "[bad-input] {} bad inputs: {rejected} refused by the API server, {} with a condition from paved; {} with the wrong outcome; AWS calls for invalid objects: {}; CreateDBInstance identifiers: {}; valid claims Ready: {}/{}",
        cases.len(),
        cases.len() - rejected - pending.len(),
        failures.len(),
        touching.len(),
        creates.len(),
        tracker.ready_count(),
        valid.len()
    );
    for c in cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Rejected))
    {
        println!(
            "[bad-input]   {} ({}): {}",
            c.name,
            c.what,
            seen.get(&c.name).cloned().unwrap_or_default()
        );
    }
    let generic: BTreeSet<&str> = reason_seen
        .values()
        .filter(|(_, specific)| !specific)
        .map(|(r, _)| r.as_str())
        .collect();
    println!(
        "[bad-input] condition reasons: {}/{} carry the specific category; the others say {generic:?} (the category is in the message)",
        reason_seen.values().filter(|(_, s)| *s).count(),
        reason_seen.len()
    );
    assert!(
        rig.paved.alive() && rig.paved.starts == 1 && !panicked,
        "invariant: no panic, paved still running"
    );
    assert!(
        touching.is_empty(),
        "invariant: zero AWS calls for invalid objects: {touching:?}"
    );
    assert!(
        creates.len() <= valid.len(),
        "invariant: CreateDBInstance only for the valid claims: {creates:?}"
    );
    if let Err(e) = valid_res {
        failures.push(format!(
            "invariant: valid claims alongside become Ready: {e}"
        ));
    }
    assert!(
        failures.is_empty(),
        "invariant: each bad input is refused precisely:\n{}",
        failures.join("\n")
    );
    rig.paved.stop();
}

// ---------------------------------------------------------------------------------------------
// the API server stalled or cut (the harness's TCP pass-through)

/// Invariant of the harness's kube-apiserver fault: through the TCP pass-through a client works;
/// while it stalls, a request neither answers nor fails, and it completes once the stall ends;
/// while it is cut, requests fail; afterwards the same client works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_stall_and_cut_through_the_tcp_proxy() {
    use k8s_openapi::api::core::v1::Namespace;
    let env = e2e_env();
    let proxy = TcpProxy::start(&kube_server_addr(&env.kubeconfig)).await;
    let kubeconfig = kubeconfig_via(
        &env.kubeconfig,
        &proxy,
        &project_root().join("target/e2e-logs"),
    );
    let client = client_from(&kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.get("default").await.expect("through the proxy");

    proxy.set_stall(true);
    let mut stalled = tokio::spawn({
        let namespaces = namespaces.clone();
        async move { namespaces.get("default").await }
    });
    let held = tokio::time::timeout(Duration::from_secs(2), &mut stalled).await;
    assert!(
        held.is_err(),
        "invariant: a stalled API server does not answer"
    );
    proxy.set_stall(false);
    let answer = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("invariant: the held request completes when the stall ends")
        .unwrap();
    answer.expect("the held request succeeds");

    proxy.set_outage(true);
    let cut = tokio::time::timeout(Duration::from_secs(10), namespaces.get("default")).await;
    assert!(
        matches!(cut, Ok(Err(_))),
        "invariant: a cut API server fails requests: {cut:?}"
    );
    proxy.set_outage(false);
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if namespaces.get("default").await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        back.is_ok(),
        "invariant: the client works again after the cut"
    );
}
