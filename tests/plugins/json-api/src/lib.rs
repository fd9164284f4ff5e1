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
//! `configure` accepts, [`request`] is `build-request` (with [`tree`] and
//! [`params`] for the input), [`response`] is `parse-response`. [`schema`],
//! [`tree`] and [`params`] are provider-neutral. All of it is plain Rust,
//! tested natively (`cargo test -p plugin-json-api`); only `component`
//! (wasm32) knows the WIT types.

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
