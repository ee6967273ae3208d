//! The shape every managed kind's CRD shares, declared once: the spec's fields besides
//! `forProvider` (deletionPolicy, managementPolicies, providerConfigRef,
//! writeConnectionSecretToRef), the categories and printer columns, and the status of the
//! network kinds (atProvider, conditions, placement). Each kind's file still writes every
//! description, so the CRDs (`kubectl explain`) say what each field means for that kind.

/// A managed kind's spec struct and its `CustomResource` derive. `kube(..)` holds the kind's own
/// settings (doc, group, version, kind, plural, singular, status); `columns` the printer columns
/// between EXTERNAL-NAME and AGE; each field keyword is preceded by its description.
macro_rules! managed_spec {
    (
        $(#[$meta:meta])*
        pub struct $spec:ident;
        kube($($kube:tt)*);
        columns($($column:literal),*);
        $(#[$fp_meta:meta])*
        for_provider: $fp:ty,
        $(#[$dp_meta:meta])*
        deletion_policy,
        $(#[$mp_meta:meta])*
        management_policies,
        $(#[$pc_meta:meta])*
        provider_config_ref,
        $(#[$wc_meta:meta])*
        write_connection_secret_to_ref $(,)?
    ) => {
        $(#[$meta])*
        #[derive(
            kube::CustomResource,
            Clone,
            Debug,
            Default,
            PartialEq,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
        )]
        #[kube(
            $($kube)*,
            namespaced,
            category = "managed",
            category = "aws",
            category = "paved",
            printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
            printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type=='Synced')].status"}"#,
            printcolumn = r#"{"name":"EXTERNAL-NAME","type":"string","jsonPath":".metadata.annotations.crossplane\\.io/external-name"}"#,
            $(printcolumn = $column,)*
            printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $spec {
            $(#[$fp_meta])*
            pub for_provider: $fp,

            $(#[$dp_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub deletion_policy: Option<$crate::api::managed::DeletionPolicy>,

            $(#[$mp_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub management_policies: Option<Vec<$crate::api::managed::ManagementAction>>,

            $(#[$pc_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub provider_config_ref: Option<$crate::api::common::ProviderConfigReference>,

            $(#[$wc_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub write_connection_secret_to_ref: Option<$crate::api::common::LocalSecretReference>,
        }
    };
}
pub(crate) use managed_spec;

/// The status struct of a network kind: what AWS reports (`at_provider`), the conditions, and
/// where the AWS resource lives; each preceded by its description, but the placement's, which
/// is the same for every kind.
macro_rules! managed_status {
    (
        $(#[$meta:meta])*
        pub struct $status:ident;
        $(#[$ap_meta:meta])*
        at_provider: $observation:ty,
        $(#[$c_meta:meta])*
        conditions $(,)?
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $status {
            $(#[$ap_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub at_provider: Option<$observation>,

            $(#[$c_meta])*
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub conditions: Vec<$crate::api::common::Condition>,

            /// Where the AWS resource lives (region and ProviderConfig), recorded when paved first
            /// observed or created it; a later change of either is refused.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub placement: Option<$crate::api::managed::Placement>,
        }
    };
}
pub(crate) use managed_status;
