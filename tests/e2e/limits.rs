//! Script limits: a flow that loops forever, builds a string without end or
//! recurses without end fails alone, with an error that names the limit it
//! hit; the other flows of the same run complete, the summary counts the
//! failures and the exit code is non-zero. A main script that never ends is
//! stopped the same way. A flow that grows an array without end must be
//! stopped as promptly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use payhost_e2e::scenario::{RunOutput, Scenario};
use payhost_e2e::stub::StubServer;

/// The log line payhost writes when `flow` fails with `error` (the flow's
/// path, the limit's message and the place in the flow).
fn flow_failed(s: &Scenario, flow: &str, error: &str) -> String {
    let path = s.flows_dir().join(format!("{flow}.rhai"));
    format!("flow `{flow}` failed: {}: {error}", path.display())
}

#[test]
fn runaway_flows_fail_alone_with_the_limit_named_and_the_others_complete() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        "print(\"endless loop starts\");\nloop {}\n",
    )
    .flow(
        "new_create_product_response",
        "let s = \"x\";\nfor i in 0..40 { s += s; }\nprint(`never: ${s.len()}`);\n",
    )
    .flow(
        "new_create_price_response",
        "fn f(n) { f(n + 1) }\nf(0);\nprint(\"never\");\n",
    )
    .flow(
        "new_retrieve_customer_response",
        r#"print(`well-behaved flow got ${parsed_data.id}`);"#,
    );
    s.script(
        r#"
        new_customer().email("l@example.com").create_async();
        new_product().name("p").create_async();
        new_price().currency("usd").unit_amount(1).product("prod_1").create_async();
        new_customer().id("cus_1").retrieve_async();
        print("script done");
        "#,
    );
    let started = Instant::now();
    let out = s.run(&stub.base_url());
    let took = started.elapsed();
    println!("four flows, three runaway: {took:?}");

    assert!(!out.status.success(), "{out}");
    assert_eq!(out.status.code(), Some(1), "{out}");
    let mut stdout: Vec<&str> = out.stdout.lines().collect();
    stdout.sort_unstable();
    assert!(
        stdout.len() == 3 && stdout[2].starts_with("well-behaved flow got obj_"),
        "{out}"
    );
    assert_eq!(stdout[..2], ["endless loop starts", "script done"], "{out}");
    for (flow, error) in [
        (
            "new_create_customer_response",
            "Too many operations (line 2, position 6)",
        ),
        (
            "new_create_product_response",
            "Length of string too large (line 2, position 20)",
        ),
        (
            "new_create_price_response",
            "Stack overflow (line 2, position 1)",
        ),
    ] {
        let line = flow_failed(&s, flow, error);
        assert!(out.stderr.contains(&line), "expected {line:?}\n{out}");
    }
    assert_eq!(
        out.summary(),
        "payhost: 4 requests (0 retries), 4 flows run, 0 flows missing, 3 failures",
        "{out}"
    );
}

#[test]
fn endless_main_script_is_stopped_with_a_clear_error_and_its_request_still_completes() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`customer ${parsed_data.id}`);"#,
    );
    let script = s.script(
        "new_customer().email(\"m@example.com\").create_async();\nprint(\"looping\");\nloop {}\n",
    );
    let started = Instant::now();
    let out = s.run(&stub.base_url());
    let took = started.elapsed();
    println!("endless main script stopped after {took:?}");

    assert_eq!(out.status.code(), Some(1), "{out}");
    let mut stdout: Vec<&str> = out.stdout.lines().collect();
    stdout.sort_unstable();
    assert_eq!(stdout, ["customer obj_0", "looping"], "{out}");
    let error = format!(
        "payhost: {}: Too many operations (line 3, position 6)",
        script.display()
    );
    assert!(
        out.stderr.lines().any(|l| l == error),
        "expected {error:?}\n{out}"
    );
    assert_eq!(
        out.summary(),
        "payhost: 1 requests (0 retries), 1 flows run, 0 flows missing, 1 failures",
        "{out}"
    );
}

/// Runs `cmd` for at most `limit`; `None` (after killing it) if it was
/// still running then.
fn run_for_at_most(mut cmd: std::process::Command, limit: Duration) -> Option<RunOutput> {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("payhost starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Some(RunOutput {
        status,
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    })
}

/// Rhai checks the size of an array after every call that may change it
/// (`push`), by walking the whole array, and that walk is not counted as an
/// operation. With payhost's `max_array_size` of 1,000,000 a flow that
/// pushes forever does about 5 * 10^11 steps before the limit stops it
/// (measured here: 320,000 pushes take 39 s of CPU, and the cost grows with
/// the square, so about 6 minutes), holding a worker thread all the while.
/// The other runaway flows above are stopped in about a second; this one
/// must be stopped in comparable time.
#[test]
fn flow_growing_an_array_without_end_is_stopped_promptly() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        "let a = [];\nloop { a.push(1); }\n",
    );
    s.script(r#"new_customer().email("a@example.com").create_async();"#);
    let limit = Duration::from_secs(20);
    let started = Instant::now();
    let Some(out) = run_for_at_most(s.command(&stub.base_url()), limit) else {
        panic!(
            "HOST BUG: a flow pushing to an array forever was still running after {limit:?}; \
             Rhai's per-push array size check is O(n) and uncounted, so with \
             max_array_size 1,000,000 it takes about 6 minutes. Fix in host/src/flow.rs: a \
             smaller max_array_size, and a wall-clock deadline per script in \
             `script_engine` (Engine::on_progress)"
        );
    };
    println!("array flow stopped after {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "{out}");
    let path = s.flows_dir().join("new_create_customer_response.rhai");
    let expected = format!("{}: ", path.display());
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(&expected)
                && l.contains("flow `new_create_customer_response` failed")),
        "the failure names the flow and the limit\n{out}"
    );
    assert_eq!(
        out.summary(),
        "payhost: 1 requests (0 retries), 1 flows run, 0 flows missing, 1 failures",
        "{out}"
    );
}

/// A script that nests a map 200,000 levels deep used to abort the whole
/// process ("stack overflow", exit 134) and every request in flight with it.
/// Now the script fails with the limit named; the request it made before
/// still ends in its flow.
#[test]
fn deeply_nested_script_data_fails_the_script_not_the_process() {
    let stub = StubServer::start(|_, _| {
        payhost_e2e::stub::Action::Delay(
            Duration::from_millis(300),
            Box::new(payhost_e2e::stub::Action::json(
                200,
                r#"{"id":"cus_slow","object":"customer"}"#,
            )),
        )
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`in-flight request finished: ${parsed_data.id}`);"#,
    );
    s.script(
        r#"
        new_customer().email("n@example.com").create_async();
        let m = #{};
        for i in 0..200000 { m = #{a: m}; }
        print("never");
        "#,
    );
    let out = s.run(&stub.base_url());
    assert_eq!(
        out.status.code(),
        Some(1),
        "a script failure, not a crash\n{out}"
    );
    out.assert_printed("in-flight request finished: cus_slow");
    assert!(!out.printed("never"), "{out}");
    assert!(
        out.stderr.contains("main.rhai") && out.stderr.contains("line 4"),
        "the error names the script and the line\n{out}"
    );
}

/// Nested data that a script can hold is still bounded where it crosses into
/// the plugin: the call fails at its line, naming the limit and the path,
/// and nothing is sent.
#[test]
fn parameters_nested_past_the_limit_are_refused_at_the_call() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.script(
        r#"
        let m = "leaf";
        for i in 0..1000 { m = #{a: m}; }
        new_customer().set("deep", m).create_async();
        "#,
    );
    let out = s.run(&stub.base_url());
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("deeper than 32 levels")
            && out.stderr.contains("deep[a][a]")
            && out.stderr.contains("line 4"),
        "{out}"
    );
    assert_eq!(stub.seen_count(), 0, "nothing was sent");
}
