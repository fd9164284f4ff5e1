//! `cargo xtask`: the project's own tasks, so that a fresh machine (and CI)
//! needs nothing but the Rust toolchain, python3, node and apt.
//!
//! ```text
//! cargo xtask setup            install what the end-to-end tests need (idempotent)
//! cargo xtask plugins          build every plugin crate (guest-*, plugins/*, tests/plugins/*) to target/plugins
//! cargo xtask new-plugin NAME  start a provider plugin in plugins/NAME from the template
//! cargo xtask test [ARGS]      fmt, clippy, setup, plugins, build payhost, cargo test --workspace ARGS
//! cargo xtask ci               what .ci/run calls: `test --no-fail-fast`
//! cargo xtask demo             run flows/main.rhai against a local localstripe
//! cargo xtask demo adyen       run flows/adyen/main.rhai against prism serving Adyen's spec
//! cargo xtask bench [ARGS]     setup, plugins, release builds, then the benchmark suite
//! cargo xtask env              print the PAYHOST_* variables, for `eval "$(cargo xtask env)"`
//! ```
//!
//! The end-to-end tests (crate `payhost-e2e`, tests/) find everything through
//! environment variables that `test` sets; see [`TestEnv`]. Each subcommand is
//! one function below; the steps live in their own modules: `setup` (tools,
//! Redis, the Python venv, npm packages), `compile` (cargo builds whose artifacts
//! we need to find), `new_plugin` (the plugin template), `demo` (the local
//! localstripe, or prism serving Adyen's spec), `process` (running commands
//! with errors that name what failed).

mod compile;
mod demo;
mod new_plugin;
mod process;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::process::{cargo, run};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup          install the wasm32-wasip2 target, rustfmt/clippy, redis-server,
                 the Python venv (.venv) and the npm packages (tests/servers)
  plugins        build every plugin crate (guest-*/, plugins/*/, tests/plugins/*/ with a
                 cdylib) for wasm32-wasip2 into target/plugins
  new-plugin NAME
                 create plugins/NAME, a provider plugin to start from (see
                 docs/writing-a-plugin.md)
  test [ARGS]    cargo fmt --check, clippy, setup, plugins, build payhost, then
                 cargo test --workspace ARGS with the PAYHOST_* variables set
  ci             what .ci/run calls: test --no-fail-fast
  demo           run flows/main.rhai with the Stripe plugin against localstripe on 127.0.0.1
  demo adyen     run flows/adyen/main.rhai with the Adyen plugin against prism serving
                 Adyen's Checkout API definition (tests/data/adyen) on 127.0.0.1
  bench [ARGS]   setup, plugins, release builds of payhost and payhost-bench, then every
                 benchmark (bench/): one table, written to target/bench/results.json;
                 ARGS go to payhost-bench (e.g. --only e2e,rss, --quick, --rounds 7);
                 --check compares the results with this machine's baseline in
                 bench/baselines/ (by CPU model and cores) and fails if a figure
                 regressed beyond its rounds' spread (--check PATH: another file)
  env            print `export PAYHOST_...=...` lines for running cargo test by hand";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let workspace = Workspace::locate();
    let outcome = match command.as_str() {
        "setup" => no_args(command, rest).and_then(|()| setup(&workspace)),
        "plugins" => no_args(command, rest).and_then(|()| plugins(&workspace).map(drop)),
        "new-plugin" => new_plugin(&workspace, rest),
        "test" => test(&workspace, rest),
        "ci" => no_args(command, rest).and_then(|()| ci(&workspace)),
        "env" => no_args(command, rest).and_then(|()| env(&workspace)),
        "bench" => bench(&workspace, rest),
        "demo" => {
            // The demo's exit code is payhost's own.
            return match demo(&workspace, rest) {
                Ok(code) => ExitCode::from(code),
                Err(err) => report(err),
            };
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err),
    }
}

fn report(err: anyhow::Error) -> ExitCode {
    eprintln!("xtask: error: {err:#}");
    ExitCode::FAILURE
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        bail!("`cargo xtask {command}` takes no arguments (got {rest:?})")
    }
}

/// `cargo xtask setup`: see [`setup::install`].
fn setup(workspace: &Workspace) -> Result<()> {
    setup::install(workspace)
}

/// `cargo xtask plugins`: every plugin component, copied to target/plugins.
fn plugins(workspace: &Workspace) -> Result<PathBuf> {
    let built = compile::plugins(workspace)?;
    let names: Vec<&str> = built.iter().map(|p| p.name.as_str()).collect();
    println!(
        "plugins: {} component(s) in {}: {}",
        built.len(),
        workspace.plugins_dir().display(),
        names.join(", ")
    );
    Ok(workspace.plugins_dir())
}

/// `cargo xtask new-plugin NAME`: see [`new_plugin::create`].
fn new_plugin(workspace: &Workspace, args: &[String]) -> Result<()> {
    let [name] = args else {
        bail!("usage: cargo xtask new-plugin NAME (snake_case or kebab-case, e.g. acme-pay)");
    };
    new_plugin::create(workspace, name)?;
    println!("{}", new_plugin::next_steps(name));
    Ok(())
}

/// `cargo xtask test [ARGS]`: lint, prepare, then the whole workspace's tests.
fn test(workspace: &Workspace, cargo_test_args: &[String]) -> Result<()> {
    lint(workspace)?;
    let env = prepare(workspace)?;
    // `--workspace` would override a `-p NAME` given to narrow the run.
    let cargo_args = cargo_test_args
        .iter()
        .take_while(|arg| *arg != "--")
        .collect::<Vec<_>>();
    let narrowed = cargo_args
        .iter()
        .any(|arg| arg.starts_with("-p") || arg.starts_with("--package"));
    let scope = if narrowed { None } else { Some("--workspace") };
    let mut command = cargo();
    command
        .current_dir(&workspace.root)
        .arg("test")
        .args(scope)
        .args(cargo_test_args);
    println!("test: {}", process::describe(&command));
    env.apply(&mut command);
    run(&mut command, "cargo test")
}

/// `cargo xtask ci`: `test`, running every test binary even after a failure.
fn ci(workspace: &Workspace) -> Result<()> {
    test(workspace, &["--no-fail-fast".to_string()])
}

/// `cargo xtask env`: the variables `test` would set, as shell exports, after
/// making sure they point to something (setup, plugins, payhost built).
fn env(workspace: &Workspace) -> Result<()> {
    let env = prepare(workspace)?;
    for (name, value) in env.vars() {
        println!("export {name}={}", shell_quote(&value.to_string_lossy()));
    }
    Ok(())
}

/// `cargo xtask demo [adyen]`: returns payhost's exit code.
fn demo(workspace: &Workspace, args: &[String]) -> Result<u8> {
    let adyen = match args {
        [] => false,
        [provider] if provider == "adyen" => true,
        [provider] if provider == "stripe" => false,
        _ => bail!(
            "`demo` takes no argument, `stripe` or `adyen`; got {}",
            args.join(" ")
        ),
    };
    let env = prepare(workspace)?;
    if adyen {
        demo::run_adyen(workspace, &env)
    } else {
        demo::run(workspace, &env)
    }
}

/// `cargo xtask bench [ARGS]`: set-up and release builds, then the
/// `payhost-bench` binary with the paths it needs; it prints the table and
/// writes target/bench/results.json. A bare `--check` becomes `--check
/// bench/baselines` (the committed previous results, one per machine kind;
/// payhost-bench picks this machine's).
fn bench(workspace: &Workspace, bench_args: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    let bench_args = with_baseline(bench_args, &workspace.root.join("bench").join("baselines"));
    setup::install(workspace)?;
    let plugins_dir = plugins(workspace)?;
    let (payhost_bin, bench_bin) = compile::release_bench_bins(workspace)?;
    println!("build: payhost at {}", payhost_bin.display());
    let redis_server =
        process::which("redis-server").context("redis-server is not on PATH although setup ran")?;
    let redis_benchmark = process::which("redis-benchmark").context(
        "redis-benchmark is not on PATH (Debian's redis-tools, installed with redis-server)",
    )?;
    let mut command = Command::new(&bench_bin);
    command
        .current_dir(&workspace.root)
        .arg("--plugin")
        .arg(plugins_dir.join("stripe.wasm"))
        .arg("--payhost-bin")
        .arg(&payhost_bin)
        .arg("--redis-server")
        .arg(&redis_server)
        .arg("--redis-benchmark")
        .arg(&redis_benchmark)
        .arg("--out")
        .arg(workspace.target_dir.join("bench").join("results.json"))
        .args(&bench_args);
    println!("bench: {}", process::describe(&command));
    run(&mut command, "payhost-bench")?;
    println!(
        "bench: done in {:.0}s (set-up and builds included)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `bench_args` with a `--check` that names no file (last, or followed by
/// another flag) pointed at `baseline`.
fn with_baseline(bench_args: &[String], baseline: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(bench_args.len() + 1);
    let mut args = bench_args.iter().peekable();
    while let Some(arg) = args.next() {
        out.push(arg.clone());
        if arg == "--check" && args.peek().is_none_or(|next| next.starts_with("--")) {
            out.push(baseline.display().to_string());
        }
    }
    out
}

/// `cargo fmt --check`, then clippy with warnings denied: fail fast, before
/// the slow steps.
fn lint(workspace: &Workspace) -> Result<()> {
    println!("test: cargo fmt --check");
    run(
        cargo()
            .current_dir(&workspace.root)
            .args(["fmt", "--all", "--check"]),
        "cargo fmt --check (run `cargo fmt` to fix the formatting)",
    )?;
    println!("test: cargo clippy --workspace --all-targets -- -D warnings");
    run(
        cargo().current_dir(&workspace.root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
        "cargo clippy --workspace --all-targets -- -D warnings",
    )
}

/// Setup, plugins and the payhost binary: everything the tests point to.
fn prepare(workspace: &Workspace) -> Result<TestEnv> {
    setup::install(workspace)?;
    plugins(workspace)?;
    let payhost_bin = compile::payhost(workspace)?;
    println!("build: payhost at {}", payhost_bin.display());
    TestEnv::new(workspace, payhost_bin)
}

/// Where things are: the workspace root (found from this crate's own
/// manifest, so `cargo xtask` works from any directory) and cargo's target
/// directory.
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Workspace {
    fn locate() -> Workspace {
        // `cargo run` sets CARGO_MANIFEST_DIR for the process; prefer it to
        // the compile-time value, which goes stale when two checkouts share
        // one target directory.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .parent()
            .expect("xtask/ sits inside the workspace")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workspace { root, target_dir }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.target_dir.join("plugins")
    }

    pub fn servers_dir(&self) -> PathBuf {
        self.root.join("tests").join("servers")
    }

    pub fn venv_python(&self) -> PathBuf {
        // Not canonicalized: the venv's python must be started through the
        // venv's own path to see the venv's packages.
        self.root.join(".venv").join("bin").join("python")
    }
}

/// The contract between `cargo xtask test` and the end-to-end tests
/// (tests/src/lib.rs reads these). All paths are absolute.
///
/// | variable               | points to                                             |
/// |------------------------|-------------------------------------------------------|
/// | `PAYHOST_BIN`          | the `payhost` binary (debug build)                    |
/// | `PAYHOST_PLUGINS`      | target/plugins: `stripe.wasm`, `<test plugin>.wasm`   |
/// | `PAYHOST_PYTHON`       | .venv/bin/python, with stripe and localstripe         |
/// | `PAYHOST_SERVERS`      | tests/servers: wrappers, oracle, node_modules         |
/// | `PAYHOST_REDIS_SERVER` | the `redis-server` binary                             |
pub struct TestEnv {
    payhost_bin: PathBuf,
    plugins: PathBuf,
    python: PathBuf,
    servers: PathBuf,
    redis_server: PathBuf,
}

impl TestEnv {
    fn new(workspace: &Workspace, payhost_bin: PathBuf) -> Result<TestEnv> {
        let redis_server = process::which("redis-server")
            .context("redis-server is not on PATH although setup ran")?;
        Ok(TestEnv {
            payhost_bin,
            plugins: workspace.plugins_dir(),
            python: workspace.venv_python(),
            servers: workspace.servers_dir(),
            redis_server,
        })
    }

    pub fn vars(&self) -> [(&'static str, &Path); 5] {
        [
            ("PAYHOST_BIN", self.payhost_bin.as_path()),
            ("PAYHOST_PLUGINS", self.plugins.as_path()),
            ("PAYHOST_PYTHON", self.python.as_path()),
            ("PAYHOST_SERVERS", self.servers.as_path()),
            ("PAYHOST_REDIS_SERVER", self.redis_server.as_path()),
        ]
    }

    pub fn apply(&self, command: &mut Command) {
        for (name, value) in self.vars() {
            command.env(name, value);
        }
    }

    pub fn payhost_bin(&self) -> &Path {
        &self.payhost_bin
    }

    pub fn python(&self) -> &Path {
        &self.python
    }
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_check_points_at_the_committed_baseline() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let baseline = Path::new("/repo/bench/baselines");
        assert_eq!(
            with_baseline(&args(&["--check", "--only", "e2e"]), baseline),
            args(&["--check", "/repo/bench/baselines", "--only", "e2e"])
        );
        assert_eq!(
            with_baseline(&args(&["--only", "e2e", "--check"]), baseline),
            args(&["--only", "e2e", "--check", "/repo/bench/baselines"])
        );
        assert_eq!(
            with_baseline(&args(&["--check", "old.json"]), baseline),
            args(&["--check", "old.json"])
        );
    }
}
