//! Prometheus metrics of the RDS controller.

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
            "kube_writes",
            "Kubernetes write requests (Instance metadata and status, Secrets, Events), by kind",
            m.kube_writes.clone(),
        );
        m
    }

    /// Count one Kubernetes write request.
    pub fn record_write(&self, kind: &str) {
        self.kube_writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Kubernetes writes of `kind` so far.
    pub fn writes(&self, kind: &str) -> u64 {
        self.kube_writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
            })
            .get()
    }

    /// All Kubernetes writes so far.
    pub fn total_writes(&self) -> u64 {
        KUBE_WRITES.iter().map(|k| self.writes(k)).sum()
    }

    /// Count one AWS call attempt.
    pub fn record_call(&self, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&CallLabels {
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
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
        self.aws_calls
            .get_or_create(&CallLabels {
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .get()
    }

    /// All AWS calls so far, every operation and outcome.
    pub fn total_calls(&self) -> u64 {
        OPERATIONS.iter().map(|op| self.calls(op)).sum()
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
