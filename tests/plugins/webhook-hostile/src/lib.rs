//! Hostile test plugin `webhook_hostile`: declares a webhook scheme, then
//! misbehaves in `check-webhook` and `parse-webhook` on demand, chosen by the
//! delivery's body:
//!
//! - `spin...`: `check-webhook` never returns (the host's deadline must stop
//!   it, and the server must go on answering);
//! - `panic...`: `check-webhook` traps;
//! - `parse-spin...`: the check passes, `parse-webhook` never returns;
//! - anything else: an honest scheme. The signature is the `x-signature`
//!   header (hex HMAC-SHA256 of the body with the `token` setting, utf-8),
//!   and the body is `<event id> <event type>`.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, KeyEncoding, MacAlgorithm, PluginError, ProviderInfo, RequestInput,
    SignatureEncoding, SignedPart, TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
    WebhookScheme,
};

struct Hostile;

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

impl Guest for Hostile {
    fn info() -> ProviderInfo {
        let mut info = thing_info("webhook_hostile");
        info.webhooks = Some(WebhookScheme {
            secret: "token".to_string(),
            key_encoding: KeyEncoding::Utf8,
            accept_body: "ok".to_string(),
            doc: "Misbehaves on demand (tests/plugins/webhook-hostile).".to_string(),
        });
        info
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(_: String, _: String, _: RequestInput) -> Result<HttpRequest, PluginError> {
        spin()
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        body_as_success(outcome)
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        if request.body.starts_with(b"spin") {
            spin();
        }
        if request.body.starts_with(b"panic") {
            panic!("check-webhook told to panic");
        }
        let signature = request
            .headers
            .iter()
            .find(|(name, _)| name == "x-signature")
            .map(|(_, value)| value.clone())
            .ok_or("no x-signature header")?;
        Ok(WebhookCheck {
            algorithm: MacAlgorithm::HmacSha256,
            encoding: SignatureEncoding::Hex,
            parts: vec![SignedPart {
                message: request.body,
                signatures: vec![signature],
            }],
            timestamp: None,
        })
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        if request.body.starts_with(b"parse-spin") {
            spin();
        }
        let text = String::from_utf8(request.body).map_err(|_| "not UTF-8")?;
        let (id, kind) = text.split_once(' ').ok_or("expected `<id> <type>`")?;
        Ok(vec![WebhookEvent {
            id: id.to_string(),
            event_type: kind.to_string(),
            created: None,
            object: format!("{{\"said\":{:?}}}", kind),
        }])
    }
}

export!(Hostile);
