//! Connection details: which values of a composed resource end up in the claim's Secret.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Location, Reason, StepError};
use super::fieldpath::{self, Segment};
use super::gofmt::go_json;
use crate::api::composition::{ConnectionDetail, ConnectionDetailType};

#[derive(Debug)]
enum Source<'a> {
    SecretKey(&'a str),
    FieldPath(Vec<Segment>),
    Value(&'a str),
}

/// A validated connection detail.
#[derive(Debug)]
pub(crate) struct PreparedDetail<'a> {
    name: &'a str,
    source: Source<'a>,
}

/// Crossplane's type inference: an explicit type, else the field that is set (value, then
/// fromConnectionSecretKey, then fromFieldPath), else FromConnectionSecretKey.
fn detail_type(d: &ConnectionDetail) -> ConnectionDetailType {
    match d {
        ConnectionDetail { type_: Some(t), .. } => *t,
        ConnectionDetail { value: Some(_), .. } => ConnectionDetailType::FromValue,
        ConnectionDetail {
            from_connection_secret_key: Some(_),
            ..
        } => ConnectionDetailType::FromConnectionSecretKey,
        ConnectionDetail {
            from_field_path: Some(_),
            ..
        } => ConnectionDetailType::FromFieldPath,
        _ => ConnectionDetailType::FromConnectionSecretKey,
    }
}

/// Validate the connection details of one resource.
#[cfg(test)]
pub(crate) fn prepare(
    details: &[ConnectionDetail],
) -> Result<Vec<PreparedDetail<'_>>, (Location, StepError)> {
    super::first_entry_error(|errs| super::prepare_each(details, errs, prepare_one))
}

/// Validate one connection detail (the `index`th of its resource).
pub(crate) fn prepare_one(
    index: usize,
    d: &ConnectionDetail,
) -> Result<PreparedDetail<'_>, (Location, StepError)> {
    {
        let loc = || Location::ConnectionDetail { index };
        let invalid = |m: String| (loc(), StepError::new(Reason::InvalidComposition, m));
        let ty = detail_type(d);
        let source = match ty {
            ConnectionDetailType::FromValue => Source::Value(
                d.value
                    .as_deref()
                    .ok_or_else(|| invalid("value is required for type FromValue".into()))?,
            ),
            ConnectionDetailType::FromConnectionSecretKey => {
                Source::SecretKey(d.from_connection_secret_key.as_deref().ok_or_else(|| {
                    invalid(
                        "fromConnectionSecretKey is required for type FromConnectionSecretKey"
                            .into(),
                    )
                })?)
            }
            ConnectionDetailType::FromFieldPath => {
                let p = d
                    .from_field_path
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        invalid("fromFieldPath is required for type FromFieldPath".into())
                    })?;
                let segs = fieldpath::parse(p).map_err(|e| {
                    (
                        loc(),
                        StepError::new(Reason::InvalidFieldPath, format!("fromFieldPath: {e}")),
                    )
                })?;
                Source::FieldPath(segs)
            }
        };
        let name = match (d.name.as_deref(), &source) {
            (Some(n), _) if !n.is_empty() => n,
            (_, Source::SecretKey(k)) => k,
            _ => {
                return Err(invalid(format!(
                    "name is required for type {}",
                    ty.as_str()
                )));
            }
        };
        Ok(PreparedDetail { name, source })
    }
}

/// Extract the details of one resource. With no declared details, every key of its connection
/// Secret is published (paved's deliberate difference from Crossplane). Missing secret keys and
/// missing fields are skipped: they may appear later.
pub(crate) fn extract(
    details: &[PreparedDetail<'_>],
    object: Option<&Value>,
    secret: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    if details.is_empty() {
        return secret.clone();
    }
    let mut out = BTreeMap::new();
    for d in details {
        let value = match &d.source {
            Source::Value(v) => Some(v.as_bytes().to_vec()),
            Source::SecretKey(k) => secret.get(*k).cloned(),
            Source::FieldPath(segs) => {
                object
                    .and_then(|o| fieldpath::get(o, segs).ok())
                    .map(|v| match v {
                        Value::String(s) => s.as_bytes().to_vec(),
                        other => go_json(other).into_bytes(),
                    })
            }
        };
        if let Some(v) = value {
            out.insert(d.name.to_string(), v);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(v: Value) -> Vec<ConnectionDetail> {
        serde_json::from_value(v).unwrap()
    }

    fn secret() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("username".to_string(), b"admin".to_vec()),
            ("password".to_string(), b"s3cret".to_vec()),
        ])
    }

    fn s(v: &str) -> Vec<u8> {
        v.as_bytes().to_vec()
    }

    #[test]
    fn types_inferred_from_the_field_set() {
        let ds = details(json!([
            {"fromConnectionSecretKey": "username"},
            {"name": "pw", "fromConnectionSecretKey": "password"},
            {"name": "host", "fromFieldPath": "status.atProvider.address"},
            {"name": "port", "fromFieldPath": "status.atProvider.port"},
            {"name": "tags", "fromFieldPath": "status.atProvider.tags"},
            {"name": "engine", "value": "postgres"},
            {"name": "explicit", "type": "FromValue", "value": "v"},
            {"name": "missing-key", "fromConnectionSecretKey": "nope"},
            {"name": "missing-field", "fromFieldPath": "status.nope"}
        ]));
        let p = prepare(&ds).unwrap();
        let obj = json!({"status": {"atProvider": {"address": "db.example.com", "port": 5432, "tags": {"b": 1, "a": "<x>"}}}});
        let got = extract(&p, Some(&obj), &secret());
        let want = BTreeMap::from([
            ("username".to_string(), s("admin")),
            ("pw".to_string(), s("s3cret")),
            ("host".to_string(), s("db.example.com")),
            ("port".to_string(), s("5432")),
            ("tags".to_string(), s(r#"{"a":"\u003cx\u003e","b":1}"#)),
            ("engine".to_string(), s("postgres")),
            ("explicit".to_string(), s("v")),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn no_declared_details_propagates_the_whole_secret() {
        let p = prepare(&[]).unwrap();
        assert_eq!(extract(&p, None, &secret()), secret());
        assert!(extract(&p, None, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn invalid_details() {
        for bad in [
            json!([{"name": "x"}]),
            json!([{"fromFieldPath": "status.a"}]),
            json!([{"value": "v"}]),
            json!([{"type": "FromFieldPath", "name": "x"}]),
            json!([{"type": "FromValue", "name": "x"}]),
            json!([{"name": "x", "fromFieldPath": ""}]),
        ] {
            let ds = details(bad.clone());
            let (_, e) = prepare(&ds).unwrap_err();
            assert_eq!(e.kind, Reason::InvalidComposition, "{bad}");
        }
        let ds = details(json!([{"name": "x", "fromFieldPath": "a[b"}]));
        assert_eq!(prepare(&ds).unwrap_err().1.kind, Reason::InvalidFieldPath);
    }
}
