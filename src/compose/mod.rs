//! The composition engine: (claim, Composition, observed composed objects) to (desired composed
//! objects, claim status, connection details, readiness), with Crossplane v1
//! patch-and-transform semantics.
//!
//! Pure: no I/O, no Kubernetes client, no clock, no randomness. The claim controller and
//! `paved render` both call [`render`].
//!
//! # Rendering rules
//!
//! - Each resource's `base` is copied, then its patches to the composed resource
//!   (FromCompositeFieldPath, CombineFromComposite, from patch sets too) are applied in order,
//!   reading the claim as given.
//! - paved then sets `metadata.name` ([`composed_name`]), `metadata.namespace` (the claim's),
//!   the labels `crossplane.io/claim-name` and `crossplane.io/claim-namespace` and the annotation
//!   `crossplane.io/composition-resource-name`, overriding the base and patches. Server-managed
//!   metadata (`ownerReferences`, `generateName`, `uid`, `resourceVersion`, ...) is removed: the
//!   controller adds owner references itself.
//! - GitOps tracking metadata is never carried into composed objects, even when the base or a
//!   patch copies it from the claim: the label `app.kubernetes.io/instance`, every label and
//!   annotation under `argocd.argoproj.io/`, `kustomize.toolkit.fluxcd.io/` or
//!   `helm.toolkit.fluxcd.io/`, and `kubectl.kubernetes.io/last-applied-configuration`. Argo CD
//!   or Flux would otherwise prune the composed objects as their own.
//! - Patches cannot write `apiVersion`, `kind`, `metadata` as a whole, `metadata.name`,
//!   `metadata.namespace`, `metadata.generateName` or `metadata.ownerReferences`: such a
//!   Composition is refused with [`Reason::InvalidPatchTarget`] (rather than silently ignored),
//!   so `paved render` in CI catches it.
//! - Unless the object's apiVersion is the core `v1` group, `spec.writeConnectionSecretToRef`
//!   defaults to `{name: composed_connection_secret_name(..)}`; a `namespace` in it other than
//!   the claim's is dropped (connection Secrets never leave the claim's namespace).
//! - Patches to the claim (ToCompositeFieldPath, CombineToComposite) are applied only for
//!   observed resources, reading the observed object, and may only write under `status`
//!   (and not `status.conditions`, `status.compositionRef`, `status.resourceRefs` or
//!   `status.connectionDetails`, which the controller owns). Status fields they do not touch are
//!   kept.
//! - Readiness comes from the observed object ([`Readiness::NotObserved`] when there is none).
//! - Connection details come from the observed object and its connection Secret (a resource
//!   with no `connectionDetails` publishes every key of its Secret); FromValue details are
//!   published even before the resource is observed, and FromFieldPath reads the desired object
//!   until it is.
//!
//! Every resource of a Composition is validated (paths parsed, transforms compiled) whether or
//! not values flow through it, so a broken Composition fails on the first render.

mod connection;
mod error;
pub mod fieldpath;
pub mod gofmt;
mod patches;
mod readiness;
mod transforms;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sha2::Digest as _;

pub use error::{ComposeError, Location, Reason};

use crate::api::composition::{CompositionMode, CompositionSpec};
use error::StepError;
use patches::Direction;

/// Label naming the claim a composed object belongs to.
pub const LABEL_CLAIM_NAME: &str = "crossplane.io/claim-name";
/// Label naming the namespace of that claim.
pub const LABEL_CLAIM_NAMESPACE: &str = "crossplane.io/claim-namespace";
/// Annotation naming the Composition resource a composed object was rendered from.
pub const ANNOTATION_RESOURCE_NAME: &str = "crossplane.io/composition-resource-name";

/// What to render.
#[derive(Clone, Copy, Debug)]
pub struct RenderInput<'a> {
    /// The whole claim object: apiVersion, kind, metadata (name, namespace, uid, labels, ...),
    /// spec, status.
    pub claim: &'a Value,
    /// Name of the Composition, for error messages.
    pub composition_name: &'a str,
    /// The Composition.
    pub composition: &'a CompositionSpec,
    /// Observed composed objects, keyed by Composition resource name (or `resource-<index>`
    /// when unnamed).
    pub observed: &'a BTreeMap<String, ObservedResource>,
}

/// A composed object as it is in the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedResource {
    /// The live composed object.
    pub object: Value,
    /// Data of its connection Secret (empty when there is none yet).
    pub connection_secret: BTreeMap<String, Vec<u8>>,
}

/// The result of rendering.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOutput {
    /// Desired composed objects, in Composition order.
    pub resources: Vec<ComposedResource>,
    /// The claim's `status` after patches to the claim (its existing fields kept).
    pub claim_status: Map<String, Value>,
    /// Claim-level connection details: every resource's, later resources winning.
    pub connection_details: BTreeMap<String, Vec<u8>>,
    /// Whether every resource is ready (false when any is unobserved).
    pub ready: bool,
}

/// One desired composed object.
#[derive(Clone, Debug, PartialEq)]
pub struct ComposedResource {
    /// The Composition resource name (or `resource-<index>`).
    pub resource_name: String,
    /// Index in `spec.resources`.
    pub index: usize,
    /// The full desired object (no ownerReferences: the controller adds them).
    pub desired: Value,
    /// Readiness computed from the observed object.
    pub readiness: Readiness,
    /// This resource's connection details.
    pub connection_details: BTreeMap<String, Vec<u8>>,
}

/// Readiness of a composed resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Observed but not ready. `reason` is one of `ReadyConditionNotTrue` or
    /// `ReadinessCheckFailed`; `message` names the object and what is missing.
    NotReady {
        /// Bounded CamelCase reason.
        reason: String,
        /// What is not ready, in words.
        message: String,
    },
    /// Not observed yet (not created, or not in the cache yet).
    NotObserved,
}

impl Readiness {
    /// True for [`Readiness::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// The name of the composed object for `resource_name` of claim `claim_name`: `<claim>-<resource>`
/// when that is a valid DNS label (at most 63 characters, lowercase alphanumerics and `-`),
/// otherwise a sanitized, truncated prefix plus `-` and 8 hex characters of a SHA-256 of both
/// names. Deterministic, and distinct for distinct resources of one claim.
pub fn composed_name(claim_name: &str, resource_name: &str) -> String {
    let candidate = format!("{claim_name}-{resource_name}");
    if is_dns_label(&candidate) {
        return candidate;
    }
    let digest = sha2::Sha256::digest(format!("{claim_name}\0{resource_name}").as_bytes());
    let hash = hex::encode(&digest[..4]);
    let mut prefix: String = candidate
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    prefix.truncate(63 - 1 - hash.len());
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        format!("x-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The default connection Secret name of a composed object: `<composed>-connection`.
pub fn composed_connection_secret_name(composed_name: &str) -> String {
    format!("{composed_name}-connection")
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The resource names of a Composition (`resource-<index>` for unnamed resources), checking
/// that either all or none are named and that names are unique and non-empty.
pub fn resource_names(
    composition_name: &str,
    spec: &CompositionSpec,
) -> Result<Vec<String>, ComposeError> {
    let named = spec.resources.iter().filter(|r| r.name.is_some()).count();
    if named != 0 && named != spec.resources.len() {
        return Err(ComposeError::new(
            composition_name,
            Reason::InvalidComposition,
            "either every resource in spec.resources must have a name, or none",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(spec.resources.len());
    for (i, r) in spec.resources.iter().enumerate() {
        let name = match &r.name {
            Some(n) if n.is_empty() => {
                return Err(ComposeError::new(
                    composition_name,
                    Reason::InvalidComposition,
                    "resource name is empty",
                )
                .at_resource("", i));
            }
            Some(n) => n.clone(),
            None => format!("resource-{i}"),
        };
        if !seen.insert(name.clone()) {
            return Err(ComposeError::new(
                composition_name,
                Reason::InvalidComposition,
                format!("duplicate resource name {name:?}"),
            )
            .at_resource(&name, i));
        }
        out.push(name);
    }
    Ok(out)
}

struct PreparedResource<'a> {
    name: String,
    index: usize,
    base: &'a Value,
    patches: Vec<patches::PreparedPatch<'a>>,
    details: Vec<connection::PreparedDetail<'a>>,
    checks: Vec<readiness::PreparedCheck<'a>>,
}

fn prepare<'a>(
    composition_name: &str,
    spec: &'a CompositionSpec,
) -> Result<Vec<PreparedResource<'a>>, ComposeError> {
    if spec.mode == Some(CompositionMode::Pipeline) {
        return Err(ComposeError::new(
            composition_name,
            Reason::InvalidComposition,
            "mode Pipeline (composition functions) is not supported by paved; use mode Resources with spec.resources",
        ));
    }
    let names = resource_names(composition_name, spec)?;
    let sets = patches::patch_sets(spec)
        .map_err(|(loc, e)| ComposeError::new(composition_name, e.kind, e.message).at(loc))?;
    let mut out = Vec::with_capacity(spec.resources.len());
    for ((index, tpl), name) in spec.resources.iter().enumerate().zip(names) {
        let wrap = |(loc, e): (Location, StepError)| {
            ComposeError::new(composition_name, e.kind, e.message)
                .at_resource(&name, index)
                .at(loc)
        };
        check_base(&tpl.base).map_err(|m| {
            wrap((
                Location::Base,
                StepError::new(Reason::InvalidComposition, m),
            ))
        })?;
        let patches = patches::prepare_all(&tpl.patches, &sets).map_err(wrap)?;
        let details = connection::prepare(&tpl.connection_details).map_err(wrap)?;
        let checks = readiness::prepare(&tpl.readiness_checks).map_err(wrap)?;
        out.push(PreparedResource {
            name,
            index,
            base: &tpl.base,
            patches,
            details,
            checks,
        });
    }
    Ok(out)
}

fn check_base(base: &Value) -> Result<(), String> {
    let Value::Object(m) = base else {
        return Err("base must be an object".into());
    };
    for field in ["apiVersion", "kind"] {
        match m.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(format!("base.{field} must be a non-empty string")),
        }
    }
    match m.get("metadata") {
        None | Some(Value::Object(_)) | Some(Value::Null) => {}
        Some(_) => return Err("base.metadata must be an object".into()),
    }
    match m.get("spec") {
        None | Some(Value::Object(_)) | Some(Value::Null) => Ok(()),
        Some(_) => Err("base.spec must be an object".into()),
    }
}

/// Validate a Composition without rendering it: resource names, patch sets, field paths,
/// transforms (regular expressions compiled), connection details and readiness checks.
pub fn validate(composition_name: &str, spec: &CompositionSpec) -> Result<(), ComposeError> {
    prepare(composition_name, spec).map(|_| ())
}

/// Render a Composition for a claim. See the module documentation for the rules.
pub fn render(input: &RenderInput<'_>) -> Result<RenderOutput, ComposeError> {
    let comp = input.composition_name;
    let claim_err = |m: &str| ComposeError::new(comp, Reason::InvalidClaim, m);
    let Value::Object(claim) = input.claim else {
        return Err(claim_err("the claim is not an object"));
    };
    let meta = claim.get("metadata");
    let claim_name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| claim_err("the claim has no metadata.name"))?;
    let claim_namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| claim_err("the claim has no metadata.namespace"))?;

    let prepared = prepare(comp, input.composition)?;

    // Distinct composed names (guaranteed by construction; checked so it can never be violated
    // silently).
    let mut names = BTreeSet::new();
    for r in &prepared {
        let n = composed_name(claim_name, &r.name);
        if !names.insert(n.clone()) {
            return Err(ComposeError::new(
                comp,
                Reason::InvalidComposition,
                format!("two resources would both be named {n}"),
            )
            .at_resource(&r.name, r.index));
        }
    }

    // Patches to the claim write into this holder: {"status": <existing status>}.
    let existing_status = match claim.get("status") {
        Some(Value::Object(s)) => s.clone(),
        _ => Map::new(),
    };
    let mut status_holder = Value::Object(Map::from_iter([(
        "status".to_string(),
        Value::Object(existing_status),
    )]));

    let mut resources = Vec::with_capacity(prepared.len());
    let mut claim_details = BTreeMap::new();
    let mut ready = true;
    for r in &prepared {
        let wrap = |loc: &Location, e: StepError| {
            ComposeError::new(comp, e.kind, e.message)
                .at_resource(&r.name, r.index)
                .at(loc.clone())
        };
        let mut desired = r.base.clone();
        for p in r
            .patches
            .iter()
            .filter(|p| p.direction == Direction::ToComposed)
        {
            p.apply(input.claim, &mut desired)
                .map_err(|e| wrap(&p.location, e))?;
        }
        let composed = composed_name(claim_name, &r.name);
        finalize_metadata(
            &mut desired,
            &composed,
            claim_name,
            claim_namespace,
            &r.name,
        )
        .map_err(|m| {
            ComposeError::new(comp, Reason::PatchError, m).at_resource(&r.name, r.index)
        })?;

        let observed = input.observed.get(&r.name);
        let what = format!(
            "{} {}",
            desired
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("object"),
            composed
        );
        let readiness = match observed {
            Some(o) => readiness::evaluate(&r.checks, &o.object, &what),
            None => Readiness::NotObserved,
        };
        ready &= readiness.is_ready();
        let empty = BTreeMap::new();
        let details = connection::extract(
            &r.details,
            Some(observed.map_or(&desired, |o| &o.object)),
            observed.map_or(&empty, |o| &o.connection_secret),
        );
        for (k, v) in &details {
            claim_details.insert(k.clone(), v.clone());
        }
        if let Some(o) = observed {
            for p in r
                .patches
                .iter()
                .filter(|p| p.direction == Direction::ToClaim)
            {
                p.apply(&o.object, &mut status_holder)
                    .map_err(|e| wrap(&p.location, e))?;
            }
        }
        resources.push(ComposedResource {
            resource_name: r.name.clone(),
            index: r.index,
            desired,
            readiness,
            connection_details: details,
        });
    }
    let claim_status = match status_holder {
        Value::Object(mut m) => match m.remove("status") {
            Some(Value::Object(s)) => s,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    Ok(RenderOutput {
        resources,
        claim_status,
        connection_details: claim_details,
        ready,
    })
}

fn is_gitops_key(key: &str, label: bool) -> bool {
    (label && key == "app.kubernetes.io/instance")
        || key.starts_with("argocd.argoproj.io/")
        || key.starts_with("kustomize.toolkit.fluxcd.io/")
        || key.starts_with("helm.toolkit.fluxcd.io/")
        || key == "kubectl.kubernetes.io/last-applied-configuration"
}

/// Metadata fields that only the API server (or the controller) sets.
const SERVER_METADATA: &[&str] = &[
    "generateName",
    "ownerReferences",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn finalize_metadata(
    desired: &mut Value,
    composed: &str,
    claim_name: &str,
    claim_namespace: &str,
    resource_name: &str,
) -> Result<(), String> {
    let Value::Object(obj) = desired else {
        return Err("the rendered object is not an object".into());
    };
    let core = obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(meta) = meta else {
        return Err("metadata is not an object".into());
    };
    for f in SERVER_METADATA {
        meta.remove(*f);
    }
    meta.insert("name".into(), Value::String(composed.into()));
    meta.insert("namespace".into(), Value::String(claim_namespace.into()));
    for (field, label) in [("labels", true), ("annotations", false)] {
        let entry = meta
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(m) = entry else {
            return Err(format!(
                "metadata.{field} is {}, not an object",
                fieldpath::a_type_name(entry)
            ));
        };
        m.retain(|k, _| !is_gitops_key(k, label));
        for (k, v) in m.iter() {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] is {}; {field} values must be strings (add a convert transform with toType string)",
                    transforms::describe(v)
                ));
            }
        }
        if label {
            m.insert(LABEL_CLAIM_NAME.into(), Value::String(claim_name.into()));
            m.insert(
                LABEL_CLAIM_NAMESPACE.into(),
                Value::String(claim_namespace.into()),
            );
        } else {
            m.insert(
                ANNOTATION_RESOURCE_NAME.into(),
                Value::String(resource_name.into()),
            );
        }
    }
    if !core {
        let spec = obj
            .entry("spec")
            .or_insert_with(|| Value::Object(Map::new()));
        if spec.is_null() {
            *spec = Value::Object(Map::new());
        }
        let Value::Object(spec) = spec else {
            return Err(format!(
                "spec is {}, not an object",
                fieldpath::a_type_name(spec)
            ));
        };
        let r = spec
            .entry("writeConnectionSecretToRef")
            .or_insert_with(|| Value::Object(Map::new()));
        if r.is_null() {
            *r = Value::Object(Map::new());
        }
        let Value::Object(r) = r else {
            return Err(format!(
                "spec.writeConnectionSecretToRef is {}, not an object",
                fieldpath::a_type_name(r)
            ));
        };
        match r.get("name") {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => {
                r.insert(
                    "name".into(),
                    Value::String(composed_connection_secret_name(composed)),
                );
            }
        }
        if r.get("namespace").and_then(Value::as_str) != Some(claim_namespace) {
            r.remove("namespace");
        }
    }
    Ok(())
}
