//! The bench binary's `child MODE` forms: one piece of work alone, in a
//! process of its own. The RSS measurement needs each side's own process
//! (`rss-payhost`, `rss-payhost-h2`, `rss-seed`); the others are for
//! profilers (`valgrind --tool=callgrind target/release/payhost-bench child
//! e2e-payhost ...`), which then see one thing and nothing of the harness
//! around it:
//!
//! - `build-request-loop`: N plugin calls with `rhai_to_tree` input;
//! - `build-request-native-loop`: the guest's work done natively (tree in,
//!   request out), to compare with the component's;
//! - `e2e-payhost`, `e2e-seed`, `e2e-bare`: one end-to-end run of N
//!   requests against a stub of the child's own; `e2e-payhost-h2` the
//!   same over HTTP/2 (h2c: one connection) instead of HTTP/1.1;
//! - `webhooks-bare`: the webhooks measurement's baseline server, in a
//!   process of its own as `payhost serve` is.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use payhost::http::HttpVersion;

use crate::build_request::Fixture;
use crate::stub::Stub;
use crate::{e2e, fixtures, rss, webhooks};

pub fn run(mode: &str, plugin: &Path, base_url: &str, requests: usize) -> anyhow::Result<()> {
    match mode {
        "rss-payhost" => rss::child_payhost(plugin, base_url, requests, HttpVersion::Http1),
        "rss-payhost-h2" => rss::child_payhost(plugin, base_url, requests, HttpVersion::Http2),
        "rss-seed" => rss::child_seed(base_url, requests),
        "build-request-loop" => {
            let mut fixture = Fixture::new(&fixtures::load_plugin(plugin)?)?;
            for _ in 0..requests {
                black_box(fixture.tree_and_plugin_call()?);
            }
            Ok(())
        }
        "build-request-native-loop" => {
            let fixture = Fixture::new(&fixtures::load_plugin(plugin)?)?;
            for _ in 0..requests {
                black_box(fixture.native_tree_call()?);
            }
            Ok(())
        }
        "e2e-payhost" | "e2e-payhost-h2" | "e2e-seed" | "e2e-bare" => {
            let stub = Stub::start(2)?;
            let url = stub.base_url(Duration::ZERO);
            let elapsed = match mode {
                "e2e-payhost" => e2e::payhost(&fixtures::load_plugin(plugin)?, &url, requests)?,
                "e2e-payhost-h2" => e2e::payhost_speaking(
                    &fixtures::load_plugin(plugin)?,
                    &url,
                    requests,
                    HttpVersion::Http2,
                )?,
                "e2e-seed" => e2e::seed_style(&url, requests)?,
                _ => e2e::bare_reqwest(&url, requests)?,
            };
            println!("{mode}: {requests} requests in {elapsed:?}");
            Ok(())
        }
        "webhooks-bare" => webhooks::child_bare(),
        other => bail!("unknown child mode `{other}`"),
    }
}
