//! Step 7, publish the claim's connection Secret: once every composed resource is ready, and
//! kept current afterwards; only when its content differs; never over a Secret the claim does
//! not control. The decision is pure ([`decide`]); the write is one server-side apply.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::context::Context;
use super::error::{Error, KubeContext};
use super::names::FIELD_MANAGER;
use super::object::Claim;
use super::plan::controlled_by;
use super::prune;
use crate::api::PostgreSQLInstanceStatus;
use crate::api::common::{ObjectReference, SYNCED, get_condition};
use crate::compose::SecretRef;
use crate::kube::meta::{is_managed, managed_labels};

/// What to do with the claim's connection Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It holds the details already, or it is too early to publish.
    Keep,
    /// Write it.
    Write,
}

/// The connection details as Secret data.
fn secret_data(details: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, ByteString> {
    details
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect()
}

/// Whether to write the claim's Secret, given the Secret as it is (`live`), the data it should
/// hold and whether publishing is due (`due`: every composed resource is ready, or the Secret
/// was published before). Refuses a Secret the claim (`uid`) does not control, even when not
/// due: the user learns of the conflict before the database is ready.
pub(crate) fn decide(
    ns: &str,
    name: &str,
    live: Option<&Secret>,
    uid: &str,
    data: &BTreeMap<String, ByteString>,
    due: bool,
) -> Result<Decision, Error> {
    if let Some(live) = live {
        if !controlled_by(&live.metadata, uid) {
            return Err(Error::SecretNotOwned {
                namespace: ns.to_string(),
                name: name.to_string(),
            });
        }
        if is_managed(&live.metadata) && live.data.as_ref() == Some(data) {
            return Ok(Decision::Keep);
        }
    }
    Ok(if due { Decision::Write } else { Decision::Keep })
}

/// The server-side apply body of the claim's Secret.
pub(crate) fn body(
    ns: &str,
    name: &str,
    owner: &OwnerReference,
    data: &BTreeMap<String, ByteString>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": managed_labels([]),
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "data": data,
    })
}

/// Publish the claim's connection details: once every composed resource is `ready`, and kept
/// current afterwards (before that, an endpoint that takes no connections yet would only
/// mislead, and publishing early costs a status write and an Event per claim when the Secret's
/// watch overtakes the Instance's). When the claim's spec changed since it was last synced, a
/// Secret published under a name it no longer asks for is deleted first. Returns the number of
/// keys when written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connection_secret(
    ctx: &Context,
    claim: &Claim,
    old: &PostgreSQLInstanceStatus,
    owner: &OwnerReference,
    composed: &[ObjectReference],
    details: &BTreeMap<String, Vec<u8>>,
    ready: bool,
    composition_secret: Option<&str>,
) -> Result<Option<usize>, Error> {
    let ns = claim.namespace().unwrap_or_default();
    let spec_changed = get_condition(&old.conditions, SYNCED)
        .is_some_and(|s| s.observed_generation != claim.meta().generation);
    if spec_changed {
        // The Composition's own connection Secret is not stale.
        let mut keep = composed.to_vec();
        keep.extend(composition_secret.map(|name| ObjectReference {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: name.to_string(),
            namespace: Some(ns.clone()),
        }));
        prune::prune_secrets(ctx, claim, &ns, &owner.uid, &keep).await?;
    }
    let target = claim
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let due = ready || old.connection_details.is_some();
    let mut published = publish(ctx, &ns, target, owner, details, due).await?;
    if let Some(name) = composition_secret.filter(|n| Some(*n) != target) {
        published = publish(ctx, &ns, Some(name), owner, details, due)
            .await?
            .or(published);
    }
    Ok(published)
}

/// The Secret the Composition names for the claim's connection details (the input-level
/// `writeConnectionSecretToRef` of function-patch-and-transform), when it is in the claim's
/// namespace: paved never writes Secrets across namespaces. The second value is a warning
/// when it is not.
pub(crate) fn composition_secret<'a>(
    r: Option<&'a SecretRef>,
    ns: &str,
) -> (Option<&'a str>, Option<String>) {
    match r {
        None => (None, None),
        Some(r) if r.namespace == ns || r.namespace.is_empty() => (Some(r.name.as_str()), None),
        Some(r) => (
            None,
            Some(format!(
                "the Composition's writeConnectionSecretToRef names Secret {}/{}, outside the claim's namespace {ns}: paved writes connection Secrets only in the claim's namespace, so it is not written",
                r.namespace, r.name
            )),
        ),
    }
}

/// The connection details the claim's Secret may hold: with the XRD's `connectionSecretKeys`
/// set, only those keys, as in Crossplane; otherwise all of them.
pub(crate) fn allowed_keys<'a>(
    details: &'a BTreeMap<String, Vec<u8>>,
    keys: &[String],
) -> Cow<'a, BTreeMap<String, Vec<u8>>> {
    if keys.is_empty() {
        return Cow::Borrowed(details);
    }
    Cow::Owned(
        details
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Publish `details` to the Secret `target` names, when due. Returns the number of keys when
/// written.
async fn publish(
    ctx: &Context,
    ns: &str,
    target: Option<&str>,
    owner: &OwnerReference,
    details: &BTreeMap<String, Vec<u8>>,
    due: bool,
) -> Result<Option<usize>, Error> {
    let Some(name) = target else {
        return Ok(None);
    };
    if details.is_empty() {
        // Nothing to publish yet; never blank out credentials that were published before.
        return Ok(None);
    }
    // A cache miss may be a Secret paved does not own (no label): check with a GET, so it is
    // never overwritten.
    let live = ctx.live_secret(ns, name, true).await?;
    let data = secret_data(details);
    if decide(ns, name, live.as_ref(), &owner.uid, &data, due)? == Decision::Keep {
        return Ok(None);
    }
    ctx.metrics.write("secret");
    let written = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body(ns, name, owner, &data)),
        )
        .await
        .ctx(|| format!("writing connection Secret {ns}/{name}"))?;
    let superseded = live.and_then(|s| s.metadata.resource_version);
    ctx.note_secret_written(ns, superseded.as_deref(), &written);
    Ok(Some(details.len()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::kube::meta::{MANAGED_BY, MANAGED_BY_LABEL};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn connection_secret_keys_filter_the_details() {
        let details: BTreeMap<String, Vec<u8>> =
            [("username", "u"), ("password", "p"), ("endpoint", "e")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect();
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        for (allowed, want) in [
            (keys(&[]), vec!["endpoint", "password", "username"]),
            (
                keys(&["password", "endpoint"]),
                vec!["endpoint", "password"],
            ),
            (keys(&["port"]), vec![]),
        ] {
            let got = allowed_keys(&details, &allowed);
            let got: Vec<&str> = got.keys().map(String::as_str).collect();
            assert_eq!(got, want, "connectionSecretKeys {allowed:?}");
        }
        assert!(matches!(allowed_keys(&details, &[]), Cow::Borrowed(_)));
        assert_eq!(
            allowed_keys(&details, &keys(&["password"]))["password"],
            b"p"
        );
    }

    /// A Secret controlled by `uid`, labelled or not, holding `d`.
    fn secret(uid: &str, labelled: bool, d: BTreeMap<String, ByteString>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                labels: labelled.then(|| managed_labels([])),
                owner_references: Some(vec![OwnerReference {
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            data: Some(d),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let want = data(&[("password", "p"), ("host", "h")]);
        let old = data(&[("password", "old"), ("host", "h")]);
        let mine = |d: &BTreeMap<String, ByteString>| Some(secret("me", true, d.clone()));
        let unlabelled = Some(secret("me", false, want.clone()));
        let theirs = Some(secret("other", true, want.clone()));
        let conflict = Err("ConnectionSecretConflict");
        // (live, due, decision)
        let cases = [
            (None, false, Ok(Decision::Keep)),
            (None, true, Ok(Decision::Write)),
            (mine(&want), true, Ok(Decision::Keep)),
            (mine(&old), true, Ok(Decision::Write)),
            (mine(&old), false, Ok(Decision::Keep)),
            // paved's label missing: written again so that the cache of paved's Secrets has it.
            (unlabelled, true, Ok(Decision::Write)),
            (theirs.clone(), true, conflict),
            (theirs, false, conflict),
        ];
        for (i, (live, due, expected)) in cases.into_iter().enumerate() {
            let got =
                decide("ns", "db-conn", live.as_ref(), "me", &want, due).map_err(|e| e.reason());
            assert_eq!(got, expected, "case {i}");
        }
    }

    #[test]
    fn body_is_labelled_and_owned() {
        let owner = OwnerReference {
            api_version: "database.example.com/v1alpha1".into(),
            kind: "PostgreSQLInstance".into(),
            name: "db".into(),
            uid: "me".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let b = body("ns", "db-conn", &owner, &data(&[("k", "v")]));
        assert_eq!(b["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(b["metadata"]["ownerReferences"][0]["uid"], "me");
        assert_eq!(b["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(b["data"]["k"], "dg==");
        assert_eq!(b["type"], "Opaque");
    }

    #[test]
    fn the_compositions_connection_secret_only_in_the_claims_namespace() {
        let r = |ns: &str| SecretRef {
            name: "conn".into(),
            namespace: ns.into(),
        };
        assert_eq!(composition_secret(None, "ns"), (None, None));
        assert_eq!(
            composition_secret(Some(&r("ns")), "ns"),
            (Some("conn"), None)
        );
        let other = r("other");
        let (name, warning) = composition_secret(Some(&other), "ns");
        assert_eq!(name, None);
        assert!(warning.is_some_and(|w| w.contains("other/conn") && w.contains("ns")));
    }
}
