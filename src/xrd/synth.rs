//! Pure: a CompositeResourceDefinition → the kind paved serves for it ([`ServedKind`]) and
//! that kind's CRD. The CRD's schema is the XRD's, plus the fields paved manages (Composition
//! choice, delete policy, connection Secret; for v2 under `spec.crossplane`) and the status
//! paved writes (conditions, compositionRef, resourceRefs, connectionDetails, and room for the
//! fields Compositions patch into it).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::ResourceExt;
use kube::api::ApiResource;
use serde_json::{Map, Value, json};

use crate::api::PostgreSQLInstance;
use crate::api::claim::{CompositeDeletePolicy, CompositionUpdatePolicy};
use crate::api::xrd::{CompositeResourceDefinition, XrdNames, XrdScope};

/// The label on a CRD paved made for an XRD: the XRD's name.
pub const XRD_LABEL: &str = "paved.dev/xrd";

/// A kind paved serves and composes: the built-in `PostgreSQLInstance`, a v1 XRD's claim kind,
/// or a v2 XRD's namespaced XR kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServedKind {
    /// The XRD that defines it (empty for the built-in kind).
    pub xrd: String,
    /// The served (claim) kind, at its stored (referenceable) version.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    /// Every version served, for matching `compositeTypeRef.apiVersion`.
    pub versions: Vec<String>,
    /// The XR kind Compositions name in `compositeTypeRef` (for v2 and the built-in kind, the
    /// served kind itself).
    pub xr_kind: String,
    /// v2 (namespaced XR, Composition choice under `spec.crossplane`) rather than a claim.
    pub v2: bool,
    /// When non-empty, the only keys the connection Secret may hold.
    pub connection_secret_keys: Vec<String>,
    pub default_composition: Option<String>,
    pub enforced_composition: Option<String>,
    pub default_delete_policy: Option<CompositeDeletePolicy>,
    /// `defaultCompositionUpdatePolicy`: the policy of a claim that sets none.
    pub default_update_policy: Option<CompositionUpdatePolicy>,
    /// The served CRD's generation: a schema change makes it another served kind, so that the
    /// claim controller restarts its watch (a watch opened before the change may deliver
    /// objects pruned by the old schema) and reconciles every claim of it again.
    pub crd_generation: Option<i64>,
}

impl ServedKind {
    /// The built-in claim kind, `database.example.com/v1alpha1` `PostgreSQLInstance`.
    pub fn builtin() -> Self {
        let ar = ApiResource::erase::<PostgreSQLInstance>(&());
        Self {
            versions: vec![ar.version.clone()],
            xr_kind: ar.kind.clone(),
            group: ar.group,
            version: ar.version,
            kind: ar.kind,
            plural: ar.plural,
            ..Self::default()
        }
    }

    /// `group/version` of the served kind.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The served kind as kube's dynamic API needs it.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    /// The CRD's name, `<plural>.<group>`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// Whether a Composition's `compositeTypeRef` names this kind: the XR kind (as Crossplane
    /// Compositions do) or the served kind (the seed's style), at any of its versions.
    pub fn composed_by(&self, api_version: &str, kind: &str) -> bool {
        let Some((group, version)) = api_version.split_once('/') else {
            return false;
        };
        group == self.group
            && self.versions.iter().any(|v| v == version)
            && (kind == self.xr_kind || kind == self.kind)
    }

    /// How error messages name the type Compositions must serve.
    pub fn type_ref(&self) -> String {
        format!("{} {}", self.api_version(), self.xr_kind)
    }
}

/// Why an XRD cannot be served. `Display` is the XRD condition's message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SynthError {
    #[error(
        "spec.claimNames is missing: paved serves a v1 definition's claim kind; add spec.claimNames (kind and plural), or make it a v2 definition with scope: Namespaced"
    )]
    NoClaimNames,
    #[error(
        "spec.scope Cluster is not supported: paved composes namespaced resources from a namespaced object; use scope: Namespaced, or LegacyCluster with spec.claimNames"
    )]
    ClusterScope,
    #[error("spec.versions is empty: define at least one version with a schema")]
    NoVersions,
    #[error(
        "exactly one of spec.versions must be referenceable, {count} are ({names}); mark the version Compositions use (and paved stores) referenceable: true"
    )]
    Referenceable { count: usize, names: String },
    #[error("the referenceable version {0:?} is not served; set served: true on it")]
    ReferenceableNotServed(String),
    #[error(
        "spec.versions[{index}] ({version}).schema.openAPIV3Schema {problem}; it must be an object schema (type: object) with spec under properties"
    )]
    Schema {
        index: usize,
        version: String,
        problem: String,
    },
    #[error("{field} {value:?} is not a valid name: {why}")]
    Name {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

impl SynthError {
    /// A bounded CamelCase reason for the XRD's condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Schema { .. } => "InvalidSchema",
            _ => "InvalidDefinition",
        }
    }
}

/// What an XRD becomes: the kind paved serves and its CRD.
#[derive(Clone, Debug)]
pub struct Synthesized {
    pub kind: ServedKind,
    pub crd: CustomResourceDefinition,
}

/// The kind an XRD defines and its CRD.
pub fn synthesize(xrd: &CompositeResourceDefinition) -> Result<Synthesized, SynthError> {
    let spec = &xrd.spec;
    let v2 = match (spec.scope, &spec.claim_names) {
        (Some(XrdScope::Namespaced), _) => true,
        (Some(XrdScope::Cluster), _) => return Err(SynthError::ClusterScope),
        (_, None) => return Err(SynthError::NoClaimNames),
        (_, Some(_)) => false,
    };
    let names = match (&spec.claim_names, v2) {
        (Some(c), false) => c,
        _ => &spec.names,
    };
    check_names(spec.group.as_str(), names)?;
    if spec.versions.is_empty() {
        return Err(SynthError::NoVersions);
    }
    let referenceable: Vec<_> = spec.versions.iter().filter(|v| v.referenceable).collect();
    let [stored] = referenceable.as_slice() else {
        return Err(SynthError::Referenceable {
            count: referenceable.len(),
            names: referenceable
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if !stored.served {
        return Err(SynthError::ReferenceableNotServed(stored.name.clone()));
    }

    let mut versions = Vec::new();
    for (index, v) in spec.versions.iter().enumerate() {
        let schema = version_schema(
            v.schema
                .as_ref()
                .map(|s| &s.open_api_v3_schema)
                .unwrap_or(&Value::Null),
            v2,
        )
        .map_err(|problem| SynthError::Schema {
            index,
            version: v.name.clone(),
            problem,
        })?;
        let mut version = json!({
            "name": v.name,
            "served": v.served,
            "storage": v.referenceable,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": printer_columns(&v.additional_printer_columns),
        });
        if let Some(d) = v.deprecated {
            version["deprecated"] = json!(d);
        }
        if let Some(w) = &v.deprecation_warning {
            version["deprecationWarning"] = json!(w);
        }
        versions.push(version);
    }

    let mut categories = names.categories.clone();
    for c in ["claim", "paved"] {
        if !categories.iter().any(|x| x == c) {
            categories.push(c.to_string());
        }
    }
    let singular = names
        .singular
        .clone()
        .unwrap_or_else(|| names.kind.to_lowercase());
    let mut crd_names = json!({
        "kind": names.kind,
        "plural": names.plural,
        "singular": singular,
        "listKind": names.list_kind.clone().unwrap_or_else(|| format!("{}List", names.kind)),
        "categories": categories,
    });
    if !names.short_names.is_empty() {
        crd_names["shortNames"] = json!(names.short_names);
    }
    let name = format!("{}.{}", names.plural, spec.group);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": name,
            "labels": {
                crate::kube::meta::MANAGED_BY_LABEL: crate::kube::meta::MANAGED_BY,
                XRD_LABEL: xrd.name_any(),
            },
        },
        "spec": {
            "group": spec.group,
            "names": crd_names,
            "scope": "Namespaced",
            "versions": versions,
        },
    });
    let crd: CustomResourceDefinition =
        serde_json::from_value(crd).map_err(|e| SynthError::Schema {
            index: 0,
            version: stored.name.clone(),
            problem: format!("does not make a valid CRD: {e}"),
        })?;
    Ok(Synthesized {
        kind: ServedKind {
            xrd: xrd.name_any(),
            group: spec.group.clone(),
            version: stored.name.clone(),
            kind: names.kind.clone(),
            plural: names.plural.clone(),
            versions: spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.clone())
                .collect(),
            xr_kind: spec.names.kind.clone(),
            v2,
            connection_secret_keys: spec.connection_secret_keys.clone(),
            default_composition: spec
                .default_composition_ref
                .as_ref()
                .map(|r| r.name.clone()),
            enforced_composition: spec
                .enforced_composition_ref
                .as_ref()
                .map(|r| r.name.clone()),
            default_delete_policy: spec.default_composite_delete_policy,
            default_update_policy: match spec.default_composition_update_policy.as_deref() {
                Some("Manual") => Some(CompositionUpdatePolicy::Manual),
                Some("Automatic") => Some(CompositionUpdatePolicy::Automatic),
                _ => None,
            },
            crd_generation: None,
        },
        crd,
    })
}

fn check_names(group: &str, names: &XrdNames) -> Result<(), SynthError> {
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if group.is_empty() || !group.split('.').all(dns) || !group.contains('.') {
        return Err(SynthError::Name {
            field: "spec.group",
            value: group.into(),
            why: "a DNS subdomain with at least one dot, for example database.example.org",
        });
    }
    if !dns(&names.plural) {
        return Err(SynthError::Name {
            field: "plural",
            value: names.plural.clone(),
            why: "lowercase letters, digits and '-'",
        });
    }
    let kind_ok = names
        .kind
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        && names.kind.chars().all(|c| c.is_ascii_alphanumeric());
    if !kind_ok {
        return Err(SynthError::Name {
            field: "kind",
            value: names.kind.clone(),
            why: "CamelCase letters and digits, starting with a capital",
        });
    }
    Ok(())
}

/// The properties of the built-in claim's schema (spec or status), as `paved crds` writes them:
/// the fields paved manages carry the same descriptions on every kind.
fn builtin_properties(field: &str) -> Map<String, Value> {
    let crd = PostgreSQLInstance::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    schema
        .pointer(&format!("/properties/{field}/properties"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The spec fields paved manages, with their schemas.
fn managed_spec_properties() -> Map<String, Value> {
    let mut props = builtin_properties("spec");
    props.remove("parameters");
    props
}

/// The `properties` map of the object schema `schema` (made when missing); `at` (`spec.`, ...)
/// names it in the error.
fn properties_of<'a>(
    schema: &'a mut Value,
    at: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    schema
        .as_object_mut()
        .and_then(|o| {
            o.entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        })
        .ok_or_else(|| format!("has {at}properties that are not a map"))
}

/// The schema of one version: the XRD's, with paved's fields merged in.
fn version_schema(xrd: &Value, v2: bool) -> Result<Value, String> {
    let mut root = match xrd {
        Value::Null => json!({"type": "object", "properties": {"spec": {"type": "object"}}}),
        Value::Object(o) => Value::Object(o.clone()),
        _ => return Err("is not an object".into()),
    };
    if let Some(t) = root.get("type").and_then(Value::as_str)
        && t != "object"
    {
        return Err(format!("has type {t:?}"));
    }
    root["type"] = json!("object");
    let props = properties_of(&mut root, "")?;
    // The API server owns these.
    props.remove("apiVersion");
    props.remove("kind");
    props.remove("metadata");

    let spec = props
        .entry("spec")
        .or_insert_with(|| json!({"type": "object"}));
    if let Some(t) = spec.get("type").and_then(Value::as_str)
        && t != "object"
    {
        return Err(format!("has properties.spec of type {t:?}"));
    }
    if !spec.is_object() {
        return Err("has properties.spec that is not a schema".into());
    }
    spec["type"] = json!("object");
    let spec_props = properties_of(spec, "spec.")?;
    let managed = managed_spec_properties();
    if v2 {
        let mut crossplane = Map::new();
        for key in [
            "compositionRef",
            "compositionSelector",
            "compositionUpdatePolicy",
            "compositionRevisionRef",
        ] {
            if let Some(p) = managed.get(key) {
                crossplane.insert(key.into(), p.clone());
            }
        }
        crossplane.insert(
            "resourceRefs".into(),
            json!({"type": "array", "description": "The objects composed for this resource.",
                   "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}),
        );
        spec_props.insert(
            "crossplane".into(),
            json!({"type": "object", "properties": crossplane,
                   "description": "How paved composes this resource: the Composition to use (compositionRef, or compositionSelector.matchLabels)."}),
        );
        for key in ["writeConnectionSecretToRef", "compositeDeletePolicy"] {
            if let Some(p) = managed.get(key) {
                spec_props.entry(key).or_insert_with(|| p.clone());
            }
        }
    } else {
        for (key, p) in managed {
            spec_props.insert(key, p);
        }
        spec_props.insert(
            "claimRef".into(),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                   "description": "Set by paved for Compositions (apiVersion, kind, name, namespace of this claim); not to be written."}),
        );
    }
    // A claim without spec would skip the XRD's required fields.
    let required = root
        .as_object_mut()
        .map(|o| o.entry("required").or_insert_with(|| json!([])));
    if let Some(Value::Array(r)) = required
        && !r.iter().any(|x| x == "spec")
    {
        r.push(json!("spec"));
    }

    // Status: the XRD's fields, paved's, and room for what Compositions patch in.
    let props = root
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or("has properties that are not a map")?;
    let status = props
        .entry("status")
        .or_insert_with(|| json!({"type": "object"}));
    if !status.is_object() {
        return Err("has properties.status that is not a schema".into());
    }
    status["type"] = json!("object");
    status["x-kubernetes-preserve-unknown-fields"] = json!(true);
    let status_props = properties_of(status, "status.")?;
    for (key, p) in builtin_properties("status") {
        status_props.insert(key, p);
    }
    Ok(root)
}

fn printer_columns(own: &[Value]) -> Value {
    let mut cols = vec![
        json!({"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"}),
        json!({"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}),
        json!({"name": "CONNECTION-SECRET", "type": "string", "jsonPath": ".spec.writeConnectionSecretToRef.name"}),
        json!({"name": "PROBLEM", "type": "string", "jsonPath": ".status.problem",
               "description": "The first problem between this claim and Ready, in short; kubectl describe shows the conditions in full."}),
    ];
    cols.extend(own.iter().cloned());
    cols.push(json!({"name": "COMPOSITION", "type": "string", "jsonPath": ".status.compositionRef.name", "priority": 1}));
    cols.push(json!({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}));
    Value::Array(cols)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn xrd(v: Value) -> CompositeResourceDefinition {
        serde_json::from_value(v).unwrap()
    }

    fn v1(extra: Value) -> Value {
        let mut base = json!({
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "CompositeResourceDefinition",
            "metadata": {"name": "xsqls.db.example.org"},
            "spec": {
                "group": "db.example.org",
                "names": {"kind": "XSQL", "plural": "xsqls"},
                "claimNames": {"kind": "SQL", "plural": "sqls"},
                "connectionSecretKeys": ["host", "password"],
                "versions": [{
                    "name": "v1alpha1", "served": true, "referenceable": true,
                    "additionalPrinterColumns": [{"name": "SIZE", "type": "string", "jsonPath": ".spec.size"}],
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {
                                "size": {"type": "string", "enum": ["small", "large"], "default": "small",
                                         "description": "How big."}
                            }, "required": ["size"]},
                            "status": {"type": "object", "properties": {"address": {"type": "string"}}}
                        }
                    }}
                }]
            }
        });
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                base["spec"][k] = v;
            }
        }
        base
    }

    fn schema(s: &Synthesized) -> Value {
        serde_json::to_value(
            s.crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_v1_definition_becomes_its_claim_kind() {
        let s = synthesize(&xrd(v1(json!({})))).unwrap();
        assert_eq!(s.crd.metadata.name.as_deref(), Some("sqls.db.example.org"));
        assert_eq!(s.crd.spec.scope, "Namespaced");
        assert_eq!(s.crd.spec.names.kind, "SQL");
        assert_eq!(
            s.crd.spec.names.categories,
            Some(vec!["claim".to_string(), "paved".to_string()])
        );
        assert_eq!(s.kind.kind, "SQL");
        assert_eq!(s.kind.xr_kind, "XSQL");
        assert!(!s.kind.v2);
        assert_eq!(s.kind.connection_secret_keys, vec!["host", "password"]);
        assert!(s.kind.composed_by("db.example.org/v1alpha1", "XSQL"));
        assert!(s.kind.composed_by("db.example.org/v1alpha1", "SQL"));
        assert!(!s.kind.composed_by("db.example.org/v1", "XSQL"));
        assert!(!s.kind.composed_by("other.org/v1alpha1", "XSQL"));
        let v = &s.crd.spec.versions[0];
        assert!(v.storage && v.served);
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            cols,
            [
                "SYNCED",
                "READY",
                "CONNECTION-SECRET",
                "PROBLEM",
                "SIZE",
                "COMPOSITION",
                "AGE"
            ]
        );
        let sc = schema(&s);
        let spec = &sc["properties"]["spec"];
        assert_eq!(spec["properties"]["size"]["description"], "How big.");
        assert_eq!(spec["properties"]["size"]["default"], "small");
        assert_eq!(spec["required"], json!(["size"]));
        for managed in [
            "compositionRef",
            "compositionSelector",
            "compositeDeletePolicy",
            "writeConnectionSecretToRef",
            "compositionUpdatePolicy",
            "claimRef",
        ] {
            assert!(spec["properties"].get(managed).is_some(), "{managed}");
        }
        assert!(
            spec["properties"]["writeConnectionSecretToRef"]["description"]
                .as_str()
                .unwrap()
                .contains("Secret")
        );
        assert_eq!(sc["required"], json!(["spec"]));
        let status = &sc["properties"]["status"];
        assert_eq!(status["x-kubernetes-preserve-unknown-fields"], true);
        for key in [
            "address",
            "conditions",
            "problem",
            "compositionRef",
            "resourceRefs",
            "connectionDetails",
        ] {
            assert!(status["properties"].get(key).is_some(), "status.{key}");
        }
    }

    #[test]
    fn a_v2_namespaced_definition_serves_its_xr_kind() {
        let mut v = v1(json!({"scope": "Namespaced"}));
        v["apiVersion"] = json!("apiextensions.crossplane.io/v2");
        v["spec"].as_object_mut().unwrap().remove("claimNames");
        let s = synthesize(&xrd(v)).unwrap();
        assert!(s.kind.v2);
        assert_eq!(s.kind.kind, "XSQL");
        assert_eq!(s.crd.metadata.name.as_deref(), Some("xsqls.db.example.org"));
        let sc = schema(&s);
        let spec = &sc["properties"]["spec"]["properties"];
        assert!(spec["crossplane"]["properties"]["compositionSelector"].is_object());
        assert!(spec["crossplane"]["properties"]["compositionRef"].is_object());
        assert!(spec.get("compositionRef").is_none());
        assert!(spec.get("claimRef").is_none());
        assert!(spec["writeConnectionSecretToRef"].is_object());
    }

    #[test]
    fn refusals_name_what_to_fix() {
        let cases: Vec<(Value, &str)> = vec![
            (
                {
                    let mut v = v1(json!({}));
                    v["spec"].as_object_mut().unwrap().remove("claimNames");
                    v
                },
                "spec.claimNames is missing",
            ),
            (v1(json!({"scope": "Cluster"})), "scope Cluster"),
            (v1(json!({"versions": []})), "spec.versions is empty"),
            (
                v1(json!({"versions": [{"name": "a", "served": true, "referenceable": false}]})),
                "exactly one of spec.versions must be referenceable, 0 are",
            ),
            (
                v1(
                    json!({"versions": [{"name": "a", "served": true, "referenceable": true},
                                       {"name": "b", "served": true, "referenceable": true}]}),
                ),
                "1 are", /* never */
            ),
            (
                v1(json!({"versions": [{"name": "a", "served": false, "referenceable": true}]})),
                "\"a\" is not served",
            ),
            (
                v1(
                    json!({"versions": [{"name": "a", "served": true, "referenceable": true,
                    "schema": {"openAPIV3Schema": {"type": "string"}}}]}),
                ),
                "spec.versions[0] (a).schema.openAPIV3Schema has type \"string\"",
            ),
            (
                v1(
                    json!({"versions": [{"name": "a", "served": true, "referenceable": true,
                    "schema": {"openAPIV3Schema": {"properties": {"spec": {"type": "array"}}}}}]}),
                ),
                "has properties.spec of type \"array\"",
            ),
            (v1(json!({"group": "nodot"})), "spec.group \"nodot\""),
            (
                v1(json!({"claimNames": {"kind": "sql", "plural": "sqls"}})),
                "kind \"sql\"",
            ),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            let err = synthesize(&xrd(v)).unwrap_err().to_string();
            if i == 4 {
                assert!(err.contains("2 are (a, b)"), "{err}");
            } else {
                assert!(err.contains(want), "case {i}: {err}");
            }
        }
    }

    #[test]
    fn a_missing_schema_serves_an_open_spec_and_several_versions_keep_one_stored() {
        let s = synthesize(&xrd(v1(json!({"versions": [
            {"name": "v1alpha1", "served": true, "referenceable": false, "deprecated": true,
             "deprecationWarning": "use v1"},
            {"name": "v1", "served": true, "referenceable": true}
        ]}))))
        .unwrap();
        assert_eq!(s.kind.version, "v1");
        assert_eq!(s.kind.versions, vec!["v1alpha1", "v1"]);
        let stored: Vec<_> = s.crd.spec.versions.iter().map(|v| v.storage).collect();
        assert_eq!(stored, [false, true]);
        assert_eq!(s.crd.spec.versions[0].deprecated, Some(true));
        assert!(s.kind.composed_by("db.example.org/v1alpha1", "XSQL"));
    }

    #[test]
    fn the_builtin_kind_is_composed_by_the_seed_compositions() {
        let b = ServedKind::builtin();
        assert_eq!(b.api_version(), "database.example.com/v1alpha1");
        assert!(b.composed_by("database.example.com/v1alpha1", "PostgreSQLInstance"));
        assert_eq!(b.crd_name(), "postgresqlinstances.database.example.com");
    }
}
