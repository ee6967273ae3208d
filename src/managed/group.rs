//! The external client of the group kinds (SubnetGroup, ParameterGroup, SecurityGroup), written
//! once for the kind and for its namespaced twin. Each kind's file says only what differs
//! ([`GroupKind`]): how it finds its AWS object ([`NetGroup`]), how it creates and updates it,
//! and what status.atProvider shows of it. Finding before creating, ownership from the tags,
//! deleting only what is the object's, and Ready/Synced are here, the same for every such kind.

use std::fmt::Debug;
use std::future::Future;

use kube::runtime::controller::Action;

use crate::api::managed::Policies;
use crate::api::twin::{Base, M, Twinned};

use super::aws::Aws;
use super::decide::Ownership;
use super::error::Error;
use super::kind::{Deletion, ExternalClient, Kind, ownership_from_tags};
use super::lifecycle::Flow;
use super::network::{Lookup, Net, NetGroup, delete_owned, find_or_creatable, publish_ready};
use super::outcome::{Blocked, Step, pass_on};

/// What a group kind's file implements, besides [`NetGroup`].
pub(crate) trait GroupKind:
    NetGroup<Found: Clone + Debug + Sync> + Twinned + Base<Self>
{
    /// Create the missing AWS object `id` (create is allowed: [`find_or_creatable`] said so).
    fn create<K: GroupObject<Self>>(
        flow: &mut Flow<'_, K>,
        net: &Net,
        id: &str,
    ) -> impl Future<Output = Result<Step<Self::Found>, Error>> + Send;

    /// Bring the AWS object in line with the spec, or note the drift that the policies leave
    /// alone.
    fn update<K: GroupObject<Self>>(
        flow: &mut Flow<'_, K>,
        net: &Net,
        policies: &Policies,
        id: &str,
        found: Self::Found,
    ) -> impl Future<Output = Result<Step<Self::Found>, Error>> + Send;

    /// Record what was found in status.atProvider; `Some`: the drift left alone, for the Synced
    /// condition.
    fn observed(found: Self::Found, status: &mut Self::Status) -> Option<String>;
}

/// An object of the group kind `B`: `B` itself, or its namespaced twin `M<B>`.
pub(crate) trait GroupObject<B: GroupKind>:
    ExternalClient<State = Option<Net>> + Base<B> + Kind<Status = B::Status>
{
}

impl<B: GroupKind> GroupObject<B> for B {}
impl<B: GroupKind> GroupObject<B> for M<B> {}

/// The lifecycle's steps of a group kind, for either object of it.
macro_rules! group_client {
    ($obj:ty, $base:ident) => {
        impl<$base: GroupKind> ExternalClient for $obj {
            type External = $base::Found;
            type State = Option<Net>;
            type Updated = $base::Found;

            async fn observe_or_create(
                flow: &mut Flow<'_, Self>,
                policies: &Policies,
                _aws: &Aws,
                id: &str,
            ) -> Result<Step<$base::Found>, Error> {
                let net = match pass_on!(find_or_creatable::<$base, _>(flow, policies, id).await?) {
                    Lookup::Found(found) => return Ok(Step::Go(found)),
                    Lookup::Create(net) => net,
                };
                let found = pass_on!($base::create(flow, &net, id).await?);
                flow.state = Some(net);
                Ok(Step::Go(found))
            }

            fn ownership(&self, found: &$base::Found) -> Ownership {
                ownership_from_tags(self, $base::id_and_tags(found).1)
            }

            async fn update(
                flow: &mut Flow<'_, Self>,
                policies: &Policies,
                _aws: &Aws,
                id: &str,
                found: $base::Found,
            ) -> Result<Step<$base::Found>, Error> {
                // No clients kept: nothing was found by this reconcile's own lookup.
                let Some(net) = flow.state.take() else {
                    return Ok(Step::Go(found));
                };
                $base::update(flow, &net, policies, id, found).await
            }

            async fn publish(
                flow: &mut Flow<'_, Self>,
                found: $base::Found,
            ) -> Result<Step<Action>, Error> {
                let note = $base::observed(found, &mut flow.status);
                Ok(Step::Go(publish_ready(flow, note)))
            }

            async fn delete(
                flow: &mut Flow<'_, Self>,
                _policies: &Result<Policies, String>,
                _aws: &Aws,
                id: &str,
            ) -> Deletion {
                delete_owned::<$base, _>(flow, id).await
            }

            async fn keep(_flow: &Flow<'_, Self>) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

group_client!(B, B);
group_client!(M<B>, B);

/// The request the spec makes (`Err`: what it lacks, in words), or Synced=False (InvalidSpec)
/// until the spec changes.
pub(crate) fn valid<K: ExternalClient, T>(flow: &mut Flow<'_, K>, r: Result<T, String>) -> Step<T> {
    match r {
        Ok(v) => Step::Go(v),
        Err(m) => flow.block(Blocked::new("InvalidSpec", m), Action::await_change()),
    }
}

/// Fields the spec changed that AWS cannot change in place: Synced=False (ImmutableField) until
/// the spec changes. `None`: there are none.
pub(crate) fn refuse_immutable<K: ExternalClient, T>(
    flow: &mut Flow<'_, K>,
    refused: &[String],
) -> Option<Step<T>> {
    if refused.is_empty() {
        return None;
    }
    let b = Blocked::new(
        "ImmutableField",
        format!(
            "cannot change {} of an existing {} (replace the object instead)",
            refused.join(", "),
            K::NOUN
        ),
    );
    Some(flow.block(b, Action::await_change()))
}
