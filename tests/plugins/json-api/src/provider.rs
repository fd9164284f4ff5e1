//! What the `jsonapi` provider is: its settings, auth, retry policy and
//! objects ([`PROVIDER`]), and the configuration `configure` accepts
//! ([`Config`]).
//!
//! Every choice here differs from Stripe's where the contract lets it:
//! header auth instead of basic, a required non-secret setting that goes in
//! the path, a retry policy of 429 and 503 only (not 500, not connection
//! failures), `Retry-After` honoured, its own idempotency header, and no
//! should-retry header.

use payhost_plugin_kit::schema::{
    Auth, FailureKind, Field, Kind, Method, Object, Operation, Provider, ResponseRule, RetryPolicy,
    Setting, setting_value,
};

pub const PROVIDER: Provider = Provider {
    name: "jsonapi",
    version: env!("CARGO_PKG_VERSION"),
    doc: "A JSON order API (payhost test plugin): orders and their shipments, per tenant.",
    default_base_url: "https://api.jsonapi.example",
    settings: &[
        Setting {
            name: "token",
            doc: "The API token, sent in the X-Api-Token header",
            required: true,
            default: None,
            secret: true,
        },
        Setting {
            name: "tenant",
            doc: "The tenant whose orders the requests are for (in every path)",
            required: true,
            default: None,
            secret: false,
        },
        Setting {
            name: "region",
            doc: "The region that serves the tenant: eu or us (sent as X-Region)",
            required: false,
            default: Some("eu"),
            secret: false,
        },
    ],
    auth: Auth::Header {
        name: "X-Api-Token",
        secret: "token",
    },
    retry: RetryPolicy {
        statuses: &[(429, 429), (503, 503)],
        failures: &[FailureKind::Timeout],
        should_retry_header: None,
        honour_retry_after: true,
        idempotency_header: Some("X-Request-Id"),
    },
    objects: &[ORDER, SHIPMENT],
    webhooks: None,
    responses: ResponseRule::JsonObjectIsSuccess,
};

const ORDER: Object = Object {
    name: "order",
    doc: "An order: a total, its currency and the lines it is made of.",
    operations: &[
        Operation {
            name: "create",
            method: Method::Post,
            path: "/tenants/{tenant}/orders",
            needs_id: false,
            needs_parent: false,
            accepts: &["total", "currency", "note", "lines", "tags", "meta"],
            required: &["total", "currency"],
            filled_by: &[],
            doc: "Create an order.",
        },
        Operation {
            name: "retrieve",
            method: Method::Get,
            path: "/tenants/{tenant}/orders/{id}",
            needs_id: true,
            needs_parent: false,
            accepts: &[],
            required: &[],
            filled_by: &[],
            doc: "Fetch an order by id.",
        },
    ],
    fields: &[
        Field {
            name: "total",
            kind: Kind::Amount,
            allowed: &[],
            required: false,
            doc: "The total in the currency's smallest unit (cents).",
        },
        Field {
            name: "currency",
            kind: Kind::Text,
            allowed: &["eur", "usd"],
            required: false,
            doc: "The currency of the total.",
        },
        Field {
            name: "note",
            kind: Kind::Text,
            allowed: &[],
            required: false,
            doc: "A note for people.",
        },
        Field {
            name: "lines",
            kind: Kind::ObjectList,
            allowed: &[],
            required: false,
            doc: "What was ordered.",
        },
        Field {
            name: "lines[].sku",
            kind: Kind::Text,
            allowed: &[],
            required: true,
            doc: "the product's stock-keeping unit",
        },
        Field {
            name: "lines[].qty",
            kind: Kind::Amount,
            allowed: &[],
            required: false,
            doc: "how many (1 when absent)",
        },
        Field {
            name: "tags",
            kind: Kind::StringList,
            allowed: &[],
            required: false,
            doc: "Labels to find the order by.",
        },
        Field {
            name: "meta",
            kind: Kind::StringMap,
            allowed: &[],
            required: false,
            doc: "Your own key-value data, returned as given.",
        },
    ],
};

const SHIPMENT: Object = Object {
    name: "shipment",
    doc: "A shipment of (part of) an order.",
    operations: &[Operation {
        name: "create",
        method: Method::Post,
        path: "/tenants/{tenant}/orders/{parent}/shipments",
        needs_id: false,
        needs_parent: true,
        accepts: &["carrier", "tracking"],
        required: &["carrier"],
        filled_by: &[],
        doc: "Ship an order (the parent).",
    }],
    fields: &[
        Field {
            name: "carrier",
            kind: Kind::Text,
            allowed: &[],
            required: false,
            doc: "Who carries the parcel.",
        },
        Field {
            name: "tracking",
            kind: Kind::Text,
            allowed: &[],
            required: false,
            doc: "The carrier's tracking number.",
        },
    ],
};

/// The operator's settings, checked: what `build-request` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Goes into every path, so it is held to id characters.
    pub tenant: String,
    /// `eu` or `us`.
    pub region: String,
}

/// `configure`: every non-secret setting with a value, defaults included.
/// The error names the setting and says what is wrong with its value.
pub fn configure(given: &[(String, String)]) -> Result<Config, String> {
    let values = PROVIDER.setting_values(given)?;
    let value = |name: &str| setting_value(&values, name);
    let tenant = value("tenant");
    let tenant_ok = (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !tenant_ok {
        return Err(format!(
            "`tenant` must be 1 to 64 letters, digits, `_` or `-` (it goes into the path), not {tenant:?}"
        ));
    }
    let region = value("region");
    if !["eu", "us"].contains(&region.as_str()) {
        return Err(format!("`region` must be `eu` or `us`, not {region:?}"));
    }
    Ok(Config { tenant, region })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_description_passes_the_hosts_load_checks() {
        assert_eq!(PROVIDER.check(), Vec::<String>::new());
    }

    #[test]
    fn region_defaults_to_eu() {
        let config = configure(&given(&[("tenant", "acme")])).unwrap();
        assert_eq!(config.region, "eu");
        assert_eq!(config.tenant, "acme");
    }

    #[test]
    fn tenant_is_required_and_the_error_says_how_to_set_it() {
        let err = configure(&given(&[("region", "us")])).unwrap_err();
        assert!(err.contains("`tenant` is required"), "{err}");
        assert!(err.contains("JSONAPI_TENANT"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let err = configure(&given(&[("tenant", "a/../b")])).unwrap_err();
        assert!(err.starts_with("`tenant` must be"), "{err}");
        let err = configure(&given(&[("tenant", "acme"), ("region", "mars")])).unwrap_err();
        assert!(err.starts_with("`region` must be"), "{err}");
    }

    #[test]
    fn secrets_and_unknown_names_are_refused() {
        let err = configure(&given(&[("tenant", "acme"), ("token", "t")])).unwrap_err();
        assert!(err.contains("secret"), "{err}");
        let err = configure(&given(&[("tenant", "acme"), ("colour", "red")])).unwrap_err();
        assert!(err.contains("`colour` is not a setting"), "{err}");
    }
}
