//! The one-rank communicator: every collective is the identity.

use super::Comm;

/// A communicator of exactly one rank, used when flowmpi runs without MPI.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleComm;

impl Comm for SingleComm {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn allreduce_sum(&self, _: &mut [f64]) {}
    fn allreduce_min(&self, _: &mut [f64]) {}
    fn allreduce_max(&self, _: &mut [f64]) {}
    fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        vec![mine.to_vec()]
    }
    fn bcast_bytes(&self, _: usize, _: &mut Vec<u8>) {}
    fn barrier(&self) {}
}
