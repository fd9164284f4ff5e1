//! Contract 0.2 through the real binary: a provider unlike Stripe in every
//! way the contract can say (the `json-api` test plugin: JSON bodies, header
//! auth, a required setting in the path, its own retry policy and error
//! shape, a parent id) runs end to end through the same `payhost` that runs
//! Stripe, with no host change; settings come from flags, the environment
//! or a file; script mistakes fail at the call site, before any I/O; old
//! components are refused with a rebuild hint; `payhost plugin info` shows
//! the declarations and `payhost plugin check` passes real plugins and fails
//! hostile ones with the reason.

use payhost::plugin::CONTRACT_VERSION;
use payhost_e2e::scenario::{RunOutput, Scenario, run_command};
use payhost_e2e::stub::{Action, StubServer};
use serde_json::Value;

const TOKEN: &str = "jt_payhost_e2e_token_4242";

/// A scenario with the json-api plugin, its token and tenant in the
/// environment.
fn jsonapi() -> Scenario {
    Scenario::new()
        .with_plugin("json-api")
        .with_env("JSONAPI_TOKEN", TOKEN)
        .with_env("JSONAPI_TENANT", "acme")
}

/// Answers orders with `{"id": "ord_<n>", ...echo}` and shipments with
/// `{"id": "shp_<n>"}`.
fn orders_api() -> StubServer {
    StubServer::start(|req, n| {
        if req.path.ends_with("/shipments") {
            Action::json(201, &format!(r#"{{"id":"shp_{n}","status":"created"}}"#))
        } else {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            Action::json(
                201,
                &serde_json::json!({"id": format!("ord_{n}"), "echo": body}).to_string(),
            )
        }
    })
}

#[test]
fn a_json_provider_runs_end_to_end_through_the_same_binary() {
    let stub = orders_api();
    let s = jsonapi();
    s.flow(
        "new_create_order_response",
        r#"
        print(`order ${parsed_data.id} total ${parsed_data.echo.total} ${CALLER_ID}`);
        new_shipment().parent(parsed_data.id).carrier("dhl").create_async();
        "#,
    )
    .flow(
        "new_create_shipment_response",
        r#"print(`shipment ${parsed_data.id} ${parsed_data.status}`);"#,
    );
    s.script(
        r#"
        new_order()
            .total(1250)
            .currency("eur")
            .lines([#{sku: "tea", qty: 2}])
            .tags("gift")
            .meta("k", "v")
            .create_async();
        "#,
    );
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("order ord_0 total 1250 jsonapi");
    out.assert_printed("shipment shp_1 created");

    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let order = &seen[0];
    assert_eq!(order.method, "POST");
    assert_eq!(order.path, "/tenants/acme/orders");
    assert_eq!(
        order.headers.get("x-api-token").map(String::as_str),
        Some(TOKEN)
    );
    assert!(!order.headers.contains_key("authorization"), "{order:?}");
    assert_eq!(
        order.headers.get("x-region").map(String::as_str),
        Some("eu")
    );
    assert!(order.headers.contains_key("x-request-id"), "{order:?}");
    assert!(!order.headers.contains_key("idempotency-key"), "{order:?}");
    assert!(
        order.headers["content-type"].starts_with("application/json"),
        "{order:?}"
    );
    let body: Value = serde_json::from_slice(&order.body).expect("a JSON body");
    assert_eq!(body["total"], 1250);
    assert_eq!(body["currency"], "eur");
    assert_eq!(body["lines"][0]["sku"], "tea");
    assert_eq!(body["tags"][0], "gift");
    assert_eq!(body["meta"]["k"], "v");
    assert_eq!(seen[1].path, "/tenants/acme/orders/ord_0/shipments");
}

/// One order create against `stub` with `flags`; the flows print the
/// outcome.
fn create_order(stub: &StubServer, flags: &[&str]) -> RunOutput {
    let s = jsonapi();
    s.flow(
        "new_create_order_response",
        r#"print(`created ${parsed_data.id}`);"#,
    )
    .flow(
        "new_create_order_error",
        r#"print(`failed ${parsed_error.status} ${parsed_error.retryable} ${parsed_error.problem.title}`);"#,
    );
    s.script(r#"new_order().total(5).currency("usd").create_async();"#);
    let mut cmd = s.command(&stub.base_url());
    cmd.args(flags);
    run_command(cmd)
}

#[test]
fn retries_follow_the_plugins_declared_policy() {
    // 503 and 429 are retryable for this provider (with the same request
    // id); 500 is not, unlike Stripe.
    for (status, retried) in [(503, true), (429, true), (500, false)] {
        let stub = StubServer::start(move |_, n| match n {
            0 => Action::json(status, r#"{"title":"busy"}"#).with_header("retry-after", "1"),
            _ => Action::json(201, r#"{"id":"ord_ok"}"#),
        });
        let out = create_order(&stub, &[]);
        out.assert_success();
        let seen = stub.seen();
        if retried {
            out.assert_printed("created ord_ok");
            assert_eq!(seen.len(), 2, "{status}: {seen:?}");
            assert_eq!(
                seen[0].headers["x-request-id"], seen[1].headers["x-request-id"],
                "{status}: the same idempotency key on the retry"
            );
        } else {
            out.assert_printed("failed 500 false busy");
            assert_eq!(seen.len(), 1, "{status}: not retried: {seen:?}");
        }
    }
}

#[test]
fn transport_failures_reach_the_flow_in_the_plugins_shape() {
    let port = payhost_e2e::free_port(); // nothing listens there
    let s = jsonapi();
    s.flow(
        "new_create_order_error",
        r#"print(`failed ${parsed_error.status} ${parsed_error.retryable} ${parsed_error.problem.title}`);"#,
    );
    s.script(r#"new_order().total(5).currency("usd").create_async();"#);
    let out = s.run(&format!("http://127.0.0.1:{port}"));
    out.assert_success();
    // Connection failures are not retryable for this provider: status 0,
    // the plugin's own shape, not the host's.
    assert!(out.printed("failed 0 false"), "{out}");
    assert!(!out.stdout.contains("payhost_error"), "{out}");
}

#[test]
fn a_secret_echoed_by_the_provider_never_reaches_a_flow() {
    let stub = StubServer::start(|req, _| {
        let token = req.headers.get("x-api-token").cloned().unwrap_or_default();
        Action::json(
            201,
            &serde_json::json!({"id": "ord_1", "echoed": format!("token={token}")}).to_string(),
        )
    });
    let s = jsonapi();
    s.flow(
        "new_create_order_response",
        r#"print(`created ${parsed_data.id} ${parsed_data.echoed}`);"#,
    );
    s.script(r#"new_order().total(5).currency("usd").create_async();"#);
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("created ord_1");
    assert!(!out.stdout.contains(TOKEN), "{out}");
    assert!(!out.stderr.contains(TOKEN), "{out}");
}

#[test]
fn settings_come_from_flags_the_environment_or_a_file() {
    let stub = orders_api();
    // A flag beats the environment.
    let out = create_order(&stub, &["--set", "tenant=from-flag", "--set", "region=us"]);
    out.assert_success();
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/tenants/from-flag/orders");
    assert_eq!(seen[0].headers["x-region"], "us");

    // A settings file, for a tenant no flag or variable gives.
    let s = Scenario::new()
        .with_plugin("json-api")
        .with_env("JSONAPI_TOKEN", TOKEN);
    s.flow(
        "new_create_order_response",
        r#"print(`created ${parsed_data.id}`);"#,
    );
    s.script(r#"new_order().total(5).currency("usd").create_async();"#);
    let file = s.dir().join("settings.json");
    std::fs::write(&file, r#"{"tenant": "from-file"}"#).unwrap();
    let mut cmd = s.command(&stub.base_url());
    cmd.arg("--settings").arg(&file);
    let out = run_command(cmd);
    out.assert_success();
    assert_eq!(stub.seen()[1].path, "/tenants/from-file/orders");
}

#[test]
fn bad_settings_stop_the_start_with_the_setting_named() {
    let stub = orders_api();
    let s = Scenario::new()
        .with_plugin("json-api")
        .with_env("JSONAPI_TOKEN", TOKEN);
    s.script(r#"new_order().total(5).currency("usd").create_async();"#);

    // A required setting nobody gave.
    let out = s.run(&stub.base_url());
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("`tenant`"), "{out}");
    assert!(out.stderr.contains("JSONAPI_TENANT"), "{out}");

    // A secret on the command line is refused, without echoing it.
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--set", "tenant=t", "--set", "token=leaky-value"]);
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("`token` is a secret"), "{out}");
    assert!(!out.stderr.contains("leaky-value"), "{out}");

    // A name the plugin does not declare, with the declared ones listed.
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--set", "tenant=t", "--set", "tennant=t"]);
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("no setting `tennant`"), "{out}");
    assert!(out.stderr.contains("token, tenant, region"), "{out}");

    // A value the plugin's `configure` refuses.
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--set", "tenant=t", "--set", "region=mars"]);
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("refused its settings"), "{out}");
    assert!(out.stderr.contains("region"), "{out}");

    assert_eq!(stub.seen_count(), 0, "nothing was sent");
}

/// Runs `script` (json-api) and returns the output; nothing may be sent.
fn script_error(script: &str) -> RunOutput {
    let stub = orders_api();
    let s = jsonapi();
    s.script(script);
    let out = s.run(&stub.base_url());
    assert!(!out.status.success(), "{out}");
    assert_eq!(stub.seen_count(), 0, "nothing may be sent\n{out}");
    out
}

#[test]
fn script_mistakes_fail_at_the_call_site_before_any_io() {
    // A setter that is no field: the object's fields and the nearest name.
    let out = script_error("let o = new_order();\no.totl(5).create_async();");
    assert!(
        out.stderr
            .contains("order has no field `totl`; did you mean `total`?"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("currency, lines, meta, note, tags, total"),
        "{out}"
    );
    assert!(out.stderr.contains("line 2"), "{out}");

    // A value outside `allowed`, at the setter (line 2), not at create_async.
    let out =
        script_error("let o = new_order().total(5);\no.currency(\"gbp\");\no.create_async();");
    assert!(out.stderr.contains("order.currency"), "{out}");
    assert!(
        out.stderr
            .contains("`gbp` is not one of the allowed values: eur, usd"),
        "{out}"
    );
    assert!(out.stderr.contains("line 2"), "{out}");

    // A value of the wrong kind.
    let out = script_error("new_order().total(\"lots\");");
    assert!(
        out.stderr
            .contains("order.total: expects a non-negative whole number"),
        "{out}"
    );
    let out = script_error("new_order().total(-3);");
    assert!(out.stderr.contains("not the negative -3"), "{out}");

    // A required field left out.
    let out = script_error("new_order().total(5).create_async();");
    assert!(
        out.stderr
            .contains("order.create: the required field `currency` is missing"),
        "{out}"
    );

    // A parent id left out where the path needs one.
    let out = script_error("new_shipment().carrier(\"dhl\").create_async();");
    assert!(out.stderr.contains(".parent("), "{out}");

    // An operation the object does not have.
    let out = script_error("new_shipment().carrier(\"dhl\").refund_async();");
    assert!(
        out.stderr.contains("shipment has no operation `refund`"),
        "{out}"
    );
}

#[test]
fn a_contract_0_1_component_is_refused_with_what_to_rebuild_against() {
    let out = run_command({
        let mut cmd = payhost_e2e::payhost();
        cmd.args(["plugin", "info"])
            .arg(payhost_e2e::plugin("contract-0.1"));
        cmd
    });
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("contract version 0.1.0"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "rebuild the plugin against payhost:plugin@{CONTRACT_VERSION}"
        )),
        "{out}"
    );
}

fn plugin_cmd(args: &[&str], plugin: &str) -> RunOutput {
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("plugin")
        .args(&args[..1])
        .arg(payhost_e2e::plugin(plugin))
        .args(&args[1..])
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    run_command(cmd)
}

#[test]
fn plugin_info_shows_settings_auth_retry_policy_and_required_fields() {
    let out = plugin_cmd(&["info"], "json-api");
    out.assert_success();
    for needle in [
        "token",
        "JSONAPI_TOKEN",
        "SECRET",
        "tenant",
        "header X-Api-Token (from `token`)",
        "statuses [429, 503]",
        "idempotency header X-Request-Id",
        "requires total, currency",
        "needs .parent",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} missing\n{out}");
    }
    let out = plugin_cmd(&["info", "--json"], "json-api");
    out.assert_success();
    let info: Value = serde_json::from_str(&out.stdout).unwrap();
    let token = info["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "token")
        .unwrap();
    assert_eq!(token["secret"], true);
    assert_eq!(info["auth"]["scheme"], "header");
    assert_eq!(info["auth"]["header"], "X-Api-Token");
    assert_eq!(info["retry"]["statuses"][0], "429");
    assert_eq!(info["retry"]["honour_retry_after"], true);
    let create = &info["objects"][0]["operations"][0];
    assert_eq!(create["required"][0], "total");

    // Stripe declares the SDKs' rules and its version setting.
    let out = plugin_cmd(&["info"], "stripe");
    out.assert_success();
    for needle in [
        "secret_key",
        "STRIPE_SECRET_KEY",
        "api_version",
        "409",
        "500-599",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} missing\n{out}");
    }
}

#[test]
fn plugin_check_passes_real_plugins() {
    for plugin in ["stripe", "adyen", "json-api", "example"] {
        let out = plugin_cmd(&["check"], plugin);
        assert!(out.status.success(), "{plugin}\n{out}");
        assert!(out.stdout.contains(" 0 failed"), "{plugin}\n{out}");
        assert!(
            out.stdout.contains("parse-response: a connect failure"),
            "{out}"
        );
    }
}

#[test]
fn plugin_check_fails_hostile_plugins_with_the_reason() {
    for (plugin, reason) in [
        ("sleeper", "tried to block"),
        ("spin", "deadline"),
        ("panic", "crashed"),
        ("balloon", "memory"),
        ("escape", "refused the request"),
        ("future-version", "contract version"),
        ("bad-auth-header", "header"),
        ("info-panic", "crashed"),
        ("info-spin", "deadline in info"),
        ("exiter", "exit(1)"),
        ("huge-body", "build-request"),
        ("other-world", "another world"),
        ("sleep-parse", "tried to block in parse-response"),
        ("snoop", "the payload is not JSON"),
        ("plain-http", "not https"),
        ("contract-0.1", "rebuild the plugin against payhost:plugin@"),
        ("contrary", "declares json-object-is-success"),
    ] {
        let out = plugin_cmd(&["check"], plugin);
        assert!(!out.status.success(), "{plugin} passed\n{out}");
        let failures: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect();
        assert!(
            failures.iter().any(|l| l.contains(reason)),
            "{plugin}: no FAIL line names {reason:?}\n{out}"
        );
    }
}

#[test]
fn stripe_version_and_account_are_settings_the_plugin_sends_as_headers() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`customer ${parsed_data.id}`);"#,
    );
    s.script(r#"new_customer().email("v@example.com").create_async();"#);
    let mut cmd = s.command(&stub.base_url());
    cmd.args([
        "--set",
        "api_version=2024-06-20",
        "--set",
        "account=acct_1Abc",
    ]);
    let out = run_command(cmd);
    out.assert_success();
    out.assert_printed("customer obj_0");
    let seen = stub.seen();
    assert_eq!(seen[0].headers["stripe-version"], "2024-06-20");
    assert_eq!(seen[0].headers["stripe-account"], "acct_1Abc");

    // Without them, neither header is sent.
    let out = s.run(&stub.base_url());
    out.assert_success();
    let seen = stub.seen();
    assert!(
        !seen[1].headers.contains_key("stripe-version"),
        "{:?}",
        seen[1]
    );

    // A value the plugin's `configure` refuses stops the start.
    let mut cmd = s.command(&stub.base_url());
    cmd.args(["--set", "api_version=yesterday"]);
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("api_version"), "{out}");
    assert_eq!(stub.seen_count(), 2, "nothing more was sent");
}
