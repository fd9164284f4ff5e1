//! Why a request could not be built (WIT `plugin-error`).

use std::fmt;

/// WIT `plugin-error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    UnknownObject,
    UnknownOperation,
    UnknownField,
    InvalidValue,
    MissingField,
    MissingId,
    InvalidId,
    MalformedTree,
}

/// WIT `plugin-error`: shown to the script author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub code: ErrorCode,
    /// The object the request was for.
    pub object: String,
    /// The field at fault, as a path (`items[0].price`), when there is one.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl PluginError {
    pub fn new(code: ErrorCode, object: &str, field: Option<String>, message: String) -> Self {
        PluginError {
            code,
            object: object.to_string(),
            field,
            message,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

/// Up to three candidates closest to `wanted` (by edit distance, at most a
/// third of the word plus one edit away), best first.
pub fn close_matches<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = wanted.chars().count() / 3 + 1;
    let mut scored: Vec<(usize, &'a str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(wanted, c);
            (d <= limit && d > 0).then_some((d, c))
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    scored.dedup_by_key(|(_, c)| *c);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// ` (did you mean `a` or `b`?)`, or nothing.
pub fn did_you_mean(matches: &[&str]) -> String {
    match matches {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|m| format!("`{m}`")).collect();
            format!(" (did you mean {} or `{last}`?)", init.join(", "))
        }
    }
}

/// Levenshtein distance over chars, with the inputs capped at 64 chars (this
/// runs only on the error path, for short field names).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("amout", "amount"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let fields = ["amount", "currency", "customer", "capture_method"];
        assert_eq!(close_matches("amout", fields.into_iter()), vec!["amount"]);
        assert_eq!(
            close_matches("zzzzzz", fields.into_iter()),
            Vec::<&str>::new()
        );
        assert_eq!(did_you_mean(&["amount"]), " (did you mean `amount`?)");
        assert_eq!(
            did_you_mean(&["a", "b", "c"]),
            " (did you mean `a`, `b` or `c`?)"
        );
        assert_eq!(did_you_mean(&[]), "");
    }
}
