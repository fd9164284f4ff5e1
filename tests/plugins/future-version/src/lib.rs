//! Hostile test plugin `future-version`: implements the same contract shape
//! but declares it one minor version ahead of the host's (build.rs derives
//! that WIT from the real `wit/plugin.wit`, changing only the version: at
//! contract 0.4.0 it says `payhost:plugin@0.5.0`). The host is expected to
//! refuse to load it because it does not export exactly its own
//! `payhost:plugin/provider@X.Y.Z`, with an error that names the version.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: concat!(env!("OUT_DIR"), "/wit"), world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpMethod, HttpRequest, PluginError, ProviderInfo, RequestInput,
    TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
};

struct FutureVersion;

impl Guest for FutureVersion {
    fn info() -> ProviderInfo {
        thing_info("future_version")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        Ok(HttpRequest {
            method: HttpMethod::Post,
            path: "/v1/things".to_string(),
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

export!(FutureVersion);
