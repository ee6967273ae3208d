//! A test-only [`RdsApi`]: an account whose instances `db-0` … `db-{n-1}` all have one status,
//! counting fleet pages and targeted describes; its first fleet pages can fail with a chosen
//! AWS error. Creates, modifies, deletes and tag changes succeed and change nothing; each is
//! recorded in [`FakeRds::calls`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;

use super::client::{PAGE_SIZE, RdsApi};
use super::model::{
    AwsError, CreateRequest, DbInstance, DeleteRequest, DescribePage, ModifyRequest,
};

pub(crate) struct FakeRds {
    ids: Vec<String>,
    status: &'static str,
    /// Fleet pages still to fail, and how.
    failures: Mutex<u32>,
    fail_code: &'static str,
    fail_http: u16,
    /// DescribeDBInstances pages served (or failed).
    pub pages: AtomicUsize,
    /// Targeted DescribeDBInstances.
    pub describes: AtomicUsize,
    /// The changing calls, in order: `create db-1`, `add_tags arn k=v`, `remove_tags arn k`, ...
    pub calls: Mutex<Vec<String>>,
}

impl FakeRds {
    /// `n` instances in `status`.
    pub(crate) fn account(n: usize, status: &'static str) -> Self {
        Self {
            ids: (0..n).map(|i| format!("db-{i}")).collect(),
            status,
            failures: Mutex::new(0),
            fail_code: "",
            fail_http: 0,
            pages: AtomicUsize::new(0),
            describes: AtomicUsize::new(0),
            calls: Mutex::default(),
        }
    }

    /// The next `n` fleet pages fail with the AWS error `code` (HTTP status `http`).
    pub(crate) fn failing_pages(mut self, n: u32, code: &'static str, http: u16) -> Self {
        self.failures = Mutex::new(n);
        self.fail_code = code;
        self.fail_http = http;
        self
    }

    fn call(&self, c: String) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    /// The changing calls made so far.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn instance(&self, id: &str) -> DbInstance {
        DbInstance {
            identifier: id.to_string(),
            status: Some(self.status.into()),
            ..Default::default()
        }
    }
}

impl RdsApi for FakeRds {
    fn describe_page<'a>(
        &'a self,
        marker: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DescribePage, AwsError>> {
        Box::pin(async move {
            self.pages.fetch_add(1, Ordering::SeqCst);
            {
                let mut left = self.failures.lock().unwrap_or_else(|p| p.into_inner());
                if *left > 0 {
                    *left -= 1;
                    return Err(AwsError::new(
                        "DescribeDBInstances",
                        self.fail_code,
                        "injected by FakeRds",
                        Some(self.fail_http),
                    ));
                }
            }
            let page = usize::try_from(PAGE_SIZE).unwrap_or(100);
            let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
            let end = (start + page).min(self.ids.len());
            Ok(DescribePage {
                instances: self
                    .ids
                    .get(start..end)
                    .unwrap_or_default()
                    .iter()
                    .map(|id| self.instance(id))
                    .collect(),
                marker: (end < self.ids.len()).then(|| end.to_string()),
            })
        })
    }

    /// Like RDS: an identifier that does not exist is a DBInstanceNotFound error.
    fn describe<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<DbInstance>, AwsError>> {
        Box::pin(async move {
            self.describes.fetch_add(1, Ordering::SeqCst);
            if self.ids.iter().any(|i| i == identifier) {
                Ok(Some(self.instance(identifier)))
            } else {
                Err(AwsError::new(
                    "DescribeDBInstances",
                    "DBInstanceNotFound",
                    format!("DBInstance {identifier} not found"),
                    Some(404),
                ))
            }
        })
    }

    fn create<'a>(&'a self, r: &'a CreateRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        self.call(format!("create {}", r.identifier));
        Box::pin(async { Ok(DbInstance::default()) })
    }

    fn modify<'a>(&'a self, r: &'a ModifyRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        self.call(format!("modify {} {}", r.identifier, r.fields().join(",")));
        Box::pin(async { Ok(DbInstance::default()) })
    }

    fn delete<'a>(&'a self, r: &'a DeleteRequest) -> BoxFuture<'a, Result<DbInstance, AwsError>> {
        self.call(format!("delete {}", r.identifier));
        Box::pin(async { Ok(DbInstance::default()) })
    }

    fn add_tags<'a>(
        &'a self,
        arn: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        let kv: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.call(format!("add_tags {arn} {}", kv.join(",")));
        Box::pin(async { Ok(()) })
    }

    fn remove_tags<'a>(
        &'a self,
        arn: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.call(format!("remove_tags {arn} {}", keys.join(",")));
        Box::pin(async { Ok(()) })
    }
}
