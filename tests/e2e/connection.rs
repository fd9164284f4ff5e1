//! No server at all: the error flow runs with `api_connection_error`, after
//! the SDK-standard retries.

use payhost_e2e::scenario::Scenario;

#[test]
fn closed_port_runs_the_error_flow_with_api_connection_error() {
    let port = payhost_e2e::free_port();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_error",
        r#"print(`error ${parsed_error.http_status} ${parsed_error.error.type}: ${parsed_error.error.message}`);"#,
    );
    s.flow(
        "new_create_customer_response",
        r#"print("unexpected success");"#,
    );
    s.script(r#"new_customer().email("a@example.com").create_async();"#);
    let out = s.run(&format!("http://127.0.0.1:{port}"));
    out.assert_success();
    out.assert_printed("error 0 api_connection_error: ");
    assert!(out.summary().contains("1 requests (2 retries)"), "{out}");
}
