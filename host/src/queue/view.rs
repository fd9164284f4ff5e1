//! The operator's views of the Redis queue: one job (`payhost jobs --job`),
//! one run (`--run`) and the dead letters (`--dead`), each as a struct that
//! `--json` prints as it is and a text rendering.
//!
//! Everything here reads. A job's payload is the provider's response and
//! may hold personal data, so it is shown as a [`PayloadSummary`] (size and
//! top-level keys), never its values. Which dead letter is a dead job's own
//! follows the job store's rule ([`super::jobs`]): the letter the record
//! names in `dead_entry`, or for older records the letter of its entry.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::keys::{self, field, status};
use crate::flow::FlowJob;

/// A payload described without its values: a job's payload is the
/// provider's response, which may hold personal data, so `payhost jobs`
/// shows its size and top-level keys only, never the payload itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PayloadSummary {
    /// Length of the payload's JSON text, in bytes.
    pub bytes: usize,
    /// `object`, `array`, `string`, `number`, `boolean`, `null`, or
    /// `invalid` (not JSON).
    pub json_type: &'static str,
    /// The top-level keys of an object, in the payload's order.
    pub keys: Vec<String>,
}

impl PayloadSummary {
    pub fn of(payload: &str) -> PayloadSummary {
        let (json_type, keys) = match serde_json::from_str::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Object(map)) => ("object", map.keys().cloned().collect()),
            Ok(serde_json::Value::Array(_)) => ("array", Vec::new()),
            Ok(serde_json::Value::String(_)) => ("string", Vec::new()),
            Ok(serde_json::Value::Number(_)) => ("number", Vec::new()),
            Ok(serde_json::Value::Bool(_)) => ("boolean", Vec::new()),
            Ok(serde_json::Value::Null) => ("null", Vec::new()),
            Err(_) => ("invalid", Vec::new()),
        };
        PayloadSummary {
            bytes: payload.len(),
            json_type,
            keys,
        }
    }
}

/// One job record, for `payhost jobs --job`. Absent fields are `null` in
/// JSON (a record made for a refused entry has no job, say).
#[derive(Debug, Clone, Serialize)]
pub struct JobDetail {
    pub job_id: String,
    pub worker_id: String,
    pub run_id: Option<String>,
    pub flow: Option<String>,
    /// `response`, `error` or `event`: which kind of flow the job runs.
    pub outcome: Option<String>,
    pub context_id: Option<String>,
    pub caller_id: Option<String>,
    pub status: String,
    /// Starts since it was queued (or last replayed).
    pub attempts: u64,
    /// How many times an operator replayed it.
    pub replays: u64,
    pub last_error: Option<String>,
    /// The stream entry currently responsible for the job.
    pub entry: Option<String>,
    /// The consumer that last started it.
    pub consumer: Option<String>,
    /// Whether the publisher signed it (a job key MAC is in the record).
    pub signed: bool,
    /// The content hash of the plugin that ran it, once records carry one.
    pub plugin_hash: Option<String>,
    /// Unix milliseconds.
    pub created_at: Option<u64>,
    pub updated_at: Option<u64>,
    pub replayed_at: Option<u64>,
    /// Milliseconds until the record expires (terminal records only).
    pub expires_in_ms: Option<u64>,
    pub payload: Option<PayloadSummary>,
}

/// Reads job `job_id`'s record; `None` when there is none.
pub async fn job_detail(
    conn: &mut ConnectionManager,
    job_id: &str,
) -> redis::RedisResult<Option<JobDetail>> {
    let key = keys::job(job_id);
    let mut record: BTreeMap<String, String> = conn.hgetall(&key).await?;
    if record.is_empty() {
        return Ok(None);
    }
    let ttl: i64 = conn.pttl(&key).await?;
    let job: Option<serde_json::Value> = record
        .get(field::JOB)
        .and_then(|json| serde_json::from_str(json).ok());
    let from_job = |name: &str| {
        job.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    // Either form a job holds its payload in (`FlowJob`'s documentation).
    let payload = record
        .get(field::JOB)
        .and_then(|json| serde_json::from_str::<FlowJob>(json).ok())
        .map(|job| job.payload)
        .or_else(|| from_job("payload"))
        .map(|p| PayloadSummary::of(&p));
    let number = |name: &str| record.get(name).and_then(|v| v.parse::<u64>().ok());
    let (attempts, replays) = (number(field::ATTEMPTS), number(field::REPLAYS));
    let (created_at, updated_at, replayed_at) = (
        number(field::CREATED_AT),
        number(field::UPDATED_AT),
        number(field::REPLAYED_AT),
    );
    let mut take = |name: &str| record.remove(name).filter(|v| !v.is_empty());
    Ok(Some(JobDetail {
        job_id: job_id.to_string(),
        worker_id: take(field::WORKER_ID).unwrap_or_default(),
        run_id: take(field::RUN_ID),
        flow: take(field::FLOW).or_else(|| from_job("flow")),
        outcome: from_job("outcome"),
        context_id: from_job("context_id"),
        caller_id: from_job("caller_id"),
        status: take(field::STATUS).unwrap_or_default(),
        attempts: attempts.unwrap_or(0),
        replays: replays.unwrap_or(0),
        last_error: take(field::LAST_ERROR),
        entry: take(field::ENTRY),
        consumer: take(field::CONSUMER),
        signed: take(field::MAC).is_some(),
        plugin_hash: take(field::PLUGIN_HASH),
        created_at,
        updated_at,
        replayed_at,
        expires_in_ms: u64::try_from(ttl).ok(),
        payload,
    }))
}

/// `payhost jobs --job` for people.
pub fn render_job(job: &JobDetail) -> String {
    let mut out = String::new();
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |v: Option<u64>| v.map_or_else(|| "-".into(), utc_time);
    let _ = writeln!(out, "job {}", job.job_id);
    let rows: Vec<(&str, String)> = vec![
        ("status", job.status.clone()),
        (
            "attempts",
            if job.replays > 0 {
                format!(
                    "{} (since it was replayed; replays {})",
                    job.attempts, job.replays
                )
            } else {
                job.attempts.to_string()
            },
        ),
        ("last error", or_none(&job.last_error)),
        ("flow", or_none(&job.flow)),
        ("outcome", or_none(&job.outcome)),
        ("worker id", job.worker_id.clone()),
        ("run", or_none(&job.run_id)),
        ("context id", or_none(&job.context_id)),
        ("caller id", or_none(&job.caller_id)),
        ("entry", or_none(&job.entry)),
        ("consumer", or_none(&job.consumer)),
        ("signed", if job.signed { "yes" } else { "no" }.into()),
        ("plugin hash", or_none(&job.plugin_hash)),
        ("created", time(job.created_at)),
        ("updated", time(job.updated_at)),
        ("replayed", time(job.replayed_at)),
        (
            "expires",
            job.expires_in_ms
                .map_or_else(|| "-".into(), |ms| format!("in {}", human_duration(ms))),
        ),
        (
            "payload",
            job.payload.as_ref().map_or_else(
                || "-".into(),
                |p| {
                    if p.json_type == "object" {
                        format!("{} bytes, object with keys {}", p.bytes, p.keys.join(", "))
                    } else {
                        format!("{} bytes, {}", p.bytes, p.json_type)
                    }
                },
            ),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "  {name:<12}{value}");
    }
    out
}

/// One job in a run's list.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job_id: String,
    pub worker_id: String,
    pub flow: String,
    /// The record's status, or `gone` when the record was purged or expired.
    pub status: String,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub created_at: Option<u64>,
    pub updated_at: Option<u64>,
}

/// The jobs of one run, for `payhost jobs --run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run_id: String,
    pub total: usize,
    /// Jobs per status (only statuses that occur).
    pub counts: BTreeMap<String, usize>,
    /// Oldest first.
    pub jobs: Vec<JobRow>,
}

/// The status shown for a job of a run whose record is gone: purged, or
/// expired after the retention.
pub const GONE: &str = "gone";

type RowFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<u64>,
    Option<u64>,
);

/// Reads run `run_id`'s jobs; `None` when Redis knows no such run (never
/// queued a job, or its job set expired).
pub async fn run_view(
    conn: &mut ConnectionManager,
    run_id: &str,
) -> redis::RedisResult<Option<RunView>> {
    let ids: Vec<String> = conn.smembers(keys::run_jobs(run_id)).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("HMGET").arg(keys::job(id)).arg(&[
            field::WORKER_ID,
            field::FLOW,
            field::STATUS,
            field::ATTEMPTS,
            field::LAST_ERROR,
            field::CREATED_AT,
            field::UPDATED_AT,
        ]);
    }
    let rows: Vec<RowFields> = pipe.query_async(conn).await?;
    let mut jobs: Vec<JobRow> = ids
        .into_iter()
        .zip(rows)
        .map(
            |(job_id, (worker_id, flow, state, attempts, last_error, created_at, updated_at))| {
                JobRow {
                    job_id,
                    worker_id: worker_id.unwrap_or_default(),
                    flow: flow.unwrap_or_default(),
                    status: state.unwrap_or_else(|| GONE.into()),
                    attempts: attempts.unwrap_or(0),
                    last_error: last_error.filter(|e| !e.is_empty()),
                    created_at,
                    updated_at,
                }
            },
        )
        .collect();
    jobs.sort_by(|a, b| (a.created_at, &a.job_id).cmp(&(b.created_at, &b.job_id)));
    let mut counts = BTreeMap::new();
    for job in &jobs {
        *counts.entry(job.status.clone()).or_insert(0) += 1;
    }
    Ok(Some(RunView {
        run_id: run_id.to_string(),
        total: jobs.len(),
        counts,
        jobs,
    }))
}

/// `payhost jobs --run` for people.
pub fn render_run(run: &RunView) -> String {
    let mut out = String::new();
    let counts: Vec<String> = run.counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(
        out,
        "run {}: {} jobs ({})",
        run.run_id,
        run.total,
        counts.join(", ")
    );
    for job in &run.jobs {
        if job.status == GONE {
            let _ = writeln!(
                out,
                "  {}  {GONE:<8} (record purged, or expired after the retention)",
                job.job_id
            );
            continue;
        }
        let _ = write!(
            out,
            "  {}  {:<8} attempts {}  {}  worker {}",
            job.job_id, job.status, job.attempts, job.flow, job.worker_id
        );
        // A done job keeps the error of an earlier attempt in its record
        // (JSON shows it); in the table it would read as a failure.
        if let (Some(error), false) = (&job.last_error, job.status == status::DONE) {
            let _ = write!(out, "  last error: {error}");
        }
        out.push('\n');
    }
    out
}

/// One letter of a dead-letter stream, with what its job record says now.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub worker_id: String,
    /// The letter's id in `payhost:dead:{worker_id}`.
    pub letter_id: String,
    /// When it was dead-lettered (Unix milliseconds, from the letter id).
    pub dead_at: u64,
    /// The job the letter names (none for an entry without a usable id).
    pub job_id: Option<String>,
    /// The stream entry that was dead-lettered.
    pub entry: Option<String>,
    /// Why it was dead-lettered.
    pub last_error: String,
    /// From the job record, while it exists.
    pub flow: Option<String>,
    pub status: Option<String>,
    pub attempts: Option<u64>,
    pub run_id: Option<String>,
    /// Whether this letter is the letter of a job that is `dead` now, so
    /// `replay` and `purge` act on it. False for a refused entry that only
    /// names a job (a stale or injected duplicate), and for a letter whose
    /// record expired: those are only removed by `purge --all`.
    pub dead_job: bool,
    /// Whether `replay` can re-queue it: a dead job whose record holds the
    /// job (a record made for a refused entry holds none).
    pub replayable: bool,
}

/// The dead letters of one or every worker id, for `payhost jobs --dead`.
#[derive(Debug, Clone, Serialize)]
pub struct DeadList {
    /// Per worker id, oldest first; at most `limit` (the newest) each.
    pub dead_letters: Vec<DeadLetter>,
    /// Letters not shown because of the limit.
    pub not_shown: u64,
}

type LetterFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Reads the newest `limit` letters (all with `None`) of `worker_id`'s
/// dead-letter stream, or of every worker id's.
pub async fn dead_letters(
    conn: &mut ConnectionManager,
    worker_id: Option<&str>,
    limit: Option<usize>,
) -> redis::RedisResult<DeadList> {
    let mut ids: Vec<String> = match worker_id {
        Some(id) => vec![id.to_string()],
        None => conn.smembers(keys::workers()).await?,
    };
    ids.sort();
    let mut list = DeadList {
        dead_letters: Vec::new(),
        not_shown: 0,
    };
    for worker_id in ids {
        let dead = keys::dead(&worker_id);
        let mut letters: Vec<redis::streams::StreamId> = match limit {
            Some(n) => {
                let reply: redis::streams::StreamRangeReply =
                    conn.xrevrange_count(&dead, "+", "-", n).await?;
                let total: u64 = conn.xlen(&dead).await?;
                list.not_shown += total.saturating_sub(reply.ids.len() as u64);
                reply.ids.into_iter().rev().collect()
            }
            None => {
                let reply: redis::streams::StreamRangeReply = conn.xrange_all(&dead).await?;
                reply.ids
            }
        };
        if letters.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for letter in &letters {
            let job_id: String = letter.get(field::JOB_ID).unwrap_or_default();
            pipe.cmd("HMGET").arg(keys::job(&job_id)).arg(&[
                field::WORKER_ID,
                field::FLOW,
                field::STATUS,
                field::ATTEMPTS,
                field::RUN_ID,
                field::DEAD_ENTRY,
                field::ENTRY,
                field::JOB,
            ]);
        }
        let records: Vec<LetterFields> = pipe.query_async(conn).await?;
        for (letter, record) in letters.drain(..).zip(records) {
            let (owner, flow, state, attempts, run_id, dead_entry, current, job) = record;
            let job_id: Option<String> = letter.get(field::JOB_ID);
            let entry: Option<String> = letter.get(field::ENTRY);
            // The record's own letter: named by `dead_entry` or, for records
            // dead before that field existed, the letter of its current entry
            // (the same rule as the job store's scripts).
            let own = match &dead_entry {
                Some(named) => *named == letter.id,
                None => current.is_some() && current == entry,
            };
            let dead_job = job_id.is_some()
                && owner.as_deref() == Some(worker_id.as_str())
                && state.as_deref() == Some(status::DEAD)
                && own;
            list.dead_letters.push(DeadLetter {
                worker_id: worker_id.clone(),
                dead_at: letter
                    .id
                    .split('-')
                    .next()
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(0),
                letter_id: letter.id.clone(),
                job_id,
                entry,
                last_error: letter.get(field::LAST_ERROR).unwrap_or_default(),
                flow,
                status: state,
                attempts,
                run_id: run_id.filter(|r| !r.is_empty()),
                dead_job,
                replayable: dead_job && job.is_some_and(|j| !j.is_empty()),
            });
        }
    }
    Ok(list)
}

/// `payhost jobs --dead` for people.
pub fn render_dead(list: &DeadList) -> String {
    let mut out = String::new();
    if list.dead_letters.is_empty() {
        out.push_str("no dead letters\n");
    }
    let mut worker: Option<&str> = None;
    for letter in &list.dead_letters {
        if worker != Some(letter.worker_id.as_str()) {
            worker = Some(&letter.worker_id);
            let _ = writeln!(out, "dead letters of worker {}", letter.worker_id);
        }
        let what = match (&letter.job_id, letter.dead_job) {
            (Some(job_id), true) => format!(
                "{job_id}  {}  attempts {}{}",
                letter.flow.as_deref().unwrap_or("-"),
                letter.attempts.unwrap_or(0),
                letter
                    .run_id
                    .as_ref()
                    .map(|r| format!("  run {r}"))
                    .unwrap_or_default(),
            ),
            (Some(job_id), false) => format!(
                "{job_id}  (entry {} only; job {}; not replayable)",
                letter.entry.as_deref().unwrap_or("-"),
                letter.status.as_deref().unwrap_or(GONE),
            ),
            (None, _) => format!(
                "entry {} (no job id; not replayable)",
                letter.entry.as_deref().unwrap_or("-")
            ),
        };
        let _ = writeln!(
            out,
            "  {}  {what}: {}",
            utc_time(letter.dead_at),
            letter.last_error
        );
    }
    if list.not_shown > 0 {
        let _ = writeln!(
            out,
            "({} older dead letters not shown; see --limit)",
            list.not_shown
        );
    }
    out
}

/// Unix milliseconds as UTC ISO 8601 (`2026-12-01T17:48:01.123Z`).
pub fn utc_time(ms: u64) -> String {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000
    )
}

/// A duration in milliseconds, roughly, for people (`6d 23h`, `4m 10s`).
fn human_duration(ms: u64) -> String {
    let s = ms / 1_000;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3_600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_summary_names_keys_never_values() {
        let summary = PayloadSummary::of(r#"{"id":"cus_1","secret_note":"hunter2","n":3}"#);
        assert_eq!(summary.json_type, "object");
        assert_eq!(summary.keys, ["id", "secret_note", "n"]);
        let shown = serde_json::to_string(&summary).unwrap();
        assert!(!shown.contains("hunter2") && !shown.contains("cus_1"));
        assert_eq!(PayloadSummary::of("[1,2]").json_type, "array");
        assert_eq!(PayloadSummary::of("not json").json_type, "invalid");
    }

    #[test]
    fn utc_time_is_iso_8601() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_time(1_796_147_281_123), "2026-12-01T17:48:01.123Z");
    }
}
