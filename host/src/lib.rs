//! payhost: run Rhai payment-flow scripts against sandboxed WebAssembly
//! provider plugins.
//!
//! One request's path through the modules, in order:
//!
//! 1. `script_api`: `new_payment_intent().amount(2000).create_async(...)`
//!    asks the `plugin` for the request and hands it on;
//! 2. `outbound`: the one policy on what leaves the host: where a request
//!    may go, and the credentials (from `settings`) it carries;
//! 3. `http`: sends it (pooling, auth, retries per `retry`, caps);
//! 4. `queue`: carries the outcome to a worker (in process, or via Redis to
//!    a `worker` anywhere);
//! 5. `flow`: classifies it with the plugin and runs the flow script.
//!
//! [`run`] wires these together for `payhost run`; [`ledger`] knows when a
//! run is done. Nothing here is global: every handle is passed explicitly.

#![warn(unreachable_pub)]

pub mod check;
pub mod console;
pub mod fleet;
pub mod flow;
pub mod host;
pub mod http;
pub mod inspect;
pub mod ledger;
pub mod metrics;
pub mod outbound;
pub mod plugin;
pub mod projection;
pub mod queue;
pub mod retry;
pub mod run;
pub mod schema;
pub mod script_api;
pub mod script_value;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod upgrade;
pub mod webhook;
pub mod worker;

/// A v4 UUID from the thread's CSPRNG (`rand`): `Uuid::new_v4` asks the
/// kernel for every one (a getrandom syscall), which idempotency keys and job
/// ids, one per request or job, need not pay.
pub(crate) fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}
