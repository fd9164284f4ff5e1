//! What every measurement shares: the payment intent with 10 fields, the
//! scripts and flow that send and handle it, and the pieces of payhost wired
//! the way `host/src/run.rs` wires them.
//!
//! One definition of the request and one flow body are used by payhost and
//! by every baseline, so all sides do the same work per request: encode the
//! same 10 fields, send the same form body with the same secret, and run the
//! same response flow on the same response.

use std::path::{Path, PathBuf};

use anyhow::Context;

use payhost::plugin::{ComponentCache, Plugin, SandboxLimits};
use serde_json::json;

pub const OBJECT: &str = "payment_intent";
pub const OPERATION: &str = "create";
/// The secret every side sends (the stub ignores it).
pub const SECRET: &str = "sk_test_payhost_bench";
pub const WORKER_ID: &str = "worker-1";
pub const CONTEXT_ID: &str = "bench-context";
/// The flow the stub's answer runs.
pub const RESPONSE_FLOW: &str = "new_create_payment_intent_response";
/// The flow a failed request runs.
pub const ERROR_FLOW: &str = "new_create_payment_intent_error";
/// How each line of [`error_flow_body`] starts.
pub const REQUEST_FAILED: &str = "payhost-bench: a request failed: ";

/// The 10 fields, as JSON (key order is the order the script sets them).
pub fn params_json() -> serde_json::Value {
    json!({
        "amount": 2000,
        "currency": "usd",
        "customer": "cus_NffrFeUfNV2Hib",
        "description": "payhost benchmark order 6735",
        "metadata": {"order_id": "6735", "channel": "web"},
        "payment_method_types": ["card"],
        "capture_method": "manual",
        "receipt_email": "jenny.rosen@example.com",
        "statement_descriptor": "PAYHOST BENCH",
        "setup_future_usage": "off_session"
    })
}

/// The same 10 fields as a script sets them (payhost's script API and the
/// seed-style baseline both register these setters).
pub const BUILDER: &str = r#"new_payment_intent()
        .amount(2000)
        .currency("usd")
        .customer("cus_NffrFeUfNV2Hib")
        .description("payhost benchmark order 6735")
        .metadata("order_id", "6735")
        .metadata("channel", "web")
        .payment_method_types(["card"])
        .capture_method("manual")
        .receipt_email("jenny.rosen@example.com")
        .statement_descriptor("PAYHOST BENCH")
        .setup_future_usage("off_session")"#;

/// A script that sends `n` payment intents, as the seed's main script does
/// (worker id, context id and secret passed to `create_async`).
pub fn send_script(n: usize) -> String {
    format!(
        "for i in 0..{n} {{\n    let result = {BUILDER}\n        .create_async(\"{WORKER_ID}\", \"{CONTEXT_ID}\", \"{SECRET}\");\n}}\n"
    )
}

/// The response flow: the seed's `new_create_payment_intent_response.rhai`
/// without its `print`s (10,000 lines of output would measure the terminal).
pub const FLOW_BODY: &str = r#"let payment_intent_id = parsed_data.id;
let status = parsed_data.status;
let message = `Payment Intent Created: ${payment_intent_id} (${status})`;
if status == "requires_payment_method" {
    let ready = true;
}
"#;

/// The error flow: says why the request failed (a line starting with
/// [`REQUEST_FAILED`] and the plugin's error payload, on standard output)
/// and fails, so that a run with a failed request is refused
/// ([`crate::rig::check_complete`]: no failed flows) with its reason, not
/// only a count.
pub fn error_flow_body() -> String {
    format!("print(`{REQUEST_FAILED}${{error_json}}`);\nthrow \"the request failed\";\n")
}

/// A temporary directory holding the send script and the flows.
pub struct Scripts {
    dir: tempfile::TempDir,
}

impl Scripts {
    /// Writes `main.rhai` (sending `n` requests) and the two flows.
    pub fn new(n: usize) -> anyhow::Result<Scripts> {
        let dir = tempfile::Builder::new().prefix("payhost-bench").tempdir()?;
        std::fs::write(dir.path().join("main.rhai"), send_script(n))?;
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows)?;
        std::fs::write(flows.join(format!("{RESPONSE_FLOW}.rhai")), FLOW_BODY)?;
        std::fs::write(flows.join(format!("{ERROR_FLOW}.rhai")), error_flow_body())?;
        Ok(Scripts { dir })
    }

    pub fn main_script(&self) -> PathBuf {
        self.dir.path().join("main.rhai")
    }

    pub fn flows_dir(&self) -> PathBuf {
        self.dir.path().join("flows")
    }
}

/// Loads the plugin as `payhost run` does (compiled-component cache on).
pub fn load_plugin(path: &Path) -> anyhow::Result<Plugin> {
    Plugin::load(path, SandboxLimits::default(), &ComponentCache::new(None))
        .with_context(|| format!("loading {}", path.display()))
}

/// Points `config` at the bench's provider: `base_url`, the bench's ids,
/// and no configured secret: it comes from the scripts' third argument (a
/// variable no one sets is named, so the environment cannot add one).
pub fn provider(config: &mut payhost::host::HostConfig, base_url: &str) {
    config.provider.base_url = Some(base_url.to_string());
    config.provider.settings.secret_env = Some("PAYHOST_BENCH_NO_SECRET".into());
    config.provider.worker_id = WORKER_ID.into();
    config.provider.context_id = CONTEXT_ID.into();
}

/// The runtime `payhost run` starts: two I/O threads.
pub fn http_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(payhost::http::io_runtime()?)
}

/// The form body of the 10-field request, as the plugin encodes it.
pub fn form_body() -> anyhow::Result<Vec<u8>> {
    let params = guest_stripe::Value::from_serde_json(&params_json());
    let request = guest_stripe::build_request(
        OBJECT,
        OPERATION,
        None,
        &params,
        &guest_stripe::Value::Map(Vec::new()),
    )
    .map_err(|e| anyhow::anyhow!("native build_request: {}", e.message))?;
    Ok(request.body)
}

/// This process's peak resident set (VmHWM), in KiB.
pub fn vm_hwm_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// This process's resident set now (VmRSS), in KiB.
pub fn vm_rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// A `<field> <n> kB` line of /proc/self/status.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Raises this process's open-file limit to `wanted` (root may raise the
/// hard limit too): 10,000 requests in flight need 10,000 sockets, and the
/// seed-style design a runtime's descriptors per request on top. Returns
/// the limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= wanted {
            return limit.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max.max(wanted),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return wanted;
        }
        // Not allowed past the hard limit: take what there is.
        let soft = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            limit.rlim_max
        } else {
            limit.rlim_cur
        }
    }
}

/// This process's open-file limit in force (the soft one, which
/// [`raise_fd_limit`] has raised as far as it may).
pub fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    limit.rlim_cur
}
