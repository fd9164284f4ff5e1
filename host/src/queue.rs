//! The embedded queue: finished requests to flow workers, in process.
//!
//! The HTTP executor delivers each finished request to an [`OutcomeSink`].
//! Here that sink is a channel feeding a pool of worker threads. Each worker
//! owns a [`ScriptHost`] (its own plugin instance and Rhai engine), classifies
//! the outcome with the plugin's `parse-response` and runs the flow. A flow
//! that calls `*_async` again sends through the same executor, whose outcome
//! comes back through this queue: chains need nothing special.
//!
//! No job is dropped: the channel is unbounded (the number of requests in
//! flight is bounded by the executor, and each yields one job), and a job's
//! [`Token`](crate::ledger::Token) keeps the run open until its flow is done.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::flow::{FlowRunner, ScriptLimits, classify};
use crate::http::{Finished, OutcomeSink};
use crate::ledger::Event;
use crate::script_api::{Dispatcher, ScriptHost};

enum Message {
    Outcome(Box<Finished>),
    Stop,
}

/// The sending side, handed to the executor.
pub struct EmbeddedQueue {
    tx: Sender<Message>,
}

/// The receiving side, until the workers start.
pub struct EmbeddedReceiver {
    rx: Receiver<Message>,
    tx: Sender<Message>,
}

pub fn embedded() -> (EmbeddedQueue, EmbeddedReceiver) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        EmbeddedQueue { tx: tx.clone() },
        EmbeddedReceiver { rx, tx },
    )
}

impl OutcomeSink for EmbeddedQueue {
    fn deliver(&self, finished: Finished) {
        finished.token.report(Event::FlowQueued);
        // The receiver lives as long as the pool; if the pool is gone the run
        // is over and the token's drop still counts the work down.
        let _ = self.tx.send(Message::Outcome(Box::new(finished)));
    }
}

/// Worker threads running flows from the embedded queue.
pub struct WorkerPool {
    tx: Sender<Message>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `workers` threads. Fails if a worker cannot instantiate the plugin.
    pub fn start(
        receiver: EmbeddedReceiver,
        workers: usize,
        dispatcher: Dispatcher,
        flows_dir: PathBuf,
        limits: ScriptLimits,
    ) -> std::io::Result<WorkerPool> {
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers.max(1) {
            let rx = receiver.rx.clone();
            let dispatcher = dispatcher.clone();
            let flows_dir = flows_dir.clone();
            let limits = limits.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("payhost-worker-{n}"))
                    .spawn(move || work(rx, dispatcher, flows_dir, limits))?,
            );
        }
        Ok(WorkerPool {
            tx: receiver.tx,
            threads,
        })
    }

    /// Lets the workers finish what is queued before this call, then joins them.
    pub fn shutdown(self) {
        for _ in &self.threads {
            let _ = self.tx.send(Message::Stop);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn work(rx: Receiver<Message>, dispatcher: Dispatcher, flows_dir: PathBuf, limits: ScriptLimits) {
    let caller_id = dispatcher.plugin.name().to_string();
    let host = match ScriptHost::new(dispatcher) {
        Ok(host) => host,
        Err(err) => {
            tracing::error!("worker could not start: {err}");
            return;
        }
    };
    let mut runner = FlowRunner::new(host, flows_dir, &limits);
    while let Ok(message) = rx.recv() {
        let finished = match message {
            Message::Outcome(finished) => finished,
            Message::Stop => break,
        };
        let job = classify(&mut runner.host().instance(), &caller_id, &finished);
        let _ = runner.run(&job, &finished.token);
    }
}
