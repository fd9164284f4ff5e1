//! Checking a script's parameters against the object's schema, and the
//! errors `build-request` answers with.
//!
//! [`validate`] walks the decoded tree once: every key must be a field of
//! the object (and, at the top, one the operation accepts), every value must
//! be of its field's kind and among its allowed values, required fields must
//! be there (top-level ones per operation, nested ones per enclosing
//! object). The host already refuses a call without a required top-level
//! field, but the plugin checks again: defence in depth, and `payhost plugin
//! check` calls the plugin directly. Every error names the field by its path
//! (`lines[0].sku`) and says what was expected, for the script's author.
//! What passes comes out as JSON, ready for a request body.
//!
//! Part of the plugin kit: every plugin shares it, and it knows nothing
//! about any provider.

use serde_json::{Map, Value as Json};

use crate::schema::{Field, Kind, Object, Operation};
use crate::tree::Value;

/// Why a request could not be built (WIT `plugin-error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    UnknownObject,
    UnknownOperation,
    UnknownField,
    InvalidValue,
    MissingField,
    MissingId,
    InvalidId,
    MalformedTree,
}

/// What `build-request` answers instead of a request (WIT `plugin-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub code: ErrorCode,
    pub object: String,
    /// The field at fault, as a path (`lines[0].sku`), when there is one.
    pub field: Option<String>,
    /// A sentence for the script's author.
    pub message: String,
}

impl PluginError {
    pub fn new(code: ErrorCode, object: &str, field: Option<&str>, message: String) -> Self {
        PluginError {
            code,
            object: object.to_string(),
            field: field.map(str::to_string),
            message,
        }
    }
}

/// Checks `params` (the decoded tree, a map at the root) for `operation` on
/// `object`, fills the required fields the operation fills from a setting
/// (`settings` as `Provider::setting_values` returns them), and returns the
/// fields as a JSON object in the order the script set them.
pub fn validate(
    object: &Object,
    operation: &Operation,
    params: &Value,
    settings: &[(&str, Option<String>)],
) -> Result<Map<String, Json>, PluginError> {
    let Value::Map(entries) = params else {
        return Err(PluginError::new(
            ErrorCode::MalformedTree,
            object.name,
            None,
            format!("the parameters must be a map, not {}", describe(params)),
        ));
    };
    let check = Check { object };
    for (name, _) in entries {
        if check.object.field(name).is_some() && !operation.accepts.contains(&name.as_str()) {
            return Err(check.error(
                ErrorCode::UnknownField,
                name,
                format!(
                    "`{}` does not accept `{name}`; it accepts {}",
                    operation.name,
                    list_or_none(operation.accepts.iter().copied())
                ),
            ));
        }
    }
    let mut fields = check.fields("", "", entries)?;
    for name in operation.required {
        if fields.contains_key(*name) {
            continue;
        }
        let filled = operation
            .filled_by
            .iter()
            .find(|(field, _)| field == name)
            .and_then(|(_, setting)| settings.iter().find(|(s, _)| s == setting))
            .and_then(|(_, value)| value.clone());
        match filled {
            Some(value) => {
                fields.insert(name.to_string(), Json::String(value));
            }
            None => {
                return Err(check.error(
                    ErrorCode::MissingField,
                    name,
                    format!(
                        "`{}` needs `{name}`: set it with .{name}(...)",
                        operation.name
                    ),
                ));
            }
        }
    }
    Ok(fields)
}

/// Adds the parameters set with `.set(...)` (the escape hatch: no schema
/// checks) after the validated ones. A key the script also set through its
/// setter is refused rather than silently overwritten.
pub fn add_extra(
    object: &Object,
    fields: &mut Map<String, Json>,
    extra: &Value,
) -> Result<(), PluginError> {
    let error =
        |code, field: Option<&str>, message| PluginError::new(code, object.name, field, message);
    let Value::Map(entries) = extra else {
        return Err(error(
            ErrorCode::MalformedTree,
            None,
            format!(
                "the .set() parameters must be a map, not {}",
                describe(extra)
            ),
        ));
    };
    for (key, value) in entries {
        if value == &Value::Null {
            continue;
        }
        if fields.contains_key(key) {
            return Err(error(
                ErrorCode::InvalidValue,
                Some(key),
                format!("`{key}` is set both by its setter and with .set(); set it once"),
            ));
        }
        let json = to_json(value).ok_or_else(|| {
            error(
                ErrorCode::InvalidValue,
                Some(key),
                format!("`{key}` holds a number JSON cannot carry (NaN or infinite)"),
            )
        })?;
        fields.insert(key.clone(), json);
    }
    Ok(())
}

/// Checks an id (`field` none) or a parent id (`field` `parent`) that goes
/// into the path: present, 1 to 255 characters of `[A-Za-z0-9_-]`, so it
/// can be neither a `..` segment nor smuggle a `/`, `?` or `%`.
pub fn path_id<'a>(
    object: &Object,
    id: Option<&'a str>,
    field: Option<&str>,
) -> Result<&'a str, PluginError> {
    let what = match field {
        Some(field) => format!("the {field} id (set it with .{field}(...))"),
        None => "the object's id (set it with .id(...))".to_string(),
    };
    let Some(id) = id else {
        return Err(PluginError::new(
            ErrorCode::MissingId,
            object.name,
            field,
            format!("this operation needs {what}"),
        ));
    };
    let valid = (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(PluginError::new(
            ErrorCode::InvalidId,
            object.name,
            field,
            format!(
                "{what} must be 1 to 255 letters, digits, `_` or `-`, not {:?}",
                shorten(id)
            ),
        ));
    }
    Ok(id)
}

/// The walk's context: the object whose fields are checked.
struct Check<'o> {
    object: &'o Object,
}

impl Check<'_> {
    fn error(&self, code: ErrorCode, at: &str, message: String) -> PluginError {
        PluginError::new(code, self.object.name, Some(at), message)
    }

    /// The entries of one map: the top level (`schema` and `at` empty) or a
    /// nested object (`schema` `lines[].`, `at` `lines[0]`).
    fn fields(
        &self,
        schema: &str,
        at: &str,
        entries: &[(String, Value)],
    ) -> Result<Map<String, Json>, PluginError> {
        let path = |key: &str| {
            if at.is_empty() {
                key.to_string()
            } else {
                format!("{at}.{key}")
            }
        };
        // The direct children of this map in the schema: `lines[].sku` for
        // `lines[].`, but not `lines[].dims.width`.
        let children = || {
            self.object.fields.iter().filter(move |f| {
                f.name
                    .strip_prefix(schema)
                    .is_some_and(|rest| !rest.contains(['.', '[']))
            })
        };
        let mut out = Map::new();
        for (key, value) in entries {
            let Some(field) = self.object.field(&format!("{schema}{key}")) else {
                let known = list_or_none(children().map(|f| &f.name[schema.len()..]));
                let owner = if at.is_empty() {
                    format!("`{}`", self.object.name)
                } else {
                    format!("`{at}`")
                };
                return Err(self.error(
                    ErrorCode::UnknownField,
                    &path(key),
                    format!("{owner} has no field `{key}`; it has {known}"),
                ));
            };
            if out.contains_key(key) {
                return Err(self.error(
                    ErrorCode::InvalidValue,
                    &path(key),
                    format!("`{}` is given twice", path(key)),
                ));
            }
            if *value != Value::Null {
                out.insert(key.clone(), self.value(field, &path(key), value)?);
            }
        }
        if !schema.is_empty() {
            for field in children().filter(|f| f.required) {
                let key = &field.name[schema.len()..];
                if !out.contains_key(key) {
                    return Err(self.error(
                        ErrorCode::MissingField,
                        &path(key),
                        format!("`{at}` needs `{key}` ({})", field.doc),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// One value of `field`, found at path `at`.
    fn value(&self, field: &Field, at: &str, value: &Value) -> Result<Json, PluginError> {
        let wrong = |value: &Value, at: &str| {
            self.error(
                ErrorCode::InvalidValue,
                at,
                format!(
                    "`{at}` must be {}, not {}",
                    expected(field.kind),
                    describe(value)
                ),
            )
        };
        Ok(match (field.kind, value) {
            (Kind::Text, Value::Text(s)) => {
                if !field.allowed.is_empty() && !field.allowed.contains(&s.as_str()) {
                    return Err(self.error(
                        ErrorCode::InvalidValue,
                        at,
                        format!(
                            "`{at}` must be one of {}, not {:?}",
                            list_or_none(field.allowed.iter().map(|a| format!("{a:?}"))),
                            shorten(s)
                        ),
                    ));
                }
                Json::from(s.as_str())
            }
            (Kind::Integer, Value::Int(i)) => Json::from(*i),
            (Kind::Amount, Value::Int(i)) if *i >= 0 => Json::from(*i),
            (Kind::Decimal, Value::Text(s)) if is_decimal(s) => Json::from(s.as_str()),
            (Kind::Decimal, Value::Int(i)) => Json::from(*i),
            (Kind::Decimal, Value::Float(f)) if f.is_finite() => Json::from(*f),
            (Kind::Boolean, Value::Bool(b)) => Json::from(*b),
            (Kind::Timestamp, Value::Int(i)) => Json::from(*i),
            (Kind::Timestamp, Value::Text(s)) if s == "now" => Json::from("now"),
            (Kind::StringMap, Value::Map(entries)) => {
                let mut out = Map::new();
                for (key, item) in entries {
                    let at = format!("{at}.{key}");
                    match item {
                        _ if out.contains_key(key) => {
                            return Err(self.error(
                                ErrorCode::InvalidValue,
                                &at,
                                format!("`{at}` is given twice"),
                            ));
                        }
                        Value::Null => {}
                        Value::Text(s) => {
                            out.insert(key.clone(), Json::from(s.as_str()));
                        }
                        other => return Err(wrong(other, &at)),
                    }
                }
                Json::Object(out)
            }
            (Kind::StringList, Value::List(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Text(s) => out.push(Json::from(s.as_str())),
                        other => return Err(wrong(other, &format!("{at}[{i}]"))),
                    }
                }
                Json::Array(out)
            }
            (Kind::Object, Value::Map(entries)) => {
                Json::Object(self.fields(&format!("{}.", field.name), at, entries)?)
            }
            (Kind::ObjectList, Value::List(items)) => {
                let schema = format!("{}[].", field.name);
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    match item {
                        Value::Map(entries) => {
                            out.push(Json::Object(self.fields(&schema, &at, entries)?))
                        }
                        other => return Err(wrong(other, &at)),
                    }
                }
                Json::Array(out)
            }
            (_, other) => return Err(wrong(other, at)),
        })
    }
}

/// What a field of `kind` takes, for error messages.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Integer => "a whole number",
        Kind::Amount => "a whole number, 0 or more",
        Kind::Decimal => "a decimal number (a number, or text like \"12.50\")",
        Kind::Boolean => "true or false",
        Kind::Timestamp => "a Unix timestamp in seconds, or \"now\"",
        Kind::StringMap => "a map of text values",
        Kind::StringList => "a list of text values",
        Kind::Object => "a map of its fields",
        Kind::ObjectList => "a list of maps",
    }
}

/// A value as an error message shows it.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Int(i) => format!("the whole number {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Text(s) => format!("the text {:?}", shorten(s)),
        Value::List(_) => "a list".to_string(),
        Value::Map(_) => "a map".to_string(),
    }
}

/// At most 40 characters of `s`, so that an error stays one readable line.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

fn list_or_none<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| format!("{i}")).collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// `-?digits(.digits)?`: a decimal a JSON API can take as a string.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

/// A tree as JSON; `None` if it holds a NaN or an infinity. Nulls inside
/// containers stay (the script put them there through `.set()`).
pub fn to_json(value: &Value) -> Option<Json> {
    Some(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::from(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::Number(serde_json::Number::from_f64(*f)?),
        Value::Text(s) => Json::from(s.as_str()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| Some((k.clone(), to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}
