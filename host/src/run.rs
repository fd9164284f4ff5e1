//! `payhost run`: one script, every request it makes, every flow they cause.
//!
//! Wiring, in data-flow order: load the plugin; start one tokio runtime; make
//! the embedded queue and the HTTP executor that delivers into it; start the
//! worker pool; run the script on its own thread. Then wait on the
//! [`Ledger`] until the last unit of work is done, the timeout passes, or
//! Ctrl-C asks us to stop (no new requests; in-flight work gets a grace
//! period; what is left is reported as abandoned).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::flow::{ScriptLimits, script_engine};
use crate::http::HttpConfig;
use crate::ledger::{Event, Ledger, Summary, Token};
use crate::plugin::{ComponentCache, Plugin, SandboxLimits};
use crate::queue::redis::{Publisher, RedisConfig};
use crate::queue::{self, Placement, WorkerPool, WorkerSetup};
use crate::script_api::{Dispatcher, ProviderConfig, ScriptHost};
use crate::settings::SettingsSource;

/// Where flow scripts are looked up unless told otherwise.
pub const DEFAULT_FLOWS_DIR: &str = "flows";
/// How long in-flight work may take to finish once asked to stop.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// The ids a script's requests carry when it passes none.
pub const DEFAULT_WORKER_ID: &str = "worker-1";
pub const DEFAULT_CONTEXT_ID: &str = "context-1";

/// Everything `payhost run` is configured with.
///
/// Defaults live here and in the library types it holds ([`HttpConfig`],
/// [`ScriptLimits`], [`SandboxLimits`]); the command line shows those same
/// values as its flags' defaults instead of repeating them.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub script: PathBuf,
    pub plugin: PathBuf,
    pub flows_dir: PathBuf,
    pub base_url: Option<String>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub workers: usize,
    pub worker_id: String,
    pub context_id: String,
    /// Where the provider's settings come from (`--set`, `--settings`,
    /// `--secret-env`; the environment always).
    pub settings: SettingsSource,
    pub http: HttpConfig,
    pub script_limits: ScriptLimits,
    pub sandbox: SandboxLimits,
    pub cache: ComponentCache,
    /// Send flow jobs through Redis instead of running them here.
    pub redis: Option<RedisConfig>,
    /// With Redis: return once the script's own requests are queued, without
    /// following the flows they cause.
    pub detach: bool,
}

impl RunOptions {
    pub fn new(script: PathBuf, plugin: PathBuf) -> Self {
        Self {
            script,
            plugin,
            flows_dir: PathBuf::from(DEFAULT_FLOWS_DIR),
            base_url: None,
            timeout: None,
            grace: DEFAULT_GRACE,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            worker_id: DEFAULT_WORKER_ID.into(),
            context_id: DEFAULT_CONTEXT_ID.into(),
            settings: SettingsSource::default(),
            http: HttpConfig::default(),
            script_limits: ScriptLimits::default(),
            sandbox: SandboxLimits::default(),
            cache: ComponentCache::new(None),
            redis: None,
            detach: false,
        }
    }
}

/// Runs the script to completion and returns the summary.
pub fn run(options: RunOptions) -> anyhow::Result<Summary> {
    let plugin = Plugin::load(&options.plugin, options.sandbox.clone(), &options.cache)?;
    let script_source = std::fs::read_to_string(&options.script)
        .with_context(|| format!("cannot read script {}", options.script.display()))?;

    let runtime = crate::http::io_runtime().context("cannot start the async runtime")?;
    let started = std::time::Instant::now();
    let redis = match &options.redis {
        Some(config) => Some(runtime.block_on(crate::queue::redis::connect(&config.url))?),
        None => None,
    };
    let run_id: Option<Arc<str>> = redis
        .as_ref()
        .map(|_| uuid::Uuid::new_v4().simple().to_string().into());
    let placement = match (&redis, &options.redis) {
        (Some(conn), Some(config)) => {
            Placement::Redis(Publisher::start(runtime.handle(), conn.clone(), config))
        }
        _ => Placement::Local,
    };
    let (sink, receiver) = queue::channel();
    let dispatcher = Dispatcher::build(
        &plugin,
        &ProviderConfig {
            base_url: options.base_url.clone(),
            settings: options.settings.clone(),
            worker_id: options.worker_id.clone(),
            context_id: options.context_id.clone(),
            http: options.http.clone(),
        },
        runtime.handle().clone(),
        Arc::new(sink),
    )?;
    let executor = dispatcher.executor.clone();
    let pool = WorkerPool::start(
        receiver,
        options.workers,
        WorkerSetup {
            dispatcher: dispatcher.clone(),
            flows_dir: options.flows_dir.clone(),
            limits: options.script_limits.clone(),
            placement,
        },
    )
    .context("cannot start the flow workers")?;

    let (mut ledger, script_token) = Ledger::for_run(run_id.clone());
    let script_path = options.script.clone();
    let limits = options.script_limits.clone();
    // The main script stops at the run's deadline too, so its thread ends.
    let script_deadline = options.timeout.map(|t| started + t);
    std::thread::Builder::new()
        .name("payhost-script".into())
        .stack_size(crate::flow::SCRIPT_THREAD_STACK)
        .spawn(move || {
            run_script(
                dispatcher,
                script_path,
                script_source,
                limits,
                script_deadline,
                script_token,
            )
        })
        .context("cannot start the script thread")?;

    let summary = runtime.block_on(async {
        tokio::select! {
            result = ledger.wait(options.timeout) => match result {
                Ok(summary) => summary,
                Err(mut summary) => {
                    summary.abandoned = Some(format!(
                        "timed out after {}s with {} requests in flight and {} flows pending",
                        options.timeout.unwrap_or_default().as_secs_f64(),
                        summary.in_flight(),
                        summary.flows_pending(),
                    ));
                    summary
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!(
                    "payhost: interrupted; no new requests; waiting up to {}s for work in flight",
                    options.grace.as_secs_f64()
                );
                executor.close();
                match ledger.wait(Some(options.grace)).await {
                    Ok(mut summary) => {
                        summary.abandoned = Some("interrupted (all work in flight finished)".into());
                        summary
                    }
                    Err(mut summary) => {
                        summary.abandoned = Some(format!(
                            "interrupted; abandoned {} requests in flight and {} flows pending",
                            summary.in_flight(),
                            summary.flows_pending(),
                        ));
                        summary
                    }
                }
            }
        }
    });
    let mut summary = summary;
    if let (Some(mut conn), Some(run_id), None) = (redis, &run_id, &summary.abandoned) {
        if options.detach {
            eprintln!("payhost: run {run_id} detached; see `payhost jobs`");
        } else {
            let deadline = options.timeout.map(|t| started + t);
            // No flow runs in this process in Redis mode: a flow reported
            // here is a job the publisher could not queue (already counted
            // as failed), which the run's job set will never hold.
            let not_queued = summary.flows_run;
            let published = summary.flows_queued.saturating_sub(not_queued);
            let jobs = runtime
                .block_on(crate::queue::status::follow_run(
                    &mut conn,
                    run_id,
                    published as usize,
                    deadline,
                ))
                .context("lost Redis while following the run's jobs")?;
            if jobs.open > 0 {
                summary.abandoned = Some(format!(
                    "timed out with {} of the run's flow jobs unfinished",
                    jobs.open
                ));
            }
            summary.flows_run = (jobs.done + jobs.dead) as u64;
            summary.flows_missing += jobs.missing as u64;
            summary.flows_failed += jobs.dead as u64;
            summary.remote = Some(jobs.describe(run_id));
        }
    }
    executor.close();
    if summary.abandoned.is_none() {
        pool.shutdown();
    }
    // Abandoned work may still hold tasks; drop the runtime without waiting.
    runtime.shutdown_background();
    Ok(summary)
}

fn run_script(
    dispatcher: Dispatcher,
    path: PathBuf,
    source: String,
    limits: ScriptLimits,
    deadline: Option<std::time::Instant>,
    token: Token,
) {
    let host = match ScriptHost::new(dispatcher) {
        Ok(host) => host,
        Err(err) => {
            token.report(Event::ScriptFailed(err.to_string()));
            return;
        }
    };
    let engine = script_engine(&host, &limits);
    host.set_current(Some(token.clone()));
    host.set_deadline(deadline);
    host.set_waits_for_flows(true);
    let result = engine
        .compile(&source)
        .map_err(|e| e.to_string())
        .and_then(|mut ast| {
            ast.set_source(path.display().to_string());
            engine.run_ast(&ast).map_err(|e| e.to_string())
        });
    host.set_deadline(None);
    host.set_current(None);
    if let Err(error) = result {
        eprintln!("payhost: {}: {error}", path.display());
        token.report(Event::ScriptFailed(format!("{}: {error}", path.display())));
    }
}
