//! `paved run` as a process: leader election with two replicas against the real API server and
//! the RDS emulator, failover after SIGKILL, graceful release on SIGTERM, probes and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use paved::api::Instance;

const REGION: &str = "sa-east-1"; // this test's own region in the shared emulator

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Replica {
    child: Child,
    health: u16,
    metrics: u16,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(ns: &str, lease: &str, tag: &str) -> Replica {
        let env = e2e_env();
        let (health, metrics) = (free_port(), free_port());
        let log = project_root().join(format!("target/e2e-logs/{ns}-{tag}.log"));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paved"));
        cmd.args(["run", "--namespaces", ns, "--leader-elect", "true", "--lease-name", lease, "--lease-namespace", ns])
            .args(["--lease-duration", "4s", "--lease-renew-deadline", "3s", "--lease-retry-period", "500ms"])
            .args(["--poll-interval", "5s", "--log-level", "info,paved=debug"])
            .args(["--health-addr", &format!("127.0.0.1:{health}"), "--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOSTNAME", format!("replica-{tag}"))
            .stdout(Stdio::null())
            .stderr(out);
        for (k, v) in &env.vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting paved run");
        Replica { child, health, metrics, log }
    }

    async fn get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.ok()?;
        let code = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((code, body))
    }

    async fn is_leader(&self) -> bool {
        match self.get(self.metrics, "/metrics").await {
            Some((200, body)) => body.lines().any(|l| l.trim() == "paved_leader 1"),
            _ => false,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll the replicas' /metrics until one reports leadership (bounded; these are HTTP probes of
/// the processes under test, not sleeps standing in for a condition).
async fn wait_for_leader(replicas: &[&Replica], secs: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for (i, r) in replicas.iter().enumerate() {
            if r.is_leader().await {
                return i;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = replicas.iter().map(|r| r.log_tail()).collect();
            panic!("no leader within {secs}s; logs:\n{}", logs.join("\n----\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn instance(name: &str, ns: &str) -> Instance {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1",
        "kind": "Instance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "forProvider": {"region": REGION, "instanceClass": "db.t3.micro", "engine": "postgres",
                            "engineVersion": "16", "allocatedStorage": 20, "skipFinalSnapshot": true},
            "writeConnectionSecretToRef": {"name": format!("{name}-conn")}
        }
    }))
    .unwrap()
}

async fn rds_identifiers_tagged_for(ns: &str) -> Vec<String> {
    paved::init_crypto();
    let env = e2e_env();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&env.moto_url)
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await;
    let rds = aws_sdk_rds::Client::new(&conf);
    let out = rds.describe_db_instances().send().await.unwrap();
    let mut ids = vec![];
    for db in out.db_instances() {
        let tagged = db.tag_list().iter().any(|t| t.value().is_some_and(|v| v.contains(ns)));
        if tagged {
            ids.push(db.db_instance_identifier().unwrap_or_default().to_string());
        }
    }
    ids
}

fn ready(i: &Instance) -> bool {
    i.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == paved::api::ConditionStatus::True)
    })
}

#[tokio::test]
async fn two_replicas_one_leader_failover_without_double_create() {
    let client = client().await;
    install_crds(&client).await;
    let ns = test_namespace(&client, "leader").await;
    let lease_name = "paved-leader-test";

    let a = Replica::start(&ns, lease_name, "a");
    let b = Replica::start(&ns, lease_name, "b");
    let first = wait_for_leader(&[&a, &b], 60).await;
    let (leader, standby) = if first == 0 { (a, b) } else { (b, a) };
    assert!(!standby.is_leader().await, "both replicas claim leadership");
    // The standby is live and ready (as a standby), so rolling updates are not blocked.
    assert_eq!(standby.get(standby.health, "/healthz").await.map(|r| r.0), Some(200));
    let (code, body) = standby.get(standby.health, "/readyz").await.unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("standby"), "{body}");

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get(lease_name).await.unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    assert!(holder.starts_with(if first == 0 { "replica-a" } else { "replica-b" }), "{holder}");

    // The leader provisions an Instance.
    let instances: Api<Instance> = Api::namespaced(client.clone(), &ns);
    instances.create(&PostParams::default(), &instance("db-one", &ns)).await.unwrap();
    wait_for(&instances, "db-one", 90, "Ready", ready).await;

    // Kill the leader without warning: the standby takes over within the lease duration.
    let mut leader = leader;
    let killed_at = Instant::now();
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let _ = wait_for_leader(&[&standby], 30).await;
    let took = killed_at.elapsed();
    eprintln!("failover took {took:?} (lease duration 4s, retry period 500ms)");
    assert!(took < Duration::from_secs(4 + 3), "failover took {took:?}, lease duration is 4s");

    // The new leader provisions a second Instance and re-observes the first without creating it again.
    instances.create(&PostParams::default(), &instance("db-two", &ns)).await.unwrap();
    wait_for(&instances, "db-two", 90, "Ready", ready).await;
    wait_for(&instances, "db-one", 30, "Ready", ready).await;

    let mut ids = rds_identifiers_tagged_for(&ns).await;
    ids.sort();
    assert_eq!(ids.len(), 2, "expected exactly one RDS instance per Instance, got {ids:?}");
}

#[tokio::test]
async fn sigterm_releases_the_lease_for_an_immediate_takeover() {
    let client = client().await;
    install_crds(&client).await;
    let ns = test_namespace(&client, "release").await;
    let lease_name = "paved-release-test";
    let a = Replica::start(&ns, lease_name, "a");
    let first = wait_for_leader(&[&a], 60).await;
    assert_eq!(first, 0);
    let b = Replica::start(&ns, lease_name, "b");
    // b is up (its probe answers) and waiting.
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.get(b.health, "/healthz").await.is_none() {
        assert!(Instant::now() < deadline, "replica b never served /healthz:\n{}", b.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!b.is_leader().await);

    let stopped_at = Instant::now();
    let status = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut a = a;
    let exit = a.child.wait().unwrap();
    assert!(exit.success(), "paved run exited with {exit:?} on SIGTERM:\n{}", a.log_tail());
    let _ = wait_for_leader(&[&b], 30).await;
    eprintln!("takeover after SIGTERM took {:?}", stopped_at.elapsed());
    let log = std::fs::read_to_string(&a.log).unwrap_or_default();
    assert!(log.contains("released leadership"), "no release logged:\n{log}");
}
