//! The Redis job store: every state change of a flow job, each one Lua script.
//!
//! This module owns the job lifecycle in Redis. Nothing else writes a job
//! record, a stream entry, the counts or the failures list; `payhost jobs`
//! only reads them ([`super::status`]). `docs/redis-protocol.md` is the
//! operator's view of the same protocol.
//!
//! # Keys (names from [`super::keys`])
//!
//! - `payhost:job:{job_id}` (hash): the record. It holds the job once (the
//!   `job` JSON), its `status`, `attempts`, `entry` (the id of the stream
//!   entry currently responsible for it), `consumer`, `last_error`, `mac`
//!   (when the publisher has a job key) and timestamps.
//! - `payhost:stream:{worker_id}` (stream, group `workers`): one entry per
//!   delivery, carrying only `job_id`. The record says which entry is current,
//!   so a duplicated or injected entry is recognised and refused.
//! - `payhost:dead:{worker_id}` (stream): dead letters, `job_id`, `entry`,
//!   `last_error`. A dead record names its own letter (`dead_entry`);
//!   letters of refused duplicates only name the job.
//! - `payhost:counts:{worker_id}` (hash), `payhost:failures:{worker_id}`
//!   (list, the last [`keys::FAILURES_KEPT`] ids), `payhost:workers` (set),
//!   `payhost:run:{run_id}:jobs` (set).
//!
//! # Lifecycle
//!
//! `enqueue` (`queued`) → `start` (`running`, `attempts + 1`) → one of
//! `finish` (`done`, or `missing` when no flow file exists), `requeue`
//! (`failed`: a new entry is added and the old one acknowledged) or
//! `dead_letter` (`dead`). `start` past `max_deliveries` dead-letters.
//!
//! An operator (`payhost jobs replay|purge`) takes a job out of `dead`:
//! `replay` (`queued` again, on a new entry, with `attempts` back to 0 so it
//! gets `max_deliveries` starts again; `replays + 1`) or `purge` (record
//! deleted, counted as `purged`). Both delete the job's own dead letter,
//! which the record names (`dead_entry`) while it is dead.
//!
//! # Guarantees
//!
//! - **One round trip, atomic.** Each transition is one `EVALSHA` of a script
//!   below: Redis runs it without interleaving anything else. ENQUEUE, START
//!   and FINISH take a list of jobs, so one script does a whole batch: the
//!   keys the jobs share are checked once and the counts change with one
//!   HINCRBY per status.
//! - **A job's text never enters Lua.** Lua hashes every byte of every
//!   string it is given, about 2 µs for a 1.3 KB job, and a job's text
//!   would go in twice (ENQUEUE's argument, START's reply). So ENQUEUE runs
//!   in a MULTI after an HSETNX of each text into its record, and START is
//!   pipelined with an HGET of each: still one round trip, and a record is
//!   laid out as before (see [`JobStore::enqueue_many`]). redis-server's
//!   CPU a job in the bench: 23.5-24.5 µs before, 21-22 µs after.
//! - **Nothing half-written.** Lua does not roll back, so every script first
//!   checks the type of every key it may write (TYPE, or for a job record the
//!   HMGET that reads it, which fails on another type) and, on a mismatch,
//!   returns an error naming the key before its first write (ENQUEUE
//!   first deletes the texts its MULTI wrote into records that are no job,
//!   so a refused batch leaves nothing). Such an error is permanent
//!   (it cannot succeed by retrying) and is returned as a [`StoreError`];
//!   only connection errors are retried, with backoff.
//! - **Idempotent.** `enqueue` of an existing job id adds nothing. `start`,
//!   `finish`, `requeue` and `dead_letter` check the record's status and
//!   current entry id, so a call repeated after a lost reply (or by a second
//!   worker that also ran a reclaimed job) does not apply twice. `replay`
//!   and `purge` apply to a `dead` job only: repeated, they do nothing.
//! - **Retention.** A terminal record (`done`, `missing`, `dead`) expires
//!   after the retention (default 7 days, `--retention`), and so does a
//!   run's job set after its last job was added. Workers trim their stream
//!   of acknowledged entries ([`JobStore::trim`]): below the oldest pending
//!   entry, never a pending or undelivered one.
//! - **Leases.** [`JobStore::renew`] renews only the entries still pending
//!   with the renewing consumer, so it never takes a job back from a worker
//!   that claimed it after a lapse.
//! - **Jobs are checked before they run** ([`super::trust`]): only
//!   response, error and event flows, only for the stream's worker id, and
//!   with a valid HMAC-SHA256 when the worker has a job key.
//!
//! No secret is written: a job holds ids, the flow name and the provider's
//! payload; the job key never leaves the process (only MACs made with it do).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, RetryMethod, Script};

use super::keys;
use crate::flow::FlowJob;

/// A store operation that cannot succeed by retrying (a key of the wrong
/// type, a script error). The text names the key or the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Whether a Redis error may go away by itself (connection lost, server
/// loading or restarting). Error replies (WRONGTYPE, a script error) never do.
pub fn is_transient(err: &RedisError) -> bool {
    !matches!(err.retry_method(), RetryMethod::NoRetry)
}

/// Runs `op` until it succeeds or fails permanently. Connection errors are
/// retried with backoff (up to 1 s between tries), so a restarted
/// redis-server delays work but loses none; any other error is returned,
/// prefixed with `what`.
pub async fn with_retry<T, F, Fut>(what: &str, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    let mut delay = Duration::from_millis(50);
    let mut failures = 0u32;
    loop {
        match op().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!("Redis is back; {what} succeeded after {failures} failures");
                }
                return Ok(value);
            }
            Err(err) if is_transient(&err) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!("Redis unavailable for {what} ({err}); retrying");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(err) => return Err(permanent(what, &err)),
        }
    }
}

/// A permanent error of `what`: our scripts' own messages as they are,
/// Redis's with its code.
fn permanent(what: &str, err: &RedisError) -> StoreError {
    StoreError(match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{what}: {code} {detail}"),
        _ => format!("{what}: {err}"),
    })
}

/// Element `i` of a script's array reply as text; empty when it is missing
/// or not a string.
fn reply_text(reply: &[redis::Value], i: usize) -> String {
    reply
        .get(i)
        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        .unwrap_or_default()
}

/// A START_ONE reply (see the scripts) as a [`Start`]; `job_json` is the
/// record's `job`, read beside the script ('' when it has none). A job to
/// run is one string, `<attempts> <length of mac> <mac><run_id>`: one value
/// to read instead of a four-element array (the worker's reply parser spends
/// about a thousand instructions a value); the others are arrays.
fn start_reply(reply: redis::Value, job_id: &str, job_json: String) -> Result<Start, StoreError> {
    let unexpected = |what: &dyn std::fmt::Debug| {
        StoreError(format!("starting job {job_id}: unexpected reply {what:?}"))
    };
    let reply = match reply {
        redis::Value::BulkString(run) => {
            return run_reply(&run, job_json)
                .ok_or_else(|| unexpected(&String::from_utf8_lossy(&run)));
        }
        redis::Value::Array(reply) => reply,
        other => return Err(unexpected(&other)),
    };
    let text = |i: usize| reply_text(&reply, i);
    let number = |i: usize| -> u32 {
        reply
            .get(i)
            .and_then(|v| redis::from_redis_value_ref::<u32>(v).ok())
            .unwrap_or(0)
    };
    Ok(match text(0).as_str() {
        "exhausted" => Start::Exhausted {
            attempts: number(1),
        },
        "refused" => Start::Refused(text(1)),
        other => return Err(unexpected(&other)),
    })
}

/// `<attempts> <length of mac> <mac><run_id>` (START_ONE's reply for a job
/// to run) as the started job; `None` when it is not of that form. As
/// leniently as the record allows: fields that are no number or no UTF-8
/// (anyone who can write to Redis can write them) read as 0 and absent, so
/// one such record does not fail its whole batch.
fn run_reply(run: &[u8], job_json: String) -> Option<Start> {
    let mut parts = run.splitn(3, |&b| b == b' ');
    let (attempts, mac_len, rest) = (parts.next()?, parts.next()?, parts.next()?);
    fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
        std::str::from_utf8(bytes).ok()?.parse().ok()
    }
    let mac_len: usize = number(mac_len)?;
    let (mac, run_id) = (rest.get(..mac_len)?, rest.get(mac_len..)?);
    let optional = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(Start::Run(StartedJob {
        attempts: number(attempts).unwrap_or(0),
        job_json,
        mac: optional(mac),
        run_id: optional(run_id),
    }))
}

/// Job ids become part of key names: the same characters as worker ids.
pub fn is_valid_job_id(id: &str) -> bool {
    keys::is_valid_worker_id(id)
}

/// A started job, for the worker to check ([`super::trust`])
/// and run.
#[derive(Debug)]
pub struct StartedJob {
    pub attempts: u32,
    pub job_json: String,
    pub mac: Option<String>,
    pub run_id: Option<String>,
}

/// The answer of [`JobStore::start`].
#[derive(Debug)]
pub enum Start {
    /// Marked `running`: run it (once [`super::trust`] allows).
    Run(StartedJob),
    /// Started more than `max_deliveries` times: dead-letter it.
    Exhausted { attempts: u32 },
    /// The entry does not designate a job this worker may start (no record,
    /// another worker's record, a stale or duplicated entry, a finished job).
    Refused(String),
}

/// How a job that ran ended, for [`JobStore::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Done,
    /// No flow file for the job; `why` names the missing file.
    Missing {
        why: String,
    },
}

impl Finish {
    /// The status it leaves the job in, and the error it records (empty
    /// for `Done`): FINISH's `to` and `why`.
    fn status(&self) -> (&'static str, &str) {
        match self {
            Finish::Done => (keys::status::DONE, ""),
            Finish::Missing { why } => (keys::status::MISSING, why.as_str()),
        }
    }
}

/// Shared by every script: key type checks before any write, the counts, and
/// the failures list (the one place it is written).
const PRELUDE: &str = r#"
local function wrong_type(key, t, wanted)
  return redis.error_reply('WRONGTYPE key ' .. key .. ' holds a ' .. t ..
    ', but payhost keeps a ' .. wanted .. ' there (nothing was written; fix or delete the key)')
end
local function check_types(wanted)
  for _, w in ipairs(wanted) do
    local t = redis.call('TYPE', w[1])['ok']
    if t ~= 'none' and t ~= w[2] then return wrong_type(w[1], t, w[2]) end
  end
  return nil
end
-- HMGET of a hash whose type was not checked. A key of another type makes
-- HMGET fail; then the error (nil, reply) is check_types's. Scripts read
-- every such key before their first write, so this check costs no call of
-- its own and still writes nothing half-way.
local function read_hash(key, fields)
  local r = redis.pcall('HMGET', key, unpack(fields))
  if r['err'] then return nil, wrong_type(key, redis.call('TYPE', key)['ok'], 'hash') end
  return r
end
-- read_hash of every record from KEYS[first] on, all before the first write:
-- the records by key index, or nil and the first error.
local function read_records(first, fields)
  local records = {}
  for i = first, #KEYS do
    local r, bad = read_hash(KEYS[i], fields)
    if bad then return nil, bad end
    records[i] = r
  end
  return records
end
-- `r` as read before the batch's first write, unless `job` came earlier in
-- the batch (`seen`): then read again, so the second sees the first's writes.
local function current(seen, job, r, fields)
  if seen[job] then r = redis.call('HMGET', job, unpack(fields)) end
  seen[job] = true
  return r
end
local function move(counts, from, to)
  if from then redis.call('HINCRBY', counts, from, -1) end
  redis.call('HINCRBY', counts, to, 1)
end
-- A batch's count changes, added up (status -> change), then written with
-- one HINCRBY per status that changed.
local function tally(moves, from, to)
  if from then moves[from] = (moves[from] or 0) - 1 end
  moves[to] = (moves[to] or 0) + 1
end
local function apply_tally(counts, moves)
  for status, change in pairs(moves) do
    if change ~= 0 then redis.call('HINCRBY', counts, status, change) end
  end
end
local function remember_failure(failures, job_id)
  redis.call('LPUSH', failures, job_id)
  redis.call('LTRIM', failures, 0, FAILURES_KEPT - 1)
end
local function terminal(status)
  return status == 'done' or status == 'dead' or status == 'missing'
end
-- For the transitions out of `running` (REQUEUE): KEYS are job, stream,
-- counts, failures. Nil when the job (KEYS[1]) is running from `entry`;
-- otherwise the reply: an error for a key of the wrong type, or 0 after
-- acknowledging the stale entry (its work is over either way).
local function leaving_running(entry)
  local err = check_types({{KEYS[1], 'hash'}, {KEYS[2], 'stream'}, {KEYS[3], 'hash'},
    {KEYS[4], 'list'}})
  if err then return err end
  local r = redis.call('HMGET', KEYS[1], 'status', 'entry')
  if r[1] ~= 'running' or r[2] ~= entry then
    redis.call('XACK', KEYS[2], 'workers', entry)
    return 0
  end
  return nil
end
"#;

/// New jobs of one worker id, in one round trip. The jobs' texts are not
/// among the arguments: in the same MULTI, just before this script, the
/// caller HSETNXes each into its record's `job` field, because a string
/// given to Lua is hashed byte by byte (in redis-server's Lua, ~2 µs for a
/// 1.3 KB job, once as an argument here and once as START's reply; see
/// [`JobStore::enqueue_many`]). So a record may hold its `job` alone when
/// this script runs; it is a job only once it has a `status`.
/// KEYS: stream, counts, workers, then for each job its record and its
/// run's job set ('' when it has no run).
/// ARGV: worker_id, now, retention_ms, then for each job its job_id, flow,
/// run_id and mac ('' for none).
/// Every key is read or type-checked before the first write; when one is of
/// the wrong type, the records that hold only the `job` of this MULTI are
/// deleted again, so a refused batch leaves nothing behind. Returns, for
/// each job in order, 1 when added and 0 when a job with its id exists
/// (nothing is written for it; its `job` stays as it was).
const ENQUEUE: &str = r#"
local n = (#KEYS - 3) / 2
-- A refused batch: remove the texts this MULTI wrote into records that are
-- no job (no status), then return the error.
local function refuse(err)
  for i = 1, n do
    local job = KEYS[2 + 2 * i]
    if redis.call('TYPE', job)['ok'] == 'hash' and redis.call('HEXISTS', job, 'status') == 0 then
      redis.call('DEL', job)
    end
  end
  return err
end
local wanted, seen_runs = {{KEYS[1], 'stream'}, {KEYS[2], 'hash'}, {KEYS[3], 'set'}}, {}
for i = 1, n do
  local run = KEYS[3 + 2 * i]
  if run ~= '' and not seen_runs[run] then
    seen_runs[run] = true
    table.insert(wanted, {run, 'set'})
  end
end
local err = check_types(wanted)
if err then return refuse(err) end
-- A job exists when its record has a status (read_hash also checks the type).
local fresh, seen = {}, {}
for i = 1, n do
  local job = KEYS[2 + 2 * i]
  local r, bad = read_hash(job, {'status'})
  if bad then return refuse(bad) end
  fresh[i] = not r[1] and not seen[job]
  seen[job] = true
end
local replies, added, runs = {}, 0, {}
for i = 1, n do
  replies[i] = 0
  if fresh[i] then
    local job, run, a = KEYS[2 + 2 * i], KEYS[3 + 2 * i], 3 + (i - 1) * 4
    local job_id, mac = ARGV[a + 1], ARGV[a + 4]
    local entry = redis.call('XADD', KEYS[1], '*', 'job_id', job_id)
    local record = {'job_id', job_id, 'worker_id', ARGV[1], 'flow', ARGV[a + 2],
      'run_id', ARGV[a + 3], 'status', 'queued', 'attempts', 0,
      'entry', entry, 'created_at', ARGV[2], 'updated_at', ARGV[2]}
    if mac ~= '' then
      table.insert(record, 'mac')
      table.insert(record, mac)
    end
    redis.call('HSET', job, unpack(record))
    if run ~= '' then
      redis.call('SADD', run, job_id)
      runs[run] = true
    end
    added = added + 1
    replies[i] = 1
  end
end
if added > 0 then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'queued', added)
  for run in pairs(runs) do redis.call('PEXPIRE', run, ARGV[3]) end
end
return replies
"#;

/// The fields START reads of each record, in START_ONE's order. Not `job`:
/// the caller reads it with HGET in the same round trip, outside Lua (see
/// ENQUEUE for why).
const START_FIELDS: &str = r#"
local START_FIELDS = {'worker_id', 'entry', 'status', 'consumer', 'attempts', 'mac', 'run_id'}
"#;

/// The start of one job: `job` is its key, `r` its START_FIELDS, the rest
/// the values START documents; count changes go to `moves`.
/// Returns run(attempts, r) for a job to run (see `start_reply`),
/// {'exhausted', attempts} or {'refused', reason}.
const START_ONE: &str = r#"
-- A job to run: one string, `<attempts> <length of mac> <mac><run_id>`.
local function run(attempts, r)
  local mac = r[6] or ''
  return string.format('%d %d %s%s', attempts, #mac, mac, r[7] or '')
end
local function start_one(job, r, moves, worker_id, entry, consumer, max, now)
  local any = false
  for i = 1, #START_FIELDS do any = any or r[i] end
  if not any then
    return {'refused', 'no job record ' .. job}
  end
  if r[1] ~= worker_id then
    return {'refused', 'job record ' .. job .. ' belongs to worker id ' .. tostring(r[1])}
  end
  -- A record with no entry (written before entries were recorded) is bound to
  -- the first entry that starts it; any other entry is refused from then on.
  if r[2] and r[2] ~= entry then
    return {'refused', 'stream entry ' .. entry .. ' is not the current entry of ' ..
      job .. ' (' .. tostring(r[2]) .. ')'}
  end
  local status = r[3]
  if terminal(status) then
    return {'refused', 'job ' .. job .. ' is already ' .. status}
  end
  if status == 'running' and r[4] == consumer then
    -- Our own start, repeated after a lost reply: already applied.
    return run(tonumber(r[5]) or 1, r)
  end
  local attempts = (tonumber(r[5]) or 0) + 1
  if attempts > tonumber(max) then
    redis.call('HSET', job, 'attempts', attempts)
    return {'exhausted', attempts}
  end
  redis.call('HSET', job, 'status', 'running', 'consumer', consumer, 'entry', entry,
    'attempts', attempts, 'updated_at', now)
  tally(moves, status, 'running')
  return run(attempts, r)
end
"#;

/// Every entry one read brought, in one round trip: KEYS: counts, then each
/// job. ARGV: worker_id, consumer, max_deliveries, now, then each job's
/// entry. Every record is read (and so its type checked) before the first
/// write; the reply is START_ONE's for each job, in order.
const START: &str = r#"
local err = check_types({{KEYS[1], 'hash'}})
if err then return err end
local records, bad = read_records(2, START_FIELDS)
if bad then return bad end
local replies, moves, seen = {}, {}, {}
for i = 2, #KEYS do
  local job = KEYS[i]
  local r = current(seen, job, records[i], START_FIELDS)
  replies[i - 1] = start_one(job, r, moves, ARGV[1], ARGV[3 + i], ARGV[2], ARGV[3], ARGV[4])
end
apply_tally(KEYS[1], moves)
return replies
"#;

/// Jobs that ended (`done` or `missing`), in one round trip: KEYS: stream,
/// counts, failures, then each job. ARGV: now, retention_ms, then for each
/// job its job_id, entry, to ('done' or 'missing'), why and plugin_hash
/// ('' for none). Every key is read or type-checked before the first write;
/// every entry is acknowledged (with one XACK), since its work is over
/// either way. Returns how many were applied: the others already were (or
/// their entry is no longer the job's). One number, not one a job: the
/// worker reads nothing more, and each value of a reply costs it to parse.
const FINISH: &str = r#"
local err = check_types({{KEYS[1], 'stream'}, {KEYS[2], 'hash'}, {KEYS[3], 'list'}})
if err then return err end
local fields = {'status', 'entry'}
local records, bad = read_records(4, fields)
if bad then return bad end
local applied, moves, acks, seen = 0, {}, {}, {}
for i = 4, #KEYS do
  local job, a = KEYS[i], 2 + (i - 4) * 5
  local job_id, entry, to, why, hash = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
    ARGV[a + 5]
  local r = current(seen, job, records[i], fields)
  table.insert(acks, entry)
  if r[1] == 'running' and r[2] == entry then
    local record = {'status', to, 'updated_at', ARGV[1]}
    if hash ~= '' then
      table.insert(record, 'plugin_hash')
      table.insert(record, hash)
    end
    if to == 'missing' then
      table.insert(record, 'last_error')
      table.insert(record, why)
      remember_failure(KEYS[3], job_id)
    end
    redis.call('HSET', job, unpack(record))
    redis.call('PEXPIRE', job, ARGV[2])
    tally(moves, 'running', to)
    applied = applied + 1
  end
end
apply_tally(KEYS[2], moves)
if #acks > 0 then redis.call('XACK', KEYS[1], 'workers', unpack(acks)) end
return applied
"#;

/// KEYS: job, stream, counts, failures. ARGV: job_id, entry, error, now,
/// plugin_hash ('' for none).
/// Marks the job `failed`, acknowledges its entry and adds a new one.
const REQUEUE: &str = r#"
local stop = leaving_running(ARGV[2])
if stop then return stop end
local entry = redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'failed', 'last_error', ARGV[3], 'entry', entry,
  'updated_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'plugin_hash', ARGV[5]) end
move(KEYS[3], 'running', 'failed')
remember_failure(KEYS[4], ARGV[1])
redis.call('XACK', KEYS[2], 'workers', ARGV[2])
return 1
"#;

/// KEYS: job, stream, dead, counts, failures.
/// ARGV: job_id, worker_id, entry, reason, now, retention_ms, plugin_hash
/// ('' when no flow ran: only a job that ran names a plugin version).
/// - No record (an injected entry): a `dead` record is made so the refusal
///   shows in `payhost jobs`.
/// - A record that is not this entry's (another worker's, or another entry
///   is current): only the entry is dead-lettered; the record is left alone,
///   so an injected entry cannot kill someone else's job.
/// - Otherwise the job becomes `dead`.
///
/// A record that becomes `dead` names its dead letter (`dead_entry`), so
/// REPLAY and PURGE remove that letter and no other.
///
/// Returns 'dead', 'entry' or 'already'.
const DEAD: &str = r#"
local err = check_types({{KEYS[1], 'hash'}, {KEYS[2], 'stream'}, {KEYS[3], 'stream'},
  {KEYS[4], 'hash'}, {KEYS[5], 'list'}})
if err then return err end
local function bury()
  local letter = redis.call('XADD', KEYS[3], '*', 'job_id', ARGV[1], 'entry', ARGV[3],
    'last_error', ARGV[4])
  redis.call('XACK', KEYS[2], 'workers', ARGV[3])
  return letter
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'job_id', ARGV[1], 'worker_id', ARGV[2], 'status', 'dead',
    'attempts', 0, 'entry', ARGV[3], 'last_error', ARGV[4], 'created_at', ARGV[5],
    'updated_at', ARGV[5])
  move(KEYS[4], false, 'dead')
  remember_failure(KEYS[5], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('HSET', KEYS[1], 'dead_entry', bury())
  return 'dead'
end
local r = redis.call('HMGET', KEYS[1], 'worker_id', 'entry', 'status')
if r[1] ~= ARGV[2] or (r[2] and r[2] ~= ARGV[3]) then
  bury()
  return 'entry'
end
if terminal(r[3]) then
  redis.call('XACK', KEYS[2], 'workers', ARGV[3])
  return 'already'
end
redis.call('HSET', KEYS[1], 'status', 'dead', 'last_error', ARGV[4], 'updated_at', ARGV[5])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'plugin_hash', ARGV[7]) end
move(KEYS[4], r[3], 'dead')
remember_failure(KEYS[5], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[1], 'dead_entry', bury())
return 'dead'
"#;

/// The operator's transitions out of `dead` (REPLAY, PURGE) share this.
/// `KEYS[1]` is the job, `KEYS[2]` the dead-letter stream; `ARGV[1]` the
/// job id, `ARGV[2]` the worker id, `ARGV[3]` the run id the caller read
/// ('' for none).
/// Returns nil and the record's fields when the job is this worker id's,
/// still in that run, and `dead`; otherwise the reply: {'gone'} (no record:
/// purged, expired or never queued), {'changed'} (the record is not the one
/// the caller read; read it again), or {'not_dead', status}.
const OPERATOR: &str = r#"
local function dead_job(more_keys)
  local wanted = {{KEYS[1], 'hash'}, {KEYS[2], 'stream'}}
  for _, k in ipairs(more_keys) do table.insert(wanted, k) end
  local err = check_types(wanted)
  if err then return err end
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
  local r = redis.call('HMGET', KEYS[1], 'worker_id', 'run_id', 'status', 'dead_entry', 'entry',
    'job', 'attempts')
  if r[1] ~= ARGV[2] or (r[2] or '') ~= ARGV[3] then return {'changed'} end
  if r[3] ~= 'dead' then return {'not_dead', tostring(r[3])} end
  return nil, r
end
-- The job's own letter in the dead-letter stream: the one the record names
-- or, for a record dead-lettered before `dead_entry` was kept, the letter
-- with its job id and current entry (a scan, for those old records only).
-- Letters of refused duplicates that merely name the job are not its own.
local function own_letter(named, entry)
  if named then return named end
  for _, letter in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    local f, job_id, at = letter[2], nil, nil
    for i = 1, #f, 2 do
      if f[i] == 'job_id' then job_id = f[i + 1] end
      if f[i] == 'entry' then at = f[i + 1] end
    end
    if job_id == ARGV[1] and at == entry then return letter[1] end
  end
  return nil
end
"#;

/// KEYS: job, dead, stream, counts[, run set].
/// ARGV: job_id, worker_id, run_id, now, retention_ms.
/// `dead` → `queued` on a new stream entry (the record's `entry` moves to
/// it, so the old entries stay refused), `attempts` back to 0 (the job gets
/// `max_deliveries` starts again; START would dead-letter it at once
/// otherwise), `replays + 1`, `replayed_at`; the record loses its TTL (it is
/// no longer terminal), its dead letter is deleted, counts move `dead` →
/// `queued`, and the run's set holds the job again for another retention.
/// `last_error` is kept until the job fails again.
/// Returns {'replayed', entry, attempts before} or a [`OPERATOR`] refusal,
/// or {'no_job'} for a record made for a refused entry (nothing to run).
const REPLAY: &str = r#"
local more = {{KEYS[3], 'stream'}, {KEYS[4], 'hash'}}
if KEYS[5] then table.insert(more, {KEYS[5], 'set'}) end
local stop, r = dead_job(more)
if stop then return stop end
if not r[6] or r[6] == '' then return {'no_job'} end
local letter = own_letter(r[4], r[5])
local entry = redis.call('XADD', KEYS[3], '*', 'job_id', ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'entry', entry,
  'updated_at', ARGV[4], 'replayed_at', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('HDEL', KEYS[1], 'dead_entry')
redis.call('PERSIST', KEYS[1])
move(KEYS[4], 'dead', 'queued')
if letter then redis.call('XDEL', KEYS[2], letter) end
if KEYS[5] then
  redis.call('SADD', KEYS[5], ARGV[1])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
return {'replayed', entry, tonumber(r[7]) or 0}
"#;

/// KEYS: job, dead, counts. ARGV: job_id, worker_id, run_id.
/// Deletes a `dead` record and its dead letter and moves the count from
/// `dead` to `purged`. The job id stays in its run's set: a `payhost run`
/// following the run counts a member without a record as finished (it can
/// never run again), and `payhost jobs --run` lists it as `gone`.
/// Returns {'purged'} or a [`OPERATOR`] refusal.
const PURGE: &str = r#"
local stop, r = dead_job({{KEYS[3], 'hash'}})
if stop then return stop end
local letter = own_letter(r[4], r[5])
if letter then redis.call('XDEL', KEYS[2], letter) end
redis.call('DEL', KEYS[1])
move(KEYS[3], 'dead', 'purged')
return {'purged'}
"#;

/// KEYS: stream, dead. ARGV: entry, reason.
/// An entry that names no usable job id: dead-letter the entry alone.
const REJECT_ENTRY: &str = r#"
local err = check_types({{KEYS[1], 'stream'}, {KEYS[2], 'stream'}})
if err then return err end
redis.call('XADD', KEYS[2], '*', 'entry', ARGV[1], 'last_error', ARGV[2])
redis.call('XACK', KEYS[1], 'workers', ARGV[1])
return 1
"#;

/// KEYS: stream. Trims acknowledged entries: everything below the oldest
/// pending entry or, with none pending, up to the group's last delivered
/// entry. Never a pending entry, never one not yet delivered. Returns how
/// many entries went.
const TRIM: &str = r#"
local err = check_types({{KEYS[1], 'stream'}})
if err then return err end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered = nil, nil
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  if name == 'workers' then last = delivered end
end
if not last then return 0 end
local minid
local pending = redis.call('XPENDING', KEYS[1], 'workers')
if pending[1] > 0 then
  minid = pending[2]
else
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  if not ms then return 0 end
  minid = ms .. '-' .. (tonumber(seq) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
"#;

/// KEYS: stream. ARGV: consumer, entry ids...
/// Renews the lease (resets the idle time) of each entry still pending with
/// this consumer. An entry another consumer claimed meanwhile is left to it
/// (a plain XCLAIM would take it back, and both would run the job) and
/// returned; an entry no longer pending is skipped.
const RENEW: &str = r#"
local err = check_types({{KEYS[1], 'stream'}})
if err then return err end
local lost = {}
if redis.call('EXISTS', KEYS[1]) == 0 then return lost end
for i = 2, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], 'workers', ARGV[i], ARGV[i], 1)
  if p[1] then
    if p[1][2] == ARGV[1] then
      redis.call('XCLAIM', KEYS[1], 'workers', ARGV[1], 0, ARGV[i], 'JUSTID')
    else
      table.insert(lost, ARGV[i])
    end
  end
end
return lost
"#;

struct Scripts {
    enqueue: Script,
    start: Script,
    finish: Script,
    requeue: Script,
    dead: Script,
    reject_entry: Script,
    trim: Script,
    renew: Script,
    replay: Script,
    purge: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let script = |body: &str| {
            let prelude = PRELUDE.replace("FAILURES_KEPT", &keys::FAILURES_KEPT.to_string());
            Script::new(&format!("{prelude}{body}"))
        };
        Scripts {
            enqueue: script(ENQUEUE),
            start: script(&format!("{START_FIELDS}{START_ONE}{START}")),
            finish: script(FINISH),
            requeue: script(REQUEUE),
            dead: script(DEAD),
            reject_entry: script(REJECT_ENTRY),
            trim: script(TRIM),
            renew: script(RENEW),
            replay: script(&format!("{OPERATOR}{REPLAY}")),
            purge: script(&format!("{OPERATOR}{PURGE}")),
        }
    }
}

/// The job store of one process: a reconnecting connection and the scripts.
/// Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct JobStore {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    /// How long a terminal job's record (and a run's job set) is kept.
    retention_ms: u64,
}

/// How long records are kept by default: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A job to publish.
pub struct NewJob<'a> {
    pub job_id: &'a str,
    pub job: &'a FlowJob,
    pub job_json: &'a str,
    pub run_id: Option<&'a str>,
    pub mac: Option<&'a str>,
}

impl JobStore {
    /// A store keeping terminal records for [`DEFAULT_RETENTION`].
    pub fn new(conn: ConnectionManager) -> JobStore {
        JobStore {
            conn,
            scripts: Arc::new(Scripts::new()),
            retention_ms: DEFAULT_RETENTION.as_millis() as u64,
        }
    }

    /// Keeps terminal job records (and runs' job sets) for `retention`.
    pub fn with_retention(mut self, retention: Duration) -> JobStore {
        self.retention_ms = (retention.as_millis() as u64).max(1);
        self
    }

    /// Creates the consumer group of `worker_id`'s stream (and the stream)
    /// if it does not exist.
    pub async fn ensure_group(&self, worker_id: &str) -> Result<(), StoreError> {
        let stream = keys::stream(worker_id);
        with_retry(&format!("creating the consumer group on {stream}"), || {
            let mut conn = self.conn.clone();
            let stream = stream.clone();
            async move {
                let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&stream)
                    .arg(keys::GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut conn)
                    .await;
                match created {
                    Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
                    other => other,
                }
            }
        })
        .await
    }

    /// Writes a new job: record (`queued`), run set, counts, stream entry.
    /// `Ok(false)` when a job with this id already exists (nothing written).
    pub async fn enqueue(&self, new: &NewJob<'_>) -> Result<bool, StoreError> {
        let added = self.enqueue_many(std::slice::from_ref(new)).await?;
        Ok(added.first() == Some(&true))
    }

    /// [`JobStore::enqueue`] for several jobs of one worker id in one round
    /// trip; for each, in order, whether it was added. An error (a key of
    /// the wrong type among them) writes none of them: the caller can queue
    /// each alone, so that only the job at fault fails.
    pub async fn enqueue_many(&self, jobs: &[NewJob<'_>]) -> Result<Vec<bool>, StoreError> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let what = match jobs {
            [one] => format!("queueing job {}", one.job_id),
            _ => format!("queueing {} jobs", jobs.len()),
        };
        let worker_id = first.job.worker_id.as_str();
        if let Some(other) = jobs.iter().find(|j| j.job.worker_id != worker_id) {
            return Err(StoreError(format!(
                "{what}: job {} is for worker id {:?}, not {worker_id:?} like the others",
                other.job_id, other.job.worker_id
            )));
        }
        let now = now_ms().to_string();
        let retention = self.retention_ms.to_string();
        let mut job_keys = Vec::with_capacity(3 + 2 * jobs.len());
        job_keys.extend([
            keys::stream(worker_id),
            keys::counts(worker_id),
            keys::workers(),
        ]);
        let mut args: Vec<&str> = Vec::with_capacity(3 + 4 * jobs.len());
        args.extend([worker_id, now.as_str(), retention.as_str()]);
        // One transaction: each job's text into its record with a plain
        // HSETNX (never through Lua, see ENQUEUE; NX: an existing job's text
        // stays as it is), then the script, which makes the rest of each
        // record or, refusing the batch, deletes those texts again.
        let mut texts = redis::pipe();
        texts.atomic();
        for new in jobs {
            let record = keys::job(new.job_id);
            texts
                .cmd("HSETNX")
                .arg(&record)
                .arg(keys::field::JOB)
                .arg(new.job_json)
                .ignore();
            job_keys.push(record);
            job_keys.push(new.run_id.map(keys::run_jobs).unwrap_or_default());
            args.extend([
                new.job_id,
                new.job.flow.as_str(),
                new.run_id.unwrap_or(""),
                new.mac.unwrap_or(""),
            ]);
        }
        let (added, ()): (Vec<i64>, ()) = self
            .invoke_piped(
                &self.scripts.enqueue,
                what.clone(),
                &job_keys,
                &args,
                texts,
                redis::pipe(),
            )
            .await?;
        if added.len() != jobs.len() {
            return Err(StoreError(format!("{what}: {} answers", added.len())));
        }
        Ok(added.into_iter().map(|a| a == 1).collect())
    }

    /// Starts the job that stream entry `entry` of `worker_id` names.
    pub async fn start(
        &self,
        worker_id: &str,
        job_id: &str,
        entry: &str,
        consumer: &str,
        max_deliveries: u32,
    ) -> Result<Start, StoreError> {
        let jobs = [(job_id.to_string(), entry.to_string())];
        let mut started = self
            .start_many(worker_id, &jobs, consumer, max_deliveries)
            .await?;
        Ok(started.remove(0))
    }

    /// [`JobStore::start`] for every `(job_id, entry)` one read brought, in
    /// one round trip; the answers in the same order. An error (a key of the
    /// wrong type among them) starts none: the caller can start each alone,
    /// so that only the job at fault stays behind.
    pub async fn start_many(
        &self,
        worker_id: &str,
        jobs: &[(String, String)],
        consumer: &str,
        max_deliveries: u32,
    ) -> Result<Vec<Start>, StoreError> {
        let now = now_ms().to_string();
        let max = max_deliveries.to_string();
        let mut job_keys = Vec::with_capacity(jobs.len() + 1);
        job_keys.push(keys::counts(worker_id));
        job_keys.extend(jobs.iter().map(|(job_id, _)| keys::job(job_id)));
        let mut args: Vec<&str> = Vec::with_capacity(4 + jobs.len());
        args.extend([worker_id, consumer, &max, &now]);
        args.extend(jobs.iter().map(|(_, entry)| entry.as_str()));
        let what = match jobs {
            [(job_id, _)] => format!("starting job {job_id}"),
            _ => format!("starting {} jobs", jobs.len()),
        };
        // Each record's `job` is read beside the script, in the same round
        // trip (through Lua it would be hashed byte by byte, see ENQUEUE). A
        // record's `job` never changes, so reading it after the script is
        // the same as reading it within.
        let mut texts = redis::pipe();
        for key in &job_keys[1..] {
            texts.hget(key, keys::field::JOB);
        }
        let (replies, texts): (Vec<redis::Value>, Vec<Option<String>>) = self
            .invoke_piped(
                &self.scripts.start,
                what.clone(),
                &job_keys,
                &args,
                redis::pipe(),
                texts,
            )
            .await?;
        if replies.len() != jobs.len() || texts.len() != jobs.len() {
            return Err(StoreError(format!("{what}: {} answers", replies.len())));
        }
        replies
            .into_iter()
            .zip(jobs)
            .zip(texts)
            .map(|((reply, (job_id, _)), text)| {
                start_reply(reply, job_id, text.unwrap_or_default())
            })
            .collect()
    }

    /// Ends a running job as `done` or `missing` and acknowledges its entry.
    pub async fn finish(
        &self,
        worker_id: &str,
        job_id: &str,
        entry: &str,
        how: &Finish,
        plugin_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        self.finish_many(worker_id, &[(job_id, entry, how, plugin_hash)])
            .await
    }

    /// [`JobStore::finish`] for several jobs of `worker_id` in one round
    /// trip: `(job_id, entry, how, plugin_hash)` each. An error (a key of
    /// the wrong type among them) settles none: the caller can settle each
    /// alone, so that only the job at fault stays behind.
    pub async fn finish_many(
        &self,
        worker_id: &str,
        jobs: &[(&str, &str, &Finish, Option<&str>)],
    ) -> Result<(), StoreError> {
        let now = now_ms().to_string();
        let retention = self.retention_ms.to_string();
        let mut job_keys = Vec::with_capacity(jobs.len() + 3);
        job_keys.extend([
            keys::stream(worker_id),
            keys::counts(worker_id),
            keys::failures(worker_id),
        ]);
        job_keys.extend(jobs.iter().map(|(job_id, ..)| keys::job(job_id)));
        let mut args: Vec<&str> = Vec::with_capacity(2 + 5 * jobs.len());
        args.extend([now.as_str(), retention.as_str()]);
        for &(job_id, entry, how, hash) in jobs {
            let (to, why) = how.status();
            args.extend([job_id, entry, to, why, hash.unwrap_or("")]);
        }
        let what = match jobs {
            [(job_id, _, how, _)] => format!("settling job {job_id} as {}", how.status().0),
            _ => format!("settling {} jobs", jobs.len()),
        };
        let _applied: i64 = self
            .invoke(&self.scripts.finish, what, &job_keys, &args)
            .await?;
        Ok(())
    }

    /// After a failed attempt: `failed`, and delivered again on a new entry.
    pub async fn requeue(
        &self,
        worker_id: &str,
        job_id: &str,
        entry: &str,
        error: &str,
        plugin_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms().to_string();
        let _: i64 = self
            .invoke(
                &self.scripts.requeue,
                format!("re-queueing failed job {job_id}"),
                &[
                    keys::job(job_id),
                    keys::stream(worker_id),
                    keys::counts(worker_id),
                    keys::failures(worker_id),
                ],
                &[job_id, entry, error, &now, plugin_hash.unwrap_or("")],
            )
            .await?;
        Ok(())
    }

    /// Moves the job (or, when the entry is not the job's, the entry alone)
    /// to the dead-letter stream with `reason`.
    pub async fn dead_letter(
        &self,
        worker_id: &str,
        job_id: &str,
        entry: &str,
        reason: &str,
        plugin_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms().to_string();
        let _: String = self
            .invoke(
                &self.scripts.dead,
                format!("dead-lettering job {job_id}"),
                &[
                    keys::job(job_id),
                    keys::stream(worker_id),
                    keys::dead(worker_id),
                    keys::counts(worker_id),
                    keys::failures(worker_id),
                ],
                &[
                    job_id,
                    worker_id,
                    entry,
                    reason,
                    &now,
                    &self.retention_ms.to_string(),
                    plugin_hash.unwrap_or(""),
                ],
            )
            .await?;
        Ok(())
    }

    /// Dead-letters an entry that names no usable job id.
    pub async fn reject_entry(
        &self,
        worker_id: &str,
        entry: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .invoke(
                &self.scripts.reject_entry,
                format!("dead-lettering stream entry {entry}"),
                &[keys::stream(worker_id), keys::dead(worker_id)],
                &[entry, reason],
            )
            .await?;
        Ok(())
    }
}

/// What an operator's [`JobStore::replay`] or [`JobStore::purge`] did to
/// one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operated {
    /// `dead` → `queued` on stream entry `entry`; `attempts` was
    /// `attempts_before` and is 0 now.
    Replayed { entry: String, attempts_before: u32 },
    /// Record and dead letter deleted.
    Purged,
    /// Nothing done: the job is in this status, not `dead` (replayed
    /// already, or it never died).
    NotDead(String),
    /// Nothing done: no record (purged, expired after the retention, or
    /// never queued).
    Gone,
    /// Nothing done: the record was made for a refused stream entry and
    /// holds no job to run.
    NoJob,
}

/// Which operator transition [`JobStore::operate`] runs.
#[derive(Clone, Copy)]
enum Operation {
    Replay,
    Purge,
}

impl JobStore {
    /// Re-queues a `dead` job (the `REPLAY` script): a new stream entry,
    /// attempts back to 0, its dead letter deleted. Any other job is left
    /// alone and the answer says why, so a repeated replay does nothing.
    pub async fn replay(&self, job_id: &str) -> Result<Operated, StoreError> {
        self.operate(job_id, Operation::Replay).await
    }

    /// Deletes a `dead` job's record and dead letter (the `PURGE` script).
    /// Any other job is left alone.
    pub async fn purge(&self, job_id: &str) -> Result<Operated, StoreError> {
        self.operate(job_id, Operation::Purge).await
    }

    /// Deletes dead letters by id from `worker_id`'s dead-letter stream:
    /// letters that are no dead job's own (refused entries, letters whose
    /// record expired). A dead job's own letter goes only with its job
    /// ([`JobStore::purge`]). Returns how many were deleted.
    pub async fn remove_letters(&self, worker_id: &str, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let dead = keys::dead(worker_id);
        with_retry(&format!("deleting dead letters from {dead}"), || {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("XDEL");
            cmd.arg(&dead).arg(ids);
            async move { cmd.query_async(&mut conn).await }
        })
        .await
    }

    /// Reads which worker id and run the job belongs to (the script's keys
    /// depend on them), then runs the transition; the script checks that
    /// the record still says so and, if it changed in between, the read is
    /// done again.
    async fn operate(&self, job_id: &str, op: Operation) -> Result<Operated, StoreError> {
        let (name, script) = match op {
            Operation::Replay => ("replaying", &self.scripts.replay),
            Operation::Purge => ("purging", &self.scripts.purge),
        };
        let what = format!("{name} job {job_id}");
        if !is_valid_job_id(job_id) {
            return Err(StoreError(format!(
                "{what}: job ids only hold letters, digits, '-', '_' and '.'"
            )));
        }
        for _ in 0..3 {
            let (worker_id, run_id): (Option<String>, Option<String>) = with_retry(&what, || {
                let mut conn = self.conn.clone();
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(keys::job(job_id))
                    .arg(keys::field::WORKER_ID)
                    .arg(keys::field::RUN_ID);
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
            let Some(worker_id) = worker_id else {
                return Ok(Operated::Gone);
            };
            let run_id = run_id.unwrap_or_default();
            for (kind, id) in [("worker id", &worker_id), ("run id", &run_id)] {
                if !id.is_empty() && !keys::is_valid_worker_id(id) {
                    return Err(StoreError(format!(
                        "{what}: its record {} holds an invalid {kind} {id:?}",
                        keys::job(job_id)
                    )));
                }
            }
            let run_set = (!run_id.is_empty()).then(|| keys::run_jobs(&run_id));
            let now = now_ms().to_string();
            let retention = self.retention_ms.to_string();
            let (script_keys, args): (Vec<String>, Vec<&str>) = match op {
                Operation::Replay => (
                    [
                        keys::job(job_id),
                        keys::dead(&worker_id),
                        keys::stream(&worker_id),
                        keys::counts(&worker_id),
                    ]
                    .into_iter()
                    .chain(run_set)
                    .collect(),
                    vec![job_id, &worker_id, &run_id, &now, &retention],
                ),
                Operation::Purge => (
                    vec![
                        keys::job(job_id),
                        keys::dead(&worker_id),
                        keys::counts(&worker_id),
                    ],
                    vec![job_id, &worker_id, &run_id],
                ),
            };
            if let Operation::Replay = op {
                // The worker id's group exists unless its stream was deleted;
                // without it the new entry would never be read.
                self.ensure_group(&worker_id).await?;
            }
            let reply: Vec<redis::Value> = self
                .invoke(script, what.clone(), &script_keys, &args)
                .await?;
            let text = |i: usize| reply_text(&reply, i);
            return Ok(match text(0).as_str() {
                "replayed" => Operated::Replayed {
                    entry: text(1),
                    attempts_before: reply
                        .get(2)
                        .and_then(|v| redis::from_redis_value_ref::<u32>(v).ok())
                        .unwrap_or(0),
                },
                "purged" => Operated::Purged,
                "not_dead" => Operated::NotDead(text(1)),
                "gone" => Operated::Gone,
                "no_job" => Operated::NoJob,
                "changed" => continue,
                other => {
                    return Err(StoreError(format!("{what}: unexpected reply {other:?}")));
                }
            });
        }
        Err(StoreError(format!(
            "{what}: its record kept changing while it was read; try again"
        )))
    }
}

impl JobStore {
    /// Trims the acknowledged entries of `worker_id`'s stream (the `TRIM` script).
    pub async fn trim(&self, worker_id: &str) -> Result<u64, StoreError> {
        let stream = keys::stream(worker_id);
        self.invoke(
            &self.scripts.trim,
            format!("trimming {stream}"),
            std::slice::from_ref(&stream),
            &[],
        )
        .await
    }

    /// Runs `script` as [`JobStore::invoke`] does, in one pipeline after the
    /// commands of `before` (inside its transaction when `before` is
    /// atomic) and before those of `after`: the script's reply, and those
    /// of `after` (the replies of `before` are ignored). When the server
    /// has lost the script (a restart, SCRIPT FLUSH) it is loaded and the
    /// whole pipeline sent again, so the commands of `before` must change
    /// nothing the second time.
    async fn invoke_piped<T: redis::FromRedisValue, A: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        what: String,
        keys: &[String],
        args: &[&str],
        before: redis::Pipeline,
        after: redis::Pipeline,
    ) -> Result<(T, A), StoreError> {
        // Built once and sent by reference: `before` may hold a batch's
        // texts, 64 jobs of 1.3 KB each.
        let mut pipe = before;
        pipe.ignore_errors()
            .cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        for cmd in after.cmd_iter() {
            pipe.add_command(cmd.clone());
        }
        let pipe = &pipe;
        let mut loaded = false;
        loop {
            let replies: Vec<redis::Value> = with_retry(&what, || {
                let mut conn = self.conn.clone();
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
            let mut replies = replies.into_iter();
            let reply = replies
                .next()
                .ok_or_else(|| StoreError(format!("{what}: no answer")))?;
            if let redis::Value::ServerError(err) = &reply
                && err.code() == "NOSCRIPT"
                && !loaded
            {
                loaded = true;
                with_retry(&what, || {
                    let mut conn = self.conn.clone();
                    async move { script.load_async(&mut conn).await }
                })
                .await?;
                continue;
            }
            let decode = |value: redis::Value| match value {
                redis::Value::ServerError(err) => Err(permanent(&what, &RedisError::from(err))),
                value => Ok(value),
            };
            let script_reply = redis::from_redis_value::<T>(decode(reply)?)
                .map_err(|err| StoreError(format!("{what}: {err}")))?;
            let rest = replies.map(decode).collect::<Result<Vec<_>, _>>()?;
            let after_reply = redis::from_redis_value::<A>(redis::Value::Array(rest))
                .map_err(|err| StoreError(format!("{what}: {err}")))?;
            return Ok((script_reply, after_reply));
        }
    }

    /// Runs one transition's `script` on `keys` with `args`, retrying only
    /// connection errors (see [`with_retry`]); `what` names it in errors.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        what: String,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, StoreError> {
        with_retry(&what, || {
            let mut conn = self.conn.clone();
            let mut call = script.prepare_invoke();
            for key in keys {
                call.key(key);
            }
            for arg in args {
                call.arg(*arg);
            }
            async move { call.invoke_async(&mut conn).await }
        })
        .await
    }
}

impl JobStore {
    /// Renews this consumer's lease on `entries` (the `RENEW` script); returns the
    /// entries another consumer holds now. One attempt, no retry: the next
    /// renewal comes a third of a lease later anyway.
    pub async fn renew(
        &self,
        worker_id: &str,
        consumer: &str,
        entries: impl IntoIterator<Item = &String>,
    ) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.renew.prepare_invoke();
        call.key(keys::stream(worker_id)).arg(consumer);
        for entry in entries {
            call.arg(entry);
        }
        call.invoke_async(&mut conn).await
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(reply: &[u8]) -> Option<(u32, Option<String>, Option<String>)> {
        match run_reply(reply, String::new())? {
            Start::Run(job) => Some((job.attempts, job.mac, job.run_id)),
            _ => None,
        }
    }

    #[test]
    fn a_run_reply_splits_by_the_macs_length_whatever_the_fields_hold() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(run(b"1 0 "), Some((1, None, None)));
        assert_eq!(
            run(b"2 4 abcdrun-1"),
            Some((2, some("abcd"), some("run-1")))
        );
        // Spaces in the MAC or the run id are theirs, not separators.
        assert_eq!(run(b"3 3 a bc d"), Some((3, some("a b"), some("c d"))));
        // What is no number or no UTF-8 reads as 0 or absent, not as an
        // error for the whole batch.
        assert_eq!(run(b"x 2 \xff\xferun"), Some((0, None, some("run"))));
        // Not of the form: a length beyond the text, missing parts.
        for bad in [&b"1 9 abc"[..], b"1 x abc", b"1", b""] {
            assert_eq!(run(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
