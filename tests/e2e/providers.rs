//! Several providers in one process: Stripe (localstripe) and Adyen (prism
//! serving Adyen's own Checkout definition) from one script, each flow run
//! once under its provider's name, and the failover example with the Stripe
//! peer unreachable.

use payhost_e2e::scenario::{Scenario, run_command};
use payhost_e2e::{LocalStripe, PrismServer, free_port};

fn adyen_env(s: Scenario) -> Scenario {
    s.with_env("ADYEN_API_KEY", "AQE_payhost_e2e")
        .with_env("ADYEN_MERCHANT_ACCOUNT", "PayhostE2E")
}

const ADYEN_PAYMENT: &str = r#"
    adyen::new_payment()
        .amount(#{value: 1000, currency: "EUR"})
        .reference("order-1")
        .paymentMethod(#{type: "scheme", encryptedCardNumber: "test_4111111111111111",
            encryptedExpiryMonth: "test_03", encryptedExpiryYear: "test_2030",
            encryptedSecurityCode: "test_737"})
        .returnUrl("https://shop.example/return")
        .create_async();
"#;

#[test]
fn a_stripe_customer_and_an_adyen_payment_in_one_script() {
    let stripe = LocalStripe::start();
    let prism = PrismServer::start_adyen();
    let s = adyen_env(Scenario::new());
    std::fs::create_dir_all(s.flows_dir().join("stripe")).unwrap();
    std::fs::create_dir_all(s.flows_dir().join("adyen")).unwrap();
    std::fs::write(
        s.flows_dir()
            .join("stripe/new_create_customer_response.rhai"),
        r#"print(`CUSTOMER ${parsed_data.id} via ${CALLER_ID}`);"#,
    )
    .unwrap();
    std::fs::write(
        s.flows_dir().join("adyen/new_create_payment_response.rhai"),
        r#"print(`PAYMENT ${parsed_data.resultCode} via ${CALLER_ID}`);"#,
    )
    .unwrap();
    // A shared flow of the same name: the provider's own comes first.
    s.flow(
        "new_create_customer_response",
        r#"print("WRONG: the shared flow ran");"#,
    );
    s.script(&format!(
        r#"stripe::new_customer().email("jenny@example.com").create_async();
        {ADYEN_PAYMENT}"#
    ));
    let out = run_command(
        s.command_providers(&[("stripe", &stripe.base_url()), ("adyen", &prism.base_url())]),
    );
    out.assert_success();
    assert_eq!(out.lines_starting("CUSTOMER cus_").len(), 1, "{out}");
    assert!(out.printed("via stripe"), "{out}");
    assert_eq!(out.lines_starting("PAYMENT ").len(), 1, "{out}");
    assert!(out.printed("via adyen"), "{out}");
    assert!(!out.printed("WRONG"), "{out}");
    assert!(
        out.summary()
            .contains("2 requests (0 retries), 2 flows run"),
        "{out}"
    );
    prism.assert_no_violations();
}

#[test]
fn with_several_plugins_names_must_say_their_provider() {
    let stripe = LocalStripe::start();
    let s = adyen_env(Scenario::new());
    s.script(r#"new_customer().email("a@b.c").create_async();"#);
    let out = run_command(s.command_providers(&[
        ("stripe", &stripe.base_url()),
        ("adyen", "http://127.0.0.1:9"),
    ]));
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("new_customer"), "{out}");

    // An unnamed base URL is ambiguous with two plugins.
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("run")
        .arg(s.script("1;"))
        .args(["--plugin"])
        .arg(payhost_e2e::plugin("stripe"))
        .arg("--plugin")
        .arg(payhost_e2e::plugin("adyen"))
        .args(["--base-url", &stripe.base_url()])
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    let out = run_command(cmd);
    assert!(!out.status.success());
    assert!(out.stderr.contains("--base-url stripe=URL"), "{out}");

    // The same provider twice.
    let mut cmd = payhost_e2e::payhost();
    cmd.arg("run")
        .arg(s.script("1;"))
        .arg("--plugin")
        .arg(payhost_e2e::plugin("stripe"))
        .arg("--plugin")
        .arg(payhost_e2e::plugin("stripe"))
        .env("PAYHOST_CACHE_DIR", payhost_e2e::cache_dir());
    let out = run_command(cmd);
    assert!(!out.status.success());
    assert!(out.stderr.contains("both provider `stripe`"), "{out}");
}

#[test]
fn one_plugin_takes_qualified_and_unqualified_names() {
    let stripe = LocalStripe::start();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`CUSTOMER ${parsed_data.email}`);"#,
    );
    s.script(
        r#"stripe::new_customer().email("one@example.com").create_async();
           new_customer().email("two@example.com").create_async();"#,
    );
    let out = s.run(&stripe.base_url());
    out.assert_success();
    out.assert_printed("CUSTOMER one@example.com");
    out.assert_printed("CUSTOMER two@example.com");
}

/// examples/failover: Stripe unreachable, so the payment intent's error
/// flow pays the same order through Adyen, once, with the order's key.
#[test]
fn failover_pays_through_adyen_when_stripe_is_unreachable() {
    let prism = PrismServer::start_adyen();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/failover");
    let s = adyen_env(Scenario::new());
    // The example's script and flows, as they are in the repository.
    s.script(&std::fs::read_to_string(example.join("main.rhai")).unwrap());
    for provider in ["stripe", "adyen"] {
        let from = example.join("flows").join(provider);
        let to = s.flows_dir().join(provider);
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
        }
    }
    let dead_stripe = format!("http://127.0.0.1:{}", free_port());
    let mut run = s.command_providers(&[("stripe", &dead_stripe), ("adyen", &prism.base_url())]);
    run.args(["--max-retries", "1"])
        .env("RUST_LOG", "payhost::http=debug");
    let out = run_command(run);
    out.assert_success();
    out.assert_printed(
        "Stripe unavailable for order 6735 (api_connection_error, HTTP 0): failing over to Adyen",
    );
    assert_eq!(
        out.lines_starting("✅ Order 6735 paid through adyen").len(),
        1,
        "{out}"
    );
    assert_eq!(prism.requests(), 1, "{}", prism.log());
    // The payment went out with the key derived from the order, so a flow
    // delivered again repeats it and Adyen answers without paying twice.
    let sent: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("sending") && l.contains("/payments"))
        .collect();
    assert_eq!(sent.len(), 1, "{}", out.stderr);
    assert!(
        sent[0].contains("idempotency_key=\"order-6735-adyen\""),
        "{}",
        sent[0]
    );
    prism.assert_no_violations();
}
