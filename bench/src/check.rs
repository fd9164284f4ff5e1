//! The regression guard: `payhost-bench --check BASELINE` (`cargo xtask
//! bench --check` passes `bench/baseline.json`) compares the run's
//! results.json with a previous one and fails when a figure got worse by
//! more than the rounds' own spread.
//!
//! Each guarded figure ([`FIGURES`]) is a [`Spread`] in results.json (median,
//! min, max of the rounds). A figure regressed when its new median is worse
//! than the old median by more than the larger of the old and the new
//! spread's width (max - min): how far the rounds themselves move on this
//! machine is the noise a change has to exceed before it counts. "Worse"
//! depends on the figure ([`Better`]): a ratio to a baseline falls, a latency
//! or a memory peak rises. A figure missing on either side (a measurement
//! skipped with `--only`, a baseline from before the figure existed) or run
//! at another size (`--quick` against a full baseline) is reported as not
//! compared and fails nothing.

use serde_json::Value;

use crate::stats::Spread;

/// Which direction is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A guarded figure: where its spread is in results.json, and which of the
/// run's sizes must be equal on both sides for the two to be comparable.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub name: &'static str,
    pub pointer: &'static str,
    pub better: Better,
    pub same: &'static [&'static str],
}

/// Every guarded figure.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "end to end, payhost / seed-style",
        pointer: "/end_to_end/vs_seed",
        better: Better::Higher,
        same: &["/end_to_end/requests"],
    },
    Figure {
        name: "end to end, payhost / bare reqwest",
        pointer: "/end_to_end/share_of_bare",
        better: Better::Higher,
        same: &["/end_to_end/requests"],
    },
    Figure {
        name: "Redis, 2 workers: jobs/s / XADD/s",
        pointer: "/redis/share_of_xadd",
        better: Better::Higher,
        same: &["/redis/jobs", "/redis/goal_workers"],
    },
    Figure {
        name: "webhooks: payhost / bare hyper accepted/s",
        pointer: "/webhooks/share_of_bare_accepted_per_s",
        better: Better::Higher,
        same: &["/webhooks/deliveries"],
    },
    Figure {
        name: "build-request: plugin / native",
        pointer: "/build_request/ratio",
        better: Better::Lower,
        same: &[],
    },
    Figure {
        name: "create_async p99 (µs)",
        pointer: "/create_async/p99_us",
        better: Better::Lower,
        same: &["/create_async/calls_per_round"],
    },
    Figure {
        name: "peak RSS at the goal count over HTTP/2 (KiB)",
        pointer: "/peak_rss/goal_peak_kib_h2",
        better: Better::Lower,
        same: &["/peak_rss/goal_requests"],
    },
    Figure {
        name: "peak RSS at the goal count over HTTP/1.1 (KiB)",
        pointer: "/peak_rss/goal_peak_kib",
        better: Better::Lower,
        same: &["/peak_rss/goal_requests"],
    },
    Figure {
        name: "peak RSS at the common count: seed-style / payhost",
        pointer: "/peak_rss/seed_over_payhost",
        better: Better::Higher,
        same: &["/peak_rss/common_requests"],
    },
];

/// What the comparison of one figure found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within the spread, or better.
    Held,
    Regressed,
    /// Why not (missing on a side, different sizes).
    NotCompared(String),
}

/// One figure's comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub figure: Figure,
    pub old: Option<Spread>,
    pub new: Option<Spread>,
    /// The worst median that still holds (old median -/+ the larger width).
    pub bound: Option<f64>,
    pub verdict: Verdict,
}

/// Compares one figure's spreads; returns the bound and whether it
/// regressed past it.
pub fn compare(old: Spread, new: Spread, better: Better) -> (f64, bool) {
    let allowed = old.width().max(new.width());
    match better {
        Better::Higher => {
            let bound = old.median - allowed;
            (bound, new.median < bound)
        }
        Better::Lower => {
            let bound = old.median + allowed;
            (bound, new.median > bound)
        }
    }
}

/// Compares every guarded figure of `new` with `old` (both results.json).
pub fn check(old: &Value, new: &Value) -> Vec<Comparison> {
    FIGURES
        .iter()
        .map(|figure| {
            let read = |v: &Value| v.pointer(figure.pointer).and_then(Spread::from_json);
            let (o, n) = (read(old), read(new));
            let mut comparison = Comparison {
                figure: *figure,
                old: o,
                new: n,
                bound: None,
                verdict: Verdict::Held,
            };
            comparison.verdict = match (o, n) {
                (None, None) => Verdict::NotCompared("in neither".into()),
                (None, _) => Verdict::NotCompared("not in the baseline".into()),
                (_, None) => Verdict::NotCompared("not in this run".into()),
                (Some(o), Some(n)) => {
                    let differs = figure
                        .same
                        .iter()
                        .find(|p| old.pointer(p) != new.pointer(p));
                    if let Some(p) = differs {
                        let show = |v: &Value| v.pointer(p).map_or("-".into(), Value::to_string);
                        Verdict::NotCompared(format!(
                            "run at another size ({p}: {} then {})",
                            show(old),
                            show(new)
                        ))
                    } else {
                        let (bound, regressed) = compare(o, n, figure.better);
                        comparison.bound = Some(bound);
                        if regressed {
                            Verdict::Regressed
                        } else {
                            Verdict::Held
                        }
                    }
                }
            };
            comparison
        })
        .collect()
}

/// How many regressed.
pub fn regressions(comparisons: &[Comparison]) -> usize {
    comparisons
        .iter()
        .filter(|c| c.verdict == Verdict::Regressed)
        .count()
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The comparison as a Markdown table: every figure, old and new median
/// (min-max), the bound the new median had to keep, and the verdict.
pub fn table(comparisons: &[Comparison]) -> String {
    let mut out =
        String::from("| figure | baseline median (min-max) | this run | allowed | verdict |\n");
    out.push_str("|---|---|---|---|---|\n");
    let show = |s: &Option<Spread>| s.map_or("-".into(), |s| s.show(number));
    for c in comparisons {
        let allowed = match (c.bound, c.figure.better) {
            (Some(b), Better::Higher) => format!(">= {}", number(b)),
            (Some(b), Better::Lower) => format!("<= {}", number(b)),
            (None, _) => String::new(),
        };
        let verdict = match &c.verdict {
            Verdict::Held => "held".to_string(),
            Verdict::Regressed => "**REGRESSED**".to_string(),
            Verdict::NotCompared(why) => format!("not compared: {why}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.figure.name,
            show(&c.old),
            show(&c.new),
            allowed,
            verdict
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spread(median: f64, min: f64, max: f64) -> Spread {
        Spread { median, min, max }
    }

    #[test]
    fn a_fall_beyond_the_spread_fails_and_within_it_passes() {
        let old = spread(0.60, 0.55, 0.65); // width 0.10
        // 0.48 < 0.60 - 0.10: regressed.
        let (bound, regressed) = compare(old, spread(0.48, 0.46, 0.50), Better::Higher);
        assert!((bound - 0.50).abs() < 1e-12);
        assert!(regressed);
        // 0.48 holds once the new rounds spread wider (0.20): 0.60 - 0.20.
        assert!(!compare(old, spread(0.48, 0.35, 0.55), Better::Higher).1);
        // 0.55 within the old width; anything better holds.
        assert!(!compare(old, spread(0.55, 0.54, 0.56), Better::Higher).1);
        assert!(!compare(old, spread(0.90, 0.89, 0.91), Better::Higher).1);
    }

    #[test]
    fn lower_is_better_fails_on_a_rise() {
        let old = spread(40.0, 35.0, 45.0); // p99 µs, width 10
        let (bound, regressed) = compare(old, spread(51.0, 49.0, 52.0), Better::Lower);
        assert_eq!(bound, 50.0);
        assert!(regressed);
        assert!(!compare(old, spread(49.0, 47.0, 52.0), Better::Lower).1);
        // A fall is an improvement, however large.
        assert!(!compare(old, spread(10.0, 9.0, 11.0), Better::Lower).1);
    }

    #[test]
    fn a_figure_missing_or_at_another_size_is_not_compared() {
        let s = |m: f64| spread(m, m - 0.01, m + 0.01).json();
        let old = json!({
            "end_to_end": {"requests": 10000, "vs_seed": s(20.0), "share_of_bare": s(0.6)},
            "build_request": {"ratio": s(5.0)},
        });
        // Only e2e ran (as with --only e2e), at the same size, and fell.
        let new = json!({
            "end_to_end": {"requests": 10000, "vs_seed": s(10.0), "share_of_bare": s(0.6)},
        });
        let found = check(&old, &new);
        let verdict = |pointer: &str| {
            found
                .iter()
                .find(|c| c.figure.pointer == pointer)
                .map(|c| c.verdict.clone())
                .unwrap()
        };
        assert_eq!(verdict("/end_to_end/vs_seed"), Verdict::Regressed);
        assert_eq!(verdict("/end_to_end/share_of_bare"), Verdict::Held);
        assert_eq!(
            verdict("/build_request/ratio"),
            Verdict::NotCompared("not in this run".into())
        );
        assert_eq!(
            verdict("/redis/share_of_xadd"),
            Verdict::NotCompared("in neither".into())
        );
        assert_eq!(regressions(&found), 1);
        assert!(table(&found).contains("| end to end, payhost / seed-style | 20.00 (19.99-20.01) | 10.00 (9.99-10.01) | >= 19.98 | **REGRESSED** |"));

        // A --quick run is not held against a full baseline.
        let quick = json!({
            "end_to_end": {"requests": 1000, "vs_seed": s(10.0), "share_of_bare": s(0.6)},
        });
        let found = check(&old, &quick);
        assert_eq!(regressions(&found), 0);
        assert!(matches!(
            found[0].verdict,
            Verdict::NotCompared(ref why) if why.contains("another size")
        ));
    }
}
