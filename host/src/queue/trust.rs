//! Who can make a worker run what: the checks a job passes before its flow
//! runs, and the job key that authenticates jobs.
//!
//! Anyone who can write to Redis can add stream entries and job records, so
//! a worker trusts nothing it reads there. A started job is checked here
//! and nowhere else: its MAC when the worker has a [`JobKey`] ([`verify`],
//! before it goes to a flow thread), then, on the flow thread that runs it,
//! its JSON, its worker id (the stream's), its flow (response, error and
//! event flows only, never an entry script) and its provider ([`read_job`],
//! which reads the job in the same pass as its payload). The store
//! ([`super::jobs`]) already checked that the entry is the record's current
//! one and that the record belongs to this worker id.
//! `docs/redis-protocol.md` states the trust model that follows.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::jobs::StartedJob;
use crate::flow::FlowJob;
use crate::script_api::Providers;
use crate::secret::Secret;

/// Whether a job may run `flow`: a response or error flow
/// (`^new_[a-z0-9_]+_(response|error)$`) or a webhook event flow
/// (`^on_[a-z0-9_]+$`). Never an entry script such as `main`.
pub fn is_job_flow(flow: &str) -> bool {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if flow.len() > 128 {
        return false;
    }
    if let Some(rest) = flow.strip_prefix("new_") {
        return ["_response", "_error"]
            .iter()
            .any(|suffix| rest.strip_suffix(suffix).is_some_and(word));
    }
    flow.strip_prefix("on_").is_some_and(word)
}

/// The key that authenticates jobs (`--job-key-env NAME`). Publishers sign
/// each job with it; a worker that has one refuses jobs without a valid MAC.
/// Its `Debug` never shows the key, and it is never written anywhere.
#[derive(Clone, Debug)]
pub struct JobKey(Secret);

type HmacSha256 = Hmac<Sha256>;

impl JobKey {
    /// Reads the key from environment variable `name`.
    pub fn from_env(name: &str) -> anyhow::Result<JobKey> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(JobKey(Secret::new(value))),
            Ok(_) => anyhow::bail!("--job-key-env {name}: the environment variable is empty"),
            Err(std::env::VarError::NotPresent) => {
                anyhow::bail!("--job-key-env {name}: the environment variable is not set")
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("--job-key-env {name}: the environment variable is not UTF-8")
            }
        }
    }

    pub fn new(key: &str) -> JobKey {
        JobKey(Secret::new(key))
    }

    /// HMAC-SHA256 over the job id, worker id and job JSON. The parts are
    /// separated by NUL bytes, which ids cannot contain, so no two different
    /// jobs sign the same bytes.
    fn hmac(&self, job_id: &str, worker_id: &str, job_json: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.0.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        for part in ["payhost-job-v1", job_id, worker_id] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac.update(job_json.as_bytes());
        mac
    }

    /// The MAC of a job, as lowercase hex.
    pub fn sign(&self, job_id: &str, worker_id: &str, job_json: &str) -> String {
        let bytes = self
            .hmac(job_id, worker_id, job_json)
            .finalize()
            .into_bytes();
        crate::secret::to_hex(&bytes)
    }

    /// Whether `mac_hex` is the job's MAC (constant-time comparison).
    pub fn verify(&self, job_id: &str, worker_id: &str, job_json: &str, mac_hex: &str) -> bool {
        let Some(mac) = crate::secret::from_hex(mac_hex) else {
            return false;
        };
        self.hmac(job_id, worker_id, job_json)
            .verify_slice(&mac)
            .is_ok()
    }
}

/// The first check of a started job, before it goes to a flow thread: when
/// the worker has a job key, the job's MAC. `Err` is the reason to
/// dead-letter it.
pub fn verify(
    job_id: &str,
    worker_id: &str,
    started: &StartedJob,
    key: Option<&JobKey>,
) -> Result<(), String> {
    let Some(key) = key else {
        return Ok(());
    };
    match &started.mac {
        None => Err("refused: the job has no MAC, and this worker requires \
             authenticated jobs (--job-key-env)"
            .into()),
        Some(mac) if !key.verify(job_id, worker_id, &started.job_json, mac) => {
            Err("refused: the job's MAC does not verify with this worker's job key".into())
        }
        Some(_) => Ok(()),
    }
}

/// Reads a started job's text ([`verify`]d) as the job it is, and checks its
/// worker id (the stream's) and its flow (response, error or event flows
/// only). `Err` is the reason to dead-letter it. The flow thread that runs
/// the job reads it ([`read_job`]); this is the whole of that reading, for
/// any layout of the text.
pub fn authorize(worker_id: &str, job_json: &str) -> Result<FlowJob, String> {
    let job: FlowJob = serde_json::from_str(job_json)
        .map_err(|err| format!("refused: unreadable job JSON: {err}"))?;
    check(&job.worker_id, &job.flow, worker_id)?;
    Ok(job)
}

/// A job's worker id and flow, against the worker's id.
fn check(job_worker_id: &str, flow: &str, worker_id: &str) -> Result<(), String> {
    if job_worker_id != worker_id {
        return Err(format!(
            "refused: the job is for worker id {job_worker_id:?}, not {worker_id:?}"
        ));
    }
    if !crate::flow::is_valid_flow_name(flow) {
        // The flow runner's own words for the same rule.
        return Err(format!(
            "refused flow name {flow:?}: flow names must match ^[a-z0-9_]+$"
        ));
    }
    if !is_job_flow(flow) {
        return Err(format!(
            "refused: flow {flow:?} is not a response, error or event flow \
             (new_<op>_<object>_response|error or on_<event>)"
        ));
    }
    Ok(())
}

/// A started job read on the flow thread that runs it: the job, and its
/// payload already parsed into the value its flow gets, when that could be
/// done in the one pass.
#[derive(Debug)]
pub struct ReadJob {
    pub job: FlowJob,
    pub value: Option<rhai::Dynamic>,
}

/// Reads a started job's text ([`verify`]d) on the flow thread that runs
/// it, with the same checks as [`authorize`] and then `provider` (see
/// [`check_provider`]), and reads the payload only once. A job refused by
/// [`authorize`] is refused here (for one with several faults, the reason
/// given is the first found, which may be another of them). The payload is
/// most of a job, and reading it twice, once to find where it ends and once
/// into the flow's value, cost a worker 18.5k of its ~117k instructions a
/// job (callgrind).
///
/// A text in the layout [`FlowJob`]'s serializer writes, which every
/// publisher does (`split`), has its other fields read and checked first,
/// then its payload parsed straight into the value the flow gets:
/// `value_of` builds it from the payload's text (of an object, the fields
/// the flow reads), `None` when the text is no payload it takes. If that
/// fails, or the text is in any other layout, [`authorize`] reads it whole
/// and the flow parses its payload as before, so a text means the same job
/// either way.
pub fn read_job(
    worker_id: &str,
    mut text: String,
    provider: impl Fn(&FlowJob) -> Result<(), String>,
    mut value_of: impl FnMut(&FlowJob, &str) -> Option<rhai::Dynamic>,
) -> Result<ReadJob, String> {
    if let Some((mut job, data)) = split(&text) {
        check(&job.worker_id, &job.flow, worker_id)?;
        provider(&job)?;
        if let Some(value) = value_of(&job, &text[data.clone()]) {
            // The payload's text is the job's, without copying: the
            // envelope's fields were read out of it already.
            text.truncate(data.end);
            text.drain(..data.start);
            job.payload = text;
            return Ok(ReadJob {
                job,
                value: Some(value),
            });
        }
    }
    let job = authorize(worker_id, &text)?;
    provider(&job)?;
    Ok(ReadJob { job, value: None })
}

/// Whether the job's provider (`caller_id`) is one this worker has a plugin
/// for: [`read_job`]'s `provider` check.
pub fn check_provider(job: &FlowJob, providers: &Providers) -> Result<(), String> {
    match providers.index_of(&job.caller_id) {
        Some(_) => Ok(()),
        None => Err(format!(
            "refused: the job is provider {:?}'s, and this worker has plugins for: {}",
            job.caller_id,
            providers.names()
        )),
    }
}

/// `{"flow":..,"outcome":..,"worker_id":..,"context_id":..,"caller_id":..,
/// "data":<payload>}` and nothing else (no whitespace): the job with an
/// empty payload, and where in `text` the payload is. The payload is not
/// read here: `None` for any other text, which is read whole instead.
fn split(text: &str) -> Option<(FlowJob, std::ops::Range<usize>)> {
    let mut rest = text.strip_prefix('{')?;
    let mut field = |name: &str| -> Option<String> {
        let after = rest
            .strip_prefix('"')?
            .strip_prefix(name)?
            .strip_prefix("\":")?;
        let (value, after) = json_string(after)?;
        rest = after.strip_prefix(',')?;
        Some(value)
    };
    let flow = field("flow")?;
    let outcome = match field("outcome")?.as_str() {
        "response" => crate::flow::Outcome::Response,
        "error" => crate::flow::Outcome::Error,
        "event" => crate::flow::Outcome::Event,
        _ => return None,
    };
    let (worker_id, context_id, caller_id) = (
        field("worker_id")?,
        field("context_id")?,
        field("caller_id")?,
    );
    let data = rest.strip_prefix("\"data\":")?.strip_suffix('}')?;
    let edges = [data.bytes().next()?, data.bytes().next_back()?];
    if edges.iter().any(u8::is_ascii_whitespace) {
        return None;
    }
    let start = text.len() - 1 - data.len();
    let job = FlowJob {
        flow,
        outcome,
        worker_id,
        context_id,
        caller_id,
        payload: String::new(),
    };
    Some((job, start..start + data.len()))
}

/// The JSON string `text` starts with, and the text after it.
fn json_string(text: &str) -> Option<(String, &str)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut from = 1;
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[at] == b'\\' {
            // An escape: the next byte is not the string's end.
            from = at + 2;
            continue;
        }
        let value = serde_json::from_str(text.get(..=at)?).ok()?;
        return Some((value, &text[at + 1..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Outcome;

    #[test]
    fn only_response_error_and_event_flows_may_run_as_jobs() {
        for ok in [
            "new_create_payment_intent_response",
            "new_cancel_subscription_error",
            "new_x_response",
            "on_payment_intent_succeeded",
        ] {
            assert!(is_job_flow(ok), "{ok}");
        }
        for bad in [
            "main",
            "new_response",
            "new__error",
            "new_create_customer",
            "on_",
            "setup",
            "new_create_customer_response.rhai",
            "../new_x_response",
            "New_x_response",
            "on_Event",
        ] {
            assert!(!is_job_flow(bad), "{bad}");
        }
    }

    fn started(job: &FlowJob, mac: Option<String>) -> StartedJob {
        StartedJob {
            attempts: 1,
            job_json: serde_json::to_string(job).unwrap(),
            mac,
            run_id: None,
        }
    }

    fn job(flow: &str, worker_id: &str) -> FlowJob {
        FlowJob {
            flow: flow.into(),
            outcome: Outcome::Response,
            worker_id: worker_id.into(),
            context_id: "ctx".into(),
            caller_id: "stripe".into(),
            payload: "{}".into(),
        }
    }

    fn text(job: &FlowJob) -> String {
        serde_json::to_string(job).unwrap()
    }

    #[test]
    fn authorize_refuses_entry_scripts_and_other_workers_jobs() {
        let ok = job("new_create_customer_response", "w1");
        assert!(authorize("w1", &text(&ok)).is_ok());
        let main = authorize("w1", &text(&job("main", "w1")));
        assert!(main.unwrap_err().contains("\"main\" is not a response"));
        let other = authorize("w1", &text(&job(&ok.flow, "w2")));
        assert!(other.unwrap_err().contains("worker id \"w2\""));
        let broken = authorize("w1", "{\"flow\":");
        assert!(
            broken
                .unwrap_err()
                .starts_with("refused: unreadable job JSON")
        );
    }

    #[test]
    fn with_a_key_only_jobs_signed_for_this_id_and_worker_run() {
        let key = JobKey::new("k1");
        let ok = job("new_create_customer_response", "w1");
        let mac = key.sign("j1", "w1", &text(&ok));
        assert!(verify("j1", "w1", &started(&ok, None), None).is_ok());
        assert!(verify("j1", "w1", &started(&ok, Some(mac.clone())), Some(&key)).is_ok());
        assert!(verify("j1", "w1", &started(&ok, None), Some(&key)).is_err());
        // The same MAC under another job id, or with another key, fails.
        assert!(verify("j2", "w1", &started(&ok, Some(mac.clone())), Some(&key)).is_err());
        let other = JobKey::new("k2");
        assert!(verify("j1", "w1", &started(&ok, Some(mac)), Some(&other)).is_err());
        assert!(
            verify("j1", "w1", &started(&ok, Some("zz".into())), Some(&key))
                .unwrap_err()
                .contains("does not verify")
        );
        assert_eq!(format!("{key:?}"), "JobKey(Secret(<redacted>))");
    }

    /// `read_job` with every provider known; `value_of` reports the payload
    /// text it was given, and takes it when it is JSON.
    fn one_pass(text: &str) -> (Result<ReadJob, String>, Vec<String>) {
        let mut seen = Vec::new();
        let read = read_job(
            "w1",
            text.to_string(),
            |_| Ok(()),
            |_, payload| {
                seen.push(payload.to_string());
                crate::script_value::check_json(payload)
                    .ok()
                    .map(|()| rhai::Dynamic::from(payload.to_string()))
            },
        );
        (read, seen)
    }

    #[test]
    fn a_published_job_is_read_in_one_pass_with_the_same_fields() {
        let mut written = job("new_create_customer_response", "w1");
        // Escapes in the envelope and the payload.
        written.context_id = "ctx \"quoted\" \\ é \u{1}".into();
        written.payload = r#"{"id":"cus_1","name":"a \"b\"","n":[1,{"x":null}]}"#.into();
        let (read, seen) = one_pass(&text(&written));
        let read = read.unwrap();
        assert_eq!(read.job, written);
        assert_eq!(seen, [written.payload.clone()]);
        assert_eq!(read.value.unwrap().into_string().unwrap(), written.payload);
    }

    #[test]
    fn any_other_layout_is_read_whole_and_means_the_same_job() {
        let written = job("new_create_customer_response", "w1");
        let canonical = text(&written);
        let data_first = r#"{"data":{},"flow":"new_create_customer_response","outcome":"response","worker_id":"w1","context_id":"ctx","caller_id":"stripe"}"#;
        let spaced = canonical.replace(":{}", ": {}");
        let escaped_key = canonical.replace("\"caller_id\"", "\"caller\\u005fid\"");
        for other in [data_first, &spaced, &escaped_key] {
            let (read, seen) = one_pass(other);
            let read = read.unwrap();
            assert_eq!(read.job, written, "{other}");
            assert!(read.value.is_none() && seen.is_empty(), "{other}");
        }
        // A field after the payload: the split's payload is no JSON value,
        // so the whole reading decides (it ignores the unknown field).
        let trailing = canonical.replace("{}}", "{},\"later\":1}");
        let (read, seen) = one_pass(&trailing);
        assert_eq!(seen, ["{},\"later\":1"]);
        assert_eq!(read.unwrap().job, written);
        // A payload given twice is refused, in one layout as in the other.
        let twice = canonical.replace("{}}", "{},\"payload\":\"x\"}");
        assert!(one_pass(&twice).0.unwrap_err().contains("payload once"));
        // A broken payload: refused as unreadable JSON.
        let broken = canonical.replace("{}}", "{]}");
        assert!(
            one_pass(&broken)
                .0
                .unwrap_err()
                .contains("unreadable job JSON")
        );
    }

    #[test]
    fn the_one_pass_checks_before_it_reads_the_payload() {
        for (flow, worker_id, why) in [
            ("main", "w1", "is not a response"),
            ("../new_x_response", "w1", "flow names must match"),
            ("new_x_response", "w2", "worker id \"w2\""),
        ] {
            let (read, seen) = one_pass(&text(&job(flow, worker_id)));
            assert!(read.unwrap_err().contains(why), "{flow} {worker_id}");
            assert!(seen.is_empty(), "the payload of a refused job is not read");
        }
        let refused = read_job(
            "w1",
            text(&job("new_x_response", "w1")),
            |job| Err(format!("no plugin {}", job.caller_id)),
            |_, _| panic!("read a refused job's payload"),
        );
        assert_eq!(refused.err().unwrap(), "no plugin stripe");
    }
}
