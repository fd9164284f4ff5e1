//! The provider-neutral half of a payhost provider plugin, written once:
//! what every plugin made from the template (`cargo xtask new-plugin`) and
//! the `jsonapi` test plugin build on, so that a fix here is a fix to all
//! of them instead of to three copies.
//!
//! - [`schema`]: the description types ([`schema::Provider`] and its
//!   settings, auth, retry policy, objects, operations, fields), mirroring
//!   WIT `provider-info`, with [`schema::Provider::check`] (the host's
//!   load-time rules, natively);
//! - [`tree`]: the parameter tree's two-buffer wire form, its layout checks
//!   and the plain [`tree::Value`];
//! - [`params`]: validating parameters against the description, and the
//!   errors `build-request` answers with;
//! - [`request`]: what `build-request` receives and returns;
//! - [`response`]: outcomes, payloads, and the default `parse-response`
//!   (one failure shape for every failure);
//! - [`webhook`]: the webhook scheme, deliveries, checks and events, and
//!   the helpers `check-webhook` and `parse-webhook` read a delivery with;
//! - `component` (wasm32 only): the WIT bindings and the glue from the WIT
//!   types to these plain ones, for any [`Plugin`].
//!
//! A plugin crate writes only its provider: a [`schema::Provider`] constant,
//! its configuration, how a request is built, and (if its error bodies are
//! not `{"title", "detail"}`) how responses are read, and (if its provider
//! sends webhooks) how a delivery is checked and parsed. It implements
//! [`Plugin`] on a type of its own and exports it with [`export_plugin!`].
//! All of it but the glue is plain Rust, tested natively.

// Only the generated component glue needs `unsafe`; it opts in locally.
#![deny(unsafe_code)]

pub mod params;
pub mod request;
pub mod response;
pub mod schema;
pub mod tree;
pub mod webhook;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod component;

use params::PluginError;
use request::{HttpRequest, Input};
use response::{Outcome, Payload};
use schema::Provider;
use webhook::{WebhookCheck, WebhookEvent, WebhookRequest};

/// One provider plugin: what the six WIT exports do for it. The kit's
/// glue calls these; a plugin's native tests can call them too, the same
/// way the host does.
pub trait Plugin: 'static {
    /// The operator's settings, checked: what `build_request` needs. The
    /// glue keeps one per component instance (see `component`).
    type Config: 'static;

    /// What `info` returns; also what validation and `configure` read, so
    /// what the host is told and what the plugin enforces cannot drift.
    const PROVIDER: &'static Provider;

    /// `configure`: every non-secret setting with a value (defaults
    /// included). The error names the setting and says what is wrong.
    fn configure(settings: &[(String, String)]) -> Result<Self::Config, String>;

    /// `build-request`: the request for `operation` on `object`, or which
    /// input is wrong.
    fn build_request(
        config: &Self::Config,
        object: &str,
        operation: &str,
        input: &Input,
    ) -> Result<HttpRequest, PluginError>;

    /// `parse-response`: the payload of the success or the error flow. The
    /// default passes a 2xx JSON body through and gives every failure the
    /// kit's `{"problem", "status", "retryable"}` shape
    /// ([`response::parse_response`]); override it for another shape.
    fn parse_response(object: &str, operation: &str, outcome: &Outcome) -> Payload {
        let _ = (object, operation);
        response::parse_response(&Self::PROVIDER.retry, outcome)
    }

    /// `check-webhook`: what the host must verify in this delivery (the
    /// signed bytes, the signatures it carries, its timestamp). Runs on
    /// unverified input: accept any bytes, and say in the error what is
    /// missing without quoting a signature. Only called when
    /// `PROVIDER.webhooks` is set; the default refuses, for a provider
    /// with no webhooks.
    fn check_webhook(request: &WebhookRequest) -> Result<WebhookCheck, String> {
        let _ = request;
        Err(webhook::no_webhooks(Self::PROVIDER.name))
    }

    /// `parse-webhook`: the events of a delivery the host has verified, in
    /// order. The default refuses, for a provider with no webhooks.
    fn parse_webhook(request: &WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        let _ = request;
        Err(webhook::no_webhooks(Self::PROVIDER.name))
    }
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as the component's
/// `payhost:plugin/provider@0.4.0`. Call it once, at the plugin crate's
/// root: `payhost_plugin_kit::export_plugin!(MyPlugin);`. It expands to
/// nothing off wasm32, so the crate's native tests need no bindings.
///
/// The bindings are generated in the kit (`component::bindings`, with
/// wit-bindgen's public export macro); this names the kit's generic
/// `Component<$plugin>` through a local alias because that macro takes a
/// plain identifier.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type PayhostPluginComponent = $crate::component::Component<$plugin>;
            $crate::component::bindings::export!(
                PayhostPluginComponent with_types_in $crate::component::bindings
            );
        };
    };
}
