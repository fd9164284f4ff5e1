//! payhost's benchmark suite. `cargo xtask bench` builds everything in
//! release mode and runs the `payhost-bench` binary, which runs every
//! measurement below in one invocation against one local stub server and
//! prints one table (also written to `target/bench/results.json`).
//!
//! | module | measures |
//! |---|---|
//! | [`build_request`] | plugin `build-request` vs the same encoding natively |
//! | [`create_async`] | `create_async` return latency with 1,000 requests in flight |
//! | [`e2e`] | script -> HTTP -> flow, requests/s vs seed-style and bare reqwest |
//! | [`rss`] | peak RSS vs seed-style, and payhost's by requests in flight (1,000 to 30,000) |
//! | [`redis_queue`] | flow jobs/s through Redis with 1, 2, 4 workers vs `redis-benchmark` XADD |
//! | [`webhooks`] | signed deliveries accepted/s by `payhost serve` vs a bare hyper server |
//!
//! Shared parts: [`stub`] (the hyper stub server), [`fixtures`] (the request,
//! scripts and flow), [`rig`] (payhost wired as `run.rs` wires it), [`seed`]
//! (the seed-style baseline), [`stats`] (rounds into median (min-max), ratios
//! per round), [`report`] (the table and the JSON), [`check`] (the
//! regression guard against `bench/baselines/`, one baseline per machine
//! kind), [`child`] (the binary's one-piece modes, for the RSS children and
//! for profilers).

pub mod build_request;
pub mod check;
pub mod child;
pub mod create_async;
pub mod e2e;
pub mod fixtures;
pub mod redis_queue;
pub mod report;
pub mod rig;
pub mod rss;
pub mod seed;
pub mod stats;
pub mod stub;
pub mod webhooks;
