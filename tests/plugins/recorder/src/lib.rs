//! Test plugin `recorder`: well behaved, but it writes everything it receives
//! to stderr (`recorder-input: ...` from `build-request`, `recorder-response:
//! ...` from `parse-response`). Secret-leak tests load it with a secret
//! configured and check that the secret never appears in those lines (or in
//! anything else the plugin can observe). It advertises basic-user auth, an
//! `Idempotency-Key` header and a `Stripe-Should-Retry` header.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");
include!("../../common_params.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, FlowPayload, HttpMethod, HttpRequest, PluginError, ProviderInfo, RequestInput,
    TransportOutcome,
};

struct Recorder;

impl Guest for Recorder {
    fn info() -> ProviderInfo {
        ProviderInfo {
            auth: AuthScheme::BasicUser,
            idempotency_header: Some("Idempotency-Key".to_string()),
            should_retry_header: Some("Stripe-Should-Retry".to_string()),
            ..thing_info("recorder")
        }
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        eprintln!("recorder-input: object={object:?} operation={operation:?} {input:?}");
        let (content_type, body) = match text_param(&input.params, "name") {
            Some(name) => (
                Some("application/x-www-form-urlencoded".to_string()),
                format!("name={}", form_encode(&name)).into_bytes(),
            ),
            None => (None, Vec::new()),
        };
        Ok(HttpRequest {
            method: HttpMethod::Post,
            path: "/v1/things".to_string(),
            query: String::new(),
            headers: Vec::new(),
            content_type,
            body,
        })
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        eprintln!("recorder-response: {outcome:?}");
        match &outcome {
            TransportOutcome::Response(response) if !(200..300).contains(&response.status) => {
                let status = response.status;
                FlowPayload::Failure(format!(
                    r#"{{"error":{{"type":"api_error","message":"status {status}"}},"http_status":{status}}}"#
                ))
            }
            _ => body_as_success(outcome),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

export!(Recorder);
