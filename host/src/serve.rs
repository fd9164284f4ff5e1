//! `payhost serve`: receive providers' signed webhooks and run a flow per
//! event.
//!
//! One process: an HTTP/1 server (hyper) in front of a [`Host`]. A delivery
//! takes this path:
//!
//! 1. **Read** (the connection's task): `POST /webhooks/<provider>`, the body
//!    capped at `--max-body` and read within `--body-timeout`; headers must
//!    arrive within `--header-timeout` (hyper cuts slow clients off).
//! 2. **Verify and parse** (a webhook thread, one plugin instance each): the
//!    plugin's `check-webhook` names the signed bytes and the signatures;
//!    [`webhook::verify`] computes the MACs with the key the plugin never sees
//!    and checks the timestamp; `parse-webhook` turns the verified body into
//!    events, and each becomes a flow job `on_<type>` whose id is a hash of
//!    provider and event id ([`webhook::event_job_id`]).
//! 3. **Accept** (exactly once per event id): embedded, the acceptor task
//!    ([`accept_locally`]) owns a window of the last `--dedupe-window` event
//!    ids and hands new events to the host's flow threads; with `--redis`,
//!    each job is enqueued under its deterministic id (an existing id adds
//!    nothing, so a redelivery is recognised for as long as the record is
//!    retained) and any `payhost worker` for `--worker-id` runs it. Only then
//!    does the client get its 2xx (the scheme's accept body, e.g. Adyen's
//!    `[accepted]`).
//!
//! A refused delivery gets a 4xx naming the category only (never the key or
//! the expected signature) and one log line with the reason; no flow runs.
//! On SIGTERM or Ctrl-C the server stops accepting connections, lets the
//! requests in progress finish, and waits for the accepted events' flows
//! (embedded) before the process exits: an acknowledged event is not lost.
//!
//! Plugin upgrades ([`crate::upgrade`]: a new file at a `--plugin` path,
//! SIGHUP, or with `--redis` a version published with `payhost plugin
//! publish`) reach the webhook threads between deliveries: each compares
//! the providers' generation with its instance's and instantiates the new
//! version when it moved. The signing key and the webhook path stay those
//! read at start.
//!
//! State is owned, not shared: the dedupe window belongs to the acceptor
//! task, each plugin instance to its thread; handlers talk to them through
//! channels. The counters are atomics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, oneshot};

use crate::host::{Host, HostConfig};
use crate::ledger::Ledger;
use crate::plugin::wit;
use crate::queue::jobs::{JobStore, NewJob};
use crate::queue::redis::{self as rq, Publisher, RedisConfig};
use crate::queue::trust::JobKey;
use crate::queue::{JobInput, Placement, WorkSender};
use crate::upgrade::LiveProviders;
use crate::webhook::{self, EventJob, Refusal, SigningKey};

/// How `payhost serve` is configured.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The host: plugin, settings (the webhook key among them), flows,
    /// limits. Its provider `worker_id` is the worker id events are queued for.
    pub host: HostConfig,
    pub listen: SocketAddr,
    /// Queue events in Redis for `payhost worker` instead of running them here.
    pub redis: Option<RedisConfig>,
    pub limits: ServeLimits,
    /// How long shutdown waits for requests in progress and accepted flows.
    pub grace: Duration,
    /// Serve Prometheus metrics here (`host.metrics` records them).
    pub metrics_listen: Option<SocketAddr>,
}

/// The server's bounds; `Default` is where their defaults are written.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Refuse deliveries signed longer ago than this (0: no check).
    pub tolerance_secs: u64,
    /// Largest body accepted.
    pub max_body: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Time a client has to send its body.
    pub body_timeout: Duration,
    /// Event ids remembered by the embedded queue for exactly-once handling.
    pub dedupe_window: usize,
    /// Threads (each with its own plugin instance) verifying deliveries.
    pub webhook_threads: usize,
    /// Deliveries waiting for a webhook thread before new ones get a 503.
    pub backlog: usize,
    /// How long a delivery waits for Redis before it gets a 503.
    pub queue_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            tolerance_secs: webhook::DEFAULT_TOLERANCE_SECS,
            max_body: 1 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            dedupe_window: 100_000,
            webhook_threads: 2,
            backlog: 1024,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts for the closing line, kept whether or not metrics are served
/// (`--metrics-listen` adds `payhost_webhooks_total` and
/// `payhost_webhook_events_total`, by provider and reason, see
/// [`crate::metrics`]).
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    events: AtomicU64,
    duplicates: AtomicU64,
    refused: AtomicU64,
}

/// A delivery on its way to a webhook thread.
struct Delivery {
    request: wit::WebhookRequest,
    reply: oneshot::Sender<Result<Vec<EventJob>, Refusal>>,
}

/// How many of a delivery's events were new.
struct Accepted {
    new: usize,
    duplicates: usize,
}

/// Where verified events go.
#[derive(Clone)]
enum Sink {
    /// The embedded queue: the acceptor task (dedupe window) and the pool.
    Local(mpsc::Sender<(Vec<EventJob>, oneshot::Sender<Accepted>)>),
    /// Redis: enqueued under their deterministic ids.
    Redis {
        store: JobStore,
        key: Option<JobKey>,
        timeout: Duration,
    },
}

/// One provider's webhook path: its webhook threads and what it answers.
struct Receiver {
    accept_body: Bytes,
    verifier: crossbeam_channel::Sender<Delivery>,
}

/// What every connection's handler needs.
struct Shared {
    /// By provider name: the providers whose webhooks this server receives.
    receivers: HashMap<String, Receiver>,
    limits: ServeLimits,
    sink: Sink,
    counts: Arc<Counts>,
    /// `payhost_webhooks_total` and `payhost_webhook_events_total`.
    metrics: crate::metrics::WebhookMetrics,
}

/// Runs until SIGTERM/Ctrl-C. `ready` is told the bound address (the port
/// may have been 0) once the server accepts connections.
pub fn run_serve(options: ServeOptions, ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let mut redis_store = None;
    let host = Host::start(&options.host, |runtime| match &options.redis {
        None => Ok(Placement::Local),
        Some(config) => {
            let conn = runtime.block_on(rq::connect(&config.url))?;
            let store = JobStore::new(conn.clone()).with_retention(config.retention);
            runtime
                .block_on(store.ensure_group(&options.host.provider.worker_id))
                .context("cannot create the consumer group")?;
            redis_store = Some(store);
            Ok(Placement::Redis(Publisher::start(
                runtime.handle(),
                conn,
                config,
            )))
        }
    })?;
    let limits = options.limits.clone();
    let watch = match host.watch_plugins(options.redis.as_ref().map(|r| r.url.as_str())) {
        Ok(watch) => watch,
        Err(err) => {
            host.shutdown(false);
            return Err(err);
        }
    };
    let receivers = match receivers(&host, &limits, &options.host.provider.worker_id) {
        Ok(receivers) => receivers,
        Err(err) => {
            host.shutdown(false);
            return Err(err);
        }
    };
    let (sink, acceptor) = match (redis_store, &options.redis) {
        (Some(store), Some(config)) => (
            Sink::Redis {
                store,
                key: config.job_key.clone(),
                timeout: limits.queue_timeout,
            },
            None,
        ),
        _ => {
            let (tx, rx) = mpsc::channel(limits.backlog);
            let acceptor = host.runtime().spawn(accept_locally(
                rx,
                host.flows().clone(),
                limits.dedupe_window,
                options.grace,
            ));
            (Sink::Local(tx), Some(acceptor))
        }
    };
    let counts = Arc::new(Counts::default());
    let paths = receivers
        .keys()
        .map(|name| format!("POST /webhooks/{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let metrics = crate::metrics::WebhookMetrics::new(
        &options.host.metrics,
        receivers.keys().map(String::as_str),
    );
    let shared = Arc::new(Shared {
        receivers,
        limits,
        sink,
        counts: counts.clone(),
        metrics,
    });

    let listener = host
        .runtime()
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    if let Some(listen) = options.metrics_listen {
        let served = crate::metrics::serve(listen, options.host.metrics.clone(), None);
        if let Err(err) = host.runtime().block_on(served) {
            host.shutdown(false);
            return Err(err);
        }
    }
    let queue = match &options.redis {
        Some(config) => format!(
            "events queued in Redis at {} for worker id {}",
            rq::redacted_url(&config.url),
            options.host.provider.worker_id
        ),
        None => "events run here (embedded queue)".to_string(),
    };
    crate::say!(
        "payhost serve: listening on http://{address}; webhooks at {paths}; flows from {}; \
         {queue}",
        options.host.flows_dir.display()
    );
    ready(address);

    let served =
        host.runtime()
            .block_on(serve_until_signal(listener, shared.clone(), options.grace));
    // No new deliveries: the acceptor's channel closes once the last
    // handler is gone, and it then waits for the flows of what it accepted.
    // A connection that outlived the grace period keeps its handle; its
    // delivery was not acknowledged, so the provider sends it again.
    drop(shared);
    if let Some(acceptor) = acceptor {
        let wait = async { tokio::time::timeout(options.grace * 2, acceptor).await };
        if host.runtime().block_on(wait).is_err() {
            tracing::warn!("deliveries still in progress at shutdown were not acknowledged");
        }
    }
    drop(watch);
    host.shutdown(true);
    report(&counts);
    served
}

fn report(counts: &Counts) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    crate::say!(
        "payhost serve: {} deliveries accepted ({} new events, {} duplicates), {} refused",
        get(&counts.accepted),
        get(&counts.events),
        get(&counts.duplicates),
        get(&counts.refused),
    );
}

/// Accepts connections until a shutdown signal, then lets the requests in
/// progress finish (at most `grace`).
async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    grace: Duration,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let signal = crate::worker::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, say: keep serving the
                        // connections we have, try again shortly.
                        tracing::warn!("accepting a connection failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let header_timeout = shared.limits.header_timeout;
                let shared = shared.clone();
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(request, &shared, peer).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!("connection from {peer}: {err}");
                    }
                });
            }
            _ = &mut signal => break,
        }
    }
    drop(listener);
    crate::say!("payhost serve: stopping; finishing the deliveries in progress");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the {grace:?} grace period");
    }
    Ok(())
}

type Body = Full<Bytes>;

/// `result` label values of `payhost_webhooks_total` besides `accepted`: the
/// delivery was refused (4xx, it will not be accepted as sent), or could not
/// be handled now (503, the provider retries).
const REFUSED: &str = "refused";
const UNAVAILABLE: &str = "unavailable";

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(text.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn handle(request: Request<Incoming>, shared: &Shared, peer: SocketAddr) -> Response<Body> {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "ok\n"),
        (method, path) if path.starts_with("/webhooks/") => {
            let provider = &path["/webhooks/".len()..];
            let Some(receiver) = shared.receivers.get(provider) else {
                tracing::warn!(%peer, path, "webhook refused: no provider here by that name");
                shared.counts.refused.fetch_add(1, Ordering::Relaxed);
                // Not the path's name: a label must not be what a client sends.
                shared.metrics.webhook("", REFUSED, "unknown_provider");
                return reply(
                    StatusCode::NOT_FOUND,
                    "no webhooks for this provider here\n",
                );
            };
            if method != Method::POST {
                shared
                    .metrics
                    .webhook(provider, REFUSED, "method_not_allowed");
                let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
                response.headers_mut().insert(
                    hyper::header::ALLOW,
                    hyper::header::HeaderValue::from_static("POST"),
                );
                return response;
            }
            let response = receive(request, shared, provider, receiver, peer).await;
            if !response.status().is_success() {
                shared.counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            response
        }
        _ => reply(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// One delivery: read, verify, accept.
async fn receive(
    request: Request<Incoming>,
    shared: &Shared,
    provider: &str,
    receiver: &Receiver,
    peer: SocketAddr,
) -> Response<Body> {
    let limits = &shared.limits;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        tracing::warn!(%peer, provider, "webhook refused: body over {} bytes", limits.max_body);
        shared.metrics.webhook(provider, REFUSED, "body_too_large");
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "webhook refused: body too large\n",
        );
    }
    let body = match tokio::time::timeout(
        limits.body_timeout,
        Limited::new(body, limits.max_body).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            tracing::warn!(%peer, provider, "webhook refused: body over {} bytes", limits.max_body);
            shared.metrics.webhook(provider, REFUSED, "body_too_large");
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "webhook refused: body too large\n",
            );
        }
        Ok(Err(err)) => {
            tracing::warn!(%peer, provider, "webhook refused: reading the body failed: {err}");
            shared.metrics.webhook(provider, REFUSED, "unreadable_body");
            return reply(
                StatusCode::BAD_REQUEST,
                "webhook refused: unreadable body\n",
            );
        }
        Err(_) => {
            tracing::warn!(%peer, provider, "webhook refused: body not sent within {:?}", limits.body_timeout);
            shared.metrics.webhook(provider, REFUSED, "body_timeout");
            return reply(
                StatusCode::REQUEST_TIMEOUT,
                "webhook refused: body too slow\n",
            );
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (tx, rx) = oneshot::channel();
    let delivery = Delivery {
        request: wit::WebhookRequest {
            headers,
            body: body.to_vec(),
        },
        reply: tx,
    };
    if receiver.verifier.try_send(delivery).is_err() {
        tracing::warn!(%peer, provider, "webhook not processed: the webhook threads are behind");
        shared.metrics.webhook(provider, UNAVAILABLE, "busy");
        return reply(StatusCode::SERVICE_UNAVAILABLE, "busy, retry later\n");
    }
    let jobs = match rx.await {
        Ok(Ok(jobs)) => jobs,
        Ok(Err(refusal)) => {
            tracing::warn!(%peer, provider, reason = refusal.reason(), "webhook refused: {refusal}");
            shared.metrics.webhook(provider, REFUSED, refusal.reason());
            let status = StatusCode::from_u16(refusal.status()).expect("a valid status");
            return reply(status, format!("{}\n", refusal.public()));
        }
        Err(_) => {
            shared
                .metrics
                .webhook(provider, UNAVAILABLE, "shutting_down");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down, retry later\n",
            );
        }
    };
    let events: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.event_id.clone(), j.job.flow.clone()))
        .collect();
    match accept(&shared.sink, jobs).await {
        Ok(accepted) => {
            let counts = &shared.counts;
            counts.accepted.fetch_add(1, Ordering::Relaxed);
            counts
                .events
                .fetch_add(accepted.new as u64, Ordering::Relaxed);
            counts
                .duplicates
                .fetch_add(accepted.duplicates as u64, Ordering::Relaxed);
            shared.metrics.webhook(provider, "accepted", "ok");
            shared
                .metrics
                .webhook_events(provider, accepted.new, accepted.duplicates);
            for (id, flow) in &events {
                tracing::info!(provider, event = %id, flow, "webhook accepted");
            }
            if accepted.duplicates > 0 {
                tracing::info!(
                    provider,
                    "{} of the delivery's events were seen before: acknowledged, not run again",
                    accepted.duplicates
                );
            }
            let mut response = reply(StatusCode::OK, receiver.accept_body.clone());
            if receiver.accept_body.is_empty() {
                response.headers_mut().remove(hyper::header::CONTENT_TYPE);
            }
            response
        }
        Err(why) => {
            tracing::warn!(provider, "webhook not queued: {why}");
            shared
                .metrics
                .webhook(provider, UNAVAILABLE, "queue_unavailable");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue unavailable, retry later\n",
            )
        }
    }
}

/// Queues verified events, once per event id; `Err` when they could not be
/// queued (the client is asked to retry).
async fn accept(sink: &Sink, jobs: Vec<EventJob>) -> Result<Accepted, String> {
    match sink {
        Sink::Local(tx) => {
            let (reply, answer) = oneshot::channel();
            tx.send((jobs, reply))
                .await
                .map_err(|_| "the server is shutting down".to_string())?;
            answer
                .await
                .map_err(|_| "the server is shutting down".to_string())
        }
        Sink::Redis {
            store,
            key,
            timeout,
        } => {
            let mut accepted = Accepted {
                new: 0,
                duplicates: 0,
            };
            for event in &jobs {
                let job_json = serde_json::to_string(&event.job).expect("flow jobs serialize");
                let mac = key
                    .as_ref()
                    .map(|key| key.sign(&event.job_id, &event.job.worker_id, &job_json));
                let new = NewJob {
                    job_id: &event.job_id,
                    job: &event.job,
                    job_json: &job_json,
                    run_id: None,
                    mac: mac.as_deref(),
                };
                match tokio::time::timeout(*timeout, store.enqueue(&new)).await {
                    Ok(Ok(true)) => accepted.new += 1,
                    Ok(Ok(false)) => accepted.duplicates += 1,
                    Ok(Err(err)) => return Err(err.to_string()),
                    Err(_) => return Err(format!("Redis did not answer within {timeout:?}")),
                }
            }
            Ok(accepted)
        }
    }
}

/// The webhook paths this server has: one per loaded provider that declares
/// webhooks and has its signing key. With one plugin loaded, a missing
/// scheme or key is an error; with several, such a provider is left out
/// (and said so), and it is an error only if none is left.
fn receivers(
    host: &Host,
    limits: &ServeLimits,
    worker_id: &str,
) -> anyhow::Result<HashMap<String, Receiver>> {
    let single = host.providers().len() == 1;
    let mut receivers = HashMap::new();
    let mut skipped = Vec::new();
    for (index, dispatcher) in host.providers().iter().enumerate() {
        let info = dispatcher.plugin.info();
        let provider = info.name.as_str();
        let Some(scheme) = &info.webhooks else {
            skipped.push(format!(
                "plugin `{provider}` ({}) declares no webhooks",
                dispatcher.plugin.path().display()
            ));
            continue;
        };
        let source = dispatcher.settings.secret_source(&scheme.secret);
        let key = match dispatcher.settings.secret(&scheme.secret) {
            Some(secret) => SigningKey::decode(secret, scheme.key_encoding, source)
                .map_err(anyhow::Error::msg)?,
            None => {
                skipped.push(format!(
                    "payhost serve needs the webhook signing key of plugin `{provider}` (its \
                     setting `{}`): set {source} or put it in a --settings file",
                    scheme.secret
                ));
                continue;
            }
        };
        let verifier = start_verifiers(
            host.live_providers().clone(),
            index,
            Arc::new(key),
            limits,
            provider,
            worker_id,
        )
        .context("cannot start the webhook threads")?;
        receivers.insert(
            provider.to_string(),
            Receiver {
                accept_body: Bytes::from(scheme.accept_body.clone()),
                verifier,
            },
        );
    }
    if (single || receivers.is_empty())
        && let Some(why) = skipped.first()
    {
        anyhow::bail!(
            "{why}{}",
            if single {
                ""
            } else {
                ": no loaded plugin can receive webhooks"
            }
        );
    }
    for why in skipped {
        crate::say!("payhost serve: no webhook path for it: {why}");
    }
    Ok(receivers)
}

/// Starts the webhook threads of provider `index`; each owns an instance
/// of its current plugin version.
fn start_verifiers(
    live: Arc<LiveProviders>,
    index: usize,
    key: Arc<SigningKey>,
    limits: &ServeLimits,
    provider: &str,
    worker_id: &str,
) -> std::io::Result<crossbeam_channel::Sender<Delivery>> {
    let (tx, rx) = crossbeam_channel::bounded::<Delivery>(limits.backlog);
    for n in 0..limits.webhook_threads.max(1) {
        let rx = rx.clone();
        let live = live.clone();
        let key = key.clone();
        let tolerance = limits.tolerance_secs;
        let provider = provider.to_string();
        let worker_id = worker_id.to_string();
        std::thread::Builder::new()
            .name(format!("payhost-webhook-{n}"))
            .spawn(move || {
                let mut generation = live.generation();
                let mut instance = match live.current().get(index).plugin.instantiate() {
                    Ok(instance) => instance,
                    Err(err) => {
                        tracing::error!("a webhook thread could not start: {err}");
                        return;
                    }
                };
                while let Ok(delivery) = rx.recv() {
                    if live.generation() != generation {
                        // An upgrade: this delivery and the next ones go to
                        // the new version.
                        generation = live.generation();
                        match live.current().get(index).plugin.instantiate() {
                            Ok(new) => instance = new,
                            Err(err) => tracing::error!(
                                "a webhook thread keeps the previous plugin version: {err}"
                            ),
                        }
                    }
                    let outcome = check_and_parse(
                        &mut instance,
                        &delivery.request,
                        &key,
                        tolerance,
                        &provider,
                        &worker_id,
                    );
                    let _ = delivery.reply.send(outcome);
                }
            })?;
    }
    Ok(tx)
}

/// Steps 2 of the module doc: the plugin's check, the host's MACs and
/// timestamp, the plugin's events.
fn check_and_parse(
    instance: &mut crate::plugin::PluginInstance,
    request: &wit::WebhookRequest,
    key: &SigningKey,
    tolerance_secs: u64,
    provider: &str,
    worker_id: &str,
) -> Result<Vec<EventJob>, Refusal> {
    let failed = |err: crate::plugin::PluginCallError| Refusal::PluginFailed(err.to_string());
    let check = instance
        .check_webhook(request)
        .map_err(failed)?
        .map_err(Refusal::Unsigned)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    webhook::verify(&check, key, tolerance_secs, now)?;
    let events = instance
        .parse_webhook(request)
        .map_err(failed)?
        .map_err(Refusal::Malformed)?;
    webhook::event_jobs(provider, worker_id, events)
}

/// The embedded queue's acceptor: owns the window of recent event ids, hands
/// new events to the flow threads, and follows each flow to its end. When
/// its channel closes (shutdown), it waits for those flows, at most `grace`.
async fn accept_locally(
    mut rx: mpsc::Receiver<(Vec<EventJob>, oneshot::Sender<Accepted>)>,
    pool: WorkSender,
    window: usize,
    grace: Duration,
) {
    let mut seen = Window::new(window);
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some((jobs, reply)) = message else { break };
                let mut accepted = Accepted { new: 0, duplicates: 0 };
                for event in jobs {
                    if !seen.insert(&event.job_id) {
                        accepted.duplicates += 1;
                        continue;
                    }
                    accepted.new += 1;
                    let (mut ledger, token) = Ledger::new();
                    pool.run_job(
                        JobInput::Made(event.job.clone()),
                        &event.job_id,
                        token,
                        None,
                        None,
                    );
                    running.spawn(async move {
                        let summary = ledger.wait(None).await.unwrap_or_else(|s| s);
                        if summary.failed() {
                            tracing::warn!(
                                event = %event.event_id,
                                flow = %event.job.flow,
                                "event flow failed: {}",
                                summary.last_error.as_deref().unwrap_or("(no detail)")
                            );
                        }
                    });
                }
                let _ = reply.send(accepted);
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    let wait_all = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, wait_all).await.is_err() {
        tracing::warn!(
            "{} accepted events' flows still running after the {grace:?} grace period",
            running.len()
        );
    }
}

/// The last `capacity` event job ids, for exactly-once handling in the
/// embedded queue: an id older than that is forgotten, so a redelivery
/// after `capacity` newer events runs again (Redis keeps ids for the job
/// retention instead).
struct Window {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `id`; false when it was remembered already.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_remembers_the_last_ids_only() {
        let mut window = Window::new(2);
        assert!(window.insert("a"));
        assert!(!window.insert("a"));
        assert!(window.insert("b"));
        assert!(window.insert("c"));
        assert!(window.insert("a"), "a was pushed out by b and c");
        assert!(!window.insert("c"));
    }
}
