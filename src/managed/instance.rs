//! The RDS `Instance`: the first managed kind. Its steps against AWS — observe, create, update
//! (modify, tags, password rotation), delete — each return a typed [`Step`]; the lifecycle
//! ([`super::lifecycle`]) drives them and owns conditions, status and release.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::common::Condition;
use crate::api::common::{ConditionStatus, READY};
use crate::api::instance::{
    IDENTIFIER_FIELD, Instance, InstanceObservation, InstanceStatus, WantedIdentifier,
    wanted_identifier,
};
use crate::api::managed::{OWNER_TAG, OWNER_UID_TAG, Placement, Policies};
use crate::api::twin::M;
use crate::kube::backoff::spread;

use super::aws::Aws;
use super::decide::Ownership;
use super::decide::{self, Delete, DeleteFacts, Found};
use super::diff::{Diff, diff};
use super::error::Error;
use super::kind::{Deletion, ExternalClient, Kind, ManagedStatus, owner_tags, ownership_from_tags};
use super::lifecycle::Flow;
use super::model::{
    CreateRequest, DbInstance, ErrorClass, MASTER_USER_PASSWORD, ModifyRequest, is_modifiable,
    is_transitional,
};
use super::naming;
use super::outcome::{Blocked, Outcome, Step, pass_on};

/// Whether the RDS instance carries this object's ownership tags (or its orphaned
/// predecessor's, composed by the same claim for the same resource, until the update step
/// rewrites them).
pub fn owned_by(obj: &Instance, inst: &DbInstance) -> bool {
    super::kind::owned_by(obj, &inst.tags)
}

fn desired_tags(obj: &Instance) -> BTreeMap<String, String> {
    let mut t = obj.spec.for_provider.tags.clone().unwrap_or_default();
    t.extend(owner_tags(obj));
    t
}

fn spec_tag_keys(obj: &Instance) -> Vec<String> {
    obj.spec
        .for_provider
        .tags
        .as_ref()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// status.atProvider from what RDS said.
pub(crate) fn observation(i: &DbInstance) -> InstanceObservation {
    let pending = i.pending.to_map();
    InstanceObservation {
        identifier: Some(i.identifier.clone()),
        arn: i.arn.clone(),
        resource_id: i.resource_id.clone(),
        address: i.address.clone(),
        port: i.port,
        endpoint: match (&i.address, i.port) {
            (Some(a), Some(p)) => Some(format!("{a}:{p}")),
            _ => None,
        },
        status: i.status.clone(),
        engine: i.engine.clone(),
        engine_version: i.engine_version.clone(),
        instance_class: i.instance_class.clone(),
        allocated_storage: i.allocated_storage,
        max_allocated_storage: i.max_allocated_storage,
        storage_type: i.storage_type.clone(),
        multi_az: i.multi_az,
        publicly_accessible: i.publicly_accessible,
        backup_retention_period: i.backup_retention_period,
        backup_window: i.backup_window.clone(),
        maintenance_window: i.maintenance_window.clone(),
        deletion_protection: i.deletion_protection,
        username: i.username.clone(),
        db_name: i.db_name.clone(),
        iops: i.iops,
        storage_encrypted: i.storage_encrypted,
        kms_key_id: i.kms_key_id.clone(),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade,
        parameter_group_name: i.parameter_group_name.clone(),
        db_subnet_group_name: i.db_subnet_group_name.clone(),
        vpc_security_group_ids: (!i.vpc_security_group_ids.is_empty())
            .then(|| i.vpc_security_group_ids.clone()),
        tags: (!i.tags.is_empty()).then(|| i.tags.clone()),
        pending_modified_values: (!pending.is_empty()).then_some(pending),
    }
}

/// Ready condition from the RDS status.
pub(crate) fn ready_for(status: &str) -> (ConditionStatus, &'static str, String) {
    match status {
        "available" => (
            ConditionStatus::True,
            "Available",
            "RDS status is available".into(),
        ),
        "creating" => (
            ConditionStatus::False,
            "Creating",
            "RDS status is creating".into(),
        ),
        "deleting" => (
            ConditionStatus::False,
            "Deleting",
            "RDS status is deleting".into(),
        ),
        s => (
            ConditionStatus::False,
            "Unavailable",
            format!("RDS status is {s}"),
        ),
    }
}

impl ManagedStatus for InstanceStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_identifier(&self) -> Option<&str> {
        self.at_provider.as_ref()?.identifier.as_deref()
    }
    fn observed_deleting(&self) -> bool {
        self.at_provider.as_ref().and_then(|a| a.status.as_deref()) == Some("deleting")
    }
    fn clear_observation(&mut self) {
        self.at_provider = None;
    }
    fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }
    fn set_placement(&mut self, placement: Placement) {
        self.placement = Some(placement);
    }
}

impl Kind for Instance {
    type Status = InstanceStatus;
    const NOUN: &'static str = "RDS instance";
    const METRIC: &'static str = "instance";

    fn status(&self) -> Option<&InstanceStatus> {
        self.status.as_ref()
    }
    fn region(&self) -> &str {
        &self.spec.for_provider.region
    }
    fn derive_identifier(&self) -> String {
        naming::derive_identifier(&self.namespace().unwrap_or_default(), &self.name_any())
    }
    fn check_identifier(identifier: &str) -> Result<(), &'static str> {
        if naming::is_valid_identifier(identifier) {
            Ok(())
        } else {
            Err("1-63 letters, digits or hyphens, starting with a letter, no '--', no trailing '-'")
        }
    }
    fn wanted_identifier(&self) -> Option<(&'static str, WantedIdentifier)> {
        Some((
            IDENTIFIER_FIELD,
            wanted_identifier(self.spec.for_provider.identifier.as_deref()),
        ))
    }
}

/// What this reconcile of an Instance keeps between its steps.
#[derive(Default)]
pub(crate) struct InstanceState {
    /// The master password, once this reconcile has read or generated it.
    pub password: Option<String>,
}

/// The Instance's external client, for the kind and for its namespaced twin.
macro_rules! instance_client {
    ($t:ty) => {
        impl ExternalClient for $t {
            type External = DbInstance;
            type State = InstanceState;
            type Updated = Updated;

            async fn observe_or_create(
                flow: &mut Flow<'_, Self>,
                policies: &Policies,
                aws: &Aws,
                id: &str,
            ) -> Result<Step<DbInstance>, Error> {
                // Its network first: the references resolved into the spec, or wait for them.
                pass_on!(super::network::resolve_instance_refs(flow).await?);
                flow.observe_or_create(policies, aws, id).await
            }

            fn ownership(&self, inst: &DbInstance) -> Ownership {
                ownership_from_tags(self, &inst.tags)
            }

            async fn update(
                flow: &mut Flow<'_, Self>,
                policies: &Policies,
                aws: &Aws,
                id: &str,
                inst: DbInstance,
            ) -> Result<Step<Updated>, Error> {
                flow.update(policies, aws, id, inst).await
            }

            async fn publish(
                flow: &mut Flow<'_, Self>,
                up: Updated,
            ) -> Result<Step<Action>, Error> {
                flow.publish(up).await
            }

            async fn delete(
                flow: &mut Flow<'_, Self>,
                policies: &Result<Policies, String>,
                aws: &Aws,
                id: &str,
            ) -> Deletion {
                flow.delete_step(policies, aws, id).await
            }

            async fn keep(flow: &Flow<'_, Self>) -> Result<(), Error> {
                flow.keep_password_secret().await
            }
        }
    };
}
instance_client!(Instance);
instance_client!(M<Instance>);

/// Why the spec cannot create an instance as it is (pure), as the Synced message: a missing
/// field, or storage below RDS's minimum.
fn invalid_for_create(obj: &Instance) -> Option<String> {
    missing_for_create(obj).or_else(|| storage_below_minimum(&obj.spec.for_provider))
}

/// The smallest allocatedStorage (GiB) RDS accepts for a new PostgreSQL instance on this
/// storage type, with the type as the message names it. An unset storageType is what RDS then
/// uses: io1 when iops is given, otherwise General Purpose SSD (gp2 or gp3, both 20).
pub(crate) fn postgres_storage_minimum(
    storage_type: Option<&str>,
    iops: Option<i64>,
) -> Option<(i64, String)> {
    match storage_type {
        Some(t @ ("gp2" | "gp3")) => Some((20, t.to_string())),
        Some(t @ ("io1" | "io2")) => Some((100, t.to_string())),
        Some("standard") => Some((5, "standard (magnetic)".into())),
        Some(_) => None,
        None if iops.is_some() => Some((
            100,
            "io1 (storageType unset with iops: RDS's default)".into(),
        )),
        None => Some((20, "gp2/gp3 (storageType unset: RDS's default)".into())),
    }
}

/// Storage below what RDS accepts for a new PostgreSQL instance (the CRD's bound, 5 GiB, is the
/// one that holds for every engine and type; this one depends on the storage type, which a CRD
/// without cross-field rules cannot say). Other engines are AWS's to refuse.
fn storage_below_minimum(fp: &crate::api::instance::InstanceParameters) -> Option<String> {
    let engine = fp.engine.as_deref().unwrap_or("postgres");
    if engine != "postgres" {
        return None;
    }
    let size = fp.allocated_storage?;
    let (min, storage) = postgres_storage_minimum(fp.storage_type.as_deref(), fp.iops)?;
    (size < min).then(|| {
        format!(
            "spec.forProvider.allocatedStorage is {size} GiB, below the minimum of {min} GiB that RDS requires for postgres on {storage} storage: raise it to at least {min}, or choose another spec.forProvider.storageType; nothing was created"
        )
    })
}

/// What the spec lacks to create an instance, as the Synced message.
fn missing_for_create(obj: &Instance) -> Option<String> {
    let fp = &obj.spec.for_provider;
    let mut missing = Vec::new();
    if fp.instance_class.is_none() {
        missing.push("instanceClass");
    }
    if fp.allocated_storage.is_none() {
        missing.push("allocatedStorage");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "spec.forProvider.{} is required to create the RDS instance",
            missing.join(", spec.forProvider.")
        )
    })
}

/// The CreateDBInstance request for `obj` (pure).
pub(crate) fn create_request(obj: &Instance, id: &str, password: String) -> CreateRequest {
    let fp = &obj.spec.for_provider;
    CreateRequest {
        identifier: id.to_string(),
        engine: fp.engine.clone().unwrap_or_else(|| "postgres".into()),
        engine_version: fp.engine_version.clone(),
        instance_class: fp.instance_class.clone().unwrap_or_default(),
        allocated_storage: fp.allocated_storage,
        max_allocated_storage: fp.max_allocated_storage.filter(|m| *m > 0),
        storage_type: fp.storage_type.clone(),
        iops: fp.iops,
        storage_encrypted: fp.storage_encrypted,
        kms_key_id: fp.kms_key_id.clone(),
        db_name: fp.db_name.clone(),
        username: fp.username.clone().unwrap_or_else(|| "postgres".into()),
        password,
        multi_az: fp.multi_az,
        publicly_accessible: fp.publicly_accessible,
        db_subnet_group_name: fp.db_subnet_group_name.clone(),
        vpc_security_group_ids: fp.vpc_security_group_ids.clone().unwrap_or_default(),
        parameter_group_name: fp.parameter_group_name.clone(),
        backup_retention_period: fp.backup_retention_period,
        backup_window: fp.backup_window.clone(),
        maintenance_window: fp.maintenance_window.clone(),
        auto_minor_version_upgrade: fp.auto_minor_version_upgrade,
        deletion_protection: fp.deletion_protection,
        port: fp.port,
        tags: desired_tags(obj),
    }
}

/// The fields that differ from the spec, named for a note (with Update excluded).
fn drift(d: &Diff) -> Vec<String> {
    let mut drift: Vec<String> = d.modify.fields().iter().map(|f| f.to_string()).collect();
    drift.extend(
        d.refused
            .iter()
            .map(|r| r.split(':').next().unwrap_or_default().to_string()),
    );
    if !d.add_tags.is_empty() || !d.remove_tags.is_empty() {
        drift.push("tags".into());
    }
    drift
}

/// The drift as the lifecycle decides on it.
pub(crate) fn drift_of(d: &Diff) -> decide::Drift {
    if d.is_empty() {
        decide::Drift::UpToDate
    } else if !d.refused.is_empty() {
        decide::Drift::Refused {
            refused: d.refused.clone(),
            fields: drift(d),
        }
    } else {
        decide::Drift::Differs(drift(d))
    }
}

const PASSWORD_RULES: &str =
    "8 to 128 printable ASCII characters other than '/', '\"', '@' and space";

/// AddTagsToResource / RemoveTagsFromResource for the tags that differ; the fleet cache learns
/// the new tags.
pub(crate) async fn fix_tags(
    aws: &Aws,
    id: &str,
    d: &Diff,
    inst: &mut DbInstance,
) -> Result<(), super::model::AwsError> {
    let Some(arn) = inst.arn.clone() else {
        return Ok(());
    };
    if !d.add_tags.is_empty() {
        aws.rds.add_tags(&arn, &d.add_tags).await?;
        inst.tags.extend(d.add_tags.clone());
        aws.fleet.record(id, Some(inst.clone()));
    }
    if !d.remove_tags.is_empty() {
        aws.rds.remove_tags(&arn, &d.remove_tags).await?;
        for k in &d.remove_tags {
            inst.tags.remove(k);
        }
        aws.fleet.record(id, Some(inst.clone()));
    }
    Ok(())
}

/// The instance after the update step, with what the report says.
pub(crate) struct Updated {
    pub inst: DbInstance,
    pub notes: Vec<String>,
    /// A change waits for RDS to allow it.
    pub waiting: bool,
    /// The master password was just rotated: publish it whatever the RDS status.
    pub rotated: bool,
}

/// The Instance's steps, for the kind and for its namespaced twin (`M<Instance>` derefs to it).
macro_rules! instance_steps {
    ($t:ty) => {
impl Flow<'_, $t> {
    fn ready_from(&mut self, inst: &DbInstance) {
        let (s, r, m) = ready_for(inst.status());
        self.set(
            READY,
            s,
            r,
            format!("{m} (RDS instance {})", inst.identifier),
        );
    }

    /// Observe (one shared listing per poll), and create what is missing when Create is
    /// allowed.
    pub(crate) async fn observe_or_create(
        &mut self,
        policies: &Policies,
        aws: &Aws,
        id: &str,
    ) -> Result<Step<DbInstance>, Error> {
        let cfg = &self.ctx.shared.config;
        let observed = aws
            .fleet
            .observe(
                &*aws.rds,
                id,
                cfg.poll_interval,
                cfg.transitional_poll_interval,
                &self.ctx.shared.metrics,
            )
            .await;
        match observed {
            Err(e) => Ok(self.aws_failure(e)),
            Ok(Some(i)) => Ok(Step::Go(i)),
            Ok(None) if decide::found(policies, None, false) == Found::Create => {
                self.create(aws, id).await
            }
            Ok(None) => {
                self.status.at_provider = None;
                self.set(
                    READY,
                    ConditionStatus::False,
                    "Unavailable",
                    format!("RDS instance {id} does not exist"),
                );
                let b = Blocked::new(
                    "ExternalResourceMissing",
                    format!(
                        "RDS instance {id} does not exist in {} and managementPolicies exclude Create",
                        self.obj.spec.for_provider.region
                    ),
                );
                let poll = self.poll();
                Ok(self.block(b, Action::requeue(spread(poll))))
            }
        }
    }

    /// CreateDBInstance, with the master password persisted first.
    async fn create(&mut self, aws: &Aws, id: &str) -> Result<Step<DbInstance>, Error> {
        if let Some(msg) = invalid_for_create(&self.obj) {
            self.synced(false, "InvalidSpec", msg);
            self.set(
                READY,
                ConditionStatus::False,
                "Creating",
                "waiting for a valid spec",
            );
            return Ok(Step::Finish(Action::await_change()));
        }
        let password = match self.password(true).await? {
            Outcome::Ok(p) => p,
            Outcome::Blocked(b) => {
                self.synced(false, b.reason, b.message);
                self.set(
                    READY,
                    ConditionStatus::False,
                    "Creating",
                    "waiting for the master password",
                );
                return Ok(Step::Finish(Action::requeue(self.poll())));
            }
        };
        if !naming::is_acceptable_password(&password) {
            let b = Blocked::new(
                "InvalidPassword",
                format!("the master password must be {PASSWORD_RULES}"),
            );
            return Ok(self.block(b, Action::await_change()));
        }
        let req = create_request(&self.obj, id, password);
        tracing::info!(object = %self.key, identifier = id, "creating RDS instance");
        match aws.rds.create(&req).await {
            Ok(inst) => {
                aws.fleet.record(id, Some(inst.clone()));
                self.event(
                    EventType::Normal,
                    "CreatedExternalResource",
                    "CreateDBInstance",
                    format!("created RDS instance {id}"),
                )
                .await;
                self.status.managed_tag_keys = spec_tag_keys(&self.obj);
                Ok(Step::Go(inst))
            }
            Err(e) if e.class == ErrorClass::AlreadyExists => {
                match aws.fleet.describe_now(&*aws.rds, id).await {
                    Ok(Some(inst)) => Ok(Step::Go(inst)),
                    Ok(None) => Ok(Step::Finish(Action::requeue(self.transitional()))),
                    Err(e) => Ok(Step::Finish(self.aws_failed(e, false))),
                }
            }
            Err(e) => Ok(Step::Finish(self.aws_failed(e, false))),
        }
    }

    /// Bring the instance in line with the spec: ModifyDBInstance (with a rotated password),
    /// then tags. With Update excluded, only a note of the drift.
    pub(crate) async fn update(
        &mut self,
        policies: &Policies,
        aws: &Aws,
        id: &str,
        inst: DbInstance,
    ) -> Result<Step<Updated>, Error> {
        self.status.at_provider = Some(observation(&inst));
        self.ready_from(&inst);
        let d = diff(
            id,
            &self.obj.spec.for_provider,
            &inst,
            &desired_tags(&self.obj),
            &self.status.managed_tag_keys,
            &[OWNER_TAG, OWNER_UID_TAG],
        );
        let mut up = Updated {
            inst,
            notes: Vec::new(),
            waiting: false,
            rotated: false,
        };
        match decide::update(policies, &drift_of(&d)) {
            decide::Update::ObserveOnly(drift) => {
                if !drift.is_empty() {
                    up.notes.push(format!(
                        "differs from spec.forProvider in {} (not corrected: managementPolicies exclude Update)",
                        drift.join(", ")
                    ));
                }
                return Ok(Step::Go(up));
            }
            decide::Update::Refused(refused) => {
                // Keep observing (status stays current); nothing is sent until the spec changes.
                let b = Blocked::new(
                    "ImmutableField",
                    format!("cannot apply spec.forProvider: {}", refused.join("; ")),
                );
                let poll = self.poll();
                return Ok(self.block(b, Action::requeue(spread(poll))));
            }
            // Up to date or not, a rotated master password may still be sent.
            decide::Update::UpToDate | decide::Update::Update => {}
        }
        if let Step::Finish(a) = self.modify(aws, id, &d, &mut up).await? {
            return Ok(Step::Finish(a));
        }
        if let Err(e) = fix_tags(aws, id, &d, &mut up.inst).await {
            return Ok(self.aws_failure(e));
        }
        self.status.managed_tag_keys = spec_tag_keys(&self.obj);
        Ok(Step::Go(up))
    }

    /// ModifyDBInstance for the drift and a rotated master password, when RDS allows it now.
    async fn modify(
        &mut self,
        aws: &Aws,
        id: &str,
        d: &Diff,
        up: &mut Updated,
    ) -> Result<Step<()>, Error> {
        // A rotated master password goes in the same ModifyDBInstance as the drift.
        let mut modify = d.modify.clone();
        if is_modifiable(up.inst.status()) {
            modify.master_user_password = self.rotation().await?;
        }
        if let Some(p) = &modify.master_user_password
            && !naming::is_acceptable_password(&p.0)
        {
            let secret = self
                .password_location()
                .map(|(name, key, _)| format!("Secret {name} key {key:?}"))
                .unwrap_or_else(|_| "the password Secret".into());
            let b = Blocked::new(
                "InvalidPassword",
                format!(
                    "cannot rotate the master password: the new one in {secret} must be {PASSWORD_RULES} (the connection Secret keeps the current one)"
                ),
            );
            let poll = self.poll();
            return Ok(self.block(b, Action::requeue(poll)));
        }
        if modify.is_empty() {
            return Ok(Step::Go(()));
        }
        if !is_modifiable(up.inst.status()) {
            up.waiting = true;
            up.notes.push(format!(
                "waiting for RDS status {:?} to allow changing {}",
                up.inst.status(),
                modify.fields().join(", ")
            ));
            return Ok(Step::Go(()));
        }
        let fields = modify.fields().join(", ");
        tracing::info!(object = %self.key, identifier = %id, fields = %fields, "modifying RDS instance");
        let mut i = match aws.rds.modify(&modify).await {
            Ok(i) => i,
            Err(e) => return Ok(self.aws_failure(e)),
        };
        // Keep what we know that ModifyDBInstance may answer without: the tags, and the
        // endpoint the connection Secret is written from.
        if i.tags.is_empty() {
            i.tags = up.inst.tags.clone();
        }
        if i.address.is_none() {
            i.address = up.inst.address.clone();
        }
        if i.port.is_none() {
            i.port = up.inst.port;
        }
        aws.fleet.record(id, Some(i.clone()));
        up.inst = i;
        self.announce_modify(id, &modify).await;
        up.rotated = modify.master_user_password.is_some();
        Ok(Step::Go(()))
    }

    /// The Events of a successful ModifyDBInstance.
    async fn announce_modify(&mut self, id: &str, modify: &ModifyRequest) {
        let changed: Vec<&str> = modify
            .fields()
            .into_iter()
            .filter(|f| *f != MASTER_USER_PASSWORD)
            .collect();
        if !changed.is_empty() {
            let when = if modify.apply_immediately {
                " (applyImmediately)"
            } else {
                " (in the next maintenance window)"
            };
            self.event(
                EventType::Normal,
                "UpdatedExternalResource",
                "ModifyDBInstance",
                format!("modified {} of RDS instance {id}{when}", changed.join(", ")),
            )
            .await;
        }
        if modify.master_user_password.is_none() {
            return;
        }
        let secret = self
            .password_location()
            .map(|(name, _, _)| format!("Secret {name}"))
            .unwrap_or_else(|_| "the password Secret".into());
        let conn = self
            .obj
            .spec
            .write_connection_secret_to_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        tracing::info!(object = %self.key, identifier = %id, "master password rotated");
        self.event(
            EventType::Normal,
            "PasswordRotated",
            "ModifyDBInstance",
            format!(
                "sent the master password of {secret} to RDS instance {id}; publishing it in the connection Secret {conn}"
            ),
        )
        .await;
    }

    /// Publish the connection Secret (when the instance is available, or the password was just
    /// rotated), then the Synced condition and the next poll.
    pub(crate) async fn publish(&mut self, up: Updated) -> Result<Step<Action>, Error> {
        if (up.inst.status() == "available" || up.rotated)
            && let Outcome::Blocked(b) = self.connection_secret(&up.inst).await?
        {
            let poll = self.poll();
            return Ok(self.block(b, Action::requeue(poll)));
        }
        self.succeeded();
        let unsupported: Vec<&str> = self
            .obj
            .spec
            .for_provider
            .unsupported
            .keys()
            .map(String::as_str)
            .collect();
        if up.waiting {
            self.synced(false, "WaitingForRDS", up.notes.join("; "));
        } else if !unsupported.is_empty() {
            let mut msg = format!(
                "spec.forProvider fields not supported by paved were ignored: {}",
                unsupported.join(", ")
            );
            if !up.notes.is_empty() {
                msg.push_str("; ");
                msg.push_str(&up.notes.join("; "));
            }
            self.synced(false, "UnsupportedFields", msg);
        } else {
            self.synced(true, "ReconcileSuccess", up.notes.join("; "));
        }
        Ok(Step::Go(
            if is_transitional(up.inst.status()) || up.waiting {
                Action::requeue(self.transitional())
            } else {
                Action::requeue(spread(self.poll()))
            },
        ))
    }
}
    };
}
instance_steps!(Instance);
instance_steps!(M<Instance>);

/// RDS statuses in which an instance cannot be snapshotted: it is deleted without a final
/// snapshot (there is nothing a snapshot could save), or its deletion would be stuck for good.
pub(crate) const UNSNAPSHOTTABLE: [&str; 5] = [
    "failed",
    "incompatible-restore",
    "incompatible-network",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
];

/// How the final snapshot of a deletion was chosen, for the Events.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SnapshotNotes {
    /// The invalid finalSnapshotIdentifier the spec named, replaced by a derived one.
    pub invalid: Option<String>,
    /// The instance's RDS status allows no snapshot: deleted without one.
    pub unsnapshottable: Option<String>,
}

/// The DeleteDBInstance request (pure): a final snapshot unless skipFinalSnapshot or the RDS
/// `status` allows none. The snapshot is named by the spec or after the identifier, with the
/// deletion time appended, so that a second deletion under the same name never collides with
/// the first one's snapshot. Automated backups are kept unless the spec says otherwise.
pub(crate) fn delete_request(
    fp: &crate::api::instance::InstanceParameters,
    id: &str,
    status: &str,
    now: jiff::Timestamp,
) -> (super::model::DeleteRequest, SnapshotNotes) {
    let mut notes = SnapshotNotes::default();
    let unsnapshottable = UNSNAPSHOTTABLE.contains(&status);
    let skip = fp.skip_final_snapshot.unwrap_or(false) || unsnapshottable;
    if unsnapshottable && fp.skip_final_snapshot != Some(true) {
        notes.unsnapshottable = Some(status.to_string());
    }
    let stamped = |base: &str| naming::final_snapshot_identifier(base, now);
    let snapshot = match fp.final_snapshot_identifier.clone() {
        _ if skip => None,
        Some(s) if naming::is_valid_snapshot_identifier(&s) => {
            Some(naming::stamped_snapshot_identifier(&s, now))
        }
        Some(s) => {
            notes.invalid = Some(s);
            Some(stamped(id))
        }
        None => Some(stamped(id)),
    };
    let req = super::model::DeleteRequest {
        identifier: id.to_string(),
        skip_final_snapshot: skip,
        final_snapshot_identifier: snapshot,
        delete_automated_backups: Some(fp.delete_automated_backups.unwrap_or(false)),
    };
    (req, notes)
}

/// The Instance's delete steps, for the kind and for its namespaced twin.
macro_rules! instance_delete_steps {
    ($t:ty) => {
impl Flow<'_, $t> {
    /// The delete path once the AWS client is there: observe, check ownership, lift deletion
    /// protection when the spec asks, DeleteDBInstance with a final snapshot.
    pub(crate) async fn delete_step(
        &mut self,
        policies: &Result<Policies, String>,
        aws: &Aws,
        id: &str,
    ) -> Deletion {
        let inst = match aws.fleet.describe_now(&*aws.rds, id).await {
            Ok(i) => i,
            Err(e) => return Deletion::Finish(self.aws_failed(e, true)),
        };
        let decision = decide::delete(policies, self.delete_facts(inst.as_ref()));
        let Some(inst) = inst.filter(|_| decision != Delete::Gone) else {
            return Deletion::Release(format!("RDS instance {id} is gone"));
        };
        if decision == Delete::NotOwned {
            self.event(
                EventType::Warning,
                "ExternalResourceNotOwned",
                "DeleteDBInstance",
                format!("RDS instance {id} is not tagged as owned by this object: left untouched"),
            )
            .await;
            return Deletion::Release(format!(
                "RDS instance {id} is not owned by this object: not deleted"
            ));
        }
        self.status.at_provider = Some(observation(&inst));
        self.set(
            READY,
            ConditionStatus::False,
            "Deleting",
            format!("RDS status is {}", inst.status()),
        );
        match decision {
            Delete::Wait => {
                self.synced(
                    true,
                    "ReconcileSuccess",
                    format!("waiting for RDS to delete {id}"),
                );
                Deletion::Finish(Action::requeue(self.transitional()))
            }
            Delete::Unprotect => Deletion::Finish(self.unprotect(aws, id, &inst).await),
            Delete::Protected => Deletion::Finish(self.protected(id)),
            Delete::Gone | Delete::NotOwned | Delete::Delete => self.delete_call(aws, id).await,
        }
    }

    /// What the delete decision needs to know about the instance (`None`: it does not exist).
    fn delete_facts(&self, inst: Option<&DbInstance>) -> DeleteFacts {
        DeleteFacts {
            exists: inst.is_some(),
            owned: inst.is_some_and(|i| owned_by(&self.obj, i)),
            being_deleted: inst.is_some_and(|i| i.status() == "deleting"),
            protected: inst.is_some_and(|i| i.deletion_protection == Some(true)),
            unprotect_wanted: self.obj.spec.for_provider.deletion_protection == Some(false),
            modifiable: inst.is_some_and(|i| is_modifiable(i.status())),
        }
    }

    /// Turn deletion protection off, as the spec asks (and Update is allowed); delete next.
    async fn unprotect(&mut self, aws: &Aws, id: &str, inst: &DbInstance) -> Action {
        let req = ModifyRequest {
            identifier: id.to_string(),
            apply_immediately: true,
            deletion_protection: Some(false),
            ..Default::default()
        };
        match aws.rds.modify(&req).await {
            Ok(mut i) => {
                if i.tags.is_empty() {
                    i.tags = inst.tags.clone();
                }
                aws.fleet.record(id, Some(i));
                self.synced(
                    true,
                    "ReconcileSuccess",
                    "turned deletion protection off as the spec asks; deleting next",
                );
                Action::requeue(Duration::from_secs(1))
            }
            Err(e) => self.aws_failed(e, true),
        }
    }

    /// Deletion protection is on and stays on: say how to delete it.
    fn protected(&mut self, id: &str) -> Action {
        self.synced(
            false,
            "DeletionProtection",
            format!(
                "RDS instance {id} has deletion protection on; set spec.forProvider.deletionProtection: false (or turn it off in AWS) to delete it, or set deletionPolicy: Orphan to keep it"
            ),
        );
        Action::requeue(self.poll())
    }

    async fn delete_call(&mut self, aws: &Aws, id: &str) -> Deletion {
        let status = self
            .status
            .at_provider
            .as_ref()
            .and_then(|a| a.status.clone())
            .unwrap_or_default();
        let (req, notes) = delete_request(
            &self.obj.spec.for_provider,
            id,
            &status,
            jiff::Timestamp::now(),
        );
        let snapshot = req.final_snapshot_identifier.clone();
        if let Some(status) = &notes.unsnapshottable {
            self.event(
                EventType::Warning,
                "DeletingWithoutSnapshot",
                "DeleteDBInstance",
                format!("RDS instance {id} is {status}, and RDS cannot snapshot an instance in that state: deleting it without a final snapshot"),
            )
            .await;
        }
        if let (Some(s), Some(derived)) = (notes.invalid, &snapshot) {
            self.event(
                EventType::Warning,
                "InvalidFinalSnapshotIdentifier",
                "DeleteDBInstance",
                format!("finalSnapshotIdentifier {s:?} is not a valid snapshot identifier; using {derived}"),
            )
            .await;
        }
        tracing::info!(object = %self.key, identifier = %id, snapshot = ?snapshot, "deleting RDS instance");
        let transitional = Action::requeue(self.transitional());
        match aws.rds.delete(&req).await {
            Ok(i) => {
                aws.fleet.record(id, Some(i.clone()));
                let note = match &snapshot {
                    Some(s) => format!("deleting RDS instance {id}, final snapshot {s}"),
                    None => format!("deleting RDS instance {id} without a final snapshot"),
                };
                self.event(
                    EventType::Normal,
                    "DeletingExternalResource",
                    "DeleteDBInstance",
                    note,
                )
                .await;
                self.status.at_provider = Some(observation(&i));
                self.synced(
                    true,
                    "ReconcileSuccess",
                    format!("waiting for RDS to delete {id}"),
                );
                Deletion::Finish(transitional)
            }
            Err(e) if e.class == ErrorClass::NotFound => {
                Deletion::Release(format!("RDS instance {id} is gone"))
            }
            Err(e) if e.class == ErrorClass::InvalidState => {
                self.synced_refused(
                    "WaitingForRDS",
                    &e.code,
                    format!("RDS cannot delete {id} yet: {}: {}", e.code, e.message),
                );
                Deletion::Finish(transitional)
            }
            Err(e) => Deletion::Finish(self.aws_failed(e, true)),
        }
    }
}
    };
}
instance_delete_steps!(Instance);
instance_delete_steps!(M<Instance>);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_reasons() {
        // (RDS status, condition status, reason)
        let cases = [
            ("available", ConditionStatus::True, "Available"),
            ("creating", ConditionStatus::False, "Creating"),
            ("deleting", ConditionStatus::False, "Deleting"),
            ("storage-full", ConditionStatus::False, "Unavailable"),
            ("modifying", ConditionStatus::False, "Unavailable"),
        ];
        for (status, s, reason) in cases {
            let (got_s, got_r, msg) = ready_for(status);
            assert_eq!((got_s, got_r), (s, reason), "{status}");
            assert!(msg.contains(status));
        }
    }

    #[test]
    fn identifiers() {
        let ok = Some("db-1".to_string());
        // (external-name, previously observed, may create, reason when blocked)
        let cases = [
            (ok.clone(), None, true, None),
            (ok.clone(), Some("db-1"), true, None),
            (ok.clone(), Some("db-0"), true, Some("ImmutableField")),
            (ok.clone(), Some("db-0"), false, None),
            (
                Some("1bad".to_string()),
                None,
                true,
                Some("InvalidExternalName"),
            ),
            (
                Some("a--b".to_string()),
                None,
                true,
                Some("InvalidExternalName"),
            ),
            (None, None, false, Some("ExternalNameRequired")),
        ];
        for (i, (id, prev, create, blocked)) in cases.into_iter().enumerate() {
            let got = crate::managed::kind::check_identifier::<Instance>(id, prev, create);
            assert_eq!(
                got.as_ref().err().map(|b| b.reason),
                blocked,
                "case {i}: {got:?}"
            );
        }
    }

    fn instance(fp: serde_json::Value) -> Instance {
        let mut fp = fp;
        fp["region"] = "eu-west-1".into();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
            "metadata": {"name": "db", "namespace": "team", "uid": "u-1"},
            "spec": {"forProvider": fp}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn create_needs_class_and_storage() {
        let cases = [
            (
                serde_json::json!({}),
                Some("instanceClass, spec.forProvider.allocatedStorage"),
            ),
            (
                serde_json::json!({"instanceClass": "db.t3.micro"}),
                Some("allocatedStorage"),
            ),
            (
                serde_json::json!({"instanceClass": "db.t3.micro", "allocatedStorage": 20}),
                None,
            ),
        ];
        for (fp, missing) in cases {
            let got = missing_for_create(&instance(fp));
            assert_eq!(got.is_some(), missing.is_some(), "{got:?}");
            if let (Some(g), Some(m)) = (got, missing) {
                assert!(g.contains(m), "{g}");
            }
        }
    }

    #[test]
    fn postgres_storage_below_the_minimum_of_its_type_is_refused_before_create() {
        // (forProvider, refused with a message containing these, or None)
        let cases: [(serde_json::Value, Option<&[&str]>); 13] = [
            (
                json!({"allocatedStorage": 19}),
                Some(&["19 GiB", "minimum of 20", "gp2/gp3"]),
            ),
            (json!({"allocatedStorage": 20}), None),
            (
                json!({"allocatedStorage": 19, "storageType": "gp2"}),
                Some(&["20", "on gp2"]),
            ),
            (
                json!({"allocatedStorage": 19, "storageType": "gp3"}),
                Some(&["20", "on gp3"]),
            ),
            (json!({"allocatedStorage": 20, "storageType": "gp3"}), None),
            (
                json!({"allocatedStorage": 99, "storageType": "io1", "iops": 1000}),
                Some(&["99 GiB", "minimum of 100", "on io1"]),
            ),
            (
                json!({"allocatedStorage": 50, "storageType": "io2", "iops": 1000}),
                Some(&["minimum of 100", "on io2"]),
            ),
            (
                json!({"allocatedStorage": 100, "storageType": "io1", "iops": 1000}),
                None,
            ),
            (
                json!({"allocatedStorage": 50, "iops": 1000}),
                Some(&["minimum of 100", "io1 (storageType unset"]),
            ),
            (
                json!({"allocatedStorage": 5, "storageType": "standard"}),
                None,
            ),
            (
                json!({"allocatedStorage": 20, "engine": "postgres", "storageType": "io1"}),
                Some(&["minimum of 100"]),
            ),
            (json!({"allocatedStorage": 10, "engine": "mysql"}), None),
            (
                json!({"allocatedStorage": 10, "storageType": "aurora"}),
                None,
            ),
        ];
        for (i, (mut fp, want)) in cases.into_iter().enumerate() {
            fp["instanceClass"] = "db.t3.micro".into();
            let got = invalid_for_create(&instance(fp));
            match (got, want) {
                (None, None) => {}
                (Some(msg), Some(parts)) => {
                    assert!(
                        msg.starts_with("spec.forProvider.allocatedStorage"),
                        "case {i}: {msg}"
                    );
                    for p in parts {
                        assert!(msg.contains(p), "case {i}: {msg} lacks {p:?}");
                    }
                }
                (got, want) => panic!("case {i}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[tokio::test]
    async fn tags_are_fixed_only_where_they_differ() {
        use crate::managed::fake::FakeRds;
        use crate::managed::observe::Fleet;
        use std::sync::Arc;
        let obj = instance(serde_json::json!({"tags": {"team": "a", "env": "prod"}}));
        let fake = Arc::new(FakeRds::account(1, "available"));
        let aws = Aws {
            rds: fake.clone(),
            fleet: Arc::new(Fleet::default()),
        };
        let owner = [
            (OWNER_TAG.to_string(), "team/db".to_string()),
            (OWNER_UID_TAG.to_string(), "u-1".to_string()),
        ];
        let tags = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
            let mut t: BTreeMap<String, String> = owner.clone().into();
            t.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            t
        };
        // (ARN, AWS tags, previously managed keys, expected calls)
        type Case<'a> = (
            Option<&'a str>,
            BTreeMap<String, String>,
            Vec<String>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                Some("arn:db"),
                tags(&[("team", "a"), ("env", "prod")]),
                vec![],
                vec![],
            ),
            (
                Some("arn:db"),
                tags(&[("team", "b"), ("env", "prod")]),
                vec![],
                vec!["add_tags arn:db team=a"],
            ),
            (
                Some("arn:db"),
                tags(&[
                    ("team", "a"),
                    ("env", "prod"),
                    ("old", "x"),
                    ("theirs", "y"),
                ]),
                vec!["old".into(), "team".into()],
                vec!["remove_tags arn:db old"],
            ),
            // without an ARN (RDS did not say it yet), nothing is called
            (None, tags(&[("team", "b")]), vec![], vec![]),
        ];
        for (i, (arn, aws_tags, previous, calls)) in cases.into_iter().enumerate() {
            fake.calls.lock().unwrap().clear();
            let mut inst = DbInstance {
                identifier: "db-0".into(),
                arn: arn.map(Into::into),
                tags: aws_tags,
                ..Default::default()
            };
            let d = diff(
                "db-0",
                &obj.spec.for_provider,
                &inst,
                &desired_tags(&obj),
                &previous,
                &[OWNER_TAG, OWNER_UID_TAG],
            );
            fix_tags(&aws, "db-0", &d, &mut inst).await.unwrap();
            assert_eq!(fake.calls(), calls, "case {i}");
            if arn.is_some() {
                assert_eq!(
                    inst.tags.get("team").map(String::as_str),
                    Some("a"),
                    "case {i}"
                );
                assert!(!inst.tags.contains_key("old"), "case {i}");
            }
            // the fleet cache learnt the new tags (recorded, not listed again)
            assert_eq!(aws.fleet.len(), usize::from(!calls.is_empty()), "case {i}");
            aws.fleet.record("db-0", None);
        }
    }

    #[test]
    fn delete_with_and_without_final_snapshot() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let derived = naming::final_snapshot_identifier("db-1", now);
        let none = SnapshotNotes::default();
        // (spec, RDS status, skip sent, snapshot sent, notes)
        let cases = [
            (json!({}), "available", false, Some(derived.clone()), none),
            (
                json!({"skipFinalSnapshot": true}),
                "available",
                true,
                None,
                SnapshotNotes::default(),
            ),
            (
                json!({"skipFinalSnapshot": true, "finalSnapshotIdentifier": "last"}),
                "available",
                true,
                None,
                SnapshotNotes::default(),
            ),
            // a named snapshot gets the deletion time: a second deletion never collides
            (
                json!({"finalSnapshotIdentifier": "last-one"}),
                "available",
                false,
                Some(naming::stamped_snapshot_identifier("last-one", now)),
                SnapshotNotes::default(),
            ),
            (
                json!({"finalSnapshotIdentifier": "bad--name"}),
                "available",
                false,
                Some(derived),
                SnapshotNotes {
                    invalid: Some("bad--name".into()),
                    unsnapshottable: None,
                },
            ),
            // a failed instance cannot be snapshotted: deleted without one, and said so
            (
                json!({}),
                "failed",
                true,
                None,
                SnapshotNotes {
                    invalid: None,
                    unsnapshottable: Some("failed".into()),
                },
            ),
            (
                json!({"skipFinalSnapshot": true}),
                "failed",
                true,
                None,
                SnapshotNotes::default(),
            ),
        ];
        for (i, (fp, status, skip, snapshot, notes)) in cases.into_iter().enumerate() {
            let obj = instance(fp);
            let (req, got) = delete_request(&obj.spec.for_provider, "db-1", status, now);
            assert_eq!(req.identifier, "db-1", "case {i}");
            assert_eq!(req.skip_final_snapshot, skip, "case {i}");
            assert_eq!(req.final_snapshot_identifier, snapshot, "case {i}");
            assert_eq!(req.delete_automated_backups, Some(false), "case {i}");
            assert_eq!(got, notes, "case {i}");
        }
        let keep = instance(json!({"deleteAutomatedBackups": true}));
        let (req, _) = delete_request(&keep.spec.for_provider, "db-1", "available", now);
        assert_eq!(req.delete_automated_backups, Some(true));
    }

    #[test]
    fn create_request_defaults_and_owner_tags() {
        let obj = instance(serde_json::json!({
            "instanceClass": "db.t3.micro", "allocatedStorage": 20, "maxAllocatedStorage": 0,
            "tags": {"team": "a"}
        }));
        let req = create_request(&obj, "db-1", "pw".into());
        assert_eq!(req.engine, "postgres");
        assert_eq!(req.username, "postgres");
        assert_eq!(req.max_allocated_storage, None, "0 means no autoscaling");
        assert_eq!(req.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(req.tags.get(OWNER_TAG).map(String::as_str), Some("team/db"));
        assert_eq!(req.tags.get(OWNER_UID_TAG).map(String::as_str), Some("u-1"));
    }
}
