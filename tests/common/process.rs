//! `paved run` as a child process of a test, with its probes and metrics on free loopback ports
//! and its log in `target/e2e-logs/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::local_env::free_port;

pub struct PavedProcess {
    pub child: Child,
    pub health: u16,
    pub metrics: u16,
    pub log: PathBuf,
}

impl PavedProcess {
    /// Start `paved run ARGS` with the local control plane's environment (AWS endpoint, dummy
    /// keys) and `kubeconfig` (the admin one unless given). `tag` names the log file.
    pub fn start(args: &[&str], kubeconfig: Option<&std::path::Path>, tag: &str) -> PavedProcess {
        let env = super::e2e_env();
        let (health, metrics) = (free_port(), free_port());
        let log = super::project_root().join(format!("target/e2e-logs/{tag}.log"));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paved"));
        cmd.arg("run")
            .args(args)
            .args([
                "--health-addr",
                &format!("127.0.0.1:{health}"),
                "--metrics-addr",
                &format!("127.0.0.1:{metrics}"),
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOSTNAME", tag)
            .stdout(Stdio::null())
            .stderr(out);
        for (k, v) in &env.vars {
            cmd.env(k, v);
        }
        if let Some(kc) = kubeconfig {
            cmd.env("KUBECONFIG", kc);
        }
        let child = cmd.spawn().expect("starting paved run");
        PavedProcess {
            child,
            health,
            metrics,
            log,
        }
    }

    /// A plain HTTP/1.0 GET on one of the process's ports: (status, body).
    pub async fn get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        super::local_env::http_get(port, path).await
    }

    pub async fn metrics_text(&self) -> String {
        self.get(self.metrics, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default()
    }

    pub async fn is_leader(&self) -> bool {
        self.metrics_text()
            .await
            .lines()
            .any(|l| l.trim() == "paved_leader 1")
    }

    /// Wait (bounded) until /readyz answers 200; panics with the log tail otherwise.
    pub async fn wait_ready(&mut self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((200, _)) = self.get(self.health, "/readyz").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("paved run exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "paved run not ready within {secs}s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for PavedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
