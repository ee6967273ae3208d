//! `CompositeResourceDefinition` (`apiextensions.crossplane.io/v1` and `v2`): a claim kind the
//! platform team defines. paved turns each one into a real, namespaced CRD (see [`crate::xrd`])
//! and composes its objects through the same pipeline as the built-in `PostgreSQLInstance`.
//!
//! The schema is Crossplane's: v1 (an XR kind in `names`, a claim kind in `claimNames`) and v2
//! (`scope: Namespaced`: the XR kind is itself the namespaced object paved serves). Both
//! versions share this one schema; v2 defaults `scope` to `Namespaced`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::claim::CompositeDeletePolicy;
use super::common::{Condition, NameReference, any_value};

/// The `Established` condition: the kind's CRD is served by the API server.
pub const ESTABLISHED: &str = "Established";
/// The `Offered` condition: claims of the kind are composed by paved.
pub const OFFERED: &str = "Offered";
/// The condition that reports existing claims a schema change would make invalid.
pub const CLAIMS_VALID: &str = "ClaimsValid";

/// A claim kind defined by the platform team (Crossplane's CompositeResourceDefinition).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "A CompositeResourceDefinition (Crossplane v1 with claimNames, or v2 with scope Namespaced): a kind of claim the platform team defines, with its own schema. paved serves it as a namespaced CRD (the claim kind in v1, the XR kind itself in v2) and composes its claims with the Composition whose compositeTypeRef names the XR kind (or the claim kind). Conditions Established and Offered say when the kind is served; a bad schema, a name conflict or a change that existing claims would fail is reported here.",
    group = "apiextensions.crossplane.io",
    version = "v1",
    kind = "CompositeResourceDefinition",
    plural = "compositeresourcedefinitions",
    singular = "compositeresourcedefinition",
    shortname = "xrd",
    shortname = "xrds",
    category = "crossplane",
    category = "paved",
    status = "CompositeResourceDefinitionStatus",
    printcolumn = r#"{"name":"ESTABLISHED","type":"string","jsonPath":".status.conditions[?(@.type=='Established')].status"}"#,
    printcolumn = r#"{"name":"OFFERED","type":"string","jsonPath":".status.conditions[?(@.type=='Offered')].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CompositeResourceDefinitionSpec {
    /// The API group of the defined kinds, for example `database.example.org`. Cannot change.
    pub group: String,

    /// The names of the composite resource (XR) kind. Compositions name it in
    /// `compositeTypeRef`. In a v2 definition with `scope: Namespaced` this is the kind paved
    /// serves.
    pub names: XrdNames,

    /// The names of the claim kind (v1): the namespaced kind application developers write and
    /// paved serves. Required unless `scope` is `Namespaced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_names: Option<XrdNames>,

    /// v2: where the XR lives. `Namespaced` (the v2 default): the XR kind is served as a
    /// namespaced kind of its own, with no claim. `LegacyCluster`: as v1, through
    /// `claimNames`. `Cluster` is not supported by paved (composed resources are namespaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<XrdScope>,

    /// The versions of the kind. Exactly one is `referenceable`: that one is stored, and
    /// Compositions reference it.
    pub versions: Vec<XrdVersion>,

    /// The keys a claim's connection Secret may hold. When set, every other key the
    /// Composition produces is left out of the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_secret_keys: Vec<String>,

    /// The Composition a claim uses when it names none and selects none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_composition_ref: Option<NameReference>,

    /// The Composition every claim uses, whatever it names or selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_composition_ref: Option<NameReference>,

    /// `Automatic` or `Manual`: the compositionUpdatePolicy of a claim that sets none
    /// (Automatic when this is unset too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Automatic", "Manual"]))]
    pub default_composition_update_policy: Option<String>,

    /// What deleting a claim waits for when the claim sets no `compositeDeletePolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_composite_delete_policy: Option<CompositeDeletePolicy>,
}

/// The names of a kind, as in a CRD.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XrdNames {
    /// The kind, in CamelCase, for example `SQLInstance`.
    pub kind: String,
    /// The plural, lowercase, for example `sqlinstances`.
    pub plural: String,
    /// The singular, lowercase; defaults to the lowercase kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular: Option<String>,
    /// Short names for kubectl, for example `sql`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Categories for kubectl (`kubectl get claim`); paved adds `claim` and `paved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The list kind; defaults to `<kind>List`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_kind: Option<String>,
}

/// Where a v2 XR lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum XrdScope {
    /// The XR is a namespaced object of its own (v2).
    #[default]
    Namespaced,
    /// A cluster-scoped XR (not supported by paved).
    Cluster,
    /// A cluster-scoped XR with claims, as in v1.
    LegacyCluster,
}

/// One version of the defined kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XrdVersion {
    /// The version name, for example `v1alpha1`.
    pub name: String,
    /// Whether the API server serves this version.
    pub served: bool,
    /// Whether Compositions may reference this version; exactly one version is.
    pub referenceable: bool,
    /// The schema of the kind at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<XrdSchema>,
    /// Extra columns for `kubectl get`, after paved's SYNCED, READY and CONNECTION-SECRET.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_list")]
    pub additional_printer_columns: Vec<serde_json::Value>,
    /// Whether this version is deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// The warning kubectl shows for a deprecated version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_warning: Option<String>,
}

/// The schema of a version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct XrdSchema {
    /// An OpenAPI v3 schema of the object, as in a CRD: usually `type: object` with
    /// `properties.spec` (and `properties.status` for fields Compositions patch into it).
    /// Descriptions become `kubectl explain` text; enums, bounds, patterns, required fields
    /// and defaults are enforced by the API server.
    #[serde(rename = "openAPIV3Schema", default)]
    #[schemars(schema_with = "any_value")]
    pub open_api_v3_schema: serde_json::Value,
}

fn any_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// What paved observed about the definition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeResourceDefinitionStatus {
    /// Established: the kind's CRD is served. Offered: paved composes its claims.
    /// ClaimsValid: whether every existing claim is valid under the current schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The kinds this definition serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<XrdControllers>,
}

/// The kinds a definition serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XrdControllers {
    /// The XR type Compositions reference (apiVersion and kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_resource_type: Option<TypeRef>,
    /// The claim type paved serves (apiVersion and kind); in v2, the XR type itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_resource_claim_type: Option<TypeRef>,
}

/// An apiVersion and kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeRef {
    pub api_version: String,
    pub kind: String,
}
