//! Why a request could not be built (WIT `plugin-error`), and the "did you
//! mean" suggestions its messages carry.

// The error type itself is the kit's (WIT `plugin-error`): the glue converts
// it, and every plugin reports the same codes. What is Adyen's own is the
// "did you mean" suggestion its messages carry.
pub use payhost_plugin_kit::params::{ErrorCode, PluginError};

/// Up to three candidates closest to `wanted` (by edit distance, at most a
/// third of the word plus one edit away), best first.
pub fn close_matches<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = wanted.chars().count() / 3 + 1;
    let mut scored: Vec<(usize, &'a str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(wanted, c);
            (d <= limit && c != wanted).then_some((d, c))
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

/// Levenshtein distance over chars, case-insensitive (`merchantaccount`
/// finds `merchantAccount`), inputs capped at 64 chars: this runs only on
/// the error path, for short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().take(64).flat_map(char::to_lowercase).collect();
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
    fn suggestions() {
        let fields = ["merchantAccount", "reference", "returnUrl", "amount"];
        assert_eq!(
            close_matches("merchantaccount", fields.into_iter()),
            vec!["merchantAccount"]
        );
        assert_eq!(
            close_matches("merchantAcount", fields.into_iter()),
            vec!["merchantAccount"]
        );
        assert_eq!(
            close_matches("refrence", fields.into_iter()),
            vec!["reference"]
        );
        assert_eq!(did_you_mean(&["amount"]), " (did you mean `amount`?)");
        assert_eq!(did_you_mean(&["a", "b"]), " (did you mean `a` or `b`?)");
        assert_eq!(did_you_mean(&[]), "");
    }
}
