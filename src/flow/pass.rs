//! One pass over this rank's rows for a group of nodes. A pass is made one of three ways, behind
//! the one [`Pass`] interface: streamed from the files, or replayed from memory under
//! `cache_data` ([`super::stream`]); through the per-shard cache ([`super::cached`], `train
//! --cache`); or file part by file part, combined in the canonical order
//! ([`super::canonical`], `--reproducible`). The driver ([`super::train`]) picks one per pass
//! and ends every pass the same way: carried partials, the join, the log line.

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::Chunk;
use crate::log::Log;
use crate::nodes::Node;

/// A group of nodes training in the same pass, after the trained nodes before them.
pub(super) struct Group<'g> {
    /// The trained nodes before the group: every chunk goes through them first.
    pub done: &'g [Box<dyn Node>],
    /// The group: statistics nodes and the node after them.
    pub nodes: &'g mut [Box<dyn Node>],
    /// Which of them still train (a node of several passes asks for more; the others are done).
    pub active: Vec<bool>,
}

impl Group<'_> {
    /// The active nodes' specs, for log lines.
    pub fn label(&self) -> String {
        self.nodes.iter().zip(&self.active).filter(|(_, a)| **a).map(|(n, _)| n.spec()).collect::<Vec<_>>().join(", ")
    }

    /// Whether the group gets raw rows (no trained node before it) and a node keeps them: it
    /// may then keep memory-mapped NPY rows instead of a copy.
    pub fn mapped(&self) -> bool {
        self.done.is_empty() && self.nodes.iter().any(|n| n.keeps_rows())
    }

    /// Hand a chunk to the active nodes, through the trained nodes before them; Ctrl-C
    /// ([`crate::stop::interrupt`]) ends the pass here.
    pub fn feed(&mut self, comm: &dyn Comm, chunk: &Chunk) -> Result<()> {
        if crate::stop::interrupted() {
            return Err(Error::Interrupted);
        }
        crate::nodes::chain::feed(comm, self.done, self.nodes, &self.active, chunk)
    }
}

/// One way of making a pass.
pub(super) trait Pass {
    /// Collective: feed this rank's rows to the active nodes of `group`, leaving each rank's
    /// partial statistics ready for the join, and return this rank's (rows, rows skipped). An
    /// error on any rank is every rank's (agreed), so all ranks leave together.
    fn run(&mut self, comm: &dyn Comm, group: &mut Group, log: &Log) -> Result<(u64, u64)>;
}
