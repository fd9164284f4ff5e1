//! Test plugin `recorder`: well behaved, but it writes everything it receives
//! to stderr (`recorder-configure: ...` from `configure`, `recorder-input:
//! ...` from `build-request`, with the `name` param decoded next to the raw
//! tree, `recorder-response: ...` from `parse-response`). Secret-leak tests load it with a secret configured and
//! check that the secret never appears in those lines (or in anything else
//! the plugin can observe).
//!
//! It mirrors the Stripe plugin's declarations: a secret setting
//! `secret_key` (so the host reads `RECORDER_SECRET_KEY`) used as the basic
//! auth user name with no password, a non-secret setting `account` with a
//! default (so `configure` has something to record, and a test can check
//! that it gets exactly the non-secret settings), an `Idempotency-Key`
//! header, a `Stripe-Should-Retry` header, and Stripe's retried outcomes
//! (409, 5xx, and every transport failure but a body over the cap).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");
include!("../../common_params.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, BasicAuth, FailureKind, FlowPayload, HttpMethod, HttpRequest, PluginError,
    ProviderInfo, RequestInput, RetryPolicy, SettingInfo, StatusRange, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Recorder;

impl Guest for Recorder {
    fn info() -> ProviderInfo {
        ProviderInfo {
            settings: vec![
                SettingInfo {
                    name: "secret_key".to_string(),
                    doc: "The API key, sent as the basic auth user name.".to_string(),
                    required: true,
                    default: None,
                    secret: true,
                },
                SettingInfo {
                    name: "account".to_string(),
                    doc: "An account id; only recorded.".to_string(),
                    required: false,
                    default: Some("acct_recorder".to_string()),
                    secret: false,
                },
            ],
            auth: AuthScheme::Basic(BasicAuth {
                user: "secret_key".to_string(),
                password: None,
            }),
            retry: RetryPolicy {
                statuses: vec![
                    StatusRange {
                        first: 409,
                        last: 409,
                    },
                    StatusRange {
                        first: 500,
                        last: 599,
                    },
                ],
                // Stripe's SDKs retry every connection error, a reset mid-request
                // (`io`) included; not a body over the host's cap.
                failures: vec![FailureKind::Connect, FailureKind::Timeout, FailureKind::Io],
                should_retry_header: Some("Stripe-Should-Retry".to_string()),
                honour_retry_after: false,
                idempotency_header: Some("Idempotency-Key".to_string()),
            },
            ..thing_info("recorder")
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        eprintln!("recorder-configure: {settings:?}");
        accept_any_settings(settings)
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        // The raw input, and the `name` it carries decoded from the tree,
        // so a test can find each value as a quoted string.
        let name = text_param(&input.params, "name");
        eprintln!(
            "recorder-input: object={object:?} operation={operation:?} name={name:?} {input:?}"
        );
        let (content_type, body) = match name {
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
                FlowPayload::Error(format!(
                    r#"{{"error":{{"type":"api_error","message":"status {status}"}},"http_status":{status}}}"#
                ))
            }
            _ => body_as_success(outcome),
        }
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        no_webhook_check(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        no_webhook_events(request)
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
