//! The Kubernetes APIs paved serves. Types only (serde + schemars); `crds/` is generated from them
//! by `paved crds`, and doc comments become `kubectl explain` text. [`managed`] is the contract
//! of managed kinds both controllers honour.

pub mod claim;
pub mod common;
pub mod composition;
pub mod instance;
pub mod instance_m;
pub mod managed;
pub mod provider_config;

pub use claim::{PostgreSQLInstance, PostgreSQLInstanceSpec, PostgreSQLInstanceStatus};
pub use common::{Condition, ConditionStatus};
pub use composition::{Composition, CompositionSpec};
pub use instance::{Instance, InstanceSpec, InstanceStatus};
pub use provider_config::{ProviderConfig, ProviderConfigSpec};

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

impl Default for Conversion {
    fn default() -> Self {
        Conversion::Service {
            namespace: WEBHOOK_NAMESPACE.to_string(),
            name: WEBHOOK_SERVICE.to_string(),
            port: 443,
        }
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
/// the Instance conversion through the in-cluster webhook Service.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    all_crds_with(&Conversion::default())
}

/// [`all_crds`] with another Instance conversion.
pub fn all_crds_with(conversion: &Conversion) -> Vec<CustomResourceDefinition> {
    vec![
        PostgreSQLInstance::crd(),
        Composition::crd(),
        with_conversion(instance::versioned_crd(), conversion),
        instance_m::Instance::crd(),
        ProviderConfig::crd(),
    ]
}
