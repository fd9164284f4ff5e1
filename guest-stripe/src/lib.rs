//! The Stripe provider plugin for payhost.
//!
//! The plugin is pure computation: it describes Stripe ([`provider`]: auth
//! and retry policy; [`settings`]; [`schema`]: objects, operations, fields),
//! turns a parameter tree into a form-encoded HTTP request ([`tree`] checks
//! the WIT tree's layout, then [`request`], [`validate`] and [`encode`] work
//! on it in place) and classifies the HTTP outcome into a payload for a flow
//! script ([`response`]). It performs no I/O and never sees credentials: the
//! host sends the request to its configured base URL plus the path returned
//! here, and attaches the secret itself. For webhooks it says what the host
//! must verify in a delivery and reads the verified event ([`webhook`]); the
//! host holds the signing secret and computes the MAC.
//!
//! All of this is plain Rust that also compiles and is tested natively. Only
//! the component glue (`component`, built for `wasm32`) knows about the WIT
//! contract in `wit/plugin.wit`; it converts between the generated types and
//! the native ones defined here.

// Only the generated component glue needs `unsafe`; it opts in locally.
#![deny(unsafe_code)]

pub mod encode;
pub mod error;
pub mod provider;
pub mod pyfloat;
pub mod request;
pub mod response;
pub mod schema;
pub mod settings;
pub mod tree;
pub mod validate;
pub mod value;
pub mod webhook;

#[cfg(target_arch = "wasm32")]
mod component;

pub use error::{ErrorCode, PluginError};
pub use request::{Request, Target, build_request, build_request_with};
pub use response::{FailureKind, HttpResponse, Outcome, Payload, TransportFailure, parse_response};
pub use settings::Config;
pub use value::Value;
