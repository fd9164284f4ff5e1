//! The cases of the encoding differential: parameter trees as a script
//! builds them, their forms for each side (a Rhai value for the plugin,
//! JSON text for stripe-python), and a seeded generator of awkward ones.

use std::fmt::Write as _;

use rhai::Dynamic;

/// A parameter tree as a test case: what a script can put in a builder. Map
/// keys are unique within a map.
#[derive(Debug, Clone)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

impl Param {
    pub fn map(entries: &[(&str, Param)]) -> Param {
        Param::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    pub fn text(s: &str) -> Param {
        Param::Text(s.to_string())
    }

    /// The value as a Rhai script holds it.
    pub fn to_rhai(&self) -> Dynamic {
        match self {
            Param::Null => Dynamic::UNIT,
            Param::Bool(b) => Dynamic::from_bool(*b),
            Param::Int(i) => Dynamic::from_int(*i),
            Param::Float(f) => Dynamic::from_float(*f),
            Param::Text(s) => Dynamic::from(s.clone()),
            Param::List(items) => Dynamic::from_array(items.iter().map(Param::to_rhai).collect()),
            Param::Map(_) => Dynamic::from_map(self.to_rhai_map()),
        }
    }

    /// A map case as the `rhai::Map` a builder keeps (`params` or `extra`).
    pub fn to_rhai_map(&self) -> rhai::Map {
        let Param::Map(entries) = self else {
            panic!("a builder's parameters are a map, not {self:?}");
        };
        entries
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.to_rhai()))
            .collect()
    }

    /// The same tree with every map's keys in the order a Rhai map iterates
    /// them (sorted: `rhai::Map` is a `BTreeMap`).
    pub fn in_rhai_order(&self) -> Param {
        match self {
            Param::List(items) => Param::List(items.iter().map(Param::in_rhai_order).collect()),
            Param::Map(entries) => {
                let mut entries: Vec<(String, Param)> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.in_rhai_order()))
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Param::Map(entries)
            }
            other => other.clone(),
        }
    }

    /// The value as JSON, when JSON can carry it (not `nan` or `inf`).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            Param::Null => Value::Null,
            Param::Bool(b) => Value::Bool(*b),
            Param::Int(i) => Value::from(*i),
            Param::Float(f) => Value::Number(serde_json::Number::from_f64(*f)?),
            Param::Text(s) => Value::String(s.clone()),
            Param::List(items) => {
                Value::Array(items.iter().map(Param::to_json).collect::<Option<_>>()?)
            }
            Param::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.to_json()?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Writes the value as JSON text for Python's `json.loads`, which reads
    /// `NaN`, `Infinity` and `-Infinity` as floats. Floats are written in
    /// Rust's shortest round-trip form (always with a `.` or an exponent, so
    /// Python reads a float), which Python parses back to the same double.
    pub fn write_python_json(&self, out: &mut String) {
        match self {
            Param::Null => out.push_str("null"),
            Param::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Param::Int(i) => write!(out, "{i}").unwrap(),
            Param::Float(f) if f.is_nan() => out.push_str("NaN"),
            Param::Float(f) if f.is_infinite() => {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Param::Float(f) => write!(out, "{f:?}").unwrap(),
            Param::Text(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Param::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_python_json(out);
                }
                out.push(']');
            }
            Param::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    v.write_python_json(out);
                }
                out.push('}');
            }
        }
    }

    pub fn python_json(&self) -> String {
        let mut out = String::new();
        self.write_python_json(&mut out);
        out
    }

    /// Two maps as one dict: `first`'s entries, then `second`'s (the order
    /// the plugin encodes `params` and `extra` in).
    pub fn then(&self, second: &Param) -> Param {
        match (self, second) {
            (Param::Map(a), Param::Map(b)) => Param::Map(a.iter().chain(b).cloned().collect()),
            _ => panic!("only maps can be joined"),
        }
    }
}

/// xorshift64*: a fixed, dependency-free sequence so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FRAGMENTS: &[&str] = &[
    "a",
    "amount",
    "meta data",
    "x&y",
    "k=v",
    "p+q",
    "a/b",
    "[",
    "]",
    "[x]",
    "%",
    "%5B",
    "#tag",
    " ",
    "  lead",
    "trail ",
    "é",
    "日本",
    "💳",
    "Ωmega",
    "~_.-",
    "!*'()",
    ";:@$,",
    "\"q\"",
    "\\",
    "line\nbreak",
    "tab\t",
    "1e+16",
    "",
];

/// Floats whose text form is easy to get wrong: Python's `repr` switches to
/// exponent form below `1e-4` and from `1e16`, always writes a fractional
/// part (`3.0`), pads the exponent to two digits (`1e-07`) and rounds exact
/// ties to even.
pub const AWKWARD_FLOATS: &[f64] = &[
    0.1,
    0.2,
    0.1 + 0.2,
    1.0 / 3.0,
    2.0 / 3.0,
    4.35,
    0.07,
    1e16,
    1e15,
    9_999_999_999_999_998.0,
    1.5e16,
    1e-7,
    2.5e-5,
    1e-4,
    1e-5,
    0.000_123,
    123_456_789.125,
    -0.0,
    0.0,
    3.0,
    -3.0,
    100.0,
    1e22,
    1e23,
    1e100,
    -1e300,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    5e-324,
    2.225_073_858_507_201e-308,
    9_007_199_254_740_993.0,
    9_007_199_254_740_991.0,
    // Exactly 117485088342979.625: Python rounds the tie to ...62.
    939_880_706_743_837.0 / 8.0,
    -939_880_706_743_837.0 / 8.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

fn float(rng: &mut Rng) -> f64 {
    match rng.below(4) {
        0 | 1 => *rng.pick(AWKWARD_FLOATS),
        // Any double at all: subnormals, huge exponents, NaN payloads.
        2 => f64::from_bits(rng.next()),
        // Decimal-looking amounts, and integers as floats.
        _ => {
            (rng.below(2_000_000_000) as i64 - 1_000_000_000) as f64
                / 10f64.powi(rng.below(9) as i32)
        }
    }
}

fn int(rng: &mut Rng) -> i64 {
    match rng.below(8) {
        0 => *rng.pick(&[i64::MIN, i64::MAX, 0, -1, 1 << 53, (1 << 53) + 1]),
        _ => rng.below(1_000_000) as i64 - 500,
    }
}

pub fn text(rng: &mut Rng) -> String {
    let parts = 1 + rng.below(3);
    (0..parts).map(|_| *rng.pick(FRAGMENTS)).collect()
}

pub fn key(rng: &mut Rng) -> String {
    let k = text(rng);
    if k.is_empty() { "k".into() } else { k }
}

fn scalar(rng: &mut Rng) -> Param {
    match rng.below(8) {
        0 => Param::Int(int(rng)),
        1 => Param::Bool(rng.below(2) == 0),
        2 => Param::text(""),
        3 => Param::Null,
        4 | 5 => Param::Float(float(rng)),
        _ => Param::Text(text(rng)),
    }
}

/// Items of a list. `plain` lists are the ones stripe-python encodes item by
/// item (a list in a map; a list in a list in a list): no booleans or nulls
/// there. The items of a list directly inside a plain list are encoded like
/// map values, so anything goes there.
fn list(rng: &mut Rng, depth: u32, plain: bool) -> Param {
    let items = (0..rng.below(4))
        .map(|_| match rng.below(6) {
            0 | 1 if depth < 3 => map(rng, depth + 1),
            2 if depth < 3 => list(rng, depth + 1, !plain),
            _ if plain => match rng.below(3) {
                0 => Param::Int(int(rng)),
                1 => Param::Float(float(rng)),
                _ => Param::Text(text(rng)),
            },
            _ => scalar(rng),
        })
        .collect();
    Param::List(items)
}

fn value(rng: &mut Rng, depth: u32) -> Param {
    if depth >= 3 {
        return scalar(rng);
    }
    match rng.below(7) {
        0 | 1 => map(rng, depth + 1),
        2 => list(rng, depth + 1, true),
        _ => scalar(rng),
    }
}

fn map(rng: &mut Rng, depth: u32) -> Param {
    let mut entries: Vec<(String, Param)> = Vec::new();
    for _ in 0..rng.below(4) {
        let k = key(rng);
        if !entries.iter().any(|(existing, _)| *existing == k) {
            entries.push((k, value(rng, depth)));
        }
    }
    Param::Map(entries)
}

/// A random escape-hatch tree: one to five top-level keys.
pub fn random_tree(rng: &mut Rng) -> Param {
    let mut entries: Vec<(String, Param)> = Vec::new();
    for _ in 0..1 + rng.below(5) {
        let k = key(rng);
        if !entries.iter().any(|(existing, _)| *existing == k) {
            entries.push((k, value(rng, 0)));
        }
    }
    Param::Map(entries)
}
