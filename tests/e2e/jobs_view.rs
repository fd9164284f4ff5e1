//! `payhost jobs` as an operator uses it, against a real redis-server and
//! real `payhost worker` processes: jobs die in a broken flow, the
//! dead-letter list and one job's record show why (without the payload's
//! values), the flow is fixed, `payhost jobs replay` re-queues the dead jobs
//! (one, a run's, a worker id's) and a worker runs them to `done`, and
//! `payhost jobs purge` removes what is left. Every answer is read as JSON.

use std::time::{Duration, Instant};

use payhost_e2e::scenario::{RunOutput, Scenario, run_command};
use payhost_e2e::stub::{Action, StubServer};
use payhost_e2e::{RedisServer, jobs_report, redis_conn};
use serde_json::Value;

const WORKER: &str = "ops-w";
/// A value in every payload that `payhost jobs` must never print.
const PAYLOAD_SECRET: &str = "cs_hush_4242";

/// `payhost jobs <args> --redis URL`.
fn jobs(redis: &str, args: &[&str]) -> RunOutput {
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("jobs").args(args).args(["--redis", redis]);
    run_command(cmd)
}

/// `payhost jobs <args> --json`, parsed; the command must succeed.
#[track_caller]
fn jobs_json(redis: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = jobs(redis, &all);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{out}"))
}

/// Waits (polling, 60 s at most) until `done` holds for `payhost jobs
/// <args> --json`; returns that answer.
#[track_caller]
fn wait_for(redis: &str, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let answer = jobs_json(redis, args);
        if done(&answer) {
            return answer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never saw {what}; last answer:\n{answer:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the scenario's script detached (`run --redis --detach`) and returns
/// the run id it prints.
fn run_detached(s: &Scenario, base_url: &str, redis: &str) -> String {
    let mut cmd = s.command_redis(base_url, redis);
    cmd.arg("--detach");
    let out = run_command(cmd);
    out.assert_success();
    out.stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("payhost: run ")?
                .strip_suffix(" detached; see `payhost jobs`")
        })
        .unwrap_or_else(|| panic!("no run id printed\n{out}"))
        .to_string()
}

/// The dead letters of [`WORKER`].
fn dead_letters(redis: &str) -> Vec<Value> {
    jobs_json(redis, &["--dead", "--worker-id", WORKER])["dead_letters"]
        .as_array()
        .unwrap()
        .clone()
}

fn job_ids(report: &Value) -> Vec<String> {
    let mut ids: Vec<String> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn dead_jobs_are_listed_replayed_to_done_after_a_fix_and_purged() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::start(|_, n| {
        Action::json(
            200,
            &format!(
                r#"{{"id":"cus_{n}","object":"customer","client_secret":"{PAYLOAD_SECRET}"}}"#
            ),
        )
    });
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"throw "boom: the customer flow is broken";"#,
    );

    // Every job dies on its first delivery; so does a forged entry naming
    // a job nobody queued.
    let mut broken = s.worker(&url, WORKER, &stub.base_url(), &["--max-deliveries", "1"]);
    s.script(&format!(
        r#"for i in 0..3 {{ new_customer().email(`a${{i}}@example.com`).create_async("{WORKER}", "ctx-a"); }}"#
    ));
    let run_a = run_detached(&s, &stub.base_url(), &url);
    s.script(&format!(
        r#"for i in 0..2 {{ new_customer().email(`b${{i}}@example.com`).create_async("{WORKER}", "ctx-b"); }}"#
    ));
    let run_b = run_detached(&s, &stub.base_url(), &url);
    let _: String = redis::cmd("XADD")
        .arg(format!("payhost:stream:{WORKER}"))
        .arg("*")
        .arg("job_id")
        .arg("forged1")
        .query(&mut redis_conn(&url))
        .unwrap();
    wait_for(
        &url,
        &["--dead", "--worker-id", WORKER],
        "6 dead letters",
        |v| v["dead_letters"].as_array().unwrap().len() == 6,
    );
    broken.terminate();

    // The dead-letter list: job id, flow, attempts, last error, run.
    let letters = dead_letters(&url);
    let of_run = |run: &str| -> Vec<String> {
        let mut ids: Vec<String> = letters
            .iter()
            .filter(|l| l["run_id"] == run)
            .map(|l| l["job_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let (jobs_a, jobs_b) = (of_run(&run_a), of_run(&run_b));
    assert_eq!((jobs_a.len(), jobs_b.len()), (3, 2), "{letters:#?}");
    for letter in letters.iter().filter(|l| l["run_id"].is_string()) {
        assert_eq!(letter["flow"], "new_create_customer_response");
        assert_eq!(letter["attempts"], 1);
        assert_eq!(letter["status"], "dead");
        assert_eq!(letter["replayable"], true);
        assert!(
            letter["last_error"]
                .as_str()
                .unwrap()
                .contains("boom: the customer flow is broken"),
            "{letter:#}"
        );
    }
    let forged = letters.iter().find(|l| l["job_id"] == "forged1").unwrap();
    assert_eq!(forged["replayable"], false, "a refused entry holds no job");
    let text = jobs(&url, &["--dead"]);
    text.assert_success();
    text.assert_printed(&format!("dead letters of worker {WORKER}"));
    text.assert_printed(&format!(
        "{}  new_create_customer_response  attempts 1  run {run_a}",
        jobs_a[0]
    ));

    // One job: everything an operator needs, the payload as a summary.
    let job = jobs_json(&url, &["--job", &jobs_a[0]]);
    assert_eq!(job["status"], "dead");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["worker_id"], WORKER);
    assert_eq!(job["run_id"], run_a.as_str());
    assert_eq!(job["flow"], "new_create_customer_response");
    assert_eq!(job["outcome"], "response");
    assert!(job["created_at"].as_u64().unwrap() <= job["updated_at"].as_u64().unwrap());
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("boom: the customer flow is broken")
    );
    assert_eq!(job["payload"]["json_type"], "object");
    assert!(job["payload"]["bytes"].as_u64().unwrap() > 0);
    let keys: Vec<&str> = job["payload"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"client_secret") && keys.contains(&"id"),
        "{job:#}"
    );
    for shown in [
        jobs(&url, &["--job", &jobs_a[0], "--json"]),
        jobs(&url, &["--job", &jobs_a[0]]),
    ] {
        shown.assert_success();
        assert!(!shown.stdout.contains(PAYLOAD_SECRET), "{shown}");
    }
    jobs(&url, &["--job", &jobs_a[0]]).assert_printed("status      dead");

    // The fix is deployed: a worker with the working flow.
    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    let mut fixed = s.worker(&url, WORKER, &stub.base_url(), &[]);

    // One job; replaying it again does nothing and says so.
    let replayed = jobs_json(&url, &["replay", "--job", &jobs_a[0]]);
    assert_eq!(replayed["action"], "replay");
    assert_eq!(job_ids(&replayed), [jobs_a[0].clone()]);
    assert_eq!(replayed["jobs"][0]["attempts_before"], 1);
    let again = jobs_json(&url, &["replay", "--job", &jobs_a[0]]);
    assert_eq!(job_ids(&again), Vec::<String>::new());
    assert_eq!(again["skipped"][0]["job_id"], jobs_a[0].as_str());
    assert_ne!(again["skipped"][0]["status"], "dead");
    let text = jobs(&url, &["replay", "--job", &jobs_a[0]]);
    text.assert_success();
    text.assert_printed("replayed no dead jobs");
    text.assert_printed(&format!("{}  left alone: it is", jobs_a[0]));

    // The rest of run A, by run id: the replayed job is left alone.
    let replayed = jobs_json(&url, &["replay", "--run", &run_a]);
    assert_eq!(job_ids(&replayed), jobs_a[1..].to_vec());
    assert_eq!(replayed["selected_by"], "run");
    assert_eq!(replayed["scope"], run_a.as_str());
    assert_eq!(replayed["not_dead"], 1);
    let run = wait_for(&url, &["--run", &run_a], "run A done", |v| {
        v["counts"]["done"] == 3
    });
    assert_eq!(run["total"], 3);
    for job in run["jobs"].as_array().unwrap() {
        assert_eq!(job["status"], "done", "{run:#}");
        assert_eq!(job["attempts"], 1, "attempts start again from 0 on replay");
    }
    let detail = jobs_json(&url, &["--job", &jobs_a[0]]);
    assert_eq!(detail["replays"], 1);
    assert!(detail["replayed_at"].is_u64());

    // Purge one job of run B; a second purge finds nothing.
    let purged = jobs_json(&url, &["purge", "--job", &jobs_b[0]]);
    assert_eq!(purged["action"], "purge");
    assert_eq!(job_ids(&purged), [jobs_b[0].clone()]);
    let again = jobs_json(&url, &["purge", "--job", &jobs_b[0]]);
    assert_eq!(again["skipped"][0]["status"], "gone");
    let missing = jobs(&url, &["--job", &jobs_b[0]]);
    assert!(!missing.status.success(), "{missing}");
    assert!(missing.stderr.contains("no job"), "{missing}");

    // Every dead job of the worker id: the other job of run B; the forged
    // entry has no job to run and is left alone.
    let replayed = jobs_json(&url, &["replay", "--worker-id", WORKER, "--all"]);
    assert_eq!(job_ids(&replayed), [jobs_b[1].clone()]);
    assert_eq!(replayed["skipped"][0]["job_id"], "forged1");
    assert_eq!(replayed["skipped"][0]["status"], "no_job");
    let run = wait_for(&url, &["--run", &run_b], "run B done", |v| {
        v["counts"]["done"] == 1
    });
    assert_eq!(run["total"], 2, "{run:#}");
    assert_eq!(run["counts"]["gone"], 1, "the purged job is gone: {run:#}");

    // Purge what is left of the worker id's dead letters.
    let text = jobs(&url, &["purge", "--worker-id", WORKER, "--all"]);
    text.assert_success();
    text.assert_printed(&format!("purged 1 dead job of worker {WORKER}:"));
    text.assert_printed("forged1");
    assert_eq!(dead_letters(&url), Vec::<Value>::new());
    jobs(&url, &["--dead"]).assert_printed("no dead letters");

    let counts = &jobs_report(&url, WORKER)["counts"];
    assert_eq!(
        (&counts["done"], &counts["dead"], &counts["purged"]),
        (&Value::from(4), &Value::from(0), &Value::from(2)),
        "{counts:#}"
    );
    fixed.terminate();
    assert_eq!(
        fixed.stdout().matches("ran cus_").count(),
        4,
        "{}",
        fixed.stdout()
    );
}

#[test]
fn replay_and_purge_say_what_they_need() {
    let redis = RedisServer::start();
    let url = redis.url();
    for (args, says) in [
        (vec!["replay"], "required"),
        (vec!["replay", "--worker-id", WORKER], "--all"),
        (vec!["purge", "--all"], "--worker-id"),
        (vec!["replay", "--job", "a:b"], "--job \"a:b\""),
        (
            vec!["--run", "payhost:workers"],
            "--run \"payhost:workers\"",
        ),
        (vec!["--job", "nope"], "no job nope"),
        (vec!["--run", "nope"], "no run nope"),
    ] {
        let out = jobs(&url, &args);
        assert!(!out.status.success(), "{args:?}\n{out}");
        assert!(
            out.stderr.contains(says),
            "{args:?}: expected {says:?}\n{out}"
        );
    }
    let out = jobs(&url, &["replay", "--job", "nope", "--json"]);
    out.assert_success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["skipped"][0]["status"], "gone");
}

#[test]
fn replay_removes_only_the_jobs_own_dead_letter_and_a_signed_job_still_verifies() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::ok_objects();
    let s = Scenario::new().with_env("PAYHOST_E2E_JOB_KEY", "jk_jobs_view_5150");
    let key = ["--job-key-env", "PAYHOST_E2E_JOB_KEY"];
    s.flow("new_create_customer_response", r#"throw "boom";"#);
    let mut broken = s.worker(
        &url,
        WORKER,
        &stub.base_url(),
        &[key[0], key[1], "--max-deliveries", "1"],
    );
    s.script(&format!(
        r#"for i in 0..2 {{ new_customer().email(`k${{i}}@example.com`).create_async("{WORKER}", "ctx"); }}"#
    ));
    let mut run = s.command_redis(&stub.base_url(), &url);
    run.args(key).arg("--detach");
    run_command(run).assert_success();
    wait_for(&url, &["--dead"], "2 dead letters", |v| {
        v["dead_letters"].as_array().unwrap().len() == 2
    });
    let mut ids: Vec<String> = dead_letters(&url)
        .iter()
        .map(|l| l["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let (first, second) = (ids[0].clone(), ids[1].clone());

    // A stale duplicate entry naming the first job is refused: its letter
    // names the job but is not the job's own.
    let mut conn = redis_conn(&url);
    let _: String = redis::cmd("XADD")
        .arg(format!("payhost:stream:{WORKER}"))
        .arg("*")
        .arg("job_id")
        .arg(&first)
        .query(&mut conn)
        .unwrap();
    wait_for(&url, &["--dead"], "the duplicate's letter", |v| {
        v["dead_letters"].as_array().unwrap().len() == 3
    });
    let duplicate = dead_letters(&url)
        .into_iter()
        .find(|l| l["job_id"] == first.as_str() && l["dead_job"] == false)
        .expect("the duplicate's letter is listed as not the job's own");
    broken.terminate();
    // The second job's record as written before records named their
    // letter: its letter is found by its entry.
    let _: i64 = redis::cmd("HDEL")
        .arg(format!("payhost:job:{second}"))
        .arg("dead_entry")
        .query(&mut conn)
        .unwrap();

    s.flow(
        "new_create_customer_response",
        r#"print(`ran ${parsed_data.id}`);"#,
    );
    let mut fixed = s.worker(&url, WORKER, &stub.base_url(), &key);
    let replayed = jobs_json(&url, &["replay", "--job", &first, "--job", &second]);
    assert_eq!(job_ids(&replayed), [first.clone(), second.clone()]);
    for id in [&first, &second] {
        wait_for(&url, &["--job", id], "the job done", |v| {
            v["status"] == "done"
        });
    }
    let left = dead_letters(&url);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["letter_id"], duplicate["letter_id"]);
    assert_eq!(left[0]["replayable"], false);

    let purged = jobs_json(&url, &["purge", "--worker-id", WORKER, "--all"]);
    assert_eq!(job_ids(&purged), Vec::<String>::new());
    assert_eq!(purged["other_letters"], 1);
    assert_eq!(purged["other_letters_removed"], true);
    assert_eq!(dead_letters(&url), Vec::<Value>::new());
    fixed.terminate();
    assert_eq!(
        fixed.stdout().matches("ran obj_").count(),
        2,
        "{}",
        fixed.stderr()
    );
}

#[test]
fn a_followed_run_whose_job_record_is_gone_ends_instead_of_waiting_for_it() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow("new_create_customer_response", "print(`ran`);");
    s.script(&format!(
        r#"new_customer().email("g@example.com").create_async("{WORKER}", "ctx");"#
    ));
    // No worker: the job stays queued while `payhost run` follows it, until
    // its record disappears (as a purge or the retention removes it).
    let run = s.command_redis(&stub.base_url(), &url);
    let run = std::thread::spawn(move || run_command(run));
    let mut conn = redis_conn(&url);
    let start = Instant::now();
    let job_key = loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("payhost:job:*")
            .query(&mut conn)
            .unwrap();
        if let Some(key) = keys.into_iter().next() {
            break key;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no job queued");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _: i64 = redis::cmd("DEL").arg(&job_key).query(&mut conn).unwrap();
    let out = run.join().unwrap();
    assert!(!out.status.success(), "{out}");
    assert!(
        out.summary()
            .contains("1 flow jobs via Redis (0 done, 1 dead, 0 redelivered)"),
        "{out}"
    );
}
