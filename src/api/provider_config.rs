//! `ProviderConfig` (`aws.upbound.io/v1beta1`): which AWS account and endpoint to talk to, and
//! which namespaces may use it. Also the Crossplane v2 kinds of the Upbound provider's
//! `aws.m.upbound.io/v1beta1` group: the cluster-scoped `ClusterProviderConfig` (the same fields)
//! and the namespaced `ProviderConfig` ([`NamespacedProviderConfig`] here), which only the
//! Instances of its own namespace can use, with credentials from a Secret in that namespace.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, SecretKeySelector};

/// AWS credentials and endpoint for the Instances that name this ProviderConfig in
/// spec.providerConfigRef (the one named `default` is used when they name none).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "AWS credentials and endpoint for the Instances that name this ProviderConfig in spec.providerConfigRef (the one named `default` serves those that name none). spec.namespaceSelector limits which namespaces may use it. With no ProviderConfig at all, paved refuses to reconcile unless it was started with --allow-pod-identity.",
    group = "aws.upbound.io",
    version = "v1beta1",
    kind = "ProviderConfig",
    plural = "providerconfigs",
    singular = "providerconfig",
    status = "ProviderConfigStatus",
    category = "paved",
    category = "providerconfig",
    category = "aws",
    printcolumn = r#"{"name":"SOURCE","type":"string","jsonPath":".spec.credentials.source"}"#,
    printcolumn = r#"{"name":"ENDPOINT","type":"string","jsonPath":".spec.endpoint.url.static"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// Where the AWS credentials come from.
    pub credentials: ProviderCredentials,

    /// Talk to another RDS endpoint than AWS's public one: a VPC endpoint, or an RDS-compatible
    /// emulator for testing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointConfig>,

    /// Whether objects using this ProviderConfig may adopt AWS resources that paved did not
    /// create (no paved owner tags): with managementPolicies that include Update or Delete but
    /// not Create, paved then tags such a resource as the object's and manages it. Default
    /// false: untagged resources can only be observed. Resources tagged as another object's are
    /// never adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_adoption: Option<bool>,

    /// The namespaces whose Instances may use this ProviderConfig (a standard label selector on
    /// the Namespace's labels; `{}` matches every namespace, as does leaving it out). An Instance
    /// in any other namespace is refused (Synced=False, reason ProviderConfigNotAllowed) before
    /// paved reads these credentials or calls AWS with them. Namespace labels are set by whoever
    /// may edit Namespaces, usually only the platform team; `kubernetes.io/metadata.name` names
    /// one namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// AWS credentials and endpoint (Crossplane v2 convention, `aws.m.upbound.io`), cluster-scoped:
/// for the Instances whose spec.providerConfigRef has `kind: ClusterProviderConfig`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "AWS credentials and endpoint for the Instances whose spec.providerConfigRef is {kind: ClusterProviderConfig, name: <this name>}. spec.namespaceSelector limits which namespaces may use it.",
    group = "aws.m.upbound.io",
    version = "v1beta1",
    kind = "ClusterProviderConfig",
    plural = "clusterproviderconfigs",
    singular = "clusterproviderconfig",
    status = "ProviderConfigStatus",
    category = "paved",
    category = "providerconfig",
    category = "aws",
    printcolumn = r#"{"name":"SOURCE","type":"string","jsonPath":".spec.credentials.source"}"#,
    printcolumn = r#"{"name":"ENDPOINT","type":"string","jsonPath":".spec.endpoint.url.static"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    /// Where the AWS credentials come from.
    pub credentials: ProviderCredentials,

    /// Talk to another RDS endpoint than AWS's public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointConfig>,

    /// The namespaces whose Instances may use this ClusterProviderConfig (a label selector on the
    /// Namespace's labels; absent or `{}`: every namespace). Others are refused before any AWS
    /// call with these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// AWS credentials and endpoint (Crossplane v2 convention, `aws.m.upbound.io`), namespaced: only
/// for the Instances of its own namespace whose spec.providerConfigRef has `kind:
/// ProviderConfig`. Its credentials must come from a Secret in that same namespace
/// (credentials.source Secret): a namespaced ProviderConfig can never use paved's own identity or
/// another namespace's Secret.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    doc = "AWS credentials and endpoint for the Instances of this namespace whose spec.providerConfigRef is {kind: ProviderConfig, name: <this name>}. credentials.source must be Secret, with the Secret in this namespace.",
    group = "aws.m.upbound.io",
    version = "v1beta1",
    kind = "ProviderConfig",
    root = "NamespacedProviderConfig",
    plural = "providerconfigs",
    singular = "providerconfig",
    namespaced,
    status = "ProviderConfigStatus",
    category = "paved",
    category = "providerconfig",
    category = "aws",
    printcolumn = r#"{"name":"SOURCE","type":"string","jsonPath":".spec.credentials.source"}"#,
    printcolumn = r#"{"name":"ENDPOINT","type":"string","jsonPath":".spec.endpoint.url.static"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedProviderConfigSpec {
    /// Where the AWS credentials come from: source Secret, with secretRef in this namespace
    /// (secretRef.namespace may be left out; when set it must be this namespace).
    pub credentials: ProviderCredentials,

    /// Talk to another RDS endpoint than AWS's public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointConfig>,
}

/// Where the AWS credentials come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCredentials {
    /// InjectedIdentity (also accepted: IRSA, WebIdentity, PodIdentity): the standard AWS
    /// credential chain of the paved pod (environment, IRSA web identity, instance profile).
    /// Secret: an AWS shared-credentials file (`[default]` profile with aws_access_key_id and
    /// aws_secret_access_key, optionally aws_session_token) in the Secret key named by secretRef.
    pub source: CredentialsSource,

    /// With source Secret: the Secret key holding the credentials file. namespace is required
    /// here, as the ProviderConfig is cluster-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

// Credential sources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CredentialsSource {
    #[default]
    InjectedIdentity,
    #[serde(rename = "IRSA")]
    Irsa,
    WebIdentity,
    PodIdentity,
    Secret,
}

/// Endpoint override.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfig {
    /// The endpoint URL.
    pub url: EndpointUrl,
    /// Accepted for compatibility with the Upbound provider; paved always uses the URL as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname_immutable: Option<bool>,
    /// Accepted for compatibility with the Upbound provider (paved only calls RDS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
}

/// Endpoint URL, in the Upbound provider's shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointUrl {
    /// `Static`: use `static`. `Auto`: AWS's default endpoint.
    #[serde(rename = "type")]
    pub type_: EndpointUrlType,
    /// The URL, for example `http://127.0.0.1:5000` or `https://rds.eu-west-1.amazonaws.com`.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub static_: Option<String>,
}

// Endpoint URL types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EndpointUrlType {
    #[default]
    Static,
    Auto,
}

/// What paved observed about the ProviderConfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
