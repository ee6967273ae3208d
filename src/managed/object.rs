//! The managed object as the lifecycle sees it: the fields every managed kind has outside
//! `spec.forProvider` (management policies, deletion policy, provider config, connection Secret
//! reference, conditions). The lifecycle reads an object only through [`ManagedObject`].

use kube::Resource;

use crate::api::common::{Condition, LocalSecretReference, ProviderConfigReference};
use crate::api::instance::Instance;
use crate::api::managed::{self, DeletionPolicy, ManagementAction, Policies};

/// A Kubernetes object of a managed kind.
pub trait ManagedObject:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Send
    + Sync
    + 'static
{
    fn management_policies(&self) -> Option<&[ManagementAction]>;
    fn deletion_policy(&self) -> Option<DeletionPolicy>;
    fn provider_config_ref(&self) -> Option<&ProviderConfigReference>;
    fn write_connection_secret_to_ref(&self) -> Option<&LocalSecretReference>;
    /// The conditions of its status (none without a status).
    fn conditions(&self) -> &[Condition];

    /// What `spec.managementPolicies` allow (`Err`: invalid, with the Synced message).
    fn policies(&self) -> Result<Policies, String> {
        Policies::parse(self.management_policies())
    }

    /// The non-empty external-name annotation.
    fn external_name(&self) -> Option<&str> {
        managed::external_name(self.meta())
    }

    /// The ProviderConfig it uses (`default` when none is named).
    fn provider_config_name(&self) -> &str {
        self.provider_config_ref()
            .map_or("default", |r| r.name.as_str())
    }
}

impl ManagedObject for Instance {
    fn management_policies(&self) -> Option<&[ManagementAction]> {
        self.spec.management_policies.as_deref()
    }
    fn deletion_policy(&self) -> Option<DeletionPolicy> {
        self.spec.deletion_policy
    }
    fn provider_config_ref(&self) -> Option<&ProviderConfigReference> {
        self.spec.provider_config_ref.as_ref()
    }
    fn write_connection_secret_to_ref(&self) -> Option<&LocalSecretReference> {
        self.spec.write_connection_secret_to_ref.as_ref()
    }
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map_or(&[], |s| s.conditions.as_slice())
    }
}

/// A twin's object is read into its kind: the same fields.
impl<T: ManagedObject + crate::api::twin::Twinned> ManagedObject for crate::api::twin::M<T> {
    fn management_policies(&self) -> Option<&[ManagementAction]> {
        self.0.management_policies()
    }
    fn deletion_policy(&self) -> Option<DeletionPolicy> {
        self.0.deletion_policy()
    }
    fn provider_config_ref(&self) -> Option<&ProviderConfigReference> {
        self.0.provider_config_ref()
    }
    fn write_connection_secret_to_ref(&self) -> Option<&LocalSecretReference> {
        self.0.write_connection_secret_to_ref()
    }
    fn conditions(&self) -> &[Condition] {
        self.0.conditions()
    }
}
