//! Layers (MDP hinet): nodes side by side on groups of columns, trained in the same passes,
//! their outputs concatenated.
//!
//! - `layer(pca(n=3) @ 0-9, sfa(n=2) @ 10-19)`: each node on its own columns (indices, names or
//!   ranges; several with `;` or in brackets: `@ [a, b, 5-7]`), as hinet's `Layer`.
//! - `clone(pca(n=3), groups=4)`: the columns cut into 4 equal consecutive groups and **one**
//!   node trained on all of them (each group's rows are more rows of the same node), then
//!   applied to every group, as hinet's `CloneLayer`.
//!
//! Outputs are the parts' outputs in order; when two parts would give the same name, every
//! name is prefixed with its part (`p0_pc0`, or `g0_pc0` for a clone layer).

use super::{Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{select_columns, Chunk, Layout, Schema};
use ndarray::{concatenate, Array2, ArrayView2, Axis};
use serde_json::{json, Value};

/// Whether `kind` is a layer (its spec holds node specs, not key=value pairs).
pub(crate) fn is_layer(kind: &str) -> bool {
    kind == "layer" || kind == "clone"
}

/// A layer of nodes over column groups (see the module docs).
pub struct LayerNode {
    /// The nodes: one per group, or one shared by every group (clone).
    nodes: Vec<Box<dyn Node>>,
    /// Each group's column spec as written.
    groups: Vec<String>,
    /// Clone layer: the number of groups.
    clone: Option<usize>,
    /// Resolved: each group's input column indices.
    columns: Vec<Vec<usize>>,
    input_columns: Vec<String>,
    /// Nodes still training (multi-pass nodes ask for more passes).
    active: Vec<bool>,
}

impl LayerNode {
    /// Parse `layer(node @ cols, ...)` or `clone(node, groups=G)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let parts: Vec<&str> = super::split_top_level(&spec.args).into_iter().map(str::trim).filter(|p| !p.is_empty()).collect();
        let bad = |m: String| Error::Param(format!("{}: {m}", crate::io::quote(format!("{}({})", spec.kind, spec.args).as_bytes())));
        if spec.kind == "clone" {
            let [node, groups] = parts[..] else {
                return Err(bad("expected clone(NODE, groups=G)".into()));
            };
            let g = groups
                .strip_prefix("groups")
                .and_then(|r| r.trim().strip_prefix('='))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|g| *g >= 1)
                .ok_or_else(|| bad(format!("expected groups=G (G ≥ 1), got {groups:?}")))?;
            let node = super::build(&NodeSpec::parse(node)?)?;
            return Ok(LayerNode { nodes: vec![node], groups: Vec::new(), clone: Some(g), columns: Vec::new(), input_columns: Vec::new(), active: vec![true] });
        }
        if parts.is_empty() {
            return Err(bad("expected layer(NODE @ COLUMNS, ...)".into()));
        }
        let mut nodes = Vec::new();
        let mut groups = Vec::new();
        for p in parts {
            let (node, cols) = p.rsplit_once('@').ok_or_else(|| bad(format!("{p:?} has no '@ COLUMNS' (e.g. pca(n=3) @ 0-9)")))?;
            if let Some(first) = node.find('@') {
                // `layer(a @ 0-3; b @ 4-7)`: ';' separates columns, so this reads as one node.
                let at = p.as_ptr() as usize - spec.args.as_ptr() as usize + first + node[first..].find(';').unwrap_or(0);
                let shown = format!("{}({})", spec.kind, spec.args);
                return Err(Error::Param(format!(
                    "{}: two nodes in one group: separate a layer's nodes with ',' (';' separates the columns of one group){}",
                    spec.kind,
                    super::caret(&shown, spec.kind.len() + 1 + at)
                )));
            }
            let node = NodeSpec::parse(node)?;
            if is_layer(&node.kind) {
                return Err(bad("layers do not nest".into()));
            }
            nodes.push(super::build(&node)?);
            groups.push(cols.trim().trim_start_matches('[').trim_end_matches(']').replace(';', ",").trim().to_string());
        }
        let n = nodes.len();
        Ok(LayerNode { nodes, groups, clone: None, columns: Vec::new(), input_columns: Vec::new(), active: vec![true; n] })
    }

    /// Rebuild a trained layer from its model-file JSON.
    pub fn from_json(v: &Value) -> Result<Self> {
        let bad = |m: &str| Error::Model(format!("node layer: {m} (the model file is damaged or was edited; train it again)"));
        let nodes = v["nodes"].as_array().ok_or_else(|| bad("no nodes"))?.iter().map(super::from_json).collect::<Result<Vec<_>>>()?;
        let columns: Vec<Vec<usize>> = serde_json::from_value(v["columns"].clone()).map_err(|_| bad("bad columns"))?;
        let input_columns: Vec<String> = serde_json::from_value(v["input_columns"].clone()).map_err(|_| bad("bad input_columns"))?;
        let groups: Vec<String> = serde_json::from_value(v["groups"].clone()).unwrap_or_default();
        let clone = v["clone"].as_u64().map(|g| g as usize);
        let n = nodes.len();
        Ok(LayerNode { nodes, groups, clone, columns, input_columns, active: vec![false; n] })
    }

    /// The member nodes still training in this pass.
    fn training(&mut self) -> impl Iterator<Item = &mut Box<dyn Node>> {
        self.nodes.iter_mut().zip(&self.active).filter(|(_, a)| **a).map(|(n, _)| n)
    }

    /// (node, columns) pairs in output order: a clone layer's one node for every group.
    fn parts(&self) -> impl Iterator<Item = (&dyn Node, &[usize])> {
        self.columns.iter().enumerate().map(|(g, c)| (self.nodes[if self.clone.is_some() { 0 } else { g }].as_ref(), c.as_slice()))
    }
}

impl Node for LayerNode {
    fn kind(&self) -> &'static str {
        "layer"
    }
    fn spec(&self) -> String {
        match self.clone {
            Some(g) => format!("clone({}, groups={g})", self.nodes[0].spec()),
            None => {
                let parts: Vec<String> = self.nodes.iter().zip(&self.groups).map(|(n, g)| format!("{} @ [{g}]", n.spec())).collect();
                format!("layer({})", parts.join(", "))
            }
        }
    }
    fn targets(&self) -> Vec<String> {
        self.nodes.iter().flat_map(|n| n.targets()).collect()
    }
    fn label(&self) -> Option<String> {
        self.nodes.iter().find_map(|n| n.label())
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        self.nodes.iter_mut().for_each(|n| n.resolve_columns(name_of));
    }
    fn state_elements(&self, d: usize) -> u128 {
        self.nodes.iter().map(|n| n.state_elements(d)).sum()
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let d = schema.x.len();
        self.columns = match self.clone {
            Some(g) if !d.is_multiple_of(g) => {
                return Err(Error::Param(format!("{}: {d} input columns do not split into {g} equal groups", self.spec())));
            }
            Some(g) => (0..g).map(|k| (k * d / g..(k + 1) * d / g).collect()).collect(),
            None => {
                let layout = Layout { ncols: d, names: Some(schema.x.clone()) };
                let spec = self.spec();
                self.groups
                    .iter()
                    .map(|g| select_columns(Some(g), &layout).map_err(|m| Error::Param(format!("{spec}: columns '{g}': {m}"))))
                    .collect::<Result<_>>()?
            }
        };
        self.input_columns = schema.x.clone();
        self.active = vec![true; self.nodes.len()];
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let sub = Schema { x: self.columns[i].iter().map(|&j| schema.x[j].clone()).collect(), ..schema.clone() };
            n.begin(&sub)?;
        }
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        for (g, cols) in self.columns.iter().enumerate() {
            let i = if self.clone.is_some() { 0 } else { g };
            if !self.active[i] {
                continue;
            }
            let x = chunk.x.select(Axis(1), cols);
            self.nodes[i].update(&Chunk { x: x.view(), mapped: None, ..*chunk })?;
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        for (n, a) in self.nodes.iter_mut().zip(self.active.iter_mut()) {
            if *a {
                n.join(comm)?;
                *a = n.another_pass();
            }
        }
        Ok(())
    }
    fn another_pass(&self) -> bool {
        self.active.iter().any(|a| *a)
    }
    fn warnings(&self) -> Vec<String> {
        self.nodes.iter().flat_map(|n| n.warnings()).collect()
    }
    fn reproducible(&self) -> bool {
        self.nodes.iter().all(|n| n.reproducible())
    }
    // A layer's partial is its training members' partials, none for a member that keeps its
    // rows (it sums per leaf itself), encoded together.
    fn end_leaf(&mut self, index: u64) -> Result<Option<Vec<u8>>> {
        let parts: Vec<_> = self.training().map(|n| n.end_leaf(index)).collect::<Result<_>>()?;
        encode(&parts).map(Some)
    }
    fn take_partial(&mut self) -> Result<Vec<u8>> {
        let parts: Vec<_> = self.training().map(|n| if n.keeps_rows() { Ok(None) } else { n.take_partial().map(Some) }).collect::<Result<_>>()?;
        encode(&parts)
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        let parts: Vec<Option<Vec<u8>>> = bincode::deserialize(bytes).map_err(|e| Error::Fit(format!("{}: a partial does not decode: {e}", self.spec())))?;
        for (n, p) in self.training().zip(parts) {
            if let Some(p) = p {
                n.merge_partial(&p)?;
            }
        }
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.input_columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        let per: Vec<Vec<String>> = self.parts().map(|(n, _)| n.output_names()).collect();
        let mut all: Vec<&String> = per.iter().flatten().collect();
        all.sort();
        all.dedup();
        if all.len() == per.iter().map(Vec::len).sum::<usize>() {
            return per.concat();
        }
        let tag = if self.clone.is_some() { "g" } else { "p" };
        per.iter().enumerate().flat_map(|(g, names)| names.iter().map(move |n| format!("{tag}{g}_{n}"))).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.input_columns.len() {
            return Err(Error::Model(format!("layer: rows of {} columns, but it was trained on {}", x.ncols(), self.input_columns.len())));
        }
        let outs: Vec<Array2<f64>> = self.parts().map(|(n, cols)| n.execute(x.select(Axis(1), cols).view())).collect::<Result<_>>()?;
        let views: Vec<ArrayView2<f64>> = outs.iter().map(|o| o.view()).collect();
        Ok(concatenate(Axis(1), &views).unwrap_or_else(|_| Array2::zeros((x.nrows(), 0))))
    }
    fn check_model(&self) -> Result<()> {
        let d = self.input_columns.len();
        let groups = self.clone.unwrap_or(self.nodes.len());
        if self.columns.len() != groups || self.columns.iter().flatten().any(|&j| j >= d) || self.nodes.is_empty() {
            return Err(Error::Model("node layer: its column groups do not fit its input (the model file is damaged or was edited)".into()));
        }
        for (n, cols) in self.parts() {
            if n.input_dim() != cols.len() {
                return Err(Error::Model(format!("node layer: {} takes {} columns but its group has {}", n.spec(), n.input_dim(), cols.len())));
            }
            n.check_model()?;
        }
        Ok(())
    }
    fn summary(&self, full: bool) -> Vec<String> {
        let mut out = vec![format!("{} groups over {} input columns", self.columns.len(), self.input_columns.len())];
        for (g, cols) in self.columns.iter().enumerate() {
            let names: Vec<&str> = cols.iter().map(|&j| self.input_columns[j].as_str()).collect();
            out.push(format!("group {g}: [{}]", names.join(", ")));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            out.push(format!("node {i}: {}", n.spec()));
            out.extend(n.summary(full).into_iter().map(|l| format!("  {l}")));
        }
        out
    }
    fn to_json(&self) -> Value {
        json!({
            "kind": "layer",
            "clone": self.clone,
            "groups": self.groups,
            "columns": self.columns,
            "input_columns": self.input_columns,
            "nodes": self.nodes.iter().map(|n| n.to_json()).collect::<Vec<_>>(),
        })
    }
}

fn encode(parts: &[Option<Vec<u8>>]) -> Result<Vec<u8>> {
    bincode::serialize(parts).map_err(|e| Error::Fit(format!("cannot encode a layer's partials: {e}")))
}
