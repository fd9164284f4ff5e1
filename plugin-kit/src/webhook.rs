//! Webhooks, the plugin's half: how a provider signs what it sends
//! ([`WebhookScheme`], part of [`crate::schema::Provider`]), one delivery as
//! the host received it ([`WebhookRequest`]), what the host must verify in
//! it ([`WebhookCheck`]) and the events it carries ([`WebhookEvent`]),
//! mirroring the WIT `webhook-*` records one to one; plus the helpers every
//! provider's `check-webhook` and `parse-webhook` need: a case-insensitive
//! header lookup, the body as text or JSON, and a small JSON walk.
//!
//! The split is the contract's: the plugin never sees the signing key. It
//! says which bytes were signed, which signatures the delivery carries and
//! when it was signed; the host computes the MAC with the key it holds,
//! compares in constant time and enforces its tolerance. Only then does it
//! ask the plugin for the events. So `check-webhook` runs on unverified
//! input and must accept any bytes, and nothing here ever echoes a
//! signature into an error (the host logs those errors).
//!
//! Part of the plugin kit: plain Rust, natively tested, provider-neutral.

use serde_json::Value;

/// How the signing key is written in its setting (WIT `key-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// The setting's UTF-8 bytes are the key (Stripe's `whsec_...`).
    Utf8,
    /// Hexadecimal digits (Adyen's HMAC key).
    Hex,
    /// Standard base64, padded.
    Base64,
}

/// The MAC the provider signs with (WIT `mac-algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    HmacSha256,
    HmacSha512,
}

/// How signatures are written in a delivery (WIT `signature-encoding`).
/// The host compares the encoded text, as the providers' libraries do:
/// `Hex` is lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// How a provider signs its webhooks (WIT `webhook-scheme`).
#[derive(Debug)]
pub struct WebhookScheme {
    /// The secret setting that holds the key; the host never passes it on.
    pub secret: &'static str,
    pub key_encoding: KeyEncoding,
    /// What the host answers an accepted delivery with; empty for nothing.
    pub accept_body: &'static str,
    pub doc: &'static str,
}

/// One delivery as the host received it (WIT `webhook-request`): header
/// names in lower case, the body as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One signed message and the signatures the delivery carries for it
/// (WIT `signed-part`); verified when any one of them matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPart {
    pub message: Vec<u8>,
    pub signatures: Vec<String>,
}

/// What the host must verify before it believes a delivery (WIT
/// `webhook-check`): every part, and the timestamp if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCheck {
    pub algorithm: MacAlgorithm,
    pub encoding: SignatureEncoding,
    pub parts: Vec<SignedPart>,
    pub timestamp: Option<i64>,
}

/// One event of a verified delivery (WIT `webhook-event`). The host runs
/// flow `on_<event_type>` (lower-cased, other characters than letters and
/// digits becoming `_`) once per `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub event_type: String,
    pub created: Option<i64>,
    /// JSON text of the object the event is about (`parsed_data`).
    pub object: String,
}

impl WebhookRequest {
    /// The value of the first header named `name`, compared ASCII
    /// case-insensitively (the host sends names in lower case; this does
    /// not rely on it, so native tests and other hosts read the same).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text; the error says where the first invalid byte
    /// is (never the body itself).
    pub fn body_text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|e| {
            format!(
                "the body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )
        })
    }

    /// The body parsed as JSON; the error says what is wrong and where
    /// (line and column), never quoting the body.
    pub fn body_json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "the body is not JSON ({} at line {} column {})",
                category(&e),
                e.line(),
                e.column()
            )
        })
    }
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// The value at `path` (object keys, outermost first) under `value`, or
/// `None` where a key is missing or a step is not an object.
pub fn json_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(*key))
}

/// The string at `path` under `value`, if there is one and it is a string.
pub fn json_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    json_at(value, path)?.as_str()
}

/// The error of `check-webhook` and `parse-webhook` for a provider that
/// declares no webhooks (the host never calls them then; a host that does
/// gets a sentence, not a trap).
pub fn no_webhooks(provider: &str) -> String {
    format!("provider `{provider}` declares no webhooks")
}

/// The flow the host runs for an event of type `event_type`: `on_` plus the
/// type lower-cased, every character other than an ASCII letter or digit
/// becoming `_` (`payment_intent.succeeded` -> `on_payment_intent_succeeded`,
/// `AUTHORISATION` -> `on_authorisation`), as WIT `webhook-event` states
/// the rule; for plugins' docs and tests.
pub fn flow_name(event_type: &str) -> String {
    let mut name = String::from("on_");
    name.extend(event_type.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &[u8]) -> WebhookRequest {
        WebhookRequest {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn header_lookup_ignores_case_and_takes_the_first() {
        let r = request(
            &[
                ("content-type", "a"),
                ("Stripe-Signature", "x"),
                ("stripe-signature", "y"),
            ],
            b"",
        );
        assert_eq!(r.header("stripe-signature"), Some("x"));
        assert_eq!(r.header("STRIPE-SIGNATURE"), Some("x"));
        assert_eq!(r.header("Content-Type"), Some("a"));
        assert_eq!(r.header("stripe-signatur"), None);
    }

    #[test]
    fn body_text_and_json_errors_say_where_not_what() {
        let r = request(&[], b"ab\xffcd");
        let e = r.body_text().unwrap_err();
        assert!(e.contains("offset 2"), "{e}");
        let e = request(&[], b"{\"secretish\": ").body_json().unwrap_err();
        assert!(
            e.contains("unexpected end") && !e.contains("secretish"),
            "{e}"
        );
        let v = request(&[], br#"{"a": {"b": "c"}}"#).body_json().unwrap();
        assert_eq!(json_str(&v, &["a", "b"]), Some("c"));
    }

    #[test]
    fn json_walk_stops_at_missing_keys_and_non_objects() {
        let v: Value = serde_json::from_str(r#"{"a": {"b": [1], "c": 2}}"#).unwrap();
        assert_eq!(json_at(&v, &[]), Some(&v));
        assert_eq!(json_at(&v, &["a", "c"]), Some(&Value::from(2)));
        assert_eq!(json_at(&v, &["a", "b", "x"]), None);
        assert_eq!(json_at(&v, &["a", "c", "x"]), None);
        assert_eq!(json_str(&v, &["a", "c"]), None);
        assert_eq!(json_at(&v, &["z"]), None);
    }

    fn provider(webhooks: Option<WebhookScheme>) -> crate::schema::Provider {
        use crate::schema::{Auth, Provider, RetryPolicy, Setting};
        const SETTINGS: &[Setting] = &[
            Setting {
                name: "signing_key",
                doc: "d",
                required: false,
                default: None,
                secret: true,
            },
            Setting {
                name: "region",
                doc: "d",
                required: false,
                default: None,
                secret: false,
            },
        ];
        Provider {
            name: "p",
            version: "1",
            doc: "d",
            default_base_url: "http://127.0.0.1:9",
            settings: SETTINGS,
            auth: Auth::None,
            retry: RetryPolicy {
                statuses: &[],
                failures: &[],
                should_retry_header: None,
                honour_retry_after: false,
                idempotency_header: None,
            },
            objects: &[],
            webhooks,
            responses: crate::schema::ResponseRule::Plugin,
        }
    }

    #[test]
    fn the_scheme_must_name_a_secret_setting() {
        let scheme = |secret| WebhookScheme {
            secret,
            key_encoding: KeyEncoding::Hex,
            accept_body: "[accepted]",
            doc: "d",
        };
        assert_eq!(provider(None).check(), Vec::<String>::new());
        assert_eq!(
            provider(Some(scheme("signing_key"))).check(),
            Vec::<String>::new()
        );
        let problems = provider(Some(scheme("region"))).check();
        assert!(problems[0].contains("`region` is not one"), "{problems:?}");
        let problems = provider(Some(scheme("nope"))).check();
        assert!(
            problems[0].contains("`nope`, which is not a setting"),
            "{problems:?}"
        );
    }

    #[test]
    fn flow_names_follow_the_contract() {
        assert_eq!(
            flow_name("payment_intent.succeeded"),
            "on_payment_intent_succeeded"
        );
        assert_eq!(flow_name("AUTHORISATION"), "on_authorisation");
        assert_eq!(flow_name("a-b c.é"), "on_a_b_c__");
    }
}
