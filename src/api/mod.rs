//! The Kubernetes APIs paved serves. Types only (serde + schemars); `crds/` is generated from them
//! by `paved crds`, and doc comments become `kubectl explain` text. [`managed`] is the contract
//! of managed kinds both controllers honour.

pub mod claim;
pub mod common;
pub mod composition;
pub mod instance;
pub mod managed;
pub mod provider_config;
pub mod xrd;

pub use claim::{PostgreSQLInstance, PostgreSQLInstanceSpec, PostgreSQLInstanceStatus};
pub use common::{Condition, ConditionStatus};
pub use composition::{Composition, CompositionSpec};
pub use instance::{Instance, InstanceSpec, InstanceStatus};
pub use provider_config::{ProviderConfig, ProviderConfigSpec};
pub use xrd::CompositeResourceDefinition;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD paved serves, in a stable order (the order of `paved crds` and of `crds/`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        PostgreSQLInstance::crd(),
        Composition::crd(),
        Instance::crd(),
        ProviderConfig::crd(),
        xrd_crd(),
    ]
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
