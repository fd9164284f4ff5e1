//! `parse-response`: from what the host observed to the payload of the
//! success or the error flow. [`parse_response`] is what a plugin's
//! `parse-response` does unless it overrides `Plugin::parse_response`.
//!
//! Success (a 2xx with a JSON body) passes the provider's JSON through
//! unchanged. Every failure, whatever caused it (an error status, a 2xx
//! whose body is empty or not JSON, a transport failure), has one shape
//! (each plugin's README.md documents it), so an error flow needs one code
//! path:
//!
//! ```json
//! {"problem": {"title": "...", "detail": "..."}, "status": 404, "retryable": false}
//! ```
//!
//! `problem` is the provider's own `{"title", "detail"}` when the error body
//! has one, otherwise made here from the status or the transport failure;
//! `status` is 0 when no response arrived; `retryable` is what the declared
//! retry policy says of this outcome (so after the host's retries ran out,
//! a flow can tell a transient failure from a final one). Any bytes are
//! accepted: no input makes this fail.

use serde_json::{Value as Json, json};

use crate::schema::{FailureKind, RetryPolicy};

/// A response that arrived (WIT `http-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why no usable response arrived (WIT `transport-failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub message: String,
}

/// How the request ended (WIT `transport-outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(HttpResponse),
    Failed(TransportFailure),
}

/// What the flow gets (WIT `flow-payload`): JSON text either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Success(String),
    Failure(String),
}

/// The payload for `outcome`; `retry` is the provider's declared policy,
/// which decides `retryable`.
pub fn parse_response(retry: &RetryPolicy, outcome: &Outcome) -> Payload {
    match outcome {
        Outcome::Response(response) => parse(retry, response),
        Outcome::Failed(failure) => {
            let title = match failure.kind {
                FailureKind::Connect => "could not connect to the API",
                FailureKind::Timeout => "the API did not answer in time",
                FailureKind::BodyTooLarge => "the response was too large to read",
                FailureKind::Io => "the connection failed mid-request",
            };
            problem_payload(
                json!({"title": title, "detail": failure.message}),
                0,
                retry.retries_failure(failure.kind),
            )
        }
    }
}

fn parse(retry: &RetryPolicy, response: &HttpResponse) -> Payload {
    let status = response.status;
    let body: Option<Json> = serde_json::from_slice(&response.body).ok();
    if (200..300).contains(&status) {
        // Parsed from these bytes, so they are UTF-8 JSON: pass them on as is.
        if body.is_some()
            && let Ok(text) = std::str::from_utf8(&response.body)
        {
            return Payload::Success(text.to_string());
        }
        // The contract: an empty or unreadable body is an error payload,
        // even with a 2xx status.
        let problem = if response.body.is_empty() {
            json!({ "title": "the API answered with an empty body" })
        } else {
            json!({
                "title": "the API answered with a body that is not JSON",
                "detail": excerpt(&response.body),
            })
        };
        return problem_payload(problem, status, false);
    }
    // The API's own problem, when the body is one: `title` text, `detail`
    // text if any (other members are dropped: the shape stays fixed).
    let own = body.as_ref().and_then(|b| {
        let title = b.get("title")?.as_str()?;
        let mut own = json!({ "title": title });
        if let Some(detail) = b.get("detail").and_then(Json::as_str) {
            own["detail"] = json!(detail);
        }
        Some(own)
    });
    let made = || {
        let mut made = json!({ "title": format!("the API answered with status {status}") });
        if !response.body.is_empty() {
            made["detail"] = json!(excerpt(&response.body));
        }
        made
    };
    problem_payload(
        own.unwrap_or_else(made),
        status,
        retry.retries_status(status),
    )
}

fn problem_payload(problem: Json, status: u16, retryable: bool) -> Payload {
    Payload::Failure(
        json!({ "problem": problem, "status": status, "retryable": retryable }).to_string(),
    )
}

/// The start of a body that is not the API's JSON, as text, for `detail`.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(500)]);
    if body.len() > 500 {
        format!("{text}...")
    } else {
        text.into_owned()
    }
}
