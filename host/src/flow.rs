//! Flow jobs and the runner that executes their scripts.
//!
//! A request's outcome becomes a [`FlowJob`]: which flow to run, for which
//! worker and context, and the payload. [`classify`] makes one from a finished
//! request with the plugin's `parse-response`; [`FlowRunner`] runs it.
//!
//! Flow names are `new_<operation>_<object>_response` or `..._error`, must
//! match `^[a-z0-9_]+$`, and resolve to `<flows dir>/<name>.rhai` only. The
//! payload is never pasted into script source (the seed design did that, and
//! it is a script-injection hole): it is bound in the scope as a value,
//! `parsed_data` or `parsed_error`, with its JSON text (as the plugin gave
//! it, less the whitespace around it) as `response_json` or `error_json`,
//! plus `CALLER_ID`, `CONTEXT_ID` and `WORKER_ID`. A webhook event's flow
//! (`on_<type>`, see [`crate::webhook`]) gets the event as `parsed_event`
//! (text `event_json`) and its object as `parsed_data`; `CONTEXT_ID` is the
//! event id.
//!
//! Each runner compiles a flow file once, on first use, and keeps the AST;
//! a missing file is looked for again by the next job.
//! Rhai's limits (operations, call depth, sizes) bound every flow: one that
//! hits a limit fails alone with a clear error.

use std::path::PathBuf;
use std::rc::Rc;

use rhai::{AST, Dynamic, Engine, Scope};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::{Finished, ResponseHeaders, Route};
use crate::ledger::{Event, Token};
use crate::metrics::{FlowResult, Metrics};
use crate::plugin::{PluginInstance, wit};
use crate::projection::Projection;
use crate::schema::ByName;
use crate::script_api::{self, ScriptHost};
use crate::secret::Redactor;

/// Which way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Response,
    Error,
    /// A verified webhook event (`on_<type>` flows, from `payhost serve`).
    Event,
}

/// One flow to run: everything a worker anywhere needs, and no secret.
///
/// As JSON (a Redis job's `job` field) the payload is written as JSON
/// inside the job's text, `"data": {...}`, so the publisher does not escape
/// it into a string and the worker does not unescape it (that was a fifth
/// of a worker's instructions). Classification drops the whitespace around
/// a payload's value, so a flow's payload is JSON text alone; any other text
/// (not JSON, or with whitespace around it) is written as a string,
/// `"payload": "..."`, as every job was before; both forms are read, so
/// records already in Redis still run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowJob {
    pub flow: String,
    pub outcome: Outcome,
    pub worker_id: String,
    pub context_id: String,
    pub caller_id: String,
    /// The JSON text of `parsed_data` or `parsed_error`.
    pub payload: String,
}

/// A [`FlowJob`] as it is written (see its documentation).
#[derive(Serialize)]
struct FlowJobOut<'a> {
    flow: &'a str,
    outcome: Outcome,
    worker_id: &'a str,
    context_id: &'a str,
    caller_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
}

/// A [`FlowJob`] as it is read: either form of the payload.
#[derive(Deserialize)]
struct FlowJobIn {
    flow: String,
    outcome: Outcome,
    worker_id: String,
    context_id: String,
    caller_id: String,
    /// Present (even as `null`, which a plain `Option` would read as absent)
    /// or not.
    #[serde(default, deserialize_with = "present")]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    payload: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Serialize for FlowJob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let data = self.raw_payload();
        self.wire(data, data.is_none()).serialize(serializer)
    }
}

impl FlowJob {
    /// The payload as one raw JSON value, if it is one with nothing around
    /// it: whole text only, since a raw value leaves out whitespace around
    /// it, and the flow's `response_json` is the text as classified.
    fn raw_payload(&self) -> Option<&RawValue> {
        serde_json::from_str::<&RawValue>(&self.payload)
            .ok()
            .filter(|raw| raw.get().len() == self.payload.len())
    }

    /// As written: the payload as `data` (raw JSON) or as `payload` (a
    /// string), or neither (left for the caller to append).
    fn wire<'a>(&'a self, data: Option<&'a RawValue>, as_string: bool) -> FlowJobOut<'a> {
        FlowJobOut {
            flow: &self.flow,
            outcome: self.outcome,
            worker_id: &self.worker_id,
            context_id: &self.context_id,
            caller_id: &self.caller_id,
            data,
            payload: as_string.then_some(self.payload.as_str()),
        }
    }
}

/// A flow job as a publisher takes it: a [`FlowJob`] and whether its
/// payload is one JSON value with nothing around it, found out once. Its
/// text ([`ReadyJob::to_text`]) is the job's JSON, byte for byte what
/// `serde_json::to_string` of the job writes, without reading the payload
/// again: the jobs `classify` makes had their payload checked by their
/// classification, and reading it once more to write it was half of a
/// publisher's instructions a job (13k of 28k, callgrind).
#[derive(Debug, Clone)]
pub struct ReadyJob {
    job: FlowJob,
    data_is_json: bool,
}

impl ReadyJob {
    /// Any job: its payload is read once, here, to see how it is written.
    pub fn new(job: FlowJob) -> ReadyJob {
        let data_is_json = job.raw_payload().is_some();
        ReadyJob { job, data_is_json }
    }

    /// A job [`classify`] makes: its payload is the JSON text its
    /// classification checked (without the whitespace around it), or the
    /// JSON of its error.
    fn classified(job: FlowJob) -> ReadyJob {
        ReadyJob {
            job,
            data_is_json: true,
        }
    }

    /// The flow job it is.
    pub fn job(&self) -> &FlowJob {
        &self.job
    }

    /// The job's text: `{"flow":..,"caller_id":..,"data":<payload>}`, or
    /// the payload as a string (`"payload":".."`) when it is no JSON text.
    pub fn to_text(&self) -> String {
        if !self.data_is_json {
            return serde_json::to_string(&self.job.wire(None, true)).expect("flow jobs serialize");
        }
        // The envelope as serde writes it, then the payload as it is, as
        // serde_json writes a raw value.
        let mut envelope = Vec::with_capacity(160 + self.job.payload.len());
        serde_json::to_writer(&mut envelope, &self.job.wire(None, false))
            .expect("flow jobs serialize");
        let mut text = String::from_utf8(envelope).expect("serde_json writes UTF-8");
        text.pop(); // The envelope's closing brace.
        text.push_str(",\"data\":");
        text.push_str(&self.job.payload);
        text.push('}');
        text
    }
}

impl<'de> Deserialize<'de> for FlowJob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = FlowJobIn::deserialize(deserializer)?;
        let payload = match (wire.data, wire.payload) {
            (Some(data), None) => String::from(Box::<str>::from(data)),
            (None, Some(text)) => text,
            (None, None) => return Err(D::Error::missing_field("data")),
            (Some(_), Some(_)) => {
                return Err(D::Error::custom(
                    "a job holds its payload once: `data` or `payload`, not both",
                ));
            }
        };
        Ok(FlowJob {
            flow: wire.flow,
            outcome: wire.outcome,
            worker_id: wire.worker_id,
            context_id: wire.context_id,
            caller_id: wire.caller_id,
            payload,
        })
    }
}

/// `new_<operation>_<object>_<response|error>`.
pub fn flow_name(operation: &str, object: &str, outcome: Outcome) -> String {
    let suffix = match outcome {
        Outcome::Response => "response",
        Outcome::Error => "error",
        // Event flows are named by their event type (`crate::webhook`).
        Outcome::Event => "event",
    };
    format!("new_{operation}_{object}_{suffix}")
}

/// Whether `name` may name a flow file.
pub fn is_valid_flow_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Turns a finished request into its flow job, for a queue that carries it
/// elsewhere as text (Redis). Whatever goes wrong (the plugin fails, or
/// hands back a payload a flow could not take as a value) still yields an
/// error flow, so no outcome is lost.
pub fn classify(
    instance: &mut PluginInstance,
    caller_id: &str,
    finished: &mut Finished,
) -> ReadyJob {
    let Finished {
        route,
        outcome,
        headers,
        redactor,
        ..
    } = finished;
    let parse = |_, json: &str| crate::script_value::check_json(json);
    let (kind, payload) = match usable_payload(instance, route, redactor, outcome, headers, parse) {
        Ok((kind, json, ())) => (kind, json),
        Err(why) => unusable_payload(outcome, &why),
    };
    ReadyJob::classified(flow_job(route, caller_id, kind, payload))
}

/// Like [`classify`], for a flow about to run on this thread with `runner`:
/// the payload is parsed once, here, into the value the flow will see (of
/// an object, the fields the flow reads: [`crate::projection`]). Both take
/// the same path, with the same limits, so a payload runs the same flow in
/// either queue.
pub fn classify_parsed(
    instance: &mut PluginInstance,
    caller_id: &str,
    finished: &mut Finished,
    runner: &mut FlowRunner,
) -> (FlowJob, Dynamic) {
    let Finished {
        route,
        outcome,
        headers,
        redactor,
        ..
    } = finished;
    let route = &*route;
    // The flow's name, made for the payload's projection and kept for the
    // job (one `format!` a job instead of two).
    let mut named: Option<(Outcome, String)> = None;
    let mut parse = |kind, json: &str| {
        let flow = reuse_flow_name(named.take(), route, kind);
        let value = runner.payload_value(caller_id, &flow, kind, json);
        named = Some((kind, flow));
        value
    };
    let (kind, payload, value) =
        match usable_payload(instance, route, redactor, outcome, headers, &mut parse) {
            Ok(parsed) => parsed,
            Err(why) => {
                let (kind, payload) = unusable_payload(outcome, &why);
                let value = parse(kind, &payload).expect("our own payload parses");
                (kind, payload, value)
            }
        };
    let flow = reuse_flow_name(named, route, kind);
    (flow_job_named(flow, route, caller_id, kind, payload), value)
}

/// The flow name made already, if it was made for `kind`; else a new one.
fn reuse_flow_name(made: Option<(Outcome, String)>, route: &Route, kind: Outcome) -> String {
    match made {
        Some((made_kind, flow)) if made_kind == kind => flow,
        _ => flow_name(&route.operation, &route.object, kind),
    }
}

/// The payload, if a flow can bind it: JSON nested at most
/// [`MAX_PAYLOAD_DEPTH`] deep, which `parse` checks; else why not. A
/// response the plugin's declared rule lets the host classify is not handed
/// to the plugin ([`host_classified`]); every other outcome is.
fn usable_payload<T>(
    instance: &mut PluginInstance,
    route: &Route,
    redactor: &Redactor,
    outcome: &mut wit::TransportOutcome,
    headers: &ResponseHeaders,
    mut parse: impl FnMut(Outcome, &str) -> serde_json::Result<T>,
) -> Result<(Outcome, String, T), Unusable> {
    if let Some(body) = host_classified(instance.response_rule(), outcome)
        && let Ok(parsed) = parse(Outcome::Response, body)
    {
        instance.note_host_classified();
        // The body becomes the payload text, moved rather than copied: once
        // classified, an outcome's body is not read again.
        let wit::TransportOutcome::Response(response) = outcome else {
            unreachable!("host_classified covers responses only");
        };
        let text = String::from_utf8(std::mem::take(&mut response.body))
            .expect("host_classified took it as UTF-8");
        return Ok((Outcome::Response, without_outer_whitespace(text), parsed));
    }
    // A response gets its headers (scrubbed) only now, on its way to the
    // plugin ([`ResponseHeaders`]).
    if let wit::TransportOutcome::Response(response) = outcome {
        response.headers = headers.for_plugin(redactor);
    }
    let (kind, json) =
        plugin_payload(instance, route, redactor, outcome).map_err(Unusable::PluginFailed)?;
    let parsed = parse(kind, &json).map_err(|e| Unusable::Payload(e.to_string()))?;
    Ok((kind, without_outer_whitespace(json), parsed))
}

/// The body of a response `rule` makes a success without the plugin's
/// `parse-response`, if this outcome is one: `json-object-is-success` and a
/// 2xx response whose body is UTF-8 text starting, after JSON whitespace,
/// with `{`. The caller's parse then decides: the body is that success if
/// it is one JSON object the host accepts, and goes to the plugin
/// otherwise, so a body the host refuses (bad JSON, `1e400`, nesting past
/// the limit) is the plugin's to classify, as every body was before the
/// rule existed. The body is the one the plugin would get: scrubbed of the
/// request's secrets on the I/O thread.
fn host_classified(rule: wit::ResponseRule, outcome: &wit::TransportOutcome) -> Option<&str> {
    let wit::TransportOutcome::Response(response) = outcome else {
        return None;
    };
    if rule != wit::ResponseRule::JsonObjectIsSuccess || !(200..300).contains(&response.status) {
        return None;
    }
    let text = std::str::from_utf8(&response.body).ok()?;
    text.trim_start_matches(is_json_whitespace)
        .starts_with('{')
        .then_some(text)
}

/// JSON's whitespace: space, tab, LF, CR (other Unicode spaces are not).
pub(crate) fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// JSON text without the whitespace around its value (a provider's body
/// often ends with a newline): what flows get as `response_json` in both
/// queues, and what lets a Redis job hold it as JSON ([`FlowJob`]).
fn without_outer_whitespace(mut json: String) -> String {
    json.truncate(json.trim_end_matches(is_json_whitespace).len());
    json.drain(..json.len() - json.trim_start_matches(is_json_whitespace).len());
    json
}

/// The plugin's classification, or why there is none.
fn plugin_payload(
    instance: &mut PluginInstance,
    route: &Route,
    redactor: &Redactor,
    outcome: &wit::TransportOutcome,
) -> Result<(Outcome, String), String> {
    // The payload is what flows, queues and logs will see: judge it decoded,
    // whatever the plugin made of the (already scrubbed) response.
    let scrub = |json: String| match outcome {
        // The body as the host handed it over, scrubbed already: scrubbing
        // it again would change nothing (`a_scrubbed_body_scrubs_to_itself`).
        wit::TransportOutcome::Response(response) if response.body == json.as_bytes() => json,
        _ => redactor.scrub_json_text(json),
    };
    match instance.parse_response(&route.object, &route.operation, outcome) {
        Ok(wit::FlowPayload::Response(json)) => Ok((Outcome::Response, scrub(json))),
        Ok(wit::FlowPayload::Error(json)) => Ok((Outcome::Error, scrub(json))),
        Err(err) => Err(format!("the plugin could not parse the response: {err}")),
    }
}

/// The host's own error payload, for when the plugin gave none a flow can
/// use. Its one shape, the same for every provider (documented in
/// docs/architecture.md, "Error payloads"):
///
/// ```json
/// {"payhost_error": {"kind": "plugin_failed" | "unusable_payload", "message": "..."},
///  "http_status": 502}
/// ```
///
/// `http_status` is the response's status, 0 when none arrived.
fn unusable_payload(outcome: &wit::TransportOutcome, why: &Unusable) -> (Outcome, String) {
    let status = match outcome {
        wit::TransportOutcome::Response(r) => r.status,
        wit::TransportOutcome::Failed(f) => f.status.unwrap_or(0),
    };
    let (kind, message) = match why {
        Unusable::PluginFailed(e) => ("plugin_failed", e.clone()),
        Unusable::Payload(e) => (
            "unusable_payload",
            format!("the plugin's payload cannot be given to a flow: {e}"),
        ),
    };
    let payload = serde_json::json!({
        "payhost_error": { "kind": kind, "message": message },
        "http_status": status,
    });
    (Outcome::Error, payload.to_string())
}

/// Why the plugin's payload is not used.
enum Unusable {
    /// The plugin's `parse-response` failed (trapped, ran out of time, ...).
    PluginFailed(String),
    /// It answered, but with a payload a flow cannot take.
    Payload(String),
}

fn flow_job(route: &Route, caller_id: &str, outcome: Outcome, payload: String) -> FlowJob {
    let flow = flow_name(&route.operation, &route.object, outcome);
    flow_job_named(flow, route, caller_id, outcome, payload)
}

/// [`flow_job`] with the flow's name already made.
fn flow_job_named(
    flow: String,
    route: &Route,
    caller_id: &str,
    outcome: Outcome,
    payload: String,
) -> FlowJob {
    FlowJob {
        flow,
        outcome,
        worker_id: route.worker_id.to_string(),
        context_id: route.context_id.to_string(),
        caller_id: caller_id.to_string(),
        payload,
    }
}

/// Deepest nesting a payload may have, in both queues.
pub(crate) const MAX_PAYLOAD_DEPTH: usize = crate::script_value::MAX_DEPTH;

/// Whether the JSON text nests arrays and objects at most `limit` deep.
/// Strings are skipped to their closing quote with a vectorised search (they
/// are most of a payload's bytes); everything else is looked at byte by byte.
pub(crate) fn nesting_within(json: &str, limit: usize) -> bool {
    let bytes = json.as_bytes();
    let (mut depth, mut at) = (0usize, 0);
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                // To the quote that ends the string: past every `\x` escape.
                at += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[at..]) {
                        Some(i) if bytes[at + i] == b'\\' => at += i + 2,
                        Some(i) => {
                            at += i;
                            break;
                        }
                        // Unterminated: no more structure to count.
                        None => return true,
                    }
                    if at >= bytes.len() {
                        return true;
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    true
}

/// Stack reserved for each thread that runs scripts (the main script's and
/// every flow thread). Rhai walks script data recursively (its data-size
/// checks, `print`, dropping a value), so the stack bounds how deep a
/// script's data may nest before the process aborts. The size limits of
/// [`ScriptLimits`] bound that depth: they count every entry of a value,
/// nested ones included, so a value nests at most `max_map_size +
/// max_array_size` levels (20,000 by default). 64 MiB is several times what
/// building, printing and dropping such a value takes; the reservation is
/// virtual, and only a script that nests that deep touches it.
pub const SCRIPT_THREAD_STACK: usize = 64 << 20;

/// Bounds on what one script or flow may do.
///
/// Array and map sizes count a value's entries at every level of nesting,
/// and Rhai re-measures a value after each change, walking all of it, a walk
/// no operation count sees. So these limits bound both how deep script data
/// can nest and the cost of those walks: 10,000 entries keep the worst case
/// (a value grown or nested one entry at a time) to seconds, where 100,000
/// took minutes.
#[derive(Debug, Clone)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_expr_depth: usize,
    /// Wall-clock limit for one flow. Operation counts alone do not bound
    /// time: some single operations (growing a huge array) are slow.
    pub flow_timeout: std::time::Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 50_000_000,
            max_call_levels: 64,
            max_string_size: 16 << 20,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_expr_depth: 128,
            flow_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// A Rhai engine with limits set and the script API registered for `host`.
pub fn script_engine(host: &Rc<ScriptHost>, limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    // `print` goes to stdout (the flows' output is the user's); `debug` to the log.
    engine.on_debug(|text, source, pos| {
        tracing::info!(target: "payhost::script", "{}{pos:?}: {text}", source.unwrap_or(""))
    });
    // Checked every 4096 operations: cheap, and often enough.
    let progress_host = host.clone();
    engine.on_progress(move |operations| {
        (operations % 4096 == 0 && progress_host.past_deadline()).then(|| Dynamic::from(TIME_LIMIT))
    });
    script_api::register(&mut engine, host);
    engine
}

/// The value a script is terminated with when it runs past its deadline.
const TIME_LIMIT: &str = "time limit";

/// A flow file compiled, and what it reads of each payload it may get.
struct CompiledFlow {
    ast: AST,
    /// Of `parsed_data`, a response flow's payload.
    data: Projection,
    /// Of `parsed_error`, an error flow's.
    error: Projection,
}

impl CompiledFlow {
    fn new(ast: AST) -> Self {
        let data = Projection::of(&ast, "parsed_data");
        let error = Projection::of(&ast, "parsed_error");
        Self { ast, data, error }
    }

    /// What the flow reads of its payload when run for `outcome`. An event
    /// flow gets the whole event (`parsed_data` is a part of it).
    fn projection(&self, outcome: Outcome) -> &Projection {
        static WHOLE: Projection = Projection::Whole;
        match outcome {
            Outcome::Response => &self.data,
            Outcome::Error => &self.error,
            Outcome::Event => &WHOLE,
        }
    }
}

/// Where a job's flow is looked for, and what was compiled from there.
struct FlowFiles {
    dir: PathBuf,
    /// Compiled flows by provider (`caller_id`), then flow name. Looked up
    /// twice a job, so hashed with foldhash, as the schema's maps are; the
    /// keys are loaded providers' names and flows whose file exists (a miss
    /// is not kept), so there is nothing to flood.
    compiled: ByName<ByName<CompiledFlow>>,
}

/// What a job's flow name resolved to.
enum Resolved<'a> {
    Compiled(&'a CompiledFlow),
    /// No such file: where it was looked for last (the shared path).
    Missing(PathBuf),
}

impl FlowFiles {
    /// The flow `flow` of provider `caller_id`, compiled with `engine` on
    /// first use. A provider's own flows first (`flows/<provider>/<flow>.rhai`),
    /// so two providers' flows of the same name cannot collide; then the
    /// shared `flows/<flow>.rhai`. The provider name is checked like a flow
    /// name: a job read from Redis may carry anything. What a (provider,
    /// flow) resolved to is compiled once and kept; a miss is not kept, so a
    /// flow file deployed later is found by the next job that needs it.
    fn resolve(
        &mut self,
        engine: &Engine,
        caller_id: &str,
        flow: &str,
    ) -> Result<Resolved<'_>, String> {
        if !is_valid_flow_name(flow) {
            return Err(format!(
                "refused flow name {flow:?}: flow names must match ^[a-z0-9_]+$"
            ));
        }
        // Looked up by reference: a job whose flow is compiled already
        // allocates nothing here.
        let cached = self
            .compiled
            .get(caller_id)
            .is_some_and(|flows| flows.contains_key(flow));
        if !cached {
            let mut path = self.dir.join(format!("{flow}.rhai"));
            if is_valid_flow_name(caller_id) {
                let own = self.dir.join(caller_id).join(format!("{flow}.rhai"));
                if own.is_file() {
                    path = own;
                }
            }
            if !path.is_file() {
                return Ok(Resolved::Missing(path));
            }
            let mut ast = engine
                .compile_file(path.clone())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            ast.set_source(path.display().to_string());
            self.compiled
                .entry(caller_id.to_string())
                .or_default()
                .insert(flow.to_string(), CompiledFlow::new(ast));
        }
        Ok(Resolved::Compiled(&self.compiled[caller_id][flow]))
    }
}

/// Runs flow jobs on one thread.
pub struct FlowRunner {
    host: Rc<ScriptHost>,
    engine: Engine,
    limits: ScriptLimits,
    flows: FlowFiles,
    /// Where flow runs are counted (`payhost_flows_total`).
    metrics: Metrics,
    flow_counters: ByName<Option<[prometheus_client::metrics::counter::Counter; 3]>>,
}

impl FlowRunner {
    pub fn new(host: Rc<ScriptHost>, flows_dir: PathBuf, limits: &ScriptLimits) -> Self {
        let engine = script_engine(&host, limits);
        Self {
            host,
            engine,
            limits: limits.clone(),
            flows: FlowFiles {
                dir: flows_dir,
                compiled: ByName::default(),
            },
            metrics: Metrics::disabled(),
            flow_counters: ByName::default(),
        }
    }

    /// The runner, counting the flows it runs into `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn host(&self) -> &Rc<ScriptHost> {
        &self.host
    }

    /// Runs `job`, charging any requests it makes to `token`, and reports the
    /// result on it. Returns the error text when the flow failed. The job is
    /// used up: its payload text becomes the flow's `response_json` (or
    /// `error_json`, `event_json`) without a copy. `value` is the payload
    /// already parsed into the flow's value (by [`classify_parsed`], or with
    /// the job by [`crate::queue::trust::read_job`]); without it the payload
    /// is parsed here.
    pub fn run_with_value(
        &mut self,
        mut job: FlowJob,
        value: Option<Dynamic>,
        token: &Token,
    ) -> Result<(), String> {
        let result = self.run_inner(&mut job, value, token);
        // Jobs name their provider (`caller_id`): a loaded plugin's name, as
        // the worker refuses any other before a flow runs.
        let outcome = match &result {
            Ok(true) => FlowResult::Done,
            Ok(false) => FlowResult::Missing,
            Err(_) => FlowResult::Failed,
        };
        // This thread's own counters, resolved on a provider's first flow:
        // no lock after that.
        if !self.flow_counters.contains_key(&job.caller_id) {
            let counters = self.metrics.flow_counters(&job.caller_id);
            self.flow_counters.insert(job.caller_id.clone(), counters);
        }
        if let Some(Some(counters)) = self.flow_counters.get(&job.caller_id) {
            counters[match outcome {
                FlowResult::Done => 0,
                FlowResult::Failed => 1,
                FlowResult::Missing => 2,
            }]
            .inc();
        }
        // The job is done with: its flow name goes with the event.
        let flow = std::mem::take(&mut job.flow);
        match &result {
            Ok(true) => token.report(Event::FlowDone { flow, error: None }),
            Ok(false) => token.report(Event::FlowMissing { flow }),
            Err(error) => token.report(Event::FlowDone {
                flow,
                error: Some(error.clone()),
            }),
        }
        result.map(|_| ())
    }

    /// `json` as the value the flow `flow` of `caller_id` gets for
    /// `outcome`: of an object, only the fields the flow reads are built
    /// (all of it is checked). With no flow to run, or one that does not
    /// compile, nothing is built: the text is only checked.
    pub fn payload_value(
        &mut self,
        caller_id: &str,
        flow: &str,
        outcome: Outcome,
        json: &str,
    ) -> serde_json::Result<Dynamic> {
        static NOTHING: Projection = Projection::Fields(Vec::new());
        let projection = match self.flows.resolve(&self.engine, caller_id, flow) {
            Ok(Resolved::Compiled(compiled)) => compiled.projection(outcome),
            Ok(Resolved::Missing(_)) | Err(_) => &NOTHING,
        };
        crate::script_value::from_json_projected(json, projection)
    }

    /// `Ok(false)` when there is no flow file for the job.
    fn run_inner(
        &mut self,
        job: &mut FlowJob,
        value: Option<Dynamic>,
        token: &Token,
    ) -> Result<bool, String> {
        let compiled = match self
            .flows
            .resolve(&self.engine, &job.caller_id, &job.flow)?
        {
            Resolved::Compiled(compiled) => compiled,
            Resolved::Missing(path) => {
                match job.outcome {
                    // Providers send many event types; handling only some is
                    // normal, so this is no warning.
                    Outcome::Event => tracing::info!(
                        "no flow file {} to handle the {} event {} for worker {}",
                        path.display(),
                        job.caller_id,
                        job.context_id,
                        job.worker_id,
                    ),
                    Outcome::Response | Outcome::Error => tracing::warn!(
                        "no flow file {} to handle the {} of {} for worker {} (context {})",
                        path.display(),
                        if job.outcome == Outcome::Response {
                            "response"
                        } else {
                            "error"
                        },
                        job.flow
                            .trim_start_matches("new_")
                            .trim_end_matches("_response")
                            .trim_end_matches("_error"),
                        job.worker_id,
                        job.context_id,
                    ),
                }
                return Ok(false);
            }
        };
        let ast = &compiled.ast;

        let parsed = match value {
            Some(value) => value,
            None => crate::script_value::from_json_projected(
                &job.payload,
                compiled.projection(job.outcome),
            )
            .map_err(|e| format!("flow {}: payload is not JSON: {e}", job.flow))?,
        };
        let mut scope = Scope::new();
        scope.push_constant("CALLER_ID", job.caller_id.clone());
        scope.push_constant("CONTEXT_ID", job.context_id.clone());
        scope.push_constant("WORKER_ID", job.worker_id.clone());
        let text = std::mem::take(&mut job.payload);
        match job.outcome {
            Outcome::Response => {
                scope.push("response_json", text);
                scope.push("parsed_data", parsed);
            }
            Outcome::Error => {
                scope.push("error_json", text);
                scope.push("parsed_error", parsed);
            }
            // An event flow: the event as `parsed_event`, the object it is
            // about as `parsed_data` (as in a response flow).
            Outcome::Event => {
                let object = parsed
                    .read_lock::<rhai::Map>()
                    .and_then(|event| event.get("object").cloned())
                    .unwrap_or(Dynamic::UNIT);
                scope.push("event_json", text);
                scope.push("parsed_event", parsed);
                scope.push("parsed_data", object);
            }
        }

        let timeout = self.limits.flow_timeout;
        self.host.set_current(Some(token.clone()));
        self.host
            .set_deadline(Some(std::time::Instant::now() + timeout));
        // `*_async()` without ids stays in this flow's worker and context.
        self.host
            .set_ids(Some((job.worker_id.as_str(), job.context_id.as_str())));
        let result = self.engine.run_ast_with_scope(&mut scope, ast);
        self.host.set_ids(None);
        self.host.set_deadline(None);
        self.host.set_current(None);
        // The file the flow was compiled from (the provider's own or the
        // shared one).
        let file = ast.source().unwrap_or(job.flow.as_str());
        result.map(|()| true).map_err(|e| match *e {
            rhai::EvalAltResult::ErrorTerminated(_, pos) => format!(
                "{file}: ran longer than the {}s flow time limit ({pos})",
                timeout.as_secs_f64()
            ),
            e => format!("{file}: {}", self.host.describe(&e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_names_follow_the_seed() {
        assert_eq!(
            flow_name("create", "payment_intent", Outcome::Response),
            "new_create_payment_intent_response"
        );
        assert_eq!(
            flow_name("cancel", "subscription", Outcome::Error),
            "new_cancel_subscription_error"
        );
    }

    #[test]
    fn the_host_classifies_only_what_the_rule_covers() {
        use wit::ResponseRule::{JsonObjectIsSuccess, Plugin};
        let response = |status: u16, body: &[u8]| {
            wit::TransportOutcome::Response(wit::HttpResponse {
                status,
                headers: Vec::new(),
                body: body.to_vec(),
            })
        };
        // Left to the caller's parse (which may still refuse it).
        for (status, body) in [
            (200, &b"{}"[..]),
            (201, b" \r\n\t{\"id\": 1}\n"),
            (299, b"{\"broken\""),
            (204, b"{\"n\": 1e400}"),
        ] {
            assert_eq!(
                host_classified(JsonObjectIsSuccess, &response(status, body)),
                Some(std::str::from_utf8(body).unwrap()),
                "{status}"
            );
            assert_eq!(host_classified(Plugin, &response(status, body)), None);
        }
        // The plugin's to classify.
        for (status, body) in [
            (199, &b"{}"[..]),
            (300, b"{}"),
            (404, b"{\"error\": {}}"),
            (500, b"{}"),
            (200, b""),
            (200, b"   "),
            (200, b"[{}]"),
            (200, b"\"{}\""),
            (200, b"\xef\xbb\xbf{}"),
            (200, b"\x0c{}"),
            (200, b"{\"bad\": \"\xff\"}"),
        ] {
            assert_eq!(
                host_classified(JsonObjectIsSuccess, &response(status, body)),
                None,
                "{status} {body:?}"
            );
        }
        let failed = wit::TransportOutcome::Failed(wit::TransportFailure {
            kind: wit::FailureKind::Timeout,
            status: Some(200),
            message: "timed out".into(),
        });
        assert_eq!(host_classified(JsonObjectIsSuccess, &failed), None);
    }

    fn job_with(payload: &str) -> FlowJob {
        FlowJob {
            flow: "new_create_customer_response".into(),
            outcome: Outcome::Response,
            worker_id: "w1".into(),
            context_id: "ctx".into(),
            caller_id: "stripe".into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn a_json_payload_is_written_inside_the_job_unescaped_and_read_back_byte_for_byte() {
        // Escapes, key order, spacing and number spellings are the plugin's
        // and stay as they were.
        for payload in [
            r#"{"id":"cus_1","name":"Jo \"J\" \u00e9","z":1.0,"a":[1e2, -0]}"#,
            "[]",
            "null",
            r#""a string payload""#,
            "{\n  \"pretty\": true\n}",
        ] {
            let job = job_with(payload);
            let text = serde_json::to_string(&job).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(value.get("payload").is_none(), "{text}");
            assert_eq!(
                value["data"],
                serde_json::from_str::<serde_json::Value>(payload).unwrap()
            );
            assert!(text.contains(payload), "written as it was: {text}");
            assert_eq!(serde_json::from_str::<FlowJob>(&text).unwrap(), job);
        }
    }

    #[test]
    fn a_payload_that_is_not_json_text_alone_is_written_as_a_string() {
        // Not JSON, or JSON with whitespace around it (a raw value would drop
        // the whitespace, and `response_json` is the text as classified).
        for payload in [
            "not json",
            "{\"a\":1} trailing",
            " {\"a\":1}",
            "{\"a\":1}\n",
            "",
        ] {
            let job = job_with(payload);
            let text = serde_json::to_string(&job).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(value.get("data").is_none(), "{text}");
            assert_eq!(value["payload"], payload);
            assert_eq!(serde_json::from_str::<FlowJob>(&text).unwrap(), job);
        }
    }

    #[test]
    fn a_ready_jobs_text_is_the_jobs_json_byte_for_byte() {
        for payload in [
            r#"{"id":"cus_1","name":"Jo \"J\" \u00e9","z":1.0,"a":[1e2, -0]}"#,
            "[]",
            "null",
            "{\n  \"pretty\": true\n}",
            "not json",
            " {\"a\":1}",
            "",
        ] {
            let mut job = job_with(payload);
            job.context_id = "ctx \"q\" \\ é \u{1}".into();
            let json = serde_json::to_string(&job).unwrap();
            assert_eq!(ReadyJob::new(job.clone()).to_text(), json, "{payload:?}");
            if !["not json", " {\"a\":1}", ""].contains(&payload) {
                // What `classify` makes: a payload its parse took.
                assert_eq!(ReadyJob::classified(job).to_text(), json, "{payload:?}");
            }
        }
    }

    #[test]
    fn only_the_whitespace_around_a_payload_is_dropped() {
        let text = |s: &str| without_outer_whitespace(s.to_string());
        assert_eq!(text("\r\n\t {\"a\": \" x \"} \n"), "{\"a\": \" x \"}");
        assert_eq!(text("[1]"), "[1]");
        assert_eq!(text(" \n"), "");
        // Not JSON whitespace: kept (and such text is written as a string).
        assert_eq!(text("\u{a0}1\u{a0}"), "\u{a0}1\u{a0}");
        let job = job_with(&text("{\"id\":\"cus_1\"}\n"));
        assert!(
            serde_json::to_string(&job)
                .unwrap()
                .ends_with(r#""data":{"id":"cus_1"}}"#)
        );
    }

    #[test]
    fn jobs_written_before_the_payload_moved_into_data_still_read() {
        let old = r#"{"flow":"new_create_customer_response","outcome":"response",
            "worker_id":"w1","context_id":"ctx","caller_id":"stripe",
            "payload":"{\"id\":\"cus_1\"}"}"#;
        let job: FlowJob = serde_json::from_str(old).unwrap();
        assert_eq!(job, job_with(r#"{"id":"cus_1"}"#));
    }

    #[test]
    fn a_job_holds_its_payload_once() {
        let head = r#""flow":"f_response","outcome":"response","worker_id":"w1","context_id":"c","caller_id":"x""#;
        let neither = serde_json::from_str::<FlowJob>(&format!("{{{head}}}")).unwrap_err();
        assert!(
            neither.to_string().contains("missing field `data`"),
            "{neither}"
        );
        let both = format!(r#"{{{head},"data":{{}},"payload":"{{}}"}}"#);
        let both = serde_json::from_str::<FlowJob>(&both).unwrap_err();
        assert!(
            both.to_string().contains("`data` or `payload`, not both"),
            "{both}"
        );
    }

    #[test]
    fn payload_nesting_is_measured_outside_strings() {
        assert!(nesting_within(r#"{"a":[{"b":"[[[["}]}"#, 3));
        assert!(!nesting_within(r#"{"a":[{"b":[]}]}"#, 3));
        assert!(nesting_within(r#"{"a":"\"{{{{"}"#, 1));
        let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
        assert!(!nesting_within(&deep, MAX_PAYLOAD_DEPTH));
        assert!(nesting_within(r#"{"id":"cus_1"}"#, MAX_PAYLOAD_DEPTH));
        assert!(!nesting_within(r#"{"a":"\\","b":[[[1]]]}"#, 3));
        assert!(nesting_within(r#"{"a":"\\","b":[[[1]]]}"#, 4));
        assert!(nesting_within(r#"{"a":"\"[[[[","b":[1]}"#, 2));
    }

    /// The byte-by-byte walk the skipping one replaced, as the reference.
    fn nesting_reference(json: &str, limit: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for byte in json.bytes() {
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > limit {
                        return false;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    #[test]
    fn payload_nesting_agrees_with_the_byte_by_byte_walk() {
        // Every string of up to 7 of these bytes, at every limit up to 4.
        let alphabet = [b'"', b'\\', b'[', b']', b'{', b'}', b'a'];
        let mut texts = vec![Vec::new()];
        for _ in 0..7 {
            let longer: Vec<Vec<u8>> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, Vec::len))
                .flat_map(|t| {
                    alphabet.iter().map(move |&b| {
                        let mut t = t.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            texts.extend(longer);
        }
        for text in &texts {
            let text = std::str::from_utf8(text).unwrap();
            for limit in 0..5 {
                assert_eq!(
                    nesting_within(text, limit),
                    nesting_reference(text, limit),
                    "{text:?} at {limit}"
                );
            }
        }
    }

    #[test]
    fn flow_names_cannot_leave_the_flows_directory() {
        for bad in ["../x", "a/b", "A", "x.rhai", "", "new flow", "x\0"] {
            assert!(!is_valid_flow_name(bad), "{bad:?}");
        }
        assert!(is_valid_flow_name("new_create_customer_response"));
    }
}
