//! Plugin `build-request` vs the same encoding done natively.
//!
//! The plugin side is the real component: `Plugin::load`, `instantiate`, and
//! `PluginInstance::build_request` with the `request-input` the host builds
//! (`rhai_to_tree` of the builder's Rhai map, as `script_api::dispatch`
//! does). The native side is the same crate compiled for the host,
//! `guest_stripe::request::build_request`, on the same 10 fields. Both get
//! their input ready-made and return the finished request (method, path,
//! form body), so the difference is exactly what the sandbox adds: lowering
//! the tree into the component's memory, the guest rebuilding it, the
//! component call and the lifting of the result. The host-side tree building
//! (`rhai_to_tree`) is timed on its own, since a native design would need
//! some conversion of the script's values too.
//!
//! Time is taken in batches (about 10 ms of plugin calls each, the mean
//! time per call in a batch), the four kinds of call interleaved batch by
//! batch so that noise hits all alike. A round is several such batches of
//! each, its figure per kind the median of its batches, so that a burst of
//! noise on this 2-core machine moves at most a batch or two; the ratio
//! plugin / native is taken per round and reported as the median of the
//! rounds' ratios with the smallest and largest ([`Spread::ratios`]).
//! Before timing, both sides' bodies are checked to be byte-for-byte equal.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::bail;
use guest_stripe::request::{Target, build_request_from_words};
use payhost::plugin::{Plugin, PluginInstance, rhai_to_tree, wit};
use rhai::Dynamic;

use crate::fixtures::{self, OBJECT, OPERATION};
use crate::stats::{self, Spread};

/// Everything one call needs, built once.
pub struct Fixture {
    plugin: Plugin,
    instance: PluginInstance,
    input: wit::RequestInput,
    script_params: Dynamic,
    native_params: guest_stripe::Value,
    native_extra: guest_stripe::Value,
}

impl Fixture {
    pub fn new(plugin: &Plugin) -> anyhow::Result<Fixture> {
        let json = fixtures::params_json();
        let script_params: Dynamic = rhai::serde::to_dynamic(&json)
            .map_err(|e| anyhow::anyhow!("params as a Rhai map: {e}"))?;
        let input = wit::RequestInput {
            id: None,
            parent: None,
            params: rhai_to_tree(&script_params).map_err(anyhow::Error::msg)?,
            extra: rhai_to_tree(&Dynamic::from_map(rhai::Map::new()))
                .map_err(anyhow::Error::msg)?,
        };
        // The same fields in the order the host sends them (a Rhai map is
        // sorted by key).
        let native_params = guest_stripe::Value::from_serde_json(
            &rhai::serde::from_dynamic::<serde_json::Value>(&script_params)
                .map_err(|e| anyhow::anyhow!("params back to JSON: {e}"))?,
        );
        let mut fixture = Fixture {
            plugin: plugin.clone(),
            instance: plugin.instantiate()?,
            input,
            script_params,
            native_params,
            native_extra: guest_stripe::Value::Map(Vec::new()),
        };
        let plugin_body = fixture.plugin_call()?;
        let native_body = fixture.native_call()?;
        if plugin_body != native_body {
            bail!(
                "plugin and native bodies differ:\n  plugin: {}\n  native: {}",
                String::from_utf8_lossy(&plugin_body),
                String::from_utf8_lossy(&native_body)
            );
        }
        Ok(fixture)
    }

    /// One `build-request` through the component; returns the body.
    pub fn plugin_call(&mut self) -> anyhow::Result<Vec<u8>> {
        let request = self
            .instance
            .build_request(OBJECT, OPERATION, &self.input)?
            .map_err(|e| anyhow::anyhow!("plugin refused: {}", e.message))?;
        Ok(request.body)
    }

    /// One `build-request` in a fresh instance (a new wasmtime `Store` from
    /// the `InstancePre`), as a host that keeps no Store between calls
    /// would make it; returns the body.
    pub fn fresh_store_call(&self) -> anyhow::Result<Vec<u8>> {
        let request = self
            .plugin
            .instantiate()?
            .build_request(OBJECT, OPERATION, &self.input)?
            .map_err(|e| anyhow::anyhow!("plugin refused: {}", e.message))?;
        Ok(request.body)
    }

    /// The same request built natively; returns the body.
    pub fn native_call(&self) -> anyhow::Result<Vec<u8>> {
        let request = guest_stripe::request::build_request(
            OBJECT,
            OPERATION,
            None,
            &self.native_params,
            &self.native_extra,
        )
        .map_err(|e| anyhow::anyhow!("native refused: {}", e.message))?;
        Ok(request.body)
    }

    /// What the guest does inside `build-request`, natively: the node words
    /// and text (as the canonical ABI copies them in) checked and read in
    /// place, then built.
    pub fn native_tree_call(&self) -> anyhow::Result<Vec<u8>> {
        let request = build_request_from_words(
            &guest_stripe::Config::default(),
            Target {
                object: OBJECT,
                operation: OPERATION,
                id: None,
                parent: None,
            },
            (&self.input.params.nodes, &self.input.params.text),
            (&self.input.extra.nodes, &self.input.extra.text),
        )
        .map_err(|e| anyhow::anyhow!("native refused: {}", e.message))?;
        Ok(request.body)
    }

    /// The host's conversion of the builder's map into the WIT tree.
    pub fn tree_call(&self) -> usize {
        rhai_to_tree(&self.script_params)
            .map(|tree| tree.nodes.len())
            .unwrap_or(0)
    }

    /// The whole host side of one request's encoding: the tree, then the
    /// plugin call.
    pub fn tree_and_plugin_call(&mut self) -> anyhow::Result<Vec<u8>> {
        self.input.params = rhai_to_tree(&self.script_params).map_err(anyhow::Error::msg)?;
        self.plugin_call()
    }
}

/// The goals: a plugin call under this many ns, and at most this many times
/// the native call (the contract 0.2 issue owns them).
pub const PLUGIN_GOAL_NS: f64 = 5_000.0;
pub const RATIO_GOAL: f64 = 5.0;

/// One round's figures, in nanoseconds per call (each the median of the
/// round's batches).
#[derive(Debug, Clone)]
pub struct Round {
    pub plugin_ns: f64,
    pub native_ns: f64,
    pub tree_ns: f64,
    pub tree_and_plugin_ns: f64,
}

#[derive(Debug, Clone)]
pub struct Figures {
    pub rounds: Vec<Round>,
    /// Batches of each kind per round, and calls per batch.
    pub batches: usize,
    pub per_batch: u32,
}

impl Figures {
    fn side(&self, figure: fn(&Round) -> f64) -> Vec<f64> {
        self.rounds.iter().map(figure).collect()
    }

    pub fn plugin(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.plugin_ns)
    }

    pub fn native(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.native_ns)
    }

    pub fn tree(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.tree_ns)
    }

    pub fn tree_and_plugin(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.tree_and_plugin_ns)
    }

    /// Plugin over native, per round (lower is better).
    pub fn ratio(&self) -> Spread {
        Spread::ratios(&self.side(|r| r.plugin_ns), &self.side(|r| r.native_ns))
    }

    pub fn goal_holds(&self) -> bool {
        self.plugin().median < PLUGIN_GOAL_NS && self.ratio().median <= RATIO_GOAL
    }

    /// Timed plugin calls in all.
    pub fn calls(&self) -> u64 {
        u64::from(self.per_batch) * (self.batches * self.rounds.len()) as u64
    }
}

/// The mean time per call of `per_batch` calls of `f`, in ns.
fn time_batch(per_batch: u32, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    for _ in 0..per_batch {
        f()?;
    }
    Ok(started.elapsed().as_nanos() as f64 / f64::from(per_batch))
}

/// `rounds` rounds sharing `budget` of plugin calls (the other kinds are
/// faster); all four kinds interleaved batch by batch.
pub fn measure(plugin: &Plugin, budget: Duration, rounds: usize) -> anyhow::Result<Figures> {
    let mut fixture = Fixture::new(plugin)?;
    // Warm-up, and batches sized to about 10 ms of plugin calls.
    let started = Instant::now();
    for _ in 0..1_000 {
        black_box(fixture.plugin_call()?);
    }
    let per_call = started.elapsed() / 1_000;
    let per_batch = (Duration::from_millis(10).as_nanos() / per_call.as_nanos().max(1))
        .clamp(100, 100_000) as u32;
    let rounds = rounds.max(1);
    // A batch of each kind costs about 40 ms (the plugin's 10 and the
    // combined call's 10-15, the others less); at least 5 per round.
    let batches = ((budget.as_millis() / 40) as usize / rounds).max(5);

    let mut figures = Figures {
        rounds: Vec::with_capacity(rounds),
        batches,
        per_batch,
    };
    for _ in 0..rounds {
        let (mut plugin_ns, mut native_ns, mut tree_ns, mut both_ns) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..batches {
            plugin_ns.push(time_batch(per_batch, || {
                black_box(fixture.plugin_call()?);
                Ok(())
            })?);
            native_ns.push(time_batch(per_batch, || {
                black_box(fixture.native_call()?);
                Ok(())
            })?);
            tree_ns.push(time_batch(per_batch, || {
                black_box(fixture.tree_call());
                Ok(())
            })?);
            both_ns.push(time_batch(per_batch, || {
                black_box(fixture.tree_and_plugin_call()?);
                Ok(())
            })?);
        }
        figures.rounds.push(Round {
            plugin_ns: stats::median(&mut plugin_ns),
            native_ns: stats::median(&mut native_ns),
            tree_ns: stats::median(&mut tree_ns),
            tree_and_plugin_ns: stats::median(&mut both_ns),
        });
    }
    Ok(figures)
}

/// `PAYHOST_PLUGIN`, else `target/plugins/stripe.wasm` in this workspace.
pub fn default_plugin_path() -> std::path::PathBuf {
    std::env::var_os("PAYHOST_PLUGIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/stripe.wasm")
        })
}
