//! Parameter trees into the WIT `value-tree` form.
//!
//! WIT has no recursive types, so a tree crosses the boundary as two flat
//! buffers: five `u32` words per node (`[tag, key-start, key-len, a, b]`, see
//! `value-tree` in wit/plugin.wit), in which containers name their children
//! as a run of consecutive nodes, and one string holding every key and text
//! value, which nodes refer to by byte range. However many values a tree
//! holds, crossing it is two copies and two guest allocations (contract 0.2;
//! 0.1 sent one string per value and wasmtime called the guest's allocator
//! for each). Plain words, not a list of WIT records, because wasmtime
//! lowers a `list<u32>` with one copy and a list of records field by field
//! (measured: that was a fifth of a `build-request` call).
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

use super::wit::ValueTree;

/// The node tags of `value-tree` (wit/plugin.wit).
mod tag {
    pub(super) const NULL: u32 = 0;
    pub(super) const BOOLEAN: u32 = 1;
    pub(super) const INTEGER: u32 = 2;
    pub(super) const FLOAT: u32 = 3;
    pub(super) const TEXT: u32 = 4;
    pub(super) const LIST: u32 = 5;
    pub(super) const MAP: u32 = 6;
}

/// Words per node.
const WORDS: usize = 5;

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
/// An empty map is the contract's empty tree (no nodes: most requests set
/// no `.set` extras), which allocates nothing.
pub fn rhai_map_to_tree(root: &rhai::Map) -> Result<ValueTree, String> {
    if root.is_empty() {
        return Ok(ValueTree {
            nodes: Vec::new(),
            text: String::new(),
        });
    }
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
        words: vec![0; counts.total * WORDS],
        text: String::with_capacity(counts.text),
        cursors: starts,
    };
    place(root, None, 0, &mut out);
    Ok(ValueTree {
        nodes: out.words,
        text: out.text,
    })
}

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

/// Second pass's state: the node words, the text, and the next free index
/// of each depth.
struct Placer {
    words: Vec<u32>,
    text: String,
    cursors: Vec<u32>,
}

impl Placer {
    /// The run of `n` children of a container at `depth`: the next free
    /// indexes one level down, as `(first, count)`.
    fn run(&self, depth: usize, n: usize) -> (u32, u32) {
        // With no level below (every container at this depth is empty), the
        // next free index is the end of the list.
        let end = (self.words.len() / WORDS) as u32;
        (
            self.cursors.get(depth + 1).copied().unwrap_or(end),
            n as u32,
        )
    }

    /// Appends `s` to the text; its `(start, len)`.
    fn span(&mut self, s: &str) -> (u32, u32) {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, s.len() as u32)
    }
}

/// Second pass: writes `value` (checked by [`count`]) at its index.
fn place<S: Source>(value: &S, key: Option<&str>, depth: usize, out: &mut Placer) {
    let index = out.cursors[depth] as usize;
    out.cursors[depth] += 1;
    let (key_start, key_len) = key.map_or((0, 0), |k| out.span(k));
    let (tag, (a, b), container) = value.with_shape(|shape| match shape {
        Shape::Scalar(Scalar::Null) | Shape::Unsupported(_) => (tag::NULL, (0, 0), false),
        Shape::Scalar(Scalar::Bool(b)) => (tag::BOOLEAN, (u32::from(b), 0), false),
        Shape::Scalar(Scalar::Int(i)) => (tag::INTEGER, halves(i as u64), false),
        Shape::Scalar(Scalar::Float(x)) => (tag::FLOAT, halves(x.to_bits()), false),
        Shape::Scalar(Scalar::Text(s)) => (tag::TEXT, out.span(s), false),
        Shape::List(n) => (tag::LIST, out.run(depth, n), true),
        Shape::Map(n) => (tag::MAP, out.run(depth, n), true),
    });
    out.words[index * WORDS..(index + 1) * WORDS].copy_from_slice(&[tag, key_start, key_len, a, b]);
    if container {
        let _ = value.each_child(&mut |key, child| {
            place(child, key, depth + 1, out);
            Ok(())
        });
    }
}

/// `(low, high)` 32-bit halves of a 64-bit value.
fn halves(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One node, decoded from its words, for the assertions.
    #[derive(Debug, PartialEq)]
    enum Decoded<'t> {
        Null,
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(&'t str),
        List(u32, u32),
        Map(u32, u32),
    }

    fn decode(tree: &ValueTree) -> Vec<(&str, Decoded<'_>)> {
        let text = |start: u32, len: u32| &tree.text[start as usize..(start + len) as usize];
        tree.nodes
            .chunks(WORDS)
            .map(|w| {
                let joined = (u64::from(w[4]) << 32) | u64::from(w[3]);
                let value = match w[0] {
                    tag::NULL => Decoded::Null,
                    tag::BOOLEAN => Decoded::Bool(w[3] == 1),
                    tag::INTEGER => Decoded::Int(joined as i64),
                    tag::FLOAT => Decoded::Float(f64::from_bits(joined)),
                    tag::TEXT => Decoded::Text(text(w[3], w[4])),
                    tag::LIST => Decoded::List(w[3], w[4]),
                    tag::MAP => Decoded::Map(w[3], w[4]),
                    other => panic!("unknown tag {other}"),
                };
                (text(w[1], w[2]), value)
            })
            .collect()
    }

    #[test]
    fn nested_json_flattens_breadth_first() {
        let tree = json_to_tree(&serde_json::json!({
            "a": [1, {"b": true}],
            "c": {"d": "x"},
            "e": "y"
        }))
        .unwrap();
        // Depth 0: the root. Depth 1: a, c, e. Depth 2: a's two items, then
        // c's entry. Depth 3: the item map's entry.
        assert_eq!(
            decode(&tree),
            [
                ("", Decoded::Map(1, 3)),
                ("a", Decoded::List(4, 2)),
                ("c", Decoded::Map(6, 1)),
                ("e", Decoded::Text("y")),
                ("", Decoded::Int(1)),
                ("", Decoded::Map(7, 1)),
                ("d", Decoded::Text("x")),
                ("b", Decoded::Bool(true)),
            ]
        );
    }

    #[test]
    fn scalars_keep_every_bit() {
        let tree = json_to_tree(&serde_json::json!([-1, i64::MIN, 0.1, -0.0, null])).unwrap();
        let values: Vec<Decoded> = decode(&tree).into_iter().map(|(_, v)| v).collect();
        assert_eq!(values[1], Decoded::Int(-1));
        assert_eq!(values[2], Decoded::Int(i64::MIN));
        assert_eq!(values[3], Decoded::Float(0.1));
        assert!(matches!(values[4], Decoded::Float(z) if z == 0.0 && z.is_sign_negative()));
        assert_eq!(values[5], Decoded::Null);
    }

    #[test]
    fn an_empty_map_is_one_node_or_none() {
        // As a value: one node. An empty run starts where the list ends, as
        // the layout says.
        let tree = rhai_to_tree(&Dynamic::from_map(rhai::Map::new())).unwrap();
        assert_eq!(decode(&tree), [("", Decoded::Map(1, 0))]);
        assert!(tree.text.is_empty());
        // As the root of a request's parameters: the contract's empty tree,
        // no nodes at all (nothing allocated).
        let tree = rhai_map_to_tree(&rhai::Map::new()).unwrap();
        assert!(tree.nodes.is_empty() && tree.text.is_empty());
    }

    #[test]
    fn rhai_strings_and_chars_land_in_the_text() {
        let mut map = rhai::Map::new();
        map.insert("s".into(), Dynamic::from("héllo"));
        map.insert("c".into(), Dynamic::from('ü'));
        let tree = rhai_map_to_tree(&map).unwrap();
        assert_eq!(
            decode(&tree)[1..],
            [("c", Decoded::Text("ü")), ("s", Decoded::Text("héllo"))]
        );
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
