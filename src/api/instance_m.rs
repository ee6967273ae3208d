//! `Instance` (`rds.aws.m.upbound.io/v1beta1`): the namespaced twin of
//! [`super::instance`] in the Crossplane v2 shape of the Upbound provider. Same settings
//! (forProvider and status as `rds.aws.upbound.io/v1beta3`, singleton blocks as objects); the
//! managed-resource fields differ:
//! - no `deletionPolicy`: `managementPolicies` alone says what paved may do (without `Delete`,
//!   deleting the object orphans the RDS instance);
//! - `writeConnectionSecretToRef` has a name only (the Secret is always in the object's
//!   namespace);
//! - `providerConfigRef` names a `kind` (`ProviderConfig`, namespaced, or
//!   `ClusterProviderConfig`) besides the name.
//!
//! One version only, so no conversion. The generic managed lifecycle reconciles it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::instance::{InstanceParameters, InstanceStatus};
pub use super::managed::ManagementAction;

/// An AWS RDS database instance managed by paved, namespaced (Crossplane v2 shape).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "An AWS RDS database instance managed by paved, in the namespaced Crossplane v2 shape of the Upbound AWS provider. paved creates it, keeps it in line with spec.forProvider, publishes its credentials into a Secret of its namespace, and deletes it unless spec.managementPolicies leaves out Delete.",
    group = "rds.aws.m.upbound.io",
    version = "v1beta1",
    kind = "Instance",
    plural = "instances",
    singular = "instance",
    namespaced,
    status = "InstanceStatus",
    category = "managed",
    category = "aws",
    category = "paved",
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type=='Synced')].status"}"#,
    printcolumn = r#"{"name":"EXTERNAL-NAME","type":"string","jsonPath":".metadata.annotations.crossplane\\.io/external-name"}"#,
    printcolumn = r#"{"name":"STATUS","type":"string","jsonPath":".status.atProvider.status"}"#,
    printcolumn = r#"{"name":"ADDRESS","type":"string","jsonPath":".status.atProvider.address","priority":1}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    /// The desired state of the RDS instance. Only the fields you set are enforced; values AWS
    /// chooses by default are reported in status.atProvider and left alone.
    #[schemars(schema_with = "super::instance::for_provider_v1beta3")]
    pub for_provider: InstanceParameters,

    /// What paved may do with the RDS instance: `["*"]` (the default) for everything;
    /// `["Observe"]` to only observe an existing instance named by the
    /// crossplane.io/external-name annotation; or a set of Observe, Create, Update, Delete,
    /// LateInitialize. Without Delete, deleting this object orphans the RDS instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policies: Option<Vec<ManagementAction>>,

    /// The provider configuration with the AWS credentials and endpoint to use. Defaults to the
    /// ClusterProviderConfig `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_config_ref: Option<TypedProviderConfigReference>,

    /// The Secret, in this namespace, that receives the connection details: username, password,
    /// address, host, port, endpoint, dbname (when set) and uri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<LocalSecretName>,
}

/// A provider configuration by kind and name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypedProviderConfigReference {
    /// `ProviderConfig` (in this namespace) or `ClusterProviderConfig`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the provider configuration.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A Secret in the object's own namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalSecretName {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn v2_shape_reads_and_refuses_deletion_policy_in_the_schema() {
        let i: Instance = serde_json::from_value(serde_json::json!({
            "apiVersion": "rds.aws.m.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {"name": "db", "namespace": "team"},
            "spec": {
                "forProvider": {"region": "eu-west-1", "blueGreenUpdate": {"enabled": true}},
                "managementPolicies": ["Observe", "Create"],
                "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "default"},
                "writeConnectionSecretToRef": {"name": "db-conn"}
            }
        }))
        .unwrap();
        assert_eq!(i.spec.for_provider.region, "eu-west-1");
        assert_eq!(
            i.spec.provider_config_ref.as_ref().map(|r| r.kind.as_str()),
            Some("ClusterProviderConfig")
        );
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(Instance::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert!(spec["properties"].get("deletionPolicy").is_none());
        assert_eq!(
            spec["properties"]["forProvider"]["properties"]["blueGreenUpdate"]["type"],
            "object"
        );
        assert!(
            spec["properties"]["writeConnectionSecretToRef"]["properties"]
                .get("namespace")
                .is_none()
        );
    }
}
