//! Parameter trees into the WIT `value-tree` form.
//!
//! WIT has no recursive types, so a tree crosses the boundary as a flat list
//! of nodes in which containers name their children by index (node 0 is the
//! root). Scripts build trees as Rhai values; the CLI and tests build them as
//! JSON. Both flatten here, in one pass, parents before children.
//!
//! Script data is untrusted in shape: a script can nest a map a hundred
//! thousand levels deep. What crosses into the plugin is bounded here, in one
//! place: at most [`MAX_DEPTH`] levels of nesting and [`MAX_NODES`] values,
//! each refused with the path where the limit was hit. The bound on depth
//! also bounds this module's recursion.

use rhai::Dynamic;

use super::wit::ValueNode;

/// Deepest nesting of maps and lists a parameter tree may have. Real
/// provider APIs nest a handful of levels (Stripe's deepest parameters are
/// four or five); 32 leaves room without letting a script exhaust anything.
pub(crate) const MAX_DEPTH: usize = 32;

/// Most values (leaves and containers) one parameter tree may hold.
pub(crate) const MAX_NODES: usize = 100_000;

/// Flattens a Rhai value. Values that have no parameter meaning (functions,
/// custom types, timestamps) are refused with the path where they sit, and
/// so are trees deeper than [`MAX_DEPTH`] or larger than [`MAX_NODES`].
pub fn rhai_to_tree(root: &Dynamic) -> Result<Vec<ValueNode>, String> {
    let mut nodes = Vec::with_capacity(16);
    push_rhai(root, &mut nodes, 0).map_err(|bad| bad.describe())?;
    Ok(nodes)
}

/// Flattens a Rhai map as the root, without copying it into a `Dynamic`.
pub fn rhai_map_to_tree(root: &rhai::Map) -> Result<Vec<ValueNode>, String> {
    let mut nodes = Vec::with_capacity(1 + root.len() * 2);
    nodes.push(ValueNode::Null);
    let node = push_rhai_map(root, &mut nodes, 0).map_err(|bad| bad.describe())?;
    nodes[0] = node;
    Ok(nodes)
}

/// What is wrong with a value that cannot be a parameter.
enum Problem {
    /// A value of this type has no parameter meaning.
    Type(&'static str),
    TooDeep,
    TooMany,
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
        }
    }
}

fn push_rhai(value: &Dynamic, nodes: &mut Vec<ValueNode>, depth: usize) -> Result<u32, Unsendable> {
    if nodes.len() >= MAX_NODES {
        return Err(Unsendable::new(Problem::TooMany));
    }
    let index = nodes.len() as u32;
    nodes.push(ValueNode::Null);
    let node = if value.is_unit() {
        ValueNode::Null
    } else if let Ok(b) = value.as_bool() {
        ValueNode::Boolean(b)
    } else if let Ok(i) = value.as_int() {
        ValueNode::Integer(i)
    } else if let Ok(f) = value.as_float() {
        ValueNode::Float(f)
    } else if let Ok(s) = value.as_immutable_string_ref() {
        ValueNode::Text(s.to_string())
    } else if value.is_char() {
        ValueNode::Text(value.to_string())
    } else if value.is_array() {
        if depth >= MAX_DEPTH {
            return Err(Unsendable::new(Problem::TooDeep));
        }
        let array = value.read_lock::<rhai::Array>().expect("checked is_array");
        let mut children = Vec::with_capacity(array.len());
        for (i, item) in array.iter().enumerate() {
            children.push(push_rhai(item, nodes, depth + 1).map_err(|mut bad| {
                bad.path.push(format!("[{i}]"));
                bad
            })?);
        }
        ValueNode::List(children)
    } else if value.is_map() {
        let map = value.read_lock::<rhai::Map>().expect("checked is_map");
        push_rhai_map(&map, nodes, depth)?
    } else {
        return Err(Unsendable::new(Problem::Type(value.type_name())));
    };
    nodes[index as usize] = node;
    Ok(index)
}

fn push_rhai_map(
    map: &rhai::Map,
    nodes: &mut Vec<ValueNode>,
    depth: usize,
) -> Result<ValueNode, Unsendable> {
    if depth >= MAX_DEPTH {
        return Err(Unsendable::new(Problem::TooDeep));
    }
    let mut entries = Vec::with_capacity(map.len());
    for (key, item) in map.iter() {
        let child = push_rhai(item, nodes, depth + 1).map_err(|mut bad| {
            bad.path.push(key.to_string());
            bad
        })?;
        entries.push((key.to_string(), child));
    }
    Ok(ValueNode::Map(entries))
}

/// Flattens a JSON value (key order preserved).
pub fn json_to_tree(root: &serde_json::Value) -> Vec<ValueNode> {
    let mut nodes = Vec::new();
    push_json(root, &mut nodes);
    nodes
}

fn push_json(value: &serde_json::Value, nodes: &mut Vec<ValueNode>) -> u32 {
    use serde_json::Value;
    let index = nodes.len() as u32;
    nodes.push(ValueNode::Null);
    let node = match value {
        Value::Null => ValueNode::Null,
        Value::Bool(b) => ValueNode::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ValueNode::Integer(i),
            None => ValueNode::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ValueNode::Text(s.clone()),
        Value::Array(items) => ValueNode::List(items.iter().map(|v| push_json(v, nodes)).collect()),
        Value::Object(map) => ValueNode::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), push_json(v, nodes)))
                .collect(),
        ),
    };
    nodes[index as usize] = node;
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_flattens_parents_first() {
        let tree = json_to_tree(&serde_json::json!({"a": [1, {"b": true}]}));
        assert!(matches!(&tree[0], ValueNode::Map(e) if e.len() == 1 && e[0].1 == 1));
        assert!(matches!(&tree[1], ValueNode::List(c) if c == &vec![2, 3]));
        assert!(matches!(tree[2], ValueNode::Integer(1)));
        assert!(matches!(&tree[3], ValueNode::Map(e) if e[0].0 == "b"));
        assert!(matches!(tree[4], ValueNode::Boolean(true)));
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
