//! `build-request`: from what a script asked for to the HTTP request the host
//! sends, or the reason it cannot be sent.
//!
//! The steps: find the object and operation in [`PROVIDER`], decode both
//! trees (checking their layout), validate the parameters, fill `{id}` and
//! `{parent}` into the path (each checked for characters a path segment can
//! carry), and encode the fields as a JSON body (a GET carries none). Auth
//! and the idempotency key are not added here: the host owns them.

use payhost_plugin_kit::params::{self, ErrorCode, PluginError};
use payhost_plugin_kit::request::{self, HttpRequest, Input};
use payhost_plugin_kit::schema::Method;
use payhost_plugin_kit::tree::{self, Tree};

use crate::provider::{Config, PROVIDER};

pub fn build_request(
    config: &Config,
    object: &str,
    operation: &str,
    input: &Input,
) -> Result<HttpRequest, PluginError> {
    let error = |code, message| PluginError::new(code, object, None, message);
    let object = PROVIDER.object(object).ok_or_else(|| {
        error(
            ErrorCode::UnknownObject,
            format!("no object `{object}` in the {} plugin", PROVIDER.name),
        )
    })?;
    let operation = object.operation(operation).ok_or_else(|| {
        error(
            ErrorCode::UnknownOperation,
            format!("`{}` has no operation `{operation}`", object.name),
        )
    })?;
    let decode = |tree: &Tree, which: &str| {
        tree::decode(tree).map_err(|e| error(ErrorCode::MalformedTree, format!("{which}: {e}")))
    };
    let params = decode(&input.params, "params")?;
    let extra = decode(&input.extra, "extra")?;

    // No field is filled from a setting here; pass
    // `PROVIDER.setting_values(...)` if an operation's `filled_by` needs one.
    let mut fields = params::validate(object, operation, &params, &[])?;
    params::add_extra(object, &mut fields, &extra)?;

    let path = request::fill_ids(object, operation, operation.path, input)?;

    let headers = vec![("Api-Version".to_string(), config.api_version.clone())];
    let (content_type, body) = if operation.method == Method::Get {
        if let Some(key) = fields.keys().next() {
            return Err(PluginError::new(
                ErrorCode::UnknownField,
                object.name,
                Some(key),
                format!("`{}` sends no parameters; remove `{key}`", operation.name),
            ));
        }
        (None, Vec::new())
    } else {
        let body = serde_json::Value::Object(fields).to_string().into_bytes();
        (Some("application/json".to_string()), body)
    };
    Ok(HttpRequest {
        method: operation.method,
        path,
        query: String::new(),
        headers,
        content_type,
        body,
    })
}
