//! The provider secret, kept out of everything but the Authorization header.
//!
//! [`Secret`] has no `Display`, and its `Debug` prints a fixed placeholder,
//! so formatting a struct that holds one (in a log line, an error, a panic)
//! cannot leak it. The only way to read it is [`Secret::expose`], which the
//! HTTP executor calls when it sets the header. It is never passed to a
//! plugin, written to a queue or stored in Redis: flow jobs carry no secret,
//! and a worker takes its own from its configuration.

use std::fmt;
use std::sync::Arc;

#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself; for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk_test_sentinel");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "sk_test_sentinel");
    }
}
