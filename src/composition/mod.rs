//! The Composition controller: one watch and one cache of every Composition, and for each change
//! the Composition's pipeline, in order:
//! 1. validate ([`validate`]): the verdict of the pure check ([`crate::composition_feedback`],
//!    the same checks `paved render` runs) becomes its `Valid` condition, written only when it
//!    differs, with an Event when it turns (or stays, with a new problem) invalid or turns valid;
//! 2. revisions ([`revisions`]): its CompositionRevisions brought up to date, after the pure
//!    [`crate::revisions::step`] (one LIST by label, at most one write).
//!
//! Each step of I/O lives in its own file here; the decisions stay pure in their modules.

pub mod error;
pub mod revisions;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;

pub use error::Error;
pub use validate::events_namespace;

use crate::api::{Composition, CompositionRevision};
use crate::kube::events::Recorder;

struct Ctx {
    compositions: Api<Composition>,
    revisions: Api<CompositionRevision>,
    recorder: Recorder,
    /// Where the Events about Compositions go ([`events_namespace`]).
    events_namespace: String,
}

/// Validate every Composition and keep its revisions up to date, as it is applied, until
/// `shutdown` resolves; Events in [`events_namespace`].
pub async fn run(
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    run_in(client, events_namespace(), shutdown).await
}

/// [`run`], with the Events about Compositions in `events_namespace`.
pub async fn run_in(
    client: kube::Client,
    events_namespace: String,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let compositions: Api<Composition> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        compositions: compositions.clone(),
        revisions: Api::all(client.clone()),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: validate::MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        events_namespace,
    });
    Controller::new(compositions, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "composition");
            }
            std::future::ready(())
        })
        .await;
    Ok(())
}

fn error_policy(c: Arc<Composition>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(object = %c.name_any(), error = %e, "Composition not brought up to date (retrying)");
    Action::requeue(Duration::from_secs(10))
}

/// Validate the Composition, then bring its revisions up to date.
async fn reconcile(c: Arc<Composition>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    validate::write(&c, &ctx.compositions, &ctx.recorder, &ctx.events_namespace).await?;
    revisions::bring_up_to_date(&c, &ctx.revisions).await?;
    Ok(Action::await_change())
}
