//! Errors that end a reconcile of a managed object. AWS errors do not: they become conditions
//! (see [`super::outcome`]).

use kube::ResourceExt;

use crate::api::instance::Instance;

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

pub(crate) fn key_of(obj: &Instance) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

pub(crate) fn kube_err<'o>(
    action: &'static str,
    obj: &'o Instance,
) -> impl FnOnce(kube::Error) -> Error + 'o {
    move |source| Error::Kube {
        action,
        key: key_of(obj),
        source,
    }
}
