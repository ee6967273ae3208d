//! The one integration-test binary: every suite is a module here (named as its file), so that
//! the harness in `tests/common` and paved's test build are compiled once, not once a suite.
//! One suite: `cargo nextest run --test integration -E 'test(/^rds::/)'` (or
//! `cargo test --test integration rds::`); `make test` runs them all.

#[path = "../common/mod.rs"]
mod common;

mod chaos;
mod claim;
mod crds;
mod e2e;
mod events;
mod lifecycle;
mod network;
mod packaging;
mod parameters;
mod pipeline;
mod rds;
mod rds_transitional;
mod render_cli;
mod run;
mod sandbox;
mod secrets;
mod tenancy;
mod truth;
mod twins;
mod versions;
mod words;
mod xrd;
