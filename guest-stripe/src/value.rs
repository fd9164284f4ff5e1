//! The owned parameter tree, and the [`Node`] view that validation and
//! encoding work through.
//!
//! Two kinds of tree reach the validator and the encoder: the owned
//! [`Value`] (native callers, tests, JSON) and the borrowed
//! [`crate::tree::NodeRef`] over the two buffers of a WIT `value-tree`
//! (the component). Both implement [`Node`], so the same generic code checks
//! and encodes either without converting one into the other: converting the
//! WIT tree into owned strings was where most of a component call's time
//! went.

/// A parameter tree. Maps keep insertion order (the encoder emits fields in
/// the order the script set them, as stripe-python does for a dict).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent: the encoder skips it.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// Key/value pairs in insertion order.
    Map(Vec<(String, Value)>),
}

/// Deepest nesting a WIT tree may have: the root is at depth 0, its children
/// at depth 1, and so on. It bounds every recursion over such a tree.
pub const MAX_DEPTH: usize = 32;

/// What one node of a tree is, with its children as iterators.
pub enum Shape<'a, I, E> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// The elements, in order.
    List(I),
    /// The entries (key, value), in insertion order.
    Map(E),
}

/// A node of a parameter tree that can be looked at without copying it:
/// `&Value` or a node of a checked WIT tree. Cheap to copy.
pub trait Node<'a>: Copy + 'a {
    type Items: Iterator<Item = Self> + ExactSizeIterator + Clone;
    type Entries: Iterator<Item = (&'a str, Self)> + ExactSizeIterator + Clone;

    fn shape(self) -> Shape<'a, Self::Items, Self::Entries>;

    /// True for `Null`.
    fn is_null(self) -> bool {
        matches!(self.shape(), Shape::Null)
    }

    /// Looks a key up in a map (the first entry with that key); `None` for
    /// other values.
    fn get(self, key: &str) -> Option<Self> {
        match self.shape() {
            Shape::Map(mut entries) => entries
                .find(|(k, _)| crate::schema::same_name(k, key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'a> Node<'a> for &'a Value {
    type Items = std::slice::Iter<'a, Value>;
    type Entries = Entries<'a>;

    fn shape(self) -> Shape<'a, Self::Items, Self::Entries> {
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Int(i) => Shape::Int(*i),
            Value::Float(f) => Shape::Float(*f),
            Value::Str(s) => Shape::Str(s),
            Value::List(items) => Shape::List(items.iter()),
            Value::Map(entries) => Shape::Map(Entries(entries.iter())),
        }
    }
}

/// The entries of a [`Value::Map`] with borrowed keys.
#[derive(Clone)]
pub struct Entries<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_str(), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl Value {
    /// Converts JSON into a tree. Objects keep their key order (serde_json is
    /// built with `preserve_order`). Integers outside `i64` become floats.
    pub fn from_serde_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_serde_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_serde_json(v)))
                    .collect(),
            ),
        }
    }

    /// Copies any tree into an owned one (recursion as deep as the tree).
    pub fn from_node<'a, N: Node<'a>>(node: N) -> Value {
        match node.shape() {
            Shape::Null => Value::Null,
            Shape::Bool(b) => Value::Bool(b),
            Shape::Int(i) => Value::Int(i),
            Shape::Float(f) => Value::Float(f),
            Shape::Str(s) => Value::Str(s.to_string()),
            Shape::List(items) => Value::List(items.map(Value::from_node).collect()),
            Shape::Map(entries) => Value::Map(
                entries
                    .map(|(k, v)| (k.to_string(), Value::from_node(v)))
                    .collect(),
            ),
        }
    }

    /// Looks a key up in a map (the first entry with that key); `None` for
    /// other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        Node::get(self, key)
    }

    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One step of a path into a parameter tree.
#[derive(Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    /// A schema field name: letters, digits and `_` only (a schema test
    /// checks), so the encoder writes it as it is, without quoting.
    Field(&'static str),
    Index(usize),
}

/// A path into a parameter tree as a chain of stack frames, built while
/// walking it and rendered only when needed: `items[0][price]` is
/// `Key("items") <- Index(0) <- Key("price")`. The encoder renders it as a
/// form key, the validator as a field path in messages.
pub(crate) struct Path<'a> {
    pub(crate) parent: Option<&'a Path<'a>>,
    pub(crate) seg: Seg<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_keeps_order_and_types() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"z":1,"a":[true,null,1.5,"s"],"big":18446744073709551615}"#)
                .unwrap();
        let v = Value::from_serde_json(&json);
        assert_eq!(
            v,
            Value::Map(vec![
                ("z".into(), Value::Int(1)),
                (
                    "a".into(),
                    Value::List(vec![
                        Value::Bool(true),
                        Value::Null,
                        Value::Float(1.5),
                        Value::Str("s".into())
                    ])
                ),
                ("big".into(), Value::Float(18446744073709551615.0)),
            ])
        );
        assert_eq!(v.get("z"), Some(&Value::Int(1)));
        assert_eq!(v.get("missing"), None);
        assert_eq!(Value::from_node(&v), v);
    }
}
