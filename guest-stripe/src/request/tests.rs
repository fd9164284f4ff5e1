use super::*;
use crate::tree::{RawNode, RawValue, Span, Tree};
use crate::value::Value;

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
    let params = map(vec![("amount", Value::Int(1)), ("currency", s("usd"))]);
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
        "amount=1&currency=usd&payment_method_options[card][request_three_d_secure]=any"
    );
    // Customers need no field: extra alone.
    let r = build_request("customer", "create", None, &empty(), &extra).unwrap();
    assert_eq!(
        body(&r),
        "payment_method_options[card][request_three_d_secure]=any"
    );
    let r = build_request("payment_intent", "create", None, &params, &Value::Null).unwrap();
    assert_eq!(body(&r), "amount=1&currency=usd");
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
        "customer",
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

/// An empty node list (an empty map).
const NO_NODES: &[RawNode] = &[];

fn pi_params() -> Value {
    map(vec![("amount", Value::Int(5)), ("currency", s("eur"))])
}

fn target<'s>(object: &'s str, operation: &'s str) -> Target<'s> {
    Target {
        object,
        operation,
        id: None,
        parent: None,
    }
}

#[test]
fn from_tree_matches_the_owned_path() {
    let params = map(vec![
        ("amount", Value::Int(2000)),
        ("currency", s("usd")),
        ("description", s("Order #42 — 2 items")),
        (
            "metadata",
            map(vec![("order_id", s("42")), ("n", Value::Int(1))]),
        ),
        ("payment_method_types", Value::List(vec![s("card")])),
        (
            "shipping",
            map(vec![
                ("name", s("Zoë")),
                ("address", map(vec![("line1", s("1 Main St"))])),
            ]),
        ),
    ]);
    let extra = map(vec![(
        "payment_method_options[card][moto]",
        Value::Bool(true),
    )]);
    let owned = build_request("payment_intent", "create", None, &params, &extra).unwrap();
    let (p, e) = (Tree::from_value(&params), Tree::from_value(&extra));
    let viewed = build_request_from_tree(
        &Config::default(),
        target("payment_intent", "create"),
        (&p.nodes, &p.text),
        (&e.nodes, &e.text),
    )
    .unwrap();
    assert_eq!(viewed, owned);
    // Empty extra: no nodes at all.
    let viewed = build_request_from_tree(
        &Config::default(),
        target("payment_intent", "create"),
        (&p.nodes, &p.text),
        (NO_NODES, ""),
    )
    .unwrap();
    assert_eq!(
        viewed.body,
        build_request("payment_intent", "create", None, &params, &empty())
            .unwrap()
            .body
    );
}

#[test]
fn malformed_trees_are_refused() {
    let good = Tree::from_value(&pi_params());
    // The root's run starts at node 0: a cycle.
    let cyclic = [RawNode {
        key: Span::default(),
        value: RawValue::Map { first: 0, count: 1 },
    }];
    let e = build_request_from_tree(
        &Config::default(),
        target("payment_intent", "create"),
        (&cyclic, ""),
        (NO_NODES, ""),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::MalformedTree);
    assert_eq!(e.object, "payment_intent");
    assert!(
        e.message.starts_with("malformed parameter tree: "),
        "{}",
        e.message
    );
    let e = build_request_from_tree(
        &Config::default(),
        target("payment_intent", "create"),
        (&good.nodes, &good.text),
        (&cyclic, ""),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::MalformedTree);
    assert!(e.message.contains("extra"), "{}", e.message);
    // A string span past the text.
    let mut short = good.clone();
    short.text.truncate(3);
    let e = build_request_from_tree(
        &Config::default(),
        target("payment_intent", "create"),
        (&short.nodes, &short.text),
        (NO_NODES, ""),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::MalformedTree);
}

#[test]
fn missing_required_fields() {
    let e = build_request(
        "payment_intent",
        "create",
        None,
        &map(vec![("amount", Value::Int(5))]),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::MissingField);
    assert_eq!(e.object, "payment_intent");
    assert_eq!(e.field.as_deref(), Some("currency"));
    assert_eq!(
        e.message,
        "payment_intent create needs `currency`: set it with `.currency(...)` first"
    );
    // Null is "not set".
    let e = build_request(
        "payment_intent",
        "create",
        None,
        &map(vec![("amount", Value::Null), ("currency", s("usd"))]),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::MissingField, Some("amount"))
    );
    // Given through `.set(...)`, it is sent all the same.
    let r = build_request(
        "payment_intent",
        "create",
        None,
        &map(vec![("amount", Value::Int(5))]),
        &map(vec![("currency", s("usd"))]),
    )
    .unwrap();
    assert_eq!(body(&r), "amount=5&currency=usd");
    // Other operations need nothing.
    build_request("payment_intent", "list", None, &empty(), &empty()).unwrap();
    build_request("customer", "create", None, &empty(), &empty()).unwrap();
    let e =
        build_request("payment_method", "attach", Some("pm_1"), &empty(), &empty()).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("customer"));
    // Validation errors come first: a misspelt required field says so.
    let e = build_request(
        "product",
        "create",
        None,
        &map(vec![("nmae", s("T-shirt"))]),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownField);
    assert!(e.message.contains("did you mean `name`"), "{}", e.message);
}

#[test]
fn nested_required_fields() {
    let e = build_request(
        "price",
        "create",
        None,
        &map(vec![
            ("currency", s("usd")),
            ("recurring", map(vec![("interval_count", Value::Int(3))])),
        ]),
        &empty(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::MissingField);
    assert_eq!(e.field.as_deref(), Some("recurring.interval"));
    assert_eq!(
        e.message,
        "price is missing `recurring.interval`, which `recurring` must have when it is given"
    );
    // A list filter on `recurring` needs no interval.
    let r = build_request(
        "price",
        "list",
        None,
        &map(vec![("recurring", map(vec![("usage_type", s("metered"))]))]),
        &empty(),
    )
    .unwrap();
    assert_eq!(r.query, "recurring[usage_type]=metered");
    // `items[].price` is not required (a plan or price data may stand in).
    build_request(
        "subscription",
        "create",
        None,
        &map(vec![
            ("customer", s("cus_1")),
            ("items", Value::List(vec![map(vec![("plan", s("gold"))])])),
        ]),
        &empty(),
    )
    .unwrap();
}

#[test]
fn settings_become_headers() {
    let config = Config::from_settings(&[
        ("api_version".to_string(), "2024-06-20".to_string()),
        ("account".to_string(), "acct_123".to_string()),
    ])
    .unwrap();
    let t = Tree::from_value(&pi_params());
    for (object, operation, id) in [
        ("payment_intent", "create", None),
        ("payment_intent", "retrieve", Some("pi_1")),
        ("customer", "delete", Some("cus_1")),
    ] {
        let r = build_request_from_tree(
            &config,
            Target {
                object,
                operation,
                id,
                parent: None,
            },
            if operation == "create" {
                (&t.nodes, &t.text)
            } else {
                (NO_NODES, "")
            },
            (NO_NODES, ""),
        )
        .unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("Stripe-Version".to_string(), "2024-06-20".to_string()),
                ("Stripe-Account".to_string(), "acct_123".to_string()),
            ],
            "{object} {operation}"
        );
    }
    let r = build_request("payment_intent", "create", None, &pi_params(), &empty()).unwrap();
    assert!(r.headers.is_empty());
}

#[test]
fn parent_ids() {
    // No Stripe operation here has a `{parent}`: a given parent is ignored.
    let r = build_request_with(
        &Config::default(),
        Target {
            object: "refund",
            operation: "retrieve",
            id: Some("re_1"),
            parent: Some("pi_1"),
        },
        &empty(),
        &empty(),
    )
    .unwrap();
    assert_eq!(r.path, "/v1/refunds/re_1");
    // The template filler handles both placeholders, each one segment.
    assert_eq!(
        fill_path("/v1/a/{parent}/b/{id}/c", Some("x y"), Some("p/1")),
        "/v1/a/p%2F1/b/x%20y/c"
    );
    assert_eq!(fill_path("/v1/{odd}", None, None), "/v1/{odd}");
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
