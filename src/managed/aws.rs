//! The AWS side of an object: which ProviderConfig, credentials and endpoint it uses, the token
//! bucket its calls draw from, and the guarded RDS client built from them (cached per
//! ProviderConfig and region, rebuilt when the ProviderConfig changes or every 15 minutes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use crate::api::provider_config::{CredentialsSource, EndpointUrlType, ProviderConfig};

use super::client::{self, Guarded, RdsApi, SdkRds, StaticCredentials, TokenBucket};
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

/// The ProviderConfig is unusable: `ProviderConfigError` with `message`.
fn unusable<T>(message: String) -> Result<Outcome<T>, Error> {
    Ok(Outcome::Blocked(Blocked::new(
        "ProviderConfigError",
        message,
    )))
}

/// The clients by (ProviderConfig, region).
pub(crate) type Clients = Mutex<HashMap<(String, String), CachedClient>>;

impl<K: ExternalClient> Ctx<K> {
    /// The guarded RDS client and the fleet cache for an object, or why there is none (the
    /// ProviderConfig is missing or unusable).
    pub(crate) async fn aws_for(&self, obj: &K) -> Result<Outcome<Aws>, Error> {
        let region = obj.region().to_string();
        let explicit = obj.provider_config_ref().map(|r| r.name.clone());
        let name = explicit.clone().unwrap_or_else(|| "default".to_string());
        let pc = self.provider_configs.get(&ObjectRef::new(&name));
        let (key_name, version) = match &pc {
            Some(pc) => (name.clone(), pc.resource_version().unwrap_or_default()),
            None if explicit.is_none() => (AMBIENT.to_string(), String::new()),
            None => return unusable(format!("ProviderConfig {name} not found")),
        };
        let key = (key_name.clone(), region.clone());
        let fleet = self.shared.fleets.get(&key_name, &region);
        if let Some(rds) = self.cached_client(&key, &version) {
            return Ok(Outcome::Ok(Aws { rds, fleet }));
        }
        let (endpoint, credentials) = match &pc {
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

    /// What the clients of the network kinds ([`super::network`]) are built from, resolved as
    /// for the RDS client of [`Self::aws_for`]: the cache key (ProviderConfig name, or the
    /// environment's), the ProviderConfig's resourceVersion, its endpoint and static
    /// credentials, and the token bucket of that account and region.
    pub(crate) async fn provider_settings(
        &self,
        obj: &K,
    ) -> Result<Outcome<super::network::ProviderSettings>, Error> {
        let region = obj.region().to_string();
        let explicit = obj.provider_config_ref().map(|r| r.name.clone());
        let name = explicit.clone().unwrap_or_else(|| "default".to_string());
        let pc = self.provider_configs.get(&ObjectRef::new(&name));
        let (key_name, version) = match &pc {
            Some(pc) => (name.clone(), pc.resource_version().unwrap_or_default()),
            None if explicit.is_none() => (AMBIENT.to_string(), String::new()),
            None => return unusable(format!("ProviderConfig {name} not found")),
        };
        let (endpoint, credentials) = match &pc {
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
        )
        .await;
        let bucket = self
            .shared
            .buckets
            .get(bucket_key, self.shared.config.aws_requests_per_second);
        Arc::new(Guarded {
            inner: Arc::new(SdkRds { client: sdk }),
            bucket,
            metrics: self.shared.metrics.clone(),
            retry: self.shared.config.retry,
            failpoint: self.shared.config.failpoint.clone(),
        })
    }

    /// The endpoint and static credentials a ProviderConfig names.
    async fn settings(
        &self,
        pc: &ProviderConfig,
        obj: &K,
    ) -> Result<Outcome<(Option<String>, Option<StaticCredentials>)>, Error> {
        let endpoint = match provider_config_endpoint(pc) {
            Ok(e) => e,
            Err(msg) => return unusable(msg),
        };
        let credentials = match pc.spec.credentials.source {
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
        pc: &ProviderConfig,
        obj: &K,
    ) -> Result<Outcome<StaticCredentials>, Error> {
        let name = pc.name_any();
        let Some(r) = &pc.spec.credentials.secret_ref else {
            return unusable(format!(
                "ProviderConfig {name}: spec.credentials.secretRef is required with source Secret"
            ));
        };
        let Some(ns) = &r.namespace else {
            return unusable(format!(
                "ProviderConfig {name}: spec.credentials.secretRef.namespace is required"
            ));
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
                "ProviderConfig {name}: Secret {ns}/{} has no key {:?}",
                r.name, r.key
            ));
        };
        match client::parse_credentials_file(&text) {
            Some(c) => Ok(Outcome::Ok(c)),
            None => unusable(format!(
                "ProviderConfig {name}: Secret {ns}/{} key {:?} is not an AWS credentials file with aws_access_key_id and aws_secret_access_key",
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
