//! Composition revisions: every distinct spec a Composition has had, kept as a
//! [`CompositionRevision`](crate::api::CompositionRevision), as Crossplane v1 keeps them.
//!
//! Pure here (the hash, the names, what to write); the watch and the writes are the revisions
//! step of the Composition controller ([`crate::composition::revisions`]). The rules, Crossplane's:
//! - a revision is named `<composition>-<first 7 hex digits of its spec's SHA-256>` and
//!   labelled with the Composition's name and the hash (its first 63 digits: a label value's
//!   limit);
//! - a spec no revision has yet gets a new revision, numbered one more than the highest;
//! - a spec an older revision has (a change undone) makes that revision the newest again: its
//!   number is raised above the others, no new object is made;
//! - the newest revision's spec is always the Composition's: nothing to do.

use sha2::{Digest, Sha256};

use crate::api::CompositionSpec;

/// What is known of one existing revision of a Composition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub revision: i64,
    /// The `crossplane.io/composition-hash` label.
    pub hash: String,
}

/// What to write so that the newest revision holds the Composition's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The newest revision already holds it.
    Current,
    /// Create revision `name` with this number.
    Create { name: String, revision: i64 },
    /// Raise revision `name` (which holds the spec) to this number.
    Raise { name: String, revision: i64 },
}

/// The label value of a spec: the first 63 hex digits of the SHA-256 of its JSON.
pub fn spec_hash(spec: &CompositionSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    let mut hex = hex::encode(Sha256::digest(&json));
    hex.truncate(63);
    hex
}

/// The name of a Composition's revision with this hash.
pub fn revision_name(composition: &str, hash: &str) -> String {
    let short: String = hash.chars().take(7).collect();
    // An object name has at most 253 characters.
    let base: String = composition.chars().take(245).collect();
    format!("{base}-{short}")
}

/// What to write for a Composition whose spec hashes to `hash`, given its revisions.
pub fn step(composition: &str, hash: &str, known: &[Known]) -> Step {
    let newest = known.iter().map(|k| k.revision).max().unwrap_or(0);
    match known.iter().find(|k| k.hash == hash) {
        Some(k) if k.revision == newest => Step::Current,
        Some(k) => Step::Raise {
            name: k.name.clone(),
            revision: newest + 1,
        },
        None => Step::Create {
            name: revision_name(composition, hash),
            revision: newest + 1,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn known(name: &str, revision: i64, hash: &str) -> Known {
        Known {
            name: name.into(),
            revision,
            hash: hash.into(),
        }
    }

    #[test]
    fn the_first_spec_is_revision_one() {
        assert_eq!(
            step("pg", "abcdef0123", &[]),
            Step::Create {
                name: "pg-abcdef0".into(),
                revision: 1
            }
        );
    }

    #[test]
    fn a_changed_spec_is_the_next_revision_and_an_unchanged_one_nothing() {
        let one = [known("pg-aaaaaaa", 1, "aaaaaaaa")];
        assert_eq!(step("pg", "aaaaaaaa", &one), Step::Current);
        assert_eq!(
            step("pg", "bbbbbbbb", &one),
            Step::Create {
                name: "pg-bbbbbbb".into(),
                revision: 2
            }
        );
    }

    #[test]
    fn an_undone_change_raises_the_old_revision_instead_of_copying_it() {
        let two = [
            known("pg-aaaaaaa", 1, "aaaaaaaa"),
            known("pg-bbbbbbb", 2, "bbbbbbbb"),
        ];
        assert_eq!(
            step("pg", "aaaaaaaa", &two),
            Step::Raise {
                name: "pg-aaaaaaa".into(),
                revision: 3
            }
        );
        assert_eq!(step("pg", "bbbbbbbb", &two), Step::Current);
    }

    #[test]
    fn the_hash_follows_the_spec_and_fits_a_label() {
        let mut spec = CompositionSpec::default();
        let a = spec_hash(&spec);
        assert_eq!(a, spec_hash(&spec), "stable");
        assert_eq!(a.len(), 63);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        spec.composite_type_ref.kind = "PostgreSQLInstance".into();
        assert_ne!(a, spec_hash(&spec));
    }
}
