//! Mode Pipeline: which steps paved runs, and the input of function-patch-and-transform.
//!
//! paved has no function runtime. It runs two functions' steps itself, recognised by their
//! input (or, for function-auto-ready, which needs none, by the Function's name):
//!
//! - function-patch-and-transform: input `apiVersion: pt.fn.crossplane.io/v1beta1`,
//!   `kind: Resources`, whatever the Function object is called. Its `resources` and `patchSets`
//!   are paved's own patch-and-transform engine, with the function's semantics (see
//!   [`super::render`]).
//! - function-auto-ready: input `autoready.fn.crossplane.io/*`, or no input and a Function
//!   named `function-auto-ready` or `<prefix>-function-auto-ready`. It marks resources whose
//!   readiness no earlier step decided ready when their Ready condition is True.
//!
//! Any other step (go-templating, KCL, Python, CEL, environment-configs, ...) is refused, naming
//! the step and the Function, before anything is rendered.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::api::common::free_form_object;
use crate::api::composition::{ConnectionDetail, Patch, PatchSet, PipelineStep, ReadinessCheck};

/// apiVersion of function-patch-and-transform's input.
pub const PT_API_VERSION: &str = "pt.fn.crossplane.io/v1beta1";
/// kind of function-patch-and-transform's input.
pub const PT_KIND: &str = "Resources";
/// API group of function-auto-ready's input.
pub const AUTO_READY_GROUP: &str = "autoready.fn.crossplane.io";

/// The input of a function-patch-and-transform step (`pt.fn.crossplane.io/v1beta1` Resources).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PtInput {
    // apiVersion, kind and metadata are read so that the strict pass knows them; the step was
    // recognised by apiVersion and kind already.
    #[allow(dead_code)]
    #[serde(default)]
    pub api_version: String,
    #[allow(dead_code)]
    #[serde(default)]
    pub kind: String,
    #[allow(dead_code)]
    #[serde(default)]
    #[schemars(schema_with = "free_form_object")]
    pub metadata: Option<Value>,
    /// Patch sets of this step (resources of other steps cannot include them).
    #[serde(default)]
    pub patch_sets: Vec<PatchSet>,
    /// EnvironmentConfig patches: refused (paved has no EnvironmentConfigs).
    #[serde(default)]
    #[schemars(schema_with = "free_form_object")]
    pub environment: Option<Value>,
    /// The resource templates of this step.
    #[serde(default)]
    pub resources: Vec<PtTemplate>,
    /// Where the connection Secret of a Crossplane v2 XR goes (function v0.10).
    #[serde(default)]
    pub write_connection_secret_to_ref: Option<PtConnectionSecretRef>,
}

/// A resource template of function-patch-and-transform.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PtTemplate {
    /// Required, unique within the step; the same name in a later step is the same resource.
    #[serde(default)]
    pub name: String,
    /// The template. Without one, the resource an earlier step composed under this name is
    /// patched.
    #[serde(default)]
    #[schemars(schema_with = "free_form_object")]
    pub base: Option<Value>,
    #[serde(default)]
    pub patches: Vec<Patch>,
    #[serde(default)]
    pub connection_details: Vec<ConnectionDetail>,
    #[serde(default)]
    pub readiness_checks: Vec<ReadinessCheck>,
}

/// `writeConnectionSecretToRef` of the input.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PtConnectionSecretRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    /// FromCompositeFieldPath and CombineFromComposite patches to `name` and `namespace`.
    #[serde(default)]
    pub patches: Vec<Patch>,
}

/// What paved makes of a pipeline step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    PatchAndTransform,
    AutoReady,
    /// Refused: the message says why.
    Unsupported(String),
}

fn input_type(input: Option<&Value>) -> (Option<&str>, Option<&str>) {
    let s = |k: &str| input.and_then(|i| i.get(k)).and_then(Value::as_str);
    (s("apiVersion"), s("kind"))
}

fn is_auto_ready_name(name: &str) -> bool {
    name == "function-auto-ready" || name.ends_with("-function-auto-ready")
}

/// Classify a step.
pub(crate) fn classify(step: &PipelineStep) -> StepKind {
    let function = step.function_ref.name.as_str();
    let (api_version, kind) = input_type(step.input.as_ref());
    if api_version == Some(PT_API_VERSION) && kind == Some(PT_KIND) {
        return StepKind::PatchAndTransform;
    }
    let auto_ready_input = api_version
        .and_then(|a| a.split('/').next())
        .is_some_and(|g| g == AUTO_READY_GROUP);
    if auto_ready_input || (step.input.is_none() && is_auto_ready_name(function)) {
        let cel = step.input.as_ref().and_then(|i| {
            [
                "celHealthCheckCustomization",
                "celHealthCheckCustomizationFrom",
            ]
            .into_iter()
            .find(|k| i.get(*k).is_some_and(|v| !v.is_null()))
        });
        if let Some(field) = cel {
            return StepKind::Unsupported(format!(
                "function-auto-ready's input.{field} (CEL health checks) is not supported: paved evaluates no CEL; remove it (readiness then comes from the Ready condition)"
            ));
        }
        return StepKind::AutoReady;
    }
    if function.is_empty() {
        return StepKind::Unsupported(
            "functionRef.name is required: name the Function this step runs".into(),
        );
    }
    let input = match (api_version, kind) {
        (Some(a), Some(k)) => format!(" (input {a} {k})"),
        (None, None) if step.input.is_none() => " (no input)".to_string(),
        _ => " (input without apiVersion and kind)".to_string(),
    };
    StepKind::Unsupported(format!(
        "runs Function {function:?}{input}, which paved does not run: paved has no function runtime and runs only function-patch-and-transform steps (input {PT_API_VERSION} {PT_KIND}) and function-auto-ready steps; render this step's resources with patch-and-transform, or compose with Crossplane"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(v: Value) -> PipelineStep {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn steps_are_recognised_by_input_not_by_function_name() {
        let pt = step(
            json!({"step": "a", "functionRef": {"name": "anything"}, "input": {"apiVersion": PT_API_VERSION, "kind": "Resources"}}),
        );
        assert_eq!(classify(&pt), StepKind::PatchAndTransform);
        for name in [
            "function-auto-ready",
            "crossplane-contrib-function-auto-ready",
        ] {
            let s = step(json!({"step": "r", "functionRef": {"name": name}}));
            assert_eq!(classify(&s), StepKind::AutoReady, "{name}");
        }
        let s = step(
            json!({"step": "r", "functionRef": {"name": "x"}, "input": {"apiVersion": "autoready.fn.crossplane.io/v1beta1", "kind": "Input"}}),
        );
        assert_eq!(classify(&s), StepKind::AutoReady);
        let s = step(
            json!({"step": "r", "functionRef": {"name": "function-auto-ready"}, "input": {"apiVersion": "autoready.fn.crossplane.io/v1beta1", "kind": "Input", "celHealthCheckCustomization": {"a": "b"}}}),
        );
        assert!(matches!(classify(&s), StepKind::Unsupported(m) if m.contains("CEL")));
        for (fname, input) in [
            (
                "function-go-templating",
                json!({"apiVersion": "gotemplating.fn.crossplane.io/v1beta1", "kind": "GoTemplate"}),
            ),
            (
                "function-kcl",
                json!({"apiVersion": "krm.kcl.dev/v1alpha1", "kind": "KCLInput"}),
            ),
            (
                "function-patch-and-transform",
                json!({"apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Other"}),
            ),
        ] {
            let s = step(json!({"step": "t", "functionRef": {"name": fname}, "input": input}));
            match classify(&s) {
                StepKind::Unsupported(m) => assert!(m.contains(fname), "{m}"),
                other => panic!("{fname}: {other:?}"),
            }
        }
        let s = step(json!({"step": "t", "functionRef": {"name": "function-environment-configs"}}));
        assert!(matches!(classify(&s), StepKind::Unsupported(m) if m.contains("(no input)")));
    }
}
