//! The shape of a provider description, as plain Rust constants: settings,
//! auth, retry policy, objects, operations and fields, mirroring the WIT
//! `provider-info` record one to one.
//!
//! The description is data (a plugin's `provider.rs` declares one
//! [`Provider`] constant) and everything else reads it: the kit's glue
//! turns it into the WIT record for `info`, [`crate::params`] validates a
//! script's parameters against it, `configure` fills in defaults from it,
//! and the retry policy decides which failures `parse-response` calls
//! retryable. One source, so
//! what the host is told and what the plugin enforces cannot drift apart.
//! [`Provider::check`] applies the host's load-time rules natively, so a
//! mistake in the description fails `cargo test` before any host sees it.
//!
//! The webhook scheme's types live in [`crate::webhook`], with the rest of
//! the webhook half of the contract.
//!
//! Part of the plugin kit: every plugin shares it, and it knows nothing
//! about any provider.

use crate::webhook::WebhookScheme;

/// Everything `info` returns.
#[derive(Debug)]
pub struct Provider {
    /// `[a-z0-9_]+`; scripts see it as `CALLER_ID`, settings' environment
    /// variables start with it.
    pub name: &'static str,
    pub version: &'static str,
    pub doc: &'static str,
    pub default_base_url: &'static str,
    pub settings: &'static [Setting],
    pub auth: Auth,
    pub retry: RetryPolicy,
    pub objects: &'static [Object],
    /// How the provider signs the webhooks it sends; `None` for none.
    pub webhooks: Option<WebhookScheme>,
    /// Which responses the host classifies without `parse_response`.
    pub responses: ResponseRule,
}

/// Which responses the host may classify itself (WIT `response-rule`);
/// whatever it says, every other outcome goes to `parse_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseRule {
    /// None: every outcome goes to `parse_response`.
    Plugin,
    /// A 2xx response whose body is one JSON object is a success, its
    /// payload the body unchanged. The kit's default `parse_response` does
    /// exactly this; a plugin that reads successes itself declares
    /// [`ResponseRule::Plugin`]. `payhost plugin check` tests the claim.
    JsonObjectIsSuccess,
}

/// A setting the operator gives the plugin (WIT `setting-info`).
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub doc: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub secret: bool,
}

/// How the host authenticates requests; every name is a setting's.
#[derive(Debug)]
pub enum Auth {
    None,
    Basic {
        user: &'static str,
        password: Option<&'static str>,
    },
    Bearer(&'static str),
    Header {
        name: &'static str,
        secret: &'static str,
    },
}

/// Why no usable response arrived (WIT `failure-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Timeout,
    BodyTooLarge,
    Io,
}

/// Which outcomes the host retries (WIT `retry-policy`).
#[derive(Debug)]
pub struct RetryPolicy {
    /// Inclusive ranges of retried statuses.
    pub statuses: &'static [(u16, u16)],
    pub failures: &'static [FailureKind],
    pub should_retry_header: Option<&'static str>,
    pub honour_retry_after: bool,
    pub idempotency_header: Option<&'static str>,
}

impl RetryPolicy {
    /// Whether the host retries a response with this status.
    pub fn retries_status(&self, status: u16) -> bool {
        self.statuses
            .iter()
            .any(|&(first, last)| (first..=last).contains(&status))
    }

    /// Whether the host retries this transport failure.
    pub fn retries_failure(&self, kind: FailureKind) -> bool {
        self.failures.contains(&kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// What values a field takes (WIT `field-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Amount,
    Decimal,
    Boolean,
    Timestamp,
    StringMap,
    StringList,
    Object,
    ObjectList,
}

/// One parameter: top-level (`total`) or nested (`lines[].sku`, `address.city`).
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Allowed values of a text field; empty for any.
    pub allowed: &'static [&'static str],
    /// For nested fields: whether the enclosing object must have it.
    pub required: bool,
    pub doc: &'static str,
}

/// One operation on an object (WIT `operation-info`).
#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    pub method: Method,
    /// Relative path; `{id}`, `{parent}` and the plugin's own placeholders
    /// are filled in by `build-request`.
    pub path: &'static str,
    pub needs_id: bool,
    pub needs_parent: bool,
    pub accepts: &'static [&'static str],
    pub required: &'static [&'static str],
    /// `(field, setting)`: required fields the plugin fills from a setting.
    pub filled_by: &'static [(&'static str, &'static str)],
    pub doc: &'static str,
}

/// One kind of provider object (WIT `object-info`).
#[derive(Debug)]
pub struct Object {
    pub name: &'static str,
    pub doc: &'static str,
    pub operations: &'static [Operation],
    pub fields: &'static [Field],
}

impl Provider {
    pub fn object(&self, name: &str) -> Option<&'static Object> {
        self.objects.iter().find(|o| o.name == name)
    }

    pub fn setting(&self, name: &str) -> Option<&'static Setting> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// The value of every non-secret setting, from what `configure` was given
    /// and the defaults, in declaration order (`None` when a setting has
    /// neither). Refuses names that are not non-secret settings, and a
    /// required setting without a value; the error names the setting.
    pub fn setting_values(
        &self,
        given: &[(String, String)],
    ) -> Result<Vec<(&'static str, Option<String>)>, String> {
        for (name, _) in given {
            match self.setting(name) {
                None => return Err(format!("`{name}` is not a setting of `{}`", self.name)),
                Some(s) if s.secret => {
                    return Err(format!(
                        "`{name}` is a secret setting; the plugin must never receive it"
                    ));
                }
                Some(_) => {}
            }
        }
        let mut values = Vec::new();
        for setting in self.settings.iter().filter(|s| !s.secret) {
            let value = given
                .iter()
                .rev() // the last one given wins
                .find(|(name, _)| name == setting.name)
                .map(|(_, value)| value.clone())
                .or(setting.default.map(str::to_string));
            if value.is_none() && setting.required {
                return Err(format!(
                    "`{}` is required: {} (set it with --set {}=... or {}_{})",
                    setting.name,
                    setting.doc,
                    setting.name,
                    self.name.to_uppercase(),
                    setting.name.to_uppercase()
                ));
            }
            values.push((setting.name, value));
        }
        Ok(values)
    }

    /// The host's load-time rules, plus a few of the contract's promises the
    /// host cannot see: names, the auth scheme's settings, required fields
    /// among accepted ones, every field declared, `{id}`/`{parent}` in the
    /// path exactly when needed. Returns every problem found.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let snake = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            problems.push(format!("provider name `{}` is not [a-z0-9_]+", self.name));
        }
        for s in self.settings {
            if !snake(s.name) {
                problems.push(format!("setting `{}` is not [a-z][a-z0-9_]*", s.name));
            }
            if s.secret && s.default.is_some() {
                problems.push(format!("secret setting `{}` has a default", s.name));
            }
        }
        let secret = |name: &str, must_be_secret: bool| match self.setting(name) {
            None => Some(format!("auth names `{name}`, which is not a setting")),
            Some(s) if must_be_secret && !s.secret => {
                Some(format!("auth needs a secret setting, `{name}` is not one"))
            }
            Some(_) => None,
        };
        match self.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                problems.extend(secret(user, password.is_none()));
                if let Some(password) = password {
                    problems.extend(secret(password, true));
                }
            }
            Auth::Bearer(name) => problems.extend(secret(name, true)),
            Auth::Header { name, secret: s } => {
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    problems.push(format!("auth header `{name}` is not a valid header name"));
                }
                problems.extend(secret(s, true));
            }
        }
        if let Some(scheme) = &self.webhooks {
            match self.setting(scheme.secret) {
                None => problems.push(format!(
                    "the webhook scheme names `{}`, which is not a setting",
                    scheme.secret
                )),
                Some(s) if !s.secret => problems.push(format!(
                    "the webhook scheme needs a secret setting, `{}` is not one",
                    scheme.secret
                )),
                Some(_) => {}
            }
            if scheme.accept_body.len() > 1024 {
                problems.push("the webhook scheme's accept body is longer than 1024 bytes".into());
            }
        }
        for object in self.objects {
            if !snake(object.name) {
                problems.push(format!("object `{}` is not snake case", object.name));
            }
            for field in object.fields {
                // `lines[].sku` belongs to the object list `lines`,
                // `address.city` to the object `address`.
                let Some((head, _)) = field.name.rsplit_once('.') else {
                    continue;
                };
                let (parent, kind) = match head.strip_suffix("[]") {
                    Some(parent) => (parent, Kind::ObjectList),
                    None => (head, Kind::Object),
                };
                if !object
                    .fields
                    .iter()
                    .any(|f| f.name == parent && f.kind == kind)
                {
                    problems.push(format!(
                        "{}.{}: there is no {kind:?} field `{parent}` for it to belong to",
                        object.name, field.name
                    ));
                }
            }
            for op in object.operations {
                let at = format!("{}.{}", object.name, op.name);
                for name in op.accepts {
                    if !object.fields.iter().any(|f| f.name == *name) {
                        problems.push(format!("{at} accepts `{name}`, which is not a field"));
                    }
                }
                for name in op.required {
                    if !op.accepts.contains(name) {
                        problems.push(format!("{at} requires `{name}` but does not accept it"));
                    }
                }
                for (field, setting) in op.filled_by {
                    if !op.required.contains(field) || self.setting(setting).is_none() {
                        problems.push(format!("{at} fills `{field}` from `{setting}`: not a required field and a setting"));
                    }
                }
                for (placeholder, needed, flag) in [
                    ("{id}", op.needs_id, "needs_id"),
                    ("{parent}", op.needs_parent, "needs_parent"),
                ] {
                    if op.path.contains(placeholder) != needed {
                        problems.push(format!(
                            "{at}: the path must have `{placeholder}` exactly when {flag} is true"
                        ));
                    }
                }
                if !op.path.starts_with('/') || op.path.contains('?') {
                    problems.push(format!(
                        "{at}: the path must start with `/` and have no query"
                    ));
                }
            }
        }
        problems
    }
}

/// The value of setting `name` among `values` (as
/// [`Provider::setting_values`] returns them), or the empty string when it
/// has none: what a plugin's `configure` reads each of its settings with.
pub fn setting_value(values: &[(&str, Option<String>)], name: &str) -> String {
    values
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// RFC 9110 `tchar`: what a header name may contain.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Object {
    pub fn operation(&self, name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|o| o.name == name)
    }

    /// The field at schema path `name` (`total`, `lines[].sku`).
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}
