//! The `payhost` command line: argument parsing only; the work is in the library.
//!
//! `run` and `worker` both host flows, so they share one set of flag blocks
//! ([`FlowArgs`], which holds [`PluginArgs`] and [`HttpArgs`]) and the code
//! that turns them into library configuration. No default is written here:
//! each flag shows the library's own default (`HttpConfig::default()`,
//! `SandboxLimits::default()`, `ScriptLimits::default()`, the constants in
//! `payhost::run`), so the flag and the library cannot drift apart. Only
//! defaults that exist for the command line alone (`--timeout`, the Redis
//! flags, `--flow-threads` of a worker, the `jobs` report) are written as literals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};
use payhost::flow::ScriptLimits;
use payhost::host::{self, HostConfig};
use payhost::http::HttpConfig;
use payhost::plugin::{ComponentCache, Plugin, SandboxLimits};
use payhost::queue::redis::RedisConfig;
use payhost::run::{self as run_cmd, RunOptions, run};
use payhost::serve::{ServeLimits, ServeOptions, run_serve};
use payhost::settings::{Settings, SettingsSource, parse_set};
use payhost::worker::{WorkerOptions, run_worker};

#[derive(Parser)]
#[command(
    name = "payhost",
    version,
    about = "Run payment-flow scripts against sandboxed provider plugins",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script; wait for every request and flow it causes.
    Run(RunArgs),
    /// Run the flow jobs Redis holds for one worker id.
    Worker(WorkerArgs),
    /// Receive the provider's signed webhooks; run a flow per event.
    Serve(ServeArgs),
    /// Show flow jobs in Redis (counts and recent failures, one run, one
    /// job, the dead letters); replay or purge dead jobs.
    Jobs(JobsArgs),
    /// Inspect a plugin without sending anything; publish a version to a
    /// fleet of workers, or roll the fleet back.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Args)]
struct RedisArgs {
    /// Seconds an unacknowledged job may sit before another worker takes it.
    #[arg(long, default_value_t = 30.0)]
    lease: f64,
    /// Deliveries of a job before it goes to the dead-letter stream.
    #[arg(long, default_value_t = 5)]
    max_deliveries: u32,
    /// Environment variable holding the job key: published jobs are signed
    /// with it (HMAC-SHA256), and a worker with a key runs only signed jobs.
    #[arg(long, value_name = "NAME")]
    job_key_env: Option<String>,
    /// Seconds finished job records (done, missing, dead) are kept [default: 7 days].
    #[arg(long, default_value_t = 7.0 * 24.0 * 3600.0, hide_default_value = true)]
    retention: f64,
}

impl RedisArgs {
    fn config(&self, url: String) -> anyhow::Result<RedisConfig> {
        Ok(RedisConfig {
            url,
            lease: Duration::from_secs_f64(self.lease.max(0.1)),
            max_deliveries: self.max_deliveries.max(1),
            job_key: self
                .job_key_env
                .as_deref()
                .map(payhost::queue::trust::JobKey::from_env)
                .transpose()?,
            retention: positive_seconds("retention", self.retention)?,
        })
    }
}

#[derive(Args)]
struct WorkerArgs {
    /// Redis URL, e.g. redis://127.0.0.1:6379/.
    #[arg(long, env = "PAYHOST_REDIS")]
    redis: String,
    /// The worker id whose jobs to run (the first argument of `*_async`).
    #[arg(long)]
    worker_id: String,
    #[command(flatten)]
    flow: FlowArgs,
    /// Threads that run flow scripts: jobs running at once (the worker holds
    /// up to twice as many, and at least 64, reading the next batch ahead; a
    /// job whose flow has run and whose requests are in flight waits apart,
    /// up to --max-in-flight of them) [default: one per core, at least 2].
    #[arg(long, alias = "concurrency")]
    flow_threads: Option<usize>,
    #[command(flatten)]
    queue: RedisArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Args)]
struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464
    /// (port 0 picks a free one; the bound address is printed).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    /// Turns recording on in `host` when metrics are served; the address.
    fn apply(&self, host: &mut HostConfig) -> Option<std::net::SocketAddr> {
        if self.metrics_listen.is_some() {
            host.metrics = payhost::metrics::Metrics::enabled();
        }
        self.metrics_listen
    }
}

/// `payhost jobs`: a view (counts by default, or `--run`, `--job`,
/// `--dead`), or a `replay`/`purge` of dead jobs.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the bound address is
    /// printed).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    flow: FlowArgs,
    /// The worker id event flows run as (and, with --redis, whose
    /// `payhost worker`s run them).
    #[arg(long, default_value = host::DEFAULT_WORKER_ID)]
    worker_id: String,
    /// Threads that run event flows (embedded queue) [default: one per
    /// core, at least 2].
    #[arg(long, alias = "workers")]
    flow_threads: Option<usize>,
    /// Queue events in Redis for `payhost worker`s instead of running them
    /// here; a delivery is acknowledged once Redis holds its events.
    #[arg(long, env = "PAYHOST_REDIS")]
    redis: Option<String>,
    #[command(flatten)]
    queue: RedisArgs,
    /// Refuse deliveries signed more than this many seconds ago (0: no check).
    #[arg(long, default_value_t = ServeLimits::default().tolerance_secs)]
    tolerance: u64,
    /// Largest webhook body accepted, in bytes.
    #[arg(long, default_value_t = ServeLimits::default().max_body)]
    max_body: usize,
    /// Seconds a client has to send its request headers, and again its body.
    #[arg(long, default_value_t = ServeLimits::default().header_timeout.as_secs_f64())]
    client_timeout: f64,
    /// Event ids the embedded queue remembers to run each event once.
    #[arg(long, default_value_t = ServeLimits::default().dedupe_window)]
    dedupe_window: usize,
    /// Threads verifying deliveries (each with its own plugin instance).
    #[arg(long, default_value_t = ServeLimits::default().webhook_threads)]
    webhook_threads: usize,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct JobsArgs {
    #[command(subcommand)]
    action: Option<JobsAction>,
    /// Redis URL.
    #[arg(long, env = "PAYHOST_REDIS", global = true)]
    redis: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Only this worker id [default: every worker id seen].
    #[arg(long, conflicts_with_all = ["run", "job"])]
    worker_id: Option<String>,
    /// How many recent failures to list per worker id.
    #[arg(long, default_value_t = 10)]
    failures: usize,
    /// Show one run's jobs (the id `payhost run --redis` prints).
    #[arg(long, value_name = "RUN_ID", group = "view")]
    run: Option<String>,
    /// Show one job: status, attempts, last error, flow, ids, times, and a
    /// payload summary (size and top-level keys, never values).
    #[arg(long, value_name = "JOB_ID", group = "view")]
    job: Option<String>,
    /// List dead letters: job id, flow, attempts, last error.
    #[arg(long, group = "view")]
    dead: bool,
    /// With --dead: the newest letters shown per worker id.
    #[arg(long, default_value_t = 100, requires = "dead")]
    limit: usize,
}

#[derive(Subcommand)]
enum JobsAction {
    /// Re-queue dead jobs (attempts start again from 0) and print what was
    /// replayed; jobs that are not dead are left alone.
    Replay(JobSelection),
    /// Delete dead jobs (record and dead letter) and print what was purged;
    /// jobs that are not dead are left alone.
    Purge(JobSelection),
}

/// Which dead jobs: by id, a run's, or every one of a worker id.
#[derive(Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["jobs", "run", "all"])))]
struct JobSelection {
    /// This job (repeatable).
    #[arg(long = "job", value_name = "JOB_ID", conflicts_with_all = ["run", "all"])]
    jobs: Vec<String>,
    /// The dead jobs of this run.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "all")]
    run: Option<String>,
    /// Every dead letter of --worker-id (with purge, also letters of
    /// refused entries and expired records).
    #[arg(long, requires = "worker_id")]
    all: bool,
    /// The worker id for --all.
    #[arg(long, requires = "all")]
    worker_id: Option<String>,
}

impl JobSelection {
    fn selection(self) -> anyhow::Result<payhost::queue::replay::Selection> {
        use payhost::queue::replay::Selection;
        let check = check_id;
        Ok(match (self.run, self.worker_id) {
            (Some(run), _) => {
                check("--run", &run)?;
                Selection::Run(run)
            }
            (None, Some(worker)) => {
                check("--worker-id", &worker)?;
                Selection::Worker(worker)
            }
            (None, None) => {
                for id in &self.jobs {
                    check("--job", id)?;
                }
                Selection::Jobs(self.jobs)
            }
        })
    }
}

/// Where a provider's settings come from, for every command that loads a
/// plugin to use it.
#[derive(Args)]
struct SettingsArgs {
    /// A provider setting, `name=value` (repeatable; not for secrets). Also
    /// read from <PROVIDER>_<NAME> in the environment, and from --settings.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// A JSON file of provider settings: {"name": "value", ...}.
    #[arg(long = "settings", value_name = "FILE")]
    file: Option<PathBuf>,
}

impl SettingsArgs {
    /// The source, with `secret_env` for the auth scheme's primary secret.
    fn source(&self, secret_env: Option<String>) -> SettingsSource {
        SettingsSource {
            set: self.set.clone(),
            file: self.file.clone(),
            secret_env,
            shared: false,
        }
    }
}

/// What `run` and `worker` share: the plugin and its sandbox, the flows, the
/// provider and how requests reach it, and how long a stop may take.
#[derive(Args)]
struct FlowArgs {
    /// A provider plugin (a WebAssembly component), or a directory of them;
    /// repeat for several providers in one process.
    #[arg(
        long = "plugin",
        env = "PAYHOST_PLUGIN",
        value_delimiter = ',',
        required = true
    )]
    plugin_paths: Vec<PathBuf>,
    #[command(flatten)]
    plugin: PluginArgs,
    /// Directory holding the flow scripts.
    #[arg(long, default_value = host::DEFAULT_FLOWS_DIR)]
    flows: PathBuf,
    /// Provider base URL [default: the plugin's]; `NAME=URL` for provider
    /// NAME (repeatable; required form with several plugins).
    #[arg(long = "base-url", env = "PAYHOST_BASE_URL", value_delimiter = ',')]
    base_urls: Vec<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Environment variable holding the auth scheme's primary secret
    /// [default: <PROVIDER>_<SETTING>, e.g. STRIPE_SECRET_KEY].
    #[arg(long)]
    secret_env: Option<String>,
    /// Seconds one flow script may run before it is stopped.
    #[arg(long, default_value_t = ScriptLimits::default().flow_timeout.as_secs_f64())]
    flow_timeout: f64,
    #[command(flatten)]
    http: HttpArgs,
    /// After Ctrl-C (worker and serve: also SIGTERM), seconds work in flight may
    /// take to finish.
    #[arg(long, default_value_t = run_cmd::DEFAULT_GRACE.as_secs_f64())]
    grace: f64,
}

impl FlowArgs {
    /// The host these flags describe (ids and flow threads are the
    /// command's own).
    fn host_config(&self) -> anyhow::Result<HostConfig> {
        let mut config = HostConfig::with_plugins(self.plugin_paths.clone());
        config.sandbox = self.plugin.limits();
        config.cache = self.plugin.cache();
        config.flows_dir = self.flows.clone();
        config.script_limits = self.script_limits()?;
        for url in &self.base_urls {
            match url.split_once('=') {
                // `stripe=http://...`; a URL itself has no `=` before its
                // scheme.
                Some((name, url)) if !name.contains(':') && !name.contains('/') => config
                    .provider
                    .base_urls
                    .push((name.to_string(), url.to_string())),
                _ if config.provider.base_url.is_some() => {
                    anyhow::bail!("--base-url given twice without a provider name: use NAME=URL")
                }
                _ => config.provider.base_url = Some(url.clone()),
            }
        }
        config.provider.http = self.http.config()?;
        config.provider.settings = self.settings.source(self.secret_env.clone());
        Ok(config)
    }

    fn script_limits(&self) -> anyhow::Result<ScriptLimits> {
        Ok(ScriptLimits {
            // A flow gets at least a millisecond: 0 is not "no limit".
            flow_timeout: seconds("flow-timeout", self.flow_timeout)?.max(Duration::from_millis(1)),
            ..ScriptLimits::default()
        })
    }

    fn grace(&self) -> anyhow::Result<Duration> {
        seconds("grace", self.grace)
    }
}

/// How the HTTP executor sends requests, for `run` and `worker` alike.
/// Defaults are `HttpConfig::default()`'s.
#[derive(Args)]
struct HttpArgs {
    /// Requests in flight at most; scripts and flows wait beyond that.
    #[arg(long, default_value_t = HttpConfig::default().max_in_flight)]
    max_in_flight: usize,
    /// Retries per request (connection errors, 409, 5xx).
    #[arg(long, default_value_t = HttpConfig::default().retry.max_retries)]
    max_retries: u32,
    /// Connect timeout in seconds.
    #[arg(long, default_value_t = HttpConfig::default().connect_timeout.as_secs_f64())]
    connect_timeout: f64,
    /// Total timeout per attempt in seconds.
    #[arg(long, default_value_t = HttpConfig::default().total_timeout.as_secs_f64())]
    request_timeout: f64,
    /// Largest response body accepted, in bytes.
    #[arg(long, default_value_t = HttpConfig::default().max_response_bytes)]
    max_response_bytes: usize,
    /// HTTP version: `auto` (HTTP/2 where the provider offers it over TLS,
    /// else HTTP/1.1), `1.1`, or `2` (also on a cleartext http:// base URL,
    /// without negotiating: h2c).
    #[arg(long, value_name = "auto|1.1|2", default_value = "auto")]
    http_version: payhost::http::HttpVersion,
}

impl HttpArgs {
    fn config(&self) -> anyhow::Result<HttpConfig> {
        let mut config = HttpConfig {
            // No permits would mean no request is ever sent.
            max_in_flight: self.max_in_flight.max(1),
            connect_timeout: positive_seconds("connect-timeout", self.connect_timeout)?,
            total_timeout: positive_seconds("request-timeout", self.request_timeout)?,
            max_response_bytes: self.max_response_bytes,
            version: self.http_version,
            ..HttpConfig::default()
        };
        config.retry.max_retries = self.max_retries;
        Ok(config)
    }
}

/// `value` seconds of flag `--flag`; a negative, infinite or NaN number is an
/// error naming the flag (`Duration` would panic on it).
fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow!("--{flag} {value}: give a number of seconds, 0 or more"))
}

/// Like [`seconds`], for flags where 0 would make every attempt fail.
fn positive_seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow!("--{flag} {value}: give a positive number of seconds"))
}

#[derive(Args)]
struct PluginArgs {
    /// Directory for compiled plugins [default: ~/.cache/payhost].
    #[arg(long, env = "PAYHOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile the plugin every time.
    #[arg(long)]
    no_cache: bool,
    /// Memory cap per plugin instance, in MiB.
    #[arg(long, default_value_t = SandboxLimits::default().memory_bytes >> 20)]
    plugin_memory_mib: usize,
    /// Deadline per plugin call, in milliseconds of wall-clock time (not CPU
    /// time). A plugin cannot sleep or wait, so this bounds how long it runs.
    #[arg(long, default_value_t = SandboxLimits::default().call_timeout.as_millis() as u64)]
    plugin_timeout_ms: u64,
}

impl PluginArgs {
    fn cache(&self) -> ComponentCache {
        if self.no_cache {
            ComponentCache::disabled()
        } else {
            ComponentCache::new(self.cache_dir.clone())
        }
    }

    fn limits(&self) -> SandboxLimits {
        SandboxLimits {
            memory_bytes: self.plugin_memory_mib << 20,
            call_timeout: Duration::from_millis(self.plugin_timeout_ms),
            ..SandboxLimits::default()
        }
    }

    fn load(&self, path: &std::path::Path) -> anyhow::Result<Plugin> {
        Ok(Plugin::load(path, self.limits(), &self.cache())?)
    }
}

#[derive(Args)]
struct RunArgs {
    /// The Rhai script to run.
    script: PathBuf,
    #[command(flatten)]
    flow: FlowArgs,
    /// Give up after this many seconds (exit non-zero); the script itself
    /// is stopped then too. 0: wait as long as it takes.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Worker id used when a script passes none.
    #[arg(long, default_value = host::DEFAULT_WORKER_ID)]
    worker_id: String,
    /// Context id used when a script passes none.
    #[arg(long, default_value = host::DEFAULT_CONTEXT_ID)]
    context_id: String,
    /// Threads that run flow scripts [default: one per core; 1 with --redis,
    /// where flows run in `payhost worker`s].
    #[arg(long, alias = "workers")]
    flow_threads: Option<usize>,
    /// Send flow jobs through Redis (run them with `payhost worker`).
    #[arg(long, env = "PAYHOST_REDIS")]
    redis: Option<String>,
    /// With --redis: exit once the script's requests are queued.
    #[arg(long, requires = "redis")]
    detach: bool,
    #[command(flatten)]
    queue: RedisArgs,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print the provider, its objects, operations and fields.
    Info {
        /// Path to the plugin.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plugin: PluginArgs,
    },
    /// Conformance checks for a plugin: contract, names, every operation
    /// built from minimal parameters and passed through the outbound
    /// policy, required fields refused when missing, and `parse-response`
    /// on junk and every transport failure, all within the sandbox limits.
    /// Prints a table; exits non-zero on any failure.
    Check {
        /// Path to the plugin.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        plugin: PluginArgs,
    },
    /// Check a plugin version (as `plugin check` does), store it in Redis
    /// by content hash and make it current: every `payhost worker` (and
    /// `payhost serve --redis`) on that Redis switches to it within a few
    /// seconds. A plugin failing a check is refused and nothing changes.
    Publish {
        /// Path to the plugin.
        path: PathBuf,
        /// Redis URL, e.g. redis://127.0.0.1:6379/.
        #[arg(long, env = "PAYHOST_REDIS")]
        redis: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        plugin: PluginArgs,
    },
    /// Return the fleet to the version of a provider that was current
    /// before the current one (repeat to go further back).
    Rollback {
        /// Redis URL, e.g. redis://127.0.0.1:6379/.
        #[arg(long, env = "PAYHOST_REDIS")]
        redis: String,
        /// The provider whose plugin to roll back, e.g. `stripe`.
        #[arg(long)]
        provider: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the HTTP request the plugin builds, without sending it.
    Request {
        path: PathBuf,
        object: String,
        operation: String,
        /// Parameters as a JSON object (`id` and `parent` are the object's
        /// and its parent's id where the operation needs them).
        #[arg(default_value = "{}")]
        params_json: String,
        /// Base URL to show [default: the plugin's].
        #[arg(long)]
        base_url: Option<String>,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        plugin: PluginArgs,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => return usage_error(usage),
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            payhost::say!("payhost: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A usage error, `--help` or `--version`: at a terminal, clap prints it
/// (in colour); otherwise it is written with one call, as every other
/// operator line is (see `payhost::console`), not in clap's pieces.
fn usage_error(usage: clap::Error) -> ExitCode {
    let code = usage.exit_code();
    let to_stderr = usage.use_stderr();
    let terminal = match to_stderr {
        true => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        false => std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    if terminal {
        usage.exit();
    }
    let text = usage.render().to_string();
    match to_stderr {
        true => payhost::console::text(&text),
        false => {
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// `--flow-threads` of `payhost worker` and `payhost serve`: as given (at
/// least 1), else [`payhost::worker::default_flow_threads`].
fn flow_threads(given: Option<usize>) -> usize {
    given
        .unwrap_or_else(payhost::worker::default_flow_threads)
        .max(1)
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let flow = &args.flow;
            let mut host = flow.host_config()?;
            host.provider.worker_id = args.worker_id;
            host.provider.context_id = args.context_id;
            match (args.flow_threads, &args.redis) {
                (Some(n), _) => host.flow_threads = n,
                // Flows run in `payhost worker`s; here threads only classify.
                (None, Some(_)) => host.flow_threads = 1,
                (None, None) => {}
            }
            let mut options = RunOptions::new(args.script, host);
            options.grace = flow.grace()?;
            options.timeout = (args.timeout > 0.0)
                .then(|| seconds("timeout", args.timeout))
                .transpose()?;
            options.redis = args.redis.map(|url| args.queue.config(url)).transpose()?;
            options.detach = args.detach;
            let summary = run(options)?;
            payhost::say!("{summary}");
            Ok(if summary.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Worker(args) => {
            let flow = &args.flow;
            let mut host = flow.host_config()?;
            host.provider.worker_id = args.worker_id;
            host.flow_threads = flow_threads(args.flow_threads);
            let metrics_listen = args.metrics.apply(&mut host);
            run_worker(WorkerOptions {
                host,
                redis: args.queue.config(args.redis)?,
                grace: flow.grace()?,
                metrics_listen,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let flow = &args.flow;
            let mut host = flow.host_config()?;
            anyhow::ensure!(
                payhost::queue::keys::is_valid_worker_id(&args.worker_id),
                "invalid --worker-id {:?}: use letters, digits, '-', '_' and '.'",
                args.worker_id
            );
            host.provider.worker_id = args.worker_id;
            // With Redis, `payhost worker`s run the event flows; here the
            // flow threads only take the outcomes of requests (none).
            host.flow_threads = match &args.redis {
                Some(_) => 1,
                None => flow_threads(args.flow_threads),
            };
            let client_timeout = positive_seconds("client-timeout", args.client_timeout)?;
            let limits = ServeLimits {
                tolerance_secs: args.tolerance,
                max_body: args.max_body,
                header_timeout: client_timeout,
                body_timeout: client_timeout,
                dedupe_window: args.dedupe_window,
                webhook_threads: args.webhook_threads.max(1),
                ..ServeLimits::default()
            };
            let metrics_listen = args.metrics.apply(&mut host);
            run_serve(
                ServeOptions {
                    host,
                    listen: args.listen,
                    redis: args.redis.map(|url| args.queue.config(url)).transpose()?,
                    limits,
                    grace: flow.grace()?,
                    metrics_listen,
                },
                |_| {},
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(args) => jobs(args),
        Command::Plugin(PluginCommand::Info { path, json, plugin }) => {
            let plugin = plugin.load(&path)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&payhost::inspect::info_json(&plugin))?
                );
            } else {
                print!("{}", payhost::inspect::info_table(&plugin));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Check {
            path,
            json,
            settings,
            plugin,
        }) => {
            let source = settings.source(None);
            let report = payhost::check::run(
                || Plugin::load(&path, plugin.limits(), &plugin.cache()),
                &source,
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&report.json())?);
            } else {
                println!("payhost plugin check {}\n", path.display());
                print!("{}", report.table());
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plugin(PluginCommand::Publish {
            path,
            redis,
            json,
            settings,
            plugin,
        }) => publish(&path, &redis, json, &settings, &plugin),
        Command::Plugin(PluginCommand::Rollback {
            redis,
            provider,
            json,
        }) => {
            let rolled = fleet_runtime()?.block_on(async {
                let mut conn = payhost::queue::redis::connect(&redis).await?;
                payhost::fleet::rollback(&mut conn, &provider).await
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rolled)?);
            } else {
                print!("{}", payhost::fleet::render_rolled_back(&rolled));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Request {
            path,
            object,
            operation,
            params_json,
            base_url,
            settings,
            plugin,
        }) => {
            let plugin = plugin.load(&path)?;
            let source = settings.source(None);
            let settings = Settings::resolve(plugin.info(), &source, |v| std::env::var(v).ok())
                .map_err(anyhow::Error::msg)?;
            let plugin = plugin.configured(settings.public)?;
            print!(
                "{}",
                payhost::inspect::build_request_text(
                    &plugin,
                    &object,
                    &operation,
                    &params_json,
                    base_url.as_deref()
                )?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fleet_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `payhost plugin publish`: load and check the file as `plugin check` does
/// (refusing it on any failure), then store it and make it current.
fn publish(
    path: &std::path::Path,
    redis: &str,
    json: bool,
    settings: &SettingsArgs,
    args: &PluginArgs,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("cannot read plugin {}: {e}", path.display()))?;
    let plugin = Plugin::from_bytes(path, &bytes, args.limits(), &args.cache())?;
    let report = payhost::check::run(|| Ok(plugin.clone()), &settings.source(None));
    if !report.passed() {
        payhost::console::text(&report.table());
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        anyhow::bail!(
            "refusing to publish {}: {failed} check(s) failed (above); nothing changed",
            path.display()
        );
    }
    let published = fleet_runtime()?.block_on(async {
        let mut conn = payhost::queue::redis::connect(redis).await?;
        payhost::fleet::publish(&mut conn, &plugin, &bytes).await
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&published)?);
    } else {
        print!("{}", payhost::fleet::render_published(&published));
    }
    Ok(ExitCode::SUCCESS)
}

/// Worker, run and job ids become part of Redis key names: `--flag id` must
/// be one (see `payhost::queue::keys::is_valid_worker_id`).
fn check_id(flag: &str, id: &str) -> anyhow::Result<()> {
    if payhost::queue::keys::is_valid_worker_id(id) {
        Ok(())
    } else {
        Err(anyhow!(
            "{flag} {id:?}: ids only hold letters, digits, '-', '_' and '.'"
        ))
    }
}

/// `payhost jobs`: one view, or one replay/purge, printed as text or JSON.
fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    use payhost::queue::replay::{self, Action};
    use payhost::queue::{status, view};
    let url = args
        .redis
        .ok_or_else(|| anyhow!("payhost jobs needs --redis URL (or PAYHOST_REDIS)"))?;
    for (flag, id) in [
        ("--job", &args.job),
        ("--run", &args.run),
        ("--worker-id", &args.worker_id),
    ] {
        if let Some(id) = id {
            check_id(flag, id)?;
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let print = |value: &dyn ErasedJson, text: String| -> anyhow::Result<()> {
        if args.json {
            println!("{}", value.pretty()?);
        } else {
            print!("{text}");
        }
        Ok(())
    };
    runtime.block_on(async {
        let mut conn = payhost::queue::redis::connect(&url).await?;
        if let Some(action) = args.action {
            let (action, selection) = match action {
                JobsAction::Replay(s) => (Action::Replay, s.selection()?),
                JobsAction::Purge(s) => (Action::Purge, s.selection()?),
            };
            let store = payhost::queue::jobs::JobStore::new(conn.clone());
            let report = replay::act(&store, &mut conn, action, &selection).await?;
            print(&report, replay::render_action(&report))?;
        } else if let Some(job_id) = &args.job {
            let job = view::job_detail(&mut conn, job_id).await?.ok_or_else(|| {
                anyhow!("no job {job_id} in Redis (purged, expired after the retention, or never queued)")
            })?;
            print(&job, view::render_job(&job))?;
        } else if let Some(run_id) = &args.run {
            let run = view::run_view(&mut conn, run_id).await?.ok_or_else(|| {
                anyhow!("no run {run_id} in Redis (it queued no job, or its job set expired after the retention)")
            })?;
            print(&run, view::render_run(&run))?;
        } else if args.dead {
            let list =
                view::dead_letters(&mut conn, args.worker_id.as_deref(), Some(args.limit.max(1)))
                    .await?;
            print(&list, view::render_dead(&list))?;
        } else {
            let workers =
                status::report(&mut conn, args.worker_id.as_deref(), args.failures).await?;
            print(&workers, status::render(&workers))?;
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Every `payhost jobs` answer is printed by one closure, as pretty JSON or
/// as its text; the closure takes them through this object-safe trait.
trait ErasedJson {
    fn pretty(&self) -> serde_json::Result<String>;
}

impl<T: serde::Serialize> ErasedJson for T {
    fn pretty(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}
