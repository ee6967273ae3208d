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
    /// Where the Events about Compositions go ([`events_namespace`]).
    events_namespace: String,
}

/// The namespace of the Events about (cluster-scoped) Compositions: paved's own, from the
/// downward API (`POD_NAMESPACE`, set by the chart and the kustomize base), else `default`.
///
/// Why paved's own namespace: paved may create Events there in either RBAC shape of the chart
/// (with `watchNamespaces` set, paved has no right to Events in `default`). The API server
/// accepts an Event about a cluster-scoped object only if its `regarding.namespace` is the
/// Event's own namespace (an empty one is accepted in `kube-system` only, 1.20; `default` too
/// on later versions), so the reference names that namespace. `kubectl describe composition`
/// selects Events whose `involvedObject.namespace` is empty and therefore does not list these;
/// it does show the `Valid` condition, and `kubectl get events -n <paved's namespace>
/// --field-selector involvedObject.name=<composition>` lists the Events.
pub fn events_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
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

/// Validate every Composition, as it is applied, until `shutdown` resolves; Events in
/// [`events_namespace`].
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
        events_namespace,
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

/// The Events' reference to a (cluster-scoped) Composition, with the namespace the Event is
/// published in (see [`events_namespace`] for why).
fn regarding(c: &Composition, namespace: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    let mut r = c.object_ref(&());
    r.namespace = Some(namespace.to_string());
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
        if let Err(e) = ctx
            .recorder
            .publish(&ev, &regarding(&c, &ctx.events_namespace))
            .await
        {
            tracing::warn!(object = %name, namespace = %ctx.events_namespace, error = %crate::kube::error::error_text(&e), "could not publish the Event about the Composition (its Valid condition says the same)");
        }
    } else if verdict.valid && was.is_some_and(|w| w.status != new.status) {
        ctx.recorder
            .emit(
                &regarding(&c, &ctx.events_namespace),
                EventType::Normal,
                "Valid",
                "Validate",
                verdict.message.clone(),
            )
            .await;
    }
    Ok(Action::await_change())
}
