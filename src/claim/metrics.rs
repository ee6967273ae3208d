//! Prometheus metrics of the claim controller (`paved_claim_*`). Labels are bounded: outcomes,
//! error categories and write operations, never object names or error text.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Bounded CamelCase category (`CompositionNotFound`, `KindNotServed`, `ApiError`, the
    /// composition engine's categories, ...).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply` (composed object), `delete` (composed object), `status`, `secret`,
    /// `secret_delete`, `finalizer`, `event` or `revision_ref` (a Manual claim pinned to the
    /// newest CompositionRevision).
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// `object` (a composed object) or `secret`: GETs a reconcile sent because its watch
    /// caches could not answer; `revision`: the CompositionRevision a Manual claim reads.
    pub kind: &'static str,
}

/// Metrics of the claim controller.
#[derive(Debug)]
pub struct ClaimMetrics {
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Failed reconciles by category.
    pub errors: Family<ErrorLabels, Counter>,
    /// Writes to the Kubernetes API by operation.
    pub kube_writes: Family<WriteLabels, Counter>,
    /// Direct reads (cache misses) by kind.
    pub kube_reads: Family<ReadLabels, Counter>,
    /// Seconds from a claim's creationTimestamp to its first Ready=True.
    pub time_to_ready: Histogram,
    writes_total: AtomicU64,
    reconciles_tx: watch::Sender<u64>,
    /// The `paved_objects` gauge the controller adds its claim caches to (registered by its
    /// owner, `paved run`; see [`Self::with_objects`]).
    pub objects: crate::kube::object_metrics::ObjectStates,
}

impl ClaimMetrics {
    /// Create the metrics and register them as `paved_claim_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            kube_writes: Family::default(),
            kube_reads: Family::default(),
            // 1 s .. ~9 h
            time_to_ready: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            writes_total: AtomicU64::new(0),
            reconciles_tx: watch::channel(0).0,
            objects: Default::default(),
        };
        let sub = registry.sub_registry_with_prefix("paved_claim");
        sub.register(
            "reconciles",
            "Reconciles of PostgreSQLInstance claims, by result",
            m.reconciles.clone(),
        );
        sub.register(
            "reconcile_errors",
            "Failed claim reconciles, by error category",
            m.errors.clone(),
        );
        sub.register(
            "kube_writes",
            "Writes the claim controller sent to the Kubernetes API, by operation",
            m.kube_writes.clone(),
        );
        sub.register(
            "kube_reads",
            "GETs the claim controller sent because its watch caches could not answer, by kind",
            m.kube_reads.clone(),
        );
        sub.register_with_unit(
            "time_to_ready",
            "Time from a claim's creation to its first Ready=True",
            Unit::Seconds,
            m.time_to_ready.clone(),
        );
        m
    }

    /// Count the claims into `objects` (the `paved_objects` gauge, registered once by whoever
    /// also gives it to the managed-resource controller).
    pub fn with_objects(mut self, objects: crate::kube::object_metrics::ObjectStates) -> Self {
        self.objects = objects;
        self
    }

    /// Count one write to the Kubernetes API.
    pub fn write(&self, operation: &'static str) {
        self.kube_writes
            .get_or_create(&WriteLabels { operation })
            .inc();
        self.writes_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one direct read (a cache miss).
    pub fn read(&self, kind: &'static str) {
        self.kube_reads.get_or_create(&ReadLabels { kind }).inc();
    }

    /// Every write counted so far (all operations).
    pub fn writes_total(&self) -> u64 {
        self.writes_total.load(Ordering::Relaxed)
    }

    /// Count one finished reconcile.
    pub fn reconciled(&self, error_reason: Option<&'static str>) {
        let result = if error_reason.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .get_or_create(&ReconcileLabels { result })
            .inc();
        if let Some(reason) = error_reason {
            self.errors.get_or_create(&ErrorLabels { reason }).inc();
        }
        self.reconciles_tx.send_modify(|n| *n += 1);
    }

    /// Finished reconciles so far (all results).
    pub fn reconciles_total(&self) -> u64 {
        *self.reconciles_tx.borrow()
    }

    /// A receiver that changes on every finished reconcile: lets tests wait for reconciles
    /// without sleeping.
    pub fn subscribe_reconciles(&self) -> watch::Receiver<u64> {
        self.reconciles_tx.subscribe()
    }
}
