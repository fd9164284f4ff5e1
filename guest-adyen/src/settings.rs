//! What the operator configures, how requests authenticate, and which
//! outcomes are worth another attempt: the provider-level half of `info`,
//! and `configure`.
//!
//! Settings: `api_key` (secret: the host puts it in `X-API-Key` and the
//! plugin never sees it), `merchant_account` (the account every request
//! that takes one is made for; the plugin fills it into `merchantAccount`)
//! and `hmac_key` (secret, not required: the webhook's HMAC key, hex, which
//! only `payhost serve` needs; the host verifies signatures with it, see
//! `crate::webhook`).
//!
//! Retry policy. Adyen's official libraries do not retry: the Python
//! library's `HTTPClient` (and the Java, Node and .NET ones) send each call
//! once and leave retrying to the integrator. Adyen's API-idempotency guide
//! says what an integrator should do: send an `Idempotency-Key` on POST and
//! resend with the same key after a failure that may not have reached or
//! finished at Adyen (a timeout, a dropped connection), which Adyen then
//! processes at most once. So this plugin retries, with the host's bounded
//! attempts and backoff:
//! - transport failures `connect`, `timeout` and `io` (never
//!   `body-too-large`: the same response would come back);
//! - HTTP 5xx (Adyen's own errors: `errorType` `internal`, possibly
//!   transient, safe to resend with the same key);
//! - HTTP 429 (rate limited), waiting at least its `Retry-After`.
//!
//! Never a 4xx otherwise: validation (422), authentication (401, 403) and
//! not-found answers are the same on every attempt. Adyen has no
//! should-retry header.

use payhost_plugin_kit::schema::{Auth, RetryPolicy, Setting};
use payhost_plugin_kit::webhook::{KeyEncoding, WebhookScheme};

pub const API_KEY: &str = "api_key";
pub const MERCHANT_ACCOUNT: &str = "merchant_account";
pub const HMAC_KEY: &str = "hmac_key";

/// Every setting, in the order `info` lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: API_KEY,
        doc: "Adyen API key (Customer Area > Developers > API credentials), sent as X-API-Key",
        required: true,
        default: None,
        secret: true,
    },
    Setting {
        name: MERCHANT_ACCOUNT,
        doc: "Adyen merchant account name; filled into `merchantAccount` of every request that takes one unless the script sets it",
        required: true,
        default: None,
        secret: false,
    },
    Setting {
        name: HMAC_KEY,
        doc: "HMAC key of the webhook (Customer Area > Developers > Webhooks), hex; `payhost serve` needs it to verify notifications",
        required: false,
        default: None,
        secret: true,
    },
];

/// How Adyen signs its standard notifications: HMAC-SHA256 under the
/// hex-decoded `hmac_key`, per notification item (`crate::webhook`), and
/// the `[accepted]` body Adyen expects back.
pub const WEBHOOKS: WebhookScheme = WebhookScheme {
    secret: HMAC_KEY,
    key_encoding: KeyEncoding::Hex,
    accept_body: "[accepted]",
    doc: "Standard notifications (JSON): each NotificationRequestItem carries additionalData.hmacSignature, base64 HMAC-SHA256 of its colon-joined fields under the hex HMAC key",
};

/// `(field, setting)`: fields the plugin fills from a setting in every
/// operation that takes them, unless the script sets them.
pub const FILLS: &[(&str, &str)] = &[("merchantAccount", MERCHANT_ACCOUNT)];

/// The header the auth scheme puts the `api_key` secret in.
pub const AUTH_HEADER: &str = "X-API-Key";
/// The header that carries the host's idempotency key on POST.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Retried statuses, inclusive ranges (see the module doc).
pub const RETRY_STATUSES: &[(u16, u16)] = &[(429, 429), (500, 599)];
/// Whether the host honours `Retry-After` before the next attempt.
pub const HONOUR_RETRY_AFTER: bool = true;

// WIT `failure-kind`, as the kit names it.
pub use payhost_plugin_kit::schema::FailureKind;

/// Retried transport failures (see the module doc).
pub const RETRY_FAILURES: &[FailureKind] =
    &[FailureKind::Connect, FailureKind::Timeout, FailureKind::Io];

/// How requests authenticate: the `api_key` secret in [`AUTH_HEADER`].
pub const AUTH: Auth = Auth::Header {
    name: AUTH_HEADER,
    secret: API_KEY,
};

/// The retry policy `info` declares (see the module doc).
pub const RETRY: RetryPolicy = RetryPolicy {
    statuses: RETRY_STATUSES,
    failures: RETRY_FAILURES,
    should_retry_header: None,
    honour_retry_after: HONOUR_RETRY_AFTER,
    idempotency_header: Some(IDEMPOTENCY_HEADER),
};

/// Whether the policy retries a response with `status`.
pub fn retryable_status(status: u16) -> bool {
    RETRY.retries_status(status)
}

/// Whether the policy retries a transport failure of `kind`.
pub fn retryable_failure(kind: FailureKind) -> bool {
    RETRY.retries_failure(kind)
}

/// The operator's non-secret settings, as `configure` received them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    merchant_account: Option<String>,
}

/// Longest merchant account name accepted, in bytes.
const MAX_VALUE_LEN: usize = 255;

impl Settings {
    /// Checks and keeps `settings` (WIT `configure`). An error names the
    /// setting and what is wrong with its value.
    pub fn configure(settings: &[(String, String)]) -> Result<Settings, String> {
        let mut out = Settings::default();
        for (name, value) in settings {
            match name.as_str() {
                MERCHANT_ACCOUNT => {
                    let problem = if value.trim().is_empty() {
                        Some("is empty")
                    } else if value.len() > MAX_VALUE_LEN {
                        Some("is longer than 255 bytes")
                    } else if value.chars().any(char::is_control) {
                        Some("contains a control character")
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        return Err(format!(
                            "setting `{MERCHANT_ACCOUNT}` {problem}: give your Adyen merchant account name (ADYEN_MERCHANT_ACCOUNT)"
                        ));
                    }
                    out.merchant_account = Some(value.clone());
                }
                API_KEY | HMAC_KEY => {
                    return Err(format!(
                        "setting `{name}` is a secret and must not reach the plugin"
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown setting `{other}` (adyen takes: {API_KEY}, {MERCHANT_ACCOUNT}, {HMAC_KEY})"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The value of setting `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            MERCHANT_ACCOUNT => self.merchant_account.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keeps_the_merchant_account() {
        let s = Settings::configure(&pairs(&[("merchant_account", "TestMerchant")])).unwrap();
        assert_eq!(s.get("merchant_account"), Some("TestMerchant"));
        assert_eq!(
            Settings::configure(&[]).unwrap().get("merchant_account"),
            None
        );
    }

    #[test]
    fn refuses_bad_settings_naming_them() {
        for (list, needle) in [
            (
                vec![("merchant_account", " ")],
                "`merchant_account` is empty",
            ),
            (vec![("merchant_account", "a\nb")], "control character"),
            (vec![("api_key", "k")], "secret"),
            (vec![("hmac_key", "00ff")], "`hmac_key` is a secret"),
            (vec![("colour", "blue")], "unknown setting `colour`"),
        ] {
            let err = Settings::configure(&pairs(&list)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn retry_policy() {
        assert!(retryable_status(500) && retryable_status(503) && retryable_status(429));
        assert!(!retryable_status(422) && !retryable_status(401) && !retryable_status(409));
        assert!(retryable_failure(FailureKind::Timeout));
        assert!(!retryable_failure(FailureKind::BodyTooLarge));
    }
}
