//! Rendering throughput: the seed Composition, and a 10-resource Composition with 50 patches
//! and transforms of every kind.
//!
//! `cargo bench --bench render` (add `-- --quick` for a fast estimate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paved::api::composition::CompositionSpec;
use paved::compose::{ObservedResource, RenderInput, render};
use serde_json::{Value, json};

fn seed() -> (Value, CompositionSpec) {
    let claim: Value =
        serde_yaml_ng::from_str(include_str!("../examples/seed/claim.yaml")).unwrap();
    let comp: Value =
        serde_yaml_ng::from_str(include_str!("../examples/seed/composition.yaml")).unwrap();
    (claim, serde_json::from_value(comp["spec"].clone()).unwrap())
}

/// Ten resources, five patches each (50: three of their own, two from a patch set), with
/// eight transforms each (map, math, string, convert), connection details and readiness checks.
fn large() -> (Value, CompositionSpec, BTreeMap<String, ObservedResource>) {
    let claim = json!({
        "apiVersion": "database.example.com/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {"name": "orders-db", "namespace": "shop", "uid": "0b9e6a7e-7d0f-4a53-9d35-2f0d5c1e1a11",
                     "labels": {"team": "payments", "app.kubernetes.io/instance": "shop"}},
        "spec": {"parameters": {"storageGB": 100, "version": "16", "environment": "production",
                                "size": "1Gi", "tags": {"cost-center": "42"}}}
    });
    let resources: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "name": format!("db-{i}"),
                "base": {
                    "apiVersion": "rds.aws.upbound.io/v1beta1",
                    "kind": "Instance",
                    "spec": {"forProvider": {"region": "ap-northeast-2", "engine": "postgres", "tags": {"managed-by": "paved"}}}
                },
                "patches": [
                    {"type": "PatchSet", "patchSetName": "common"},
                    {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage",
                     "transforms": [{"type": "math", "math": {"multiply": 2}}, {"type": "math", "math": {"type": "ClampMax", "clampMax": 1000}}]},
                    {"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.instanceClass",
                     "transforms": [{"type": "map", "map": {"dev": "db.t3.micro", "staging": "db.t3.small", "production": "db.r6g.large"}}]},
                    {"type": "CombineFromComposite",
                     "combine": {"variables": [{"fromFieldPath": "metadata.namespace"}, {"fromFieldPath": "metadata.name"}], "strategy": "string", "string": {"fmt": "%s/%s"}},
                     "toFieldPath": "spec.forProvider.finalSnapshotIdentifier",
                     "transforms": [{"type": "string", "string": {"type": "Convert", "convert": "ToSha256"}},
                                    {"type": "string", "string": {"type": "Regexp", "regexp": {"match": "^[0-9a-f]{12}"}}},
                                    {"type": "string", "string": {"fmt": "final-%s"}}]}
                ],
                "connectionDetails": [
                    {"fromConnectionSecretKey": "password"},
                    {"name": format!("host-{i}"), "fromFieldPath": "status.atProvider.address"},
                    {"name": "sslmode", "value": "require"}
                ],
                "readinessChecks": [
                    {"type": "MatchCondition", "matchCondition": {"type": "Ready", "status": "True"}},
                    {"type": "MatchString", "fieldPath": "status.atProvider.status", "matchString": "available"}
                ]
            })
        })
        .collect();
    let spec = json!({
        "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
        "patchSets": [{"name": "common", "patches": [
            {"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion",
             "transforms": [{"type": "convert", "convert": {"toType": "int64"}}, {"type": "convert", "convert": {"toType": "string"}}]},
            {"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.forProvider.tags", "policy": {"toFieldPath": "MergeObjects"}}
        ]}],
        "resources": resources
    });
    let spec: CompositionSpec = serde_json::from_value(spec).unwrap();
    let patches: usize = spec
        .resources
        .iter()
        .map(|r| r.patches.len() - 1 + spec.patch_sets[0].patches.len())
        .sum();
    assert_eq!(
        patches, 50,
        "10 resources x (3 own + 2 from the patch set) patches"
    );
    let observed = (0..10)
        .map(|i| {
            (
                format!("db-{i}"),
                ObservedResource {
                    object: json!({"status": {"atProvider": {"address": format!("db-{i}.example.com"), "status": "available"},
                                              "conditions": [{"type": "Ready", "status": "True"}]}}),
                    connection_secret: BTreeMap::from([("password".to_string(), b"pw".to_vec())]),
                },
            )
        })
        .collect();
    (claim, spec, observed)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Elements(1));

    let (claim, spec) = seed();
    let none = BTreeMap::new();
    g.bench_function("seed", |b| {
        b.iter(|| {
            render(black_box(&RenderInput {
                claim: &claim,
                composition_name: "postgresql-aws",
                composition: &spec,
                observed: &none,
            }))
            .unwrap()
        })
    });

    let (claim, spec, observed) = large();
    let out = render(&RenderInput {
        claim: &claim,
        composition_name: "large",
        composition: &spec,
        observed: &observed,
    })
    .unwrap();
    assert!(out.ready);
    g.bench_function("10_resources_observed", |b| {
        b.iter(|| {
            render(black_box(&RenderInput {
                claim: &claim,
                composition_name: "large",
                composition: &spec,
                observed: &observed,
            }))
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
