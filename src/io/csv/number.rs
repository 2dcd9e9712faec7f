//! Decimal numbers as CSV writers print them, parsed without a branch per digit; anything
//! unusual is left to `fast-float2` by the caller.

use super::is_na;

const POW10_U64: [u64; 9] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// Consume up to 8 digits at `b[*i..]` at once (SWAR), without a branch per digit: the digit
/// count of shortest-representation output varies row to row and defeats branch prediction.
/// A byte is a digit iff t = byte ^ 0x30 < 10; carries only start at non-digits, so the first
/// non-digit is found correctly. The scalar loop after it finishes runs longer than 8 digits.
#[inline(always)]
fn swar_digits(b: &[u8], i: &mut usize, m: &mut u64) {
    if let Some(w) = b.get(*i..*i + 8) {
        let t = u64::from_le_bytes(w.try_into().unwrap()) ^ 0x3030_3030_3030_3030;
        let non = (t | t.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        let n = (non.trailing_zeros() / 8) as usize;
        if n > 0 {
            let v = (t & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - n));
            let v = v.wrapping_mul(2561) >> 8;
            let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6553601) >> 16;
            let v = (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42949672960001) >> 32;
            *m = m.wrapping_mul(POW10_U64[n]).wrapping_add(v);
            *i += n;
        }
    }
}

/// Consume the digits at `b[*i..]` one at a time into the mantissa `m`.
#[inline(always)]
fn scalar_digits(b: &[u8], i: &mut usize, m: &mut u64) {
    while let Some(c) = b.get(*i).map(|c| c.wrapping_sub(b'0')).filter(|c| *c <= 9) {
        *m = m.wrapping_mul(10).wrapping_add(c as u64);
        *i += 1;
    }
}

/// Parse `[+-]digits[.digits]` at the start of `b` when the result is exact by construction:
/// at most 2^53 as an integer mantissa and at most 22 fraction digits, so `m / 10^f` is one
/// correctly rounded IEEE division (Clinger's fast path). Anything else (exponents, long
/// mantissas, nan, inf, spaces) returns `None` and goes to the general parser.
#[inline(always)]
pub(super) fn parse_plain(b: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut m: u64 = 0;
    let start = i;
    // Integer parts are short (1-2 digits here): a plain loop measured faster than SWAR.
    scalar_digits(b, &mut i, &mut m);
    let mut digits = i - start;
    let mut frac = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        swar_digits(b, &mut i, &mut m);
        scalar_digits(b, &mut i, &mut m);
        frac = i - fs;
        digits += frac;
    }
    if digits == 0 || digits > 19 || frac > 22 || m > (1u64 << 53) {
        return None;
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some((if neg { -v } else { v }, i))
}

pub(super) fn parse_quoted(field: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(field).ok()?.trim();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?.replace("\"\"", "\"");
    let t = inner.trim();
    if t.is_empty() || is_na(t.as_bytes()) {
        return Some(f64::NAN);
    }
    fast_float2::parse::<f64, _>(t).ok()
}
