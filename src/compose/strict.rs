//! Unknown fields: a strict pass over a raw object against the JSON schema of the Rust type
//! that reads it, so that a misspelt key (`resource:` for `resources:`) is refused with its
//! path instead of being silently ignored.
//!
//! The schema is the one schemars derives for the type (the same one the CRD is generated
//! from), so the pass never drifts from what paved reads. Free-form parts
//! (`x-kubernetes-preserve-unknown-fields`, such as a resource's `base`) are not checked.

use serde_json::Value;

/// The JSON schema of `T`, as a JSON value (with its `$defs`).
pub(crate) fn schema_of<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

/// Paths (`spec.resources[0].patchez`) of the fields of `value` that `schema` does not know,
/// each prefixed with `path`.
pub(crate) fn unknown_fields(root: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, value, path, &mut out, 0);
    out
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = r
                    .strip_prefix('#')
                    .and_then(|pointer| root.pointer(pointer));
                match target {
                    Some(t) => s = t,
                    None => return s,
                }
            }
            None => return s,
        }
    }
    s
}

fn walk(
    root: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
    depth: u32,
) {
    if depth > 64 {
        return;
    }
    let schema = resolve(root, schema);
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    // Option<T> and enums: the first alternative that is not `null` describes the value.
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            if value.is_null() {
                return;
            }
            for alt in alts {
                let alt = resolve(root, alt);
                if alt.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                if alt.get("properties").is_some() || alt.get("items").is_some() {
                    walk(root, alt, value, path, out, depth + 1);
                    return;
                }
            }
            return;
        }
    }
    match value {
        Value::Object(m) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            let additional = schema.get("additionalProperties");
            for (k, v) in m {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match props.get(k) {
                    Some(s) => walk(root, s, v, &child, out, depth + 1),
                    None => match additional {
                        Some(Value::Bool(false)) | None => out.push(child),
                        Some(Value::Bool(true)) => {}
                        Some(s) => walk(root, s, v, &child, out, depth + 1),
                    },
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    walk(root, items, v, &format!("{path}[{i}]"), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::api::composition::CompositionSpec;
    use serde_json::json;

    #[test]
    fn names_every_unknown_field_with_its_path_and_skips_free_form_parts() {
        let root = schema_of::<CompositionSpec>();
        let spec = json!({
            "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
            "resource": [],
            "resources": [{
                "name": "r",
                "base": {"anything": {"goes": true}},
                "patches": [{"fromFieldPath": "a", "toFieldpath": "b",
                             "transforms": [{"type": "map", "map": {"k": "v"}}],
                             "policy": {"fromFieldPath": "Required", "mergeOption": {}}}],
                "readinessChecks": [{"type": "None", "matchCondition": {"type": "Ready", "status": "True"}}]
            }],
            "pipeline": [{"step": "s", "functionRef": {"name": "f"}, "input": {"free": 1}, "credential": []}]
        });
        let mut got = unknown_fields(&root, &spec, "spec");
        got.sort();
        assert_eq!(
            got,
            vec![
                "spec.pipeline[0].credential",
                "spec.resource",
                "spec.resources[0].patches[0].policy.mergeOption",
                "spec.resources[0].patches[0].toFieldpath",
            ]
        );
    }
}
