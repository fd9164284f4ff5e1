//! Hostile test plugin `snoop`: `build-request` tries every way out of the
//! sandbox a plain Rust program has, and reports what it saw in the body of
//! a POST `/v1/things` (`text/plain`, one `what: result` line each):
//!
//! - `env:` the environment (`std::env::vars`): how many variables, and
//!   their names;
//! - `cwd:` the current directory;
//! - `passwd:` `std::fs::read("/etc/passwd")`;
//! - `root:` `std::fs::read_dir("/")`;
//! - `tcp:` `std::net::TcpStream::connect` to 127.0.0.1 and the port given as
//!   the `name` param; on success it writes `GET /snooped` there;
//! - `wall:` `SystemTime::now()` as seconds.nanos since the Unix epoch;
//! - `monotonic:` nanoseconds `Instant::now()` saw pass around a busy loop.
//!
//! The host is expected to give it nothing: no variables, no files, no
//! connection, and frozen clocks (so the call still returns, and a test can
//! check each line).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });
include!("../../common.rs");
include!("../../common_params.rs");

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use exports::payhost::plugin::provider::Guest;
use payhost::plugin::types::{
    FlowPayload, HttpRequest, PluginError, ProviderInfo, RequestInput, TransportOutcome,
    WebhookCheck, WebhookEvent, WebhookRequest,
};

struct Snoop;

fn outcome<T>(result: std::io::Result<T>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("got {}", ok(value)),
        Err(err) => format!("refused ({:?})", err.kind()),
    }
}

fn snoop(port: Option<u16>) -> String {
    let mut report = String::new();
    let vars: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    report.push_str(&format!("env: {} [{}]\n", vars.len(), vars.join(",")));
    report.push_str(&format!(
        "cwd: {}\n",
        outcome(std::env::current_dir(), |dir| dir.display().to_string())
    ));
    report.push_str(&format!(
        "passwd: {}\n",
        outcome(std::fs::read("/etc/passwd"), |bytes| format!(
            "{} bytes",
            bytes.len()
        ))
    ));
    report.push_str(&format!(
        "root: {}\n",
        outcome(std::fs::read_dir("/"), |entries| format!(
            "{} entries",
            entries.count()
        ))
    ));
    let tcp = match port {
        Some(port) => outcome(
            std::net::TcpStream::connect(("127.0.0.1", port)),
            |mut stream| {
                let sent = stream.write_all(b"GET /snooped HTTP/1.1\r\nhost: x\r\n\r\n");
                format!("a connection (write: {sent:?})")
            },
        ),
        None => "no port given".to_string(),
    };
    report.push_str(&format!("tcp: {tcp}\n"));
    let wall = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => format!("{}.{:09}", since.as_secs(), since.subsec_nanos()),
        Err(err) => format!("before the epoch by {:?}", err.duration()),
    };
    report.push_str(&format!("wall: {wall}\n"));
    let started = Instant::now();
    let mut counter = 0u64;
    for _ in 0..5_000_000u64 {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
    let elapsed = Instant::now().duration_since(started);
    report.push_str(&format!(
        "monotonic: {} ns over {counter} iterations\n",
        elapsed.as_nanos()
    ));
    report
}

impl Guest for Snoop {
    fn info() -> ProviderInfo {
        thing_info("snoop")
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        accept_any_settings(settings)
    }

    fn build_request(
        _: String,
        _: String,
        input: RequestInput,
    ) -> Result<HttpRequest, PluginError> {
        let port = text_param(&input.params, "name").and_then(|p| p.parse().ok());
        Ok(thing_request(snoop(port).into_bytes()))
    }

    fn parse_response(_: String, _: String, outcome: TransportOutcome) -> FlowPayload {
        body_as_success(outcome)
    }

    fn check_webhook(request: WebhookRequest) -> Result<WebhookCheck, String> {
        no_webhook_check(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
        no_webhook_events(request)
    }
}

export!(Snoop);
