//! Batched observation for any kind: one paginated list call per (ProviderConfig, region, kind)
//! per poll interval feeds every object of that kind (the Instances' [`super::observe::Fleet`]
//! is one, with targeted describes of transitional instances on top).
//!
//! Each entry remembers when it was observed, so that what a create or update just answered is
//! never overwritten by an older listing, and a resource created after a listing started is not
//! taken for absent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::model::AwsError;

/// After a failed listing, callers get the same error for this long instead of calling AWS again.
const FAILED_LISTING_HOLD: Duration = Duration::from_secs(5);

/// One page of a list call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The marker or token of the next page (`None`: this was the last).
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` whose list call answered the marker or token `next` (AWS ends a
    /// listing with no marker or, on some calls, an empty one).
    pub fn new(items: Vec<T>, next: Option<&str>) -> Self {
        Self {
            items,
            next: next_marker(next),
        }
    }
}

/// The marker or token of the next page as AWS answered it: `None` when absent or empty.
pub fn next_marker(next: Option<&str>) -> Option<String> {
    next.filter(|m| !m.is_empty()).map(str::to_string)
}

/// A kind's resources as a listing sees them.
pub trait Listed: Clone + Send + Sync + 'static {
    /// The key an object looks its resource up by (its external-name).
    fn key(&self) -> String;
}

/// The list call of a kind: one page from a marker (`None`: the first).
pub type ListPage<'a, T> = BoxFuture<'a, Result<Page<T>, AwsError>>;

#[derive(Debug)]
struct Entry<T> {
    item: Option<T>,
    observed_at: Instant,
}

#[derive(Debug)]
struct State<T> {
    entries: HashMap<String, Entry<T>>,
    listed_at: Option<Instant>,
    failed: Option<(Instant, AwsError)>,
    listings: u64,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            listed_at: None,
            failed: None,
            listings: 0,
        }
    }
}

/// What paved knows about the resources of one kind in one (ProviderConfig, region).
#[derive(Debug)]
pub struct Listing<T> {
    state: Mutex<State<T>>,
    listing: tokio::sync::Mutex<()>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            listing: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Listed> Listing<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record what a call just told us about `key` (`None`: it does not exist).
    pub fn record(&self, key: &str, item: Option<T>) {
        self.lock().entries.insert(
            key.to_string(),
            Entry {
                item,
                observed_at: Instant::now(),
            },
        );
    }

    fn fresh(&self, poll: Duration) -> Result<bool, AwsError> {
        let st = self.lock();
        if st.listed_at.is_some_and(|t| t.elapsed() < poll) {
            return Ok(true);
        }
        if let Some((at, e)) = &st.failed
            && at.elapsed() < FAILED_LISTING_HOLD
        {
            return Err(e.clone());
        }
        Ok(false)
    }

    /// Make sure the listing is younger than `poll`: at most one listing runs at a time, and
    /// callers that waited for it use its result. `page` lists one page from a marker.
    pub async fn ensure_listed<'a, F>(&self, poll: Duration, mut page: F) -> Result<(), AwsError>
    where
        F: FnMut(Option<String>) -> ListPage<'a, T>,
    {
        if self.fresh(poll)? {
            return Ok(());
        }
        let _one_at_a_time = self.listing.lock().await;
        if self.fresh(poll)? {
            return Ok(());
        }
        let started = Instant::now();
        let mut listed: HashMap<String, T> = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            match page(marker.clone()).await {
                Ok(p) => {
                    for i in p.items {
                        listed.insert(i.key(), i);
                    }
                    // A marker that repeats would loop forever: treat it as the end.
                    if p.next.is_none() || p.next == marker {
                        break;
                    }
                    marker = p.next;
                }
                Err(e) => {
                    self.lock().failed = Some((Instant::now(), e.clone()));
                    return Err(e);
                }
            }
        }
        let mut st = self.lock();
        st.entries.retain(|_, e| e.observed_at > started);
        for (key, item) in listed {
            if st
                .entries
                .get(&key)
                .is_none_or(|e| e.observed_at <= started)
            {
                st.entries.insert(
                    key,
                    Entry {
                        item: Some(item),
                        observed_at: started,
                    },
                );
            }
        }
        st.listed_at = Some(started);
        st.failed = None;
        st.listings += 1;
        Ok(())
    }

    /// The resource as last observed, refreshing the listing when it is older than `poll`.
    pub async fn observe<'a, F>(
        &self,
        key: &str,
        poll: Duration,
        page: F,
    ) -> Result<Option<T>, AwsError>
    where
        F: FnMut(Option<String>) -> ListPage<'a, T>,
    {
        self.ensure_listed(poll, page).await?;
        Ok(self.lock().entries.get(key).and_then(|e| e.item.clone()))
    }

    /// The resource as last observed, without listing, and how old that knowledge is (for a
    /// resource the cache has no entry for: `None`, as old as the last listing).
    pub fn known(&self, key: &str) -> (Option<T>, Duration) {
        let st = self.lock();
        match st.entries.get(key) {
            Some(e) => (e.item.clone(), e.observed_at.elapsed()),
            None => (None, st.listed_at.map(|t| t.elapsed()).unwrap_or_default()),
        }
    }

    /// Every resource the cache knows, for lookups by something other than the key (for
    /// example a security group by its ownership tag, before its ID is recorded).
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Vec<T> {
        self.lock()
            .entries
            .values()
            .filter_map(|e| e.item.as_ref())
            .filter(|i| pred(i))
            .cloned()
            .collect()
    }

    /// How many resources the cache knows exist.
    pub fn len(&self) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.item.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many listings ran (for tests and metrics).
    pub fn listings(&self) -> u64 {
        self.lock().listings
    }
}

/// (ProviderConfig, region).
type Placement = (String, String);

/// The listings of one kind, by (ProviderConfig, region).
#[derive(Debug)]
pub struct Listings<T> {
    m: Mutex<HashMap<Placement, Arc<Listing<T>>>>,
}

impl<T> Default for Listings<T> {
    fn default() -> Self {
        Self {
            m: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Listings<T> {
    pub fn get(&self, provider_config: &str, region: &str) -> Arc<Listing<T>> {
        let mut m = self.m.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((provider_config.to_string(), region.to_string()))
            .or_insert_with(|| Arc::new(Listing::default()))
            .clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, Debug, PartialEq)]
    struct Item(String);
    impl Listed for Item {
        fn key(&self) -> String {
            self.0.clone()
        }
    }

    /// `n` items served in pages of 100, counting calls.
    struct Account {
        n: usize,
        calls: AtomicUsize,
    }

    impl Account {
        fn page(&self, marker: Option<String>) -> ListPage<'_, Item> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
                let end = (start + 100).min(self.n);
                Ok(Page {
                    items: (start..end).map(|i| Item(format!("r-{i}"))).collect(),
                    next: (end < self.n).then(|| end.to_string()),
                })
            })
        }
    }

    #[tokio::test]
    async fn one_listing_per_poll_serves_every_object() {
        let acct = Arc::new(Account {
            n: 250,
            calls: AtomicUsize::new(0),
        });
        let listing = Arc::new(Listing::<Item>::default());
        let mut tasks = Vec::new();
        for i in 0..250 {
            let (acct, listing) = (acct.clone(), listing.clone());
            tasks.push(tokio::spawn(async move {
                listing
                    .observe(&format!("r-{i}"), Duration::from_secs(60), |m| acct.page(m))
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_some());
        }
        assert_eq!(acct.calls.load(Ordering::SeqCst), 3, "ceil(250/100) pages");
        assert_eq!(listing.listings(), 1);
        let absent = listing
            .observe("nope", Duration::from_secs(60), |m| acct.page(m))
            .await;
        assert_eq!(absent, Ok(None));
        assert_eq!(
            acct.calls.load(Ordering::SeqCst),
            3,
            "absent without a call"
        );
        // past the poll interval: one more listing
        listing
            .ensure_listed(Duration::ZERO, |m| acct.page(m))
            .await
            .unwrap();
        assert_eq!(acct.calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn newer_knowledge_survives_a_listing_and_failures_are_held() {
        let acct = Account {
            n: 0,
            calls: AtomicUsize::new(0),
        };
        let listing = Listing::<Item>::default();
        assert_eq!(
            listing
                .observe("new", Duration::from_secs(60), |m| acct.page(m))
                .await,
            Ok(None)
        );
        listing.record("new", Some(Item("new".into())));
        let seen = listing
            .observe("new", Duration::from_secs(60), |m| acct.page(m))
            .await;
        assert_eq!(seen, Ok(Some(Item("new".into()))));
        assert_eq!(listing.find(|i| i.0.starts_with("ne")).len(), 1);

        let failing = Listing::<Item>::default();
        let calls = AtomicUsize::new(0);
        let fail = |_m: Option<String>| -> ListPage<'static, Item> {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(AwsError::new("DescribeX", "AccessDenied", "no", Some(403))) })
        };
        assert!(failing.observe("a", Duration::ZERO, fail).await.is_err());
        assert!(failing.observe("a", Duration::ZERO, fail).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the failure is held");
    }
}
