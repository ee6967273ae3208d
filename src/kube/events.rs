//! Kubernetes Events (`events.k8s.io/v1`) for both controllers, with series for repeats.
//!
//! Why not `kube::runtime::events::Recorder`: it keeps a clone of every Event it published (with
//! its key, a second copy of the regarding reference) for six minutes so that a repeat becomes a
//! series. Under a wave of claims that cache was the second largest part of paved's heap (~10 KB
//! per claim: three Events each, heaptrack at 500 claims: 5 MB). And its key leaves out the note,
//! so a repeated Warning whose message changed was recorded as a repeat of the *first* message:
//! `kubectl describe` showed a stale reason for a failure.
//!
//! This recorder remembers, per recent Event, a 64-bit hash of what identifies it (regarding
//! object, reporter, type, reason, action, related object and note) and the Event's name,
//! count and time: ~100 bytes. A repeat within [`SERIES_WINDOW`] patches the existing Event's
//! `series` (one small write, one object in etcd); a different note is a new Event.
//!
//! Notes are bounded ([`NOTE_MAX`]): the API server refuses an Event whose note is longer, and an
//! AWS or validation message can be. Both controllers publish through [`Recorder::emit`], which
//! bounds, counts (the controller's write metric) and logs a failure; an Event is never worth
//! failing a reconcile for.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use serde_json::json;

/// How long a published Event can still become a series (what client-go and kube use).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Longest note published, in bytes (the API server accepts at most 1 kB).
pub const NOTE_MAX: usize = 1000;

/// `note` cut to at most [`NOTE_MAX`] bytes, on a character boundary.
pub fn bounded_note(note: &str) -> &str {
    if note.len() <= NOTE_MAX {
        return note;
    }
    let mut cut = NOTE_MAX;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    &note[..cut]
}

/// What a condition message says for the moment only, and an Event must not freeze: read ten
/// minutes later, "(retrying in 5s)" is false. Each is the start of a parenthesized remark.
const TRANSIENT_REMARKS: [&str; 3] = ["(retrying in ", "(retry in ", "(next attempt in "];

/// `note` without its transient remarks (see [`TRANSIENT_REMARKS`]): a retry countdown belongs
/// in the condition and the log, which are current, not in an Event, which stays.
pub fn timeless_note(note: &str) -> String {
    let mut out = String::with_capacity(note.len());
    let mut rest = note;
    while let Some((i, _)) = TRANSIENT_REMARKS
        .iter()
        .filter_map(|r| rest.find(r).map(|i| (i, r)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(rest[..i].trim_end());
        // skip to the matching close parenthesis (remarks may nest one level: "(retrying in 5s,
        // or at once when the spec changes)")
        let mut depth = 0usize;
        let mut end = rest.len();
        for (j, c) in rest[i..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Called once per Event a recorder publishes (a controller's write counter).
pub type OnPublish = Box<dyn Fn() + Send + Sync>;

/// An Event published recently: enough to patch its series.
#[derive(Debug, Clone)]
struct Recent {
    name: String,
    namespace: String,
    count: i32,
    last: Instant,
}

/// Publishes Events on behalf of one controller. Cheap to share (`&self` everywhere).
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    recent: Mutex<Recents>,
    on_publish: Option<OnPublish>,
}

#[derive(Default)]
struct Recents {
    by_key: HashMap<u64, Recent>,
    last_sweep: Option<Instant>,
}

impl Recents {
    /// Forget Events older than the series window; at most once every ten seconds, so a burst
    /// of Events does not scan the map for each one.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.by_key
            .retain(|_, r| now.duration_since(r.last) < SERIES_WINDOW);
        if self.by_key.capacity() > 64 && self.by_key.len() < self.by_key.capacity() / 4 {
            self.by_key.shrink_to_fit();
        }
    }

    /// The recent Event with this key, if it can still become a series.
    fn live(&self, key: u64, now: Instant) -> Option<Recent> {
        self.by_key
            .get(&key)
            .filter(|r| now.duration_since(r.last) < SERIES_WINDOW)
            .cloned()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            recent: Mutex::default(),
            on_publish: None,
        }
    }

    /// Call `f` for every Event published (before the request: it counts attempted writes).
    pub fn counting(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_publish = Some(Box::new(f));
        self
    }

    /// Publish an Event about `regarding` (see [`Self::publish`]); a failure is logged (at
    /// debug: the cluster may simply refuse Events) and otherwise ignored.
    pub async fn emit(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(timeless_note(&note.into())),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.publish(&ev, regarding).await {
            tracing::debug!(
                namespace = ?regarding.namespace,
                name = ?regarding.name,
                reason,
                error = %e,
                "could not publish event"
            );
        }
    }

    /// How many Events this recorder remembers for series (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.recent.lock().map(|r| r.by_key.len()).unwrap_or(0)
    }

    /// The identity of an Event for series: everything but its time.
    fn key(&self, ev: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.reporter.controller.hash(&mut h);
        self.reporter.instance.hash(&mut h);
        hash_ref(regarding, &mut h);
        matches!(ev.type_, EventType::Warning).hash(&mut h);
        ev.reason.hash(&mut h);
        ev.action.hash(&mut h);
        ev.note.hash(&mut h);
        match &ev.secondary {
            Some(r) => {
                1u8.hash(&mut h);
                hash_ref(r, &mut h);
            }
            None => 0u8.hash(&mut h),
        }
        h.finish()
    }

    /// Publish `ev` about `regarding`: a new Event, or a series update of the same Event
    /// published within [`SERIES_WINDOW`]. Cluster-scoped objects get their Events in `default`.
    /// The note is bounded to [`NOTE_MAX`] bytes.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        if let Some(f) = &self.on_publish {
            f();
        }
        let bounded;
        let ev = match ev.note.as_deref() {
            Some(n) if n.len() > NOTE_MAX => {
                bounded = Event {
                    type_: ev.type_,
                    reason: ev.reason.clone(),
                    note: Some(bounded_note(n).to_string()),
                    action: ev.action.clone(),
                    secondary: ev.secondary.clone(),
                };
                &bounded
            }
            _ => ev,
        };
        let key = self.key(ev, regarding);
        let now = Instant::now();
        let previous = match self.recent.lock() {
            Ok(mut r) => {
                r.sweep(now);
                r.live(key, now)
            }
            Err(_) => None,
        };
        let stamp = jiff::Timestamp::now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());

        if let Some(prev) = previous
            && self.continue_series(key, prev, stamp, now).await?
        {
            return Ok(());
        }
        let name = format!(
            "{}.{:x}",
            regarding
                .name
                .as_deref()
                .unwrap_or(&self.reporter.controller),
            stamp.as_nanosecond()
        );
        let event = self.event_object(ev, regarding, &name, &namespace, stamp);
        Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.remember(
            key,
            Recent {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// Patch the series of the recent Event `prev`: true when done, false when it is gone (a new
    /// Event is then published).
    async fn continue_series(
        &self,
        key: u64,
        prev: Recent,
        stamp: jiff::Timestamp,
        now: Instant,
    ) -> Result<bool, kube::Error> {
        let count = prev.count + 1;
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &prev.namespace);
        let patch = json!({"series": EventSeries { count, last_observed_time: MicroTime(stamp) }});
        match api
            .patch(&prev.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.remember(
                    key,
                    Recent {
                        count,
                        last: now,
                        ..prev
                    },
                );
                Ok(true)
            }
            // Deleted meanwhile (event TTL, someone cleaning up): start a new one.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The Event object for `ev` about `regarding`.
    fn event_object(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
        name: &str,
        namespace: &str,
        stamp: jiff::Timestamp,
    ) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            event_time: Some(MicroTime(stamp)),
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            ..Default::default()
        }
    }

    fn remember(&self, key: u64, recent: Recent) {
        if let Ok(mut r) = self.recent.lock() {
            r.by_key.insert(key, recent);
        }
    }
}

fn hash_ref(r: &ObjectReference, h: &mut impl Hasher) {
    r.api_version.hash(h);
    r.kind.hash(h);
    r.namespace.hash(h);
    r.name.hash(h);
    r.uid.hash(h);
    r.field_path.hash(h);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(last: Instant) -> Recent {
        Recent {
            name: "n".into(),
            namespace: "ns".into(),
            count: 1,
            last,
        }
    }

    #[test]
    fn notes_drop_their_retry_countdown() {
        let cases = [
            (
                "CreateDBInstance failed: InvalidParameterValue: Invalid storage size (retrying in 300s, or at once when the spec changes)",
                "CreateDBInstance failed: InvalidParameterValue: Invalid storage size",
            ),
            (
                "DescribeDBInstances failed: Timeout: no answer from http://127.0.0.1:9 within 30 s (retrying in 5s). Check the endpoint",
                "DescribeDBInstances failed: Timeout: no answer from http://127.0.0.1:9 within 30 s. Check the endpoint",
            ),
            (
                "waiting for (something) to happen",
                "waiting for (something) to happen",
            ),
            ("cut (retrying in 5s", "cut"),
            ("", ""),
        ];
        for (i, (note, want)) in cases.iter().enumerate() {
            let got = timeless_note(note);
            assert_eq!(&got, want, "case {i}");
            assert!(!got.contains("retrying in"), "case {i}");
        }
    }

    #[test]
    fn notes_are_bounded_on_a_character_boundary() {
        let cases = [
            ("short".to_string(), 5),
            ("x".repeat(NOTE_MAX), NOTE_MAX),
            ("x".repeat(NOTE_MAX + 1), NOTE_MAX),
            (format!("{}é", "x".repeat(NOTE_MAX - 1)), NOTE_MAX - 1),
        ];
        for (note, len) in cases {
            assert_eq!(bounded_note(&note).len(), len);
        }
    }

    #[test]
    fn sweep_forgets_events_past_the_series_window_and_not_more_often_than_needed() {
        let t0 = Instant::now();
        let mut r = Recents::default();
        r.by_key.insert(1, recent(t0));
        r.sweep(t0 + Duration::from_secs(1));
        assert_eq!(r.by_key.len(), 1, "inside the window");
        let later = t0 + SERIES_WINDOW + Duration::from_secs(1);
        r.by_key.insert(2, recent(later));
        r.sweep(later);
        assert_eq!(r.by_key.keys().copied().collect::<Vec<_>>(), vec![2]);
        // an expired entry that survived between sweeps is not used for a series
        r.by_key.insert(3, recent(t0));
        r.sweep(later + Duration::from_secs(1));
        assert!(r.by_key.contains_key(&3), "swept at most every 10 s");
        assert!(r.live(3, later).is_none(), "but never reused when expired");
        assert!(r.live(2, later).is_some());
    }
}
