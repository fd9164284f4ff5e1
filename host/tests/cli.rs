//! The binary starts and explains itself (the end-to-end behaviour is tested
//! in the workspace's `tests/` package against real servers).

use std::process::Command;

fn payhost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_payhost"))
}

#[test]
fn help_lists_the_commands() {
    let out = payhost().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "worker", "jobs", "plugin"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
}

/// Not at a terminal, clap's text is written by payhost (whole, see
/// `payhost::console`); it must still say what clap says, where, with its
/// exit code.
#[test]
fn usage_errors_help_and_version_keep_their_stream_and_exit_code() {
    let out = payhost().args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("error: unexpected argument '--bogus' found")
            && text.contains("Usage: payhost run")
            && text.ends_with("For more information, try '--help'.\n"),
        "{text}"
    );

    let out = payhost().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!("payhost ", env!("CARGO_PKG_VERSION"), "\n")
    );
}

#[test]
fn a_missing_plugin_is_an_error_naming_the_path() {
    let out = payhost()
        .args(["plugin", "info", "/nonexistent/plugin.wasm", "--no-cache"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("cannot load plugin /nonexistent/plugin.wasm: cannot read the file"),
        "{text}"
    );
}

/// The `--long` flags one command's `--help` lists (each option's line
/// starts with it).
fn flags(command: &str) -> Vec<String> {
    let out = payhost().args([command, "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.starts_with("--"))
        .map(str::to_string)
        .collect()
}

#[test]
fn worker_takes_every_flag_of_run_that_is_not_about_the_script() {
    // What only a run has: its script's deadline, detaching from it, and the
    // context id its script's requests default to.
    let run_only = ["--timeout", "--detach", "--context-id"];
    let worker = flags("worker");
    let missing: Vec<String> = flags("run")
        .into_iter()
        .filter(|flag| !run_only.contains(&flag.as_str()) && !worker.contains(flag))
        .collect();
    assert!(missing.is_empty(), "`payhost worker` lacks {missing:?}");
    for flag in ["--max-retries", "--request-timeout", "--plugin-memory-mib"] {
        assert!(worker.iter().any(|f| f == flag), "{flag} in {worker:?}");
    }
}

#[test]
fn a_bad_duration_is_an_error_naming_the_flag() {
    for (flag, value, problem) in [
        (
            "--connect-timeout",
            "-1",
            "give a positive number of seconds",
        ),
        (
            "--request-timeout",
            "0",
            "give a positive number of seconds",
        ),
        ("--grace", "inf", "give a number of seconds, 0 or more"),
        (
            "--flow-timeout",
            "NaN",
            "give a number of seconds, 0 or more",
        ),
    ] {
        for command in ["run", "worker"] {
            let mut cmd = payhost();
            cmd.arg(command);
            if command == "run" {
                cmd.arg("main.rhai");
            }
            let out = cmd
                .args(["--plugin", "p.wasm"])
                .args(["--redis", "redis://127.0.0.1:1/", "--worker-id", "w"])
                .arg(format!("{flag}={value}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {flag}: {text}");
            assert!(
                text.contains(&format!("{flag} {value}: {problem}")),
                "{command} {flag}: {text}"
            );
        }
    }
}

/// `run` used to wait forever without `--timeout`: a flow chain that never
/// ends kept it running. It now has a default deadline, which `--help`
/// shows (a 600 s test of it would cost more than it tells).
#[test]
fn run_has_a_default_deadline() {
    let out = payhost().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let timeout = text
        .split("--timeout")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap_or_else(|| panic!("no --timeout in:\n{text}"));
    assert!(timeout.contains("[default: 600]"), "{timeout}");
}
