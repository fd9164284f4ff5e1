//! `build-request`: from what a script asked for to the HTTP request the host
//! sends, or the reason it cannot be sent.
//!
//! The steps: find the object and operation in [`PROVIDER`], decode both
//! trees (checking their layout), validate the parameters, fill the path
//! template (`{tenant}` from the configuration, `{id}` and `{parent}` from the
//! input, each checked for characters a path segment can carry), and encode
//! the fields as a JSON body. A GET carries no parameters. Auth and the
//! idempotency key are not added here: the host owns them.

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
    let error = |code, field: Option<&str>, message| PluginError::new(code, object, field, message);
    let names = |items: &mut dyn Iterator<Item = &str>| items.collect::<Vec<_>>().join(", ");
    let object = PROVIDER.object(object).ok_or_else(|| {
        error(
            ErrorCode::UnknownObject,
            None,
            format!(
                "no object `{object}`; this plugin has {}",
                names(&mut PROVIDER.objects.iter().map(|o| o.name))
            ),
        )
    })?;
    let operation = object.operation(operation).ok_or_else(|| {
        error(
            ErrorCode::UnknownOperation,
            None,
            format!(
                "`{}` has no operation `{operation}`; it has {}",
                object.name,
                names(&mut object.operations.iter().map(|o| o.name))
            ),
        )
    })?;
    let decode = |tree: &Tree, which: &str| {
        tree::decode(tree)
            .map_err(|e| error(ErrorCode::MalformedTree, None, format!("{which}: {e}")))
    };
    let params = decode(&input.params, "params")?;
    let extra = decode(&input.extra, "extra")?;

    // Only `tenant` and `region` exist, and `configure` checked them; no
    // field is filled from a setting, so no setting values are passed on.
    let mut fields = params::validate(object, operation, &params, &[])?;
    params::add_extra(object, &mut fields, &extra)?;

    let tenant_path = operation.path.replace("{tenant}", &config.tenant);
    let path = request::fill_ids(object, operation, &tenant_path, input)?;

    let headers = vec![("X-Region".to_string(), config.region.clone())];
    if operation.method == Method::Get {
        if let Some(key) = fields.keys().next() {
            return Err(error(
                ErrorCode::UnknownField,
                Some(key),
                format!("`{}` sends no parameters; remove `{key}`", operation.name),
            ));
        }
        return Ok(HttpRequest {
            method: operation.method,
            path,
            query: String::new(),
            headers,
            content_type: None,
            body: Vec::new(),
        });
    }
    Ok(HttpRequest {
        method: operation.method,
        path,
        query: String::new(),
        headers,
        content_type: Some("application/json".to_string()),
        // `{}` when no field is set: a POST here always has a JSON body.
        body: serde_json::Value::Object(fields).to_string().into_bytes(),
    })
}
