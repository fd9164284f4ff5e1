//! `cargo xtask demo`: flows/main.rhai with the Stripe plugin, against a
//! localstripe that lives only as long as the demo, with `payhost serve`
//! receiving localstripe's signed webhooks (the confirmed payment intent's
//! `payment_intent.succeeded` runs flows/on_payment_intent_succeeded.rhai); `cargo xtask demo adyen`:
//! flows/adyen/main.rhai with the Adyen plugin, against prism serving Adyen's
//! own Checkout API definition (tests/data/adyen), likewise.
//!
//! localstripe is started through tests/servers/localstripe_server.py (bound
//! to 127.0.0.1, nothing written to disk) on a port it picks itself and names
//! in its readiness line. It runs in its own process group with its stdin on a
//! pipe from us: the group is killed when the demo ends, however it ends, and
//! if we are killed outright the pipe closes and the wrapper exits by itself.
//!
//! Prism (`@stoplight/prism-cli`, installed by setup) validates every request
//! against the spec and answers from its examples. It takes its port on the
//! command line, so it gets a free one from us; it runs in its own process
//! group too, killed when the demo ends. Its log is read on a thread: the
//! readiness line, then every `Violation:` line, which the demo lists at the
//! end (there should be none: the plugin builds requests the spec accepts).

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::describe;
use crate::{TestEnv, Workspace};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const READY_PREFIX: &str = "localstripe listening on ";
const DEMO_SECRET: &str = "sk_test_payhost_demo";
/// Prism parses the 900 kB Checkout definition before it listens (~10 s).
const PRISM_READY_TIMEOUT: Duration = Duration::from_secs(60);
const PRISM_READY: &str = "Prism is listening on ";
const PRISM_VIOLATION: &str = "Violation: ";
const ADYEN_DEMO_KEY: &str = "AQE_payhost_demo_key";
const ADYEN_DEMO_MERCHANT: &str = "PayhostDemoMerchant";

pub fn run(workspace: &Workspace, env: &TestEnv) -> Result<u8> {
    let localstripe = LocalStripe::start(workspace, env)?;
    println!("demo: localstripe at {}", localstripe.base_url);

    // `payhost serve` hears Stripe's signed webhooks; localstripe is told
    // where to send them, signed with the endpoint's secret.
    let serve = Serve::start(workspace, env, &localstripe.base_url)?;
    let endpoint = format!("http://{}/webhooks/stripe", serve.address);
    post_json(
        &localstripe.base_url,
        "/_config/webhooks/payhost-demo",
        &serde_json::json!({ "url": endpoint, "secret": DEMO_WEBHOOK_SECRET }),
    )
    .context("registering the webhook endpoint with localstripe")?;
    println!("demo: localstripe sends signed webhooks to {endpoint}");

    let mut payhost = Command::new(env.payhost_bin());
    payhost
        .current_dir(&workspace.root)
        .arg("run")
        .arg("flows/main.rhai")
        .arg("--plugin")
        .arg(workspace.plugins_dir().join("stripe.wasm"))
        .args(["--flows", "flows", "--base-url", &localstripe.base_url])
        .env("STRIPE_SECRET_KEY", DEMO_SECRET);
    println!("demo: {}", describe(&payhost));
    let status = payhost
        .status()
        .with_context(|| format!("cannot start {}", env.payhost_bin().display()))?;
    println!("demo: payhost run exited with {status}");
    // localstripe sends its webhooks a second after the change.
    let heard = serve.wait_for(WEBHOOK_SEEN, WEBHOOK_TIMEOUT);
    let served = serve.stop();
    drop(localstripe);
    if !heard {
        println!(
            "demo: no payment_intent.succeeded webhook within {}s",
            WEBHOOK_TIMEOUT.as_secs()
        );
        return Ok(1);
    }
    println!("demo: payhost serve exited with {served}");
    Ok(if status.success() {
        exit_code(served)
    } else {
        exit_code(status)
    })
}

const DEMO_WEBHOOK_SECRET: &str = "whsec_payhost_demo";
/// What flows/on_payment_intent_succeeded.rhai prints.
const WEBHOOK_SEEN: &str = "Webhook payment_intent.succeeded";
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(20);
const SERVE_READY: &str = "listening on http://";

/// `payhost serve` for the demo: its stdout (the event flows' output) is
/// echoed as it comes; stopped with SIGTERM (then killed) when done.
struct Serve {
    child: Child,
    _stdin: ChildStdin,
    address: String,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    fn start(workspace: &Workspace, env: &TestEnv, base_url: &str) -> Result<Serve> {
        let mut command = Command::new(env.payhost_bin());
        command
            .current_dir(&workspace.root)
            .arg("serve")
            .arg("--plugin")
            .arg(workspace.plugins_dir().join("stripe.wasm"))
            .args(["--flows", "flows", "--base-url", base_url])
            .args(["--listen", "127.0.0.1:0"])
            .env("STRIPE_SECRET_KEY", DEMO_SECRET)
            .env("STRIPE_WEBHOOK_SECRET", DEMO_WEBHOOK_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        println!("demo: {}", describe(&command));
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", describe(&command)))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if let Some(rest) = line.split(SERVE_READY).nth(1) {
                    let _ = ready_tx.send(rest.split(';').next().unwrap_or("").to_string());
                }
            }
        });
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                let _ = lines_tx.send(line);
            }
        });
        let mut serve = Serve {
            child,
            _stdin: stdin,
            address: String::new(),
            lines,
        };
        serve.address = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(address) => address,
            Err(_) => bail!(
                "payhost serve did not listen within {}s",
                READY_TIMEOUT.as_secs()
            ),
        };
        Ok(serve)
    }

    /// Whether a line containing `needle` was printed within `limit`.
    fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// SIGTERM, as an operator would stop it; its exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait();
        kill_group(&mut self.child);
        status.unwrap_or_else(|_| std::process::ExitStatus::from_raw(1 << 8))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// POSTs `body` as JSON to a loopback server; fails unless it answers 2xx.
fn post_json(base_url: &str, path: &str, body: &serde_json::Value) -> Result<()> {
    use std::io::{Read, Write};
    let address = base_url
        .strip_prefix("http://")
        .context("a loopback http:// URL")?;
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(READY_TIMEOUT))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        bail!("POST {path} answered {status}");
    }
    Ok(())
}

/// `cargo xtask demo adyen`: a payment and its capture, chained through
/// flows, against prism serving Adyen's Checkout API v71.
pub fn run_adyen(workspace: &Workspace, env: &TestEnv) -> Result<u8> {
    let spec = workspace
        .root
        .join("tests/data/adyen/CheckoutService-v71.json");
    let prism = Prism::start(workspace, &spec)?;
    println!(
        "demo: prism (Adyen Checkout v71, validating) at {}",
        prism.base_url
    );

    let mut payhost = Command::new(env.payhost_bin());
    payhost
        .current_dir(&workspace.root)
        .arg("run")
        .arg("flows/adyen/main.rhai")
        .arg("--plugin")
        .arg(workspace.plugins_dir().join("adyen.wasm"))
        .args(["--flows", "flows/adyen", "--base-url", &prism.base_url])
        .env("ADYEN_API_KEY", ADYEN_DEMO_KEY)
        .env("ADYEN_MERCHANT_ACCOUNT", ADYEN_DEMO_MERCHANT);
    println!("demo: {}", describe(&payhost));
    let status = payhost
        .status()
        .with_context(|| format!("cannot start {}", env.payhost_bin().display()))?;
    let violations = prism.stop();
    println!("demo: payhost exited with {status}");
    if violations.is_empty() {
        println!("demo: prism found no violation of Adyen's spec");
    } else {
        println!(
            "demo: prism found {} violation(s) of Adyen's spec:",
            violations.len()
        );
        for violation in &violations {
            println!("demo:   {violation}");
        }
        return Ok(1);
    }
    Ok(exit_code(status))
}

/// payhost's exit status as the demo's exit code (128 + signal if killed).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
        (None, None) => 1,
    }
}

/// `prism mock --errors` for one spec; stopped (its process group) on drop.
struct Prism {
    child: Child,
    _stdin: ChildStdin,
    base_url: String,
    /// Ends when prism's output does, with the violations it logged.
    log_reader: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Prism {
    fn start(workspace: &Workspace, spec: &std::path::Path) -> Result<Prism> {
        let prism = workspace.servers_dir().join("node_modules/.bin/prism");
        if !prism.exists() {
            bail!(
                "{} is missing: `cargo xtask setup` installs it",
                prism.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        // Through `sh`, which holds a pipe from us: if xtask is killed, the
        // pipe closes and `sh` stops prism (which has no exit-on-EOF option).
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                r#"exec 3<&0; "$0" "$@" & child=$!; { read _ <&3; kill $child 2>/dev/null; } & wait $child"#,
            ])
            .arg(&prism)
            .args([
                "mock",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .arg(spec);
        let (child, stdin, stdout) = spawn_server(&mut command)?;

        let (ready_tx, ready_rx) = mpsc::channel();
        let log_reader = std::thread::spawn(move || {
            let mut violations = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some((_, url)) = line.split_once(PRISM_READY) {
                    let _ = ready_tx.send(url.trim().to_string());
                    sent = true;
                }
                if let Some((_, violation)) = line.split_once(PRISM_VIOLATION) {
                    violations.push(violation.trim().to_string());
                }
            }
            violations
        });

        // From here on, dropping `server` stops the process group.
        let mut server = Prism {
            child,
            _stdin: stdin,
            base_url: String::new(),
            log_reader: Some(log_reader),
        };
        server.base_url = match ready_rx.recv_timeout(PRISM_READY_TIMEOUT) {
            Ok(url) => url,
            Err(_) => match server.child.try_wait() {
                Ok(Some(status)) => bail!("prism exited before it was ready ({status})"),
                _ => bail!(
                    "prism did not start listening within {}s",
                    PRISM_READY_TIMEOUT.as_secs()
                ),
            },
        };
        Ok(server)
    }

    /// Stops prism and returns the violations it logged.
    fn stop(mut self) -> Vec<String> {
        kill_group(&mut self.child);
        self.log_reader
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills the process group `child` leads (its pid is the group id) and
/// reaps it; a no-op once it has been reaped.
/// Starts a test server as the leader of its own process group (so that
/// stopping it stops what it forked), with stdin held by us (the servers
/// exit when it closes) and stdout piped for its readiness line.
fn spawn_server(command: &mut Command) -> Result<(Child, ChildStdin, ChildStdout)> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    Ok((child, stdin, stdout))
}

fn kill_group(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The running wrapper; stopped (its whole process group) on drop.
struct LocalStripe {
    child: Child,
    _stdin: ChildStdin,
    base_url: String,
}

impl LocalStripe {
    fn start(workspace: &Workspace, env: &TestEnv) -> Result<LocalStripe> {
        let script = workspace.servers_dir().join("localstripe_server.py");
        let mut command = Command::new(env.python());
        command
            .arg(&script)
            .args(["--port", "0", "--exit-on-stdin-eof"]);
        let (child, stdin, stdout) = spawn_server(&mut command)?;

        // Read the readiness line on a thread, so that we can give up after a
        // while; the thread keeps draining stdout afterwards.
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = ready_tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        });

        // From here on, dropping `server` stops the process group.
        let mut server = LocalStripe {
            child,
            _stdin: stdin,
            base_url: String::new(),
        };
        server.base_url = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(url) => url,
            Err(_) => match server.child.try_wait() {
                Ok(Some(status)) => bail!("localstripe exited before it was ready ({status})"),
                _ => bail!(
                    "localstripe printed no readiness line within {}s",
                    READY_TIMEOUT.as_secs()
                ),
            },
        };
        Ok(server)
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        // The wrapper is the group leader: its pid is the group id.
        kill_group(&mut self.child);
    }
}
