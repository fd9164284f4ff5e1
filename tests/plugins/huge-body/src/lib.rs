//! Hostile test plugin `huge-body`: `build-request` returns a well-formed
//! POST `/v1/things` whose `text/plain` body is exactly 100 MiB of `a`. The
//! host is expected to refuse it against its request-body cap (without
//! sending it), report an error for that call, and keep working. If the
//! host's guest memory cap is below ~100 MiB, the allocation traps first,
//! which the host must also survive.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct HugeBody;

impl Guest for HugeBody {
    fn info() -> ProviderInfo {
        thing_info("huge_body")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        Ok(thing_request(vec![b'a'; 100 << 20]))
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

export!(HugeBody);
