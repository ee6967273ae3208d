//! The composition engine: (claim, Composition, observed composed objects) to (desired composed
//! objects, claim status, connection details, readiness), with Crossplane's patch-and-transform
//! semantics: mode Resources as Crossplane v1's composer, and mode Pipeline with the steps of
//! function-patch-and-transform (run here, in-process) and function-auto-ready.
//!
//! Pure: no I/O, no Kubernetes client, no clock, no randomness. The claim controller and
//! `paved render` both call [`render`]; [`validate_all`] (and [`validate_raw`] for a file)
//! report every error of a Composition at once, [`check_mode`] whether paved runs its mode,
//! and [`listed_resources`] what to observe before rendering.
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
//! - A `[*]` in a toFieldPath writes only into the elements where the rest of the path already
//!   exists, and nothing to write into is an error (Crossplane's `ExpandWildcards`). An array
//!   index above 1024 is refused (Crossplane's `DefaultMaxFieldPathIndex`).
//! - A patch to a composed resource with `policy.fromFieldPath: Required` whose source is
//!   missing skips that resource ([`RenderOutput::skipped`]), and the claim is not ready; it does
//!   not fail the claim. In mode Pipeline, once the resource exists the patch is ignored
//!   instead (function-patch-and-transform), with a warning.
//! - Readiness comes from the observed object ([`Readiness::NotObserved`] when there is none). A
//!   readiness check on a field of the wrong type is an error in mode Resources (as in
//!   Crossplane's composer) and a warning plus NotReady in mode Pipeline (as in
//!   function-patch-and-transform). `matchInteger: 0` matches 0.
//! - Connection details, mode Resources: from the observed object and its connection Secret (a
//!   resource with no `connectionDetails` publishes every key of its Secret, a deliberate
//!   difference from Crossplane); FromValue details are published even before the resource is
//!   observed, and FromFieldPath reads the desired object until it is. Mode Pipeline: as
//!   function-patch-and-transform, only the declared details, only of observed resources.
//!
//! # Mode Pipeline
//!
//! Steps run in order on one desired state ([`pipeline`] says which steps paved runs). A
//! function-patch-and-transform step renders its `resources` with its own `patchSets`; a
//! resource with a `base` replaces what an earlier step composed under its name, one without a
//! base patches it. FromComposite patches read the claim as given (Crossplane's observed XR),
//! ToComposite patches write the claim's status. A function-auto-ready step marks ready every
//! observed resource no earlier step found ready whose Ready condition is True. A step of any
//! other Function is an error naming the step and the Function, before anything is rendered.
//!
//! Every part of a Composition is validated (paths parsed, transforms compiled, every patch
//! set, used or not) whether or not values flow through it, so a broken Composition fails on the
//! first render, and `paved render` can list every error at once.

mod connection;
mod error;
pub mod fieldpath;
pub mod gofmt;
mod patches;
pub mod pipeline;
mod readiness;
pub mod schema_paths;
mod strict;
mod transforms;

#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sha2::Digest as _;

pub use error::{ComposeError, Location, Reason};

use crate::api::composition::{CompositionMode, CompositionSpec, Patch, PatchType, TransformType};
use error::StepError;
use patches::Direction;

/// An invalid entry of a Composition: where it is and what is wrong.
type EntryError = (Location, StepError);

/// Prepare every entry of `items` with `one` (given the entry's index), collecting the errors
/// of those that are invalid.
fn prepare_each<'a, T, P>(
    items: &'a [T],
    errs: &mut Vec<EntryError>,
    one: impl Fn(usize, &'a T) -> Result<P, EntryError>,
) -> Vec<P> {
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match one(index, item) {
            Ok(p) => out.push(p),
            Err(e) => errs.push(e),
        }
    }
    out
}

/// What `collect` prepared, or the first error it collected.
#[cfg(test)]
fn first_entry_error<P>(
    collect: impl FnOnce(&mut Vec<EntryError>) -> Vec<P>,
) -> Result<Vec<P>, EntryError> {
    let mut errs = Vec::new();
    let out = collect(&mut errs);
    match errs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Label naming the claim a composed object belongs to.
pub const LABEL_CLAIM_NAME: &str = crate::api::managed::CLAIM_NAME_LABEL;
/// Label naming the namespace of that claim.
pub const LABEL_CLAIM_NAMESPACE: &str = "crossplane.io/claim-namespace";
/// Annotation naming the Composition resource a composed object was rendered from.
pub const ANNOTATION_RESOURCE_NAME: &str = crate::api::managed::COMPOSITION_RESOURCE_NAME;

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
    /// Whether every resource is ready (false when any is unobserved, or any was skipped).
    pub ready: bool,
    /// Resources not rendered this time because a `policy.fromFieldPath: Required` patch to
    /// them could not be applied (its source is missing). Crossplane skips such a resource
    /// rather than failing the claim, and the claim is not ready. The controller must neither
    /// create nor delete it: an existing object of that name is left as it is.
    pub skipped: Vec<SkippedResource>,
    /// What Crossplane would emit as warning events: readiness checks that could not run and
    /// Required patches ignored in mode Pipeline, and the reasons resources were skipped are in
    /// `skipped`. Never contains secret values.
    pub warnings: Vec<String>,
    /// Mode Pipeline, for a claim that is a Crossplane v2 XR (it has `spec.crossplane`): the
    /// Secret function-patch-and-transform writes the claim-level connection details to (the
    /// input's `writeConnectionSecretToRef`, v0.10). Always in the claim's namespace. None
    /// otherwise: the claim's own `spec.writeConnectionSecretToRef` applies.
    pub connection_secret: Option<SecretRef>,
}

/// A resource that was not rendered (see [`RenderOutput::skipped`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedResource {
    /// The Composition resource name.
    pub resource_name: String,
    /// The pipeline step that skipped it (mode Pipeline).
    pub step: Option<String>,
    /// Why: the Composition, resource, patch and missing field, in words.
    pub message: String,
}

/// A Secret by name and namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret (the claim's).
    pub namespace: String,
}

/// One desired composed object.
#[derive(Clone, Debug, PartialEq)]
pub struct ComposedResource {
    /// The Composition resource name (or `resource-<index>`).
    pub resource_name: String,
    /// Index in `spec.resources` (mode Resources), or in `input.resources` of the step that
    /// last rendered it (mode Pipeline).
    pub index: usize,
    /// The pipeline step that last rendered it (mode Pipeline), None in mode Resources.
    pub step: Option<String>,
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

/// One resource template of one step, validated.
struct PreparedResource<'a> {
    name: String,
    index: usize,
    /// `spec.resources[i]` or `spec.pipeline[s].input.resources[i]`, for error paths.
    path: String,
    /// None: patch what an earlier step composed under this name (mode Pipeline).
    base: Option<&'a Value>,
    patches: Vec<patches::PreparedPatch<'a>>,
    details: Vec<connection::PreparedDetail<'a>>,
    checks: Vec<readiness::PreparedCheck<'a>>,
}

/// `writeConnectionSecretToRef` of a patch-and-transform input, validated.
struct PreparedConnRef<'a> {
    name: &'a str,
    namespace: &'a str,
    patches: Vec<patches::PreparedPatch<'a>>,
}

enum StepBody<'a> {
    PatchAndTransform {
        resources: Vec<PreparedResource<'a>>,
        conn_ref: Option<PreparedConnRef<'a>>,
    },
    AutoReady,
}

struct PreparedStep<'a> {
    /// (name, index in spec.pipeline); None for mode Resources.
    step: Option<(String, usize)>,
    body: StepBody<'a>,
}

struct Prepared<'a> {
    pipeline: bool,
    steps: Vec<PreparedStep<'a>>,
}

/// The parsed inputs of the patch-and-transform steps, owned apart from what is prepared from
/// them (which borrows them).
struct Inputs {
    pt: Vec<Option<pipeline::PtInput>>,
}

fn is_pipeline(spec: &CompositionSpec) -> bool {
    spec.mode == Some(CompositionMode::Pipeline)
}

/// Parse the inputs of the patch-and-transform steps, refusing unknown fields with their path.
fn parse_inputs(comp: &str, spec: &CompositionSpec, errs: &mut Vec<ComposeError>) -> Inputs {
    let mut pt = Vec::new();
    let steps = spec.pipeline.as_deref().unwrap_or_default();
    if !is_pipeline(spec) {
        return Inputs { pt };
    }
    static PT_SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let schema = PT_SCHEMA.get_or_init(strict::schema_of::<pipeline::PtInput>);
    for (si, step) in steps.iter().enumerate() {
        let base_path = format!("spec.pipeline[{si}].input");
        let parsed = match (pipeline::classify(step), step.input.as_ref()) {
            (pipeline::StepKind::PatchAndTransform, Some(input)) => {
                let err = |m: String| {
                    ComposeError::new(comp, Reason::InvalidComposition, m)
                        .at_step(&step.step, si)
                        .with_path(base_path.clone())
                };
                for path in strict::unknown_fields(schema, input, &base_path) {
                    errs.push(
                        ComposeError::new(
                            comp,
                            Reason::InvalidComposition,
                            format!("unknown field {path}: function-patch-and-transform has no such field (misspelt?)"),
                        )
                        .at_step(&step.step, si)
                        .with_path(path),
                    );
                }
                match serde_json::from_value::<pipeline::PtInput>(input.clone()) {
                    Ok(i) => Some(i),
                    Err(e) => {
                        errs.push(err(format!(
                            "cannot read the function-patch-and-transform input: {e}"
                        )));
                        None
                    }
                }
            }
            _ => None,
        };
        pt.push(parsed);
    }
    Inputs { pt }
}

/// Validate everything, collecting every error.
fn prepare<'a>(
    comp: &str,
    spec: &'a CompositionSpec,
    inputs: &'a Inputs,
    errs: &mut Vec<ComposeError>,
) -> Prepared<'a> {
    let pipeline = is_pipeline(spec);
    // spec.patchSets and spec.resources are validated in every mode, as Crossplane does.
    let mut set_errs = Vec::new();
    let sets = patches::patch_sets_collect(&spec.patch_sets, &mut set_errs);
    for (si, loc, e) in set_errs {
        let path = format!("spec.patchSets[{si}]{}", loc.path_suffix());
        errs.push(
            ComposeError::new(comp, e.kind, e.message)
                .at(loc)
                .with_path(path),
        );
    }
    let top = match resource_names(comp, spec) {
        Ok(names) => {
            let mut out = Vec::with_capacity(names.len());
            for ((index, tpl), name) in spec.resources.iter().enumerate().zip(names) {
                let path = format!("spec.resources[{index}]");
                let mut local = Vec::new();
                if let Err(m) = check_base(&tpl.base) {
                    local.push((
                        Location::Base,
                        StepError::new(Reason::InvalidComposition, m),
                    ));
                }
                let patches = patches::prepare_all_collect(&tpl.patches, &sets, false, &mut local);
                let details =
                    prepare_each(&tpl.connection_details, &mut local, connection::prepare_one);
                let checks =
                    prepare_each(&tpl.readiness_checks, &mut local, readiness::prepare_one);
                for (loc, e) in local {
                    let p = format!("{path}{}", loc.path_suffix());
                    errs.push(
                        ComposeError::new(comp, e.kind, e.message)
                            .at_resource(&name, index)
                            .at(loc)
                            .with_path(p),
                    );
                }
                out.push(PreparedResource {
                    name,
                    index,
                    path,
                    base: Some(&tpl.base),
                    patches,
                    details,
                    checks,
                });
            }
            out
        }
        Err(e) => {
            errs.push(e);
            Vec::new()
        }
    };
    if !pipeline {
        if spec.resources.is_empty() {
            errs.push(
                ComposeError::new(
                    comp,
                    Reason::InvalidComposition,
                    "spec.resources is empty: mode Resources (the default) needs at least one resource (is the key misspelt?)",
                )
                .with_path("spec.resources"),
            );
        }
        return Prepared {
            pipeline,
            steps: vec![PreparedStep {
                step: None,
                body: StepBody::PatchAndTransform {
                    resources: top,
                    conn_ref: None,
                },
            }],
        };
    }

    let steps = spec.pipeline.as_deref().unwrap_or_default();
    if steps.is_empty() {
        errs.push(
            ComposeError::new(
                comp,
                Reason::InvalidComposition,
                "mode Pipeline needs at least one step in spec.pipeline",
            )
            .with_path("spec.pipeline"),
        );
    }
    let mut out = Vec::with_capacity(steps.len());
    let mut seen_steps = BTreeSet::new();
    // Names composed with a base by the steps so far.
    let mut composed_so_far: BTreeSet<&str> = BTreeSet::new();
    // After a step paved does not run, what it would have composed is unknown.
    let mut unknown_before = false;
    for (si, step) in steps.iter().enumerate() {
        let sname = step.step.as_str();
        let spath = format!("spec.pipeline[{si}]");
        let at = |e: ComposeError| e.at_step(sname, si);
        if sname.is_empty() {
            errs.push(at(ComposeError::new(
                comp,
                Reason::InvalidComposition,
                "step is required: name the step",
            )
            .with_path(format!("{spath}.step"))));
        } else if !seen_steps.insert(sname) {
            errs.push(at(ComposeError::new(
                comp,
                Reason::InvalidComposition,
                format!("duplicate step name {sname:?}: step names must be unique"),
            )
            .with_path(format!("{spath}.step"))));
        }
        match pipeline::classify(step) {
            pipeline::StepKind::Unsupported(m) => {
                unknown_before = true;
                errs.push(at(ComposeError::new(comp, Reason::UnsupportedFunction, m)
                    .with_path(format!("{spath}.functionRef.name"))));
            }
            pipeline::StepKind::AutoReady => out.push(PreparedStep {
                step: Some((sname.to_string(), si)),
                body: StepBody::AutoReady,
            }),
            pipeline::StepKind::PatchAndTransform => {
                let Some(Some(input)) = inputs.pt.get(si) else {
                    continue;
                };
                let ipath = format!("{spath}.input");
                if input
                    .environment
                    .as_ref()
                    .and_then(|e| e.get("patches"))
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty())
                {
                    errs.push(at(ComposeError::new(
                        comp,
                        Reason::InvalidComposition,
                        "environment patches are not supported: paved has no EnvironmentConfigs",
                    )
                    .with_path(format!("{ipath}.environment"))));
                }
                if input.resources.is_empty() {
                    errs.push(at(ComposeError::new(
                        comp,
                        Reason::InvalidComposition,
                        "input.resources is empty: function-patch-and-transform needs at least one resource",
                    )
                    .with_path(format!("{ipath}.resources"))));
                }
                let mut set_errs = Vec::new();
                let sets = patches::patch_sets_collect(&input.patch_sets, &mut set_errs);
                for (k, loc, e) in set_errs {
                    let p = format!("{ipath}.patchSets[{k}]{}", loc.path_suffix());
                    errs.push(at(ComposeError::new(comp, e.kind, e.message)
                        .at(loc)
                        .with_path(p)));
                }
                for (k, set) in input.patch_sets.iter().enumerate() {
                    for (j, p) in set.patches.iter().enumerate() {
                        pt_strictness(p, &mut |m| {
                            errs.push(at(ComposeError::new(comp, Reason::InvalidComposition, m)
                                .at(Location::PatchSet {
                                    name: set.name.clone(),
                                    index: j,
                                })
                                .with_path(format!("{ipath}.patchSets[{k}].patches[{j}]"))));
                        });
                    }
                }
                let mut names_here = BTreeSet::new();
                let mut resources = Vec::with_capacity(input.resources.len());
                for (index, t) in input.resources.iter().enumerate() {
                    let path = format!("{ipath}.resources[{index}]");
                    let rerr = |e: ComposeError| e.at_step(sname, si).at_resource(&t.name, index);
                    if t.name.is_empty() {
                        errs.push(rerr(ComposeError::new(
                            comp,
                            Reason::InvalidComposition,
                            "name is required (function-patch-and-transform needs every resource named)",
                        )
                        .with_path(format!("{path}.name"))));
                    } else if !names_here.insert(t.name.as_str()) {
                        errs.push(rerr(
                            ComposeError::new(
                                comp,
                                Reason::InvalidComposition,
                                format!("duplicate resource name {:?} in this step", t.name),
                            )
                            .with_path(format!("{path}.name")),
                        ));
                    }
                    let mut local = Vec::new();
                    match &t.base {
                        Some(b) => {
                            if let Err(m) = check_base(b) {
                                local.push((
                                    Location::Base,
                                    StepError::new(Reason::InvalidComposition, m),
                                ));
                            }
                        }
                        None if !unknown_before && !composed_so_far.contains(t.name.as_str()) => {
                            errs.push(rerr(ComposeError::new(
                                comp,
                                Reason::InvalidComposition,
                                format!(
                                    "resource {:?} has no base, and no earlier step composes a resource of that name (function-patch-and-transform patches only what an earlier step produced)",
                                    t.name
                                ),
                            )
                            .with_path(format!("{path}.base"))));
                        }
                        None => {}
                    }
                    for (j, p) in t.patches.iter().enumerate() {
                        pt_strictness(p, &mut |m| {
                            local.push((
                                Location::Patch {
                                    index: j,
                                    patch_type: p.type_.unwrap_or_default().as_str(),
                                    patch_set: None,
                                },
                                StepError::new(Reason::InvalidComposition, m),
                            ));
                        });
                    }
                    for (j, d) in t.connection_details.iter().enumerate() {
                        let missing: Vec<&str> = [
                            ("type", d.type_.is_none()),
                            ("name", d.name.as_deref().is_none_or(str::is_empty)),
                        ]
                        .into_iter()
                        .filter_map(|(f, m)| m.then_some(f))
                        .collect();
                        if !missing.is_empty() {
                            local.push((
                                Location::ConnectionDetail { index: j },
                                StepError::new(
                                    Reason::InvalidComposition,
                                    format!(
                                        "{} required: function-patch-and-transform does not infer them",
                                        missing.join(" and ") + if missing.len() > 1 { " are" } else { " is" }
                                    ),
                                ),
                            ));
                        }
                    }
                    let patches =
                        patches::prepare_all_collect(&t.patches, &sets, false, &mut local);
                    let details =
                        prepare_each(&t.connection_details, &mut local, connection::prepare_one);
                    let checks =
                        prepare_each(&t.readiness_checks, &mut local, readiness::prepare_one);
                    for (loc, e) in local {
                        let p = format!("{path}{}", loc.path_suffix());
                        errs.push(rerr(
                            ComposeError::new(comp, e.kind, e.message)
                                .at(loc)
                                .with_path(p),
                        ));
                    }
                    resources.push(PreparedResource {
                        name: t.name.clone(),
                        index,
                        path,
                        base: t.base.as_ref(),
                        patches,
                        details,
                        checks,
                    });
                }
                for t in &input.resources {
                    if t.base.is_some() {
                        composed_so_far.insert(t.name.as_str());
                    }
                }
                let conn_ref = input.write_connection_secret_to_ref.as_ref().map(|r| {
                    let mut local = Vec::new();
                    let empty = BTreeMap::new();
                    let patches = patches::prepare_all_collect(&r.patches, &empty, true, &mut local);
                    for (j, p) in r.patches.iter().enumerate() {
                        let ty = p.type_.unwrap_or_default();
                        if !matches!(
                            ty,
                            PatchType::FromCompositeFieldPath | PatchType::CombineFromComposite
                        ) {
                            local.push((
                                Location::Patch {
                                    index: j,
                                    patch_type: ty.as_str(),
                                    patch_set: None,
                                },
                                StepError::new(
                                    Reason::InvalidComposition,
                                    format!(
                                        "patch type {} is not supported here: only FromCompositeFieldPath and CombineFromComposite",
                                        ty.as_str()
                                    ),
                                ),
                            ));
                        }
                    }
                    for (loc, e) in local {
                        let p = format!("{ipath}.writeConnectionSecretToRef{}", loc.path_suffix());
                        errs.push(at(ComposeError::new(comp, e.kind, e.message)
                            .at(loc)
                            .with_path(p)));
                    }
                    PreparedConnRef {
                        name: &r.name,
                        namespace: &r.namespace,
                        patches,
                    }
                });
                out.push(PreparedStep {
                    step: Some((sname.to_string(), si)),
                    body: StepBody::PatchAndTransform {
                        resources,
                        conn_ref,
                    },
                });
            }
        }
    }
    Prepared {
        pipeline,
        steps: out,
    }
}

/// What function-patch-and-transform's input validation requires beyond paved's Resources
/// mode: a `type` on every string and math transform (no defaults there).
fn pt_strictness(p: &Patch, report: &mut dyn FnMut(String)) {
    for (k, t) in p.transforms.iter().enumerate() {
        match t.type_ {
            TransformType::String if t.string.as_ref().is_some_and(|s| s.type_.is_none()) => {
                report(format!(
                    "transform {k} (string): string.type is required (function-patch-and-transform has no default)"
                ))
            }
            TransformType::Math if t.math.as_ref().is_some_and(|m| m.type_.is_none()) => {
                report(format!(
                    "transform {k} (math): math.type is required (function-patch-and-transform has no default)"
                ))
            }
            _ => {}
        }
    }
}

fn first_error(mut errs: Vec<ComposeError>) -> Result<(), ComposeError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.swap_remove(0))
    }
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

/// Validate a Composition without rendering it: the first error of [`validate_all`].
pub fn validate(composition_name: &str, spec: &CompositionSpec) -> Result<(), ComposeError> {
    first_error(validate_all(composition_name, spec))
}

/// Validate a whole Composition without rendering it and return **every** error, each with its
/// location ([`ComposeError::step`], [`ComposeError::resource`], [`ComposeError::location`],
/// [`ComposeError::path`]): mode and pipeline steps (a step paved does not run is an error
/// naming the step and the Function), resource names, every patch set (used or not), field
/// paths, transforms (regular expressions compiled), connection details and readiness checks,
/// and unknown fields inside function-patch-and-transform inputs. Empty when the Composition
/// is valid.
pub fn validate_all(composition_name: &str, spec: &CompositionSpec) -> Vec<ComposeError> {
    let mut errs = Vec::new();
    let inputs = parse_inputs(composition_name, spec, &mut errs);
    let _ = prepare(composition_name, spec, &inputs, &mut errs);
    errs
}

/// [`validate_all`] for a Composition as written (a YAML or JSON document read into a
/// [`Value`], before any API server pruned it): unknown fields anywhere in `spec` are errors
/// naming their path (`spec.resource` for a misspelt `spec.resources`), then the spec is read
/// and validated. `composition_name` is used when the object has no `metadata.name`.
pub fn validate_raw(composition_name: &str, composition: &Value) -> Vec<ComposeError> {
    let name = composition
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(composition_name);
    let Some(spec) = composition.get("spec") else {
        return vec![
            ComposeError::new(
                name,
                Reason::InvalidComposition,
                "the Composition has no spec",
            )
            .with_path("spec"),
        ];
    };
    static SPEC_SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let schema = SPEC_SCHEMA.get_or_init(strict::schema_of::<CompositionSpec>);
    let mut errs: Vec<ComposeError> = strict::unknown_fields(schema, spec, "spec")
        .into_iter()
        .map(|path| {
            ComposeError::new(
                name,
                Reason::InvalidComposition,
                format!("unknown field {path}: a Composition has no such field (misspelt?)"),
            )
            .with_path(path)
        })
        .collect();
    match serde_json::from_value::<CompositionSpec>(spec.clone()) {
        Ok(s) => errs.extend(validate_all(name, &s)),
        Err(e) => errs.push(
            ComposeError::new(
                name,
                Reason::InvalidComposition,
                format!("cannot read spec: {e}"),
            )
            .with_path("spec"),
        ),
    }
    errs
}

/// Whether paved can run this Composition's mode: `Ok` for mode Resources and for a Pipeline
/// whose every step is function-patch-and-transform's or function-auto-ready's; otherwise an
/// error ([`Reason::UnsupportedFunction`]) naming the first step and Function paved does not
/// run. Cheap: only the steps are looked at, nothing is rendered. The claim controller can
/// call it when choosing a Composition; [`render`] and [`validate_all`] check it too.
pub fn check_mode(composition_name: &str, spec: &CompositionSpec) -> Result<(), ComposeError> {
    if !is_pipeline(spec) {
        return Ok(());
    }
    for (si, step) in spec
        .pipeline
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let pipeline::StepKind::Unsupported(m) = pipeline::classify(step) {
            return Err(
                ComposeError::new(composition_name, Reason::UnsupportedFunction, m)
                    .at_step(&step.step, si)
                    .with_path(format!("spec.pipeline[{si}].functionRef.name")),
            );
        }
    }
    Ok(())
}

/// A resource a Composition may compose: its name and the apiVersion and kind of its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedResource {
    /// The Composition resource name (`resource-<index>` for unnamed resources in mode
    /// Resources).
    pub name: String,
    /// apiVersion of its base (in mode Pipeline, the last step's base that names it).
    pub api_version: String,
    /// kind of its base.
    pub kind: String,
}

/// Every resource a Composition may compose, in order of first appearance, so that the
/// controller can observe them before rendering: `spec.resources` in mode Resources, the
/// resources of every patch-and-transform step in mode Pipeline (a resource named in several
/// steps is listed once). Fails like [`validate`].
pub fn listed_resources(
    composition_name: &str,
    spec: &CompositionSpec,
) -> Result<Vec<ListedResource>, ComposeError> {
    let mut errs = Vec::new();
    let inputs = parse_inputs(composition_name, spec, &mut errs);
    let prepared = prepare(composition_name, spec, &inputs, &mut errs);
    first_error(errs)?;
    let mut out: Vec<ListedResource> = Vec::new();
    for step in &prepared.steps {
        let StepBody::PatchAndTransform { resources, .. } = &step.body else {
            continue;
        };
        for r in resources {
            let s = |f: &str| {
                r.base
                    .and_then(|b| b.get(f))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            match out.iter_mut().find(|l| l.name == r.name) {
                Some(l) => {
                    if let (Some(a), Some(k)) = (s("apiVersion"), s("kind")) {
                        l.api_version = a;
                        l.kind = k;
                    }
                }
                None => out.push(ListedResource {
                    name: r.name.clone(),
                    api_version: s("apiVersion").unwrap_or_default(),
                    kind: s("kind").unwrap_or_default(),
                }),
            }
        }
    }
    Ok(out)
}

/// A desired resource while the steps run.
struct Desired {
    name: String,
    step: Option<String>,
    index: usize,
    object: Value,
    readiness: Readiness,
    details: BTreeMap<String, Vec<u8>>,
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

    check_mode(comp, input.composition)?;
    let mut errs = Vec::new();
    let inputs = parse_inputs(comp, input.composition, &mut errs);
    let prepared = prepare(comp, input.composition, &inputs, &mut errs);
    first_error(errs)?;

    // Distinct composed names (guaranteed by construction; checked so it can never be violated
    // silently).
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    for step in &prepared.steps {
        if let StepBody::PatchAndTransform { resources, .. } = &step.body {
            for r in resources {
                let n = composed_name(claim_name, &r.name);
                if let Some(other) = names.insert(n.clone(), &r.name)
                    && other != r.name
                {
                    return Err(ComposeError::new(
                        comp,
                        Reason::InvalidComposition,
                        format!("two resources would both be named {n}"),
                    )
                    .at_resource(&r.name, r.index));
                }
            }
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

    let mut desired: Vec<Desired> = Vec::new();
    let mut skipped: Vec<SkippedResource> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut claim_details = BTreeMap::new();
    let mut connection_secret = None;
    for step in &prepared.steps {
        let (resources, conn_ref) = match &step.body {
            StepBody::AutoReady => {
                // function-auto-ready: a resource that exists and whose readiness no earlier
                // step set to ready is ready when its Ready condition is True.
                for d in desired.iter_mut() {
                    if let (Readiness::NotReady { .. }, Some(o)) =
                        (&d.readiness, input.observed.get(&d.name))
                        && readiness::ready_condition_true(&o.object)
                    {
                        d.readiness = Readiness::Ready;
                    }
                }
                continue;
            }
            StepBody::PatchAndTransform {
                resources,
                conn_ref,
            } => (resources, conn_ref),
        };
        let step_name = step.step.as_ref().map(|(n, _)| n.clone());
        for r in resources {
            let wrap = |e: ComposeError| {
                let e = e.at_resource(&r.name, r.index);
                match &step.step {
                    Some((n, i)) => e.at_step(n, *i),
                    None => e,
                }
            };
            let at_loc = |loc: &Location, e: StepError| {
                wrap(
                    ComposeError::new(comp, e.kind, e.message)
                        .at(loc.clone())
                        .with_path(format!("{}{}", r.path, loc.path_suffix())),
                )
            };
            let observed = input.observed.get(&r.name);
            let existing = desired.iter().position(|d| d.name == r.name);
            let mut object = match (r.base, existing) {
                (Some(b), _) => b.clone(),
                (None, Some(i)) => desired[i].object.clone(),
                (None, None) => {
                    // Only when an earlier step skipped it (validation checks the rest).
                    return Err(wrap(ComposeError::new(
                        comp,
                        Reason::RequiredFieldMissing,
                        format!(
                            "resource {:?} has no base template, and no earlier step produced it this time (it was skipped); function-patch-and-transform fails the whole pipeline here",
                            r.name
                        ),
                    )
                    .with_path(format!("{}.base", r.path))));
                }
            };
            let mut skip: Option<String> = None;
            for p in r
                .patches
                .iter()
                .filter(|p| p.direction == Direction::ToComposed)
            {
                match p.apply(input.claim, &mut object) {
                    Ok(()) => {}
                    Err(e) if e.kind == Reason::RequiredFieldMissing => {
                        if prepared.pipeline && observed.is_some() {
                            // function-patch-and-transform: the resource exists, so a
                            // Required patch that cannot be applied is ignored.
                            warnings.push(format!(
                                "{}: ignoring policy.fromFieldPath Required because the resource already exists",
                                at_loc(&p.location, e)
                            ));
                            continue;
                        }
                        skip = Some(at_loc(&p.location, e).to_string());
                        break;
                    }
                    Err(e) => return Err(at_loc(&p.location, e)),
                }
            }
            if let Some(why) = skip {
                // Crossplane skips the resource (function-patch-and-transform: not added to
                // the desired state; the v1 composer: not rendered nor applied, an existing
                // one left as it is), and the claim is not ready.
                skipped.push(SkippedResource {
                    resource_name: r.name.clone(),
                    step: step_name.clone(),
                    message: why,
                });
                continue;
            }
            let composed = composed_name(claim_name, &r.name);
            finalize_metadata(&mut object, &composed, claim_name, claim_namespace, &r.name)
                .map_err(|m| wrap(ComposeError::new(comp, Reason::PatchError, m)))?;
            let what = format!(
                "{} {}",
                object
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("object"),
                composed
            );
            let readiness = match observed {
                None => Readiness::NotObserved,
                Some(o) => match readiness::evaluate(&r.checks, &o.object, &what) {
                    Ok(rd) => rd,
                    // function-patch-and-transform warns and leaves the resource not ready.
                    Err(e) if prepared.pipeline => {
                        let e = wrap(ComposeError::new(comp, e.kind, e.message));
                        warnings.push(format!("cannot check readiness: {e}"));
                        Readiness::NotReady {
                            reason: Reason::ReadinessCheckError.as_str().to_string(),
                            message: e.to_string(),
                        }
                    }
                    // Crossplane's v1 composer fails the reconcile.
                    Err(e) => return Err(wrap(ComposeError::new(comp, e.kind, e.message))),
                },
            };
            let empty = BTreeMap::new();
            let details = if prepared.pipeline {
                // function-patch-and-transform extracts details only from an observed
                // resource, and only those declared.
                match observed {
                    Some(o) if !r.details.is_empty() => {
                        connection::extract(&r.details, Some(&o.object), &o.connection_secret)
                    }
                    _ => BTreeMap::new(),
                }
            } else {
                connection::extract(
                    &r.details,
                    Some(observed.map_or(&object, |o| &o.object)),
                    observed.map_or(&empty, |o| &o.connection_secret),
                )
            };
            for (k, v) in &details {
                claim_details.insert(k.clone(), v.clone());
            }
            if let Some(o) = observed {
                for p in r
                    .patches
                    .iter()
                    .filter(|p| p.direction == Direction::ToClaim)
                {
                    match p.apply(&o.object, &mut status_holder) {
                        Ok(()) => {}
                        Err(e) if prepared.pipeline && e.kind == Reason::RequiredFieldMissing => {
                            warnings.push(at_loc(&p.location, e).to_string());
                        }
                        Err(e) => return Err(at_loc(&p.location, e)),
                    }
                }
            }
            let d = Desired {
                name: r.name.clone(),
                step: step_name.clone(),
                index: r.index,
                object,
                readiness,
                details,
            };
            match existing {
                Some(i) => desired[i] = d,
                None => desired.push(d),
            }
        }
        if claim
            .get("spec")
            .and_then(|s| s.get("crossplane"))
            .is_some()
        {
            let (name, index) = step.step.clone().unwrap_or_default();
            connection_secret = Some(
                connection_secret_ref(input.claim, claim_name, claim_namespace, conn_ref.as_ref())
                    .map_err(|m| {
                        ComposeError::new(comp, Reason::PatchError, m)
                            .at_step(&name, index)
                            .with_path(format!(
                                "spec.pipeline[{index}].input.writeConnectionSecretToRef"
                            ))
                    })?,
            );
        }
    }
    let claim_status = match status_holder {
        Value::Object(mut m) => match m.remove("status") {
            Some(Value::Object(s)) => s,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let ready = skipped.is_empty() && desired.iter().all(|d| d.readiness.is_ready());
    // A resource a later step rendered after all is applied, not left alone (the claim stays
    // not ready, as function-patch-and-transform leaves the XR not ready once it skipped one).
    skipped.retain(|s| !desired.iter().any(|d| d.name == s.resource_name));
    Ok(RenderOutput {
        resources: desired
            .into_iter()
            .map(|d| ComposedResource {
                resource_name: d.name,
                index: d.index,
                step: d.step,
                desired: d.object,
                readiness: d.readiness,
                connection_details: d.details,
            })
            .collect(),
        claim_status,
        connection_details: claim_details,
        ready,
        skipped,
        warnings,
        connection_secret: if prepared.pipeline {
            connection_secret
        } else {
            None
        },
    })
}

/// The Secret function-patch-and-transform (v0.10) writes a Crossplane v2 XR's connection
/// details to: the XR's own `spec.writeConnectionSecretToRef`, else the input's, else
/// `<name>-connection`, then the input's patches, read from the claim. It must stay in the
/// claim's namespace.
fn connection_secret_ref(
    claim: &Value,
    claim_name: &str,
    claim_namespace: &str,
    conn_ref: Option<&PreparedConnRef<'_>>,
) -> Result<SecretRef, String> {
    let own = claim
        .pointer("/spec/writeConnectionSecretToRef/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let mut target = match (own, conn_ref) {
        (Some(n), _) => serde_json::json!({"name": n, "namespace": claim
            .pointer("/spec/writeConnectionSecretToRef/namespace")
            .and_then(Value::as_str)
            .unwrap_or(claim_namespace)}),
        (None, Some(r)) if !r.name.is_empty() || !r.namespace.is_empty() => {
            serde_json::json!({"name": r.name, "namespace": r.namespace})
        }
        _ => {
            serde_json::json!({"name": format!("{claim_name}-connection"), "namespace": claim_namespace})
        }
    };
    if let Some(r) = conn_ref {
        for p in &r.patches {
            p.apply(claim, &mut target)
                .map_err(|e| format!("writeConnectionSecretToRef {}: {}", p.location, e.message))?;
        }
    }
    let name = target
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = target
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(claim_namespace);
    if name.is_empty() {
        return Err("writeConnectionSecretToRef: the Secret name is empty".into());
    }
    if namespace != claim_namespace {
        return Err(format!(
            "writeConnectionSecretToRef: namespace {namespace:?} is not the claim's namespace {claim_namespace:?}; paved keeps connection Secrets in the claim's namespace"
        ));
    }
    Ok(SecretRef {
        name: name.to_string(),
        namespace: namespace.to_string(),
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

/// The object at `key` of `m` (`path` in messages), made when missing or null.
fn object_field<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let v = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(o) => Ok(o),
        other => Err(format!(
            "{path} is {}, not an object",
            fieldpath::a_type_name(other)
        )),
    }
}

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
        let m = object_field(meta, field, &format!("metadata.{field}"))?;
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
        let spec = object_field(obj, "spec", "spec")?;
        let r = object_field(
            spec,
            "writeConnectionSecretToRef",
            "spec.writeConnectionSecretToRef",
        )?;
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
