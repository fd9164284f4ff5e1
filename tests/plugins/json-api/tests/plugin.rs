//! The `jsonapi` plugin as the host drives it, natively: configure, build
//! requests from parameter trees laid out as the host lays them out, and
//! classify outcomes. Each test is one thing a script author or a flow sees.

use payhost_plugin_kit::Plugin;
use payhost_plugin_kit::params::ErrorCode;
use payhost_plugin_kit::request::{HttpRequest, Input};
use payhost_plugin_kit::response::{HttpResponse, Outcome, Payload, TransportFailure};
use payhost_plugin_kit::schema::{FailureKind, Method};
use payhost_plugin_kit::tree::{Tree, Value};
use plugin_json_api::JsonApi;
use plugin_json_api::provider::{Config, configure};
use plugin_json_api::request::build_request;
use serde_json::json;

/// `parse-response` as the glue calls it.
fn parse_response(outcome: &Outcome) -> Payload {
    JsonApi::parse_response("order", "create", outcome)
}

fn config() -> Config {
    configure(&[("tenant".to_string(), "acme".to_string())]).unwrap()
}

/// A parameter tree from JSON (objects keep their order).
fn params(json: serde_json::Value) -> Tree {
    fn value(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap()),
            },
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(value).collect()),
            serde_json::Value::Object(map) => {
                Value::Map(map.iter().map(|(k, v)| (k.clone(), value(v))).collect())
            }
        }
    }
    Tree::encode(&value(&json))
}

fn build(
    object: &str,
    operation: &str,
    input: Input,
) -> Result<HttpRequest, (ErrorCode, Option<String>, String)> {
    build_request(&config(), object, operation, &input).map_err(|e| (e.code, e.field, e.message))
}

fn create_order(
    json: serde_json::Value,
) -> Result<HttpRequest, (ErrorCode, Option<String>, String)> {
    build(
        "order",
        "create",
        Input {
            params: params(json),
            ..Input::default()
        },
    )
}

fn body(request: &HttpRequest) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn an_order_is_posted_as_json_under_the_tenant_with_the_region_header() {
    let request = create_order(json!({
        "total": 1250,
        "currency": "eur",
        "note": "gift wrap, \"please\"",
        "lines": [{"sku": "tea-01", "qty": 2}, {"sku": "mug-02"}],
        "tags": ["gift"],
        "meta": {"order_ref": "A-17"},
    }))
    .unwrap();
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.path, "/tenants/acme/orders");
    assert_eq!(request.query, "");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.headers,
        [("X-Region".to_string(), "eu".to_string())]
    );
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        r#"{"total":1250,"currency":"eur","note":"gift wrap, \"please\"","lines":[{"sku":"tea-01","qty":2},{"sku":"mug-02"}],"tags":["gift"],"meta":{"order_ref":"A-17"}}"#
    );
}

#[test]
fn fields_set_to_nothing_are_left_out() {
    let request = create_order(json!({"total": 5, "currency": "usd", "note": null})).unwrap();
    assert_eq!(body(&request), json!({"total": 5, "currency": "usd"}));
}

#[test]
fn set_parameters_come_after_the_validated_ones_unchecked() {
    let request = build(
        "order",
        "create",
        Input {
            params: params(json!({"total": 5, "currency": "usd"})),
            extra: params(json!({"channel": {"name": "web", "ids": [1, 2.5]}})),
            ..Input::default()
        },
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        r#"{"total":5,"currency":"usd","channel":{"name":"web","ids":[1,2.5]}}"#
    );
}

#[test]
fn a_parameter_set_both_ways_is_refused() {
    let err = build(
        "order",
        "create",
        Input {
            params: params(json!({"total": 5, "currency": "usd"})),
            extra: params(json!({"total": 6})),
            ..Input::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.0, ErrorCode::InvalidValue);
    assert_eq!(err.1.as_deref(), Some("total"));
}

#[test]
fn a_missing_required_field_is_named() {
    let err = create_order(json!({"total": 5})).unwrap_err();
    assert_eq!(err.0, ErrorCode::MissingField);
    assert_eq!(err.1.as_deref(), Some("currency"));
    assert!(err.2.contains("`create` needs `currency`"), "{}", err.2);
}

#[test]
fn a_line_without_its_sku_is_named_by_its_path() {
    let err =
        create_order(json!({"total": 5, "currency": "eur", "lines": [{"sku": "a"}, {"qty": 1}]}))
            .unwrap_err();
    assert_eq!(err.0, ErrorCode::MissingField);
    assert_eq!(err.1.as_deref(), Some("lines[1].sku"));
}

#[test]
fn values_of_the_wrong_kind_are_refused_with_what_was_expected() {
    let cases = [
        (json!({"total": -1}), "total", "a whole number, 0 or more"),
        (json!({"total": "12"}), "total", "not the text \"12\""),
        (
            json!({"currency": "gbp"}),
            "currency",
            "one of \"eur\", \"usd\"",
        ),
        (
            json!({"tags": ["a", 1]}),
            "tags[1]",
            "a list of text values",
        ),
        (
            json!({"meta": {"k": true}}),
            "meta.k",
            "a map of text values",
        ),
        (json!({"lines": ["tea"]}), "lines[0]", "a list of maps"),
        (
            json!({"lines": [{"sku": "a", "qty": 1.5}]}),
            "lines[0].qty",
            "the number 1.5",
        ),
    ];
    for (json, field, message) in cases {
        let err = create_order(json.clone()).unwrap_err();
        assert_eq!(err.0, ErrorCode::InvalidValue, "{json}");
        assert_eq!(err.1.as_deref(), Some(field), "{json}");
        assert!(err.2.contains(message), "{json}: {}", err.2);
    }
}

#[test]
fn unknown_fields_are_refused_with_the_known_ones_listed() {
    let err = create_order(json!({"total": 5, "currency": "eur", "colour": "red"})).unwrap_err();
    assert_eq!(err.0, ErrorCode::UnknownField);
    assert_eq!(err.1.as_deref(), Some("colour"));
    assert!(err.2.contains("it has total, currency, note"), "{}", err.2);

    let err =
        create_order(json!({"total": 5, "currency": "eur", "lines": [{"sku": "a", "price": 3}]}))
            .unwrap_err();
    assert_eq!(err.0, ErrorCode::UnknownField);
    assert_eq!(err.1.as_deref(), Some("lines[0].price"));
    assert!(err.2.contains("it has sku, qty"), "{}", err.2);
}

#[test]
fn retrieve_gets_the_order_by_id_and_takes_no_fields() {
    let request = build(
        "order",
        "retrieve",
        Input {
            id: Some("ord_42".to_string()),
            ..Input::default()
        },
    )
    .unwrap();
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.path, "/tenants/acme/orders/ord_42");
    assert!(request.body.is_empty());
    assert_eq!(request.content_type, None);

    let err = build(
        "order",
        "retrieve",
        Input {
            id: Some("ord_42".to_string()),
            params: params(json!({"total": 1})),
            ..Input::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.0, ErrorCode::UnknownField);
    assert!(
        err.2
            .contains("`retrieve` does not accept `total`; it accepts none"),
        "{}",
        err.2
    );
}

#[test]
fn ids_must_be_given_and_fit_in_a_path_segment() {
    let retrieve = |id: Option<&str>| {
        build(
            "order",
            "retrieve",
            Input {
                id: id.map(str::to_string),
                ..Input::default()
            },
        )
        .unwrap_err()
    };
    assert_eq!(retrieve(None).0, ErrorCode::MissingId);
    assert_eq!(retrieve(None).1, None);
    for bad in ["", "..", "a/b", "a?b", "a%2Fb", "é"] {
        assert_eq!(retrieve(Some(bad)).0, ErrorCode::InvalidId, "{bad:?}");
    }
}

#[test]
fn a_shipment_is_created_under_its_parent_order() {
    let ship = |parent: Option<&str>| {
        build(
            "shipment",
            "create",
            Input {
                parent: parent.map(str::to_string),
                params: params(json!({"carrier": "dhl"})),
                ..Input::default()
            },
        )
    };
    let request = ship(Some("ord_42")).unwrap();
    assert_eq!(request.path, "/tenants/acme/orders/ord_42/shipments");
    assert_eq!(body(&request), json!({"carrier": "dhl"}));

    let err = ship(None).unwrap_err();
    assert_eq!(err.0, ErrorCode::MissingId);
    assert_eq!(err.1.as_deref(), Some("parent"));
    assert_eq!(ship(Some("../x")).unwrap_err().0, ErrorCode::InvalidId);
}

#[test]
fn unknown_objects_and_operations_are_named() {
    let err = build("refund", "create", Input::default()).unwrap_err();
    assert_eq!(err.0, ErrorCode::UnknownObject);
    assert!(
        err.2.contains("it has order, shipment") || err.2.contains("has order, shipment"),
        "{}",
        err.2
    );
    let err = build("shipment", "retrieve", Input::default()).unwrap_err();
    assert_eq!(err.0, ErrorCode::UnknownOperation);
}

#[test]
fn a_malformed_tree_is_refused_not_trusted() {
    let mut tree = params(json!({"total": 5, "currency": "eur"}));
    tree.text.truncate(3); // the spans now run past the text
    let err = build(
        "order",
        "create",
        Input {
            params: tree,
            ..Input::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.0, ErrorCode::MalformedTree);
    assert!(err.2.starts_with("params: node"), "{}", err.2);
}

fn respond(status: u16, body: &str) -> Payload {
    parse_response(&Outcome::Response(HttpResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }))
}

fn failure(payload: Payload) -> serde_json::Value {
    match payload {
        Payload::Failure(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_2xx_passes_the_providers_json_through() {
    assert_eq!(
        respond(201, r#"{"id": "ord_1", "total": 5}"#),
        Payload::Success(r#"{"id": "ord_1", "total": 5}"#.to_string())
    );
}

#[test]
fn an_empty_or_unreadable_2xx_body_is_a_failure() {
    let payload = failure(respond(204, ""));
    assert_eq!(
        payload,
        json!({"problem": {"title": "the API answered with an empty body"}, "status": 204, "retryable": false})
    );
    let payload = failure(respond(200, r#"{"a":"#));
    assert_eq!(
        payload["problem"]["title"],
        json!("the API answered with a body that is not JSON")
    );
}

#[test]
fn an_error_body_with_a_title_becomes_the_problem() {
    let payload = failure(respond(
        422,
        r#"{"title": "Invalid order", "detail": "total is zero", "code": 7}"#,
    ));
    assert_eq!(
        payload,
        json!({"problem": {"title": "Invalid order", "detail": "total is zero"}, "status": 422, "retryable": false})
    );
}

#[test]
fn retryable_follows_the_declared_policy() {
    for (status, retryable) in [
        (429, true),
        (503, true),
        (500, false),
        (409, false),
        (404, false),
    ] {
        let payload = failure(respond(status, r#"{"title": "x"}"#));
        assert_eq!(payload["retryable"], json!(retryable), "{status}");
        assert_eq!(payload["status"], json!(status));
    }
}

#[test]
fn any_other_body_still_gives_the_same_shape() {
    let payload = failure(respond(502, "<html>Bad gateway</html>"));
    assert_eq!(
        payload,
        json!({"problem": {"title": "the API answered with status 502", "detail": "<html>Bad gateway</html>"}, "status": 502, "retryable": false})
    );
    let payload = failure(respond(500, ""));
    assert_eq!(
        payload["problem"],
        json!({"title": "the API answered with status 500"})
    );
    let payload = failure(respond(200, "not json"));
    assert_eq!(payload["status"], json!(200));
    let payload = failure(parse_response(&Outcome::Response(HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: vec![0xff, 0xfe, b'{'],
    })));
    assert_eq!(payload["problem"]["detail"], json!("\u{fffd}\u{fffd}{"));
}

#[test]
fn transport_failures_have_status_0_and_only_timeouts_are_retryable() {
    for (kind, retryable) in [
        (FailureKind::Timeout, true),
        (FailureKind::Connect, false),
        (FailureKind::Io, false),
        (FailureKind::BodyTooLarge, false),
    ] {
        let payload = failure(parse_response(&Outcome::Failed(TransportFailure {
            kind,
            status: None,
            message: "what happened".to_string(),
        })));
        assert_eq!(payload["status"], json!(0));
        assert_eq!(payload["retryable"], json!(retryable), "{kind:?}");
        assert_eq!(payload["problem"]["detail"], json!("what happened"));
    }
}
