//! A long proptest run (cargo-fuzz needs nightly) over the composition engine: field path
//! parsing, printing, get/set/remove/wildcards, and rendering random Compositions for random
//! claims. `cargo nextest run --lib` runs it for 20 s; `make chaos` for `PAVED_FUZZ_SECS`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::fieldpath::{self, Segment};
use super::{ObservedResource, RenderInput};
use crate::api::composition::CompositionSpec;

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z][a-zA-Z0-9]{0,8}",
        3 => prop::sample::select(vec![
            "spec", "parameters", "storageGB", "version", "environment", "forProvider", "status",
            "atProvider", "metadata", "labels", "annotations", "name", "namespace", "kind",
            "apiVersion", "tags", "conditions", "*", "example.org/team",
        ]).prop_map(str::to_string),
        2 => "[a-z0-9./\\[\\]*'\"-]{1,6}",
        1 => "\\PC{0,5}",
    ]
    .boxed()
}

fn segment() -> BoxedStrategy<Segment> {
    prop_oneof![
        6 => field_name().prop_map(Segment::Field),
        3 => (0usize..12).prop_map(Segment::Index),
        1 => (9_990usize..10_020).prop_map(Segment::Index),
    ]
    .boxed()
}

fn segments() -> BoxedStrategy<Vec<Segment>> {
    vec(segment(), 0..8).boxed()
}

/// Field path text: well-formed, nearly well-formed, and arbitrary.
fn path_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => segments().prop_map(|s| fieldpath::to_string(&s)),
        3 => "(spec|status|metadata)(\\.[a-zA-Z*]{1,6}|\\[[0-9]{1,6}\\]|\\[[a-z./'-]{0,6}\\]){0,6}",
        2 => "[a-z.\\[\\]0-9'\"*-]{0,24}",
        1 => "\\PC{0,24}",
        1 => prop::sample::select(vec![
            "spec.parameters.storageGB", "spec.parameters.version", "spec.parameters.environment",
            "metadata.labels[example.org/team]", "status.atProvider.address", "spec.forProvider.allocatedStorage",
            "spec.forProvider.engineVersion", "spec.forProvider.tags[team]", "spec.forProvider.vpcSecurityGroupIds[0]",
            "status.address", "metadata.annotations[a.b/c]", "spec.parameters[storageGB]", "metadata.name",
        ]).prop_map(str::to_string),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "14",
            "20",
            "staging",
            "1Gi",
            "true",
            "{\"a\":1}",
            "%d",
            "db.t3.micro"
        ])
        .prop_map(Value::from),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map(field_name(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

fn transform() -> BoxedStrategy<Value> {
    let s = || "\\PC{0,8}";
    prop_oneof![
        btree_map(s(), json_leaf(), 0..4).prop_map(|m| json!({"type": "map", "map": m})),
        (prop::sample::select(vec!["Multiply", "ClampMin", "ClampMax"]), any::<i64>())
            .prop_map(|(t, n)| json!({"type": "math", "math": {"type": t, "multiply": n, "clampMin": n, "clampMax": n}})),
        (any::<i64>()).prop_map(|n| json!({"type": "math", "math": {"multiply": n}})),
        "[%a-z0-9.+#!*-]{0,10}".prop_map(|f| json!({"type": "string", "string": {"type": "Format", "fmt": f}})),
        prop::sample::select(vec!["ToUpper", "ToLower", "ToBase64", "FromBase64", "ToJson", "ToSha1", "ToSha256", "ToSha512", "ToAdler32"])
            .prop_map(|c| json!({"type": "string", "string": {"type": "Convert", "convert": c}})),
        (prop::sample::select(vec!["TrimPrefix", "TrimSuffix"]), s()).prop_map(|(t, x)| json!({"type": "string", "string": {"type": t, "trim": x}})),
        ("[a-z().*+?\\[\\]^$|0-9\\\\]{0,10}", prop::option::of(-2i64..4))
            .prop_map(|(r, g)| json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": r, "group": g}}})),
        s().prop_map(|sep| json!({"type": "string", "string": {"type": "Join", "join": {"separator": sep}}})),
        (s(), s()).prop_map(|(a, b)| json!({"type": "string", "string": {"type": "Replace", "replace": {"search": a, "replace": b}}})),
        (prop::sample::select(vec!["string", "int", "int64", "bool", "float64", "object", "array"]), prop::sample::select(vec!["", "none", "quantity", "json"]))
            .prop_map(|(t, f)| if f.is_empty() { json!({"type": "convert", "convert": {"toType": t}}) } else { json!({"type": "convert", "convert": {"toType": t, "format": f}}) }),
        (vec((prop::sample::select(vec!["literal", "regexp"]), "[a-z0-9().*+^$|\\[\\]]{0,8}", json_leaf()), 0..3), prop::option::of(json_leaf()), prop::sample::select(vec!["Value", "Input"]))
            .prop_map(|(ps, fb, to)| {
                let patterns: Vec<Value> = ps.into_iter().map(|(t, p, r)| if t == "literal" { json!({"type": t, "literal": p, "result": r}) } else { json!({"type": t, "regexp": p, "result": r}) }).collect();
                json!({"type": "match", "match": {"patterns": patterns, "fallbackValue": fb, "fallbackTo": to}})
            }),
    ]
    .boxed()
}

fn patch() -> BoxedStrategy<Value> {
    let policy = prop::option::of((
        prop::sample::select(vec!["Optional", "Required"]),
        prop::sample::select(vec![
            "Replace",
            "MergeObjects",
            "MergeObjectsAppendArrays",
            "ForceMergeObjects",
            "ForceMergeObjectsAppendArrays",
        ]),
    ));
    prop_oneof![
        5 => (path_text(), prop::option::of(path_text()), vec(transform(), 0..3), policy.clone()).prop_map(|(f, t, tr, pol)| {
            let mut p = json!({"type": "FromCompositeFieldPath", "fromFieldPath": f, "transforms": tr});
            if let Some(t) = t { p["toFieldPath"] = json!(t); }
            if let Some((a, b)) = pol { p["policy"] = json!({"fromFieldPath": a, "toFieldPath": b}); }
            p
        }),
        2 => (path_text(), path_text(), vec(transform(), 0..2)).prop_map(|(f, t, tr)| json!({"type": "ToCompositeFieldPath", "fromFieldPath": f, "toFieldPath": t, "transforms": tr})),
        2 => (vec(path_text(), 0..3), "[%a-z0-9.+#!*: -]{0,12}", path_text(), prop::sample::select(vec!["CombineFromComposite", "CombineToComposite"]))
            .prop_map(|(vars, fmt, to, t)| json!({"type": t, "combine": {"variables": vars.into_iter().map(|v| json!({"fromFieldPath": v})).collect::<Vec<_>>(), "strategy": "string", "string": {"fmt": fmt}}, "toFieldPath": to})),
        1 => prop::sample::select(vec!["common", "missing"]).prop_map(|n| json!({"type": "PatchSet", "patchSetName": n})),
    ]
    .boxed()
}

fn readiness_check() -> BoxedStrategy<Value> {
    prop_oneof![
        (path_text(), "\\PC{0,6}")
            .prop_map(|(p, s)| json!({"type": "MatchString", "fieldPath": p, "matchString": s})),
        (path_text(), any::<i64>())
            .prop_map(|(p, n)| json!({"type": "MatchInteger", "fieldPath": p, "matchInteger": n})),
        path_text().prop_map(|p| json!({"type": "NonEmpty", "fieldPath": p})),
        path_text().prop_map(|p| json!({"type": "MatchTrue", "fieldPath": p})),
        Just(json!({"type": "None"})),
        Just(
            json!({"type": "MatchCondition", "matchCondition": {"type": "Ready", "status": "True"}})
        ),
    ]
    .boxed()
}

fn connection_detail() -> BoxedStrategy<Value> {
    prop_oneof![
        ("[a-z]{1,6}", "[a-z]{1,8}").prop_map(|(n, k)| json!({"name": n, "type": "FromConnectionSecretKey", "fromConnectionSecretKey": k})),
        ("[a-z]{1,6}", path_text()).prop_map(|(n, p)| json!({"name": n, "type": "FromFieldPath", "fromFieldPath": p})),
        ("[a-z]{1,6}", "\\PC{0,8}").prop_map(|(n, v)| json!({"name": n, "type": "FromValue", "value": v})),
    ]
    .boxed()
}

/// A Composition in the seed's shape, with random patches, checks and details.
fn composition() -> BoxedStrategy<Value> {
    let resource = (
        prop::option::of("[a-z][a-z0-9-]{0,10}"),
        json_value(),
        vec(patch(), 0..5),
        vec(readiness_check(), 0..2),
        vec(connection_detail(), 0..2),
    )
        .prop_map(|(name, extra, patches, checks, details)| {
            let mut r = json!({
                "base": {
                    "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "spec": {"forProvider": {"region": "eu-north-1", "instanceClass": "db.t3.micro", "engine": "postgres", "extra": extra}}
                },
                "patches": patches, "readinessChecks": checks, "connectionDetails": details
            });
            if let Some(n) = name { r["name"] = json!(n); }
            r
        });
    (vec(resource, 1..3), vec(patch(), 0..3)).prop_map(|(resources, set)| json!({
        "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
        "patchSets": [{"name": "common", "patches": set}],
        "resources": resources
    }))
    .boxed()
}

fn claim() -> BoxedStrategy<Value> {
    (json_value(), prop::option::of(json_value()), btree_map("[a-z./]{1,10}", "\\PC{0,6}", 0..3))
        .prop_map(|(extra, status, labels)| {
            let mut c = json!({
                "apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
                "metadata": {"name": "fuzz-db", "namespace": "fuzz", "uid": "00000000-0000-0000-0000-000000000001", "labels": labels},
                "spec": {"parameters": {"storageGB": 20, "version": "14", "environment": "staging", "extra": extra}}
            });
            if let Some(s) = status { c["status"] = s; }
            c
        })
        .boxed()
}

fn observed() -> BoxedStrategy<BTreeMap<String, ObservedResource>> {
    prop::option::of((json_value(), btree_map("[a-z]{1,8}", vec(any::<u8>(), 0..8), 0..3)))
        .prop_map(|o| {
            let mut m = BTreeMap::new();
            if let Some((status, secret)) = o {
                let object = json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance", "metadata": {"name": "fuzz-db-x"}, "status": status});
                for key in ["rds-instance", "resource-0"] {
                    m.insert(key.to_string(), ObservedResource { object: object.clone(), connection_secret: secret.clone() });
                }
            }
            m
        })
        .boxed()
}

/// Properties of field paths. Returns Err(message) on a violation.
fn check_paths(
    text: &str,
    segs: &[Segment],
    root: &Value,
    value: &Value,
    off: &[&str],
) -> Result<(), String> {
    let on = |p: &str| !off.contains(&p);
    // parsing never panics; what parses prints back to the same segments
    if let Ok(parsed) = fieldpath::parse(text)
        && on("parse-print-parse")
    {
        let printed = fieldpath::to_string(&parsed);
        match fieldpath::parse(&printed) {
            Ok(again) if again == parsed => {}
            other => {
                return Err(format!(
                    "parse-print-parse: {text:?} parsed to {parsed:?}, printed as {printed:?}, which parses to {other:?}"
                ));
            }
        }
    }
    // printed segments parse back to themselves (when printable at all)
    let printed = fieldpath::to_string(segs);
    if on("print-parse")
        && let Ok(again) = fieldpath::parse(&printed)
        && again != segs
        && !segs
            .iter()
            .any(|s| matches!(s, Segment::Field(f) if f.is_empty()))
    {
        return Err(format!(
            "print-parse: {segs:?} printed as {printed:?} parses to {again:?}"
        ));
    }
    // set then get returns what was set
    if !fieldpath::has_wildcard(segs) && on("set-get") {
        let mut r = root.clone();
        if fieldpath::set(&mut r, segs, value.clone()).is_ok() {
            match fieldpath::get(&r, segs) {
                Ok(got) if got == value => {}
                other => {
                    return Err(format!(
                        "set-get: set {segs:?} = {value} on {root} then get gave {other:?}"
                    ));
                }
            }
        }
    }
    let _ = fieldpath::expand_wildcards(root, segs);
    let mut r = root.clone();
    let _ = fieldpath::remove(&mut r, segs);
    Ok(())
}

/// Properties of rendering. Returns Err(message) on a violation.
fn check_render(
    comp: &Value,
    claim: &Value,
    observed: &BTreeMap<String, ObservedResource>,
) -> Result<bool, String> {
    let Ok(spec) = serde_json::from_value::<CompositionSpec>(comp.clone()) else {
        return Ok(false); // not a Composition the API server would store
    };
    let _ = super::validate("fuzz", &spec);
    let input = RenderInput {
        claim,
        composition_name: "fuzz",
        composition: &spec,
        observed,
    };
    let first = super::render(&input);
    let second = super::render(&input);
    if first != second {
        return Err("render is not deterministic".into());
    }
    match first {
        Ok(out) => {
            for r in &out.resources {
                let d = &r.desired;
                if d["metadata"]["namespace"] != "fuzz" {
                    return Err(format!(
                        "composed object outside the claim's namespace: {}",
                        d["metadata"]
                    ));
                }
                let name = d["metadata"]["name"].as_str().unwrap_or("");
                if name.is_empty() || name.len() > 253 {
                    return Err(format!("composed object name {name:?}"));
                }
                if d["apiVersion"] != "rds.aws.upbound.io/v1beta1" || d["kind"] != "Instance" {
                    return Err(format!(
                        "a patch changed apiVersion/kind: {} {}",
                        d["apiVersion"], d["kind"]
                    ));
                }
                if d["metadata"].get("ownerReferences").is_some() {
                    return Err("composed object carries ownerReferences".into());
                }
            }
            for key in [
                "conditions",
                "compositionRef",
                "resourceRefs",
                "connectionDetails",
            ] {
                if out.claim_status.get(key) != claim["status"].get(key) {
                    return Err(format!(
                        "a patch wrote status.{key}, which the controller owns"
                    ));
                }
            }
            Ok(true)
        }
        Err(e) => {
            if e.to_string().is_empty() || e.reason().is_empty() {
                return Err("an error without a message".into());
            }
            Ok(true)
        }
    }
}

/// A long proptest run (cargo-fuzz needs nightly) over `crate::compose`: field path parsing,
/// printing, get/set/remove/wildcards, and rendering random Compositions for random claims.
/// Invariant: no panic; printed paths parse back; set-then-get returns the value; rendering is
/// deterministic, keeps composed objects in the claim's namespace with their apiVersion/kind and
/// never writes the controller-owned status fields; every error has a message and a reason.
/// Runs for `PAVED_FUZZ_SECS` seconds (default 20; `make chaos` runs 600).
#[test]
fn fuzz_compose_field_paths_and_rendering() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::cell::Cell;
    let secs: u64 = std::env::var("PAVED_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (path_cases, render_cases, rendered) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let mut rounds = 0u64;
    // A property that failed once is switched off, so that the rest keep being fuzzed for the
    // whole run instead of rediscovering the same finding.
    let mut findings: Vec<String> = Vec::new();
    let mut off: Vec<&'static str> = Vec::new();
    let mut render_off = false;
    while Instant::now() < deadline {
        rounds += 1;
        let config = Config {
            cases: 512,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&rounds.to_le_bytes());
        seed[8..16].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
        seed[16..24].copy_from_slice(
            &(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64)
                .to_le_bytes(),
        );
        let rng = proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed,
        );
        let mut runner = TestRunner::new_with_rng(config.clone(), rng);
        let strategy = (path_text(), segments(), json_value(), json_leaf());
        let off_now = off.clone();
        let res = runner.run(&strategy, |(text, segs, root, value)| {
            path_cases.set(path_cases.get() + 1);
            check_paths(&text, &segs, &root, &value, &off_now).map_err(TestCaseError::fail)
        });
        if let Err(e) = res {
            let text = e.to_string();
            for p in ["parse-print-parse", "print-parse", "set-get"] {
                if text.contains(&format!("{p}:")) && !off.contains(&p) {
                    off.push(p);
                }
            }
            if !off.iter().any(|p| text.contains(&format!("{p}:"))) {
                off.push("parse-print-parse"); // a panic: stop the path properties' round trip
            }
            findings.push(format!("field paths: {text}"));
        }
        if !render_off {
            let mut runner = TestRunner::new(Config {
                cases: 128,
                ..config
            });
            let res = runner.run(
                &(composition(), claim(), observed()),
                |(comp, claim, observed)| {
                    render_cases.set(render_cases.get() + 1);
                    match check_render(&comp, &claim, &observed) {
                        Ok(r) => {
                            rendered.set(rendered.get() + u64::from(r));
                            Ok(())
                        }
                        Err(m) => Err(TestCaseError::fail(m)),
                    }
                },
            );
            if let Err(e) = res {
                findings.push(format!("rendering: {e}"));
                render_off = true;
            }
        }
    }
    println!(
        "[fuzz] {secs} s, {rounds} rounds: {} field-path cases, {} render cases ({} valid Compositions rendered or refused), {} findings",
        path_cases.get(),
        render_cases.get(),
        rendered.get(),
        findings.len()
    );
    for f in &findings {
        println!("[fuzz] finding: {f}");
    }
    assert!(
        findings.is_empty(),
        "invariant: no property of paved::compose is violated:\n{}",
        findings.join("\n\n")
    );
}
