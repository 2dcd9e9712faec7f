//! `sfa2(n=…)`: quadratic SFA, as MDP's SFA2Node: a degree-2 polynomial expansion (MDP's
//! order, see `quadratic`) followed by SFA on the expanded signal. Parameters as `sfa`.

use super::poly::PolyNode;
use super::sfa::SfaNode;
use super::{tagged, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::Result;
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The `sfa2` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sfa2Node {
    /// The quadratic expansion.
    pub expansion: PolyNode,
    /// SFA on the expanded signal.
    pub sfa: SfaNode,
}

impl Sfa2Node {
    /// From a flow spec: `sfa2(n=K, contiguous=false)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(Sfa2Node { expansion: PolyNode::new(2), sfa: SfaNode::from_spec(spec)? })
    }
}

impl Node for Sfa2Node {
    fn kind(&self) -> &'static str {
        "sfa2"
    }
    fn spec(&self) -> String {
        self.sfa.spec().replacen("sfa", "sfa2", 1)
    }
    fn state_elements(&self, d: usize) -> u128 {
        // SFA's two scatter matrices over the quadratic expansion.
        let e = crate::nodes::poly_outputs(d, 2);
        e.saturating_mul(e).saturating_mul(2)
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        self.expansion.begin(schema)?;
        let expanded = Schema { x: self.expansion.output_names(), ..schema.clone() };
        self.sfa.check_dim("sfa2", expanded.x.len())?;
        self.sfa.begin(&expanded)
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let z = self.expansion.execute(chunk.x);
        self.sfa.update(&Chunk { x: z.view(), mapped: None, ..*chunk })
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        self.sfa.join(comm)
    }
    fn input_dim(&self) -> usize {
        self.expansion.input_dim()
    }
    fn output_names(&self) -> Vec<String> {
        self.sfa.output_names()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.sfa.execute(self.expansion.execute(x).view())
    }
    fn summary(&self) -> Vec<String> {
        let mut s = self.sfa.summary();
        s[0] = format!("quadratic expansion {} -> {}; {}", self.expansion.input_dim(), self.expansion.output_names().len(), s[0]);
        s
    }
    fn check_model(&self) -> Result<()> {
        self.expansion.check_model()?;
        if self.sfa.input_dim() != self.expansion.output_names().len() {
            return Err(crate::Error::Model(format!(
                "sfa2: the SFA part has {} inputs but the expansion gives {}",
                self.sfa.input_dim(),
                self.expansion.output_names().len()
            )));
        }
        self.sfa.check_model()
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("sfa2", self)
    }
}
