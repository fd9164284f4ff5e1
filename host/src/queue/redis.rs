//! The Redis queue: flow jobs through Redis Streams, at least once.
//!
//! Protocol (names in [`super::keys`], described in `docs/redis-protocol.md`):
//!
//! - Publishing a job writes its record (status `queued`), adds it to its
//!   run's job set, and appends `{job_id, job}` to the stream of its worker id,
//!   in one MULTI/EXEC transaction.
//! - `payhost worker --worker-id W` reads the stream of `W` through the
//!   consumer group [`keys::GROUP`] (XREADGROUP). Starting a job increments its
//!   `attempts` and marks it `running`. The entry is acknowledged (XACK) only
//!   after the flow finished **and** every request the flow made has had its
//!   own flow job published, so the run's job set is complete before a job
//!   becomes terminal.
//! - A failed flow is published again until `max_deliveries`; then the job
//!   goes to the dead-letter stream and becomes `dead`.
//! - A worker that dies leaves its entries pending; other workers claim
//!   entries idle longer than the lease (XAUTOCLAIM) and run them again. A
//!   live worker renews the lease on what it holds, so slow flows are not
//!   stolen.
//!
//! Connections are `ConnectionManager`s, which reconnect by themselves; every
//! write is retried with backoff while Redis is away, so a restarted
//! redis-server loses nothing (with appendonly on). No secret is ever
//! written: jobs hold the payload and ids only.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::keys::{self, field, status};
use crate::flow::FlowJob;
use crate::ledger::Token;

/// Queue settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// How long an entry may sit unacknowledged before another worker takes it.
    pub lease: Duration,
    /// Starts of one job before it is dead-lettered.
    pub max_deliveries: u32,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            lease: Duration::from_secs(30),
            max_deliveries: 5,
        }
    }
}

/// A Redis URL with any password replaced, for messages.
pub fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Opens a reconnecting connection and checks Redis answers.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let shown = redacted_url(url);
    let client = redis::Client::open(url).with_context(|| format!("invalid Redis URL {shown}"))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let mut conn = tokio::time::timeout(
        Duration::from_secs(8),
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("cannot reach Redis at {shown}: timed out"))?
    .with_context(|| format!("cannot reach Redis at {shown}"))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .with_context(|| format!("cannot reach Redis at {shown}"))?;
    Ok(conn)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Retries `op` with backoff until it succeeds, logging while Redis is away.
/// Used for writes that must not be lost.
pub async fn retry_forever<T, F, Fut>(what: &str, mut op: F) -> T
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
                return value;
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!("Redis unavailable for {what} ({err}); retrying");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Creates the consumer group for `worker_id`'s stream if it does not exist.
pub async fn ensure_group(conn: &mut ConnectionManager, worker_id: &str) -> redis::RedisResult<()> {
    let result: redis::RedisResult<()> = conn
        .xgroup_create_mkstream(keys::stream(worker_id), keys::GROUP, "0")
        .await;
    match result {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Writes a new job: record, run set, counts, stream entry. Atomic.
pub async fn enqueue(
    conn: &mut ConnectionManager,
    job_id: &str,
    job_json: &str,
    job: &FlowJob,
    run_id: Option<&str>,
) -> redis::RedisResult<()> {
    let now = now_ms();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hset_multiple(
            keys::job(job_id),
            &[
                (field::JOB, job_json),
                (field::STATUS, status::QUEUED),
                (field::WORKER_ID, job.worker_id.as_str()),
                (field::FLOW, job.flow.as_str()),
                (field::RUN_ID, run_id.unwrap_or("")),
                (field::CREATED_AT, &now.to_string()),
                (field::UPDATED_AT, &now.to_string()),
            ],
        )
        .ignore()
        .hset(keys::job(job_id), field::ATTEMPTS, 0)
        .ignore()
        .sadd(keys::workers(), &job.worker_id)
        .ignore()
        .hincr(keys::counts(&job.worker_id), status::QUEUED, 1)
        .ignore()
        .xadd(
            keys::stream(&job.worker_id),
            "*",
            &[(field::JOB_ID, job_id), (field::JOB, job_json)],
        )
        .ignore();
    if let Some(run_id) = run_id {
        pipe.sadd(keys::run_jobs(run_id), job_id).ignore();
    }
    pipe.query_async(conn).await
}

/// Publishes classified flow jobs to Redis from one task that owns the
/// connection. Each job's token is dropped only after Redis has it, so the
/// work that caused it is not settled before its child job exists.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<(FlowJob, Token)>,
}

impl Publisher {
    /// Starts the publishing task on `runtime`.
    pub fn start(runtime: &tokio::runtime::Handle, conn: ConnectionManager) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(publish_loop(conn, rx));
        Publisher { tx }
    }

    pub fn publish(&self, job: FlowJob, token: Token) {
        let _ = self.tx.send((job, token));
    }
}

async fn publish_loop(conn: ConnectionManager, mut rx: mpsc::UnboundedReceiver<(FlowJob, Token)>) {
    let mut groups = std::collections::HashSet::new();
    while let Some((job, token)) = rx.recv().await {
        if !keys::is_valid_worker_id(&job.worker_id) {
            tracing::error!(
                "flow {} not queued: worker id {:?} may only contain letters, digits, '-', '_' and '.'",
                job.flow,
                job.worker_id
            );
            token.report(crate::ledger::Event::FlowDone {
                flow: job.flow.clone(),
                error: Some(format!("invalid worker id {:?}", job.worker_id)),
            });
            continue;
        }
        if !groups.contains(&job.worker_id) {
            let worker_id = job.worker_id.clone();
            retry_forever("creating a consumer group", || {
                let mut conn = conn.clone();
                let worker_id = worker_id.clone();
                async move { ensure_group(&mut conn, &worker_id).await }
            })
            .await;
            groups.insert(job.worker_id.clone());
        }
        let job_id = uuid::Uuid::new_v4().simple().to_string();
        let job_json = serde_json::to_string(&job).expect("flow jobs serialize");
        let run_id: Option<Arc<str>> = token.run_id().map(Into::into);
        retry_forever("queueing a flow job", || {
            let mut conn = conn.clone();
            let (job_id, job_json, job, run_id) = (&job_id, &job_json, &job, run_id.clone());
            async move { enqueue(&mut conn, job_id, job_json, job, run_id.as_deref()).await }
        })
        .await;
        tracing::debug!(job_id, flow = %job.flow, worker = %job.worker_id, "queued flow job");
        drop(token);
    }
}

/// Moves a job from `from` to `to` in its record and the counts.
pub fn transition(pipe: &mut redis::Pipeline, job_id: &str, worker_id: &str, from: &str, to: &str) {
    pipe.hset_multiple(
        keys::job(job_id),
        &[
            (field::STATUS, to),
            (field::UPDATED_AT, &now_ms().to_string()),
        ],
    )
    .ignore()
    .hincr(keys::counts(worker_id), from, -1)
    .ignore()
    .hincr(keys::counts(worker_id), to, 1)
    .ignore();
}
