//! The native parameter tree, and its conversions from the WIT arena and
//! from JSON.
//!
//! WIT types cannot be recursive, so a tree crosses the component boundary as
//! a flat list of nodes (`value-tree`): node 0 is the root and containers name
//! their children by index. [`Value::from_arena`] turns that list back into a
//! tree. It accepts only real trees: an index out of range, a node referenced
//! twice (which covers cycles, and shared sub-trees that could otherwise blow
//! up exponentially) or nesting deeper than [`MAX_DEPTH`] is an error, and the
//! recursion is bounded by that depth.

use std::fmt;

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

/// Deepest nesting [`Value::from_arena`] accepts: the root is at depth 0,
/// its children at depth 1, and so on.
pub const MAX_DEPTH: usize = 32;

/// One node of the flat arena, mirroring the WIT `value-node` variant.
#[derive(Debug, Clone, PartialEq)]
pub enum ArenaNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Child indices.
    List(Vec<u32>),
    /// Keys with child indices, in insertion order.
    Map(Vec<(String, u32)>),
}

/// Why an arena is not a well-formed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArenaError {
    /// A container refers to a node index past the end of the list.
    OutOfRange { from: usize, to: u32, len: usize },
    /// A node is referenced more than once (a cycle or a shared sub-tree).
    Shared { node: u32 },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::OutOfRange { from, to, len } => write!(
                f,
                "node {from} refers to node {to}, but the tree has only {len} nodes"
            ),
            ArenaError::Shared { node } => write!(
                f,
                "node {node} is referenced more than once (a cycle or a shared sub-tree)"
            ),
            ArenaError::TooDeep => {
                write!(f, "the tree is nested deeper than {MAX_DEPTH} levels")
            }
        }
    }
}

impl std::error::Error for ArenaError {}

impl Value {
    /// Rebuilds a tree from its flat form, taking the strings out of `nodes`
    /// without copying them. An empty arena is an empty map. Nodes that no
    /// container reaches are ignored.
    pub fn from_arena(mut nodes: Vec<ArenaNode>) -> Result<Value, ArenaError> {
        if nodes.is_empty() {
            return Ok(Value::Map(Vec::new()));
        }
        let mut seen = vec![false; nodes.len()];
        seen[0] = true;
        take_node(&mut nodes, &mut seen, 0, 0)
    }

    /// Flattens a tree into the arena form (root first, then children in
    /// depth-first order). The inverse of [`Value::from_arena`].
    pub fn to_arena(&self) -> Vec<ArenaNode> {
        let mut out = Vec::new();
        push_node(self, &mut out);
        out
    }

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

    /// Looks a key up in a map (the first entry with that key); `None` for
    /// other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

fn take_node(
    nodes: &mut [ArenaNode],
    seen: &mut [bool],
    index: usize,
    depth: usize,
) -> Result<Value, ArenaError> {
    let node = std::mem::replace(&mut nodes[index], ArenaNode::Null);
    Ok(match node {
        ArenaNode::Null => Value::Null,
        ArenaNode::Bool(b) => Value::Bool(b),
        ArenaNode::Int(i) => Value::Int(i),
        ArenaNode::Float(f) => Value::Float(f),
        ArenaNode::Text(s) => Value::Str(s),
        ArenaNode::List(children) => {
            let mut items = Vec::with_capacity(children.len());
            for child in children {
                let child = claim(seen, index, child, depth)?;
                items.push(take_node(nodes, seen, child, depth + 1)?);
            }
            Value::List(items)
        }
        ArenaNode::Map(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (key, child) in entries {
                let child = claim(seen, index, child, depth)?;
                out.push((key, take_node(nodes, seen, child, depth + 1)?));
            }
            Value::Map(out)
        }
    })
}

/// Checks that `child` (referenced from node `from` at `depth`) may be visited,
/// and marks it visited.
fn claim(seen: &mut [bool], from: usize, child: u32, depth: usize) -> Result<usize, ArenaError> {
    if depth + 1 > MAX_DEPTH {
        return Err(ArenaError::TooDeep);
    }
    let i = child as usize;
    match seen.get_mut(i) {
        None => Err(ArenaError::OutOfRange {
            from,
            to: child,
            len: seen.len(),
        }),
        Some(true) => Err(ArenaError::Shared { node: child }),
        Some(flag) => {
            *flag = true;
            Ok(i)
        }
    }
}

fn push_node(value: &Value, out: &mut Vec<ArenaNode>) -> u32 {
    let index = out.len();
    out.push(ArenaNode::Null);
    let node = match value {
        Value::Null => ArenaNode::Null,
        Value::Bool(b) => ArenaNode::Bool(*b),
        Value::Int(i) => ArenaNode::Int(*i),
        Value::Float(f) => ArenaNode::Float(*f),
        Value::Str(s) => ArenaNode::Text(s.clone()),
        Value::List(items) => ArenaNode::List(items.iter().map(|v| push_node(v, out)).collect()),
        Value::Map(entries) => ArenaNode::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), push_node(v, out)))
                .collect(),
        ),
    };
    out[index] = node;
    index as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::Map(vec![
            ("amount".into(), Value::Int(2000)),
            ("currency".into(), Value::Str("usd".into())),
            (
                "items".into(),
                Value::List(vec![Value::Map(vec![
                    ("price".into(), Value::Str("price_1".into())),
                    ("quantity".into(), Value::Int(2)),
                ])]),
            ),
            ("confirm".into(), Value::Bool(true)),
            ("rate".into(), Value::Float(1.5)),
            ("gone".into(), Value::Null),
        ])
    }

    #[test]
    fn arena_round_trip() {
        let v = sample();
        let arena = v.to_arena();
        assert_eq!(Value::from_arena(arena).unwrap(), v);
    }

    #[test]
    fn empty_arena_is_empty_map() {
        assert_eq!(Value::from_arena(vec![]).unwrap(), Value::Map(vec![]));
    }

    #[test]
    fn scalar_root() {
        let v = Value::from_arena(vec![ArenaNode::Text("x".into())]).unwrap();
        assert_eq!(v, Value::Str("x".into()));
    }

    #[test]
    fn rejects_self_cycle() {
        let arena = vec![ArenaNode::Map(vec![("a".into(), 0)])];
        assert_eq!(
            Value::from_arena(arena),
            Err(ArenaError::Shared { node: 0 })
        );
    }

    #[test]
    fn rejects_longer_cycle() {
        let arena = vec![
            ArenaNode::List(vec![1]),
            ArenaNode::List(vec![2]),
            ArenaNode::List(vec![1]),
        ];
        assert_eq!(
            Value::from_arena(arena),
            Err(ArenaError::Shared { node: 1 })
        );
    }

    #[test]
    fn rejects_shared_subtree() {
        // A "billion laughs" shape: each level points twice at the next.
        let mut arena = Vec::new();
        for i in 0..20u32 {
            arena.push(ArenaNode::List(vec![i + 1, i + 1]));
        }
        arena.push(ArenaNode::Int(1));
        assert!(matches!(
            Value::from_arena(arena),
            Err(ArenaError::Shared { .. })
        ));
    }

    #[test]
    fn rejects_out_of_range() {
        let arena = vec![ArenaNode::Map(vec![("a".into(), 7)])];
        let err = Value::from_arena(arena).unwrap_err();
        assert_eq!(
            err,
            ArenaError::OutOfRange {
                from: 0,
                to: 7,
                len: 1
            }
        );
        assert!(err.to_string().contains("node 7"));
        let arena = vec![ArenaNode::List(vec![u32::MAX])];
        assert!(Value::from_arena(arena).is_err());
    }

    fn chain(depth: usize) -> Vec<ArenaNode> {
        let mut arena: Vec<ArenaNode> = (0..depth)
            .map(|i| ArenaNode::List(vec![i as u32 + 1]))
            .collect();
        arena.push(ArenaNode::Int(0));
        arena
    }

    #[test]
    fn depth_limit() {
        // `chain(n)` has its leaf at depth n.
        assert!(Value::from_arena(chain(MAX_DEPTH)).is_ok());
        assert_eq!(
            Value::from_arena(chain(MAX_DEPTH + 1)),
            Err(ArenaError::TooDeep)
        );
        assert_eq!(Value::from_arena(chain(100_000)), Err(ArenaError::TooDeep));
    }

    #[test]
    fn unreferenced_nodes_are_ignored() {
        let arena = vec![ArenaNode::Map(vec![]), ArenaNode::Int(5)];
        assert_eq!(Value::from_arena(arena).unwrap(), Value::Map(vec![]));
    }

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
    }
}

/// One step of a path into a parameter tree.
#[derive(Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
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
