//! The canonical binary tree over an ordered list of leaves: values combined left with right,
//! level by level, in an order fixed by the leaves' global indices alone, so the result has the
//! same bits whichever ranks hold which leaves and however many ranks there are. `train
//! --reproducible` combines files' partial statistics in it ([`crate::canonical`]); [`sum`] adds
//! vectors in it (k-means' per-cluster sums under `--reproducible`).
//!
//! A rank merges the complete subtrees inside its contiguous run of leaves ([`push`]), the
//! ranks exchange those (at most about 2·log₂(leaves) each), and [`root`] completes the tree.

use super::Comm;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A complete subtree of the canonical tree: leaves `[index·2^level, (index+1)·2^level)` and
/// what they combine to (for a pass, one encoded partial per node of the group, or none for a
/// node that keeps its rows).
#[derive(Serialize, Deserialize)]
pub struct Subtree<T> {
    /// Height: a leaf is 0.
    pub level: u32,
    /// Position among the subtrees of its level.
    pub index: u64,
    /// What its leaves combine to.
    pub value: T,
}

/// Push a subtree onto a stack of complete subtrees in leaf order (a binary counter), merging
/// it with its left sibling (and so on up) while that is on the stack.
pub fn push<T>(stack: &mut Vec<Subtree<T>>, mut t: Subtree<T>, merge: &mut impl FnMut(T, T) -> Result<T>) -> Result<()> {
    while let Some(left) = stack.pop_if(|l| l.level == t.level && l.index % 2 == 0 && l.index + 1 == t.index) {
        t = Subtree { level: t.level + 1, index: left.index / 2, value: merge(left.value, t.value)? };
    }
    stack.push(t);
    Ok(())
}

/// The root of the canonical tree from every rank's subtrees in rank order (so in leaf order).
/// The leaves fill a prefix of the tree, so what the sibling merges leave is the root's right
/// spine: folded from the right.
pub fn root<T>(subtrees: Vec<Subtree<T>>, merge: &mut impl FnMut(T, T) -> Result<T>) -> Result<Option<T>> {
    let mut stack = Vec::new();
    for t in subtrees {
        push(&mut stack, t, merge)?;
    }
    let Some(mut root) = stack.pop() else { return Ok(None) };
    while let Some(left) = stack.pop() {
        root.value = merge(left.value, root.value)?;
    }
    Ok(Some(root.value))
}

/// Collective: the sum of every leaf's vector of `len` values, every rank giving its leaves'
/// (index in the global order, vector), added in the canonical tree: the same bits on every
/// rank and for any rank count. What a node that keeps its rows uses for its sums under
/// `--reproducible` (k-means: the Lloyd step's per-cluster sums).
pub fn sum(comm: &dyn Comm, len: usize, leaves: Vec<(u64, Vec<f64>)>) -> Vec<f64> {
    let add = &mut |l: Vec<f64>, mut r: Vec<f64>| -> Result<Vec<f64>> {
        r.iter_mut().zip(&l).for_each(|(r, l)| *r += l); // = l + r: addition commutes exactly
        Ok(r)
    };
    let mut stack = Vec::new();
    for (index, value) in leaves {
        push(&mut stack, Subtree { level: 0, index, value }, add).expect("adding cannot fail");
    }
    let mut all = Vec::new();
    for bytes in comm.allgather_bytes(&encode(&stack).expect("f64 vectors encode")) {
        all.extend(decode::<Vec<f64>>(&bytes).expect("our own encoding"));
    }
    root(all, add).expect("adding cannot fail").unwrap_or_else(|| vec![0.0; len])
}

/// Subtrees as bytes, to exchange.
pub fn encode<T: Serialize>(subtrees: &[Subtree<T>]) -> Result<Vec<u8>> {
    bincode::serialize(subtrees).map_err(|e| Error::Fit(format!("--reproducible: {e}")))
}

/// Subtrees from [`encode`]'s bytes.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<Subtree<T>>> {
    bincode::deserialize(bytes).map_err(|e| Error::Fit(format!("--reproducible: {e}")))
}
