//! Output that never leaves a half-written file: everything goes to a temporary name in the
//! target directory and is renamed into place only when complete (and, for per-rank shards,
//! only when every rank succeeded).

use super::npy::NpyWriter;
use super::Format;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Write `bytes` to `path` atomically (temp file + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8], rank: usize) -> Result<()> {
    let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
    let tmp = temp_name(path);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(err)
}

enum Sink {
    Csv(BufWriter<File>, Vec<u8>),
    Npy(NpyWriter),
}

/// A rank's output shard, written under a temporary name until [`ShardWriter::commit`].
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    sink: Option<Sink>,
    cols: usize,
    rank: usize,
    labels: Option<(usize, Vec<String>)>,
}

impl ShardWriter {
    /// Start writing `path` (format by extension) with the given column names.
    pub fn create(path: &Path, names: &[String], rank: usize) -> Result<Self> {
        let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = temp_name(path);
        let file = File::create(&tmp).map_err(err)?;
        let sink = match Format::from_path(path) {
            Format::Npy => Sink::Npy(NpyWriter::create(file, names.len()).map_err(err)?),
            Format::Csv => {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                let mut hdr = csv::WriterBuilder::new().from_writer(Vec::new());
                hdr.write_record(names).map_err(|e| err(std::io::Error::other(e)))?;
                w.write_all(&hdr.into_inner().map_err(|e| err(std::io::Error::other(e.to_string())))?).map_err(err)?;
                Sink::Csv(w, Vec::new())
            }
        };
        Ok(ShardWriter { path: path.to_path_buf(), tmp, sink: Some(sink), cols: names.len(), rank, labels: None })
    }

    /// Write column `col` (which holds class indices) as the class names, in CSV output.
    pub fn with_labels(mut self, col: usize, names: Vec<String>) -> Self {
        self.labels = Some((col, names));
        self
    }

    fn err(&self, e: std::io::Error) -> Error {
        Error::Output { rank: self.rank, path: self.path.display().to_string(), msg: e.to_string() }
    }

    /// Append rows (row-major, one value per column).
    pub fn write_rows(&mut self, vals: &[f64]) -> Result<()> {
        let cols = self.cols;
        let labels = self.labels.as_ref();
        let res = match self.sink.as_mut().expect("writer already finished") {
            Sink::Npy(w) => w.write_rows(vals),
            Sink::Csv(w, line) => {
                let mut fmt = ryu::Buffer::new();
                let mut res = Ok(());
                for row in vals.chunks_exact(cols.max(1)) {
                    line.clear();
                    for (j, v) in row.iter().enumerate() {
                        if j > 0 {
                            line.push(b',');
                        }
                        if let Some((_, names)) = labels.filter(|(c, _)| *c == j) {
                            let name = &names[*v as usize];
                            if name.contains([',', '"', '\n']) {
                                line.extend_from_slice(format!("\"{}\"", name.replace('"', "\"\"")).as_bytes());
                            } else {
                                line.extend_from_slice(name.as_bytes());
                            }
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
            Some(Sink::Csv(w, _)) => w.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()),
            None => Ok(()),
        };
        res.map_err(|e| self.err(e))
    }

    /// Move the finished file into place.
    pub fn commit(self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| self.err(e))
    }

    /// Remove the temporary file (after an error on any rank).
    pub fn abort(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}
