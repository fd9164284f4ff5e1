//! The plugin kit, proven: `plugins/example` is what `cargo xtask new-plugin
//! example` makes (an xtask test keeps the two identical), and here it is
//! built like every plugin, passes `payhost plugin check`, and runs a script
//! end to end against a loopback server through the same `payhost` binary.

use payhost_e2e::scenario::{Scenario, run_command};
use payhost_e2e::stub::{Action, StubServer};
use serde_json::Value;

#[test]
fn a_plugin_made_from_the_template_passes_plugin_check() {
    let mut cmd = payhost_e2e::payhost();
    cmd.args(["plugin", "check"])
        .arg(payhost_e2e::plugin("example"))
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    let out = run_command(cmd);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("payment.create builds"), "{out}");
    assert!(out.stdout.contains(" 0 failed"), "{out}");
}

#[test]
fn a_plugin_made_from_the_template_runs_a_script_end_to_end() {
    let stub = StubServer::start(|req, _| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        Action::json(
            201,
            &serde_json::json!({"id": "pay_1", "amount": body["amount"]}).to_string(),
        )
    });
    let s = Scenario::new()
        .with_plugin("example")
        .with_env("EXAMPLE_API_KEY", "ex_key_4242");
    s.flow(
        "new_create_payment_response",
        r#"print(`paid ${parsed_data.id} ${parsed_data.amount} via ${CALLER_ID}`);"#,
    );
    s.script(r#"new_payment().amount(700).currency("eur").metadata("k", "v").create_async();"#);
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("paid pay_1 700 via example");
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/payments");
    assert_eq!(seen[0].headers["authorization"], "Bearer ex_key_4242");
    assert_eq!(seen[0].headers["api-version"], "2024-06-01");
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["currency"], "eur");
    assert_eq!(body["metadata"]["k"], "v");
}
