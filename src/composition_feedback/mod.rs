//! Feedback on a Composition as soon as it is applied, before any claim uses it: the same
//! validation `paved render` runs (unknown fields, duplicate resource names, patch sets, field
//! paths, transforms, Pipeline steps, patches to paths the claim's or a composed kind's schema
//! lacks), reported as the Composition's `Valid` condition and, when it fails, a Warning Event.
//!
//! This file is pure (a Composition in, a verdict out); the validate step of the Composition
//! controller ([`crate::composition::validate`]) does the I/O.

use kube::ResourceExt;
use serde_json::Value;

use crate::api::Composition;
use crate::api::common::{Condition, ConditionStatus};
use crate::compose::{self, ComposeError};

/// The condition type on a Composition.
pub const VALID: &str = "Valid";

/// At most this many problems are quoted in the condition (`paved render` lists them all).
const QUOTED: usize = 3;

/// What paved thinks of a Composition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    /// Bounded: `Valid`, or the first problem's reason (for example `InvalidComposition`).
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    /// The `Valid` condition saying this (its transition time is set when it is written).
    pub fn condition(&self, generation: Option<i64>) -> Condition {
        Condition::new(
            VALID,
            ConditionStatus::from_bool(self.valid),
            self.reason,
            self.message.clone(),
            generation,
        )
    }
}

/// Validate a Composition as paved received it.
pub fn check(composition: &Composition) -> Verdict {
    let name = composition.name_any();
    let raw = serde_json::to_value(composition).unwrap_or(Value::Null);
    let mut errors = compose::validate_raw(&name, &raw);
    errors.extend(schema_problems(&name, composition));
    verdict(&errors)
}

/// The verdict of these problems (in order, each said once).
pub fn verdict(errors: &[ComposeError]) -> Verdict {
    let mut texts: Vec<String> = Vec::new();
    for e in errors {
        let t = e.to_string();
        if !texts.contains(&t) {
            texts.push(t);
        }
    }
    let Some(first) = errors.first() else {
        return Verdict {
            valid: true,
            reason: "Valid",
            message: "paved can render this Composition".into(),
        };
    };
    let quoted: Vec<&str> = texts.iter().take(QUOTED).map(String::as_str).collect();
    let more = match texts.len().saturating_sub(QUOTED) {
        0 => String::new(),
        n => format!(" (and {n} more: `paved render --composition <file>` lists them all)"),
    };
    Verdict {
        valid: false,
        reason: first.reason(),
        message: format!("{}{more}", quoted.join("; ")),
    }
}

/// Patches to paths the claim's schema or a composed kind's schema lacks, for the kinds paved
/// serves (as `paved render` checks them).
pub fn schema_problems(name: &str, composition: &Composition) -> Vec<ComposeError> {
    let type_ref = &composition.spec.composite_type_ref;
    let words = |api: &str, kind: &str| format!("{api} {kind}");
    let claim_words = words(&type_ref.api_version, &type_ref.kind);
    let claim = crate::schema::served_schema(&type_ref.api_version, &type_ref.kind).map(|schema| {
        compose::schema_paths::KnownSchema {
            name: &claim_words,
            schema,
        }
    });
    let composed_words: Vec<(String, String, String)> =
        compose::listed_resources(name, &composition.spec)
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let w = words(&l.api_version, &l.kind);
                (l.api_version, l.kind, w)
            })
            .collect();
    let composed = |api: &str, kind: &str| {
        let w = composed_words
            .iter()
            .find(|(a, k, _)| a == api && k == kind)
            .map(|(_, _, w)| w.as_str())?;
        crate::schema::served_schema(api, kind)
            .map(|schema| compose::schema_paths::KnownSchema { name: w, schema })
    };
    compose::schema_paths::validate_patch_paths(name, &composition.spec, claim, &composed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn composition(spec: Value) -> Composition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition",
            "metadata": {"name": "pg", "generation": 3},
            "spec": spec,
        }))
        .unwrap()
    }

    fn instance(name: &str, patches: Value) -> Value {
        json!({
            "name": name,
            "base": {
                "apiVersion": "rds.aws.upbound.io/v1beta1",
                "kind": "Instance",
                "spec": {"forProvider": {"region": "eu-west-1", "engine": "postgres"}},
            },
            "patches": patches,
        })
    }

    fn spec(resources: Value) -> Value {
        json!({
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "resources": resources,
        })
    }

    #[test]
    fn problems_name_the_resource_and_field() {
        let cases: Vec<(&str, Value, &[&str])> = vec![
            (
                "duplicate resource names",
                spec(json!([
                    instance("db", json!([])),
                    instance("db", json!([]))
                ])),
                &["db", "duplicate"],
            ),
            (
                "a patch from a field the claim lacks",
                spec(json!([instance(
                    "db",
                    json!([{"fromFieldPath": "spec.parameters.sizeGB", "toFieldPath": "spec.forProvider.allocatedStorage"}])
                )])),
                &["spec.parameters.sizeGB"],
            ),
            (
                "a patch to a field the Instance lacks",
                spec(json!([instance(
                    "db",
                    json!([{"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvder.allocatedStorage"}])
                )])),
                &["spec.forProvder.allocatedStorage"],
            ),
        ];
        for (what, spec, needles) in cases {
            let v = check(&composition(spec));
            assert!(!v.valid, "{what}: {v:?}");
            assert_ne!(v.reason, "Valid", "{what}");
            for n in needles {
                assert!(v.message.contains(n), "{what}: {}", v.message);
            }
            for bad in ["{", "Some(", "Error {"] {
                assert!(!v.message.contains(bad), "{what}: {}", v.message);
            }
            let c = v.condition(Some(3));
            assert_eq!(c.status, ConditionStatus::False, "{what}");
            assert_eq!(c.observed_generation, Some(3), "{what}");
        }
    }

    #[test]
    fn a_valid_composition_says_so() {
        let v = check(&composition(spec(json!([instance(
            "db",
            json!([{"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}])
        )]))));
        assert!(v.valid, "{v:?}");
        assert_eq!(v.reason, "Valid");
    }

    #[test]
    fn many_problems_are_counted_not_all_quoted() {
        let errors: Vec<ComposeError> = (0..5)
            .map(|i| {
                ComposeError::new(
                    "pg",
                    crate::compose::Reason::InvalidComposition,
                    format!("problem {i}"),
                )
            })
            .collect();
        let v = verdict(&errors);
        assert!(v.message.contains("problem 2"), "{}", v.message);
        assert!(!v.message.contains("problem 3"), "{}", v.message);
        assert!(v.message.contains("and 2 more"), "{}", v.message);
    }
}
