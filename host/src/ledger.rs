//! Knowing when a run is finished, and what happened in it.
//!
//! `payhost run` must wait for the script, every request in flight and every
//! flow those caused, transitively. Each such unit of work holds a [`Token`];
//! new work is created with a clone of the token of the work that caused it
//! (a request clones the script's or flow's token, a flow job clones its
//! request's). The [`Ledger`] owns the receiving end of the channel the tokens
//! send on: when the last token is dropped the channel closes and the run is
//! done. Dropping is what signals completion, so a unit that panics or is
//! abandoned still counts down; nothing needs a shared counter or a lock.
//!
//! Tokens also carry the run's events (requests, retries, flows), which the
//! ledger folds into the one-line [`Summary`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

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

/// Keeps the run open while held; reports events.
///
/// A token may name the run it belongs to (Redis mode), so that jobs caused
/// by work in another process are still followed by the run that started it.
#[derive(Clone, Debug)]
pub struct Token {
    events: mpsc::UnboundedSender<Event>,
    run_id: Option<Arc<str>>,
}

impl Token {
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    pub fn report(&self, event: Event) {
        // The ledger only goes away after the run; a late event is harmless.
        let _ = self.events.send(event);
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
    /// Redis mode: the run id and what its flow jobs came to.
    pub remote: Option<(String, crate::queue::status::RunJobs)>,
}

impl Summary {
    /// Whether the run should exit non-zero.
    pub fn failed(&self) -> bool {
        self.script_failed
            || self.flows_failed > 0
            || self.abandoned.is_some()
            || self
                .remote
                .as_ref()
                .is_some_and(|(_, jobs)| jobs.dead > 0 || jobs.open > 0)
    }

    pub fn in_flight(&self) -> u64 {
        self.requests.saturating_sub(self.requests_done)
    }

    pub fn flows_pending(&self) -> u64 {
        self.flows_queued
            .saturating_sub(self.flows_run + self.flows_missing)
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::RequestSent => self.requests += 1,
            Event::RequestDone { retries } => {
                self.requests_done += 1;
                self.retries += u64::from(*retries);
            }
            Event::FlowQueued => self.flows_queued += 1,
            Event::FlowDone { error, .. } => {
                self.flows_run += 1;
                if let Some(error) = error {
                    self.flows_failed += 1;
                    self.last_error = Some(error.clone());
                }
            }
            Event::FlowMissing { .. } => self.flows_missing += 1,
            Event::ScriptFailed(error) => {
                self.script_failed = true;
                self.last_error = Some(error.clone());
            }
        }
    }
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
        if let Some((run_id, jobs)) = &self.remote {
            write!(
                f,
                "; run {run_id}: {} flow jobs via Redis ({} done, {} dead, {} redelivered{})",
                jobs.total,
                jobs.done,
                jobs.dead,
                jobs.redelivered,
                if jobs.open > 0 {
                    format!(", {} unfinished", jobs.open)
                } else {
                    String::new()
                },
            )?;
        }
        if let Some(abandoned) = &self.abandoned {
            write!(f, "; stopped early: {abandoned}")?;
        }
        Ok(())
    }
}

/// The receiving side: counts events until every token is gone.
pub struct Ledger {
    events: mpsc::UnboundedReceiver<Event>,
    summary: Summary,
}

impl Ledger {
    /// A ledger and the first token (the script's).
    pub fn new() -> (Ledger, Token) {
        Self::for_run(None)
    }

    /// A ledger whose tokens name `run_id`.
    pub fn for_run(run_id: Option<Arc<str>>) -> (Ledger, Token) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Ledger {
                events: rx,
                summary: Summary::default(),
            },
            Token { events: tx, run_id },
        )
    }

    /// Folds events until every token is dropped; `Ok` then. Returns `Err`
    /// with the summary so far when `limit` passes first.
    pub async fn wait(&mut self, limit: Option<Duration>) -> Result<Summary, Summary> {
        let drain = async {
            while let Some(event) = self.events.recv().await {
                log_event(&event);
                self.summary.apply(&event);
            }
        };
        match limit {
            None => {
                drain.await;
                Ok(self.summary.clone())
            }
            Some(limit) => match tokio::time::timeout(limit, drain).await {
                Ok(()) => Ok(self.summary.clone()),
                Err(_) => Err(self.summary.clone()),
            },
        }
    }

    /// Stops accepting work: events already sent are still counted.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Flow failures are logged as they happen; the script's own failure is
/// printed by the script thread.
fn log_event(event: &Event) {
    if let Event::FlowDone {
        flow,
        error: Some(error),
    } = event
    {
        tracing::error!("flow `{flow}` failed: {error}");
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
