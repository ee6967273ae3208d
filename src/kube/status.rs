//! Comparing statuses the way a status write would change them.

use crate::api::common::Condition;

/// The conditions without their transition times, ordered by type: what a status write would
/// change, semantically (a transition time's precision may differ after a round trip).
pub fn semantic_conditions(conditions: &mut [Condition]) {
    for c in conditions.iter_mut() {
        c.last_transition_time = None;
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Whether two statuses say the same thing: equal, or equal once their conditions (reached
/// through `conditions`) are compared by [`semantic_conditions`]. Compare before writing.
pub fn same<S: Clone + PartialEq>(
    a: &S,
    b: &S,
    conditions: impl Fn(&mut S) -> &mut Vec<Condition>,
) -> bool {
    if a == b {
        return true;
    }
    let norm = |s: &S| {
        let mut s = s.clone();
        semantic_conditions(conditions(&mut s));
        s
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::ConditionStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[derive(Clone, PartialEq, Debug, Default)]
    struct S {
        conditions: Vec<Condition>,
        other: u32,
    }

    fn c(t: &str, ok: bool, at: Option<i64>) -> Condition {
        let mut c = Condition::new(t, ConditionStatus::from_bool(ok), "R", "m", Some(1));
        c.last_transition_time =
            at.map(|s| Time(jiff::Timestamp::from_second(s).unwrap_or_default()));
        c
    }

    #[test]
    fn same_ignores_times_and_order_only() {
        let base = S {
            conditions: vec![c("Ready", true, Some(1)), c("Synced", true, Some(1))],
            other: 1,
        };
        let cases = [
            (
                vec![c("Ready", true, Some(2)), c("Synced", true, None)],
                1,
                true,
            ),
            (
                vec![c("Synced", true, Some(1)), c("Ready", true, Some(1))],
                1,
                true,
            ),
            (
                vec![c("Ready", false, Some(1)), c("Synced", true, Some(1))],
                1,
                false,
            ),
            (vec![c("Ready", true, Some(1))], 1, false),
            (base.conditions.clone(), 2, false),
        ];
        for (conditions, other, expected) in cases {
            let s = S { conditions, other };
            assert_eq!(same(&base, &s, |s| &mut s.conditions), expected, "{s:?}");
        }
    }
}
