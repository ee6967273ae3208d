//! Step 5, apply what differs: one server-side apply per planned object whose action is
//! [`Action::Create`] or [`Action::Update`]; nothing for the others.

use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::kinds::Kinds;
use super::live::dyn_api;
use super::names::FIELD_MANAGER;
use super::plan::{Action, Planned};
use crate::compose::ObservedResource;

/// What the apply step wrote.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The objects applied, described for the Event.
    pub applied: Vec<String>,
    /// The resource names of the objects created now.
    pub created: Vec<String>,
}

/// Apply every object of the plan that needs it. `observed` then holds the API server's answer
/// for each object written (what the status judges them on), and the claim is recorded as the
/// reader of every connection Secret its objects write.
pub(crate) async fn apply(
    ctx: &Context,
    ns: &str,
    claim_name: &str,
    planned: &[Planned],
    kinds: &Kinds<'_>,
    observed: &mut BTreeMap<String, ObservedResource>,
) -> Result<Applied, Error> {
    let mut out = Applied::default();
    for p in planned {
        if matches!(p.action, Action::Create | Action::Update) {
            let superseded = observed
                .get(&p.resource_name)
                .and_then(|o| o.object.pointer("/metadata/resourceVersion"))
                .and_then(serde_json::Value::as_str);
            let response = apply_one(ctx, ns, p, kinds, superseded).await?;
            out.applied.push(p.describe(ns));
            if p.action == Action::Create {
                out.created.push(p.resource_name.clone());
            }
            let object = serde_json::to_value(&response).unwrap_or_default();
            observed.entry(p.resource_name.clone()).or_default().object = object;
        }
        if let Some(secret) = p.connection_secret() {
            ctx.watches.note_secret_reader(ns, secret, claim_name);
        }
    }
    Ok(out)
}

async fn apply_one(
    ctx: &Context,
    ns: &str,
    p: &Planned,
    kinds: &Kinds<'_>,
    superseded: Option<&str>,
) -> Result<kube::api::DynamicObject, Error> {
    // The engine keeps apiVersion and kind as the Composition's base has them, and observe
    // resolved every base kind: a miss cannot happen, and is reported as not served.
    let ar = kinds
        .get(&p.api_version, &p.kind)
        .ok_or_else(|| Error::KindNotServed {
            resource: p.resource_name.clone(),
            api_version: p.api_version.clone(),
            kind: p.kind.clone(),
        })?;
    ctx.metrics.write("apply");
    let res = dyn_api(ctx, ar, ns)
        .patch(
            &p.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&p.desired),
        )
        .await;
    if let Err(kube::Error::Api(s)) = &res
        && s.code == 404
    {
        // The kind is no longer served (its CRD went away): discover it again next time.
        ctx.kinds.forget(&ar.api_version, &ar.kind);
    }
    let response = res.ctx(|| format!("applying {}", p.describe(ns)))?;
    ctx.note_applied(ar, ns, superseded, &response);
    Ok(response)
}
