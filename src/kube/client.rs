//! The Kubernetes client of `paved run`: kube's own stack (TLS, auth, base URI, retries,
//! timeouts), built here for one setting kube does not expose, the size of each connection's
//! read buffer.
//!
//! Why: hyper's default HTTP/1 read buffer is adaptive. It doubles while reads fill it, up to
//! ~400 KiB, and a connection keeps the largest buffer it ever grew for as long as it lives.
//! A LIST of 100 Instances (~500 KB) grows it to the maximum, and the watch that follows the
//! LIST on the same pooled connection then holds that buffer for hours while it reads events
//! of a few KB. `paved run` keeps ~30 connections (one per watch, and the pool of its
//! requests), so the grown buffers were ~11 MB of a ~57 MB heap at 1000 claims (heaptrack).
//! With a fixed 32 KiB buffer a large body is read in more, smaller reads; that costs nothing
//! measurable against the API server's own work.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// The fixed read buffer of every connection to the API server. Big enough for a watch event
/// of any object paved keeps (a few KB) in one read, small beside the adaptive maximum.
pub const READ_BUFFER: usize = 32 * 1024;

/// A client for `config`, as kube's `Client::try_from(config)` builds it, except the fixed
/// read buffer ([`READ_BUFFER`]) and kube's per-request trace spans (paved logs its own).
/// Proxies are refused as kube refuses them without its proxy features.
pub fn from_config(config: kube::Config) -> Result<kube::Client, kube::Error> {
    if let Some(proxy) = &config.proxy_url {
        return Err(kube::Error::ProxyProtocolUnsupported {
            proxy_url: Box::new(proxy.clone()),
        });
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .http1_read_buf_exact_size(READ_BUFFER)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// [`from_config`] for the inferred configuration (in-cluster, or `KUBECONFIG`).
pub async fn infer() -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    from_config(config)
}
