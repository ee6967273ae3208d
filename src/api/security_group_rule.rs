//! `SecurityGroupRule` (`ec2.aws.upbound.io/v1beta1`): one ingress or egress rule of an EC2
//! security group, in the shape of the Upbound AWS provider. The external-name is the rule ID
//! (`sgr-...`) AWS assigns; until it is known, the rule is found by what it allows, so that a
//! restart never authorizes it twice.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::reference::{Reference, Selector};
use super::shape::{managed_spec, managed_status};

managed_spec! {
    /// An ingress or egress rule of a security group.
    pub struct SecurityGroupRuleSpec;
    kube(
        doc = "An ingress or egress rule of an AWS EC2 security group, managed by paved (Upbound AWS provider shape). The crossplane.io/external-name annotation is the rule ID.",
        group = "ec2.aws.upbound.io",
        version = "v1beta1",
        kind = "SecurityGroupRule",
        plural = "securitygrouprules",
        singular = "securitygrouprule",
        status = "SecurityGroupRuleStatus"
    );
    columns();

    /// The desired rule.
    for_provider: SecurityGroupRuleParameters,

    /// What happens to the rule when this object is deleted: Delete (the default: the rule is
    /// revoked) or Orphan.
    deletion_policy,

    /// What paved may do with the rule, as in Crossplane (`["*"]` by default).
    management_policies,

    /// The ProviderConfig with the AWS credentials and endpoint to use (`default` by default).
    provider_config_ref,

    /// Accepted for compatibility: a rule has no connection details.
    write_connection_secret_to_ref,
}

/// The rule, named as in the Upbound AWS provider. A rule cannot be changed in place: every
/// field except description is immutable (change it by replacing the object).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::preserve_unknown_fields)]
pub struct SecurityGroupRuleParameters {
    /// AWS region, for example `eu-west-1`.
    #[schemars(length(min = 1), regex(pattern = super::common::AWS_REGION))]
    pub region: String,

    /// `ingress` or `egress`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(ingress|egress)$"))]
    pub type_: Option<String>,

    /// Start of the port range (or ICMP type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,

    /// End of the port range (or ICMP code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,

    /// `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (all) or a protocol number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,

    /// IPv4 CIDR ranges the rule allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_blocks: Option<Vec<String>>,

    /// IPv6 CIDR ranges the rule allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr_blocks: Option<Vec<String>>,

    /// The security group the rule belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,

    /// Reference to a SecurityGroup, in this namespace, to populate securityGroupId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id_ref: Option<Reference>,

    /// Selector for a SecurityGroup to populate securityGroupId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id_selector: Option<Selector>,

    /// The security group whose members the rule allows (instead of CIDR ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_security_group_id: Option<String>,

    /// Reference to a SecurityGroup, in this namespace, to populate sourceSecurityGroupId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_security_group_id_ref: Option<Reference>,

    /// Selector for a SecurityGroup to populate sourceSecurityGroupId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_security_group_id_selector: Option<Selector>,

    /// Allow the members of the rule's own security group.
    #[serde(default, rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_: Option<bool>,

    /// Description of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Upbound provider fields paved does not implement (for example prefixListIds). They are
    /// kept, and reported in the Synced condition rather than silently ignored.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: std::collections::BTreeMap<String, serde_json::Value>,
}

managed_status! {
    /// What paved observed about the rule.
    pub struct SecurityGroupRuleStatus;
    /// The rule as AWS reports it.
    at_provider: SecurityGroupRuleObservation,
    /// Ready: True once the rule exists. Synced: whether the last reconcile succeeded.
    conditions,
}

/// The observed rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRuleObservation {
    /// The rule ID (`sgr-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The rule ID (`sgr-...`), as the Upbound provider also reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_rule_id: Option<String>,
    /// The security group the rule belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    /// Every EC2 rule this object stands for (one per CIDR block or source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<String>,
}
