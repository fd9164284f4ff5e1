//! Queues: how finished requests become flow runs.
//!
//! The HTTP executor delivers each finished request to an
//! [`OutcomeSink`]; here that sink is a channel feeding the flow threads
//! ([`FlowPool`]). Each flow thread owns a [`ScriptHost`] (its own plugin
//! instance and Rhai engine) and classifies the outcome with the plugin's
//! `parse-response` into a [`FlowJob`]. Where the job runs is the
//! [`Placement`]:
//!
//! - [`Placement::Local`], the embedded queue (default): the same flow thread
//!   runs the flow at once. No server, no serialization.
//! - [`Placement::Redis`]: the job is published to the Redis stream of its
//!   worker id ([`redis`]), and `payhost worker` processes anywhere run it.
//!   [`jobs`] is the Redis job store that owns every job's state, [`trust`]
//!   decides which jobs a worker may run; jobs read back from Redis come into
//!   the same pool as [`Work::Job`]. `payhost jobs` reads through [`status`]
//!   and [`view`], and replays or purges dead jobs through [`replay`].
//!
//! Flow threads follow plugin upgrades ([`crate::upgrade`]): between two
//! messages each compares the providers' generation with the one its
//! `ScriptHost` was built from (one atomic load) and, when it moved, builds
//! a new `ScriptHost` and Rhai engine from the new versions. A job's flow
//! runs on one version from start to end, and the thread reports which one
//! to whoever queued the job (the worker writes it on the job's record).
//!
//! A flow that calls `*_async` again sends through the same executor, whose
//! outcome comes back through this pool: chains need nothing special.
//! No job is dropped: the channel is unbounded (requests in flight are
//! bounded by the executor, and each yields one job), and a job's
//! [`Token`] keeps its run open until its flow is done.

pub mod jobs;
pub mod keys;
pub mod redis;
pub mod replay;
pub mod status;
pub mod trust;
pub mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::flow::{FlowJob, FlowRunner, ScriptLimits, classify, classify_parsed};
use crate::http::{Finished, OutcomeSink};
use crate::ledger::{Event, Token};
use crate::script_api::ScriptHost;
use crate::upgrade::LiveProviders;

/// Where a flow thread reports what became of a job from Redis ([`Ran`]).
pub type RanWith = tokio::sync::oneshot::Sender<Ran>;

/// What a flow thread did with a job from Redis, reported before its flow
/// runs.
#[derive(Debug)]
pub enum Ran {
    /// Its flow runs: the flow's name, and the content hash of the plugin
    /// version (of the job's provider) it runs with.
    Runs { flow: String, plugin_hash: Arc<str> },
    /// Refused ([`trust::read_job`]): nothing ran; the reason.
    Refused(String),
}

/// What a flow thread is asked to do.
pub enum Work {
    /// Classify a finished request, then place its flow job.
    Outcome(Box<Finished>),
    /// Run a flow job here (read from Redis by `payhost worker`).
    Job(Box<JobWork>),
    Stop,
}

/// A flow job for a flow thread: read from Redis by `payhost worker`, or
/// made from a webhook event by `payhost serve`.
pub struct JobWork {
    job: JobInput,
    /// The job's id: its requests' idempotency keys derive from it, so a
    /// job delivered again repeats them exactly.
    job_id: String,
    token: Token,
    ran_with: Option<RanWith>,
    /// The worker's place for the job, given back once its flow has run.
    place: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A flow job as a flow thread is given it.
pub enum JobInput {
    /// Made here, and so already checked.
    Made(FlowJob),
    /// A job's text as read from Redis for `worker_id` (its MAC, if any,
    /// [`trust::verify`]d): the flow thread reads and checks it
    /// ([`trust::read_job`]) and reports a refusal to the job's `ran_with`.
    Read { text: String, worker_id: Arc<str> },
}

/// Where classified flow jobs go.
#[derive(Clone)]
pub enum Placement {
    Local,
    Redis(redis::Publisher),
}

/// The sending side of the pool; it is the executor's [`OutcomeSink`].
#[derive(Clone)]
pub struct WorkSender {
    tx: Sender<Work>,
}

/// The receiving side, until the flow threads start.
pub struct WorkReceiver {
    rx: Receiver<Work>,
    tx: Sender<Work>,
}

pub fn channel() -> (WorkSender, WorkReceiver) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (WorkSender { tx: tx.clone() }, WorkReceiver { rx, tx })
}

impl WorkSender {
    /// Queues a flow job to run in this pool; the thread that runs it
    /// reports to `ran_with` whether its flow runs, and with which plugin
    /// version ([`Ran`]), and drops `place` as soon as the flow has run
    /// (before the requests it made are done).
    pub fn run_job(
        &self,
        job: JobInput,
        job_id: &str,
        token: Token,
        ran_with: Option<RanWith>,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let _ = self.tx.send(Work::Job(Box::new(JobWork {
            job,
            job_id: job_id.to_string(),
            token,
            ran_with,
            place,
        })));
    }
}

impl OutcomeSink for WorkSender {
    fn deliver(&self, finished: Finished) {
        // The receiver lives as long as the pool; if the pool is gone the run
        // is over, and the token's drop still counts the work down.
        let _ = self.tx.send(Work::Outcome(Box::new(finished)));
    }
}

/// The flow threads: they classify outcomes and run flow scripts.
pub struct FlowPool {
    tx: Sender<Work>,
    threads: Vec<JoinHandle<()>>,
}

/// What every flow thread is built from.
#[derive(Clone)]
pub struct FlowSetup {
    pub providers: Arc<LiveProviders>,
    pub flows_dir: PathBuf,
    pub limits: ScriptLimits,
    pub placement: Placement,
    /// Where flow runs are counted.
    pub metrics: crate::metrics::Metrics,
}

impl FlowPool {
    /// Starts `threads` flow threads.
    pub fn start(
        receiver: WorkReceiver,
        threads: usize,
        setup: FlowSetup,
    ) -> std::io::Result<FlowPool> {
        let count = threads.max(1);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let rx = receiver.rx.clone();
            let setup = setup.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("payhost-flow-{n}"))
                    .stack_size(crate::flow::SCRIPT_THREAD_STACK)
                    .spawn(move || work(rx, setup))?,
            );
        }
        Ok(FlowPool {
            tx: receiver.tx,
            threads,
        })
    }

    /// Lets the flow threads finish what is queued before this call, then
    /// joins them.
    pub fn shutdown(self) {
        for _ in &self.threads {
            let _ = self.tx.send(Work::Stop);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn work(rx: Receiver<Work>, setup: FlowSetup) {
    let live = &setup.providers;
    let mut generation = live.generation();
    let host = match ScriptHost::new(live.current()) {
        Ok(host) => host,
        Err(err) => {
            tracing::error!("a flow thread could not start: {err}");
            return;
        }
    };
    let mut runner = FlowRunner::new(host, setup.flows_dir.clone(), &setup.limits)
        .with_metrics(setup.metrics.clone());
    while let Ok(message) = rx.recv() {
        if live.generation() != generation {
            // A plugin was upgraded: new instances (and an engine with the
            // new schema) from now on. On failure the old ones go on; the
            // upgrade was checked, so this is not expected.
            generation = live.generation();
            match ScriptHost::new(live.current()) {
                Ok(host) => {
                    runner = FlowRunner::new(host, setup.flows_dir.clone(), &setup.limits)
                        .with_metrics(setup.metrics.clone())
                }
                Err(err) => tracing::error!(
                    "a flow thread keeps the previous plugin version: the new one did not \
                     instantiate: {err}"
                ),
            }
        }
        match message {
            Work::Outcome(mut finished) => {
                finished.token.report(Event::FlowQueued);
                // The flow belongs to the provider the request went to.
                let provider = finished.route.provider;
                let host = runner.host().clone();
                let caller_id = host.providers().get(provider).plugin.name();
                match &setup.placement {
                    Placement::Local => {
                        let (job, value) = classify_parsed(
                            &mut host.instance(provider),
                            caller_id,
                            &mut finished,
                            &mut runner,
                        );
                        let _ = runner.run_with_value(job, Some(value), &finished.token);
                        // `finished` (and its backlog place) goes now.
                    }
                    Placement::Redis(publisher) => {
                        let job = classify(&mut host.instance(provider), caller_id, &mut finished);
                        let Finished { token, backlog, .. } = *finished;
                        publisher.publish(job, token, backlog);
                    }
                }
            }
            Work::Job(work) => {
                let JobWork {
                    job,
                    job_id,
                    token,
                    ran_with,
                    place,
                } = *work;
                let host = runner.host().clone();
                let providers = host.providers();
                let (job, value) = match job {
                    JobInput::Made(job) => (job, None),
                    JobInput::Read { text, worker_id } => {
                        let provider = |job: &FlowJob| trust::check_provider(job, providers);
                        let read = trust::read_job(&worker_id, text, provider, |job, payload| {
                            runner
                                .payload_value(&job.caller_id, &job.flow, job.outcome, payload)
                                .ok()
                        });
                        match read {
                            Ok(read) => (read.job, read.value),
                            Err(reason) => {
                                // Nothing runs; the token and the place go.
                                if let Some(reply) = ran_with {
                                    let _ = reply.send(Ran::Refused(reason));
                                }
                                continue;
                            }
                        }
                    }
                };
                if let (Some(reply), Some(index)) = (ran_with, providers.index_of(&job.caller_id)) {
                    let _ = reply.send(Ran::Runs {
                        flow: job.flow.clone(),
                        plugin_hash: providers.get(index).plugin.hash().clone(),
                    });
                }
                runner.host().set_delivery(Some(&job_id));
                let _ = runner.run_with_value(job, value, &token);
                runner.host().set_delivery(None);
                // This thread is free for the next job; the requests the
                // flow made are the token's to wait for.
                drop(place);
            }
            Work::Stop => break,
        }
    }
}
