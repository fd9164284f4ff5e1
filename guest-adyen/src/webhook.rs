//! Adyen's standard notifications (webhooks): what `check-webhook` tells the
//! host to verify in a delivery, and the events `parse-webhook` reads from a
//! verified one.
//!
//! A delivery is `{"live": "...", "notificationItems": [{"NotificationRequestItem":
//! {...}}, ...]}`. Adyen signs each item on its own: HMAC-SHA256 under the
//! hex-decoded HMAC key (setting `hmac_key`, which only the host reads) of
//! the item's *signing string*, base64, carried in the item's
//! `additionalData.hmacSignature`. So the check has one signed part per item
//! and no timestamp (Adyen signs none). The signing string is built exactly
//! as Adyen's official Python library (`Adyen` 16.0.0,
//! `Adyen/util.py: generate_notification_sig`) builds it, and that library
//! is the oracle in the tests (tests/servers/webhook_oracle.py):
//!
//! `pspReference:originalReference:merchantAccountCode:merchantReference:amount.value:amount.currency:eventCode:success`
//!
//! - each field is Python's `str()` of the value `json.loads` gives
//!   ([`python_str`]): a string as is, an integer in decimal, a float as
//!   Python's `repr`, `true`/`false` as `True`/`False`, `null` as `None`;
//!   a missing field is the empty string; nothing is escaped (a `:` inside a
//!   value stays a `:`);
//! - `amount` must be an object with `value` and `currency` (the library
//!   indexes them and raises otherwise);
//! - an object or array where a field belongs is refused here (the library
//!   would sign its Python `repr`; Adyen never sends one);
//! - the signature must be a non-empty string (the library raises on an
//!   empty one and cannot compare another type).
//!
//! The library itself only verifies the first item of a batch; payhost
//! verifies every item (the host requires every part to match).
//!
//! Events: one per item, in order. Adyen gives a notification no id and
//! re-sends the same item (same `pspReference`, `eventCode` and `success`)
//! until it is acknowledged, so the event id is
//! `{pspReference}:{eventCode}:{success}`: a retried delivery maps to the
//! same id and the host runs its flow once, while the success and the
//! failure of the same operation stay two events. The event type is the
//! `eventCode` (`AUTHORISATION` runs `on_authorisation`), `created` is the
//! `eventDate` in Unix seconds when it parses as ISO 8601 with an offset,
//! and the object (`parsed_data`) is the item's JSON text as received.

use std::collections::BTreeMap;

use payhost_plugin_kit::webhook::{
    MacAlgorithm, SignatureEncoding, SignedPart, WebhookCheck, WebhookEvent, WebhookRequest,
};
use serde_json::value::RawValue;

/// One JSON object's members, as raw JSON text (the last of duplicate keys
/// wins, as in Python's `json.loads`).
type Members = BTreeMap<String, Box<RawValue>>;

/// The item fields, in the order the library joins them. `value` and
/// `currency` are `amount`'s.
const SIGNED_FIELDS: [&str; 8] = [
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
];

/// `check-webhook`: one signed part per notification item.
pub fn check_webhook(request: &WebhookRequest) -> Result<WebhookCheck, String> {
    let items = items(&request.body)?;
    let mut parts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let signature = signature(item).map_err(|e| format!("notification item {index}: {e}"))?;
        let message =
            signing_string(item).map_err(|e| format!("notification item {index}: {e}"))?;
        parts.push(SignedPart {
            message: message.into_bytes(),
            signatures: vec![signature],
        });
    }
    Ok(WebhookCheck {
        algorithm: MacAlgorithm::HmacSha256,
        encoding: SignatureEncoding::Base64,
        parts,
        timestamp: None,
    })
}

/// `parse-webhook`: one event per notification item, in order.
pub fn parse_webhook(request: &WebhookRequest) -> Result<Vec<WebhookEvent>, String> {
    let items = items(&request.body)?;
    let mut events = Vec::with_capacity(items.len());
    for (index, raw) in items.iter().enumerate() {
        let event = event(raw).map_err(|e| format!("notification item {index}: {e}"))?;
        events.push(event);
    }
    Ok(events)
}

fn event(raw: &RawValue) -> Result<WebhookEvent, String> {
    let item = members(raw).ok_or("its NotificationRequestItem is not an object")?;
    let text = |key: &str| -> Result<String, String> {
        let value = item.get(key).ok_or_else(|| format!("no `{key}`"))?;
        serde_json::from_str::<String>(value.get()).map_err(|_| format!("`{key}` is not a string"))
    };
    let psp_reference = text("pspReference")?;
    let event_code = text("eventCode")?;
    let success = match item.get("success") {
        Some(value) => python_str(value)?,
        None => return Err("no `success`".to_string()),
    };
    let created = item
        .get("eventDate")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        .and_then(|date| unix_seconds(&date));
    Ok(WebhookEvent {
        id: format!("{psp_reference}:{event_code}:{success}"),
        event_type: event_code,
        created,
        object: raw.get().to_string(),
    })
}

/// The `NotificationRequestItem` of every item, raw, or why there are none.
fn items(body: &[u8]) -> Result<Vec<Box<RawValue>>, String> {
    let top: Members = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not a JSON object (line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    let list = top
        .get("notificationItems")
        .ok_or("the body has no `notificationItems`")?;
    let list: Vec<Box<RawValue>> = serde_json::from_str(list.get())
        .map_err(|_| "`notificationItems` is not a list".to_string())?;
    if list.is_empty() {
        return Err("`notificationItems` is empty".to_string());
    }
    list.into_iter()
        .enumerate()
        .map(|(index, wrapper)| {
            members(&wrapper)
                .and_then(|mut w| w.remove("NotificationRequestItem"))
                .ok_or_else(|| {
                    format!("notification item {index} has no `NotificationRequestItem`")
                })
        })
        .collect()
}

fn members(raw: &RawValue) -> Option<Members> {
    serde_json::from_str(raw.get()).ok()
}

/// The item's `additionalData.hmacSignature`; never quoted in an error.
fn signature(item: &RawValue) -> Result<String, String> {
    let item = members(item).ok_or("its NotificationRequestItem is not an object")?;
    let additional = item
        .get("additionalData")
        .ok_or("no `additionalData.hmacSignature`")?;
    let additional = members(additional).ok_or("`additionalData` is not an object")?;
    let signature = additional
        .get("hmacSignature")
        .ok_or("no `additionalData.hmacSignature`")?;
    match serde_json::from_str::<String>(signature.get()) {
        Ok(s) if s.is_empty() => Err("`additionalData.hmacSignature` is empty".to_string()),
        Ok(s) => Ok(s),
        Err(_) => Err("`additionalData.hmacSignature` is not a string".to_string()),
    }
}

/// The string Adyen signs for one item, as `generate_notification_sig`
/// builds it (see the module doc).
pub fn signing_string(item: &RawValue) -> Result<String, String> {
    let item = members(item).ok_or("its NotificationRequestItem is not an object")?;
    let amount = item.get("amount").ok_or("no `amount`")?;
    let amount = members(amount).ok_or("`amount` is not an object")?;
    let mut fields = Vec::with_capacity(SIGNED_FIELDS.len());
    for name in SIGNED_FIELDS {
        let value = match name {
            "value" | "currency" => Some(
                amount
                    .get(name)
                    .ok_or_else(|| format!("no `amount.{name}`"))?,
            ),
            _ => item.get(name),
        };
        fields.push(match value {
            None => String::new(),
            Some(v) => python_str(v).map_err(|e| format!("`{name}`: {e}"))?,
        });
    }
    Ok(fields.join(":"))
}

/// CPython's limit on the digits of an integer it converts to or from text
/// (3.11's `sys.int_info.default_max_str_digits`): `json.loads` refuses a
/// longer integer.
const MAX_STR_DIGITS: usize = 4300;

/// Python's `str()` of the value `json.loads` reads from `raw`, for the
/// scalars (see the module doc); an error for an object or array.
pub fn python_str(raw: &RawValue) -> Result<String, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_err(|_| "not a valid string".into()),
        Some(b't') => Ok("True".to_string()),
        Some(b'f') => Ok("False".to_string()),
        Some(b'n') => Ok("None".to_string()),
        Some(b'{' | b'[') => Err("an object or array, which Adyen never sends here".to_string()),
        _ if text.contains(['.', 'e', 'E']) => {
            let x: f64 = text.parse().map_err(|_| "not a number".to_string())?;
            Ok(python_float_repr(x))
        }
        _ => {
            // An integer literal: JSON allows no leading zeros, so it is
            // its own decimal form, except that `-0` is `0`.
            let digits = text.trim_start_matches('-');
            if digits.len() > MAX_STR_DIGITS {
                return Err("an integer of more than 4300 digits".to_string());
            }
            Ok(if digits.bytes().all(|b| b == b'0') {
                "0".to_string()
            } else {
                text.to_string()
            })
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back as `x`, in
/// fixed notation when the decimal exponent is in `-4 < e <= 16` (with `.0`
/// for a whole number), otherwise as `d.ddde+XX`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // How many digits: the fewest that read back as `x`, which Rust's `{:e}`
    // finds too. Which digits: when two such strings are equally short,
    // Python takes the one nearest `x`, a tie going to the even digit
    // (`2088861422653207.25` is `...207.2`), where Rust's shortest mode may
    // take the other; so the digits are `x` rounded to that many places,
    // which Rust's precision mode does exactly, ties to even.
    let shortest = format!("{:e}", x.abs());
    let places = shortest.split_once('e').map_or(0, |(m, _)| {
        m.chars().filter(char::is_ascii_digit).count() - 1
    });
    let sci = format!("{:.*e}", places, x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}`'s exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // Where the decimal point goes, counted from the first digit.
    let point = exp + 1;
    let n = digits.len() as i32;
    let body = if -4 < point && point <= 16 {
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = point - 1;
        let esign = if e < 0 { '-' } else { '+' };
        format!("{first}{rest}e{esign}{:02}", e.abs())
    };
    format!("{sign}{body}")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Unix seconds (the fraction
/// dropped), or `None` for anything else.
pub fn unix_seconds(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &date[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = num_pair(*h1, *h2)?;
            let mm = num_pair(*m1, *m2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let minutes = hh * 60 + mm;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60)
}

fn num_pair(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from((a - b'0') * 10 + (b - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
