//! Every Redis key and field name payhost uses, in one place.
//!
//! Both sides of the Redis queue (the process that publishes flow jobs and
//! the workers that run them) and `payhost jobs` build names only through
//! this module, so they cannot disagree. `docs/redis-protocol.md` describes
//! the protocol these names implement.
//!
//! Worker ids and job ids are embedded in key names; worker ids are checked
//! against [`is_valid_worker_id`] first so that a crafted id cannot address
//! another key.

/// Prefix of every key.
pub const PREFIX: &str = "payhost";

/// Consumer group every worker reads through.
pub const GROUP: &str = "workers";

/// Stream of flow jobs for one worker id.
pub fn stream(worker_id: &str) -> String {
    format!("{PREFIX}:stream:{worker_id}")
}

/// Dead-letter stream for one worker id.
pub fn dead(worker_id: &str) -> String {
    format!("{PREFIX}:dead:{worker_id}")
}

/// Hash holding one job's record (see the `field` constants).
pub fn job(job_id: &str) -> String {
    format!("{PREFIX}:job:{job_id}")
}

/// Set of the job ids a run caused, transitively.
pub fn run_jobs(run_id: &str) -> String {
    format!("{PREFIX}:run:{run_id}:jobs")
}

/// Hash of job counts by status for one worker id.
pub fn counts(worker_id: &str) -> String {
    format!("{PREFIX}:counts:{worker_id}")
}

/// List of the most recent failed or dead job ids for one worker id.
pub fn failures(worker_id: &str) -> String {
    format!("{PREFIX}:failures:{worker_id}")
}

/// Set of every worker id that has been sent a job.
pub fn workers() -> String {
    format!("{PREFIX}:workers")
}

/// A published plugin version's component bytes, by provider and content
/// hash (SHA-256, hex). Written once by `payhost plugin publish`, never
/// changed: the same hash always names the same bytes.
pub fn plugin_blob(provider: &str, hash: &str) -> String {
    format!("{PREFIX}:plugin:{provider}:{hash}")
}

/// The content hash the fleet's workers run for `provider`.
pub fn plugin_current(provider: &str) -> String {
    format!("{PREFIX}:plugin:{provider}:current")
}

/// The hashes that were current before, newest first: what
/// `payhost plugin rollback` returns to.
pub fn plugin_history(provider: &str) -> String {
    format!("{PREFIX}:plugin:{provider}:history")
}

/// How many recent failures [`failures`] keeps.
pub const FAILURES_KEPT: isize = 100;

/// Fields of a stream entry and of a job record. The Lua scripts in
/// [`super::jobs`] spell the same names; `names_are_stable` below pins them.
pub mod field {
    /// Stream entry and record: the job id (the record holds the rest).
    pub const JOB_ID: &str = "job_id";
    /// Record: the [`crate::flow::FlowJob`] as JSON, stored once.
    pub const JOB: &str = "job";
    /// Record: the id of the stream entry currently delivering the job.
    /// Any other entry naming the job is stale or injected, and refused.
    pub const ENTRY: &str = "entry";
    /// Record: HMAC-SHA256 of the job (hex), when the publisher has a job key.
    pub const MAC: &str = "mac";
    /// Record: the run that caused the job.
    pub const RUN_ID: &str = "run_id";
    /// Record: one of [`super::status`].
    pub const STATUS: &str = "status";
    /// Record: how many times a worker started the job.
    pub const ATTEMPTS: &str = "attempts";
    /// Record: the last error text (flow errors never contain secrets).
    pub const LAST_ERROR: &str = "last_error";
    /// Record: the consumer that last started the job.
    pub const CONSUMER: &str = "consumer";
    pub const WORKER_ID: &str = "worker_id";
    pub const FLOW: &str = "flow";
    /// Record: Unix milliseconds.
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// Record, while `dead`: the id of the job's own entry in the
    /// dead-letter stream, so replay and purge remove exactly that letter.
    pub const DEAD_ENTRY: &str = "dead_entry";
    /// Record: how many times an operator replayed the job (absent: never).
    pub const REPLAYS: &str = "replays";
    /// Record: Unix milliseconds of the last replay.
    pub const REPLAYED_AT: &str = "replayed_at";
    /// Record: content hash (SHA-256, hex) of the plugin version of the
    /// job's provider (`caller_id`) that ran the job's last attempt; written
    /// when the worker settles it (done, missing, failed or dead).
    pub const PLUGIN_HASH: &str = "plugin_hash";
}

/// The entry of [`counts`] for dead jobs an operator purged. Not a job
/// status (a purged job has no record left); it keeps the counts adding up
/// to every job ever queued.
pub const PURGED: &str = "purged";

/// Job states.
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    /// The last attempt failed; the job will be delivered again.
    pub const FAILED: &str = "failed";
    /// Delivered the maximum number of times, or refused; moved to the
    /// dead-letter stream.
    pub const DEAD: &str = "dead";
    /// The worker had no flow file for the job. Terminal, but listed with
    /// the failures: a flow deployed later runs the next such job.
    pub const MISSING: &str = "missing";
    pub const ALL: &[&str] = &[QUEUED, RUNNING, DONE, FAILED, DEAD, MISSING];

    /// Whether a job in this state will never run again.
    pub fn is_terminal(status: &str) -> bool {
        status == DONE || status == DEAD || status == MISSING
    }
}

/// Worker ids become part of key names: letters, digits, `-`, `_`, `.`.
pub fn is_valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(stream("worker-1"), "payhost:stream:worker-1");
        assert_eq!(dead("worker-1"), "payhost:dead:worker-1");
        assert_eq!(job("j1"), "payhost:job:j1");
        assert_eq!(run_jobs("r1"), "payhost:run:r1:jobs");
        assert_eq!(plugin_current("stripe"), "payhost:plugin:stripe:current");
        assert_eq!(plugin_history("stripe"), "payhost:plugin:stripe:history");
        assert_eq!(plugin_blob("stripe", "ab12"), "payhost:plugin:stripe:ab12");
        assert_eq!(field::PLUGIN_HASH, "plugin_hash");
        // The Lua scripts in `jobs` write these literally.
        assert_eq!(
            [field::JOB_ID, field::JOB, field::ENTRY, field::MAC, GROUP],
            ["job_id", "job", "entry", "mac", "workers"]
        );
        assert_eq!(
            [
                field::DEAD_ENTRY,
                field::REPLAYS,
                field::REPLAYED_AT,
                PURGED
            ],
            ["dead_entry", "replays", "replayed_at", "purged"]
        );
    }

    #[test]
    fn worker_ids_cannot_reach_other_keys() {
        assert!(is_valid_worker_id("worker-1"));
        assert!(!is_valid_worker_id("a:b"));
        assert!(!is_valid_worker_id("a b"));
        assert!(!is_valid_worker_id(""));
    }
}
