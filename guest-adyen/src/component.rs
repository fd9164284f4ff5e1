//! The component glue (wasm32 only): the `payhost:plugin/provider@0.4.0`
//! exports, on the plugin kit's bindings and conversions.
//!
//! Adyen does not use the kit's generic `Component<P>`: its schema is
//! nested (fields with children, generated from Adyen's OpenAPI definition)
//! rather than a kit `schema::Provider`, so `info` flattens it here
//! (`amount.currency`, `lineItems[].id`); and its settings are kept as
//! below. Everything else (WIT types, settings, auth, retry policy,
//! outcomes, payloads, requests, errors and webhooks) converts with the kit's
//! functions, so the two cannot drift apart.
//!
//! The one piece of state is the operator's settings, which `configure`
//! hands over once per instance, before any `build-request`. A component
//! instance is one single-threaded wasm instance, so its state can only be
//! module-level: a `OnceLock`, written once and read-only afterwards (a
//! second `configure` with other values is refused rather than changing
//! what earlier requests were built with).

use std::sync::OnceLock;

use payhost_plugin_kit::component::bindings;
use payhost_plugin_kit::component::{
    auth, field_kind, http_request, operation, outcome, payload, plugin_error, retry_policy,
    setting, webhook_check, webhook_event, webhook_request, webhook_scheme,
};

use bindings::exports::payhost::plugin::provider::Guest;
use bindings::payhost::plugin::types as wit;

use crate::error::{ErrorCode, PluginError};
use crate::response;
use crate::schema;
use crate::settings::{self, Settings};
use crate::tree;

static SETTINGS: OnceLock<Settings> = OnceLock::new();

struct AdyenPlugin;

bindings::export!(AdyenPlugin with_types_in payhost_plugin_kit::component::bindings);

impl Guest for AdyenPlugin {
    fn info() -> wit::ProviderInfo {
        wit::ProviderInfo {
            name: "adyen".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            doc: "Adyen Checkout API v71 (payments, modifications, payment links, sessions, payment methods)".to_string(),
            default_base_url: "https://checkout-test.adyen.com/v71".to_string(),
            settings: settings::SETTINGS.iter().map(setting).collect(),
            auth: auth(&settings::AUTH),
            retry: retry_policy(&settings::RETRY),
            objects: schema::OBJECTS.iter().map(object_info).collect(),
            webhooks: Some(webhook_scheme(&settings::WEBHOOKS)),
            // `response::parse_response` passes a 2xx JSON object through
            // unchanged (its tests say so), so the host does that itself.
            responses: wit::ResponseRule::JsonObjectIsSuccess,
        }
    }

    fn configure(list: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::configure(&list)?;
        let kept = SETTINGS.get_or_init(|| settings.clone());
        if *kept == settings {
            Ok(())
        } else {
            Err("the plugin is already configured with other settings".to_string())
        }
    }

    fn build_request(
        object: String,
        operation: String,
        input: wit::RequestInput,
    ) -> Result<wit::HttpRequest, wit::PluginError> {
        let params = value_tree(&object, input.params, "parameter")?;
        let extra = value_tree(&object, input.extra, "extra-parameter (`.set`)")?;
        // Before `configure` (the host never does that) nothing is filled in.
        let unconfigured = Settings::default();
        let settings = SETTINGS.get().unwrap_or(&unconfigured);
        let native = crate::request::Input {
            id: input.id.as_deref(),
            parent: input.parent.as_deref(),
            params,
            extra,
        };
        crate::request::build_request(settings, &object, &operation, native)
            .map(http_request)
            .map_err(plugin_error)
    }

    fn parse_response(
        _object: String,
        _operation: String,
        transport: wit::TransportOutcome,
    ) -> wit::FlowPayload {
        payload(response::parse_response(outcome(transport)))
    }

    fn check_webhook(request: wit::WebhookRequest) -> Result<wit::WebhookCheck, String> {
        crate::webhook::check_webhook(&webhook_request(request)).map(webhook_check)
    }

    fn parse_webhook(request: wit::WebhookRequest) -> Result<Vec<wit::WebhookEvent>, String> {
        crate::webhook::parse_webhook(&webhook_request(request))
            .map(|events| events.into_iter().map(webhook_event).collect())
    }
}

/// The tree `tree` carries, checked by the kit; a bad one is
/// `malformed-tree`, saying which tree (`what`) and what is wrong.
fn value_tree(
    object: &str,
    tree: wit::ValueTree,
    what: &str,
) -> Result<tree::Value, wit::PluginError> {
    let malformed = |e: String| {
        plugin_error(PluginError::new(
            ErrorCode::MalformedTree,
            object,
            None,
            format!("malformed {what} tree: {e}"),
        ))
    };
    let wire = tree::Tree::from_words(&tree.nodes, tree.text).map_err(malformed)?;
    tree::decode(&wire).map_err(malformed)
}

fn object_info(o: &schema::Object) -> wit::ObjectInfo {
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    wit::ObjectInfo {
        name: o.name.to_string(),
        doc: o.doc.to_string(),
        operations: o.operations.iter().map(operation).collect(),
        fields: o
            .flat_fields()
            .into_iter()
            .map(|(name, f)| wit::FieldInfo {
                name,
                kind: field_kind(f.kind),
                allowed: strings(f.allowed),
                required: f.required,
                doc: f.doc.to_string(),
            })
            .collect(),
    }
}
