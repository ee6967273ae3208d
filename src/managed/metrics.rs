//! Prometheus metrics of the RDS controller.

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The RDS API operation, e.g. `DescribeDBInstances`.
    pub operation: String,
    /// `success`, `throttled`, `transient_error`, `not_found`, `already_exists`, `invalid_state`,
    /// `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// What was written: one of [`KUBE_WRITES`].
    pub kind: String,
}

/// The kinds of Kubernetes writes the RDS controller makes (label of `paved_rds_kube_writes`).
pub const KUBE_WRITES: [&str; 5] = [
    "instance_metadata",
    "instance_status",
    "password_secret",
    "connection_secret",
    "event",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The managed kind: `Instance`, `SubnetGroup`, `SecurityGroup`, `SecurityGroupRule`,
    /// `ParameterGroup`.
    pub kind: String,
    /// The reason of the Synced=False condition the reconcile wrote (bounded: set by code, e.g.
    /// `AWSError`, `AWSUnavailable`, `ReferenceNotReady`, `ExternalResourceNotOwned`).
    pub reason: String,
    /// AWS's error code (e.g. `InvalidParameterValue`), sanitised ([`aws_code_label`]); `none`
    /// when the failure was not an AWS error.
    pub aws_error_code: String,
}

/// The `aws_error_code` label of a failure that was not an AWS error.
pub const NO_AWS_CODE: &str = "none";
/// The `aws_error_code` label of any code beyond the first [`MAX_AWS_CODES`] distinct ones.
pub const OTHER_AWS_CODE: &str = "Other";
/// Longest AWS error code kept as a label; longer ones are cut.
pub const AWS_CODE_MAX: usize = 64;
/// Distinct AWS error codes kept as label values (AWS's vocabulary is a few hundred codes, and a
/// deployment meets a handful); any further code is counted as [`OTHER_AWS_CODE`].
pub const MAX_AWS_CODES: usize = 100;

/// An AWS error code as a label value: only `[A-Za-z0-9._]` (anything else dropped), at most
/// [`AWS_CODE_MAX`] characters; `none` when nothing is left. Character set and length alone
/// do not bound the number of values a hostile endpoint could send; [`RdsMetrics`] also caps
/// the distinct codes ([`MAX_AWS_CODES`]).
pub fn aws_code_label(code: &str) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
        .take(AWS_CODE_MAX)
        .collect();
    if clean.is_empty() {
        NO_AWS_CODE.to_string()
    } else {
        clean
    }
}

/// The distinct AWS error codes seen so far, up to a bound.
#[derive(Debug, Default)]
struct CodeBook(Mutex<BTreeSet<String>>);

impl CodeBook {
    /// `label` itself when it was seen before or there is room for it, else [`OTHER_AWS_CODE`].
    fn admit(&self, label: String, max: usize) -> String {
        if label == NO_AWS_CODE {
            return label;
        }
        let Ok(mut seen) = self.0.lock() else {
            return OTHER_AWS_CODE.to_string();
        };
        if seen.contains(&label) {
            return label;
        }
        if seen.len() < max {
            seen.insert(label.clone());
            return label;
        }
        OTHER_AWS_CODE.to_string()
    }
}

/// Metrics of the RDS controller.
#[derive(Debug, Default)]
pub struct RdsMetrics {
    /// Every HTTP attempt against the RDS API (retries included), by operation and outcome.
    pub aws_calls: Family<CallLabels, Counter>,
    /// Shared fleet observations (paginated DescribeDBInstances runs, not pages).
    pub fleet_polls: Counter,
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Kubernetes writes (successful or not), by kind.
    pub kube_writes: Family<WriteLabels, Counter>,
    /// Reconciles that ended with Synced=False, by kind, reason and AWS error code.
    pub failures: Family<FailureLabels, Counter>,
    codes: CodeBook,
    /// The `paved_objects` gauge the controllers add their caches to (registered by its
    /// owner, `paved run`; see [`Self::with_objects`]).
    pub objects: crate::kube::object_metrics::ObjectStates,
}

impl RdsMetrics {
    /// Create the metrics and register them as `paved_rds_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("paved_rds");
        sub.register(
            "aws_calls",
            "Calls to the AWS RDS API (each attempt), by operation and outcome",
            m.aws_calls.clone(),
        );
        sub.register(
            "fleet_polls",
            "Shared observations of all RDS instances of one ProviderConfig and region",
            m.fleet_polls.clone(),
        );
        sub.register(
            "reconciles",
            "Reconciles of Instance objects, by result",
            m.reconciles.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Reconciles of managed objects that ended with Synced=False (failed, blocked or waiting), by kind, condition reason and AWS error code",
            m.failures.clone(),
        );
        sub.register(
            "kube_writes",
            "Kubernetes write requests (Instance metadata and status, Secrets, Events), by kind",
            m.kube_writes.clone(),
        );
        m
    }

    /// Count the managed objects into `objects` (the `paved_objects` gauge, registered once by
    /// whoever also gives it to the claim controller).
    pub fn with_objects(mut self, objects: crate::kube::object_metrics::ObjectStates) -> Self {
        self.objects = objects;
        self
    }

    /// Count one Kubernetes write request.
    pub fn record_write(&self, kind: &str) {
        self.write_counter(kind).inc();
    }

    /// Kubernetes writes of `kind` so far.
    pub fn writes(&self, kind: &str) -> u64 {
        self.write_counter(kind).get()
    }

    fn write_counter(&self, kind: &str) -> Counter {
        let labels = WriteLabels {
            kind: kind.to_string(),
        };
        self.kube_writes.get_or_create(&labels).clone()
    }

    /// All Kubernetes writes so far.
    pub fn total_writes(&self) -> u64 {
        KUBE_WRITES.iter().map(|k| self.writes(k)).sum()
    }

    /// Count one AWS call attempt.
    pub fn record_call(&self, operation: &str, outcome: &str) {
        self.call_counter(operation, outcome).inc();
    }

    /// Calls of `operation` so far, whatever their outcome.
    pub fn calls(&self, operation: &str) -> u64 {
        const OUTCOMES: [&str; 7] = [
            "success",
            "throttled",
            "transient_error",
            "not_found",
            "already_exists",
            "invalid_state",
            "error",
        ];
        OUTCOMES
            .iter()
            .map(|o| self.calls_with_outcome(operation, o))
            .sum()
    }

    /// Calls of `operation` with `outcome` so far.
    pub fn calls_with_outcome(&self, operation: &str, outcome: &str) -> u64 {
        self.call_counter(operation, outcome).get()
    }

    fn call_counter(&self, operation: &str, outcome: &str) -> Counter {
        let labels = CallLabels {
            operation: operation.to_string(),
            outcome: outcome.to_string(),
        };
        self.aws_calls.get_or_create(&labels).clone()
    }

    /// All AWS calls so far, every operation and outcome.
    pub fn total_calls(&self) -> u64 {
        OPERATIONS.iter().map(|op| self.calls(op)).sum()
    }

    /// Count one reconcile of a `kind` object that ended with Synced=False for `reason`;
    /// `aws_code`: AWS's error code when an AWS error caused it.
    pub fn record_failure(&self, kind: &str, reason: &str, aws_code: Option<&str>) {
        let code = aws_code.map_or_else(|| NO_AWS_CODE.to_string(), aws_code_label);
        let aws_error_code = self.codes.admit(code, MAX_AWS_CODES);
        self.failure_counter(kind, reason, aws_error_code).inc();
    }

    /// Failed reconciles counted so far with these labels.
    pub fn failures(&self, kind: &str, reason: &str, aws_error_code: &str) -> u64 {
        self.failure_counter(kind, reason, aws_error_code.to_string())
            .get()
    }

    fn failure_counter(&self, kind: &str, reason: &str, aws_error_code: String) -> Counter {
        let labels = FailureLabels {
            kind: kind.to_string(),
            reason: reason.to_string(),
            aws_error_code,
        };
        self.failures.get_or_create(&labels).clone()
    }

    pub(crate) fn record_reconcile(&self, ok: bool) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                result: if ok { "success" } else { "error" }.to_string(),
            })
            .inc();
    }
}

/// The RDS operations paved calls.
pub const OPERATIONS: [&str; 6] = [
    "DescribeDBInstances",
    "CreateDBInstance",
    "ModifyDBInstance",
    "DeleteDBInstance",
    "AddTagsToResource",
    "RemoveTagsFromResource",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aws_codes_are_sanitised() {
        let long = "A".repeat(200);
        let cases = [
            ("InvalidParameterValue", "InvalidParameterValue"),
            ("InvalidSubnetID.NotFound", "InvalidSubnetID.NotFound"),
            ("DBInstanceNotFound_Fault", "DBInstanceNotFound_Fault"),
            ("Bad Code\n{\"x\"=1}", "BadCodex1"),
            ("Ünïcode-Code", "ncodeCode"),
            ("", NO_AWS_CODE),
            ("\"{}", NO_AWS_CODE),
            (long.as_str(), &long[..AWS_CODE_MAX]),
        ];
        for (code, want) in cases {
            assert_eq!(aws_code_label(code), want, "{code:?}");
        }
    }

    #[test]
    fn distinct_codes_are_capped() {
        let book = CodeBook::default();
        assert_eq!(book.admit("A".into(), 2), "A");
        assert_eq!(book.admit("B".into(), 2), "B");
        assert_eq!(book.admit("C".into(), 2), OTHER_AWS_CODE);
        // known ones and "none" are kept after the cap
        assert_eq!(book.admit("A".into(), 2), "A");
        assert_eq!(book.admit(NO_AWS_CODE.into(), 2), NO_AWS_CODE);
    }

    #[test]
    fn failures_are_counted_by_kind_reason_and_code() {
        let mut registry = Registry::default();
        let m = RdsMetrics::new(&mut registry);
        m.record_failure("Instance", "AWSError", Some("InvalidParameterValue"));
        m.record_failure("Instance", "AWSError", Some("InvalidParameterValue"));
        m.record_failure("SubnetGroup", "ReferenceNotReady", None);
        assert_eq!(
            m.failures("Instance", "AWSError", "InvalidParameterValue"),
            2
        );
        assert_eq!(
            m.failures("SubnetGroup", "ReferenceNotReady", NO_AWS_CODE),
            1
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"paved_rds_reconcile_failures_total{kind="Instance",reason="AWSError",aws_error_code="InvalidParameterValue"} 2"#
            ),
            "{text}"
        );
    }
}
