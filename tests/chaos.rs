//! The fault suite: paved as a real process against the real API server and the RDS emulator,
//! with a fault-injecting proxy in front of the emulator. Each test states its invariant as
//! assertions and prints its figures.
//!
//! `make test` runs the short version (small N, few kills, a 10 s outage, a short proptest run).
//! `make chaos` runs the full one: `PAVED_CHAOS_FULL=1` (50 claims, 20 kills, a 60 s outage, ...)
//! and `PAVED_FUZZ_SECS=600` for the proptest run over field paths and rendering.
//!
//! Every test uses its own namespace, AWS region, ProviderConfig and Composition (by name, with
//! spec.compositionRef), and deletes its cluster-scoped objects when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/chaos_env.rs"]
mod chaos_env;
#[path = "support/chaos_proxy.rs"]
mod chaos_proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chaos_env::*;
use chaos_proxy::{FaultProxy, Faults, Outcome};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use paved::api::Instance;
use serde_json::{Value, json};

fn full() -> bool {
    std::env::var("PAVED_CHAOS_FULL").is_ok_and(|v| v == "1" || v == "true")
}

fn pick<T>(short: T, long: T) -> T {
    if full() { long } else { short }
}

/// AWS requests per second paved may send (its default).
const AWS_RPS: f64 = 8.0;

/// Deletes the test's cluster-scoped objects (with kubectl, so that it also works while a test
/// panics) when dropped.
struct ClusterCleanup {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    objects: Vec<(String, String)>,
}

impl Drop for ClusterCleanup {
    fn drop(&mut self) {
        for (kind, name) in &self.objects {
            let _ = std::process::Command::new(&self.kubectl)
                .args(["delete", kind, name, "--ignore-not-found", "--wait=false"])
                .env("KUBECONFIG", &self.kubeconfig)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// One test's world: a namespace, a proxy in front of the emulator, a ProviderConfig pointing at
/// the proxy, the seed Composition in the test's region, and paved running on the namespace.
struct Rig {
    env: Env,
    client: Client,
    ns: String,
    region: String,
    composition: String,
    proxy: FaultProxy,
    paved: Paved,
    _cleanup: ClusterCleanup,
}

impl Rig {
    async fn new(env: Env, test: &str, region: &str) -> Rig {
        let client = env.client().await;
        install_crds(&client).await;
        let suffix = random_suffix(6);
        let ns = format!("chaos-{test}-{suffix}");
        ensure_namespace(&client, &ns).await;
        let proxy = FaultProxy::start(&env.moto_url).await;
        let pc = format!("chaos-{test}-{suffix}");
        let composition = format!("chaos-{test}-{suffix}");
        let cleanup = ClusterCleanup {
            kubectl: env.kubectl.clone(),
            kubeconfig: env.kubeconfig.clone(),
            objects: vec![
                (
                    "compositions.apiextensions.crossplane.io".into(),
                    composition.clone(),
                ),
                ("providerconfigs.aws.upbound.io".into(), pc.clone()),
            ],
        };
        apply(&client, &provider_config(&pc, &proxy.url()))
            .await
            .expect("ProviderConfig");
        apply(&client, &seed_composition(&composition, region, &pc))
            .await
            .expect("Composition");
        let paved = Paved::start(PavedOpts {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_paved")),
            kubeconfig: env.kubeconfig.clone(),
            namespaces: vec![ns.clone()],
            aws_endpoint: proxy.url(),
            region: region.to_string(),
            poll_interval: "10s".into(),
            aws_rps: AWS_RPS,
            log: project_root().join(format!("target/e2e-logs/{ns}.log")),
            log_level: "info,paved=debug".into(),
        });
        let mut rig = Rig {
            env,
            client,
            ns,
            region: region.to_string(),
            composition,
            proxy,
            paved,
            _cleanup: cleanup,
        };
        rig.paved.wait_ready(Duration::from_secs(60)).await;
        rig
    }

    fn claim_names(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
    }

    async fn apply_claims(&self, names: &[String]) {
        let results: Vec<_> = futures::stream::iter(names.iter().map(|n| {
            let obj = seed_claim(n, &self.ns, &self.composition);
            let client = self.client.clone();
            async move { (n.clone(), apply(&client, &obj).await) }
        }))
        .buffer_unordered(16)
        .collect()
        .await;
        for (n, r) in results {
            r.unwrap_or_else(|e| panic!("applying claim {n}: {e}"));
        }
    }

    /// claim name → (RDS identifier, the password in the claim's connection Secret).
    async fn claim_credentials(
        &self,
        names: &[String],
    ) -> BTreeMap<String, (String, Option<String>)> {
        let instances: Api<Instance> = Api::namespaced(self.client.clone(), &self.ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let all = instances
            .list(&Default::default())
            .await
            .expect("list Instances");
        let mut out = BTreeMap::new();
        for name in names {
            let inst = all
                .items
                .iter()
                .find(|i| {
                    i.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("crossplane.io/claim-name"))
                        == Some(name)
                })
                .unwrap_or_else(|| panic!("no Instance labelled crossplane.io/claim-name={name}"));
            let identifier = inst
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("crossplane.io/external-name"))
                .cloned()
                .unwrap_or_else(|| panic!("Instance of {name} has no crossplane.io/external-name"));
            let secret = secrets
                .get_opt(&format!("{name}-credentials"))
                .await
                .expect("get Secret");
            let password = secret
                .and_then(|s| s.data)
                .and_then(|d| d.get("password").cloned())
                .map(|b| String::from_utf8(b.0).expect("password is UTF-8"));
            out.insert(name.clone(), (identifier, password));
        }
        out
    }

    fn print_aws(&self, label: &str) {
        let calls = self.proxy.calls();
        let mut by: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for c in &calls {
            let o = match &c.outcome {
                Outcome::Forwarded(s) => format!("{s}"),
                Outcome::Throttled => "throttled".into(),
                Outcome::ServerError => "injected-500".into(),
                Outcome::UpstreamFailed => "upstream-failed".into(),
            };
            *by.entry(c.action.clone())
                .or_default()
                .entry(o)
                .or_insert(0) += 1;
        }
        println!(
            "[{label}] AWS calls through the proxy: {} {by:?}",
            calls.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// crashes

/// Invariant: killing paved with SIGKILL at random moments while it provisions never creates a
/// second RDS instance and never loses a password. In the end every claim is Ready, there is
/// exactly one RDS instance per claim, and each was created with the password that its claim's
/// Secret holds (the proxy records CreateDBInstance's MasterUserPassword as AWS received it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_at_random_moments() {
    let (n, kills, max_gap_ms) = pick((10, 5, 1500), (50, 20, 1500));
    let rig = Rig::new(Env::load(&Env::default_dir()), "crash", "eu-north-1").await;
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
    let mut rig = Rig::new(Env::load(&Env::default_dir()), test, region).await;
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
    let mut rig = Rig::new(Env::load(&Env::default_dir()), "outage", "eu-central-2").await;
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

/// Stops its own control plane when dropped.
struct OwnEnv(PathBuf);

impl Drop for OwnEnv {
    fn drop(&mut self) {
        let _ = std::process::Command::new(project_root().join("e2e/env.sh"))
            .arg("down")
            .env("PAVED_E2E_DIR", &self.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Invariant: when the API server restarts mid-run, paved's watches recover by themselves (same
/// process) and every claim, including those created after the restart, converges.
/// Uses a control plane of its own, so that restarting it disturbs no other test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_mid_run() {
    let n = pick(6, 20);
    let dir = project_root().join(format!("target/e2e-chaos-restart-{}", random_suffix(4)));
    let _own = OwnEnv(dir.clone());
    Env::env_sh(&dir, "up");
    let env = Env::load(&dir);
    let mut rig = Rig::new(env, "restart", "eu-west-1").await;
    let pid = rig.paved.pid();
    let names = rig.claim_names("db", n);
    let (first, second) = names.split_at(n / 2);
    let tracker = ReadyTracker::start(&rig.client, &rig.ns);
    rig.apply_claims(first).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t = Instant::now();
    Env::env_sh(&dir, "restart-apiserver");
    let restart_secs = t.elapsed().as_secs_f64();
    let ready_at_restart = tracker.ready_count();
    // a fresh client: the restarted server has new connections
    let client = rig.env.client().await;
    let t_after = Instant::now();
    let results: Vec<_> = futures::stream::iter(second.iter().map(|n| {
        let obj = seed_claim(n, &rig.ns, &rig.composition);
        let client = client.clone();
        async move { (n.clone(), apply(&client, &obj).await) }
    }))
    .buffer_unordered(8)
    .collect()
    .await;
    for (n, r) in results {
        r.unwrap_or_else(|e| panic!("applying claim {n} after the restart: {e}"));
    }
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let res = tracker
        .wait_all(&wanted, Duration::from_secs(pick(150, 300)))
        .await;
    println!(
        "[restart] {n} claims; the API server restarted in {restart_secs:.1} s with {ready_at_restart} Ready; the {} claims created after it were Ready {:.1} s later",
        second.len(),
        t_after.elapsed().as_secs_f64()
    );
    if let Err(e) = res {
        panic!(
            "invariant: paved's watches recover after the API server restart. {e}\npaved log tail:\n{}",
            rig.paved.log_tail(40)
        );
    }
    assert!(
        rig.paved.alive() && rig.paved.pid() == pid,
        "invariant: the same paved process, no restart"
    );
    rig.paved.stop();
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

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Invariant: each of ~55 invalid claims and Compositions is refused by the API server or gets a
/// specific condition (reason + a message naming the problem); none causes an AWS call for it or
/// a panic; the valid claims applied alongside become Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely() {
    let mut rig = Rig::new(Env::load(&Env::default_dir()), "input", "ap-south-2").await;
    let suffix = random_suffix(5);
    let pc = format!("chaos-input-pc-{suffix}");
    apply(&rig.client, &provider_config(&pc, &rig.proxy.url()))
        .await
        .unwrap();
    let cases = bad_cases(&rig.ns, &rig.region, &pc, &suffix);
    let mut cleanup = ClusterCleanup {
        kubectl: rig.env.kubectl.clone(),
        kubeconfig: rig.env.kubeconfig.clone(),
        objects: vec![("providerconfigs.aws.upbound.io".into(), pc.clone())],
    };
    for c in &cases {
        if let Some(comp) = &c.composition {
            cleanup.objects.push((
                "compositions.apiextensions.crossplane.io".into(),
                comp["metadata"]["name"].as_str().unwrap().into(),
            ));
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
// fuzz: a long proptest run over field paths and rendering

mod fuzz {
    use std::collections::BTreeMap;

    use paved::api::composition::CompositionSpec;
    use paved::compose::fieldpath::{self, Segment};
    use paved::compose::{ObservedResource, RenderInput};
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    pub fn field_name() -> BoxedStrategy<String> {
        prop_oneof![
            4 => "[a-zA-Z][a-zA-Z0-9]{0,8}",
            3 => prop::sample::select(vec![
                "spec", "parameters", "storageGB", "version", "environment", "forProvider", "status",
                "atProvider", "metadata", "labels", "annotations", "name", "namespace", "kind",
                "apiVersion", "tags", "conditions", "*", "example.org/team",
            ]).prop_map(str::to_string),
            2 => "[a-z0-9./\\[\\]*'\"-]{1,6}",
            1 => "\\PC{0,5}",
        ]
        .boxed()
    }

    pub fn segment() -> BoxedStrategy<Segment> {
        prop_oneof![
            6 => field_name().prop_map(Segment::Field),
            3 => (0usize..12).prop_map(Segment::Index),
            1 => (9_990usize..10_020).prop_map(Segment::Index),
        ]
        .boxed()
    }

    pub fn segments() -> BoxedStrategy<Vec<Segment>> {
        vec(segment(), 0..8).boxed()
    }

    /// Field path text: well-formed, nearly well-formed, and arbitrary.
    pub fn path_text() -> BoxedStrategy<String> {
        prop_oneof![
            4 => segments().prop_map(|s| fieldpath::to_string(&s)),
            3 => "(spec|status|metadata)(\\.[a-zA-Z*]{1,6}|\\[[0-9]{1,6}\\]|\\[[a-z./'-]{0,6}\\]){0,6}",
            2 => "[a-z.\\[\\]0-9'\"*-]{0,24}",
            1 => "\\PC{0,24}",
            1 => prop::sample::select(vec![
                "spec.parameters.storageGB", "spec.parameters.version", "spec.parameters.environment",
                "metadata.labels[example.org/team]", "status.atProvider.address", "spec.forProvider.allocatedStorage",
                "spec.forProvider.engineVersion", "spec.forProvider.tags[team]", "spec.forProvider.vpcSecurityGroupIds[0]",
                "status.address", "metadata.annotations[a.b/c]", "spec.parameters[storageGB]", "metadata.name",
            ]).prop_map(str::to_string),
        ]
        .boxed()
    }

    pub fn json_leaf() -> BoxedStrategy<Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1000i64..1000).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "14",
                "20",
                "staging",
                "1Gi",
                "true",
                "{\"a\":1}",
                "%d",
                "db.t3.micro"
            ])
            .prop_map(Value::from),
        ]
        .boxed()
    }

    pub fn json_value() -> BoxedStrategy<Value> {
        json_leaf()
            .prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..4).prop_map(Value::Array),
                    btree_map(field_name(), inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
            .boxed()
    }

    fn transform() -> BoxedStrategy<Value> {
        let s = || "\\PC{0,8}";
        prop_oneof![
            btree_map(s(), json_leaf(), 0..4).prop_map(|m| json!({"type": "map", "map": m})),
            (prop::sample::select(vec!["Multiply", "ClampMin", "ClampMax"]), any::<i64>())
                .prop_map(|(t, n)| json!({"type": "math", "math": {"type": t, "multiply": n, "clampMin": n, "clampMax": n}})),
            (any::<i64>()).prop_map(|n| json!({"type": "math", "math": {"multiply": n}})),
            "[%a-z0-9.+#!*-]{0,10}".prop_map(|f| json!({"type": "string", "string": {"type": "Format", "fmt": f}})),
            prop::sample::select(vec!["ToUpper", "ToLower", "ToBase64", "FromBase64", "ToJson", "ToSha1", "ToSha256", "ToSha512", "ToAdler32"])
                .prop_map(|c| json!({"type": "string", "string": {"type": "Convert", "convert": c}})),
            (prop::sample::select(vec!["TrimPrefix", "TrimSuffix"]), s()).prop_map(|(t, x)| json!({"type": "string", "string": {"type": t, "trim": x}})),
            ("[a-z().*+?\\[\\]^$|0-9\\\\]{0,10}", prop::option::of(-2i64..4))
                .prop_map(|(r, g)| json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": r, "group": g}}})),
            s().prop_map(|sep| json!({"type": "string", "string": {"type": "Join", "join": {"separator": sep}}})),
            (s(), s()).prop_map(|(a, b)| json!({"type": "string", "string": {"type": "Replace", "replace": {"search": a, "replace": b}}})),
            (prop::sample::select(vec!["string", "int", "int64", "bool", "float64", "object", "array"]), prop::sample::select(vec!["", "none", "quantity", "json"]))
                .prop_map(|(t, f)| if f.is_empty() { json!({"type": "convert", "convert": {"toType": t}}) } else { json!({"type": "convert", "convert": {"toType": t, "format": f}}) }),
            (vec((prop::sample::select(vec!["literal", "regexp"]), "[a-z0-9().*+^$|\\[\\]]{0,8}", json_leaf()), 0..3), prop::option::of(json_leaf()), prop::sample::select(vec!["Value", "Input"]))
                .prop_map(|(ps, fb, to)| {
                    let patterns: Vec<Value> = ps.into_iter().map(|(t, p, r)| if t == "literal" { json!({"type": t, "literal": p, "result": r}) } else { json!({"type": t, "regexp": p, "result": r}) }).collect();
                    json!({"type": "match", "match": {"patterns": patterns, "fallbackValue": fb, "fallbackTo": to}})
                }),
        ]
        .boxed()
    }

    fn patch() -> BoxedStrategy<Value> {
        let policy = prop::option::of((
            prop::sample::select(vec!["Optional", "Required"]),
            prop::sample::select(vec![
                "Replace",
                "MergeObjects",
                "MergeObjectsAppendArrays",
                "ForceMergeObjects",
                "ForceMergeObjectsAppendArrays",
            ]),
        ));
        prop_oneof![
            5 => (path_text(), prop::option::of(path_text()), vec(transform(), 0..3), policy.clone()).prop_map(|(f, t, tr, pol)| {
                let mut p = json!({"type": "FromCompositeFieldPath", "fromFieldPath": f, "transforms": tr});
                if let Some(t) = t { p["toFieldPath"] = json!(t); }
                if let Some((a, b)) = pol { p["policy"] = json!({"fromFieldPath": a, "toFieldPath": b}); }
                p
            }),
            2 => (path_text(), path_text(), vec(transform(), 0..2)).prop_map(|(f, t, tr)| json!({"type": "ToCompositeFieldPath", "fromFieldPath": f, "toFieldPath": t, "transforms": tr})),
            2 => (vec(path_text(), 0..3), "[%a-z0-9.+#!*: -]{0,12}", path_text(), prop::sample::select(vec!["CombineFromComposite", "CombineToComposite"]))
                .prop_map(|(vars, fmt, to, t)| json!({"type": t, "combine": {"variables": vars.into_iter().map(|v| json!({"fromFieldPath": v})).collect::<Vec<_>>(), "strategy": "string", "string": {"fmt": fmt}}, "toFieldPath": to})),
            1 => prop::sample::select(vec!["common", "missing"]).prop_map(|n| json!({"type": "PatchSet", "patchSetName": n})),
        ]
        .boxed()
    }

    fn readiness_check() -> BoxedStrategy<Value> {
        prop_oneof![
            (path_text(), "\\PC{0,6}").prop_map(|(p, s)| json!({"type": "MatchString", "fieldPath": p, "matchString": s})),
            (path_text(), any::<i64>()).prop_map(|(p, n)| json!({"type": "MatchInteger", "fieldPath": p, "matchInteger": n})),
            path_text().prop_map(|p| json!({"type": "NonEmpty", "fieldPath": p})),
            path_text().prop_map(|p| json!({"type": "MatchTrue", "fieldPath": p})),
            Just(json!({"type": "None"})),
            Just(json!({"type": "MatchCondition", "matchCondition": {"type": "Ready", "status": "True"}})),
        ]
        .boxed()
    }

    fn connection_detail() -> BoxedStrategy<Value> {
        prop_oneof![
            ("[a-z]{1,6}", "[a-z]{1,8}").prop_map(|(n, k)| json!({"name": n, "type": "FromConnectionSecretKey", "fromConnectionSecretKey": k})),
            ("[a-z]{1,6}", path_text()).prop_map(|(n, p)| json!({"name": n, "type": "FromFieldPath", "fromFieldPath": p})),
            ("[a-z]{1,6}", "\\PC{0,8}").prop_map(|(n, v)| json!({"name": n, "type": "FromValue", "value": v})),
        ]
        .boxed()
    }

    /// A Composition in the seed's shape, with random patches, checks and details.
    pub fn composition() -> BoxedStrategy<Value> {
        let resource = (
            prop::option::of("[a-z][a-z0-9-]{0,10}"),
            json_value(),
            vec(patch(), 0..5),
            vec(readiness_check(), 0..2),
            vec(connection_detail(), 0..2),
        )
            .prop_map(|(name, extra, patches, checks, details)| {
                let mut r = json!({
                    "base": {
                        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                        "spec": {"forProvider": {"region": "eu-north-1", "instanceClass": "db.t3.micro", "engine": "postgres", "extra": extra}}
                    },
                    "patches": patches, "readinessChecks": checks, "connectionDetails": details
                });
                if let Some(n) = name { r["name"] = json!(n); }
                r
            });
        (vec(resource, 1..3), vec(patch(), 0..3)).prop_map(|(resources, set)| json!({
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "patchSets": [{"name": "common", "patches": set}],
            "resources": resources
        }))
        .boxed()
    }

    pub fn claim() -> BoxedStrategy<Value> {
        (json_value(), prop::option::of(json_value()), btree_map("[a-z./]{1,10}", "\\PC{0,6}", 0..3))
            .prop_map(|(extra, status, labels)| {
                let mut c = json!({
                    "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
                    "metadata": {"name": "fuzz-db", "namespace": "fuzz", "uid": "00000000-0000-0000-0000-000000000001", "labels": labels},
                    "spec": {"parameters": {"storageGB": 20, "version": "14", "environment": "staging", "extra": extra}}
                });
                if let Some(s) = status { c["status"] = s; }
                c
            })
            .boxed()
    }

    pub fn observed() -> BoxedStrategy<BTreeMap<String, ObservedResource>> {
        prop::option::of((json_value(), btree_map("[a-z]{1,8}", vec(any::<u8>(), 0..8), 0..3)))
            .prop_map(|o| {
                let mut m = BTreeMap::new();
                if let Some((status, secret)) = o {
                    let object = json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance", "metadata": {"name": "fuzz-db-x"}, "status": status});
                    for key in ["rds-instance", "resource-0"] {
                        m.insert(key.to_string(), ObservedResource { object: object.clone(), connection_secret: secret.clone() });
                    }
                }
                m
            })
            .boxed()
    }

    /// Properties of field paths. Returns Err(message) on a violation.
    pub fn check_paths(
        text: &str,
        segs: &[Segment],
        root: &Value,
        value: &Value,
        off: &[&str],
    ) -> Result<(), String> {
        let on = |p: &str| !off.contains(&p);
        // parsing never panics; what parses prints back to the same segments
        if let Ok(parsed) = fieldpath::parse(text)
            && on("parse-print-parse")
        {
            let printed = fieldpath::to_string(&parsed);
            match fieldpath::parse(&printed) {
                Ok(again) if again == parsed => {}
                other => {
                    return Err(format!(
                        "parse-print-parse: {text:?} parsed to {parsed:?}, printed as {printed:?}, which parses to {other:?}"
                    ));
                }
            }
        }
        // printed segments parse back to themselves (when printable at all)
        let printed = fieldpath::to_string(segs);
        if on("print-parse")
            && let Ok(again) = fieldpath::parse(&printed)
            && again != segs
            && !segs
                .iter()
                .any(|s| matches!(s, Segment::Field(f) if f.is_empty()))
        {
            return Err(format!(
                "print-parse: {segs:?} printed as {printed:?} parses to {again:?}"
            ));
        }
        // set then get returns what was set
        if !fieldpath::has_wildcard(segs) && on("set-get") {
            let mut r = root.clone();
            if fieldpath::set(&mut r, segs, value.clone()).is_ok() {
                match fieldpath::get(&r, segs) {
                    Ok(got) if got == value => {}
                    other => {
                        return Err(format!(
                            "set-get: set {segs:?} = {value} on {root} then get gave {other:?}"
                        ));
                    }
                }
            }
        }
        let _ = fieldpath::expand_wildcards(root, segs);
        let mut r = root.clone();
        let _ = fieldpath::remove(&mut r, segs);
        Ok(())
    }

    /// Properties of rendering. Returns Err(message) on a violation.
    pub fn check_render(
        comp: &Value,
        claim: &Value,
        observed: &BTreeMap<String, ObservedResource>,
    ) -> Result<bool, String> {
        let Ok(spec) = serde_json::from_value::<CompositionSpec>(comp.clone()) else {
            return Ok(false); // not a Composition the API server would store
        };
        let _ = paved::compose::validate("fuzz", &spec);
        let input = RenderInput {
            claim,
            composition_name: "fuzz",
            composition: &spec,
            observed,
        };
        let first = paved::compose::render(&input);
        let second = paved::compose::render(&input);
        if first != second {
            return Err("render is not deterministic".into());
        }
        match first {
            Ok(out) => {
                for r in &out.resources {
                    let d = &r.desired;
                    if d["metadata"]["namespace"] != "fuzz" {
                        return Err(format!(
                            "composed object outside the claim's namespace: {}",
                            d["metadata"]
                        ));
                    }
                    let name = d["metadata"]["name"].as_str().unwrap_or("");
                    if name.is_empty() || name.len() > 253 {
                        return Err(format!("composed object name {name:?}"));
                    }
                    if d["apiVersion"] != "rds.aws.upbound.io/v1beta1" || d["kind"] != "Instance" {
                        return Err(format!(
                            "a patch changed apiVersion/kind: {} {}",
                            d["apiVersion"], d["kind"]
                        ));
                    }
                    if d["metadata"].get("ownerReferences").is_some() {
                        return Err("composed object carries ownerReferences".into());
                    }
                }
                for key in [
                    "conditions",
                    "compositionRef",
                    "resourceRefs",
                    "connectionDetails",
                ] {
                    if out.claim_status.get(key) != claim["status"].get(key) {
                        return Err(format!(
                            "a patch wrote status.{key}, which the controller owns"
                        ));
                    }
                }
                Ok(true)
            }
            Err(e) => {
                if e.to_string().is_empty() || e.reason().is_empty() {
                    return Err("an error without a message".into());
                }
                Ok(true)
            }
        }
    }
}

/// A long proptest run (cargo-fuzz needs nightly) over `paved::compose`: field path parsing,
/// printing, get/set/remove/wildcards, and rendering random Compositions for random claims.
/// Invariant: no panic; printed paths parse back; set-then-get returns the value; rendering is
/// deterministic, keeps composed objects in the claim's namespace with their apiVersion/kind and
/// never writes the controller-owned status fields; every error has a message and a reason.
/// Runs for `PAVED_FUZZ_SECS` seconds (default 20; `make chaos` runs 600).
#[test]
fn fuzz_compose_field_paths_and_rendering() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::cell::Cell;
    let secs: u64 = std::env::var("PAVED_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (path_cases, render_cases, rendered) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let mut rounds = 0u64;
    // A property that failed once is switched off, so that the rest keep being fuzzed for the
    // whole run instead of rediscovering the same finding.
    let mut findings: Vec<String> = Vec::new();
    let mut off: Vec<&'static str> = Vec::new();
    let mut render_off = false;
    while Instant::now() < deadline {
        rounds += 1;
        let config = Config {
            cases: 512,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&rounds.to_le_bytes());
        seed[8..16].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
        seed[16..24].copy_from_slice(
            &(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64)
                .to_le_bytes(),
        );
        let rng = proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed,
        );
        let mut runner = TestRunner::new_with_rng(config.clone(), rng);
        let strategy = (
            fuzz::path_text(),
            fuzz::segments(),
            fuzz::json_value(),
            fuzz::json_leaf(),
        );
        let off_now = off.clone();
        let res = runner.run(&strategy, |(text, segs, root, value)| {
            path_cases.set(path_cases.get() + 1);
            fuzz::check_paths(&text, &segs, &root, &value, &off_now).map_err(TestCaseError::fail)
        });
        if let Err(e) = res {
            let text = e.to_string();
            for p in ["parse-print-parse", "print-parse", "set-get"] {
                if text.contains(&format!("{p}:")) && !off.contains(&p) {
                    off.push(p);
                }
            }
            if !off.iter().any(|p| text.contains(&format!("{p}:"))) {
                off.push("parse-print-parse"); // a panic: stop the path properties' round trip
            }
            findings.push(format!("field paths: {text}"));
        }
        if !render_off {
            let mut runner = TestRunner::new(Config {
                cases: 128,
                ..config
            });
            let res = runner.run(
                &(fuzz::composition(), fuzz::claim(), fuzz::observed()),
                |(comp, claim, observed)| {
                    render_cases.set(render_cases.get() + 1);
                    match fuzz::check_render(&comp, &claim, &observed) {
                        Ok(r) => {
                            rendered.set(rendered.get() + u64::from(r));
                            Ok(())
                        }
                        Err(m) => Err(TestCaseError::fail(m)),
                    }
                },
            );
            if let Err(e) = res {
                findings.push(format!("rendering: {e}"));
                render_off = true;
            }
        }
    }
    println!(
        "[fuzz] {secs} s, {rounds} rounds: {} field-path cases, {} render cases ({} valid Compositions rendered or refused), {} findings",
        path_cases.get(),
        render_cases.get(),
        rendered.get(),
        findings.len()
    );
    for f in &findings {
        println!("[fuzz] finding: {f}");
    }
    assert!(
        findings.is_empty(),
        "invariant: no property of paved::compose is violated:\n{}",
        findings.join("\n\n")
    );
}
