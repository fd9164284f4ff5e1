//! The Adyen provider plugin for payhost: Adyen's Checkout API v71.
//!
//! The plugin is pure computation. It describes Adyen's objects
//! ([`schema`], generated from Adyen's own OpenAPI definition), its settings,
//! auth and retry policy ([`settings`]); turns a parameter tree (the kit's [`tree`])
//! into a JSON request ([`validate`], [`json`], [`request`]); classifies
//! the HTTP outcome into a payload for a flow ([`response`]); and says what
//! the host must verify in a webhook delivery and which events it carries
//! ([`webhook`]). It performs no I/O and never sees the API key or the
//! webhook's HMAC key: the host sends each request to its configured base
//! URL plus the path returned here, with `X-API-Key`, and computes every
//! webhook MAC itself.
//!
//! All of this is plain Rust, compiled and tested natively. Only the
//! component glue (`component`, built for `wasm32`) knows the WIT contract
//! (wit/plugin.wit, `payhost:plugin@0.4.0`); it converts between the
//! generated types and the native ones defined here.

// Only the generated component glue needs `unsafe`; it opts in locally.
#![deny(unsafe_code)]

pub mod error;
pub mod json;
pub mod request;
pub mod response;
pub mod schema;
pub mod settings;
pub mod validate;
pub mod webhook;

// The parameter tree (wire form, layout checks, `Value`) is the plugin kit's;
// re-exported under its old path so the modules here name it as before.
pub use payhost_plugin_kit::tree;

#[cfg(target_arch = "wasm32")]
mod component;

pub use error::{ErrorCode, PluginError};
pub use request::{Input, Request, build_request};
pub use response::{HttpResponse, Outcome, Payload, TransportFailure, parse_response};
pub use settings::Settings;
pub use tree::Value;
