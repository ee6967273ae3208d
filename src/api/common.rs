//! Types shared by several APIs: conditions, references, and schema helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Status of a condition, as Kubernetes spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

impl ConditionStatus {
    pub fn from_bool(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// A condition in the Crossplane shape: `Synced` says whether the last reconcile succeeded,
/// `Ready` whether the resource can be used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Synced` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A one-word, CamelCase reason, stable enough to alert on (for example `ReconcileError`).
    pub reason: String,
    /// What happened, in words, naming the object and field concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

pub const SYNCED: &str = "Synced";
pub const READY: &str = "Ready";

impl Condition {
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        observed_generation: Option<i64>,
    ) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: None,
            observed_generation,
        }
    }

    /// Equal apart from the transition time.
    pub fn same_as(&self, other: &Condition) -> bool {
        self.type_ == other.type_
            && self.status == other.status
            && self.reason == other.reason
            && self.message == other.message
            && self.observed_generation == other.observed_generation
    }
}

/// Merge `new` into `conditions`: a condition whose status is unchanged keeps its
/// `lastTransitionTime`, so that rewriting the same conditions is a no-op; a changed one
/// gets `now`. Returns true when anything other than nothing changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: &Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.same_as(&new) {
                return false;
            }
            new.last_transition_time = if old.status == new.status {
                old.last_transition_time
                    .clone()
                    .or_else(|| Some(now.clone()))
            } else {
                Some(now.clone())
            };
            *old = new;
            true
        }
        None => {
            new.last_transition_time = Some(now.clone());
            conditions.push(new);
            true
        }
    }
}

/// The pattern of a DNS subdomain (lowercase letters, digits, `-` and `.`, starting and ending
/// with a letter or digit): the names of Kubernetes objects and Secrets.
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// The pattern of an AWS region, for example `eu-west-1`.
pub const AWS_REGION: &str = r"^[a-z]{2}(-[a-z]+)+-\d+$";

/// Find a condition by type.
pub fn get_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// A reference to a Secret in the same namespace as the object that holds the reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalSecretReference {
    /// Name of the Secret: a DNS subdomain (lowercase letters, digits, `-` and `.`, starting and
    /// ending with a letter or digit), as Kubernetes requires of a Secret's name. Checked when
    /// the object is applied, before anything is created.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = DNS_SUBDOMAIN)
    )]
    pub name: String,
    /// Accepted for compatibility with Crossplane YAML. paved never writes Secrets outside the
    /// object's own namespace: when set, it must equal that namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A key in a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Accepted for compatibility with Crossplane YAML; when set, it must equal the object's own
    /// namespace (for cluster-scoped objects, the namespace to read from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to another object by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NameReference {
    /// Name of the referenced object: a DNS subdomain (lowercase letters, digits, `-` and `.`,
    /// starting and ending with a letter or digit), as Kubernetes requires of object names.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = DNS_SUBDOMAIN)
    )]
    pub name: String,
}

/// Which ProviderConfig an object uses (`spec.providerConfigRef`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderConfigReference {
    /// Name of the ProviderConfig.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The kind of ProviderConfig (see [`ProviderConfigKind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderConfigKind>,
}

/// Crossplane v2 convention: `ClusterProviderConfig` (aws.m.upbound.io, cluster-scoped) or
/// `ProviderConfig` (aws.m.upbound.io, in this object's own namespace). Left out: the
/// cluster-scoped aws.upbound.io/v1beta1 ProviderConfig, as in Crossplane v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProviderConfigKind {
    /// `aws.m.upbound.io/v1beta1` ProviderConfig in the object's own namespace.
    ProviderConfig,
    /// `aws.m.upbound.io/v1beta1` ClusterProviderConfig.
    ClusterProviderConfig,
}

/// A reference to a composed object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Schema transform: keep the declared properties, but let the API server also store fields it
/// does not know (`x-kubernetes-preserve-unknown-fields`). Used where users or Compositions may
/// write fields paved has no type for.
pub fn preserve_unknown_fields(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("additionalProperties");
        obj.insert(
            "x-kubernetes-preserve-unknown-fields".to_string(),
            serde_json::Value::Bool(true),
        );
    }
}

/// Schema for a free-form JSON object (`type: object` + preserve unknown fields): structural
/// schemas reject a field with no type, which is what a bare `serde_json::Value` would produce.
pub fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for any JSON value (string, number, object, ...), for `map` transform values and the
/// like.
pub fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap_or_default())
    }

    #[test]
    fn set_condition_keeps_time_when_unchanged() {
        let mut cs = vec![];
        let now = t("2024-01-01T00:00:00Z");
        assert!(set_condition(
            &mut cs,
            Condition::new(READY, ConditionStatus::False, "Creating", "x", Some(1)),
            &now
        ));
        let later = t("2024-01-02T00:00:00Z");
        assert!(!set_condition(
            &mut cs,
            Condition::new(READY, ConditionStatus::False, "Creating", "x", Some(1)),
            &later
        ));
        assert_eq!(cs[0].last_transition_time, Some(now.clone()));
        // same status, new message: time kept
        assert!(set_condition(
            &mut cs,
            Condition::new(READY, ConditionStatus::False, "Creating", "y", Some(1)),
            &later
        ));
        assert_eq!(cs[0].last_transition_time, Some(now));
        // status flips: time moves
        assert!(set_condition(
            &mut cs,
            Condition::new(READY, ConditionStatus::True, "Available", "", Some(1)),
            &later
        ));
        assert_eq!(cs[0].last_transition_time, Some(later));
        assert_eq!(cs.len(), 1);
    }
}
