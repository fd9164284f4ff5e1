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
//! - `{parent}` in a template is replaced the same way by the parent id
//!   (`missing-id`/`invalid-id` with `field` = `parent`); no Stripe operation
//!   here has one yet.
//! - Validation ([`crate::validate`]) encodes each field as it passes (one
//!   walk over the params); then come `extra`'s structure, the operation's
//!   required fields (`missing-field`) and `extra`'s encoding. Any error
//!   discards what was encoded.
//! - Headers: `Stripe-Version` and `Stripe-Account` from the configured
//!   settings ([`crate::settings`]), when set; none otherwise (the account's
//!   default version).
//!
//! The component hands its two WIT trees to [`build_request_from_tree`],
//! which checks their layout ([`crate::tree`], `malformed-tree`) and then
//! validates and encodes them in place.

use crate::encode::{encode_form_into, encode_pair_into};
use crate::error::{ErrorCode, PluginError, close_matches, did_you_mean};
use crate::schema::{self, Method};
use crate::settings::Config;
use crate::tree::{AsRawNode, TreeView};
use crate::validate::{check_required, validate_and_encode, validate_extra};
use crate::value::Node;

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

/// What a request is for: the object, the operation, and the ids the script
/// set (`.id(...)`, `.parent(...)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'s> {
    pub object: &'s str,
    pub operation: &'s str,
    pub id: Option<&'s str>,
    pub parent: Option<&'s str>,
}

/// Builds the request for `operation` on `object` with no settings and no
/// parent id, validating `params` against the schema (`extra` only has to be
/// a map). The native entry point for tests and the benchmark's baseline.
pub fn build_request<'a, 'b, P: Node<'a>, E: Node<'b>>(
    object: &str,
    operation: &str,
    id: Option<&str>,
    params: P,
    extra: E,
) -> Result<Request, PluginError> {
    let target = Target {
        object,
        operation,
        id,
        parent: None,
    };
    build_request_with(&Config::default(), target, params, extra)
}

/// [`build_request`] for two WIT trees (node list and text each, the nodes
/// native [`crate::tree::RawNode`]s or the component's own): checks both
/// layouts (`malformed-tree`), then builds from them in place.
pub fn build_request_from_tree<P: AsRawNode, E: AsRawNode>(
    config: &Config,
    target: Target<'_>,
    params: (&[P], &str),
    extra: (&[E], &str),
) -> Result<Request, PluginError> {
    let malformed = |which: &str, e: crate::tree::TreeError| {
        PluginError::new(
            ErrorCode::MalformedTree,
            target.object,
            None,
            format!("malformed {which} tree: {e}"),
        )
    };
    let params = TreeView::new(params.0, params.1).map_err(|e| malformed("parameter", e))?;
    let extra =
        TreeView::new(extra.0, extra.1).map_err(|e| malformed("extra-parameter (`.set`)", e))?;
    build_request_with(config, target, params.root(), extra.root())
}

/// [`build_request_from_tree`] from the contract's node words.
pub fn build_request_from_words(
    config: &Config,
    target: Target<'_>,
    params: (&[u32], &str),
    extra: (&[u32], &str),
) -> Result<Request, PluginError> {
    let malformed = |which: &str, e: crate::tree::TreeError| {
        PluginError::new(
            ErrorCode::MalformedTree,
            target.object,
            None,
            format!("malformed {which} tree: {e}"),
        )
    };
    let p = crate::tree::node_words(params.0).map_err(|e| malformed("parameter", e))?;
    let e =
        crate::tree::node_words(extra.0).map_err(|e| malformed("extra-parameter (`.set`)", e))?;
    build_request_from_tree(config, target, (p, params.1), (e, extra.1))
}

/// Builds the request for `target` with the instance's settings.
pub fn build_request_with<'a, 'b, P: Node<'a>, E: Node<'b>>(
    config: &Config,
    target: Target<'_>,
    params: P,
    extra: E,
) -> Result<Request, PluginError> {
    let Target {
        object,
        operation,
        id,
        parent,
    } = target;
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
        Some(id) => Some(check_id(object, "id", id)?),
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
    let parent = match parent {
        Some(parent) if op.needs_parent => Some(check_id(object, "parent", parent)?),
        None if op.needs_parent => {
            return Err(PluginError::new(
                ErrorCode::MissingId,
                object,
                Some("parent".to_string()),
                format!(
                    "{object} {operation} needs the id of the object it belongs to: set it with \
                     `.parent(\"...\")` first"
                ),
            ));
        }
        // Ignored where the path has no `{parent}`, like an id.
        _ => None,
    };

    // Room for a typical body (a 10-field payment intent is ~300 bytes), so
    // that encoding rarely grows the buffer.
    let mut form = String::with_capacity(512);
    if !op.needs_id
        && let Some(id) = id
        && op.accepts("id")
        && params.get("id").is_none_or(|v| v.is_null())
    {
        encode_pair_into(&mut form, "id", id);
    }
    // Params are validated and encoded in one walk; `extra` (no schema)
    // only has to be a map. Any error drops the partial form.
    validate_and_encode(obj, op, params, Some(&mut form))?;
    validate_extra(obj, extra)?;
    check_required(obj, op, params, extra)?;
    encode_form_into(&mut form, extra);

    let path = if op.needs_id || op.needs_parent {
        fill_path(op.path, id, parent)
    } else {
        op.path.to_string()
    };

    let mut request = Request {
        method: op.method,
        path,
        query: String::new(),
        headers: config.headers(),
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

/// The path template with `{id}` and `{parent}` replaced by their ids, each
/// encoded as one segment (both are present when the template has them:
/// checked by the caller).
fn fill_path(template: &str, id: Option<&str>, parent: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let from = &rest[open..];
        if let Some(after) = from.strip_prefix("{id}") {
            encode_segment(&mut out, id.unwrap_or_default());
            rest = after;
        } else if let Some(after) = from.strip_prefix("{parent}") {
            encode_segment(&mut out, parent.unwrap_or_default());
            rest = after;
        } else {
            out.push('{');
            rest = &from[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Checks an id (`which` is `id` or `parent`) before it goes into the path.
fn check_id<'a>(object: &str, which: &str, id: &'a str) -> Result<&'a str, PluginError> {
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
            Some(which.to_string()),
            format!(
                "the {} id {problem}",
                if which == "id" { object } else { "parent" }
            ),
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
