//! `CompositionRevision` (`apiextensions.crossplane.io/v1`): an immutable snapshot of a
//! Composition's spec, as Crossplane v1 keeps them, so that a platform team can roll a
//! Composition change out claim by claim.
//!
//! paved writes one for every distinct spec a Composition has had (see [`crate::revisions`]):
//! named `<composition>-<first 7 hex digits of the spec's hash>`, labelled with the
//! Composition's name and the hash, owned by the Composition, and numbered: the newest spec has
//! the highest `spec.revision`. A claim with `compositionUpdatePolicy: Manual` is composed with
//! the revision its `compositionRevisionRef` names; with `Automatic` (the default) with the
//! Composition as it is now.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::composition::CompositionSpec;

/// Label naming the Composition a revision is of.
pub const COMPOSITION_NAME_LABEL: &str = "crossplane.io/composition-name";
/// Label holding (the first 63 hex digits of) the SHA-256 of the revision's spec.
pub const COMPOSITION_HASH_LABEL: &str = "crossplane.io/composition-hash";

/// A snapshot of a Composition's spec at one revision. Written by paved when the Composition
/// changes; not to be edited. `kubectl get compositionrevisions -l
/// crossplane.io/composition-name=<composition>` lists a Composition's revisions.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apiextensions.crossplane.io",
    version = "v1",
    kind = "CompositionRevision",
    plural = "compositionrevisions",
    singular = "compositionrevision",
    category = "crossplane",
    category = "paved",
    doc = "An immutable snapshot of a Composition's spec (Crossplane v1), written by paved at each change of the Composition. Claims with compositionUpdatePolicy Manual are composed with the revision their compositionRevisionRef names.",
    printcolumn = r#"{"name":"REVISION","type":"integer","jsonPath":".spec.revision"}"#,
    printcolumn = r#"{"name":"XR-KIND","type":"string","jsonPath":".spec.compositeTypeRef.kind"}"#,
    printcolumn = r#"{"name":"XR-APIVERSION","type":"string","jsonPath":".spec.compositeTypeRef.apiVersion"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CompositionRevisionSpec {
    /// The revision number: 1 for a Composition's first spec, one more for each change. A
    /// Composition changed back to an earlier spec makes that spec's revision the newest again
    /// (its number is raised), as Crossplane does.
    #[schemars(range(min = 1))]
    pub revision: i64,

    /// The Composition's spec at this revision.
    #[serde(flatten)]
    pub composition: CompositionSpec,
}
