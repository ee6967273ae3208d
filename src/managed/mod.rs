//! Managed resources: the lifecycle written once, generic over the kind, and one external
//! client per AWS kind. The first kind is the RDS `Instance` (`rds.aws.upbound.io`).
//!
//! - [`lifecycle`]: pause, management policies, finalizer and external-name, backoff gate,
//!   ownership, Ready/Synced conditions, status write, Events, release. The reconcile entry,
//!   `reconcile::<K>`.
//! - [`kind`]: what the lifecycle needs of a kind ([`kind::Kind`]) and its steps against AWS
//!   ([`kind::ExternalClient`]).
//! - [`outcome`]: the typed results of a step (`Step`, `Blocked`, `Outcome`).
//! - [`decide`]: the lifecycle's decisions, pure and table-tested: where a reconcile starts
//!   (paused, apply, orphan, never created, delete), what to do once the external resource is
//!   observed (create, missing, not owned, manage), with its drift (up to date, observe only,
//!   refused, update), and on the delete path (gone, not owned, wait, unprotect, protected,
//!   delete).
//! - [`object`]: [`object::ManagedObject`], the fields of a managed object outside
//!   `spec.forProvider` (policies, deletion policy, ProviderConfig, connection Secret,
//!   conditions) that the decisions read.
//! - [`instance`]: the Instance's steps against AWS (observe, create, update, delete) and its pure
//!   parts (identifier checks, the create request, status.atProvider, Ready from the RDS status).
//! - [`password`], [`connection`]: the master password (generation, rotation) and the connection
//!   Secret.
//! - [`aws`]: ProviderConfig → credentials, endpoint, token bucket ([`aws::BucketKey`]) and the
//!   guarded client.
//! - [`client`]: the small trait over the RDS operations paved uses ([`client::RdsApi`]), its
//!   aws-sdk-rds implementation, and the guard around it (token bucket, retries with backoff and
//!   jitter, a metric per attempt, failpoints for crash tests).
//! - [`observe`]: shared observation — one paginated DescribeDBInstances per (ProviderConfig,
//!   region) per poll interval feeds every Instance.
//! - [`diff`]: spec against AWS — what to modify, what cannot change, which tags to fix.
//! - [`naming`]: deterministic identifiers, passwords, connection URIs.
//! - [`controller`]: watches, queues and shared state; [`config`]: its settings.
//!
//! Adding a kind: its API types (with an entry in `api::managed::MANAGED_KINDS`), one file next
//! to [`instance`] implementing [`kind::Kind`] and [`kind::ExternalClient`], one registration line
//! in [`controller::run_with_secrets`], and tests (see docs/architecture.md).

pub mod aws;
pub mod client;
pub mod config;
pub mod connection;
pub mod controller;
pub mod decide;
pub mod diff;
pub mod ec2_client;
pub mod error;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod group;
pub mod guard;
pub(crate) mod held;
pub mod instance;
pub mod kind;
pub mod lifecycle;
pub mod listing;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod naming;
#[cfg(test)]
pub(crate) mod net_fake;
pub mod network;
pub mod object;
pub mod observe;
pub mod outcome;
pub mod parameter_group;
pub mod password;
pub mod refs;
pub mod resolve;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet_group;

pub use client::{Failpoint, FailpointSite, RetryPolicy};
pub use config::{FIELD_MANAGER, RdsConfig};
pub use controller::{run, run_with_secrets};
pub use error::Error;
pub use metrics::RdsMetrics;

/// Label selector of the Secrets this controller writes (and the only ones it caches).
pub use crate::secrets::MANAGED_SECRETS;

/// The object reference used for Events about an Instance.
pub fn instance_ref(
    obj: &crate::api::instance::Instance,
) -> k8s_openapi::api::core::v1::ObjectReference {
    kube::Resource::object_ref(obj, &())
}
