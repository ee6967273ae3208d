//! The claim's finalizer, added before anything is composed and removed once cleanup is done,
//! as guarded merge patches ([`crate::kube::finalizer`]).

use kube::api::{Api, DynamicObject};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::FINALIZER;
use super::object::Claim;
use crate::kube::finalizer::{self, Written};

fn api(ctx: &Context, claim: &Claim) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &claim.namespace().unwrap_or_default(),
        &claim.api_resource(),
    )
}

/// What [`ensure`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ensured {
    /// The claim had the finalizer.
    Had,
    /// Added now; the claim's new resourceVersion.
    Added(Option<String>),
    /// The claim no longer exists.
    Gone,
}

/// Add paved's finalizer to the claim unless it has it.
pub(crate) async fn ensure(ctx: &Context, claim: &Claim) -> Result<Ensured, Error> {
    if has(claim) {
        return Ok(Ensured::Had);
    }
    Ok(match set(ctx, claim, true).await? {
        Written::Wrote(c) => Ensured::Added(c.resource_version()),
        Written::Unchanged => Ensured::Had,
        Written::Gone => Ensured::Gone,
    })
}

/// Remove paved's finalizer from the claim (a claim already gone is fine).
pub(crate) async fn release(ctx: &Context, claim: &Claim) -> Result<(), Error> {
    if has(claim) {
        set(ctx, claim, false).await?;
    }
    Ok(())
}

/// Add (`add`) or remove paved's finalizer, counted as one write.
async fn set(ctx: &Context, claim: &Claim, add: bool) -> Result<Written<DynamicObject>, Error> {
    ctx.metrics.write("finalizer");
    let verb = if add { "adding" } else { "removing" };
    finalizer::set(
        &api(ctx, claim),
        &claim.name_any(),
        claim.meta(),
        FINALIZER,
        add,
    )
    .await
    .ctx(|| format!("{verb} finalizer {FINALIZER}"))
}

/// Whether the claim carries paved's finalizer.
pub(crate) fn has(claim: &Claim) -> bool {
    finalizer::has(claim.meta(), FINALIZER)
}
