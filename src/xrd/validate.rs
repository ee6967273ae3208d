//! Pure: an object against a CRD's structural OpenAPI v3 schema, as the API server judges it:
//! defaults applied first (in place), then every error at once, each naming its field path.
//! Covered: type, properties, required, enum, minimum/maximum (and exclusive), minLength/
//! maxLength, pattern, minItems/maxItems, items, additionalProperties, nullable,
//! x-kubernetes-preserve-unknown-fields and x-kubernetes-int-or-string. Fields the schema does
//! not know are reported as unknown (the API server would drop them).

use serde_json::{Map, Value};

use crate::schema::{join, type_name};

/// Apply the schema's defaults to `value` and return every validation error.
pub fn validate(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, value, "", &mut errors);
    errors
}

fn walk(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    let at = if path.is_empty() { "<root>" } else { path };
    if value.is_null() {
        if s.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{at}: Invalid value: null: must not be null"));
        }
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == t
            || (t == "number" && actual == "integer")
            || (int_or_string && (actual == "integer" || actual == "string"));
        if !ok {
            errors.push(format!(
                "{at}: Invalid value: \"{actual}\": {at} in body must be of type {t}"
            ));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(value)
    {
        let list = allowed
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        errors.push(format!(
            "{at}: Unsupported value: {value}: supported values: {list}"
        ));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let excl = |k| s.get(k) == Some(&Value::Bool(true));
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl("exclusiveMinimum") && x == min))
            {
                errors.push(format!(
                    "{at}: Invalid value: {n}: {at} in body should be greater than or equal to {min}"
                ));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl("exclusiveMaximum") && x == max))
            {
                errors.push(format!(
                    "{at}: Invalid value: {n}: {at} in body should be less than or equal to {max}"
                ));
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errors.push(format!(
                    "{at}: Invalid value: {text:?}: {at} in body should be at least {min} chars long"
                ));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errors.push(format!("{at}: Too long: may not be more than {max} bytes"));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(text)
            {
                errors.push(format!(
                    "{at}: Invalid value: {text:?}: {at} in body should match '{p}'"
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                errors.push(format!(
                    "{at}: Invalid value: {n}: {at} in body should have at least {min} items"
                ));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errors.push(format!(
                    "{at}: Too many: {n}: must have at most {max} items"
                ));
            }
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    walk(item, v, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(obj) => object(s, obj, path, errors),
        _ => {}
    }
}

fn object(
    s: &Map<String, Value>,
    obj: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let props = s.get("properties").and_then(Value::as_object);
    // Defaults first, as the API server applies them before validating.
    if let Some(props) = props {
        for (k, p) in props {
            if !obj.contains_key(k)
                && let Some(d) = p.get("default")
            {
                obj.insert(k.clone(), d.clone());
            }
        }
    }
    if let Some(Value::Array(req)) = s.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                errors.push(format!("{}: Required value", join(path, r)));
            }
        }
    }
    let preserve = s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let additional = s.get("additionalProperties");
    for (k, v) in obj.iter_mut() {
        let p = join(path, k);
        if let Some(ps) = props.and_then(|ps| ps.get(k)) {
            walk(ps, v, &p, errors);
        } else if let Some(a) = additional.filter(|a| a.is_object()) {
            walk(a, v, &p, errors);
        } else if !preserve && additional != Some(&Value::Bool(true)) && props.is_some() {
            errors.push(format!(
                "{p}: Unknown field: not in the schema (the API server drops it)"
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["size", "region"],
        "properties": {
            "size": {"type": "string", "enum": ["small", "large"]},
            "storageGB": {"type": "integer", "minimum": 20, "maximum": 100, "default": 20},
            "region": {"type": "string", "pattern": "^[a-z]+-[a-z]+-[0-9]$"},
            "name": {"type": "string", "maxLength": 5},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "subnets": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "port": {"x-kubernetes-int-or-string": true}
        }}}})
    }

    #[test]
    fn defaults_are_applied_and_a_valid_object_passes() {
        let mut v = json!({"spec": {"size": "small", "region": "eu-west-1", "port": "5432",
            "free": {"anything": [1]}, "tags": {"a": "b"}}});
        assert_eq!(validate(&schema(), &mut v), Vec::<String>::new());
        assert_eq!(v["spec"]["storageGB"], 20);
    }

    #[test]
    fn every_error_is_reported_with_its_field() {
        let mut v = json!({"spec": {"size": "huge", "storageGB": 5000, "region": "nowhere",
            "name": "toolong", "tags": {"a": 1}, "subnets": [], "extra": true}});
        let errors = validate(&schema(), &mut v);
        let want = [
            "spec.size: Unsupported value: \"huge\"",
            "spec.storageGB: Invalid value: 5000",
            "spec.region: Invalid value: \"nowhere\"",
            "spec.name: Too long",
            "spec.tags.a: Invalid value: \"integer\"",
            "spec.subnets: Invalid value: 0",
            "spec.extra: Unknown field",
        ];
        for w in want {
            assert!(errors.iter().any(|e| e.starts_with(w)), "{w} in {errors:?}");
        }
        assert_eq!(errors.len(), want.len(), "{errors:?}");
        let mut missing = json!({"spec": {}});
        let errors = validate(&schema(), &mut missing);
        assert_eq!(
            errors,
            vec!["spec.size: Required value", "spec.region: Required value"]
        );
        let mut none = json!({});
        assert_eq!(validate(&schema(), &mut none), vec!["spec: Required value"]);
    }
}
