//! The `{{provider}}` provider plugin for payhost: a WebAssembly component
//! implementing `payhost:plugin/provider@0.4.0` (wit/plugin.wit).
//!
//! Made with `cargo xtask new-plugin`; docs/writing-a-plugin.md explains
//! every part. What to change for a real provider:
//!
//! - [`provider`]: its name, settings, auth scheme, retry policy, objects and
//!   fields (what `info` says), and what `configure` checks;
//! - [`request`]: how a validated set of fields becomes a request (path,
//!   headers, body encoding);
//! - `parse_response` below: how the provider's answers become flow
//!   payloads, if its error bodies are not `{"title", "detail"}` (the kit's
//!   default); document the shape in README.md;
//! - if the provider sends signed webhooks: a `WebhookScheme` in
//!   [`provider`], and `check_webhook` and `parse_webhook` below.
//!
//! Everything provider-neutral (the description types, the checked
//! parameter tree, validation against the description, the payloads and the
//! WIT glue) is `payhost_plugin_kit`'s. This crate is plain Rust, tested
//! natively (`cargo test -p {{name}}`).

#![forbid(unsafe_code)]

pub mod provider;
pub mod request;

use payhost_plugin_kit::Plugin;
use payhost_plugin_kit::params::PluginError;
use payhost_plugin_kit::request::{HttpRequest, Input};
use payhost_plugin_kit::schema::Provider;

/// The `{{provider}}` plugin, as the kit's glue calls it.
pub struct ThisPlugin;

impl Plugin for ThisPlugin {
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

    // `parse_response` is the kit's default: a 2xx JSON body passes through,
    // every failure is `{"problem", "status", "retryable"}` (README.md).
    // Define it here to read the provider's own error bodies instead.

    // `check_webhook` and `parse_webhook` are the kit's defaults, which
    // refuse: the provider declares no webhooks (`provider::PROVIDER`).
}

payhost_plugin_kit::export_plugin!(ThisPlugin);
