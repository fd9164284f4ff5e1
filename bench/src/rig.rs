//! payhost in process, built as `payhost run` builds it: a
//! [`payhost::host::Host`] from a `HostConfig` (the plugin, one tokio
//! runtime, the HTTP executor, two flow threads, the embedded queue), and the
//! script on a thread of its own through `Host::spawn_script`. The only
//! differences from `run::run` are that the plugin is loaded once per bench
//! (not per run) and that the clock starts when the script starts, so a
//! figure is steady-state work and not start-up.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost::host::{Host, HostConfig};
use payhost::http::HttpVersion;
use payhost::ledger::{Ledger, Summary, Token};
use payhost::plugin::Plugin;
use payhost::queue::Placement;
use payhost::script_api::Dispatcher;

use crate::fixtures::{self, Scripts};

pub struct Rig {
    host: Host,
    pub scripts: Scripts,
}

impl Rig {
    /// `requests` is how many `create_async` calls `main.rhai` makes.
    pub fn new(
        plugin: &Plugin,
        base_url: &str,
        max_in_flight: usize,
        requests: usize,
    ) -> anyhow::Result<Rig> {
        Rig::speaking(plugin, base_url, max_in_flight, requests, HttpVersion::Auto)
    }

    /// [`Rig::new`] with the executor speaking `version`.
    pub fn speaking(
        plugin: &Plugin,
        base_url: &str,
        max_in_flight: usize,
        requests: usize,
        version: HttpVersion,
    ) -> anyhow::Result<Rig> {
        let scripts = Scripts::new(requests)?;
        let mut config = HostConfig::new(plugin.path().to_path_buf());
        fixtures::provider(&mut config, base_url);
        config.provider.http.max_in_flight = max_in_flight;
        config.provider.http.version = version;
        config.flows_dir = scripts.flows_dir();
        config.flow_threads = 2;
        let host = Host::start_with(std::slice::from_ref(plugin), &config, |_| {
            Ok(Placement::Local)
        })?;
        Ok(Rig { host, scripts })
    }

    pub fn dispatcher(&self) -> Dispatcher {
        self.host.dispatcher()
    }

    pub fn providers(&self) -> payhost::script_api::Providers {
        self.host.providers()
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.host.runtime()
    }

    /// Runs `main.rhai` on its own thread, charging its requests to `token`.
    pub fn spawn_script(&self, token: Token) -> anyhow::Result<JoinHandle<Result<(), String>>> {
        let path = self.scripts.main_script();
        let source = std::fs::read_to_string(&path)?;
        Ok(self.host.spawn_script(&path, source, token, None)?)
    }

    /// Runs the script and waits until every request and flow is done.
    /// Returns the summary and the time from script start to the last flow.
    pub fn run_to_end(&self, limit: Duration) -> anyhow::Result<(Summary, Duration)> {
        let (mut ledger, token) = Ledger::new();
        let started = Instant::now();
        let script = self.spawn_script(token)?;
        let waited = self.runtime().block_on(ledger.wait(Some(limit)));
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

    /// Stops the executor and the flow threads.
    pub fn finish(self) {
        self.host.shutdown(true);
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
