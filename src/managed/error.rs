//! Errors that end a reconcile of a managed object. AWS errors do not: they become conditions
//! (see [`super::outcome`]).

use kube::{Resource, ResourceExt};

/// Errors that end a reconcile (AWS errors do not: they become conditions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} for {object}: {}", crate::kube::error::error_text(source))]
    Kube {
        action: &'static str,
        /// The kind and `namespace/name` of the object.
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("a managed object has no namespace")]
    NoNamespace,
}

/// `namespace/name` of an object: its key in caches and backoffs, and the owner tag's value.
pub(crate) fn key_of<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The [`Error::Kube`] of `action` on `obj`.
pub(crate) fn kube_err<'o, K: Resource<DynamicType = ()>>(
    action: &'static str,
    obj: &'o K,
) -> impl FnOnce(kube::Error) -> Error + 'o {
    move |source| Error::Kube {
        action,
        object: format!("{} {}", K::kind(&()), key_of(obj)),
        source,
    }
}
