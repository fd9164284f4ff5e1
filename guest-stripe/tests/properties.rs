//! Property tests: the encoder, the response parser and the arena decoder
//! take anything a script, a server or a host can hand them without
//! panicking, and what they return keeps its promises.
//!
//! - `encode_form`: any parameter tree (NaN and infinite floats, any
//!   Unicode, empty keys, deep nesting) encodes to URL-safe ASCII, and a flat
//!   map of strings decodes back to itself.
//! - `parse_response`: any status, headers and body bytes (random bytes, any
//!   JSON, Stripe-like error bodies with fields of the wrong type) give a
//!   payload that is valid JSON; a success only for a 2xx JSON object, with
//!   the body unchanged; a failure always has `error.type` and
//!   `error.message` strings and the status in `http_status`. Transport
//!   failures likewise. And the converse the plugin declares to the host
//!   (`responses: json-object-is-success`): every 2xx JSON object, whatever
//!   the headers and the whitespace around it, is a success as it is.
//! - `TreeView::new`: any node list and text (runs out of range, shared,
//!   cyclic or overlapping, spans anywhere, deep) is a checked tree or an
//!   error, never a panic; a checked tree is at most `MAX_DEPTH` deep, and
//!   any tree laid out by `Tree::from_value` checks and reads back as itself.
//! - Encoding a tree read in place (the component's path) gives exactly the
//!   bytes of encoding the owned tree (the native path, which the
//!   stripe-python oracle cases check), and so does building a request.
//!
//! 256 cases per property (proptest's default), small inputs: seconds.

use guest_stripe::encode::{encode_form, encode_form_into};
use guest_stripe::request::{Target, build_request_from_tree};
use guest_stripe::response::{FailureKind, HttpResponse, Outcome, Payload, TransportFailure};
use guest_stripe::tree::{RawNode, RawValue, Span, Tree, TreeView};
use guest_stripe::value::MAX_DEPTH;
use guest_stripe::{Config, Value, build_request, parse_response};
use proptest::prelude::*;
use serde_json::Value as Json;

/// Short strings from all of Unicode, plus the characters that matter to
/// form encoding.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[ &=+%\\[\\]a-z0-9_.~-]{0,12}",
        Just(String::new()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        text().prop_map(Value::Str),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec((text(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// Percent-decodes one form component (`+` is a space).
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        (-1e300f64..1e300).prop_map(Json::from),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Bodies a server might send: random bytes, any JSON, Stripe-shaped errors
/// whose fields may have any type, OAuth-style errors, success objects.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = || prop_oneof![json(), text().prop_map(Json::String)];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json().prop_map(|j| j.to_string().into_bytes()),
        (field(), field(), field(), json()).prop_map(|(kind, message, code, extra)| {
            serde_json::json!({"error": {"type": kind, "message": message, "code": code, "x": extra}})
                .to_string()
                .into_bytes()
        }),
        (field(), field()).prop_map(|(code, description)| {
            serde_json::json!({"error": code, "error_description": description})
                .to_string()
                .into_bytes()
        }),
        prop::collection::vec((text(), json()), 0..4).prop_map(|pairs| {
            Json::Object(pairs.into_iter().collect())
                .to_string()
                .into_bytes()
        }),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            200u16, 201, 204, 299, 300, 302, 400, 401, 402, 403, 404, 409, 429, 500, 503,
        ]),
        any::<u16>(),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("request-id".to_string()),
        Just("Request-Id".to_string()),
        "[a-z-]{1,12}",
    ];
    prop::collection::vec((name, text()), 0..4)
}

/// Checks a failure payload's shape; returns the parsed payload.
fn check_failure(json_text: &str, status: u16) -> Result<Json, TestCaseError> {
    let payload: Json = serde_json::from_str(json_text)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {json_text}")))?;
    prop_assert_eq!(
        &payload["http_status"],
        &Json::from(status),
        "{}",
        json_text
    );
    let error = payload["error"]
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("no error object: {json_text}")))?;
    prop_assert!(
        error.get("type").is_some_and(Json::is_string),
        "error.type is not a string: {}",
        json_text
    );
    prop_assert!(
        error.get("message").is_some_and(Json::is_string),
        "error.message is not a string: {}",
        json_text
    );
    Ok(payload)
}

/// Node lists and texts of any shape: runs mostly near the right place,
/// sometimes anywhere; spans mostly inside the text (which has multi-byte
/// characters, so some cut one), sometimes anywhere.
fn raw_tree() -> impl Strategy<Value = (Vec<RawNode>, String)> {
    (0usize..24, ".{0,16}").prop_flat_map(|(len, text)| {
        let tlen = text.len() as u32;
        let index = prop_oneof![
            8 => 0..(len as u32 + 2),
            1 => Just(u32::MAX),
        ];
        let count = prop_oneof![8 => 0u32..4, 1 => Just(u32::MAX)];
        let span = prop_oneof![
            8 => (0..tlen + 2, 0..tlen + 2).prop_map(|(start, len)| Span { start, len }),
            1 => Just(Span::default()),
            1 => any::<(u32, u32)>().prop_map(|(start, len)| Span { start, len }),
        ];
        let value = prop_oneof![
            Just(RawValue::Null),
            any::<bool>().prop_map(RawValue::Bool),
            any::<i64>().prop_map(RawValue::Int),
            any::<f64>().prop_map(RawValue::Float),
            span.clone().prop_map(RawValue::Text),
            (index.clone(), count.clone())
                .prop_map(|(first, count)| RawValue::List { first, count }),
            (index, count).prop_map(|(first, count)| RawValue::Map { first, count }),
        ];
        let node = (span, value).prop_map(|(key, value)| RawNode { key, value });
        (prop::collection::vec(node, len), Just(text))
    })
}

/// Well-formed trees with their layout disturbed in one place.
fn disturbed_tree() -> impl Strategy<Value = (Vec<RawNode>, String)> {
    (value(), any::<prop::sample::Index>(), any::<u32>(), 0u8..4).prop_map(|(v, at, x, what)| {
        let Tree { mut nodes, text } = Tree::from_value(&Value::Map(vec![("k".into(), v)]));
        let i = at.index(nodes.len());
        let node = &mut nodes[i];
        match (what, &mut node.value) {
            (0, RawValue::List { first, .. } | RawValue::Map { first, .. }) => *first = x % 8,
            (1, RawValue::List { count, .. } | RawValue::Map { count, .. }) => *count = x % 8,
            (2, RawValue::Text(span)) => span.len = x % 8,
            _ => node.key.start = x % 8,
        }
        (nodes, text)
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    // Failures are saved to properties.proptest-regressions (committed) and
    // replayed first on every run, so a case once found keeps being checked.
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn encoder_takes_any_tree_and_emits_url_safe_ascii(params in value()) {
        let encoded = encode_form(&params);
        prop_assert!(
            encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-~[]%+=&".contains(&b)),
            "{}", encoded
        );
        if !matches!(params, Value::Map(_)) {
            prop_assert_eq!(encoded, "");
        }
    }

    #[test]
    fn encoder_round_trips_a_flat_map_of_strings(
        entries in prop::collection::vec(("[^\\[\\]]{1,10}", text()), 0..6)
    ) {
        let params = Value::Map(
            entries.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect(),
        );
        let encoded = encode_form(&params);
        let decoded: Vec<(String, String)> = if encoded.is_empty() {
            Vec::new()
        } else {
            encoded
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("key=value");
                    (form_decode(k), form_decode(v))
                })
                .collect()
        };
        prop_assert_eq!(decoded, entries);
    }

    #[test]
    fn parser_takes_any_response_and_keeps_its_promises(
        status in status(),
        headers in headers(),
        body in body(),
    ) {
        let outcome = Outcome::Response(HttpResponse { status, headers, body: body.clone() });
        match parse_response("customer", "create", outcome) {
            Payload::Success(text) => {
                prop_assert!((200..300).contains(&status), "success on {}", status);
                prop_assert_eq!(text.as_bytes(), &body[..]);
                let parsed: Json = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
                prop_assert!(parsed.is_object());
            }
            Payload::Failure(text) => {
                check_failure(&text, status)?;
            }
        }
    }

    /// What the plugin declares (`responses: json-object-is-success`), so
    /// the host may classify these responses without asking: any 2xx
    /// status, any headers, any JSON object, pretty or compact, with JSON
    /// whitespace around it, is a success whose payload is the body as it is.
    #[test]
    fn a_2xx_json_object_is_a_success_as_it_is(
        status in 200u16..300,
        headers in headers(),
        object in prop::collection::vec((text(), json()), 0..5),
        pretty in any::<bool>(),
        before in "[ \t\r\n]{0,3}",
        after in "[ \t\r\n]{0,3}",
    ) {
        let object = Json::Object(object.into_iter().collect());
        let text = if pretty { serde_json::to_string_pretty(&object).unwrap() } else { object.to_string() };
        let body = format!("{before}{text}{after}");
        let outcome = Outcome::Response(HttpResponse { status, headers, body: body.clone().into_bytes() });
        prop_assert_eq!(parse_response("customer", "create", outcome), Payload::Success(body));
    }

    #[test]
    fn parser_maps_every_transport_failure_to_a_stripe_error(
        kind in prop::sample::select(vec![
            FailureKind::Connect, FailureKind::Timeout, FailureKind::BodyTooLarge, FailureKind::Io,
        ]),
        status in prop::option::of(any::<u16>()),
        message in text(),
    ) {
        let outcome = Outcome::Failed(TransportFailure { kind, status, message });
        let Payload::Failure(text) = parse_response("customer", "create", outcome) else {
            return Err(TestCaseError::fail("a transport failure became a success"));
        };
        let payload = check_failure(&text, status.unwrap_or(0))?;
        let expected = if kind == FailureKind::BodyTooLarge { "api_error" } else { "api_connection_error" };
        prop_assert_eq!(&payload["error"]["type"], expected);
        prop_assert!(payload["error"]["failure_kind"].is_string());
    }

    #[test]
    fn tree_checker_takes_any_node_list((nodes, text) in prop_oneof![raw_tree(), disturbed_tree()]) {
        if let Ok(view) = TreeView::new(&nodes, &text) {
            let tree = Value::from_node(view.root());
            prop_assert!(depth(&tree) <= MAX_DEPTH);
            let again = Tree::from_value(&tree);
            let again = Value::from_node(again.view().expect("a tree's own layout checks").root());
            // Debug, not ==, so that NaN compares equal to itself.
            prop_assert_eq!(format!("{again:?}"), format!("{tree:?}"));
            // Whatever checks can be validated and encoded without a panic.
            let _ = build_request_from_tree(
                &Config::default(),
                Target { object: "customer", operation: "create", id: None, parent: None },
                (&nodes, &text),
                (&nodes, &text),
            );
        }
    }

    #[test]
    fn tree_round_trips_any_shallow_value(tree in value()) {
        let laid_out = Tree::from_value(&tree);
        let view = laid_out.view().expect("a tree's own layout checks");
        let again = Value::from_node(view.root());
        prop_assert_eq!(format!("{again:?}"), format!("{tree:?}"));
    }

    #[test]
    fn encoding_in_place_is_byte_identical(params in value(), extra in value()) {
        let owned = encode_form(&params);
        let laid_out = Tree::from_value(&params);
        let view = laid_out.view().expect("a tree's own layout checks");
        prop_assert_eq!(encode_form(view.root()), owned);

        // And a whole request, through validation, for a schema-free map.
        let params = Value::Map(vec![("metadata".into(), params)]);
        let extra = Value::Map(vec![("x".into(), extra)]);
        let (p, e) = (Tree::from_value(&params), Tree::from_value(&extra));
        let viewed = build_request_from_tree(
            &Config::default(),
            Target { object: "customer", operation: "create", id: None, parent: None },
            (&p.nodes, &p.text),
            (&e.nodes, &e.text),
        );
        let owned = build_request("customer", "create", None, &params, &extra);
        prop_assert_eq!(format!("{viewed:?}"), format!("{owned:?}"));
        // Validation encodes as it goes: the body is what the standalone
        // encoder gives for params then extra.
        if let Ok(request) = owned {
            let mut expected = String::new();
            encode_form_into(&mut expected, &params);
            encode_form_into(&mut expected, &extra);
            prop_assert_eq!(String::from_utf8(request.body).unwrap(), expected);
        }
    }
}

/// The case the parser property finds within a few runs, pinned down: a
/// Stripe-shaped error body whose `type` or `message` is not a string. Flows
/// rely on `parsed_error.error.type` being a string (the fixed contract);
/// the parser must derive one from the status, as it does when `type` is
/// missing, and give a string message.
#[test]
fn error_fields_of_the_wrong_type_become_strings() {
    for body in [
        r#"{"error":{"type":false,"message":"m"}}"#,
        r#"{"error":{"type":5,"message":"m"}}"#,
        r#"{"error":{"type":{"nested":"x"},"message":"m"}}"#,
        r#"{"error":{"type":"card_error","message":["a"]}}"#,
        r#"{"error":{"type":"card_error","message":7}}"#,
    ] {
        let outcome = Outcome::Response(HttpResponse {
            status: 402,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        });
        let Payload::Failure(text) = parse_response("charge", "create", outcome) else {
            panic!("a 402 is a failure");
        };
        let payload: Json = serde_json::from_str(&text).unwrap();
        assert!(
            payload["error"]["type"].is_string() && payload["error"]["message"].is_string(),
            "PLUGIN BUG: guest-stripe/src/response.rs `classify` keeps a non-string \
             `type`/`message` from the body ({body} gave {text}); it should treat them \
             like missing ones"
        );
    }
}
