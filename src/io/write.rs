//! Output shards that never leave a half-written file: each rank writes a temporary
//! ([`super::atomic`]) that is renamed into place only when every rank has its temporary
//! complete, and undone on every rank if any rank's rename fails.

use super::atomic::{create_temp, discard_temp, forget_temp, live};
use super::npy::NpyWriter;
use super::parquet_write::{Kind, ParquetWriter};
use super::Format;
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

/// Whether `a` and `b` name one file: the same resolved path, or (existing) the same device and
/// inode, so a hard link or another spelling counts too.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    resolve_path(a) == resolve_path(b) || id(a).is_some_and(|i| id(b) == Some(i))
}

/// `path` made absolute, with symlinks of its existing part resolved and `.`/`..` of the rest
/// applied, without touching the file system: two paths that name the same file compare equal
/// even before the file exists.
pub fn resolve_path(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    // Walk from the root: while the path exists, follow it as the kernel would (symlinks
    // resolved); past the first missing component, apply `.` and `..` lexically.
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for c in abs.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => {
                out.push(n);
                if exists {
                    match out.canonicalize() {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    out
}

enum Sink {
    Csv(BufWriter<File>, Vec<u8>),
    Npy(NpyWriter),
    Parquet(Box<PendingParquet>),
}

/// A Parquet output whose schema is made on the first write: which columns are text (kept
/// columns, class names) is known only after [`ShardWriter::with_labels`] and
/// [`ShardWriter::with_text`].
struct PendingParquet {
    file: Option<File>,
    names: Vec<String>,
    indices: bool,
    writer: Option<ParquetWriter>,
}

impl PendingParquet {
    fn get(&mut self, text: usize, labels: Option<&(usize, Vec<String>)>) -> std::io::Result<&mut ParquetWriter> {
        if self.writer.is_none() {
            let kinds: Vec<Kind> = match self.indices {
                true => vec![Kind::Index],
                false => {
                    (0..self.names.len()).map(|j| if j < text || labels.is_some_and(|(c, _)| c + text == j) { Kind::Text } else { Kind::Double }).collect()
                }
            };
            let file = self.file.take().expect("the file of a Parquet output");
            self.writer = Some(ParquetWriter::create(file, &self.names, &kinds)?);
        }
        Ok(self.writer.as_mut().expect("made above"))
    }
}

/// A rank's output shard, written under a temporary name until [`ShardWriter::commit`]; a
/// writer dropped without `commit` (an error on any rank) removes its temporary.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    sink: Option<Sink>,
    cols: usize,
    rank: usize,
    labels: Option<(usize, Vec<String>)>,
    /// Text columns written before the values (`execute --keep`).
    text: usize,
}

/// A shard renamed into place whose job may still fail on another rank: [`Committed::keep`]
/// when every rank committed, [`Committed::undo`] otherwise (puts the previous file back).
pub struct Committed {
    path: PathBuf,
    /// A hard link to the file that was replaced, if there was one.
    backup: Option<PathBuf>,
}

impl Committed {
    /// Every rank committed: drop the backup of the replaced file.
    pub fn keep(self) {
        if let Some(b) = &self.backup {
            discard_temp(b);
        }
    }

    /// Another rank failed: restore the replaced file, or remove the new one if there was none.
    pub fn undo(self) {
        match &self.backup {
            Some(b) => {
                let _ = std::fs::rename(b, &self.path);
                forget_temp(b);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A CSV field: quoted when it holds a delimiter, a quote, a line break or edge spaces.
fn push_text(line: &mut Vec<u8>, t: &str) {
    if t.contains([',', '"', '\n', '\r']) || t.trim() != t {
        line.extend_from_slice(format!("\"{}\"", t.replace('"', "\"\"")).as_bytes());
    } else {
        line.extend_from_slice(t.as_bytes());
    }
}

impl ShardWriter {
    /// Start writing `path` (format by extension) with the given column names.
    pub fn create(path: &Path, names: &[String], rank: usize) -> Result<Self> {
        Self::open(path, names, false, rank)
    }

    /// Start writing global row indices to `path`, given to [`ShardWriter::write_indices`]: an
    /// int64 vector in `.npy` (what numpy's argsort returns), else CSV with one column `index`.
    pub fn create_indices(path: &Path, rank: usize) -> Result<Self> {
        Self::open(path, &["index".to_string()], true, rank)
    }

    fn open(path: &Path, names: &[String], indices: bool, rank: usize) -> Result<Self> {
        let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        if path.is_dir() {
            return Err(err(std::io::Error::other("it is a directory")));
        }
        // Inputs only: a plain CSV under a compressed or HDF5 name would mislead.
        if crate::io::compressed::Codec::of(path).is_some() || Format::from_path(path) == Format::Hdf5 {
            return Err(err(std::io::Error::other("flowmpi writes .csv, .npy and .parquet files; compressed CSV and HDF5 are read, not written")));
        }
        let (file, tmp) = create_temp(path).map_err(err)?;
        let sink = (|| {
            Ok(match Format::from_path(path) {
                Format::Npy if indices => Sink::Npy(NpyWriter::create_indices(file)?),
                Format::Npy => Sink::Npy(NpyWriter::create(file, names.len())?),
                Format::Parquet => Sink::Parquet(Box::new(PendingParquet { file: Some(file), names: names.to_vec(), indices, writer: None })),
                Format::Csv | Format::Hdf5 => {
                    let mut w = BufWriter::with_capacity(1 << 20, file);
                    let mut hdr = csv::WriterBuilder::new().from_writer(Vec::new());
                    hdr.write_record(names).map_err(std::io::Error::other)?;
                    w.write_all(&hdr.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?)?;
                    Sink::Csv(w, Vec::new())
                }
            })
        })();
        match sink {
            Ok(sink) => Ok(ShardWriter { path: path.to_path_buf(), tmp, sink: Some(sink), cols: names.len(), rank, labels: None, text: 0 }),
            Err(e) => {
                discard_temp(&tmp);
                Err(err(e))
            }
        }
    }

    /// Append global row indices (a writer from [`ShardWriter::create_indices`]).
    pub fn write_indices(&mut self, idx: &[u64]) -> Result<()> {
        let res = match self.sink.as_mut().expect("writer already finished") {
            Sink::Npy(w) => w.write_indices(idx),
            Sink::Parquet(p) => p.get(0, None).and_then(|w| w.push_indices(idx)),
            Sink::Csv(w, line) => {
                line.clear();
                for i in idx {
                    line.extend_from_slice(format!("{i}\n").as_bytes());
                }
                w.write_all(line)
            }
        };
        res.map_err(|e| self.err(e))
    }

    /// Write column `col` (which holds class indices) as the class names, in CSV output.
    pub fn with_labels(mut self, col: usize, names: Vec<String>) -> Self {
        self.labels = Some((col, names));
        self
    }

    /// The first `n` of the columns are text, given row by row to [`ShardWriter::write_rows_with_text`]
    /// (in `.npy` output they must be numbers).
    pub fn with_text(mut self, n: usize) -> Self {
        self.text = n;
        self
    }

    fn err(&self, e: std::io::Error) -> Error {
        Error::Output { rank: self.rank, path: self.path.display().to_string(), msg: e.to_string() }
    }

    /// Append rows (row-major, one value per column).
    pub fn write_rows(&mut self, vals: &[f64]) -> Result<()> {
        self.write_rows_with_text(&[], vals)
    }

    /// Append rows: `text` holds the text columns' fields ([`ShardWriter::with_text`] per row),
    /// `vals` the other columns' values, row-major. In `.npy` output a text field that is not a
    /// number is [`Error::Row`] (the row within this call).
    pub fn write_rows_with_text(&mut self, text: &[String], vals: &[f64]) -> Result<()> {
        let (m, cols) = (self.text, self.cols - self.text);
        let labels = self.labels.as_ref();
        let rows = vals.len() / cols.max(1);
        let res = match self.sink.as_mut().expect("writer already finished") {
            Sink::Npy(w) if m == 0 => w.write_rows(vals),
            Sink::Npy(w) => {
                let mut all = Vec::with_capacity(rows * (m + cols));
                for (i, (t, v)) in text.chunks_exact(m).zip(vals.chunks_exact(cols.max(1))).enumerate() {
                    for f in t {
                        let x = fast_float2::parse::<f64, _>(f.trim()).map_err(|_| Error::Row {
                            row: i,
                            msg: format!(
                                "--keep: {} is not a number, and .npy output holds only numbers (write CSV to keep text)",
                                crate::io::quote(f.as_bytes())
                            ),
                        })?;
                        all.push(x);
                    }
                    all.extend_from_slice(&v[..cols]);
                }
                w.write_rows(&all)
            }
            Sink::Parquet(p) => p.get(m, labels).and_then(|w| {
                for (i, row) in vals.chunks_exact(cols.max(1)).enumerate() {
                    let t = &text[i * m..(i + 1) * m];
                    let name = |j: usize| match labels {
                        Some((c, names)) if j == m + c => names[row[*c] as usize].clone(),
                        _ => t[j].clone(),
                    };
                    w.push_row(|j| row[j - m], name)?;
                }
                Ok(())
            }),
            Sink::Csv(w, line) => {
                let mut fmt = ryu::Buffer::new();
                let mut res = Ok(());
                for (i, row) in vals.chunks_exact(cols.max(1)).enumerate() {
                    line.clear();
                    for (k, t) in text[i * m..(i + 1) * m].iter().enumerate() {
                        if k > 0 {
                            line.push(b',');
                        }
                        push_text(line, t);
                    }
                    for (j, v) in row.iter().enumerate() {
                        if j > 0 || m > 0 {
                            line.push(b',');
                        }
                        if let Some((_, names)) = labels.filter(|(c, _)| *c == j) {
                            push_text(line, &names[*v as usize]);
                            continue;
                        }
                        let s = if v.is_finite() { fmt.format_finite(*v) } else { fmt.format(*v) };
                        line.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
                    }
                    line.push(b'\n');
                    if let Err(e) = w.write_all(line) {
                        res = Err(e);
                        break;
                    }
                }
                res
            }
        };
        res.map_err(|e| self.err(e))
    }

    /// Flush and close the temporary file (still under its temporary name).
    pub fn finish(&mut self) -> Result<()> {
        let res = match self.sink.take() {
            Some(Sink::Npy(w)) => w.finish(),
            Some(Sink::Parquet(mut p)) => p.get(self.text, self.labels.as_ref()).map(|_| ()).and_then(|()| p.writer.take().expect("made").finish()),
            Some(Sink::Csv(w, _)) => w.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()),
            None => Ok(()),
        };
        res.map_err(|e| self.err(e))
    }

    /// Move the finished file into place, keeping a hard link to the file it replaces until
    /// the caller knows whether every rank committed.
    pub fn commit(self) -> Result<Committed> {
        let backup = if self.path.is_file() {
            let b = self.tmp.with_extension("old");
            std::fs::hard_link(&self.path, &b).map_err(|e| self.err(e)).inspect_err(|_| discard_temp(&self.tmp))?;
            live().push(b.clone());
            Some(b)
        } else {
            None
        };
        match std::fs::rename(&self.tmp, &self.path) {
            Ok(()) => {
                forget_temp(&self.tmp);
                Ok(Committed { path: self.path.clone(), backup })
            }
            Err(e) => {
                discard_temp(&self.tmp);
                if let Some(b) = &backup {
                    discard_temp(b);
                }
                Err(self.err(e))
            }
        }
    }

    /// Remove the temporary file (after an error on any rank).
    pub fn abort(self) {
        discard_temp(&self.tmp);
    }
}

/// The end of a collective write: finish this rank's `writers` unless `written` (its writing)
/// failed, and once every rank's files are complete, move them all into place. If any rank
/// fails at any step, every rank's outputs stay as they were: temporaries are removed and
/// renames undone (collective; returns `written`'s value on success).
pub fn commit_all<T>(comm: &dyn Comm, mut writers: Vec<ShardWriter>, written: Result<T>) -> Result<T> {
    let finished = written.and_then(|v| writers.iter_mut().try_for_each(ShardWriter::finish).map(|_| v));
    let value = match agree(comm, finished) {
        Ok(v) => v,
        Err(e) => {
            writers.into_iter().for_each(ShardWriter::abort);
            return Err(e);
        }
    };
    let mut done = Vec::with_capacity(writers.len());
    let mut failed = None;
    for w in writers {
        match failed {
            Some(_) => w.abort(),
            None => match w.commit() {
                Ok(c) => done.push(c),
                Err(e) => failed = Some(e),
            },
        }
    }
    match agree(comm, failed.map_or(Ok(()), Err)) {
        Ok(()) => {
            done.into_iter().for_each(Committed::keep);
            Ok(value)
        }
        Err(e) => {
            done.into_iter().rev().for_each(Committed::undo);
            Err(e)
        }
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        // After `commit` the temporary is gone (renamed); otherwise it must not outlive us.
        if live().contains(&self.tmp) {
            discard_temp(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_name_the_file_whatever_the_spelling() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("a")).unwrap();
        let d = dir.canonicalize().unwrap();
        assert_eq!(resolve_path(&dir.join("a/../x.csv")), d.join("x.csv"));
        assert_eq!(resolve_path(&dir.join("new/r0/../x.csv")), d.join("new/x.csv"));
        assert_eq!(resolve_path(&dir.join("new/r1/../x.csv")), d.join("new/x.csv"));
        assert_eq!(resolve_path(&dir.join("./a/./y.csv")), d.join("a/y.csv"));
        std::os::unix::fs::symlink(dir.join("a"), dir.join("link")).unwrap();
        assert_eq!(resolve_path(&dir.join("link/z.csv")), d.join("a/z.csv"));
    }
}
