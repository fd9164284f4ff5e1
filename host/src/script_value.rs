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

use std::fmt;

use rhai::{Dynamic, Map};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `text` as a script value; serde_json's error (with line and column) if it
/// is not JSON. serde_json's recursion limit applies.
pub fn from_json(text: &str) -> serde_json::Result<Dynamic> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = ValueSeed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Dynamic;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Dynamic, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

/// A key, borrowed from the text where it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = rhai::Identifier;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = rhai::Identifier;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
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
        let mut items = rhai::Array::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Dynamic::from_array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Dynamic, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(key) = access.next_key_seed(KeySeed)? {
            entries.push((key, access.next_value_seed(ValueSeed)?));
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
}
