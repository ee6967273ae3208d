//! Step 1b, the revision: under `compositionUpdatePolicy: Manual` the claim is composed with
//! the CompositionRevision its `compositionRevisionRef` names (see [`crate::revisions`]), not
//! with the Composition as it is now. With no reference yet, paved sets it once to the newest
//! revision, so that later Composition changes reach the claim only when a person moves the
//! reference. `Automatic` (the default): the Composition itself, as before.
//!
//! The decisions are pure ([`pin`], [`pinned`], [`newest`]); [`with_revision`] reads the
//! revision and writes the reference.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::object::{Claim, ManagedSpec};
use crate::api::claim::CompositionUpdatePolicy;
use crate::api::composition_revision::COMPOSITION_NAME_LABEL;
use crate::api::{Composition, CompositionRevision};

/// Which spec composes the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pin {
    /// The Composition as it is now (Automatic).
    Current,
    /// The revision of this name (Manual, with a reference).
    Named(String),
    /// The newest revision, to be recorded in the reference (Manual, no reference yet).
    Newest,
}

/// What the claim's spec asks for.
pub(crate) fn pin(spec: &ManagedSpec) -> Pin {
    match (
        spec.composition_update_policy,
        &spec.composition_revision_ref,
    ) {
        (Some(CompositionUpdatePolicy::Manual), Some(r)) => Pin::Named(r.name.clone()),
        (Some(CompositionUpdatePolicy::Manual), None) => Pin::Newest,
        _ => Pin::Current,
    }
}

/// The newest of a Composition's revisions.
pub(crate) fn newest(revisions: &[CompositionRevision]) -> Option<&CompositionRevision> {
    revisions.iter().max_by_key(|r| r.spec.revision)
}

/// The Composition to render: its metadata (resources keep their names), the revision's spec.
/// A revision of another Composition is refused: the reference must name one of the chosen
/// Composition's revisions.
pub(crate) fn pinned(
    composition: &Composition,
    revision: &CompositionRevision,
) -> Result<Composition, Error> {
    let of = revision.labels().get(COMPOSITION_NAME_LABEL);
    let chosen = composition.name_any();
    if of != Some(&chosen) {
        return Err(Error::RevisionOfAnotherComposition {
            revision: revision.name_any(),
            of: of.cloned().unwrap_or_default(),
            composition: chosen,
        });
    }
    Ok(Composition {
        metadata: composition.metadata.clone(),
        spec: revision.spec.composition.clone(),
        status: None,
    })
}

/// The chosen Composition, or the revision of it that the claim pins.
pub(crate) async fn with_revision(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    composition: Arc<Composition>,
) -> Result<Arc<Composition>, Error> {
    let api: Api<CompositionRevision> = Api::all(ctx.client.clone());
    let name = composition.name_any();
    let revision = match pin(&claim.spec) {
        Pin::Current => return Ok(composition),
        Pin::Named(rev) => {
            ctx.metrics.read("revision");
            api.get_opt(&rev)
                .await
                .ctx(|| format!("reading CompositionRevision {rev}"))?
                .ok_or_else(|| Error::RevisionNotFound {
                    revision: rev.clone(),
                    composition: name.clone(),
                })?
        }
        Pin::Newest => {
            ctx.metrics.read("revision");
            let listed = api
                .list(&ListParams::default().labels(&format!("{COMPOSITION_NAME_LABEL}={name}")))
                .await
                .ctx(|| format!("listing the CompositionRevisions of Composition {name}"))?;
            let newest = newest(&listed.items)
                .cloned()
                .ok_or_else(|| Error::NoRevisionYet {
                    composition: name.clone(),
                })?;
            record_reference(ctx, claim, ns, &newest.name_any()).await?;
            newest
        }
    };
    Ok(Arc::new(pinned(&composition, &revision)?))
}

/// Write `compositionRevisionRef` into the claim's spec (under `spec.crossplane` for a v2 XR).
async fn record_reference(ctx: &Context, claim: &Claim, ns: &str, rev: &str) -> Result<(), Error> {
    let reference = json!({"compositionRevisionRef": {"name": rev}});
    let spec: Value = if claim.kind.v2 {
        json!({"crossplane": reference})
    } else {
        reference
    };
    ctx.metrics.write("revision_ref");
    Api::<kube::api::DynamicObject>::namespaced_with(ctx.client.clone(), ns, &claim.api_resource())
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
        .ctx(|| format!("recording compositionRevisionRef {rev} on the claim"))?;
    tracing::info!(object = %format!("{ns}/{}", claim.name_any()), revision = rev, "claim pinned to the newest CompositionRevision");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::CompositionRevisionSpec;
    use crate::api::common::NameReference;
    use kube::api::ObjectMeta;

    fn spec(policy: Option<CompositionUpdatePolicy>, rev: Option<&str>) -> ManagedSpec {
        ManagedSpec {
            composition_update_policy: policy,
            composition_revision_ref: rev.map(|n| NameReference { name: n.into() }),
            ..ManagedSpec::default()
        }
    }

    fn revision(name: &str, of: &str, n: i64, kind: &str) -> CompositionRevision {
        let mut r = CompositionRevision::new(
            name,
            CompositionRevisionSpec {
                revision: n,
                composition: Default::default(),
            },
        );
        r.metadata.labels = Some([(COMPOSITION_NAME_LABEL.to_string(), of.to_string())].into());
        r.spec.composition.composite_type_ref.kind = kind.into();
        r
    }

    #[test]
    fn only_manual_pins_and_automatic_ignores_a_reference() {
        use CompositionUpdatePolicy::{Automatic, Manual};
        assert_eq!(pin(&spec(None, None)), Pin::Current);
        assert_eq!(pin(&spec(None, Some("pg-1"))), Pin::Current);
        assert_eq!(pin(&spec(Some(Automatic), Some("pg-1"))), Pin::Current);
        assert_eq!(pin(&spec(Some(Manual), None)), Pin::Newest);
        assert_eq!(
            pin(&spec(Some(Manual), Some("pg-1"))),
            Pin::Named("pg-1".into())
        );
    }

    #[test]
    fn the_newest_is_the_highest_number_not_the_last_listed() {
        let revs = [
            revision("pg-a", "pg", 3, "A"),
            revision("pg-b", "pg", 1, "B"),
            revision("pg-c", "pg", 2, "C"),
        ];
        assert_eq!(newest(&revs).unwrap().name_any(), "pg-a");
        assert!(newest(&[]).is_none());
    }

    #[test]
    fn a_pinned_composition_keeps_its_name_and_takes_the_revision_spec() {
        let comp = Composition {
            metadata: ObjectMeta {
                name: Some("pg".into()),
                ..ObjectMeta::default()
            },
            spec: Default::default(),
            status: None,
        };
        let got = pinned(&comp, &revision("pg-a", "pg", 1, "Old")).unwrap();
        assert_eq!(got.name_any(), "pg");
        assert_eq!(got.spec.composite_type_ref.kind, "Old");
        let err = pinned(&comp, &revision("other-a", "other", 1, "X")).unwrap_err();
        assert_eq!(err.reason(), "CompositionRevisionMismatch");
        assert!(err.to_string().contains("other-a"), "{err}");
        assert!(err.to_string().contains("Composition other"), "{err}");
    }
}
