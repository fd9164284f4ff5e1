//! Believing a webhook delivery: the host's half of the contract's webhook
//! scheme.
//!
//! The plugin knows the provider's format: from the raw headers and body it
//! says which bytes were signed, which signatures the delivery carries and
//! when it was signed (`check-webhook`), and later turns the verified body
//! into events (`parse-webhook`). The host holds the signing key (a secret
//! setting the plugin names, never passed to it) and does everything that
//! decides trust, here: it computes the MAC of every signed part, compares it
//! with the delivery's signatures in constant time, and enforces the
//! timestamp tolerance. Nothing here does I/O; `payhost serve`
//! ([`crate::serve`]) calls it from its webhook threads.
//!
//! Signatures are compared as encoded text, as the providers' own libraries
//! do (stripe-python compares lower-case hex strings, Adyen's library base64
//! strings): a delivery the provider's library would refuse is refused here.
//! A refusal says why for the operator's log and never contains the key or
//! the expected signature; the client gets only its [`Refusal::public`]
//! line.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::flow::{FlowJob, Outcome, is_valid_flow_name};
use crate::plugin::wit;
use crate::secret::Secret;

/// The Stripe SDKs' default tolerance, and ours: a delivery signed longer ago
/// than this is refused as a possible replay.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The signing key, decoded from its setting. Never shown.
pub struct SigningKey(Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// Decodes `secret` as the scheme says. The error names `source` (the
    /// environment variable or setting the operator gave it in), never the
    /// value.
    pub fn decode(
        secret: &Secret,
        encoding: wit::KeyEncoding,
        source: &str,
    ) -> Result<SigningKey, String> {
        let text = secret.expose();
        if text.trim().is_empty() {
            return Err(format!("{source}: the webhook signing key is empty"));
        }
        let bytes = match encoding {
            wit::KeyEncoding::Utf8 => text.as_bytes().to_vec(),
            wit::KeyEncoding::Hex => crate::secret::from_hex(text.trim()).ok_or_else(|| {
                format!(
                    "{source}: the webhook signing key must be hexadecimal digits \
                     (an even number of 0-9, a-f)"
                )
            })?,
            wit::KeyEncoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| format!("{source}: the webhook signing key must be base64"))?,
        };
        Ok(SigningKey(bytes))
    }
}

/// Why a delivery was refused. The variants are what the operator's log
/// distinguishes; [`Refusal::status`] and [`Refusal::public`] are what the
/// client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The plugin found no usable signature (no header, an unreadable one, a
    /// body it cannot read for signed fields). Its text, for the log.
    Unsigned(String),
    /// No signature of part `part` matches.
    BadSignature { part: usize, parts: usize },
    /// Signed at `timestamp`, older than the tolerance allows.
    Stale { timestamp: i64, age: i64 },
    /// Verified, but not the provider's event format (the plugin's text).
    Malformed(String),
    /// The plugin failed (trapped, ran out of time); the delivery may
    /// succeed later, so the provider is asked to retry.
    PluginFailed(String),
}

impl Refusal {
    /// The HTTP status the client gets.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unsigned(_) | Refusal::Malformed(_) => 400,
            Refusal::BadSignature { .. } | Refusal::Stale { .. } => 401,
            Refusal::PluginFailed(_) => 500,
        }
    }

    /// The one line the client gets: the category, nothing about the key or
    /// what was expected.
    pub fn public(&self) -> &'static str {
        match self {
            Refusal::Unsigned(_) => "webhook refused: no usable signature",
            Refusal::BadSignature { .. } => "webhook refused: signature verification failed",
            Refusal::Stale { .. } => "webhook refused: timestamp outside the tolerance",
            Refusal::Malformed(_) => "webhook refused: not an event this provider sends",
            Refusal::PluginFailed(_) => "webhook not processed: internal error, retry later",
        }
    }

    /// A short label, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unsigned(_) => "unsigned",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Stale { .. } => "stale",
            Refusal::Malformed(_) => "malformed",
            Refusal::PluginFailed(_) => "plugin_failed",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned(why) => write!(f, "no usable signature: {why}"),
            Refusal::BadSignature { part, parts } if *parts > 1 => write!(
                f,
                "no signature matches for signed part {} of {parts}",
                part + 1
            ),
            Refusal::BadSignature { .. } => f.write_str("no signature matches"),
            Refusal::Stale { timestamp, age } => write!(
                f,
                "signed at {timestamp}, {age} s ago: outside the tolerance"
            ),
            Refusal::Malformed(why) => write!(f, "not a valid event: {why}"),
            Refusal::PluginFailed(why) => write!(f, "the plugin failed: {why}"),
        }
    }
}

/// Checks `check` with `key`: every part must carry a signature equal to
/// the MAC of its message, and the timestamp (if any) must not be older than
/// `tolerance_secs` before `now` (0 disables the check, as in the Stripe
/// SDKs). The signature is checked first, so an unsigned stale delivery is
/// reported as a bad signature.
pub fn verify(
    check: &wit::WebhookCheck,
    key: &SigningKey,
    tolerance_secs: u64,
    now: i64,
) -> Result<(), Refusal> {
    if check.parts.is_empty() {
        return Err(Refusal::Unsigned(
            "the plugin found nothing signed in the delivery".into(),
        ));
    }
    let parts = check.parts.len();
    for (index, part) in check.parts.iter().enumerate() {
        let expected = encode(check.encoding, &mac(check.algorithm, key, &part.message));
        // Every candidate is compared (no early exit on a match), each in
        // constant time for its length.
        let matched = part.signatures.iter().fold(false, |found, candidate| {
            found | bool::from(expected.as_bytes().ct_eq(candidate.as_bytes()))
        });
        if !matched {
            return Err(Refusal::BadSignature { part: index, parts });
        }
    }
    if let Some(timestamp) = check.timestamp
        && tolerance_secs > 0
    {
        let age = now.saturating_sub(timestamp);
        if age > tolerance_secs as i64 {
            return Err(Refusal::Stale { timestamp, age });
        }
    }
    Ok(())
}

fn mac(algorithm: wit::MacAlgorithm, key: &SigningKey, message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match algorithm {
        wit::MacAlgorithm::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        wit::MacAlgorithm::HmacSha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(&key.0).expect("HMAC takes any key");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn encode(encoding: wit::SignatureEncoding, bytes: &[u8]) -> String {
    match encoding {
        wit::SignatureEncoding::Hex => crate::secret::to_hex(bytes),
        wit::SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// The flow an event type runs: `on_` and the type lower-cased, every
/// character other than an ASCII letter or digit becoming `_`
/// (`payment_intent.succeeded` -> `on_payment_intent_succeeded`,
/// `AUTHORISATION` -> `on_authorisation`). `None` for a type that makes no
/// flow name (empty, or longer than flow names may be).
pub fn event_flow(event_type: &str) -> Option<String> {
    let mut flow = String::with_capacity(event_type.len() + 3);
    flow.push_str("on_");
    for c in event_type.chars() {
        flow.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    (!event_type.is_empty() && is_valid_flow_name(&flow)).then_some(flow)
}

/// Longest event id accepted (ids become job ids through a hash, but are
/// kept in the payload and shown in logs).
const MAX_EVENT_ID: usize = 512;

/// One verified event, ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJob {
    /// The provider's event id.
    pub event_id: String,
    /// The job id, the same for every delivery of this event: the
    /// exactly-once key ([`event_job_id`]).
    pub job_id: String,
    pub job: FlowJob,
}

/// The job id of `provider`'s event `event_id`: a hash, so that any id the
/// provider uses makes a valid key, and the same for every redelivery.
pub fn event_job_id(provider: &str, event_id: &str) -> String {
    use sha2::Digest as _;
    let mut hash = Sha256::new();
    hash.update(provider.as_bytes());
    hash.update([0]);
    hash.update(event_id.as_bytes());
    let digest = hash.finalize();
    format!("evt-{provider}-{}", &crate::secret::to_hex(&digest)[..32])
}

/// Turns the plugin's events into flow jobs for `worker_id`. The payload a
/// flow gets as `parsed_event`: `{"id", "type", "created", "provider",
/// "object"}`, with `object` also bound as `parsed_data`.
pub fn event_jobs(
    provider: &str,
    worker_id: &str,
    events: Vec<wit::WebhookEvent>,
) -> Result<Vec<EventJob>, Refusal> {
    if events.is_empty() {
        return Err(Refusal::Malformed("the delivery holds no event".into()));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let which = || format!("event {} of the delivery", index + 1);
            if event.id.is_empty() || event.id.len() > MAX_EVENT_ID {
                return Err(Refusal::Malformed(format!(
                    "{} has an id of {} bytes (1 to {MAX_EVENT_ID} expected)",
                    which(),
                    event.id.len()
                )));
            }
            let flow = event_flow(&event.event_type).ok_or_else(|| {
                Refusal::Malformed(format!(
                    "{} has the type {:?}, which makes no flow name",
                    which(),
                    event.event_type
                ))
            })?;
            // The object is checked (JSON, nested no deeper than any flow
            // payload may be) without building a tree of it, and spliced
            // into the payload as it is: the flow thread parses it once.
            serde_json::from_str::<serde::de::IgnoredAny>(&event.object).map_err(|e| {
                Refusal::Malformed(format!("{}: its object is not JSON ({e})", which()))
            })?;
            if !crate::flow::nesting_within(&event.object, crate::flow::MAX_PAYLOAD_DEPTH - 1) {
                return Err(Refusal::Malformed(format!(
                    "{}: its object nests deeper than {} levels",
                    which(),
                    crate::flow::MAX_PAYLOAD_DEPTH - 1
                )));
            }
            let text = |s: &str| serde_json::Value::from(s).to_string();
            let payload = format!(
                r#"{{"id":{},"type":{},"created":{},"provider":{},"object":{}}}"#,
                text(&event.id),
                text(&event.event_type),
                event
                    .created
                    .map_or_else(|| "null".to_string(), |t| t.to_string()),
                text(provider),
                event.object.trim(),
            );
            Ok(EventJob {
                job_id: event_job_id(provider, &event.id),
                job: FlowJob {
                    flow,
                    outcome: Outcome::Event,
                    worker_id: worker_id.to_string(),
                    context_id: event.id.clone(),
                    caller_id: provider.to_string(),
                    payload,
                },
                event_id: event.id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SigningKey {
        SigningKey::decode(&Secret::new(text), wit::KeyEncoding::Utf8, "TEST").unwrap()
    }

    fn check(message: &str, signatures: &[&str], timestamp: Option<i64>) -> wit::WebhookCheck {
        wit::WebhookCheck {
            algorithm: wit::MacAlgorithm::HmacSha256,
            encoding: wit::SignatureEncoding::Hex,
            parts: vec![wit::SignedPart {
                message: message.as_bytes().to_vec(),
                signatures: signatures.iter().map(|s| s.to_string()).collect(),
            }],
            timestamp,
        }
    }

    // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), the
    // RFC 4231-style example everyone quotes.
    const FOX: &str = "The quick brown fox jumps over the lazy dog";
    const FOX_MAC: &str = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";

    #[test]
    fn a_matching_signature_among_others_verifies() {
        let k = key("key");
        assert_eq!(verify(&check(FOX, &[FOX_MAC], None), &k, 300, 0), Ok(()));
        assert_eq!(
            verify(&check(FOX, &["00", "zz", FOX_MAC], None), &k, 300, 0),
            Ok(())
        );
        assert!(matches!(
            verify(&check(FOX, &["00"], None), &k, 300, 0),
            Err(Refusal::BadSignature { part: 0, parts: 1 })
        ));
        assert!(matches!(
            verify(&check(FOX, &[], None), &k, 300, 0),
            Err(Refusal::BadSignature { .. })
        ));
    }

    #[test]
    fn hex_is_compared_as_the_providers_libraries_compare_it() {
        // stripe-python compares lower-case hex text: upper case never matches.
        let upper = FOX_MAC.to_uppercase();
        assert!(verify(&check(FOX, &[&upper], None), &key("key"), 300, 0).is_err());
    }

    #[test]
    fn every_part_must_verify() {
        let mut c = check(FOX, &[FOX_MAC], None);
        c.parts.push(wit::SignedPart {
            message: b"tampered".to_vec(),
            signatures: vec![FOX_MAC.into()],
        });
        assert_eq!(
            verify(&c, &key("key"), 300, 0),
            Err(Refusal::BadSignature { part: 1, parts: 2 })
        );
    }

    #[test]
    fn stale_timestamps_are_refused_after_the_signature_is_checked() {
        let k = key("key");
        let now = 1_000_000;
        assert_eq!(
            verify(&check(FOX, &[FOX_MAC], Some(now - 300)), &k, 300, now),
            Ok(())
        );
        assert_eq!(
            verify(&check(FOX, &[FOX_MAC], Some(now - 301)), &k, 300, now),
            Err(Refusal::Stale {
                timestamp: now - 301,
                age: 301
            })
        );
        // Future timestamps pass, as in the Stripe SDKs; 0 disables.
        assert_eq!(
            verify(&check(FOX, &[FOX_MAC], Some(now + 9999)), &k, 300, now),
            Ok(())
        );
        assert_eq!(verify(&check(FOX, &[FOX_MAC], Some(0)), &k, 0, now), Ok(()));
        assert!(matches!(
            verify(&check(FOX, &["bad"], Some(0)), &k, 300, now),
            Err(Refusal::BadSignature { .. })
        ));
    }

    #[test]
    fn keys_decode_as_declared_and_errors_do_not_show_them() {
        let hex = SigningKey::decode(&Secret::new("6b6579"), wit::KeyEncoding::Hex, "V").unwrap();
        assert_eq!(verify(&check(FOX, &[FOX_MAC], None), &hex, 0, 0), Ok(()));
        let b64 = SigningKey::decode(&Secret::new("a2V5"), wit::KeyEncoding::Base64, "V").unwrap();
        assert_eq!(verify(&check(FOX, &[FOX_MAC], None), &b64, 0, 0), Ok(()));
        let err = SigningKey::decode(
            &Secret::new("xyz_secret"),
            wit::KeyEncoding::Hex,
            "ADYEN_HMAC_KEY",
        )
        .unwrap_err();
        assert!(
            err.contains("ADYEN_HMAC_KEY") && !err.contains("xyz_secret"),
            "{err}"
        );
        assert!(SigningKey::decode(&Secret::new("  "), wit::KeyEncoding::Utf8, "V").is_err());
        assert!(!format!("{:?}", key("whsec_x")).contains("whsec_x"));
    }

    #[test]
    fn base64_signatures() {
        let mut c = check(FOX, &["97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="], None);
        c.encoding = wit::SignatureEncoding::Base64;
        assert_eq!(verify(&c, &key("key"), 0, 0), Ok(()));
    }

    #[test]
    fn event_types_make_flow_names() {
        assert_eq!(
            event_flow("payment_intent.succeeded").as_deref(),
            Some("on_payment_intent_succeeded")
        );
        assert_eq!(
            event_flow("AUTHORISATION").as_deref(),
            Some("on_authorisation")
        );
        assert_eq!(event_flow("a-b c/../d").as_deref(), Some("on_a_b_c____d"));
        assert_eq!(event_flow(""), None);
        assert_eq!(event_flow(&"x".repeat(200)), None);
    }

    #[test]
    fn event_job_ids_are_stable_and_valid_keys() {
        let a = event_job_id("stripe", "evt_1");
        assert_eq!(a, event_job_id("stripe", "evt_1"));
        assert_ne!(a, event_job_id("adyen", "evt_1"));
        assert_ne!(a, event_job_id("stripe", "evt_2"));
        assert!(crate::queue::jobs::is_valid_job_id(&a), "{a}");
    }

    #[test]
    fn events_become_jobs_with_the_event_and_its_object() {
        let jobs = event_jobs(
            "stripe",
            "worker-1",
            vec![wit::WebhookEvent {
                id: "evt_1".into(),
                event_type: "customer.created".into(),
                created: Some(5),
                object: r#"{"id":"cus_1"}"#.into(),
            }],
        )
        .unwrap();
        assert_eq!(jobs[0].job.flow, "on_customer_created");
        assert_eq!(jobs[0].job.outcome, Outcome::Event);
        let payload: serde_json::Value = serde_json::from_str(&jobs[0].job.payload).unwrap();
        assert_eq!(payload["object"]["id"], "cus_1");
        assert_eq!(payload["type"], "customer.created");
        assert_eq!(payload["created"], 5);
        assert_eq!(payload["provider"], "stripe");
        assert!(event_jobs("stripe", "w", vec![]).is_err());
        let bad = |object: &str| wit::WebhookEvent {
            id: "evt_2".into(),
            event_type: "x".into(),
            created: None,
            object: object.into(),
        };
        assert!(event_jobs("stripe", "w", vec![bad("{\"a\":")]).is_err());
        assert!(event_jobs("stripe", "w", vec![bad("1} {")]).is_err());
        let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
        assert!(matches!(
            event_jobs("stripe", "w", vec![bad(&deep)]),
            Err(Refusal::Malformed(why)) if why.contains("nests deeper")
        ));
        let job = &event_jobs("stripe", "w", vec![bad(" [1,\"\\\"\"] ")]).unwrap()[0];
        let payload: serde_json::Value = serde_json::from_str(&job.job.payload).unwrap();
        assert_eq!(payload["object"][1], "\"");
        assert_eq!(payload["created"], serde_json::Value::Null);
    }
}
