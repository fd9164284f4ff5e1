//! `payhost worker`: run the flow jobs Redis holds for one worker id.
//!
//! A worker reads its worker id's stream through the consumer group, starts
//! each entry's job through the [`JobStore`] (which owns every state change,
//! see [`crate::queue::jobs`]), hands it to a pool of flow threads, and
//! settles it once the flow and every request it made are done. Whether it
//! may run is [`trust`]'s to say: its MAC here when `--job-key-env` is set,
//! then on the flow thread, in the same pass that reads its payload, only
//! response, error and event flows, for this worker id, of a provider it has
//! a plugin for. A job it refuses is dead-lettered with the reason and
//! nothing runs. It renews the lease on what it holds and claims what dead
//! workers left behind, paging through the whole pending list. A job takes
//! one of twice `--flow-threads` places (at least [`READ_AHEAD`]) from its
//! read until its flow has run (one running on each flow thread, the rest
//! read ahead in batches); one whose flow has run and whose requests are
//! still in flight gives its place to the next job and waits apart, up to
//! `--max-in-flight` of them, so a flow that calls the provider does not hold
//! a flow thread's place for the provider's latency.
//!
//! When the store refuses a transition for good (a key of the wrong type),
//! the error names the key and the entry is left pending: it comes back after
//! the lease, so a fixed key resumes the work and a broken one is not
//! retried in a tight loop.
//!
//! It follows plugin upgrades ([`crate::upgrade`]): a new file at a
//! `--plugin` path, SIGHUP, or a version published to its Redis with
//! `payhost plugin publish`. Each job's record names the content hash of the
//! plugin version (of the job's provider) its flow ran on (`plugin_hash`).
//!
//! On SIGTERM or Ctrl-C it stops reading, lets held jobs finish for a grace
//! period (still renewing their leases, so a grace longer than the lease does
//! not let another worker take them), and exits; whatever is still
//! unfinished stays pending in Redis and another worker claims it after the
//! lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::host::{Host, HostConfig};
use crate::ledger::Ledger;
use crate::queue::jobs::{self, Finish, JobStore, Start, StoreError};
use crate::queue::keys::{self, field};
use crate::queue::redis::{self as rq, Publisher, RedisConfig};
use crate::queue::trust;
use crate::queue::{JobInput, Placement, Ran, WorkSender};

/// Flow threads (flows running at once) of a worker, and of `payhost serve`,
/// unless told otherwise: one per core, and at least 2, so that one slow
/// flow (a long script, a plugin call near its deadline) does not stall the
/// rest. A flow's requests wait without a thread (see the module docs), so
/// a flow thread is busy only while it computes, and threads beyond the
/// cores only take turns: with 4 on 2 cores (the default before this one)
/// two workers spent 19-21 µs of CPU a job against 16-17 µs with 2, and
/// did 31-33k jobs/s against 36-38k (bench, `redis`, alternating runs):
/// the difference was handing jobs between threads and switching among
/// them.
pub fn default_flow_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// The fewest entries a worker holds read ahead of its flow threads. Every
/// read, start and finish is one round trip and one script for a whole
/// batch, so the batch, not the thread count, sets what Redis and the
/// worker spend per job. With places at twice the threads only, a worker of
/// 2 threads read 2 entries at a time and it and redis-server spent 2-3
/// times the CPU per job of a worker of 16; and 16 threads on 2 cores spent
/// about a third of the worker's time handing jobs to threads and
/// switching among them (`perf`: `sched_yield` and futex waits and wakes).
/// With a floor of 32, 4 threads read in batches of 8 or more: 38-51 µs of
/// worker CPU per job against 45-72 µs for 16 threads (bench, 2 cores).
/// Once a job's text no longer went through Lua and a worker ran one flow
/// thread per core, the floor was what held a worker back: two workers of
/// 2 threads did 36-37k jobs/s holding 32 and 41-44k holding 64 (one
/// worker 29-31k against 36-37k; 128 did no better than 64 for two). The
/// price is what one worker takes of a short queue before its threads are
/// free, up to 64 jobs: for flows that compute for 10 ms each, 2 threads
/// hold 320 ms of work another worker could have started.
pub const READ_AHEAD: usize = 64;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The host; its `flow_threads` also sets how many jobs the worker holds
    /// at once (see `places`), and its provider `worker_id` the stream it
    /// reads.
    pub host: HostConfig,
    pub redis: RedisConfig,
    pub grace: Duration,
    /// Serve Prometheus metrics here (`host.metrics` records them).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl WorkerOptions {
    fn worker_id(&self) -> &str {
        &self.host.provider.worker_id
    }

    /// Flows running at once (the flow threads).
    fn concurrency(&self) -> usize {
        self.host.flow_threads.max(1)
    }

    /// Entries read and not yet run at once: twice the flow threads, and at
    /// least [`READ_AHEAD`], so that the next batch is read and started
    /// while the current one runs (see [`consume`]), however few the
    /// threads.
    fn places(&self) -> usize {
        (2 * self.concurrency()).max(READ_AHEAD)
    }

    /// Entries held at once: the places, and the jobs whose flow has run
    /// and whose requests are in flight (at most `--max-in-flight`).
    fn held_limit(&self) -> usize {
        self.places() + self.host.provider.http.max_in_flight.max(1)
    }

    /// The fewest free places worth a read while the flow threads have
    /// work: a quarter of the places.
    fn batch(&self) -> usize {
        (self.places() / 4).max(1)
    }
}

/// Runs until SIGTERM/Ctrl-C.
pub fn run_worker(options: WorkerOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        keys::is_valid_worker_id(options.worker_id()),
        "invalid --worker-id {:?}: use letters, digits, '-', '_' and '.'",
        options.worker_id()
    );
    let mut connections = None;
    let host = Host::start(&options.host, |runtime| {
        let (reader, writer) = runtime.block_on(async {
            // Blocking reads get their own connection so they never stall
            // writes.
            let reader = rq::connect(&options.redis.url).await?;
            let writer = rq::connect(&options.redis.url).await?;
            anyhow::Ok((reader, writer))
        })?;
        let publisher = Publisher::start(runtime.handle(), writer.clone(), &options.redis);
        connections = Some((reader, writer));
        Ok(Placement::Redis(publisher))
    })?;
    let (reader, writer) = connections.expect("set when the host started");
    if let Some(listen) = options.metrics_listen {
        let metrics = options.host.metrics.clone();
        let refresh =
            crate::metrics::queue_refresh(writer.clone(), options.worker_id(), metrics.clone());
        let served = crate::metrics::serve(listen, metrics, Some(refresh));
        if let Err(err) = host.runtime().block_on(served) {
            host.shutdown(false);
            return Err(err);
        }
    }
    let watch = host.watch_plugins(Some(&options.redis.url))?;

    let consumer = format!(
        "{}-{}-{}",
        hostname::get().map_or("host".into(), |h| h.to_string_lossy().into_owned()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    crate::say!(
        "payhost worker {} ({consumer}): reading {} on {}",
        options.worker_id(),
        keys::stream(options.worker_id()),
        rq::redacted_url(&options.redis.url)
    );
    let sender = host.flows().clone();
    // The read loop runs as a task on the I/O threads, beside the Redis
    // connections' own tasks, not on this thread: from here every command
    // and every job it started was a wake-up of another thread.
    let looped = async move { consume(reader, writer, sender, &options, consumer).await };
    let runtime = host.runtime();
    let result = runtime
        .block_on(runtime.spawn(looped))
        .unwrap_or_else(|err| Err(anyhow::anyhow!("the worker's read loop failed: {err}")));
    drop(watch);
    host.shutdown(true);
    result
}

/// The read loop: claim, read, start, renew, until asked to stop.
async fn consume(
    mut reader: ConnectionManager,
    writer: ConnectionManager,
    pool: WorkSender,
    options: &WorkerOptions,
    consumer: String,
) -> anyhow::Result<()> {
    let stream = keys::stream(options.worker_id());
    let store = JobStore::new(writer).with_retention(options.redis.retention);
    store
        .ensure_group(options.worker_id())
        .await
        .context("cannot create the consumer group")?;
    // A `Place` per entry: a place among `options.places()` (twice the flow
    // threads, at least READ_AHEAD) until its flow has run, and a held
    // permit until it settles. Reading one entry per freed place would make
    // every job wait for its own XREADGROUP round trip, one at a time (the
    // reader runs its commands in order): with 16 flow threads that capped
    // a worker at one job per round trip. So a worker holds more places
    // than threads (the extra ones queued for the next free thread) and,
    // while the threads have work, reads only when at least a quarter of
    // its places is free: each read then brings a batch. A job whose flow
    // has run gives its place back at once (the flow thread drops it);
    // waiting on its requests, it holds only its held permit. With both in
    // one limit, a worker of 4 flow threads whose flows each called a
    // provider answering in 200 ms ran 8 jobs at a time, 40 a second.
    let places_limit = options.places();
    let places = Arc::new(Semaphore::new(places_limit));
    let limit = options.held_limit();
    let permits = Arc::new(Semaphore::new(limit));
    let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<String>();
    let mut held: HashSet<String> = HashSet::new();
    let lease = options.redis.lease;
    // Reads block at most a quarter lease, so renewals are never late.
    let block = (lease / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut next_renew = Instant::now() + lease / 3;
    let mut next_reclaim = Instant::now();
    // Where the next XAUTOCLAIM continues in the pending list.
    let mut reclaim_cursor = String::from("0-0");
    // Acknowledged entries are trimmed this often (a few commands each time).
    let trim_every = (lease / 2).min(Duration::from_secs(5));
    let mut next_trim = Instant::now();

    let ctx = Arc::new(JobContext {
        store: store.clone(),
        finisher: Finisher::start(store.clone(), options.worker_id().to_string()),
        pool,
        worker_id: options.worker_id().into(),
        options: options.clone(),
        consumer: consumer.clone(),
        settled: settled_tx,
    });
    // Every Redis command below runs to completion before the next: a read
    // raced against a timer and dropped mid-flight would leave its entries
    // delivered to us but never seen, until a lease expired.
    while !*stop.borrow() {
        while let Ok(id) = settled_rx.try_recv() {
            held.remove(&id);
        }
        let now = Instant::now();
        if now >= next_renew {
            renew(&store, options.worker_id(), &consumer, &mut held).await;
            next_renew = now + lease / 3;
        }
        if now >= next_trim {
            if let Err(err) = store.trim(options.worker_id()).await {
                tracing::warn!("could not trim acknowledged entries: {err}");
            }
            next_trim = now + trim_every;
        }
        let available = places.available_permits().min(permits.available_permits());
        let busy = places_limit - places.available_permits() >= options.concurrency();
        if available == 0 || (busy && available < options.batch()) {
            // Wait until a batch's worth of places is free, in one wake-up
            // (a wake-up per settled job, each re-arming the renewal timer,
            // cost a worker's reader a third of its CPU). Cancel-safe: no
            // Redis command here, and nothing else acquires.
            let wanted = options.batch().min(places_limit) as u32;
            let free = async {
                drop(places.clone().acquire_many_owned(wanted).await);
                drop(permits.clone().acquire_many_owned(wanted).await);
            };
            tokio::select! {
                _ = free => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep_until(next_renew) => {}
            }
            continue;
        }
        let mut started = Vec::new();
        if now >= next_reclaim {
            started.extend(
                reclaim(
                    &mut reader,
                    &stream,
                    &consumer,
                    lease,
                    available,
                    &mut reclaim_cursor,
                )
                .await,
            );
            // Stopped early with more of the list to see: go on as soon as
            // there is room; else look again in half a lease.
            next_reclaim = if reclaim_cursor == "0-0" {
                now + lease / 2
            } else {
                now
            };
        }
        if started.is_empty() {
            match read(&mut reader, &stream, &consumer, available, block).await {
                Ok(entries) => started.extend(entries),
                Err(err) => {
                    if err.code() == Some("NOGROUP") {
                        if let Err(err) = store.ensure_group(options.worker_id()).await {
                            tracing::error!("{err}");
                        }
                    } else {
                        tracing::warn!("reading {stream} failed ({err}); retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let mut batch = Vec::with_capacity(started.len());
        for entry in started {
            let place = Place {
                running: Some(
                    places
                        .clone()
                        .try_acquire_owned()
                        .expect("never more entries than places"),
                ),
                _held: permits
                    .clone()
                    .try_acquire_owned()
                    .expect("never more entries than permits"),
            };
            held.insert(entry.id.clone());
            batch.push((entry, place));
        }
        match batch.len() {
            0 => {}
            1 => {
                let (entry, place) = batch.pop().expect("one");
                tokio::spawn(start(entry, place, ctx.clone()));
            }
            _ => {
                tokio::spawn(start_batch(batch, ctx.clone()));
            }
        }
    }
    let holding = limit - permits.available_permits();
    crate::say!(
        "payhost worker {}: stopping; waiting up to {}s for {holding} jobs in progress",
        options.worker_id(),
        options.grace.as_secs_f64()
    );
    let all = limit as u32;
    let grace_ends = Instant::now() + options.grace;
    let all_settled = permits.acquire_many(all);
    tokio::pin!(all_settled);
    // Keep renewing while held jobs finish: the grace may outlast the lease.
    let clean = loop {
        tokio::select! {
            _ = &mut all_settled => break true,
            _ = tokio::time::sleep_until(grace_ends) => break false,
            _ = tokio::time::sleep_until(next_renew) => {
                while let Ok(id) = settled_rx.try_recv() {
                    held.remove(&id);
                }
                renew(&store, options.worker_id(), &consumer, &mut held).await;
                next_renew = Instant::now() + lease / 3;
            }
        }
    };
    if clean {
        crate::say!("payhost worker {}: stopped cleanly", options.worker_id());
    } else {
        crate::say!(
            "payhost worker {}: stopped; {} unfinished jobs stay pending for another worker",
            options.worker_id(),
            limit - permits.available_permits()
        );
    }
    Ok(())
}

/// Renews the lease of every entry this worker holds (resets their idle
/// time), except those another worker claimed meanwhile: those are its now,
/// and this worker stops renewing them.
async fn renew(store: &JobStore, worker_id: &str, consumer: &str, held: &mut HashSet<String>) {
    if held.is_empty() {
        return;
    }
    match store.renew(worker_id, consumer, held.iter()).await {
        Ok(lost) => {
            for entry in lost {
                tracing::warn!(
                    "job entry {entry} was claimed by another consumer; no longer renewing it"
                );
                held.remove(&entry);
            }
        }
        Err(err) => tracing::warn!("could not renew leases: {err}"),
    }
}

/// Takes up to `count` entries idle longer than the lease: their worker died.
///
/// XAUTOCLAIM looks at a bounded slice of the pending list per call and
/// returns where to continue, so this pages on from `cursor` until it has
/// `count` entries or has been through the whole list; the cursor is kept
/// for the next call when it stops early, so entries deep in a long pending
/// list are reached too.
async fn reclaim(
    conn: &mut ConnectionManager,
    stream: &str,
    consumer: &str,
    lease: Duration,
    count: usize,
    cursor: &mut String,
) -> Vec<StreamId> {
    let mut claimed = Vec::new();
    // Bounded: one pass over the list at most (a cursor of 0-0 ends it), and
    // at most this many calls in any case.
    for _ in 0..10_000 {
        let reply: redis::RedisResult<redis::streams::StreamAutoClaimReply> = conn
            .xautoclaim_options(
                stream,
                keys::GROUP,
                consumer,
                lease.as_millis() as usize,
                cursor.as_str(),
                StreamAutoClaimOptions::default().count(count - claimed.len()),
            )
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(err) => {
                tracing::warn!("could not claim stale jobs: {err}");
                break;
            }
        };
        for entry in &reply.claimed {
            tracing::warn!(
                "claimed job entry {} left by a worker that stopped",
                entry.id
            );
        }
        claimed.extend(reply.claimed);
        let wrapped = reply.next_stream_id == "0-0";
        *cursor = reply.next_stream_id;
        if wrapped || claimed.len() >= count {
            break;
        }
    }
    claimed
}

async fn read(
    conn: &mut ConnectionManager,
    stream: &str,
    consumer: &str,
    count: usize,
    block: Duration,
) -> redis::RedisResult<Vec<StreamId>> {
    let options = StreamReadOptions::default()
        .group(keys::GROUP, consumer)
        .count(count)
        .block(block.as_millis() as usize);
    let reply: redis::Value = conn.xread_options(&[stream], &[">"], &options).await?;
    if let Some(entries) = stream_entries(&reply) {
        return Ok(entries);
    }
    // A shape the fast path does not know: redis-rs's conversion, which
    // says what is wrong with it.
    let reply: Option<StreamReadReply> = redis::from_redis_value(reply)?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|key| key.ids).collect())
        .unwrap_or_default())
}

/// The entries of an XREADGROUP reply (nil: none within the block time),
/// or `None` for a reply of another shape. redis-rs's `StreamReadReply`
/// copies the whole reply before converting it, and every entry's fields
/// with it: a tenth of a worker's instructions a job (callgrind). The
/// entries here only name their job, so each field is copied once.
fn stream_entries(reply: &redis::Value) -> Option<Vec<StreamId>> {
    use redis::Value;
    let text = |v: &Value| match v {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let streams: Vec<&Value> = match reply {
        Value::Nil => return Some(Vec::new()),
        // RESP2: [[name, entries], ...]; RESP3: {name: entries, ...}.
        Value::Array(streams) => streams
            .iter()
            .map(|s| match s {
                Value::Array(pair) if pair.len() == 2 => Some(&pair[1]),
                _ => None,
            })
            .collect::<Option<_>>()?,
        Value::Map(streams) => streams.iter().map(|(_, entries)| entries).collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            return None;
        };
        for entry in entries {
            let Value::Array(parts) = entry else {
                return None;
            };
            let (id, fields) = match parts.as_slice() {
                [id, Value::Array(fields)] => (text(id)?, fields.as_slice()),
                // An entry deleted while pending has no fields.
                [id, Value::Nil] => (text(id)?, &[][..]),
                _ => return None,
            };
            let mut map = std::collections::HashMap::with_capacity(fields.len() / 2);
            for pair in fields.chunks(2) {
                if let [name, value] = pair {
                    map.insert(text(name)?, value.clone());
                }
            }
            out.push(StreamId {
                id,
                map,
                ..StreamId::default()
            });
        }
    }
    Some(out)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// What every job's task needs, shared by all of them (one `Arc` clone a
/// job, not a copy of the options).
struct JobContext {
    store: JobStore,
    finisher: Finisher,
    pool: WorkSender,
    /// The worker id, as each job's [`JobInput::Read`] names it.
    worker_id: Arc<str>,
    options: WorkerOptions,
    consumer: String,
    settled: mpsc::UnboundedSender<String>,
}

/// What one held entry takes from the worker's limits: a place (see
/// `WorkerOptions::places`) until its flow has run (`running`, handed to the flow
/// thread, which drops it), and a held permit until it settles.
struct Place {
    running: Option<OwnedSemaphorePermit>,
    /// Given back when the place is dropped, at settling.
    _held: OwnedSemaphorePermit,
}

/// Processes one delivered entry, then frees its place.
async fn start(entry: StreamId, mut place: Place, ctx: Arc<JobContext>) {
    let outcome = process(&entry, &mut place, &ctx).await;
    settle(&entry.id, outcome, place, &ctx);
}

/// Starts every entry of one read in one round trip
/// ([`JobStore::start_many`]), then runs each as [`start`] would. Entries
/// without a usable job id, and every entry when the batch cannot start (a
/// key of the wrong type among them), go the single way, so only the entry
/// at fault is left behind.
async fn start_batch(batch: Vec<(StreamId, Place)>, ctx: Arc<JobContext>) {
    let mut jobs = Vec::with_capacity(batch.len());
    let mut startable = Vec::with_capacity(batch.len());
    for (entry, place) in batch {
        match entry_job_id(&entry) {
            Ok(job_id) => {
                jobs.push((job_id, entry.id.clone()));
                startable.push((entry, place));
            }
            Err(_) => {
                tokio::spawn(start(entry, place, ctx.clone()));
            }
        }
    }
    if startable.is_empty() {
        return;
    }
    let worker_id = ctx.options.worker_id();
    let max = ctx.options.redis.max_deliveries;
    match ctx
        .store
        .start_many(worker_id, &jobs, &ctx.consumer, max)
        .await
    {
        Ok(starts) => {
            for (((entry, mut place), (job_id, _)), started) in
                startable.into_iter().zip(jobs).zip(starts)
            {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let outcome = run_started(&entry, &job_id, started, &mut place, &ctx).await;
                    settle(&entry.id, outcome, place, &ctx);
                });
            }
        }
        Err(err) => {
            tracing::warn!(
                "could not start {} jobs together ({err}); starting each alone",
                jobs.len()
            );
            for (entry, place) in startable {
                tokio::spawn(start(entry, place, ctx.clone()));
            }
        }
    }
}

/// Frees an entry's place once its work is over.
fn settle(entry_id: &str, outcome: Result<(), StoreError>, place: Place, ctx: &JobContext) {
    if let Err(err) = outcome {
        // Permanent store error (it names the key). The entry stays pending
        // and comes back after the lease, once someone fixed the key.
        tracing::error!("job entry {entry_id} left pending for a later attempt: {err}");
    }
    let _ = ctx.settled.send(entry_id.to_string());
    drop(place);
}

/// The entry's job id, or why it has none usable.
fn entry_job_id(entry: &StreamId) -> Result<String, String> {
    match entry.get::<String>(field::JOB_ID) {
        Some(id) if jobs::is_valid_job_id(&id) => Ok(id),
        Some(id) => Err(format!("refused: invalid job id {id:?}")),
        None => Err("refused: the stream entry has no job id".to_string()),
    }
}

/// Start → check → run → settle, each step one store transition.
async fn process(entry: &StreamId, place: &mut Place, ctx: &JobContext) -> Result<(), StoreError> {
    let worker_id = ctx.options.worker_id();
    let store = &ctx.store;
    let job_id = match entry_job_id(entry) {
        Ok(id) => id,
        Err(reason) => {
            tracing::error!("stream entry {}: {reason}", entry.id);
            return store.reject_entry(worker_id, &entry.id, &reason).await;
        }
    };
    let max = ctx.options.redis.max_deliveries;
    let started = store
        .start(worker_id, &job_id, &entry.id, &ctx.consumer, max)
        .await?;
    run_started(entry, &job_id, started, place, ctx).await
}

/// Check → run → settle for a job the store has answered `start` for.
async fn run_started(
    entry: &StreamId,
    job_id: &str,
    started: Start,
    place: &mut Place,
    ctx: &JobContext,
) -> Result<(), StoreError> {
    let worker_id = ctx.options.worker_id();
    let store = &ctx.store;
    let max = ctx.options.redis.max_deliveries;
    let started = match started {
        Start::Run(started) => started,
        Start::Exhausted { attempts } => {
            let reason = format!(
                "delivered {} times without finishing (limit {max})",
                attempts.saturating_sub(1)
            );
            return dead_letter(ctx, entry, job_id, &reason, None).await;
        }
        Start::Refused(reason) => {
            let reason = format!("refused: {reason}");
            tracing::error!(job_id, entry = %entry.id, "{reason}");
            return store
                .dead_letter(worker_id, job_id, &entry.id, &reason, None)
                .await;
        }
    };
    if let Err(reason) = trust::verify(
        job_id,
        worker_id,
        &started,
        ctx.options.redis.job_key.as_ref(),
    ) {
        return dead_letter(ctx, entry, job_id, &reason, None).await;
    }

    let (mut ledger, token) = Ledger::for_run(started.run_id.map(Into::into));
    let (ran_with, mut ran) = tokio::sync::oneshot::channel();
    // The flow thread reads and checks the job (`trust::read_job`), and
    // gives the place back as soon as the flow has run; the job stays held
    // (and its lease renewed) until its requests are done too.
    let job = JobInput::Read {
        text: started.job_json,
        worker_id: ctx.worker_id.clone(),
    };
    ctx.pool
        .run_job(job, job_id, token, Some(ran_with), place.running.take());
    let summary = ledger.wait(None).await.unwrap_or_else(|s| s);
    // Sent before the flow started, so here once the flow is over.
    let (flow, plugin_hash, error) = match ran.try_recv() {
        Ok(Ran::Runs { flow, plugin_hash }) => (flow, Some(plugin_hash), summary.last_error),
        Ok(Ran::Refused(reason)) => return dead_letter(ctx, entry, job_id, &reason, None).await,
        // The flow thread let the job go without a word: it did not run, so
        // it fails as an attempt does (runs again, or is dead-lettered).
        Err(_) => (
            String::new(),
            None,
            Some("the flow thread stopped before the job's flow ran".to_string()),
        ),
    };
    let plugin_hash = plugin_hash.as_deref();
    match error {
        None if summary.flows_missing > 0 => {
            let why = format!(
                "no flow file {}",
                ctx.options
                    .host
                    .flows_dir
                    .join(format!("{flow}.rhai"))
                    .display()
            );
            ctx.finisher
                .finish(job_id, &entry.id, Finish::Missing { why }, plugin_hash)
                .await
        }
        None => {
            ctx.finisher
                .finish(job_id, &entry.id, Finish::Done, plugin_hash)
                .await
        }
        Some(error) if started.attempts >= max => {
            dead_letter(ctx, entry, job_id, &error, plugin_hash).await
        }
        Some(error) => {
            tracing::warn!(job_id, %flow, attempts = started.attempts, "flow failed; it will run again: {error}");
            store
                .requeue(worker_id, job_id, &entry.id, &error, plugin_hash)
                .await
        }
    }
}

/// Moves a started job to the dead-letter stream for `reason`, saying so in
/// the log.
async fn dead_letter(
    ctx: &JobContext,
    entry: &StreamId,
    job_id: &str,
    reason: &str,
    plugin_hash: Option<&str>,
) -> Result<(), StoreError> {
    tracing::error!(job_id, "job moved to the dead-letter stream: {reason}");
    ctx.store
        .dead_letter(
            ctx.options.worker_id(),
            job_id,
            &entry.id,
            reason,
            plugin_hash,
        )
        .await
}

/// Most jobs one FINISH script settles.
const MAX_SETTLE_BATCH: usize = 64;

/// Settles finished jobs (`done`, `missing`) in batches, like a group
/// commit: one task sends one FINISH script at a time, holding every job that
/// finished while the previous one was on its way. Under load that is one
/// round trip and one script for many jobs instead of one each; alone, a job
/// waits for nothing but its own round trip.
#[derive(Clone)]
struct Finisher {
    tx: mpsc::UnboundedSender<Settling>,
}

struct Settling {
    job_id: String,
    entry: String,
    how: Finish,
    plugin_hash: Option<String>,
    settled: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

impl Finisher {
    fn start(store: JobStore, worker_id: String) -> Finisher {
        let (tx, mut rx) = mpsc::unbounded_channel::<Settling>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_SETTLE_BATCH);
            while rx.recv_many(&mut batch, MAX_SETTLE_BATCH).await > 0 {
                settle_batch(&store, &worker_id, &mut batch).await;
            }
        });
        Finisher { tx }
    }

    /// Settles one job; returns once Redis has (or the store's error).
    async fn finish(
        &self,
        job_id: &str,
        entry: &str,
        how: Finish,
        plugin_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let (settled, answer) = tokio::sync::oneshot::channel();
        let settling = Settling {
            job_id: job_id.to_string(),
            entry: entry.to_string(),
            how,
            plugin_hash: plugin_hash.map(str::to_string),
            settled,
        };
        let stopping = || StoreError(format!("settling job {job_id}: the worker is stopping"));
        if self.tx.send(settling).is_err() {
            return Err(stopping());
        }
        answer.await.unwrap_or_else(|_| Err(stopping()))
    }
}

/// One FINISH script for `batch` (emptied); if it fails (a key of the wrong
/// type among them), each job alone, so only the one at fault stays pending.
async fn settle_batch(store: &JobStore, worker_id: &str, batch: &mut Vec<Settling>) {
    if batch.len() > 1 {
        let jobs: Vec<_> = batch
            .iter()
            .map(|s| {
                (
                    s.job_id.as_str(),
                    s.entry.as_str(),
                    &s.how,
                    s.plugin_hash.as_deref(),
                )
            })
            .collect();
        match store.finish_many(worker_id, &jobs).await {
            Ok(()) => {
                for settling in batch.drain(..) {
                    let _ = settling.settled.send(Ok(()));
                }
                return;
            }
            Err(err) => tracing::warn!(
                "could not settle {} jobs together ({err}); settling each alone",
                jobs.len()
            ),
        }
    }
    for settling in batch.drain(..) {
        let result = store
            .finish(
                worker_id,
                &settling.job_id,
                &settling.entry,
                &settling.how,
                settling.plugin_hash.as_deref(),
            )
            .await;
        let _ = settling.settled.send(result);
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::stream_entries;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: Value) -> Value {
        Value::Array(vec![bulk(id), fields])
    }

    fn job_id(job: &str) -> Value {
        Value::Array(vec![bulk("job_id"), bulk(job)])
    }

    #[test]
    fn xreadgroup_replies_become_entries_without_copying_the_reply() {
        let entries = vec![entry("1-0", job_id("a")), entry("2-0", Value::Nil)];
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("payhost:stream:w"),
            Value::Array(entries.clone()),
        ])]);
        let resp3 = Value::Map(vec![(bulk("payhost:stream:w"), Value::Array(entries))]);
        for reply in [resp2, resp3] {
            let got = stream_entries(&reply).expect("a known shape");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].id, "1-0");
            assert_eq!(got[0].get::<String>("job_id").as_deref(), Some("a"));
            assert_eq!(got[1].id, "2-0");
            assert!(got[1].map.is_empty(), "an entry deleted while pending");
        }
        assert_eq!(stream_entries(&Value::Nil).map(|e| e.len()), Some(0));
        // Another shape goes to redis-rs's conversion, which names the problem.
        assert!(stream_entries(&Value::Int(1)).is_none());
        let odd = Value::Array(vec![Value::Array(vec![bulk("s"), Value::Int(3)])]);
        assert!(stream_entries(&odd).is_none());
    }
}
