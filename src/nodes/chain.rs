//! A chain of nodes at work: rows mapped through the trained nodes in front, then handed to the
//! nodes being trained. Every way of making a training pass (streamed, through the per-shard
//! cache, `--reproducible`'s canonical leaves) and `score` use these.

use super::Node;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::Chunk;
use ndarray::{Array2, ArrayView2};

/// Map rows through `nodes` (statistics nodes cost nothing); `None` when all pass through.
pub fn execute_prefix(nodes: &[Box<dyn Node>], x: ArrayView2<f64>) -> Result<Option<Array2<f64>>> {
    let mapping: Vec<_> = nodes.iter().filter(|n| !n.passthrough()).collect();
    if mapping.is_empty() {
        return Ok(None);
    }
    // Part by part on the rank's threads (a row's output does not depend on the others).
    crate::threads::map_rows(x, |part| {
        let mut out: Option<Array2<f64>> = None;
        for n in &mapping {
            out = Some(n.execute(out.as_ref().map_or(part, |a| a.view()))?);
        }
        Ok(out.expect("one node or more"))
    })
    .map(Some)
}

/// Hand a chunk to the active nodes of `group`, after the trained nodes before it (`done`).
pub fn feed(comm: &dyn Comm, done: &[Box<dyn Node>], group: &mut [Box<dyn Node>], active: &[bool], chunk: &Chunk) -> Result<()> {
    let prefixed = execute_prefix(done, chunk.x)?;
    let c = Chunk { x: prefixed.as_ref().map_or(chunk.x, |a| a.view()), mapped: if prefixed.is_some() { None } else { chunk.mapped }, ..*chunk };
    for (n, _) in group.iter_mut().zip(active).filter(|(_, a)| **a) {
        n.update(&c).map_err(|e| match (e, c.origin) {
            // A complaint about one row: name its file and line.
            (Error::Row { row, msg }, Some(o)) => o.error(row, msg),
            (e @ Error::Data { .. }, _) => e,
            (e, _) => Error::Fit(format!("rank {}: {e}", comm.rank())),
        })?;
    }
    Ok(())
}
