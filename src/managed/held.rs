//! The deletion guard of composed objects: `kubectl delete` on an object a claim composed, while
//! the claim still wants it, waits (the finalizer stays, Synced=False says why) instead of
//! deleting the database and letting the claim create an empty one under the same name. The
//! decision is pure ([`decide::held_by_claim`]); this file reads the claim.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::decide::{self, ALLOW_DELETION, Composer};
use super::error::{Error, kube_err};
use super::kind::{ExternalClient, composer_ref};
use super::lifecycle::Flow;
use super::outcome::Step;

/// How soon a held deletion looks again: the claim pruning the object, or being deleted,
/// lets it go on.
const HELD_RECHECK: Duration = Duration::from_secs(10);

impl<K: ExternalClient> Flow<'_, K> {
    /// Step one of a deletion that would delete the external resource: hold it while the claim
    /// that composed the object still wants it.
    pub(crate) async fn held_by_claim(&mut self) -> Result<Step<()>, Error> {
        let allowed = self
            .obj
            .annotations()
            .get(ALLOW_DELETION)
            .is_some_and(|v| v == "true");
        if allowed {
            return Ok(Step::Go(()));
        }
        let composer = self.composer().await?;
        match decide::held_by_claim(composer.as_ref(), allowed, K::NOUN) {
            Some(b) => Ok(self.block(b, Action::requeue(HELD_RECHECK))),
            None => Ok(Step::Go(())),
        }
    }

    /// The claim that composed this object, if it still exists: the controller owner reference
    /// that the claim-name label confirms, of the same UID.
    async fn composer(&self) -> Result<Option<Composer>, Error> {
        let Some(owner) = composer_ref(&self.obj).cloned() else {
            return Ok(None);
        };
        let (group, version) = match owner.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", owner.api_version.as_str()),
        };
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &owner.kind));
        let ns = self.obj.namespace().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.shared.client.clone(), &ns, &ar);
        let claim = match api.get_opt(&owner.name).await {
            Ok(c) => c,
            // paved may not read that kind (not a claim it serves): nothing to hold for.
            Err(kube::Error::Api(e)) if e.code == 403 || e.code == 404 => {
                tracing::debug!(object = %self.key, owner = %owner.name, code = e.code, "composer unreadable");
                None
            }
            Err(e) => return Err(kube_err("reading the claim that composed it", &self.obj)(e)),
        };
        let Some(claim) = claim.filter(|c| c.meta().uid.as_deref() == Some(owner.uid.as_str()))
        else {
            return Ok(None);
        };
        let me = (K::kind(&()).to_string(), self.obj.name_any());
        let lists_it = claim
            .data
            .pointer("/status/resourceRefs")
            .and_then(|v| v.as_array())
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("kind").and_then(|k| k.as_str()) == Some(me.0.as_str())
                        && r.get("name").and_then(|n| n.as_str()) == Some(me.1.as_str())
                })
            });
        Ok(Some(Composer {
            name: format!("{} {ns}/{}", owner.kind, owner.name),
            deleting: claim.meta().deletion_timestamp.is_some(),
            lists_it,
        }))
    }
}
