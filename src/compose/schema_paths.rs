//! Schema-aware patch validation, as Crossplane's schema-aware Composition validation does it:
//! where the schema of the claim or of a composed kind is known, a patch reading a field the
//! source cannot have (`fromFieldPath`, a Combine variable) or writing a field the target does
//! not have (`toFieldPath`) is an error naming the patch. A typo such as
//! `spec.parameters.storageGb` would otherwise render silently, and the database be created
//! without the field. Pure: the schemas come in as values.

use serde_json::Value;

use super::error::{ComposeError, Reason};
use super::fieldpath::Segment;
use super::patches::Direction;
use super::{StepBody, parse_inputs, prepare};
use crate::api::CompositionSpec;
use crate::schema::{Lookup, lookup};

/// A known schema, with the words that name it in messages
/// (`database.example.com/v1alpha1 PostgreSQLInstance`).
#[derive(Clone, Copy)]
pub struct KnownSchema<'a> {
    pub name: &'a str,
    pub schema: &'a Value,
}

fn check(what: &str, path: &str, segments: &[Segment], target: &KnownSchema<'_>) -> Option<String> {
    match lookup(target.schema, segments) {
        Lookup::Declared | Lookup::Open => None,
        Lookup::Missing {
            parent,
            field,
            known,
        } => Some(format!(
            "{what} {path}: {} has no field {field}{} (it has: {})",
            target.name,
            if parent.is_empty() {
                String::new()
            } else {
                format!(" in {parent}")
            },
            known.join(", ")
        )),
        Lookup::NotTraversable { at, type_ } => Some(format!(
            "{what} {path}: in {}, {at} is a {type_}; the path cannot go into it",
            target.name
        )),
    }
}

/// Every patch whose source or target field path the known schemas rule out. `claim` is the
/// claim's schema (or the XRD's); `composed(apiVersion, kind)` the schema of a composed kind, or
/// `None` for a kind whose schema is unknown (such patches are not checked). Errors of the
/// Composition itself are [`super::validate_all`]'s; this reports only the schema ones.
pub fn validate_patch_paths<'s>(
    composition_name: &str,
    spec: &CompositionSpec,
    claim: Option<KnownSchema<'s>>,
    composed: &dyn Fn(&str, &str) -> Option<KnownSchema<'s>>,
) -> Vec<ComposeError> {
    let mut ignored = Vec::new();
    let inputs = parse_inputs(composition_name, spec, &mut ignored);
    let prepared = prepare(composition_name, spec, &inputs, &mut ignored);
    let mut errs = Vec::new();
    // apiVersion and kind by resource name: a resource without base patches what an earlier
    // step composed under that name.
    let mut kinds: Vec<(String, String, String)> = Vec::new();
    for step in &prepared.steps {
        let StepBody::PatchAndTransform { resources, .. } = &step.body else {
            continue;
        };
        for r in resources {
            let field = |f: &str| r.base.and_then(|b| b.get(f)).and_then(Value::as_str);
            if let (Some(a), Some(k)) = (field("apiVersion"), field("kind")) {
                kinds.retain(|(n, _, _)| *n != r.name);
                kinds.push((r.name.clone(), a.to_string(), k.to_string()));
            }
            let target = kinds
                .iter()
                .find(|(n, _, _)| *n == r.name)
                .and_then(|(_, a, k)| composed(a, k));
            for p in &r.patches {
                let (from, to) = match p.direction {
                    Direction::ToComposed => (claim, target),
                    Direction::ToClaim => (target, claim),
                };
                let mut problems = Vec::new();
                if let Some(from) = &from {
                    for (path, segments) in p.source_paths() {
                        problems.extend(check("fromFieldPath", path, segments, from));
                    }
                }
                if let Some(to) = &to {
                    let (path, segments) = p.target_path();
                    problems.extend(check("toFieldPath", path, segments, to));
                }
                for message in problems {
                    let mut e =
                        ComposeError::new(composition_name, Reason::InvalidFieldPath, message)
                            .at_resource(&r.name, r.index)
                            .at(p.location.clone())
                            .with_path(format!("{}{}", r.path, p.location.path_suffix()));
                    if let Some((s, i)) = &step.step {
                        e = e.at_step(s, *i);
                    }
                    errs.push(e);
                }
            }
        }
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::schema::served_schema;
    use serde_json::json;

    fn spec(resources: Value, patch_sets: Value) -> CompositionSpec {
        serde_json::from_value(json!({
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "patchSets": patch_sets,
            "resources": resources
        }))
        .unwrap()
    }

    fn known(api_version: &str, kind: &str) -> Option<KnownSchema<'static>> {
        let schema = served_schema(api_version, kind)?;
        Some(KnownSchema {
            name: if kind == "Instance" {
                "rds.aws.upbound.io Instance"
            } else {
                "database.example.com/v1alpha1 PostgreSQLInstance"
            },
            schema,
        })
    }

    fn run(spec: &CompositionSpec) -> Vec<String> {
        validate_patch_paths(
            "c",
            spec,
            known("database.example.com/v1alpha1", "PostgreSQLInstance"),
            &|a, k| known(a, k),
        )
        .iter()
        .map(|e| format!("{} | {e}", e.path()))
        .collect()
    }

    fn instance(patches: Value) -> Value {
        json!([{"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "spec": {"forProvider": {"region": "eu-west-1"}}}, "patches": patches}])
    }

    #[test]
    fn a_from_field_path_the_claim_cannot_have_is_named_with_its_patch() {
        let s = spec(
            instance(json!([
                {"fromFieldPath": "spec.parameters.storageGb", "toFieldPath": "spec.forProvider.allocatedStorage"},
                {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}
            ])),
            json!([]),
        );
        assert_eq!(
            run(&s),
            [
                "spec.resources[0].patches[0] | composition c, resource db (index 0), patch 0 (FromCompositeFieldPath): fromFieldPath spec.parameters.storageGb: database.example.com/v1alpha1 PostgreSQLInstance has no field storageGb in spec.parameters (it has: environment, storageGB, version)"
            ]
        );
    }

    #[test]
    fn a_to_field_path_the_composed_kind_does_not_have_is_named() {
        // forProvider preserves unknown fields (the controller reports them), so a typo there
        // is not a schema error; one in spec or status is.
        let s = spec(
            instance(json!([
                {"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.deletionPolicyy"},
                {"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.anything"},
                {"fromFieldPath": "spec.parameters.environment", "toFieldPath": "metadata.labels[env]"},
                {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.adress", "toFieldPath": "status.address"}
            ])),
            json!([]),
        );
        let errs = run(&s);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].contains("patch 0 (FromCompositeFieldPath): toFieldPath spec.deletionPolicyy: rds.aws.upbound.io Instance has no field deletionPolicyy in spec"), "{}", errs[0]);
        assert!(
            errs[1]
                .contains("patch 3 (ToCompositeFieldPath): fromFieldPath status.atProvider.adress"),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn patch_set_patches_and_combine_variables_are_checked() {
        let s = spec(
            instance(json!([{"type": "PatchSet", "patchSetName": "common"}])),
            json!([{"name": "common", "patches": [
                {"type": "CombineFromComposite", "combine": {"strategy": "string", "string": {"fmt": "%s-%s"},
                    "variables": [{"fromFieldPath": "spec.parameters.environment"}, {"fromFieldPath": "spec.parameters.enviroment"}]},
                 "toFieldPath": "metadata.annotations[x]"}
            ]}]),
        );
        let errs = run(&s);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("patch 0 (PatchSet common), patch 0 (CombineFromComposite): fromFieldPath spec.parameters.enviroment"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn unknown_kinds_are_not_checked() {
        let s = spec(
            json!([{"name": "obj", "base": {"apiVersion": "kubernetes.crossplane.io/v1alpha2", "kind": "Object"},
                "patches": [{"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.whatever.x"}]}]),
            json!([]),
        );
        assert_eq!(run(&s), Vec::<String>::new());
    }
}
