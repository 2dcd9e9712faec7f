//! A fast, streaming CSV reader for numeric data.
//!
//! The file (or one byte range of it, aligned to line starts) is read in large blocks; each
//! block's complete lines are parsed with a hand-written field scanner and `fast-float2`, and
//! only the selected columns are stored. Supported: a header line (auto-detected), any one-byte
//! delimiter, `#` comment lines, blank lines, CRLF, and quoted fields (`"1.5"`, `""` escapes).
//! Quoted fields spanning lines are not (this is a reader for numbers).

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What `probe` learns from the start of a CSV file.
#[derive(Debug, Clone)]
pub struct CsvLayout {
    /// Fields per line.
    pub ncols: usize,
    /// Header names, when the file has a header line.
    pub names: Option<Vec<String>>,
    /// Byte offset where data lines start (after the header, if any).
    pub data_start: u64,
    /// File length in bytes.
    pub len: u64,
}

/// How to treat NaN / ±inf / empty fields in selected columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NanPolicy {
    /// Stop with an error naming rank, file and line.
    #[default]
    Error,
    /// Drop the row (and count it).
    Skip,
}

/// Split one line the slow way (quoted fields, spaces), for the header and the first line.
fn split_line(line: &[u8], delim: u8) -> Vec<Vec<u8>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delim)
        .flexible(true)
        .from_reader(line);
    let mut rec = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec.iter().map(|s| s.to_vec()).collect(),
        _ => vec![line.to_vec()],
    }
}

/// What pandas' `read_csv` reads as missing by default (its `na_values`), besides the empty
/// field: all of them are NaN here, so `--nan error|skip` treats them alike.
const NA_TOKENS: [&[u8]; 18] = [
    b"#N/A", b"#N/A N/A", b"#NA", b"-1.#IND", b"-1.#QNAN", b"-NaN", b"-nan", b"1.#IND", b"1.#QNAN", b"<NA>", b"N/A", b"NA",
    b"NULL", b"NaN", b"None", b"n/a", b"nan", b"null",
];

/// Whether a (trimmed, unquoted) field is one of pandas' missing-value spellings.
pub fn is_na(t: &[u8]) -> bool {
    NA_TOKENS.contains(&t)
}

/// What a file that is not delimited text looks like, from its first bytes: a known binary
/// format by its magic number, or any binary data (NUL bytes).
pub fn sniff_binary(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 9] = [
        (b"PAR1", "a Parquet file"),
        (b"PK\x03\x04", "a ZIP archive (an .npz or .xlsx file?)"),
        (b"\x1f\x8b", "gzip-compressed (decompress it first: gunzip)"),
        (b"BZh", "bzip2-compressed (decompress it first)"),
        (b"\xfd7zXZ\x00", "xz-compressed (decompress it first)"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed (decompress it first)"),
        (b"\x89HDF", "an HDF5 file"),
        (b"\x93NUMPY", "a NumPy .npy file (name it .npy, or pass --format npy)"),
        (b"ARROW1", "an Arrow/Feather file"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(what);
    }
    head.contains(&0).then_some("binary data, not delimited text")
}

fn is_skipped(line: &[u8]) -> bool {
    line.is_empty() || line[0] == b'#' || line.iter().all(|b| b.is_ascii_whitespace())
}

fn trim_eol(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Look at the first non-comment line of `path` to learn the column count and header.
/// `header`: `Some(true/false)` forces, `None` auto-detects (a header has a non-numeric field).
/// Returns `None` for a file without any data or header line.
pub fn probe(path: &Path, delim: u8, header: Option<bool>, rank: usize) -> Result<Option<CsvLayout>> {
    let pstr = path.display().to_string();
    let mut f = File::open(path).map_err(|e| Error::data(rank, &pstr, None, format!("cannot open: {e}")))?;
    let len = f.metadata().map_err(|e| Error::data(rank, &pstr, None, e.to_string()))?.len();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut start = 0usize; // start of the current line in buf
    let mut sniffed = false;
    loop {
        if !sniffed && (buf.len() >= 4096 || buf.len() as u64 == len) {
            sniffed = true;
            if let Some(what) = sniff_binary(&buf[..buf.len().min(4096)]) {
                return Err(Error::data(rank, &pstr, None, format!("looks like {what}; flowmpi reads CSV text and .npy files")));
            }
            // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first field.
            if buf.starts_with(b"\xef\xbb\xbf") {
                start = 3;
            }
        }
        // Find the next complete line (or the last line at EOF).
        let nl = memchr::memchr(b'\n', &buf[start..]).map(|i| start + i);
        let eof_line = nl.is_none() && buf.len() as u64 == len;
        if nl.is_none() && !eof_line {
            let n = f.read(&mut chunk).map_err(|e| Error::data(rank, &pstr, None, e.to_string()))?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            continue;
        }
        let end = nl.unwrap_or(buf.len());
        let line = trim_eol(&buf[start..end]);
        let next = (end + 1).min(buf.len());
        if is_skipped(line) {
            if eof_line {
                return Ok(None);
            }
            start = next;
            continue;
        }
        let fields = split_line(line, delim);
        let has_header = header.unwrap_or_else(|| {
            fields.iter().any(|s| {
                let t = s.trim_ascii();
                !t.is_empty() && !is_na(t) && fast_float2::parse::<f64, _>(t).is_err()
            })
        });
        let ncols = fields.len();
        return Ok(Some(if has_header {
            let mut names = Vec::with_capacity(ncols);
            for (j, f) in fields.iter().enumerate() {
                let name = std::str::from_utf8(f.trim_ascii()).map_err(|e| {
                    let at = e.valid_up_to();
                    Error::data(rank, &pstr, line_of(path, start as u64), format!(
                        "the header is not UTF-8 text: column {} holds the byte 0x{:02x} after {} (save the file as UTF-8)",
                        j + 1, f.trim_ascii()[at], crate::io::quote(&f.trim_ascii()[..at])))
                })?;
                names.push(name.to_string());
            }
            CsvLayout { ncols, names: Some(names), data_start: next as u64, len }
        } else {
            CsvLayout { ncols, names: None, data_start: start as u64, len }
        }));
    }
}

/// The first line start at or after `pos` (a line belongs to the part that holds its first byte).
pub fn align_to_line(path: &Path, pos: u64, data_start: u64, len: u64) -> std::io::Result<u64> {
    if pos <= data_start {
        return Ok(data_start);
    }
    if pos >= len {
        return Ok(len);
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(pos - 1))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut at = pos - 1;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(len);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(at + i as u64 + 1);
        }
        at += n as u64;
    }
}

/// 1-based line number of byte `offset` in `path` (only computed on the error path).
pub fn line_of(path: &Path, offset: u64) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    let mut left = offset;
    let mut lines = 1u64;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = f.read(&mut buf[..(left.min(1 << 20)) as usize]).ok()?;
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        left -= n as u64;
    }
    Some(lines)
}

/// 1-based line number of the `row`-th data row (0-based) at or after byte `offset`, skipping
/// comment and blank lines as the parser does (only computed on the error path).
pub fn line_of_row(path: &Path, offset: u64, row: u64) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut r = std::io::BufReader::new(f);
    let (mut line, mut seen) = (Vec::new(), 0u64);
    let mut lines = 0u64;
    loop {
        line.clear();
        if std::io::BufRead::read_until(&mut r, b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let text = trim_eol(line.strip_suffix(b"\n").unwrap_or(&line));
        if !is_skipped(text) {
            if seen == row {
                return line_of(path, offset).map(|l| l + lines);
            }
            seen += 1;
        }
        lines += 1;
    }
}

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
    fn clear(&mut self) {
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

const POW10_U64: [u64; 9] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

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
fn parse_plain(b: &[u8]) -> Option<(f64, usize)> {
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

fn parse_quoted(field: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(field).ok()?.trim();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?.replace("\"\"", "\"");
    let t = inner.trim();
    if t.is_empty() || is_na(t.as_bytes()) {
        return Some(f64::NAN);
    }
    fast_float2::parse::<f64, _>(t).ok()
}

/// Parse the complete lines in `block` (which starts at file offset `base`), appending the
/// selected values (and labels) row by row to `out`. Returns (rows appended, rows skipped for NaN).
pub fn parse_block(
    block: &[u8],
    base: u64,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    rows_out: &mut Rows,
) -> std::result::Result<(u64, u64), ParseError> {
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
                    return Err(fail(format!("expected {} fields, found {}", plan.ncols, col)));
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
                            parse_quoted(t).ok_or_else(|| bad_field(field, col, plan, &fail))?
                        } else {
                            fast_float2::parse::<f64, _>(t).map_err(|_| bad_field(field, col, plan, &fail))?
                        }
                    }
                };
                if !v.is_finite() {
                    if nan == NanPolicy::Error {
                        let what = if field.trim_ascii().is_empty() { "an empty field".to_string() } else { crate::io::quote(field) };
                        return Err(fail(format!(
                            "{what} in column '{}' is not a finite number (use --nan skip to drop such rows)",
                            plan.names[col]
                        )));
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
            return Err(fail(format!("expected {} fields, found {}", plan.ncols, found)));
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

fn bad_field(field: &[u8], col: usize, plan: &FieldPlan, fail: &dyn Fn(String) -> ParseError) -> ParseError {
    fail(format!(
        "cannot parse {} as a number (column '{}'; --columns picks the numeric feature columns)",
        crate::io::quote(field),
        plan.names[col]
    ))
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

/// What [`parse_parallel`] appended: for each piece, (end index in the values, end index in
/// the labels, rows, file offset of the piece's first byte).
#[derive(Debug)]
struct Parsed {
    pieces: Vec<(usize, usize, u64, u64)>,
    skipped: u64,
}

/// Parse a block, in `threads` pieces in parallel when it pays; values are appended to `vals`
/// in file order.
fn parse_parallel(
    block: &[u8],
    base: u64,
    threads: usize,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    out: &mut Rows,
) -> std::result::Result<Parsed, ParseError> {
    if threads <= 1 || block.len() < (256 << 10) {
        let (rows, skipped) = parse_block(block, base, delim, plan, nan, out)?;
        return Ok(Parsed { pieces: vec![(out.vals.len(), out.labels.len(), rows, base)], skipped });
    }
    let pieces = split_lines(block, threads);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|r| {
                s.spawn(move || {
                    let mut v = Rows { vals: Vec::with_capacity(r.len() / 4), labels: Vec::new() };
                    parse_block(&block[r.clone()], base + r.start as u64, delim, plan, nan, &mut v).map(|rs| (v, rs))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("parser thread panicked")).collect()
    });
    let mut parsed = Parsed { pieces: Vec::with_capacity(results.len()), skipped: 0 };
    for (r, piece) in results.into_iter().zip(&pieces) {
        let (v, (rows, skip)) = r?; // the first failing piece has the lowest offset
        out.vals.extend_from_slice(&v.vals);
        out.labels.extend(v.labels);
        parsed.skipped += skip;
        parsed.pieces.push((out.vals.len(), out.labels.len(), rows, base + piece.start as u64));
    }
    Ok(parsed)
}

/// Stream the lines in bytes `[begin, end)` of `path` (line-aligned) in blocks of about
/// `block_bytes`, parsed by `threads` threads, calling `sink(values, labels, rows, offset)` with
/// each parsed piece (`offset`: the file offset its lines start at), in file order.
pub fn read_range(
    path: &Path,
    begin: u64,
    end: u64,
    block_bytes: usize,
    threads: usize,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    rank: usize,
    sink: &mut dyn FnMut(&[f64], &[String], u64, u64) -> Result<()>,
) -> Result<u64> {
    let pstr = || path.display().to_string();
    let io_err = |e: std::io::Error| Error::data(rank, pstr(), None, format!("read failed: {e}"));
    let mut f = File::open(path).map_err(|e| Error::data(rank, pstr(), None, format!("cannot open: {e}")))?;
    f.seek(SeekFrom::Start(begin)).map_err(io_err)?;
    let mut buf = vec![0u8; block_bytes.max(1 << 10)];
    let mut have = 0usize; // bytes in buf carried over + read
    let mut base = begin; // file offset of buf[0]
    let mut left = end - begin;
    let mut vals = Rows::default();
    let mut skipped = 0;
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0); // a single line longer than the block
        }
        let want = (buf.len() - have).min(left as usize);
        let n = if want > 0 { f.read(&mut buf[have..have + want]).map_err(io_err)? } else { 0 };
        left -= n as u64;
        have += n;
        let eof = n == 0 || left == 0;
        let upto = if eof {
            have
        } else {
            match memchr::memrchr(b'\n', &buf[..have]) {
                Some(i) => i + 1,
                None => continue,
            }
        };
        vals.clear();
        let parsed = parse_parallel(&buf[..upto], base, threads, delim, plan, nan, &mut vals)
            .map_err(|e| Error::data(rank, pstr(), line_of(path, e.offset), e.msg))?;
        skipped += parsed.skipped;
        let (mut from, mut lfrom) = (0, 0);
        for &(to, lto, rows, offset) in &parsed.pieces {
            if rows > 0 {
                sink(&vals.vals[from..to], &vals.labels[lfrom..lto], rows, offset)?;
            }
            (from, lfrom) = (to, lto);
        }
        buf.copy_within(upto..have, 0);
        have -= upto;
        base += upto as u64;
        if eof {
            return Ok(skipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_parser_agrees_with_fast_float_bit_for_bit() {
        let mut state = 12345u64;
        let mut samples: Vec<String> = ["0", "-0", "+1.5", "1.", "123456789012345678", "9007199254740993", "0.1", "-2.718281828459045",
            "12345678", "123456789", "0.12345678", "1234567812345678", "00000000000000000001.5", "3.0000000000000000001"]
            .iter().map(|s| s.to_string()).collect();
        for _ in 0..20000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let digits = (state >> 60) as usize + 1;
            let dec = ((state >> 40) % 12) as i32;
            let m = (state >> 3) % 10u64.pow(digits.min(18) as u32);
            samples.push(format!("{}{}", if state & 1 == 1 { "-" } else { "" }, m as f64 / 10f64.powi(dec)));
            samples.push(format!("{:.*}", dec as usize, (state >> 11) as f64 / 1e9));
        }
        for s in &samples {
            let want: f64 = fast_float2::parse(s.as_bytes()).unwrap();
            if let Some((v, n)) = parse_plain(s.as_bytes()) {
                assert_eq!(n, s.len(), "{s}");
                assert_eq!(v.to_bits(), want.to_bits(), "{s}");
            }
        }
        for s in ["1e5", "nan", "inf", " 1", "", "-", "."] {
            assert!(parse_plain(s.as_bytes()).is_none_or(|(_, n)| n < s.len()), "{s}");
        }
    }

    fn plan(ncols: usize) -> FieldPlan {
        FieldPlan::new(ncols, (0..ncols).map(Some).collect(), ncols, (0..ncols).map(|j| format!("c{j}")).collect(), None)
    }

    #[test]
    fn block_parsing_handles_quotes_comments_and_reports_offsets() {
        let mut out = Rows::default();
        let text = b"1,2,3\n# note\n\"4\", 5 ,6e0\r\n\n7,8,9";
        assert_eq!(parse_block(text, 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap(), (3, 0));
        assert_eq!(out.vals, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let e = parse_block(b"1,2,3\n1,2\n", 100, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
        assert_eq!((e.offset, e.msg.as_str()), (106, "expected 3 fields, found 2"));
        let e = parse_block(b"1,2,3,4\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
        assert_eq!(e.msg, "expected 3 fields, found 4");
        let e = parse_block(b"1,x,3\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
        assert!(e.msg.contains("cannot parse 'x'"), "{}", e.msg);
        let e = parse_block(b"1,,3\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
        assert!(e.msg.contains("empty field"), "{}", e.msg);
        out.clear();
        assert_eq!(parse_block(b"1,nan,3\n4,5,6\n", 0, b',', &plan(3), NanPolicy::Skip, &mut out).unwrap(), (1, 1));
        assert_eq!(out.vals, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn parallel_parsing_keeps_order_and_reports_the_first_error() {
        let mut text = Vec::new();
        for i in 0..40_000 {
            text.extend_from_slice(format!("{i},{}.5,-{}\n", i * 3, i % 7).as_bytes());
        }
        let (mut one, mut par) = (Rows::default(), Rows::default());
        parse_block(&text, 0, b',', &plan(3), NanPolicy::Error, &mut one).unwrap();
        let parsed = parse_parallel(&text, 0, 3, b',', &plan(3), NanPolicy::Error, &mut par).unwrap();
        assert!(parsed.pieces.len() > 1);
        assert_eq!(parsed.pieces.iter().map(|p| p.2).sum::<u64>(), 40_000);
        assert_eq!(parsed.pieces[0].3, 0);
        assert_eq!(one, par);
        // Errors in the second and third pieces: the earlier one is reported.
        let at1 = text.len() / 2;
        let at2 = text.len() * 5 / 6;
        for at in [at2, at1] {
            let line = at + memchr::memchr(b'\n', &text[at..]).unwrap() + 1;
            text[line] = b'x';
        }
        let first_bad = at1 + memchr::memchr(b'\n', &text[at1..]).unwrap() + 1;
        let e = parse_parallel(&text, 1000, 3, b',', &plan(3), NanPolicy::Error, &mut par).unwrap_err();
        assert_eq!(e.offset, 1000 + first_bad as u64);
    }

    #[test]
    fn label_fields_are_kept_as_text_on_both_paths() {
        let mut p = plan(3);
        p.slot = vec![Some(0), None, Some(1)];
        p.width = 2;
        p.label = Some(1);
        p.text[1] = true;
        let mut out = Rows::default();
        let text = b"1,cat,2\n3,\"dog, big\",4\r\n5, 7 ,6\n7,nan,8\n";
        assert_eq!(parse_block(text, 0, b',', &p, NanPolicy::Error, &mut out).unwrap(), (4, 0));
        assert_eq!(out.vals, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(out.labels, vec!["cat", "dog, big", "7", "nan"]);
        let e = parse_block(b"1,,2\n", 0, b',', &p, NanPolicy::Error, &mut out).unwrap_err();
        assert!(e.msg.contains("empty label"), "{}", e.msg);
    }

    #[test]
    fn kept_fields_are_text_in_field_order_and_may_also_be_features() {
        // Fields 0 (also a feature) and 2 kept as text; an empty kept field is fine.
        let mut p = plan(3);
        p.slot = vec![Some(0), Some(1), None];
        p.width = 2;
        p.text = vec![true, false, true];
        for text in [&b"1.50,2,id-7\n3,4,\n"[..], b"1.50, 2,\"id-7\"\n3,4,\n"] {
            let mut out = Rows::default();
            assert_eq!(parse_block(text, 0, b',', &p, NanPolicy::Error, &mut out).unwrap(), (2, 0));
            assert_eq!(out.vals, vec![1.5, 2.0, 3.0, 4.0]);
            assert_eq!(out.labels, vec!["1.50", "id-7", "3", ""]);
        }
    }
}
