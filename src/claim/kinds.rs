//! Resolving the kinds a Composition composes: discovery (cached for the process) and, once per
//! reconcile and kind, the scope check and the watch of that kind ([`Kinds`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, Scope};

use super::error::{Error, KubeContext};
use super::watches::Watches;

/// (apiVersion, kind).
pub(crate) type KindKey = (String, String);

/// Discovery results, cached once found (the API server's answer for a kind only changes when a
/// CRD is installed or removed; an apply that gets 404 forgets the kind).
pub(crate) struct KindCache {
    client: Client,
    found: Mutex<HashMap<KindKey, (ApiResource, ApiCapabilities)>>,
}

impl KindCache {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            found: Mutex::default(),
        }
    }

    /// Resolve an apiVersion/kind through discovery. `resource` names the Composition resource
    /// in the error.
    async fn resolve(
        &self,
        resource: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.found.lock().ok().and_then(|k| k.get(&key).cloned()) {
            return Ok(found);
        }
        let not_served = || Error::KindNotServed {
            resource: resource.to_string(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        if kind.is_empty() || api_version.is_empty() {
            return Err(not_served());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => {
                if let Ok(mut k) = self.found.lock() {
                    k.insert(key, found.clone());
                }
                Ok(found)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Err(not_served()),
            Err(kube::Error::Discovery(_)) => Err(not_served()),
            Err(e) => Err(e).ctx(|| format!("discovering {api_version} {kind}")),
        }
    }

    /// Forget a kind (its CRD went away: the next reconcile asks discovery again).
    pub fn forget(&self, api_version: &str, kind: &str) {
        if let Ok(mut k) = self.found.lock() {
            k.remove(&(api_version.to_string(), kind.to_string()));
        }
    }
}

/// The kinds one reconcile has resolved: each is looked up, checked to be namespaced and
/// watched once.
pub(crate) struct Kinds<'a> {
    cache: &'a KindCache,
    watches: &'a Arc<Watches>,
    resolved: HashMap<KindKey, ApiResource>,
}

impl<'a> Kinds<'a> {
    pub fn new(cache: &'a KindCache, watches: &'a Arc<Watches>) -> Self {
        Self {
            cache,
            watches,
            resolved: HashMap::new(),
        }
    }

    /// The API resource of a composed kind: served, namespaced, and watched from now on.
    pub async fn resolve(
        &mut self,
        resource: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(ar) = self.resolved.get(&key) {
            return Ok(ar.clone());
        }
        let (ar, caps) = self.cache.resolve(resource, api_version, kind).await?;
        if caps.scope != Scope::Namespaced {
            return Err(Error::ClusterScoped {
                resource: resource.to_string(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            });
        }
        self.watches.ensure_kind(&ar);
        self.resolved.insert(key, ar.clone());
        Ok(ar)
    }

    /// A kind this reconcile has resolved already.
    pub fn get(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        self.resolved
            .get(&(api_version.to_string(), kind.to_string()))
    }
}
