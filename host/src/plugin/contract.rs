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
             but this host speaks version {CONTRACT_VERSION}"
        ));
    }
    Err(format!(
        "it does not export {CONTRACT_EXPORT}; it exports [{}], so it was built for another world",
        exports.join(", ")
    ))
}

/// Refuses a self-description the host could not act on safely.
pub(crate) fn validate_info(info: &wit::ProviderInfo) -> Result<(), String> {
    // Header names the host will use on the plugin's behalf: checked here so
    // a bad one is a load error, not a header silently dropped later.
    if let wit::AuthScheme::Header(name) = &info.auth {
        crate::outbound::check_auth_header(name, &info.name)?;
    }
    for (what, name) in [
        ("idempotency", &info.idempotency_header),
        ("should-retry", &info.should_retry_header),
    ] {
        if let Some(name) = name
            && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(format!(
                "its {what} header `{name}` is not a valid header name"
            ));
        }
    }
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
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !valid_name(&info.name) {
        return Err(format!(
            "its provider name `{}` is not [a-z0-9_]+",
            info.name
        ));
    }
    for object in &info.objects {
        if !valid_name(&object.name) {
            return Err(format!(
                "its object name `{}` is not [a-z0-9_]+",
                object.name
            ));
        }
        for op in &object.operations {
            if !valid_name(&op.name) {
                return Err(format!(
                    "operation `{}` of `{}` is not named [a-z0-9_]+",
                    op.name, object.name
                ));
            }
        }
    }
    Ok(())
}
