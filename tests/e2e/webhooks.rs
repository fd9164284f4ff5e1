//! `payhost serve`: providers' signed webhooks in, one flow per event out.
//!
//! Against the real peers: localstripe's own signed webhooks (the full loop,
//! a request made by `payhost run` coming back as an event), stripe-python's
//! `construct_event` and Adyen's Python library as the verification oracles,
//! real redis-server with two workers for exactly-once across processes, and
//! a load of 10,000 signed deliveries from concurrent clients.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use payhost_e2e::scenario::{Scenario, ServeProcess};
use payhost_e2e::{LocalStripe, RedisServer, http_request};
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "whsec_payhost_e2e_0f9e8d7c6b5a";
const WAIT: Duration = Duration::from_secs(60);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

use payhost_e2e::stripe_signature;

fn stripe_event(id: &str, kind: &str, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": now(),
        "livemode": false,
        "data": {"object": object},
    })
    .to_string()
}

fn stripe_scenario() -> Scenario {
    Scenario::new().with_env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
}

/// POSTs `body` to the serve's Stripe path with `signature` (if any).
fn deliver(serve: &ServeProcess, body: &str, signature: Option<&str>) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(signature) = signature {
        headers.push(("Stripe-Signature", signature));
    }
    let response = http_request("POST", &serve.url("/webhooks/stripe"), &headers, Some(body));
    (response.status, response.body)
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn localstripe_events_come_back_to_their_flows() {
    let stripe = LocalStripe::start();
    let s = stripe_scenario();
    s.flow(
        "on_customer_created",
        r#"print(`EVENT ${parsed_event.type} ${parsed_data.id} ${parsed_data.email} from ${CALLER_ID} (${CONTEXT_ID == parsed_event.id})`);"#,
    );
    s.flow(
        "on_payment_intent_succeeded",
        r#"print(`EVENT ${parsed_event.type} ${parsed_data.id} ${parsed_data.amount} ${parsed_data.status}`);"#,
    );
    let serve = s.serve(&stripe.base_url(), &[]);
    let registered = http_request(
        "POST",
        &format!("{}/_config/webhooks/payhost", stripe.base_url()),
        &[("Content-Type", "application/json")],
        Some(&json!({"url": serve.url("/webhooks/stripe"), "secret": WEBHOOK_SECRET}).to_string()),
    );
    assert_eq!(registered.status, 200, "{}", registered.body);

    s.flow(
        "new_create_payment_method_response",
        r#"new_payment_intent().amount(2000).currency("usd").payment_method(parsed_data.id)
            .confirm(true).create_async();"#,
    );
    s.flow(
        "new_create_payment_intent_response",
        r#"print(`created ${parsed_data.id} ${parsed_data.status}`);"#,
    );
    s.script(
        r#"
        new_customer().email("jenny.rosen@example.com").create_async();
        new_payment_method().type("card")
            .card(#{ number: "4242424242424242", exp_month: 12, exp_year: 2034, cvc: "123" })
            .create_async();
        "#,
    );
    let out = s.run(&stripe.base_url());
    out.assert_success();
    let intent = out.value_after("created ");
    let intent = intent.split_whitespace().next().unwrap().to_string();

    serve.wait_for_stdout("EVENT customer.created cus_", WAIT);
    serve.wait_for_stdout(
        &format!("EVENT payment_intent.succeeded {intent} 2000 succeeded"),
        WAIT,
    );
    let stdout = serve.stdout();
    assert!(
        stdout.contains("jenny.rosen@example.com from stripe (true)"),
        "{stdout}"
    );
    assert!(
        !serve.stderr().contains(WEBHOOK_SECRET),
        "{}",
        serve.stderr()
    );
}

/// On generated valid, tampered, stale, multi-signature and malformed
/// headers, payhost accepts exactly what stripe-python's
/// `stripe.Webhook.construct_event` accepts, with the same tolerance.
#[test]
fn stripe_python_construct_event_is_the_oracle() {
    let s = stripe_scenario();
    let serve = s.serve("http://127.0.0.1:9", &[]);
    let t = now();
    let mut cases: Vec<(String, String, Option<String>)> = Vec::new();
    let mut n = 0;
    let mut case = |label: &str, body: String, header: Option<String>| {
        cases.push((label.to_string(), body, header));
    };
    let mut event = || {
        n += 1;
        stripe_event(
            &format!("evt_oracle_{n}"),
            "customer.created",
            json!({"id": "cus_1"}),
        )
    };
    let body = event();
    let good = stripe_signature(WEBHOOK_SECRET, t, &body);
    case("valid", body.clone(), Some(good.clone()));
    case(
        "tampered body",
        body.replace("cus_1", "cus_2"),
        Some(good.clone()),
    );
    let b = event();
    case(
        "wrong secret",
        b.clone(),
        Some(stripe_signature("whsec_other", t, &b)),
    );
    let b = event();
    case(
        "stale (301 s)",
        b.clone(),
        Some(stripe_signature(WEBHOOK_SECRET, t - 301, &b)),
    );
    let b = event();
    case(
        "old but within tolerance (250 s)",
        b.clone(),
        Some(stripe_signature(WEBHOOK_SECRET, t - 250, &b)),
    );
    let b = event();
    case(
        "future timestamp",
        b.clone(),
        Some(stripe_signature(WEBHOOK_SECRET, t + 3600, &b)),
    );
    let b = event();
    let sig = stripe_signature(WEBHOOK_SECRET, t, &b);
    let v1 = sig.split("v1=").nth(1).unwrap().to_string();
    case(
        "several v1, the last matching",
        b.clone(),
        Some(format!("t={t},v1={},v1={v1}", "0".repeat(64))),
    );
    let b = event();
    let sig = stripe_signature(WEBHOOK_SECRET, t, &b);
    let v1 = sig.split("v1=").nth(1).unwrap().to_string();
    case("v0 only", b.clone(), Some(format!("t={t},v0={v1}")));
    case(
        "upper-case hex",
        b.clone(),
        Some(format!("t={t},v1={}", v1.to_uppercase())),
    );
    case("no timestamp", b.clone(), Some(format!("v1={v1}")));
    case(
        "timestamp not a number",
        b.clone(),
        Some(format!("t=abc,v1={v1}")),
    );
    case(
        "timestamp with a plus sign and zeros",
        b.clone(),
        Some(format!("t=+000{t},v1={v1}")),
    );
    case(
        "timestamp with spaces",
        b.clone(),
        Some(format!("t= {t} ,v1={v1}")),
    );
    case(
        "two timestamps, the first signed",
        b.clone(),
        Some(format!("t={t},t=1,v1={v1}")),
    );
    case(
        "two timestamps, the second signed",
        b.clone(),
        Some(format!("t=1,t={t},v1={v1}")),
    );
    case(
        "signature with a trailing =",
        b.clone(),
        Some(format!("t={t},v1={v1}=x")),
    );
    case(
        "garbage items around",
        b.clone(),
        Some(format!("junk,t={t},,v1={v1},x")),
    );
    case("empty header", b.clone(), Some(String::new()));
    case("no header", b.clone(), None);
    let not_json = "this is not json".to_string();
    case(
        "signed, but not JSON",
        not_json.clone(),
        Some(stripe_signature(WEBHOOK_SECRET, t, &not_json)),
    );
    let thin = json!({"id": "evt_thin", "object": "v2.core.event", "type": "x.y"}).to_string();
    case(
        "a thin v2 event",
        thin.clone(),
        Some(stripe_signature(WEBHOOK_SECRET, t, &thin)),
    );

    let request = json!({
        "cases": cases.iter().map(|(_, body, header)| json!({
            "payload": body,
            "header": header,
            "secret": WEBHOOK_SECRET,
            "tolerance": 300,
        })).collect::<Vec<_>>()
    });
    let verdicts = oracle("stripe-verify", &request);
    let verdicts = verdicts["results"].as_array().unwrap();
    assert_eq!(verdicts.len(), cases.len());
    let mut accepted_by_oracle = 0;
    for ((label, body, header), verdict) in cases.iter().zip(verdicts) {
        let oracle_accepts = verdict["accepted"].as_bool().unwrap();
        accepted_by_oracle += oracle_accepts as usize;
        let (status, answer) = deliver(&serve, body, header.as_deref());
        assert_eq!(
            (200..300).contains(&status),
            oracle_accepts,
            "{label}: payhost answered {status} {answer:?}, stripe-python says {verdict}"
        );
        if !oracle_accepts {
            assert!((400..500).contains(&status), "{label}: {status}");
            assert!(!answer.contains(WEBHOOK_SECRET), "{label}: {answer}");
        }
    }
    assert!(
        (4..cases.len() - 4).contains(&accepted_by_oracle),
        "the cases must exercise both verdicts: {accepted_by_oracle} of {} accepted",
        cases.len()
    );
    let stderr = serve.stderr();
    assert!(!stderr.contains(WEBHOOK_SECRET), "{stderr}");
}

fn oracle(command: &str, input: &Value) -> Value {
    payhost_e2e::webhook_oracle(command, input)
}

const ADYEN_HMAC_KEY: &str = payhost_e2e::ADYEN_TEST_HMAC_KEY;

/// Adyen's notification examples (vendored from its Webhooks spec), each
/// item signed by Adyen's own library, through `payhost serve` with the
/// Adyen plugin: accepted with `[accepted]`, each event's flow run once;
/// the same with one signed field altered is refused and runs nothing.
#[test]
fn adyen_notifications_signed_by_adyens_library_are_accepted_and_run() {
    let examples: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("data/adyen/Webhooks-v1-examples.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let s = Scenario::new()
        .with_plugin("adyen")
        .with_env("ADYEN_HMAC_KEY", ADYEN_HMAC_KEY)
        .with_env("ADYEN_API_KEY", "AQE_test")
        .with_env("ADYEN_MERCHANT_ACCOUNT", "TestMerchant");
    s.flow(
        "on_authorisation",
        r#"print(`AUTH ${parsed_event.id} ${parsed_data.pspReference} ${parsed_data.amount.value} ${CALLER_ID}`);"#,
    );
    s.flow(
        "on_capture",
        r#"print(`CAPTURE ${parsed_data.pspReference}`);"#,
    );
    let serve = s.serve("http://127.0.0.1:9", &[]);
    let url = serve.url("/webhooks/adyen");
    let mut sent = 0;
    for key in ["post-AUTHORISATION-authorisation", "post-CAPTURE-capture"] {
        let mut body = examples[key]["value"].clone();
        let items: Vec<Value> = body["notificationItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["NotificationRequestItem"].clone())
            .collect();
        let signed = oracle(
            "adyen-sign",
            &json!({"key_hex": ADYEN_HMAC_KEY, "items": items}),
        );
        let signed = signed["items"].as_array().unwrap();
        for (slot, item) in body["notificationItems"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(signed)
        {
            slot["NotificationRequestItem"] = item.clone();
        }
        let text = body.to_string();
        let response = http_request(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&text),
        );
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "[accepted]"),
            "{key}"
        );
        sent += 1;
        // Adyen retries the same item: acknowledged, not run again.
        let again = http_request(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&text),
        );
        assert_eq!(again.status, 200);

        // One signed field altered: the library refuses it, and so do we.
        let mut tampered = body.clone();
        tampered["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = json!(1);
        let item = tampered["notificationItems"][0]["NotificationRequestItem"].clone();
        let verdict = oracle(
            "adyen-verify",
            &json!({"key_hex": ADYEN_HMAC_KEY, "items": [item]}),
        );
        assert_eq!(verdict["results"][0], false);
        let response = http_request(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&tampered.to_string()),
        );
        assert_eq!(response.status, 401, "{key}: {}", response.body);
    }
    assert_eq!(sent, 2);
    serve.wait_for_stdout(
        "AUTH QFQTPCQ8HXSKGK82:AUTHORISATION:true QFQTPCQ8HXSKGK82 1000 adyen",
        WAIT,
    );
    serve.wait_for_stdout("CAPTURE ", WAIT);
    let mut serve = serve;
    serve.terminate();
    let stdout = serve.stdout();
    assert_eq!(lines_with(&stdout, "AUTH "), 1, "{stdout}");
    assert_eq!(lines_with(&stdout, "CAPTURE "), 1, "{stdout}");
    assert!(!serve.stderr().contains(ADYEN_HMAC_KEY));
}

/// Bad input gets the right 4xx, a log line with the reason, and no flow.
#[test]
fn bad_deliveries_are_refused_logged_and_run_nothing() {
    let s = stripe_scenario();
    s.flow("on_customer_created", r#"print(`RAN ${parsed_event.id}`);"#);
    let serve = s.serve(
        "http://127.0.0.1:9",
        &["--max-body", "4096", "--client-timeout", "1"],
    );
    let t = now();
    let body = stripe_event("evt_bad_1", "customer.created", json!({"id": "cus_1"}));
    let good = stripe_signature(WEBHOOK_SECRET, t, &body);
    let expected_hex = good.split("v1=").nth(1).unwrap().to_string();

    let (status, answer) = deliver(&serve, &body, Some(&format!("t={t},v1={}", "a".repeat(64))));
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.contains(&expected_hex) && !answer.contains(WEBHOOK_SECRET));
    let (status, _) = deliver(&serve, &body.replace("cus_1", "cus_9"), Some(&good));
    assert_eq!(status, 401);
    let (status, answer) = deliver(
        &serve,
        &body,
        Some(&stripe_signature(WEBHOOK_SECRET, t - 1000, &body)),
    );
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("tolerance"), "{answer}");
    let (status, _) = deliver(&serve, &body, None);
    assert_eq!(status, 400);
    let junk = "{not json";
    let (status, _) = deliver(
        &serve,
        junk,
        Some(&stripe_signature(WEBHOOK_SECRET, t, junk)),
    );
    assert_eq!(status, 400);
    let response = http_request(
        "POST",
        &serve.url("/webhooks/nosuchprovider"),
        &[("Stripe-Signature", &good)],
        Some(&body),
    );
    assert_eq!(response.status, 404);
    let response = http_request("GET", &serve.url("/webhooks/stripe"), &[], None);
    assert_eq!(response.status, 405);
    assert_eq!(
        http_request("GET", &serve.url("/healthz"), &[], None).status,
        200
    );

    // Oversize: declared, and streamed without a length.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8192));
    let (status, _) = deliver(
        &serve,
        &big,
        Some(&stripe_signature(WEBHOOK_SECRET, t, &big)),
    );
    assert_eq!(status, 413);
    let chunked = raw_exchange(
        &serve.address,
        &format!(
            "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n2000\r\n{}\r\n2000\r\n{}\r\n0\r\n\r\n",
            "y".repeat(0x2000),
            "y".repeat(0x2000)
        ),
    );
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");

    // A slow client that never finishes its headers is cut off.
    let mut slow = TcpStream::connect(&serve.address).unwrap();
    slow.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // The log says why, once per delivery, and nothing secret.
    let stderr = serve.stderr();
    for reason in [
        "bad_signature",
        "stale",
        "unsigned",
        "malformed",
        "body over 4096",
    ] {
        assert!(
            stderr.contains(reason),
            "no {reason:?} in the log:\n{stderr}"
        );
    }
    assert_eq!(
        lines_with(&stderr, "reason=\"stale\"") + lines_with(&stderr, "reason=stale"),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(WEBHOOK_SECRET), "{stderr}");
    assert!(!stderr.contains(&expected_hex), "{stderr}");
    assert!(!serve.stdout().contains("RAN"), "{}", serve.stdout());

    // And the server still works.
    let (status, _) = deliver(&serve, &body, Some(&good));
    assert_eq!(status, 200);
    serve.wait_for_stdout("RAN evt_bad_1", WAIT);
}

fn raw_exchange(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before the whole body is written.
    let _ = stream.write_all(request.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_redelivered_event_is_acknowledged_and_runs_once() {
    let s = stripe_scenario();
    s.flow("on_customer_created", r#"print(`RAN ${parsed_event.id}`);"#);
    let serve = s.serve("http://127.0.0.1:9", &[]);
    let body = stripe_event("evt_again", "customer.created", json!({"id": "cus_1"}));
    for _ in 0..5 {
        // Each retry is signed anew, as Stripe does.
        let (status, _) = deliver(
            &serve,
            &body,
            Some(&stripe_signature(WEBHOOK_SECRET, now(), &body)),
        );
        assert_eq!(status, 200);
    }
    let other = stripe_event("evt_other", "customer.created", json!({"id": "cus_2"}));
    deliver(
        &serve,
        &other,
        Some(&stripe_signature(WEBHOOK_SECRET, now(), &other)),
    );
    serve.wait_for_stdout("RAN evt_other", WAIT);
    // The embedded queue runs in order per thread, but give any second run
    // of evt_again the chance to show.
    let mut serve = serve;
    serve.terminate();
    assert_eq!(
        lines_with(&serve.stdout(), "RAN evt_again"),
        1,
        "{}",
        serve.stdout()
    );
}

/// Through real Redis: the 2xx comes only once Redis holds the event, any
/// worker runs it, and duplicates delivered before and while workers run
/// are each run once across two workers.
#[test]
fn through_redis_each_event_runs_once_across_two_workers() {
    let redis = RedisServer::start();
    let s = stripe_scenario();
    s.flow(
        "on_customer_created",
        r#"print(`RAN ${parsed_event.id} on ${WORKER_ID}`);"#,
    );
    let serve = s.serve(
        "http://127.0.0.1:9",
        &["--redis", &redis.url(), "--worker-id", "hooks"],
    );
    let events: Vec<String> = (0..40)
        .map(|i| stripe_event(&format!("evt_r{i}"), "customer.created", json!({"id": i})))
        .collect();
    for body in &events {
        let (status, _) = deliver(
            &serve,
            body,
            Some(&stripe_signature(WEBHOOK_SECRET, now(), body)),
        );
        assert_eq!(status, 200);
    }
    // Acknowledged means queued: every event is in Redis before any worker.
    let report = payhost_e2e::jobs_report(&redis.url(), "hooks");
    assert_eq!(report["counts"]["queued"], 40, "{report}");

    let w1 = s.worker(&redis.url(), "hooks", "http://127.0.0.1:9", &[]);
    let w2 = s.worker(&redis.url(), "hooks", "http://127.0.0.1:9", &[]);
    // Replays while the workers run.
    for body in events.iter().step_by(3) {
        let (status, _) = deliver(
            &serve,
            body,
            Some(&stripe_signature(WEBHOOK_SECRET, now(), body)),
        );
        assert_eq!(status, 200);
    }
    let start = std::time::Instant::now();
    loop {
        let ran = lines_with(&w1.stdout(), "RAN evt_r") + lines_with(&w2.stdout(), "RAN evt_r");
        if ran >= 40 {
            break;
        }
        assert!(start.elapsed() < WAIT, "only {ran} of 40 ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let all = format!("{}{}", w1.stdout(), w2.stdout());
    let mut runs: HashMap<String, usize> = HashMap::new();
    for line in all.lines().filter(|l| l.starts_with("RAN ")) {
        *runs
            .entry(line.split_whitespace().nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(runs.len(), 40, "{all}");
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    let report = payhost_e2e::jobs_report(&redis.url(), "hooks");
    assert_eq!(report["counts"]["done"], 40, "{report}");
}

/// 10,000 signed deliveries from 16 concurrent clients (a tenth of them
/// delivered twice), then SIGTERM at once: every acknowledged event ran,
/// each once.
#[test]
fn ten_thousand_deliveries_none_lost_none_run_twice() {
    const EVENTS: usize = 10_000;
    const CLIENTS: usize = 16;
    let s = stripe_scenario();
    s.flow("on_customer_created", r#"print(`RAN ${parsed_event.id}`);"#);
    let mut serve = s.serve("http://127.0.0.1:9", &[]);
    let url = serve.url("/webhooks/stripe");
    let acknowledged: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let url = url.clone();
                scope.spawn(move || {
                    let mut ok = 0;
                    for i in (client..EVENTS).step_by(CLIENTS) {
                        let body = stripe_event(
                            &format!("evt_load_{i}"),
                            "customer.created",
                            json!({"n": i}),
                        );
                        let times = if i % 10 == 0 { 2 } else { 1 };
                        for _ in 0..times {
                            let signature = stripe_signature(WEBHOOK_SECRET, now(), &body);
                            let response = http_request(
                                "POST",
                                &url,
                                &[
                                    ("Stripe-Signature", &signature),
                                    ("Content-Type", "application/json"),
                                ],
                                Some(&body),
                            );
                            assert_eq!(response.status, 200, "{}", response.body);
                        }
                        ok += 1;
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(acknowledged, EVENTS);
    let status = serve.terminate();
    assert!(status.success(), "{status}\n{}", serve.stderr());
    let stdout = serve.stdout();
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("RAN ")) {
        *runs.entry(&line[4..]).or_default() += 1;
    }
    assert_eq!(runs.len(), EVENTS, "events lost at shutdown");
    assert!(runs.values().all(|&n| n == 1));
    assert!(
        serve.stderr().contains(&format!(
            "({EVENTS} new events, {} duplicates)",
            EVENTS / 10
        )),
        "{}",
        serve.stderr()
    );
}

#[test]
fn serve_refuses_to_start_without_the_signing_key() {
    let s = Scenario::new();
    let output = payhost_e2e::payhost()
        .args(["serve", "--listen", "127.0.0.1:0", "--plugin"])
        .arg(payhost_e2e::plugin("stripe"))
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .current_dir(s.dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("STRIPE_WEBHOOK_SECRET") && stderr.contains("webhook_secret"),
        "{stderr}"
    );
}

/// One `payhost serve` with two plugins: a webhook path per provider, each
/// provider's event flows looked up in its own `flows/<provider>/` first.
#[test]
fn one_serve_receives_stripe_and_adyen() {
    let s = stripe_scenario()
        .with_env("ADYEN_HMAC_KEY", ADYEN_HMAC_KEY)
        .with_env("ADYEN_API_KEY", "AQE_test")
        .with_env("ADYEN_MERCHANT_ACCOUNT", "TestMerchant");
    std::fs::create_dir_all(s.flows_dir().join("adyen")).unwrap();
    std::fs::create_dir_all(s.flows_dir().join("stripe")).unwrap();
    std::fs::write(
        s.flows_dir().join("stripe/on_charge_succeeded.rhai"),
        r#"print(`STRIPE ${CALLER_ID} ${parsed_event.id}`);"#,
    )
    .unwrap();
    std::fs::write(
        s.flows_dir().join("adyen/on_authorisation.rhai"),
        r#"print(`ADYEN ${CALLER_ID} ${parsed_data.pspReference}`);"#,
    )
    .unwrap();
    let serve = s.serve(
        "stripe=http://127.0.0.1:9",
        &["--plugin", payhost_e2e::plugin("adyen").to_str().unwrap()],
    );
    assert!(
        serve.stderr().contains("/webhooks/stripe"),
        "{}",
        serve.stderr()
    );
    assert!(
        serve.stderr().contains("/webhooks/adyen"),
        "{}",
        serve.stderr()
    );

    let body = stripe_event("evt_two", "charge.succeeded", json!({"id": "ch_1"}));
    let (status, _) = deliver(
        &serve,
        &body,
        Some(&stripe_signature(WEBHOOK_SECRET, now(), &body)),
    );
    assert_eq!(status, 200);
    let item = json!({
        "amount": {"currency": "EUR", "value": 1000}, "eventCode": "AUTHORISATION",
        "eventDate": "2021-01-01T01:00:00+01:00", "merchantAccountCode": "TestMerchant",
        "merchantReference": "order-1", "pspReference": "PSP2PROVIDERS", "success": "true",
        "additionalData": {}
    });
    let signed = oracle(
        "adyen-sign",
        &json!({"key_hex": ADYEN_HMAC_KEY, "items": [item]}),
    );
    let delivery = json!({"live": "false", "notificationItems": [
        {"NotificationRequestItem": signed["items"][0]}
    ]});
    let response = http_request(
        "POST",
        &serve.url("/webhooks/adyen"),
        &[("Content-Type", "application/json")],
        Some(&delivery.to_string()),
    );
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "[accepted]")
    );
    // A Stripe delivery at the Adyen path is Adyen's to judge: refused.
    let response = http_request(
        "POST",
        &serve.url("/webhooks/adyen"),
        &[(
            "Stripe-Signature",
            &stripe_signature(WEBHOOK_SECRET, now(), &body),
        )],
        Some(&body),
    );
    assert!((400..500).contains(&response.status), "{}", response.status);
    serve.wait_for_stdout("STRIPE stripe evt_two", WAIT);
    serve.wait_for_stdout("ADYEN adyen PSP2PROVIDERS", WAIT);
}

/// A plugin that spins or traps in its webhook exports costs one delivery a
/// 500 (the provider retries), never the server: the next delivery is
/// verified and run as usual.
#[test]
fn a_hostile_webhook_plugin_fails_one_delivery_not_the_server() {
    const TOKEN: &str = "hostile_token_5f4e3d2c1b";
    let s = Scenario::new()
        .with_plugin("webhook-hostile")
        .with_env("WEBHOOK_HOSTILE_TOKEN", TOKEN);
    s.flow(
        "on_thing_made",
        r#"print(`MADE ${parsed_event.id} ${parsed_data.said}`);"#,
    );
    let serve = s.serve("http://127.0.0.1:9", &["--plugin-timeout-ms", "200"]);
    let url = serve.url("/webhooks/webhook_hostile");
    let signed = |body: &str| payhost_e2e::hmac_sha256_hex(TOKEN.as_bytes(), body.as_bytes());
    for hostile in ["spin", "panic", "parse-spin x"] {
        let response = http_request(
            "POST",
            &url,
            &[("X-Signature", &signed(hostile))],
            Some(hostile),
        );
        assert_eq!(response.status, 500, "{hostile}: {}", response.body);
        assert!(!response.body.contains(TOKEN));
        let body = format!("evt_after_{} thing.made", hostile.len());
        let response = http_request(
            "POST",
            &url,
            &[("X-Signature", &signed(&body))],
            Some(&body),
        );
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "ok"),
            "after {hostile}"
        );
    }
    assert_eq!(
        http_request("GET", &serve.url("/healthz"), &[], None).status,
        200
    );
    for n in [4, 5, 12] {
        serve.wait_for_stdout(&format!("MADE evt_after_{n} thing.made"), WAIT);
    }
    let stderr = serve.stderr();
    assert_eq!(lines_with(&stderr, "plugin_failed"), 3, "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
