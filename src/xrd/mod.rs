//! CompositeResourceDefinitions: claim kinds the platform team defines.
//!
//! - [`synth`] (pure): an XRD → the kind paved serves ([`ServedKind`]) and its CRD.
//! - [`validate`] (pure): an object against an OpenAPI v3 schema, with defaults, every error at
//!   once (`paved render --xrd`, and the check of existing claims when a schema changes).
//! - [`controller`]: creates and keeps current the CRD of every XRD (server-side apply), writes
//!   the XRD's conditions, holds an XRD's deletion while claims of its kind exist, and tells the
//!   claim controller which kinds are served ([`controller::Served`]).

pub mod controller;
pub mod synth;
pub mod validate;

pub use synth::{ServedKind, SynthError, Synthesized, synthesize};
