//! `payhost plugin info` and `payhost plugin request`: look inside a plugin
//! without sending anything.

use std::fmt::Write as _;

use serde_json::json;

use crate::outbound::Destination;
use crate::plugin::{self, Plugin, wit};

fn kind_name(kind: wit::FieldKind) -> &'static str {
    use wit::FieldKind as K;
    match kind {
        K::Text => "text",
        K::Integer => "integer",
        K::Amount => "amount",
        K::Decimal => "decimal",
        K::Boolean => "boolean",
        K::Timestamp => "timestamp",
        K::StringMap => "string-map",
        K::StringList => "string-list",
        K::Object => "object",
        K::ObjectList => "object-list",
    }
}

fn method_name(method: wit::HttpMethod) -> &'static str {
    match method {
        wit::HttpMethod::Get => "GET",
        wit::HttpMethod::Post => "POST",
        wit::HttpMethod::Put => "PUT",
        wit::HttpMethod::Patch => "PATCH",
        wit::HttpMethod::Delete => "DELETE",
    }
}

fn auth_name(auth: &wit::AuthScheme) -> String {
    match auth {
        wit::AuthScheme::None => "none".into(),
        wit::AuthScheme::BasicUser => "basic (secret as user)".into(),
        wit::AuthScheme::Bearer => "bearer".into(),
        wit::AuthScheme::Header(h) => format!("header {h}"),
    }
}

/// The provider's self-description as JSON.
pub fn info_json(plugin: &Plugin) -> serde_json::Value {
    let info = plugin.info();
    json!({
        "path": plugin.path(),
        "name": info.name,
        "version": info.version,
        "default_base_url": info.default_base_url,
        "auth": auth_name(&info.auth),
        "idempotency_header": info.idempotency_header,
        "should_retry_header": info.should_retry_header,
        "objects": info.objects.iter().map(|o| json!({
            "name": o.name,
            "doc": o.doc,
            "operations": o.operations.iter().map(|op| json!({
                "name": op.name,
                "method": method_name(op.method),
                "path": op.path,
                "needs_id": op.needs_id,
                "accepts": op.accepts,
                "doc": op.doc,
            })).collect::<Vec<_>>(),
            "fields": o.fields.iter().map(|f| json!({
                "name": f.name,
                "kind": kind_name(f.kind),
                "allowed": f.allowed,
                "doc": f.doc,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The provider's self-description as a table for people.
pub fn info_table(plugin: &Plugin) -> String {
    let info = plugin.info();
    let mut out = String::new();
    let _ = writeln!(out, "provider  {} {}", info.name, info.version);
    let _ = writeln!(out, "file      {}", plugin.path().display());
    let _ = writeln!(out, "base URL  {}", info.default_base_url);
    let _ = writeln!(out, "auth      {}", auth_name(&info.auth));
    if let Some(h) = &info.idempotency_header {
        let _ = writeln!(out, "idempotency header  {h}");
    }
    if let Some(h) = &info.should_retry_header {
        let _ = writeln!(out, "should-retry header {h}");
    }
    for object in &info.objects {
        let _ = writeln!(
            out,
            "\n{}  (new_{}())  {}",
            object.name, object.name, object.doc
        );
        let op_width = object
            .operations
            .iter()
            .map(|o| o.name.len())
            .max()
            .unwrap_or(0)
            + 6;
        for op in &object.operations {
            let _ = writeln!(
                out,
                "  {:op_width$} {:6} {}{}",
                format!("{}_async", op.name),
                method_name(op.method),
                op.path,
                if op.needs_id { "  (needs .id)" } else { "" },
            );
        }
        let width = object
            .fields
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0);
        for field in &object.fields {
            let allowed = if field.allowed.is_empty() {
                String::new()
            } else {
                format!(" [{}]", field.allowed.join("|"))
            };
            let _ = writeln!(
                out,
                "    {:width$}  {:11}  {}{allowed}",
                field.name,
                kind_name(field.kind),
                field.doc,
            );
        }
    }
    out
}

/// Builds (without sending) the request for `object.operation` with `params`
/// (a JSON object; an `id` key is taken as the object id for operations that
/// need one). Returns it as text: request line, headers, blank line, body.
pub fn build_request_text(
    plugin: &Plugin,
    object: &str,
    operation: &str,
    params: &str,
    base_url: Option<&str>,
) -> anyhow::Result<String> {
    let mut params: serde_json::Value = serde_json::from_str(params)
        .map_err(|e| anyhow::anyhow!("PARAMS_JSON is not valid JSON: {e}"))?;
    let map = params
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("PARAMS_JSON must be a JSON object"))?;
    let info = plugin.info();
    let needs_id = info
        .objects
        .iter()
        .find(|o| o.name == object)
        .and_then(|o| o.operations.iter().find(|op| op.name == operation))
        .is_some_and(|op| op.needs_id);
    let id = if needs_id {
        map.remove("id")
            .and_then(|v| v.as_str().map(str::to_string))
    } else {
        None
    };
    let input = wit::RequestInput {
        id,
        params: plugin::json_to_tree(&params),
        extra: Vec::new(),
    };
    let request = plugin
        .instantiate()?
        .build_request(object, operation, &input)?
        .map_err(|e| anyhow::anyhow!(crate::script_api::describe_plugin_error(&e, operation)))?;
    let base = base_url.unwrap_or(&info.default_base_url);
    let checked = Destination::new(
        base,
        &info.name,
        info.idempotency_header.as_deref(),
        plugin.limits().max_request_body,
    )
    .map_err(anyhow::Error::msg)?
    .check(&request)?;
    let mut out = format!("{} {}\n", checked.method, checked.url);
    for (name, value) in &checked.headers {
        let _ = writeln!(out, "{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    if let (Some(header), true) = (
        &info.idempotency_header,
        checked.method == reqwest::Method::POST,
    ) {
        let _ = writeln!(out, "{header}: <generated per request>");
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(&checked.body));
    if !checked.body.is_empty() {
        out.push('\n');
    }
    Ok(out)
}
