//! Plumbing both controllers share, each idea written once:
//!
//! - [`meta`]: the managed-by label and metadata slimming (what a cache never keeps).
//! - [`compact`]: objects kept as compact JSON text, for caches of many objects read now and
//!   then.
//! - [`overlay`]: "our last write until the cache catches up", with one resourceVersion rule.
//! - [`backoff`]: per-object exponential backoff with jitter, and poll jitter.
//! - [`synced`]: cache-synced signalling that wakes every waiter.
//! - [`finalizer`]: finalizer add/remove as guarded merge patches.
//! - [`error`]: API errors in plain words (never kube's Debug dump of a `Status`).
//! - [`events`]: the Event recorder (series, bounded notes).
//! - [`object_metrics`]: the `paved_objects` gauge, counted from the controllers' caches at
//!   scrape time.
//! - [`status`]: comparing statuses without their transition times.
//! - [`watch`]: trigger streams that never lose a wake-up across a relist, resync ticks, and
//!   the health of every watch.
//!
//! Nothing here knows a kind of paved's own (claims, Instances): the controllers pass in what
//! differs. Each file is a leaf; none imports another's parent.

pub mod backoff;
pub mod compact;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod meta;
pub mod object_metrics;
pub mod overlay;
pub mod status;
pub mod synced;
pub mod watch;
