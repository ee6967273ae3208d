//! `SecurityGroup` (`ec2.aws.upbound.io/v1beta1`): an EC2 VPC security group, in the shape of
//! the Upbound AWS provider. The external-name is the group ID (`sg-...`) AWS assigns; until it
//! is known, the group is found by paved's ownership tags, so that a restart never creates a
//! second one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::reference::{Reference, Selector};
use super::shape::{managed_spec, managed_status};

managed_spec! {
    /// An EC2 security group in a VPC. Its rules are SecurityGroupRule objects.
    pub struct SecurityGroupSpec;
    kube(
        doc = "An AWS EC2 VPC security group managed by paved (Upbound AWS provider shape). The crossplane.io/external-name annotation is the group ID; its rules are SecurityGroupRule objects.",
        group = "ec2.aws.upbound.io",
        version = "v1beta1",
        kind = "SecurityGroup",
        plural = "securitygroups",
        singular = "securitygroup",
        status = "SecurityGroupStatus"
    );
    columns();

    /// The desired state of the security group.
    for_provider: SecurityGroupParameters,

    /// What happens to the security group when this object is deleted: Delete (the default) or
    /// Orphan.
    deletion_policy,

    /// What paved may do with the security group, as in Crossplane (`["*"]` by default).
    management_policies,

    /// The ProviderConfig with the AWS credentials and endpoint to use (`default` by default).
    provider_config_ref,

    /// Accepted for compatibility: a security group has no connection details.
    write_connection_secret_to_ref,
}

/// The security group settings, named as in the Upbound AWS provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::preserve_unknown_fields)]
pub struct SecurityGroupParameters {
    /// AWS region, for example `eu-west-1`.
    #[schemars(length(min = 1), regex(pattern = super::common::AWS_REGION))]
    pub region: String,

    /// The group name. Defaults to one derived from the namespace and name of this object.
    /// Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// The description of the group. Defaults to `Managed by paved`. Cannot be changed after
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// The VPC to create the group in. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,

    /// Reference to an ec2 VPC object to populate vpcId. paved does not serve the VPC kind:
    /// use vpcId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id_ref: Option<Reference>,

    /// Selector for an ec2 VPC object to populate vpcId. paved does not serve the VPC kind:
    /// use vpcId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id_selector: Option<Selector>,

    /// Revoke the group's rules before deleting it (needed when another group's rules refer to
    /// this one). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_rules_on_delete: Option<bool>,

    /// Tags to put on the group, besides the ownership tags paved adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,

    /// Upbound provider fields paved does not implement. They are kept, and reported in the
    /// Synced condition rather than silently ignored.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

managed_status! {
    /// What paved observed about the security group.
    pub struct SecurityGroupStatus;
    /// The security group as AWS reports it.
    at_provider: SecurityGroupObservation,
    /// Ready: True once the group exists. Synced: whether the last reconcile succeeded.
    conditions,
}

/// The observed security group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupObservation {
    /// The group ID (`sg-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Amazon Resource Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The AWS account that owns the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Tags on the group, paved's ownership tags included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_all: Option<BTreeMap<String, String>>,
}
