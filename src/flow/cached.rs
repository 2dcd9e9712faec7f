//! The pass through the per-shard cache (`train --cache DIR`, [`crate::cache`]): per shard, its
//! stored partials or a read of the shard (stored afterwards); the group's statistics are then
//! the shards' merged in shard order, whether they came from the cache or not, so a warm run
//! gives the cold run's bits.

use super::pass::{Group, Pass};
use crate::cache::{context, Entry, Lookup, ShardCache};
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Origin};
use crate::log::Log;
use crate::nodes::Node;
use crate::progress::Progress;

/// A pass of these files through this cache.
pub(super) struct ThroughCache<'a> {
    /// The files.
    pub data: &'a Dataset,
    /// The cache.
    pub store: &'a ShardCache,
}

/// Whether a pass of `group` can go through the cache: every node keeps per-shard partials and
/// none keeps rows.
pub(super) fn applies(group: &Group) -> bool {
    !group.mapped() && group.nodes.iter().all(|n| n.keeps_partials())
}

impl Pass for ThroughCache<'_> {
    fn run(&mut self, comm: &dyn Comm, group: &mut Group, log: &Log) -> Result<(u64, u64)> {
        let data = self.data;
        let mut bar = Progress::start(log, format!("reading for {}", group.label()), comm.size(), data.local_bytes, data.total_bytes);
        let local = self.read(comm, group, &mut bar);
        drop(bar);
        let (rows, skipped, hits, damaged) = agree(comm, local)?;
        let mut counts = [hits as f64, damaged as f64, data.sources.len() as f64];
        comm.allreduce_sum(&mut counts);
        log.info(format!(
            "--cache {}: {} of {} shards from the cache{}",
            self.store.dir().display(),
            counts[0],
            counts[2],
            if counts[1] > 0.0 { format!(" ({} damaged entries ignored and rewritten)", counts[1]) } else { String::new() }
        ));
        Ok((rows, skipped))
    }
}

impl ThroughCache<'_> {
    /// This rank's shards, each from the cache or read (and stored). Returns (rows, skipped,
    /// shards from the cache, damaged entries). Local.
    fn read(&self, comm: &dyn Comm, group: &mut Group, bar: &mut Option<Progress>) -> Result<(u64, u64, u64, u64)> {
        let (data, store) = (self.data, self.store);
        let context = context(group.done, group.nodes, data);
        let (mut rows, mut skipped, mut hits, mut damaged, mut before) = (0, 0, 0, 0, 0);
        let take = |nodes: &mut [Box<dyn Node>]| -> Result<Vec<Vec<u8>>> { nodes.iter_mut().map(|n| n.take_partial()).collect() };
        for src in &data.sources {
            let key = store.key(&context, src, comm.rank())?;
            // The shards so far, set aside: the group reads this shard into empty statistics.
            let acc = take(group.nodes)?;
            let entry = match store.load(&key) {
                Lookup::Hit(e) if e.parts.len() == group.nodes.len() => {
                    hits += 1;
                    e
                }
                found => {
                    damaged += u64::from(!matches!(found, Lookup::Miss));
                    let (r, s) = data.only(src).for_each_chunk(&mut |c| {
                        // Progress counts the bytes of the shards before this one too.
                        let origin = c.origin.map(|o| Origin { read: o.read + before, ..o.clone() });
                        Progress::chunk(bar, &Chunk { origin: origin.as_ref(), ..*c });
                        group.feed(comm, c)
                    })?;
                    let e = Entry { rows: r, skipped: s, parts: take(group.nodes)? };
                    store.store(&key, &e, comm.rank())?;
                    e
                }
            };
            for ((n, a), p) in group.nodes.iter_mut().zip(&acc).zip(&entry.parts) {
                n.merge_partial(a)?;
                n.merge_partial(p).map_err(|e| {
                    Error::Fit(format!(
                        "rank {}: the --cache entry {} (of {}) does not fit: {e}; remove it and run again",
                        comm.rank(),
                        store.entry_path(&key).display(),
                        src.path.display()
                    ))
                })?;
            }
            rows += entry.rows;
            skipped += entry.skipped;
            before += crate::io::source_bytes(src);
        }
        Ok((rows, skipped, hits, damaged))
    }
}
