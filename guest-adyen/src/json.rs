//! The JSON body: writing a parameter tree as JSON, and merging the `.set`
//! escape hatch into it.
//!
//! - Integers stay integers (`"value":1000`), floats are written in Rust's
//!   shortest round-trip form (`0.1`, `2.0`, `1e300`), strings are escaped
//!   as RFC 8259 requires. A non-finite float has no JSON form and is
//!   refused, naming its path.
//! - `Null` map entries are skipped (not set); a `Null` list element is
//!   written as `null` (validated params never hold one; `.set` may).
//! - `.set("a[b]", v)`, `.set("a.b", v)` and `.set("lineItems[0].sku", v)`
//!   address a place in the body: maps are created on the way, an index
//!   steps into an existing list (or appends at its end), and at the place a
//!   map merges into a map, key by key; anything else replaces what was
//!   there. Bracketed segments are taken verbatim, so
//!   `additionalData[riskdata.basket.item1.sku]` is one key, as Adyen spells
//!   its additional-data keys.
//!
//! Nesting is bounded by the tree decoder (32 levels), so the recursion is.

use crate::tree::Value;

/// Writes `value` as JSON into `out`; `Err(path)` names a non-finite float.
pub fn write(out: &mut String, value: &Value) -> Result<(), String> {
    write_at(out, value, &mut String::new())
}

fn write_at(out: &mut String, value: &Value, path: &mut String) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => {
            // Debug is the shortest string that reads back to the same f64,
            // with an exponent for very large or small ones (`1e300`,
            // `1.5e-7`, `2.0`): valid JSON as it is, for finite values.
            out.push_str(&format!("{f:?}"));
        }
        Value::Float(_) => return Err(path.clone()),
        Value::Text(s) => write_str(out, s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write_at(out, item, path)?;
                path.truncate(len);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            let mut first = true;
            for (key, item) in entries {
                if item.is_null() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_str(out, key);
                out.push(':');
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                write_at(out, item, path)?;
                path.truncate(len);
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Writes `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One step of a `.set` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// A bracketed run of digits: a key in a map, an index in a list.
    Index(usize, String),
}

/// Splits a `.set` path into steps: dots separate keys outside brackets,
/// `[...]` is one step taken verbatim. `None` for an unclosed bracket, an
/// empty step, stray text after `]`, or more than [`MAX_PATH_STEPS`] steps.
pub fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    let mut key = String::new();
    let mut after_bracket = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '[' => {
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                } else if !after_bracket && !steps.is_empty() {
                    return None; // `a.[b]`
                }
                let end = rest.find(']')?;
                let inner = &rest[..end];
                rest = &rest[end + 1..];
                if inner.is_empty() {
                    return None;
                }
                steps.push(match inner.parse::<usize>() {
                    Ok(i) if inner.bytes().all(|b| b.is_ascii_digit()) => {
                        Step::Index(i, inner.to_string())
                    }
                    _ => Step::Key(inner.to_string()),
                });
                after_bracket = true;
            }
            '.' => {
                if key.is_empty() && !after_bracket {
                    return None;
                }
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                }
                after_bracket = false;
                if rest.is_empty() {
                    return None;
                }
            }
            c => {
                if after_bracket {
                    return None; // `a[b]c`
                }
                key.push(c);
            }
        }
    }
    if !key.is_empty() {
        steps.push(Step::Key(key));
    }
    (!steps.is_empty() && steps.len() <= MAX_PATH_STEPS).then_some(steps)
}

/// Most steps a `.set` path may have: the tree's own depth limit, which
/// also bounds [`set_at`]'s recursion.
pub const MAX_PATH_STEPS: usize = crate::tree::MAX_DEPTH;

/// Puts `value` at `steps` inside `body` (a map), as the module doc says.
/// `Err` with a reason when a step cannot be taken (an index past a list's
/// end, or a key into a scalar or a list).
pub fn set_at(body: &mut Value, steps: &[Step], value: Value) -> Result<(), String> {
    let Some((step, rest)) = steps.split_first() else {
        merge(body, value);
        return Ok(());
    };
    match (body, step) {
        (Value::List(items), Step::Index(i, _)) => {
            if *i == items.len() {
                items.push(Value::Map(Vec::new()));
            }
            match items.get_mut(*i) {
                Some(item) => set_at(item, rest, value),
                None => Err(format!(
                    "index {i} is past the end of a list of {} items",
                    items.len()
                )),
            }
        }
        (Value::Map(entries), Step::Key(k) | Step::Index(_, k)) => {
            let slot = match entries.iter().position(|(key, _)| key == k) {
                Some(at) => &mut entries[at].1,
                None => {
                    entries.push((k.clone(), Value::Null));
                    &mut entries.last_mut().expect("just pushed").1
                }
            };
            if rest.is_empty() {
                merge(slot, value);
                return Ok(());
            }
            if !matches!(slot, Value::Map(_) | Value::List(_)) {
                *slot = Value::Map(Vec::new());
            }
            set_at(slot, rest, value)
        }
        (Value::List(_), Step::Key(k)) => {
            Err(format!("`{k}` is a key, but the value there is a list"))
        }
        (_, _) => Err("the value there is not a map or a list".to_string()),
    }
}

/// A map into a map merges key by key; anything else replaces.
fn merge(slot: &mut Value, value: Value) {
    match (slot, value) {
        (Value::Map(old), Value::Map(new)) => {
            for (k, v) in new {
                match old.iter_mut().find(|(key, _)| *key == k) {
                    Some((_, existing)) => merge(existing, v),
                    None => old.push((k, v)),
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Text(v.into())
    }

    fn json(v: &Value) -> String {
        let mut out = String::new();
        write(&mut out, v).unwrap();
        out
    }

    #[test]
    fn writes_json_that_serde_reads_back() {
        let v = Value::Map(vec![
            ("value".into(), Value::Int(-9_007_199_254_740_993)),
            ("f".into(), Value::Float(0.1)),
            ("big".into(), Value::Float(1e300)),
            ("s".into(), s("q\"\\\n\u{1}é")),
            ("gone".into(), Value::Null),
            (
                "l".into(),
                Value::List(vec![Value::Bool(true), Value::Null]),
            ),
        ]);
        let text = json(&v);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["value"], serde_json::json!(-9_007_199_254_740_993i64));
        assert_eq!(back["f"].as_f64(), Some(0.1));
        assert_eq!(back["big"].as_f64(), Some(1e300));
        assert_eq!(back["s"], "q\"\\\n\u{1}é");
        assert!(back.get("gone").is_none());
        assert_eq!(back["l"], serde_json::json!([true, null]));
        assert!(text.starts_with("{\"value\":-9007199254740993,"), "{text}");
        assert!(text.contains(r#""f":0.1,"big":1e300,"#), "{text}");
        assert_eq!(
            json(&Value::List(vec![Value::Float(2.0), Value::Float(-1.5e-7)])),
            "[2.0,-1.5e-7]"
        );
    }

    #[test]
    fn refuses_non_finite_floats_naming_the_path() {
        let v = Value::Map(vec![(
            "a".into(),
            Value::List(vec![Value::Map(vec![("b".into(), Value::Float(f64::NAN))])]),
        )]);
        assert_eq!(write(&mut String::new(), &v), Err("a[0].b".to_string()));
    }

    #[test]
    fn paths() {
        let k = |s: &str| Step::Key(s.into());
        assert_eq!(parse_path("a"), Some(vec![k("a")]));
        assert_eq!(parse_path("a.b"), Some(vec![k("a"), k("b")]));
        assert_eq!(parse_path("a[b]"), Some(vec![k("a"), k("b")]));
        assert_eq!(
            parse_path("lineItems[0].sku"),
            Some(vec![k("lineItems"), Step::Index(0, "0".into()), k("sku")])
        );
        assert_eq!(
            parse_path("additionalData[riskdata.basket.item1.sku]"),
            Some(vec![k("additionalData"), k("riskdata.basket.item1.sku")])
        );
        for bad in ["", ".", "a.", ".a", "a..b", "a[", "a[]", "a[b]c", "a.[b]"] {
            assert_eq!(parse_path(bad), None, "{bad:?}");
        }
        let deep = vec!["a"; MAX_PATH_STEPS].join(".");
        assert!(parse_path(&deep).is_some());
        assert_eq!(parse_path(&format!("{deep}.a")), None);
        assert_eq!(parse_path(&"a.".repeat(100_000)), None);
    }

    #[test]
    fn set_merges_into_the_body() {
        let mut body = Value::Map(vec![
            (
                "paymentMethod".into(),
                Value::Map(vec![("type".into(), s("scheme"))]),
            ),
            (
                "lineItems".into(),
                Value::List(vec![Value::Map(vec![("id".into(), s("1"))])]),
            ),
        ]);
        set_at(
            &mut body,
            &parse_path("paymentMethod.holderName").unwrap(),
            s("A"),
        )
        .unwrap();
        set_at(&mut body, &parse_path("lineItems[0][sku]").unwrap(), s("S")).unwrap();
        set_at(&mut body, &parse_path("lineItems[1].id").unwrap(), s("2")).unwrap();
        set_at(&mut body, &parse_path("new[x]").unwrap(), Value::Int(1)).unwrap();
        assert!(set_at(&mut body, &parse_path("lineItems[5].id").unwrap(), s("x")).is_err());
        assert!(set_at(&mut body, &parse_path("lineItems.id").unwrap(), s("x")).is_err());
        assert_eq!(
            json(&body),
            r#"{"paymentMethod":{"type":"scheme","holderName":"A"},"lineItems":[{"id":"1","sku":"S"},{"id":"2"}],"new":{"x":1}}"#
        );
    }

    /// The same value as serde_json sees it, nulls in maps skipped.
    fn expected(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Text(s) => s.as_str().into(),
            Value::List(items) => items.iter().map(expected).collect(),
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries.iter().filter(|(_, v)| !v.is_null()) {
                    map.insert(k.clone(), expected(v));
                }
                serde_json::Value::Object(map)
            }
        }
    }

    /// Random trees of every kind of value (keys unique per map, floats
    /// finite) read back by serde_json as the same JSON.
    #[test]
    fn random_trees_are_valid_json_with_the_same_values() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        fn arbitrary(next: &mut impl FnMut() -> u64, depth: u32) -> Value {
            let pick = next() % if depth > 3 { 5 } else { 7 };
            match pick {
                0 => Value::Null,
                1 => Value::Bool(next().is_multiple_of(2)),
                2 => Value::Int(next() as i64),
                3 => {
                    let f = f64::from_bits(next());
                    Value::Float(if f.is_finite() { f } else { 0.5 })
                }
                4 => {
                    let chars = ['a', '"', '\\', '\n', '\u{1}', 'é', '€', '😀', ' ', '\u{7f}'];
                    let len = next() % 8;
                    Value::Text((0..len).map(|_| chars[(next() % 10) as usize]).collect())
                }
                5 => Value::List(
                    (0..next() % 4)
                        .map(|_| arbitrary(next, depth + 1))
                        .collect(),
                ),
                _ => Value::Map(
                    (0..next() % 4)
                        .map(|i| (format!("k{i}"), arbitrary(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        for _ in 0..5_000 {
            let v = Value::Map(vec![("root".into(), arbitrary(&mut next, 0))]);
            let text = json(&v);
            let back: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            assert_eq!(back, expected(&v), "{text}");
        }
    }
}
