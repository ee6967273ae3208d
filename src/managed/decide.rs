//! The decisions of the lifecycle, pure: from what the object says and what the external client
//! observed, what to do next. The lifecycle ([`super::lifecycle`]) carries them out (conditions,
//! Events, external calls); the table tests below cover every path.

use crate::api::managed::{DeletionPolicy, FINALIZER, Policies};
use crate::kube::finalizer;

use super::object::ManagedObject;
use super::outcome::Blocked;

/// Where a reconcile starts, from the object alone (no external call yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Paused: no external call. `release`: it is being deleted and deleting needs no external
    /// call (the resource stays, or was never created), so it is let go at once.
    Paused { deleting: bool, release: bool },
    /// Not deleting: observe, create, update.
    Apply,
    /// Deleting, but the finalizer is gone already: nothing to do.
    Done,
    /// Deleting, and the external resource must stay (the reason, for the release note).
    Orphan(&'static str),
    /// Deleting, and no external resource was ever named.
    NeverCreated,
    /// Deleting the external resource of this external-name.
    Delete(String),
}

/// Why deleting the object must leave the external resource alone, if it must.
pub fn orphan_reason(
    deletion_policy: Option<DeletionPolicy>,
    policies: &Result<Policies, String>,
) -> Option<&'static str> {
    match (policies, deletion_policy) {
        (_, Some(DeletionPolicy::Orphan)) => Some("deletionPolicy is Orphan"),
        (Ok(p), _) if !p.delete => Some("managementPolicies exclude Delete"),
        (Err(_), _) => Some("managementPolicies are invalid (deleting nothing to be safe)"),
        _ => None,
    }
}

/// The first decision of a reconcile. `observed`: the identifier of the external resource the
/// object last observed (its status), which a deletion deletes even when the external-name
/// annotation was edited or removed since.
pub fn start(obj: &impl ManagedObject, observed: Option<&str>) -> Start {
    let meta = obj.meta();
    let deleting = meta.deletion_timestamp.is_some();
    let policies = obj.policies();
    if crate::api::managed::is_paused(meta) {
        // Unlike a deletion that is not paused, invalid policies do not release a paused object.
        let orphan = obj.deletion_policy() == Some(DeletionPolicy::Orphan)
            || policies.as_ref().is_ok_and(|p| !p.delete);
        let never_created = observed.is_none()
            && !meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(crate::api::managed::EXTERNAL_NAME));
        return Start::Paused {
            deleting,
            release: deleting && (orphan || never_created),
        };
    }
    if !deleting {
        return Start::Apply;
    }
    if !finalizer::has(meta, FINALIZER) {
        return Start::Done;
    }
    if let Some(why) = orphan_reason(obj.deletion_policy(), &policies) {
        return Start::Orphan(why);
    }
    match observed.or(obj.external_name()) {
        Some(id) => Start::Delete(id.to_string()),
        None => Start::NeverCreated,
    }
}

/// How the external resource compares with the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    UpToDate,
    /// Fields that differ and can be changed (named for a note).
    Differs(Vec<String>),
    /// Fields that differ and cannot be changed (`field: why`), with all the fields that differ.
    Refused {
        refused: Vec<String>,
        fields: Vec<String>,
    },
}

/// Whose an existing external resource is, from its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged as this very object's (its UID).
    Ours,
    /// No paved owner tags at all.
    Untagged,
    /// Tagged as another object's. `earlier`: that object had this one's namespace and name
    /// (an earlier object, deleted and recreated), with this UID.
    Others { earlier: Option<String> },
    /// Tagged as an earlier object's with this namespace and name (UID `uid`) that the same
    /// claim composed for the same resource: an orphaned predecessor, re-adopted.
    Predecessor { uid: String },
}

/// What the apply path does once the external resource is observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// It does not exist and Create is allowed.
    Create,
    /// It does not exist and Create is excluded: `ExternalResourceMissing`.
    Missing,
    /// It exists and is not this object's: `ExternalResourceNotOwned`, nothing touched.
    NotOwned,
    /// It exists untagged, the policies would change it without Create, and the platform team
    /// has not allowed adoption for this object's ProviderConfig: `AdoptionNotAllowed`.
    AdoptionNotAllowed,
    /// It exists and paved may go on: it is this object's, or untagged and only observed, or
    /// untagged and adopted where the platform team allows it.
    Manage,
}

/// After observe: create, manage, or stop. `observed`: `None` when it does not exist.
/// Ownership is proven whatever the policies: another object's resource is never observed,
/// changed or deleted; an untagged one is observed, and changed only where adoption is allowed.
pub fn found(policies: &Policies, observed: Option<&Ownership>, adoption_allowed: bool) -> Found {
    match observed {
        None if policies.create => Found::Create,
        None => Found::Missing,
        Some(Ownership::Ours | Ownership::Predecessor { .. }) => Found::Manage,
        Some(Ownership::Others { .. }) => Found::NotOwned,
        Some(Ownership::Untagged) if policies.create => Found::NotOwned,
        Some(Ownership::Untagged) if !policies.update && !policies.delete => Found::Manage,
        Some(Ownership::Untagged) if adoption_allowed => Found::Manage,
        Some(Ownership::Untagged) => Found::AdoptionNotAllowed,
    }
}

/// What the update step does with the drift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Nothing differs.
    UpToDate,
    /// Update is excluded: only a note naming what differs (none when nothing does).
    ObserveOnly(Vec<String>),
    /// An immutable field differs: `ImmutableField`, nothing sent until the spec changes.
    Refused(Vec<String>),
    /// Send the change.
    Update,
}

pub fn update(policies: &Policies, drift: &Drift) -> Update {
    match drift {
        _ if !policies.update => Update::ObserveOnly(match drift {
            Drift::UpToDate => Vec::new(),
            Drift::Differs(f) | Drift::Refused { fields: f, .. } => f.clone(),
        }),
        Drift::UpToDate => Update::UpToDate,
        Drift::Refused { refused, .. } => Update::Refused(refused.clone()),
        Drift::Differs(_) => Update::Update,
    }
}

/// What the external client observed on the delete path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteFacts {
    pub exists: bool,
    pub owned: bool,
    /// The external system is deleting it already.
    pub being_deleted: bool,
    /// Deletion protection is on.
    pub protected: bool,
    /// The spec asks for deletion protection off.
    pub unprotect_wanted: bool,
    /// The external resource accepts changes now.
    pub modifiable: bool,
}

/// What the delete path does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delete {
    /// It is gone: release.
    Gone,
    /// It is not this object's: a Warning, and release without touching it.
    NotOwned,
    /// The external system is deleting it: wait.
    Wait,
    /// Turn deletion protection off first (the spec asks, Update allowed), then delete.
    Unprotect,
    /// Deletion protection is on and stays on: `DeletionProtection`, say how to delete it.
    Protected,
    /// Delete it.
    Delete,
}

pub fn delete(policies: &Result<Policies, String>, f: DeleteFacts) -> Delete {
    if !f.exists {
        return Delete::Gone;
    }
    if !f.owned {
        return Delete::NotOwned;
    }
    if f.being_deleted {
        return Delete::Wait;
    }
    if !f.protected {
        return Delete::Delete;
    }
    let may_update = policies.as_ref().is_ok_and(|p| p.update);
    if f.unprotect_wanted && may_update && f.modifiable {
        Delete::Unprotect
    } else {
        Delete::Protected
    }
}

/// The annotation that lets a composed object be deleted while its claim still wants it.
pub const ALLOW_DELETION: &str = "paved.io/allow-deletion";

/// The claim that composed an object, as its deletion sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composer {
    /// `<Kind> <namespace>/<name>`, for the message.
    pub name: String,
    /// The claim is being deleted itself.
    pub deleting: bool,
    /// The claim's status still lists the object among its composed resources.
    pub lists_it: bool,
}

/// Whether deleting a composed object must wait: its claim exists, is not being deleted and
/// still lists the object (the Composition still wants it), and nobody annotated the object
/// to allow the deletion. Deleting it anyway would delete the database and let the claim
/// create an empty one under the same name. A claim that is gone, being deleted, or no
/// longer lists the object (it pruned it) lets the deletion go on.
pub fn held_by_claim(composer: Option<&Composer>, allowed: bool, noun: &str) -> Option<Blocked> {
    let c = composer?;
    if allowed || c.deleting || !c.lists_it {
        return None;
    }
    Some(Blocked::new(
        "DeletionHeld",
        format!(
            "this {noun} is composed by claim {}, which still wants it: deleting it here would delete the database and the claim would create an empty one. Delete the claim, or annotate this object {ALLOW_DELETION}=true to delete it anyway",
            c.name
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_object_is_held_only_while_its_claim_wants_it() {
        let claim = |deleting, lists_it| Composer {
            name: "PostgreSQLInstance team-a/orders".into(),
            deleting,
            lists_it,
        };
        // (composer, allowed, held)
        let cases = [
            (None, false, false),
            (Some(claim(false, true)), false, true),
            (Some(claim(false, true)), true, false),
            (Some(claim(true, true)), false, false),
            (Some(claim(false, false)), false, false),
        ];
        for (i, (c, allowed, held)) in cases.into_iter().enumerate() {
            let b = held_by_claim(c.as_ref(), allowed, "RDS instance");
            assert_eq!(b.is_some(), held, "case {i}");
            if let Some(b) = b {
                assert_eq!(b.reason, "DeletionHeld");
                assert!(
                    b.message.contains("claim PostgreSQLInstance team-a/orders"),
                    "{}",
                    b.message
                );
                assert!(b.message.contains(ALLOW_DELETION), "{}", b.message);
            }
        }
    }
    use crate::api::instance::Instance;
    use crate::api::managed::{EXTERNAL_NAME, PAUSED};
    use serde_json::json;

    fn obj(annotations: serde_json::Value, spec: serde_json::Value, deleting: bool) -> Instance {
        let mut spec = spec;
        spec["forProvider"] = json!({"region": "eu-west-1"});
        let mut o: Instance = serde_json::from_value(json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {"name": "db", "namespace": "team", "uid": "u-1",
                         "annotations": annotations, "finalizers": [FINALIZER]},
            "spec": spec
        }))
        .unwrap();
        if deleting {
            o.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            );
        }
        o
    }

    #[test]
    fn start_table() {
        let named = json!({EXTERNAL_NAME: "db-1"});
        let paused = json!({EXTERNAL_NAME: "db-1", PAUSED: "true"});
        let observe = json!({"managementPolicies": ["Observe"]});
        let orphan = json!({"deletionPolicy": "Orphan"});
        let bad = json!({"managementPolicies": ["Create"]});
        let mut no_finalizer = obj(named.clone(), json!({}), true);
        no_finalizer.metadata.finalizers = None;
        // (object, expected start)
        let cases = [
            (obj(named.clone(), json!({}), false), Start::Apply),
            (
                obj(paused.clone(), json!({}), false),
                Start::Paused {
                    deleting: false,
                    release: false,
                },
            ),
            (
                obj(paused.clone(), json!({}), true),
                Start::Paused {
                    deleting: true,
                    release: false,
                },
            ),
            (
                obj(paused.clone(), orphan.clone(), true),
                Start::Paused {
                    deleting: true,
                    release: true,
                },
            ),
            (
                obj(json!({PAUSED: "true"}), json!({}), true),
                Start::Paused {
                    deleting: true,
                    release: true,
                },
            ),
            // invalid policies keep a paused object (nothing is decided while paused)
            (
                obj(paused, bad.clone(), true),
                Start::Paused {
                    deleting: true,
                    release: false,
                },
            ),
            (no_finalizer, Start::Done),
            (
                obj(named.clone(), orphan, true),
                Start::Orphan("deletionPolicy is Orphan"),
            ),
            (
                obj(named.clone(), observe, true),
                Start::Orphan("managementPolicies exclude Delete"),
            ),
            (
                obj(named.clone(), bad, true),
                Start::Orphan("managementPolicies are invalid (deleting nothing to be safe)"),
            ),
            (obj(json!({}), json!({}), true), Start::NeverCreated),
            (obj(named, json!({}), true), Start::Delete("db-1".into())),
        ];
        for (i, (o, want)) in cases.into_iter().enumerate() {
            assert_eq!(start(&o, None), want, "case {i}");
        }
        // The external-name was removed or edited after the instance was observed: the deletion
        // still deletes the observed instance (never orphans it as "never created").
        let removed = obj(json!({}), json!({}), true);
        assert_eq!(start(&removed, Some("db-0")), Start::Delete("db-0".into()));
        let edited = obj(json!({EXTERNAL_NAME: "db-9"}), json!({}), true);
        assert_eq!(start(&edited, Some("db-0")), Start::Delete("db-0".into()));
        let paused = obj(json!({PAUSED: "true"}), json!({}), true);
        assert_eq!(
            start(&paused, Some("db-0")),
            Start::Paused {
                deleting: true,
                release: false
            }
        );
    }

    const ALL: Policies = Policies {
        create: true,
        update: true,
        delete: true,
    };
    const OBSERVE: Policies = Policies {
        create: false,
        update: false,
        delete: false,
    };
    const TAKEOVER: Policies = Policies {
        create: false,
        update: true,
        delete: true,
    };

    #[test]
    fn found_table() {
        let ours = Ownership::Ours;
        let untagged = Ownership::Untagged;
        let others = Ownership::Others { earlier: None };
        let earlier = Ownership::Others {
            earlier: Some("uid-0".into()),
        };
        let predecessor = Ownership::Predecessor {
            uid: "uid-0".into(),
        };
        // (policies, observed (None = missing), adoption allowed, expected)
        let cases = [
            (ALL, None, false, Found::Create),
            (OBSERVE, None, false, Found::Missing),
            (TAKEOVER, None, true, Found::Missing),
            (ALL, Some(&ours), false, Found::Manage),
            (TAKEOVER, Some(&ours), false, Found::Manage),
            // another object's: never, whatever the policies (no take-over, no peeking)
            (ALL, Some(&others), true, Found::NotOwned),
            (OBSERVE, Some(&others), true, Found::NotOwned),
            (TAKEOVER, Some(&others), true, Found::NotOwned),
            (TAKEOVER, Some(&earlier), true, Found::NotOwned),
            // an orphaned predecessor composed by the same claim for the same resource
            (ALL, Some(&predecessor), false, Found::Manage),
            // untagged: observed; changed only where the platform team allows adoption
            (ALL, Some(&untagged), true, Found::NotOwned),
            (OBSERVE, Some(&untagged), false, Found::Manage),
            (TAKEOVER, Some(&untagged), false, Found::AdoptionNotAllowed),
            (TAKEOVER, Some(&untagged), true, Found::Manage),
        ];
        for (i, (p, observed, adopt, want)) in cases.into_iter().enumerate() {
            assert_eq!(found(&p, observed, adopt), want, "case {i}");
        }
    }

    #[test]
    fn update_table() {
        let differs = Drift::Differs(vec!["instanceClass".into()]);
        let refused = Drift::Refused {
            refused: vec!["engine: cannot change".into()],
            fields: vec!["engine".into(), "instanceClass".into()],
        };
        // (policies, drift, expected)
        let cases = [
            (ALL, Drift::UpToDate, Update::UpToDate),
            (ALL, differs.clone(), Update::Update),
            (
                ALL,
                refused.clone(),
                Update::Refused(vec!["engine: cannot change".into()]),
            ),
            (OBSERVE, Drift::UpToDate, Update::ObserveOnly(vec![])),
            (
                OBSERVE,
                differs,
                Update::ObserveOnly(vec!["instanceClass".into()]),
            ),
            (
                OBSERVE,
                refused,
                Update::ObserveOnly(vec!["engine".into(), "instanceClass".into()]),
            ),
        ];
        for (i, (p, d, want)) in cases.into_iter().enumerate() {
            assert_eq!(update(&p, &d), want, "case {i}");
        }
    }

    #[test]
    fn delete_table() {
        let f = DeleteFacts {
            exists: true,
            owned: true,
            being_deleted: false,
            protected: false,
            unprotect_wanted: false,
            modifiable: true,
        };
        let protected = DeleteFacts {
            protected: true,
            ..f
        };
        let unprotect = DeleteFacts {
            unprotect_wanted: true,
            ..protected
        };
        // (policies, facts, expected)
        let cases = [
            (Ok(ALL), f, Delete::Delete),
            (Ok(ALL), DeleteFacts { exists: false, ..f }, Delete::Gone),
            (Ok(ALL), DeleteFacts { owned: false, ..f }, Delete::NotOwned),
            (
                Ok(ALL),
                DeleteFacts {
                    being_deleted: true,
                    ..f
                },
                Delete::Wait,
            ),
            (Ok(ALL), protected, Delete::Protected),
            (Ok(ALL), unprotect, Delete::Unprotect),
            (
                Ok(ALL),
                DeleteFacts {
                    modifiable: false,
                    ..unprotect
                },
                Delete::Protected,
            ),
            (
                Ok(Policies {
                    update: false,
                    ..ALL
                }),
                unprotect,
                Delete::Protected,
            ),
            (Err("bad".to_string()), unprotect, Delete::Protected),
        ];
        for (i, (p, facts, want)) in cases.into_iter().enumerate() {
            assert_eq!(delete(&p, facts), want, "case {i}");
        }
    }
}
