//! Python's `repr(float)`, exactly, without allocating.
//!
//! Python prints the shortest digit string that reads back as the same
//! double (David Gay's `dtoa`, mode 0). Rust's `{:e}` finds a string of the
//! same length, but when the double lies exactly halfway between two such
//! strings Rust rounds the last digit up while Python rounds it to even:
//! `-117485088342979.625` is `…979.63` in Rust and `…979.62` in Python. We
//! detect that case with exact integer arithmetic and take the even
//! neighbour (after checking it still reads back as the same double).
//!
//! Layout, as Python's `float_repr_style == 'short'`: with the decimal
//! exponent `e` of the first digit, positional when `-4 <= e < 16` (always
//! with a fractional part: `2.0`), otherwise `d.ddde±XX` with at least two
//! exponent digits (`1e+16`, `1e-05`). Specials: `nan`, `inf`, `-inf`, `-0.0`.

use std::fmt::Write as _;

/// Appends `f` formatted like Python's `repr(f)` (which is also `str(f)`).
pub fn write_py_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    let v = f.abs();
    if v.is_infinite() {
        out.push_str("inf");
        return;
    }
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    let Some((mut digits, mut exp)) = shortest(v) else {
        // Unreachable for finite doubles; keep Rust's own rendering.
        let _ = write!(out, "{v:?}");
        return;
    };
    if let Some((d, e)) = half_even(v, digits, exp) {
        digits = d;
        exp = e;
    }
    render(out, digits, exp);
}

/// A small stack buffer implementing `fmt::Write`.
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Rust's shortest round-trip digits of a positive finite `v`, as the digit
/// string read as an integer (at most 17 digits, no trailing zero) and the
/// decimal exponent of its first digit.
fn shortest(v: f64) -> Option<(u64, i32)> {
    let mut sb = StackBuf::new();
    write!(sb, "{v:e}").ok()?;
    let (mantissa, exp) = sb.as_str().split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let mut digits: u64 = 0;
    for b in mantissa.bytes().filter(|b| *b != b'.') {
        digits = digits
            .checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))?;
    }
    Some((digits, exp))
}

fn num_digits(mut d: u64) -> i32 {
    let mut n = 1;
    while d >= 10 {
        d /= 10;
        n += 1;
    }
    n
}

/// When `v` lies exactly halfway between `digits` and a neighbour of the same
/// length, and `digits` is odd, returns the (even) neighbour if it also reads
/// back as `v`.
fn half_even(v: f64, digits: u64, exp: i32) -> Option<(u64, i32)> {
    if digits.is_multiple_of(2) {
        return None;
    }
    // The value of the digit string is digits * 10^scale.
    let scale = exp - (num_digits(digits) - 1);
    for delta in [-1i64, 1] {
        let twice = (u128::from(digits) * 2).checked_add_signed(i128::from(delta))?;
        if !is_half(v, twice, scale) {
            continue;
        }
        let mut alt = digits.checked_add_signed(delta)?;
        if alt == 0 {
            return None;
        }
        let mut alt_scale = scale;
        while alt.is_multiple_of(10) {
            alt /= 10;
            alt_scale += 1;
        }
        let mut sb = StackBuf::new();
        write!(sb, "{alt}e{alt_scale}").ok()?;
        if sb.as_str().parse::<f64>().ok()? == v {
            return Some((alt, alt_scale + num_digits(alt) - 1));
        }
        return None;
    }
    None
}

/// Whether the positive finite `v` equals exactly `twice / 2 * 10^scale`,
/// with `twice` odd.
fn is_half(v: f64, twice: u128, scale: i32) -> bool {
    let bits = v.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    if m == 0 {
        return false;
    }
    let t = m.trailing_zeros();
    let m_odd = u128::from(m >> t);
    let e2 = e + t as i32;
    // v = m_odd * 2^e2, and twice/2 * 10^scale = twice * 5^scale * 2^(scale-1)
    // with both odd parts odd: the powers of two must match exactly.
    if e2 != scale - 1 {
        return false;
    }
    let pow5 = |k: u32| 5u128.checked_pow(k);
    if scale >= 0 {
        pow5(scale as u32)
            .and_then(|p| twice.checked_mul(p))
            .is_some_and(|x| x == m_odd)
    } else {
        pow5(scale.unsigned_abs())
            .and_then(|p| m_odd.checked_mul(p))
            .is_some_and(|x| x == twice)
    }
}

/// Writes `digits` (no trailing zero) with the decimal exponent `exp` of its
/// first digit, in Python's layout.
fn render(out: &mut String, digits: u64, exp: i32) {
    let mut sb = StackBuf::new();
    let _ = write!(sb, "{digits}");
    let all = sb.as_str();
    let (lead, frac) = all.split_at(1);
    if !(-4..16).contains(&exp) {
        out.push_str(lead);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.unsigned_abs());
        return;
    }
    // The decimal point goes after `point` digits.
    let point = exp + 1;
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(all);
    } else {
        let point = point as usize;
        if point >= all.len() {
            out.push_str(all);
            for _ in 0..point - all.len() {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&all[..point]);
            out.push('.');
            out.push_str(&all[point..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(f: f64) -> String {
        let mut out = String::new();
        write_py_float(&mut out, f);
        out
    }

    #[test]
    fn ordinary_values() {
        assert_eq!(py(1.5), "1.5");
        assert_eq!(py(2.0), "2.0");
        assert_eq!(py(0.0), "0.0");
        assert_eq!(py(-0.0), "-0.0");
        assert_eq!(py(-2.5), "-2.5");
        assert_eq!(py(0.1), "0.1");
        assert_eq!(py(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(py(100.0), "100.0");
        assert_eq!(py(123456.789), "123456.789");
        assert_eq!(py(1e15), "1000000000000000.0");
        assert_eq!(py(9007199254740993.0), "9007199254740992.0");
    }

    #[test]
    fn exponent_layout() {
        assert_eq!(py(1e16), "1e+16");
        assert_eq!(py(1.5e16), "1.5e+16");
        assert_eq!(py(0.0001), "0.0001");
        assert_eq!(py(0.00012), "0.00012");
        assert_eq!(py(0.00001), "1e-05");
        assert_eq!(py(1.25e-7), "1.25e-07");
        assert_eq!(py(1e300), "1e+300");
        assert_eq!(py(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(py(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(py(5e-324), "5e-324");
    }

    #[test]
    fn specials() {
        assert_eq!(py(f64::NAN), "nan");
        assert_eq!(py(f64::INFINITY), "inf");
        assert_eq!(py(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn exact_ties_round_to_even() {
        // Exactly 117485088342979.625 (= 939880706743837 / 8): Python prints
        // ...62, Rust's `{:e}` gives ...63.
        let tie = 939_880_706_743_837.0 / 8.0;
        assert_eq!(py(tie), "117485088342979.62");
        assert_eq!(py(-tie), "-117485088342979.62");
        // 2^-1074 * odd numbers and large odd integers have no ties.
        assert_eq!(py(9_007_199_254_740_991.0), "9007199254740991.0");
    }
}
