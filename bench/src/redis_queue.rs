//! Flow jobs per second through Redis with 1, 2 and 4 `payhost worker`
//! processes, against what `redis-benchmark` gets from the same
//! redis-server in the same round.
//!
//! Each round starts its own redis-server on a free loopback port (no
//! persistence), and N release `payhost worker` processes on one worker id
//! (so they share the stream's consumer group, as a deployment would), each
//! with the default `--flow-threads` (and so the default read-ahead) and
//! the bench's response flow. Once they all say they are reading, it
//! publishes N flow jobs with payhost's own
//! `Publisher`, as a `payhost run --redis` publishes: one task writing
//! every job that arrived while its previous write was on its way in one
//! ENQUEUE script (record, run set, counts, XADD), and the clock runs until
//! the `done` count reaches N. Every job then cost its share of: the enqueue
//! script, XREADGROUP, the start script, the flow (parse the 1.5 KB
//! payload, run the script), and the finish script with XACK. The CPU each
//! side used per job (redis-server, the workers) is printed as the round
//! goes.
//!
//! Then, with the workers stopped, `redis-benchmark` runs against the same
//! server: an XADD of a job-sized entry (the command every job needs at
//! least once). The ratio, taken per round, says how many flow jobs payhost
//! completes per plain Redis command the server can answer; the figure is
//! the median of the rounds' ratios with the smallest and largest. The
//! points of the curve (1, 2, 4 workers) are interleaved round by round too,
//! so a busy minute on the machine hits all of them; the goal point (2
//! workers) takes every round, the others may take fewer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost::flow::{FlowJob, Outcome, ReadyJob};
use payhost::http::BacklogSlot;
use payhost::ledger::Ledger;
use payhost::queue::jobs::DEFAULT_RETENTION;
use payhost::queue::redis as rq;
use redis::AsyncCommands;

use crate::fixtures::{CONTEXT_ID, RESPONSE_FLOW, Scripts};
use crate::stats::Spread;
use crate::stub::PAYMENT_INTENT_JSON;

const WORKER_ID: &str = "bench";

/// The goal: with this many workers, payhost's jobs/s at least this share
/// of redis-benchmark's XADD/s (median of the rounds' ratios).
pub const GOAL_WORKERS: usize = 2;
pub const SHARE_GOAL: f64 = 0.25;

/// One round at one point of the curve.
#[derive(Debug, Clone)]
pub struct Round {
    pub jobs_per_s: f64,
    pub publish_seconds: f64,
    pub xadd_rps: f64,
}

/// One point of the curve: how many worker processes, and its rounds.
#[derive(Debug, Clone)]
pub struct Point {
    pub workers: usize,
    pub rounds: Vec<Round>,
}

impl Point {
    pub fn jobs_per_s(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.jobs_per_s)
    }

    pub fn xadd_rps(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.xadd_rps)
    }

    /// Jobs/s over the same round's XADD/s.
    pub fn share_of_xadd(&self) -> Spread {
        let side = |f: fn(&Round) -> f64| self.rounds.iter().map(f).collect::<Vec<_>>();
        Spread::ratios(&side(|r| r.jobs_per_s), &side(|r| r.xadd_rps))
    }
}

#[derive(Debug, Clone)]
pub struct Figures {
    pub jobs: usize,
    /// Flow threads per worker process.
    pub flow_threads: usize,
    /// By number of workers, ascending.
    pub points: Vec<Point>,
}

impl Figures {
    pub fn point(&self, workers: usize) -> Option<&Point> {
        self.points.iter().find(|p| p.workers == workers)
    }

    pub fn goal_holds(&self) -> bool {
        self.point(GOAL_WORKERS)
            .is_some_and(|p| p.share_of_xadd().median >= SHARE_GOAL)
    }
}

pub struct Tools<'a> {
    pub payhost_bin: &'a Path,
    pub redis_server: &'a Path,
    pub redis_benchmark: &'a Path,
    pub plugin: &'a Path,
}

/// Kills the child (and waits) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The curve: `plan` lists (worker processes, rounds); round `r` runs every
/// point that has more than `r` rounds, in the plan's order.
pub fn measure(
    tools: &Tools,
    jobs: usize,
    flow_threads: usize,
    plan: &[(usize, usize)],
) -> anyhow::Result<Figures> {
    let mut points: Vec<Point> = plan
        .iter()
        .map(|&(workers, _)| Point {
            workers,
            rounds: Vec::new(),
        })
        .collect();
    let most = plan.iter().map(|&(_, rounds)| rounds).max().unwrap_or(0);
    for round in 0..most {
        for (point, &(workers, rounds)) in points.iter_mut().zip(plan) {
            if round >= rounds {
                continue;
            }
            let r = measure_round(tools, workers, jobs, flow_threads)?;
            eprintln!(
                "bench: redis round {}, {workers} worker(s): {:.0} jobs/s, {:.0} XADD/s ({:.1}%)",
                round + 1,
                r.jobs_per_s,
                r.xadd_rps,
                100.0 * r.jobs_per_s / r.xadd_rps
            );
            point.rounds.push(r);
        }
    }
    points.sort_by_key(|p| p.workers);
    Ok(Figures {
        jobs,
        flow_threads,
        points,
    })
}

/// One round: a fresh redis-server, `workers` worker processes, `jobs`
/// jobs, then redis-benchmark's XADD on the same server.
fn measure_round(
    tools: &Tools,
    workers: usize,
    jobs: usize,
    flow_threads: usize,
) -> anyhow::Result<Round> {
    let port = free_port()?;
    let _server = Guard(
        Command::new(tools.redis_server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", tools.redis_server.display()))?,
    );
    let url = format!("redis://127.0.0.1:{port}/");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut conn = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rq::connect(&url).await {
                Ok(conn) => return Ok(conn),
                Err(err) if Instant::now() > deadline => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })?;

    let scripts = Scripts::new(0)?;
    let workers: Vec<Guard> = (0..workers)
        .map(|_| start_worker(tools, &url, &scripts, flow_threads))
        .collect::<anyhow::Result<_>>()?;

    // As `classify` hands it to the publisher: its payload read once, when
    // it was classified (here, once for every copy).
    let job = ReadyJob::new(FlowJob {
        flow: RESPONSE_FLOW.into(),
        outcome: Outcome::Response,
        worker_id: WORKER_ID.into(),
        context_id: CONTEXT_ID.into(),
        caller_id: "stripe".into(),
        payload: serde_json::from_str::<serde_json::Value>(PAYMENT_INTENT_JSON)?.to_string(),
    });
    let job_json = job.to_text();
    // CPU seconds used so far by redis-server, the workers and this
    // (publishing) process, in that order.
    let pids = [
        vec![_server.0.id()],
        workers.iter().map(|w| w.0.id()).collect(),
        vec![std::process::id()],
    ];
    let cpu = || {
        pids.each_ref()
            .map(|p| p.iter().map(|&p| cpu_seconds(p)).sum::<f64>())
    };
    let cpu_before = cpu();
    let started = Instant::now();
    let published = runtime.block_on(async {
        // Published as `payhost run --redis` publishes its flow jobs: one
        // Publisher task writing every job that arrived meanwhile in one
        // ENQUEUE. The tokens are dropped as Redis takes the jobs.
        let config = rq::RedisConfig {
            url: url.clone(),
            lease: Duration::from_secs(30),
            max_deliveries: 5,
            job_key: None,
            retention: DEFAULT_RETENTION,
        };
        let publisher =
            rq::Publisher::start(&tokio::runtime::Handle::current(), conn.clone(), &config);
        let (mut ledger, token) = Ledger::new();
        for _ in 0..jobs {
            publisher.publish(job.clone(), token.clone(), BacklogSlot::default());
        }
        drop(token);
        let summary = ledger.wait(None).await.unwrap_or_else(|s| s);
        if let Some(error) = summary.last_error {
            bail!("publishing the bench's jobs: {error}");
        }
        anyhow::Ok(started.elapsed())
    })?;
    let counts = payhost::queue::keys::counts(WORKER_ID);
    let elapsed = runtime.block_on(async {
        loop {
            let done: Option<usize> = conn.hget(&counts, "done").await?;
            if done.unwrap_or(0) >= jobs {
                return anyhow::Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(300) {
                bail!("only {done:?} of {jobs} flow jobs done after 300 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })?;
    let cpu_after = cpu();
    let stats: String = runtime.block_on(async {
        redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
    })?;
    eprintln!(
        "bench: redis calls per job: {}",
        calls_per_job(&stats, jobs)
    );
    let per_job = |i: usize| (cpu_after[i] - cpu_before[i]) * 1e6 / jobs as f64;
    eprintln!(
        "bench: cpu per job: redis-server {:.1} µs, workers {:.1} µs, publisher {:.1} µs; published in {:.2} s of {:.2} s",
        per_job(0),
        per_job(1),
        per_job(2),
        published.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    drop(workers);

    let bench = |args: &[&str]| redis_benchmark(tools.redis_benchmark, port, args);
    let xadd_rps = bench(&[
        "XADD",
        "bench:xadd",
        "*",
        "job_id",
        "bench000000001",
        "job",
        &job_json,
    ])?;
    drop(runtime);
    Ok(Round {
        jobs_per_s: jobs as f64 / elapsed.as_secs_f64(),
        publish_seconds: published.as_secs_f64(),
        xadd_rps,
    })
}

/// `INFO commandstats` as "command calls/job (µs/job), ..." for the
/// commands called at least once per hundred jobs, most called first: how
/// many round trips a job cost, how full the batches were, and where
/// redis-server's time went (a script's time includes the calls it made).
fn calls_per_job(stats: &str, jobs: usize) -> String {
    let mut calls: Vec<(&str, f64, f64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| -> Option<f64> {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            let n = jobs as f64;
            Some((name, field("calls")? / n, field("usec")? / n))
        })
        .filter(|&(_, per_job, _)| per_job >= 0.01)
        .collect();
    calls.sort_by(|a, b| b.1.total_cmp(&a.1));
    calls
        .iter()
        .map(|(name, per_job, usec)| format!("{name} {per_job:.2} ({usec:.1} µs)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// User and system CPU seconds a process has used so far (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Starts one `payhost worker` and waits for its "reading" line.
fn start_worker(
    tools: &Tools,
    url: &str,
    scripts: &Scripts,
    flow_threads: usize,
) -> anyhow::Result<Guard> {
    let mut child = Command::new(tools.payhost_bin)
        .args(["worker", "--redis", url, "--worker-id", WORKER_ID])
        .arg("--plugin")
        .arg(tools.plugin)
        .arg("--flows")
        .arg(scripts.flows_dir())
        .args(["--flow-threads", &flow_threads.to_string()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", tools.payhost_bin.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let guard = Guard(child);
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("reading") {
                let _ = ready_tx.send(());
                sent = true;
            } else if sent {
                eprintln!("worker: {line}");
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .context("payhost worker did not start reading within 60 s")?;
    Ok(guard)
}

/// Runs `redis-benchmark -q -n 100000 ARGS` and returns its requests/s.
fn redis_benchmark(program: &Path, port: u16, args: &[&str]) -> anyhow::Result<f64> {
    let out = Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "100000",
        ])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // -q prints progress lines ended by \r, then "NAME: N requests per second".
    text.split(['\r', '\n'])
        .filter_map(|line| line.split_once(" requests per second"))
        .filter_map(|(before, _)| before.rsplit(' ').next()?.parse::<f64>().ok())
        .next_back()
        .with_context(|| format!("no requests/s in redis-benchmark's output: {text:?}"))
}
