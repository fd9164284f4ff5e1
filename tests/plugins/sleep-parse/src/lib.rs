//! Hostile test plugin `sleep-parse`: `build-request` is well behaved (POST
//! `/v1/things`, body `name=...`), but `parse-response` sleeps for 60 s
//! before classifying the outcome, which would hold a flow thread. The host
//! is expected to refuse the sleep at once and run the error flow with a
//! payload that names the plugin, `parse-response` and the blocking.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use std::time::Duration;

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct SleepParse;

impl Guest for SleepParse {
    fn info() -> ProviderInfo {
        thing_info("sleep_parse")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        Ok(thing_request(b"sleep-parse".to_vec()))
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        std::thread::sleep(Duration::from_secs(60));
        body_as_success(outcome)
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        no_webhook_check(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        no_webhook_events(request)
    }
}

export!(SleepParse);
