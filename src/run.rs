//! `paved run`: the operator process. Starts the claim and RDS controllers (optionally behind
//! leader election), serves `/healthz`, `/readyz` and `/metrics`, and shuts down gracefully on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::leader::{LeaderElector, LeaseSettings};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Which controllers this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ControllerName {
    /// PostgreSQLInstance claims → composed objects, status, connection Secret.
    Claim,
    /// Instance → AWS RDS.
    Rds,
}

/// Flags of `paved run`. Every flag can also be given as the environment variable shown.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespaces to watch, comma-separated. Default: all namespaces.
    #[arg(long, env = "PAVED_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Controllers to run, comma-separated.
    #[arg(long, env = "PAVED_CONTROLLERS", value_delimiter = ',', default_values = ["claim", "rds"])]
    pub controllers: Vec<ControllerName>,

    /// Address for Prometheus metrics (`/metrics`).
    #[arg(long, env = "PAVED_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Address for health probes (`/healthz`, `/readyz`).
    #[arg(long, env = "PAVED_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,

    /// Address for the Instance conversion webhook (HTTPS, `POST /convert`), which the API
    /// server calls to move Instances between v1beta1, v1beta2 and v1beta3. Served by every
    /// replica, leader or not. Needs a certificate: --tls-cert-file and --tls-key-file
    /// (cert-manager's), or --conversion-webhook-secret (paved's own). Unset: not served (the
    /// CRD's conversion must then point elsewhere, or be `None`).
    #[arg(long, env = "PAVED_CONVERSION_WEBHOOK_ADDR")]
    pub conversion_webhook_addr: Option<SocketAddr>,

    /// Keep the webhook's own CA and serving certificate in this Secret (NAMESPACE/NAME; made
    /// the first time, reused by every replica and restart), and write that CA and where to
    /// call (--conversion-webhook-service or --conversion-webhook-url) into the Instance CRD's
    /// spec.conversion once the webhook listens. No cert-manager needed.
    #[arg(long, env = "PAVED_CONVERSION_WEBHOOK_SECRET", value_name = "NAMESPACE/NAME", requires = "conversion_webhook_addr", conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    pub conversion_webhook_secret: Option<String>,

    /// The Service the API server calls the webhook through (NAMESPACE/NAME[:PORT], port 443 by
    /// default), with --conversion-webhook-secret.
    #[arg(
        long,
        env = "PAVED_CONVERSION_WEBHOOK_SERVICE",
        value_name = "NAMESPACE/NAME[:PORT]",
        requires = "conversion_webhook_secret",
        conflicts_with = "conversion_webhook_url"
    )]
    pub conversion_webhook_service: Option<String>,

    /// The URL the API server calls the webhook at (a local control plane), with
    /// --conversion-webhook-secret.
    #[arg(
        long,
        env = "PAVED_CONVERSION_WEBHOOK_URL",
        value_name = "URL",
        requires = "conversion_webhook_secret"
    )]
    pub conversion_webhook_url: Option<String>,

    /// The CRD whose conversion --conversion-webhook-secret points at the webhook.
    #[arg(
        long,
        env = "PAVED_CONVERSION_WEBHOOK_CRD",
        default_value = "instances.rds.aws.upbound.io"
    )]
    pub conversion_webhook_crd: String,

    /// The webhook's serving certificate (PEM; e.g. `tls.crt` of the cert-manager Secret).
    #[arg(long, env = "PAVED_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<std::path::PathBuf>,

    /// The webhook's private key (PEM; e.g. `tls.key`).
    #[arg(long, env = "PAVED_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<std::path::PathBuf>,

    /// Run only while holding a coordination.k8s.io/v1 Lease, so that of several replicas exactly
    /// one reconciles.
    #[arg(long, env = "PAVED_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "PAVED_LEASE_NAME", default_value = "paved-leader")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease (default: the pod's namespace from POD_NAMESPACE, else
    /// `default`).
    #[arg(long, env = "PAVED_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a Lease stays valid without renewal; a standby takes over after this.
    #[arg(long, env = "PAVED_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up leadership.
    #[arg(long, env = "PAVED_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,

    /// How often the Lease is renewed (and a standby retries).
    #[arg(long, env = "PAVED_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,

    /// How often one paginated DescribeDBInstances per account and region refreshes every
    /// Instance.
    #[arg(long, env = "PAVED_POLL_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How often every object of every controller is reconciled even when nothing triggered it:
    /// the safety net for a lost watch event. A reconcile that finds nothing changed writes
    /// nothing. `0s` turns it off.
    #[arg(long, env = "PAVED_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// AWS requests per second per account and region (token bucket). RDS allows about 12.
    #[arg(long, env = "PAVED_AWS_RATE", default_value_t = 8.0)]
    pub aws_requests_per_second: f64,

    /// How long one AWS call waits for an answer before it fails; the object then says
    /// `AWSUnavailable: ... no answer from <endpoint> within <this>` and paved logs a warning.
    #[arg(long, env = "PAVED_AWS_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub aws_timeout: Duration,

    /// Let an Instance that names no ProviderConfig, while none named `default` exists, use
    /// paved's own AWS credential chain (the pod's identity: IRSA, EKS Pod Identity, instance
    /// profile, environment). Off by default: such an Instance is refused with Synced=False, so
    /// that no team reaches the account paved itself runs in by leaving providerConfigRef out.
    #[arg(long, env = "PAVED_ALLOW_POD_IDENTITY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_pod_identity: bool,

    /// Log format.
    #[arg(long, env = "PAVED_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log level or filter (tracing EnvFilter syntax, e.g. `info,paved=debug`).
    #[arg(long, env = "PAVED_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Parse `90s`, `2m`, `1h`, `500ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 2m, 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unit must be ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The namespaces paved watches, as the start-up log says them.
pub fn watched_namespaces(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "all namespaces".into()
    } else {
        format!("namespaces {}", namespaces.join(", "))
    }
}

/// Initialise tracing (JSON or text) with an EnvFilter.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_new(level).with_context(|| format!("invalid --log-level {level:?}"))?;
    // Colour codes only for a person at a terminal: a log file, `kubectl logs` or a collector
    // gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    res.map_err(|e| anyhow::anyhow!("initialising logging: {e}"))
}

#[derive(Clone)]
struct HttpState {
    registry: Arc<Registry>,
    ready: Arc<Vec<Arc<AtomicBool>>>,
    standby: Arc<AtomicBool>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.standby.load(Ordering::Relaxed) {
        return (StatusCode::OK, "ok (standby: waiting for leadership)");
    }
    if !s.ready.iter().all(|r| r.load(Ordering::Relaxed)) {
        return (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet");
    }
    let health = crate::kube::watch::WatchHealth::global();
    if health
        .failing_longer_than(crate::kube::watch::WatchHealth::UNHEALTHY_AFTER)
        .is_empty()
    {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a watch keeps failing (see paved_watch_up and the log)",
        )
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let mut buf = String::new();
    match prometheus_client::encoding::text::encode(&mut buf, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            buf,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {e}"),
        ),
    }
}

async fn serve(
    addr: SocketAddr,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    // The address actually bound: with port 0 asked for, the port the system chose.
    let bound = listener.local_addr().unwrap_or(addr);
    info!(asked = %addr, listening = %bound, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
        .with_context(|| format!("serving on {addr}"))
}

async fn shutdown_signal() -> &'static str {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = ctrl_c.await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        "SIGINT"
    }
}

/// The whole `paved run` process: probes and metrics, leadership, the controllers, and a
/// graceful stop.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    crate::init_crypto();
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    info!(version = env!("CARGO_PKG_VERSION"), namespaces = ?args.namespaces, controllers = ?args.controllers, "paved starting");
    info!(
        watching = %watched_namespaces(&args.namespaces),
        "paved watches {}; a claim or Instance elsewhere gets no status and no Event from paved",
        watched_namespaces(&args.namespaces)
    );

    // Metric names carry their own `paved_` prefix (the controllers register theirs).
    let mut registry = Registry::default();
    let leader_gauge: Gauge<i64, AtomicI64> = Gauge::default();
    registry.register(
        "paved_leader",
        "1 while this replica holds the leader Lease (or runs without leader election)",
        leader_gauge.clone(),
    );
    crate::kube::watch::WatchHealth::global().register(&mut registry);
    // One `paved_objects` gauge, fed by both controllers' caches.
    let objects = crate::kube::object_metrics::ObjectStates::default();
    objects.register(&mut registry);
    let claim_metrics =
        Arc::new(crate::claim::ClaimMetrics::new(&mut registry).with_objects(objects.clone()));
    let rds_metrics =
        Arc::new(crate::managed::RdsMetrics::new(&mut registry).with_objects(objects));
    let ready = Ready {
        claim: Arc::new(AtomicBool::new(
            !args.controllers.contains(&ControllerName::Claim),
        )),
        rds: Arc::new(AtomicBool::new(
            !args.controllers.contains(&ControllerName::Rds),
        )),
    };
    let standby = Arc::new(AtomicBool::new(args.leader_elect));
    let state = HttpState {
        registry: Arc::new(registry),
        ready: Arc::new(vec![ready.claim.clone(), ready.rds.clone()]),
        standby: standby.clone(),
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut servers = serve_probes(&args, state, &shutdown_rx);
    if let Some(addr) = args.conversion_webhook_addr {
        servers.spawn(serve_conversion(&client, &args, addr, shutdown_rx.clone()).await?);
    }
    stop_on_signal(shutdown_tx.clone());

    if args.leader_elect {
        LeaseSettings {
            name: args.lease_name.clone(),
            namespace: String::new(),
            identity: String::new(),
            lease_duration: args.lease_duration,
            renew_deadline: args.lease_renew_deadline,
            retry_period: args.lease_retry_period,
        }
        .validate()
        .map_err(anyhow::Error::msg)?;
    }
    let Some(elector) = lead(&client, &args, &shutdown_rx).await else {
        info!("shut down while waiting for leadership");
        return Ok(());
    };
    standby.store(false, Ordering::Relaxed);
    leader_gauge.set(1);

    let controllers = start_controllers(
        &client,
        &args,
        claim_metrics,
        rds_metrics,
        ready,
        &shutdown_rx,
    );
    let result = match supervise(controllers, elector.as_ref(), &shutdown_tx, &leader_gauge).await {
        Stopped::Done(result) => result,
        // Exit at once: another replica holds the Lease now.
        Stopped::LeadershipLost(e) => return Err(e),
    };
    if let Some(e) = &elector {
        e.release().await;
    }
    leader_gauge.set(0);
    while servers.join_next().await.is_some() {}
    info!("stopped");
    result
}

/// The readiness flags of the controllers (true from the start for one that does not run).
struct Ready {
    claim: Arc<AtomicBool>,
    rds: Arc<AtomicBool>,
}

/// Serve /healthz, /readyz and /metrics (on one address or two) until shutdown.
fn serve_probes(
    args: &RunArgs,
    state: HttpState,
    shutdown_rx: &watch::Receiver<bool>,
) -> tokio::task::JoinSet<anyhow::Result<()>> {
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state.clone());
    let metrics_router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    let mut servers = tokio::task::JoinSet::new();
    if args.health_addr == args.metrics_addr {
        servers.spawn(serve(
            args.health_addr,
            health.merge(metrics_router),
            shutdown_rx.clone(),
        ));
    } else {
        servers.spawn(serve(args.health_addr, health, shutdown_rx.clone()));
        servers.spawn(serve(
            args.metrics_addr,
            metrics_router,
            shutdown_rx.clone(),
        ));
    }
    info!(health = %args.health_addr, metrics = %args.metrics_addr, "serving probes and metrics");
    servers
}

/// A signal flips the shutdown channel; everything watches it.
fn stop_on_signal(tx: watch::Sender<bool>) {
    tokio::spawn(async move {
        let sig = shutdown_signal().await;
        info!(signal = sig, "shutting down");
        let _ = tx.send(true);
    });
}

/// Leadership: `Some(None)` without leader election, `Some(Some(elector))` once the Lease is
/// held, `None` when shut down while waiting for it.
async fn lead(
    client: &kube::Client,
    args: &RunArgs,
    shutdown_rx: &watch::Receiver<bool>,
) -> Option<Option<LeaderElector>> {
    if !args.leader_elect {
        return Some(None);
    }
    let namespace = args
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".to_string());
    let identity = format!(
        "{}-{}",
        std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "paved".into()),
        random_suffix()
    );
    let elector = LeaderElector::new(
        client.clone(),
        LeaseSettings {
            name: args.lease_name.clone(),
            namespace,
            identity,
            lease_duration: args.lease_duration,
            renew_deadline: args.lease_renew_deadline,
            retry_period: args.lease_retry_period,
        },
    );
    let mut rx = shutdown_rx.clone();
    tokio::select! {
        _ = elector.acquire() => Some(Some(elector)),
        _ = rx.wait_for(|s| *s) => None,
    }
}

/// Start the conversion webhook on `addr` with the certificate the flags name: cert-manager's
/// files, or paved's own (then the CRD is pointed at it once it listens).
async fn serve_conversion(
    client: &kube::Client,
    args: &RunArgs,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>> + Send + use<>> {
    use crate::conversion::certs::{self, Endpoint};
    let own = match &args.conversion_webhook_secret {
        None => None,
        Some(secret) => {
            let (ns, name) = secret
                .split_once('/')
                .filter(|(n, s)| !n.is_empty() && !s.is_empty())
                .with_context(|| {
                    format!("--conversion-webhook-secret {secret:?}: expected NAMESPACE/NAME")
                })?;
            let endpoint = match (
                &args.conversion_webhook_service,
                &args.conversion_webhook_url,
            ) {
                (Some(svc), _) => Endpoint::parse_service(svc)
                    .map_err(|e| anyhow::anyhow!("--conversion-webhook-service {e}"))?,
                (None, Some(url)) => Endpoint::Url(url.clone()),
                (None, None) => anyhow::bail!(
                    "--conversion-webhook-secret needs --conversion-webhook-service or --conversion-webhook-url: where the API server calls the webhook"
                ),
            };
            let cert = certs::ensure(client, ns, name, &endpoint).await?;
            Some((endpoint, cert))
        }
    };
    let tls = match (&own, &args.tls_cert_file, &args.tls_key_file) {
        (Some((_, cert)), _, _) => crate::conversion::Tls::Pem(cert.clone()),
        (None, Some(cert), Some(key)) => {
            crate::conversion::Tls::Files(crate::conversion::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })
        }
        _ => anyhow::bail!(
            "--conversion-webhook-addr needs a certificate: --tls-cert-file and --tls-key-file, or --conversion-webhook-secret"
        ),
    };
    let (_, task) = crate::conversion::serve(addr, &tls, shutdown.clone()).await?;
    let keep = match own {
        Some((endpoint, cert)) => {
            let crd = args.conversion_webhook_crd.clone();
            certs::point_crd(client, &crd, &endpoint, &cert.ca).await?;
            futures::future::Either::Left(certs::keep_pointed(
                client.clone(),
                crd,
                endpoint,
                cert.ca,
                Duration::from_secs(60),
                shutdown,
            ))
        }
        None => futures::future::Either::Right(std::future::ready(Ok(()))),
    };
    Ok(async move {
        let (served, kept) = futures::future::join(task, keep).await;
        served.and(kept)
    })
}

/// The controllers `--controllers` names, one line each, sharing one cache of paved's Secrets
/// (see `crate::secrets`).
fn start_controllers(
    client: &kube::Client,
    args: &RunArgs,
    claim_metrics: Arc<crate::claim::ClaimMetrics>,
    rds_metrics: Arc<crate::managed::RdsMetrics>,
    ready: Ready,
    shutdown_rx: &watch::Receiver<bool>,
) -> tokio::task::JoinSet<anyhow::Result<()>> {
    let shutdown = |rx: watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let run_claim = args.controllers.contains(&ControllerName::Claim);
    let run_rds = args.controllers.contains(&ControllerName::Rds);
    let mut feeds = crate::secrets::start(
        client,
        &crate::secrets::scopes(&args.namespaces),
        usize::from(run_claim) + usize::from(run_rds),
    );
    let mut controllers = tokio::task::JoinSet::new();
    if run_claim {
        let config = crate::claim::ClaimConfig {
            namespaces: args.namespaces.clone(),
            resync: args.resync_interval,
            ..Default::default()
        };
        // Every Composition validated when applied, before a claim uses it, and a
        // CompositionRevision for every distinct spec, for claims that pin one.
        controllers.spawn(crate::composition::run(
            client.clone(),
            shutdown(shutdown_rx.clone()),
        ));
        let stop = shutdown(shutdown_rx.clone());
        controllers.spawn(crate::claim::run_with_secrets(
            client.clone(),
            config,
            claim_metrics,
            ready.claim,
            stop,
            feeds.pop(),
        ));
    }
    if run_rds {
        let config = crate::managed::RdsConfig {
            namespaces: args.namespaces.clone(),
            poll_interval: args.poll_interval,
            resync: args.resync_interval,
            aws_requests_per_second: args.aws_requests_per_second,
            aws_timeout: args.aws_timeout,
            allow_pod_identity: args.allow_pod_identity,
            ..Default::default()
        };
        let stop = shutdown(shutdown_rx.clone());
        controllers.spawn(crate::managed::run_with_secrets(
            client.clone(),
            config,
            rds_metrics,
            ready.rds,
            stop,
            feeds.pop(),
        ));
    }
    controllers
}

/// How the controllers stopped.
enum Stopped {
    /// A signal, or a controller that stopped (with its error).
    Done(anyhow::Result<()>),
    /// Leadership was lost: everything was aborted.
    LeadershipLost(anyhow::Error),
}

/// Run until a controller stops, leadership is lost, or a signal arrives; then give the
/// controllers 20 s to finish in-flight reconciles.
async fn supervise(
    mut controllers: tokio::task::JoinSet<anyhow::Result<()>>,
    elector: Option<&LeaderElector>,
    shutdown_tx: &watch::Sender<bool>,
    leader_gauge: &Gauge<i64, AtomicI64>,
) -> Stopped {
    let mut result = Ok(());
    let lost = async {
        match elector {
            Some(e) => Some(e.hold().await),
            None => std::future::pending().await,
        }
    };
    let mut signalled = shutdown_tx.subscribe();
    tokio::select! {
        _ = signalled.wait_for(|s| *s) => {}
        Some(res) = controllers.join_next() => {
            match res {
                Ok(Ok(())) if *shutdown_tx.borrow() => {}
                Ok(Ok(())) => { error!("a controller stopped unexpectedly"); result = Err(anyhow::anyhow!("a controller stopped unexpectedly")); }
                Ok(Err(e)) => { error!(error = %format!("{e:#}"), "a controller failed"); result = Err(e); }
                Err(e) => { error!(error = %e, "a controller task panicked"); result = Err(anyhow::anyhow!("controller task: {e}")); }
            }
        }
        Some(err) = lost => {
            // Stop at once: another replica may already be reconciling.
            error!(error = %err, "leadership lost; exiting");
            leader_gauge.set(0);
            let _ = shutdown_tx.send(true);
            controllers.abort_all();
            return Stopped::LeadershipLost(err.into());
        }
    }
    let _ = shutdown_tx.send(true);
    let drain = async { while controllers.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(20), drain)
        .await
        .is_err()
    {
        warn!("controllers did not stop within 20s; aborting them");
        controllers.abort_all();
    }
    Stopped::Done(result)
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
