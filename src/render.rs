//! `paved render`: render a Composition for a claim without a cluster, for CI.
//!
//! ```text
//! paved render --claim claim.yaml --composition composition.yaml [--observed observed.yaml] [--include-claim]
//! ```
//!
//! Prints the composed objects as multi-document YAML, in Composition order, exactly as
//! `paved run` would apply them: the same planning ([`crate::claim::plan`]), with the same
//! refusals, the same names and what the objects' controllers need at birth (for an `Instance`:
//! its finalizer and external-name). Each is preceded by a comment naming the Composition
//! resource and its readiness, and saying when `paved run` would not write it. Owner references
//! need the claim's uid: a claim without `metadata.uid` (not read from a cluster) gets none, and
//! the comment says so. With
//! `--include-claim`, the claim follows as the last document, with the status the
//! patches to the claim would give it and a comment listing its readiness and the *names* of its
//! connection details (never their values).
//!
//! `--observed` takes YAML documents of observed composed objects (matched to resources by the
//! `crossplane.io/composition-resource-name` annotation, else by apiVersion, kind and name) and
//! of their connection Secrets (`kind: Secret`, matched by name to a resource's
//! `spec.writeConnectionSecretToRef.name`; `data` is base64, `stringData` plain), so that
//! patches to the claim, readiness and connection details can be previewed.
//!
//! A claim without `metadata.namespace` is rendered in namespace `default`, as `kubectl apply`
//! would create it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::Value;

use crate::api::composition::Composition;
use crate::claim::plan::{self, Action, PlanInput, Planned};
use crate::compose::{self, ObservedResource, Readiness, RenderInput};

/// Arguments of `paved render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The claim: one YAML document (for example examples/seed/claim.yaml).
    #[arg(long, value_name = "FILE")]
    pub claim: PathBuf,

    /// The Composition: one YAML document (for example examples/seed/composition.yaml).
    #[arg(long, value_name = "FILE")]
    pub composition: PathBuf,

    /// Observed composed objects and their connection Secrets, as multi-document YAML, to
    /// preview patches to the claim's status, readiness and connection details.
    #[arg(long, value_name = "FILE")]
    pub observed: Option<PathBuf>,

    /// Also print the claim, with the status the patches would give it, as the last document.
    #[arg(long)]
    pub include_claim: bool,

    /// The CompositeResourceDefinition of the claim's kind: the claim is validated against its
    /// schema offline, with its defaults applied as the API server would, and every schema
    /// error is reported in one run. Compositions may then name the XR kind.
    #[arg(long, value_name = "FILE")]
    pub xrd: Option<PathBuf>,

    /// Output format: `yaml` (documents with comments) or `json` (one object: the composed
    /// objects, skipped resources, warnings and, with --observed, the claim's status; or the
    /// Composition's errors as a list with path, step and message).
    #[arg(long, value_name = "FORMAT", default_value = "yaml")]
    pub output: OutputFormat,
}

/// `--output` of `paved render`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Yaml,
    Json,
}

/// One error of a render: in the Composition, the claim, or a composed object.
#[derive(Debug)]
struct Problem {
    /// What the path is in: `composition`, `claim`, or `resource <name>`.
    object: String,
    path: String,
    step: Option<String>,
    reason: &'static str,
    message: String,
}

impl Problem {
    fn composition(e: &compose::ComposeError) -> Self {
        Problem {
            object: "composition".into(),
            path: e.path().to_string(),
            step: e.step().map(|(s, _)| s.to_string()),
            reason: e.reason(),
            message: e.to_string(),
        }
    }
}

/// Errors of a render that fails validation: every one, with its location. The Composition's
/// own errors, the claim's against its kind's schema, patches whose field paths the known
/// schemas rule out, and composed objects against the schema of the kind paved serves.
#[derive(Debug)]
pub struct InvalidComposition {
    path: PathBuf,
    errors: Vec<Problem>,
}

impl InvalidComposition {
    /// The errors as JSON: a list of {object, path, step, reason, message}.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.errors
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "object": e.object,
                        "path": e.path,
                        "step": e.step,
                        "reason": e.reason,
                        "message": e.message,
                    })
                })
                .collect(),
        )
    }
}

impl std::fmt::Display for InvalidComposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        let only_composition = self.errors.iter().all(|e| e.object == "composition");
        write!(
            f,
            "{}: {}: {n} error{}",
            self.path.display(),
            if only_composition {
                "invalid Composition"
            } else {
                "does not render"
            },
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            // A claim's or composed object's message starts with the object and its path.
            if e.path.is_empty() || e.object != "composition" {
                write!(f, "\n  - {}", e.message)?;
            } else {
                write!(f, "\n  - {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InvalidComposition {}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {}", path.display()))
}

/// Every non-empty YAML document of `text`.
fn documents(text: &str, path: &Path) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .with_context(|| format!("{}: YAML document {}", path.display(), i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn single_document(text: &str, path: &Path, what: &str) -> anyhow::Result<Value> {
    let mut docs = documents(text, path)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => bail!("{}: no YAML document: expected one {what}", path.display()),
        n => bail!(
            "{}: {n} YAML documents: expected exactly one {what}",
            path.display()
        ),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Validate the claim against the schema of its kind in the XRD at `xrd_path` (defaults
/// applied in place); every error at once.
fn check_against_xrd(
    xrd_path: &Path,
    claim_path: &Path,
    claim: &mut Value,
) -> anyhow::Result<crate::xrd::ServedKind> {
    let doc = single_document(
        &read(xrd_path, "CompositeResourceDefinition")?,
        xrd_path,
        "CompositeResourceDefinition",
    )?;
    let xrd: crate::api::CompositeResourceDefinition = serde_json::from_value(doc)
        .with_context(|| format!("{}: not a CompositeResourceDefinition", xrd_path.display()))?;
    let synth =
        crate::xrd::synthesize(&xrd).map_err(|e| anyhow::anyhow!("{}: {e}", xrd_path.display()))?;
    let kind = synth.kind;
    let api_version = str_at(claim, &["apiVersion"])
        .unwrap_or_default()
        .to_string();
    let claim_kind = str_at(claim, &["kind"]).unwrap_or_default().to_string();
    let version = api_version
        .strip_prefix(&format!("{}/", kind.group))
        .filter(|_| claim_kind == kind.kind);
    let Some(version) = version else {
        bail!(
            "{}: the claim is {api_version} {claim_kind}, but {} defines {} {}",
            claim_path.display(),
            xrd_path.display(),
            kind.api_version(),
            kind.kind
        );
    };
    let schema = synth
        .crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version && v.served)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: version {version} of {} is not served by {}",
                claim_path.display(),
                kind.kind,
                xrd_path.display()
            )
        })?;
    // What the API server validates: the spec (metadata and type fields are its own).
    let mut body = serde_json::json!({"spec": claim.get("spec").cloned().unwrap_or(Value::Null)});
    if body["spec"].is_null() {
        body = serde_json::json!({});
    }
    let spec_only = serde_json::json!({"type": "object", "required": ["spec"],
        "properties": {"spec": schema["properties"]["spec"].clone()}});
    let errors = crate::xrd::validate::validate(&spec_only, &mut body);
    if !errors.is_empty() {
        bail!(
            "{}: the claim is not valid against {} ({} error{}):\n  {}",
            claim_path.display(),
            xrd_path.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors.join("\n  ")
        );
    }
    if let Some(spec) = body.get("spec") {
        claim["spec"] = spec.clone();
    }
    Ok(kind)
}

/// The uid a claim read from a file (not from a cluster) is rendered with, when the Composition
/// reads `metadata.uid`: a name such as `<uid>-input` then renders as it would in the cluster,
/// and the output says which value stood in.
pub const STAND_IN_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Whether any patch of the Composition reads the claim's `metadata.uid`.
fn reads_claim_uid(composition: &Composition) -> bool {
    serde_json::to_string(&composition.spec).is_ok_and(|text| text.contains("\"metadata.uid\""))
}

/// Give the claim the stand-in uid; whether it was given.
fn insert_stand_in_uid(claim: &mut Value) -> bool {
    let Some(meta) = claim.get_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    meta.insert("uid".into(), Value::String(STAND_IN_UID.into()));
    true
}

fn load_claim(path: &Path) -> anyhow::Result<Value> {
    let mut claim = single_document(&read(path, "claim")?, path, "claim")?;
    let Some(obj) = claim.as_object_mut() else {
        bail!("{}: the claim is not a YAML mapping", path.display());
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(meta) = meta.as_object_mut()
        && meta
            .get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), Value::String("default".into()));
    }
    Ok(claim)
}

/// The Composition, and its validation errors (every one).
fn load_composition(path: &Path) -> anyhow::Result<(Composition, Vec<compose::ComposeError>)> {
    let text = read(path, "Composition")?;
    let doc = single_document(&text, path, "Composition")?;
    let (api_version, kind) = (str_at(&doc, &["apiVersion"]), str_at(&doc, &["kind"]));
    if api_version != Some("apiextensions.crossplane.io/v1") || kind != Some("Composition") {
        bail!(
            "{}: expected apiVersion apiextensions.crossplane.io/v1, kind Composition; got apiVersion {}, kind {}",
            path.display(),
            api_version.unwrap_or("<none>"),
            kind.unwrap_or("<none>")
        );
    }
    // Deserialize from the text (not the Value) so errors carry line and column.
    let composition = serde_yaml_ng::from_str::<Composition>(&text)
        .with_context(|| format!("{}: invalid Composition", path.display()))?;
    // Every error at once (unknown fields by path, every step, resource and patch set), as
    // the controller would refuse the Composition.
    let name = composition.metadata.name.as_deref().unwrap_or_default();
    let errors = compose::validate_raw(name, &doc);
    Ok((composition, errors))
}

/// `database.example.com/v1alpha1 PostgreSQLInstance`
fn kind_words(api_version: &str, kind: &str) -> String {
    format!("{api_version} {kind}")
}

/// The claim against its kind's schema (the CRD paved serves for it).
fn claim_problems(claim: &Value) -> Vec<Problem> {
    let (Some(api), Some(kind)) = (str_at(claim, &["apiVersion"]), str_at(claim, &["kind"])) else {
        return Vec::new();
    };
    let Some(schema) = crate::schema::served_schema(api, kind) else {
        return Vec::new();
    };
    let name = str_at(claim, &["metadata", "name"]).unwrap_or_default();
    crate::schema::validate(schema, claim)
        .into_iter()
        .map(|e| Problem {
            object: "claim".into(),
            message: format!("claim {name} ({}): {e}", kind_words(api, kind)),
            path: e.path,
            step: None,
            reason: "InvalidClaim",
        })
        .collect()
}

/// A composed object against the schema of the kind paved serves for it (none: not checked).
fn composed_problems(resource: &str, object: &Value) -> Vec<Problem> {
    let (Some(api), Some(kind)) = (str_at(object, &["apiVersion"]), str_at(object, &["kind"]))
    else {
        return Vec::new();
    };
    let Some(schema) = crate::schema::served_schema(api, kind) else {
        return Vec::new();
    };
    crate::schema::validate(schema, object)
        .into_iter()
        .map(|e| Problem {
            object: format!("resource {resource}"),
            message: format!(
                "resource {resource} ({}) would be refused by the API server: {e}",
                kind_words(api, kind)
            ),
            path: e.path,
            step: None,
            reason: "InvalidComposedResource",
        })
        .collect()
}

fn secret_data(secret: &Value, path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let name = str_at(secret, &["metadata", "name"]).unwrap_or("<unnamed>");
    let mut out = BTreeMap::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let s = v.as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .with_context(|| {
                    format!(
                        "{}: Secret {name}: data.{k} is not valid base64",
                        path.display()
                    )
                })?;
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(data) = secret.get("stringData").and_then(Value::as_object) {
        for (k, v) in data {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(k.clone(), s.into_bytes());
        }
    }
    Ok(out)
}

/// Match observed documents to resources, using a first render for the desired names.
fn load_observed(
    path: &Path,
    first: &compose::RenderOutput,
) -> anyhow::Result<BTreeMap<String, ObservedResource>> {
    let docs = documents(&read(path, "observed")?, path)?;
    let mut observed: BTreeMap<String, ObservedResource> = BTreeMap::new();
    let mut secrets = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if !doc.is_object() {
            bail!(
                "{}: YAML document {} is not a Kubernetes object",
                path.display(),
                i + 1
            );
        }
        let kind = str_at(&doc, &["kind"]).unwrap_or_default();
        let api_version = str_at(&doc, &["apiVersion"]).unwrap_or_default();
        if kind == "Secret" && api_version == "v1" {
            secrets.push(doc);
            continue;
        }
        let name = str_at(&doc, &["metadata", "name"]).unwrap_or_default();
        let by_annotation = str_at(
            &doc,
            &["metadata", "annotations", compose::ANNOTATION_RESOURCE_NAME],
        )
        .filter(|r| first.resources.iter().any(|c| c.resource_name == *r));
        let resource = match by_annotation {
            Some(r) => r.to_string(),
            None => first
                .resources
                .iter()
                .find(|c| {
                    str_at(&c.desired, &["apiVersion"]) == Some(api_version)
                        && str_at(&c.desired, &["kind"]) == Some(kind)
                        && str_at(&c.desired, &["metadata", "name"]) == Some(name)
                })
                .map(|c| c.resource_name.clone())
                .with_context(|| {
                    let expected: Vec<String> = first
                        .resources
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {}",
                                str_at(&c.desired, &["kind"]).unwrap_or_default(),
                                str_at(&c.desired, &["metadata", "name"]).unwrap_or_default()
                            )
                        })
                        .collect();
                    format!(
                        "{}: observed {kind} {name} (document {}) matches no resource of the Composition (expected one of: {})",
                        path.display(),
                        i + 1,
                        expected.join(", ")
                    )
                })?,
        };
        if observed.contains_key(&resource) {
            bail!(
                "{}: two observed objects for resource {resource}",
                path.display()
            );
        }
        observed.insert(
            resource,
            ObservedResource {
                object: doc,
                connection_secret: BTreeMap::new(),
            },
        );
    }
    for secret in secrets {
        let name = str_at(&secret, &["metadata", "name"]).unwrap_or_default();
        let resource = first
            .resources
            .iter()
            .find(|c| {
                str_at(&c.desired, &["spec", "writeConnectionSecretToRef", "name"]) == Some(name)
            })
            .map(|c| c.resource_name.clone())
            .with_context(|| {
                format!(
                    "{}: observed Secret {name} is not the connection Secret of any resource",
                    path.display()
                )
            })?;
        let data = secret_data(&secret, path)?;
        observed.entry(resource).or_default().connection_secret = data;
    }
    // A Secret without its object: the object is not observed, so ignore its Secret too.
    observed.retain(|_, o| !o.object.is_null());
    Ok(observed)
}

fn readiness_text(r: &Readiness) -> String {
    match r {
        Readiness::Ready => "Ready".to_string(),
        Readiness::NotObserved => "NotObserved".to_string(),
        Readiness::NotReady { reason, message } => format!("NotReady ({reason}: {message})"),
    }
}

/// The comment above a planned object: its resource, its readiness, and what `paved run` would
/// do differently from applying it as printed.
fn plan_comment(composition_name: &str, p: &Planned, owned: bool) -> String {
    let mut comment = format!(
        "composition {composition_name}, resource {} (index {}): {}",
        p.resource_name,
        p.index,
        readiness_text(&p.readiness)
    );
    match p.action {
        Action::Unchanged => comment.push_str("\nunchanged: paved run would not write it"),
        Action::LeaveDeleting => {
            comment.push_str("\nbeing deleted: paved run leaves it alone until it is gone")
        }
        Action::Create | Action::Update => {}
    }
    if !owned {
        comment.push_str(
            "\nownerReferences: the claim's, added when applied (the claim has no metadata.uid)",
        );
    }
    comment
}

fn yaml_doc(out: &mut dyn Write, comment: &str, v: &Value) -> anyhow::Result<()> {
    let text = serde_yaml_ng::to_string(v).context("writing YAML")?;
    writeln!(out, "---")?;
    for line in comment.lines() {
        writeln!(out, "# {line}")?;
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Run `paved render`, writing YAML (or JSON) to `out`. With `--output json`, a Composition's
/// errors are also written to `out` as a JSON list (path, step, reason, message).
pub fn run(args: &RenderArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let result = render(args, out);
    if args.output == OutputFormat::Json
        && let Err(e) = &result
    {
        let list = if let Some(invalid) = e.downcast_ref::<InvalidComposition>() {
            Some(invalid.to_json())
        } else {
            e.downcast_ref::<compose::ComposeError>().map(|c| {
                serde_json::json!([{"path": c.path(), "step": c.step().map(|(s, _)| s),
                    "reason": c.reason(), "message": c.to_string()}])
            })
        };
        if let Some(list) = list {
            serde_json::to_writer_pretty(&mut *out, &list).context("writing JSON")?;
            writeln!(out)?;
            out.flush()?;
        }
    }
    result
}

fn render(args: &RenderArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut claim = load_claim(&args.claim)?;
    // Owner references need the claim's real uid; patches from `metadata.uid` get a stand-in.
    let owner = plan::owner_reference(&claim);
    let (composition, composition_errors) = load_composition(&args.composition)?;
    let composition_name = composition.metadata.name.clone().unwrap_or_default();
    let mut problems = claim_problems(&claim);
    problems.extend(composition_errors.iter().map(Problem::composition));
    let invalid = |errors: Vec<Problem>| InvalidComposition {
        path: args.composition.clone(),
        errors,
    };
    if !composition_errors.is_empty() {
        return Err(invalid(problems).into());
    }
    let type_ref = &composition.spec.composite_type_ref;
    let served = match &args.xrd {
        Some(path) => Some(check_against_xrd(path, &args.claim, &mut claim)?),
        None => None,
    };
    let (claim_api, claim_kind) = (str_at(&claim, &["apiVersion"]), str_at(&claim, &["kind"]));
    let composes = match &served {
        Some(kind) => kind.composed_by(&type_ref.api_version, &type_ref.kind),
        None => {
            claim_api == Some(type_ref.api_version.as_str())
                && claim_kind == Some(type_ref.kind.as_str())
        }
    };
    if !composes {
        bail!(
            "composition {composition_name} composes {} {}, but the claim is {} {}",
            type_ref.api_version,
            type_ref.kind,
            claim_api.unwrap_or("<no apiVersion>"),
            claim_kind.unwrap_or("<no kind>")
        );
    }
    // Patches against the known schemas: the claim's kind and each composed kind paved serves.
    problems.extend(
        crate::composition_feedback::schema_problems(&composition_name, &composition)
            .iter()
            .map(Problem::composition),
    );
    let mut stand_in_uid = false;
    if owner.is_none() && reads_claim_uid(&composition) {
        stand_in_uid = insert_stand_in_uid(&mut claim);
    }
    let empty = BTreeMap::new();
    let mut input = RenderInput {
        claim: &claim,
        composition_name: &composition_name,
        composition: &composition.spec,
        observed: &empty,
    };
    let first = match compose::render(&input) {
        Ok(o) => o,
        Err(e) if !problems.is_empty() => {
            problems.push(Problem::composition(&e));
            return Err(invalid(problems).into());
        }
        Err(e) => return Err(e.into()),
    };
    let observed;
    let output = match &args.observed {
        Some(path) => {
            observed = load_observed(path, &first)?;
            input.observed = &observed;
            compose::render(&input)?
        }
        None => first,
    };
    let mut warnings = output.warnings.clone();
    if stand_in_uid {
        warnings.insert(
            0,
            format!(
                "the claim has no metadata.uid, and the Composition reads it: patches from metadata.uid used the stand-in {STAND_IN_UID}; in the cluster they read the claim's own uid"
            ),
        );
    }
    let plan_input = PlanInput {
        namespace: str_at(&claim, &["metadata", "namespace"]).unwrap_or("default"),
        owner: owner.as_ref(),
        observed: input.observed,
    };
    let planned = plan::plan(&plan_input, output.resources)?;
    for p in &planned {
        problems.extend(composed_problems(&p.resource_name, &p.desired));
    }
    if !problems.is_empty() {
        return Err(invalid(problems).into());
    }
    if args.output == OutputFormat::Json {
        let skipped: Vec<Value> = output
            .skipped
            .iter()
            .map(|s| {
                serde_json::json!({"resource": s.resource_name, "step": s.step, "message": s.message})
            })
            .collect();
        let mut doc = serde_json::json!({
            "resources": planned.iter().map(|p| p.desired.clone()).collect::<Vec<_>>(),
            "skipped": skipped,
            "warnings": warnings,
            "ready": output.ready,
            "connectionDetails": output.connection_details.keys().collect::<Vec<_>>(),
        });
        if args.observed.is_some() || args.include_claim {
            doc["status"] = Value::Object(output.claim_status.clone());
        }
        serde_json::to_writer_pretty(&mut *out, &doc).context("writing JSON")?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    for s in &output.skipped {
        writeln!(
            out,
            "# skipped: resource {}{}: {}",
            s.resource_name,
            s.step
                .as_deref()
                .map(|st| format!(" (step {st})"))
                .unwrap_or_default(),
            s.message
        )?;
    }
    for w in &warnings {
        writeln!(out, "# warning: {w}")?;
    }
    for p in &planned {
        yaml_doc(
            out,
            &plan_comment(&composition_name, p, owner.is_some()),
            &p.desired,
        )?;
    }
    if args.include_claim {
        let mut claim = claim.clone();
        if let Some(obj) = claim.as_object_mut() {
            if output.claim_status.is_empty() {
                obj.remove("status");
            } else {
                obj.insert("status".into(), Value::Object(output.claim_status.clone()));
            }
        }
        let keys: Vec<&str> = output
            .connection_details
            .keys()
            .map(String::as_str)
            .collect();
        let comment = format!(
            "claim, as patched: ready={}; connection details: {}",
            output.ready,
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        );
        yaml_doc(out, &comment, &claim)?;
    }
    out.flush()?;
    Ok(())
}
