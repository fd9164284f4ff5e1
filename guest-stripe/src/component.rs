//! The component glue (wasm32 only): the `payhost:plugin/provider@0.4.0`
//! exports, converting between the WIT types and the crate's native ones.
//!
//! The settings `configure` receives live in a `thread_local!` cell: a
//! component instance is single-threaded and its exports are free functions,
//! so this is the instance's own state, not state shared between instances
//! (each instance has its own linear memory). `build-request` only reads it.
//!
//! `build-request` reads the lowered `value-tree`s in place: the node words
//! are split into `[u32; 5]` nodes, which implement `AsRawNode`, so the tree
//! view checks and walks the host's node list without a native copy of it.

#![allow(unsafe_code)] // generated canonical-ABI glue

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
});

use std::cell::RefCell;

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, BasicAuth, FailureKind, FieldInfo, FieldKind, FlowPayload, HttpMethod, HttpRequest,
    KeyEncoding, MacAlgorithm, ObjectInfo, OperationInfo, PluginError, PluginErrorCode,
    ProviderInfo, RequestInput, ResponseRule, RetryPolicy, SettingInfo, SignatureEncoding,
    SignedPart, StatusRange, TransportOutcome, WebhookCheck, WebhookEvent, WebhookRequest,
    WebhookScheme,
};

use crate::error::{self, ErrorCode};
use crate::provider;
use crate::request::{Target, build_request_from_words};
use crate::response::{self, Outcome, Payload};
use crate::schema::{self, Kind, Method};
use crate::settings::{self, Config};
use crate::webhook;

thread_local! {
    /// This instance's settings, from `configure`.
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

struct StripePlugin;

export!(StripePlugin);

impl Guest for StripePlugin {
    fn info() -> ProviderInfo {
        let retry = provider::RETRY;
        ProviderInfo {
            name: provider::NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            doc: provider::DOC.to_string(),
            default_base_url: provider::DEFAULT_BASE_URL.to_string(),
            settings: settings::SETTINGS
                .iter()
                .map(|s| SettingInfo {
                    name: s.name.to_string(),
                    doc: s.doc.to_string(),
                    required: s.required,
                    default: s.default.map(str::to_string),
                    secret: s.secret,
                })
                .collect(),
            auth: AuthScheme::Basic(BasicAuth {
                user: provider::AUTH_USER.to_string(),
                password: None,
            }),
            retry: RetryPolicy {
                statuses: retry
                    .statuses
                    .iter()
                    .map(|&(first, last)| StatusRange { first, last })
                    .collect(),
                failures: retry.failures.iter().map(|&k| failure_kind(k)).collect(),
                should_retry_header: retry.should_retry_header.map(str::to_string),
                honour_retry_after: retry.honour_retry_after,
                idempotency_header: retry.idempotency_header.map(str::to_string),
            },
            objects: schema::OBJECTS.iter().map(object_info).collect(),
            webhooks: Some(WebhookScheme {
                secret: webhook::SECRET_SETTING.to_string(),
                // The `whsec_...` text itself is the HMAC key.
                key_encoding: KeyEncoding::Utf8,
                // Stripe reads only the status.
                accept_body: String::new(),
                doc: webhook::DOC.to_string(),
            }),
            // `response::parse_response` passes a 2xx JSON object through
            // unchanged (its tests say so), so the host does that itself.
            responses: ResponseRule::JsonObjectIsSuccess,
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::from_settings(&settings)?;
        CONFIG.with(|cell| *cell.borrow_mut() = config);
        Ok(())
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        // The view reads the WIT nodes and text where they were lowered:
        // nothing is copied or converted up front.
        let target = Target {
            object: &object,
            operation: &operation,
            id: input.id.as_deref(),
            parent: input.parent.as_deref(),
        };
        CONFIG
            .with(|cell| {
                build_request_from_words(
                    &cell.borrow(),
                    target,
                    (&input.params.nodes, &input.params.text),
                    (&input.extra.nodes, &input.extra.text),
                )
            })
            .map(|r| HttpRequest {
                method: http_method(r.method),
                path: r.path,
                query: r.query,
                headers: r.headers,
                content_type: r.content_type,
                body: r.body,
            })
            .map_err(plugin_error)
    }

    fn parse_response(object: String, operation: String, outcome: TransportOutcome) -> FlowPayload {
        let outcome = match outcome {
            TransportOutcome::Response(r) => Outcome::Response(response::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            TransportOutcome::Failed(f) => Outcome::Failed(response::TransportFailure {
                kind: match f.kind {
                    FailureKind::Connect => response::FailureKind::Connect,
                    FailureKind::Timeout => response::FailureKind::Timeout,
                    FailureKind::BodyTooLarge => response::FailureKind::BodyTooLarge,
                    FailureKind::Io => response::FailureKind::Io,
                },
                status: f.status,
                message: f.message,
            }),
        };
        match response::parse_response(&object, &operation, outcome) {
            Payload::Success(s) => FlowPayload::Response(s),
            Payload::Failure(s) => FlowPayload::Error(s),
        }
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        let check = webhook::check_webhook(&request.headers, &request.body)?;
        Ok(WebhookCheck {
            algorithm: MacAlgorithm::HmacSha256,
            encoding: SignatureEncoding::Hex,
            parts: vec![SignedPart {
                message: check.message,
                signatures: check.signatures,
            }],
            timestamp: Some(check.timestamp),
        })
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        let event = webhook::parse_webhook(&request.body)?;
        Ok(vec![WebhookEvent {
            id: event.id,
            event_type: event.event_type,
            created: event.created,
            object: event.object,
        }])
    }
}

fn failure_kind(k: response::FailureKind) -> FailureKind {
    match k {
        response::FailureKind::Connect => FailureKind::Connect,
        response::FailureKind::Timeout => FailureKind::Timeout,
        response::FailureKind::BodyTooLarge => FailureKind::BodyTooLarge,
        response::FailureKind::Io => FailureKind::Io,
    }
}

fn http_method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
    }
}

fn plugin_error(e: error::PluginError) -> PluginError {
    PluginError {
        code: match e.code {
            ErrorCode::UnknownObject => PluginErrorCode::UnknownObject,
            ErrorCode::UnknownOperation => PluginErrorCode::UnknownOperation,
            ErrorCode::UnknownField => PluginErrorCode::UnknownField,
            ErrorCode::InvalidValue => PluginErrorCode::InvalidValue,
            ErrorCode::MissingField => PluginErrorCode::MissingField,
            ErrorCode::MissingId => PluginErrorCode::MissingId,
            ErrorCode::InvalidId => PluginErrorCode::InvalidId,
            ErrorCode::MalformedTree => PluginErrorCode::MalformedTree,
        },
        object: e.object,
        field: e.field,
        message: e.message,
    }
}

fn field_kind(k: Kind) -> FieldKind {
    match k {
        Kind::Text => FieldKind::Text,
        Kind::Integer => FieldKind::Integer,
        Kind::Amount => FieldKind::Amount,
        Kind::Decimal => FieldKind::Decimal,
        Kind::Boolean => FieldKind::Boolean,
        Kind::Timestamp => FieldKind::Timestamp,
        Kind::StringMap => FieldKind::StringMap,
        Kind::StringList => FieldKind::StringList,
        Kind::Object => FieldKind::Object,
        Kind::ObjectList => FieldKind::ObjectList,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn object_info(o: &schema::Object) -> ObjectInfo {
    ObjectInfo {
        name: o.name.to_string(),
        doc: o.doc.to_string(),
        operations: o
            .operations
            .iter()
            .map(|op| OperationInfo {
                name: op.name.to_string(),
                method: http_method(op.method),
                path: op.path.to_string(),
                needs_id: op.needs_id,
                needs_parent: op.needs_parent,
                accepts: strings(op.accepts),
                required: strings(op.required),
                // Stripe has no field a setting fills in.
                filled_by: Vec::new(),
                doc: op.doc.to_string(),
            })
            .collect(),
        fields: o
            .flat_fields()
            .into_iter()
            .map(|(name, f)| FieldInfo {
                name,
                kind: field_kind(f.kind),
                allowed: strings(f.allowed),
                required: f.required,
                doc: f.doc.to_string(),
            })
            .collect(),
    }
}
