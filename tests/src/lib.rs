//! Shared fixtures for payhost's end-to-end tests.
//!
//! The tests drive the real `payhost` binary against real servers that we did
//! not write, started on 127.0.0.1 for the length of one test: localstripe,
//! stripe-stateful-mock and redis-server (see tests/servers/README.md for
//! what each one supports). Everything they need is found through
//! environment variables that `cargo xtask test` sets after installing and
//! building it all:
//!
//! | variable               | what                                                    |
//! |------------------------|---------------------------------------------------------|
//! | `PAYHOST_BIN`          | the `payhost` binary                                    |
//! | `PAYHOST_PLUGINS`      | directory of components: `stripe.wasm`, `<name>.wasm`   |
//! | `PAYHOST_PYTHON`       | the venv's python, with `stripe` and `localstripe`      |
//! | `PAYHOST_SERVERS`      | tests/servers: the wrappers, the oracle, node_modules   |
//! | `PAYHOST_REDIS_SERVER` | the `redis-server` binary                               |
//!
//! A missing variable or file is a panic that says how to fix it, never a
//! skipped test. To run `cargo test` by hand: `eval "$(cargo xtask env)"`.
//!
//! Servers are children of the test process, each in its own process group,
//! killed (the whole group) and reaped when their fixture is dropped, which
//! also happens when a test panics. The Python and Node wrappers also exit by
//! themselves when the test process dies outright (their stdin is a pipe
//! from us).

mod http;
mod prism;
mod redis_dump;
pub mod scenario;
mod servers;
pub mod stub;
mod webhook_oracle;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

pub use http::{HttpResponse, http_request};
pub use prism::{PrismServer, adyen_spec};
pub use redis_dump::redis_dump;
pub use servers::{H2cRequest, H2cServer, LocalStripe, RedisServer, StatefulMock};
pub use webhook_oracle::webhook_oracle;

/// A plain connection to a test's redis-server, to set up or inspect keys.
pub fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("connect to the test redis-server")
}

/// `payhost jobs --json --worker-id <worker_id>`: that worker id's report.
pub fn jobs_report(url: &str, worker_id: &str) -> Value {
    let mut jobs = payhost();
    jobs.args(["jobs", "--redis", url, "--worker-id", worker_id, "--json"]);
    let out = scenario::run_command(jobs);
    out.assert_success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    report[0].clone()
}

/// A compiled-plugin cache shared by the tests' `payhost` runs, so each run
/// does not recompile the plugin: `payhost-test-cache` beside the plugins'
/// directory in the target directory.
pub fn cache_dir() -> PathBuf {
    let plugins = env_path("PAYHOST_PLUGINS");
    plugins
        .parent()
        .unwrap_or(&plugins)
        .join("payhost-test-cache")
}

/// The path in environment variable `var` (one of the `PAYHOST_*` above).
///
/// Panics when the variable is unset or empty, or names a path that does not
/// exist: tests that need it cannot run, and must not pass by skipping.
pub fn env_path(var: &str) -> PathBuf {
    let value = std::env::var_os(var)
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| panic!("{var} is not set: run the tests through `cargo xtask test`"));
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{var} points to a missing file: {} (`cargo xtask test` installs and builds it)",
        path.display()
    );
    path
}

/// The component `target/plugins/<name>.wasm` (`stripe`, or a test plugin
/// from tests/plugins/<name>), through `PAYHOST_PLUGINS`.
pub fn plugin(name: &str) -> PathBuf {
    let path = env_path("PAYHOST_PLUGINS").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "plugin `{name}` is not built: {} is missing (`cargo xtask plugins` builds \
         guest-stripe and every tests/plugins/<name>)",
        path.display()
    );
    path
}

/// A `Command` for the `payhost` binary (`PAYHOST_BIN`).
///
/// The environment is cleared of what could change a test's outcome from
/// outside: `RUST_LOG`, every `PAYHOST_*` variable (payhost reads some, such
/// as a default plugin or base URL) and every `*_SECRET_KEY`. A test that
/// wants one sets it on the returned command.
pub fn payhost() -> Command {
    let mut command = Command::new(env_path("PAYHOST_BIN"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "RUST_LOG" || name.starts_with("PAYHOST_") || name.ends_with("_SECRET_KEY") {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
/// released). Another process may take it before the caller binds it; the
/// server fixtures here avoid that window where they can.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("cannot bind a port on 127.0.0.1")
        .port()
}

/// The exact form bodies stripe-python (tests/servers/requirements.txt pins
/// the version) sends for each params object in `cases`, in order.
///
/// Runs tests/servers/stripe_encode_oracle.py once for all cases. Object key
/// order matters to the encoding and is kept (the workspace's serde_json has
/// `preserve_order`). Keep booleans and nulls out of lists in the cases:
/// stripe-python sends those as `True`/`None` (see the README there).
pub fn oracle_encode(cases: &[Value]) -> Vec<String> {
    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(index, case)| {
            assert!(
                case.is_object(),
                "oracle case {index} must be a JSON object (a params dict), got {case}"
            );
            case.to_string()
        })
        .collect();
    oracle_lines("post", &lines)
}

/// Runs `tests/servers/<script> <args>` with the venv's Python, `input` on
/// its stdin; panics (with its stderr) unless it exits 0.
pub fn python_oracle(script: &str, args: &[&str], input: String) -> std::process::Output {
    let path = env_path("PAYHOST_SERVERS").join(script);
    let mut child = Command::new(env_path("PAYHOST_PYTHON"))
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", path.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Write from a thread: with a large input and output both pipes can
    // fill up at once.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("cannot wait for {script}: {err}"));
    let written = writer.join().expect("oracle writer thread panicked");
    assert!(
        output.status.success(),
        "{script} {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    written.unwrap_or_else(|err| panic!("cannot write to {script}: {err}"));
    output
}

/// Lower-case hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Stripe-Signature` header Stripe sends for `body` signed at `t`
/// with the endpoint's `secret`.
pub fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    let hex = hmac_sha256_hex(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("t={t},v1={hex}")
}

/// Every notification item of Adyen's Webhooks spec examples
/// (tests/data/adyen/Webhooks-v1-examples.json), unwrapped.
pub fn adyen_example_items() -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/adyen/Webhooks-v1-examples.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let examples: Value = serde_json::from_str(&text).unwrap();
    examples
        .as_object()
        .unwrap()
        .values()
        .flat_map(|e| e["value"]["notificationItems"].as_array().unwrap().clone())
        .map(|wrapper| wrapper["NotificationRequestItem"].clone())
        .collect()
}

/// The HMAC key the webhook tests sign Adyen items with (hex, as Adyen
/// shows it).
pub const ADYEN_TEST_HMAC_KEY: &str =
    "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

/// What stripe-python sends for each params dict in `lines` (one per line,
/// in the JSON that Python's `json.loads` reads, so `NaN` and `Infinity`
/// too): the POST body for `method` `post`, the query string for `get`.
pub fn oracle_lines(method: &str, lines: &[String]) -> Vec<String> {
    let mut input = String::new();
    for line in lines {
        input.push_str(line);
        input.push('\n');
    }
    let output = python_oracle("stripe_encode_oracle.py", &["--method", method], input);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8(output.stdout).expect("oracle output is not UTF-8");
    let bodies: Vec<String> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("oracle line {line:?} is not a JSON string: {err}"))
        })
        .collect();
    assert_eq!(
        bodies.len(),
        lines.len(),
        "the encoding oracle answered {} lines for {} cases; its stderr:\n{stderr}",
        bodies.len(),
        lines.len()
    );
    bodies
}
