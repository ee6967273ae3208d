//! "Our last write until the cache catches up."
//!
//! A reconcile that follows paved's own write (woken by that write's watch event, or by a
//! Secret paved wrote) often starts before the reflector store has seen the write. Computed
//! from the stale object it would write the same thing again. The [`Overlay`] keeps what a
//! write returned, with the resourceVersions that write superseded; a reconcile asks it which
//! version to start from.
//!
//! # The resourceVersion rule
//!
//! resourceVersions are opaque (Kubernetes API conventions): they are compared **only for
//! equality**, never ordered. The overlay answers with our write only while the store shows a
//! version that one of our writes superseded (or shows nothing yet, when our write created the
//! object). Any other version in the store — the one our write returned, or one written by
//! anybody after it — makes the store the truth again, and the entry goes.
//!
//! Why equality is the right rule: a wrong "trust the store" costs at most one redundant,
//! idempotent write (the object is compared and written again); a wrong "trust ours" would
//! hide someone else's change. Ordering integers would bet on etcd's encoding and can only err
//! on the dangerous side.
//!
//! Entries the store never catches up with (the object was deleted meanwhile) are dropped after
//! the overlay's time to live.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an entry may wait for the store by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

struct Entry<V> {
    superseded: Vec<String>,
    value: Arc<V>,
    at: Instant,
}

/// Our last write per key (`K`: whatever names the object, `V`: what the write returned — the
/// object, or only the part a controller compares, such as a status).
pub struct Overlay<K, V> {
    m: Mutex<HashMap<K, Entry<V>>>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V> Default for Overlay<K, V> {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl<K: Eq + Hash + Clone, V> Overlay<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            m: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that a write turned the versions `superseded` into `value`, whose own version is
    /// `written` (what the API server returned). Versions superseded by earlier writes that the
    /// store has not caught up with stay superseded.
    pub fn wrote(&self, key: K, superseded: &[String], written: Option<&str>, value: V) {
        let mut m = self.lock();
        let ttl = self.ttl;
        m.retain(|_, e| e.at.elapsed() < ttl);
        let mut all = m.remove(&key).map(|e| e.superseded).unwrap_or_default();
        for s in superseded {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all.retain(|s| Some(s.as_str()) != written);
        m.insert(
            key,
            Entry {
                superseded: all,
                value: Arc::new(value),
                at: Instant::now(),
            },
        );
    }

    /// Our write, when the store has not caught up with it: `cached` is the resourceVersion of
    /// the store's object (`None`: the store does not have the object). `None` means "use the
    /// store"; an entry the store has caught up with (or overtaken) is forgotten.
    pub fn ours(&self, key: &K, cached: Option<&str>) -> Option<Arc<V>> {
        let mut m = self.lock();
        let e = m.get(key)?;
        let behind = match cached {
            None => e.at.elapsed() < self.ttl,
            Some(rv) => e.superseded.iter().any(|s| s == rv),
        };
        if behind {
            return Some(Arc::clone(&e.value));
        }
        m.remove(key);
        None
    }

    /// Our write, whatever the store holds (for a caller that compares itself).
    pub fn peek(&self, key: &K) -> Option<Arc<V>> {
        self.lock().get(key).map(|e| Arc::clone(&e.value))
    }

    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Forget every entry whose key matches (for example every object of a deleted claim).
    pub fn forget_where(&self, f: impl Fn(&K) -> bool) {
        self.lock().retain(|k, _| !f(k));
    }

    /// How many writes are waiting for the store (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_until_the_store_shows_anything_but_a_superseded_version() {
        // (store shows, ours expected)
        let cases = [
            (Some("10"), true),  // what our write replaced: the store lags
            (Some("11"), false), // what our write returned: caught up
            (Some("12"), false), // written by someone after us: theirs
            (Some("9"), false),  // never seen by us: the store is trusted (equality only)
            (None, true),        // created by us, not in the store yet
        ];
        for (store, expected) in cases {
            let o: Overlay<&str, &str> = Overlay::default();
            o.wrote("k", &v(&["10"]), Some("11"), "ours");
            assert_eq!(o.ours(&"k", store).is_some(), expected, "{store:?}");
            if !expected {
                assert!(o.is_empty(), "an entry the store caught up with goes");
            }
        }
    }

    #[test]
    fn superseded_versions_accumulate_over_writes_the_store_has_not_seen() {
        let o: Overlay<&str, u32> = Overlay::default();
        o.wrote("k", &v(&["10"]), Some("11"), 1);
        o.wrote("k", &v(&["11"]), Some("12"), 2);
        assert_eq!(o.ours(&"k", Some("10")).as_deref(), Some(&2));
        assert_eq!(o.ours(&"k", Some("11")).as_deref(), Some(&2));
        assert_eq!(o.ours(&"k", Some("12")), None);
        assert_eq!(o.peek(&"k"), None);
    }

    #[test]
    fn entries_expire() {
        let o: Overlay<&str, u32> = Overlay::new(Duration::ZERO);
        o.wrote("k", &v(&["1"]), Some("2"), 1);
        assert_eq!(
            o.ours(&"k", None),
            None,
            "never caught up: dropped after the ttl"
        );
        o.wrote("a", &[], None, 1);
        o.wrote("b", &[], None, 1);
        assert_eq!(o.len(), 1, "writes sweep expired entries");
        o.forget_where(|k| *k == "b");
        assert!(o.is_empty());
    }
}
