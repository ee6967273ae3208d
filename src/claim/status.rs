//! Step 8, write the status: the claim's status computed from what this reconcile found and
//! did (pure: [`next`], [`summarize`], [`deleting`]), written only when it says something new.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::{FIELD_MANAGER, OWN_STATUS_KEYS};
use super::plan::Planned;
use crate::api::PostgreSQLInstance;
use crate::api::claim::{ConnectionDetailsStatus, PostgreSQLInstanceStatus};
use crate::api::common::{
    Condition, ConditionStatus, NameReference, ObjectReference, READY, SYNCED, get_condition,
    set_condition,
};
use crate::compose::{ObservedResource, Readiness};

type Status = PostgreSQLInstanceStatus;

/// What composing found and did, for the status and the Events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Facts {
    /// The Composition used.
    pub composition: String,
    /// Every composed object.
    pub refs: Vec<ObjectReference>,
    /// What is not ready, one line per composed object.
    pub not_ready: Vec<String>,
    /// Some composed object says it is `Unavailable`.
    pub any_unavailable: bool,
    /// Every composed object is ready.
    pub ready: bool,
    /// The claim status fields patches to the claim wrote.
    pub extra: BTreeMap<String, Value>,
    /// The objects applied now, described.
    pub applied: Vec<String>,
    /// The objects deleted now (no longer in the Composition), described.
    pub deleted: Vec<String>,
    /// Keys written to the connection Secret now.
    pub secret_published: Option<usize>,
}

/// The claim status fields from patches to the claim, without those the controller owns.
pub(crate) fn extra(claim_status: &serde_json::Map<String, Value>) -> BTreeMap<String, Value> {
    claim_status
        .iter()
        .filter(|(k, _)| !OWN_STATUS_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The (reason, message) of an object's own `Ready` condition when it is not `True`.
fn own_ready_condition(object: &Value) -> Option<(String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let ready = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(READY))?;
    if ready.get("status").and_then(Value::as_str) == Some("True") {
        return None;
    }
    let s = |k: &str| {
        ready
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let reason = s("reason");
    (!reason.is_empty()).then(|| (reason, s("message")))
}

/// What is not ready, one line per object, and whether any says `Unavailable`. An object's own
/// Ready condition (for an Instance: what RDS says) is preferred to the engine's verdict, as
/// `kubectl describe` of the object would show it. `readiness` overrides the plan's (objects
/// created just now); `observed` holds the objects as last seen or written.
pub(crate) fn summarize(
    planned: &[Planned],
    readiness: &BTreeMap<String, Readiness>,
    observed: &BTreeMap<String, ObservedResource>,
    ns: &str,
) -> (Vec<String>, bool) {
    let mut not_ready = Vec::new();
    let mut any_unavailable = false;
    for p in planned {
        let what = p.describe(ns);
        match readiness.get(&p.resource_name).unwrap_or(&p.readiness) {
            Readiness::Ready => {}
            Readiness::NotReady { reason, message } => {
                let own = observed
                    .get(&p.resource_name)
                    .and_then(|o| own_ready_condition(&o.object));
                let (reason, message) = own.unwrap_or((reason.clone(), message.clone()));
                any_unavailable |= reason == "Unavailable";
                if message.is_empty() {
                    not_ready.push(format!("{what}: {reason}"));
                } else {
                    not_ready.push(format!("{what}: {reason}: {message}"));
                }
            }
            Readiness::NotObserved => not_ready.push(format!("{what}: Creating: not observed yet")),
        }
    }
    (not_ready, any_unavailable)
}

/// The claim's next status: `old` with Synced, Ready and what composing found.
pub(crate) fn next(
    old: &Status,
    outcome: Result<&Facts, &Error>,
    generation: Option<i64>,
    now: &Time,
) -> Status {
    let mut status = old.clone();
    let set = |status: &mut Status, c: Condition| set_condition(&mut status.conditions, c, now);
    match outcome {
        Ok(f) => {
            let synced = Condition::new(
                SYNCED,
                ConditionStatus::True,
                "ReconcileSuccess",
                "",
                generation,
            );
            set(&mut status, synced);
            set(&mut status, ready_condition(old, f, generation));
            status.composition_ref = Some(NameReference {
                name: f.composition.clone(),
            });
            status.resource_refs = f.refs.clone();
            status.extra = f.extra.clone();
            if f.secret_published.is_some() {
                status.connection_details = Some(ConnectionDetailsStatus {
                    last_published_time: Some(now.clone()),
                });
            }
        }
        Err(e) => {
            let synced = Condition::new(
                SYNCED,
                ConditionStatus::False,
                "ReconcileError",
                e.to_string(),
                generation,
            );
            set(&mut status, synced);
            if get_condition(&status.conditions, READY).is_none() {
                let msg = "nothing composed yet: see the Synced condition";
                let ready =
                    Condition::new(READY, ConditionStatus::False, "Creating", msg, generation);
                set(&mut status, ready);
            }
        }
    }
    status
}

/// Ready: `Available`, or why not: `Creating` until the claim has been available, then
/// `Unavailable` (also when a composed object says so).
fn ready_condition(old: &Status, f: &Facts, generation: Option<i64>) -> Condition {
    if f.ready {
        return Condition::new(READY, ConditionStatus::True, "Available", "", generation);
    }
    let was_available = get_condition(&old.conditions, READY)
        .is_some_and(|p| p.status == ConditionStatus::True || p.reason == "Unavailable");
    let reason = if f.any_unavailable || was_available {
        "Unavailable"
    } else {
        "Creating"
    };
    Condition::new(
        READY,
        ConditionStatus::False,
        reason,
        f.not_ready.join("; "),
        generation,
    )
}

/// The status of a claim waiting (Foreground deletion) for its composed objects to go.
pub(crate) fn deleting(
    old: &Status,
    pending: &[String],
    generation: Option<i64>,
    now: &Time,
) -> Status {
    let mut status = old.clone();
    let msg = format!(
        "waiting for composed resources to be deleted: {}",
        pending.join(", ")
    );
    let c = Condition::new(READY, ConditionStatus::False, "Deleting", msg, generation);
    set_condition(&mut status.conditions, c, now);
    status
}

/// Write `new` when it says something `old` does not. `superseded` are the claim's
/// resourceVersions this reconcile has replaced (the cached claim's, and the finalizer write's):
/// until the cache shows something else, the claim's status is the one written here.
pub(crate) async fn write(
    ctx: &Context,
    claim: &PostgreSQLInstance,
    superseded: &[String],
    old: &Status,
    new: &Status,
) -> Result<(), Error> {
    if crate::kube::status::same(old, new, |s| &mut s.conditions) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": PostgreSQLInstance::api_version(&()),
        "kind": PostgreSQLInstance::kind(&()),
        "metadata": {"name": claim.name_any()},
        "status": new,
    });
    ctx.metrics.write("status");
    let ns = claim.namespace().unwrap_or_default();
    let written = Api::<PostgreSQLInstance>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &claim.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .ctx(|| "writing the claim's status".to_string())?;
    ctx.note_status_written(claim, superseded, written.resource_version(), new);
    Ok(())
}
