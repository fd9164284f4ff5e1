//! End to end: 10,000 requests, script -> HTTP to the stub -> response flow
//! done, in requests per second.
//!
//! Three contenders, each run in this process against the same stub (no
//! delay) with the same concurrency bound (256, payhost's default
//! `max_in_flight`), on the same 10-field payment intent and form body:
//!
//! - payhost, in process through the library, wired as `run.rs` wires it
//!   ([`crate::rig`]): one script thread sending 10,000 `create_async`,
//!   the plugin building each request, the shared executor, the plugin
//!   classifying each response, the flow run by a flow thread;
//! - the seed-style baseline ([`crate::seed`]): the same script against the
//!   seed's design (thread, runtime and client per request, flow compiled
//!   from generated source per response);
//! - a bare reqwest loop: one client, 256 tasks on a two-thread runtime
//!   POSTing the ready-made form body and reading the answer; no plugin, no
//!   Rhai, no flow. That is the most this machine can do for this traffic
//!   with this HTTP stack, so payhost's share of it is its overhead.
//!
//! The clock runs from the script's start (the loop's, for bare reqwest) to
//! the last flow (the last body); building runtimes and pools is outside it.
//! All three run `rounds` times, interleaved (payhost, bare reqwest,
//! seed-style in each round); each ratio is taken within a round and the
//! figure is the median of the rounds' ratios with the smallest and the
//! largest ([`Spread::ratios`]): the bare loop itself moves by a third
//! between rounds on this shared machine, so a best-of-each-side ratio would
//! depend on which rounds happened to be picked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use payhost::http::HttpVersion;
use payhost::plugin::Plugin;

use crate::fixtures::{self, SECRET};
use crate::rig::{self, Rig};
use crate::seed::Seed;
use crate::stats::Spread;
use crate::stub::Stub;

/// Concurrency bound for all three.
pub const CONCURRENCY: usize = 256;

/// The goals: payhost at least this many times the seed-style rate...
pub const VS_SEED_GOAL: f64 = 20.0;
/// ... and at least this share of the bare loop's, both as medians of the
/// per-round ratios.
pub const SHARE_OF_BARE_GOAL: f64 = 0.60;

/// Every round's rate (requests/s) of each side, round `i` of each taken
/// back to back.
#[derive(Debug, Clone)]
pub struct Figures {
    pub requests: usize,
    pub payhost_rounds: Vec<f64>,
    pub bare_rounds: Vec<f64>,
    pub seed_rounds: Vec<f64>,
}

impl Figures {
    pub fn payhost(&self) -> Spread {
        Spread::of(&self.payhost_rounds)
    }

    pub fn seed(&self) -> Spread {
        Spread::of(&self.seed_rounds)
    }

    pub fn bare(&self) -> Spread {
        Spread::of(&self.bare_rounds)
    }

    /// payhost over seed-style, per round.
    pub fn vs_seed(&self) -> Spread {
        Spread::ratios(&self.payhost_rounds, &self.seed_rounds)
    }

    /// payhost over bare reqwest, per round.
    pub fn share_of_bare(&self) -> Spread {
        Spread::ratios(&self.payhost_rounds, &self.bare_rounds)
    }

    pub fn vs_seed_holds(&self) -> bool {
        self.vs_seed().median >= VS_SEED_GOAL
    }

    pub fn share_of_bare_holds(&self) -> bool {
        self.share_of_bare().median >= SHARE_OF_BARE_GOAL
    }
}

const LIMIT: Duration = Duration::from_secs(600);

pub fn measure(
    plugin: &Plugin,
    stub: &Stub,
    requests: usize,
    rounds: usize,
) -> anyhow::Result<Figures> {
    let base_url = stub.base_url(Duration::ZERO);
    let mut payhost_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    let mut seed_rounds = Vec::new();
    for round in 0..rounds.max(1) {
        let p = rate(requests, payhost(plugin, &base_url, requests)?);
        let b = rate(requests, bare_reqwest(&base_url, requests)?);
        let s = rate(requests, seed_style(&base_url, requests)?);
        eprintln!(
            "bench: e2e round {}: payhost {p:.0}/s, bare reqwest {b:.0}/s, seed-style {s:.0}/s \
             ({:.1}x seed, {:.0}% of bare)",
            round + 1,
            p / s,
            100.0 * p / b
        );
        payhost_rounds.push(p);
        bare_rounds.push(b);
        seed_rounds.push(s);
    }
    Ok(Figures {
        requests,
        payhost_rounds,
        bare_rounds,
        seed_rounds,
    })
}

fn rate(requests: usize, elapsed: Duration) -> f64 {
    requests as f64 / elapsed.as_secs_f64()
}

/// payhost through the library; returns script start to last flow.
pub fn payhost(plugin: &Plugin, base_url: &str, requests: usize) -> anyhow::Result<Duration> {
    payhost_speaking(plugin, base_url, requests, HttpVersion::Auto)
}

/// [`payhost()`] with the executor speaking `version` (the bench stub speaks
/// HTTP/1.1 and h2c).
pub fn payhost_speaking(
    plugin: &Plugin,
    base_url: &str,
    requests: usize,
    version: HttpVersion,
) -> anyhow::Result<Duration> {
    let rig = Rig::speaking(plugin, base_url, CONCURRENCY, requests, version)?;
    let (summary, elapsed) = rig.run_to_end(LIMIT)?;
    rig.finish();
    rig::check_complete(&summary, requests)?;
    Ok(elapsed)
}

/// The seed-style baseline with the same bound.
pub fn seed_style(base_url: &str, requests: usize) -> anyhow::Result<Duration> {
    let seed = Seed::new(base_url, CONCURRENCY);
    crate::seed::run_to_end(&seed, &fixtures::send_script(requests), requests, LIMIT)
}

/// One client, `CONCURRENCY` tasks, the ready-made body.
pub fn bare_reqwest(base_url: &str, requests: usize) -> anyhow::Result<Duration> {
    let runtime = fixtures::http_runtime()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let url: reqwest::Url = format!("{base_url}/v1/payment_intents").parse()?;
    let body = bytes::Bytes::from(fixtures::form_body()?);
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            let (next, ok) = (next.clone(), ok.clone());
            tasks.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let sent = client
                        .post(url.clone())
                        .basic_auth(SECRET, Some(""))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    if let Ok(response) = sent
                        && response.status().is_success()
                        && response.bytes().await.is_ok()
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    let elapsed = started.elapsed();
    runtime.shutdown_background();
    let ok = ok.load(Ordering::Relaxed);
    if ok != requests {
        bail!("bare reqwest: {ok} of {requests} requests succeeded");
    }
    Ok(elapsed)
}
