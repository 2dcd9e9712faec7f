//! The plain pass: this rank's rows streamed chunk by chunk from its source (the shard files, or
//! rows in memory), and with `cache_data` kept after the first pass and replayed from memory.

use super::pass::{Group, Pass};
use crate::comm::{agree, Comm};
use crate::error::Result;
use crate::io::{Chunk, Origin};
use crate::log::Log;
use crate::progress::Progress;
use ndarray::Array2;

/// Hands a rank's rows to a visitor chunk by chunk (memory-mapped NPY views when asked and
/// possible): returns (rows, rows skipped).
pub(super) type RowSource<'a> = Box<dyn FnMut(bool, &mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> + 'a>;

/// A streamed source, and the rows it kept.
pub(super) struct Stream<'a> {
    source: RowSource<'a>,
    /// This rank's bytes and all ranks', for the progress bar.
    bytes: (u64, u64),
    /// Keep the rows of the first pass in memory for the next ones.
    keep: bool,
    kept: Option<Kept>,
}

/// The rows of the first pass, with its counts.
struct Kept {
    chunks: Vec<OwnedChunk>,
    rows: u64,
    skipped: u64,
}

impl<'a> Stream<'a> {
    /// A stream of `source`'s rows (`bytes`: this rank's and all ranks', for progress);
    /// `keep`: keep them in memory after the first pass.
    pub fn new(source: RowSource<'a>, bytes: (u64, u64), keep: bool) -> Self {
        Stream { source, bytes, keep, kept: None }
    }

    /// Whether the rows are in memory (a later pass of `cache_data`).
    pub fn in_memory(&self) -> bool {
        self.kept.is_some()
    }
}

impl Pass for Stream<'_> {
    fn run(&mut self, comm: &dyn Comm, group: &mut Group, log: &Log) -> Result<(u64, u64)> {
        let mut bar = match self.kept {
            None => Progress::start(log, format!("reading for {}", group.label()), comm.size(), self.bytes.0, self.bytes.1),
            Some(_) => None,
        };
        let mapped = group.mapped();
        let mut visit = |chunk: &Chunk| -> Result<()> {
            Progress::chunk(&mut bar, chunk);
            group.feed(comm, chunk)
        };
        let local = match &self.kept {
            Some(k) => k.chunks.iter().try_for_each(|c| visit(&c.view())).map(|_| (k.rows, k.skipped)),
            None if self.keep => {
                let mut chunks = Vec::new();
                let read = (self.source)(false, &mut |c| {
                    chunks.push(OwnedChunk::from(c));
                    visit(c)
                });
                if let Ok((rows, skipped)) = read {
                    self.kept = Some(Kept { chunks, rows, skipped });
                }
                read
            }
            None => (self.source)(mapped, &mut visit),
        };
        drop(bar);
        agree(comm, local)
    }
}

/// A chunk kept in memory by `cache_data`.
struct OwnedChunk {
    x: Array2<f64>,
    y: Array2<f64>,
    labels: Vec<String>,
    segment_start: bool,
    origin: Option<Origin>,
}

impl OwnedChunk {
    fn from(c: &Chunk) -> Self {
        OwnedChunk { x: c.x.to_owned(), y: c.y.to_owned(), labels: c.labels.to_vec(), segment_start: c.segment_start, origin: c.origin.cloned() }
    }

    fn view(&self) -> Chunk<'_> {
        Chunk {
            x: self.x.view(),
            y: self.y.view(),
            labels: &self.labels,
            kept: &[],
            segment_start: self.segment_start,
            origin: self.origin.as_ref(),
            mapped: None,
        }
    }
}
