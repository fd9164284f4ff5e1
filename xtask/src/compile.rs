//! Cargo builds whose outputs we need to find: the plugin components and the
//! `payhost` binary.
//!
//! Paths come from cargo's own `--message-format=json` artifact messages, not
//! from guessing `target/<triple>/<profile>/<lib name>.wasm`, so a `[lib]
//! name`, a `CARGO_TARGET_DIR` or a renamed crate cannot send us to a stale
//! file.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::Workspace;
use crate::process::{cargo, describe};

/// One plugin crate: its cargo package and the name its component gets in
/// target/plugins (`<name>.wasm`).
pub struct Plugin {
    pub package: String,
    pub name: String,
    manifest_dir: PathBuf,
}

/// Builds every plugin crate ([`discover_plugins`]) for wasm32-wasip2 in the
/// `plugin` profile (release without debug info, LTO), in one cargo
/// invocation, and copies each component to target/plugins/<name>.wasm.
pub fn plugins(workspace: &Workspace) -> Result<Vec<Plugin>> {
    let plugins = discover_plugins(workspace)?;
    let mut command = cargo();
    command.current_dir(&workspace.root).args([
        "build",
        "--target",
        "wasm32-wasip2",
        "--profile",
        "plugin",
    ]);
    for plugin in &plugins {
        command.args(["-p", &plugin.package]);
    }
    let artifacts = build_artifacts(&mut command, "building the plugins")?;

    let out_dir = workspace.plugins_dir();
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    for plugin in &plugins {
        let wasm = artifacts
            .iter()
            .filter(|a| a.manifest_dir == plugin.manifest_dir)
            .flat_map(|a| &a.filenames)
            .find(|f| f.extension().is_some_and(|e| e == "wasm"))
            .with_context(|| {
                format!(
                    "cargo built no .wasm for package `{}` (is its crate-type \"cdylib\"?)",
                    plugin.package
                )
            })?;
        let dest = out_dir.join(format!("{}.wasm", plugin.name));
        fs::copy(wasm, &dest)
            .with_context(|| format!("cannot copy {} to {}", wasm.display(), dest.display()))?;
    }
    Ok(plugins)
}

/// Builds every test of the workspace (`cargo test --workspace --no-run`)
/// and returns the absolute path of the `payhost` binary built with them
/// (host/tests has an integration test, so cargo builds the binary too).
///
/// Building through the same command the tests run with keeps one feature
/// resolution for the whole workspace: a separate `cargo build -p payhost`
/// would resolve features differently and make cargo compile wasmtime and
/// friends a second time.
pub fn payhost(workspace: &Workspace) -> Result<PathBuf> {
    let artifacts = build_artifacts(
        cargo()
            .current_dir(&workspace.root)
            .args(["test", "--workspace", "--no-run"]),
        "building payhost and the tests",
    )?;
    artifacts
        .iter()
        .filter_map(|a| a.executable.as_ref())
        .find(|exe| exe.file_name().is_some_and(|n| n == "payhost"))
        .cloned()
        .context("cargo built no `payhost` executable")
}

/// Builds the `payhost` and `payhost-bench` binaries in release mode (one
/// cargo invocation) and returns their absolute paths, in that order.
pub fn release_bench_bins(workspace: &Workspace) -> Result<(PathBuf, PathBuf)> {
    let artifacts = build_artifacts(
        cargo().current_dir(&workspace.root).args([
            "build",
            "--release",
            "-p",
            "payhost",
            "--bin",
            "payhost",
            "-p",
            "payhost-bench",
            "--bin",
            "payhost-bench",
        ]),
        "building payhost and payhost-bench (release)",
    )?;
    let find = |name: &str| {
        artifacts
            .iter()
            .filter_map(|a| a.executable.as_ref())
            .find(|exe| exe.file_name().is_some_and(|n| n == name))
            .cloned()
            .with_context(|| format!("cargo built no `{name}` executable"))
    };
    Ok((find("payhost")?, find("payhost-bench")?))
}

/// Where plugin crates live, in build order: the shipped plugins
/// (`guest-<name>/`, installed as `<name>.wasm`), the ones made with `cargo
/// xtask new-plugin` (`plugins/<name>/`), the test plugins
/// (`tests/plugins/<name>/`); in the last two the component is named after
/// the directory. The globs match the workspace's `members`.
const PLUGIN_DIRS: [(&str, &str); 3] = [("", "guest-"), ("plugins", ""), ("tests/plugins", "")];

/// Every plugin crate: a directory in one of [`PLUGIN_DIRS`] whose
/// Cargo.toml builds a `cdylib`, in name order within each place. Two
/// crates that would both install `<name>.wasm` are an error naming both.
pub fn discover_plugins(workspace: &Workspace) -> Result<Vec<Plugin>> {
    let mut plugins: Vec<Plugin> = Vec::new();
    for (parent, prefix) in PLUGIN_DIRS {
        let parent_dir = workspace.root.join(parent);
        let Ok(entries) = fs::read_dir(&parent_dir) else {
            continue; // no such place (yet), e.g. plugins/ before the first new-plugin
        };
        let mut dirs: Vec<(String, PathBuf)> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .filter_map(|dir| {
                let name = dir.file_name()?.to_str()?.strip_prefix(prefix)?.to_string();
                (!name.is_empty()).then_some((name, dir))
            })
            .collect();
        dirs.sort();
        for (name, dir) in dirs {
            let manifest = dir.join("Cargo.toml");
            let text = fs::read_to_string(&manifest)
                .with_context(|| format!("cannot read {}", manifest.display()))?;
            if !crate_types(&text).iter().any(|t| t == "cdylib") {
                continue; // a library or a tool, not a component
            }
            let package = package_name(&text)
                .with_context(|| format!("no [package] name in {}", manifest.display()))?;
            let manifest_dir = canonical(&dir)?;
            if let Some(other) = plugins.iter().find(|p| p.name == name) {
                bail!(
                    "two plugin crates would both be installed as {name}.wasm: {} and {}; rename one directory",
                    other.manifest_dir.display(),
                    manifest_dir.display()
                );
            }
            plugins.push(Plugin {
                package,
                name,
                manifest_dir,
            });
        }
    }
    Ok(plugins)
}

/// The `crate-type` list of the `[lib]` table (single- or multi-line array).
fn crate_types(manifest: &str) -> Vec<String> {
    let mut in_lib = false;
    let mut value: Option<String> = None;
    for line in manifest.lines() {
        // No `#` inside the strings we look for, so this drops comments only.
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(value) = value.as_mut() {
            value.push_str(line);
        } else if line.starts_with('[') {
            in_lib = line == "[lib]";
        } else if in_lib
            && let Some((key, rest)) = line.split_once('=')
            && key.trim() == "crate-type"
        {
            value = Some(rest.to_string());
        }
        if value.as_ref().is_some_and(|v| v.contains(']')) {
            break;
        }
    }
    let Some(value) = value else {
        return Vec::new();
    };
    let inner = value.split(['[', ']']).nth(1).unwrap_or_default();
    inner
        .split(',')
        .map(|t| t.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// `name = "..."` in the `[package]` table. Enough TOML for a Cargo.toml we
/// write ourselves.
pub fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.trim() == "name" {
                let value = value.trim();
                return Some(value.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    None
}

fn canonical(path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("{} does not exist", path.display()))
}

/// What one `compiler-artifact` message says.
struct Artifact {
    manifest_dir: PathBuf,
    filenames: Vec<PathBuf>,
    executable: Option<PathBuf>,
}

/// Runs a `cargo build` with JSON messages on stdout (diagnostics still
/// rendered on stderr, as usual) and collects its artifacts.
fn build_artifacts(command: &mut Command, what: &str) -> Result<Vec<Artifact>> {
    command
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("{what}: cannot start {}", describe(command)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut artifacts = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.with_context(|| format!("{what}: reading cargo's output"))?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" {
            artifacts.push(parse_artifact(&message));
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("{what}: waiting for cargo"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", describe(command));
    }
    Ok(artifacts)
}

fn parse_artifact(message: &Value) -> Artifact {
    let path = |v: &Value| v.as_str().map(PathBuf::from);
    Artifact {
        manifest_dir: path(&message["manifest_path"])
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default(),
        filenames: message["filenames"]
            .as_array()
            .map(|files| files.iter().filter_map(path).collect())
            .unwrap_or_default(),
        executable: path(&message["executable"]),
    }
}

#[cfg(test)]
mod tests {
    use super::{crate_types, package_name};

    #[test]
    fn crate_types_are_read_from_the_lib_table() {
        let one_line =
            "[package]\ncrate-type = [\"no\"]\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n";
        assert_eq!(crate_types(one_line), ["cdylib", "rlib"]);
        let multi_line = "[lib]\nname = \"x\"\ncrate-type = [\n  \"rlib\", # native tests\n  'cdylib',\n]\n[dependencies]\n";
        assert_eq!(crate_types(multi_line), ["rlib", "cdylib"]);
        assert!(crate_types("[package]\nname = \"x\"\n").is_empty());
    }

    #[test]
    fn package_name_is_read_from_the_package_table_only() {
        let manifest = "[workspace]\nname = \"no\"\n\n[package]\nversion = \"0.1.0\"\nname = \"plugin-spin\"\n\n[lib]\nname = \"spin\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("plugin-spin"));
        assert_eq!(package_name("[lib]\nname = \"x\"\n"), None);
    }
}
