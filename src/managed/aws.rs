//! The AWS side of an object: which ProviderConfig, credentials and endpoint it uses, the token
//! bucket its calls draw from, and the guarded RDS client built from them (cached per
//! ProviderConfig and region, rebuilt when the ProviderConfig changes or every 15 minutes).
//!
//! Tenancy: `spec.providerConfigRef` names the cluster-scoped aws.upbound.io ProviderConfig, or
//! with `kind` the aws.m.upbound.io ClusterProviderConfig or a namespaced ProviderConfig of the
//! Instance's own namespace. A cluster-scoped one's namespaceSelector is checked against the
//! Instance's Namespace before anything else (its Secret is not read, no cached client of it is
//! handed out, no AWS call is made); a namespaced one must take its credentials from a Secret in
//! its own namespace. With no ProviderConfig at all paved refuses, unless started with
//! `--allow-pod-identity`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use crate::api::common::ProviderConfigKind;
use crate::api::provider_config::{
    ClusterProviderConfig, CredentialsSource, EndpointConfig, EndpointUrlType,
    NamespacedProviderConfig, ProviderConfig, ProviderCredentials,
};

use super::client::{self, Guarded, RdsApi, StaticCredentials, TokenBucket};
use super::controller::Ctx;
use super::error::{Error, kube_err};
use super::kind::ExternalClient;
use super::observe::Fleet;
use super::outcome::{Blocked, Outcome};

/// The AWS side of one object: its guarded client and its fleet cache.
pub(crate) struct Aws {
    pub rds: Arc<dyn RdsApi>,
    pub fleet: Arc<Fleet>,
}

pub(crate) struct CachedClient {
    version: String,
    built: Instant,
    api: Arc<dyn RdsApi>,
}

/// Rebuild clients (re-reading credential Secrets) this often.
const CLIENT_TTL: Duration = Duration::from_secs(15 * 60);

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

/// The endpoint URL a ProviderConfig (`label`, as conditions name it) asks for (`None`: the
/// environment's or AWS's). `Err(message)`: the ProviderConfig is invalid.
fn endpoint_url(label: &str, endpoint: Option<&EndpointConfig>) -> Result<Option<String>, String> {
    match endpoint {
        Some(e) if e.url.type_ == EndpointUrlType::Static => match &e.url.static_ {
            Some(u) => Ok(Some(u.clone())),
            None => Err(format!(
                "{label}: spec.endpoint.url.static is required with type Static"
            )),
        },
        _ => Ok(None),
    }
}

/// The ProviderConfig is unusable: `ProviderConfigError` with `message`.
fn unusable<T>(message: String) -> Result<Outcome<T>, Error> {
    blocked("ProviderConfigError", message)
}

fn blocked<T>(reason: &'static str, message: String) -> Result<Outcome<T>, Error> {
    Ok(Outcome::Blocked(Blocked::new(reason, message)))
}

/// Whether a label selector matches `labels` (`Err`: the selector is invalid, with why).
/// matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) must all hold; an empty
/// selector matches everything.
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let labels_hold = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let mut expressions_hold = true;
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        let holds = match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions key {:?}: operator {} needs values",
                    e.key, e.operator
                ));
            }
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions key {:?}: operator {} takes no values",
                    e.key, e.operator
                ));
            }
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => {
                return Err(format!(
                    "matchExpressions key {:?}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                    e.key
                ));
            }
        };
        expressions_hold &= holds;
    }
    Ok(labels_hold && expressions_hold)
}

/// The clients by (ProviderConfig, region).
pub(crate) type Clients = Mutex<HashMap<(String, String), CachedClient>>;

/// The ProviderConfig an Instance uses, whatever its kind, as far as the connection needs it.
struct Resolved {
    /// How conditions name it: `ProviderConfig team-a`, `ClusterProviderConfig team-a`,
    /// `ProviderConfig team-a in namespace apps (aws.m.upbound.io)`.
    label: String,
    /// The fleet and client cache key (distinct per kind: names never hold `/`).
    key: String,
    version: String,
    credentials: ProviderCredentials,
    endpoint: Option<EndpointConfig>,
    namespace_selector: Option<LabelSelector>,
    /// A namespaced ProviderConfig's namespace: its credentials Secret must be there.
    own_namespace: Option<String>,
}

impl Resolved {
    fn from_legacy(pc: &ProviderConfig) -> Self {
        let name = pc.name_any();
        Self {
            label: format!("ProviderConfig {name}"),
            key: name,
            version: pc.resource_version().unwrap_or_default(),
            credentials: pc.spec.credentials.clone(),
            endpoint: pc.spec.endpoint.clone(),
            namespace_selector: pc.spec.namespace_selector.clone(),
            own_namespace: None,
        }
    }
}

/// Why an Instance that names no ProviderConfig is refused.
fn no_provider_config_message() -> String {
    "no ProviderConfig: spec.providerConfigRef names none and there is no ProviderConfig named \
     default. paved does not use its own AWS identity for an Instance unless it was started \
     with --allow-pod-identity; name a ProviderConfig the platform team gave this namespace"
        .to_string()
}

impl<K: ExternalClient> Ctx<K> {
    /// The guarded RDS client and the fleet cache for an Instance, or why there is none (the
    /// ProviderConfig is missing, unusable, or not for this namespace). A ProviderConfig whose
    /// namespaceSelector does not match the Instance's namespace is refused before its
    /// credentials are read or a cached client of it is handed out.
    pub(crate) async fn aws_for(&self, obj: &K) -> Result<Outcome<Aws>, Error> {
        let region = obj.region().to_string();
        let (resolved, key_name, version) = match self.allowed_provider_config(obj).await? {
            Outcome::Ok(r) => r,
            Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
        };
        let key = (key_name.clone(), region.clone());
        let fleet = self.shared.fleets.get(&key_name, &region);
        if let Some(rds) = self.cached_client(&key, &version) {
            return Ok(Outcome::Ok(Aws { rds, fleet }));
        }
        let (endpoint, credentials) = match &resolved {
            None => (None, None),
            Some(pc) => match self.settings(pc, obj).await? {
                Outcome::Ok(s) => s,
                Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
            },
        };
        let rds = self.build_client(&region, endpoint, credentials).await;
        self.shared
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key,
                CachedClient {
                    version,
                    built: Instant::now(),
                    api: rds.clone(),
                },
            );
        Ok(Outcome::Ok(Aws { rds, fleet }))
    }

    /// The ProviderConfig of `obj` ([`Self::resolve_provider_config`]) once its
    /// namespaceSelector admits the object, with the cache key's name and the resourceVersion
    /// (for paved's own identity: [`AMBIENT`] and none).
    async fn allowed_provider_config(
        &self,
        obj: &K,
    ) -> Result<Outcome<(Option<Resolved>, String, String)>, Error> {
        let resolved = match self.resolve_provider_config(obj).await? {
            Outcome::Ok(r) => r,
            Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
        };
        if let Some(pc) = &resolved
            && let Outcome::Blocked(b) = self.namespace_allowed(pc, obj).await?
        {
            return Ok(Outcome::Blocked(b));
        }
        let (key_name, version) = match &resolved {
            Some(pc) => (pc.key.clone(), pc.version.clone()),
            None => (AMBIENT.to_string(), String::new()),
        };
        Ok(Outcome::Ok((resolved, key_name, version)))
    }

    /// The ProviderConfig `spec.providerConfigRef` names (`Ok(None)`: none at all, and paved
    /// may use its own identity).
    async fn resolve_provider_config(&self, obj: &K) -> Result<Outcome<Option<Resolved>>, Error> {
        let reference = obj.provider_config_ref();
        let kind = reference.and_then(|r| r.kind);
        let explicit = reference.map(|r| r.name.clone());
        match kind {
            None => {
                let name = explicit.clone().unwrap_or_else(|| "default".to_string());
                match self.provider_configs.get(&ObjectRef::new(&name)) {
                    Some(pc) => Ok(Outcome::Ok(Some(Resolved::from_legacy(&pc)))),
                    None if explicit.is_some() => {
                        unusable(format!("ProviderConfig {name} not found"))
                    }
                    None if self.shared.config.allow_pod_identity => Ok(Outcome::Ok(None)),
                    None => blocked("NoProviderConfig", no_provider_config_message()),
                }
            }
            Some(ProviderConfigKind::ClusterProviderConfig) => {
                let name = explicit.unwrap_or_default();
                let api: Api<ClusterProviderConfig> = Api::all(self.shared.client.clone());
                let pc = api
                    .get_opt(&name)
                    .await
                    .map_err(kube_err("reading the ClusterProviderConfig", obj))?;
                let Some(pc) = pc else {
                    return unusable(format!("ClusterProviderConfig {name} not found"));
                };
                Ok(Outcome::Ok(Some(Resolved {
                    label: format!("ClusterProviderConfig {name}"),
                    key: format!("ClusterProviderConfig/{name}"),
                    version: pc.resource_version().unwrap_or_default(),
                    credentials: pc.spec.credentials,
                    endpoint: pc.spec.endpoint,
                    namespace_selector: pc.spec.namespace_selector,
                    own_namespace: None,
                })))
            }
            Some(ProviderConfigKind::ProviderConfig) => {
                let name = explicit.unwrap_or_default();
                let ns = obj.namespace().unwrap_or_default();
                let label = format!("ProviderConfig {name} in namespace {ns} (aws.m.upbound.io)");
                let api: Api<NamespacedProviderConfig> =
                    Api::namespaced(self.shared.client.clone(), &ns);
                let pc = api
                    .get_opt(&name)
                    .await
                    .map_err(kube_err("reading the namespaced ProviderConfig", obj))?;
                let Some(pc) = pc else {
                    return unusable(format!("{label} not found"));
                };
                if pc.spec.credentials.source != CredentialsSource::Secret {
                    return unusable(format!(
                        "{label}: credentials.source must be Secret: a namespaced ProviderConfig cannot use paved's own AWS identity (ask the platform team for a ClusterProviderConfig)"
                    ));
                }
                Ok(Outcome::Ok(Some(Resolved {
                    label,
                    key: format!("ProviderConfig/{ns}/{name}"),
                    version: pc.resource_version().unwrap_or_default(),
                    credentials: pc.spec.credentials,
                    endpoint: pc.spec.endpoint,
                    namespace_selector: None,
                    own_namespace: Some(ns),
                })))
            }
        }
    }

    /// Refused (ProviderConfigNotAllowed) when the ProviderConfig's namespaceSelector does not
    /// match the labels of the Instance's namespace.
    async fn namespace_allowed(&self, pc: &Resolved, obj: &K) -> Result<Outcome<()>, Error> {
        let Some(selector) = &pc.namespace_selector else {
            return Ok(Outcome::Ok(()));
        };
        if selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(|m| m.is_empty())
        {
            return Ok(Outcome::Ok(()));
        }
        let ns = obj.namespace().unwrap_or_default();
        let namespaces: Api<Namespace> = Api::all(self.shared.client.clone());
        let namespace = namespaces.get_opt(&ns).await.map_err(kube_err(
            "reading the Instance's Namespace (for the ProviderConfig's namespaceSelector)",
            obj,
        ))?;
        let labels = namespace
            .and_then(|n| n.metadata.labels)
            .unwrap_or_default();
        match selector_matches(selector, &labels) {
            Ok(true) => Ok(Outcome::Ok(())),
            Ok(false) => blocked(
                "ProviderConfigNotAllowed",
                format!(
                    "{} may not be used from namespace {ns}: its spec.namespaceSelector does not match the namespace's labels (the platform team decides which namespaces may use which ProviderConfig)",
                    pc.label
                ),
            ),
            Err(e) => unusable(format!("{}: spec.namespaceSelector: {e}", pc.label)),
        }
    }

    /// What the clients of the network kinds ([`super::network`]) are built from, resolved as
    /// for the RDS client of [`Self::aws_for`] (the same ProviderConfig kinds, namespaceSelector
    /// and pod-identity rules): the cache key, the ProviderConfig's resourceVersion, its endpoint
    /// and static credentials, and the token bucket of that account and region.
    pub(crate) async fn provider_settings(
        &self,
        obj: &K,
    ) -> Result<Outcome<super::network::ProviderSettings>, Error> {
        let region = obj.region().to_string();
        let (resolved, key_name, version) = match self.allowed_provider_config(obj).await? {
            Outcome::Ok(r) => r,
            Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
        };
        let (endpoint, credentials) = match &resolved {
            None => (None, None),
            Some(pc) => match self.settings(pc, obj).await? {
                Outcome::Ok(s) => s,
                Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
            },
        };
        let bucket = self.shared.buckets.get(
            bucket_key(credentials.as_ref(), endpoint.as_deref(), &region, |k| {
                std::env::var(k).ok()
            }),
            self.shared.config.aws_requests_per_second,
        );
        Ok(Outcome::Ok(super::network::ProviderSettings {
            key_name,
            version,
            region,
            endpoint,
            credentials,
            bucket,
        }))
    }

    fn cached_client(&self, key: &(String, String), version: &str) -> Option<Arc<dyn RdsApi>> {
        let clients = self
            .shared
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        clients
            .get(key)
            .filter(|c| c.version == version && c.built.elapsed() < CLIENT_TTL)
            .map(|c| c.api.clone())
    }

    async fn build_client(
        &self,
        region: &str,
        endpoint: Option<String>,
        credentials: Option<StaticCredentials>,
    ) -> Arc<dyn RdsApi> {
        let bucket_key = bucket_key(credentials.as_ref(), endpoint.as_deref(), region, |k| {
            std::env::var(k).ok()
        });
        let sdk = client::sdk_client(
            self.shared.http.clone(),
            region,
            endpoint.as_deref(),
            credentials,
            self.shared.config.aws_timeout,
        )
        .await;
        let bucket = self
            .shared
            .buckets
            .get(bucket_key, self.shared.config.aws_requests_per_second);
        let inner: Arc<dyn RdsApi> = match &self.shared.config.rds_api {
            Some(api) => api.clone(),
            None => Arc::new(sdk),
        };
        Arc::new(Guarded {
            inner,
            bucket,
            metrics: self.shared.metrics.clone(),
            retry: self.shared.config.retry,
            failpoint: self.shared.config.failpoint.clone(),
        })
    }

    /// The endpoint and static credentials a ProviderConfig names.
    async fn settings(
        &self,
        pc: &Resolved,
        obj: &K,
    ) -> Result<Outcome<(Option<String>, Option<StaticCredentials>)>, Error> {
        let endpoint = match endpoint_url(&pc.label, pc.endpoint.as_ref()) {
            Ok(e) => e,
            Err(msg) => return unusable(msg),
        };
        let credentials = match pc.credentials.source {
            CredentialsSource::Secret => match self.secret_credentials(pc, obj).await? {
                Outcome::Ok(c) => Some(c),
                Outcome::Blocked(b) => return Ok(Outcome::Blocked(b)),
            },
            _ => None,
        };
        Ok(Outcome::Ok((endpoint, credentials)))
    }

    /// The credentials file in the Secret a ProviderConfig with source Secret names.
    async fn secret_credentials(
        &self,
        pc: &Resolved,
        obj: &K,
    ) -> Result<Outcome<StaticCredentials>, Error> {
        let name = &pc.label;
        let Some(r) = &pc.credentials.secret_ref else {
            return unusable(format!(
                "{name}: spec.credentials.secretRef is required with source Secret"
            ));
        };
        let ns = match (&pc.own_namespace, &r.namespace) {
            (Some(own), Some(ns)) if own != ns => {
                return unusable(format!(
                    "{name}: spec.credentials.secretRef.namespace must be {own}: a namespaced ProviderConfig reads credentials from its own namespace only"
                ));
            }
            (Some(own), _) => own,
            (None, Some(ns)) => ns,
            (None, None) => {
                return unusable(format!(
                    "{name}: spec.credentials.secretRef.namespace is required"
                ));
            }
        };
        let secrets: Api<Secret> = Api::namespaced(self.shared.client.clone(), ns);
        let secret = secrets.get_opt(&r.name).await.map_err(kube_err(
            "reading the ProviderConfig credentials Secret",
            obj,
        ))?;
        let text = secret
            .and_then(|s| s.data)
            .and_then(|d| d.get(&r.key).cloned())
            .map(|b| String::from_utf8_lossy(&b.0).to_string());
        let Some(text) = text else {
            return unusable(format!(
                "{name}: Secret {ns}/{} has no key {:?}",
                r.name, r.key
            ));
        };
        match client::parse_credentials_file(&text) {
            Some(c) => Ok(Outcome::Ok(c)),
            None => unusable(format!(
                "{name}: Secret {ns}/{} key {:?} is not an AWS credentials file with aws_access_key_id and aws_secret_access_key",
                r.name, r.key
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::client::parse_credentials_file;
    use super::*;

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
        let endpoint = endpoint_url("pc", pc.spec.endpoint.as_ref()).ok().flatten();
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
        assert!(endpoint_url("x", pc("x", None).spec.endpoint.as_ref()).is_ok());
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

    fn selector(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn namespace_selectors() {
        let team_a = labels(&[("team", "a"), ("env", "prod")]);
        let team_b = labels(&[("team", "b")]);
        let by_label = selector(serde_json::json!({"matchLabels": {"team": "a"}}));
        assert_eq!(selector_matches(&by_label, &team_a), Ok(true));
        assert_eq!(selector_matches(&by_label, &team_b), Ok(false));
        assert_eq!(selector_matches(&by_label, &labels(&[])), Ok(false));
        assert_eq!(
            selector_matches(&selector(serde_json::json!({})), &team_b),
            Ok(true)
        );
        let exprs = selector(serde_json::json!({"matchExpressions": [
            {"key": "team", "operator": "In", "values": ["a", "c"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "env", "operator": "Exists"},
            {"key": "quarantined", "operator": "DoesNotExist"}
        ]}));
        assert_eq!(selector_matches(&exprs, &team_a), Ok(true));
        assert_eq!(selector_matches(&exprs, &team_b), Ok(false));
        let quarantined = labels(&[("team", "a"), ("env", "prod"), ("quarantined", "")]);
        assert_eq!(selector_matches(&exprs, &quarantined), Ok(false));
        // labels and expressions must both hold
        let both = selector(serde_json::json!({"matchLabels": {"team": "a"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}));
        assert_eq!(selector_matches(&both, &team_a), Ok(false));
        // NotIn holds for an absent label, as in Kubernetes
        let not_in = selector(serde_json::json!({"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["prod"]}]}));
        assert_eq!(selector_matches(&not_in, &team_b), Ok(true));
        assert_eq!(selector_matches(&not_in, &team_a), Ok(false));
        // invalid selectors are errors, never a match
        for bad in [
            serde_json::json!({"matchExpressions": [{"key": "team", "operator": "In", "values": []}]}),
            serde_json::json!({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]}),
            serde_json::json!({"matchExpressions": [{"key": "team", "operator": "Gt", "values": ["1"]}]}),
        ] {
            assert!(
                selector_matches(&selector(bad.clone()), &team_a).is_err(),
                "{bad}"
            );
        }
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
