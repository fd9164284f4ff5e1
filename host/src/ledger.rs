//! Knowing when a run is finished, and what happened in it.
//!
//! `payhost run` must wait for the script, every request in flight and every
//! flow those caused, transitively. Each such unit of work holds a [`Token`];
//! new work is created with a clone of the token of the work that caused it
//! (a request clones the script's or flow's token, a flow job clones its
//! request's). Tokens count themselves: cloning one adds one to the run's
//! open count, dropping one takes one off, and the drop that reaches zero
//! wakes the [`Ledger`]. Dropping is what signals completion, so a unit that
//! panics or is abandoned still counts down.
//!
//! Tokens also report the run's events (requests, retries, flows). Counts
//! are atomics, so reporting never wakes anyone: the ledger reads them when
//! the run ends. Only error texts travel on a channel, since they are rare.
//! The state is one `Arc` per run, passed with the tokens; no global, no lock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event {
    /// A request was handed to the executor.
    RequestSent,
    /// A request finished (with any response or none) after `retries` retries.
    RequestDone { retries: u32 },
    /// A flow job was queued.
    FlowQueued,
    /// A flow script ran; `error` is set when it failed.
    FlowDone { flow: String, error: Option<String> },
    /// No flow file exists for an outcome.
    FlowMissing { flow: String },
    /// The main script failed.
    ScriptFailed(String),
}

/// One run's counts and open-work count, shared by its tokens and ledger.
#[derive(Default)]
struct Shared {
    open: AtomicUsize,
    all_done: Notify,
    requests: AtomicU64,
    requests_done: AtomicU64,
    retries: AtomicU64,
    flows_queued: AtomicU64,
    flows_run: AtomicU64,
    flows_failed: AtomicU64,
    flows_missing: AtomicU64,
    script_failed: AtomicBool,
}

/// Keeps the run open while held; reports events.
///
/// A token may name the run it belongs to (Redis mode), so that jobs caused
/// by work in another process are still followed by the run that started it.
pub struct Token {
    shared: Arc<Shared>,
    errors: mpsc::UnboundedSender<String>,
    run_id: Option<Arc<str>>,
}

impl Clone for Token {
    fn clone(&self) -> Self {
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        Token {
            shared: self.shared.clone(),
            errors: self.errors.clone(),
            run_id: self.run_id.clone(),
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.shared.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last unit of work is done. A stored permit wakes the
            // ledger even if it is not waiting yet.
            self.shared.all_done.notify_one();
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("open", &self.shared.open.load(Ordering::Relaxed))
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl Token {
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    pub fn report(&self, event: Event) {
        let s = &self.shared;
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        match event {
            Event::RequestSent => add(&s.requests, 1),
            Event::RequestDone { retries } => {
                add(&s.retries, u64::from(retries));
                add(&s.requests_done, 1)
            }
            Event::FlowQueued => add(&s.flows_queued, 1),
            Event::FlowDone { flow, error } => {
                if let Some(error) = error {
                    tracing::error!("flow `{flow}` failed: {error}");
                    add(&s.flows_failed, 1);
                    // The ledger only goes away after the run; a late error
                    // is harmless.
                    let _ = self.errors.send(error);
                }
                add(&s.flows_run, 1)
            }
            Event::FlowMissing { .. } => add(&s.flows_missing, 1),
            Event::ScriptFailed(error) => {
                s.script_failed.store(true, Ordering::Relaxed);
                let _ = self.errors.send(error);
                0
            }
        };
    }
}

/// What `payhost run` prints at the end.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub requests: u64,
    pub requests_done: u64,
    pub retries: u64,
    pub flows_queued: u64,
    pub flows_run: u64,
    pub flows_failed: u64,
    pub flows_missing: u64,
    pub script_failed: bool,
    /// The last flow or script error, for callers that record it.
    pub last_error: Option<String>,
    /// Set when the run stopped before all work finished.
    pub abandoned: Option<String>,
    /// Where the flows ran elsewhere (Redis): what that came to, as the
    /// queue describes it. Its failures are already counted above.
    pub remote: Option<String>,
}

impl Summary {
    /// Whether the run should exit non-zero.
    pub fn failed(&self) -> bool {
        self.script_failed || self.flows_failed > 0 || self.abandoned.is_some()
    }

    pub fn in_flight(&self) -> u64 {
        self.requests.saturating_sub(self.requests_done)
    }

    pub fn flows_pending(&self) -> u64 {
        self.flows_queued
            .saturating_sub(self.flows_run + self.flows_missing)
    }

    /// Folds in the flows that ran elsewhere (in `payhost worker`s): this
    /// process only queued them, so how many ran is what the other side
    /// reports, and its failures and missing flows add to this side's (a
    /// job this process could not hand over is already a failure here). The
    /// ledger knows no queue: the caller passes plain counts and its own
    /// description of them.
    pub fn ran_elsewhere(&mut self, elsewhere: Elsewhere, description: String) {
        self.flows_run = elsewhere.finished;
        self.flows_missing += elsewhere.missing;
        self.flows_failed += elsewhere.failed;
        self.remote = Some(description);
    }
}

/// What became of the flows a run handed to other processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elsewhere {
    /// Flows that ran to an end there, well or not.
    pub finished: u64,
    /// Of those, the ones that failed for good.
    pub failed: u64,
    /// Jobs for which no flow file existed there.
    pub missing: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payhost: {} requests ({} retries), {} flows run, {} flows missing, {} failures",
            self.requests,
            self.retries,
            self.flows_run,
            self.flows_missing,
            self.flows_failed + u64::from(self.script_failed),
        )?;
        if let Some(remote) = &self.remote {
            write!(f, "; {remote}")?;
        }
        if let Some(abandoned) = &self.abandoned {
            write!(f, "; stopped early: {abandoned}")?;
        }
        Ok(())
    }
}

/// The run's side: waits until every token is gone, then sums up.
pub struct Ledger {
    shared: Arc<Shared>,
    errors: mpsc::UnboundedReceiver<String>,
    last_error: Option<String>,
}

impl Ledger {
    /// A ledger and the first token (the script's).
    pub fn new() -> (Ledger, Token) {
        Self::for_run(None)
    }

    /// A ledger whose tokens name `run_id`.
    pub fn for_run(run_id: Option<Arc<str>>) -> (Ledger, Token) {
        let shared = Arc::new(Shared {
            open: AtomicUsize::new(1),
            ..Shared::default()
        });
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Ledger {
                shared: shared.clone(),
                errors: rx,
                last_error: None,
            },
            Token {
                shared,
                errors: tx,
                run_id,
            },
        )
    }

    /// Waits until every token is dropped; `Ok` with the summary then.
    /// Returns `Err` with the summary so far when `limit` passes first.
    pub async fn wait(&mut self, limit: Option<Duration>) -> Result<Summary, Summary> {
        let shared = self.shared.clone();
        let all_done = async move {
            while shared.open.load(Ordering::Acquire) != 0 {
                shared.all_done.notified().await;
            }
        };
        let finished = match limit {
            None => {
                all_done.await;
                true
            }
            Some(limit) => tokio::time::timeout(limit, all_done).await.is_ok(),
        };
        let summary = self.summary();
        if finished { Ok(summary) } else { Err(summary) }
    }

    /// The counts so far.
    pub fn summary(&mut self) -> Summary {
        while let Ok(error) = self.errors.try_recv() {
            self.last_error = Some(error);
        }
        let s = &self.shared;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Summary {
            requests: get(&s.requests),
            requests_done: get(&s.requests_done),
            retries: get(&s.retries),
            flows_queued: get(&s.flows_queued),
            flows_run: get(&s.flows_run),
            flows_failed: get(&s.flows_failed),
            flows_missing: get(&s.flows_missing),
            script_failed: s.script_failed.load(Ordering::Relaxed),
            last_error: self.last_error.clone(),
            abandoned: None,
            remote: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_ends_when_the_last_token_drops() {
        let (mut ledger, script) = Ledger::new();
        let request = script.clone();
        script.report(Event::RequestSent);
        drop(script);
        let handle = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            request.report(Event::RequestDone { retries: 1 });
            let flow = request.clone();
            drop(request);
            flow.report(Event::FlowQueued);
            flow.report(Event::FlowDone {
                flow: "new_create_thing_response".into(),
                error: None,
            });
        });
        let summary = ledger.wait(Some(Duration::from_secs(5))).await.unwrap();
        handle.await.unwrap();
        assert_eq!(summary.requests, 1);
        assert_eq!(summary.retries, 1);
        assert_eq!(summary.flows_run, 1);
        assert!(!summary.failed());
    }

    #[tokio::test]
    async fn timeout_returns_what_is_still_open() {
        let (mut ledger, script) = Ledger::new();
        script.report(Event::RequestSent);
        let summary = ledger
            .wait(Some(Duration::from_millis(20)))
            .await
            .unwrap_err();
        assert_eq!(summary.in_flight(), 1);
        drop(script);
    }
}
