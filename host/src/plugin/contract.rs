//! What makes a file a payhost plugin: checked at load, before any call.
//!
//! The bytes must be a WebAssembly component (not a core module), export
//! exactly this host's contract version, and describe itself with names the
//! host can turn into script functions and flow file names.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::{CONTRACT_EXPORT, CONTRACT_PACKAGE, CONTRACT_VERSION, wit};

/// Cheap checks on the bytes before handing them to the compiler, so the
/// common mistakes get a precise message.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("the file is not WebAssembly (it lacks the `\\0asm` header)".into());
    }
    match &bytes[4..8] {
        [0x01, 0x00, 0x00, 0x00] => Err(
            "it is a core WebAssembly module, not a component; build the plugin for \
             wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                .into(),
        ),
        [_, _, 0x01, 0x00] => Ok(()),
        other => Err(format!(
            "unknown WebAssembly binary version/layer {other:02x?}"
        )),
    }
}

/// Checks the component exports this host's contract, and explains what it
/// exports otherwise.
pub(crate) fn check_world(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|name| name == CONTRACT_EXPORT) {
        return Ok(());
    }
    let prefix = format!("{CONTRACT_PACKAGE}/provider@");
    if let Some(other) = exports.iter().find_map(|name| name.strip_prefix(&prefix)) {
        return Err(format!(
            "it implements contract version {other} ({CONTRACT_PACKAGE}/provider@{other}), \
             but this host speaks version {CONTRACT_VERSION}: rebuild the plugin against \
             {CONTRACT_PACKAGE}@{CONTRACT_VERSION} (the host's wit/plugin.wit), or run a payhost \
             that speaks {other}"
        ));
    }
    Err(format!(
        "it does not export {CONTRACT_EXPORT}; it exports [{}], so it was built for another world",
        exports.join(", ")
    ))
}

/// Refuses a self-description the host could not act on safely.
pub(crate) fn validate_info(info: &wit::ProviderInfo) -> Result<(), String> {
    if !valid_name(&info.name) {
        return Err(format!(
            "its provider name `{}` is not [a-z0-9_]+",
            info.name
        ));
    }
    validate_settings(info)?;
    validate_auth(info)?;
    validate_retry(&info.retry)?;
    let url = reqwest::Url::parse(&info.default_base_url).map_err(|e| {
        format!(
            "its info names an unusable default base URL `{}`: {e}",
            info.default_base_url
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "its default base URL `{}` is not http or https",
            info.default_base_url
        ));
    }
    for object in &info.objects {
        validate_object(info, object)?;
    }
    if let Some(scheme) = &info.webhooks {
        secret_setting(info, &scheme.secret, "its webhook scheme")?;
        if scheme.accept_body.len() > 1024 {
            return Err("its webhook scheme's accept body is longer than 1024 bytes".into());
        }
    }
    Ok(())
}

/// Provider, object and operation names: `[a-z0-9_]+`, so that they make
/// script function names and flow file names.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn validate_settings(info: &wit::ProviderInfo) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for setting in &info.settings {
        let name = &setting.name;
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) || !valid_name(name) {
            return Err(format!("its setting name `{name}` is not [a-z][a-z0-9_]*"));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("it declares the setting `{name}` twice"));
        }
        if setting.secret && setting.default.is_some() {
            return Err(format!(
                "its secret setting `{name}` has a default value; a secret cannot have one"
            ));
        }
    }
    Ok(())
}

/// The setting `name`, which `what` refers to, if declared.
fn setting<'i>(
    info: &'i wit::ProviderInfo,
    name: &str,
    what: &str,
) -> Result<&'i wit::SettingInfo, String> {
    info.settings
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("{what} names the setting `{name}`, which it does not declare"))
}

fn secret_setting(info: &wit::ProviderInfo, name: &str, what: &str) -> Result<(), String> {
    if setting(info, name, what)?.secret {
        Ok(())
    } else {
        Err(format!(
            "{what} takes its credential from `{name}`, which is not a secret setting"
        ))
    }
}

fn validate_auth(info: &wit::ProviderInfo) -> Result<(), String> {
    match &info.auth {
        wit::AuthScheme::None => Ok(()),
        wit::AuthScheme::Basic(basic) => {
            let user = setting(info, &basic.user, "its basic auth")?;
            match &basic.password {
                Some(password) => secret_setting(info, password, "its basic auth password"),
                None if user.secret => Ok(()),
                None => Err(format!(
                    "its basic auth has no password and its user `{}` is not a secret setting, \
                     so requests would carry no credential",
                    basic.user
                )),
            }
        }
        wit::AuthScheme::Bearer(secret) => secret_setting(info, secret, "its bearer auth"),
        wit::AuthScheme::Header(header) => {
            // The header the host sets on the plugin's behalf: checked here
            // so a bad one is a load error, not a header silently dropped.
            crate::outbound::check_auth_header(&header.name, &info.name)?;
            secret_setting(info, &header.secret, "its header auth")
        }
    }
}

fn validate_retry(retry: &wit::RetryPolicy) -> Result<(), String> {
    for (what, name) in [
        ("idempotency", &retry.idempotency_header),
        ("should-retry", &retry.should_retry_header),
    ] {
        if let Some(name) = name
            && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(format!(
                "its {what} header `{name}` is not a valid header name"
            ));
        }
    }
    for range in &retry.statuses {
        if !(100..=599).contains(&range.first)
            || !(100..=599).contains(&range.last)
            || range.first > range.last
        {
            return Err(format!(
                "its retry policy names the status range {}-{}, which is not within 100-599",
                range.first, range.last
            ));
        }
    }
    Ok(())
}

fn validate_object(info: &wit::ProviderInfo, object: &wit::ObjectInfo) -> Result<(), String> {
    if !valid_name(&object.name) {
        return Err(format!(
            "its object name `{}` is not [a-z0-9_]+",
            object.name
        ));
    }
    for op in &object.operations {
        let at = format!("operation `{}` of `{}`", op.name, object.name);
        if !valid_name(&op.name) {
            return Err(format!("{at} is not named [a-z0-9_]+"));
        }
        if op.path.contains("{parent}") != op.needs_parent {
            return Err(format!(
                "{at}: its path `{}` {} `{{parent}}` but it {} a parent id",
                op.path,
                if op.needs_parent { "lacks" } else { "has" },
                if op.needs_parent {
                    "needs"
                } else {
                    "does not take"
                },
            ));
        }
        for field in &op.required {
            if !op.accepts.contains(field) {
                return Err(format!(
                    "{at} requires the field `{field}` but does not accept it"
                ));
            }
        }
        for (field, name) in &op.filled_by {
            if !op.required.contains(field) {
                return Err(format!(
                    "{at} fills in `{field}` from a setting, but `{field}` is not one of its required fields"
                ));
            }
            if setting(info, name, &at)?.secret {
                return Err(format!(
                    "{at} fills in `{field}` from the secret setting `{name}`; secrets never reach a plugin"
                ));
            }
        }
    }
    Ok(())
}
