//! The RDS controller: reconciles `Instance` (`rds.aws.upbound.io/v1beta1`) with AWS RDS.
//!
//! - [`client`]: the small trait over the RDS operations paved uses ([`client::RdsApi`]), its
//!   aws-sdk-rds implementation, and the guard around it (token bucket per AWS identity,
//!   endpoint and region — see [`BucketKey`] —, retries with backoff and jitter, a metric per
//!   attempt, failpoints for crash tests).
//! - [`observe`]: shared observation — one paginated DescribeDBInstances per (ProviderConfig,
//!   region) per poll interval feeds every Instance.
//! - [`diff`]: spec against AWS — what to modify, what cannot change, which tags to fix.
//! - [`reconcile`]: the reconcile of one Instance (create, update, delete, status, Secrets).
//! - [`naming`]: deterministic identifiers, passwords, connection URIs.

pub mod client;
pub mod diff;
#[cfg(test)]
pub(crate) mod fake;
pub mod metrics;
pub mod model;
pub mod naming;
pub mod observe;
pub mod reconcile;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::events::Recorder;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};

use kube::{Resource, ResourceExt};

use crate::api::instance::Instance;
use crate::api::provider_config::{CredentialsSource, EndpointUrlType, ProviderConfig};

pub use client::{Failpoint, FailpointSite, RetryPolicy};
pub use metrics::RdsMetrics;

use crate::kube::backoff::{Backoffs, Curve, exponential as backoff};
use crate::kube::overlay::Overlay;
use client::{Guarded, RdsApi, SdkRds, TokenBucket};
use model::ErrorClass;
use observe::{Fleet, Fleets};

/// Settings of the RDS controller.
#[derive(Clone)]
pub struct RdsConfig {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// How often one paginated DescribeDBInstances per (ProviderConfig, region) refreshes every
    /// Instance (and how often an idle Instance is looked at). Default 60 s.
    pub poll_interval: Duration,
    /// How often an instance in a transitional state (creating, modifying, deleting, ...) is
    /// described on its own. Default 20 s.
    pub transitional_poll_interval: Duration,
    /// Token bucket rate per AWS identity (account, as far as paved can tell without asking
    /// AWS: see [`BucketKey`]), endpoint and region, shared by every ProviderConfig that resolves
    /// to the same one. Default 8 requests/s, under the RDS API's limit of about 12.
    pub aws_requests_per_second: f64,
    /// Retries of throttling and 5xx answers within one call.
    pub retry: RetryPolicy,
    /// Longest wait before retrying after a non-transient AWS error (invalid parameters, quota,
    /// capacity, authorization). Default 5 minutes. A spec change retries at once.
    pub error_backoff_max: Duration,
    /// Instances reconciled at the same time.
    pub concurrency: u16,
    /// Test hook: run at the failpoint sites (see [`FailpointSite`]).
    pub failpoint: Option<Failpoint>,
}

impl std::fmt::Debug for RdsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdsConfig")
            .field("namespaces", &self.namespaces)
            .field("poll_interval", &self.poll_interval)
            .field(
                "transitional_poll_interval",
                &self.transitional_poll_interval,
            )
            .field("aws_requests_per_second", &self.aws_requests_per_second)
            .field("retry", &self.retry)
            .field("error_backoff_max", &self.error_backoff_max)
            .field("concurrency", &self.concurrency)
            .field("failpoint", &self.failpoint.is_some())
            .finish()
    }
}

impl Default for RdsConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            poll_interval: Duration::from_secs(60),
            transitional_poll_interval: Duration::from_secs(20),
            aws_requests_per_second: 8.0,
            retry: RetryPolicy::default(),
            error_backoff_max: Duration::from_secs(300),
            concurrency: 32,
            failpoint: None,
        }
    }
}

/// The backoff curve after an AWS error of `class`: quick for throttling, 5xx and states that
/// pass (up to a minute), slow for errors that need a human or a spec change.
pub(crate) fn error_curve(class: ErrorClass, cfg: &RdsConfig) -> Curve {
    match class {
        ErrorClass::Transient | ErrorClass::InvalidState => Curve {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60).min(cfg.error_backoff_max),
        },
        _ => Curve {
            base: Duration::from_secs(10),
            max: cfg.error_backoff_max,
        },
    }
}

struct CachedClient {
    version: String,
    built: Instant,
    api: Arc<dyn RdsApi>,
}

/// Rebuild clients (re-reading credential Secrets) this often.
const CLIENT_TTL: Duration = Duration::from_secs(15 * 60);

/// State shared by the controllers of all watched namespaces.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub config: RdsConfig,
    pub metrics: Arc<RdsMetrics>,
    pub recorder: Recorder,
    pub fleets: Fleets,
    /// Backoff per Instance (`namespace/name`) after AWS errors.
    pub backoffs: Backoffs<String>,
    /// What this controller last wrote to an Instance, until the store has caught up.
    pub latest: Overlay<String, Instance>,
    buckets: Buckets,
    clients: Mutex<HashMap<(String, String), CachedClient>>,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

/// Context of one controller.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub secrets: Store<Secret>,
    pub provider_configs: Store<ProviderConfig>,
}

/// Name used for the fleet and client of Instances without a ProviderConfig.
const AMBIENT: &str = "(environment)";

/// Who AWS sees calling, as far as paved can tell from configuration alone (no STS call).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// The account of the role the credentials come from (the account ID of its ARN).
    Account(String),
    /// Static keys: the access key ID (never the secret), which belongs to exactly one account.
    AccessKey(String),
    /// paved's own credential chain, with nothing in the configuration that names an account
    /// (instance profile, EKS Pod Identity, a shared profile): every such client is one caller.
    Ambient,
}

/// The token bucket a client draws from: RDS limits requests per account and region, so every
/// ProviderConfig that resolves to the same caller, endpoint and region shares one bucket (two
/// ProviderConfigs with the same credentials must not get twice the rate). The endpoint keeps
/// an emulator or a VPC endpoint apart from AWS's public one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BucketKey {
    pub caller: Caller,
    /// The endpoint URL (lower case, no trailing `/`), or `aws` for AWS's own.
    pub endpoint: String,
    pub region: String,
}

/// The token buckets, by [`BucketKey`].
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    m: Mutex<HashMap<BucketKey, Arc<TokenBucket>>>,
}

impl Buckets {
    /// The bucket of `key` (made with `rate` requests/s the first time).
    pub(crate) fn get(&self, key: BucketKey, rate: f64) -> Arc<TokenBucket> {
        self.m
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(|| Arc::new(TokenBucket::new(rate)))
            .clone()
    }
}

/// The account ID in an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/<name>`, or the
/// `sts` assumed-role form).
pub(crate) fn account_of_role_arn(arn: &str) -> Option<String> {
    let mut parts = arn.trim().splitn(6, ':');
    let (arn_, _partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let role = match service {
        "iam" => resource.starts_with("role/"),
        "sts" => resource.starts_with("assumed-role/"),
        _ => false,
    };
    (arn_ == "arn" && role && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .then(|| account.to_string())
}

/// The bucket of a client built with `credentials` (from a ProviderConfig Secret; `None`: the
/// default chain) and `endpoint` (a ProviderConfig's static URL; `None`: the environment's or
/// AWS's). `env` reads the process environment the default chain reads, in its order: static
/// keys (`AWS_ACCESS_KEY_ID`) first, then a web identity role (`AWS_ROLE_ARN`, as IRSA sets it).
pub(crate) fn bucket_key(
    credentials: Option<&client::StaticCredentials>,
    endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> BucketKey {
    let env = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let caller = match credentials {
        Some(c) => Caller::AccessKey(c.access_key_id.trim().to_string()),
        None => match (env("AWS_ACCESS_KEY_ID"), env("AWS_ROLE_ARN")) {
            (Some(key), _) => Caller::AccessKey(key),
            (None, Some(arn)) => account_of_role_arn(&arn).map_or(Caller::Ambient, Caller::Account),
            (None, None) => Caller::Ambient,
        },
    };
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_RDS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .map(|e| e.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "aws".to_string());
    BucketKey {
        caller,
        endpoint,
        region: region.to_string(),
    }
}

/// The endpoint URL a ProviderConfig asks for (`None`: the environment's or AWS's).
/// `Err(message)`: the ProviderConfig is invalid.
fn provider_config_endpoint(pc: &ProviderConfig) -> Result<Option<String>, String> {
    match &pc.spec.endpoint {
        Some(e) if e.url.type_ == EndpointUrlType::Static => match &e.url.static_ {
            Some(u) => Ok(Some(u.clone())),
            None => Err(format!(
                "ProviderConfig {}: spec.endpoint.url.static is required with type Static",
                pc.name_any()
            )),
        },
        _ => Ok(None),
    }
}

impl Ctx {
    /// The guarded RDS client and the fleet cache for an Instance; `Err(message)` inside Ok
    /// when the ProviderConfig is missing or unusable.
    pub(crate) async fn aws_for(
        &self,
        obj: &Instance,
    ) -> Result<Result<(Arc<dyn RdsApi>, Arc<Fleet>), String>, reconcile::Error> {
        let region = obj.spec.for_provider.region.clone();
        let explicit = obj
            .spec
            .provider_config_ref
            .as_ref()
            .map(|r| r.name.clone());
        let name = explicit.clone().unwrap_or_else(|| "default".to_string());
        let pc = self.provider_configs.get(&ObjectRef::new(&name));
        let (key_name, version) = match &pc {
            Some(pc) => (name.clone(), pc.resource_version().unwrap_or_default()),
            None if explicit.is_none() => (AMBIENT.to_string(), String::new()),
            None => return Ok(Err(format!("ProviderConfig {name} not found"))),
        };
        let key = (key_name.clone(), region.clone());
        let fleet = self.shared.fleets.get(&key_name, &region);
        {
            let clients = self
                .shared
                .clients
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = clients.get(&key)
                && c.version == version
                && c.built.elapsed() < CLIENT_TTL
            {
                return Ok(Ok((c.api.clone(), fleet)));
            }
        }
        let (endpoint, credentials) = match &pc {
            None => (None, None),
            Some(pc) => {
                let endpoint = match provider_config_endpoint(pc) {
                    Ok(e) => e,
                    Err(msg) => return Ok(Err(msg)),
                };
                let credentials = match pc.spec.credentials.source {
                    CredentialsSource::Secret => {
                        let Some(r) = &pc.spec.credentials.secret_ref else {
                            return Ok(Err(format!(
                                "ProviderConfig {name}: spec.credentials.secretRef is required with source Secret"
                            )));
                        };
                        let Some(ns) = &r.namespace else {
                            return Ok(Err(format!(
                                "ProviderConfig {name}: spec.credentials.secretRef.namespace is required"
                            )));
                        };
                        let secrets: Api<Secret> = Api::namespaced(self.shared.client.clone(), ns);
                        let secret = secrets.get_opt(&r.name).await.map_err(|source| {
                            reconcile::Error::Kube {
                                action: "reading the ProviderConfig credentials Secret",
                                key: format!(
                                    "{}/{}",
                                    obj.namespace().unwrap_or_default(),
                                    obj.name_any()
                                ),
                                source,
                            }
                        })?;
                        let text = secret
                            .and_then(|s| s.data)
                            .and_then(|d| d.get(&r.key).cloned())
                            .map(|b| String::from_utf8_lossy(&b.0).to_string());
                        let Some(text) = text else {
                            return Ok(Err(format!(
                                "ProviderConfig {name}: Secret {ns}/{} has no key {:?}",
                                r.name, r.key
                            )));
                        };
                        match client::parse_credentials_file(&text) {
                            Some(c) => Some(c),
                            None => {
                                return Ok(Err(format!(
                                    "ProviderConfig {name}: Secret {ns}/{} key {:?} is not an AWS credentials file with aws_access_key_id and aws_secret_access_key",
                                    r.name, r.key
                                )));
                            }
                        }
                    }
                    _ => None,
                };
                (endpoint, credentials)
            }
        };
        let bucket_key = bucket_key(credentials.as_ref(), endpoint.as_deref(), &region, |k| {
            std::env::var(k).ok()
        });
        let sdk = client::sdk_client(
            self.shared.http.clone(),
            &region,
            endpoint.as_deref(),
            credentials,
        )
        .await;
        let bucket = self
            .shared
            .buckets
            .get(bucket_key, self.shared.config.aws_requests_per_second);
        let api: Arc<dyn RdsApi> = Arc::new(Guarded {
            inner: Arc::new(SdkRds { client: sdk }),
            bucket,
            metrics: self.shared.metrics.clone(),
            retry: self.shared.config.retry,
            failpoint: self.shared.config.failpoint.clone(),
        });
        self.shared
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key,
                CachedClient {
                    version,
                    built: Instant::now(),
                    api: api.clone(),
                },
            );
        Ok(Ok((api, fleet)))
    }
}

fn error_policy(obj: Arc<Instance>, err: &reconcile::Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(namespace = ?obj.namespace(), name = %obj.name_any(), error = %err, "reconcile failed");
    Action::requeue(backoff(3, Duration::from_secs(2), Duration::from_secs(30)))
}

/// Label selector of the Secrets this controller writes (and the only ones it caches).
pub use crate::secrets::MANAGED_SECRETS;

/// Run the controller until `shutdown` resolves. `ready` turns true once the caches (Instances,
/// managed Secrets, ProviderConfigs) are synced.
pub async fn run(
    client: kube::Client,
    config: RdsConfig,
    metrics: Arc<RdsMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_secrets(client, config, metrics, ready, shutdown, None).await
}

/// [`run`], reading paved's Secrets from `secrets` (one feed per namespace scope, shared with
/// the claim controller by `paved run`) instead of a watch of its own.
pub async fn run_with_secrets(
    client: kube::Client,
    config: RdsConfig,
    metrics: Arc<RdsMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    secrets: Option<Vec<crate::secrets::SecretFeed>>,
) -> anyhow::Result<()> {
    crate::init_crypto();
    let scopes = crate::secrets::scopes(&config.namespaces);
    let mut feeds = crate::secrets::feeds_or_own(&client, &scopes, secrets);
    let shared = Arc::new(Shared {
        client: client.clone(),
        recorder: {
            let metrics = metrics.clone();
            Recorder::new(
                client.clone(),
                Reporter {
                    controller: "paved-rds".into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            )
            .counting(move || metrics.record_write("event"))
        },
        config: config.clone(),
        metrics,
        fleets: Fleets::default(),
        backoffs: Backoffs::default(),
        latest: Overlay::default(),
        buckets: Buckets::default(),
        clients: Mutex::default(),
        http: client::http_client(),
    });

    // Fan the shutdown signal out to every controller (graceful_shutdown_on wants Sync futures).
    let mut stops = Vec::new();
    let mut stop_rx = Vec::new();
    for _ in &scopes {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        stop_rx.push(rx);
    }
    let shutdown_task = tokio::spawn(async move {
        shutdown.await;
        for tx in stops {
            let _ = tx.send(());
        }
    });

    let mut runs = Vec::new();
    let mut readiness = Vec::new();
    // 0 would mean unbounded in kube-runtime: every queued Instance at once, each holding its
    // object, Secrets and an AWS call in flight. More than 64 buys nothing under the AWS rate.
    let concurrency = config.concurrency.clamp(1, 64);
    for (scope, stop) in scopes.into_iter().zip(stop_rx) {
        let instances: Api<Instance> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let Some(i) = feeds.iter().position(|f| f.scope.namespace == scope) else {
            anyhow::bail!("no Secret cache for namespace scope {scope:?}");
        };
        let feed = feeds.swap_remove(i);
        // One watch per kind: each reflector fills the store the reconciles read and, once the
        // store has an object, passes it on as the Controller's trigger (so a reconcile triggered
        // by a Secret always finds that Secret in the store). What paved never reads
        // (managedFields, kubectl's last-applied annotation) is dropped before it is stored.
        let (instance_store, instance_writer) = reflector::store();
        let instance_stream = watcher(instances, watcher::Config::default())
            .default_backoff()
            .modify(|i: &mut Instance| crate::kube::meta::slim(&mut i.metadata, None))
            .reflect(instance_writer)
            .applied_objects();
        // paved's Secrets: one cache shared with the claim controller (see `crate::secrets`).
        let secret_scope = Arc::clone(&feed.scope);
        let secret_store = secret_scope.store.clone();
        let secret_stream = feed.into_stream().map(Ok::<Secret, watcher::Error>);
        let pcs: Api<ProviderConfig> = Api::all(client.clone());
        let (pc_store, pc_writer) = reflector::store();
        let pc_stream = watcher(pcs, watcher::Config::default())
            .default_backoff()
            .modify(|p: &mut ProviderConfig| crate::kube::meta::slim(&mut p.metadata, None))
            .reflect(pc_writer)
            .touched_objects();
        let controller = Controller::for_stream(instance_stream, instance_store.clone())
            .with_config(ControllerConfig::default().concurrency(concurrency));
        let mapper_store = instance_store.clone();
        let ctx = Arc::new(Ctx {
            shared: shared.clone(),
            secrets: secret_store.clone(),
            provider_configs: pc_store.clone(),
        });
        readiness.push(async move {
            let _ = instance_store.wait_until_ready().await;
            let _ = secret_scope.wait_synced().await;
            let _ = pc_store.wait_until_ready().await;
        });
        let run = controller
            .owns_stream(secret_stream)
            .watches_stream(pc_stream, move |pc: ProviderConfig| {
                // A ProviderConfig changed: look again at the Instances that use it.
                let name = pc.name_any();
                mapper_store
                    .state()
                    .into_iter()
                    .filter(|i| {
                        i.spec
                            .provider_config_ref
                            .as_ref()
                            .map(|r| r.name.as_str())
                            .unwrap_or("default")
                            == name
                    })
                    .map(|i| ObjectRef::from_obj(&*i))
                    .collect::<Vec<_>>()
            })
            .graceful_shutdown_on(stop.map(|_| ()))
            .run(reconcile::reconcile, error_policy, ctx)
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "controller event");
                }
            });
        runs.push(run);
    }
    let ready_flag = ready.clone();
    let mark_ready = async move {
        futures::future::join_all(readiness).await;
        ready_flag.store(true, Ordering::SeqCst);
        tracing::info!("RDS controller caches synced");
        std::future::pending::<()>().await;
    };
    futures::future::select(
        Box::pin(futures::future::join_all(runs)),
        Box::pin(mark_ready),
    )
    .await;
    shutdown_task.abort();
    ready.store(false, Ordering::SeqCst);
    Ok(())
}

/// The object reference used for Events about an Instance.
pub fn instance_ref(obj: &Instance) -> k8s_openapi::api::core::v1::ObjectReference {
    obj.object_ref(&())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use client::{StaticCredentials, parse_credentials_file};

    fn pc(name: &str, endpoint: Option<&str>) -> ProviderConfig {
        let mut v = serde_json::json!({
            "apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
            "metadata": {"name": name},
            "spec": {"credentials": {"source": "Secret", "secretRef": {"name": "creds", "namespace": "ops", "key": "credentials"}}}
        });
        if let Some(e) = endpoint {
            v["spec"]["endpoint"] = serde_json::json!({"url": {"type": "Static", "static": e}});
        }
        serde_json::from_value(v).unwrap()
    }

    fn creds(key_id: &str) -> Option<StaticCredentials> {
        parse_credentials_file(&format!(
            "[default]\naws_access_key_id = {key_id}\naws_secret_access_key = s3cr3t\n"
        ))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// The key of a client for `pc` with the credentials file of `key_id`, as aws_for builds it.
    fn key_of(pc: &ProviderConfig, key_id: &str, region: &str) -> BucketKey {
        let endpoint = provider_config_endpoint(pc).ok().flatten();
        bucket_key(creds(key_id).as_ref(), endpoint.as_deref(), region, no_env)
    }

    #[test]
    fn provider_configs_with_the_same_credentials_share_a_bucket() {
        let (a, b) = (pc("team-a", None), pc("team-b", None));
        assert_eq!(
            key_of(&a, "AKIAEXAMPLE1", "eu-west-1"),
            key_of(&b, "AKIAEXAMPLE1", "eu-west-1")
        );
        // and the key never holds the secret
        let k = format!("{:?}", key_of(&a, "AKIAEXAMPLE1", "eu-west-1"));
        assert!(!k.contains("s3cr3t"), "{k}");
        let buckets = Buckets::default();
        let shared = buckets.get(key_of(&a, "AKIAEXAMPLE1", "eu-west-1"), 8.0);
        let again = buckets.get(key_of(&b, "AKIAEXAMPLE1", "eu-west-1"), 8.0);
        let other = buckets.get(key_of(&b, "AKIAEXAMPLE2", "eu-west-1"), 8.0);
        assert!(Arc::ptr_eq(&shared, &again));
        assert!(!Arc::ptr_eq(&shared, &other));
        // another access key (another account, or not known to be the same): its own bucket
        assert_ne!(
            key_of(&a, "AKIAEXAMPLE1", "eu-west-1"),
            key_of(&b, "AKIAEXAMPLE2", "eu-west-1")
        );
        // RDS limits per region
        assert_ne!(
            key_of(&a, "AKIAEXAMPLE1", "eu-west-1"),
            key_of(&a, "AKIAEXAMPLE1", "eu-west-2")
        );
    }

    #[test]
    fn an_emulator_never_shares_with_aws() {
        let aws = pc("aws", None);
        let moto = pc("moto", Some("http://127.0.0.1:5000/"));
        let moto2 = pc("moto-again", Some("HTTP://127.0.0.1:5000"));
        assert_ne!(
            key_of(&aws, "testing", "us-east-1"),
            key_of(&moto, "testing", "us-east-1")
        );
        assert_eq!(
            key_of(&moto, "testing", "us-east-1"),
            key_of(&moto2, "testing", "us-east-1")
        );
        assert_eq!(key_of(&aws, "testing", "us-east-1").endpoint, "aws");
        // AWS_ENDPOINT_URL(_RDS) counts when the ProviderConfig names none
        let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://moto:5000".to_string());
        assert_eq!(
            bucket_key(None, None, "us-east-1", env).endpoint,
            "http://moto:5000"
        );
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some("http://moto:5000".to_string()),
            "AWS_ENDPOINT_URL_RDS" => Some("http://rds-only:5000".to_string()),
            _ => None,
        };
        assert_eq!(
            bucket_key(None, None, "us-east-1", env).endpoint,
            "http://rds-only:5000"
        );
        assert!(provider_config_endpoint(&pc("x", None)).is_ok());
    }

    #[test]
    fn ambient_credentials_are_keyed_by_what_the_environment_names() {
        // nothing named: one caller, whichever ProviderConfig (or none) leads there
        assert_eq!(
            bucket_key(None, None, "eu-west-1", no_env),
            bucket_key(None, None, "eu-west-1", |_: &str| Some("  ".to_string()))
        );
        assert_eq!(
            bucket_key(None, None, "eu-west-1", no_env).caller,
            Caller::Ambient
        );
        // IRSA: the role's account
        let irsa = |account: &'static str| {
            move |k: &str| {
                (k == "AWS_ROLE_ARN").then(|| format!("arn:aws:iam::{account}:role/paved"))
            }
        };
        assert_eq!(
            bucket_key(None, None, "eu-west-1", irsa("111111111111")).caller,
            Caller::Account("111111111111".into())
        );
        assert_ne!(
            bucket_key(None, None, "eu-west-1", irsa("111111111111")),
            bucket_key(None, None, "eu-west-1", irsa("222222222222"))
        );
        // static keys in the environment win, as in the SDK's chain
        let both = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_string()),
            "AWS_ROLE_ARN" => Some("arn:aws:iam::111111111111:role/paved".to_string()),
            _ => None,
        };
        assert_eq!(
            bucket_key(None, None, "eu-west-1", both).caller,
            Caller::AccessKey("AKIAENV".into())
        );
        // a ProviderConfig's own keys are used instead of the environment's
        assert_eq!(
            bucket_key(creds("AKIASECRET").as_ref(), None, "eu-west-1", both).caller,
            Caller::AccessKey("AKIASECRET".into())
        );
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            account_of_role_arn("arn:aws:iam::123456789012:role/paved").as_deref(),
            Some("123456789012")
        );
        assert_eq!(
            account_of_role_arn("arn:aws-us-gov:iam::123456789012:role/path/to/paved").as_deref(),
            Some("123456789012")
        );
        assert_eq!(
            account_of_role_arn("arn:aws:sts::123456789012:assumed-role/paved/session").as_deref(),
            Some("123456789012")
        );
        for bad in [
            "",
            "arn:aws:iam::12345678901:role/short",
            "arn:aws:iam::1234567890123:role/long",
            "arn:aws:iam::12345678901x:role/letters",
            "arn:aws:iam::123456789012:user/not-a-role",
            "arn:aws:s3:::bucket",
            "not-an-arn:aws:iam::123456789012:role/x",
        ] {
            assert_eq!(account_of_role_arn(bad), None, "{bad}");
        }
    }
}
