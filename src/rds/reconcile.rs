//! Reconcile one `Instance`: finalizer, identifier, password, observe, create / update / delete,
//! status, connection Secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use crate::api::common::{Condition, ConditionStatus, READY, SYNCED, get_condition, set_condition};
use crate::api::instance::{DeletionPolicy, Instance, InstanceObservation, InstanceStatus};

use super::Ctx;
use super::client::RdsApi;
use super::diff::diff;
use super::model::{
    AwsError, CreateRequest, DbInstance, DeleteRequest, ErrorClass, MASTER_USER_PASSWORD,
    ModifyRequest, Password, is_modifiable, is_transitional,
};
use super::naming;
use super::observe::Fleet;

pub use crate::api::managed::{
    EXTERNAL_NAME, FINALIZER, OWNER_TAG, OWNER_UID_TAG, PAUSED, Policies,
};
pub use crate::kube::meta::{MANAGED_BY, MANAGED_BY_LABEL};
pub const INSTANCE_LABEL: &str = "paved.io/instance";
/// Field manager of everything this controller writes.
pub const FIELD_MANAGER: &str = "paved-rds";
/// Key of the generated master password.
pub const PASSWORD_KEY: &str = "password";

/// Errors that end a reconcile (AWS errors do not: they become conditions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} for Instance {key}: {source}")]
    Kube {
        action: &'static str,
        key: String,
        #[source]
        source: kube::Error,
    },
    #[error("Instance has no namespace")]
    NoNamespace,
}

fn key_of(obj: &Instance) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn kube_err<'o>(action: &'static str, obj: &'o Instance) -> impl FnOnce(kube::Error) -> Error + 'o {
    move |source| Error::Kube {
        action,
        key: key_of(obj),
        source,
    }
}

/// Whether the RDS instance carries this object's ownership tags.
pub fn owned_by(obj: &Instance, inst: &DbInstance) -> bool {
    let uid = obj.uid().unwrap_or_default();
    !uid.is_empty() && inst.tags.get(OWNER_UID_TAG) == Some(&uid)
}

fn owner_tags(obj: &Instance) -> BTreeMap<String, String> {
    [
        (OWNER_TAG.to_string(), key_of(obj)),
        (OWNER_UID_TAG.to_string(), obj.uid().unwrap_or_default()),
    ]
    .into()
}

fn desired_tags(obj: &Instance) -> BTreeMap<String, String> {
    let mut t = obj.spec.for_provider.tags.clone().unwrap_or_default();
    t.extend(owner_tags(obj));
    t
}

fn observation(i: &DbInstance) -> InstanceObservation {
    let pending = i.pending.to_map();
    InstanceObservation {
        identifier: Some(i.identifier.clone()),
        arn: i.arn.clone(),
        resource_id: i.resource_id.clone(),
        address: i.address.clone(),
        port: i.port,
        endpoint: match (&i.address, i.port) {
            (Some(a), Some(p)) => Some(format!("{a}:{p}")),
            _ => None,
        },
        status: i.status.clone(),
        engine: i.engine.clone(),
        engine_version: i.engine_version.clone(),
        instance_class: i.instance_class.clone(),
        allocated_storage: i.allocated_storage,
        max_allocated_storage: i.max_allocated_storage,
        storage_type: i.storage_type.clone(),
        multi_az: i.multi_az,
        publicly_accessible: i.publicly_accessible,
        backup_retention_period: i.backup_retention_period,
        backup_window: i.backup_window.clone(),
        maintenance_window: i.maintenance_window.clone(),
        deletion_protection: i.deletion_protection,
        username: i.username.clone(),
        db_name: i.db_name.clone(),
        iops: i.iops,
        storage_encrypted: i.storage_encrypted,
        kms_key_id: i.kms_key_id.clone(),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade,
        parameter_group_name: i.parameter_group_name.clone(),
        db_subnet_group_name: i.db_subnet_group_name.clone(),
        vpc_security_group_ids: (!i.vpc_security_group_ids.is_empty())
            .then(|| i.vpc_security_group_ids.clone()),
        tags: (!i.tags.is_empty()).then(|| i.tags.clone()),
        pending_modified_values: (!pending.is_empty()).then_some(pending),
    }
}

/// Ready condition from the RDS status.
fn ready_for(status: &str) -> (ConditionStatus, &'static str, String) {
    match status {
        "available" => (
            ConditionStatus::True,
            "Available",
            "RDS status is available".into(),
        ),
        "creating" => (
            ConditionStatus::False,
            "Creating",
            "RDS status is creating".into(),
        ),
        "deleting" => (
            ConditionStatus::False,
            "Deleting",
            "RDS status is deleting".into(),
        ),
        s => (
            ConditionStatus::False,
            "Unavailable",
            format!("RDS status is {s}"),
        ),
    }
}

use crate::kube::backoff::spread as jitter;

/// What a step decided.
enum Step<T> {
    Go(T),
    Stop(Action),
}

/// One reconcile of one object.
struct Flow<'a> {
    ctx: &'a Ctx,
    obj: Instance,
    api: Api<Instance>,
    status: InstanceStatus,
    key: String,
    generation: Option<i64>,
    now: Time,
    /// ResourceVersions of this object this reconcile has seen superseded by its own writes.
    seen: Vec<String>,
    /// The master password, once this reconcile has read or generated it.
    password: Option<String>,
}

/// Status without the transition times: what a status write would change, semantically.
fn semantic(s: &InstanceStatus) -> InstanceStatus {
    let mut s = s.clone();
    for c in &mut s.conditions {
        c.last_transition_time = None;
    }
    s
}

/// A Synced message without its retry countdown, which changes on every attempt.
fn without_retry(message: &str) -> &str {
    message
        .find(" (retrying in ")
        .map_or(message, |i| &message[..i])
}

impl<'a> Flow<'a> {
    fn poll(&self) -> Duration {
        self.ctx.shared.config.poll_interval
    }

    fn transitional(&self) -> Duration {
        self.ctx.shared.config.transitional_poll_interval
    }

    fn set(
        &mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        set_condition(
            &mut self.status.conditions,
            Condition::new(type_, status, reason, message, self.generation),
            &self.now,
        );
    }

    fn synced(&mut self, ok: bool, reason: &str, message: impl Into<String>) {
        self.set(SYNCED, ConditionStatus::from_bool(ok), reason, message);
    }

    fn ready_from(&mut self, inst: &DbInstance) {
        let (s, r, m) = ready_for(inst.status());
        self.set(
            READY,
            s,
            r,
            format!("{m} (RDS instance {})", inst.identifier),
        );
    }

    fn count_write(&self, kind: &str) {
        self.ctx.shared.metrics.record_write(kind);
    }

    /// Remember what a write to the Instance returned, so that the next reconcile does not start
    /// from a store that has not seen it yet.
    fn wrote(&mut self, mut obj: Instance) {
        crate::kube::meta::slim(&mut obj.metadata, None);
        if let Some(rv) = self.obj.resource_version()
            && !self.seen.contains(&rv)
        {
            self.seen.push(rv);
        }
        self.ctx.shared.latest.wrote(
            self.key.clone(),
            &self.seen,
            obj.resource_version().as_deref(),
            obj.clone(),
        );
        self.obj = obj;
    }

    async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
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
    async fn finish(mut self, action: Action) -> Result<Action, Error> {
        let old = self.obj.status.clone().unwrap_or_default();
        if semantic(&old) == semantic(&self.status) {
            return Ok(action);
        }
        let new_synced = get_condition(&self.status.conditions, SYNCED).cloned();
        let old_synced = get_condition(&old.conditions, SYNCED).cloned();
        if let Some(s) = &new_synced
            && s.status == ConditionStatus::False
            && old_synced.as_ref().is_none_or(|o| {
                o.status != s.status
                    || o.reason != s.reason
                    || without_retry(&o.message) != without_retry(&s.message)
            })
        {
            tracing::warn!(key = %self.key, reason = %s.reason, message = %s.message, "Instance not synced");
            let reason = s.reason.clone();
            let message = s.message.clone();
            self.event(EventType::Warning, &reason, "Reconcile", message)
                .await;
        }
        let patch = serde_json::json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1",
            "kind": "Instance",
            "metadata": {"name": self.obj.name_any()},
            "status": self.status,
        });
        self.count_write("instance_status");
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

    /// An AWS error: Synced=False with the code and message, retried with backoff (quickly for
    /// throttling and 5xx, up to the configured maximum otherwise; at once on a spec change).
    async fn aws_failure(mut self, e: AwsError) -> Result<Action, Error> {
        let wait = self.ctx.shared.backoffs.fail(
            &self.key,
            self.generation,
            super::error_curve(e.class, &self.ctx.shared.config),
        );
        let reason = match e.class {
            ErrorClass::Transient => "AWSUnavailable",
            _ => "AWSError",
        };
        self.synced(
            false,
            reason,
            format!(
                "{} failed: {}: {} (retrying in {}s{})",
                e.operation,
                e.code,
                e.message,
                wait.as_secs(),
                if e.class == ErrorClass::Transient {
                    ""
                } else {
                    ", or at once when the spec changes"
                }
            ),
        );
        self.finish(Action::requeue(wait)).await
    }

    // -----------------------------------------------------------------------------------------
    // metadata

    /// Metadata (finalizers, the external-name annotation) is changed with one merge patch
    /// carrying the resourceVersion, so that a concurrent change by someone else makes this one
    /// fail (and retry) instead of losing theirs, and a reconcile that started from an outdated
    /// object cannot write again what is already there. `None`: the object is gone.
    async fn patch_metadata(
        &mut self,
        finalizers: Option<Vec<String>>,
        external_name: Option<&str>,
        action: &'static str,
    ) -> Result<Option<()>, Error> {
        let mut meta = serde_json::json!({ "resourceVersion": self.obj.resource_version() });
        if let Some(f) = finalizers {
            meta["finalizers"] = serde_json::json!(f);
        }
        if let Some(id) = external_name {
            meta["annotations"] = serde_json::json!({ EXTERNAL_NAME: id });
        }
        self.count_write("instance_metadata");
        match self
            .api
            .patch(
                &self.obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "metadata": meta })),
            )
            .await
        {
            Ok(o) => {
                self.wrote(o);
                Ok(Some(()))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(kube_err(action, &self.obj)(e)),
        }
    }

    async fn remove_finalizer(&mut self) -> Result<(), Error> {
        if !self.obj.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(());
        }
        let finalizers: Vec<String> = self
            .obj
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        self.patch_metadata(Some(finalizers), None, "removing finalizer")
            .await?;
        self.ctx.shared.latest.forget(&self.key);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // secrets

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(
            self.ctx.shared.client.clone(),
            &self.obj.namespace().unwrap_or_default(),
        )
    }

    /// A Secret of this namespace: from the cache of paved's Secrets when it is there,
    /// otherwise from the API server.
    async fn get_secret(&self, name: &str) -> Result<Option<Secret>, Error> {
        let ns = self.obj.namespace().unwrap_or_default();
        if let Some(s) = self.ctx.secrets.get(&ObjectRef::new(name).within(&ns)) {
            return Ok(Some((*s).clone()));
        }
        self.get_secret_live(name).await
    }

    /// A Secret of this namespace, read from the API server (never from the cache, which may
    /// not have seen the latest write yet).
    async fn get_secret_live(&self, name: &str) -> Result<Option<Secret>, Error> {
        self.secrets()
            .get_opt(name)
            .await
            .map_err(kube_err("reading a Secret", &self.obj))
    }

    fn owner_ref(&self) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
        self.obj.controller_owner_ref(&())
    }

    fn managed_labels(&self) -> BTreeMap<String, String> {
        [
            (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
            (
                INSTANCE_LABEL.to_string(),
                truncate_label(&self.obj.name_any()),
            ),
        ]
        .into()
    }

    fn generated_password_secret(&self) -> String {
        let name = self.obj.name_any();
        let suffix = "-master-password";
        if name.len() + suffix.len() <= 253 {
            format!("{name}{suffix}")
        } else {
            let id = naming::derive_identifier("", &name);
            format!("{id}{suffix}")
        }
    }

    /// The master password. With `generate`, a missing one is generated and persisted before
    /// this returns. `Err(message)` inside Ok: cannot know the password (condition material).
    async fn password(&mut self, generate: bool) -> Result<Result<String, String>, Error> {
        if let Some(p) = &self.password {
            return Ok(Ok(p.clone()));
        }
        let r = self.find_or_make_password(generate).await?;
        if let Ok(p) = &r {
            self.password = Some(p.clone());
        }
        Ok(r)
    }

    /// Where the master password lives: (Secret name, key, whether the user named it in
    /// passwordSecretRef). `Err(message)`: a reference paved must not follow.
    fn password_location(&self) -> Result<(String, String, bool), String> {
        let ns = self.obj.namespace().unwrap_or_default();
        match &self.obj.spec.for_provider.password_secret_ref {
            Some(r) => {
                if r.namespace.as_deref().is_some_and(|n| n != ns) {
                    return Err(format!(
                        "spec.forProvider.passwordSecretRef.namespace must be {ns} (paved never reads Secrets of other namespaces)"
                    ));
                }
                Ok((r.name.clone(), r.key.clone(), true))
            }
            None => Ok((
                self.generated_password_secret(),
                PASSWORD_KEY.to_string(),
                false,
            )),
        }
    }

    async fn find_or_make_password(&self, generate: bool) -> Result<Result<String, String>, Error> {
        let ns = self.obj.namespace().unwrap_or_default();
        let fp = &self.obj.spec.for_provider;
        let (name, key, user_ref) = match self.password_location() {
            Ok(l) => l,
            Err(msg) => return Ok(Err(msg)),
        };
        let existing = self.get_secret(&name).await?;
        if let Some(p) = secret_value(existing.as_ref(), &key) {
            return Ok(Ok(p));
        }
        let may_generate = generate && (!user_ref || fp.auto_generate_password == Some(true));
        if !may_generate {
            return Ok(Err(if user_ref {
                format!(
                    "Secret {name} has no key {key:?}: set it, or set spec.forProvider.autoGeneratePassword: true"
                )
            } else {
                format!("the master password Secret {name} is missing")
            }));
        }
        if let Some(s) = &existing
            && !user_ref
            && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY)
        {
            return Ok(Err(format!(
                "Secret {name} exists and was not created by paved; paved will not write the master password into it"
            )));
        }
        let password = naming::generate_password();
        self.count_write("password_secret");
        if existing.is_some() {
            let patch = serde_json::json!({"data": {key.clone(): ByteString(password.clone().into_bytes())}});
            self.secrets()
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err("writing the generated password", &self.obj))?;
            return Ok(Ok(password));
        }
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                labels: Some(self.managed_labels()),
                owner_references: self.owner_ref().map(|o| vec![o]),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some([(key.clone(), ByteString(password.clone().into_bytes()))].into()),
            ..Default::default()
        };
        match self.secrets().create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(Ok(password)),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Someone (an earlier run of this reconcile) persisted one first: use that one.
                let again = self
                    .secrets()
                    .get_opt(&name)
                    .await
                    .map_err(kube_err("reading the master password Secret", &self.obj))?;
                Ok(secret_value(again.as_ref(), &key)
                    .ok_or_else(|| format!("Secret {name} appeared without key {key:?}")))
            }
            Err(e) => Err(kube_err("creating the master password Secret", &self.obj)(
                e,
            )),
        }
    }

    /// Write the connection Secret when its content differs. `Err(message)` inside Ok: refused.
    async fn connection_secret(&mut self, inst: &DbInstance) -> Result<Result<(), String>, Error> {
        let Some(r) = self.obj.spec.write_connection_secret_to_ref.clone() else {
            return Ok(Ok(()));
        };
        let ns = self.obj.namespace().unwrap_or_default();
        if r.namespace.as_deref().is_some_and(|n| n != ns) {
            return Ok(Err(format!(
                "spec.writeConnectionSecretToRef.namespace must be {ns}: paved never writes Secrets into other namespaces"
            )));
        }
        let (Some(address), Some(port)) = (&inst.address, inst.port) else {
            return Ok(Ok(()));
        };
        let fp = self.obj.spec.for_provider.clone();
        let username = inst
            .username
            .clone()
            .or_else(|| fp.username.clone())
            .unwrap_or_else(|| "postgres".into());
        let password = self.password(false).await?.ok();
        let db_name = fp.db_name.clone().or_else(|| inst.db_name.clone());
        let mut data: BTreeMap<String, String> = BTreeMap::new();
        data.insert("username".into(), username.clone());
        if let Some(p) = &password {
            data.insert("password".into(), p.clone());
        }
        data.insert("address".into(), address.clone());
        data.insert("host".into(), address.clone());
        data.insert("port".into(), port.to_string());
        data.insert("endpoint".into(), format!("{address}:{port}"));
        if let Some(d) = &db_name {
            data.insert("dbname".into(), d.clone());
        }
        data.insert(
            "uri".into(),
            naming::connection_uri(
                &username,
                password.as_deref(),
                address,
                port,
                db_name.as_deref(),
            ),
        );
        let data: BTreeMap<String, ByteString> = data
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect();

        let uid = self.obj.uid().unwrap_or_default();
        let existing = self.get_secret(&r.name).await?;
        if let Some(s) = &existing {
            let ours = s.owner_references().iter().any(|o| o.uid == uid);
            let labelled = s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY);
            if !ours {
                return Ok(Err(format!(
                    "Secret {} exists and is not owned by this Instance; paved will not overwrite it",
                    r.name
                )));
            }
            if labelled && s.data.as_ref() == Some(&data) {
                return Ok(Ok(()));
            }
        }
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": r.name,
                "namespace": ns,
                "labels": self.managed_labels(),
                "ownerReferences": self.owner_ref().map(|o| vec![o]).unwrap_or_default(),
            },
            "type": "Opaque",
            "data": data,
        });
        // Routine: no Event (the Instance's conditions and the Secret itself say enough).
        self.count_write("connection_secret");
        self.secrets()
            .patch(
                &r.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(kube_err("writing the connection Secret", &self.obj))?;
        Ok(Ok(()))
    }

    /// The password this Instance's connection Secret publishes: the one RDS was last given by
    /// paved (at creation or at the last rotation). `None` when there is no connection Secret
    /// of this Instance's, or it holds no password.
    async fn published_password(&self, name: &str, live: bool) -> Result<Option<String>, Error> {
        let secret = if live {
            self.get_secret_live(name).await?
        } else {
            self.get_secret(name).await?
        };
        let uid = self.obj.uid().unwrap_or_default();
        let ours = secret
            .as_ref()
            .is_some_and(|s| s.owner_references().iter().any(|o| o.uid == uid));
        Ok(secret_value(secret.as_ref().filter(|_| ours), "password"))
    }

    /// Master password rotation: the password Secret against the connection Secret.
    ///
    /// The connection Secret holds the last password paved gave RDS; when the password Secret
    /// (passwordSecretRef, or the generated `<name>-master-password`) now says something else,
    /// the new one must reach RDS (ModifyDBInstance) before it is published. `Some(password)`:
    /// send it (it is also what [`Self::connection_secret`] publishes next). The caches decide
    /// cheaply that nothing changed; a difference is confirmed by reading both Secrets from the
    /// API server, so that a cache that has not seen paved's own rewrite yet never causes a
    /// second ModifyDBInstance. Idempotent and crash-safe: until the connection Secret is
    /// rewritten, every reconcile sends the same password again.
    ///
    /// Without writeConnectionSecretToRef (or before anything was published) there is nothing to
    /// compare with, and nothing is rotated.
    async fn rotation(&mut self) -> Result<Option<Password>, Error> {
        let ns = self.obj.namespace().unwrap_or_default();
        let Some(r) = self.obj.spec.write_connection_secret_to_ref.clone() else {
            return Ok(None);
        };
        if r.namespace.as_deref().is_some_and(|n| n != ns) {
            // connection_secret refuses it and says why.
            return Ok(None);
        }
        let Ok(current) = self.password(false).await? else {
            return Ok(None);
        };
        match self.published_password(&r.name, false).await? {
            Some(p) if p != current => {}
            _ => return Ok(None),
        }
        // They differ in the caches: confirm with the API server before touching AWS.
        let Ok((name, key, _)) = self.password_location() else {
            return Ok(None);
        };
        let Some(current) = secret_value(self.get_secret_live(&name).await?.as_ref(), &key) else {
            return Ok(None);
        };
        // From here on, this reconcile sends and publishes this one.
        self.password = Some(current.clone());
        match self.published_password(&r.name, true).await? {
            Some(p) if p != current => Ok(Some(Password(current))),
            _ => Ok(None),
        }
    }

    /// With Orphan, the generated password Secret must outlive the Instance (it is the only copy
    /// of the password of a database that keeps running): drop its owner reference.
    async fn keep_password_secret(&self) -> Result<(), Error> {
        if self.obj.spec.for_provider.password_secret_ref.is_some() {
            return Ok(());
        }
        let name = self.generated_password_secret();
        let Some(s) = self.get_secret(&name).await? else {
            return Ok(());
        };
        let uid = self.obj.uid().unwrap_or_default();
        let remaining: Vec<_> = s
            .owner_references()
            .iter()
            .filter(|o| o.uid != uid)
            .cloned()
            .collect();
        if remaining.len() == s.owner_references().len() {
            return Ok(());
        }
        let patch = serde_json::json!({"metadata": {"ownerReferences": remaining}});
        self.count_write("password_secret");
        self.secrets()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(
                "keeping the password Secret of an orphaned instance",
                &self.obj,
            ))?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // AWS

    /// The guarded RDS client and fleet cache for this object, or a message for the condition.
    async fn aws(&self) -> Result<Result<(Arc<dyn RdsApi>, Arc<Fleet>), String>, Error> {
        self.ctx.aws_for(&self.obj).await
    }

    async fn create(
        &mut self,
        rds: &dyn RdsApi,
        fleet: &Fleet,
        id: &str,
    ) -> Result<Step<DbInstance>, Error> {
        let fp = self.obj.spec.for_provider.clone();
        let mut missing = Vec::new();
        if fp.instance_class.is_none() {
            missing.push("instanceClass");
        }
        if fp.allocated_storage.is_none() {
            missing.push("allocatedStorage");
        }
        if !missing.is_empty() {
            self.synced(
                false,
                "InvalidSpec",
                format!(
                    "spec.forProvider.{} is required to create the RDS instance",
                    missing.join(", spec.forProvider.")
                ),
            );
            self.set(
                READY,
                ConditionStatus::False,
                "Creating",
                "waiting for a valid spec",
            );
            return Ok(Step::Stop(Action::await_change()));
        }
        let password = match self.password(true).await? {
            Ok(p) => p,
            Err(msg) => {
                self.synced(false, "PasswordUnavailable", msg);
                self.set(
                    READY,
                    ConditionStatus::False,
                    "Creating",
                    "waiting for the master password",
                );
                return Ok(Step::Stop(Action::requeue(self.poll())));
            }
        };
        if !naming::is_acceptable_password(&password) {
            self.synced(
                false,
                "InvalidPassword",
                "the master password must be 8 to 128 printable ASCII characters other than '/', '\"', '@' and space",
            );
            return Ok(Step::Stop(Action::await_change()));
        }
        let req = CreateRequest {
            identifier: id.to_string(),
            engine: fp.engine.clone().unwrap_or_else(|| "postgres".into()),
            engine_version: fp.engine_version.clone(),
            instance_class: fp.instance_class.clone().unwrap_or_default(),
            allocated_storage: fp.allocated_storage,
            max_allocated_storage: fp.max_allocated_storage.filter(|m| *m > 0),
            storage_type: fp.storage_type.clone(),
            iops: fp.iops,
            storage_encrypted: fp.storage_encrypted,
            kms_key_id: fp.kms_key_id.clone(),
            db_name: fp.db_name.clone(),
            username: fp.username.clone().unwrap_or_else(|| "postgres".into()),
            password,
            multi_az: fp.multi_az,
            publicly_accessible: fp.publicly_accessible,
            db_subnet_group_name: fp.db_subnet_group_name.clone(),
            vpc_security_group_ids: fp.vpc_security_group_ids.clone().unwrap_or_default(),
            parameter_group_name: fp.parameter_group_name.clone(),
            backup_retention_period: fp.backup_retention_period,
            backup_window: fp.backup_window.clone(),
            maintenance_window: fp.maintenance_window.clone(),
            auto_minor_version_upgrade: fp.auto_minor_version_upgrade,
            deletion_protection: fp.deletion_protection,
            port: fp.port,
            tags: desired_tags(&self.obj),
        };
        tracing::info!(key = %self.key, identifier = id, "creating RDS instance");
        match rds.create(&req).await {
            Ok(inst) => {
                fleet.record(id, Some(inst.clone()));
                self.event(
                    EventType::Normal,
                    "CreatedExternalResource",
                    "CreateDBInstance",
                    format!("created RDS instance {id}"),
                )
                .await;
                self.status.managed_tag_keys = spec_tag_keys(&self.obj);
                Ok(Step::Go(inst))
            }
            Err(e) if e.class == ErrorClass::AlreadyExists => {
                match fleet.describe_now(rds, id).await {
                    Ok(Some(inst)) => Ok(Step::Go(inst)),
                    Ok(None) => Ok(Step::Stop(Action::requeue(self.transitional()))),
                    Err(e) => Ok(Step::Stop(self.pending_failure(e))),
                }
            }
            Err(e) => Ok(Step::Stop(self.pending_failure(e))),
        }
    }

    /// Turn an AWS error into the Synced condition now and a requeue (status written by the
    /// caller's finish).
    fn pending_failure(&mut self, e: AwsError) -> Action {
        let wait = self.ctx.shared.backoffs.fail(
            &self.key,
            self.generation,
            super::error_curve(e.class, &self.ctx.shared.config),
        );
        let reason = if e.class == ErrorClass::Transient {
            "AWSUnavailable"
        } else {
            "AWSError"
        };
        self.synced(
            false,
            reason,
            format!(
                "{} failed: {}: {} (retrying in {}s)",
                e.operation,
                e.code,
                e.message,
                wait.as_secs()
            ),
        );
        Action::requeue(wait)
    }

    // -----------------------------------------------------------------------------------------
    // apply

    async fn apply(mut self) -> Result<Action, Error> {
        let policies = Policies::parse(self.obj.spec.management_policies.as_deref());
        let annotated = self
            .obj
            .annotations()
            .get(EXTERNAL_NAME)
            .cloned()
            .filter(|s| !s.is_empty());
        // The finalizer and a derived identifier go in one metadata patch, before any AWS call.
        let derived =
            (annotated.is_none() && policies.as_ref().is_ok_and(|p| p.create)).then(|| {
                naming::derive_identifier(
                    &self.obj.namespace().unwrap_or_default(),
                    &self.obj.name_any(),
                )
            });
        let finalizers = (!self.obj.finalizers().iter().any(|f| f == FINALIZER)).then(|| {
            let mut f = self.obj.finalizers().to_vec();
            f.push(FINALIZER.to_string());
            f
        });
        if (finalizers.is_some() || derived.is_some())
            && self
                .patch_metadata(
                    finalizers,
                    derived.as_deref(),
                    "adding the finalizer and external-name annotation",
                )
                .await?
                .is_none()
        {
            return Ok(Action::await_change());
        }
        let policies = match policies {
            Ok(p) => p,
            Err(msg) => {
                self.synced(false, "UnsupportedManagementPolicy", msg);
                return self.finish(Action::await_change()).await;
            }
        };
        if let Some(wait) = self.ctx.shared.backoffs.gate(&self.key, self.generation) {
            return Ok(Action::requeue(wait));
        }

        // identifier
        let id = match annotated.or(derived) {
            Some(id) if naming::is_valid_identifier(&id) => id,
            Some(id) => {
                self.synced(
                    false,
                    "InvalidExternalName",
                    format!(
                        "annotation {EXTERNAL_NAME}={id:?} is not a valid RDS identifier (1-63 letters, digits or hyphens, starting with a letter, no '--', no trailing '-')"
                    ),
                );
                return self.finish(Action::await_change()).await;
            }
            None => {
                self.synced(
                    false,
                    "ExternalNameRequired",
                    format!(
                        "managementPolicies exclude Create: set the {EXTERNAL_NAME} annotation to the identifier of the existing RDS instance to manage"
                    ),
                );
                return self.finish(Action::await_change()).await;
            }
        };
        let previous = self
            .status
            .at_provider
            .as_ref()
            .and_then(|a| a.identifier.clone());
        if policies.create
            && let Some(prev) = previous
            && prev != id
        {
            self.synced(
                false,
                "ImmutableField",
                format!(
                    "identifier: annotation {EXTERNAL_NAME} changed from {prev:?} to {id:?}; renaming an RDS instance is not supported (set it back)"
                ),
            );
            return self.finish(Action::await_change()).await;
        }

        let (rds, fleet) = match self.aws().await? {
            Ok(a) => a,
            Err(msg) => {
                self.synced(false, "ProviderConfigError", msg);
                let poll = self.poll();
                return self.finish(Action::requeue(poll)).await;
            }
        };
        let cfg = &self.ctx.shared.config;
        let observed = match fleet
            .observe(
                &*rds,
                &id,
                cfg.poll_interval,
                cfg.transitional_poll_interval,
                &self.ctx.shared.metrics,
            )
            .await
        {
            Ok(o) => o,
            Err(e) => return self.aws_failure(e).await,
        };

        let inst = match observed {
            None if !policies.create => {
                self.status.at_provider = None;
                self.set(
                    READY,
                    ConditionStatus::False,
                    "Unavailable",
                    format!("RDS instance {id} does not exist"),
                );
                self.synced(
                    false,
                    "ExternalResourceMissing",
                    format!(
                        "RDS instance {id} does not exist in {} and managementPolicies exclude Create",
                        self.obj.spec.for_provider.region
                    ),
                );
                let poll = self.poll();
                return self.finish(Action::requeue(jitter(poll))).await;
            }
            None => match self.create(&*rds, &fleet, &id).await? {
                Step::Go(i) => i,
                Step::Stop(a) => return self.finish(a).await,
            },
            Some(i) => i,
        };

        let owned = owned_by(&self.obj, &inst);
        if !owned && policies.create {
            let other = inst.tags.get(OWNER_TAG).cloned();
            let whose = match other {
                Some(o) if o == self.key => format!(
                    "it was created for an earlier object named {o} (UID {}), not this one",
                    inst.tags.get(OWNER_UID_TAG).cloned().unwrap_or_default()
                ),
                Some(o) => format!("it belongs to {o}"),
                None => "it was not created by paved".into(),
            };
            self.status.at_provider = None;
            self.set(
                READY,
                ConditionStatus::False,
                "Unavailable",
                format!("RDS instance {id} is not owned by this object"),
            );
            self.synced(
                false,
                "ExternalResourceNotOwned",
                format!(
                    "RDS instance {id} already exists and {whose}; paved will not touch it. To only observe it, set spec.managementPolicies: [Observe]. To take it over deliberately, set spec.managementPolicies to a set without Create, e.g. [Observe, Update, Delete] (paved then tags it as owned by this object)"
                ),
            );
            let poll = self.poll();
            return self.finish(Action::requeue(jitter(poll))).await;
        }

        let mut inst = inst;
        self.status.at_provider = Some(observation(&inst));
        self.ready_from(&inst);
        let mut notes: Vec<String> = Vec::new();
        let mut waiting = false;
        // The master password was just rotated: publish it whatever the RDS status.
        let mut rotated = false;

        let spec_keys = spec_tag_keys(&self.obj);
        let d = diff(
            &id,
            &self.obj.spec.for_provider,
            &inst,
            &desired_tags(&self.obj),
            &self.status.managed_tag_keys,
            &[OWNER_TAG, OWNER_UID_TAG],
        );
        if !policies.update {
            let mut drift: Vec<String> = d.modify.fields().iter().map(|f| f.to_string()).collect();
            drift.extend(
                d.refused
                    .iter()
                    .map(|r| r.split(':').next().unwrap_or_default().to_string()),
            );
            if !d.add_tags.is_empty() || !d.remove_tags.is_empty() {
                drift.push("tags".into());
            }
            if !drift.is_empty() {
                notes.push(format!(
                    "differs from spec.forProvider in {} (not corrected: managementPolicies exclude Update)",
                    drift.join(", ")
                ));
            }
        } else if !d.refused.is_empty() {
            self.synced(
                false,
                "ImmutableField",
                format!("cannot apply spec.forProvider: {}", d.refused.join("; ")),
            );
            // Keep observing (status stays current); nothing is sent until the spec changes.
            let poll = self.poll();
            return self.finish(Action::requeue(jitter(poll))).await;
        } else {
            // A rotated master password goes in the same ModifyDBInstance as the drift.
            let mut modify = d.modify.clone();
            if is_modifiable(inst.status()) {
                modify.master_user_password = self.rotation().await?;
            }
            if let Some(p) = &modify.master_user_password
                && !naming::is_acceptable_password(&p.0)
            {
                let secret = self
                    .password_location()
                    .map(|(name, key, _)| format!("Secret {name} key {key:?}"))
                    .unwrap_or_else(|_| "the password Secret".into());
                self.synced(
                    false,
                    "InvalidPassword",
                    format!(
                        "cannot rotate the master password: the new one in {secret} must be 8 to 128 printable ASCII characters other than '/', '\"', '@' and space (the connection Secret keeps the current one)"
                    ),
                );
                let poll = self.poll();
                return self.finish(Action::requeue(poll)).await;
            }
            if !modify.is_empty() {
                if !is_modifiable(inst.status()) {
                    waiting = true;
                    notes.push(format!(
                        "waiting for RDS status {:?} to allow changing {}",
                        inst.status(),
                        modify.fields().join(", ")
                    ));
                } else {
                    let rotating = modify.master_user_password.is_some();
                    let changed: Vec<&str> = modify
                        .fields()
                        .into_iter()
                        .filter(|f| *f != MASTER_USER_PASSWORD)
                        .collect();
                    let fields = modify.fields().join(", ");
                    tracing::info!(key = %self.key, identifier = %id, fields = %fields, "modifying RDS instance");
                    match rds.modify(&modify).await {
                        Ok(i) => {
                            // Keep what we know that ModifyDBInstance may answer without: the
                            // tags, and the endpoint the connection Secret is written from.
                            let mut i = i;
                            if i.tags.is_empty() {
                                i.tags = inst.tags.clone();
                            }
                            if i.address.is_none() {
                                i.address = inst.address.clone();
                            }
                            if i.port.is_none() {
                                i.port = inst.port;
                            }
                            fleet.record(&id, Some(i.clone()));
                            inst = i;
                            if !changed.is_empty() {
                                self.event(
                                    EventType::Normal,
                                    "UpdatedExternalResource",
                                    "ModifyDBInstance",
                                    format!(
                                        "modified {} of RDS instance {id}{}",
                                        changed.join(", "),
                                        if modify.apply_immediately {
                                            " (applyImmediately)"
                                        } else {
                                            " (in the next maintenance window)"
                                        }
                                    ),
                                )
                                .await;
                            }
                            if rotating {
                                rotated = true;
                                let secret = self
                                    .password_location()
                                    .map(|(name, _, _)| format!("Secret {name}"))
                                    .unwrap_or_else(|_| "the password Secret".into());
                                let conn = self
                                    .obj
                                    .spec
                                    .write_connection_secret_to_ref
                                    .as_ref()
                                    .map(|r| r.name.clone())
                                    .unwrap_or_default();
                                tracing::info!(key = %self.key, identifier = %id, "master password rotated");
                                self.event(
                                    EventType::Normal,
                                    "PasswordRotated",
                                    "ModifyDBInstance",
                                    format!(
                                        "sent the master password of {secret} to RDS instance {id}; publishing it in the connection Secret {conn}"
                                    ),
                                )
                                .await;
                            }
                        }
                        Err(e) => return self.aws_failure(e).await,
                    }
                }
            }
            if let Some(arn) = inst.arn.clone() {
                if !d.add_tags.is_empty() {
                    match rds.add_tags(&arn, &d.add_tags).await {
                        Ok(()) => {
                            inst.tags.extend(d.add_tags.clone());
                            fleet.record(&id, Some(inst.clone()));
                        }
                        Err(e) => return self.aws_failure(e).await,
                    }
                }
                if !d.remove_tags.is_empty() {
                    match rds.remove_tags(&arn, &d.remove_tags).await {
                        Ok(()) => {
                            for k in &d.remove_tags {
                                inst.tags.remove(k);
                            }
                            fleet.record(&id, Some(inst.clone()));
                        }
                        Err(e) => return self.aws_failure(e).await,
                    }
                }
            }
            self.status.managed_tag_keys = spec_keys;
        }
        self.status.at_provider = Some(observation(&inst));
        self.ready_from(&inst);

        if inst.status() == "available" || rotated {
            match self.connection_secret(&inst).await? {
                Ok(()) => {}
                Err(msg) => {
                    self.synced(false, "ConnectionSecretError", msg);
                    let poll = self.poll();
                    return self.finish(Action::requeue(poll)).await;
                }
            }
        }

        self.ctx.shared.backoffs.success(&self.key);
        let unsupported: Vec<&String> = self.obj.spec.for_provider.unsupported.keys().collect();
        if waiting {
            self.synced(false, "WaitingForRDS", notes.join("; "));
        } else if !unsupported.is_empty() {
            let list: Vec<&str> = unsupported.iter().map(|s| s.as_str()).collect();
            let mut msg = format!(
                "spec.forProvider fields not supported by paved were ignored: {}",
                list.join(", ")
            );
            if !notes.is_empty() {
                msg.push_str("; ");
                msg.push_str(&notes.join("; "));
            }
            self.synced(false, "UnsupportedFields", msg);
        } else {
            self.synced(true, "ReconcileSuccess", notes.join("; "));
        }
        let next = if is_transitional(inst.status()) || waiting {
            self.transitional()
        } else {
            jitter(self.poll())
        };
        self.finish(Action::requeue(next)).await
    }

    // -----------------------------------------------------------------------------------------
    // delete

    async fn release(mut self, why: String) -> Result<Action, Error> {
        tracing::info!(key = %self.key, "{why}");
        // One Normal event per deletion: DeletingExternalResource already said it when paved
        // called DeleteDBInstance.
        let delete_announced = self
            .obj
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.status.as_deref())
            == Some("deleting");
        if !delete_announced {
            self.event(EventType::Normal, "Released", "RemoveFinalizer", why)
                .await;
        }
        self.remove_finalizer().await?;
        self.ctx.shared.backoffs.success(&self.key);
        Ok(Action::await_change())
    }

    async fn cleanup(mut self) -> Result<Action, Error> {
        if !self.obj.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        let policies = Policies::parse(self.obj.spec.management_policies.as_deref());
        let orphan_reason = match (&policies, self.obj.spec.deletion_policy) {
            (_, Some(DeletionPolicy::Orphan)) => Some("deletionPolicy is Orphan"),
            (Ok(p), _) if !p.delete => Some("managementPolicies exclude Delete"),
            (Err(_), _) => Some("managementPolicies are invalid (deleting nothing to be safe)"),
            _ => None,
        };
        let id = self
            .obj
            .annotations()
            .get(EXTERNAL_NAME)
            .cloned()
            .filter(|s| !s.is_empty());
        if let Some(why) = orphan_reason {
            self.keep_password_secret().await?;
            let what = id
                .map(|i| format!("RDS instance {i} left running"))
                .unwrap_or_default();
            return self.release(format!("{why}: {what}")).await;
        }
        let Some(id) = id else {
            return self
                .release("no RDS instance was ever created for this object".into())
                .await;
        };
        if let Some(wait) = self.ctx.shared.backoffs.gate(&self.key, self.generation) {
            return Ok(Action::requeue(wait));
        }
        let (rds, fleet) = match self.aws().await? {
            Ok(a) => a,
            Err(msg) => {
                self.synced(
                    false,
                    "ProviderConfigError",
                    format!("cannot delete RDS instance {id}: {msg}"),
                );
                let poll = self.poll();
                return self.finish(Action::requeue(poll)).await;
            }
        };
        let inst = match fleet.describe_now(&*rds, &id).await {
            Ok(Some(i)) => i,
            Ok(None) => return self.release(format!("RDS instance {id} is gone")).await,
            Err(e) => return self.aws_failure(e).await,
        };
        if !owned_by(&self.obj, &inst) {
            self.event(
                EventType::Warning,
                "ExternalResourceNotOwned",
                "DeleteDBInstance",
                format!("RDS instance {id} is not tagged as owned by this object: left untouched"),
            )
            .await;
            return self
                .release(format!(
                    "RDS instance {id} is not owned by this object: not deleted"
                ))
                .await;
        }
        self.status.at_provider = Some(observation(&inst));
        self.set(
            READY,
            ConditionStatus::False,
            "Deleting",
            format!("RDS status is {}", inst.status()),
        );
        let transitional = self.transitional();
        if inst.status() == "deleting" {
            self.synced(
                true,
                "ReconcileSuccess",
                format!("waiting for RDS to delete {id}"),
            );
            return self.finish(Action::requeue(transitional)).await;
        }
        let fp = self.obj.spec.for_provider.clone();
        if inst.deletion_protection == Some(true) {
            let may_update = policies.as_ref().is_ok_and(|p| p.update);
            if fp.deletion_protection == Some(false) && may_update && is_modifiable(inst.status()) {
                let req = ModifyRequest {
                    identifier: id.clone(),
                    apply_immediately: true,
                    deletion_protection: Some(false),
                    ..Default::default()
                };
                match rds.modify(&req).await {
                    Ok(mut i) => {
                        if i.tags.is_empty() {
                            i.tags = inst.tags.clone();
                        }
                        fleet.record(&id, Some(i));
                        self.synced(
                            true,
                            "ReconcileSuccess",
                            "turned deletion protection off as the spec asks; deleting next",
                        );
                        return self.finish(Action::requeue(Duration::from_secs(1))).await;
                    }
                    Err(e) => return self.aws_failure(e).await,
                }
            }
            self.synced(
                false,
                "DeletionProtection",
                format!(
                    "RDS instance {id} has deletion protection on; set spec.forProvider.deletionProtection: false (or turn it off in AWS) to delete it, or set deletionPolicy: Orphan to keep it"
                ),
            );
            let poll = self.poll();
            return self.finish(Action::requeue(poll)).await;
        }
        let skip = fp.skip_final_snapshot.unwrap_or(false);
        let snapshot = if skip {
            None
        } else {
            match fp.final_snapshot_identifier.clone() {
                Some(s) if naming::is_valid_snapshot_identifier(&s) => Some(s),
                Some(s) => {
                    let derived = naming::final_snapshot_identifier(&id, jiff::Timestamp::now());
                    self.event(
                        EventType::Warning,
                        "InvalidFinalSnapshotIdentifier",
                        "DeleteDBInstance",
                        format!("finalSnapshotIdentifier {s:?} is not a valid snapshot identifier; using {derived}"),
                    )
                    .await;
                    Some(derived)
                }
                None => Some(naming::final_snapshot_identifier(
                    &id,
                    jiff::Timestamp::now(),
                )),
            }
        };
        let req = DeleteRequest {
            identifier: id.clone(),
            skip_final_snapshot: skip,
            final_snapshot_identifier: snapshot.clone(),
            delete_automated_backups: fp.delete_automated_backups,
        };
        tracing::info!(key = %self.key, identifier = %id, snapshot = ?snapshot, "deleting RDS instance");
        match rds.delete(&req).await {
            Ok(i) => {
                fleet.record(&id, Some(i.clone()));
                self.event(
                    EventType::Normal,
                    "DeletingExternalResource",
                    "DeleteDBInstance",
                    match &snapshot {
                        Some(s) => format!("deleting RDS instance {id}, final snapshot {s}"),
                        None => format!("deleting RDS instance {id} without a final snapshot"),
                    },
                )
                .await;
                self.status.at_provider = Some(observation(&i));
                self.synced(
                    true,
                    "ReconcileSuccess",
                    format!("waiting for RDS to delete {id}"),
                );
                self.finish(Action::requeue(transitional)).await
            }
            Err(e) if e.class == ErrorClass::NotFound => {
                self.release(format!("RDS instance {id} is gone")).await
            }
            Err(e) if e.class == ErrorClass::InvalidState => {
                self.synced(
                    false,
                    "WaitingForRDS",
                    format!("RDS cannot delete {id} yet: {}: {}", e.code, e.message),
                );
                self.finish(Action::requeue(transitional)).await
            }
            Err(e) => self.aws_failure(e).await,
        }
    }
}

fn spec_tag_keys(obj: &Instance) -> Vec<String> {
    obj.spec
        .for_provider
        .tags
        .as_ref()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// The non-empty value of `key` in a Secret, as text.
fn secret_value(secret: Option<&Secret>, key: &str) -> Option<String> {
    secret
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).to_string())
        .filter(|v| !v.is_empty())
}

fn truncate_label(v: &str) -> String {
    if v.len() <= 63 {
        v.to_string()
    } else {
        naming::derive_identifier("", v)
    }
}

/// The reconcile entry point.
pub(crate) async fn reconcile(obj: Arc<Instance>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let key = key_of(&obj);
    let obj = match ctx
        .shared
        .latest
        .ours(&key, obj.resource_version().as_deref())
    {
        Some(ours) if ours.uid() == obj.uid() => ours,
        _ => obj,
    };
    let api: Api<Instance> = Api::namespaced(ctx.shared.client.clone(), &ns);
    let flow = Flow {
        ctx: &ctx,
        status: obj.status.clone().unwrap_or_default(),
        key: key_of(&obj),
        generation: obj.metadata.generation,
        now: Time(jiff::Timestamp::now()),
        api,
        obj: (*obj).clone(),
        seen: Vec::new(),
        password: None,
    };
    let paused = obj.annotations().get(PAUSED).is_some_and(|v| v == "true");
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let res = if paused {
        paused_reconcile(flow, deleting).await
    } else if deleting {
        flow.cleanup().await
    } else {
        flow.apply().await
    };
    ctx.shared.metrics.record_reconcile(res.is_ok());
    res
}

async fn paused_reconcile(mut flow: Flow<'_>, deleting: bool) -> Result<Action, Error> {
    if deleting {
        let orphan = flow.obj.spec.deletion_policy == Some(DeletionPolicy::Orphan)
            || Policies::parse(flow.obj.spec.management_policies.as_deref())
                .is_ok_and(|p| !p.delete);
        let never_created = !flow.obj.annotations().contains_key(EXTERNAL_NAME);
        if orphan || never_created {
            flow.keep_password_secret().await?;
            return flow
                .release("paused, and deleting needs no AWS call: released".into())
                .await;
        }
    }
    flow.synced(
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
    flow.finish(Action::await_change()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reasons() {
        assert_eq!(ready_for("available").1, "Available");
        assert_eq!(ready_for("creating").1, "Creating");
        assert_eq!(ready_for("deleting").1, "Deleting");
        assert_eq!(ready_for("storage-full").1, "Unavailable");
        assert_eq!(ready_for("available").0, ConditionStatus::True);
        assert_eq!(ready_for("modifying").0, ConditionStatus::False);
    }
}
