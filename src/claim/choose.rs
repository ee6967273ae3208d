//! Step 1, choose the Composition for a claim. Pure: the caller passes the Compositions of the
//! watch cache and the claim's own choice (its spec and its status as last written).
//!
//! Order: `spec.compositionRef.name`; else the Composition recorded in `status.compositionRef`
//! while it still exists and still matches the selector (so that adding a second Composition
//! never re-routes a claim that is already composed); else `spec.compositionSelector.matchLabels`;
//! else the one Composition whose `compositeTypeRef` is the claim type.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{Composition, PostgreSQLInstanceStatus};
use crate::xrd::ServedKind;

use super::object::Claim;

/// apiVersion of the claim type a Composition must serve.
pub const CLAIM_API_VERSION: &str = "database.example.com/v1alpha1";
/// kind of the claim type a Composition must serve.
pub const CLAIM_KIND: &str = "PostgreSQLInstance";

/// What selection needs to know about one Composition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.compositeTypeRef.apiVersion`.
    pub api_version: String,
    /// `spec.compositeTypeRef.kind`.
    pub kind: String,
}

impl Candidate {
    /// What selection needs of a Composition from the cache (`None` without a name).
    pub fn from_composition(c: &Composition) -> Option<Self> {
        let name = c.metadata.name.clone().filter(|n| !n.is_empty())?;
        Some(Self {
            name,
            labels: c.metadata.labels.clone().unwrap_or_default(),
            api_version: c.spec.composite_type_ref.api_version.clone(),
            kind: c.spec.composite_type_ref.kind.clone(),
        })
    }

    fn serves(&self, kind: &ServedKind) -> bool {
        kind.composed_by(&self.api_version, &self.kind)
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// What the claim says about its Composition.
#[derive(Clone, Debug, Default)]
pub struct ClaimChoice<'a> {
    /// `spec.compositionRef.name`.
    pub reference: Option<&'a str>,
    /// `spec.compositionSelector.matchLabels`.
    pub selector: Option<&'a BTreeMap<String, String>>,
    /// `status.compositionRef.name`: what paved chose before.
    pub recorded: Option<&'a str>,
    /// The claim's kind (`None`: the built-in PostgreSQLInstance).
    pub kind: Option<&'a ServedKind>,
}

/// Why no Composition could be chosen. `Display` is the condition message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "spec.compositionRef names Composition {name:?}, which does not exist; {}; set spec.compositionRef.name to an existing Composition",
        describe_candidates(ty, candidates)
    )]
    RefNotFound {
        ty: String,
        name: String,
        candidates: Vec<String>,
    },

    #[error(
        "Composition {name:?} (status.compositionRef), which this claim was composed with, no longer exists; its composed resources are kept as they are. Restore that Composition, or set spec.compositionRef.name to choose another ({})",
        describe_candidates(ty, candidates)
    )]
    RecordedGone {
        ty: String,
        name: String,
        candidates: Vec<String>,
    },

    #[error(
        "no Composition for {ty} matches spec.compositionSelector.matchLabels {}; {}; fix the labels or set spec.compositionRef.name",
        describe_labels(labels),
        describe_candidates(ty, candidates)
    )]
    NoneMatchSelector {
        ty: String,
        labels: BTreeMap<String, String>,
        candidates: Vec<String>,
    },

    #[error(
        "{} Compositions match spec.compositionSelector.matchLabels {}: {}; set spec.compositionRef.name to one of them or make the selector more specific",
        matches.len(),
        describe_labels(labels),
        quoted(matches)
    )]
    SeveralMatchSelector {
        labels: BTreeMap<String, String>,
        matches: Vec<String>,
    },

    #[error(
        "no Composition for {ty} exists; ask your platform team to install one (spec.compositeTypeRef {ty}), or set spec.compositionRef.name"
    )]
    NoneForType { ty: String },

    #[error(
        "{} Compositions serve {ty}: {}; set spec.compositionRef.name to one of them, or spec.compositionSelector.matchLabels",
        matches.len(),
        quoted(matches)
    )]
    SeveralForType { ty: String, matches: Vec<String> },

    #[error(
        "Composition {name:?} is for {api_version} {kind}, not {ty}; point spec.compositionRef at a Composition whose compositeTypeRef is {ty}"
    )]
    WrongType {
        ty: String,
        name: String,
        api_version: String,
        kind: String,
    },
}

impl SelectError {
    /// A bounded CamelCase category, for events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RefNotFound { .. }
            | Self::NoneMatchSelector { .. }
            | Self::NoneForType { .. } => "CompositionNotFound",
            Self::RecordedGone { .. } => "CompositionDeleted",
            Self::SeveralMatchSelector { .. } | Self::SeveralForType { .. } => {
                "CompositionAmbiguous"
            }
            Self::WrongType { .. } => "CompositionInvalid",
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_candidates(ty: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("there is no Composition for {ty} at all")
    } else {
        format!("Compositions for {ty}: {}", quoted(names))
    }
}

fn describe_labels(labels: &BTreeMap<String, String>) -> String {
    let inner = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{{{inner}}}")
}

/// Choose the Composition for a claim. Returns the chosen candidate; refuses one that serves
/// another type (Pipeline mode is the engine's to judge: it refuses Functions it does not run).
pub fn select<'c>(
    choice: &ClaimChoice<'_>,
    all: &'c [Candidate],
) -> Result<&'c Candidate, SelectError> {
    let builtin;
    let kind = match choice.kind {
        Some(k) => k,
        None => {
            builtin = ServedKind::builtin();
            &builtin
        }
    };
    let ty = kind.type_ref();
    let mut for_type: Vec<&Candidate> = all.iter().filter(|c| c.serves(kind)).collect();
    for_type.sort_by(|a, b| a.name.cmp(&b.name));
    let names = |cs: &[&Candidate]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();

    let chosen = if let Some(name) = choice.reference {
        all.iter()
            .find(|c| c.name == name)
            .ok_or_else(|| SelectError::RefNotFound {
                ty: ty.clone(),
                name: name.to_string(),
                candidates: names(&for_type),
            })?
    } else if let Some(recorded) = choice.recorded.and_then(|r| {
        let found = all.iter().find(|c| c.name == r);
        match (found, choice.selector) {
            // The Composition this claim was composed with is gone: report it, keep resources.
            (None, _) => Some(Err(r)),
            // Sticky while it still matches what the claim asks for.
            (Some(c), Some(sel)) if !c.matches(sel) => None,
            (Some(c), _) => Some(Ok(c)),
        }
    }) {
        recorded.map_err(|r| SelectError::RecordedGone {
            ty: ty.clone(),
            name: r.to_string(),
            candidates: names(&for_type),
        })?
    } else if let Some(sel) = choice.selector {
        let matches: Vec<&Candidate> = for_type
            .iter()
            .copied()
            .filter(|c| c.matches(sel))
            .collect();
        match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(SelectError::NoneMatchSelector {
                    ty,
                    labels: sel.clone(),
                    candidates: for_type.iter().map(|c| describe_candidate(c)).collect(),
                });
            }
            several => {
                return Err(SelectError::SeveralMatchSelector {
                    labels: sel.clone(),
                    matches: names(several),
                });
            }
        }
    } else {
        match for_type.as_slice() {
            [one] => *one,
            [] => return Err(SelectError::NoneForType { ty }),
            several => {
                return Err(SelectError::SeveralForType {
                    ty,
                    matches: names(several),
                });
            }
        }
    };

    if !chosen.serves(kind) {
        return Err(SelectError::WrongType {
            ty,
            name: chosen.name.clone(),
            api_version: chosen.api_version.clone(),
            kind: chosen.kind.clone(),
        });
    }
    Ok(chosen)
}

/// What the claim says about its Composition: its spec, and `status` as paved last wrote it.
pub(crate) fn claim_choice<'a>(
    claim: &'a Claim,
    status: &'a PostgreSQLInstanceStatus,
) -> ClaimChoice<'a> {
    ClaimChoice {
        reference: claim.spec.composition_ref.as_ref().map(|r| r.name.as_str()),
        selector: claim
            .spec
            .composition_selector
            .as_ref()
            .map(|s| &s.match_labels),
        recorded: status.composition_ref.as_ref().map(|r| r.name.as_str()),
        kind: Some(&claim.kind),
    }
}

/// Choose among the cached Compositions: the one [`select`] picks, typed as it is cached.
pub fn choose(
    choice: &ClaimChoice<'_>,
    all: &[Arc<Composition>],
) -> Result<Arc<Composition>, SelectError> {
    let candidates: Vec<Candidate> = all
        .iter()
        .filter_map(|c| Candidate::from_composition(c))
        .collect();
    let chosen = select(choice, &candidates)?;
    all.iter()
        .find(|c| c.metadata.name.as_deref() == Some(chosen.name.as_str()))
        .cloned()
        .ok_or_else(|| SelectError::RefNotFound {
            ty: String::new(),
            name: chosen.name.clone(),
            candidates: vec![],
        })
}

fn describe_candidate(c: &Candidate) -> String {
    if c.labels.is_empty() {
        format!("{} (no labels)", c.name)
    } else {
        format!("{} (labels {})", c.name, describe_labels(&c.labels))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cand(name: &str, labels: &[(&str, &str)]) -> Candidate {
        Candidate {
            name: name.into(),
            labels: sel(labels),
            api_version: CLAIM_API_VERSION.into(),
            kind: CLAIM_KIND.into(),
        }
    }

    fn other(name: &str) -> Candidate {
        Candidate {
            api_version: "x.example.com/v1".into(),
            kind: "Bucket".into(),
            ..cand(name, &[])
        }
    }

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn by_reference(name: &str) -> ClaimChoice<'_> {
        ClaimChoice {
            reference: Some(name),
            ..Default::default()
        }
    }

    fn by_selector(s: &BTreeMap<String, String>) -> ClaimChoice<'_> {
        ClaimChoice {
            selector: Some(s),
            ..Default::default()
        }
    }

    #[test]
    fn the_one_for_the_type_is_chosen() {
        let all = vec![cand("postgresql-aws", &[]), other("bucket")];
        let c = select(&ClaimChoice::default(), &all).map(|c| c.name.clone());
        assert_eq!(c, Ok("postgresql-aws".to_string()));
    }

    #[test]
    fn none_and_several_name_candidates_and_what_to_set() {
        let none = select(&ClaimChoice::default(), &[other("bucket")]).map(|c| c.name.clone());
        let e = none.err().map(|e| (e.reason(), e.to_string()));
        assert_eq!(
            e,
            Some((
                "CompositionNotFound",
                "no Composition for database.example.com/v1alpha1 PostgreSQLInstance exists; ask your platform team to install one (spec.compositeTypeRef database.example.com/v1alpha1 PostgreSQLInstance), or set spec.compositionRef.name".to_string()
            ))
        );
        let all = vec![cand("b", &[]), cand("a", &[])];
        let e = select(&ClaimChoice::default(), &all)
            .err()
            .map(|e| (e.reason(), e.to_string()));
        assert_eq!(
            e,
            Some((
                "CompositionAmbiguous",
                r#"2 Compositions serve database.example.com/v1alpha1 PostgreSQLInstance: "a", "b"; set spec.compositionRef.name to one of them, or spec.compositionSelector.matchLabels"#.to_string()
            ))
        );
    }

    #[test]
    fn reference_wins_and_missing_reference_names_candidates() {
        let all = vec![cand("a", &[]), cand("b", &[])];
        let choice = by_reference("b");
        assert_eq!(select(&choice, &all).map(|c| c.name.as_str()), Ok("b"));
        let choice = by_reference("zz");
        let msg = select(&choice, &all)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains(r#""zz", which does not exist"#), "{msg}");
        assert!(msg.contains(r#""a", "b""#), "{msg}");
    }

    #[test]
    fn selector_matches_exactly_one() {
        let all = vec![
            cand("aws", &[("provider", "aws")]),
            cand("gcp", &[("provider", "gcp")]),
        ];
        let s = sel(&[("provider", "gcp")]);
        let choice = by_selector(&s);
        assert_eq!(select(&choice, &all).map(|c| c.name.as_str()), Ok("gcp"));
        let s = sel(&[("provider", "azure")]);
        let choice = by_selector(&s);
        let e = select(&choice, &all).err();
        assert_eq!(e.as_ref().map(|e| e.reason()), Some("CompositionNotFound"));
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("{provider=azure}") && msg.contains("aws (labels {provider=aws})"),
            "{msg}"
        );
        let both = vec![cand("x", &[("tier", "a")]), cand("y", &[("tier", "a")])];
        let s = sel(&[("tier", "a")]);
        let choice = by_selector(&s);
        assert_eq!(
            select(&choice, &both).err().map(|e| e.reason()),
            Some("CompositionAmbiguous")
        );
    }

    #[test]
    fn recorded_choice_is_sticky_and_its_loss_is_reported() {
        // A second Composition for the type appears: the claim keeps its recorded one.
        let all = vec![cand("a", &[]), cand("b", &[])];
        let choice = ClaimChoice {
            recorded: Some("a"),
            ..Default::default()
        };
        assert_eq!(select(&choice, &all).map(|c| c.name.as_str()), Ok("a"));
        // The recorded one is deleted: reported, never silently replaced.
        let all = vec![cand("b", &[])];
        let e = select(&choice, &all).err();
        assert_eq!(e.as_ref().map(|e| e.reason()), Some("CompositionDeleted"));
        assert!(
            e.map(|e| e.to_string())
                .unwrap_or_default()
                .contains("composed resources are kept")
        );
        // The selector changed so that the recorded one no longer matches: select again.
        let all = vec![cand("a", &[("p", "1")]), cand("b", &[("p", "2")])];
        let s = sel(&[("p", "2")]);
        let choice = ClaimChoice {
            recorded: Some("a"),
            selector: Some(&s),
            ..Default::default()
        };
        assert_eq!(select(&choice, &all).map(|c| c.name.as_str()), Ok("b"));
    }

    #[test]
    fn wrong_type_is_refused_and_pipeline_mode_is_chosen() {
        let all = vec![other("bucket"), cand("fn", &[])];
        let choice = by_reference("bucket");
        assert_eq!(
            select(&choice, &all).err().map(|e| e.reason()),
            Some("CompositionInvalid")
        );
        // Pipeline mode is the engine's to judge: selection chooses it like any other.
        assert_eq!(
            select(&ClaimChoice::default(), &all).map(|c| c.name.as_str()),
            Ok("fn")
        );
    }

    fn composition(v: serde_json::Value) -> Composition {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("composition: {e}"))
    }

    #[test]
    fn candidate_from_the_typed_composition() {
        let c = composition(
            serde_json::json!({"apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition", "metadata": {"name": "c", "labels": {"a": "b"}},
            "spec": {"compositeTypeRef": {"apiVersion": CLAIM_API_VERSION, "kind": CLAIM_KIND}, "mode": "Pipeline"}}),
        );
        assert_eq!(
            Candidate::from_composition(&c),
            Some(cand("c", &[("a", "b")]))
        );
        let unnamed = composition(
            serde_json::json!({"apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition", "metadata": {},
            "spec": {"compositeTypeRef": {"apiVersion": CLAIM_API_VERSION, "kind": CLAIM_KIND}}}),
        );
        assert_eq!(Candidate::from_composition(&unnamed), None);
    }

    #[test]
    fn choose_returns_the_cached_composition_and_reads_the_recorded_choice() {
        let comp = |name: &str| {
            Arc::new(composition(
                serde_json::json!({"apiVersion": "apiextensions.crossplane.io/v1",
                "kind": "Composition", "metadata": {"name": name},
                "spec": {"compositeTypeRef": {"apiVersion": CLAIM_API_VERSION, "kind": CLAIM_KIND}}}),
            ))
        };
        let all = vec![comp("a"), comp("b")];
        let claim = Claim::new(
            Arc::new(
                serde_json::from_value(serde_json::json!({
                "apiVersion": CLAIM_API_VERSION, "kind": CLAIM_KIND,
                "metadata": {"name": "db", "namespace": "ns"},
                "spec": {"parameters": {"storageGB": 20, "version": "16"}}}))
                .unwrap_or_else(|e| panic!("claim: {e}")),
            ),
            Arc::new(ServedKind::builtin()),
        );
        let status: PostgreSQLInstanceStatus =
            serde_json::from_value(serde_json::json!({"compositionRef": {"name": "b"}}))
                .unwrap_or_else(|e| panic!("status: {e}"));
        let chosen = choose(&claim_choice(&claim, &status), &all);
        assert_eq!(
            chosen.map(|c| c.metadata.name.clone()),
            Ok(Some("b".to_string()))
        );
        let fresh = PostgreSQLInstanceStatus::default();
        assert_eq!(
            choose(&claim_choice(&claim, &fresh), &all).map(|_| ()),
            Err(SelectError::SeveralForType {
                ty: "database.example.com/v1alpha1 PostgreSQLInstance".into(),
                matches: vec!["a".into(), "b".into()]
            })
        );
    }
}
