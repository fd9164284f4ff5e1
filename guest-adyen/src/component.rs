//! The component glue (wasm32 only): the `payhost:plugin/provider@0.2.0`
//! exports, converting between the WIT types and the crate's native ones.
//!
//! The one piece of state is the operator's settings, which `configure`
//! hands over once per instance, before any `build-request`. A component
//! instance is one single-threaded wasm instance, so its state can only be
//! module-level: a `OnceLock`, written once and read-only afterwards (a
//! second `configure` with other values is refused rather than changing
//! what earlier requests were built with).

#![allow(unsafe_code)] // generated canonical-ABI glue

use std::sync::OnceLock;

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
});

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, FailureKind, FieldInfo, FieldKind, FlowPayload, HeaderAuth, HttpMethod,
    HttpRequest, ObjectInfo, OperationInfo, PluginError, PluginErrorCode, ProviderInfo,
    RequestInput, RetryPolicy, SettingInfo, StatusRange, TransportOutcome, ValueTree,
};

use crate::error::{self, ErrorCode};
use crate::response::{self, Outcome, Payload};
use crate::schema::{self, Kind, Method};
use crate::settings::{self, Settings};
use crate::tree;

static SETTINGS: OnceLock<Settings> = OnceLock::new();

struct AdyenPlugin;

export!(AdyenPlugin);

impl Guest for AdyenPlugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "adyen".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            doc: "Adyen Checkout API v71 (payments, modifications, payment links, sessions, payment methods)".to_string(),
            default_base_url: "https://checkout-test.adyen.com/v71".to_string(),
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
            auth: AuthScheme::Header(HeaderAuth {
                name: settings::AUTH_HEADER.to_string(),
                secret: settings::API_KEY.to_string(),
            }),
            retry: RetryPolicy {
                statuses: settings::RETRY_STATUSES
                    .iter()
                    .map(|&(first, last)| StatusRange { first, last })
                    .collect(),
                failures: settings::RETRY_FAILURES
                    .iter()
                    .map(|&k| failure_kind_out(k))
                    .collect(),
                should_retry_header: None,
                honour_retry_after: settings::HONOUR_RETRY_AFTER,
                idempotency_header: Some(settings::IDEMPOTENCY_HEADER.to_string()),
            },
            objects: schema::OBJECTS.iter().map(object_info).collect(),
        }
    }

    fn configure(list: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::configure(&list)?;
        let kept = SETTINGS.get_or_init(|| settings.clone());
        if *kept == settings {
            Ok(())
        } else {
            Err("the plugin is already configured with other settings".to_string())
        }
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        let params = value_tree(&object, input.params, "parameter")?;
        let extra = value_tree(&object, input.extra, "extra-parameter (`.set`)")?;
        // Before `configure` (the host never does that) nothing is filled in.
        let unconfigured = Settings::default();
        let settings = SETTINGS.get().unwrap_or(&unconfigured);
        let native = crate::request::Input {
            id: input.id.as_deref(),
            parent: input.parent.as_deref(),
            params,
            extra,
        };
        crate::request::build_request(settings, &object, &operation, native)
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

    fn parse_response(
        _object: String,
        _operation: String,
        outcome: TransportOutcome,
    ) -> FlowPayload {
        let outcome = match outcome {
            TransportOutcome::Response(r) => Outcome::Response(response::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            TransportOutcome::Failed(f) => Outcome::Failed(response::TransportFailure {
                kind: failure_kind_in(f.kind),
                status: f.status,
                message: f.message,
            }),
        };
        match response::parse_response(outcome) {
            Payload::Success(s) => FlowPayload::Response(s),
            Payload::Failure(s) => FlowPayload::Error(s),
        }
    }
}

fn value_tree(object: &str, tree: ValueTree, what: &str) -> Result<tree::Value, PluginError> {
    let malformed = |e: String| PluginError {
        code: PluginErrorCode::MalformedTree,
        object: object.to_string(),
        field: None,
        message: format!("malformed {what} tree: {e}"),
    };
    let wire = tree::Tree::from_words(&tree.nodes, tree.text).map_err(malformed)?;
    tree::decode(&wire).map_err(malformed)
}

fn failure_kind_in(k: FailureKind) -> settings::FailureKind {
    match k {
        FailureKind::Connect => settings::FailureKind::Connect,
        FailureKind::Timeout => settings::FailureKind::Timeout,
        FailureKind::BodyTooLarge => settings::FailureKind::BodyTooLarge,
        FailureKind::Io => settings::FailureKind::Io,
    }
}

fn failure_kind_out(k: settings::FailureKind) -> FailureKind {
    match k {
        settings::FailureKind::Connect => FailureKind::Connect,
        settings::FailureKind::Timeout => FailureKind::Timeout,
        settings::FailureKind::BodyTooLarge => FailureKind::BodyTooLarge,
        settings::FailureKind::Io => FailureKind::Io,
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

fn object_info(o: &schema::Object) -> ObjectInfo {
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
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
                filled_by: op
                    .filled_by
                    .iter()
                    .map(|(f, s)| (f.to_string(), s.to_string()))
                    .collect(),
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
