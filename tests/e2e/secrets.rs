//! The secret key goes into the Authorization header and nowhere else: not
//! into any output line of any process (at `RUST_LOG=trace`), not into
//! Redis, not to the plugin, not into the request line, other headers or the
//! body. Checked on every path a request can take: success, an API error, a
//! retry, a plugin validation error at the call site; in both queue modes;
//! with the `recorder` plugin, which prints everything it is given; and
//! against a server that echoes the credentials back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use payhost_e2e::RedisServer;
use payhost_e2e::scenario::{RunOutput, Scenario, run_command};
use payhost_e2e::stub::{Action, SeenRequest, StubServer};

const SENTINEL: &str = "sk_test_SENTINEL_9f8e7d";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Vec<u8> {
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).expect("base64 digit") as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// The Authorization header payhost must send (Stripe: HTTP basic, the key
/// as user name, no password).
fn expected_authorization() -> String {
    format!("Basic {}", base64(format!("{SENTINEL}:").as_bytes()))
}

/// Every form in which the secret could leak: itself, its distinctive part
/// (catches masked or re-encoded copies) and the basic-auth credentials.
fn leak_forms() -> [String; 3] {
    [
        SENTINEL.to_string(),
        "SENTINEL_9f8e7d".to_string(),
        base64(format!("{SENTINEL}:").as_bytes()),
    ]
}

/// Panics naming the first line of `text` that holds the secret in any form.
#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for form in leak_forms() {
        if let Some(line) = text.lines().find(|line| line.contains(&form)) {
            panic!("the secret leaked into {what} (as {form:?}):\n{line}");
        }
    }
}

/// The stub saw the secret in the Authorization header of every request and
/// in nothing else it received.
#[track_caller]
fn assert_secret_only_in_authorization(seen: &[SeenRequest]) {
    assert!(!seen.is_empty());
    for request in seen {
        assert_eq!(
            request.headers.get("authorization"),
            Some(&expected_authorization()),
            "{request:?}"
        );
        let mut elsewhere = format!("{} {}\n", request.method, request.path);
        for (name, value) in &request.headers {
            if name != "authorization" {
                elsewhere.push_str(&format!("{name}: {value}\n"));
            }
        }
        elsewhere.push_str(&String::from_utf8_lossy(&request.body));
        assert_no_secret("the request line, another header or the body", &elsewhere);
    }
}

/// Customers succeed, products fail with a 400, the first price request
/// fails with a 500 (the retry succeeds).
fn paths_stub() -> StubServer {
    let prices = Arc::new(AtomicUsize::new(0));
    StubServer::start(move |req, _| match req.path.as_str() {
        "/v1/customers" => Action::json(200, r#"{"id":"cus_ok","object":"customer"}"#),
        "/v1/products" => Action::json(
            400,
            r#"{"error":{"type":"invalid_request_error","message":"no such thing","param":"name"}}"#,
        ),
        "/v1/prices" if prices.fetch_add(1, Ordering::SeqCst) == 0 => {
            Action::json(500, r#"{"error":{"type":"api_error","message":"hiccup"}}"#)
        }
        _ => Action::json(200, r#"{"id":"price_ok","object":"price"}"#),
    })
}

/// Success (customer), API error (product, made by the customer's flow),
/// retry (price, with the secret passed explicitly), and two plugin
/// validation errors with the secret as an argument: one caught, one that
/// ends the script.
fn paths_scenario() -> Scenario {
    let s = Scenario::new()
        .with_env("STRIPE_SECRET_KEY", SENTINEL)
        .with_env("RUST_LOG", "trace");
    s.flow(
        "new_create_customer_response",
        r#"
        print(`customer ${parsed_data.id}`);
        new_product().name("p").create_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_create_product_error",
        r#"print(`product error ${parsed_error.http_status} ${parsed_error.error.type}`);"#,
    )
    .flow(
        "new_create_price_response",
        r#"print(`price ${parsed_data.id}`);"#,
    );
    s.script(&format!(
        r#"
        new_customer().email("s@example.com").create_async("secrets", "ctx");
        new_price().currency("usd").unit_amount(100).product("prod_1")
            .create_async("secrets", "ctx", "{SENTINEL}");
        try {{
            new_price().currency("usd").unit_amount(100).product("prod_1")
                .recurring(#{{interval: "fortnight"}})
                .create_async("secrets", "ctx", "{SENTINEL}");
        }} catch (e) {{
            print(`caught: ${{e}}`);
        }}
        fn pay(key) {{
            new_payment_intent().amount("lots").currency("usd").create_async("secrets", "ctx", key)
        }}
        pay("{SENTINEL}");
        "#
    ));
    s
}

#[track_caller]
fn assert_paths_printed(stdout: &str) {
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "caught: price.create: invalid value for `recurring.interval`: expected one of \"day\", \"week\", \"month\", \"year\", got the string \"fortnight\"",
            "customer cus_ok",
            "price price_ok",
            "product error 400 invalid_request_error",
        ],
        "{stdout}"
    );
}

/// Trace logging was really on: the HTTP stack's own trace lines and
/// payhost's retry line are there.
#[track_caller]
fn assert_traced(stderr: &str) {
    let traced = stderr.lines().filter(|l| l.contains("TRACE")).count();
    assert!(
        traced > 10,
        "RUST_LOG=trace took effect: {traced} TRACE lines"
    );
}

#[test]
fn secret_only_in_the_authorization_header_embedded_queue() {
    let stub = paths_stub();
    let s = paths_scenario();
    let out = s.run(&stub.base_url());
    assert!(
        !out.status.success(),
        "the uncaught plugin error fails the run\n{}",
        Brief(&out)
    );
    assert_paths_printed(&out.stdout);
    assert!(
        out.stderr.contains(
            "payment_intent.amount: expects a non-negative whole number, not string `lots`"
        ),
        "{}",
        Brief(&out)
    );
    assert_eq!(
        out.summary(),
        "payhost: 3 requests (1 retries), 3 flows run, 0 flows missing, 1 failures",
        "{}",
        Brief(&out)
    );
    assert_traced(&out.stderr);
    assert!(out.stderr.contains("retrying after"), "{}", Brief(&out));
    assert_no_secret("payhost run's stdout", &out.stdout);
    assert_no_secret("payhost run's stderr", &out.stderr);
    let seen = stub.seen();
    assert_eq!(seen.len(), 4, "customer, product, price twice");
    assert_secret_only_in_authorization(&seen);
}

#[test]
fn secret_only_in_the_authorization_header_redis_queue() {
    let redis = RedisServer::start();
    let stub = paths_stub();
    let s = paths_scenario();
    let mut worker = s.worker(&redis.url(), "secrets", &stub.base_url(), &[]);
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    assert!(
        !out.status.success(),
        "the uncaught plugin error fails the run\n{}",
        Brief(&out)
    );
    assert!(
        out.summary()
            .contains("3 flow jobs via Redis (3 done, 0 dead, 0 redelivered)"),
        "{}",
        Brief(&out)
    );
    assert!(worker.terminate().success());
    // The script's own lines come from the run, the flows' from the worker.
    let all_stdout = format!("{}{}", out.stdout, worker.stdout());
    assert_paths_printed(&all_stdout);
    assert_traced(&out.stderr);
    assert_traced(&worker.stderr());
    assert_no_secret("payhost run's stdout", &out.stdout);
    assert_no_secret("payhost run's stderr", &out.stderr);
    assert_no_secret("the worker's stdout", &worker.stdout());
    assert_no_secret("the worker's stderr", &worker.stderr());
    let dump = payhost_e2e::redis_dump(&redis.url());
    assert!(
        dump.contains("payhost:job:"),
        "the dump covers the jobs:\n{dump}"
    );
    assert_no_secret("Redis", &dump);
    let seen = stub.seen();
    assert_eq!(seen.len(), 4, "customer, product, price twice");
    assert_secret_only_in_authorization(&seen);
}

/// The `recorder` plugin writes all it is given to stderr, which the host
/// logs: its input for every request and every outcome it classifies.
fn recorder_scenario() -> Scenario {
    let s = Scenario::new()
        .with_plugin("recorder")
        .with_env("RECORDER_SECRET_KEY", SENTINEL)
        .with_env("RUST_LOG", "trace");
    s.flow(
        "new_create_thing_response",
        r#"print(`thing ${response_json}`);"#,
    )
    .flow(
        "new_create_thing_error",
        r#"print(`thing error ${error_json}`);"#,
    );
    s
}

/// The recorder's `kind` lines, with every byte list in them (bodies are
/// printed as `[123, 34, ...]`) decoded to text, so a check sees the bodies.
fn recorder_lines(stderr: &str, kind: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(kind))
        .map(|line| {
            let mut text = line.to_string();
            for list in line.split('[').skip(1).filter_map(|s| s.split_once(']')) {
                let bytes: Option<Vec<u8>> =
                    list.0.split(", ").map(|n| n.trim().parse().ok()).collect();
                if let Some(bytes) = bytes.filter(|b| b.len() > 1) {
                    text.push_str(" decoded: ");
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            text
        })
        .collect()
}

/// A run's output without the TRACE and DEBUG lines, for failure messages.
struct Brief<'a>(&'a RunOutput);

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quiet = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.contains("TRACE") && !l.contains("DEBUG"))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let out = self.0;
        write!(
            f,
            "--- status: {}\n--- stdout:\n{}--- stderr (no TRACE/DEBUG):\n{}",
            out.status,
            quiet(&out.stdout),
            quiet(&out.stderr)
        )
    }
}

#[test]
fn the_plugin_never_receives_the_secret() {
    let retried = Arc::new(AtomicUsize::new(0));
    let stub = StubServer::start(move |req, _| match req.body.as_slice() {
        b"name=ok" => Action::json(200, r#"{"id":"thing_ok"}"#),
        b"name=bad" => Action::json(400, r#"{"error":{"message":"bad thing"}}"#),
        b"name=retry" if retried.fetch_add(1, Ordering::SeqCst) == 0 => {
            Action::json(500, r#"{"error":{"message":"hiccup"}}"#)
        }
        b"name=retry" => Action::json(200, r#"{"id":"thing_retried"}"#),
        _ => Action::Reset,
    });
    let s = recorder_scenario();
    s.script(&format!(
        r#"
        new_thing().name("ok").create_async();
        new_thing().name("bad").create_async("worker-1", "ctx", "{SENTINEL}");
        new_thing().name("retry").create_async();
        new_thing().name("drop").create_async("worker-1", "ctx", "{SENTINEL}");
        "#
    ));
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--max-retries", "1"]);
    let out = run_command(cmd);
    assert!(out.status.success(), "{}", Brief(&out));
    assert_eq!(
        out.summary(),
        "payhost: 4 requests (2 retries), 4 flows run, 0 flows missing, 0 failures",
        "{}",
        Brief(&out)
    );
    let inputs = recorder_lines(&out.stderr, "recorder-input: ");
    let responses = recorder_lines(&out.stderr, "recorder-response: ");
    assert_eq!(
        inputs.len(),
        4,
        "one build-request per request\n{}",
        Brief(&out)
    );
    assert_eq!(
        responses.len(),
        4,
        "one parse-response per outcome\n{}",
        Brief(&out)
    );
    for name in ["ok", "bad", "retry", "drop"] {
        assert!(
            inputs.iter().any(|l| l.contains(&format!("\"{name}\""))),
            "{name}: {inputs:#?}"
        );
    }
    assert_no_secret("the plugin's input", &inputs.join("\n"));
    assert_no_secret("the outcomes given to the plugin", &responses.join("\n"));
    assert_no_secret("payhost run's stdout", &out.stdout);
    assert_no_secret("payhost run's stderr", &out.stderr);
    assert_eq!(out.lines_starting("thing {").len(), 2, "{}", Brief(&out));
    assert_eq!(
        out.lines_starting("thing error {").len(),
        2,
        "{}",
        Brief(&out)
    );
    assert_secret_only_in_authorization(&stub.seen());
}

/// A 401 whose message repeats what the server received, as some servers
/// do: `echo` picks what to repeat from the Authorization header value.
fn echo_stub(echo: fn(&str) -> String) -> StubServer {
    StubServer::start(move |req, _| {
        let header = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let message = format!("Invalid API Key provided: {}", echo(&header));
        let body = serde_json::json!({
            "error": {"type": "invalid_request_error", "message": message}
        });
        Action::json(401, &body.to_string()).with_header(
            "www-authenticate",
            &format!("Basic realm=\"{}\"", echo(&header)),
        )
    })
}

/// The key the client sent, decoded from `Basic base64(key:)`.
fn decoded_key(header: &str) -> String {
    let credentials = unbase64(header.trim_start_matches("Basic "));
    String::from_utf8_lossy(&credentials)
        .trim_end_matches(':')
        .to_string()
}

/// Runs the stripe plugin (flow output) and the recorder (plugin input)
/// against `stub`; the echoed secret must reach neither.
fn assert_echo_goes_nowhere(stub: &StubServer, echoed: &str) {
    let s = Scenario::new()
        .with_env("STRIPE_SECRET_KEY", SENTINEL)
        .with_env("RUST_LOG", "debug");
    s.flow(
        "new_create_customer_error",
        r#"print(`auth error ${parsed_error.http_status}: ${parsed_error.error.message}`);"#,
    );
    s.script(r#"new_customer().email("e@example.com").create_async();"#);
    let out = s.run(&stub.base_url());
    assert!(out.status.success(), "{}", Brief(&out));
    let flows = out.lines_starting("auth error 401: Invalid API Key provided: ");
    assert_eq!(flows.len(), 1, "the error flow runs once\n{}", Brief(&out));
    let host_bug = format!(
        "HOST BUG: the server echoed the {echoed} and payhost handed it on; \
         host/src/http.rs must scrub it from response bodies and headers before \
         they reach the plugin"
    );
    assert_no_secret(
        &format!("the error flow's output ({host_bug})"),
        &out.stdout,
    );
    assert_no_secret(&format!("payhost run's stderr ({host_bug})"), &out.stderr);

    let r = recorder_scenario();
    r.script("new_thing().name(\"x\").create_async();");
    let out = r.run(&stub.base_url());
    assert!(out.status.success(), "{}", Brief(&out));
    let responses = recorder_lines(&out.stderr, "recorder-response: ");
    assert_eq!(responses.len(), 1, "{}", Brief(&out));
    assert!(
        responses[0].contains("Invalid API Key provided: "),
        "{}",
        Brief(&out)
    );
    // The headers reach the plugin too (scrubbed on their way there), the
    // echo among them.
    assert!(
        responses[0].contains(r#"("www-authenticate", "Basic realm="#),
        "the plugin was not given the response's headers\n{}",
        Brief(&out)
    );
    assert_no_secret(
        &format!("what the plugin was given ({host_bug})"),
        &responses.join("\n"),
    );
}

#[test]
fn server_echoing_the_key_in_its_error_message_does_not_leak_it() {
    let stub = echo_stub(decoded_key);
    assert_echo_goes_nowhere(&stub, "secret key");
}

#[test]
fn server_echoing_the_authorization_header_does_not_leak_the_secret() {
    let stub = echo_stub(str::to_string);
    assert_echo_goes_nowhere(&stub, "Authorization header value (`Basic base64(key:)`)");
}

/// Ways a server (or a plugin) could write the key so that a byte-for-byte
/// scrubber misses it, as `(name, encoded key)`. Each is what the server puts
/// inside a JSON string, already escaped for JSON where that is the point.
fn encoded_echoes() -> Vec<(&'static str, String)> {
    use std::fmt::Write as _;
    let json_escaped = SENTINEL.chars().fold(String::new(), |mut out, c| {
        let _ = write!(out, "\\u{:04x}", c as u32);
        out
    });
    let half_escaped: String = SENTINEL
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                format!("\\u{:04X}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect();
    let url_encoded: String = SENTINEL.bytes().map(|b| format!("%{b:02X}")).collect();
    let b64 = base64(SENTINEL.as_bytes());
    let b64_credentials = base64(format!("{SENTINEL}:").as_bytes());
    let url_safe_no_pad = b64_credentials
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    vec![
        ("JSON \\u escapes", json_escaped),
        ("JSON escapes on every other character", half_escaped),
        ("URL encoding", url_encoded),
        ("base64 of the key", b64.clone()),
        (
            "base64 of the key, no padding",
            b64.trim_end_matches('=').to_string(),
        ),
        ("base64 of `key:`, URL-safe, no padding", url_safe_no_pad),
        (
            "base64 with JSON-escaped slashes",
            b64_credentials.replace('/', "\\/"),
        ),
        ("the key cut to 16 characters", SENTINEL[..16].to_string()),
        (
            "the key's last 12 characters",
            SENTINEL[SENTINEL.len() - 12..].to_string(),
        ),
    ]
}

/// Every 10-character run of the secret: a flow that prints any of them
/// printed a meaningful part of the key.
fn partial_forms() -> Vec<&'static str> {
    (0..=SENTINEL.len() - 10)
        .map(|i| &SENTINEL[i..i + 10])
        .collect()
}

#[test]
fn server_echoing_an_encoded_key_does_not_leak_it() {
    for (name, encoded) in encoded_echoes() {
        let body = format!(
            r#"{{"error":{{"type":"invalid_request_error","message":"Invalid API Key provided: {encoded}"}}}}"#
        );
        let stub = StubServer::start(move |_, _| {
            Action::json(401, &body).with_header("x-echo", "see body")
        });
        let s = Scenario::new().with_env("STRIPE_SECRET_KEY", SENTINEL);
        s.flow(
            "new_create_customer_error",
            r#"print(`auth error ${parsed_error.http_status}: ${parsed_error.error.message}`);
               print(`raw: ${error_json}`);"#,
        );
        s.script(r#"new_customer().email("e@example.com").create_async();"#);
        let out = s.run(&stub.base_url());
        assert!(out.status.success(), "{name}: {}", Brief(&out));
        let flows = out.lines_starting("auth error 401: Invalid API Key provided: ");
        assert_eq!(
            flows.len(),
            1,
            "{name}: the error flow runs once\n{}",
            Brief(&out)
        );
        assert!(
            flows[0].contains("[REDACTED]"),
            "{name}: the flow should see the key redacted: {}",
            flows[0]
        );
        let printed = out.stdout.replace("\\/", "/");
        for form in partial_forms() {
            assert!(
                !printed.contains(form),
                "{name}: part of the key ({form:?}) reached the flow:\n{printed}"
            );
        }
        assert!(
            !printed.contains(encoded.replace("\\/", "/").as_str()),
            "{name}: the encoded key reached the flow:\n{printed}"
        );
        assert_no_secret(&format!("{name}: payhost run's stderr"), &out.stderr);
    }
}

#[test]
fn idempotency_key_that_cannot_be_sent_is_a_script_error_and_nothing_is_sent() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.script(
        r#"
        new_customer().email("a@example.com").idempotency_key("order-42\n").create_async();
        "#,
    );
    let out = s.run(&stub.base_url());
    assert!(!out.status.success(), "{}", Brief(&out));
    assert!(
        out.stderr
            .contains("idempotency key cannot be sent as a header")
            && out.stderr.contains("line 2"),
        "the error names the problem and the line\n{}",
        Brief(&out)
    );
    assert_eq!(stub.seen_count(), 0, "nothing was sent");
}

#[test]
fn a_secret_that_cannot_be_a_header_value_is_refused_at_start_without_quoting_it() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new().with_env("STRIPE_SECRET_KEY", &format!("{SENTINEL}\n"));
    s.script(r#"new_customer().email("a@example.com").create_async();"#);
    let out = s.run(&stub.base_url());
    assert!(!out.status.success(), "{}", Brief(&out));
    assert!(
        out.stderr
            .contains("STRIPE_SECRET_KEY: the secret cannot be sent in a header"),
        "the error names the variable and the problem\n{}",
        Brief(&out)
    );
    assert_no_secret("payhost run's stderr", &out.stderr);
    assert_eq!(stub.seen_count(), 0, "nothing was sent unauthenticated");
}
