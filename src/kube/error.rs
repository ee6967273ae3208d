//! Kubernetes API errors in plain words, for conditions, Events and logs.
//!
//! kube's own `Display` of an API error appends the whole `Status` in Debug form
//! (`ApiError: ... (Status { status: Some(Failure), code: 422, ... ListMeta { continue_: None ...`),
//! which a user should never read. [`error_text`] says the same once: the HTTP code, the API
//! server's reason and its message.

/// A kube client error as one line a user can read: `422 Invalid: <the API server's message>`
/// for an answer of the API server, the error's own text (with its causes, once each) otherwise.
pub fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => status_text(s.code, &s.reason, &s.message),
        other => chain_text(other),
    }
}

/// `<code> <reason>: <message>`; the reason falls back to the API server's usual reason for the code, the message
/// to "no message".
pub fn status_text(code: u16, reason: &str, message: &str) -> String {
    let reason = if reason.is_empty() {
        match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Gone",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Error",
        }
    } else {
        reason
    };
    let message = message.trim();
    if message.is_empty() {
        format!("{code} {reason}: the API server gave no message")
    } else {
        format!("{code} {reason}: {message}")
    }
}

/// An error and its causes, `: `-separated, each said once (a cause whose text its parent
/// already contains is skipped).
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !t.is_empty() && !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
            "metadata": {},
            "details": {"name": "db", "kind": "instances"},
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn api_errors_read_as_code_reason_message_once() {
        let cases = [
            (
                api(
                    422,
                    "Invalid",
                    "Instance.rds.aws.upbound.io \"db\" is invalid: spec.forProvider.allocatedStorage: Invalid value: 5: should be greater than or equal to 20",
                ),
                "422 Invalid: Instance.rds.aws.upbound.io \"db\" is invalid: spec.forProvider.allocatedStorage: Invalid value: 5: should be greater than or equal to 20",
                "422",
            ),
            (
                api(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on instances \"db\": the object has been modified",
                ),
                "409 Conflict: Operation cannot be fulfilled on instances \"db\": the object has been modified",
                "409",
            ),
            (
                api(403, "", "secrets is forbidden"),
                "403 Forbidden: secrets is forbidden",
                "403",
            ),
            (
                api(500, "InternalError", ""),
                "500 InternalError: the API server gave no message",
                "500",
            ),
        ];
        for (i, (e, want, code)) in cases.iter().enumerate() {
            // what kube itself would print: the Debug dump this module exists to avoid
            assert!(e.to_string().contains("Some(Failure)"), "case {i}");
            let got = error_text(e);
            assert_eq!(&got, want, "case {i}");
            for bad in ["Status {", "Some(", "ListMeta", "continue_", "ApiError"] {
                assert!(!got.contains(bad), "case {i}: {got}");
            }
            assert_eq!(got.matches(code).count(), 1, "case {i}: {got}");
        }
    }

    #[test]
    fn other_errors_say_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("connecting: {0}")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(chain_text(&e), "connecting: connection refused");
    }
}
