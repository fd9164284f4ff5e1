//! Flow jobs through a real redis-server, run by `payhost worker` processes:
//! shared work, killed workers, dead letters, a restarted server, and no
//! secret anywhere in Redis.

use std::collections::HashSet;
use std::time::Duration;

use payhost_e2e::scenario::{Scenario, TEST_SECRET, run_command};
use payhost_e2e::stub::{Action, StubServer};
use payhost_e2e::{H2cServer, RedisServer};
use payhost_e2e::{jobs_report, redis_conn};

/// Puts a string at `key`, where payhost keeps another type.
fn plant_string(conn: &mut redis::Connection, key: &str) {
    redis::cmd("SET")
        .arg(key)
        .arg("x")
        .query::<()>(conn)
        .unwrap();
}

/// Entries in worker id `worker_id`'s stream.
fn stream_len(conn: &mut redis::Connection, worker_id: &str) -> usize {
    redis::cmd("XLEN")
        .arg(format!("payhost:stream:{worker_id}"))
        .query(conn)
        .unwrap()
}

/// Ids printed as `ran <id>` by a worker's flows.
fn ran_ids(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("ran "))
        .map(str::to_string)
        .collect()
}

#[test]
fn two_workers_share_1000_jobs_none_lost_none_run_twice() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(
        r#"
        for i in 0..1000 {
            new_customer().email(`c${i}@example.com`).create_async("pool", `ctx-${i}`);
        }
        "#,
    );
    let mut a = s.worker(
        &redis.url(),
        "pool",
        &stub.base_url(),
        &["--flow-threads", "8"],
    );
    let mut b = s.worker(
        &redis.url(),
        "pool",
        &stub.base_url(),
        &["--flow-threads", "8"],
    );
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    out.assert_success();
    assert!(
        out.summary()
            .contains("1000 flow jobs via Redis (1000 done, 0 dead, 0 redelivered)"),
        "{out}"
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let (ran_a, ran_b) = (ran_ids(&a.stdout()), ran_ids(&b.stdout()));
    assert!(
        !ran_a.is_empty() && !ran_b.is_empty(),
        "both workers took work: {} / {}",
        ran_a.len(),
        ran_b.len()
    );
    let all: Vec<&String> = ran_a.iter().chain(&ran_b).collect();
    let unique: HashSet<&&String> = all.iter().collect();
    assert_eq!(all.len(), 1000, "every job ran exactly once");
    assert_eq!(unique.len(), 1000, "no job ran twice");
}

/// A job whose flow has run waits for its requests without holding one of
/// the worker's places: a worker with one flow thread (two places) keeps
/// the requests of all 20 jobs' flows in flight at once. The h2c server
/// answers none of them until all 20 are open, so a worker that held each
/// job's place until its request was answered would never see an answer
/// (it had 2 in flight, and the run timed out).
#[test]
fn jobs_waiting_on_their_requests_leave_their_places_to_the_next() {
    const N: usize = 20;
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let provider = H2cServer::start(N);
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"new_payment_intent().amount(1000).currency("eur").create_async("patient", "ctx");"#,
    )
    .flow(
        "new_create_payment_intent_response",
        r#"print(`paid ${parsed_data.id}`);"#,
    );
    s.script(&format!(
        r#"for i in 0..{N} {{
            new_customer().email(`p${{i}}@example.com`).create_async("patient", `ctx-${{i}}`);
        }}"#
    ));
    let mut worker = s.worker(
        &redis.url(),
        "patient",
        &provider.base_url(),
        &["--flow-threads", "1", "--http-version", "2"],
    );
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.args(["--timeout", "30"]);
    let out = run_command(run);
    out.assert_success();
    assert!(
        out.summary().contains(&format!(
            "{} flow jobs via Redis ({} done, 0 dead, 0 redelivered)",
            2 * N,
            2 * N
        )),
        "{out}"
    );
    assert!(worker.terminate().success());
    let paid = worker
        .stdout()
        .lines()
        .filter(|l| l.starts_with("paid pi_h2c_"))
        .count();
    assert_eq!(paid, N, "{}", worker.stdout());
    let requests = provider.requests();
    assert_eq!(requests.len(), N, "{requests:?}");
    assert_eq!(
        requests.iter().map(|r| r.open).max(),
        Some(N as u32),
        "all {N} of the flows' requests in flight at once: {requests:?}"
    );
}

/// A stub whose `cus_slow` answer takes `delay`, and a scenario whose
/// customer flow prints `started <id>` and then retrieves `cus_slow`, whose
/// flow prints `finished cus_slow`: a job that stays held for `delay`.
fn slow_follow_up(delay: Duration) -> (StubServer, Scenario) {
    let stub = StubServer::start(move |req, n| {
        if req.path.contains("/v1/customers/cus_slow") {
            Action::Delay(
                delay,
                Box::new(Action::json(
                    200,
                    r#"{"id":"cus_slow","object":"customer"}"#,
                )),
            )
        } else {
            Action::json(200, &format!(r#"{{"id":"cus_{n}","object":"customer"}}"#))
        }
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"
        print(`started ${parsed_data.id}`);
        new_customer().id("cus_slow").retrieve_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_retrieve_customer_response",
        r#"print(`finished ${parsed_data.id}`);"#,
    );
    (stub, s)
}

#[test]
fn worker_killed_mid_flow_its_job_runs_again_in_another_worker() {
    let redis = RedisServer::start();
    // The flow's own request is slow, so the job is still held (not
    // acknowledged) when its worker is killed.
    let (stub, s) = slow_follow_up(Duration::from_secs(2));
    s.script(r#"new_customer().email("k@example.com").create_async("fragile", "ctx");"#);
    let lease = ["--lease", "1"];
    let mut first = s.worker(&redis.url(), "fragile", &stub.base_url(), &lease);
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.args(["--lease", "1"]);
    let run = std::thread::spawn(move || run_command(run));
    first.wait_for_stdout("started cus_", Duration::from_secs(30));
    first.kill();
    assert!(!first.stdout().contains("finished"), "killed mid-flow");

    let mut second = s.worker(&redis.url(), "fragile", &stub.base_url(), &lease);
    let out = run.join().unwrap();
    out.assert_success();
    second.wait_for_stdout("finished cus_slow", Duration::from_secs(30));
    assert!(
        second.stdout().contains("started cus_"),
        "{}",
        second.stdout()
    );
    assert!(
        second.stderr().contains("claimed job entry"),
        "{}",
        second.stderr()
    );
    assert!(
        out.summary()
            .contains("2 flow jobs via Redis (2 done, 0 dead, 1 redelivered)"),
        "{out}"
    );
    second.terminate();
}

#[test]
fn always_failing_flow_ends_in_the_dead_letter_stream() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_product_response",
        r#"print("attempt"); throw "boom: this flow always fails";"#,
    );
    s.script(r#"new_product().name("Doomed").create_async("doomed", "ctx");"#);
    let mut worker = s.worker(
        &redis.url(),
        "doomed",
        &stub.base_url(),
        &["--max-deliveries", "3"],
    );
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    assert!(!out.status.success(), "a dead job fails the run\n{out}");
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (0 done, 1 dead, 2 redelivered)"),
        "{out}"
    );
    worker.terminate();
    assert_eq!(worker.stdout().matches("attempt").count(), 3);

    let mut jobs = payhost_e2e::payhost();
    jobs.args(["jobs", "--redis", &redis.url(), "--worker-id", "doomed"]);
    let table = run_command(jobs);
    table.assert_success();
    table.assert_printed("dead 1");
    table.assert_printed("dead-letter stream 1");
    table.assert_printed("boom: this flow always fails");

    let mut jobs = payhost_e2e::payhost();
    jobs.args(["jobs", "--redis", &redis.url(), "--json"]);
    let json = run_command(jobs);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let doomed = &report[0];
    assert_eq!(doomed["worker_id"], "doomed");
    assert_eq!(doomed["counts"]["dead"], 1);
    assert_eq!(doomed["dead_letters"], 1);
    assert_eq!(doomed["failures"][0]["attempts"], 3);
    assert_eq!(doomed["failures"][0]["status"], "dead");
}

/// 300 jobs through a redis-server with `appendfsync always`, which
/// `disrupt` stops somehow once a worker has run 20 of them: the run and the
/// worker must reconnect and finish every job.
fn survive_a_redis_outage_mid_run(worker_id: &str, disrupt: impl FnOnce(&mut RedisServer)) {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let stub = StubServer::start(|_, n| {
        Action::Delay(
            Duration::from_millis(5),
            Box::new(Action::json(
                200,
                &format!(r#"{{"id":"obj_{n}","object":"customer"}}"#),
            )),
        )
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(&format!(
        r#"
        for i in 0..300 {{
            new_customer().email(`r${{i}}@example.com`).create_async("{worker_id}", `ctx-${{i}}`);
        }}
        "#
    ));
    let mut worker = s.worker(
        &redis.url(),
        worker_id,
        &stub.base_url(),
        &["--flow-threads", "2"],
    );
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.args(["--max-in-flight", "4"]);
    let run = std::thread::spawn(move || run_command(run));
    worker.wait_for_stdout("ran obj_20", Duration::from_secs(60));
    disrupt(&mut redis);
    assert!(
        ran_ids(&worker.stdout()).len() < 300,
        "the outage came after the run: it proves nothing"
    );
    let out = run.join().unwrap();
    out.assert_success();
    assert!(
        out.summary()
            .contains("300 flow jobs via Redis (300 done, 0 dead"),
        "{out}"
    );
    worker.terminate();
    let ran: HashSet<String> = ran_ids(&worker.stdout()).into_iter().collect();
    assert_eq!(ran.len(), 300, "every job ran at least once");
}

#[test]
fn redis_restarted_mid_run_workers_and_run_reconnect_and_lose_nothing() {
    survive_a_redis_outage_mid_run("steady", RedisServer::restart);
}

/// redis-server SIGKILLed mid-run (not a clean SHUTDOWN) with
/// `appendfsync always`: every write payhost saw acknowledged is in the AOF,
/// so after the restart the run and its worker finish every job.
#[test]
fn redis_killed_mid_run_with_fsync_always_loses_nothing() {
    survive_a_redis_outage_mid_run("crash", RedisServer::crash_and_restart);
}

#[test]
fn unreachable_redis_is_a_clear_error_naming_the_url() {
    let port = payhost_e2e::free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let s = Scenario::new();
    s.script(r#"print("never");"#);
    let out = run_command(s.command_redis("http://127.0.0.1:9", &url));
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains(&format!("cannot reach Redis at {url}")),
        "{out}"
    );

    let mut worker = payhost_e2e::payhost();
    worker
        .args(["worker", "--redis", &url, "--worker-id", "w"])
        .arg("--plugin")
        .arg(payhost_e2e::plugin("stripe"));
    let out = run_command(worker);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains(&format!("cannot reach Redis at {url}")),
        "{out}"
    );
}

#[test]
fn no_redis_key_or_value_contains_the_secret() {
    let redis = RedisServer::start();
    let stub = StubServer::start(|req, n| {
        if req.path.starts_with("/v1/products") {
            Action::json(
                400,
                r#"{"error":{"type":"invalid_request_error","message":"no"}}"#,
            )
        } else {
            Action::json(200, &format!(r#"{{"id":"cus_{n}","object":"customer"}}"#))
        }
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ok ${parsed_data.id}`); new_product().name("x").create_async(WORKER_ID, CONTEXT_ID);"#,
    )
    .flow("new_create_product_error", r#"print(`error ${error_json}`);"#);
    s.script(r#"new_customer().email("s@example.com").create_async("secretive", "ctx");"#);
    let mut worker = s.worker(&redis.url(), "secretive", &stub.base_url(), &[]);
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    out.assert_success();
    worker.terminate();
    assert!(worker.stdout().contains("error "), "{}", worker.stdout());

    let dump = payhost_e2e::redis_dump(&redis.url());
    assert!(
        dump.contains("payhost:job:"),
        "the dump covers payhost's keys:\n{dump}"
    );
    assert!(
        !dump.contains(TEST_SECRET),
        "the secret leaked into Redis:\n{dump}"
    );
    // The stub did receive it, in the Authorization header only.
    let seen = stub.seen();
    assert!(seen.iter().all(|r| r.headers.contains_key("authorization")));
    assert!(
        seen.iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains(TEST_SECRET))
    );
}

#[test]
fn detached_run_returns_once_its_jobs_are_queued() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(r#"new_customer().email("d@example.com").create_async("later", "ctx");"#);
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.arg("--detach");
    let out = run_command(run);
    out.assert_success();
    assert!(out.stderr.contains("detached; see `payhost jobs`"), "{out}");

    // No worker ran it yet: the job waits in Redis, queued.
    let mut jobs = payhost_e2e::payhost();
    jobs.args([
        "jobs",
        "--redis",
        &redis.url(),
        "--worker-id",
        "later",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run_command(jobs).stdout).unwrap();
    assert_eq!(report[0]["counts"]["queued"], 1);

    // A worker started afterwards picks it up.
    let mut worker = s.worker(&redis.url(), "later", &stub.base_url(), &[]);
    worker.wait_for_stdout("ran obj_0", Duration::from_secs(30));
    worker.terminate();
}

#[test]
fn a_key_of_the_wrong_type_fails_the_run_naming_it_and_queues_nothing_twice() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let mut conn = redis_conn(&redis.url());
    plant_string(&mut conn, "payhost:counts:worker-1");
    let s = Scenario::new().with_timeout(30);
    s.flow("new_create_customer_response", r#"print("ran");"#);
    s.script(r#"new_customer().email("w@example.com").create_async("worker-1", "ctx");"#);
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    assert!(!out.status.success(), "the job was not queued\n{out}");
    assert!(
        out.stderr.contains("payhost:counts:worker-1"),
        "the error names the key\n{out}"
    );
    assert!(
        !out.summary().contains("stopped early"),
        "the run ended by itself, not at its timeout\n{out}"
    );
    assert!(
        out.summary().contains("0 flows run") && out.summary().contains("1 failures"),
        "{out}"
    );
    let entries = stream_len(&mut conn, "worker-1");
    assert!(entries <= 1, "{entries} stream entries for one job");
    assert_eq!(stub.seen_count(), 1, "the request was sent once");
    // The job's text goes in beside the script, in the same transaction; a
    // refused batch takes it out again.
    let records: Vec<String> = redis::cmd("KEYS")
        .arg("payhost:job:*")
        .query(&mut conn)
        .unwrap();
    assert!(
        records.is_empty(),
        "nothing of the job is left: {records:?}"
    );
}

/// A run's publisher writes every job that is ready in one script per worker
/// id. A key of the wrong type for one worker id fails that worker id's jobs
/// (naming the key) and no other: the other worker id's jobs are queued, each
/// once.
#[test]
fn a_broken_key_of_one_worker_id_fails_only_its_jobs() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let mut conn = redis_conn(&redis.url());
    plant_string(&mut conn, "payhost:counts:broken");
    let s = Scenario::new().with_timeout(30);
    s.flow("new_create_customer_response", r#"print("ran");"#);
    s.script(
        r#"for i in 0..20 {
            let worker = if i % 2 == 0 { "good" } else { "broken" };
            new_customer().email(`c${i}@example.com`).create_async(worker, `ctx-${i}`);
        }"#,
    );
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.arg("--detach");
    let out = run_command(run);
    assert!(!out.status.success(), "ten jobs were not queued\n{out}");
    assert!(out.stderr.contains("payhost:counts:broken"), "{out}");
    assert!(out.summary().contains("10 failures"), "{out}");
    assert_eq!(stream_len(&mut conn, "good"), 10, "{out}");
    assert_eq!(stream_len(&mut conn, "broken"), 0, "{out}");
    let queued: usize = redis::cmd("HGET")
        .arg("payhost:counts:good")
        .arg("queued")
        .query(&mut conn)
        .unwrap();
    assert_eq!(queued, 10);
}

/// The job store's batched transitions, driven directly: what one ENQUEUE,
/// START and FINISH of several jobs leave in Redis, including the same job
/// twice in one batch and a record of the wrong type.
mod job_store {
    use payhost::flow::{FlowJob, Outcome};
    use payhost::queue::jobs::{Finish, JobStore, NewJob, Start};
    use payhost::queue::redis as rq;
    use payhost_e2e::{RedisServer, redis_conn};

    use super::{plant_string, stream_len};

    fn job(worker_id: &str) -> FlowJob {
        FlowJob {
            flow: "new_create_customer_response".into(),
            outcome: Outcome::Response,
            worker_id: worker_id.into(),
            context_id: "ctx".into(),
            caller_id: "stripe".into(),
            payload: r#"{"id":"cus_1"}"#.into(),
        }
    }

    /// A job to enqueue under `job_id`, with no run and no MAC.
    fn unsigned<'a>(job_id: &'a str, job: &'a FlowJob, json: &'a str) -> NewJob<'a> {
        NewJob {
            job_id,
            job,
            job_json: json,
            run_id: None,
            mac: None,
        }
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn counts(conn: &mut redis::Connection, worker_id: &str) -> Vec<(String, i64)> {
        let mut counts: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(format!("payhost:counts:{worker_id}"))
            .query(conn)
            .unwrap();
        counts.retain(|(_, n)| *n != 0);
        counts.sort();
        counts
    }

    fn field(conn: &mut redis::Connection, job_id: &str, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(format!("payhost:job:{job_id}"))
            .arg(field)
            .query(conn)
            .unwrap()
    }

    #[test]
    fn one_batch_queues_starts_and_settles_each_job_once() {
        let redis = RedisServer::start();
        let mut conn = redis_conn(&redis.url());
        let (job, json) = (job("w"), serde_json::to_string(&job("w")).unwrap());
        let new = |job_id: &'static str, run_id: Option<&'static str>| NewJob {
            job_id,
            job: &job,
            job_json: &json,
            run_id,
            mac: (job_id == "j2").then_some("mac-of-j2"),
        };
        block_on(async {
            let store = JobStore::new(rq::connect(&redis.url()).await.unwrap());
            store.ensure_group("w").await.unwrap();
            let added = store
                .enqueue_many(&[
                    new("j1", Some("r1")),
                    new("j2", None),
                    new("j1", Some("r1")),
                ])
                .await
                .unwrap();
            assert_eq!(added, [true, true, false], "the repeated id is added once");
            assert!(
                !store.enqueue(&new("j2", None)).await.unwrap(),
                "an existing id adds nothing"
            );
            let entries: Vec<String> = ["j1", "j2"]
                .iter()
                .map(|id| field(&mut conn, id, "entry").unwrap())
                .collect();
            assert_eq!(stream_len(&mut conn, "w"), 2);
            assert_eq!(counts(&mut conn, "w"), [("queued".into(), 2)]);
            let run: Vec<String> = redis::cmd("SMEMBERS")
                .arg("payhost:run:r1:jobs")
                .query(&mut conn)
                .unwrap();
            assert_eq!(run, ["j1"]);
            let ttl: i64 = redis::cmd("PTTL")
                .arg("payhost:run:r1:jobs")
                .query(&mut conn)
                .unwrap();
            assert!(ttl > 0, "the run's set expires after the retention");
            assert_eq!(field(&mut conn, "j2", "mac").as_deref(), Some("mac-of-j2"));
            assert_eq!(field(&mut conn, "j1", "mac"), None);

            // j1's entry twice in one start: the second sees the first's start.
            let batch = [
                ("j1".to_string(), entries[0].clone()),
                ("j2".to_string(), entries[1].clone()),
                ("j1".to_string(), entries[0].clone()),
                ("nope".to_string(), entries[0].clone()),
            ];
            let started = store.start_many("w", &batch, "c1", 3).await.unwrap();
            assert!(
                matches!(&started[0], Start::Run(s) if s.attempts == 1 && s.run_id.as_deref() == Some("r1")),
                "{started:?}"
            );
            assert!(
                started[..3]
                    .iter()
                    .all(|s| matches!(s, Start::Run(s) if s.job_json == json)),
                "each started job comes with its text: {started:?}"
            );
            assert!(
                matches!(&started[1], Start::Run(s) if s.mac.as_deref() == Some("mac-of-j2")),
                "{started:?}"
            );
            assert!(
                matches!(&started[2], Start::Run(s) if s.attempts == 1),
                "already running for c1: {started:?}"
            );
            assert!(
                matches!(&started[3], Start::Refused(why) if why.contains("no job record")),
                "{started:?}"
            );
            assert_eq!(counts(&mut conn, "w"), [("running".into(), 2)]);
            assert_eq!(field(&mut conn, "j1", "attempts").as_deref(), Some("1"));

            let missing = Finish::Missing {
                why: "no flow file x.rhai".into(),
            };
            store
                .finish_many(
                    "w",
                    &[
                        ("j1", &entries[0], &Finish::Done, Some("hash1")),
                        ("j2", &entries[1], &missing, None),
                        ("j1", &entries[0], &Finish::Done, Some("hash1")),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(
                counts(&mut conn, "w"),
                [("done".into(), 1), ("missing".into(), 1)],
                "j1 settled once"
            );
            assert_eq!(field(&mut conn, "j1", "status").as_deref(), Some("done"));
            assert_eq!(
                field(&mut conn, "j1", "plugin_hash").as_deref(),
                Some("hash1")
            );
            assert_eq!(
                field(&mut conn, "j2", "last_error").as_deref(),
                Some("no flow file x.rhai")
            );
            let failures: Vec<String> = redis::cmd("LRANGE")
                .arg("payhost:failures:w")
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap();
            assert_eq!(failures, ["j2"]);
            let pending: Vec<redis::Value> = redis::cmd("XPENDING")
                .arg("payhost:stream:w")
                .arg("workers")
                .query(&mut conn)
                .unwrap();
            assert_eq!(
                redis::from_redis_value::<i64>(pending[0].clone()).unwrap(),
                0,
                "both entries acknowledged"
            );
            let ttl: i64 = redis::cmd("PTTL")
                .arg("payhost:job:j1")
                .query(&mut conn)
                .unwrap();
            assert!(ttl > 0, "a finished record expires after the retention");
        });
    }

    #[test]
    fn a_record_of_the_wrong_type_in_a_batch_is_named_and_nothing_is_written() {
        let redis = RedisServer::start();
        let mut conn = redis_conn(&redis.url());
        let (job, json) = (job("w"), serde_json::to_string(&job("w")).unwrap());
        let new = |job_id: &'static str| unsigned(job_id, &job, &json);
        plant_string(&mut conn, "payhost:job:bad");
        block_on(async {
            let store = JobStore::new(rq::connect(&redis.url()).await.unwrap());
            store.ensure_group("w").await.unwrap();
            let err = store
                .enqueue_many(&[new("ok1"), new("bad"), new("ok2")])
                .await
                .unwrap_err();
            assert!(
                err.0.contains("payhost:job:bad") && err.0.contains("nothing was written"),
                "{err}"
            );
            assert_eq!(
                stream_len(&mut conn, "w"),
                0,
                "no job of the batch was queued"
            );
            let left: Vec<String> = redis::cmd("KEYS")
                .arg("payhost:job:ok*")
                .query(&mut conn)
                .unwrap();
            assert!(
                left.is_empty(),
                "the texts written beside the script went with it: {left:?}"
            );

            let added = store.enqueue_many(&[new("ok1"), new("ok2")]).await.unwrap();
            assert_eq!(added, [true, true]);
            let entry = field(&mut conn, "ok1", "entry").unwrap();
            let batch = [
                ("ok1".to_string(), entry.clone()),
                ("bad".to_string(), entry.clone()),
            ];
            let err = store.start_many("w", &batch, "c1", 3).await.unwrap_err();
            assert!(
                err.0.contains("payhost:job:bad") && err.0.contains("holds a string"),
                "{err}"
            );
            assert_eq!(
                field(&mut conn, "ok1", "status").as_deref(),
                Some("queued"),
                "ok1 was not started"
            );
            assert_eq!(counts(&mut conn, "w"), [("queued".into(), 2)]);

            let mixed = [
                new("ok3"),
                NewJob {
                    job: &self::job("other"),
                    ..new("ok4")
                },
            ];
            let err = store.enqueue_many(&mixed).await.unwrap_err();
            assert!(err.0.contains("worker id \"other\""), "{err}");
        });
    }

    /// A job's text is written beside ENQUEUE in one MULTI, and read beside
    /// START in one pipeline, by EVALSHA. A server that lost its scripts
    /// (restarted, SCRIPT FLUSH) answers NOSCRIPT after the texts were
    /// written: the store loads the script and sends the batch again, which
    /// queues each job once, whole.
    #[test]
    fn scripts_the_server_lost_are_loaded_again_and_each_job_is_queued_once() {
        let redis = RedisServer::start();
        let mut conn = redis_conn(&redis.url());
        let (job, json) = (job("w"), serde_json::to_string(&job("w")).unwrap());
        let new = |job_id: &'static str| unsigned(job_id, &job, &json);
        let flush = |conn: &mut redis::Connection| {
            let () = redis::cmd("SCRIPT").arg("FLUSH").query(conn).unwrap();
        };
        block_on(async {
            let store = JobStore::new(rq::connect(&redis.url()).await.unwrap());
            store.ensure_group("w").await.unwrap();
            assert_eq!(store.enqueue_many(&[new("a")]).await.unwrap(), [true]);
            flush(&mut conn);
            let added = store.enqueue_many(&[new("b"), new("c")]).await.unwrap();
            assert_eq!(added, [true, true]);
            assert_eq!(stream_len(&mut conn, "w"), 3, "one entry a job");
            assert_eq!(counts(&mut conn, "w"), [("queued".into(), 3)]);
            let batch: Vec<(String, String)> = ["a", "b", "c"]
                .iter()
                .map(|id| (id.to_string(), field(&mut conn, id, "entry").unwrap()))
                .collect();
            flush(&mut conn);
            let started = store.start_many("w", &batch, "c1", 3).await.unwrap();
            assert!(
                started
                    .iter()
                    .all(|s| matches!(s, Start::Run(s) if s.attempts == 1 && s.job_json == json)),
                "{started:?}"
            );
            assert_eq!(counts(&mut conn, "w"), [("running".into(), 3)]);
        });
    }
}

/// `n` customer jobs for `worker_id`, queued in a fresh redis-server by a
/// detached run (no worker yet), each flow printing `ran <id>`.
fn queued_customer_jobs(n: usize, worker_id: &str) -> (RedisServer, StubServer, Scenario) {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(&format!(
        r#"for i in 0..{n} {{
            new_customer().email(`c${{i}}@example.com`).create_async("{worker_id}", `ctx-${{i}}`);
        }}"#
    ));
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.arg("--detach");
    run_command(run).assert_success();
    (redis, stub, s)
}

/// How many entries of `worker_id`'s stream are pending (delivered, not
/// acknowledged).
fn pending_entries(conn: &mut redis::Connection, worker_id: &str) -> i64 {
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(format!("payhost:stream:{worker_id}"))
        .arg("workers")
        .query(conn)
        .unwrap();
    redis::from_redis_value::<i64>(pending[0].clone()).unwrap()
}

/// A worker starts all the entries one read brings in one round trip. A job
/// record of the wrong type among them must not hold the others back: they
/// run, and only that entry stays pending, with an error naming its key.
#[test]
fn a_broken_record_in_a_batch_leaves_only_its_own_entry_pending() {
    let (redis, stub, s) = queued_customer_jobs(12, "batch");
    // One record of the twelve becomes a string.
    let mut conn = redis_conn(&redis.url());
    let mut records: Vec<String> = redis::cmd("KEYS")
        .arg("payhost:job:*")
        .query(&mut conn)
        .unwrap();
    records.sort();
    assert_eq!(records.len(), 12, "{records:?}");
    let broken = records[5].clone();
    redis::cmd("DEL")
        .arg(&broken)
        .query::<()>(&mut conn)
        .unwrap();
    plant_string(&mut conn, &broken);

    let mut worker = s.worker(
        &redis.url(),
        "batch",
        &stub.base_url(),
        &["--flow-threads", "8"],
    );
    worker.wait_for_stderr(&broken, Duration::from_secs(30));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ran_ids(&worker.stdout()).len() < 11 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.terminate();
    let ran = ran_ids(&worker.stdout());
    assert_eq!(ran.len(), 11, "every other job ran once: {ran:?}");
    let stderr = worker.stderr();
    assert!(
        stderr.contains("left pending") && stderr.contains("WRONGTYPE"),
        "{stderr}"
    );
    assert_eq!(
        pending_entries(&mut conn, "batch"),
        1,
        "only the broken job's entry is pending"
    );
}

/// Jobs that finish together are settled together (one script). A key of
/// the wrong type among the keys settling writes fails the batch and then
/// each job alone, naming the key, and writes nothing: every record stays
/// `running` and every entry pending, to be settled once the key is fixed.
#[test]
fn settling_with_a_broken_key_names_it_and_writes_nothing() {
    let (redis, stub, s) = queued_customer_jobs(6, "settle");
    let mut conn = redis_conn(&redis.url());
    plant_string(&mut conn, "payhost:failures:settle");
    let mut worker = s.worker(
        &redis.url(),
        "settle",
        &stub.base_url(),
        &["--flow-threads", "6"],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while worker.stderr().matches("left pending").count() < 6
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.terminate();
    let stderr = worker.stderr();
    assert_eq!(
        stderr.matches("left pending").count(),
        6,
        "every job's settling failed: {stderr}"
    );
    assert!(stderr.contains("payhost:failures:settle"), "{stderr}");
    assert_eq!(ran_ids(&worker.stdout()).len(), 6, "the flows ran");
    let records: Vec<String> = redis::cmd("KEYS")
        .arg("payhost:job:*")
        .query(&mut conn)
        .unwrap();
    for record in &records {
        let status: String = redis::cmd("HGET")
            .arg(record)
            .arg("status")
            .query(&mut conn)
            .unwrap();
        assert_eq!(status, "running", "{record} was half-settled");
    }
    assert_eq!(pending_entries(&mut conn, "settle"), 6);
}

#[test]
fn a_missing_flow_file_is_reported_missing_and_a_flow_deployed_later_runs() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.script(r#"new_customer().email("m@example.com").create_async("deploy", "ctx");"#);
    // One flow thread, so the second job meets the runner that missed.
    let mut worker = s.worker(
        &redis.url(),
        "deploy",
        &stub.base_url(),
        &["--flow-threads", "1"],
    );
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    out.assert_success();
    assert!(
        out.summary().contains("1 flows missing"),
        "a missing flow is not a flow run\n{out}"
    );
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (0 done, 0 dead"),
        "{out}"
    );
    let report = jobs_report(&redis.url(), "deploy");
    assert_eq!(report["counts"]["missing"], 1, "{report}");
    assert_eq!(report["counts"]["done"], 0, "{report}");
    assert_eq!(report["failures"][0]["status"], "missing", "{report}");
    let why = report["failures"][0]["last_error"].as_str().unwrap();
    assert!(
        why.contains("new_create_customer_response.rhai"),
        "the reason names the file: {why}"
    );

    // Deployed now: the same worker finds it for the next job.
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    let out = run_command(s.command_redis(&stub.base_url(), &redis.url()));
    out.assert_success();
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (1 done, 0 dead"),
        "{out}"
    );
    worker.wait_for_stdout("ran obj_", Duration::from_secs(30));
    worker.terminate();
    let report = jobs_report(&redis.url(), "deploy");
    assert_eq!(report["counts"]["missing"], 1, "{report}");
    assert_eq!(report["counts"]["done"], 1, "{report}");
}

/// Queues `n` customer jobs for `worker_id` (`payhost run --detach`), has a
/// live consumer `alive` take every entry of the stream, and makes the
/// entries at `stale` look abandoned an hour ago. Returns the scenario (its
/// flow prints `ran <id>`) and the stream's entry ids, in order.
fn jobs_held_by_a_live_consumer(
    redis: &RedisServer,
    stub: &StubServer,
    worker_id: &str,
    n: usize,
    stale: std::ops::Range<usize>,
) -> (Scenario, Vec<String>) {
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    s.script(&format!(
        r#"
        for i in 0..{n} {{
            new_customer().email(`h${{i}}@example.com`).create_async("{worker_id}", `ctx-${{i}}`);
        }}
        "#
    ));
    let mut run = s.command_redis(&stub.base_url(), &redis.url());
    run.arg("--detach");
    run_command(run).assert_success();

    let stream = format!("payhost:stream:{worker_id}");
    let mut conn = redis_conn(&redis.url());
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(
            &[
                "GROUP",
                "workers",
                "alive",
                "COUNT",
                &n.to_string(),
                "STREAMS",
            ][..],
        )
        .arg(&[stream.as_str(), ">"][..])
        .query(&mut conn)
        .unwrap();
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(&[stream.as_str(), "-", "+"][..])
        .query(&mut conn)
        .unwrap();
    assert_eq!(entries.len(), n);
    let ids: Vec<String> = entries.into_iter().map(|(id, _)| id).collect();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&[stream.as_str(), "workers", "alive", "0"][..])
        .arg(&ids[stale])
        .arg(&["IDLE", "3600000", "JUSTID"][..])
        .query(&mut conn)
        .unwrap();
    (s, ids)
}

#[test]
fn stale_jobs_deep_in_the_pending_list_are_claimed() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    // A live consumer holds all 700 entries; the last 3 look abandoned an
    // hour ago. XAUTOCLAIM looks at 10 pending entries per COUNT per page,
    // and a worker's COUNT is its free places (`READ_AHEAD`, 64, with
    // --flow-threads 1): 640 a page, so only paging reaches them.
    const HELD: usize = 700;
    const { assert!(HELD > 10 * payhost::worker::READ_AHEAD) };
    let (s, _) = jobs_held_by_a_live_consumer(&redis, &stub, "deep", HELD, HELD - 3..HELD);
    let mut conn = redis_conn(&redis.url());

    // The lease (60 s) outlasts the wait below: only the stale ones qualify.
    let worker = s.worker(
        &redis.url(),
        "deep",
        &stub.base_url(),
        &["--lease", "60", "--flow-threads", "1"],
    );
    let start = std::time::Instant::now();
    while ran_ids(&worker.stdout()).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "the stale entries were not claimed\n{}\n{}",
            worker.stdout(),
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Their flows have run; each leaves the pending list when its batch is
    // finished, a moment later. Only they may leave it.
    let acked = std::time::Instant::now();
    loop {
        let pending: (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
            .arg(&["payhost:stream:deep", "workers"][..])
            .query(&mut conn)
            .unwrap();
        assert!(
            pending.0 >= HELD as u64 - 3,
            "only the stale entries may be taken: {} pending",
            pending.0
        );
        if pending.0 == HELD as u64 - 3 {
            break;
        }
        assert!(
            acked.elapsed() < Duration::from_secs(10),
            "the stale entries ran but were not acknowledged: {} pending\n{}",
            pending.0,
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_grace_period_longer_than_the_lease_keeps_the_job_with_its_worker() {
    let redis = RedisServer::start();
    let (stub, s) = slow_follow_up(Duration::from_secs(4));
    s.script(r#"new_customer().email("g@example.com").create_async("graceful", "ctx");"#);
    let args = ["--lease", "1", "--grace", "30"];
    let mut first = s.worker(&redis.url(), "graceful", &stub.base_url(), &args);
    let mut second = s.worker(&redis.url(), "graceful", &stub.base_url(), &args);
    let run = s.command_redis(&stub.base_url(), &redis.url());
    let run = std::thread::spawn(move || run_command(run));
    let start = std::time::Instant::now();
    while !(first.stdout() + second.stdout().as_str()).contains("started cus_") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no worker started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whoever took the job is asked to stop while its flow's request is
    // still out; it finishes within its grace period.
    let (holder, other) = if first.stdout().contains("started cus_") {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(holder.terminate().success());
    assert!(
        holder.stderr().contains("stopped cleanly"),
        "{}",
        holder.stderr()
    );
    let out = run.join().unwrap();
    out.assert_success();
    assert!(
        !other.stderr().contains("claimed job entry"),
        "the job was taken from a worker in its grace period\n{}",
        other.stderr()
    );
    assert!(
        out.summary()
            .contains("2 flow jobs via Redis (2 done, 0 dead, 0 redelivered)"),
        "{out}"
    );
    other.terminate();
}

#[test]
fn finished_jobs_expire_and_acknowledged_entries_are_trimmed_but_never_pending_ones() {
    let redis = RedisServer::start();
    let stub = StubServer::ok_objects();
    // A live consumer holds the last entry, which must stay; the first two
    // look abandoned, so the worker claims and runs them.
    let (s, entries) = jobs_held_by_a_live_consumer(&redis, &stub, "tidy", 3, 0..2);
    let mut conn = redis_conn(&redis.url());
    let held_id = entries[2].clone();

    let mut worker = s.worker(
        &redis.url(),
        "tidy",
        &stub.base_url(),
        &["--lease", "60", "--retention", "1"],
    );
    let start = std::time::Instant::now();
    loop {
        let entries: Vec<(String, std::collections::HashMap<String, String>)> =
            redis::cmd("XRANGE")
                .arg(&["payhost:stream:tidy", "-", "+"][..])
                .query(&mut conn)
                .unwrap();
        let records: Vec<String> = redis::cmd("KEYS")
            .arg("payhost:job:*")
            .query(&mut conn)
            .unwrap();
        let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
        if ran_ids(&worker.stdout()).len() == 2 && ids == [held_id.as_str()] && records.len() == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "entries {ids:?} (held {held_id}), records {records:?}\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.terminate();
    // The job still held is intact: its record and its pending entry.
    let pending: (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(&["payhost:stream:tidy", "workers"][..])
        .query(&mut conn)
        .unwrap();
    assert_eq!((pending.0, pending.1), (1, Some(held_id)));
    let report = jobs_report(&redis.url(), "tidy");
    assert_eq!(report["counts"]["done"], 2, "{report}");
}

#[test]
fn a_lease_renewal_does_not_take_back_a_job_another_worker_claimed() {
    let redis = RedisServer::start();
    let stub = StubServer::start(|req, n| {
        if req.path.contains("/v1/customers/cus_slow") {
            Action::Delay(
                Duration::from_secs(6),
                Box::new(Action::json(
                    200,
                    r#"{"id":"cus_slow","object":"customer"}"#,
                )),
            )
        } else {
            Action::json(200, &format!(r#"{{"id":"cus_{n}","object":"customer"}}"#))
        }
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"
        print(`started ${parsed_data.id}`);
        new_customer().id("cus_slow").retrieve_async(WORKER_ID, CONTEXT_ID);
        "#,
    );
    s.script(r#"new_customer().email("r@example.com").create_async("renewer", "ctx");"#);
    let mut worker = s.worker(&redis.url(), "renewer", &stub.base_url(), &["--lease", "3"]);
    let run = s.command_redis(&stub.base_url(), &redis.url());
    let run = std::thread::spawn(move || run_command(run));
    worker.wait_for_stdout("started cus_", Duration::from_secs(30));

    // Another consumer claims the entry, as one would after a lapsed lease.
    let mut conn = redis_conn(&redis.url());
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(&["payhost:stream:renewer", "-", "+", "COUNT", "1"][..])
        .query(&mut conn)
        .unwrap();
    let entry = entries[0].0.clone();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&["payhost:stream:renewer", "workers", "other", "0"][..])
        .arg(&entry)
        .arg("JUSTID")
        .query(&mut conn)
        .unwrap();
    worker.wait_for_stderr(
        &format!("job entry {entry} was claimed by another consumer"),
        Duration::from_secs(30),
    );
    let owner: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&["payhost:stream:renewer", "workers"][..])
        .arg(&entry)
        .arg(&entry)
        .arg(1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(owner[0].1, "other", "the renewal took the entry back");
    let out = run.join().unwrap();
    out.assert_success();
    worker.terminate();
}
