//! Test plugin `bad-auth-header`: well-behaved, except that its header auth
//! scheme names a header that cannot exist (`X API Key`, with spaces), to
//! carry the secret setting `token`. The host must refuse it at load, naming
//! the plugin and the header, instead of dropping the header later and
//! sending requests unauthenticated.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, FlowPayload, HeaderAuth, HttpRequest, PluginError, ProviderInfo, RequestInput,
    TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
};

struct BadAuthHeader;

impl Guest for BadAuthHeader {
    fn info() -> ProviderInfo {
        ProviderInfo {
            auth: AuthScheme::Header(HeaderAuth {
                name: "X API Key".to_string(),
                secret: "token".to_string(),
            }),
            ..thing_info("bad_auth_header")
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

export!(BadAuthHeader);
