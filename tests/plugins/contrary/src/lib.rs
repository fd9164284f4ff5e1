//! Test plugin `contrary`: declares `responses: json-object-is-success` but
//! does not keep that promise. Its `parse-response` calls every outcome an
//! error, `{"error": {"message": "contrary: status N"}, "http_status": N}`,
//! and writes `contrary-response: status N` to stderr, so a test sees which
//! outcomes reached it. Through `payhost run`, a 2xx JSON object never
//! does (the host classifies it as the rule says, and the response flow
//! runs); every other outcome does. `payhost plugin check` must fail it: the
//! declaration and the plugin's own answer disagree.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");
include!("../../common_params.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, ResponseRule,
    TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Contrary;

impl Guest for Contrary {
    fn info() -> ProviderInfo {
        ProviderInfo {
            responses: ResponseRule::JsonObjectIsSuccess,
            ..thing_info("contrary")
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(
        _: String,
        _: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        // The stub answers by the thing's name, so send it.
        let name = text_param(&input.params, "name").unwrap_or_default();
        Ok(thing_request(name.into_bytes()))
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        let status = match outcome {
            TransportOutcome::Response(response) => response.status,
            TransportOutcome::Failed(failure) => failure.status.unwrap_or(0),
        };
        eprintln!("contrary-response: status {status}");
        FlowPayload::Error(format!(
            r#"{{"error":{{"message":"contrary: status {status}"}},"http_status":{status}}}"#
        ))
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        no_webhook_check(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        no_webhook_events(request)
    }
}

export!(Contrary);
