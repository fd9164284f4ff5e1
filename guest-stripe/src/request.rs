//! Builds the HTTP request for one operation (WIT `build-request`).
//!
//! - The path is the operation's template with `{id}` replaced by the id,
//!   percent-encoded as one path segment. A missing id where one is needed is
//!   `missing-id`; an empty id, one longer than 255 bytes, one containing a
//!   control character, or `.`/`..` (which URL parsers treat as dot segments
//!   even when encoded) is `invalid-id`.
//! - For an operation that needs no id, a given id is ignored, except where
//!   the operation accepts an `id` field (custom ids on `coupon.create` and
//!   `product.create`): it is then sent as the first form field, unless the
//!   params set `id` themselves.
//! - POST/PUT/PATCH: the body is the form encoding of `params` followed by
//!   that of `extra`, content type `application/x-www-form-urlencoded`; an
//!   empty body has no content type. GET/DELETE: the same encoding goes into
//!   the query string and the body stays empty.
//! - No extra headers: `Stripe-Version` is left to the account's default.

use crate::encode::{encode_form_into, encode_pair_into};
use crate::error::{ErrorCode, PluginError, close_matches, did_you_mean};
use crate::schema::{self, Method};
use crate::validate::{validate_extra, validate_params};
use crate::value::{ArenaNode, Value};

/// The form content type.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// A request for the host to send (WIT `http-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Relative to the base URL; starts with `/`.
    pub path: String,
    /// Encoded query string without `?`; empty for none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Builds the request for `operation` on `object`, validating `params`
/// against the schema (`extra` only has to be a map).
pub fn build_request(
    object: &str,
    operation: &str,
    id: Option<&str>,
    params: &Value,
    extra: &Value,
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
                "stripe has no object `{object}`{} (objects: {})",
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

    let id = match id {
        Some(id) => Some(check_id(object, id)?),
        None if op.needs_id => {
            return Err(PluginError::new(
                ErrorCode::MissingId,
                object,
                Some("id".to_string()),
                format!(
                    "{object} {operation} needs the {object}'s id: set it with `.id(\"...\")` first"
                ),
            ));
        }
        None => None,
    };

    validate_params(obj, op, params)?;
    validate_extra(obj, extra)?;

    let mut form = String::with_capacity(256);
    if !op.needs_id
        && let Some(id) = id
        && op.accepts("id")
        && params.get("id").is_none_or(Value::is_null)
    {
        encode_pair_into(&mut form, "id", id);
    }
    encode_form_into(&mut form, params);
    encode_form_into(&mut form, extra);

    let path = if op.needs_id {
        // `needs_id` is true exactly when the template holds `{id}`, and an
        // id is present here (checked above).
        let id = id.unwrap_or_default();
        let (before, after) = op.path.split_once("{id}").unwrap_or((op.path, ""));
        let mut path = String::with_capacity(op.path.len() + id.len() * 3);
        path.push_str(before);
        encode_segment(&mut path, id);
        path.push_str(after);
        path
    } else {
        op.path.to_string()
    };

    let mut request = Request {
        method: op.method,
        path,
        query: String::new(),
        headers: Vec::new(),
        content_type: None,
        body: Vec::new(),
    };
    match op.method {
        Method::Get | Method::Delete => request.query = form,
        Method::Post | Method::Put | Method::Patch => {
            if !form.is_empty() {
                request.content_type = Some(FORM_CONTENT_TYPE.to_string());
            }
            request.body = form.into_bytes();
        }
    }
    Ok(request)
}

/// [`build_request`] for trees in their WIT arena form: decodes both (an
/// ill-formed tree is `invalid-value`), then builds.
pub fn build_request_from_arena(
    object: &str,
    operation: &str,
    id: Option<&str>,
    params: Vec<ArenaNode>,
    extra: Vec<ArenaNode>,
) -> Result<Request, PluginError> {
    let params = Value::from_arena(params).map_err(|e| {
        PluginError::new(
            ErrorCode::InvalidValue,
            object,
            None,
            format!("malformed parameter tree: {e}"),
        )
    })?;
    let extra = Value::from_arena(extra).map_err(|e| {
        PluginError::new(
            ErrorCode::InvalidValue,
            object,
            None,
            format!("malformed extra-parameter tree (`.set`): {e}"),
        )
    })?;
    build_request(object, operation, id, &params, &extra)
}

fn check_id<'a>(object: &str, id: &'a str) -> Result<&'a str, PluginError> {
    let problem = if id.is_empty() {
        Some("is empty".to_string())
    } else if id.len() > MAX_ID_LEN {
        Some(format!(
            "is {} bytes long (at most {MAX_ID_LEN} allowed)",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("contains a control character".to_string())
    } else if id == "." || id == ".." {
        Some("is a dot segment".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(id),
        Some(problem) => Err(PluginError::new(
            ErrorCode::InvalidId,
            object,
            Some("id".to_string()),
            format!("the {object} id {problem}"),
        )),
    }
}

/// Appends `id` percent-encoded as a single path segment: ASCII letters,
/// digits and `-._~` stay, every other byte becomes `%XX`.
fn encode_segment(out: &mut String, id: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in id.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests;
