//! Why a step of a Composition's pipeline failed: an API server call, retried.

/// Why a Composition could not be brought up to date (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} of Composition {composition}: {}",
    crate::kube::error::error_text(source)
)]
pub struct Error {
    composition: String,
    what: &'static str,
    #[source]
    source: kube::Error,
}

impl Error {
    /// The error of `what` (for example "listing the revisions") for this Composition.
    pub fn of(what: &'static str, composition: &str) -> impl FnOnce(kube::Error) -> Error {
        let composition = composition.to_string();
        move |source| Error {
            composition,
            what,
            source,
        }
    }
}
