//! The webhook check against vectors Adyen's own Python library computed
//! (tests/data/adyen/webhook-vectors.json: every notification example of
//! Adyen's Webhooks API spec, then edge cases), and the event mapping.

use serde_json::{Value, json};

use super::*;

const VECTORS: &str = include_str!("../../../tests/data/adyen/webhook-vectors.json");
const EXAMPLES: &str = include_str!("../../../tests/data/adyen/Webhooks-v1-examples.json");

fn delivery(items: &[Value]) -> WebhookRequest {
    let body = json!({
        "live": "false",
        "notificationItems": items
            .iter()
            .map(|item| json!({"NotificationRequestItem": item}))
            .collect::<Vec<_>>(),
    });
    WebhookRequest {
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[test]
fn signing_strings_match_adyens_library_on_every_vector() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() > 40, "{}", cases.len());
    // One delivery with every case as an item: one part per item, in order.
    // Built as text from the items' raw JSON, so that numbers reach the
    // plugin as Python wrote them (a `Value` would turn a huge integer
    // into a float).
    let top: Members = serde_json::from_str(VECTORS).unwrap();
    let raw_cases: Vec<Members> = serde_json::from_str(top["cases"].get()).unwrap();
    let items: Vec<String> = raw_cases
        .iter()
        .map(|case| {
            // The item is a non-empty object: add the signature as its last
            // member (a later `additionalData` replaces an earlier one, as in
            // json.loads; it is not signed).
            let item = case["item"].get();
            let text = item.trim_end().strip_suffix('}').unwrap();
            format!(
                r#"{{"NotificationRequestItem": {text}, "additionalData": {{"hmacSignature": {}}}}}}}"#,
                case["hmacSignature"].get()
            )
        })
        .collect();
    let body = format!(
        r#"{{"live": "false", "notificationItems": [{}]}}"#,
        items.join(",")
    );
    let check = check_webhook(&WebhookRequest {
        headers: Vec::new(),
        body: body.into_bytes(),
    })
    .unwrap();
    assert_eq!(check.algorithm, MacAlgorithm::HmacSha256);
    assert_eq!(check.encoding, SignatureEncoding::Base64);
    assert_eq!(check.timestamp, None);
    assert_eq!(check.parts.len(), cases.len());
    for (case, part) in cases.iter().zip(&check.parts) {
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            String::from_utf8(part.message.clone()).unwrap(),
            case["message"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            part.signatures,
            [case["hmacSignature"].as_str().unwrap()],
            "{name}"
        );
    }
}

#[test]
fn the_vendored_examples_parse_into_events() {
    let examples: Value = serde_json::from_str(EXAMPLES).unwrap();
    let mut count = 0;
    for (name, example) in examples.as_object().unwrap() {
        let body = serde_json::to_vec(&example["value"]).unwrap();
        let request = WebhookRequest {
            headers: Vec::new(),
            body,
        };
        let events = parse_webhook(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
        let items = example["value"]["notificationItems"].as_array().unwrap();
        assert_eq!(events.len(), items.len(), "{name}");
        for (event, item) in events.iter().zip(items) {
            let item = &item["NotificationRequestItem"];
            assert_eq!(event.event_type, item["eventCode"].as_str().unwrap());
            assert_eq!(
                event.id,
                format!(
                    "{}:{}:{}",
                    item["pspReference"].as_str().unwrap(),
                    item["eventCode"].as_str().unwrap(),
                    item["success"].as_str().unwrap()
                )
            );
            let object: Value = serde_json::from_str(&event.object).unwrap();
            assert_eq!(&object, item, "{name}");
            let date = item["eventDate"].as_str().unwrap();
            assert_eq!(event.created, unix_seconds(date), "{name}");
            assert!(event.created.is_some(), "{name}: {date}");
            if date == "2021-01-01T01:00:00+01:00" {
                assert_eq!(event.created, Some(1_609_459_200), "{name}");
            }
            count += 1;
        }
    }
    assert!(count > 35, "{count}");
}

#[test]
fn the_object_is_the_item_text_as_received() {
    let body = br#"{"live":"false","notificationItems":[{"NotificationRequestItem": {"pspReference" : "P", "eventCode":"CAPTURE","success":"false","amount":{"value":1.50,"currency":"EUR"}}}]}"#;
    let events = parse_webhook(&WebhookRequest {
        headers: Vec::new(),
        body: body.to_vec(),
    })
    .unwrap();
    assert_eq!(events[0].id, "P:CAPTURE:false");
    assert_eq!(events[0].created, None);
    assert_eq!(
        events[0].object,
        r#"{"pspReference" : "P", "eventCode":"CAPTURE","success":"false","amount":{"value":1.50,"currency":"EUR"}}"#
    );
}

#[test]
fn bad_deliveries_are_refused_naming_the_problem_never_a_signature() {
    let good = json!({"pspReference": "P", "eventCode": "AUTHORISATION", "success": "true",
        "amount": {"value": 1, "currency": "EUR"}, "additionalData": {"hmacSignature": "c2VjcmV0c2ln"}});
    let mut no_amount = good.clone();
    no_amount.as_object_mut().unwrap().remove("amount");
    let mut no_signature = good.clone();
    no_signature["additionalData"] = json!({"other": 1});
    let mut empty_signature = good.clone();
    empty_signature["additionalData"]["hmacSignature"] = json!("");
    let mut number_signature = good.clone();
    number_signature["additionalData"]["hmacSignature"] = json!(5);
    let mut no_value = good.clone();
    no_value["amount"] = json!({"currency": "EUR"});
    let mut list_field = good.clone();
    list_field["merchantReference"] = json!(["a"]);
    for (items, says) in [
        (
            vec![good.clone(), no_amount],
            "notification item 1: no `amount`",
        ),
        (
            vec![no_signature],
            "item 0: no `additionalData.hmacSignature`",
        ),
        (
            vec![empty_signature],
            "`additionalData.hmacSignature` is empty",
        ),
        (vec![number_signature], "is not a string"),
        (vec![no_value], "no `amount.value`"),
        (vec![list_field], "`merchantReference`: an object or array"),
        (vec![], "`notificationItems` is empty"),
    ] {
        let e = check_webhook(&delivery(&items)).unwrap_err();
        assert!(e.contains(says), "{says}: {e}");
        assert!(!e.contains("c2VjcmV0c2ln"), "{e}");
    }
    for (body, says) in [
        (&b"[accepted]"[..], "not a JSON object"),
        (b"{}", "no `notificationItems`"),
        (br#"{"notificationItems": {}}"#, "not a list"),
        (
            br#"{"notificationItems": [{"Other": {}}]}"#,
            "item 0 has no `NotificationRequestItem`",
        ),
        (
            br#"{"notificationItems": [{"NotificationRequestItem": 5}]}"#,
            "not an object",
        ),
    ] {
        let request = WebhookRequest {
            headers: Vec::new(),
            body: body.to_vec(),
        };
        let e = check_webhook(&request).unwrap_err();
        assert!(e.contains(says), "{says}: {e}");
        let e = parse_webhook(&request).unwrap_err();
        assert!(e.contains(says), "{says}: {e}");
    }
    let e = parse_webhook(&delivery(&[json!({"eventCode": "X", "success": "true"})])).unwrap_err();
    assert!(e.contains("item 0: no `pspReference`"), "{e}");
    let e = parse_webhook(&delivery(&[
        json!({"pspReference": "P", "success": "true"}),
    ]))
    .unwrap_err();
    assert!(e.contains("no `eventCode`"), "{e}");
    let e =
        parse_webhook(&delivery(&[json!({"pspReference": "P", "eventCode": "X"})])).unwrap_err();
    assert!(e.contains("no `success`"), "{e}");
}

#[test]
fn python_str_of_json_scalars() {
    let s = |text: &str| python_str(&RawValue::from_string(text.to_string()).unwrap());
    assert_eq!(s(r#""a:b""#).unwrap(), "a:b");
    assert_eq!(s(r#""\u00e9""#).unwrap(), "é");
    assert_eq!(s("true").unwrap(), "True");
    assert_eq!(s("false").unwrap(), "False");
    assert_eq!(s("null").unwrap(), "None");
    assert_eq!(s("-0").unwrap(), "0");
    assert_eq!(s("0").unwrap(), "0");
    assert_eq!(s("-12").unwrap(), "-12");
    assert_eq!(s("1E2").unwrap(), "100.0");
    assert_eq!(s("-0.0").unwrap(), "-0.0");
    assert_eq!(s("1e400").unwrap(), "inf");
    assert_eq!(s("-1e400").unwrap(), "-inf");
    assert!(s("{}").is_err() && s("[]").is_err());
    assert!(s(&"9".repeat(4301)).is_err());
    assert_eq!(s(&"9".repeat(4300)).unwrap(), "9".repeat(4300));
}

#[test]
fn float_repr_follows_python() {
    for (x, repr) in [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (10.5, "10.5"),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1.5e-5, "1.5e-05"),
        (0.0001, "0.0001"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (1e-310, "1e-310"),
        (f64::MAX, "1.7976931348623157e+308"),
        (-2.5, "-2.5"),
        (1e22, "1e+22"),
        (9999999999999998.0, "9999999999999998.0"),
    ] {
        assert_eq!(python_float_repr(x), repr, "{x:e}");
    }
}

#[test]
fn event_dates_become_unix_seconds() {
    for (date, seconds) in [
        ("2021-01-01T01:00:00+01:00", Some(1_609_459_200)),
        ("2021-01-01T00:00:00Z", Some(1_609_459_200)),
        ("2021-01-01T00:00:00.123Z", Some(1_609_459_200)),
        ("1970-01-01T00:00:00-00:30", Some(1800)),
        ("2024-02-29T12:00:00+00:00", Some(1_709_208_000)),
        ("2023-02-29T12:00:00+00:00", None),
        ("2021-01-01", None),
        ("2021-01-01T00:00:00", None),
        ("2021-13-01T00:00:00Z", None),
        ("2021-01-01T00:00:00+0100", None),
        ("2021-01-01T00:00:00.Z", None),
        ("２021-01-01T00:00:00Z", None),
    ] {
        assert_eq!(unix_seconds(date), seconds, "{date}");
    }
}
