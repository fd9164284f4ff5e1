//! Checks a parameter tree against an object's schema for one operation.
//!
//! - A field the object does not have is `unknown-field`, with close matches.
//! - A field the object has but the operation does not accept is
//!   `unknown-field` too, naming the operation and what it accepts.
//! - A value of the wrong kind, a negative amount, or an enumeration value
//!   outside the allowed set is `invalid-value`, naming the field by its path
//!   (`items[0].quantity`) and saying what was expected and what was given.
//! - Nested objects and object lists are checked against their children.
//! - `Null` means "not set" everywhere and passes (the encoder skips it),
//!   except as a list element, where it would leave a gap in the indices.
//! - A string map (`metadata`) takes strings, integers, finite floats and
//!   booleans as values (the encoder writes numbers in decimal and booleans
//!   as `true`/`false`); the empty string in place of the whole map, or of a
//!   nested object, is Stripe's way to unset it and passes.
//!
//! - A field an operation requires (`operation-info.required`) that is
//!   missing or null is `missing-field`, naming the field and the operation;
//!   so is a required child of a nested object that is given
//!   (`recurring.interval` when `recurring` is set), except in list filters
//!   (GET), which take any subset. The host checks the
//!   top-level ones first; this is the plugin's own check of the same rule.
//!
//! The checks work on any [`Node`]: an owned [`crate::Value`] or a checked WIT tree
//! read in place. Recursion follows the schema, which is at most a few levels
//! deep, so it is bounded whatever the tree looks like. Nothing is allocated
//! unless there is an error to report.

use crate::encode::{encode_field_into, write_py_float};
use crate::error::{ErrorCode, PluginError, close_matches};
use crate::schema::{Field, Kind, Method, Object, Operation, find_field, same_name};
use crate::value::{Node, Path, Seg, Shape};

/// Checks `params` (the fields a script set) for `operation` on `object`.
pub fn validate_params<'a, N: Node<'a>>(
    object: &Object,
    operation: &Operation,
    params: N,
) -> Result<(), PluginError> {
    validate_and_encode(object, operation, params, None)
}

/// [`validate_params`], appending each field's encoding to `out` (when
/// given) as soon as it has passed: one walk over the params instead of
/// two. On an error `out` holds a partial encoding, for the caller to drop.
pub(crate) fn validate_and_encode<'a, N: Node<'a>>(
    object: &Object,
    operation: &Operation,
    params: N,
    mut out: Option<&mut String>,
) -> Result<(), PluginError> {
    let entries = match params.shape() {
        Shape::Null => return Ok(()),
        Shape::Map(entries) => entries,
        _ => {
            return Err(PluginError::new(
                ErrorCode::InvalidValue,
                object.name,
                None,
                format!(
                    "{} parameters must be a map of field names to values, got {}",
                    object.name,
                    describe(params)
                ),
            ));
        }
    };
    let accepted = object.accept_mask(operation);
    for (key, value) in entries {
        let Some((position, field)) = object.field_at(key) else {
            let matches = close_matches(key, object.fields.iter().map(|f| f.name));
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key.to_string()),
                format!(
                    "{} has no field `{key}`{}",
                    object.name,
                    crate::error::did_you_mean(&matches)
                ),
            ));
        };
        if value.is_null() {
            continue;
        }
        if accepted & (1 << position) == 0 {
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key.to_string()),
                format!(
                    "{} field `{key}` is not accepted by `{}` ({} accepts: {})",
                    object.name,
                    operation.name,
                    operation.name,
                    operation.accepts.join(", ")
                ),
            ));
        }
        let path = Path {
            parent: None,
            seg: Seg::Key(key),
        };
        // Nested required fields bind what is sent to create or change an
        // object; list filters (GET) take any subset (`price.list` filters
        // on `recurring.usage_type` alone).
        let nested_required = operation.method != Method::Get;
        check(object, field, value, &path, nested_required)?;
        if let Some(out) = out.as_deref_mut() {
            encode_field_into(out, field.name, value);
        }
    }
    Ok(())
}

/// Checks that every field `operation` requires is set (not null) in
/// `params`, or given through `extra` under the same top-level name (the
/// `.set` escape hatch sends it just the same).
pub fn check_required<'a, 'b, P: Node<'a>, E: Node<'b>>(
    object: &Object,
    operation: &Operation,
    params: P,
    extra: E,
) -> Result<(), PluginError> {
    for &name in operation.required {
        let in_params = params.get(name).is_some_and(|v| !v.is_null());
        let in_extra = extra.get(name).is_some_and(|v| !v.is_null());
        if in_params || in_extra {
            continue;
        }
        return Err(PluginError::new(
            ErrorCode::MissingField,
            object.name,
            Some(name.to_string()),
            format!(
                "{} {} needs `{name}`: set it with `.{name}(...)` first",
                object.name, operation.name
            ),
        ));
    }
    Ok(())
}

/// Checks the structure of `extra` (the `.set(...)` escape hatch): its root
/// must be a map. Its contents are not checked against the schema.
pub fn validate_extra<'a, N: Node<'a>>(object: &Object, extra: N) -> Result<(), PluginError> {
    match extra.shape() {
        Shape::Null | Shape::Map(_) => Ok(()),
        _ => Err(PluginError::new(
            ErrorCode::InvalidValue,
            object.name,
            None,
            format!(
                "extra parameters (set with `.set(path, value)`) must be a map, got {}",
                describe(extra)
            ),
        )),
    }
}

/// Field paths render as `items[0].price` in messages (the encoder renders
/// the same [`Path`] as the form key `items[0][price]`).
impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.render_into(out);
        }
        match self.seg {
            Seg::Key(k) | Seg::Field(k) => {
                if self.parent.is_some() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

fn check<'a, N: Node<'a>>(
    object: &Object,
    field: &Field,
    value: N,
    path: &Path<'_>,
    nested_required: bool,
) -> Result<(), PluginError> {
    let ok = match (field.kind, value.shape()) {
        (_, Shape::Null) => true,
        (Kind::Text, Shape::Str(s)) => {
            if !field.allowed.is_empty() && !field.allowed.iter().any(|a| same_name(a, s)) {
                return Err(invalid(object, path, &expect_one_of(field), value));
            }
            true
        }
        (Kind::Integer, Shape::Int(_)) => true,
        (Kind::Amount, Shape::Int(i)) => i >= 0,
        (Kind::Decimal, Shape::Int(_)) => true,
        (Kind::Decimal, Shape::Float(f)) => f.is_finite(),
        (Kind::Decimal, Shape::Str(s)) => is_decimal(s),
        (Kind::Boolean, Shape::Bool(_)) => true,
        (Kind::Timestamp, Shape::Int(i)) => i >= 0,
        (Kind::Timestamp, Shape::Str(s)) => s == "now",
        (Kind::StringMap | Kind::Object, Shape::Str(s)) => s.is_empty(),
        (Kind::StringMap, Shape::Map(entries)) => {
            for (k, v) in entries {
                let ok = match v.shape() {
                    Shape::Null | Shape::Str(_) | Shape::Int(_) | Shape::Bool(_) => true,
                    Shape::Float(f) => f.is_finite(),
                    Shape::List(_) | Shape::Map(_) => false,
                };
                if !ok {
                    let child = Path {
                        parent: Some(path),
                        seg: Seg::Key(k),
                    };
                    return Err(invalid(object, &child, "a string, number or boolean", v));
                }
            }
            true
        }
        (Kind::StringList, Shape::List(items)) => {
            for (i, item) in items.enumerate() {
                if !matches!(item.shape(), Shape::Str(_)) {
                    let child = Path {
                        parent: Some(path),
                        seg: Seg::Index(i),
                    };
                    return Err(invalid(object, &child, "a string", item));
                }
            }
            true
        }
        (Kind::Object, Shape::Map(entries)) => {
            check_children(object, field, entries, path, nested_required)?;
            true
        }
        (Kind::ObjectList, Shape::List(items)) => {
            for (i, item) in items.enumerate() {
                let child = Path {
                    parent: Some(path),
                    seg: Seg::Index(i),
                };
                match item.shape() {
                    Shape::Map(entries) => {
                        check_children(object, field, entries, &child, nested_required)?
                    }
                    _ => return Err(invalid(object, &child, "a map of its fields", item)),
                }
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(object, path, expectation(field.kind), value))
    }
}

fn check_children<'a, N: Node<'a>>(
    object: &Object,
    field: &Field,
    entries: impl Iterator<Item = (&'a str, N)> + Clone,
    path: &Path<'_>,
    nested_required: bool,
) -> Result<(), PluginError> {
    for (key, value) in entries.clone() {
        let child_path = Path {
            parent: Some(path),
            seg: Seg::Key(key),
        };
        let Some(child) = find_field(field.children, key) else {
            let prefix = path.render();
            let matches: Vec<String> = close_matches(key, field.children.iter().map(|f| f.name))
                .into_iter()
                .map(|m| format!("{prefix}.{m}"))
                .collect();
            let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
            let known: Vec<&str> = field.children.iter().map(|f| f.name).collect();
            let rendered = child_path.render();
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(rendered.clone()),
                format!(
                    "{} has no field `{rendered}`{} (`{prefix}` takes: {})",
                    object.name,
                    crate::error::did_you_mean(&matches),
                    known.join(", ")
                ),
            ));
        };
        check(object, child, value, &child_path, nested_required)?;
    }
    if !nested_required {
        return Ok(());
    }
    for child in field.children.iter().filter(|c| c.required) {
        let set = entries
            .clone()
            .any(|(k, v)| k == child.name && !v.is_null());
        if !set {
            let prefix = path.render();
            let name = format!("{prefix}.{}", child.name);
            return Err(PluginError::new(
                ErrorCode::MissingField,
                object.name,
                Some(name.clone()),
                format!(
                    "{} is missing `{name}`, which `{prefix}` must have when it is given",
                    object.name
                ),
            ));
        }
    }
    Ok(())
}

fn invalid<'a, N: Node<'a>>(
    object: &Object,
    path: &Path<'_>,
    expected: &str,
    got: N,
) -> PluginError {
    let field = path.render();
    let message = format!(
        "invalid value for `{field}`: expected {expected}, got {}",
        describe(got)
    );
    PluginError::new(ErrorCode::InvalidValue, object.name, Some(field), message)
}

fn expect_one_of(field: &Field) -> String {
    let allowed: Vec<String> = field.allowed.iter().map(|a| format!("\"{a}\"")).collect();
    format!("one of {}", allowed.join(", "))
}

fn expectation(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Integer => "an integer",
        Kind::Amount => "a non-negative integer",
        Kind::Decimal => "a decimal number, or a string such as \"12.5\"",
        Kind::Boolean => "true or false",
        Kind::Timestamp => "a Unix timestamp in seconds (a non-negative integer) or \"now\"",
        Kind::StringMap => "a map of string keys to string values",
        Kind::StringList => "a list of strings",
        Kind::Object => "a map of its fields",
        Kind::ObjectList => "a list of maps",
    }
}

/// `-?digits(.digits)?`, or `-?.digits`.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac) && (!int.is_empty() || !frac.is_empty()) && !(s.ends_with('.'))
}

/// Describes a value for a message: `the string "12"`, `the integer -5`.
pub fn describe<'a, N: Node<'a>>(value: N) -> String {
    match value.shape() {
        Shape::Null => "nothing (null)".to_string(),
        Shape::Bool(b) => format!("the boolean {b}"),
        Shape::Int(i) => format!("the integer {i}"),
        Shape::Float(f) => {
            let mut out = String::from("the float ");
            write_py_float(&mut out, f);
            out
        }
        Shape::Str(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("the string {cut:?}… ({} characters)", s.chars().count())
            } else {
                format!("the string {s:?}")
            }
        }
        Shape::List(items) => format!("a list of {} items", items.len()),
        Shape::Map(entries) => format!("a map with {} entries", entries.len()),
    }
}

#[cfg(test)]
mod tests;
