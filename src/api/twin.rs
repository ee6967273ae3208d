//! The namespaced twins of the managed kinds: `rds.aws.m.upbound.io` and `ec2.aws.m.upbound.io`,
//! the Crossplane v2 shape of the Upbound AWS provider. A twin has the settings
//! (`spec.forProvider`) and the status of its kind's storage version; only the managed-resource
//! fields differ:
//! - no `deletionPolicy`: `managementPolicies` alone say what paved may do (without `Delete`,
//!   deleting the object orphans the AWS resource);
//! - `writeConnectionSecretToRef` has a name only (the Secret is always in the object's
//!   namespace);
//! - `providerConfigRef` names a `kind` (`ClusterProviderConfig` or a `ProviderConfig` of the
//!   object's namespace), by default the ClusterProviderConfig `default`;
//! - references and selectors may name a `namespace`, which paved accepts only when it is the
//!   object's own.
//!
//! Each of those is a subset of the v1 shape paved already reads, so one Rust type reads both:
//! [`M<T>`] is an object of `T`'s twin, read into `T`, and the one controller of `T` reconciles
//! it. Its CRD is derived from `T`'s by [`twin_crd`], so the two schemas cannot drift apart.
//! One version only (`v1beta1`), so no conversion.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};

/// A managed kind with a namespaced twin in `TWIN_GROUP`.
pub trait Twinned: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> {
    /// The twin's API group, e.g. `rds.aws.m.upbound.io`.
    const TWIN_GROUP: &'static str;
}

/// The version every twin is served at.
pub const TWIN_VERSION: &str = "v1beta1";

/// An object of `T`'s namespaced twin (`<group>.m.upbound.io/v1beta1`), read into `T`: same
/// spec and status types, `T`'s twin as its API.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct M<T>(pub T);

impl<T> Deref for M<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for M<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Twinned> Resource for M<T> {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        T::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::TWIN_GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(TWIN_VERSION)
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Owned(format!("{}/{TWIN_VERSION}", T::TWIN_GROUP))
    }
    fn plural(_: &()) -> Cow<'_, str> {
        T::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

/// Serialized as `T` is, with the twin's apiVersion.
impl<T: Twinned + Serialize> Serialize for M<T> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "apiVersion".into(),
                serde_json::Value::String(Self::api_version(&()).into_owned()),
            );
        }
        v.serialize(ser)
    }
}

/// What an object of a managed kind or of its twin is read into: `T` itself.
pub trait Base<T> {
    fn base(&self) -> &T;
}

impl<T> Base<T> for M<T> {
    fn base(&self) -> &T {
        &self.0
    }
}

/// The API group of the rds kinds' twins.
pub const RDS_TWIN_GROUP: &str = "rds.aws.m.upbound.io";
/// The API group of the ec2 kinds' twins.
pub const EC2_TWIN_GROUP: &str = "ec2.aws.m.upbound.io";

/// `T` has a twin in `group`, and is its own base.
macro_rules! twinned {
    ($($kind:ty => $group:expr),* $(,)?) => {$(
        impl Twinned for $kind {
            const TWIN_GROUP: &'static str = $group;
        }
        impl Base<$kind> for $kind {
            fn base(&self) -> &$kind {
                self
            }
        }
    )*};
}

twinned!(
    super::Instance => RDS_TWIN_GROUP,
    super::SubnetGroup => RDS_TWIN_GROUP,
    super::ParameterGroup => RDS_TWIN_GROUP,
    super::SecurityGroup => EC2_TWIN_GROUP,
    super::SecurityGroupRule => EC2_TWIN_GROUP,
);

/// The twins' CRDs, one per managed kind, in the order of `paved crds`.
pub fn twin_crds() -> Vec<CustomResourceDefinition> {
    use kube::CustomResourceExt;
    let bases = [
        (super::instance::versioned_crd(), RDS_TWIN_GROUP, "v1beta3"),
        (super::SubnetGroup::crd(), RDS_TWIN_GROUP, "v1beta1"),
        (super::SecurityGroup::crd(), EC2_TWIN_GROUP, "v1beta1"),
        (super::SecurityGroupRule::crd(), EC2_TWIN_GROUP, "v1beta1"),
        (super::ParameterGroup::crd(), RDS_TWIN_GROUP, "v1beta1"),
    ];
    bases
        .iter()
        .filter_map(|(crd, group, storage)| twin_crd(crd, group, storage))
        .collect()
}

/// The twin's CRD, from the CRD of `T` (the version named `storage`'s schema and columns): the
/// twin group, one version `v1beta1`, and the managed-resource fields of the v2 shape (see the
/// module doc). `None` when `storage` is not one of its versions.
pub fn twin_crd(
    base: &CustomResourceDefinition,
    group: &str,
    storage: &str,
) -> Option<CustomResourceDefinition> {
    let mut crd = base.clone();
    let mut version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == storage)?
        .clone();
    version.name = TWIN_VERSION.into();
    version.storage = true;
    version.served = true;
    version.deprecated = None;
    version.deprecation_warning = None;
    let root = version.schema.as_mut()?.open_api_v3_schema.as_mut()?;
    let kind = &crd.spec.names.kind;
    root.description = Some(format!(
        "A {kind} managed by paved, in the namespaced Crossplane v2 shape of the Upbound AWS provider ({group}). Its spec.forProvider and status are those of the {storage} {kind} of the cluster-wide group. paved deletes the AWS resource with the object unless spec.managementPolicies leave out Delete."
    ));
    let spec = root.properties.as_mut()?.get_mut("spec")?;
    spec.description = Some(format!(
        "The desired {kind}: its settings (forProvider), what paved may do (managementPolicies), and with which AWS credentials (providerConfigRef)."
    ));
    twin_spec(spec);
    crd.spec.versions = vec![version];
    crd.spec.group = group.into();
    crd.spec.conversion = None;
    crd.metadata.name = Some(format!("{}.{group}", crd.spec.names.plural));
    crd.metadata.annotations = None;
    Some(crd)
}

/// The managed-resource fields of `spec` in the v2 shape.
fn twin_spec(spec: &mut JSONSchemaProps) {
    let Some(props) = spec.properties.as_mut() else {
        return;
    };
    props.remove("deletionPolicy");
    if let Some(pc) = props.get_mut("providerConfigRef") {
        if let Some(kind) = pc.properties.as_mut().and_then(|p| p.get_mut("kind")) {
            kind.enum_ = Some(vec![json("ClusterProviderConfig"), json("ProviderConfig")]);
            kind.description = Some(
                "ClusterProviderConfig, or ProviderConfig (aws.m.upbound.io) in this object's namespace."
                    .into(),
            );
        }
        pc.required = Some(vec!["kind".into(), "name".into()]);
        pc.default = Some(
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(
                serde_json::json!({"kind": "ClusterProviderConfig", "name": "default"}),
            ),
        );
        pc.description = Some(
            "The provider configuration with the AWS credentials and endpoint to use: by default the ClusterProviderConfig `default`."
                .into(),
        );
    }
    if let Some(w) = props.get_mut("writeConnectionSecretToRef") {
        if let Some(p) = w.properties.as_mut() {
            p.remove("namespace");
        }
        w.description =
            Some("The Secret, in this namespace, that receives the connection details.".into());
    }
    if let Some(fp) = props.get_mut("forProvider") {
        with_reference_namespaces(fp);
    }
}

fn json(s: &str) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON {
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(
        serde_json::Value::String(s.into()),
    )
}

/// Give every reference (`...Ref`, the items of `...Refs`) and selector (`...Selector`) of
/// forProvider the v2 `namespace` field.
fn with_reference_namespaces(fp: &mut JSONSchemaProps) {
    let Some(props) = fp.properties.as_mut() else {
        return;
    };
    for (name, field) in props.iter_mut() {
        // A reference has a policy, a selector matchControllerRef; a Secret's key selector
        // (masterPasswordSecretRef) is neither.
        let target = if name.ends_with("Refs") {
            field
                .items
                .as_mut()
                .and_then(|i| match i {
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => Some(s.as_mut()),
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schemas(_) => None,
                })
        } else if name.ends_with("Ref") || name.ends_with("Selector") {
            Some(field)
        } else {
            None
        };
        if let Some(p) = target.and_then(|t| t.properties.as_mut())
            && (p.contains_key("policy") || p.contains_key("matchControllerRef"))
        {
            p.insert(
                "namespace".into(),
                JSONSchemaProps {
                    type_: Some("string".into()),
                    description: Some(
                        "Namespace of the referenced objects. paved resolves references only in this object's own namespace: any other is refused."
                            .into(),
                    ),
                    ..Default::default()
                },
            );
        }
    }
}

/// The first reference or selector of `for_provider` (as JSON) that names a namespace other
/// than `own`: the field and the namespace it names.
pub fn foreign_reference(for_provider: &serde_json::Value, own: &str) -> Option<(String, String)> {
    let obj = for_provider.as_object()?;
    // Secret selectors (`...SecretRef`) are checked where the Secret is read.
    for (name, v) in obj.iter().filter(|(n, _)| !n.contains("Secret")) {
        let refs: Vec<&serde_json::Value> = if name.ends_with("Refs") {
            v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
        } else if name.ends_with("Ref") || name.ends_with("Selector") {
            vec![v]
        } else {
            continue;
        };
        for r in refs {
            if let Some(ns) = r.get("namespace").and_then(serde_json::Value::as_str)
                && !ns.is_empty()
                && ns != own
            {
                return Some((format!("spec.forProvider.{name}"), ns.to_string()));
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::api::SubnetGroup;
    use kube::CustomResourceExt;

    #[test]
    fn a_twin_reads_into_its_kind_and_keeps_its_api_version() {
        let m: M<SubnetGroup> = serde_json::from_value(serde_json::json!({
            "apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "SubnetGroup",
            "metadata": {"name": "net", "namespace": "team"},
            "spec": {"forProvider": {"region": "eu-west-1", "subnetIds": ["subnet-1"]},
                     "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "default"},
                     "writeConnectionSecretToRef": {"name": "s"}}
        }))
        .unwrap();
        assert_eq!(m.spec.for_provider.region, "eu-west-1");
        assert_eq!(
            M::<SubnetGroup>::api_version(&()),
            "rds.aws.m.upbound.io/v1beta1"
        );
        assert_eq!(M::<SubnetGroup>::plural(&()), "subnetgroups");
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["apiVersion"], "rds.aws.m.upbound.io/v1beta1");
        assert_eq!(back["kind"], "SubnetGroup");
    }

    #[test]
    fn the_twin_crd_has_the_v2_managed_fields() {
        let crd = twin_crd(&SubnetGroup::crd(), "rds.aws.m.upbound.io", "v1beta1").unwrap();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("subnetgroups.rds.aws.m.upbound.io")
        );
        assert_eq!(crd.spec.versions.len(), 1);
        let v = serde_json::to_value(&crd.spec.versions[0]).unwrap();
        let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert!(spec.get("deletionPolicy").is_none());
        assert!(
            spec["writeConnectionSecretToRef"]["properties"]
                .get("namespace")
                .is_none()
        );
        assert_eq!(
            spec["providerConfigRef"]["default"]["kind"],
            "ClusterProviderConfig"
        );
        assert_eq!(
            spec["forProvider"]["properties"]["subnetIdRefs"]["items"]["properties"]["namespace"]["type"],
            "string"
        );
        assert_eq!(
            spec["forProvider"]["properties"]["subnetIdSelector"]["properties"]["namespace"]["type"],
            "string"
        );
        assert!(twin_crd(&SubnetGroup::crd(), "rds.aws.m.upbound.io", "v9").is_none());
    }

    #[test]
    fn a_reference_to_another_namespace_is_found() {
        let fp = serde_json::json!({
            "region": "eu-west-1",
            "dbSubnetGroupNameRef": {"name": "net", "namespace": "team"},
            "vpcSecurityGroupIdRefs": [{"name": "a"}, {"name": "b", "namespace": "other"}],
        });
        assert_eq!(
            foreign_reference(&fp, "team"),
            Some((
                "spec.forProvider.vpcSecurityGroupIdRefs".into(),
                "other".into()
            ))
        );
        let own = serde_json::json!({
            "dbSubnetGroupNameSelector": {"namespace": "team", "matchControllerRef": true},
            "masterPasswordSecretRef": {"name": "pw", "key": "password", "namespace": "other"},
        });
        assert_eq!(foreign_reference(&own, "team"), None);
    }
}
