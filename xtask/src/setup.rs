//! `cargo xtask setup`: everything the build and the end-to-end tests need
//! beyond the Rust toolchain, installed by the project's own files.
//!
//! Each step first checks whether its thing is already there (cheaply: a
//! directory listing, a stamp file), so a second run takes well under a
//! second, and prints one line saying what it found or did. A failing step
//! stops setup with an error naming the step.
//!
//! 1. the `wasm32-wasip2` target (rustup), for the plugins;
//! 2. the `rustfmt` and `clippy` components, for `cargo xtask test`;
//! 3. `redis-server` (Debian's package), for the Redis queue tests; any
//!    service the package starts is stopped, the tests start their own;
//! 4. `.venv/`, a project-local Python venv with tests/servers/requirements.txt
//!    (stripe-python for the encoding oracle, localstripe), rebuilt when that
//!    file changes (a fingerprint is kept in `.venv/.payhost-requirements`);
//! 5. `tests/servers/node_modules` from the committed package-lock.json
//!    (stripe-stateful-mock), re-installed when the lock changes.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::process::{fingerprint, is_root, output, run, which};

const WASM_TARGET: &str = "wasm32-wasip2";
const VENV_STAMP: &str = ".payhost-requirements";
const NPM_STAMP: &str = ".payhost-lock";

fn run_step(name: &str, step: impl FnOnce() -> Result<String>) -> Result<()> {
    let started = Instant::now();
    let what = step().with_context(|| format!("setup step `{name}` failed"))?;
    println!(
        "setup: {name}: {what} ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn install(workspace: &Workspace) -> Result<()> {
    run_step("wasm32-wasip2 target", wasm_target)?;
    run_step("rustfmt and clippy", rust_components)?;
    run_step("redis-server", redis_server)?;
    run_step("python venv", || python_venv(workspace))?;
    run_step("npm packages", || npm_packages(workspace))
}

fn rustup() -> Result<Command> {
    match which("rustup") {
        Some(path) => Ok(Command::new(path)),
        None => bail!("rustup is not on PATH; install the `{WASM_TARGET}` target by hand"),
    }
}

fn wasm_target() -> Result<String> {
    let installed = output(
        rustup()?.args(["target", "list", "--installed"]),
        "listing installed targets",
    )?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok("already installed".into());
    }
    run(
        rustup()?.args(["target", "add", WASM_TARGET]),
        "rustup target add",
    )?;
    Ok(format!("installed (rustup target add {WASM_TARGET})"))
}

fn rust_components() -> Result<String> {
    let installed = output(
        rustup()?.args(["component", "list", "--installed"]),
        "listing installed components",
    )?;
    // Lines look like `rustfmt-x86_64-unknown-linux-gnu`.
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|component| {
            !installed
                .lines()
                .any(|line| line.trim().starts_with(&format!("{component}-")))
        })
        .collect();
    if missing.is_empty() {
        return Ok("already installed".into());
    }
    run(
        rustup()?.args(["component", "add"]).args(&missing),
        "rustup component add",
    )?;
    Ok(format!(
        "installed (rustup component add {})",
        missing.join(" ")
    ))
}

fn redis_server() -> Result<String> {
    if let Some(path) = which("redis-server") {
        return Ok(format!("already installed ({})", path.display()));
    }
    let apt_get = |args: &[&str]| -> Result<()> {
        let mut command = if is_root() {
            Command::new("apt-get")
        } else if which("sudo").is_some() {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        } else {
            bail!(
                "redis-server is missing and installing it needs root: run `apt-get install redis-server` as root"
            )
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut command, &format!("apt-get {}", args.join(" ")))
    };
    apt_get(&["update", "-q"])?;
    apt_get(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "redis-server",
    ])?;
    stop_redis_service();
    let path =
        which("redis-server").context("apt-get installed redis-server but it is not on PATH")?;
    Ok(format!(
        "installed with apt-get ({}); its system service is stopped",
        path.display()
    ))
}

/// Debian's package starts a Redis on the default port where an init system
/// lets it. The tests start their own servers on free ports; stop that one
/// and keep it from starting again. Failures are fine: there may be no
/// service to stop.
fn stop_redis_service() {
    let quiet = |program: &str, args: &[&str]| {
        if let Some(path) = which(program) {
            let _ = Command::new(path)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    };
    quiet("service", &["redis-server", "stop"]);
    quiet("systemctl", &["disable", "--now", "redis-server"]);
    quiet("update-rc.d", &["redis-server", "disable"]);
}

fn python_venv(workspace: &Workspace) -> Result<String> {
    let requirements = workspace.servers_dir().join("requirements.txt");
    let wanted = fingerprint(&[&fs::read(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?]);
    let venv = workspace.root.join(".venv");
    let stamp = venv.join(VENV_STAMP);
    let python = workspace.venv_python();
    // `exists` follows the symlink: a venv whose base interpreter is gone is
    // rebuilt too.
    let present = python.exists() && stamp_matches(&stamp, &wanted);
    if present {
        return Ok("already up to date (.venv)".into());
    }
    let verb = if venv.exists() {
        fs::remove_dir_all(&venv)
            .with_context(|| format!("cannot remove the old {}", venv.display()))?;
        "recreated .venv (requirements.txt changed, or the venv was broken)"
    } else {
        "created .venv"
    };
    let base = which("python3").context("python3 is not on PATH")?;
    run(
        Command::new(base).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv .venv (on Debian's own python3 this needs `apt-get install python3-venv`)",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--requirement",
            ])
            .arg(&requirements),
        "pip install -r tests/servers/requirements.txt",
    )?;
    fs::write(&stamp, &wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(verb.to_string())
}

fn npm_packages(workspace: &Workspace) -> Result<String> {
    let dir = workspace.servers_dir();
    let manifest =
        fs::read(dir.join("package.json")).context("cannot read tests/servers/package.json")?;
    let lock_path = dir.join("package-lock.json");
    let lock = fs::read(&lock_path).ok();
    let wanted = fingerprint(&[&manifest, lock.as_deref().unwrap_or_default()]);
    let modules = dir.join("node_modules");
    let stamp = modules.join(NPM_STAMP);
    let present = modules
        .join("stripe-stateful-mock")
        .join("package.json")
        .exists()
        && stamp_matches(&stamp, &wanted);
    if present {
        return Ok("already installed (tests/servers/node_modules)".into());
    }
    let npm = which("npm").context("npm is not on PATH (Node.js 18 or later is needed)")?;
    let (args, what): (&[&str], _) = if lock.is_some() {
        (&["ci"], "npm ci")
    } else {
        (&["install"], "npm install")
    };
    run(
        Command::new(npm)
            .args(args)
            .args(["--no-audit", "--no-fund", "--no-update-notifier"])
            .current_dir(&dir),
        &format!("{what} in tests/servers"),
    )?;
    // npm install writes the lock: fingerprint what is there now.
    let lock = fs::read(&lock_path).unwrap_or_default();
    fs::write(&stamp, fingerprint(&[&manifest, &lock]))
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(format!("installed ({what} in tests/servers)"))
}

fn stamp_matches(stamp: &Path, wanted: &str) -> bool {
    fs::read_to_string(stamp).is_ok_and(|found| found.trim() == wanted)
}
