//! What the `example` provider is: its settings, auth, retry policy and
//! objects ([`PROVIDER`]), and the configuration `configure` accepts
//! ([`Config`]). Start here: replace the example object with the provider's
//! own, and `cargo test` tells you if the description breaks a rule the host
//! checks at load.

use payhost_plugin_kit::schema::{
    Auth, FailureKind, Field, Kind, Method, Object, Operation, Provider, ResponseRule, RetryPolicy,
    Setting, setting_value,
};

pub const PROVIDER: Provider = Provider {
    // Lower-case letters, digits and `_`: scripts see it as CALLER_ID, and
    // settings come from `EXAMPLE_<SETTING>` environment variables.
    name: "example",
    version: env!("CARGO_PKG_VERSION"),
    doc: "The example API (describe the API and its version here).",
    default_base_url: "https://api.example.example",
    settings: &[
        Setting {
            name: "api_key",
            doc: "The API key, sent as a bearer token",
            required: true,
            default: None,
            secret: true,
        },
        Setting {
            name: "api_version",
            doc: "The API version requests ask for (sent as Api-Version)",
            required: false,
            default: Some("2024-06-01"),
            secret: false,
        },
    ],
    // The host adds `Authorization: Bearer <api_key>`; the plugin never sees it.
    auth: Auth::Bearer("api_key"),
    retry: RetryPolicy {
        statuses: &[(429, 429), (500, 599)],
        failures: &[FailureKind::Connect, FailureKind::Timeout],
        should_retry_header: None,
        honour_retry_after: true,
        // Same key on every attempt of one request, so a retried POST
        // cannot create two payments.
        idempotency_header: Some("Idempotency-Key"),
    },
    objects: &[PAYMENT],
    // No webhooks. A provider that signs the events it sends declares a
    // `WebhookScheme` here (its signing key in a secret setting) and
    // implements `check_webhook` and `parse_webhook` (lib.rs); see
    // "Webhooks" in docs/writing-a-plugin.md.
    webhooks: None,
    // The kit's default `parse_response` (lib.rs) passes a 2xx JSON object
    // through unchanged, so the host may do that itself and skip the call.
    // A plugin that reads its successes (to turn some into errors, say)
    // declares `ResponseRule::Plugin`.
    responses: ResponseRule::JsonObjectIsSuccess,
};

const PAYMENT: Object = Object {
    name: "payment",
    doc: "A payment (an example object: replace it with the provider's own).",
    operations: &[Operation {
        name: "create",
        method: Method::Post,
        path: "/v1/payments",
        needs_id: false,
        needs_parent: false,
        accepts: &["amount", "currency", "description", "metadata"],
        required: &["amount", "currency"],
        filled_by: &[],
        doc: "Create a payment.",
    }],
    fields: &[
        Field {
            name: "amount",
            kind: Kind::Amount,
            allowed: &[],
            required: false,
            doc: "The amount in the currency's smallest unit (cents).",
        },
        Field {
            name: "currency",
            kind: Kind::Text,
            allowed: &["eur", "gbp", "usd"],
            required: false,
            doc: "Three-letter currency code, lower case.",
        },
        Field {
            name: "description",
            kind: Kind::Text,
            allowed: &[],
            required: false,
            doc: "Shown to people.",
        },
        Field {
            name: "metadata",
            kind: Kind::StringMap,
            allowed: &[],
            required: false,
            doc: "Your own key-value data, returned as given.",
        },
    ],
};

/// The operator's settings, checked: what `build-request` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub api_version: String,
}

/// `configure`: every non-secret setting with a value, defaults included.
/// The error names the setting and says what is wrong with its value.
pub fn configure(given: &[(String, String)]) -> Result<Config, String> {
    let values = PROVIDER.setting_values(given)?;
    let value = |name: &str| setting_value(&values, name);
    let api_version = value("api_version");
    if api_version.is_empty() || !api_version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`api_version` must be a version like 2024-06-01, not {api_version:?}"
        ));
    }
    Ok(Config { api_version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_passes_the_hosts_load_checks() {
        assert_eq!(PROVIDER.check(), Vec::<String>::new());
    }

    #[test]
    fn api_version_has_a_default_and_is_checked() {
        assert_eq!(configure(&[]).unwrap().api_version, "2024-06-01");
        let err = configure(&[("api_version".to_string(), "a b".to_string())]).unwrap_err();
        assert!(err.starts_with("`api_version` must be"), "{err}");
    }
}
