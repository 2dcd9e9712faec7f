//! Parquet shards. Numeric columns (boolean, int32, int64, float, double) are read as float64,
//! string columns as text (a classifier's label, `--keep` columns); only the selected columns
//! are decoded, one row group at a time, so memory stays one row group's selected columns
//! whatever the file's size. A null is a missing value, as an empty CSV field is (`--nan skip`
//! drops its row, else an error names rank, file and row). A file is split among ranks, and
//! into `--reproducible` leaves, by whole row groups ([`groups_of`]: row-weighted runs, found
//! from the footer alone, no communication; a leaf is one row group).

use super::parquet_doubles::{self, Doubles};
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

    /// Numeric column `j` of a row group of `rows` rows, to be read a tile at a time; None
    /// when the column holds text.
    fn numbers(&self, group: &dyn parquet::file::reader::RowGroupReader, j: usize, rows: usize) -> std::result::Result<Option<Numbers>, String> {
        let descr = self.reader.metadata().file_metadata().schema_descr().column(j);
        let (max_def, max_rep) = (descr.max_def_level(), descr.max_rep_level());
        if descr.physical_type() == parquet::basic::Type::DOUBLE && parquet_doubles::usable(group.metadata().column(j), max_def, max_rep) {
            let pages = group.get_column_page_reader(j).map_err(|e| e.to_string())?;
            return Ok(Some(Numbers::Pages(Box::new(Doubles::new(pages, max_def, rows)))));
        }
        Ok(match group.get_column_reader(j).map_err(|e| e.to_string())? {
            ColumnReader::DoubleColumnReader(reader) if descr.max_rep_level() == 0 => {
                Some(Numbers::Doubles { reader: Box::new(reader), max_def: descr.max_def_level(), rows })
            }
            _ => match self.column(group, j, rows)? {
                Column::Numbers(v) => Some(Numbers::Whole(v)),
                Column::Text(_) => None,
            },
        })
    }
}

/// A numeric column of a row group. Doubles (the common case) are decoded a tile of rows at a
/// time into a small buffer that stays in cache, by our own decoder where it can; other types
/// are decoded whole and converted.
enum Numbers {
    Pages(Box<Doubles>),
    Doubles { reader: Box<ColumnReaderImpl<parquet::data_type::DoubleType>>, max_def: i16, rows: usize },
    Whole(Vec<f64>),
}

impl Numbers {
    /// Rows `at..at + n` into `out` (exactly `n` values, NaN for a null); `defs` is scratch.
    fn tile(&mut self, at: usize, n: usize, out: &mut Vec<f64>, defs: &mut Vec<i16>) -> std::result::Result<(), String> {
        out.clear();
        let (reader, max_def, rows) = match self {
            Numbers::Whole(v) => {
                out.extend_from_slice(&v[at..at + n]);
                return Ok(());
            }
            Numbers::Pages(doubles) => return doubles.tile(n, out),
            Numbers::Doubles { reader, max_def, rows } => (reader, *max_def, *rows),
        };
        defs.clear();
        let mut read = 0;
        while read < n {
            let (records, _, _) = reader.read_records(n - read, (max_def > 0).then_some(&mut *defs), None, out).map_err(|e| e.to_string())?;
            if records == 0 {
                return Err(format!("the row group says {rows} rows but holds {}", at + read));
            }
            read += records;
        }
        if max_def > 0 && out.len() < n {
            parquet_doubles::spread_nulls(out, 0, n, |i| defs[i] == max_def);
        }
        Ok(())
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

/// Rows per tile of the decode and the columns-to-rows copy: 32 columns of a tile take 256 KiB.
const TILE_ROWS: usize = 1024;

/// Values per piece handed on (2 MiB): a row group is handed on in pieces that stay in cache
/// from the decode to the node, instead of as one block read back from memory. A row group of
/// pyarrow's default million rows was hundreds of MiB (8 GiB for 1,000 columns), faulted in
/// afresh. The pieces depend on the file alone. (4,000,000 x 32 on 2 ranks, row groups of 2^17
/// rows: 2 MiB pieces took 0.94x the time of 4 MiB ones, 1 MiB ones 0.97-0.99x of 2 MiB.)
const PIECE_VALUES: usize = 1 << 18;

/// Where [`read`] hands the rows: `(values, text, rows, first_row)`: the numeric columns
/// row-major (NaN for a null), the text columns' fields row by row, the row count and the index
/// of the first row in the file. A row group comes in one or more pieces of whole rows.
pub type Sink<'a> = dyn FnMut(&[f64], &[String], usize, u64) -> Result<()> + 'a;

/// Read row groups `groups` of `foot`'s file: columns `numeric` as numbers, `text` as text.
pub fn read(path: &Path, foot: &Footer, groups: Range<usize>, numeric: &[usize], text: &[usize], rank: usize, sink: &mut Sink) -> Result<()> {
    let sizes = (TILE_ROWS, (PIECE_VALUES / numeric.len().max(1)).max(TILE_ROWS));
    read_sized(path, foot, groups, numeric, text, rank, sizes, sink)
}

/// [`read`] with `(tile rows, piece rows)` of one's choice (tests take small ones).
#[allow(clippy::too_many_arguments)]
pub(super) fn read_sized(
    path: &Path,
    foot: &Footer,
    groups: Range<usize>,
    numeric: &[usize],
    text: &[usize],
    rank: usize,
    (tile_rows, piece_rows): (usize, usize),
    sink: &mut Sink,
) -> Result<()> {
    let first = foot.groups[..groups.start].iter().sum();
    let mut decoder = Decoder { path, foot, numeric, text, rank, groups, first, open: None, tile_rows, piece_rows };
    // Two sets of buffers, each reused by every other piece (fresh ones would fault in new
    // pages each time): the next piece is decoded on another thread while `sink` works on this
    // one.
    let (mut this, mut ahead) = (Decoded::new(numeric.len()), Decoded::new(numeric.len()));
    let mut more = decoder.next(&mut this)?;
    while more {
        let (done, read_ahead) = std::thread::scope(|s| {
            let reader = s.spawn(|| decoder.next(&mut ahead));
            let done = sink(&this.vals, &this.fields, this.rows, this.first);
            (done, reader.join().expect("the decoding thread does not panic"))
        });
        done?;
        more = read_ahead?;
        std::mem::swap(&mut this, &mut ahead);
    }
    Ok(())
}

/// Reads a run of row groups a piece at a time.
struct Decoder<'a> {
    path: &'a Path,
    foot: &'a Footer,
    numeric: &'a [usize],
    text: &'a [usize],
    rank: usize,
    /// The row groups not yet opened.
    groups: Range<usize>,
    /// The file's index of the next row to hand on.
    first: u64,
    /// The row group being read.
    open: Option<Open>,
    /// Rows per tile of the decode, and per piece handed on.
    tile_rows: usize,
    piece_rows: usize,
}

/// A row group being read: its index, its rows, the rows handed on, a reader per numeric column.
struct Open {
    g: usize,
    rows: usize,
    at: usize,
    sources: Vec<Numbers>,
    /// Text columns, read whole (row by row: `text.len()` fields per row).
    fields: Vec<String>,
}

impl Decoder<'_> {
    fn err(&self, msg: String) -> Error {
        Error::data(self.rank, self.path.display().to_string(), None, msg)
    }

    /// The next piece into `into`; false when there are no rows left.
    fn next(&mut self, into: &mut Decoded) -> Result<bool> {
        loop {
            if let Some(open) = self.open.as_mut().filter(|o| o.at < o.rows) {
                let w = self.numeric.len();
                let n = self.piece_rows.min(open.rows - open.at);
                let (foot, numeric, g) = (self.foot, self.numeric, open.g);
                let what = |k: usize, e: String| {
                    Error::data(self.rank, self.path.display().to_string(), None, format!("column '{}' in row group {g}: {e}", foot.names[numeric[k]]))
                };
                let Decoded { cols, defs, vals, fields, rows, first } = into;
                // Decoded a tile of rows at a time, every column in turn, and the tile's columns
                // turned into rows while they are still in cache.
                // Every value is written below: no need to zero a reused buffer.
                vals.resize(n * w, 0.0);
                for r0 in (0..n).step_by(self.tile_rows) {
                    let r1 = (r0 + self.tile_rows).min(n);
                    for (k, source) in open.sources.iter_mut().enumerate() {
                        source.tile(open.at + r0, r1 - r0, &mut cols[k], defs).map_err(|e| what(k, e))?;
                    }
                    rows_from_columns(cols, &mut vals[r0 * w..r1 * w]);
                }
                let nt = self.text.len();
                fields.clear();
                fields.extend_from_slice(&open.fields[open.at * nt..(open.at + n) * nt]);
                (*rows, *first) = (n, self.first);
                open.at += n;
                self.first += n as u64;
                return Ok(true);
            }
            let Some(g) = self.groups.next() else { return Ok(false) };
            self.open = Some(self.open_group(g)?);
        }
    }

    /// Open row group `g`: a reader for each numeric column, and the text columns read whole.
    fn open_group(&self, g: usize) -> Result<Open> {
        let (foot, rows) = (self.foot, self.foot.groups[g] as usize);
        let group = foot.reader.get_row_group(g).map_err(|e| self.err(format!("row group {g}: {e}")))?;
        let what = |j: usize| move |e: String| self.err(format!("column '{}' in row group {g}: {e}", foot.names[j]));
        let mut sources = Vec::with_capacity(self.numeric.len());
        for &j in self.numeric {
            match foot.numbers(&*group, j, rows).map_err(what(j))? {
                Some(source) => sources.push(source),
                None => {
                    return Err(
                        self.err(format!("column '{}' holds text, not numbers (--exclude leaves it out; a classifier takes it as its label)", foot.names[j]))
                    )
                }
            }
        }
        let nt = self.text.len();
        let mut fields = vec![String::new(); rows * nt];
        for (k, &j) in self.text.iter().enumerate() {
            let texts: Vec<Option<String>> = match foot.column(&*group, j, rows).map_err(what(j))? {
                Column::Text(t) => t,
                Column::Numbers(n) => n.into_iter().map(|v| (!v.is_nan()).then(|| crate::io::number_label(v))).collect(),
            };
            for (i, t) in texts.into_iter().enumerate() {
                let Some(t) = t else {
                    let row = self.first + i as u64 + 1;
                    return Err(self.err(format!("row {row} of column '{}' is null", foot.names[j])));
                };
                fields[i * nt + k] = t;
            }
        }
        Ok(Open { g, rows, at: 0, sources, fields })
    }
}

/// Columns `cols` (each as long as `vals` has rows) into the row-major `vals`.
fn rows_from_columns(cols: &[Vec<f64>], vals: &mut [f64]) {
    let w = cols.len();
    // Eight columns at a time: one 64-byte store per row instead of eight scattered ones.
    let mut k = 0;
    while k + 8 <= w {
        let c: [&[f64]; 8] = std::array::from_fn(|i| &cols[k + i][..vals.len() / w]);
        for (i, row) in vals.chunks_exact_mut(w).enumerate() {
            row[k..k + 8].copy_from_slice(&[c[0][i], c[1][i], c[2][i], c[3][i], c[4][i], c[5][i], c[6][i], c[7][i]]);
        }
        k += 8;
    }
    for (k, col) in cols.iter().enumerate().skip(k) {
        for (row, v) in vals.chunks_exact_mut(w).zip(col) {
            row[k] = *v;
        }
    }
}

/// A piece of rows: per numeric column a tile of its values, definition levels (scratch), the
/// rows row-major, the text fields, the row count and the file's index of the first row.
struct Decoded {
    cols: Vec<Vec<f64>>,
    defs: Vec<i16>,
    vals: Vec<f64>,
    fields: Vec<String>,
    rows: usize,
    first: u64,
}

impl Decoded {
    fn new(numeric: usize) -> Self {
        Decoded { cols: vec![Vec::new(); numeric], defs: Vec::new(), vals: Vec::new(), fields: Vec::new(), rows: 0, first: 0 }
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
