//! `train --reproducible`: the same model bits for any rank count and any assignment of the
//! shard files to ranks.
//!
//! Floating-point sums depend on their order, and without this a rank's partial statistics
//! depend on which files it read and the join on how many ranks there are. Here every leaf's
//! partial is computed alone, from empty statistics: a leaf is a shard file, or, for one file
//! split among the ranks, one of its fixed parts of about 1 MiB (rows of an NPY, lines of a
//! CSV), the same for any rank count. The leaves' partials are combined in one canonical binary
//! tree over the global order (a node merges its left subtree's partial with its right's),
//! whichever ranks hold them. A rank
//! merges the complete subtrees inside its contiguous run of files; rank 0 gathers those (at
//! most about 2·log₂(files) per rank) and completes the tree; the join then sees rank 0 holding
//! all the statistics and the other ranks none, which every node's join passes through
//! unchanged. The cost: one encode/decode of each file's partial, and a gather of O(log files)
//! partials per rank instead of a reduction.

use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Origin, Source};
use crate::nodes::Node;
use crate::progress::Progress;
use serde::{Deserialize, Serialize};

/// The partials of a complete subtree of the canonical tree: files
/// `[index·2^level, (index+1)·2^level)`, one encoded partial per node of the group.
#[derive(Serialize, Deserialize)]
struct Subtree {
    level: u32,
    index: u64,
    parts: Vec<Vec<u8>>,
}

/// Bytes per leaf of one file split among the ranks: about this much, whatever the rank count.
const BLOCK_BYTES: u64 = 1 << 20;

/// Why `--reproducible` cannot train `group`, if it cannot.
pub(crate) fn unsupported(group: &[Box<dyn Node>]) -> Option<String> {
    group.iter().find(|n| !n.splits_partials()).map(|n| {
        format!("--reproducible: {} keeps no per-file statistics (it keeps rows, or is a layer); train it without --reproducible", n.spec())
    })
}

/// One pass of `group` (collective): rank 0 ends up holding every leaf's statistics combined
/// in the canonical order, the other ranks empty ones. Returns this rank's (rows, skipped).
pub(crate) fn pass(
    comm: &dyn Comm,
    data: &Dataset,
    done: &[Box<dyn Node>],
    group: &mut [Box<dyn Node>],
    active: &[bool],
    bar: &mut Option<Progress>,
) -> Result<(u64, u64)> {
    let leaves = leaves(comm, data);
    // Each leaf into empty statistics, merged into the complete subtrees of the canonical tree
    // that lie inside this rank's run.
    let mut read_subtrees = || -> Result<(u64, u64, Vec<Subtree>)> {
        let (mut rows, mut skipped, mut before) = (0, 0, 0);
        let mut stack = Vec::new();
        for (index, src) in &leaves {
            let (r, s) = data.only(src).for_each_chunk(&mut |c| {
                // Progress counts the bytes of the files before this one too.
                let origin = c.origin.map(|o| Origin { read: o.read + before, ..o.clone() });
                Progress::chunk(bar, &Chunk { origin: origin.as_ref(), ..*c });
                crate::flow::feed(comm, done, group, active, c)
            })?;
            let parts = live(group, active).map(|n| n.take_partial()).collect::<Result<_>>()?;
            push(live(group, active), &mut stack, Subtree { level: 0, index: *index, parts })?;
            rows += r;
            skipped += s;
            before += crate::io::source_bytes(src);
        }
        Ok((rows, skipped, stack))
    };
    let (rows, skipped, mine) = agree(comm, read_subtrees())?;
    let bytes = agree(comm, bincode::serialize(&mine).map_err(|e| Error::Fit(format!("--reproducible: {e}"))))?;
    let gathered = comm.gather_bytes(0, &bytes);
    let combined = match comm.rank() {
        0 => complete(live(group, active), gathered),
        _ => Ok(()),
    };
    agree(comm, combined)?;
    Ok((rows, skipped))
}

/// The leaves this rank reads, with their indices in the global order (collective): its files
/// (a glob, a directory, `{rank}` files: each rank's are a contiguous run), or, for one file
/// split among the ranks, a contiguous run of that file's fixed parts of about [`BLOCK_BYTES`],
/// so that the leaves are the same whatever the rank count.
fn leaves(comm: &dyn Comm, data: &Dataset) -> Vec<(u64, Source)> {
    let counts = allgather_f64(comm, data.sources.len() as f64);
    match data.sources.as_slice() {
        [Source { path, part: Some(_) }] => {
            let blocks = std::fs::metadata(path).map_or(1, |m| m.len().div_ceil(BLOCK_BYTES).max(1)) as usize;
            let (lo, hi) = (comm.rank() * blocks / comm.size(), (comm.rank() + 1) * blocks / comm.size());
            (lo..hi).map(|k| (k as u64, Source { path: path.clone(), part: Some((k, blocks)) })).collect()
        }
        sources => {
            let first = counts[..comm.rank()].iter().sum::<f64>() as u64;
            sources.iter().enumerate().map(|(k, s)| (first + k as u64, s.clone())).collect()
        }
    }
}

/// The nodes of `group` still training in this pass (a multi-pass node's group mates are done).
fn live<'a>(group: &'a mut [Box<dyn Node>], active: &'a [bool]) -> impl Iterator<Item = &'a mut Box<dyn Node>> {
    group.iter_mut().zip(active).filter(|(_, a)| **a).map(|(n, _)| n)
}

/// Push a subtree, merging it with its left sibling (and so on up) while that is on the stack.
fn push<'a>(group: impl Iterator<Item = &'a mut Box<dyn Node>>, stack: &mut Vec<Subtree>, mut t: Subtree) -> Result<()> {
    let mut group: Vec<_> = group.collect();
    while let Some(left) = stack.pop_if(|l| l.level == t.level && l.index % 2 == 0 && l.index + 1 == t.index) {
        t = Subtree { level: t.level + 1, index: left.index / 2, parts: merge(&mut group, &left.parts, &t.parts)? };
    }
    stack.push(t);
    Ok(())
}

/// `left` then `right` merged, per node, from empty statistics.
fn merge(group: &mut [&mut Box<dyn Node>], left: &[Vec<u8>], right: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    group
        .iter_mut()
        .zip(left.iter().zip(right))
        .map(|(n, (l, r))| {
            n.take_partial()?;
            n.merge_partial(l)?;
            n.merge_partial(r)?;
            n.take_partial()
        })
        .collect()
}

/// Rank 0: every rank's subtrees, in rank order (so in file order), completed into the tree's
/// root, which the group's nodes then hold. The files fill a prefix of the leaves, so what the
/// sibling merges leave is the root's right spine: folded from the right.
fn complete<'a>(group: impl Iterator<Item = &'a mut Box<dyn Node>>, gathered: Vec<Vec<u8>>) -> Result<()> {
    let mut group: Vec<_> = group.collect();
    let mut stack = Vec::new();
    for bytes in gathered {
        let subtrees: Vec<Subtree> = bincode::deserialize(&bytes).map_err(|e| Error::Fit(format!("--reproducible: {e}")))?;
        for t in subtrees {
            push(group.iter_mut().map(|n| &mut **n), &mut stack, t)?;
        }
    }
    let Some(mut root) = stack.pop() else { return Ok(()) };
    while let Some(left) = stack.pop() {
        root.parts = merge(&mut group, &left.parts, &root.parts)?;
    }
    for (n, p) in group.iter_mut().zip(&root.parts) {
        n.take_partial()?;
        n.merge_partial(p)?;
    }
    Ok(())
}
