//! `--metrics-listen`: the Prometheus endpoint of `payhost worker` and
//! `payhost serve`, scraped over HTTP and read with a Prometheus text-format
//! parser (`prometheus-parse`), its numbers checked against what happened.
//!
//! The worker runs on a real redis-server: jobs queued by `payhost run
//! --redis`, flows that chain requests to a stub answering 200, 404, 500 and
//! a TCP reset, flows that succeed, fail and are missing. `payhost serve`
//! gets signed, duplicate, badly signed, unsigned and misaddressed
//! deliveries.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use payhost_e2e::scenario::{Scenario, WorkerProcess, run_command};
use payhost_e2e::stub::{Action, StubServer};
use payhost_e2e::{RedisServer, http_request};
use prometheus_parse::{Sample, Scrape, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The address a process printed as `metrics on http://ADDR/metrics`.
fn metrics_url(process: &WorkerProcess) -> String {
    let stderr = process.stderr();
    let address = stderr
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .unwrap_or_else(|| panic!("no `metrics on` line in:\n{stderr}"));
    format!("http://{address}/metrics")
}

/// One scrape, parsed.
fn scrape(url: &str) -> Scrape {
    let response = http_request("GET", url, &[], None);
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        response.header("content-type")
    );
    Scrape::parse(response.body.lines().map(|l| Ok(l.to_string()))).expect("a valid scrape")
}

/// The samples of `metric` whose labels include every `(name, value)` of
/// `labels`.
fn matching<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The value of the one sample of `metric` with `labels`; 0 when there is
/// none (a series not created yet has counted nothing).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = matching(scrape, metric, labels);
    assert!(
        found.len() <= 1,
        "{metric}{labels:?} matches several series: {found:?}"
    );
    match found.first().map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{metric}{labels:?} is not a number: {other:?}"),
    }
}

/// The observation count of the histogram `metric` with `labels` (its
/// `+Inf` bucket).
fn histogram_count(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = matching(scrape, metric, labels);
    assert_eq!(found.len(), 1, "{metric}{labels:?}: {found:?}");
    match &found[0].value {
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .expect("a +Inf bucket"),
        other => panic!("{metric}{labels:?} is not a histogram: {other:?}"),
    }
}

/// Scrapes until `done` holds for a scrape (the flows of accepted webhooks
/// finish after the delivery is answered); returns that scrape.
fn scrape_until(url: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let scrape = scrape(url);
        if done(&scrape) {
            return scrape;
        }
        assert!(
            start.elapsed() < WAIT,
            "never scraped {what}: {:#?}",
            scrape.samples
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_worker_counts_its_requests_retries_plugin_calls_flows_and_queue() {
    let redis = RedisServer::start();
    let stub = StubServer::start(|req, n| match (req.method.as_str(), req.path.as_str()) {
        (_, p) if p.starts_with("/v1/customers/cus_404") => Action::json(
            404,
            r#"{"error":{"type":"invalid_request_error","message":"No such customer"}}"#,
        ),
        (_, p) if p.starts_with("/v1/prices/price_500") => {
            Action::json(500, r#"{"error":{"type":"api_error","message":"boom"}}"#)
        }
        (_, p) if p.starts_with("/v1/products/prod_reset") => Action::Reset,
        _ => Action::json(200, &format!(r#"{{"id":"obj_{n}","object":"x"}}"#)),
    });
    let s = Scenario::new();
    // The run queues two jobs; the first one's flow makes four requests
    // from the worker, whose outcomes come back to it as four more jobs.
    s.flow(
        "new_create_customer_response",
        r#"
        new_customer().id("cus_404").retrieve_async();
        new_price().id("price_ok").retrieve_async();
        new_price().id("price_500").retrieve_async();
        new_product().id("prod_reset").retrieve_async();
        "#,
    )
    .flow(
        "new_retrieve_customer_error",
        r#"print(`customer error ${parsed_error.http_status}`);"#,
    )
    .flow(
        "new_retrieve_price_response",
        r#"print(`price ${parsed_data.id}`);"#,
    )
    .flow(
        "new_retrieve_price_error",
        r#"throw `price failed with ${parsed_error.http_status}`;"#,
    );
    // No flow files for new_retrieve_customer_response (the run's second
    // job) nor new_retrieve_product_error: both jobs end `missing`.
    s.script(
        r#"
        new_customer().email("m@example.com").create_async("metered", "ctx-1");
        new_customer().id("cus_gone").retrieve_async("metered", "ctx-2");
        "#,
    );
    let mut worker = s.worker(
        &redis.url(),
        "metered",
        &stub.base_url(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--max-retries",
            "1",
            "--max-deliveries",
            "1",
        ],
    );
    let url = metrics_url(&worker);

    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    assert!(
        out.summary()
            .contains("6 flow jobs via Redis (3 done, 1 dead"),
        "{out}"
    );

    let m = scrape(&url);
    let requests = |object: &str, operation: &str, outcome: &str| {
        value(
            &m,
            "payhost_requests_total",
            &[
                ("provider", "stripe"),
                ("object", object),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    // Only the worker's own requests: the run's two were sent by `payhost run`.
    assert_eq!(requests("customer", "retrieve", "http_error"), 1.0);
    assert_eq!(requests("customer", "retrieve", "ok"), 0.0);
    assert_eq!(requests("price", "retrieve", "ok"), 1.0);
    assert_eq!(requests("price", "retrieve", "http_error"), 1.0);
    assert_eq!(requests("product", "retrieve", "transport_error"), 1.0);
    assert_eq!(requests("customer", "create", "ok"), 0.0);
    // The 500 and the reset, each retried once (--max-retries 1).
    assert_eq!(
        value(&m, "payhost_retries_total", &[("provider", "stripe")]),
        2.0
    );

    let flows = |outcome: &str| {
        value(
            &m,
            "payhost_flows_total",
            &[("provider", "stripe"), ("outcome", outcome)],
        )
    };
    assert_eq!(flows("done"), 3.0);
    assert_eq!(flows("failed"), 1.0);
    assert_eq!(flows("missing"), 2.0);

    // Four requests built by the worker's flows, four outcomes classified:
    // the 2xx price by the host (the Stripe plugin declares
    // `json-object-is-success`), the other three by the plugin.
    let calls = |function: &str| {
        histogram_count(
            &m,
            "payhost_plugin_call_seconds",
            &[("provider", "stripe"), ("function", function)],
        )
    };
    assert_eq!(calls("build-request"), 4.0);
    assert_eq!(calls("parse-response"), 3.0);
    assert_eq!(
        value(
            &m,
            "payhost_host_classified_responses_total",
            &[("provider", "stripe")]
        ),
        1.0
    );
    assert_eq!(calls("check-webhook"), 0.0);

    let jobs = |status: &str| {
        value(
            &m,
            "payhost_jobs",
            &[("worker_id", "metered"), ("status", status)],
        )
    };
    assert_eq!(jobs("done"), 3.0);
    assert_eq!(jobs("dead"), 1.0);
    assert_eq!(jobs("missing"), 2.0);
    assert_eq!(jobs("queued"), 0.0);
    assert_eq!(jobs("running"), 0.0);
    let worker_gauge = |metric: &str| value(&m, metric, &[("worker_id", "metered")]);
    assert_eq!(worker_gauge("payhost_queue_pending"), 0.0);
    assert_eq!(worker_gauge("payhost_queue_dead_letters"), 1.0);
    assert!(
        matching(
            &m,
            "payhost_queue_stream_length",
            &[("worker_id", "metered")]
        )
        .len()
            == 1,
        "the stream length is shown"
    );

    assert!(worker.terminate().success());
}

const WEBHOOK_SECRET: &str = "whsec_payhost_metrics_5a4b3c";

/// `Stripe-Signature` for `body` signed now, as Stripe computes it.
fn stripe_signature(body: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    payhost_e2e::stripe_signature(WEBHOOK_SECRET, t as i64, body)
}

fn stripe_event(id: &str, kind: &str) -> String {
    serde_json::json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": 1,
        "livemode": false,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    })
    .to_string()
}

#[test]
fn serve_counts_webhooks_by_result_and_reason_and_their_flows() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new().with_env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    s.flow(
        "on_customer_created",
        r#"print(`EVENT ${parsed_event.id}`);"#,
    );
    // No flow for customer.deleted: its event ends `missing`.
    let serve = s.serve(&stub.base_url(), &["--metrics-listen", "127.0.0.1:0"]);
    let url = metrics_url(&serve);
    let post = |path: &str, body: &str, signature: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(signature) = signature {
            headers.push(("Stripe-Signature", signature));
        }
        http_request("POST", &serve.url(path), &headers, Some(body)).status
    };

    let created = stripe_event("evt_created", "customer.created");
    let deleted = stripe_event("evt_deleted", "customer.deleted");
    assert_eq!(
        post(
            "/webhooks/stripe",
            &created,
            Some(&stripe_signature(&created))
        ),
        200
    );
    assert_eq!(
        post(
            "/webhooks/stripe",
            &deleted,
            Some(&stripe_signature(&deleted))
        ),
        200
    );
    // The provider sends the first one again: acknowledged, not run again.
    assert_eq!(
        post(
            "/webhooks/stripe",
            &created,
            Some(&stripe_signature(&created))
        ),
        200
    );
    let forged = stripe_event("evt_forged", "customer.created");
    let wrong = stripe_signature(&created);
    assert_eq!(post("/webhooks/stripe", &forged, Some(&wrong)), 401);
    assert_eq!(post("/webhooks/stripe", &forged, None), 400);
    assert_eq!(
        post(
            "/webhooks/nobody",
            &created,
            Some(&stripe_signature(&created))
        ),
        404
    );

    let m = scrape_until(&url, "both event flows finished", |m| {
        value(
            m,
            "payhost_flows_total",
            &[("provider", "stripe"), ("outcome", "done")],
        ) + value(
            m,
            "payhost_flows_total",
            &[("provider", "stripe"), ("outcome", "missing")],
        ) >= 2.0
    });
    serve.wait_for_stdout("EVENT evt_created", WAIT);
    let webhooks = |provider: &str, result: &str, reason: &str| {
        value(
            &m,
            "payhost_webhooks_total",
            &[
                ("provider", provider),
                ("result", result),
                ("reason", reason),
            ],
        )
    };
    assert_eq!(webhooks("stripe", "accepted", "ok"), 3.0);
    assert_eq!(webhooks("stripe", "refused", "bad_signature"), 1.0);
    assert_eq!(webhooks("stripe", "refused", "unsigned"), 1.0);
    // The unknown path's name is not a label value: a client cannot make
    // series.
    assert_eq!(webhooks("", "refused", "unknown_provider"), 1.0);
    assert!(matching(&m, "payhost_webhooks_total", &[("provider", "nobody")]).is_empty());
    let events = |result: &str| {
        value(
            &m,
            "payhost_webhook_events_total",
            &[("provider", "stripe"), ("result", result)],
        )
    };
    assert_eq!(events("new"), 2.0);
    assert_eq!(events("duplicate"), 1.0);
    let flows = |outcome: &str| {
        value(
            &m,
            "payhost_flows_total",
            &[("provider", "stripe"), ("outcome", outcome)],
        )
    };
    assert_eq!(flows("done"), 1.0);
    assert_eq!(flows("missing"), 1.0);
    assert_eq!(flows("failed"), 0.0);
    let calls = |function: &str| {
        histogram_count(
            &m,
            "payhost_plugin_call_seconds",
            &[("provider", "stripe"), ("function", function)],
        )
    };
    // Every signed-or-not delivery to the Stripe path is checked; only the
    // verified ones are parsed.
    assert_eq!(calls("check-webhook"), 5.0);
    assert_eq!(calls("parse-webhook"), 3.0);

    let not_metrics = http_request("GET", &url.replace("/metrics", "/other"), &[], None);
    assert_eq!(not_metrics.status, 404);
}
