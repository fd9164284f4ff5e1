//! The component glue (wasm32 only): the `payhost:plugin/provider` exports,
//! converting between the WIT types and the crate's native ones.

#![allow(unsafe_code)] // generated canonical-ABI glue

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
});

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, FailureKind, FieldInfo, FieldKind, FlowPayload, HttpMethod, HttpRequest,
    ObjectInfo, OperationInfo, PluginError, PluginErrorCode, ProviderInfo, RequestInput,
    TransportOutcome, ValueNode,
};

use crate::error::{self, ErrorCode};
use crate::response::{self, Outcome, Payload};
use crate::schema::{self, Kind, Method};
use crate::value::ArenaNode;

struct StripePlugin;

export!(StripePlugin);

impl Guest for StripePlugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "stripe".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            default_base_url: "https://api.stripe.com".to_string(),
            auth: AuthScheme::BasicUser,
            idempotency_header: Some("Idempotency-Key".to_string()),
            should_retry_header: Some("Stripe-Should-Retry".to_string()),
            objects: schema::OBJECTS.iter().map(object_info).collect(),
        }
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        let params = input.params.into_iter().map(arena_node).collect();
        let extra = input.extra.into_iter().map(arena_node).collect();
        crate::request::build_request_from_arena(
            &object,
            &operation,
            input.id.as_deref(),
            params,
            extra,
        )
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
            Payload::Success(s) => FlowPayload::Success(s),
            Payload::Failure(s) => FlowPayload::Failure(s),
        }
    }
}

fn arena_node(node: ValueNode) -> ArenaNode {
    match node {
        ValueNode::Null => ArenaNode::Null,
        ValueNode::Boolean(b) => ArenaNode::Bool(b),
        ValueNode::Integer(i) => ArenaNode::Int(i),
        ValueNode::Float(f) => ArenaNode::Float(f),
        ValueNode::Text(s) => ArenaNode::Text(s),
        ValueNode::List(items) => ArenaNode::List(items),
        ValueNode::Map(entries) => ArenaNode::Map(entries),
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
            ErrorCode::MissingId => PluginErrorCode::MissingId,
            ErrorCode::InvalidId => PluginErrorCode::InvalidId,
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
                accepts: op.accepts.iter().map(|a| a.to_string()).collect(),
                doc: op.doc.to_string(),
            })
            .collect(),
        fields: o
            .flat_fields()
            .into_iter()
            .map(|(name, f)| FieldInfo {
                name,
                kind: field_kind(f.kind),
                allowed: f.allowed.iter().map(|a| a.to_string()).collect(),
                doc: f.doc.to_string(),
            })
            .collect(),
    }
}
