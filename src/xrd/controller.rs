//! The XRD controller: for every CompositeResourceDefinition, the claim CRD paved synthesises
//! ([`super::synth`]) is created and kept current by server-side apply; the XRD's conditions
//! say whether the kind is served (Established) and composed (Offered); the set of served kinds
//! goes to the claim controller, which starts and stops one watch per kind.
//!
//! Deleting an XRD while claims of its kind exist is held: the XRD keeps paved's finalizer,
//! its CRD and its claims stay (and keep being composed), and condition Offered says which
//! claims hold it. Deleting a CRD would delete every claim of the kind and, through them, their
//! databases: paved never does that as a side effect. Once the last claim is gone, paved
//! deletes the CRD and releases the XRD.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::synth::{ServedKind, XRD_LABEL, synthesize};
use crate::api::common::{Condition, ConditionStatus, get_condition, set_condition};
use crate::api::xrd::{
    CLAIMS_VALID, CompositeResourceDefinition, CompositeResourceDefinitionStatus, ESTABLISHED,
    OFFERED, TypeRef, XrdControllers,
};
use crate::kube::finalizer;
use crate::kube::synced::{self, SyncedRx};

/// The finalizer that holds an XRD while claims of its kind exist.
pub const FINALIZER: &str = "paved.dev/xrd";
const MANAGER: &str = "paved";

/// The kinds XRDs define that paved serves, by CRD name.
pub type Served = BTreeMap<String, Arc<ServedKind>>;

struct Ctx {
    client: Client,
    served: watch::Sender<Served>,
}

/// Why a reconcile of an XRD failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {}", .0, crate::kube::error::error_text(.1))]
    Kube(String, #[source] kube::Error),
}

/// Start the XRD controller. Returns the served kinds (changing as XRDs come and go) and the
/// signal that the XRDs existing at start have been listed.
pub fn start(
    client: Client,
    shutdown: Shared<BoxFuture<'static, ()>>,
) -> (watch::Receiver<Served>, SyncedRx) {
    let (tx, rx) = watch::channel(Served::new());
    let (synced_tx, synced_rx) = synced::channel();
    let api: Api<CompositeResourceDefinition> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        served: tx,
    });
    let list_api = api.clone();
    tokio::spawn(async move {
        // Synced once the XRDs can be listed (the ones listed are reconciled right after).
        loop {
            match list_api.list(&ListParams::default().limit(1)).await {
                Ok(_) => {
                    synced_tx.send_replace(true);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing CompositeResourceDefinitions failed (is its CRD installed?); retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        Controller::new(api, watcher::Config::default())
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx)
            .for_each(|r| {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "xrd controller");
                }
                std::future::ready(())
            })
            .await;
    });
    (rx, synced_rx)
}

fn error_policy(_: Arc<CompositeResourceDefinition>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "reconciling CompositeResourceDefinition failed");
    Action::requeue(Duration::from_secs(5))
}

fn cond(type_: &str, ok: bool, reason: &str, msg: impl Into<String>, g: Option<i64>) -> Condition {
    Condition::new(type_, ConditionStatus::from_bool(ok), reason, msg, g)
}

async fn reconcile(xrd: Arc<CompositeResourceDefinition>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = xrd.name_any();
    let api: Api<CompositeResourceDefinition> = Api::all(ctx.client.clone());
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let generation = xrd.meta().generation;
    let old = xrd.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let now = Time(jiff::Timestamp::now());
    let synth = synthesize(&xrd);

    if xrd.meta().deletion_timestamp.is_some() {
        // Only the CRD paved made for this XRD is this XRD's to hold or delete.
        let ours = match &synth {
            Ok(s) => crds
                .get_opt(&s.kind.crd_name())
                .await
                .map_err(|e| Error::Kube("reading the claim CRD".into(), e))?
                .filter(|c| c.labels().get(XRD_LABEL) == Some(&name))
                .is_some(),
            Err(_) => false,
        };
        if ours && let Ok(s) = &synth {
            let claims = claims_of(&ctx.client, &s.kind, 6).await;
            if !claims.is_empty() {
                let more = if claims.len() > 5 { ", ..." } else { "" };
                let list: Vec<_> = claims.iter().take(5).cloned().collect();
                let msg = format!(
                    "deletion held: claims of kind {} still exist ({}{more}); delete them first (their composed resources go by their own policies). The CRD {} is kept until then",
                    s.kind.kind,
                    list.join(", "),
                    s.kind.crd_name()
                );
                set_condition(
                    &mut status.conditions,
                    cond(OFFERED, true, "DeletionHeld", msg, generation),
                    &now,
                );
                write_status(&api, &name, &old, &status).await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
            ctx.served.send_modify(|m| {
                m.remove(&s.kind.crd_name());
            });
            crds.delete(&s.kind.crd_name(), &DeleteParams::default())
                .await
                .map_err(|e| Error::Kube("deleting the claim CRD".into(), e))?;
        }
        finalizer::set(&api, &name, xrd.meta(), FINALIZER, false)
            .await
            .map_err(|e| Error::Kube(format!("removing finalizer {FINALIZER}"), e))?;
        return Ok(Action::await_change());
    }

    if !finalizer::has(xrd.meta(), FINALIZER) {
        finalizer::set(&api, &name, xrd.meta(), FINALIZER, true)
            .await
            .map_err(|e| Error::Kube(format!("adding finalizer {FINALIZER}"), e))?;
    }

    let s = match synth {
        Ok(s) => s,
        Err(e) => {
            set_condition(
                &mut status.conditions,
                cond(ESTABLISHED, false, e.reason(), e.to_string(), generation),
                &now,
            );
            write_status(&api, &name, &old, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let crd_name = s.kind.crd_name();
    let existing = crds
        .get_opt(&crd_name)
        .await
        .map_err(|e| Error::Kube("reading the claim CRD".into(), e))?;
    if let Some(crd) = &existing
        && crd.labels().get(XRD_LABEL) != Some(&name)
    {
        let owner = crd
            .labels()
            .get(XRD_LABEL)
            .map(|o| format!("CompositeResourceDefinition {o:?} serves it"))
            .unwrap_or_else(|| "paved did not create it for this definition".into());
        let msg = format!(
            "CRD {crd_name} already exists and {owner}; paved does not take over a CRD. Choose another group or plural"
        );
        set_condition(
            &mut status.conditions,
            cond(
                ESTABLISHED,
                false,
                "ConflictingCRD",
                msg.clone(),
                generation,
            ),
            &now,
        );
        set_condition(
            &mut status.conditions,
            cond(OFFERED, false, "ConflictingCRD", msg, generation),
            &now,
        );
        write_status(&api, &name, &old, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    }

    // A schema change existing claims would fail: reported, the CRD is still updated (as the
    // API server does, existing objects are not rewritten; their next write would fail).
    if existing.is_some() {
        let invalid = invalid_claims(&ctx.client, &s).await;
        let c = if invalid.is_empty() {
            cond(CLAIMS_VALID, true, "ClaimsValid", "", generation)
        } else {
            let more = if invalid.len() > 5 { "; ..." } else { "" };
            let list: Vec<_> = invalid.iter().take(5).cloned().collect();
            cond(
                CLAIMS_VALID,
                false,
                "SchemaInvalidatesClaims",
                format!(
                    "{} existing claims are not valid under the current schema: {}{more}",
                    invalid.len(),
                    list.join("; ")
                ),
                generation,
            )
        };
        set_condition(&mut status.conditions, c, &now);
    }

    let applied = match crds
        .patch(
            &crd_name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&s.crd),
        )
        .await
    {
        Ok(c) => c,
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 400 => {
            set_condition(
                &mut status.conditions,
                cond(
                    ESTABLISHED,
                    false,
                    "InvalidSchema",
                    format!("the API server refused CRD {crd_name}: {}", e.message),
                    generation,
                ),
                &now,
            );
            write_status(&api, &name, &old, &status).await?;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(Error::Kube(format!("applying CRD {crd_name}"), e)),
    };
    let established = applied
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if !established {
        set_condition(
            &mut status.conditions,
            cond(
                ESTABLISHED,
                false,
                "Pending",
                format!("waiting for the API server to serve CRD {crd_name}"),
                generation,
            ),
            &now,
        );
        write_status(&api, &name, &old, &status).await?;
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let kind = Arc::new(ServedKind {
        crd_generation: applied.metadata.generation,
        ..s.kind.clone()
    });
    ctx.served.send_if_modified(|m| {
        if m.get(&crd_name) == Some(&kind) {
            return false;
        }
        m.insert(crd_name.clone(), Arc::clone(&kind));
        true
    });
    set_condition(
        &mut status.conditions,
        cond(
            ESTABLISHED,
            true,
            "WatchingCompositeResource",
            format!("CRD {crd_name} is served"),
            generation,
        ),
        &now,
    );
    set_condition(
        &mut status.conditions,
        cond(
            OFFERED,
            true,
            "OfferedClaims",
            format!(
                "paved composes {} {} with Compositions for {}",
                kind.api_version(),
                kind.kind,
                kind.type_ref()
            ),
            generation,
        ),
        &now,
    );
    status.controllers = Some(XrdControllers {
        composite_resource_type: Some(TypeRef {
            api_version: kind.api_version(),
            kind: kind.xr_kind.clone(),
        }),
        composite_resource_claim_type: Some(TypeRef {
            api_version: kind.api_version(),
            kind: kind.kind.clone(),
        }),
    });
    write_status(&api, &name, &old, &status).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// `ns/name` of up to `limit` claims of the kind (none when its CRD is not served).
async fn claims_of(client: &Client, kind: &ServedKind, limit: u32) -> Vec<String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
    match api.list(&ListParams::default().limit(limit)).await {
        Ok(l) => l
            .items
            .iter()
            .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()))
            .collect(),
        Err(_) => vec![],
    }
}

/// The existing claims of the kind that the synthesised schema would refuse, with why.
async fn invalid_claims(client: &Client, s: &super::Synthesized) -> Vec<String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &s.kind.api_resource());
    let Ok(list) = api.list(&ListParams::default().limit(500)).await else {
        return vec![];
    };
    let Some(schema) = s
        .crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
    else {
        return vec![];
    };
    let mut out = Vec::new();
    for c in list.items {
        let mut body = json!({"spec": c.data.get("spec").cloned().unwrap_or(json!({}))});
        let spec_schema =
            json!({"type": "object", "properties": {"spec": schema["properties"]["spec"].clone()}});
        let errors = super::validate::validate(&spec_schema, &mut body);
        if !errors.is_empty() {
            out.push(format!(
                "{}/{}: {}",
                c.namespace().unwrap_or_default(),
                c.name_any(),
                errors.join(", ")
            ));
        }
    }
    out
}

async fn write_status(
    api: &Api<CompositeResourceDefinition>,
    name: &str,
    old: &CompositeResourceDefinitionStatus,
    new: &CompositeResourceDefinitionStatus,
) -> Result<(), Error> {
    if old == new {
        return Ok(());
    }
    let body = json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "status": new,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::Kube("writing the definition's status".into(), e))?;
    Ok(())
}

/// Whether the condition of that type is True.
pub fn is_true(status: &CompositeResourceDefinitionStatus, type_: &str) -> bool {
    get_condition(&status.conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}
