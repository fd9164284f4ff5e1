//! Classifies an HTTP outcome into a flow payload (WIT `parse-response`).
//!
//! - A 2xx response whose body is a JSON object: success, with the body text
//!   unchanged (checked without building a tree of it).
//! - Anything else is a failure, as JSON `{"error": {...}, "http_status": N}`:
//!   - a Stripe error body `{"error": {...}}` keeps all its fields; `type` is
//!     added from the status when missing (as stripe-python maps statuses to
//!     exception classes: 400/404 `invalid_request_error`, 401
//!     `authentication_error`, 402 `card_error`, 403 `permission_error`, 429
//!     `rate_limit_error` (also a 400 with code `rate_limit`), anything else,
//!     409 included, `api_error`), and `message` when missing;
//!   - an OAuth-style body `{"error": "code", "error_description": "..."}`
//!     becomes `{type, code, message}`;
//!   - an empty, non-UTF-8, non-JSON or non-object body, or a JSON object
//!     that is not a Stripe error, on any status: `type: "api_error"`, a
//!     message saying what was wrong, and `raw_body` (UTF-8, lossy, at most
//!     [`MAX_RAW_BODY`] bytes; `raw_body_truncated: true` when cut);
//!   - no response (connect, timeout, I/O): `api_connection_error` with the
//!     host's message; a body over the host's cap: `api_error`. Both carry
//!     `failure_kind` (`connect`, `timeout`, `io`, `body_too_large`), and
//!     `http_status` is the status if one arrived, else 0.
//! - The `request-id` response header, when present, is copied into
//!   `error.request_id` (unless the body already has one).
//!
//! Never panics, whatever the bytes.

use serde_json::{Map, Value as Json, json};

/// Most bytes of an unparseable body kept in `raw_body`.
pub const MAX_RAW_BODY: usize = 64 * 1024;

/// A response that arrived (WIT `http-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// WIT `failure-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Timeout,
    BodyTooLarge,
    Io,
}

/// WIT `transport-failure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub message: String,
}

/// WIT `transport-outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(HttpResponse),
    Failed(TransportFailure),
}

/// WIT `flow-payload`: JSON text for the success or the error flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Success(String),
    Failure(String),
}

/// Classifies `outcome`. `object` and `operation` do not change the
/// classification: every Stripe endpoint reports errors the same way.
pub fn parse_response(object: &str, operation: &str, outcome: Outcome) -> Payload {
    let _ = (object, operation);
    match outcome {
        Outcome::Response(response) => classify(response),
        Outcome::Failed(failure) => transport_failure(failure),
    }
}

/// The error `type` Stripe's SDKs derive from a status code.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 => "invalid_request_error",
        401 => "authentication_error",
        402 => "card_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

fn classify(response: HttpResponse) -> Payload {
    let HttpResponse {
        status,
        headers,
        body,
    } = response;
    let request_id = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("request-id"))
        .map(|(_, value)| value.as_str());
    let raw = RawError { status, request_id };
    let text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => return raw.fail("the body is not valid UTF-8", e.as_bytes()),
    };
    if text.trim().is_empty() {
        return raw.fail("the body is empty", text.as_bytes());
    }
    if (200..300).contains(&status) {
        return match serde_json::from_str::<&serde_json::value::RawValue>(&text) {
            Ok(value) if value.get().starts_with('{') => Payload::Success(text),
            Ok(_) => raw.fail("the body is JSON but not an object", text.as_bytes()),
            Err(e) => raw.fail(
                &format!("the body is not valid JSON ({e})"),
                text.as_bytes(),
            ),
        };
    }
    let mut top = match serde_json::from_str::<Json>(&text) {
        Ok(Json::Object(top)) => top,
        Ok(_) => return raw.fail("the body is JSON but not an object", text.as_bytes()),
        Err(e) => {
            return raw.fail(
                &format!("the body is not valid JSON ({e})"),
                text.as_bytes(),
            );
        }
    };
    let mut error = match top.remove("error") {
        Some(Json::Object(error)) => error,
        Some(Json::String(code)) => {
            // OAuth endpoints: {"error": "invalid_grant", "error_description": "..."}.
            let message = match top.remove("error_description") {
                Some(Json::String(d)) => d,
                _ => code.clone(),
            };
            let mut error = Map::new();
            error.insert("code".into(), Json::String(code));
            error.insert("message".into(), Json::String(message));
            error
        }
        _ => {
            return raw.fail(
                "the body is JSON but has no Stripe `error` object",
                text.as_bytes(),
            );
        }
    };
    // A `type` or `message` that is not a string is as good as missing:
    // flows rely on both being strings.
    if !error.get("type").is_some_and(Json::is_string) {
        // stripe-python: a 400 with code `rate_limit` is a rate-limit error
        // (older API versions reported rate limits that way).
        let error_type =
            if status == 400 && error.get("code").and_then(Json::as_str) == Some("rate_limit") {
                "rate_limit_error"
            } else {
                error_type_for_status(status)
            };
        error.insert("type".into(), error_type.into());
    }
    if !error.get("message").is_some_and(Json::is_string) {
        error.insert(
            "message".into(),
            format!("the API answered HTTP {status} without an error message").into(),
        );
    }
    raw.add_request_id(&mut error);
    finish(error, status)
}

/// Context for failures built from a response.
struct RawError<'a> {
    status: u16,
    request_id: Option<&'a str>,
}

impl RawError<'_> {
    fn add_request_id(&self, error: &mut Map<String, Json>) {
        if let Some(id) = self.request_id
            && !error.contains_key("request_id")
        {
            error.insert("request_id".into(), id.into());
        }
    }

    /// An `api_error` for a body that is not a usable JSON object.
    fn fail(&self, what: &str, body: &[u8]) -> Payload {
        let mut cut = body.len().min(MAX_RAW_BODY);
        // Do not split a UTF-8 sequence (a no-op for invalid bytes, which
        // the lossy conversion replaces anyway).
        while cut < body.len() && cut > 0 && (body[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        let truncated = cut < body.len();
        let mut message = format!(
            "invalid response body from the API (HTTP {}): {what}",
            self.status
        );
        if truncated {
            message.push_str(&format!(
                "; raw_body holds the first {cut} of {} bytes",
                body.len()
            ));
        }
        let mut error = Map::new();
        error.insert("type".into(), "api_error".into());
        error.insert("message".into(), message.into());
        error.insert(
            "raw_body".into(),
            String::from_utf8_lossy(&body[..cut]).into_owned().into(),
        );
        if truncated {
            error.insert("raw_body_truncated".into(), true.into());
        }
        self.add_request_id(&mut error);
        finish(error, self.status)
    }
}

fn transport_failure(failure: TransportFailure) -> Payload {
    let (error_type, kind, default_message) = match failure.kind {
        FailureKind::Connect => (
            "api_connection_error",
            "connect",
            "could not connect to the API",
        ),
        FailureKind::Timeout => (
            "api_connection_error",
            "timeout",
            "the request to the API timed out",
        ),
        FailureKind::Io => (
            "api_connection_error",
            "io",
            "the connection to the API failed",
        ),
        FailureKind::BodyTooLarge => (
            "api_error",
            "body_too_large",
            "the response body exceeded the host's size limit",
        ),
    };
    let message = if failure.message.trim().is_empty() {
        default_message.to_string()
    } else {
        failure.message
    };
    let mut error = Map::new();
    error.insert("type".into(), error_type.into());
    error.insert("message".into(), message.into());
    error.insert("failure_kind".into(), kind.into());
    finish(error, failure.status.unwrap_or(0))
}

fn finish(error: Map<String, Json>, status: u16) -> Payload {
    Payload::Failure(json!({ "error": error, "http_status": status }).to_string())
}

#[cfg(test)]
mod tests;
