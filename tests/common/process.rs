//! `paved run` as a real child process (so that SIGKILL, SIGTERM and RSS are real), with its
//! probes and metrics on free loopback ports and its log in a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::env::{e2e_env, free_port, http_get, project_root};
use super::metrics::Metrics;

/// How to start `paved run` with explicit flags and a minimal environment (the chaos suite and
/// the scale benchmark).
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

impl PavedOpts {
    pub fn start(self) -> Paved {
        let args = vec![
            "--namespaces".to_string(),
            self.namespaces.join(","),
            "--poll-interval".into(),
            self.poll_interval.clone(),
            "--aws-requests-per-second".into(),
            self.aws_rps.to_string(),
            "--log-level".into(),
            self.log_level.clone(),
        ];
        let env = vec![
            (
                "HOME".to_string(),
                std::env::var("HOME").unwrap_or_default(),
            ),
            ("KUBECONFIG".into(), self.kubeconfig.display().to_string()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            ("AWS_ENDPOINT_URL".into(), self.aws_endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        Paved::spawn_new(PavedCmd {
            bin: self.bin,
            args,
            env,
            log: self.log,
        })
    }
}

/// What a [`Paved`] was started with (again on a restart).
#[derive(Clone, Debug)]
struct PavedCmd {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

/// A running `paved run`. Dropping it kills it.
pub struct Paved {
    cmd: PavedCmd,
    pub child: Child,
    pub health_port: u16,
    pub metrics_port: u16,
    pub log: PathBuf,
    /// How many times it was started (1 + restarts).
    pub starts: u32,
}

impl Paved {
    /// Start `paved run ARGS` (the binary just built) with the shared control plane's
    /// environment (AWS endpoint, dummy keys) and `kubeconfig` (the admin one unless given).
    /// `tag` names the log file `target/e2e-logs/<tag>.log` and is the process's HOSTNAME.
    pub fn start(args: &[&str], kubeconfig: Option<&Path>, tag: &str) -> Paved {
        let mut env: Vec<(String, String)> = vec![("HOSTNAME".into(), tag.into())];
        env.extend(e2e_env().vars);
        // The suites that start paved as a process use the environment's (the emulator's)
        // credentials for Instances without a ProviderConfig, which paved refuses by default.
        env.push(("PAVED_ALLOW_POD_IDENTITY".into(), "true".into()));
        if let Some(kc) = kubeconfig {
            env.push(("KUBECONFIG".into(), kc.display().to_string()));
        }
        Paved::spawn_new(PavedCmd {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_paved")),
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            log: project_root().join(format!("target/e2e-logs/{tag}.log")),
        })
    }

    /// One of several replicas of `paved run` on namespace `ns`, electing a leader with the Lease
    /// `<ns>/<lease>` ([`fast_leader_election`]); `tag` tells the replicas apart (its HOSTNAME,
    /// hence its leader identity, is `<ns>-replica-<tag>`).
    pub fn replica(ns: &str, lease: &str, tag: &str) -> Paved {
        Paved::start(
            &[
                &["--namespaces", ns][..],
                &fast_leader_election(ns, lease),
                &["--poll-interval", "5s", "--log-level", "info,paved=debug"],
            ]
            .concat(),
            None,
            &format!("{ns}-replica-{tag}"),
        )
    }

    fn spawn_new(cmd: PavedCmd) -> Paved {
        let (health_port, metrics_port) = (free_port(), free_port());
        std::fs::create_dir_all(cmd.log.parent().unwrap()).unwrap();
        std::fs::File::create(&cmd.log).unwrap();
        let child = Self::spawn(&cmd, health_port, metrics_port);
        Paved {
            log: cmd.log.clone(),
            cmd,
            child,
            health_port,
            metrics_port,
            starts: 1,
        }
    }

    fn spawn(cmd: &PavedCmd, health_port: u16, metrics_port: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cmd.log)
            .unwrap();
        let mut c = Command::new(&cmd.bin);
        c.arg("run")
            .args(&cmd.args)
            .args(["--health-addr", &format!("127.0.0.1:{health_port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        c.spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", cmd.bin.display()))
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
        self.child = Self::spawn(&self.cmd, self.health_port, self.metrics_port);
        self.starts += 1;
    }

    /// Send SIGTERM (and do not wait).
    pub fn sigterm(&self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
    }

    /// SIGTERM and wait (up to 30 s, then SIGKILL).
    pub fn stop(&mut self) {
        let _ = self.sigterm();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill9();
    }

    /// A plain HTTP/1.0 GET on one of the process's ports: (status, body).
    pub async fn get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        http_get(port, path).await
    }

    /// Wait (bounded) until /readyz answers 200; panics with the log tail when the process
    /// exits or the time is up. Polls the probe: it is the process's only signal.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = http_get(self.health_port, "/readyz").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "paved run exited with {status} before it was ready:\n{}",
                    self.log_tail(40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "paved run not ready within {timeout:?}:\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait (bounded) until the probe port answers at all (whatever the status): the process
    /// has started serving. Panics with the log tail otherwise.
    pub async fn wait_serving(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while http_get(self.health_port, "/healthz").await.is_none() {
            assert!(
                Instant::now() < deadline,
                "paved run never served /healthz within {timeout:?}:\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// paved's /metrics as text ("" when it does not answer).
    pub async fn metrics_text(&self) -> String {
        match http_get(self.metrics_port, "/metrics").await {
            Some((200, body)) => body,
            _ => String::new(),
        }
    }

    /// paved's own metrics, parsed.
    pub async fn metrics(&self) -> Metrics {
        Metrics::parse(&self.metrics_text().await)
    }

    pub async fn is_leader(&self) -> bool {
        self.metrics_text()
            .await
            .lines()
            .any(|l| l.trim() == "paved_leader 1")
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
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

/// Samples a process's RSS every 100 ms until finished; `finish` returns the largest, in KiB.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_kib.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let text =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = text
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssSampler {
            stop,
            max_kib,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

/// user+system CPU seconds of a process, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // fields after ")": state(0) ... utime(11) stime(12)
    (ticks(11) + ticks(12)) / 100.0
}

/// `paved run` flags for leader election on Lease `<lease_namespace>/<lease_name>` with short
/// timings (4 s lease, 3 s renew deadline, 500 ms retry), so that failover fits in a test.
pub fn fast_leader_election<'a>(lease_namespace: &'a str, lease_name: &'a str) -> [&'a str; 12] {
    [
        "--leader-elect",
        "true",
        "--lease-namespace",
        lease_namespace,
        "--lease-name",
        lease_name,
        "--lease-duration",
        "4s",
        "--lease-renew-deadline",
        "3s",
        "--lease-retry-period",
        "500ms",
    ]
}

/// Poll the replicas' /metrics until one reports leadership and return its index (bounded;
/// these are HTTP probes of the processes under test, their only signal).
pub async fn wait_for_leader(replicas: &[&Paved], secs: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for (i, r) in replicas.iter().enumerate() {
            if r.is_leader().await {
                return i;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = replicas.iter().map(|r| r.log_tail(40)).collect();
            panic!("no leader within {secs}s; logs:\n{}", logs.join("\n----\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
