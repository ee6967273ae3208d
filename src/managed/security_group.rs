//! Security groups (`SecurityGroup`): the EC2 operations behind a small trait
//! ([`SecurityGroupApi`]), implemented with aws-sdk-ec2 ([`SdkEc2`]) and guarded by
//! [`Guarded`]. Observation is one paginated DescribeSecurityGroups per (ProviderConfig,
//! region) per poll; a group whose ID is not recorded yet is found in that listing by its
//! ownership tag (it is tagged at creation), so a restart never creates a second one.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::client::net_sdk_err;
use super::ec2_client::{PAGE_SIZE, SdkEc2, tag_spec, tags_from, tags_of};
use super::guard::{guarded_api, response_lacks};
use super::listing::{ListPage, Listed, Page};
use super::model::AwsError;

/// A security group as EC2 reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ec2SecurityGroup {
    pub id: String,
    pub arn: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub vpc_id: Option<String>,
    pub owner_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Listed for Ec2SecurityGroup {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// CreateSecurityGroup input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityGroupRequest {
    pub name: String,
    pub description: String,
    pub vpc_id: Option<String>,
    /// Tags put on at creation (ownership tags included).
    pub tags: BTreeMap<String, String>,
}

guarded_api! {
    /// The EC2 operations on security groups paved uses.
    pub trait SecurityGroupApi {
        /// One page of DescribeSecurityGroups over the account and region.
        ["DescribeSecurityGroups"]
        fn list_security_groups(&self, marker: Option<String>) -> ListPage<'_, Ec2SecurityGroup>;
        ["CreateSecurityGroup"]
        fn create_security_group<'a>(&'a self, req: &'a SecurityGroupRequest) -> BoxFuture<'a, Result<Ec2SecurityGroup, AwsError>>;
        ["DeleteSecurityGroup"]
        fn delete_security_group<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AwsError>>;
        ["CreateTags"]
        fn create_tags<'a>(&'a self, id: &'a str, tags: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<(), AwsError>>;
        ["DeleteTags"]
        fn delete_tags<'a>(&'a self, id: &'a str, keys: &'a [String]) -> BoxFuture<'a, Result<(), AwsError>>;
    }
}

fn from_sdk(g: &aws_sdk_ec2::types::SecurityGroup) -> Ec2SecurityGroup {
    let s = |v: Option<&str>| v.map(str::to_string);
    Ec2SecurityGroup {
        id: g.group_id().unwrap_or_default().to_string(),
        arn: s(g.security_group_arn()),
        name: s(g.group_name()),
        description: s(g.description()),
        vpc_id: s(g.vpc_id()),
        owner_id: s(g.owner_id()),
        tags: tags_from(g.tags()),
    }
}

impl SecurityGroupApi for SdkEc2 {
    fn list_security_groups(&self, marker: Option<String>) -> ListPage<'_, Ec2SecurityGroup> {
        Box::pin(async move {
            let out = self
                .client
                .describe_security_groups()
                .max_results(PAGE_SIZE)
                .set_next_token(marker)
                .send()
                .await
                .map_err(|e| net_sdk_err("DescribeSecurityGroups", &self.place, e))?;
            Ok(Page::new(
                out.security_groups().iter().map(from_sdk).collect(),
                out.next_token(),
            ))
        })
    }

    fn create_security_group<'a>(
        &'a self,
        r: &'a SecurityGroupRequest,
    ) -> BoxFuture<'a, Result<Ec2SecurityGroup, AwsError>> {
        const OP: &str = "CreateSecurityGroup";
        Box::pin(async move {
            let out = self
                .client
                .create_security_group()
                .group_name(&r.name)
                .description(&r.description)
                .set_vpc_id(r.vpc_id.clone())
                .tag_specifications(tag_spec(
                    aws_sdk_ec2::types::ResourceType::SecurityGroup,
                    &r.tags,
                ))
                .send()
                .await
                .map_err(|e| net_sdk_err(OP, &self.place, e))?;
            let Some(id) = out.group_id() else {
                return Err(response_lacks(OP, "GroupId"));
            };
            Ok(Ec2SecurityGroup {
                id: id.to_string(),
                arn: out.security_group_arn().map(str::to_string),
                name: Some(r.name.clone()),
                description: Some(r.description.clone()),
                vpc_id: r.vpc_id.clone(),
                owner_id: None,
                tags: r.tags.clone(),
            })
        })
    }

    fn delete_security_group<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .delete_security_group()
                .group_id(id)
                .send()
                .await
                .map_err(|e| net_sdk_err("DeleteSecurityGroup", &self.place, e))?;
            Ok(())
        })
    }

    fn create_tags<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .create_tags()
                .resources(id)
                .set_tags(Some(tags_of(tags)))
                .send()
                .await
                .map_err(|e| net_sdk_err("CreateTags", &self.place, e))?;
            Ok(())
        })
    }

    fn delete_tags<'a>(
        &'a self,
        id: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let tags = keys
                .iter()
                .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
                .collect();
            self.client
                .delete_tags()
                .resources(id)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| net_sdk_err("DeleteTags", &self.place, e))?;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// pure: finding the group, the request, the drift, status.atProvider

/// The description of a group whose spec sets none.
pub const DEFAULT_DESCRIPTION: &str = "Managed by paved";

/// The external-name of a group is its ID (`sg-...`, as in the Upbound provider) or, until the
/// ID is known, the group name paved derived (set before the create call, so a restart finds
/// the group it made).
pub fn is_group_id(external_name: &str) -> bool {
    external_name.starts_with("sg-")
}

/// The group name: forProvider.name, else the external-name paved derived.
pub fn group_name<'a>(
    fp: &'a crate::api::security_group::SecurityGroupParameters,
    external_name: &'a str,
) -> &'a str {
    fp.name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(external_name)
}

/// The group an external-name designates among `listed` (pure): by ID, or by name and VPC.
pub fn find<'a>(
    listed: &'a [Ec2SecurityGroup],
    external_name: &str,
    name: &str,
    vpc_id: Option<&str>,
) -> Option<&'a Ec2SecurityGroup> {
    if is_group_id(external_name) {
        return listed.iter().find(|g| g.id == external_name);
    }
    listed.iter().find(|g| {
        g.name.as_deref() == Some(name) && (vpc_id.is_none() || g.vpc_id.as_deref() == vpc_id)
    })
}

/// The CreateSecurityGroup request (pure).
pub fn request(
    name: &str,
    fp: &crate::api::security_group::SecurityGroupParameters,
    tags: BTreeMap<String, String>,
) -> SecurityGroupRequest {
    SecurityGroupRequest {
        name: name.to_string(),
        description: fp
            .description
            .clone()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string()),
        vpc_id: fp.vpc_id.clone().filter(|v| !v.is_empty()),
        tags,
    }
}

/// The fields that differ from AWS and cannot be changed (pure): name, description, VPC.
pub fn immutable_drift(want: &SecurityGroupRequest, have: &Ec2SecurityGroup) -> Vec<String> {
    let mut v = Vec::new();
    if have.name.as_deref().is_some_and(|n| n != want.name) {
        v.push(format!(
            "name (is {:?}, spec says {:?})",
            have.name.clone().unwrap_or_default(),
            want.name
        ));
    }
    if have
        .description
        .as_deref()
        .is_some_and(|d| d != want.description)
    {
        v.push(format!(
            "description (is {:?}, spec says {:?})",
            have.description.clone().unwrap_or_default(),
            want.description
        ));
    }
    if let Some(vpc) = &want.vpc_id
        && have.vpc_id.as_ref() != Some(vpc)
    {
        v.push(format!(
            "vpcId (is {:?}, spec says {vpc:?})",
            have.vpc_id.clone().unwrap_or_default()
        ));
    }
    v
}

/// The tags to add or change so that the group carries `want` (pure). Tags others put on it are
/// left alone.
pub fn missing_tags(
    want: &BTreeMap<String, String>,
    have: &Ec2SecurityGroup,
) -> BTreeMap<String, String> {
    super::network::tags_to_add(&have.tags, want)
}

/// status.atProvider of an observed group.
pub fn at_provider(g: &Ec2SecurityGroup) -> crate::api::security_group::SecurityGroupObservation {
    crate::api::security_group::SecurityGroupObservation {
        id: Some(g.id.clone()),
        arn: g.arn.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        vpc_id: g.vpc_id.clone(),
        owner_id: g.owner_id.clone(),
        tags_all: Some(g.tags.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::security_group::SecurityGroupParameters;

    #[test]
    fn found_by_id_or_by_name_in_its_vpc() {
        let g = |id: &str, name: &str, vpc: &str| Ec2SecurityGroup {
            id: id.into(),
            name: Some(name.into()),
            vpc_id: Some(vpc.into()),
            ..Default::default()
        };
        let listed = vec![g("sg-1", "db", "vpc-1"), g("sg-2", "db", "vpc-2")];
        assert_eq!(
            find(&listed, "sg-2", "x", None).map(|g| g.id.as_str()),
            Some("sg-2")
        );
        assert_eq!(
            find(&listed, "ns-db-1234", "db", Some("vpc-2")).map(|g| g.id.as_str()),
            Some("sg-2")
        );
        assert!(find(&listed, "ns-db-1234", "other", Some("vpc-1")).is_none());

        let fp = SecurityGroupParameters {
            region: "eu-west-1".into(),
            vpc_id: Some("vpc-1".into()),
            ..Default::default()
        };
        assert_eq!(group_name(&fp, "ns-db-1234"), "ns-db-1234");
        let req = request("ns-db-1234", &fp, BTreeMap::new());
        let mut have = g("sg-1", "ns-db-1234", "vpc-1");
        have.description = Some(DEFAULT_DESCRIPTION.into());
        assert!(immutable_drift(&req, &have).is_empty());
        have.vpc_id = Some("vpc-9".into());
        assert_eq!(immutable_drift(&req, &have).len(), 1);
        let want: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        assert_eq!(missing_tags(&want, &have), want);
        have.tags = want.clone();
        assert!(missing_tags(&want, &have).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// the kind on the lifecycle

mod kind {
    use kube::runtime::controller::Action;

    use super::{
        Ec2SecurityGroup, SecurityGroupApi, at_provider, find, group_name, immutable_drift,
        missing_tags, request,
    };
    use crate::api::managed::Policies;
    use crate::api::security_group::{SecurityGroup, SecurityGroupStatus};
    use crate::api::twin::Base;
    use crate::managed::error::Error;
    use crate::managed::group::{GroupKind, GroupObject, refuse_immutable};
    use crate::managed::kind::ExternalClient;
    use crate::managed::lifecycle::Flow;
    use crate::managed::model::AwsError;
    use crate::managed::network::{Net, NetGroup, check_group_name, managed_kind, tags_of};
    use crate::managed::outcome::{Blocked, Step};

    managed_kind!(
        SecurityGroup, SecurityGroupStatus,
        noun: "security group", metric: "security_group", prefix: "", check: check_group_name
    );

    fn vpc_unserved(obj: &SecurityGroup) -> Option<Blocked> {
        let fp = &obj.spec.for_provider;
        (fp.vpc_id.as_deref().is_none_or(str::is_empty)
            && (fp.vpc_id_ref.is_some() || fp.vpc_id_selector.is_some()))
        .then(|| {
            Blocked::new(
                "UnsupportedReference",
                "vpcIdRef/vpcIdSelector name ec2 VPC objects, which paved does not serve: set spec.forProvider.vpcId",
            )
        })
    }

    impl NetGroup for SecurityGroup {
        type Found = Ec2SecurityGroup;
        fn id_and_tags(
            found: &Ec2SecurityGroup,
        ) -> (&str, &std::collections::BTreeMap<String, String>) {
            (&found.id, &found.tags)
        }
        async fn find<K: ExternalClient + Base<Self>>(
            flow: &Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Option<Ec2SecurityGroup>, AwsError> {
            let poll = flow.poll();
            net.security_groups
                .ensure_listed(poll, |m| net.clients.ec2.list_security_groups(m))
                .await?;
            let fp = &flow.obj.base().spec.for_provider;
            let name = group_name(fp, id);
            let listed = net
                .security_groups
                .find(|g| g.id == id || g.name.as_deref() == Some(name));
            Ok(find(&listed, id, name, fp.vpc_id.as_deref()).cloned())
        }
        async fn remove(net: &Net, aws_id: &str) -> Result<(), AwsError> {
            net.clients.ec2.delete_security_group(aws_id).await
        }
        fn forget(net: &Net, aws_id: &str) {
            net.security_groups.record(aws_id, None);
        }
        fn creatable(id: &str) -> bool {
            !super::is_group_id(id)
        }
    }

    impl GroupKind for SecurityGroup {
        async fn create<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Step<Ec2SecurityGroup>, Error> {
            if let Some(b) = vpc_unserved(flow.obj.base()) {
                return Ok(flow.block(b, Action::await_change()));
            }
            let fp = &flow.obj.base().spec.for_provider;
            let tags = tags_of(&flow.obj, fp.tags.as_ref());
            let req = request(group_name(fp, id), fp, tags);
            match net.clients.ec2.create_security_group(&req).await {
                Ok(g) => {
                    net.security_groups.record(&g.id, Some(g.clone()));
                    Ok(Step::Go(g))
                }
                Err(e) => Ok(flow.aws_failure(e)),
            }
        }

        async fn update<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            policies: &Policies,
            id: &str,
            mut g: Ec2SecurityGroup,
        ) -> Result<Step<Ec2SecurityGroup>, Error> {
            let fp = &flow.obj.base().spec.for_provider;
            let want_tags = tags_of(&flow.obj, fp.tags.as_ref());
            let req = request(group_name(fp, id), fp, want_tags.clone());
            let refused = immutable_drift(&req, &g);
            if !refused.is_empty() {
                flow.status.at_provider = Some(at_provider(&g));
            }
            if let Some(step) = refuse_immutable(flow, &refused) {
                return Ok(step);
            }
            let add = missing_tags(&want_tags, &g);
            if !add.is_empty() && policies.update {
                if let Err(e) = net.clients.ec2.create_tags(&g.id, &add).await {
                    return Ok(flow.aws_failure(e));
                }
                g.tags.extend(add);
                net.security_groups.record(&g.id, Some(g.clone()));
            }
            Ok(Step::Go(g))
        }

        fn observed(g: Ec2SecurityGroup, status: &mut SecurityGroupStatus) -> Option<String> {
            status.at_provider = Some(at_provider(&g));
            None
        }
    }
}
