//! The parameter tree: its native form ([`Value`]) and the decoding of the
//! two-buffer WIT `value-tree` into it.
//!
//! WIT types cannot be recursive, so a tree crosses the boundary as a flat
//! list of nodes plus one text buffer. The layout is breadth-first and
//! [`decode`] checks all of it before trusting any index: node 0 is the root;
//! each container's children are the next unassigned run of nodes (so every
//! node but the root has exactly one parent, and there are no cycles or
//! shared sub-trees); every span lies inside the text on character
//! boundaries; nesting is at most [`MAX_DEPTH`] deep. A tree that breaks any
//! rule is refused whole (`malformed-tree`), naming the node at fault.
//!
//! The work is one forward pass to check and one backward pass to build
//! (children always come after their container), with no recursion, so it
//! is linear in the number of nodes whatever they hold.

use std::fmt;

/// A parameter tree. Maps keep insertion order (the JSON body lists fields
/// in the order the script set them).
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

impl Value {
    /// Looks a key up in a map (the first entry with that key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Deepest nesting accepted: the root is at depth 0.
pub const MAX_DEPTH: u32 = 32;

/// WIT `span`: a byte range of the text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// WIT `children`: `count` consecutive nodes from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Children {
    pub first: u32,
    pub count: u32,
}

/// WIT `node-value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeValue {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(Span),
    List(Children),
    Map(Children),
}

/// WIT `value-node`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub key: Span,
    pub value: NodeValue,
}

/// Why a `value-tree` is not laid out as the contract says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError(pub String);

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The nodes of the contract's node words (five per node: `[tag, key-start,
/// key-len, a, b]`, see `value-tree` in wit/plugin.wit). A word count that is
/// not five per node, or a tag the contract does not define, is an error
/// naming the node; the layout is [`decode`]'s to check.
pub fn nodes_from_words(words: &[u32]) -> Result<Vec<Node>, String> {
    let (chunks, rest) = words.as_chunks::<5>();
    if !rest.is_empty() {
        return Err(format!(
            "the node list has {} words, not five per node",
            words.len()
        ));
    }
    chunks
        .iter()
        .enumerate()
        .map(|(i, &[tag, key_start, key_len, a, b])| {
            let joined = (u64::from(b) << 32) | u64::from(a);
            let value = match tag {
                0 => NodeValue::Null,
                1 => NodeValue::Boolean(a != 0),
                2 => NodeValue::Integer(joined as i64),
                3 => NodeValue::Float(f64::from_bits(joined)),
                4 => NodeValue::Text(Span { start: a, len: b }),
                5 => NodeValue::List(Children { first: a, count: b }),
                6 => NodeValue::Map(Children { first: a, count: b }),
                other => return Err(format!("node {i} has the unknown tag {other}")),
            };
            let key = Span {
                start: key_start,
                len: key_len,
            };
            Ok(Node { key, value })
        })
        .collect()
}

/// Checks the layout of `nodes` over `text` and builds the tree. An empty
/// `nodes` is an empty map.
pub fn decode(nodes: &[Node], text: &str) -> Result<Value, TreeError> {
    if nodes.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    let len = nodes.len() as u64;
    // Depth of each node, and whether it is a map entry (its key matters).
    let mut depth = vec![0u32; nodes.len()];
    let mut in_map = vec![false; nodes.len()];
    let mut next: u64 = 1;
    for (i, node) in nodes.iter().enumerate() {
        if i as u64 >= next {
            return Err(TreeError(format!(
                "node {i} belongs to no container (children runs end at node {next})"
            )));
        }
        if in_map[i] {
            slice(text, node.key, i, "key")?;
        }
        match node.value {
            NodeValue::Text(span) => {
                slice(text, span, i, "text")?;
            }
            NodeValue::List(c) | NodeValue::Map(c) => {
                if u64::from(c.first) != next && c.count > 0 {
                    return Err(TreeError(format!(
                        "node {i}'s children start at node {}, but the next unassigned node is {next}",
                        c.first
                    )));
                }
                let end = next + u64::from(c.count);
                if end > len {
                    return Err(TreeError(format!(
                        "node {i} has {} children from node {}, past the last node ({})",
                        c.count,
                        c.first,
                        len - 1
                    )));
                }
                if c.count > 0 && depth[i] + 1 > MAX_DEPTH {
                    return Err(TreeError(format!(
                        "node {i} nests deeper than {MAX_DEPTH} levels"
                    )));
                }
                let is_map = matches!(node.value, NodeValue::Map(_));
                for child in next as usize..end as usize {
                    depth[child] = depth[i] + 1;
                    in_map[child] = is_map;
                }
                next = end;
            }
            _ => {}
        }
    }

    // Children come after their container: build from the last node back.
    let mut built: Vec<Option<Value>> = vec![None; nodes.len()];
    for i in (0..nodes.len()).rev() {
        let node = &nodes[i];
        let value = match node.value {
            NodeValue::Null => Value::Null,
            NodeValue::Boolean(b) => Value::Bool(b),
            NodeValue::Integer(n) => Value::Int(n),
            NodeValue::Float(f) => Value::Float(f),
            NodeValue::Text(span) => Value::Str(slice(text, span, i, "text")?.to_string()),
            NodeValue::List(c) => Value::List(
                run(c)
                    .map(|child| built[child].take().unwrap_or(Value::Null))
                    .collect(),
            ),
            NodeValue::Map(c) => {
                let mut entries = Vec::with_capacity(c.count as usize);
                for child in run(c) {
                    let key = slice(text, nodes[child].key, child, "key")?.to_string();
                    entries.push((key, built[child].take().unwrap_or(Value::Null)));
                }
                Value::Map(entries)
            }
        };
        built[i] = Some(value);
    }
    Ok(built[0].take().unwrap_or(Value::Null))
}

/// The node indices of a run that [`decode`]'s first pass has checked.
fn run(c: Children) -> std::ops::Range<usize> {
    if c.count == 0 {
        0..0
    } else {
        c.first as usize..c.first as usize + c.count as usize
    }
}

fn slice<'a>(text: &'a str, span: Span, node: usize, what: &str) -> Result<&'a str, TreeError> {
    let start = span.start as usize;
    let end = start as u64 + u64::from(span.len);
    if end > text.len() as u64 {
        return Err(TreeError(format!(
            "node {node}'s {what} span {}+{} runs past the text ({} bytes)",
            span.start,
            span.len,
            text.len()
        )));
    }
    text.get(start..end as usize).ok_or_else(|| {
        TreeError(format!(
            "node {node}'s {what} span {}+{} does not fall on character boundaries",
            span.start, span.len
        ))
    })
}

/// Lays a tree out as the contract says (breadth-first); the inverse of
/// [`decode`]. Used by tests, and handy for anyone driving the plugin
/// natively.
pub fn encode(value: &Value) -> (Vec<Node>, String) {
    let mut nodes = Vec::new();
    let mut text = String::new();
    let mut queue: std::collections::VecDeque<(Option<&str>, &Value)> =
        std::collections::VecDeque::new();
    queue.push_back((None, value));
    let mut next = 1u32;
    while let Some((key, value)) = queue.pop_front() {
        let key = match key {
            Some(k) => push_text(&mut text, k),
            None => Span::default(),
        };
        let value = match value {
            Value::Null => NodeValue::Null,
            Value::Bool(b) => NodeValue::Boolean(*b),
            Value::Int(n) => NodeValue::Integer(*n),
            Value::Float(f) => NodeValue::Float(*f),
            Value::Str(s) => NodeValue::Text(push_text(&mut text, s)),
            Value::List(items) => {
                let c = Children {
                    first: next,
                    count: items.len() as u32,
                };
                next += c.count;
                queue.extend(items.iter().map(|v| (None, v)));
                NodeValue::List(c)
            }
            Value::Map(entries) => {
                let c = Children {
                    first: next,
                    count: entries.len() as u32,
                };
                next += c.count;
                queue.extend(entries.iter().map(|(k, v)| (Some(k.as_str()), v)));
                NodeValue::Map(c)
            }
        };
        nodes.push(Node { key, value });
    }
    (nodes, text)
}

fn push_text(text: &mut String, s: &str) -> Span {
    let span = Span {
        start: text.len() as u32,
        len: s.len() as u32,
    };
    text.push_str(s);
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn sample() -> Value {
        map(vec![
            (
                "amount",
                map(vec![
                    ("value", Value::Int(1000)),
                    ("currency", Value::Str("EUR".into())),
                ]),
            ),
            ("reference", Value::Str("ré-1".into())),
            (
                "lineItems",
                Value::List(vec![map(vec![("quantity", Value::Int(2))])]),
            ),
            ("gone", Value::Null),
            ("ok", Value::Bool(true)),
            ("rate", Value::Float(1.5)),
        ])
    }

    #[test]
    fn round_trip() {
        let (nodes, text) = encode(&sample());
        assert_eq!(decode(&nodes, &text).unwrap(), sample());
    }

    #[test]
    fn empty_is_empty_map() {
        assert_eq!(decode(&[], "").unwrap(), Value::Map(vec![]));
    }

    fn leaf(value: NodeValue) -> Node {
        Node {
            key: Span::default(),
            value,
        }
    }

    #[test]
    fn refuses_a_run_that_does_not_start_at_the_next_node() {
        // Root's children claim to start at node 2; node 1 is skipped.
        let nodes = [
            leaf(NodeValue::List(Children { first: 2, count: 1 })),
            leaf(NodeValue::Null),
            leaf(NodeValue::Null),
        ];
        let err = decode(&nodes, "").unwrap_err();
        assert!(err.0.contains("next unassigned node is 1"), "{err}");
    }

    #[test]
    fn refuses_cycles_and_shared_children() {
        // A self-reference: children from node 0.
        let nodes = [leaf(NodeValue::List(Children { first: 0, count: 1 }))];
        assert!(decode(&nodes, "").is_err());
        // Two containers naming the same run.
        let nodes = [
            leaf(NodeValue::List(Children { first: 1, count: 2 })),
            leaf(NodeValue::List(Children { first: 3, count: 1 })),
            leaf(NodeValue::List(Children { first: 3, count: 1 })),
            leaf(NodeValue::Null),
        ];
        assert!(decode(&nodes, "").is_err());
    }

    #[test]
    fn refuses_runs_past_the_end_and_orphans() {
        let nodes = [leaf(NodeValue::List(Children {
            first: 1,
            count: u32::MAX,
        }))];
        assert!(decode(&nodes, "").unwrap_err().0.contains("past the last"));
        let nodes = [leaf(NodeValue::Null), leaf(NodeValue::Null)];
        assert!(decode(&nodes, "").unwrap_err().0.contains("no container"));
    }

    #[test]
    fn refuses_bad_spans() {
        let nodes = [leaf(NodeValue::Text(Span { start: 0, len: 9 }))];
        assert!(decode(&nodes, "abc").unwrap_err().0.contains("runs past"));
        let nodes = [leaf(NodeValue::Text(Span {
            start: u32::MAX,
            len: u32::MAX,
        }))];
        assert!(decode(&nodes, "abc").is_err());
        // "é" is two bytes: a span ending in its middle.
        let nodes = [leaf(NodeValue::Text(Span { start: 0, len: 1 }))];
        assert!(decode(&nodes, "é").unwrap_err().0.contains("boundaries"));
        // A map key with a bad span.
        let nodes = [
            leaf(NodeValue::Map(Children { first: 1, count: 1 })),
            Node {
                key: Span { start: 5, len: 1 },
                value: NodeValue::Null,
            },
        ];
        assert!(decode(&nodes, "ab").unwrap_err().0.contains("key"));
    }

    fn chain(depth: u32) -> Vec<Node> {
        let mut nodes: Vec<Node> = (0..depth)
            .map(|i| {
                leaf(NodeValue::List(Children {
                    first: i + 1,
                    count: 1,
                }))
            })
            .collect();
        nodes.push(leaf(NodeValue::Integer(0)));
        nodes
    }

    #[test]
    fn depth_limit() {
        assert!(decode(&chain(MAX_DEPTH), "").is_ok());
        assert!(
            decode(&chain(MAX_DEPTH + 1), "")
                .unwrap_err()
                .0
                .contains("deeper")
        );
        assert!(decode(&chain(100_000), "").is_err());
    }

    #[test]
    fn empty_containers_may_name_any_first() {
        // `first` of an empty run does not matter; it owns no node.
        let nodes = [leaf(NodeValue::Map(Children {
            first: 77,
            count: 0,
        }))];
        assert_eq!(decode(&nodes, "").unwrap(), Value::Map(vec![]));
    }
}
