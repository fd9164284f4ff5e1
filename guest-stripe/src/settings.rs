//! The operator's settings: what `info` declares, and the validated values
//! `configure` hands over.
//!
//! - `secret_key` (secret, required): the host keeps it and sends it as the
//!   basic-auth user name; it never reaches the plugin. Given to
//!   `configure` anyway, it is refused (by name, never echoing the value).
//! - `api_version` (optional, no default): when set, every request carries
//!   `Stripe-Version: <value>`. `YYYY-MM-DD`, optionally followed by
//!   `.name` (`2025-03-31.basil`). Without it, Stripe uses the account's
//!   default version, as before.
//! - `account` (optional): when set, every request carries
//!   `Stripe-Account: <value>` (Connect: act as that connected account).
//!   `acct_` followed by letters and digits.
//! - `webhook_secret` (secret, optional): the webhook endpoint's signing
//!   secret (`whsec_...`), the key of the webhook scheme. Only `payhost
//!   serve` needs it, so the host does not require it otherwise; like
//!   `secret_key` it never reaches the plugin (see `crate::webhook`).
//!
//! A name `info` does not declare is an error naming it; so is a setting
//! given twice. Values are checked here, once, so that `build-request` only
//! copies them into headers.

use std::fmt::Write as _;

/// One declared setting (WIT `setting-info`).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub doc: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub secret: bool,
}

pub const SECRET_KEY: &str = "secret_key";
pub const API_VERSION: &str = "api_version";
pub const ACCOUNT: &str = "account";
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// Every setting, in the order `info` lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: SECRET_KEY,
        doc: "Stripe secret key, sk_test_... or sk_live_...",
        required: true,
        default: None,
        secret: true,
    },
    Setting {
        name: API_VERSION,
        doc: "Stripe API version sent as Stripe-Version on every request, e.g. 2025-03-31.basil; the account's default when unset",
        required: false,
        default: None,
        secret: false,
    },
    Setting {
        name: ACCOUNT,
        doc: "Connected account id (acct_...) sent as Stripe-Account on every request, to act on its behalf (Connect)",
        required: false,
        default: None,
        secret: false,
    },
    Setting {
        name: WEBHOOK_SECRET,
        doc: "Signing secret of the webhook endpoint (whsec_...); `payhost serve` needs it",
        required: false,
        default: None,
        secret: true,
    },
];

/// The header that carries `api_version`.
pub const VERSION_HEADER: &str = "Stripe-Version";
/// The header that carries `account`.
pub const ACCOUNT_HEADER: &str = "Stripe-Account";

/// The validated non-secret settings of one plugin instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub api_version: Option<String>,
    pub account: Option<String>,
}

impl Config {
    /// Checks the `configure` list: known names, each once, valid values.
    pub fn from_settings(settings: &[(String, String)]) -> Result<Config, String> {
        let mut config = Config::default();
        for (name, value) in settings {
            let slot = match name.as_str() {
                API_VERSION => {
                    check_api_version(value)?;
                    &mut config.api_version
                }
                ACCOUNT => {
                    check_account(value)?;
                    &mut config.account
                }
                SECRET_KEY => {
                    return Err(format!(
                        "setting `{SECRET_KEY}` is a secret: it stays in the host (basic auth) \
                         and must not be passed to the plugin"
                    ));
                }
                WEBHOOK_SECRET => {
                    return Err(format!(
                        "setting `{WEBHOOK_SECRET}` is a secret: it stays in the host (webhook \
                         signatures) and must not be passed to the plugin"
                    ));
                }
                other => {
                    let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
                    return Err(format!(
                        "stripe has no setting `{}` (settings: {})",
                        shorten(other),
                        known.join(", ")
                    ));
                }
            };
            if slot.is_some() {
                return Err(format!("setting `{name}` is given more than once"));
            }
            *slot = Some(value.clone());
        }
        Ok(config)
    }

    /// The headers every request carries: `Stripe-Version`, then
    /// `Stripe-Account`, for the settings that have a value.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(v) = &self.api_version {
            headers.push((VERSION_HEADER.to_string(), v.clone()));
        }
        if let Some(a) = &self.account {
            headers.push((ACCOUNT_HEADER.to_string(), a.clone()));
        }
        headers
    }
}

/// `YYYY-MM-DD` (a plausible date), optionally `.name` (ASCII letters,
/// digits, `_`).
fn check_api_version(value: &str) -> Result<(), String> {
    let (date, name) = match value.split_once('.') {
        Some((date, name)) => (date, Some(name)),
        None => (value, None),
    };
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| date[r].parse::<u32>().unwrap_or(0);
    let date_ok = b.len() == 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10));
    let name_ok = name
        .is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    if date_ok && name_ok {
        Ok(())
    } else {
        Err(format!(
            "setting `{API_VERSION}` is {}, not a Stripe API version: expected YYYY-MM-DD, \
             optionally followed by .name (e.g. 2024-06-20 or 2025-03-31.basil)",
            quoted(value)
        ))
    }
}

/// `acct_` followed by one or more ASCII letters and digits.
fn check_account(value: &str) -> Result<(), String> {
    let ok = value
        .strip_prefix("acct_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "setting `{ACCOUNT}` is {}, not a Stripe account id: expected acct_ followed by \
             letters and digits (e.g. acct_1032D82eZvKYlo2C)",
            quoted(value)
        ))
    }
}

/// The value in quotes, cut to 64 characters (settings are not secret, but
/// a message should stay one readable line).
fn quoted(value: &str) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:?}", shorten(value));
    if value.chars().count() > 64 {
        out.push('…');
    }
    out
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
