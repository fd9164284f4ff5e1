//! Hostile plugins driven through `payhost run`, as a user would meet them:
//! a plugin that sleeps, loops or panics in any of its functions, or tries
//! to reach files, sockets, the environment or the clocks, fails that one
//! call with an error naming the plugin, the function and what it tried,
//! sends nothing it should not, and never holds a thread.
//!
//! Each test runs the real binary against a `StubServer` that records every
//! request, so "nothing was sent" is checked where it would arrive. The
//! sleeping plugins sleep for 60 s and the runs have `--timeout 40`: a run
//! that waited for the plugin would end at its timeout (or later) with
//! other messages, so the assertions are on messages, not on elapsed time.

use payhost_e2e::scenario::{RunOutput, Scenario};
use payhost_e2e::stub::{Action, StubServer};

/// A stub that answers every request 200 `{"id":"thing_1"}`.
fn ok_stub() -> StubServer {
    StubServer::start(|_, _| Action::json(200, r#"{"id":"thing_1"}"#))
}

/// A scenario on test plugin `name` whose thing flows print what they got.
fn thing_scenario(name: &str) -> Scenario {
    let s = Scenario::new().with_plugin(name).with_timeout(40);
    s.flow(
        "new_create_thing_response",
        r#"print(`thing response: ${parsed_data}`);"#,
    )
    .flow(
        "new_create_thing_error",
        // The plugin's own error shape, or the host's when the plugin
        // itself failed.
        r#"
        if "payhost_error" in parsed_error {
            print(`thing error: ${parsed_error.payhost_error.kind}: ${parsed_error.payhost_error.message}`);
        } else {
            print(`thing error: ${parsed_error.error.message}`);
        }
        "#,
    );
    s
}

/// One `create_async` of a thing named `name` (the secret inline: these
/// plugins use bearer auth under their own name).
fn create_thing_script(name: &str) -> String {
    format!(
        r#"
        print("script started");
        let sent = new_thing().name("{name}").create_async("w", "c", "sk_test_hostile");
        print(`script sent: ${{sent}}`);
        "#
    )
}

#[track_caller]
fn assert_stderr(out: &RunOutput, needle: &str) {
    assert!(out.stderr.contains(needle), "expected {needle:?}\n{out}");
}

#[test]
fn a_plugin_that_sleeps_in_build_request_fails_the_call_and_sends_nothing() {
    let stub = ok_stub();
    let s = thing_scenario("sleeper");
    // The first call is caught, so the script goes on: its thread is free,
    // and the second call (on a fresh instance) fails the same way.
    s.script(
        r#"
        print("script started");
        try {
            new_thing().name("x").create_async("w", "c", "sk_test_hostile");
            print("first call sent");
        } catch (err) {
            print(`first call refused: ${err}`);
        }
        print("script continues");
        new_thing().name("y").create_async("w", "c", "sk_test_hostile");
        print("second call sent");
        "#,
    );
    let out = s.run(&stub.base_url());

    assert!(!out.status.success(), "{out}");
    let refused = out.value_after("first call refused:");
    assert!(
        refused.contains(
            "plugin `sleeper` tried to block in build-request: it called \
             `wasi:clocks/monotonic-clock.subscribe-duration`"
        ),
        "{out}"
    );
    assert!(refused.contains("a plugin may not sleep or wait"), "{out}");
    out.assert_printed("script continues");
    assert!(!out.printed("call sent"), "{out}");
    assert_stderr(&out, "plugin `sleeper` tried to block in build-request");
    assert!(!out.stderr.contains("timed out"), "{out}");
    assert_eq!(stub.seen_count(), 0, "nothing may be sent\n{out}");
}

#[test]
fn a_plugin_that_sleeps_in_parse_response_runs_the_error_flow_at_once() {
    let stub = ok_stub();
    let s = thing_scenario("sleep-parse");
    s.script(
        r#"
        new_thing().name("x").create_async("w", "c", "sk_test_hostile");
        new_thing().name("y").create_async("w", "c", "sk_test_hostile");
        print("script done");
        "#,
    );
    let out = s.run(&stub.base_url());

    out.assert_printed("script done");
    // One error flow per response: the instance that tried to sleep is
    // replaced and the next parse-response fails the same way.
    let errors = out.lines_starting("thing error: ");
    assert_eq!(errors.len(), 2, "{out}");
    for line in errors {
        assert!(
            line.contains(
                "plugin_failed: the plugin could not parse the response: plugin `sleep_parse` \
                 tried to block in parse-response: it called \
                 `wasi:clocks/monotonic-clock.subscribe-duration`"
            ),
            "{line}\n{out}"
        );
    }
    assert!(!out.printed("thing response"), "{out}");
    assert!(!out.stderr.contains("timed out"), "{out}");
    assert_eq!(stub.seen_count(), 2, "each request is sent once\n{out}");
}

#[test]
fn a_plugin_whose_info_never_returns_is_refused_at_load_naming_the_deadline() {
    let stub = ok_stub();
    let s = thing_scenario("info-spin");
    s.script(&create_thing_script("x"));
    let out = s.run(&stub.base_url());

    assert_eq!(out.status.code(), Some(2), "{out}");
    assert_stderr(&out, "cannot load plugin");
    assert_stderr(&out, "info-spin.wasm");
    assert_stderr(&out, "ran past its 250ms deadline in info");
    assert!(!out.printed("script started"), "{out}");
    assert_eq!(stub.seen_count(), 0, "{out}");
}

#[test]
fn a_plugin_whose_info_panics_is_refused_at_load_with_its_stderr_logged() {
    let stub = ok_stub();
    let s = thing_scenario("info-panic");
    s.script(&create_thing_script("x"));
    let out = s.run(&stub.base_url());

    assert_eq!(out.status.code(), Some(2), "{out}");
    assert_stderr(&out, "cannot load plugin");
    assert_stderr(&out, "info-panic.wasm");
    assert_stderr(&out, "crashed in info");
    assert_stderr(&out, "info-panic: about to panic");
    assert!(!out.printed("script started"), "{out}");
    assert_eq!(stub.seen_count(), 0, "{out}");
}

#[test]
fn a_snooping_plugin_sees_no_environment_files_sockets_or_time() {
    let stub = ok_stub();
    let s = thing_scenario("snoop").with_env("SNOOP_CANARY", "visible-to-payhost");
    // The port to try is the stub's own: a connection would show up there
    // as a `GET /snooped` request.
    s.script(&create_thing_script(&stub.port().to_string()));
    let out = s.run(&stub.base_url());

    out.assert_success();
    out.assert_printed("thing response");
    let seen = stub.seen();
    assert_eq!(seen.len(), 1, "only the plugin's request arrives: {seen:?}");
    assert_eq!(seen[0].path, "/v1/things");
    let report = String::from_utf8_lossy(&seen[0].body).into_owned();
    let line = |what: &str| -> String {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{what}: ")))
            .unwrap_or_else(|| panic!("no {what} line in the report:\n{report}"))
            .to_string()
    };
    assert_eq!(line("env"), "0 []", "{report}");
    assert!(!report.contains("SNOOP_CANARY"), "{report}");
    assert!(
        !report.contains(&*s.dir().to_string_lossy()),
        "the host's directories stay hidden:\n{report}"
    );
    assert!(line("passwd").starts_with("refused"), "{report}");
    assert!(line("root").starts_with("refused"), "{report}");
    assert!(line("tcp").starts_with("refused"), "{report}");
    assert_eq!(line("wall"), "0.000000000", "{report}");
    assert!(line("monotonic").starts_with("0 ns over "), "{report}");
}

#[test]
fn a_plugin_that_escapes_the_base_url_is_refused_by_payhost_run() {
    let stub = ok_stub();
    let s = thing_scenario("escape");
    // `name` is used as the path; an empty name means the default
    // `https://evil.example.com/steal`.
    s.script(
        r#"
        for path in ["", "//evil.example.com/x", "/../../x", "/v1/x?y=1", "http://127.0.0.1:1/",
                     "/v1/%2e%2e/x", "/v1/a%2f..%2fb", "/v1/%252e%252e/x", "/v1/%%32%65%%32%65/x",
                     "/v1/..;/x", "/v1/a%5c..%5cx"] {
            let thing = if path == "" { new_thing() } else { new_thing().name(path) };
            try {
                thing.create_async("w", "c", "sk_test_hostile");
                print(`sent: ${path}`);
            } catch (err) {
                print(`refused: ${path}: ${err}`);
            }
        }
        "#,
    );
    let out = s.run(&stub.base_url());

    assert!(!out.printed("sent:"), "{out}");
    let refused = out.lines_starting("refused: ");
    assert_eq!(refused.len(), 11, "{out}");
    for line in refused {
        assert!(
            line.contains("refused the request built by plugin `escape`"),
            "{line}\n{out}"
        );
    }
    assert!(out.printed("https://evil.example.com/steal"), "{out}");
    assert_eq!(stub.seen_count(), 0, "{out}");
}

#[test]
fn a_plugin_that_builds_a_huge_body_is_refused_by_payhost_run() {
    let stub = ok_stub();
    let s = thing_scenario("huge-body");
    s.script(&create_thing_script("x"));
    // A generous deadline: filling 100 MiB may take a while on a loaded
    // machine, and this test is about the body cap.
    let mut command = s.command(&stub.base_url());
    command.args(["--plugin-timeout-ms", "10000"]);
    let out = payhost_e2e::scenario::run_command(command);

    assert!(!out.status.success(), "{out}");
    assert!(!out.printed("script sent"), "{out}");
    assert_stderr(&out, "refused the request built by plugin `huge_body`");
    assert_stderr(&out, "104857600 bytes; the limit is 1048576 bytes");
    assert_eq!(stub.seen_count(), 0, "{out}");
}

/// An auth scheme naming a header that cannot exist would have made the
/// executor drop the header and send requests unauthenticated; the plugin is
/// refused at load instead, by `plugin info` and `run` alike.
#[test]
fn auth_header_that_cannot_exist_is_refused_at_load() {
    let plugin = payhost_e2e::plugin("bad-auth-header");
    let info = payhost_e2e::scenario::run_command({
        let mut cmd = payhost_e2e::payhost();
        cmd.args(["plugin", "info"]).arg(&plugin);
        cmd
    });
    assert!(!info.status.success(), "{info}");
    assert!(
        info.stderr.contains("bad-auth-header.wasm")
            && info.stderr.contains("plugin `bad_auth_header`")
            && info.stderr.contains("`X API Key`")
            && info.stderr.contains("not a valid header name"),
        "the refusal names the file, the plugin and the header\n{info}"
    );
}

/// A plugin whose own default base URL is plain `http` off loopback would
/// get the secret in clear at a server it chose; without `--base-url`,
/// `payhost run` refuses to start and says how to choose the destination.
#[test]
fn a_plain_http_default_base_url_needs_the_operators_base_url() {
    let s = thing_scenario("plain-http");
    s.script(&create_thing_script("x"));
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("run")
        .arg(s.dir().join("main.rhai"))
        .arg("--plugin")
        .arg(payhost_e2e::plugin("plain-http"))
        .arg("--flows")
        .arg(s.flows_dir())
        .env("PLAIN_HTTP_SECRET_KEY", "sk_test_plain")
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    let out = payhost_e2e::scenario::run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("http://collector.example.com")
            && out.stderr.contains("not https")
            && out.stderr.contains("--base-url"),
        "{out}"
    );
    assert!(!out.stderr.contains("sk_test_plain"), "{out}");
    assert!(!out.printed("script sent"), "{out}");
}

/// `contrary` declares `json-object-is-success` and calls every outcome it
/// is given an error. Through the binary, each 2xx JSON object runs the
/// response flow without reaching it (its stderr line is missing), and every
/// other outcome reaches it and runs its error flow: a 2xx that is not one
/// JSON object, one the host's parser refuses (`1e400`), and an error
/// status. The rule moves only what it says.
#[test]
fn a_declared_response_rule_classifies_only_2xx_json_objects() {
    let cases: [(&str, u16, &str); 7] = [
        ("plain", 200, r#"{"id":"thing_1"}"#),
        (
            "spaced",
            201,
            "\r\n {\"id\": \"thing_2\", \"n\": [1, {\"m\": null}]}\n",
        ),
        ("array", 200, r#"[{"id":"thing_3"}]"#),
        ("broken", 200, r#"{"id":"thing_4""#),
        ("huge_number", 200, r#"{"id":"thing_5","n":1e400}"#),
        ("not_found", 404, r#"{"id":"thing_6"}"#),
        ("empty", 200, ""),
    ];
    let stub = StubServer::start(move |seen, _| {
        let body = String::from_utf8_lossy(&seen.body);
        let (_, status, answer) = cases
            .iter()
            .find(|(case, _, _)| body == *case)
            .expect("a case the script sends");
        Action::json(*status, answer)
    });
    let s = thing_scenario("contrary");
    let script: String = cases
        .iter()
        .map(|(case, _, _)| {
            format!(
                "new_thing().name(\"{case}\").create_async(\"w\", \"c\", \"sk_test_hostile\");\n"
            )
        })
        .collect();
    s.script(&script);
    let out = s.run(&stub.base_url());

    assert!(out.status.success(), "{out}");
    assert_eq!(stub.seen_count(), cases.len(), "{out}");
    out.assert_printed(r#"thing response: #{"id": "thing_1"}"#);
    out.assert_printed(r#"thing response: #{"id": "thing_2", "n": [1, #{"m": ()}]}"#);
    assert_eq!(
        out.stdout.matches("thing response:").count(),
        2,
        "only the two 2xx JSON objects are the host's to classify\n{out}"
    );
    // The other five reached the plugin, which made each an error.
    assert_eq!(
        out.stdout
            .matches("thing error: contrary: status 200")
            .count(),
        4,
        "{out}"
    );
    out.assert_printed("thing error: contrary: status 404");
    assert_eq!(
        out.stderr.matches("contrary-response: status 200").count(),
        4,
        "{out}"
    );
    assert_eq!(
        out.stderr.matches("contrary-response: status 404").count(),
        1,
        "{out}"
    );
    assert!(
        !out.stderr.contains("contrary-response: status 201"),
        "{out}"
    );
}
