//! What `info` declares about Stripe beyond the object schema: the provider's
//! name and doc, its default base URL, how requests authenticate and which
//! outcomes are retried. The component glue turns these into WIT records.
//!
//! Retries follow the official SDKs (stripe-python's `_should_retry` and
//! `_sleep_time_seconds`): retry a connection error or timeout, a 409 and
//! every 5xx; a `Stripe-Should-Retry: true|false` header overrides the
//! status; wait at least the `Retry-After` the response asks for (the SDK
//! honours up to 60 s); the same `Idempotency-Key` on every attempt of a
//! POST. A 429 is not retried, and neither is a body over the host's size
//! cap (the same request would bring the same body back).

use crate::response::FailureKind;
use crate::settings::SECRET_KEY;

/// Short provider name (flow scripts see it as `CALLER_ID`).
pub const NAME: &str = "stripe";

/// One line for people.
pub const DOC: &str = "Stripe REST API v1 (form-encoded requests, as stripe-python 16 sends them)";

/// Where requests go when the operator configures no base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Basic auth: the secret key as the user name, an empty password.
pub const AUTH_USER: &str = SECRET_KEY;

/// Which outcomes the host retries (WIT `retry-policy`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Inclusive status ranges.
    pub statuses: &'static [(u16, u16)],
    pub failures: &'static [FailureKind],
    pub should_retry_header: Option<&'static str>,
    pub honour_retry_after: bool,
    pub idempotency_header: Option<&'static str>,
}

pub const RETRY: RetryPolicy = RetryPolicy {
    statuses: &[(409, 409), (500, 599)],
    failures: &[FailureKind::Connect, FailureKind::Timeout, FailureKind::Io],
    should_retry_header: Some("Stripe-Should-Retry"),
    honour_retry_after: true,
    idempotency_header: Some("Idempotency-Key"),
};
