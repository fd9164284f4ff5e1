//! Checks a parameter tree against an object's schema for one operation.
//!
//! - A field the object does not have is `unknown-field`, with close
//!   matches; one the object has but this operation does not accept is
//!   `unknown-field` too, listing what the operation accepts.
//! - A value of the wrong kind, or an enumeration value outside the allowed
//!   set, is `invalid-value`, naming the field by its path
//!   (`lineItems[0].quantity`) and saying what was expected and what came.
//! - A nested object (`amount`) given without one of its required fields
//!   (`amount.currency`) is `missing-field` naming `amount.currency`.
//!   Top-level required fields are checked by the request builder, after it
//!   has filled in what settings provide.
//! - Nested objects and object lists are checked against their children;
//!   open objects (no children listed) take anything.
//! - `Null` means "not set" and passes everywhere except as a list element.
//!
//! Recursion follows the schema (at most three levels), so it is bounded
//! whatever the tree looks like; nothing is allocated unless there is an
//! error to report.

use crate::error::{ErrorCode, PluginError, close_matches, did_you_mean};
use crate::schema::{Field, Kind, Object, Operation, find_field};
use crate::tree::Value;

/// One step of a path into a parameter tree, as a chain of stack frames
/// rendered only for a message: `lineItems[0].quantity`.
#[derive(Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(crate) struct Path<'a> {
    pub(crate) parent: Option<&'a Path<'a>>,
    pub(crate) seg: Seg<'a>,
}

impl Path<'_> {
    pub(crate) fn render(&self) -> String {
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

/// Checks `params` (the fields a script set) for `operation` on `object`.
pub fn validate_params(
    object: &Object,
    operation: &Operation,
    params: &Value,
) -> Result<(), PluginError> {
    let entries = match params {
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
                Some(key.as_str()),
                format!(
                    "{} has no field `{key}`{}",
                    object.name,
                    did_you_mean(&matches)
                ),
            ));
        };
        if value.is_null() {
            continue;
        }
        if !operation.accepts.contains(&key.as_str()) {
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key.as_str()),
                format!(
                    "{} field `{key}` is not accepted by `{}` (it accepts: {})",
                    object.name,
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

fn check(
    object: &Object,
    field: &Field,
    value: &Value,
    path: &Path<'_>,
) -> Result<(), PluginError> {
    let ok = match (field.kind, value) {
        (_, Value::Null) => true,
        (Kind::Text, Value::Text(s)) => {
            if !field.allowed.is_empty() && !field.allowed.contains(&s.as_str()) {
                return Err(invalid(object, path, &expect_one_of(field), value));
            }
            true
        }
        (Kind::Integer, Value::Int(_)) => true,
        (Kind::Amount | Kind::Timestamp, Value::Int(i)) => *i >= 0,
        (Kind::Decimal, Value::Int(_)) => true,
        (Kind::Decimal, Value::Float(f)) => f.is_finite(),
        (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::StringMap, Value::Map(entries)) => {
            for (k, v) in entries {
                if !matches!(v, Value::Text(_) | Value::Null) {
                    let child = Path {
                        parent: Some(path),
                        seg: Seg::Key(k),
                    };
                    return Err(invalid(object, &child, "a string", v));
                }
            }
            true
        }
        (Kind::StringList, Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                let child = Path {
                    parent: Some(path),
                    seg: Seg::Index(i),
                };
                match item {
                    Value::Text(s)
                        if field.allowed.is_empty() || field.allowed.contains(&s.as_str()) => {}
                    Value::Text(_) => {
                        return Err(invalid(object, &child, &expect_one_of(field), item));
                    }
                    other => return Err(invalid(object, &child, "a string", other)),
                }
            }
            true
        }
        (Kind::Object, Value::Map(_)) if field.is_open() => true,
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
                    Value::Map(_) if field.is_open() => {}
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
            let matches: Vec<&str> = close_matches(key, field.children.iter().map(|f| f.name));
            // Some objects take hundreds of fields (`paymentMethod` is every
            // payment method's): list the first few.
            const SHOWN: usize = 20;
            let mut known: Vec<&str> = field.children.iter().map(|f| f.name).take(SHOWN).collect();
            let more = field.children.len().saturating_sub(SHOWN);
            let more_text = format!("... ({more} more)");
            if more > 0 {
                known.push(&more_text);
            }
            let rendered = child_path.render();
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(rendered.as_str()),
                format!(
                    "{} has no field `{rendered}`{} (`{prefix}` takes: {}; send anything else with `.set(\"{rendered}\", value)`)",
                    object.name,
                    did_you_mean(&matches),
                    known.join(", ")
                ),
            ));
        };
        check(object, child, value, &child_path)?;
    }
    for child in field.children.iter().filter(|c| c.required) {
        let present = entries.iter().any(|(k, v)| k == child.name && !v.is_null());
        if !present {
            let rendered = Path {
                parent: Some(path),
                seg: Seg::Key(child.name),
            }
            .render();
            return Err(PluginError::new(
                ErrorCode::MissingField,
                object.name,
                Some(rendered.as_str()),
                format!(
                    "`{}` needs `{rendered}` ({}: {})",
                    path.render(),
                    expectation(child.kind),
                    child.doc
                ),
            ));
        }
    }
    Ok(())
}

fn invalid(object: &Object, path: &Path<'_>, expected: &str, got: &Value) -> PluginError {
    let field = path.render();
    let message = format!(
        "invalid value for `{field}`: expected {expected}, got {}",
        describe(got)
    );
    PluginError::new(ErrorCode::InvalidValue, object.name, Some(&field), message)
}

fn expect_one_of(field: &Field) -> String {
    const SHOWN: usize = 12;
    let allowed: Vec<String> = field
        .allowed
        .iter()
        .take(SHOWN)
        .map(|a| format!("\"{a}\""))
        .collect();
    let more = field.allowed.len().saturating_sub(SHOWN);
    if more > 0 {
        format!("one of {}, ... ({more} more)", allowed.join(", "))
    } else {
        format!("one of {}", allowed.join(", "))
    }
}

/// What a field of `kind` takes, for messages.
pub fn expectation(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Integer => "an integer",
        Kind::Amount => "a non-negative integer",
        Kind::Decimal => "a number",
        Kind::Boolean => "true or false",
        Kind::Timestamp => "a Unix timestamp in seconds",
        Kind::StringMap => "a map of string keys to string values",
        Kind::StringList => "a list of strings",
        Kind::Object => "a map of its fields",
        Kind::ObjectList => "a list of maps",
    }
}

/// Describes a value for a message: `the string "12"`, `the integer -5`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Text(s) => {
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
