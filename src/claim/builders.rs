//! Builders for the table tests of the pure steps: rendered and observed objects, statuses.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use serde_json::{Map, Value, json};

use crate::api::claim::{ConnectionDetailsStatus, PostgreSQLInstanceStatus};
use crate::api::common::{Condition, ConditionStatus, NameReference, READY, SYNCED};
use crate::compose::{ComposedResource, ObservedResource, Readiness};

pub const NS: &str = "team-a";
pub const UID: &str = "claim-uid";
pub const INSTANCE: &str = "rds.aws.upbound.io/v1beta1";

/// The controller reference to claim `db` with [`UID`].
pub fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "database.example.com/v1alpha1".into(),
        kind: "PostgreSQLInstance".into(),
        name: "db".into(),
        uid: UID.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What the engine renders for resource `resource` of claim `db`: `apiVersion`/`kind`, the
/// name `db-<resource>` in [`NS`], and `spec`.
pub fn rendered(resource: &str, api_version: &str, kind: &str, spec: Value) -> ComposedResource {
    ComposedResource {
        resource_name: resource.into(),
        index: 0,
        step: None,
        desired: json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": format!("db-{resource}"), "namespace": NS,
                "labels": {"crossplane.io/claim-name": "db"}},
            "spec": spec,
        }),
        readiness: Readiness::NotObserved,
        connection_details: BTreeMap::new(),
    }
}

/// The managedFields `fieldsV1` of an apply of `v`: every field, lists atomic.
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, c)| (format!("f:{k}"), fields_v1(c)))
                .collect::<Map<_, _>>(),
        ),
        _ => json!({}),
    }
}

/// An observed object as the API server would hold `applied` after paved applied it: its
/// metadata gains uid, resourceVersion and paved's managedFields entry.
pub fn observed(applied: &Value) -> ObservedResource {
    let mut object = applied.clone();
    let fields = fields_v1(applied);
    object["metadata"]["uid"] = json!("object-uid");
    object["metadata"]["resourceVersion"] = json!("7");
    object["metadata"]["managedFields"] = json!([{
        "manager": "paved", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields,
    }]);
    ObservedResource {
        object,
        connection_secret: BTreeMap::new(),
    }
}

/// A condition at time zero.
pub fn cond(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    let mut c = Condition::new(
        type_,
        ConditionStatus::from_bool(status),
        reason,
        message,
        Some(1),
    );
    c.last_transition_time = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    c
}

/// A claim status with Synced and Ready as given (`None`: absent).
pub fn status(
    synced: Option<(bool, &str, &str)>,
    ready: Option<(bool, &str, &str)>,
) -> PostgreSQLInstanceStatus {
    let mut conditions = Vec::new();
    if let Some((ok, reason, msg)) = synced {
        conditions.push(cond(SYNCED, ok, reason, msg));
    }
    if let Some((ok, reason, msg)) = ready {
        conditions.push(cond(READY, ok, reason, msg));
    }
    PostgreSQLInstanceStatus {
        conditions,
        ..Default::default()
    }
}

/// `s` composed with Composition `name`.
pub fn composed_with(mut s: PostgreSQLInstanceStatus, name: &str) -> PostgreSQLInstanceStatus {
    s.composition_ref = Some(NameReference { name: name.into() });
    s
}

/// `s` with its connection Secret published.
pub fn published(mut s: PostgreSQLInstanceStatus) -> PostgreSQLInstanceStatus {
    s.connection_details = Some(ConnectionDetailsStatus {
        last_published_time: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
    });
    s
}
