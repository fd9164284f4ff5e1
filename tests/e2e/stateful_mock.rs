//! Prices, price-based subscriptions, idempotency and auth against
//! stripe-stateful-mock, a Stripe-compatible server we did not write.

use payhost_e2e::StatefulMock;
use payhost_e2e::scenario::{Scenario, run_command};

fn error_flow(s: &Scenario, op: &str, object: &str) {
    s.flow(
        &format!("new_{op}_{object}_error"),
        &format!(
            r#"print(`{op} {object} error: ${{parsed_error.http_status}} ${{parsed_error.error.type}} :: ${{parsed_error.error.message}}`);"#
        ),
    );
}

#[test]
fn recurring_price_and_subscription_with_items() {
    let server = StatefulMock::start();
    let s = Scenario::new();
    // The customer id rides along as the context id through the chain.
    s.flow(
        "new_create_customer_response",
        r#"new_product().name("Gold plan").create_async(WORKER_ID, parsed_data.id);"#,
    )
    .flow(
        "new_create_product_response",
        r#"
        new_price().product(parsed_data.id).unit_amount(1500).currency("usd")
            .recurring(#{ interval: "month", interval_count: 1 }).nickname("monthly")
            .create_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_create_price_response",
        r#"
        print(`price ${parsed_data.id} ${parsed_data.unit_amount} ${parsed_data.recurring.interval}`);
        new_subscription().customer(CONTEXT_ID)
            .items([#{ price: parsed_data.id, quantity: 2 }])
            .metadata("source", "payhost")
            .create_async(WORKER_ID, CONTEXT_ID);
        "#,
    )
    .flow(
        "new_create_subscription_response",
        r#"
        print(`subscription ${parsed_data.id} customer=${parsed_data.customer} qty=${parsed_data.items.data[0].quantity} price=${parsed_data.items.data[0].price.id}`);
        "#,
    );
    for (op, object) in [
        ("create", "customer"),
        ("create", "product"),
        ("create", "price"),
        ("create", "subscription"),
    ] {
        error_flow(&s, op, object);
    }
    s.script(r#"new_customer().email("sub@example.com").create_async();"#);
    let out = s.run(&server.base_url());
    out.assert_success();
    assert!(!out.printed(" error: "), "{out}");
    let price = out
        .value_after("price ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    out.assert_printed(&format!("price {price} 1500 month"));
    out.assert_printed("qty=2");
    out.assert_printed(&format!("price={price}"));
    let customer = out
        .value_after("customer=")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(customer.starts_with("cus_"), "{out}");
}

#[test]
fn same_idempotency_key_replays_the_same_object() {
    let server = StatefulMock::start();
    let s = Scenario::new();
    s.flow(
        "new_create_customer_response",
        r#"print(`customer ${parsed_data.id} ${parsed_data.email}`);"#,
    );
    error_flow(&s, "create", "customer");
    s.script(
        r#"
        new_customer().email("once@example.com").idempotency_key("payhost-e2e-key-1").create_async();
        new_customer().email("once@example.com").idempotency_key("payhost-e2e-key-1").create_async();
        new_customer().email("twice@example.com").create_async();
        "#,
    );
    let out = s.run(&server.base_url());
    out.assert_success();
    let ids: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("once@example.com"))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{out}");
    assert_eq!(ids[0], ids[1], "the replay returns the first object\n{out}");
    let other = out.value_after("customer ");
    assert!(out.printed("twice@example.com"), "{out}");
    assert!(!other.is_empty());
}

#[test]
fn bad_key_runs_the_error_flow_with_the_401() {
    let server = StatefulMock::start();
    let s = Scenario::new();
    error_flow(&s, "create", "product");
    s.script(r#"new_product().name("Nope").create_async();"#);
    let mut cmd = s.command(&server.base_url());
    cmd.env("STRIPE_SECRET_KEY", "not-a-stripe-key");
    let out = run_command(cmd);
    out.assert_success();
    // Real Stripe, and this server, type a bad key `invalid_request_error`.
    out.assert_printed(
        "create product error: 401 invalid_request_error :: Invalid API Key provided",
    );
}
