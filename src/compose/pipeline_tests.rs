//! Mode Pipeline (function-patch-and-transform in-process, function-auto-ready), the places
//! where paved now renders as Crossplane does, and every error of a Composition in one run.
//! Each test names the Crossplane behaviour it checks and where it comes from.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::api::composition::CompositionSpec;

const TWO_STEPS: &str = include_str!("../../tests/fixtures/compose/pipeline-two-steps.yaml");

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).unwrap()
}

fn spec(v: Value) -> CompositionSpec {
    let mut v = v;
    if v.get("compositeTypeRef").is_none() {
        v["compositeTypeRef"] =
            json!({"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"});
    }
    serde_json::from_value(v).unwrap()
}

fn claim() -> Value {
    json!({
        "apiVersion": "database.example.com/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
        "spec": {"parameters": {"storageGB": 20, "version": "16", "region": "eu-west-1"}}
    })
}

fn run(
    claim: &Value,
    spec: &CompositionSpec,
    observed: &BTreeMap<String, ObservedResource>,
) -> Result<RenderOutput, ComposeError> {
    super::tests::render_named("c", claim, spec, observed)
}

fn pt(resources: Value) -> Value {
    json!({"apiVersion": pipeline::PT_API_VERSION, "kind": "Resources", "resources": resources})
}

fn base() -> Value {
    json!({"apiVersion": "rds.aws.upbound.io/v1beta3", "kind": "Instance", "spec": {"forProvider": {}}})
}

fn observed(obj: Value, secret: &[(&str, &str)]) -> ObservedResource {
    ObservedResource {
        object: obj,
        connection_secret: secret
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

#[test]
fn pipeline_two_steps_renders_like_function_patch_and_transform() {
    let comp = yaml(TWO_STEPS);
    let spec: CompositionSpec = serde_json::from_value(comp["spec"].clone()).unwrap();
    assert!(validate_all("pipeline-two-steps", &spec).is_empty());
    assert_eq!(validate_raw("x", &comp), vec![]);
    check_mode("pipeline-two-steps", &spec).unwrap();
    let listed = listed_resources("pipeline-two-steps", &spec).unwrap();
    assert_eq!(
        listed,
        vec![
            ListedResource {
                name: "subnets".into(),
                api_version: "rds.aws.upbound.io/v1beta1".into(),
                kind: "SubnetGroup".into()
            },
            ListedResource {
                name: "db".into(),
                api_version: "rds.aws.upbound.io/v1beta3".into(),
                kind: "Instance".into()
            },
        ]
    );

    // Nothing observed yet.
    let out = run(&claim(), &spec, &BTreeMap::new()).unwrap();
    assert_eq!(out.resources.len(), 2);
    let db = &out.resources[1];
    assert_eq!(db.resource_name, "db");
    assert_eq!(db.step.as_deref(), Some("database"));
    assert_eq!(db.readiness, Readiness::NotObserved);
    // Step 1's base and patch set, then step 2's patches on top of it (no base).
    assert_eq!(
        db.desired["spec"]["forProvider"],
        json!({"engine": "postgres", "instanceClass": "db.t3.micro",
               "dbSubnetGroupNameSelector": {"matchControllerRef": true},
               "region": "eu-west-1", "allocatedStorage": 20, "engineVersion": "16",
               "tags": {"owner": "shop-orders"}})
    );
    assert_eq!(db.desired["metadata"]["name"], json!("orders-db"));
    assert_eq!(
        out.resources[0].desired["spec"]["forProvider"]["region"],
        json!("eu-west-1")
    );
    // function-patch-and-transform extracts connection details only from observed
    // resources: even FromValue waits.
    assert!(out.connection_details.is_empty());
    assert!(!out.ready);
    assert!(out.skipped.is_empty() && out.warnings.is_empty());
    assert_eq!(out.connection_secret, None);

    // Observed: the DB is not "available" yet, but its Ready condition is True, so
    // function-auto-ready (the last step) marks it ready, as it marks resources no step
    // decided ready. The subnet group has no checks: its Ready condition decides.
    let ready = json!([{"type": "Ready", "status": "True"}]);
    let obs = BTreeMap::from([
        (
            "subnets".to_string(),
            observed(json!({"status": {"conditions": ready}}), &[]),
        ),
        (
            "db".to_string(),
            observed(
                json!({"status": {"atProvider": {"address": "db.example", "port": 5432, "dbInstanceStatus": "modifying"},
                                  "conditions": ready}}),
                &[("attribute.password", "pw"), ("other", "x")],
            ),
        ),
    ]);
    let out = run(&claim(), &spec, &obs).unwrap();
    assert!(out.ready, "{:?}", out.resources);
    assert_eq!(out.claim_status["address"], json!("db.example"));
    assert_eq!(out.claim_status["endpoint"], json!("db.example:5432"));
    let keys: Vec<&str> = out.connection_details.keys().map(String::as_str).collect();
    assert_eq!(keys, ["host", "password", "sslmode"]);
    assert_eq!(out.connection_details["password"], b"pw".to_vec());

    // Without function-auto-ready, the failing MatchString leaves the DB not ready.
    let mut no_auto = spec.clone();
    no_auto.pipeline.as_mut().unwrap().pop();
    let out = run(&claim(), &no_auto, &obs).unwrap();
    assert!(!out.ready);
    assert!(
        matches!(&out.resources[1].readiness, Readiness::NotReady { reason, .. } if reason == "ReadinessCheckFailed")
    );
}

#[test]
fn a_step_of_any_other_function_is_refused_by_name_before_rendering() {
    // Crossplane runs these in containers; paved has no function runtime.
    let s = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "function-patch-and-transform"},
         "input": pt(json!([{"name": "db", "base": base()}]))},
        {"step": "templates", "functionRef": {"name": "function-go-templating"},
         "input": {"apiVersion": "gotemplating.fn.crossplane.io/v1beta1", "kind": "GoTemplate", "source": "Inline"}}
    ]}));
    let e = check_mode("c", &s).unwrap_err();
    assert_eq!(e.kind(), Reason::UnsupportedFunction);
    assert_eq!(e.step(), Some(("templates", 1)));
    assert_eq!(e.path(), "spec.pipeline[1].functionRef.name");
    let text = e.to_string();
    assert!(
        text.starts_with("composition c: mode Pipeline, step templates (index 1): runs Function \"function-go-templating\" (input gotemplating.fn.crossplane.io/v1beta1 GoTemplate), which paved does not run"),
        "{text}"
    );
    let r = run(&claim(), &s, &BTreeMap::new()).unwrap_err();
    assert_eq!(r, e);
    assert_eq!(validate_all("c", &s), vec![e]);
}

#[test]
fn required_patch_that_cannot_be_applied_skips_that_resource() {
    // function-patch-and-transform (fn.go): a Required patch to a composed resource whose
    // source is missing keeps that resource out of the desired state while it does not exist
    // (a warning, and the XR is not ready); once it exists the patch is ignored. Crossplane
    // v1.20's v1 composer (composition_pt.go, PTComposer.Compose) does not render nor apply
    // the resource either (a warning event; the resource is not ready); other resources go on.
    let required = json!({"fromFieldPath": "status.address", "toFieldPath": "spec.forProvider.host",
                          "policy": {"fromFieldPath": "Required"}});
    let resources = json!([
        {"name": "db", "base": base()},
        {"name": "service", "base": {"apiVersion": "v1", "kind": "Service", "spec": {}}, "patches": [required]}
    ]);
    let pipeline = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "function-patch-and-transform"}, "input": pt(resources.clone())}]}));
    let classic = spec(json!({"resources": resources}));
    for (mode, s) in [("Pipeline", &pipeline), ("Resources", &classic)] {
        let out = run(&claim(), s, &BTreeMap::new()).unwrap();
        let names: Vec<&str> = out
            .resources
            .iter()
            .map(|r| r.resource_name.as_str())
            .collect();
        assert_eq!(names, ["db"], "{mode}");
        assert_eq!(out.skipped.len(), 1, "{mode}");
        assert_eq!(out.skipped[0].resource_name, "service");
        assert!(
            out.skipped[0]
                .message
                .contains("fromFieldPath status.address is required"),
            "{}",
            out.skipped[0].message
        );
        assert!(!out.ready);
    }
    // The resource exists: function-patch-and-transform ignores the Required patch (warning)
    // and renders it; the v1 composer still leaves it as it is (skipped).
    let obs = BTreeMap::from([("service".to_string(), observed(json!({"spec": {}}), &[]))]);
    let out = run(&claim(), &pipeline, &obs).unwrap();
    assert_eq!(out.resources.len(), 2);
    assert!(out.skipped.is_empty());
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].contains("ignoring policy.fromFieldPath Required"));
    assert!(
        out.resources[1].desired["spec"]
            .get("forProvider")
            .is_none()
    );
    let out = run(&claim(), &classic, &obs).unwrap();
    assert_eq!(out.resources.len(), 1);
    assert_eq!(out.skipped[0].resource_name, "service");
    // Once the source exists it is patched in both modes.
    let mut c = claim();
    c["status"] = json!({"address": "db.example"});
    for s in [&pipeline, &classic] {
        let out = run(&c, s, &BTreeMap::new()).unwrap();
        assert!(out.skipped.is_empty());
        assert_eq!(
            out.resources[1].desired["spec"]["forProvider"]["host"],
            json!("db.example")
        );
    }
}

#[test]
fn readiness_check_on_a_wrong_typed_field() {
    // Crossplane v1 composer (composite/ready.go, composition_pt.go): IsReady returns the
    // error of GetString/GetInteger and Compose fails with "cannot check whether composed
    // resource ... is ready". function-patch-and-transform (ready.go, fn.go) turns the same
    // error into a warning and leaves the resource not ready.
    let checks = json!([{"type": "MatchString", "fieldPath": "status.atProvider.port", "matchString": "5432"}]);
    let res = json!([{"name": "db", "base": base(), "readinessChecks": checks}]);
    let obs = BTreeMap::from([(
        "db".to_string(),
        observed(json!({"status": {"atProvider": {"port": 5432}}}), &[]),
    )]);
    let e = run(&claim(), &spec(json!({"resources": res.clone()})), &obs).unwrap_err();
    assert_eq!(e.kind(), Reason::ReadinessCheckError);
    assert!(
        e.to_string()
            .contains("status.atProvider.port is integer 5432, not a string"),
        "{e}"
    );
    let p = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"}, "input": pt(res)}]}));
    let out = run(&claim(), &p, &obs).unwrap();
    assert!(
        matches!(&out.resources[0].readiness, Readiness::NotReady { reason, .. } if reason == "ReadinessCheckError")
    );
    assert_eq!(out.warnings.len(), 1);
    assert!(!out.ready);
}

#[test]
fn composition_without_resources_or_pipeline_is_refused() {
    // Crossplane (apis/apiextensions/v1/composition_validation.go validateMode): "an array of
    // resources is required in Resources mode", "an array of pipeline steps is required in
    // Pipeline mode".
    let e = validate("c", &spec(json!({}))).unwrap_err();
    assert_eq!(e.path(), "spec.resources");
    let e = validate("c", &spec(json!({"mode": "Pipeline"}))).unwrap_err();
    assert_eq!(e.path(), "spec.pipeline");
    assert!(e.to_string().contains("at least one step"), "{e}");
    let e = validate(
        "c",
        &spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"}, "input": pt(json!([]))}]})),
    )
    .unwrap_err();
    assert_eq!(e.path(), "spec.pipeline[0].input.resources");
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    // paved's choice (the issue): Crossplane's API server prunes or, with kubectl's strict
    // field validation, rejects unknown fields; a misspelt key must never be ignored.
    let comp = json!({"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        "metadata": {"name": "typo"},
        "spec": {"compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
                 "resource": [{"name": "db", "base": base()}]}});
    let errs = validate_raw("ignored", &comp);
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 2, "{texts:?}");
    assert_eq!(errs[0].path(), "spec.resource");
    assert_eq!(
        texts[0],
        "composition typo: unknown field spec.resource: a Composition has no such field (misspelt?)"
    );
    assert_eq!(errs[1].path(), "spec.resources");
    // Inside a function-patch-and-transform input (free-form in the CRD, so the API server
    // keeps it): refused by the typed path too, as the controller sees it.
    let s = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"},
         "input": pt(json!([{"name": "db", "base": base(), "patch": []}]))}]}));
    let errs = validate_all("c", &s);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path(), "spec.pipeline[0].input.resources[0].patch");
    assert!(errs[0].to_string().contains("unknown field"), "{}", errs[0]);
}

#[test]
fn every_patch_set_is_validated_even_when_unused() {
    // Crossplane (composition_validation.go validatePatchSets): every patch of every patch set
    // is validated, whether or not a resource includes it.
    let s = spec(json!({
        "patchSets": [{"name": "unused", "patches": [{"type": "FromCompositeFieldPath"}]}],
        "resources": [{"name": "db", "base": base()}]
    }));
    let e = validate("c", &s).unwrap_err();
    assert_eq!(e.path(), "spec.patchSets[0].patches[0]");
    assert!(e.to_string().contains("fromFieldPath is required"), "{e}");
    // A used set's broken patch is reported once, at the set.
    let s = spec(json!({
        "patchSets": [{"name": "used", "patches": [{"fromFieldPath": "a..b"}]}],
        "resources": [{"name": "db", "base": base(), "patches": [{"type": "PatchSet", "patchSetName": "used"}]}]
    }));
    let errs = validate_all("c", &s);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path(), "spec.patchSets[0].patches[0]");
}

#[test]
fn validate_all_reports_every_error_with_its_location() {
    let s = spec(json!({
        "patchSets": [{"name": "s", "patches": [{"type": "PatchSet", "patchSetName": "s"}]}],
        "resources": [
            {"name": "a", "base": {"kind": "X"}, "patches": [
                {"fromFieldPath": "a..b"},
                {"type": "PatchSet", "patchSetName": "nope"},
                {"fromFieldPath": "x", "toFieldPath": "spec.items[2000]"}]},
            {"name": "b", "base": base(),
             "connectionDetails": [{"type": "FromValue", "name": "k"}],
             "readinessChecks": [{"type": "MatchString", "fieldPath": "status.x"}]}
        ]
    }));
    let errs = validate_all("c", &s);
    let paths: Vec<&str> = errs.iter().map(ComposeError::path).collect();
    assert_eq!(
        paths,
        [
            "spec.patchSets[0].patches[0]",
            "spec.resources[0].base",
            "spec.resources[0].patches[0]",
            "spec.resources[0].patches[1]",
            "spec.resources[0].patches[2]",
            "spec.resources[1].connectionDetails[0]",
            "spec.resources[1].readinessChecks[0]",
        ]
    );
    assert_eq!(errs[2].resource(), Some(("a", 0)));
    assert!(matches!(
        errs[4].location(),
        Some(Location::Patch { index: 2, .. })
    ));
    // The single-error API returns the first.
    assert_eq!(validate("c", &s).unwrap_err(), errs[0]);
    assert_eq!(
        run(&claim(), &s, &BTreeMap::new()).unwrap_err(),
        errs[0].clone()
    );
}

#[test]
fn pipeline_validation_is_what_function_patch_and_transform_requires() {
    // function-patch-and-transform (validate.go): every resource named; connection details
    // need type and name; string and math transforms need a type; and (fn.go) a resource
    // without base must have been produced by an earlier step.
    let s = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"}, "input": pt(json!([
            {"base": base()},
            {"name": "ghost", "patches": [{"fromFieldPath": "a", "toFieldPath": "spec.a",
                "transforms": [{"type": "string", "string": {"fmt": "%s"}}, {"type": "math", "math": {"multiply": 2}}]}]},
            {"name": "db", "base": base(), "connectionDetails": [{"fromConnectionSecretKey": "password"}]}
        ]))},
        {"step": "pt", "functionRef": {"name": "pt"}, "input": pt(json!([{"name": "db"}]))}
    ]}));
    let errs = validate_all("c", &s);
    let paths: Vec<&str> = errs.iter().map(ComposeError::path).collect();
    assert_eq!(
        paths,
        [
            "spec.pipeline[0].input.resources[0].name",
            "spec.pipeline[0].input.resources[1].base",
            "spec.pipeline[0].input.resources[1].patches[0]",
            "spec.pipeline[0].input.resources[1].patches[0]",
            "spec.pipeline[0].input.resources[2].connectionDetails[0]",
            "spec.pipeline[1].step",
        ],
        "{errs:#?}"
    );
    assert!(errs[4].to_string().contains("type and name are required"));
}

#[test]
fn connection_secret_of_a_v2_xr_follows_write_connection_secret_to_ref() {
    // function-patch-and-transform v0.10 (connection.go): for an XR without native
    // connection details (it has spec.crossplane) the details go to a Secret: the XR's own
    // spec.writeConnectionSecretToRef, else the input's, else <name>-connection; the input's
    // patches then apply.
    let mut input = pt(json!([{"name": "db", "base": base(),
        "connectionDetails": [{"name": "password", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "pw"}]}]));
    input["writeConnectionSecretToRef"] = json!({"name": "fixed", "patches": [
        {"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.name"}], "strategy": "string", "string": {"fmt": "%s-db-conn"}}, "toFieldPath": "name"}]});
    let s = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"}, "input": input}]}));
    let mut xr = claim();
    xr["spec"]["crossplane"] = json!({});
    let out = run(&xr, &s, &BTreeMap::new()).unwrap();
    assert_eq!(
        out.connection_secret,
        Some(SecretRef {
            name: "orders-db-conn".into(),
            namespace: "shop".into()
        })
    );
    // A claim (no spec.crossplane) keeps its own connection Secret.
    assert_eq!(
        run(&claim(), &s, &BTreeMap::new())
            .unwrap()
            .connection_secret,
        None
    );
    // Never outside the claim's namespace.
    let mut other = s.clone();
    other.pipeline.as_mut().unwrap()[0].input.as_mut().unwrap()["writeConnectionSecretToRef"] =
        json!({"name": "x", "namespace": "elsewhere"});
    let e = run(&xr, &other, &BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("not the claim's namespace"), "{e}");
}

/// The corpus of real Compositions, when this checkout sits next to ../shared (a fresh clone
/// has none: the tests then print a note and pass without checking).
fn corpus_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // ../shared next to the main checkout; a worktree under /work/wt/<name> is one deeper.
    let candidates: Vec<PathBuf> = match std::env::var_os("CORPUS_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![
            root.join("../shared/corpus/compositions"),
            root.join("../../shared/corpus/compositions"),
        ],
    };
    let found = candidates.iter().find(|d| d.is_dir()).cloned();
    if found.is_none() {
        println!(
            "note: corpus not found at {} (set CORPUS_DIR); skipping",
            candidates[0].display()
        );
    }
    found
}

/// The first document of a corpus file that is not a Secret (the files start with a
/// `# Source:` comment and may hold a Secret first).
fn corpus_doc(dir: &std::path::Path, entry: &str, file: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(entry).join(file)).unwrap();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if !v.is_null() && v.get("kind") != Some(&json!("Secret")) {
            return v;
        }
    }
    panic!("{entry}/{file}: no document");
}

/// The example claim as paved presents it to Compositions: the claim with a uid.
fn corpus_claim(dir: &std::path::Path, entry: &str) -> Value {
    let mut c = corpus_doc(dir, entry, "example-claim.yaml");
    c["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001");
    // As `kubectl apply` (and `paved render`) would place a claim without a namespace.
    if c["metadata"].get("namespace").is_none() {
        c["metadata"]["namespace"] = json!("default");
    }
    c
}

#[test]
fn corpus_pipelines_of_patch_and_transform_render() {
    let Some(dir) = corpus_dir() else { return };
    // The README's Pipeline entries whose steps are all function-patch-and-transform (and
    // function-auto-ready).
    for (entry, instance_api) in [
        ("appmod-rds-postgres-v2", "rds.aws.upbound.io/v1beta3"),
        (
            "upbound-config-aws-database-pt-2025",
            "rds.aws.upbound.io/v1beta1",
        ),
    ] {
        let comp = corpus_doc(&dir, entry, "composition.yaml");
        let errs = validate_raw(entry, &comp);
        assert!(errs.is_empty(), "{entry}: {errs:#?}");
        let s: CompositionSpec = serde_json::from_value(comp["spec"].clone()).unwrap();
        let c = corpus_claim(&dir, entry);
        let out = run(&c, &s, &BTreeMap::new()).unwrap();
        let instance = out
            .resources
            .iter()
            .find(|r| r.desired["kind"] == json!("Instance"))
            .unwrap_or_else(|| panic!("{entry}: no Instance"));
        assert_eq!(
            instance.desired["apiVersion"],
            json!(instance_api),
            "{entry}"
        );
        assert_eq!(
            instance.desired["metadata"]["namespace"],
            c["metadata"]["namespace"]
        );
        assert!(out.skipped.is_empty() && out.warnings.is_empty(), "{entry}");
        // Observed and Ready: ready, with the declared connection details.
        let obs: BTreeMap<String, ObservedResource> = out
            .resources
            .iter()
            .map(|r| {
                (
                    r.resource_name.clone(),
                    observed(
                        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}],
                                          "atProvider": {"address": "db.example", "endpoint": "db.example:5432"}},
                               "spec": {"forProvider": {"username": "masteruser"}}}),
                        &[("username", "u"), ("password", "p"), ("endpoint", "e"), ("port", "5432"), ("attribute.password", "p")],
                    ),
                )
            })
            .collect();
        let out = run(&c, &s, &obs).unwrap();
        assert!(out.ready, "{entry}");
        assert!(
            out.connection_details.contains_key("password"),
            "{entry}: {:?}",
            out.connection_details.keys()
        );
    }
    let appmod = corpus_claim(&dir, "appmod-rds-postgres-v2");
    let comp = corpus_doc(&dir, "appmod-rds-postgres-v2", "composition.yaml");
    let s: CompositionSpec = serde_json::from_value(comp["spec"].clone()).unwrap();
    let out = run(&appmod, &s, &BTreeMap::new()).unwrap();
    let db = &out.resources[2].desired;
    assert_eq!(db["spec"]["forProvider"]["allocatedStorage"], json!(20));
    assert_eq!(db["spec"]["forProvider"]["engineVersion"], json!("14.12"));
    assert_eq!(
        db["metadata"]["annotations"]["crossplane.io/external-name"],
        json!("crossplane-v2-test-postgres-db")
    );
    assert_eq!(db["spec"]["forProvider"]["region"], json!("us-west-2"));
}

#[test]
fn corpus_pipelines_with_other_functions_are_refused_by_step_and_function() {
    let Some(dir) = corpus_dir() else { return };
    for (entry, step, function) in [
        (
            "dip-software-postgres-aws",
            "load-environment-configs",
            "function-environment-configs",
        ),
        (
            "ogenki-sqlinstance-2024",
            "sql-go-templating",
            "function-go-templating",
        ),
        (
            "vfarcic-sql-aws-2024-pt",
            "",
            "crossplane-contrib-function-go-templating",
        ),
        (
            "upbound-config-aws-database-kcl",
            "",
            "upbound-configuration-aws-databasesqlinstance",
        ),
        (
            "upbound-config-aws-database-ai",
            "",
            "upbound-configuration-aws-database-aisqlinstance",
        ),
        ("vfarcic-sql-aws-kcl", "", "crossplane-contrib-function-kcl"),
    ] {
        let comp = corpus_doc(&dir, entry, "composition.yaml");
        let s: CompositionSpec = serde_json::from_value(comp["spec"].clone()).unwrap();
        let e = check_mode(entry, &s).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.kind(), Reason::UnsupportedFunction, "{entry}");
        assert!(
            text.contains(&format!("Function {function:?}")),
            "{entry}: {text}"
        );
        if !step.is_empty() {
            assert_eq!(e.step().map(|(s, _)| s), Some(step), "{entry}: {text}");
        }
        let c = corpus_claim(&dir, entry);
        let r = run(&c, &s, &BTreeMap::new()).unwrap_err();
        assert_eq!((r.step(), r.message()), (e.step(), e.message()), "{entry}");
    }
}

#[test]
fn corpus_every_composition_is_validated_in_one_run() {
    let Some(dir) = corpus_dir() else { return };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("composition.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    entries.sort();
    assert!(entries.len() >= 17);
    let mut most = (String::new(), 0);
    for entry in &entries {
        let comp = corpus_doc(&dir, entry, "composition.yaml");
        let errs = validate_raw(entry, &comp);
        println!("{entry}: {} error(s)", errs.len());
        for e in &errs {
            println!("  {}: {e}", e.path());
            assert!(e.path().starts_with("spec"), "{e}");
        }
        if errs.len() > most.1 {
            most = (entry.clone(), errs.len());
        }
    }
    println!("most errors: {} ({})", most.0, most.1);
}

#[test]
fn required_patch_to_the_claim() {
    // Crossplane v1 composer (composition_pt.go): "Failures to render ToComposite patches are
    // terminal". function-patch-and-transform (fn.go): a Required patch that cannot be applied
    // and is not to a composed resource is a warning.
    let res = json!([{"name": "db", "base": base(), "patches": [
        {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address",
         "toFieldPath": "status.address", "policy": {"fromFieldPath": "Required"}}]}]);
    let obs = BTreeMap::from([("db".to_string(), observed(json!({"status": {}}), &[]))]);
    let e = run(&claim(), &spec(json!({"resources": res.clone()})), &obs).unwrap_err();
    assert_eq!(e.kind(), Reason::RequiredFieldMissing);
    let p = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "pt", "functionRef": {"name": "pt"}, "input": pt(res)}]}));
    let out = run(&claim(), &p, &obs).unwrap();
    assert_eq!(out.resources.len(), 1);
    assert!(out.skipped.is_empty());
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("status.atProvider.address"));
}

#[test]
fn a_later_step_with_a_base_replaces_the_resource() {
    // function-patch-and-transform (fn.go): "If a previous Function produced a desired
    // resource with this name we'll overwrite it."
    let s = spec(json!({"mode": "Pipeline", "pipeline": [
        {"step": "one", "functionRef": {"name": "pt"}, "input": pt(json!([
            {"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance", "spec": {"forProvider": {"a": 1}}}},
            {"name": "other", "base": base()}]))},
        {"step": "two", "functionRef": {"name": "pt"}, "input": pt(json!([
            {"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta3", "kind": "Instance", "spec": {"forProvider": {"b": 2}}}}]))}
    ]}));
    let out = run(&claim(), &s, &BTreeMap::new()).unwrap();
    let names: Vec<&str> = out
        .resources
        .iter()
        .map(|r| r.resource_name.as_str())
        .collect();
    assert_eq!(names, ["db", "other"]);
    assert_eq!(
        out.resources[0].desired["spec"]["forProvider"],
        json!({"b": 2})
    );
    assert_eq!(out.resources[0].step.as_deref(), Some("two"));
    let listed = listed_resources("c", &s).unwrap();
    assert_eq!(listed[0].api_version, "rds.aws.upbound.io/v1beta3");
    assert_eq!(listed.len(), 2);
}
