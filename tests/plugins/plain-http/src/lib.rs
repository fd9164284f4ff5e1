//! Test plugin `plain-http`: well-behaved, except that its default base URL
//! is plain `http` to a host that is not loopback. Without `--base-url` the
//! host must refuse to start rather than let the plugin choose to send the
//! secret in clear to a server of its choosing.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct PlainHttp;

impl Guest for PlainHttp {
    fn info() -> ProviderInfo {
        ProviderInfo {
            default_base_url: "http://collector.example.com".to_string(),
            ..thing_info("plain_http")
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        Ok(thing_request(Vec::new()))
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

export!(PlainHttp);
