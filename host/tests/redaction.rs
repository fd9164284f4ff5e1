//! Properties of the secret redactor (`payhost::secret::Redactor`), the one
//! place that keeps a provider's key out of what a response carries back.
//!
//! Random responses with a random key hidden in them, in every encoding a
//! server or plugin could use (as is, JSON `\u` escapes on some characters,
//! URL-encoded, base64 standard or URL-safe with or without padding, inside
//! `key:` credentials, cut to a part of 10 characters or more), placed
//! anywhere in the text and in JSON keys:
//!
//! - after `scrub_json_text`, no decoded string of the document holds any
//!   10-character run of the key, and no base64 or percent-encoded token in
//!   it decodes to one;
//! - the result is still the same JSON structure (it parses);
//! - arbitrary bytes never make `scrub_body` panic, and bytes without the
//!   key come back unchanged.
//!
//! This is the fuzzing of the redactor: random inputs, shrunk on failure,
//! failures saved to `redaction.proptest-regressions` and replayed first.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use payhost::secret::{PARTIAL_WINDOW, Redactor, Secret};
use proptest::prelude::*;

/// Random API-key-like secrets: a prefix and 16 to 40 key characters.
fn secret() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["sk_test_", "sk_live_", "rk_", "AQE", ""]),
        "[A-Za-z0-9]{16,40}",
    )
        .prop_map(|(prefix, body)| format!("{prefix}{body}"))
}

/// The ways a key can be written into a JSON string (already JSON-escaped
/// where that is the point), given the key and a random choice.
fn encode(key: &str, how: u8, cut: usize) -> String {
    let part = &key[cut.min(key.len() - PARTIAL_WINDOW)..];
    match how % 10 {
        0 => key.to_string(),
        1 => key
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
        2 => key
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    format!("\\u{:04X}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
        3 => key.bytes().map(|b| format!("%{b:02X}")).collect(),
        4 => STANDARD.encode(key),
        5 => STANDARD_NO_PAD.encode(format!("{key}:")),
        6 => URL_SAFE.encode(format!("user:{key}")),
        7 => URL_SAFE_NO_PAD.encode(key).replace('/', "\\/"),
        8 => part.to_string(),
        _ => format!("Basic {}", STANDARD.encode(format!("{key}:"))),
    }
}

/// Plain words that cannot themselves hold a run of the key.
fn filler() -> impl Strategy<Value = String> {
    "[ a-z.,:!]{0,40}"
}

/// Every 10-character run of `key`.
fn windows(key: &str) -> Vec<&str> {
    (0..=key.len() - PARTIAL_WINDOW)
        .map(|i| &key[i..i + PARTIAL_WINDOW])
        .collect()
}

/// All the strings (keys and values) of a JSON document.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// What a string reveals: itself, percent-decoded, and every base64 run
/// decoded in both alphabets.
fn revealed(text: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![text.as_bytes().to_vec()];
    forms.push(percent_decode(text));
    for run in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_=".contains(c))) {
        let run = run.trim_end_matches('=');
        for skip in 0..4 {
            let Some(part) = run.get(skip..) else {
                continue;
            };
            let part = &part[..part.len() - usize::from(part.len() % 4 == 1)];
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                if let Ok(bytes) = engine.decode(part) {
                    forms.push(bytes);
                }
            }
        }
    }
    forms
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_run_of_the_key_survives_in_any_encoding(
        key in secret(),
        how in any::<u8>(),
        cut in 0usize..30,
        before in filler(),
        after in filler(),
        in_key in any::<bool>(),
    ) {
        let hidden = encode(&key, how, cut);
        let text = format!("{before}{hidden}{after}");
        let json = if in_key {
            format!(r#"{{"error":{{"{text}":1,"type":"x"}}}}"#)
        } else {
            format!(r#"{{"error":{{"message":"{text}","type":"x"}}}}"#)
        };
        let redactor = Redactor::new([&Secret::new(key.as_str())]);
        let clean = redactor.scrub_json_text(json);
        let value: serde_json::Value = serde_json::from_str(&clean)
            .map_err(|e| TestCaseError::fail(format!("not JSON any more: {e}: {clean}")))?;
        let mut all = Vec::new();
        strings(&value, &mut all);
        for s in &all {
            for form in revealed(s) {
                for window in windows(&key) {
                    prop_assert!(
                        !form.windows(window.len()).any(|w| w == window.as_bytes()),
                        "{window:?} survives in {s:?} (from {hidden:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_keyless_ones_come_back_unchanged(
        key in secret(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let redactor = Redactor::new([&Secret::new(key.as_str())]);
        let out = redactor.scrub_body(body.clone());
        let holds_key = windows(&key)
            .iter()
            .any(|w| body.windows(w.len()).any(|b| b == w.as_bytes()));
        if !holds_key && std::str::from_utf8(&body).is_err() {
            prop_assert_eq!(out, body);
        }
    }
}
