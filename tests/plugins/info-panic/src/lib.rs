//! Hostile test plugin `info-panic`: `info` writes `info-panic: about to
//! panic` to stderr, then panics. The host reads `info` at load, so it is
//! expected to refuse to load the plugin, naming the file, `info` and the
//! crash, with the plugin's stderr in the log.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct InfoPanic;

impl Guest for InfoPanic {
    fn info() -> ProviderInfo {
        eprintln!("info-panic: about to panic");
        if std::hint::black_box(true) {
            panic!("info-panic: deliberate panic in info");
        }
        thing_info("info_panic")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        unreachable!("the host never loads this plugin")
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

export!(InfoPanic);
