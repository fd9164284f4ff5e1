//! When to retry a request, and how long to wait first.
//!
//! Two halves, owned by two parties:
//!
//! - **which** outcomes are worth another attempt is the provider's rule,
//!   declared by the plugin (`retry-policy` in its `info`) and held here as
//!   [`RetryRules`]: retryable status ranges, retryable transport failures,
//!   a should-retry response header that overrides the status when present
//!   (`true` retries, `false` does not), and whether a `Retry-After` is
//!   honoured;
//! - **how** is the host's mechanics ([`RetryPolicy`], the operator's
//!   `--max-retries`): at most `max_retries` retries (default 2); wait
//!   `min(initial * 2^(n-1), max)` before retry `n`, times a jitter factor in
//!   [0.5, 1], never less than `initial`, and never less than an honoured
//!   `Retry-After` of at most [`MAX_RETRY_AFTER`] (a longer one is not
//!   waited for: the attempt is not retried early, it is retried on the
//!   backoff, as the official SDKs do).
//!
//! Both are pure functions, so the executor only asks and tests can check
//! every branch. The same idempotency key goes with every attempt (the
//! executor owns that).

use std::time::Duration;

use reqwest::header::HeaderName;

use crate::plugin::wit;

/// The host's retry mechanics.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Longest `Retry-After` the host waits for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The provider's rules: which outcomes are retryable (from the plugin).
#[derive(Debug, Clone)]
pub struct RetryRules {
    statuses: Vec<(u16, u16)>,
    failures: Vec<wit::FailureKind>,
    should_retry_header: Option<HeaderName>,
    honour_retry_after: bool,
}

impl RetryRules {
    /// The plugin's declared policy (its header names were checked at load).
    pub fn new(policy: &wit::RetryPolicy) -> Self {
        Self {
            statuses: policy.statuses.iter().map(|r| (r.first, r.last)).collect(),
            failures: policy.failures.clone(),
            should_retry_header: policy
                .should_retry_header
                .as_deref()
                .and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok()),
            honour_retry_after: policy.honour_retry_after,
        }
    }

    /// The header by which the provider says whether to retry, if any.
    pub fn should_retry_header(&self) -> Option<&HeaderName> {
        self.should_retry_header.as_ref()
    }

    /// Whether `Retry-After` is honoured.
    pub fn honours_retry_after(&self) -> bool {
        self.honour_retry_after
    }

    fn retryable(&self, attempt: &Attempt) -> bool {
        match *attempt {
            Attempt::Response {
                should_retry: Some(decision),
                ..
            } => decision,
            Attempt::Response { status, .. } => self
                .statuses
                .iter()
                .any(|&(first, last)| (first..=last).contains(&status)),
            Attempt::Failed(kind) => self.failures.contains(&kind),
        }
    }
}

/// What the executor saw on one attempt, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A response with this status, the should-retry header's value and the
    /// `Retry-After` it asked for (when the rules honour it).
    Response {
        status: u16,
        should_retry: Option<bool>,
        retry_after: Option<Duration>,
    },
    /// No usable response.
    Failed(wit::FailureKind),
}

impl RetryPolicy {
    /// Whether to try again after `attempt`, given `retries_done` so far.
    pub fn should_retry(&self, rules: &RetryRules, attempt: &Attempt, retries_done: u32) -> bool {
        retries_done < self.max_retries && rules.retryable(attempt)
    }

    /// Delay before retry number `retry` (1-based) after `attempt`; `jitter`
    /// in [0, 1].
    pub fn delay(&self, retry: u32, jitter: f64, attempt: &Attempt) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let base = self.initial_delay.as_secs_f64() * f64::from(1u32 << exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jittered = capped * (0.5 * (1.0 + jitter.clamp(0.0, 1.0)));
        let backoff = Duration::from_secs_f64(jittered.max(self.initial_delay.as_secs_f64()));
        match attempt {
            Attempt::Response {
                retry_after: Some(asked),
                ..
            } if *asked <= MAX_RETRY_AFTER => backoff.max(*asked),
            _ => backoff,
        }
    }
}

/// Parses a should-retry header value; anything but `true`/`false` is ignored.
pub fn parse_should_retry(value: Option<&str>) -> Option<bool> {
    match value.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Parses a `Retry-After` in whole seconds; an HTTP date or junk is ignored.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit::FailureKind as F;

    /// A policy shaped like the official Stripe SDKs' (test data: the real
    /// one is the Stripe plugin's to declare).
    fn sdk_like() -> RetryRules {
        RetryRules::new(&wit::RetryPolicy {
            statuses: vec![
                wit::StatusRange {
                    first: 409,
                    last: 409,
                },
                wit::StatusRange {
                    first: 500,
                    last: 599,
                },
            ],
            failures: vec![F::Connect, F::Timeout, F::Io],
            should_retry_header: Some("X-Should-Retry".into()),
            honour_retry_after: true,
            idempotency_header: None,
        })
    }

    fn response(status: u16, should_retry: Option<bool>) -> Attempt {
        Attempt::Response {
            status,
            should_retry,
            retry_after: None,
        }
    }

    #[test]
    fn retries_declared_statuses_and_failures() {
        let (p, r) = (RetryPolicy::default(), sdk_like());
        assert!(p.should_retry(&r, &response(500, None), 0));
        assert!(p.should_retry(&r, &response(503, None), 1));
        assert!(p.should_retry(&r, &response(409, None), 0));
        assert!(p.should_retry(&r, &Attempt::Failed(F::Connect), 0));
        assert!(p.should_retry(&r, &Attempt::Failed(F::Timeout), 0));
    }

    #[test]
    fn does_not_retry_what_is_not_declared() {
        let (p, r) = (RetryPolicy::default(), sdk_like());
        for status in [400, 401, 402, 404, 429] {
            assert!(!p.should_retry(&r, &response(status, None), 0), "{status}");
        }
        assert!(!p.should_retry(&r, &Attempt::Failed(F::BodyTooLarge), 0));
        let none = RetryRules::new(&wit::RetryPolicy {
            statuses: Vec::new(),
            failures: Vec::new(),
            should_retry_header: None,
            honour_retry_after: false,
            idempotency_header: None,
        });
        assert!(!p.should_retry(&none, &response(500, None), 0));
        assert!(!p.should_retry(&none, &Attempt::Failed(F::Connect), 0));
    }

    #[test]
    fn should_retry_header_overrides_status() {
        let (p, r) = (RetryPolicy::default(), sdk_like());
        assert!(!p.should_retry(&r, &response(500, Some(false)), 0));
        assert!(p.should_retry(&r, &response(400, Some(true)), 0));
    }

    #[test]
    fn stops_after_max_retries() {
        let (p, r) = (RetryPolicy::default(), sdk_like());
        assert!(p.should_retry(&r, &response(500, None), 1));
        assert!(!p.should_retry(&r, &response(500, None), 2));
    }

    #[test]
    fn backoff_doubles_caps_and_respects_the_floor() {
        let p = RetryPolicy::default();
        let a = response(500, None);
        assert_eq!(p.delay(1, 1.0, &a), Duration::from_millis(500));
        assert_eq!(p.delay(2, 1.0, &a), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0, &a), Duration::from_secs(2));
        assert_eq!(p.delay(10, 1.0, &a), Duration::from_secs(5));
        // Full jitter halves the wait, but never below the initial delay.
        assert_eq!(p.delay(1, 0.0, &a), Duration::from_millis(500));
        assert_eq!(p.delay(3, 0.0, &a), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_its_cap() {
        let p = RetryPolicy::default();
        let after = |secs| Attempt::Response {
            status: 503,
            should_retry: None,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(p.delay(1, 1.0, &after(3)), Duration::from_secs(3));
        assert_eq!(p.delay(3, 1.0, &after(1)), Duration::from_secs(2));
        assert_eq!(p.delay(1, 1.0, &after(61)), Duration::from_millis(500));
    }

    #[test]
    fn header_values_parse_loosely() {
        assert_eq!(parse_should_retry(Some("true")), Some(true));
        assert_eq!(parse_should_retry(Some(" False ")), Some(false));
        assert_eq!(parse_should_retry(Some("maybe")), None);
        assert_eq!(parse_should_retry(None), None);
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}
