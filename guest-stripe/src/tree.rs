//! The parameter tree as it crosses the component boundary (WIT
//! `value-tree`): a list of nodes and one text buffer, checked once and then
//! read in place.
//!
//! WIT types cannot be recursive, so containers name their children by
//! position. The layout is breadth-first: node 0 is the root; each
//! container's children are one consecutive run, and runs are given out in
//! node order (the first container's children start at node 1, each next
//! container's where the previous one's end). Strings and map keys are
//! [`Span`]s of the text buffer.
//!
//! [`TreeView::new`] checks the whole layout in one pass without allocating,
//! and rejects anything else as [`TreeError`] (the `malformed-tree` error):
//! a run that does not start at the next unassigned node (which covers
//! overlapping, shared, backward and cyclic references; an empty run's
//! `first` is not checked, as it claims nothing), a run past the
//! end, a node no container claims, a span outside the text or off a
//! character boundary, a key on a node that is not a map entry, nesting
//! deeper than [`MAX_DEPTH`]. Every node but the root then has exactly one
//! parent with a smaller index, so walking the tree terminates and its depth
//! bounds every recursion. After the check, [`NodeRef`] reads nodes and
//! slices of the text directly: no string is copied, no tree is rebuilt.
//!
//! [`Tree`] is the owned form, for native callers and tests:
//! [`Tree::from_value`] lays a [`Value`] out exactly as the host does.

use std::collections::VecDeque;
use std::fmt;

use crate::value::{MAX_DEPTH, Node, Shape, Value};

/// A byte range of the text buffer (WIT `span`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// The value of one node (WIT `node-value`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Span),
    /// Elements: `count` consecutive nodes from `first`.
    List {
        first: u32,
        count: u32,
    },
    /// Entries: `count` consecutive nodes from `first`, each with its key.
    Map {
        first: u32,
        count: u32,
    },
}

/// One node (WIT `value-node`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawNode {
    /// The node's key in its parent map; empty for the root and elements.
    pub key: Span,
    pub value: RawValue,
}

/// Anything that reads as a [`RawNode`]: the native node itself, or the
/// component's WIT `value-node`, which the view then reads in place instead
/// of copying the node list first.
pub trait AsRawNode {
    fn raw(&self) -> RawNode;
}

/// The contract's node words (`[tag, key-start, key-len, a, b]`, see
/// `value-tree` in wit/plugin.wit), split into nodes after checking the word
/// count and every tag, so that [`AsRawNode`] on them cannot fail.
pub fn node_words(words: &[u32]) -> Result<&[[u32; 5]], TreeError> {
    let (nodes, rest) = words.as_chunks::<5>();
    if !rest.is_empty() {
        return Err(TreeError::WordCount { words: words.len() });
    }
    match nodes.iter().position(|n| n[0] > 6) {
        Some(node) => Err(TreeError::UnknownTag {
            node,
            tag: nodes[node][0],
        }),
        None => Ok(nodes),
    }
}

impl AsRawNode for [u32; 5] {
    #[inline]
    fn raw(&self) -> RawNode {
        let [tag, key_start, key_len, a, b] = *self;
        let joined = (u64::from(b) << 32) | u64::from(a);
        let value = match tag {
            1 => RawValue::Bool(a != 0),
            2 => RawValue::Int(joined as i64),
            3 => RawValue::Float(f64::from_bits(joined)),
            4 => RawValue::Text(Span { start: a, len: b }),
            5 => RawValue::List { first: a, count: b },
            6 => RawValue::Map { first: a, count: b },
            // 0, and (unreachable after `node_words`) anything else.
            _ => RawValue::Null,
        };
        RawNode {
            key: Span {
                start: key_start,
                len: key_len,
            },
            value,
        }
    }
}

impl AsRawNode for RawNode {
    #[inline]
    fn raw(&self) -> RawNode {
        *self
    }
}

/// Why a node list and text are not a tree in the agreed layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    /// A container's children do not start at the next unassigned node.
    RunOutOfOrder {
        node: usize,
        first: u32,
        expected: u64,
    },
    /// A container's children run past the last node.
    RunOutOfRange {
        node: usize,
        first: u32,
        count: u32,
        len: usize,
    },
    /// A node (not the root) that no container claims.
    Orphan { node: usize },
    /// A string or key span that ends past the text.
    SpanOutOfRange {
        node: usize,
        what: &'static str,
        span: Span,
        text_len: usize,
    },
    /// A string or key span that cuts a UTF-8 character.
    SpanOffCharBoundary {
        node: usize,
        what: &'static str,
        span: Span,
    },
    /// A key on the root or on a list element.
    KeyOutsideMap { node: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep { node: usize },
    /// The word list is not five words per node.
    WordCount { words: usize },
    /// A node tag the contract does not define.
    UnknownTag { node: usize, tag: u32 },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::WordCount { words } => {
                write!(f, "the node list has {words} words, not five per node")
            }
            TreeError::UnknownTag { node, tag } => {
                write!(f, "node {node} has the unknown tag {tag} (0-6 are defined)")
            }
            TreeError::RunOutOfOrder {
                node,
                first,
                expected,
            } => write!(
                f,
                "node {node}'s children start at node {first}, but the next unassigned node \
                 is {expected} (children are consecutive runs given out in node order)"
            ),
            TreeError::RunOutOfRange {
                node,
                first,
                count,
                len,
            } => write!(
                f,
                "node {node}'s {count} children from node {first} run past the last node \
                 (the tree has {len} nodes)"
            ),
            TreeError::Orphan { node } => {
                write!(f, "node {node} is not the child of any container")
            }
            TreeError::SpanOutOfRange {
                node,
                what,
                span,
                text_len,
            } => write!(
                f,
                "node {node}'s {what} spans bytes {}..{} of a text of {text_len} bytes",
                span.start,
                u64::from(span.start) + u64::from(span.len)
            ),
            TreeError::SpanOffCharBoundary { node, what, span } => write!(
                f,
                "node {node}'s {what} (bytes {}..{}) is not on UTF-8 character boundaries",
                span.start,
                u64::from(span.start) + u64::from(span.len)
            ),
            TreeError::KeyOutsideMap { node } => write!(
                f,
                "node {node} has a key but is not a map entry (the root and list elements \
                 have an empty key)"
            ),
            TreeError::TooDeep { node } => {
                write!(f, "node {node} is nested deeper than {MAX_DEPTH} levels")
            }
        }
    }
}

impl std::error::Error for TreeError {}

/// A checked tree: node list and text, borrowed.
#[derive(Debug)]
pub struct TreeView<'a, N = RawNode> {
    nodes: &'a [N],
    text: &'a str,
}

impl<N> Clone for TreeView<'_, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N> Copy for TreeView<'_, N> {}

impl<'a, N: AsRawNode> TreeView<'a, N> {
    /// Checks the layout (see the module doc) in one pass; allocates nothing.
    pub fn new(nodes: &'a [N], text: &'a str) -> Result<TreeView<'a, N>, TreeError> {
        // `next`: the first node no run has claimed yet. Runs of the nodes
        // at one depth are consecutive, so depth d + 1 starts where the
        // last run handed out by depth d ends: `level_end` tracks that.
        let mut next: u64 = 1;
        let mut level_end: u64 = 1;
        let mut depth = 0usize;
        for (i, node) in nodes.iter().enumerate() {
            let node = node.raw();
            let index = i as u64;
            if i == 0 {
                check_key(text, i, node.key, false)?;
            } else {
                if index >= next {
                    return Err(TreeError::Orphan { node: i });
                }
                if index == level_end {
                    depth += 1;
                    level_end = next;
                }
                if depth > MAX_DEPTH {
                    return Err(TreeError::TooDeep { node: i });
                }
            }
            match node.value {
                RawValue::Text(span) => {
                    check_span(text, i, "string", span)?;
                }
                RawValue::List { first, count } | RawValue::Map { first, count } => {
                    // An empty run claims nothing, so its `first` cannot
                    // overlap or loop; the host leaves it 0 for an empty
                    // container with no deeper level (an empty root map).
                    if count != 0 && u64::from(first) != next {
                        return Err(TreeError::RunOutOfOrder {
                            node: i,
                            first,
                            expected: next,
                        });
                    }
                    let end = next + u64::from(count);
                    if end > nodes.len() as u64 {
                        return Err(TreeError::RunOutOfRange {
                            node: i,
                            first,
                            count,
                            len: nodes.len(),
                        });
                    }
                    // Each node's key is checked once, by its parent, which
                    // is the one that knows whether it may have one.
                    let is_map = matches!(node.value, RawValue::Map { .. });
                    for child in next..end {
                        let c = child as usize;
                        check_key(text, c, nodes[c].raw().key, is_map)?;
                    }
                    next = end;
                }
                RawValue::Null | RawValue::Bool(_) | RawValue::Int(_) | RawValue::Float(_) => {}
            }
        }
        Ok(TreeView { nodes, text })
    }

    /// The root; for an empty node list, an empty map.
    pub fn root(&self) -> NodeRef<'_, N> {
        NodeRef {
            tree: self,
            index: 0,
        }
    }
}

fn check_span(text: &str, node: usize, what: &'static str, span: Span) -> Result<(), TreeError> {
    let start = span.start as usize;
    let end = u64::from(span.start) + u64::from(span.len);
    if end > text.len() as u64 {
        return Err(TreeError::SpanOutOfRange {
            node,
            what,
            span,
            text_len: text.len(),
        });
    }
    if !text.is_char_boundary(start) || !text.is_char_boundary(end as usize) {
        return Err(TreeError::SpanOffCharBoundary { node, what, span });
    }
    Ok(())
}

fn check_key(text: &str, node: usize, key: Span, in_map: bool) -> Result<(), TreeError> {
    if in_map {
        check_span(text, node, "key", key)
    } else if key.len != 0 {
        Err(TreeError::KeyOutsideMap { node })
    } else {
        Ok(())
    }
}

/// One node of a checked tree.
pub struct NodeRef<'a, N = RawNode> {
    tree: &'a TreeView<'a, N>,
    index: usize,
}

impl<N> Clone for NodeRef<'_, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N> Copy for NodeRef<'_, N> {}

impl<'a, N: AsRawNode> NodeRef<'a, N> {
    fn slice(&self, span: Span) -> &'a str {
        // Checked by `TreeView::new`; `get` keeps this free of panics anyway.
        let start = span.start as usize;
        self.tree
            .text
            .get(start..start + span.len as usize)
            .unwrap_or("")
    }

    fn children(&self, first: u32, count: u32) -> Children<'a, N> {
        Children {
            tree: self.tree,
            next: first as usize,
            end: first as usize + count as usize,
        }
    }
}

impl<'a, N: AsRawNode> Node<'a> for NodeRef<'a, N> {
    type Items = Children<'a, N>;
    type Entries = KeyedChildren<'a, N>;

    fn shape(self) -> Shape<'a, Children<'a, N>, KeyedChildren<'a, N>> {
        let Some(node) = self.tree.nodes.get(self.index) else {
            // Only the root of an empty node list: an empty map.
            return Shape::Map(KeyedChildren(self.children(0, 0)));
        };
        match node.raw().value {
            RawValue::Null => Shape::Null,
            RawValue::Bool(b) => Shape::Bool(b),
            RawValue::Int(i) => Shape::Int(i),
            RawValue::Float(f) => Shape::Float(f),
            RawValue::Text(span) => Shape::Str(self.slice(span)),
            RawValue::List { first, count } => Shape::List(self.children(first, count)),
            RawValue::Map { first, count } => {
                Shape::Map(KeyedChildren(self.children(first, count)))
            }
        }
    }
}

impl<N> fmt::Debug for NodeRef<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeRef({})", self.index)
    }
}

/// The elements of a list node.
pub struct Children<'a, N = RawNode> {
    tree: &'a TreeView<'a, N>,
    next: usize,
    end: usize,
}

impl<N> Clone for Children<'_, N> {
    fn clone(&self) -> Self {
        Children { ..*self }
    }
}

impl<'a, N: AsRawNode> Iterator for Children<'a, N> {
    type Item = NodeRef<'a, N>;

    fn next(&mut self) -> Option<NodeRef<'a, N>> {
        if self.next >= self.end {
            return None;
        }
        let node = NodeRef {
            tree: self.tree,
            index: self.next,
        };
        self.next += 1;
        Some(node)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl<N: AsRawNode> ExactSizeIterator for Children<'_, N> {}

/// The entries of a map node, with their keys.
pub struct KeyedChildren<'a, N = RawNode>(Children<'a, N>);

impl<N> Clone for KeyedChildren<'_, N> {
    fn clone(&self) -> Self {
        KeyedChildren(self.0.clone())
    }
}

impl<'a, N: AsRawNode> Iterator for KeyedChildren<'a, N> {
    type Item = (&'a str, NodeRef<'a, N>);

    fn next(&mut self) -> Option<Self::Item> {
        let node = self.0.next()?;
        let key = node
            .tree
            .nodes
            .get(node.index)
            .map_or(Span::default(), |n| n.raw().key);
        Some((node.slice(key), node))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<N: AsRawNode> ExactSizeIterator for KeyedChildren<'_, N> {}

/// A tree in its two buffers, owned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    pub nodes: Vec<RawNode>,
    pub text: String,
}

impl Tree {
    /// Lays `value` out breadth-first, as the host does. (Nesting is not
    /// limited here; [`Tree::view`] refuses what is too deep.)
    pub fn from_value(value: &Value) -> Tree {
        let mut tree = Tree::default();
        let mut queue: VecDeque<(usize, &Value)> = VecDeque::new();
        let root = tree.leaf(value);
        tree.nodes.push(RawNode {
            key: Span::default(),
            value: root,
        });
        queue.push_back((0, value));
        while let Some((index, value)) = queue.pop_front() {
            let first = tree.nodes.len() as u32;
            match value {
                Value::List(items) => {
                    for item in items {
                        let v = tree.leaf(item);
                        queue.push_back((tree.nodes.len(), item));
                        tree.nodes.push(RawNode {
                            key: Span::default(),
                            value: v,
                        });
                    }
                    tree.nodes[index].value = RawValue::List {
                        first,
                        count: items.len() as u32,
                    };
                }
                Value::Map(entries) => {
                    for (key, item) in entries {
                        let key = tree.push_text(key);
                        let v = tree.leaf(item);
                        queue.push_back((tree.nodes.len(), item));
                        tree.nodes.push(RawNode { key, value: v });
                    }
                    tree.nodes[index].value = RawValue::Map {
                        first,
                        count: entries.len() as u32,
                    };
                }
                _ => {}
            }
        }
        tree
    }

    /// Checks the layout and returns the view.
    pub fn view(&self) -> Result<TreeView<'_, RawNode>, TreeError> {
        TreeView::new(&self.nodes, &self.text)
    }

    /// The node value of a scalar (containers get their run when the queue
    /// reaches them; a placeholder until then).
    fn leaf(&mut self, value: &Value) -> RawValue {
        match value {
            Value::Null | Value::List(_) | Value::Map(_) => RawValue::Null,
            Value::Bool(b) => RawValue::Bool(*b),
            Value::Int(i) => RawValue::Int(*i),
            Value::Float(f) => RawValue::Float(*f),
            Value::Str(s) => RawValue::Text(self.push_text(s)),
        }
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
mod tests;
