use super::*;
use std::collections::HashSet;

fn check_level(obj: &str, fields: &'static [Field], prefix: &str) {
    let mut names = HashSet::new();
    for f in fields {
        assert!(
            names.insert(f.name),
            "{obj}: duplicate field {prefix}{}",
            f.name
        );
        assert!(!f.doc.is_empty(), "{obj}: {prefix}{} has no doc", f.name);
        assert!(
            !f.doc.contains('\n'),
            "{obj}: {prefix}{} doc is not one line",
            f.name
        );
        let container = matches!(f.kind, Kind::Object | Kind::ObjectList);
        assert_eq!(
            container,
            !f.children.is_empty(),
            "{obj}: {prefix}{} children vs kind",
            f.name
        );
        if !f.allowed.is_empty() {
            assert_eq!(f.kind, Kind::Text, "{obj}: {prefix}{} enum kind", f.name);
        }
        check_level(obj, f.children, &format!("{prefix}{}.", f.name));
    }
}

#[test]
fn schema_is_consistent() {
    let mut objects = HashSet::new();
    for o in OBJECTS {
        assert!(objects.insert(o.name), "duplicate object {}", o.name);
        check_level(o.name, o.fields, "");
        let mut ops = HashSet::new();
        let mut used = HashSet::new();
        for op in o.operations {
            assert!(ops.insert(op.name), "{}: duplicate op {}", o.name, op.name);
            assert!(op.path.starts_with("/v1/"), "{}.{}", o.name, op.name);
            assert!(!op.path.contains('?') && !op.path.contains(".."));
            assert_eq!(op.needs_id, op.path.contains("{id}"));
            assert!(
                op.accepts.contains(&"expand"),
                "{}.{} must accept expand",
                o.name,
                op.name
            );
            let mut seen = HashSet::new();
            for a in op.accepts {
                assert!(seen.insert(*a), "{}.{}: {a} twice", o.name, op.name);
                assert!(
                    o.field(a).is_some(),
                    "{}.{} accepts unknown field {a}",
                    o.name,
                    op.name
                );
                used.insert(*a);
            }
            if op.name == "retrieve" {
                assert_eq!(op.accepts, &["expand"]);
            }
        }
        for f in o.fields {
            assert!(
                used.contains(f.name),
                "{}: field {} is accepted by no operation",
                o.name,
                f.name
            );
        }
    }
}

#[test]
fn required_objects_and_operations() {
    let required: &[(&str, &[&str])] = &[
        (
            "payment_intent",
            &[
                "create", "retrieve", "update", "confirm", "cancel", "capture", "list",
            ],
        ),
        (
            "customer",
            &["create", "retrieve", "update", "delete", "list"],
        ),
        (
            "product",
            &["create", "retrieve", "update", "delete", "list"],
        ),
        ("price", &["create", "retrieve", "update", "list"]),
        (
            "subscription",
            &["create", "retrieve", "update", "cancel", "list"],
        ),
        ("coupon", &["create", "retrieve", "delete"]),
        ("refund", &["create", "retrieve"]),
        ("payment_method", &["create", "attach", "detach"]),
        ("setup_intent", &["create", "confirm"]),
    ];
    for (name, ops) in required {
        let o = object(name).unwrap_or_else(|| panic!("missing object {name}"));
        for op in *ops {
            assert!(o.operation(op).is_some(), "missing {name}.{op}");
        }
    }
}

#[test]
fn real_paths_and_methods() {
    let check = |o: &str, op: &str, method: Method, path: &str| {
        let operation = object(o).unwrap().operation(op).unwrap();
        assert_eq!(
            (operation.method, operation.path),
            (method, path),
            "{o}.{op}"
        );
    };
    check(
        "payment_intent",
        "create",
        Method::Post,
        "/v1/payment_intents",
    );
    check(
        "payment_intent",
        "confirm",
        Method::Post,
        "/v1/payment_intents/{id}/confirm",
    );
    check("payment_intent", "list", Method::Get, "/v1/payment_intents");
    check("customer", "delete", Method::Delete, "/v1/customers/{id}");
    check(
        "subscription",
        "cancel",
        Method::Delete,
        "/v1/subscriptions/{id}",
    );
    check(
        "payment_method",
        "attach",
        Method::Post,
        "/v1/payment_methods/{id}/attach",
    );
    check(
        "setup_intent",
        "confirm",
        Method::Post,
        "/v1/setup_intents/{id}/confirm",
    );
}

#[test]
fn flat_names() {
    let names: Vec<String> = object("subscription")
        .unwrap()
        .flat_fields()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for want in [
        "items",
        "items[].price",
        "items[].plan",
        "items[].quantity",
        "items[].metadata",
    ] {
        assert!(names.iter().any(|n| n == want), "missing {want}");
    }
    let names: Vec<String> = object("price")
        .unwrap()
        .flat_fields()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let i = names.iter().position(|n| n == "recurring").unwrap();
    assert_eq!(names[i + 1], "recurring.interval");
    let names: Vec<String> = object("payment_intent")
        .unwrap()
        .flat_fields()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.iter().any(|n| n == "shipping.address.postal_code"));
    assert!(
        names
            .iter()
            .any(|n| n == "automatic_payment_methods.enabled")
    );
}

/// Checks one level: required children only in nested objects.
fn nested_required(fields: &'static [Field], top: bool, out: &mut Vec<String>, prefix: &str) {
    for f in fields {
        let name = format!("{prefix}{}", f.name);
        if f.required {
            assert!(!top, "top-level field {name} is marked required");
            out.push(name.clone());
        }
        let child_prefix = match f.kind {
            Kind::ObjectList => format!("{name}[]."),
            _ => format!("{name}."),
        };
        nested_required(f.children, false, out, &child_prefix);
    }
}

#[test]
fn required_fields_are_stripes() {
    let mut all = Vec::new();
    for o in OBJECTS {
        for op in o.operations {
            assert!(!op.needs_parent, "{}.{} has a parent", o.name, op.name);
            for r in op.required {
                assert!(
                    op.accepts(r),
                    "{}.{} requires {r} but does not accept it",
                    o.name,
                    op.name
                );
            }
            if !op.required.is_empty() {
                all.push(format!("{}.{}: {}", o.name, op.name, op.required.join(",")));
            }
        }
    }
    // The parameters Stripe's API reference marks "Required" (and the
    // official SDKs type as non-optional) for these operations.
    assert_eq!(
        all,
        [
            "payment_intent.create: amount,currency",
            "product.create: name",
            "price.create: currency",
            "subscription.create: customer",
            "payment_method.attach: customer",
        ]
    );
    let nested = |name: &str| {
        let mut out = Vec::new();
        nested_required(object(name).unwrap().fields, true, &mut out, "");
        out
    };
    assert_eq!(
        nested("payment_intent"),
        [
            "automatic_payment_methods.enabled",
            "shipping.name",
            "shipping.address"
        ]
    );
    assert_eq!(nested("customer"), ["shipping.name", "shipping.address"]);
    assert_eq!(nested("price"), ["product_data.name", "recurring.interval"]);
    assert_eq!(
        nested("product"),
        [
            "default_price_data.currency",
            "default_price_data.recurring.interval"
        ]
    );
    assert_eq!(
        nested("setup_intent"),
        ["automatic_payment_methods.enabled"]
    );
    // Alternatives are not unconditional: a subscription item takes a price,
    // a plan or price data; a refund a charge or a payment intent.
    for name in ["subscription", "refund", "coupon", "payment_method"] {
        assert!(nested(name).is_empty(), "{name}: {:?}", nested(name));
    }
}

#[test]
fn lookup_tables_agree_with_the_lists() {
    for o in OBJECTS {
        for (i, f) in o.fields.iter().enumerate() {
            let (at, found) = o.field_at(f.name).expect(f.name);
            assert_eq!((at, found.name), (i, f.name), "{}.{}", o.name, f.name);
        }
        for missing in ["", "x", "amounts", "amoun", "idx", "expand_", "metadata[k]"] {
            assert!(o.field(missing).is_none(), "{}: {missing:?}", o.name);
        }
        for op in o.operations {
            let mask = o.accept_mask(op);
            for (i, f) in o.fields.iter().enumerate() {
                assert_eq!(
                    mask & (1 << i) != 0,
                    op.accepts(f.name),
                    "{}.{} and {}",
                    o.name,
                    op.name,
                    f.name
                );
            }
        }
    }
}

/// The encoder writes schema field names without quoting them
/// (`Seg::Field`): they must need none.
#[test]
fn field_names_need_no_quoting() {
    fn check(fields: &[Field]) {
        for f in fields {
            assert!(
                !f.name.is_empty()
                    && f.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "field name {:?} needs quoting",
                f.name
            );
            check(f.children);
        }
    }
    for o in OBJECTS {
        check(o.fields);
    }
}
