//! Classifies an HTTP outcome into a flow payload (WIT `parse-response`).
//!
//! - A 2xx response whose body is a JSON object: success, the body text
//!   unchanged (checked without building a tree of it). A `204 No
//!   Content` (a delete) is the success `{}`; any other empty body is a
//!   failure.
//! - Everything else is a failure in Adyen's own error shape, the
//!   `ServiceError` of its API, plus two fields flows need:
//!
//!   ```json
//!   {"status": 422, "errorCode": "14_030", "message": "...",
//!    "errorType": "validation", "pspReference": "...",
//!    "http_status": 422, "retryable": false}
//!   ```
//!
//!   - an Adyen error body keeps every field it has; `status` (the HTTP
//!     status), `errorCode` (`""`), `message` and `errorType` (from the
//!     status: 401/403 `security`, other 4xx `validation`, 5xx `internal`)
//!     are added when missing, `pspReference` is `null` when missing;
//!   - a body that is not a JSON object (empty, not UTF-8, not JSON, an
//!     array) on any status: `errorType` and `errorCode`
//!     `invalid_response`, a message saying what was wrong, and `raw_body`
//!     (UTF-8, lossy, at most [`MAX_RAW_BODY`] bytes, `raw_body_truncated`
//!     when cut);
//!   - no response (connect, timeout, I/O, a body over the host's cap):
//!     `errorType` `transport`, `errorCode` the failure kind (`connect`,
//!     `timeout`, `io`, `body_too_large`), the host's message, and `status`
//!     and `http_status` 0 (or the status line, if one arrived).
//!
//!   `http_status` is the HTTP status (0 without one); `retryable` says
//!   whether the plugin's retry policy retries such an outcome (so a flow
//!   that sees `true` knows the host already tried again, to no avail).
//!
//! Never panics, whatever the bytes; the work is linear in the body.

use serde_json::{Map, Value as Json};

use crate::settings::{FailureKind, retryable_failure, retryable_status};

/// Most bytes of an unusable body kept in `raw_body`.
pub const MAX_RAW_BODY: usize = 64 * 1024;

// The outcome and payload types are the WIT mirrors the kit defines (header
// names in lower case, as the host gives them); what is Adyen's is how
// they are classified, below.
pub use payhost_plugin_kit::response::{HttpResponse, Outcome, Payload, TransportFailure};

/// Classifies `outcome`. Every Checkout endpoint reports errors the same
/// way, so the object and operation do not change the classification.
pub fn parse_response(outcome: Outcome) -> Payload {
    match outcome {
        Outcome::Response(response) => classify(response),
        Outcome::Failed(failure) => transport_failure(failure),
    }
}

/// Adyen's `errorType` for a status, when the body does not say.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 | 403 => "security",
        400..=499 => "validation",
        500..=599 => "internal",
        _ => "unknown",
    }
}

fn classify(response: HttpResponse) -> Payload {
    let HttpResponse { status, body, .. } = response;
    let success = (200..300).contains(&status);
    let text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => return unusable(status, "the body is not valid UTF-8", e.as_bytes()),
    };
    if text.trim().is_empty() {
        // 204 No Content has no body by definition (a deleted stored payment
        // method); any other empty answer is not Adyen's (the contract: an
        // empty body is an error payload).
        if status == 204 {
            return Payload::Success("{}".to_string());
        }
        return unusable(status, "the body is empty", text.as_bytes());
    }
    if success {
        return match serde_json::from_str::<&serde_json::value::RawValue>(&text) {
            Ok(value) if value.get().starts_with('{') => Payload::Success(text),
            Ok(_) => unusable(
                status,
                "the body is JSON but not an object",
                text.as_bytes(),
            ),
            Err(e) => unusable(
                status,
                &format!("the body is not valid JSON ({e})"),
                text.as_bytes(),
            ),
        };
    }
    let mut error = match serde_json::from_str::<Json>(&text) {
        Ok(Json::Object(error)) => error,
        Ok(_) => {
            return unusable(
                status,
                "the body is JSON but not an object",
                text.as_bytes(),
            );
        }
        Err(e) => {
            return unusable(
                status,
                &format!("the body is not valid JSON ({e})"),
                text.as_bytes(),
            );
        }
    };
    // Flows rely on these being there with their types: a field of another
    // type is as good as missing.
    if !error.get("status").is_some_and(Json::is_u64) {
        error.insert("status".into(), status.into());
    }
    if !error.get("errorCode").is_some_and(Json::is_string) {
        error.insert("errorCode".into(), "".into());
    }
    if !error.get("message").is_some_and(Json::is_string) {
        error.insert(
            "message".into(),
            format!("Adyen answered HTTP {status} without an error message").into(),
        );
    }
    if !error.get("errorType").is_some_and(Json::is_string) {
        error.insert("errorType".into(), error_type_for_status(status).into());
    }
    if !error.get("pspReference").is_some_and(Json::is_string) {
        error.insert("pspReference".into(), Json::Null);
    }
    finish(error, status, retryable_status(status))
}

/// The failure for a response whose body is not a usable JSON object.
fn unusable(status: u16, what: &str, body: &[u8]) -> Payload {
    let mut cut = body.len().min(MAX_RAW_BODY);
    // Do not split a UTF-8 sequence.
    while cut < body.len() && cut > 0 && (body[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let truncated = cut < body.len();
    let mut message = format!("invalid response body from Adyen (HTTP {status}): {what}");
    if truncated {
        message.push_str(&format!(
            "; raw_body holds the first {cut} of {} bytes",
            body.len()
        ));
    }
    let mut error = base(status, "invalid_response", "invalid_response", message);
    error.insert(
        "raw_body".into(),
        String::from_utf8_lossy(&body[..cut]).into_owned().into(),
    );
    if truncated {
        error.insert("raw_body_truncated".into(), true.into());
    }
    finish(error, status, retryable_status(status))
}

fn transport_failure(failure: TransportFailure) -> Payload {
    let (code, default_message) = match failure.kind {
        FailureKind::Connect => ("connect", "could not connect to Adyen"),
        FailureKind::Timeout => ("timeout", "the request to Adyen timed out"),
        FailureKind::Io => ("io", "the connection to Adyen failed"),
        FailureKind::BodyTooLarge => (
            "body_too_large",
            "Adyen's response body exceeded the host's size limit",
        ),
    };
    let message = if failure.message.trim().is_empty() {
        default_message.to_string()
    } else {
        failure.message
    };
    let status = failure.status.unwrap_or(0);
    let error = base(status, code, "transport", message);
    finish(error, status, retryable_failure(failure.kind))
}

fn base(status: u16, code: &str, error_type: &str, message: String) -> Map<String, Json> {
    let mut error = Map::new();
    error.insert("status".into(), status.into());
    error.insert("errorCode".into(), code.into());
    error.insert("message".into(), message.into());
    error.insert("errorType".into(), error_type.into());
    error.insert("pspReference".into(), Json::Null);
    error
}

fn finish(mut error: Map<String, Json>, status: u16, retryable: bool) -> Payload {
    error.insert("http_status".into(), status.into());
    error.insert("retryable".into(), retryable.into());
    Payload::Failure(Json::Object(error).to_string())
}

#[cfg(test)]
mod tests;
