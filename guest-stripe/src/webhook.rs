//! Stripe's webhooks: what `check-webhook` tells the host to verify in a
//! delivery and how `parse-webhook` reads the verified event, exactly as
//! stripe-python 16.1.0 does in `stripe.Webhook.construct_event(payload,
//! header, secret, tolerance)` (`stripe/_webhook.py`).
//!
//! Stripe signs `"{t}.{body}"` with HMAC-SHA256 under the endpoint's signing
//! secret (`whsec_...`, its UTF-8 bytes are the key) and sends
//! `Stripe-Signature: t=<unix seconds>,v1=<lower-case hex>[,v1=...]`. The
//! host holds the secret (setting `webhook_secret`), computes the MAC over
//! the message this module builds, accepts the delivery when any `v1`
//! signature equals the lower-case hex MAC (text comparison, as
//! stripe-python's `secure_compare` does, so an upper-case signature does not
//! match) and enforces its tolerance on the timestamp.
//!
//! The header is read the way stripe-python reads it, quirks included, so
//! that payhost accepts exactly the deliveries the SDK accepts:
//!
//! - items are `header.split(",")`, each item `split("=", 2)`: at most three
//!   pieces, the value is the second (`v1=a=b` carries `a`); keys compare
//!   exactly (` t=1` is not a `t`);
//! - every item whose key is `t` or `v1` must have a value (the SDK indexes
//!   `[1]` of each), the first `t` is the timestamp, read with Python's
//!   `int()` ([`python_int`]), and every `v1` value is a signature, up to
//!   the first that is not ASCII (the SDK's `hmac.compare_digest` raises
//!   there, so only a match before it counts);
//! - the signed timestamp text is Python's `%d` of that integer (`+0012`
//!   signs as `12`, `-0` as `0`), however long; [`WebhookCheck::timestamp`]
//!   is the same integer saturated to `i64`;
//! - the body must be UTF-8 (the SDK decodes it before signing).
//!
//! Errors say what is missing or malformed and never quote a signature (the
//! host logs them). `parse-webhook` then requires what `construct_event`
//! requires of a verified body: JSON (as `json.loads` reads it, see
//! [`parse_webhook`]) whose top level is an object that is not a thin event
//! (`"object": "v2.core.event"`), plus the `id` and `type` payhost needs.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// The header Stripe signs deliveries with (the host sends names lower-cased).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The secret setting that holds the endpoint's signing secret.
pub const SECRET_SETTING: &str = crate::settings::WEBHOOK_SECRET;

/// One line for people: the scheme, for `info`.
pub const DOC: &str = "Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\" under the endpoint's whsec_ secret>; events are Stripe Event objects";

/// What the host must verify in one Stripe delivery: HMAC-SHA256 (hex, lower
/// case) of `message`, matched by any of `signatures`, signed at `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCheck {
    pub message: Vec<u8>,
    pub signatures: Vec<String>,
    pub timestamp: i64,
}

/// One verified Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `evt_...`.
    pub id: String,
    /// `payment_intent.succeeded`, `customer.created`, ...
    pub event_type: String,
    /// The event's `created`, when it is an integer.
    pub created: Option<i64>,
    /// JSON text of `data.object`, byte for byte as the body carries it.
    pub object: String,
}

/// `check-webhook`: the message to verify, its signatures and timestamp,
/// from the delivery's headers (names compared case-insensitively; the
/// first `stripe-signature` counts) and body.
pub fn check_webhook(headers: &[(String, String)], body: &[u8]) -> Result<WebhookCheck, String> {
    let body = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let header = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, value)| value.as_str())
        .ok_or("no Stripe-Signature header")?;
    if header.is_empty() {
        return Err("the Stripe-Signature header is empty".to_string());
    }
    let signature = parse_signature_header(header)?;
    let mut message = signature.timestamp_text.into_bytes();
    message.push(b'.');
    message.extend_from_slice(body.as_bytes());
    Ok(WebhookCheck {
        message,
        signatures: signature.signatures,
        timestamp: signature.timestamp,
    })
}

/// A `Stripe-Signature` header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp as Python's `%d` writes it: what Stripe signed.
    pub timestamp_text: String,
    /// The same, saturated to `i64`.
    pub timestamp: i64,
    /// The `v1` values, in order, up to the first that is not ASCII.
    pub signatures: Vec<String>,
}

/// Reads a `Stripe-Signature` header as stripe-python's
/// `_get_timestamp_and_signatures` does (see the module doc), refusing what
/// makes it raise or `verify_header` give up (no signatures).
pub fn parse_signature_header(header: &str) -> Result<SignatureHeader, String> {
    let items: Vec<Vec<&str>> = header
        .split(',')
        .map(|item| item.splitn(3, '=').collect())
        .collect();
    // The SDK builds the list of every `t` value (indexing `[1]` of each)
    // before it reads the first, then the list of every `v1` value.
    let value = |key: &str| -> Result<Vec<&str>, String> {
        items
            .iter()
            .filter(|pieces| pieces[0] == key)
            .map(|pieces| {
                pieces.get(1).copied().ok_or_else(|| {
                    format!("a `{key}` item of the Stripe-Signature header has no `=`")
                })
            })
            .collect()
    };
    let timestamps = value("t")?;
    let first = timestamps
        .first()
        .ok_or("the Stripe-Signature header has no timestamp (`t=`)")?;
    let (timestamp_text, timestamp) = python_int(first).ok_or(
        "the Stripe-Signature header's timestamp (`t=`) is not an integer as Python's int() reads one",
    )?;
    let all = value("v1")?;
    if all.is_empty() {
        return Err("the Stripe-Signature header has no signature with scheme v1".to_string());
    }
    // stripe-python compares the signatures in order with
    // `hmac.compare_digest`, which raises on a non-ASCII string: a match
    // before the first non-ASCII signature accepts, reaching it refuses.
    // Passing only the signatures before it gives the host the same verdict.
    let signatures: Vec<String> = all
        .into_iter()
        .take_while(|s| s.is_ascii())
        .map(str::to_string)
        .collect();
    if signatures.is_empty() {
        return Err(
            "the first v1 signature of the Stripe-Signature header is not ASCII text".to_string(),
        );
    }
    Ok(SignatureHeader {
        timestamp_text,
        timestamp,
        signatures,
    })
}

/// CPython's default limit on the digits `int()` converts (3.11's
/// `sys.int_info.default_max_str_digits`); a longer number raises.
const MAX_STR_DIGITS: usize = 4300;

/// Python's `int(text)` for a `str` (base 10), as CPython 3.11 reads it:
/// surrounding whitespace ([`python_isspace`]) stripped, an optional
/// `+` or `-`, then decimal digits (any Unicode decimal digit, as
/// `unicodedata.decimal` gives them) with single `_` between digits, at most
/// 4300 digits. Returns the value as `%d` writes it (no leading zeros, no
/// `+`, `0` for minus zero) and saturated to `i64`; `None` where Python
/// raises `ValueError`.
pub fn python_int(text: &str) -> Option<(String, i64)> {
    let text = text.trim_matches(python_isspace);
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut digits = String::new();
    let mut after_digit = false;
    let mut count = 0usize;
    for c in rest.chars() {
        if c == '_' {
            if !after_digit {
                return None;
            }
            after_digit = false;
        } else {
            let d = decimal_value(c)?;
            count += 1;
            after_digit = true;
            if !(digits.is_empty() && d == 0) {
                digits.push(char::from(b'0' + d));
            }
        }
    }
    // Empty, or ending in `_`.
    if !after_digit || count > MAX_STR_DIGITS {
        return None;
    }
    if digits.is_empty() {
        return Some(("0".to_string(), 0));
    }
    let magnitude: Option<i64> = digits.parse::<u64>().ok().and_then(|m| {
        if negative {
            0i64.checked_sub_unsigned(m)
        } else {
            i64::try_from(m).ok()
        }
    });
    let saturated = magnitude.unwrap_or(if negative { i64::MIN } else { i64::MAX });
    let text = if negative {
        format!("-{digits}")
    } else {
        digits
    };
    Some((text, saturated))
}

/// The whitespace `int()` strips, as CPython 3.11 reads it: ASCII space,
/// `\t`, `\n`, `\v`, `\f`, `\r`, and every non-ASCII character
/// `str.isspace` accepts (U+0085, U+00A0, U+1680, U+2000 to U+200A, U+2028,
/// U+2029, U+202F, U+205F, U+3000). That is exactly Unicode `White_Space`,
/// Rust's `char::is_whitespace`; the ASCII separators U+001C to U+001F, which
/// `str.isspace` accepts, are not stripped by `int()` (checked against
/// CPython 3.11).
fn python_isspace(c: char) -> bool {
    c.is_whitespace()
}

/// The first code point of every run of ten Unicode decimal digits (general
/// category Nd), as CPython 3.11's `unicodedata` (Unicode 14.0.0) lists
/// them: each run is that digit zero and the nine after it, which is how
/// `int()` reads non-ASCII digits.
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a decimal digit, as `unicodedata.decimal` gives it.
fn decimal_value(c: char) -> Option<u8> {
    let c = u32::from(c);
    // The table is sorted: the run `c` may be in starts at the last zero
    // not above it.
    let i = DIGIT_ZEROS
        .partition_point(|&zero| zero <= c)
        .checked_sub(1)?;
    let offset = c - DIGIT_ZEROS[i];
    (offset < 10).then_some(offset as u8)
}

/// `parse-webhook`: the one event a verified Stripe delivery carries.
///
/// The body must be what `construct_event` goes on to accept: JSON whose
/// top level is an object and is not a thin event (`"object":
/// "v2.core.event"`, which stripe-python refuses with a pointer to its
/// `parse_event_notification` methods). payhost also needs `id` and `type`
/// (strings) and `data.object`, which becomes the flow's `parsed_data`
/// byte for byte. `created` is passed on when it is an integer. Duplicate
/// keys keep the last value, as Python's `json.loads` does.
///
/// Two differences from `json.loads` remain, both on JSON that Stripe never
/// sends: `NaN`/`Infinity` literals and unpaired surrogate escapes
/// (`"\ud800"`) are refused here where Python would read them.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, String> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not a JSON object ({} at line {} column {})",
            category(&e),
            e.line(),
            e.column()
        )
    })?;
    let string = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map(Some)
                .map_err(|_| format!("the event's `{key}` is not a string")),
        }
    };
    // Only a string can be the thin-event marker; any other `object` value
    // is the SDK's to ignore too.
    if let Some(raw) = fields.get("object")
        && serde_json::from_str::<String>(raw.get()).is_ok_and(|o| o == "v2.core.event")
    {
        return Err(
            "the body is a thin event notification (`v2.core.event`), not a snapshot event"
                .to_string(),
        );
    }
    let id = string("id")?.ok_or("the event has no `id`")?;
    let event_type = string("type")?.ok_or("the event has no `type`")?;
    let created = fields
        .get("created")
        .and_then(|raw| serde_json::from_str::<i64>(raw.get()).ok());
    let data: BTreeMap<String, Box<RawValue>> = fields
        .get("data")
        .ok_or("the event has no `data`")
        .and_then(|raw| {
            serde_json::from_str(raw.get()).map_err(|_| "the event's `data` is not an object")
        })?;
    let object = data
        .get("object")
        .ok_or("the event has no `data.object`")?
        .get()
        .to_string();
    Ok(WebhookEvent {
        id,
        event_type,
        created,
        object,
    })
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "not an object",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            (SIGNATURE_HEADER.into(), value.into()),
        ]
    }

    fn parsed(header: &str) -> Result<(String, i64, Vec<String>), String> {
        parse_signature_header(header).map(|h| (h.timestamp_text, h.timestamp, h.signatures))
    }

    fn sigs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_plain_header_signs_t_dot_body() {
        let check = check_webhook(&headers("t=1700000000,v1=abc,v0=old"), br#"{"id":1}"#).unwrap();
        assert_eq!(check.message, br#"1700000000.{"id":1}"#);
        assert_eq!(check.signatures, sigs(&["abc"]));
        assert_eq!(check.timestamp, 1_700_000_000);
    }

    #[test]
    fn header_names_compare_case_insensitively_and_the_first_counts() {
        let h = vec![
            ("Stripe-Signature".to_string(), "t=1,v1=a".to_string()),
            ("stripe-signature".to_string(), "t=2,v1=b".to_string()),
        ];
        assert_eq!(check_webhook(&h, b"").unwrap().timestamp, 1);
    }

    #[test]
    fn every_v1_is_a_signature_and_extra_equals_signs_are_dropped() {
        assert_eq!(
            parsed("v1=a=b,t=5,v1=c,v1=,x,v2=d").unwrap(),
            ("5".into(), 5, sigs(&["a", "c", ""]))
        );
        // Values are not trimmed; keys compare exactly.
        assert_eq!(parsed("t=5, v1=x,v1= y ,V1=z").unwrap().2, sigs(&[" y "]));
    }

    /// Every case of tests/data/stripe/signature-headers.json, which
    /// stripe-python read (tests/e2e/webhook_oracle.rs keeps it honest):
    /// the same verdict, timestamp text and signatures (up to the first
    /// non-ASCII one, where the SDK's comparison raises).
    #[test]
    fn headers_read_as_stripe_python_reads_them() {
        let cases: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/data/stripe/signature-headers.json"
        ))
        .unwrap();
        let cases = cases["cases"].as_array().unwrap();
        assert!(cases.len() > 500, "{}", cases.len());
        let mut accepted = 0;
        for case in cases {
            let header = case["header"].as_str().unwrap();
            let ours = if header.is_empty() {
                Err("empty".to_string())
            } else {
                parse_signature_header(header)
            };
            let expected: Option<(&str, Vec<String>)> = case["ok"]
                .as_bool()
                .unwrap()
                .then(|| {
                    let signatures: Vec<String> = case["signatures"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .take_while(|s| s.is_ascii())
                        .collect();
                    (case["timestamp"].as_str().unwrap(), signatures)
                })
                .filter(|(_, signatures)| !signatures.is_empty());
            match (ours, expected) {
                (Ok(h), Some((timestamp, signatures))) => {
                    assert_eq!(h.timestamp_text, timestamp, "{header:?}");
                    assert_eq!(h.signatures, signatures, "{header:?}");
                    accepted += 1;
                }
                (Err(_), None) => {}
                (ours, expected) => panic!("{header:?}: ours {ours:?}, stripe-python {expected:?}"),
            }
        }
        assert!(accepted > 200, "{accepted}");
    }

    #[test]
    fn signatures_stop_at_the_first_non_ascii_one() {
        assert_eq!(parsed("t=1,v1=a,v1=é,v1=b").unwrap().2, sigs(&["a"]));
        let e = parsed("t=1,v1=é,v1=b").unwrap_err();
        assert!(e.contains("not ASCII"), "{e}");
    }

    #[test]
    fn the_first_t_is_the_timestamp_but_every_t_needs_a_value() {
        assert_eq!(parsed("t=7,t=x,v1=a").unwrap().0, "7");
        assert!(parsed("t=7,t,v1=a").unwrap_err().contains("`t` item"));
        assert!(parsed("t=7,v1,v1=a").unwrap_err().contains("`v1` item"));
    }

    #[test]
    fn missing_parts_are_refused_without_echoing_signatures() {
        for (header, says) in [
            ("v1=deadbeef", "no timestamp"),
            (" t=1,v1=deadbeef", "no timestamp"),
            ("t=1", "no signature"),
            ("t=1,v0=deadbeef", "no signature"),
            ("t=abc,v1=deadbeef", "not an integer"),
            ("t=,v1=deadbeef", "not an integer"),
        ] {
            let e = parsed(header).unwrap_err();
            assert!(e.contains(says), "{header}: {e}");
            assert!(!e.contains("deadbeef"), "{header}: {e}");
        }
        assert!(
            check_webhook(&[], b"{}")
                .unwrap_err()
                .contains("no Stripe-Signature")
        );
        assert!(
            check_webhook(&headers(""), b"{}")
                .unwrap_err()
                .contains("empty")
        );
        let e = check_webhook(&headers("t=1,v1=a"), b"{\xff}").unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn timestamps_read_as_python_int_and_sign_as_percent_d() {
        for (text, normal, value) in [
            ("12", "12", 12),
            ("+0012", "12", 12),
            ("-0", "0", 0),
            ("000", "0", 0),
            ("0_0", "0", 0),
            ("1_700_000_000", "1700000000", 1_700_000_000),
            (" \t12\n", "12", 12),
            ("\u{85}12\u{3000}", "12", 12),
            ("-5", "-5", -5),
            ("\u{663}\u{661}", "31", 31), // Arabic-Indic digits
            ("\u{ff11}2", "12", 12),      // a fullwidth digit
            ("9223372036854775807", "9223372036854775807", i64::MAX),
            ("9223372036854775808", "9223372036854775808", i64::MAX),
            ("-9223372036854775808", "-9223372036854775808", i64::MIN),
            ("-99999999999999999999", "-99999999999999999999", i64::MIN),
        ] {
            assert_eq!(
                python_int(text),
                Some((normal.to_string(), value)),
                "{text:?}"
            );
        }
        for bad in [
            "",
            " ",
            "+",
            "-",
            "_1",
            "1_",
            "1__0",
            "- 1",
            "+-1",
            "1 2",
            "1.0",
            "1e3",
            "0x10",
            "\u{1c}1",   // str.isspace, but int() does not strip it
            "\u{200b}1", // zero-width space: not whitespace
            "\u{b2}",    // superscript two: numeric, not decimal
            "\u{2167}",  // roman numeral: numeric, not decimal
        ] {
            assert_eq!(python_int(bad), None, "{bad:?}");
        }
        // CPython 3.11 refuses more than 4300 digits, leading zeros included,
        // underscores not.
        assert!(python_int(&"1".repeat(4300)).is_some());
        assert!(python_int(&"1".repeat(4301)).is_none());
        assert!(python_int(&format!("{}1", "0".repeat(4300))).is_none());
        assert!(python_int(&format!("{}1", "1_".repeat(4299))).is_some());
        assert!(python_int(&format!("-{}", "1".repeat(4300))).is_some());
    }

    #[test]
    fn a_huge_timestamp_signs_in_full_and_saturates() {
        let check =
            check_webhook(&headers("t=+00123456789012345678901234567890,v1=a"), b"x").unwrap();
        assert_eq!(check.message, b"123456789012345678901234567890.x");
        assert_eq!(check.timestamp, i64::MAX);
    }

    #[test]
    fn the_digit_table_has_ten_digit_runs() {
        assert!(DIGIT_ZEROS.windows(2).all(|w| w[0] + 10 <= w[1]));
        assert_eq!(decimal_value('0'), Some(0));
        assert_eq!(decimal_value('9'), Some(9));
        assert_eq!(decimal_value(':'), None);
        assert_eq!(decimal_value('/'), None);
        assert_eq!(decimal_value('\u{1FBF9}'), Some(9));
        assert_eq!(decimal_value('\u{1FBFA}'), None);
    }

    #[test]
    fn an_event_becomes_one_event_with_its_object_verbatim() {
        let body = br#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
            "created": 1700000000, "data": {"object": {"id": "pi_1", "amount": 1.50}}}"#;
        let event = parse_webhook(body).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.event_type, "payment_intent.succeeded");
        assert_eq!(event.created, Some(1_700_000_000));
        assert_eq!(event.object, r#"{"id": "pi_1", "amount": 1.50}"#);
        // The last of duplicate keys counts, as in json.loads.
        let event =
            parse_webhook(br#"{"id":"a","id":"b","type":"t","data":{"object":{}}}"#).unwrap();
        assert_eq!((event.id.as_str(), event.created), ("b", None));
    }

    #[test]
    fn bodies_that_are_not_snapshot_events_are_refused_by_name() {
        for (body, says) in [
            (&b"not json"[..], "not a JSON object"),
            (b"[1]", "not a JSON object"),
            (b"\"evt\"", "not a JSON object"),
            (br#"{"type":"t","data":{"object":{}}}"#, "no `id`"),
            (br#"{"id":"e","data":{"object":{}}}"#, "no `type`"),
            (
                br#"{"id":5,"type":"t","data":{"object":{}}}"#,
                "`id` is not a string",
            ),
            (br#"{"id":"e","type":"t"}"#, "no `data`"),
            (br#"{"id":"e","type":"t","data":{}}"#, "no `data.object`"),
            (
                br#"{"id":"e","type":"t","data":[]}"#,
                "`data` is not an object",
            ),
            (
                br#"{"id":"e","type":"t","object":"v2.core.event","data":{"object":{}}}"#,
                "thin event",
            ),
        ] {
            let e = parse_webhook(body).unwrap_err();
            assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
