//! The HTTP executor: every request a script makes is sent from here.
//!
//! One tokio runtime and one pooled `reqwest::Client` serve the whole process.
//! [`HttpExecutor::submit`] is called on a script or worker thread and returns
//! as soon as the request is a task on the runtime: it never waits for the
//! network. It does wait for a permit when `max_in_flight` requests are
//! already running, which pushes back on a script that produces requests
//! faster than the provider answers instead of growing without bound. The
//! main script also waits while `max_in_flight` finished outcomes of its
//! requests are still waiting for a flow thread (or, with Redis, for Redis),
//! so slow flows or an unreachable Redis hold the script back instead of
//! piling response bodies up in memory. Flow threads never wait on that
//! backlog: they are what drains it.
//!
//! Each task attaches the credentials header [`crate::outbound::Credentials`]
//! made, an idempotency key on POST (the same on every attempt), and retries
//! as [`crate::retry`] says with the plugin's rules. Bodies
//! are read up to a cap; redirects are never followed. The outcome, with the
//! route it came from, goes to the [`OutcomeSink`] the run wired in (the
//! embedded queue's workers, or the Redis dispatcher).
//!
//! The executor never logs headers or the secret; reqwest marks the auth
//! header sensitive, so its own debug output redacts it too. Some servers
//! echo the credentials they were sent inside an error message, sometimes
//! encoded; so that the secret cannot travel on into a plugin, a flow, a
//! queue or a log through a response, the executor passes response bodies
//! through the request's [`Redactor`] before handing them on, and hands the
//! redactor on with the outcome: response headers go through it on their way
//! into the plugin, if they go there ([`ResponseHeaders`]), and the plugin's
//! payload is judged again (see [`crate::secret`]).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::ledger::{Event, Token};
use crate::outbound::AuthHeader;
use crate::outbound::Checked;
use crate::plugin::wit;
use crate::retry::{Attempt, RetryPolicy, RetryRules, parse_retry_after, parse_should_retry};
use crate::secret::{Redactor, Secret};

/// The one tokio runtime of a process: HTTP (and Redis) I/O. Scripts and
/// flows run on their own threads, so two I/O threads suffice. (One thread
/// on a 2-core machine was tried to spare the script thread preemption; the
/// benchmark showed no difference beyond its noise.)
///
/// Its threads are batch-scheduled ([`schedule_as_batch`]): they get their
/// fair share of the cores, but one that wakes (a socket ready, a request
/// handed over) does not take the core from a running script or flow thread;
/// it runs on an idle core, or at the scheduler's next tick. A script's
/// `create_async` is what a user waits on and must return at once; network
/// I/O, counted in milliseconds, does not notice the wait. On 2 cores with
/// 1,000 requests in flight this took the calls the I/O threads preempted
/// from most of the slow ones to a handful (README, "create_async").
pub fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("payhost-io")
        .on_thread_start(|| {
            if let Err(err) = schedule_as_batch() {
                tracing::debug!("an I/O thread stays normally scheduled: {err}");
            }
        })
        .enable_all()
        .build()
}

/// Makes the calling thread `SCHED_BATCH` (Linux; elsewhere it does
/// nothing): a thread that does throughput work and should not preempt
/// others when it wakes. Leaving `SCHED_OTHER` for it needs no privilege;
/// an error (a seccomp filter, say) leaves the thread as it was.
pub fn schedule_as_batch() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid
        // sched_param that outlives the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Executor settings; `payhost run` and `payhost worker` fill them from the
/// same flags. `Default` is the one place their defaults are written: the
/// command line shows these values rather than repeating them.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_in_flight: usize,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_response_bytes: usize,
    pub version: HttpVersion,
    pub retry: RetryPolicy,
    /// Where finished requests and retries are counted (disabled by default).
    pub metrics: crate::metrics::Metrics,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(80),
            max_response_bytes: 16 << 20,
            version: HttpVersion::Auto,
            retry: RetryPolicy::default(),
            metrics: crate::metrics::Metrics::disabled(),
        }
    }
}

/// Which HTTP the executor speaks to a provider.
///
/// Over HTTP/1.1 every request in flight holds a connection of its own (and
/// hyper's ~26 KB of buffers for it); over HTTP/2 one connection carries
/// them all as streams, which is what keeps thousands in flight cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/2 where the provider offers it during the TLS handshake (ALPN),
    /// HTTP/1.1 otherwise and always on a cleartext `http://` base URL.
    #[default]
    Auto,
    /// HTTP/1.1 only, even where the provider offers HTTP/2.
    Http1,
    /// HTTP/2 only: over TLS it must be agreed; on `http://` it is spoken
    /// from the first byte (h2c "prior knowledge"), for a local server that
    /// is known to speak it.
    Http2,
}

impl std::str::FromStr for HttpVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(HttpVersion::Auto),
            "1.1" | "1" => Ok(HttpVersion::Http1),
            "2" => Ok(HttpVersion::Http2),
            other => Err(format!("`{other}`: give auto, 1.1 or 2")),
        }
    }
}

/// Where an outcome's flow goes: the ids the script passed to `*_async`.
/// Every request in flight holds one, so its names are shared, not copied:
/// the object and operation with the provider's schema, the default ids
/// with the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which provider (an index into the host's `Providers`).
    pub provider: usize,
    pub object: Arc<str>,
    pub operation: Arc<str>,
    pub worker_id: Arc<str>,
    pub context_id: Arc<str>,
}

/// A finished request, handed to the sink.
#[derive(Debug)]
pub struct Finished {
    pub route: Route,
    /// A response here carries no headers: they are in `headers`, and join
    /// it only if the outcome goes to the plugin.
    pub outcome: wit::TransportOutcome,
    /// The response's headers (none for a failure).
    pub headers: ResponseHeaders,
    /// Scrubs the request's secret from whatever the plugin makes of the
    /// outcome.
    pub redactor: Redactor,
    /// Keeps the run open until the outcome's flow is done.
    pub token: Token,
    /// Held until the outcome has left this process's memory (its flow ran,
    /// or Redis holds its job); see [`Outbound::waits_for_flows`].
    pub backlog: BacklogSlot,
}

/// A response's headers, copied out of the HTTP stack's buffers as one
/// text, `name\nvalue\n` for each header whose value is visible ASCII (the
/// only ones the contract carries, and so never holding a `\n`). They become
/// the contract's list, scrubbed, only if the plugin's `parse-response` is
/// called ([`ResponseHeaders::for_plugin`]). Most outcomes never go there
/// (a 2xx JSON object under `json-object-is-success`), and scrubbing every
/// header into a `String` pair on the I/O thread, for every request, took
/// ~6k instructions more than this one copy (callgrind: 2-3% of all payhost
/// does for a request). Not scrubbed yet, so `Debug` shows the names alone.
#[derive(Default)]
pub struct ResponseHeaders(String);

impl ResponseHeaders {
    /// Copied, so that the outcome does not keep the HTTP stack's read
    /// buffer alive (a header value is a slice of it) until its flow runs.
    pub fn copy(map: &HeaderMap) -> Self {
        let visible = || {
            map.iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        };
        let len = visible().map(|(n, v)| n.len() + v.len() + 2).sum();
        let mut text = String::with_capacity(len);
        for (name, value) in visible() {
            for part in [name, "\n", value, "\n"] {
                text.push_str(part);
            }
        }
        ResponseHeaders(text)
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut lines = self.0.split_terminator('\n');
        std::iter::from_fn(move || Some((lines.next()?, lines.next()?)))
    }

    /// The headers as the contract has them, in the order received, each
    /// value scrubbed of the request's secret.
    pub fn for_plugin(&self, redactor: &Redactor) -> Vec<(String, String)> {
        self.pairs()
            .map(|(name, value)| {
                let value = redactor
                    .scrub_str(value)
                    .unwrap_or_else(|| value.to_string());
                (name.to_string(), value)
            })
            .collect()
    }
}

impl std::fmt::Debug for ResponseHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs().map(|(name, _)| name))
            .finish()
    }
}

/// A place in the backlog of finished outcomes not yet handled by a flow
/// thread. Dropping it frees the place.
#[derive(Debug, Default)]
pub struct BacklogSlot {
    /// Held only to be dropped.
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Receives finished requests. Implemented by the queues.
pub trait OutcomeSink: Send + Sync + 'static {
    fn deliver(&self, finished: Finished);
}

/// One request to send.
pub struct Outbound {
    pub request: Checked,
    pub route: Route,
    /// The credentials header, per the plugin's auth scheme; shared by
    /// every request that carries the same credentials.
    pub auth: Option<Arc<AuthHeader>>,
    /// Recognises the secrets in responses; built once per secret by the
    /// caller.
    pub redactor: Redactor,
    /// The idempotency key's header value, sent with every attempt; made by
    /// [`HttpExecutor::idempotency`] when the request is built.
    pub idempotency: Option<HeaderValue>,
    /// Whether the sender waits while `max_in_flight` finished outcomes of
    /// its earlier requests are still waiting for a flow thread. The main
    /// script does: it can produce requests much faster than flows handle
    /// their outcomes, and each outcome holds a response body (up to
    /// `max_response_bytes`). Flow threads do not: they are what drains the
    /// backlog, and waiting on it themselves could deadlock.
    pub waits_for_flows: bool,
    pub token: Token,
}

/// The executor is stopping: no new requests are accepted.
#[derive(Debug, thiserror::Error)]
#[error("payhost is shutting down; the request was not sent")]
pub struct ShuttingDown;

/// A handle to the executor; clone it into every thread that sends requests.
#[derive(Clone)]
pub struct HttpExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Handle,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    /// Places for finished outcomes of the main script's requests that no
    /// flow thread has handled yet (see [`Outbound::waits_for_flows`]).
    backlog: Arc<Semaphore>,
    /// The provider's retry rules and idempotency header.
    rules: RetryRules,
    idempotency_header: Option<HeaderName>,
    config: HttpConfig,
    sink: Arc<dyn OutcomeSink>,
    /// This provider's request counters, resolved once.
    requests: crate::metrics::RequestMeter,
}

impl HttpExecutor {
    pub fn new(
        runtime: Handle,
        config: HttpConfig,
        provider: &wit::ProviderInfo,
        sink: Arc<dyn OutcomeSink>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // One retry layer, the plugin's: reqwest's own would resend a
            // request the server refused unprocessed (an HTTP/2 stream
            // refused, or past a graceful GOAWAY) without the policy, the
            // metrics or the log knowing, and keeps a copy of every
            // request's headers while it is in flight to be able to. Those
            // refusals reach the policy as `connect` failures instead (see
            // `failure`).
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .pool_max_idle_per_host(config.max_in_flight)
            .user_agent(concat!("payhost/", env!("CARGO_PKG_VERSION")));
        let client = match config.version {
            HttpVersion::Auto => client,
            HttpVersion::Http1 => client.http1_only(),
            HttpVersion::Http2 => client.http2_prior_knowledge(),
        }
        .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                runtime,
                permits: Arc::new(Semaphore::new(config.max_in_flight)),
                backlog: Arc::new(Semaphore::new(config.max_in_flight)),
                client,
                rules: RetryRules::new(&provider.retry),
                idempotency_header: provider
                    .retry
                    .idempotency_header
                    .as_deref()
                    .and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok()),
                requests: config.metrics.request_meter(provider),
                config,
                sink,
            }),
        })
    }

    /// Starts sending `outbound`; returns once it is a task on the runtime.
    /// Blocks only while `max_in_flight` requests are already running. Must
    /// not be called from inside the runtime.
    pub fn submit(&self, outbound: Outbound) -> Result<(), ShuttingDown> {
        let backlog = match outbound.waits_for_flows {
            true => BacklogSlot {
                _place: Some(self.acquire(&self.inner.backlog)?),
            },
            false => BacklogSlot::default(),
        };
        let permit = self.acquire(&self.inner.permits)?;
        outbound.token.report(Event::RequestSent);
        let inner = self.inner.clone();
        self.inner
            .runtime
            .spawn(inner.send(outbound, permit, backlog));
        Ok(())
    }

    /// A permit of `semaphore`, waiting for one if need be.
    fn acquire(
        &self,
        semaphore: &Arc<Semaphore>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ShuttingDown> {
        match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(tokio::sync::TryAcquireError::Closed) => Err(ShuttingDown),
            Err(tokio::sync::TryAcquireError::NoPermits) => self
                .inner
                .runtime
                .block_on(semaphore.clone().acquire_owned())
                .map_err(|_| ShuttingDown),
        }
    }

    /// Refuses new requests from now on; running ones finish.
    pub fn close(&self) {
        self.inner.permits.close();
        self.inner.backlog.close();
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.inner.config.max_in_flight - self.inner.permits.available_permits()
    }

    /// The idempotency header's value for a `method` request: `key` (a
    /// script's own, or one derived from a flow job), else a fresh UUID.
    /// Only POSTs carry one, and only to a provider that names the header.
    /// Made on the caller's thread, once for all attempts, so that a request
    /// in flight holds the value alone.
    pub fn idempotency(
        &self,
        method: &reqwest::Method,
        key: Option<String>,
    ) -> Result<Option<HeaderValue>, String> {
        if self.inner.idempotency_header.is_none() || method != reqwest::Method::POST {
            return Ok(None);
        }
        let mut uuid = uuid::Uuid::encode_buffer();
        let key = match &key {
            Some(key) => {
                check_idempotency_key(key)?;
                key.as_str()
            }
            // Formatted in place: a UUID needs neither a String nor the check.
            None => crate::random_uuid().hyphenated().encode_lower(&mut uuid),
        };
        HeaderValue::from_str(key)
            .map(Some)
            .map_err(|e| format!("idempotency key `{key}`: {e}"))
    }
}

impl Inner {
    /// One request's task, from its first attempt to its outcome delivered.
    ///
    /// Thousands of these wait on the network at once, so their size is
    /// what an in-flight request costs payhost (reqwest and hyper add their
    /// own). An `async move` block that uses what it captured in place,
    /// because an `async fn` would copy its arguments into locals (and
    /// destructuring `outbound` before the first `.await` would too): every
    /// field would be stored twice. The states few tasks are ever in
    /// (reading a body, waiting to retry) are boxed in `send_once` and
    /// `send_with_retries`, so they do not widen every waiting task.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store its arguments twice in every waiting task"
    )]
    fn send(
        self: Arc<Self>,
        outbound: Outbound,
        permit: tokio::sync::OwnedSemaphorePermit,
        backlog: BacklogSlot,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        async move {
            let (outcome, headers, retries) = self.send_with_retries(&outbound).await;
            drop(permit);
            let Outbound {
                route,
                redactor,
                token,
                ..
            } = outbound;
            self.requests
                .record(&route.object, &route.operation, &outcome, retries);
            token.report(Event::RequestDone { retries });
            self.sink.deliver(Finished {
                route,
                outcome,
                headers,
                redactor,
                token,
                backlog,
            });
        }
    }

    /// Attempts until one settles it; its outcome, its response's headers
    /// and how many retries.
    /// (A plain fn around `async move`, as [`Inner::send`] is, so that the
    /// arguments are not stored twice in every waiting task.)
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store its arguments twice in every waiting task"
    )]
    fn send_with_retries<'a>(
        &'a self,
        outbound: &'a Outbound,
    ) -> impl std::future::Future<Output = (wit::TransportOutcome, ResponseHeaders, u32)> + Send + 'a
    {
        async move {
            tracing::debug!(
                method = %outbound.request.method,
                url = %outbound.request.url,
                idempotency_key = outbound.idempotency.as_ref().and_then(|v| v.to_str().ok()),
                "sending"
            );
            let mut retries = 0;
            loop {
                // The attempt's outcome in a block of its own, so that a
                // task waiting to retry does not keep it (the widest state
                // would otherwise widen every task).
                let delay = {
                    let (outcome, headers, attempt) = self.send_once(outbound).await;
                    if !self
                        .config
                        .retry
                        .should_retry(&self.rules, &attempt, retries)
                    {
                        return (outcome, headers, retries);
                    }
                    retries += 1;
                    let delay = self
                        .config
                        .retry
                        .delay(retries, rand::random::<f64>(), &attempt);
                    tracing::debug!(
                        url = %outbound.request.url,
                        retry = retries,
                        "retrying after {delay:?} ({attempt:?})"
                    );
                    delay
                };
                Box::pin(tokio::time::sleep(delay)).await;
            }
        }
    }

    async fn send_once(
        &self,
        outbound: &Outbound,
    ) -> (wit::TransportOutcome, ResponseHeaders, Attempt) {
        let request = &outbound.request;
        // The builder in a block of its own: a local whose scope spans the
        // `.await` would keep its (moved-out) bytes in every waiting task.
        let sent = {
            // One map, made at the size it ends at: the headers set here
            // (the plugin's, the idempotency key, the credentials) and the
            // two reqwest adds (user agent, accept); through the builder, the
            // plugin's map was copied first and the request's grown from
            // empty. No larger: reqwest keeps this map for as long as the
            // request is in flight, so each slot more is held by thousands
            // of requests (room for the two hyper adds to its own copy cost
            // 690 bytes a request at 10,000 in flight).
            let mut headers = HeaderMap::with_capacity(request.headers.len() + 4);
            for (name, value) in &request.headers {
                headers.append(name, value.clone());
            }
            if let (Some(name), Some(value)) = (&self.idempotency_header, &outbound.idempotency) {
                headers.append(name, value.clone());
            }
            if let Some(auth) = &outbound.auth {
                headers.append(&auth.name, auth.value.clone());
            }
            let mut attempt = reqwest::Request::new(request.method.clone(), request.url.clone());
            *attempt.headers_mut() = headers;
            *attempt.body_mut() = Some(request.body.clone().into());
            self.client.execute(attempt)
        };
        let response = match sent.await {
            Ok(response) => response,
            Err(err) => return failure(&err, None),
        };
        Box::pin(self.receive(response, &outbound.redactor)).await
    }

    /// The answer to one attempt: the retry hints the plugin's policy reads,
    /// the body up to the cap (scrubbed), and the headers.
    async fn receive(
        &self,
        response: reqwest::Response,
        redactor: &Redactor,
    ) -> (wit::TransportOutcome, ResponseHeaders, Attempt) {
        let status = response.status().as_u16();
        let header = |name: &HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok());
        let should_retry = self
            .rules
            .should_retry_header()
            .and_then(|name| parse_should_retry(header(name)));
        let retry_after = match self.rules.honours_retry_after() {
            true => parse_retry_after(header(&reqwest::header::RETRY_AFTER)),
            false => None,
        };
        let headers = ResponseHeaders::copy(response.headers());
        match read_capped(response, self.config.max_response_bytes).await {
            Ok(body) => (
                wit::TransportOutcome::Response(wit::HttpResponse {
                    status,
                    headers: Vec::new(),
                    body: redactor.scrub_body(body),
                }),
                headers,
                Attempt::Response {
                    status,
                    should_retry,
                    retry_after,
                },
            ),
            Err(BodyError::TooLarge) => (
                wit::TransportOutcome::Failed(wit::TransportFailure {
                    kind: wit::FailureKind::BodyTooLarge,
                    status: Some(status),
                    message: format!(
                        "the response body exceeded the {} byte limit",
                        self.config.max_response_bytes
                    ),
                }),
                ResponseHeaders::default(),
                Attempt::Failed(wit::FailureKind::BodyTooLarge),
            ),
            Err(BodyError::Transport(err)) => failure(&err, Some(status)),
        }
    }
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Describes a transport error for people. reqwest's messages name the URL
/// (base URL + path; never credentials, which travel in headers).
fn failure(
    err: &reqwest::Error,
    status: Option<u16>,
) -> (wit::TransportOutcome, ResponseHeaders, Attempt) {
    // `is_request()` is also true for a connection closed after the request
    // went out, so only `is_connect()` and a refusal the protocol says left
    // the request unprocessed count as connect failures.
    let kind = if err.is_timeout() {
        wit::FailureKind::Timeout
    } else if err.is_connect() || refused_unprocessed(err) {
        wit::FailureKind::Connect
    } else {
        wit::FailureKind::Io
    };
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    (
        wit::TransportOutcome::Failed(wit::TransportFailure {
            kind,
            status,
            message,
        }),
        ResponseHeaders::default(),
        Attempt::Failed(kind),
    )
}

/// Whether the server turned the request away before processing any of it,
/// as HTTP/2 lets it say: the stream refused (`REFUSED_STREAM`), or the
/// connection shutting down gracefully (`GOAWAY` with `NO_ERROR`) before
/// this stream. The protocol guarantees nothing was done, as when a
/// connection could not be made, so it counts as a connect failure.
fn refused_unprocessed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && match h2.reason() {
                    Some(h2::Reason::REFUSED_STREAM) => h2.is_reset(),
                    Some(h2::Reason::NO_ERROR) => h2.is_go_away(),
                    _ => false,
                };
        }
        source = cause.source();
    }
    false
}

/// Why a secret cannot be sent in a header, if it cannot (a newline or other
/// control character, say a key pasted with its line end). Dropping the
/// header instead would send the request unauthenticated. The message never
/// quotes the secret.
pub fn check_secret(secret: &Secret) -> Result<(), String> {
    if secret.expose().is_empty() {
        return Err("the secret is empty".into());
    }
    match secret
        .expose()
        .bytes()
        .position(|b| !(b == b' ' || b == b'\t' || b.is_ascii_graphic()))
    {
        Some(at) => Err(format!(
            "the secret cannot be sent in a header: byte {at} of it is a control or non-ASCII character"
        )),
        None => Ok(()),
    }
}

/// Why a script's idempotency key cannot be sent, if it cannot: a key must
/// be a valid header value (visible ASCII and spaces, no control characters)
/// of at most 255 bytes. Dropping an unsendable key would let a retried POST
/// go out without one, so the script hears about it at the call.
pub fn check_idempotency_key(key: &str) -> Result<(), String> {
    const MAX: usize = 255;
    if key.trim().is_empty() {
        return Err("the idempotency key is empty".into());
    }
    if key.len() > MAX {
        return Err(format!(
            "the idempotency key is {} bytes long; the limit is {MAX}",
            key.len()
        ));
    }
    if let Some((at, c)) = key
        .char_indices()
        .find(|&(_, c)| !(c == ' ' || c.is_ascii_graphic()))
    {
        return Err(format!(
            "the idempotency key cannot be sent as a header: it contains {c:?} at byte {at} \
             (use visible ASCII characters)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the plugin gets of a response's headers: every header whose
    /// value is visible ASCII, in the map's order (a repeated name's values
    /// together, in the order received), the secret scrubbed; and nothing
    /// of a value before that.
    #[test]
    fn response_headers_reach_the_plugin_as_received_and_scrubbed() {
        let secret = "sk_test_headers_4242";
        let mut map = HeaderMap::new();
        let mut add = |name: &'static str, value: &[u8]| {
            map.append(name, HeaderValue::from_bytes(value).unwrap());
        };
        add("content-type", b"application/json");
        add("set-cookie", b"a=1; Path=/");
        add("x-empty", b"");
        add(
            "www-authenticate",
            format!("Basic realm=\"{secret}\"").as_bytes(),
        );
        add("x-latin", b"caf\xc3\xa9");
        add("set-cookie", b"b=2");
        let headers = ResponseHeaders::copy(&map);

        let given = headers.for_plugin(&Redactor::new([&Secret::new(secret)]));
        let realm = format!("Basic realm=\"{}\"", crate::secret::REDACTED);
        let expected = [
            ("content-type", "application/json"),
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2"),
            ("x-empty", ""),
            ("www-authenticate", &realm),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        assert_eq!(given, expected);

        let shown = format!("{headers:?}");
        assert!(!shown.contains(secret) && !shown.contains("a=1"), "{shown}");
        assert!(shown.contains("www-authenticate"), "{shown}");
        assert!(
            ResponseHeaders::default()
                .for_plugin(&Redactor::default())
                .is_empty()
        );
    }

    /// Only a refusal the server sent counts as "unprocessed": the same
    /// reason raised by h2 itself, or any other fault, does not.
    #[test]
    fn only_a_refusal_from_the_server_counts_as_unprocessed() {
        #[derive(Debug)]
        struct Wrapped(h2::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request failed")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        for reason in [h2::Reason::REFUSED_STREAM, h2::Reason::NO_ERROR] {
            let local = Wrapped(h2::Error::from(reason));
            assert!(
                !super::refused_unprocessed(&local),
                "{reason:?} from h2 itself"
            );
        }
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!super::refused_unprocessed(&io));
    }

    #[test]
    fn idempotency_keys_must_be_sendable_header_values() {
        assert!(check_idempotency_key("order-42").is_ok());
        assert!(check_idempotency_key("order 42/a:b").is_ok());
        for bad in ["order-42\n", "a\rb", "", "  ", "caf\u{e9}", "x\0"] {
            let err = check_idempotency_key(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
        assert!(
            check_idempotency_key(&"k".repeat(256))
                .unwrap_err()
                .contains("256 bytes")
        );
        // Everything accepted is a valid header value.
        for ok in ["order-42", "~!@#$%^&*()_+", "a b"] {
            check_idempotency_key(ok).unwrap();
            HeaderValue::from_str(ok).unwrap();
        }
    }

    /// A request in flight costs payhost mostly its task. tokio rounds a
    /// task's cell up to 128 bytes (header 32, trailer 48, scheduler handle
    /// and task id 16, and the future's stage 8 more than the future), so
    /// the send future fills a 640-byte cell at 536 bytes, with nothing to
    /// spare. A field added to `Outbound`, or a value kept across an
    /// `.await`, moves every waiting request to 768 bytes; this says so
    /// before a bench run's heap count would.
    #[test]
    fn a_waiting_request_fits_a_640_byte_task() {
        struct Nowhere;
        impl OutcomeSink for Nowhere {
            fn deliver(&self, _: Finished) {}
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let executor = HttpExecutor::new(
            runtime.handle().clone(),
            HttpConfig::default(),
            &crate::plugin::empty_info(),
            Arc::new(Nowhere),
        )
        .unwrap();
        let (_ledger, token) = crate::ledger::Ledger::new();
        let outbound = Outbound {
            request: Checked {
                method: reqwest::Method::POST,
                url: reqwest::Url::parse("http://127.0.0.1/v1/things").unwrap(),
                headers: reqwest::header::HeaderMap::new(),
                body: bytes::Bytes::new(),
            },
            route: Route {
                provider: 0,
                object: "thing".into(),
                operation: "create".into(),
                worker_id: "w".into(),
                context_id: "c".into(),
            },
            auth: None,
            redactor: Redactor::default(),
            idempotency: None,
            waits_for_flows: false,
            token,
        };
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let task = executor
            .inner
            .clone()
            .send(outbound, permit, BacklogSlot::default());
        let size = std::mem::size_of_val(&task);
        assert!(
            size <= 536,
            "the send future is {size} bytes: over 536, every waiting request's task grows from 640 to 768 bytes"
        );
    }

    /// The I/O runtime's threads run batch-scheduled (so they never preempt
    /// the script thread on wake-up), and the thread that built it does not.
    #[cfg(target_os = "linux")]
    #[test]
    fn io_threads_are_batch_scheduled_and_no_other_thread_is() {
        // SAFETY: sched_getscheduler only reads the calling thread's policy.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let runtime = io_runtime().unwrap();
        let on_io_threads = runtime.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| tokio::spawn(async move { policy() }))
                .collect();
            let mut policies = Vec::new();
            for task in tasks {
                policies.push(task.await.unwrap());
            }
            policies
        });
        assert!(
            on_io_threads.iter().all(|&p| p == libc::SCHED_BATCH),
            "{on_io_threads:?}"
        );
        assert_eq!(policy(), libc::SCHED_OTHER);
    }
}
