//! Hostile test plugin `panic`: `build-request` writes
//! `panic-plugin: about to panic` to stderr, then panics (which aborts and
//! traps the guest). The host is expected to turn the trap into an error for
//! that call, forward the plugin's stderr (the line above and the panic
//! message) to its log, and keep working (a later `info()` call must succeed).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Panic;

impl Guest for Panic {
    fn info() -> ProviderInfo {
        thing_info("panic")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        eprintln!("panic-plugin: about to panic");
        panic!("panic-plugin: deliberate panic in build-request");
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

export!(Panic);
