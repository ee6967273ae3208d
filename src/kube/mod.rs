//! Plumbing both controllers share.

pub mod watch;
