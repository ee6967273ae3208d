//! Step 2, observe: the composed objects the Composition lists, by the names paved gives them,
//! and their connection Secrets, from the watch caches. Resolves each composed kind once.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use super::context::Context;
use super::error::Error;
use super::kinds::Kinds;
use crate::api::Composition;
use crate::api::common::READY;
use crate::compose::{self, ObservedResource};

/// What exists of a claim's composed objects.
pub(crate) struct Observed<'a> {
    /// The composed objects found, by Composition resource name, in the engine's form.
    pub objects: BTreeMap<String, ObservedResource>,
    /// The kinds the Composition composes, resolved.
    pub kinds: Kinds<'a>,
}

/// (resource name, base apiVersion, base kind) of every resource the Composition may compose,
/// in either mode (the engine lists them: `spec.resources`, or every patch-and-transform
/// step's). The engine refuses patches that change apiVersion or kind, so these are the
/// rendered ones too. Fails like the engine's validation, before anything is observed: a
/// Pipeline step naming a Function paved does not run is refused here by step and Function.
pub(crate) fn listed(composition: &Composition) -> Result<Vec<(String, String, String)>, Error> {
    let name = composition.metadata.name.as_deref().unwrap_or_default();
    Ok(compose::listed_resources(name, &composition.spec)?
        .into_iter()
        .map(|l| (l.name, l.api_version, l.kind))
        .collect())
}

/// Every composed object of `claim_name` in `ns` the Composition lists, with its connection
/// Secret's data.
pub(crate) async fn observe<'a>(
    ctx: &'a Context,
    ns: &str,
    claim_name: &str,
    composition: &Composition,
) -> Result<Observed<'a>, Error> {
    let mut kinds = Kinds::new(&ctx.kinds, &ctx.watches);
    let mut objects = BTreeMap::new();
    for (resource_name, api_version, kind) in listed(composition)? {
        let ar = kinds.resolve(&resource_name, &api_version, &kind).await?;
        let name = compose::composed_name(claim_name, &resource_name);
        let Some(live) = ctx.live_object(&ar, ns, &name).await? else {
            continue;
        };
        let connection_secret = read_connection_secret(ctx, ns, &live, claim_name).await?;
        let object = serde_json::to_value(&live).unwrap_or_default();
        objects.insert(
            resource_name,
            ObservedResource {
                object,
                connection_secret,
            },
        );
    }
    Ok(Observed { objects, kinds })
}

/// Whether an object's own `Ready` condition is `True`.
fn is_ready(object: &Value) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(READY)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The data of a composed object's connection Secret (same namespace only), and remember that
/// this claim reads it.
async fn read_connection_secret(
    ctx: &Context,
    ns: &str,
    live: &DynamicObject,
    claim_name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let Some(r) = live.data.pointer("/spec/writeConnectionSecretToRef") else {
        return Ok(BTreeMap::new());
    };
    let Some(name) = r.get("name").and_then(Value::as_str) else {
        return Ok(BTreeMap::new());
    };
    if r.get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| n != ns)
    {
        // Never read Secrets across namespaces.
        return Ok(BTreeMap::new());
    }
    ctx.watches.note_secret_reader(ns, name, claim_name);
    // Connection Secrets of the objects paved reconciles carry paved's label: the cache has
    // them. Another controller's may not: read those directly, once the object says it is
    // Ready (its Secret is expected then; a not-ready object's absent Secret costs no GET).
    let secret = ctx.live_secret(ns, name, is_ready(&live.data)).await?;
    Ok(secret
        .and_then(|s| s.data)
        .map(|d| d.into_iter().map(|(k, v)| (k, v.0)).collect())
        .unwrap_or_default())
}
