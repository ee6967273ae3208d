//! Step 8, write the status: the claim's status computed from what this reconcile found and
//! did (pure: [`next`], [`summarize`], [`deleting`]), written only when it says something new.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::{FIELD_MANAGER, OWN_STATUS_KEYS};
use super::object::Claim;
use super::plan::Planned;
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
    /// The engine's warnings (ignored Required patches in mode Pipeline, a connection Secret
    /// outside the claim's namespace). Never secret values.
    pub warnings: Vec<String>,
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
    claim: &Claim,
    superseded: &[String],
    old: &Status,
    new: &Status,
) -> Result<(), Error> {
    if crate::kube::status::same(old, new, |s| &mut s.conditions) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": claim.kind.api_version(),
        "kind": claim.kind.kind,
        "metadata": {"name": claim.name_any()},
        "status": new,
    });
    ctx.metrics.write("status");
    let ns = claim.namespace().unwrap_or_default();
    let written =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &ns, &claim.api_resource())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use super::super::builders::{INSTANCE, NS, observed, rendered, status};
    use super::super::choose::SelectError;
    use super::super::plan::{Action, Planned};
    use super::*;
    use serde_json::json;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1000).unwrap())
    }

    fn facts(ready: bool, not_ready: &[&str], any_unavailable: bool) -> Facts {
        Facts {
            composition: "pg".into(),
            ready,
            not_ready: not_ready.iter().map(|s| s.to_string()).collect(),
            any_unavailable,
            ..Default::default()
        }
    }

    /// (Synced status and reason, Ready status, reason and message) of a status.
    fn conditions(s: &Status) -> (Option<(bool, String)>, Option<(bool, String, String)>) {
        let c = |t| get_condition(&s.conditions, t);
        (
            c(SYNCED).map(|c| (c.status == ConditionStatus::True, c.reason.clone())),
            c(READY).map(|c| {
                (
                    c.status == ConditionStatus::True,
                    c.reason.clone(),
                    c.message.clone(),
                )
            }),
        )
    }

    #[test]
    fn ready_and_synced_from_facts() {
        let fresh = Status::default();
        let was_ready = status(
            Some((true, "ReconcileSuccess", "")),
            Some((true, "Available", "")),
        );
        let error = Error::Select(SelectError::NoneForType { ty: "t".into() });
        // (old, outcome, Synced, Ready)
        let cases: Vec<(
            Status,
            Result<Facts, &Error>,
            (bool, &str),
            (bool, &str, String),
        )> = vec![
            (
                fresh.clone(),
                Ok(facts(true, &[], false)),
                (true, "ReconcileSuccess"),
                (true, "Available", String::new()),
            ),
            (
                fresh.clone(),
                Ok(facts(false, &["a: Creating", "b: X"], false)),
                (true, "ReconcileSuccess"),
                (false, "Creating", "a: Creating; b: X".into()),
            ),
            (
                was_ready.clone(),
                Ok(facts(false, &["a: X"], false)),
                (true, "ReconcileSuccess"),
                (false, "Unavailable", "a: X".into()),
            ),
            (
                fresh.clone(),
                Ok(facts(false, &["a: Unavailable"], true)),
                (true, "ReconcileSuccess"),
                (false, "Unavailable", "a: Unavailable".into()),
            ),
            // Unavailable stays Unavailable until Ready again.
            (
                status(None, Some((false, "Unavailable", "a"))),
                Ok(facts(false, &["a: X"], false)),
                (true, "ReconcileSuccess"),
                (false, "Unavailable", "a: X".into()),
            ),
            (
                fresh.clone(),
                Err(&error),
                (false, "ReconcileError"),
                (
                    false,
                    "Creating",
                    "nothing composed yet: see the Synced condition".into(),
                ),
            ),
            // An error keeps the Ready condition the claim had.
            (
                was_ready.clone(),
                Err(&error),
                (false, "ReconcileError"),
                (true, "Available", String::new()),
            ),
        ];
        for (i, (old, outcome, synced, ready)) in cases.into_iter().enumerate() {
            let new = next(&old, outcome.as_ref().map_err(|e| *e), Some(1), &now());
            let (s, r) = conditions(&new);
            assert_eq!(s, Some((synced.0, synced.1.to_string())), "case {i}");
            assert_eq!(r, Some((ready.0, ready.1.to_string(), ready.2)), "case {i}");
        }
    }

    #[test]
    fn composing_records_what_it_did() {
        let mut f = facts(true, &[], false);
        f.refs = vec![ObjectReference {
            api_version: INSTANCE.into(),
            kind: "Instance".into(),
            name: "db-rds".into(),
            namespace: Some(NS.into()),
        }];
        f.extra = [("endpoint".to_string(), json!("db.example.com"))].into();
        let new = next(&Status::default(), Ok(&f), Some(3), &now());
        assert_eq!(
            new.composition_ref.as_ref().map(|r| r.name.as_str()),
            Some("pg")
        );
        assert_eq!(new.resource_refs, f.refs);
        assert_eq!(new.extra, f.extra);
        assert_eq!(new.connection_details, None, "nothing published");
        assert!(
            new.conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
        f.secret_published = Some(5);
        let new = next(&Status::default(), Ok(&f), Some(3), &now());
        assert_eq!(
            new.connection_details.and_then(|d| d.last_published_time),
            Some(now())
        );
        // The error message is the Synced message.
        let e = Error::InvalidClaim("metadata.uid");
        let new = next(&Status::default(), Err(&e), Some(3), &now());
        assert_eq!(
            get_condition(&new.conditions, SYNCED).map(|c| c.message.as_str()),
            Some("the claim has no metadata.uid")
        );
    }

    #[test]
    fn own_status_keys_are_not_extra() {
        let m: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "conditions": [], "compositionRef": {}, "resourceRefs": [],
            "connectionDetails": {}, "endpoint": "h", "port": 5432}))
        .unwrap();
        assert_eq!(extra(&m).keys().collect::<Vec<_>>(), ["endpoint", "port"]);
    }

    fn planned(resource: &str, readiness: Readiness) -> Planned {
        let r = rendered(resource, INSTANCE, "Instance", json!({}));
        Planned {
            resource_name: resource.into(),
            index: 0,
            api_version: INSTANCE.into(),
            kind: "Instance".into(),
            name: format!("db-{resource}"),
            desired: r.desired,
            readiness,
            action: Action::Unchanged,
        }
    }

    #[test]
    fn what_is_not_ready_in_words() {
        let not_ready = |reason: &str, message: &str| Readiness::NotReady {
            reason: reason.into(),
            message: message.into(),
        };
        let with_ready = |status: &str, reason: &str, message: &str| {
            let mut o = observed(&json!({"kind": "Instance", "metadata": {"name": "db-a"}}));
            o.object["status"] = json!({"conditions": [
                {"type": "Ready", "status": status, "reason": reason, "message": message}]});
            o
        };
        let what = format!("a (Instance {NS}/db-a)");
        // (plan's readiness, override, observed, lines, any unavailable)
        let cases: Vec<(
            Readiness,
            Option<Readiness>,
            Option<ObservedResource>,
            Vec<String>,
            bool,
        )> = vec![
            (Readiness::Ready, None, None, vec![], false),
            (
                Readiness::NotObserved,
                None,
                None,
                vec![format!("{what}: Creating: not observed yet")],
                false,
            ),
            (
                not_ready("ReadyConditionNotTrue", "m"),
                None,
                None,
                vec![format!("{what}: ReadyConditionNotTrue: m")],
                false,
            ),
            (
                not_ready("ReadinessCheckFailed", ""),
                None,
                None,
                vec![format!("{what}: ReadinessCheckFailed")],
                false,
            ),
            // The object's own Ready condition wins: what `kubectl describe` shows.
            (
                not_ready("ReadyConditionNotTrue", "m"),
                None,
                Some(with_ready("False", "Creating", "RDS creating")),
                vec![format!("{what}: Creating: RDS creating")],
                false,
            ),
            (
                not_ready("ReadyConditionNotTrue", "m"),
                None,
                Some(with_ready("False", "Unavailable", "")),
                vec![format!("{what}: Unavailable")],
                true,
            ),
            // Objects created just now: judged on the API server's answer.
            (
                Readiness::NotObserved,
                Some(not_ready("ReadyConditionNotTrue", "no Ready")),
                None,
                vec![format!("{what}: ReadyConditionNotTrue: no Ready")],
                false,
            ),
            (
                Readiness::NotObserved,
                Some(Readiness::Ready),
                None,
                vec![],
                false,
            ),
        ];
        for (i, (readiness, over, obs, lines, unavailable)) in cases.into_iter().enumerate() {
            let over: BTreeMap<String, Readiness> =
                over.into_iter().map(|r| ("a".to_string(), r)).collect();
            let obs: BTreeMap<String, ObservedResource> =
                obs.into_iter().map(|o| ("a".to_string(), o)).collect();
            let got = summarize(&[planned("a", readiness)], &over, &obs, NS);
            assert_eq!(got, (lines, unavailable), "case {i}");
        }
    }

    #[test]
    fn deleting_waits_with_a_reason() {
        let old = status(
            Some((true, "ReconcileSuccess", "")),
            Some((true, "Available", "")),
        );
        let new = deleting(&old, &["Instance ns/a".into()], Some(2), &now());
        assert_eq!(
            get_condition(&new.conditions, READY).map(|c| (c.reason.as_str(), c.message.as_str())),
            Some((
                "Deleting",
                "waiting for composed resources to be deleted: Instance ns/a"
            ))
        );
        assert_eq!(
            get_condition(&new.conditions, SYNCED),
            get_condition(&old.conditions, SYNCED)
        );
    }
}
