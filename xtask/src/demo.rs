//! `cargo xtask demo`: flows/main.rhai with the Stripe plugin, against a
//! localstripe that lives only as long as the demo.
//!
//! localstripe is started through tests/servers/localstripe_server.py (bound
//! to 127.0.0.1, nothing written to disk) on a port it picks itself and names
//! in its readiness line. It runs in its own process group with its stdin on a
//! pipe from us: the group is killed when the demo ends, however it ends, and
//! if we are killed outright the pipe closes and the wrapper exits by itself.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::describe;
use crate::{TestEnv, Workspace};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const READY_PREFIX: &str = "localstripe listening on ";
const DEMO_SECRET: &str = "sk_test_payhost_demo";

pub fn run(workspace: &Workspace, env: &TestEnv) -> Result<u8> {
    let localstripe = LocalStripe::start(workspace, env)?;
    println!("demo: localstripe at {}", localstripe.base_url);

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
    drop(localstripe);

    let code = match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
        (None, None) => 1,
    };
    println!("demo: payhost exited with {status}");
    Ok(code)
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
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", describe(&command)))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");

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
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
