//! `paved render` as a platform team runs it in CI: the built binary, real files, stdout and
//! stderr, exit codes. No cluster needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/compose").join(name)
}

fn paved(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paved"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("running paved")
}

fn render(claim: &Path, composition: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "render",
        "--claim",
        claim.to_str().unwrap(),
        "--composition",
        composition.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    paved(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}, stderr:\n{}",
        o.status.code(),
        stderr(o)
    );
    assert!(stderr(o).is_empty(), "unexpected stderr:\n{}", stderr(o));
}

fn assert_failure(o: &Output, needles: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    assert!(
        stdout(o).is_empty(),
        "stdout should be empty on error:\n{}",
        stdout(o)
    );
}

#[test]
fn seed_renders_the_expected_instance() {
    let o = render(
        &root().join("examples/seed/claim.yaml"),
        &root().join("examples/seed/composition.yaml"),
        &[],
    );
    assert_success(&o);
    let want = std::fs::read_to_string(fixture("seed.expected.yaml")).unwrap();
    assert_eq!(stdout(&o), want);
    // And the values that matter, independently of formatting.
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(stdout(&o).trim_start_matches("---\n")).unwrap();
    let fp = &doc["spec"]["forProvider"];
    assert_eq!(fp["allocatedStorage"], serde_json::json!(20));
    assert_eq!(fp["engineVersion"], serde_json::json!("14"));
    assert_eq!(fp["region"], serde_json::json!("ap-northeast-2"));
    assert_eq!(fp["instanceClass"], serde_json::json!("db.t3.micro"));
    assert_eq!(fp["engine"], serde_json::json!("postgres"));
    assert_eq!(
        doc["metadata"]["name"],
        serde_json::json!("my-app-db-rds-instance")
    );
    assert_eq!(doc["metadata"]["namespace"], serde_json::json!("my-team"));
    assert_eq!(
        doc["metadata"]["labels"]["crossplane.io/claim-name"],
        serde_json::json!("my-app-db")
    );
    assert_eq!(
        doc["metadata"]["labels"]["crossplane.io/claim-namespace"],
        serde_json::json!("my-team")
    );
    assert_eq!(
        doc["metadata"]["annotations"]["crossplane.io/composition-resource-name"],
        serde_json::json!("rds-instance")
    );
}

#[test]
fn rich_composition_with_observed_state_and_claim() {
    let o = render(
        &fixture("claim-production.yaml"),
        &root().join("examples/compositions/postgresql-aws-standard.yaml"),
        &[
            "--observed",
            fixture("observed-production.yaml").to_str().unwrap(),
            "--include-claim",
        ],
    );
    assert_success(&o);
    let out = stdout(&o);
    assert_eq!(
        out,
        std::fs::read_to_string(fixture("production.expected.yaml")).unwrap()
    );
    // GitOps tracking metadata stays on the claim only.
    let instance = out.split("---\n").nth(1).unwrap();
    assert!(!instance.contains("argocd.argoproj.io"));
    assert!(!instance.contains("app.kubernetes.io/instance"));
    // Secret values never appear, only key names.
    assert!(!out.contains("s3cr3t") && !out.contains("czNjcjN0"));
    assert!(out.contains("connection details: host, password, port, sslmode, username"));
}

#[test]
fn claim_is_printed_only_with_include_claim() {
    let o = render(
        &root().join("examples/seed/claim.yaml"),
        &root().join("examples/seed/composition.yaml"),
        &["--include-claim"],
    );
    assert_success(&o);
    let out = stdout(&o);
    assert_eq!(out.matches("---\n").count(), 2);
    assert!(out.contains("kind: PostgreSQLInstance"));
    assert!(out.contains("ready=false"));
}

#[test]
fn malformed_field_path_fails_with_position() {
    let o = render(
        &root().join("examples/seed/claim.yaml"),
        &fixture("composition-bad-path.yaml"),
        &[],
    );
    assert_failure(
        &o,
        &[
            "composition broken, resource rds-instance (index 0), patch 0 (FromCompositeFieldPath)",
            "invalid field path \"spec.parameters..storageGB\": unexpected '.' at position 16",
        ],
    );
}

#[test]
fn transform_error_names_everything() {
    let o = render(
        &root().join("examples/seed/claim.yaml"),
        &fixture("composition-bad-transform.yaml"),
        &[],
    );
    assert_failure(
        &o,
        &[
            "composition postgresql-aws, resource rds-instance (index 0), patch 1 (FromCompositeFieldPath): fromFieldPath spec.parameters.environment: transform 0 (convert): cannot convert string \"staging\" to int64",
        ],
    );
}

#[test]
fn unknown_patch_type_fails_with_line_and_column() {
    let o = render(
        &root().join("examples/seed/claim.yaml"),
        &fixture("composition-unknown-type.yaml"),
        &[],
    );
    assert_failure(&o, &["unknown variant `FromSomewhereElse`", "line 15"]);
}

#[test]
fn bad_inputs_fail_cleanly() {
    let seed_claim = root().join("examples/seed/claim.yaml");
    let seed_comp = root().join("examples/seed/composition.yaml");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    // Missing file.
    assert_failure(
        &render(Path::new("/nonexistent/claim.yaml"), &seed_comp, &[]),
        &["reading the claim file"],
    );
    // Swapped arguments.
    assert_failure(
        &render(&seed_comp, &seed_claim, &[]),
        &["expected apiVersion apiextensions.crossplane.io/v1, kind Composition"],
    );
    // Not YAML, empty, several documents, not a mapping.
    let garbage = write("garbage.yaml", "key: [unclosed\n");
    assert_failure(&render(&garbage, &seed_comp, &[]), &["garbage.yaml"]);
    let empty = write("empty.yaml", "");
    assert_failure(&render(&empty, &seed_comp, &[]), &["no YAML document"]);
    let two = write("two.yaml", "a: 1\n---\nb: 2\n");
    assert_failure(&render(&two, &seed_comp, &[]), &["2 YAML documents"]);
    let scalar = write("scalar.yaml", "just a string\n");
    assert_failure(&render(&scalar, &seed_comp, &[]), &["not a YAML mapping"]);
    // A claim of another type.
    let other = write(
        "other.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    assert_failure(
        &render(&other, &seed_comp, &[]),
        &[
            "composes database.example.com/v1alpha1 PostgreSQLInstance, but the claim is v1 ConfigMap",
        ],
    );
    // A claim without a name.
    let noname = write(
        "noname.yaml",
        "apiVersion: database.example.com/v1alpha1\nkind: PostgreSQLInstance\nspec: {}\n",
    );
    assert_failure(
        &render(&noname, &seed_comp, &[]),
        &["the claim has no metadata.name"],
    );
    // Observed objects that match nothing, and bad Secret data.
    let stray = write(
        "stray.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
    );
    assert_failure(
        &render(
            &seed_claim,
            &seed_comp,
            &["--observed", stray.to_str().unwrap()],
        ),
        &[
            "observed Pod x (document 1) matches no resource",
            "Instance my-app-db-rds-instance",
        ],
    );
    let bad_secret = write(
        "bad-secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: my-app-db-rds-instance-connection}\ndata: {password: '!!!'}\n",
    );
    assert_failure(
        &render(
            &seed_claim,
            &seed_comp,
            &["--observed", bad_secret.to_str().unwrap()],
        ),
        &["data.password is not valid base64"],
    );
    // Pipeline mode is refused with a message.
    let pipeline = write(
        "pipeline.yaml",
        "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata: {name: fn}\nspec:\n  compositeTypeRef: {apiVersion: database.example.com/v1alpha1, kind: PostgreSQLInstance}\n  mode: Pipeline\n  pipeline: [{step: a}]\n",
    );
    assert_failure(
        &render(&seed_claim, &pipeline, &[]),
        &["composition fn: mode Pipeline"],
    );
    // Missing arguments: clap's usage error (exit 2 is clap's convention; still no panic).
    let o = paved(&["render", "--claim", seed_claim.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--composition"));
}

#[test]
fn claim_without_namespace_renders_in_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("claim.yaml");
    std::fs::write(
        &p,
        "apiVersion: database.example.com/v1alpha1\nkind: PostgreSQLInstance\nmetadata: {name: nons}\nspec: {parameters: {storageGB: 30, version: '15'}}\n",
    )
    .unwrap();
    let o = render(&p, &root().join("examples/seed/composition.yaml"), &[]);
    assert_success(&o);
    assert!(stdout(&o).contains("namespace: default"));
    assert!(stdout(&o).contains("allocatedStorage: 30"));
}

#[test]
fn a_patch_from_metadata_uid_renders_with_a_stand_in_named_in_a_warning() {
    // A Composition that patches from the claim's uid (corpus Compositions name the password
    // Secret `<uid>-input`, a required field) rendered for a claim read from a file: the claim
    // has no uid, so without a stand-in the patch would be skipped.
    let dir = tempfile::tempdir().unwrap();
    let comp = dir.path().join("uid.yaml");
    std::fs::write(
        &comp,
        seed_composition_with(
            "    patches:\n",
            "    patches:\n        - fromFieldPath: metadata.uid\n          toFieldPath: spec.forProvider.tags.claim-uid\n          transforms:\n            - type: string\n              string: {fmt: \"%s-input\"}\n",
        ),
    )
    .unwrap();
    let seed = root().join("examples/seed/claim.yaml");
    let o = render(&seed, &comp, &[]);
    assert_success(&o);
    let out = stdout(&o);
    assert!(
        out.contains("claim-uid: 00000000-0000-0000-0000-000000000000-input"),
        "{out}"
    );
    assert!(
        out.contains("# warning: the claim has no metadata.uid, and the Composition reads it"),
        "{out}"
    );
    // No owner reference is invented from the stand-in.
    assert!(!out.contains("ownerReferences:\n"), "{out}");
    // A claim with its own uid renders with it, and no warning.
    let with_uid = dir.path().join("claim.yaml");
    std::fs::write(
        &with_uid,
        std::fs::read_to_string(&seed).unwrap().replace(
            "metadata:\n",
            "metadata:\n  uid: 6f1c3d0a-1111-4222-8333-444455556666\n",
        ),
    )
    .unwrap();
    let o = render(&with_uid, &comp, &[]);
    assert_success(&o);
    assert!(stdout(&o).contains("claim-uid: 6f1c3d0a-1111-4222-8333-444455556666-input"));
    assert!(!stdout(&o).contains("# warning: the claim has no metadata.uid"));
    // The seed Composition does not read the uid: no stand-in, no warning.
    let o = render(&seed, &root().join("examples/seed/composition.yaml"), &[]);
    assert!(!stdout(&o).contains("00000000-0000"));
}

// ---------------------------------------------------------------------------------------------
// Schemas: the claim against its kind's CRD, patches' field paths, composed objects against the
// schema paved serves for their kind. What the cluster would refuse fails in CI.

fn seed_claim_with(from: &str, to: &str) -> String {
    let claim = std::fs::read_to_string(root().join("examples/seed/claim.yaml")).unwrap();
    assert!(claim.contains(from), "{from}");
    claim.replace(from, to)
}

fn seed_composition_with(from: &str, to: &str) -> String {
    let comp = std::fs::read_to_string(root().join("examples/seed/composition.yaml")).unwrap();
    assert!(comp.contains(from), "{from}");
    comp.replace(from, to)
}

#[test]
fn a_claim_the_api_server_would_refuse_fails_with_each_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let seed_comp = root().join("examples/seed/composition.yaml");
    let cases = [
        (
            "storageGB: 20",
            "storageGB: 5",
            "spec.parameters.storageGB: 5 is less than the minimum",
        ),
        (
            "version: \"14\"",
            "version: 14",
            "spec.parameters.version: integer 14; expected string",
        ),
        (
            "environment: staging",
            "environment: staging\n    storageGb: 20",
            "spec.parameters.storageGb: unknown field (did you mean storageGB?)",
        ),
    ];
    for (i, (from, to, want)) in cases.iter().enumerate() {
        let claim = dir.path().join(format!("claim-{i}.yaml"));
        std::fs::write(&claim, seed_claim_with(from, to)).unwrap();
        assert_failure(
            &render(&claim, &seed_comp, &[]),
            &[
                "claim my-app-db (database.example.com/v1alpha1 PostgreSQLInstance)",
                want,
            ],
        );
    }
}

#[test]
fn a_composed_instance_without_region_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let comp = dir.path().join("no-region.yaml");
    std::fs::write(
        &comp,
        seed_composition_with("region: ap-northeast-2", "instanceClass: db.t3.micro"),
    )
    .unwrap();
    assert_failure(
        &render(&root().join("examples/seed/claim.yaml"), &comp, &[]),
        &[
            "does not render: 1 error",
            "resource rds-instance (rds.aws.upbound.io/v1beta1 Instance) would be refused by the API server: spec.forProvider.region: required field is missing",
        ],
    );
}

#[test]
fn a_patch_from_a_field_the_claim_cannot_have_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let comp = dir.path().join("typo.yaml");
    std::fs::write(
        &comp,
        seed_composition_with(
            "fromFieldPath: spec.parameters.storageGB",
            "fromFieldPath: spec.parameters.storageGb",
        ),
    )
    .unwrap();
    assert_failure(
        &render(&root().join("examples/seed/claim.yaml"), &comp, &[]),
        &[
            "spec.resources[0].patches[0]: composition postgresql-aws, resource rds-instance (index 0), patch 0 (FromCompositeFieldPath): fromFieldPath spec.parameters.storageGb: database.example.com/v1alpha1 PostgreSQLInstance has no field storageGb in spec.parameters (it has: environment, storageGB, version)",
        ],
    );
}

/// The claim's, the patches' and the composed object's errors in one run, as text and as JSON.
#[test]
fn every_schema_error_in_one_run_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let claim = dir.path().join("claim.yaml");
    std::fs::write(
        &claim,
        seed_claim_with("version: \"14\"", "version: \"14\"\n    sizeGB: 3"),
    )
    .unwrap();
    let comp = dir.path().join("comp.yaml");
    let text = seed_composition_with("region: ap-northeast-2", "instanceClass: db.t3.micro")
        .replace(
            "fromFieldPath: spec.parameters.storageGB",
            "fromFieldPath: spec.parameters.storageGb",
        );
    std::fs::write(&comp, text).unwrap();
    let o = render(&claim, &comp, &[]);
    assert_failure(
        &o,
        &[
            "does not render: 3 errors",
            "spec.parameters.sizeGB: unknown field",
            "fromFieldPath spec.parameters.storageGb",
            "spec.forProvider.region: required field is missing",
        ],
    );
    let o = render(&claim, &comp, &["--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let got: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["object"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "claim".into(),
                "spec.parameters.sizeGB".into(),
                "InvalidClaim".into()
            ),
            (
                "composition".into(),
                "spec.resources[0].patches[0]".into(),
                "InvalidFieldPath".into()
            ),
            (
                "resource rds-instance".into(),
                "spec.forProvider.region".into(),
                "InvalidComposedResource".into()
            ),
        ]
    );
}

/// A composed v1beta3 Instance is checked against the v1beta3 schema: a singleton block in the
/// v1beta1 shape (a list) fails, the object shape renders.
#[test]
fn a_composed_instance_is_checked_against_its_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let claim = root().join("examples/seed/claim.yaml");
    let write = |name: &str, block: &str| {
        let p = dir.path().join(name);
        let text = seed_composition_with(
            "apiVersion: rds.aws.upbound.io/v1beta1",
            "apiVersion: rds.aws.upbound.io/v1beta3",
        )
        .replace(
            "region: ap-northeast-2",
            &format!("region: ap-northeast-2\n            blueGreenUpdate: {block}"),
        );
        std::fs::write(&p, text).unwrap();
        p
    };
    assert_success(&render(
        &claim,
        &write("object.yaml", "{enabled: true}"),
        &[],
    ));
    assert_failure(
        &render(&claim, &write("list.yaml", "[{enabled: true}]"), &[]),
        &[
            "(rds.aws.upbound.io/v1beta3 Instance) would be refused by the API server: spec.forProvider.blueGreenUpdate: array [{\"enabled\":true}]; expected object",
        ],
    );
}
