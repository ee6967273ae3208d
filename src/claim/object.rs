//! A claim of any served kind ([`ServedKind`]: the built-in `PostgreSQLInstance`, an XRD's
//! claim kind, a v2 XRD's namespaced XR kind), as the cache holds it (a `DynamicObject`), with
//! typed accessors for the fields paved manages, and how it is presented to Compositions: as
//! Crossplane presents the XR.

use std::borrow::Cow;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::PostgreSQLInstanceStatus;
use crate::api::claim::{CompositeDeletePolicy, CompositionSelector, CompositionUpdatePolicy};
use crate::api::common::NameReference;
use crate::xrd::ServedKind;

/// The fields of a claim's spec that paved manages, read from wherever its kind keeps them
/// (v2: the Composition choice under `spec.crossplane`), with the XRD's defaults and its
/// enforced Composition applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ManagedSpec {
    pub composition_ref: Option<NameReference>,
    pub composition_selector: Option<CompositionSelector>,
    pub composition_update_policy: Option<CompositionUpdatePolicy>,
    pub composition_revision_ref: Option<NameReference>,
    pub composite_delete_policy: Option<CompositeDeletePolicy>,
    pub write_connection_secret_to_ref: Option<NameReference>,
}

/// A claim with its kind.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    pub obj: Arc<DynamicObject>,
    pub kind: Arc<ServedKind>,
    pub spec: ManagedSpec,
    pub status: Option<PostgreSQLInstanceStatus>,
}

fn field<T: DeserializeOwned>(v: Option<&Value>) -> Option<T> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl ManagedSpec {
    /// Read the managed fields of a claim of `kind` from its body.
    pub fn read(kind: &ServedKind, data: &Value) -> Self {
        let spec = data.get("spec");
        let choice = if kind.v2 {
            spec.and_then(|s| s.get("crossplane"))
        } else {
            spec
        };
        let mut out = Self {
            composition_ref: field(choice.and_then(|c| c.get("compositionRef"))),
            composition_selector: field(choice.and_then(|c| c.get("compositionSelector"))),
            composition_update_policy: field(choice.and_then(|c| c.get("compositionUpdatePolicy"))),
            composition_revision_ref: field(choice.and_then(|c| c.get("compositionRevisionRef"))),
            composite_delete_policy: field(spec.and_then(|s| s.get("compositeDeletePolicy"))),
            write_connection_secret_to_ref: field(
                spec.and_then(|s| s.get("writeConnectionSecretToRef")),
            ),
        };
        if let Some(enforced) = &kind.enforced_composition {
            out.composition_ref = Some(NameReference {
                name: enforced.clone(),
            });
        } else if out.composition_ref.is_none()
            && out.composition_selector.is_none()
            && let Some(default) = &kind.default_composition
        {
            out.composition_ref = Some(NameReference {
                name: default.clone(),
            });
        }
        if out.composite_delete_policy.is_none() {
            out.composite_delete_policy = kind.default_delete_policy;
        }
        if out.composition_update_policy.is_none() {
            out.composition_update_policy = kind.default_update_policy;
        }
        out
    }
}

impl Claim {
    pub fn new(obj: Arc<DynamicObject>, kind: Arc<ServedKind>) -> Self {
        let spec = ManagedSpec::read(&kind, &obj.data);
        let status = obj
            .data
            .get("status")
            .filter(|s| !s.is_null())
            .and_then(|s| match serde_json::from_value(s.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "claim status unreadable; starting from an empty one");
                    None
                }
            });
        Self {
            obj,
            kind,
            spec,
            status,
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        self.kind.api_resource()
    }

    /// The claim as Compositions read it: its own fields, plus what Crossplane's XR carries:
    /// `spec.claimRef`, the `crossplane.io/claim-name`, `claim-namespace` and `composite`
    /// labels, `spec.compositionRef` (the Composition chosen) and `spec.resourceRefs`. For a v2
    /// kind, the composition fields go under `spec.crossplane` as they do there.
    pub fn as_composite(
        &self,
        composition: Option<&str>,
        resource_refs: &[crate::api::common::ObjectReference],
    ) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(&*self.obj)?;
        v["apiVersion"] = json!(self.kind.api_version());
        v["kind"] = json!(self.kind.kind);
        let name = self.name_any();
        let ns = self.namespace().unwrap_or_default();
        if !v["metadata"]["labels"].is_object() {
            v["metadata"]["labels"] = json!({});
        }
        let labels = &mut v["metadata"]["labels"];
        for (k, val) in [
            ("crossplane.io/composite", name.as_str()),
            ("crossplane.io/claim-name", name.as_str()),
            ("crossplane.io/claim-namespace", ns.as_str()),
        ] {
            if labels.get(k).is_none() {
                labels[k] = json!(val);
            }
        }
        if !v["spec"].is_object() {
            v["spec"] = json!({});
        }
        let refs = serde_json::to_value(resource_refs)?;
        let spec = &mut v["spec"];
        if self.kind.v2 {
            if !spec["crossplane"].is_object() {
                spec["crossplane"] = json!({});
            }
            let xp = &mut spec["crossplane"];
            if let Some(c) = composition {
                xp["compositionRef"] = json!({"name": c});
            }
            xp["resourceRefs"] = refs;
        } else {
            spec["claimRef"] = json!({
                "apiVersion": self.kind.api_version(),
                "kind": self.kind.kind,
                "name": name,
                "namespace": ns,
            });
            if let Some(c) = composition
                && spec.get("compositionRef").is_none()
            {
                spec["compositionRef"] = json!({"name": c});
            }
            spec["resourceRefs"] = refs;
        }
        Ok(v)
    }
}

impl Resource for Claim {
    type DynamicType = ApiResource;
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.obj.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut Arc::make_mut(&mut self.obj).metadata
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kind(v2: bool) -> ServedKind {
        ServedKind {
            xrd: "xsqls.db.example.org".into(),
            group: "db.example.org".into(),
            version: "v1alpha1".into(),
            kind: if v2 { "XSQL" } else { "SQL" }.into(),
            plural: "sqls".into(),
            versions: vec!["v1alpha1".into()],
            xr_kind: "XSQL".into(),
            v2,
            ..ServedKind::default()
        }
    }

    fn claim(kind: ServedKind, body: Value) -> Claim {
        Claim::new(
            Arc::new(serde_json::from_value(body).unwrap()),
            Arc::new(kind),
        )
    }

    #[test]
    fn managed_fields_are_read_where_the_kind_keeps_them() {
        let c = claim(
            kind(false),
            json!({"apiVersion": "db.example.org/v1alpha1", "kind": "SQL",
                "metadata": {"name": "a", "namespace": "t"},
                "spec": {"compositionRef": {"name": "c1"}, "compositeDeletePolicy": "Foreground",
                         "writeConnectionSecretToRef": {"name": "s"}, "size": "small"},
                "status": {"compositionRef": {"name": "c0"}}}),
        );
        assert_eq!(c.spec.composition_ref.as_ref().unwrap().name, "c1");
        assert_eq!(
            c.spec.composite_delete_policy,
            Some(CompositeDeletePolicy::Foreground)
        );
        assert_eq!(c.spec.write_connection_secret_to_ref.unwrap().name, "s");
        assert_eq!(
            c.status.unwrap().composition_ref.unwrap().name,
            "c0",
            "status read"
        );

        let v2 = claim(
            kind(true),
            json!({"apiVersion": "db.example.org/v1alpha1", "kind": "XSQL",
                "metadata": {"name": "a", "namespace": "t"},
                "spec": {"crossplane": {"compositionSelector": {"matchLabels": {"p": "aws"}}}}}),
        );
        assert_eq!(
            v2.spec.composition_selector.unwrap().match_labels["p"],
            "aws"
        );

        let mut k = kind(false);
        k.default_composition = Some("dflt".into());
        k.default_delete_policy = Some(CompositeDeletePolicy::Foreground);
        let d = claim(k.clone(), json!({"metadata": {"name": "a"}, "spec": {}}));
        assert_eq!(d.spec.composition_ref.unwrap().name, "dflt");
        assert_eq!(
            d.spec.composite_delete_policy,
            Some(CompositeDeletePolicy::Foreground)
        );
        k.enforced_composition = Some("forced".into());
        let e = claim(
            k,
            json!({"metadata": {"name": "a"}, "spec": {"compositionRef": {"name": "mine"}}}),
        );
        assert_eq!(e.spec.composition_ref.unwrap().name, "forced");
    }

    #[test]
    fn the_claim_is_presented_as_crossplane_presents_the_xr() {
        let c = claim(
            kind(false),
            json!({"apiVersion": "db.example.org/v1alpha1", "kind": "SQL",
                "metadata": {"name": "orders", "namespace": "shop", "labels": {"team": "a"}},
                "spec": {"size": "small"}}),
        );
        let refs = vec![crate::api::common::ObjectReference {
            api_version: "rds.aws.upbound.io/v1beta1".into(),
            kind: "Instance".into(),
            name: "orders-db".into(),
            namespace: Some("shop".into()),
        }];
        let v = c.as_composite(Some("comp"), &refs).unwrap();
        assert_eq!(
            v["spec"]["claimRef"],
            json!({"apiVersion": "db.example.org/v1alpha1", "kind": "SQL", "name": "orders", "namespace": "shop"})
        );
        assert_eq!(
            v["metadata"]["labels"]["crossplane.io/claim-name"],
            "orders"
        );
        assert_eq!(
            v["metadata"]["labels"]["crossplane.io/claim-namespace"],
            "shop"
        );
        assert_eq!(v["metadata"]["labels"]["crossplane.io/composite"], "orders");
        assert_eq!(v["metadata"]["labels"]["team"], "a");
        assert_eq!(v["spec"]["compositionRef"]["name"], "comp");
        assert_eq!(v["spec"]["resourceRefs"][0]["name"], "orders-db");
        assert_eq!(v["spec"]["size"], "small");

        let x = claim(
            kind(true),
            json!({"metadata": {"name": "o", "namespace": "shop"}, "spec": {}}),
        );
        let v = x.as_composite(Some("comp"), &[]).unwrap();
        assert_eq!(v["spec"]["crossplane"]["compositionRef"]["name"], "comp");
        assert!(v["spec"].get("claimRef").is_none());
        assert_eq!(v["kind"], "XSQL");
    }
}
