//! `payhost jobs replay|purge`: which dead jobs an operator named, then
//! each one through the job store.
//!
//! This module only selects: the jobs given by id, a run's jobs that are
//! dead, or every dead letter of a worker id. Each job then goes through
//! [`JobStore::replay`] or [`JobStore::purge`], one atomic script that
//! checks again that the job is dead, so a job replayed by someone else
//! between selection and action is skipped, never replayed twice, and
//! repeating a command does nothing. The [`ActionReport`] says what was done
//! and what was left alone, and why.

use std::fmt::Write as _;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::jobs::{JobStore, Operated};
use super::keys::{self, field, status};
use super::view::dead_letters;

/// Which dead jobs `payhost jobs replay|purge` acts on.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These jobs, by id.
    Jobs(Vec<String>),
    /// The dead jobs of one run.
    Run(String),
    /// Every dead letter of one worker id.
    Worker(String),
}

impl Selection {
    /// `job`, `run` or `worker`, and what that names.
    fn describe(&self) -> (&'static str, String) {
        match self {
            Selection::Jobs(ids) => ("job", ids.join(", ")),
            Selection::Run(run) => ("run", run.clone()),
            Selection::Worker(worker) => ("worker", worker.clone()),
        }
    }
}

/// A job replay or purge acted on.
#[derive(Debug, Clone, Serialize)]
pub struct ActedJob {
    pub job_id: String,
    pub worker_id: String,
    pub flow: Option<String>,
    /// Replay: the new stream entry.
    pub entry: Option<String>,
    /// Replay: attempts before it was reset to 0.
    pub attempts_before: Option<u32>,
}

/// A named job that was left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedJob {
    pub job_id: String,
    /// The job's status, or `gone` (no record) or `no_job` (a record made
    /// for a refused entry, which holds no job to run).
    pub status: String,
    pub reason: String,
}

/// What `payhost jobs replay|purge` did.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    /// `replay` or `purge`.
    pub action: &'static str,
    /// How the jobs were chosen: `job` (by id), `run` or `worker`.
    pub selected_by: &'static str,
    /// The job ids (comma-separated), the run id or the worker id.
    pub scope: String,
    /// The jobs replayed or purged.
    pub jobs: Vec<ActedJob>,
    /// Jobs named by id (or found dead, then changed by someone else) that
    /// were left alone.
    pub skipped: Vec<SkippedJob>,
    /// With `--run`: the run's jobs that were not dead (left alone).
    pub not_dead: usize,
    /// With `--worker-id --all`: dead letters that are no dead job's
    /// (refused entries, records expired): removed by purge, kept by replay.
    pub other_letters: u64,
    /// Whether those were removed (purge) rather than kept (replay).
    pub other_letters_removed: bool,
}

/// Which operator transition to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replay,
    Purge,
}

/// Applies `action` to the dead jobs `selection` names, each through the
/// job store's atomic transition (which checks, again, that the job is
/// dead: a job selected here and replayed by someone else meanwhile is
/// skipped, not replayed twice).
pub async fn act(
    store: &JobStore,
    conn: &mut ConnectionManager,
    action: Action,
    selection: &Selection,
) -> anyhow::Result<ActionReport> {
    let (selected_by, scope) = selection.describe();
    let mut report = ActionReport {
        action: match action {
            Action::Replay => "replay",
            Action::Purge => "purge",
        },
        selected_by,
        scope,
        jobs: Vec::new(),
        skipped: Vec::new(),
        not_dead: 0,
        other_letters: 0,
        other_letters_removed: false,
    };
    let candidates: Vec<String> = match selection {
        Selection::Jobs(ids) => ids.clone(),
        Selection::Run(run_id) => {
            let ids: Vec<String> = conn.smembers(keys::run_jobs(run_id)).await?;
            if ids.is_empty() {
                anyhow::bail!(
                    "no run {run_id} in Redis (unknown id, or its job set expired after the retention)"
                );
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGET").arg(keys::job(id)).arg(field::STATUS);
            }
            let states: Vec<Option<String>> = pipe.query_async(conn).await?;
            let mut dead = Vec::new();
            for (id, state) in ids.into_iter().zip(states) {
                if state.as_deref() == Some(status::DEAD) {
                    dead.push(id);
                } else {
                    report.not_dead += 1;
                }
            }
            dead.sort();
            dead
        }
        Selection::Worker(worker_id) => {
            let list = dead_letters(conn, Some(worker_id), None).await?;
            let mut jobs = Vec::new();
            let mut others = Vec::new();
            for letter in list.dead_letters {
                match letter.job_id {
                    Some(job_id) if letter.dead_job => jobs.push(job_id),
                    _ => others.push(letter.letter_id),
                }
            }
            report.other_letters = others.len() as u64;
            if action == Action::Purge {
                // Letters that are no dead job's can never be replayed:
                // purging a worker id's dead letters clears them too.
                store.remove_letters(worker_id, &others).await?;
                report.other_letters_removed = !others.is_empty();
            }
            jobs
        }
    };
    for job_id in candidates {
        let (worker_id, flow): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys::job(&job_id))
            .arg(&[field::WORKER_ID, field::FLOW])
            .query_async(conn)
            .await?;
        let outcome = match action {
            Action::Replay => store.replay(&job_id).await?,
            Action::Purge => store.purge(&job_id).await?,
        };
        let acted = |entry: Option<String>, attempts_before: Option<u32>| ActedJob {
            job_id: job_id.clone(),
            worker_id: worker_id.clone().unwrap_or_default(),
            flow: flow.clone(),
            entry,
            attempts_before,
        };
        let skipped = |status: &str, reason: String| SkippedJob {
            job_id: job_id.clone(),
            status: status.to_string(),
            reason,
        };
        match outcome {
            Operated::Replayed {
                entry,
                attempts_before,
            } => report.jobs.push(acted(Some(entry), Some(attempts_before))),
            Operated::Purged => report.jobs.push(acted(None, None)),
            Operated::NotDead(state) => report.skipped.push(skipped(
                &state,
                format!(
                    "it is {state}, not dead{}",
                    if action == Action::Replay && state != status::DONE {
                        " (replayed already?)"
                    } else {
                        ""
                    }
                ),
            )),
            Operated::Gone => report.skipped.push(skipped(
                "gone",
                "no job record (purged, expired after the retention, or never queued)".into(),
            )),
            Operated::NoJob => report.skipped.push(skipped(
                "no_job",
                "its record was made for a refused stream entry and holds no job to run \
                 (purge removes it)"
                    .into(),
            )),
        }
    }
    Ok(report)
}

/// `payhost jobs replay|purge` for people: what was done, then what was not.
pub fn render_action(report: &ActionReport) -> String {
    let mut out = String::new();
    let verb = match report.action {
        "replay" => "replayed",
        _ => "purged",
    };
    let n = report.jobs.len();
    let _ = write!(
        out,
        "{verb} {} dead job{}",
        if n == 0 {
            "no".to_string()
        } else {
            n.to_string()
        },
        if n == 1 { "" } else { "s" },
    );
    if report.selected_by != "job" {
        let _ = write!(out, " of {} {}", report.selected_by, report.scope);
    }
    out.push_str(if n == 0 { "\n" } else { ":\n" });
    for job in &report.jobs {
        let _ = write!(
            out,
            "  {}  {}  worker {}",
            job.job_id,
            job.flow.as_deref().unwrap_or("-"),
            job.worker_id
        );
        if let (Some(entry), Some(before)) = (&job.entry, job.attempts_before) {
            let _ = write!(out, "  queued as entry {entry} (attempts {before} -> 0)");
        }
        out.push('\n');
    }
    for job in &report.skipped {
        let _ = writeln!(out, "  {}  left alone: {}", job.job_id, job.reason);
    }
    if report.not_dead > 0 {
        let _ = writeln!(
            out,
            "  {} other job{} of the run not dead: left alone",
            report.not_dead,
            if report.not_dead == 1 { "" } else { "s" }
        );
    }
    if report.other_letters > 0 {
        let _ = writeln!(
            out,
            "  {} dead letter{} of refused entries or expired records {}",
            report.other_letters,
            if report.other_letters == 1 { "" } else { "s" },
            if report.other_letters_removed {
                "removed"
            } else {
                "kept (not replayable; `payhost jobs purge --worker-id W --all` removes them)"
            }
        );
    }
    out
}
