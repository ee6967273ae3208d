//! What the lifecycle needs of a managed kind: [`Kind`] (the Kubernetes side: status, region,
//! identifier) and, per kind, its external client — the steps that talk to AWS and return typed
//! [`Step`]s. The lifecycle ([`super::lifecycle`]) is written once against these traits; adding a
//! kind means its API types, one file implementing [`Kind`] and [`ExternalClient`], and one
//! registration line in `run.rs`.

use std::fmt::Debug;
use std::future::Future;

use kube::runtime::controller::Action;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::common::Condition;
use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::common::ProviderConfigKind;
use crate::api::instance::WantedIdentifier;
use crate::api::managed::{
    CLAIM_NAME_LABEL, COMPOSED_BY_TAG, COMPOSITION_RESOURCE_NAME, EXTERNAL_NAME, OWNER_TAG,
    OWNER_UID_TAG, Placement, Policies,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use super::aws::Aws;
use super::decide::Ownership;
use super::error::{Error, key_of};
use super::lifecycle::Flow;
use super::object::ManagedObject;
use super::outcome::{Blocked, Step};

/// The status of a managed object, as the lifecycle reads and writes it.
pub(crate) trait ManagedStatus:
    Default + Clone + Debug + PartialEq + Serialize + Send + Sync + 'static
{
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn conditions(&self) -> &[Condition];
    /// The identifier of the external resource this object last observed (status.atProvider).
    fn observed_identifier(&self) -> Option<&str>;
    /// Whether the last observation saw the external resource being deleted.
    fn observed_deleting(&self) -> bool;
    /// Forget the observation (the external resource is missing or not this object's).
    fn clear_observation(&mut self);
    /// Where the external resource lives, as recorded.
    fn placement(&self) -> Option<&Placement>;
    fn set_placement(&mut self, placement: Placement);
}

/// A managed kind: the Kubernetes object with its status, and the names the lifecycle uses in
/// messages, Events and metrics.
pub(crate) trait Kind: ManagedObject + Serialize + DeserializeOwned + Debug {
    type Status: ManagedStatus;
    /// The noun of its external resource in messages, e.g. `RDS instance`.
    const NOUN: &'static str;
    /// The metric label of its writes, e.g. `instance` (`instance_status`, ...).
    const METRIC: &'static str;

    fn status(&self) -> Option<&Self::Status>;
    /// The AWS region of the external resource.
    fn region(&self) -> &str;

    /// Where the spec says the external resource lives.
    fn placement(&self) -> Placement {
        let pc = self.provider_config_ref();
        let kind = pc
            .and_then(|r| r.kind)
            .map_or("ProviderConfig", |k| match k {
                ProviderConfigKind::ProviderConfig => "ProviderConfig.aws.m.upbound.io",
                ProviderConfigKind::ClusterProviderConfig => "ClusterProviderConfig",
            });
        Placement {
            region: self.region().to_string(),
            provider_config: format!("{kind}/{}", self.provider_config_name()),
        }
    }
    /// The identifier paved gives a new external resource of this object (set as its
    /// external-name before the first AWS call, so that a crash never makes two).
    fn derive_identifier(&self) -> String;
    /// Whether `identifier` may name an external resource of this kind (`Err`: the rule it
    /// breaks, in words).
    fn check_identifier(identifier: &str) -> Result<(), &'static str>;
    /// The identifier the spec names in a field of its own, with that field (the Instance's
    /// spec.forProvider.identifier); it becomes the external-name of a new resource. `None`
    /// for kinds without such a field.
    fn wanted_identifier(&self) -> Option<(&'static str, WantedIdentifier)> {
        None
    }
}

/// A twin is its kind in another API group: the same status, names and identifiers.
impl<T: Kind + crate::api::twin::Twinned> Kind for crate::api::twin::M<T> {
    type Status = T::Status;
    const NOUN: &'static str = T::NOUN;
    const METRIC: &'static str = T::METRIC;

    fn status(&self) -> Option<&Self::Status> {
        self.0.status()
    }
    fn region(&self) -> &str {
        self.0.region()
    }
    fn placement(&self) -> Placement {
        self.0.placement()
    }
    fn derive_identifier(&self) -> String {
        self.0.derive_identifier()
    }
    fn check_identifier(identifier: &str) -> Result<(), &'static str> {
        T::check_identifier(identifier)
    }
    fn wanted_identifier(&self) -> Option<(&'static str, WantedIdentifier)> {
        self.0.wanted_identifier()
    }
}

/// The external client of a kind: its steps against AWS, driven by the lifecycle. Each returns
/// a typed [`Step`] (go on, finish with a status write, or return at once) and sets the
/// conditions of what it saw through the [`Flow`]; none writes the object itself.
pub(crate) trait ExternalClient: Kind {
    /// What the client knows of one external resource (as AWS describes it).
    type External: Clone + Debug + Send + Sync;
    /// Per-reconcile state of the kind's steps (the Instance: its master password).
    type State: Default + Send + Sync;
    /// The outcome of an update, which publishing reads.
    type Updated: Send;

    /// Observe the external resource `id`, and create it when it is missing and the policies
    /// allow Create.
    fn observe_or_create(
        flow: &mut Flow<'_, Self>,
        policies: &Policies,
        aws: &Aws,
        id: &str,
    ) -> impl Future<Output = Result<Step<Self::External>, Error>> + Send;

    /// Whose the external resource is, from its tags (see [`ownership_from_tags`]).
    fn ownership(&self, external: &Self::External) -> Ownership;

    /// Bring the external resource in line with the spec (with Update excluded: note the drift).
    fn update(
        flow: &mut Flow<'_, Self>,
        policies: &Policies,
        aws: &Aws,
        id: &str,
        external: Self::External,
    ) -> impl Future<Output = Result<Step<Self::Updated>, Error>> + Send;

    /// Publish what the external resource offers (connection details), then set Synced and
    /// choose the next poll.
    fn publish(
        flow: &mut Flow<'_, Self>,
        updated: Self::Updated,
    ) -> impl Future<Output = Result<Step<Action>, Error>> + Send;

    /// The delete path once the AWS client is there: observe, check ownership, delete.
    fn delete(
        flow: &mut Flow<'_, Self>,
        policies: &Result<Policies, String>,
        aws: &Aws,
        id: &str,
    ) -> impl Future<Output = Deletion> + Send;

    /// What must outlive the object when it is released without deleting the external
    /// resource (the Instance: its master-password Secret).
    fn keep(flow: &Flow<'_, Self>) -> impl Future<Output = Result<(), Error>> + Send;
}

/// How the delete path ends.
pub(crate) enum Deletion {
    /// The external resource is gone, or is not this object's: let the object go.
    Release(String),
    /// Write status and requeue.
    Finish(Action),
}

/// The identifier to use (pure): the external-name (set or derived), valid for the kind, and not
/// renamed since paved last observed the external resource (`previous`) when paved may create
/// (renaming is not supported).
pub(crate) fn check_identifier<K: Kind>(
    id: Option<String>,
    previous: Option<&str>,
    may_create: bool,
) -> Result<String, Blocked> {
    let id = match id {
        Some(id) => match K::check_identifier(&id) {
            Ok(()) => id,
            Err(rule) => {
                return Err(Blocked::new(
                    "InvalidExternalName",
                    format!(
                        "annotation {EXTERNAL_NAME}={id:?} is not a valid {} identifier ({rule})",
                        K::NOUN
                    ),
                ));
            }
        },
        None => {
            return Err(Blocked::new(
                "ExternalNameRequired",
                format!(
                    "managementPolicies exclude Create: set the {EXTERNAL_NAME} annotation to the identifier of the existing {} to manage",
                    K::NOUN
                ),
            ));
        }
    };
    match previous {
        Some(prev) if may_create && prev != id => Err(renamed::<K>(
            &format!("annotation {EXTERNAL_NAME} changed from {prev:?} to {id:?}"),
            &format!("set it back to {prev:?}"),
        )),
        _ => Ok(id),
    }
}

/// The identifier a spec field names (pure), checked before anything is written or sent: valid
/// (`InvalidSpec` naming the field otherwise), and the one this object is bound to, if any —
/// its external-name, else the resource it last observed (`bound`) — since paved does not
/// rename an existing resource (`ImmutableField`, as for a changed external-name).
/// `Ok(Some(id))`: the identifier to give a new resource.
pub(crate) fn check_wanted<K: Kind>(
    wanted: Option<(&str, WantedIdentifier)>,
    bound: Option<&str>,
) -> Result<Option<String>, Blocked> {
    let Some((field, wanted)) = wanted else {
        return Ok(None);
    };
    let id = match wanted {
        WantedIdentifier::Unset => return Ok(None),
        WantedIdentifier::Invalid(id, rule) => {
            return Err(Blocked::new(
                "InvalidSpec",
                format!(
                    "{field} {id:?} is not a valid {} identifier ({rule}); nothing was created",
                    K::NOUN
                ),
            ));
        }
        WantedIdentifier::Valid(id) => id,
    };
    match bound {
        Some(prev) if prev != id => Err(renamed::<K>(
            &format!(
                "{field} is {id:?}, but this object manages {} {prev:?}",
                K::NOUN
            ),
            &format!("set {field} to {prev:?}, or remove it"),
        )),
        _ => Ok(Some(id)),
    }
}

/// `ImmutableField`: the identifier of an existing resource cannot change (`what` changed;
/// `fix`: what to do).
fn renamed<K: Kind>(what: &str, fix: &str) -> Blocked {
    Blocked::new(
        "ImmutableField",
        format!(
            "identifier: {what}; paved does not rename an existing {} ({fix})",
            K::NOUN
        ),
    )
}

/// Whose an external resource is, from its tags: this object's when they carry its UID; another
/// object's when they carry another UID (an earlier object when they name this one's namespace
/// and name); untagged otherwise.
pub(crate) fn ownership_from_tags<K: Kind>(obj: &K, tags: &BTreeMap<String, String>) -> Ownership {
    let uid = obj.uid().unwrap_or_default();
    match tags.get(OWNER_UID_TAG) {
        Some(u) if !uid.is_empty() && *u == uid => Ownership::Ours,
        None if !tags.contains_key(OWNER_TAG) => Ownership::Untagged,
        other => {
            let earlier = (tags.get(OWNER_TAG) == Some(&key_of(obj)))
                .then(|| other.cloned().unwrap_or_default());
            match (earlier, composed_by(obj)) {
                (Some(uid), Some(mine)) if tags.get(COMPOSED_BY_TAG) == Some(&mine) => {
                    Ownership::Predecessor { uid }
                }
                (earlier, _) => Ownership::Others { earlier },
            }
        }
    }
}

/// Whether tags prove the external resource is this object's, or its orphaned predecessor's
/// (composed by the same claim for the same resource), which it manages as its own.
pub(crate) fn owned_by<K: Kind>(obj: &K, tags: &BTreeMap<String, String>) -> bool {
    matches!(
        ownership_from_tags(obj, tags),
        Ownership::Ours | Ownership::Predecessor { .. }
    )
}

/// The claim that composed `obj`, as `<claim UID>/<composition resource name>`: its controller
/// owner reference, confirmed by the claim-name label, and its composition-resource-name
/// annotation. `None` for an object nobody composed.
pub(crate) fn composed_by<K: Kind>(obj: &K) -> Option<String> {
    let owner = composer_ref(obj)?;
    let resource = obj.annotations().get(COMPOSITION_RESOURCE_NAME)?;
    Some(format!("{}/{resource}", owner.uid))
}

/// The controller owner reference of the claim that composed `obj` (the claim-name label names
/// it too).
pub(crate) fn composer_ref<R: Resource>(obj: &R) -> Option<&OwnerReference> {
    let claim = obj.meta().labels.as_ref()?.get(CLAIM_NAME_LABEL)?;
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.name == *claim)
}

/// The ownership tags paved puts on the external resources of `obj`.
pub(crate) fn owner_tags<K: Kind>(obj: &K) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = [
        (OWNER_TAG.to_string(), key_of(obj)),
        (OWNER_UID_TAG.to_string(), obj.uid().unwrap_or_default()),
    ]
    .into();
    if let Some(c) = composed_by(obj) {
        t.insert(COMPOSED_BY_TAG.to_string(), c);
    }
    t
}

/// A change of placement (pure): the recorded one differs from the spec's. The Synced message
/// names the fields that changed.
pub(crate) fn moved<K: Kind>(
    recorded: &Placement,
    wanted: &Placement,
    id: &str,
) -> Option<Blocked> {
    let mut changed = Vec::new();
    if recorded.region != wanted.region {
        changed.push(format!(
            "spec.forProvider.region changed from {} to {}",
            recorded.region, wanted.region
        ));
    }
    if recorded.provider_config != wanted.provider_config {
        changed.push(format!(
            "spec.providerConfigRef changed from {} to {}",
            recorded.provider_config, wanted.provider_config
        ));
    }
    (!changed.is_empty()).then(|| {
        Blocked::new(
            "ImmutableField",
            format!(
                "{}; the {} {id} stays where it is: paved does not move it, nor create a second, empty one elsewhere. Set it back (deleting this object also waits for that), or create a new object for a new {}",
                changed.join(" and "),
                K::NOUN,
                K::NOUN
            ),
        )
    })
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::api::instance::{Instance, wanted_identifier};

    #[test]
    fn a_spec_identifier_is_valid_and_never_a_rename() {
        let field = "spec.forProvider.identifier";
        // (spec identifier, bound external-name/observed, expected: Ok(id) or Err(reason))
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<Option<&'a str>, &'a str>,
        );
        let cases: [Case; 9] = [
            (None, None, Ok(None)),
            (None, Some("derived-1234"), Ok(None)),
            (Some(""), None, Ok(None)),
            (Some("orders-main"), None, Ok(Some("orders-main"))),
            (
                Some("orders-main"),
                Some("orders-main"),
                Ok(Some("orders-main")),
            ),
            (
                Some("orders-other"),
                Some("orders-main"),
                Err("ImmutableField"),
            ),
            (Some("Orders"), None, Err("InvalidSpec")),
            (Some("1orders"), None, Err("InvalidSpec")),
            (
                Some("orders--main"),
                Some("orders--main"),
                Err("InvalidSpec"),
            ),
        ];
        for (i, (spec, bound, want)) in cases.into_iter().enumerate() {
            let got = check_wanted::<Instance>(Some((field, wanted_identifier(spec))), bound);
            match (got, want) {
                (Ok(id), Ok(w)) => assert_eq!(id.as_deref(), w, "case {i}"),
                (Err(b), Err(reason)) => {
                    assert_eq!(b.reason, reason, "case {i}");
                    assert!(b.message.contains(field), "case {i}: {}", b.message);
                }
                (got, want) => panic!("case {i}: {got:?}, expected {want:?}"),
            }
        }
        for bad in ["", "-a", "a-", "a--b", "a_b", &"a".repeat(64)] {
            assert!(
                !matches!(wanted_identifier(Some(bad)), WantedIdentifier::Valid(_)),
                "{bad}"
            );
        }
        assert_eq!(
            wanted_identifier(Some(&"a".repeat(63))),
            WantedIdentifier::Valid("a".repeat(63))
        );
        // a kind without such a field
        assert_eq!(check_wanted::<Instance>(None, Some("x")).ok(), Some(None));
    }
}
