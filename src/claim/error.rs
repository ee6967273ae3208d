//! Errors of the claim controller. `Display` is what the user reads in the Synced condition;
//! [`Error::reason`] is a bounded category for events and metric labels.

use super::choose::SelectError;
use crate::compose::ComposeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable Composition.
    #[error(transparent)]
    Select(#[from] SelectError),

    /// The composition engine refused: its message is shown verbatim.
    #[error(transparent)]
    Compose(#[from] ComposeError),

    #[error(
        "cannot compose resource {resource:?}: the API server does not serve apiVersion {api_version:?} kind {kind:?}; install the CRD that defines it, or fix the Composition's base"
    )]
    KindNotServed {
        resource: String,
        api_version: String,
        kind: String,
    },

    #[error(
        "cannot compose resource {resource:?}: {api_version} {kind} is cluster-scoped; paved composes only namespaced objects, in the claim's own namespace"
    )]
    ClusterScoped {
        resource: String,
        api_version: String,
        kind: String,
    },

    #[error(
        "cannot compose resource {resource:?}: it renders metadata.namespace {namespace:?}, but composed objects live in the claim's namespace {claim_namespace:?}"
    )]
    WrongNamespace {
        resource: String,
        namespace: String,
        claim_namespace: String,
    },

    #[error("cannot compose resource {resource:?}: the rendered object has no {field}")]
    Incomplete {
        resource: String,
        field: &'static str,
    },

    #[error(
        "cannot compose resource {resource:?}: {kind} {namespace}/{name} already exists and is not controlled by this claim; paved does not adopt objects it did not create. Delete or rename it"
    )]
    NotControlled {
        resource: String,
        kind: String,
        namespace: String,
        name: String,
    },

    #[error(
        "Secret {namespace}/{name} (spec.writeConnectionSecretToRef) exists and is not owned by this claim; paved will not overwrite it. Choose another name, or delete that Secret"
    )]
    SecretNotOwned { namespace: String, name: String },

    #[error("the claim has no {0}")]
    InvalidClaim(&'static str),

    #[error(
        "spec.compositionRevisionRef names CompositionRevision {revision:?}, which does not exist; `kubectl get compositionrevisions -l crossplane.io/composition-name={composition}` lists the revisions of Composition {composition}"
    )]
    RevisionNotFound {
        revision: String,
        composition: String,
    },

    #[error(
        "spec.compositionRevisionRef names CompositionRevision {revision:?}, a revision of Composition {of}, but this claim is composed by Composition {composition}; name one of its revisions"
    )]
    RevisionOfAnotherComposition {
        revision: String,
        of: String,
        composition: String,
    },

    #[error(
        "compositionUpdatePolicy is Manual and Composition {composition} has no CompositionRevision yet; paved writes one for each change of a Composition, and this claim is pinned to the first as soon as it exists"
    )]
    NoRevisionYet { composition: String },

    #[error("the cached claim could not be read back ({0}); it is read again at its next change")]
    CachedClaimUnreadable(serde_json::Error),

    #[error("{context}: {}", crate::kube::error::error_text(source))]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A bounded CamelCase category.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Select(e) => e.reason(),
            Self::Compose(e) => e.reason(),
            Self::KindNotServed { .. } => "KindNotServed",
            Self::ClusterScoped { .. } | Self::WrongNamespace { .. } | Self::Incomplete { .. } => {
                "InvalidComposedResource"
            }
            Self::NotControlled { .. } => "ComposedResourceConflict",
            Self::SecretNotOwned { .. } => "ConnectionSecretConflict",
            Self::InvalidClaim(_) => "InvalidClaim",
            Self::CachedClaimUnreadable(_) => "CachedClaimUnreadable",
            Self::RevisionNotFound { .. } => "CompositionRevisionNotFound",
            Self::RevisionOfAnotherComposition { .. } => "CompositionRevisionMismatch",
            Self::NoRevisionYet { .. } => "WaitingForCompositionRevision",
            Self::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.code == 409 => "ApiConflict",
                kube::Error::Api(s) if s.code == 403 => "ApiForbidden",
                kube::Error::Api(s) if s.code == 422 || s.code == 400 => "ApiInvalid",
                _ => "ApiError",
            },
        }
    }

    /// Errors worth retrying soon (API hiccups); the others wait for a change by the user.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Kube { .. } | Self::NoRevisionYet { .. })
    }
}

/// Attach context to a kube error.
pub(crate) trait KubeContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Kube {
            context: context(),
            source,
        })
    }
}
