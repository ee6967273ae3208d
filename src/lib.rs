//! paved: self-service PostgreSQL on AWS RDS for Kubernetes, reading Crossplane's YAML.
//!
//! - [`api`]: the CRD types (serde + schemars), from which `crds/` is generated.
//! - [`crdgen`]: renders every CRD as YAML (`paved crds`).
//! - [`kube`]: plumbing both controllers share (metadata, write overlay, backoff, synced
//!   signals, finalizers, Events); [`events`] is [`kube::events`].
//! - [`composition`]: the Composition controller, one watch of Compositions whose pipeline
//!   validates each one ([`composition_feedback`], pure: its `Valid` condition) and then keeps
//!   its CompositionRevisions up to date ([`revisions`], pure: one for every distinct spec).
//! - [`secrets`]: the one cache of paved's Secrets both controllers read.
//! - [`xrd`]: CompositeResourceDefinitions, served as claim CRDs.
#![forbid(unsafe_code)]

pub mod api;
pub mod claim;
pub mod compose;
pub mod composition;
pub mod composition_feedback;
pub mod conversion;
pub mod crdgen;
pub mod kube;
pub mod leader;
pub mod managed;
pub mod render;
pub mod revisions;
pub mod run;
pub mod schema;
pub mod secrets;
pub mod xrd;

pub use crate::kube::events;
/// The managed-resource controller under its first name (tests and scripts use `paved::rds`).
pub use crate::managed as rds;

/// Choose rustls' crypto provider (ring) for the whole process. kube and the AWS SDK both use
/// rustls; without an explicit choice the first TLS connection panics. Safe to call many times.
pub fn init_crypto() {
    // An Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
