//! payhost in process, wired the way `host/src/run.rs` wires `payhost run`:
//! the plugin, one tokio runtime with two threads, the embedded queue, the
//! HTTP executor delivering into it, a pool of two flow workers, and the
//! script on a thread of its own with a `ScriptHost` and
//! `flow::script_engine`. The only differences from `run::run` are that the
//! plugin is loaded once per bench (not per run) and that the clock starts
//! when the script starts, so a figure is steady-state work and not start-up.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost::flow::{ScriptLimits, script_engine};
use payhost::http::HttpConfig;
use payhost::ledger::{Ledger, Summary, Token};
use payhost::plugin::Plugin;
use payhost::queue::{self, Placement, WorkerPool, WorkerSetup};
use payhost::script_api::{Dispatcher, ScriptHost};

use crate::fixtures::{self, Scripts};

pub struct Rig {
    pub runtime: tokio::runtime::Runtime,
    pub dispatcher: Dispatcher,
    pub scripts: Scripts,
    pub limits: ScriptLimits,
    pool: Option<WorkerPool>,
}

impl Rig {
    /// `requests` is how many `create_async` calls `main.rhai` makes.
    pub fn new(
        plugin: &Plugin,
        base_url: &str,
        max_in_flight: usize,
        requests: usize,
    ) -> anyhow::Result<Rig> {
        let scripts = Scripts::new(requests)?;
        let runtime = fixtures::http_runtime()?;
        let (sink, receiver) = queue::channel();
        let http = HttpConfig {
            max_in_flight,
            ..HttpConfig::default()
        };
        let dispatcher = fixtures::dispatcher(plugin, &runtime, base_url, http, Arc::new(sink))?;
        let limits = ScriptLimits::default();
        let pool = WorkerPool::start(
            receiver,
            2,
            WorkerSetup {
                dispatcher: dispatcher.clone(),
                flows_dir: scripts.flows_dir(),
                limits: limits.clone(),
                placement: Placement::Local,
            },
        )?;
        Ok(Rig {
            runtime,
            dispatcher,
            scripts,
            limits,
            pool: Some(pool),
        })
    }

    /// Runs `main.rhai` on its own thread, charging its requests to `token`.
    pub fn spawn_script(&self, token: Token) -> anyhow::Result<JoinHandle<Result<(), String>>> {
        let dispatcher = self.dispatcher.clone();
        let limits = self.limits.clone();
        let source = std::fs::read_to_string(self.scripts.main_script())?;
        Ok(std::thread::Builder::new()
            .name("payhost-script".into())
            .spawn(move || {
                let host = ScriptHost::new(dispatcher).map_err(|e| e.to_string())?;
                let engine = script_engine(&host, &limits);
                host.set_current(Some(token));
                let result = engine.run(&source).map_err(|e| e.to_string());
                host.set_current(None);
                result
            })?)
    }

    /// Runs the script and waits until every request and flow is done.
    /// Returns the summary and the time from script start to the last flow.
    pub fn run_to_end(&self, limit: Duration) -> anyhow::Result<(Summary, Duration)> {
        let (mut ledger, token) = Ledger::new();
        let started = Instant::now();
        let script = self.spawn_script(token)?;
        let waited = self.runtime.block_on(ledger.wait(Some(limit)));
        let elapsed = started.elapsed();
        match script.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => bail!("the script failed: {error}"),
            Err(_) => bail!("the script thread panicked"),
        }
        let summary = waited
            .map_err(|s| anyhow::anyhow!("not done after {limit:?}: {s}"))
            .context("payhost run")?;
        Ok((summary, elapsed))
    }

    /// Stops the executor and the workers.
    pub fn finish(mut self) {
        self.dispatcher.executor.close();
        if let Some(pool) = self.pool.take() {
            pool.shutdown();
        }
        self.runtime.shutdown_background();
    }
}

/// Fails unless `summary` shows `n` requests, each with its flow run.
pub fn check_complete(summary: &Summary, n: usize) -> anyhow::Result<()> {
    if summary.requests as usize != n
        || summary.flows_run as usize != n
        || summary.flows_failed > 0
        || summary.flows_missing > 0
    {
        bail!("expected {n} requests and {n} flows without failures: {summary}");
    }
    Ok(())
}
