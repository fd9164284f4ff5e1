//! The `{{provider}}` plugin as the host drives it, natively: configure,
//! build requests from parameter trees laid out as the host lays them out,
//! and classify outcomes. Add a test here for every object you add.

use payhost_plugin_kit::Plugin;
use payhost_plugin_kit::params::ErrorCode;
use payhost_plugin_kit::request::{HttpRequest, Input};
use payhost_plugin_kit::response::{HttpResponse, Outcome, Payload};
use payhost_plugin_kit::schema::Method;
use payhost_plugin_kit::tree::{Tree, Value};

// A group of its own, so that rustfmt keeps it here whatever the name.
use {{provider}}::ThisPlugin;
use {{provider}}::provider::{Config, configure};
use {{provider}}::request::build_request;

/// `parse-response` as the glue calls it.
fn parse_response(outcome: &Outcome) -> Payload {
    ThisPlugin::parse_response("payment", "create", outcome)
}

fn config() -> Config {
    configure(&[]).unwrap()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// A parameter tree with these top-level fields, in this order.
fn params(fields: Vec<(&str, Value)>) -> Tree {
    Tree::encode(&Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

fn create_payment(fields: Vec<(&str, Value)>) -> Result<HttpRequest, (ErrorCode, Option<String>)> {
    let input = Input {
        params: params(fields),
        ..Input::default()
    };
    build_request(&config(), "payment", "create", &input).map_err(|e| (e.code, e.field))
}

#[test]
fn a_payment_is_posted_as_json() {
    let request = create_payment(vec![
        ("amount", Value::Int(2000)),
        ("currency", text("eur")),
        (
            "metadata",
            Value::Map(vec![("order".to_string(), text("A-17"))]),
        ),
    ])
    .unwrap();
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.path, "/v1/payments");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.headers,
        [("Api-Version".to_string(), "2024-06-01".to_string())]
    );
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        r#"{"amount":2000,"currency":"eur","metadata":{"order":"A-17"}}"#
    );
}

#[test]
fn a_missing_required_field_is_named() {
    let err = create_payment(vec![("amount", Value::Int(2000))]).unwrap_err();
    assert_eq!(err, (ErrorCode::MissingField, Some("currency".to_string())));
}

#[test]
fn a_wrong_value_is_named() {
    let err =
        create_payment(vec![("amount", Value::Int(-1)), ("currency", text("eur"))]).unwrap_err();
    assert_eq!(err, (ErrorCode::InvalidValue, Some("amount".to_string())));
    let err =
        create_payment(vec![("amount", Value::Int(1)), ("currency", text("xyz"))]).unwrap_err();
    assert_eq!(err, (ErrorCode::InvalidValue, Some("currency".to_string())));
}

#[test]
fn an_unknown_field_is_named() {
    let err = create_payment(vec![("colour", text("red"))]).unwrap_err();
    assert_eq!(err, (ErrorCode::UnknownField, Some("colour".to_string())));
}

#[test]
fn success_passes_the_body_through_and_failures_have_one_shape() {
    let respond = |status, body: &str| {
        parse_response(&Outcome::Response(HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }))
    };
    assert_eq!(
        respond(200, r#"{"id":"pay_1"}"#),
        Payload::Success(r#"{"id":"pay_1"}"#.to_string())
    );
    assert_eq!(
        respond(503, "busy"),
        Payload::Failure(
            r#"{"problem":{"title":"the API answered with status 503","detail":"busy"},"status":503,"retryable":true}"#
                .to_string()
        )
    );
}
