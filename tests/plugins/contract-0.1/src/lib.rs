//! Test plugin `contract-0.1` (package `old-contract`): a valid,
//! well-behaved plugin built against the previous contract,
//! `payhost:plugin@0.1.0` (`plugin-0.1.wit` beside this crate, kept verbatim
//! from before 0.2). It is what an operator has when they upgrade payhost
//! but not their plugin. The host is expected to refuse to load it with a
//! message that names the version it found, the one it needs, and says to
//! rebuild the plugin against `wit/plugin.wit` (0.2.0).
//!
//! Everything here is plain 0.1: one object `thing` with `create` (POST
//! `/v1/things`, text field `name`, sent form-encoded), bearer auth, a body
//! passed through as the success payload.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "plugin-0.1.wit", world: "plugin" });

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    AuthScheme, FieldInfo, FieldKind, FlowPayload, HttpMethod, HttpRequest, ObjectInfo,
    OperationInfo, PluginError, PluginErrorCode, ProviderInfo, RequestInput, TransportOutcome,
    ValueNode,
};

struct OldContract;

impl Guest for OldContract {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "old_contract".to_string(),
            version: "0.1.0".to_string(),
            default_base_url: "http://127.0.0.1:9".to_string(),
            auth: AuthScheme::Bearer,
            idempotency_header: None,
            should_retry_header: None,
            objects: vec![ObjectInfo {
                name: "thing".to_string(),
                doc: "A test object.".to_string(),
                operations: vec![OperationInfo {
                    name: "create".to_string(),
                    method: HttpMethod::Post,
                    path: "/v1/things".to_string(),
                    needs_id: false,
                    accepts: vec!["name".to_string()],
                    doc: "Create a thing.".to_string(),
                }],
                fields: vec![FieldInfo {
                    name: "name".to_string(),
                    kind: FieldKind::Text,
                    allowed: Vec::new(),
                    doc: "The thing's name.".to_string(),
                }],
            }],
        }
    }

    fn build_request(
        object: String,
        operation: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        let refuse = |code, field: Option<&str>, message: String| PluginError {
            code,
            object: object.clone(),
            field: field.map(str::to_string),
            message,
        };
        if object != "thing" {
            return Err(refuse(
                PluginErrorCode::UnknownObject,
                None,
                format!("no object `{object}`; this plugin has `thing`"),
            ));
        }
        if operation != "create" {
            return Err(refuse(
                PluginErrorCode::UnknownOperation,
                None,
                format!("`thing` has no operation `{operation}`; it has `create`"),
            ));
        }
        // 0.1 trees: node 0 is the root map, entries point at nodes by index.
        let mut body = String::new();
        if let Some(ValueNode::Map(entries)) = input.params.first() {
            for (key, index) in entries {
                if key != "name" {
                    return Err(refuse(
                        PluginErrorCode::UnknownField,
                        Some(key),
                        format!("`thing` has no field `{key}`"),
                    ));
                }
                match input.params.get(*index as usize) {
                    Some(ValueNode::Text(name)) => body = format!("name={}", form_encode(name)),
                    _ => {
                        return Err(refuse(
                            PluginErrorCode::InvalidValue,
                            Some("name"),
                            "`name` must be text".to_string(),
                        ));
                    }
                }
            }
        }
        Ok(HttpRequest {
            method: HttpMethod::Post,
            path: "/v1/things".to_string(),
            query: String::new(),
            headers: Vec::new(),
            content_type: (!body.is_empty())
                .then(|| "application/x-www-form-urlencoded".to_string()),
            body: body.into_bytes(),
        })
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        match outcome {
            TransportOutcome::Response(response) if (200..300).contains(&response.status) => {
                FlowPayload::Success(String::from_utf8_lossy(&response.body).into_owned())
            }
            TransportOutcome::Response(response) => FlowPayload::Failure(format!(
                r#"{{"error":{{"type":"api_error","message":"status {0}"}},"http_status":{0}}}"#,
                response.status
            )),
            TransportOutcome::Failed(_) => FlowPayload::Failure(
                r#"{"error":{"type":"api_connection_error","message":"transport failure"},"http_status":0}"#
                    .to_string(),
            ),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

export!(OldContract);
