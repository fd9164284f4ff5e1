//! Parameter trees into the WIT `value-tree` form.
//!
//! WIT has no recursive types, so a tree crosses the boundary as two
//! buffers: a list of fixed-size nodes, in which containers name their
//! children as a run of consecutive nodes, and one string holding every key
//! and text value, which nodes refer to by byte range. However many values a
//! tree holds, crossing it costs the guest two allocations (contract 0.2;
//! 0.1 sent one string per value, and wasmtime called the guest's allocator
//! for each).
//!
//! The layout is breadth-first (the contract's `value-tree` says exactly
//! what the plugin checks). It is produced here by two depth-first passes:
//! the first counts the nodes at each depth, the second gives each node the
//! next index of its depth. Depth-first order visits the nodes of one depth
//! left to right, as breadth-first order does, so each container's children
//! come out as one run, and the runs in container order.
//!
//! Scripts build trees as Rhai values; the CLI and tests build them as JSON.
//! Both go through [`Source`] and the same two passes.
//!
//! Script data is untrusted in shape: a script can nest a map a hundred
//! thousand levels deep. What crosses into the plugin is bounded here, in one
//! place: at most [`MAX_DEPTH`] levels of nesting and [`MAX_NODES`] values,
//! each refused with the path where the limit was hit. The bound on depth
//! also bounds this module's recursion (the first pass stops at it).

use rhai::Dynamic;

use super::wit::{Children, NodeValue, Span, ValueNode, ValueTree};

/// Deepest nesting of maps and lists a parameter tree may have. Real
/// provider APIs nest a handful of levels (Stripe's deepest parameters are
/// four or five); 32 leaves room without letting a script exhaust anything.
pub(crate) const MAX_DEPTH: usize = 32;

/// Most values (leaves and containers) one parameter tree may hold.
pub(crate) const MAX_NODES: usize = 100_000;

/// Most bytes of keys and text one parameter tree may hold (spans are u32).
const MAX_TEXT: usize = 64 << 20;

/// Flattens a Rhai value. Values that have no parameter meaning (functions,
/// custom types, timestamps) are refused with the path where they sit, and
/// so are trees deeper than [`MAX_DEPTH`] or larger than [`MAX_NODES`].
pub fn rhai_to_tree(root: &Dynamic) -> Result<ValueTree, String> {
    flatten(root).map_err(Unsendable::describe)
}

/// Flattens a Rhai map as the root, without copying it into a `Dynamic`.
pub fn rhai_map_to_tree(root: &rhai::Map) -> Result<ValueTree, String> {
    flatten(&MapRoot(root)).map_err(Unsendable::describe)
}

/// Flattens a JSON value (key order preserved).
pub fn json_to_tree(root: &serde_json::Value) -> Result<ValueTree, String> {
    flatten(root).map_err(Unsendable::describe)
}

/// A scalar, as the tree holds it.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
}

/// What a value is: a scalar, a container, or something that cannot be sent.
enum Shape<'a> {
    Scalar(Scalar<'a>),
    List(usize),
    Map(usize),
    Unsupported(&'static str),
}

/// What [`Source::each_child`] calls for each child: its key (in a map)
/// and the child.
type Visit<'v, C> = dyn FnMut(Option<&str>, &C) -> Result<(), Unsendable> + 'v;

/// A tree-shaped value the two passes can walk.
trait Source {
    type Child: Source;
    /// Calls `f` with what `self` is (a callback, so that a value behind a
    /// lock can lend its text for the call).
    fn with_shape<R>(&self, f: impl FnOnce(Shape<'_>) -> R) -> R;
    /// Calls `f` for each child in order, with its key when `self` is a map.
    fn each_child(&self, f: &mut Visit<'_, Self::Child>) -> Result<(), Unsendable>;
}

impl Source for Dynamic {
    type Child = Dynamic;

    fn with_shape<R>(&self, f: impl FnOnce(Shape<'_>) -> R) -> R {
        if self.is_unit() {
            f(Shape::Scalar(Scalar::Null))
        } else if let Ok(b) = self.as_bool() {
            f(Shape::Scalar(Scalar::Bool(b)))
        } else if let Ok(i) = self.as_int() {
            f(Shape::Scalar(Scalar::Int(i)))
        } else if let Ok(x) = self.as_float() {
            f(Shape::Scalar(Scalar::Float(x)))
        } else if let Ok(s) = self.as_immutable_string_ref() {
            f(Shape::Scalar(Scalar::Text(s.as_str())))
        } else if let Ok(c) = self.as_char() {
            f(Shape::Scalar(Scalar::Text(c.encode_utf8(&mut [0; 4]))))
        } else if let Some(array) = self.read_lock::<rhai::Array>() {
            f(Shape::List(array.len()))
        } else if let Some(map) = self.read_lock::<rhai::Map>() {
            f(Shape::Map(map.len()))
        } else {
            f(Shape::Unsupported(self.type_name()))
        }
    }

    fn each_child(&self, f: &mut Visit<'_, Dynamic>) -> Result<(), Unsendable> {
        if let Some(array) = self.read_lock::<rhai::Array>() {
            for (i, item) in array.iter().enumerate() {
                f(None, item).map_err(|bad| bad.within(format!("[{i}]")))?;
            }
        } else if let Some(map) = self.read_lock::<rhai::Map>() {
            MapRoot(&map).each_child(f)?;
        }
        Ok(())
    }
}

/// A Rhai map used as a root without wrapping it in a `Dynamic`.
struct MapRoot<'m>(&'m rhai::Map);

impl Source for MapRoot<'_> {
    type Child = Dynamic;

    fn with_shape<R>(&self, f: impl FnOnce(Shape<'_>) -> R) -> R {
        f(Shape::Map(self.0.len()))
    }

    fn each_child(&self, f: &mut Visit<'_, Dynamic>) -> Result<(), Unsendable> {
        for (key, item) in self.0.iter() {
            f(Some(key.as_str()), item).map_err(|bad| bad.within(key.to_string()))?;
        }
        Ok(())
    }
}

impl Source for serde_json::Value {
    type Child = serde_json::Value;

    fn with_shape<R>(&self, f: impl FnOnce(Shape<'_>) -> R) -> R {
        use serde_json::Value;
        f(match self {
            Value::Null => Shape::Scalar(Scalar::Null),
            Value::Bool(b) => Shape::Scalar(Scalar::Bool(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Shape::Scalar(Scalar::Int(i)),
                None => Shape::Scalar(Scalar::Float(n.as_f64().unwrap_or(f64::NAN))),
            },
            Value::String(s) => Shape::Scalar(Scalar::Text(s)),
            Value::Array(items) => Shape::List(items.len()),
            Value::Object(map) => Shape::Map(map.len()),
        })
    }

    fn each_child(&self, f: &mut Visit<'_, serde_json::Value>) -> Result<(), Unsendable> {
        use serde_json::Value;
        match self {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    f(None, item).map_err(|bad| bad.within(format!("[{i}]")))?;
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    f(Some(key), item).map_err(|bad| bad.within(key.clone()))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What is wrong with a value that cannot be a parameter.
enum Problem {
    /// A value of this type has no parameter meaning.
    Type(&'static str),
    TooDeep,
    TooMany,
    TooMuchText,
}

/// A value that cannot be a parameter, and where it sits (segments collected
/// innermost first while unwinding, so the happy path builds no paths).
struct Unsendable {
    problem: Problem,
    path: Vec<String>,
}

impl Unsendable {
    fn new(problem: Problem) -> Self {
        Self {
            problem,
            path: Vec::new(),
        }
    }

    /// Adds the segment of the path one level up (while unwinding).
    fn within(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    fn describe(mut self) -> String {
        self.path.reverse();
        let mut at = String::new();
        for (i, segment) in self.path.iter().enumerate() {
            // Top-level keys bare, nested keys in brackets, indexes as is.
            if (i == 0 && !segment.starts_with('[')) || segment.starts_with('[') {
                at.push_str(segment);
            } else {
                at.push_str(&format!("[{segment}]"));
            }
        }
        let at = if at.is_empty() {
            "the parameters".to_string()
        } else if at.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| at.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}…", &at[..cut])
        } else {
            at
        };
        match self.problem {
            Problem::Type(type_name) => format!(
                "{at}: a value of type `{type_name}` cannot be sent as a parameter (use strings, numbers, booleans, arrays or maps)"
            ),
            Problem::TooDeep => {
                format!("{at}: parameters nest deeper than {MAX_DEPTH} levels of maps and arrays")
            }
            Problem::TooMany => format!("{at}: parameters hold more than {MAX_NODES} values"),
            Problem::TooMuchText => format!(
                "{at}: parameters hold more than {} MiB of keys and text",
                MAX_TEXT >> 20
            ),
        }
    }
}

/// Both passes over `root`.
fn flatten<S: Source>(root: &S) -> Result<ValueTree, Unsendable> {
    let mut counts = Levels::default();
    count(root, 0, &mut counts)?;
    let mut starts = Vec::with_capacity(counts.per_depth.len());
    let mut next = 0u32;
    for &n in &counts.per_depth {
        starts.push(next);
        next += n;
    }
    let mut out = Placer {
        nodes: vec![
            ValueNode {
                key: EMPTY,
                value: NodeValue::Null,
            };
            counts.total
        ],
        text: String::with_capacity(counts.text),
        cursors: starts,
    };
    place(root, None, 0, &mut out);
    Ok(ValueTree {
        nodes: out.nodes,
        text: out.text,
    })
}

const EMPTY: Span = Span { start: 0, len: 0 };

/// What the first pass learns: nodes per depth, in total, and text bytes.
#[derive(Default)]
struct Levels {
    per_depth: Vec<u32>,
    total: usize,
    text: usize,
}

/// First pass: counts, and refuses what cannot be sent. Recursion stops at
/// [`MAX_DEPTH`].
fn count<S: Source>(value: &S, depth: usize, levels: &mut Levels) -> Result<(), Unsendable> {
    if levels.total >= MAX_NODES {
        return Err(Unsendable::new(Problem::TooMany));
    }
    levels.total += 1;
    if levels.per_depth.len() == depth {
        levels.per_depth.push(0);
    }
    levels.per_depth[depth] += 1;
    let container = value.with_shape(|shape| match shape {
        Shape::Scalar(Scalar::Text(s)) => {
            levels.text += s.len();
            Ok(false)
        }
        Shape::Scalar(_) => Ok(false),
        Shape::List(_) | Shape::Map(_) => Ok(true),
        Shape::Unsupported(type_name) => Err(Unsendable::new(Problem::Type(type_name))),
    })?;
    if levels.text > MAX_TEXT {
        return Err(Unsendable::new(Problem::TooMuchText));
    }
    if !container {
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(Unsendable::new(Problem::TooDeep));
    }
    value.each_child(&mut |key, child| {
        levels.text += key.map_or(0, str::len);
        count(child, depth + 1, levels)
    })
}

/// Second pass's state: the nodes, the text, and the next free index of
/// each depth.
struct Placer {
    nodes: Vec<ValueNode>,
    text: String,
    cursors: Vec<u32>,
}

impl Placer {
    /// The run of `n` children of a container at `depth`: the next free
    /// indexes one level down.
    fn run(&self, depth: usize, n: usize) -> Children {
        // With no level below (every container at this depth is empty), the
        // next free index is the end of the list.
        let end = self.nodes.len() as u32;
        Children {
            first: self.cursors.get(depth + 1).copied().unwrap_or(end),
            count: n as u32,
        }
    }

    fn span(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }
}

/// Second pass: writes `value` (checked by [`count`]) at its index.
fn place<S: Source>(value: &S, key: Option<&str>, depth: usize, out: &mut Placer) {
    let index = out.cursors[depth] as usize;
    out.cursors[depth] += 1;
    let key = key.map_or(EMPTY, |k| out.span(k));
    let (node, container) = value.with_shape(|shape| match shape {
        Shape::Scalar(Scalar::Null) | Shape::Unsupported(_) => (NodeValue::Null, false),
        Shape::Scalar(Scalar::Bool(b)) => (NodeValue::Boolean(b), false),
        Shape::Scalar(Scalar::Int(i)) => (NodeValue::Integer(i), false),
        Shape::Scalar(Scalar::Float(x)) => (NodeValue::Float(x), false),
        Shape::Scalar(Scalar::Text(s)) => (NodeValue::Text(out.span(s)), false),
        Shape::List(n) => (NodeValue::List(out.run(depth, n)), true),
        Shape::Map(n) => (NodeValue::Map(out.run(depth, n)), true),
    });
    out.nodes[index] = ValueNode { key, value: node };
    if container {
        let _ = value.each_child(&mut |key, child| {
            place(child, key, depth + 1, out);
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(tree: &ValueTree, span: Span) -> &str {
        &tree.text[span.start as usize..(span.start + span.len) as usize]
    }

    fn is_run(r: &Children, first: u32, count: u32) -> bool {
        r.first == first && r.count == count
    }

    #[test]
    fn nested_json_flattens_breadth_first() {
        let tree = json_to_tree(&serde_json::json!({
            "a": [1, {"b": true}],
            "c": {"d": "x"},
            "e": "y"
        }))
        .unwrap();
        let values: Vec<&NodeValue> = tree.nodes.iter().map(|n| &n.value).collect();
        // Depth 0: the root. Depth 1: a, c, e. Depth 2: a's two items, then
        // c's entry. Depth 3: the item map's entry.
        assert!(matches!(values[0], NodeValue::Map(r) if is_run(r, 1, 3)));
        assert!(matches!(values[1], NodeValue::List(r) if is_run(r, 4, 2)));
        assert!(matches!(values[2], NodeValue::Map(r) if is_run(r, 6, 1)));
        assert!(matches!(values[3], NodeValue::Text(s) if text(&tree, *s) == "y"));
        assert!(matches!(values[4], NodeValue::Integer(1)));
        assert!(matches!(values[5], NodeValue::Map(r) if is_run(r, 7, 1)));
        assert!(matches!(values[6], NodeValue::Text(s) if text(&tree, *s) == "x"));
        assert!(matches!(values[7], NodeValue::Boolean(true)));
        let keys: Vec<&str> = tree.nodes.iter().map(|n| text(&tree, n.key)).collect();
        assert_eq!(keys, ["", "a", "c", "e", "", "", "d", "b"]);
        assert_eq!(tree.nodes.len(), 8);
    }

    #[test]
    fn empty_map_is_one_node() {
        let tree = rhai_map_to_tree(&rhai::Map::new()).unwrap();
        assert_eq!(tree.nodes.len(), 1);
        // An empty run starts where the list ends, as the layout says.
        assert!(matches!(tree.nodes[0].value, NodeValue::Map(r) if is_run(&r, 1, 0)));
        assert!(tree.text.is_empty());
    }

    #[test]
    fn rhai_strings_and_chars_land_in_the_text() {
        let mut map = rhai::Map::new();
        map.insert("s".into(), Dynamic::from("héllo"));
        map.insert("c".into(), Dynamic::from('ü'));
        let tree = rhai_map_to_tree(&map).unwrap();
        let texts: Vec<(&str, &str)> = tree.nodes[1..]
            .iter()
            .map(|n| match n.value {
                NodeValue::Text(s) => (text(&tree, n.key), text(&tree, s)),
                _ => panic!("not text"),
            })
            .collect();
        assert_eq!(texts, [("c", "ü"), ("s", "héllo")]);
    }

    #[test]
    fn rhai_function_pointer_is_refused_with_its_path() {
        let mut map = rhai::Map::new();
        map.insert("cb".into(), Dynamic::from(rhai::FnPtr::new("f").unwrap()));
        let err = rhai_to_tree(&Dynamic::from_map(map)).unwrap_err();
        assert!(err.starts_with("cb: a value of type"), "{err}");
    }

    fn nested(levels: usize) -> rhai::Map {
        let mut map = rhai::Map::new();
        map.insert("leaf".into(), Dynamic::from("x"));
        for _ in 1..levels {
            let mut outer = rhai::Map::new();
            outer.insert("a".into(), Dynamic::from_map(map));
            map = outer;
        }
        map
    }

    #[test]
    fn nesting_is_bounded_with_the_path_named() {
        assert!(rhai_map_to_tree(&nested(MAX_DEPTH)).is_ok());
        let err = rhai_map_to_tree(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.starts_with("a[a][a]"), "{err}");
        assert!(err.contains("deeper than 32 levels"), "{err}");
        // Deeper trees stop at the bound, not at the bottom of the stack.
        let err = rhai_map_to_tree(&nested(2_000)).unwrap_err();
        assert!(err.contains("deeper than 32 levels"), "{err}");
    }

    #[test]
    fn size_is_bounded() {
        let big: rhai::Array = (0..MAX_NODES as i64).map(Dynamic::from).collect();
        let mut map = rhai::Map::new();
        map.insert("items".into(), Dynamic::from_array(big));
        let err = rhai_map_to_tree(&map).unwrap_err();
        assert!(err.contains("more than 100000 values"), "{err}");
    }
}
