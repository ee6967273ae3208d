//! Cache-synced signalling.
//!
//! Why not `Store::wait_until_ready`: in kube-runtime 5 it awaits a `futures` oneshot receiver
//! shared by every waiter, and that receiver keeps only the *last* waker registered. With two
//! tasks waiting on the same store (a controller's applier plus a readiness task), whichever
//! polled first is never woken. A `tokio::sync::watch` channel wakes every waiter.

use std::fmt::Debug;
use std::hash::Hash;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// The sending side: turns true once, when a watcher finishes its initial list.
pub type SyncedTx = watch::Sender<bool>;
/// The receiving side (clone it freely).
pub type SyncedRx = watch::Receiver<bool>;

/// A new, not yet synced signal.
pub fn channel() -> (SyncedTx, SyncedRx) {
    watch::channel(false)
}

/// Flag the cache as synced when its watcher finishes the initial list. Call it from
/// `.inspect(..)` after `.reflect(..)`: the reflector has applied the event to the store when
/// the stream yields it.
pub fn mark<K, E>(tx: &SyncedTx, e: &Result<watcher::Event<K>, E>) {
    if matches!(e, Ok(watcher::Event::InitDone)) && !*tx.borrow() {
        tx.send_replace(true);
    }
}

/// Wait until synced; false if the watch task is gone.
pub async fn wait(rx: &SyncedRx) -> bool {
    let mut rx = rx.clone();
    rx.wait_for(|v| *v).await.is_ok()
}

/// Wait until every signal is synced; false as soon as one watch task is gone.
pub async fn wait_all(rxs: impl IntoIterator<Item = SyncedRx>) -> bool {
    for rx in rxs {
        if !wait(&rx).await {
            return false;
        }
    }
    true
}

/// How many objects one LIST page of a watch's (re)list holds.
///
/// A watch lists its kind at start and again whenever the API server has expired the
/// resourceVersion it would resume from (`410 Expired`, common under churn: the watch cache
/// keeps a short window of events). The whole page is decoded before any of it is cached, so the
/// page, not the cache, sets the transient peak: 1000 composed Instances in one unpaginated answer
/// were ~15 MB of JSON trees at once (heaptrack, `make bench` N=1000), 100 of them ~1.5 MB.
pub const LIST_PAGE: u32 = 100;

/// The watch configuration every cache of paved starts from: lists paginated by [`LIST_PAGE`],
/// consistent reads (a "served from the watch cache" list, `resourceVersion=0`, is answered
/// in one piece whatever the limit).
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
}

/// A watch of `api` into a store: objects slimmed ([`super::meta::slim`]) before they are
/// stored, the store's synced signal, and the stream of watch events (after the store has
/// them), to turn into a trigger with [`super::watch::settled_objects`] (not kube-runtime's
/// `applied_objects`, which passes a relist's objects on before the store has them). The
/// watch reports to [`super::watch::WatchHealth::global`] under the kind's plural.
pub fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    SyncedRx,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    cached_as(api, config, K::DynamicType::default(), |k| k)
}

/// [`cached`] for a kind known at run time (`dyntype`, e.g. a `DynamicObject`'s `ApiResource`),
/// the store keeping each (slimmed) object in the form `into` gives it: a compact one, for caches
/// that hold many objects read only now and then.
pub fn cached_as<K, C>(
    api: Api<K>,
    config: watcher::Config,
    dyntype: K::DynamicType,
    into: impl Fn(K) -> C + Send + 'static,
) -> (
    Store<C>,
    SyncedRx,
    impl Stream<Item = Result<watcher::Event<C>, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
    C: Resource<DynamicType = K::DynamicType> + Clone + Send + Sync + 'static,
{
    let name = K::plural(&dyntype).into_owned();
    let writer = reflector::store::Writer::new(dyntype);
    let store = writer.as_reader();
    let (tx, rx) = channel();
    let stream = watcher(api, config)
        .default_backoff()
        .inspect(move |e| super::watch::WatchHealth::global().observe(&name, e))
        .modify(|o: &mut K| super::meta::slim(o.meta_mut(), None))
        .map_ok(move |e| super::watch::map_event(e, &into))
        .reflect(writer)
        .inspect(move |e| mark(&tx, e));
    (store, rx, stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_on_init_done() {
        let (tx, rx) = channel();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                tokio::spawn(async move { wait(&rx).await })
            })
            .collect();
        mark::<(), ()>(&tx, &Ok(watcher::Event::Init));
        assert!(!*rx.borrow(), "Init is not the end of the list");
        mark::<(), ()>(&tx, &Ok(watcher::Event::InitDone));
        for w in waiters {
            assert!(w.await.unwrap());
        }
        assert!(wait_all([rx.clone(), rx]).await);
        let (tx2, rx2) = channel();
        drop(tx2);
        assert!(!wait(&rx2).await, "a gone watch task is not synced");
    }
}
