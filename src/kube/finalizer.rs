//! Finalizers added and removed as merge patches guarded by the resourceVersion.
//!
//! A merge patch replaces the whole `finalizers` list: carrying the resourceVersion the list
//! was read at makes a concurrent change by someone else fail the patch (409, retried by the
//! next reconcile) instead of being lost, and keeps a reconcile that started from an outdated
//! object from writing again what is already there. The same patch can carry annotations, so
//! that a finalizer and what goes with it (an external-name) land in one write.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// What a metadata patch did.
#[derive(Debug)]
pub enum Written<K> {
    /// Nothing to change: no request was made.
    Unchanged,
    /// The object as the API server returned it.
    Wrote(K),
    /// The object is gone (404).
    Gone,
}

pub fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The finalizer list with `finalizer` added; `None` when it is there already.
pub fn added(meta: &ObjectMeta, finalizer: &str) -> Option<Vec<String>> {
    if has(meta, finalizer) {
        return None;
    }
    let mut f = meta.finalizers.clone().unwrap_or_default();
    f.push(finalizer.to_string());
    Some(f)
}

/// The finalizer list without `finalizer`; `None` when it is not there.
pub fn removed(meta: &ObjectMeta, finalizer: &str) -> Option<Vec<String>> {
    if !has(meta, finalizer) {
        return None;
    }
    Some(
        meta.finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect(),
    )
}

/// The body of a guarded metadata merge patch: `resourceVersion`, plus the new finalizer list
/// and annotations when given. `None` when there is nothing to change.
pub fn metadata_patch(
    resource_version: Option<&str>,
    finalizers: Option<Vec<String>>,
    annotations: &BTreeMap<String, String>,
) -> Option<Value> {
    if finalizers.is_none() && annotations.is_empty() {
        return None;
    }
    let mut meta = json!({ "resourceVersion": resource_version });
    if let Some(f) = finalizers {
        meta["finalizers"] = json!(f);
    }
    if !annotations.is_empty() {
        meta["annotations"] = json!(annotations);
    }
    Some(json!({ "metadata": meta }))
}

/// Send a guarded metadata merge patch (see [`metadata_patch`]); a 404 is [`Written::Gone`].
pub async fn patch_metadata<K>(
    api: &Api<K>,
    name: &str,
    meta: &ObjectMeta,
    finalizers: Option<Vec<String>>,
    annotations: &BTreeMap<String, String>,
) -> Result<Written<K>, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let Some(body) = metadata_patch(meta.resource_version.as_deref(), finalizers, annotations)
    else {
        return Ok(Written::Unchanged);
    };
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(o) => Ok(Written::Wrote(o)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Written::Gone),
        Err(e) => Err(e),
    }
}

/// Add `finalizer` (one guarded merge patch, none when it is there).
pub async fn add<K>(
    api: &Api<K>,
    name: &str,
    meta: &ObjectMeta,
    finalizer: &str,
) -> Result<Written<K>, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    patch_metadata(api, name, meta, added(meta, finalizer), &BTreeMap::new()).await
}

/// Remove `finalizer` (one guarded merge patch, none when it is not there).
pub async fn remove<K>(
    api: &Api<K>,
    name: &str,
    meta: &ObjectMeta,
    finalizer: &str,
) -> Result<Written<K>, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    patch_metadata(api, name, meta, removed(meta, finalizer), &BTreeMap::new()).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta(f: &[&str]) -> ObjectMeta {
        ObjectMeta {
            finalizers: (!f.is_empty()).then(|| f.iter().map(|s| s.to_string()).collect()),
            resource_version: Some("7".into()),
            ..Default::default()
        }
    }

    #[test]
    fn lists() {
        assert_eq!(added(&meta(&[]), "a"), Some(vec!["a".to_string()]));
        assert_eq!(
            added(&meta(&["b"]), "a"),
            Some(vec!["b".into(), "a".into()])
        );
        assert_eq!(added(&meta(&["a"]), "a"), None);
        assert_eq!(
            removed(&meta(&["b", "a"]), "a"),
            Some(vec!["b".to_string()])
        );
        assert_eq!(removed(&meta(&["a"]), "a"), Some(vec![]));
        assert_eq!(removed(&meta(&["b"]), "a"), None);
    }

    #[test]
    fn patches_carry_the_resource_version() {
        assert_eq!(metadata_patch(Some("7"), None, &BTreeMap::new()), None);
        let p = metadata_patch(Some("7"), Some(vec!["a".into()]), &BTreeMap::new()).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "7", "finalizers": ["a"]}})
        );
        let a = [("x".to_string(), "y".to_string())].into();
        let p = metadata_patch(Some("7"), None, &a).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "7", "annotations": {"x": "y"}}})
        );
    }
}
