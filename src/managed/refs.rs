//! References and selectors, resolved as Crossplane resolves them (pure; table-tested).
//!
//! - `...Ref: {name}` names one object of the referenced kind in the same namespace.
//! - `...Selector: {matchControllerRef, matchLabels}` picks the objects of that kind in the same
//!   namespace with the same controller as the selecting object (for composed objects: the same
//!   claim) and all the labels. A single-valued field takes the first match by name; a list field
//!   takes every match.
//! - A reference wins over a selector. With `policy.resolve: IfNotPresent` (the default) a plain
//!   field that is already set is kept; `Always` re-resolves it on every reconcile.
//! - Unlike Crossplane, which takes any non-empty value, the referenced object must also be
//!   Ready: a database is never created before its network exists. Until then the object waits
//!   with a message naming what it waits for. `policy.resolution: Optional` skips a reference that
//!   does not resolve instead.
//!
//! The lifecycle lists the candidates (from its cache of the referenced kind, same namespace),
//! calls [`resolve_one`] / [`resolve_many`], and writes the value into the plain field before any
//! AWS call.

use std::collections::BTreeMap;

use crate::api::reference::{Reference, Resolution, Resolve, Selector};

/// An object a reference may point at, as the resolver needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// UID of its controller owner reference (for composed objects: the claim).
    pub controller_uid: Option<String>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Its Ready condition is True.
    pub ready: bool,
    /// The value the reference takes from it (the external-name, or status.atProvider.id):
    /// `None` while it has none.
    pub value: Option<String>,
}

/// What a field refers to: for messages and for matching.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The plain field, for example `dbSubnetGroupName`.
    pub name: &'static str,
    /// The referenced kind, for example `SubnetGroup`.
    pub kind: &'static str,
    /// The controller UID of the selecting object.
    pub controller_uid: Option<&'a str>,
}

/// Why a reference does not resolve yet: the object waits (condition reason
/// [`Waiting::REASON`], this message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub message: String,
}

impl Waiting {
    /// The reason of the Synced condition while an object waits for a reference.
    pub const REASON: &'static str = "ReferenceNotReady";
}

fn waiting(message: String) -> Waiting {
    Waiting { message }
}

/// Why one named candidate cannot give a value yet (`None`: it can).
fn not_ready(field: &Field<'_>, how: &str, c: &Candidate) -> Option<String> {
    if c.deleting {
        return Some(format!(
            "{} {} ({how}) is being deleted",
            field.kind, c.name
        ));
    }
    if !c.ready || c.value.as_deref().is_none_or(str::is_empty) {
        return Some(format!(
            "waiting for {} {} ({how}) to be Ready",
            field.kind, c.name
        ));
    }
    None
}

fn selector_text(s: &Selector) -> String {
    let mut parts = Vec::new();
    if s.match_controller_ref == Some(true) {
        parts.push("matchControllerRef".to_string());
    }
    if let Some(l) = s.match_labels.as_ref().filter(|l| !l.is_empty()) {
        let kv: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("matchLabels {}", kv.join(",")));
    }
    if parts.is_empty() {
        "an empty selector".into()
    } else {
        parts.join(", ")
    }
}

/// The candidates a selector picks, sorted by name.
fn selected<'c>(
    field: &Field<'_>,
    s: &Selector,
    candidates: &'c [Candidate],
) -> Vec<&'c Candidate> {
    let mut v: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            s.match_controller_ref != Some(true)
                || (field.controller_uid.is_some()
                    && c.controller_uid.as_deref() == field.controller_uid)
        })
        .filter(|c| {
            s.match_labels
                .iter()
                .flatten()
                .all(|(k, v)| c.labels.get(k) == Some(v))
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Resolve a single-valued field (`dbSubnetGroupName`, `securityGroupId`, ...).
/// `Ok(Some(v))`: write `v` into the field. `Ok(None)`: nothing to resolve, keep the field.
pub fn resolve_one(
    field: &Field<'_>,
    current: Option<&str>,
    reference: Option<&Reference>,
    selector: Option<&Selector>,
    candidates: &[Candidate],
) -> Result<Option<String>, Waiting> {
    let present = current.is_some_and(|c| !c.is_empty());
    if let Some(r) = reference {
        if present && r.resolve() == Resolve::IfNotPresent {
            return Ok(None);
        }
        let how = format!("{}Ref", field.name);
        let Some(c) = candidates.iter().find(|c| c.name == r.name) else {
            return match r.resolution() {
                Resolution::Optional => Ok(None),
                Resolution::Required => Err(waiting(format!(
                    "waiting for {} {} ({how}): it does not exist in this namespace",
                    field.kind, r.name
                ))),
            };
        };
        return match (not_ready(field, &how, c), r.resolution()) {
            (None, _) => Ok(c.value.clone()),
            (Some(_), Resolution::Optional) => Ok(None),
            (Some(m), Resolution::Required) => Err(waiting(m)),
        };
    }
    let Some(s) = selector else {
        return Ok(None);
    };
    if present && s.resolve() == Resolve::IfNotPresent {
        return Ok(None);
    }
    let how = format!("{}Selector", field.name);
    let picked = selected(field, s, candidates);
    let Some(first) = picked.first() else {
        return match s.resolution() {
            Resolution::Optional => Ok(None),
            Resolution::Required => Err(waiting(format!(
                "waiting for a {} that matches {how} ({}): none in this namespace",
                field.kind,
                selector_text(s)
            ))),
        };
    };
    match (not_ready(field, &how, first), s.resolution()) {
        (None, _) => Ok(first.value.clone()),
        (Some(_), Resolution::Optional) => Ok(None),
        (Some(m), Resolution::Required) => Err(waiting(m)),
    }
}

/// Resolve a list field (`vpcSecurityGroupIds`, `subnetIds`) from its references (`...Refs`)
/// or its selector. `Ok(Some(v))`: write `v` (sorted as the references or names order them) into
/// the field. `Ok(None)`: keep the field.
pub fn resolve_many(
    field: &Field<'_>,
    current: &[String],
    references: &[Reference],
    selector: Option<&Selector>,
    candidates: &[Candidate],
) -> Result<Option<Vec<String>>, Waiting> {
    let present = !current.is_empty();
    if !references.is_empty() {
        let always = references.iter().any(|r| r.resolve() == Resolve::Always);
        if present && !always {
            return Ok(None);
        }
        let how = format!("{}Refs", field.name.trim_end_matches('s'));
        let mut values = Vec::new();
        for r in references {
            let Some(c) = candidates.iter().find(|c| c.name == r.name) else {
                if r.resolution() == Resolution::Required {
                    return Err(waiting(format!(
                        "waiting for {} {} ({how}): it does not exist in this namespace",
                        field.kind, r.name
                    )));
                }
                continue;
            };
            match (not_ready(field, &how, c), r.resolution()) {
                (None, _) => values.extend(c.value.clone()),
                (Some(_), Resolution::Optional) => {}
                (Some(m), Resolution::Required) => return Err(waiting(m)),
            }
        }
        return Ok(Some(values));
    }
    let Some(s) = selector else {
        return Ok(None);
    };
    if present && s.resolve() == Resolve::IfNotPresent {
        return Ok(None);
    }
    let how = format!("{}Selector", field.name.trim_end_matches('s'));
    let picked = selected(field, s, candidates);
    if picked.is_empty() {
        return match s.resolution() {
            Resolution::Optional => Ok(None),
            Resolution::Required => Err(waiting(format!(
                "waiting for a {} that matches {how} ({}): none in this namespace",
                field.kind,
                selector_text(s)
            ))),
        };
    }
    let mut values = Vec::new();
    for c in picked {
        match (not_ready(field, &how, c), s.resolution()) {
            (None, _) => values.extend(c.value.clone()),
            (Some(_), Resolution::Optional) => {}
            (Some(m), Resolution::Required) => return Err(waiting(m)),
        }
    }
    Ok(Some(values))
}

/// A reference of an object that is still to be resolved, as waking needs it: which kind it
/// names, and how (by name, or by selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The referenced kind, for example `SubnetGroup`.
    pub kind: &'static str,
    /// `...Ref(s).name`: the names it points at.
    pub names: Vec<&'a str>,
    /// `...Selector`.
    pub selector: Option<&'a Selector>,
}

/// An object others may reference, as a change to it is announced: its kind, namespace,
/// name, labels and controller (the fields a reference or selector matches on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub controller_uid: Option<String>,
}

/// Whether an object in `namespace` with controller `controller_uid` and the unresolved
/// references `wanted` refers to `target` (pure): same namespace and kind, and a reference
/// names it or a selector picks it (`matchControllerRef`: same controller; `matchLabels`: all
/// the labels). A reference wins over a selector, as in [`resolve_one`].
pub fn refers_to(
    namespace: &str,
    controller_uid: Option<&str>,
    wanted: &[Wanted<'_>],
    target: &Target,
) -> bool {
    if namespace != target.namespace {
        return false;
    }
    wanted.iter().filter(|w| w.kind == target.kind).any(|w| {
        if !w.names.is_empty() {
            return w.names.contains(&target.name.as_str());
        }
        w.selector.is_some_and(|s| {
            let field = Field {
                name: "",
                kind: target.kind,
                controller_uid,
            };
            let c = Candidate {
                name: target.name.clone(),
                labels: target.labels.clone(),
                controller_uid: target.controller_uid.clone(),
                ..Candidate::default()
            };
            !selected(&field, s, std::slice::from_ref(&c)).is_empty()
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::reference::ReferencePolicy;

    fn cand(name: &str, ctrl: Option<&str>, labels: &[(&str, &str)], ready: bool) -> Candidate {
        Candidate {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            controller_uid: ctrl.map(str::to_string),
            deleting: false,
            ready,
            value: ready.then(|| format!("ext-{name}")),
        }
    }

    fn r(name: &str) -> Reference {
        Reference {
            name: name.into(),
            ..Default::default()
        }
    }

    fn sel(ctrl: bool, labels: &[(&str, &str)]) -> Selector {
        Selector {
            match_controller_ref: Some(ctrl),
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            ..Default::default()
        }
    }

    fn policy(resolution: Option<Resolution>, resolve: Option<Resolve>) -> Option<ReferencePolicy> {
        Some(ReferencePolicy {
            resolution,
            resolve,
        })
    }

    const F: Field<'static> = Field {
        name: "dbSubnetGroupName",
        kind: "SubnetGroup",
        controller_uid: Some("claim-1"),
    };

    #[test]
    fn single_valued() {
        let pool = vec![
            cand("b-net", Some("claim-1"), &[("tier", "db")], true),
            cand("a-other", Some("claim-2"), &[("tier", "db")], true),
            cand("c-net", Some("claim-1"), &[], true),
            cand("pending", Some("claim-3"), &[], false),
        ];
        let optional = Reference {
            policy: policy(Some(Resolution::Optional), None),
            ..r("missing")
        };
        let always = Reference {
            policy: policy(None, Some(Resolve::Always)),
            ..r("b-net")
        };
        // (current, ref, selector, expected: Ok(value) or Err(substring of the message))
        type Case = (
            Option<&'static str>,
            Option<Reference>,
            Option<Selector>,
            Result<Option<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (None, None, None, Ok(None)),
            (Some("set"), None, None, Ok(None)),
            (None, Some(r("b-net")), None, Ok(Some("ext-b-net"))),
            (
                None,
                Some(r("missing")),
                None,
                Err("waiting for SubnetGroup missing (dbSubnetGroupNameRef): it does not exist"),
            ),
            (
                None,
                Some(r("pending")),
                None,
                Err("waiting for SubnetGroup pending (dbSubnetGroupNameRef) to be Ready"),
            ),
            (None, Some(optional), None, Ok(None)),
            // IfNotPresent keeps a set field; Always re-resolves
            (Some("set"), Some(r("b-net")), None, Ok(None)),
            (Some("set"), Some(always), None, Ok(Some("ext-b-net"))),
            // a reference wins over a selector
            (
                None,
                Some(r("c-net")),
                Some(sel(true, &[("tier", "db")])),
                Ok(Some("ext-c-net")),
            ),
            // same controller, first by name
            (None, None, Some(sel(true, &[])), Ok(Some("ext-b-net"))),
            // labels alone (any controller), first by name
            (
                None,
                None,
                Some(sel(false, &[("tier", "db")])),
                Ok(Some("ext-a-other")),
            ),
            (
                None,
                None,
                Some(sel(true, &[("tier", "db")])),
                Ok(Some("ext-b-net")),
            ),
            (
                None,
                None,
                Some(sel(true, &[("tier", "cache")])),
                Err(
                    "waiting for a SubnetGroup that matches dbSubnetGroupNameSelector (matchControllerRef, matchLabels tier=cache): none",
                ),
            ),
        ];
        for (i, (current, reference, selector, want)) in cases.into_iter().enumerate() {
            let got = resolve_one(&F, current, reference.as_ref(), selector.as_ref(), &pool);
            match want {
                Ok(v) => assert_eq!(got, Ok(v.map(str::to_string)), "case {i}"),
                Err(m) => {
                    let e = got.expect_err(&format!("case {i}"));
                    assert!(e.message.contains(m), "case {i}: {}", e.message);
                }
            }
        }
        // matchControllerRef with no controller of our own matches nothing
        let orphan = Field {
            controller_uid: None,
            ..F
        };
        assert!(resolve_one(&orphan, None, None, Some(&sel(true, &[])), &pool).is_err());
        // a selected object that is not Ready makes us wait
        let only_pending = [cand("p", Some("claim-1"), &[], false)];
        let e = resolve_one(&F, None, None, Some(&sel(true, &[])), &only_pending).unwrap_err();
        assert!(
            e.message
                .contains("SubnetGroup p (dbSubnetGroupNameSelector) to be Ready"),
            "{}",
            e.message
        );
        let mut deleting = cand("d", Some("claim-1"), &[], true);
        deleting.deleting = true;
        let e = resolve_one(&F, None, Some(&r("d")), None, &[deleting]).unwrap_err();
        assert!(e.message.contains("being deleted"), "{}", e.message);
    }

    #[test]
    fn list_valued() {
        let f = Field {
            name: "vpcSecurityGroupIds",
            kind: "SecurityGroup",
            controller_uid: Some("claim-1"),
        };
        let pool = vec![
            cand("sg-b", Some("claim-1"), &[("app", "x")], true),
            cand("sg-a", Some("claim-1"), &[], true),
            cand("sg-c", Some("claim-2"), &[("app", "x")], true),
            cand("sg-wait", Some("claim-9"), &[], false),
        ];
        let got = resolve_many(&f, &[], &[r("sg-b"), r("sg-c")], None, &pool);
        assert_eq!(got, Ok(Some(vec!["ext-sg-b".into(), "ext-sg-c".into()])));
        let got = resolve_many(&f, &[], &[], Some(&sel(true, &[])), &pool);
        assert_eq!(got, Ok(Some(vec!["ext-sg-a".into(), "ext-sg-b".into()])));
        let got = resolve_many(&f, &[], &[], Some(&sel(false, &[("app", "x")])), &pool);
        assert_eq!(got, Ok(Some(vec!["ext-sg-b".into(), "ext-sg-c".into()])));
        // set and IfNotPresent: kept
        let got = resolve_many(&f, &["sg-x".into()], &[r("sg-b")], None, &pool);
        assert_eq!(got, Ok(None));
        let e = resolve_many(&f, &[], &[r("sg-b"), r("sg-wait")], None, &pool).unwrap_err();
        assert!(
            e.message
                .contains("SecurityGroup sg-wait (vpcSecurityGroupIdRefs) to be Ready"),
            "{}",
            e.message
        );
        let e = resolve_many(&f, &[], &[], Some(&sel(true, &[("app", "y")])), &pool).unwrap_err();
        assert!(
            e.message.contains("vpcSecurityGroupIdSelector"),
            "{}",
            e.message
        );
        let optional = Reference {
            policy: policy(Some(Resolution::Optional), None),
            ..r("gone")
        };
        let got = resolve_many(&f, &[], &[r("sg-a"), optional], None, &pool);
        assert_eq!(got, Ok(Some(vec!["ext-sg-a".into()])));
    }

    #[test]
    fn who_refers_to_a_target() {
        let target = Target {
            kind: "SubnetGroup",
            namespace: "team".into(),
            name: "net".into(),
            labels: [("tier".to_string(), "db".to_string())].into(),
            controller_uid: Some("claim-1".into()),
        };
        let by_ctrl = sel(true, &[]);
        let by_label = sel(false, &[("tier", "db")]);
        let other_label = sel(false, &[("tier", "cache")]);
        let both = sel(true, &[("tier", "db")]);
        let w = |kind, names: Vec<&'static str>, selector| Wanted {
            kind,
            names,
            selector,
        };
        // (namespace, controller, wanted, refers)
        let cases: Vec<(&str, Option<&str>, Vec<Wanted<'_>>, bool)> = vec![
            ("team", None, vec![], false),
            (
                "team",
                None,
                vec![w("SubnetGroup", vec!["net"], None)],
                true,
            ),
            (
                "team",
                None,
                vec![w("SubnetGroup", vec!["a", "net"], None)],
                true,
            ),
            (
                "team",
                None,
                vec![w("SubnetGroup", vec!["other"], None)],
                false,
            ),
            // the same name in another namespace, or of another kind
            (
                "prod",
                None,
                vec![w("SubnetGroup", vec!["net"], None)],
                false,
            ),
            (
                "team",
                None,
                vec![w("ParameterGroup", vec!["net"], None)],
                false,
            ),
            (
                "team",
                Some("claim-1"),
                vec![w("SubnetGroup", vec![], Some(&by_ctrl))],
                true,
            ),
            (
                "team",
                Some("claim-2"),
                vec![w("SubnetGroup", vec![], Some(&by_ctrl))],
                false,
            ),
            // matchControllerRef without a controller of its own picks nothing
            (
                "team",
                None,
                vec![w("SubnetGroup", vec![], Some(&by_ctrl))],
                false,
            ),
            (
                "team",
                None,
                vec![w("SubnetGroup", vec![], Some(&by_label))],
                true,
            ),
            (
                "team",
                None,
                vec![w("SubnetGroup", vec![], Some(&other_label))],
                false,
            ),
            (
                "team",
                Some("claim-1"),
                vec![w("SubnetGroup", vec![], Some(&both))],
                true,
            ),
            (
                "team",
                Some("claim-2"),
                vec![w("SubnetGroup", vec![], Some(&both))],
                false,
            ),
            // a reference wins over the selector beside it
            (
                "team",
                Some("claim-1"),
                vec![w("SubnetGroup", vec!["other"], Some(&by_ctrl))],
                false,
            ),
            // one of several fields matching is enough
            (
                "team",
                Some("claim-1"),
                vec![
                    w("SecurityGroup", vec![], Some(&by_ctrl)),
                    w("SubnetGroup", vec![], Some(&by_ctrl)),
                ],
                true,
            ),
        ];
        for (i, (ns, ctrl, wanted, want)) in cases.into_iter().enumerate() {
            assert_eq!(refers_to(ns, ctrl, &wanted, &target), want, "case {i}");
        }
    }
}
