//! The EC2 client of the network kinds: aws-sdk-ec2 built from the same resolved settings as
//! the RDS client of a ProviderConfig and region ([`super::client::sdk_config`]), and its error
//! place in messages (errors go through [`super::client::net_sdk_err`]). The operations are in [`super::security_group`] and
//! [`super::security_group_rule`].

use std::collections::BTreeMap;

use super::client::{Place, StaticCredentials, sdk_config};

/// Page size of DescribeSecurityGroups and DescribeSecurityGroupRules (the EC2 maximum).
pub const PAGE_SIZE: i32 = 1000;

/// The EC2 operations paved uses, over aws-sdk-ec2.
#[derive(Clone, Debug)]
pub struct SdkEc2 {
    pub client: aws_sdk_ec2::Client,
    /// Named by error messages (a timeout says whom paved waited for).
    pub place: Place,
}

impl SdkEc2 {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ec2::Client::new(config),
            place: Place::of(config, "EC2"),
        }
    }
}

/// Build an aws-sdk-ec2 client for one region, with the endpoint and credentials the RDS
/// client of the same ProviderConfig uses (and, like it, without the SDK's own retries).
pub async fn sdk_client(
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<StaticCredentials>,
    timeout: std::time::Duration,
) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(http, region, endpoint, credentials, timeout).await)
}

pub(crate) fn tags_of(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tags_from(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    super::client::tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// A TagSpecification for a create call.
pub(crate) fn tag_spec(
    resource: aws_sdk_ec2::types::ResourceType,
    tags: &BTreeMap<String, String>,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags_of(tags)))
        .build()
}
