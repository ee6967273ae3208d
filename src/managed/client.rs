//! The RDS operations paved uses, as a small trait ([`RdsApi`]), implemented with aws-sdk-rds
//! ([`SdkRds`]) and wrapped by [`Guarded`]: a token bucket per account and region (keyed as
//! [`super::BucketKey`] says, shared by ProviderConfigs with the same credentials), retries with
//! exponential backoff and jitter for throttling and 5xx, a metric per attempt, and failpoints
//! for crash tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures::future::BoxFuture;

use super::metrics::RdsMetrics;
use super::model::{
    AwsError, CreateRequest, DbInstance, DeleteRequest, DescribePage, ErrorClass, ModifyRequest,
    PendingModifiedValues,
};

/// Page size of the fleet observation (the RDS maximum).
pub const PAGE_SIZE: i32 = 100;

/// The RDS operations paved uses.
pub trait RdsApi: Send + Sync {
    /// One page (up to 100 instances) of DescribeDBInstances over the whole account and region.
    fn describe_page<'a>(
        &'a self,
        marker: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DescribePage, AwsError>>;
    /// DescribeDBInstances of one identifier; `None` when it does not exist.
    fn describe<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<DbInstance>, AwsError>>;
    fn create<'a>(&'a self, req: &'a CreateRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>>;
    fn modify<'a>(&'a self, req: &'a ModifyRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>>;
    fn delete<'a>(&'a self, req: &'a DeleteRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>>;
    fn add_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    fn remove_tags<'a>(
        &'a self,
        arn: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>>;
}

// ---------------------------------------------------------------------------------------------
// aws-sdk-rds

/// Static credentials from a ProviderConfig Secret.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Parse an AWS shared-credentials file, `[default]` profile (or the only profile).
pub fn parse_credentials_file(text: &str) -> Option<StaticCredentials> {
    let mut profiles: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::from("default");
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(p) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = p.trim().trim_start_matches("profile ").to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            profiles
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let profile = match profiles.get("default") {
        Some(p) => p,
        None if profiles.len() == 1 => profiles.values().next()?,
        None => return None,
    };
    Some(StaticCredentials {
        access_key_id: profile.get("aws_access_key_id")?.clone(),
        secret_access_key: profile.get("aws_secret_access_key")?.clone(),
        session_token: profile.get("aws_session_token").cloned(),
    })
}

/// The one HTTPS client (rustls + ring) shared by every RDS client.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// How long paved waits for AWS to answer one call when `--aws-timeout` is not given.
pub const DEFAULT_AWS_TIMEOUT: Duration = Duration::from_secs(30);

/// Build an aws-sdk-rds client for one region. `endpoint`: an explicit endpoint URL (otherwise
/// `AWS_ENDPOINT_URL` or AWS's). `credentials`: static keys (otherwise the standard chain). The
/// SDK's own retries are off: [`Guarded`] retries, so that every attempt goes through the token
/// bucket and the metric.
pub async fn sdk_client(
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<StaticCredentials>,
    timeout: Duration,
) -> SdkRds {
    SdkRds::new(&sdk_config(http, region, endpoint, credentials, timeout).await)
}

/// The AWS SDK configuration of [`sdk_client`], shared by the RDS and EC2 clients
/// ([`super::ec2_client::sdk_client`]) of one ProviderConfig and region. `timeout` bounds every
/// call (the SDK's operation and attempt timeouts: its own retries are off, so one call is one
/// attempt); a call without an answer by then fails with `Timeout`, which the object's
/// condition shows as "no answer from <endpoint> within <timeout>".
pub async fn sdk_config(
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<StaticCredentials>,
    timeout: Duration,
) -> aws_config::SdkConfig {
    let timeout = if timeout.is_zero() {
        DEFAULT_AWS_TIMEOUT
    } else {
        timeout
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        );
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            c.session_token,
            None,
            "paved-providerconfig",
        ));
    }
    loader.load().await
}

/// Where an SDK client sends its calls, as messages name it, and how long it waits for an
/// answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The endpoint URL a ProviderConfig (or `AWS_ENDPOINT_URL`) names, or `the AWS RDS API in
    /// <region>`.
    pub endpoint: String,
    /// The operation timeout, when known.
    pub timeout: Option<Duration>,
}

impl Place {
    /// The place of clients built from `config`, for `service` (`RDS`, `EC2`).
    pub fn of(config: &aws_config::SdkConfig, service: &str) -> Self {
        let endpoint = match config.endpoint_url() {
            Some(url) => url.to_string(),
            None => match config.region() {
                Some(r) => format!("the AWS {service} API in {r}"),
                None => format!("the AWS {service} API"),
            },
        };
        let timeout = config.timeout_config().and_then(|t| t.operation_timeout());
        Self { endpoint, timeout }
    }

    /// `within 30 s`, or `within the AWS timeout (--aws-timeout)` when it is not known.
    fn within(&self) -> String {
        match self.timeout {
            Some(t) => format!("within {}", spoken(t)),
            None => "within the AWS timeout (--aws-timeout)".into(),
        }
    }
}

/// A duration as a person says it: `30 s`, `500 ms`, `2 min`.
pub fn spoken(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// [`RdsApi`] over aws-sdk-rds.
#[derive(Clone, Debug)]
pub struct SdkRds {
    pub client: aws_sdk_rds::Client,
    /// Named by error messages.
    pub place: Place,
}

impl SdkRds {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_rds::Client::new(config),
            place: Place::of(config, "RDS"),
        }
    }

    /// AddTagsToResource on `arn`, its error read by `err` (the Instance's classification,
    /// [`sdk_err`], or the network kinds', [`net_sdk_err`]).
    pub(crate) async fn add_tags_to(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
        err: fn(
            &'static str,
            &Place,
            SdkError<
                aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceError,
                HttpResponse,
            >,
        ) -> AwsError,
    ) -> Result<(), AwsError> {
        self.client
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags_of(tags)))
            .send()
            .await
            .map_err(|e| err("AddTagsToResource", &self.place, e))?;
        Ok(())
    }
}

/// What an SDK error says, in plain words: AWS's error code, its message (once), and the HTTP
/// status. Never the SDK's Debug or context dump (`ServiceError { raw: Response { ... SdkBody
/// ...`): a transport failure says what paved could not do and where, a timeout says how long
/// paved waited for whom.
pub(crate) fn sdk_parts<E>(
    e: &SdkError<E, HttpResponse>,
    place: &Place,
) -> (String, String, Option<u16>)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let endpoint = &place.endpoint;
    match e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("Unknown").to_string();
            let message = match ctx.err().message().map(str::trim) {
                Some(m) if !m.is_empty() => without_code(m, &code).to_string(),
                _ => format!("{endpoint} answered HTTP {status} without an error message"),
            };
            (code, message, Some(status))
        }
        SdkError::TimeoutError(_) => (
            "Timeout".into(),
            format!("no answer from {endpoint} {}", place.within()),
            None,
        ),
        SdkError::DispatchFailure(d) => {
            let why = if d.is_timeout() {
                "the connection timed out".to_string()
            } else {
                root_cause(e)
            };
            (
                "DispatchFailure".into(),
                format!("cannot reach {endpoint}: {why}"),
                None,
            )
        }
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            (
                "ResponseError".into(),
                format!("{endpoint} answered HTTP {status} with a response paved cannot read"),
                Some(status),
            )
        }
        _ => (
            "ConstructionFailure".into(),
            format!("cannot build the request: {}", root_cause(e)),
            None,
        ),
    }
}

/// The innermost cause of an error, which names what actually went wrong ("Connection refused
/// (os error 111)"); a cause that reads like a Debug dump is replaced by a plain phrase.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.contains('{') || text.contains("Some(") || text.trim().is_empty() {
        "the connection failed".into()
    } else {
        text
    }
}

/// An AWS message that repeats its code in front (`InvalidParameterValue: Invalid ...`) without
/// it, so that the code is said once.
fn without_code<'m>(message: &'m str, code: &str) -> &'m str {
    message
        .strip_prefix(code)
        .map(|m| m.trim_start_matches([':', ' ', '-']))
        .filter(|m| !m.is_empty())
        .unwrap_or(message)
}

fn sdk_err<E>(operation: &'static str, place: &Place, e: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classified(operation, place, e, |op, code, message, status| {
        AwsError::new(op, code, message, status)
    })
}

/// An SDK error of the network kinds' calls (aws-sdk-rds for DB subnet and parameter groups,
/// aws-sdk-ec2 for security groups and rules) as an [`AwsError`], in the words of
/// [`sdk_parts`] — naming the endpoint the client calls (`place`) — with the network kinds'
/// classification ([`super::guard::net_error`]).
pub(crate) fn net_sdk_err<E>(
    operation: &'static str,
    place: &Place,
    e: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classified(operation, place, e, |op, code, message, status| {
        super::guard::net_error(op, &code, message, status)
    })
}

/// An SDK error in the words of [`sdk_parts`], classified by `classify` when AWS (or the
/// transport) answered; a request that could not be built is terminal.
fn classified<E>(
    operation: &'static str,
    place: &Place,
    e: SdkError<E, HttpResponse>,
    classify: impl FnOnce(&'static str, String, String, Option<u16>) -> AwsError,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (code, message, status) = sdk_parts(&e, place);
    match &e {
        SdkError::ServiceError(_)
        | SdkError::TimeoutError(_)
        | SdkError::DispatchFailure(_)
        | SdkError::ResponseError(_) => classify(operation, code, message, status),
        _ => AwsError {
            operation,
            class: ErrorClass::Terminal,
            code,
            message,
            http_status: None,
        },
    }
}

fn i32_of(operation: &'static str, field: &str, v: Option<i64>) -> Result<Option<i32>, AwsError> {
    v.map(|v| {
        i32::try_from(v).map_err(|_| AwsError {
            operation,
            class: ErrorClass::Terminal,
            code: "InvalidParameterValue".into(),
            message: format!("{field} {v} is out of range"),
            http_status: None,
        })
    })
    .transpose()
}

/// Tags in aws-sdk-rds' shape.
pub(crate) fn rds_tags_of(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// aws-sdk-rds' tags as a map.
pub(crate) fn rds_tags_from(tags: &[Tag]) -> BTreeMap<String, String> {
    tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// AWS tags (key, value) as a map, for either SDK's Tag type: a tag without a key is dropped,
/// one without a value maps to "".
pub(crate) fn tag_map<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// Convert aws-sdk-rds' DBInstance.
pub fn from_sdk(i: &aws_sdk_rds::types::DbInstance) -> DbInstance {
    let s = |v: Option<&str>| v.map(str::to_string);
    let pending = i
        .pending_modified_values()
        .map(|p| PendingModifiedValues {
            instance_class: s(p.db_instance_class()),
            allocated_storage: p.allocated_storage().map(i64::from),
            engine_version: s(p.engine_version()),
            backup_retention_period: p.backup_retention_period().map(i64::from),
            multi_az: p.multi_az(),
            iops: p.iops().map(i64::from),
            storage_type: s(p.storage_type()),
            port: p.port(),
            db_subnet_group_name: s(p.db_subnet_group_name()),
        })
        .unwrap_or_default();
    DbInstance {
        identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
        arn: s(i.db_instance_arn()),
        resource_id: s(i.dbi_resource_id()),
        status: i.db_instance_status().map(str::to_ascii_lowercase),
        engine: s(i.engine()),
        engine_version: s(i.engine_version()),
        instance_class: s(i.db_instance_class()),
        allocated_storage: i.allocated_storage().map(i64::from),
        max_allocated_storage: i.max_allocated_storage().map(i64::from),
        storage_type: s(i.storage_type()),
        iops: i.iops().map(i64::from),
        storage_encrypted: i.storage_encrypted(),
        kms_key_id: s(i.kms_key_id()),
        db_name: s(i.db_name()),
        username: s(i.master_username()),
        multi_az: i.multi_az(),
        publicly_accessible: i.publicly_accessible(),
        backup_retention_period: i.backup_retention_period().map(i64::from),
        backup_window: s(i.preferred_backup_window()),
        maintenance_window: s(i.preferred_maintenance_window()),
        deletion_protection: i.deletion_protection(),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
        parameter_group_name: i
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_string),
        vpc_security_group_ids: i
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        db_subnet_group_name: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        address: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: i
            .endpoint()
            .and_then(|e| e.port())
            .or(i.db_instance_port().filter(|p| *p > 0)),
        tags: rds_tags_from(i.tag_list()),
        pending,
    }
}

fn missing(operation: &'static str) -> AwsError {
    AwsError::new(
        operation,
        "ResponseError",
        "the response did not contain a DBInstance",
        None,
    )
}

/// The settings CreateDBInstance and ModifyDBInstance share, set on either's builder (the SDK
/// gives the two the same setters): written once so that the two requests cannot map a field
/// differently.
macro_rules! shared_settings {
    ($builder:expr, $r:expr, $op:expr) => {
        $builder
            .set_engine_version($r.engine_version.clone())
            .set_allocated_storage(i32_of($op, "allocatedStorage", $r.allocated_storage)?)
            .set_max_allocated_storage(i32_of(
                $op,
                "maxAllocatedStorage",
                $r.max_allocated_storage,
            )?)
            .set_storage_type($r.storage_type.clone())
            .set_iops(i32_of($op, "iops", $r.iops)?)
            .set_multi_az($r.multi_az)
            .set_publicly_accessible($r.publicly_accessible)
            .set_db_parameter_group_name($r.parameter_group_name.clone())
            .set_backup_retention_period(i32_of(
                $op,
                "backupRetentionPeriod",
                $r.backup_retention_period,
            )?)
            .set_preferred_backup_window($r.backup_window.clone())
            .set_preferred_maintenance_window($r.maintenance_window.clone())
            .set_auto_minor_version_upgrade($r.auto_minor_version_upgrade)
            .set_deletion_protection($r.deletion_protection)
    };
}

impl RdsApi for SdkRds {
    fn describe_page<'a>(
        &'a self,
        marker: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DescribePage, AwsError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_db_instances()
                .max_records(PAGE_SIZE)
                .set_marker(marker.map(str::to_string))
                .send()
                .await
                .map_err(|e| sdk_err("DescribeDBInstances", &self.place, e))?;
            Ok(DescribePage {
                instances: out.db_instances().iter().map(from_sdk).collect(),
                marker: super::listing::next_marker(out.marker()),
            })
        })
    }

    fn describe<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<DbInstance>, AwsError>> {
        Box::pin(async move {
            match self
                .client
                .describe_db_instances()
                .db_instance_identifier(identifier)
                .send()
                .await
            {
                Ok(out) => Ok(out
                    .db_instances()
                    .iter()
                    .find(|i| i.db_instance_identifier() == Some(identifier))
                    .map(from_sdk)),
                Err(e) => Err(sdk_err("DescribeDBInstances", &self.place, e)),
            }
        })
    }

    fn create<'a>(&'a self, r: &'a CreateRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        const OP: &str = "CreateDBInstance";
        Box::pin(async move {
            let builder = self
                .client
                .create_db_instance()
                .db_instance_identifier(&r.identifier)
                .engine(&r.engine)
                .db_instance_class(&r.instance_class)
                .set_storage_encrypted(r.storage_encrypted)
                .set_kms_key_id(r.kms_key_id.clone())
                .set_db_name(r.db_name.clone())
                .master_username(&r.username)
                .master_user_password(&r.password)
                .set_db_subnet_group_name(r.db_subnet_group_name.clone())
                .set_vpc_security_group_ids(
                    (!r.vpc_security_group_ids.is_empty())
                        .then(|| r.vpc_security_group_ids.clone()),
                )
                .set_port(r.port);
            let out = shared_settings!(builder, r, OP)
                .set_tags(Some(rds_tags_of(&r.tags)))
                .send()
                .await
                .map_err(|e| sdk_err(OP, &self.place, e))?;
            out.db_instance().map(from_sdk).ok_or_else(|| missing(OP))
        })
    }

    fn modify<'a>(&'a self, r: &'a ModifyRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        const OP: &str = "ModifyDBInstance";
        Box::pin(async move {
            let builder = self
                .client
                .modify_db_instance()
                .db_instance_identifier(&r.identifier)
                .apply_immediately(r.apply_immediately)
                .set_db_instance_class(r.instance_class.clone())
                .set_allow_major_version_upgrade(r.allow_major_version_upgrade.then_some(true))
                .set_vpc_security_group_ids(r.vpc_security_group_ids.clone())
                .set_db_port_number(r.port);
            let out = shared_settings!(builder, r, OP)
                .set_master_user_password(r.master_user_password.as_ref().map(|p| p.0.clone()))
                .send()
                .await
                .map_err(|e| sdk_err(OP, &self.place, e))?;
            out.db_instance().map(from_sdk).ok_or_else(|| missing(OP))
        })
    }

    fn delete<'a>(&'a self, r: &'a DeleteRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        const OP: &str = "DeleteDBInstance";
        Box::pin(async move {
            let out = self
                .client
                .delete_db_instance()
                .db_instance_identifier(&r.identifier)
                .skip_final_snapshot(r.skip_final_snapshot)
                .set_final_db_snapshot_identifier(r.final_snapshot_identifier.clone())
                .set_delete_automated_backups(r.delete_automated_backups)
                .send()
                .await
                .map_err(|e| sdk_err(OP, &self.place, e))?;
            out.db_instance().map(from_sdk).ok_or_else(|| missing(OP))
        })
    }

    fn add_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.add_tags_to(arn, tags, sdk_err))
    }

    fn remove_tags<'a>(
        &'a self,
        arn: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .remove_tags_from_resource()
                .resource_name(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_err("RemoveTagsFromResource", &self.place, e))?;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// token bucket

/// A token bucket: `rate` requests per second, bursts of up to `rate` (at least 1). Waiters are
/// served in order. A throttling answer from AWS empties the bucket (slowing the whole account
/// and region down for about a second), which is what the RDS documentation asks clients to do.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            8.0
        };
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            state: tokio::sync::Mutex::new((burst, Instant::now())),
        }
    }

    /// Wait for one token.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let (tokens, last) = *state;
            let tokens =
                (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
            if tokens >= 1.0 {
                *state = (tokens - 1.0, now);
                return;
            }
            *state = (tokens, now);
            let wait = Duration::from_secs_f64(((1.0 - tokens) / self.rate).clamp(0.001, 60.0));
            tokio::time::sleep(wait).await;
        }
    }

    /// AWS said "slow down": drop to no tokens.
    pub async fn penalize(&self) {
        let mut state = self.state.lock().await;
        state.0 = state.0.min(0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// guard: rate limit, retry, metrics, failpoints

/// Where a failpoint can stop the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailpointSite {
    /// Identifier and password are persisted; CreateDBInstance not sent yet.
    BeforeCreate,
    /// CreateDBInstance succeeded; nothing recorded about it yet.
    AfterCreate,
    /// A ModifyDBInstance carrying a new master password succeeded; the connection Secret
    /// still publishes the old one.
    AfterPasswordModify,
}

/// A test hook run at a [`FailpointSite`] with the identifier concerned. A hook that never
/// completes freezes the controller there, so that a test can kill it at that exact point.
pub type Failpoint = Arc<dyn Fn(FailpointSite, &str) -> BoxFuture<'static, ()> + Send + Sync>;

/// Retry policy of [`Guarded`] for throttling and 5xx answers.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

/// [`RdsApi`] with the token bucket, retries, metrics and failpoints around another one.
pub struct Guarded {
    pub inner: Arc<dyn RdsApi>,
    pub bucket: Arc<TokenBucket>,
    pub metrics: Arc<RdsMetrics>,
    pub retry: RetryPolicy,
    pub failpoint: Option<Failpoint>,
}

impl Guarded {
    async fn call<'a, T, F>(&'a self, operation: &'static str, f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> BoxFuture<'a, Result<T, AwsError>>,
        T: Outcome,
    {
        // A call that got no answer is not tried again within this reconcile: each try waits
        // the whole timeout, and the object must say so now, not after four of them. Its
        // backoff retries it.
        let limits = (&*self.bucket, &*self.metrics, &self.retry);
        super::guard::retried(limits, operation, T::outcome, false, f).await
    }
}

/// Outcome label of a successful call.
trait Outcome {
    fn outcome(&self) -> &'static str {
        "success"
    }
}
impl Outcome for DescribePage {}
impl Outcome for DbInstance {}
impl Outcome for () {}
impl Outcome for Option<DbInstance> {
    fn outcome(&self) -> &'static str {
        if self.is_some() {
            "success"
        } else {
            "not_found"
        }
    }
}

impl RdsApi for Guarded {
    fn describe_page<'a>(
        &'a self,
        marker: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DescribePage, AwsError>> {
        Box::pin(self.call("DescribeDBInstances", move || {
            self.inner.describe_page(marker)
        }))
    }

    fn describe<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<DbInstance>, AwsError>> {
        Box::pin(self.call("DescribeDBInstances", move || {
            Box::pin(async move {
                match self.inner.describe(identifier).await {
                    Err(e) if e.class == ErrorClass::NotFound => Ok(None),
                    other => other,
                }
            })
        }))
    }

    fn create<'a>(&'a self, req: &'a CreateRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        Box::pin(async move {
            if let Some(fp) = &self.failpoint {
                fp(FailpointSite::BeforeCreate, &req.identifier).await;
            }
            let r = self
                .call("CreateDBInstance", move || self.inner.create(req))
                .await;
            if r.is_ok()
                && let Some(fp) = &self.failpoint
            {
                fp(FailpointSite::AfterCreate, &req.identifier).await;
            }
            r
        })
    }

    fn modify<'a>(&'a self, req: &'a ModifyRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        Box::pin(async move {
            let r = self
                .call("ModifyDBInstance", move || self.inner.modify(req))
                .await;
            if r.is_ok()
                && req.master_user_password.is_some()
                && let Some(fp) = &self.failpoint
            {
                fp(FailpointSite::AfterPasswordModify, &req.identifier).await;
            }
            r
        })
    }

    fn delete<'a>(&'a self, req: &'a DeleteRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        Box::pin(self.call("DeleteDBInstance", move || self.inner.delete(req)))
    }

    fn add_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.call("AddTagsToResource", move || self.inner.add_tags(arn, tags)))
    }

    fn remove_tags<'a>(
        &'a self,
        arn: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.call("RemoveTagsFromResource", move || {
            self.inner.remove_tags(arn, keys)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::fake::FakeRds;

    fn guarded(fail: u32, code: &'static str, status: u16) -> (Guarded, Arc<RdsMetrics>) {
        let metrics = Arc::new(RdsMetrics::default());
        let g = Guarded {
            inner: Arc::new(FakeRds::account(0, "available").failing_pages(fail, code, status)),
            bucket: Arc::new(TokenBucket::new(1000.0)),
            metrics: metrics.clone(),
            retry: RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            failpoint: None,
        };
        (g, metrics)
    }

    #[tokio::test]
    async fn throttling_is_retried_and_counted() {
        let (g, m) = guarded(2, "Throttling", 400);
        assert!(g.describe_page(None).await.is_ok());
        assert_eq!(m.calls_with_outcome("DescribeDBInstances", "throttled"), 2);
        assert_eq!(m.calls_with_outcome("DescribeDBInstances", "success"), 1);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let (g, m) = guarded(10, "InternalFailure", 500);
        let e = g.describe_page(None).await.err();
        assert_eq!(e.map(|e| e.class), Some(ErrorClass::Transient));
        assert_eq!(m.calls("DescribeDBInstances"), 3);
    }

    #[tokio::test]
    async fn terminal_errors_are_not_retried() {
        let (g, m) = guarded(10, "InvalidParameterValue", 400);
        let e = g.describe_page(None).await.err();
        assert_eq!(e.map(|e| e.class), Some(ErrorClass::Terminal));
        assert_eq!(m.calls("DescribeDBInstances"), 1);
    }

    #[tokio::test]
    async fn a_call_without_an_answer_is_not_tried_again() {
        let (g, m) = guarded(10, "Timeout", 0);
        let e = g.describe_page(None).await.err();
        assert_eq!(e.map(|e| e.code), Some("Timeout".to_string()));
        assert_eq!(m.calls("DescribeDBInstances"), 1);
    }

    #[tokio::test]
    async fn not_found_is_none() {
        let (g, m) = guarded(0, "", 200);
        assert_eq!(g.describe("x").await, Ok(None));
        assert_eq!(m.calls_with_outcome("DescribeDBInstances", "not_found"), 1);
    }

    #[tokio::test]
    async fn bucket_limits_rate() {
        let b = TokenBucket::new(20.0);
        let start = Instant::now();
        for _ in 0..30 {
            b.acquire().await;
        }
        // 20 from the burst, 10 more at 20/s: about half a second.
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "{:?}",
            start.elapsed()
        );
    }

    #[allow(clippy::unwrap_used)]
    mod plain_words {
        use super::super::*;
        use aws_sdk_rds::operation::create_db_instance::CreateDBInstanceError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        type E = SdkError<CreateDBInstanceError, HttpResponse>;

        fn raw(status: u16, body: &str) -> HttpResponse {
            HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(body.to_string()),
            )
        }

        fn service(code: Option<&str>, message: Option<&str>, status: u16) -> E {
            let mut meta = ErrorMetadata::builder();
            if let Some(c) = code {
                meta = meta.code(c);
            }
            if let Some(m) = message {
                meta = meta.message(m);
            }
            SdkError::service_error(
                CreateDBInstanceError::generic(meta.build()),
                raw(
                    status,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>Invalid storage size</Message></Error><RequestId>5f6e</RequestId></ErrorResponse>",
                ),
            )
        }

        fn place() -> Place {
            Place {
                endpoint: "http://127.0.0.1:4566".into(),
                timeout: Some(Duration::from_secs(30)),
            }
        }

        #[test]
        fn sdk_errors_read_as_code_and_message_once() {
            let refused = std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            );
            let cases: Vec<(E, &str, &str, &str)> = vec![
                (
                    service(
                        Some("InvalidParameterValue"),
                        Some("Invalid storage size"),
                        400,
                    ),
                    "InvalidParameterValue",
                    "Invalid storage size",
                    "InvalidParameterValue: Invalid storage size",
                ),
                (
                    service(
                        Some("InvalidParameterCombination"),
                        Some("InvalidParameterCombination: Cannot find version 99 for postgres"),
                        400,
                    ),
                    "InvalidParameterCombination",
                    "Cannot find version 99 for postgres",
                    "InvalidParameterCombination: Cannot find version 99 for postgres",
                ),
                (
                    service(Some("InternalFailure"), None, 500),
                    "InternalFailure",
                    "http://127.0.0.1:4566 answered HTTP 500 without an error message",
                    "InternalFailure: http://127.0.0.1:4566 answered HTTP 500 without an error message",
                ),
                (
                    SdkError::timeout_error(
                        "operation timeout (all attempts including retries) occurred after 30s",
                    ),
                    "Timeout",
                    "no answer from http://127.0.0.1:4566 within 30 s",
                    "Timeout: no answer from http://127.0.0.1:4566 within 30 s",
                ),
                (
                    SdkError::dispatch_failure(ConnectorError::io(Box::new(refused))),
                    "DispatchFailure",
                    "cannot reach http://127.0.0.1:4566: Connection refused (os error 111)",
                    "DispatchFailure: cannot reach http://127.0.0.1:4566: Connection refused (os error 111)",
                ),
                (
                    SdkError::response_error("invalid XML", raw(502, "<html>Bad gateway</html>")),
                    "ResponseError",
                    "http://127.0.0.1:4566 answered HTTP 502 with a response paved cannot read",
                    "ResponseError: http://127.0.0.1:4566 answered HTTP 502 with a response paved cannot read",
                ),
            ];
            for (i, (e, code, message, shown)) in cases.into_iter().enumerate() {
                let before = format!("{e:?}");
                let err = sdk_err("CreateDBInstance", &place(), e);
                assert_eq!(err.code, code, "case {i}");
                assert_eq!(err.message, message, "case {i}");
                let text = err.to_string();
                assert_eq!(text, format!("CreateDBInstance: {shown}"), "case {i}");
                for bad in ["{", "Some(", "SdkBody", "ServiceError", "raw:"] {
                    assert!(!text.contains(bad), "case {i}: {text}");
                }
                assert_eq!(text.matches(code).count(), 1, "case {i}: {text}");
                // the dump this replaces
                assert!(before.contains('{'), "case {i}: {before}");
            }
        }

        #[test]
        fn a_timeout_names_the_endpoint_or_the_region() {
            let e: E = SdkError::timeout_error("timed out");
            let unknown = Place {
                endpoint: "http://127.0.0.1:4566".into(),
                timeout: None,
            };
            let err = sdk_err("DescribeDBInstances", &unknown, e);
            assert_eq!(
                err.message,
                "no answer from http://127.0.0.1:4566 within the AWS timeout (--aws-timeout)"
            );
            assert_eq!(err.class, ErrorClass::Transient);
            // The network kinds' calls say the same, classified as theirs.
            let e: E = SdkError::timeout_error("timed out");
            let net = net_sdk_err("DescribeSecurityGroups", &place(), e);
            assert_eq!(
                net.to_string(),
                "DescribeSecurityGroups: Timeout: no answer from http://127.0.0.1:4566 within 30 s"
            );
            assert_eq!(net.class, ErrorClass::Transient);
            let config = aws_config::SdkConfig::builder()
                .region(aws_config::Region::new("eu-west-1"))
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_timeout(Duration::from_millis(2500))
                        .build(),
                )
                .build();
            assert_eq!(
                Place::of(&config, "RDS"),
                Place {
                    endpoint: "the AWS RDS API in eu-west-1".into(),
                    timeout: Some(Duration::from_millis(2500)),
                }
            );
            assert_eq!(spoken(Duration::from_millis(2500)), "2.5 s");
            assert_eq!(spoken(Duration::from_secs(30)), "30 s");
            assert_eq!(spoken(Duration::from_secs(120)), "2 min");
            assert_eq!(spoken(Duration::from_millis(300)), "300 ms");
        }
    }

    #[test]
    fn credentials_file() {
        let c = parse_credentials_file(
            "[default]\naws_access_key_id = AKIA\naws_secret_access_key=secret\n",
        );
        assert_eq!(c.as_ref().map(|c| c.access_key_id.as_str()), Some("AKIA"));
        assert_eq!(
            c.as_ref().map(|c| c.secret_access_key.as_str()),
            Some("secret")
        );
        assert!(parse_credentials_file("[a]\nx=1\n[b]\ny=2").is_none());
        assert!(!format!("{c:?}").contains("secret"));
    }
}
