//! `Composition` (`apiextensions.crossplane.io/v1`): what a claim becomes.
//!
//! The schema is Crossplane v1's Composition, in mode Resources (patch-and-transform) and mode
//! Pipeline (function steps; paved runs function-patch-and-transform and function-auto-ready
//! steps itself), so existing Compositions apply unchanged. The engine that interprets it lives in [`crate::compose`]; the
//! doc comments here are what `kubectl explain composition.spec...` prints.
//!
//! Fields are optional in the schema wherever Crossplane's are, and defaults (patch type
//! `FromCompositeFieldPath`, string transform type `Format`, ...) are applied by the engine rather
//! than by the API server, so that a Composition reads the same in the cluster and in
//! `paved render`.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{any_value, free_form_object};

/// What paved found when it validated the Composition (paved's own addition: Crossplane's
/// Composition has no status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositionStatus {
    /// `Valid`: True when paved can render this Composition; False with the problems (the
    /// resource, patch and field concerned) as soon as it is applied, before any claim uses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::common::Condition>,
}

/// How a claim is turned into composed resources (Crossplane v1 patch-and-transform). A
/// Composition lists resource templates (`resources[].base`) and the patches that copy values
/// between the claim and each composed resource, either directly (mode Resources) or in the
/// function-patch-and-transform steps of a pipeline (mode Pipeline). paved renders it for every claim whose type
/// matches `compositeTypeRef`; run `paved render --claim claim.yaml --composition comp.yaml` to
/// see the result without a cluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apiextensions.crossplane.io",
    version = "v1",
    kind = "Composition",
    plural = "compositions",
    singular = "composition",
    shortname = "comp",
    category = "crossplane",
    category = "paved",
    status = "CompositionStatus",
    doc = "A Composition (Crossplane v1, patch-and-transform, in mode Resources or in function-patch-and-transform steps of mode Pipeline): the resources a claim of type spec.compositeTypeRef becomes, and how values flow between the claim and them.",
    printcolumn = r#"{"name":"XR-KIND","type":"string","jsonPath":".spec.compositeTypeRef.kind"}"#,
    printcolumn = r#"{"name":"XR-APIVERSION","type":"string","jsonPath":".spec.compositeTypeRef.apiVersion"}"#,
    printcolumn = r#"{"name":"MODE","type":"string","jsonPath":".spec.mode","priority":1}"#,
    printcolumn = r#"{"name":"VALID","type":"string","jsonPath":".status.conditions[?(@.type=='Valid')].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CompositionSpec {
    /// The claim type this Composition serves, for example apiVersion
    /// database.example.com/v1alpha1, kind PostgreSQLInstance. A claim only ever uses a
    /// Composition whose compositeTypeRef matches its own apiVersion and kind.
    pub composite_type_ref: TypeReference,

    /// Resources (the default): compose the templates in `resources` with patch-and-transform.
    /// Pipeline: run the steps in `pipeline`, in order. paved runs the steps of
    /// function-patch-and-transform (input `apiVersion: pt.fn.crossplane.io/v1beta1`, `kind:
    /// Resources`) itself, whatever the Function is named, and understands function-auto-ready;
    /// it has no function runtime, so a step of any other function is refused by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CompositionMode>,

    /// Named lists of patches that several resources share. A resource includes one with a patch
    /// of `type: PatchSet` and `patchSetName: <name>`; the set's patches run in its place, in
    /// order. A patch set cannot include another patch set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patch_sets: Vec<PatchSet>,

    /// The resources each claim is composed of, in order. Either every resource has a `name` or
    /// none has; names must be unique. The name is used in the composed object's name
    /// (`<claim>-<name>`) and in error messages, so prefer short, stable names: renaming a
    /// resource makes paved create a new object under the new name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ComposedTemplate>,

    /// The steps of mode Pipeline, run in order; each sees what the previous ones composed.
    /// Required in mode Pipeline. Step names must be unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<PipelineStep>>,

    /// Crossplane EnvironmentConfig selection. Accepted for compatibility; paved has no
    /// EnvironmentConfigs, and a Composition whose patches read or write the environment fails
    /// to render with a message saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub environment: Option<serde_json::Value>,

    /// Accepted for compatibility with Crossplane, where it names the namespace of composite
    /// resources' connection Secrets. paved always writes a claim's connection Secret in the
    /// claim's own namespace (spec.writeConnectionSecretToRef of the claim) and ignores this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secrets_to_namespace: Option<String>,

    /// Accepted for compatibility with Crossplane's external secret stores; ignored by paved,
    /// which publishes connection details only to Kubernetes Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_connection_details_with_store_config_ref: Option<StoreConfigReference>,
}

/// apiVersion and kind of a claim type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeReference {
    /// API version of the claim type, for example database.example.com/v1alpha1.
    pub api_version: String,
    /// Kind of the claim type, for example PostgreSQLInstance.
    pub kind: String,
}

/// A reference to a secret store configuration, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoreConfigReference {
    /// Name of the StoreConfig.
    pub name: String,
}

/// How the Composition composes resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CompositionMode {
    /// Patch-and-transform the templates in spec.resources.
    #[default]
    Resources,
    /// Run the steps of spec.pipeline: function-patch-and-transform steps (run by paved itself)
    /// and function-auto-ready steps.
    Pipeline,
}

/// One step of a Pipeline Composition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStep {
    /// Name of the step, unique within the pipeline, for example `patch-and-transform`. Errors
    /// name it.
    #[serde(default)]
    #[schemars(transform = no_default)]
    pub step: String,

    /// The Composition Function this step runs, by the name of its Function object.
    #[serde(default)]
    #[schemars(transform = no_default)]
    pub function_ref: FunctionReference,

    /// The input of the step, a Kubernetes-style object (apiVersion, kind, ...). A step whose
    /// input is `apiVersion: pt.fn.crossplane.io/v1beta1`, `kind: Resources` is
    /// function-patch-and-transform's, which paved runs itself: `resources` (each with a
    /// `name`, and a `base` unless an earlier step composed a resource of that name),
    /// `patchSets` and `writeConnectionSecretToRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub input: Option<serde_json::Value>,

    /// Credentials the Function needs. Accepted for compatibility with Crossplane; paved runs
    /// no function that uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_array")]
    pub credentials: Option<Vec<serde_json::Value>>,

    /// Resources the Function needs (Crossplane v2). Accepted for compatibility with
    /// Crossplane; paved runs no function that uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub requirements: Option<serde_json::Value>,
}

/// A reference to a Composition Function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionReference {
    /// Name of the Function object, for example `function-patch-and-transform`.
    pub name: String,
}

/// A named list of patches shared by several resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchSet {
    /// Name of the patch set, referenced by `patchSetName` in a patch of type PatchSet.
    pub name: String,
    /// The patches of the set, applied in order. None of them may be of type PatchSet.
    pub patches: Vec<Patch>,
}

/// One composed resource: a template plus the patches that fill it in from the claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComposedTemplate {
    /// A name for this resource, unique within the Composition, for example `rds-instance`.
    /// The composed object is named `<claim name>-<name>` (shortened with a hash when that
    /// would exceed 63 characters). When no resource is named, `resource-<index>` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// The template of the composed object: a complete Kubernetes object (apiVersion, kind,
    /// spec, ...). paved sets metadata.name, metadata.namespace (the claim's), the labels
    /// crossplane.io/claim-name and crossplane.io/claim-namespace and the annotation
    /// crossplane.io/composition-resource-name itself; values for those in the base are
    /// replaced.
    #[schemars(schema_with = "free_form_object")]
    pub base: serde_json::Value,

    /// Patches applied to this resource, in order. Patches from the claim
    /// (FromCompositeFieldPath, CombineFromComposite) fill in the base; patches to the claim
    /// (ToCompositeFieldPath, CombineToComposite) copy observed values into the claim's status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,

    /// Which connection details of this resource are published in the claim's connection
    /// Secret. When empty, every key of this resource's connection Secret is published (a
    /// deliberate difference from Crossplane, which then publishes nothing; in mode Pipeline
    /// paved does as function-patch-and-transform and publishes nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_details: Vec<ConnectionDetail>,

    /// How to tell that this resource is ready. All checks must pass. When empty, the resource
    /// is ready when its Ready condition is True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness_checks: Vec<ReadinessCheck>,
}

/// The kind of a patch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PatchType {
    /// Copy fromFieldPath of the claim to toFieldPath of the composed resource (the default).
    #[default]
    FromCompositeFieldPath,
    /// Copy fromFieldPath of the observed composed resource to toFieldPath of the claim, which
    /// must be under `status`.
    ToCompositeFieldPath,
    /// Combine several claim fields (combine.variables) into toFieldPath of the composed
    /// resource.
    CombineFromComposite,
    /// Combine several observed composed-resource fields into toFieldPath of the claim, which
    /// must be under `status`.
    CombineToComposite,
    /// Include the patches of the patch set named by patchSetName.
    PatchSet,
    /// Crossplane EnvironmentConfig patch: accepted by the schema, refused by paved.
    FromEnvironmentFieldPath,
    /// Crossplane EnvironmentConfig patch: accepted by the schema, refused by paved.
    ToEnvironmentFieldPath,
    /// Crossplane EnvironmentConfig patch: accepted by the schema, refused by paved.
    CombineFromEnvironment,
    /// Crossplane EnvironmentConfig patch: accepted by the schema, refused by paved.
    CombineToEnvironment,
}

impl PatchType {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FromCompositeFieldPath => "FromCompositeFieldPath",
            Self::ToCompositeFieldPath => "ToCompositeFieldPath",
            Self::CombineFromComposite => "CombineFromComposite",
            Self::CombineToComposite => "CombineToComposite",
            Self::PatchSet => "PatchSet",
            Self::FromEnvironmentFieldPath => "FromEnvironmentFieldPath",
            Self::ToEnvironmentFieldPath => "ToEnvironmentFieldPath",
            Self::CombineFromEnvironment => "CombineFromEnvironment",
            Self::CombineToEnvironment => "CombineToEnvironment",
        }
    }
}

/// A patch copies (and optionally transforms) a value between the claim and a composed
/// resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// The kind of patch. Defaults to FromCompositeFieldPath.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<PatchType>,

    /// Where the value comes from, as a field path such as `spec.parameters.storageGB`,
    /// `metadata.labels[example.org/team]` or `status.atProvider.endpoint`. Required for
    /// FromCompositeFieldPath and ToCompositeFieldPath.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_field_path: Option<String>,

    /// How several values are combined into one. Required for CombineFromComposite and
    /// CombineToComposite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combine: Option<Combine>,

    /// Where the value goes, as a field path. Defaults to fromFieldPath; required for Combine
    /// patches. Patches to the claim must target `status.<something>`. Patches to a composed
    /// resource cannot target apiVersion, kind, metadata.name, metadata.namespace,
    /// metadata.generateName or metadata.ownerReferences: paved sets those itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_field_path: Option<String>,

    /// The patch set to include. Required for type PatchSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_set_name: Option<String>,

    /// Transforms applied to the value, in order, before it is written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,

    /// What to do when the source is missing, and how to write into an existing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PatchPolicy>,
}

/// What to do when fromFieldPath is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FromFieldPathPolicy {
    /// Skip the patch when the source field is missing (the default).
    #[default]
    Optional,
    /// When the source field is missing, skip the resource (and keep the claim not ready) for a
    /// patch to a composed resource; fail rendering for a patch to the claim.
    Required,
}

/// How a patched value is written into toFieldPath.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ToFieldPathPolicy {
    /// Replace the value at toFieldPath (the default).
    #[default]
    Replace,
    /// Merge objects recursively, keeping the values already there when keys conflict; arrays
    /// already there are kept.
    MergeObjects,
    /// Like MergeObjects, but append array elements (skipping ones already present).
    MergeObjectsAppendArrays,
    /// Merge objects recursively, replacing the values already there when keys conflict.
    ForceMergeObjects,
    /// Like ForceMergeObjects, but append array elements (skipping ones already present).
    ForceMergeObjectsAppendArrays,
    /// Deprecated spelling of MergeObjects (function-patch-and-transform still accepts it).
    MergeObject,
    /// Deprecated spelling of ForceMergeObjectsAppendArrays (function-patch-and-transform
    /// still accepts it).
    AppendArray,
}

/// Patch policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicy {
    /// Optional (the default): a missing source field skips the patch. Required: a missing
    /// source field skips the whole resource (it is not created, or an existing one is left as
    /// it is) and the claim is not ready until the field exists; for a patch to the claim, it
    /// is an error reported on the claim (in mode Pipeline, a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_field_path: Option<FromFieldPathPolicy>,

    /// How to write into an existing value: Replace (the default), MergeObjects,
    /// MergeObjectsAppendArrays, ForceMergeObjects or ForceMergeObjectsAppendArrays. Takes
    /// precedence over mergeOptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_field_path: Option<ToFieldPathPolicy>,

    /// Deprecated in favour of toFieldPath: `{keepMapValues: true}` is MergeObjects,
    /// `{keepMapValues: true, appendSlice: true}` MergeObjectsAppendArrays, `{appendSlice: true}`
    /// ForceMergeObjectsAppendArrays and `{}` ForceMergeObjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_options: Option<MergeOptions>,
}

/// Deprecated merge options (see policy.toFieldPath).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeOptions {
    /// Keep values already present in objects instead of replacing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_map_values: Option<bool>,
    /// Append to arrays instead of replacing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_slice: Option<bool>,
}

/// How a Combine patch combines its variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Combine {
    /// The values to combine, each read from a field path of the source object. If any of
    /// them is missing the patch is skipped (or, with policy.fromFieldPath Required, the
    /// resource is).
    #[schemars(length(min = 1))]
    pub variables: Vec<CombineVariable>,
    /// How to combine: only `string` exists.
    pub strategy: CombineStrategy,
    /// Settings of the string strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<StringCombine>,
}

/// A value to combine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CombineVariable {
    /// Field path of the value on the source object.
    pub from_field_path: String,
}

/// Combine strategies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CombineStrategy {
    /// Format the variables with a Go format string (combine.string.fmt).
    #[default]
    #[serde(rename = "string")]
    String,
}

/// The string combine strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StringCombine {
    /// A Go format string with one verb per variable, for example `%s-%s` or `%s:%d`
    /// (https://pkg.go.dev/fmt).
    #[serde(rename = "fmt")]
    pub format: String,
}

/// The kind of a transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransformType {
    /// Look the (string) input up in `map`.
    Map,
    /// Return the result of the first pattern in `match` that matches the input.
    Match,
    /// Arithmetic on a number (`math`).
    Math,
    /// Produce a string (`string`).
    String,
    /// Change the type of the value (`convert`).
    Convert,
}

impl TransformType {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Match => "match",
            Self::Math => "math",
            Self::String => "string",
            Self::Convert => "convert",
        }
    }
}

/// A transform turns the patched value into another value. Set `type` and the field of the same
/// name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transform {
    /// map, match, math, string or convert.
    #[serde(rename = "type")]
    pub type_: TransformType,

    /// Arithmetic: Multiply, ClampMin or ClampMax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub math: Option<MathTransform>,

    /// String keys to any values, for example `{small: db.t3.micro, large: db.r6g.xlarge}`. The
    /// input must be a string and one of the keys; otherwise the patch fails naming the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "map_of_any")]
    pub map: Option<BTreeMap<String, serde_json::Value>>,

    /// Patterns tested in order against the (string) input.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MatchTransform>,

    /// String operations: Format, Convert, TrimPrefix, TrimSuffix, Regexp, Join, Replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<StringTransform>,

    /// Type conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<ConvertTransform>,
}

/// Math operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MathTransformType {
    /// Multiply the input by `multiply`.
    Multiply,
    /// Raise the input to at least `clampMin`.
    ClampMin,
    /// Lower the input to at most `clampMax`.
    ClampMax,
}

/// Arithmetic on a number. Integers stay integers; a floating-point input gives a
/// floating-point result for Multiply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MathTransform {
    /// Multiply, ClampMin or ClampMax. When omitted, inferred from the field that is set
    /// (Multiply when several or none are).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<MathTransformType>,
    /// The multiplier, an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiply: Option<i64>,
    /// The smallest value to let through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp_min: Option<i64>,
    /// The largest value to let through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamp_max: Option<i64>,
}

/// What a match transform returns when no pattern matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MatchFallbackTo {
    /// Return fallbackValue (null when it is not set). The default.
    #[default]
    Value,
    /// Return the input unchanged.
    Input,
}

/// Return the result of the first matching pattern.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchTransform {
    /// Patterns tested in order; the first match wins.
    #[serde(default)]
    pub patterns: Vec<MatchTransformPattern>,
    /// The value returned when no pattern matches (with fallbackTo Value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub fallback_value: Option<serde_json::Value>,
    /// Value (the default): return fallbackValue when nothing matches. Input: return the input
    /// unchanged. Setting both fallbackTo Input and fallbackValue is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_to: Option<MatchFallbackTo>,
}

/// How a pattern matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchTransformPatternType {
    /// The input string equals `literal` (case-sensitive). The default.
    #[default]
    Literal,
    /// The input string matches the regular expression `regexp` (RE2 syntax, unanchored).
    Regexp,
}

/// One pattern of a match transform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchTransformPattern {
    /// literal (the default) or regexp.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<MatchTransformPatternType>,
    /// The exact input to match. Required for type literal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// The regular expression to match. Required for type regexp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
    /// The value returned when this pattern matches (any JSON value).
    #[schemars(schema_with = "any_value")]
    pub result: serde_json::Value,
}

/// String operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StringTransformType {
    /// Format the input with the Go format string `fmt`. The default.
    #[default]
    Format,
    /// Convert the input with `convert`.
    Convert,
    /// Remove `trim` from the start of the input.
    TrimPrefix,
    /// Remove `trim` from the end of the input.
    TrimSuffix,
    /// Extract the match (or a group of it) of `regexp.match`.
    Regexp,
    /// Join the elements of an array input with `join.separator`.
    Join,
    /// Replace every `replace.search` with `replace.replace`.
    Replace,
}

/// String conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StringConversionType {
    /// Upper-case.
    ToUpper,
    /// Lower-case.
    ToLower,
    /// Base64-encode (standard alphabet, padded).
    ToBase64,
    /// Base64-decode (standard alphabet, padded).
    FromBase64,
    /// The input as JSON.
    ToJson,
    /// Hex SHA-1 of the input (strings as is, other values as JSON).
    ToSha1,
    /// Hex SHA-256 of the input (strings as is, other values as JSON).
    ToSha256,
    /// Hex SHA-512 of the input (strings as is, other values as JSON).
    ToSha512,
    /// Decimal Adler-32 checksum of the input (strings as is, other values as JSON).
    ToAdler32,
}

/// Produce a string from the input. Non-string inputs are first formatted as Go's `%v` would.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringTransform {
    /// Format (the default), Convert, TrimPrefix, TrimSuffix, Regexp, Join or Replace.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<StringTransformType>,
    /// Go format string for type Format, for example `db-%s` or `%d GiB`
    /// (https://pkg.go.dev/fmt).
    #[serde(default, rename = "fmt", skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Conversion for type Convert: ToUpper, ToLower, ToBase64, FromBase64, ToJson, ToSha1,
    /// ToSha256, ToSha512 or ToAdler32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<StringConversionType>,
    /// The prefix or suffix to remove, for types TrimPrefix and TrimSuffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<String>,
    /// The regular expression for type Regexp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<StringTransformRegexp>,
    /// The separator for type Join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<StringTransformJoin>,
    /// Search and replacement for type Replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<StringTransformReplace>,
}

/// Extract a match of a regular expression.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringTransformRegexp {
    /// The regular expression (RE2 syntax), for example `^db-(.*)$`. No match is an error.
    #[serde(rename = "match")]
    pub match_: String,
    /// The capture group to return; 0 (the default) is the whole match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub group: Option<i64>,
}

/// Join an array into a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringTransformJoin {
    /// Put between the elements, for example `,`.
    pub separator: String,
}

/// Replace every occurrence of a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringTransformReplace {
    /// The string to look for.
    pub search: String,
    /// What to put instead (may be empty, to delete).
    pub replace: String,
}

/// Target types of a convert transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransformIoType {
    /// A string.
    String,
    /// A 64-bit integer (same as int64).
    Int,
    /// A 64-bit integer.
    Int64,
    /// true or false.
    Bool,
    /// A floating-point number.
    Float64,
    /// An object (from a JSON string, with format json).
    Object,
    /// An array (from a JSON string, with format json).
    Array,
}

impl TransformIoType {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Int64 => "int64",
            Self::Bool => "bool",
            Self::Float64 => "float64",
            Self::Object => "object",
            Self::Array => "array",
        }
    }
}

/// How a convert transform reads its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConvertTransformFormat {
    /// Plain conversion (the default).
    #[default]
    None,
    /// Parse a Kubernetes quantity string to float64: "1Gi" is 1073741824, "500m" is 0.5.
    Quantity,
    /// Parse a JSON string to an object or an array.
    Json,
}

impl ConvertTransformFormat {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quantity => "quantity",
            Self::Json => "json",
        }
    }
}

/// Change the type of the value: string to int64/bool/float64 (and back), int64 to bool
/// (1 is true), float64 to int64 (truncating), and with format quantity or json as described
/// there. A value that already has the target type passes unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConvertTransform {
    /// string, int, int64, bool, float64, object or array.
    pub to_type: TransformIoType,
    /// none (the default), quantity (string to float64 only) or json (string to object or
    /// array only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ConvertTransformFormat>,
}

/// Where a connection detail comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectionDetailType {
    /// A key of the composed resource's connection Secret.
    FromConnectionSecretKey,
    /// A field of the composed resource (strings as is, other values as JSON).
    FromFieldPath,
    /// A fixed value.
    FromValue,
}

impl ConnectionDetailType {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FromConnectionSecretKey => "FromConnectionSecretKey",
            Self::FromFieldPath => "FromFieldPath",
            Self::FromValue => "FromValue",
        }
    }
}

/// A key published in the claim's connection Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetail {
    /// The key in the claim's connection Secret. Defaults to fromConnectionSecretKey; required
    /// for the other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// FromConnectionSecretKey, FromFieldPath or FromValue. When omitted it is inferred from the
    /// field that is set (value, then fromConnectionSecretKey, then fromFieldPath).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ConnectionDetailType>,
    /// The key of the composed resource's connection Secret to publish. Missing keys are
    /// skipped until they appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_connection_secret_key: Option<String>,
    /// A field of the composed resource to publish, for example `status.atProvider.address`.
    /// Missing fields are skipped until they appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_field_path: Option<String>,
    /// A fixed value to publish (not secret: it is visible in the Composition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Kinds of readiness checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReadinessCheckType {
    /// fieldPath holds the string matchString.
    MatchString,
    /// fieldPath holds the integer matchInteger.
    MatchInteger,
    /// fieldPath exists.
    NonEmpty,
    /// The condition matchCondition.type has status matchCondition.status.
    MatchCondition,
    /// fieldPath is true.
    MatchTrue,
    /// fieldPath is false.
    MatchFalse,
    /// Always ready.
    None,
}

impl ReadinessCheckType {
    /// The name as written in YAML.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MatchString => "MatchString",
            Self::MatchInteger => "MatchInteger",
            Self::NonEmpty => "NonEmpty",
            Self::MatchCondition => "MatchCondition",
            Self::MatchTrue => "MatchTrue",
            Self::MatchFalse => "MatchFalse",
            Self::None => "None",
        }
    }
}

/// A test on the observed composed resource; the resource is ready when all its checks pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    /// MatchString, MatchInteger, NonEmpty, MatchCondition, MatchTrue, MatchFalse or None.
    #[serde(rename = "type")]
    pub type_: ReadinessCheckType,
    /// The field to test, for example `status.atProvider.dbInstanceStatus`. Required for every
    /// type except MatchCondition and None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
    /// The string to match (MatchString).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_string: Option<String>,
    /// The integer to match (MatchInteger). 0 is a real value: it matches 0 (Crossplane v1
    /// reads 0 as unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_integer: Option<i64>,
    /// The condition to match (MatchCondition). Defaults to type Ready, status True.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_condition: Option<MatchConditionReadinessCheck>,
}

/// A condition type and status to match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchConditionReadinessCheck {
    /// The condition type, for example Ready.
    #[serde(default = "default_condition_type", rename = "type")]
    pub type_: String,
    /// The status the condition must have: True, False or Unknown. A missing condition counts
    /// as Unknown.
    #[serde(default = "default_condition_status")]
    pub status: String,
}

impl Default for MatchConditionReadinessCheck {
    fn default() -> Self {
        Self {
            type_: default_condition_type(),
            status: default_condition_status(),
        }
    }
}

fn default_condition_type() -> String {
    "Ready".to_string()
}

fn default_condition_status() -> String {
    "True".to_string()
}

/// Keep the CRD free of defaults for fields the engine checks itself (an empty step name or
/// Function name is reported by `paved render` and on the claim, naming the step).
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

fn free_form_array(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

fn map_of_any(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}
    })
}
