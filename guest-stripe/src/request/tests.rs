use super::*;

fn s(v: &str) -> Value {
    Value::Str(v.into())
}
fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}
fn empty() -> Value {
    Value::Map(vec![])
}
fn body(r: &Request) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn create_payment_intent() {
    let params = map(vec![
        ("amount", Value::Int(2000)),
        ("currency", s("usd")),
        ("customer", s("cus_customer123")),
    ]);
    let r = build_request("payment_intent", "create", None, &params, &empty()).unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.path, "/v1/payment_intents");
    assert_eq!(r.query, "");
    assert!(r.headers.is_empty());
    assert_eq!(r.content_type.as_deref(), Some(FORM_CONTENT_TYPE));
    assert_eq!(
        body(&r),
        "amount=2000&currency=usd&customer=cus_customer123"
    );
}

#[test]
fn params_then_extra() {
    let params = map(vec![("amount", Value::Int(1))]);
    let extra = map(vec![(
        "payment_method_options",
        map(vec![(
            "card",
            map(vec![("request_three_d_secure", s("any"))]),
        )]),
    )]);
    let r = build_request("payment_intent", "create", None, &params, &extra).unwrap();
    assert_eq!(
        body(&r),
        "amount=1&payment_method_options[card][request_three_d_secure]=any"
    );
    let r = build_request("payment_intent", "create", None, &empty(), &extra).unwrap();
    assert_eq!(
        body(&r),
        "payment_method_options[card][request_three_d_secure]=any"
    );
    let r = build_request("payment_intent", "create", None, &params, &Value::Null).unwrap();
    assert_eq!(body(&r), "amount=1");
}

#[test]
fn empty_body_has_no_content_type() {
    let r = build_request("payment_method", "detach", Some("pm_1"), &empty(), &empty()).unwrap();
    assert_eq!(r.path, "/v1/payment_methods/pm_1/detach");
    assert!(r.body.is_empty());
    assert_eq!(r.content_type, None);
}

#[test]
fn get_and_delete_use_the_query() {
    let params = map(vec![(
        "expand",
        Value::List(vec![s("customer"), s("latest_charge")]),
    )]);
    let r = build_request(
        "payment_intent",
        "retrieve",
        Some("pi_123"),
        &params,
        &empty(),
    )
    .unwrap();
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.path, "/v1/payment_intents/pi_123");
    assert_eq!(r.query, "expand[0]=customer&expand[1]=latest_charge");
    assert!(r.body.is_empty());
    assert_eq!(r.content_type, None);

    let r = build_request("customer", "delete", Some("cus_1"), &empty(), &empty()).unwrap();
    assert_eq!(
        (r.method, r.path.as_str(), r.query.as_str()),
        (Method::Delete, "/v1/customers/cus_1", "")
    );

    let params = map(vec![("invoice_now", Value::Bool(true))]);
    let r = build_request("subscription", "cancel", Some("sub_1"), &params, &empty()).unwrap();
    assert_eq!(
        (r.method, r.path.as_str(), r.query.as_str()),
        (
            Method::Delete,
            "/v1/subscriptions/sub_1",
            "invoice_now=true"
        )
    );

    let params = map(vec![
        ("customer", s("cus_1")),
        ("limit", Value::Int(3)),
        ("created", map(vec![("gte", Value::Int(1_700_000_000))])),
    ]);
    let r = build_request("payment_intent", "list", None, &params, &empty()).unwrap();
    assert_eq!(r.path, "/v1/payment_intents");
    assert_eq!(r.query, "customer=cus_1&limit=3&created[gte]=1700000000");
}

#[test]
fn ids_are_one_encoded_segment() {
    let r = build_request(
        "customer",
        "retrieve",
        Some("cus/../x?y#z w%"),
        &empty(),
        &empty(),
    )
    .unwrap();
    assert_eq!(r.path, "/v1/customers/cus%2F..%2Fx%3Fy%23z%20w%25");
    let r = build_request("customer", "retrieve", Some("ünï"), &empty(), &empty()).unwrap();
    assert_eq!(r.path, "/v1/customers/%C3%BCn%C3%AF");
    let r = build_request(
        "payment_intent",
        "confirm",
        Some("pi_1"),
        &empty(),
        &empty(),
    )
    .unwrap();
    assert_eq!(r.path, "/v1/payment_intents/pi_1/confirm");
}

#[test]
fn missing_and_invalid_ids() {
    let e = build_request("payment_intent", "confirm", None, &empty(), &empty()).unwrap_err();
    assert_eq!(e.code, ErrorCode::MissingId);
    assert_eq!(e.object, "payment_intent");
    let long = "x".repeat(256);
    for bad in ["", ".", "..", "a\nb", "a\u{7f}", long.as_str()] {
        let e = build_request("customer", "retrieve", Some(bad), &empty(), &empty()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidId, "{bad:?}");
    }
    let ok = "x".repeat(255);
    build_request("customer", "retrieve", Some(&ok), &empty(), &empty()).unwrap();
}

#[test]
fn id_on_create() {
    // An id given for an operation without `{id}` is ignored...
    let r = build_request(
        "customer",
        "create",
        Some("cus_1"),
        &map(vec![("name", s("A"))]),
        &empty(),
    )
    .unwrap();
    assert_eq!(body(&r), "name=A");
    // ...unless the operation takes a custom `id` field.
    let params = map(vec![
        ("percent_off", Value::Int(25)),
        ("duration", s("once")),
    ]);
    let r = build_request("coupon", "create", Some("SUMMER 25"), &params, &empty()).unwrap();
    assert_eq!(body(&r), "id=SUMMER+25&percent_off=25&duration=once");
    // An `id` set in params wins.
    let params = map(vec![("id", s("mine")), ("percent_off", Value::Float(12.5))]);
    let r = build_request("coupon", "create", Some("other"), &params, &empty()).unwrap();
    assert_eq!(body(&r), "id=mine&percent_off=12.5");
}

#[test]
fn unknown_object_and_operation() {
    let e = build_request("payment_intnet", "create", None, &empty(), &empty()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownObject);
    assert!(
        e.message.contains("did you mean `payment_intent`"),
        "{}",
        e.message
    );
    let e = build_request(
        "payment_intent",
        "confrim",
        Some("pi_1"),
        &empty(),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownOperation);
    assert!(
        e.message.contains("did you mean `confirm`?"),
        "{}",
        e.message
    );
    let e = build_request("coupon", "capture", None, &empty(), &empty()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownOperation);
}

#[test]
fn validation_runs_before_encoding() {
    let e = build_request(
        "payment_intent",
        "create",
        None,
        &map(vec![("amout", Value::Int(1))]),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownField);
    // `extra` is not checked against the schema.
    let r = build_request(
        "payment_intent",
        "create",
        None,
        &empty(),
        &map(vec![("amout", Value::Int(1))]),
    )
    .unwrap();
    assert_eq!(body(&r), "amout=1");
    let e = build_request("payment_intent", "create", None, &empty(), &s("x")).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidValue);
}

#[test]
fn from_arena() {
    let params = map(vec![("amount", Value::Int(5)), ("currency", s("eur"))]);
    let r = build_request_from_arena("payment_intent", "create", None, params.to_arena(), vec![])
        .unwrap();
    assert_eq!(body(&r), "amount=5&currency=eur");
    let cyclic = vec![ArenaNode::Map(vec![("metadata".into(), 0)])];
    let e = build_request_from_arena("payment_intent", "create", None, cyclic.clone(), vec![])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert!(e.message.contains("more than once"), "{}", e.message);
    let e = build_request_from_arena("payment_intent", "create", None, vec![], cyclic).unwrap_err();
    assert!(e.message.contains("extra"), "{}", e.message);
}

#[test]
fn subscription_items() {
    let params = map(vec![
        ("customer", s("cus_1")),
        (
            "items",
            Value::List(vec![map(vec![
                ("plan", s("gold")),
                ("quantity", Value::Int(2)),
            ])]),
        ),
        ("trial_end", s("now")),
    ]);
    let r = build_request("subscription", "create", None, &params, &empty()).unwrap();
    assert_eq!(
        body(&r),
        "customer=cus_1&items[0][plan]=gold&items[0][quantity]=2&trial_end=now"
    );
}
