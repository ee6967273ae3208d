//! An HTTP/1.1 proxy in front of the RDS emulator that injects AWS-shaped faults (Throttling,
//! InternalFailure 500) at configurable rates and records every request's action, parameters
//! and time (for example CreateDBInstance's MasterUserPassword, which RDS never returns). It can
//! also make chosen instances look as if they were in another RDS status (the emulator reports
//! every instance `available` at once): see [`FaultyProxy::set_status`]. Real TCP, real HTTP:
//! the controller under test talks to it exactly as to AWS.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Fault rates, 0.0 to 1.0.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
}

/// One request seen by the proxy.
#[derive(Clone, Debug)]
pub struct Seen {
    pub action: String,
    pub params: BTreeMap<String, String>,
    /// What the proxy did: "forwarded", "throttled", "server_error".
    pub outcome: &'static str,
    /// When the request arrived.
    pub at: Instant,
    /// A DBInstanceStatus in the answer was rewritten (see [`FaultyProxy::set_status`]).
    pub status_rewritten: bool,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub seen: Mutex<Vec<Seen>>,
}

impl Stats {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn forwarded_of(&self, action: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.action == action && s.outcome == "forwarded")
            .collect()
    }
}

/// RDS statuses to report instead of the emulator's, by DB instance identifier.
type StatusRewrites = Mutex<BTreeMap<String, String>>;

pub struct FaultyProxy {
    pub url: String,
    pub stats: Arc<Stats>,
    faults: Arc<Mutex<Faults>>,
    statuses: Arc<StatusRewrites>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyProxy {
    /// Start a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let stats = Arc::new(Stats::default());
        let faults = Arc::new(Mutex::new(faults));
        let statuses = Arc::new(StatusRewrites::default());
        let (s, f, st) = (stats.clone(), faults.clone(), statuses.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (s, f, st, up) = (s.clone(), f.clone(), st.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &up, &s, &f, &st).await;
                });
            }
        });
        Self {
            url: format!("http://{addr}"),
            stats,
            faults,
            statuses,
            task,
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// From now on, report `status` (for example `creating`) as the DBInstanceStatus of
    /// `identifier` in every DescribeDBInstances and CreateDBInstance answer, whatever the
    /// emulator says; `None` reports the emulator's again.
    pub fn set_status(&self, identifier: &str, status: Option<&str>) {
        let mut m = self.statuses.lock().unwrap();
        match status {
            Some(s) => m.insert(identifier.to_string(), s.to_string()),
            None => m.remove(identifier),
        };
    }
}

/// Replace the DBInstanceStatus of every `<DBInstance>` element whose identifier has an entry
/// in `statuses`. Returns the new body and whether anything changed.
fn rewrite_statuses(body: &str, statuses: &BTreeMap<String, String>) -> (String, bool) {
    const OPEN: &str = "<DBInstance>";
    const CLOSE: &str = "</DBInstance>";
    const STATUS: &str = "<DBInstanceStatus>";
    const STATUS_END: &str = "</DBInstanceStatus>";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    let mut changed = false;
    while let Some(start) = rest.find(OPEN) {
        let Some(len) = rest[start..].find(CLOSE) else {
            break;
        };
        let end = start + len + CLOSE.len();
        out.push_str(&rest[..start]);
        let mut element = rest[start..end].to_string();
        let wanted = statuses.iter().find(|(id, _)| {
            element.contains(&format!(
                "<DBInstanceIdentifier>{id}</DBInstanceIdentifier>"
            ))
        });
        if let Some((_, status)) = wanted
            && let (Some(a), Some(b)) = (element.find(STATUS), element.find(STATUS_END))
        {
            element.replace_range(a + STATUS.len()..b, status);
            changed = true;
        }
        out.push_str(&element);
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, changed)
}

/// Apply [`rewrite_statuses`] to a raw HTTP response with a Content-Length body.
fn rewrite_response(resp: Vec<u8>, statuses: &BTreeMap<String, String>) -> (Vec<u8>, bool) {
    let Some(end) = find(&resp, b"\r\n\r\n") else {
        return (resp, false);
    };
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    if head.to_ascii_lowercase().contains("chunked") {
        return (resp, false);
    }
    let (body, changed) = rewrite_statuses(&String::from_utf8_lossy(&resp[end + 4..]), statuses);
    if !changed {
        return (resp, false);
    }
    let mut lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_string)
        .collect();
    lines.push(format!("Content-Length: {}", body.len()));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    (out, true)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_string()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn aws_error(status: u16, reason: &str, type_: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>{type_}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy-{}</RequestId></ErrorResponse>",
        rand::random::<u32>()
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    stats: &Stats,
    faults: &Mutex<Faults>,
    statuses: &StatusRewrites,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // read one request
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len = content_length(&head);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + len].to_vec();
        let request: Vec<u8> = buf.drain(..head_end + len).collect();
        let params = form(&String::from_utf8_lossy(&body));
        let action = params.get("Action").cloned().unwrap_or_default();
        let at = Instant::now();
        stats.requests.fetch_add(1, Ordering::SeqCst);

        let f = *faults.lock().unwrap();
        let roll: f64 = rand::random();
        let (outcome, response) = if roll < f.throttle {
            stats.throttled.fetch_add(1, Ordering::SeqCst);
            (
                "throttled",
                aws_error(400, "Bad Request", "Sender", "Throttling", "Rate exceeded"),
            )
        } else if roll < f.throttle + f.server_error {
            stats.server_errors.fetch_add(1, Ordering::SeqCst);
            (
                "server_error",
                aws_error(
                    500,
                    "Internal Server Error",
                    "Receiver",
                    "InternalFailure",
                    "injected by the test proxy",
                ),
            )
        } else {
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            (
                "forwarded",
                forward(upstream, &head, &request[head_end..]).await?,
            )
        };
        let rewrites = statuses.lock().unwrap().clone();
        let (response, status_rewritten) = if outcome == "forwarded"
            && !rewrites.is_empty()
            && matches!(action.as_str(), "DescribeDBInstances" | "CreateDBInstance")
        {
            rewrite_response(response, &rewrites)
        } else {
            (response, false)
        };
        stats.seen.lock().unwrap().push(Seen {
            action,
            params,
            outcome,
            at,
            status_rewritten,
        });
        conn.write_all(&response).await?;
        let _ = head;
    }
}

/// Send the request upstream on a fresh connection (`Connection: close`) and return the raw
/// response, which is relayed as is.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut lines: Vec<&str> = head.trim_end_matches("\r\n").split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let mut out = lines.join("\r\n");
    out.push_str("\r\nConnection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(out.as_bytes()).await?;
    up.write_all(body).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    // Keep the client connection usable: drop the upstream's "Connection: close".
    if let Some(end) = find(&resp, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&resp[..end]).to_string();
        let kept: Vec<&str> = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        let has_len = kept
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("content-length:"));
        let chunked = kept
            .iter()
            .any(|l| l.to_ascii_lowercase().contains("chunked"));
        let mut rebuilt = kept.join("\r\n");
        if !has_len && !chunked {
            rebuilt.push_str(&format!("\r\nContent-Length: {}", resp.len() - end - 4));
        }
        rebuilt.push_str("\r\n\r\n");
        let mut v = rebuilt.into_bytes();
        v.extend_from_slice(&resp[end + 4..]);
        return Ok(v);
    }
    Ok(resp)
}
