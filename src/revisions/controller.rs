//! The I/O of Composition revisions: a watch of Compositions; for each change, one LIST of its
//! revisions (by label) and at most one write ([`super::step`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Known, Step, spec_hash, step};
use crate::api::composition_revision::{COMPOSITION_HASH_LABEL, COMPOSITION_NAME_LABEL};
use crate::api::{Composition, CompositionRevision, CompositionRevisionSpec};

/// Field manager of paved's revision writes.
pub const MANAGER: &str = "paved-revisions";

/// Why a Composition's revisions could not be brought up to date (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} for Composition {composition}: {}",
    crate::kube::error::error_text(source)
)]
pub struct Error {
    composition: String,
    what: &'static str,
    #[source]
    source: kube::Error,
}

/// Keep every Composition's revisions up to date until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let revisions: Api<CompositionRevision> = Api::all(client.clone());
    Controller::new(Api::<Composition>::all(client), watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(revisions))
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "composition revisions");
            }
            std::future::ready(())
        })
        .await;
    Ok(())
}

fn error_policy(c: Arc<Composition>, e: &Error, _: Arc<Api<CompositionRevision>>) -> Action {
    tracing::warn!(object = %c.name_any(), error = %e, "Composition revision not written");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile(
    comp: Arc<Composition>,
    revisions: Arc<Api<CompositionRevision>>,
) -> Result<Action, Error> {
    let name = comp.name_any();
    let fail = |what| {
        let composition = name.clone();
        move |source| Error {
            composition,
            what,
            source,
        }
    };
    let listed = revisions
        .list(&ListParams::default().labels(&format!("{COMPOSITION_NAME_LABEL}={name}")))
        .await
        .map_err(fail("listing the revisions"))?;
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
                .map_err(fail("creating a revision"))?;
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
                .map_err(fail("raising a revision"))?;
            tracing::info!(object = %name, revision, name = %rev_name, "Composition changed back: its earlier revision is the newest again");
        }
    }
    Ok(Action::await_change())
}
