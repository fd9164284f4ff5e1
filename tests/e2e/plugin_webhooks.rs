//! The plugins' webhook exports, as the host calls them: the real Stripe and
//! Adyen components (built by `cargo xtask plugins`) loaded through
//! `payhost::plugin`, fed deliveries that the providers' own libraries signed
//! (tests/servers/webhook_oracle.py). `check-webhook` must name exactly the
//! bytes those libraries MAC and pass their signatures through, and
//! `parse-webhook` must give the events; a provider without webhooks answers
//! both with an error, not a trap.
//!
//! No MAC is computed here: that is the host's job (`payhost serve`), tested
//! with it. What is checked is everything the plugin decides.

use payhost::plugin::{ComponentCache, Plugin, PluginInstance, SandboxLimits, wit};
use payhost_e2e::webhook_oracle;
use serde_json::{Value, json};

fn instance(name: &str, settings: &[(&str, &str)]) -> (Plugin, PluginInstance) {
    let plugin = Plugin::load(
        &payhost_e2e::plugin(name),
        SandboxLimits::default(),
        &ComponentCache::disabled(),
    )
    .and_then(|p| {
        p.configured(
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    })
    .unwrap_or_else(|e| panic!("{name} should load: {e}"));
    let instance = plugin.instantiate().unwrap();
    (plugin, instance)
}

fn request(headers: &[(&str, &str)], body: &[u8]) -> wit::WebhookRequest {
    wit::WebhookRequest {
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

const PAYLOAD: &str = r#"{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "created": 1700000000, "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 2000}}}"#;

#[test]
fn stripe_checks_what_stripe_python_signed_and_parses_the_event() {
    let (plugin, mut stripe) = instance("stripe", &[]);
    let scheme = plugin
        .info()
        .webhooks
        .as_ref()
        .expect("stripe declares webhooks");
    assert_eq!(scheme.secret, "webhook_secret");
    assert_eq!(scheme.key_encoding, wit::KeyEncoding::Utf8);
    assert_eq!(scheme.accept_body, "");
    let setting = plugin
        .info()
        .settings
        .iter()
        .find(|s| s.name == "webhook_secret")
        .unwrap();
    assert!(setting.secret && !setting.required);

    let signed = webhook_oracle(
        "stripe-sign",
        &json!({"payload": PAYLOAD, "secret": "whsec_test", "timestamp": 1_700_000_000}),
    );
    let header = signed["header"].as_str().unwrap();
    let signature = header.split_once(",v1=").unwrap().1;
    let check = stripe
        .check_webhook(&request(
            &[
                ("content-type", "application/json"),
                ("stripe-signature", header),
            ],
            PAYLOAD.as_bytes(),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(check.algorithm, wit::MacAlgorithm::HmacSha256);
    assert_eq!(check.encoding, wit::SignatureEncoding::Hex);
    assert_eq!(check.timestamp, Some(1_700_000_000));
    assert_eq!(check.parts.len(), 1);
    assert_eq!(
        String::from_utf8(check.parts[0].message.clone()).unwrap(),
        format!("1700000000.{PAYLOAD}")
    );
    assert_eq!(check.parts[0].signatures, [signature]);

    let refused = stripe
        .check_webhook(&request(&[], PAYLOAD.as_bytes()))
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("no Stripe-Signature header"), "{refused}");

    let events = stripe
        .parse_webhook(&request(
            &[("stripe-signature", header)],
            PAYLOAD.as_bytes(),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    assert_eq!(events[0].event_type, "payment_intent.succeeded");
    assert_eq!(events[0].created, Some(1_700_000_000));
    assert_eq!(
        events[0].object,
        r#"{"id": "pi_1", "object": "payment_intent", "amount": 2000}"#
    );
}

#[test]
fn adyen_checks_every_item_as_adyens_library_signs_it() {
    let (plugin, mut adyen) = instance("adyen", &[("merchant_account", "TestMerchant")]);
    let scheme = plugin
        .info()
        .webhooks
        .as_ref()
        .expect("adyen declares webhooks");
    assert_eq!(scheme.secret, "hmac_key");
    assert_eq!(scheme.key_encoding, wit::KeyEncoding::Hex);
    assert_eq!(scheme.accept_body, "[accepted]");

    let items = payhost_e2e::adyen_example_items();
    let key = payhost_e2e::ADYEN_TEST_HMAC_KEY;
    let messages = webhook_oracle(
        "adyen-signing-strings",
        &json!({"key_hex": key, "items": items}),
    );
    let signed = webhook_oracle("adyen-sign", &json!({"key_hex": key, "items": items}));
    let signed = signed["items"].as_array().unwrap();
    // All examples in one delivery, as Adyen batches them.
    let body = json!({
        "live": "false",
        "notificationItems": signed
            .iter()
            .map(|item| json!({"NotificationRequestItem": item}))
            .collect::<Vec<_>>(),
    })
    .to_string();
    let check = adyen
        .check_webhook(&request(
            &[("content-type", "application/json")],
            body.as_bytes(),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(check.algorithm, wit::MacAlgorithm::HmacSha256);
    assert_eq!(check.encoding, wit::SignatureEncoding::Base64);
    assert_eq!(check.timestamp, None);
    assert_eq!(check.parts.len(), signed.len());
    for (index, part) in check.parts.iter().enumerate() {
        assert_eq!(
            String::from_utf8(part.message.clone()).unwrap(),
            messages["messages"][index].as_str().unwrap(),
            "item {index}"
        );
        assert_eq!(
            part.signatures,
            [signed[index]["additionalData"]["hmacSignature"]
                .as_str()
                .unwrap()],
            "item {index}"
        );
    }

    let events = adyen
        .parse_webhook(&request(&[], body.as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(events.len(), signed.len());
    for (event, item) in events.iter().zip(signed) {
        let code = item["eventCode"].as_str().unwrap();
        assert_eq!(event.event_type, code);
        assert_eq!(
            event.id,
            format!(
                "{}:{code}:{}",
                item["pspReference"].as_str().unwrap(),
                item["success"].as_str().unwrap()
            )
        );
        assert!(event.created.is_some(), "{}", event.id);
        let object: Value = serde_json::from_str(&event.object).unwrap();
        assert_eq!(&object, item);
    }

    let refused = adyen
        .check_webhook(&request(&[], b"[accepted]"))
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("not a JSON object"), "{refused}");
}

#[test]
fn a_provider_without_webhooks_answers_with_an_error_not_a_trap() {
    let (plugin, mut json_api) = instance("json-api", &[("tenant", "acme")]);
    assert!(plugin.info().webhooks.is_none());
    let delivery = request(&[("x-signature", "abc")], b"{}");
    let err = json_api.check_webhook(&delivery).unwrap().unwrap_err();
    assert_eq!(err, "provider `jsonapi` declares no webhooks");
    let err = json_api.parse_webhook(&delivery).unwrap().unwrap_err();
    assert_eq!(err, "provider `jsonapi` declares no webhooks");
    // The instance still works.
    assert_eq!(json_api.info().unwrap().name, "jsonapi");
}
