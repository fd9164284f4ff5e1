//! Stripe's form encoding, byte for byte what stripe-python 16.x sends:
//! `urllib.parse.urlencode(list(stripe._encode._api_encode(params)))` with
//! `%5B`/`%5D` turned back into `[`/`]`.
//!
//! - Nested maps become `a[b][c]=v`; lists are always indexed
//!   (`expand[0]=x`, `items[0][price]=p`), at any depth.
//! - Booleans are `true`/`false` everywhere. (stripe-python leaves booleans
//!   inside lists as `True`/`False`; that is a quirk, not Stripe's API.)
//! - `Null` is skipped. Inside a list it is skipped too but keeps its index,
//!   so `[a, null, b]` gives `k[0]=a&k[2]=b` (stripe-python sends `k[1]=None`).
//! - An empty map or list sends nothing.
//! - Integers are decimal. Floats are formatted like Python's `repr(float)`
//!   (`1.5`, `2.0`, `1e-05`, `1e+16`, `nan`, `inf`, `-inf`) and then quoted
//!   like any value (`1e%2B16`), which is what stripe-python sends for every
//!   finite or non-finite value. (Stripe itself rejects exponents, `nan` and
//!   `inf` in decimal parameters; the validator rejects the non-finite ones.)
//! - Keys and values are quoted like Python's `quote_plus` with `[` and `]`
//!   also kept: ASCII letters, digits and `_.-~[]` stay, a space becomes `+`,
//!   every other byte of the UTF-8 form becomes `%XX` (upper-case hex).
//!
//! The root must be a map (as stripe-python's `data.items()` requires); any
//! other root encodes to nothing. The encoder works on any [`Node`] (an owned
//! [`crate::Value`] or a checked WIT tree read in place) and writes into one output
//! `String`, allocating nothing else: nested keys are rebuilt from a chain of
//! stack frames for each pair, and numbers are formatted on the stack (floats
//! by [`crate::pyfloat`]). Recursion depth equals the depth of the tree (at
//! most [`crate::value::MAX_DEPTH`] for trees that came through the WIT
//! boundary).

pub use crate::pyfloat::write_py_float;
use crate::value::{Node, Path, Seg, Shape};

/// Encodes `params` as a form body or query string.
pub fn encode_form<'a, N: Node<'a>>(params: N) -> String {
    let mut out = String::with_capacity(256);
    encode_form_into(&mut out, params);
    out
}

/// Appends the encoding of `params` to `out`. When `out` is not empty, each
/// new pair is preceded by `&`, so encoding `params` and then `extra` into
/// one string joins them without a stray separator on either side.
pub fn encode_form_into<'a, N: Node<'a>>(out: &mut String, params: N) {
    if let Shape::Map(entries) = params.shape() {
        for (key, value) in entries {
            let path = Path {
                parent: None,
                seg: Seg::Key(key),
            };
            encode_value(out, &path, value);
        }
    }
}

/// Appends the encoding of one top-level field that validation matched to
/// the schema field `name` (which is written as it is: schema names need no
/// quoting). Validation calls this as it goes, so that params are walked
/// once, and their keys not scanned again for quoting.
pub(crate) fn encode_field_into<'a, N: Node<'a>>(out: &mut String, name: &'static str, value: N) {
    let path = Path {
        parent: None,
        seg: Seg::Field(name),
    };
    encode_value(out, &path, value);
}

/// Appends one `key=value` pair with a plain (top-level) key and a string
/// value, quoted like every other pair.
pub fn encode_pair_into(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    quote_into(out, key);
    out.push('=');
    quote_into(out, value);
}

/// Quotes `s` like Python's `quote_plus(s, safe="[]")` and appends it.
pub fn quote_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if SAFE[b as usize] {
            continue;
        }
        // `start..i` is a run of safe (ASCII) bytes, so both ends are char
        // boundaries whenever it is not empty.
        if start < i {
            out.push_str(&s[start..i]);
        }
        if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
        start = i + 1;
    }
    if start < bytes.len() {
        out.push_str(&s[start..]);
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bytes `quote_into` keeps as they are.
const SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || c == b'_'
            || c == b'.'
            || c == b'-'
            || c == b'~'
            || c == b'['
            || c == b']';
        b += 1;
    }
    t
};

/// Appends an integer in decimal (`-` when `negative`). Written by hand:
/// `write!` goes through `core::fmt`, which costs far more than the digits
/// in the component (every amount and every list index passes here).
fn write_int(out: &mut String, magnitude: u64, negative: bool) {
    let mut digits = [0u8; 20];
    let mut n = magnitude;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push('-');
    }
    for &d in &digits[at..] {
        out.push(d as char);
    }
}

fn write_key(out: &mut String, path: &Path<'_>) {
    match path.parent {
        None => write_seg(out, path.seg),
        Some(parent) => {
            write_key(out, parent);
            out.push('[');
            write_seg(out, path.seg);
            out.push(']');
        }
    }
}

fn write_seg(out: &mut String, seg: Seg<'_>) {
    match seg {
        Seg::Key(k) => quote_into(out, k),
        Seg::Field(name) => out.push_str(name),
        Seg::Index(i) => write_int(out, i as u64, false),
    }
}

fn start_pair(out: &mut String, path: &Path<'_>) {
    if !out.is_empty() {
        out.push('&');
    }
    write_key(out, path);
    out.push('=');
}

fn encode_value<'a, N: Node<'a>>(out: &mut String, path: &Path<'_>, value: N) {
    match value.shape() {
        Shape::Null => {}
        Shape::Bool(b) => {
            start_pair(out, path);
            out.push_str(if b { "true" } else { "false" });
        }
        Shape::Int(i) => {
            start_pair(out, path);
            write_int(out, i.unsigned_abs(), i < 0);
        }
        Shape::Float(f) => {
            start_pair(out, path);
            let start = out.len();
            write_py_float(out, f);
            // `quote_plus(repr(f))`: the exponent's `+` is the only byte of a
            // float's repr that is not safe.
            if let Some(plus) = out[start..].find('+') {
                out.replace_range(start + plus..start + plus + 1, "%2B");
            }
        }
        Shape::Str(s) => {
            start_pair(out, path);
            quote_into(out, s);
        }
        Shape::List(items) => {
            for (i, item) in items.enumerate() {
                let child = Path {
                    parent: Some(path),
                    seg: Seg::Index(i),
                };
                encode_value(out, &child, item);
            }
        }
        Shape::Map(entries) => {
            for (k, v) in entries {
                let child = Path {
                    parent: Some(path),
                    seg: Seg::Key(k),
                };
                encode_value(out, &child, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }
    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    #[test]
    fn flat_fields() {
        let v = map(vec![
            ("amount", Value::Int(2000)),
            ("currency", s("usd")),
            ("confirm", Value::Bool(true)),
            ("off_session", Value::Bool(false)),
            ("skip", Value::Null),
            ("neg", Value::Int(-5)),
        ]);
        assert_eq!(
            encode_form(&v),
            "amount=2000&currency=usd&confirm=true&off_session=false&neg=-5"
        );
    }

    #[test]
    fn nested_maps() {
        let v = map(vec![
            (
                "metadata",
                map(vec![("order_id", s("6735")), ("a b", s("c d"))]),
            ),
            (
                "shipping",
                map(vec![(
                    "address",
                    map(vec![("line1", s("1 Main St")), ("city", s("SF"))]),
                )]),
            ),
        ]);
        assert_eq!(
            encode_form(&v),
            "metadata[order_id]=6735&metadata[a+b]=c+d\
             &shipping[address][line1]=1+Main+St&shipping[address][city]=SF"
        );
    }

    #[test]
    fn lists_always_indexed() {
        let v = map(vec![
            (
                "expand",
                Value::List(vec![s("customer"), s("latest_charge")]),
            ),
            (
                "items",
                Value::List(vec![
                    map(vec![("price", s("price_1")), ("quantity", Value::Int(2))]),
                    map(vec![
                        ("price", s("price_2")),
                        ("metadata", map(vec![("k", s("v"))])),
                    ]),
                ]),
            ),
        ]);
        assert_eq!(
            encode_form(&v),
            "expand[0]=customer&expand[1]=latest_charge\
             &items[0][price]=price_1&items[0][quantity]=2\
             &items[1][price]=price_2&items[1][metadata][k]=v"
        );
    }

    #[test]
    fn nested_lists_and_booleans_in_lists() {
        let v = map(vec![(
            "a",
            Value::List(vec![
                Value::List(vec![s("x"), Value::Int(1)]),
                Value::Bool(true),
                Value::Null,
                Value::Float(0.5),
            ]),
        )]);
        assert_eq!(encode_form(&v), "a[0][0]=x&a[0][1]=1&a[1]=true&a[3]=0.5");
    }

    #[test]
    fn empty_containers_send_nothing() {
        let v = map(vec![
            ("metadata", map(vec![])),
            ("expand", Value::List(vec![])),
            ("nested", map(vec![("inner", map(vec![]))])),
        ]);
        assert_eq!(encode_form(&v), "");
        assert_eq!(encode_form(&map(vec![])), "");
        assert_eq!(encode_form(&s("not a map")), "");
    }

    #[test]
    fn reserved_characters() {
        let v = map(vec![("description", s("a&b=c+d/e[f]g%h#i?j"))]);
        assert_eq!(
            encode_form(&v),
            "description=a%26b%3Dc%2Bd%2Fe[f]g%25h%23i%3Fj"
        );
        let v = map(vec![("k", s("_.-~*'()!$,;:@\"<>\\^`{|}"))]);
        assert_eq!(
            encode_form(&v),
            "k=_.-~%2A%27%28%29%21%24%2C%3B%3A%40%22%3C%3E%5C%5E%60%7B%7C%7D"
        );
    }

    #[test]
    fn keys_are_quoted_too() {
        let v = map(vec![(
            "metadata",
            map(vec![("a&b", s("1")), ("x=y", s("2")), ("ü [k]", s("3"))]),
        )]);
        assert_eq!(
            encode_form(&v),
            "metadata[a%26b]=1&metadata[x%3Dy]=2&metadata[%C3%BC+[k]]=3"
        );
    }

    #[test]
    fn unicode_and_controls() {
        let v = map(vec![
            ("name", s("Zoë Ñandú")),
            ("emoji", s("💳")),
            ("ctl", s("a\nb\tc\0")),
            ("empty", s("")),
        ]);
        assert_eq!(
            encode_form(&v),
            "name=Zo%C3%AB+%C3%91and%C3%BA&emoji=%F0%9F%92%B3&ctl=a%0Ab%09c%00&empty="
        );
    }

    #[test]
    fn appending_joins_with_one_separator() {
        let mut out = String::new();
        encode_form_into(&mut out, &map(vec![]));
        encode_form_into(&mut out, &map(vec![("a", s("1"))]));
        assert_eq!(out, "a=1");
        encode_form_into(&mut out, &map(vec![]));
        encode_form_into(&mut out, &map(vec![("b", Value::List(vec![s("2")]))]));
        assert_eq!(out, "a=1&b[0]=2");
        encode_pair_into(&mut out, "id", "my coupon");
        assert_eq!(out, "a=1&b[0]=2&id=my+coupon");
    }

    #[test]
    fn integers_at_the_extremes() {
        let v = map(vec![
            ("min", Value::Int(i64::MIN)),
            ("max", Value::Int(i64::MAX)),
            ("zero", Value::Int(0)),
            ("neg", Value::Int(-7)),
            ("ten", Value::Int(10)),
        ]);
        assert_eq!(
            encode_form(&v),
            "min=-9223372036854775808&max=9223372036854775807&zero=0&neg=-7&ten=10"
        );
        let items = Value::List((0..12).map(Value::Int).collect());
        let encoded = encode_form(&map(vec![("l", items)]));
        assert!(encoded.ends_with("&l[10]=10&l[11]=11"), "{encoded}");
    }

    #[test]
    fn float_exponent_sign_is_quoted() {
        let v = map(vec![
            ("big", Value::Float(1e16)),
            ("small", Value::Float(1e-5)),
            ("plain", Value::Float(2.0)),
        ]);
        assert_eq!(encode_form(&v), "big=1e%2B16&small=1e-05&plain=2.0");
    }

    #[test]
    fn payment_intent_example() {
        let v = map(vec![
            ("amount", Value::Int(2000)),
            ("currency", s("usd")),
            ("customer", s("cus_customer123")),
            ("description", s("Order #42 — 2 items")),
            ("metadata", map(vec![("order_id", s("42"))])),
            ("payment_method_types", Value::List(vec![s("card")])),
            ("capture_method", s("manual")),
            (
                "automatic_payment_methods",
                map(vec![("enabled", Value::Bool(false))]),
            ),
        ]);
        assert_eq!(
            encode_form(&v),
            "amount=2000&currency=usd&customer=cus_customer123\
             &description=Order+%2342+%E2%80%94+2+items&metadata[order_id]=42\
             &payment_method_types[0]=card&capture_method=manual\
             &automatic_payment_methods[enabled]=false"
        );
    }
}
