//! The seed-style baseline: the design of
//! `shared/seeds/000_3ad2f499e6db24dc.txt`, built as the seed describes it.
//!
//! Scripts see the same API as payhost's (`new_payment_intent()`, the same
//! setters, `create_async(worker, context, secret)`), registered natively in
//! Rhai as the seed's `#[rhai_fn]`s are. `create_async` prepares the form
//! fields, then spawns a `std::thread` that makes a
//! `tokio::runtime::Runtime::new()` and a `reqwest::Client::new()`, POSTs the
//! form with basic auth to the stub, reads the text, and dispatches the
//! response flow as the seed does: the JSON pasted into generated script
//! source (`let response_json = `...`; let parsed_data =
//! parse_json(response_json);` followed by the flow), compiled and run by a
//! new Rhai engine. The seed's `eval_file` is replaced by the flow's text,
//! read once; the seed's Redis hop to a dispatcher is left out, which only
//! flatters the baseline.
//!
//! The one thing the seed does not have is a bound: here a gate lets at most
//! `max_concurrent` request threads live at once (`create_async` waits at
//! it), the same bound payhost's `max_in_flight` sets, so both sides run the
//! same concurrency against the same stub.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Position};

use crate::fixtures::{FLOW_BODY, RESPONSE_FLOW};

/// What the seed's `prepare_payment_intent_data` produces: form fields.
#[derive(Debug, Clone, Default)]
pub struct SeedPaymentIntent {
    form: Vec<(String, String)>,
}

/// State shared by the script thread and the request threads.
pub struct Seed {
    base_url: String,
    max_concurrent: usize,
    live: Mutex<usize>,
    changed: Condvar,
    done: AtomicUsize,
    failed: AtomicUsize,
    spawn_failures: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

/// Scalar fields: the setter stores the value's text.
const TEXT_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "customer",
    "description",
    "capture_method",
    "receipt_email",
    "statement_descriptor",
    "setup_future_usage",
];

impl Seed {
    pub fn new(base_url: &str, max_concurrent: usize) -> Arc<Seed> {
        Arc::new(Seed {
            base_url: base_url.trim_end_matches('/').to_string(),
            max_concurrent: max_concurrent.max(1),
            live: Mutex::new(0),
            changed: Condvar::new(),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            spawn_failures: AtomicUsize::new(0),
            first_error: Mutex::new(None),
        })
    }

    /// The script engine with the seed's functions registered.
    pub fn engine(self: &Arc<Self>) -> Engine {
        let mut engine = Engine::new();
        engine
            .register_type_with_name::<SeedPaymentIntent>("PaymentIntent")
            .register_fn("new_payment_intent", SeedPaymentIntent::default);
        for field in TEXT_FIELDS {
            engine.register_fn(*field, move |p: &mut SeedPaymentIntent, v: Dynamic| {
                p.form.push(((*field).to_string(), v.to_string()));
                p.clone()
            });
        }
        engine.register_fn(
            "metadata",
            |p: &mut SeedPaymentIntent, k: ImmutableString, v: ImmutableString| {
                p.form.push((format!("metadata[{k}]"), v.to_string()));
                p.clone()
            },
        );
        engine.register_fn(
            "payment_method_types",
            |p: &mut SeedPaymentIntent, types: rhai::Array| {
                for (i, t) in types.iter().enumerate() {
                    p.form
                        .push((format!("payment_method_types[{i}]"), t.to_string()));
                }
                p.clone()
            },
        );
        let seed = self.clone();
        engine.register_fn(
            "create_async",
            move |p: &mut SeedPaymentIntent,
                  _worker_id: ImmutableString,
                  _context_id: ImmutableString,
                  secret: ImmutableString|
                  -> Result<String, Box<EvalAltResult>> {
                seed.create_async(p.form.clone(), secret.to_string())
            },
        );
        engine
    }

    fn create_async(
        self: &Arc<Self>,
        form: Vec<(String, String)>,
        secret: String,
    ) -> Result<String, Box<EvalAltResult>> {
        self.enter();
        let seed = self.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            // A panic (e.g. no thread for the runtime) counts as a failure
            // instead of leaving the gate and the count wrong.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let rt = tokio::runtime::Runtime::new().expect("Failed to create runtime");
                rt.block_on(async {
                    let client = reqwest::Client::new();
                    let url = format!("{}/v1/payment_intents", seed.base_url);
                    match make_stripe_request(&client, &secret, &url, &form).await {
                        Ok(body) => seed.dispatch("response_json", "parsed_data", &body),
                        Err(_) => {
                            seed.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }));
            if let Err(panic) = ran {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                seed.first_error
                    .lock()
                    .expect("first error")
                    .get_or_insert(message);
                seed.failed.fetch_add(1, Ordering::Relaxed);
            }
            seed.leave();
        });
        if let Err(err) = spawned {
            self.spawn_failures.fetch_add(1, Ordering::Relaxed);
            self.leave();
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("cannot spawn a request thread: {err}").into(),
                Position::NONE,
            )));
        }
        Ok("payment_intent_request_dispatched".to_string())
    }

    /// The seed's `dispatch_response_script`: paste, compile, run.
    fn dispatch(&self, text_name: &str, value_name: &str, body: &str) {
        let script = format!(
            "// Response data from API\nlet {text_name} = `{}`;\nlet {value_name} = parse_json({text_name});\n// flows/{RESPONSE_FLOW}.rhai\n{FLOW_BODY}",
            body.replace('`', r"\`"),
        );
        let engine = Engine::new();
        if engine.run(&script).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enter(&self) {
        let mut live = self.live.lock().expect("gate");
        while *live >= self.max_concurrent {
            live = self.changed.wait(live).expect("gate");
        }
        *live += 1;
    }

    fn leave(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        *self.live.lock().expect("gate") -= 1;
        self.changed.notify_all();
    }

    /// Waits until `n` request threads have finished (or `limit` passes, or
    /// one failed); returns whether they all did.
    pub fn wait_done(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut live = self.live.lock().expect("gate");
        while self.done.load(Ordering::Relaxed) < n {
            if self.failed.load(Ordering::Relaxed) > 0 {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            live = self
                .changed
                .wait_timeout(live, left.min(Duration::from_millis(50)))
                .expect("gate")
                .0;
        }
        true
    }

    /// The first request thread's panic message, if one panicked.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("first error").clone()
    }

    /// Requests whose HTTP or flow failed, and threads that could not start.
    pub fn failures(&self) -> (usize, usize) {
        (
            self.failed.load(Ordering::Relaxed),
            self.spawn_failures.load(Ordering::Relaxed),
        )
    }
}

/// The seed's `make_stripe_request`, with the URL made by the caller.
async fn make_stripe_request(
    client: &reqwest::Client,
    secret_key: &str,
    url: &str,
    form_data: &[(String, String)],
) -> Result<String, String> {
    let response = client
        .post(url)
        .basic_auth(secret_key, None::<&str>)
        .form(form_data)
        .send()
        .await
        .map_err(|e| format!("HTTP request failed: {e}"))?;
    response
        .text()
        .await
        .map_err(|e| format!("Failed to read response: {e}"))
}

/// Runs `source` with the seed engine and waits for all `n` requests it
/// makes. Returns the time from script start to the last flow.
pub fn run_to_end(
    seed: &Arc<Seed>,
    source: &str,
    n: usize,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let engine = seed.engine();
    let started = Instant::now();
    engine
        .run(source)
        .map_err(|e| anyhow::anyhow!("seed-style script failed: {e}"))?;
    let all_done = seed.wait_done(n, limit);
    let elapsed = started.elapsed();
    let (failed, spawn_failures) = seed.failures();
    if failed > 0 || spawn_failures > 0 {
        anyhow::bail!(
            "seed-style: {failed} requests failed, {spawn_failures} threads not started \
             (first error: {})",
            seed.first_error().unwrap_or_default()
        );
    }
    if !all_done {
        anyhow::bail!("seed-style: not done after {limit:?}");
    }
    Ok(elapsed)
}
