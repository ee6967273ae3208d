//! The one harness of the integration suites (the modules of `tests/integration/main.rs`: claim,
//! RDS, end-to-end, run, events, secrets, CRDs, packaging, chaos, ...) and of the scale benchmark (`benches/scale.rs` includes this module
//! by `#[path]`). Everything runs against the real local control plane (`e2e/env.sh up`, which
//! `make test` runs): a real kube-apiserver with etcd and the RDS emulator. Nothing here fakes a
//! component; the fault proxy is a real proxy on real TCP.
//!
//! - [`env`]: the file `e2e/env.sh up` writes, a control plane of a test's own, ports, HTTP GET;
//! - [`cluster`]: clients (admin, least-privilege), CRDs, a namespace per test, applying
//!   objects, kubectl, waits on watches;
//! - [`fixtures`]: the seed's objects, ProviderConfigs, Instances, reading conditions;
//! - [`aws`]: the emulator directly: inspection and a per-region reset;
//! - [`controllers`]: paved's controllers in-process, an RDS test's world, stand-ins for the
//!   RDS controller;
//! - [`process`]: `paved run` as a child process;
//! - [`proxy`]: the fault proxy (RDS) and a TCP pass-through (kube-apiserver);
//! - [`metrics`], [`ready`]: Prometheus text, watching many claims become Ready;
//! - [`rig`]: the chaos suite's world (paved as a process behind the fault proxy);
//! - [`shared`]: objects for the suites of the Event recorder and the Secret cache;
//! - [`chart`]: the Helm chart rendered, its RBAC applied, what the packaging suite asks.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod aws;
pub mod chart;
pub mod cluster;
pub mod controllers;
pub mod env;
pub mod fixtures;
pub mod metrics;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod ready;
pub mod rig;
pub mod shared;

pub use aws::*;
pub use cluster::*;
pub use controllers::*;
pub use env::*;
pub use fixtures::*;
pub use metrics::*;
pub use process::*;
pub use proxy::*;
pub use ready::*;
pub use rig::*;
pub use shared::*;
