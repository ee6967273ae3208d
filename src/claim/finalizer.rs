//! The claim's finalizer, added before anything is composed and removed once cleanup is done.
//! Both as merge patches guarded by the claim's resourceVersion: a merge patch replaces the
//! whole list, so a concurrent change fails (409) rather than losing someone's finalizer.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::FINALIZER;
use crate::api::PostgreSQLInstance;

/// The claim's finalizers with paved's added (`None`: it is there already).
fn added(finalizers: &[String]) -> Option<Vec<String>> {
    if finalizers.iter().any(|f| f == FINALIZER) {
        return None;
    }
    let mut out = finalizers.to_vec();
    out.push(FINALIZER.to_string());
    Some(out)
}

/// The claim's finalizers without paved's (`None`: it is not there).
fn removed(finalizers: &[String]) -> Option<Vec<String>> {
    finalizers.iter().any(|f| f == FINALIZER).then(|| {
        finalizers
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect()
    })
}

async fn patch(
    ctx: &Context,
    claim: &PostgreSQLInstance,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": claim.resource_version()}});
    ctx.metrics.write("finalizer");
    let ns = claim.namespace().unwrap_or_default();
    Api::<PostgreSQLInstance>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
}

/// Add paved's finalizer to the claim unless it has it.
pub(crate) async fn ensure(ctx: &Context, claim: &PostgreSQLInstance) -> Result<(), Error> {
    let Some(finalizers) = added(claim.finalizers()) else {
        return Ok(());
    };
    patch(ctx, claim, finalizers)
        .await
        .ctx(|| format!("adding finalizer {FINALIZER}"))
}

/// Remove paved's finalizer from the claim (a claim already gone is fine).
pub(crate) async fn release(ctx: &Context, claim: &PostgreSQLInstance) -> Result<(), Error> {
    let Some(finalizers) = removed(claim.finalizers()) else {
        return Ok(());
    };
    match patch(ctx, claim, finalizers).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).ctx(|| format!("removing finalizer {FINALIZER}")),
    }
}

/// Whether the claim carries paved's finalizer.
pub(crate) fn has(claim: &PostgreSQLInstance) -> bool {
    claim
        .meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}
