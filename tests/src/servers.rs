//! The servers the tests talk to, each a child process on 127.0.0.1 owned by
//! one fixture value: started ready to use, stopped on drop.
//!
//! localstripe and stripe-stateful-mock run through the wrappers in
//! tests/servers, started with `--port 0`: they bind a free port themselves
//! and name it in a readiness line (`... listening on http://127.0.0.1:PORT`),
//! so two tests can never race for a port. A server is ready once that line
//! is out and one HTTP request to it is answered. redis-server gets a port
//! from [`free_port`] (retried if it turns out taken) and is ready when it
//! answers PING.
//!
//! Each child runs in its own process group; drop kills the group and reaps
//! it. Its stdout and stderr go to a log file in the fixture's temporary
//! directory, shown in the panic message when it fails to start.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::try_http_request;
use crate::{env_path, free_port};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// A running localstripe (PyPI `localstripe`): customers, products, payment
/// intents and payment methods, plans and plan-based subscriptions; strict
/// about unknown parameters; no prices. Fresh, empty state per instance.
pub struct LocalStripe {
    server: Wrapped,
}

impl LocalStripe {
    /// Starts `$PAYHOST_PYTHON $PAYHOST_SERVERS/localstripe_server.py` and
    /// waits until it answers (panics with its output if it does not within
    /// 20 s).
    pub fn start() -> LocalStripe {
        let script = env_path("PAYHOST_SERVERS").join("localstripe_server.py");
        let mut command = Command::new(env_path("PAYHOST_PYTHON"));
        command.arg(script);
        LocalStripe {
            server: Wrapped::start("localstripe", command),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }
}

/// A running stripe-stateful-mock (npm): customers, products, prices (and
/// price-based subscriptions), plans, charges, `Idempotency-Key` replay; no
/// payment intents; accepts unknown parameters. Fresh, empty state per
/// instance.
pub struct StatefulMock {
    server: Wrapped,
}

impl StatefulMock {
    /// Starts `node $PAYHOST_SERVERS/stateful_mock_server.js` and waits until
    /// it answers (panics with its output if it does not within 20 s).
    pub fn start() -> StatefulMock {
        let script = env_path("PAYHOST_SERVERS").join("stateful_mock_server.js");
        let mut command = Command::new("node");
        command.arg(script);
        StatefulMock {
            server: Wrapped::start("stripe-stateful-mock", command),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url.clone()
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }
}

/// A running h2c server (`tests/servers/h2c_server.js`, Node's own HTTP/2):
/// cleartext HTTP/2 only, every request answered with a small payment
/// intent and logged with the connection (session) it came on.
pub struct H2cServer {
    base_url: String,
    process: ServerProcess,
    _dir: TempDir,
}

/// One request as the h2c server logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2cRequest {
    /// Which HTTP/2 connection, numbered from 1 in the order opened.
    pub session: u32,
    pub path: String,
    /// Requests held at the server when this one arrived (itself included).
    pub open: u32,
}

impl H2cServer {
    /// Starts the server; with `hold` > 0 the first `hold` requests are
    /// answered only once all of them have arrived.
    pub fn start(hold: usize) -> H2cServer {
        H2cServer::start_with(&["--hold", &hold.to_string()])
    }

    /// Starts the server turning the first `refuse` requests away with
    /// REFUSED_STREAM and, on each of the first `go_away` connections, the
    /// second request with a graceful GOAWAY that names only the first as
    /// processed; every other request is answered.
    pub fn turning_away(refuse: usize, go_away: usize) -> H2cServer {
        H2cServer::start_with(&[
            "--refuse",
            &refuse.to_string(),
            "--go-away",
            &go_away.to_string(),
        ])
    }

    fn start_with(args: &[&str]) -> H2cServer {
        let mut command = Command::new("node");
        command
            .arg(env_path("PAYHOST_SERVERS").join("h2c_server.js"))
            .args(args);
        // An HTTP/1 probe gets no answer from an h2c-only server: the line
        // it prints once listening is the readiness signal.
        let (process, dir, base_url) = Wrapped::spawn("h2c-server", command);
        H2cServer {
            base_url,
            process,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The requests turned away so far, in order, each as `refused
    /// session=S` or `go-away session=S`.
    pub fn turned_away(&self) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter(|line| line.starts_with("refused ") || line.starts_with("go-away "))
            .map(|line| {
                let what = line.split(' ').next().unwrap_or("");
                format!(
                    "{what} session={}",
                    log_field(line, "session=").unwrap_or("")
                )
            })
            .collect()
    }

    /// Every request logged so far, in arrival order.
    pub fn requests(&self) -> Vec<H2cRequest> {
        self.process
            .log()
            .lines()
            .filter(|line| line.starts_with("request "))
            .map(|line| H2cRequest {
                session: log_field(line, "session=")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                path: log_field(line, "path=").unwrap_or_default().to_string(),
                open: log_field(line, "open=")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            })
            .collect()
    }
}

/// The value of `key` (`session=`, say) in one of the h2c server's
/// space-separated log lines.
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|word| word.strip_prefix(key))
}

/// A server started through one of the tests/servers wrappers.
struct Wrapped {
    base_url: String,
    port: u16,
    // Held for its Drop (which stops the server); declared before `_dir` so
    // the process stops before its log is deleted.
    _process: ServerProcess,
    _dir: TempDir,
}

impl Wrapped {
    /// Starts a wrapper on a free port, to exit when its stdin closes, and
    /// waits for the URL it announces: the process, its directory (holding
    /// its log) and that URL.
    fn spawn(name: &'static str, mut command: Command) -> (ServerProcess, TempDir, String) {
        let dir = temp_dir(name);
        let log = dir.path().join("server.log");
        command.args(["--port", "0", "--exit-on-stdin-eof"]);
        let mut process = ServerProcess::spawn(name, command, &log, true);
        let base_url = process.announced_url();
        (process, dir, base_url)
    }

    /// [`Wrapped::spawn`], then waits until it answers HTTP/1.
    fn start(name: &'static str, command: Command) -> Wrapped {
        let (mut process, dir, base_url) = Wrapped::spawn(name, command);
        let port = base_url
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| panic!("{name} announced an odd address: {base_url}"));
        process.wait_until(|_| {
            try_http_request("GET", &format!("{base_url}/"), &[], None)
                .ok()
                .map(drop)
        });
        Wrapped {
            base_url,
            port,
            _process: process,
            _dir: dir,
        }
    }
}

/// A running `redis-server` (`PAYHOST_REDIS_SERVER`) on 127.0.0.1, with its
/// own empty working directory, started as
/// `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no --dir DIR`
/// plus any extra arguments (later ones win).
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    // Declared before `dir`: the process stops before its files are deleted.
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl RedisServer {
    /// An in-memory Redis: no RDB snapshots, no AOF.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// With extra arguments after the defaults, e.g.
    /// `&["--appendonly", "yes", "--appendfsync", "always"]`.
    pub fn start_with(args: &[&str]) -> RedisServer {
        let dir = temp_dir("redis");
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        // The port was free a moment ago; if another process took it since,
        // try another one.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            match RedisServer::spawn(port, &args, dir.path()) {
                Ok(process) => {
                    return RedisServer {
                        port,
                        args,
                        process: Some(process),
                        dir,
                    };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server could not bind a free port five times; its last output:\n{last_log}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (`--dir`): its AOF and RDB files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server cleanly (`SHUTDOWN`: it writes what its configuration
    /// says to persist), keeping its port and directory for [`restart`].
    ///
    /// [`restart`]: RedisServer::restart
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = redis_command(self.port, "SHUTDOWN");
            process.wait_for_exit(Duration::from_secs(10));
        }
    }

    /// [`stop`](RedisServer::stop) (if running), then start again on the same
    /// port, in the same directory, with the same arguments.
    pub fn restart(&mut self) {
        self.stop();
        let process =
            RedisServer::spawn(self.port, &self.args, self.dir.path()).unwrap_or_else(|log| {
                panic!("redis-server did not restart on port {}:\n{log}", self.port)
            });
        self.process = Some(process);
    }

    /// SIGKILLs the server (no chance to write anything), then starts it
    /// again on the same port, in the same directory, with the same
    /// arguments: what survives is what it had persisted (its AOF, if on).
    pub fn crash_and_restart(&mut self) {
        // Dropping the process kills its group with SIGKILL and reaps it.
        drop(self.process.take());
        let process =
            RedisServer::spawn(self.port, &self.args, self.dir.path()).unwrap_or_else(|log| {
                panic!("redis-server did not restart on port {}:\n{log}", self.port)
            });
        self.process = Some(process);
    }

    /// Starts redis-server on `port` and waits for PONG. `Err` carries its
    /// output when it exited because the port was taken.
    fn spawn(port: u16, args: &[String], dir: &Path) -> Result<ServerProcess, String> {
        let mut command = Command::new(env_path("PAYHOST_REDIS_SERVER"));
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .arg("--dir")
            .arg(dir)
            .args(args);
        let log = dir.join(format!("redis-{port}.log"));
        let mut process = ServerProcess::spawn("redis-server", command, &log, false);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if redis_command(port, "PING").is_ok_and(|reply| reply == "+PONG") {
                return Ok(process);
            }
            if process.has_exited() {
                let output = process.log();
                if output.contains("Address already in use") {
                    return Err(output);
                }
                panic!("redis-server exited before it was ready; its output:\n{output}");
            }
            if Instant::now() > deadline {
                panic!(
                    "redis-server did not answer PING on port {port} within {}s; its output:\n{}",
                    READY_TIMEOUT.as_secs(),
                    process.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Sends one inline command and returns the first reply line.
fn redis_command(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_string())
}

/// One child process in its own process group, output to a log file.
struct ServerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Held open: the wrappers exit when it closes (`--exit-on-stdin-eof`).
    _stdin: Option<ChildStdin>,
}

impl ServerProcess {
    fn spawn(
        name: &'static str,
        mut command: Command,
        log: &Path,
        stdin_pipe: bool,
    ) -> ServerProcess {
        let out = File::create(log)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log.display()));
        let err = out
            .try_clone()
            .expect("cannot duplicate the log file handle");
        command
            .stdin(if stdin_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name} ({command:?}): {err}"));
        let stdin = child.stdin.take();
        ServerProcess {
            name,
            child,
            log: log.to_path_buf(),
            _stdin: stdin,
        }
    }

    /// Polls `ready` with the log's contents until it returns `Some`; panics
    /// with the log if the process exits first or the time runs out.
    fn wait_until<T>(&mut self, mut ready: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = self.log();
            if let Some(value) = ready(&log) {
                return value;
            }
            if self.has_exited() {
                panic!(
                    "{} exited before it was ready; its output:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} was not ready within {}s; its output:\n{log}",
                    self.name,
                    READY_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The URL a tests/servers wrapper announces once it listens, on a
    /// line `<name> listening on <url>`.
    fn announced_url(&mut self) -> String {
        let marker = format!("{} listening on ", self.name);
        self.wait_until(|log| {
            log.lines()
                .find_map(|line| line.strip_prefix(&marker))
                .map(|url| url.trim().to_string())
        })
    }

    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit by itself (it is killed
    /// on drop otherwise).
    fn wait_for_exit(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.has_exited() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// Kills a server started as the leader of its own process group, and
/// everything it forked (redis forks for AOF rewrites and snapshots; prism
/// runs under a shell), then reaps it.
pub(crate) fn stop_group(child: &mut std::process::Child) {
    if matches!(child.try_wait(), Ok(None)) {
        // The child leads its process group: its pid is the group id.
        let killed_group = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !killed_group {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("payhost-e2e-{name}-"))
        .tempdir()
        .expect("cannot create a temporary directory")
}
