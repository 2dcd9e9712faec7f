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

/// Parse one field the slow way (quoted, or with spaces), for the header and fallbacks.
fn split_line(line: &[u8], delim: u8) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delim)
        .flexible(true)
        .from_reader(line);
    match rdr.records().next() {
        Some(Ok(rec)) => rec.iter().map(|s| s.to_string()).collect(),
        _ => vec![String::from_utf8_lossy(line).into_owned()],
    }
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
    loop {
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
                let t = s.trim();
                !t.is_empty() && fast_float2::parse::<f64, _>(t).is_err()
            })
        });
        let ncols = fields.len();
        return Ok(Some(if has_header {
            CsvLayout { ncols, names: Some(fields.into_iter().map(|s| s.trim().to_string()).collect()), data_start: next as u64, len }
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
}

/// A parse failure at a byte offset of the file.
#[derive(Debug)]
pub struct ParseError {
    /// Byte offset of the bad line's start.
    pub offset: u64,
    /// What is wrong.
    pub msg: String,
}

fn parse_quoted(field: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(field).ok()?.trim();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?.replace("\"\"", "\"");
    let t = inner.trim();
    if t.is_empty() {
        return Some(f64::NAN);
    }
    fast_float2::parse::<f64, _>(t).ok()
}

/// Parse the complete lines in `block` (which starts at file offset `base`), appending the
/// selected values row by row to `out`. Returns (rows appended, rows skipped for NaN).
pub fn parse_block(
    block: &[u8],
    base: u64,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    out: &mut Vec<f64>,
) -> std::result::Result<(u64, u64), ParseError> {
    let mut rows = 0u64;
    let mut skipped = 0u64;
    let mut pos = 0usize;
    let width = plan.width;
    while pos < block.len() {
        let end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i);
        let line = trim_eol(&block[pos..end]);
        let line_start = pos;
        pos = end + 1;
        if is_skipped(line) {
            continue;
        }
        let fail = |msg: String| ParseError { offset: base + line_start as u64, msg };
        let row_at = out.len();
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
            if let Some(slot) = plan.slot[col] {
                let v = match fast_float2::parse_partial::<f64, _>(field) {
                    Ok((v, n)) if n == field.len() => v,
                    _ => {
                        let t = field.trim_ascii();
                        if t.is_empty() {
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
                        let what = if field.trim_ascii().is_empty() { "an empty field".to_string() } else { format!("'{}'", String::from_utf8_lossy(field)) };
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
            skipped += 1;
        } else {
            rows += 1;
        }
    }
    Ok((rows, skipped))
}

fn bad_field(field: &[u8], col: usize, plan: &FieldPlan, fail: &dyn Fn(String) -> ParseError) -> ParseError {
    fail(format!(
        "cannot parse '{}' as a number (column '{}')",
        String::from_utf8_lossy(field),
        plan.names[col]
    ))
}

/// Stream the lines in bytes `[begin, end)` of `path` (line-aligned) in blocks of about
/// `block_bytes`, calling `sink(values, rows)` with each parsed block.
pub fn read_range(
    path: &Path,
    begin: u64,
    end: u64,
    block_bytes: usize,
    delim: u8,
    plan: &FieldPlan,
    nan: NanPolicy,
    rank: usize,
    sink: &mut dyn FnMut(&[f64], u64) -> Result<()>,
) -> Result<u64> {
    let pstr = || path.display().to_string();
    let io_err = |e: std::io::Error| Error::data(rank, pstr(), None, format!("read failed: {e}"));
    let mut f = File::open(path).map_err(|e| Error::data(rank, pstr(), None, format!("cannot open: {e}")))?;
    f.seek(SeekFrom::Start(begin)).map_err(io_err)?;
    let mut buf = vec![0u8; block_bytes.max(1 << 10)];
    let mut have = 0usize; // bytes in buf carried over + read
    let mut base = begin; // file offset of buf[0]
    let mut left = end - begin;
    let mut vals = Vec::new();
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
        let (rows, skip) = parse_block(&buf[..upto], base, delim, plan, nan, &mut vals).map_err(|e| {
            Error::data(rank, pstr(), line_of(path, e.offset), e.msg)
        })?;
        skipped += skip;
        if rows > 0 {
            sink(&vals, rows)?;
        }
        buf.copy_within(upto..have, 0);
        have -= upto;
        base += upto as u64;
        if eof {
            return Ok(skipped);
        }
    }
}
