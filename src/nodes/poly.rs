//! `quadratic` and `poly(degree=d)`: polynomial expansion into all monomials of degree 1..d
//! (no constant), in MDP's PolynomialExpansionNode order: first x₀..x_{n−1}; then, for each
//! degree k ≥ 2 and each j = 0..n−1, x_j times every degree-(k−1) monomial whose smallest index
//! is ≥ j. For degree 2 that is x₀x₀, x₀x₁, …, x₀x_{n−1}, x₁x₁, x₁x₂, …, x_{n−1}x_{n−1}.
//! Output dimension C(n+d, d) − 1. Needs no training.

use super::{tagged, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The expansion node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolyNode {
    /// Highest degree.
    pub degree: usize,
    /// Input column names.
    pub columns: Vec<String>,
    /// Monomials as lists of input indices (non-decreasing), in output order.
    #[serde(skip)]
    monomials: Vec<Vec<usize>>,
}

/// Monomials of degrees 1..=degree over n variables, in MDP's order.
pub fn monomials(n: usize, degree: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = (0..n).map(|j| vec![j]).collect();
    let mut prev = out.clone();
    for _ in 2..=degree {
        let mut next = Vec::new();
        for j in 0..n {
            for m in prev.iter().filter(|m| m[0] >= j) {
                let mut v = vec![j];
                v.extend(m);
                next.push(v);
            }
        }
        out.extend(next.iter().cloned());
        prev = next;
    }
    out
}

impl PolyNode {
    /// `quadratic` (degree 2) or `poly(degree=d)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let degree = if spec.kind == "quadratic" {
            spec.check_keys(&[])?;
            2
        } else {
            spec.check_keys(&["degree"])?;
            spec.get::<usize>("degree")?.unwrap_or(2)
        };
        if degree == 0 {
            return Err(Error::Param("poly: degree must be at least 1".into()));
        }
        Ok(Self::new(degree))
    }

    /// An expansion of the given degree.
    pub fn new(degree: usize) -> Self {
        PolyNode { degree, ..Default::default() }
    }

    fn terms(&self) -> Vec<Vec<usize>> {
        if self.monomials.is_empty() { monomials(self.columns.len(), self.degree) } else { self.monomials.clone() }
    }

    /// Set the input without data (the expansion needs no statistics).
    pub fn set_input(&mut self, names: &[String]) {
        self.columns = names.to_vec();
        self.monomials = monomials(names.len(), self.degree);
    }
}

impl Node for PolyNode {
    fn kind(&self) -> &'static str {
        "poly"
    }
    fn spec(&self) -> String {
        if self.degree == 2 { "quadratic".into() } else { format!("poly(degree={})", self.degree) }
    }
    fn state_elements(&self, d: usize) -> u128 {
        // The monomial list; its size is also checked in `begin`.
        crate::nodes::poly_outputs(d, self.degree).saturating_mul(self.degree as u128)
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let n = schema.x.len();
        // Count before building: C(n+d, d) − 1 outputs.
        let mut size = 1f64;
        for i in 1..=self.degree {
            size = size * (n + i) as f64 / i as f64;
        }
        if size - 1.0 > 1e6 {
            return Err(Error::Param(format!("poly: degree {} on {n} inputs gives {:.0} outputs; reduce the input first (e.g. pca)", self.degree, size - 1.0)));
        }
        self.set_input(&schema.x);
        Ok(())
    }
    fn update(&mut self, _chunk: &Chunk) -> Result<()> {
        Ok(())
    }
    fn join(&mut self, _comm: &dyn Comm) -> Result<()> {
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        self.terms().iter().map(|m| m.iter().map(|&j| self.columns[j].as_str()).collect::<Vec<_>>().join("*")).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let terms = self.terms();
        let mut out = Array2::zeros((x.nrows(), terms.len()));
        for (i, row) in x.rows().into_iter().enumerate() {
            for (k, m) in terms.iter().enumerate() {
                out[[i, k]] = m.iter().map(|&j| row[j]).product();
            }
        }
        out
    }
    fn summary(&self) -> Vec<String> {
        vec![format!("degree {}: {} -> {} dims", self.degree, self.columns.len(), self.terms().len())]
    }
    fn check_model(&self) -> Result<()> {
        let s = super::Shapes("poly");
        s.at_least("columns", self.columns.len(), 1)?;
        s.at_least("degree", self.degree, 1)?;
        if crate::nodes::poly_outputs(self.columns.len(), self.degree) > 1 << 20 {
            return Err(Error::Model(format!("poly: degree {} on {} columns is too large", self.degree, self.columns.len())));
        }
        Ok(())
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("poly", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mdp_order_and_dimension() {
        let m = monomials(3, 2);
        assert_eq!(m, vec![vec![0], vec![1], vec![2], vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 1], vec![1, 2], vec![2, 2]]);
        assert_eq!(monomials(3, 3).len(), 19); // C(6,3) − 1
        assert_eq!(&monomials(2, 3)[5..], &[vec![0, 0, 0], vec![0, 0, 1], vec![0, 1, 1], vec![1, 1, 1]]);
        let mut p = PolyNode::new(2);
        p.set_input(&["a".into(), "b".into()]);
        assert_eq!(p.execute(array![[2.0, 3.0]].view()), array![[2.0, 3.0, 4.0, 6.0, 9.0]]);
        assert_eq!(p.output_names(), vec!["a", "b", "a*a", "a*b", "b*b"]);
    }
}
