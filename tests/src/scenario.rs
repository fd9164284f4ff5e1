//! A script, its flows and one `payhost run` of them, in a temporary directory.
//!
//! Tests write the script and the flows they need, run the real binary
//! against a real server, and assert on what the flows printed.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// The secret used by scenarios; a sentinel that tests can search for.
pub const TEST_SECRET: &str = "sk_test_payhost_e2e_4242";

pub struct Scenario {
    dir: tempfile::TempDir,
    flows: PathBuf,
    plugin: String,
    env: Vec<(String, String)>,
    timeout: u32,
}

/// What one run printed.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Whether some stdout line contains `needle`.
    pub fn printed(&self, needle: &str) -> bool {
        self.stdout.lines().any(|line| line.contains(needle))
    }

    /// Panics with the whole output unless some stdout line contains `needle`.
    #[track_caller]
    pub fn assert_printed(&self, needle: &str) {
        assert!(
            self.printed(needle),
            "expected a line containing {needle:?}\n{self}"
        );
    }

    /// The value printed after `prefix` on the first line that has it.
    #[track_caller]
    pub fn value_after(&self, prefix: &str) -> String {
        self.stdout
            .lines()
            .find_map(|line| {
                line.split_once(prefix)
                    .map(|(_, rest)| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no line with {prefix:?}\n{self}"))
    }

    #[track_caller]
    pub fn assert_success(&self) {
        assert!(self.status.success(), "payhost failed\n{self}");
    }

    /// Every stdout line that starts with `prefix`, in order.
    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| line.starts_with(prefix))
            .collect()
    }

    /// The summary line payhost prints last on stderr.
    pub fn summary(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("payhost: ") && l.contains(" requests ("))
            .unwrap_or("")
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- status: {}\n--- stdout:\n{}--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap();
        Self {
            dir,
            flows,
            plugin: "stripe".into(),
            env: Vec::new(),
            timeout: 60,
        }
    }

    /// Keeps the flows in `<dir>/<relative>` instead of `<dir>/flows`, e.g.
    /// `a/b/flows`, so a test can put decoys around (`..`) the flows dir.
    pub fn with_flows_at(mut self, relative: &str) -> Self {
        self.flows = self.dir.path().join(relative);
        std::fs::create_dir_all(&self.flows).unwrap();
        self
    }

    /// Runs and workers load `target/plugins/<name>.wasm` instead of stripe.
    pub fn with_plugin(mut self, name: &str) -> Self {
        self.plugin = name.into();
        self
    }

    /// Sets an environment variable for every run and worker of this
    /// scenario (after the defaults, so it can replace STRIPE_SECRET_KEY).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// `payhost run --timeout` in seconds, instead of 60.
    pub fn with_timeout(mut self, seconds: u32) -> Self {
        self.timeout = seconds;
        self
    }

    /// The scenario's temporary directory (holds `main.rhai` and the flows).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn flows_dir(&self) -> PathBuf {
        self.flows.clone()
    }

    /// Writes `flows/<name>.rhai`.
    pub fn flow(&self, name: &str, source: &str) -> &Self {
        std::fs::write(self.flows_dir().join(format!("{name}.rhai")), source).unwrap();
        self
    }

    /// Copies a flow file from the repository's `flows/`.
    pub fn repo_flow(&self, name: &str) -> &Self {
        let source = std::fs::read_to_string(repo_flows().join(format!("{name}.rhai"))).unwrap();
        self.flow(name, &source)
    }

    /// Writes the main script and returns its path.
    pub fn script(&self, source: &str) -> PathBuf {
        let path = self.dir.path().join("main.rhai");
        std::fs::write(&path, source).unwrap();
        path
    }

    /// `payhost run main.rhai` against `base_url`, with the stripe plugin (or
    /// the one chosen), a 60 s timeout (or the one chosen) and the test
    /// secret in STRIPE_SECRET_KEY (plus the scenario's environment).
    pub fn command(&self, base_url: &str) -> Command {
        let mut cmd = crate::payhost();
        cmd.arg("run")
            .arg(self.dir.path().join("main.rhai"))
            .arg("--plugin")
            .arg(crate::plugin(&self.plugin))
            .arg("--flows")
            .arg(self.flows_dir())
            .args(["--base-url", base_url, "--timeout"])
            .arg(self.timeout.to_string())
            .env("STRIPE_SECRET_KEY", TEST_SECRET)
            .env("PAYHOST_CACHE_DIR", crate::cache_dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, base_url: &str) -> RunOutput {
        run_command(self.command(base_url))
    }

    /// `payhost run main.rhai` with several plugins, each `(name, base
    /// URL)`: `--plugin target/plugins/<name>.wasm --base-url name=URL`.
    pub fn command_providers(&self, providers: &[(&str, &str)]) -> Command {
        let mut cmd = crate::payhost();
        cmd.arg("run")
            .arg(self.dir.path().join("main.rhai"))
            .arg("--flows")
            .arg(self.flows_dir())
            .arg("--timeout")
            .arg(self.timeout.to_string());
        for (name, base_url) in providers {
            cmd.arg("--plugin")
                .arg(crate::plugin(name))
                .arg("--base-url")
                .arg(format!("{name}={base_url}"));
        }
        cmd.env("STRIPE_SECRET_KEY", TEST_SECRET)
            .env("PAYHOST_CACHE_DIR", crate::cache_dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

pub fn run_command(mut cmd: Command) -> RunOutput {
    let output = cmd.output().expect("payhost runs");
    RunOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The repository's `flows/` directory.
pub fn repo_flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows")
}

/// A `payhost worker` child process whose output goes to files the test can
/// read while it runs. Killed when dropped.
pub struct WorkerProcess {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scenario {
    /// Starts `payhost worker --worker-id <worker_id>` on these flows.
    pub fn worker(
        &self,
        redis_url: &str,
        worker_id: &str,
        base_url: &str,
        extra: &[&str],
    ) -> WorkerProcess {
        let mut cmd = self.host_command("worker", base_url, extra);
        cmd.args(["--redis", redis_url, "--worker-id", worker_id]);
        WorkerProcess::spawn(cmd, "reading payhost:stream:")
    }

    /// `payhost <subcommand>` (worker, serve) on these flows, with the
    /// scenario's plugin and environment and the test secret.
    fn host_command(&self, subcommand: &str, base_url: &str, extra: &[&str]) -> Command {
        let mut cmd = crate::payhost();
        cmd.args([subcommand, "--base-url", base_url])
            .arg("--plugin")
            .arg(crate::plugin(&self.plugin))
            .arg("--flows")
            .arg(self.flows_dir())
            .args(extra)
            .env("STRIPE_SECRET_KEY", TEST_SECRET)
            .env("PAYHOST_CACHE_DIR", crate::cache_dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts `payhost serve --listen 127.0.0.1:0` on these flows, with the
    /// scenario's plugin and environment, and waits until it listens.
    pub fn serve(&self, base_url: &str, extra: &[&str]) -> ServeProcess {
        let mut cmd = self.host_command("serve", base_url, extra);
        cmd.args(["--listen", "127.0.0.1:0"]);
        let process = WorkerProcess::spawn(cmd, "listening on http://");
        let stderr = process.stderr();
        let address = stderr
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("the address follows `listening on`")
            .to_string();
        ServeProcess { process, address }
    }

    /// `payhost run main.rhai --redis <url>` with the usual settings.
    pub fn command_redis(&self, base_url: &str, redis_url: &str) -> Command {
        let mut cmd = self.command(base_url);
        cmd.args(["--redis", redis_url]);
        cmd
    }
}

/// A running `payhost serve`: its process and the address it listens on.
pub struct ServeProcess {
    pub process: WorkerProcess,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl std::ops::Deref for ServeProcess {
    type Target = WorkerProcess;
    fn deref(&self) -> &WorkerProcess {
        &self.process
    }
}

impl std::ops::DerefMut for ServeProcess {
    fn deref_mut(&mut self) -> &mut WorkerProcess {
        &mut self.process
    }
}

impl ServeProcess {
    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl WorkerProcess {
    /// Spawns `cmd` with its output in files, and waits (30 s at most) until
    /// its stderr shows `ready`.
    pub fn spawn(mut cmd: Command, ready: &str) -> WorkerProcess {
        let dir = tempfile::tempdir().unwrap();
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().expect("payhost starts");
        let mut process = WorkerProcess {
            child,
            stdout,
            stderr,
            _dir: dir,
        };
        let start = std::time::Instant::now();
        while !process.stderr().contains(ready) {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "payhost exited ({status}) before printing {ready:?}\n--- stderr:\n{}",
                    process.stderr()
                );
            }
            process.wait_a_little(start, ready);
        }
        process
    }

    #[track_caller]
    fn wait_a_little(&self, start: std::time::Instant, needle: &str) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "payhost never printed {needle:?}\n--- stdout:\n{}--- stderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stdout has a line containing `needle`.
    #[track_caller]
    pub fn wait_for_stdout(&self, needle: &str, limit: std::time::Duration) {
        self.wait(|w| w.stdout().contains(needle), needle, limit)
    }

    #[track_caller]
    pub fn wait_for_stderr(&self, needle: &str, limit: std::time::Duration) {
        self.wait(|w| w.stderr().contains(needle), needle, limit)
    }

    #[track_caller]
    fn wait(&self, done: impl Fn(&Self) -> bool, needle: &str, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < limit,
                "worker never printed {needle:?}\n--- stdout:\n{}--- stderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The process id, e.g. to send it a signal.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the worker gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("worker exits")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
