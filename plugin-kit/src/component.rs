//! The component glue (wasm32 only): the WIT bindings, generated once here,
//! and the `payhost:plugin/provider` exports for any [`Plugin`], converting
//! between the WIT types and the kit's plain ones, plus the one piece of
//! state a plugin has, its configuration.
//!
//! The bindings are generated with a public export macro
//! (`pub_export_macro`) whose default module is this one, so a plugin crate
//! needs neither wit-bindgen nor the WIT files: `export_plugin!` invokes
//! `bindings::export!` with [`Component`] for the plugin's type.
//! [`Component`] is generic because the exports are free functions with no
//! `self`; the plugin type parameter says whose description and code they
//! run.
//!
//! The configuration lives in a `thread_local` because the WIT exports are
//! free functions: the component instance is the only "self" there is, and
//! the host gives each instance its own `configure` call before any
//! `build-request`. A second `configure` replaces the first. A static
//! cannot be generic, so the slot holds the plugin's `Config` as `dyn Any`;
//! one component exports one plugin, so the downcast cannot meet another
//! type.

#![allow(unsafe_code)] // generated canonical-ABI glue

/// The generated bindings of wit/plugin.wit, world `plugin`.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "payhost_plugin_kit::component::bindings",
    });
}

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use bindings::exports::payhost::plugin::provider::Guest;
use bindings::payhost::plugin::types as wit;

use crate::Plugin;
use crate::params::{ErrorCode, PluginError};
use crate::request::{HttpRequest, Input};
use crate::response::{self, Outcome};
use crate::schema::{self, Auth, FailureKind, Kind, Method, ResponseRule, RetryPolicy};
use crate::tree::Tree;
use crate::webhook::{
    KeyEncoding, MacAlgorithm, SignatureEncoding, WebhookCheck, WebhookEvent, WebhookRequest,
    WebhookScheme,
};

thread_local! {
    static CONFIG: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The exports of plugin `P`; `export_plugin!` exports it.
pub struct Component<P>(PhantomData<P>);

impl<P: Plugin> Guest for Component<P> {
    fn info() -> wit::ProviderInfo {
        let p = P::PROVIDER;
        wit::ProviderInfo {
            name: p.name.to_string(),
            version: p.version.to_string(),
            doc: p.doc.to_string(),
            default_base_url: p.default_base_url.to_string(),
            settings: p.settings.iter().map(setting).collect(),
            auth: auth(&p.auth),
            retry: retry_policy(&p.retry),
            objects: p.objects.iter().map(object).collect(),
            webhooks: p.webhooks.as_ref().map(webhook_scheme),
            responses: response_rule(p.responses),
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let config = P::configure(&settings)?;
        CONFIG.with(|c| *c.borrow_mut() = Some(Box::new(config)));
        Ok(())
    }

    fn build_request(
        object: String,
        operation: String,
        input: wit::RequestInput,
    ) -> Result<wit::HttpRequest, wit::PluginError> {
        let malformed = |which: &str, e: String| {
            plugin_error(PluginError::new(
                ErrorCode::MalformedTree,
                &object,
                None,
                format!("malformed {which} tree: {e}"),
            ))
        };
        let input = Input {
            id: input.id,
            parent: input.parent,
            params: Tree::from_words(&input.params.nodes, input.params.text)
                .map_err(|e| malformed("parameter", e))?,
            extra: Tree::from_words(&input.extra.nodes, input.extra.text)
                .map_err(|e| malformed("extra-parameter (`.set`)", e))?,
        };
        let built = CONFIG.with(|c| {
            match c
                .borrow()
                .as_ref()
                .and_then(|config| config.downcast_ref::<P::Config>())
            {
                Some(config) => P::build_request(config, &object, &operation, &input),
                None => Err(PluginError::new(
                    ErrorCode::InvalidValue,
                    &object,
                    None,
                    "the plugin was not configured: the host must call `configure` first"
                        .to_string(),
                )),
            }
        });
        built.map(http_request).map_err(plugin_error)
    }

    fn parse_response(
        object: String,
        operation: String,
        outcome: wit::TransportOutcome,
    ) -> wit::FlowPayload {
        payload(P::parse_response(
            &object,
            &operation,
            &self::outcome(outcome),
        ))
    }

    fn check_webhook(request: wit::WebhookRequest) -> Result<wit::WebhookCheck, String> {
        P::check_webhook(&webhook_request(request)).map(webhook_check)
    }

    fn parse_webhook(request: wit::WebhookRequest) -> Result<Vec<wit::WebhookEvent>, String> {
        P::parse_webhook(&webhook_request(request))
            .map(|events| events.into_iter().map(webhook_event).collect())
    }
}

// The conversions below are public (in this hidden module) so that a plugin
// that writes its own `Guest` on the kit's bindings (guest-adyen, whose
// nested schema is not a `schema::Provider`) converts the same way.

/// The auth scheme as WIT `auth-scheme`.
pub fn auth(a: &Auth) -> wit::AuthScheme {
    match *a {
        Auth::None => wit::AuthScheme::None,
        Auth::Basic { user, password } => wit::AuthScheme::Basic(wit::BasicAuth {
            user: user.to_string(),
            password: password.map(str::to_string),
        }),
        Auth::Bearer(secret) => wit::AuthScheme::Bearer(secret.to_string()),
        Auth::Header { name, secret } => wit::AuthScheme::Header(wit::HeaderAuth {
            name: name.to_string(),
            secret: secret.to_string(),
        }),
    }
}

/// The retry policy as WIT `retry-policy`.
pub fn retry_policy(r: &RetryPolicy) -> wit::RetryPolicy {
    wit::RetryPolicy {
        statuses: r
            .statuses
            .iter()
            .map(|&(first, last)| wit::StatusRange { first, last })
            .collect(),
        failures: r.failures.iter().map(|&k| failure_kind(k)).collect(),
        should_retry_header: r.should_retry_header.map(str::to_string),
        honour_retry_after: r.honour_retry_after,
        idempotency_header: r.idempotency_header.map(str::to_string),
    }
}

/// WIT `transport-outcome` as the kit's [`Outcome`].
pub fn outcome(o: wit::TransportOutcome) -> Outcome {
    match o {
        wit::TransportOutcome::Response(r) => Outcome::Response(response::HttpResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }),
        wit::TransportOutcome::Failed(f) => Outcome::Failed(response::TransportFailure {
            kind: match f.kind {
                wit::FailureKind::Connect => FailureKind::Connect,
                wit::FailureKind::Timeout => FailureKind::Timeout,
                wit::FailureKind::BodyTooLarge => FailureKind::BodyTooLarge,
                wit::FailureKind::Io => FailureKind::Io,
            },
            status: f.status,
            message: f.message,
        }),
    }
}

/// A [`response::Payload`] as WIT `flow-payload`.
pub fn payload(p: response::Payload) -> wit::FlowPayload {
    match p {
        response::Payload::Success(s) => wit::FlowPayload::Response(s),
        response::Payload::Failure(s) => wit::FlowPayload::Error(s),
    }
}

/// A built request as WIT `http-request`.
pub fn http_request(r: HttpRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: method(r.method),
        path: r.path,
        query: r.query,
        headers: r.headers,
        content_type: r.content_type,
        body: r.body,
    }
}

/// A [`PluginError`] as WIT `plugin-error`.
pub fn plugin_error(e: PluginError) -> wit::PluginError {
    wit::PluginError {
        code: match e.code {
            ErrorCode::UnknownObject => wit::PluginErrorCode::UnknownObject,
            ErrorCode::UnknownOperation => wit::PluginErrorCode::UnknownOperation,
            ErrorCode::UnknownField => wit::PluginErrorCode::UnknownField,
            ErrorCode::InvalidValue => wit::PluginErrorCode::InvalidValue,
            ErrorCode::MissingField => wit::PluginErrorCode::MissingField,
            ErrorCode::MissingId => wit::PluginErrorCode::MissingId,
            ErrorCode::InvalidId => wit::PluginErrorCode::InvalidId,
            ErrorCode::MalformedTree => wit::PluginErrorCode::MalformedTree,
        },
        object: e.object,
        field: e.field,
        message: e.message,
    }
}

/// An HTTP method as WIT `http-method`.
pub fn method(m: Method) -> wit::HttpMethod {
    match m {
        Method::Get => wit::HttpMethod::Get,
        Method::Post => wit::HttpMethod::Post,
        Method::Put => wit::HttpMethod::Put,
        Method::Patch => wit::HttpMethod::Patch,
        Method::Delete => wit::HttpMethod::Delete,
    }
}

/// A failure kind as WIT `failure-kind`.
pub fn failure_kind(k: FailureKind) -> wit::FailureKind {
    match k {
        FailureKind::Connect => wit::FailureKind::Connect,
        FailureKind::Timeout => wit::FailureKind::Timeout,
        FailureKind::BodyTooLarge => wit::FailureKind::BodyTooLarge,
        FailureKind::Io => wit::FailureKind::Io,
    }
}

/// A setting as WIT `setting-info`.
pub fn setting(s: &schema::Setting) -> wit::SettingInfo {
    wit::SettingInfo {
        name: s.name.to_string(),
        doc: s.doc.to_string(),
        required: s.required,
        default: s.default.map(str::to_string),
        secret: s.secret,
    }
}

fn object(o: &schema::Object) -> wit::ObjectInfo {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    wit::ObjectInfo {
        name: o.name.to_string(),
        doc: o.doc.to_string(),
        operations: o.operations.iter().map(operation).collect(),
        fields: o
            .fields
            .iter()
            .map(|f| wit::FieldInfo {
                name: f.name.to_string(),
                kind: field_kind(f.kind),
                allowed: strings(f.allowed),
                required: f.required,
                doc: f.doc.to_string(),
            })
            .collect(),
    }
}

/// A field kind as WIT `field-kind`.
pub fn field_kind(k: Kind) -> wit::FieldKind {
    match k {
        Kind::Text => wit::FieldKind::Text,
        Kind::Integer => wit::FieldKind::Integer,
        Kind::Amount => wit::FieldKind::Amount,
        Kind::Decimal => wit::FieldKind::Decimal,
        Kind::Boolean => wit::FieldKind::Boolean,
        Kind::Timestamp => wit::FieldKind::Timestamp,
        Kind::StringMap => wit::FieldKind::StringMap,
        Kind::StringList => wit::FieldKind::StringList,
        Kind::Object => wit::FieldKind::Object,
        Kind::ObjectList => wit::FieldKind::ObjectList,
    }
}

/// An operation as WIT `operation-info`.
pub fn operation(op: &schema::Operation) -> wit::OperationInfo {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    wit::OperationInfo {
        name: op.name.to_string(),
        method: method(op.method),
        path: op.path.to_string(),
        needs_id: op.needs_id,
        needs_parent: op.needs_parent,
        accepts: strings(op.accepts),
        required: strings(op.required),
        filled_by: op
            .filled_by
            .iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect(),
        doc: op.doc.to_string(),
    }
}

/// A webhook scheme as WIT `webhook-scheme`.
pub fn response_rule(rule: ResponseRule) -> wit::ResponseRule {
    match rule {
        ResponseRule::Plugin => wit::ResponseRule::Plugin,
        ResponseRule::JsonObjectIsSuccess => wit::ResponseRule::JsonObjectIsSuccess,
    }
}

pub fn webhook_scheme(w: &WebhookScheme) -> wit::WebhookScheme {
    wit::WebhookScheme {
        secret: w.secret.to_string(),
        key_encoding: match w.key_encoding {
            KeyEncoding::Utf8 => wit::KeyEncoding::Utf8,
            KeyEncoding::Hex => wit::KeyEncoding::Hex,
            KeyEncoding::Base64 => wit::KeyEncoding::Base64,
        },
        accept_body: w.accept_body.to_string(),
        doc: w.doc.to_string(),
    }
}

/// WIT `webhook-request` as the kit's [`WebhookRequest`] (moved, not copied).
pub fn webhook_request(r: wit::WebhookRequest) -> WebhookRequest {
    WebhookRequest {
        headers: r.headers,
        body: r.body,
    }
}

/// A [`WebhookCheck`] as WIT `webhook-check`.
pub fn webhook_check(c: WebhookCheck) -> wit::WebhookCheck {
    wit::WebhookCheck {
        algorithm: match c.algorithm {
            MacAlgorithm::HmacSha256 => wit::MacAlgorithm::HmacSha256,
            MacAlgorithm::HmacSha512 => wit::MacAlgorithm::HmacSha512,
        },
        encoding: match c.encoding {
            SignatureEncoding::Hex => wit::SignatureEncoding::Hex,
            SignatureEncoding::Base64 => wit::SignatureEncoding::Base64,
        },
        parts: c
            .parts
            .into_iter()
            .map(|p| wit::SignedPart {
                message: p.message,
                signatures: p.signatures,
            })
            .collect(),
        timestamp: c.timestamp,
    }
}

/// A [`WebhookEvent`] as WIT `webhook-event`.
pub fn webhook_event(e: WebhookEvent) -> wit::WebhookEvent {
    wit::WebhookEvent {
        id: e.id,
        event_type: e.event_type,
        created: e.created,
        object: e.object,
    }
}
