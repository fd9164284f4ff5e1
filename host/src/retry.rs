//! When to retry a request, and how long to wait first.
//!
//! The rules are the official Stripe SDKs' (stripe-python's
//! `_should_retry` / `_sleep_time_seconds`), kept here as pure functions so
//! the HTTP executor only asks and tests can check every branch:
//!
//! - at most `max_retries` retries (default 2);
//! - a provider's should-retry header (`Stripe-Should-Retry`) decides when
//!   present: `true` retries, `false` does not, whatever the status;
//! - otherwise retry connection failures and timeouts, 409 Conflict and any
//!   status >= 500; never 429 or other 4xx;
//! - wait `min(initial * 2^(n-1), max)` seconds before retry `n`, times a
//!   jitter factor in [0.5, 1], and never less than `initial`.
//!
//! The same idempotency key goes with every attempt (the executor owns that).

use std::time::Duration;

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

/// What the executor saw on one attempt, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A response with this status and this should-retry header value, if any.
    Response {
        status: u16,
        should_retry: Option<bool>,
    },
    /// No response: connection refused or reset, or a timeout.
    ConnectionFailed,
    /// A response whose body was unusable for a reason a retry cannot fix
    /// (over the size cap).
    Unretryable,
}

impl RetryPolicy {
    /// Whether to try again after `attempt`, given `retries_done` so far.
    pub fn should_retry(&self, attempt: Attempt, retries_done: u32) -> bool {
        if retries_done >= self.max_retries {
            return false;
        }
        match attempt {
            Attempt::Response {
                should_retry: Some(decision),
                ..
            } => decision,
            Attempt::Response { status, .. } => status == 409 || status >= 500,
            Attempt::ConnectionFailed => true,
            Attempt::Unretryable => false,
        }
    }

    /// Delay before retry number `retry` (1-based); `jitter` in [0, 1].
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let base = self.initial_delay.as_secs_f64() * f64::from(1u32 << exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jittered = capped * (0.5 * (1.0 + jitter.clamp(0.0, 1.0)));
        Duration::from_secs_f64(jittered.max(self.initial_delay.as_secs_f64()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, should_retry: Option<bool>) -> Attempt {
        Attempt::Response {
            status,
            should_retry,
        }
    }

    #[test]
    fn retries_server_errors_conflicts_and_connection_failures() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(response(500, None), 0));
        assert!(p.should_retry(response(503, None), 1));
        assert!(p.should_retry(response(409, None), 0));
        assert!(p.should_retry(Attempt::ConnectionFailed, 0));
    }

    #[test]
    fn does_not_retry_client_errors_or_rate_limits() {
        let p = RetryPolicy::default();
        for status in [400, 401, 402, 404, 429] {
            assert!(!p.should_retry(response(status, None), 0), "{status}");
        }
        assert!(!p.should_retry(Attempt::Unretryable, 0));
    }

    #[test]
    fn should_retry_header_overrides_status() {
        let p = RetryPolicy::default();
        assert!(!p.should_retry(response(500, Some(false)), 0));
        assert!(p.should_retry(response(400, Some(true)), 0));
    }

    #[test]
    fn stops_after_max_retries() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(response(500, None), 1));
        assert!(!p.should_retry(response(500, None), 2));
    }

    #[test]
    fn backoff_doubles_caps_and_respects_the_floor() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(2));
        assert_eq!(p.delay(10, 1.0), Duration::from_secs(5));
        // Full jitter halves the wait, but never below the initial delay.
        assert_eq!(p.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn header_values_parse_loosely() {
        assert_eq!(parse_should_retry(Some("true")), Some(true));
        assert_eq!(parse_should_retry(Some(" False ")), Some(false));
        assert_eq!(parse_should_retry(Some("maybe")), None);
        assert_eq!(parse_should_retry(None), None);
    }
}
