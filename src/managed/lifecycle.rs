//! The managed-resource lifecycle, written once for every kind: pause, management policies,
//! finalizer and external-name, the backoff gate, ownership, the Ready/Synced conditions, the
//! status write and its Events, the count of reconciles that end Synced=False
//! (`paved_rds_reconcile_failures`), and release (finalizer removal). A kind's own steps — observe,
//! create, update, publish, delete against AWS — are its [`ExternalClient`] (for the RDS
//! Instance, [`super::instance`]); they return typed [`Step`]s and never write the object
//! themselves.
//!
//! A reconcile reads as: paused? deleting? then either
//! `prepare → connect → observe (or create) → check ownership → update → publish → report`, or
//! `release reasons → held by its claim? → connect → observe → delete`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::common::{Condition, ConditionStatus, READY, SYNCED, get_condition, set_condition};
use crate::api::instance::WantedIdentifier;
use crate::api::managed::{EXTERNAL_NAME, FINALIZER, PAUSED, Policies};
use crate::kube::backoff::spread;
use crate::kube::compact::Compact;
use crate::kube::finalizer::{self, Written};

use super::aws::Aws;
use super::config::{FIELD_MANAGER, error_curve};
use super::controller::Ctx;
use super::decide::{self, Found, Ownership, Start};
use super::error::{Error, key_of, kube_err};
use super::kind::{Deletion, ExternalClient, ManagedStatus, check_identifier, check_wanted, moved};
use super::model::{AwsError, ErrorClass};
use super::outcome::{Blocked, Outcome, Step, pass_on, step};
use super::resolve::Refers;

/// One reconcile of one object of kind `K`.
pub(crate) struct Flow<'a, K: ExternalClient> {
    pub ctx: &'a Ctx<K>,
    pub obj: K,
    pub api: Api<K>,
    /// The status this reconcile writes (if it differs from the object's).
    pub status: K::Status,
    pub key: String,
    pub generation: Option<i64>,
    pub now: Time,
    /// ResourceVersions of this object this reconcile has seen superseded by its own writes.
    pub seen: Vec<String>,
    /// What the kind's steps keep during this reconcile.
    pub state: K::State,
    /// Why this reconcile set Synced=False, if it did (the last [`Self::synced`] call wins):
    /// the reason, and AWS's error code when an AWS error was the cause. Counted once, when
    /// the reconcile finishes ([`Self::finish`]).
    failure: Option<(&'static str, Option<String>)>,
}

/// A Synced message without its retry countdown, which changes on every attempt.
fn without_retry(message: &str) -> &str {
    message
        .find(" (retrying in ")
        .map_or(message, |i| &message[..i])
}

/// Whether a new Synced condition deserves a Warning Event: it is False, and the old one was not
/// False for the same reason and message (the retry countdown aside).
fn warn_worthy(old: Option<&Condition>, new: Option<&Condition>) -> bool {
    new.is_some_and(|s| {
        s.status == ConditionStatus::False
            && old.is_none_or(|o| {
                o.status != s.status
                    || o.reason != s.reason
                    || without_retry(&o.message) != without_retry(&s.message)
            })
    })
}

impl<K: ExternalClient> Flow<'_, K> {
    pub fn poll(&self) -> Duration {
        self.ctx.shared.config.poll_interval
    }

    pub fn transitional(&self) -> Duration {
        self.ctx.shared.config.transitional_poll_interval
    }

    pub fn policies(&self) -> Result<Policies, String> {
        self.obj.policies()
    }

    pub fn external_name(&self) -> Option<String> {
        self.obj.external_name().map(str::to_string)
    }

    pub fn set(
        &mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        set_condition(
            self.status.conditions_mut(),
            Condition::new(type_, status, reason, message, self.generation),
            &self.now,
        );
    }

    pub fn synced(&mut self, ok: bool, reason: &'static str, message: impl Into<String>) {
        self.failure = (!ok).then_some((reason, None));
        self.set(SYNCED, ConditionStatus::from_bool(ok), reason, message);
    }

    /// Synced=False for a refusal AWS answered with `code` (AWS's own), under paved's `reason`
    /// (`WaitingForRDS`, `DependencyViolation`): the failure metric keeps AWS's code.
    pub fn synced_refused(&mut self, reason: &'static str, code: &str, message: impl Into<String>) {
        self.synced(false, reason, message);
        self.failure = Some((reason, Some(code.to_string())));
    }

    /// Synced=False for `b`, then finish with `then`.
    pub fn block<T>(&mut self, b: Blocked, then: Action) -> Step<T> {
        self.synced(false, b.reason, b.message);
        Step::Finish(then)
    }

    pub fn count_write(&self, kind: &str) {
        self.ctx.shared.metrics.record_write(kind);
    }

    /// Remember what a write to the Instance returned, so that the next reconcile does not start
    /// from a store that has not seen it yet.
    fn wrote(&mut self, mut obj: K) {
        crate::kube::meta::slim(obj.meta_mut(), None);
        if let Some(rv) = self.obj.resource_version()
            && !self.seen.contains(&rv)
        {
            self.seen.push(rv);
        }
        self.ctx.latest.wrote(
            self.key.clone(),
            &self.seen,
            obj.resource_version().as_deref(),
            obj.clone(),
        );
        self.obj = obj;
    }

    pub async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let regarding = self.obj.object_ref(&());
        self.ctx
            .shared
            .recorder
            .emit(&regarding, type_, reason, action, note)
            .await;
    }

    /// Write status when it changed semantically (server-side apply, field manager paved-rds),
    /// and publish a Warning event when Synced turned False or changed its reason or message
    /// (the retry countdown aside).
    pub async fn finish(mut self, action: Action) -> Result<Action, Error> {
        self.count_failure();
        let old = self.obj.status().cloned().unwrap_or_default();
        if crate::kube::status::same(&old, &self.status, |s| s.conditions_mut()) {
            return Ok(action);
        }
        let new_synced = get_condition(self.status.conditions(), SYNCED).cloned();
        if warn_worthy(get_condition(old.conditions(), SYNCED), new_synced.as_ref())
            && let Some(s) = new_synced
        {
            tracing::warn!(object = %self.key, kind = K::kind(&()).as_ref(), reason = %s.reason, message = %s.message, "not synced");
            self.event(EventType::Warning, &s.reason, "Reconcile", s.message)
                .await;
        }
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": self.obj.name_any()},
            "status": self.status,
        });
        self.count_write(&format!("{}_status", K::METRIC));
        let written = self
            .api
            .patch_status(
                &self.obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(kube_err("writing status", &self.obj))?;
        self.wrote(written);
        Ok(action)
    }

    /// Count a reconcile that set Synced=False (`paved_rds_reconcile_failures`), once, whether
    /// or not the status changes. A paused object is not failing: paused is what it was asked.
    fn count_failure(&self) {
        if let Some((reason, code)) = &self.failure
            && *reason != "ReconcilePaused"
        {
            self.ctx
                .shared
                .metrics
                .record_failure(&K::kind(&()), reason, code.as_deref());
        }
    }

    /// An AWS error: Synced=False with the code and message, and the backoff to wait (quickly
    /// for throttling and 5xx, up to the configured maximum otherwise; at once on a spec change,
    /// which `spec_hint` says in the message).
    pub fn aws_failed(&mut self, e: AwsError, spec_hint: bool) -> Action {
        let wait = self.ctx.backoffs.fail(
            &self.key,
            self.generation,
            error_curve(e.class, &self.ctx.shared.config),
        );
        let transient = e.class == ErrorClass::Transient;
        let reason = if transient {
            "AWSUnavailable"
        } else {
            "AWSError"
        };
        let hint = if spec_hint && !transient {
            ", or at once when the spec changes"
        } else {
            ""
        };
        self.synced(
            false,
            reason,
            format!(
                "{} failed: {}: {} (retrying in {}s{hint})",
                e.operation,
                e.code,
                e.message,
                wait.as_secs(),
            ),
        );
        self.failure = Some((reason, Some(e.code)));
        Action::requeue(wait)
    }

    /// An AWS error ends the reconcile (see [`Self::aws_failed`]).
    pub fn aws_failure<T>(&mut self, e: AwsError) -> Step<T> {
        Step::Finish(self.aws_failed(e, true))
    }

    /// The backoff gate: an object that failed waits, unless its spec changed.
    pub fn gate(&self) -> Step<()> {
        match self.ctx.backoffs.gate(&self.key, self.generation) {
            Some(wait) => Step::Return(Action::requeue(wait)),
            None => Step::Go(()),
        }
    }

    pub fn succeeded(&self) {
        self.ctx.backoffs.success(&self.key);
    }

    // -----------------------------------------------------------------------------------------
    // metadata

    /// Metadata (finalizers, the external-name annotation) is changed with one merge patch
    /// carrying the resourceVersion (see [`crate::kube::finalizer`]). `false`: the object is gone.
    async fn patch_metadata(
        &mut self,
        finalizers: Option<Vec<String>>,
        annotations: BTreeMap<String, String>,
        action: &'static str,
    ) -> Result<bool, Error> {
        if finalizers.is_none() && annotations.is_empty() {
            return Ok(true);
        }
        self.count_write(&format!("{}_metadata", K::METRIC));
        let name = self.obj.name_any();
        match finalizer::patch_metadata(&self.api, &name, self.obj.meta(), finalizers, &annotations)
            .await
        {
            Ok(Written::Wrote(o)) => {
                self.wrote(o);
                Ok(true)
            }
            Ok(Written::Unchanged) => Ok(true),
            Ok(Written::Gone) => Ok(false),
            Err(e) => Err(kube_err(action, &self.obj)(e)),
        }
    }

    /// The finalizer and, when none is set, the external-name (the identifier the spec names,
    /// `wanted`, or, when Create is allowed, the derived one), in one metadata patch before any
    /// AWS call.
    async fn ensure_metadata(
        &mut self,
        may_create: bool,
        wanted: Option<String>,
    ) -> Result<Step<Option<String>>, Error> {
        let annotated = self.external_name();
        // A removed external-name is restored to the resource this object last observed, never
        // replaced by a new one (which would orphan it and make a second).
        let restored = annotated
            .is_none()
            .then(|| self.status.observed_identifier().map(str::to_string))
            .flatten();
        let derived = if annotated.is_none() && restored.is_none() {
            wanted.or_else(|| may_create.then(|| self.obj.derive_identifier()))
        } else {
            None
        };
        let set = restored.clone().or(derived);
        let annotations = set
            .iter()
            .map(|id| (EXTERNAL_NAME.to_string(), id.clone()))
            .collect();
        let finalizers = finalizer::added(self.obj.meta(), FINALIZER);
        let alive = self
            .patch_metadata(
                finalizers,
                annotations,
                "adding the finalizer and external-name annotation",
            )
            .await?;
        if !alive {
            return Ok(Step::Return(Action::await_change()));
        }
        if let Some(id) = &restored {
            let note = format!(
                "the {EXTERNAL_NAME} annotation was removed; restored it to {id}, the {} this object manages",
                K::NOUN
            );
            self.event(
                EventType::Warning,
                "ExternalNameRestored",
                "Reconcile",
                note,
            )
            .await;
        }
        Ok(Step::Go(annotated.or(set)))
    }

    async fn remove_finalizer(&mut self) -> Result<(), Error> {
        let Some(finalizers) = finalizer::removed(self.obj.meta(), FINALIZER) else {
            return Ok(());
        };
        self.patch_metadata(Some(finalizers), BTreeMap::new(), "removing finalizer")
            .await?;
        self.ctx.latest.forget(&self.key);
        Ok(())
    }

    /// Let the object go: one Normal Event (unless the deletion was announced already), the
    /// finalizer removed.
    pub async fn release(mut self, why: String) -> Result<Action, Error> {
        tracing::info!(object = %self.key, "{why}");
        // One Normal event per deletion: DeletingExternalResource already said it when paved
        // asked AWS to delete.
        let delete_announced = self
            .obj
            .status()
            .is_some_and(ManagedStatus::observed_deleting);
        if !delete_announced {
            self.event(EventType::Normal, "Released", "RemoveFinalizer", why)
                .await;
        }
        self.remove_finalizer().await?;
        self.succeeded();
        Ok(Action::await_change())
    }

    // -----------------------------------------------------------------------------------------
    // the two paths

    /// Policies, metadata, backoff gate, identifier: what every apply needs before AWS.
    async fn prepare(&mut self) -> Result<Step<(Policies, String)>, Error> {
        let policies = self.policies();
        let may_create = policies.as_ref().is_ok_and(|p| p.create);
        // An identifier the spec names: valid and not a rename, or nothing is written.
        let bound = self
            .obj
            .external_name()
            .or(self.status.observed_identifier())
            .map(str::to_string);
        let wanted = match check_wanted::<K>(self.obj.wanted_identifier(), bound.as_deref()) {
            Ok(w) => w,
            Err(b) => return Ok(self.block(b, Action::await_change())),
        };
        let id = pass_on!(self.ensure_metadata(may_create, wanted).await?);
        let policies = match policies {
            Ok(p) => p,
            Err(msg) => {
                let b = Blocked::new("UnsupportedManagementPolicy", msg);
                return Ok(self.block(b, Action::await_change()));
            }
        };
        if let Step::Return(a) = self.gate() {
            return Ok(Step::Return(a));
        }
        let previous = self.status.observed_identifier();
        match check_identifier::<K>(id, previous, policies.create) {
            Ok(id) => Ok(Step::Go((policies, id))),
            Err(b) => Ok(self.block(b, Action::await_change())),
        }
    }

    async fn apply(mut self) -> Result<Action, Error> {
        let (policies, id) = step!(self, self.prepare().await?);
        step!(self, self.stays_in_place(&id));
        let aws = step!(self, self.connect(None).await?);
        let external = step!(
            self,
            K::observe_or_create(&mut self, &policies, &aws, &id).await?
        );
        let predecessor = match self.obj.ownership(&external) {
            Ownership::Predecessor { uid } => Some(uid),
            _ => None,
        };
        step!(self, self.ensure_owned(&policies, &id, &external));
        if let Some(uid) = predecessor {
            // Its tags are rewritten to this object by the update step (they are part of the
            // desired state).
            self.event(
                EventType::Normal,
                "ReadoptedExternalResource",
                "Adopt",
                format!(
                    "{} {id} was left running by an earlier object of this name (UID {uid}) that the same claim composed for the same resource: this object manages it now",
                    K::NOUN
                ),
            )
            .await;
        }
        if self.status.placement().is_none() {
            self.status.set_placement(self.obj.placement());
        }
        let updated = step!(
            self,
            K::update(&mut self, &policies, &aws, &id, external).await?
        );
        let action = step!(self, K::publish(&mut self, updated).await?);
        self.finish(action).await
    }

    /// The AWS client of this object, or Synced=False with why there is none. `deleting`: the
    /// identifier being deleted (named in the message).
    async fn connect(&mut self, deleting: Option<&str>) -> Result<Step<Aws>, Error> {
        match self.ctx.aws_for(&self.obj).await? {
            Outcome::Ok(aws) => Ok(Step::Go(aws)),
            Outcome::Blocked(mut b) => {
                if let Some(id) = deleting {
                    b.message = format!("cannot delete {} {id}: {}", K::NOUN, b.message);
                }
                let poll = self.poll();
                Ok(self.block(b, Action::requeue(poll)))
            }
        }
    }

    /// Whether the platform team lets objects of this object's ProviderConfig adopt external
    /// resources paved did not create (`spec.allowAdoption`).
    fn adoption_allowed(&self) -> bool {
        let name = self.obj.provider_config_name();
        self.ctx
            .provider_configs
            .get(&kube::runtime::reflector::ObjectRef::new(name))
            .is_some_and(|pc| pc.spec.allow_adoption == Some(true))
    }

    /// Ownership, proven whatever the policies: paved observes, changes or deletes only an
    /// external resource tagged as this object's, or an untagged one that is only observed or
    /// that the ProviderConfig allows adopting. A refusal never says whose the resource is.
    fn ensure_owned(&mut self, policies: &Policies, id: &str, external: &K::External) -> Step<()> {
        let ownership = self.obj.ownership(external);
        let found = decide::found(policies, Some(&ownership), self.adoption_allowed());
        if found == Found::Manage {
            return Step::Go(());
        }
        let noun = K::NOUN;
        let pc = self.obj.provider_config_name().to_string();
        // What names the identifier: the spec's own field, or the annotation.
        let naming = self
            .obj
            .wanted_identifier()
            .filter(|(_, w)| matches!(w, WantedIdentifier::Valid(_)))
            .map_or(EXTERNAL_NAME, |(field, _)| field);
        let b = match (&found, &ownership) {
            (Found::AdoptionNotAllowed, _) => Blocked::new(
                "AdoptionNotAllowed",
                format!(
                    "{noun} {id} exists and was not created by paved, and ProviderConfig {pc} does not allow adopting it (spec.allowAdoption), so paved will not change or delete it. Set spec.managementPolicies: [Observe] to only observe it, or ask your platform team to allow adoption"
                ),
            ),
            (_, Ownership::Untagged) => Blocked::new(
                "ExternalResourceNotOwned",
                format!(
                    "{noun} {id} already exists and was not created by paved; paved will not touch it. To only observe it, set spec.managementPolicies: [Observe]. To manage it, your platform team can allow adoption on ProviderConfig {pc} (spec.allowAdoption: true); then set spec.managementPolicies without Create, e.g. [Observe, Update, Delete]. Or choose another {naming}"
                ),
            ),
            (_, Ownership::Others { earlier: Some(uid) }) => Blocked::new(
                "ExternalResourceNotOwned",
                format!(
                    "{noun} {id} already exists and was created for an earlier object with this namespace and name (UID {uid}), not this one; paved will not touch it. Delete or rename it in AWS, or choose another {naming}"
                ),
            ),
            _ => Blocked::new(
                "ExternalResourceNotOwned",
                format!(
                    "{noun} {id} already exists and belongs to another object; paved will not observe, change or delete it. Choose another {naming}"
                ),
            ),
        };
        self.status.clear_observation();
        self.set(
            READY,
            ConditionStatus::False,
            "Unavailable",
            format!("{noun} {id} is not owned by this object"),
        );
        let poll = self.poll();
        self.block(b, Action::requeue(spread(poll)))
    }

    /// Deleting, and the external resource stays: keep what must outlive the object, release.
    async fn orphan(self, why: &'static str) -> Result<Action, Error> {
        K::keep(&self).await?;
        let what = self
            .external_name()
            .map(|i| format!("{} {i} left running", K::NOUN))
            .unwrap_or_default();
        self.release(format!("{why}: {what}")).await
    }

    /// Placement is immutable: a region or ProviderConfig that changed since the resource was
    /// recorded is refused before any AWS call, on the apply and the delete path alike.
    fn stays_in_place(&mut self, id: &str) -> Step<()> {
        let wanted = self.obj.placement();
        match self
            .status
            .placement()
            .and_then(|p| moved::<K>(p, &wanted, id))
        {
            Some(b) => self.block(b, Action::await_change()),
            None => Step::Go(()),
        }
    }

    async fn cleanup(mut self, id: String) -> Result<Action, Error> {
        let policies = self.policies();
        step!(self, self.held_by_claim().await?);
        step!(self, self.gate());
        step!(self, self.stays_in_place(&id));
        let aws = step!(self, self.connect(Some(&id)).await?);
        match K::delete(&mut self, &policies, &aws, &id).await {
            Deletion::Release(why) => self.release(why).await,
            Deletion::Finish(a) => self.finish(a).await,
        }
    }

    async fn paused(mut self, deleting: bool, release: bool) -> Result<Action, Error> {
        if release {
            K::keep(&self).await?;
            return self
                .release("paused, and deleting needs no AWS call: released".into())
                .await;
        }
        self.synced(
            false,
            "ReconcilePaused",
            format!(
                "{PAUSED} is \"true\": paved makes no AWS call for this object{}",
                if deleting {
                    "; deletion waits until it is unpaused"
                } else {
                    ""
                }
            ),
        );
        self.finish(Action::await_change()).await
    }
}

/// The reconcile entry point of every kind.
pub(crate) async fn reconcile<K: ExternalClient + Refers>(
    cached: Arc<Compact<K>>,
    ctx: Arc<Ctx<K>>,
) -> Result<Action, Error> {
    let ns = cached.namespace().ok_or(Error::NoNamespace)?;
    let key = key_of(&*cached);
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &ns);
    let obj = match ctx.latest.ours(&key, cached.resource_version().as_deref()) {
        Some(ours) if ours.uid() == cached.uid() => ours,
        _ => match cached.get() {
            Ok(obj) => Arc::new(obj),
            // Text that does not rebuild (it should not): the object from the API server.
            Err(e) => {
                tracing::warn!(object = %key, error = %e, "cached object does not rebuild; reading it from the API server");
                match api
                    .get_opt(&cached.name_any())
                    .await
                    .map_err(kube_err("reading", &*cached))?
                {
                    Some(obj) => Arc::new(obj),
                    None => return Ok(Action::await_change()),
                }
            }
        },
    };
    let flow = Flow {
        ctx: &ctx,
        status: obj.status().cloned().unwrap_or_default(),
        key,
        generation: obj.meta().generation,
        now: Time(jiff::Timestamp::now()),
        api,
        obj: (*obj).clone(),
        seen: Vec::new(),
        state: K::State::default(),
        failure: None,
    };
    let observed = obj.status().and_then(ManagedStatus::observed_identifier);
    let res = match decide::start(&*obj, observed) {
        Start::Paused { deleting, release } => flow.paused(deleting, release).await,
        Start::Apply => flow.apply().await,
        Start::Done => Ok(Action::await_change()),
        Start::Orphan(why) => flow.orphan(why).await,
        Start::NeverCreated => {
            flow.release(format!("no {} was ever created for this object", K::NOUN))
                .await
        }
        Start::Delete(id) => flow.cleanup(id).await,
    };
    ctx.shared.metrics.record_reconcile(res.is_ok());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(ok: bool, reason: &str, message: &str) -> Condition {
        Condition::new(
            SYNCED,
            ConditionStatus::from_bool(ok),
            reason,
            message,
            None,
        )
    }

    #[test]
    fn warnings_on_new_failures_only() {
        let failing = synced(false, "AWSError", "x failed (retrying in 10s)");
        // (old, new, warn)
        let cases = [
            (None, Some(synced(true, "ReconcileSuccess", "")), false),
            (None, Some(failing.clone()), true),
            (
                Some(synced(true, "ReconcileSuccess", "")),
                Some(failing.clone()),
                true,
            ),
            (
                Some(failing.clone()),
                Some(synced(false, "AWSError", "x failed (retrying in 20s)")),
                false,
            ),
            (
                Some(failing.clone()),
                Some(synced(false, "AWSError", "y failed (retrying in 20s)")),
                true,
            ),
            (
                Some(failing.clone()),
                Some(synced(false, "Other", "x failed")),
                true,
            ),
            (Some(failing), None, false),
        ];
        for (i, (old, new, warn)) in cases.into_iter().enumerate() {
            assert_eq!(warn_worthy(old.as_ref(), new.as_ref()), warn, "case {i}");
        }
    }
}
