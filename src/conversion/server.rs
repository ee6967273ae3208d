//! The conversion webhook over HTTPS: `POST /convert` with a ConversionReview.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::post;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info};

use crate::api::CONVERSION_PATH;

/// The serving certificate and its key (PEM files, as cert-manager writes them into a Secret:
/// `tls.crt`, `tls.key`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum Tls {
    /// PEM files (cert-manager's Secret, mounted).
    Files(TlsFiles),
    /// PEM in memory (paved's own, see [`super::certs`]).
    Pem(super::certs::ServingCert),
}

impl Tls {
    fn describe(&self) -> String {
        match self {
            Tls::Files(f) => f.cert.display().to_string(),
            Tls::Pem(_) => "paved's own certificate".into(),
        }
    }
}

fn tls_config(tls: &Tls) -> anyhow::Result<rustls::ServerConfig> {
    match tls {
        Tls::Files(files) => tls_config_files(files),
        Tls::Pem(c) => tls_config_pem(&c.cert, &c.key),
    }
}

/// The server configuration from a certificate chain and key in PEM.
pub(crate) fn tls_config_pem(cert: &str, key: &str) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the certificate")?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in the PEM");
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).context("reading the private key")?;
    server_config(certs, key).context("the key does not match the certificate")
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn tls_config_files(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate in the file", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the key {} does not match the certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A TCP listener that hands axum TLS streams (handshakes that fail are logged and skipped).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(s) => s,
                Err(e) => {
                    debug!(error = %e, "conversion webhook: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(stream)).await
            {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => debug!(%addr, error = %e, "conversion webhook: TLS handshake failed"),
                Err(_) => debug!(%addr, "conversion webhook: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn convert_handler(body: axum::body::Bytes) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(review) => (
            [(header::CONTENT_TYPE, "application/json")],
            super::review(review).to_string(),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("the body is not a ConversionReview (JSON): {e}"),
        )
            .into_response(),
    }
}

/// The webhook's routes (`POST /convert`).
pub fn router() -> Router {
    Router::new().route(CONVERSION_PATH, post(convert_handler))
}

/// Bind `addr` and serve conversion reviews over TLS until `shutdown` turns true. Returns the
/// bound address (useful with port 0) and the serving task.
pub async fn serve(
    addr: SocketAddr,
    tls: &Tls,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>> + Send + use<>,
)> {
    let config = tls_config(tls)?;
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("conversion webhook: listening on {addr}"))?;
    let local = tcp
        .local_addr()
        .context("conversion webhook: local address")?;
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    info!(addr = %local, cert = %tls.describe(), "serving the Instance conversion webhook");
    let task = async move {
        axum::serve(listener, router())
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await
            .with_context(|| format!("conversion webhook: serving on {local}"))
    };
    Ok((local, task))
}
