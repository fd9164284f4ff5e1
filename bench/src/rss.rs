//! Peak memory with requests in flight: payhost vs the seed-style baseline,
//! and how payhost's grows with in-flight work.
//!
//! Each run of a side is a child process of its own (this binary,
//! re-executed with `child rss-payhost` or `child rss-seed`), so each figure
//! is that design's alone; the stub stays in the parent. It holds every
//! request until all N are open at once and then answers each after 1 s (see
//! `Stub::hold_url`): with a plain 1 s delay the first answers would come
//! back before the last requests were sent, and a slower client would be
//! measured with fewer requests in flight than a faster one. A child runs
//! the script sending N 10-field payment intents, with a concurrency bound
//! of N (payhost's `max_in_flight`, the seed gate), and waits until every
//! flow has run. At the end it reads its own peak resident set, VmHWM from
//! /proc/self/status, and prints it with its resident set before the first
//! request (idle); the parent samples the stub meanwhile and records how
//! many requests were really open at once, so the table can say whether N
//! were in flight. payhost's figure includes its plugin (engine, compiled
//! component, one instance per thread); the seed's has no plugin to carry.
//! A payhost child also prints glibc's count of its heap, taken once when
//! the parent asks halfway through the hold (`HeapCount`): what is
//! allocated with every request open, which the allocator's placement does
//! not move, beside the peak, which it does. With `--profile-open CMD` one
//! more HTTP/2 child runs under CMD (a heap profiler) and is ended right
//! after that count (`profile_open`), so that what CMD reports as never
//! freed is what the open requests hold.
//!
//! What is measured, in rounds (each round one child per run):
//!
//! - the comparison at the count both designs can hold (3,000): payhost,
//!   then seed-style, in each round; the ratio seed / payhost per round,
//!   the median of the rounds' ratios with the smallest and largest;
//! - payhost's curve: peak RSS at 1,000 / 3,000 / 10,000 / 30,000 in flight
//!   (the 3,000 point is the comparison's payhost side). Every request in
//!   flight holds a socket in the child and one in the parent's stub, and
//!   the hard open-file limit (20,000 on this machine, not raisable without
//!   CAP_SYS_RESOURCE) caps both: a point it cannot hold is recorded with
//!   the reason instead of failing the bench, and the largest point it does
//!   hold is measured in its place, so the curve keeps four measured points.
//!   The cost of one in-flight request is the slope between points (KiB per
//!   request); the idle figure is what payhost holds before any;
//! - the same curve over HTTP/2 (`--http-version 2`, h2c to the stub, which
//!   speaks both): every request in flight a stream of one connection, so
//!   the open-file limit binds no point and 30,000 is measured too. The two
//!   curves side by side separate what a connection costs from what a
//!   request costs;
//! - the seed-style design at the goal count (10,000), once: it needs a
//!   runtime's descriptors per request on top of the socket and runs out of
//!   them here, which is recorded as its result.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use payhost::http::HttpVersion;

use crate::fixtures::{self, REQUEST_FAILED, send_script};
use crate::rig::{self, Rig};
use crate::seed::Seed;
use crate::stats::Spread;
use crate::stub::Stub;

/// The goal: payhost's peak RSS at `Plan::goal_at` in flight at most this.
pub const GOAL_MIB: f64 = 150.0;
/// Descriptors a child or the parent needs besides one per request
/// (runtime, plugin files, pipes, the harness's own), with room to spare.
pub const FD_MARGIN: u64 = 2_000;

#[derive(Debug, Clone)]
pub struct Side {
    pub peak_kib: u64,
    /// The allocator's own count with every request open, where there is
    /// one (glibc).
    pub heap: Option<Heap>,
    /// VmRSS after set-up, before the first request.
    pub idle_kib: u64,
    /// Most requests the stub held open at once.
    pub peak_open: u64,
    pub seconds: f64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The count both designs can hold (3,000).
    pub common: usize,
    /// The curve's points, ascending (1,000 / 3,000 / 10,000 / 30,000).
    pub curve: Vec<usize>,
    /// The count the goal is about (10,000).
    pub goal_at: usize,
    pub rounds: usize,
    pub delay: Duration,
    /// A heap profiler to run one more HTTP/2 child under, at `common`,
    /// ended with every request open (see `profile_open`).
    pub profile_with: Option<PathBuf>,
}

/// One point of payhost's curve: its rounds, or why the machine cannot
/// hold it.
#[derive(Debug, Clone)]
pub struct Point {
    pub requests: usize,
    pub rounds: Result<Vec<Side>, String>,
    /// Measured in place of a point the limit cannot hold.
    pub stand_in: bool,
}

impl Point {
    /// Median (min-max) of the rounds' peaks, in KiB.
    pub fn peak_kib(&self) -> Option<Spread> {
        let rounds = self.rounds.as_ref().ok()?;
        Some(peaks(rounds))
    }

    /// Median (min-max) of the rounds' heap allocated with every request open,
    /// in KiB, if every round counted it.
    pub fn heap_kib(&self) -> Option<Spread> {
        self.heap_figure(|h| h.allocated_kib)
    }

    /// The same for the heap held from the system.
    pub fn heap_held_kib(&self) -> Option<Spread> {
        self.heap_figure(|h| h.held_kib)
    }

    fn heap_figure(&self, figure: fn(&Heap) -> u64) -> Option<Spread> {
        let rounds = self.rounds.as_ref().ok()?;
        let counted: Option<Vec<f64>> = (rounds.iter())
            .map(|s| s.heap.as_ref().map(|h| figure(h) as f64))
            .collect();
        counted.filter(|c| !c.is_empty()).map(|c| Spread::of(&c))
    }
}

/// What the allocator counted in a child with every request open (see
/// `HeapCount`).
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Bytes in allocated blocks (arena and mmapped), KiB: what the program
    /// asked for. Not all of it is resident: a buffer's untouched pages are
    /// not.
    pub allocated_kib: u64,
    /// Bytes the allocator has from the system (its arenas and mmapped
    /// blocks), KiB: allocated plus its free space.
    pub held_kib: u64,
}

fn peaks(sides: &[Side]) -> Spread {
    Spread::of_each(sides, |s| s.peak_kib as f64)
}

fn idles(sides: &[Side]) -> Spread {
    Spread::of_each(sides, |s| s.idle_kib as f64)
}

#[derive(Debug, Clone)]
pub struct Figures {
    pub plan: Plan,
    /// The open-file limit the processes run with (soft raised to hard).
    pub fd_limit: u64,
    pub payhost_common: Vec<Side>,
    pub seed_common: Vec<Side>,
    /// The seed-style design at `goal_at`: its figures, or why it could not
    /// get there.
    pub seed_at_goal: Result<Side, String>,
    /// payhost over HTTP/1.1 (a connection per request in flight).
    pub curve: Curve,
    /// payhost over HTTP/2 (h2c to the stub: one connection, a stream per
    /// request in flight).
    pub curve_h2: Curve,
}

/// payhost's peak RSS by requests in flight: ascending by requests,
/// stand-ins in their place.
#[derive(Debug, Clone, Default)]
pub struct Curve(pub Vec<Point>);

/// The cost of each in-flight request between two measured points.
#[derive(Debug, Clone, Copy)]
pub struct Slope {
    pub from: usize,
    pub to: usize,
    pub kib_per_request: f64,
}

impl Curve {
    /// The point at `requests` in flight, if the curve has one.
    pub fn point(&self, requests: usize) -> Option<&Point> {
        self.0.iter().find(|p| p.requests == requests)
    }

    /// The peak at `requests` in flight, if that point was measured.
    pub fn peak_at(&self, requests: usize) -> Option<Spread> {
        self.point(requests)?.peak_kib()
    }

    /// How many rounds the point at `requests` has.
    pub fn rounds_at(&self, requests: usize) -> usize {
        self.point(requests)
            .and_then(|p| p.rounds.as_ref().ok())
            .map_or(0, Vec::len)
    }

    /// The heap allocated at `requests` in flight, if it was counted.
    pub fn heap_at(&self, requests: usize) -> Option<Spread> {
        self.point(requests)?.heap_kib()
    }

    fn measured(&self, figure: fn(&Point) -> Option<Spread>) -> Vec<(usize, f64)> {
        self.0
            .iter()
            .filter_map(|p| Some((p.requests, figure(p)?.median)))
            .collect()
    }

    /// KiB of peak RSS per request between consecutive measured points
    /// (medians).
    pub fn slopes(&self) -> Vec<Slope> {
        self.slopes_of(Point::peak_kib)
    }

    /// KiB of peak RSS per request from the first measured point to the
    /// last.
    pub fn overall_slope(&self) -> Option<Slope> {
        self.overall_slope_of(Point::peak_kib)
    }

    /// KiB of heap allocated per request, from the first point counted to the
    /// last: what an in-flight request holds, without the allocator's free
    /// space.
    pub fn heap_slope(&self) -> Option<Slope> {
        self.overall_slope_of(Point::heap_kib)
    }

    fn slopes_of(&self, figure: fn(&Point) -> Option<Spread>) -> Vec<Slope> {
        self.measured(figure)
            .windows(2)
            .map(|w| Slope {
                from: w[0].0,
                to: w[1].0,
                kib_per_request: (w[1].1 - w[0].1) / (w[1].0 - w[0].0) as f64,
            })
            .collect()
    }

    fn overall_slope_of(&self, figure: fn(&Point) -> Option<Spread>) -> Option<Slope> {
        let measured = self.measured(figure);
        let (first, last) = (measured.first()?, measured.last()?);
        (last.0 > first.0).then(|| Slope {
            from: first.0,
            to: last.0,
            kib_per_request: (last.1 - first.1) / (last.0 - first.0) as f64,
        })
    }

    fn sides(&self) -> impl Iterator<Item = &Side> {
        self.0.iter().flat_map(|p| p.rounds.iter().flatten())
    }
}

impl Figures {
    /// Seed-style peak over payhost's at the common count, per round.
    pub fn ratio(&self) -> Spread {
        let side = |s: &[Side]| s.iter().map(|s| s.peak_kib as f64).collect::<Vec<_>>();
        Spread::ratios(&side(&self.seed_common), &side(&self.payhost_common))
    }

    pub fn payhost_common_peak(&self) -> Spread {
        peaks(&self.payhost_common)
    }

    pub fn seed_common_peak(&self) -> Spread {
        peaks(&self.seed_common)
    }

    /// payhost's idle RSS over every run of it.
    pub fn idle_kib(&self) -> Spread {
        let all: Vec<Side> = (self.payhost_common.iter())
            .chain(self.curve.sides())
            .chain(self.curve_h2.sides())
            .cloned()
            .collect();
        idles(&all)
    }

    /// The goal point's peak over HTTP/1.1, if it was measured.
    pub fn goal_peak(&self) -> Option<Spread> {
        self.curve.peak_at(self.plan.goal_at)
    }

    /// The goal point's peak over HTTP/2, if it was measured.
    pub fn goal_peak_h2(&self) -> Option<Spread> {
        self.curve_h2.peak_at(self.plan.goal_at)
    }

    /// Over HTTP/1.1.
    pub fn goal_holds(&self) -> bool {
        within_goal(self.goal_peak())
    }

    /// Over HTTP/2.
    pub fn goal_holds_h2(&self) -> bool {
        within_goal(self.goal_peak_h2())
    }
}

fn within_goal(peak: Option<Spread>) -> bool {
    peak.is_some_and(|p| p.median / 1024.0 <= GOAL_MIB)
}

/// Which curve points `fd_limit` descriptors can hold: each needs one
/// socket per request plus [`FD_MARGIN`]. Points it cannot hold come back
/// with the reason; if any does, the largest count it can hold (rounded
/// down to a thousand) is added as a stand-in, unless a point at or above
/// it is measured anyway. Returns (requests, Ok(stand_in) or Err(why)),
/// ascending.
pub fn plan_curve(points: &[usize], fd_limit: u64) -> Vec<(usize, Result<bool, String>)> {
    let holds = |n: usize| n as u64 + FD_MARGIN <= fd_limit;
    let mut plan: Vec<(usize, Result<bool, String>)> = points
        .iter()
        .map(|&n| {
            if holds(n) {
                (n, Ok(false))
            } else {
                (
                    n,
                    Err(format!(
                        "needs ~{n} sockets; hard open-file limit {fd_limit}"
                    )),
                )
            }
        })
        .collect();
    let largest = (fd_limit.saturating_sub(FD_MARGIN) / 1_000 * 1_000) as usize;
    let measured_max = points.iter().copied().filter(|&n| holds(n)).max();
    if plan.iter().any(|(_, p)| p.is_err())
        && largest > 0
        && measured_max.is_none_or(|m| m < largest)
    {
        plan.push((largest, Ok(true)));
    }
    plan.sort_by_key(|(n, _)| *n);
    plan
}

/// Runs the plan: per round, payhost then seed-style at the common count,
/// then each other curve point; last, the seed-style design at the goal
/// count.
pub fn measure(exe: &Path, plugin: &Path, stub: &Stub, plan: &Plan) -> anyhow::Result<Figures> {
    let fd_limit = fixtures::fd_limit();
    let side = |mode: &str, requests: usize| -> anyhow::Result<Side> {
        measure_child(exe, plugin, stub, mode, requests, plan.delay)
    };
    let points = |planned: Vec<(usize, Result<bool, String>)>| -> Vec<Point> {
        planned
            .into_iter()
            .map(|(n, p)| Point {
                requests: n,
                stand_in: matches!(p, Ok(true)),
                rounds: p.map(|_| Vec::new()),
            })
            .collect()
    };
    let mut curve = points(plan_curve(&plan.curve, fd_limit));
    // Over HTTP/2 a child holds one socket whatever it has in flight; the
    // stub's side of the limit is one socket too.
    let mut curve_h2 = points(plan.curve.iter().map(|&n| (n, Ok(false))).collect());
    let (mut payhost_common, mut seed_common) = (Vec::new(), Vec::new());
    for round in 0..plan.rounds.max(1) {
        let p = side("rss-payhost", plan.common)?;
        let s = side("rss-seed", plan.common)?;
        eprintln!(
            "bench: rss round {}: at {}: payhost {} KiB, seed-style {} KiB ({:.1}x less)",
            round + 1,
            plan.common,
            p.peak_kib,
            s.peak_kib,
            s.peak_kib as f64 / p.peak_kib as f64
        );
        payhost_common.push(p);
        seed_common.push(s);
        // The common count over HTTP/1.1 was measured above, beside seed-style.
        let over = [
            (&mut curve, "rss-payhost", "", Some(plan.common)),
            (&mut curve_h2, "rss-payhost-h2", " over HTTP/2", None),
        ];
        for (points, mode, how, measured) in over {
            for point in points.iter_mut() {
                let Ok(rounds) = &mut point.rounds else {
                    continue;
                };
                if Some(point.requests) == measured {
                    continue;
                }
                let side = side(mode, point.requests)?;
                eprintln!(
                    "bench: rss round {}: payhost{how} at {}: {} KiB ({} open at once)",
                    round + 1,
                    point.requests,
                    side.peak_kib,
                    side.peak_open
                );
                rounds.push(side);
            }
        }
    }
    for point in &mut curve {
        if point.requests == plan.common {
            point.rounds = Ok(payhost_common.clone());
        }
    }
    // Last: a failing seed child leaves held requests in the stub for a while.
    let seed_at_goal = side("rss-seed", plan.goal_at).map_err(|e| short_reason(&format!("{e:#}")));
    if let Some(profiler) = &plan.profile_with {
        profile_open(exe, plugin, stub, profiler, plan.common, plan.delay)?;
    }
    Ok(Figures {
        plan: plan.clone(),
        fd_limit,
        payhost_common,
        seed_common,
        seed_at_goal,
        curve: Curve(curve),
        curve_h2: Curve(curve_h2),
    })
}

/// One child run of `mode` with `requests` in flight: its figures.
fn measure_child(
    exe: &Path,
    plugin: &Path,
    stub: &Stub,
    mode: &str,
    requests: usize,
    delay: Duration,
) -> anyhow::Result<Side> {
    let started = Instant::now();
    let (lines, peak_open) = run_child(
        Command::new(exe),
        plugin,
        stub,
        mode,
        requests,
        delay,
        ASK_COUNT,
    )?;
    let value = |key: &str| -> anyhow::Result<u64> {
        printed(&lines, key)
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("{mode} child printed no `{key}`: {lines:?}"))
    };
    let heap = match (value("heap_allocated_kib="), value("heap_held_kib=")) {
        (Ok(allocated_kib), Ok(held_kib)) => Some(Heap {
            allocated_kib,
            held_kib,
        }),
        _ => None,
    };
    Ok(Side {
        peak_kib: value("vmhwm_kib=")?,
        heap,
        idle_kib: value("idle_kib=")?,
        peak_open,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `--profile-open PROFILER`: one more payhost child over HTTP/2 with
/// `requests` open, run under the profiler (`heaptrack`, say) and ended
/// halfway through the hold, right after its heap count. What the profiler
/// then reports as never freed is what the open requests hold, apart from
/// the set-up every run has; the peak, which comes later, is not in it.
fn profile_open(
    exe: &Path,
    plugin: &Path,
    stub: &Stub,
    profiler: &Path,
    requests: usize,
    delay: Duration,
) -> anyhow::Result<()> {
    let mut command = Command::new(profiler);
    command.arg(exe);
    let (lines, _) = run_child(
        command,
        plugin,
        stub,
        "rss-payhost-h2",
        requests,
        delay,
        ASK_END,
    )
    .with_context(|| format!("running the child under {}", profiler.display()))?;
    // A child that could not count (no glibc) never reads the line and runs
    // to its end; its profile would be of nothing open.
    let Some(allocated) = printed(&lines, "heap_allocated_kib=") else {
        bail!(
            "--profile-open: the child ran to its end (it ends itself only where glibc counts its heap)"
        );
    };
    let here = std::env::current_dir().unwrap_or_default();
    eprintln!(
        "bench: under {}, the child ended itself with {requests} requests open over HTTP/2 \
         ({allocated} KiB allocated): what the profiler reports as not freed is what they hold \
         (heaptrack writes heaptrack.payhost-bench.PID.zst in {})",
        profiler.display(),
        here.display()
    );
    Ok(())
}

/// What a child printed after `key` (`vmhwm_kib=`, say).
fn printed<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.strip_prefix(key))
}

/// The line that asks a payhost child for its heap count.
const ASK_COUNT: &[u8] = b"count\n";
/// The line that asks for the count and then ends the child there.
const ASK_END: &[u8] = b"end\n";

/// Runs `command` (this binary, or a profiler given it) as the child of
/// `mode` with `requests` in flight, writing `ask` to it halfway through
/// the hold; its stdout lines, and the most requests open at once.
fn run_child(
    mut command: Command,
    plugin: &Path,
    stub: &Stub,
    mode: &str,
    requests: usize,
    delay: Duration,
    ask: &[u8],
) -> anyhow::Result<(Vec<String>, u64)> {
    let base_url = stub.hold_url(requests as u64, delay);
    command
        .args(["child", mode, "--base-url", &base_url])
        .arg("--plugin")
        .arg(plugin)
        .args(["--requests", &requests.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", command.get_program().to_string_lossy()))?;
    let collect = |pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            BufReader::new(pipe)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        })
    };
    let reader = collect(Box::new(child.stdout.take().expect("piped")));
    let errors = collect(Box::new(child.stderr.take().expect("piped")));
    // Asks the child for its heap count halfway through the hold (see
    // `HeapCount`); a child that does not count never reads it.
    let mut stdin = child.stdin.take();
    let mut all_open = None;
    let mut peak_open = 0;
    while child.try_wait()?.is_none() {
        let open = stub.open();
        peak_open = peak_open.max(open);
        if open >= requests as u64 {
            let since = *all_open.get_or_insert_with(Instant::now);
            if since.elapsed() >= delay / 2
                && let Some(mut stdin) = stdin.take()
            {
                let _ = stdin.write_all(ask);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(stdin);
    let status = child.wait()?;
    let lines = reader.join().unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        let mut failed = lines.iter().filter_map(|l| l.strip_prefix(REQUEST_FAILED));
        let why = match failed.next() {
            Some(first) => format!(
                "\n{} requests failed; the first: {first}",
                1 + failed.count()
            ),
            None => String::new(),
        };
        bail!("{mode} child failed ({status}): {}{why}", errors.join("\n"));
    }
    Ok((lines, peak_open))
}

/// glibc's own count of the heap (`mallinfo2`), taken once while every
/// request is open: when the parent writes a line to the child's stdin,
/// halfway through the stub's hold. Peak RSS adds the binary's pages and the
/// allocator's free space to what the program holds; this separates them.
/// Once, not sampled: the count walks the free lists under each arena's
/// lock, 10-40 ms with 10,000 requests in flight, long enough to change
/// what it measures (sampled every 5 ms, the 30,000 point tripped h2's flood
/// guard in three runs of three).
struct HeapCount(std::sync::mpsc::Receiver<Heap>);

impl HeapCount {
    /// `None` where there is no glibc to ask.
    fn when_asked() -> Option<HeapCount> {
        heap_now()?;
        let (taken, count) = std::sync::mpsc::channel();
        // Blocks on stdin until the line comes or the parent closes it;
        // the process may end first, which only drops the count.
        std::thread::spawn(move || {
            let mut line = String::new();
            if let Ok(1..) = std::io::stdin().read_line(&mut line)
                && let Some(heap) = heap_now()
            {
                if line.as_bytes() == ASK_END {
                    // Under a profiler (`profile_open`): the process ends
                    // here, every request still open, so what it never
                    // freed is what they hold.
                    print_heap(&heap);
                    let _ = std::io::stdout().flush();
                    std::process::exit(0);
                }
                let _ = taken.send(heap);
            }
        });
        Some(HeapCount(count))
    }

    /// The count, if the parent asked for it.
    fn taken(&self) -> Option<Heap> {
        self.0.try_recv().ok()
    }
}

/// glibc's count now: blocks allocated (arena and mmapped), and what it
/// holds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_now() -> Option<Heap> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct; it
    // only reads the allocator's state under its locks.
    let info = unsafe { libc::mallinfo2() };
    let kib = |bytes: usize| (bytes / 1024) as u64;
    Some(Heap {
        allocated_kib: kib(info.uordblks + info.hblkhd),
        held_kib: kib(info.arena + info.hblkhd),
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_now() -> Option<Heap> {
    None
}

const CHILD_LIMIT: Duration = Duration::from_secs(300);

/// `child rss-payhost`: payhost in process, every request in flight at once.
pub fn child_payhost(
    plugin: &Path,
    base_url: &str,
    requests: usize,
    version: HttpVersion,
) -> anyhow::Result<()> {
    let plugin = fixtures::load_plugin(plugin)?;
    let rig = Rig::speaking(&plugin, base_url, requests, requests, version)?;
    println!("idle_kib={}", fixtures::vm_rss_kib().unwrap_or(0));
    let heap = HeapCount::when_asked();
    let (summary, _) = rig.run_to_end(CHILD_LIMIT)?;
    rig::check_complete(&summary, requests)?;
    println!("vmhwm_kib={}", fixtures::vm_hwm_kib().unwrap_or(0));
    if let Some(heap) = heap.as_ref().and_then(HeapCount::taken) {
        print_heap(&heap);
    }
    rig.finish();
    Ok(())
}

fn print_heap(heap: &Heap) {
    println!("heap_allocated_kib={}", heap.allocated_kib);
    println!("heap_held_kib={}", heap.held_kib);
}

/// `child rss-seed`: the seed-style baseline, every request in flight at once.
pub fn child_seed(base_url: &str, requests: usize) -> anyhow::Result<()> {
    // Request threads that cannot start their runtime panic; the first
    // message is kept and reported, the rest would only flood stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let seed = Seed::new(base_url, requests);
    println!("idle_kib={}", fixtures::vm_rss_kib().unwrap_or(0));
    crate::seed::run_to_end(&seed, &send_script(requests), requests, CHILD_LIMIT)?;
    println!("vmhwm_kib={}", fixtures::vm_hwm_kib().unwrap_or(0));
    Ok(())
}

/// The seed child's failure in a few words: `5994 requests failed
/// (Too many open files)`, from its `seed-style: ...` error line.
fn short_reason(text: &str) -> String {
    let Some(line) = text.lines().find_map(|l| l.split_once("seed-style: ")) else {
        return text.lines().next().unwrap_or_default().to_string();
    };
    let failed = line.1.split(',').next().unwrap_or(line.1);
    match line.1.split_once("message: \"") {
        Some((_, rest)) => format!("{failed} ({})", rest.split('"').next().unwrap_or(rest)),
        None => line.1.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Curve, Heap, Point, Side, plan_curve};

    fn side(peak_kib: u64, allocated_kib: Option<u64>) -> Side {
        Side {
            peak_kib,
            heap: allocated_kib.map(|allocated_kib| Heap {
                allocated_kib,
                held_kib: allocated_kib + 10_000,
            }),
            idle_kib: 14_000,
            peak_open: 0,
            seconds: 1.0,
        }
    }

    fn point(requests: usize, rounds: Vec<Side>) -> Point {
        Point {
            requests,
            rounds: Ok(rounds),
            stand_in: false,
        }
    }

    /// The heap's slope is its own, not the RSS curve's, and a point with a
    /// round that did not count (the child could not ask glibc) has no heap
    /// figure rather than a median of the rest.
    #[test]
    fn the_heap_per_request_comes_from_the_allocated_counts() {
        let curve = Curve(vec![
            point(
                1_000,
                vec![side(30_000, Some(12_000)), side(34_000, Some(12_100))],
            ),
            point(3_000, vec![side(60_000, None), side(58_000, Some(36_000))]),
            point(10_000, vec![side(150_000, Some(121_000))]),
        ]);
        assert_eq!(curve.0[1].heap_kib(), None);
        assert_eq!(curve.heap_at(10_000).map(|h| h.median), Some(121_000.0));
        assert_eq!(curve.0[0].heap_held_kib().map(|h| h.median), Some(22_050.0));
        let heap = curve.heap_slope().unwrap();
        assert_eq!((heap.from, heap.to), (1_000, 10_000));
        assert!((heap.kib_per_request - (121_000.0 - 12_050.0) / 9_000.0).abs() < 1e-9);
        let rss = curve.overall_slope().unwrap();
        assert!((rss.kib_per_request - (150_000.0 - 32_000.0) / 9_000.0).abs() < 1e-9);
        // Nothing counted anywhere: no slope.
        let none = Curve(vec![
            point(1_000, vec![side(1, None)]),
            point(3_000, vec![]),
        ]);
        assert!(none.heap_slope().is_none());
    }

    #[test]
    fn a_point_the_fd_limit_cannot_hold_is_skipped_and_the_largest_it_can_is_measured() {
        let plan = plan_curve(&[1_000, 3_000, 10_000, 30_000], 20_000);
        let counts: Vec<usize> = plan.iter().map(|(n, _)| *n).collect();
        assert_eq!(counts, [1_000, 3_000, 10_000, 18_000, 30_000]);
        assert_eq!(plan[3].1, Ok(true), "18,000 stands in");
        assert_eq!(
            plan[4].1,
            Err("needs ~30000 sockets; hard open-file limit 20000".to_string())
        );
        // A limit that holds every point adds nothing.
        let plan = plan_curve(&[1_000, 30_000], 1_048_576);
        assert_eq!(plan, [(1_000, Ok(false)), (30_000, Ok(false))]);
    }

    #[test]
    fn the_seed_failure_is_said_in_a_few_words() {
        let text = "rss-seed child failed (exit status: 1): Error: seed-style: 5994 requests failed, \
                    0 threads not started (first error: Failed to create runtime: Os { code: 24, \
                    kind: Uncategorized, message: \"Too many open files\" })";
        assert_eq!(
            super::short_reason(text),
            "5994 requests failed (Too many open files)"
        );
    }
}
