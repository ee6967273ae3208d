//! The local control plane `e2e/env.sh up` starts (a real kube-apiserver with etcd and the RDS
//! emulator): reading the file it writes, bringing one of a test's own up and down, and small
//! loopback helpers (free ports, a plain HTTP GET for paved's probes and metrics).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Read a file relative to the project root.
pub fn read_project_file(rel: &str) -> String {
    let p = project_root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The environment `e2e/env.sh up` wrote into `<dir>/env`.
#[derive(Clone, Debug)]
pub struct E2eEnv {
    pub dir: PathBuf,
    pub vars: BTreeMap<String, String>,
    pub kubeconfig: PathBuf,
    pub kubeconfig_least_privilege: PathBuf,
    pub kubectl: PathBuf,
    pub moto_url: String,
}

impl E2eEnv {
    /// `$PAVED_E2E_DIR` (default `target/e2e`).
    pub fn default_dir() -> PathBuf {
        std::env::var("PAVED_E2E_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| project_root().join("target/e2e"))
    }

    /// The environment in `dir`. Panics with instructions when that control plane is not up.
    pub fn load(dir: &Path) -> E2eEnv {
        let file = dir.join("env");
        let vars = read_env_vars(dir);
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing from {}", file.display()))
        };
        E2eEnv {
            dir: dir.to_path_buf(),
            kubeconfig: PathBuf::from(get("KUBECONFIG")),
            kubeconfig_least_privilege: PathBuf::from(get("PAVED_KUBECONFIG_LEAST_PRIVILEGE")),
            kubectl: PathBuf::from(get("PAVED_KUBECTL")),
            moto_url: get("PAVED_MOTO_URL"),
            vars,
        }
    }

    /// An admin client for this control plane.
    pub async fn client(&self) -> kube::Client {
        super::client_from(&self.kubeconfig).await
    }
}

/// The shared control plane of the test run (`$PAVED_E2E_DIR`, which `make test` brings up).
pub fn e2e_env() -> E2eEnv {
    E2eEnv::load(&E2eEnv::default_dir())
}

/// The `export KEY="value"` lines of `<dir>/env`. Panics with instructions when the local
/// control plane in `dir` is not up.
pub fn read_env_vars(dir: &Path) -> BTreeMap<String, String> {
    let file = dir.join("env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "the local control plane is not up ({}: {e}). Run `PAVED_E2E_DIR={} e2e/env.sh up` first (`make test` does it).",
            file.display(),
            dir.display()
        )
    });
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
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

/// A control plane of a test's own (for faults that would disturb the others, such as
/// restarting the API server), in `target/<prefix>-<random>`. Brought down when dropped.
pub struct OwnControlPlane {
    pub env: E2eEnv,
    _down: OwnControlPlaneDir,
}

impl OwnControlPlane {
    pub fn up(prefix: &str) -> OwnControlPlane {
        let dir = project_root().join(format!("target/{prefix}-{}", random_suffix(4)));
        let down = OwnControlPlaneDir(dir.clone());
        env_sh(&dir, "up");
        OwnControlPlane {
            env: E2eEnv::load(&dir),
            _down: down,
        }
    }

    /// `e2e/env.sh restart-apiserver`: the API server stops and starts again on the same port.
    pub fn restart_apiserver(&self) {
        env_sh(&self.env.dir, "restart-apiserver");
    }
}

/// Brings the control plane in a directory down when dropped (also while `up` fails half-way).
struct OwnControlPlaneDir(PathBuf);

impl Drop for OwnControlPlaneDir {
    fn drop(&mut self) {
        let _ = Command::new(project_root().join("e2e/env.sh"))
            .arg("down")
            .env("PAVED_E2E_DIR", &self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `n` random lowercase letters (namespace and object name suffixes).
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect()
}

/// A plain HTTP/1.0 GET on loopback: (status, body); None when nothing answers within 10 s.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.ok()?;
        let code = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .ok()
        .flatten()
}

/// A free loopback port for a child process to listen on, chosen *below* the kernel's ephemeral
/// port range. A port from `bind(":0")` lies inside that range, so between choosing it and the
/// child binding it, any outgoing connection on the machine may take it as its local port;
/// below the range only another listener can, and the random choice makes that unlikely.
pub fn free_port() -> u16 {
    use rand::Rng;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = if low > 12000 {
        (10000, low - 1)
    } else {
        (50000, 65535)
    };
    let mut rng = rand::rng();
    loop {
        let port = rng.random_range(lo..=hi);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
