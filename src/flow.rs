//! Flows: chains of nodes, trained one after the other, each on the output of the trained nodes
//! before it (MDP's ParallelFlow). Statistics nodes pass rows through unchanged, so a run of
//! them and the node after them train in the same pass over the data.

use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::nodes::{self, Node};
use ndarray::{Array2, ArrayView2};

mod cached;
mod canonical;
mod pass;
mod stream;
mod text;
mod train;
pub use text::{parse_flow, read_flow_file};
pub use train::{Rows, TrainOptions, TrainReport};

/// A chain of nodes.
pub struct Flow {
    /// The nodes, in order.
    pub nodes: Vec<Box<dyn Node>>,
}

impl Flow {
    /// Target columns the flow's nodes train on (union, in order of appearance).
    pub fn targets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.nodes.iter().flat_map(|n| n.targets()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// The one label column the flow's nodes train on.
    pub fn label(&self) -> Result<Option<String>> {
        let mut labels: Vec<String> = self.nodes.iter().filter_map(|n| n.label()).collect();
        labels.dedup();
        match labels.len() {
            0 | 1 => Ok(labels.pop()),
            _ => Err(Error::Param(format!("nodes use different label columns: {}", labels.join(", ")))),
        }
    }

    /// Name the target and label columns the nodes gave by index after the opened data's
    /// columns (`linreg(target=5)` trains on, and writes, the column's name).
    pub fn resolve_columns(&mut self, data: &Dataset) {
        let names = data.layout.column_names();
        let name_of = |spec: &str| match crate::io::select_columns(Some(spec), &data.layout).ok().as_deref() {
            Some([j]) => names[*j].clone(),
            _ => spec.to_string(),
        };
        for n in self.nodes.iter_mut() {
            n.resolve_columns(&name_of);
        }
    }

    /// Build an untrained flow from a spec like `pca(n=10) | whitening`.
    pub fn parse(spec: &str) -> Result<Flow> {
        let nodes = parse_flow(spec)?.iter().map(nodes::build).collect::<Result<_>>()?;
        Ok(Flow { nodes })
    }

    /// The canonical flow spec.
    pub fn spec(&self) -> String {
        self.nodes.iter().map(|n| n.spec()).collect::<Vec<_>>().join(" | ")
    }

    /// Output column names of the trained flow.
    pub fn output_names(&self, input: &[String]) -> Vec<String> {
        self.nodes.last().map_or_else(|| input.to_vec(), |n| n.output_names())
    }

    /// Map rows through the whole trained flow.
    pub fn execute(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        // Statistics nodes pass rows through unexecuted; each node that maps them checks that
        // it is trained and gets its input's column count.
        Ok(nodes::chain::execute_prefix(&self.nodes, x)?.unwrap_or_else(|| x.to_owned()))
    }

    /// Map outputs of the trained flow back to its inputs (nodes inverted in reverse order).
    pub fn inverse(&self, y: ArrayView2<f64>) -> Result<Array2<f64>> {
        // Part by part on the rank's threads, as `execute` (a row maps back on its own).
        crate::threads::map_rows(y, |part| {
            let mut out = part.to_owned();
            for n in self.nodes.iter().rev() {
                out = n.inverse(out.view()).ok_or_else(|| Error::Model(format!("node {} has no inverse", n.spec())))?;
            }
            Ok(out)
        })
    }

    /// Check up front that every node can be inverted.
    pub fn check_invertible(&self) -> Result<()> {
        let probe = Array2::zeros((0, self.nodes.last().map_or(0, |n| n.output_names().len())));
        self.inverse(probe.view()).map(|_| ())
    }
}

#[cfg(test)]
mod spmd_tests;
#[cfg(test)]
mod tests;
