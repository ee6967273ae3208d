//! Security group rules (`SecurityGroupRule`): the EC2 operations behind a small trait
//! ([`SecurityGroupRuleApi`]), implemented with aws-sdk-ec2 ([`SdkEc2`]) and guarded by
//! [`Guarded`]. Observation is one paginated DescribeSecurityGroupRules per (ProviderConfig,
//! region) per poll. One object may stand for several EC2 rules (one per CIDR block or source):
//! they are found by what they allow ([`matching`]), so that a restart never authorizes a rule
//! twice and a rule removed behind paved's back is put back.

use futures::future::BoxFuture;

use super::client::net_sdk_err;
use super::ec2_client::{PAGE_SIZE, SdkEc2, tag_spec};
use super::guard::guarded_api;
use super::listing::{ListPage, Listed, Page};
use super::model::AwsError;

/// What a rule allows traffic from (ingress) or to (egress).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Cidr4(String),
    Cidr6(String),
    Group(String),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Cidr4(c) | Peer::Cidr6(c) | Peer::Group(c) => f.write_str(c),
        }
    }
}

/// One EC2 security group rule as DescribeSecurityGroupRules reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ec2Rule {
    pub id: String,
    pub group_id: String,
    pub egress: bool,
    /// Normalized ([`normalize_protocol`]).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Option<Peer>,
    pub description: Option<String>,
    /// Tags on the rule (paved tags the rules it authorizes with their owner).
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Listed for Ec2Rule {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// The rules one object asks for: a protocol and port range of a group, from or to each peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub group_id: String,
    pub egress: bool,
    /// Normalized ([`normalize_protocol`]).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peers: Vec<Peer>,
    pub description: Option<String>,
    /// Tags to put on the rules authorized (ownership tags included).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The protocol as EC2 reports it: names for tcp, udp, icmp and icmpv6 (numbers mapped), `-1`
/// for all.
pub fn normalize_protocol(p: &str) -> String {
    match p.trim().to_ascii_lowercase().as_str() {
        "6" | "tcp" => "tcp".into(),
        "17" | "udp" => "udp".into(),
        "1" | "icmp" => "icmp".into(),
        "58" | "icmpv6" => "icmpv6".into(),
        "-1" | "all" | "" => "-1".into(),
        other => other.to_string(),
    }
}

/// Whether an EC2 rule is one of the rules `spec` asks for (for `peer`).
fn is_rule_of(r: &Ec2Rule, spec: &RuleSpec, peer: &Peer) -> bool {
    let ports =
        spec.protocol == "-1" || (r.from_port == spec.from_port && r.to_port == spec.to_port);
    r.group_id == spec.group_id
        && r.egress == spec.egress
        && r.protocol == spec.protocol
        && ports
        && r.peer.as_ref() == Some(peer)
}

/// The EC2 rules of `listed` that `spec` stands for, and the peers that have none yet (pure).
/// The caller passes only the rules that carry the object's ownership tags: an identical rule of
/// someone else's is not ours, and authorizing ours then fails with AWS's
/// `InvalidPermission.Duplicate`, which names the overlap.
pub fn matching(spec: &RuleSpec, listed: &[Ec2Rule]) -> (Vec<Ec2Rule>, Vec<Peer>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for peer in &spec.peers {
        match listed.iter().find(|r| is_rule_of(r, spec, peer)) {
            Some(r) => present.push(r.clone()),
            None => missing.push(peer.clone()),
        }
    }
    (present, missing)
}

guarded_api! {
    /// The EC2 operations on security group rules paved uses.
    pub trait SecurityGroupRuleApi {
        /// One page of DescribeSecurityGroupRules over the account and region.
        ["DescribeSecurityGroupRules"]
        fn list_rules(&self, marker: Option<String>) -> ListPage<'_, Ec2Rule>;
        /// AuthorizeSecurityGroupIngress or Egress for every peer of `spec`: the rules created.
        [authorize_op(spec.egress)]
        fn authorize<'a>(&'a self, spec: &'a RuleSpec) -> BoxFuture<'a, Result<Vec<Ec2Rule>, AwsError>>;
        /// RevokeSecurityGroupIngress or Egress of rules by ID.
        [revoke_op(egress)]
        fn revoke<'a>(&'a self, group_id: &'a str, egress: bool, rule_ids: &'a [String]) -> BoxFuture<'a, Result<(), AwsError>>;
    }
}

fn peer_of(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<Peer> {
    if let Some(c) = r.cidr_ipv4() {
        return Some(Peer::Cidr4(c.to_string()));
    }
    if let Some(c) = r.cidr_ipv6() {
        return Some(Peer::Cidr6(c.to_string()));
    }
    r.referenced_group_info()
        .and_then(|g| g.group_id())
        .map(|g| Peer::Group(g.to_string()))
}

fn from_sdk(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Ec2Rule {
    Ec2Rule {
        id: r.security_group_rule_id().unwrap_or_default().to_string(),
        group_id: r.group_id().unwrap_or_default().to_string(),
        egress: r.is_egress().unwrap_or(false),
        protocol: normalize_protocol(r.ip_protocol().unwrap_or("-1")),
        from_port: r.from_port().unwrap_or(-1),
        to_port: r.to_port().unwrap_or(-1),
        peer: peer_of(r),
        description: r.description().map(str::to_string),
        tags: super::ec2_client::tags_from(r.tags()),
    }
}

fn permission(spec: &RuleSpec) -> aws_sdk_ec2::types::IpPermission {
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, UserIdGroupPair};
    let mut p = IpPermission::builder().ip_protocol(&spec.protocol);
    if spec.protocol != "-1" {
        p = p.from_port(spec.from_port).to_port(spec.to_port);
    }
    for peer in &spec.peers {
        p = match peer {
            Peer::Cidr4(c) => p.ip_ranges(
                IpRange::builder()
                    .cidr_ip(c)
                    .set_description(spec.description.clone())
                    .build(),
            ),
            Peer::Cidr6(c) => p.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(c)
                    .set_description(spec.description.clone())
                    .build(),
            ),
            Peer::Group(g) => p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(g)
                    .set_description(spec.description.clone())
                    .build(),
            ),
        };
    }
    p.build()
}

/// The EC2 operation that authorizes a rule of this direction.
pub(crate) fn authorize_op(egress: bool) -> &'static str {
    if egress {
        "AuthorizeSecurityGroupEgress"
    } else {
        "AuthorizeSecurityGroupIngress"
    }
}

/// The EC2 operation that revokes rules of this direction.
pub(crate) fn revoke_op(egress: bool) -> &'static str {
    if egress {
        "RevokeSecurityGroupEgress"
    } else {
        "RevokeSecurityGroupIngress"
    }
}

/// `$call` on the egress or the ingress builder of the SDK: two types with the same methods,
/// which no trait of the SDK unites.
macro_rules! by_direction {
    ($egress:expr, $client:expr, $on_egress:ident, $on_ingress:ident, |$b:ident| $call:expr) => {
        if $egress {
            let $b = $client.$on_egress();
            $call
        } else {
            let $b = $client.$on_ingress();
            $call
        }
    };
}

impl SecurityGroupRuleApi for SdkEc2 {
    fn list_rules(&self, marker: Option<String>) -> ListPage<'_, Ec2Rule> {
        Box::pin(async move {
            let out = self
                .client
                .describe_security_group_rules()
                .max_results(PAGE_SIZE)
                .set_next_token(marker)
                .send()
                .await
                .map_err(|e| net_sdk_err("DescribeSecurityGroupRules", &self.place, e))?;
            Ok(Page::new(
                out.security_group_rules().iter().map(from_sdk).collect(),
                out.next_token(),
            ))
        })
    }

    fn authorize<'a>(
        &'a self,
        spec: &'a RuleSpec,
    ) -> BoxFuture<'a, Result<Vec<Ec2Rule>, AwsError>> {
        Box::pin(async move {
            let op = authorize_op(spec.egress);
            let rules = by_direction!(
                spec.egress,
                self.client,
                authorize_security_group_egress,
                authorize_security_group_ingress,
                |b| b
                    .group_id(&spec.group_id)
                    .ip_permissions(permission(spec))
                    .tag_specifications(tag_spec(
                        aws_sdk_ec2::types::ResourceType::SecurityGroupRule,
                        &spec.tags,
                    ))
                    .send()
                    .await
                    .map_err(|e| net_sdk_err(op, &self.place, e))?
                    .security_group_rules()
                    .iter()
                    .map(from_sdk)
                    .collect()
            );
            Ok(rules)
        })
    }

    fn revoke<'a>(
        &'a self,
        group_id: &'a str,
        egress: bool,
        rule_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let op = revoke_op(egress);
            by_direction!(
                egress,
                self.client,
                revoke_security_group_egress,
                revoke_security_group_ingress,
                |b| {
                    b.group_id(group_id)
                        .set_security_group_rule_ids(Some(rule_ids.to_vec()))
                        .send()
                        .await
                        .map_err(|e| net_sdk_err(op, &self.place, e))?;
                }
            );
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(id: &str, egress: bool, proto: &str, from: i32, to: i32, peer: Peer) -> Ec2Rule {
        Ec2Rule {
            id: id.into(),
            group_id: "sg-1".into(),
            egress,
            protocol: proto.into(),
            from_port: from,
            to_port: to,
            peer: Some(peer),
            description: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn rules_are_found_by_what_they_allow() {
        let c = |s: &str| Peer::Cidr4(s.into());
        let spec = RuleSpec {
            group_id: "sg-1".into(),
            egress: false,
            protocol: normalize_protocol("TCP"),
            from_port: 5432,
            to_port: 5432,
            peers: vec![
                c("10.0.0.0/16"),
                c("10.1.0.0/16"),
                Peer::Group("sg-2".into()),
            ],
            description: None,
            tags: Default::default(),
        };
        let listed = vec![
            rule("sgr-a", false, "tcp", 5432, 5432, c("10.0.0.0/16")),
            // egress, other port, other group: not ours
            rule("sgr-b", true, "tcp", 5432, 5432, c("10.1.0.0/16")),
            rule("sgr-c", false, "tcp", 5433, 5433, c("10.1.0.0/16")),
            Ec2Rule {
                group_id: "sg-9".into(),
                ..rule(
                    "sgr-d",
                    false,
                    "tcp",
                    5432,
                    5432,
                    Peer::Group("sg-2".into()),
                )
            },
        ];
        let (present, missing) = matching(&spec, &listed);
        assert_eq!(
            present.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["sgr-a"]
        );
        assert_eq!(missing, vec![c("10.1.0.0/16"), Peer::Group("sg-2".into())]);

        // all protocols: ports are not compared
        let all = RuleSpec {
            protocol: normalize_protocol("-1"),
            from_port: 0,
            to_port: 0,
            peers: vec![c("0.0.0.0/0")],
            egress: true,
            ..spec.clone()
        };
        let (present, missing) =
            matching(&all, &[rule("sgr-e", true, "-1", -1, -1, c("0.0.0.0/0"))]);
        assert_eq!(present.len(), 1);
        assert!(missing.is_empty());
        assert_eq!(normalize_protocol("6"), "tcp");
        assert_eq!(normalize_protocol("all"), "-1");
    }
}

/// The rules an object's forProvider asks for (pure). `Err`: what is missing or wrong, in words
/// for the Synced condition. `securityGroupId` (and `sourceSecurityGroupId`) are read after
/// reference resolution.
pub fn rule_spec(
    fp: &crate::api::security_group_rule::SecurityGroupRuleParameters,
    tags: std::collections::BTreeMap<String, String>,
) -> Result<RuleSpec, String> {
    let egress = match fp.type_.as_deref() {
        Some("ingress") => false,
        Some("egress") => true,
        Some(other) => {
            return Err(format!(
                "spec.forProvider.type {other:?} must be ingress or egress"
            ));
        }
        None => return Err("spec.forProvider.type is required: ingress or egress".into()),
    };
    let Some(group_id) = fp.security_group_id.clone().filter(|g| !g.is_empty()) else {
        return Err("spec.forProvider.securityGroupId is required (or securityGroupIdRef / securityGroupIdSelector)".into());
    };
    let Some(protocol) = fp.protocol.as_deref() else {
        return Err("spec.forProvider.protocol is required: tcp, udp, icmp, icmpv6 or -1".into());
    };
    let protocol = normalize_protocol(protocol);
    let (from_port, to_port) = match (fp.from_port, fp.to_port) {
        (Some(f), Some(t)) => (f, t),
        _ if protocol == "-1" => (-1, -1),
        _ => return Err("spec.forProvider.fromPort and toPort are required".into()),
    };
    if protocol != "-1" && from_port > to_port && protocol != "icmp" && protocol != "icmpv6" {
        return Err(format!(
            "spec.forProvider.fromPort {from_port} is above toPort {to_port}"
        ));
    }
    let mut peers: Vec<Peer> = Vec::new();
    peers.extend(fp.cidr_blocks.iter().flatten().cloned().map(Peer::Cidr4));
    peers.extend(
        fp.ipv6_cidr_blocks
            .iter()
            .flatten()
            .cloned()
            .map(Peer::Cidr6),
    );
    if let Some(src) = fp
        .source_security_group_id
        .clone()
        .filter(|s| !s.is_empty())
    {
        peers.push(Peer::Group(src));
    }
    if fp.self_ == Some(true) {
        peers.push(Peer::Group(group_id.clone()));
    }
    peers.sort();
    peers.dedup();
    if peers.is_empty() {
        return Err("the rule allows nothing: set cidrBlocks, ipv6CidrBlocks, sourceSecurityGroupId (or its Ref/Selector) or self".into());
    }
    Ok(RuleSpec {
        group_id,
        egress,
        protocol,
        from_port,
        to_port,
        peers,
        description: fp.description.clone().filter(|d| !d.is_empty()),
        tags,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod spec_tests {
    use super::*;
    use crate::api::security_group_rule::SecurityGroupRuleParameters;

    #[test]
    fn rule_specs() {
        let base = SecurityGroupRuleParameters {
            region: "eu-west-1".into(),
            type_: Some("ingress".into()),
            protocol: Some("tcp".into()),
            from_port: Some(5432),
            to_port: Some(5432),
            security_group_id: Some("sg-1".into()),
            cidr_blocks: Some(vec!["10.0.0.0/16".into()]),
            ..Default::default()
        };
        let ok = rule_spec(&base, Default::default());
        assert_eq!(ok.as_ref().map(|s| s.peers.len()), Ok(1));
        // (change, expected error substring)
        type Case = (fn(&mut SecurityGroupRuleParameters), &'static str);
        let cases: Vec<Case> = vec![
            (|p| p.type_ = None, "type is required"),
            (
                |p| p.type_ = Some("sideways".into()),
                "must be ingress or egress",
            ),
            (
                |p| p.security_group_id = None,
                "securityGroupId is required",
            ),
            (|p| p.protocol = None, "protocol is required"),
            (|p| p.to_port = None, "fromPort and toPort are required"),
            (|p| p.from_port = Some(6000), "above toPort"),
            (|p| p.cidr_blocks = None, "allows nothing"),
        ];
        for (i, (change, want)) in cases.into_iter().enumerate() {
            let mut p = base.clone();
            change(&mut p);
            let e = rule_spec(&p, Default::default()).err().unwrap_or_default();
            assert!(e.contains(want), "case {i}: {e}");
        }
        let mut all = base.clone();
        all.protocol = Some("-1".into());
        all.from_port = None;
        all.to_port = None;
        all.self_ = Some(true);
        all.source_security_group_id = Some("sg-2".into());
        let s = rule_spec(&all, Default::default()).unwrap_or_default();
        assert_eq!((s.from_port, s.to_port), (-1, -1));
        assert_eq!(s.peers.len(), 3);
    }
}

// ---------------------------------------------------------------------------------------------
// the kind on the lifecycle

mod kind {
    use kube::runtime::controller::Action;

    use super::{Ec2Rule, RuleSpec, SecurityGroupRuleApi, matching, rule_spec};
    use crate::api::common::{ConditionStatus, READY};
    use crate::api::managed::Policies;
    use crate::api::security_group::SecurityGroup;
    use crate::api::security_group_rule::{
        SecurityGroupRule, SecurityGroupRuleObservation, SecurityGroupRuleStatus,
    };
    use crate::api::twin::{Base, M};
    use crate::kube::backoff::spread;
    use crate::managed::aws::Aws;
    use crate::managed::error::Error;
    use crate::managed::kind::{Deletion, ExternalClient};
    use crate::managed::lifecycle::Flow;
    use crate::managed::model::{AwsError, ErrorClass};
    use crate::managed::network::{
        Net, apply_resolution, managed_kind, net_for, net_for_deletion, owned_by,
        refuse_foreign_refs, tags_of,
    };
    use crate::managed::outcome::{Blocked, Step, pass_on};
    use crate::managed::resolve::{Family, merge, resolve, rule_ref_fields};

    managed_kind!(
        SecurityGroupRule, SecurityGroupRuleStatus,
        noun: "security group rule", metric: "security_group_rule", prefix: "sgrule-",
        check: check_rule_id
    );

    fn check_rule_id(id: &str) -> Result<(), &'static str> {
        if id.is_empty() || id.len() > 255 {
            Err("1-255 characters")
        } else {
            Ok(())
        }
    }

    /// The EC2 rules this object stands for.
    #[derive(Clone, Debug)]
    pub(crate) struct Observed {
        pub spec: RuleSpec,
        pub rules: Vec<Ec2Rule>,
    }

    async fn owned_rules<K: ExternalClient>(
        flow: &Flow<'_, K>,
        net: &Net,
    ) -> Result<Vec<Ec2Rule>, AwsError> {
        let poll = flow.poll();
        net.rules
            .ensure_listed(poll, |m| net.clients.ec2.list_rules(m))
            .await?;
        Ok(net.rules.find(|r| owned_by(&flow.obj, &r.tags)))
    }

    /// Resolve securityGroupId and sourceSecurityGroupId (references to SecurityGroups).
    async fn resolve_refs<K>(flow: &mut Flow<'_, K>) -> Result<Step<()>, Error>
    where
        K: ExternalClient + Family + Base<SecurityGroupRule>,
    {
        if let Some(refused) = refuse_foreign_refs(flow) {
            return Ok(refused);
        }
        let fields = rule_ref_fields(&flow.obj.base().spec.for_provider);
        let client = flow.ctx.shared.client.clone();
        let r = resolve::<<K as Family>::Of<SecurityGroup>, _>(&client, &flow.obj, &fields).await;
        let r = r.map(|r| merge(vec![r]));
        apply_resolution(flow, r).await
    }

    /// The external client of the SecurityGroupRule, for the kind and for its namespaced twin (`M<SecurityGroupRule>` derefs to it).
    macro_rules! rule_client {
        ($t:ty) => {
    impl ExternalClient for $t {
        type External = Observed;
        type State = Option<Net>;
        type Updated = Observed;

        async fn observe_or_create(
            flow: &mut Flow<'_, Self>,
            policies: &Policies,
            _aws: &Aws,
            _id: &str,
        ) -> Result<Step<Observed>, Error> {
            pass_on!(resolve_refs(flow).await?);
            let net = pass_on!(net_for(flow).await?);
            let tags = tags_of(&flow.obj, None);
            let spec = match rule_spec(&flow.obj.spec.for_provider, tags) {
                Ok(s) => s,
                Err(m) => {
                    return Ok(flow.block(Blocked::new("InvalidSpec", m), Action::await_change()));
                }
            };
            let owned = match owned_rules(flow, &net).await {
                Ok(r) => r,
                Err(e) => return Ok(flow.aws_failure(e)),
            };
            let (mut present, missing) = matching(&spec, &owned);
            if !missing.is_empty() {
                if !policies.create {
                    let b = Blocked::new(
                        "ExternalResourceMissing",
                        format!(
                            "the rule for {} does not exist, and managementPolicies exclude Create",
                            missing
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    let poll = flow.poll();
                    return Ok(flow.block(b, Action::requeue(poll)));
                }
                let ask = RuleSpec {
                    peers: missing,
                    ..spec.clone()
                };
                match net.clients.ec2.authorize(&ask).await {
                    Ok(made) => {
                        for r in &made {
                            net.rules.record(&r.id, Some(r.clone()));
                        }
                        present.extend(made);
                    }
                    Err(e) => return Ok(flow.aws_failure(e)),
                }
            }
            flow.state = Some(net);
            Ok(Step::Go(Observed {
                spec,
                rules: present,
            }))
        }

        fn ownership(&self, _o: &Observed) -> crate::managed::decide::Ownership {
            // Only rules tagged with this object's UID are ever observed.
            crate::managed::decide::Ownership::Ours
        }

        async fn update(
            flow: &mut Flow<'_, Self>,
            policies: &Policies,
            _aws: &Aws,
            _id: &str,
            o: Observed,
        ) -> Result<Step<Observed>, Error> {
            // Rules this object authorized for an earlier spec: revoked (a rule cannot be
            // changed in place).
            let Some(net) = flow.state.take() else {
                return Ok(Step::Go(o));
            };
            if !policies.update {
                return Ok(Step::Go(o));
            }
            let keep: Vec<&str> = o.rules.iter().map(|r| r.id.as_str()).collect();
            let stale: Vec<Ec2Rule> = net
                .rules
                .find(|r| owned_by(&flow.obj, &r.tags) && !keep.contains(&r.id.as_str()));
            for r in stale {
                match net
                    .clients
                    .ec2
                    .revoke(&r.group_id, r.egress, std::slice::from_ref(&r.id))
                    .await
                {
                    Ok(()) => net.rules.record(&r.id, None),
                    Err(e) if e.class == ErrorClass::NotFound => net.rules.record(&r.id, None),
                    Err(e) => return Ok(flow.aws_failure(e)),
                }
            }
            Ok(Step::Go(o))
        }

        async fn publish(flow: &mut Flow<'_, Self>, o: Observed) -> Result<Step<Action>, Error> {
            let mut ids: Vec<String> = o.rules.iter().map(|r| r.id.clone()).collect();
            ids.sort();
            flow.status.at_provider = Some(SecurityGroupRuleObservation {
                id: flow.external_name(),
                security_group_rule_id: ids.first().cloned(),
                security_group_id: Some(o.spec.group_id.clone()),
                rule_ids: ids,
            });
            flow.set(READY, ConditionStatus::True, "Available", "");
            flow.succeeded();
            flow.synced(true, "ReconcileSuccess", "");
            Ok(Step::Go(Action::requeue(spread(flow.poll()))))
        }

        async fn delete(
            flow: &mut Flow<'_, Self>,
            _policies: &Result<Policies, String>,
            _aws: &Aws,
            _id: &str,
        ) -> Deletion {
            let net = match net_for_deletion(flow).await {
                Ok(n) => n,
                Err(d) => return d,
            };
            let owned = match owned_rules(flow, &net).await {
                Ok(r) => r,
                Err(e) => return Deletion::Finish(flow.aws_failed(e, false)),
            };
            if owned.is_empty() {
                return Deletion::Release("its security group rules are gone".into());
            }
            for r in &owned {
                match net
                    .clients
                    .ec2
                    .revoke(&r.group_id, r.egress, std::slice::from_ref(&r.id))
                    .await
                {
                    Ok(()) => net.rules.record(&r.id, None),
                    Err(e) if e.class == ErrorClass::NotFound => net.rules.record(&r.id, None),
                    Err(e) => return Deletion::Finish(flow.aws_failed(e, false)),
                }
            }
            let ids: Vec<&str> = owned.iter().map(|r| r.id.as_str()).collect();
            Deletion::Release(format!("revoked security group rules {}", ids.join(", ")))
        }

        async fn keep(_flow: &Flow<'_, Self>) -> Result<(), Error> {
            Ok(())
        }
    }
        };
    }
    rule_client!(SecurityGroupRule);
    rule_client!(M<SecurityGroupRule>);
}
