//! Readiness checks on observed composed resources.

use serde_json::Value;

use super::Readiness;
use super::error::{Location, Reason, StepError};
use super::fieldpath::{self, Segment};
use super::gofmt::{Num, num};
use super::transforms::describe;
use crate::api::composition::{ReadinessCheck, ReadinessCheckType};

#[derive(Debug)]
enum Check<'a> {
    MatchString(&'a str, Vec<Segment>, &'a str),
    MatchInteger(&'a str, Vec<Segment>, i64),
    NonEmpty(&'a str, Vec<Segment>),
    MatchCondition(&'a str, &'a str),
    MatchBool(&'a str, Vec<Segment>, bool),
    None,
}

/// A validated readiness check.
#[derive(Debug)]
pub(crate) struct PreparedCheck<'a> {
    index: usize,
    check_type: &'static str,
    check: Check<'a>,
}

/// Validate the checks of one resource.
#[cfg(test)]
pub(crate) fn prepare(
    checks: &[ReadinessCheck],
) -> Result<Vec<PreparedCheck<'_>>, (Location, StepError)> {
    super::first_entry_error(|errs| super::prepare_each(checks, errs, prepare_one))
}

/// Validate one readiness check (the `index`th of its resource).
pub(crate) fn prepare_one(
    index: usize,
    c: &ReadinessCheck,
) -> Result<PreparedCheck<'_>, (Location, StepError)> {
    {
        let check_type = c.type_.as_str();
        let loc = || Location::ReadinessCheck { index, check_type };
        let invalid = |m: String| (loc(), StepError::new(Reason::InvalidComposition, m));
        let path = || -> Result<(&str, Vec<Segment>), (Location, StepError)> {
            let p = c
                .field_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| invalid(format!("fieldPath is required for type {check_type}")))?;
            let segs = fieldpath::parse(p).map_err(|e| {
                (
                    loc(),
                    StepError::new(Reason::InvalidFieldPath, format!("fieldPath: {e}")),
                )
            })?;
            Ok((p, segs))
        };
        let check = match c.type_ {
            ReadinessCheckType::MatchString => {
                let (p, s) = path()?;
                let want = c.match_string.as_deref().ok_or_else(|| {
                    invalid("matchString is required for type MatchString".into())
                })?;
                Check::MatchString(p, s, want)
            }
            ReadinessCheckType::MatchInteger => {
                let (p, s) = path()?;
                let want = c.match_integer.ok_or_else(|| {
                    invalid("matchInteger is required for type MatchInteger".into())
                })?;
                Check::MatchInteger(p, s, want)
            }
            ReadinessCheckType::NonEmpty => {
                let (p, s) = path()?;
                Check::NonEmpty(p, s)
            }
            ReadinessCheckType::MatchTrue => {
                let (p, s) = path()?;
                Check::MatchBool(p, s, true)
            }
            ReadinessCheckType::MatchFalse => {
                let (p, s) = path()?;
                Check::MatchBool(p, s, false)
            }
            ReadinessCheckType::MatchCondition => match &c.match_condition {
                Some(m) => Check::MatchCondition(&m.type_, &m.status),
                None => Check::MatchCondition("Ready", "True"),
            },
            ReadinessCheckType::None => Check::None,
        };
        Ok(PreparedCheck {
            index,
            check_type,
            check,
        })
    }
}

/// The status of condition `type_` (`Unknown` when absent), with its reason and message.
fn condition<'v>(obj: &'v Value, type_: &str) -> (&'v str, &'v str, &'v str) {
    let found = obj
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        });
    match found {
        Some(c) => (
            c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
            c.get("reason").and_then(Value::as_str).unwrap_or(""),
            c.get("message").and_then(Value::as_str).unwrap_or(""),
        ),
        None => ("Unknown", "", ""),
    }
}

/// Whether the object's Ready condition is True (what function-auto-ready looks at).
pub(crate) fn ready_condition_true(obj: &Value) -> bool {
    condition(obj, "Ready").0 == "True"
}

fn not_ready(reason: &str, message: String) -> Readiness {
    Readiness::NotReady {
        reason: reason.to_string(),
        message,
    }
}

enum Fail {
    NotReady(Readiness),
    /// The check cannot run: the field has the wrong type (Crossplane returns an error).
    Error(String),
}

/// Readiness of an observed object. `what` names it in messages (e.g. `Instance my-db`).
///
/// A check on a field of the wrong type (MatchString on a number, MatchInteger on a string or
/// a float, MatchTrue on a string, or a path through a scalar) is an error, as in Crossplane
/// (`ReadinessCheck.IsReady` returns the error of `GetString`/`GetInteger`/`GetBool`), not
/// NotReady. A missing field is NotReady.
pub(crate) fn evaluate(
    checks: &[PreparedCheck<'_>],
    observed: &Value,
    what: &str,
) -> Result<Readiness, StepError> {
    if checks.is_empty() {
        let (status, reason, message) = condition(observed, "Ready");
        if status == "True" {
            return Ok(Readiness::Ready);
        }
        let detail = match (reason.is_empty(), message.is_empty()) {
            (true, true) => String::new(),
            (false, true) => format!(" ({reason})"),
            (true, false) => format!(": {message}"),
            (false, false) => format!(" ({reason}): {message}"),
        };
        return Ok(not_ready(
            "ReadyConditionNotTrue",
            format!("{what}: Ready condition is {status}{detail}"),
        ));
    }
    for c in checks {
        let prefix = format!("{what}: readiness check {} ({})", c.index, c.check_type);
        let get = |segs: &[Segment], path: &str| -> Result<Value, Fail> {
            match fieldpath::get(observed, segs) {
                Ok(v) => Ok(v.clone()),
                Err(e) if e.is_not_found() => Err(Fail::NotReady(not_ready(
                    "ReadinessCheckFailed",
                    format!("{prefix}: {path} is not set"),
                ))),
                Err(e) => Err(Fail::Error(format!("{prefix}: {e}"))),
            }
        };
        let result = match &c.check {
            Check::None => Ok(()),
            Check::NonEmpty(p, s) => get(s, p).map(|_| ()),
            Check::MatchString(p, s, want) => get(s, p).and_then(|v| match v.as_str() {
                Some(got) if got == *want => Ok(()),
                Some(got) => Err(Fail::NotReady(not_ready(
                    "ReadinessCheckFailed",
                    format!("{prefix}: {p} is {got:?}, want {want:?}"),
                ))),
                None => Err(Fail::Error(format!(
                    "{prefix}: {p} is {}, not a string",
                    describe(&v)
                ))),
            }),
            Check::MatchInteger(p, s, want) => get(s, p).and_then(|v| {
                // Crossplane's GetInteger accepts only an int64: a float (even 3.0) is an error.
                let got = match &v {
                    Value::Number(n) => match num(n) {
                        Num::Int(i) => Some(i),
                        Num::Float(_) => None,
                    },
                    _ => None,
                };
                match got {
                    Some(g) if g == *want => Ok(()),
                    Some(g) => Err(Fail::NotReady(not_ready(
                        "ReadinessCheckFailed",
                        format!("{prefix}: {p} is {g}, want {want}"),
                    ))),
                    None => Err(Fail::Error(format!(
                        "{prefix}: {p} is {}, not an integer",
                        describe(&v)
                    ))),
                }
            }),
            Check::MatchBool(p, s, want) => get(s, p).and_then(|v| match v.as_bool() {
                Some(b) if b == *want => Ok(()),
                Some(b) => Err(Fail::NotReady(not_ready(
                    "ReadinessCheckFailed",
                    format!("{prefix}: {p} is {b}, want {want}"),
                ))),
                None => Err(Fail::Error(format!(
                    "{prefix}: {p} is {}, not a boolean",
                    describe(&v)
                ))),
            }),
            Check::MatchCondition(t, want) => {
                let (status, reason, message) = condition(observed, t);
                if status == *want {
                    Ok(())
                } else {
                    let detail = if reason.is_empty() && message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason}: {message})")
                    };
                    Err(Fail::NotReady(not_ready(
                        "ReadinessCheckFailed",
                        format!("{prefix}: condition {t} is {status}, want {want}{detail}"),
                    )))
                }
            }
        };
        match result {
            Ok(()) => {}
            Err(Fail::NotReady(r)) => return Ok(r),
            Err(Fail::Error(m)) => return Err(StepError::new(Reason::ReadinessCheckError, m)),
        }
    }
    Ok(Readiness::Ready)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checks(v: Value) -> Vec<ReadinessCheck> {
        serde_json::from_value(v).unwrap()
    }

    fn eval(c: Value, obj: &Value) -> Readiness {
        let cs = checks(c);
        let p = prepare(&cs).unwrap();
        evaluate(&p, obj, "Instance x").unwrap()
    }

    fn eval_err(c: Value, obj: &Value) -> StepError {
        let cs = checks(c);
        let p = prepare(&cs).unwrap();
        evaluate(&p, obj, "Instance x").unwrap_err()
    }

    fn is_ready(r: &Readiness) -> bool {
        matches!(r, Readiness::Ready)
    }

    #[test]
    fn default_is_ready_condition_true() {
        let ready = json!({"status": {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "True"}]}});
        let creating = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Creating", "message": "RDS is creating"}]}});
        assert!(is_ready(&eval(json!([]), &ready)));
        let r = eval(json!([]), &creating);
        assert_eq!(
            r,
            Readiness::NotReady {
                reason: "ReadyConditionNotTrue".into(),
                message: "Instance x: Ready condition is False (Creating): RDS is creating".into()
            }
        );
        assert!(!is_ready(&eval(json!([]), &json!({}))));
    }

    #[test]
    fn every_check_type() {
        let obj = json!({"status": {
            "atProvider": {"state": "available", "count": 3, "float": 3.0, "enabled": true, "off": false, "empty": ""},
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]
        }});
        let table: Vec<(Value, bool)> = vec![
            (
                json!([{"type": "MatchString", "fieldPath": "status.atProvider.state", "matchString": "available"}]),
                true,
            ),
            (
                json!([{"type": "MatchString", "fieldPath": "status.atProvider.state", "matchString": "creating"}]),
                false,
            ),
            (
                json!([{"type": "MatchString", "fieldPath": "status.atProvider.missing", "matchString": "x"}]),
                false,
            ),
            (
                json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.count", "matchInteger": 3}]),
                true,
            ),
            (
                json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.count", "matchInteger": 4}]),
                false,
            ),
            (
                json!([{"type": "NonEmpty", "fieldPath": "status.atProvider.empty"}]),
                true,
            ),
            (
                json!([{"type": "NonEmpty", "fieldPath": "status.atProvider.missing"}]),
                false,
            ),
            (
                json!([{"type": "MatchTrue", "fieldPath": "status.atProvider.enabled"}]),
                true,
            ),
            (
                json!([{"type": "MatchTrue", "fieldPath": "status.atProvider.off"}]),
                false,
            ),
            (
                json!([{"type": "MatchTrue", "fieldPath": "status.atProvider.missing"}]),
                false,
            ),
            (
                json!([{"type": "MatchFalse", "fieldPath": "status.atProvider.off"}]),
                true,
            ),
            (
                json!([{"type": "MatchFalse", "fieldPath": "status.atProvider.enabled"}]),
                false,
            ),
            (
                json!([{"type": "MatchCondition", "matchCondition": {"type": "Ready", "status": "True"}}]),
                true,
            ),
            (
                json!([{"type": "MatchCondition", "matchCondition": {"type": "Synced", "status": "True"}}]),
                false,
            ),
            (
                json!([{"type": "MatchCondition", "matchCondition": {"type": "Other", "status": "Unknown"}}]),
                true,
            ),
            (json!([{"type": "MatchCondition"}]), true),
            (json!([{"type": "None"}]), true),
            // All must pass.
            (
                json!([{"type": "None"}, {"type": "MatchFalse", "fieldPath": "status.atProvider.enabled"}]),
                false,
            ),
        ];
        for (c, want) in table {
            let r = eval(c.clone(), &obj);
            assert_eq!(is_ready(&r), want, "{c} -> {r:?}");
            if let Readiness::NotReady { reason, message } = r {
                assert_eq!(reason, "ReadinessCheckFailed");
                assert!(
                    message.starts_with("Instance x: readiness check"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn wrong_typed_fields_are_errors_like_crossplane() {
        // Crossplane (composite/ready.go ReadinessCheck.IsReady): GetString, GetInteger and
        // GetBool on a field of another type return an error, which fails the reconcile
        // ("cannot check whether composed resource ... is ready"); only a missing field is
        // "not ready". GetInteger accepts only an int64, so 3.0 is an error too.
        let obj = json!({"status": {"atProvider": {"state": "available", "count": 3, "float": 3.0, "s": "x"}}});
        for c in [
            json!([{"type": "MatchString", "fieldPath": "status.atProvider.count", "matchString": "3"}]),
            json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.state", "matchInteger": 4}]),
            json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.float", "matchInteger": 3}]),
            json!([{"type": "MatchTrue", "fieldPath": "status.atProvider.state"}]),
            json!([{"type": "MatchFalse", "fieldPath": "status.atProvider.count"}]),
            json!([{"type": "NonEmpty", "fieldPath": "status.atProvider.s.deeper"}]),
        ] {
            let e = eval_err(c.clone(), &obj);
            assert_eq!(e.kind, Reason::ReadinessCheckError, "{c}");
            assert!(
                e.message.starts_with("Instance x: readiness check 0"),
                "{}",
                e.message
            );
        }
        // matchInteger 0 is a real value (Crossplane v1 treats 0 as unset and refuses the
        // check; paved, like function-patch-and-transform's *int64, matches 0).
        let zero = json!({"status": {"atProvider": {"n": 0}}});
        assert!(is_ready(&eval(
            json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.n", "matchInteger": 0}]),
            &zero
        )));
        assert!(!is_ready(&eval(
            json!([{"type": "MatchInteger", "fieldPath": "status.atProvider.n", "matchInteger": 0}]),
            &json!({"status": {"atProvider": {"n": 1}}})
        )));
    }

    #[test]
    fn invalid_checks() {
        for bad in [
            json!([{"type": "MatchString", "matchString": "x"}]),
            json!([{"type": "MatchString", "fieldPath": "a"}]),
            json!([{"type": "MatchInteger", "fieldPath": "a"}]),
            json!([{"type": "NonEmpty"}]),
            json!([{"type": "MatchTrue", "fieldPath": ""}]),
        ] {
            let cs = checks(bad.clone());
            let (_, e) = prepare(&cs).unwrap_err();
            assert_eq!(e.kind, Reason::InvalidComposition, "{bad}");
        }
        let cs = checks(json!([{"type": "NonEmpty", "fieldPath": "a..b"}]));
        let (loc, e) = prepare(&cs).unwrap_err();
        assert_eq!(e.kind, Reason::InvalidFieldPath);
        assert_eq!(loc.to_string(), "readinessChecks 0 (NonEmpty)");
    }
}
