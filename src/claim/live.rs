//! Reading objects as the API server has them: from the watch caches, or from paved's own last
//! write while a cache has not caught up with it (so that paved never rewrites what it just
//! wrote; [`crate::kube::overlay`] holds the one resourceVersion rule), and a GET only when
//! neither can answer.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::FIELD_MANAGER;
use super::object::Claim;
use crate::api::PostgreSQLInstanceStatus;
use crate::kube::compact::CompactObject;
use crate::kube::meta::slim;

/// (apiVersion, kind, namespace, name) of a composed object.
pub(crate) type ObjectKey = (String, String, String, String);

pub(crate) fn dyn_api(ctx: &Context, ar: &ApiResource, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), ns, ar)
}

impl Context {
    /// The claim's status as the API server has it: the cached claim's, unless the cache has
    /// not caught up with our last status write yet (then what we wrote).
    pub fn live_status(&self, claim: &Claim) -> PostgreSQLInstanceStatus {
        let ours = claim.uid().and_then(|uid| {
            self.written
                .ours(&uid, claim.meta().resource_version.as_deref())
        });
        match ours {
            Some(s) => (*s).clone(),
            None => claim.status.clone().unwrap_or_default(),
        }
    }

    /// Remember a status write that replaced the claim's versions `superseded` and returned
    /// version `rv`.
    pub fn note_status_written(
        &self,
        claim: &Claim,
        superseded: &[String],
        rv: Option<String>,
        status: &PostgreSQLInstanceStatus,
    ) {
        if let Some(uid) = claim.uid() {
            self.written
                .wrote(uid, superseded, rv.as_deref(), status.clone());
        }
    }

    pub fn forget_claim(&self, claim: &Claim) {
        if let Some(uid) = claim.uid() {
            self.written.forget(&uid);
        }
    }

    /// A composed object as the API server has it, from the watch cache of its kind; our own
    /// last apply's response when the cache has not caught up with it yet. A GET when the
    /// cache cannot answer or misses the object (or, which should never happen, the compact
    /// form does not rebuild): the caches hold only objects with the claim-name label, so an
    /// object of that name that paved did not compose is seen only by a GET, and planning then
    /// refuses to take it over. Idle, every composed object is in the cache: no GET.
    pub async fn live_object(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        let key = object_key(ar, ns, name);
        let found = match self.watches.cached_object(ar, ns, name).await {
            Some(Some(cached)) => Some(
                self.recent_objects
                    .ours(&key, cached.meta().resource_version.as_deref())
                    .unwrap_or(cached),
            ),
            // Not in the cache (not composed by paved, or not yet seen), or no cache: ask the
            // API server.
            _ => None,
        };
        if let Some(found) = found {
            match found.to_dynamic() {
                Ok(obj) => return Ok(Some(obj)),
                Err(e) => {
                    tracing::warn!(kind = %ar.kind, object = %format!("{ns}/{name}"), error = %e, "cached object does not rebuild; reading it from the API server");
                    self.recent_objects.forget(&key);
                }
            }
        }
        self.metrics.read("object");
        let got = dyn_api(self, ar, ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading {} {ns}/{name}", ar.kind))?;
        if got.is_none() {
            self.recent_objects.forget(&key);
        }
        Ok(got)
    }

    /// Remember our apply's response (which replaced version `superseded` of the object, if it
    /// existed) until the cache has caught up with it, slimmed and compact as the cache would
    /// hold it.
    pub fn note_applied(
        &self,
        ar: &ApiResource,
        ns: &str,
        superseded: Option<&str>,
        obj: &DynamicObject,
    ) {
        let mut slimmed = obj.clone();
        slim(&mut slimmed.metadata, Some(FIELD_MANAGER));
        let superseded: Vec<String> = superseded.map(str::to_string).into_iter().collect();
        let rv = obj.resource_version();
        let compact = CompactObject::new(slimmed);
        self.recent_objects.wrote(
            object_key(ar, ns, &obj.name_any()),
            &superseded,
            rv.as_deref(),
            compact,
        );
    }

    pub fn forget_recent_object(&self, key: &ObjectKey) {
        self.recent_objects.forget(key);
    }

    /// A Secret, from the cache of paved's (labelled) Secrets, or our own last write when the
    /// cache lags it. On a cache miss, a GET only when `get_on_miss` (the Secret may exist
    /// without paved's label) or paved just wrote it.
    pub async fn live_secret(
        &self,
        ns: &str,
        name: &str,
        get_on_miss: bool,
    ) -> Result<Option<Secret>, Error> {
        let key = (ns.to_string(), name.to_string());
        match self.watches.cached_secret(ns, name).await {
            Some(Some(cached)) => {
                let rv = cached.metadata.resource_version.as_deref();
                return Ok(Some(match self.recent_secrets.ours(&key, rv) {
                    Some(ours) => (*ours).clone(),
                    None => cached,
                }));
            }
            Some(None) if !get_on_miss && self.recent_secrets.peek(&key).is_none() => {
                return Ok(None);
            }
            _ => {}
        }
        self.metrics.read("secret");
        let got = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading Secret {ns}/{name}"))?;
        if got.is_none() {
            self.recent_secrets.forget(&key);
        }
        Ok(got)
    }

    /// Remember our write of a Secret (which replaced version `superseded`, if it existed).
    pub fn note_secret_written(&self, ns: &str, superseded: Option<&str>, s: &Secret) {
        let superseded: Vec<String> = superseded.map(str::to_string).into_iter().collect();
        let rv = s.metadata.resource_version.clone();
        self.recent_secrets.wrote(
            (ns.to_string(), s.name_any()),
            &superseded,
            rv.as_deref(),
            s.clone(),
        );
    }

    pub fn forget_recent_secret(&self, key: &(String, String)) {
        self.recent_secrets.forget(key);
    }
}

pub(crate) fn object_key(ar: &ApiResource, ns: &str, name: &str) -> ObjectKey {
    object_key_parts(&ar.api_version, &ar.kind, ns, name)
}

pub(crate) fn object_key_parts(api_version: &str, kind: &str, ns: &str, name: &str) -> ObjectKey {
    (
        api_version.to_string(),
        kind.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}
