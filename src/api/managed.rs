//! The managed-resource contract: what every managed kind (today `Instance`) and both
//! controllers honour, named as in Crossplane so that objects migrated from Crossplane keep
//! working.
//!
//! - [`FINALIZER`], [`EXTERNAL_NAME`], [`PAUSED`]: the metadata the lifecycle reads and writes.
//! - [`Policies`]: what `spec.managementPolicies` allow.
//! - [`OWNER_TAG`], [`OWNER_UID_TAG`]: the tags that prove an external resource is an object's.
//! - [`born_managed`]: what a managed object composed by the claim controller carries from its
//!   first apply (the finalizer and the derived external-name), so that the lifecycle need not
//!   write them before its first external call. The claim controller calls it for every composed
//!   object; it changes only objects of a kind in [`MANAGED_KINDS`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The finalizer of managed objects: the external resource is deleted (or released) first.
pub const FINALIZER: &str = "finalizer.managedresource.crossplane.io";
/// The annotation naming the external resource (for an Instance, the RDS identifier).
pub const EXTERNAL_NAME: &str = "crossplane.io/external-name";
/// `"true"`: the lifecycle makes no external call for the object.
pub const PAUSED: &str = "crossplane.io/paused";
/// Tag on every external resource paved creates: `namespace/name` of the object.
pub const OWNER_TAG: &str = "paved.io/owner";
/// Tag on every external resource paved creates: UID of the object.
pub const OWNER_UID_TAG: &str = "paved.io/owner-uid";
/// Label a Composition's objects carry naming the claim that composed them.
pub const CLAIM_NAME_LABEL: &str = "crossplane.io/claim-name";
/// Annotation naming the Composition resource a composed object was rendered from.
pub const COMPOSITION_RESOURCE_NAME: &str = "crossplane.io/composition-resource-name";
/// Tag on the external resources of composed objects: `<claim UID>/<composition resource name>`,
/// so that the same claim re-adopts what an orphaned predecessor of the object left running.
pub const COMPOSED_BY_TAG: &str = "paved.io/composed-by";

// What happens to the external resource when the object is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the RDS instance.
    #[default]
    Delete,
    /// Leave the RDS instance running.
    Orphan,
}

// One thing paved may do with an external resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ManagementAction {
    #[serde(rename = "*")]
    All,
    Observe,
    Create,
    Update,
    Delete,
    LateInitialize,
}

/// What the management policies allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policies {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

impl Policies {
    /// Crossplane's semantics: `*` is everything; otherwise Observe is required and each of
    /// Create, Update, Delete must be listed to be allowed. LateInitialize is accepted and has no
    /// effect: paved never writes defaults of the external resource back into the spec.
    /// `Err(message)`: the policies are invalid (the message is for the Synced condition).
    pub fn parse(p: Option<&[ManagementAction]>) -> Result<Self, String> {
        let Some(p) = p.filter(|p| !p.is_empty()) else {
            return Ok(Self::all());
        };
        if p.contains(&ManagementAction::All) {
            if p.len() > 1 {
                return Err(
                    "spec.managementPolicies: \"*\" cannot be combined with other policies".into(),
                );
            }
            return Ok(Self::all());
        }
        if !p.contains(&ManagementAction::Observe) {
            return Err(
                "spec.managementPolicies must include Observe (or be [\"*\"]): paved cannot manage an RDS instance it may not observe"
                    .into(),
            );
        }
        Ok(Self {
            create: p.contains(&ManagementAction::Create),
            update: p.contains(&ManagementAction::Update),
            delete: p.contains(&ManagementAction::Delete),
        })
    }

    pub fn all() -> Self {
        Self {
            create: true,
            update: true,
            delete: true,
        }
    }

    /// The policies of an object's JSON (`spec.managementPolicies`), for code that holds the
    /// object untyped. Unreadable policies are `Err` like invalid ones.
    pub fn of_json(obj: &Value) -> Result<Self, String> {
        match obj.pointer("/spec/managementPolicies") {
            None | Some(Value::Null) => Ok(Self::all()),
            Some(v) => {
                let p: Vec<ManagementAction> = serde_json::from_value(v.clone())
                    .map_err(|e| format!("spec.managementPolicies: {e}"))?;
                Self::parse(Some(&p))
            }
        }
    }
}

/// The non-empty external-name of an object.
pub fn external_name(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXTERNAL_NAME))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether the object is paused ([`PAUSED`] is `"true"`).
pub fn is_paused(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED))
        .is_some_and(|v| v == "true")
}

/// A kind served by the managed-resource lifecycle, as far as the contract goes.
#[derive(Debug)]
pub struct ManagedKind {
    /// `apiVersion`s of the kind that paved serves.
    pub api_versions: &'static [&'static str],
    pub kind: &'static str,
    /// The external-name derived for `(namespace, name)` when none is set and Create is
    /// allowed. The lifecycle and the claim controller both use this one.
    pub derive_external_name: fn(&str, &str) -> String,
    /// The external-name the desired object names in a field of its own (the Instance's
    /// spec.forProvider.identifier), which wins over a derived one.
    pub wanted_external_name: fn(&Value) -> super::instance::WantedIdentifier,
}

/// Every managed kind. Adding one: its API types, one entry here, one external-client file and
/// one registration line in `run.rs`.
pub const MANAGED_KINDS: &[ManagedKind] = &[ManagedKind {
    api_versions: &["rds.aws.upbound.io/v1beta1"],
    kind: "Instance",
    derive_external_name: super::instance::derive_identifier,
    wanted_external_name: super::instance::wanted_identifier_of,
}];

/// The managed kind of `apiVersion`/`kind`, if it is one.
pub fn managed_kind(api_version: &str, kind: &str) -> Option<&'static ManagedKind> {
    MANAGED_KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_versions.contains(&api_version))
}

/// Prepare the first apply of a composed object (`desired`, the object as JSON) the way the
/// lifecycle would otherwise in a write of its own before its first external call: its
/// [`FINALIZER`] and its [`EXTERNAL_NAME`]. An external-name the desired object sets, or the
/// live object already carries, is kept; otherwise the one the spec names (the Instance's
/// spec.forProvider.identifier) is used, or one is derived when Create is allowed. A
/// deleting object gets no new finalizer. Returns false (and changes nothing) when the object is
/// not of a managed kind.
pub fn born_managed(
    api_version: &str,
    kind: &str,
    desired: &mut Value,
    live: Option<&ObjectMeta>,
    namespace: &str,
    name: &str,
) -> bool {
    let Some(managed) = managed_kind(api_version, kind) else {
        return false;
    };
    let create_allowed = Policies::of_json(desired).is_ok_and(|p| p.create);
    let spec_wanted = (managed.wanted_external_name)(desired);
    let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) else {
        return true;
    };
    let wanted = meta
        .get("annotations")
        .and_then(|a| a.get(EXTERNAL_NAME))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !wanted {
        use super::instance::WantedIdentifier;
        // An identifier the spec names wins over a derived one; an invalid one leaves the
        // external-name unset (the lifecycle refuses the object, naming the field).
        let id = match live.and_then(external_name) {
            Some(id) => Some(id.to_string()),
            None => match spec_wanted {
                WantedIdentifier::Valid(id) => Some(id),
                WantedIdentifier::Invalid(..) => None,
                WantedIdentifier::Unset => {
                    create_allowed.then(|| (managed.derive_external_name)(namespace, name))
                }
            },
        };
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let (Some(id), Some(a)) = (id, annotations.as_object_mut()) {
            a.insert(EXTERNAL_NAME.to_string(), Value::String(id));
        }
    }
    if live.is_some_and(|l| l.deletion_timestamp.is_some()) {
        return true;
    }
    let finalizers = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(f) = finalizers.as_array_mut()
        && !f.iter().any(|v| v.as_str() == Some(FINALIZER))
    {
        f.push(Value::String(FINALIZER.to_string()));
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::ManagementAction::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn policies() {
        assert_eq!(Policies::parse(None), Ok(Policies::all()));
        assert_eq!(Policies::parse(Some(&[All])), Ok(Policies::all()));
        let none = Policies {
            create: false,
            update: false,
            delete: false,
        };
        assert_eq!(Policies::parse(Some(&[Observe])), Ok(none));
        let takeover = Policies::parse(Some(&[Observe, Update, Delete, LateInitialize]));
        assert_eq!(
            takeover,
            Ok(Policies {
                update: true,
                delete: true,
                ..none
            })
        );
        assert!(Policies::parse(Some(&[Create, Update])).is_err());
        assert!(Policies::parse(Some(&[All, Observe])).is_err());
        assert_eq!(Policies::of_json(&json!({"spec": {}})), Ok(Policies::all()));
        assert_eq!(
            Policies::of_json(&json!({"spec": {"managementPolicies": ["Observe"]}})),
            Ok(none)
        );
        assert!(Policies::of_json(&json!({"spec": {"managementPolicies": ["Bogus"]}})).is_err());
    }

    const IV: &str = "rds.aws.upbound.io/v1beta1";

    fn desired(annotations: Value, policies: Value) -> Value {
        json!({"metadata": {"name": "db", "annotations": annotations},
               "spec": {"managementPolicies": policies}})
    }

    fn live(external: Option<&str>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            annotations: external.map(|e| [(EXTERNAL_NAME.to_string(), e.to_string())].into()),
            deletion_timestamp: deleting.then_some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn born_managed_sets_finalizer_and_external_name() {
        let derived = super::super::instance::derive_identifier("ns", "db");
        // (desired annotations, policies, live, expected external-name, expected finalizer)
        type Case<'a> = (Value, Value, Option<ObjectMeta>, Option<&'a str>, bool);
        let cases: Vec<Case> = vec![
            (json!({}), Value::Null, None, Some(derived.as_str()), true),
            (
                json!({EXTERNAL_NAME: "mine"}),
                Value::Null,
                None,
                Some("mine"),
                true,
            ),
            (
                json!({}),
                Value::Null,
                Some(live(Some("kept"), false)),
                Some("kept"),
                true,
            ),
            (json!({}), json!(["Observe"]), None, None, true),
            (
                json!({}),
                Value::Null,
                Some(live(None, true)),
                Some(derived.as_str()),
                false,
            ),
        ];
        for (i, (a, p, l, name, fin)) in cases.into_iter().enumerate() {
            let mut d = desired(a, p);
            assert!(born_managed(IV, "Instance", &mut d, l.as_ref(), "ns", "db"));
            assert_eq!(
                d.pointer("/metadata/annotations/crossplane.io~1external-name")
                    .and_then(Value::as_str),
                name,
                "case {i}"
            );
            let has_fin = d
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| f.iter().any(|v| v == FINALIZER));
            assert_eq!(has_fin, fin, "case {i}");
        }
        // spec.forProvider.identifier: used when valid; when invalid, nothing is derived
        // instead (the lifecycle refuses it, naming the field).
        for (identifier, live_meta, name) in [
            ("orders-main", None, Some("orders-main")),
            ("orders-main", Some(live(Some("kept"), false)), Some("kept")),
            ("Orders--Main-", None, None),
            ("", None, Some(derived.as_str())),
        ] {
            let mut d = desired(json!({}), Value::Null);
            d["spec"]["forProvider"] = json!({"identifier": identifier});
            assert!(born_managed(
                IV,
                "Instance",
                &mut d,
                live_meta.as_ref(),
                "ns",
                "db"
            ));
            assert_eq!(
                d.pointer("/metadata/annotations/crossplane.io~1external-name")
                    .and_then(Value::as_str),
                name,
                "identifier {identifier:?}"
            );
        }
        let mut other = desired(json!({}), Value::Null);
        let before = other.clone();
        assert!(!born_managed(
            "v1",
            "ConfigMap",
            &mut other,
            None,
            "ns",
            "db"
        ));
        assert_eq!(other, before, "other kinds are left alone");
    }
}

/// Where a managed object's external resource lives: paved records it in the status when it first
/// observes or creates the resource, and refuses a later change (moving a database is not
/// something a spec edit can do; obeying it would create a second, empty one).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The AWS region.
    pub region: String,
    /// The ProviderConfig (`kind/name`; the kind is `ProviderConfig` for the aws.upbound.io one).
    pub provider_config: String,
}
