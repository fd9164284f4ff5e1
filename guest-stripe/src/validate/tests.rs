use super::*;
use crate::schema::object;
use crate::value::Value;

fn s(v: &str) -> Value {
    Value::Str(v.into())
}
fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn run(obj: &str, op: &str, params: Value) -> Result<(), PluginError> {
    let o = object(obj).unwrap();
    validate_params(o, o.operation(op).unwrap(), &params)
}

fn err(obj: &str, op: &str, params: Value) -> PluginError {
    run(obj, op, params).expect_err("expected a validation error")
}

#[test]
fn valid_payment_intent() {
    run(
        "payment_intent",
        "create",
        map(vec![
            ("amount", Value::Int(2000)),
            ("currency", s("usd")),
            ("customer", s("cus_1")),
            (
                "metadata",
                map(vec![
                    ("n", Value::Int(1)),
                    ("b", Value::Bool(true)),
                    ("f", Value::Float(1.5)),
                    ("s", s("x")),
                ]),
            ),
            ("payment_method_types", Value::List(vec![s("card")])),
            ("capture_method", s("manual")),
            (
                "automatic_payment_methods",
                map(vec![
                    ("enabled", Value::Bool(true)),
                    ("allow_redirects", s("never")),
                ]),
            ),
            (
                "shipping",
                map(vec![
                    ("name", s("A")),
                    ("address", map(vec![("line1", s("1 Main"))])),
                ]),
            ),
            ("description", Value::Null),
            ("expand", Value::List(vec![s("customer")])),
        ]),
    )
    .unwrap();
    run("payment_intent", "create", Value::Null).unwrap();
    run("payment_intent", "create", map(vec![])).unwrap();
}

#[test]
fn unknown_field_with_suggestion() {
    let e = err(
        "payment_intent",
        "create",
        map(vec![("amout", Value::Int(1))]),
    );
    assert_eq!(e.code, ErrorCode::UnknownField);
    assert_eq!(e.object, "payment_intent");
    assert_eq!(e.field.as_deref(), Some("amout"));
    assert_eq!(
        e.message,
        "payment_intent has no field `amout` (did you mean `amount`?)"
    );
    let e = err("customer", "create", map(vec![("zzzzzzzz", s("x"))]));
    assert_eq!(e.message, "customer has no field `zzzzzzzz`");
}

#[test]
fn field_not_accepted_by_operation() {
    let e = err(
        "payment_intent",
        "cancel",
        map(vec![("amount", Value::Int(5))]),
    );
    assert_eq!(e.code, ErrorCode::UnknownField);
    assert_eq!(e.field.as_deref(), Some("amount"));
    assert!(e.message.contains("`amount`"), "{}", e.message);
    assert!(e.message.contains("`cancel`"), "{}", e.message);
    assert!(
        e.message.contains("cancellation_reason, expand"),
        "{}",
        e.message
    );
    // Null means "not set": no complaint.
    run(
        "payment_intent",
        "cancel",
        map(vec![("amount", Value::Null)]),
    )
    .unwrap();
    // Retrieve takes only expand.
    let e = err("customer", "retrieve", map(vec![("email", s("a@b.c"))]));
    assert_eq!(e.code, ErrorCode::UnknownField);
    run(
        "customer",
        "retrieve",
        map(vec![("expand", Value::List(vec![s("default_source")]))]),
    )
    .unwrap();
}

#[test]
fn wrong_kinds() {
    let e = err("payment_intent", "create", map(vec![("amount", s("12"))]));
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("amount"));
    assert_eq!(
        e.message,
        "invalid value for `amount`: expected a non-negative integer, got the string \"12\""
    );
    let e = err(
        "payment_intent",
        "create",
        map(vec![("amount", Value::Float(12.5))]),
    );
    assert!(e.message.ends_with("got the float 12.5"), "{}", e.message);
    let e = err("payment_intent", "create", map(vec![("confirm", s("yes"))]));
    assert_eq!(
        e.message,
        "invalid value for `confirm`: expected true or false, got the string \"yes\""
    );
    let e = err(
        "payment_intent",
        "create",
        map(vec![("currency", Value::Int(840))]),
    );
    assert_eq!(
        e.message,
        "invalid value for `currency`: expected a string, got the integer 840"
    );
    let e = err(
        "payment_intent",
        "create",
        map(vec![("metadata", Value::List(vec![]))]),
    );
    assert_eq!(e.field.as_deref(), Some("metadata"));
    let e = err(
        "payment_intent",
        "create",
        map(vec![("payment_method_types", s("card"))]),
    );
    assert!(
        e.message.contains("expected a list of strings"),
        "{}",
        e.message
    );
    let e = err(
        "payment_intent",
        "create",
        map(vec![(
            "payment_method_types",
            Value::List(vec![s("card"), Value::Int(3)]),
        )]),
    );
    assert_eq!(e.field.as_deref(), Some("payment_method_types[1]"));
}

#[test]
fn negative_amount() {
    let e = err(
        "payment_intent",
        "create",
        map(vec![("amount", Value::Int(-5))]),
    );
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert_eq!(
        e.message,
        "invalid value for `amount`: expected a non-negative integer, got the integer -5"
    );
    // `integer` fields take any sign.
    run(
        "customer",
        "create",
        map(vec![("balance", Value::Int(-500))]),
    )
    .unwrap();
}

#[test]
fn enum_values() {
    let e = err(
        "payment_intent",
        "create",
        map(vec![("capture_method", s("auto"))]),
    );
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert_eq!(
        e.message,
        "invalid value for `capture_method`: expected one of \"automatic\", \"automatic_async\", \"manual\", got the string \"auto\""
    );
    let e = err(
        "price",
        "create",
        map(vec![("recurring", map(vec![("interval", s("fortnight"))]))]),
    );
    assert_eq!(e.field.as_deref(), Some("recurring.interval"));
    assert!(
        e.message.contains("\"day\", \"week\", \"month\", \"year\""),
        "{}",
        e.message
    );
}

#[test]
fn nested_paths() {
    let items = Value::List(vec![
        map(vec![("price", s("price_1")), ("quantity", Value::Int(1))]),
        map(vec![("price", s("price_2")), ("quantity", s("12"))]),
    ]);
    let e = err(
        "subscription",
        "create",
        map(vec![("customer", s("cus_1")), ("items", items)]),
    );
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("items[1].quantity"));
    assert_eq!(
        e.message,
        "invalid value for `items[1].quantity`: expected a non-negative integer, got the string \"12\""
    );

    let e = err(
        "subscription",
        "create",
        map(vec![(
            "items",
            Value::List(vec![map(vec![("prise", s("p"))])]),
        )]),
    );
    assert_eq!(e.code, ErrorCode::UnknownField);
    assert_eq!(e.field.as_deref(), Some("items[0].prise"));
    assert!(
        e.message.starts_with(
            "subscription has no field `items[0].prise` (did you mean `items[0].price`?)"
        ),
        "{}",
        e.message
    );

    let e = err(
        "subscription",
        "create",
        map(vec![("items", Value::List(vec![s("price_1")]))]),
    );
    assert_eq!(e.field.as_deref(), Some("items[0]"));

    let e = err(
        "payment_intent",
        "create",
        map(vec![(
            "automatic_payment_methods",
            map(vec![("enabled", s("true"))]),
        )]),
    );
    assert_eq!(
        e.field.as_deref(),
        Some("automatic_payment_methods.enabled")
    );

    let e = err(
        "customer",
        "create",
        map(vec![("address", map(vec![("zip", s("94107"))]))]),
    );
    assert_eq!(e.code, ErrorCode::UnknownField);
    assert_eq!(e.field.as_deref(), Some("address.zip"));
    assert!(e.message.contains("postal_code"), "{}", e.message);

    let e = err(
        "payment_intent",
        "create",
        map(vec![(
            "shipping",
            map(vec![("address", map(vec![("city", Value::Int(1))]))]),
        )]),
    );
    assert_eq!(e.field.as_deref(), Some("shipping.address.city"));

    let e = err(
        "subscription",
        "create",
        map(vec![(
            "items",
            Value::List(vec![map(vec![(
                "metadata",
                map(vec![("k", Value::List(vec![]))]),
            )])]),
        )]),
    );
    assert_eq!(e.field.as_deref(), Some("items[0].metadata.k"));
    assert!(
        e.message.contains("a string, number or boolean"),
        "{}",
        e.message
    );
}

#[test]
fn decimals_and_timestamps() {
    for ok in [
        s("12.5"),
        s("12"),
        s("-0.25"),
        s(".5"),
        Value::Int(3),
        Value::Float(25.5),
    ] {
        run("coupon", "create", map(vec![("percent_off", ok)])).unwrap();
    }
    for bad in [
        s("12,5"),
        s("abc"),
        s(""),
        s("1."),
        s("1e5"),
        Value::Float(f64::NAN),
        Value::Bool(true),
    ] {
        let e = err("coupon", "create", map(vec![("percent_off", bad)]));
        assert_eq!(e.field.as_deref(), Some("percent_off"));
    }
    run("subscription", "create", map(vec![("trial_end", s("now"))])).unwrap();
    run(
        "subscription",
        "create",
        map(vec![("trial_end", Value::Int(1_900_000_000))]),
    )
    .unwrap();
    let e = err(
        "subscription",
        "create",
        map(vec![("trial_end", s("tomorrow"))]),
    );
    assert!(e.message.contains("\"now\""), "{}", e.message);
    err(
        "subscription",
        "create",
        map(vec![("trial_end", Value::Int(-1))]),
    );
}

#[test]
fn unsetting_with_empty_string() {
    run("customer", "update", map(vec![("metadata", s(""))])).unwrap();
    run("customer", "update", map(vec![("shipping", s(""))])).unwrap();
    err("customer", "update", map(vec![("metadata", s("x"))]));
    err(
        "payment_intent",
        "create",
        map(vec![(
            "metadata",
            map(vec![("k", Value::Float(f64::INFINITY))]),
        )]),
    );
}

#[test]
fn root_and_extra_structure() {
    let e = err("customer", "create", s("x"));
    assert_eq!(e.code, ErrorCode::InvalidValue);
    let o = object("customer").unwrap();
    validate_extra(o, &map(vec![("anything[goes]", s("x"))])).unwrap();
    validate_extra(o, &Value::Null).unwrap();
    assert_eq!(
        validate_extra(o, &Value::List(vec![])).unwrap_err().code,
        ErrorCode::InvalidValue
    );
}

#[test]
fn long_strings_are_shortened_in_messages() {
    let long = "x".repeat(500);
    let e = err("payment_intent", "create", map(vec![("amount", s(&long))]));
    assert!(e.message.len() < 200, "{}", e.message);
    assert!(e.message.contains("500 characters"));
}
