//! Test plugin `jsonapi` (tests/plugins/json-api): a provider that differs
//! from Stripe in every way the contract can say, so that host tests can
//! show the host knows no provider. It is also the model for the plugin
//! template (`cargo xtask new-plugin`) and the worked example of
//! docs/writing-a-plugin.md, so it is kept small and plain.
//!
//! - JSON bodies (`application/json`), not form encoding;
//! - header auth, `X-Api-Token` from the secret setting `token`;
//! - a required non-secret setting `tenant` that goes into every path, and an
//!   optional `region` (default `eu`) sent as `X-Region`;
//! - retries on 429 and 503 only (not 500) and on timeouts only, `Retry-After`
//!   honoured, idempotency header `X-Request-Id`, no should-retry header;
//! - objects `order` (create, retrieve) and `shipment` (create, under an
//!   order: a parent id);
//! - its own failure payload, `{"problem": {...}, "status", "retryable"}`
//!   (README.md).
//!
//! The modules follow the calls: [`provider`] is what `info` says and what
//! `configure` accepts, [`request`] is `build-request`; `parse-response` is
//! the kit's default, whose failure shape is this plugin's. Everything
//! provider-neutral (the description types, the parameter tree, validation,
//! payloads and the WIT glue) is `payhost_plugin_kit`'s. All of it is plain
//! Rust, tested natively (`cargo test -p plugin-json-api`); only the kit's
//! glue (wasm32) knows the WIT types.

#![forbid(unsafe_code)]

pub mod provider;
pub mod request;

use payhost_plugin_kit::Plugin;
use payhost_plugin_kit::params::PluginError;
use payhost_plugin_kit::request::{HttpRequest, Input};
use payhost_plugin_kit::schema::Provider;

/// The `jsonapi` plugin, as the kit's glue calls it.
pub struct JsonApi;

impl Plugin for JsonApi {
    type Config = provider::Config;
    const PROVIDER: &'static Provider = &provider::PROVIDER;

    fn configure(settings: &[(String, String)]) -> Result<provider::Config, String> {
        provider::configure(settings)
    }

    fn build_request(
        config: &provider::Config,
        object: &str,
        operation: &str,
        input: &Input,
    ) -> Result<HttpRequest, PluginError> {
        request::build_request(config, object, operation, input)
    }
}

payhost_plugin_kit::export_plugin!(JsonApi);
