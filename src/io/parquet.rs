//! Parquet shards. Numeric columns (boolean, int32, int64, float, double) are read as float64,
//! string columns as text (a classifier's label, `--keep` columns); only the selected columns
//! are decoded, one row group at a time, so memory stays one row group's selected columns
//! whatever the file's size. A null is a missing value, as an empty CSV field is (`--nan skip`
//! drops its row, else an error names rank, file and row). A file is split among ranks, and
//! into `--reproducible` leaves, by whole row groups ([`groups_of`]: row-weighted runs, found
//! from the footer alone, no communication; a leaf is one row group).

use crate::error::{Error, Result};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::fs::File;
use std::ops::Range;
use std::path::Path;

/// What a file's footer says.
pub struct Footer {
    /// The leaf columns' names (dotted paths for nested groups).
    pub names: Vec<String>,
    /// Rows per row group.
    pub groups: Vec<u64>,
    reader: SerializedFileReader<bytes::Bytes>,
}

impl Footer {
    /// Column `j` of a row group of `rows` rows.
    fn column(&self, group: &dyn parquet::file::reader::RowGroupReader, j: usize, rows: usize) -> std::result::Result<Column, String> {
        let descr = self.reader.metadata().file_metadata().schema_descr().column(j);
        if descr.max_rep_level() > 0 {
            return Err("a list (repeated) column is not read: flowmpi reads one value per row".into());
        }
        read_column(group.get_column_reader(j).map_err(|e| e.to_string())?, rows, descr.max_def_level())
    }

    /// Numeric column `j` of a row group of `rows` rows into `out` (NaN for a null); false when
    /// the column holds text. A double column is decoded straight into `out`.
    fn numbers(
        &self,
        group: &dyn parquet::file::reader::RowGroupReader,
        j: usize,
        rows: usize,
        out: &mut Vec<f64>,
        defs: &mut Vec<i16>,
    ) -> std::result::Result<bool, String> {
        let descr = self.reader.metadata().file_metadata().schema_descr().column(j);
        out.clear();
        match group.get_column_reader(j).map_err(|e| e.to_string())? {
            ColumnReader::DoubleColumnReader(mut r) if descr.max_rep_level() == 0 => {
                let max_def = descr.max_def_level();
                defs.clear();
                let mut read = 0;
                while read < rows {
                    let (records, _, _) = r.read_records(rows - read, (max_def > 0).then_some(&mut *defs), None, out).map_err(|e| e.to_string())?;
                    if records == 0 {
                        return Err(format!("the row group says {rows} rows but holds {read}"));
                    }
                    read += records;
                }
                if max_def > 0 && out.len() < rows {
                    // Nulls: the values are packed at the front; spread them to their rows
                    // from the back.
                    let mut next = out.len();
                    out.resize(rows, f64::NAN);
                    for i in (0..rows).rev() {
                        if defs[i] == max_def {
                            next -= 1;
                            out[i] = out[next];
                        } else {
                            out[i] = f64::NAN;
                        }
                    }
                }
                Ok(true)
            }
            _ => match self.column(group, j, rows)? {
                Column::Numbers(v) => {
                    out.extend_from_slice(&v);
                    Ok(true)
                }
                Column::Text(_) => Ok(false),
            },
        }
    }
}

/// Read the footer of `path`: its columns and row groups.
pub fn footer(path: &Path, rank: usize) -> Result<Footer> {
    let err = |msg: String| Error::data(rank, path.display().to_string(), None, msg);
    let f = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if f.metadata().map_err(|e| err(format!("cannot open: {e}")))?.len() < 12 {
        return Err(err("not a readable Parquet file: too short to hold a footer".into()));
    }
    // Memory-mapped: pages are read as slices of the map, without a read call and a copy each.
    // SAFETY: read-only; as with numpy.memmap, a file truncated by another process while the
    // job reads it ends the process with SIGBUS (shards::unchanged checks the size after).
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| err(format!("cannot map: {e}")))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let reader = SerializedFileReader::new(bytes::Bytes::from_owner(map)).map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let meta = reader.metadata();
    let names = meta.file_metadata().schema_descr().columns().iter().map(|c| c.path().string()).collect();
    let groups = meta.row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect();
    Ok(Footer { names, groups, reader })
}

/// The row groups of part `part` (`(i, n)`: the `i`-th of `n` runs of whole row groups; None:
/// all) of a file whose row groups hold `rows` rows each. With fewer parts than row groups, the
/// runs are row-weighted: a row group belongs to the part holding its middle row, so ranks read
/// about equal rows however uneven the row groups. With at least as many parts as row groups,
/// part `i` holds row group `i·G/n` or none, so that part `g` of `G` is row group `g` (the
/// `--reproducible` leaves).
pub fn groups_of(part: Option<(usize, usize)>, rows: &[u64]) -> Range<usize> {
    let g = rows.len();
    let total: u64 = rows.iter().sum();
    match part {
        None => 0..g,
        Some((i, n)) if n >= g || total == 0 => i * g / n..(i + 1) * g / n,
        Some((i, n)) => {
            // The part of group j: floor(middle_j · n / total), with middle_j = start_j + rows_j/2
            // (doubled to stay in integers); nondecreasing in j, so each part is a run.
            let mut start = 0u64;
            let owner: Vec<usize> = rows
                .iter()
                .map(|&r| {
                    let middle2 = 2 * start as u128 + r as u128;
                    start += r;
                    ((middle2 * n as u128 / (2 * total as u128)) as usize).min(n - 1)
                })
                .collect();
            owner.partition_point(|&o| o < i)..owner.partition_point(|&o| o <= i)
        }
    }
}

/// Rows per tile of the columns-to-rows copy.
const TILE_ROWS: usize = 256;

/// Where [`read`] hands each row group's rows: `(values, text, rows, first_row)`: the numeric
/// columns row-major (NaN for a null), the text columns' fields row by row, the row count and
/// the index of the first row in the file.
pub type Sink<'a> = dyn FnMut(&[f64], &[String], usize, u64) -> Result<()> + 'a;

/// Read row groups `groups` of `foot`'s file: columns `numeric` as numbers, `text` as text.
pub fn read(path: &Path, foot: &Footer, groups: Range<usize>, numeric: &[usize], text: &[usize], rank: usize, sink: &mut Sink) -> Result<()> {
    let pstr = || path.display().to_string();
    let err = |msg: String| Error::data(rank, pstr(), None, msg);
    // Row group `g` (its first row is row `first` of the file) into `into`.
    let decode = |g: usize, first: u64, into: &mut Decoded| -> Result<()> {
        let Decoded { cols, defs, vals, fields } = into;
        let rows = foot.groups[g] as usize;
        let group = foot.reader.get_row_group(g).map_err(|e| err(format!("row group {g}: {e}")))?;
        for (k, &j) in numeric.iter().enumerate() {
            let read = foot.numbers(&*group, j, rows, &mut cols[k], defs).map_err(|e| err(format!("column '{}' in row group {g}: {e}", foot.names[j])))?;
            if !read {
                return Err(err(format!("column '{}' holds text, not numbers (--exclude leaves it out; a classifier takes it as its label)", foot.names[j])));
            }
        }
        // Columns to rows, a tile of rows at a time: the tile's rows stay in cache while every
        // column writes into them (a whole row group's rows would be written at a stride).
        let w = numeric.len();
        // Every value is written below: no need to zero a reused buffer.
        vals.resize(rows * w, 0.0);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let r1 = (r0 + TILE_ROWS).min(rows);
            // Four columns at a time: one 32-byte store per row instead of four scattered ones.
            let mut k = 0;
            while k + 4 <= w {
                let (a, b, c, d) = (&cols[k][r0..r1], &cols[k + 1][r0..r1], &cols[k + 2][r0..r1], &cols[k + 3][r0..r1]);
                for (i, row) in vals[r0 * w..r1 * w].chunks_exact_mut(w).enumerate() {
                    row[k..k + 4].copy_from_slice(&[a[i], b[i], c[i], d[i]]);
                }
                k += 4;
            }
            for (k, col) in cols.iter().enumerate().skip(k) {
                for (row, v) in vals[r0 * w..r1 * w].chunks_exact_mut(w).zip(&col[r0..r1]) {
                    row[k] = *v;
                }
            }
        }
        fields.clear();
        fields.resize(rows * text.len(), String::new());
        for (k, &j) in text.iter().enumerate() {
            let column = foot.column(&*group, j, rows).map_err(|e| err(format!("column '{}' in row group {g}: {e}", foot.names[j])))?;
            let texts: Vec<Option<String>> = match column {
                Column::Text(t) => t,
                Column::Numbers(n) => n.into_iter().map(|v| (!v.is_nan()).then(|| crate::io::number_label(v))).collect(),
            };
            for (i, t) in texts.into_iter().enumerate() {
                let Some(t) = t else {
                    return Err(Error::data(rank, pstr(), None, format!("row {} of column '{}' is null", first + i as u64 + 1, foot.names[j])));
                };
                fields[i * text.len() + k] = t;
            }
        }
        Ok(())
    };
    // Two sets of buffers, each reused by every other row group (fresh ones would fault in new
    // pages each time): the next row group is decoded on another thread while `sink` works on
    // this one.
    let (mut this, mut ahead) = (Decoded::new(numeric.len()), Decoded::new(numeric.len()));
    let mut first: u64 = foot.groups[..groups.start].iter().sum();
    if !groups.is_empty() {
        decode(groups.start, first, &mut this)?;
    }
    for g in groups.clone() {
        let rows = foot.groups[g] as usize;
        let next = first + rows as u64;
        let (done, read_ahead) = std::thread::scope(|s| {
            let reader = (g + 1 < groups.end).then(|| s.spawn(|| decode(g + 1, next, &mut ahead)));
            let done = sink(&this.vals, &this.fields, rows, first);
            (done, reader.map(|r| r.join().expect("the decoding thread does not panic")))
        });
        done?;
        read_ahead.transpose()?;
        std::mem::swap(&mut this, &mut ahead);
        first = next;
    }
    Ok(())
}

/// A row group's values: per numeric column, its definition levels, the rows, the text fields.
struct Decoded {
    cols: Vec<Vec<f64>>,
    defs: Vec<i16>,
    vals: Vec<f64>,
    fields: Vec<String>,
}

impl Decoded {
    fn new(numeric: usize) -> Self {
        Decoded { cols: vec![Vec::new(); numeric], defs: Vec::new(), vals: Vec::new(), fields: Vec::new() }
    }
}

/// One column chunk's values, a row each.
enum Column {
    /// Numbers (NaN for a null).
    Numbers(Vec<f64>),
    /// Text (None for a null).
    Text(Vec<Option<String>>),
}

/// Every value of a column chunk of `rows` rows whose values are present at definition level
/// `max_def` (0: the column cannot hold nulls).
fn read_column(reader: ColumnReader, rows: usize, max_def: i16) -> std::result::Result<Column, String> {
    Ok(match reader {
        ColumnReader::BoolColumnReader(r) => Column::Numbers(numbers(r, rows, max_def, |v: &bool| f64::from(u8::from(*v)))?),
        ColumnReader::Int32ColumnReader(r) => Column::Numbers(numbers(r, rows, max_def, |v: &i32| f64::from(*v))?),
        ColumnReader::Int64ColumnReader(r) => Column::Numbers(numbers(r, rows, max_def, |v: &i64| *v as f64)?),
        ColumnReader::FloatColumnReader(r) => Column::Numbers(numbers(r, rows, max_def, |v: &f32| f64::from(*v))?),
        ColumnReader::DoubleColumnReader(r) => Column::Numbers(numbers(r, rows, max_def, |v: &f64| *v)?),
        ColumnReader::ByteArrayColumnReader(r) => Column::Text(values(r, rows, max_def, |v| Some(String::from_utf8_lossy(v.data()).into_owned()), None)?),
        ColumnReader::Int96ColumnReader(_) => return Err("INT96 (an old timestamp type) is not read; convert it to int64 or leave the column out".into()),
        ColumnReader::FixedLenByteArrayColumnReader(_) => {
            return Err("fixed-length byte arrays (decimals, UUIDs) are not read; convert the column to double or leave it out".into())
        }
    })
}

/// A numeric column chunk's values as float64, NaN where null.
fn numbers<T: DataType>(r: ColumnReaderImpl<T>, rows: usize, max_def: i16, to: impl Fn(&T::T) -> f64) -> std::result::Result<Vec<f64>, String> {
    values(r, rows, max_def, to, f64::NAN)
}

/// All `rows` values of a flat column chunk, each mapped by `to`; `null` where a row has none.
fn values<T: DataType, U: Clone>(
    mut r: ColumnReaderImpl<T>,
    rows: usize,
    max_def: i16,
    to: impl Fn(&T::T) -> U,
    null: U,
) -> std::result::Result<Vec<U>, String> {
    let (mut vals, mut defs) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut read = 0;
    while read < rows {
        let (records, _, _) = r.read_records(rows - read, (max_def > 0).then_some(&mut defs), None, &mut vals).map_err(|e| e.to_string())?;
        if records == 0 {
            return Err(format!("the row group says {rows} rows but holds {read}"));
        }
        read += records;
    }
    if max_def == 0 {
        return Ok(vals.iter().map(to).collect());
    }
    // Non-null values come packed: one for each row whose level is the maximum.
    let mut next = vals.iter();
    defs.iter().map(|&d| if d == max_def { next.next().map(&to).ok_or_else(|| "fewer values than rows".to_string()) } else { Ok(null.clone()) }).collect()
}
