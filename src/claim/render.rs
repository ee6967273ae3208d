//! Step 3, render (pure): the composition engine on the claim, its Composition and what was
//! observed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::Error;
use crate::api::{Composition, PostgreSQLInstance};
use crate::compose::{self, ObservedResource, Readiness, RenderInput, RenderOutput};

/// The claim as the engine reads it (as the Compositions' patches see it).
pub(crate) fn claim_json(claim: &PostgreSQLInstance) -> Result<Value, Error> {
    serde_json::to_value(claim).map_err(|_| Error::InvalidClaim("JSON form"))
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
