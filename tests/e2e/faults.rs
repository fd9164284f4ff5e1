//! Network faults, one request each, from a stub server that misbehaves on
//! purpose: dropped connections, 5xx then 2xx, conflicts, rate limits, the
//! `Stripe-Should-Retry` header both ways, slow, huge, truncated, broken and
//! non-UTF-8 bodies, and redirects that must not be followed.
//!
//! Every run must end in exactly one flow, the response flow or the error
//! flow with the right Stripe error type, after exactly the attempts the
//! Stripe SDKs would make (the stub counts them), with the same
//! `Idempotency-Key` on each, and the summary line must say so.
//!
//! Last, a fault inside payhost's own Redis worker: a job must never sit
//! unnoticed until its lease runs out.

use std::time::{Duration, Instant};

use payhost_e2e::RedisServer;
use payhost_e2e::scenario::{RunOutput, Scenario, run_command};
use payhost_e2e::stub::{Action, SeenRequest, StubServer};
use serde_json::Value;

const RESPONSE_FLOW: &str = r#"print(`response ${parsed_data.id}`);"#;

/// One line a person reads, one line of JSON the test checks exactly.
const ERROR_FLOW: &str = r#"
print(`error ${parsed_error.http_status} ${parsed_error.error.type}`);
print(`error_json ${error_json}`);
"#;

/// `payhost run` of a script that creates one customer, with `flags`.
fn run_one(stub: &StubServer, flags: &[&str]) -> RunOutput {
    let s = Scenario::new();
    s.flow("new_create_customer_response", RESPONSE_FLOW)
        .flow("new_create_customer_error", ERROR_FLOW);
    s.script(r#"new_customer().email("fault@example.com").create_async();"#);
    let mut cmd = s.command(&stub.base_url());
    cmd.args(flags);
    let out = run_command(cmd);
    out.assert_success();
    out
}

/// The one flow that ran: its `response ...` or `error ...` line.
#[track_caller]
fn the_flow(out: &RunOutput) -> String {
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("response ") || l.starts_with("error "))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one flow runs\n{out}");
    lines[0].to_string()
}

/// `parsed_error` as the error flow saw it (the flow printed it as JSON).
#[track_caller]
fn the_error(out: &RunOutput) -> Value {
    let lines = out.lines_starting("error_json ");
    assert_eq!(lines.len(), 1, "exactly one error flow runs\n{out}");
    serde_json::from_str(lines[0].trim_start_matches("error_json ")).unwrap()
}

#[track_caller]
fn assert_summary(out: &RunOutput, requests_and_retries: &str) {
    assert_eq!(
        out.summary(),
        format!("payhost: {requests_and_retries}, 1 flows run, 0 flows missing, 0 failures"),
        "{out}"
    );
}

/// Every request carried the same idempotency key; returns how many there were.
#[track_caller]
fn attempts_with_one_key(seen: &[SeenRequest]) -> usize {
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .map(String::as_str)
                .expect("every POST carries an Idempotency-Key")
        })
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0] && !k.is_empty()),
        "the same key on every attempt: {keys:?}"
    );
    assert!(
        seen.iter()
            .all(|r| r.method == "POST" && r.path == "/v1/customers")
    );
    seen.len()
}

fn stripe_error(status: u16, body: &str) -> Action {
    Action::json(status, body)
}

#[test]
fn connection_reset_before_the_response_is_retried_twice_then_api_connection_error() {
    // A real TCP reset (RST), as a crashing server or a middlebox sends.
    let stub = StubServer::start(|_, _| Action::Reset);
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 0 api_connection_error");
    let error = the_error(&out);
    assert_eq!(error["http_status"], 0);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}/v1/customers", stub.base_url()))
            && message.contains("Connection reset by peer"),
        "the message names the URL and the cause: {error}"
    );
    assert_eq!(attempts_with_one_key(&stub.seen()), 3);
    assert_summary(&out, "1 requests (2 retries)");
}

#[test]
fn body_cut_short_is_a_connection_error_and_is_retried() {
    // The headers promise 100 bytes; 10 arrive, then the connection closes.
    let stub = StubServer::start(|_, _| {
        Action::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\":\"cu".to_vec())
    });
    let out = run_one(&stub, &["--max-retries", "1"]);
    assert_eq!(the_flow(&out), "error 200 api_connection_error");
    assert_eq!(the_error(&out)["error"]["failure_kind"], "io");
    assert_eq!(attempts_with_one_key(&stub.seen()), 2);
    assert_summary(&out, "1 requests (1 retries)");
}

#[test]
fn server_error_then_success_retries_with_the_same_idempotency_key() {
    let stub = StubServer::start(|_, n| match n {
        0 => stripe_error(
            500,
            r#"{"error":{"type":"api_error","message":"try later"}}"#,
        ),
        _ => Action::json(200, r#"{"id":"cus_retried","object":"customer"}"#),
    });
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "response cus_retried");
    assert_eq!(attempts_with_one_key(&stub.seen()), 2);
    assert_summary(&out, "1 requests (1 retries)");
}

#[test]
fn conflict_409_is_retried_until_the_retries_run_out() {
    let stub = StubServer::start(|_, _| {
        stripe_error(
            409,
            r#"{"error":{"message":"another request is in progress"}}"#,
        )
    });
    let out = run_one(&stub, &[]);
    // No type in the body: stripe-python maps 409 to a plain APIError.
    assert_eq!(the_flow(&out), "error 409 api_error");
    assert_eq!(
        the_error(&out)["error"]["message"],
        "another request is in progress"
    );
    assert_eq!(attempts_with_one_key(&stub.seen()), 3);
    assert_summary(&out, "1 requests (2 retries)");
}

#[test]
fn rate_limit_429_is_not_retried() {
    let stub = StubServer::start(|_, _| stripe_error(429, r#"{"error":{"message":"slow down"}}"#));
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 429 rate_limit_error");
    assert_eq!(attempts_with_one_key(&stub.seen()), 1);
    assert_summary(&out, "1 requests (0 retries)");
}

#[test]
fn should_retry_false_on_a_500_stops_retries() {
    let stub = StubServer::start(|_, _| {
        stripe_error(
            500,
            r#"{"error":{"type":"api_error","message":"do not repeat"}}"#,
        )
        .with_header("Stripe-Should-Retry", "false")
    });
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 500 api_error");
    assert_eq!(attempts_with_one_key(&stub.seen()), 1);
    assert_summary(&out, "1 requests (0 retries)");
}

#[test]
fn should_retry_true_on_a_400_retries() {
    let stub = StubServer::start(|_, _| {
        stripe_error(400, r#"{"error":{"message":"lock timeout"}}"#)
            .with_header("Stripe-Should-Retry", "true")
    });
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 400 invalid_request_error");
    assert_eq!(attempts_with_one_key(&stub.seen()), 3);
    assert_summary(&out, "1 requests (2 retries)");
}

#[test]
fn body_slower_than_the_request_timeout_is_a_timeout_and_is_retried() {
    // 200 bytes at one per 50 ms would take 10 s; the timeout is 1 s.
    let stub = StubServer::start(|_, _| Action::SlowBody {
        every: Duration::from_millis(50),
        body: vec![b' '; 200],
    });
    let out = run_one(&stub, &["--request-timeout", "1", "--max-retries", "1"]);
    // The failure kind says the 1 s timeout ended each attempt, not the end
    // of the 10 s body (no wall-clock bound: the machine may be loaded).
    assert_eq!(the_flow(&out), "error 200 api_connection_error");
    assert_eq!(the_error(&out)["error"]["failure_kind"], "timeout");
    assert_eq!(attempts_with_one_key(&stub.seen()), 2);
    assert_summary(&out, "1 requests (1 retries)");
}

/// The three ways a body can be too big: announced, chunked, or announced
/// and then not even sent. None is read past the cap, none is retried.
#[test]
fn body_over_the_size_cap_is_an_api_error_and_is_not_retried() {
    let big = format!(r#"{{"id":"cus_big","pad":"{}"}}"#, "x".repeat(5000));
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let cases: Vec<(&str, Action)> = vec![
        ("content-length", Action::json(200, &big)),
        ("chunked", Action::Raw(chunked.into_bytes())),
        (
            "lying content-length",
            Action::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n{}".to_vec()),
        ),
    ];
    for (name, action) in cases {
        let stub = StubServer::start(move |_, _| action.clone());
        let out = run_one(&stub, &["--max-response-bytes", "1000"]);
        assert_eq!(the_flow(&out), "error 200 api_error", "{name}");
        let error = the_error(&out);
        assert_eq!(error["error"]["failure_kind"], "body_too_large", "{name}");
        assert_eq!(
            error["error"]["message"], "the response body exceeded the 1000 byte limit",
            "{name}"
        );
        assert_eq!(attempts_with_one_key(&stub.seen()), 1, "{name}");
        assert_summary(&out, "1 requests (0 retries)");
    }
}

#[test]
fn invalid_json_on_a_200_is_an_api_error_that_keeps_the_raw_body() {
    let body = r#"{"id": "cus_1", "object": "customer", oops"#;
    let stub = StubServer::start(move |_, _| Action::json(200, body));
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 200 api_error");
    let error = the_error(&out);
    assert_eq!(error["error"]["raw_body"], body);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "invalid response body from the API (HTTP 200): the body is not valid JSON"
        ),
        "{message}"
    );
    assert_eq!(attempts_with_one_key(&stub.seen()), 1);
    assert_summary(&out, "1 requests (0 retries)");
}

#[test]
fn non_utf8_body_is_an_api_error_with_a_lossy_raw_body() {
    let stub = StubServer::start(|_, _| Action::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{\"id\":\"cus_\xff\xfe\"}".to_vec(),
    });
    let out = run_one(&stub, &[]);
    assert_eq!(the_flow(&out), "error 200 api_error");
    let error = the_error(&out);
    assert_eq!(
        error["error"]["message"],
        "invalid response body from the API (HTTP 200): the body is not valid UTF-8"
    );
    assert_eq!(
        error["error"]["raw_body"],
        "{\"id\":\"cus_\u{fffd}\u{fffd}\"}"
    );
    assert_eq!(attempts_with_one_key(&stub.seen()), 1);
    assert_summary(&out, "1 requests (0 retries)");
}

#[test]
fn redirects_are_not_followed_anywhere() {
    // The other host is a second stub, so "not contacted" is observed, not
    // assumed; evil.example.com is what a hostile server would really say.
    let elsewhere = StubServer::ok_objects();
    let targets = [
        format!("{}/v1/customers", elsewhere.base_url()),
        "http://evil.example.com/x".to_string(),
    ];
    for (status, location) in [(302, &targets[0]), (307, &targets[0]), (302, &targets[1])] {
        let location = location.clone();
        let stub = StubServer::start(move |_, _| Action::Respond {
            status,
            headers: vec![("location".into(), location.clone())],
            body: Vec::new(),
        });
        let out = run_one(&stub, &[]);
        assert_eq!(the_flow(&out), format!("error {status} api_error"));
        assert_eq!(
            the_error(&out)["error"]["message"],
            format!("invalid response body from the API (HTTP {status}): the body is empty")
        );
        assert_eq!(attempts_with_one_key(&stub.seen()), 1);
        assert_summary(&out, "1 requests (0 retries)");
    }
    assert_eq!(
        elsewhere.seen_count(),
        0,
        "the redirect target was contacted"
    );
}

/// The worker reads its stream with a blocking XREADGROUP inside a
/// `select!` that also waits on its lease-renewal and reclaim timers. If a
/// timer wins, the read is dropped, but Redis has already taken the command
/// and hands the next entries to it: those entries become pending for this
/// consumer without the worker ever seeing them, and only run once a reclaim
/// (XAUTOCLAIM) finds them idle for a whole lease (30 s by default), logged
/// as "left by a worker that stopped" although no worker stopped.
///
/// A 3 s lease makes the timers fire every 1 to 1.5 s; eight one-job runs at
/// varied moments must each finish well inside the lease.
#[test]
fn redis_worker_starts_every_job_at_once_not_after_the_lease() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(r#"new_customer().email("p@example.com").create_async("prompt", "ctx");"#);
    let lease = ["--lease", "3"];
    let mut worker = s.worker(&redis.url(), "prompt", &stub.base_url(), &lease);
    let mut took = Vec::new();
    for i in 0..8u64 {
        std::thread::sleep(Duration::from_millis(130 * i));
        let started = Instant::now();
        let mut run = s.command_redis(&stub.base_url(), &redis.url());
        run.args(lease);
        let out = run_command(run);
        out.assert_success();
        took.push(started.elapsed());
    }
    assert!(worker.terminate().success());
    assert_eq!(worker.stdout().lines().count(), 8, "{}", worker.stdout());
    let slow: Vec<&Duration> = took
        .iter()
        .filter(|t| **t > Duration::from_secs(2))
        .collect();
    assert!(
        slow.is_empty() && !worker.stderr().contains("claimed job entry"),
        "HOST BUG: jobs waited for the lease instead of running at once \
         (run times {took:?}); host/src/worker.rs `consume` drops an in-flight \
         XREADGROUP when a timer fires\n{}",
        worker.stderr()
    );
}
