//! References at the Kubernetes edge: list the objects a reference may point at (same
//! namespace, one LIST per referenced kind, only while a field is unresolved), turn them into
//! [`Candidate`]s, and let the pure resolver ([`super::refs`]) decide. The result is the
//! forProvider fields to write (the lifecycle patches them into the spec before any AWS call),
//! or what the object waits for.

use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::common::{ConditionStatus, READY, get_condition};
use crate::api::managed::external_name;
use crate::api::parameter_group::ParameterGroup;
use crate::api::reference::{Reference, Selector};
use crate::api::security_group::SecurityGroup;
use crate::api::subnet_group::SubnetGroup;

use crate::api::instance::Instance;
use crate::api::security_group_rule::SecurityGroupRule;

use super::refs::{Candidate, Field, Target, Waiting, Wanted, resolve_many, resolve_one};

/// A kind a reference may point at, and the value a reference takes from it.
pub trait RefTarget:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
    + crate::managed::object::ManagedObject
{
    /// The kind's name in messages.
    const KIND: &'static str;
    /// The value (`None` while there is none): by default the external-name (a group's name).
    fn ref_value(&self) -> Option<String> {
        external_name(self.meta()).map(str::to_string)
    }
    /// Whether its Ready condition is True.
    fn is_ready(&self) -> bool {
        get_condition(self.conditions(), READY).is_some_and(|c| c.status == ConditionStatus::True)
    }
}

impl RefTarget for SubnetGroup {
    const KIND: &'static str = "SubnetGroup";
}

impl RefTarget for ParameterGroup {
    const KIND: &'static str = "ParameterGroup";
}

impl RefTarget for SecurityGroup {
    const KIND: &'static str = "SecurityGroup";
    /// The group ID (`status.atProvider.id`).
    fn ref_value(&self) -> Option<String> {
        self.status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.id.clone())
            .filter(|id| !id.is_empty())
    }
}

/// A twin's objects are its kind's, in the twin's group.
impl<T: RefTarget + crate::api::twin::Twinned> RefTarget for crate::api::twin::M<T> {
    const KIND: &'static str = T::KIND;
    fn ref_value(&self) -> Option<String> {
        self.0.ref_value()
    }
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }
}

/// The kinds an object's references point at: of its own API family. An object of
/// rds/ec2.aws.upbound.io refers to objects of those groups; a twin (`*.aws.m.upbound.io`) to
/// twins.
pub trait Family {
    type Of<U: RefTarget + crate::api::twin::Twinned>: RefTarget;
}

impl<T> Family for crate::api::twin::M<T> {
    type Of<U: RefTarget + crate::api::twin::Twinned> = crate::api::twin::M<U>;
}

impl Family for crate::api::Instance {
    type Of<U: RefTarget + crate::api::twin::Twinned> = U;
}

impl Family for crate::api::SecurityGroupRule {
    type Of<U: RefTarget + crate::api::twin::Twinned> = U;
}

/// The UID of an object's controller owner.
pub fn controller_uid<R: Resource>(obj: &R) -> Option<String> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// An object as a candidate of the resolver.
pub fn candidate<T: RefTarget>(obj: &T) -> Candidate {
    Candidate {
        name: obj.name_any(),
        labels: obj.labels().clone(),
        controller_uid: controller_uid(obj),
        deleting: obj.meta().deletion_timestamp.is_some(),
        ready: obj.is_ready(),
        value: obj.ref_value(),
    }
}

/// One reference field of an object's forProvider.
pub enum RefField<'a> {
    /// A single-valued field (`dbSubnetGroupName`) with its `...Ref` and `...Selector`.
    One {
        field: &'static str,
        current: Option<&'a str>,
        reference: Option<&'a Reference>,
        selector: Option<&'a Selector>,
    },
    /// A list field (`vpcSecurityGroupIds`) with its `...Refs` and `...Selector`.
    Many {
        field: &'static str,
        current: &'a [String],
        references: &'a [Reference],
        selector: Option<&'a Selector>,
    },
}

impl RefField<'_> {
    /// Whether resolving needs the candidates: a reference or selector, and a plain field that
    /// is empty or to be re-resolved every time (`policy.resolve: Always`).
    fn needs_lookup(&self) -> bool {
        use crate::api::reference::Resolve::Always;
        match self {
            RefField::One {
                current,
                reference,
                selector,
                ..
            } => {
                let empty = current.is_none_or(str::is_empty);
                match (reference, selector) {
                    (Some(r), _) => empty || r.resolve() == Always,
                    (None, Some(s)) => empty || s.resolve() == Always,
                    (None, None) => false,
                }
            }
            RefField::Many {
                current,
                references,
                selector,
                ..
            } => {
                let empty = current.is_empty();
                if !references.is_empty() {
                    empty || references.iter().any(|r| r.resolve() == Always)
                } else {
                    selector.is_some_and(|s| empty || s.resolve() == Always)
                }
            }
        }
    }
}

impl<'a> RefField<'a> {
    /// The reference as waking needs it (`kind`: the kind it names), while it is still to be
    /// resolved; `None` once resolved (a change to the target then wakes nothing).
    pub fn wanted(&self, kind: &'static str) -> Option<Wanted<'a>> {
        if !self.needs_lookup() {
            return None;
        }
        Some(match self {
            RefField::One {
                reference,
                selector,
                ..
            } => Wanted {
                kind,
                names: reference.iter().map(|r| r.name.as_str()).collect(),
                selector: *selector,
            },
            RefField::Many {
                references,
                selector,
                ..
            } => Wanted {
                kind,
                names: references.iter().map(|r| r.name.as_str()).collect(),
                selector: *selector,
            },
        })
    }
}

/// A managed kind in the reference graph: what its objects wait for, and what a change to one
/// of them announces. The lifecycle's controllers wake an object when a target it waits for
/// changes (see `super::controller`).
pub(crate) trait Refers {
    /// The kinds its references name (empty: never woken by a reference target).
    const REFERS_TO: &'static [&'static str] = &[];
    /// Its references still to be resolved.
    fn wanted(&self) -> Vec<Wanted<'_>> {
        Vec::new()
    }
    /// It as a reference target (`None`: no kind references its kind).
    fn as_target(&self) -> Option<Target> {
        None
    }
}

/// An object of a referenced kind as its change is announced.
pub fn target_of<T: RefTarget>(obj: &T) -> Target {
    Target {
        kind: T::KIND,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        labels: obj.labels().clone(),
        controller_uid: controller_uid(obj),
    }
}

impl Refers for SubnetGroup {
    fn as_target(&self) -> Option<Target> {
        Some(target_of(self))
    }
}

impl Refers for SecurityGroup {
    fn as_target(&self) -> Option<Target> {
        Some(target_of(self))
    }
}

impl Refers for ParameterGroup {
    fn as_target(&self) -> Option<Target> {
        Some(target_of(self))
    }
}

/// The kind a twin target is announced as: its kind with the twin's group, so that a twin's
/// change wakes only twins (a twin's references name twins, see [`Family`]).
pub(crate) const fn twin_target_kind(kind: &'static str) -> &'static str {
    match kind.as_bytes() {
        b"SubnetGroup" => "SubnetGroup.rds.aws.m.upbound.io",
        b"SecurityGroup" => "SecurityGroup.ec2.aws.m.upbound.io",
        b"ParameterGroup" => "ParameterGroup.rds.aws.m.upbound.io",
        _ => kind,
    }
}

/// A twin target: announced under its twin kind.
macro_rules! twin_target {
    ($($kind:ty),*) => {$(
        impl Refers for crate::api::twin::M<$kind> {
            fn as_target(&self) -> Option<Target> {
                self.0.as_target().map(|mut t| {
                    t.kind = twin_target_kind(t.kind);
                    t
                })
            }
        }
    )*};
}
twin_target!(SubnetGroup, SecurityGroup, ParameterGroup);

/// A twin that refers: it waits for the twins of what its kind waits for.
macro_rules! twin_referrer {
    ($kind:ty => [$($target:ty),*]) => {
        impl Refers for crate::api::twin::M<$kind> {
            const REFERS_TO: &'static [&'static str] =
                &[$(twin_target_kind(<$target as RefTarget>::KIND)),*];
            fn wanted(&self) -> Vec<Wanted<'_>> {
                let mut wanted = self.0.wanted();
                for w in &mut wanted {
                    w.kind = twin_target_kind(w.kind);
                }
                wanted
            }
        }
    };
}
twin_referrer!(Instance => [SubnetGroup, SecurityGroup, ParameterGroup]);
twin_referrer!(SecurityGroupRule => [SecurityGroup]);

/// The reference fields of an Instance, each with the kind it names (resolved by
/// `super::network::resolve_instance_refs`).
pub(crate) fn instance_ref_fields<'a>(
    fp: &'a crate::api::instance::InstanceParameters,
    no_ids: &'a [String],
) -> [(&'static str, RefField<'a>); 3] {
    [
        (
            SubnetGroup::KIND,
            RefField::One {
                field: "dbSubnetGroupName",
                current: fp.db_subnet_group_name.as_deref(),
                reference: fp.db_subnet_group_name_ref.as_ref(),
                selector: fp.db_subnet_group_name_selector.as_ref(),
            },
        ),
        (
            SecurityGroup::KIND,
            RefField::Many {
                field: "vpcSecurityGroupIds",
                current: fp.vpc_security_group_ids.as_deref().unwrap_or(no_ids),
                references: fp.vpc_security_group_id_refs.as_deref().unwrap_or_default(),
                selector: fp.vpc_security_group_id_selector.as_ref(),
            },
        ),
        (
            ParameterGroup::KIND,
            RefField::One {
                field: "parameterGroupName",
                current: fp.parameter_group_name.as_deref(),
                reference: fp.parameter_group_name_ref.as_ref(),
                selector: fp.parameter_group_name_selector.as_ref(),
            },
        ),
    ]
}

impl Refers for Instance {
    const REFERS_TO: &'static [&'static str] =
        &[SubnetGroup::KIND, SecurityGroup::KIND, ParameterGroup::KIND];
    fn wanted(&self) -> Vec<Wanted<'_>> {
        instance_ref_fields(&self.spec.for_provider, &[])
            .iter()
            .filter_map(|(kind, f)| f.wanted(kind))
            .collect()
    }
}

impl Refers for SecurityGroupRule {
    const REFERS_TO: &'static [&'static str] = &[SecurityGroup::KIND];
    /// securityGroupId and sourceSecurityGroupId (resolved in `super::security_group_rule`).
    fn wanted(&self) -> Vec<Wanted<'_>> {
        rule_ref_fields(&self.spec.for_provider)
            .iter()
            .filter_map(|f| f.wanted(SecurityGroup::KIND))
            .collect()
    }
}

/// The reference fields of a SecurityGroupRule, both naming SecurityGroups: securityGroupId and
/// sourceSecurityGroupId (resolved by `super::security_group_rule`).
pub(crate) fn rule_ref_fields(
    fp: &crate::api::security_group_rule::SecurityGroupRuleParameters,
) -> [RefField<'_>; 2] {
    [
        RefField::One {
            field: "securityGroupId",
            current: fp.security_group_id.as_deref(),
            reference: fp.security_group_id_ref.as_ref(),
            selector: fp.security_group_id_selector.as_ref(),
        },
        RefField::One {
            field: "sourceSecurityGroupId",
            current: fp.source_security_group_id.as_deref(),
            reference: fp.source_security_group_id_ref.as_ref(),
            selector: fp.source_security_group_id_selector.as_ref(),
        },
    ]
}

/// The objects of `objects` that wait for `target` (pure): [`super::refs::refers_to`] over
/// their unresolved references.
pub(crate) fn waiting_on<'o, K: Refers + Resource + 'o>(
    objects: impl IntoIterator<Item = &'o K>,
    target: &Target,
) -> Vec<(String, String)> {
    objects
        .into_iter()
        .filter(|o| {
            let wanted = o.wanted();
            !wanted.is_empty()
                && super::refs::refers_to(
                    o.meta().namespace.as_deref().unwrap_or_default(),
                    controller_uid(*o).as_deref(),
                    &wanted,
                    target,
                )
        })
        .map(|o| {
            (
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// What resolving an object's references gave.
#[derive(Debug, PartialEq)]
pub enum Resolved {
    /// Every reference is resolved and the spec already says so (nothing to write).
    Unchanged,
    /// Write these forProvider fields (then go on: the values are in the returned object).
    Write(Map<String, Value>),
    /// A reference is not ready: the object waits (Synced=False, [`Waiting::REASON`]).
    Wait(Waiting),
}

/// Resolve `fields` (pure) against candidates of their kind (`kind` of each field, in the same
/// order) and the current values.
pub fn resolve_fields(
    kind: &'static str,
    controller_uid: Option<&str>,
    fields: &[RefField<'_>],
    candidates: &[Candidate],
) -> Resolved {
    let mut write = Map::new();
    for f in fields {
        let (RefField::One { field, .. } | RefField::Many { field, .. }) = f;
        let spec = Field {
            name: field,
            kind,
            controller_uid,
        };
        // The value to write: a resolved one that differs from the current.
        let value = match f {
            RefField::One {
                current,
                reference,
                selector,
                ..
            } => resolve_one(&spec, *current, *reference, *selector, candidates).map(|v| {
                v.filter(|v| Some(v.as_str()) != *current)
                    .map(Value::String)
            }),
            RefField::Many {
                current,
                references,
                selector,
                ..
            } => resolve_many(&spec, current, references, *selector, candidates).map(|v| {
                v.filter(|v| v.as_slice() != *current)
                    .map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
            }),
        };
        match value {
            Ok(Some(v)) => {
                write.insert(field.to_string(), v);
            }
            Ok(None) => {}
            Err(w) => return Resolved::Wait(w),
        }
    }
    if write.is_empty() {
        Resolved::Unchanged
    } else {
        Resolved::Write(write)
    }
}

/// Resolve the fields of `obj` that refer to kind `T`: lists `T` in the object's namespace
/// (only when a field has a reference or selector that needs resolving), then as
/// [`resolve_fields`]. `Err`: the LIST failed.
pub async fn resolve<T: RefTarget, R: Resource>(
    client: &kube::Client,
    obj: &R,
    fields: &[RefField<'_>],
) -> Result<Resolved, kube::Error> {
    if !fields.iter().any(RefField::needs_lookup) {
        return Ok(Resolved::Unchanged);
    }
    let uid = controller_uid(obj);
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    let api: Api<T> = Api::namespaced(client.clone(), &ns);
    let list = api.list(&ListParams::default()).await?;
    let candidates: Vec<Candidate> = list.items.iter().map(candidate).collect();
    Ok(resolve_fields(T::KIND, uid.as_deref(), fields, &candidates))
}

/// Merge the writes of several [`resolve`] calls: the first wait wins.
pub fn merge(results: Vec<Resolved>) -> Resolved {
    let mut all = Map::new();
    for r in results {
        match r {
            Resolved::Unchanged => {}
            Resolved::Write(m) => all.extend(m),
            Resolved::Wait(w) => return Resolved::Wait(w),
        }
    }
    if all.is_empty() {
        Resolved::Unchanged
    } else {
        Resolved::Write(all)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {

    #[test]
    fn a_twin_target_wakes_only_twins() {
        use crate::api::twin::M;
        let group: SubnetGroup = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "net", "namespace": "team"},
            "spec": {"forProvider": {"region": "eu-west-1"}}
        }))
        .unwrap();
        let base = group.as_target().unwrap();
        let twin = M(group).as_target().unwrap();
        assert_eq!(base.kind, "SubnetGroup");
        assert_eq!(twin.kind, "SubnetGroup.rds.aws.m.upbound.io");
        assert!(<M<Instance> as Refers>::REFERS_TO.contains(&twin.kind));
        assert!(!<M<Instance> as Refers>::REFERS_TO.contains(&base.kind));
        assert!(!<Instance as Refers>::REFERS_TO.contains(&twin.kind));
        let inst: Instance = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "team"},
            "spec": {"forProvider": {"region": "eu-west-1",
                "dbSubnetGroupNameRef": {"name": "net"}}}
        }))
        .unwrap();
        let kinds: Vec<&str> = M(inst).wanted().iter().map(|w| w.kind).collect();
        assert_eq!(kinds, ["SubnetGroup.rds.aws.m.upbound.io"]);
    }
    use super::*;

    #[test]
    fn fields_are_written_only_when_they_change() {
        let sel = Selector {
            match_controller_ref: Some(true),
            ..Default::default()
        };
        let pool = vec![Candidate {
            name: "net".into(),
            controller_uid: Some("claim".into()),
            ready: true,
            value: Some("grp-1".into()),
            labels: Default::default(),
            deleting: false,
        }];
        let ids: Vec<String> = vec![];
        let fields = [
            RefField::One {
                field: "dbSubnetGroupName",
                current: None,
                reference: None,
                selector: Some(&sel),
            },
            RefField::Many {
                field: "vpcSecurityGroupIds",
                current: &ids,
                references: &[],
                selector: None,
            },
        ];
        let got = resolve_fields("SubnetGroup", Some("claim"), &fields, &pool);
        let Resolved::Write(m) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            m.get("dbSubnetGroupName"),
            Some(&Value::String("grp-1".into()))
        );
        assert_eq!(m.len(), 1);
        let set = [RefField::One {
            field: "dbSubnetGroupName",
            current: Some("grp-1"),
            reference: None,
            selector: Some(&sel),
        }];
        assert_eq!(
            resolve_fields("SubnetGroup", Some("claim"), &set, &pool),
            Resolved::Unchanged
        );
        assert!(fields[0].needs_lookup() && !fields[1].needs_lookup() && !set[0].needs_lookup());
        let waiting = resolve_fields("SubnetGroup", Some("other"), &fields, &pool);
        assert!(matches!(waiting, Resolved::Wait(_)), "{waiting:?}");
        assert!(matches!(
            merge(vec![
                Resolved::Unchanged,
                Resolved::Write(Map::new()),
                waiting
            ]),
            Resolved::Wait(_)
        ));
    }
}
