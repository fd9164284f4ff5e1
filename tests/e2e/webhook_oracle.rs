//! The webhook oracle (tests/servers/webhook_oracle.py) runs, and its
//! libraries say what the webhook tests will rely on: stripe-python signs a
//! payload and accepts it back, and refuses it tampered, stale, unsigned or
//! signed with another secret; Adyen's library signs notification items built
//! from the examples of Adyen's Webhooks spec (tests/data/adyen) and accepts
//! them back, and refuses each with one signed field altered. It also checks
//! that guest-adyen's unit vectors (tests/data/adyen/webhook-vectors.json)
//! and guest-stripe's header cases (tests/data/stripe/signature-headers.json)
//! are still what the libraries compute, so the plugins' native tests stay
//! tied to the oracle.
//!
//! Only the oracle is exercised here; the tests that drive `payhost serve`
//! with these signatures belong with the server.

use payhost_e2e::webhook_oracle;
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_oracle";
const PAYLOAD: &str = r#"{"id": "evt_1", "object": "event", "type": "customer.created", "created": 1700000000, "data": {"object": {"id": "cus_1"}}}"#;

fn vendored(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn stripe_header(payload: &str, secret: &str, timestamp: i64) -> String {
    let signed = webhook_oracle(
        "stripe-sign",
        &json!({"payload": payload, "secret": secret, "timestamp": timestamp}),
    );
    signed["header"].as_str().unwrap().to_string()
}

#[test]
fn stripe_python_accepts_what_it_signed_and_nothing_altered() {
    let header = stripe_header(PAYLOAD, SECRET, 1_700_000_000);
    assert!(header.starts_with("t=1700000000,v1="), "{header}");
    let signature = header.split_once(",v1=").unwrap().1;
    let case = |payload: &str, header: Option<&str>, secret: &str, tolerance: i64| json!({"payload": payload, "header": header, "secret": secret, "tolerance": tolerance});
    let tampered = PAYLOAD.replace("cus_1", "cus_2");
    let upper = format!("t=1700000000,v1={}", signature.to_uppercase());
    let second_of_two = format!("t=1700000000,v1={},v1={signature}", "0".repeat(64));
    let cases = [
        // Tolerance 0 turns the timestamp check off, so the fixed timestamp
        // above does not make the verdicts depend on the clock.
        (case(PAYLOAD, Some(&header), SECRET, 0), true),
        (case(PAYLOAD, Some(&second_of_two), SECRET, 0), true),
        (case(&tampered, Some(&header), SECRET, 0), false),
        (case(PAYLOAD, Some(&header), "whsec_other", 0), false),
        (case(PAYLOAD, None, SECRET, 0), false),
        (case(PAYLOAD, Some(&upper), SECRET, 0), false),
        // Signed in 2023: far outside a 300 s tolerance.
        (case(PAYLOAD, Some(&header), SECRET, 300), false),
    ];
    let input = json!({"cases": cases.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()});
    let results = webhook_oracle("stripe-verify", &input);
    let results = results["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for (index, ((_, accepted), result)) in cases.iter().zip(results).enumerate() {
        assert_eq!(
            result["accepted"],
            json!(accepted),
            "case {index}: {result}"
        );
        assert_eq!(
            result["error"].is_null(),
            *accepted,
            "case {index}: {result}"
        );
    }
    assert!(
        results[6]["error"].as_str().unwrap().contains("tolerance"),
        "{}",
        results[6]
    );
}

#[test]
fn adyens_library_accepts_what_it_signed_and_refuses_any_field_altered() {
    let key = payhost_e2e::ADYEN_TEST_HMAC_KEY;
    let items = payhost_e2e::adyen_example_items();
    assert!(items.len() > 35, "{}", items.len());
    let signed = webhook_oracle("adyen-sign", &json!({"key_hex": key, "items": items}));
    let signed = signed["items"].as_array().unwrap().clone();
    let verdicts = webhook_oracle("adyen-verify", &json!({"key_hex": key, "items": signed}));
    assert!(
        verdicts["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v == true),
        "{verdicts}"
    );

    // One signed field altered per copy of the first item; an unsigned one
    // (`reason`) altered changes nothing.
    let base = &signed[0];
    let mut altered = Vec::new();
    for (path, value) in [
        ("pspReference", json!("X")),
        ("merchantAccountCode", json!("X")),
        ("merchantReference", json!("X")),
        ("eventCode", json!("CAPTURE")),
        ("success", json!("false")),
        ("reason", json!("not signed")),
    ] {
        let mut item = base.clone();
        item[path] = value;
        altered.push(item);
    }
    let mut item = base.clone();
    item["amount"]["value"] = json!(1001);
    altered.push(item);
    let mut item = base.clone();
    item["amount"]["currency"] = json!("USD");
    altered.push(item);
    let verdicts = webhook_oracle("adyen-verify", &json!({"key_hex": key, "items": altered}));
    assert_eq!(
        verdicts["results"],
        json!([false, false, false, false, false, true, false, false]),
        "{verdicts}"
    );
    // The wrong key refuses everything.
    let other = "00".repeat(32);
    let verdicts = webhook_oracle("adyen-verify", &json!({"key_hex": other, "items": [base]}));
    assert_eq!(verdicts["results"], json!([false]));
}

#[test]
fn guest_adyens_vectors_are_what_adyens_library_computes() {
    let vectors = vendored("adyen/webhook-vectors.json");
    let key = vectors["key_hex"].clone();
    let cases = vectors["cases"].as_array().unwrap();
    let items: Vec<Value> = cases.iter().map(|c| c["item"].clone()).collect();
    let messages = webhook_oracle(
        "adyen-signing-strings",
        &json!({"key_hex": key, "items": items}),
    );
    let signed = webhook_oracle("adyen-sign", &json!({"key_hex": key, "items": items}));
    for (index, case) in cases.iter().enumerate() {
        assert_eq!(
            messages["messages"][index], case["message"],
            "{}",
            case["name"]
        );
        assert_eq!(
            signed["items"][index]["additionalData"]["hmacSignature"], case["hmacSignature"],
            "{}",
            case["name"]
        );
    }
}

#[test]
fn guest_stripes_header_cases_are_how_stripe_python_reads_them() {
    let cases = vendored("stripe/signature-headers.json");
    let cases = cases["cases"].as_array().unwrap();
    let headers: Vec<&Value> = cases.iter().map(|c| &c["header"]).collect();
    let read = webhook_oracle("stripe-parse-headers", &json!({ "headers": headers }));
    let read = read["results"].as_array().unwrap();
    assert_eq!(read.len(), cases.len());
    for (case, result) in cases.iter().zip(read) {
        for key in ["ok", "timestamp", "signatures"] {
            assert_eq!(result[key], case[key], "{key} of {}", case["header"]);
        }
    }
}
