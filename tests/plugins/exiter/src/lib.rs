//! Hostile test plugin `exiter`: `build-request` calls
//! `std::process::exit(3)` (`wasi:cli/exit`). A plugin cannot end the host:
//! the host is expected to fail that call with an error saying the plugin
//! called exit, and keep working (a later `info()` call must succeed).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Exiter;

impl Guest for Exiter {
    fn info() -> ProviderInfo {
        thing_info("exiter")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        std::process::exit(3)
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

export!(Exiter);
