//! The math's accumulators ([`crate::stats`]) as node partials: the statistics layer knows
//! nothing of nodes, and the nodes that use them share one implementation each.

use super::define::Partial;
use crate::comm::Comm;
use crate::error::Result;
use crate::io::Chunk;
use crate::stats::{Scatter, Tsqr};

// Scatter is the partial of moments, covariance, pca and whitening: merged exactly (reshift),
// joined by one allreduce, and stored in its flat f64 layout.
impl Partial for Scatter {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        Scatter::update(self, chunk.x);
        Ok(())
    }
    fn merge(&mut self, other: Self) {
        Scatter::merge(self, &other);
    }
    fn fits(&self, other: &Self) -> Result<()> {
        Scatter::fits(self, other)
    }
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        self.allreduce(comm)?;
        Ok(self)
    }
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(self.to_bytes())
    }
    fn decode(bytes: &[u8]) -> Result<Self> {
        Scatter::from_bytes(bytes)
    }
}

// The SVD's partial: a QR factor, merged by stacking and refactoring (TSQR).
impl Partial for Tsqr {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        Tsqr::update(self, chunk.x)
    }
    fn merge(&mut self, other: Self) {
        Tsqr::merge(self, other)
    }
    fn fits(&self, other: &Self) -> Result<()> {
        Tsqr::fits(self, other)
    }
}
