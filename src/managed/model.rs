//! The RDS data paved works with, independent of aws-sdk-rds: what an instance looks like, what
//! paved asks RDS to do, and how AWS errors are classified.

use std::collections::BTreeMap;
use std::fmt;

/// An RDS DB instance, as DescribeDBInstances reports it (the subset paved uses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbInstance {
    pub identifier: String,
    pub arn: Option<String>,
    pub resource_id: Option<String>,
    pub status: Option<String>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub instance_class: Option<String>,
    pub allocated_storage: Option<i64>,
    pub max_allocated_storage: Option<i64>,
    pub storage_type: Option<String>,
    pub iops: Option<i64>,
    pub storage_encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub db_name: Option<String>,
    pub username: Option<String>,
    pub multi_az: Option<bool>,
    pub publicly_accessible: Option<bool>,
    pub backup_retention_period: Option<i64>,
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    pub deletion_protection: Option<bool>,
    pub auto_minor_version_upgrade: Option<bool>,
    pub parameter_group_name: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub db_subnet_group_name: Option<String>,
    pub address: Option<String>,
    pub port: Option<i32>,
    pub tags: BTreeMap<String, String>,
    pub pending: PendingModifiedValues,
}

/// Changes RDS accepted but has not applied yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingModifiedValues {
    pub instance_class: Option<String>,
    pub allocated_storage: Option<i64>,
    pub engine_version: Option<String>,
    pub backup_retention_period: Option<i64>,
    pub multi_az: Option<bool>,
    pub iops: Option<i64>,
    pub storage_type: Option<String>,
    pub port: Option<i32>,
    pub db_subnet_group_name: Option<String>,
}

impl PendingModifiedValues {
    /// Field name (as in forProvider) to value, for status.atProvider.pendingModifiedValues.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("instanceClass", self.instance_class.clone());
        put(
            "allocatedStorage",
            self.allocated_storage.map(|v| v.to_string()),
        );
        put("engineVersion", self.engine_version.clone());
        put(
            "backupRetentionPeriod",
            self.backup_retention_period.map(|v| v.to_string()),
        );
        put("multiAz", self.multi_az.map(|v| v.to_string()));
        put("iops", self.iops.map(|v| v.to_string()));
        put("storageType", self.storage_type.clone());
        put("port", self.port.map(|v| v.to_string()));
        put("dbSubnetGroupName", self.db_subnet_group_name.clone());
        m
    }
}

impl DbInstance {
    /// The RDS status, lower case ("" when AWS did not say).
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
}

/// RDS statuses in which ModifyDBInstance is accepted and nothing is in flight.
pub fn is_modifiable(status: &str) -> bool {
    matches!(status, "available" | "storage-optimization" | "backing-up")
}

/// RDS statuses that end on their own (paved polls the instance more often while in one).
pub fn is_transitional(status: &str) -> bool {
    matches!(
        status,
        "creating"
            | "modifying"
            | "deleting"
            | "backing-up"
            | "rebooting"
            | "renaming"
            | "resetting-master-credentials"
            | "upgrading"
            | "configuring-enhanced-monitoring"
            | "configuring-iam-database-auth"
            | "configuring-log-exports"
            | "converting-to-vpc"
            | "maintenance"
            | "moving-to-vpc"
            | "starting"
            | "stopping"
            | "storage-optimization"
            | "storage-config-upgrade"
    ) || status.is_empty()
}

/// One page of DescribeDBInstances.
#[derive(Clone, Debug, Default)]
pub struct DescribePage {
    pub instances: Vec<DbInstance>,
    pub marker: Option<String>,
}

/// CreateDBInstance input. The password is only ever held here and in the Secret.
#[derive(Clone, Default)]
pub struct CreateRequest {
    pub identifier: String,
    pub engine: String,
    pub engine_version: Option<String>,
    pub instance_class: String,
    pub allocated_storage: Option<i64>,
    pub max_allocated_storage: Option<i64>,
    pub storage_type: Option<String>,
    pub iops: Option<i64>,
    pub storage_encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub db_name: Option<String>,
    pub username: String,
    pub password: String,
    pub multi_az: Option<bool>,
    pub publicly_accessible: Option<bool>,
    pub db_subnet_group_name: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub parameter_group_name: Option<String>,
    pub backup_retention_period: Option<i64>,
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    pub auto_minor_version_upgrade: Option<bool>,
    pub deletion_protection: Option<bool>,
    pub port: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for CreateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("CreateRequest")
            .field("identifier", &self.identifier)
            .field("engine", &self.engine)
            .field("engine_version", &self.engine_version)
            .field("instance_class", &self.instance_class)
            .field("allocated_storage", &self.allocated_storage)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// A password: cloned and compared like the string it holds, never printed (`Debug` shows
/// `<redacted>`), so that a request logged with `{:?}` cannot leak it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// ModifyDBInstance input: only the fields that drifted, and the master password when it is
/// being rotated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModifyRequest {
    pub identifier: String,
    pub apply_immediately: bool,
    /// A new master password (rotation). RDS applies it asynchronously but at once, whatever
    /// `apply_immediately` says.
    pub master_user_password: Option<Password>,
    pub instance_class: Option<String>,
    pub engine_version: Option<String>,
    pub allow_major_version_upgrade: bool,
    pub allocated_storage: Option<i64>,
    pub max_allocated_storage: Option<i64>,
    pub storage_type: Option<String>,
    pub iops: Option<i64>,
    pub multi_az: Option<bool>,
    pub publicly_accessible: Option<bool>,
    pub backup_retention_period: Option<i64>,
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    pub deletion_protection: Option<bool>,
    pub auto_minor_version_upgrade: Option<bool>,
    pub parameter_group_name: Option<String>,
    pub vpc_security_group_ids: Option<Vec<String>>,
    pub port: Option<i32>,
}

/// The name [`ModifyRequest::fields`] gives the master password.
pub const MASTER_USER_PASSWORD: &str = "masterUserPassword";

impl ModifyRequest {
    /// The forProvider names of the fields this request changes (`masterUserPassword` last,
    /// when the password is rotated).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut f = |set: bool, name: &'static str| {
            if set {
                v.push(name);
            }
        };
        f(self.instance_class.is_some(), "instanceClass");
        f(self.engine_version.is_some(), "engineVersion");
        f(self.allocated_storage.is_some(), "allocatedStorage");
        f(self.max_allocated_storage.is_some(), "maxAllocatedStorage");
        f(self.storage_type.is_some(), "storageType");
        f(self.iops.is_some(), "iops");
        f(self.multi_az.is_some(), "multiAz");
        f(self.publicly_accessible.is_some(), "publiclyAccessible");
        f(
            self.backup_retention_period.is_some(),
            "backupRetentionPeriod",
        );
        f(self.backup_window.is_some(), "backupWindow");
        f(self.maintenance_window.is_some(), "maintenanceWindow");
        f(self.deletion_protection.is_some(), "deletionProtection");
        f(
            self.auto_minor_version_upgrade.is_some(),
            "autoMinorVersionUpgrade",
        );
        f(self.parameter_group_name.is_some(), "parameterGroupName");
        f(self.vpc_security_group_ids.is_some(), "vpcSecurityGroupIds");
        f(self.port.is_some(), "port");
        f(self.master_user_password.is_some(), MASTER_USER_PASSWORD);
        v
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }
}

/// DeleteDBInstance input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    pub identifier: String,
    pub skip_final_snapshot: bool,
    pub final_snapshot_identifier: Option<String>,
    pub delete_automated_backups: Option<bool>,
}

/// How paved reacts to an AWS error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, connection failures: retry with backoff and jitter.
    Transient,
    /// The instance does not exist.
    NotFound,
    /// CreateDBInstance: the identifier is taken.
    AlreadyExists,
    /// The instance is in a state that does not allow the operation: wait.
    InvalidState,
    /// Invalid parameters, quotas, capacity, authorization, ...: needs a human (or a spec change).
    Terminal,
}

/// An error from an RDS call, with the AWS code and message.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("{operation}: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub class: ErrorClass,
    /// The AWS error code (for example `InvalidParameterValue`), or a short description of a
    /// transport failure (`DispatchFailure`, `Timeout`).
    pub code: String,
    pub message: String,
    /// HTTP status, when a response came back.
    pub http_status: Option<u16>,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
        http_status: Option<u16>,
    ) -> Self {
        let code = code.into();
        let class = classify(&code, http_status);
        Self {
            operation,
            class,
            code,
            message: message.into(),
            http_status,
        }
    }

    /// A short label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self.class {
            ErrorClass::Transient if is_throttling(&self.code) => "throttled",
            ErrorClass::Transient => "transient_error",
            ErrorClass::NotFound => "not_found",
            ErrorClass::AlreadyExists => "already_exists",
            ErrorClass::InvalidState => "invalid_state",
            ErrorClass::Terminal => "error",
        }
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "SlowDown"
            | "BandwidthLimitExceeded"
            | "EC2ThrottledException"
            | "PriorRequestNotComplete"
    )
}

/// Classify an AWS error code (and HTTP status).
pub fn classify(code: &str, http_status: Option<u16>) -> ErrorClass {
    if is_throttling(code) {
        return ErrorClass::Transient;
    }
    match code {
        "DBInstanceNotFound" | "DBInstanceNotFoundFault" => return ErrorClass::NotFound,
        "DBInstanceAlreadyExists" | "DBInstanceAlreadyExistsFault" => {
            return ErrorClass::AlreadyExists;
        }
        "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" => {
            return ErrorClass::InvalidState;
        }
        "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "DispatchFailure"
        | "Timeout"
        | "ResponseError" => {
            return ErrorClass::Transient;
        }
        _ => {}
    }
    match http_status {
        Some(s) if s >= 500 => ErrorClass::Transient,
        _ => ErrorClass::Terminal,
    }
}

pub use crate::kube::backoff::exponential as backoff;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn classification() {
        // (code, HTTP status, class)
        let cases = [
            ("Throttling", Some(400), ErrorClass::Transient),
            ("InternalFailure", Some(500), ErrorClass::Transient),
            ("Whatever", Some(503), ErrorClass::Transient),
            ("DBInstanceNotFound", Some(404), ErrorClass::NotFound),
            (
                "DBInstanceAlreadyExists",
                Some(400),
                ErrorClass::AlreadyExists,
            ),
            ("InvalidParameterValue", Some(400), ErrorClass::Terminal),
            ("InstanceQuotaExceeded", Some(400), ErrorClass::Terminal),
            (
                "InsufficientDBInstanceCapacity",
                Some(400),
                ErrorClass::Terminal,
            ),
            ("AccessDenied", Some(403), ErrorClass::Terminal),
            ("DispatchFailure", None, ErrorClass::Transient),
        ];
        for (code, http, class) in cases {
            assert_eq!(classify(code, http), class, "{code} {http:?}");
        }
        assert_eq!(
            AwsError::new("Op", "Throttling", "x", Some(400)).outcome(),
            "throttled"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        for attempt in 1..40 {
            let d = backoff(attempt, base, max);
            assert!(d <= max, "{d:?}");
            let nominal = base.saturating_mul(1u32 << (attempt - 1).min(16)).min(max);
            assert!(d >= nominal / 2, "{attempt}: {d:?} < {nominal:?}/2");
        }
    }

    #[test]
    fn modify_request_never_prints_the_password() {
        let r = ModifyRequest {
            identifier: "db".into(),
            master_user_password: Some(Password("hunter2-hunter2".into())),
            ..Default::default()
        };
        let printed = format!("{r:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert_eq!(r.fields(), vec![MASTER_USER_PASSWORD]);
        assert!(!r.is_empty());
    }

    #[test]
    fn pending_map_names_fields() {
        let p = PendingModifiedValues {
            allocated_storage: Some(50),
            instance_class: Some("db.t3.small".into()),
            ..Default::default()
        };
        let m = p.to_map();
        assert_eq!(m.get("allocatedStorage").map(String::as_str), Some("50"));
        assert_eq!(
            m.get("instanceClass").map(String::as_str),
            Some("db.t3.small")
        );
        assert_eq!(m.len(), 2);
    }
}
