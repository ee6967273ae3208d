//! A claim being deleted: delete what was composed for it and its connection Secret, then
//! release the finalizer (at once with Background, after everything is gone with Foreground).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::choose;
use super::context::Context;
use super::error::{Error, KubeContext};
use super::finalizer;
use super::kinds::Kinds;
use super::live::object_key_parts;
use super::object::Claim;
use super::observe::listed;
use super::plan::controlled_by;
use super::prune::{DeleteOutcome, delete_composed};
use super::status;
use crate::api::Composition;
use crate::api::claim::{CompositeDeletePolicy, PostgreSQLInstanceStatus};
use crate::api::common::ObjectReference;
use crate::compose::composed_name;

/// What to delete: what the status lists, and what the Composition lists (in case a status
/// write was lost after an apply).
pub(crate) fn targets(
    previous: &[ObjectReference],
    composition: Option<&Composition>,
    claim_name: &str,
    ns: &str,
) -> Vec<ObjectReference> {
    let mut refs = previous.to_vec();
    let listed = composition.and_then(|c| listed(c).ok()).unwrap_or_default();
    for (resource_name, api_version, kind) in listed {
        let r = ObjectReference {
            api_version,
            kind,
            name: composed_name(claim_name, &resource_name),
            namespace: Some(ns.to_string()),
        };
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    refs
}

pub(crate) async fn cleanup(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    old: &PostgreSQLInstanceStatus,
) -> Result<Action, Error> {
    if !finalizer::has(claim) {
        return Ok(Action::await_change());
    }
    let uid = claim.uid().ok_or(Error::InvalidClaim("metadata.uid"))?;
    let name = claim.name_any();
    let all = ctx.compositions().await;
    let composition = choose::choose(&choose::claim_choice(claim, old), &all).ok();
    let mut kinds = Kinds::new(&ctx.kinds, &ctx.watches);
    let mut pending = Vec::new();
    for r in targets(&old.resource_refs, composition.as_deref(), &name, ns) {
        // Our last apply's response is of no use once the claim goes.
        ctx.forget_recent_object(&object_key_parts(&r.api_version, &r.kind, ns, &r.name));
        if delete_composed(ctx, &mut kinds, ns, &uid, &r).await? == DeleteOutcome::Pending {
            pending.push(format!("{} {ns}/{}", r.kind, r.name));
        }
    }
    delete_secret(ctx, claim, ns, &uid).await?;

    let policy = claim.spec.composite_delete_policy.unwrap_or_default();
    if policy == CompositeDeletePolicy::Foreground && !pending.is_empty() {
        let now = Time(jiff::Timestamp::now());
        let new = status::deleting(old, &pending, claim.meta().generation, &now);
        let superseded: Vec<String> = claim.resource_version().into_iter().collect();
        status::write(ctx, claim, &superseded, old, &new).await?;
        // The composed kinds are watched: their disappearance wakes this claim. The requeue is a
        // safety net only.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }

    finalizer::release(ctx, claim).await?;
    ctx.watches.forget_claim(ns, &name);
    ctx.forget_claim(claim);
    Ok(Action::await_change())
}

/// Delete the claim's connection Secret, if the claim controls it.
async fn delete_secret(ctx: &Context, claim: &Claim, ns: &str, uid: &str) -> Result<(), Error> {
    let Some(target) = &claim.spec.write_connection_secret_to_ref else {
        return Ok(());
    };
    ctx.forget_recent_secret(&(ns.to_string(), target.name.clone()));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let live = secrets
        .get_opt(&target.name)
        .await
        .ctx(|| format!("reading Secret {ns}/{}", target.name))?;
    if !live.is_some_and(|s| controlled_by(&s.metadata, uid)) {
        return Ok(());
    }
    ctx.metrics.write("secret_delete");
    match secrets.delete(&target.name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).ctx(|| format!("deleting Secret {ns}/{}", target.name)),
    }
}
