//! `payhost run`: one script, every request it makes, every flow they cause.
//!
//! It starts a [`Host`] (plugin, policy, executor, flow threads) whose flow
//! jobs run here, or with `--redis` are published for `payhost worker`s; runs
//! the script on its own thread; then waits on the
//! [`Ledger`] until the last unit of work is done, the timeout passes, or
//! Ctrl-C asks us to stop (no new requests; in-flight work gets a grace
//! period; what is left is reported as abandoned).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::host::{Host, HostConfig};
use crate::ledger::{Elsewhere, Ledger, Summary};
use crate::queue::Placement;
use crate::queue::redis::{Publisher, RedisConfig};

/// How long in-flight work may take to finish once asked to stop.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// What `payhost run` adds to a [`HostConfig`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub host: HostConfig,
    pub script: PathBuf,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// Send flow jobs through Redis instead of running them here.
    pub redis: Option<RedisConfig>,
    /// With Redis: return once the script's own requests are queued, without
    /// following the flows they cause.
    pub detach: bool,
}

impl RunOptions {
    pub fn new(script: PathBuf, host: HostConfig) -> Self {
        Self {
            host,
            script,
            timeout: None,
            grace: DEFAULT_GRACE,
            redis: None,
            detach: false,
        }
    }
}

/// Runs the script to completion and returns the summary.
pub fn run(options: RunOptions) -> anyhow::Result<Summary> {
    let plugins = options.host.load_plugins()?;
    let script_source = std::fs::read_to_string(&options.script)
        .with_context(|| format!("cannot read script {}", options.script.display()))?;
    let started = std::time::Instant::now();
    let mut redis = None;
    let host = Host::start_with(&plugins, &options.host, |runtime| {
        let Some(config) = &options.redis else {
            return Ok(Placement::Local);
        };
        let conn = runtime.block_on(crate::queue::redis::connect(&config.url))?;
        let publisher = Publisher::start(runtime.handle(), conn.clone(), config);
        redis = Some(conn);
        Ok(Placement::Redis(publisher))
    })?;
    let run_id: Option<Arc<str>> = redis
        .as_ref()
        .map(|_| uuid::Uuid::new_v4().simple().to_string().into());

    let (mut ledger, script_token) = Ledger::for_run(run_id.clone());
    // The main script stops at the run's deadline too, so its thread ends.
    let script_deadline = options.timeout.map(|t| started + t);
    host.spawn_script(
        &options.script,
        script_source,
        script_token,
        script_deadline,
    )
    .context("cannot start the script thread")?;

    let runtime = host.runtime();
    let summary = runtime.block_on(async {
        tokio::select! {
            result = ledger.wait(options.timeout) => match result {
                Ok(summary) => summary,
                Err(mut summary) => {
                    summary.abandoned = Some(format!(
                        "timed out after {}s with {} requests in flight and {} flows pending",
                        options.timeout.unwrap_or_default().as_secs_f64(),
                        summary.in_flight(),
                        summary.flows_pending(),
                    ));
                    summary
                }
            },
            _ = tokio::signal::ctrl_c() => {
                crate::say!(
                    "payhost: interrupted; no new requests; waiting up to {}s for work in flight",
                    options.grace.as_secs_f64()
                );
                host.close();
                match ledger.wait(Some(options.grace)).await {
                    Ok(mut summary) => {
                        summary.abandoned = Some("interrupted (all work in flight finished)".into());
                        summary
                    }
                    Err(mut summary) => {
                        summary.abandoned = Some(format!(
                            "interrupted; abandoned {} requests in flight and {} flows pending",
                            summary.in_flight(),
                            summary.flows_pending(),
                        ));
                        summary
                    }
                }
            }
        }
    });
    let mut summary = summary;
    if let (Some(mut conn), Some(run_id), None) = (redis, &run_id, &summary.abandoned) {
        if options.detach {
            crate::say!("payhost: run {run_id} detached; see `payhost jobs`");
        } else {
            let deadline = options.timeout.map(|t| started + t);
            // No flow runs in this process in Redis mode: a flow reported
            // here is a job the publisher could not queue (already counted
            // as failed), which the run's job set will never hold.
            let not_queued = summary.flows_run;
            let published = summary.flows_queued.saturating_sub(not_queued);
            let jobs = runtime
                .block_on(crate::queue::status::follow_run(
                    &mut conn,
                    run_id,
                    published as usize,
                    deadline,
                ))
                .context("lost Redis while following the run's jobs")?;
            if jobs.open > 0 {
                summary.abandoned = Some(format!(
                    "timed out with {} of the run's flow jobs unfinished",
                    jobs.open
                ));
            }
            summary.ran_elsewhere(
                Elsewhere {
                    finished: (jobs.done + jobs.dead) as u64,
                    failed: jobs.dead as u64,
                    missing: jobs.missing as u64,
                },
                jobs.describe(run_id),
            );
        }
    }
    let drain = summary.abandoned.is_none();
    host.shutdown(drain);
    Ok(summary)
}
