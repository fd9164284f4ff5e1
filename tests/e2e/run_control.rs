//! How `payhost run` behaves as a program: the requests a script's builders
//! produce, back-pressure, `--timeout`, Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payhost_e2e::scenario::{Scenario, run_command};
use payhost_e2e::stub::{Action, StubServer};

fn form(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn builders_send_exactly_what_the_script_set() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_subscription_response",
        r#"print(`ok ${parsed_data.id}`);"#,
    )
    .flow(
        "new_update_customer_response",
        r#"print(`ok ${parsed_data.id}`);"#,
    )
    .flow(
        "new_list_customer_response",
        r#"print(`ok ${parsed_data.id}`);"#,
    );
    s.script(
        r#"
        new_subscription()
            .customer("cus_1")
            .items(#{ price: "price_a", quantity: 2 })   // append one
            .items(#{ price: "price_b" })                // and another
            .metadata("a b", "c&d")
            .metadata(#{ plan: "gold" })                 // maps merge
            .expand("customer").expand("latest_invoice") // lists append
            .trial_period_days(14)
            .cancel_at_period_end(false)
            .set("payment_settings[save_default_payment_method]", "on_subscription")
            .idempotency_key("sub-key-1")
            .create_async();
        new_customer().id("cus_9").email("new@example.com").update_async();
        new_customer().limit(3).expand(["data.default_source"]).list_async();
        "#,
    );
    let out = s.run(&stub.base_url());
    out.assert_success();
    let seen = stub.seen();
    assert_eq!(seen.len(), 3, "{out}");
    let sub = seen
        .iter()
        .find(|r| r.path == "/v1/subscriptions")
        .expect("subscription create");
    assert_eq!(sub.method, "POST");
    assert_eq!(
        form(&sub.body),
        "cancel_at_period_end=false&customer=cus_1&expand[0]=customer&expand[1]=latest_invoice\
         &items[0][price]=price_a&items[0][quantity]=2&items[1][price]=price_b\
         &metadata[a+b]=c%26d&metadata[plan]=gold&trial_period_days=14\
         &payment_settings[save_default_payment_method]=on_subscription"
    );
    assert_eq!(sub.headers["idempotency-key"], "sub-key-1");
    assert_eq!(
        sub.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let auth = &sub.headers["authorization"];
    assert!(auth.starts_with("Basic "), "{auth}");

    let update = seen
        .iter()
        .find(|r| r.path == "/v1/customers/cus_9")
        .expect("update");
    assert_eq!(
        (update.method.as_str(), form(&update.body).as_str()),
        ("POST", "email=new%40example.com")
    );
    let generated = &update.headers["idempotency-key"];
    assert_eq!(
        generated.len(),
        36,
        "a UUID is generated for POSTs: {generated}"
    );

    let list = seen.iter().find(|r| r.method == "GET").expect("list");
    assert_eq!(
        list.path,
        "/v1/customers?expand[0]=data.default_source&limit=3"
    );
    assert!(list.body.is_empty());
    assert!(!list.headers.contains_key("idempotency-key"));
}

/// A builder is a value: a setter changes the builder it is called on and
/// returns a copy, and copies go their own ways from then on. Templates,
/// statement-style setters and long loops of setters all send what the
/// script set.
#[test]
fn builder_copies_are_independent_values() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ok ${parsed_data.id}`);"#,
    );
    s.script(
        r#"
        let base = new_customer().email("base@example.com").metadata("tier", "gold");
        let a = base.description("a");          // base gets "a" too
        let b = base.description("b").name("B"); // base: "b"; b also has the name
        a.metadata("only", "a");                 // neither base nor b
        a.idempotency_key("key-a").create_async();
        b.idempotency_key("key-b").create_async();
        base.idempotency_key("key-base").create_async();
        let c = new_customer();                  // statement style
        c.email("c@example.com");
        for i in 0..2000 { c.metadata(`k${i % 3}`, `${i}`); }
        c.idempotency_key("key-c").create_async();
        "#,
    );
    let out = s.run(&stub.base_url());
    out.assert_success();
    let seen = stub.seen();
    let body = |key: &str| {
        let request = seen
            .iter()
            .find(|r| r.headers.get("idempotency-key").map(String::as_str) == Some(key))
            .unwrap_or_else(|| panic!("no request with key {key}: {out}"));
        form(&request.body)
    };
    assert_eq!(
        body("key-a"),
        "description=a&email=base%40example.com&metadata[only]=a&metadata[tier]=gold"
    );
    assert_eq!(
        body("key-b"),
        "description=b&email=base%40example.com&metadata[tier]=gold&name=B"
    );
    assert_eq!(
        body("key-base"),
        "description=b&email=base%40example.com&metadata[tier]=gold"
    );
    assert_eq!(
        body("key-c"),
        "email=c%40example.com&metadata[k0]=1998&metadata[k1]=1999&metadata[k2]=1997"
    );
}

#[test]
fn requests_in_flight_never_exceed_the_bound_and_the_script_waits() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let stub = {
        let (now, peak) = (now.clone(), peak.clone());
        StubServer::start(move |_, n| {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(current, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            now.fetch_sub(1, Ordering::SeqCst);
            Action::json(200, &format!(r#"{{"id":"obj_{n}"}}"#))
        })
    };
    let s = Scenario::new();
    s.flow("new_create_product_response", "");
    s.script(
        r#"
        for i in 0..20 { new_product().name(`p${i}`).create_async(); }
        print("script done");
        "#,
    );
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--max-in-flight", "3"]);
    let started = Instant::now();
    let out = run_command(cmd);
    out.assert_success();
    assert_eq!(peak.load(Ordering::SeqCst), 3, "bounded at 3 and reached");
    assert!(
        out.summary()
            .contains("20 requests (0 retries), 20 flows run"),
        "{out}"
    );
    // 20 requests, 3 at a time, 100 ms each: at least 7 rounds.
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn timeout_stops_the_run_and_says_what_was_left() {
    let stub = StubServer::start(|_, _| {
        Action::Delay(
            Duration::from_secs(10),
            Box::new(Action::json(200, r#"{"id":"x"}"#)),
        )
    });
    let s = Scenario::new();
    s.script(r#"new_product().name("slow").create_async();"#);
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--timeout", "1"]);
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.summary().contains(
            "stopped early: timed out after 1s with 1 requests in flight and 0 flows pending"
        ),
        "{out}"
    );
}

#[test]
fn ctrl_c_stops_new_requests_and_reports_what_was_abandoned() {
    let stub = StubServer::start(|_, _| {
        Action::Delay(
            Duration::from_secs(10),
            Box::new(Action::json(200, r#"{"id":"x"}"#)),
        )
    });
    let s = Scenario::new();
    s.flow("new_create_product_response", r#"print("flow ran");"#);
    s.script(r#"new_product().name("slow").create_async(); print("dispatched");"#);
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--grace", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stub.seen().is_empty() {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stdout.contains("dispatched") && !stdout.contains("flow ran"),
        "{stdout}"
    );
    assert!(
        stderr.contains("interrupted; no new requests; waiting up to 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("interrupted; abandoned 1 requests in flight and 0 flows pending"),
        "{stderr}"
    );
}

/// A flow that calls `*_async()` without ids keeps its own worker and
/// context: the chain stays together instead of falling back to the run's
/// `--worker-id` / `--context-id` defaults.
#[test]
fn a_flows_requests_without_ids_stay_in_its_worker_and_context() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"new_product().name("follow-up").create_async();"#,
    )
    .flow(
        "new_create_product_response",
        r#"print(`product flow in ${WORKER_ID} / ${CONTEXT_ID}`);"#,
    );
    s.script(r#"new_customer().email("ids@example.com").create_async("w-9", "ctx-7");"#);
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("product flow in w-9 / ctx-7");
}

/// The script waits while the flows are behind: with `--max-in-flight 4`, it
/// is never more than 4 requests in flight plus 4 finished outcomes (and the
/// markers' own lag) ahead of the flows, however fast the server answers and
/// however slow the flows are. Before, it ran ahead by all 200, and every
/// finished response body waited in memory.
#[test]
fn a_script_waits_for_slow_flows_instead_of_piling_up_outcomes() {
    let created = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let most_ahead = Arc::new(AtomicUsize::new(0));
    let (c, h, m) = (created.clone(), handled.clone(), most_ahead.clone());
    let stub = StubServer::start(move |req, n| {
        if req.method == "POST" {
            let ahead = c.fetch_add(1, Ordering::SeqCst) + 1 - h.load(Ordering::SeqCst);
            m.fetch_max(ahead, Ordering::SeqCst);
        } else {
            h.fetch_add(1, Ordering::SeqCst);
        }
        Action::json(200, &format!(r#"{{"id":"cus_{n}","object":"customer"}}"#))
    });
    let s = Scenario::new();
    // Each flow is slow (a few ms of work), then tells the stub it is done.
    s.flow(
        "new_create_customer_response",
        r#"
        for i in 0..3 { let s = ""; s.pad(100000, "x"); }
        new_customer().id(parsed_data.id).retrieve_async();
        "#,
    );
    s.script(
        r#"
        for i in 0..200 { new_customer().email(`b${i}@example.com`).create_async(); }
        "#,
    );
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--max-in-flight", "4", "--flow-threads", "1"]);
    let out = run_command(cmd);
    out.assert_success();
    assert_eq!(created.load(Ordering::SeqCst), 200);
    let ahead = most_ahead.load(Ordering::SeqCst);
    // 4 in flight + 4 waiting for the flow thread + the flow being run and
    // its marker request on the way.
    assert!(
        ahead <= 12,
        "the script ran {ahead} requests ahead of the flows\n{out}"
    );
}
