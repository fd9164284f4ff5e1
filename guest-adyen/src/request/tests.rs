use super::*;
use crate::tree::{self, Children, Node, NodeValue, Span, Tree};

fn s(v: &str) -> Value {
    Value::Text(v.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn amount(value: i64, currency: &str) -> Value {
    map(vec![
        ("value", Value::Int(value)),
        ("currency", s(currency)),
    ])
}

fn configured() -> Settings {
    Settings::configure(&[("merchant_account".into(), "TestMerchant".into())]).unwrap()
}

fn payment() -> Value {
    map(vec![
        ("amount", amount(1000, "EUR")),
        ("reference", s("order-1")),
        (
            "paymentMethod",
            map(vec![
                ("type", s("scheme")),
                ("encryptedCardNumber", s("test_4111111111111111")),
                ("encryptedExpiryMonth", s("test_03")),
                ("encryptedExpiryYear", s("test_2030")),
                ("encryptedSecurityCode", s("test_737")),
            ]),
        ),
        ("returnUrl", s("https://example.org/return")),
    ])
}

fn input(params: Value) -> Input<'static> {
    Input {
        id: None,
        parent: None,
        params,
        extra: Value::Null,
    }
}

fn build(object: &str, op: &str, input: Input<'_>) -> Result<Request, PluginError> {
    build_request(&configured(), object, op, input)
}

fn body(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn payment_create_is_json_with_the_merchant_account_filled_in() {
    let r = build("payment", "create", input(payment())).unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.path, "/payments");
    assert_eq!(r.query, "");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r.headers.is_empty());
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.starts_with(
            r#"{"merchantAccount":"TestMerchant","amount":{"value":1000,"currency":"EUR"}"#
        ),
        "integers stay integers, the script's order is kept: {text}"
    );
    assert_eq!(body(&r)["paymentMethod"]["type"], "scheme");
}

#[test]
fn the_scripts_merchant_account_wins() {
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries.push(("merchantAccount".into(), s("Other")));
    }
    let r = build("payment", "create", input(params)).unwrap();
    assert_eq!(body(&r)["merchantAccount"], "Other");
    // Also when set through `.set`.
    let mut i = input(payment());
    i.extra = map(vec![("merchantAccount", s("ViaSet"))]);
    let r = build("payment", "create", i).unwrap();
    assert_eq!(body(&r)["merchantAccount"], "ViaSet");
}

#[test]
fn a_missing_required_field_is_named() {
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries.retain(|(k, _)| k != "reference");
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::MissingField);
    assert_eq!(err.field.as_deref(), Some("reference"));
    assert!(err.message.contains("`.reference(...)`"), "{}", err.message);

    // Without the setting, merchantAccount is missing, and the message
    // says how to configure it.
    let err =
        build_request(&Settings::default(), "payment", "create", input(payment())).unwrap_err();
    assert_eq!(err.code, ErrorCode::MissingField);
    assert_eq!(err.field.as_deref(), Some("merchantAccount"));
    assert!(
        err.message.contains("ADYEN_MERCHANT_ACCOUNT"),
        "{}",
        err.message
    );
}

#[test]
fn nested_required_fields_are_named_by_path() {
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries[0].1 = map(vec![("value", Value::Int(1000))]);
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::MissingField);
    assert_eq!(err.field.as_deref(), Some("amount.currency"));
}

#[test]
fn kinds_and_enums_are_checked_with_the_field_path() {
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries.push(("shopperInteraction".into(), s("Online")));
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidValue);
    assert_eq!(err.field.as_deref(), Some("shopperInteraction"));
    assert!(err.message.contains("\"Ecommerce\""), "{}", err.message);

    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries.push((
            "lineItems".into(),
            Value::List(vec![map(vec![("quantity", s("two"))])]),
        ));
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidValue);
    assert_eq!(err.field.as_deref(), Some("lineItems[0].quantity"));
    assert!(
        err.message
            .contains("expected an integer, got the string \"two\""),
        "{}",
        err.message
    );

    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries[0].1 = amount(10, "EUR");
        entries[0].1 = map(vec![("value", s("10")), ("currency", s("EUR"))]);
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("amount.value"));
}

#[test]
fn unknown_fields_get_suggestions() {
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries.push(("shopperRefrence".into(), s("x")));
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownField);
    assert!(
        err.message.contains("did you mean `shopperReference`"),
        "{}",
        err.message
    );

    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries[0].1 = map(vec![
            ("value", Value::Int(1)),
            ("currency", s("EUR")),
            ("curency", s("EUR")),
        ]);
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownField);
    assert_eq!(err.field.as_deref(), Some("amount.curency"));
    assert!(
        err.message.contains("(`amount` takes: currency, value;"),
        "{}",
        err.message
    );

    // A long list of fields is cut short.
    let mut params = payment();
    if let Value::Map(entries) = &mut params {
        entries[2].1 = map(vec![("encryptedCardNumbr", s("x"))]);
    }
    let err = build("payment", "create", input(params)).unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("paymentMethod.encryptedCardNumbr")
    );
    assert!(
        err.message.contains("did you mean `encryptedCardNumber`"),
        "{}",
        err.message
    );
    assert!(err.message.contains(" more);"), "{}", err.message);
    assert!(err.message.len() < 1000, "{}", err.message);

    // A field of the object that this operation does not take.
    let err = build(
        "payment_link",
        "update",
        Input {
            id: Some("PL1"),
            ..input(map(vec![("reference", s("r"))]))
        },
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownField);
    assert!(
        err.message.contains("not accepted by `update`"),
        "{}",
        err.message
    );
}

#[test]
fn modifications_go_to_the_parent_payment() {
    let i = Input {
        parent: Some("993617894903480A"),
        ..input(map(vec![("amount", amount(500, "EUR"))]))
    };
    let r = build("payment_capture", "create", i).unwrap();
    assert_eq!(r.path, "/payments/993617894903480A/captures");
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        r#"{"merchantAccount":"TestMerchant","amount":{"value":500,"currency":"EUR"}}"#
    );
    for (object, tail) in [
        ("payment_refund", "refunds"),
        ("payment_amount_update", "amountUpdates"),
    ] {
        let i = Input {
            parent: Some("P/1"),
            ..input(map(vec![("amount", amount(1, "EUR"))]))
        };
        assert_eq!(
            build(object, "create", i).unwrap().path,
            format!("/payments/P%2F1/{tail}")
        );
    }
    for (object, tail) in [
        ("payment_cancel", "cancels"),
        ("payment_reversal", "reversals"),
    ] {
        let i = Input {
            parent: Some("P1"),
            ..input(Value::Null)
        };
        let r = build(object, "create", i).unwrap();
        assert_eq!(r.path, format!("/payments/P1/{tail}"));
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"merchantAccount":"TestMerchant"}"#
        );
    }

    let err = build(
        "payment_capture",
        "create",
        input(map(vec![("amount", amount(1, "EUR"))])),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MissingId);
    assert_eq!(err.field.as_deref(), Some("parent"));
    assert!(err.message.contains(".parent("), "{}", err.message);
    for bad in ["", "..", "a\u{7}b"] {
        let i = Input {
            parent: Some(bad),
            ..input(map(vec![("amount", amount(1, "EUR"))]))
        };
        let err = build("payment_capture", "create", i).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidId, "{bad:?}");
    }
}

#[test]
fn standalone_cancel_by_merchant_reference() {
    let r = build(
        "cancel",
        "create",
        input(map(vec![("paymentReference", s("order-1"))])),
    )
    .unwrap();
    assert_eq!(r.path, "/cancels");
    assert_eq!(body(&r)["paymentReference"], "order-1");
    let err = build("cancel", "create", input(Value::Null)).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("paymentReference"));
}

#[test]
fn payment_links() {
    let r = build(
        "payment_link",
        "create",
        input(map(vec![
            ("amount", amount(4200, "EUR")),
            ("reference", s("r-1")),
        ])),
    )
    .unwrap();
    assert_eq!((r.method, r.path.as_str()), (Method::Post, "/paymentLinks"));

    let get = Input {
        id: Some("PLE83C39B0A0DE0C1E"),
        ..input(Value::Null)
    };
    let r = build("payment_link", "retrieve", get).unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Get, "/paymentLinks/PLE83C39B0A0DE0C1E")
    );
    assert!(r.body.is_empty() && r.content_type.is_none() && r.query.is_empty());

    let patch = Input {
        id: Some("PL1"),
        ..input(map(vec![("status", s("expired"))]))
    };
    let r = build("payment_link", "update", patch).unwrap();
    assert_eq!(r.method, Method::Patch);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        r#"{"status":"expired"}"#
    );

    let err = build("payment_link", "retrieve", input(Value::Null)).unwrap_err();
    assert_eq!((err.code, err.field.clone()), (ErrorCode::MissingId, None));
}

#[test]
fn sessions_and_payment_methods() {
    let r = build(
        "session",
        "create",
        input(map(vec![
            ("amount", amount(100, "EUR")),
            ("reference", s("r")),
            ("returnUrl", s("https://example.org")),
        ])),
    )
    .unwrap();
    assert_eq!(r.path, "/sessions");
    let get = Input {
        id: Some("CS1"),
        ..input(map(vec![("sessionResult", s("a b&c"))]))
    };
    let r = build("session", "retrieve", get).unwrap();
    assert_eq!(r.path, "/sessions/CS1");
    assert_eq!(r.query, "sessionResult=a%20b%26c");

    let r = build(
        "payment_methods",
        "list",
        input(map(vec![("countryCode", s("NL"))])),
    )
    .unwrap();
    assert_eq!(r.path, "/paymentMethods");
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        r#"{"merchantAccount":"TestMerchant","countryCode":"NL"}"#
    );
}

#[test]
fn stored_payment_methods_use_the_query_string() {
    let r = build(
        "stored_payment_method",
        "list",
        input(map(vec![("shopperReference", s("shopper 1"))])),
    )
    .unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Get, "/storedPaymentMethods")
    );
    assert_eq!(
        r.query,
        "merchantAccount=TestMerchant&shopperReference=shopper%201"
    );
    assert!(r.body.is_empty() && r.content_type.is_none());

    let del = Input {
        id: Some("8415"),
        ..input(map(vec![("shopperReference", s("s1"))]))
    };
    let r = build("stored_payment_method", "delete", del).unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Delete, "/storedPaymentMethods/8415")
    );
    assert_eq!(r.query, "merchantAccount=TestMerchant&shopperReference=s1");

    let del = Input {
        id: Some("8415"),
        ..input(Value::Null)
    };
    let err = build("stored_payment_method", "delete", del).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("shopperReference"));

    let mut list = input(map(vec![("shopperReference", s("s1"))]));
    list.extra = map(vec![("x", map(vec![]))]);
    let err = build("stored_payment_method", "list", list).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidValue);
}

#[test]
fn set_reaches_fields_the_schema_does_not_list() {
    let mut i = input(payment());
    i.extra = map(vec![
        ("paymentMethod.holderName", s("J. Smith")),
        ("additionalData[riskdata.basket.item1.sku]", s("SKU-1")),
        ("someFutureField", Value::Int(7)),
    ]);
    let r = build("payment", "create", i).unwrap();
    let b = body(&r);
    assert_eq!(b["paymentMethod"]["holderName"], "J. Smith");
    assert_eq!(b["paymentMethod"]["type"], "scheme");
    assert_eq!(b["additionalData"]["riskdata.basket.item1.sku"], "SKU-1");
    assert_eq!(b["someFutureField"], 7);

    let mut i = input(payment());
    i.extra = map(vec![("a..b", s("x"))]);
    let err = build("payment", "create", i).unwrap_err();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::InvalidValue, Some("a..b"))
    );

    let mut i = input(payment());
    i.extra = map(vec![("x", Value::Float(f64::INFINITY))]);
    let err = build("payment", "create", i).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("x"));
}

#[test]
fn unknown_objects_and_operations() {
    let err = build("paymnet", "create", input(Value::Null)).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownObject);
    assert!(
        err.message.contains("did you mean `payment`"),
        "{}",
        err.message
    );
    let err = build("payment", "capture", input(Value::Null)).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownOperation);
    assert!(
        err.message.contains("operations: create"),
        "{}",
        err.message
    );
}

/// A small deterministic generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Arbitrary node arrays, mostly malformed, some well-formed: decoding and
/// building never panic, and each ends in a request or an error.
#[test]
fn arbitrary_trees_never_panic() {
    let text = "amountvaluecurrencyEURpaymentMethodtypeschemeé€reference";
    let names: Vec<&str> = schema::OBJECTS
        .iter()
        .flat_map(|o| o.operations.iter().map(move |op| (o.name, op.name)))
        .map(|(o, _)| o)
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0;
    for round in 0..20_000u32 {
        let len = rng.below(12) as usize;
        let nodes: Vec<Node> = (0..len)
            .map(|_| {
                let span = |rng: &mut Rng| Span {
                    start: rng.below(text.len() as u64 + 3) as u32,
                    len: rng.below(12) as u32,
                };
                let value = match rng.below(7) {
                    0 => NodeValue::Null,
                    1 => NodeValue::Boolean(rng.below(2) == 0),
                    2 => NodeValue::Integer(rng.next() as i64),
                    3 => NodeValue::Float(f64::from_bits(rng.next())),
                    4 => NodeValue::Text(span(&mut rng)),
                    5 => NodeValue::List(Children {
                        first: rng.below(len as u64 + 2) as u32,
                        count: rng.below(4) as u32,
                    }),
                    _ => NodeValue::Map(Children {
                        first: rng.below(len as u64 + 2) as u32,
                        count: rng.below(4) as u32,
                    }),
                };
                Node {
                    key: span(&mut rng),
                    value,
                }
            })
            .collect();
        let Ok(params) = tree::decode(&Tree {
            nodes,
            text: text.to_string(),
        }) else {
            continue;
        };
        decoded += 1;
        let object = names[round as usize % names.len()];
        let obj = schema::object(object).unwrap();
        let op = &obj.operations[round as usize % obj.operations.len()];
        let i = Input {
            id: Some("X1"),
            parent: Some("P1"),
            params: params.clone(),
            extra: params,
        };
        let _ = build(object, op.name, i);
    }
    assert!(decoded > 1000, "only {decoded} trees were well-formed");
}
