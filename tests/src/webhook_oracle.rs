//! The webhook oracle (tests/servers/webhook_oracle.py) from Rust: one JSON
//! document in, one out, through the venv's Python. The providers' own
//! libraries (stripe-python, Adyen's) sign and verify there, so a test can
//! hold `payhost serve` and the plugins to exactly what those accept. The
//! commands and their JSON are described in the script's docstring and in
//! tests/servers/README.md.

use serde_json::Value;

/// Runs `webhook_oracle.py <command>` with `input` on stdin and returns its
/// answer; panics (with the oracle's stderr) if it fails.
pub fn webhook_oracle(command: &str, input: &Value) -> Value {
    let output = crate::python_oracle("webhook_oracle.py", &[command], input.to_string());
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "webhook_oracle.py {command} answered no JSON ({err}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
