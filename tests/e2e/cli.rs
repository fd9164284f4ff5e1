//! `payhost plugin info` and `payhost plugin request`, as a person uses them,
//! and the flags `payhost worker` shares with `payhost run`, honoured.

use std::time::Duration;

use payhost_e2e::RedisServer;
use payhost_e2e::scenario::{Scenario, run_command};
use payhost_e2e::stub::{Action, StubServer};

fn plugin_cmd(args: &[&str]) -> payhost_e2e::scenario::RunOutput {
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("plugin")
        .arg(args[0])
        .arg(payhost_e2e::plugin("stripe"));
    cmd.args(&args[1..])
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    run_command(cmd)
}

#[test]
fn info_prints_a_table_of_objects_operations_and_fields() {
    let out = plugin_cmd(&["info"]);
    out.assert_success();
    out.assert_printed("provider  stripe");
    out.assert_printed("base URL  https://api.stripe.com");
    for needle in [
        "payment_intent  (new_payment_intent())",
        "create_async",
        "POST   /v1/payment_intents/{id}/confirm",
        "(needs .id)",
        "amount",
        "string-map",
        "subscription",
        "setup_intent",
    ] {
        out.assert_printed(needle);
    }
}

#[test]
fn info_json_is_machine_readable() {
    let out = plugin_cmd(&["info", "--json"]);
    out.assert_success();
    let info: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(info["name"], "stripe");
    let objects = info["objects"].as_array().unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for object in [
        "payment_intent",
        "customer",
        "product",
        "price",
        "subscription",
        "coupon",
        "refund",
        "payment_method",
        "setup_intent",
    ] {
        assert!(names.contains(&object), "{object} missing from {names:?}");
    }
}

#[test]
fn request_prints_the_exact_request_without_sending() {
    let out = plugin_cmd(&[
        "request",
        "payment_intent",
        "create",
        r#"{"amount": 2000, "currency": "usd", "metadata": {"order id": "6735"}, "payment_method_types": ["card"]}"#,
    ]);
    out.assert_success();
    out.assert_printed("POST https://api.stripe.com/v1/payment_intents");
    out.assert_printed("content-type: application/x-www-form-urlencoded");
    out.assert_printed("Idempotency-Key: <generated per request>");
    out.assert_printed(
        "amount=2000&currency=usd&metadata[order+id]=6735&payment_method_types[0]=card",
    );
    assert!(
        !out.stdout.to_lowercase().contains("authorization"),
        "{}",
        out.stdout
    );

    let out = plugin_cmd(&[
        "request",
        "customer",
        "retrieve",
        r#"{"id": "cus_1", "expand": ["default_source"]}"#,
    ]);
    out.assert_success();
    out.assert_printed("GET https://api.stripe.com/v1/customers/cus_1?expand[0]=default_source");
}

#[test]
fn request_errors_name_the_problem_and_exit_non_zero() {
    let out = plugin_cmd(&["request", "payment_intent", "create", r#"{"amout": 5}"#]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("amout") && out.stderr.contains("payment_intent"),
        "{out}"
    );

    let out = plugin_cmd(&["request", "payment_intent", "create", r#"{"amount": -5}"#]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("amount"), "{out}");

    let out = plugin_cmd(&["request", "payment_intent", "create", "{not json"]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("PARAMS_JSON is not valid JSON"),
        "{out}"
    );

    let out = plugin_cmd(&["request", "spaceship", "create", "{}"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("spaceship"), "{out}");
}

/// `payhost worker` takes the HTTP flags `run` takes and applies them to the
/// requests its flows make: with `--max-retries 0` a 500 is tried once, not
/// three times (the stub counts what reaches it). The script's own request
/// (sent by `run`, also without retries) fails first; its error flow, run by
/// the worker, makes the request under test.
#[test]
fn worker_honours_max_retries_for_requests_its_flows_make() {
    let redis = RedisServer::start();
    let down = r#"{"error":{"type":"api_error","message":"down"}}"#;
    let stub = StubServer::start(move |_, _| Action::json(500, down));
    let s = Scenario::new();
    s.flow(
        "new_create_customer_error",
        r#"new_product().name("x").create_async(WORKER_ID, CONTEXT_ID);"#,
    )
    .flow(
        "new_create_product_error",
        r#"print(`product error ${parsed_error.http_status}`);"#,
    );
    s.script(r#"new_customer().email("r@example.com").create_async("unretried", "ctx");"#);
    let mut worker = s.worker(
        &redis.url(),
        "unretried",
        &stub.base_url(),
        &["--max-retries", "0"],
    );
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.args(["--max-retries", "0"]);
    run_command(run).assert_success();
    worker.wait_for_stdout("product error 500", Duration::from_secs(60));
    assert!(worker.terminate().success());
    let paths: Vec<String> = stub.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/v1/customers", "/v1/products"],
        "one attempt each, no retries:\n{}",
        worker.stderr()
    );
}
