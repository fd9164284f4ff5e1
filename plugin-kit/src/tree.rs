//! The parameter tree: its two-buffer wire form ([`Tree`]), the checks that
//! form must pass, and the plain tree ([`Value`]) the rest of the plugin
//! works on.
//!
//! WIT types cannot be recursive, so a tree crosses the boundary as a list
//! of nodes plus one string that holds every key and text value. The layout
//! is breadth-first (see `value-tree` in wit/plugin.wit): node 0 is the root;
//! each container's children are a run of consecutive nodes, and the runs
//! are handed out in node order, so the first container's children start at
//! node 1 and each next container's start where the previous one's end. The
//! host builds trees that way, but a plugin must not trust it: [`decode`]
//! checks every rule (each run starts at the next unassigned node and stays
//! in range, every node has a parent, spans lie in the text on character
//! boundaries, nesting is at most [`MAX_DEPTH`]) and never panics, whatever
//! the input. Because the layout is checked first, building the [`Value`]
//! visits each node once and recurses at most [`MAX_DEPTH`] deep.
//!
//! Part of the plugin kit: every plugin shares it, and it knows nothing
//! about any provider.

/// A byte range of [`Tree::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// A container's children: `count` consecutive nodes from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Children {
    pub first: u32,
    pub count: u32,
}

/// The value of one node, as it crosses the boundary.
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

/// One node: its key in its parent map (empty otherwise) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub key: Span,
    pub value: NodeValue,
}

/// A tree in its wire form: the WIT `value-tree`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub text: String,
}

/// A parameter tree as the plugin works with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent: skipped, as if the script had not set it.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
    /// Entries in the order the script set them.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Looks a key up in a map (the first entry with that key); `None` for
    /// a missing key or a value that is not a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether the value is absent ([`Value::Null`]).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl Tree {
    /// The tree from the contract's node words (five per node:
    /// `[tag, key-start, key-len, a, b]`, see `value-tree` in wit/plugin.wit)
    /// and its text. A word count that is not five per node, or a tag the
    /// contract does not define, is an error naming the node; the layout is
    /// [`decode`]'s to check.
    pub fn from_words(words: &[u32], text: String) -> Result<Tree, String> {
        let (chunks, rest) = words.as_chunks::<5>();
        if !rest.is_empty() {
            return Err(format!(
                "the node list has {} words, not five per node",
                words.len()
            ));
        }
        let mut nodes = Vec::with_capacity(chunks.len());
        for (i, &[tag, key_start, key_len, a, b]) in chunks.iter().enumerate() {
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
            nodes.push(Node { key, value });
        }
        Ok(Tree { nodes, text })
    }
}

/// Deepest nesting accepted: the root is at depth 0.
pub const MAX_DEPTH: usize = 32;

/// Checks the layout of `tree` and rebuilds the tree it encodes. An empty
/// node list is an empty map. The error says which rule which node breaks.
pub fn decode(tree: &Tree) -> Result<Value, String> {
    let nodes = &tree.nodes;
    if nodes.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    // Pass 1: the layout. `next` is the first node no container has claimed
    // yet; node `i` (other than the root) must have been claimed by the time
    // the walk reaches it, which also rules out cycles and shared nodes.
    let mut depth = vec![0usize; nodes.len()];
    let mut next = 1usize;
    for (i, node) in nodes.iter().enumerate() {
        if i >= next {
            return Err(format!("node {i} is not the child of any container"));
        }
        text_of(tree, node.key).ok_or_else(|| format!("node {i}: key {}", bad_span(node.key)))?;
        match node.value {
            NodeValue::Text(span) => {
                text_of(tree, span).ok_or_else(|| format!("node {i}: text {}", bad_span(span)))?;
            }
            NodeValue::List(children) | NodeValue::Map(children) if children.count > 0 => {
                let first = children.first as usize;
                if first != next {
                    return Err(format!(
                        "node {i}: children start at node {first}, expected node {next} \
                         (runs are given out in node order)"
                    ));
                }
                let end = first
                    .checked_add(children.count as usize)
                    .filter(|&end| end <= nodes.len())
                    .ok_or_else(|| {
                        format!(
                            "node {i}: {} children from node {first} run past the last node ({})",
                            children.count,
                            nodes.len() - 1
                        )
                    })?;
                let child_depth = depth[i] + 1;
                if child_depth > MAX_DEPTH {
                    return Err(format!("node {i}: nested deeper than {MAX_DEPTH} levels"));
                }
                depth[first..end].fill(child_depth);
                next = end;
            }
            _ => {}
        }
    }
    // Pass 2: the tree. Every index and span below was checked above.
    Ok(build(tree, 0))
}

fn build(tree: &Tree, index: usize) -> Value {
    let text = |span| text_of(tree, span).unwrap_or_default().to_string();
    let run = |children: Children| {
        let first = children.first as usize;
        first..first + children.count as usize
    };
    match tree.nodes[index].value {
        NodeValue::Null => Value::Null,
        NodeValue::Boolean(b) => Value::Bool(b),
        NodeValue::Integer(i) => Value::Int(i),
        NodeValue::Float(f) => Value::Float(f),
        NodeValue::Text(span) => Value::Text(text(span)),
        NodeValue::List(children) => {
            Value::List(run(children).map(|child| build(tree, child)).collect())
        }
        NodeValue::Map(children) => Value::Map(
            run(children)
                .map(|child| (text(tree.nodes[child].key), build(tree, child)))
                .collect(),
        ),
    }
}

/// The text a span names, if it lies within the text on char boundaries.
fn text_of(tree: &Tree, span: Span) -> Option<&str> {
    let start = span.start as usize;
    let end = start.checked_add(span.len as usize)?;
    tree.text.get(start..end)
}

fn bad_span(span: Span) -> String {
    format!(
        "span {}+{} is outside the text or not on character boundaries",
        span.start, span.len
    )
}

impl Tree {
    /// The wire form of `value`, laid out breadth-first as the host lays it
    /// out: the inverse of [`decode`], for tests and tools.
    pub fn encode(value: &Value) -> Tree {
        let mut tree = Tree::default();
        let mut queue = std::collections::VecDeque::from([(String::new(), value)]);
        while let Some((key, value)) = queue.pop_front() {
            let key = tree.push_text(&key);
            // Children are queued now and get their nodes after every node
            // already queued: exactly the breadth-first run layout.
            let first = (tree.nodes.len() + queue.len() + 1) as u32;
            let value = match value {
                Value::Null => NodeValue::Null,
                Value::Bool(b) => NodeValue::Boolean(*b),
                Value::Int(i) => NodeValue::Integer(*i),
                Value::Float(f) => NodeValue::Float(*f),
                Value::Text(s) => NodeValue::Text(tree.push_text(s)),
                Value::List(items) => {
                    queue.extend(items.iter().map(|item| (String::new(), item)));
                    NodeValue::List(Children {
                        first,
                        count: items.len() as u32,
                    })
                }
                Value::Map(entries) => {
                    queue.extend(entries.iter().map(|(k, v)| (k.clone(), v)));
                    NodeValue::Map(Children {
                        first,
                        count: entries.len() as u32,
                    })
                }
            };
            tree.nodes.push(Node { key, value });
        }
        tree
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn encode_then_decode_gives_the_tree_back() {
        let value = map(&[
            ("total", Value::Int(1200)),
            ("currency", text("eur")),
            (
                "lines",
                Value::List(vec![
                    map(&[("sku", text("ä-1")), ("qty", Value::Int(2))]),
                    map(&[("sku", text("b"))]),
                ]),
            ),
            ("meta", map(&[("k", text("v")), ("empty", text(""))])),
            ("tags", Value::List(vec![])),
            ("gone", Value::Null),
            ("ok", Value::Bool(true)),
            ("ratio", Value::Float(0.5)),
        ]);
        assert_eq!(decode(&Tree::encode(&value)), Ok(value));
    }

    #[test]
    fn an_empty_node_list_is_an_empty_map() {
        assert_eq!(decode(&Tree::default()), Ok(Value::Map(Vec::new())));
        // The contract's words: a map with one text entry, then junk.
        let words = [
            6,
            0,
            0,
            1,
            1,
            4,
            0,
            1,
            1,
            2,
            2,
            0,
            0,
            0xffff_fffe,
            0xffff_ffff,
        ];
        let tree = Tree::from_words(&words[..10], "kvv".to_string()).unwrap();
        assert_eq!(
            decode(&tree),
            Ok(Value::Map(vec![("k".into(), Value::Text("vv".into()))]))
        );
        assert_eq!(
            Tree::from_words(&words, String::new()).map(|t| t.nodes[2].value),
            Ok(NodeValue::Integer(-2))
        );
        assert!(Tree::from_words(&words[..7], String::new()).is_err());
        assert!(
            Tree::from_words(&[9, 0, 0, 0, 0], String::new())
                .unwrap_err()
                .contains("tag 9")
        );
    }

    #[test]
    fn the_root_may_be_a_scalar() {
        assert_eq!(decode(&Tree::encode(&Value::Int(3))), Ok(Value::Int(3)));
    }

    fn node(value: NodeValue) -> Node {
        Node {
            key: Span::default(),
            value,
        }
    }

    fn list(first: u32, count: u32) -> NodeValue {
        NodeValue::List(Children { first, count })
    }

    #[test]
    fn a_run_that_does_not_start_at_the_next_node_is_refused() {
        // The root's children claimed node 1; the list at node 1 claims node 1 again.
        let tree = Tree {
            nodes: vec![node(list(1, 1)), node(list(1, 1))],
            text: String::new(),
        };
        let err = decode(&tree).unwrap_err();
        assert!(
            err.contains("node 1: children start at node 1, expected node 2"),
            "{err}"
        );
    }

    #[test]
    fn a_cycle_back_to_the_root_is_refused() {
        let tree = Tree {
            nodes: vec![node(list(1, 1)), node(list(0, 1))],
            text: String::new(),
        };
        assert!(decode(&tree).is_err());
    }

    #[test]
    fn a_run_past_the_end_is_refused() {
        for count in [2, u32::MAX] {
            let tree = Tree {
                nodes: vec![node(list(1, count)), node(NodeValue::Null)],
                text: String::new(),
            };
            let err = decode(&tree).unwrap_err();
            assert!(err.contains("run past the last node"), "{err}");
        }
    }

    #[test]
    fn a_node_without_a_parent_is_refused() {
        let tree = Tree {
            nodes: vec![
                node(list(1, 1)),
                node(NodeValue::Null),
                node(NodeValue::Null),
            ],
            text: String::new(),
        };
        let err = decode(&tree).unwrap_err();
        assert!(
            err.contains("node 2 is not the child of any container"),
            "{err}"
        );
    }

    #[test]
    fn spans_must_lie_in_the_text_on_char_boundaries() {
        for span in [
            Span { start: 0, len: 3 },
            Span { start: 1, len: 1 },
            Span {
                start: u32::MAX,
                len: u32::MAX,
            },
        ] {
            let tree = Tree {
                nodes: vec![node(NodeValue::Text(span))],
                text: "é".to_string(),
            };
            let err = decode(&tree).unwrap_err();
            assert!(err.contains("not on character boundaries"), "{err}");
            let tree = Tree {
                nodes: vec![Node {
                    key: span,
                    value: NodeValue::Null,
                }],
                text: "é".to_string(),
            };
            assert!(decode(&tree).is_err());
        }
    }

    #[test]
    fn nesting_is_capped() {
        let mut deep = Value::Int(1);
        for _ in 0..MAX_DEPTH {
            deep = Value::List(vec![deep]);
        }
        assert!(
            decode(&Tree::encode(&deep)).is_ok(),
            "{MAX_DEPTH} levels are fine"
        );
        let deeper = Value::List(vec![deep]);
        let err = decode(&Tree::encode(&deeper)).unwrap_err();
        assert!(err.contains("nested deeper than 32"), "{err}");
    }

    /// A tiny xorshift generator: deterministic, and no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            match self.0 % 10 {
                0 => u32::MAX, // now and then, the extreme
                _ => (self.0 >> 8) as u32 % bound,
            }
        }
    }

    #[test]
    fn arbitrary_node_lists_are_decoded_or_refused_never_a_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut decoded = 0;
        for _ in 0..50_000 {
            let text = ["", "ab", "é", "abcé€"][rng.below(4) as usize % 4].to_string();
            let nodes = (0..rng.below(8) % 8)
                .map(|_| {
                    let key = Span {
                        start: rng.below(6),
                        len: rng.below(6),
                    };
                    let children = Children {
                        first: rng.below(8),
                        count: rng.below(4),
                    };
                    let value = match rng.below(7) % 7 {
                        0 => NodeValue::Null,
                        1 => NodeValue::Boolean(true),
                        2 => NodeValue::Integer(-1),
                        3 => NodeValue::Float(f64::NAN),
                        4 => NodeValue::Text(key),
                        5 => NodeValue::List(children),
                        _ => NodeValue::Map(children),
                    };
                    Node { key, value }
                })
                .collect();
            let tree = Tree { nodes, text };
            if let Ok(value) = decode(&tree) {
                decoded += 1;
                // Whatever was accepted is a real tree: it survives a round trip.
                assert_eq!(
                    decode(&Tree::encode(&value)).map(|v| format!("{v:?}")),
                    Ok(format!("{value:?}"))
                );
            }
        }
        assert!(
            decoded > 1_000,
            "the generator should make valid trees too ({decoded})"
        );
    }

    #[test]
    fn empty_containers_may_name_any_first_node() {
        let tree = Tree {
            nodes: vec![node(list(7, 0))],
            text: String::new(),
        };
        assert_eq!(decode(&tree), Ok(Value::List(Vec::new())));
    }
}
