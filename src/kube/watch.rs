//! Watch streams that never lose a wake-up, a resync that costs nothing when idle, and the
//! health of every watch.
//!
//! **The lost wake-up.** After a watch expires (`410 Gone`, e.g. across an API server restart)
//! kube-runtime's watcher lists again: `Init`, one `InitApply` per object, then `InitDone`. The
//! reflector's store keeps its *old* contents until `InitDone` and only then swaps in the new
//! list. kube-runtime's `applied_objects()` passes each `InitApply` object on at once, so a
//! controller triggered by it looks the object up in a store that does not have it yet (an
//! object created while the watch was down) or has an older version of it: the reconcile is
//! dropped as "object not found" or runs on stale data, and nothing triggers it again.
//! [`settled_objects`] holds the objects of a relist until `InitDone`, when the store has
//! them, and passes them on then.
//!
//! **The safety net.** [`resync_ticks`] yields one tick per interval (jittered, the first one a
//! whole interval after start); a controller turns each tick into a reconcile of every cached
//! object. A reconcile that finds nothing to change writes nothing, so an idle fleet still makes
//! no Kubernetes write, and a wake-up lost for any other reason costs at most one interval.
//!
//! **Health.** [`WatchHealth`] follows every watch: the first failure of a watch is logged once
//! as a warning (the retries at debug), its re-establishment once with how long it was down, a
//! gauge `paved_watch_up{watch}` says which watches are up, and `/readyz` fails while one has
//! been down longer than [`WatchHealth::UNHEALTHY_AFTER`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A watch event with its objects in another form (for a store that keeps them compact).
pub fn map_event<K, C>(e: watcher::Event<K>, f: impl Fn(K) -> C) -> watcher::Event<C> {
    use watcher::Event;
    match e {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

/// The objects of a watch event stream (after `.reflect(writer)` or `reflector(..)`), each passed
/// on only once the reflector's store holds it: objects of a relist wait for its `InitDone`.
/// With `deletes`, deleted objects are passed on too (kube-runtime's `touched_objects`);
/// without, only applied ones (`applied_objects`). Errors pass through.
pub fn settled_objects<K, S>(
    events: S,
    deletes: bool,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    events
        .scan(Vec::<K>::new(), move |relist, event| {
            let out: Vec<Result<K, watcher::Error>> = match event {
                Ok(watcher::Event::Apply(k)) => vec![Ok(k)],
                Ok(watcher::Event::Delete(k)) if deletes => vec![Ok(k)],
                Ok(watcher::Event::Delete(_)) => Vec::new(),
                Ok(watcher::Event::Init) => {
                    relist.clear();
                    Vec::new()
                }
                Ok(watcher::Event::InitApply(k)) => {
                    relist.push(k);
                    Vec::new()
                }
                Ok(watcher::Event::InitDone) => {
                    std::mem::take(relist).into_iter().map(Ok).collect()
                }
                Err(e) => vec![Err(e)],
            };
            std::future::ready(Some(futures::stream::iter(out)))
        })
        .flatten()
}

/// `stream` until `shutdown` resolves; then it is dropped (whether or not anyone polls it: a task
/// drops it) and ends. Needs a Tokio runtime. Why: a kube-runtime Controller or applier holds its reconciles until its
/// store is ready, and stops polling its queue at shutdown. A store whose writer lives in that
/// queue, unpolled, never becomes ready, and the runner waits for it forever: a shutdown during
/// the initial list hung until `paved run` aborted the controllers 20 s later. With the writer
/// dropped, the store's wait ends (`WriterDropped`) and the runner stops.
pub fn until_shutdown<T: Send + 'static>(
    stream: futures::stream::BoxStream<'static, T>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = T> + Send + 'static {
    use futures::StreamExt;
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(stream)));
    // Weak: a stream dropped before shutdown (its controller aborted) is gone at once.
    let dropper = std::sync::Arc::downgrade(&slot);
    tokio::spawn(async move {
        shutdown.await;
        if let Some(slot) = dropper.upgrade()
            && let Ok(mut s) = slot.lock()
        {
            s.take();
        }
    });
    futures::stream::poll_fn(move |cx| match slot.lock() {
        Ok(mut s) => match s.as_mut() {
            Some(inner) => inner.poll_next_unpin(cx),
            None => std::task::Poll::Ready(None),
        },
        Err(_) => std::task::Poll::Ready(None),
    })
}

/// One tick per `interval`, each within ±10 % of it, the first a whole interval after the call
/// (start-up reconciles everything anyway). An `interval` of zero never ticks.
pub fn resync_ticks(interval: Duration) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold((), move |()| async move {
        if interval.is_zero() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(jittered(interval)).await;
        Some(((), ()))
    })
}

fn jittered(d: Duration) -> Duration {
    let spread = d.as_secs_f64() * 0.1;
    let offset = (rand::random::<f64>() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((d.as_secs_f64() + offset).max(0.0))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    watch: String,
}

#[derive(Debug, Default)]
struct WatchState {
    /// When the current run of failures began (`None`: up, or never failed).
    down_since: Option<Instant>,
}

/// The health of every watch paved runs, by a bounded name (`claims`, `compositions`,
/// `secrets`, `instances`, `providerconfigs`, `composed Instance`, ...).
#[derive(Debug, Default)]
pub struct WatchHealth {
    states: Mutex<BTreeMap<String, WatchState>>,
    up: Family<WatchLabels, Gauge>,
    failures: Family<WatchLabels, Counter>,
}

impl WatchHealth {
    /// How long a watch may keep failing before `/readyz` reports it.
    pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

    /// The process's tracker: every watch of both controllers reports here.
    pub fn global() -> &'static WatchHealth {
        static HEALTH: std::sync::OnceLock<WatchHealth> = std::sync::OnceLock::new();
        HEALTH.get_or_init(WatchHealth::default)
    }

    /// Expose the gauge and counter in `registry` (`paved_watch_up`,
    /// `paved_watch_failures_total`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "paved_watch_up",
            "1 while a watch is established, 0 while it is failing and being retried",
            self.up.clone(),
        );
        registry.register(
            "paved_watch_failures",
            "Watch failures (list or watch errors), by watch",
            self.failures.clone(),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WatchState>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Note one item of a watch's event stream (use it in `.inspect(..)` before any decoding).
    pub fn observe<K>(&self, watch: &str, item: &Result<watcher::Event<K>, watcher::Error>) {
        let labels = || WatchLabels {
            watch: watch.to_string(),
        };
        match item {
            Err(e) => {
                self.failures.get_or_create(&labels()).inc();
                let mut states = self.lock();
                let state = states.entry(watch.to_string()).or_default();
                if state.down_since.is_none() {
                    state.down_since = Some(Instant::now());
                    drop(states);
                    self.up.get_or_create(&labels()).set(0);
                    tracing::warn!(watch, error = %e, "watch failed; retrying with backoff");
                } else {
                    tracing::debug!(watch, error = %e, "watch still failing");
                }
            }
            // `Init` is the start of a relist, before its list call: not up yet.
            Ok(watcher::Event::Init) => {}
            // The common case, every event of a healthy watch: one lookup, nothing written.
            Ok(_) => {
                let mut states = self.lock();
                let was_down = match states.get_mut(watch) {
                    Some(state) if state.down_since.is_none() => return,
                    Some(state) => state.down_since.take(),
                    None => {
                        states.insert(watch.to_string(), WatchState::default());
                        None
                    }
                };
                drop(states);
                self.up.get_or_create(&labels()).set(1);
                if let Some(since) = was_down {
                    let down = since.elapsed().as_secs_f64();
                    tracing::info!(
                        watch,
                        down_seconds = down,
                        "watch re-established after {down:.1} s"
                    );
                }
            }
        }
    }

    /// The watches failing for longer than `after`, with how long each has been down.
    pub fn failing_longer_than(&self, after: Duration) -> Vec<(String, Duration)> {
        self.lock()
            .iter()
            .filter_map(|(name, s)| {
                let down = s.down_since?.elapsed();
                (down > after).then(|| (name.clone(), down))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::reflector::{self, ObjectRef};

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn rv_in(store: &reflector::Store<ConfigMap>, name: &str) -> Option<String> {
        store
            .get(&ObjectRef::new(name).within("ns"))
            .and_then(|o| o.metadata.resource_version.clone())
    }

    /// Every object passed on is already in the store, at that version: also the ones a relist
    /// brings (created or changed while the watch was down). With kube-runtime's
    /// `applied_objects` the relist's objects come out before the store has them.
    #[tokio::test]
    async fn relisted_objects_come_out_once_the_store_has_them() {
        let events = || -> Vec<Result<watcher::Event<ConfigMap>, watcher::Error>> {
            vec![
                Ok(watcher::Event::Init),
                Ok(watcher::Event::InitApply(cm("a", "1"))),
                Ok(watcher::Event::InitDone),
                Ok(watcher::Event::Apply(cm("a", "2"))),
                // the watch expired; meanwhile b was created and a changed
                Err(watcher::Error::NoResourceVersion),
                Ok(watcher::Event::Init),
                Ok(watcher::Event::InitApply(cm("a", "5"))),
                Ok(watcher::Event::InitApply(cm("b", "4"))),
                Ok(watcher::Event::InitDone),
                Ok(watcher::Event::Delete(cm("b", "6"))),
            ]
        };
        let (store, writer) = reflector::store();
        let reflected = futures::stream::iter(events()).reflect(writer);
        let seen: Vec<(String, String, Option<String>)> = settled_objects(reflected, false)
            .filter_map(|r| std::future::ready(r.ok()))
            .map(|o| {
                let name = o.metadata.name.clone().unwrap_or_default();
                let rv = o.metadata.resource_version.clone().unwrap_or_default();
                let stored = rv_in(&store, &name);
                (name, rv, stored)
            })
            .collect()
            .await;
        assert_eq!(
            seen,
            vec![
                ("a".into(), "1".into(), Some("1".into())),
                ("a".into(), "2".into(), Some("2".into())),
                ("a".into(), "5".into(), Some("5".into())),
                ("b".into(), "4".into(), Some("4".into())),
            ]
        );

        // kube-runtime's own decoder, for contrast: b comes out while the store lacks it.
        let (store, writer) = reflector::store();
        let early: Vec<(String, Option<String>)> = futures::stream::iter(events())
            .reflect(writer)
            .applied_objects()
            .filter_map(|r| std::future::ready(r.ok()))
            .map(|o| {
                let name = o.metadata.name.clone().unwrap_or_default();
                let stored = rv_in(&store, &name);
                (name, stored)
            })
            .collect()
            .await;
        assert!(early.contains(&("b".to_string(), None)), "{early:?}");
    }

    #[tokio::test]
    async fn deletes_pass_only_when_asked_and_errors_always() {
        let events = || -> Vec<Result<watcher::Event<ConfigMap>, watcher::Error>> {
            vec![
                Ok(watcher::Event::Delete(cm("a", "1"))),
                Err(watcher::Error::NoResourceVersion),
            ]
        };
        let touched: Vec<_> = settled_objects(futures::stream::iter(events()), true)
            .collect()
            .await;
        assert!(matches!(touched.as_slice(), [Ok(_), Err(_)]), "{touched:?}");
        let applied: Vec<_> = settled_objects(futures::stream::iter(events()), false)
            .collect()
            .await;
        assert!(matches!(applied.as_slice(), [Err(_)]), "{applied:?}");
    }

    #[test]
    fn health_follows_failures_and_recovery() {
        let mut registry = Registry::default();
        let health = WatchHealth::default();
        health.register(&mut registry);
        let err: Result<watcher::Event<ConfigMap>, watcher::Error> =
            Err(watcher::Error::NoResourceVersion);
        health.observe("claims", &err);
        health.observe("claims", &err);
        assert_eq!(health.failing_longer_than(Duration::ZERO).len(), 1);
        assert!(
            health
                .failing_longer_than(Duration::from_secs(3600))
                .is_empty()
        );
        // the start of a relist is not recovery; its end is
        health.observe::<ConfigMap>("claims", &Ok(watcher::Event::Init));
        assert_eq!(health.failing_longer_than(Duration::ZERO).len(), 1);
        health.observe::<ConfigMap>("claims", &Ok(watcher::Event::InitDone));
        assert!(health.failing_longer_than(Duration::ZERO).is_empty());

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains("paved_watch_up{watch=\"claims\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("paved_watch_failures_total{watch=\"claims\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }
}
