use super::*;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_is_default() {
    assert_eq!(Config::from_settings(&[]), Ok(Config::default()));
    assert!(Config::default().headers().is_empty());
}

#[test]
fn valid_values_become_headers() {
    let config = Config::from_settings(&pairs(&[
        ("api_version", "2025-03-31.basil"),
        ("account", "acct_1032D82eZvKYlo2C"),
    ]))
    .unwrap();
    assert_eq!(
        config.headers(),
        pairs(&[
            ("Stripe-Version", "2025-03-31.basil"),
            ("Stripe-Account", "acct_1032D82eZvKYlo2C"),
        ])
    );
    let config = Config::from_settings(&pairs(&[("api_version", "2024-06-20")])).unwrap();
    assert_eq!(config.headers(), pairs(&[("Stripe-Version", "2024-06-20")]));
}

#[test]
fn bad_api_versions() {
    for bad in [
        "",
        "2024-6-20",
        "2024-13-01",
        "2024-00-10",
        "2024-01-32",
        "24-01-01",
        "2024/01/01",
        "2024-01-01.",
        "2024-01-01.bad name",
        "2024-01-01\r\nX-Evil: 1",
        "latest",
    ] {
        let err = Config::from_settings(&pairs(&[("api_version", bad)])).unwrap_err();
        assert!(err.contains("`api_version`"), "{bad:?}: {err}");
        assert!(err.contains("YYYY-MM-DD"), "{bad:?}: {err}");
    }
}

#[test]
fn bad_accounts() {
    for bad in ["", "acct_", "acct_12 3", "cus_123", "ACCT_123", "acct_1\n"] {
        let err = Config::from_settings(&pairs(&[("account", bad)])).unwrap_err();
        assert!(err.contains("`account`"), "{bad:?}: {err}");
        assert!(err.contains("acct_"), "{bad:?}: {err}");
    }
}

#[test]
fn unknown_setting_is_named() {
    let err = Config::from_settings(&pairs(&[("merchant_account", "x")])).unwrap_err();
    assert_eq!(
        err,
        "stripe has no setting `merchant_account` (settings: secret_key, api_version, account, webhook_secret)"
    );
}

#[test]
fn secret_key_is_refused_without_echoing_it() {
    let err = Config::from_settings(&pairs(&[("secret_key", "sk_test_abc123")])).unwrap_err();
    assert!(err.contains("`secret_key`"), "{err}");
    assert!(!err.contains("sk_test_abc123"), "{err}");
}

#[test]
fn webhook_secret_is_refused_without_echoing_it() {
    let err = Config::from_settings(&pairs(&[("webhook_secret", "whsec_abc123")])).unwrap_err();
    assert!(err.contains("`webhook_secret`"), "{err}");
    assert!(!err.contains("whsec_abc123"), "{err}");
}

#[test]
fn given_twice() {
    let err =
        Config::from_settings(&pairs(&[("account", "acct_1"), ("account", "acct_2")])).unwrap_err();
    assert_eq!(err, "setting `account` is given more than once");
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(5000);
    let err = Config::from_settings(&pairs(&[("account", &long)])).unwrap_err();
    assert!(err.len() < 300, "{}", err.len());
}

#[test]
fn declared_settings() {
    let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["secret_key", "api_version", "account", "webhook_secret"]
    );
    let key = &SETTINGS[0];
    assert!(key.secret && key.required && key.default.is_none());
    assert_eq!(key.doc, "Stripe secret key, sk_test_... or sk_live_...");
    // Only `payhost serve` needs the webhook secret: not required.
    let webhook = &SETTINGS[3];
    assert!(webhook.secret && !webhook.required && webhook.default.is_none());
    for s in &SETTINGS[1..3] {
        assert!(
            !s.secret && !s.required && s.default.is_none(),
            "{}",
            s.name
        );
    }
    for s in SETTINGS {
        assert!(
            s.name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
    }
}
