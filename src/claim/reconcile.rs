//! One reconcile of a claim, as its sentence: choose the Composition, observe the composed
//! objects, render (pure), plan (pure), apply what differs, prune, publish the Secret, write the
//! status, emit the events. Each step is a file of its own; this is only the driver.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::instrument;

use super::context::Context;
use super::error::Error;
use super::finalizer::Ensured;
use super::object::Claim;
use super::observe::Observed;
use super::plan::{PlanInput, owner_reference};
use super::status::{Facts, Problem, Report};
use super::{
    apply, choose, cleanup, events, finalizer, observe, plan, prune, publish, render, revision,
    status,
};
use crate::api::PostgreSQLInstanceStatus;
use crate::api::common::{ConditionStatus, READY, get_condition};
use crate::api::managed::is_paused;
use crate::compose::Readiness;
use crate::kube::compact::CompactObject;
use std::collections::BTreeMap;

/// The reconcile entry point. The claim's status is read here, once, and handed to the steps.
///
/// A claim annotated `crossplane.io/paused: "true"` is not composed, as Crossplane's claim
/// reconciler does: the pause is checked before anything else, the deletion included. Nothing
/// is applied, pruned, published or deleted and no finalizer is added; the status says so
/// (Synced=False, ReconcilePaused) and Ready keeps following the composed resources, read from
/// the caches. A paused claim being deleted keeps its finalizer and its composed resources
/// until it is unpaused (Crossplane's claim reconciler likewise returns on the pause before its
/// deletion branch); then the deletion proceeds as for any claim.
#[instrument(skip_all, fields(object = %format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any())))]
pub(crate) async fn reconcile(claim: Claim, ctx: Arc<Context>) -> Result<Action, Error> {
    let claim = &claim;
    let ns = claim
        .namespace()
        .ok_or(Error::InvalidClaim("metadata.namespace"))?;
    let old = ctx.live_status(claim);
    let result = if is_paused(claim.meta()) {
        paused(&ctx, claim, &ns, &old).await
    } else if claim.meta().deletion_timestamp.is_some() {
        cleanup::cleanup(&ctx, claim, &ns, &old).await
    } else {
        sync(&ctx, claim, &ns, &old).await
    };
    ctx.metrics
        .reconciled(result.as_ref().err().map(Error::reason));
    match &result {
        Ok(_) => ctx.reset_backoff(&ns, &claim.name_any()),
        Err(e) => tracing::warn!(error = %e, reason = e.reason(), "reconcile failed"),
    }
    result
}

/// What to do after a failed reconcile: retry with per-claim exponential backoff.
pub(crate) fn error_policy(claim: Arc<CompactObject>, _err: &Error, ctx: Arc<Context>) -> Action {
    let ns = claim.namespace().unwrap_or_default();
    Action::requeue(ctx.next_backoff(&ns, &claim.name_any(), claim.meta().generation))
}

/// Compose, then report: the status (written only when it changed) and the Events.
async fn sync(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    old: &PostgreSQLInstanceStatus,
) -> Result<Action, Error> {
    // The claim's versions this reconcile replaces: the cached one, and the finalizer write's.
    let mut superseded: Vec<String> = claim.resource_version().into_iter().collect();
    match finalizer::ensure(ctx, claim).await? {
        Ensured::Had => {}
        Ensured::Added(rv) => superseded.extend(rv),
        Ensured::Gone => return Ok(Action::await_change()),
    }
    let mut report = Report::default();
    if let Err(e) = compose(ctx, claim, ns, old, &mut report.facts, false).await {
        report.error = Some(e);
    }
    report_status(ctx, claim, &superseded, old, &report).await?;
    match report.error {
        Some(e) => Err(e),
        None => Ok(Action::requeue(ctx.config.resync)),
    }
}

/// A paused claim: observe what is composed (read-only, from the caches), and report.
async fn paused(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    old: &PostgreSQLInstanceStatus,
) -> Result<Action, Error> {
    let superseded: Vec<String> = claim.resource_version().into_iter().collect();
    let deleting = claim.meta().deletion_timestamp.is_some();
    let mut report = Report {
        paused: true,
        deleting,
        ..Default::default()
    };
    if !deleting {
        // What cannot be observed is not an error of a paused claim: Ready is then kept.
        let _ = compose(ctx, claim, ns, old, &mut report.facts, true).await;
    }
    report_status(ctx, claim, &superseded, old, &report).await?;
    // Unpausing changes the annotations, which wakes the claim.
    Ok(Action::await_change())
}

/// Write the status `report` makes of `old` (only when it changed), then the Events.
async fn report_status(
    ctx: &Context,
    claim: &Claim,
    superseded: &[String],
    old: &PostgreSQLInstanceStatus,
    report: &Report,
) -> Result<(), Error> {
    let now = Time(jiff::Timestamp::now());
    let new = status::next(old, report, claim.meta().generation, &now);
    status::write(ctx, claim, superseded, old, &new).await?;
    let secret = claim
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let notes = events::transitions(old, &new, report, secret);
    events::emit(ctx, claim, notes).await;
    observe_time_to_ready(ctx, claim, old, &new);
    Ok(())
}

/// choose → observe → render → plan → apply → prune → publish, filling `facts` as it goes: once
/// the composed objects are observed and planned, `facts` says how they are, whatever fails
/// later. `observe_only` (a paused claim) stops after the plan: nothing is written.
async fn compose(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    old: &PostgreSQLInstanceStatus,
    facts: &mut Option<Facts>,
    observe_only: bool,
) -> Result<(), Error> {
    let uid = claim.uid().ok_or(Error::InvalidClaim("metadata.uid"))?;
    let claim_name = claim.name_any();
    let compositions = ctx.compositions().await;
    let composition = choose::choose(&choose::claim_choice(claim, old), &compositions)?;
    let composition = revision::with_revision(ctx, claim, ns, composition).await?;
    let mut observed = observe::observe(ctx, ns, &claim_name, &composition).await?;

    let claim_json = render::claim_json(claim, &composition.name_any(), &old.resource_refs)?;
    let rendered = render::render(&claim_json, &composition, &observed.objects)?;
    let owner = owner_reference(&claim_json).ok_or(Error::InvalidClaim("metadata.uid"))?;
    let input = PlanInput {
        namespace: ns,
        owner: Some(&owner),
        observed: &observed.objects,
    };
    let planned = plan::plan(&input, rendered.resources)?;
    // Skipped by the engine (a Required patch's source is missing): what exists is kept.
    let (kept, skipped_lines) = render::skipped(&rendered.skipped, &observed.objects, ns);
    let skipped: Vec<Problem> = rendered
        .skipped
        .iter()
        .zip(skipped_lines)
        .map(|(s, line)| Problem::skipped(&s.resource_name, line))
        .collect();
    let judged = |created: &BTreeMap<String, Readiness>, observed: &Observed| {
        let mut problems = status::summarize(&planned, created, &observed.objects, ns);
        problems.extend(skipped.iter().cloned());
        let ready = rendered.ready && problems.iter().all(|p| p.ready);
        (problems, ready)
    };
    let (problems, ready) = judged(&BTreeMap::new(), &observed);
    let f = facts.insert(Facts {
        composition: composition.name_any(),
        problems,
        ready,
        extra: status::extra(&rendered.claim_status),
        ..Default::default()
    });
    if observe_only {
        return Ok(());
    }

    let applied = apply::apply(
        ctx,
        ns,
        &claim_name,
        &planned,
        &observed.kinds,
        &mut observed.objects,
    )
    .await?;
    let created = render::readiness_of_created(
        &claim_json,
        &composition,
        &observed.objects,
        &applied.created,
    );
    (f.problems, f.ready) = judged(&created, &observed);
    f.applied = applied.applied;
    let mut refs: Vec<_> = planned.iter().map(|p| p.reference(ns)).collect();
    refs.extend(kept);
    f.deleted = prune::prune(
        ctx,
        &mut observed.kinds,
        ns,
        &uid,
        &old.resource_refs,
        &refs,
    )
    .await?;

    let details = publish::allowed_keys(
        &rendered.connection_details,
        &claim.kind.connection_secret_keys,
    );
    f.warnings = rendered.warnings.clone();
    let (composition_secret, outside) =
        publish::composition_secret(rendered.connection_secret.as_ref(), ns);
    f.warnings.extend(outside);
    f.refs = refs;
    f.secret_published = publish::connection_secret(
        ctx,
        claim,
        old,
        &owner,
        &f.refs,
        &details,
        f.ready,
        composition_secret,
    )
    .await?;
    Ok(())
}

/// Seconds from the claim's creation to its first Ready=True.
fn observe_time_to_ready(
    ctx: &Context,
    claim: &Claim,
    old: &PostgreSQLInstanceStatus,
    new: &PostgreSQLInstanceStatus,
) {
    let was = get_condition(&old.conditions, READY);
    let is = get_condition(&new.conditions, READY);
    let first = was.is_none_or(|w| {
        w.status != ConditionStatus::True
            && matches!(w.reason.as_str(), "Creating" | "Waiting" | "Blocked")
    });
    if first
        && is.is_some_and(|r| r.status == ConditionStatus::True)
        && let Some(created) = &claim.meta().creation_timestamp
    {
        let secs = jiff::Timestamp::now()
            .duration_since(created.0)
            .as_secs_f64();
        ctx.metrics.time_to_ready.observe(secs.max(0.0));
    }
}
