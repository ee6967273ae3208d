//! The Kubernetes APIs paved serves. Types only (serde + schemars); `crds/` is generated from them
//! by `paved crds`, and doc comments become `kubectl explain` text. [`managed`] is the contract
//! of managed kinds both controllers honour.

pub mod claim;
pub mod common;
pub mod composition;
pub mod instance;
pub mod managed;
pub mod parameter_group;
pub mod provider_config;
pub mod reference;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet_group;

pub use claim::{PostgreSQLInstance, PostgreSQLInstanceSpec, PostgreSQLInstanceStatus};
pub use common::{Condition, ConditionStatus};
pub use composition::{Composition, CompositionSpec};
pub use instance::{Instance, InstanceSpec, InstanceStatus};
pub use parameter_group::ParameterGroup;
pub use provider_config::{ProviderConfig, ProviderConfigSpec};
pub use security_group::SecurityGroup;
pub use security_group_rule::SecurityGroupRule;
pub use subnet_group::SubnetGroup;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD paved serves, in a stable order (the order of `paved crds` and of `crds/`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        PostgreSQLInstance::crd(),
        Composition::crd(),
        Instance::crd(),
        ProviderConfig::crd(),
        SubnetGroup::crd(),
        SecurityGroup::crd(),
        SecurityGroupRule::crd(),
        ParameterGroup::crd(),
    ]
}
