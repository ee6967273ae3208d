//! Step 4, plan (pure): from the rendered objects and the observed ones to exactly what paved
//! applies, and whether it needs applying. `paved render` prints the same plan, so what it
//! shows is what `paved run` writes, with the same refusals.
//!
//! Per rendered object, in Composition order:
//! - `status` and `null`s are dropped (status is the object's controller's; a null would delete
//!   a field);
//! - apiVersion, kind and metadata.name must be set; metadata.namespace is the claim's;
//! - the claim's controller reference is set (when the claim has a uid);
//! - an object that exists must be controlled by the claim (paved never adopts);
//! - what the object's controller would write first is added ("born managed": for managed
//!   kinds, their finalizer and external-name, by the contract in [`crate::api::managed`]);
//! - it needs applying when it does not exist, or some field differs or is no longer rendered
//!   ([`diff::needs_apply`]); an object being deleted is left to finish.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Deserialize as _;
use serde_json::Value;

use super::diff;
use super::error::Error;
use super::names::FIELD_MANAGER;
use crate::api::common::ObjectReference;
use crate::api::managed::born_managed;
use crate::compose::{ComposedResource, ObservedResource, Readiness};

/// What planning needs besides the rendered objects.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The claim's namespace: every composed object lives there.
    pub namespace: &'a str,
    /// The controller reference to the claim. `None` when the claim has no uid (a claim file
    /// given to `paved render`): then no owner reference is set and ownership of observed
    /// objects is not checked.
    pub owner: Option<&'a OwnerReference>,
    /// The observed composed objects, by Composition resource name (the engine's input).
    pub observed: &'a BTreeMap<String, ObservedResource>,
}

/// What to do with one composed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It does not exist: apply creates it.
    Create,
    /// It exists and differs: apply updates it.
    Update,
    /// It exists and applying would change nothing: no write.
    Unchanged,
    /// It is being deleted: left to finish, composed again once it is gone.
    LeaveDeleting,
}

/// One composed object, as paved applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The Composition resource name.
    pub resource_name: String,
    /// Index in the Composition's `spec.resources`.
    pub index: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// The body of the server-side apply.
    pub desired: Value,
    /// What the engine judged of the observed object.
    pub readiness: Readiness,
    pub action: Action,
}

impl Planned {
    /// `resource (Kind namespace/name)`, as messages and Events name it.
    pub fn describe(&self, ns: &str) -> String {
        format!("{} ({} {ns}/{})", self.resource_name, self.kind, self.name)
    }

    /// The reference in the claim's `status.resourceRefs`.
    pub fn reference(&self, ns: &str) -> ObjectReference {
        ObjectReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: Some(ns.to_string()),
        }
    }

    /// The name of the connection Secret the object writes (`spec.writeConnectionSecretToRef`).
    pub fn connection_secret(&self) -> Option<&str> {
        self.desired
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str)
    }
}

/// The controller reference to a claim, from its JSON form; `None` without a uid.
pub fn owner_reference(claim: &Value) -> Option<OwnerReference> {
    let s = |p: &str| claim.pointer(p).and_then(Value::as_str).map(str::to_string);
    Some(OwnerReference {
        api_version: s("/apiVersion")?,
        kind: s("/kind")?,
        name: s("/metadata/name")?,
        uid: s("/metadata/uid").filter(|u| !u.is_empty())?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Plan every rendered object. The first refusal stops planning: nothing is applied.
pub fn plan(input: &PlanInput<'_>, rendered: Vec<ComposedResource>) -> Result<Vec<Planned>, Error> {
    rendered.into_iter().map(|r| plan_one(input, r)).collect()
}

/// The observed object of a resource, when it is the object rendered (same kind and name), with
/// its metadata.
fn live<'o>(
    observed: Option<&'o ObservedResource>,
    kind: &str,
    name: &str,
) -> Option<(&'o Value, ObjectMeta)> {
    let object = &observed?.object;
    let meta = ObjectMeta::deserialize(object.get("metadata")?).unwrap_or_default();
    let same = meta.name.as_deref() == Some(name)
        && object.get("kind").and_then(Value::as_str) == Some(kind);
    same.then_some((object, meta))
}

fn plan_one(input: &PlanInput<'_>, r: ComposedResource) -> Result<Planned, Error> {
    let ComposedResource {
        resource_name,
        index,
        mut desired,
        readiness,
        ..
    } = r;
    diff::strip_for_apply(&mut desired);
    let field = |p: &str| {
        desired
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let incomplete = |field: &'static str| Error::Incomplete {
        resource: resource_name.clone(),
        field,
    };
    let api_version = field("/apiVersion").ok_or_else(|| incomplete("apiVersion"))?;
    let kind = field("/kind").ok_or_else(|| incomplete("kind"))?;
    let name = field("/metadata/name").ok_or_else(|| incomplete("metadata.name"))?;
    let ns = input.namespace;
    match field("/metadata/namespace") {
        Some(other) if other != ns => {
            return Err(Error::WrongNamespace {
                resource: resource_name,
                namespace: other,
                claim_namespace: ns.to_string(),
            });
        }
        _ => desired["metadata"]["namespace"] = Value::String(ns.to_string()),
    }
    if let Some(owner) = input.owner {
        let owner = serde_json::to_value(owner).unwrap_or_default();
        desired["metadata"]["ownerReferences"] = Value::Array(vec![owner]);
    }
    let live = live(input.observed.get(&resource_name), &kind, &name);
    if let (Some((_, meta)), Some(owner)) = (&live, input.owner)
        && !controlled_by(meta, &owner.uid)
    {
        return Err(Error::NotControlled {
            resource: resource_name,
            kind,
            namespace: ns.to_string(),
            name,
        });
    }
    let live_meta = live.as_ref().map(|(_, m)| m);
    born_managed(&api_version, &kind, &mut desired, live_meta, ns, &name);
    let action = match &live {
        None => Action::Create,
        Some((_, meta)) if meta.deletion_timestamp.is_some() => Action::LeaveDeleting,
        Some((object, meta)) => {
            let managed = meta.managed_fields.as_deref().unwrap_or_default();
            if diff::needs_apply(&desired, Some(object), managed, FIELD_MANAGER) {
                Action::Update
            } else {
                Action::Unchanged
            }
        }
    };
    Ok(Planned {
        resource_name,
        index,
        api_version,
        kind,
        name,
        desired,
        readiness,
        action,
    })
}

/// Whether the object is controlled by the object with this uid.
pub(crate) fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|o| o.controller == Some(true) && o.uid == uid)
    })
}
