//! Step 3, render (pure): the composition engine on the claim, its Composition and what was
//! observed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::Error;
use super::object::Claim;
use crate::api::Composition;
use crate::api::common::ObjectReference;
use crate::compose::{
    self, ObservedResource, Readiness, RenderInput, RenderOutput, SkippedResource,
};

/// The claim as the engine reads it (as the Compositions' patches see it: Crossplane's XR,
/// see [`Claim::as_composite`]).
pub(crate) fn claim_json(
    claim: &Claim,
    composition: &str,
    resource_refs: &[ObjectReference],
) -> Result<Value, Error> {
    claim
        .as_composite(Some(composition), resource_refs)
        .map_err(|_| Error::InvalidClaim("JSON form"))
}

/// Render the Composition for the claim.
pub(crate) fn render(
    claim: &Value,
    composition: &Composition,
    observed: &BTreeMap<String, ObservedResource>,
) -> Result<RenderOutput, Error> {
    Ok(compose::render(&RenderInput {
        claim,
        composition_name: composition.metadata.name.as_deref().unwrap_or_default(),
        composition: &composition.spec,
        observed,
    })?)
}

/// The readiness of objects created just now, judged on what the API server answered rather
/// than "not observed yet", so that the status written now stays true when the watch delivers
/// them (one status write per claim instead of two). The engine judges readiness only while
/// rendering: this asks it again, with `observed` holding the API server's answers, and keeps
/// nothing but the readiness of the `created` resources.
pub(crate) fn readiness_of_created(
    claim: &Value,
    composition: &Composition,
    observed: &BTreeMap<String, ObservedResource>,
    created: &[String],
) -> BTreeMap<String, Readiness> {
    if created.is_empty() {
        return BTreeMap::new();
    }
    let Ok(again) = render(claim, composition, observed) else {
        return BTreeMap::new();
    };
    again
        .resources
        .into_iter()
        .filter(|r| created.contains(&r.resource_name))
        .map(|r| (r.resource_name, r.readiness))
        .collect()
}

/// Resources the engine skipped (a Required patch whose source is missing), as the claim
/// reports them. A skipped resource that exists already is kept, never pruned: its reference
/// is returned so that it stays in `status.resourceRefs` (composed, not applied now). Every
/// skipped resource adds a line, with the engine's message, to the NotReady text.
pub(crate) fn skipped(
    skipped: &[SkippedResource],
    observed: &BTreeMap<String, ObservedResource>,
    ns: &str,
) -> (Vec<ObjectReference>, Vec<String>) {
    let mut kept = Vec::new();
    let mut lines = Vec::new();
    for s in skipped {
        let live = observed.get(&s.resource_name).map(|o| &o.object);
        let field = |f: &str| {
            live.and_then(|o| o.get(f))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let name = live
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let step = s
            .step
            .as_deref()
            .map(|st| format!(" (step {st:?})"))
            .unwrap_or_default();
        if live.is_some() && !name.is_empty() {
            let kind = field("kind");
            lines.push(format!(
                "{} ({kind} {ns}/{name}): Skipped{step}: {}; the existing object is kept as it is",
                s.resource_name, s.message
            ));
            kept.push(ObjectReference {
                api_version: field("apiVersion"),
                kind,
                name,
                namespace: Some(ns.to_string()),
            });
        } else {
            lines.push(format!(
                "{}: Skipped{step}: {}; not composed",
                s.resource_name, s.message
            ));
        }
    }
    (kept, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_skipped_resource_that_exists_is_kept_and_reported() {
        let rendered = vec![
            SkippedResource {
                resource_name: "db".into(),
                step: Some("pt".into()),
                message: "spec.parameters.environment is missing".into(),
            },
            SkippedResource {
                resource_name: "new".into(),
                step: None,
                message: "spec.parameters.tier is missing".into(),
            },
        ];
        let observed = BTreeMap::from([(
            "db".to_string(),
            ObservedResource {
                object: json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "metadata": {"name": "c-db", "namespace": "ns"}}),
                connection_secret: BTreeMap::new(),
            },
        )]);
        let (kept, lines) = skipped(&rendered, &observed, "ns");
        assert_eq!(
            kept,
            vec![ObjectReference {
                api_version: "rds.aws.upbound.io/v1beta1".into(),
                kind: "Instance".into(),
                name: "c-db".into(),
                namespace: Some("ns".into()),
            }]
        );
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("Instance ns/c-db") && lines[0].contains("environment"));
        assert!(lines[0].contains("step \"pt\""));
        assert!(lines[1].starts_with("new: Skipped") && lines[1].contains("tier"));
    }
}
