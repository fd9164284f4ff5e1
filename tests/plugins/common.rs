// Shared by the hostile test plugins under tests/plugins/. Each plugin pulls
// this file in with `include!` at its crate root, right after
// `wit_bindgen::generate!`, so the generated `payhost::plugin::types` module is
// in scope. (Plain `//` comments: an included file cannot carry `//!` docs.)
// It is a file, not a `common/` directory, because the workspace lists
// `tests/plugins/*` as members and cargo rejects a matched directory that has
// no Cargo.toml.

/// A minimal valid schema: provider `name` (the host wants `[a-z0-9_]+`, so
/// `huge-body` calls itself `huge_body`), one secret setting `token`
/// (required, so the host takes it from `<NAME>_TOKEN` or the script's third
/// argument), bearer auth from it, a retry policy that retries nothing, one
/// object `thing` with one operation `create` (POST `/v1/things`) accepting
/// one optional text field `name`, an unroutable default base URL, and no
/// webhooks.
fn thing_info(name: &str) -> payhost::plugin::types::ProviderInfo {
    use payhost::plugin::types::*;
    ProviderInfo {
        name: name.to_string(),
        version: "0.3.0".to_string(),
        doc: "A payhost test plugin (tests/plugins); speaks no real API.".to_string(),
        default_base_url: "http://127.0.0.1:9".to_string(),
        settings: vec![SettingInfo {
            name: "token".to_string(),
            doc: "The bearer token sent with every request.".to_string(),
            required: true,
            default: None,
            secret: true,
        }],
        auth: AuthScheme::Bearer("token".to_string()),
        retry: RetryPolicy {
            statuses: Vec::new(),
            failures: Vec::new(),
            should_retry_header: None,
            honour_retry_after: false,
            idempotency_header: None,
        },
        objects: vec![ObjectInfo {
            name: "thing".to_string(),
            doc: "A test object.".to_string(),
            operations: vec![OperationInfo {
                name: "create".to_string(),
                method: HttpMethod::Post,
                path: "/v1/things".to_string(),
                needs_id: false,
                needs_parent: false,
                accepts: vec!["name".to_string()],
                required: Vec::new(),
                filled_by: Vec::new(),
                doc: "Create a thing.".to_string(),
            }],
            fields: vec![FieldInfo {
                name: "name".to_string(),
                kind: FieldKind::Text,
                allowed: Vec::new(),
                required: false,
                doc: "The thing's name.".to_string(),
            }],
        }],
        webhooks: None,
        // Every outcome reaches `parse-response`: the hostile plugins
        // misbehave there.
        responses: ResponseRule::Plugin,
    }
}

/// `check-webhook` for plugins that declare no webhooks (the host never
/// calls it then; if it did, it gets an error, not a trap).
#[allow(dead_code)]
fn no_webhook_check(
    _: payhost::plugin::types::WebhookRequest,
) -> Result<payhost::plugin::types::WebhookCheck, String> {
    Err("this test plugin declares no webhooks".to_string())
}

/// `parse-webhook` for plugins that declare no webhooks.
#[allow(dead_code)]
fn no_webhook_events(
    _: payhost::plugin::types::WebhookRequest,
) -> Result<Vec<payhost::plugin::types::WebhookEvent>, String> {
    Err("this test plugin declares no webhooks".to_string())
}

/// `configure` for plugins that take whatever the host gives them.
fn accept_any_settings(_: Vec<(String, String)>) -> Result<(), String> {
    Ok(())
}

/// `POST /v1/things` (the `thing` object's create) carrying `body` as
/// text/plain, or no body at all when it is empty. (Not every plugin that
/// includes this file builds a plain request.)
#[allow(dead_code)]
fn thing_request(body: Vec<u8>) -> payhost::plugin::types::HttpRequest {
    use payhost::plugin::types::{HttpMethod, HttpRequest};
    HttpRequest {
        method: HttpMethod::Post,
        path: "/v1/things".to_string(),
        query: String::new(),
        headers: Vec::new(),
        content_type: (!body.is_empty()).then(|| "text/plain".to_string()),
        body,
    }
}

/// A sane `parse-response`: any response is a success carrying the body text
/// (lossily decoded); a transport failure is a Stripe-shaped error payload.
#[allow(
    dead_code,
    reason = "`contrary` answers every response with its own payloads"
)]
fn body_as_success(
    outcome: payhost::plugin::types::TransportOutcome,
) -> payhost::plugin::types::FlowPayload {
    use payhost::plugin::types::{FlowPayload, TransportOutcome};
    match outcome {
        TransportOutcome::Response(response) => {
            FlowPayload::Response(String::from_utf8_lossy(&response.body).into_owned())
        }
        TransportOutcome::Failed(_) => FlowPayload::Error(
            r#"{"error":{"type":"api_connection_error","message":"transport failure"},"http_status":0}"#
                .to_string(),
        ),
    }
}
