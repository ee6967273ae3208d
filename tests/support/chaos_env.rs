//! Shared harness of the chaos suite (`tests/chaos.rs`) and the scale benchmark
//! (`benches/scale.rs`): the local control plane written by `e2e/env.sh up`, `paved run` as a
//! real child process (so SIGKILL and RSS are real), Prometheus text parsing (paved's and the
//! API server's `/metrics`), the objects a run applies, and waiting for claims to become Ready.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use paved::api::PostgreSQLInstance;
use serde_json::{Value, json};

#[path = "local_env.rs"]
mod local_env;

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The environment `e2e/env.sh up` wrote into `$PAVED_E2E_DIR/env`.
#[derive(Clone, Debug)]
pub struct Env {
    pub dir: PathBuf,
    pub vars: BTreeMap<String, String>,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub moto_url: String,
}

impl Env {
    /// `$PAVED_E2E_DIR` (default `target/e2e`).
    pub fn default_dir() -> PathBuf {
        std::env::var("PAVED_E2E_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| project_root().join("target/e2e"))
    }

    pub fn load(dir: &Path) -> Env {
        let file = dir.join("env");
        let vars = local_env::read_env_vars(dir);
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing from {}", file.display()))
        };
        Env {
            dir: dir.to_path_buf(),
            kubeconfig: PathBuf::from(get("KUBECONFIG")),
            kubectl: PathBuf::from(get("PAVED_KUBECTL")),
            moto_url: get("PAVED_MOTO_URL"),
            vars,
        }
    }

    /// Run `e2e/env.sh <cmd>` for the environment in `dir`.
    pub fn env_sh(dir: &Path, cmd: &str) {
        let status = Command::new(project_root().join("e2e/env.sh"))
            .arg(cmd)
            .env("PAVED_E2E_DIR", dir)
            .status()
            .unwrap_or_else(|e| panic!("running e2e/env.sh {cmd}: {e}"));
        assert!(
            status.success(),
            "e2e/env.sh {cmd} failed for {}",
            dir.display()
        );
    }

    pub async fn client(&self) -> Client {
        paved::init_crypto();
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("reading kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        config.read_timeout = Some(Duration::from_secs(295));
        Client::try_from(config).expect("client")
    }
}

/// Install every CRD paved serves and wait until each is Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("paved-chaos").force();
    for crd in paved::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within 60s"))
        .unwrap();
    }
}

pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect()
}

pub async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"paved-test": "true"}}
    }))
    .unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// Server-side apply of a JSON object through a dynamic API resolved from its apiVersion/kind.
pub async fn apply(client: &Client, obj: &Value) -> Result<(), kube::Error> {
    let api = dynamic_api(client, obj);
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    api.patch(
        name,
        &PatchParams::apply("paved-chaos").force(),
        &Patch::Apply(obj),
    )
    .await
    .map(|_| ())
}

/// Create a JSON object (POST), failing on conflicts.
pub async fn create(client: &Client, obj: &Value) -> Result<(), kube::Error> {
    let api = dynamic_api(client, obj);
    let o: kube::api::DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    api.create(&PostParams::default(), &o).await.map(|_| ())
}

/// The dynamic Api for the kinds a run writes (no discovery round trip).
pub fn dynamic_api(client: &Client, obj: &Value) -> Api<kube::api::DynamicObject> {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "PostgreSQLInstance" => "postgresqlinstances".to_string(),
        "ProviderConfig" => "providerconfigs".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, &plural);
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// A ProviderConfig pointing paved at `url` (the chaos proxy), with the credentials from the
/// environment (InjectedIdentity).
pub fn provider_config(name: &str, url: &str) -> Value {
    json!({
        "apiVersion": "aws.upbound.io/v1beta1",
        "kind": "ProviderConfig",
        "metadata": {"name": name},
        "spec": {
            "credentials": {"source": "InjectedIdentity"},
            "endpoint": {"url": {"type": "Static", "static": url}}
        }
    })
}

/// The seed Composition (examples/seed/composition.yaml) under another name, in `region`, using
/// the ProviderConfig `provider_config`. Everything else as the platform team wrote it.
pub fn seed_composition(name: &str, region: &str, provider_config: &str) -> Value {
    let text = std::fs::read_to_string(project_root().join("examples/seed/composition.yaml"))
        .expect("seed composition");
    let mut c: Value = serde_yaml_ng::from_str(&text).expect("seed composition YAML");
    c["metadata"] = json!({"name": name, "labels": {"paved-test": "chaos"}});
    for r in c["spec"]["resources"].as_array_mut().expect("resources") {
        if r["base"]["kind"] == "Instance" {
            r["base"]["spec"]["forProvider"]["region"] = json!(region);
            r["base"]["spec"]["providerConfigRef"] = json!({"name": provider_config});
            r["base"]["spec"]["forProvider"]["skipFinalSnapshot"] = json!(true);
        }
    }
    c
}

/// The seed claim under another name and namespace, using Composition `composition`.
pub fn seed_claim(name: &str, namespace: &str, composition: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parameters": {"storageGB": 20, "version": "14", "environment": "staging"},
            "compositionRef": {"name": composition},
            "writeConnectionSecretToRef": {"name": format!("{name}-credentials")}
        }
    })
}

/// The condition `type_` of an object's status, as JSON.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub fn is_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == "True")
}

/// Every condition of an object as `Type=Status Reason: message` lines.
pub fn conditions_text(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={} {}: {}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_else(|| "(no conditions)".into())
}

/// Watches the claims of a namespace and remembers when each was first seen Ready.
pub struct ReadyTracker {
    ready: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>>,
    latest: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Value>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyTracker {
    pub fn start(client: &Client, namespace: &str) -> ReadyTracker {
        let api: Api<PostgreSQLInstance> = Api::namespaced(client.clone(), namespace);
        let ready = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let latest = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let changed = std::sync::Arc::new(tokio::sync::Notify::new());
        let (r, l, c) = (ready.clone(), latest.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                let Ok(claim) = item else { continue };
                let now = Instant::now();
                let v = serde_json::to_value(&claim).unwrap_or(Value::Null);
                let name = claim.metadata.name.clone().unwrap_or_default();
                if is_true(&v, "Ready") {
                    r.lock().unwrap().entry(name.clone()).or_insert(now);
                }
                l.lock().unwrap().insert(name, v);
                c.notify_waiters();
            }
        });
        ReadyTracker {
            ready,
            latest,
            changed,
            task,
        }
    }

    pub fn ready_count(&self) -> usize {
        self.ready.lock().unwrap().len()
    }

    pub fn ready_at(&self) -> BTreeMap<String, Instant> {
        self.ready.lock().unwrap().clone()
    }

    /// The last seen state of every claim.
    pub fn latest(&self) -> BTreeMap<String, Value> {
        self.latest.lock().unwrap().clone()
    }

    /// Wait until every claim in `names` has been seen Ready; on timeout, the names that were not
    /// with their conditions.
    pub async fn wait_all(
        &self,
        names: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let missing: Vec<String> = {
                let r = self.ready.lock().unwrap();
                names
                    .iter()
                    .filter(|n| !r.contains_key(*n))
                    .cloned()
                    .collect()
            };
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let latest = self.latest();
                let lines: Vec<String> = missing
                    .iter()
                    .take(10)
                    .map(|n| {
                        format!(
                            "  {n}: {}",
                            latest
                                .get(n)
                                .map(conditions_text)
                                .unwrap_or_else(|| "(never seen)".into())
                        )
                    })
                    .collect();
                return Err(format!(
                    "{} of {} claims not Ready:\n{}",
                    missing.len(),
                    names.len(),
                    lines.join("\n")
                ));
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(500).min(deadline - Instant::now()),
                notified,
            )
            .await;
        }
    }
}

impl Drop for ReadyTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// paved as a process

pub use local_env::free_port;

/// How to start `paved run`.
#[derive(Clone, Debug)]
pub struct PavedOpts {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub namespaces: Vec<String>,
    /// Written to AWS_ENDPOINT_URL as well (the ProviderConfig is what paved should use).
    pub aws_endpoint: String,
    pub region: String,
    pub poll_interval: String,
    pub aws_rps: f64,
    pub log: PathBuf,
    pub log_level: String,
}

/// A running `paved run`.
pub struct Paved {
    pub opts: PavedOpts,
    pub child: Child,
    pub metrics_port: u16,
    pub health_port: u16,
    pub starts: u32,
}

impl Paved {
    pub fn start(opts: PavedOpts) -> Paved {
        let (metrics_port, health_port) = (free_port(), free_port());
        let child = Self::spawn(&opts, metrics_port, health_port);
        Paved {
            opts,
            child,
            metrics_port,
            health_port,
            starts: 1,
        }
    }

    fn spawn(opts: &PavedOpts, metrics_port: u16, health_port: u16) -> Child {
        std::fs::create_dir_all(opts.log.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&opts.log)
            .unwrap();
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("run")
            .args(["--namespaces", &opts.namespaces.join(",")])
            .args(["--poll-interval", &opts.poll_interval])
            .args(["--aws-requests-per-second", &opts.aws_rps.to_string()])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--health-addr", &format!("127.0.0.1:{health_port}")])
            .args(["--log-level", &opts.log_level])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("KUBECONFIG", &opts.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", &opts.region)
            .env("AWS_DEFAULT_REGION", &opts.region)
            .env("AWS_ENDPOINT_URL", &opts.aws_endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", opts.bin.display()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (never exited)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then start again on the same ports.
    pub fn crash_and_restart(&mut self) {
        self.kill9();
        self.child = Self::spawn(&self.opts, self.metrics_port, self.health_port);
        self.starts += 1;
    }

    /// SIGTERM and wait (up to 30 s, then SIGKILL).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill9();
    }

    /// Wait until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = http_get(self.health_port, "/readyz").await {
                return;
            }
            if !self.alive() {
                panic!(
                    "paved exited before it was ready; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "paved not ready within {timeout:?}; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// paved's own metrics, parsed.
    pub async fn metrics(&self) -> Metrics {
        match http_get(self.metrics_port, "/metrics").await {
            Some((200, body)) => Metrics::parse(&body),
            _ => Metrics::default(),
        }
    }

    /// (VmRSS, VmHWM) in KiB from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.opts.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Paved {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub use local_env::http_get;

// ---------------------------------------------------------------------------------------------
// Prometheus text

/// Samples of a Prometheus/OpenMetrics text exposition.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name_labels, rest) = match line.find('}') {
                Some(i) if line[..i].contains('{') => (&line[..=i], line[i + 1..].trim()),
                _ => match line.split_once(' ') {
                    Some((a, b)) => (a, b.trim()),
                    None => continue,
                },
            };
            let value: f64 = match rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                Some(v) => v,
                None => continue,
            };
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, l)) => (n.to_string(), parse_labels(l.trim_end_matches('}'))),
                None => (name_labels.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Metrics { samples }
    }

    /// Sum of `name` over samples whose labels include every pair in `filter`, grouped by label
    /// `by` (or "" when absent).
    pub fn sum_by(&self, name: &str, by: &str, filter: &[(&str, &str)]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (n, labels, v) in &self.samples {
            if n != name
                || !filter
                    .iter()
                    .all(|(k, val)| labels.get(*k).map(String::as_str) == Some(*val))
            {
                continue;
            }
            *out.entry(labels.get(by).cloned().unwrap_or_default())
                .or_insert(0.0) += v;
        }
        out
    }

    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(after) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.insert(key, val);
        rest = &after[end..];
    }
    out
}

/// Difference `after - before` of `sum_by` maps.
pub fn delta(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// The API server's own metrics (admin token).
pub async fn apiserver_metrics(client: &Client) -> Metrics {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => Metrics::parse(&text),
        Err(e) => panic!("scraping the API server's /metrics: {e}"),
    }
}

/// Groups and core resources paved writes to (everything else the API server counts is its own
/// housekeeping, or the harness).
pub const PAVED_RESOURCES: [&str; 7] = [
    "postgresqlinstances",
    "instances",
    "secrets",
    "events",
    "compositions",
    "providerconfigs",
    "leases",
];

pub const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];

/// `apiserver_request_total` by `verb/resource` for the resources paved writes.
pub fn kube_requests(m: &Metrics) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (n, labels, v) in &m.samples {
        if n != "apiserver_request_total" {
            continue;
        }
        let resource = labels.get("resource").map(String::as_str).unwrap_or("");
        if !PAVED_RESOURCES.contains(&resource) {
            continue;
        }
        let verb = labels.get("verb").map(String::as_str).unwrap_or("");
        let sub = labels.get("subresource").map(String::as_str).unwrap_or("");
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *out.entry(key).or_insert(0.0) += v;
    }
    out
}

/// Sum of the write verbs in a `kube_requests` map.
pub fn writes_of(m: &BTreeMap<String, f64>) -> f64 {
    m.iter()
        .filter(|(k, _)| WRITE_VERBS.iter().any(|v| k.starts_with(&format!("{v} "))))
        .map(|(_, v)| v)
        .fold(0.0, |a, b| a + b)
}

// ---------------------------------------------------------------------------------------------
// the emulator, directly (not through the proxy)

/// Identifiers of the RDS instances in `region` of the emulator.
pub async fn rds_identifiers(moto_url: &str, region: &str) -> Vec<String> {
    paved::init_crypto();
    let config = aws_sdk_rds::config::Builder::new()
        .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
        .region(aws_sdk_rds::config::Region::new(region.to_string()))
        .endpoint_url(moto_url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "chaos",
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    let rds = aws_sdk_rds::Client::from_conf(config);
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = rds
            .describe_db_instances()
            .set_marker(marker.clone())
            .max_records(100)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DescribeDBInstances on the emulator: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            });
        for i in page.db_instances() {
            out.extend(i.db_instance_identifier().map(str::to_string));
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            return out;
        }
    }
}
