//! The guard every AWS call of the network kinds goes through, as [`super::client::Guarded`]
//! is for the Instance's: the token bucket of the account and region, retries with backoff and
//! jitter for throttling and 5xx, and a metric per attempt. Also the classification of the
//! error codes of DB subnet groups, DB parameter groups, security groups and their rules.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::client::{RetryPolicy, TokenBucket};
use super::metrics::RdsMetrics;
use super::model::{AwsError, ErrorClass, backoff, classify};

/// Token bucket, retry policy and metrics of one client.
#[derive(Clone)]
pub struct Guard {
    pub bucket: Arc<TokenBucket>,
    pub metrics: Arc<RdsMetrics>,
    pub retry: RetryPolicy,
}

impl Guard {
    /// Run `f` under the bucket, retrying transient errors. `NotFound` answers of describes are
    /// the caller's to interpret.
    pub async fn call<'a, T, F>(&'a self, operation: &'static str, f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> BoxFuture<'a, Result<T, AwsError>>,
    {
        let limits = (&*self.bucket, &*self.metrics, &self.retry);
        retried(limits, operation, |_| "success", true, f).await
    }
}

/// Run `f` under the token bucket, recording the outcome of each attempt (`ok` names a success)
/// and retrying transient errors with backoff per the policy. A timeout is tried again only when
/// `retry_timeouts`: each try waits the whole timeout.
pub(crate) async fn retried<'a, T, F>(
    (bucket, metrics, retry): (&TokenBucket, &RdsMetrics, &RetryPolicy),
    operation: &'static str,
    ok: fn(&T) -> &'static str,
    retry_timeouts: bool,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> BoxFuture<'a, Result<T, AwsError>>,
{
    let mut attempt = 1;
    loop {
        bucket.acquire().await;
        let res = f().await;
        match &res {
            Ok(v) => metrics.record_call(operation, ok(v)),
            Err(e) => metrics.record_call(operation, e.outcome()),
        }
        match res {
            Err(e) if !retry_timeouts && e.code == "Timeout" => {
                tracing::warn!(operation, message = %e.message, "AWS did not answer");
                return Err(e);
            }
            Err(e) if e.class == ErrorClass::Transient && attempt < retry.max_attempts => {
                if e.outcome() == "throttled" {
                    bucket.penalize().await;
                }
                tracing::debug!(operation, attempt, code = %e.code, "transient AWS error, retrying");
                tokio::time::sleep(backoff(attempt, retry.base, retry.max)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Declare a trait of AWS calls and its [`Guarded`] implementation from one list, so that each
/// call's signature is written once: every method of `Guarded<A>` runs `A`'s under the guard,
/// named by the AWS operation in brackets before it (an expression: a rule's operation depends
/// on its direction). Arguments are cloned into each attempt (they are references or small).
macro_rules! guarded_api {
    (
        $(#[$tmeta:meta])*
        $vis:vis trait $name:ident {
            $(
                $(#[$meta:meta])*
                [$op:expr]
                fn $method:ident $(<$lt:lifetime>)? (&$($slt:lifetime)? self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$tmeta])*
        $vis trait $name: Send + Sync {
            $(
                $(#[$meta])*
                fn $method $(<$lt>)? (&$($slt)? self $(, $arg: $ty)*) -> $ret;
            )*
        }

        impl<A: $name> $name for $crate::managed::guard::Guarded<A> {
            $(
                fn $method $(<$lt>)? (&$($slt)? self $(, $arg: $ty)*) -> $ret {
                    Box::pin(self.guard.call($op, move || {
                        self.inner.$method($(::std::clone::Clone::clone(&$arg)),*)
                    }))
                }
            )*
        }
    };
}
pub(crate) use guarded_api;

/// A client of the network traits (DB subnet and parameter groups, security groups and rules)
/// with the [`Guard`] around it; each kind's file implements its trait for it.
pub struct Guarded<A> {
    pub inner: A,
    pub guard: Guard,
}

/// Whether an AWS error says the resource is still in use by another (a DB instance in the
/// subnet group, a network interface in the security group, a rule of another group naming it).
/// Deletion then waits with a condition naming the dependency.
pub fn is_dependency_violation(e: &AwsError) -> bool {
    matches!(
        e.code.as_str(),
        "DependencyViolation"
            | "InvalidDBSubnetGroupStateFault"
            | "InvalidDBSubnetGroupState"
            | "InvalidDBParameterGroupState"
            | "InvalidDBParameterGroupStateFault"
            | "InvalidGroup.InUse"
    )
}

/// Classify the error codes of the network kinds (then as [`classify`] does).
pub fn classify_net(code: &str, http_status: Option<u16>) -> ErrorClass {
    match code {
        "DBSubnetGroupNotFoundFault"
        | "DBSubnetGroupNotFound"
        | "DBParameterGroupNotFound"
        | "DBParameterGroupNotFoundFault"
        | "InvalidGroup.NotFound"
        | "InvalidGroupId.NotFound"
        | "InvalidSecurityGroupRuleId.NotFound"
        | "InvalidPermission.NotFound" => ErrorClass::NotFound,
        "DBSubnetGroupAlreadyExists"
        | "DBSubnetGroupAlreadyExistsFault"
        | "DBParameterGroupAlreadyExists"
        | "DBParameterGroupAlreadyExistsFault"
        | "InvalidGroup.Duplicate"
        | "InvalidPermission.Duplicate" => ErrorClass::AlreadyExists,
        c if is_dependency_violation(&AwsError {
            operation: "",
            class: ErrorClass::Terminal,
            code: c.to_string(),
            message: String::new(),
            http_status,
        }) =>
        {
            ErrorClass::InvalidState
        }
        _ => classify(code, http_status),
    }
}

/// An [`AwsError`] classified by [`classify_net`].
pub fn net_error(
    operation: &'static str,
    code: &str,
    message: impl Into<String>,
    http_status: Option<u16>,
) -> AwsError {
    AwsError {
        operation,
        class: classify_net(code, http_status),
        code: code.to_string(),
        message: message.into(),
        http_status,
    }
}

/// The error of a network kind's call whose response lacked what paved needs (`what`: the
/// element, as AWS names it).
pub fn response_lacks(operation: &'static str, what: &str) -> AwsError {
    net_error(
        operation,
        "ResponseError",
        format!("the response did not contain a {what}"),
        None,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn network_codes() {
        // (code, http, class)
        let cases = [
            ("InvalidGroup.NotFound", 400, ErrorClass::NotFound),
            ("DBSubnetGroupNotFoundFault", 404, ErrorClass::NotFound),
            (
                "InvalidPermission.Duplicate",
                400,
                ErrorClass::AlreadyExists,
            ),
            (
                "DBParameterGroupAlreadyExists",
                400,
                ErrorClass::AlreadyExists,
            ),
            ("DependencyViolation", 400, ErrorClass::InvalidState),
            (
                "InvalidDBSubnetGroupStateFault",
                400,
                ErrorClass::InvalidState,
            ),
            ("InvalidSubnetID.NotFound", 400, ErrorClass::Terminal),
            ("RequestLimitExceeded", 503, ErrorClass::Transient),
            ("InternalError", 500, ErrorClass::Transient),
        ];
        for (code, http, class) in cases {
            assert_eq!(classify_net(code, Some(http)), class, "{code}");
        }
        assert!(is_dependency_violation(&net_error(
            "DeleteSecurityGroup",
            "DependencyViolation",
            "resource sg-1 has a dependent object",
            Some(400)
        )));
    }
}
