//! Cross-resource references, in the shape of Crossplane's: `...Ref` names one object of the
//! referenced kind in the same namespace, `...Selector` picks objects by controller and labels.
//! The lifecycle resolves them ([`crate::managed::refs`]) and writes the value into the plain
//! field before any AWS call.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a reference must resolve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Resolution {
    /// The object waits until the reference resolves (the default).
    #[default]
    Required,
    /// A reference that does not resolve is skipped.
    Optional,
}

/// When a reference is resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Resolve {
    /// Only while the plain field is empty (the default).
    #[default]
    IfNotPresent,
    /// On every reconcile, overwriting the plain field.
    Always,
}

/// How a reference or selector is resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReferencePolicy {
    /// Required (the default): wait until the reference resolves. Optional: skip it if not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// IfNotPresent (the default): resolve only while the plain field is empty. Always: on
    /// every reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Resolve>,
}

/// A reference to one object of the referenced kind, by name, in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reference {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Policies for referencing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ReferencePolicy>,
    /// The namespace of the referenced object: only in the schema of the namespaced twins
    /// (see [`crate::api::twin`]), where paved refuses any but the object's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub namespace: Option<String>,
}

/// Selects objects of the referenced kind in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Select only objects with the same controller (for composed objects: the same claim) as
    /// this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_controller_ref: Option<bool>,
    /// Select only objects with all of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Policies for selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ReferencePolicy>,
    /// The namespace to select in: only in the schema of the namespaced twins (see
    /// [`crate::api::twin`]), where paved refuses any but the object's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub namespace: Option<String>,
}

impl Reference {
    pub fn resolution(&self) -> Resolution {
        policy_resolution(self.policy.as_ref())
    }
    pub fn resolve(&self) -> Resolve {
        policy_resolve(self.policy.as_ref())
    }
}

impl Selector {
    pub fn resolution(&self) -> Resolution {
        policy_resolution(self.policy.as_ref())
    }
    pub fn resolve(&self) -> Resolve {
        policy_resolve(self.policy.as_ref())
    }
}

fn policy_resolution(p: Option<&ReferencePolicy>) -> Resolution {
    p.and_then(|p| p.resolution).unwrap_or_default()
}

fn policy_resolve(p: Option<&ReferencePolicy>) -> Resolve {
    p.and_then(|p| p.resolve).unwrap_or_default()
}
