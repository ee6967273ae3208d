//! `SubnetGroup` (`rds.aws.upbound.io/v1beta1`): an RDS DB subnet group, in the shape of the
//! Upbound AWS provider. The external-name is the group name.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::reference::{Reference, Selector};
use super::shape::{managed_spec, managed_status};

managed_spec! {
    /// An RDS DB subnet group: the VPC subnets an RDS instance may be placed in.
    pub struct SubnetGroupSpec;
    kube(
        doc = "An AWS RDS DB subnet group managed by paved (Upbound AWS provider shape). The crossplane.io/external-name annotation is the group name.",
        group = "rds.aws.upbound.io",
        version = "v1beta1",
        kind = "SubnetGroup",
        plural = "subnetgroups",
        singular = "subnetgroup",
        status = "SubnetGroupStatus"
    );
    columns();

    /// The desired state of the DB subnet group.
    for_provider: SubnetGroupParameters,

    /// What happens to the DB subnet group when this object is deleted: Delete (the default) or
    /// Orphan.
    deletion_policy,

    /// What paved may do with the DB subnet group, as in Crossplane (`["*"]` by default).
    management_policies,

    /// The ProviderConfig with the AWS credentials and endpoint to use (`default` by default).
    provider_config_ref,

    /// Accepted for compatibility: a DB subnet group has no connection details.
    write_connection_secret_to_ref,
}

/// The DB subnet group settings, named as in the Upbound AWS provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::preserve_unknown_fields)]
pub struct SubnetGroupParameters {
    /// AWS region, for example `eu-west-1`.
    #[schemars(length(min = 1), regex(pattern = super::common::AWS_REGION))]
    pub region: String,

    /// The description of the DB subnet group. Defaults to `Managed by paved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// The VPC subnet IDs (in at least two availability zones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_ids: Option<Vec<String>>,

    /// References to ec2 Subnet objects to populate subnetIds. paved does not serve the Subnet
    /// kind: use subnetIds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id_refs: Option<Vec<Reference>>,

    /// Selector for ec2 Subnet objects to populate subnetIds. paved does not serve the Subnet
    /// kind: use subnetIds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id_selector: Option<Selector>,

    /// Tags to put on the DB subnet group, besides the ownership tags paved adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,

    /// Upbound provider fields paved does not implement. They are kept, and reported in the
    /// Synced condition rather than silently ignored.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

managed_status! {
    /// What paved observed about the DB subnet group.
    pub struct SubnetGroupStatus;
    /// The DB subnet group as AWS reports it.
    at_provider: SubnetGroupObservation,
    /// Ready: True once the group exists. Synced: whether the last reconcile succeeded.
    conditions,
}

/// The observed DB subnet group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetGroupObservation {
    /// The group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Amazon Resource Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The VPC of the subnets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_ids: Option<Vec<String>>,
    /// Tags on the group, paved's ownership tags included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_all: Option<BTreeMap<String, String>>,
}
