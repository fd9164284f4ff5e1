//! How payhost connects: to no server at all (the error flow runs with
//! `api_connection_error`, after the SDK-standard retries), and over HTTP/2
//! to a server that speaks only that (Node's h2c server), including one that
//! turns requests away unprocessed as HTTP/2 allows.

use payhost_e2e::H2cServer;
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

/// `intents` payment intents (amounts 1000, 1001, ... in eur) over
/// `--http-version 2` to `server`, with `flags`; the run's output. Each
/// flow prints `done ID AMOUNT CURRENCY` or `error STATUS TYPE`.
fn intents_over_http2(
    server: &H2cServer,
    intents: usize,
    flags: &[&str],
) -> payhost_e2e::scenario::RunOutput {
    let s = Scenario::new();
    s.flow(
        "new_create_payment_intent_response",
        r#"print(`done ${parsed_data.id} ${parsed_data.amount} ${parsed_data.currency}`);"#,
    );
    s.flow(
        "new_create_payment_intent_error",
        r#"print(`error ${parsed_error.http_status} ${parsed_error.error.type}`);"#,
    );
    s.script(&format!(
        r#"for i in 0..{intents} {{ new_payment_intent().amount(1000 + i).currency("eur").create_async(); }}"#
    ));
    let mut cmd = s.command(&server.base_url());
    cmd.args(["--http-version", "2"]).args(flags);
    // The executor says at debug level why it retries.
    cmd.env("RUST_LOG", "payhost::http=debug");
    let out = payhost_e2e::scenario::run_command(cmd);
    out.assert_success();
    out
}

/// `--http-version 2` on an `http://` base URL speaks HTTP/2 from the first
/// byte (h2c), and every request in flight is a stream of one connection:
/// the server holds 20 until all 20 have arrived, and logs which connection
/// each came on.
#[test]
fn http_version_2_sends_every_request_in_flight_on_one_connection() {
    const N: usize = 20;
    let server = H2cServer::start(N);
    let out = intents_over_http2(&server, N, &["--max-in-flight", &N.to_string()]);
    let mut done = out.lines_starting("done ");
    done.sort();
    assert_eq!(done.len(), N, "{out}");
    for i in 0..N {
        assert!(
            done.iter()
                .any(|l| l.ends_with(&format!(" {} eur", 1000 + i))),
            "no flow for amount {}: {out}",
            1000 + i
        );
    }
    let requests = server.requests();
    assert_eq!(requests.len(), N, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.session == 1 && r.path == "/v1/payment_intents"),
        "every request on the first connection: {requests:?}"
    );
    assert_eq!(
        requests.iter().map(|r| r.open).max(),
        Some(N as u32),
        "all {N} in flight at once: {requests:?}"
    );
}

/// The failure kinds the executor retried after, as its debug log names them.
fn retried_after(out: &payhost_e2e::scenario::RunOutput) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| l.contains("retrying after"))
        .filter_map(|l| l.split("(Failed(").nth(1))
        .map(|rest| rest.split(')').next().unwrap_or(rest).to_string())
        .collect()
}

/// A stream the server refuses (RST_STREAM with REFUSED_STREAM: nothing was
/// processed) is retried by the plugin's policy, like a connection that
/// could not be made, and the retry is counted: no layer under the policy
/// resends it unseen.
#[test]
fn an_http2_stream_the_server_refuses_is_retried_by_the_policy_and_counted() {
    let server = H2cServer::turning_away(1, 0);
    let out = intents_over_http2(&server, 1, &[]);
    assert_eq!(
        out.lines_starting("done "),
        ["done pi_h2c_1 1000 eur"],
        "{out}"
    );
    assert!(out.summary().contains("1 requests (1 retries)"), "{out}");
    assert_eq!(server.turned_away(), ["refused session=1"]);
    // As a connection that could not be made: a policy that retries only
    // those retries this too.
    assert_eq!(retried_after(&out), ["FailureKind::Connect"], "{out}");
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    // Refused every time: the retries run out and the error flow says the
    // connection failed, as it does for a closed port.
    let server = H2cServer::turning_away(3, 0);
    let out = intents_over_http2(&server, 1, &[]);
    assert_eq!(
        out.lines_starting("error "),
        ["error 0 api_connection_error"],
        "{out}"
    );
    assert!(out.summary().contains("1 requests (2 retries)"), "{out}");
    assert_eq!(server.turned_away().len(), 3);
}

/// A connection the server shuts down gracefully with a request of ours
/// not taken (GOAWAY, NO_ERROR, naming only the first request processed) is
/// the same: that request goes out again on a new connection, counted.
#[test]
fn an_http2_go_away_leaving_a_stream_unprocessed_is_retried_on_a_new_connection() {
    let server = H2cServer::turning_away(0, 1);
    let out = intents_over_http2(&server, 2, &[]);
    // Which intent went out first, and so was turned away, is up to the
    // two I/O threads; both end in their response flow either way.
    let mut amounts: Vec<&str> = out
        .lines_starting("done ")
        .iter()
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    amounts.sort();
    assert_eq!(amounts, ["1000", "1001"], "{out}");
    assert!(out.summary().contains("2 requests (1 retries)"), "{out}");
    assert_eq!(server.turned_away(), ["go-away session=1"]);
    assert_eq!(retried_after(&out), ["FailureKind::Connect"], "{out}");
    let sessions: Vec<u32> = server.requests().iter().map(|r| r.session).collect();
    assert_eq!(sessions, [1, 2], "{:?}", server.requests());
}

/// A version the flag does not know is refused before anything runs, with
/// the flag and the accepted values named.
#[test]
fn an_unknown_http_version_is_refused_naming_the_flag() {
    let s = Scenario::new();
    s.script(r#"print("ran");"#);
    let mut cmd = s.command("http://127.0.0.1:9");
    cmd.args(["--http-version", "3"]);
    let out = payhost_e2e::scenario::run_command(cmd);
    assert!(!out.printed("ran"), "{out}");
    assert!(
        out.stderr.contains("--http-version") && out.stderr.contains("give auto, 1.1 or 2"),
        "{out}"
    );
}
