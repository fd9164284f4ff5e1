//! Prometheus metrics of `payhost worker` and `payhost serve`
//! (`--metrics-listen ADDR`): what the host counts, and the `GET /metrics`
//! endpoint that shows it.
//!
//! One [`Metrics`] handle per process, made by the command and passed down
//! (no global registry): [`crate::host::HostConfig`] carries it to the HTTP
//! executors (requests and retries), the plugin instances (call latency),
//! the flow threads (flow runs) and `payhost serve` (webhooks); the worker
//! fills the queue gauges from Redis at scrape time.
//!
//! Without `--metrics-listen` the handle is [`Metrics::disabled`]: every
//! recording method is a no-op behind one `Option` check, and the plugin
//! call path does not even read the clock. When enabled, the hot paths take
//! no lock: the executor and each plugin instance resolve their counters and
//! histograms once, when they are built, so a request or a plugin call costs
//! a few atomic additions (and, for a plugin call, one `Instant::now()`
//! pair). The plugin-call histogram is [`CallHistogram`], a lock-free one of
//! our own, because `prometheus_client`'s histogram takes a mutex per
//! observation. Flow threads resolve a provider's flow counters on its
//! first flow and keep them; `payhost serve` resolves every webhook counter
//! it can touch at start ([`WebhookMetrics`]). Only the scrape and the
//! first flow of a provider on a thread go through a family's lock.
//!
//! Label values come from the loaded plugins (provider, object, operation),
//! from fixed lists (outcome, result, reason, function, status) or from the
//! worker id: never from what a client sends, so a caller cannot grow the
//! number of series.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::plugin::wit;

/// The metrics handle: cheap to clone, a no-op when disabled.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Families>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_enabled() {
            "Metrics(enabled)"
        } else {
            "Metrics(disabled)"
        })
    }
}

/// Every metric family, and the registry that encodes them.
struct Families {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    retries: Family<ProviderLabels, Counter>,
    plugin_calls: Family<CallLabels, CallHistogram>,
    host_classified: Family<ProviderLabels, Counter>,
    flows: Family<FlowLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    webhook_events: Family<EventLabels, Counter>,
    jobs: Family<JobLabels, Gauge>,
    stream_length: Family<WorkerLabels, Gauge>,
    pending: Family<WorkerLabels, Gauge>,
    dead_letters: Family<WorkerLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: String,
    object: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    function: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    provider: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    worker_id: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker_id: String,
}

/// How a flow run ended (`payhost_flows_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowResult {
    Done,
    Failed,
    /// No flow file for the job.
    Missing,
}

/// The plugin functions the host calls, the values of the `function` label.
pub const PLUGIN_FUNCTIONS: &[&str] = &[
    "configure",
    "info",
    "build-request",
    "parse-response",
    "check-webhook",
    "parse-webhook",
];

/// What a worker reads from Redis at scrape time for one worker id.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    /// Jobs by status (the job store's counts).
    pub jobs: Vec<(String, i64)>,
    /// Entries in the worker id's stream (XLEN).
    pub stream_length: u64,
    /// Entries delivered to a consumer and not yet acknowledged.
    pub pending: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
}

impl Metrics {
    /// Records nothing: the default, without `--metrics-listen`.
    pub fn disabled() -> Metrics {
        Metrics(None)
    }

    /// A fresh registry with every payhost metric.
    pub fn enabled() -> Metrics {
        let mut registry = Registry::with_prefix("payhost");
        let families = Families {
            requests: Family::default(),
            retries: Family::default(),
            plugin_calls: Family::default(),
            host_classified: Family::default(),
            flows: Family::default(),
            webhooks: Family::default(),
            webhook_events: Family::default(),
            jobs: Family::default(),
            stream_length: Family::default(),
            pending: Family::default(),
            dead_letters: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Provider requests finished, by provider, object, operation and outcome \
             (ok: a 2xx response; http_error: any other response; transport_error: no \
             response), after retries",
            families.requests.clone(),
        );
        registry.register(
            "retries",
            "Retried provider request attempts",
            families.retries.clone(),
        );
        registry.register(
            "plugin_call_seconds",
            "Wall-clock time of plugin calls, by provider and plugin function",
            families.plugin_calls.clone(),
        );
        registry.register(
            "host_classified_responses",
            "Responses the host made a success payload itself, as the plugin's declared \
             `responses` rule allows (a 2xx JSON object), without calling parse-response",
            families.host_classified.clone(),
        );
        registry.register(
            "flows",
            "Flow runs by provider and outcome (done, failed, missing: no flow file)",
            families.flows.clone(),
        );
        registry.register(
            "webhooks",
            "Webhook deliveries by provider, result (accepted, refused, unavailable) and reason",
            families.webhooks.clone(),
        );
        registry.register(
            "webhook_events",
            "Events of accepted webhook deliveries: new (queued to run their flow) or \
             duplicate (seen before, acknowledged and not run again)",
            families.webhook_events.clone(),
        );
        registry.register(
            "jobs",
            "Flow jobs in Redis by worker id and status, read at scrape time",
            families.jobs.clone(),
        );
        registry.register(
            "queue_stream_length",
            "Entries in the worker id's Redis stream, read at scrape time",
            families.stream_length.clone(),
        );
        registry.register(
            "queue_pending",
            "Entries delivered to a worker and not yet acknowledged, read at scrape time",
            families.pending.clone(),
        );
        registry.register(
            "queue_dead_letters",
            "Entries in the worker id's dead-letter stream, read at scrape time",
            families.dead_letters.clone(),
        );
        Metrics(Some(Arc::new(Families {
            registry,
            ..families
        })))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// The request counters of one provider's executor, resolved now for
    /// every object and operation its plugin declares.
    pub fn request_meter(&self, provider: &wit::ProviderInfo) -> RequestMeter {
        let Some(families) = &self.0 else {
            return RequestMeter(None);
        };
        let mut counters = HashMap::new();
        for object in &provider.objects {
            for operation in &object.operations {
                let counter = |outcome| {
                    families.requests.get_or_create_owned(&RequestLabels {
                        provider: provider.name.clone(),
                        object: object.name.clone(),
                        operation: operation.name.clone(),
                        outcome,
                    })
                };
                counters.insert(
                    (object.name.clone(), operation.name.clone()),
                    [
                        counter(OUTCOMES[0]),
                        counter(OUTCOMES[1]),
                        counter(OUTCOMES[2]),
                    ],
                );
            }
        }
        let retries = families.retries.get_or_create_owned(&ProviderLabels {
            provider: provider.name.clone(),
        });
        RequestMeter(Some(Arc::new(RequestCounters { counters, retries })))
    }

    /// The call histograms of one provider's plugin instance; `None` when
    /// disabled (the instance then skips the clock too).
    pub fn plugin_timers(&self, provider: &str) -> Option<PluginTimers> {
        let families = self.0.as_ref()?;
        let histograms = PLUGIN_FUNCTIONS
            .iter()
            .map(|function| {
                families.plugin_calls.get_or_create_owned(&CallLabels {
                    provider: provider.to_string(),
                    function,
                })
            })
            .collect();
        let host_classified = families
            .host_classified
            .get_or_create_owned(&ProviderLabels {
                provider: provider.to_string(),
            });
        Some(PluginTimers {
            calls: histograms,
            host_classified,
        })
    }

    /// Counts one flow run of `provider`.
    pub fn flow(&self, provider: &str, result: FlowResult) {
        if let Some(families) = &self.0 {
            let outcome = match result {
                FlowResult::Done => "done",
                FlowResult::Failed => "failed",
                FlowResult::Missing => "missing",
            };
            families
                .flows
                .get_or_create(&FlowLabels {
                    provider: provider.to_string(),
                    outcome,
                })
                .inc();
        }
    }

    /// Counts one webhook delivery. `provider` must be a loaded provider's
    /// name (or `""` when the path named none); `result` is `accepted`,
    /// `refused` or `unavailable`; `reason` one of a fixed list.
    pub fn webhook(&self, provider: &str, result: &'static str, reason: &'static str) {
        if let Some(families) = &self.0 {
            families
                .webhooks
                .get_or_create(&WebhookLabels {
                    provider: provider.to_string(),
                    result,
                    reason,
                })
                .inc();
        }
    }

    /// Counts the events of one accepted delivery.
    pub fn webhook_events(&self, provider: &str, new: usize, duplicates: usize) {
        if let Some(families) = &self.0 {
            for (result, count) in [("new", new), ("duplicate", duplicates)] {
                families
                    .webhook_events
                    .get_or_create(&EventLabels {
                        provider: provider.to_string(),
                        result,
                    })
                    .inc_by(count as u64);
            }
        }
    }

    /// The counters of `provider`'s flows, by [`FlowResult`] (done,
    /// failed, missing), resolved once: a flow thread keeps them, so
    /// counting a flow takes no lock. `None` when metrics are off.
    pub fn flow_counters(&self, provider: &str) -> Option<[Counter; 3]> {
        let families = self.0.as_ref()?;
        let counter = |outcome| {
            families
                .flows
                .get_or_create(&FlowLabels {
                    provider: provider.to_string(),
                    outcome,
                })
                .clone()
        };
        Some([counter("done"), counter("failed"), counter("missing")])
    }

    /// Sets the queue gauges of `worker_id` to what Redis holds now.
    pub fn set_queue(&self, worker_id: &str, state: &QueueState) {
        let Some(families) = &self.0 else { return };
        for (status, count) in &state.jobs {
            families
                .jobs
                .get_or_create(&JobLabels {
                    worker_id: worker_id.to_string(),
                    status: status.clone(),
                })
                .set(*count);
        }
        let worker = WorkerLabels {
            worker_id: worker_id.to_string(),
        };
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        families
            .stream_length
            .get_or_create(&worker)
            .set(gauge(state.stream_length));
        families
            .pending
            .get_or_create(&worker)
            .set(gauge(state.pending));
        families
            .dead_letters
            .get_or_create(&worker)
            .set(gauge(state.dead_letters));
    }

    /// The OpenMetrics text of every metric (empty when disabled).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(families) = &self.0 {
            prometheus_client::encoding::text::encode(&mut out, &families.registry)
                .expect("writing to a String cannot fail");
        }
        out
    }
}

/// `outcome` label values of `payhost_requests_total`, in [`RequestMeter`]'s
/// array order.
const OUTCOMES: [&str; 3] = ["ok", "http_error", "transport_error"];

/// One executor's request counters (see [`Metrics::request_meter`]).
#[derive(Clone, Default)]
pub struct RequestMeter(Option<Arc<RequestCounters>>);

struct RequestCounters {
    /// By (object, operation): ok, http_error, transport_error.
    counters: HashMap<(String, String), [Counter; 3]>,
    retries: Counter,
}

impl RequestMeter {
    /// Counts one finished request (after its retries) and its retries.
    pub fn record(
        &self,
        object: &str,
        operation: &str,
        outcome: &wit::TransportOutcome,
        retries: u32,
    ) {
        let Some(counters) = &self.0 else { return };
        let index = match outcome {
            wit::TransportOutcome::Response(r) if (200..300).contains(&r.status) => 0,
            wit::TransportOutcome::Response(_) => 1,
            wit::TransportOutcome::Failed(_) => 2,
        };
        // Routes carry the plugin's own object and operation names, all
        // resolved in advance; a name not among them is not counted rather
        // than given a series of its own.
        if let Some(by_outcome) = counters
            .counters
            .get(&(object.to_string(), operation.to_string()))
        {
            by_outcome[index].inc();
        }
        if retries > 0 {
            counters.retries.inc_by(u64::from(retries));
        }
    }
}

/// One plugin instance's call histograms, in [`PLUGIN_FUNCTIONS`] order.
pub struct PluginTimers {
    /// One histogram per [`PLUGIN_FUNCTIONS`] entry, in its order.
    calls: Vec<CallHistogram>,
    host_classified: Counter,
}

impl PluginTimers {
    /// Records one call of `function` that took `elapsed`.
    pub fn observe(&self, function: &str, elapsed: Duration) {
        if let Some(i) = PLUGIN_FUNCTIONS.iter().position(|f| *f == function) {
            self.calls[i].observe(elapsed);
        }
    }

    /// Counts one response the host classified instead of the plugin.
    pub fn host_classified(&self) {
        self.host_classified.inc();
    }
}

/// Upper bounds of the plugin-call buckets, in seconds: a `build-request`
/// takes microseconds, a plugin at its deadline a second or more.
const CALL_BUCKETS: [f64; 14] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0, 5.0,
];

/// A histogram of durations made of atomics only: one counter per bucket
/// (the last for `+Inf`) and the sum in nanoseconds. A scrape may see a
/// bucket and the sum of different moments, as with any lock-free counter
/// set; each value alone is exact.
#[derive(Clone, Debug, Default)]
pub struct CallHistogram(Arc<CallBuckets>);

#[derive(Debug, Default)]
struct CallBuckets {
    counts: [AtomicU64; CALL_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl CallHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = CALL_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(CALL_BUCKETS.len());
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for CallHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CallHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = CALL_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts.iter().copied())
            .collect();
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum::<u64>(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Reads state into the metrics before a scrape is answered (the worker's
/// Redis gauges).
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A [`Refresh`] that reads `worker_id`'s job counts, stream length,
/// pending entries and dead letters from Redis (as `payhost jobs` does) into
/// `metrics`. A failed read is logged and leaves the last values.
pub fn queue_refresh(
    conn: redis::aio::ConnectionManager,
    worker_id: &str,
    metrics: Metrics,
) -> Refresh {
    let worker_id: Arc<str> = worker_id.into();
    Arc::new(move || {
        let (mut conn, worker_id, metrics) = (conn.clone(), worker_id.clone(), metrics.clone());
        Box::pin(async move {
            match queue_state(&mut conn, &worker_id).await {
                Ok(state) => metrics.set_queue(&worker_id, &state),
                Err(err) => tracing::warn!("metrics: cannot read the queue state: {err}"),
            }
        })
    })
}

async fn queue_state(
    conn: &mut redis::aio::ConnectionManager,
    worker_id: &str,
) -> redis::RedisResult<QueueState> {
    use redis::AsyncCommands;
    let report = crate::queue::status::report(conn, Some(worker_id), 0).await?;
    let stream_length: u64 = conn
        .xlen(crate::queue::keys::stream(worker_id))
        .await
        .unwrap_or(0);
    let mut state = QueueState {
        stream_length,
        ..QueueState::default()
    };
    if let Some(worker) = report.into_iter().next() {
        state.jobs = worker.counts.into_iter().collect();
        state.pending = worker.pending;
        state.dead_letters = worker.dead_letters;
    }
    Ok(state)
}

/// How long a scrape waits for [`Refresh`] before answering with what it has.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `listen` and serves `GET /metrics` on the current runtime until it
/// shuts down; returns the bound address (the port may be 0) once
/// connections are accepted, after printing it on stderr.
pub async fn serve(
    listen: std::net::SocketAddr,
    metrics: Metrics,
    refresh: Option<Refresh>,
) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for metrics"))?;
    let address = listener.local_addr()?;
    crate::say!("metrics on http://{address}/metrics");
    tokio::spawn(accept(listener, metrics, refresh));
    Ok(address)
}

/// The endpoint's accept loop. It needs no graceful shutdown: a scrape
/// changes nothing, and the process's runtime ends it.
async fn accept(listener: tokio::net::TcpListener, metrics: Metrics, refresh: Option<Refresh>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!("accepting a metrics connection failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        let refresh = refresh.clone();
        let service = hyper::service::service_fn(move |request| {
            let metrics = metrics.clone();
            let refresh = refresh.clone();
            async move { Ok::<_, Infallible>(scrape(request, &metrics, refresh).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("metrics connection from {peer}: {err}");
            }
        });
    }
}

async fn scrape<B>(
    request: Request<B>,
    metrics: &Metrics,
    refresh: Option<Refresh>,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            if let Some(refresh) = refresh
                && tokio::time::timeout(REFRESH_TIMEOUT, refresh())
                    .await
                    .is_err()
            {
                tracing::warn!("metrics: reading the queue state took over {REFRESH_TIMEOUT:?}");
            }
            (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.encode(),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: metrics are at GET /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Every `(result, reason)` a delivery can end with in `payhost serve`.
pub const WEBHOOK_OUTCOMES: &[(&str, &str)] = &[
    ("accepted", "ok"),
    ("refused", "unsigned"),
    ("refused", "bad_signature"),
    ("refused", "stale"),
    ("refused", "malformed"),
    ("refused", "plugin_failed"),
    ("refused", "body_too_large"),
    ("refused", "unreadable_body"),
    ("refused", "body_timeout"),
    ("refused", "method_not_allowed"),
    ("refused", "unknown_provider"),
    ("unavailable", "busy"),
    ("unavailable", "queue_unavailable"),
    ("unavailable", "shutting_down"),
];

/// `payhost serve`'s webhook counters, resolved once at start for its
/// providers (and `""`, for paths naming none) and every
/// [`WEBHOOK_OUTCOMES`], then only read: counting a delivery takes no lock.
pub struct WebhookMetrics {
    metrics: Metrics,
    deliveries: HashMap<String, HashMap<(&'static str, &'static str), Counter>>,
    /// `[new, duplicate]` events per provider.
    events: HashMap<String, [Counter; 2]>,
}

impl WebhookMetrics {
    pub fn new<'p>(metrics: &Metrics, providers: impl IntoIterator<Item = &'p str>) -> Self {
        let mut deliveries = HashMap::new();
        let mut events = HashMap::new();
        if let Some(families) = &metrics.0 {
            for provider in providers.into_iter().chain([""]) {
                let counters = WEBHOOK_OUTCOMES
                    .iter()
                    .map(|&(result, reason)| {
                        let labels = WebhookLabels {
                            provider: provider.to_string(),
                            result,
                            reason,
                        };
                        (
                            (result, reason),
                            families.webhooks.get_or_create(&labels).clone(),
                        )
                    })
                    .collect();
                deliveries.insert(provider.to_string(), counters);
                let event = |result| {
                    families
                        .webhook_events
                        .get_or_create(&EventLabels {
                            provider: provider.to_string(),
                            result,
                        })
                        .clone()
                };
                events.insert(provider.to_string(), [event("new"), event("duplicate")]);
            }
        }
        Self {
            metrics: metrics.clone(),
            deliveries,
            events,
        }
    }

    /// [`Metrics::webhook`], without a lock for the outcomes resolved at
    /// start.
    pub fn webhook(&self, provider: &str, result: &'static str, reason: &'static str) {
        match self
            .deliveries
            .get(provider)
            .and_then(|counters| counters.get(&(result, reason)))
        {
            Some(counter) => {
                counter.inc();
            }
            None => self.metrics.webhook(provider, result, reason),
        }
    }

    /// [`Metrics::webhook_events`], likewise.
    pub fn webhook_events(&self, provider: &str, new: usize, duplicates: usize) {
        match self.events.get(provider) {
            Some([fresh, seen]) => {
                fresh.inc_by(new as u64);
                seen.inc_by(duplicates as u64);
            }
            None => self.metrics.webhook_events(provider, new, duplicates),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_metrics_record_and_show_nothing() {
        let metrics = Metrics::disabled();
        metrics.flow("stripe", FlowResult::Done);
        metrics.webhook("stripe", "accepted", "ok");
        assert!(metrics.plugin_timers("stripe").is_none());
        assert_eq!(metrics.encode(), "");
    }

    #[test]
    fn the_call_histogram_counts_into_cumulative_buckets() {
        let metrics = Metrics::enabled();
        let timers = metrics.plugin_timers("stripe").expect("enabled");
        timers.observe("build-request", Duration::from_micros(3));
        timers.observe("build-request", Duration::from_micros(40));
        timers.observe("build-request", Duration::from_secs(10));
        let text = metrics.encode();
        // The encoder puts `le` first and writes bounds in decimal.
        let line = |le: &str, count: u32| {
            format!(
                "payhost_plugin_call_seconds_bucket{{le=\"{le}\",provider=\"stripe\",function=\"build-request\"}} {count}\n"
            )
        };
        assert!(text.contains(&line("0.000005", 1)), "{text}");
        assert!(text.contains(&line("0.00005", 2)), "{text}");
        assert!(text.contains(&line("5.0", 2)), "{text}");
        assert!(text.contains(&line("+Inf", 3)), "{text}");
        assert!(
            text.contains(
                "payhost_plugin_call_seconds_count{provider=\"stripe\",function=\"build-request\"} 3\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn flows_and_webhooks_are_counted_by_label() {
        let metrics = Metrics::enabled();
        metrics.flow("stripe", FlowResult::Done);
        metrics.flow("stripe", FlowResult::Done);
        metrics.flow("stripe", FlowResult::Missing);
        metrics.webhook("stripe", "refused", "bad_signature");
        let text = metrics.encode();
        assert!(
            text.contains("payhost_flows_total{provider=\"stripe\",outcome=\"done\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("payhost_flows_total{provider=\"stripe\",outcome=\"missing\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "payhost_webhooks_total{provider=\"stripe\",result=\"refused\",reason=\"bad_signature\"} 1\n"
            ),
            "{text}"
        );
    }
}
