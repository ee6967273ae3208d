//! Rendering tests: the seed golden test, rendering rules, and property tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::api::composition::CompositionSpec;

const SEED_CLAIM: &str = include_str!("../../examples/seed/claim.yaml");
const SEED_COMPOSITION: &str = include_str!("../../examples/seed/composition.yaml");

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).unwrap()
}

fn spec_of(composition: &Value) -> CompositionSpec {
    serde_json::from_value(composition["spec"].clone()).unwrap()
}

/// Render `claim` with the Composition `spec` named `composition_name`.
pub(super) fn render_named(
    composition_name: &str,
    claim: &Value,
    spec: &CompositionSpec,
    observed: &BTreeMap<String, ObservedResource>,
) -> Result<RenderOutput, ComposeError> {
    render(&RenderInput {
        claim,
        composition_name,
        composition: spec,
        observed,
    })
}

fn render_with(
    claim: &Value,
    spec: &CompositionSpec,
    observed: &BTreeMap<String, ObservedResource>,
) -> Result<RenderOutput, ComposeError> {
    render_named("test-comp", claim, spec, observed)
}

#[test]
fn seed_golden() {
    let claim = yaml(SEED_CLAIM);
    let comp = yaml(SEED_COMPOSITION);
    let spec = spec_of(&comp);
    let out = render_named("postgresql-aws", &claim, &spec, &BTreeMap::new()).unwrap();
    assert_eq!(out.resources.len(), 1);
    let r = &out.resources[0];
    assert_eq!(r.resource_name, "rds-instance");
    assert_eq!(r.index, 0);
    assert_eq!(r.readiness, Readiness::NotObserved);
    assert_eq!(
        r.desired,
        json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1",
            "kind": "Instance",
            "metadata": {
                "name": "my-app-db-rds-instance",
                "namespace": "my-team",
                "labels": {
                    "crossplane.io/claim-name": "my-app-db",
                    "crossplane.io/claim-namespace": "my-team"
                },
                "annotations": {"crossplane.io/composition-resource-name": "rds-instance"}
            },
            "spec": {
                "forProvider": {
                    "region": "ap-northeast-2",
                    "instanceClass": "db.t3.micro",
                    "engine": "postgres",
                    "allocatedStorage": 20,
                    "engineVersion": "14"
                },
                "writeConnectionSecretToRef": {"name": "my-app-db-rds-instance-connection"}
            }
        })
    );
    assert!(r.desired["spec"]["forProvider"]["allocatedStorage"].is_i64());
    assert!(r.desired["spec"]["forProvider"]["engineVersion"].is_string());
    assert!(!out.ready);
    assert!(out.claim_status.is_empty());
    assert!(out.connection_details.is_empty());
    // The desired object deserializes into paved's Instance type.
    let _: crate::api::instance::Instance = serde_json::from_value(r.desired.clone()).unwrap();
}

#[test]
fn seed_with_observed_instance_propagates_secret_and_readiness() {
    let claim = yaml(SEED_CLAIM);
    let spec = spec_of(&yaml(SEED_COMPOSITION));
    let observed = BTreeMap::from([(
        "rds-instance".to_string(),
        ObservedResource {
            object: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            connection_secret: BTreeMap::from([
                ("username".to_string(), b"postgres".to_vec()),
                ("password".to_string(), b"pw".to_vec()),
            ]),
        },
    )]);
    let out = render_with(&claim, &spec, &observed).unwrap();
    assert!(out.ready);
    assert_eq!(out.resources[0].readiness, Readiness::Ready);
    assert_eq!(out.connection_details.len(), 2);
    assert_eq!(out.connection_details["password"], b"pw".to_vec());
}

fn rich_spec() -> CompositionSpec {
    serde_json::from_value(json!({
        "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
        "patchSets": [{"name": "common", "patches": [
            {"fromFieldPath": "metadata.labels", "toFieldPath": "metadata.labels"},
            {"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.tags.environment"}
        ]}],
        "resources": [
            {"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                "metadata": {"name": "ignored", "ownerReferences": [{"name": "x"}], "labels": {"argocd.argoproj.io/instance": "x"}},
                "spec": {"forProvider": {"region": "eu-west-1"}, "writeConnectionSecretToRef": {"name": "custom", "namespace": "crossplane-system"}}},
             "patches": [
                {"type": "PatchSet", "patchSetName": "common"},
                {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage",
                 "transforms": [{"type": "math", "math": {"type": "ClampMin", "clampMin": 50}}]},
                {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": "status.address"},
                {"type": "CombineToComposite", "combine": {"variables": [{"fromFieldPath": "status.atProvider.address"}, {"fromFieldPath": "status.atProvider.port"}], "strategy": "string", "string": {"fmt": "%s:%d"}}, "toFieldPath": "status.endpoint"}
             ],
             "connectionDetails": [
                {"fromConnectionSecretKey": "password"},
                {"name": "host", "fromFieldPath": "status.atProvider.address"},
                {"name": "engine", "value": "postgres"}
             ],
             "readinessChecks": [{"type": "MatchString", "fieldPath": "status.atProvider.state", "matchString": "available"}]
            },
            {"name": "params", "base": {"apiVersion": "v1", "kind": "ConfigMap", "data": {}},
             "patches": [{"type": "PatchSet", "patchSetName": "common"},
                         {"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.name"}, {"fromFieldPath": "spec.parameters.version"}], "strategy": "string", "string": {"fmt": "%s-pg%s"}}, "toFieldPath": "data[db.name]"}]}
        ]
    }))
    .unwrap()
}

fn rich_claim() -> Value {
    json!({
        "apiVersion": "database.example.com/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {"name": "orders", "namespace": "shop", "labels": {
            "team": "payments",
            "app.kubernetes.io/instance": "shop-apps",
            "argocd.argoproj.io/secret-type": "x"
        }},
        "spec": {"parameters": {"storageGB": 20, "version": "16", "environment": "production"}},
        "status": {"conditions": [{"type": "Ready", "status": "False"}], "previous": "kept"}
    })
}

#[test]
fn rendering_rules() {
    let spec = rich_spec();
    let out = render_with(&rich_claim(), &spec, &BTreeMap::new()).unwrap();
    let db = &out.resources[0].desired;
    // Names, namespace, labels, annotation; base metadata.name and ownerReferences replaced.
    assert_eq!(db["metadata"]["name"], json!("orders-db"));
    assert_eq!(db["metadata"]["namespace"], json!("shop"));
    assert!(db["metadata"].get("ownerReferences").is_none());
    assert_eq!(
        db["metadata"]["labels"],
        json!({"team": "payments", "crossplane.io/claim-name": "orders", "crossplane.io/claim-namespace": "shop"})
    );
    assert_eq!(
        db["metadata"]["annotations"],
        json!({"crossplane.io/composition-resource-name": "db"})
    );
    assert_eq!(db["spec"]["forProvider"]["allocatedStorage"], json!(50));
    assert_eq!(
        db["spec"]["forProvider"]["tags"]["environment"],
        json!("production")
    );
    // The base's Secret name is kept; the foreign namespace is dropped.
    assert_eq!(
        db["spec"]["writeConnectionSecretToRef"],
        json!({"name": "custom"})
    );
    // Core objects get no writeConnectionSecretToRef.
    let cm = &out.resources[1].desired;
    assert!(cm["spec"].get("writeConnectionSecretToRef").is_none());
    assert_eq!(cm["data"]["db.name"], json!("orders-pg16"));
    assert_eq!(cm["metadata"]["name"], json!("orders-params"));
    // Unobserved: no patches to the claim, status kept as is; FromValue still published.
    assert_eq!(
        out.claim_status,
        rich_claim()["status"].as_object().unwrap().clone()
    );
    assert_eq!(
        out.connection_details,
        BTreeMap::from([("engine".to_string(), b"postgres".to_vec())])
    );
    assert!(!out.ready);
}

#[test]
fn observed_resources_patch_the_claim_status() {
    let spec = rich_spec();
    let observed = BTreeMap::from([
        (
            "db".to_string(),
            ObservedResource {
                object: json!({"status": {"atProvider": {"address": "orders.abc.rds.amazonaws.com", "port": 5432, "state": "available"}}}),
                connection_secret: BTreeMap::from([
                    ("password".to_string(), b"pw".to_vec()),
                    ("username".to_string(), b"u".to_vec()),
                ]),
            },
        ),
        (
            "params".to_string(),
            ObservedResource {
                object: json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
                connection_secret: BTreeMap::new(),
            },
        ),
    ]);
    let out = render_with(&rich_claim(), &spec, &observed).unwrap();
    assert_eq!(
        out.claim_status["address"],
        json!("orders.abc.rds.amazonaws.com")
    );
    assert_eq!(
        out.claim_status["endpoint"],
        json!("orders.abc.rds.amazonaws.com:5432")
    );
    assert_eq!(out.claim_status["previous"], json!("kept"));
    assert_eq!(
        out.claim_status["conditions"],
        rich_claim()["status"]["conditions"]
    );
    assert_eq!(out.resources[0].readiness, Readiness::Ready);
    // A ConfigMap has no Ready condition: not ready by the default rule.
    assert!(matches!(
        out.resources[1].readiness,
        Readiness::NotReady { .. }
    ));
    assert!(!out.ready);
    let keys: Vec<&str> = out.connection_details.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["engine", "host", "password"]);
}

#[test]
fn errors_name_composition_resource_patch_path_and_value() {
    let claim = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "c", "namespace": "n"},
                       "spec": {"parameters": {"version": "abc"}}});
    let spec: CompositionSpec = serde_json::from_value(json!({
        "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
        "resources": [{"name": "rds-instance", "base": {"apiVersion": "x/v1", "kind": "X"}, "patches": [
            {"fromFieldPath": "metadata.name", "toFieldPath": "spec.name"},
            {"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.v", "transforms": [{"type": "convert", "convert": {"toType": "int64"}}]}
        ]}]
    }))
    .unwrap();
    let e = render_named("postgresql-aws", &claim, &spec, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "composition postgresql-aws, resource rds-instance (index 0), patch 1 (FromCompositeFieldPath): fromFieldPath spec.parameters.version: transform 0 (convert): cannot convert string \"abc\" to int64"
    );
    assert_eq!(e.reason(), "TransformError");
}

#[test]
fn composition_level_errors() {
    let claim = rich_claim();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"mode": "Pipeline", "pipeline": [{"step": "a"}]}),
            "UnsupportedFunction",
            "mode Pipeline, step a (index 0): functionRef.name is required",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"kind": "X"}}]}),
            "InvalidComposition",
            "base.apiVersion",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}}, {"base": {"apiVersion": "v", "kind": "X"}}]}),
            "InvalidComposition",
            "every resource",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}}, {"name": "a", "base": {"apiVersion": "v", "kind": "X"}}]}),
            "InvalidComposition",
            "duplicate resource name",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}, "patches": [{"fromFieldPath": "a..b"}]}]}),
            "InvalidFieldPath",
            "at position 2",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}, "patches": [{"type": "ToCompositeFieldPath", "fromFieldPath": "status.a", "toFieldPath": "spec.a"}]}]}),
            "InvalidPatchTarget",
            "status",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}, "patches": [{"fromFieldPath": "metadata.name", "toFieldPath": "metadata.name"}]}]}),
            "InvalidPatchTarget",
            "metadata.name",
        ),
        (
            json!({"resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}, "patches": [{"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "metadata.labels[size]"}]}]}),
            "PatchError",
            "must be strings",
        ),
    ];
    for (extra, reason, needle) in cases {
        let mut v = json!({"compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        let spec: CompositionSpec = serde_json::from_value(v).unwrap();
        let e = render_with(&claim, &spec, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
    // Unobserved resources skip patches to the claim, even Required ones.
    let spec: CompositionSpec = serde_json::from_value(json!({
        "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
        "resources": [{"name": "a", "base": {"apiVersion": "v", "kind": "X"}, "patches": [
            {"type": "ToCompositeFieldPath", "fromFieldPath": "status.x", "toFieldPath": "status.x", "policy": {"fromFieldPath": "Required"}}]}]
    }))
    .unwrap();
    render_with(&claim, &spec, &BTreeMap::new()).unwrap();
    let observed = BTreeMap::from([("a".to_string(), ObservedResource::default())]);
    let e = render_with(&claim, &spec, &observed).unwrap_err();
    assert_eq!(e.reason(), "RequiredFieldMissing");
    // Claims without name or namespace.
    for bad in [
        json!("x"),
        json!({"metadata": {"name": "a"}}),
        json!({"metadata": {"namespace": "a"}}),
    ] {
        assert_eq!(
            render_with(&bad, &spec, &BTreeMap::new())
                .unwrap_err()
                .reason(),
            "InvalidClaim"
        );
    }
}

#[test]
fn unnamed_resources_are_named_by_index() {
    let spec: CompositionSpec = serde_json::from_value(json!({
        "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
        "resources": [{"base": {"apiVersion": "v", "kind": "X"}}, {"base": {"apiVersion": "v", "kind": "X"}}]
    }))
    .unwrap();
    let out = render_with(&rich_claim(), &spec, &BTreeMap::new()).unwrap();
    assert_eq!(out.resources[1].resource_name, "resource-1");
    assert_eq!(
        out.resources[1].desired["metadata"]["name"],
        json!("orders-resource-1")
    );
}

#[test]
fn composed_names() {
    assert_eq!(
        composed_name("my-app-db", "rds-instance"),
        "my-app-db-rds-instance"
    );
    let long_claim = "a".repeat(60);
    let n1 = composed_name(&long_claim, "rds-instance");
    let n2 = composed_name(&long_claim, "rds-instance-2");
    assert_ne!(n1, n2);
    assert_eq!(n1, composed_name(&long_claim, "rds-instance"));
    for n in [&n1, &n2] {
        assert!(is_dns_label(n), "{n}");
    }
    // Invalid characters are sanitized, with a hash keeping names distinct.
    let a = composed_name("db", "My_Resource");
    let b = composed_name("db", "my-resource");
    assert!(is_dns_label(&a), "{a}");
    assert_ne!(a, b);
    assert!(is_dns_label(&composed_name("claim.with.dots", "x")));
    assert!(is_dns_label(&composed_name("", "")));
    assert!(is_dns_label(&composed_name("---", "___")));
    assert_eq!(
        composed_connection_secret_name("my-app-db-rds-instance"),
        "my-app-db-rds-instance-connection"
    );
}

proptest! {
    #[test]
    fn composed_names_are_always_dns_labels(claim in "\\PC{0,80}", res in "\\PC{0,80}", res2 in "\\PC{0,80}") {
        let n = composed_name(&claim, &res);
        prop_assert!(is_dns_label(&n), "{}", n);
        prop_assert!(composed_connection_secret_name(&n).len() <= 253);
        if res != res2 {
            prop_assert_ne!(n, composed_name(&claim, &res2));
        }
    }
}

/// Arbitrary JSON values, biased towards shapes a claim has.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9%.\\[\\]-]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("spec.parameters.storageGB".to_string()),
        Just("spec.parameters.version".to_string()),
        Just("metadata.name".to_string()),
        Just("status.x".to_string()),
        Just("status.a[1].b".to_string()),
        Just("metadata.labels[a.b]".to_string()),
        "[a-z.\\[\\]0-9*']{0,12}",
    ]
}

fn arb_transform() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "map", "map": {"a": 1, "20": "x"}})),
        Just(
            json!({"type": "match", "match": {"patterns": [{"type": "regexp", "regexp": "^[0-9]+$", "result": 5}], "fallbackTo": "Input"}})
        ),
        Just(json!({"type": "math", "math": {"multiply": 3}})),
        Just(json!({"type": "math", "math": {"type": "ClampMax", "clampMax": 3}})),
        Just(json!({"type": "string", "string": {"fmt": "%s-%d-%v-%q-%x-%.2f-%%"}})),
        Just(json!({"type": "string", "string": {"type": "Convert", "convert": "ToSha256"}})),
        Just(json!({"type": "string", "string": {"type": "Convert", "convert": "FromBase64"}})),
        Just(
            json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "([a-z]+)", "group": 1}}})
        ),
        Just(json!({"type": "string", "string": {"type": "Join", "join": {"separator": ","}}})),
        Just(json!({"type": "convert", "convert": {"toType": "int64"}})),
        Just(json!({"type": "convert", "convert": {"toType": "float64", "format": "quantity"}})),
        Just(json!({"type": "convert", "convert": {"toType": "object", "format": "json"}})),
        Just(json!({"type": "convert", "convert": {"toType": "string"}})),
        Just(json!({"type": "math"})),
    ]
}

fn arb_patch() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        Just(Value::Null),
        Just(json!("FromCompositeFieldPath")),
        Just(json!("ToCompositeFieldPath")),
        Just(json!("CombineFromComposite")),
        Just(json!("CombineToComposite")),
        Just(json!("PatchSet")),
        Just(json!("FromEnvironmentFieldPath")),
    ];
    let policy = prop_oneof![
        Just(Value::Null),
        Just(json!({"fromFieldPath": "Required"})),
        Just(json!({"toFieldPath": "MergeObjectsAppendArrays"})),
        Just(json!({"toFieldPath": "ForceMergeObjects"})),
        Just(json!({"mergeOptions": {"appendSlice": true}})),
    ];
    (ty, arb_path(), prop::option::of(arb_path()), prop::collection::vec(arb_transform(), 0..3), policy, any::<bool>())
        .prop_map(|(ty, from, to, transforms, policy, combine)| {
            let mut p = json!({"fromFieldPath": from, "transforms": transforms});
            if !ty.is_null() {
                p["type"] = ty;
            }
            if let Some(to) = to {
                p["toFieldPath"] = json!(to);
            }
            if !policy.is_null() {
                p["policy"] = policy;
            }
            if combine {
                p["combine"] = json!({"variables": [{"fromFieldPath": "metadata.name"}, {"fromFieldPath": from}], "strategy": "string", "string": {"fmt": "%s-%v"}});
            }
            p["patchSetName"] = json!("common");
            p
        })
}

fn arb_spec() -> impl Strategy<Value = Value> {
    let resource = (
        prop::option::of("[a-z]{1,4}"),
        prop_oneof![
            Just(json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance", "spec": {"forProvider": {"region": "x"}}})),
            Just(json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            arb_json(),
        ],
        prop::collection::vec(arb_patch(), 0..5),
        prop_oneof![
            Just(json!([])),
            Just(json!([{"fromConnectionSecretKey": "password"}, {"name": "h", "fromFieldPath": "status.x"}])),
            Just(json!([{"name": "h"}])),
        ],
        prop_oneof![
            Just(json!([])),
            Just(json!([{"type": "MatchString", "fieldPath": "status.x", "matchString": "a"}])),
            Just(json!([{"type": "MatchInteger", "fieldPath": "status.x", "matchInteger": 1}, {"type": "MatchCondition"}])),
            Just(json!([{"type": "NonEmpty"}])),
        ],
    )
        .prop_map(|(name, base, patches, details, checks)| {
            let mut r = json!({"base": base, "patches": patches, "connectionDetails": details, "readinessChecks": checks});
            if let Some(n) = name {
                r["name"] = json!(n);
            }
            r
        });
    (prop::collection::vec(resource, 0..4), prop::collection::vec(arb_patch(), 0..3)).prop_map(|(resources, set)| {
        json!({
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "patchSets": [{"name": "common", "patches": set}],
            "resources": resources
        })
    })
}

fn arb_claim() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => arb_json(),
        4 => (arb_json(), arb_json(), "[a-z]{0,5}").prop_map(|(params, status, name)| json!({
            "apiVersion": "database.example.com/v1alpha1",
            "kind": "PostgreSQLInstance",
            "metadata": {"name": name, "namespace": "ns", "labels": {"a.b": "c"}},
            "spec": {"parameters": params},
            "status": status
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Rendering arbitrary claims against arbitrary (well-formed and malformed) Compositions
    /// never panics, with and without observed objects.
    #[test]
    fn render_never_panics(claim in arb_claim(), spec in arb_spec(), observed_obj in arb_json()) {
        // Malformed Compositions may not even deserialize; that is an error, not a panic.
        let Ok(spec) = serde_json::from_value::<CompositionSpec>(spec) else { return Ok(()); };
        let _ = validate("fuzz", &spec);
        let names = resource_names("fuzz", &spec).unwrap_or_default();
        let observed: BTreeMap<String, ObservedResource> = names
            .iter()
            .map(|n| (n.clone(), ObservedResource {
                object: observed_obj.clone(),
                connection_secret: BTreeMap::from([("password".to_string(), b"x".to_vec())]),
            }))
            .collect();
        for obs in [&BTreeMap::new(), &observed] {
            if let Ok(out) = render_named("fuzz", &claim, &spec, obs) {
                for r in &out.resources {
                    let name = r.desired["metadata"]["name"].as_str().unwrap_or_default();
                    prop_assert!(is_dns_label(name));
                    prop_assert!(r.desired["metadata"].get("ownerReferences").is_none());
                }
            }
        }
    }

    /// Arbitrary transforms on arbitrary values never panic.
    #[test]
    fn transforms_never_panic(t in arb_transform(), v in arb_json()) {
        if let Ok(tr) = serde_json::from_value::<crate::api::composition::Transform>(t)
            && let Ok(p) = transforms::prepare(&tr)
        {
            let _ = p.apply(v);
        }
    }

    /// Go-style formatting never panics on arbitrary formats and arguments.
    #[test]
    fn sprintf_never_panics(f in "[%a-z0-9.\\[\\]*#+ -]{0,16}", args in prop::collection::vec(arb_json(), 0..3)) {
        let refs: Vec<&Value> = args.iter().collect();
        let _ = gofmt::sprintf(&f, &refs);
    }
}
