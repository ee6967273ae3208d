//! A fault-injecting HTTP proxy in front of the RDS emulator, for the chaos suite and the scale
//! benchmark. It forwards the RDS query API (form-encoded POSTs) to the emulator and
//!
//! - records every call: action, region (from the SigV4 credential scope), outcome, time;
//! - records, for every CreateDBInstance, the identifier and the `MasterUserPassword` form field
//!   exactly as AWS was given it (so a test can compare it with the password in the Secret);
//! - answers a configurable share of calls with `Throttling` (HTTP 400, the RDS error shape) or
//!   an HTTP 500 `InternalFailure` without forwarding them;
//! - can make the emulator unreachable: the listening socket is closed (connections are
//!   refused) and open connections are dropped, until the outage ends.
//!
//! Plain tokio, HTTP/1.1 with keep-alive towards the client, one fresh connection per request
//! towards the emulator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What happened to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; the emulator answered with this HTTP status.
    Forwarded(u16),
    /// Answered by the proxy with Throttling (HTTP 400).
    Throttled,
    /// Answered by the proxy with HTTP 500.
    ServerError,
    /// The emulator could not be reached (answered 502).
    UpstreamFailed,
}

/// One call the proxy saw.
#[derive(Clone, Debug)]
pub struct Call {
    pub action: String,
    pub region: String,
    pub identifier: Option<String>,
    pub outcome: Outcome,
    pub at: Instant,
}

/// One CreateDBInstance as AWS was given it.
#[derive(Clone, Debug)]
pub struct CreateCall {
    pub identifier: String,
    pub password: Option<String>,
    pub region: String,
    pub outcome: Outcome,
}

/// Fault probabilities (0.0 ..= 1.0), drawn independently per call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
}

struct State {
    upstream: String,
    faults: Mutex<Faults>,
    outage: AtomicBool,
    outage_changed: Notify,
    calls: Mutex<Vec<Call>>,
    creates: Mutex<Vec<CreateCall>>,
    seq: AtomicU64,
}

/// The running proxy. Dropping it stops it.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start a proxy on a free loopback port in front of `upstream_url` (`http://host:port`).
    pub async fn start(upstream_url: &str) -> FaultProxy {
        let upstream = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            faults: Mutex::new(Faults::default()),
            outage: AtomicBool::new(false),
            outage_changed: Notify::new(),
            calls: Mutex::new(Vec::new()),
            creates: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, addr, state.clone()));
        FaultProxy { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Make the emulator unreachable (`true`) or reachable again (`false`).
    pub fn set_outage(&self, on: bool) {
        self.state.outage.store(on, Ordering::SeqCst);
        self.state.outage_changed.notify_waiters();
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Every CreateDBInstance so far.
    pub fn creates(&self) -> Vec<CreateCall> {
        self.state.creates.lock().unwrap().clone()
    }

    /// Calls so far.
    pub fn total(&self) -> usize {
        self.state.calls.lock().unwrap().len()
    }

    /// Calls by action.
    pub fn by_action(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in self.state.calls.lock().unwrap().iter() {
            *m.entry(c.action.clone()).or_insert(0) += 1;
        }
        m
    }

    /// The most calls that arrived within any window of `window` length.
    pub fn max_calls_in_window(&self, window: Duration) -> usize {
        let mut times: Vec<Instant> = self
            .state
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.at)
            .collect();
        times.sort();
        let (mut best, mut lo) = (0, 0);
        for hi in 0..times.len() {
            while times[hi].duration_since(times[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, state: Arc<State>) {
    let mut listener = Some(listener);
    loop {
        if state.outage.load(Ordering::SeqCst) {
            // Close the socket: connecting is refused until the outage ends.
            listener = None;
            let notified = state.outage_changed.notified();
            if state.outage.load(Ordering::SeqCst) {
                let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            }
            continue;
        }
        if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else { continue };
        let notified = state.outage_changed.notified();
        tokio::select! {
            res = l.accept() => {
                if let Ok((sock, _)) = res {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve_conn(sock, state.clone()));
                }
            }
            _ = notified => {}
        }
    }
}

struct Request {
    head: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = find_head_end(buf) {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 65536];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Request {
        head,
        method,
        path,
        headers,
        body,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decode an `application/x-www-form-urlencoded` body.
pub fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .to_string()
    };
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

/// The region of a SigV4 `Authorization` header (`Credential=AKID/date/region/service/...`).
fn region_of(headers: &[(String, String)]) -> String {
    header(headers, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("")
        .to_string()
}

fn error_response(
    status: u16,
    reason: &str,
    code: &str,
    kind: &str,
    message: &str,
    id: u64,
) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>chaos-{id}</RequestId>\n</ErrorResponse>\n"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: chaos-{id}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

async fn serve_conn(mut sock: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    loop {
        let req = tokio::select! {
            r = read_request(&mut sock, &mut buf) => r,
            _ = wait_outage(&state) => None,
        };
        let Some(req) = req else { return };
        if state.outage.load(Ordering::SeqCst) {
            return; // drop the connection: the emulator is unreachable
        }
        let form = form_fields(&req.body);
        let action = form
            .get("Action")
            .cloned()
            .unwrap_or_else(|| format!("{} {}", req.method, req.path));
        let region = region_of(&req.headers);
        let identifier = form.get("DBInstanceIdentifier").cloned();
        let id = state.seq.fetch_add(1, Ordering::SeqCst);
        let faults = *state.faults.lock().unwrap();
        let roll: f64 = rand::random();
        let (response, outcome) = if roll < faults.throttle {
            (
                error_response(
                    400,
                    "Bad Request",
                    "Throttling",
                    "Sender",
                    "Rate exceeded",
                    id,
                ),
                Outcome::Throttled,
            )
        } else if roll < faults.throttle + faults.server_error {
            (
                error_response(
                    500,
                    "Internal Server Error",
                    "InternalFailure",
                    "Receiver",
                    "injected by the chaos proxy",
                    id,
                ),
                Outcome::ServerError,
            )
        } else {
            match forward(&state.upstream, &req).await {
                Some((status, bytes)) => (bytes, Outcome::Forwarded(status)),
                None => (
                    error_response(
                        502,
                        "Bad Gateway",
                        "InternalFailure",
                        "Receiver",
                        "emulator unreachable",
                        id,
                    ),
                    Outcome::UpstreamFailed,
                ),
            }
        };
        if action == "CreateDBInstance" {
            state.creates.lock().unwrap().push(CreateCall {
                identifier: identifier.clone().unwrap_or_default(),
                password: form.get("MasterUserPassword").cloned(),
                region: region.clone(),
                outcome: outcome.clone(),
            });
        }
        state.calls.lock().unwrap().push(Call {
            action,
            region,
            identifier,
            outcome,
            at: Instant::now(),
        });
        if sock.write_all(&response).await.is_err() {
            return;
        }
        let close =
            header(&req.headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if close {
            return;
        }
    }
}

async fn wait_outage(state: &State) {
    loop {
        let notified = state.outage_changed.notified();
        if state.outage.load(Ordering::SeqCst) {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
    }
}

/// Forward one request to the emulator on a fresh connection; return its status and the
/// response re-framed with a Content-Length (keep-alive towards the client).
async fn forward(upstream: &str, req: &Request) -> Option<(u16, Vec<u8>)> {
    let mut up = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
        .await
        .ok()?
        .ok()?;
    let mut head = String::new();
    for (i, line) in req.head.split("\r\n").enumerate() {
        if i == 0 {
            head.push_str(line);
            head.push_str("\r\n");
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).await.ok()?;
    up.write_all(&req.body).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), up.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let head_end = find_head_end(&raw)?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[head_end..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(len) =
        header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    let mut out = format!("{status_line}\r\n");
    for (k, v) in &headers {
        if [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Some((status, bytes))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
