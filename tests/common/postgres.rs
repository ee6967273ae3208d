//! Logging in to the sandbox's databases (e2e/env.sh runs a real PostgreSQL behind the RDS
//! emulator's instances) with what paved wrote to a connection Secret: its `uri`, or its `host`,
//! `port`, `username`, `password` (and `dbname`). A real client (tokio-postgres) over TLS with
//! the rustls + ring already in the tree, accepting the sandbox's certificate the way libpq's
//! `sslmode=require` does: encrypted, the server's certificate not checked against a CA (the
//! handshake's signatures still are).
//!
//! Part of the one harness (`tests/common`); self-contained, it needs nothing else of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Error};

/// `sslmode=require`: any certificate, signatures verified with ring's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// tokio-postgres' TLS hook, over tokio-rustls.
#[derive(Clone)]
pub struct RequireTls(Arc<rustls::ClientConfig>);

impl RequireTls {
    pub fn new() -> RequireTls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(algorithms)))
            .with_no_client_auth();
        RequireTls(Arc::new(config))
    }
}

impl Default for RequireTls {
    fn default() -> Self {
        RequireTls::new()
    }
}

pub struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for RequireTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<Connect> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Connect {
            config: self.0.clone(),
            name,
        })
    }
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(Stream(tls))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (libpq's channel_binding=prefer against a server that
        // does not offer it: the sandbox's endpoints terminate TLS in front of the server)
        ChannelBinding::none()
    }
}

/// Connect with a parsed config (its sslmode as given), within 20 s; the connection runs on a
/// task of its own.
pub async fn connect_config(config: &Config) -> Result<Client, Error> {
    let fut = config.connect(RequireTls::new());
    let (client, connection) = match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(r) => r?,
        Err(_) => panic!(
            "connecting to PostgreSQL at {:?} timed out after 20 s",
            config.get_hosts()
        ),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Connect with a `postgresql://user:password@host:port/db?sslmode=require` URI.
pub async fn connect_uri(uri: &str) -> Result<Client, Error> {
    let config: Config = uri.parse()?;
    connect_config(&config).await
}

/// Connect with separate fields (TLS required).
pub async fn connect_parts(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    dbname: Option<&str>,
) -> Result<Client, Error> {
    let mut config = Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .password(password)
        .ssl_mode(SslMode::Require);
    if let Some(db) = dbname {
        config.dbname(db);
    }
    connect_config(&config).await
}

/// Who the server says we are: (`current_user`, `current_database()`, whether the session is
/// TLS-encrypted as the client sees it is implied by `sslmode=require` having connected).
pub async fn whoami(client: &Client) -> (String, String) {
    let row = client
        .query_one("select current_user::text, current_database()::text", &[])
        .await
        .expect("select current_user");
    (row.get(0), row.get(1))
}

/// A Secret's `data`, decoded.
pub fn secret_strings(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("Secret value is UTF-8")))
        .collect()
}

/// Log in with a connection Secret's keys, both ways (the `uri`, then host/port/username/
/// password/dbname), and return the `uri` client's identity. Panics naming the Secret and the
/// way that failed.
pub async fn login_with_secret(what: &str, data: &BTreeMap<String, String>) -> (String, String) {
    let key = |k: &str| {
        data.get(k)
            .unwrap_or_else(|| panic!("{what}: no key {k:?} (has {:?})", data.keys()))
    };
    let by_uri = connect_uri(key("uri"))
        .await
        .unwrap_or_else(|e| panic!("{what}: logging in with its uri failed: {}", describe(&e)));
    let who = whoami(&by_uri).await;
    let port: u16 = key("port")
        .parse()
        .unwrap_or_else(|e| panic!("{what}: port {:?}: {e}", key("port")));
    let by_parts = connect_parts(
        key("host"),
        port,
        key("username"),
        key("password"),
        data.get("dbname").map(String::as_str),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{what}: logging in with host/port/username/password failed: {}",
            describe(&e)
        )
    });
    assert_eq!(
        whoami(&by_parts).await,
        who,
        "{what}: the uri and the separate keys reach different sessions"
    );
    who
}

/// The error with the server's message and SQLSTATE when there is one.
pub fn describe(e: &Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{e}"),
    }
}

/// Whether the server refused the password (SQLSTATE 28P01, invalid_password).
pub fn is_password_refused(e: &Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
}

/// The directory the sandbox keeps snapshots' dumps in (`PAVED_RDS_SNAPSHOTS` of the env file
/// whose variables are given).
pub fn snapshots_dir(vars: &BTreeMap<String, String>) -> PathBuf {
    PathBuf::from(vars.get("PAVED_RDS_SNAPSHOTS").unwrap_or_else(|| {
        panic!("PAVED_RDS_SNAPSHOTS missing from the env file: restart the control plane (e2e/env.sh down && e2e/env.sh up)")
    }))
}

/// The plain-SQL `pg_dump` of database `db` in snapshot `snapshot` of `region`.
pub fn snapshot_dump(dir: &Path, region: &str, snapshot: &str, db: &str) -> PathBuf {
    dir.join(region).join(snapshot).join(format!("{db}.sql"))
}

/// The rows of `table` in a plain-SQL dump (`COPY public.<table> (...) FROM stdin;` up to `\.`),
/// each as its tab-separated line.
pub fn dumped_rows(dump: &str, table: &str) -> Option<Vec<String>> {
    let start = format!("COPY public.{table} ");
    let mut lines = dump.lines().skip_while(|l| !l.starts_with(&start));
    lines.next()?;
    Some(
        lines
            .take_while(|l| *l != "\\.")
            .map(str::to_string)
            .collect(),
    )
}
