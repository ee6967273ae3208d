//! Step 6, prune: delete the composed objects the Composition no longer lists, and the
//! connection Secrets the claim no longer names. The decisions are pure ([`stale`],
//! [`stale_secrets`], [`verdict`]); the deletes are guarded by the object's uid.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::kinds::Kinds;
use super::live::dyn_api;
use super::object::Claim;
use super::plan::controlled_by;
use crate::api::common::ObjectReference;

/// What a delete of a composed object came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeleteOutcome {
    /// Not there (or not ours, or its kind is no longer served).
    Gone,
    /// Deleted now.
    Deleted,
    /// Deletion requested; finalizers still hold it.
    Pending,
}

/// What to do with an object on the way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing: not there, or not controlled by the claim (left alone).
    Leave,
    /// Already being deleted.
    Pending,
    /// Send the delete.
    Delete,
}

/// The objects composed before (`previous`, the claim's `status.resourceRefs`) that are no
/// longer composed.
pub(crate) fn stale<'a>(
    previous: &'a [ObjectReference],
    current: &[ObjectReference],
) -> Vec<&'a ObjectReference> {
    previous.iter().filter(|o| !current.contains(o)).collect()
}

/// Of the Secrets the claim controls (`owned`), those to delete: every one but the one its spec
/// names now (`target`) and those its Composition composes (`composed`).
pub(crate) fn stale_secrets<'a>(
    owned: &'a [String],
    target: Option<&str>,
    composed: &[ObjectReference],
) -> Vec<&'a String> {
    owned
        .iter()
        .filter(|name| {
            let is_composed = composed
                .iter()
                .any(|r| r.api_version == "v1" && r.kind == "Secret" && &r.name == *name);
            Some(name.as_str()) != target && !is_composed
        })
        .collect()
}

/// Whether to delete an object as it is now, for the claim with this uid.
pub(crate) fn verdict(live: Option<&ObjectMeta>, uid: &str) -> Verdict {
    match live {
        None => Verdict::Leave,
        Some(m) if !controlled_by(m, uid) => Verdict::Leave,
        Some(m) if m.deletion_timestamp.is_some() => Verdict::Pending,
        Some(_) => Verdict::Delete,
    }
}

/// Delete one composed object, if it is the claim's.
pub(crate) async fn delete_composed(
    ctx: &Context,
    kinds: &mut Kinds<'_>,
    ns: &str,
    uid: &str,
    r: &ObjectReference,
) -> Result<DeleteOutcome, Error> {
    let ar = match kinds.resolve(&r.name, &r.api_version, &r.kind).await {
        Ok(found) => found,
        Err(Error::KindNotServed { .. } | Error::ClusterScoped { .. }) => {
            return Ok(DeleteOutcome::Gone);
        }
        Err(e) => return Err(e),
    };
    let api = dyn_api(ctx, &ar, ns);
    let live = api
        .get_opt(&r.name)
        .await
        .ctx(|| format!("reading {} {ns}/{}", r.kind, r.name))?;
    match verdict(live.as_ref().map(|l| l.meta()), uid) {
        Verdict::Leave => {
            if live.is_some() {
                tracing::info!(kind = %r.kind, object = %format!("{ns}/{}", r.name), "not controlled by this claim; leaving it alone");
            }
            return Ok(DeleteOutcome::Gone);
        }
        Verdict::Pending => return Ok(DeleteOutcome::Pending),
        Verdict::Delete => {}
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: live.and_then(|l| l.uid()),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    ctx.metrics.write("delete");
    match api.delete(&r.name, &dp).await {
        Ok(either) => Ok(if either.is_left() {
            DeleteOutcome::Pending
        } else {
            DeleteOutcome::Deleted
        }),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(DeleteOutcome::Gone),
        Err(e) => Err(e).ctx(|| format!("deleting {} {ns}/{}", r.kind, r.name)),
    }
}

/// Delete what was composed before and is no longer; returns what was deleted, described.
pub(crate) async fn prune(
    ctx: &Context,
    kinds: &mut Kinds<'_>,
    ns: &str,
    uid: &str,
    previous: &[ObjectReference],
    current: &[ObjectReference],
) -> Result<Vec<String>, Error> {
    let mut deleted = Vec::new();
    for old in stale(previous, current) {
        match delete_composed(ctx, kinds, ns, uid, old).await? {
            DeleteOutcome::Gone => {}
            DeleteOutcome::Deleted | DeleteOutcome::Pending => {
                deleted.push(format!("{} {}/{}", old.kind, ns, old.name));
            }
        }
    }
    Ok(deleted)
}

/// Delete the connection Secrets this claim controls other than the one its spec names now
/// (and other than Secrets its Composition composes, listed in `composed`).
pub(crate) async fn prune_secrets(
    ctx: &Context,
    claim: &Claim,
    ns: &str,
    uid: &str,
    composed: &[ObjectReference],
) -> Result<(), Error> {
    let Some(owned) = ctx.watches.cached_secrets_controlled_by(ns, uid).await else {
        return Ok(());
    };
    let names: Vec<String> = owned.iter().map(|s| s.name_any()).collect();
    let target = claim
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    for name in stale_secrets(&names, target, composed) {
        let uid = owned
            .iter()
            .find(|s| &s.name_any() == name)
            .and_then(|s| s.uid());
        ctx.metrics.write("secret_delete");
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {
                let note = format!(
                    "Deleted Secret {name:?}: spec.writeConnectionSecretToRef no longer names it"
                );
                ctx.event(claim, EventType::Normal, "ConnectionSecretDeleted", note)
                    .await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e).ctx(|| format!("deleting Secret {ns}/{name}")),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

    fn r(kind: &str, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: if kind == "Secret" { "v1" } else { "x.io/v1" }.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: Some("ns".into()),
        }
    }

    #[test]
    fn only_what_is_no_longer_composed_is_stale() {
        // (previous, current, stale)
        let cases = [
            (vec![], vec![r("A", "a")], vec![]),
            (vec![r("A", "a")], vec![r("A", "a")], vec![]),
            (
                vec![r("A", "a"), r("B", "b")],
                vec![r("A", "a")],
                vec![r("B", "b")],
            ),
            // Same name, another kind: a different object.
            (vec![r("A", "a")], vec![r("B", "a")], vec![r("A", "a")]),
            (vec![r("A", "a")], vec![], vec![r("A", "a")]),
        ];
        for (i, (previous, current, want)) in cases.into_iter().enumerate() {
            let got: Vec<ObjectReference> =
                stale(&previous, &current).into_iter().cloned().collect();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn stale_secrets_spare_the_named_and_the_composed() {
        let owned = vec!["old".to_string(), "new".to_string(), "composed".to_string()];
        // (target, composed, stale)
        let cases: [(Option<&str>, Vec<ObjectReference>, Vec<&str>); 4] = [
            (Some("new"), vec![r("Secret", "composed")], vec!["old"]),
            (None, vec![r("Secret", "composed")], vec!["old", "new"]),
            (Some("new"), vec![], vec!["old", "composed"]),
            // A composed object of another kind with the Secret's name does not protect it.
            (
                Some("new"),
                vec![r("ConfigMap", "composed")],
                vec!["old", "composed"],
            ),
        ];
        for (i, (target, composed, want)) in cases.into_iter().enumerate() {
            let got: Vec<&str> = stale_secrets(&owned, target, &composed)
                .into_iter()
                .map(String::as_str)
                .collect();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn only_objects_the_claim_controls_are_deleted() {
        let meta = |controller_uid: Option<&str>, deleting: bool| ObjectMeta {
            owner_references: controller_uid.map(|u| {
                vec![OwnerReference {
                    uid: u.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            deletion_timestamp: deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        };
        let cases = [
            (None, Verdict::Leave),
            (Some(meta(None, false)), Verdict::Leave),
            (Some(meta(Some("other"), false)), Verdict::Leave),
            (Some(meta(Some("me"), true)), Verdict::Pending),
            (Some(meta(Some("me"), false)), Verdict::Delete),
        ];
        for (i, (live, want)) in cases.into_iter().enumerate() {
            assert_eq!(verdict(live.as_ref(), "me"), want, "case {i}");
        }
    }
}
