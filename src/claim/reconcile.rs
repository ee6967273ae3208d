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
use super::plan::{PlanInput, owner_reference};
use super::status::Facts;
use super::{
    apply, choose, cleanup, events, finalizer, observe, plan, prune, publish, render, status,
};
use crate::api::PostgreSQLInstanceStatus;
use crate::api::common::{ConditionStatus, READY, get_condition};
use kube::api::DynamicObject;

/// The reconcile entry point. The claim's status is read here, once, and handed to the steps.
#[instrument(skip_all, fields(claim = %format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any())))]
pub(crate) async fn reconcile(claim: Claim, ctx: Arc<Context>) -> Result<Action, Error> {
    let claim = &claim;
    let ns = claim
        .namespace()
        .ok_or(Error::InvalidClaim("metadata.namespace"))?;
    let old = ctx.live_status(claim);
    let result = if claim.meta().deletion_timestamp.is_some() {
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
pub(crate) fn error_policy(claim: Arc<DynamicObject>, _err: &Error, ctx: Arc<Context>) -> Action {
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
    let outcome = compose(ctx, claim, ns, old).await;
    let now = Time(jiff::Timestamp::now());
    let new = status::next(old, outcome.as_ref(), claim.meta().generation, &now);
    status::write(ctx, claim, &superseded, old, &new).await?;
    let secret = claim
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let error_reason = outcome.as_ref().err().map(Error::reason);
    let notes = events::transitions(old, &new, outcome.as_ref().ok(), error_reason, secret);
    events::emit(ctx, claim, notes).await;
    observe_time_to_ready(ctx, claim, old, &new);
    outcome.map(|_| Action::requeue(ctx.config.resync))
}

/// choose → observe → render → plan → apply → prune → publish.
async fn compose(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    old: &PostgreSQLInstanceStatus,
) -> Result<Facts, Error> {
    let uid = claim.uid().ok_or(Error::InvalidClaim("metadata.uid"))?;
    let claim_name = claim.name_any();
    let compositions = ctx.compositions().await;
    let composition = choose::choose(&choose::claim_choice(claim, old), &compositions)?;
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
    let mut refs: Vec<_> = planned.iter().map(|p| p.reference(ns)).collect();
    // Skipped by the engine (a Required patch's source is missing): what exists is kept.
    let (kept, skipped) = render::skipped(&rendered.skipped, &observed.objects, ns);
    refs.extend(kept);
    let deleted = prune::prune(
        ctx,
        &mut observed.kinds,
        ns,
        &uid,
        &old.resource_refs,
        &refs,
    )
    .await?;

    let (mut not_ready, any_unavailable) =
        status::summarize(&planned, &created, &observed.objects, ns);
    not_ready.extend(skipped);
    let ready = rendered.ready && not_ready.is_empty();
    // connectionSecretKeys: the only keys the claim's Secret may hold, as in Crossplane.
    let filtered;
    let details = if claim.kind.connection_secret_keys.is_empty() {
        &rendered.connection_details
    } else {
        let keys = &claim.kind.connection_secret_keys;
        filtered = rendered
            .connection_details
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        &filtered
    };
    let mut warnings = rendered.warnings.clone();
    let (composition_secret, outside) =
        publish::composition_secret(rendered.connection_secret.as_ref(), ns);
    warnings.extend(outside);
    let secret_published = publish::connection_secret(
        ctx,
        claim,
        old,
        &owner,
        &refs,
        details,
        ready,
        composition_secret,
    )
    .await?;

    Ok(Facts {
        composition: composition.name_any(),
        refs,
        not_ready,
        any_unavailable,
        ready,
        extra: status::extra(&rendered.claim_status),
        applied: applied.applied,
        deleted,
        secret_published,
        warnings,
    })
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
    let first = was.is_none_or(|w| w.status != ConditionStatus::True && w.reason == "Creating");
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
