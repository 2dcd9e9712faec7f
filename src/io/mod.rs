//! Shard input and output: which files a rank reads, their layout, column selection, chunked
//! streaming, and atomic per-rank output.
//!
//! `--data` can be
//! - a pattern with `{rank}` (or `{}`) and optionally `{size}`: each rank reads its own file;
//! - a glob (`data/*.csv`) or a directory: rank 0 lists the sorted files and they are dealt out
//!   in order by bytes ([`shards::assign`]): a rank may own several files, parts of files, or
//!   one part of a big file;
//! - one file: ranks split it (CSV by byte ranges aligned to line starts, NPY by rows).
//!
//! Concatenating rank 0's rows, rank 1's rows, ... always gives the rows of the files in sorted
//! order, whatever the number of ranks.

mod atomic;
mod columns;
pub mod compressed;
pub mod csv;
#[cfg(feature = "hdf5")]
pub mod hdf5;
#[cfg(not(feature = "hdf5"))]
#[path = "hdf5_missing.rs"]
pub mod hdf5;
pub mod npy;
mod options;
mod outputs;
pub mod parquet;
mod parquet_doubles;
mod parquet_write;
mod pyliteral;
mod shards;
mod table;
mod write;

pub use self::csv::NanPolicy;
mod chunk;
pub use atomic::{remove_temporaries, write_atomic, write_atomic_with};
pub use chunk::{Chunk, Origin, Schema};
pub use columns::{abbreviate_names, select_columns, Layout};
pub use options::{DataOptions, Format};
pub use outputs::{check_not_an_input, check_output_dir, check_output_paths, rank_path};
pub use shards::{assign, expand_pattern, list, not_a_shard, per_rank, shard_sources, Listing, SizedFile, Source};
pub use table::Table;
pub use write::{commit_all, resolve_path, same_file, Committed, ShardWriter};

use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use ndarray::{ArrayView2, ShapeBuilder};
use std::path::Path;

/// A rank's view of the input: its sources, the agreed layout and the selected columns.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Options it was opened with.
    pub opts: DataOptions,
    /// What this rank reads.
    pub sources: Vec<Source>,
    /// The layout all ranks agreed on.
    pub layout: Layout,
    /// Selected feature column indices into the layout.
    pub columns: Vec<usize>,
    /// Target column indices.
    pub targets: Vec<usize>,
    /// Label column index.
    pub label: Option<usize>,
    /// Columns carried through as text (`DataOptions::keep`), in output order.
    pub keep: Vec<usize>,
    /// Bytes of input this rank reads (its part of each file).
    pub local_bytes: u64,
    /// Bytes of input all ranks read.
    pub total_bytes: u64,
    rank: usize,
}

/// The bytes of `src` this rank reads: the file's size, or its share of it for a part.
pub(crate) fn source_bytes(src: &Source) -> u64 {
    let len = src.bytes;
    match src.part {
        Some((i, n)) => len * (i as u64 + 1) / n as u64 - len * i as u64 / n as u64,
        None => len,
    }
}

fn probe(src: &Source, opts: &DataOptions, rank: usize) -> Result<Option<Layout>> {
    match opts.format.unwrap_or_else(|| Format::from_path(&src.path)) {
        Format::Npy => {
            let h = npy::read_header(&src.path, rank)?;
            Ok(Some(Layout { ncols: h.cols, names: None }))
        }
        Format::Csv => Ok(csv::probe(&src.path, delimiter(opts, &src.path), opts.header, rank)?.map(|l| Layout { ncols: l.ncols, names: l.names })),
        Format::Parquet => {
            let foot = parquet::footer(&src.path, rank)?;
            Ok(Some(Layout { ncols: foot.names.len(), names: Some(foot.names) }))
        }
        Format::Hdf5 => {
            let t = hdf5::open(&src.path, opts.dataset.as_deref(), rank)?;
            Ok(Some(Layout { ncols: t.cols, names: t.names }))
        }
    }
}

/// Files must agree on the column count and, when both have a header, on the names in order
/// (columns are matched by position: a reordered header would silently mix columns).
fn check_same_layout(l: &Layout, path: &str, rank: usize, first: &Layout, path0: &str, rank0: usize) -> Result<()> {
    if l.ncols != first.ncols {
        return Err(Error::data(rank, path, None, format!("has {} columns but rank {rank0}'s {path0} has {}", l.ncols, first.ncols)));
    }
    if let (Some(a), Some(b)) = (&l.names, &first.names) {
        if a != b {
            let j = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
            // This file's own text is named only when it is one of the first file's column
            // names (a reordered header): a file the user never meant to read (a symlink to a
            // token among the data) must not have its first line printed into a job log.
            let here = match b.iter().position(|n| *n == a[j]) {
                Some(k) => format!("{} here (column {} there)", quote(a[j].as_bytes()), k + 1),
                None => format!("another name here ({} bytes)", a[j].len()),
            };
            return Err(Error::data(
                rank,
                path,
                Some(1),
                format!(
                    "header differs from rank {rank0}'s {path0}: column {} is {} there but {here} (all files must have \
                 the same columns in the same order)",
                    j + 1,
                    quote(b[j].as_bytes())
                ),
            ));
        }
    }
    Ok(())
}

/// Input text for a message: quoted, cut to about 80 characters with the full byte count (a
/// message never carries a megabyte field), and [`printable`].
pub fn quote(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= MAX {
        return format!("'{}'", printable(&text));
    }
    let head: String = text.chars().take(MAX).collect();
    format!("'{}…' ({} bytes)", printable(&head), bytes.len())
}

/// `text` with control and invisible characters escaped (`\t`, `\r`, `\u{1b}`, `\u{a0}`):
/// an ESC sequence from the data must not reach the terminal (it cleared it and set its
/// title), and a no-break space, zero-width space or byte-order mark makes `cannot parse '15'`
/// unreadable.
pub fn printable(text: &str) -> String {
    let invisible = |c: char| matches!(c, '\u{a0}' | '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}');
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn delimiter(opts: &DataOptions, p: &Path) -> u8 {
    opts.delimiter.unwrap_or_else(|| if compressed::inner(p).extension().is_some_and(|e| e == "tsv") { b'\t' } else { b',' })
}

/// The numeric fields (`numeric`, or the same as one `range`) of rows of `cols` values (NPY,
/// HDF5), packed into `sel`.
fn select<'a>(vals: &[f64], cols: usize, numeric: &[usize], range: &Option<std::ops::Range<usize>>, sel: &'a mut Vec<f64>) -> &'a [f64] {
    sel.clear();
    for row in vals.chunks_exact(cols) {
        match range {
            Some(r) => sel.extend_from_slice(&row[r.clone()]),
            None => sel.extend(numeric.iter().map(|&j| row[j])),
        }
    }
    sel
}

/// The text fields (`text_cols`) of rows of `cols` numbers, as label text, into `labels`.
fn number_labels(vals: &[f64], cols: usize, text_cols: &[usize], labels: &mut Vec<String>) {
    labels.clear();
    if !text_cols.is_empty() {
        labels.extend(vals.chunks_exact(cols).flat_map(|r| text_cols.iter().map(|&j| number_label(r[j]))));
    }
}

/// Label text for a numeric label value (NPY): `3` for 3.0, shortest round-trip otherwise.
fn number_label(v: f64) -> String {
    let mut b = ryu::Buffer::new();
    let s = b.format(v);
    s.strip_suffix(".0").unwrap_or(s).to_string()
}

impl Dataset {
    /// Resolve this rank's sources and agree the column layout with every other rank
    /// (collective: all ranks call it; all fail together on any rank's error).
    pub fn open(comm: &dyn Comm, opts: &DataOptions) -> Result<Dataset> {
        let (rank, size) = (comm.rank(), comm.size());
        let opts = &opts.split_dataset()?;
        if opts.spec.trim().is_empty() {
            return Err(Error::Param("--data is empty: give a file, a directory, a glob or a {rank} pattern".into()));
        }
        // Shared files are listed once, on rank 0, and dealt out from that one listing: ranks
        // that listed a directory each would disagree about a file that appears meanwhile (or
        // on a file system that is not shared), and read rows twice or not at all.
        let lister = per_rank(&opts.spec) || rank == 0;
        let listed = agree(comm, lister.then(|| list(&opts.spec, rank, size, opts.allow_unread)).transpose())?;
        let listing = match listed {
            Some(l @ Listing::PerRank(_)) => l,
            mine => crate::comm::broadcast(comm, 0, mine.as_ref()),
        };
        let local = Ok(assign(&listing, rank, size)).and_then(|sources: Vec<Source>| {
            // Every file is checked against this rank's first, and the ranks' firsts against
            // each other below: so every file is checked, whatever the rank count.
            let mut layout: Option<(Layout, String)> = None;
            for s in &sources {
                if !matches!(listing, Listing::PerRank(_)) {
                    shards::seen_as_listed(s, rank)?;
                }
                let Some(l) = probe(s, opts, rank)? else { continue };
                let p = s.path.display().to_string();
                match &layout {
                    None => layout = Some((l, p)),
                    Some((first, p0)) => check_same_layout(&l, &p, rank, first, p0, rank)?,
                }
            }
            Ok((sources, layout))
        });
        let (sources, layout) = agree(comm, local)?;
        // The first rank with a layout sends it to all; each rank checks its own against it,
        // and all take the lowest failing rank's verdict. (Not an allgather of every layout: a
        // header of millions of names would be held once per rank on every rank.)
        let has: Vec<f64> = crate::comm::allgather_f64(comm, if layout.is_some() { 1.0 } else { 0.0 });
        let Some(r0) = has.iter().position(|h| *h > 0.0) else {
            return Err(Error::Fit(format!("no data: the input {:?} holds no rows on any rank", opts.spec)));
        };
        let (agreed, path0): (Layout, String) = crate::comm::broadcast(comm, r0, layout.as_ref());
        let mine = match &layout {
            Some((l, p)) => check_same_layout(l, p, rank, &agreed, &path0, r0),
            None => Ok(()),
        };
        agree(comm, mine)?;
        drop(layout);
        let (agreed, path0) = (&agreed, &path0);
        let pick = |what: &str, spec: &str| -> Result<Vec<usize>> { select_columns(Some(spec), agreed).map_err(|m| Error::Param(format!("{what}: {m}"))) };
        let targets = if opts.targets.is_empty() { Vec::new() } else { pick("target", &opts.targets.join(","))? };
        let label = match &opts.label {
            Some(l) => Some(pick("label", l)?[0]),
            None => None,
        };
        let keep = if opts.keep.is_empty() { Vec::new() } else { pick("--keep", &opts.keep.join(","))? };
        if label.is_some() && !keep.is_empty() {
            return Err(Error::Param("--keep cannot be combined with a label column".into()));
        }
        let side: Vec<usize> = targets.iter().copied().chain(label).collect();
        let exclude = match opts.exclude.as_deref() {
            Some(spec) => pick("--exclude", spec)?,
            None => Vec::new(),
        };
        let columns: Vec<usize> = match opts.columns.as_deref() {
            Some(spec) => pick(opts.columns_from.as_deref().unwrap_or("--columns"), spec)?,
            None => (0..agreed.ncols).filter(|j| !side.contains(j) && !keep.contains(j)).collect(),
        };
        let columns: Vec<usize> = columns.into_iter().filter(|j| !exclude.contains(j)).collect();
        if let Some(j) = columns.iter().find(|j| side.contains(j)) {
            return Err(Error::Param(format!("column '{}' is both a feature and a target/label", agreed.column_names()[*j])));
        }
        if columns.is_empty() {
            return Err(Error::Param("no feature column is selected".into()));
        }
        let chosen: Vec<usize> = columns.iter().chain(&targets).chain(&label).chain(&keep).copied().collect();
        if let Some(m) = columns::duplicate_name(&chosen, agreed) {
            return Err(Error::data(r0, path0, Some(1), m));
        }
        let local_bytes = sources.iter().map(source_bytes).sum::<u64>();
        let mut total = [local_bytes as f64];
        comm.allreduce_sum(&mut total);
        Ok(Dataset { opts: opts.clone(), sources, layout: agreed.clone(), columns, targets, label, keep, local_bytes, total_bytes: total[0] as u64, rank })
    }

    /// The same view of the data restricted to one of this rank's sources (the per-shard cache
    /// reads shard by shard).
    pub fn only(&self, src: &Source) -> Dataset {
        Dataset { sources: vec![src.clone()], ..self.clone() }
    }

    /// The format `path` is read as (`--format`, else its extension).
    pub fn format_of(&self, path: &Path) -> Format {
        self.opts.format.unwrap_or_else(|| Format::from_path(path))
    }

    /// The rank this view of the data was opened on.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of feature columns.
    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    /// Names of the feature columns.
    pub fn names(&self) -> Vec<String> {
        let all = self.layout.column_names();
        self.columns.iter().map(|&j| all[j].clone()).collect()
    }

    /// Names of features, targets and label.
    pub fn schema(&self) -> Schema {
        let all = self.layout.column_names();
        Schema { x: self.names(), y: self.targets.iter().map(|&j| all[j].clone()).collect(), label: self.label.map(|j| all[j].clone()) }
    }

    /// Stream this rank's rows (in file order) in chunks. Returns (rows read, rows skipped for
    /// NaN). Local: does not communicate, so callers must `agree`.
    pub fn for_each_chunk(&self, f: &mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> {
        self.stream(false, f)
    }

    /// [`Dataset::for_each_chunk`], but native float64 `.npy` inputs are memory-mapped and, when
    /// the selected columns are one contiguous range, the chunks are views into the map
    /// ([`Chunk::mapped`]), so a node that keeps its rows need not copy them. The mapped pages
    /// count in the process's RSS (they are the page cache's, not extra memory); streaming nodes
    /// use the plain reader.
    pub fn for_each_chunk_mapped(&self, f: &mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> {
        self.stream(true, f)
    }

    fn stream(&self, map: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> {
        let (d, t) = (self.dim(), self.targets.len());
        let width = d + t;
        // Numeric fields in row order: features, then targets.
        let numeric: Vec<usize> = self.columns.iter().chain(&self.targets).copied().collect();
        let mut rows = 0u64;
        let mut skipped = 0u64;
        let segment_start = std::cell::Cell::new(true);
        // `all`: the numeric fields of n rows (any row stride, unit column stride).
        // Text fields are read in column order: the label, or the kept columns (never both).
        let text_cols: Vec<usize> = {
            let mut t: Vec<usize> = self.label.iter().chain(&self.keep).copied().collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let keep_at: Vec<usize> = self.keep.iter().map(|j| text_cols.binary_search(j).expect("a text column")).collect();
        let mut kept = Vec::new();
        // `text`: the text fields of the rows, `text_cols.len()` per row.
        let mut emit = |all: ArrayView2<f64>, text: &[String], mapped: Option<&npy::Mapped>, origin: &Origin| -> Result<()> {
            rows += all.nrows() as u64;
            let first = segment_start.replace(false);
            let labels = if keep_at.is_empty() { text } else { &[] };
            kept.clear();
            if !keep_at.is_empty() {
                for row in text.chunks_exact(text_cols.len()) {
                    kept.extend(keep_at.iter().map(|&k| row[k].clone()));
                }
            }
            f(&Chunk {
                x: all.slice(ndarray::s![.., ..d]),
                y: all.slice(ndarray::s![.., d..]),
                labels,
                kept: &kept,
                segment_start: first,
                origin: Some(origin),
                mapped,
            })
        };
        fn packed(vals: &[f64], n: usize, width: usize) -> ArrayView2<'_, f64> {
            ArrayView2::from_shape((n, width), vals).unwrap()
        }
        // Rows read as numbers (NPY, Parquet): a non-finite value (NaN, inf, a Parquet null) is an
        // error naming its row, or with `--nan skip` its row is dropped and each run of finite
        // rows handed on with its own origin, so that a node's complaint still names the row.
        let nt = text_cols.len();
        let nan = self.opts.nan;
        let names = self.layout.column_names();
        let dropped = std::cell::Cell::new(0u64);
        let mut emit_rows = |block: ArrayView2<f64>, labels: &[String], mapped: Option<&npy::Mapped>, origin: Origin| -> Result<()> {
            // A branch-free scan first (it vectorises), in parts on the rank's threads (it is the
            // first touch of a memory-mapped block: its page faults are spread too); the
            // position only on the rare error path.
            let finite = |v: &[f64]| v.iter().fold(true, |ok, v| ok & v.is_finite());
            let all_finite = crate::threads::map_parts(block.nrows(), block.ncols(), |r| {
                let part = block.slice(ndarray::s![r, ..]);
                match part.as_slice() {
                    Some(v) => finite(v),
                    None => part.rows().into_iter().fold(true, |ok, r| ok & finite(r.to_slice().unwrap())),
                }
            })
            .into_iter()
            .all(|ok| ok);
            if all_finite {
                return emit(block, labels, mapped, &origin);
            }
            let (i, k) = block.indexed_iter().find(|(_, v)| !v.is_finite()).map(|(ij, _)| ij).unwrap();
            if nan == NanPolicy::Error {
                let v = block[[i, k]];
                let what = if v.is_nan() { "NaN (a missing value, or a Parquet null)".to_string() } else { v.to_string() };
                return Err(Error::data(
                    origin.rank,
                    origin.path.display().to_string(),
                    None,
                    format!(
                        "row {} column {} ('{}') holds {what} (use --nan skip to drop such rows)",
                        origin.start + i as u64 + 1,
                        numeric[k],
                        names[numeric[k]]
                    ),
                ));
            }
            let finite_row: Vec<bool> = block.rows().into_iter().map(|r| r.iter().all(|v| v.is_finite())).collect();
            let n = block.nrows();
            let mut i = 0;
            while i < n {
                if !finite_row[i] {
                    dropped.set(dropped.get() + 1);
                    i += 1;
                    continue;
                }
                let j = (i..n).find(|&j| !finite_row[j]).unwrap_or(n);
                let run: Vec<f64> = block.slice(ndarray::s![i..j, ..]).iter().copied().collect();
                let text = if labels.is_empty() { &[][..] } else { &labels[i * nt..j * nt] };
                emit(packed(&run, j - i, block.ncols()), text, None, &Origin { start: origin.start + i as u64, ..origin.clone() })?;
                i = j;
            }
            Ok(())
        };
        // The selected columns as one contiguous range, when they are one (e.g. `0-31`): then a
        // row's selection is one slice, viewed in place or copied at once.
        let range = numeric.first().map(|&a| a..a + numeric.len()).filter(|r| numeric.iter().copied().eq(r.clone()));
        let mut read_so_far = 0u64; // bytes of the sources before this one
        for src in &self.sources {
            // A later part of a file split among ranks continues its series (SFA).
            segment_start.set(src.part.is_none_or(|(i, _)| i == 0));
            let pstr = src.path.display().to_string();
            let (this, before) = (source_bytes(src), read_so_far);
            read_so_far += this;
            let Some(layout) = probe(src, &self.opts, self.rank)? else { continue };
            if layout.ncols != self.layout.ncols {
                return Err(Error::data(self.rank, pstr, Some(1), format!("has {} columns but the other shards have {}", layout.ncols, self.layout.ncols)));
            }
            match self.opts.format.unwrap_or_else(|| Format::from_path(&src.path)) {
                Format::Npy => {
                    let h = npy::read_header(&src.path, self.rank)?;
                    let (lo, hi) = match src.part {
                        Some((i, n)) => (h.rows * i as u64 / n as u64, h.rows * (i as u64 + 1) / n as u64),
                        None => (0, h.rows),
                    };
                    let block_rows = (self.opts.block_bytes / (8 * h.cols.max(1))).max(1);
                    let mut sel = Vec::with_capacity(block_rows * width);
                    let mut labels = Vec::new();
                    let row_bytes = h.cols as u64 * h.dtype.bytes as u64;
                    let read = |row: u64| before + ((row - lo) * row_bytes).min(this);
                    npy::read_rows(&src.path, &h, lo, hi, block_rows, self.rank, map, &mut |vals, first, mapped| {
                        let n = vals.len() / h.cols.max(1);
                        let (block, mapped) = match (&range, mapped) {
                            (Some(r), Some(m)) if n > 0 => {
                                let view = ArrayView2::from_shape((n, width).strides((h.cols, 1)), &vals[r.start..]).unwrap();
                                (view, Some(m))
                            }
                            (Some(r), _) if r.len() == h.cols => (packed(vals, n, width), None),
                            _ => (packed(select(vals, h.cols, &numeric, &range, &mut sel), n, width), None),
                        };
                        number_labels(vals, h.cols, &text_cols, &mut labels);
                        let origin = Origin { rank: self.rank, path: src.path.clone(), start: first, csv: false, read: read(first) };
                        emit_rows(block, &labels, mapped, origin)
                    })?;
                }
                Format::Hdf5 => {
                    let t = hdf5::open(&src.path, self.opts.dataset.as_deref(), self.rank)?;
                    let (lo, hi) = match src.part {
                        Some((i, n)) => (t.rows * i as u64 / n as u64, t.rows * (i as u64 + 1) / n as u64),
                        None => (0, t.rows),
                    };
                    let block_rows = (self.opts.block_bytes / (8 * t.cols.max(1))).max(1);
                    let (mut sel, mut labels) = (Vec::with_capacity(block_rows * width), Vec::new());
                    let part_rows = (hi - lo).max(1);
                    hdf5::read_rows(&t, &src.path, lo, hi, block_rows, self.rank, &mut |vals, first| {
                        let n = vals.len() / t.cols.max(1);
                        let block = if range.as_ref().is_some_and(|r| r.len() == t.cols) { vals } else { select(vals, t.cols, &numeric, &range, &mut sel) };
                        number_labels(vals, t.cols, &text_cols, &mut labels);
                        let read = before + ((first - lo) * this / part_rows).min(this);
                        let origin = Origin { rank: self.rank, path: src.path.clone(), start: first, csv: false, read };
                        emit_rows(packed(block, n, width), &labels, None, origin)
                    })?;
                }
                Format::Parquet => {
                    let foot = parquet::footer(&src.path, self.rank)?;
                    let groups = parquet::groups_of(src.part, &foot.groups);
                    let lo: u64 = foot.groups[..groups.start].iter().sum();
                    let part_rows: u64 = foot.groups[groups.clone()].iter().sum::<u64>().max(1);
                    let read = |row: u64| before + ((row - lo) * this / part_rows).min(this);
                    parquet::read(&src.path, &foot, groups, &numeric, &text_cols, self.rank, &mut |vals, text, n, first| {
                        let origin = Origin { rank: self.rank, path: src.path.clone(), start: first, csv: false, read: read(first) };
                        emit_rows(packed(vals, n, width), text, None, origin)
                    })?;
                }
                Format::Csv => {
                    let delim = delimiter(&self.opts, &src.path);
                    let l = csv::probe(&src.path, delim, self.opts.header, self.rank)?.expect("probed above");
                    let (begin, end) = match src.part {
                        // (A compressed file is never split: one part of one is the whole.)
                        Some((i, n)) if n > 1 => {
                            let span = l.len - l.data_start;
                            let at = |k: usize| l.data_start + span * k as u64 / n as u64;
                            let align =
                                |p| csv::align_to_line(&src.path, p, l.data_start, l.len).map_err(|e| Error::data(self.rank, &pstr, None, e.to_string()));
                            (align(at(i))?, align(at(i + 1))?)
                        }
                        _ => (l.data_start, l.len),
                    };
                    let mut slot = vec![None; l.ncols];
                    for (k, &j) in numeric.iter().enumerate() {
                        slot[j] = Some(k);
                    }
                    let mut plan = csv::FieldPlan::new(l.ncols, slot, width, self.layout.column_names(), self.label);
                    for &j in &text_cols {
                        plan.text[j] = true;
                    }
                    skipped += csv::read_range(
                        &src.path,
                        begin,
                        end,
                        self.opts.block_bytes,
                        self.opts.threads,
                        delim,
                        &plan,
                        self.opts.nan,
                        self.rank,
                        &mut |vals, labels, n, offset| {
                            let origin =
                                Origin { rank: self.rank, path: src.path.clone(), start: offset, csv: true, read: before + (offset - begin).min(this) };
                            // (The parser has dealt with missing values: these rows are finite.)
                            emit_rows(packed(vals, n as usize, width), labels, None, origin)
                        },
                    )?;
                }
            }
            shards::unchanged(src, self.rank)?;
        }
        Ok((rows, skipped + dropped.get()))
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
