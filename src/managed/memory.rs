//! An RDS account in memory, for tests of the lifecycle against the real API server with AWS
//! answers the emulator cannot give (an instance in `failed`, a snapshot name already taken).
//! It keeps the instances it is asked to create, answers like RDS where paved relies on it
//! (NotFound, AlreadyExists, no final snapshot of a failed instance, unique snapshot names), and
//! records every changing request. Injected through `RdsConfig::rds_api`; paved never uses it
//! otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::client::{PAGE_SIZE, RdsApi};
use super::instance::UNSNAPSHOTTABLE;
use super::model::{
    AwsError, CreateRequest, DbInstance, DeleteRequest, DescribePage, ModifyRequest,
};

/// A changing request, as the account received it.
#[derive(Clone, Debug)]
pub enum Request {
    Create(String),
    Modify(Box<ModifyRequest>),
    Delete(DeleteRequest),
    AddTags(String, BTreeMap<String, String>),
    RemoveTags(String, Vec<String>),
}

#[derive(Default)]
struct Account {
    instances: BTreeMap<String, DbInstance>,
    snapshots: BTreeSet<String>,
    requests: Vec<Request>,
}

/// The account. Instances are `available` as soon as they are created, and gone as soon as
/// they are deleted.
#[derive(Default)]
pub struct MemoryRds {
    account: Mutex<Account>,
}

fn error(operation: &'static str, code: &'static str, message: String, http: u16) -> AwsError {
    AwsError::new(operation, code, message, Some(http))
}

impl MemoryRds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the RDS status of an instance (as AWS might, e.g. `failed`).
    pub fn set_status(&self, identifier: &str, status: &str) {
        if let Some(i) = self.lock().instances.get_mut(identifier) {
            i.status = Some(status.to_string());
        }
    }

    /// The instance as the account has it.
    pub fn instance(&self, identifier: &str) -> Option<DbInstance> {
        self.lock().instances.get(identifier).cloned()
    }

    /// The identifiers of its instances.
    pub fn identifiers(&self) -> Vec<String> {
        self.lock().instances.keys().cloned().collect()
    }

    /// The final snapshots taken so far.
    pub fn snapshots(&self) -> Vec<String> {
        self.lock().snapshots.iter().cloned().collect()
    }

    /// The changing requests so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    fn create_now(&self, r: &CreateRequest) -> Result<DbInstance, AwsError> {
        let mut a = self.lock();
        a.requests.push(Request::Create(r.identifier.clone()));
        if a.instances.contains_key(&r.identifier) {
            return Err(error(
                "CreateDBInstance",
                "DBInstanceAlreadyExists",
                format!("DB instance {} already exists", r.identifier),
                400,
            ));
        }
        let i = DbInstance {
            identifier: r.identifier.clone(),
            arn: Some(format!(
                "arn:aws:rds:memory:000000000000:db:{}",
                r.identifier
            )),
            status: Some("available".into()),
            engine: Some(r.engine.clone()),
            engine_version: r.engine_version.clone(),
            instance_class: Some(r.instance_class.clone()),
            allocated_storage: r.allocated_storage,
            db_name: r.db_name.clone(),
            username: Some(r.username.clone()),
            address: Some(format!("{}.memory.invalid", r.identifier)),
            port: Some(r.port.unwrap_or(5432)),
            tags: r.tags.clone(),
            ..Default::default()
        };
        a.instances.insert(r.identifier.clone(), i.clone());
        Ok(i)
    }

    fn modify_now(&self, r: &ModifyRequest) -> Result<DbInstance, AwsError> {
        let mut a = self.lock();
        a.requests.push(Request::Modify(Box::new(r.clone())));
        let Some(i) = a.instances.get_mut(&r.identifier) else {
            return Err(not_found("ModifyDBInstance", &r.identifier));
        };
        if let Some(c) = &r.instance_class {
            i.instance_class = Some(c.clone());
        }
        if let Some(s) = r.allocated_storage {
            i.allocated_storage = Some(s);
        }
        if let Some(p) = r.deletion_protection {
            i.deletion_protection = Some(p);
        }
        Ok(i.clone())
    }

    fn delete_now(&self, r: &DeleteRequest) -> Result<DbInstance, AwsError> {
        const OP: &str = "DeleteDBInstance";
        let mut a = self.lock();
        a.requests.push(Request::Delete(r.clone()));
        let Some(i) = a.instances.get(&r.identifier).cloned() else {
            return Err(not_found(OP, &r.identifier));
        };
        let status = i.status.clone().unwrap_or_default();
        if let Some(snapshot) = r
            .final_snapshot_identifier
            .as_ref()
            .filter(|_| !r.skip_final_snapshot)
        {
            if UNSNAPSHOTTABLE.contains(&status.as_str()) {
                return Err(error(
                    OP,
                    "InvalidDBInstanceState",
                    format!(
                        "Cannot create a snapshot of DB instance {} in state {status}",
                        r.identifier
                    ),
                    400,
                ));
            }
            if !a.snapshots.insert(snapshot.clone()) {
                return Err(error(
                    OP,
                    "DBSnapshotAlreadyExists",
                    format!("DB snapshot {snapshot} already exists"),
                    400,
                ));
            }
        }
        a.instances.remove(&r.identifier);
        Ok(DbInstance {
            status: Some("deleting".into()),
            ..i
        })
    }
}

fn not_found(operation: &'static str, identifier: &str) -> AwsError {
    error(
        operation,
        "DBInstanceNotFound",
        format!("DBInstance {identifier} not found"),
        404,
    )
}

impl RdsApi for MemoryRds {
    fn describe_page<'a>(
        &'a self,
        marker: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DescribePage, AwsError>> {
        let a = self.lock();
        let page = usize::try_from(PAGE_SIZE).unwrap_or(100);
        let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
        let instances: Vec<DbInstance> = a
            .instances
            .values()
            .skip(start)
            .take(page)
            .cloned()
            .collect();
        let marker = (start + page < a.instances.len()).then(|| (start + page).to_string());
        Box::pin(async move { Ok(DescribePage { instances, marker }) })
    }

    fn describe<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<DbInstance>, AwsError>> {
        let found = self.instance(identifier);
        Box::pin(async move {
            match found {
                Some(i) => Ok(Some(i)),
                None => Err(not_found("DescribeDBInstances", identifier)),
            }
        })
    }

    fn create<'a>(&'a self, r: &'a CreateRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        let res = self.create_now(r);
        Box::pin(async move { res })
    }

    fn modify<'a>(&'a self, r: &'a ModifyRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        let res = self.modify_now(r);
        Box::pin(async move { res })
    }

    fn delete<'a>(&'a self, r: &'a DeleteRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        let res = self.delete_now(r);
        Box::pin(async move { res })
    }

    fn add_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        let mut a = self.lock();
        a.requests
            .push(Request::AddTags(arn.to_string(), tags.clone()));
        if let Some(i) = a
            .instances
            .values_mut()
            .find(|i| i.arn.as_deref() == Some(arn))
        {
            i.tags.extend(tags.clone());
        }
        Box::pin(async { Ok(()) })
    }

    fn remove_tags<'a>(
        &'a self,
        arn: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        let mut a = self.lock();
        a.requests
            .push(Request::RemoveTags(arn.to_string(), keys.to_vec()));
        if let Some(i) = a
            .instances
            .values_mut()
            .find(|i| i.arn.as_deref() == Some(arn))
        {
            for k in keys {
                i.tags.remove(k);
            }
        }
        Box::pin(async { Ok(()) })
    }
}
