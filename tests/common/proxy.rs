//! The one fault proxy of the suites.
//!
//! [`FaultProxy`] sits in front of the RDS emulator and speaks its HTTP (the RDS query API,
//! form-encoded POSTs). It forwards every call and
//!
//! - records it: action, form parameters (so `CreateDBInstance`'s and `ModifyDBInstance`'s
//!   `MasterUserPassword` exactly as AWS was given it, which RDS never returns), region (from the
//!   SigV4 credential scope), outcome, time; a test can wait on the records ([`FaultProxy::wait_calls`]);
//! - answers a configurable share of calls with `Throttling` (HTTP 400, the RDS error shape) or
//!   an HTTP 500 `InternalFailure` without forwarding them ([`Faults`]);
//! - can make the emulator unreachable: the listening socket is closed (connections are
//!   refused) and open connections are dropped, until the outage ends ([`FaultProxy::set_outage`]);
//! - can stall: calls are held, unanswered, until the stall ends ([`FaultProxy::set_stall`]), or
//!   delayed by a fixed latency ([`FaultProxy::set_latency`]);
//! - can make chosen instances look as if they were in another RDS status (the emulator reports
//!   every instance `available` at once): [`FaultProxy::set_status`].
//!
//! [`TcpProxy`] is the same idea one level down, for anything else (the kube-apiserver): a
//! byte-for-byte TCP pass-through (TLS goes through untouched) that can stall or cut its
//! connections; [`kubeconfig_via`] points a kubeconfig at it.
//!
//! Plain tokio, real TCP: the controller under test talks to it exactly as to AWS. HTTP/1.1
//! with keep-alive towards the client, one fresh connection per request towards the emulator.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Answered by the proxy with the AWS error set by [`FaultProxy::set_refusal`] (HTTP 400).
    Refused,
}

/// One call the proxy saw.
#[derive(Clone, Debug)]
pub struct Call {
    pub action: String,
    /// The form parameters as sent (decoded).
    pub params: BTreeMap<String, String>,
    pub region: String,
    pub identifier: Option<String>,
    pub outcome: Outcome,
    /// When the call arrived.
    pub at: Instant,
    /// A DBInstanceStatus in the answer was rewritten (see [`FaultProxy::set_status`]).
    pub status_rewritten: bool,
}

impl Call {
    /// Forwarded to the emulator (whatever it answered).
    pub fn forwarded(&self) -> bool {
        matches!(self.outcome, Outcome::Forwarded(_))
    }

    /// A forwarded fleet-wide listing: DescribeDBInstances without an identifier.
    pub fn is_listing(&self) -> bool {
        self.action == "DescribeDBInstances"
            && self.forwarded()
            && !self.params.contains_key("DBInstanceIdentifier")
    }

    /// A forwarded DescribeDBInstances of the one instance `id`.
    pub fn describes(&self, id: &str) -> bool {
        self.action == "DescribeDBInstances"
            && self.forwarded()
            && self.params.get("DBInstanceIdentifier").map(String::as_str) == Some(id)
    }
}

/// Gaps between consecutive times.
pub fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
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

/// An on/off switch tasks can wait on.
#[derive(Default)]
struct Switch {
    on: AtomicBool,
    changed: Notify,
}

impl Switch {
    fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Return once the switch is `on` (at once when it is).
    async fn wait(&self, on: bool) {
        loop {
            let notified = self.changed.notified();
            if self.is_on() == on {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// Accept connections on `addr` and hand each to `serve`, except during an outage: then the
/// socket is closed (connecting is refused) until it ends.
async fn accept_loop<F, Fut>(listener: TcpListener, addr: SocketAddr, outage: Arc<Switch>, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut listener = Some(listener);
    loop {
        if outage.is_on() {
            listener = None;
            outage.wait(false).await;
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
        tokio::select! {
            res = l.accept() => {
                if let Ok((sock, _)) = res {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve(sock));
                }
            }
            _ = outage.wait(true) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the RDS fault proxy

/// RDS statuses to report instead of the emulator's, by DB instance identifier.
type StatusRewrites = Mutex<BTreeMap<String, String>>;

/// AWS errors (code, message) to answer instead of forwarding, by action.
type Refusals = Mutex<BTreeMap<String, (String, String)>>;

struct State {
    upstream: String,
    faults: Mutex<Faults>,
    outage: Arc<Switch>,
    stall: Switch,
    latency: Mutex<Duration>,
    statuses: StatusRewrites,
    refusals: Refusals,
    calls: Mutex<Vec<Call>>,
    recorded: Notify,
    seq: AtomicU64,
}

/// The running proxy. Dropping it stops it.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start a proxy on a free loopback port in front of `upstream_url` (`http://host:port`),
    /// with no faults.
    pub async fn start(upstream_url: &str) -> FaultProxy {
        let upstream = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let outage = Arc::new(Switch::default());
        let state = Arc::new(State {
            upstream,
            faults: Mutex::new(Faults::default()),
            outage: outage.clone(),
            stall: Switch::default(),
            latency: Mutex::new(Duration::ZERO),
            statuses: Mutex::new(BTreeMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            recorded: Notify::new(),
            seq: AtomicU64::new(0),
        });
        let s = state.clone();
        let task = tokio::spawn(accept_loop(listener, addr, outage, move |sock| {
            serve_conn(sock, s.clone())
        }));
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
        self.state.outage.set(on);
    }

    /// Hold every call, unanswered (`true`), until the stall ends (`false`): an AWS that hangs.
    pub fn set_stall(&self, on: bool) {
        self.state.stall.set(on);
    }

    /// Answer every call this much later.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap() = latency;
    }

    /// From now on, report `status` (for example `creating`) as the DBInstanceStatus of
    /// `identifier` in every DescribeDBInstances and CreateDBInstance answer, whatever the
    /// emulator says; `None` reports the emulator's again.
    pub fn set_status(&self, identifier: &str, status: Option<&str>) {
        let mut m = self.state.statuses.lock().unwrap();
        match status {
            Some(s) => m.insert(identifier.to_string(), s.to_string()),
            None => m.remove(identifier),
        };
    }

    /// From now on, answer every call of `action` (for example `CreateDBInstance`) with the AWS
    /// error `code` and `message` (HTTP 400, as AWS refuses a request), without forwarding it;
    /// `None` forwards them again.
    pub fn set_refusal(&self, action: &str, refusal: Option<(&str, &str)>) {
        let mut m = self.state.refusals.lock().unwrap();
        match refusal {
            Some((code, message)) => m.insert(action.to_string(), (code.into(), message.into())),
            None => m.remove(action),
        };
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The calls of `action` that were forwarded to the emulator.
    pub fn forwarded_of(&self, action: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action && c.forwarded())
            .collect()
    }

    /// Every CreateDBInstance so far.
    pub fn creates(&self) -> Vec<CreateCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == "CreateDBInstance")
            .map(|c| CreateCall {
                identifier: c.identifier.clone().unwrap_or_default(),
                password: c.params.get("MasterUserPassword").cloned(),
                region: c.region,
                outcome: c.outcome,
            })
            .collect()
    }

    /// Calls so far.
    pub fn total(&self) -> usize {
        self.state.calls.lock().unwrap().len()
    }

    /// Calls so far with this outcome.
    pub fn count(&self, outcome: &Outcome) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| &c.outcome == outcome)
            .count()
    }

    /// Calls by action.
    pub fn by_action(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in self.state.calls.lock().unwrap().iter() {
            *m.entry(c.action.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Calls by action and outcome, for a test's printout.
    pub fn summary(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut by: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for c in self.state.calls.lock().unwrap().iter() {
            let o = match &c.outcome {
                Outcome::Forwarded(s) => format!("{s}"),
                Outcome::Throttled => "throttled".into(),
                Outcome::ServerError => "injected-500".into(),
                Outcome::UpstreamFailed => "upstream-failed".into(),
                Outcome::Refused => "refused".into(),
            };
            *by.entry(c.action.clone())
                .or_default()
                .entry(o)
                .or_insert(0) += 1;
        }
        by
    }

    /// The most calls that arrived within any window of `window` length.
    pub fn max_calls_in_window(&self, window: Duration) -> usize {
        let mut times: Vec<Instant> = self.calls().iter().map(|c| c.at).collect();
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

    /// Wait until `cond` holds for the calls recorded so far (checked on every new call), or
    /// fail after `secs` seconds.
    pub async fn wait_calls(&self, secs: u64, what: &str, cond: impl Fn(&[Call]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let recorded = self.state.recorded.notified();
            if cond(&self.state.calls.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                assert!(
                    cond(&self.state.calls.lock().unwrap()),
                    "not {what} within {secs}s"
                );
                return;
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
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
    let headers = parse_headers(lines);
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

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
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

/// An answer in the RDS error shape.
fn error_response(status: u16, code: &str, kind: &str, message: &str, id: u64) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        500 => "Internal Server Error",
        _ => "Bad Gateway",
    };
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>proxy-{id}</RequestId>\n</ErrorResponse>\n"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: proxy-{id}\r\n\r\n",
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
            _ = state.outage.wait(true) => None,
        };
        let Some(req) = req else { return };
        let at = Instant::now();
        if state.outage.is_on() {
            return; // drop the connection: the emulator is unreachable
        }
        // a stall holds the call (an outage meanwhile drops it)
        tokio::select! {
            _ = state.stall.wait(false) => {}
            _ = state.outage.wait(true) => return,
        }
        let latency = *state.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let params = form_fields(&req.body);
        let action = params
            .get("Action")
            .cloned()
            .unwrap_or_else(|| format!("{} {}", req.method, req.path));
        let region = region_of(&req.headers);
        let identifier = params.get("DBInstanceIdentifier").cloned();
        let id = state.seq.fetch_add(1, Ordering::SeqCst);
        let faults = *state.faults.lock().unwrap();
        let roll: f64 = rand::random();
        let refusal = state.refusals.lock().unwrap().get(&action).cloned();
        let (mut response, outcome) = if let Some((code, message)) = refusal {
            (
                error_response(400, &code, "Sender", &message, id),
                Outcome::Refused,
            )
        } else if roll < faults.throttle {
            (
                error_response(400, "Throttling", "Sender", "Rate exceeded", id),
                Outcome::Throttled,
            )
        } else if roll < faults.throttle + faults.server_error {
            (
                error_response(
                    500,
                    "InternalFailure",
                    "Receiver",
                    "injected by the fault proxy",
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
                        "InternalFailure",
                        "Receiver",
                        "emulator unreachable",
                        id,
                    ),
                    Outcome::UpstreamFailed,
                ),
            }
        };
        let mut status_rewritten = false;
        if matches!(outcome, Outcome::Forwarded(_))
            && matches!(action.as_str(), "DescribeDBInstances" | "CreateDBInstance")
        {
            let rewrites = state.statuses.lock().unwrap().clone();
            if !rewrites.is_empty() {
                (response, status_rewritten) = rewrite_response(response, &rewrites);
            }
        }
        state.calls.lock().unwrap().push(Call {
            action,
            params,
            region,
            identifier,
            outcome,
            at,
            status_rewritten,
        });
        state.recorded.notify_waiters();
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
    let status_line = lines.next()?.to_string();
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers = parse_headers(lines);
    let mut body = raw[head_end..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(len) =
        header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some((status, http_response(&status_line, &headers, &body)))
}

/// A response with `body` and a Content-Length (hop-by-hop and framing headers dropped).
fn http_response(status_line: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for (k, v) in headers {
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
    bytes.extend_from_slice(body);
    bytes
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

/// Apply [`rewrite_statuses`] to a response the proxy framed (Content-Length, no chunking).
fn rewrite_response(resp: Vec<u8>, statuses: &BTreeMap<String, String>) -> (Vec<u8>, bool) {
    let Some(head_end) = find_head_end(&resp) else {
        return (resp, false);
    };
    let head = String::from_utf8_lossy(&resp[..head_end]).to_string();
    let (body, changed) = rewrite_statuses(&String::from_utf8_lossy(&resp[head_end..]), statuses);
    if !changed {
        return (resp, false);
    }
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let status_line = lines.next().unwrap_or("HTTP/1.1 200 OK").to_string();
    let headers = parse_headers(lines);
    (http_response(&status_line, &headers, body.as_bytes()), true)
}

// ---------------------------------------------------------------------------------------------
// TCP pass-through

/// A byte-for-byte TCP pass-through to `upstream` (for the kube-apiserver: TLS is relayed
/// untouched) that can stall (bytes are held in both directions until the stall ends) or cut
/// every connection and refuse new ones (an outage). Dropping it stops it.
pub struct TcpProxy {
    pub addr: SocketAddr,
    stall: Arc<Switch>,
    outage: Arc<Switch>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Start on a free loopback port in front of `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let (stall, outage) = (Arc::new(Switch::default()), Arc::new(Switch::default()));
        let (s, o, up) = (stall.clone(), outage.clone(), upstream.to_string());
        let task = tokio::spawn(accept_loop(listener, addr, outage.clone(), move |sock| {
            relay(sock, up.clone(), s.clone(), o.clone())
        }));
        TcpProxy {
            addr,
            stall,
            outage,
            task,
        }
    }

    /// Hold every byte (`true`) until the stall ends (`false`): a server that hangs.
    pub fn set_stall(&self, on: bool) {
        self.stall.set(on);
    }

    /// Cut every connection and refuse new ones (`true`), until the outage ends (`false`).
    pub fn set_outage(&self, on: bool) {
        self.outage.set(on);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: String, stall: Arc<Switch>, outage: Arc<Switch>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pipe(cr, sw, &stall) => {}
        _ = pipe(sr, cw, &stall) => {}
        _ = outage.wait(true) => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stall: &Switch,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        stall.wait(false).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A copy of `kubeconfig` (in `dir`) whose clusters point at `proxy` instead of their server
/// (same scheme; the API server's certificate is for 127.0.0.1, whatever the port).
pub fn kubeconfig_via(kubeconfig: &Path, proxy: &TcpProxy, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut kc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    for c in kc["clusters"].as_array_mut().expect("clusters") {
        let server = c["cluster"]["server"].as_str().expect("server").to_string();
        let scheme = server.split("://").next().unwrap_or("https");
        c["cluster"]["server"] = serde_json::json!(format!("{scheme}://{}", proxy.addr));
    }
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(format!("kubeconfig-via-{}", proxy.addr.port()));
    std::fs::write(&out, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    out
}

/// The `host:port` of a kubeconfig's first cluster.
pub fn kube_server_addr(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let kc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server");
    server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .trim_end_matches('/')
        .to_string()
}
