//! Parsing blocks of complete lines into rows: a fast path for plain numbers, one general path
//! that reports every error, and the split of a large block over threads.

use super::number::{parse_plain, parse_quoted};
use super::{is_na, is_skipped, trim_eol, NanPolicy};

/// Column plan for parsing: for each field of a line, where its value goes in the output row.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    /// Fields per line.
    pub ncols: usize,
    /// `slot[field] = Some(position in output row)` for selected fields.
    pub slot: Vec<Option<usize>>,
    /// Output row width.
    pub width: usize,
    /// Column names for messages.
    pub names: Vec<String>,
    /// Field holding class labels (kept as text, never empty), if any.
    pub label: Option<usize>,
    /// `text[field]`: the field is also kept as text (the label, and `execute --keep` columns).
    pub text: Vec<bool>,
}

impl FieldPlan {
    /// A plan with no text fields but the label.
    pub fn new(ncols: usize, slot: Vec<Option<usize>>, width: usize, names: Vec<String>, label: Option<usize>) -> Self {
        let mut text = vec![false; ncols];
        if let Some(j) = label {
            text[j] = true;
        }
        FieldPlan { ncols, slot, width, names, label, text }
    }
}

/// Parsed rows: numeric values row-major (`FieldPlan::width` per row) and the text fields
/// (`FieldPlan::text`), in field order, row by row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    /// Numeric values, row-major.
    pub vals: Vec<f64>,
    /// Text fields, row by row (empty without text fields).
    pub labels: Vec<String>,
}

impl Rows {
    pub(super) fn clear(&mut self) {
        self.vals.clear();
        self.labels.clear();
    }
}

/// A label field's text: trimmed, unquoted.
fn label_text(field: &[u8]) -> String {
    let t = field.trim_ascii();
    let s = String::from_utf8_lossy(t);
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.into_owned(),
    }
}

/// A parse failure at a byte offset of the file.
#[derive(Debug)]
pub struct ParseError {
    /// Byte offset of the bad line's start.
    pub offset: u64,
    /// What is wrong.
    pub msg: String,
}

/// Fast path for one whole line of plain numbers: parses from `b[0]` up to and including the
/// line end, writing selected values into `row`; returns the bytes consumed. Returns `None`
/// for anything unusual (comments, blanks, quotes, spaces, exponents, NaN, wrong field count),
/// which then takes the general path, so errors are always reported by one code path.
#[inline(always)]
fn parse_line_fast(b: &[u8], delim: u8, plan: &FieldPlan, row: &mut [f64], labels: &mut Vec<String>) -> Option<usize> {
    let mut p = 0;
    let last = plan.ncols - 1;
    for (col, slot) in plan.slot.iter().enumerate() {
        if plan.text[col] {
            let rest = &b[p..];
            let n = memchr::memchr2(delim, b'\n', rest).unwrap_or(rest.len());
            let field = trim_eol(&rest[..n]);
            if field.is_empty() || field[0] == b'"' || field.iter().any(|c| c.is_ascii_whitespace()) {
                return None;
            }
            labels.push(String::from_utf8_lossy(field).into_owned());
            if let Some(s) = *slot {
                // A kept column that is also a feature: its number too.
                match parse_plain(field) {
                    Some((v, n)) if n == field.len() => row[s] = v,
                    _ => return None,
                }
            }
            p += field.len();
        } else {
            let (v, n) = parse_plain(&b[p..])?;
            p += n;
            if let Some(s) = *slot {
                row[s] = v;
            }
        }
        let t = b.get(p).copied();
        if col < last {
            if t != Some(delim) {
                return None;
            }
            p += 1;
        } else {
            return match t {
                None => Some(p),
                Some(b'\n') => Some(p + 1),
                Some(b'\r') if b.get(p + 1) == Some(&b'\n') => Some(p + 2),
                _ => None,
            };
        }
    }
    None
}

/// Parse the complete lines in `block` (which starts at file offset `base`), appending the
/// selected values (and labels) row by row to `out`. Returns (rows appended, rows skipped for NaN).
pub fn parse_block(block: &[u8], base: u64, delim: u8, plan: &FieldPlan, nan: NanPolicy, rows_out: &mut Rows) -> std::result::Result<(u64, u64), ParseError> {
    let mut rows = 0u64;
    let mut skipped = 0u64;
    let mut pos = 0usize;
    let width = plan.width;
    let (out, labels) = (&mut rows_out.vals, &mut rows_out.labels);
    while pos < block.len() {
        let row_at = out.len();
        let label_at = labels.len();
        out.resize(row_at + width, 0.0);
        if let Some(n) = parse_line_fast(&block[pos..], delim, plan, &mut out[row_at..], labels) {
            pos += n;
            rows += 1;
            continue;
        }
        out.truncate(row_at);
        labels.truncate(label_at);
        let end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i);
        let line = trim_eol(&block[pos..end]);
        let line_start = pos;
        pos = end + 1;
        if is_skipped(line) {
            continue;
        }
        let fail = |msg: String| ParseError { offset: base + line_start as u64, msg };
        let row_at = out.len();
        let label_at = labels.len();
        out.resize(row_at + width, 0.0);
        let mut bad_value = false;
        let mut p = 0usize;
        for col in 0..plan.ncols {
            if col > 0 {
                if p >= line.len() {
                    return Err(fail(field_count(plan, col, line, delim)));
                }
                // p sits on a delimiter here (checked below).
                p += 1;
            }
            let rest = &line[p..];
            let field_end = if rest.first() == Some(&b'"') {
                // Closing quote, skipping doubled quotes.
                let mut i = 1;
                loop {
                    match memchr::memchr(b'"', &rest[i..]) {
                        Some(j) if rest.get(i + j + 1) == Some(&b'"') => i += j + 2,
                        Some(j) => break memchr::memchr(delim, &rest[i + j..]).map_or(rest.len(), |k| i + j + k),
                        None => return Err(fail(format!("unterminated quote in field {}", col + 1))),
                    }
                }
            } else {
                memchr::memchr(delim, rest).unwrap_or(rest.len())
            };
            let field = &rest[..field_end];
            if plan.text[col] {
                let l = label_text(field);
                if l.is_empty() && plan.label == Some(col) {
                    return Err(fail(format!("empty label in column '{}'", plan.names[col])));
                }
                labels.push(l);
            }
            if let Some(slot) = plan.slot[col] {
                let v = match fast_float2::parse_partial::<f64, _>(field) {
                    Ok((v, n)) if n == field.len() => v,
                    _ => {
                        let t = field.trim_ascii();
                        if t.is_empty() || is_na(t) {
                            f64::NAN
                        } else if t[0] == b'"' {
                            parse_quoted(t).ok_or_else(|| bad_field(field, col, plan, delim, &fail))?
                        } else {
                            fast_float2::parse::<f64, _>(t).map_err(|_| bad_field(field, col, plan, delim, &fail))?
                        }
                    }
                };
                if !v.is_finite() {
                    if nan == NanPolicy::Error {
                        let what = if field.trim_ascii().is_empty() { "an empty field".to_string() } else { crate::io::quote(field) };
                        return Err(fail(format!("{what} in column '{}' is not a finite number (use --nan skip to drop such rows)", plan.names[col])));
                    }
                    bad_value = true;
                }
                out[row_at + slot] = v;
            }
            p += field_end;
            if col + 1 < plan.ncols && p < line.len() && line[p] != delim {
                return Err(fail(format!("malformed field {} (text after closing quote)", col + 1)));
            }
        }
        if p < line.len() {
            let found = plan.ncols + 1 + memchr::memchr_iter(delim, &line[p + 1..]).count();
            return Err(fail(field_count(plan, found, line, delim)));
        }
        if bad_value {
            out.truncate(row_at);
            labels.truncate(label_at);
            skipped += 1;
        } else {
            rows += 1;
        }
    }
    Ok((rows, skipped))
}

fn bad_field(field: &[u8], col: usize, plan: &FieldPlan, delim: u8, fail: &dyn Fn(String) -> ParseError) -> ParseError {
    fail(format!(
        "cannot parse {} as a number (column '{}'; --exclude leaves a text column out, --columns picks the numeric ones){}",
        crate::io::quote(field),
        crate::io::printable(&plan.names[col]),
        delimiter_hint(plan, field, delim)
    ))
}

fn field_count(plan: &FieldPlan, found: usize, line: &[u8], delim: u8) -> String {
    format!("expected {}, found {found}{}", crate::log::plural(plan.ncols as u64, "field"), delimiter_hint(plan, line, delim))
}

/// A file read with the wrong delimiter has one column, and its rows fail to parse. The
/// message alone ("cannot parse '1;2;3'") does not point at `--delimiter`, so name the likely
/// one when the failing text holds it.
fn delimiter_hint(plan: &FieldPlan, text: &[u8], delim: u8) -> String {
    if plan.ncols != 1 {
        return String::new();
    }
    match [b';', b'\t', b'|', b','].into_iter().find(|&d| d != delim && text.contains(&d)) {
        Some(b'\t') => "; if tabs separate the fields, pass --delimiter tab".to_string(),
        Some(d) => format!("; if '{}' separates the fields, pass --delimiter '{}'", d as char, d as char),
        None => String::new(),
    }
}

/// Split `block` into at most `parts` pieces that end at line ends.
fn split_lines(block: &[u8], parts: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 1..parts {
        let target = (block.len() * k / parts).max(start);
        let Some(nl) = memchr::memchr(b'\n', &block[target..]) else { break };
        let end = target + nl + 1;
        out.push(start..end);
        start = end;
    }
    out.push(start..block.len());
    out.retain(|r| !r.is_empty());
    out
}

/// What [`parse_parallel`] appended: rows, and rows skipped (`--nan skip`).
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) rows: u64,
    pub(super) skipped: u64,
}

/// Parse a block, in pieces in parallel when it pays; values are appended to `vals` in file
/// order. The pieces go to the rank's threads when a pool is in place ([`crate::threads`]),
/// four per thread, so that a thread held up (by the thread reading the next block) is not the
/// one the block waits for; without one, to `threads` threads of their own. The pieces are
/// parsed into `scratch` (kept by the caller from block to block, so that their pages are
/// faulted in once) and then copied into place.
#[allow(clippy::too_many_arguments)] // the parser's settings, as parse_block's, and the scratch
pub(super) fn parse_parallel(
    block: &[u8],
    base: u64,
    threads: usize,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    out: &mut Rows,
    scratch: &mut Vec<Rows>,
) -> std::result::Result<Parsed, ParseError> {
    let pool = crate::threads::current();
    if threads.max(pool) <= 1 || block.len() < (256 << 10) {
        let (rows, skipped) = parse_block(block, base, delim, plan, nan, out)?;
        return Ok(Parsed { rows, skipped });
    }
    let pieces = split_lines(block, if pool > 1 { 4 * pool } else { threads });
    scratch.resize_with(scratch.len().max(pieces.len()), Rows::default);
    let parse = |(r, v): (std::ops::Range<usize>, &mut Rows)| {
        v.clear();
        parse_block(&block[r.clone()], base + r.start as u64, delim, plan, nan, v)
    };
    let items: Vec<_> = pieces.into_iter().zip(scratch.iter_mut()).collect();
    let results: Vec<_> = if pool > 1 {
        crate::threads::map_items(items, parse)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .into_iter()
                .map(|item| std::thread::Builder::new().name("csv-parse".into()).spawn_scoped(s, || parse(item)).expect("a parser thread starts"))
                .collect();
            handles.into_iter().map(|h| h.join().expect("parser thread panicked")).collect()
        })
    };
    // The first failing piece has the lowest offset.
    let results = results.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
    let done = &scratch[..results.len()];
    // Every piece's values into their place at once (the copy is as long as the parse's output).
    let start = out.vals.len();
    let total: usize = done.iter().map(|v| v.vals.len()).sum();
    out.vals.reserve(total);
    let mut places = Vec::with_capacity(done.len());
    let mut rest = &mut out.vals.spare_capacity_mut()[..total];
    for v in done {
        let (mine, tail) = rest.split_at_mut(v.vals.len());
        places.push((mine, &v.vals));
        rest = tail;
    }
    // SAFETY: each place is as long as its source, and `from` and `to` do not overlap.
    crate::threads::map_items(places, |(to, from)| unsafe { std::ptr::copy_nonoverlapping(from.as_ptr(), to.as_mut_ptr().cast::<f64>(), from.len()) });
    // SAFETY: the places cover the `total` values after `start`, every one now written.
    unsafe { out.vals.set_len(start + total) };
    let mut parsed = Parsed { rows: 0, skipped: 0 };
    for (v, (rows, skip)) in done.iter().zip(results) {
        out.labels.extend_from_slice(&v.labels);
        parsed.rows += rows;
        parsed.skipped += skip;
    }
    Ok(parsed)
}
