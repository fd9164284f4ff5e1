//! Webhooks: signed Stripe deliveries accepted per second by `payhost
//! serve`, and how long each waits for its 200, against a bare hyper server
//! answering 200 to the same requests.
//!
//! Both servers are child processes started fresh for every round, so each
//! round's figure is that server's alone and no work of one (payhost's flows
//! still draining, say) runs into the next:
//!
//! - payhost: the release `payhost serve --listen 127.0.0.1:0` with the
//!   Stripe plugin and `STRIPE_WEBHOOK_SECRET`, as a deployment runs it
//!   (embedded queue, default threads and limits). Every delivery is read,
//!   handed to a webhook thread (the plugin's `check-webhook`, the host's
//!   HMAC-SHA256 and timestamp check, the plugin's `parse-webhook`), passes
//!   the dedupe window and is queued as the flow `on_payment_intent_succeeded`
//!   (a script that does nothing, so the figure is the acceptance path plus
//!   the cheapest flow the queue can run) before its 200 goes out;
//! - bare: this binary's `child webhooks-bare`, a hyper HTTP/1 server on the
//!   same two-thread runtime payhost's server runs on, which reads each body
//!   to the end and answers 200 without looking at it. That is what the
//!   machine's HTTP stack costs for this traffic; payhost's share of it is
//!   the price of verifying, deduplicating and queueing.
//!
//! The client is the same for both and lives in this process: `CLIENTS`
//! keep-alive HTTP/1.1 connections (hyper's client connection, one task
//! each), opened and warmed with one delivery each before the clock starts,
//! then taking the next delivery from a shared counter until none is left.
//! Deliveries are built and signed before the clock (`t` = now, so well
//! inside the 300 s tolerance): 1.4 KB `payment_intent.succeeded` events
//! with unique ids, the `Stripe-Signature` header Stripe would send. A
//! round's rate is deliveries / (first send to last 200); a delivery's
//! latency runs from handing the request to the connection to having the
//! whole answer. Any answer but 200 fails the measurement, and after each
//! payhost round its closing line must count every delivery as a new event,
//! none refused: no figure comes from a run that lost or refused anything.
//!
//! Rounds alternate (payhost, bare, payhost, bare, ...), both sides of a
//! round on the same deliveries; the ratio is taken per round and the table
//! gives the median of the rounds' ratios with the smallest and largest, so
//! a disturbed round widens the spread instead of moving the result.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::Sha256;

use crate::fixtures;
use crate::stats::{self, Spread};
use crate::stub::PAYMENT_INTENT_JSON;

/// Concurrent keep-alive connections (well under `payhost serve`'s backlog
/// of 1,024 deliveries waiting for a webhook thread, so none gets a 503).
pub const CLIENTS: usize = 64;
/// The webhook signing secret both sides are sent (only payhost checks it).
const SECRET: &str = "whsec_payhost_bench_5f4e3d2c1b0a";
const EVENT_TYPE: &str = "payment_intent.succeeded";
/// The flow each event runs in payhost (`on_<type>`), empty.
const FLOW: &str = "on_payment_intent_succeeded";
const PATH: &str = "/webhooks/stripe";
/// Both servers print this, then the address, on stderr when they listen.
const LISTENING: &str = "listening on http://";
/// Failure bound for starting, delivering and stopping.
const LIMIT: Duration = Duration::from_secs(120);

/// What the measurement starts: payhost, its plugin, and this binary (for
/// the bare server).
pub struct Tools<'a> {
    pub payhost_bin: &'a Path,
    pub plugin: &'a Path,
    pub bench_exe: &'a Path,
}

/// One round of one side.
#[derive(Debug, Clone)]
pub struct Round {
    /// Deliveries answered 200 per second.
    pub per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub seconds: f64,
    /// The server's CPU time (user + system) while the clock ran, per
    /// delivery, by thread name (`payhost-webhook`, `payhost-io`, ...):
    /// where the time goes.
    pub cpu_us: Vec<(String, f64)>,
}

#[derive(Debug, Clone)]
pub struct Figures {
    /// Timed deliveries per round (each connection's warm-up one is extra).
    pub deliveries: usize,
    pub clients: usize,
    pub payhost: Vec<Round>,
    pub bare: Vec<Round>,
    /// Per payhost round: SIGTERM to exit, i.e. the accepted events' flows
    /// that were still queued when the last 200 went out, plus shutdown.
    pub payhost_drain_s: Vec<f64>,
}

impl Figures {
    /// A figure of each payhost round over the same figure of its bare round.
    fn ratios(&self, figure: impl Fn(&Round) -> f64) -> Spread {
        let side = |rounds: &[Round]| rounds.iter().map(&figure).collect::<Vec<_>>();
        Spread::ratios(&side(&self.payhost), &side(&self.bare))
    }

    /// payhost's accepted/s as a share of bare's, per round.
    pub fn rate_share(&self) -> Spread {
        self.ratios(|r| r.per_s)
    }

    /// payhost's p50 latency over bare's, per round.
    pub fn p50_ratio(&self) -> Spread {
        self.ratios(|r| r.p50_us)
    }

    /// payhost's p99 latency over bare's, per round.
    pub fn p99_ratio(&self) -> Spread {
        self.ratios(|r| r.p99_us)
    }

    pub fn payhost_spread(&self, figure: impl Fn(&Round) -> f64) -> Spread {
        Spread::of_each(&self.payhost, figure)
    }

    pub fn bare_spread(&self, figure: impl Fn(&Round) -> f64) -> Spread {
        Spread::of_each(&self.bare, figure)
    }
}

/// `rounds` interleaved rounds of `deliveries` deliveries against each side.
pub fn measure(tools: &Tools, deliveries: usize, rounds: usize) -> anyhow::Result<Figures> {
    let flows = tempfile::Builder::new()
        .prefix("payhost-bench-webhooks")
        .tempdir()?;
    std::fs::write(
        flows.path().join(format!("{FLOW}.rhai")),
        "// accepted: nothing to do\n",
    )?;
    let mut figures = Figures {
        deliveries,
        clients: CLIENTS,
        payhost: Vec::new(),
        bare: Vec::new(),
        payhost_drain_s: Vec::new(),
    };
    for round in 0..rounds.max(1) {
        // Signed now, for this round's pair: fresh timestamps, unique ids.
        let signed = Arc::new(sign_deliveries(round, CLIENTS + deliveries)?);

        let payhost = Server::start(payhost_command(tools, flows.path()), "payhost serve")?;
        figures.payhost.push(deliver(&payhost, &signed)?);
        let (stderr, drain) = payhost.stop()?;
        check_closing_line(&stderr, signed.len())?;
        figures.payhost_drain_s.push(drain.as_secs_f64());

        let mut bare = Command::new(tools.bench_exe);
        bare.args(["child", "webhooks-bare"]);
        let bare = Server::start(bare, "the bare hyper server")?;
        figures.bare.push(deliver(&bare, &signed)?);
        bare.stop()?;

        let (p, b) = (&figures.payhost[round], &figures.bare[round]);
        let cpu = |r: &Round| {
            r.cpu_us
                .iter()
                .map(|(name, us)| format!("{name} {us:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "bench: webhooks round {}: payhost {:.0}/s (p50 {:.2} ms, p99 {:.2} ms; CPU µs per delivery: {}), \
             bare {:.0}/s (p50 {:.2} ms, p99 {:.2} ms; CPU µs per delivery: {})",
            round + 1,
            p.per_s,
            p.p50_us / 1e3,
            p.p99_us / 1e3,
            cpu(p),
            b.per_s,
            b.p50_us / 1e3,
            b.p99_us / 1e3,
            cpu(b),
        );
    }
    Ok(figures)
}

fn payhost_command(tools: &Tools, flows: &Path) -> Command {
    let mut command = Command::new(tools.payhost_bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--plugin")
        .arg(tools.plugin)
        .arg("--flows")
        .arg(flows)
        // Flows here send nothing; port 9 (discard) would refuse if one did.
        .args(["--base-url", "http://127.0.0.1:9"])
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("STRIPE_SECRET_KEY", fixtures::SECRET)
        // The default filter (warn): a delivery logs nothing.
        .env_remove("RUST_LOG");
    command
}

/// One delivery, ready to send.
struct Delivery {
    body: Bytes,
    signature: HeaderValue,
}

/// `n` events with ids unique to `round`, each signed as Stripe signs it:
/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`.
fn sign_deliveries(round: usize, n: usize) -> anyhow::Result<Vec<Delivery>> {
    let object: serde_json::Value = serde_json::from_str(PAYMENT_INTENT_JSON)?;
    let t = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    (0..n)
        .map(|i| {
            let body = json!({
                "id": format!("evt_bench_{round}_{i:07}"),
                "object": "event",
                "api_version": "2024-06-20",
                "created": t,
                "livemode": false,
                "pending_webhooks": 1,
                "request": {"id": null, "idempotency_key": null},
                "type": EVENT_TYPE,
                "data": {"object": object},
            })
            .to_string();
            let signature = format!("t={t},v1={}", hmac_hex(SECRET, &format!("{t}.{body}")));
            Ok(Delivery {
                body: Bytes::from(body),
                signature: HeaderValue::from_str(&signature)?,
            })
        })
        .collect()
}

fn hmac_hex(secret: &str, signed: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends every delivery over `CLIENTS` keep-alive connections to `server`:
/// the first `CLIENTS` one per connection before the clock starts (warm-up),
/// the rest timed.
fn deliver(server: &Server, deliveries: &Arc<Vec<Delivery>>) -> anyhow::Result<Round> {
    let address = server.address.as_str();
    let pid = server.child.id();
    let timed = deliveries.len().saturating_sub(CLIENTS);
    let runtime = fixtures::http_runtime()?;
    let result = runtime.block_on(async {
        let host = HeaderValue::from_str(address)?;
        let mut connections = Vec::with_capacity(CLIENTS);
        for (n, delivery) in deliveries.iter().take(CLIENTS).enumerate() {
            let stream = tokio::net::TcpStream::connect(address)
                .await
                .with_context(|| format!("connecting to {address}"))?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            post(&mut sender, &host, delivery)
                .await
                .with_context(|| format!("warm-up delivery {n}"))?;
            connections.push(sender);
        }
        let next = Arc::new(AtomicUsize::new(CLIENTS));
        let cpu_before = thread_cpu(pid);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for mut sender in connections {
            let (next, deliveries, host) = (next.clone(), deliveries.clone(), host.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(timed / CLIENTS + 1);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(delivery) = deliveries.get(i) else {
                        break;
                    };
                    let took = post(&mut sender, &host, delivery)
                        .await
                        .with_context(|| format!("delivery {i}"))?;
                    latencies.push(took.as_secs_f64() * 1e6);
                }
                anyhow::Ok(latencies)
            });
        }
        let mut latencies = Vec::with_capacity(timed);
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        let elapsed = started.elapsed();
        anyhow::Ok((elapsed, cpu_spent(&cpu_before, &thread_cpu(pid)), latencies))
    });
    runtime.shutdown_background();
    let (elapsed, cpu, mut latencies) = result?;
    let per_delivery = |seconds: f64| seconds * 1e6 / latencies.len().max(1) as f64;
    let cpu_us = cpu
        .into_iter()
        .map(|(name, seconds)| (name, per_delivery(seconds)))
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Round {
        per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: stats::percentile(&latencies, 50.0),
        p99_us: stats::percentile(&latencies, 99.0),
        max_us: latencies.last().copied().unwrap_or(f64::NAN),
        seconds: elapsed.as_secs_f64(),
        cpu_us,
    })
}

/// Each thread of process `pid`: its name and CPU seconds so far (user +
/// system), from /proc/PID/task/TID/stat. Empty if the process is gone.
fn thread_cpu(pid: u32) -> BTreeMap<u32, (String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // "tid (name) state ppid ...": the name may hold spaces and
            // parentheses, so the fields start after the last ')'.
            let (head, fields) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let fields: Vec<&str> = fields.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat(5); `fields`
            // starts at field 3.
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((tid, (name, (utime + stime) / ticks)))
        })
        .collect()
}

/// CPU seconds between two [`thread_cpu`] readings, summed by thread name
/// without its number (`payhost-flow-3` counts as `payhost-flow`), largest
/// first. Threads gone by the second reading are not counted.
fn cpu_spent(
    before: &BTreeMap<u32, (String, f64)>,
    after: &BTreeMap<u32, (String, f64)>,
) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (name, seconds)) in after {
        let earlier = before.get(tid).map_or(0.0, |(_, s)| *s);
        let group = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        *by_name.entry(group.to_string()).or_default() += seconds - earlier;
    }
    let mut spent: Vec<(String, f64)> = by_name.into_iter().filter(|(_, s)| *s > 0.0).collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    spent
}

/// POSTs one delivery and reads the whole answer; fails unless it is a 200.
/// Returns the time from handing the request over to the last byte.
async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &HeaderValue,
    delivery: &Delivery,
) -> anyhow::Result<Duration> {
    let request = hyper::Request::post(PATH)
        .header(HOST, host.clone())
        .header(CONTENT_TYPE, "application/json")
        .header("stripe-signature", delivery.signature.clone())
        .body(Full::new(delivery.body.clone()))?;
    sender.ready().await?;
    let sent = Instant::now();
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let took = sent.elapsed();
    if status != hyper::StatusCode::OK {
        bail!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(took)
}

/// Checks payhost's closing line ("N deliveries accepted (N new events, 0
/// duplicates), 0 refused") against the `sent` deliveries.
fn check_closing_line(stderr: &str, sent: usize) -> anyhow::Result<()> {
    let expected =
        format!("{sent} deliveries accepted ({sent} new events, 0 duplicates), 0 refused");
    if !stderr.contains(&expected) {
        bail!("payhost serve did not close with `{expected}`; its stderr:\n{stderr}");
    }
    if stderr.contains("event flow failed") {
        bail!("an event flow failed in payhost serve; its stderr:\n{stderr}");
    }
    Ok(())
}

/// A server child process; killed if dropped before [`Server::stop`].
struct Server {
    child: Child,
    address: String,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `command` with its stderr in a file, and waits until it says
    /// where it listens.
    fn start(mut command: Command, what: &str) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("payhost-bench-server")
            .tempdir()?;
        let stderr = dir.path().join("stderr");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {what}: {command:?}"))?;
        let mut server = Server {
            child,
            address: String::new(),
            stderr,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let text = server.stderr_text();
            if let Some(rest) = text.split(LISTENING).nth(1)
                && let Some(end) = rest.find([';', '\n'])
            {
                server.address = rest[..end].to_string();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{what} exited ({status}) before listening; its stderr:\n{text}");
            }
            if started.elapsed() > LIMIT {
                bail!("{what} did not listen within {LIMIT:?}; its stderr:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.stderr) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// SIGTERM, then waits for the exit; returns its stderr and how long
    /// the exit took.
    fn stop(mut self) -> anyhow::Result<(String, Duration)> {
        let asked = Instant::now();
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        while self.child.try_wait()?.is_none() {
            if asked.elapsed() > LIMIT {
                bail!(
                    "no exit within {LIMIT:?} of SIGTERM; its stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok((self.stderr_text(), asked.elapsed()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `child webhooks-bare`: the baseline server. Answers 200 to every request
/// once its body is read, on the two-thread runtime payhost's server uses
/// (so its threads are named `payhost-io` too), until killed (SIGTERM's
/// default action ends it).
pub fn child_bare() -> anyhow::Result<()> {
    fixtures::http_runtime()?.block_on(serve_bare())
}

async fn serve_bare() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("bare hyper server: {LISTENING}{};", listener.local_addr()?);
    loop {
        // Accepted as `payhost serve` accepts (no TCP_NODELAY, hyper's
        // defaults), so the two differ in the work per delivery only.
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request: hyper::Request<Incoming>| async {
                // Read the body to the end, as payhost does before it
                // verifies anything.
                let _ = request.into_body().collect().await;
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_summed_by_thread_name_without_its_number() {
        let reading = |v: &[(u32, &str, f64)]| {
            v.iter()
                .map(|(tid, name, s)| (*tid, (name.to_string(), *s)))
                .collect::<BTreeMap<_, _>>()
        };
        let before = reading(&[(1, "payhost", 2.0), (2, "payhost-flow-0", 1.0)]);
        let after = reading(&[
            (1, "payhost", 2.0),
            (2, "payhost-flow-0", 1.5),
            (3, "payhost-flow-1", 0.25),
            (4, "payhost-io", 1.0),
        ]);
        assert_eq!(
            cpu_spent(&before, &after),
            [
                ("payhost-io".to_string(), 1.0),
                ("payhost-flow".to_string(), 0.75)
            ]
        );
    }

    #[test]
    fn the_signature_is_stripes_hmac_in_lower_case_hex() {
        // Python: hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            hmac_hex("whsec_test", "1700000000.{}"),
            "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
