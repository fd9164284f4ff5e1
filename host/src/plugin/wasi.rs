//! The WASI a plugin gets: enough for Rust's std to start, panic and log, and
//! nothing that can block or observe the world outside the call.
//!
//! A plugin is pure computation (DESIGN.md, "Sandbox"). The Stripe plugin,
//! built for `wasm32-wasip2` with LTO, imports only what std links in to
//! start and to report a panic: `wasi:cli/{environment, exit, stdin, stdout,
//! stderr, terminal-*}`, `wasi:io/{error, streams, poll}` and
//! `wasi:random/insecure-seed` (HashMap seeds). A plugin that touches files,
//! sockets or clocks imports more, and still has to load (a library may link
//! `std::fs` on a path the plugin never takes), so every WASI 0.2 interface
//! is linked, and each one is made inert or made to trap:
//!
//! | interface                        | what the plugin gets                     |
//! |----------------------------------|------------------------------------------|
//! | `cli/environment`                | no variables, no arguments, no cwd (`/`) |
//! | `cli/stdin`, `cli/stdout`        | a closed stream, a sink                  |
//! | `cli/stderr`                     | the host log ([`super::stderr`])         |
//! | `cli/exit`                       | traps: the call fails, naming the exit   |
//! | `random/*`                       | real random bytes, at most 64 KiB a call |
//! | `filesystem/*`                   | no preopened directory: nothing to open  |
//! | `sockets/*`                      | TCP, UDP and name lookup refused         |
//! | `clocks/wall-clock`              | frozen at the Unix epoch                 |
//! | `clocks/monotonic-clock` `now`   | frozen at 0                              |
//! | `clocks/monotonic-clock` timers  | trap ([`BlockingRefused`])               |
//! | `io/poll` `poll`, `pollable.block` | trap ([`BlockingRefused`])             |
//!
//! Why trap instead of letting a call wait until its deadline: the deadline is
//! epoch interruption, which only fires while wasm code runs. A host call that
//! waits (a sleep is `subscribe-duration` + `pollable.block`) never returns to
//! wasm, so before this module a plugin that slept for a minute held the
//! script or flow thread for a minute. Every WASI call that can wait goes
//! through `poll`, `pollable.block` or a timer subscription (the `blocking-*`
//! stream methods only wait on streams, and the only streams a plugin can
//! reach are stdin, stdout and stderr above, which never wait), so refusing
//! those three refuses all waiting. Hence nothing a plugin calls can block,
//! and the epoch deadline, a wall-clock deadline, bounds the call's running
//! time.
//!
//! The clocks are frozen rather than trapping so that code which reads the
//! time incidentally (a timestamp in a log line, `Instant` around a loop)
//! still runs; it simply learns nothing, and cannot time the host.

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};

use super::SandboxState;
use super::stderr::PluginStderr;

/// The WASI 0.2 version wasmtime-wasi 48 registers its interfaces under.
/// Plugins importing any 0.2.x version are linked against these (the linker
/// matches semver-compatible versions), so the traps below cover them all.
const WASI_VERSION: &str = "0.2.12";

/// Largest `get-random-bytes` request; wasmtime's default (64 MiB) lets a
/// plugin make the host allocate that much per call.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// A plugin called a WASI function that would wait. Returned as the host
/// function's error, so it ends the call as a trap that [`super`] recognises.
#[derive(Debug, Clone, thiserror::Error)]
#[error("it called `{call}`, which waits ({why})")]
pub struct BlockingRefused {
    /// The WASI function, e.g. `wasi:io/poll.poll`.
    pub call: &'static str,
    /// What a plugin would use it for, for the reader of the error.
    pub why: &'static str,
}

/// Adds WASI 0.2 to `linker`, then replaces every function that can wait with
/// one that traps with [`BlockingRefused`].
pub(crate) fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    let refusals: [(&str, &str, &'static str, &'static str); 4] = [
        (
            "wasi:io/poll",
            "poll",
            "wasi:io/poll.poll",
            "a wait for I/O or a timer",
        ),
        (
            "wasi:io/poll",
            "[method]pollable.block",
            "wasi:io/poll.[method]pollable.block",
            "a sleep or a wait for I/O",
        ),
        (
            "wasi:clocks/monotonic-clock",
            "subscribe-duration",
            "wasi:clocks/monotonic-clock.subscribe-duration",
            "a sleep or a timer",
        ),
        (
            "wasi:clocks/monotonic-clock",
            "subscribe-instant",
            "wasi:clocks/monotonic-clock.subscribe-instant",
            "a sleep or a timer",
        ),
    ];
    for (interface, function, call, why) in refusals {
        let instance = format!("{interface}@{WASI_VERSION}");
        let trap = move |_: wasmtime::StoreContextMut<'_, SandboxState>,
                         _: wasmtime::component::types::ComponentFunc,
                         _: &[wasmtime::component::Val],
                         _: &mut [wasmtime::component::Val]| {
            Err(wasmtime::Error::new(BlockingRefused { call, why }))
        };
        // First without shadowing: defining the function must fail because
        // wasmtime-wasi defined it. If it succeeds, wasmtime-wasi registers
        // another version and the real, blocking function would stay in
        // place for plugins, so refuse to link at all.
        linker.allow_shadowing(false);
        if linker.instance(&instance)?.func_new(function, trap).is_ok() {
            wasmtime::bail!(
                "wasmtime-wasi does not define `{function}` in {instance}; \
                 update WASI_VERSION in host/src/plugin/wasi.rs"
            );
        }
        // Then shadow it: the instance is reopened and only this function
        // is replaced.
        linker.allow_shadowing(true);
        linker.instance(&instance)?.func_new(function, trap)?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The WASI context of one store: see the table in the module docs. The
/// builder's defaults already give no environment, no arguments, no
/// preopened directories, a closed stdin and a sink for stdout.
pub(crate) fn context(plugin: std::sync::Arc<str>) -> WasiCtx {
    let mut wasi = WasiCtx::builder();
    wasi.stderr(PluginStderr::new(plugin))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(MAX_RANDOM_BYTES)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock);
    wasi.build()
}

/// A clock that never moves: the Unix epoch on the wall, 0 on the monotonic
/// clock.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a wasmtime-wasi upgrade moves WASI to another version than
    /// [`WASI_VERSION`], instead of silently leaving blocking calls in.
    #[test]
    fn the_blocking_functions_are_replaced_in_the_wasi_wasmtime_registers() {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let mut linker = Linker::<SandboxState>::new(&engine);
        add_to_linker(&mut linker).unwrap();
    }

    #[test]
    fn the_refusal_says_what_was_called_and_why() {
        let refused = BlockingRefused {
            call: "wasi:io/poll.poll",
            why: "a wait for I/O or a timer",
        };
        assert_eq!(
            refused.to_string(),
            "it called `wasi:io/poll.poll`, which waits (a wait for I/O or a timer)"
        );
    }
}
