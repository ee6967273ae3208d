//! Per-object backoff with jitter, and the jitter of periodic polls.
//!
//! One curve for every retry in paved (AWS calls within a request, failed reconciles of claims
//! and managed objects): exponential from `base`, capped at `max`, with "equal jitter" — a
//! wait is drawn from `[cap/2, cap]`, so that objects failing together do not retry together
//! and no wait is shorter than half its step.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;

/// The wait before retry number `attempt` (1-based): `base * 2^(attempt-1)` capped at `max`,
/// then drawn from its upper half.
pub fn exponential(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(max);
    let half = capped / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
}

/// A poll interval stretched by up to 10%, so that objects created together do not poll
/// together forever.
pub fn spread(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis() / 10).unwrap_or(0);
    d + Duration::from_millis(rand::rng().random_range(0..=ms))
}

/// How fast one kind of failure backs off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Curve {
    pub base: Duration,
    pub max: Duration,
}

#[derive(Debug)]
struct State {
    generation: Option<i64>,
    attempts: u32,
    not_before: Instant,
}

/// Backoff per object (`K` names it). A new generation (a spec change) starts over at once; a
/// success forgets the object.
#[derive(Debug)]
pub struct Backoffs<K> {
    m: Mutex<HashMap<K, State>>,
}

impl<K: Eq + Hash + Clone> Default for Backoffs<K> {
    fn default() -> Self {
        Self {
            m: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Backoffs<K> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, State>> {
        self.m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long this object must still wait, if at all (the reconcile that follows paved's own
    /// status write must not call out again before the backoff is over). A new `generation`
    /// clears the wait.
    pub fn gate(&self, key: &K, generation: Option<i64>) -> Option<Duration> {
        let mut m = self.lock();
        let s = m.get(key)?;
        if s.generation != generation {
            m.remove(key);
            return None;
        }
        let now = Instant::now();
        (s.not_before > now).then(|| s.not_before - now)
    }

    /// Record a failure; returns the wait before the next attempt.
    pub fn fail(&self, key: &K, generation: Option<i64>, curve: Curve) -> Duration {
        let mut m = self.lock();
        let s = m.entry(key.clone()).or_insert(State {
            generation,
            attempts: 0,
            not_before: Instant::now(),
        });
        if s.generation != generation {
            s.generation = generation;
            s.attempts = 0;
        }
        s.attempts = s.attempts.saturating_add(1);
        let wait = exponential(s.attempts, curve.base, curve.max);
        s.not_before = Instant::now() + wait;
        wait
    }

    /// Failures recorded since the last success (0: none).
    pub fn attempts(&self, key: &K) -> u32 {
        self.lock().get(key).map_or(0, |s| s.attempts)
    }

    pub fn success(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn exponential_stays_in_the_upper_half_of_its_step() {
        // (attempt, step)
        let cases = [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)];
        for (attempt, step) in cases {
            for _ in 0..20 {
                let w = exponential(attempt, 2 * S, 60 * S);
                assert!(w >= step * S / 2 && w <= step * S, "{attempt}: {w:?}");
            }
        }
        assert_eq!(exponential(1, Duration::ZERO, S), Duration::ZERO);
        let p = spread(100 * S);
        assert!(p >= 100 * S && p <= 110 * S);
    }

    #[test]
    fn backoffs_gate_until_the_wait_is_over_or_the_generation_changes() {
        let b: Backoffs<String> = Backoffs::default();
        let k = "ns/a".to_string();
        let curve = Curve {
            base: 10 * S,
            max: 300 * S,
        };
        assert_eq!(b.gate(&k, Some(1)), None);
        let w = b.fail(&k, Some(1), curve);
        assert!(w >= 5 * S);
        assert!(b.gate(&k, Some(1)).is_some());
        let w2 = b.fail(&k, Some(1), curve);
        assert!(w2 >= 10 * S, "second step");
        assert_eq!(b.attempts(&k), 2);
        assert_eq!(b.gate(&k, Some(2)), None, "a spec change retries at once");
        assert_eq!(b.attempts(&k), 0);
        b.fail(&k, Some(2), curve);
        b.success(&k);
        assert_eq!(b.gate(&k, Some(2)), None);
    }
}
