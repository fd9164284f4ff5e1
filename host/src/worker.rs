//! `payhost worker`: run the flow jobs Redis holds for one worker id.
//!
//! A worker reads its worker id's stream through the consumer group, hands
//! each job to a pool of flow threads, and settles it (XACK and a terminal or
//! retry state, see [`crate::queue::redis`]) once the flow and every request
//! it made are done. It renews the lease on what it holds and claims what
//! dead workers left behind. `--concurrency` bounds the jobs it holds.
//!
//! On SIGTERM or Ctrl-C it stops reading, lets held jobs finish for a grace
//! period, and exits; whatever is still unfinished stays pending in Redis and
//! another worker claims it after the lease.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::flow::{FlowJob, ScriptLimits};
use crate::http::HttpConfig;
use crate::ledger::Ledger;
use crate::plugin::{ComponentCache, Plugin, SandboxLimits};
use crate::queue::keys::{self, field, status};
use crate::queue::redis::{self as rq, Publisher, RedisConfig, retry_forever, transition};
use crate::queue::{self, Placement, WorkSender, WorkerPool, WorkerSetup};
use crate::script_api::{Dispatcher, ProviderConfig};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub redis: RedisConfig,
    pub worker_id: String,
    pub plugin: PathBuf,
    pub flows_dir: PathBuf,
    pub concurrency: usize,
    pub base_url: Option<String>,
    pub secret_env: Option<String>,
    pub grace: Duration,
    pub http: HttpConfig,
    pub script_limits: ScriptLimits,
    pub sandbox: SandboxLimits,
    pub cache: ComponentCache,
}

/// Runs until SIGTERM/Ctrl-C.
pub fn run_worker(options: WorkerOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        keys::is_valid_worker_id(&options.worker_id),
        "invalid --worker-id {:?}: use letters, digits, '-', '_' and '.'",
        options.worker_id
    );
    let plugin = Plugin::load(&options.plugin, options.sandbox.clone(), &options.cache)?;
    let runtime = crate::http::io_runtime().context("cannot start the async runtime")?;
    let (reader, writer) = runtime.block_on(async {
        // Blocking reads get their own connection so they never stall writes.
        let reader = rq::connect(&options.redis.url).await?;
        let writer = rq::connect(&options.redis.url).await?;
        anyhow::Ok((reader, writer))
    })?;

    let (sender, receiver) = queue::channel();
    let dispatcher = Dispatcher::build(
        &plugin,
        &ProviderConfig {
            base_url: options.base_url.clone(),
            secret_env: options.secret_env.clone(),
            worker_id: options.worker_id.clone(),
            context_id: "context-1".into(),
            http: options.http.clone(),
        },
        runtime.handle().clone(),
        Arc::new(sender.clone()),
    )?;
    let publisher = Publisher::start(runtime.handle(), writer.clone());
    let pool = WorkerPool::start(
        receiver,
        options.concurrency,
        WorkerSetup {
            dispatcher: dispatcher.clone(),
            flows_dir: options.flows_dir.clone(),
            limits: options.script_limits.clone(),
            placement: Placement::Redis(publisher),
        },
    )
    .context("cannot start the flow threads")?;

    let consumer = format!(
        "{}-{}-{}",
        hostname::get().map_or("host".into(), |h| h.to_string_lossy().into_owned()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    eprintln!(
        "payhost worker {} ({consumer}): reading {} on {}",
        options.worker_id,
        keys::stream(&options.worker_id),
        rq::redacted_url(&options.redis.url)
    );
    let result = runtime.block_on(consume(reader, writer, sender, &options, consumer));
    dispatcher.executor.close();
    pool.shutdown();
    runtime.shutdown_timeout(Duration::from_secs(1));
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
    let stream = keys::stream(&options.worker_id);
    {
        let mut conn = writer.clone();
        rq::ensure_group(&mut conn, &options.worker_id)
            .await
            .context("cannot create the consumer group")?;
    }
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
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

    let ctx = JobContext {
        conn: writer.clone(),
        pool,
        options: options.clone(),
        consumer: consumer.clone(),
        settled: settled_tx,
    };
    // Every Redis command below runs to completion before the next: a read
    // raced against a timer and dropped mid-flight would leave its entries
    // delivered to us but never seen, until a lease expired.
    while !*stop.borrow() {
        while let Ok(id) = settled_rx.try_recv() {
            held.remove(&id);
        }
        let now = Instant::now();
        if now >= next_renew {
            renew(&mut reader, &stream, &consumer, &held).await;
            next_renew = now + lease / 3;
        }
        let available = permits.available_permits();
        if available == 0 {
            // Wait for a job to settle (cancel-safe: no Redis command here).
            tokio::select! {
                permit = permits.clone().acquire_owned() => drop(permit),
                _ = stop.changed() => {}
                _ = tokio::time::sleep_until(next_renew) => {}
            }
            continue;
        }
        let mut started = Vec::new();
        if now >= next_reclaim {
            started.extend(reclaim(&mut reader, &stream, &consumer, lease, available).await);
            next_reclaim = now + lease / 2;
        }
        if started.is_empty() {
            match read(&mut reader, &stream, &consumer, available, block).await {
                Ok(reply) => started.extend(reply.keys.into_iter().flat_map(|key| key.ids)),
                Err(err) => {
                    if err.code() == Some("NOGROUP") {
                        let mut conn = writer.clone();
                        let _ = rq::ensure_group(&mut conn, &options.worker_id).await;
                    } else {
                        tracing::warn!("reading {stream} failed ({err}); retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        for entry in started {
            let permit = permits
                .clone()
                .try_acquire_owned()
                .expect("never more entries than permits");
            held.insert(entry.id.clone());
            tokio::spawn(start(entry, permit, ctx.clone()));
        }
    }
    let holding = options.concurrency.max(1) - permits.available_permits();
    eprintln!(
        "payhost worker {}: stopping; waiting up to {}s for {holding} jobs in progress",
        options.worker_id,
        options.grace.as_secs_f64()
    );
    let all = options.concurrency.max(1) as u32;
    match tokio::time::timeout(options.grace, permits.acquire_many(all)).await {
        Ok(_) => eprintln!("payhost worker {}: stopped cleanly", options.worker_id),
        Err(_) => eprintln!(
            "payhost worker {}: stopped; {} unfinished jobs stay pending for another worker",
            options.worker_id,
            options.concurrency.max(1) - permits.available_permits()
        ),
    }
    Ok(())
}

/// Renews the lease of every entry this worker holds (resets their idle time).
async fn renew(conn: &mut ConnectionManager, stream: &str, consumer: &str, held: &HashSet<String>) {
    if held.is_empty() {
        return;
    }
    let ids: Vec<&String> = held.iter().collect();
    let renewed: redis::RedisResult<redis::Value> = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(keys::GROUP)
        .arg(consumer)
        .arg(0)
        .arg(&ids)
        .arg("JUSTID")
        .query_async(conn)
        .await;
    if let Err(err) = renewed {
        tracing::warn!("could not renew leases: {err}");
    }
}

/// Takes up to `count` entries idle longer than the lease: their worker died.
async fn reclaim(
    conn: &mut ConnectionManager,
    stream: &str,
    consumer: &str,
    lease: Duration,
    count: usize,
) -> Vec<StreamId> {
    let reply: redis::RedisResult<redis::streams::StreamAutoClaimReply> = conn
        .xautoclaim_options(
            stream,
            keys::GROUP,
            consumer,
            lease.as_millis() as usize,
            "0-0",
            StreamAutoClaimOptions::default().count(count),
        )
        .await;
    match reply {
        Ok(reply) => {
            for entry in &reply.claimed {
                tracing::warn!(
                    "claimed job entry {} left by a worker that stopped",
                    entry.id
                );
            }
            reply.claimed
        }
        Err(err) => {
            tracing::warn!("could not claim stale jobs: {err}");
            Vec::new()
        }
    }
}

async fn read(
    conn: &mut ConnectionManager,
    stream: &str,
    consumer: &str,
    count: usize,
    block: Duration,
) -> redis::RedisResult<StreamReadReply> {
    let options = StreamReadOptions::default()
        .group(keys::GROUP, consumer)
        .count(count)
        .block(block.as_millis() as usize);
    let reply: Option<StreamReadReply> = conn.xread_options(&[stream], &[">"], &options).await?;
    Ok(reply.unwrap_or(StreamReadReply { keys: Vec::new() }))
}

async fn shutdown_signal() {
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

#[derive(Clone)]
struct JobContext {
    conn: ConnectionManager,
    pool: WorkSender,
    options: WorkerOptions,
    consumer: String,
    settled: mpsc::UnboundedSender<String>,
}

fn entry_field(entry: &StreamId, name: &str) -> Option<String> {
    entry.get::<String>(name)
}

/// Starts one delivered entry and settles it when its work is done.
async fn start(entry: StreamId, permit: OwnedSemaphorePermit, ctx: JobContext) {
    let entry_id = entry.id.clone();
    settle_entry(entry, &ctx).await;
    let _ = ctx.settled.send(entry_id);
    drop(permit);
}

async fn settle_entry(entry: StreamId, ctx: &JobContext) {
    let worker_id = ctx.options.worker_id.as_str();
    let stream = keys::stream(worker_id);
    let Some(job_id) = entry_field(&entry, field::JOB_ID) else {
        tracing::error!("stream entry {} has no job id; acknowledging it", entry.id);
        ack(ctx, &stream, &entry.id).await;
        return;
    };
    let job_json = entry_field(&entry, field::JOB).unwrap_or_default();
    let job_key = keys::job(&job_id);
    let (attempts, previous, run_id): (u32, Option<String>, Option<String>) =
        retry_forever("starting a job", || {
            let mut conn = ctx.conn.clone();
            let job_key = job_key.clone();
            async move {
                redis::pipe()
                    .atomic()
                    .hincr(&job_key, field::ATTEMPTS, 1)
                    .hget(&job_key, field::STATUS)
                    .hget(&job_key, field::RUN_ID)
                    .query_async(&mut conn)
                    .await
            }
        })
        .await;
    let previous = previous.unwrap_or_else(|| status::QUEUED.to_string());
    let job: FlowJob = match serde_json::from_str(&job_json) {
        Ok(job) => job,
        Err(err) => {
            let error = format!("unreadable job entry: {err}");
            dead_letter(ctx, &entry.id, &job_id, &job_json, &previous, &error).await;
            return;
        }
    };
    if attempts > ctx.options.redis.max_deliveries {
        let error = format!(
            "delivered {} times without finishing (limit {})",
            attempts - 1,
            ctx.options.redis.max_deliveries
        );
        dead_letter(ctx, &entry.id, &job_id, &job_json, &previous, &error).await;
        return;
    }
    retry_forever("marking a job running", || {
        let mut conn = ctx.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        transition(&mut pipe, &job_id, worker_id, &previous, status::RUNNING);
        pipe.hset(keys::job(&job_id), field::CONSUMER, &ctx.consumer)
            .ignore();
        async move { pipe.query_async::<()>(&mut conn).await }
    })
    .await;

    let run_id = run_id.filter(|r| !r.is_empty()).map(Into::into);
    let (mut ledger, token) = Ledger::for_run(run_id);
    ctx.pool.run_job(job.clone(), token);
    let summary = ledger.wait(None).await.unwrap_or_else(|s| s);
    match summary.last_error {
        None => {
            retry_forever("settling a finished job", || {
                let mut conn = ctx.conn.clone();
                let mut pipe = redis::pipe();
                pipe.atomic();
                transition(&mut pipe, &job_id, worker_id, status::RUNNING, status::DONE);
                pipe.xack(&stream, keys::GROUP, &[&entry.id]).ignore();
                async move { pipe.query_async::<()>(&mut conn).await }
            })
            .await;
        }
        Some(error) if attempts >= ctx.options.redis.max_deliveries => {
            dead_letter(ctx, &entry.id, &job_id, &job_json, status::RUNNING, &error).await;
        }
        Some(error) => {
            tracing::warn!(job_id, flow = %job.flow, attempts, "flow failed; it will run again: {error}");
            retry_forever("re-queueing a failed job", || {
                let mut conn = ctx.conn.clone();
                let mut pipe = redis::pipe();
                pipe.atomic();
                transition(
                    &mut pipe,
                    &job_id,
                    worker_id,
                    status::RUNNING,
                    status::FAILED,
                );
                pipe.hset(&job_key, field::LAST_ERROR, &error)
                    .ignore()
                    .lpush(keys::failures(worker_id), &job_id)
                    .ignore()
                    .ltrim(keys::failures(worker_id), 0, keys::FAILURES_KEPT - 1)
                    .ignore()
                    .xack(&stream, keys::GROUP, &[&entry.id])
                    .ignore()
                    .xadd(
                        &stream,
                        "*",
                        &[
                            (field::JOB_ID, job_id.as_str()),
                            (field::JOB, job_json.as_str()),
                        ],
                    )
                    .ignore();
                async move { pipe.query_async::<()>(&mut conn).await }
            })
            .await;
        }
    }
}

async fn ack(ctx: &JobContext, stream: &str, entry_id: &str) {
    retry_forever("acknowledging an entry", || {
        let mut conn = ctx.conn.clone();
        async move {
            conn.xack::<_, _, _, ()>(stream, keys::GROUP, &[entry_id])
                .await
        }
    })
    .await;
}

async fn dead_letter(
    ctx: &JobContext,
    entry_id: &str,
    job_id: &str,
    job_json: &str,
    from: &str,
    error: &str,
) {
    let worker_id = ctx.options.worker_id.as_str();
    tracing::error!(job_id, "job moved to the dead-letter stream: {error}");
    retry_forever("dead-lettering a job", || {
        let mut conn = ctx.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        transition(&mut pipe, job_id, worker_id, from, status::DEAD);
        pipe.hset(keys::job(job_id), field::LAST_ERROR, error)
            .ignore()
            .xadd(
                keys::dead(worker_id),
                "*",
                &[
                    (field::JOB_ID, job_id),
                    (field::JOB, job_json),
                    (field::LAST_ERROR, error),
                ],
            )
            .ignore()
            .lpush(keys::failures(worker_id), job_id)
            .ignore()
            .ltrim(keys::failures(worker_id), 0, keys::FAILURES_KEPT - 1)
            .ignore()
            .xack(keys::stream(worker_id), keys::GROUP, &[entry_id])
            .ignore();
        async move { pipe.query_async::<()>(&mut conn).await }
    })
    .await;
}
