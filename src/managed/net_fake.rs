//! A test-only, in-memory AWS account for the network kinds: it implements
//! [`SubnetGroupApi`], [`ParameterGroupApi`], [`SecurityGroupApi`] and
//! [`SecurityGroupRuleApi`] with state (what is created exists until deleted), the refusals
//! AWS makes (an unknown subnet, a subnet group in one availability zone, a duplicate, a
//! group still in use) and a count of list calls and a log of changing calls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::guard::net_error;
use super::listing::{ListPage, Page};
use super::model::AwsError;
use super::parameter_group::{
    DbParameter, DbParameterGroup, ParameterGroupApi, ParameterGroupRequest,
};
use super::security_group::{Ec2SecurityGroup, SecurityGroupApi, SecurityGroupRequest};
use super::security_group_rule::{Ec2Rule, RuleSpec, SecurityGroupRuleApi};
use super::subnet_group::{DbSubnetGroup, SubnetGroupApi, SubnetGroupRequest};

#[derive(Default)]
struct State {
    /// subnet id -> (vpc, availability zone)
    subnets: BTreeMap<String, (String, String)>,
    subnet_groups: BTreeMap<String, DbSubnetGroup>,
    parameter_groups: BTreeMap<String, (DbParameterGroup, Vec<DbParameter>)>,
    groups: BTreeMap<String, Ec2SecurityGroup>,
    rules: BTreeMap<String, Ec2Rule>,
    /// Resources (names or IDs) a DB instance uses: deleting them is a DependencyViolation.
    in_use: BTreeSet<String>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
    next: u64,
    /// List calls by operation.
    lists: BTreeMap<&'static str, usize>,
    /// Changing calls, in order (`CreateDBSubnetGroup db-net`, ...).
    calls: Vec<String>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct FakeNet {
    st: Mutex<State>,
    /// Items per list page.
    pub page_size: usize,
}

/// An RDS group `name` is not there (`code`, as AWS answers `op`).
fn not_found(op: &'static str, code: &str, name: &str) -> AwsError {
    net_error(op, code, format!("{name} not found"), Some(404))
}

fn page<T: Clone>(items: Vec<T>, marker: Option<String>, size: usize) -> Page<T> {
    let size = size.max(1);
    let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
    let end = (start + size).min(items.len());
    Page {
        items: items.get(start..end).unwrap_or_default().to_vec(),
        next: (end < items.len()).then(|| end.to_string()),
    }
}

impl FakeNet {
    pub(crate) fn new() -> Self {
        Self {
            st: Mutex::default(),
            page_size: 100,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A subnet of the platform team's network.
    pub(crate) fn with_subnet(self, id: &str, vpc: &str, az: &str) -> Self {
        self.lock()
            .subnets
            .insert(id.into(), (vpc.into(), az.into()));
        self
    }

    /// Mark a resource as used by a DB instance.
    pub(crate) fn use_resource(&self, id: &str) {
        self.lock().in_use.insert(id.into());
    }

    pub(crate) fn release_resource(&self, id: &str) {
        self.lock().in_use.remove(id);
    }

    /// List calls of `operation` so far.
    pub(crate) fn lists(&self, operation: &str) -> usize {
        self.lock().lists.get(operation).copied().unwrap_or(0)
    }

    /// The changing calls so far.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub(crate) fn security_group_ids(&self) -> Vec<String> {
        self.lock().groups.keys().cloned().collect()
    }

    pub(crate) fn rule_count(&self) -> usize {
        self.lock().rules.len()
    }

    fn id(st: &mut State, prefix: &str) -> String {
        st.next += 1;
        format!("{prefix}-{:08x}", st.next)
    }

    fn count(&self, op: &'static str) {
        *self.lock().lists.entry(op).or_default() += 1;
    }

    /// A list call `op`: counted, then one page of `items`.
    fn list<'a, T: Clone + Send + 'a>(
        &self,
        op: &'static str,
        marker: Option<String>,
        items: impl FnOnce(&State) -> Vec<T>,
    ) -> ListPage<'a, T> {
        self.count(op);
        let page = page(items(&self.lock()), marker, self.page_size);
        Box::pin(async move { Ok(page) })
    }

    /// A changing call: logged as `call`, then `f` on the state, answered at once.
    fn change<'a, T: Send + 'a>(
        &self,
        call: String,
        f: impl FnOnce(&mut State) -> Result<T, AwsError>,
    ) -> BoxFuture<'a, Result<T, AwsError>> {
        let res = {
            let mut st = self.lock();
            st.calls.push(call);
            f(&mut st)
        };
        Box::pin(async move { res })
    }

    fn check_subnets(st: &State, op: &'static str, ids: &[String]) -> Result<String, AwsError> {
        let mut vpcs = BTreeSet::new();
        let mut azs = BTreeSet::new();
        for id in ids {
            let Some((vpc, az)) = st.subnets.get(id) else {
                return Err(net_error(
                    op,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{id}' does not exist"),
                    Some(400),
                ));
            };
            vpcs.insert(vpc.clone());
            azs.insert(az.clone());
        }
        if vpcs.len() > 1 {
            return Err(net_error(
                op,
                "InvalidSubnet",
                "the subnets are in more than one VPC",
                Some(400),
            ));
        }
        if azs.len() < 2 {
            return Err(net_error(
                op,
                "DBSubnetGroupDoesNotCoverEnoughAZs",
                "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. Current AZ coverage: 1. Add subnets to cover at least 2 AZs.",
                Some(400),
            ));
        }
        Ok(vpcs.into_iter().next().unwrap_or_default())
    }
}

impl SubnetGroupApi for FakeNet {
    fn list_subnet_groups(&self, marker: Option<String>) -> ListPage<'_, DbSubnetGroup> {
        self.list("DescribeDBSubnetGroups", marker, |st| {
            st.subnet_groups.values().cloned().collect()
        })
    }

    fn create_subnet_group<'a>(
        &'a self,
        r: &'a SubnetGroupRequest,
    ) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>> {
        const OP: &str = "CreateDBSubnetGroup";
        self.change(format!("{OP} {}", r.name), |st| {
            if st.subnet_groups.contains_key(&r.name) {
                return Err(net_error(
                    OP,
                    "DBSubnetGroupAlreadyExists",
                    format!("{} exists", r.name),
                    Some(400),
                ));
            }
            let vpc = Self::check_subnets(st, OP, &r.subnet_ids)?;
            let mut subnet_ids = r.subnet_ids.clone();
            subnet_ids.sort();
            let arn = format!("arn:aws:rds:eu-west-1:123456789012:subgrp:{}", r.name);
            let g = DbSubnetGroup {
                name: r.name.clone(),
                arn: Some(arn.clone()),
                description: Some(r.description.clone()),
                vpc_id: Some(vpc),
                status: Some("Complete".into()),
                subnet_ids,
            };
            st.tags.insert(arn, r.tags.clone());
            st.subnet_groups.insert(r.name.clone(), g.clone());
            Ok(g)
        })
    }

    fn modify_subnet_group<'a>(
        &'a self,
        r: &'a SubnetGroupRequest,
    ) -> BoxFuture<'a, Result<DbSubnetGroup, AwsError>> {
        const OP: &str = "ModifyDBSubnetGroup";
        self.change(format!("{OP} {}", r.name), |st| {
            let vpc = Self::check_subnets(st, OP, &r.subnet_ids)?;
            let Some(g) = st.subnet_groups.get_mut(&r.name) else {
                return Err(not_found(OP, "DBSubnetGroupNotFoundFault", &r.name));
            };
            g.description = Some(r.description.clone());
            g.subnet_ids = r.subnet_ids.clone();
            g.subnet_ids.sort();
            g.vpc_id = Some(vpc);
            Ok(g.clone())
        })
    }

    fn delete_subnet_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        const OP: &str = "DeleteDBSubnetGroup";
        self.change(format!("{OP} {name}"), |st| {
            if st.in_use.contains(name) {
                return Err(net_error(
                    OP,
                    "InvalidDBSubnetGroupStateFault",
                    format!(
                        "Cannot delete the subnet group '{name}' because at least one database instance is still using it."
                    ),
                    Some(400),
                ));
            }
            st.subnet_groups
                .remove(name)
                .map(drop)
                .ok_or_else(|| not_found(OP, "DBSubnetGroupNotFoundFault", name))
        })
    }

    fn rds_tags<'a>(
        &'a self,
        arn: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>> {
        let t = self.lock().tags.get(arn).cloned().unwrap_or_default();
        Box::pin(async move { Ok(t) })
    }

    fn add_rds_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.count("AddTagsToResource");
        self.lock()
            .tags
            .entry(arn.to_string())
            .or_default()
            .extend(tags.clone());
        Box::pin(async move { Ok(()) })
    }
}

impl ParameterGroupApi for FakeNet {
    fn list_parameter_groups(&self, marker: Option<String>) -> ListPage<'_, DbParameterGroup> {
        self.list("DescribeDBParameterGroups", marker, |st| {
            st.parameter_groups
                .values()
                .map(|(g, _)| g.clone())
                .collect()
        })
    }

    fn create_parameter_group<'a>(
        &'a self,
        r: &'a ParameterGroupRequest,
    ) -> BoxFuture<'a, Result<DbParameterGroup, AwsError>> {
        const OP: &str = "CreateDBParameterGroup";
        self.change(format!("{OP} {}", r.name), |st| {
            if st.parameter_groups.contains_key(&r.name) {
                return Err(net_error(
                    OP,
                    "DBParameterGroupAlreadyExists",
                    format!("{} exists", r.name),
                    Some(400),
                ));
            }
            let arn = format!("arn:aws:rds:eu-west-1:123456789012:pg:{}", r.name);
            let g = DbParameterGroup {
                name: r.name.clone(),
                arn: Some(arn.clone()),
                family: Some(r.family.clone()),
                description: Some(r.description.clone()),
            };
            st.tags.insert(arn, r.tags.clone());
            st.parameter_groups
                .insert(r.name.clone(), (g.clone(), Vec::new()));
            Ok(g)
        })
    }

    fn user_parameters<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DbParameter>, AwsError>> {
        let res = self
            .lock()
            .parameter_groups
            .get(name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| not_found("DescribeDBParameters", "DBParameterGroupNotFound", name));
        Box::pin(async move { res })
    }

    fn modify_parameters<'a>(
        &'a self,
        name: &'a str,
        params: &'a [DbParameter],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        const OP: &str = "ModifyDBParameterGroup";
        self.change(format!("{OP} {name} {}", params.len()), |st| {
            let Some((_, have)) = st.parameter_groups.get_mut(name) else {
                return Err(not_found(OP, "DBParameterGroupNotFound", name));
            };
            for p in params {
                have.retain(|h| !h.name.eq_ignore_ascii_case(&p.name));
                have.push(p.clone());
            }
            have.sort();
            Ok(())
        })
    }

    fn reset_parameters<'a>(
        &'a self,
        name: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        let call = format!("ResetDBParameterGroup {name} {}", names.join(","));
        self.change(call, |st| {
            if let Some((_, have)) = st.parameter_groups.get_mut(name) {
                have.retain(|h| !names.iter().any(|n| n.eq_ignore_ascii_case(&h.name)));
            }
            Ok(())
        })
    }

    fn delete_parameter_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        const OP: &str = "DeleteDBParameterGroup";
        self.change(format!("{OP} {name}"), |st| {
            if st.in_use.contains(name) {
                return Err(net_error(
                    OP,
                    "InvalidDBParameterGroupState",
                    format!(
                        "One or more database instances are still members of this parameter group {name}"
                    ),
                    Some(400),
                ));
            }
            st.parameter_groups
                .remove(name)
                .map(drop)
                .ok_or_else(|| not_found(OP, "DBParameterGroupNotFound", name))
        })
    }
}

impl SecurityGroupApi for FakeNet {
    fn list_security_groups(&self, marker: Option<String>) -> ListPage<'_, Ec2SecurityGroup> {
        self.list("DescribeSecurityGroups", marker, |st| {
            st.groups.values().cloned().collect()
        })
    }

    fn create_security_group<'a>(
        &'a self,
        r: &'a SecurityGroupRequest,
    ) -> BoxFuture<'a, Result<Ec2SecurityGroup, AwsError>> {
        const OP: &str = "CreateSecurityGroup";
        self.change(format!("{OP} {}", r.name), |st| {
            let vpc_known = r
                .vpc_id
                .as_ref()
                .is_none_or(|v| st.subnets.values().any(|(sv, _)| sv == v));
            if !vpc_known {
                return Err(net_error(
                    OP,
                    "InvalidVpcID.NotFound",
                    format!(
                        "The vpc ID '{}' does not exist",
                        r.vpc_id.clone().unwrap_or_default()
                    ),
                    Some(400),
                ));
            }
            if st
                .groups
                .values()
                .any(|g| g.name.as_deref() == Some(&r.name) && g.vpc_id == r.vpc_id)
            {
                return Err(net_error(
                    OP,
                    "InvalidGroup.Duplicate",
                    format!("The security group '{}' already exists for VPC", r.name),
                    Some(400),
                ));
            }
            let id = Self::id(st, "sg");
            let g = Ec2SecurityGroup {
                id: id.clone(),
                arn: Some(format!(
                    "arn:aws:ec2:eu-west-1:123456789012:security-group/{id}"
                )),
                name: Some(r.name.clone()),
                description: Some(r.description.clone()),
                vpc_id: r.vpc_id.clone(),
                owner_id: Some("123456789012".into()),
                tags: r.tags.clone(),
            };
            st.groups.insert(id.clone(), g.clone());
            // AWS's default egress rule
            let rid = Self::id(st, "sgr");
            st.rules.insert(
                rid.clone(),
                Ec2Rule {
                    id: rid,
                    group_id: id,
                    egress: true,
                    protocol: "-1".into(),
                    from_port: -1,
                    to_port: -1,
                    peer: Some(super::security_group_rule::Peer::Cidr4("0.0.0.0/0".into())),
                    description: None,
                    tags: BTreeMap::new(),
                },
            );
            Ok(g)
        })
    }

    fn delete_security_group<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        const OP: &str = "DeleteSecurityGroup";
        self.change(format!("{OP} {id}"), |st| {
            let referenced = st.rules.values().any(|r| {
                r.group_id != id
                    && r.peer == Some(super::security_group_rule::Peer::Group(id.to_string()))
            });
            if st.in_use.contains(id) || referenced {
                return Err(net_error(
                    OP,
                    "DependencyViolation",
                    format!("resource {id} has a dependent object"),
                    Some(400),
                ));
            }
            if st.groups.remove(id).is_none() {
                return Err(net_error(
                    OP,
                    "InvalidGroup.NotFound",
                    format!("The security group '{id}' does not exist"),
                    Some(400),
                ));
            }
            st.rules.retain(|_, r| r.group_id != id);
            Ok(())
        })
    }

    fn create_tags<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.change(format!("CreateTags {id}"), |st| {
            if let Some(g) = st.groups.get_mut(id) {
                g.tags.extend(tags.clone());
            }
            Ok(())
        })
    }

    fn delete_tags<'a>(
        &'a self,
        id: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.change(format!("DeleteTags {id}"), |st| {
            if let Some(g) = st.groups.get_mut(id) {
                g.tags.retain(|k, _| !keys.contains(k));
            }
            Ok(())
        })
    }
}

impl SecurityGroupRuleApi for FakeNet {
    fn list_rules(&self, marker: Option<String>) -> ListPage<'_, Ec2Rule> {
        self.list("DescribeSecurityGroupRules", marker, |st| {
            st.rules.values().cloned().collect()
        })
    }

    fn authorize<'a>(
        &'a self,
        spec: &'a RuleSpec,
    ) -> BoxFuture<'a, Result<Vec<Ec2Rule>, AwsError>> {
        let op = super::security_group_rule::authorize_op(spec.egress);
        self.change(
            format!("{op} {} {}", spec.group_id, spec.peers.len()),
            |st| {
                if !st.groups.contains_key(&spec.group_id) {
                    return Err(net_error(
                        op,
                        "InvalidGroup.NotFound",
                        format!("The security group '{}' does not exist", spec.group_id),
                        Some(400),
                    ));
                }
                let listed: Vec<Ec2Rule> = st.rules.values().cloned().collect();
                let (present, _) = super::security_group_rule::matching(spec, &listed);
                if let Some(dup) = present.first() {
                    return Err(net_error(
                        op,
                        "InvalidPermission.Duplicate",
                        format!(
                            "the specified rule \"peer: {}, {}, ALLOW\" already exists",
                            dup.peer
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                            spec.protocol
                        ),
                        Some(400),
                    ));
                }
                let mut made = Vec::new();
                for peer in &spec.peers {
                    let id = Self::id(st, "sgr");
                    let (from, to) = if spec.protocol == "-1" {
                        (-1, -1)
                    } else {
                        (spec.from_port, spec.to_port)
                    };
                    let r = Ec2Rule {
                        id: id.clone(),
                        group_id: spec.group_id.clone(),
                        egress: spec.egress,
                        protocol: spec.protocol.clone(),
                        from_port: from,
                        to_port: to,
                        peer: Some(peer.clone()),
                        description: spec.description.clone(),
                        tags: spec.tags.clone(),
                    };
                    st.rules.insert(id, r.clone());
                    made.push(r);
                }
                Ok(made)
            },
        )
    }

    fn revoke<'a>(
        &'a self,
        group_id: &'a str,
        egress: bool,
        rule_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        let op = super::security_group_rule::revoke_op(egress);
        self.change(format!("{op} {group_id} {}", rule_ids.join(",")), |st| {
            for id in rule_ids {
                if st
                    .rules
                    .get(id)
                    .is_none_or(|r| r.group_id != group_id || r.egress != egress)
                {
                    return Err(net_error(
                        op,
                        "InvalidSecurityGroupRuleId.NotFound",
                        format!("The security group rule ID '{id}' does not exist"),
                        Some(400),
                    ));
                }
            }
            for id in rule_ids {
                st.rules.remove(id);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::managed::listing::Listing;
    use crate::managed::security_group_rule::Peer;
    use std::time::Duration;

    fn net() -> FakeNet {
        FakeNet::new()
            .with_subnet("subnet-a", "vpc-1", "eu-west-1a")
            .with_subnet("subnet-b", "vpc-1", "eu-west-1b")
            .with_subnet("subnet-x", "vpc-2", "eu-west-1a")
    }

    #[tokio::test]
    async fn subnet_groups_are_refused_as_aws_refuses_them() {
        let n = net();
        let req = |ids: &[&str]| SubnetGroupRequest {
            name: "db-net".into(),
            description: "d".into(),
            subnet_ids: ids.iter().map(|s| s.to_string()).collect(),
            tags: BTreeMap::new(),
        };
        let e = n
            .create_subnet_group(&req(&["subnet-a", "subnet-nope"]))
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidSubnetID.NotFound");
        let e = n
            .create_subnet_group(&req(&["subnet-a"]))
            .await
            .unwrap_err();
        assert_eq!(e.code, "DBSubnetGroupDoesNotCoverEnoughAZs");
        let g = n
            .create_subnet_group(&req(&["subnet-b", "subnet-a"]))
            .await
            .unwrap();
        assert_eq!(g.vpc_id.as_deref(), Some("vpc-1"));
        n.use_resource("db-net");
        let e = n.delete_subnet_group("db-net").await.unwrap_err();
        assert!(crate::managed::guard::is_dependency_violation(&e));
        n.release_resource("db-net");
        n.delete_subnet_group("db-net").await.unwrap();
    }

    #[tokio::test]
    async fn groups_and_rules_are_listed_in_one_call_per_kind_and_poll() {
        let mut n = net();
        n.page_size = 2;
        let mut ids = Vec::new();
        for i in 0..5 {
            let g = n
                .create_security_group(&SecurityGroupRequest {
                    name: format!("g{i}"),
                    description: "d".into(),
                    vpc_id: Some("vpc-1".into()),
                    tags: BTreeMap::new(),
                })
                .await
                .unwrap();
            ids.push(g.id);
        }
        let listing = Listing::<Ec2SecurityGroup>::default();
        for id in &ids {
            let g = listing
                .observe(id, Duration::from_secs(60), |m| n.list_security_groups(m))
                .await
                .unwrap();
            assert!(g.is_some());
        }
        assert_eq!(
            n.lists("DescribeSecurityGroups"),
            3,
            "ceil(5/2) pages, once"
        );
        // a rule naming g1 as its source keeps g1 from being deleted
        let spec = RuleSpec {
            group_id: ids[0].clone(),
            egress: false,
            protocol: "tcp".into(),
            from_port: 5432,
            to_port: 5432,
            peers: vec![
                Peer::Group(ids[1].clone()),
                Peer::Cidr4("10.0.0.0/16".into()),
            ],
            description: None,
            tags: BTreeMap::new(),
        };
        let made = n.authorize(&spec).await.unwrap();
        assert_eq!(made.len(), 2);
        assert_eq!(
            n.authorize(&spec).await.unwrap_err().code,
            "InvalidPermission.Duplicate"
        );
        let e = n.delete_security_group(&ids[1]).await.unwrap_err();
        assert_eq!(e.code, "DependencyViolation");
        let rule_ids: Vec<String> = made.iter().map(|r| r.id.clone()).collect();
        n.revoke(&ids[0], false, &rule_ids).await.unwrap();
        n.delete_security_group(&ids[1]).await.unwrap();
        assert_eq!(
            n.rule_count(),
            4,
            "the default egress rules of the 4 groups left"
        );
        assert_eq!(n.security_group_ids().len(), 4);
        assert!(
            n.calls()
                .iter()
                .any(|c| c.starts_with("DeleteSecurityGroup"))
        );
    }
}
