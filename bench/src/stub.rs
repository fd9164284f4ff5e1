//! The local stub "Stripe": a hyper server on 127.0.0.1 that answers every
//! request with the same canned payment-intent JSON, over HTTP/1.1 or, to a
//! client that opens with HTTP/2's preface, h2c (no limit on concurrent
//! streams, so "N in flight" can be N streams on one connection).
//!
//! Every measurement that sends HTTP talks to one instance of this server,
//! started once by the bench process, so the server's own cost is the same
//! for payhost and for each baseline and cancels out of the ratios. It runs
//! on its own tokio runtime (its own threads), keeps connections alive, reads
//! each request body to the end (as a real server would) and never logs.
//!
//! A delay is chosen per request by a path prefix, so one server serves the
//! fast and the slow measurements: a base URL `http://127.0.0.1:PORT/d/4000`
//! makes every request under it wait 4,000 ms before the answer. Under
//! `/h/<ms>` (see [`Stub::hold_url`]) requests are held until N of them are
//! open at once, then answered after the delay, so "N requests in flight"
//! holds however fast or slow a client is at opening them. The server
//! counts requests received and requests being answered, so a measurement
//! can wait until N requests really are in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// The body of every answer: a payment intent as Stripe returns it
/// (about 1.5 KB, the size flows really parse).
pub const PAYMENT_INTENT_JSON: &str = r#"{
  "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
  "object": "payment_intent",
  "amount": 2000,
  "amount_capturable": 0,
  "amount_details": {"tip": {}},
  "amount_received": 0,
  "application": null,
  "application_fee_amount": null,
  "automatic_payment_methods": {"enabled": true},
  "canceled_at": null,
  "cancellation_reason": null,
  "capture_method": "automatic",
  "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
  "confirmation_method": "automatic",
  "created": 1680800504,
  "currency": "usd",
  "customer": "cus_NffrFeUfNV2Hib",
  "description": "payhost benchmark order 6735",
  "invoice": null,
  "last_payment_error": null,
  "latest_charge": null,
  "livemode": false,
  "metadata": {"order_id": "6735", "channel": "web"},
  "next_action": null,
  "on_behalf_of": null,
  "payment_method": null,
  "payment_method_options": {
    "card": {
      "installments": null,
      "mandate_options": null,
      "network": null,
      "request_three_d_secure": "automatic"
    },
    "link": {"persistent_token": null}
  },
  "payment_method_types": ["card", "link"],
  "processing": null,
  "receipt_email": "jenny.rosen@example.com",
  "review": null,
  "setup_future_usage": null,
  "shipping": null,
  "source": null,
  "statement_descriptor": null,
  "statement_descriptor_suffix": null,
  "status": "requires_payment_method",
  "transfer_data": null,
  "transfer_group": null
}"#;

/// Request counters, shared with the serving tasks.
#[derive(Default)]
struct Counters {
    received: AtomicU64,
    answered: AtomicU64,
    gate: Mutex<Option<Arc<Gate>>>,
}

/// Opens when the stub has received `target` requests in all.
struct Gate {
    target: u64,
    open: watch::Sender<bool>,
}

/// The longest a held request waits for its gate.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// The running server; it stops when dropped.
pub struct Stub {
    addr: SocketAddr,
    counters: Arc<Counters>,
    runtime: Option<Runtime>,
}

/// How the stub's threads are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeups {
    /// As any thread (`SCHED_OTHER`): a thread that wakes with work may
    /// take the core from a running one at once.
    Preempt,
    /// `SCHED_BATCH`: the threads get their fair share of the cores but never
    /// preempt a running thread when they wake; they wait for the
    /// scheduler's tick. For a measurement of one thread's latency, where the
    /// stub stands in for a provider on another machine.
    Yield,
}

impl Stub {
    /// Starts the server on 127.0.0.1 (a free port) with `threads` threads.
    pub fn start(threads: usize) -> anyhow::Result<Stub> {
        Stub::start_with(threads, Wakeups::Preempt)
    }

    /// [`Stub::start`], its threads scheduled as `wakeups` says.
    pub fn start_with(threads: usize, wakeups: Wakeups) -> anyhow::Result<Stub> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("stub-http")
            .on_thread_start(move || {
                if wakeups == Wakeups::Yield
                    && let Err(err) = payhost::http::schedule_as_batch()
                {
                    // The measurement then sees more preemption than it should.
                    eprintln!("bench: a stub thread stays normally scheduled: {err}");
                }
            })
            .enable_all()
            .build()
            .context("stub: cannot start its runtime")?;
        let counters = Arc::new(Counters::default());
        let listener = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            // Up to 10,000 clients connect at once; the kernel caps this
            // at net.core.somaxconn.
            socket.listen(65_535)
        })?;
        let addr = listener.local_addr()?;
        let serving = counters.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, most likely: back off briefly.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let counters = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, counters.clone()));
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http1().keep_alive(true);
                    builder.http2().max_concurrent_streams(None);
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Stub {
            addr,
            counters,
            runtime: Some(runtime),
        })
    }

    /// The base URL under which every request waits `delay` first.
    pub fn base_url(&self, delay: Duration) -> String {
        format!("http://{}/d/{}", self.addr, delay.as_millis())
    }

    /// A base URL under which requests are held until `n` more requests
    /// than now have arrived, then answered after `delay`.
    pub fn hold_url(&self, n: u64, delay: Duration) -> String {
        let (open, _) = watch::channel(false);
        let gate = Gate {
            target: self.received() + n,
            open,
        };
        *self.counters.gate.lock().expect("gate") = Some(Arc::new(gate));
        format!("http://{}/h/{}", self.addr, delay.as_millis())
    }

    /// Requests whose headers arrived so far.
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// Requests received and not yet answered (nor given up by their
    /// client).
    pub fn open(&self) -> u64 {
        self.received()
            .saturating_sub(self.counters.answered.load(Ordering::Relaxed))
    }

    /// Waits until at least `n` requests are open, or `limit` passes.
    pub fn wait_open(&self, n: u64, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.open() < n {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `/d/<ms>/...` or `/h/<ms>/...`: the delay in milliseconds, and whether
/// to hold at the gate first; anything else answers at once.
fn delay_of(path: &str) -> (Duration, bool) {
    let (rest, hold) = match (path.strip_prefix("/d/"), path.strip_prefix("/h/")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return (Duration::ZERO, false),
    };
    let delay = rest
        .split('/')
        .next()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    (delay, hold)
}

/// Adds one to `answered` when dropped: one per request received.
struct Closes(Arc<Counters>);

impl Drop for Closes {
    fn drop(&mut self) {
        self.0.answered.fetch_add(1, Ordering::Relaxed);
    }
}

async fn answer(
    request: Request<Incoming>,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = counters.received.fetch_add(1, Ordering::Relaxed) + 1;
    // Counted as answered however this ends: with the answer below, or
    // dropped unanswered when the client resets the stream or closes the
    // connection (else it would count as open for the rest of the run).
    let _closes = Closes(counters.clone());
    let (delay, hold) = delay_of(request.uri().path());
    // Read the form body to the end, as a real server does.
    let _ = request.into_body().collect().await;
    let gate = if hold {
        counters.gate.lock().expect("gate").clone()
    } else {
        None
    };
    if let Some(gate) = gate {
        if received >= gate.target {
            let _ = gate.open.send(true);
        }
        let mut open = gate.open.subscribe();
        let _ = tokio::time::timeout(HOLD_LIMIT, open.wait_for(|open| *open)).await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("request-id", "req_bench")
        .body(Full::new(Bytes::from_static(
            PAYMENT_INTENT_JSON.as_bytes(),
        )))
        .expect("static response");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_comes_from_the_path_prefix() {
        assert_eq!(
            delay_of("/d/1500/v1/payment_intents"),
            (Duration::from_millis(1500), false)
        );
        assert_eq!(
            delay_of("/h/1000/v1/x"),
            (Duration::from_millis(1000), true)
        );
        assert_eq!(delay_of("/d/0/v1/x"), (Duration::ZERO, false));
        assert_eq!(delay_of("/v1/payment_intents"), (Duration::ZERO, false));
    }

    /// A request its client gives up on (here: the connection closes while
    /// it is held) stops counting as open, so later measurements on the same
    /// server see only their own requests.
    #[test]
    fn a_request_given_up_by_its_client_is_no_longer_open() {
        use std::io::Write;
        let stub = Stub::start(1).unwrap();
        let url = stub.hold_url(2, Duration::ZERO);
        let path = url.split_once(&stub.addr.to_string()).unwrap().1;
        let wait_for = |open: u64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while stub.open() != open {
                assert!(
                    std::time::Instant::now() < deadline,
                    "open: {}",
                    stub.open()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let mut client = std::net::TcpStream::connect(stub.addr).unwrap();
        write!(
            client,
            "POST {path}/v1/x HTTP/1.1\r\nhost: stub\r\ncontent-length: 0\r\n\r\n"
        )
        .unwrap();
        wait_for(1);
        drop(client);
        wait_for(0);
        assert_eq!(stub.received(), 1);
    }
}
