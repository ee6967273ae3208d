//! The validate step of the Composition controller: the verdict of
//! [`crate::composition_feedback::check`] is written as the Composition's `Valid` condition
//! only when it differs from what the Composition already says (no write when nothing changed),
//! with a Warning Event when it turns (or stays, with a new problem) invalid and a Normal one
//! when it turns valid.

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::error::Error;
use crate::api::Composition;
use crate::api::common::{get_condition, set_condition};
use crate::composition_feedback::{VALID, check};
use crate::kube::events::Recorder;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Field manager of the `Valid` condition (and the Events' reporter).
pub const MANAGER: &str = "paved-composition";

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

/// The Events' reference to a (cluster-scoped) Composition, with the namespace the Event is
/// published in (see [`events_namespace`] for why).
fn regarding(c: &Composition, namespace: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    let mut r = c.object_ref(&());
    r.namespace = Some(namespace.to_string());
    r
}

/// Write the Composition's `Valid` condition if it changed, and its Events in `events_namespace`.
pub async fn write(
    c: &Composition,
    api: &Api<Composition>,
    recorder: &Recorder,
    events_namespace: &str,
) -> Result<(), Error> {
    let verdict = check(c);
    let old = c.status.clone().unwrap_or_default();
    let was = get_condition(&old.conditions, VALID);
    let new = verdict.condition(c.meta().generation);
    if was.is_some_and(|w| {
        w.status == new.status
            && w.reason == new.reason
            && w.message == new.message
            && w.observed_generation == new.observed_generation
    }) {
        return Ok(());
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
    api.patch_status(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::of("writing the Valid condition", &name))?;
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
        if let Err(e) = recorder.publish(&ev, &regarding(c, events_namespace)).await {
            tracing::warn!(object = %name, namespace = %events_namespace, error = %crate::kube::error::error_text(&e), "could not publish the Event about the Composition (its Valid condition says the same)");
        }
    } else if verdict.valid && was.is_some_and(|w| w.status != new.status) {
        recorder
            .emit(
                &regarding(c, events_namespace),
                EventType::Normal,
                "Valid",
                "Validate",
                verdict.message.clone(),
            )
            .await;
    }
    Ok(())
}
