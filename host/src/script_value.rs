//! JSON text to the value a flow sees (`parsed_data`, `parsed_error`,
//! `parsed_event`), built in one pass.
//!
//! Rhai's own `Deserialize for Dynamic` gives the same values, but it inserts
//! each key of an object into the map as it is read: for the 40-odd keys of a
//! typical provider object that is 40 searches from the root of a B-tree
//! with node splits, the largest cost of turning a response into a flow's
//! value. Here an object's entries are collected first and the map is built
//! from them at once (sorted, then filled leaf by leaf); the last of
//! duplicate keys wins, as with inserts. Numbers, strings, arrays and `null`
//! map exactly as Rhai maps them: integers that fit `i64` are integers, any
//! other number a float.
//!
//! The same pass enforces the payload's nesting limit, [`MAX_DEPTH`], on
//! what it builds and on what it skips, so no payload is walked twice.

use std::fmt;

use rhai::{Dynamic, Map};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::projection::Projection;

/// Deepest nesting of arrays and objects a payload may have, in both queues
/// (the payload itself is level 1): below serde_json's recursion limit
/// (128), and bounding how deep a flow's data starts out.
pub const MAX_DEPTH: usize = 100;

/// `text` as a script value; serde_json's error (with line and column) if it
/// is not JSON or nests deeper than [`MAX_DEPTH`].
pub fn from_json(text: &str) -> serde_json::Result<Dynamic> {
    from_json_projected(text, &Projection::Whole)
}

/// [`from_json`] building, of an object, only the top-level fields
/// `projection` keeps: the others are checked as JSON (syntax, escapes,
/// numbers, nesting) and skipped, so the text is refused or accepted as a
/// whole, whatever is kept.
pub fn from_json_projected(text: &str, projection: &Projection) -> serde_json::Result<Dynamic> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = deserializer.deserialize_any(ValueVisitor {
        keep: match projection {
            Projection::Whole => None,
            Projection::Fields(_) => Some(projection),
        },
        depth: 1,
    })?;
    deserializer.end()?;
    Ok(value)
}

/// Whether `text` is a payload [`from_json`] would accept, building nothing.
pub fn check_json(text: &str) -> serde_json::Result<()> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Skip { depth: 1 }.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// An array or object at `depth`, if the limit allows it.
fn enter<E: serde::de::Error>(depth: usize) -> Result<(), E> {
    if depth > MAX_DEPTH {
        return Err(E::custom(format!(
            "it nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct ValueSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Dynamic;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Dynamic, D::Error> {
        deserializer.deserialize_any(ValueVisitor {
            keep: None,
            depth: self.depth,
        })
    }
}

/// Builds a value at nesting level `depth`; `keep`, if any, says which
/// fields of an object to build (the top level's only: nested values are
/// built whole).
struct ValueVisitor<'p> {
    keep: Option<&'p Projection>,
    depth: usize,
}

/// Checks a value at nesting level `depth` and builds nothing.
#[derive(Clone, Copy)]
struct Skip {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        enter(self.depth)?;
        let inner = Skip {
            depth: self.depth + 1,
        };
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        enter(self.depth)?;
        let inner = Skip {
            depth: self.depth + 1,
        };
        while access.next_key::<IgnoredAny>()?.is_some() {
            access.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// A key of an object at the top of a projection (`keep`), or of any
/// object (`None`): the key if its field is built, `None` if it is skipped.
/// Read from the text as it is (borrowed, or serde_json's unescaped copy), so
/// a skipped key allocates nothing.
#[derive(Clone, Copy)]
struct KeySeed<'p> {
    keep: Option<&'p Projection>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<rhai::Identifier>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<rhai::Identifier>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.keep.is_none_or(|p| p.keeps(v)).then(|| v.into()))
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Dynamic, E> {
        Ok(Dynamic::from_bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Dynamic, E> {
        Ok(Dynamic::from_int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Dynamic, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Dynamic::from_int(v),
            Err(_) => Dynamic::from_float(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Dynamic, E> {
        Ok(Dynamic::from_float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Dynamic, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Dynamic, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::UNIT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        enter(self.depth)?;
        let inner = ValueSeed {
            depth: self.depth + 1,
        };
        let mut items = rhai::Array::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Dynamic::from_array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Dynamic, A::Error> {
        enter(self.depth)?;
        let inner = ValueSeed {
            depth: self.depth + 1,
        };
        let key = KeySeed { keep: self.keep };
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(kept) = access.next_key_seed(key)? {
            match kept {
                Some(key) => entries.push((key, access.next_value_seed(inner)?)),
                None => access.next_value_seed(Skip { depth: inner.depth })?,
            }
        }
        Ok(Dynamic::from_map(entries.into_iter().collect::<Map>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of value, escapes, duplicates and nesting: the same value
    /// as Rhai's own deserialisation gives.
    #[test]
    fn gives_what_rhais_own_deserialisation_gives() {
        for text in [
            r#"{"id":"pi_1","amount":2000,"big":18446744073709551615,"neg":-5,"f":1.5,
                "ok":true,"none":null,"list":[1,"a",{"b":[]}],"nested":{"z":1,"a":{"k":"v"}},
                "esc":"a\"b\\u00e9\n","dup":1,"dup":2,"k\u00e9y":"x"}"#,
            "[]",
            "{}",
            "\"text\"",
            "12",
            "null",
        ] {
            let ours = from_json(text).unwrap();
            let rhais: Dynamic = serde_json::from_str(text).unwrap();
            assert_eq!(format!("{ours:?}"), format!("{rhais:?}"), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for text in ["{", "{\"a\":}", "[1,]", "{} x", "", "{\"a\" 1}"] {
            assert!(from_json(text).is_err(), "{text}");
        }
    }

    const PAYLOAD: &str = r#"{"id":"pi_1","status":"ok","amount":2000,"amount":2500,
        "metadata":{"order_id":"6735","nested":{"deep":[1,2,{"x":null}]}},
        "types":["card","link"],"esc\u0061ped":"v\u00e9","empty":{},"f":1.5,"none":null}"#;

    #[test]
    fn a_projection_builds_only_the_fields_it_names() {
        let keep = |names: &[&str]| Projection::Fields(names.iter().map(|n| (*n).into()).collect());
        let value =
            from_json_projected(PAYLOAD, &keep(&["id", "amount", "metadata", "escaped"])).unwrap();
        assert_eq!(
            format!("{value:?}"),
            r#"#{"amount": 2500, "escaped": "vé", "id": "pi_1", "metadata": #{"nested": #{"deep": [1, 2, #{"x": ()}]}, "order_id": "6735"}}"#
        );
        assert_eq!(
            format!("{:?}", from_json_projected(PAYLOAD, &keep(&[])).unwrap()),
            "#{}"
        );
        // Not an object: given whole.
        assert_eq!(
            format!(
                "{:?}",
                from_json_projected("[1,{\"a\":2}]", &keep(&["b"])).unwrap()
            ),
            r#"[1, #{"a": 2}]"#
        );
        assert_eq!(
            format!(
                "{:?}",
                from_json_projected(PAYLOAD, &Projection::Whole).unwrap()
            ),
            format!("{:?}", from_json(PAYLOAD).unwrap())
        );
    }

    #[test]
    fn a_projection_refuses_what_the_whole_parse_refuses() {
        let none = Projection::Fields(Vec::new());
        for text in [
            r#"{"a":-1e999}"#,
            "{",
            r#"{"a":}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":{"b":tru}}"#,
            r#"{"a":1} x"#,
            r#"{"a":01}"#,
            "{\"a\":\"\u{1}\"}",
            "",
        ] {
            assert!(from_json(text).is_err(), "{text}");
            assert!(from_json_projected(text, &none).is_err(), "{text}");
            assert!(check_json(text).is_err(), "{text}");
        }
    }

    /// `depth` levels of nesting, the deepest under field `deep`, with
    /// brackets in strings (which do not count) along the way.
    fn nested(depth: usize) -> String {
        let mut text = String::from("1");
        for level in (2..=depth).rev() {
            text = match level % 2 {
                0 => format!(r#"[{text},"]]{{["]"#),
                _ => format!(r#"{{"k[":{text},"s":"}}}}"}}"#),
            };
        }
        format!(r#"{{"id":"x","deep":{text}}}"#)
    }

    #[test]
    fn nesting_is_limited_where_it_is_built_and_where_it_is_skipped() {
        let kept = Projection::Fields(vec!["deep".into()]);
        let skipped = Projection::Fields(vec!["id".into()]);
        let at_limit = nested(MAX_DEPTH);
        assert!(crate::flow::nesting_within(&at_limit, MAX_DEPTH));
        assert!(from_json(&at_limit).is_ok());
        assert!(from_json_projected(&at_limit, &kept).is_ok());
        assert!(from_json_projected(&at_limit, &skipped).is_ok());
        assert!(check_json(&at_limit).is_ok());
        let over = nested(MAX_DEPTH + 1);
        assert!(!crate::flow::nesting_within(&over, MAX_DEPTH));
        for refused in [
            from_json(&over).map(drop),
            from_json_projected(&over, &kept).map(drop),
            from_json_projected(&over, &skipped).map(drop),
            check_json(&over),
        ] {
            let err = refused.unwrap_err().to_string();
            assert!(
                err.starts_with("it nests deeper than 100 levels at line 1"),
                "{err}"
            );
        }
        // Every other refusal holds when nothing is built, numbers included.
        for text in [r#"{"a":1e400}"#, r#"{"a":[1,]}"#, r#"{"a":"\q"}"#, "{} {}"] {
            assert!(from_json(text).is_err(), "{text}");
            assert!(check_json(text).is_err(), "{text}");
            assert!(from_json_projected(text, &skipped).is_err(), "{text}");
        }
    }

    /// The property this module exists for: a flow gets the same answers
    /// from the projection of its payload as from the whole payload.
    #[test]
    fn a_flow_sees_the_same_through_its_projection() {
        let engine = rhai::Engine::new();
        for flow in [
            "`${parsed_data.id} ${parsed_data.status} ${parsed_data.missing}`",
            "`${parsed_data.metadata.nested.deep[2]} ${parsed_data[\"types\"][1]}`",
            "parsed_data.amount += 1; parsed_data.added = 2; `${parsed_data.amount} ${parsed_data.added}`",
            "let f = || parsed_data.status; f.call()",
            "fn peek() { parsed_data.id } peek!()",
            "print(parsed_data); parsed_data.id",
            "parsed_data.len()",
            "`${parsed_data}`",
            "parsed_data.keys()",
            "let k = \"f\"; `${parsed_data[k]}`",
            "let copy = parsed_data; copy.f",
            "eval(\"parsed_data.none\")",
            // Not a way around the rule: Rhai refuses a pointer to `eval`.
            "Fn(\"ev\" + \"al\").call(\"parsed_data.f\")",
            "call(Fn(\"eval\"), \"parsed_data.f\")",
        ] {
            let ast = engine.compile(flow).unwrap();
            let run = |value: Dynamic| {
                let mut scope = rhai::Scope::new();
                scope.push("parsed_data", value);
                match engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast) {
                    Ok(out) => format!("{out:?}"),
                    Err(err) => format!("error: {err}"),
                }
            };
            let projection = Projection::of(&ast, "parsed_data");
            assert_eq!(
                run(from_json_projected(PAYLOAD, &projection).unwrap()),
                run(from_json(PAYLOAD).unwrap()),
                "{flow} ({projection:?})"
            );
        }
    }
}
