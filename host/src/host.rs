//! One `Host`: the single place that wires plugin, provider policy, HTTP
//! executor and flow threads.
//!
//! `payhost run`, `payhost worker` and the benchmark rig all build a
//! [`Host`] from one [`HostConfig`], the same way, and differ only in where
//! flow jobs go ([`Placement`]: run here, or publish to Redis) and in how
//! they wait (the ledger, or the worker's read loop). Every default is
//! written once, in [`HostConfig::new`] and the library types it holds; the
//! command line shows those values instead of repeating them.
//!
//! Built in data-flow order: load the plugin; start the I/O runtime; resolve
//! the settings and build the provider policy and the HTTP executor
//! ([`Dispatcher::build`]), which delivers outcomes into the flow channel;
//! start the flow threads that read it.
//!
//! The providers are live ([`LiveProviders`]): `payhost worker` and `payhost
//! serve` start a [`PluginWatch`] ([`Host::watch_plugins`]) that swaps in new
//! plugin versions while the host runs (see [`crate::upgrade`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;

use crate::flow::{ScriptLimits, script_engine};
use crate::http::{HttpConfig, OutcomeSink};
use crate::ledger::{Event, Token};
use crate::plugin::{ComponentCache, Plugin, SandboxLimits};
use crate::queue::{self, FlowPool, FlowSetup, Placement, WorkSender};
use crate::script_api::{Dispatcher, ProviderConfig, Providers, ScriptHost};
use crate::settings::SettingsSource;
use crate::upgrade::{LiveProviders, PluginWatch, Upgrader};

/// Where flow scripts are looked up unless told otherwise.
pub const DEFAULT_FLOWS_DIR: &str = "flows";
/// The ids a script's requests carry when it passes none.
pub const DEFAULT_WORKER_ID: &str = "worker-1";
pub const DEFAULT_CONTEXT_ID: &str = "context-1";

/// Everything a [`Host`] is built from.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The provider plugins (WebAssembly components), one per provider.
    pub plugins: Vec<PathBuf>,
    pub sandbox: SandboxLimits,
    pub cache: ComponentCache,
    /// The provider connection: base URL, settings, HTTP, default ids.
    pub provider: ProviderConfig,
    pub flows_dir: PathBuf,
    pub script_limits: ScriptLimits,
    /// Threads that classify outcomes and run flow scripts.
    pub flow_threads: usize,
    /// Where requests, plugin calls and flows are counted; disabled unless
    /// the command serves metrics (`--metrics-listen`).
    pub metrics: crate::metrics::Metrics,
}

impl HostConfig {
    /// The defaults, for the plugin at `plugin`.
    pub fn new(plugin: PathBuf) -> Self {
        Self::with_plugins(vec![plugin])
    }

    /// The defaults, for several plugins.
    pub fn with_plugins(plugins: Vec<PathBuf>) -> Self {
        Self {
            plugins,
            sandbox: SandboxLimits::default(),
            cache: ComponentCache::new(None),
            provider: ProviderConfig {
                base_url: None,
                base_urls: Vec::new(),
                settings: SettingsSource::default(),
                worker_id: DEFAULT_WORKER_ID.into(),
                context_id: DEFAULT_CONTEXT_ID.into(),
                http: HttpConfig::default(),
            },
            flows_dir: PathBuf::from(DEFAULT_FLOWS_DIR),
            script_limits: ScriptLimits::default(),
            flow_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            metrics: crate::metrics::Metrics::disabled(),
        }
    }

    /// Loads the plugins this config names (a directory stands for every
    /// `*.wasm` file in it, in name order).
    pub fn load_plugins(&self) -> anyhow::Result<Vec<Plugin>> {
        let mut plugins = Vec::new();
        for path in &self.plugins {
            if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .with_context(|| {
                        format!("cannot read the plugin directory {}", path.display())
                    })?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                    .collect();
                files.sort();
                anyhow::ensure!(
                    !files.is_empty(),
                    "the plugin directory {} holds no .wasm file",
                    path.display()
                );
                for file in files {
                    plugins.push(Plugin::load(&file, self.sandbox.clone(), &self.cache)?);
                }
            } else {
                plugins.push(Plugin::load(path, self.sandbox.clone(), &self.cache)?);
            }
        }
        anyhow::ensure!(!plugins.is_empty(), "no plugin given: pass --plugin PATH");
        Ok(plugins)
    }

    /// The provider connection of `plugin`, one of `count` loaded: its base
    /// URL (`--base-url NAME=URL`, or an unnamed `--base-url` when it is the
    /// only one) and a settings source shared with the others.
    pub(crate) fn provider_config(
        &self,
        plugin: &Plugin,
        count: usize,
    ) -> anyhow::Result<ProviderConfig> {
        let mut config = self.provider.clone();
        let named = self
            .provider
            .base_urls
            .iter()
            .rev()
            .find(|(name, _)| name == plugin.name())
            .map(|(_, url)| url.clone());
        config.base_url = match (named, &self.provider.base_url) {
            (Some(url), _) => Some(url),
            (None, Some(_)) if count > 1 => anyhow::bail!(
                "with several plugins loaded, say which provider a base URL is for: \
                 --base-url {}=URL",
                plugin.name()
            ),
            (None, unnamed) => unnamed.clone(),
        };
        config.settings.shared = count > 1;
        config.http.metrics = self.metrics.clone();
        Ok(config)
    }
}

/// A running host: the I/O runtime, the providers (each its plugin, policy,
/// executor) and the flow threads.
pub struct Host {
    runtime: tokio::runtime::Runtime,
    providers: Arc<LiveProviders>,
    flows: WorkSender,
    pool: Option<FlowPool>,
    script_limits: ScriptLimits,
    /// What a new plugin version is built with (see [`Host::watch_plugins`]).
    config: HostConfig,
    sink: Arc<dyn OutcomeSink>,
}

impl Host {
    /// Loads the plugin and starts everything; `placement` (given the
    /// runtime, e.g. to connect to Redis) says where flow jobs go.
    pub fn start(
        config: &HostConfig,
        placement: impl FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<Placement>,
    ) -> anyhow::Result<Host> {
        Self::start_with(&config.load_plugins()?, config, placement)
    }

    /// Like [`Host::start`], with the plugins loaded already (the benchmarks
    /// load one once for many hosts).
    pub fn start_with(
        plugins: &[Plugin],
        config: &HostConfig,
        placement: impl FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<Placement>,
    ) -> anyhow::Result<Host> {
        if plugins.len() > 1 {
            let infos: Vec<_> = plugins.iter().map(Plugin::info).collect();
            let unclaimed = crate::settings::unclaimed(&infos, &config.provider.settings)
                .map_err(anyhow::Error::msg)?;
            if let Some(name) = unclaimed.first() {
                anyhow::bail!(
                    "no loaded plugin has the setting `{name}` (loaded: {})",
                    plugins
                        .iter()
                        .map(Plugin::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            anyhow::ensure!(
                config.provider.settings.secret_env.is_none(),
                "--secret-env names one provider's secret; with several plugins, use each \
                 provider's variable (<PROVIDER>_<SETTING>)"
            );
        }
        let runtime = crate::http::io_runtime().context("cannot start the async runtime")?;
        let placement = placement(&runtime)?;
        let (sender, receiver) = queue::channel();
        let sink: Arc<dyn OutcomeSink> = Arc::new(sender.clone());
        let providers = plugins
            .iter()
            .map(|plugin| {
                let provider = config.provider_config(plugin, plugins.len())?;
                let plugin = plugin.with_metrics(config.metrics.clone());
                Dispatcher::build(&plugin, &provider, runtime.handle().clone(), sink.clone())
                    .with_context(|| format!("provider `{}`", plugin.name()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let providers = LiveProviders::new(Providers::new(providers)?);
        let pool = FlowPool::start(
            receiver,
            config.flow_threads,
            FlowSetup {
                providers: providers.clone(),
                flows_dir: config.flows_dir.clone(),
                limits: config.script_limits.clone(),
                placement,
                metrics: config.metrics.clone(),
            },
        )
        .context("cannot start the flow threads")?;
        Ok(Host {
            runtime,
            providers,
            flows: sender,
            pool: Some(pool),
            script_limits: config.script_limits.clone(),
            config: config.clone(),
            sink,
        })
    }

    /// Starts watching for new versions of the plugins (their files,
    /// SIGHUP, and with `fleet` the versions published to that Redis);
    /// watching stops when the returned handle is dropped.
    pub fn watch_plugins(&self, fleet: Option<&str>) -> anyhow::Result<PluginWatch> {
        crate::upgrade::watch(
            Upgrader {
                live: self.providers.clone(),
                config: self.config.clone(),
                runtime: self.runtime.handle().clone(),
                sink: self.sink.clone(),
            },
            fleet,
        )
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The first (with one plugin loaded, the only) provider, as current.
    pub fn dispatcher(&self) -> Dispatcher {
        self.providers.current().first().clone()
    }

    /// The providers' current versions.
    pub fn providers(&self) -> Providers {
        self.providers.current()
    }

    /// The providers, live: what threads owning plugin instances follow.
    pub fn live_providers(&self) -> &Arc<LiveProviders> {
        &self.providers
    }

    /// Where work for the flow threads goes (the worker's read loop hands
    /// Redis jobs in here).
    pub fn flows(&self) -> &WorkSender {
        &self.flows
    }

    /// Runs a main script on a thread of its own, charging its requests to
    /// `token` and stopping it at `deadline`. Its requests wait while the
    /// flows are behind (see `Outbound::waits_for_flows`). A failure is
    /// reported to the token and returned.
    pub fn spawn_script(
        &self,
        path: &Path,
        source: String,
        token: Token,
        deadline: Option<Instant>,
    ) -> std::io::Result<JoinHandle<Result<(), String>>> {
        let providers = self.providers.current();
        let limits = self.script_limits.clone();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("payhost-script".into())
            .stack_size(crate::flow::SCRIPT_THREAD_STACK)
            .spawn(move || run_script(providers, &path, &source, &limits, deadline, token))
    }

    /// Refuses new requests from now on; running ones finish.
    pub fn close(&self) {
        for provider in self.providers.current().iter() {
            provider.executor.close();
        }
    }

    /// Stops: no new requests; with `drain`, the flow threads finish what is
    /// queued first (without it, abandoned work is left behind). The runtime
    /// is dropped without waiting for abandoned tasks.
    pub fn shutdown(mut self, drain: bool) {
        self.close();
        if let (true, Some(pool)) = (drain, self.pool.take()) {
            pool.shutdown();
        }
        self.runtime.shutdown_background();
    }
}

fn run_script(
    providers: Providers,
    path: &Path,
    source: &str,
    limits: &ScriptLimits,
    deadline: Option<Instant>,
    token: Token,
) -> Result<(), String> {
    let host = ScriptHost::new(providers).map_err(|err| {
        token.report(Event::ScriptFailed(err.to_string()));
        err.to_string()
    })?;
    let engine = script_engine(&host, limits);
    host.set_current(Some(token.clone()));
    host.set_deadline(deadline);
    host.set_waits_for_flows(true);
    let result = engine
        .compile(source)
        .map_err(|e| e.to_string())
        .and_then(|mut ast| {
            ast.set_source(path.display().to_string());
            engine.run_ast(&ast).map_err(|e| host.describe(&e))
        });
    host.set_deadline(None);
    host.set_current(None);
    result.map_err(|error| {
        let message = format!("{}: {error}", path.display());
        crate::say!("payhost: {message}");
        token.report(Event::ScriptFailed(message.clone()));
        message
    })
}
