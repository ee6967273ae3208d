//! `Instance` (`rds.aws.upbound.io`): a managed AWS RDS database instance, in the shape of the
//! Upbound AWS provider. Usually composed by paved from a claim; a platform engineer may also
//! write one directly.
//!
//! Three versions are served, as upstream serves them: `v1beta1` ([`Instance`]), [`v1beta2`] and
//! [`v1beta3`] (the storage version). They share paved's settings ([`InstanceParameters`]) and
//! status; they differ only in fields paved does not implement (kept in
//! [`InstanceParameters::unsupported`]):
//! - `blueGreenUpdate`, `restoreToPointInTime` and `s3Import` are one-element lists in v1beta1
//!   and v1beta2, objects in v1beta3;
//! - `name` and `securityGroupNames` exist in v1beta1 only.
//!
//! Objects move between the shapes through the conversion webhook (`crate::conversion`). The
//! schemas below state each version's shape of those fields; the Rust type is one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, SecretKeySelector};
pub use super::managed::{DeletionPolicy, ManagementAction};

instance_spec!("v1beta1", "crate::api::instance::for_provider_v1beta1");

/// The RDS instance settings, named as in the Upbound AWS provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::preserve_unknown_fields)]
pub struct InstanceParameters {
    /// AWS region, for example `eu-west-1`.
    #[schemars(length(min = 1), regex(pattern = super::common::AWS_REGION))]
    pub region: String,

    /// The RDS DB instance identifier to create, instead of the one paved derives from the
    /// namespace and name: 1-63 lowercase letters, digits or hyphens, starting with a letter,
    /// without `--` and without a trailing hyphen. It becomes the crossplane.io/external-name
    /// annotation when none is set. Cannot be changed after creation. If an RDS instance with
    /// this identifier already exists and was not created for this object, paved refuses it
    /// (ExternalResourceNotOwned) and touches nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,

    /// Instance class, for example `db.t3.micro`. Can be changed (ModifyDBInstance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,

    /// Database engine, for example `postgres`. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,

    /// Engine version: a major version such as "16" (RDS picks the newest minor) or an exact one
    /// such as "16.4". Upgrading to a new major version needs allowMajorVersionUpgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,

    /// Storage in GiB. Can be raised, never lowered. RDS's minimum depends on the engine and the
    /// storage type (for PostgreSQL: 20 for gp2 and gp3, 100 for io1 and io2, 5 for magnetic
    /// `standard`; an unset storageType is io1 with iops, gp2/gp3 without); the one that holds
    /// for every engine and type, 5, is checked when the object is applied. For a new
    /// PostgreSQL instance paved checks the minimum of its storage type before creating
    /// anything (Synced=False InvalidSpec); other engines' are AWS's to refuse, shown in
    /// Synced. The claim's storageGB (always gp2/gp3) is checked against 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 65536))]
    pub allocated_storage: Option<i64>,

    /// Upper limit in GiB for storage autoscaling; unset means no autoscaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65536))]
    pub max_allocated_storage: Option<i64>,

    /// Storage type: gp2, gp3, io1, io2 or standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,

    /// Provisioned IOPS (io1, io2, gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub iops: Option<i64>,

    /// Encrypt storage at rest. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,

    /// KMS key for storage encryption. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,

    /// Name of the database created with the instance. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,

    /// Master user name. Defaults to `postgres`. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// The Secret key, in this namespace, holding the master password. When omitted, paved
    /// generates a password into a Secret owned by this Instance before creating anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeySelector>,

    /// With passwordSecretRef: generate a password into that Secret key when it is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_generate_password: Option<bool>,

    /// Run a standby in another availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,

    /// Give the instance a public address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,

    /// DB subnet group (the VPC subnets the instance lives in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group_name: Option<String>,

    /// VPC security groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_security_group_ids: Option<Vec<String>>,

    /// DB parameter group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_name: Option<String>,

    /// A SubnetGroup in this namespace whose group name becomes dbSubnetGroupName. The
    /// Instance waits until it is Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group_name_ref: Option<super::reference::Reference>,

    /// Selects the SubnetGroup (same controller and/or labels) for dbSubnetGroupName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group_name_selector: Option<super::reference::Selector>,

    /// SecurityGroups in this namespace whose IDs become vpcSecurityGroupIds. The Instance
    /// waits until they are Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_security_group_id_refs: Option<Vec<super::reference::Reference>>,

    /// Selects the SecurityGroups (same controller and/or labels) for vpcSecurityGroupIds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_security_group_id_selector: Option<super::reference::Selector>,

    /// A ParameterGroup in this namespace whose group name becomes parameterGroupName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_name_ref: Option<super::reference::Reference>,

    /// Selects the ParameterGroup (same controller and/or labels) for parameterGroupName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_name_selector: Option<super::reference::Selector>,

    /// Days to keep automated backups (0 to 35).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 35))]
    pub backup_retention_period: Option<i64>,

    /// Daily backup window, UTC, `hh24:mi-hh24:mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_window: Option<String>,

    /// Weekly maintenance window, UTC, `ddd:hh24:mi-ddd:hh24:mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,

    /// Apply modifications now rather than in the next maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_immediately: Option<bool>,

    /// Allow engineVersion changes across major versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_major_version_upgrade: Option<bool>,

    /// Let AWS apply minor engine upgrades in the maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,

    /// While true, AWS refuses to delete the instance (and so does paved, with a condition
    /// saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,

    /// Delete without a final snapshot. Default false: a final snapshot is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_final_snapshot: Option<bool>,

    /// Name of the final snapshot; by default derived from the identifier and a timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_snapshot_identifier: Option<String>,

    /// Delete automated backups with the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_automated_backups: Option<bool>,

    /// Port the database listens on (5432 for PostgreSQL by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1150, max = 65535))]
    pub port: Option<i32>,

    /// Tags to put on the RDS instance, besides the ownership tags paved adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,

    /// Upbound provider fields paved does not implement. They are kept, and reported in the
    /// Synced condition rather than silently ignored.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// What paved observed about the RDS instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The RDS instance as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<InstanceObservation>,

    /// Ready: True only when RDS reports `available`. Synced: whether the last reconcile
    /// succeeded; if not, the AWS error code and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Tag keys paved applied from spec.forProvider.tags. Removing a key from the spec removes
    /// the tag from AWS; tags that others put on the instance are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,

    /// Where the RDS instance lives (region and ProviderConfig), recorded when paved first
    /// observed or created it. A later change of either is refused: paved never moves a
    /// database, nor creates a second one elsewhere under the same identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::managed::Placement>,
}

/// The observed RDS instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceObservation {
    /// DB instance identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Amazon Resource Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The stable AWS resource id (`db-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// DNS address of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// `address:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// RDS status: creating, available, modifying, backing-up, deleting, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_storage: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allocated_storage: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    /// Master user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Name of the database created with the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_security_group_ids: Option<Vec<String>>,
    /// Tags on the RDS instance, paved's ownership tags included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Changes AWS has accepted but not applied yet (for example waiting for the maintenance
    /// window), field name to value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_modified_values: Option<BTreeMap<String, String>>,
}

/// Whether a version holds the singleton blocks as one-element lists (v1beta1, v1beta2) or as
/// objects (v1beta3 and the namespaced `rds.aws.m.upbound.io/v1beta1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockShape {
    List,
    Object,
}

/// The singleton blocks whose shape differs between versions (list in v1beta1/v1beta2, object in
/// v1beta3).
pub const SINGLETON_BLOCKS: [&str; 3] = ["blueGreenUpdate", "restoreToPointInTime", "s3Import"];

/// Fields that only v1beta1 has (upstream removed them in v1beta2).
pub const V1BETA1_ONLY_FIELDS: [&str; 2] = ["name", "securityGroupNames"];

/// The shape of the singleton blocks in a version of `rds.aws.upbound.io` Instance, or `None` for
/// a version paved does not serve.
pub fn block_shape(version: &str) -> Option<BlockShape> {
    match version {
        "v1beta1" | "v1beta2" => Some(BlockShape::List),
        "v1beta3" => Some(BlockShape::Object),
        _ => None,
    }
}

/// Blue/green deployment for engine upgrades (not implemented by paved: reported as unsupported).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenUpdate {
    /// Use a blue/green deployment for changes that need one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Create the instance from a point-in-time backup of another one (not implemented by paved:
/// reported as unsupported).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreToPointInTime {
    /// The time to restore to, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time: Option<String>,
    /// ARN of the automated backups to restore from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_db_instance_automated_backups_arn: Option<String>,
    /// Identifier of the instance to restore from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_db_instance_identifier: Option<String>,
    /// Resource id of the instance to restore from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dbi_resource_id: Option<String>,
    /// Restore to the latest restorable time instead of restoreTime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_latest_restorable_time: Option<bool>,
}

/// Create the instance from a backup in S3 (not implemented by paved: reported as unsupported).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Import {
    /// The bucket holding the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// Key prefix of the backup in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_prefix: Option<String>,
    /// IAM role RDS assumes to read the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_role: Option<String>,
    /// Engine the backup was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_engine: Option<String>,
    /// Version of that engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_engine_version: Option<String>,
}

fn block_schema<T: JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
    shape: BlockShape,
) -> serde_json::Value {
    let item = T::json_schema(generator).to_value();
    match shape {
        BlockShape::Object => item,
        BlockShape::List => serde_json::json!({"type": "array", "items": item}),
    }
}

/// The forProvider schema of one version: [`InstanceParameters`] plus that version's shape of
/// the fields paved does not implement.
fn for_provider_schema(
    generator: &mut schemars::SchemaGenerator,
    shape: BlockShape,
    v1beta1_fields: bool,
) -> schemars::Schema {
    let mut schema = InstanceParameters::json_schema(generator);
    let blocks = [
        (
            "blueGreenUpdate",
            block_schema::<BlueGreenUpdate>(generator, shape),
        ),
        (
            "restoreToPointInTime",
            block_schema::<RestoreToPointInTime>(generator, shape),
        ),
        ("s3Import", block_schema::<S3Import>(generator, shape)),
    ];
    if let Some(props) = schema
        .as_object_mut()
        .and_then(|o| o.get_mut("properties"))
        .and_then(|p| p.as_object_mut())
    {
        for (name, block) in blocks {
            props.insert(name.to_string(), block);
        }
        if v1beta1_fields {
            props.insert(
                "name".to_string(),
                serde_json::json!({"type": "string", "description": "Deprecated alias of dbName (v1beta1 only; not implemented by paved)."}),
            );
            props.insert(
                "securityGroupNames".to_string(),
                serde_json::json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "description": "EC2-Classic security groups (v1beta1 only; not implemented by paved)."}),
            );
        }
    }
    schema
}

fn for_provider_v1beta1(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    for_provider_schema(generator, BlockShape::List, true)
}

pub(crate) fn for_provider_v1beta2(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    for_provider_schema(generator, BlockShape::List, false)
}

/// forProvider of v1beta3 and of the namespaced `rds.aws.m.upbound.io/v1beta1`.
pub(crate) fn for_provider_v1beta3(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    for_provider_schema(generator, BlockShape::Object, false)
}

/// The spec of a version: the same fields and descriptions in every version, the version's
/// forProvider schema.
macro_rules! instance_spec {
    ($version:literal, $for_provider:literal) => {
        $crate::api::shape::managed_spec! {
            /// An AWS RDS database instance that paved creates, keeps in line with spec.forProvider, and
            /// deletes according to spec.deletionPolicy.
            pub struct InstanceSpec;
            kube(
                doc = "An AWS RDS database instance managed by paved (Upbound AWS provider shape). Usually composed by paved from a PostgreSQLInstance claim; a platform engineer may also write one directly. paved creates it, keeps it in line with spec.forProvider, publishes its credentials, and deletes it according to spec.deletionPolicy.",
                group = "rds.aws.upbound.io",
                version = $version,
                kind = "Instance",
                plural = "instances",
                singular = "instance",
                status = "InstanceStatus"
            );
            columns(
                r#"{"name":"STATUS","type":"string","jsonPath":".status.atProvider.status"}"#,
                r#"{"name":"ADDRESS","type":"string","jsonPath":".status.atProvider.address","priority":1}"#
            );

            /// The desired state of the RDS instance. Only the fields you set are enforced; values AWS
            /// chooses by default are reported in status.atProvider and left alone.
            #[schemars(schema_with = $for_provider)]
            for_provider: InstanceParameters,

            /// What happens to the RDS instance when this object is deleted. Delete (the default):
            /// DeleteDBInstance, with a final snapshot unless forProvider.skipFinalSnapshot is true.
            /// Orphan: the RDS instance is left running and forgotten.
            deletion_policy,

            /// What paved may do with the RDS instance, as in Crossplane: `["*"]` (the default) for
            /// everything; `["Observe"]` to only observe an existing instance named by the
            /// crossplane.io/external-name annotation; or a set of Observe, Create, Update, Delete,
            /// LateInitialize. Without Delete, deleting this object orphans the RDS instance.
            management_policies,

            /// The ProviderConfig with the AWS credentials and endpoint to use: by name, the
            /// cluster-scoped aws.upbound.io ProviderConfig (`default` when left out); with `kind:
            /// ClusterProviderConfig` or `kind: ProviderConfig` (this namespace), the aws.m.upbound.io
            /// kinds of Crossplane v2. A ProviderConfig whose namespaceSelector does not match this
            /// namespace is refused. With no ProviderConfig at all, paved refuses too, unless it was
            /// started with --allow-pod-identity (then its own AWS credential chain is used).
            provider_config_ref,

            /// The Secret, in this namespace, that receives the connection details: username, password,
            /// address, host, port, endpoint, dbname (when set) and uri.
            write_connection_secret_to_ref,
        }
    };
}
use instance_spec;

/// A version's module: its spec (the Instance type of that version), over the shared
/// parameters and status.
macro_rules! instance_version {
    ($module:ident, $version:literal, $for_provider:literal, $doc:literal) => {
        #[doc = $doc]
        pub mod $module {
            use super::{InstanceParameters, InstanceStatus};

            super::instance_spec!($version, $for_provider);
        }
    };
}

instance_version!(
    v1beta2,
    "v1beta2",
    "crate::api::instance::for_provider_v1beta2",
    "`rds.aws.upbound.io/v1beta2` Instance: v1beta1 without `name` and `securityGroupNames`."
);
instance_version!(
    v1beta3,
    "v1beta3",
    "crate::api::instance::for_provider_v1beta3",
    "`rds.aws.upbound.io/v1beta3` Instance, the storage version: singleton blocks are objects."
);

/// The Instance CRD with its three versions, v1beta3 stored (without a conversion; see
/// [`super::with_conversion`]).
pub fn versioned_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = v1beta3::Instance::crd();
    let mut versions = Vec::new();
    for older in [Instance::crd(), v1beta2::Instance::crd()] {
        versions.extend(older.spec.versions);
    }
    for v in &mut versions {
        v.storage = false;
    }
    versions.append(&mut crd.spec.versions);
    crd.spec.versions = versions;
    crd
}

/// Longest RDS DB instance identifier.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Whether `s` is a valid RDS DB instance identifier: 1–63 letters, digits or hyphens, starting
/// with a letter, without `--` and without a trailing hyphen.
pub fn is_valid_identifier(s: &str) -> bool {
    is_valid_rds_name(s, MAX_IDENTIFIER_LEN)
}

/// The RDS naming rule of instance and snapshot identifiers, up to `max` characters.
pub fn is_valid_rds_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.contains("--")
        && !s.ends_with('-')
}

/// Where `spec.forProvider.identifier` is, in messages.
pub const IDENTIFIER_FIELD: &str = "spec.forProvider.identifier";

/// What `spec.forProvider.identifier` says about the identifier of a new RDS instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WantedIdentifier {
    /// Unset (or empty): paved derives one.
    Unset,
    /// A valid identifier: the external-name of a new instance.
    Valid(String),
    /// Not an RDS identifier (the rule it breaks): nothing is derived instead, the object is
    /// refused naming the field.
    Invalid(String, &'static str),
}

/// [`wanted_identifier`] of an Instance as JSON (a composed object before its first apply).
pub fn wanted_identifier_of(desired: &serde_json::Value) -> WantedIdentifier {
    wanted_identifier(
        desired
            .pointer("/spec/forProvider/identifier")
            .and_then(serde_json::Value::as_str),
    )
}

/// The rule an explicit identifier must follow: RDS's, in lowercase (RDS stores identifiers
/// lowercased, so a capital letter would never match what it reports back).
pub fn wanted_identifier(identifier: Option<&str>) -> WantedIdentifier {
    match identifier {
        None | Some("") => WantedIdentifier::Unset,
        Some(id) if id.chars().any(|c| c.is_ascii_uppercase()) => WantedIdentifier::Invalid(
            id.to_string(),
            "RDS stores identifiers in lowercase: write it in lowercase",
        ),
        Some(id) if !is_valid_identifier(id) => WantedIdentifier::Invalid(
            id.to_string(),
            "1-63 letters, digits or hyphens, starting with a letter, no '--', no trailing '-'",
        ),
        Some(id) => WantedIdentifier::Valid(id.to_string()),
    }
}

/// The identifier (external-name) paved gives the RDS instance of `namespace/name` when none is
/// set: a readable prefix from namespace and name plus a short hash of both, so that different
/// objects never collide (`a-b/c` and `a/b-c` read the same but hash differently). Part of the
/// managed contract ([`super::managed`]): the claim controller sets it at an Instance's first
/// apply, the lifecycle when it is missing; both derive the same one.
pub fn derive_identifier(namespace: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hash = hex::encode(&digest[..4]);
    let mut prefix = String::new();
    for c in format!("{namespace}-{name}").chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (prefix.is_empty() || prefix.ends_with('-')) {
            continue;
        }
        prefix.push(c);
    }
    if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        prefix.insert_str(0, "db-");
    }
    // room for "-" + 8 hex
    prefix.truncate(MAX_IDENTIFIER_LEN - 1 - hash.len());
    while prefix.ends_with('-') {
        prefix.pop();
    }
    format!("{prefix}-{hash}")
}
