//! The one table and `results.json`: every figure, its baseline, the ratio,
//! the goal and whether it holds, plus the machine it ran on.
//!
//! The table is Markdown, so it can be pasted into README.md as it is.

use serde_json::{Value, json};

use crate::stats::Spread;
use crate::{build_request, create_async, e2e, redis_queue, rss, webhooks};

/// Whatever ran (a measurement can be skipped with `--only`).
#[derive(Default)]
pub struct Results {
    pub build_request: Option<build_request::Figures>,
    pub create_async: Option<create_async::Figures>,
    pub e2e: Option<e2e::Figures>,
    pub rss: Option<rss::Figures>,
    pub redis: Option<redis_queue::Figures>,
    pub webhooks: Option<webhooks::Figures>,
    /// `--rounds` (each measurement's own count may be lower; its JSON says).
    pub rounds: usize,
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
    goal: String,
    holds: Option<bool>,
}

fn us_from_ns(ns: f64) -> String {
    format!("{:.2} µs", ns / 1_000.0)
}

/// A spread of nanoseconds in µs, the unit once.
fn us_spread(s: Spread) -> String {
    s.scaled(1e-3).show_in(|v| format!("{v:.2}"), "µs")
}

/// A spread of KiB in MiB, the unit once.
fn mib_spread(s: Spread) -> String {
    s.scaled(1.0 / 1024.0).show_in(|v| format!("{v:.0}"), "MiB")
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1_000.0)
}

fn mib(kib: f64) -> String {
    format!("{:.0} MiB", kib / 1024.0)
}

fn per_s(v: f64) -> String {
    count(v.round() as usize)
}

fn pct(v: f64) -> String {
    format!("{:.0}%", 100.0 * v)
}

fn times(v: f64) -> String {
    format!("{v:.1}x")
}

/// `1,000`-style thousands.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `create_async`'s timed calls (or control runs) of `SLOW_US` or more over
/// all rounds, by cause.
fn slow_summary<'a>(
    what: &str,
    rounds: impl IntoIterator<Item = &'a create_async::Slow>,
) -> String {
    let slow = create_async::Slow::sum(rounds);
    format!(
        "{what} >= {:.0} µs, all rounds: {} ({} preempted, {} blocked, {} running)",
        create_async::SLOW_US,
        slow.total(),
        slow.preempted,
        slow.blocked,
        slow.running
    )
}

/// One round's [`create_async::Slow`] for results.json.
fn slow_json(slow: &create_async::Slow) -> Value {
    json!({ "threshold_us": create_async::SLOW_US, "preempted": slow.preempted,
            "blocked": slow.blocked, "running": slow.running })
}

fn rows(r: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(b) = &r.build_request {
        rows.push(Row {
            what: format!(
                "plugin build-request, payment intent, 10 fields (per call), median (min-max) of {} interleaved rounds",
                b.rounds.len()
            ),
            payhost: us_spread(b.plugin()),
            baseline: format!("{} native", us_spread(b.native())),
            ratio: format!("{} native", b.ratio().show(times)),
            goal: "< 5 µs and <= 5x (medians)".into(),
            holds: Some(b.goal_holds()),
        });
        rows.push(Row {
            what: "  host side: rhai_to_tree + build-request (per call, median)".into(),
            payhost: us_from_ns(b.tree_and_plugin().median),
            baseline: format!("{} rhai_to_tree alone", us_from_ns(b.tree().median)),
            ratio: String::new(),
            goal: String::new(),
            holds: None,
        });
    }
    if let Some(c) = &r.create_async {
        let p99 = c.p99();
        rows.push(Row {
            what: format!(
                "create_async return, >= {} in flight ({} calls a round, {} rounds)",
                count(create_async::IN_FLIGHT),
                count(c.calls()),
                c.rounds.len()
            ),
            payhost: format!(
                "p99 {:.1} µs median ({:.1}-{:.1}), worst round {:.1} µs; p50 {:.1} µs",
                p99.median,
                p99.min,
                p99.max,
                p99.max,
                c.p50().median
            ),
            baseline: slow_summary("calls", c.rounds.iter().map(|r| &r.slow)),
            ratio: String::new(),
            goal: format!("p99 <= {:.0} µs in every round", create_async::P99_GOAL_US),
            holds: Some(c.goal_holds()),
        });
        let control = c.control_p99();
        rows.push(Row {
            what: "  the machine's floor: a CPU-only loop as long as a median call, timed after each call".into(),
            payhost: format!(
                "p99 {:.1} µs median ({:.1}-{:.1}); p50 {:.1} µs",
                control.median,
                control.min,
                control.max,
                Spread::of_each(&c.rounds, |r| r.control.p50_us).median
            ),
            baseline: slow_summary("runs", c.rounds.iter().map(|r| &r.control.slow)),
            ratio: String::new(),
            goal: String::new(),
            holds: None,
        });
    }
    if let Some(e) = &r.e2e {
        rows.push(Row {
            what: format!(
                "end to end, {} requests, {} concurrent (req/s), median (min-max) of {} interleaved rounds",
                count(e.requests),
                e2e::CONCURRENCY,
                e.payhost_rounds.len()
            ),
            payhost: e.payhost().show(per_s),
            baseline: format!("{} seed-style", e.seed().show(per_s)),
            ratio: e.vs_seed().show(times),
            goal: format!(">= {:.0}x (median)", e2e::VS_SEED_GOAL),
            holds: Some(e.vs_seed_holds()),
        });
        rows.push(Row {
            what: "  same, vs a bare reqwest loop (req/s)".into(),
            payhost: e.payhost().show(per_s),
            baseline: format!("{} bare reqwest", e.bare().show(per_s)),
            ratio: e.share_of_bare().show(pct),
            goal: format!(">= {:.0}% (median)", 100.0 * e2e::SHARE_OF_BARE_GOAL),
            holds: Some(e.share_of_bare_holds()),
        });
    }
    if let Some(m) = &r.rss {
        rows.extend(rss_rows(m));
    }
    if let Some(q) = &r.redis {
        for point in &q.points {
            let goal = point.workers == redis_queue::GOAL_WORKERS;
            rows.push(Row {
                what: format!(
                    "Redis flow jobs/s, {} worker{} x {} flow threads, {} jobs, median (min-max) of {} rounds",
                    point.workers,
                    if point.workers == 1 { "" } else { "s" },
                    q.flow_threads,
                    count(q.jobs),
                    point.rounds.len()
                ),
                payhost: point.jobs_per_s().show(per_s),
                baseline: format!("{} XADD/s redis-benchmark", point.xadd_rps().show(per_s)),
                ratio: format!(
                    "{} of XADD",
                    point
                        .share_of_xadd()
                        .show(|v| format!("{:.1}%", 100.0 * v))
                ),
                goal: if goal {
                    format!(">= {:.0}% of XADD (median)", 100.0 * redis_queue::SHARE_GOAL)
                } else {
                    String::new()
                },
                holds: goal.then(|| q.goal_holds()),
            });
        }
    }
    if let Some(w) = &r.webhooks {
        let rounds = w.payhost.len();
        rows.push(Row {
            what: format!(
                "webhooks accepted/s, {} signed Stripe deliveries, {} keep-alive clients, median (min-max) of {rounds} interleaved rounds",
                count(w.deliveries),
                w.clients
            ),
            payhost: w.payhost_spread(|r| r.per_s).show(per_s),
            baseline: format!(
                "{} bare hyper (200, no verification)",
                w.bare_spread(|r| r.per_s).show(per_s)
            ),
            ratio: format!("{} of bare", w.rate_share().show(pct)),
            goal: String::new(),
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
            ratio: format!("p99 {}", w.p99_ratio().show(times)),
            goal: String::new(),
            holds: None,
        });
    }
    rows
}

fn rss_rows(m: &rss::Figures) -> Vec<Row> {
    let plan = &m.plan;
    let seed_at_goal = match &m.seed_at_goal {
        Ok(seed) => format!("{} seed-style", mib(seed.peak_kib as f64)),
        Err(error) => format!("seed-style cannot: {error}"),
    };
    let goal = format!("<= {:.0} MiB (median)", rss::GOAL_MIB);
    let mut rows = vec![
        Row {
            what: format!(
                "peak RSS (VmHWM), {} requests in flight over HTTP/2 (one connection), answered 1 s after all are open, median (min-max) of {} rounds",
                count(plan.goal_at),
                m.curve_h2.rounds_at(plan.goal_at)
            ),
            payhost: m.goal_peak_h2().map_or("not measured".into(), mib_spread),
            baseline: seed_at_goal.clone(),
            ratio: String::new(),
            goal: goal.clone(),
            holds: Some(m.goal_holds_h2()),
        },
        Row {
            what: format!(
                "  same over HTTP/1.1 (a connection per request), {} rounds",
                m.curve.rounds_at(plan.goal_at)
            ),
            payhost: m.goal_peak().map_or("not measured".into(), mib_spread),
            baseline: seed_at_goal,
            ratio: String::new(),
            goal,
            holds: Some(m.goal_holds()),
        },
        Row {
            what: format!(
                "  same, {} requests in flight over HTTP/1.1, {} interleaved rounds",
                count(plan.common),
                m.payhost_common.len()
            ),
            payhost: mib_spread(m.payhost_common_peak()),
            baseline: format!("{} seed-style", mib_spread(m.seed_common_peak())),
            ratio: format!("{} less", m.ratio().show(times)),
            goal: String::new(),
            holds: None,
        },
    ];
    for (curve, over) in [(&m.curve, "HTTP/1.1"), (&m.curve_h2, "HTTP/2")] {
        rows.push(Row {
            what: format!(
                "  payhost's curve over {over}: peak RSS by requests in flight (medians)"
            ),
            payhost: curve_points(curve),
            baseline: format!("idle {}", mib(m.idle_kib().median)),
            ratio: curve_slopes(curve),
            goal: String::new(),
            holds: None,
        });
        if let Some(row) = heap_row(curve, over, plan.goal_at) {
            rows.push(row);
        }
    }
    rows
}

/// The heap allocated with every request open, by requests in flight, and
/// what the allocator held then at the goal count; `None` where nothing
/// counted it.
fn heap_row(curve: &rss::Curve, over: &str, goal_at: usize) -> Option<Row> {
    let points: Vec<String> = (curve.0.iter())
        .filter_map(|p| {
            Some(format!(
                "{}: {}",
                count(p.requests),
                mib(p.heap_kib()?.median)
            ))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let held = curve.point(goal_at).and_then(rss::Point::heap_held_kib);
    Some(Row {
        what: format!(
            "    heap allocated with every request open over {over} (glibc's count, halfway through the hold; allocated is not resident: the RSS peak counts only pages touched, and adds the binary's pages, the answers and the allocator's free space), by requests in flight (medians)"
        ),
        payhost: points.join("; "),
        baseline: held.map_or(String::new(), |h| {
            format!(
                "held from the system at {}: {}",
                count(goal_at),
                mib_spread(h)
            )
        }),
        ratio: curve.heap_slope().map_or(String::new(), |s| {
            format!(
                "per in-flight request: {:.1} KiB ({}-{})",
                s.kib_per_request,
                count(s.from),
                count(s.to)
            )
        }),
        goal: String::new(),
        holds: None,
    })
}

/// `1,000: 47 MiB (5 rounds); ...`, points not run with why.
fn curve_points(curve: &rss::Curve) -> String {
    let points: Vec<String> = (curve.0.iter())
        .map(|p| match (&p.rounds, p.peak_kib()) {
            (Ok(rounds), Some(peak)) => format!(
                "{}{}: {} ({} rounds)",
                count(p.requests),
                if p.stand_in {
                    " (the largest the fd limit holds)"
                } else {
                    ""
                },
                mib(peak.median),
                rounds.len()
            ),
            (Err(why), _) => format!("{}: not run, {why}", count(p.requests)),
            _ => format!("{}: no rounds", count(p.requests)),
        })
        .collect();
    points.join("; ")
}

/// The cost of one more request in flight between points, and overall.
fn curve_slopes(curve: &rss::Curve) -> String {
    let slopes: Vec<String> = (curve.slopes().iter())
        .map(|s| {
            format!(
                "{:.1} KiB ({}-{})",
                s.kib_per_request,
                count(s.from),
                count(s.to)
            )
        })
        .collect();
    format!(
        "per in-flight request: {}{}",
        slopes.join(", "),
        curve.overall_slope().map_or(String::new(), |s| format!(
            "; {:.1} KiB overall",
            s.kib_per_request
        ))
    )
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

/// Every figure as JSON: every spread as `{median, min, max}`, every
/// round's raw values, and whether each goal holds.
pub fn json(r: &Results) -> Value {
    let mut out = json!({ "machine": r.machine, "seconds": r.seconds, "rounds": r.rounds });
    let spread = |s: Spread| s.json();
    if let Some(b) = &r.build_request {
        out["build_request"] = json!({
            "batches_per_round": b.batches, "calls_per_batch": b.per_batch, "calls": b.calls(),
            "plugin_ns": spread(b.plugin()), "native_ns": spread(b.native()),
            "rhai_to_tree_ns": spread(b.tree()),
            "rhai_to_tree_and_plugin_ns": spread(b.tree_and_plugin()),
            "ratio": spread(b.ratio()),
            "rounds": b.rounds.iter().map(|r| json!({
                "plugin_ns": r.plugin_ns, "native_ns": r.native_ns,
                "rhai_to_tree_ns": r.tree_ns, "rhai_to_tree_and_plugin_ns": r.tree_and_plugin_ns,
            })).collect::<Vec<_>>(),
            "goal": { "plugin_ns_below": build_request::PLUGIN_GOAL_NS, "ratio_at_most": build_request::RATIO_GOAL },
            "goal_holds": b.goal_holds(),
        });
    }
    if let Some(c) = &r.create_async {
        out["create_async"] = json!({
            "in_flight": create_async::IN_FLIGHT, "calls_per_round": c.calls(),
            "p50_us": spread(c.p50()), "p99_us": spread(c.p99()),
            "worst_round_p99_us": c.p99().max,
            "rounds": c.rounds.iter().map(|c| json!({
                "calls": c.calls,
                "p50_us": c.p50_us, "p99_us": c.p99_us, "max_us": c.max_us, "mean_us": c.mean_us,
                "fill_p50_us": c.fill_p50_us, "fill_p99_us": c.fill_p99_us,
                "in_flight_at_end": c.in_flight_at_end,
                "slow_calls": slow_json(&c.slow),
                "control": {
                    "target_us": c.fill_p50_us,
                    "p50_us": c.control.p50_us, "p99_us": c.control.p99_us, "max_us": c.control.max_us,
                    "slow_runs": slow_json(&c.control.slow),
                },
            })).collect::<Vec<_>>(),
            "control_p99_us": spread(c.control_p99()),
            "goal": { "p99_us_at_most_in_every_round": create_async::P99_GOAL_US },
            "goal_holds": c.goal_holds(),
        });
    }
    if let Some(e) = &r.e2e {
        out["end_to_end"] = json!({
            "requests": e.requests, "concurrency": e2e::CONCURRENCY,
            "payhost_rps": spread(e.payhost()), "seed_rps": spread(e.seed()),
            "bare_reqwest_rps": spread(e.bare()),
            "payhost_rounds": e.payhost_rounds, "bare_reqwest_rounds": e.bare_rounds,
            "seed_rounds": e.seed_rounds,
            "vs_seed": spread(e.vs_seed()), "share_of_bare": spread(e.share_of_bare()),
            "goal": { "vs_seed_at_least": e2e::VS_SEED_GOAL, "share_of_bare_at_least": e2e::SHARE_OF_BARE_GOAL },
            "goal_vs_seed_holds": e.vs_seed_holds(),
            "goal_share_of_bare_holds": e.share_of_bare_holds(),
        });
    }
    if let Some(m) = &r.rss {
        out["peak_rss"] = rss_json(m);
    }
    if let Some(q) = &r.redis {
        let point = |p: &redis_queue::Point| {
            json!({
                "workers": p.workers,
                "jobs_per_s": spread(p.jobs_per_s()), "xadd_rps": spread(p.xadd_rps()),
                "share_of_xadd": spread(p.share_of_xadd()),
                "rounds": p.rounds.iter().map(|r| json!({
                    "jobs_per_s": r.jobs_per_s, "xadd_rps": r.xadd_rps,
                    "publish_seconds": r.publish_seconds,
                })).collect::<Vec<_>>(),
            })
        };
        let goal = q.point(redis_queue::GOAL_WORKERS);
        out["redis"] = json!({
            "jobs": q.jobs, "flow_threads": q.flow_threads,
            "goal_workers": redis_queue::GOAL_WORKERS,
            "jobs_per_s": goal.map(|p| spread(p.jobs_per_s())),
            "xadd_rps": goal.map(|p| spread(p.xadd_rps())),
            "share_of_xadd": goal.map(|p| spread(p.share_of_xadd())),
            "goal": { "share_of_xadd_at_least": redis_queue::SHARE_GOAL },
            "goal_holds": q.goal_holds(),
            "curve": q.points.iter().map(point).collect::<Vec<_>>(),
        });
    }
    if let Some(w) = &r.webhooks {
        let side = |rounds: &[webhooks::Round]| {
            let of = |f: fn(&webhooks::Round) -> f64| spread(Spread::of_each(rounds, f));
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

fn rss_json(m: &rss::Figures) -> Value {
    let side = |s: &rss::Side| {
        json!({ "peak_kib": s.peak_kib, "idle_kib": s.idle_kib,
                "heap_allocated_kib": s.heap.map(|h| h.allocated_kib),
                "heap_held_kib": s.heap.map(|h| h.held_kib),
                "peak_open": s.peak_open, "seconds": s.seconds })
    };
    let sides = |sides: &[rss::Side]| {
        let of = |f: fn(&rss::Side) -> u64| Spread::of_each(sides, |s| f(s) as f64).json();
        json!({
            "peak_kib": of(|s| s.peak_kib), "idle_kib": of(|s| s.idle_kib),
            "rounds": sides.iter().map(side).collect::<Vec<_>>(),
        })
    };
    let slope = |s: &rss::Slope| json!({ "from": s.from, "to": s.to, "kib_per_request": s.kib_per_request });
    let curve = |c: &rss::Curve| {
        json!({
            "points": c.0.iter().map(|p| match &p.rounds {
                Ok(rounds) => {
                    let mut point = sides(rounds);
                    point["heap_allocated_kib"] = json!(p.heap_kib().map(|h| h.json()));
                    point["heap_held_kib"] = json!(p.heap_held_kib().map(|h| h.json()));
                    point["requests"] = json!(p.requests);
                    point["stand_in"] = json!(p.stand_in);
                    point
                }
                Err(why) => json!({ "requests": p.requests, "skipped": why }),
            }).collect::<Vec<_>>(),
            "kib_per_request": c.slopes().iter().map(slope).collect::<Vec<_>>(),
            "kib_per_request_overall": c.overall_slope().as_ref().map(slope),
            "heap_kib_per_request_overall": c.heap_slope().as_ref().map(slope),
        })
    };
    json!({
        "delay_ms": m.plan.delay.as_millis() as u64,
        "fd_limit": m.fd_limit,
        "goal_requests": m.plan.goal_at,
        "goal": { "peak_mib_at_most": rss::GOAL_MIB },
        "goal_peak_kib_h2": m.goal_peak_h2().map(|s| s.json()),
        "goal_heap_kib_h2": m.curve_h2.heap_at(m.plan.goal_at).map(|s| s.json()),
        "goal_holds_h2": m.goal_holds_h2(),
        "goal_peak_kib": m.goal_peak().map(|s| s.json()),
        "goal_holds": m.goal_holds(),
        "common_requests": m.plan.common,
        "payhost_common": sides(&m.payhost_common),
        "seed_common": sides(&m.seed_common),
        "seed_over_payhost": m.ratio().json(),
        "seed_at_goal": match &m.seed_at_goal { Ok(s) => side(s), Err(e) => json!({ "error": e }) },
        "idle_kib": m.idle_kib().json(),
        "http1": curve(&m.curve),
        "http2": curve(&m.curve_h2),
    })
}
