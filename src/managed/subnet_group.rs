//! DB subnet groups (`SubnetGroup`): the RDS operations behind a small trait
//! ([`SubnetGroupApi`]), implemented with aws-sdk-rds on [`SdkRds`] and guarded by
//! [`Guarded`]. Observation is one paginated DescribeDBSubnetGroups per (ProviderConfig,
//! region) per poll ([`super::listing::Listing`]).

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::client::{SdkRds, net_sdk_err, rds_tags_from, rds_tags_of};
use super::guard::{guarded_api, response_lacks};
use super::listing::{ListPage, Listed, Page};
use super::model::AwsError;

/// Page size of DescribeDBSubnetGroups (the RDS maximum).
pub const PAGE_SIZE: i32 = 100;

/// A DB subnet group as RDS reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbSubnetGroup {
    pub name: String,
    pub arn: Option<String>,
    pub description: Option<String>,
    pub vpc_id: Option<String>,
    pub status: Option<String>,
    pub subnet_ids: Vec<String>,
}

impl Listed for DbSubnetGroup {
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// CreateDBSubnetGroup / ModifyDBSubnetGroup input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetGroupRequest {
    pub name: String,
    pub description: String,
    pub subnet_ids: Vec<String>,
    /// Tags (create only; ownership tags included).
    pub tags: BTreeMap<String, String>,
}

guarded_api! {
    /// The RDS operations on DB subnet groups paved uses.
    pub trait SubnetGroupApi {
        /// One page of DescribeDBSubnetGroups over the account and region.
        ["DescribeDBSubnetGroups"]
        fn list_subnet_groups(&self, marker: Option<String>) -> ListPage<'_, DbSubnetGroup>;
        ["CreateDBSubnetGroup"]
        fn create_subnet_group<'a>(&'a self, req: &'a SubnetGroupRequest) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>>;
        /// Replace the description and the subnets.
        ["ModifyDBSubnetGroup"]
        fn modify_subnet_group<'a>(&'a self, req: &'a SubnetGroupRequest) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>>;
        ["DeleteDBSubnetGroup"]
        fn delete_subnet_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>>;
        /// The tags of an RDS resource (DescribeDBSubnetGroups does not return them): proves
        /// ownership before a change or a delete.
        ["ListTagsForResource"]
        fn rds_tags<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>>;
        /// Add (or overwrite) tags of an RDS resource (a re-adopted group gets this object's
        /// ownership tags).
        ["AddTagsToResource"]
        fn add_rds_tags<'a>(&'a self, arn: &'a str, tags: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<(), AwsError>>;
    }
}

fn from_sdk(g: &aws_sdk_rds::types::DbSubnetGroup) -> DbSubnetGroup {
    let s = |v: Option<&str>| v.map(str::to_string);
    let mut subnet_ids: Vec<String> = g
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier().map(str::to_string))
        .collect();
    subnet_ids.sort();
    DbSubnetGroup {
        name: g.db_subnet_group_name().unwrap_or_default().to_string(),
        arn: s(g.db_subnet_group_arn()),
        description: s(g.db_subnet_group_description()),
        vpc_id: s(g.vpc_id()),
        status: s(g.subnet_group_status()),
        subnet_ids,
    }
}

impl SubnetGroupApi for SdkRds {
    fn list_subnet_groups(&self, marker: Option<String>) -> ListPage<'_, DbSubnetGroup> {
        Box::pin(async move {
            let out = self
                .client
                .describe_db_subnet_groups()
                .max_records(PAGE_SIZE)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| net_sdk_err("DescribeDBSubnetGroups", &self.place, e))?;
            Ok(Page::new(
                out.db_subnet_groups().iter().map(from_sdk).collect(),
                out.marker(),
            ))
        })
    }

    fn create_subnet_group<'a>(
        &'a self,
        r: &'a SubnetGroupRequest,
    ) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>> {
        const OP: &str = "CreateDBSubnetGroup";
        Box::pin(async move {
            let out = self
                .client
                .create_db_subnet_group()
                .db_subnet_group_name(&r.name)
                .db_subnet_group_description(&r.description)
                .set_subnet_ids(Some(r.subnet_ids.clone()))
                .set_tags(Some(rds_tags_of(&r.tags)))
                .send()
                .await
                .map_err(|e| net_sdk_err(OP, &self.place, e))?;
            out.db_subnet_group()
                .map(from_sdk)
                .ok_or_else(|| response_lacks(OP, "DBSubnetGroup"))
        })
    }

    fn modify_subnet_group<'a>(
        &'a self,
        r: &'a SubnetGroupRequest,
    ) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>> {
        const OP: &str = "ModifyDBSubnetGroup";
        Box::pin(async move {
            let out = self
                .client
                .modify_db_subnet_group()
                .db_subnet_group_name(&r.name)
                .db_subnet_group_description(&r.description)
                .set_subnet_ids(Some(r.subnet_ids.clone()))
                .send()
                .await
                .map_err(|e| net_sdk_err(OP, &self.place, e))?;
            out.db_subnet_group()
                .map(from_sdk)
                .ok_or_else(|| response_lacks(OP, "DBSubnetGroup"))
        })
    }

    fn delete_subnet_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .delete_db_subnet_group()
                .db_subnet_group_name(name)
                .send()
                .await
                .map_err(|e| net_sdk_err("DeleteDBSubnetGroup", &self.place, e))?;
            Ok(())
        })
    }

    fn rds_tags<'a>(
        &'a self,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
        Box::pin(async move {
            let out = self
                .client
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| net_sdk_err("ListTagsForResource", &self.place, e))?;
            Ok(rds_tags_from(out.tag_list()))
        })
    }

    fn add_rds_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.add_tags_to(arn, tags, net_sdk_err))
    }
}

// ---------------------------------------------------------------------------------------------
// pure: the request, the drift, status.atProvider

/// The description of a group whose spec sets none.
pub const DEFAULT_DESCRIPTION: &str = "Managed by paved";

/// The CreateDBSubnetGroup / ModifyDBSubnetGroup request for `name` (pure). `Err`: the spec
/// lacks what AWS needs, in words for the Synced condition.
pub fn request(
    name: &str,
    fp: &crate::api::subnet_group::SubnetGroupParameters,
    tags: BTreeMap<String, String>,
) -> Result<SubnetGroupRequest, String> {
    let mut subnet_ids = fp.subnet_ids.clone().unwrap_or_default();
    subnet_ids.sort();
    subnet_ids.dedup();
    if subnet_ids.is_empty() {
        return Err("spec.forProvider.subnetIds is required: the VPC subnet IDs (in at least two availability zones)".into());
    }
    Ok(SubnetGroupRequest {
        name: name.to_string(),
        description: fp
            .description
            .clone()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string()),
        subnet_ids,
        tags,
    })
}

/// The forProvider fields whose value AWS does not have (pure): both can be changed with
/// ModifyDBSubnetGroup.
pub fn drift(want: &SubnetGroupRequest, have: &DbSubnetGroup) -> Vec<&'static str> {
    let mut v = Vec::new();
    if have.description.as_deref() != Some(want.description.as_str()) {
        v.push("description");
    }
    if have.subnet_ids != want.subnet_ids {
        v.push("subnetIds");
    }
    v
}

/// status.atProvider of an observed group.
pub fn at_provider(g: &DbSubnetGroup) -> crate::api::subnet_group::SubnetGroupObservation {
    crate::api::subnet_group::SubnetGroupObservation {
        id: Some(g.name.clone()),
        arn: g.arn.clone(),
        description: g.description.clone(),
        vpc_id: g.vpc_id.clone(),
        subnet_ids: Some(g.subnet_ids.clone()),
        tags_all: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::subnet_group::SubnetGroupParameters;

    #[test]
    fn request_and_drift() {
        let fp = |ids: Option<Vec<&str>>, d: Option<&str>| SubnetGroupParameters {
            region: "eu-west-1".into(),
            subnet_ids: ids.map(|v| v.into_iter().map(str::to_string).collect()),
            description: d.map(str::to_string),
            ..Default::default()
        };
        let e = request("g", &fp(None, None), BTreeMap::new()).unwrap_err();
        assert!(e.contains("subnetIds is required"), "{e}");
        let r = request(
            "g",
            &fp(Some(vec!["subnet-b", "subnet-a", "subnet-b"]), None),
            BTreeMap::new(),
        );
        let r = r.unwrap_or_default();
        assert_eq!(r.subnet_ids, vec!["subnet-a", "subnet-b"]);
        assert_eq!(r.description, DEFAULT_DESCRIPTION);
        let mut have = DbSubnetGroup {
            name: "g".into(),
            description: Some(DEFAULT_DESCRIPTION.into()),
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            ..Default::default()
        };
        assert!(drift(&r, &have).is_empty());
        have.subnet_ids.pop();
        have.description = Some("old".into());
        assert_eq!(drift(&r, &have), vec!["description", "subnetIds"]);
        assert_eq!(at_provider(&have).id.as_deref(), Some("g"));
    }
}

// ---------------------------------------------------------------------------------------------
// the kind on the lifecycle

mod kind {
    use kube::runtime::controller::Action;

    use super::{SubnetGroupApi, at_provider, drift, request};
    use crate::api::managed::Policies;
    use crate::api::subnet_group::{SubnetGroup, SubnetGroupStatus};
    use crate::api::twin::Base;
    use crate::managed::error::Error;
    use crate::managed::group::{GroupKind, GroupObject, valid};
    use crate::managed::kind::ExternalClient;
    use crate::managed::lifecycle::Flow;
    use crate::managed::model::AwsError;
    use crate::managed::network::{
        Net, NetGroup, check_group_name, fix_rds_tags, know_rds_tags, managed_kind, rds_tags,
        tags_of,
    };
    use crate::managed::outcome::{Blocked, Step, pass_on};

    managed_kind!(
        SubnetGroup, SubnetGroupStatus,
        noun: "DB subnet group", metric: "subnet_group", prefix: "", check: check_name
    );

    fn check_name(id: &str) -> Result<(), &'static str> {
        if id.eq_ignore_ascii_case("default") {
            return Err("\"default\" is reserved by RDS");
        }
        check_group_name(id)
    }

    /// A group with the tags that prove whose it is.
    #[derive(Clone, Debug)]
    pub(crate) struct Observed {
        pub group: super::DbSubnetGroup,
        pub tags: std::collections::BTreeMap<String, String>,
        /// Drift left alone this reconcile (Update is not allowed).
        pub observe_only: Option<String>,
    }

    fn observed_subnets_unserved(obj: &SubnetGroup) -> Option<Blocked> {
        let fp = &obj.spec.for_provider;
        let unresolved = fp.subnet_ids.as_ref().is_none_or(Vec::is_empty)
            && (fp.subnet_id_refs.as_ref().is_some_and(|r| !r.is_empty())
                || fp.subnet_id_selector.is_some());
        unresolved.then(|| {
            Blocked::new(
                "UnsupportedReference",
                "subnetIdRefs/subnetIdSelector name ec2 Subnet objects, which paved does not serve: list the subnet IDs in spec.forProvider.subnetIds",
            )
        })
    }

    impl NetGroup for SubnetGroup {
        type Found = Observed;
        fn id_and_tags(found: &Observed) -> (&str, &std::collections::BTreeMap<String, String>) {
            (&found.group.name, &found.tags)
        }
        async fn find<K: ExternalClient + Base<Self>>(
            flow: &Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Option<Observed>, AwsError> {
            let poll = flow.poll();
            let g = net
                .subnet_groups
                .observe(id, poll, |m| net.clients.rds.list_subnet_groups(m))
                .await?;
            let Some(group) = g else { return Ok(None) };
            let tags = match &group.arn {
                Some(arn) => rds_tags(net, &flow.ctx.shared.net, arn).await?,
                None => Default::default(),
            };
            Ok(Some(Observed {
                group,
                tags,
                observe_only: None,
            }))
        }
        async fn remove(net: &Net, aws_id: &str) -> Result<(), AwsError> {
            net.clients.rds.delete_subnet_group(aws_id).await
        }
        fn forget(net: &Net, aws_id: &str) {
            net.subnet_groups.record(aws_id, None);
        }
    }

    impl GroupKind for SubnetGroup {
        async fn create<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Step<Observed>, Error> {
            if let Some(b) = observed_subnets_unserved(flow.obj.base()) {
                return Ok(flow.block(b, Action::await_change()));
            }
            let fp = &flow.obj.base().spec.for_provider;
            let tags = tags_of(&flow.obj, fp.tags.as_ref());
            let r = request(id, fp, tags.clone());
            let req = pass_on!(valid(flow, r));
            match net.clients.rds.create_subnet_group(&req).await {
                Ok(group) => {
                    know_rds_tags(&flow.ctx.shared.net, group.arn.as_deref(), &tags);
                    net.subnet_groups.record(id, Some(group.clone()));
                    Ok(Step::Go(Observed {
                        group,
                        tags,
                        observe_only: None,
                    }))
                }
                Err(e) => Ok(flow.aws_failure(e)),
            }
        }

        async fn update<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            policies: &Policies,
            id: &str,
            mut o: Observed,
        ) -> Result<Step<Observed>, Error> {
            let fp = &flow.obj.base().spec.for_provider;
            let r = request(id, fp, Default::default());
            let req = pass_on!(valid(flow, r));
            let fields = drift(&req, &o.group);
            if !fields.is_empty() {
                if !policies.update {
                    o.observe_only = Some(format!(
                        "differs from the spec in {} (Update is not allowed)",
                        fields.join(", ")
                    ));
                } else {
                    match net.clients.rds.modify_subnet_group(&req).await {
                        Ok(g) => {
                            net.subnet_groups.record(id, Some(g.clone()));
                            o.group = g;
                        }
                        Err(e) => return Ok(flow.aws_failure(e)),
                    }
                }
            }
            let spec_tags = flow.obj.base().spec.for_provider.tags.as_ref();
            if policies.update
                && let Err(e) =
                    fix_rds_tags(flow, net, o.group.arn.as_deref(), &mut o.tags, spec_tags).await
            {
                return Ok(flow.aws_failure(e));
            }
            Ok(Step::Go(o))
        }

        fn observed(o: Observed, status: &mut SubnetGroupStatus) -> Option<String> {
            status.at_provider = Some(at_provider(&o.group));
            o.observe_only
        }
    }
}
