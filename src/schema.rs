//! A small structural validator over a CRD's `openAPIV3Schema`, for `paved render` (CI) to
//! refuse what the API server would refuse: types, `required`, `enum`, minimum/maximum,
//! length and item limits, `pattern`, and unknown fields where the schema does not preserve
//! them. Pure: a schema value and an object in, every error with its path out, so that it serves
//! paved's own CRDs ([`served_schema`]) and an XRD's schema alike.
//!
//! Not checked (the API server does, or nothing in paved's schemas needs it): CEL rules
//! (`x-kubernetes-validations`), `format`, `metadata` (ObjectMeta is validated by the API server
//! itself). Patterns are Rust regular expressions; one that does not compile as such is skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::compose::fieldpath::Segment;

/// One violation: where (`spec.forProvider.region`, `spec.items[2]`; empty for the whole object)
/// and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// `path.field`, or `field` at the root.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The OpenAPI type of `v` (`integer` for a whole JSON number).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// Validate `value` against `schema` (an `openAPIV3Schema`). Empty when valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<SchemaError> {
    let mut errs = Vec::new();
    walk(schema, value, "", true, &mut errs);
    errs
}

fn walk(schema: &Value, value: &Value, path: &str, root: bool, errs: &mut Vec<SchemaError>) {
    let mut err = |message: String| {
        errs.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            err(format!(
                "null; expected {}",
                schema["type"].as_str().unwrap_or("a value")
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(is_integer(value) || value.is_string()) {
            err(format!(
                "{} {}; expected an integer or a string",
                type_name(value),
                short(value)
            ));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "integer" => is_integer(value),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !ok {
            err(format!(
                "{} {}; expected {t}",
                type_name(value),
                short(value)
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        err(format!(
            "{} is not one of {}",
            short(value),
            list.join(", ")
        ));
    }
    match value {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return };
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                let exclusive = flag(schema, "exclusiveMinimum");
                if x < min || (exclusive && x == min) {
                    err(format!(
                        "{n} is less than the minimum {}{min}",
                        if exclusive { "(exclusive) " } else { "" }
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                let exclusive = flag(schema, "exclusiveMaximum");
                if x > max || (exclusive && x == max) {
                    err(format!(
                        "{n} is greater than the maximum {}{max}",
                        if exclusive { "(exclusive) " } else { "" }
                    ));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                err(format!("{} is shorter than {min} characters", short(value)));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                err(format!("{} is longer than {max} characters", short(value)));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Some(re) = pattern(p)
                && !re.is_match(s)
            {
                err(format!("{} does not match the pattern {p}", short(value)));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                err(format!("{n} items; at least {min} needed"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                err(format!("{n} items; at most {max} allowed"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(map) => walk_object(schema, map, path, root, errs),
        _ => {}
    }
}

fn walk_object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<SchemaError>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    for field in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(field) {
            errs.push(SchemaError {
                path: join(path, field),
                message: "required field is missing".into(),
            });
        }
    }
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let additional = schema.get("additionalProperties");
    for (key, v) in map {
        let child = join(path, key);
        // apiVersion, kind and metadata are the API server's own (CRD schemas may omit them).
        if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = props.and_then(|p| p.get(key)) {
            walk(s, v, &child, false, errs);
        } else if let Some(s) = additional.filter(|a| a.is_object()) {
            walk(s, v, &child, false, errs);
        } else if !preserve && additional.and_then(Value::as_bool) != Some(true) && props.is_some()
        {
            let mut known: Vec<&str> = props
                .into_iter()
                .flat_map(|p| p.keys())
                .map(String::as_str)
                .collect();
            known.sort_by_key(|k| similarity(k, key));
            let hint = match known.first() {
                Some(k) if similarity(k, key) <= 2 => format!(" (did you mean {k}?)"),
                _ => String::new(),
            };
            errs.push(SchemaError {
                path: child,
                message: format!("unknown field{hint}"),
            });
        }
    }
}

/// A small edit distance, case-insensitive (0 for `storageGb` and `storageGB`).
fn similarity(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn pattern(p: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Option<regex::Regex>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().ok()?;
    cache
        .entry(p.to_string())
        .or_insert_with(|| regex::Regex::new(p).ok())
        .clone()
}

/// What a schema says about a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The schema declares the field.
    Declared,
    /// The schema lets the field exist without declaring it (unknown fields preserved, a map,
    /// an untyped object, or `metadata`).
    Open,
    /// The object at `parent` declares no field `field`; `known` are the fields it does declare.
    Missing {
        parent: String,
        field: String,
        known: Vec<String>,
    },
    /// The path goes through something that is not an object or an array (`at`, of `type`).
    NotTraversable { at: String, type_: String },
}

/// Whether the object a schema describes can have the field at `segments` (a parsed field path;
/// a `*` field is a wildcard over an array's items or a map's values).
pub fn lookup(schema: &Value, segments: &[Segment]) -> Lookup {
    let mut node = schema;
    let mut path = String::new();
    for (i, seg) in segments.iter().enumerate() {
        if i == 0 && matches!(seg, Segment::Field(f) if f == "metadata") {
            return Lookup::Open;
        }
        let t = node.get("type").and_then(Value::as_str).unwrap_or("");
        match seg {
            Segment::Index(n) => {
                if t != "array" {
                    return not_traversable(node, path);
                }
                path = format!("{path}[{n}]");
                match node.get("items") {
                    Some(items) => node = items,
                    None => return Lookup::Open,
                }
            }
            Segment::Field(f) if f == "*" && t == "array" => {
                path = format!("{path}[*]");
                match node.get("items") {
                    Some(items) => node = items,
                    None => return Lookup::Open,
                }
            }
            Segment::Field(f) => {
                if t != "object" && !t.is_empty() {
                    return not_traversable(node, path);
                }
                let props = node.get("properties").and_then(Value::as_object);
                if let Some(child) = props.and_then(|p| p.get(f)) {
                    node = child;
                } else if let Some(a) = node.get("additionalProperties").filter(|a| a.is_object()) {
                    node = a;
                } else if props.is_none()
                    || flag(node, "x-kubernetes-preserve-unknown-fields")
                    || node.get("additionalProperties").and_then(Value::as_bool) == Some(true)
                {
                    return Lookup::Open;
                } else {
                    let mut known: Vec<String> =
                        props.into_iter().flat_map(|p| p.keys().cloned()).collect();
                    known.sort();
                    return Lookup::Missing {
                        parent: path,
                        field: f.clone(),
                        known,
                    };
                }
                path = join(&path, f);
            }
        }
    }
    Lookup::Declared
}

fn not_traversable(node: &Value, at: String) -> Lookup {
    if flag(node, "x-kubernetes-int-or-string") || node.get("type").is_none() {
        return Lookup::Open;
    }
    Lookup::NotTraversable {
        at,
        type_: node["type"].as_str().unwrap_or_default().to_string(),
    }
}

/// The `openAPIV3Schema` paved serves for `apiVersion` and `kind` (from the CRDs `paved crds`
/// generates), or `None` for a kind paved does not serve.
pub fn served_schema(api_version: &str, kind: &str) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<Vec<(String, String, Value)>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        let mut out = Vec::new();
        for crd in crate::api::all_crds() {
            for v in &crd.spec.versions {
                let schema = v
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .and_then(|s| serde_json::to_value(s).ok());
                if let Some(schema) = schema {
                    out.push((
                        format!("{}/{}", crd.spec.group, v.name),
                        crd.spec.names.kind.clone(),
                        schema,
                    ));
                }
            }
        }
        out
    });
    all.iter()
        .find(|(a, k, _)| a == api_version && k == kind)
        .map(|(_, _, s)| s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
