//! The master password of an Instance: where it lives (passwordSecretRef, or the generated
//! `<name>-master-password` Secret), generating and persisting it before the create call,
//! rotation (the password Secret against the published connection Secret), and keeping it when
//! the database is orphaned.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use crate::api::instance::Instance;
use crate::api::twin::M;

use super::error::{Error, kube_err};
use super::lifecycle::Flow;
use super::model::Password;
use super::naming;
use super::outcome::{Blocked, Outcome};

/// Label on the Secrets paved writes for an Instance: its name (truncated to a label value).
pub const INSTANCE_LABEL: &str = "paved.io/instance";
/// Key of the generated master password.
pub const PASSWORD_KEY: &str = "password";

/// The password cannot be known: `PasswordUnavailable` with `message`.
fn unknown(message: String) -> Result<Outcome<String>, Error> {
    Ok(Outcome::Blocked(Blocked::new(
        "PasswordUnavailable",
        message,
    )))
}

/// The master password steps, for the Instance and for its namespaced twin (`M<Instance>` derefs to it).
macro_rules! password_steps {
    ($t:ty) => {
impl Flow<'_, $t> {
    pub(crate) fn secrets(&self) -> Api<Secret> {
        Api::namespaced(
            self.ctx.shared.client.clone(),
            &self.obj.namespace().unwrap_or_default(),
        )
    }

    /// A Secret of this namespace: from the cache of paved's Secrets when it is there,
    /// otherwise from the API server.
    pub(crate) async fn get_secret(&self, name: &str) -> Result<Option<Secret>, Error> {
        let ns = self.obj.namespace().unwrap_or_default();
        if let Some(s) = crate::secrets::get(&self.ctx.secrets, &ns, name) {
            return Ok(Some(s));
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

    pub(crate) fn owner_ref(
        &self,
    ) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
        self.obj.controller_owner_ref(&())
    }

    pub(crate) fn managed_labels(&self) -> BTreeMap<String, String> {
        crate::kube::meta::managed_labels([(INSTANCE_LABEL, truncate_label(&self.obj.name_any()))])
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
    /// this returns. Blocked (`PasswordUnavailable`): paved cannot know the password.
    pub(crate) async fn password(&mut self, generate: bool) -> Result<Outcome<String>, Error> {
        if let Some(p) = &self.state.password {
            return Ok(Outcome::Ok(p.clone()));
        }
        let found = self.find_or_make_password(generate).await?;
        if let Outcome::Ok(p) = &found {
            self.state.password = Some(p.clone());
        }
        Ok(found)
    }

    /// Where the master password lives: (Secret name, key, whether the user named it in
    /// passwordSecretRef). `Err(message)`: a reference paved must not follow.
    pub(crate) fn password_location(&self) -> Result<(String, String, bool), String> {
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

    /// The password, found or (with `generate`, where paved may) made and persisted.
    async fn find_or_make_password(&self, generate: bool) -> Result<Outcome<String>, Error> {
        let fp = &self.obj.spec.for_provider;
        let (name, key, user_ref) = match self.password_location() {
            Ok(l) => l,
            Err(msg) => return unknown(msg),
        };
        let existing = self.get_secret(&name).await?;
        if let Some(p) = secret_value(existing.as_ref(), &key) {
            if let Some(s) = existing.as_ref().filter(|_| !user_ref) {
                self.own_kept_secret(s).await?;
            }
            return Ok(Outcome::Ok(p));
        }
        let may_generate = generate && (!user_ref || fp.auto_generate_password == Some(true));
        if !may_generate {
            return unknown(if user_ref {
                format!(
                    "Secret {name} has no key {key:?}: set it, or set spec.forProvider.autoGeneratePassword: true"
                )
            } else {
                format!("the master password Secret {name} is missing")
            });
        }
        if let Some(s) = &existing
            && !user_ref
            && !crate::kube::meta::is_managed(&s.metadata)
        {
            return unknown(format!(
                "Secret {name} exists and was not created by paved; paved will not write the master password into it"
            ));
        }
        self.persist_new_password(&name, &key, existing.is_some())
            .await
    }

    /// A generated master-password Secret that an orphaned predecessor of this Instance kept
    /// (paved's, with no owner left): this Instance owns it from now on, so that deleting it
    /// deletes the Secret with it, as for a Secret it generated itself.
    async fn own_kept_secret(&self, s: &Secret) -> Result<(), Error> {
        if !crate::kube::meta::is_managed(&s.metadata) || !s.owner_references().is_empty() {
            return Ok(());
        }
        let Some(owner) = self.owner_ref() else {
            return Ok(());
        };
        self.count_write("password_secret");
        let patch = serde_json::json!({"metadata": {
            "ownerReferences": [owner],
            "resourceVersion": s.metadata.resource_version,
        }});
        self.secrets()
            .patch(
                &s.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(kube_err(
                "owning the kept master password Secret",
                &self.obj,
            ))?;
        Ok(())
    }

    /// Generate a password and persist it in Secret `name` (key `key`): into the existing one,
    /// or a new one owned by this Instance. A Secret created meanwhile wins (its password is
    /// used).
    async fn persist_new_password(
        &self,
        name: &str,
        key: &str,
        exists: bool,
    ) -> Result<Outcome<String>, Error> {
        let password = naming::generate_password();
        self.count_write("password_secret");
        if exists {
            let patch =
                serde_json::json!({"data": {key: ByteString(password.clone().into_bytes())}});
            self.secrets()
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err("writing the generated password", &self.obj))?;
            return Ok(Outcome::Ok(password));
        }
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: self.obj.namespace(),
                labels: Some(self.managed_labels()),
                owner_references: self.owner_ref().map(|o| vec![o]),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some([(key.to_string(), ByteString(password.clone().into_bytes()))].into()),
            ..Default::default()
        };
        match self.secrets().create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(Outcome::Ok(password)),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Someone (an earlier run of this reconcile) persisted one first: use that one.
                let again = self
                    .secrets()
                    .get_opt(name)
                    .await
                    .map_err(kube_err("reading the master password Secret", &self.obj))?;
                match secret_value(again.as_ref(), key) {
                    Some(p) => Ok(Outcome::Ok(p)),
                    None => unknown(format!("Secret {name} appeared without key {key:?}")),
                }
            }
            Err(e) => Err(kube_err("creating the master password Secret", &self.obj)(
                e,
            )),
        }
    }

    /// The password this Instance's connection Secret publishes: the one RDS was last given by
    /// paved (at creation or at the last rotation). `None` when there is no connection Secret
    /// of this Instance's, or it holds no password.
    pub(crate) async fn published_password(
        &self,
        name: &str,
        live: bool,
    ) -> Result<Option<String>, Error> {
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
    pub(crate) async fn rotation(&mut self) -> Result<Option<Password>, Error> {
        let ns = self.obj.namespace().unwrap_or_default();
        let Some(r) = self.obj.spec.write_connection_secret_to_ref.clone() else {
            return Ok(None);
        };
        if r.namespace.as_deref().is_some_and(|n| n != ns) {
            // connection_secret refuses it and says why.
            return Ok(None);
        }
        let Outcome::Ok(current) = self.password(false).await? else {
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
        self.state.password = Some(current.clone());
        match self.published_password(&r.name, true).await? {
            Some(p) if p != current => Ok(Some(Password(current))),
            _ => Ok(None),
        }
    }

    /// With Orphan, the generated password Secret must outlive the Instance (it is the only copy
    /// of the password of a database that keeps running): drop its owner reference.
    pub(crate) async fn keep_password_secret(&self) -> Result<(), Error> {
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
}
    };
}
password_steps!(Instance);
password_steps!(M<Instance>);

/// The non-empty value of `key` in a Secret, as text.
pub(crate) fn secret_value(secret: Option<&Secret>, key: &str) -> Option<String> {
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
