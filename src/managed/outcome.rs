//! What a step of the lifecycle decides, as typed values.

use kube::runtime::controller::Action;

/// A step that cannot go on, and why: the Synced condition's reason and message. Never an error
/// of the reconcile (the object says what is wrong; the reconcile ran fine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// A one-word, CamelCase reason (bounded: a metric label and an Event reason).
    pub reason: &'static str,
    /// What is wrong, naming the field or object concerned, and what to do about it.
    pub message: String,
}

impl Blocked {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// The result of a check or a lookup: the value, or why the step is blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Ok(T),
    Blocked(Blocked),
}

/// What a step of the reconcile decided.
#[derive(Debug)]
pub enum Step<T> {
    /// Go on with this.
    Go(T),
    /// Stop: write the status (if it changed), then requeue with this action.
    Finish(Action),
    /// Stop without writing anything (the object is gone, or waits for its backoff).
    Return(Action),
}

/// Unwrap a [`Step`] in a driver: go on with the value, or finish the flow (writing its status)
/// or return at once.
macro_rules! step {
    ($flow:ident, $e:expr) => {
        match $e {
            $crate::managed::outcome::Step::Go(v) => v,
            $crate::managed::outcome::Step::Finish(a) => return $flow.finish(a).await,
            $crate::managed::outcome::Step::Return(a) => return Ok(a),
        }
    };
}
pub(crate) use step;

/// Unwrap a [`Step`] inside a step that itself returns `Result<Step<_>, _>`: go on with the value,
/// or pass the stop on to the caller unchanged (as `?` passes an error on).
macro_rules! pass_on {
    ($e:expr) => {
        match $e {
            $crate::managed::outcome::Step::Go(v) => v,
            $crate::managed::outcome::Step::Finish(a) => {
                return Ok($crate::managed::outcome::Step::Finish(a))
            }
            $crate::managed::outcome::Step::Return(a) => {
                return Ok($crate::managed::outcome::Step::Return(a))
            }
        }
    };
}
pub(crate) use pass_on;
