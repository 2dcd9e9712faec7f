//! A fast, streaming CSV reader for numeric data.
//!
//! The file (or one byte range of it, aligned to line starts) is read in large blocks; each
//! block's complete lines are parsed with a hand-written field scanner and `fast-float2`, and
//! only the selected columns are stored. Supported: a header line (auto-detected), any one-byte
//! delimiter, `#` comment lines, blank lines, CRLF, and quoted fields (`"1.5"`, `""` escapes).
//! Quoted fields spanning lines are not (this is a reader for numbers).

mod number;
mod parse;

use parse::parse_parallel;
pub use parse::{parse_block, FieldPlan, ParseError, Rows};

use crate::error::{Error, Result};
use crate::io::compressed;
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
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).delimiter(delim).flexible(true).from_reader(line);
    let mut rec = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec.iter().map(|s| s.to_vec()).collect(),
        _ => vec![line.to_vec()],
    }
}

/// What pandas' `read_csv` reads as missing by default (its `na_values`), besides the empty
/// field: all of them are NaN here, so `--nan error|skip` treats them alike.
const NA_TOKENS: [&[u8]; 18] = [
    b"#N/A",
    b"#N/A N/A",
    b"#NA",
    b"-1.#IND",
    b"-1.#QNAN",
    b"-NaN",
    b"-nan",
    b"1.#IND",
    b"1.#QNAN",
    b"<NA>",
    b"N/A",
    b"NA",
    b"NULL",
    b"NaN",
    b"None",
    b"n/a",
    b"nan",
    b"null",
];

/// Whether a (trimmed, unquoted) field is one of pandas' missing-value spellings.
pub fn is_na(t: &[u8]) -> bool {
    NA_TOKENS.contains(&t)
}

/// What a file that is not delimited text looks like, from its first bytes: a known binary
/// format by its magic number, or any binary data (NUL bytes).
pub fn sniff_binary(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 9] = [
        (b"PAR1", "a Parquet file (name it .parquet and flowmpi reads it)"),
        (b"PK\x03\x04", "a ZIP archive (an .npz or .xlsx file?)"),
        (b"\x1f\x8b", "gzip-compressed (name it .csv.gz and flowmpi reads it)"),
        (b"BZh", "bzip2-compressed (decompress it first)"),
        (b"\xfd7zXZ\x00", "xz-compressed (decompress it first)"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed (name it .csv.zst and flowmpi reads it)"),
        (b"\x89HDF", "an HDF5 file (name it .h5 and flowmpi reads it)"),
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
    let len = std::fs::metadata(path).map_err(|e| Error::data(rank, &pstr, None, format!("cannot open: {e}")))?.len();
    // A compressed file's text length is known only once it is read: "to the end".
    let len = if compressed::Codec::of(path).is_some() { u64::MAX } else { len };
    let mut f = compressed::open_at(path, 0).map_err(|e| Error::data(rank, &pstr, None, format!("cannot open: {e}")))?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut start = 0usize; // start of the current line in buf
    let mut scanned = 0usize; // buf[start..scanned] holds no newline (a long line is scanned once)
    let mut sniffed = false;
    let mut eof = false;
    loop {
        if !sniffed {
            // Look at the first 4 KiB (or the whole text) before any line: a binary file is
            // refused, and a byte-order mark skipped, before the first line is taken apart.
            if buf.len() < 4096 && !eof {
                let n = f.read(&mut chunk).map_err(|e| Error::data(rank, &pstr, None, format!("read failed: {e}")))?;
                eof = n == 0;
                buf.extend_from_slice(&chunk[..n]);
                continue;
            }
            sniffed = true;
            if let Some(what) = sniff_binary(&buf[..buf.len().min(4096)]) {
                return Err(Error::data(
                    rank,
                    &pstr,
                    None,
                    format!("looks like {what}; flowmpi reads CSV text (also .gz, .zst), .npy, .parquet and .h5 files"),
                ));
            }
            // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first field.
            if buf.starts_with(b"\xef\xbb\xbf") {
                start = 3;
            }
        }
        // Find the next complete line (or the last line at EOF).
        scanned = scanned.max(start);
        let nl = memchr::memchr(b'\n', &buf[scanned..]).map(|i| scanned + i);
        if nl.is_none() {
            scanned = buf.len();
        }
        let eof_line = nl.is_none() && eof;
        if nl.is_none() && !eof {
            let n = f.read(&mut chunk).map_err(|e| Error::data(rank, &pstr, None, format!("read failed: {e}")))?;
            eof = n == 0;
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
        // Classic Mac line endings (CR alone): the whole file is one line, read as a header and
        // no rows ("no data rows on any rank" said nothing about why).
        if memchr::memchr(b'\r', line).is_some_and(|i| i + 1 < line.len()) {
            return Err(Error::data(
                rank,
                &pstr,
                line_of(path, start as u64),
                "lines end in a carriage return alone (CR, old Mac \
                 style), not LF or CRLF: convert the file, e.g. tr '\\r' '\\n' < in.csv > out.csv",
            ));
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
                    Error::data(
                        rank,
                        &pstr,
                        line_of(path, start as u64),
                        format!(
                            "the header is not UTF-8 text: column {} holds the byte 0x{:02x} after {} (save the file as UTF-8)",
                            j + 1,
                            f.trim_ascii()[at],
                            crate::io::quote(&f.trim_ascii()[..at])
                        ),
                    )
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
    let mut f = compressed::open_at(path, 0).ok()?;
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
    let mut r = std::io::BufReader::new(compressed::open_at(path, offset).ok()?);
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

/// Where [`read_range`] hands each parsed block: `(values, labels, rows, offset)`.
pub type Sink<'a> = dyn FnMut(&[f64], &[String], u64, u64) -> Result<()> + 'a;

/// Stream the lines in bytes `[begin, end)` of `path` (line-aligned) in blocks of about
/// `block_bytes`, parsed by `threads` threads, calling `sink(values, labels, rows, offset)` with
/// each parsed block (`offset`: the file offset its lines start at), in file order. The next
/// block is read (and decompressed) on another thread while this one is parsed and handed on.
#[allow(clippy::too_many_arguments)] // the reader's settings, each used once; a struct would only rename them
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
    sink: &mut Sink,
) -> Result<u64> {
    let pstr = || path.display().to_string();
    let io_err = |e: std::io::Error| Error::data(rank, pstr(), None, format!("read failed: {e}"));
    let mut f = compressed::open_at(path, begin).map_err(|e| Error::data(rank, pstr(), None, format!("cannot open: {e}")))?;
    // No larger than the range (and its last line's end) needs: a ~1 MiB leaf of a split file
    // (`--reproducible`) must not zero a whole block's fresh pages each time.
    let span = usize::try_from(end - begin).unwrap_or(usize::MAX);
    let size = block_bytes.min(span.saturating_add(1 << 12)).max(1 << 10);
    let (mut buf, mut ahead) = (vec![0u8; size], Vec::new());
    let mut base = begin; // file offset of buf[0]
    let mut left = end - begin;
    // Bytes in buf (carried over + read), and whether the range has been read to its end.
    let (mut have, mut ended) = (0usize, false);
    let mut vals = Rows::default();
    // The parser's pieces, kept from block to block (their pages are faulted in once).
    let mut scratch = Vec::new();
    let mut skipped = 0;
    loop {
        if !ended && have == 0 {
            (have, ended) = fill(&mut f, &mut buf, 0, &mut left).map_err(io_err)?;
        }
        let upto = if ended {
            have
        } else {
            match memchr::memrchr(b'\n', &buf[..have]) {
                Some(i) => i + 1,
                None => {
                    // A single line longer than the block.
                    buf.resize(buf.len() * 2, 0);
                    let more;
                    (more, ended) = fill(&mut f, &mut buf, have, &mut left).map_err(io_err)?;
                    have = more;
                    continue;
                }
            }
        };
        // The next block: the unfinished line first, then bytes read while this one is parsed.
        let carry = have - upto;
        ahead.resize(buf.len(), 0);
        ahead[..carry].copy_from_slice(&buf[upto..have]);
        let (done, next) = std::thread::scope(|s| {
            let reader = (!ended).then(|| s.spawn(|| fill(&mut f, &mut ahead, carry, &mut left)));
            vals.clear();
            let done = parse_parallel(&buf[..upto], base, threads, delim, plan, nan, &mut vals, &mut scratch)
                .map_err(|e| Error::data(rank, pstr(), line_of(path, e.offset), e.msg))
                .and_then(|parsed| {
                    // The block as one chunk, however many threads parsed it: chunks that
                    // depended on the thread count would make the statistics depend on it.
                    skipped += parsed.skipped;
                    if parsed.rows > 0 {
                        sink(&vals.vals, &vals.labels, parsed.rows, base)?;
                    }
                    Ok(())
                });
            (done, reader.map(|r| r.join().expect("the reading thread does not panic")))
        });
        done?;
        match next {
            None => return Ok(skipped),
            Some(next) => {
                (have, ended) = next.map_err(io_err)?;
                std::mem::swap(&mut buf, &mut ahead);
                base += upto as u64;
            }
        }
    }
}

/// Read into `buf[from..]` until it is full, `left` bytes are read or the file ends; returns
/// the bytes now in `buf` and whether the range has been read to its end.
fn fill(f: &mut (dyn Read + Send), buf: &mut [u8], from: usize, left: &mut u64) -> std::io::Result<(usize, bool)> {
    let want = (buf.len() - from).min(usize::try_from(*left).unwrap_or(usize::MAX));
    let mut got = 0;
    while got < want {
        match f.read(&mut buf[from + got..from + want]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    *left -= got as u64;
    Ok((from + got, got < want || *left == 0))
}

#[cfg(test)]
mod tests;
