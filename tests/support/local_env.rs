//! Pieces shared by the test harness (`tests/common`) and the chaos/bench harness
//! (`tests/support/chaos_env.rs`, also built into `benches/scale.rs`): reading the file
//! `e2e/env.sh up` writes, and a plain HTTP GET on loopback for paved's probes and metrics.
#![allow(dead_code, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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
