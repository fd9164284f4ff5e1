//! The webhook oracle (tests/servers/webhook_oracle.py) from Rust: one JSON
//! document in, one out, through the venv's Python. The providers' own
//! libraries (stripe-python, Adyen's) sign and verify there, so a test can
//! hold `payhost serve` and the plugins to exactly what those accept. The
//! commands and their JSON are described in the script's docstring and in
//! tests/servers/README.md.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::env_path;

/// Runs `webhook_oracle.py <command>` with `input` on stdin and returns its
/// answer; panics (with the oracle's stderr) if it fails.
pub fn webhook_oracle(command: &str, input: &Value) -> Value {
    let script = env_path("PAYHOST_SERVERS").join("webhook_oracle.py");
    let mut child = Command::new(env_path("PAYHOST_PYTHON"))
        .arg(&script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", script.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_string();
    // Write from a thread: a large input and output could fill both pipes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .expect("cannot wait for the webhook oracle");
    let written = writer.join().expect("oracle writer thread panicked");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "webhook_oracle.py {command} failed ({}):\n{stderr}",
        output.status
    );
    written.expect("cannot write to the webhook oracle");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "webhook_oracle.py {command} answered no JSON ({err}): {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
