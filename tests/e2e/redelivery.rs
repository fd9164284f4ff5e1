//! A flow job re-delivered after its worker died makes the same requests
//! with the same idempotency keys, so the provider replays instead of
//! creating a second object.
//!
//! Against stripe-stateful-mock (a Stripe-compatible server we did not write,
//! which replays POSTs on `Idempotency-Key`) and a real redis-server: worker A
//! runs the product's response flow, whose price POST reaches the server;
//! A is SIGKILLed mid-flow; worker B claims the job after the lease and runs
//! the flow again. The server must hold one price, not two.

use std::time::{Duration, Instant};

use payhost_e2e::scenario::{Scenario, TEST_SECRET};
use payhost_e2e::{RedisServer, StatefulMock, http_request};

/// The prices the server holds.
fn prices(server: &StatefulMock) -> Vec<serde_json::Value> {
    let response = http_request(
        "GET",
        &format!("{}/v1/prices?limit=100", server.base_url()),
        &[("authorization", &format!("Bearer {TEST_SECRET}"))],
        None,
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let list: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    list["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_flow_run_again_after_its_worker_died_does_not_create_twice() {
    let redis = RedisServer::start();
    let server = StatefulMock::start();
    let s = Scenario::new();
    // The price POST goes out, then the flow keeps its worker busy long
    // enough to be killed while it still holds the job.
    s.flow(
        "new_create_product_response",
        r#"
        new_price().product(parsed_data.id).unit_amount(700).currency("usd")
            .create_async(WORKER_ID, CONTEXT_ID);
        print("price requested");
        // Busy for 4 s in few operations (each pad is one), well under the
        // operation limit.
        let started = timestamp();
        while started.elapsed < 4.0 { let s = ""; s.pad(100000, "x"); }
        print("product flow done");
        "#,
    )
    .flow(
        "new_create_price_response",
        r#"print(`price ${parsed_data.id}`);"#,
    );
    s.script(r#"new_product().name("Redelivered").create_async("redeliver", "ctx");"#);
    let mut detached = s.command_redis(&server.base_url(), &redis.url());
    detached.arg("--detach");
    let out = payhost_e2e::scenario::run_command(detached);
    out.assert_success();

    let lease = ["--lease", "1"];
    let mut a = s.worker(&redis.url(), "redeliver", &server.base_url(), &lease);
    a.wait_for_stdout("price requested", Duration::from_secs(60));
    let started = Instant::now();
    while prices(&server).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the price POST never reached the server\n{}",
            a.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill();
    assert!(
        !a.stdout().contains("product flow done"),
        "worker A finished before it was killed; the test proves nothing\n{}",
        a.stdout()
    );

    let b = s.worker(&redis.url(), "redeliver", &server.base_url(), &lease);
    b.wait_for_stdout("product flow done", Duration::from_secs(60));
    b.wait_for_stdout("price price_", Duration::from_secs(60));
    let held = prices(&server);
    assert_eq!(
        held.len(),
        1,
        "the re-run flow created a second price: {held:#?}\n--- worker B:\n{}{}",
        b.stdout(),
        b.stderr()
    );
}
