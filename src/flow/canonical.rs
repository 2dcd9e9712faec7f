//! `train --reproducible`: the same model bits for any rank count and any assignment of the
//! shard files to ranks.
//!
//! Floating-point sums depend on their order, and without this a rank's partial statistics
//! depend on which files it read and the join on how many ranks there are. Here every leaf's
//! partial is computed alone, from empty statistics: a leaf is one of a file's fixed parts of
//! about 1 MiB (rows of an NPY, lines of a CSV; a smaller file is one leaf), the same for any
//! rank count, whether the rank reads the whole file or, with fewer files than ranks, part of
//! it. The leaves' partials are combined in one canonical binary tree over the global order (a
//! node merges its left subtree's partial with its right's), whichever ranks hold them. A rank
//! merges the complete subtrees inside its contiguous run of leaves; rank 0 gathers those (at
//! most about 2·log₂(leaves) per rank) and completes the tree; the join then sees rank 0
//! holding all the statistics and the other ranks none, which every node's join passes through
//! unchanged. The cost: one encode/decode of each leaf's partial, and a gather of O(log leaves)
//! partials per rank instead of a reduction.
//!
//! A node that keeps its rows and iterates over them (k-means) cannot hand out partials while
//! the rows arrive: it learns where each leaf's rows end ([`Node::end_leaf`]) and forms every
//! later sum per leaf, added in the same tree on every rank by [`crate::comm::tree::sum`].

use super::pass::{Group, Pass};
use crate::comm::tree::{decode, encode, push, root, Subtree};
use crate::comm::{agree, allgather, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Format, Origin, Source};
use crate::log::Log;
use crate::nodes::Node;
use crate::progress::Progress;

/// One leaf's (or subtree's) partials, per live node of the group.
type Parts = Vec<Option<Vec<u8>>>;

/// Bytes of input per leaf: at least 1 MiB, and at least 128 bytes (16 values) of input per
/// value of the group's statistics, so that a leaf's work outweighs encoding and merging its
/// partial (a 200-column covariance: 5 MiB). The same for any rank count.
fn leaf_bytes(group: &[Box<dyn Node>]) -> u64 {
    let state: u128 = group.iter().map(|n| n.state_elements(n.input_dim())).sum();
    u64::try_from(state.saturating_mul(128)).unwrap_or(u64::MAX).max(1 << 20)
}

/// A pass over these files, leaf by leaf, combined in the canonical tree.
pub(super) struct Canonical<'a> {
    /// The files.
    pub data: &'a Dataset,
}

impl Pass for Canonical<'_> {
    /// Rank 0 ends up holding every leaf's statistics combined in the canonical order, the
    /// other ranks empty ones; a node that keeps its rows (k-means) learns where each leaf's
    /// rows end instead ([`Node::end_leaf`]) and sums per leaf when it trains
    /// ([`crate::comm::tree::sum`]).
    fn run(&mut self, comm: &dyn Comm, group: &mut Group, log: &Log) -> Result<(u64, u64)> {
        let why = group
            .nodes
            .iter()
            .find(|n| !n.reproducible())
            .map(|n| Error::Param(format!("--reproducible: {} cannot split its statistics by file; train it without --reproducible", n.spec())));
        agree(comm, why.map_or(Ok(()), Err))?;
        let data = self.data;
        let mut bar = Progress::start(log, format!("reading for {}", group.label()), comm.size(), data.local_bytes, data.total_bytes);
        let out = pass(comm, data, group, &mut bar);
        drop(bar);
        out
    }
}

/// One pass of `group` (collective). Returns this rank's (rows, skipped).
fn pass(comm: &dyn Comm, data: &Dataset, group: &mut Group, bar: &mut Option<Progress>) -> Result<(u64, u64)> {
    let mapped = group.mapped();
    let leaves = leaves(comm, data, leaf_bytes(group.nodes));
    // Each leaf into empty statistics, merged into the complete subtrees of the canonical tree
    // that lie inside this rank's run.
    let mut read_subtrees = || -> Result<(u64, u64, Vec<Subtree<Parts>>)> {
        let (mut rows, mut skipped, mut before) = (0, 0, 0);
        let mut stack = Vec::new();
        for (index, src) in &leaves {
            let mut visit = |c: &Chunk| {
                // Progress counts the bytes of the files before this one too.
                let origin = c.origin.map(|o| Origin { read: o.read + before, ..o.clone() });
                Progress::chunk(bar, &Chunk { origin: origin.as_ref(), ..*c });
                group.feed(comm, c)
            };
            let one = data.only(src);
            let (r, s) = if mapped { one.for_each_chunk_mapped(&mut visit)? } else { one.for_each_chunk(&mut visit)? };
            let value = live(group).map(|n| n.end_leaf(*index)).collect::<Result<_>>()?;
            let mut nodes: Vec<_> = live(group).collect();
            push(&mut stack, Subtree { level: 0, index: *index, value }, &mut |l, r| merge(&mut nodes, l, r))?;
            rows += r;
            skipped += s;
            before += crate::io::source_bytes(src);
        }
        Ok((rows, skipped, stack))
    };
    let (rows, skipped, mine) = agree(comm, read_subtrees())?;
    let bytes = agree(comm, encode(&mine))?;
    let gathered = comm.gather_bytes(0, &bytes);
    let combined = match comm.rank() {
        0 => complete(live(group), gathered),
        _ => Ok(()),
    };
    agree(comm, combined)?;
    Ok((rows, skipped))
}

/// The leaves this rank reads, with their indices in the global order (collective). A leaf is
/// one of a file's fixed parts of about `bytes` ([`leaf_bytes`]: NPY rows, CSV lines; a smaller or
/// a compressed file is one leaf), or one row group of a Parquet file, so the leaves are the same whatever the rank count: a rank reads every part of
/// its whole files and, of a file split among ranks, a contiguous run of its parts. The global
/// order is the files' (every rank's, in rank order), each file's parts in order.
fn leaves(comm: &dyn Comm, data: &Dataset, bytes: u64) -> Vec<(u64, Source)> {
    // A compressed file cannot be cut: it is one leaf; a Parquet file's leaves are its row groups.
    let parts = |path: &std::path::Path| match (crate::io::compressed::Codec::of(path), data.format_of(path)) {
        (Some(_), _) => 1,
        (None, Format::Parquet) => crate::io::parquet::footer(path, data.rank()).map_or(1, |f| f.groups.len().max(1)),
        (None, _) => std::fs::metadata(path).map_or(1, |m| m.len().div_ceil(bytes).max(1)) as usize,
    };
    let mine: Vec<(String, usize)> = data.sources.iter().map(|s| (s.path.display().to_string(), parts(&s.path))).collect();
    // Where each file's parts start in the global order: a file split among ranks is listed by
    // each of them, on consecutive ranks.
    let mut start = std::collections::HashMap::new();
    let mut next = 0u64;
    let mut previous: Option<String> = None;
    for (path, n) in allgather(comm, &mine).into_iter().flatten() {
        if previous.as_ref() != Some(&path) {
            start.insert(path.clone(), next);
            next += n as u64;
            previous = Some(path);
        }
    }
    let mut out = Vec::new();
    for (s, (key, n)) in data.sources.iter().zip(mine) {
        let (lo, hi) = s.part.map_or((0, n), |(i, k)| (i * n / k, (i + 1) * n / k));
        out.extend((lo..hi).map(|b| (start[&key] + b as u64, Source { part: Some((b, n)), ..s.clone() })));
    }
    out
}

/// The nodes of `group` still training in this pass (a multi-pass node's group mates are done).
fn live<'a>(group: &'a mut Group) -> impl Iterator<Item = &'a mut Box<dyn Node>> {
    group.nodes.iter_mut().zip(&group.active).filter(|(_, a)| **a).map(|(n, _)| n)
}

/// `left` then `right` merged, per node, from empty statistics (none for a node that keeps its
/// rows).
fn merge(group: &mut [&mut Box<dyn Node>], left: Parts, right: Parts) -> Result<Parts> {
    group
        .iter_mut()
        .zip(left.into_iter().zip(right))
        .map(|(n, lr)| match lr {
            (Some(l), Some(r)) => {
                n.take_partial()?;
                n.merge_partial(&l)?;
                n.merge_partial(&r)?;
                n.take_partial().map(Some)
            }
            _ => Ok(None),
        })
        .collect()
}

/// Rank 0: every rank's subtrees completed into the tree's root, which the group's nodes then
/// hold.
fn complete<'a>(group: impl Iterator<Item = &'a mut Box<dyn Node>>, gathered: Vec<Vec<u8>>) -> Result<()> {
    let mut group: Vec<_> = group.collect();
    let mut all = Vec::new();
    for bytes in gathered {
        all.extend(decode::<Parts>(&bytes)?);
    }
    let Some(parts) = root(all, &mut |l, r| merge(&mut group, l, r))? else { return Ok(()) };
    for (n, p) in group.iter_mut().zip(parts) {
        if let Some(p) = p {
            n.take_partial()?;
            n.merge_partial(&p)?;
        }
    }
    Ok(())
}
