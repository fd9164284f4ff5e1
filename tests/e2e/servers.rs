//! Smoke tests for the test infrastructure itself: each server starts, answers
//! a real request, and the encoding oracle answers as stripe-python does.
//! When these fail, every other end-to-end test would fail for the same
//! reason, so read these first.

use payhost_e2e::{LocalStripe, RedisServer, StatefulMock, http_request, oracle_encode};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

const SECRET: &str = "Bearer sk_test_payhost_e2e";

#[test]
fn localstripe_creates_a_customer_and_404s_an_unknown_one() {
    let server = LocalStripe::start();
    let base = server.base_url();

    let created = http_request(
        "POST",
        &format!("{base}/v1/customers"),
        &[("Authorization", SECRET)],
        Some("email=a%40b.c&metadata[order]=42"),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let customer = created.json();
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["email"], "a@b.c");
    assert_eq!(customer["metadata"]["order"], "42");

    let missing = http_request(
        "GET",
        &format!("{base}/v1/customers/cus_customer123"),
        &[("Authorization", SECRET)],
        None,
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.json()["error"]["type"], "invalid_request_error");
}

#[test]
fn stateful_mock_replays_an_idempotent_request_and_takes_price_subscriptions() {
    let server = StatefulMock::start();
    let base = server.base_url();
    let post = |path: &str, body: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("Authorization", SECRET)];
        headers.extend_from_slice(extra);
        let response = http_request("POST", &format!("{base}{path}"), &headers, Some(body));
        assert_eq!(response.status, 200, "POST {path}: {}", response.body);
        response
    };

    let key = [("Idempotency-Key", "smoke-1")];
    let first = post("/v1/customers", "email=a%40b.c", &key);
    let replay = post("/v1/customers", "email=a%40b.c", &key);
    assert_eq!(first.json()["id"], replay.json()["id"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    let customer = first.json()["id"].as_str().unwrap().to_string();
    let product = post("/v1/products", "name=Gold", &[]).json()["id"].clone();
    let price = post(
        "/v1/prices",
        &format!(
            "currency=usd&unit_amount=1000&recurring[interval]=month&product={}",
            product.as_str().unwrap()
        ),
        &[],
    )
    .json()["id"]
        .clone();
    let price = price.as_str().unwrap();
    let subscription = post(
        "/v1/subscriptions",
        &format!("customer={customer}&items[0][price]={price}&items[0][quantity]=2"),
        &[],
    )
    .json();
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["items"]["data"][0]["price"]["id"], price);
    assert_eq!(subscription["items"]["data"][0]["quantity"], 2);
}

#[test]
fn redis_server_answers_and_keeps_its_aof_across_a_restart() {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    assert!(redis.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(command(redis.port(), "PING"), "+PONG");
    assert_eq!(command(redis.port(), "SET smoke kept"), "+OK");

    redis.restart();
    assert_eq!(command(redis.port(), "GET smoke"), "$4");
}

/// One inline Redis command; the first line of the reply.
fn command(port: u16, line: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("write to redis");
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .expect("read from redis");
    reply.trim_end().to_string()
}

#[test]
fn oracle_encodes_as_stripe_python_does() {
    let bodies = oracle_encode(&[
        json!({"metadata": {"a b": "c&d"}}),
        json!({"items": [{"price": "p", "quantity": 2}], "expand": ["x"]}),
    ]);
    assert_eq!(
        bodies,
        [
            "metadata[a+b]=c%26d",
            "items[0][price]=p&items[0][quantity]=2&expand[0]=x",
        ]
    );
}
