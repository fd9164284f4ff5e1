//! `create_async` return latency while 1,000 requests are in flight.
//!
//! The pieces are built as `host/src/run.rs` builds them (plugin, one tokio
//! runtime with two threads, the embedded queue, the HTTP executor, the
//! flow threads, a `ScriptHost` and `flow::script_engine` on this thread), with
//! `max_in_flight` at 4,096 so that no call waits for a permit. The stub
//! answers only after several seconds, so requests pile up.
//!
//! A compiled one-call AST, `b.create_async(...)` with `b` the 10-field
//! builder in the scope, is evaluated repeatedly; `Instant` brackets each
//! evaluation, so a sample is the whole script-visible cost of the call
//! (Rhai dispatch, plugin `build-request`, destination check, hand-off to
//! the runtime). First 1,000 calls put 1,000 requests in flight; once the
//! stub has received all of them, the timed calls follow back to back (in
//! flight grows from 1,000 to 1,000 + timed calls). The connections the new
//! requests open are made on the runtime's threads meanwhile, competing for
//! the 2 cores as they would in production.
//!
//! The stub is not payhost's: it stands in for a provider on another
//! machine, yet here it shares the 2 cores. It is started with
//! [`Wakeups::Yield`](crate::stub::Wakeups) (its threads batch-scheduled, as
//! payhost's I/O threads are), so it takes its share of the cores without
//! taking this thread's core each time a new connection wakes it: with
//! normally scheduled stub threads, nine in ten of the slow calls were the
//! stub preempting this thread (`perf sched`), which says nothing about
//! payhost.
//!
//! The machine's own floor is measured beside the calls: after each timed
//! call, the same thread times a control, a loop of pure arithmetic
//! calibrated (before the timed calls) to last as long as a median call,
//! classified the same way. The control allocates nothing, takes no lock and
//! calls nothing: whatever makes it slow (the hypervisor taking the virtual
//! core, an interrupt, another thread's tick) would make a call as slow.
//! With nothing else running, such a 10 µs loop on this machine kind passes
//! 50 µs about 5 times in 1,000, about half of the 20 slow calls in 2,000
//! that a p99 allows; so a round whose control has that many slow runs
//! says the machine, not the call, decided the round.
//!
//! The whole measurement runs `rounds` times, each round on fresh pieces
//! (the previous round's requests and flows all finished first). The goal is
//! a p99 that holds in every round, so the figure that decides it is the
//! worst round's p99; the median of the rounds' p99 is the typical one.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost::flow::{ScriptLimits, script_engine};
use payhost::ledger::Ledger;
use payhost::plugin::Plugin;
use payhost::script_api::ScriptHost;
use rhai::{Dynamic, Scope};

use crate::fixtures::{BUILDER, CONTEXT_ID, SECRET, WORKER_ID};
use crate::rig::Rig;
use crate::stats::{self, Spread};
use crate::stub::Stub;

/// Requests put in flight before timing.
pub const IN_FLIGHT: usize = 1_000;

/// The goal: every round's p99 at or under this.
pub const P99_GOAL_US: f64 = 50.0;

/// Every round's figures.
#[derive(Debug, Clone)]
pub struct Figures {
    pub rounds: Vec<Round>,
}

impl Figures {
    /// The rounds' p99, median (min-max).
    pub fn p99(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.p99_us)
    }

    pub fn p50(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.p50_us)
    }

    /// The goal holds only if the worst round's p99 is within it.
    pub fn goal_holds(&self) -> bool {
        !self.rounds.is_empty() && self.p99().max <= P99_GOAL_US
    }

    /// Timed calls per round.
    pub fn calls(&self) -> usize {
        self.rounds.first().map_or(0, |r| r.calls)
    }

    /// The control's p99 (see the module doc), median (min-max) of the rounds.
    pub fn control_p99(&self) -> Spread {
        Spread::of_each(&self.rounds, |r| r.control.p99_us)
    }
}

/// One round.
#[derive(Debug, Clone)]
pub struct Round {
    /// Timed calls (each with at least `IN_FLIGHT` requests in flight).
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Timed calls of `SLOW_US` or more, by what happened meanwhile.
    pub slow: Slow,
    /// The first `IN_FLIGHT` calls (in flight growing from 0).
    pub fill_p50_us: f64,
    pub fill_p99_us: f64,
    /// Requests in flight (executor permits taken) after the last call.
    pub in_flight_at_end: usize,
    /// The machine's floor in the same round: a CPU-only loop as long as a
    /// median call, timed after each call.
    pub control: Control,
}

/// The control's figures in one round (see the module doc). A run was
/// calibrated to last the round's `fill_p50_us`.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Runs of `SLOW_US` or more, by what happened meanwhile.
    pub slow: Slow,
}

/// `rounds` rounds of [`measure_round`].
pub fn measure(
    plugin: &Plugin,
    stub: &Stub,
    delay: Duration,
    timed: usize,
    rounds: usize,
) -> anyhow::Result<Figures> {
    let mut figures = Figures { rounds: Vec::new() };
    for n in 0..rounds.max(1) {
        let round = measure_round(plugin, stub, delay, timed)?;
        eprintln!(
            "bench: create_async round {}: p50 {:.1} µs, p99 {:.1} µs, max {:.0} µs",
            n + 1,
            round.p50_us,
            round.p99_us,
            round.max_us
        );
        figures.rounds.push(round);
    }
    Ok(figures)
}

/// One round: fresh pieces, `IN_FLIGHT` calls to fill, `timed` calls timed.
pub fn measure_round(
    plugin: &Plugin,
    stub: &Stub,
    delay: Duration,
    timed: usize,
) -> anyhow::Result<Round> {
    let rig = Rig::new(plugin, &stub.base_url(delay), 4_096, 0)?;
    let limits = ScriptLimits::default();
    let providers = rig.providers();
    let (mut ledger, token) = Ledger::new();
    let executor = providers.first().executor.clone();
    let host = ScriptHost::new(providers)?;
    let engine = script_engine(&host, &limits);
    host.set_current(Some(token));

    let builder: Dynamic = engine
        .eval(BUILDER)
        .map_err(|e| anyhow::anyhow!("building the builder: {e}"))?;
    let mut scope = Scope::new();
    scope.push("b", builder);
    let call = engine
        .compile(format!(
            r#"b.create_async("{WORKER_ID}", "{CONTEXT_ID}", "{SECRET}")"#
        ))
        .map_err(|e| anyhow::anyhow!("compiling the call: {e}"))?;
    // Slow calls are classified by what the thread's context-switch counts
    // did meanwhile (read outside the timed bracket): preempted, blocked, or
    // neither (the call itself was slow).
    let mut slow = Slow::default();
    let mut control_slow = Slow::default();
    // After each call, when `control` is given, one timed run of it.
    let mut time_calls = |n: usize,
                          slow: &mut Slow,
                          mut control: Option<(u64, &mut Vec<f64>, &mut Slow)>|
     -> anyhow::Result<Vec<f64>> {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            time_one(&mut samples, slow, || {
                engine
                    .eval_ast_with_scope::<Dynamic>(&mut scope, &call)
                    .map(black_box)
                    .map_err(|e| anyhow::anyhow!("create_async failed: {e}"))
            })?;
            if let Some((steps, runs, slow)) = control.as_mut() {
                time_one(runs, slow, || anyhow::Ok(spin(*steps)))?;
            }
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples)
    };

    let open_before = stub.open();
    let fill = time_calls(IN_FLIGHT, &mut Slow::default(), None)?;
    let fill_p50_us = stats::percentile(&fill, 50.0);
    let steps = calibrate(fill_p50_us);
    if !stub.wait_open(open_before + IN_FLIGHT as u64, Duration::from_secs(20)) {
        bail!(
            "only {} of {IN_FLIGHT} requests reached the stub",
            stub.open() - open_before
        );
    }
    let mut control = Vec::with_capacity(timed);
    let samples = time_calls(
        timed,
        &mut slow,
        Some((steps, &mut control, &mut control_slow)),
    )?;
    control.sort_by(f64::total_cmp);
    let in_flight_at_end = executor.in_flight();
    if stub.open() < open_before + IN_FLIGHT as u64 {
        bail!("requests finished during the timed calls: make the stub delay longer");
    }

    // Let every request and flow finish before the next measurement.
    host.set_current(None);
    drop(engine);
    drop(host);
    let summary = rig
        .runtime()
        .block_on(ledger.wait(Some(delay + Duration::from_secs(60))))
        .map_err(|s| anyhow::anyhow!("requests still open after the delay: {s}"))
        .context("create_async measurement")?;
    if summary.flows_run as usize != IN_FLIGHT + timed || summary.flows_failed > 0 {
        bail!("create_async measurement: unexpected outcome: {summary}");
    }
    rig.finish();

    let mean_us = samples.iter().sum::<f64>() / samples.len() as f64;
    Ok(Round {
        calls: samples.len(),
        p50_us: stats::percentile(&samples, 50.0),
        p99_us: stats::percentile(&samples, 99.0),
        max_us: samples.last().copied().unwrap_or(f64::NAN),
        mean_us,
        slow,
        fill_p50_us,
        fill_p99_us: stats::percentile(&fill, 99.0),
        in_flight_at_end,
        control: Control {
            p50_us: stats::percentile(&control, 50.0),
            p99_us: stats::percentile(&control, 99.0),
            max_us: control.last().copied().unwrap_or(f64::NAN),
            slow: control_slow,
        },
    })
}

/// Runs `f` once, timed: its duration in µs goes to `samples`, and if it
/// took `SLOW_US` or more, its cause (from the thread's context-switch
/// counts, read outside the timed bracket) to `slow`.
fn time_one<T>(
    samples: &mut Vec<f64>,
    slow: &mut Slow,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<()> {
    let before = switches();
    let started = Instant::now();
    let result = f();
    let micros = started.elapsed().as_nanos() as f64 / 1_000.0;
    let after = switches();
    result?;
    samples.push(micros);
    if micros >= SLOW_US {
        slow.count(before, after);
    }
    Ok(())
}

/// The control's work: `steps` rounds of a linear congruential generator,
/// each depending on the last, so neither the compiler nor the core can
/// skip or overlap them. No memory beyond registers, no calls.
fn spin(steps: u64) -> u64 {
    let mut x = black_box(1u64);
    for i in 0..black_box(steps) {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    black_box(x)
}

/// The number of [`spin`] steps that last `target_us` on this thread: the
/// fastest of several timed runs of a large count gives the cost of a step
/// when nothing interferes.
fn calibrate(target_us: f64) -> u64 {
    const STEPS: u64 = 200_000;
    let fastest_ns = (0..9)
        .map(|_| {
            let started = Instant::now();
            spin(STEPS);
            started.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min);
    let per_step_ns = (fastest_ns / STEPS as f64).max(1e-3);
    ((target_us * 1_000.0 / per_step_ns) as u64).max(1)
}

/// A call this slow or slower misses the goal on its own.
pub const SLOW_US: f64 = P99_GOAL_US;

/// Slow calls by cause, from the thread's context-switch counters.
#[derive(Debug, Clone, Default)]
pub struct Slow {
    /// The kernel took the core away (involuntary switch).
    pub preempted: usize,
    /// The thread waited (voluntary switch: a lock, a blocking call).
    pub blocked: usize,
    /// Neither: the call's own work took that long.
    pub running: usize,
}

impl Slow {
    fn count(&mut self, before: (i64, i64), after: (i64, i64)) {
        if after.1 > before.1 {
            self.preempted += 1;
        } else if after.0 > before.0 {
            self.blocked += 1;
        } else {
            self.running += 1;
        }
    }

    pub fn total(&self) -> usize {
        self.preempted + self.blocked + self.running
    }

    /// The counts of several rounds added up.
    pub fn sum<'a>(slows: impl IntoIterator<Item = &'a Slow>) -> Slow {
        slows.into_iter().fold(Slow::default(), |sum, s| Slow {
            preempted: sum.preempted + s.preempted,
            blocked: sum.blocked + s.blocked,
            running: sum.running + s.running,
        })
    }
}

/// This thread's (voluntary, involuntary) context switches so far.
fn switches() -> (i64, i64) {
    // SAFETY: getrusage writes only the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD reports on the calling thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (usage.ru_nvcsw, usage.ru_nivcsw)
}
