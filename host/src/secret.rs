//! The provider secret, and the one place that keeps it out of what a
//! response can carry back.
//!
//! [`Secret`] has no `Display`, and its `Debug` prints a fixed placeholder,
//! so formatting a struct that holds one (in a log line, an error, a panic)
//! cannot leak it. The only way to read it is [`Secret::expose`], which the
//! HTTP executor calls when it sets the auth header. It is never passed to a
//! plugin, written to a queue or stored in Redis: flow jobs carry no secret,
//! and a worker takes its own from its configuration.
//!
//! A server can still echo the credentials it was sent (an error message
//! quoting the key, a debug endpoint printing the `Authorization` header),
//! and it can encode them on the way: JSON `\u0073k_...` escapes, URL
//! encoding, base64 in any variant. [`Redactor`] is the single enforcement
//! point against that. It is built from the secrets a request was sent with
//! and scrubs what the plugin receives (response headers and body) and what
//! a flow receives (the plugin's payload), judging *decoded* text:
//!
//! - JSON text is judged by its decoded string values (and keys), so escapes
//!   cannot hide a key; a JSON document that needed changing is re-serialised;
//! - any run of the secret of [`PARTIAL_WINDOW`] characters or more counts
//!   (a key cut short, or with a masked middle, still gives its long runs);
//! - a token with `%` escapes is judged percent-decoded;
//! - base64 (standard or URL-safe, padded or not) of any text holding
//!   [`BASE64_WINDOW`] + 2 or more characters of the key is recognised
//!   without decoding anything: such an encoding always contains the plain
//!   base64 of some [`BASE64_WINDOW`]-byte run of the key, aligned on a
//!   3-byte group, and those encodings are patterns of the same automaton.
//!   So `Basic <base64(key:)>` is caught wherever it appears.
//!
//! What matched is replaced by `[REDACTED]` (for encoded forms: the whole
//! base64 run, or the whole percent-encoded token). Plain text with no
//! backslash is judged as it is: its bytes are its decoded content, so the
//! common case costs one automaton pass and no decoding.

use std::fmt;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself; for the auth header (and webhook MACs) only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What replaces a secret, in any form.
pub const REDACTED: &str = "[REDACTED]";

/// Runs of a secret this long or longer are redacted wherever they appear
/// (for secrets shorter than [`MIN_PARTIAL_SECRET`], only the whole secret).
/// Ten characters of a random key are meaningful; ten characters matching by
/// chance in a response are not a realistic worry.
pub const PARTIAL_WINDOW: usize = 10;

/// Secrets shorter than this are only redacted whole.
const MIN_PARTIAL_SECRET: usize = 16;

/// Runs of the key whose base64 forms are patterns: a multiple of 3, so each
/// encodes to 16 characters with no padding. Any base64 text holding 14 or
/// more consecutive characters of the key contains one of them.
pub const BASE64_WINDOW: usize = 12;

/// Scrubs every form of a set of secrets from text, bytes and JSON. Cheap to
/// clone; an empty redactor (no secret sent) changes nothing.
#[derive(Clone, Default)]
pub struct Redactor {
    matcher: Option<Arc<Matcher>>,
}

/// One automaton over every form of every secret.
struct Matcher {
    automaton: AhoCorasick,
    /// The same patterns for a SIMD scan (Teddy), when the CPU and the
    /// pattern count allow one: it says whether a text holds any of them
    /// several times faster than the automaton's byte-by-byte walk (whose
    /// own prefilter is only built for up to 16 patterns; a key gives a few
    /// dozen).
    quick: Option<aho_corasick::packed::Searcher>,
    /// Patterns from this index on are base64 forms: a match stands for the
    /// whole base64 run around it.
    first_base64: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.matcher.is_some() {
            "Redactor(<armed>)"
        } else {
            "Redactor(<empty>)"
        })
    }
}

impl Redactor {
    /// A redactor for these secrets (empty ones are ignored).
    pub fn new<'s>(secrets: impl IntoIterator<Item = &'s Secret>) -> Self {
        let secrets: Vec<&[u8]> = secrets
            .into_iter()
            .map(|s| s.expose().as_bytes())
            .filter(|s| !s.is_empty())
            .collect();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for bytes in &secrets {
            if bytes.len() < MIN_PARTIAL_SECRET {
                patterns.push(bytes.to_vec());
            } else {
                patterns.extend(bytes.windows(PARTIAL_WINDOW).map(<[u8]>::to_vec));
            }
        }
        let first_base64 = patterns.len();
        for bytes in &secrets {
            for window in bytes.windows(BASE64_WINDOW) {
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    patterns.push(engine.encode(window).into_bytes());
                }
            }
        }
        if patterns.is_empty() {
            return Self::default();
        }
        // A DFA: every response and payload is scanned, a few dozen
        // patterns make a small one, and it scans fastest.
        let automaton = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&patterns)
            .expect("literal patterns always build");
        let quick = aho_corasick::packed::Config::new()
            .builder()
            .extend(&patterns)
            .build();
        Self {
            matcher: Some(Arc::new(Matcher {
                automaton,
                quick,
                first_base64,
            })),
        }
    }

    fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    fn contains(&self, haystack: &[u8]) -> bool {
        self.matcher
            .as_ref()
            .is_some_and(|m| m.automaton.find(haystack).is_some())
    }

    /// Where `bytes` holds a form of a secret: raw runs as matched, base64
    /// forms widened to their whole base64 run.
    fn spans(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        // Almost every text holds no secret. A plain search answers that
        // (vectorised when `quick` exists) many times faster than the
        // overlapping walk below; only a text that does hold a form of a
        // secret pays for finding all of them.
        let any = match &matcher.quick {
            Some(quick) => quick.find(bytes).is_some(),
            None => matcher.automaton.is_match(bytes),
        };
        if !any {
            return Vec::new();
        }
        matcher
            .automaton
            .find_overlapping_iter(bytes)
            .map(|m| {
                if m.pattern().as_usize() < matcher.first_base64 {
                    return (m.start(), m.end());
                }
                let mut start = m.start();
                while start > 0 && is_base64_byte(bytes[start - 1]) {
                    start -= 1;
                }
                let mut end = m.end();
                while end < bytes.len() && is_base64_byte(bytes[end]) {
                    end += 1;
                }
                (start, end)
            })
            .collect()
    }

    /// `text` with every form of the secrets replaced, or `None` if it holds
    /// none. Does not interpret JSON escapes; see [`Redactor::scrub_json_text`].
    pub fn scrub_str(&self, text: &str) -> Option<String> {
        self.matcher.as_ref()?;
        let mut spans = self.spans(text.as_bytes());
        spans.extend(self.percent_encoded_spans(text));
        if spans.is_empty() {
            return None;
        }
        Some(replace_spans(text, spans))
    }

    /// Tokens of `text` with `%` escapes that reveal a secret (in any form
    /// above) once percent-decoded.
    fn percent_encoded_spans(&self, text: &str) -> Vec<(usize, usize)> {
        // `memchr` is vectorised; `str::contains(char)` walks byte by byte.
        if memchr::memchr(b'%', text.as_bytes()).is_none() {
            return Vec::new();
        }
        runs(text.as_bytes(), is_token_byte)
            .filter(|&(start, end)| {
                let token = &text.as_bytes()[start..end];
                token.contains(&b'%')
                    && self.contains(&percent_encoding::percent_decode(token).collect::<Vec<u8>>())
            })
            .collect()
    }

    /// JSON text with every string (and key) judged decoded. Returns the
    /// input unchanged when nothing was found.
    pub fn scrub_json_text(&self, json: String) -> String {
        if self.is_empty() {
            return json;
        }
        if memchr::memchr(b'\\', json.as_bytes()).is_none() {
            // No escapes: the text's bytes are its strings' decoded bytes,
            // and `[REDACTED]` cannot break the JSON's structure.
            return self.scrub_str(&json).unwrap_or(json);
        }
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(mut value) => {
                if self.scrub_json(&mut value) {
                    value.to_string()
                } else {
                    json
                }
            }
            // Not JSON after all: judge it as text.
            Err(_) => self.scrub_str(&json).unwrap_or(json),
        }
    }

    /// Scrubs every string and key of `value` in place; whether any changed.
    pub fn scrub_json(&self, value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        // An explicit stack: a hostile body may nest deeply.
        let mut changed = false;
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(s) => {
                    if let Some(clean) = self.scrub_str(s) {
                        *s = clean;
                        changed = true;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map.keys().any(|k| self.scrub_str(k).is_some()) {
                        let entries = std::mem::take(map);
                        for (key, item) in entries {
                            let key = self.scrub_str(&key).unwrap_or(key);
                            map.insert(key, item);
                        }
                        changed = true;
                    }
                    stack.extend(map.values_mut());
                }
                _ => {}
            }
        }
        changed
    }

    /// A response body as the plugin may see it: bytes kept as they are
    /// unless they hold a secret in some form.
    pub fn scrub_body(&self, body: Vec<u8>) -> Vec<u8> {
        if self.is_empty() {
            return body;
        }
        match String::from_utf8(body) {
            Ok(text) => self.scrub_json_text(text).into_bytes(),
            Err(err) => {
                let bytes = err.into_bytes();
                // Not text: raw and base64 forms can still be recognised.
                let spans = self.spans(&bytes);
                if spans.is_empty() {
                    bytes
                } else {
                    replace_byte_spans(&bytes, spans)
                }
            }
        }
    }
}

/// Characters of a "token": what a percent-encoded value can span.
fn is_token_byte(b: u8) -> bool {
    !b.is_ascii_whitespace() && !b"\"'<>(){}[],;\\".contains(&b)
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=')
}

/// Maximal runs of bytes satisfying `keep`, as `(start, end)`.
fn runs(bytes: &[u8], keep: fn(u8) -> bool) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !keep(bytes[at]) {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && keep(bytes[at]) {
            at += 1;
        }
        Some((start, at))
    })
}

/// Merges overlapping spans, sorted by start.
fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn replace_byte_spans(bytes: &[u8], spans: Vec<(usize, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for (start, end) in merge(spans) {
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

fn replace_spans(text: &str, spans: Vec<(usize, usize)>) -> String {
    // Spans come from ASCII secrets or ASCII tokens; widen any that would cut
    // a multi-byte character so the result stays UTF-8.
    let widened = spans
        .into_iter()
        .map(|(mut s, mut e)| {
            while !text.is_char_boundary(s) {
                s -= 1;
            }
            while !text.is_char_boundary(e) {
                e += 1;
            }
            (s, e)
        })
        .collect();
    String::from_utf8(replace_byte_spans(text.as_bytes(), widened))
        .expect("spans end on character boundaries")
}

/// Lower-case hexadecimal of `bytes` (MACs, hashes).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    // A table, not `format!`: this runs for every webhook MAC.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

/// The bytes of hexadecimal `text` (either case); `None` unless it is an
/// even number of hex digits.
pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_SENTINEL_9f8e7d";

    fn redactor() -> Redactor {
        Redactor::new([&Secret::new(KEY)])
    }

    fn b64(engine: &impl base64::Engine, text: &str) -> String {
        engine.encode(text)
    }

    /// Every character of `text` as a JSON `\uXXXX` escape.
    fn json_escaped(text: &str) -> String {
        text.chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect()
    }

    /// Every byte of `text` as a `%XX` escape.
    fn percent_encoded(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk_test_sentinel");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "sk_test_sentinel");
    }

    #[test]
    fn plain_and_partial_copies_are_redacted() {
        let r = redactor();
        assert_eq!(
            r.scrub_str(&format!("bad key {KEY}!")).unwrap(),
            "bad key [REDACTED]!"
        );
        // A key cut short keeps a long run of the secret.
        let cut = &KEY[..14];
        assert!(!r.scrub_str(&format!("key {cut}...")).unwrap().contains(cut));
        let tail = &KEY[KEY.len() - 12..];
        assert!(!r.scrub_str(&format!("...{tail}")).unwrap().contains(tail));
        // Masked the way Stripe masks keys: nothing meaningful is left.
        assert_eq!(r.scrub_str("sk_test_****************9f8e"), None);
        assert_eq!(r.scrub_str("an ordinary message"), None);
    }

    #[test]
    fn json_escapes_are_judged_decoded() {
        let r = redactor();
        let escaped = json_escaped(KEY);
        let body = format!(r#"{{"error":{{"message":"Invalid key: {escaped}"}}}}"#);
        let clean = r.scrub_json_text(body);
        let value: serde_json::Value = serde_json::from_str(&clean).unwrap();
        assert_eq!(value["error"]["message"], "Invalid key: [REDACTED]");
        // Keys too.
        let clean = r.scrub_json_text(format!(r#"{{"{escaped}":1}}"#));
        assert!(!clean.contains("SENTINEL"), "{clean}");
    }

    /// Scrubbing what was scrubbed changes nothing: the flow threads rely on
    /// it to skip a payload that is the (scrubbed) response body itself.
    #[test]
    fn a_scrubbed_body_scrubs_to_itself() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let r = redactor();
        let escaped = json_escaped(KEY);
        let percent = percent_encoded(KEY);
        let bodies = [
            format!(r#"{{"message":"bad key {KEY}","n":1}}"#),
            format!(r#"{{"message":"bad key {escaped}","\\n":"\\"}}"#),
            format!(r#"{{"{escaped}":{{"{KEY}":[1,"{KEY}{KEY}"]}}}}"#),
            format!(
                r#"{{"auth":"Basic {}","b":"{}"}}"#,
                b64(&STANDARD, &format!("{KEY}:")),
                b64(&URL_SAFE_NO_PAD, KEY)
            ),
            format!(
                r#"{{"url":"https://x.test/?k={percent}&j={}"}}"#,
                KEY.replace('_', "%5f")
            ),
            format!(
                r#"{{"cut":"{}...","tail":"...{}"}}"#,
                &KEY[..14],
                &KEY[KEY.len() - 12..]
            ),
            format!("not json {KEY} {escaped} {percent}"),
            r#"{"id":"pi_1","status":"ok"}"#.to_string(),
        ];
        for body in bodies {
            let once = r.scrub_body(body.clone().into_bytes());
            let twice = r.scrub_json_text(String::from_utf8(once.clone()).unwrap());
            assert_eq!(twice.as_bytes(), once.as_slice(), "{body}");
            assert!(!twice.contains("SENTINEL"), "{body} -> {twice}");
        }
    }

    #[test]
    fn url_encoded_copies_are_redacted() {
        let r = redactor();
        let encoded = percent_encoded(KEY);
        let clean = r
            .scrub_str(&format!("see https://x.test/?k={encoded} now"))
            .unwrap();
        assert_eq!(clean, "see [REDACTED] now");
        let partly = KEY.replace('_', "%5f");
        assert!(r.scrub_str(&format!("k={partly}")).is_some());
    }

    #[test]
    fn every_base64_variant_is_redacted() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let r = redactor();
        for text in [
            KEY.to_string(),
            format!("{KEY}:"),
            format!("user:{KEY}"),
            format!("xx{KEY}yy"),
        ] {
            for encoded in [
                b64(&STANDARD, &text),
                b64(&STANDARD_NO_PAD, &text),
                b64(&URL_SAFE, &text),
                b64(&URL_SAFE_NO_PAD, &text),
            ] {
                let clean = r
                    .scrub_str(&format!("Authorization: Basic {encoded}"))
                    .unwrap_or_else(|| panic!("{encoded} ({text}) not caught"));
                assert_eq!(clean, "Authorization: Basic [REDACTED]");
            }
        }
        // Ordinary ids and base64 of other things stay.
        assert_eq!(r.scrub_str("pi_3MtwBwLkdIwHu7ix28a3tqPa"), None);
        assert_eq!(r.scrub_str(&b64(&STANDARD, "hello there, general")), None);
    }

    #[test]
    fn bodies_stay_byte_identical_unless_they_hold_a_secret() {
        let r = redactor();
        let body = br#"{"id": "cus_1",   "n": 1.50}"#.to_vec();
        assert_eq!(r.scrub_body(body.clone()), body);
        let mut binary = vec![0xff, 0xfe];
        binary.extend_from_slice(KEY.as_bytes());
        assert_eq!(r.scrub_body(binary), b"\xff\xfe[REDACTED]");
        assert_eq!(Redactor::default().scrub_body(body.clone()), body);
    }

    #[test]
    fn deep_json_does_not_overflow() {
        let r = redactor();
        let depth = 100;
        let mut value = serde_json::json!(format!("{KEY}"));
        for _ in 0..depth {
            value = serde_json::json!({ "a": [value] });
        }
        assert!(r.scrub_json(&mut value));
        assert!(!value.to_string().contains(KEY));
    }

    #[test]
    fn short_secrets_are_only_redacted_whole() {
        let r = Redactor::new([&Secret::new("abc123")]);
        assert_eq!(r.scrub_str("x abc123 y").unwrap(), "x [REDACTED] y");
        assert_eq!(r.scrub_str("abc12"), None);
    }
}
