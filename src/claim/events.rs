//! Step 9, emit the Events: on the transitions a user cares about, and no more (pure:
//! [`transitions`]). On the happy path one when the composed resources are first applied
//! (naming the Composition) and one when the claim is Ready (naming the connection Secret);
//! warnings on errors and on becoming unavailable, only when the condition changes.

use kube::Resource;
use kube::runtime::events::EventType;

use super::context::Context;
use super::error::Error;
use super::object::Claim;
use super::status::{Facts, Report};
use crate::api::claim::PostgreSQLInstanceStatus;
use crate::api::common::{ConditionStatus, READY, SYNCED, get_condition};

/// At most this many of the engine's warnings become Events in one reconcile.
const MAX_WARNINGS: usize = 5;

/// One Event to emit about the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

fn normal(reason: &'static str, note: String) -> Note {
    Note {
        type_: EventType::Normal,
        reason,
        note,
    }
}

fn warning(reason: &'static str, note: String) -> Note {
    Note {
        type_: EventType::Warning,
        reason,
        note,
    }
}

/// The Events of a reconcile that took the status from `old` to `new`. `report` is what
/// composing found and did (its facts as far as it got, the failed step's error); `secret` is
/// the name of the claim's connection Secret.
///
/// Synced turning False warns once per message, with the failed step's category
/// (CompositionNotFound, KindNotServed, ...) or `ComposedResourceError` (a composed resource is
/// blocked: its own controller warns about it too). A composed resource that only waits makes no
/// Event (its controller's say what it waits for); a pause makes a Normal one.
pub(crate) fn transitions(
    old: &PostgreSQLInstanceStatus,
    new: &PostgreSQLInstanceStatus,
    report: &Report,
    secret: Option<&str>,
) -> Vec<Note> {
    let ready_old = get_condition(&old.conditions, READY);
    let was_ready = ready_old.is_some_and(|r| r.status == ConditionStatus::True);
    let ready_new = get_condition(&new.conditions, READY);
    let becomes_ready = !was_ready && ready_new.is_some_and(|r| r.status == ConditionStatus::True);
    let facts = report.facts.as_ref();
    let mut out = facts.map_or_else(Vec::new, |f| composed(old, f, becomes_ready, secret));
    let synced_old = get_condition(&old.conditions, SYNCED);
    if let Some(s) = get_condition(&new.conditions, SYNCED) {
        let changed = synced_old.is_none_or(|o| o.status != s.status || o.message != s.message);
        let quiet_before = synced_old.is_some_and(|o| o.reason == "Waiting");
        if changed && s.status == ConditionStatus::False {
            match s.reason.as_str() {
                "Waiting" => {}
                "ReconcilePaused" => out.push(normal("ReconcilePaused", s.message.clone())),
                "ComposedResourceError" => {
                    out.push(warning("ComposedResourceError", s.message.clone()))
                }
                _ => {
                    let reason = report
                        .error
                        .as_ref()
                        .map_or("ReconcileError", Error::reason);
                    out.push(warning(reason, s.message.clone()));
                }
            }
        } else if changed
            && !quiet_before
            && synced_old.is_some_and(|o| o.status == ConditionStatus::False)
        {
            out.push(normal("ReconcileSuccess", "Synced again".into()));
        }
    }
    if let Some(r) = ready_new {
        if becomes_ready {
            let note = match (new.connection_details.as_ref(), secret) {
                (Some(_), Some(name)) => format!(
                    "Every composed resource is ready; connection details are in Secret {name:?}"
                ),
                _ => "Every composed resource is ready".into(),
            };
            out.push(normal("Available", note));
        } else if r.status == ConditionStatus::False
            && r.reason == "Unavailable"
            && ready_old.is_none_or(|o| o.reason != "Unavailable")
        {
            out.push(warning("Unavailable", r.message.clone()));
        }
    }
    out
}

/// The Events of what composing did: applied (or, when nothing was, a new Composition chosen),
/// deleted, and a later publication of the connection Secret.
fn composed(
    old: &PostgreSQLInstanceStatus,
    f: &Facts,
    becomes_ready: bool,
    secret: Option<&str>,
) -> Vec<Note> {
    let mut out = Vec::new();
    let reselected = old
        .composition_ref
        .as_ref()
        .is_some_and(|r| r.name != f.composition);
    if !f.applied.is_empty() {
        let note = format!(
            "Applied {} (Composition {:?})",
            f.applied.join(", "),
            f.composition
        );
        out.push(normal("ComposedResourcesApplied", note));
    } else if reselected {
        let note = format!("Using Composition {:?}", f.composition);
        out.push(normal("CompositionSelected", note));
    }
    // The engine's warnings are told when the render changed what is applied (a new claim, a
    // claim or Composition edit), not on every resync; at most a few.
    if !f.applied.is_empty() {
        for w in f.warnings.iter().take(MAX_WARNINGS) {
            out.push(warning("CompositionWarning", w.clone()));
        }
    }
    if !f.deleted.is_empty() {
        let note = format!(
            "Deleted (no longer in the Composition) {}",
            f.deleted.join(", ")
        );
        out.push(normal("ComposedResourcesDeleted", note));
    }
    // A first publication is told by the Available event; a later one (new credentials, new
    // endpoint) gets its own.
    if let Some(n) = f.secret_published
        && !becomes_ready
    {
        let name = secret.unwrap_or_default();
        let note = format!("Wrote {n} connection keys to Secret {name:?}");
        out.push(normal("ConnectionSecretPublished", note));
    }
    out
}

impl Context {
    /// Publish one Event about the claim (notes bounded, failures logged, not returned).
    pub async fn event(&self, claim: &Claim, type_: EventType, reason: &str, note: String) {
        let regarding = claim.object_ref(&claim.api_resource());
        self.recorder
            .emit(&regarding, type_, reason, "Reconcile", note)
            .await;
    }
}

/// Emit `notes` about the claim, in order.
pub(crate) async fn emit(ctx: &Context, claim: &Claim, notes: Vec<Note>) {
    for n in notes {
        ctx.event(claim, n.type_, n.reason, n.note).await;
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::super::builders::{composed_with, published, status};
    use super::*;

    fn facts(applied: &[&str], deleted: &[&str], published: Option<usize>) -> Facts {
        Facts {
            composition: "pg".into(),
            applied: applied.iter().map(|s| s.to_string()).collect(),
            deleted: deleted.iter().map(|s| s.to_string()).collect(),
            secret_published: published,
            ..Default::default()
        }
    }

    fn reasons(notes: &[Note]) -> Vec<(&'static str, &'static str)> {
        notes
            .iter()
            .map(|n| {
                let t = if n.type_ == EventType::Normal {
                    "Normal"
                } else {
                    "Warning"
                };
                (t, n.reason)
            })
            .collect()
    }

    type Case = (
        PostgreSQLInstanceStatus,
        PostgreSQLInstanceStatus,
        Option<Facts>,
        Option<&'static str>,
        Vec<(&'static str, &'static str)>,
    );

    /// A failed step whose category is `reason` (only KindNotServed is used).
    fn error(reason: &str) -> Error {
        assert_eq!(reason, "KindNotServed");
        Error::KindNotServed {
            resource: "r".into(),
            api_version: "v1".into(),
            kind: "K".into(),
        }
    }

    fn report(facts: Option<Facts>, err: Option<&str>) -> Report {
        Report {
            facts,
            error: err.map(error),
            ..Default::default()
        }
    }

    fn check(cases: Vec<Case>) {
        for (i, (old, new, f, err, want)) in cases.into_iter().enumerate() {
            let got = transitions(&old, &new, &report(f, err), Some("db-conn"));
            assert_eq!(reasons(&got), want, "case {i}");
        }
    }

    fn synced() -> Option<(bool, &'static str, &'static str)> {
        Some((true, "ReconcileSuccess", ""))
    }

    #[test]
    fn what_composing_did_makes_events_once() {
        let creating = status(synced(), Some((false, "Creating", "a: Creating")));
        let ready = published(status(synced(), Some((true, "Available", ""))));
        let fresh = PostgreSQLInstanceStatus::default();
        let none = || Some(facts(&[], &[], None));
        // (old, new, facts, error reason, events)
        check(vec![
            // First apply.
            (
                fresh,
                creating.clone(),
                Some(facts(&["a"], &[], None)),
                None,
                vec![("Normal", "ComposedResourcesApplied")],
            ),
            // A resync that changes nothing says nothing.
            (creating.clone(), creating.clone(), none(), None, vec![]),
            (ready.clone(), ready.clone(), none(), None, vec![]),
            // Ready with the first publication: one Available, no ConnectionSecretPublished.
            (
                creating.clone(),
                ready.clone(),
                Some(facts(&[], &[], Some(5))),
                None,
                vec![("Normal", "Available")],
            ),
            // A later publication (new credentials) is told.
            (
                ready.clone(),
                ready.clone(),
                Some(facts(&[], &[], Some(5))),
                None,
                vec![("Normal", "ConnectionSecretPublished")],
            ),
            (
                composed_with(creating.clone(), "old"),
                composed_with(creating.clone(), "pg"),
                none(),
                None,
                vec![("Normal", "CompositionSelected")],
            ),
            (
                creating.clone(),
                creating,
                Some(facts(&[], &["Bucket ns/b"], None)),
                None,
                vec![("Normal", "ComposedResourcesDeleted")],
            ),
        ]);
    }

    #[test]
    fn failures_and_unavailability_warn_once() {
        let creating = status(synced(), Some((false, "Creating", "a: Creating")));
        let ready = published(status(synced(), Some((true, "Available", ""))));
        let failing = status(
            Some((false, "ReconcileError", "boom")),
            Some((false, "Creating", "x")),
        );
        let unavailable = status(synced(), Some((false, "Unavailable", "a: Unavailable")));
        let none = || Some(facts(&[], &[], None));
        check(vec![
            // A Warning with the error's category, once per message.
            (
                creating.clone(),
                failing.clone(),
                None,
                Some("KindNotServed"),
                vec![("Warning", "KindNotServed")],
            ),
            (
                failing.clone(),
                failing.clone(),
                None,
                Some("KindNotServed"),
                vec![],
            ),
            (
                failing,
                creating,
                none(),
                None,
                vec![("Normal", "ReconcileSuccess")],
            ),
            (
                ready,
                unavailable.clone(),
                none(),
                None,
                vec![("Warning", "Unavailable")],
            ),
            (unavailable.clone(), unavailable, none(), None, vec![]),
        ]);
    }

    #[test]
    fn composed_problems_and_pauses_make_their_own_events() {
        let ready = published(status(synced(), Some((true, "Available", ""))));
        let blocked = published(status(
            Some((false, "ComposedResourceError", "a: ImmutableField: m")),
            Some((true, "Available", "")),
        ));
        let waiting = status(
            Some((false, "Waiting", "a: ReferenceNotReady: m")),
            Some((false, "Waiting", "a: ReferenceNotReady: m")),
        );
        let creating = status(synced(), Some((false, "Creating", "a: Creating")));
        let paused = published(status(
            Some((false, "ReconcilePaused", "paused")),
            Some((true, "Available", "")),
        ));
        let none = || Some(facts(&[], &[], None));
        check(vec![
            (
                ready.clone(),
                blocked.clone(),
                none(),
                None,
                vec![("Warning", "ComposedResourceError")],
            ),
            (blocked.clone(), blocked.clone(), none(), None, vec![]),
            (
                blocked,
                ready.clone(),
                none(),
                None,
                vec![("Normal", "ReconcileSuccess")],
            ),
            // Waiting is told by the composed resource's own controller; its end is no news.
            (creating.clone(), waiting.clone(), none(), None, vec![]),
            (waiting, creating, none(), None, vec![]),
            (
                ready.clone(),
                paused.clone(),
                None,
                None,
                vec![("Normal", "ReconcilePaused")],
            ),
            (paused.clone(), paused.clone(), None, None, vec![]),
            (
                paused,
                ready,
                none(),
                None,
                vec![("Normal", "ReconcileSuccess")],
            ),
        ]);
    }

    #[test]
    fn notes_name_the_composition_and_the_secret() {
        let fresh = PostgreSQLInstanceStatus::default();
        let creating = status(None, Some((false, "Creating", "")));
        let ready = published(status(None, Some((true, "Available", ""))));
        let applied = facts(&["a (Instance ns/db-a)"], &[], None);
        let (nothing, five) = (facts(&[], &[], None), facts(&[], &[], Some(5)));
        // (old, new, facts, Secret, first note)
        let cases = [
            (
                &fresh,
                &creating,
                &applied,
                None,
                "Applied a (Instance ns/db-a) (Composition \"pg\")",
            ),
            (
                &creating,
                &ready,
                &five,
                Some("db-conn"),
                "Every composed resource is ready; connection details are in Secret \"db-conn\"",
            ),
            (
                &creating,
                &ready,
                &nothing,
                None,
                "Every composed resource is ready",
            ),
            (
                &ready,
                &ready,
                &five,
                Some("db-conn"),
                "Wrote 5 connection keys to Secret \"db-conn\"",
            ),
        ];
        for (i, (old, new, f, secret, note)) in cases.into_iter().enumerate() {
            let got = transitions(old, new, &report(Some(f.clone()), None), secret);
            assert_eq!(got.first().map(|n| n.note.as_str()), Some(note), "case {i}");
        }
    }

    #[test]
    fn engine_warnings_are_told_with_an_apply_and_bounded() {
        let mut f = facts(&["rds-instance"], &[], None);
        f.warnings = (0..8).map(|i| format!("warning {i}")).collect();
        let st = PostgreSQLInstanceStatus::default();
        let notes = transitions(&st, &st, &report(Some(f.clone()), None), None);
        let warnings: Vec<&Note> = notes
            .iter()
            .filter(|n| n.reason == "CompositionWarning")
            .collect();
        assert_eq!(warnings.len(), MAX_WARNINGS);
        assert!(warnings.iter().all(|n| n.type_ == EventType::Warning));
        assert_eq!(warnings[0].note, "warning 0");
        // A resync that applies nothing repeats none.
        let mut quiet = facts(&[], &[], None);
        quiet.warnings = f.warnings.clone();
        let notes = transitions(&st, &st, &report(Some(quiet), None), None);
        assert!(
            notes.iter().all(|n| n.reason != "CompositionWarning"),
            "{notes:?}"
        );
    }
}
