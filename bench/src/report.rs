//! The one table and `results.json`: every figure, its baseline, the ratio,
//! the goal and whether it holds, plus the machine it ran on.
//!
//! The table is Markdown, so it can be pasted into README.md as it is.

use serde_json::{Value, json};

use crate::webhooks::{self, Spread};
use crate::{build_request, create_async, e2e, redis_queue, rss};

/// Whatever ran (a measurement can be skipped with `--only`).
#[derive(Default)]
pub struct Results {
    pub build_request: Option<build_request::Figures>,
    pub create_async: Option<create_async::Figures>,
    pub e2e: Option<e2e::Figures>,
    pub rss: Option<rss::Figures>,
    pub redis: Option<redis_queue::Figures>,
    pub webhooks: Option<webhooks::Figures>,
    pub seconds: f64,
    /// [`machine`], taken before the first measurement (the load average at
    /// the end would count the seed-style baseline's threads).
    pub machine: Value,
}

struct Row {
    what: String,
    payhost: String,
    baseline: String,
    ratio: String,
    goal: &'static str,
    holds: Option<bool>,
}

fn us(ns: f64) -> String {
    format!("{:.2} µs", ns / 1_000.0)
}

/// `median (min-max)` of per-round values, each written by `f`.
fn spread(s: &Spread, f: impl Fn(f64) -> String) -> String {
    format!("{} ({}-{})", f(s.median), f(s.min), f(s.max))
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1_000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn rows(r: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(b) = &r.build_request {
        rows.push(Row {
            what: "plugin build-request, payment intent, 10 fields (per call)".into(),
            payhost: us(b.plugin_ns),
            baseline: format!("{} native", us(b.native_ns)),
            ratio: format!("{:.1}x native", b.ratio()),
            goal: "< 5 µs and <= 5x",
            holds: Some(b.plugin_ns < 5_000.0 && b.ratio() <= 5.0),
        });
        rows.push(Row {
            what: "  host side: rhai_to_tree + build-request (per call)".into(),
            payhost: us(b.tree_and_plugin_ns),
            baseline: format!("{} rhai_to_tree alone", us(b.tree_ns)),
            ratio: String::new(),
            goal: "",
            holds: None,
        });
    }
    if let Some(c) = &r.create_async {
        rows.push(Row {
            what: format!(
                "create_async return, >= {} in flight ({} calls)",
                create_async::IN_FLIGHT,
                c.calls
            ),
            payhost: format!("p50 {:.1} µs, p99 {:.1} µs", c.p50_us, c.p99_us),
            baseline: format!(
                "max {:.0} µs, mean {:.1} µs; calls >= 50 µs: {} ({} preempted, {} blocked, {} running)",
                c.max_us,
                c.mean_us,
                c.slow.total(),
                c.slow.preempted,
                c.slow.blocked,
                c.slow.running
            ),
            ratio: String::new(),
            goal: "p99 < 50 µs",
            holds: Some(c.p99_us < 50.0),
        });
    }
    if let Some(e) = &r.e2e {
        rows.push(Row {
            what: format!(
                "end to end, {} requests, {} concurrent (req/s)",
                e.requests,
                e2e::CONCURRENCY
            ),
            payhost: format!("{:.0}", e.payhost_rps),
            baseline: format!("{:.0} seed-style", e.seed_rps),
            ratio: format!("{:.1}x", e.vs_seed()),
            goal: ">= 20x",
            holds: Some(e.vs_seed() >= 20.0),
        });
        rows.push(Row {
            what: "  same, vs a bare reqwest loop (req/s)".into(),
            payhost: format!("{:.0}", e.payhost_rps),
            baseline: format!("{:.0} bare reqwest", e.bare_rps),
            ratio: format!("{:.0}%", 100.0 * e.share_of_bare()),
            goal: ">= 60%",
            holds: Some(e.share_of_bare() >= 0.6),
        });
    }
    if let Some(m) = &r.rss {
        let open = |s: &rss::Side| format!("{} ({} open)", mib(s.peak_kib), s.peak_open);
        rows.push(Row {
            what: format!(
                "peak RSS (VmHWM), {} requests in flight, answered 1 s after all are open",
                m.requests
            ),
            payhost: open(&m.payhost),
            baseline: match &m.seed {
                Ok(seed) => format!("{} seed-style", open(seed)),
                Err(error) => format!("seed-style cannot: {error}"),
            },
            ratio: match &m.seed {
                Ok(seed) => format!(
                    "{:.1}x less",
                    seed.peak_kib as f64 / m.payhost.peak_kib as f64
                ),
                Err(_) => String::new(),
            },
            goal: "",
            holds: None,
        });
        rows.push(Row {
            what: format!("  same, {} requests in flight", m.common),
            payhost: open(&m.payhost_common),
            baseline: format!("{} seed-style", open(&m.seed_common)),
            ratio: format!("{:.1}x less", m.ratio()),
            goal: "",
            holds: None,
        });
    }
    if let Some(q) = &r.redis {
        rows.push(Row {
            what: format!(
                "Redis flow jobs/s, {} workers x {} concurrency, {} jobs",
                q.workers, q.concurrency, q.jobs
            ),
            payhost: format!("{:.0}", q.jobs_per_s),
            baseline: format!(
                "{:.0} SET/s, {:.0} XADD/s redis-benchmark",
                q.set_rps, q.xadd_rps
            ),
            ratio: format!(
                "{:.1}% of SET, {:.1}% of XADD",
                100.0 * q.jobs_per_s / q.set_rps,
                100.0 * q.jobs_per_s / q.xadd_rps
            ),
            goal: "",
            holds: None,
        });
    }
    if let Some(w) = &r.webhooks {
        let rounds = w.payhost.len();
        let per_s = |v: f64| format!("{v:.0}");
        rows.push(Row {
            what: format!(
                "webhooks accepted/s, {} signed Stripe deliveries, {} keep-alive clients, median of {rounds} interleaved rounds (min-max)",
                w.deliveries, w.clients
            ),
            payhost: spread(&w.payhost_spread(|r| r.per_s), per_s),
            baseline: format!(
                "{} bare hyper (200, no verification)",
                spread(&w.bare_spread(|r| r.per_s), per_s)
            ),
            ratio: format!(
                "{} of bare",
                spread(&w.rate_share(), |v| format!("{:.0}%", 100.0 * v))
            ),
            goal: "",
            holds: None,
        });
        let latency =
            |p50: Spread, p99: Spread| format!("p50 {}, p99 {}", ms(p50.median), ms(p99.median));
        rows.push(Row {
            what: "  acceptance latency, request sent to 200 received (median of rounds)".into(),
            payhost: latency(
                w.payhost_spread(|r| r.p50_us),
                w.payhost_spread(|r| r.p99_us),
            ),
            baseline: format!(
                "{} bare hyper",
                latency(w.bare_spread(|r| r.p50_us), w.bare_spread(|r| r.p99_us))
            ),
            ratio: format!("p99 {}", spread(&w.p99_ratio(), |v| format!("{v:.1}x"))),
            goal: "",
            holds: None,
        });
    }
    rows
}

/// The Markdown table.
pub fn table(r: &Results) -> String {
    let mut out = String::from("| measurement | payhost | baseline | ratio | goal | holds |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for row in rows(r) {
        let holds = match row.holds {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.what, row.payhost, row.baseline, row.ratio, row.goal, holds
        ));
    }
    out
}

/// What machine this is: cores, CPU model, memory, load.
pub fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "memory_gib": (mem_kib as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "loadavg": read("/proc/loadavg").trim(),
    })
}

/// Every figure as JSON.
pub fn json(r: &Results) -> Value {
    let mut out = json!({ "machine": r.machine, "seconds": r.seconds });
    if let Some(b) = &r.build_request {
        out["build_request"] = json!({
            "plugin_ns": b.plugin_ns, "native_ns": b.native_ns, "ratio": b.ratio(),
            "rhai_to_tree_ns": b.tree_ns, "rhai_to_tree_and_plugin_ns": b.tree_and_plugin_ns,
            "calls": b.calls,
            "goal_holds": b.plugin_ns < 5_000.0 && b.ratio() <= 5.0,
        });
    }
    if let Some(c) = &r.create_async {
        out["create_async"] = json!({
            "in_flight": create_async::IN_FLIGHT, "calls": c.calls,
            "p50_us": c.p50_us, "p99_us": c.p99_us, "max_us": c.max_us, "mean_us": c.mean_us,
            "fill_p50_us": c.fill_p50_us, "fill_p99_us": c.fill_p99_us,
            "in_flight_at_end": c.in_flight_at_end,
            "slow_calls": { "threshold_us": create_async::SLOW_US, "preempted": c.slow.preempted,
                            "blocked": c.slow.blocked, "running": c.slow.running },
            "goal_holds": c.p99_us < 50.0,
        });
    }
    if let Some(e) = &r.e2e {
        out["end_to_end"] = json!({
            "requests": e.requests, "concurrency": e2e::CONCURRENCY,
            "payhost_rps": e.payhost_rps, "seed_rps": e.seed_rps, "bare_reqwest_rps": e.bare_rps,
            "payhost_rounds": e.payhost_rounds, "bare_reqwest_rounds": e.bare_rounds,
            "seed_rounds": e.seed_rounds,
            "vs_seed": e.vs_seed(), "share_of_bare": e.share_of_bare(),
            "goal_vs_seed_holds": e.vs_seed() >= 20.0,
            "goal_share_of_bare_holds": e.share_of_bare() >= 0.6,
        });
    }
    if let Some(m) = &r.rss {
        let side = |s: &rss::Side| {
            json!({ "peak_kib": s.peak_kib, "idle_kib": s.idle_kib,
                    "peak_open": s.peak_open, "seconds": s.seconds })
        };
        out["peak_rss"] = json!({
            "requests": m.requests, "delay_ms": m.delay_ms,
            "payhost": side(&m.payhost),
            "seed": match &m.seed { Ok(s) => side(s), Err(e) => json!({ "error": e }) },
            "common_requests": m.common,
            "payhost_common": side(&m.payhost_common), "seed_common": side(&m.seed_common),
            "seed_over_payhost_common": m.ratio(),
        });
    }
    if let Some(q) = &r.redis {
        out["redis"] = json!({
            "jobs": q.jobs, "workers": q.workers, "concurrency": q.concurrency,
            "jobs_per_s": q.jobs_per_s, "publish_seconds": q.publish_seconds,
            "redis_benchmark_set_rps": q.set_rps, "redis_benchmark_xadd_rps": q.xadd_rps,
            "share_of_set": q.jobs_per_s / q.set_rps, "share_of_xadd": q.jobs_per_s / q.xadd_rps,
        });
    }
    if let Some(w) = &r.webhooks {
        let spread = |s: Spread| json!({ "median": s.median, "min": s.min, "max": s.max });
        let side = |rounds: &[webhooks::Round]| {
            let of = |f: fn(&webhooks::Round) -> f64| {
                spread(Spread::of(&rounds.iter().map(f).collect::<Vec<_>>()))
            };
            json!({
                "accepted_per_s": of(|r| r.per_s),
                "p50_us": of(|r| r.p50_us),
                "p99_us": of(|r| r.p99_us),
                "rounds": rounds.iter().map(|r| json!({
                    "accepted_per_s": r.per_s, "p50_us": r.p50_us, "p99_us": r.p99_us,
                    "max_us": r.max_us, "seconds": r.seconds,
                    "cpu_us_per_delivery": r.cpu_us.iter()
                        .map(|(thread, us)| (thread.clone(), json!(us)))
                        .collect::<serde_json::Map<_, _>>(),
                })).collect::<Vec<_>>(),
            })
        };
        out["webhooks"] = json!({
            "deliveries": w.deliveries, "clients": w.clients, "rounds": w.payhost.len(),
            "payhost": side(&w.payhost), "bare_hyper": side(&w.bare),
            "payhost_drain_seconds": w.payhost_drain_s,
            "share_of_bare_accepted_per_s": spread(w.rate_share()),
            "p50_over_bare": spread(w.p50_ratio()),
            "p99_over_bare": spread(w.p99_ratio()),
        });
    }
    out
}
