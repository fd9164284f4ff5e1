//! Live plugin upgrades, as an operator does them, against a real
//! redis-server and real `payhost worker` processes: a worker whose
//! `--plugin` file is replaced three times under a steady stream of jobs
//! loses and fails none and names on every job record the plugin version
//! that ran it; broken versions (not a component, the 0.1 contract, a
//! component that crashes when loaded, one that fails a conformance check,
//! another provider) are refused with one log line each while the old
//! version keeps running jobs; a fleet of two workers follows `payhost
//! plugin publish` and `payhost plugin rollback`; and `payhost serve` takes
//! a new version between webhook deliveries and refuses a broken one.
//!
//! The versions are the Stripe plugin with a custom section appended (a
//! name and a version number): the same provider and behaviour, different
//! bytes and so a different content hash, which is what the host tracks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payhost_e2e::scenario::{RunOutput, Scenario, WorkerProcess, run_command};
use payhost_e2e::stub::StubServer;
use payhost_e2e::{RedisServer, cache_dir, payhost, plugin, redis_conn};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Failure bound for every wait below (never a timing assertion).
const LIMIT: Duration = Duration::from_secs(120);

/// The Stripe plugin, as version `n`: for n > 0 with a custom section
/// `payhost-test-version` saying so appended (a component may end with
/// custom sections; they change the bytes, not the behaviour).
fn version(n: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(plugin("stripe")).unwrap();
    if n > 0 {
        let name = b"payhost-test-version";
        let payload = format!("version {n}").repeat(n as usize);
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(payload.as_bytes());
        bytes.push(0); // custom section id
        leb128(&mut bytes, body.len());
        bytes.extend(body);
    }
    bytes
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces `path` the way a deploy does: write beside it, then rename.
fn install(path: &Path, bytes: &[u8]) {
    let staging = path.with_extension("staging");
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

/// `payhost worker` on `plugin_path` (not one of target/plugins).
fn worker(
    s: &Scenario,
    redis: &str,
    worker_id: &str,
    base_url: &str,
    plugin_path: &Path,
) -> WorkerProcess {
    let mut cmd = payhost();
    cmd.args(["worker", "--redis", redis, "--worker-id", worker_id])
        .args(["--base-url", base_url])
        .arg("--plugin")
        .arg(plugin_path)
        .arg("--flows")
        .arg(s.flows_dir())
        .env("STRIPE_SECRET_KEY", "sk_test_upgrade")
        .env("PAYHOST_CACHE_DIR", cache_dir());
    WorkerProcess::spawn(cmd, "reading payhost:stream:")
}

/// Queues `count` customer creations for `worker_id` (`run --detach`).
fn queue_jobs(s: &Scenario, base_url: &str, redis: &str, worker_id: &str, count: usize) {
    s.script(&format!(
        r#"for i in 0..{count} {{ new_customer().email(`c${{i}}@example.com`).create_async("{worker_id}", "ctx"); }}"#
    ));
    let mut cmd = s.command_redis(base_url, redis);
    cmd.arg("--detach");
    let out = run_command(cmd);
    out.assert_success();
}

/// Every job record in Redis: id -> fields.
fn job_records(redis: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut conn = redis_conn(redis);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("payhost:job:*")
        .query(&mut conn)
        .unwrap();
    keys.into_iter()
        .map(|key| {
            let fields: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(&key).query(&mut conn).unwrap();
            (key, fields)
        })
        .collect()
}

/// Waits until `done` holds for the job records; returns them.
#[track_caller]
fn wait_records(
    redis: &str,
    what: &str,
    done: impl Fn(&BTreeMap<String, BTreeMap<String, String>>) -> bool,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let start = Instant::now();
    loop {
        let records = job_records(redis);
        if done(&records) {
            return records;
        }
        assert!(
            start.elapsed() < LIMIT,
            "never saw {what}; records:\n{records:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn done_with(records: &BTreeMap<String, BTreeMap<String, String>>, hash: &str) -> usize {
    records
        .values()
        .filter(|r| r.get("status").map(String::as_str) == Some("done"))
        .filter(|r| r.get("plugin_hash").map(String::as_str) == Some(hash))
        .count()
}

/// Waits until the worker's stderr holds `needle` at least `times` times.
#[track_caller]
fn wait_stderr_count(worker: &WorkerProcess, needle: &str, times: usize) {
    let start = Instant::now();
    while whole_lines(&worker.stderr()).matches(needle).count() < times {
        assert!(
            start.elapsed() < LIMIT,
            "worker never printed {needle:?} {times} times\n--- stderr:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `text` up to its last newline: a line still being written is not read.
fn whole_lines(text: &str) -> &str {
    &text[..text.rfind('\n').map_or(0, |i| i + 1)]
}

fn customer_flow(s: &Scenario) {
    s.flow(
        "new_create_customer_response",
        r#"if parsed_data.id == () { throw "no customer id"; }"#,
    );
}

#[test]
fn a_worker_upgraded_three_times_under_load_loses_nothing_and_names_each_version() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    customer_flow(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stripe.wasm");
    install(&path, &version(0));
    let hashes: Vec<String> = (0..=3).map(|n| sha256(&version(n))).collect();
    let w = worker(&s, &url, "up-w", &stub.base_url(), &path);

    // A steady stream: runs of 4 jobs, one after the other, until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let queued = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, queued) = (stop.clone(), queued.clone());
        let (base, url) = (stub.base_url(), url.clone());
        let flows = s.flows_dir();
        std::thread::spawn(move || {
            let s = Scenario::new();
            std::fs::copy(
                flows.join("new_create_customer_response.rhai"),
                s.flows_dir().join("new_create_customer_response.rhai"),
            )
            .unwrap();
            while !stop.load(Ordering::SeqCst) {
                queue_jobs(&s, &base, &url, "up-w", 4);
                queued.fetch_add(4, Ordering::SeqCst);
                // Steady, not flat out: the point is jobs in flight at each
                // upgrade, not a benchmark.
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    wait_records(&url, "jobs done on the first version", |r| {
        done_with(r, &hashes[0]) >= 4
    });
    for (n, hash) in hashes.iter().enumerate().skip(1) {
        install(&path, &version(n as u32));
        w.wait_for_stderr(&format!("upgraded to {hash}"), LIMIT);
        wait_records(&url, &format!("jobs done on version {n}"), |r| {
            done_with(r, hash) >= 4
        });
    }
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let total = queued.load(Ordering::SeqCst);

    let records = wait_records(&url, "every queued job done", |r| {
        r.len() >= total
            && r.values()
                .all(|j| j.get("status").map(String::as_str) == Some("done"))
    });
    assert_eq!(records.len(), total, "jobs lost or made up");
    let known: BTreeSet<&str> = hashes.iter().map(String::as_str).collect();
    for (key, record) in &records {
        assert_eq!(
            record["attempts"], "1",
            "{key} ran more than once: {record:?}"
        );
        assert!(
            !record.contains_key("last_error"),
            "{key} failed: {record:?}"
        );
        let hash = record
            .get("plugin_hash")
            .unwrap_or_else(|| panic!("{key} names no plugin hash: {record:?}"));
        assert!(
            known.contains(hash.as_str()),
            "{key} names an unknown hash {hash}"
        );
    }
    for (n, hash) in hashes.iter().enumerate() {
        assert!(done_with(&records, hash) > 0, "no job ran on version {n}");
    }
    // `payhost jobs --job` shows it.
    let (key, record) = records.iter().next().unwrap();
    let mut jobs = payhost();
    jobs.args(["jobs", "--redis", &url, "--json", "--job"])
        .arg(key.trim_start_matches("payhost:job:"));
    let out = run_command(jobs);
    out.assert_success();
    assert!(out.stdout.contains(&record["plugin_hash"]), "{out}");
    assert!(!w.stderr().contains("upgrade refused"), "{}", w.stderr());
}

#[test]
fn a_broken_upgrade_leaves_the_old_version_serving() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    customer_flow(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stripe.wasm");
    install(&path, &version(0));
    let old = sha256(&version(0));
    let mut w = worker(&s, &url, "broken-w", &stub.base_url(), &path);
    let read = |name: &str| std::fs::read(plugin(name)).unwrap();
    let broken: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a component",
            b"#!/bin/sh\necho not wasm\n".to_vec(),
            "not WebAssembly",
        ),
        ("contract 0.1", read("contract-0.1"), "0.1"),
        ("crashes in info", read("info-panic"), "crashed"),
        (
            "fails a check",
            read("panic"),
            "failed: plugin `panic` crashed in build-request",
        ),
        ("another provider", read("json-api"), "not `stripe`"),
    ];
    let mut jobs = 0;
    for (i, (what, bytes, reason)) in broken.iter().enumerate() {
        install(&path, bytes);
        wait_stderr_count(&w, "plugin upgrade refused", i + 1);
        let line = whole_lines(&w.stderr())
            .lines()
            .filter(|l| l.contains("plugin upgrade refused"))
            .nth(i)
            .unwrap()
            .to_string();
        assert!(
            line.contains(&path.display().to_string()) && line.contains(reason),
            "{what}: the refusal names neither the file nor the reason {reason:?}: {line}"
        );
        assert!(line.contains(&format!("keeps running {old}")), "{line}");
        // The old version still runs jobs.
        queue_jobs(&s, &stub.base_url(), &url, "broken-w", 2);
        jobs += 2;
        wait_records(&url, &format!("jobs done after `{what}`"), |r| {
            done_with(r, &old) == jobs
        });
    }
    assert!(!w.stderr().contains("upgraded to"), "{}", w.stderr());

    // SIGHUP reads the file again even though it did not change.
    install(&path, &version(1));
    let new = sha256(&version(1));
    w.wait_for_stderr(&format!("upgraded to {new}"), LIMIT);
    let status = Command::new("kill")
        .args(["-HUP", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    w.wait_for_stderr("unchanged", LIMIT);
    queue_jobs(&s, &stub.base_url(), &url, "broken-w", 2);
    wait_records(&url, "jobs done on the good upgrade", |r| {
        done_with(r, &new) == 2
    });
    assert!(w.terminate().success(), "{}", w.stderr());
}

/// `payhost plugin <args> --redis URL --json`.
fn fleet_command(redis: &str, args: &[&str], path: Option<&Path>) -> RunOutput {
    let mut cmd = payhost();
    cmd.arg("plugin")
        .args(args)
        .args(["--redis", redis, "--json"])
        .env("PAYHOST_CACHE_DIR", cache_dir());
    if let Some(path) = path {
        cmd.arg(path);
    }
    run_command(cmd)
}

fn json(out: &RunOutput) -> Value {
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{out}"))
}

#[test]
fn a_fleet_of_two_workers_follows_publish_and_rollback() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    customer_flow(&s);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..=2)
        .map(|n| {
            let path = dir.path().join(format!("stripe-v{n}.wasm"));
            std::fs::write(&path, version(n)).unwrap();
            path
        })
        .collect();
    let hashes: Vec<String> = (0..=2).map(|n| sha256(&version(n))).collect();
    let workers = [
        worker(&s, &url, "fleet-w", &stub.base_url(), &files[0]),
        worker(&s, &url, "fleet-w", &stub.base_url(), &files[0]),
    ];
    let mut done = 0;
    let mut run_on = |hash: &str, expected_on_hash: usize| {
        queue_jobs(&s, &stub.base_url(), &url, "fleet-w", 4);
        done += 4;
        let total = done;
        wait_records(&url, &format!("jobs done on {hash}"), |r| {
            done_with(r, hash) == expected_on_hash
                && r.values()
                    .filter(|j| j.get("status").map(String::as_str) == Some("done"))
                    .count()
                    == total
        });
    };

    let published = json(&fleet_command(&url, &["publish"], Some(&files[1])));
    assert_eq!(published["hash"], hashes[1].as_str());
    assert_eq!(published["provider"], "stripe");
    assert_eq!(published["previous"], Value::Null);
    for w in &workers {
        w.wait_for_stderr(&format!("upgraded to {}", hashes[1]), LIMIT);
    }
    run_on(&hashes[1], 4);

    let published = json(&fleet_command(&url, &["publish"], Some(&files[2])));
    assert_eq!(published["hash"], hashes[2].as_str());
    assert_eq!(published["previous"], hashes[1].as_str());
    for w in &workers {
        w.wait_for_stderr(&format!("upgraded to {}", hashes[2]), LIMIT);
    }
    run_on(&hashes[2], 4);

    // A broken version is refused before it reaches Redis.
    let refused = fleet_command(&url, &["publish"], Some(&plugin("panic")));
    assert!(!refused.status.success(), "{refused}");
    assert!(refused.stderr.contains("refusing to publish"), "{refused}");
    let mut conn = redis_conn(&url);
    let current: String = redis::cmd("GET")
        .arg("payhost:plugin:stripe:current")
        .query(&mut conn)
        .unwrap();
    assert_eq!(current, hashes[2]);

    let rolled = json(&fleet_command(
        &url,
        &["rollback", "--provider", "stripe"],
        None,
    ));
    assert_eq!(rolled["hash"], hashes[1].as_str());
    assert_eq!(rolled["previous"], hashes[2].as_str());
    for w in &workers {
        wait_stderr_count(w, &format!("upgraded to {}", hashes[1]), 2);
    }
    run_on(&hashes[1], 8);

    // Nothing further back than the first publish.
    let again = fleet_command(&url, &["rollback", "--provider", "stripe"], None);
    assert!(!again.status.success(), "{again}");
    assert!(again.stderr.contains("nothing to roll back to"), "{again}");
    for w in &workers {
        assert!(!w.stderr().contains("refused"), "{}", w.stderr());
    }

    // Redis's current names a blob whose bytes are not that hash, then one
    // that is not there: each worker refuses both and keeps its version.
    let forged = "f".repeat(64);
    let missing = "e".repeat(64);
    let blob = |hash: &str| format!("payhost:plugin:stripe:{hash}");
    for (hash, reason) in [
        (
            &forged,
            format!("its bytes hash to {}, not {forged}", hashes[2]),
        ),
        (&missing, "no such key".to_string()),
    ] {
        if hash == &forged {
            redis::cmd("SET")
                .arg(blob(hash))
                .arg(version(2))
                .exec(&mut conn)
                .unwrap();
        }
        redis::cmd("SET")
            .arg("payhost:plugin:stripe:current")
            .arg(hash)
            .exec(&mut conn)
            .unwrap();
        let line = format!("plugin upgrade refused: {}: {reason}", blob(hash));
        for w in &workers {
            w.wait_for_stderr(&line, LIMIT);
        }
    }
    run_on(&hashes[1], 12);
}

const WEBHOOK_SECRET: &str = "whsec_payhost_upgrade_1a2b3c";

/// POSTs a Stripe `customer.created` event for `customer`, signed now.
fn deliver(address: &str, event: &str, customer: &str) -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = serde_json::json!({
        "id": event, "object": "event", "type": "customer.created", "created": t,
        "livemode": false, "data": {"object": {"id": customer, "object": "customer"}},
    })
    .to_string();
    let signature = payhost_e2e::stripe_signature(WEBHOOK_SECRET, t as i64, &body);
    payhost_e2e::http_request(
        "POST",
        &format!("http://{address}/webhooks/stripe"),
        &[
            ("Content-Type", "application/json"),
            ("Stripe-Signature", &signature),
        ],
        Some(&body),
    )
    .status
}

#[test]
fn payhost_serve_takes_a_new_version_between_deliveries_and_refuses_a_broken_one() {
    let s = Scenario::new();
    s.flow(
        "on_customer_created",
        r#"print(`EVENT ${parsed_data.id}`);"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stripe.wasm");
    install(&path, &version(0));
    let mut cmd = payhost();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--base-url",
        "http://127.0.0.1:9",
    ])
    .arg("--plugin")
    .arg(&path)
    .arg("--flows")
    .arg(s.flows_dir())
    .env("STRIPE_SECRET_KEY", "sk_test_upgrade")
    .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    .env("PAYHOST_CACHE_DIR", cache_dir());
    let serve = WorkerProcess::spawn(cmd, "listening on http://");
    let address = serve
        .stderr()
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();

    assert_eq!(deliver(&address, "evt_1", "cus_1"), 200);
    serve.wait_for_stdout("EVENT cus_1", LIMIT);
    install(&path, &version(1));
    serve.wait_for_stderr(&format!("upgraded to {}", sha256(&version(1))), LIMIT);
    assert_eq!(deliver(&address, "evt_2", "cus_2"), 200);
    serve.wait_for_stdout("EVENT cus_2", LIMIT);
    install(&path, b"not a component");
    serve.wait_for_stderr("plugin upgrade refused", LIMIT);
    assert_eq!(deliver(&address, "evt_3", "cus_3"), 200);
    serve.wait_for_stdout("EVENT cus_3", LIMIT);
}
