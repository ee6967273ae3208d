//! `make bench`: paved at scale against the real API server and the RDS emulator, with paved
//! built in release mode and run as its own process.
//!
//! 1. Scale: N claims (env `N`, default 1000) applied at once with the seed Composition →
//!    seconds to all Ready, apply→Ready p50/p99, paved's peak RSS (VmHWM and 100 ms VmRSS
//!    samples from /proc), Kubernetes requests by verb (deltas of the API server's own
//!    `apiserver_request_total`) → writes per claim, AWS calls by operation (paved's
//!    `/metrics`) → calls per claim.
//! 2. Idle: all N Ready, 5 poll intervals of 10 s → Kubernetes writes and AWS calls per poll.
//! 3. Baseline: a plain client creating the same objects paved writes per claim, as fast as it
//!    can (same concurrency) → seconds, and paved's time as a ratio to it.
//! 4. The render micro-benchmark (criterion, `benches/render.rs`), read from
//!    `target/criterion/**/new/estimates.json`.
//!
//! Writes `target/bench/report.json` and `target/bench/report.md` and prints the table.
//! Environment: `PAVED_E2E_DIR` (the control plane, `e2e/env.sh up`), `N`, `BENCH_AWS_RPS`
//! (paved's --aws-requests-per-second, default 8 as shipped), `BENCH_POLL_SECS` (10),
//! `BENCH_CONCURRENCY` (how many claims the harness applies in parallel, 50), `BENCH_PAVED_BIN`
//! (run this instead of the paved just built, e.g. a wrapper that starts it under heaptrack),
//! `BENCH_XRD_KINDS` (0: the built-in `PostgreSQLInstance`; k > 0: k claim kinds defined by
//! CompositeResourceDefinitions, each with its own Composition, the N claims spread over them),
//! `BENCH_NETWORK` (1: the built-in kind with a Composition that also composes a DB subnet
//! group, a security group and an ingress rule, wired by `matchControllerRef` selectors, in a
//! VPC the harness creates in the emulator first), `BENCH_PIPELINE` (1: the seed Composition's
//! resources as one function-patch-and-transform step of a `mode: Pipeline` Composition).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const REGION: &str = "ca-central-1";

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The render micro-benchmark: every criterion estimate under target/criterion.
fn criterion_estimates(root: &Path) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "estimates.json")
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n == "new")
            {
                let id = p
                    .parent()
                    .and_then(Path::parent)
                    .and_then(|d| d.strip_prefix(root).ok())
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                let v: Value = std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                let ns = v["mean"]["point_estimate"]
                    .as_f64()
                    .or_else(|| v["median"]["point_estimate"].as_f64());
                if let Some(ns) = ns {
                    out.insert(id, ns);
                }
            }
        }
    }
    out
}

/// The baseline: what a plain client writes per claim, as fast as it can.
async fn baseline(client: &Client, ns: &str, n: usize, concurrency: usize) -> (f64, usize) {
    let claim_ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("database.example.com", "v1alpha1", "PostgreSQLInstance"),
        "postgresqlinstances",
    );
    let inst_ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("rds.aws.upbound.io", "v1beta1", "Instance"),
        "instances",
    );
    let claims: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &claim_ar);
    let instances: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &inst_ar);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let writes = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter((0..n).map(|i| {
        let (claims, instances, secrets, writes) = (claims.clone(), instances.clone(), secrets.clone(), writes.clone());
        let ns = ns.to_string();
        async move {
            let name = format!("db-{i:05}");
            let w = |r: Result<(), kube::Error>, what: &str| {
                writes.fetch_add(1, Ordering::Relaxed);
                r.map_err(|e| format!("{what} {name}: {e}"))
            };
            let pp = PostParams::default();
            let claim: DynamicObject = serde_json::from_value(seed_claim(&name, &ns, "baseline")).unwrap();
            w(claims.create(&pp, &claim).await.map(|_| ()), "claim")?;
            let inst_name = format!("{name}-rds-instance");
            let inst: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                "metadata": {"name": inst_name, "namespace": ns,
                    "labels": {"crossplane.io/claim-name": name, "crossplane.io/claim-namespace": ns},
                    "annotations": {"crossplane.io/external-name": format!("{ns}-{inst_name}")}},
                "spec": {"forProvider": {"region": REGION, "instanceClass": "db.t3.micro", "engine": "postgres",
                    "allocatedStorage": 20, "engineVersion": "14"},
                    "writeConnectionSecretToRef": {"name": format!("{inst_name}-connection")}}
            }))
            .unwrap();
            w(instances.create(&pp, &inst).await.map(|_| ()), "Instance")?;
            let secret = |sname: String, data: Value| -> k8s_openapi::api::core::v1::Secret {
                serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": sname, "namespace": ns}, "stringData": data}))
                .unwrap()
            };
            let password = "x".repeat(40);
            w(secrets.create(&pp, &secret(format!("{inst_name}-master-password"), json!({"password": password}))).await.map(|_| ()), "password Secret")?;
            let conn = json!({"username": "postgres", "password": password, "host": "h.example", "port": "5432",
                "endpoint": "h.example:5432", "uri": "postgresql://postgres@h.example:5432"});
            let status = PatchParams::default();
            w(instances
                .patch_status(&inst_name, &status, &Patch::Merge(json!({"status": {
                    "atProvider": {"identifier": format!("{ns}-{inst_name}"), "status": "available", "address": "h.example", "port": 5432},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                                   {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})))
                .await
                .map(|_| ()), "Instance status")?;
            w(secrets.create(&pp, &secret(format!("{inst_name}-connection"), conn.clone())).await.map(|_| ()), "connection Secret")?;
            w(secrets.create(&pp, &secret(format!("{name}-credentials"), conn)).await.map(|_| ()), "claim Secret")?;
            w(claims
                .patch_status(&name, &status, &Patch::Merge(json!({"status": {
                    "compositionRef": {"name": "baseline"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                                   {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})))
                .await
                .map(|_| ()), "claim status")?;
            Ok(())
        }
    }))
    .buffer_unordered(concurrency)
    .collect()
    .await;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        panic!("baseline: {e}");
    }
    (secs, writes.load(Ordering::Relaxed) as usize)
}

async fn run() {
    let n: usize = env_num("N", 1000);
    let rps: f64 = env_num("BENCH_AWS_RPS", 8.0);
    let poll_secs: u64 = env_num("BENCH_POLL_SECS", 10);
    let concurrency: usize = env_num("BENCH_CONCURRENCY", 50);
    let out_dir = project_root().join("target/bench");
    std::fs::create_dir_all(&out_dir).unwrap();
    let env = e2e_env();
    let client = env.client().await;
    install_crds(&client).await;
    let suffix = random_suffix(5);
    let ns = format!("bench-{suffix}");
    let base_ns = format!("bench-baseline-{suffix}");
    ensure_namespace(&client, &ns).await;
    ensure_namespace(&client, &base_ns).await;
    let SeedBehindProxy {
        proxy,
        composition,
        mut cleanup,
        provider_config,
    } = SeedBehindProxy::new(&client, &env, &format!("bench-{suffix}"), REGION).await;

    // BENCH_PAVED_BIN: another executable (e.g. a wrapper that runs paved under a profiler).
    let bin = std::env::var_os("BENCH_PAVED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_paved")));
    eprintln!(
        "[bench] N={n}, paved {} (--aws-requests-per-second {rps}, --poll-interval {poll_secs}s), namespace {ns}",
        bin.display()
    );
    let mut paved = PavedOpts {
        bin,
        kubeconfig: env.kubeconfig.clone(),
        namespaces: vec![ns.clone()],
        aws_endpoint: proxy.url(),
        region: REGION.into(),
        poll_interval: format!("{poll_secs}s"),
        aws_rps: rps,
        log: out_dir.join("paved.log"),
        log_level: "info".into(),
    }
    .start();
    paved.wait_ready(Duration::from_secs(60)).await;
    let xrd_kinds: usize = env_num("BENCH_XRD_KINDS", 0);
    let network: usize = env_num("BENCH_NETWORK", 0);
    let pipeline: usize = env_num("BENCH_PIPELINE", 0);
    let composition = if pipeline > 0 {
        let name = format!("{composition}-pipe");
        apply(&client, &as_pipeline(&client, &composition, &name).await)
            .await
            .expect("Pipeline Composition");
        cleanup.composition(&name);
        name
    } else if network > 0 {
        // The platform team's VPC (made directly in the emulator, not counted), and the
        // Composition wiring each claim's network inside it, through paved's ProviderConfig.
        let ec2 = emulator_ec2(REGION).await;
        let (vpc, subnets) = existing_network(&ec2, REGION).await;
        let name = format!("{composition}-net");
        apply(
            &client,
            &network_composition(&name, REGION, &provider_config, &vpc, &subnets),
        )
        .await
        .expect("network Composition");
        cleanup.composition(&name);
        name
    } else {
        composition
    };
    let kinds = claim_kinds(&client, &composition, xrd_kinds).await;
    let pid = paved.pid();
    let sampler = RssSampler::start(pid);

    // ---- 1. scale
    let kube_before = kube_requests(&apiserver_metrics(&client).await);
    let aws_before = aws_calls(&paved.metrics().await);
    let proxy_before = proxy.total();
    let cpu_before = cpu_seconds(pid);
    let resources: Vec<_> = kinds.iter().map(|k| k.resource.clone()).collect();
    let tracker = ReadyTracker::start_kinds(&client, &ns, &resources);
    let names: Vec<String> = (0..n).map(|i| format!("db-{i:05}")).collect();
    let t0 = Instant::now();
    let applied: Vec<(String, Instant)> =
        futures::stream::iter(names.iter().enumerate().map(|(i, name)| {
            let obj = kinds[i % kinds.len()].claim(name, &ns);
            let client = client.clone();
            async move {
                create_json(&client, &obj)
                    .await
                    .unwrap_or_else(|e| panic!("creating claim {name}: {e}"));
                (name.clone(), Instant::now())
            }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let apply_secs = t0.elapsed().as_secs_f64();
    eprintln!("[bench] {n} claims created in {apply_secs:.1} s; waiting for Ready");
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    // About 2 rate-limited AWS calls per claim for the Instance alone; the network variant
    // makes about 4 more (the three network objects' creates and tags) and waits for its
    // references in order, so it gets three times the calls and twice the base.
    let (base_secs, calls_allowed) = if network > 0 { (600, 6.0) } else { (300, 2.0) };
    let timeout = Duration::from_secs(base_secs + (n as f64 * calls_allowed / rps.max(0.1)) as u64);
    let progress = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(15)).await;
            eprintln!("[bench] ... {:.0} s", t0.elapsed().as_secs_f64());
        }
    });
    let res = tracker.wait_all(&wanted, timeout).await;
    progress.abort();
    if let Err(e) = res {
        panic!(
            "[bench] not all claims became Ready: {e}\npaved log tail:\n{}",
            paved.log_tail(30)
        );
    }
    let ready_at = tracker.ready_at();
    let last_ready = ready_at.values().max().copied().unwrap();
    let seconds_to_all_ready = last_ready.duration_since(t0).as_secs_f64();
    let mut latencies: Vec<f64> = applied
        .iter()
        .map(|(name, done)| {
            ready_at[name]
                .saturating_duration_since(*done)
                .as_secs_f64()
                * 1000.0
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let kube_after = kube_requests(&apiserver_metrics(&client).await);
    let aws_after = aws_calls(&paved.metrics().await);
    let proxy_scale = proxy.total() - proxy_before;
    let cpu_scale = cpu_seconds(pid) - cpu_before;
    let kube_scale = delta(&kube_after, &kube_before);
    // the harness created the N claims (POST postgresqlinstances); the rest is paved
    let mut kube_scale_paved = kube_scale.clone();
    for (i, k) in kinds.iter().enumerate() {
        let created = (n + kinds.len() - 1 - i) / kinds.len();
        if let Some(v) = kube_scale_paved.get_mut(&format!("POST {}", k.resource.plural)) {
            *v -= created as f64;
        }
    }
    kube_scale_paved.retain(|_, v| *v != 0.0);
    let kube_writes_scale = writes_of(&kube_scale_paved);
    let aws_scale = delta(&aws_after, &aws_before);
    let aws_scale_total: f64 = aws_scale.values().fold(0.0, |a, b| a + b);
    eprintln!("[bench] all {n} Ready after {seconds_to_all_ready:.1} s");
    let events_by_reason = events_by_reason(&client, &ns).await;

    // ---- 2. idle
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_kube_before = kube_requests(&apiserver_metrics(&client).await);
    let idle_aws_before = aws_calls(&paved.metrics().await);
    let idle_proxy_before = proxy.total();
    let idle_polls = 5;
    eprintln!("[bench] idle: {idle_polls} poll intervals of {poll_secs} s");
    tokio::time::sleep(Duration::from_secs(poll_secs * idle_polls)).await;
    let idle_kube = delta(
        &kube_requests(&apiserver_metrics(&client).await),
        &idle_kube_before,
    );
    let idle_aws = delta(&aws_calls(&paved.metrics().await), &idle_aws_before);
    let idle_proxy = proxy.total() - idle_proxy_before;
    let idle_kube_writes = writes_of(&idle_kube).round() as i64;
    let idle_aws_total: f64 = idle_aws.values().fold(0.0, |a, b| a + b);
    let (_, hwm_kib) = paved.rss_kib();
    let sampled_kib = sampler.finish();
    let peak_kib = hwm_kib.max(sampled_kib);
    let still_ready = tracker.ready_count();
    drop(tracker);
    paved.stop();

    // ---- 3. baseline
    eprintln!("[bench] baseline: a plain client writing the same objects for {n} claims");
    let (baseline_seconds, baseline_writes) = baseline(&client, &base_ns, n, concurrency).await;

    // ---- 4. render micro-benchmark
    let estimates = criterion_estimates(&project_root().join("target/criterion"));
    let render_ns = estimates
        .iter()
        .find(|(id, _)| id.contains("seed"))
        .or_else(|| estimates.iter().find(|(id, _)| id.contains("render")))
        .or_else(|| estimates.iter().next())
        .map(|(id, ns)| (id.clone(), *ns));
    let renders_per_second = render_ns.as_ref().map(|(_, ns)| 1e9 / ns);

    let aws_source = if aws_after.is_empty() {
        "proxy (paved exposes no *rds_aws_calls_total)"
    } else {
        "paved /metrics"
    };
    let aws_calls_per_claim = if aws_after.is_empty() {
        proxy_scale as f64 / n as f64
    } else {
        aws_scale_total / n as f64
    };
    let idle_aws_per_poll = if aws_after.is_empty() {
        idle_proxy as f64 / idle_polls as f64
    } else {
        idle_aws_total / idle_polls as f64
    };
    let ratio = seconds_to_all_ready / baseline_seconds;
    let composition_words = if pipeline > 0 {
        "seed (Instance) in mode Pipeline, one function-patch-and-transform step"
    } else if network > 0 {
        "network (SubnetGroup, SecurityGroup, SecurityGroupRule, Instance)"
    } else {
        "seed (Instance)"
    };
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(project_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kube_writes_by_resource = per_claim(&writes_by_resource(&kube_scale_paved), n);
    let aws_calls_by_kind = per_claim(&aws_by_kind(&aws_scale), n);
    let idle_aws_by_kind = per_claim(&aws_by_kind(&idle_aws), idle_polls as usize);
    let mut report = json!({
        "claims": n,
        "claim_kinds": kinds.iter().map(|k| k.resource.kind.clone()).collect::<Vec<_>>(),
        "seconds_to_all_ready": round(seconds_to_all_ready, 2),
        "p50_ready_ms": round(percentile(&latencies, 50.0), 0),
        "p99_ready_ms": round(percentile(&latencies, 99.0), 0),
        "peak_rss_mib": round(peak_kib as f64 / 1024.0, 1),
        "kube_writes_per_claim": round(kube_writes_scale / n as f64, 2),
        "aws_calls_per_claim": round(aws_calls_per_claim, 2),
        "idle_kube_writes": idle_kube_writes,
        "idle_aws_calls_per_poll": round(idle_aws_per_poll, 2),
        "idle_aws_calls_per_poll_goal": n.div_ceil(100),
        "baseline_seconds": round(baseline_seconds, 2),
        "ratio_to_baseline": round(ratio, 2),
        "renders_per_second": renders_per_second.map(|r| round(r, 0)),
        "details": {
            "commit": commit,
            "aws_requests_per_second": rps,
            "aws_rate_floor_seconds": round(n as f64 / rps, 1),
            "poll_interval_seconds": poll_secs,
            "apply_concurrency": concurrency,
            "seconds_to_create_claims": round(apply_secs, 2),
            "claims_ready_at_end_of_idle": still_ready,
            "peak_rss_vmhwm_mib": round(hwm_kib as f64 / 1024.0, 1),
            "peak_rss_sampled_mib": round(sampled_kib as f64 / 1024.0, 1),
            "paved_cpu_seconds_scale": round(cpu_scale, 2),
            "kube_requests_scale_by_verb_resource": kube_scale_paved,
            "events_scale_by_kind_reason": events_by_reason,
            "kube_requests_scale_harness_claim_creates": n,
            "aws_calls_scale_by_operation": aws_scale,
            "aws_calls_source": aws_source,
            "aws_calls_scale_seen_by_proxy": proxy_scale,
            "idle_kube_requests_by_verb_resource": idle_kube,
            "idle_aws_calls_by_operation": idle_aws,
            "idle_aws_calls_seen_by_proxy": idle_proxy,
            "idle_polls": idle_polls,
            "baseline_writes": baseline_writes,
            "baseline_writes_per_claim": round(baseline_writes as f64 / n as f64, 2),
            "render_benchmark": render_ns.as_ref().map(|(id, ns)| json!({"id": id, "ns_per_render": round(*ns, 1)})),
            "criterion_estimates_ns": estimates,
        }
    });
    report["composition"] = json!(composition_words);
    report["details"]["kube_writes_per_claim_by_resource"] = json!(kube_writes_by_resource);
    report["details"]["aws_calls_per_claim_by_kind"] = json!(aws_calls_by_kind);
    report["details"]["idle_aws_calls_per_poll_by_kind"] = json!(idle_aws_by_kind);
    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = markdown(&report);
    std::fs::write(out_dir.join("report.md"), &md).unwrap();
    println!("{md}");
    eprintln!(
        "[bench] wrote {} and report.md",
        out_dir.join("report.json").display()
    );
    drop(cleanup); // the harness's cluster-scoped objects
}

fn markdown(r: &Value) -> String {
    let d = &r["details"];
    let fmt = |v: &Value| match v {
        Value::Null => "n/a".to_string(),
        v => v.to_string(),
    };
    let rows = [
        (
            "claims",
            fmt(&r["claims"]),
            "".to_string(),
            format!(
                "N claims applied at once, of kinds {}, Composition {}",
                r["claim_kinds"], r["composition"]
            ),
        ),
        (
            "seconds_to_all_ready",
            fmt(&r["seconds_to_all_ready"]),
            "".into(),
            format!("AWS rate floor N/rate = {} s", d["aws_rate_floor_seconds"]),
        ),
        (
            "p50_ready_ms",
            fmt(&r["p50_ready_ms"]),
            "".into(),
            "apply → Ready, per claim".into(),
        ),
        (
            "p99_ready_ms",
            fmt(&r["p99_ready_ms"]),
            "".into(),
            "".into(),
        ),
        (
            "peak_rss_mib",
            fmt(&r["peak_rss_mib"]),
            "< 64".into(),
            format!(
                "VmHWM {} / sampled {}",
                d["peak_rss_vmhwm_mib"], d["peak_rss_sampled_mib"]
            ),
        ),
        (
            "kube_writes_per_claim",
            fmt(&r["kube_writes_per_claim"]),
            "≤ 6".into(),
            "apiserver_request_total deltas, paved's resources".into(),
        ),
        (
            "aws_calls_per_claim",
            fmt(&r["aws_calls_per_claim"]),
            "".into(),
            format!("source: {}", d["aws_calls_source"].as_str().unwrap_or("")),
        ),
        (
            "idle_kube_writes",
            fmt(&r["idle_kube_writes"]),
            "0".into(),
            format!(
                "{} poll intervals of {} s",
                d["idle_polls"], d["poll_interval_seconds"]
            ),
        ),
        (
            "idle_aws_calls_per_poll",
            fmt(&r["idle_aws_calls_per_poll"]),
            format!("≈ {}", r["idle_aws_calls_per_poll_goal"]),
            "".into(),
        ),
        (
            "baseline_seconds",
            fmt(&r["baseline_seconds"]),
            "".into(),
            format!(
                "plain client, {} writes per claim",
                d["baseline_writes_per_claim"]
            ),
        ),
        (
            "ratio_to_baseline",
            fmt(&r["ratio_to_baseline"]),
            "< 2".into(),
            "seconds_to_all_ready / baseline_seconds".into(),
        ),
        (
            "renders_per_second",
            fmt(&r["renders_per_second"]),
            "".into(),
            d["render_benchmark"]["id"]
                .as_str()
                .map(|s| format!("criterion: {s}"))
                .unwrap_or_else(|| "benches/render.rs not run".into()),
        ),
    ];
    let mut out = String::from("| figure | value | target | notes |\n|---|---:|---|---|\n");
    for (k, v, t, n) in rows {
        out.push_str(&format!("| {k} | {v} | {t} | {n} |\n"));
    }
    out.push_str(&format!(
        "\npaved {} · --aws-requests-per-second {} · --poll-interval {} s · paved CPU during the scale phase {} s\n",
        d["commit"].as_str().unwrap_or(""),
        d["aws_requests_per_second"],
        d["poll_interval_seconds"],
        d["paved_cpu_seconds_scale"]
    ));
    out.push_str(&format!("\nKubernetes requests during the scale phase (paved's resources, harness creates removed): {}\n", d["kube_requests_scale_by_verb_resource"]));
    out.push_str(&format!(
        "Events in the bench namespace after the scale phase, by object kind and reason: {}\n",
        d["events_scale_by_kind_reason"]
    ));
    out.push_str(&format!(
        "AWS calls during the scale phase: {}\n",
        d["aws_calls_scale_by_operation"]
    ));
    out.push_str(&format!(
        "Kubernetes writes per claim by resource: {} · AWS calls per claim by kind: {} · idle AWS calls per poll by kind: {}\n",
        d["kube_writes_per_claim_by_resource"],
        d["aws_calls_per_claim_by_kind"],
        d["idle_aws_calls_per_poll_by_kind"]
    ));
    out.push_str(&format!(
        "Idle Kubernetes requests: {} · idle AWS calls: {}\n",
        d["idle_kube_requests_by_verb_resource"], d["idle_aws_calls_by_operation"]
    ));
    out
}

/// Events in `ns` by "<involved kind> <reason>", counting repeats (`count`).
async fn events_by_reason(client: &Client, ns: &str) -> BTreeMap<String, i64> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    let mut out = BTreeMap::new();
    match api.list(&Default::default()).await {
        Ok(list) => {
            for e in list.items {
                let key = format!(
                    "{} {}",
                    e.involved_object.kind.unwrap_or_default(),
                    e.reason.unwrap_or_default()
                );
                *out.entry(key).or_insert(0) += i64::from(e.count.unwrap_or(1).max(1));
            }
        }
        Err(e) => eprintln!("[bench] listing events: {e}"),
    }
    out
}

/// The Composition `name` as it stands in the cluster, untyped.
async fn composition_json(client: &Client, name: &str) -> DynamicObject {
    let compositions: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "apiextensions.crossplane.io",
            "v1",
            "Composition",
        )),
    );
    compositions.get(name).await.unwrap()
}

/// The Composition `seed` as it stands in the cluster, rewritten as a `mode: Pipeline`
/// Composition `name` whose one step runs function-patch-and-transform with its resources.
async fn as_pipeline(client: &Client, seed: &str, name: &str) -> Value {
    let seed = composition_json(client, seed).await;
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": seed.data["spec"]["compositeTypeRef"],
            "mode": "Pipeline",
            "pipeline": [{
                "step": "patch-and-transform",
                "functionRef": {"name": "function-patch-and-transform"},
                "input": {"apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources",
                          "resources": seed.data["spec"]["resources"]},
            }],
        },
    })
}

/// One kind of claim the bench applies: the built-in kind with the seed Composition, or a kind
/// an XRD defines with a Composition of its own (the seed's resources for the XR kind).
struct ClaimKind {
    resource: kube::api::ApiResource,
    composition: String,
}

impl ClaimKind {
    fn claim(&self, name: &str, ns: &str) -> Value {
        let mut c = seed_claim(name, ns, &self.composition);
        c["apiVersion"] = json!(self.resource.api_version);
        c["kind"] = json!(self.resource.kind);
        c
    }
}

/// The claim kinds of this run: `xrd_kinds` = 0 is the built-in kind; otherwise that many XRDs
/// (group bench.paved.io, claim kinds BenchDb0..), applied now and waited on until served.
async fn claim_kinds(client: &Client, seed_composition: &str, xrd_kinds: usize) -> Vec<ClaimKind> {
    if xrd_kinds == 0 {
        return vec![ClaimKind {
            resource: kube::api::ApiResource::erase::<paved::api::PostgreSQLInstance>(&()),
            composition: seed_composition.to_string(),
        }];
    }
    let seed = composition_json(client, seed_composition).await;
    let mut out = Vec::new();
    for i in 0..xrd_kinds {
        let (kind, plural) = (format!("BenchDb{i}"), format!("benchdb{i}s"));
        let xrd = json!({
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "CompositeResourceDefinition",
            "metadata": {"name": format!("x{plural}.bench.paved.io")},
            "spec": {
                "group": "bench.paved.io",
                "names": {"kind": format!("X{kind}"), "plural": format!("x{plural}")},
                "claimNames": {"kind": kind, "plural": plural},
                "versions": [{
                    "name": "v1alpha1", "served": true, "referenceable": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                        "type": "object",
                        "properties": {"parameters": {"type": "object", "properties": {
                            "storageGB": {"type": "integer", "minimum": 20},
                            "version": {"type": "string"},
                            "environment": {"type": "string", "enum": ["staging", "production"]}
                        }}}
                    }}}}
                }]
            }
        });
        apply(client, &xrd).await.expect("XRD");
        let mut composition = seed.data.clone();
        let name = format!("{seed_composition}-x{i}");
        composition["spec"]["compositeTypeRef"] =
            json!({"apiVersion": "bench.paved.io/v1alpha1", "kind": format!("X{kind}")});
        let obj = json!({
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition",
            "metadata": {"name": name},
            "spec": composition["spec"],
        });
        apply(client, &obj).await.expect("Composition");
        out.push(ClaimKind {
            resource: kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("bench.paved.io", "v1alpha1", &kind),
                &plural,
            ),
            composition: name,
        });
    }
    // paved turns each XRD into a claim CRD: wait until the API server serves them all.
    let deadline = Instant::now() + Duration::from_secs(120);
    for k in &out {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &k.resource);
        while api
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "{} never served",
                k.resource.kind
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    eprintln!("[bench] {} XRD-defined claim kinds served", out.len());
    out
}

/// Kubernetes writes by resource (`subnetgroups`, `instances`, `events`, ...; subresources
/// folded into their resource) from a `kube_requests` map.
fn writes_by_resource(m: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let Some((verb, res)) = k.split_once(' ') else {
            continue;
        };
        if WRITE_VERBS.contains(&verb) {
            let res = res.split('/').next().unwrap_or(res);
            *out.entry(res.to_string()).or_insert(0.0) += v;
        }
    }
    out
}

/// The managed kind an AWS operation serves (by its name; tag calls are shared by the RDS
/// kinds and counted apart).
fn aws_kind(op: &str) -> &'static str {
    if op.contains("SubnetGroup") {
        "SubnetGroup"
    } else if op.contains("ParameterGroup") || op.contains("Parameters") {
        "ParameterGroup"
    } else if op.contains("SecurityGroupRule")
        || op.contains("SecurityGroupIngress")
        || op.contains("SecurityGroupEgress")
    {
        "SecurityGroupRule"
    } else if op.contains("SecurityGroup") {
        "SecurityGroup"
    } else if op.contains("Tags") {
        "tags (RDS groups)"
    } else {
        "Instance"
    }
}

/// AWS calls by the kind their operation serves.
fn aws_by_kind(by_op: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (op, v) in by_op {
        *out.entry(aws_kind(op).to_string()).or_insert(0.0) += v;
    }
    out
}

/// Each value divided by `n`, rounded to 2 decimals.
fn per_claim(m: &BTreeMap<String, f64>, n: usize) -> BTreeMap<String, f64> {
    m.iter()
        .map(|(k, v)| (k.clone(), round(v / n.max(1) as f64, 2)))
        .collect()
}
