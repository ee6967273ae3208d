//! `PostgreSQLInstance` (`database.example.com/v1alpha1`): the claim an application developer
//! writes to ask for a PostgreSQL database.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, NameReference, ObjectReference, preserve_unknown_fields};

/// A request for a PostgreSQL database. The platform team's Composition decides what it becomes
/// (for example an RDS instance with the organisation's defaults); you choose only the business
/// parameters and where the credentials go.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "A request for a PostgreSQL database, written by an application developer. The platform team's Composition decides what it becomes (for example an AWS RDS instance with the organisation's defaults); paved provisions it and writes the credentials to the Secret named in spec.writeConnectionSecretToRef. Status conditions Synced and Ready say how far it got and, if not, why.",
    group = "database.example.com",
    version = "v1alpha1",
    kind = "PostgreSQLInstance",
    plural = "postgresqlinstances",
    singular = "postgresqlinstance",
    shortname = "pginstance",
    namespaced,
    status = "PostgreSQLInstanceStatus",
    category = "claim",
    category = "paved",
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type=='Synced')].status"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"CONNECTION-SECRET","type":"string","jsonPath":".spec.writeConnectionSecretToRef.name"}"#,
    printcolumn = r#"{"name":"PROBLEM","type":"string","jsonPath":".status.problem","description":"The first problem between this claim and Ready, in short; kubectl describe shows the conditions in full."}"#,
    printcolumn = r#"{"name":"COMPOSITION","type":"string","jsonPath":".status.compositionRef.name","priority":1}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PostgreSQLInstanceSpec {
    /// What you need from the database, in business terms. The Composition maps these onto the
    /// cloud resource (for example storageGB onto RDS allocatedStorage).
    pub parameters: Parameters,

    /// Use exactly this Composition (by name). Takes precedence over compositionSelector.
    /// When neither is set, paved uses the one Composition whose compositeTypeRef is
    /// database.example.com/v1alpha1 PostgreSQLInstance. The choice is reported in
    /// status.compositionRef, never written back here, and kept while that Composition exists
    /// (and still matches compositionSelector): a new Composition never re-routes a claim. If
    /// the chosen Composition is deleted, the claim reports it and keeps its resources; set
    /// this field to move it to another Composition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<NameReference>,

    /// Choose the Composition by its labels, for example `matchLabels: {provider: aws}`.
    /// Exactly one Composition must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_selector: Option<CompositionSelector>,

    /// Which revision of the chosen Composition composes this claim. Automatic (the default):
    /// the Composition as it is now, so every change to it reaches this claim. Manual: the
    /// CompositionRevision named in compositionRevisionRef, until you change that field; when
    /// it is empty, paved sets it once to the newest revision. Use Manual to roll a Composition
    /// change out claim by claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_update_policy: Option<CompositionUpdatePolicy>,

    /// The CompositionRevision of the chosen Composition that composes this claim under
    /// compositionUpdatePolicy Manual (`kubectl get compositionrevisions -l
    /// crossplane.io/composition-name=<composition>` lists them, newest with the highest
    /// REVISION). Ignored under Automatic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_revision_ref: Option<NameReference>,

    /// What deleting this claim waits for. paved deletes the composed resources and the
    /// connection Secret in both cases. Background (the default): the claim goes away at once
    /// while its composed resources finish deleting. Foreground: the claim stays (Ready=False,
    /// reason Deleting, naming what is left) until every composed resource is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_delete_policy: Option<CompositeDeletePolicy>,

    /// The Secret, in this namespace, that receives the connection credentials (username,
    /// password, host, port, endpoint, uri, ...). Omit it to get no Secret. paved creates it
    /// (owned by this claim, labelled app.kubernetes.io/managed-by=paved) and refuses to
    /// overwrite a Secret of that name that it does not own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<NameReference>,
}

/// The business parameters of a PostgreSQL database.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Storage to allocate, in GiB (gibibytes). At least 20, at most 65536. Storage can be grown
    /// later by raising this value; RDS cannot shrink it.
    #[serde(rename = "storageGB")]
    #[schemars(range(min = 20, max = 65536))]
    pub storage_gb: i64,

    /// PostgreSQL major version, as a string: one of "13", "14", "15", "16", "17", "18".
    #[schemars(extend("enum" = ["13", "14", "15", "16", "17", "18"]))]
    pub version: String,

    /// The environment this database serves, for example `dev`, `staging` or `production`.
    /// A lowercase DNS label (a-z, 0-9 and '-', at most 63 characters). Compositions may use it
    /// to pick sizes and policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub environment: Option<String>,
}

/// Select a Composition by labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositionSelector {
    /// Labels the Composition must carry, all of them.
    pub match_labels: BTreeMap<String, String>,
}

/// Whether a claim follows its Composition's changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CompositionUpdatePolicy {
    /// The claim is composed with the Composition as it is now.
    #[default]
    Automatic,
    /// The claim is composed with the CompositionRevision its compositionRevisionRef names.
    Manual,
}

// What deleting a claim waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CompositeDeletePolicy {
    /// The claim is removed at once; its composed resources are deleted after it.
    #[default]
    Background,
    /// The claim stays until its composed resources are gone.
    Foreground,
}

/// What paved observed about the claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown_fields)]
pub struct PostgreSQLInstanceStatus {
    /// Synced: whether paved could render and apply the Composition, and whether every
    /// composed resource is in sync (reason ComposedResourceError when one is blocked until a
    /// person changes something, Waiting when one waits for a reference, a Secret or AWS,
    /// ReconcilePaused when crossplane.io/paused is "true" on the claim). Ready: whether every
    /// composed resource is ready (reasons Available, Creating, Waiting, Blocked, Unavailable,
    /// Deleting). Messages name the composed resource and quote its own reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The first problem between this claim and Ready, in short, for example
    /// `Blocked: rds-instance: ImmutableField` (what, which composed resource, its reason).
    /// Absent when nothing is wrong (Ready, or still creating). The conditions say it in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,

    /// The Composition paved chose for this claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<NameReference>,

    /// The objects composed for this claim (apiVersion, kind, name, namespace). Objects that
    /// drop out of the Composition are deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<ObjectReference>,

    /// When the connection Secret was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_details: Option<ConnectionDetailsStatus>,

    /// Fields the Composition patches into the claim's status (ToCompositeFieldPath), for
    /// example `status.address`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Publication of connection details.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetailsStatus {
    /// When the connection Secret's content last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_published_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
