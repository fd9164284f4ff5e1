//! Peak memory with 10,000 requests in flight: payhost vs the seed-style
//! baseline.
//!
//! Each side runs in a child process of its own (this binary, re-executed
//! with `child rss-payhost` or `child rss-seed`), so each figure is that
//! design's alone; the stub stays in the parent. It holds every request
//! until all 10,000 are open at once and then answers each after 1 s (see
//! `Stub::hold_url`): with a plain 1 s delay the first answers would come
//! back before the last requests were sent, and a slower client would be
//! measured with fewer requests in flight than a faster one. Both
//! children run the same script, sending 10,000 10-field payment intents,
//! with a concurrency bound of 10,000 (payhost's `max_in_flight`, the seed
//! gate), and wait until every flow has run. At the end each child reads its
//! own peak resident set, VmHWM from /proc/self/status, and prints it; the
//! parent samples the stub meanwhile and records how many requests were
//! really open at once, so the table can say whether 10,000 were in flight.
//! The seed-style design cannot hold 10,000 here (it runs out of file
//! descriptors, see [`measure`]), so both also run at 3,000, where it can,
//! and that pair gives the ratio.
//! payhost's figure includes its plugin (engine, compiled component, one
//! instance per thread); the seed's has no plugin to carry.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::fixtures::{self, send_script};
use crate::rig::{self, Rig};
use crate::seed::Seed;
use crate::stub::Stub;

#[derive(Debug, Clone)]
pub struct Side {
    pub peak_kib: u64,
    /// VmRSS after set-up, before the first request.
    pub idle_kib: u64,
    /// Most requests the stub held open at once.
    pub peak_open: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Figures {
    /// The full count (10,000) and the count both designs can hold.
    pub requests: usize,
    pub common: usize,
    pub delay_ms: u64,
    pub payhost: Side,
    /// The seed-style design at the full count: its figures, or why it
    /// could not get there.
    pub seed: Result<Side, String>,
    pub payhost_common: Side,
    pub seed_common: Side,
}

impl Figures {
    /// Seed-style peak over payhost's, at the count both can hold.
    pub fn ratio(&self) -> f64 {
        self.seed_common.peak_kib as f64 / self.payhost_common.peak_kib as f64
    }
}

/// Runs payhost and the seed-style baseline at `requests` and at `common`
/// requests in flight. The seed-style design needs three descriptors per
/// request (its runtime's epoll and eventfd, its socket); where the
/// open-file limit (20,000 here, and not raisable) cannot hold `requests`,
/// its failure is recorded and `common` gives the comparison.
pub fn measure(
    exe: &Path,
    plugin: &Path,
    stub: &Stub,
    requests: usize,
    common: usize,
    delay: Duration,
) -> anyhow::Result<Figures> {
    let side = |mode: &str, requests: usize| -> anyhow::Result<Side> {
        let base_url = stub.hold_url(requests as u64, delay);
        let mut command = Command::new(exe);
        command
            .args(["child", mode, "--base-url", &base_url])
            .arg("--plugin")
            .arg(plugin)
            .args(["--requests", &requests.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
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
        let mut peak_open = 0;
        while child.try_wait()?.is_none() {
            peak_open = peak_open.max(stub.open());
            std::thread::sleep(Duration::from_millis(2));
        }
        let status = child.wait()?;
        let lines = reader.join().unwrap_or_default();
        let errors = errors.join().unwrap_or_default();
        if !status.success() {
            bail!("{mode} child failed ({status}): {}", errors.join("\n"));
        }
        let value = |key: &str| -> anyhow::Result<u64> {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("{mode} child printed no `{key}`: {lines:?}"))
        };
        Ok(Side {
            peak_kib: value("vmhwm_kib=")?,
            idle_kib: value("idle_kib=")?,
            peak_open,
            seconds: started.elapsed().as_secs_f64(),
        })
    };
    let payhost = side("rss-payhost", requests)?;
    let payhost_common = side("rss-payhost", common)?;
    let seed_common = side("rss-seed", common)?;
    // Last: a failing seed child leaves held requests in the stub for a while.
    let seed = side("rss-seed", requests).map_err(|e| short_reason(&format!("{e:#}")));
    Ok(Figures {
        requests,
        common,
        delay_ms: delay.as_millis() as u64,
        payhost,
        seed,
        payhost_common,
        seed_common,
    })
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

const CHILD_LIMIT: Duration = Duration::from_secs(300);

/// `child rss-payhost`: payhost in process, every request in flight at once.
pub fn child_payhost(plugin: &Path, base_url: &str, requests: usize) -> anyhow::Result<()> {
    let plugin = fixtures::load_plugin(plugin)?;
    let rig = Rig::new(&plugin, base_url, requests, requests)?;
    println!("idle_kib={}", vm_rss_kib());
    let (summary, _) = rig.run_to_end(CHILD_LIMIT)?;
    rig::check_complete(&summary, requests)?;
    println!("vmhwm_kib={}", fixtures::vm_hwm_kib().unwrap_or(0));
    rig.finish();
    Ok(())
}

/// `child rss-seed`: the seed-style baseline, every request in flight at once.
pub fn child_seed(base_url: &str, requests: usize) -> anyhow::Result<()> {
    // Request threads that cannot start their runtime panic; the first
    // message is kept and reported, the rest would only flood stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let seed = Seed::new(base_url, requests);
    println!("idle_kib={}", vm_rss_kib());
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
