//! Deciding whether a server-side apply would change anything. Pure.
//!
//! An apply is needed when (a) some field paved renders has another value on the live object, or
//! (b) the live object records that paved's field manager owns a field paved no longer renders
//! (an apply then removes it). Otherwise applying would be a no-op, so paved does not send it:
//! a resync of a Ready claim makes no write.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::Value;

/// True when every field of `desired` has the same value in `live`. Objects compare key by key
/// (extra keys in `live` are fine: other managers and the API server add them), numbers compare
/// numerically, and arrays must match element by element, except that `live` may carry extra
/// elements (other managers' owner references, finalizers, ...) when every desired element is
/// found in it.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => is_subset(dv, lv),
            None => dv.is_null(),
        }),
        (Value::Array(d), Value::Array(l)) => {
            if d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b)) {
                return true;
            }
            d.len() < l.len() && d.iter().all(|a| l.iter().any(|b| is_subset(a, b)))
        }
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Leaf paths of a JSON object: scalars, arrays (atomic here) and empty objects.
pub fn leaf_paths(v: &Value) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    walk_leaves(v, &mut Vec::new(), &mut out);
    out
}

fn walk_leaves(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if child.is_null() {
                    continue;
                }
                prefix.push(k.clone());
                walk_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The leaf paths the given field manager owns through `Apply`, from `metadata.managedFields`
/// (fieldsV1). A list owned element-wise (`k:`, `v:`, `i:` keys) counts as one leaf at the list,
/// as [`leaf_paths`] treats arrays. `None` when the manager owns nothing.
pub fn owned_leaf_paths(
    managed: &[ManagedFieldsEntry],
    manager: &str,
) -> Option<BTreeSet<Vec<String>>> {
    let mut out = BTreeSet::new();
    let mut found = false;
    for entry in managed {
        if entry.manager.as_deref() != Some(manager) || entry.operation.as_deref() != Some("Apply")
        {
            continue;
        }
        // Status is applied through its own subresource; it never appears in desired objects.
        if entry.subresource.as_deref().is_some_and(|s| !s.is_empty()) {
            continue;
        }
        found = true;
        if let Some(fields) = &entry.fields_v1 {
            walk_fields(&fields.0, &mut Vec::new(), &mut out);
        }
    }
    found.then_some(out)
}

fn walk_fields(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    let Some(m) = v.as_object() else {
        out.insert(prefix.clone());
        return;
    };
    let is_list = m
        .keys()
        .any(|k| k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:"));
    let children: Vec<(&str, &Value)> = m
        .iter()
        .filter_map(|(k, c)| k.strip_prefix("f:").map(|name| (name, c)))
        .collect();
    if is_list || children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (name, child) in children {
        prefix.push(name.to_string());
        walk_fields(child, prefix, out);
        prefix.pop();
    }
}

/// Whether applying `desired` (as field manager `manager`) would change the live object.
pub fn needs_apply(
    desired: &Value,
    live: Option<&Value>,
    managed: &[ManagedFieldsEntry],
    manager: &str,
) -> bool {
    let Some(live) = live else { return true };
    if !is_subset(desired, live) {
        return true;
    }
    let Some(owned) = owned_leaf_paths(managed, manager) else {
        return true;
    };
    let wanted = leaf_paths(desired);
    // A field paved owns but no longer renders: applying removes it. A path that is a prefix of
    // a wanted leaf (an object paved fills) is not stale.
    // Status paths are skipped: API servers before 1.22 record a status apply by the same
    // manager in the same entry.
    owned.iter().any(|p| {
        p.first().is_some_and(|f| f != "status")
            && !wanted.contains(p)
            && !wanted.iter().any(|w| w.starts_with(p))
    })
}

/// Remove `null` values and `status` from an object paved is about to apply: status belongs to
/// the object's controller, and a null would be read as "delete this field".
pub fn strip_for_apply(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    strip_nulls(v);
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, c| !c.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    fn entry(manager: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    fn desired() -> Value {
        json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {"name": "n", "namespace": "ns", "labels": {"a": "b"},
                "ownerReferences": [{"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance", "name": "c", "uid": "u", "controller": true}]},
            "spec": {"forProvider": {"region": "eu-west-1", "allocatedStorage": 20}}})
    }

    fn live() -> Value {
        let mut l = desired();
        l["metadata"]["uid"] = json!("x");
        l["metadata"]["resourceVersion"] = json!("7");
        l["metadata"]["annotations"] = json!({"crossplane.io/external-name": "db-1"});
        l["metadata"]["finalizers"] = json!(["paved.dev/rds"]);
        l["spec"]["forProvider"]["allocatedStorage"] = json!(20.0);
        l["status"] = json!({"atProvider": {"status": "available"}});
        l
    }

    fn owned_all() -> Vec<ManagedFieldsEntry> {
        vec![
            entry(
                "paved",
                json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}},
                "f:ownerReferences": {".": {}, "k:{\"uid\":\"u\"}": {".": {}, "f:name": {}}}},
                "f:spec": {".": {}, "f:forProvider": {".": {}, "f:region": {}, "f:allocatedStorage": {}}}}),
            ),
            entry(
                "paved-rds",
                json!({"f:metadata": {"f:annotations": {"f:crossplane.io/external-name": {}}}}),
            ),
        ]
    }

    #[test]
    fn unchanged_object_needs_no_apply() {
        assert!(!needs_apply(
            &desired(),
            Some(&live()),
            &owned_all(),
            "paved"
        ));
    }

    #[test]
    fn changed_value_missing_object_or_foreign_object_needs_apply() {
        let mut d = desired();
        d["spec"]["forProvider"]["allocatedStorage"] = json!(30);
        assert!(needs_apply(&d, Some(&live()), &owned_all(), "paved"));
        assert!(needs_apply(&desired(), None, &[], "paved"));
        // Never applied by paved (no managed fields entry).
        assert!(needs_apply(
            &desired(),
            Some(&live()),
            &owned_all()[1..],
            "paved"
        ));
    }

    #[test]
    fn field_no_longer_rendered_needs_apply() {
        let mut d = desired();
        if let Some(fp) = d["spec"]["forProvider"].as_object_mut() {
            fp.remove("allocatedStorage");
        }
        assert!(needs_apply(&d, Some(&live()), &owned_all(), "paved"));
    }

    #[test]
    fn arrays_allow_foreign_extra_elements() {
        assert!(is_subset(&json!({"f": ["a"]}), &json!({"f": ["b", "a"]})));
        assert!(!is_subset(
            &json!({"f": ["a", "c"]}),
            &json!({"f": ["a", "b"]})
        ));
        assert!(!is_subset(
            &json!({"f": ["a", "b"]}),
            &json!({"f": ["b", "a"]})
        ));
    }

    #[test]
    fn strip_removes_status_and_nulls() {
        let mut v = json!({"spec": {"a": null, "b": [{"c": null, "d": 1}]}, "status": {"x": 1}});
        strip_for_apply(&mut v);
        assert_eq!(v, json!({"spec": {"b": [{"d": 1}]}}));
    }
}
