//! How trained arrays are written to model files (matrices as lists of rows, NaN as null) and
//! checked when read back.

use crate::error::{Error, Result};
use ndarray::Array2;

/// Matrices are stored in model files as lists of rows: readable and easy to load in numpy.
pub(crate) mod rows {
    use ndarray::Array2;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as a list of rows.
    pub fn serialize<S: Serializer>(a: &Array2<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.rows().into_iter().map(|r| r.to_vec()))
    }

    /// Deserialize from a list of rows.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array2<f64>, D::Error> {
        let rows: Vec<Vec<f64>> = Vec::deserialize(d)?;
        let ncols = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != ncols) {
            return Err(serde::de::Error::custom("ragged matrix"));
        }
        Array2::from_shape_vec((rows.len(), ncols), rows.concat()).map_err(serde::de::Error::custom)
    }
}

/// Vectors that may hold NaN (written as JSON null, read back as NaN).
pub(crate) mod nan_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize, NaN as null.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| if x.is_nan() { None } else { Some(*x) }))
    }

    /// Deserialize, null as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

/// Shape and value checks of a trained node's arrays, for [`Node::check_model`].
pub(crate) struct Shapes<'a>(pub &'a str);

impl Shapes<'_> {
    fn fail(&self, what: String) -> Error {
        Error::Model(format!("node {}: {what} (the model file is damaged or was edited; train it again)", self.0))
    }
    /// At least `min` of something.
    pub fn at_least(&self, name: &str, got: usize, min: usize) -> Result<()> {
        if got < min {
            return Err(self.fail(format!("{name} has {got} entries, expected at least {min}")));
        }
        Ok(())
    }
    /// Exactly `want` of something.
    pub fn count(&self, name: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(self.fail(format!("{name} has {got} entries, expected {want}")));
        }
        Ok(())
    }
    /// A vector of `len` finite values.
    pub fn vec(&self, name: &str, v: &[f64], len: usize) -> Result<()> {
        self.values(name, v.len(), len, v.iter(), |x| x.is_finite())
    }
    /// A `rows` × `cols` matrix of finite values.
    pub fn mat(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
        self.matrix(name, m, rows, cols, |x| x.is_finite())
    }
    fn matrix(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize, ok: fn(&f64) -> bool) -> Result<()> {
        if m.dim() != (rows, cols) {
            return Err(self.fail(format!("{name} is {}x{}, expected {rows}x{cols}", m.nrows(), m.ncols())));
        }
        self.values(name, 0, 0, m.iter(), ok)
    }
    /// A matrix of 1 to `cols` rows of `cols` finite values (components, projections).
    pub fn rows(&self, name: &str, m: &Array2<f64>, cols: usize) -> Result<()> {
        if m.nrows() == 0 || m.nrows() > cols.max(1) {
            return Err(self.fail(format!("{name} has {} rows, expected 1 to {cols}", m.nrows())));
        }
        self.mat(name, m, m.nrows(), cols)
    }
    /// A vector of `len` values that rows are divided by (standard deviations): positive and
    /// finite with a reciprocal that is a normal number, so that dividing finite data by them
    /// gives finite numbers and multiplying back (an inverse) does not overflow at once. A model
    /// of zero or 1e308 scales would otherwise execute to NaN or inf columns without a word.
    pub fn divisors(&self, name: &str, v: &[f64], len: usize) -> Result<()> {
        self.values(name, v.len(), len, v.iter(), |x| *x > 0.0 && x.is_finite() && x.recip().is_normal())
    }
    /// Log-probabilities: −∞ is a valid value, NaN is not.
    pub fn log_vec(&self, name: &str, v: &[f64], len: usize) -> Result<()> {
        self.values(name, v.len(), len, v.iter(), |x| !x.is_nan() && *x != f64::INFINITY)
    }
    /// A `rows` × `cols` matrix of log-probabilities.
    pub fn log_mat(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
        self.matrix(name, m, rows, cols, |x| !x.is_nan() && *x != f64::INFINITY)
    }
    fn values<'v>(&self, name: &str, got: usize, want: usize, v: impl Iterator<Item = &'v f64>, ok: fn(&f64) -> bool) -> Result<()> {
        if got != want {
            return Err(self.fail(format!("{name} has {got} entries, expected {want}")));
        }
        match v.enumerate().find(|(_, x)| !ok(x)) {
            Some((i, x)) => Err(self.fail(format!("{name} holds {x:e} at position {i}, out of its range"))),
            None => Ok(()),
        }
    }
}
