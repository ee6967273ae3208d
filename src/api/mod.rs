//! The Kubernetes APIs paved serves. Types only (serde + schemars); `crds/` is generated from them
//! by `paved crds`, and doc comments become `kubectl explain` text. [`managed`] is the contract
//! of managed kinds both controllers honour.

pub mod claim;
pub mod common;
pub mod composition;
pub mod composition_revision;
pub mod instance;
pub mod managed;
pub mod parameter_group;
pub mod provider_config;
pub mod reference;
pub mod security_group;
pub mod security_group_rule;
mod shape;
pub mod subnet_group;
pub mod twin;
pub mod xrd;

pub use claim::{PostgreSQLInstance, PostgreSQLInstanceSpec, PostgreSQLInstanceStatus};
pub use common::{Condition, ConditionStatus};
pub use composition::{Composition, CompositionSpec};
pub use composition_revision::{CompositionRevision, CompositionRevisionSpec};
pub use instance::{Instance, InstanceSpec, InstanceStatus};
pub use parameter_group::ParameterGroup;
pub use provider_config::{
    ClusterProviderConfig, NamespacedProviderConfig, ProviderConfig, ProviderConfigSpec,
};
pub use security_group::SecurityGroup;
pub use security_group_rule::SecurityGroupRule;
pub use subnet_group::SubnetGroup;
pub use xrd::CompositeResourceDefinition;

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::CustomResourceExt;

/// How the API server converts Instances between their versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// Call paved's conversion webhook through a Service (in a cluster: the chart and the
    /// kustomize base). The CA is injected by cert-manager from the Certificate named by
    /// [`CA_INJECTION_ANNOTATION`].
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
    /// Call the webhook at a URL (a local control plane), trusting this CA (PEM).
    Url { url: String, ca_bundle: Vec<u8> },
    /// `strategy: None`: the API server only rewrites apiVersion. Correct only while no
    /// Instance uses a field whose shape differs between versions (blueGreenUpdate,
    /// restoreToPointInTime, s3Import); for test clusters without the webhook.
    None,
}

/// The path paved serves conversion reviews on.
pub const CONVERSION_PATH: &str = "/convert";

/// cert-manager's CA injector fills the caBundle of a CRD with this annotation from the named
/// Certificate (`<namespace>/<name>`).
pub const CA_INJECTION_ANNOTATION: &str = "cert-manager.io/inject-ca-from";

/// Namespace and name of the webhook's Service and Certificate in `crds/` (the chart's and the
/// kustomize base's defaults).
pub const WEBHOOK_NAMESPACE: &str = "paved-system";
pub const WEBHOOK_SERVICE: &str = "paved-webhook";
pub const WEBHOOK_CERTIFICATE: &str = "paved-webhook";

impl Conversion {
    /// Through the Service `paved-webhook` in `paved-system`, port 443.
    pub fn in_cluster() -> Self {
        Conversion::Service {
            namespace: WEBHOOK_NAMESPACE.to_string(),
            name: WEBHOOK_SERVICE.to_string(),
            port: 443,
        }
    }
}

/// What `crds/` (and so the chart and the kustomize base) carry: `None` until the chart and the
/// kustomize base deploy the webhook's Service and certificate; then [`Conversion::in_cluster`].
/// `None` is exact for every field paved implements (the versions differ only in blocks paved
/// reports as unsupported); `paved crds --conversion-webhook-service` emits the webhook one.
impl Default for Conversion {
    fn default() -> Self {
        Conversion::None
    }
}

/// Set the conversion of a multi-version CRD.
pub fn with_conversion(
    mut crd: CustomResourceDefinition,
    conversion: &Conversion,
) -> CustomResourceDefinition {
    let client_config = match conversion {
        Conversion::None => {
            crd.spec.conversion = Some(CustomResourceConversion {
                strategy: "None".to_string(),
                webhook: None,
            });
            return crd;
        }
        Conversion::Service {
            namespace,
            name,
            port,
        } => {
            crd.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(
                    CA_INJECTION_ANNOTATION.to_string(),
                    format!("{namespace}/{WEBHOOK_CERTIFICATE}"),
                );
            WebhookClientConfig {
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(CONVERSION_PATH.to_string()),
                    port: Some(*port),
                }),
                ..Default::default()
            }
        }
        Conversion::Url { url, ca_bundle } => WebhookClientConfig {
            url: Some(url.clone()),
            ca_bundle: Some(ByteString(ca_bundle.clone())),
            ..Default::default()
        },
    };
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".to_string(),
        webhook: Some(WebhookConversion {
            client_config: Some(client_config),
            conversion_review_versions: vec!["v1".to_string()],
        }),
    });
    crd
}

/// Every CRD paved serves, in a stable order (the order of `paved crds` and of `crds/`), with
/// the default Instance conversion ([`Conversion::default`]).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    all_crds_with(&Conversion::default())
}

/// [`all_crds`] with another Instance conversion.
pub fn all_crds_with(conversion: &Conversion) -> Vec<CustomResourceDefinition> {
    vec![
        PostgreSQLInstance::crd(),
        Composition::crd(),
        CompositionRevision::crd(),
        with_conversion(instance::versioned_crd(), conversion),
        ProviderConfig::crd(),
        ClusterProviderConfig::crd(),
        NamespacedProviderConfig::crd(),
        SubnetGroup::crd(),
        SecurityGroup::crd(),
        SecurityGroupRule::crd(),
        ParameterGroup::crd(),
        xrd_crd(),
    ]
    .into_iter()
    .chain(twin::twin_crds())
    .collect()
}

/// The CRD of CompositeResourceDefinition: served at v1 (stored) and v2, one schema, v2
/// defaulting `spec.scope` to `Namespaced` as Crossplane v2 does.
fn xrd_crd() -> CustomResourceDefinition {
    let mut crd = CompositeResourceDefinition::crd();
    if let Some(v1) = crd.spec.versions.first().cloned() {
        let mut v2 = v1;
        v2.name = "v2".into();
        v2.storage = false;
        if let Some(scope) = v2
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("spec"))
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("scope"))
        {
            scope.default = Some(
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(
                    serde_json::json!("Namespaced"),
                ),
            );
        }
        crd.spec.versions.push(v2);
    }
    crd
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn instance_crd(conversion: &Conversion) -> CustomResourceDefinition {
        all_crds_with(conversion)
            .into_iter()
            .find(|c| c.spec.group == "rds.aws.upbound.io")
            .unwrap()
    }

    #[test]
    fn three_versions_v1beta3_stored() {
        let crd = instance_crd(&Conversion::None);
        let versions: Vec<(&str, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(
            versions,
            [
                ("v1beta1", true, false),
                ("v1beta2", true, false),
                ("v1beta3", true, true)
            ]
        );
        assert_eq!(crd.spec.conversion.unwrap().strategy, "None");
    }

    #[test]
    fn webhook_conversion_by_service_or_url() {
        let crd = instance_crd(&Conversion::in_cluster());
        assert_eq!(
            crd.metadata.annotations.unwrap()[CA_INJECTION_ANNOTATION],
            "paved-system/paved-webhook"
        );
        let conv = crd.spec.conversion.unwrap();
        assert_eq!(conv.strategy, "Webhook");
        let webhook = conv.webhook.unwrap();
        assert_eq!(webhook.conversion_review_versions, ["v1"]);
        let svc = webhook.client_config.unwrap().service.unwrap();
        assert_eq!(
            (
                svc.namespace.as_str(),
                svc.name.as_str(),
                svc.port,
                svc.path.as_deref()
            ),
            ("paved-system", "paved-webhook", Some(443), Some("/convert"))
        );
        let crd = instance_crd(&Conversion::Url {
            url: "https://127.0.0.1:9443/convert".into(),
            ca_bundle: b"PEM".to_vec(),
        });
        let cc = crd
            .spec
            .conversion
            .unwrap()
            .webhook
            .unwrap()
            .client_config
            .unwrap();
        assert_eq!(cc.url.as_deref(), Some("https://127.0.0.1:9443/convert"));
        assert_eq!(cc.ca_bundle.unwrap().0, b"PEM");
    }
}
