//! `sfa2(n=…)`: quadratic SFA, as MDP's SFA2Node: a degree-2 polynomial expansion (MDP's
//! order, see `quadratic`) followed by SFA on the expanded signal. Parameters as `sfa`.

use super::define::{size_fits, Kind, NodeParams, Partial, Report, Transform};
use super::poly::{PolyModel, PolyParams};
use super::sfa::{SfaModel, SfaParams, SfaPartial};
use super::NodeSpec;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// `sfa2`'s parameters: those of its SFA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sfa2Params(pub SfaParams);

/// The trained `sfa2` node: SFA of the quadratic expansion of the input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sfa2Model {
    /// SFA on the expanded signal.
    pub sfa: SfaModel,
    #[serde(skip)]
    expansion: Quadratic,
}

/// The degree-2 expansion (it holds no trained state).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Quadratic(PolyModel);

impl Default for Quadratic {
    fn default() -> Self {
        Quadratic(PolyParams::new(2).model())
    }
}

/// SFA's statistics of the expanded rows.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sfa2Partial {
    sfa: SfaPartial,
    #[serde(skip)]
    expansion: Quadratic,
}

impl NodeParams for Sfa2Params {
    const KIND: Kind = Kind::new("sfa2", &["n", "contiguous"], "sfa2(n=K, contiguous=false): quadratic SFA");
    type Partial = Sfa2Partial;
    type Model = Sfa2Model;
    /// `sfa2(n=K, contiguous=false)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        SfaParams::from_spec(spec).map(Sfa2Params)
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::define::at_least_one("sfa2", "n", self.0.n)
    }
    fn spec(&self) -> String {
        self.0.spec().replacen("sfa", "sfa2", 1)
    }
    fn state_elements(&self, d: usize) -> u128 {
        // SFA's two scatter matrices over the quadratic expansion.
        let e = crate::nodes::poly_outputs(d, 2);
        e.saturating_mul(e).saturating_mul(2)
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        PolyParams::new(2).check(schema)?;
        size_fits("sfa2", "n", self.0.n, crate::nodes::poly_outputs(schema.x.len(), 2) as usize)
    }
    fn partial(&self, schema: &Schema) -> Sfa2Partial {
        let expanded = crate::nodes::poly_outputs(schema.x.len(), 2) as usize;
        Sfa2Partial { sfa: SfaPartial::new(expanded, self.0.contiguous), expansion: Quadratic::default() }
    }
    fn finalize(&self, all: Sfa2Partial, _schema: &Schema) -> Result<Sfa2Model> {
        Ok(Sfa2Model { sfa: self.0.solve(all.sfa)?, expansion: Quadratic::default() })
    }
    /// Format v1 held the expansion (with the input columns) and a whole SFA node.
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        if node.get("params").is_some() {
            return None;
        }
        let mut node = node.clone();
        node["params"] = serde_json::json!({ "n": node["sfa"]["n"], "contiguous": node["sfa"]["contiguous"] });
        node["columns"] = node["expansion"]["columns"].clone();
        Some(node)
    }
}

impl Partial for Sfa2Partial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let z = self.expansion.0.transform(chunk.x);
        self.sfa.update(&Chunk { x: z.view(), mapped: None, ..*chunk })
    }
    fn merge(&mut self, other: Self) {
        self.sfa.merge(other.sfa)
    }
    fn fits(&self, other: &Self) -> Result<()> {
        self.sfa.fits(&other.sfa)
    }
    fn join(self, comm: &dyn Comm) -> Result<Self> {
        Ok(Sfa2Partial { sfa: self.sfa.join(comm)?, expansion: self.expansion })
    }
}

impl Transform for Sfa2Model {
    fn output_names(&self, _input: &[String]) -> Vec<String> {
        self.sfa.output_names(&[])
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.sfa.transform(self.expansion.0.transform(x).view())
    }
}

impl Report for Sfa2Model {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let expanded = self.expansion.0.output_names(input);
        let mut s = self.sfa.summary(&expanded, full);
        s[0] = format!("quadratic expansion {} -> {}; {}", input.len(), expanded.len(), s[0]);
        s
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        self.expansion.0.check_loaded(input)?;
        let e = crate::nodes::poly_outputs(input.len(), 2) as usize;
        if self.sfa.mean.len() != e {
            return Err(Error::Model(format!("sfa2: the SFA part has {} inputs but the expansion gives {e}", self.sfa.mean.len())));
        }
        self.sfa.check_loaded(&self.expansion.0.output_names(input))
    }
}
