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
use crate::api::managed::PAUSED;
use crate::compose::{ObservedResource, Readiness};

type Status = PostgreSQLInstanceStatus;

/// What composing found and did, for the status and the Events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Facts {
    /// The Composition used.
    pub composition: String,
    /// Every composed object.
    pub refs: Vec<ObjectReference>,
    /// What stands between each composed resource and ready and in sync, one per resource
    /// (a resource that is ready and in sync has none).
    pub problems: Vec<Problem>,
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

/// What one reconcile of a claim found and did: the facts as far as composing got (a step that
/// fails after the composed objects were observed keeps what was observed, so that Ready still
/// says how they are), the step that failed, and whether the claim is paused.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub facts: Option<Facts>,
    pub error: Option<Error>,
    /// `crossplane.io/paused` is "true" on the claim: nothing was applied, pruned or published.
    pub paused: bool,
    /// The claim is being deleted (and paused: the deletion waits).
    pub deleting: bool,
}

/// How a composed resource stands, least severe first. The claim's Ready reason is the worst
/// standing among its resources that are not ready; its Synced condition is False when any
/// resource is Waiting or Blocked because its own Synced condition is False.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Standing {
    /// Progressing: just applied, or its controller reports it being created.
    Creating,
    /// Its controller reports it unavailable (or being deleted), nothing else wrong.
    Unavailable,
    /// It waits for something that comes by itself: a referenced object, a Secret, RDS, an AWS
    /// retry after throttling or an outage.
    Waiting,
    /// It stays as it is until a person changes something: the claim, the Composition, a
    /// ProviderConfig, AWS.
    Blocked,
}

impl Standing {
    /// The claim's condition reason for this standing.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Unavailable => "Unavailable",
            Self::Waiting => "Waiting",
            Self::Blocked => "Blocked",
        }
    }
}

/// Synced=False reasons of composed resources that wait for something that comes by itself (the
/// managed-resource lifecycle's names). Every other Synced=False reason is [`Standing::Blocked`].
const WAITING_REASONS: [&str; 5] = [
    // A reference (dbSubnetGroupNameRef, vpcSecurityGroupIdRefs, ...) names an object that is
    // not Ready yet.
    "ReferenceNotReady",
    // AWS throttled, failed with a 5xx, timed out or could not be reached: retried.
    "AWSUnavailable",
    // RDS's status does not allow the change yet (for example during backing-up).
    "WaitingForRDS",
    // A deletion waits for what still uses the resource.
    "DependencyViolation",
    // The master password Secret is not there (yet).
    "PasswordUnavailable",
];

/// AWS error codes that mean "not now" rather than "no": the resource's state does not allow
/// the call yet, something still uses it, or AWS asks to retry. An `AWSError` naming one waits;
/// every other `AWSError` (InvalidParameterValue, InvalidParameterCombination, quotas,
/// capacity, AccessDenied, ...) is refused until a person changes something.
const WAITING_AWS_CODES: [&str; 10] = [
    "InvalidDBInstanceState",
    "InvalidDBSubnetGroupState",
    "InvalidDBParameterGroupState",
    "InvalidGroup.InUse",
    "DependencyViolation",
    "Throttling",
    "RequestLimitExceeded",
    "InternalFailure",
    "ServiceUnavailable",
    "PriorRequestNotComplete",
];

/// The one mapping from a composed resource's Synced=False reason (and message, for
/// `AWSError`: the AWS code it quotes) to its standing. Waiting: [`WAITING_REASONS`], and an
/// `AWSError` quoting one of [`WAITING_AWS_CODES`]. Blocked: everything else, which is what
/// a person must change, for example `ImmutableField` (a field that cannot change in place),
/// `AdoptionNotAllowed`, `ExternalResourceNotOwned`, `ExternalResourceMissing`,
/// `ProviderConfigNotAllowed`, `ProviderConfigError`, `NoProviderConfig`, `InvalidSpec`,
/// `InvalidPassword`, `InvalidExternalName`, `ExternalNameRequired`, `UnsupportedFields`,
/// `UnsupportedManagementPolicy`, `UnsupportedReference`, `ConnectionSecretError`,
/// `ReconcilePaused` (someone paused the resource) and AWS refusals; also the reasons of
/// controllers paved does not know (their Synced=False is an error their message explains).
pub(crate) fn synced_standing(reason: &str, message: &str) -> Standing {
    if WAITING_REASONS.contains(&reason) {
        return Standing::Waiting;
    }
    if reason == "AWSError" && quotes_a_waiting_code(message) {
        return Standing::Waiting;
    }
    Standing::Blocked
}

/// Whether `message` quotes one of [`WAITING_AWS_CODES`] as a word (with or without AWS's
/// `Fault`/`Exception` suffix).
fn quotes_a_waiting_code(message: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_end_matches('.'))
        .map(|w| {
            w.strip_suffix("Fault")
                .or_else(|| w.strip_suffix("Exception"))
                .unwrap_or(w)
        })
        .any(|w| WAITING_AWS_CODES.contains(&w))
}

/// The standing of a composed resource that is in sync but not ready, from its own Ready
/// reason (none: it has not said, or the Composition's readiness check decides).
pub(crate) fn ready_standing(own_reason: Option<&str>) -> Standing {
    match own_reason {
        Some("Unavailable" | "Deleting") => Standing::Unavailable,
        _ => Standing::Creating,
    }
}

/// What stands between one composed resource and ready and in sync.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    /// The Composition's name of the resource, for example `rds-instance`.
    pub resource: String,
    pub standing: Standing,
    /// The resource's own Synced condition is False (otherwise it is only not ready yet).
    pub unsynced: bool,
    /// The resource is ready (then its problem is a Synced one).
    pub ready: bool,
    /// The reason quoted, for example `ImmutableField`.
    pub reason: String,
    /// In words: the resource (name, kind, namespace/name), its reason and its message.
    pub line: String,
}

impl Problem {
    fn new(
        resource: &str,
        what: &str,
        standing: Standing,
        (unsynced, ready): (bool, bool),
        reason: &str,
        message: &str,
    ) -> Self {
        let message = without_countdown(message);
        let line = if message.is_empty() {
            format!("{what}: {reason}")
        } else {
            format!("{what}: {reason}: {message}")
        };
        Self {
            resource: resource.to_string(),
            standing,
            unsynced,
            ready,
            reason: reason.to_string(),
            line,
        }
    }

    /// A resource the engine skipped (a Required patch's source is missing): it waits for it.
    pub fn skipped(resource: &str, line: String) -> Self {
        Self {
            resource: resource.to_string(),
            standing: Standing::Waiting,
            unsynced: false,
            ready: false,
            reason: "Skipped".into(),
            line,
        }
    }
}

/// `message` without the retry countdowns controllers put in it (`(retrying in 20s)`), which
/// change on every attempt: the claim says the same thing until the resource says something
/// else.
fn without_countdown(message: &str) -> String {
    let mut out = message.to_string();
    while let Some(start) = out.find(" (retrying in ") {
        match out[start..].find(')') {
            Some(len) => out.replace_range(start..start + len + 1, ""),
            None => out.truncate(start),
        }
    }
    out
}

/// The claim status fields from patches to the claim, without those the controller owns.
pub(crate) fn extra(claim_status: &serde_json::Map<String, Value>) -> BTreeMap<String, Value> {
    claim_status
        .iter()
        .filter(|(k, _)| !OWN_STATUS_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// (status, reason, message) of an object's own condition of type `type_`.
fn own_condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let c = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let s = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some((s("status"), s("reason"), s("message")))
}

/// What stands between one composed resource and ready and in sync (pure): `None` when it is
/// ready and in sync. Its own Synced=False condition comes first (the cause: an AWS refusal, an
/// immutable field, a reference it waits for), then its own Ready condition (what `kubectl
/// describe` of the object shows), then the engine's verdict. `what` names it in words.
pub(crate) fn judge(
    resource: &str,
    what: &str,
    readiness: &Readiness,
    object: Option<&Value>,
) -> Option<Problem> {
    let ready = matches!(readiness, Readiness::Ready);
    let synced = object
        .and_then(|o| own_condition(o, SYNCED))
        .filter(|(status, _, _)| status == "False");
    if let Some((_, reason, message)) = synced {
        let reason = if reason.is_empty() {
            "ReconcileError".to_string()
        } else {
            reason
        };
        let standing = synced_standing(&reason, &message);
        let flags = (true, ready);
        return Some(Problem::new(
            resource, what, standing, flags, &reason, &message,
        ));
    }
    match readiness {
        Readiness::Ready => None,
        Readiness::NotObserved => Some(Problem::new(
            resource,
            what,
            Standing::Creating,
            (false, false),
            "Creating",
            "not observed yet",
        )),
        Readiness::NotReady { reason, message } => {
            let own = object
                .and_then(|o| own_condition(o, READY))
                .filter(|(status, reason, _)| status != "True" && !reason.is_empty());
            let standing = ready_standing(own.as_ref().map(|(_, r, _)| r.as_str()));
            let (reason, message) = own
                .map(|(_, r, m)| (r, m))
                .unwrap_or((reason.clone(), message.clone()));
            Some(Problem::new(
                resource,
                what,
                standing,
                (false, false),
                &reason,
                &message,
            ))
        }
    }
}

/// What stands between each planned resource and ready and in sync. `readiness` overrides the
/// plan's (objects created just now); `observed` holds the objects as last seen or written.
pub(crate) fn summarize(
    planned: &[Planned],
    readiness: &BTreeMap<String, Readiness>,
    observed: &BTreeMap<String, ObservedResource>,
    ns: &str,
) -> Vec<Problem> {
    planned
        .iter()
        .filter_map(|p| {
            judge(
                &p.resource_name,
                &p.describe(ns),
                readiness.get(&p.resource_name).unwrap_or(&p.readiness),
                observed.get(&p.resource_name).map(|o| &o.object),
            )
        })
        .collect()
}

/// `problems` worst first (stable: in the Composition's order among equals).
fn worst_first<'a>(problems: impl Iterator<Item = &'a Problem>) -> Vec<&'a Problem> {
    let mut v: Vec<&Problem> = problems.collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.standing));
    v
}

fn lines(problems: &[&Problem]) -> String {
    problems
        .iter()
        .map(|p| p.line.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The message of a paused claim's Synced condition.
fn paused_message(deleting: bool) -> String {
    let mut msg = format!(
        "{PAUSED} is \"true\" on this claim: paved does not compose it (no apply, no prune, no connection Secret write) until the annotation is removed or set to \"false\""
    );
    if deleting {
        msg.push_str("; its deletion waits until then, and its composed resources stay");
    }
    msg
}

/// The claim's Synced condition: the failed step, the pause, or its composed resources' own
/// Synced conditions (`ComposedResourceError` when one is blocked, `Waiting` when they only
/// wait), or `ReconcileSuccess`.
fn synced_condition(report: &Report, generation: Option<i64>) -> Condition {
    let problems = report.facts.as_ref().map_or(&[][..], |f| &f.problems[..]);
    let unsynced = worst_first(problems.iter().filter(|p| p.unsynced));
    let false_ = |reason: &str, message: String| {
        Condition::new(SYNCED, ConditionStatus::False, reason, message, generation)
    };
    if report.paused {
        return false_("ReconcilePaused", paused_message(report.deleting));
    }
    if let Some(e) = &report.error {
        let mut msg = e.to_string();
        if !unsynced.is_empty() {
            msg = format!("{msg}; {}", lines(&unsynced));
        }
        return false_("ReconcileError", msg);
    }
    match unsynced.first() {
        Some(p) if p.standing == Standing::Blocked => {
            false_("ComposedResourceError", lines(&unsynced))
        }
        Some(_) => false_("Waiting", lines(&unsynced)),
        None => Condition::new(
            SYNCED,
            ConditionStatus::True,
            "ReconcileSuccess",
            "",
            generation,
        ),
    }
}

/// The claim's next status (pure): `old` with Synced, Ready, the short problem and, when
/// composing went through, what it found. Ready follows the composed resources observed in
/// this reconcile whenever they were observed, even when a later step failed or the claim is
/// paused; an error before that keeps the Ready condition the claim had.
pub(crate) fn next(old: &Status, report: &Report, generation: Option<i64>, now: &Time) -> Status {
    let mut status = old.clone();
    let set = |status: &mut Status, c: Condition| set_condition(&mut status.conditions, c, now);
    set(&mut status, synced_condition(report, generation));
    match &report.facts {
        Some(f) => {
            set(&mut status, ready_condition(old, f, generation));
        }
        None if report.deleting => {}
        None if get_condition(&status.conditions, READY).is_none() => {
            let reason = match &report.error {
                Some(e) if e.is_transient() => Standing::Waiting,
                Some(_) => Standing::Blocked,
                None => Standing::Creating,
            };
            let msg = "nothing composed yet: see the Synced condition";
            let ready = Condition::new(
                READY,
                ConditionStatus::False,
                reason.reason(),
                msg,
                generation,
            );
            set(&mut status, ready);
        }
        None => {}
    }
    if let (Some(f), None, false) = (&report.facts, &report.error, report.paused) {
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
    status.problem = short_problem(&status, report);
    status
}

/// The first problem in short (`status.problem`, a printer column): the pause, the failed
/// step's reason, or the worst composed resource's standing, name and reason. `None` when
/// nothing is wrong (ready, or creating).
fn short_problem(status: &Status, report: &Report) -> Option<String> {
    if report.paused {
        return Some("ReconcilePaused".into());
    }
    if let Some(e) = &report.error {
        return Some(format!("ReconcileError: {}", e.reason()));
    }
    let problems = report.facts.as_ref().map_or(&[][..], |f| &f.problems[..]);
    let worst = *worst_first(problems.iter()).first()?;
    let ready = get_condition(&status.conditions, READY);
    let standing = match worst.standing {
        Standing::Creating if ready.is_some_and(|r| r.reason == "Unavailable") => {
            Standing::Unavailable
        }
        Standing::Creating => return None,
        s => s,
    };
    Some(if worst.reason == standing.reason() {
        format!("{}: {}", standing.reason(), worst.resource)
    } else {
        format!(
            "{}: {}: {}",
            standing.reason(),
            worst.resource,
            worst.reason
        )
    })
}

/// Ready: `Available`, or why not: the worst standing of what is not ready (`Blocked`,
/// `Waiting`, `Unavailable`, `Creating`); `Creating` turns `Unavailable` once the claim has
/// been available. The message names every resource that is not ready, worst first.
fn ready_condition(old: &Status, f: &Facts, generation: Option<i64>) -> Condition {
    if f.ready {
        return Condition::new(READY, ConditionStatus::True, "Available", "", generation);
    }
    let not_ready = worst_first(f.problems.iter().filter(|p| !p.ready));
    let worst = not_ready.first().map_or(Standing::Creating, |p| p.standing);
    let was_available = get_condition(&old.conditions, READY)
        .is_some_and(|p| p.status == ConditionStatus::True || p.reason == "Unavailable");
    let reason = match worst {
        Standing::Creating if was_available => Standing::Unavailable,
        s => s,
    };
    Condition::new(
        READY,
        ConditionStatus::False,
        reason.reason(),
        lines(&not_ready),
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
    use Standing::{Blocked, Creating, Unavailable, Waiting};
    use serde_json::json;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1000).unwrap())
    }

    #[test]
    fn composed_synced_reasons_map_to_a_standing() {
        // (reason, message, standing): every Synced=False reason paved's managed lifecycle
        // writes, AWS's own codes as its AWSError messages quote them, and others.
        let cases = [
            (
                "ReferenceNotReady",
                "waiting for SubnetGroup net (dbSubnetGroupNameRef) to be Ready",
                Waiting,
            ),
            (
                "AWSUnavailable",
                "DescribeDBInstances failed: Throttling: Rate exceeded",
                Waiting,
            ),
            (
                "AWSUnavailable",
                "no answer from http://127.0.0.1:1 within 30 s",
                Waiting,
            ),
            (
                "WaitingForRDS",
                "waiting for RDS status \"backing-up\" to allow changing allocatedStorage",
                Waiting,
            ),
            (
                "DependencyViolation",
                "cannot delete DB subnet group x yet",
                Waiting,
            ),
            (
                "PasswordUnavailable",
                "the master password Secret db-master-password is missing",
                Waiting,
            ),
            (
                "AWSError",
                "ModifyDBInstance failed: InvalidDBInstanceState: not available (retrying in 20s)",
                Waiting,
            ),
            (
                "AWSError",
                "DeleteDBSubnetGroup failed: InvalidDBSubnetGroupStateFault: in use",
                Waiting,
            ),
            (
                "AWSError",
                "DeleteSecurityGroup failed: InvalidGroup.InUse: used by sg-1",
                Waiting,
            ),
            (
                "AWSError",
                "CreateDBInstance failed: InvalidParameterValue: Invalid storage size (retrying in 300s, or at once when the spec changes)",
                Blocked,
            ),
            (
                "AWSError",
                "ModifyDBInstance failed: InvalidParameterCombination: Cannot find version 99",
                Blocked,
            ),
            (
                "AWSError",
                "CreateDBInstance failed: InstanceQuotaExceeded: quota",
                Blocked,
            ),
            (
                "AWSError",
                "CreateDBInstance failed: AccessDenied: not authorized",
                Blocked,
            ),
            // A code that only contains a waiting one is not it.
            ("AWSError", "X failed: NotThrottlingAtAll: y", Blocked),
            (
                "ImmutableField",
                "cannot apply spec.forProvider: engine: ...",
                Blocked,
            ),
            ("AdoptionNotAllowed", "", Blocked),
            ("ExternalResourceNotOwned", "", Blocked),
            ("ExternalResourceMissing", "", Blocked),
            ("ExternalNameRequired", "", Blocked),
            ("InvalidExternalName", "", Blocked),
            ("InvalidSpec", "", Blocked),
            ("InvalidPassword", "", Blocked),
            ("UnsupportedFields", "", Blocked),
            ("UnsupportedManagementPolicy", "", Blocked),
            ("UnsupportedReference", "", Blocked),
            ("ProviderConfigNotAllowed", "", Blocked),
            ("ProviderConfigError", "ProviderConfig x not found", Blocked),
            ("NoProviderConfig", "", Blocked),
            ("ConnectionSecretError", "", Blocked),
            (
                "ReconcilePaused",
                "crossplane.io/paused is \"true\"",
                Blocked,
            ),
            // Another controller's error: its message says what is wrong.
            ("ReconcileError", "cannot create bucket", Blocked),
            ("", "", Blocked),
        ];
        for (reason, message, want) in cases {
            assert_eq!(
                synced_standing(reason, message),
                want,
                "{reason}: {message}"
            );
        }
        // Ready reasons of a resource that is in sync.
        let ready = [
            (None, Creating),
            (Some("Creating"), Creating),
            (Some("ReadyConditionNotTrue"), Creating),
            (Some("Unavailable"), Unavailable),
            (Some("Deleting"), Unavailable),
        ];
        for (reason, want) in ready {
            assert_eq!(ready_standing(reason), want, "{reason:?}");
        }
    }

    #[test]
    fn countdowns_are_not_quoted() {
        let cases = [
            ("a failed (retrying in 20s)", "a failed"),
            (
                "a failed (retrying in 300s, or at once when the spec changes); b",
                "a failed; b",
            ),
            ("x (retrying in 5s", "x"),
            ("nothing to strip (really)", "nothing to strip (really)"),
        ];
        for (message, want) in cases {
            assert_eq!(without_countdown(message), want);
        }
    }

    /// An Instance `db-a` with these conditions: (type, status, reason, message).
    fn instance(conditions: &[(&str, &str, &str, &str)]) -> Value {
        let cs: Vec<Value> = conditions
            .iter()
            .map(|(t, s, r, m)| json!({"type": t, "status": s, "reason": r, "message": m}))
            .collect();
        json!({"kind": "Instance", "metadata": {"name": "db-a"}, "status": {"conditions": cs}})
    }

    fn not_ready(reason: &str, message: &str) -> Readiness {
        Readiness::NotReady {
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_composed_resource_is_judged_on_its_own_conditions() {
        let what = format!("a (Instance {NS}/db-a)");
        let synced_false = (
            "Synced",
            "False",
            "ImmutableField",
            "cannot apply spec.forProvider: engineVersion: \"16\" is a major version upgrade",
        );
        let ready_true = ("Ready", "True", "Available", "RDS status is available");
        // (engine readiness, object, want: (standing, unsynced, ready, reason, line))
        let cases: Vec<(
            Readiness,
            Option<Value>,
            Option<(Standing, bool, bool, &str, String)>,
        )> = vec![
            (
                Readiness::Ready,
                Some(instance(&[
                    ready_true,
                    ("Synced", "True", "ReconcileSuccess", ""),
                ])),
                None,
            ),
            (Readiness::Ready, None, None),
            // Ready, but a change cannot be applied: blocked, and still ready.
            (
                Readiness::Ready,
                Some(instance(&[ready_true, synced_false])),
                Some((
                    Blocked,
                    true,
                    true,
                    "ImmutableField",
                    format!(
                        "{what}: ImmutableField: cannot apply spec.forProvider: engineVersion: \"16\" is a major version upgrade"
                    ),
                )),
            ),
            // Never created: AWS refused. The cause, not "Creating".
            (
                not_ready(
                    "ReadyConditionNotTrue",
                    "Instance db-a: Ready condition is Unknown",
                ),
                Some(instance(&[(
                    "Synced",
                    "False",
                    "AWSError",
                    "CreateDBInstance failed: InvalidParameterValue: Invalid storage size (retrying in 300s, or at once when the spec changes)",
                )])),
                Some((
                    Blocked,
                    true,
                    false,
                    "AWSError",
                    format!(
                        "{what}: AWSError: CreateDBInstance failed: InvalidParameterValue: Invalid storage size"
                    ),
                )),
            ),
            // Waiting for a reference: Synced says why, better than Ready's Unavailable.
            (
                not_ready("ReadyConditionNotTrue", "m"),
                Some(instance(&[
                    (
                        "Ready",
                        "False",
                        "Unavailable",
                        "waiting for SubnetGroup net",
                    ),
                    (
                        "Synced",
                        "False",
                        "ReferenceNotReady",
                        "waiting for SubnetGroup net",
                    ),
                ])),
                Some((
                    Waiting,
                    true,
                    false,
                    "ReferenceNotReady",
                    format!("{what}: ReferenceNotReady: waiting for SubnetGroup net"),
                )),
            ),
            // In sync, not ready: its own Ready condition, as `kubectl describe` shows it.
            (
                not_ready("ReadyConditionNotTrue", "m"),
                Some(instance(&[
                    ("Ready", "False", "Creating", "RDS status is creating"),
                    ("Synced", "True", "ReconcileSuccess", ""),
                ])),
                Some((
                    Creating,
                    false,
                    false,
                    "Creating",
                    format!("{what}: Creating: RDS status is creating"),
                )),
            ),
            (
                not_ready("ReadyConditionNotTrue", "m"),
                Some(instance(&[("Ready", "False", "Unavailable", "")])),
                Some((
                    Unavailable,
                    false,
                    false,
                    "Unavailable",
                    format!("{what}: Unavailable"),
                )),
            ),
            (
                not_ready("ReadyConditionNotTrue", "m"),
                Some(instance(&[(
                    "Ready",
                    "False",
                    "Deleting",
                    "RDS status is deleting",
                )])),
                Some((
                    Unavailable,
                    false,
                    false,
                    "Deleting",
                    format!("{what}: Deleting: RDS status is deleting"),
                )),
            ),
            // No word from its controller: the engine's verdict.
            (
                not_ready("ReadyConditionNotTrue", "no Ready"),
                Some(instance(&[])),
                Some((
                    Creating,
                    false,
                    false,
                    "ReadyConditionNotTrue",
                    format!("{what}: ReadyConditionNotTrue: no Ready"),
                )),
            ),
            (
                not_ready("ReadinessCheckFailed", ""),
                None,
                Some((
                    Creating,
                    false,
                    false,
                    "ReadinessCheckFailed",
                    format!("{what}: ReadinessCheckFailed"),
                )),
            ),
            (
                Readiness::NotObserved,
                None,
                Some((
                    Creating,
                    false,
                    false,
                    "Creating",
                    format!("{what}: Creating: not observed yet"),
                )),
            ),
            // Synced=False without a reason is still an error.
            (
                Readiness::Ready,
                Some(instance(&[("Synced", "False", "", "boom")])),
                Some((
                    Blocked,
                    true,
                    true,
                    "ReconcileError",
                    format!("{what}: ReconcileError: boom"),
                )),
            ),
        ];
        for (i, (readiness, object, want)) in cases.into_iter().enumerate() {
            let got = judge("a", &what, &readiness, object.as_ref()).map(|p| {
                (
                    p.standing,
                    p.unsynced,
                    p.ready,
                    p.reason.clone(),
                    p.line.clone(),
                )
            });
            let want = want.map(|(s, u, r, reason, line)| (s, u, r, reason.to_string(), line));
            assert_eq!(got, want, "case {i}");
            if let Some(p) = judge("a", &what, &readiness, object.as_ref()) {
                assert_eq!(p.resource, "a", "case {i}");
            }
        }
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
    fn summarize_prefers_the_readiness_of_objects_created_now() {
        let obs = |conditions: &[(&str, &str, &str, &str)]| {
            let mut o = observed(&json!({"kind": "Instance", "metadata": {"name": "db-a"}}));
            o.object["status"] = instance(conditions)["status"].clone();
            BTreeMap::from([("a".to_string(), o)])
        };
        let over = |r: Readiness| BTreeMap::from([("a".to_string(), r)]);
        let plan = [planned("a", Readiness::NotObserved)];
        let none: BTreeMap<String, Readiness> = BTreeMap::new();
        let nothing: BTreeMap<String, ObservedResource> = BTreeMap::new();
        let reasons = |ps: Vec<Problem>| ps.into_iter().map(|p| p.reason).collect::<Vec<_>>();
        assert_eq!(reasons(summarize(&plan, &none, &nothing, NS)), ["Creating"]);
        assert!(summarize(&plan, &over(Readiness::Ready), &nothing, NS).is_empty());
        assert_eq!(
            reasons(summarize(
                &plan,
                &over(not_ready("ReadyConditionNotTrue", "x")),
                &nothing,
                NS
            )),
            ["ReadyConditionNotTrue"]
        );
        // Ready by the engine, but its Synced condition says it is blocked.
        let blocked = obs(&[
            ("Ready", "True", "Available", ""),
            ("Synced", "False", "ImmutableField", "m"),
        ]);
        assert_eq!(
            reasons(summarize(
                &[planned("a", Readiness::Ready)],
                &none,
                &blocked,
                NS
            )),
            ["ImmutableField"]
        );
    }

    fn problem(
        resource: &str,
        standing: Standing,
        unsynced: bool,
        ready: bool,
        reason: &str,
    ) -> Problem {
        Problem {
            resource: resource.into(),
            standing,
            unsynced,
            ready,
            reason: reason.into(),
            line: format!("{resource} (Instance {NS}/db-{resource}): {reason}: m"),
        }
    }

    fn facts(problems: Vec<Problem>) -> Facts {
        let ready = problems.iter().all(|p| p.ready);
        Facts {
            composition: "pg".into(),
            problems,
            ready,
            ..Default::default()
        }
    }

    fn ok(f: Facts) -> Report {
        Report {
            facts: Some(f),
            ..Default::default()
        }
    }

    fn failed(f: Option<Facts>, e: Error) -> Report {
        Report {
            facts: f,
            error: Some(e),
            ..Default::default()
        }
    }

    fn paused(f: Option<Facts>, deleting: bool) -> Report {
        Report {
            facts: f,
            paused: true,
            deleting,
            ..Default::default()
        }
    }

    /// (status, reason, message) of a condition.
    fn summary(s: &Status, t: &str) -> Option<(bool, String, String)> {
        get_condition(&s.conditions, t).map(|c| {
            (
                c.status == ConditionStatus::True,
                c.reason.clone(),
                c.message.clone(),
            )
        })
    }

    #[test]
    fn synced_ready_and_the_short_problem_from_facts() {
        let fresh = Status::default();
        let was_ready = status(
            Some((true, "ReconcileSuccess", "")),
            Some((true, "Available", "")),
        );
        let line = |r: &str, reason: &str| format!("{r} (Instance {NS}/db-{r}): {reason}: m");
        let select = || Error::Select(SelectError::NoneForType { ty: "t".into() });
        let secret = || Error::SecretNotOwned {
            namespace: NS.into(),
            name: "db-conn".into(),
        };
        let transient = || Error::Kube {
            context: "reading".into(),
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        let immutable = || problem("a", Blocked, true, true, "ImmutableField");
        let refused = || problem("a", Blocked, true, false, "AWSError");
        let reference = || problem("b", Waiting, true, false, "ReferenceNotReady");
        let creating = || problem("a", Creating, false, false, "Creating");
        let unavailable = || problem("a", Unavailable, false, false, "Unavailable");
        let synced_ok = (true, "ReconcileSuccess".to_string(), String::new());
        let available = (true, "Available".to_string(), String::new());
        // (old, report, Synced, Ready, problem)
        let cases: Vec<(
            Status,
            Report,
            (bool, String, String),
            (bool, String, String),
            Option<&str>,
        )> = vec![
            (
                fresh.clone(),
                ok(facts(vec![])),
                synced_ok.clone(),
                available.clone(),
                None,
            ),
            // Progressing: no problem to show.
            (
                fresh.clone(),
                ok(facts(vec![creating()])),
                synced_ok.clone(),
                (false, "Creating".into(), line("a", "Creating")),
                None,
            ),
            // A ready database whose change cannot be applied: Synced says so, Ready stays.
            (
                was_ready.clone(),
                ok(facts(vec![immutable()])),
                (
                    false,
                    "ComposedResourceError".into(),
                    line("a", "ImmutableField"),
                ),
                available.clone(),
                Some("Blocked: a: ImmutableField"),
            ),
            // AWS refused to create it: blocked on both, not "Creating".
            (
                fresh.clone(),
                ok(facts(vec![refused()])),
                (false, "ComposedResourceError".into(), line("a", "AWSError")),
                (false, "Blocked".into(), line("a", "AWSError")),
                Some("Blocked: a: AWSError"),
            ),
            // Waiting for a reference while another is created: worst first.
            (
                fresh.clone(),
                ok(facts(vec![creating(), reference()])),
                (false, "Waiting".into(), line("b", "ReferenceNotReady")),
                (
                    false,
                    "Waiting".into(),
                    format!(
                        "{}; {}",
                        line("b", "ReferenceNotReady"),
                        line("a", "Creating")
                    ),
                ),
                Some("Waiting: b: ReferenceNotReady"),
            ),
            // Blocked wins over waiting, in Synced and in Ready.
            (
                fresh.clone(),
                ok(facts(vec![reference(), refused()])),
                (
                    false,
                    "ComposedResourceError".into(),
                    format!(
                        "{}; {}",
                        line("a", "AWSError"),
                        line("b", "ReferenceNotReady")
                    ),
                ),
                (
                    false,
                    "Blocked".into(),
                    format!(
                        "{}; {}",
                        line("a", "AWSError"),
                        line("b", "ReferenceNotReady")
                    ),
                ),
                Some("Blocked: a: AWSError"),
            ),
            // Once available, a resource that is not ready makes the claim Unavailable.
            (
                was_ready.clone(),
                ok(facts(vec![creating()])),
                synced_ok.clone(),
                (false, "Unavailable".into(), line("a", "Creating")),
                Some("Unavailable: a: Creating"),
            ),
            (
                fresh.clone(),
                ok(facts(vec![unavailable()])),
                synced_ok.clone(),
                (false, "Unavailable".into(), line("a", "Unavailable")),
                Some("Unavailable: a"),
            ),
            // Unavailable stays Unavailable until Ready again.
            (
                status(None, Some((false, "Unavailable", "a"))),
                ok(facts(vec![creating()])),
                synced_ok.clone(),
                (false, "Unavailable".into(), line("a", "Creating")),
                Some("Unavailable: a: Creating"),
            ),
            // A later step failed (the connection Secret): Ready still follows what was observed.
            (
                status(
                    Some((true, "ReconcileSuccess", "")),
                    Some((false, "Creating", "old")),
                ),
                failed(Some(facts(vec![])), secret()),
                (false, "ReconcileError".into(), secret().to_string()),
                available.clone(),
                Some("ReconcileError: ConnectionSecretConflict"),
            ),
            (
                fresh.clone(),
                failed(Some(facts(vec![immutable()])), secret()),
                (
                    false,
                    "ReconcileError".into(),
                    format!("{}; {}", secret(), line("a", "ImmutableField")),
                ),
                available.clone(),
                Some("ReconcileError: ConnectionSecretConflict"),
            ),
            // Nothing observed: nothing composed yet, blocked or waiting by the error.
            (
                fresh.clone(),
                failed(None, select()),
                (false, "ReconcileError".into(), select().to_string()),
                (
                    false,
                    "Blocked".into(),
                    "nothing composed yet: see the Synced condition".into(),
                ),
                Some("ReconcileError: CompositionNotFound"),
            ),
            (
                fresh.clone(),
                failed(None, transient()),
                (false, "ReconcileError".into(), transient().to_string()),
                (
                    false,
                    "Waiting".into(),
                    "nothing composed yet: see the Synced condition".into(),
                ),
                Some("ReconcileError: ApiError"),
            ),
            // An error before anything is observed keeps the Ready condition the claim had.
            (
                was_ready.clone(),
                failed(None, select()),
                (false, "ReconcileError".into(), select().to_string()),
                available.clone(),
                Some("ReconcileError: CompositionNotFound"),
            ),
            // Paused: says so; Ready follows what is observed, or stays.
            (
                was_ready.clone(),
                paused(Some(facts(vec![creating()])), false),
                (false, "ReconcilePaused".into(), paused_message(false)),
                (false, "Unavailable".into(), line("a", "Creating")),
                Some("ReconcilePaused"),
            ),
            (
                was_ready.clone(),
                paused(None, true),
                (false, "ReconcilePaused".into(), paused_message(true)),
                available.clone(),
                Some("ReconcilePaused"),
            ),
        ];
        for (i, (old, report, synced, ready, short)) in cases.into_iter().enumerate() {
            let new = next(&old, &report, Some(1), &now());
            assert_eq!(summary(&new, SYNCED), Some(synced), "case {i}: Synced");
            assert_eq!(summary(&new, READY), Some(ready), "case {i}: Ready");
            assert_eq!(new.problem.as_deref(), short, "case {i}: problem");
        }
        assert!(paused_message(false).contains("crossplane.io/paused"));
        assert!(paused_message(true).contains("deletion waits"));
    }

    #[test]
    fn a_resync_that_finds_the_same_facts_changes_nothing() {
        let f = facts(vec![problem("a", Blocked, true, false, "AWSError")]);
        let once = next(&Status::default(), &ok(f.clone()), Some(1), &now());
        let later = Time(jiff::Timestamp::from_second(2000).unwrap());
        let twice = next(&once, &ok(f), Some(1), &later);
        assert_eq!(once, twice);
    }

    #[test]
    fn composing_records_what_it_did() {
        let mut f = facts(vec![]);
        f.refs = vec![ObjectReference {
            api_version: INSTANCE.into(),
            kind: "Instance".into(),
            name: "db-rds".into(),
            namespace: Some(NS.into()),
        }];
        f.extra = [("endpoint".to_string(), json!("db.example.com"))].into();
        let new = next(&Status::default(), &ok(f.clone()), Some(3), &now());
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
        let new = next(&Status::default(), &ok(f.clone()), Some(3), &now());
        assert_eq!(
            new.connection_details.and_then(|d| d.last_published_time),
            Some(now())
        );
        // A failed step or a pause records only the conditions: resourceRefs stay as they
        // were, so that what the failed reconcile did not prune is pruned later.
        let e = Error::InvalidClaim("metadata.uid");
        let new = next(
            &Status::default(),
            &failed(Some(f.clone()), e),
            Some(3),
            &now(),
        );
        assert_eq!(
            get_condition(&new.conditions, SYNCED).map(|c| c.message.as_str()),
            Some("the claim has no metadata.uid")
        );
        assert!(new.resource_refs.is_empty() && new.composition_ref.is_none());
        assert_eq!(new.connection_details, None);
        let new = next(&Status::default(), &paused(Some(f), false), Some(3), &now());
        assert!(new.resource_refs.is_empty() && new.extra.is_empty());
    }

    #[test]
    fn own_status_keys_are_not_extra() {
        let m: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "conditions": [], "compositionRef": {}, "resourceRefs": [], "problem": "x",
            "connectionDetails": {}, "endpoint": "h", "port": 5432}))
        .unwrap();
        assert_eq!(extra(&m).keys().collect::<Vec<_>>(), ["endpoint", "port"]);
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
