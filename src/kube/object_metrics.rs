//! The fleet gauge `paved_objects{kind, ready, synced}`: how many objects of each kind paved
//! serves (the managed kinds and the claim kinds, built-in and XRD-defined) are in each
//! Ready/Synced state. `True`, `False` or `Unknown` (no such condition yet counts as
//! `Unknown`). Every served kind reports all nine combinations, zeros included, so a series
//! never vanishes when its last object changes state.
//!
//! Computed when `/metrics` is scraped, from the watch caches the controllers already fill: no
//! watch, LIST or GET of its own, and nothing to keep in step. Why not counts updated as the
//! reconcilers write conditions: a count kept that way has to see every deletion, every write by
//! someone else (a status restored from a backup, a second paved during a rollout) and every
//! relist to stay right, and drifts for good after one missed transition; the caches are the
//! truth paved acts on already. A scrape walks each cache once (a few thousand objects: well
//! under a millisecond per thousand), far less often than reconciles run.
//!
//! The controllers add one source each ([`ObjectStates::add`]) when they start and remove it
//! when they stop, so a stopped controller's stale cache is not reported.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::api::common::{Condition, ConditionStatus, READY, SYNCED};

/// The metric's name.
pub const NAME: &str = "paved_objects";

/// A condition's status as a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    True,
    False,
    Unknown,
}

impl State {
    pub const ALL: [State; 3] = [State::True, State::False, State::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            State::True => "True",
            State::False => "False",
            State::Unknown => "Unknown",
        }
    }

    /// A condition status as Kubernetes spells it; anything else is `Unknown`.
    pub fn parse(status: &str) -> State {
        match status {
            "True" => State::True,
            "False" => State::False,
            _ => State::Unknown,
        }
    }

    fn of(status: ConditionStatus) -> State {
        match status {
            ConditionStatus::True => State::True,
            ConditionStatus::False => State::False,
            ConditionStatus::Unknown => State::Unknown,
        }
    }
}

/// (Ready, Synced) of typed conditions (a managed object's status).
pub fn states_of(conditions: &[Condition]) -> (State, State) {
    let of = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .map_or(State::Unknown, |c| State::of(c.status))
    };
    (of(READY), of(SYNCED))
}

/// (Ready, Synced) of an object's `status` as JSON (a claim, cached as a `DynamicObject`).
pub fn states_of_json(status: &serde_json::Value) -> (State, State) {
    let conditions = status
        .get("conditions")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of = |t: &str| {
        conditions
            .iter()
            .find(|c| c.get("type").and_then(serde_json::Value::as_str) == Some(t))
            .and_then(|c| c.get("status").and_then(serde_json::Value::as_str))
            .map_or(State::Unknown, State::parse)
    };
    (of(READY), of(SYNCED))
}

/// The labels of one `paved_objects` sample.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// The object's kind (`Instance`, ..., `PostgreSQLInstance`, an XRD's claim kind).
    pub kind: String,
    pub ready: &'static str,
    pub synced: &'static str,
}

/// Objects counted by kind and state, for one scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<String, BTreeMap<(State, State), u64>>,
}

impl Tally {
    /// A kind that is served, with or without objects (its nine samples are reported).
    pub fn kind(&mut self, kind: &str) {
        if !self.counts.contains_key(kind) {
            self.counts.insert(kind.to_string(), BTreeMap::new());
        }
    }

    /// One object of `kind` in this state.
    pub fn count(&mut self, kind: &str, (ready, synced): (State, State)) {
        self.kind(kind);
        if let Some(by_state) = self.counts.get_mut(kind) {
            *by_state.entry((ready, synced)).or_insert(0) += 1;
        }
    }

    /// Every sample: each kind counted, in each of the nine states (zeros included), in order.
    pub fn samples(&self) -> Vec<(ObjectLabels, u64)> {
        let mut out = Vec::new();
        for (kind, by_state) in &self.counts {
            for ready in State::ALL {
                for synced in State::ALL {
                    out.push((
                        ObjectLabels {
                            kind: kind.clone(),
                            ready: ready.as_str(),
                            synced: synced.as_str(),
                        },
                        by_state.get(&(ready, synced)).copied().unwrap_or(0),
                    ));
                }
            }
        }
        out
    }
}

/// What a controller adds: count its cached objects into the tally.
type Source = Box<dyn Fn(&mut Tally) + Send + Sync>;

/// The sources of `paved_objects`, and its collector. Cheap to clone (one shared set).
#[derive(Clone, Default)]
pub struct ObjectStates {
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
}

impl std::fmt::Debug for ObjectStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .sources
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("ObjectStates")
            .field("sources", &names)
            .finish()
    }
}

impl ObjectStates {
    /// Register the collector of `paved_objects`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }

    /// Add (or replace) the source `name`.
    pub fn add(
        &self,
        name: impl Into<String>,
        source: impl Fn(&mut Tally) + Send + Sync + 'static,
    ) {
        if let Ok(mut s) = self.sources.lock() {
            s.insert(name.into(), Box::new(source));
        }
    }

    /// Remove the source `name` (its controller stopped).
    pub fn remove(&self, name: &str) {
        if let Ok(mut s) = self.sources.lock() {
            s.remove(name);
        }
    }

    /// What every source counts now.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        if let Ok(sources) = self.sources.lock() {
            for source in sources.values() {
                source(&mut t);
            }
        }
        t
    }
}

impl Collector for ObjectStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = self.tally().samples();
        if samples.is_empty() {
            return Ok(());
        }
        let gauge = ConstGauge::new(0i64);
        let mut metric = encoder.encode_descriptor(
            NAME,
            "Objects paved serves (managed kinds and claim kinds), by kind and Ready/Synced condition status, from its watch caches",
            None,
            gauge.metric_type(),
        )?;
        for (labels, n) in samples {
            let g = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            g.encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use State::*;
    use serde_json::json;

    fn cond(t: &str, status: ConditionStatus) -> Condition {
        Condition::new(t, status, "R", "", None)
    }

    #[test]
    fn states_from_typed_conditions() {
        let cases = [
            (vec![], (Unknown, Unknown)),
            (
                vec![
                    cond(READY, ConditionStatus::True),
                    cond(SYNCED, ConditionStatus::True),
                ],
                (True, True),
            ),
            (vec![cond(SYNCED, ConditionStatus::False)], (Unknown, False)),
            (
                vec![
                    cond("Other", ConditionStatus::False),
                    cond(READY, ConditionStatus::False),
                    cond(SYNCED, ConditionStatus::Unknown),
                ],
                (False, Unknown),
            ),
        ];
        for (i, (conds, want)) in cases.into_iter().enumerate() {
            assert_eq!(states_of(&conds), want, "case {i}");
        }
    }

    #[test]
    fn states_from_json_status() {
        let cases = [
            (json!(null), (Unknown, Unknown)),
            (json!({}), (Unknown, Unknown)),
            (json!({"conditions": "not a list"}), (Unknown, Unknown)),
            (
                json!({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}),
                (True, False),
            ),
            (
                json!({"conditions": [{"type": "Ready", "status": "maybe"}, {"type": "Synced"}]}),
                (Unknown, Unknown),
            ),
        ];
        for (i, (status, want)) in cases.into_iter().enumerate() {
            assert_eq!(states_of_json(&status), want, "case {i}");
        }
    }

    #[test]
    fn every_served_kind_reports_nine_states() {
        let mut t = Tally::default();
        t.kind("SubnetGroup");
        t.count("Instance", (True, True));
        t.count("Instance", (True, True));
        t.count("Instance", (False, False));
        let samples = t.samples();
        assert_eq!(samples.len(), 18);
        let get = |kind: &str, r: &str, s: &str| {
            samples
                .iter()
                .find(|(l, _)| l.kind == kind && l.ready == r && l.synced == s)
                .map(|(_, n)| *n)
        };
        assert_eq!(get("Instance", "True", "True"), Some(2));
        assert_eq!(get("Instance", "False", "False"), Some(1));
        assert_eq!(get("Instance", "Unknown", "True"), Some(0));
        assert_eq!(get("SubnetGroup", "Unknown", "Unknown"), Some(0));
        let total: u64 = samples.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn scraped_from_the_sources_present() {
        let states = ObjectStates::default();
        let mut registry = Registry::default();
        states.register(&mut registry);
        let text = |r: &Registry| {
            let mut s = String::new();
            prometheus_client::encoding::text::encode(&mut s, r).unwrap();
            s
        };
        assert!(!text(&registry).contains(NAME), "no source, no family");
        states.add("claims", |t: &mut Tally| {
            t.count("PostgreSQLInstance", (False, True));
            t.count("PostgreSQLInstance", (False, True));
        });
        states.add("managed/Instance", |t: &mut Tally| t.kind("Instance"));
        let out = text(&registry);
        assert!(out.contains("# TYPE paved_objects gauge"), "{out}");
        assert!(
            out.contains(
                r#"paved_objects{kind="PostgreSQLInstance",ready="False",synced="True"} 2"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"paved_objects{kind="Instance",ready="True",synced="True"} 0"#),
            "{out}"
        );
        states.remove("claims");
        assert!(!text(&registry).contains("PostgreSQLInstance"));
    }
}
