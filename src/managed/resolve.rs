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

use super::refs::{Candidate, Field, Waiting, resolve_many, resolve_one};

/// A kind a reference may point at, and the value a reference takes from it.
pub trait RefTarget:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The kind's name in messages.
    const KIND: &'static str;
    /// The value (`None` while there is none).
    fn ref_value(&self) -> Option<String>;
    fn is_ready(&self) -> bool;
}

fn ready(conditions: &[crate::api::common::Condition]) -> bool {
    get_condition(conditions, READY).is_some_and(|c| c.status == ConditionStatus::True)
}

impl RefTarget for SubnetGroup {
    const KIND: &'static str = "SubnetGroup";
    /// The group name: its external-name.
    fn ref_value(&self) -> Option<String> {
        external_name(self.meta()).map(str::to_string)
    }
    fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| ready(&s.conditions))
    }
}

impl RefTarget for ParameterGroup {
    const KIND: &'static str = "ParameterGroup";
    /// The group name: its external-name.
    fn ref_value(&self) -> Option<String> {
        external_name(self.meta()).map(str::to_string)
    }
    fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| ready(&s.conditions))
    }
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
    fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| ready(&s.conditions))
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
        match f {
            RefField::One {
                field,
                current,
                reference,
                selector,
            } => {
                let spec = Field {
                    name: field,
                    kind,
                    controller_uid,
                };
                match resolve_one(&spec, *current, *reference, *selector, candidates) {
                    Ok(Some(v)) if Some(v.as_str()) != *current => {
                        write.insert(field.to_string(), Value::String(v));
                    }
                    Ok(_) => {}
                    Err(w) => return Resolved::Wait(w),
                }
            }
            RefField::Many {
                field,
                current,
                references,
                selector,
            } => {
                let spec = Field {
                    name: field,
                    kind,
                    controller_uid,
                };
                match resolve_many(&spec, current, references, *selector, candidates) {
                    Ok(Some(v)) if v.as_slice() != *current => {
                        write.insert(
                            field.to_string(),
                            Value::Array(v.into_iter().map(Value::String).collect()),
                        );
                    }
                    Ok(_) => {}
                    Err(w) => return Resolved::Wait(w),
                }
            }
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
