//! Builds the HTTP request for one operation (WIT `build-request`).
//!
//! - The path is the operation's template with `{id}` and `{parent}` (the
//!   payment's PSP reference for modifications) replaced, each
//!   percent-encoded as one path segment. A missing one where the template
//!   has it is `missing-id` (`field` `parent` for the parent); an empty one,
//!   one longer than 255 bytes, one with a control character, or `.`/`..`
//!   is `invalid-id`.
//! - `params` are checked against the schema (see `validate`); `extra` (the
//!   `.set` escape hatch) is a map of paths to values, merged in unchecked.
//! - `merchantAccount` is filled in from the `merchant_account` setting,
//!   in every operation that takes it (required or not; `filled_by` lists
//!   the required ones), when neither `params` nor `extra` set it. Then every required
//!   top-level field must be present: `missing-field` names the first one
//!   missing (the host checks the same first; this is the defence in depth
//!   the contract asks for, and what `payhost plugin check` sees).
//! - POST and PATCH send the JSON object (`{}` at least), content type
//!   `application/json`. GET and DELETE send the fields as a query string
//!   (scalars only) and no body.
//! - No extra headers: the host adds `X-API-Key` and `Idempotency-Key`.

use crate::error::{ErrorCode, PluginError, close_matches, did_you_mean};
use crate::json;
use crate::schema::{self, Method, Operation};
use crate::settings::{self, Settings};
use crate::tree::Value;
use crate::validate::{describe, validate_params};

/// The JSON content type.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// A request for the host to send (WIT `http-request`): the kit's type
/// (the path is relative to the base URL and starts with `/`; the query is
/// encoded, without `?`, empty for none).
pub use payhost_plugin_kit::request::HttpRequest as Request;

/// What the script asked for (WIT `request-input`, trees decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct Input<'a> {
    pub id: Option<&'a str>,
    pub parent: Option<&'a str>,
    pub params: Value,
    pub extra: Value,
}

/// Builds the request for `operation` on `object`.
pub fn build_request(
    settings: &Settings,
    object: &str,
    operation: &str,
    input: Input<'_>,
) -> Result<Request, PluginError> {
    let Some(obj) = schema::object(object) else {
        let names = schema::OBJECTS.iter().map(|o| o.name);
        let matches = close_matches(object, names.clone());
        let all: Vec<&str> = names.collect();
        return Err(PluginError::new(
            ErrorCode::UnknownObject,
            object,
            None,
            format!(
                "adyen has no object `{object}`{} (objects: {})",
                did_you_mean(&matches),
                all.join(", ")
            ),
        ));
    };
    let Some(op) = obj.operation(operation) else {
        let names = obj.operations.iter().map(|o| o.name);
        let matches = close_matches(operation, names.clone());
        let all: Vec<&str> = names.collect();
        return Err(PluginError::new(
            ErrorCode::UnknownOperation,
            object,
            None,
            format!(
                "{object} has no operation `{operation}`{} (operations: {})",
                did_you_mean(&matches),
                all.join(", ")
            ),
        ));
    };

    let path = fill_path(object, op, input.id, input.parent)?;

    let mut params = match input.params {
        Value::Null => Value::Map(Vec::new()),
        other => other,
    };
    validate_params(obj, op, &params)?;
    let extra = match input.extra {
        Value::Null => Vec::new(),
        Value::Map(entries) => entries,
        other => {
            return Err(PluginError::new(
                ErrorCode::InvalidValue,
                object,
                None,
                format!(
                    "extra parameters (set with `.set(path, value)`) must be a map, got {}",
                    describe(&other)
                ),
            ));
        }
    };
    let mut extra_steps = Vec::with_capacity(extra.len());
    for (key, value) in extra {
        let steps = json::parse_path(&key).ok_or_else(|| {
            PluginError::new(
                ErrorCode::InvalidValue,
                object,
                Some(key.as_str()),
                format!(
                    "`.set(\"{key}\", ...)`: not a parameter path (write `a.b`, `a[b]` or `list[0].b`, at most {} levels)",
                    json::MAX_PATH_STEPS
                ),
            )
        })?;
        extra_steps.push((key, steps, value));
    }
    let set_by_extra = |field: &str| {
        extra_steps
            .iter()
            .any(|(_, steps, _)| matches!(&steps[0], json::Step::Key(k) if k == field))
    };

    if let Value::Map(entries) = &mut params {
        // Every field a setting fills, where the operation takes it: the
        // required ones (`filled_by`) and optional ones alike (the stored
        // payment methods list takes an optional `merchantAccount`, and
        // Adyen scopes the answer to it).
        let fills = settings::FILLS
            .iter()
            .filter(|(field, _)| op.accepts.contains(field));
        for (field, setting) in fills {
            let given = entries.iter().any(|(k, v)| k == field && !v.is_null());
            if !given
                && !set_by_extra(field)
                && let Some(value) = settings.get(setting)
            {
                entries.retain(|(k, _)| k != field);
                entries.insert(0, (field.to_string(), Value::Text(value.to_string())));
            }
        }
    }
    for field in op.required {
        let given = params.get(field).is_some_and(|v| !v.is_null());
        if !given && !set_by_extra(field) {
            let how = match op.filled_by.iter().find(|(f, _)| f == field) {
                Some((_, setting)) => format!(
                    " or configure the `{setting}` setting (ADYEN_{})",
                    setting.to_ascii_uppercase()
                ),
                None => String::new(),
            };
            return Err(PluginError::new(
                ErrorCode::MissingField,
                object,
                Some(field),
                format!("{object} {operation} needs `{field}`: set it with `.{field}(...)`{how}"),
            ));
        }
    }

    let mut request = Request {
        method: op.method,
        path,
        query: String::new(),
        headers: Vec::new(),
        content_type: None,
        body: Vec::new(),
    };
    match op.method {
        Method::Get | Method::Delete => {
            let mut query = String::new();
            let entries = match params {
                Value::Map(entries) => entries,
                _ => Vec::new(),
            };
            let from_extra = extra_steps.into_iter().map(|(key, _, value)| (key, value));
            for (key, value) in entries.into_iter().chain(from_extra) {
                let text = match value {
                    Value::Null => continue,
                    Value::Text(s) => s,
                    Value::Int(i) => i.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Float(f) if f.is_finite() => f.to_string(),
                    other => {
                        return Err(PluginError::new(
                            ErrorCode::InvalidValue,
                            object,
                            Some(key.as_str()),
                            format!(
                                "invalid value for `{key}`: {object} {operation} sends its fields in the query string, which takes a string, number or boolean, got {}",
                                describe(&other)
                            ),
                        ));
                    }
                };
                if !query.is_empty() {
                    query.push('&');
                }
                percent_encode(&mut query, &key);
                query.push('=');
                percent_encode(&mut query, &text);
            }
            request.query = query;
        }
        Method::Post | Method::Put | Method::Patch => {
            let mut body = params;
            for (key, steps, value) in extra_steps {
                json::set_at(&mut body, &steps, value).map_err(|why| {
                    PluginError::new(
                        ErrorCode::InvalidValue,
                        object,
                        Some(key.as_str()),
                        format!("`.set(\"{key}\", ...)`: {why}"),
                    )
                })?;
            }
            let mut text = String::with_capacity(256);
            json::write(&mut text, &body).map_err(|path| {
                PluginError::new(
                    ErrorCode::InvalidValue,
                    object,
                    Some(path.as_str()),
                    format!("invalid value for `{path}`: JSON has no infinite or NaN numbers"),
                )
            })?;
            request.content_type = Some(JSON_CONTENT_TYPE.to_string());
            request.body = text.into_bytes();
        }
    }
    Ok(request)
}

/// The operation's path with `{id}` and `{parent}` filled in.
fn fill_path(
    object: &str,
    op: &Operation,
    id: Option<&str>,
    parent: Option<&str>,
) -> Result<String, PluginError> {
    let mut path = String::with_capacity(op.path.len() + 32);
    let mut rest = op.path;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let (value, how) = match name {
            "id" => (id, format!("the {object}'s id: set it with `.id(\"...\")`")),
            _ => (
                parent,
                "the payment's PSP reference: set it with `.parent(\"...\")`".to_string(),
            ),
        };
        let field = (name != "id").then_some("parent");
        let Some(value) = value else {
            return Err(PluginError::new(
                ErrorCode::MissingId,
                object,
                field,
                format!("{object} {} needs {how} first", op.name),
            ));
        };
        check_id(object, name, value, field)?;
        encode_segment(&mut path, value);
    }
    path.push_str(rest);
    Ok(path)
}

fn check_id(object: &str, what: &str, id: &str, field: Option<&str>) -> Result<(), PluginError> {
    let problem = if id.is_empty() {
        "is empty".to_string()
    } else if id.len() > MAX_ID_LEN {
        format!("is {} bytes long (at most {MAX_ID_LEN} allowed)", id.len())
    } else if id.chars().any(char::is_control) {
        "contains a control character".to_string()
    } else if id == "." || id == ".." {
        "is a dot segment".to_string()
    } else {
        return Ok(());
    };
    Err(PluginError::new(
        ErrorCode::InvalidId,
        object,
        field,
        format!("the {object} {what} {problem}"),
    ))
}

/// Appends `s` percent-encoded: ASCII letters, digits and `-._~` stay,
/// every other byte becomes `%XX`. Used for path segments and query parts.
fn percent_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
    }
}

fn encode_segment(out: &mut String, id: &str) {
    percent_encode(out, id);
}

#[cfg(test)]
mod tests;
