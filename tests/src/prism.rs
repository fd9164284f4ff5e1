//! Prism (npm `@stoplight/prism-cli`) serving an OpenAPI definition as a
//! validating mock on 127.0.0.1: Adyen's Checkout API for the Adyen plugin.
//!
//! `prism mock --errors` checks every request against the spec. A valid one
//! is answered from the spec's examples (a capture: 201 with `"status":
//! "received"`); an invalid one gets a 4xx (a missing `X-API-Key`: 401; a
//! bad body on /payments: the spec's 422 example) and each violation is
//! logged on its own line (`Violation: request.body Request body must have
//! required property 'merchantAccount'`). Tests assert that log is empty.
//!
//! Prism takes its port on the command line and cannot pick a free one
//! itself, so the fixture gives it one from [`free_port`], and tries another
//! if prism reports the port taken. It is ready once it logs `Prism is
//! listening on` (about 10 s for the Checkout spec) and answers a request.
//! Like the other servers it runs in its own process group, logging to a
//! file in its own temporary directory; drop kills the group and reaps it.
//! And like the wrappers it stops when the test process dies outright: a
//! small `sh` watcher holds a pipe from us and kills prism when it closes.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::try_http_request;
use crate::{env_path, free_port};

/// Prism parses and indexes the 900 kB Checkout spec before it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const VIOLATION: &str = "Violation: ";
const RECEIVED: &str = "Request received";

/// `sh -c` script: run `"$0" "$@"` (prism and its arguments), kill it once
/// our stdin closes, and exit when it does (so a prism that could not bind
/// its port is seen to exit). The watcher reads a copy of stdin (fd 3): a
/// background job's own stdin is /dev/null.
const WATCH_STDIN: &str =
    r#"exec 3<&0; "$0" "$@" & child=$!; { read _ <&3; kill $child 2>/dev/null; } & wait $child"#;

/// A running `prism mock --errors` for one spec.
pub struct PrismServer {
    port: u16,
    child: Child,
    log: PathBuf,
    /// Held open: `sh` stops prism when it closes.
    _stdin: Option<ChildStdin>,
    /// Requests prism logged before it was handed out: the readiness probe.
    probes: usize,
    /// Holds the log; an `Option` only so that a failed start can take it
    /// back. Removed after the process is killed (fields drop after `Drop`).
    dir: Option<TempDir>,
}

/// The vendored Adyen Checkout v71 definition (tests/data/adyen).
pub fn adyen_spec() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/adyen/CheckoutService-v71.json")
}

impl PrismServer {
    /// Prism for Adyen's Checkout API v71 ([`adyen_spec`]).
    pub fn start_adyen() -> PrismServer {
        PrismServer::start(&adyen_spec())
    }

    /// Starts `$PAYHOST_SERVERS/node_modules/.bin/prism mock --errors` for
    /// `spec` on a free loopback port and waits until it answers; panics
    /// with prism's output if it does not within 60 s.
    pub fn start(spec: &Path) -> PrismServer {
        let prism = env_path("PAYHOST_SERVERS").join("node_modules/.bin/prism");
        assert!(
            prism.exists(),
            "{} is missing: `cargo xtask setup` installs it (npm ci in tests/servers)",
            prism.display()
        );
        let mut dir = Some(
            tempfile::Builder::new()
                .prefix("payhost-e2e-prism-")
                .tempdir()
                .expect("cannot create a temporary directory"),
        );
        let mut last = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let log = dir
                .as_ref()
                .expect("the directory is back after each failed try")
                .path()
                .join(format!("prism-{attempt}.log"));
            let out = File::create(&log).expect("cannot create prism's log file");
            let err = out.try_clone().expect("cannot duplicate a file handle");
            // Through `sh`, which holds a pipe from us: if this process dies
            // without dropping the fixture, the pipe closes and `sh` stops
            // prism (prism itself has no exit-on-EOF option).
            let mut child = Command::new("sh")
                .args(["-c", WATCH_STDIN])
                .arg(&prism)
                .args([
                    "mock",
                    "--errors",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .arg(spec)
                .stdin(Stdio::piped())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", prism.display()));
            let stdin = child.stdin.take();
            let mut server = PrismServer {
                port,
                child,
                log,
                _stdin: stdin,
                probes: 0,
                dir,
            };
            match server.wait_ready() {
                Ok(()) => {
                    server.probes = server.log().matches(RECEIVED).count();
                    return server;
                }
                Err(output) => {
                    last = output;
                    // Dropping kills it; the directory comes back for the next try.
                    dir = server.into_dir();
                }
            }
        }
        panic!("prism could not bind a free port five times; its last output:\n{last}");
    }

    fn into_dir(mut self) -> Option<TempDir> {
        self.dir.take()
    }

    /// Waits for the readiness line and one answered request. `Err` with
    /// the output when the port was taken; panics on any other failure.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/", self.base_url());
        loop {
            let log = self.log();
            if log.contains("Prism is listening on")
                && try_http_request("GET", &url, &[], None).is_ok()
            {
                return Ok(());
            }
            if !matches!(self.child.try_wait(), Ok(None)) {
                if log.contains("EADDRINUSE") {
                    return Err(log);
                }
                panic!("prism exited before it was ready; its output:\n{log}");
            }
            if Instant::now() > deadline {
                panic!(
                    "prism was not ready within {}s; its output:\n{log}",
                    READY_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything prism has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every violation prism has logged so far, from `Violation: ` on
    /// (`request.body Request body must have required property 'amount'`).
    pub fn violations(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| {
                line.split_once(VIOLATION)
                    .map(|(_, v)| v.trim().to_string())
            })
            .collect()
    }

    /// How many requests prism has received so far, not counting the
    /// fixture's own readiness probe.
    pub fn requests(&self) -> usize {
        self.log()
            .matches(RECEIVED)
            .count()
            .saturating_sub(self.probes)
    }

    /// Panics, listing them and the log, if prism logged any violation.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "prism logged {} violation(s) of the spec:\n  {}\n--- prism's log:\n{}",
            violations.len(),
            violations.join("\n  "),
            self.log()
        );
    }
}

impl Drop for PrismServer {
    fn drop(&mut self) {
        crate::servers::stop_group(&mut self.child);
    }
}
