//! Properties of the outbound destination policy (`payhost::outbound`): a
//! plugin's request goes under the configured base URL or nowhere.
//!
//! For arbitrary paths and queries built from the pieces that break URL
//! checks (`..`, `%2e`, `%2f`, `%5c`, `%25`, `;`, `\`, `//`, `?`, `#`, `@`,
//! unicode, control characters, any string at all), on a few fixed base URLs
//! with and without path prefixes:
//!
//! - every request `check` accepts resolves to a URL with the base URL's
//!   scheme, host and port, a path that is the base path followed by exactly
//!   the plugin's path, no credentials and no fragment, and it parses back
//!   to the same URL (what reqwest sends);
//! - that path holds no dot segment however many times a server or gateway
//!   percent-decodes it, splitting on `\` as well as `/` and cutting path
//!   parameters (`..;x` is `..` to servers that strip them);
//! - a path with a percent-encoded `.`, `/`, `\` or `%`, or with a dot
//!   segment behind a `;`, is refused (the rule: encoded separators are never
//!   sent, so no gateway can decode one into a way out);
//! - plain paths and form-encoded queries are accepted unchanged, so the
//!   properties above are not met by refusing everything.
//!
//! Failures are saved to `outbound_policy.proptest-regressions` beside this
//! file and replayed first on every run.

use payhost::outbound::Destination;
use payhost::plugin::wit;
use proptest::prelude::*;
use proptest::sample::select;
use reqwest::Url;

/// Base URLs as operators write them: bare hosts, trailing slashes, path
/// prefixes, default and explicit ports, IPv6.
const BASES: &[&str] = &[
    "http://127.0.0.1:4242",
    "http://127.0.0.1:4242/",
    "https://api.stripe.com",
    "https://api.example.com:443/stripe/",
    "https://api.example.com/stripe",
    "http://localhost:8080/a/b",
    "http://[::1]:9000/gateway/v1/",
];

/// Pieces of a path or query: the ones that have broken URL checks before,
/// and ordinary ones.
const PIECES: &[&str] = &[
    "",
    ".",
    "..",
    "...",
    "%2e",
    "%2E",
    "%2e%2e",
    ".%2e",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%25",
    "%252e",
    "%252e%252e",
    "%25%32%65",
    "%%32%65",
    ";",
    ";x",
    "..;",
    "..;x",
    ".;a",
    "\\",
    "/",
    "//",
    "%",
    "%zz",
    "%2",
    "%41",
    "%C3%A9",
    "v1",
    "customers",
    "cus_123",
    "a",
    "é",
    "💳",
    "\u{0}",
    "\n",
    "\t",
    "\u{7f}",
    "\u{202e}",
    " ",
    "?",
    "#",
    "@",
    ":",
    "evil.example.com",
    "http:",
    "~",
    "!$&'()*+,=",
    "[",
    "]",
    "=",
    "&",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(PIECES).prop_map(str::to_string),
        1 => ".{0,6}",
        1 => "[a-z0-9._~%;/\\\\-]{0,8}",
    ]
}

/// A path: mostly starting with `/`, pieces joined by `/`, nothing, `//`
/// or `\`.
fn path() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec((piece(), select(&["/", "/", "", "//", "\\"][..])), 0..8),
    )
        .prop_map(|(slash, parts)| {
            let mut path = if slash {
                "/".to_string()
            } else {
                String::new()
            };
            for (piece, joint) in parts {
                path.push_str(&piece);
                path.push_str(joint);
            }
            path
        })
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        3 => prop::collection::vec(piece(), 0..6).prop_map(|p| p.concat()),
    ]
}

/// Paths made only of unreserved characters and harmless escapes, which
/// every policy must let through.
fn plain_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[A-Za-z0-9_~-]{1,10}",
            1 => "[a-z]{1,3}\\.[a-z]{1,3}",
            1 => select(&["%41", "%C3%A9", "%20", "a;b=c", "x@y", "k=v,w"][..]).prop_map(str::to_string),
        ],
        1..6,
    )
    .prop_map(|segments| format!("/{}", segments.join("/")))
}

/// What the Stripe plugin puts in a query: form-encoded keys and values.
fn form_query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            "[a-z_]{1,8}(\\[[a-z0-9_]{1,5}\\])?",
            "[A-Za-z0-9_.~+-]{0,8}(%[0-9A-F]{2})?",
        ),
        0..5,
    )
    .prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn request(path: &str, query: &str) -> wit::HttpRequest {
    wit::HttpRequest {
        method: wit::HttpMethod::Get,
        path: path.into(),
        query: query.into(),
        headers: vec![],
        content_type: None,
        body: vec![],
    }
}

fn destination(base: &str) -> Destination {
    Destination::new(base, "prop", Some("Idempotency-Key"), 1 << 20)
        .unwrap_or_else(|e| panic!("base URL {base}: {e}"))
}

/// The base URL's path without its trailing `/`, as the operator wrote it.
fn prefix(base: &str) -> String {
    Url::parse(base)
        .unwrap()
        .path()
        .trim_end_matches('/')
        .to_string()
}

/// Decodes every valid `%XX` once; invalid escapes stay as they are.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The first dot segment a server could see in `path`, decoding it again
/// and again until nothing changes: segments split on `/` and `\`, path
/// parameters (`;...`) cut off.
fn dot_segment_after_decoding(path: &str) -> Option<String> {
    let mut current = path.as_bytes().to_vec();
    loop {
        for segment in current.split(|&b| b == b'/' || b == b'\\') {
            let bare = segment.split(|&b| b == b';').next().unwrap_or(segment);
            if bare == b"." || bare == b".." {
                return Some(String::from_utf8_lossy(&current).into_owned());
            }
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return None;
        }
        current = decoded;
    }
}

/// What the rule refuses outright: an encoded `.`, `/`, `\` or `%`, or a
/// dot segment, bare or behind a `;`.
fn breaks_the_rule(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c", "%25"]
        .iter()
        .any(|encoded| lower.contains(encoded))
        || path.split('/').any(|segment| {
            let bare = segment.split(';').next().unwrap_or(segment);
            bare == "." || bare == ".."
        })
}

/// Panics unless `url` is under `base` with exactly `path` after the
/// prefix, and holds no dot segment after any amount of decoding.
fn assert_stays_under(base: &str, path: &str, url: &Url) {
    let base_url = Url::parse(base).unwrap();
    let prefix = prefix(base);
    assert_eq!(url.scheme(), base_url.scheme(), "scheme of {url}");
    assert_eq!(url.host_str(), base_url.host_str(), "host of {url}");
    assert_eq!(
        url.port_or_known_default(),
        base_url.port_or_known_default(),
        "port of {url}"
    );
    assert_eq!(url.username(), "", "credentials in {url}");
    assert_eq!(url.password(), None, "credentials in {url}");
    assert_eq!(url.fragment(), None, "fragment in {url}");
    assert_eq!(
        url.path(),
        format!("{prefix}{path}"),
        "the path sent is not the base path followed by the plugin's path"
    );
    assert!(url.path().starts_with(&format!("{prefix}/")), "{url}");
    if let Some(decoded) = dot_segment_after_decoding(url.path()) {
        panic!("{url} has a dot segment once decoded: {decoded}");
    }
    // What goes on the wire is the URL's text; it must parse back the same.
    let reparsed = Url::parse(url.as_str()).expect("an accepted URL parses back");
    assert_eq!(&reparsed, url, "{url} does not parse back to itself");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        ..ProptestConfig::default()
    })]

    #[test]
    fn accepted_requests_stay_under_the_base_url(
        base in select(BASES),
        path in path(),
        query in query(),
    ) {
        if let Ok(checked) = destination(base).check(&request(&path, &query)) {
            assert_stays_under(base, &path, &checked.url);
        }
    }

    #[test]
    fn encoded_separators_and_hidden_dot_segments_are_refused(
        base in select(BASES),
        path in path(),
    ) {
        if breaks_the_rule(&path) {
            let outcome = destination(base).check(&request(&path, ""));
            prop_assert!(
                outcome.is_err(),
                "{path:?} was accepted as {}",
                outcome.map(|c| c.url.to_string()).unwrap_or_default()
            );
        }
    }

    #[test]
    fn plain_paths_and_form_queries_are_accepted_unchanged(
        base in select(BASES),
        path in plain_path(),
        query in form_query(),
    ) {
        let checked = destination(base)
            .check(&request(&path, &query))
            .unwrap_or_else(|e| panic!("{path:?} ? {query:?} refused: {e}"));
        assert_stays_under(base, &path, &checked.url);
        let base_url = Url::parse(base).unwrap();
        let mut expected = format!(
            "{}://{}{}{}{path}",
            base_url.scheme(),
            base_url.host_str().unwrap(),
            base_url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            prefix(base),
        );
        if !query.is_empty() {
            expected.push('?');
            expected.push_str(&query);
        }
        prop_assert_eq!(checked.url.as_str(), expected);
    }
}

#[test]
fn fixed_base_urls_with_and_without_prefixes() {
    for (base, path, query, expected) in [
        (
            "http://127.0.0.1:4242",
            "/v1/customers",
            "limit=3&expand[0]=x",
            "http://127.0.0.1:4242/v1/customers?limit=3&expand[0]=x",
        ),
        (
            "http://127.0.0.1:4242/",
            "/v1/customers/cus_1",
            "",
            "http://127.0.0.1:4242/v1/customers/cus_1",
        ),
        (
            "https://api.stripe.com",
            "/v1/payment_intents/pi_1/confirm",
            "",
            "https://api.stripe.com/v1/payment_intents/pi_1/confirm",
        ),
        (
            "https://api.example.com:443/stripe/",
            "/v1/x",
            "a=%20",
            "https://api.example.com/stripe/v1/x?a=%20",
        ),
        (
            "http://localhost:8080/a/b",
            "/v1/coupons/my%20coupon",
            "",
            "http://localhost:8080/a/b/v1/coupons/my%20coupon",
        ),
        (
            "http://[::1]:9000/gateway/v1/",
            "/v1/x",
            "",
            "http://[::1]:9000/gateway/v1/v1/x",
        ),
    ] {
        let checked = destination(base)
            .check(&request(path, query))
            .unwrap_or_else(|e| panic!("{base} + {path}: {e}"));
        assert_eq!(checked.url.as_str(), expected);
        assert_stays_under(base, path, &checked.url);
    }
}

#[test]
fn fixed_ways_out_are_refused_on_every_base_url() {
    for base in BASES {
        for path in [
            "",
            "v1/x",
            "//evil.example.com/x",
            "https://evil.example.com/x",
            "/..",
            "/../x",
            "/v1/../../x",
            "/v1/./x",
            "/v1/%2e%2e/x",
            "/v1/%2E./x",
            "/v1/.%2e/x",
            "/v1/..;/x",
            "/v1/..;jsessionid=1/x",
            "/v1/.;a/x",
            "/v1/%252e%252e/x",
            "/v1/%25%32%65%25%32%65/x",
            "/v1/a%2fb",
            "/v1/..%2Fx",
            "/v1/a%5c..%5cx",
            // A `%` that starts no escape: decoded twice, `%%32%65` is `.`.
            "/v1/%%32%65%%32%65/x",
            "/v1/%%35c..%%35cx",
            "/v1\\..\\x",
            "/v1/x?y=1",
            "/v1/x#frag",
            "/v1/x y",
            "/v1/\u{0}",
            "/v1/é",
        ] {
            let outcome = destination(base).check(&request(path, ""));
            assert!(
                outcome.is_err(),
                "{base} + {path:?} was accepted as {}",
                outcome.map(|c| c.url.to_string()).unwrap_or_default()
            );
        }
        for query in ["a=1#b", "a=1 2", "a=\n", "a=é"] {
            assert!(
                destination(base).check(&request("/v1/x", query)).is_err(),
                "{base} ? {query:?} was accepted"
            );
        }
    }
}
