//! `quadratic` and `poly(degree=d)`: polynomial expansion into all monomials of degree 1..d
//! (no constant), in MDP's PolynomialExpansionNode order: first x₀..x_{n−1}; then, for each
//! degree k ≥ 2 and each j = 0..n−1, x_j times every degree-(k−1) monomial whose smallest index
//! is ≥ j. For degree 2 that is x₀x₀, x₀x₁, …, x₀x_{n−1}, x₁x₁, x₁x₂, …, x_{n−1}x_{n−1}.
//! Output dimension C(n+d, d) − 1. Needs no training.

use super::define::{params_from_fields, Kind, NodeParams, Report, Transform};
use super::NodeSpec;
use crate::error::{Error, Result};
use crate::io::Schema;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// `poly`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolyParams {
    /// Highest degree.
    pub degree: usize,
}

/// Degree 2: the quadratic expansion.
impl Default for PolyParams {
    fn default() -> Self {
        PolyParams { degree: 2 }
    }
}

/// The expansion of a fixed input: its monomials as lists of input indices (non-decreasing),
/// in output order. They follow from the degree and the input dimension, so model files hold
/// only the parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolyModel {
    /// The parameters.
    pub params: PolyParams,
    #[serde(skip)]
    terms: std::sync::OnceLock<Vec<Vec<usize>>>,
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

impl PolyParams {
    /// An expansion of the given degree.
    pub fn new(degree: usize) -> Self {
        PolyParams { degree }
    }

    /// The expansion of `d` inputs, without data (it needs no statistics).
    pub fn model(&self) -> PolyModel {
        PolyModel { params: self.clone(), terms: Default::default() }
    }
}

impl NodeParams for PolyParams {
    const KIND: Kind = Kind::new("poly", &["degree"], "quadratic | poly(degree=D): polynomial expansion (MDP's order)").aliases(&["quadratic"]);
    type Partial = ();
    type Model = PolyModel;
    /// `quadratic` (degree 2) or `poly(degree=d)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        if spec.kind == "quadratic" {
            spec.check_keys(&[])?;
        }
        Ok(Self::new(spec.get("degree")?.unwrap_or(2)))
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::define::at_least_one("poly", "degree", Some(self.degree))
    }
    fn spec(&self) -> String {
        if self.degree == 2 {
            "quadratic".into()
        } else {
            format!("poly(degree={})", self.degree)
        }
    }
    fn state_elements(&self, d: usize) -> u128 {
        // The monomial list; its size is also checked in `check`.
        crate::nodes::poly_outputs(d, self.degree).saturating_mul(self.degree as u128)
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        let n = schema.x.len();
        let size = crate::nodes::poly_outputs(n, self.degree);
        if size > 1_000_000 {
            return Err(Error::Param(format!("poly: degree {} on {n} inputs gives {size} outputs; reduce the input first (e.g. pca)", self.degree)));
        }
        Ok(())
    }
    fn partial(&self, _schema: &Schema) {}
    fn finalize(&self, _all: (), _schema: &Schema) -> Result<PolyModel> {
        Ok(self.model())
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["degree"])
    }
}

impl PolyModel {
    fn terms(&self, d: usize) -> &[Vec<usize>] {
        self.terms.get_or_init(|| monomials(d, self.params.degree))
    }
}

impl Transform for PolyModel {
    fn output_names(&self, input: &[String]) -> Vec<String> {
        self.terms(input.len()).iter().map(|m| m.iter().map(|&j| input[j].as_str()).collect::<Vec<_>>().join("*")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let terms = self.terms(x.ncols());
        let mut out = Array2::zeros((x.nrows(), terms.len()));
        for (i, row) in x.rows().into_iter().enumerate() {
            for (k, m) in terms.iter().enumerate() {
                out[[i, k]] = m.iter().map(|&j| row[j]).product();
            }
        }
        out
    }
}

impl Report for PolyModel {
    fn summary(&self, input: &[String], _full: bool) -> Vec<String> {
        vec![format!("degree {}: {} -> {} dims", self.params.degree, input.len(), crate::nodes::poly_outputs(input.len(), self.params.degree))]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let s = super::Shapes("poly");
        s.at_least("columns", input.len(), 1)?;
        s.at_least("degree", self.params.degree, 1)?;
        if crate::nodes::poly_outputs(input.len(), self.params.degree) > 1 << 20 {
            return Err(Error::Model(format!("poly: degree {} on {} columns is too large", self.params.degree, input.len())));
        }
        Ok(())
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
        let p = PolyParams::new(2).model();
        assert_eq!(p.transform(array![[2.0, 3.0]].view()), array![[2.0, 3.0, 4.0, 6.0, 9.0]]);
        assert_eq!(p.output_names(&["a".into(), "b".into()]), vec!["a", "b", "a*a", "a*b", "b*b"]);
    }
}
