//! Reading the Redis queue's state: `payhost jobs` (counts and recent
//! failures per worker id), and `payhost run --redis` following the jobs its
//! run caused. One job, one run and the dead letters are [`super::view`]'s.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::keys::{self, field, status};

/// The jobs of one run, once all are terminal (or the time ran out).
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunJobs {
    pub total: usize,
    pub done: usize,
    pub dead: usize,
    /// Jobs whose flow file the worker did not have.
    pub missing: usize,
    /// Attempts beyond the first, over all jobs (redeliveries and retries).
    pub redelivered: u64,
    /// Jobs not terminal when following stopped.
    pub open: usize,
}

impl RunJobs {
    /// The part of `payhost run`'s summary line that says what the run's
    /// jobs came to in Redis.
    pub fn describe(&self, run_id: &str) -> String {
        format!(
            "run {run_id}: {} flow jobs via Redis ({} done, {} dead, {} redelivered{})",
            self.total,
            self.done,
            self.dead,
            self.redelivered,
            if self.open > 0 {
                format!(", {} unfinished", self.open)
            } else {
                String::new()
            },
        )
    }
}

/// Polls the run's job set until every job is terminal (`done`, `dead`,
/// `missing`), or
/// `deadline` passes. Children are added to the set before their parent
/// becomes terminal, so "all terminal" means the run is complete.
/// `published` is how many jobs this process queued itself (all already in
/// the set), so a run that queued none returns at once.
pub async fn follow_run(
    conn: &mut ConnectionManager,
    run_id: &str,
    published: usize,
    deadline: Option<Instant>,
) -> redis::RedisResult<RunJobs> {
    let mut terminal: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut members: HashSet<String> = HashSet::new();
    loop {
        // Redis may be restarting: keep the last answer and ask again.
        match poll(conn, run_id, &mut terminal).await {
            Ok(latest) => members = latest,
            Err(err) => {
                tracing::warn!("Redis unavailable while following run {run_id} ({err}); retrying")
            }
        }
        let still_open = members.len().saturating_sub(terminal.len());
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if (still_open == 0 && members.len() >= published) || timed_out {
            let mut jobs = RunJobs {
                total: members.len(),
                open: still_open,
                ..RunJobs::default()
            };
            for (state, attempts) in terminal.values() {
                match state.as_str() {
                    status::DONE => jobs.done += 1,
                    status::MISSING => jobs.missing += 1,
                    _ => jobs.dead += 1,
                }
                jobs.redelivered += attempts.saturating_sub(1);
            }
            return Ok(jobs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One look at the run's set; records newly terminal jobs in `terminal`.
async fn poll(
    conn: &mut ConnectionManager,
    run_id: &str,
    terminal: &mut BTreeMap<String, (String, u64)>,
) -> redis::RedisResult<HashSet<String>> {
    let members: HashSet<String> = conn.smembers(keys::run_jobs(run_id)).await?;
    let open: Vec<&String> = members
        .iter()
        .filter(|id| !terminal.contains_key(*id))
        .collect();
    if !open.is_empty() {
        let mut pipe = redis::pipe();
        for id in &open {
            pipe.cmd("HMGET")
                .arg(keys::job(id))
                .arg(field::STATUS)
                .arg(field::ATTEMPTS);
        }
        let rows: Vec<(Option<String>, Option<u64>)> = pipe.query_async(conn).await?;
        for (id, (state, attempts)) in open.iter().zip(rows) {
            // A member without a record was purged (it was dead) or expired:
            // it can never run again, so it counts as finished, with the
            // dead. (Enqueue writes the record and the set in one script, so
            // a member never lacks its record before it ran.)
            let state = state.unwrap_or_else(|| status::DEAD.to_string());
            if status::is_terminal(&state) {
                terminal.insert((*id).clone(), (state, attempts.unwrap_or(1)));
            }
        }
    }
    Ok(members)
}

/// One failed or dead job, for `payhost jobs`.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub job_id: String,
    pub flow: String,
    pub status: String,
    pub attempts: u64,
    pub last_error: String,
    pub updated_at: u64,
}

type FailureRow = (
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<u64>,
);

/// Counts and recent failures for one worker id.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerJobs {
    pub worker_id: String,
    pub counts: BTreeMap<String, i64>,
    /// Entries delivered to a consumer and not yet acknowledged.
    pub pending: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
    pub failures: Vec<Failure>,
}

/// Reads the state of `worker_id`, or of every worker id seen.
pub async fn report(
    conn: &mut ConnectionManager,
    worker_id: Option<&str>,
    failures: usize,
) -> redis::RedisResult<Vec<WorkerJobs>> {
    let mut ids: Vec<String> = match worker_id {
        Some(id) => vec![id.to_string()],
        None => conn.smembers(keys::workers()).await?,
    };
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let raw: BTreeMap<String, i64> = conn.hgetall(keys::counts(&id)).await?;
        let mut counts: BTreeMap<String, i64> =
            status::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        counts.extend(raw);
        let dead_letters: u64 = conn.xlen(keys::dead(&id)).await.unwrap_or(0);
        let pending: u64 = match redis::cmd("XPENDING")
            .arg(keys::stream(&id))
            .arg(keys::GROUP)
            .query_async::<redis::Value>(conn)
            .await
        {
            Ok(redis::Value::Array(items)) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        };
        let recent: Vec<String> = conn
            .lrange(keys::failures(&id), 0, (failures as isize) * 4)
            .await?;
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for job_id in recent {
            if !seen.insert(job_id.clone()) || list.len() >= failures {
                continue;
            }
            let (flow, state, attempts, last_error, updated_at): FailureRow = redis::cmd("HMGET")
                .arg(keys::job(&job_id))
                .arg(&[
                    field::FLOW,
                    field::STATUS,
                    field::ATTEMPTS,
                    field::LAST_ERROR,
                    field::UPDATED_AT,
                ])
                .query_async(conn)
                .await?;
            if state.is_none() {
                // The record expired (retention): nothing left to show.
                continue;
            }
            list.push(Failure {
                job_id,
                flow: flow.unwrap_or_default(),
                status: state.unwrap_or_default(),
                attempts: attempts.unwrap_or(0),
                last_error: last_error.unwrap_or_default(),
                updated_at: updated_at.unwrap_or(0),
            });
        }
        out.push(WorkerJobs {
            worker_id: id,
            counts,
            pending,
            dead_letters,
            failures: list,
        });
    }
    Ok(out)
}

/// `payhost jobs` for people.
pub fn render(workers: &[WorkerJobs]) -> String {
    let mut out = String::new();
    if workers.is_empty() {
        out.push_str("no jobs yet\n");
    }
    for w in workers {
        let _ = writeln!(out, "worker {}", w.worker_id);
        let counts: Vec<String> = status::ALL
            .iter()
            .map(|s| format!("{s} {}", w.counts.get(*s).copied().unwrap_or(0)))
            .collect();
        let purged = match w.counts.get(keys::PURGED) {
            Some(n) if *n > 0 => format!("  purged {n}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}{purged}   (unacknowledged {}, dead-letter stream {})",
            counts.join("  "),
            w.pending,
            w.dead_letters
        );
        if !w.failures.is_empty() {
            let _ = writeln!(out, "  recent failures:");
            for f in &w.failures {
                let _ = writeln!(
                    out,
                    "    {} {:<6} {} (attempts {}): {}",
                    f.job_id, f.status, f.flow, f.attempts, f.last_error
                );
            }
        }
    }
    out
}
