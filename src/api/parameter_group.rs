//! `ParameterGroup` (`rds.aws.upbound.io/v1beta1`): an RDS DB parameter group, in the shape of
//! the Upbound AWS provider. The external-name is the group name.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shape::{managed_spec, managed_status};

managed_spec! {
    /// An RDS DB parameter group: engine settings an RDS instance uses.
    pub struct ParameterGroupSpec;
    kube(
        doc = "An AWS RDS DB parameter group managed by paved (Upbound AWS provider shape). The crossplane.io/external-name annotation is the group name.",
        group = "rds.aws.upbound.io",
        version = "v1beta1",
        kind = "ParameterGroup",
        plural = "parametergroups",
        singular = "parametergroup",
        status = "ParameterGroupStatus"
    );
    columns();

    /// The desired state of the DB parameter group.
    for_provider: ParameterGroupParameters,

    /// What happens to the DB parameter group when this object is deleted: Delete (the default)
    /// or Orphan.
    deletion_policy,

    /// What paved may do with the DB parameter group, as in Crossplane (`["*"]` by default).
    management_policies,

    /// The ProviderConfig with the AWS credentials and endpoint to use (`default` by default).
    provider_config_ref,

    /// Accepted for compatibility: a DB parameter group has no connection details.
    write_connection_secret_to_ref,
}

/// The DB parameter group settings, named as in the Upbound AWS provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::preserve_unknown_fields)]
pub struct ParameterGroupParameters {
    /// AWS region, for example `eu-west-1`.
    #[schemars(length(min = 1), regex(pattern = super::common::AWS_REGION))]
    pub region: String,

    /// The parameter group family, for example `postgres16`. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,

    /// The description of the DB parameter group. Defaults to `Managed by paved`. Cannot be
    /// changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Parameters to set. Parameters not listed keep the family's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<Vec<Parameter>>,

    /// Tags to put on the DB parameter group, besides the ownership tags paved adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,

    /// Upbound provider fields paved does not implement. They are kept, and reported in the
    /// Synced condition rather than silently ignored.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// One DB parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// The parameter name, for example `log_min_duration_statement`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The value, as a string.
    pub value: String,
    /// `immediate` (the default for dynamic parameters) or `pending-reboot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_method: Option<String>,
}

managed_status! {
    /// What paved observed about the DB parameter group.
    pub struct ParameterGroupStatus;
    /// The DB parameter group as AWS reports it.
    at_provider: ParameterGroupObservation,
    /// Ready: True once the group exists with its parameters. Synced: whether the last
    /// reconcile succeeded.
    conditions,
}

/// The observed DB parameter group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParameterGroupObservation {
    /// The group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Amazon Resource Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags on the group, paved's ownership tags included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_all: Option<BTreeMap<String, String>>,
}
