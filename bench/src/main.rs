//! `payhost-bench`: runs every measurement and prints one table.
//!
//! ```text
//! payhost-bench [--plugin PATH] [--payhost-bin PATH] [--redis-server PATH]
//!               [--redis-benchmark PATH] [--out PATH] [--only a,b,...] [--quick]
//!               [--rounds N] [--check BASELINE|DIR] [--profile-open CMD]
//! payhost-bench child rss-payhost|rss-payhost-h2|rss-seed --base-url URL --plugin PATH --requests N
//! payhost-bench child build-request-loop|build-request-native-loop --plugin PATH --requests N
//! payhost-bench child e2e-payhost|e2e-payhost-h2|e2e-seed|e2e-bare [--plugin PATH] --requests N
//! payhost-bench child webhooks-bare
//! ```
//!
//! `--help` says what each option does.
//!
//! `cargo xtask bench` passes the paths. `--only` takes any of
//! `build_request,create_async,e2e,rss,redis,webhooks`; `--quick` shrinks every run
//! (for trying the harness, not for figures). `--rounds N` sets how many
//! interleaved rounds each comparison runs (5, `--quick` 2; the RSS
//! measurement takes at most 5, each of its rounds being five child
//! processes). The default run takes 4-5 minutes here. `--check BASELINE` compares the run's results with a
//! previous results.json after writing them and exits non-zero if a figure
//! regressed beyond its spread (see `check`); `--check DIR` with the one in
//! DIR measured on this machine (`bench/baselines/<machine>.json`), if any.
//! The `child` form is how the RSS measurement runs each side in a process
//! of its own; the other child modes give profilers one piece alone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost_bench::report::{self, Results};
use payhost_bench::stub::{Stub, Wakeups};
use payhost_bench::{
    build_request, check, child, create_async, e2e, fixtures, redis_queue, rss, webhooks,
};

/// What `--only` can name, in the order they run.
const MEASUREMENTS: [&str; 6] = [
    "build_request",
    "create_async",
    "e2e",
    "rss",
    "redis",
    "webhooks",
];

/// What `--help` prints.
const USAGE: &str = "\
usage: payhost-bench [OPTIONS]          every measurement, one table
       payhost-bench child MODE ...     one piece alone, for a profiler

options:
  --plugin PATH           the Stripe component (default: $PAYHOST_PLUGIN, else the
                          workspace's target/plugins/stripe.wasm)
  --payhost-bin PATH      the payhost binary the Redis measurement runs as workers
                          (default: target/release/payhost)
  --redis-server PATH     redis-server (default: from PATH)
  --redis-benchmark PATH  redis-benchmark, the Redis baseline (default: from PATH)
  --out PATH              where results.json goes (default: target/bench/results.json)
  --only NAMES            some of build_request,create_async,e2e,rss,redis,webhooks
  --rounds N              interleaved rounds per comparison (default 5; --quick 2)
  --quick                 shrink every run: for trying the harness, not for figures
  --check BASELINE|DIR    compare with a previous results.json (or DIR's one for this
                          machine) and exit non-zero if a figure regressed
  --profile-open CMD      after the RSS rounds, run one more HTTP/2 child at 3,000 under
                          CMD (a heap profiler: heaptrack) and end it with every request
                          open, so that what CMD reports as not freed is what they hold
  -h, --help              this text

`cargo xtask bench [OPTIONS]` builds everything and passes the paths.
";

struct Args {
    plugin: PathBuf,
    payhost_bin: PathBuf,
    redis_server: PathBuf,
    redis_benchmark: PathBuf,
    out: PathBuf,
    only: Option<Vec<String>>,
    quick: bool,
    rounds: Option<usize>,
    check: Option<PathBuf>,
    profile_open: Option<PathBuf>,
    base_url: String,
    requests: usize,
}

fn parse(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args {
        plugin: build_request::default_plugin_path(),
        payhost_bin: "target/release/payhost".into(),
        redis_server: "redis-server".into(),
        redis_benchmark: "redis-benchmark".into(),
        out: "target/bench/results.json".into(),
        only: None,
        quick: false,
        rounds: None,
        check: None,
        profile_open: None,
        base_url: String::new(),
        requests: 10_000,
    };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--plugin" => args.plugin = value()?.into(),
            "--payhost-bin" => args.payhost_bin = value()?.into(),
            "--redis-server" => args.redis_server = value()?.into(),
            "--redis-benchmark" => args.redis_benchmark = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--only" => {
                let names: Vec<String> = value()?.split(',').map(String::from).collect();
                // A misspelt name would otherwise run nothing and say nothing.
                if let Some(name) = names.iter().find(|n| !MEASUREMENTS.contains(&n.as_str())) {
                    bail!(
                        "--only: no measurement `{name}` (one of {})",
                        MEASUREMENTS.join(",")
                    );
                }
                args.only = Some(names);
            }
            "--base-url" => args.base_url = value()?,
            "--requests" => args.requests = value()?.parse()?,
            "--quick" => args.quick = true,
            "--rounds" => {
                let n: usize = value()?.parse().context("--rounds takes a whole number")?;
                if n == 0 {
                    bail!("--rounds: at least 1");
                }
                args.rounds = Some(n);
            }
            "--check" => args.check = Some(value()?.into()),
            "--profile-open" => args.profile_open = Some(value()?.into()),
            other => bail!("unknown argument `{other}` (--help lists them)"),
        }
    }
    // It would otherwise run nothing and say nothing.
    if args.profile_open.is_some()
        && let Some(only) = &args.only
        && !only.iter().any(|n| n == "rss")
    {
        bail!("--profile-open profiles the RSS measurement's child: add rss to --only");
    }
    Ok(args)
}

fn main() -> anyhow::Result<ExitCode> {
    // The same for every process of the bench: see `raise_fd_limit`.
    fixtures::raise_fd_limit(100_000);
    let mut argv = std::env::args().skip(1).peekable();
    if matches!(argv.peek().map(String::as_str), Some("-h" | "--help")) {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    if argv.peek().map(String::as_str) == Some("child") {
        argv.next();
        let mode = argv.next().context("child needs a mode")?;
        let args = parse(argv)?;
        child::run(&mode, &args.plugin, &args.base_url, args.requests)?;
        return Ok(ExitCode::SUCCESS);
    }
    let args = parse(argv)?;
    let runs = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };
    let q = |full: usize, quick: usize| if args.quick { quick } else { full };
    let rounds = args.rounds.unwrap_or(q(5, 2));
    // Found before the run: a missing or broken baseline should not cost one.
    let machine = report::machine();
    let baseline = match &args.check {
        Some(path) => Some(check::Baseline::find(path, &machine)?),
        None => None,
    };
    if let Some(check::Baseline::NoneForMachine { file, .. }) = &baseline {
        eprintln!(
            "bench: --check: no baseline for this machine ({}) yet: nothing will be compared; \
             this run can become it ({})",
            check::describe_machine(&machine),
            file.display()
        );
    }

    let started = Instant::now();
    let plugin = fixtures::load_plugin(&args.plugin)?;
    let stub = Stub::start(2)?;
    let mut results = Results {
        machine,
        rounds,
        ..Results::default()
    };
    let step = |name: &str| eprintln!("bench: {name} ({:.0}s)", started.elapsed().as_secs_f64());

    if runs("build_request") {
        step("plugin build-request vs native");
        let budget = Duration::from_millis(q(3_000, 300) as u64);
        results.build_request = Some(build_request::measure(&plugin, budget, rounds)?);
    }
    if runs("create_async") {
        step("create_async latency with 1,000 in flight, in rounds");
        let delay = Duration::from_secs(4);
        // Its own stub, which stands in for a provider on another machine:
        // on these shared cores it must not take the measured thread's core
        // each time a connection wakes it (see create_async's docs).
        let remote = Stub::start_with(2, Wakeups::Yield)?;
        results.create_async = Some(create_async::measure(
            &plugin,
            &remote,
            delay,
            q(2_000, 200),
            rounds,
        )?);
    }
    if runs("e2e") {
        step("end to end: payhost, bare reqwest, seed-style, interleaved rounds");
        results.e2e = Some(e2e::measure(&plugin, &stub, q(10_000, 1_000), rounds)?);
    }
    if runs("rss") {
        step("peak RSS: payhost vs seed-style, payhost's curve (child processes)");
        let exe = std::env::current_exe()?;
        let plan = rss::Plan {
            common: q(3_000, 300),
            curve: if args.quick {
                vec![300, 1_000, 30_000]
            } else {
                vec![1_000, 3_000, 10_000, 30_000]
            },
            goal_at: q(10_000, 1_000),
            rounds: rounds.min(5),
            delay: Duration::from_secs(1),
            profile_with: args.profile_open.clone(),
        };
        results.rss = Some(rss::measure(&exe, &args.plugin, &stub, &plan)?);
    }
    if runs("redis") {
        step("Redis flow jobs with 1, 2, 4 payhost workers vs redis-benchmark XADD, in rounds");
        let tools = redis_queue::Tools {
            payhost_bin: &args.payhost_bin,
            redis_server: &args.redis_server,
            redis_benchmark: &args.redis_benchmark,
            plugin: &args.plugin,
        };
        // Every point takes every round: the whole curve fits the time.
        let plan = [
            (1, rounds),
            (redis_queue::GOAL_WORKERS, rounds),
            (4, rounds),
        ];
        // Workers as shipped: the default flow threads (and so the default
        // read-ahead), as `payhost worker` without `--flow-threads` runs.
        results.redis = Some(redis_queue::measure(
            &tools,
            q(20_000, 2_000),
            payhost::worker::default_flow_threads(),
            &plan,
        )?);
    }
    if runs("webhooks") {
        step("webhooks: payhost serve vs a bare hyper server, interleaved rounds");
        let exe = std::env::current_exe()?;
        let tools = webhooks::Tools {
            payhost_bin: &args.payhost_bin,
            plugin: &args.plugin,
            bench_exe: &exe,
        };
        results.webhooks = Some(webhooks::measure(&tools, q(20_000, 2_000), rounds)?);
    }
    drop(stub);
    results.seconds = started.elapsed().as_secs_f64();

    let table = report::table(&results);
    println!("\n{table}");
    let machine = &results.machine;
    println!(
        "machine: {}, {} GiB; load before {}; {:.0} s",
        check::describe_machine(machine),
        machine["memory_gib"],
        machine["loadavg"],
        results.seconds
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut json = report::json(&results);
    json["table"] = table.into();
    std::fs::write(&args.out, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("results: {}", args.out.display());

    match baseline {
        Some(check::Baseline::Found {
            path,
            value,
            other_machine,
        }) => {
            let comparisons = check::check(&value, &json);
            println!(
                "\ncheck against {} (a figure regressed if its median is worse than the \
                 baseline's by more than the larger of the two spreads, or for a figure measured \
                 in time by more than {:.0}% of the baseline's median if that is more):\n\n{}",
                path.display(),
                check::TIME_FLOOR * 100.0,
                check::table(&comparisons)
            );
            if let Some(theirs) = &other_machine {
                println!(
                    "note: the baseline was measured on {theirs}, this run on {}: machines of \
                     other kinds move the ratios (not only the times), so a regression here may \
                     be the machine's; compare with a baseline of this machine (bench/baselines/)",
                    check::describe_machine(&results.machine)
                );
            }
            let regressed = check::regressions(&comparisons);
            if regressed > 0 {
                // An outcome, not a fault: said plainly, without a backtrace.
                eprintln!(
                    "check: {regressed} figure(s) regressed against {} (table above); if the \
                     change is intended, update the baseline: cp {} {}",
                    path.display(),
                    args.out.display(),
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("check: no figure regressed");
        }
        Some(check::Baseline::NoneForMachine { file, others }) => {
            println!(
                "\ncheck: no baseline for this machine ({}); nothing compared (baselines there: \
                 {}). To make this run this machine's baseline: cp {} {}",
                check::describe_machine(&results.machine),
                if others.is_empty() {
                    "none".to_string()
                } else {
                    others.join(", ")
                },
                args.out.display(),
                file.display()
            );
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` lists the names `--only` accepts; they are written by hand
    /// in USAGE, so this ties them to MEASUREMENTS.
    #[test]
    fn help_lists_every_measurement_only_accepts() {
        let listed = format!("some of {}\n", MEASUREMENTS.join(","));
        assert!(USAGE.contains(&listed), "USAGE should say {listed:?}");
    }

    #[test]
    fn a_profile_needs_the_rss_measurement() {
        let args = |list: &[&str]| parse(list.iter().map(|a| a.to_string()));
        let err = args(&["--only", "e2e", "--profile-open", "heaptrack"])
            .err()
            .expect("nothing to profile without rss");
        assert!(err.to_string().contains("add rss to --only"), "{err}");
        for ok in [
            &["--only", "e2e,rss", "--profile-open", "heaptrack"][..],
            &["--profile-open", "heaptrack"],
        ] {
            let parsed = args(ok).expect("rss runs");
            assert_eq!(parsed.profile_open, Some(PathBuf::from("heaptrack")));
        }
    }
}
