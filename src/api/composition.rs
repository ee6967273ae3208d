//! `Composition` (`apiextensions.crossplane.io/v1`): what a claim becomes. SCAFFOLD: the
//! composition-engine work replaces this with the full Crossplane v1 Resources-mode schema.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a claim is turned into composed resources (Crossplane v1 patch-and-transform).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apiextensions.crossplane.io",
    version = "v1",
    kind = "Composition",
    plural = "compositions",
    singular = "composition",
    shortname = "comp",
    category = "crossplane",
    category = "paved"
)]
#[serde(rename_all = "camelCase")]
pub struct CompositionSpec {
    /// The claim type this Composition serves.
    pub composite_type_ref: TypeReference,
    /// Composed resources.
    #[serde(default)]
    #[schemars(schema_with = "free_form_array")]
    pub resources: Vec<serde_json::Value>,
}

/// apiVersion and kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeReference {
    pub api_version: String,
    pub kind: String,
}

fn free_form_array(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}})
}
