//! Hostile test plugin `sleeper`: `build-request` sleeps for 60 s (a blocking
//! WASI call: `monotonic-clock.subscribe-duration` + `pollable.block`, where
//! an epoch deadline cannot fire), then returns a well-formed POST
//! `/v1/things`. The host is expected to refuse the sleep at once, fail the
//! call with an error naming the plugin, the function and the blocking, send
//! nothing, and free the script thread.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use std::time::Duration;

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Sleeper;

impl Guest for Sleeper {
    fn info() -> ProviderInfo {
        thing_info("sleeper")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        std::thread::sleep(Duration::from_secs(60));
        Ok(thing_request(b"slept".to_vec()))
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

export!(Sleeper);
