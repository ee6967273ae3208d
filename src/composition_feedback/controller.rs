//! The I/O of Composition feedback: a watch of Compositions; each one's verdict
//! ([`super::check`]) is written as its `Valid` condition only when it differs from what the
//! Composition already says (no write when nothing changed), with a Warning Event when it turns
//! (or stays, with a new problem) invalid.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::Composition;
use crate::api::common::{get_condition, set_condition};
use crate::kube::events::Recorder;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Field manager of the `Valid` condition.
pub const MANAGER: &str = "paved-composition";

struct Ctx {
    api: Api<Composition>,
    recorder: Recorder,
}

/// Why writing a Composition's status failed (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(
    "writing the status of Composition {name}: {}",
    crate::kube::error::error_text(source)
)]
pub struct Error {
    name: String,
    #[source]
    source: kube::Error,
}

/// Validate every Composition, as it is applied, until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let api: Api<Composition> = Api::all(client.clone());
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        recorder,
    });
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "composition feedback");
            }
            std::future::ready(())
        })
        .await;
    Ok(())
}

fn error_policy(c: Arc<Composition>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(object = %c.name_any(), error = %e, "Composition feedback failed");
    Action::requeue(Duration::from_secs(10))
}

/// The Events' reference to a (cluster-scoped) Composition, in namespace `default`: API servers
/// before 1.22 refuse an events.k8s.io Event whose regarding object has no namespace ("does not
/// match event.namespace"). `kubectl get events -n default --field-selector
/// regarding.name=<composition>` lists them.
fn regarding(c: &Composition) -> k8s_openapi::api::core::v1::ObjectReference {
    let mut r = c.object_ref(&());
    r.namespace.get_or_insert_with(|| "default".to_string());
    r
}

async fn reconcile(c: Arc<Composition>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let verdict = super::check(&c);
    let generation = c.meta().generation;
    let old = c.status.clone().unwrap_or_default();
    let was = get_condition(&old.conditions, super::VALID);
    let new = verdict.condition(generation);
    if was.is_some_and(|w| {
        w.status == new.status
            && w.reason == new.reason
            && w.message == new.message
            && w.observed_generation == new.observed_generation
    }) {
        return Ok(Action::await_change());
    }
    let mut status = old.clone();
    set_condition(
        &mut status.conditions,
        new.clone(),
        &Time(jiff::Timestamp::now()),
    );
    let name = c.name_any();
    let body = json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "status": status,
    });
    ctx.api
        .patch_status(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| Error {
            name: name.clone(),
            source,
        })?;
    let changed_problem = was.is_none_or(|w| w.reason != new.reason || w.message != new.message);
    if !verdict.valid && changed_problem {
        tracing::warn!(object = %name, reason = verdict.reason, message = %verdict.message, "Composition is not valid");
        let ev = kube::runtime::events::Event {
            type_: EventType::Warning,
            reason: verdict.reason.into(),
            note: Some(verdict.message.clone()),
            action: "Validate".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &regarding(&c)).await {
            tracing::debug!(object = %name, error = %crate::kube::error::error_text(&e), "could not publish event");
        }
    } else if verdict.valid && was.is_some_and(|w| w.status != new.status) {
        ctx.recorder
            .emit(
                &regarding(&c),
                EventType::Normal,
                "Valid",
                "Validate",
                verdict.message.clone(),
            )
            .await;
    }
    Ok(Action::await_change())
}
