use super::*;
use crate::value::Value;

fn s(v: &str) -> Value {
    Value::Str(v.into())
}
fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn sample() -> Value {
    map(vec![
        ("amount", Value::Int(2000)),
        ("currency", s("usd")),
        (
            "items",
            Value::List(vec![map(vec![
                ("price", s("price_1")),
                ("quantity", Value::Int(2)),
            ])]),
        ),
        ("confirm", Value::Bool(true)),
        ("rate", Value::Float(1.5)),
        ("gone", Value::Null),
        ("name", s("Zoë 💳")),
    ])
}

fn node(value: RawValue) -> RawNode {
    RawNode {
        key: Span::default(),
        value,
    }
}

fn keyed(start: u32, len: u32, value: RawValue) -> RawNode {
    RawNode {
        key: Span { start, len },
        value,
    }
}

fn text(start: u32, len: u32) -> RawValue {
    RawValue::Text(Span { start, len })
}

fn check(nodes: &[RawNode], text: &str) -> Result<Value, TreeError> {
    TreeView::new(nodes, text).map(|view| Value::from_node(view.root()))
}

#[test]
fn round_trip() {
    let v = sample();
    let tree = Tree::from_value(&v);
    assert_eq!(Value::from_node(tree.view().unwrap().root()), v);
}

#[test]
fn breadth_first_layout() {
    // {a: [1, 2], b: {c: "x"}}: root, then a and b, then a's run, then b's.
    let v = map(vec![
        ("a", Value::List(vec![Value::Int(1), Value::Int(2)])),
        ("b", map(vec![("c", s("x"))])),
    ]);
    let tree = Tree::from_value(&v);
    let values: Vec<RawValue> = tree.nodes.iter().map(|n| n.value).collect();
    assert_eq!(
        values,
        vec![
            RawValue::Map { first: 1, count: 2 },
            RawValue::List { first: 3, count: 2 },
            RawValue::Map { first: 5, count: 1 },
            RawValue::Int(1),
            RawValue::Int(2),
            text(3, 1),
        ]
    );
    assert_eq!(tree.text, "abcx");
}

#[test]
fn empty_nodes_are_an_empty_map() {
    assert_eq!(check(&[], ""), Ok(Value::Map(vec![])));
    assert_eq!(check(&[], "unused text"), Ok(Value::Map(vec![])));
}

#[test]
fn an_empty_run_may_start_anywhere() {
    // What the host sends for an empty map: its run has nowhere to start.
    let empty_root = [node(RawValue::Map { first: 0, count: 0 })];
    assert_eq!(check(&empty_root, ""), Ok(Value::Map(vec![])));
    // {a: [], b: 1}: `a`'s empty run at 0 or 7 claims nothing.
    for first in [0, 3, 7, u32::MAX] {
        let nodes = [
            node(RawValue::Map { first: 1, count: 2 }),
            keyed(0, 1, RawValue::List { first, count: 0 }),
            keyed(1, 1, RawValue::Int(1)),
        ];
        assert_eq!(
            check(&nodes, "ab"),
            Ok(map(vec![("a", Value::List(vec![])), ("b", Value::Int(1))]))
        );
    }
}

#[test]
fn scalar_root() {
    assert_eq!(check(&[node(text(0, 1))], "x"), Ok(s("x")));
}

#[test]
fn run_past_the_end_is_malformed() {
    let nodes = [
        node(RawValue::Map { first: 1, count: 2 }),
        keyed(0, 1, RawValue::Int(1)),
    ];
    let err = check(&nodes, "a").unwrap_err();
    assert_eq!(
        err,
        TreeError::RunOutOfRange {
            node: 0,
            first: 1,
            count: 2,
            len: 2
        }
    );
    assert!(err.to_string().contains("run past the last node"), "{err}");
    // Counts near u32::MAX must not overflow.
    let nodes = [node(RawValue::List {
        first: 1,
        count: u32::MAX,
    })];
    assert!(matches!(
        check(&nodes, ""),
        Err(TreeError::RunOutOfRange { .. })
    ));
}

#[test]
fn run_not_at_the_next_node_is_malformed() {
    // The root's run must start at 1.
    let nodes = [node(RawValue::List { first: 0, count: 1 })];
    assert_eq!(
        check(&nodes, ""),
        Err(TreeError::RunOutOfOrder {
            node: 0,
            first: 0,
            expected: 1
        })
    );
    // Overlapping runs: node 1 claims node 2, which the root already has.
    let nodes = [
        node(RawValue::List { first: 1, count: 2 }),
        node(RawValue::List { first: 2, count: 1 }),
        node(RawValue::Int(1)),
    ];
    assert_eq!(
        check(&nodes, ""),
        Err(TreeError::RunOutOfOrder {
            node: 1,
            first: 2,
            expected: 3
        })
    );
    // A run that skips a node.
    let nodes = [
        node(RawValue::List { first: 2, count: 1 }),
        node(RawValue::Int(1)),
        node(RawValue::Int(2)),
    ];
    assert!(matches!(
        check(&nodes, ""),
        Err(TreeError::RunOutOfOrder { .. })
    ));
    // A cycle back to the root.
    let nodes = [
        node(RawValue::List { first: 1, count: 1 }),
        node(RawValue::List { first: 0, count: 1 }),
    ];
    assert!(matches!(
        check(&nodes, ""),
        Err(TreeError::RunOutOfOrder { .. })
    ));
}

#[test]
fn unclaimed_node_is_malformed() {
    let nodes = [
        node(RawValue::Map { first: 1, count: 0 }),
        node(RawValue::Int(5)),
    ];
    let err = check(&nodes, "").unwrap_err();
    assert_eq!(err, TreeError::Orphan { node: 1 });
    assert!(err.to_string().contains("node 1"), "{err}");
    let nodes = [node(RawValue::Int(1)), node(RawValue::Int(2))];
    assert_eq!(check(&nodes, ""), Err(TreeError::Orphan { node: 1 }));
}

#[test]
fn spans_out_of_range_are_malformed() {
    let nodes = [node(text(2, 5))];
    let err = check(&nodes, "abc").unwrap_err();
    assert!(matches!(
        err,
        TreeError::SpanOutOfRange {
            node: 0,
            what: "string",
            ..
        }
    ));
    assert!(err.to_string().contains("2..7"), "{err}");
    // start + len overflowing u32 is out of range, not a wrap-around.
    let nodes = [node(text(u32::MAX, u32::MAX))];
    assert!(matches!(
        check(&nodes, "abc"),
        Err(TreeError::SpanOutOfRange { .. })
    ));
    // A key out of range.
    let nodes = [
        node(RawValue::Map { first: 1, count: 1 }),
        keyed(1, 9, RawValue::Int(1)),
    ];
    assert!(matches!(
        check(&nodes, "abc"),
        Err(TreeError::SpanOutOfRange {
            node: 1,
            what: "key",
            ..
        })
    ));
}

#[test]
fn spans_off_a_char_boundary_are_malformed() {
    // "é" is two bytes: a span ending or starting inside it is refused.
    let nodes = [node(text(0, 1))];
    assert_eq!(
        check(&nodes, "é"),
        Err(TreeError::SpanOffCharBoundary {
            node: 0,
            what: "string",
            span: Span { start: 0, len: 1 }
        })
    );
    let nodes = [node(text(1, 1))];
    assert!(matches!(
        check(&nodes, "é"),
        Err(TreeError::SpanOffCharBoundary { .. })
    ));
    let nodes = [
        node(RawValue::Map { first: 1, count: 1 }),
        keyed(1, 3, RawValue::Null),
    ];
    let err = check(&nodes, "💳x").unwrap_err();
    assert!(
        matches!(err, TreeError::SpanOffCharBoundary { what: "key", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("character boundaries"), "{err}");
    // The whole character is fine.
    let nodes = [node(text(0, 2))];
    assert_eq!(check(&nodes, "é"), Ok(s("é")));
}

#[test]
fn keys_only_on_map_entries() {
    let nodes = [keyed(0, 1, RawValue::Int(1))];
    assert_eq!(
        check(&nodes, "k"),
        Err(TreeError::KeyOutsideMap { node: 0 })
    );
    let nodes = [
        node(RawValue::List { first: 1, count: 1 }),
        keyed(0, 1, RawValue::Int(1)),
    ];
    assert_eq!(
        check(&nodes, "k"),
        Err(TreeError::KeyOutsideMap { node: 1 })
    );
}

/// A list nested `depth` times around an integer: the leaf is at `depth`.
fn chain(depth: usize) -> Vec<RawNode> {
    let mut nodes: Vec<RawNode> = (0..depth)
        .map(|i| {
            node(RawValue::List {
                first: i as u32 + 1,
                count: 1,
            })
        })
        .collect();
    nodes.push(node(RawValue::Int(0)));
    nodes
}

#[test]
fn depth_limit() {
    assert!(check(&chain(MAX_DEPTH), "").is_ok());
    let err = check(&chain(MAX_DEPTH + 1), "").unwrap_err();
    assert_eq!(
        err,
        TreeError::TooDeep {
            node: MAX_DEPTH + 1
        }
    );
    assert!(err.to_string().contains("deeper than 32"), "{err}");
    assert!(matches!(
        check(&chain(100_000), ""),
        Err(TreeError::TooDeep { .. })
    ));
    // Depth counts levels, not nodes: a wide tree is fine.
    let wide = map((0..1000).map(|_| ("k", Value::Int(1))).collect());
    assert!(Tree::from_value(&wide).view().is_ok());
}

#[test]
fn reads_in_place() {
    let v = sample();
    let tree = Tree::from_value(&v);
    let view = tree.view().unwrap();
    let root = view.root();
    let Some(name) = root.get("name") else {
        panic!("no name")
    };
    let Shape::Str(name) = name.shape() else {
        panic!("not a string")
    };
    // The same bytes as the text buffer, not a copy.
    let text = tree.text.as_str();
    let offset = name.as_ptr() as usize - text.as_ptr() as usize;
    assert!(offset + name.len() <= text.len());
    assert_eq!(name, "Zoë 💳");
    assert!(root.get("gone").unwrap().is_null());
    assert!(root.get("missing").is_none());
}
