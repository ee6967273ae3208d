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
use crate::api::managed::{EXTERNAL_NAME, Policies};

use super::aws::Aws;
use super::error::Error;
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
    /// The identifier paved gives a new external resource of this object (set as its
    /// external-name before the first AWS call, so that a crash never makes two).
    fn derive_identifier(&self) -> String;
    /// Whether `identifier` may name an external resource of this kind (`Err`: the rule it
    /// breaks, in words).
    fn check_identifier(identifier: &str) -> Result<(), &'static str>;
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

    /// Whether the external resource carries this object's ownership tags.
    fn owned(&self, external: &Self::External) -> bool;

    /// Who owns the external resource, in words, for a refusal. Never names another object.
    fn owner_words(&self, external: &Self::External) -> String;

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
        Some(prev) if may_create && prev != id => Err(Blocked::new(
            "ImmutableField",
            format!(
                "identifier: annotation {EXTERNAL_NAME} changed from {prev:?} to {id:?}; paved does not rename an existing {} (set it back)",
                K::NOUN
            ),
        )),
        _ => Ok(id),
    }
}
