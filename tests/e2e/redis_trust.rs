//! What a worker runs when someone else writes to Redis: only response,
//! error and event flows of its own worker id, and with a job key only jobs
//! signed with it. Refused jobs are dead-lettered with the reason, visible
//! in `payhost jobs`, and nothing is sent.

use std::time::{Duration, Instant};

use payhost_e2e::RedisServer;
use payhost_e2e::scenario::{Scenario, run_command};
use payhost_e2e::stub::StubServer;
use payhost_e2e::{jobs_report, redis_conn};

const JOB_KEY: &str = "jk_payhost_e2e_sentinel_7731";

/// Waits until `payhost jobs` counts `n` jobs of `worker_id` in `status`.
fn wait_for_count(url: &str, worker_id: &str, status: &str, n: u64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let report = jobs_report(url, worker_id);
        if report["counts"][status].as_u64() == Some(n) {
            return report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {n} {status} jobs: {report}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `last_error` `payhost jobs` lists for `job_id` among the failures in
/// `report`.
fn last_error(report: &serde_json::Value, job_id: &str) -> String {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["job_id"] == job_id)
        .unwrap_or_else(|| panic!("{job_id} not listed: {report}"))["last_error"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Writes a job record and its stream entry the way an attacker with write
/// access to Redis can: a whole, well-formed job whose record names the
/// entry, so only the worker's own checks stand in the way. `seq` makes the
/// entry id unique when several are forged within one millisecond.
fn forge_job(
    conn: &mut redis::Connection,
    (job_id, seq): (&str, u32),
    worker_id: &str,
    job: &str,
    mac: &str,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    // An explicit id, so the record can name the entry before it exists.
    let entry = format!("{}-{seq}", now + 1000);
    let stream = format!("payhost:stream:{worker_id}");
    let mut record = redis::cmd("HSET");
    record.arg(format!("payhost:job:{job_id}")).arg(&[
        ("job_id", job_id),
        ("worker_id", worker_id),
        ("flow", "forged"),
        ("status", "queued"),
        ("attempts", "0"),
        ("entry", &entry),
        ("job", job),
    ]);
    if !mac.is_empty() {
        record.arg("mac").arg(mac);
    }
    record.query::<()>(conn).unwrap();
    redis::cmd("XADD")
        .arg(&stream)
        .arg(&entry)
        .arg("job_id")
        .arg(job_id)
        .query::<String>(conn)
        .unwrap();
}

fn job_json(flow: &str, worker_id: &str, payload: &str) -> String {
    serde_json::json!({
        "flow": flow, "outcome": "response", "worker_id": worker_id,
        "context_id": "ctx", "caller_id": "stripe", "payload": payload,
    })
    .to_string()
}

#[test]
fn an_injected_job_naming_the_entry_script_is_dead_lettered_and_sends_nothing() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "main",
        r#"print("main ran"); new_customer().email("evil@example.com").create_async("worker-1", "ctx");"#,
    );
    let mut worker = s.worker(&redis.url(), "worker-1", &stub.base_url(), &[]);
    let mut conn = redis_conn(&redis.url());
    let main = job_json("main", "worker-1", "{}");
    // The old entry format: the job in the entry itself, no record.
    redis::cmd("XADD")
        .arg(&["payhost:stream:worker-1", "*", "job_id", "evil1", "job"][..])
        .arg(&main)
        .query::<String>(&mut conn)
        .unwrap();
    // A whole forged job, record and entry.
    forge_job(&mut conn, ("evil2", 1), "worker-1", &main, "");

    let report = wait_for_count(&redis.url(), "worker-1", "dead", 2);
    worker.terminate();
    assert_eq!(stub.seen_count(), 0, "a refused job sends nothing");
    assert!(!worker.stdout().contains("main ran"), "{}", worker.stdout());
    assert_eq!(report["dead_letters"], 2, "{report}");
    let reason = |job_id: &str| last_error(&report, job_id);
    assert!(reason("evil1").contains("no job record"), "{report}");
    assert!(
        reason("evil2").contains("\"main\" is not a response, error or event flow"),
        "{report}"
    );
}

#[test]
fn with_a_job_key_a_forged_job_is_refused_and_a_signed_one_runs() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new().with_env("PAYHOST_E2E_JOB_KEY", JOB_KEY);
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(r#"new_customer().email("k@example.com").create_async("keyed", "ctx");"#);
    let key_args = ["--job-key-env", "PAYHOST_E2E_JOB_KEY"];
    let mut worker = s.worker(&redis.url(), "keyed", &stub.base_url(), &key_args);

    // Well-formed jobs for the right worker and flow, without the key.
    let mut conn = redis_conn(&redis.url());
    let forged = job_json(
        "new_create_customer_response",
        "keyed",
        r#"{"id":"cus_forged","object":"customer"}"#,
    );
    forge_job(&mut conn, ("forged1", 1), "keyed", &forged, "");
    forge_job(
        &mut conn,
        ("forged2", 2),
        "keyed",
        &forged,
        &"ab".repeat(32),
    );
    let report = wait_for_count(&redis.url(), "keyed", "dead", 2);
    let reasons: Vec<&str> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["last_error"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("has no MAC")), "{report}");
    assert!(
        reasons.iter().any(|r| r.contains("does not verify")),
        "{report}"
    );

    // A run without the key publishes unsigned jobs: refused too.
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    assert!(!out.status.success(), "{out}");
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (0 done, 1 dead"),
        "{out}"
    );

    // A run with the same key: its job runs to done.
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.args(key_args);
    let out = run_command(run);
    out.assert_success();
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (1 done, 0 dead"),
        "{out}"
    );
    worker.terminate();
    assert!(
        !worker.stdout().contains("cus_forged"),
        "{}",
        worker.stdout()
    );
    assert_eq!(worker.stdout().matches("ran obj_").count(), 1);

    let dump = payhost_e2e::redis_dump(&redis.url());
    assert!(!dump.contains(JOB_KEY), "the job key leaked into Redis");
    assert!(
        !worker.stderr().contains(JOB_KEY),
        "the job key leaked into logs"
    );
}

#[test]
fn a_job_key_variable_that_is_not_set_is_a_clear_error() {
    let redis = RedisServer::start();
    let mut worker = payhost_e2e::payhost();
    worker
        .args(["worker", "--redis", &redis.url(), "--worker-id", "w"])
        .args(["--job-key-env", "PAYHOST_E2E_NO_SUCH_KEY"])
        .arg("--plugin")
        .arg(payhost_e2e::plugin("stripe"));
    let out = run_command(worker);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains("--job-key-env PAYHOST_E2E_NO_SUCH_KEY: the environment variable is not set"),
        "{out}"
    );
}

/// Jobs written before a job held its payload as JSON (`"payload"`, a
/// string) still run, and new ones hold it as JSON (`"data"`), as
/// docs/redis-protocol.md says: a rolling upgrade loses nothing queued.
#[test]
fn a_job_in_the_older_string_form_runs_and_new_jobs_hold_their_payload_as_json() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id} ${response_json.len()}`);"#,
    );
    s.script(r#"new_customer().email("u@example.com").create_async("upgraded", "ctx");"#);
    let mut worker = s.worker(&redis.url(), "upgraded", &stub.base_url(), &[]);

    let mut conn = redis_conn(&redis.url());
    let older = r#"{"id":"cus_older","object":"customer"}"#;
    let job = job_json("new_create_customer_response", "upgraded", older);
    assert!(job.contains(r#""payload":"{\"id\":"#), "{job}");
    forge_job(&mut conn, ("older1", 1), "upgraded", &job, "");
    wait_for_count(&redis.url(), "upgraded", "done", 1);

    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    out.assert_success();
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (1 done, 0 dead"),
        "{out}"
    );
    worker.terminate();
    let stdout = worker.stdout();
    assert!(
        stdout.contains(&format!("ran cus_older {}", older.len())),
        "{stdout}"
    );
    assert!(stdout.contains("ran obj_"), "{stdout}");

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("payhost:job:*")
        .query(&mut conn)
        .unwrap();
    let new_job = keys.iter().find(|k| !k.ends_with("older1")).unwrap();
    let text: String = redis::cmd("HGET")
        .arg(new_job)
        .arg("job")
        .query(&mut conn)
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value.get("payload").is_none(), "{text}");
    assert!(
        value["data"]["id"].as_str().unwrap().starts_with("obj_"),
        "{text}"
    );
    assert!(
        !text.contains(r#"\""#),
        "the payload is not escaped: {text}"
    );
}

/// A job in the layout every publisher writes (`"data"` last), as text.
fn published_json(flow: &str, worker_id: &str, caller_id: &str, data: &str) -> String {
    format!(
        r#"{{"flow":"{flow}","outcome":"response","worker_id":"{worker_id}","context_id":"ctx","caller_id":"{caller_id}","data":{data}}}"#
    )
}

#[test]
fn jobs_in_the_published_layout_pass_the_same_checks_before_their_payload_is_read() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id} ${response_json}`);"#,
    );
    s.flow("main", r#"print("main ran");"#);
    let mut worker = s.worker(&redis.url(), "w1", &stub.base_url(), &[]);
    let mut conn = redis_conn(&redis.url());
    let flow = "new_create_customer_response";
    let forged = [
        ("entry", published_json("main", "w1", "stripe", "{}")),
        (
            "other",
            published_json(flow, "w2", "stripe", r#"{"id":"x"}"#),
        ),
        (
            "adyen",
            published_json(flow, "w1", "adyen", r#"{"id":"x"}"#),
        ),
        ("broken", published_json(flow, "w1", "stripe", r#"{"id":]"#)),
        // Whole jobs: a field after the payload (the one-pass read does not
        // take it, the whole read does), and the plain layout.
        (
            "later",
            published_json(flow, "w1", "stripe", r#"{"id":"cus_later"},"later":1"#),
        ),
        (
            "plain",
            published_json(flow, "w1", "stripe", r#"{"id":"cus_plain"}"#),
        ),
    ];
    for (seq, (job_id, job)) in forged.iter().enumerate() {
        forge_job(&mut conn, (job_id, seq as u32), "w1", job, "");
    }
    wait_for_count(&redis.url(), "w1", "done", 2);
    let report = wait_for_count(&redis.url(), "w1", "dead", 4);
    worker.terminate();
    assert_eq!(stub.seen_count(), 0, "the flows send nothing");
    let stdout = worker.stdout();
    assert!(!stdout.contains("main ran"), "{stdout}");
    assert!(
        stdout.contains(r#"ran cus_plain {"id":"cus_plain"}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"ran cus_later {"id":"cus_later"}"#),
        "{stdout}"
    );
    let reason = |job_id: &str| last_error(&report, job_id);
    assert!(
        reason("entry").contains("\"main\" is not a response"),
        "{report}"
    );
    assert!(reason("other").contains("worker id \"w2\""), "{report}");
    assert!(
        reason("adyen").contains("provider \"adyen\"'s, and this worker has plugins for: stripe"),
        "{report}"
    );
    assert!(reason("broken").contains("unreadable job JSON"), "{report}");
}
