//! Who can make a worker run what: the checks a job passes before its flow
//! runs, and the job key that authenticates jobs.
//!
//! Anyone who can write to Redis can add stream entries and job records, so
//! a worker trusts nothing it reads there. [`authorize`] is the one place a
//! started job is checked: its JSON, its worker id (the stream's), its flow
//! (response, error and event flows only, never an entry script) and, when
//! the worker has a [`JobKey`], its MAC. The store ([`super::jobs`]) already
//! checked that the entry is the record's current one and that the record
//! belongs to this worker id. `docs/redis-protocol.md` states the trust
//! model that follows.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::jobs::StartedJob;
use crate::flow::FlowJob;
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

/// Checks a started job before anything runs: its JSON, its worker id (the
/// stream's), its flow (response, error or event flows only) and, when the
/// worker has a job key, its MAC. `Err` is the reason to dead-letter it.
pub fn authorize(
    job_id: &str,
    worker_id: &str,
    started: &StartedJob,
    key: Option<&JobKey>,
) -> Result<FlowJob, String> {
    if let Some(key) = key {
        match &started.mac {
            None => {
                return Err("refused: the job has no MAC, and this worker requires \
                     authenticated jobs (--job-key-env)"
                    .into());
            }
            Some(mac) if !key.verify(job_id, worker_id, &started.job_json, mac) => {
                return Err(
                    "refused: the job's MAC does not verify with this worker's job key".into(),
                );
            }
            Some(_) => {}
        }
    }
    let job: FlowJob = serde_json::from_str(&started.job_json)
        .map_err(|err| format!("refused: unreadable job JSON: {err}"))?;
    if job.worker_id != worker_id {
        return Err(format!(
            "refused: the job is for worker id {:?}, not {worker_id:?}",
            job.worker_id
        ));
    }
    if !crate::flow::is_valid_flow_name(&job.flow) {
        // The flow runner's own words for the same rule.
        return Err(format!(
            "refused flow name {:?}: flow names must match ^[a-z0-9_]+$",
            job.flow
        ));
    }
    if !is_job_flow(&job.flow) {
        return Err(format!(
            "refused: flow {:?} is not a response, error or event flow \
             (new_<op>_<object>_response|error or on_<event>)",
            job.flow
        ));
    }
    Ok(job)
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

    #[test]
    fn authorize_refuses_entry_scripts_and_other_workers_jobs() {
        let ok = job("new_create_customer_response", "w1");
        assert!(authorize("j1", "w1", &started(&ok, None), None).is_ok());
        let main = authorize("j1", "w1", &started(&job("main", "w1"), None), None);
        assert!(main.unwrap_err().contains("\"main\" is not a response"));
        let other = authorize("j1", "w1", &started(&job(&ok.flow, "w2"), None), None);
        assert!(other.unwrap_err().contains("worker id \"w2\""));
    }

    #[test]
    fn with_a_key_only_jobs_signed_for_this_id_and_worker_run() {
        let key = JobKey::new("k1");
        let ok = job("new_create_customer_response", "w1");
        let json = serde_json::to_string(&ok).unwrap();
        let mac = key.sign("j1", "w1", &json);
        assert!(authorize("j1", "w1", &started(&ok, Some(mac.clone())), Some(&key)).is_ok());
        assert!(authorize("j1", "w1", &started(&ok, None), Some(&key)).is_err());
        // The same MAC under another job id, or with another key, fails.
        assert!(authorize("j2", "w1", &started(&ok, Some(mac.clone())), Some(&key)).is_err());
        let other = JobKey::new("k2");
        assert!(authorize("j1", "w1", &started(&ok, Some(mac)), Some(&other)).is_err());
        assert!(
            authorize("j1", "w1", &started(&ok, Some("zz".into())), Some(&key))
                .unwrap_err()
                .contains("does not verify")
        );
        assert_eq!(format!("{key:?}"), "JobKey(Secret(<redacted>))");
    }
}
