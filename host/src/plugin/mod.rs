//! Plugin loading and the sandbox every plugin call runs in.
//!
//! A plugin is a WebAssembly component that exports
//! `payhost:plugin/provider@0.4.0` (see `wit/plugin.wit`). [`Plugin::load`]
//! reads it from a path, refuses anything else with a message naming the path
//! and the problem, compiles it once (or takes the compiled form from the
//! [`ComponentCache`]) and pre-links it ([`PluginPre`]), so that a new
//! [`PluginInstance`] is cheap.
//!
//! Sandbox, per store:
//! - a memory cap and bounds on the number of core instances, memories and
//!   tables ([`limits`]);
//! - a deadline per call, enforced by epoch interruption: a ticker thread
//!   advances the engine's epoch every [`EPOCH_TICK`] and each call gets a
//!   deadline a fixed number of ticks away. It is wall-clock time, not CPU
//!   time: a call on a busy machine gets less CPU within it;
//! - WASI that cannot block or observe the outside ([`wasi`]): no files, no
//!   environment, no sockets, no name lookup, frozen clocks, and a trap for
//!   every call that would wait (sleep, poll). Epochs only interrupt running
//!   wasm, so a waiting host call would outlive any deadline; since nothing a
//!   plugin calls can wait, the deadline bounds the whole call.
//!
//! The plugin's stderr goes to the host log.
//!
//! A call that traps, runs past its deadline, tries to wait or outgrows its
//! memory fails with a [`PluginCallError`] naming the plugin and the function;
//! the instance is then discarded and the next call gets a fresh one, so one
//! bad call never poisons the next.
//!
//! Threading: a [`Plugin`] is cheap to clone and shared between threads (the
//! engine and pre-linked component are immutable). A [`PluginInstance`] owns
//! its `Store` and belongs to one thread: the script thread and each worker
//! own one. Nothing here is global and nothing takes a lock.
//!
//! Store lifetime, a recorded decision: wasmtime documents a `Store` as
//! short-lived, and a fresh one per call (from the `InstancePre`) would give
//! every call a clean guest. We keep one long-lived instance per thread
//! instead, and replace it after any failed call (the only calls that can
//! leave the guest in a broken state). Measured with criterion
//! (`cargo bench -p payhost-bench --bench build_request`, the 10-field
//! payment intent, this 2-core machine, contract 0.2): 3.04 µs per
//! `build-request` on the long-lived instance against 41.8 µs with a fresh
//! Store per call, 14x (at contract 0.1 it was 6.49 against 48.2 µs); the
//! per-call Store would cost more than the rest of `create_async`. A
//! guest's memory only grows over a long-lived instance, up to the memory
//! cap, which bounds what one instance can hold.

mod cache;
mod contract;
mod convert;
mod limits;
mod stderr;
mod wasi;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

pub use cache::{CacheOutcome, ComponentCache};
pub use convert::{json_to_tree, rhai_map_to_tree, rhai_to_tree};
use limits::StoreCaps;
pub use limits::StoreCounts;
pub use wasi::BlockingRefused;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
    });
}

/// The WIT types, as the host sees them.
pub use bindings::payhost::plugin::types as wit;
use bindings::{Plugin as PluginWorld, PluginPre};

/// The exported interface this host speaks, with its version.
pub const CONTRACT_PACKAGE: &str = "payhost:plugin";
pub const CONTRACT_VERSION: &str = "0.4.0";
const CONTRACT_EXPORT: &str = "payhost:plugin/provider@0.4.0";

/// Limits applied to every plugin call.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Largest linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock time one call may take before it is interrupted. A plugin
    /// cannot block (see [`wasi`]), so this is time spent running.
    pub call_timeout: Duration,
    /// Largest request body a plugin may return.
    pub max_request_body: usize,
    /// Core instances, memories and tables one instance may create.
    pub store_counts: StoreCounts,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            call_timeout: Duration::from_millis(250),
            max_request_body: 1 << 20,
            store_counts: StoreCounts::default(),
        }
    }
}

/// How often the epoch ticker advances; call deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A component refused at load time.
#[derive(Debug, thiserror::Error)]
#[error("cannot load plugin {}: {problem}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub problem: String,
}

/// A plugin call that did not return normally.
#[derive(Debug, thiserror::Error)]
pub enum PluginCallError {
    #[error("plugin `{plugin}` ran past its {}ms deadline in {function} and was stopped", limit.as_millis())]
    Timeout {
        plugin: String,
        function: &'static str,
        limit: Duration,
    },
    #[error(
        "plugin `{plugin}` tried to block in {function}: {refused}; a plugin may not sleep or \
         wait, so the call was stopped"
    )]
    Blocked {
        plugin: String,
        function: &'static str,
        refused: BlockingRefused,
    },
    #[error(
        "plugin `{plugin}` tried to grow its memory to {wanted} bytes in {function}; the limit is {limit} bytes"
    )]
    MemoryLimit {
        plugin: String,
        function: &'static str,
        wanted: usize,
        limit: usize,
    },
    #[error(
        "plugin `{plugin}` crashed in {function}: {detail} (its stderr, if any, is in the log)"
    )]
    Trap {
        plugin: String,
        function: &'static str,
        detail: String,
    },
    #[error("plugin `{plugin}` could not be instantiated: {detail}")]
    Instantiate { plugin: String, detail: String },
    #[error("plugin `{plugin}` refused its settings: {detail}")]
    Refused { plugin: String, detail: String },
}

/// A loaded, validated, pre-linked plugin. Clone it freely.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Loaded>,
    /// The operator's non-secret settings, given to every new instance
    /// through `configure` (see [`Plugin::configured`]).
    settings: Arc<[(String, String)]>,
    /// Where every instance records its call latencies.
    metrics: crate::metrics::Metrics,
}

struct Loaded {
    path: PathBuf,
    engine: Engine,
    pre: PluginPre<SandboxState>,
    limits: SandboxLimits,
    cache: CacheOutcome,
    /// Read once at load from a throwaway instance.
    info: wit::ProviderInfo,
    /// The names of the component's imports (the contract's types, WASI).
    imports: Vec<String>,
    name: Arc<str>,
    /// SHA-256 of the component's bytes, lowercase hex: the version's
    /// identity in logs, job records and the fleet's Redis keys.
    hash: Arc<str>,
}

impl Plugin {
    /// Loads the component at `path`, checking it implements this host's
    /// contract version.
    pub fn load(
        path: &Path,
        limits: SandboxLimits,
        cache: &ComponentCache,
    ) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError {
            path: path.to_path_buf(),
            problem: format!("cannot read the file: {e}"),
        })?;
        Self::from_bytes(path, &bytes, limits, cache)
    }

    /// Loads a component from its bytes; `path` names where they came from
    /// in messages (a file, or a Redis key for a published version).
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        limits: SandboxLimits,
        cache: &ComponentCache,
    ) -> Result<Plugin, LoadError> {
        let refuse = |problem: String| LoadError {
            path: path.to_path_buf(),
            problem,
        };
        contract::check_header(bytes).map_err(refuse)?;

        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine =
            Engine::new(&config).map_err(|e| refuse(format!("engine setup failed: {e:#}")))?;
        let (component, cache_outcome) = cache
            .load(&engine, bytes)
            .map_err(|e| refuse(format!("not a valid WebAssembly component: {e:#}")))?;
        contract::check_world(&engine, &component).map_err(refuse)?;
        let imports = component
            .component_type()
            .imports(&engine)
            .map(|(name, _)| name.to_string())
            .collect();

        let mut linker = Linker::<SandboxState>::new(&engine);
        wasi::add_to_linker(&mut linker)
            .map_err(|e| refuse(format!("linking WASI failed: {e:#}")))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| refuse(format!("its imports cannot be satisfied: {e:#}")))?;
        let pre = PluginPre::new(instance_pre).map_err(|e| {
            refuse(format!(
                "it does not match the {CONTRACT_EXPORT} contract: {e:#}"
            ))
        })?;
        spawn_epoch_ticker(&engine);

        let file_name: Arc<str> = path
            .file_name()
            .map(|n| n.to_string_lossy().into())
            .unwrap_or_else(|| "plugin".into());
        let mut loaded = Loaded {
            path: path.to_path_buf(),
            engine,
            pre,
            limits,
            cache: cache_outcome,
            info: empty_info(),
            imports,
            name: file_name,
            hash: content_hash(bytes).into(),
        };
        let mut probe =
            PluginInstance::new_unchecked(&loaded).map_err(|e| refuse(e.to_string()))?;
        let info = probe.call_info().map_err(|e| refuse(e.to_string()))?;
        contract::validate_info(&info).map_err(refuse)?;
        loaded.name = info.name.as_str().into();
        loaded.info = info;
        Ok(Plugin {
            inner: Arc::new(loaded),
            settings: Arc::new([]),
            metrics: crate::metrics::Metrics::disabled(),
        })
    }

    /// The plugin with the operator's non-secret `settings` (name, value),
    /// which every instance receives through `configure` before any other
    /// call. The plugin's answer is checked here, once: a value it refuses
    /// is a load error naming the plugin and its complaint.
    pub fn configured(&self, settings: Vec<(String, String)>) -> Result<Plugin, LoadError> {
        let plugin = Plugin {
            inner: self.inner.clone(),
            settings: settings.into(),
            metrics: self.metrics.clone(),
        };
        plugin.instantiate().map_err(|e| LoadError {
            path: self.inner.path.clone(),
            problem: e.to_string(),
        })?;
        Ok(plugin)
    }

    /// The plugin with its instances timing every call into `metrics`
    /// (`payhost_plugin_call_seconds`).
    pub fn with_metrics(&self, metrics: crate::metrics::Metrics) -> Plugin {
        Plugin {
            metrics,
            ..self.clone()
        }
    }

    /// The non-secret settings every instance is configured with.
    pub fn settings(&self) -> &[(String, String)] {
        &self.settings
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The provider's self-description, read once at load.
    pub fn info(&self) -> &wit::ProviderInfo {
        &self.inner.info
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The content hash of the component (SHA-256 of its bytes, hex).
    pub fn hash(&self) -> &Arc<str> {
        &self.inner.hash
    }

    /// What the component imports, e.g. `wasi:cli/stderr@0.2.6`.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.inner.limits
    }

    /// Whether the compiled form came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// A fresh instance for one thread, configured with the settings.
    pub fn instantiate(&self) -> Result<PluginInstance, PluginCallError> {
        let mut instance = PluginInstance::new_unchecked(&self.inner)?;
        instance.plugin = Some(self.clone());
        instance.timers = self.metrics.plugin_timers(self.name());
        let refused = instance.guarded("configure", |world, store| {
            world
                .payhost_plugin_provider()
                .call_configure(store, &self.settings)
        })?;
        refused.map_err(|why| PluginCallError::Refused {
            plugin: self.name().to_string(),
            detail: why,
        })?;
        Ok(instance)
    }
}

/// Per-store state: WASI context and the limiter.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: StoreCaps,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One plugin instance with its own store. Belongs to one thread.
pub struct PluginInstance {
    plugin: Option<Plugin>,
    name: Arc<str>,
    limits: SandboxLimits,
    store: Store<SandboxState>,
    world: PluginWorld,
    /// Set after a failed call: the guest's state may be broken, so the next
    /// call starts from a fresh instance.
    poisoned: bool,
    /// Call latency histograms; `None` when metrics are off (no clock read).
    timers: Option<crate::metrics::PluginTimers>,
}

impl PluginInstance {
    fn new_unchecked(loaded: &Loaded) -> Result<PluginInstance, PluginCallError> {
        let state = SandboxState {
            wasi: wasi::context(loaded.name.clone()),
            table: ResourceTable::new(),
            limiter: StoreCaps::new(loaded.limits.memory_bytes, loaded.limits.store_counts),
        };
        let mut store = Store::new(&loaded.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(loaded.limits.call_timeout));
        let world =
            loaded
                .pre
                .instantiate(&mut store)
                .map_err(|e| PluginCallError::Instantiate {
                    plugin: loaded.name.to_string(),
                    detail: format!("{e:#}"),
                })?;
        Ok(PluginInstance {
            plugin: None,
            name: loaded.name.clone(),
            limits: loaded.limits.clone(),
            store,
            world,
            poisoned: false,
            timers: None,
        })
    }

    /// Which responses the host classifies for this plugin without calling
    /// `parse-response` (its `info`'s `responses`); none for an instance
    /// made without its plugin (tests).
    pub fn response_rule(&self) -> wit::ResponseRule {
        self.plugin
            .as_ref()
            .map_or(wit::ResponseRule::Plugin, |p| p.info().responses)
    }

    /// Counts a response the host classified under [`Self::response_rule`]
    /// (`payhost_host_classified_responses_total`), in place of the
    /// `parse-response` call the plugin's histogram would have counted.
    pub fn note_host_classified(&self) {
        if let Some(timers) = &self.timers {
            timers.host_classified();
        }
    }

    /// Replaces a poisoned instance before the next call.
    fn ensure_fresh(&mut self) -> Result<(), PluginCallError> {
        if self.poisoned {
            let plugin = self
                .plugin
                .clone()
                .expect("instances handed out carry their plugin");
            *self = plugin.instantiate()?;
        }
        Ok(())
    }

    /// Calls `f` under the sandbox's deadline and maps any failure.
    fn guarded<R>(
        &mut self,
        function: &'static str,
        f: impl FnOnce(&PluginWorld, &mut Store<SandboxState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginCallError> {
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        self.store.data_mut().limiter.reset();
        let started = self.timers.is_some().then(std::time::Instant::now);
        let result = f(&self.world, &mut self.store);
        if let (Some(timers), Some(started)) = (&self.timers, started) {
            timers.observe(function, started.elapsed());
        }
        result.map_err(|err| {
            self.poisoned = true;
            self.describe_failure(function, &err)
        })
    }

    fn describe_failure(&self, function: &'static str, err: &wasmtime::Error) -> PluginCallError {
        let plugin = self.name.to_string();
        if let Some(wanted) = self.store.data().limiter.refused() {
            return PluginCallError::MemoryLimit {
                plugin,
                function,
                wanted,
                limit: self.limits.memory_bytes,
            };
        }
        if let Some(refused) = err.downcast_ref::<BlockingRefused>() {
            return PluginCallError::Blocked {
                plugin,
                function,
                refused: refused.clone(),
            };
        }
        if let Some(I32Exit(code)) = err.downcast_ref::<I32Exit>() {
            return PluginCallError::Trap {
                plugin,
                function,
                detail: format!("it called exit({code})"),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginCallError::Timeout {
                plugin,
                function,
                limit: self.limits.call_timeout,
            },
            Some(trap) => PluginCallError::Trap {
                plugin,
                function,
                detail: describe_trap(*trap),
            },
            None => PluginCallError::Trap {
                plugin,
                function,
                detail: format!("{err:#}"),
            },
        }
    }

    fn call_info(&mut self) -> Result<wit::ProviderInfo, PluginCallError> {
        self.guarded("info", |world, store| {
            world.payhost_plugin_provider().call_info(store)
        })
    }

    /// `build-request`: the plugin's request, or its complaint about the input.
    pub fn build_request(
        &mut self,
        object: &str,
        operation: &str,
        input: &wit::RequestInput,
    ) -> Result<Result<wit::HttpRequest, wit::PluginError>, PluginCallError> {
        self.ensure_fresh()?;
        self.guarded("build-request", |world, store| {
            world
                .payhost_plugin_provider()
                .call_build_request(store, object, operation, input)
        })
    }

    /// `parse-response`: the payload for the success or the error flow.
    pub fn parse_response(
        &mut self,
        object: &str,
        operation: &str,
        outcome: &wit::TransportOutcome,
    ) -> Result<wit::FlowPayload, PluginCallError> {
        self.ensure_fresh()?;
        self.guarded("parse-response", |world, store| {
            world
                .payhost_plugin_provider()
                .call_parse_response(store, object, operation, outcome)
        })
    }

    /// `check-webhook`: what must be verified in one delivery, or why the
    /// plugin cannot say (no signature header, an unreadable one).
    pub fn check_webhook(
        &mut self,
        request: &wit::WebhookRequest,
    ) -> Result<Result<wit::WebhookCheck, String>, PluginCallError> {
        self.ensure_fresh()?;
        self.guarded("check-webhook", |world, store| {
            world
                .payhost_plugin_provider()
                .call_check_webhook(store, request)
        })
    }

    /// `parse-webhook`: the events of a verified delivery.
    pub fn parse_webhook(
        &mut self,
        request: &wit::WebhookRequest,
    ) -> Result<Result<Vec<wit::WebhookEvent>, String>, PluginCallError> {
        self.ensure_fresh()?;
        self.guarded("parse-webhook", |world, store| {
            world
                .payhost_plugin_provider()
                .call_parse_webhook(store, request)
        })
    }

    /// `info` on this instance (the loaded plugin caches it; this is for tests
    /// proving an instance still works after a failed call).
    pub fn info(&mut self) -> Result<wit::ProviderInfo, PluginCallError> {
        self.ensure_fresh()?;
        self.guarded("info", |world, store| {
            world.payhost_plugin_provider().call_info(store)
        })
    }
}

/// A provider that declares nothing (the placeholder until `info` is read,
/// and a base for tests).
pub fn empty_info() -> wit::ProviderInfo {
    wit::ProviderInfo {
        name: String::new(),
        version: String::new(),
        doc: String::new(),
        default_base_url: String::new(),
        settings: Vec::new(),
        auth: wit::AuthScheme::None,
        retry: wit::RetryPolicy {
            statuses: Vec::new(),
            failures: Vec::new(),
            should_retry_header: None,
            honour_retry_after: false,
            idempotency_header: None,
        },
        objects: Vec::new(),
        webhooks: None,
        responses: wit::ResponseRule::Plugin,
    }
}

fn describe_trap(trap: Trap) -> String {
    match trap {
        Trap::UnreachableCodeReached => {
            "it executed `unreachable` (a Rust plugin does this when it panics)".to_string()
        }
        other => other.to_string(),
    }
}

fn deadline_ticks(timeout: Duration) -> u64 {
    (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
}

/// SHA-256 of `bytes`, lowercase hex: how a plugin version is named.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("payhost-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
