//! The Redis queue's connection and its publishing side.
//!
//! [`connect`] opens the reconnecting connection both sides use;
//! [`Publisher`] is where classified flow jobs leave a process: one task
//! takes them and enqueues them through the [`JobStore`] (which owns every
//! state transition), all that arrived meanwhile in one round trip, with
//! up to two such batches on their way (see [`super::jobs`] for the
//! protocol, and `payhost worker` in [`crate::worker`] for the reading
//! side).
//!
//! A job that cannot be queued because Redis refuses it (a key of the wrong
//! type, say) is reported to its run as a failed flow naming the key: the run
//! ends and exits non-zero instead of retrying what can never succeed. Only
//! connection errors are retried. No secret is ever written: jobs hold the
//! payload and ids only, and the job key only signs them.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::jobs::{JobStore, NewJob};
use super::keys;
use super::trust::JobKey;
use crate::flow::{FlowJob, ReadyJob};
use crate::http::BacklogSlot;
use crate::ledger::{Event, Token};

/// Queue settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// How long an entry may sit unacknowledged before another worker takes it.
    pub lease: Duration,
    /// Starts of one job before it is dead-lettered.
    pub max_deliveries: u32,
    /// Signs published jobs; a worker with a key runs only signed jobs.
    pub job_key: Option<JobKey>,
    /// How long terminal job records and runs' job sets are kept.
    pub retention: Duration,
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

/// Publishes classified flow jobs to Redis from one task (and the batches
/// it has on their way). Each job's token is dropped only after Redis has
/// it, so the work that caused it is not settled before its child job
/// exists.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<(ReadyJob, Token, BacklogSlot)>,
}

impl Publisher {
    /// Starts the publishing task on `runtime`; jobs are signed with the
    /// configured job key, if any.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        conn: ConnectionManager,
        config: &RedisConfig,
    ) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        let store = JobStore::new(conn).with_retention(config.retention);
        runtime.spawn(publish_loop(store, config.job_key.clone(), rx));
        Publisher { tx }
    }

    /// Queues `job` (as [`crate::flow::classify`] makes it, or
    /// [`ReadyJob::new`]); `backlog` is freed once Redis holds it, so a script
    /// producing requests waits while Redis is away instead of piling up
    /// outcomes here.
    pub fn publish(&self, job: ReadyJob, token: Token, backlog: BacklogSlot) {
        let _ = self.tx.send((job, token, backlog));
    }
}

/// Most jobs one ENQUEUE writes.
const MAX_PUBLISH_BATCH: usize = 64;

/// ENQUEUE batches on their way at once. With one, the next batch's jobs
/// were serialized and packed only once the previous reply was back, and
/// Redis idled meanwhile; with two, one is prepared while the other is in
/// Redis.
const PUBLISHES_IN_FLIGHT: usize = 2;

/// Publishes like a group commit: every job that arrived while the previous
/// batches were on their way goes in the next one, one script per worker
/// id, with up to [`PUBLISHES_IN_FLIGHT`] batches on their way. Alone, a
/// job waits for nothing but its own round trip.
async fn publish_loop(
    store: JobStore,
    key: Option<JobKey>,
    mut rx: mpsc::UnboundedReceiver<(ReadyJob, Token, BacklogSlot)>,
) {
    let mut groups = HashSet::new();
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(PUBLISHES_IN_FLIGHT));
    loop {
        // A place first, then the jobs: while every place is taken, jobs
        // gather in the channel for the next batch.
        let place = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut batch = Vec::with_capacity(MAX_PUBLISH_BATCH);
        if rx.recv_many(&mut batch, MAX_PUBLISH_BATCH).await == 0 {
            break;
        }
        // Consumer groups are made here, in order, so that each worker id's
        // is made once; the rest of the batch goes on its own.
        let ready = ready_groups(&store, &mut groups, &batch).await;
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            publish_batch(&store, key.as_ref(), &ready, &batch).await;
            // Each job's token and backlog place go only now that Redis has
            // it (or it was reported as failed).
            drop(batch);
            drop(place);
        });
    }
    // Batches still on their way finish in their own tasks: their jobs'
    // tokens keep each run open until then.
}

/// Makes the consumer group of each worker id of `batch` not in `groups`
/// yet; the worker ids whose group exists (or is refused for good, with the
/// reason), for [`publish_batch`].
async fn ready_groups(
    store: &JobStore,
    groups: &mut HashSet<String>,
    batch: &[(ReadyJob, Token, BacklogSlot)],
) -> Vec<(String, Result<(), String>)> {
    let mut ready: Vec<(String, Result<(), String>)> = Vec::new();
    for (job, _, _) in batch {
        let worker_id = &job.job().worker_id;
        if ready.iter().any(|(w, _)| w == worker_id) {
            continue;
        }
        let outcome = if !keys::is_valid_worker_id(worker_id) {
            Err("worker ids may only contain letters, digits, '-', '_' and '.'".to_string())
        } else if groups.contains(worker_id) {
            Ok(())
        } else {
            match store.ensure_group(worker_id).await {
                Ok(()) => {
                    groups.insert(worker_id.clone());
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        };
        ready.push((worker_id.clone(), outcome));
    }
    ready
}

/// A job ready to be written: its id, its JSON and the JSON's MAC (with a
/// job key).
struct Prepared<'a> {
    job: &'a FlowJob,
    token: &'a Token,
    job_id: String,
    job_json: String,
    mac: Option<String>,
}

impl Prepared<'_> {
    fn new_job(&self) -> NewJob<'_> {
        NewJob {
            job_id: &self.job_id,
            job: self.job,
            job_json: &self.job_json,
            run_id: self.token.run_id(),
            mac: self.mac.as_deref(),
        }
    }

    /// Permanent: the job is not in Redis and never will be. Reported on
    /// the run (which then ends and fails) instead of retried.
    fn fail(&self, error: &str) {
        fail(self.job, self.token, error);
    }
}

fn fail(job: &FlowJob, token: &Token, error: &str) {
    token.report(Event::FlowDone {
        flow: job.flow.clone(),
        error: Some(format!(
            "flow job {} for worker id {:?} was not queued: {error}",
            job.flow, job.worker_id
        )),
    });
}

/// Queues `batch`: one ENQUEUE per worker id among them. A batch Redis
/// refuses (a key of the wrong type among its keys) is queued again job by
/// job, so only the job at fault fails. `ready` says, for each worker id,
/// whether its stream has the consumer group ([`ready_groups`]).
async fn publish_batch(
    store: &JobStore,
    key: Option<&JobKey>,
    ready: &[(String, Result<(), String>)],
    batch: &[(ReadyJob, Token, BacklogSlot)],
) {
    let mut by_worker: Vec<Vec<Prepared>> = Vec::new();
    for (job, token, _) in batch {
        match prepare(key, ready, job, token) {
            Ok(prepared) => match by_worker
                .iter_mut()
                .find(|g| g[0].job.worker_id == job.job().worker_id)
            {
                Some(group) => group.push(prepared),
                None => by_worker.push(vec![prepared]),
            },
            Err(error) => fail(job.job(), token, &error),
        }
    }
    for group in by_worker {
        let jobs: Vec<NewJob> = group.iter().map(Prepared::new_job).collect();
        match store.enqueue_many(&jobs).await {
            Ok(_) => {
                for prepared in &group {
                    tracing::debug!(
                        job_id = prepared.job_id,
                        flow = %prepared.job.flow,
                        worker = %prepared.job.worker_id,
                        "queued flow job"
                    );
                }
            }
            Err(error) if group.len() == 1 => group[0].fail(&error.to_string()),
            Err(error) => {
                tracing::warn!(
                    "could not queue {} jobs together ({error}); queueing each alone",
                    group.len()
                );
                for (prepared, new) in group.iter().zip(&jobs) {
                    if let Err(error) = store.enqueue(new).await {
                        prepared.fail(&error.to_string());
                    }
                }
            }
        }
    }
}

/// `job` with its new id, its JSON and (with a job key) the JSON's MAC,
/// once its worker id is known valid and its stream has the consumer group.
fn prepare<'a>(
    key: Option<&JobKey>,
    ready: &[(String, Result<(), String>)],
    ready_job: &'a ReadyJob,
    token: &'a Token,
) -> Result<Prepared<'a>, String> {
    let job = ready_job.job();
    match ready.iter().find(|(w, _)| *w == job.worker_id) {
        Some((_, Ok(()))) => {}
        Some((_, Err(why))) => return Err(why.clone()),
        None => return Err("its worker id's consumer group was not made".into()),
    }
    let job_id = crate::random_uuid().simple().to_string();
    let job_json = ready_job.to_text();
    let mac = key.map(|key| key.sign(&job_id, &job.worker_id, &job_json));
    Ok(Prepared {
        job,
        token,
        job_id,
        job_json,
        mac,
    })
}
