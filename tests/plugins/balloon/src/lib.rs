//! Hostile test plugin `balloon`: `build-request` allocates without bound,
//! keeping every 1 MiB block it allocates and writing to every byte of it, so
//! the memory is really committed. The host is expected to stop it with its
//! memory cap (the failed growth traps the guest), report an error for that
//! call, and keep working (a later `info()` call must succeed).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Balloon;

impl Guest for Balloon {
    fn info() -> ProviderInfo {
        thing_info("balloon")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Non-zero fill: every page is written, not just mapped.
            let block = std::hint::black_box(vec![0xA5u8; 1 << 20]);
            hoard.push(block);
            std::hint::black_box(&mut hoard);
        }
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

export!(Balloon);
