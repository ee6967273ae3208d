//! Conversion of `rds.aws.upbound.io` Instances between the versions paved serves, and the
//! webhook the API server calls for it (`paved run --conversion-webhook-addr`).
//!
//! The versions differ only in the singleton blocks ([`SINGLETON_BLOCKS`]): one-element lists in
//! v1beta1 and v1beta2, objects in v1beta3. Converting moves each between the two shapes, in
//! `spec.forProvider`, `spec.initProvider` and `status.atProvider`; everything else is kept as
//! it is (forProvider preserves unknown fields in every version, so v1beta1's `name` and
//! `securityGroupNames` survive a round trip through v1beta3). [`convert`] is pure; [`serve`] is
//! the HTTPS edge.

pub mod certs;
pub mod server;

use serde_json::Value;

use crate::api::instance::{BlockShape, SINGLETON_BLOCKS, block_shape};

pub use server::{Tls, TlsFiles, serve};

/// Why an object cannot be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConversionError {
    #[error("{0}: not a version of Instance paved serves (v1beta1, v1beta2, v1beta3)")]
    UnknownVersion(String),
    #[error("the object has no apiVersion")]
    NoApiVersion,
    #[error(
        "{path} has {len} elements; it is a single block (an object in v1beta3), so it holds at most one"
    )]
    TooManyElements { path: String, len: usize },
    #[error("{path} is {found}; expected {expected}")]
    WrongType {
        path: String,
        found: &'static str,
        expected: &'static str,
    },
}

fn version_of(api_version: &str) -> &str {
    api_version.rsplit('/').next().unwrap_or(api_version)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Convert one Instance to `desired_api_version` (`<group>/<version>`). The group is taken from
/// `desired_api_version` as it is; only the version decides the shape.
pub fn convert(mut object: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let from_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|s| version_of(s).to_string())
        .ok_or(ConversionError::NoApiVersion)?;
    let to_version = version_of(desired_api_version);
    let from = block_shape(&from_version)
        .ok_or_else(|| ConversionError::UnknownVersion(from_version.clone()))?;
    let to = block_shape(to_version)
        .ok_or_else(|| ConversionError::UnknownVersion(to_version.to_string()))?;
    if from != to {
        for (outer, inner) in [
            ("spec", "forProvider"),
            ("spec", "initProvider"),
            ("status", "atProvider"),
        ] {
            let Some(params) = object
                .get_mut(outer)
                .and_then(|o| o.get_mut(inner))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for block in SINGLETON_BLOCKS {
                let path = format!("{outer}.{inner}.{block}");
                let Some(value) = params.remove(block) else {
                    continue;
                };
                if let Some(converted) = reshape(value, to, &path)? {
                    params.insert(block.to_string(), converted);
                }
            }
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.insert(
            "apiVersion".to_string(),
            Value::String(desired_api_version.to_string()),
        );
    }
    Ok(object)
}

/// One block into `to`'s shape; `None` drops it (an empty list has no object form).
fn reshape(value: Value, to: BlockShape, path: &str) -> Result<Option<Value>, ConversionError> {
    match (to, value) {
        (BlockShape::Object, Value::Array(mut items)) => match items.len() {
            0 => Ok(None),
            1 => Ok(items.pop()),
            len => Err(ConversionError::TooManyElements {
                path: path.to_string(),
                len,
            }),
        },
        (BlockShape::List, v @ Value::Object(_)) => Ok(Some(Value::Array(vec![v]))),
        (_, Value::Null) => Ok(None),
        (to, other) => Err(ConversionError::WrongType {
            path: path.to_string(),
            found: type_name(&other),
            expected: match to {
                BlockShape::Object => "a list of at most one object",
                BlockShape::List => "an object",
            },
        }),
    }
}

/// Answer a ConversionReview (`apiextensions.k8s.io/v1`): every object converted, or a failure
/// naming the object and the field when one cannot be.
pub fn review(review: Value) -> Value {
    let request = review.get("request").cloned().unwrap_or(Value::Null);
    let uid = request
        .get("uid")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let desired = request
        .get("desiredAPIVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let objects = request
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut converted = Vec::with_capacity(objects.len());
    let mut failure = None;
    for object in objects {
        let name = format!(
            "{}/{}",
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        match convert(object, &desired) {
            Ok(o) => converted.push(o),
            Err(e) => {
                failure = Some(format!("converting Instance {name} to {desired}: {e}"));
                break;
            }
        }
    }
    let result = match &failure {
        None => serde_json::json!({"status": "Success"}),
        Some(message) => serde_json::json!({"status": "Failure", "message": message}),
    };
    let converted = if failure.is_some() {
        Vec::new()
    } else {
        converted
    };
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {"uid": uid, "convertedObjects": converted, "result": result}
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v1beta1() -> Value {
        json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {"name": "db", "namespace": "team"},
            "spec": {"forProvider": {
                "region": "eu-west-1",
                "name": "legacy",
                "securityGroupNames": ["a"],
                "blueGreenUpdate": [{"enabled": true}],
                "restoreToPointInTime": [{"useLatestRestorableTime": true, "sourceDbInstanceIdentifier": "src"}],
                "s3Import": []
            }}
        })
    }

    #[test]
    fn list_blocks_become_objects_and_back() {
        let v3 = convert(v1beta1(), "rds.aws.upbound.io/v1beta3").unwrap();
        assert_eq!(v3["apiVersion"], "rds.aws.upbound.io/v1beta3");
        let fp = &v3["spec"]["forProvider"];
        assert_eq!(fp["blueGreenUpdate"], json!({"enabled": true}));
        assert_eq!(
            fp["restoreToPointInTime"]["sourceDbInstanceIdentifier"],
            "src"
        );
        assert!(
            fp.get("s3Import").is_none(),
            "an empty list has no object form"
        );
        assert_eq!(fp["name"], "legacy", "v1beta1-only fields are kept");
        let back = convert(v3, "rds.aws.upbound.io/v1beta1").unwrap();
        let mut want = v1beta1();
        want["spec"]["forProvider"]
            .as_object_mut()
            .unwrap()
            .remove("s3Import");
        assert_eq!(back, want);
    }

    #[test]
    fn same_shape_only_changes_api_version() {
        let v2 = convert(v1beta1(), "rds.aws.upbound.io/v1beta2").unwrap();
        let mut want = v1beta1();
        want["apiVersion"] = json!("rds.aws.upbound.io/v1beta2");
        assert_eq!(v2, want);
    }

    #[test]
    fn an_object_without_blocks_is_unchanged_but_for_api_version() {
        let o = json!({"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "spec": {"forProvider": {"region": "eu-west-1", "allocatedStorage": 20}}});
        let v3 = convert(o.clone(), "rds.aws.upbound.io/v1beta3").unwrap();
        let mut want = o;
        want["apiVersion"] = json!("rds.aws.upbound.io/v1beta3");
        assert_eq!(v3, want);
    }

    #[test]
    fn status_and_init_provider_are_converted() {
        let o = json!({"apiVersion": "rds.aws.upbound.io/v1beta3", "kind": "Instance",
            "spec": {"forProvider": {"region": "r"}, "initProvider": {"s3Import": {"bucketName": "b"}}},
            "status": {"atProvider": {"blueGreenUpdate": {"enabled": false}}}});
        let v1 = convert(o, "rds.aws.upbound.io/v1beta1").unwrap();
        assert_eq!(
            v1["spec"]["initProvider"]["s3Import"],
            json!([{"bucketName": "b"}])
        );
        assert_eq!(
            v1["status"]["atProvider"]["blueGreenUpdate"],
            json!([{"enabled": false}])
        );
    }

    #[test]
    fn two_elements_cannot_become_one_object() {
        let mut o = v1beta1();
        o["spec"]["forProvider"]["blueGreenUpdate"] =
            json!([{"enabled": true}, {"enabled": false}]);
        let e = convert(o, "rds.aws.upbound.io/v1beta3").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.forProvider.blueGreenUpdate has 2 elements; it is a single block (an object in v1beta3), so it holds at most one"
        );
    }

    #[test]
    fn unknown_versions_are_refused() {
        assert_eq!(
            convert(v1beta1(), "rds.aws.upbound.io/v1"),
            Err(ConversionError::UnknownVersion("v1".into()))
        );
    }

    #[test]
    fn review_answers_with_uid_and_every_object_or_a_failure() {
        let r = review(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u1", "desiredAPIVersion": "rds.aws.upbound.io/v1beta3",
                "objects": [v1beta1(), v1beta1()]}}),
        );
        assert_eq!(r["response"]["uid"], "u1");
        assert_eq!(r["response"]["result"]["status"], "Success");
        assert_eq!(
            r["response"]["convertedObjects"].as_array().unwrap().len(),
            2
        );
        let mut bad = v1beta1();
        bad["spec"]["forProvider"]["s3Import"] = json!("x");
        let r = review(
            json!({"request": {"uid": "u2", "desiredAPIVersion": "rds.aws.upbound.io/v1beta3",
                "objects": [bad]}}),
        );
        assert_eq!(r["response"]["result"]["status"], "Failure");
        assert_eq!(
            r["response"]["result"]["message"],
            "converting Instance team/db to rds.aws.upbound.io/v1beta3: spec.forProvider.s3Import is a string; expected a list of at most one object"
        );
    }
}
