//! Shard input and output: which files a rank reads, their layout, column selection, chunked
//! streaming, and atomic per-rank output.
//!
//! `--data` can be
//! - a pattern with `{rank}` (or `{}`) and optionally `{size}`: each rank reads its own file;
//! - a glob (`data/*.csv`) or a directory: the sorted files are cut into contiguous blocks, one
//!   block per rank (so a rank may own several files, or none);
//! - one file: ranks split it (CSV by byte ranges aligned to line starts, NPY by rows).
//!
//! Concatenating rank 0's rows, rank 1's rows, ... always gives the rows of the files in sorted
//! order, whatever the number of ranks.

pub mod csv;
pub mod npy;
mod write;

pub use self::csv::NanPolicy;
pub use write::{commit_all, remove_temporaries, resolve_path, write_atomic, Committed, ShardWriter};

use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use ndarray::{ArrayView2, ShapeBuilder};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File format of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text.
    Csv,
    /// NumPy `.npy`.
    Npy,
}

impl Format {
    /// Format from a path's extension (`.npy` → NPY, anything else → CSV).
    pub fn from_path(p: &Path) -> Format {
        match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npy") => Format::Npy,
            _ => Format::Csv,
        }
    }
}

/// How to find and parse the input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataOptions {
    /// The `--data` spec (pattern, glob, directory or file).
    pub spec: String,
    /// Force a format instead of choosing by extension.
    pub format: Option<Format>,
    /// Force header on/off for CSV (auto-detected when `None`).
    pub header: Option<bool>,
    /// CSV delimiter (`,` by default, tab for `.tsv`).
    pub delimiter: Option<u8>,
    /// Column selection (`x0,x3`, `0-5`, names and indices mixed); when `None`, all columns
    /// that are not targets or the label.
    pub columns: Option<String>,
    /// Numeric target columns (regression), by name or index.
    pub targets: Vec<String>,
    /// Class-label column (kept as text), by name or index.
    pub label: Option<String>,
    /// NaN/inf handling.
    #[serde(skip)]
    pub nan: NanPolicy,
    /// Bytes per read block (memory per rank is about 2× this plus the node state).
    #[serde(skip)]
    pub block_bytes: usize,
    /// Threads that parse CSV blocks in parallel inside this rank.
    #[serde(skip)]
    pub threads: usize,
    /// Accept a `{rank}` pattern that also matches files beyond the last rank (they are not read).
    #[serde(skip)]
    pub allow_unread: bool,
    /// Where `columns` came from, for messages when it was not the user's `--columns` (e.g.
    /// "the model's input columns").
    #[serde(skip)]
    pub columns_from: Option<String>,
    /// Columns carried through as text (`execute --keep`), by name or index, in output order.
    #[serde(skip)]
    pub keep: Vec<String>,
}

impl DataOptions {
    /// Options with defaults for a `--data` spec.
    pub fn new(spec: impl Into<String>) -> Self {
        DataOptions {
            spec: spec.into(),
            format: None,
            header: None,
            delimiter: None,
            columns: None,
            targets: Vec::new(),
            label: None,
            nan: NanPolicy::Error,
            block_bytes: 4 << 20,
            threads: 1,
            allow_unread: false,
            columns_from: None,
            keep: Vec::new(),
        }
    }
}

/// One piece of input a rank reads: a whole file, or part `i` of `n` of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// `Some((i, n))` when the file is split among `n` ranks and this is part `i`.
    pub part: Option<(usize, usize)>,
}

const DATA_EXTENSIONS: [&str; 4] = ["csv", "tsv", "txt", "npy"];

/// Substitute `{rank}`, `{}` and `{size}` in a pattern.
pub fn expand_pattern(spec: &str, rank: usize, size: usize) -> String {
    spec.replace("{rank}", &rank.to_string()).replace("{}", &rank.to_string()).replace("{size}", &size.to_string())
}

/// Why `path` cannot be read as a shard, if it cannot: it does not exist, or it is not a regular
/// file after following symlinks (a directory, a FIFO, a dangling or looping symlink, ...).
pub fn not_a_shard(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let link = std::fs::symlink_metadata(path);
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("is a directory, not a data file".into()),
        Ok(m) if m.file_type().is_fifo() => Some("is a FIFO (named pipe), not a data file".into()),
        Ok(m) if m.file_type().is_socket() => Some("is a socket, not a data file".into()),
        Ok(_) => Some("is a device, not a data file".into()),
        Err(e) if e.raw_os_error() == Some(40) => Some("is a symlink loop (ELOOP)".into()),
        Err(_) if link.as_ref().is_ok_and(|l| l.file_type().is_symlink()) => {
            let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            Some(format!("is a symlink to {to:?}, which does not exist"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file or directory".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// For a `{rank}` pattern: the files that match it for ranks `size, size+1, ...`, which a job of
/// `size` ranks would silently leave unread (found with a glob, so `part7` counts even when
/// `part4..6` are absent).
fn unread_rank_files(spec: &str, size: usize) -> Vec<(usize, PathBuf)> {
    let spec = spec.replace("{size}", &size.to_string()).replace("{}", "{rank}");
    let literal: Vec<String> = spec.split("{rank}").map(glob::Pattern::escape).collect();
    let Ok(paths) = glob::glob(&literal.join("[0-9]*")) else { return Vec::new() };
    let prefix = spec.split("{rank}").next().unwrap_or("");
    let mut out: Vec<(usize, PathBuf)> = paths
        .flatten()
        .filter_map(|p| {
            let text = p.to_str()?;
            let digits: String = text.strip_prefix(prefix)?.chars().take_while(char::is_ascii_digit).collect();
            let k = digits.parse::<usize>().ok()?;
            // Exactly the pattern's expansion for rank k (every `{rank}` agrees, no leading zeros).
            (k >= size && spec.replace("{rank}", &k.to_string()) == text).then_some((k, p))
        })
        .collect();
    out.sort();
    out
}

/// The sources rank `rank` of `size` reads for `spec` (see the module docs for the rules).
/// With `allow_unread` false, a `{rank}` pattern that also matches files for ranks beyond the
/// last is an error (those files would silently not be read).
pub fn shard_sources(spec: &str, rank: usize, size: usize, allow_unread: bool) -> Result<Vec<Source>> {
    let per_rank = spec.contains("{rank}") || spec.contains("{}");
    let spec_x = expand_pattern(spec, rank, size);
    let bad = |p: &Path, why: String| Error::data(rank, p.display().to_string(), None, why);
    if per_rank {
        let p = PathBuf::from(&spec_x);
        if let Some(why) = not_a_shard(&p) {
            return Err(bad(&p, why));
        }
        let unread = if allow_unread { Vec::new() } else { unread_rank_files(spec, size) };
        if let Some((_, first)) = unread.first() {
            let top = unread.iter().map(|(k, _)| *k).max().unwrap_or(0);
            return Err(Error::Param(format!(
                "--data {spec:?} also matches {} file(s) for ranks {size} and above ({}{}), which a job of {size} rank(s) \
                 would not read: run with `mpirun -n {}`, give a glob (e.g. {:?}) to share the files among the ranks, \
                 or pass --allow-unread to read only the first {size}",
                unread.len(),
                first.display(),
                if unread.len() > 1 { ", ..." } else { "" },
                top + 1,
                spec.replace("{rank}", "*").replace("{}", "*"),
            )));
        }
        return Ok(vec![Source { path: p, part: None }]);
    }
    let files: Vec<PathBuf> = if spec_x.contains(['*', '?', '[']) {
        let paths = glob::glob(&spec_x).map_err(|e| Error::Param(format!("bad glob {spec_x:?}: {e}")))?;
        let mut v = Vec::new();
        for p in paths {
            let p = p.map_err(|e| bad(e.path(), format!("cannot be read: {}", e.error())))?;
            if let Some(why) = not_a_shard(&p) {
                return Err(bad(&p, format!("{why} (it matches --data {spec_x:?})")));
            }
            v.push(p);
        }
        if v.is_empty() {
            return Err(Error::data(rank, spec_x, None, "no files match this pattern"));
        }
        v.sort();
        v
    } else {
        let p = PathBuf::from(&spec_x);
        if p.is_dir() {
            let rd = std::fs::read_dir(&p).map_err(|e| Error::data(rank, &spec_x, None, e.to_string()))?;
            let mut v: Vec<PathBuf> = Vec::new();
            for e in rd {
                let e = e.map_err(|e| Error::data(rank, &spec_x, None, e.to_string()))?;
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                // Hidden entries (editor swap files, our own temporaries) are not data.
                if name.starts_with('.') {
                    continue;
                }
                let data_ext = path.extension().and_then(|e| e.to_str()).is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
                match not_a_shard(&path) {
                    None if data_ext => v.push(path),
                    // Other regular files (README, notes) are not shards.
                    None => {}
                    Some(why) if path.is_dir() => {
                        return Err(bad(&path, format!(
                            "{why}; directory mode reads the .csv/.tsv/.txt/.npy files of {spec_x} and does not descend \
                             into sub-directories (give a glob such as '{spec_x}/*/*.csv', or move the entry)"
                        )))
                    }
                    Some(why) => return Err(bad(&path, format!("{why}; in --data {spec_x} every entry must be readable (remove or fix it)"))),
                }
            }
            if v.is_empty() {
                return Err(Error::data(rank, spec_x, None, "directory holds no .csv/.tsv/.txt/.npy files"));
            }
            v.sort();
            v
        } else if let Some(why) = not_a_shard(&p) {
            return Err(bad(&p, why));
        } else {
            return Ok(vec![Source { path: p, part: Some((rank, size)) }]);
        }
    };
    // Contiguous blocks of files keep the global row order independent of the rank count.
    let (lo, hi) = (rank * files.len() / size, (rank + 1) * files.len() / size);
    Ok(files[lo..hi].iter().map(|p| Source { path: p.clone(), part: None }).collect())
}

/// Columns of a file as found on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Fields per row.
    pub ncols: usize,
    /// Header names (CSV with a header), else `None`.
    pub names: Option<Vec<String>>,
}

impl Layout {
    /// Column names, `x0, x1, ...` when the file has none.
    pub fn column_names(&self) -> Vec<String> {
        self.names.clone().unwrap_or_else(|| (0..self.ncols).map(|j| format!("x{j}")).collect())
    }
}

/// Parse a `--columns` spec against a layout into column indices.
pub fn select_columns(spec: Option<&str>, layout: &Layout) -> std::result::Result<Vec<usize>, String> {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok((0..layout.ncols).collect());
    };
    let names = layout.column_names();
    let index_of = |tok: &str| -> std::result::Result<usize, String> {
        if let Some(i) = layout.names.as_ref().and_then(|n| n.iter().position(|x| x == tok)) {
            return Ok(i);
        }
        if let Ok(i) = tok.parse::<usize>() {
            return if i < layout.ncols { Ok(i) } else { Err(format!("column index {i} is out of range (the data has {} columns)", layout.ncols)) };
        }
        if let Some(i) = names.iter().position(|x| x == tok) {
            return Ok(i);
        }
        Err(format!("no column named '{tok}' (columns are: {})", names.join(", ")))
    };
    let mut out = Vec::new();
    for tok in spec.split(',').map(str::trim) {
        match tok.split_once('-') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && layout.names.as_ref().is_none_or(|n| !n.iter().any(|x| x == tok)) => {
                let (i, j) = (index_of(a.trim())?, index_of(b.trim())?);
                if i > j {
                    return Err(format!("empty column range '{tok}'"));
                }
                out.extend(i..=j);
            }
            _ => out.push(index_of(tok)?),
        }
    }
    for (k, j) in out.iter().enumerate() {
        if out[..k].contains(j) {
            return Err(format!("column '{}' is selected twice", names[*j]));
        }
    }
    Ok(out)
}

/// One block of a rank's rows: the feature columns, the target columns (regression) and the
/// class labels (classification), row-aligned.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Features, rows × d.
    pub x: ArrayView2<'a, f64>,
    /// Targets, rows × t (t = 0 without targets).
    pub y: ArrayView2<'a, f64>,
    /// Labels, one per row (empty without a label column).
    pub labels: &'a [String],
    /// The `keep` columns' text, row by row ([`Dataset::keep`] per row; empty without).
    pub kept: &'a [String],
    /// True for the first chunk of a shard file (or file part): time-series nodes (SFA) do not
    /// difference across this boundary.
    pub segment_start: bool,
    /// Where the rows come from (file, and where in it), so a node's complaint about a row can
    /// name the file and line; `None` for rows that are not read from a file.
    pub origin: Option<&'a Origin>,
    /// The memory map `x` points into, when it does (see [`Dataset::for_each_chunk_mapped`]):
    /// a node may keep `x` by holding the map. Whoever hands on a chunk with another `x` must
    /// clear it.
    pub mapped: Option<&'a npy::Mapped>,
}

impl<'a> Chunk<'a> {
    /// Features only.
    pub fn new(x: ArrayView2<'a, f64>) -> Self {
        Chunk { x, y: ArrayView2::from_shape((x.nrows(), 0), &[]).unwrap(), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.x.nrows()
    }
}

/// Where a chunk's rows are in their file.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The rank that read them.
    pub rank: usize,
    /// The file.
    pub path: PathBuf,
    /// CSV: the byte offset the chunk's lines start at; NPY: the index of its first row.
    pub start: u64,
    /// Whether `start` is a CSV byte offset (else an NPY row index).
    pub csv: bool,
    /// Bytes of this rank's input read before this chunk (over all its sources), for progress.
    pub read: u64,
}

impl Origin {
    /// The data error "`msg`" about row `row` (0-based) of the chunk, located at its file and
    /// line (CSV) or row (NPY).
    pub fn error(&self, row: usize, msg: impl Into<String>) -> Error {
        let path = self.path.display().to_string();
        if self.csv {
            return Error::data(self.rank, path, csv::line_of_row(&self.path, self.start, row as u64), msg);
        }
        Error::data(self.rank, path, None, format!("row {}: {}", self.start + row as u64 + 1, msg.into()))
    }
}

/// Names of what a node sees: feature columns, target columns and the label column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Feature names.
    pub x: Vec<String>,
    /// Target names.
    pub y: Vec<String>,
    /// Label column name.
    pub label: Option<String>,
}

impl Schema {
    /// Features only.
    pub fn features(names: &[String]) -> Self {
        Schema { x: names.to_vec(), ..Default::default() }
    }
}

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
    let len = std::fs::metadata(&src.path).map_or(0, |m| m.len());
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
        Format::Csv => Ok(csv::probe(&src.path, delimiter(opts, &src.path), opts.header, rank)?
            .map(|l| Layout { ncols: l.ncols, names: l.names })),
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
            return Err(Error::data(rank, path, Some(1), format!(
                "header differs from rank {rank0}'s {path0}: column {} is {} here but {} there (all files must have \
                 the same columns in the same order)", j + 1, quote(a[j].as_bytes()), quote(b[j].as_bytes()))));
        }
    }
    Ok(())
}

/// Input text for a message: quoted, and cut to about 80 characters with the full byte count,
/// so a message never carries a megabyte field.
pub fn quote(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= MAX {
        return format!("'{text}'");
    }
    let head: String = text.chars().take(MAX).collect();
    format!("'{head}…' ({} bytes)", bytes.len())
}

fn delimiter(opts: &DataOptions, p: &Path) -> u8 {
    opts.delimiter.unwrap_or_else(|| if p.extension().is_some_and(|e| e == "tsv") { b'\t' } else { b',' })
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
        let rank = comm.rank();
        let local = shard_sources(&opts.spec, rank, comm.size(), opts.allow_unread).and_then(|sources| {
            // Every file is checked against this rank's first, and the ranks' firsts against
            // each other below: so every file is checked, whatever the rank count.
            let mut layout: Option<(Layout, String)> = None;
            for s in &sources {
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
        // Every rank learns every rank's layout, so all ranks reach the same verdict.
        let all: Vec<Option<(Layout, String)>> = crate::comm::allgather(comm, &layout);
        let first = all.iter().enumerate().find_map(|(r, l)| l.as_ref().map(|l| (r, l)));
        let Some((r0, (agreed, path0))) = first else {
            return Err(Error::Fit(format!("no data: the input {:?} holds no rows on any rank", opts.spec)));
        };
        for (r, l) in all.iter().enumerate() {
            if let Some((l, p)) = l {
                check_same_layout(l, p, r, agreed, path0, r0)?;
            }
        }
        let pick = |what: &str, spec: &str| -> Result<Vec<usize>> {
            select_columns(Some(spec), agreed).map_err(|m| Error::Param(format!("{what}: {m}")))
        };
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
        let columns = match opts.columns.as_deref() {
            Some(spec) => pick(opts.columns_from.as_deref().unwrap_or("--columns"), spec)?,
            None => (0..agreed.ncols).filter(|j| !side.contains(j) && !keep.contains(j)).collect(),
        };
        if let Some(j) = columns.iter().find(|j| side.contains(j)) {
            return Err(Error::Param(format!(
                "column '{}' is both a feature and a target/label", agreed.column_names()[*j])));
        }
        if columns.is_empty() {
            return Err(Error::Param("no feature column is selected".into()));
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
        Schema {
            x: self.names(),
            y: self.targets.iter().map(|&j| all[j].clone()).collect(),
            label: self.label.map(|j| all[j].clone()),
        }
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
            f(&Chunk { x: all.slice(ndarray::s![.., ..d]), y: all.slice(ndarray::s![.., d..]), labels, kept: &kept, segment_start: first, origin: Some(origin), mapped })
        };
        fn packed(vals: &[f64], n: usize, width: usize) -> ArrayView2<'_, f64> {
            ArrayView2::from_shape((n, width), vals).unwrap()
        }
        let mut read_so_far = 0u64; // bytes of the sources before this one
        for src in &self.sources {
            segment_start.set(true);
            let pstr = src.path.display().to_string();
            let (this, before) = (source_bytes(src), read_so_far);
            read_so_far += this;
            let Some(layout) = probe(src, &self.opts, self.rank)? else { continue };
            if layout.ncols != self.layout.ncols {
                return Err(Error::data(self.rank, pstr, Some(1), format!(
                    "has {} columns but the other shards have {}", layout.ncols, self.layout.ncols)));
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
                    // The selected columns as one contiguous range, when they are one (e.g. `0-31`):
                    // then a row's selection is one slice, viewed in place or copied at once.
                    let range = numeric.first().map(|&a| a..a + numeric.len()).filter(|r| numeric.iter().copied().eq(r.clone()));
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
                            _ => {
                                sel.clear();
                                for row in vals.chunks_exact(h.cols) {
                                    match &range {
                                        Some(r) => sel.extend_from_slice(&row[r.clone()]),
                                        None => sel.extend(numeric.iter().map(|&j| row[j])),
                                    }
                                }
                                (packed(&sel, n, width), None)
                            }
                        };
                        labels.clear();
                        if !text_cols.is_empty() {
                            labels.extend(vals.chunks_exact(h.cols).flat_map(|r| text_cols.iter().map(|&j| number_label(r[j]))));
                        }
                        // A branch-free scan first (it vectorises); the position only on the rare error path.
                        let finite = |v: &[f64]| v.iter().fold(true, |ok, v| ok & v.is_finite());
                        let all_finite = match block.as_slice() {
                            Some(v) => finite(v),
                            None => block.rows().into_iter().fold(true, |ok, r| ok & finite(r.to_slice().unwrap())),
                        };
                        if !all_finite {
                            let (i, k) = block.indexed_iter().find(|(_, v)| !v.is_finite()).map(|(ij, _)| ij).unwrap();
                            if self.opts.nan == NanPolicy::Error {
                                return Err(Error::data(self.rank, &pstr, None, format!(
                                    "row {} column {} holds {} (use --nan skip to drop such rows)",
                                    first + i as u64 + 1, numeric[k], block[[i, k]])));
                            }
                            // Hand on each run of finite rows with its own origin, so a node's
                            // complaint about a row still names the file's row.
                            let finite_row: Vec<bool> = block.rows().into_iter().map(|r| r.iter().all(|v| v.is_finite())).collect();
                            let nt = text_cols.len();
                            let mut i = 0;
                            while i < n {
                                if !finite_row[i] {
                                    skipped += 1;
                                    i += 1;
                                    continue;
                                }
                                let j = (i..n).find(|&j| !finite_row[j]).unwrap_or(n);
                                let run: Vec<f64> = block.slice(ndarray::s![i..j, ..]).iter().copied().collect();
                                let text = if labels.is_empty() { &[][..] } else { &labels[i * nt..j * nt] };
                                let origin = Origin { rank: self.rank, path: src.path.clone(), start: first + i as u64, csv: false, read: read(first + i as u64) };
                                emit(packed(&run, j - i, width), text, None, &origin)?;
                                i = j;
                            }
                            return Ok(());
                        }
                        let origin = Origin { rank: self.rank, path: src.path.clone(), start: first, csv: false, read: read(first) };
                        emit(block, &labels, mapped, &origin)
                    })?;
                }
                Format::Csv => {
                    let delim = delimiter(&self.opts, &src.path);
                    let l = csv::probe(&src.path, delim, self.opts.header, self.rank)?.expect("probed above");
                    let (begin, end) = match src.part {
                        Some((i, n)) => {
                            let span = l.len - l.data_start;
                            let at = |k: usize| l.data_start + span * k as u64 / n as u64;
                            let align = |p| csv::align_to_line(&src.path, p, l.data_start, l.len)
                                .map_err(|e| Error::data(self.rank, &pstr, None, e.to_string()));
                            (align(at(i))?, align(at(i + 1))?)
                        }
                        None => (l.data_start, l.len),
                    };
                    let mut slot = vec![None; l.ncols];
                    for (k, &j) in numeric.iter().enumerate() {
                        slot[j] = Some(k);
                    }
                    let mut plan = csv::FieldPlan::new(l.ncols, slot, width, self.layout.column_names(), self.label);
                    for &j in &text_cols {
                        plan.text[j] = true;
                    }
                    skipped += csv::read_range(&src.path, begin, end, self.opts.block_bytes, self.opts.threads, delim, &plan, self.opts.nan, self.rank, &mut |vals, labels, n, offset| {
                        let origin = Origin { rank: self.rank, path: src.path.clone(), start: offset, csv: true, read: before + (offset - begin).min(this) };
                        emit(packed(vals, n as usize, width), labels, None, &origin)
                    })?;
                }
            }
        }
        Ok((rows, skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_selection() {
        let l = Layout { ncols: 6, names: Some(["a", "b", "c", "d-e", "e", "f"].map(String::from).to_vec()) };
        assert_eq!(select_columns(None, &l).unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(select_columns(Some("b,e-f"), &l).unwrap(), vec![1, 4, 5]);
        assert_eq!(select_columns(Some("0-2, 5"), &l).unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(select_columns(Some("d-e"), &l).unwrap(), vec![3]); // a name with a dash
        assert!(select_columns(Some("a,a"), &l).unwrap_err().contains("twice"));
        assert!(select_columns(Some("6"), &l).unwrap_err().contains("out of range"));
        assert!(select_columns(Some("zz"), &l).unwrap_err().contains("no column named 'zz'"));
        let anon = Layout { ncols: 3, names: None };
        assert_eq!(select_columns(Some("x1,2"), &anon).unwrap(), vec![1, 2]);
    }

    #[test]
    fn npy_rows_after_skipped_nan_rows_keep_their_file_row_numbers() {
        let dir = std::env::temp_dir().join(format!("flowmpi-npyorigin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vals: Vec<f64> = (0..21).map(|i| if i == 4 * 3 + 1 || i == 1 { f64::NAN } else { i as f64 }).collect();
        let mut w = npy::NpyWriter::create(std::fs::File::create(dir.join("x.npy")).unwrap(), 3).unwrap();
        w.write_rows(&vals).unwrap();
        w.finish().unwrap();
        let mut opts = DataOptions::new(dir.join("x.npy").display().to_string());
        opts.nan = NanPolicy::Skip;
        let data = Dataset::open(&crate::comm::SingleComm, &opts).unwrap();
        let mut seen = Vec::new();
        let (rows, skipped) = data
            .for_each_chunk(&mut |c| {
                let start = c.origin.unwrap().start as usize;
                for (i, r) in c.x.rows().into_iter().enumerate() {
                    // Row i of the chunk is the file's row start + i.
                    assert_eq!(r.to_vec(), vals[(start + i) * 3..(start + i + 1) * 3].to_vec());
                    seen.push(start + i);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!((rows, skipped), (5, 2));
        assert_eq!(seen, [1, 2, 3, 5, 6]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn npy_and_csv_read_the_same_selected_columns_and_nan_rows() {
        let dir = std::env::temp_dir().join(format!("flowmpi-npysel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 7 rows x 5 columns; row 4 has a NaN in column 2.
        let vals: Vec<f64> = (0..35).map(|i| if i == 4 * 5 + 2 { f64::NAN } else { i as f64 * 0.5 - 3.0 }).collect();
        let mut w = npy::NpyWriter::create(std::fs::File::create(dir.join("x.npy")).unwrap(), 5).unwrap();
        w.write_rows(&vals).unwrap();
        w.finish().unwrap();
        let text: String = vals.chunks(5).map(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
        std::fs::write(dir.join("x.csv"), text).unwrap();
        // (values, rows skipped, chunks handed out as views of a memory map, chunks)
        let stream = |file: &str, columns: &str, nan: NanPolicy, map: bool| -> Result<(Vec<f64>, u64, usize, usize)> {
            let mut opts = DataOptions::new(dir.join(file).display().to_string());
            opts.columns = Some(columns.to_string());
            opts.nan = nan;
            opts.block_bytes = 64; // several blocks
            let data = Dataset::open(&crate::comm::SingleComm, &opts)?;
            let (mut got, mut mapped, mut chunks) = (Vec::new(), 0, 0);
            let mut visit = |c: &Chunk| {
                got.extend(c.x.iter());
                chunks += 1;
                if let Some(m) = c.mapped {
                    // The view really lies in the map, at the offset the map reports.
                    let at = m.offset_of(c.x.as_ptr()).unwrap();
                    assert_eq!(m.values()[at], c.x[[0, 0]]);
                    mapped += 1;
                }
                Ok(())
            };
            let (_, skipped) = if map { data.for_each_chunk_mapped(&mut visit)? } else { data.for_each_chunk(&mut visit)? };
            Ok((got, skipped, mapped, chunks))
        };
        let read = |file: &str, columns: &str, nan: NanPolicy| stream(file, columns, nan, false).map(|r| (r.0, r.1));
        for columns in ["1-3", "3,2", "0-4"] {
            let want = read("x.csv", columns, NanPolicy::Skip).unwrap();
            assert_eq!(read("x.npy", columns, NanPolicy::Skip).unwrap(), want, "{columns}");
            // Mapped: the same values; contiguous selections are views of the map (the one-row
            // block holding the NaN row hands on nothing); others are copies.
            let (got, skipped, mapped, chunks) = stream("x.npy", columns, NanPolicy::Skip, true).unwrap();
            assert_eq!((got, skipped), want, "{columns} mapped");
            assert_eq!(mapped, if columns == "3,2" { 0 } else { chunks }, "{columns}: {mapped} of {chunks} chunks mapped");
            assert!(stream("x.npy", columns, NanPolicy::Error, true).unwrap_err().to_string().contains("row 5 column 2 holds NaN"));
            let width = want.0.len() / 6;
            assert_eq!(want.1, 1, "{columns}");
            let sel = select_columns(Some(columns), &Layout { ncols: 5, names: None }).unwrap();
            assert_eq!(want.0[..width], sel.iter().map(|&j| vals[j]).collect::<Vec<_>>()[..], "{columns}");
            let e = read("x.npy", columns, NanPolicy::Error).unwrap_err().to_string();
            assert!(e.contains("row 5 column 2 holds NaN"), "{e}");
        }
        // Columns without the NaN: nothing skipped.
        assert_eq!(read("x.npy", "3-4", NanPolicy::Error).unwrap().1, 0);
        // One file split by rows over 1..4 ranks: the pieces in rank order are the whole file.
        for ranks in 1..=4 {
            let mut opts = DataOptions::new(dir.join("x.npy").display().to_string());
            opts.columns = Some("3-4".into());
            let parts = crate::comm::run_threads(ranks, |c| {
                let mut got: Vec<f64> = Vec::new();
                Dataset::open(c, &opts).unwrap().for_each_chunk(&mut |ch| {
                    got.extend(ch.x.iter());
                    Ok(())
                }).unwrap();
                got
            });
            let want: Vec<f64> = vals.chunks(5).flat_map(|r| r[3..5].to_vec()).collect();
            assert_eq!(parts.concat(), want, "{ranks} ranks");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shard_assignment_is_contiguous_and_covers_every_file() {
        let dir = std::env::temp_dir().join(format!("flowmpi-shards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..5 {
            std::fs::write(dir.join(format!("s{k}.csv")), "a\n1\n").unwrap();
        }
        let spec = dir.join("s*.csv").display().to_string();
        for size in 1..=7 {
            let all: Vec<PathBuf> = (0..size).flat_map(|r| shard_sources(&spec, r, size, false).unwrap()).map(|s| s.path).collect();
            let want: Vec<PathBuf> = (0..5).map(|k| dir.join(format!("s{k}.csv"))).collect();
            assert_eq!(all, want, "{size} ranks");
        }
        let one = shard_sources(&dir.join("s3.csv").display().to_string(), 2, 4, false).unwrap();
        assert_eq!(one[0].part, Some((2, 4)));
        assert_eq!(expand_pattern("p{rank}of{size}_{}.csv", 3, 8), "p3of8_3.csv");
        assert!(shard_sources(&dir.join("nope{rank}.csv").display().to_string(), 1, 2, false).unwrap_err().to_string().contains("rank 1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod fuzz {
    //! Random and mutated inputs for the CSV and NPY readers, a fixed number of cases so CI runs
    //! them every time: reading must end in rows or in an error, never in a panic, and must not
    //! allocate beyond a small multiple of the file (a header's claims are not trusted).
    use super::*;

    /// xorshift64*: reproducible cases without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545F4914F6CDD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn read_all(path: &Path, opts: &DataOptions) -> Result<u64> {
        let data = Dataset::open(&crate::comm::SingleComm, opts)?;
        let mut n = 0u64;
        data.for_each_chunk(&mut |c| {
            n += c.rows() as u64;
            assert!(c.x.iter().all(|v| v.is_finite()), "{}: a non-finite value reached a node", path.display());
            Ok(())
        })?;
        Ok(n)
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut npy = Vec::new();
        let mut w = npy::NpyWriter::create(tempfile::tempfile().unwrap(), 3).unwrap();
        w.write_rows(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        drop(w);
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        npy.extend_from_slice(b"\x93NUMPY\x01\x00");
        npy.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
        npy.extend_from_slice(dict.as_bytes());
        npy.push(b'\n');
        for v in [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0] {
            npy.extend_from_slice(&v.to_le_bytes());
        }
        vec![
            b"a,b,c\n1,2,3\n4.5,-6e3,\"7\"\n# c\n\n8,NA,9\r\n".to_vec(),
            b"\xef\xbb\xbf1;2\n3;4\n".to_vec(),
            b"x,label\n1,cat\n2,\"dog, big\"\n".to_vec(),
            npy,
        ]
    }

    #[test]
    fn readers_survive_random_and_mutated_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0x9E3779B97F4A7C15);
        let seeds = seeds();
        for case in 0..1500 {
            let mut bytes = seeds[case % seeds.len()].clone();
            match rng.below(3) {
                // Flip, insert and delete bytes.
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(bytes.len());
                        match rng.below(3) {
                            0 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
                            1 => bytes.insert(at, b",;\n\"#.-e0123456789NA\xff\x00"[rng.below(21)]),
                            _ if !bytes.is_empty() => {
                                bytes.remove(at);
                            }
                            _ => {}
                        }
                    }
                }
                // Truncate.
                1 => bytes.truncate(rng.below(bytes.len() + 1)),
                // Random bytes.
                _ => bytes = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            }
            let ext = if case % seeds.len() == 3 { "npy" } else { "csv" };
            let path = dir.path().join(format!("f{case}.{ext}"));
            std::fs::write(&path, &bytes).unwrap();
            for (label, nan) in [(None, NanPolicy::Error), (Some("1".to_string()), NanPolicy::Skip)] {
                let mut opts = DataOptions::new(path.display().to_string());
                opts.block_bytes = 16 + rng.below(64);
                opts.threads = 1 + rng.below(3);
                opts.nan = nan;
                if ext == "csv" {
                    opts.delimiter = Some(if case % seeds.len() == 1 { b';' } else { b',' });
                    opts.label = label;
                }
                let got = std::panic::catch_unwind(|| read_all(&path, &opts));
                let res = got.unwrap_or_else(|_| panic!("case {case}: the reader panicked on {bytes:?}"));
                if let Err(e) = res {
                    // Every error is a sentence, not a dump of the input.
                    assert!(e.to_string().len() < 1000, "case {case}: {e}");
                }
            }
        }
    }
}
