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
