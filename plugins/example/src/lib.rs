//! The `example` provider plugin for payhost: a WebAssembly component
//! implementing `payhost:plugin/provider@0.2.0` (wit/plugin.wit).
//!
//! Made with `cargo xtask new-plugin`; docs/writing-a-plugin.md explains
//! every part. What to change for a real provider:
//!
//! - [`provider`]: its name, settings, auth scheme, retry policy, objects and
//!   fields (what `info` says), and what `configure` checks;
//! - [`request`]: how a validated set of fields becomes a request (path,
//!   headers, body encoding);
//! - [`response`]: how the provider's answers become flow payloads, if its
//!   error bodies are not `{"title", "detail"}`; document the shape in
//!   README.md.
//!
//! [`schema`], [`tree`], [`params`] and `component` are provider-neutral:
//! the description types, the checked parameter tree, validation against
//! the description, and the WIT glue. All but `component` is plain Rust,
//! tested natively (`cargo test -p example`).

// Only the generated component glue needs `unsafe`; it opts in locally.
#![deny(unsafe_code)]

pub mod params;
pub mod provider;
pub mod request;
pub mod response;
pub mod schema;
pub mod tree;

#[cfg(target_arch = "wasm32")]
mod component;
