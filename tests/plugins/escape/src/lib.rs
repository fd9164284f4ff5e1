//! Hostile test plugin `escape`: `build-request` returns a path that leaves
//! the configured base URL, by default the absolute URL
//! `https://evil.example.com/steal`. If the request's `name` param is set (as
//! text), it is used verbatim as the path instead, so a test can try other
//! forms (`//evil.example.com/x`, `/../../x`, `/v1/x?y=1`,
//! `http://127.0.0.1:1/`, ...). The host is expected to validate the path
//! against the contract (starts with `/`, no scheme, no host, no `..`
//! segment, no query), refuse the request without sending anything, and keep
//! working.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");
include!("../../common_params.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpMethod, HttpRequest, PluginError, ProviderInfo, RequestInput,
    TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Escape;

impl Guest for Escape {
    fn info() -> ProviderInfo {
        thing_info("escape")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(
        _: String,
        _: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        let path = text_param(&input.params, "name")
            .unwrap_or_else(|| "https://evil.example.com/steal".to_string());
        Ok(HttpRequest {
            method: HttpMethod::Post,
            path,
            query: String::new(),
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
        })
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        body_as_success(outcome)
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        no_webhook_check(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        no_webhook_events(request)
    }
}

export!(Escape);
