//! Reading objects as the API server has them: from the watch caches, or from paved's own last
//! write while a cache has not caught up with it (so that paved never rewrites what it just
//! wrote), and a GET only when neither can answer.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::FIELD_MANAGER;
use super::watches::{CompactObject, slim};
use crate::api::{PostgreSQLInstance, PostgreSQLInstanceStatus};

/// (apiVersion, kind, namespace, name) of a composed object.
pub(crate) type ObjectKey = (String, String, String, String);

/// Whether resourceVersion `a` is newer than `b`. Resource versions are opaque to clients in
/// general, but the API server (etcd3) issues them as increasing integers; they are compared
/// only to tell whether a watch cache has caught up with a write paved itself made. Anything
/// unparseable counts as "not newer", i.e. the cache is trusted (at worst one redundant write).
pub(crate) fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

/// Whether `a` is a newer version of the object than `b` (see [`newer`]).
fn fresher<K: Resource>(a: &K, b: &K) -> bool {
    match (
        a.meta().resource_version.as_deref(),
        b.meta().resource_version.as_deref(),
    ) {
        (Some(a), Some(b)) => newer(a, b),
        _ => false,
    }
}

/// Of a cached copy and paved's own recent write: the newer one, and whether the recent write
/// is no longer needed (the cache has it, or something newer).
fn pick<K: Resource>(cached: Arc<K>, recent: Option<Arc<K>>) -> (Arc<K>, bool) {
    match recent {
        Some(r) if fresher(&*r, &*cached) => (r, false),
        Some(_) => (cached, true),
        None => (cached, false),
    }
}

pub(crate) fn dyn_api(ctx: &Context, ar: &ApiResource, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), ns, ar)
}

impl Context {
    /// The claim's status as the API server has it: the cached claim's, unless the cache has
    /// not caught up with our last status write yet (then what we wrote).
    pub fn live_status(&self, claim: &PostgreSQLInstance) -> PostgreSQLInstanceStatus {
        let cached = claim.status.clone().unwrap_or_default();
        let (Some(uid), Some(rv)) = (claim.uid(), claim.resource_version()) else {
            return cached;
        };
        let Ok(mut written) = self.written.lock() else {
            return cached;
        };
        match written.get(&uid) {
            Some((w_rv, w_status)) if newer(w_rv, &rv) => w_status.clone(),
            Some(_) => {
                // The cache has our write (or something newer): forget ours.
                written.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    pub fn note_status_written(
        &self,
        claim: &PostgreSQLInstance,
        rv: Option<String>,
        status: &PostgreSQLInstanceStatus,
    ) {
        if let (Some(uid), Some(rv), Ok(mut w)) = (claim.uid(), rv, self.written.lock()) {
            w.insert(uid, (rv, status.clone()));
        }
    }

    pub fn forget_claim(&self, claim: &PostgreSQLInstance) {
        if let (Some(uid), Ok(mut w)) = (claim.uid(), self.written.lock()) {
            w.remove(&uid);
        }
    }

    /// A composed object as the API server has it, from the watch cache of its kind; our own
    /// last apply's response when the cache has not caught up with it yet. A GET only when the
    /// cache cannot answer or misses an object paved just wrote (or, which should never happen,
    /// the compact form does not rebuild).
    pub async fn live_object(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        let key = object_key(ar, ns, name);
        let recent = self
            .recent_objects
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        let found = match (self.watches.cached_object(ar, ns, name).await, recent) {
            (Some(Some(cached)), recent) => {
                let (found, stale) = pick(cached, recent);
                if stale {
                    self.forget_recent_object(&key);
                }
                Some(found)
            }
            (Some(None), None) => return Ok(None),
            // Not (yet) in the cache although paved wrote it, or no cache: ask the API server.
            (Some(None), Some(_)) | (None, _) => None,
        };
        if let Some(found) = found {
            match found.to_dynamic() {
                Ok(obj) => return Ok(Some(obj)),
                Err(e) => {
                    tracing::warn!(kind = %ar.kind, %ns, %name, error = %e, "cached object does not rebuild; reading it from the API server");
                    self.forget_recent_object(&key);
                }
            }
        }
        self.metrics.read("object");
        let got = dyn_api(self, ar, ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading {} {ns}/{name}", ar.kind))?;
        if got.is_none() {
            self.forget_recent_object(&key);
        }
        Ok(got)
    }

    /// Remember our apply's response until the cache has caught up with it, slimmed and compact
    /// as the cache would hold it.
    pub fn note_applied(&self, ar: &ApiResource, ns: &str, obj: &DynamicObject) {
        let mut slimmed = obj.clone();
        slim(&mut slimmed.metadata, Some(FIELD_MANAGER));
        let compact = Arc::new(CompactObject::new(slimmed));
        if let Ok(mut m) = self.recent_objects.lock() {
            m.insert(object_key(ar, ns, &obj.name_any()), compact);
        }
    }

    pub fn forget_recent_object(&self, key: &ObjectKey) {
        if let Ok(mut m) = self.recent_objects.lock() {
            m.remove(key);
        }
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
        let recent = self
            .recent_secrets
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        match (self.watches.cached_secret(ns, name).await, recent) {
            (Some(Some(cached)), recent) => {
                let (found, stale) = pick(cached, recent);
                if stale {
                    self.forget_recent_secret(&key);
                }
                return Ok(Some((*found).clone()));
            }
            (Some(None), None) if !get_on_miss => return Ok(None),
            _ => {}
        }
        self.metrics.read("secret");
        let got = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading Secret {ns}/{name}"))?;
        if got.is_none() {
            self.forget_recent_secret(&key);
        }
        Ok(got)
    }

    pub fn note_secret_written(&self, ns: &str, s: &Secret) {
        if let Ok(mut m) = self.recent_secrets.lock() {
            m.insert((ns.to_string(), s.name_any()), Arc::new(s.clone()));
        }
    }

    pub fn forget_recent_secret(&self, key: &(String, String)) {
        if let Ok(mut m) = self.recent_secrets.lock() {
            m.remove(key);
        }
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
