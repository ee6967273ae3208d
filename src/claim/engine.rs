//! TEMPORARY stand-in for `crate::compose` (being written in parallel) with the same contract, so
//! that the controller can be built and tested end to end before the engine lands. Only base +
//! FromCompositeFieldPath patches + default readiness + all connection keys. Replaced by
//! `pub use crate::compose::*` as soon as the engine compiles.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::composition::CompositionSpec;

pub struct RenderInput<'a> {
    pub claim: &'a Value,
    pub composition_name: &'a str,
    pub composition: &'a CompositionSpec,
    pub observed: &'a BTreeMap<String, ObservedResource>,
}

#[derive(Clone, Debug, Default)]
pub struct ObservedResource {
    pub object: Value,
    pub connection_secret: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct RenderOutput {
    pub resources: Vec<ComposedResource>,
    pub claim_status: serde_json::Map<String, Value>,
    pub connection_details: BTreeMap<String, Vec<u8>>,
    pub ready: bool,
}

#[derive(Clone, Debug)]
pub struct ComposedResource {
    pub resource_name: String,
    pub index: usize,
    pub desired: Value,
    pub readiness: Readiness,
    pub connection_details: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Readiness {
    Ready,
    NotReady { reason: String, message: String },
    NotObserved,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ComposeError(String);

impl ComposeError {
    pub fn reason(&self) -> &'static str {
        "PatchFailed"
    }
}

pub fn composed_name(claim_name: &str, resource_name: &str) -> String {
    format!("{claim_name}-{resource_name}")
}

fn get<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Value, path: &str, val: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, k) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Some(m) = cur.as_object_mut() else { return };
        if i == parts.len() - 1 {
            m.insert(k.to_string(), val);
            return;
        }
        cur = m
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

pub fn render(input: &RenderInput) -> Result<RenderOutput, ComposeError> {
    let comp = serde_json::to_value(input.composition).map_err(|e| ComposeError(e.to_string()))?;
    let claim_name = input
        .claim
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = input
        .claim
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut resources = vec![];
    let mut all_details = BTreeMap::new();
    let empty = vec![];
    for (i, r) in comp
        .pointer("/resources")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let rn = r
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(format!("resource-{i}"));
        let mut d = r.get("base").cloned().unwrap_or_default();
        for p in r.get("patches").and_then(Value::as_array).unwrap_or(&empty) {
            let (Some(from), Some(to)) = (
                p.get("fromFieldPath").and_then(Value::as_str),
                p.get("toFieldPath").and_then(Value::as_str),
            ) else {
                continue;
            };
            let required =
                p.pointer("/policy/fromFieldPath").and_then(Value::as_str) == Some("Required");
            match get(input.claim, from) {
                Some(v) => set(&mut d, to, v.clone()),
                None if required => {
                    return Err(ComposeError(format!(
                        "composition {}, resource {rn}: fromFieldPath {from}: required field is missing",
                        input.composition_name
                    )));
                }
                None => {}
            }
        }
        let name = composed_name(claim_name, &rn);
        set(&mut d, "metadata.name", Value::String(name.clone()));
        set(&mut d, "metadata.namespace", Value::String(ns.to_string()));
        if d.pointer("/metadata/labels").is_none() {
            set(&mut d, "metadata.labels", Value::Object(Default::default()));
        }
        if let Some(m) = d
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            m.insert(
                "crossplane.io/claim-name".into(),
                Value::String(claim_name.into()),
            );
            m.insert(
                "crossplane.io/claim-namespace".into(),
                Value::String(ns.into()),
            );
        }
        set(
            &mut d,
            "spec.writeConnectionSecretToRef.name",
            Value::String(format!("{name}-conn")),
        );
        let observed = input.observed.get(&rn);
        let readiness = match observed {
            None => Readiness::NotObserved,
            Some(o) => {
                let conds = o
                    .object
                    .pointer("/status/conditions")
                    .and_then(Value::as_array);
                let ready = conds.and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type") == Some(&Value::from("Ready")))
                });
                match ready {
                    Some(c) if c.get("status") == Some(&Value::from("True")) => Readiness::Ready,
                    Some(c) => Readiness::NotReady {
                        reason: c
                            .get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("Unknown")
                            .into(),
                        message: c
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                    },
                    None => Readiness::NotReady {
                        reason: "Unknown".into(),
                        message: "no Ready condition".into(),
                    },
                }
            }
        };
        let details = observed
            .map(|o| o.connection_secret.clone())
            .unwrap_or_default();
        all_details.extend(details.clone());
        resources.push(ComposedResource {
            resource_name: rn,
            index: i,
            desired: d,
            readiness,
            connection_details: details,
        });
    }
    let ready = resources.iter().all(|r| r.readiness == Readiness::Ready);
    Ok(RenderOutput {
        resources,
        claim_status: Default::default(),
        connection_details: all_details,
        ready,
    })
}
