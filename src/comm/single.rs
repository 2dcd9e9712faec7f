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
    // One rank has no peer: callers keep point-to-point traffic for size > 1.
    fn send_bytes(&self, _: usize, _: u16, _: &[u8]) {
        unreachable!("a single rank has no peer to send to")
    }
    fn try_recv_bytes(&self, _: u16) -> Option<(usize, Vec<u8>)> {
        None
    }
    fn recv_bytes(&self, _: usize, _: u16) -> Vec<u8> {
        unreachable!("a single rank has no peer to receive from")
    }
}
