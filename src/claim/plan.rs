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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::builders::{INSTANCE, NS, UID, observed, owner, rendered};
    use super::*;
    use crate::api::managed::{EXTERNAL_NAME, FINALIZER as MANAGED_FINALIZER};
    use serde_json::json;

    fn run_plan(
        owner: Option<&OwnerReference>,
        rendered: Vec<ComposedResource>,
        observed: &BTreeMap<String, ObservedResource>,
    ) -> Result<Vec<Planned>, Error> {
        let input = PlanInput {
            namespace: NS,
            owner,
            observed,
        };
        plan(&input, rendered)
    }

    fn one(r: ComposedResource, observed: Option<ObservedResource>) -> Result<Planned, Error> {
        let name = r.resource_name.clone();
        let observed: BTreeMap<_, _> = observed.into_iter().map(|o| (name.clone(), o)).collect();
        let o = owner();
        run_plan(Some(&o), vec![r], &observed).map(|mut p| p.remove(0))
    }

    fn bucket() -> ComposedResource {
        rendered(
            "bucket",
            "s3.example.com/v1",
            "Bucket",
            json!({"size": 1, "gone": null}),
        )
    }

    fn instance() -> ComposedResource {
        rendered(
            "rds",
            INSTANCE,
            "Instance",
            json!({"forProvider": {"region": "eu-west-1"}}),
        )
    }

    /// The object as paved applies it (the plan of a first apply).
    fn applied(r: ComposedResource) -> Value {
        one(r, None).unwrap().desired
    }

    #[test]
    fn actions() {
        let deleting = |r: ComposedResource| {
            let mut o = observed(&applied(r));
            o.object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            o
        };
        let changed = |r: ComposedResource| {
            let mut o = observed(&applied(r));
            o.object["spec"]["size"] = json!(2);
            o
        };
        let foreign_manager = |r: ComposedResource| {
            let mut o = observed(&applied(r));
            o.object["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
            o
        };
        // (rendered, observed, action)
        let cases: Vec<(ComposedResource, Option<ObservedResource>, Action)> = vec![
            (bucket(), None, Action::Create),
            (
                bucket(),
                Some(observed(&applied(bucket()))),
                Action::Unchanged,
            ),
            (
                instance(),
                Some(observed(&applied(instance()))),
                Action::Unchanged,
            ),
            (bucket(), Some(changed(bucket())), Action::Update),
            // Equal, but never applied by paved: applying takes the fields over.
            (bucket(), Some(foreign_manager(bucket())), Action::Update),
            (bucket(), Some(deleting(bucket())), Action::LeaveDeleting),
        ];
        for (i, (r, o, want)) in cases.into_iter().enumerate() {
            assert_eq!(one(r, o).map(|p| p.action).ok(), Some(want), "case {i}");
        }
    }

    #[test]
    fn the_body_is_what_the_api_server_gets() {
        let mut r = bucket();
        r.desired["status"] = json!({"x": 1});
        r.desired["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        let p = one(r, None).unwrap();
        assert_eq!(
            p.desired.get("status"),
            None,
            "status is the object's controller's"
        );
        assert_eq!(p.desired["spec"], json!({"size": 1}), "nulls are dropped");
        assert_eq!(p.desired["metadata"]["namespace"], json!(NS));
        assert_eq!(
            p.desired["metadata"]["ownerReferences"],
            json!([{"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
                "name": "db", "uid": UID, "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(
            (p.api_version.as_str(), p.kind.as_str(), p.name.as_str()),
            ("s3.example.com/v1", "Bucket", "db-bucket")
        );
        assert_eq!(p.describe(NS), format!("bucket (Bucket {NS}/db-bucket)"));
        assert_eq!(p.reference(NS).namespace.as_deref(), Some(NS));
        // Other kinds are not born managed.
        assert!(p.desired["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn managed_kinds_are_born_with_finalizer_and_external_name() {
        let external = |p: &Planned| {
            p.desired["metadata"]["annotations"][EXTERNAL_NAME]
                .as_str()
                .map(str::to_string)
        };
        let finalized = |p: &Planned| {
            p.desired["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|v| v == MANAGED_FINALIZER))
        };
        let derived = crate::api::instance::derive_identifier(NS, "db-rds");
        let fresh = one(instance(), None).unwrap();
        assert_eq!(external(&fresh), Some(derived));
        assert!(finalized(&fresh));
        // The live object's external-name is kept.
        let mut live = observed(&applied(instance()));
        live.object["metadata"]["annotations"][EXTERNAL_NAME] = json!("adopted-id");
        let kept = one(instance(), Some(live)).unwrap();
        assert_eq!(external(&kept).as_deref(), Some("adopted-id"));
        // A deleting object gets no new finalizer.
        let mut live = observed(&applied(instance()));
        live.object["metadata"]["finalizers"] = json!([]);
        live.object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let leaving = one(instance(), Some(live)).unwrap();
        assert!(!finalized(&leaving));
        assert_eq!(leaving.action, Action::LeaveDeleting);
    }

    #[test]
    fn refusals() {
        let mut other_ns = bucket();
        other_ns.desired["metadata"]["namespace"] = json!("elsewhere");
        let mut no_kind = bucket();
        no_kind.desired.as_object_mut().unwrap().remove("kind");
        let mut no_name = bucket();
        no_name.desired["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let mut not_ours = observed(&applied(bucket()));
        not_ours.object["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
        // (rendered, observed, error reason, message part)
        let cases = [
            (
                other_ns,
                None,
                "InvalidComposedResource",
                "metadata.namespace \"elsewhere\"",
            ),
            (no_kind, None, "InvalidComposedResource", "has no kind"),
            (
                no_name,
                None,
                "InvalidComposedResource",
                "has no metadata.name",
            ),
            (
                bucket(),
                Some(not_ours),
                "ComposedResourceConflict",
                "not controlled by this claim",
            ),
        ];
        for (i, (r, o, reason, part)) in cases.into_iter().enumerate() {
            let e = one(r, o)
                .err()
                .unwrap_or_else(|| panic!("case {i}: no error"));
            assert_eq!(e.reason(), reason, "case {i}");
            assert!(e.to_string().contains(part), "case {i}: {e}");
        }
    }

    #[test]
    fn without_a_claim_uid_ownership_is_neither_set_nor_checked() {
        let mut not_ours = observed(&applied(bucket()));
        not_ours.object["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
        let observed: BTreeMap<_, _> = [("bucket".to_string(), not_ours)].into();
        let p = run_plan(None, vec![bucket()], &observed).unwrap();
        assert!(p[0].desired["metadata"].get("ownerReferences").is_none());
        assert_eq!(p[0].action, Action::Update, "the owner reference differs");
    }

    #[test]
    fn an_observed_object_of_another_name_is_not_the_rendered_one() {
        let mut elsewhere = observed(&applied(bucket()));
        elsewhere.object["metadata"]["name"] = json!("renamed");
        assert_eq!(
            one(bucket(), Some(elsewhere)).unwrap().action,
            Action::Create
        );
    }

    #[test]
    fn owner_reference_needs_a_uid() {
        let claim = json!({"apiVersion": "database.example.com/v1alpha1",
            "kind": "PostgreSQLInstance", "metadata": {"name": "db", "uid": UID}});
        assert_eq!(owner_reference(&claim), Some(owner()));
        let mut no_uid = claim.clone();
        no_uid["metadata"]["uid"] = json!("");
        assert_eq!(owner_reference(&no_uid), None);
        assert_eq!(owner_reference(&json!({"metadata": {"name": "db"}})), None);
    }
}
