//! The revisions step of the Composition controller: one LIST of the Composition's revisions
//! (by label) and at most one write, as the pure [`crate::revisions::step`] decides.

use std::collections::BTreeMap;

use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::error::Error;
use crate::api::composition_revision::{COMPOSITION_HASH_LABEL, COMPOSITION_NAME_LABEL};
use crate::api::{Composition, CompositionRevision, CompositionRevisionSpec};
use crate::revisions::{Known, Step, spec_hash, step};

/// Field manager of paved's revision writes.
pub const MANAGER: &str = "paved-revisions";

/// Make the Composition's newest revision hold its spec: create one, or raise the older one
/// that holds it, or nothing.
pub async fn bring_up_to_date(
    comp: &Composition,
    revisions: &Api<CompositionRevision>,
) -> Result<(), Error> {
    let name = comp.name_any();
    let listed = revisions
        .list(&ListParams::default().labels(&format!("{COMPOSITION_NAME_LABEL}={name}")))
        .await
        .map_err(Error::of("listing the revisions", &name))?;
    let known: Vec<Known> = listed
        .items
        .iter()
        .filter_map(|r| {
            Some(Known {
                name: r.metadata.name.clone()?,
                revision: r.spec.revision,
                hash: r.labels().get(COMPOSITION_HASH_LABEL)?.clone(),
            })
        })
        .collect();
    let hash = spec_hash(&comp.spec);
    match step(&name, &hash, &known) {
        Step::Current => {}
        Step::Create {
            name: rev_name,
            revision,
        } => {
            let labels = BTreeMap::from([
                (COMPOSITION_NAME_LABEL.to_string(), name.clone()),
                (COMPOSITION_HASH_LABEL.to_string(), hash),
            ]);
            let rev = CompositionRevision {
                metadata: ObjectMeta {
                    name: Some(rev_name.clone()),
                    labels: Some(labels),
                    owner_references: comp.controller_owner_ref(&()).map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                spec: CompositionRevisionSpec {
                    revision,
                    composition: comp.spec.clone(),
                },
            };
            let params = PostParams {
                field_manager: Some(MANAGER.into()),
                ..PostParams::default()
            };
            revisions
                .create(&params, &rev)
                .await
                .map_err(Error::of("creating a revision", &name))?;
            tracing::info!(object = %name, revision, name = %rev_name, "Composition revision created");
        }
        Step::Raise {
            name: rev_name,
            revision,
        } => {
            revisions
                .patch(
                    &rev_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"revision": revision}})),
                )
                .await
                .map_err(Error::of("raising a revision", &name))?;
            tracing::info!(object = %name, revision, name = %rev_name, "Composition changed back: its earlier revision is the newest again");
        }
    }
    Ok(())
}
