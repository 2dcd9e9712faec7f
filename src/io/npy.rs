//! NumPy `.npy` files: 2-D (or 1-D) float64/float32 arrays in C order, read by row ranges and
//! written in a streaming way (the shape in the header is patched when the writer finishes).

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Element type of an `.npy` file: floats (16/32/64-bit), signed and unsigned integers
/// (8..64-bit) and booleans, either byte order; all are read as float64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dtype {
    /// 'f' (float), 'i' (signed), 'u' (unsigned) or 'b' (bool), as in numpy's `descr`.
    pub kind: u8,
    /// Bytes per element.
    pub bytes: usize,
    /// Big-endian storage.
    pub big: bool,
}

impl Dtype {
    /// Native little-endian float64, the layout read without conversion.
    pub const F8: Dtype = Dtype { kind: b'f', bytes: 8, big: false };

    /// Bytes per element.
    pub fn size(self) -> usize {
        self.bytes
    }

    /// Parse numpy's `descr` string (`<f8`, `|u1`, `>i4`, `|b1`, ...).
    fn parse(descr: &str) -> Option<Dtype> {
        let b = descr.as_bytes();
        if b.len() < 3 {
            return None;
        }
        let big = match b[0] {
            b'<' | b'|' | b'=' => false,
            b'>' => true,
            _ => return None,
        };
        let bytes: usize = std::str::from_utf8(&b[2..]).ok()?.parse().ok()?;
        let ok = match b[1] {
            b'f' => [2, 4, 8].contains(&bytes),
            b'i' | b'u' => [1, 2, 4, 8].contains(&bytes),
            b'b' => bytes == 1,
            _ => false,
        };
        ok.then_some(Dtype { kind: b[1], bytes, big })
    }

    /// Decode one element.
    #[inline]
    fn decode(self, e: &[u8]) -> f64 {
        let mut w = [0u8; 8];
        w[..self.bytes].copy_from_slice(e);
        if self.big {
            w[..self.bytes].reverse();
        }
        let raw = u64::from_le_bytes(w);
        match (self.kind, self.bytes) {
            (b'f', 8) => f64::from_bits(raw),
            (b'f', 4) => f32::from_bits(raw as u32) as f64,
            (b'f', _) => f16_to_f64(raw as u16),
            (b'i', n) => ((raw << (64 - 8 * n)) as i64 >> (64 - 8 * n)) as f64,
            (b'b', _) => (raw != 0) as u8 as f64,
            _ => raw as f64,
        }
    }
}

/// IEEE half precision to double, exactly (every half is a double).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// Number of rows (first dimension).
    pub rows: u64,
    /// Number of columns (1 for a 1-D array).
    pub cols: usize,
    /// Byte offset of the first element.
    pub data_offset: u64,
}

/// Most columns a file may have (a d × d node state of this width is already 8 TB).
pub const MAX_COLS: u64 = 1 << 20;

/// Read and validate the header of `path`; `rank` is only used in error messages.
pub fn read_header(path: &Path, rank: usize) -> Result<NpyHeader> {
    let err = |msg: String| Error::data(rank, path.display().to_string(), None, msg);
    let mut f = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre).map_err(|_| err("not a .npy file (too short)".into()))?;
    if &pre[..6] != b"\x93NUMPY" {
        let what = super::csv::sniff_binary(&pre).unwrap_or("text or another format");
        return Err(err(format!("not a .npy file (no NumPy magic bytes): it looks like {what}")));
    }
    let (hlen, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10u64),
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more).map_err(|_| err("truncated .npy header".into()))?;
            (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize, 12u64)
        }
        v => return Err(err(format!("unsupported .npy version {v}"))),
    };
    let len = f.metadata().map_err(|e| err(e.to_string()))?.len();
    if start + hlen as u64 > len {
        return Err(err(format!("truncated .npy header: it claims {hlen} bytes but the file has {len}")));
    }
    let mut h = vec![0u8; hlen];
    f.read_exact(&mut h).map_err(|_| err("truncated .npy header".into()))?;
    let text = String::from_utf8_lossy(&h).into_owned();
    let dict = super::pyliteral::parse_dict(&text).map_err(|e| err(format!("the header is not a readable Python dict ({e})")))?;
    use super::pyliteral::Value;
    let dtype = match dict.get("descr") {
        None => return Err(err("header has no 'descr'".into())),
        Some(Value::Str(d)) => Dtype::parse(d)
            .ok_or_else(|| err(format!("dtype {} is not supported (float16/32/64, int8..64, uint8..64 or bool)", crate::io::quote(d.as_bytes()))))?,
        Some(other) => return Err(err(format!("dtype {other:?} is not supported: a plain numeric dtype, not a structured one"))),
    };
    match dict.get("fortran_order") {
        Some(Value::Bool(false)) | None => {}
        Some(Value::Bool(true)) => return Err(err("Fortran-order arrays are not supported (save np.ascontiguousarray(a))".into())),
        Some(other) => return Err(err(format!("'fortran_order' is {other:?}, not True or False"))),
    }
    let dims = match dict.get("shape") {
        Some(Value::Tuple(d)) => d.clone(),
        None => return Err(err("header has no 'shape'".into())),
        Some(other) => return Err(err(format!("bad shape {other:?}"))),
    };
    let inner = dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let (rows, cols) = match dims[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(err(format!("expected a 1-D or 2-D array, got shape ({})", inner.chars().take(80).collect::<String>()))),
    };
    // Every size is checked before anything is allocated from it: a corrupt or hostile
    // header must not make us reserve memory the file cannot back.
    if cols == 0 || cols > MAX_COLS {
        return Err(err(format!("shape ({rows}, {cols}): flowmpi reads 1 to {MAX_COLS} columns")));
    }
    let data_offset = start + hlen as u64;
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(dtype.size() as u64))
        .and_then(|n| n.checked_add(data_offset))
        .ok_or_else(|| err(format!("shape ({rows}, {cols}) is impossibly large")))?;
    if len < need {
        return Err(err(format!("file is truncated: header says {rows}x{cols} but only {len} bytes")));
    }
    let cols = cols as usize;
    Ok(NpyHeader { dtype, rows, cols, data_offset })
}

/// A read-only memory map of a native float64 `.npy` file, shared by the chunks cut from it: a
/// node that keeps its rows (k-means) holds the map instead of copying the rows. Mapped pages
/// come straight from the page cache (no zero-filled pages to fault in, no copy), which is most
/// of the cost of keeping 500 MB of rows on a VM (`scripts/bench.sh`, kmeans NPY).
#[derive(Clone)]
pub struct Mapped {
    map: std::sync::Arc<memmap2::Mmap>,
    data_offset: usize,
}

impl Mapped {
    /// The file's values (after the header), row-major.
    pub fn values(&self) -> &[f64] {
        let bytes = &self.map[self.data_offset..];
        // SAFETY: the map is page-aligned and `data_offset` a multiple of 8 (checked in
        // `read_rows`), so the view is aligned; any bit pattern is a valid f64.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f64, bytes.len() / 8) }
    }

    /// Whether both are the same map.
    pub fn same(&self, other: &Mapped) -> bool {
        std::sync::Arc::ptr_eq(&self.map, &other.map)
    }

    /// Element offset of `p` in [`Mapped::values`], if it points into them.
    pub fn offset_of(&self, p: *const f64) -> Option<usize> {
        let v = self.values().as_ptr_range();
        (v.contains(&p)).then(|| (p as usize - v.start as usize) / 8)
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.map.len())
    }
}

/// Receives a block of rows, the index of its first row, and the map it lies in (if any).
pub type RowSink<'a> = dyn FnMut(&[f64], u64, Option<&Mapped>) -> Result<()> + 'a;

/// Read rows `first..last` of `path` in blocks of at most `block_rows` rows; each block is
/// decoded to float64 (row-major, `hdr.cols` columns) and handed to `sink`. With `map`, native
/// float64 files are memory-mapped and the blocks are slices of the map, handed over with it;
/// otherwise they are read into a buffer.
#[allow(clippy::too_many_arguments)]
pub fn read_rows(path: &Path, hdr: &NpyHeader, first: u64, last: u64, block_rows: usize, rank: usize, map: bool, sink: &mut RowSink) -> Result<()> {
    let err = |msg: String| Error::data(rank, path.display().to_string(), None, msg);
    let f = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let row_bytes = hdr.cols * hdr.dtype.size();
    if map && hdr.dtype == Dtype::F8 && cfg!(target_endian = "little") && hdr.data_offset.is_multiple_of(8) {
        // SAFETY: the map is read-only. Its contents change only if another process rewrites
        // the input file while the job runs (then, as with numpy.memmap, a truncated file ends
        // the process with SIGBUS); the length was checked against the header on opening.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&f) } {
            let _ = map.advise(memmap2::Advice::Sequential);
            let mapped = Mapped { map: std::sync::Arc::new(map), data_offset: hdr.data_offset as usize };
            let (lo, hi) = (first as usize * hdr.cols, last as usize * hdr.cols);
            let vals = mapped.values().get(lo..hi).ok_or_else(|| err("file is shorter than its header says".into()))?;
            for (b, block) in vals.chunks(block_rows.max(1) * hdr.cols.max(1)).enumerate() {
                sink(block, first + (b * block_rows.max(1)) as u64, Some(&mapped))?;
            }
            return Ok(());
        }
    }
    // No larger than the rows to read: a part of a file split into ~1 MiB leaves
    // (`--reproducible`) must not zero a whole block's fresh pages each time.
    let block_rows = block_rows.clamp(1, (last - first).max(1) as usize);
    // Two buffers: the next block is read (and converted) on another thread while `sink` works
    // on this one.
    let buffers = || (vec![0u8; if hdr.dtype == Dtype::F8 { 0 } else { block_rows * row_bytes }], vec![0.0f64; block_rows * hdr.cols]);
    let (mut this, mut ahead) = (buffers(), buffers());
    let rows_at = |row: u64| ((last - row) as usize).min(block_rows);
    // Rows `row..row + n` into `vals`, through `raw` when they need converting.
    let read = |f: &File, (raw, vals): &mut (Vec<u8>, Vec<f64>), row: u64, n: usize| -> Result<()> {
        let read_err = |e: std::io::Error| err(format!("read failed at row {}: {e}", row + 1));
        let native = hdr.dtype == Dtype::F8 && cfg!(target_endian = "little");
        let bytes = if native {
            // Native layout: read straight into the f64 buffer, no conversion pass.
            let dst = &mut vals[..n * hdr.cols];
            // SAFETY: any bit pattern is a valid f64; the byte view covers exactly `dst`.
            unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut u8, dst.len() * 8) }
        } else {
            &mut raw[..n * row_bytes]
        };
        let at = hdr.data_offset + row * row_bytes as u64;
        // (Positional: the thread reading ahead and this one share the file.)
        f.read_exact_at(bytes, at).map_err(read_err)?;
        if !native {
            let dt = hdr.dtype;
            vals[..n * hdr.cols].iter_mut().zip(raw[..n * row_bytes].chunks_exact(dt.size())).for_each(|(v, b)| *v = dt.decode(b));
        }
        Ok(())
    };
    let mut row = first;
    if row < last {
        read(&f, &mut this, row, rows_at(row))?;
    }
    while row < last {
        let (n, next) = (rows_at(row), row + rows_at(row) as u64);
        let (done, read_ahead) = std::thread::scope(|s| {
            let reader = (next < last).then(|| s.spawn(|| read(&f, &mut ahead, next, rows_at(next))));
            let done = sink(&this.1[..n * hdr.cols], row, None);
            (done, reader.map(|r| r.join().expect("the reading thread does not panic")))
        });
        done?;
        read_ahead.transpose()?;
        std::mem::swap(&mut this, &mut ahead);
        row = next;
    }
    Ok(())
}

/// Fixed header size for written files, so the shape can be patched in place at the end.
const WRITE_HEADER_LEN: usize = 128;

/// `cols` None: a vector of int64 (what numpy's argsort returns); else a float64 matrix.
fn header_bytes(rows: u64, cols: Option<usize>) -> Vec<u8> {
    let dict = match cols {
        Some(cols) => format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"),
        None => format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({rows},), }}"),
    };
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((WRITE_HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(WRITE_HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

/// Streaming float64 `.npy` writer: rows are appended, the shape is fixed by `finish`.
pub struct NpyWriter {
    file: std::io::BufWriter<File>,
    rows: u64,
    /// None: an int64 vector ([`NpyWriter::create_indices`]).
    cols: Option<usize>,
}

impl NpyWriter {
    /// Start a file with `cols` columns.
    pub fn create(file: File, cols: usize) -> std::io::Result<Self> {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        file.write_all(&header_bytes(0, Some(cols)))?;
        Ok(NpyWriter { file, rows: 0, cols: Some(cols) })
    }

    /// Start a vector of int64 row indices, written with [`NpyWriter::write_indices`].
    pub fn create_indices(file: File) -> std::io::Result<Self> {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        file.write_all(&header_bytes(0, None))?;
        Ok(NpyWriter { file, rows: 0, cols: None })
    }

    /// Append indices (to a file from [`NpyWriter::create_indices`]).
    pub fn write_indices(&mut self, idx: &[u64]) -> std::io::Result<()> {
        debug_assert!(self.cols.is_none(), "an index vector");
        for &i in idx {
            self.file.write_all(&(i as i64).to_le_bytes())?;
        }
        self.rows += idx.len() as u64;
        Ok(())
    }

    /// Append rows (row-major, `cols` values each).
    pub fn write_rows(&mut self, vals: &[f64]) -> std::io::Result<()> {
        for v in vals {
            self.file.write_all(&v.to_le_bytes())?;
        }
        self.rows += (vals.len() / self.cols.expect("a float64 matrix").max(1)) as u64;
        Ok(())
    }

    /// Patch the header with the final shape and flush.
    pub fn finish(self) -> std::io::Result<()> {
        let mut f = self.file.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header_bytes(self.rows, self.cols))?;
        f.sync_all()
    }
}
