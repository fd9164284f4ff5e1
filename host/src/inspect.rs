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
        wit::AuthScheme::Basic(b) => match &b.password {
            Some(p) => format!("basic (user from `{}`, password from `{p}`)", b.user),
            None => format!("basic (user from `{}`, empty password)", b.user),
        },
        wit::AuthScheme::Bearer(s) => format!("bearer (from `{s}`)"),
        wit::AuthScheme::Header(h) => format!("header {} (from `{}`)", h.name, h.secret),
    }
}

fn auth_json(auth: &wit::AuthScheme) -> serde_json::Value {
    match auth {
        wit::AuthScheme::None => json!({"scheme": "none"}),
        wit::AuthScheme::Basic(b) => {
            json!({"scheme": "basic", "user": b.user, "password": b.password})
        }
        wit::AuthScheme::Bearer(s) => json!({"scheme": "bearer", "secret": s}),
        wit::AuthScheme::Header(h) => {
            json!({"scheme": "header", "header": h.name, "secret": h.secret})
        }
    }
}

fn cache_note(outcome: crate::plugin::CacheOutcome) -> &'static str {
    match outcome {
        crate::plugin::CacheOutcome::Hit => "from the compiled-component cache",
        crate::plugin::CacheOutcome::Stored => "now, and stored in the compiled-component cache",
        crate::plugin::CacheOutcome::Compiled => "now (the cache is off or could not store it)",
    }
}

fn failure_name(kind: wit::FailureKind) -> &'static str {
    match kind {
        wit::FailureKind::Connect => "connect",
        wit::FailureKind::Timeout => "timeout",
        wit::FailureKind::BodyTooLarge => "body-too-large",
        wit::FailureKind::Io => "io",
    }
}

/// `provider-info.responses` as `payhost plugin info` names it, and what
/// it means for people.
fn response_rule(rule: wit::ResponseRule) -> (&'static str, &'static str) {
    match rule {
        wit::ResponseRule::Plugin => ("plugin", "every response goes to parse-response"),
        wit::ResponseRule::JsonObjectIsSuccess => (
            "json-object-is-success",
            "a 2xx JSON object is a success as it is; parse-response reads the rest",
        ),
    }
}

fn statuses(retry: &wit::RetryPolicy) -> Vec<String> {
    retry
        .statuses
        .iter()
        .map(|r| match r.first == r.last {
            true => r.first.to_string(),
            false => format!("{}-{}", r.first, r.last),
        })
        .collect()
}

/// The provider's self-description as JSON.
pub fn info_json(plugin: &Plugin) -> serde_json::Value {
    let info = plugin.info();
    json!({
        "path": plugin.path(),
        "name": info.name,
        "version": info.version,
        "doc": info.doc,
        "contract": crate::plugin::CONTRACT_VERSION,
        "compiled": cache_note(plugin.cache_outcome()),
        "default_base_url": info.default_base_url,
        "settings": info.settings.iter().map(|s| json!({
            "name": s.name,
            "doc": s.doc,
            "required": s.required,
            "default": s.default,
            "secret": s.secret,
            "env": crate::settings::env_name(&info.name, &s.name),
        })).collect::<Vec<_>>(),
        "auth": auth_json(&info.auth),
        "retry": {
            "statuses": statuses(&info.retry),
            "failures": info.retry.failures.iter().map(|k| failure_name(*k)).collect::<Vec<_>>(),
            "should_retry_header": info.retry.should_retry_header,
            "honour_retry_after": info.retry.honour_retry_after,
            "idempotency_header": info.retry.idempotency_header,
        },
        "responses": response_rule(info.responses).0,
        "objects": info.objects.iter().map(|o| json!({
            "name": o.name,
            "doc": o.doc,
            "operations": o.operations.iter().map(|op| json!({
                "name": op.name,
                "method": method_name(op.method),
                "path": op.path,
                "needs_id": op.needs_id,
                "needs_parent": op.needs_parent,
                "accepts": op.accepts,
                "required": op.required,
                "filled_by": op.filled_by.iter().map(|(f, s)| json!({"field": f, "setting": s})).collect::<Vec<_>>(),
                "doc": op.doc,
            })).collect::<Vec<_>>(),
            "fields": o.fields.iter().map(|f| json!({
                "name": f.name,
                "kind": kind_name(f.kind),
                "allowed": f.allowed,
                "required": f.required,
                "doc": f.doc,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The provider's self-description as a table for people.
pub fn info_table(plugin: &Plugin) -> String {
    let info = plugin.info();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "provider  {} {}  {}",
        info.name, info.version, info.doc
    );
    let _ = writeln!(out, "file      {}", plugin.path().display());
    let _ = writeln!(
        out,
        "contract  payhost:plugin@{}",
        crate::plugin::CONTRACT_VERSION
    );
    let _ = writeln!(out, "compiled  {}", cache_note(plugin.cache_outcome()));
    let _ = writeln!(out, "base URL  {}", info.default_base_url);
    let _ = writeln!(out, "auth      {}", auth_name(&info.auth));
    let retry = &info.retry;
    let _ = writeln!(
        out,
        "retry     statuses [{}], failures [{}], Retry-After {}",
        statuses(retry).join(", "),
        retry
            .failures
            .iter()
            .map(|k| failure_name(*k))
            .collect::<Vec<_>>()
            .join(", "),
        if retry.honour_retry_after {
            "honoured"
        } else {
            "ignored"
        },
    );
    if let Some(h) = &retry.should_retry_header {
        let _ = writeln!(out, "          should-retry header {h}");
    }
    if let Some(h) = &retry.idempotency_header {
        let _ = writeln!(out, "          idempotency header {h}");
    }
    let (rule, meaning) = response_rule(info.responses);
    let _ = writeln!(out, "responses {rule}: {meaning}");
    if !info.settings.is_empty() {
        let _ = writeln!(
            out,
            "\nsettings (--set NAME=VALUE, the variable, or --settings FILE)"
        );
        let width = info
            .settings
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in &info.settings {
            let mut notes = Vec::new();
            if s.secret {
                notes.push("SECRET".to_string());
            }
            if s.required {
                notes.push("required".to_string());
            }
            if let Some(d) = &s.default {
                notes.push(format!("default {d}"));
            }
            let _ = writeln!(
                out,
                "  {:width$}  {:28} {}{}",
                s.name,
                crate::settings::env_name(&info.name, &s.name),
                s.doc,
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join(", "))
                },
            );
        }
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
            let mut notes = Vec::new();
            if op.needs_id {
                notes.push("needs .id".to_string());
            }
            if op.needs_parent {
                notes.push("needs .parent".to_string());
            }
            if !op.required.is_empty() {
                notes.push(format!("requires {}", op.required.join(", ")));
            }
            let _ = writeln!(
                out,
                "  {:op_width$} {:6} {}{}",
                format!("{}_async", op.name),
                method_name(op.method),
                op.path,
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                },
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
                "    {:width$}  {:11}  {}{allowed}{}",
                field.name,
                kind_name(field.kind),
                field.doc,
                if field.required { "  (required)" } else { "" },
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
    let op = info
        .objects
        .iter()
        .find(|o| o.name == object)
        .and_then(|o| o.operations.iter().find(|op| op.name == operation));
    let mut take = |key: &str, wanted: bool| match wanted {
        true => map.remove(key).and_then(|v| v.as_str().map(str::to_string)),
        false => None,
    };
    let id = take("id", op.is_some_and(|op| op.needs_id));
    let parent = take("parent", op.is_some_and(|op| op.needs_parent));
    let input = wit::RequestInput {
        id,
        parent,
        params: plugin::json_to_tree(&params).map_err(anyhow::Error::msg)?,
        extra: plugin::json_to_tree(&json!({})).map_err(anyhow::Error::msg)?,
    };
    let request = plugin
        .instantiate()?
        .build_request(object, operation, &input)?
        .map_err(|e| anyhow::anyhow!(crate::script_api::describe_plugin_error(&e, operation)))?;
    let base = base_url.unwrap_or(&info.default_base_url);
    let checked = Destination::for_provider(info, base, plugin.limits().max_request_body)
        .map_err(anyhow::Error::msg)?
        .check(&request)?;
    let mut out = format!("{} {}\n", checked.method, checked.url);
    for (name, value) in &checked.headers {
        let _ = writeln!(out, "{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    if let (Some(header), true) = (
        &info.retry.idempotency_header,
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
