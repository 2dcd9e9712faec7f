//! HDF5 shards (input only). One numeric dataset per file, 2-D (rows × columns) or 1-D (one
//! column), of any integer, float (16 to 64 bits) or boolean type, read as float64; chunked and deflate- or
//! otherwise-filtered datasets are read by libhdf5 itself. A file split among ranks is split by
//! rows, as an NPY file is (part `i` of `n` holds rows `[i·R/n, (i+1)·R/n)`), and each rank
//! reads only its rows, a block of rows (one hyperslab) at a time.
//!
//! Which dataset: the `--dataset` path (or `file.h5:/path` in `--data`), else the file's only
//! dataset. Column names: the dataset's `columns`, `column_names` or `names` attribute (the
//! first present; an array of strings, one per column), else `x0, x1, …`.

use crate::error::{Error, Result};
use h5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5_metno as h5;
use std::path::Path;

/// Attributes that may name a dataset's columns, in the order they are looked for.
pub const NAME_ATTRIBUTES: [&str; 3] = ["columns", "column_names", "names"];

/// An opened dataset: its shape and column names.
pub struct Table {
    /// Rows (the first dimension).
    pub rows: u64,
    /// Columns (the second dimension; 1 for a 1-D dataset).
    pub cols: usize,
    /// Column names from an attribute, when the dataset has one.
    pub names: Option<Vec<String>>,
    ds: h5::Dataset,
}

fn fail(rank: usize, path: &Path, what: impl std::fmt::Display) -> Error {
    Error::data(rank, path.display().to_string(), None, what.to_string())
}

/// Open `dataset` of the HDF5 file `path` (or its only dataset when `None`).
pub fn open(path: &Path, dataset: Option<&str>, rank: usize) -> Result<Table> {
    // Without libhdf5's file lock: an input is only read, and parallel file systems mounted
    // without flock (Lustre, often) refuse the lock ("unable to lock file"), as does a file
    // another process still holds open for writing; HDF5_USE_FILE_LOCKING=FALSE, per file.
    let file = h5::File::with_options().with_fapl(|p| p.file_locking(false)).open(path).map_err(|e| {
        let mut head = Vec::new();
        let _ = std::fs::File::open(path).and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head));
        let looks = match crate::io::csv::sniff_binary(&head) {
            Some(what) => format!("it looks like {what}"),
            None if head.is_empty() => "it is empty".into(),
            None => "it looks like text".into(),
        };
        fail(rank, path, format!("cannot open it as HDF5 ({e}): {looks}"))
    })?;
    let ds = match dataset {
        Some(name) => file.dataset(name).map_err(|_| {
            let all = dataset_names(&file);
            fail(rank, path, format!("has no dataset {name:?}; its datasets: {}", list(&all)))
        })?,
        None => {
            let all = dataset_names(&file);
            match all.as_slice() {
                [one] => file.dataset(one).map_err(|e| fail(rank, path, e))?,
                [] => return Err(fail(rank, path, "holds no dataset")),
                _ => {
                    return Err(fail(rank, path, format!("holds several datasets ({}): name one, as 'file.h5:/path' in --data or with --dataset", list(&all))))
                }
            }
        }
    };
    let name = ds.name();
    let shape = ds.shape();
    let (rows, cols) = match shape.as_slice() {
        [r] => (*r as u64, 1),
        [r, c] => (*r as u64, *c),
        s => return Err(fail(rank, path, format!("dataset {name} has {} dimensions; flowmpi reads 1-D or 2-D (rows × columns) datasets", s.len()))),
    };
    let ty = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| fail(rank, path, format!("dataset {name}: {e}")))?;
    if !matches!(ty, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_) | TypeDescriptor::Boolean | TypeDescriptor::Enum(_)) {
        return Err(fail(rank, path, format!("dataset {name} holds {ty}, not numbers")));
    }
    let names = column_names(&ds, cols).map_err(|m| fail(rank, path, format!("dataset {name}: {m}")))?;
    Ok(Table { rows, cols, names, ds })
}

/// Rows `lo..hi` of `t`, about `block_rows` at a time: `f(values, first row)` with the values
/// row-major. A chunked dataset is read in whole chunks (blocks end on chunk boundaries, at least
/// one chunk of rows each): libhdf5 then decompresses every chunk once, straight into the block,
/// where a block that cut chunks would decompress each one again per block (its chunk cache
/// holds 1 MB, less than a chunk of 64k rows: measured 26x the time of NPY, gzip, 4M x 32).
pub fn read_rows(t: &Table, path: &Path, lo: u64, hi: u64, block_rows: usize, rank: usize, f: &mut dyn FnMut(&[f64], u64) -> Result<()>) -> Result<()> {
    let chunk = t.ds.chunk().and_then(|c| c.first().copied()).unwrap_or(1).max(1) as u64;
    let step = (block_rows as u64).max(chunk).div_ceil(chunk) * chunk;
    let mut at = lo;
    while at < hi {
        let end = hi.min((at / chunk) * chunk + step);
        let (a, b) = (at as usize, end as usize);
        let block = if t.ds.ndim() == 1 {
            t.ds.read_slice_1d::<f64, _>(ndarray::s![a..b]).map(|v| v.into_raw_vec_and_offset().0)
        } else {
            t.ds.read_slice_2d::<f64, _>(ndarray::s![a..b, ..]).map(|v| v.into_raw_vec_and_offset().0)
        };
        let block = block.map_err(|e| fail(rank, path, format!("rows {}..{} of dataset {}: {e}", a + 1, b, t.ds.name())))?;
        f(&block, at)?;
        at = end;
    }
    Ok(())
}

/// The paths of every dataset in the file, depth first, in name order.
fn dataset_names(file: &h5::File) -> Vec<String> {
    fn walk(g: &h5::Group, out: &mut Vec<String>) {
        for d in g.datasets().unwrap_or_default() {
            out.push(d.name());
        }
        for sub in g.groups().unwrap_or_default() {
            walk(&sub, out);
        }
    }
    let mut out = Vec::new();
    walk(file, &mut out);
    out
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} in all)", names.len()));
    }
    if s.is_empty() {
        s = "none".into();
    }
    s
}

/// The column names from the first of [`NAME_ATTRIBUTES`] the dataset has.
fn column_names(ds: &h5::Dataset, cols: usize) -> std::result::Result<Option<Vec<String>>, String> {
    let present = ds.attr_names().unwrap_or_default();
    let Some(key) = NAME_ATTRIBUTES.iter().find(|k| present.iter().any(|p| p == *k)) else { return Ok(None) };
    let attr = ds.attr(key).map_err(|e| e.to_string())?;
    let ty = attr.dtype().and_then(|t| t.to_descriptor()).map_err(|e| e.to_string())?;
    let names: Vec<String> = match ty {
        TypeDescriptor::VarLenUnicode => attr.read_raw::<VarLenUnicode>().map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        TypeDescriptor::VarLenAscii => attr.read_raw::<VarLenAscii>().map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        // (libhdf5 converts a fixed-length string to a longer one of the same character set.)
        TypeDescriptor::FixedAscii(_) => attr.read_raw::<h5::types::FixedAscii<1024>>().map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        TypeDescriptor::FixedUnicode(_) => attr.read_raw::<h5::types::FixedUnicode<1024>>().map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        other => return Err(format!("attribute '{key}' holds {other}, not column names (strings)")),
    }
    .map_err(|e| format!("attribute '{key}': {e}"))?;
    if names.len() != cols {
        return Err(format!("attribute '{key}' names {} columns but the dataset has {cols}", names.len()));
    }
    Ok(Some(names))
}
