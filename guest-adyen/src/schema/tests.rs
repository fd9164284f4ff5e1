//! The schema against the spec it was generated from (the vendored copy in
//! tests/data/adyen): a stale `generated.rs` or a generator bug fails here.

use super::*;
use serde_json::Value as Json;

fn spec() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/adyen/CheckoutService-v71.json"
    );
    let text = std::fs::read_to_string(path).expect("the vendored Adyen spec");
    serde_json::from_str(&text).unwrap()
}

fn deref<'a>(spec: &'a Json, mut sc: &'a Json) -> &'a Json {
    while let Some(r) = sc.get("$ref").and_then(Json::as_str) {
        let name = r.rsplit('/').next().unwrap();
        sc = &spec["components"]["schemas"][name];
    }
    sc
}

/// The spec operation behind one of ours: same method, and the same path
/// once parameters are renamed (`{linkId}` -> `{id}`, `{paymentPspReference}`
/// -> `{parent}`).
fn spec_operation<'a>(spec: &'a Json, op: &Operation) -> &'a Json {
    let method = format!("{:?}", op.method).to_lowercase();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let normalised = path
            .replace("{paymentPspReference}", "{parent}")
            .replace("{linkId}", "{id}")
            .replace("{sessionId}", "{id}")
            .replace("{storedPaymentMethodId}", "{id}");
        if normalised == op.path
            && let Some(found) = item.get(&method)
        {
            return found;
        }
    }
    panic!("no spec operation for {} {}", method, op.path);
}

#[test]
fn operations_accept_and_require_what_the_spec_says() {
    let spec = spec();
    for object in OBJECTS {
        for op in object.operations {
            let found = spec_operation(&spec, op);
            let (accepts, required): (Vec<String>, Vec<String>) =
                match found.pointer("/requestBody/content/application~1json/schema") {
                    Some(schema) => {
                        let sc = deref(&spec, schema);
                        let props = sc["properties"]
                            .as_object()
                            .unwrap()
                            .keys()
                            .cloned()
                            .collect();
                        let required = sc["required"]
                            .as_array()
                            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                            .unwrap_or_default();
                        (props, required)
                    }
                    None => {
                        let query: Vec<&Json> = found["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|p| p["in"] == "query")
                            .collect();
                        (
                            query
                                .iter()
                                .map(|p| p["name"].as_str().unwrap().to_string())
                                .collect(),
                            query
                                .iter()
                                .filter(|p| p["required"] == true)
                                .map(|p| p["name"].as_str().unwrap().to_string())
                                .collect(),
                        )
                    }
                };
            let label = format!("{} {}", object.name, op.name);
            assert_eq!(op.accepts, accepts.as_slice(), "{label}: accepts");
            assert_eq!(op.required, required.as_slice(), "{label}: required");
            let fills = op
                .filled_by
                .contains(&("merchantAccount", "merchant_account"));
            let required = op.required.contains(&"merchantAccount");
            assert_eq!(
                fills, required,
                "{label}: filled-by lists the required merchantAccount"
            );
            assert!(
                op.path.starts_with('/') && !op.path.contains(".."),
                "{label}"
            );
            assert_eq!(op.needs_id, op.path.contains("{id}"), "{label}");
            assert_eq!(op.needs_parent, op.path.contains("{parent}"), "{label}");
            for field in op.accepts {
                assert!(object.field(field).is_some(), "{label}: no field {field}");
            }
        }
    }
}

#[test]
fn enums_and_nested_required_flags_come_from_the_spec() {
    let spec = spec();
    let payment = &spec["components"]["schemas"]["PaymentRequest"]["properties"];
    let object = OBJECTS.iter().find(|o| o.name == "payment").unwrap();
    let interaction = object.field("shopperInteraction").unwrap();
    let wanted: Vec<&str> = payment["shopperInteraction"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(interaction.allowed, wanted.as_slice());

    let amount = object.field("amount").unwrap();
    assert_eq!(amount.kind, Kind::Object);
    let value = find_field(amount.children, "value").unwrap();
    let currency = find_field(amount.children, "currency").unwrap();
    assert_eq!((value.kind, value.required), (Kind::Integer, true));
    assert_eq!((currency.kind, currency.required), (Kind::Text, true));

    let method = object.field("paymentMethod").unwrap();
    let kind = find_field(method.children, "type").unwrap();
    assert!(kind.allowed.contains(&"scheme") && kind.allowed.contains(&"ideal"));
    for card in [
        "encryptedCardNumber",
        "encryptedExpiryMonth",
        "encryptedExpiryYear",
        "encryptedSecurityCode",
        "holderName",
        "storedPaymentMethodId",
    ] {
        assert!(
            find_field(method.children, card).is_some(),
            "paymentMethod.{card}"
        );
    }
    assert_eq!(object.field("lineItems").unwrap().kind, Kind::ObjectList);
    assert_eq!(object.field("metadata").unwrap().kind, Kind::StringMap);
    assert_eq!(object.field("billingAddress").unwrap().kind, Kind::Object);
}

#[test]
fn names_are_unique_and_flat_names_follow_the_contract() {
    for object in OBJECTS {
        let flat = object.flat_fields();
        let mut names: Vec<&str> = flat.iter().map(|(n, _)| n.as_str()).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total, "{}: duplicate field names", object.name);
        assert!(
            flat.iter().any(|(n, _)| n == "amount.currency") || object.field("amount").is_none()
        );
        for (name, field) in &flat {
            if !name.contains('.') {
                assert!(
                    !field.required,
                    "{}: top-level {name} marked required",
                    object.name
                );
            }
        }
        assert!(
            object
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        );
    }
    let names: Vec<&str> = OBJECTS.iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        [
            "payment",
            "payment_details",
            "payment_capture",
            "payment_refund",
            "payment_cancel",
            "payment_reversal",
            "payment_amount_update",
            "cancel",
            "payment_link",
            "session",
            "payment_methods",
            "stored_payment_method"
        ]
    );
}
