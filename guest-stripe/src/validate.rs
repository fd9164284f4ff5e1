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
//! Recursion follows the schema, which is at most a few levels deep, so it is
//! bounded whatever the tree looks like. Nothing is allocated unless there is
//! an error to report.

use crate::encode::write_py_float;
use crate::error::{ErrorCode, PluginError, close_matches};
use crate::schema::{Field, Kind, Object, Operation, find_field};
use crate::value::{Path, Seg, Value};

/// Checks `params` (the fields a script set) for `operation` on `object`.
pub fn validate_params(
    object: &Object,
    operation: &Operation,
    params: &Value,
) -> Result<(), PluginError> {
    let entries = match params {
        Value::Null => return Ok(()),
        Value::Map(entries) => entries,
        other => {
            return Err(PluginError::new(
                ErrorCode::InvalidValue,
                object.name,
                None,
                format!(
                    "{} parameters must be a map of field names to values, got {}",
                    object.name,
                    describe(other)
                ),
            ));
        }
    };
    for (key, value) in entries {
        let Some(field) = object.field(key) else {
            let matches = close_matches(key, object.fields.iter().map(|f| f.name));
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key.clone()),
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
        if !operation.accepts(key) {
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key.clone()),
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
        check(object, field, value, &path)?;
    }
    Ok(())
}

/// Checks the structure of `extra` (the `.set(...)` escape hatch): its root
/// must be a map. Its contents are not checked against the schema.
pub fn validate_extra(object: &Object, extra: &Value) -> Result<(), PluginError> {
    match extra {
        Value::Null | Value::Map(_) => Ok(()),
        other => Err(PluginError::new(
            ErrorCode::InvalidValue,
            object.name,
            None,
            format!(
                "extra parameters (set with `.set(path, value)`) must be a map, got {}",
                describe(other)
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
            Seg::Key(k) => {
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

fn check(
    object: &Object,
    field: &Field,
    value: &Value,
    path: &Path<'_>,
) -> Result<(), PluginError> {
    let ok = match (field.kind, value) {
        (_, Value::Null) => true,
        (Kind::Text, Value::Str(s)) => {
            if !field.allowed.is_empty() && !field.allowed.contains(&s.as_str()) {
                return Err(invalid(object, path, &expect_one_of(field), value));
            }
            true
        }
        (Kind::Integer, Value::Int(_)) => true,
        (Kind::Amount, Value::Int(i)) => *i >= 0,
        (Kind::Decimal, Value::Int(_)) => true,
        (Kind::Decimal, Value::Float(f)) => f.is_finite(),
        (Kind::Decimal, Value::Str(s)) => is_decimal(s),
        (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::Timestamp, Value::Int(i)) => *i >= 0,
        (Kind::Timestamp, Value::Str(s)) => s == "now",
        (Kind::StringMap | Kind::Object, Value::Str(s)) => s.is_empty(),
        (Kind::StringMap, Value::Map(entries)) => {
            for (k, v) in entries {
                let ok = match v {
                    Value::Null | Value::Str(_) | Value::Int(_) | Value::Bool(_) => true,
                    Value::Float(f) => f.is_finite(),
                    Value::List(_) | Value::Map(_) => false,
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
        (Kind::StringList, Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !matches!(item, Value::Str(_)) {
                    let child = Path {
                        parent: Some(path),
                        seg: Seg::Index(i),
                    };
                    return Err(invalid(object, &child, "a string", item));
                }
            }
            true
        }
        (Kind::Object, Value::Map(entries)) => {
            check_children(object, field, entries, path)?;
            true
        }
        (Kind::ObjectList, Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                let child = Path {
                    parent: Some(path),
                    seg: Seg::Index(i),
                };
                match item {
                    Value::Map(entries) => check_children(object, field, entries, &child)?,
                    other => return Err(invalid(object, &child, "a map of its fields", other)),
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

fn check_children(
    object: &Object,
    field: &Field,
    entries: &[(String, Value)],
    path: &Path<'_>,
) -> Result<(), PluginError> {
    for (key, value) in entries {
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
        check(object, child, value, &child_path)?;
    }
    Ok(())
}

fn invalid(object: &Object, path: &Path<'_>, expected: &str, got: &Value) -> PluginError {
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
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => {
            let mut out = String::from("the float ");
            write_py_float(&mut out, *f);
            out
        }
        Value::Str(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("the string {cut:?}… ({} characters)", s.chars().count())
            } else {
                format!("the string {s:?}")
            }
        }
        Value::List(items) => format!("a list of {} items", items.len()),
        Value::Map(entries) => format!("a map with {} entries", entries.len()),
    }
}

#[cfg(test)]
mod tests;
