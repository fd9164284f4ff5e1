//! The Adyen plugin end to end: scripts run by the real `payhost` binary
//! with target/plugins/adyen.wasm, against prism serving Adyen's own Checkout
//! v71 definition (tests/data/adyen) in validating mode.
//!
//! Every request the plugin builds must pass the spec: prism's violation log
//! stays empty (a test fails listing the violations). Prism answers valid
//! requests from the spec's examples, so each flow asserts a field of the
//! example it was given.

use payhost_e2e::scenario::{RunOutput, Scenario};
use payhost_e2e::stub::{Action, StubServer};
use payhost_e2e::{PrismServer, http_request};

const API_KEY: &str = "AQEyhmfxK4_adyen_e2e_test_key";
const MERCHANT: &str = "PayhostTestMerchant";

/// A scenario with the Adyen plugin and its two settings in the
/// environment (ADYEN_API_KEY, ADYEN_MERCHANT_ACCOUNT).
fn adyen() -> Scenario {
    Scenario::new()
        .with_plugin("adyen")
        .with_env("ADYEN_API_KEY", API_KEY)
        .with_env("ADYEN_MERCHANT_ACCOUNT", MERCHANT)
}

/// Writes the response flow of `op` on `object`, printing `<label> ok: `
/// then `expr` (over `parsed_data`), and its error flow, printing the
/// error payload's fields.
fn record(s: &Scenario, op: &str, object: &str, expr: &str) {
    s.flow(
        &format!("new_{op}_{object}_response"),
        &format!(r#"print(`{op} {object} ok: ${{{expr}}}`);"#),
    );
    s.flow(
        &format!("new_{op}_{object}_error"),
        &format!(
            r#"print(`{op} {object} error: http_status=${{parsed_error.http_status}} status=${{parsed_error.status}} errorType=${{parsed_error.errorType}} errorCode=${{parsed_error.errorCode}} retryable=${{parsed_error.retryable}} :: ${{parsed_error.message}}`);"#
        ),
    );
}

#[track_caller]
fn assert_ran_clean(out: &RunOutput, prism: &PrismServer) {
    prism.assert_no_violations();
    assert!(!out.printed(" error: "), "an error flow ran\n{out}");
    out.assert_success();
}

#[test]
fn every_operation_passes_adyens_spec_and_its_flow_sees_the_example() {
    let prism = PrismServer::start_adyen();
    let s = adyen();
    for (op, object, expr) in [
        ("create", "payment", "parsed_data.resultCode"),
        (
            "create",
            "payment_details",
            "parsed_data.resultCode + \" \" + parsed_data.pspReference",
        ),
        (
            "create",
            "payment_capture",
            "parsed_data.status + \" \" + parsed_data.amount.value",
        ),
        (
            "create",
            "payment_refund",
            "parsed_data.status + \" \" + parsed_data.amount.value",
        ),
        (
            "create",
            "payment_cancel",
            "parsed_data.status + \" \" + parsed_data.paymentPspReference",
        ),
        (
            "create",
            "payment_reversal",
            "parsed_data.status + \" \" + parsed_data.paymentPspReference",
        ),
        (
            "create",
            "payment_amount_update",
            "parsed_data.status + \" \" + parsed_data.amount.value",
        ),
        (
            "create",
            "cancel",
            "parsed_data.status + \" \" + parsed_data.paymentReference",
        ),
        (
            "create",
            "payment_link",
            "parsed_data.status + \" \" + parsed_data.url",
        ),
        (
            "retrieve",
            "payment_link",
            "parsed_data.id + \" \" + parsed_data.status",
        ),
        ("update", "payment_link", "parsed_data.status"),
        ("create", "session", "parsed_data.id"),
        ("retrieve", "session", "parsed_data.status"),
        (
            "list",
            "payment_methods",
            "parsed_data.paymentMethods.len()",
        ),
        (
            "list",
            "stored_payment_method",
            "parsed_data.storedPaymentMethods[0].lastFour",
        ),
        ("delete", "stored_payment_method", "parsed_data.len()"),
    ] {
        record(&s, op, object, expr);
    }
    s.script(
        r#"
        let eur = #{value: 1000, currency: "EUR"};
        new_payment()
            .amount(eur)
            .reference("order-1")
            .paymentMethod(#{
                type: "scheme",
                encryptedCardNumber: "test_4111111111111111",
                encryptedExpiryMonth: "test_03",
                encryptedExpiryYear: "test_2030",
                encryptedSecurityCode: "test_737",
                holderName: "John Smith"
            })
            .returnUrl("https://shop.example/checkout/return")
            .shopperInteraction("Ecommerce")
            .lineItems([#{id: "1", description: "Shoes", quantity: 1, amountIncludingTax: 1000}])
            .metadata("orderId", "o-1")
            .create_async();
        new_payment_details().details(#{redirectResult: "X6XtfGC3!Y..."}).create_async();
        new_payment_capture().parent("993617894903480A").amount(eur).reference("cap-1").create_async();
        new_payment_refund().parent("993617894903480A").amount(eur).create_async();
        new_payment_cancel().parent("993617894903480A").reference("can-1").create_async();
        new_payment_reversal().parent("993617894903480A").create_async();
        new_payment_amount_update().parent("993617894903480A").amount(#{value: 2500, currency: "EUR"})
            .industryUsage("delayedCharge").create_async();
        new_cancel().paymentReference("order-1").create_async();
        new_payment_link().amount(eur).reference("link-1").description("Shoes").create_async();
        new_payment_link().id("PL61C53A8B97E6915A").retrieve_async();
        new_payment_link().id("PL61C53A8B97E6915A").status("expired").update_async();
        new_session().amount(eur).reference("s-1").returnUrl("https://shop.example/return")
            .countryCode("NL").create_async();
        new_session().id("CS12345678").sessionResult("abc+def/==").retrieve_async();
        new_payment_methods().countryCode("NL").amount(eur).channel("Web").list_async();
        new_stored_payment_method().shopperReference("shopper-1").list_async();
        new_stored_payment_method().id("7219687191761347").shopperReference("shopper-1").delete_async();
        "#,
    );
    let out = s.run(&prism.base_url());
    assert_ran_clean(&out, &prism);
    for line in [
        "create payment ok: IdentifyShopper",
        "create payment_details ok: Authorised V4HZ4RBFJGXXGN82",
        "create payment_capture ok: received 2000",
        "create payment_refund ok: received 2500",
        "create payment_cancel ok: received 993617894903480A",
        "create payment_reversal ok: received 993617894903480A",
        "create payment_amount_update ok: received 2500",
        "create cancel ok: received YOUR_UNIQUE_REFERENCE_FOR_THE_PAYMENT",
        "create payment_link ok: active https://test.adyen.link/",
        "retrieve payment_link ok: PL61C53A8B97E6915A active",
        "update payment_link ok: expired",
        "create session ok: CS451F2AB1ED897A94",
        "retrieve session ok: completed",
        "list stored_payment_method ok: 1111",
        "delete stored_payment_method ok: 0",
    ] {
        out.assert_printed(line);
    }
    let methods: usize = out
        .value_after("list payment_methods ok: ")
        .parse()
        .unwrap();
    assert!(methods > 10, "{out}");
    assert_eq!(prism.requests(), 16, "{}", prism.log());
}

#[test]
fn a_missing_required_field_is_a_script_error_and_nothing_is_sent() {
    let prism = PrismServer::start_adyen();
    let s = adyen();
    record(&s, "create", "payment", "parsed_data.resultCode");
    // Top level: `reference` is required by the spec.
    s.script(
        r#"new_payment().amount(#{value: 1000, currency: "EUR"})
            .paymentMethod(#{type: "scheme"}).returnUrl("https://x.example").create_async();"#,
    );
    let out = s.run(&prism.base_url());
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains("payment.create: the required field `reference` is missing"),
        "{out}"
    );
    // Nested: `amount.currency` is required whenever `amount` is given.
    s.script(
        r#"new_payment().amount(#{value: 1000}).reference("r")
            .paymentMethod(#{type: "scheme"}).returnUrl("https://x.example").create_async();"#,
    );
    let out = s.run(&prism.base_url());
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains("payment.create: `amount` needs `amount.currency`"),
        "{out}"
    );
    // Not even the merchant account: without the setting, the host refuses.
    let bare = Scenario::new()
        .with_plugin("adyen")
        .with_env("ADYEN_API_KEY", API_KEY);
    bare.script(r#"new_cancel().paymentReference("r").create_async();"#);
    let out = bare.run(&prism.base_url());
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("merchant_account"), "{out}");

    assert_eq!(prism.requests(), 0, "prism saw a request:\n{}", prism.log());
    assert!(!out.printed("ok:"), "{out}");
}

#[test]
fn a_request_without_the_api_key_gets_the_error_flow_with_401() {
    let prism = PrismServer::start_adyen();
    // payhost never sends a request without the key it is configured with,
    // so a hop in front of prism drops `X-API-Key` on the way.
    let upstream = prism.base_url();
    let hop = StubServer::start(move |req, _| {
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .filter(|(name, _)| name.as_str() == "content-type")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let answer = http_request(
            &req.method,
            &format!("{upstream}{}", req.path),
            &headers,
            (!body.is_empty()).then_some(body.as_str()),
        );
        Action::json(answer.status, &answer.body)
    });
    let s = adyen();
    record(&s, "create", "payment_capture", "parsed_data.status");
    s.script(
        r#"new_payment_capture().parent("993617894903480A")
            .amount(#{value: 500, currency: "EUR"}).create_async();"#,
    );
    let out = s.run(&hop.base_url());
    out.assert_printed(
        "create payment_capture error: http_status=401 status=401 errorType=security errorCode=000 retryable=false",
    );
    assert!(
        hop.seen()[0].headers.contains_key("x-api-key"),
        "payhost sent the key"
    );
    assert_eq!(
        prism.violations(),
        ["request Invalid security scheme used"],
        "{}",
        prism.log()
    );
}

#[test]
fn adyens_validation_error_reaches_the_error_flow_in_adyens_shape() {
    let prism = PrismServer::start_adyen();
    let s = adyen();
    record(&s, "create", "payment", "parsed_data.resultCode");
    // `.set` bypasses the plugin's checks: prism refuses the value, with
    // the spec's own 422 example.
    s.script(
        r#"new_payment().amount(#{value: 1000, currency: "EUR"}).reference("r")
            .paymentMethod(#{type: "scheme"}).returnUrl("https://x.example")
            .set("shopperInteraction", "Online").create_async();"#,
    );
    let out = s.run(&prism.base_url());
    out.assert_printed(
        "create payment error: http_status=422 status=422 errorType=validation errorCode=14_030 retryable=false :: Return URL is missing.",
    );
    let violations = prism.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("shopperInteraction"),
        "{violations:?}"
    );
}

#[test]
fn the_demo_pays_then_captures_by_psp_reference() {
    let prism = PrismServer::start_adyen();
    let s = adyen();
    let demo = payhost_e2e::scenario::repo_flows().join("adyen");
    for entry in std::fs::read_dir(&demo).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if name != "main" {
            s.flow(&name, &std::fs::read_to_string(&path).unwrap());
        }
    }
    s.script(&std::fs::read_to_string(demo.join("main.rhai")).unwrap());
    let out = s.run(&prism.base_url());
    assert_ran_clean(&out, &prism);
    out.assert_printed("✅ Payment answered: IdentifyShopper");
    out.assert_printed("✅ Payment Authorised: V4HZ4RBFJGXXGN82");
    out.assert_printed(
        "✅ Capture received: 993617894906488A (payment 993617894903480A), amount 20.00 EUR",
    );
    assert!(
        out.summary()
            .contains("3 requests (0 retries), 3 flows run"),
        "{out}"
    );
    assert!(
        prism
            .log()
            .contains("post /payments/V4HZ4RBFJGXXGN82/captures"),
        "the capture went to the authorised payment:\n{}",
        prism.log()
    );
}

#[test]
fn the_plugin_passes_payhost_plugin_check() {
    let mut check = payhost_e2e::payhost();
    check
        .args(["plugin", "check"])
        .arg(payhost_e2e::plugin("adyen"))
        .env("ADYEN_MERCHANT_ACCOUNT", MERCHANT)
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    let out = payhost_e2e::scenario::run_command(check);
    out.assert_success();
    out.assert_printed("provider `adyen`");
    out.assert_printed(" 0 failed");
    // Every operation builds, and every required field is refused when left out.
    for line in [
        "payment_capture.create builds",
        "stored_payment_method.delete requires shopperReference",
        "parse-response: an empty 200",
    ] {
        out.assert_printed(line);
    }
}

/// The retry policy the plugin declares, as the host applies it: Adyen's
/// 5xx and 429 are retried with the same Idempotency-Key, a 422 is not, and
/// the error flow says which kind it saw (`retryable`).
#[test]
fn adyens_5xx_is_retried_with_the_same_idempotency_key_and_its_422_is_not() {
    const CAPTURED: &str = r#"{"merchantAccount":"PayhostTestMerchant","paymentPspReference":"PSP5XX","pspReference":"993617894906488A","status":"received","amount":{"value":500,"currency":"EUR"}}"#;
    const INTERNAL: &str = r#"{"status":500,"errorCode":"905","message":"Payment details are not supported","errorType":"internal"}"#;
    const INVALID: &str = r#"{"status":422,"errorCode":"167","message":"Original pspReference required for this operation","errorType":"validation"}"#;
    // Per path: PSP5XX answers 500 once, then the capture; PSP422 always 422.
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = attempts.clone();
    let stub = StubServer::start(move |req, _| {
        if req.path.contains("PSP422") {
            return Action::json(422, INVALID);
        }
        match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Action::json(500, INTERNAL),
            _ => Action::json(201, CAPTURED),
        }
    });
    let s = adyen();
    record(
        &s,
        "create",
        "payment_capture",
        "parsed_data.status + \" \" + parsed_data.paymentPspReference",
    );
    s.script(
        r#"new_payment_capture().parent("PSP5XX").amount(#{value: 500, currency: "EUR"}).create_async();
           new_payment_capture().parent("PSP422").amount(#{value: 500, currency: "EUR"}).create_async();"#,
    );
    let out = s.run(&stub.base_url());
    out.assert_printed("create payment_capture ok: received PSP5XX");
    out.assert_printed(
        "create payment_capture error: http_status=422 status=422 errorType=validation errorCode=167 retryable=false",
    );
    let seen = stub.seen();
    let keys: Vec<&str> = seen
        .iter()
        .filter(|r| r.path.contains("PSP5XX"))
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .map(String::as_str)
                .unwrap_or("")
        })
        .collect();
    assert_eq!(keys.len(), 2, "one retry after the 500: {seen:?}");
    assert!(!keys[0].is_empty() && keys[0] == keys[1], "{keys:?}");
    let rejected = seen.iter().filter(|r| r.path.contains("PSP422")).count();
    assert_eq!(rejected, 1, "a 422 is not retried");
    assert!(out.summary().contains("(1 retries)"), "{out}");
}

/// No answer at all: the error flow gets the same shape, `errorType`
/// `transport`, after the host's retries.
#[test]
fn an_unreachable_adyen_runs_the_error_flow_with_a_transport_error() {
    let port = payhost_e2e::free_port(); // nothing listens there
    let s = adyen();
    record(&s, "list", "payment_methods", "parsed_data.len()");
    s.script(r#"new_payment_methods().countryCode("NL").list_async();"#);
    let mut run = s.command(&format!("http://127.0.0.1:{port}"));
    run.args(["--max-retries", "1"]);
    let out = payhost_e2e::scenario::run_command(run);
    out.assert_printed(
        "list payment_methods error: http_status=0 status=0 errorType=transport errorCode=connect retryable=true",
    );
    assert!(out.summary().contains("(1 retries)"), "{out}");
}
