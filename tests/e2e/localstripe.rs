//! Scripts and flows against localstripe, a Stripe-compatible server we did
//! not write: customers, products, payment intents, the seed's scripts, and
//! the errors a real server gives.

use payhost_e2e::LocalStripe;
use payhost_e2e::scenario::{Scenario, repo_flows, run_command};

/// Prints every outcome of `object.op` so a test can see which flow ran.
fn record_flows(s: &Scenario, op: &str, object: &str) {
    s.flow(
        &format!("new_{op}_{object}_response"),
        &format!(
            r#"print(`{op} {object} ok: ${{parsed_data.id}} ${{parsed_data.status ?? ""}}`);"#
        ),
    );
    s.flow(
        &format!("new_{op}_{object}_error"),
        &format!(
            r#"print(`{op} {object} error: ${{parsed_error.http_status}} ${{parsed_error.error.type}} param=${{parsed_error.error.param ?? ""}} code=${{parsed_error.error.code ?? ""}} decline=${{parsed_error.error.decline_code ?? ""}} :: ${{parsed_error.error.message}}`);"#
        ),
    );
}

#[test]
fn seed_main_runs_unchanged_and_its_unknown_customer_runs_the_error_flow() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    s.repo_flow("new_create_payment_intent_response")
        .repo_flow("new_create_payment_intent_error");
    s.script(&std::fs::read_to_string(repo_flows().join("seed_main.rhai")).unwrap());
    let out = s.run(&server.base_url());
    out.assert_printed("Request dispatched: payment_intent_request_dispatched");
    // cus_customer123 does not exist: a real server answers 404.
    out.assert_printed("❌ Payment Intent Failed: invalid_request_error");
    out.assert_printed("Message: ");
    assert!(!out.printed("✅"), "{out}");
    assert!(
        out.status.success(),
        "an error flow is not a failure of the run\n{out}"
    );
    assert!(
        out.summary()
            .contains("1 requests (0 retries), 1 flows run"),
        "{out}"
    );
}

#[test]
fn demo_chain_creates_a_customer_then_a_payment_intent_for_it() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    for flow in [
        "new_create_customer_response",
        "new_create_customer_error",
        "new_create_payment_intent_response",
        "new_create_payment_intent_error",
    ] {
        s.repo_flow(flow);
    }
    s.script(&std::fs::read_to_string(repo_flows().join("main.rhai")).unwrap());
    let out = s.run(&server.base_url());
    out.assert_success();
    let customer = out.value_after("✅ Customer Created: ");
    assert!(customer.starts_with("cus_"), "{out}");
    let intent = out.value_after("✅ Payment Intent Created: ");
    assert!(intent.starts_with("pi_"), "{out}");
    out.assert_printed("Status: succeeded");
    assert!(
        out.summary()
            .contains("2 requests (0 retries), 2 flows run"),
        "{out}"
    );
}

#[test]
fn payment_intent_lifecycle_create_retrieve_update_confirm_cancel() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    // Each step's response flow starts the next, as a user would chain them:
    // card payment method -> intent -> retrieve -> update -> confirm.
    s.flow(
        "new_create_payment_method_response",
        r#"
        new_payment_intent().amount(2000).currency("usd").payment_method(parsed_data.id)
            .payment_method_types(["card"])
            .create_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_create_payment_intent_response",
        r#"
        print(`created ${parsed_data.id} ${parsed_data.amount} ${parsed_data.status}`);
        new_payment_intent().id(parsed_data.id).retrieve_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_retrieve_payment_intent_response",
        r#"
        print(`retrieved ${parsed_data.id} ${parsed_data.amount}`);
        new_payment_intent().id(parsed_data.id).amount(3100).metadata("step", "update")
            .update_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_update_payment_intent_response",
        r#"
        print(`updated ${parsed_data.id} ${parsed_data.amount} ${parsed_data.metadata.step}`);
        new_payment_intent().id(parsed_data.id).confirm_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_confirm_payment_intent_response",
        r#"print(`confirmed ${parsed_data.id} ${parsed_data.status}`);"#,
    );
    for (op, object) in [
        ("create", "payment_method"),
        ("create", "payment_intent"),
        ("retrieve", "payment_intent"),
        ("update", "payment_intent"),
        ("confirm", "payment_intent"),
    ] {
        s.flow(
            &format!("new_{op}_{object}_error"),
            &format!(r#"print(`{op} {object} failed: ${{error_json}}`);"#),
        );
    }
    s.script(
        r#"
        let r = new_payment_method().type("card")
            .card(#{ number: "4242424242424242", exp_month: 12, exp_year: 2034, cvc: "123" })
            .create_async("w", "c");
        print(r);
        "#,
    );
    let out = s.run(&server.base_url());
    out.assert_success();
    out.assert_printed("payment_method_request_dispatched");
    assert!(!out.printed("failed:"), "{out}");
    let id = out
        .value_after("retrieved ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(id.starts_with("pi_"), "{out}");
    out.assert_printed(&format!("created {id} 2000"));
    out.assert_printed(&format!("updated {id} 3100 update"));
    out.assert_printed(&format!("confirmed {id} succeeded"));
    assert!(
        out.summary()
            .contains("5 requests (0 retries), 5 flows run"),
        "{out}"
    );

    // Cancel, in its own run.
    let s2 = Scenario::new();
    record_flows(&s2, "cancel", "payment_intent");
    s2.script(r#"new_payment_intent().amount(700).currency("usd").create_async();"#);
    s2.flow(
        "new_create_payment_intent_response",
        r#"new_payment_intent().id(parsed_data.id).cancel_async();"#,
    );
    let out = s2.run(&server.base_url());
    out.assert_success();
    out.assert_printed("cancel payment_intent ok: pi_");
    out.assert_printed("canceled");
}

#[test]
fn customers_and_products_round_trip() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "create", "product");
    record_flows(&s, "delete", "customer");
    s.flow(
        "new_create_customer_response",
        r#"
        print(`customer ${parsed_data.id} ${parsed_data.email} ${parsed_data.metadata.tier}`);
        new_customer().id(parsed_data.id).delete_async();
        "#,
    );
    s.script(
        r#"
        new_customer().email("ada@example.com").name("Ada").metadata(#{ tier: "gold" }).create_async();
        new_product().name("T-shirt").description("cotton").metadata("sku", "T-1").create_async();
        "#,
    );
    let out = s.run(&server.base_url());
    out.assert_success();
    out.assert_printed("ada@example.com gold");
    out.assert_printed("create product ok: prod_");
    out.assert_printed("delete customer ok: cus_");
}

#[test]
fn unknown_id_runs_the_error_flow_with_the_404() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "retrieve", "customer");
    s.script(r#"new_customer().id("cus_doesnotexist").retrieve_async();"#);
    let out = s.run(&server.base_url());
    out.assert_success();
    out.assert_printed("retrieve customer error: 404 invalid_request_error");
}

/// localstripe declines card 4000000000000341 when charging. It answers 402
/// with `code: card_declined` but types it `invalid_request_error` (real
/// Stripe says `card_error`); the plugin passes the server's error through.
#[test]
fn declined_card_runs_the_error_flow_with_the_decline() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "create", "payment_intent");
    record_flows(&s, "create", "payment_method");
    s.flow(
        "new_create_payment_method_response",
        r#"
        new_payment_intent().amount(2000).currency("usd").payment_method(parsed_data.id)
            .confirm(true).create_async();
        "#,
    );
    s.script(
        r#"
        new_payment_method().type("card")
            .card(#{ number: "4000000000000341", exp_month: 12, exp_year: 2034, cvc: "123" })
            .create_async();
        "#,
    );
    let out = s.run(&server.base_url());
    out.assert_success();
    out.assert_printed("create payment_intent error: 402 ");
    out.assert_printed("code=card_declined");
    out.assert_printed("Your card was declined.");
}

#[test]
fn parameter_the_server_rejects_comes_back_as_an_error_flow_naming_it() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "create", "customer");
    // Sent through the escape hatch, so only the server can object.
    s.script(
        r#"new_customer().email("x@example.com").set("favourite_colour", "teal").create_async();"#,
    );
    let out = s.run(&server.base_url());
    out.assert_success();
    out.assert_printed("create customer error: 400 invalid_request_error");
    assert!(out.stdout.contains("favourite_colour"), "{out}");
}

#[test]
fn validation_error_is_thrown_at_the_call_site_and_nothing_is_sent() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "create", "payment_intent");
    s.script(
        r#"
        print("before");
        let pi = new_payment_intent().currency("usd");
        pi.amount("twelve").create_async();
        print("not reached");
        "#,
    );
    let out = s.run(&server.base_url());
    assert!(!out.status.success(), "{out}");
    out.assert_printed("before");
    assert!(!out.printed("not reached"), "{out}");
    assert!(out.stderr.contains("amount"), "{out}");
    assert!(
        out.stderr.contains("line 4"),
        "the script line is named\n{out}"
    );
    assert!(out.summary().contains("0 requests"), "{out}");

    let s = Scenario::new();
    s.script("new_payment_intent().amout(5).create_async();");
    let out = s.run(&server.base_url());
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("amout"), "{out}");
}

#[test]
fn missing_flow_file_is_a_warning_naming_it() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    s.script(r#"new_product().name("Mug").create_async();"#);
    let out = s.run(&server.base_url());
    out.assert_success();
    assert!(
        out.stderr.contains("new_create_product_response.rhai"),
        "{out}"
    );
    assert!(out.summary().contains("1 flows missing"), "{out}");
}

#[test]
fn secret_from_the_environment_or_a_named_variable() {
    let server = LocalStripe::start();
    let s = Scenario::new();
    record_flows(&s, "create", "product");
    s.script(r#"new_product().name("Cap").create_async();"#);
    let mut cmd = s.command(&server.base_url());
    cmd.env_remove("STRIPE_SECRET_KEY")
        .env("MY_KEY", payhost_e2e::scenario::TEST_SECRET)
        .args(["--secret-env", "MY_KEY"]);
    let out = run_command(cmd);
    out.assert_success();
    out.assert_printed("create product ok: prod_");

    let mut cmd = s.command(&server.base_url());
    cmd.env_remove("STRIPE_SECRET_KEY");
    let out = run_command(cmd);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("STRIPE_SECRET_KEY"), "{out}");
}
