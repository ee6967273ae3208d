use super::*;
use crate::compose::fieldpath::parse;
use serde_json::json;

fn claim_schema() -> &'static Value {
    served_schema("database.example.com/v1alpha1", "PostgreSQLInstance").unwrap()
}

fn instance_schema(version: &str) -> &'static Value {
    served_schema(&format!("rds.aws.upbound.io/{version}"), "Instance").unwrap()
}

fn paths(errs: &[SchemaError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn types_are_checked_with_the_path() {
    let s = json!({"type": "object", "properties": {"a": {"type": "object", "properties": {
        "n": {"type": "integer"}, "s": {"type": "string"}, "b": {"type": "boolean"},
        "l": {"type": "array", "items": {"type": "string"}}}}}});
    let errs = validate(
        &s,
        &json!({"a": {"n": "5", "s": 14, "b": "yes", "l": ["x", 2]}}),
    );
    assert_eq!(
        paths(&errs),
        [
            "a.b: string \"yes\"; expected boolean",
            "a.l[1]: integer 2; expected string",
            "a.n: string \"5\"; expected integer",
            "a.s: integer 14; expected string",
        ]
    );
    assert!(
        validate(&s, &json!({"a": {"n": 5.0}})).is_empty(),
        "5.0 is an integer"
    );
}

#[test]
fn required_fields_are_named() {
    let s = json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object",
        "required": ["region"], "properties": {"region": {"type": "string"}}}}});
    assert_eq!(
        paths(&validate(&s, &json!({}))),
        ["spec: required field is missing"]
    );
    assert_eq!(
        paths(&validate(&s, &json!({"spec": {}}))),
        ["spec.region: required field is missing"]
    );
}

#[test]
fn enums_limits_lengths_items_and_patterns() {
    let s = json!({"type": "object", "properties": {
        "e": {"type": "string", "enum": ["a", "b"]},
        "n": {"type": "integer", "minimum": 10, "maximum": 20},
        "x": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
        "s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"},
        "l": {"type": "array", "minItems": 1, "maxItems": 2}}});
    let errs = validate(
        &s,
        &json!({"e": "c", "n": 5, "x": 0, "s": "ABCD", "l": [1, 2, 3]}),
    );
    assert_eq!(
        paths(&errs),
        [
            "e: \"c\" is not one of \"a\", \"b\"",
            "l: 3 items; at most 2 allowed",
            "n: 5 is less than the minimum 10",
            "s: \"ABCD\" is longer than 3 characters",
            "s: \"ABCD\" does not match the pattern ^[a-z]+$",
            "x: 0 is less than the minimum (exclusive) 0",
        ]
    );
    assert_eq!(
        paths(&validate(&s, &json!({"n": 21, "s": "a", "l": []}))),
        [
            "l: 0 items; at least 1 needed",
            "n: 21 is greater than the maximum 20",
            "s: \"a\" is shorter than 2 characters",
        ]
    );
}

#[test]
fn unknown_fields_are_refused_unless_preserved_or_a_map() {
    let s = json!({"type": "object", "properties": {
        "closed": {"type": "object", "properties": {"storageGB": {"type": "integer"}}},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
        "map": {"type": "object", "additionalProperties": {"type": "string"}}}});
    let errs = validate(
        &s,
        &json!({"closed": {"storageGb": 5}, "open": {"anything": 1}, "map": {"k": "v", "n": 1}}),
    );
    assert_eq!(
        paths(&errs),
        [
            "closed.storageGb: unknown field (did you mean storageGB?)",
            "map.n: integer 1; expected string",
        ]
    );
}

#[test]
fn int_or_string_and_nullable() {
    let s = json!({"type": "object", "properties": {
        "p": {"x-kubernetes-int-or-string": true},
        "z": {"type": "string", "nullable": true},
        "y": {"type": "string"}}});
    assert!(validate(&s, &json!({"p": 5, "z": null})).is_empty());
    assert!(validate(&s, &json!({"p": "5"})).is_empty());
    assert_eq!(
        paths(&validate(&s, &json!({"p": true, "y": null}))),
        [
            "p: boolean true; expected an integer or a string",
            "y: null; expected string"
        ]
    );
}

#[test]
fn the_built_in_claim_schema_refuses_what_the_api_server_refuses() {
    let claim = |params: Value| {
        json!({"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance",
            "metadata": {"name": "db", "namespace": "team", "labels": {"a": "b"}},
            "spec": {"parameters": params, "writeConnectionSecretToRef": {"name": "db-conn"}}})
    };
    let ok = claim(json!({"storageGB": 20, "version": "14", "environment": "staging"}));
    assert_eq!(validate(claim_schema(), &ok), vec![]);
    let errs = paths(&validate(
        claim_schema(),
        &claim(json!({"storageGB": 5, "version": 14, "environment": "staging", "storageGb": 20})),
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.parameters.storageGB: 5 is less than the minimum")),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"spec.parameters.version: integer 14; expected string".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(
            &"spec.parameters.storageGb: unknown field (did you mean storageGB?)".to_string()
        ),
        "{errs:?}"
    );
}

#[test]
fn an_instance_without_region_fails_at_every_version() {
    for v in ["v1beta1", "v1beta2", "v1beta3"] {
        let o = json!({"apiVersion": format!("rds.aws.upbound.io/{v}"), "kind": "Instance",
            "metadata": {"name": "x"}, "spec": {"forProvider": {"instanceClass": "db.t3.micro"}}});
        assert_eq!(
            paths(&validate(instance_schema(v), &o)),
            ["spec.forProvider.region: required field is missing"],
            "{v}"
        );
    }
    // forProvider preserves unknown fields (reported by the controller, not refused), but a
    // singleton block in the other version's shape is a type error.
    let o = json!({"spec": {"forProvider": {"region": "eu-west-1", "somethingNew": 1,
        "blueGreenUpdate": [{"enabled": true}]}}});
    assert_eq!(
        paths(&validate(instance_schema("v1beta3"), &o)),
        ["spec.forProvider.blueGreenUpdate: array [{\"enabled\":true}]; expected object"]
    );
    assert!(validate(instance_schema("v1beta1"), &o).is_empty());
    assert!(served_schema("rds.aws.upbound.io/v1", "Instance").is_none());
    assert!(served_schema("rds.aws.m.upbound.io/v1beta1", "Instance").is_some());
}

#[test]
fn lookup_finds_declared_open_and_missing_fields() {
    let p = |s: &str| parse(s).unwrap();
    assert_eq!(
        lookup(claim_schema(), &p("spec.parameters.storageGB")),
        Lookup::Declared
    );
    match lookup(claim_schema(), &p("spec.parameters.storageGb")) {
        Lookup::Missing {
            parent,
            field,
            known,
        } => {
            assert_eq!(parent, "spec.parameters");
            assert_eq!(field, "storageGb");
            assert!(known.contains(&"storageGB".to_string()), "{known:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lookup(claim_schema(), &p("metadata.labels[team]")),
        Lookup::Open
    );
    let i = instance_schema("v1beta1");
    assert_eq!(
        lookup(i, &p("spec.forProvider.anythingPreserved")),
        Lookup::Open
    );
    assert_eq!(
        lookup(i, &p("spec.forProvider.tags[team]")),
        Lookup::Declared,
        "a map's values"
    );
    assert_eq!(lookup(i, &p("status.atProvider.address")), Lookup::Declared);
    assert!(matches!(
        lookup(i, &p("spec.deletionPolicyy")),
        Lookup::Missing { .. }
    ));
    assert!(matches!(
        lookup(i, &p("spec.forProvider.region.x")),
        Lookup::NotTraversable { .. }
    ));
    assert_eq!(
        lookup(i, &p("spec.forProvider.vpcSecurityGroupIds[0]")),
        Lookup::Declared
    );
}
