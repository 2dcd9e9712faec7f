//! The `Comm` trait: the only door to inter-rank communication.
//!
//! Math and I/O code never see MPI; they see a `Comm`. Three implementations exist:
//! [`SingleComm`] (one rank, no MPI), [`ThreadComm`] (N simulated ranks as threads, for tests)
//! and `MpiComm` (rsmpi, behind the default cargo feature `mpi`). Every reduction is deterministic and returns bit-identical results
//! on every rank, so models computed from reduced statistics are identical everywhere.

#[cfg(feature = "mpi")]
mod mpi_comm;
#[cfg(not(feature = "mpi"))]
mod no_mpi;
mod single;
mod thread;
pub mod tree;

#[cfg(feature = "mpi")]
pub use mpi_comm::{Context, MpiComm};
#[cfg(not(feature = "mpi"))]
pub use no_mpi::Context;
pub use single::SingleComm;
pub use thread::{run_threads, ThreadComm};

use crate::error::{Error, Result};

/// Collective operations over a group of ranks. All ranks must call the same collectives in
/// the same order (SPMD); buffers must have the same length on every rank. One thread uses a
/// communicator (MPI runs at level Funneled), so the trait does not ask for `Sync`.
pub trait Comm {
    /// This rank's id, `0..size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Element-wise sum over ranks, result on every rank.
    fn allreduce_sum(&self, buf: &mut [f64]);
    /// Element-wise minimum over ranks, result on every rank.
    fn allreduce_min(&self, buf: &mut [f64]);
    /// Element-wise maximum over ranks, result on every rank.
    fn allreduce_max(&self, buf: &mut [f64]);
    /// Every rank's bytes (any length), in rank order, on every rank.
    fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>>;
    /// Replace `buf` on every rank with `root`'s `buf`.
    fn bcast_bytes(&self, root: usize, buf: &mut Vec<u8>);
    /// Wait until every rank arrives.
    fn barrier(&self);
    /// Point-to-point: send a small control message to `dest` with `tag` (it is buffered: the
    /// call does not wait for the receive). Only the thread that owns the communicator calls it.
    fn send_bytes(&self, dest: usize, tag: u16, buf: &[u8]);
    /// A message with `tag` from any rank, if one has arrived: (source, bytes).
    fn try_recv_bytes(&self, tag: u16) -> Option<(usize, Vec<u8>)>;
    /// Wait for a message with `tag` from `src`.
    fn recv_bytes(&self, src: usize, tag: u16) -> Vec<u8>;
    /// Every rank's bytes on `root` only, in rank order (other ranks get an empty list):
    /// for results too big to hold on every rank. Collective. The default gathers everywhere
    /// (right for in-process communicators); MPI overrides it with `MPI_Gatherv`.
    fn gather_bytes(&self, root: usize, mine: &[u8]) -> Vec<Vec<u8>> {
        let all = self.allgather_bytes(mine);
        if self.rank() == root {
            all
        } else {
            Vec::new()
        }
    }
    /// Personalised all-to-all: `out[r]` goes to rank `r`; returns what every rank sent to this
    /// one, in rank order (`out.len()` must be `size`). Collective. The default gathers every
    /// rank's whole `out` everywhere, which is right only for in-process communicators; MPI
    /// overrides it with `MPI_Alltoallv`.
    fn alltoall_bytes(&self, out: &[Vec<u8>]) -> Vec<Vec<u8>> {
        assert_eq!(out.len(), self.size(), "alltoall needs one buffer per rank");
        let all = self.allgather_bytes(&bincode::serialize(out).expect("buffers encode"));
        all.iter().map(|b| bincode::deserialize::<Vec<Vec<u8>>>(b).expect("buffers decode").swap_remove(self.rank())).collect()
    }
}

/// Turn a local result into a collective one: if any rank failed, every rank returns the lowest
/// failing rank's error (the error itself: its kind, rank, file and line). Call it at the end of every phase so that a
/// rank with bad input never leaves the others waiting in a collective (the classic SPMD hang).
pub fn agree<T>(comm: &dyn Comm, local: Result<T>) -> Result<T> {
    let mut flag = [if local.is_err() { comm.rank() as f64 } else { comm.size() as f64 }];
    comm.allreduce_min(&mut flag);
    let failed = flag[0] as usize;
    if failed >= comm.size() {
        return local;
    }
    let mut msg = match &local {
        Err(e) if comm.rank() == failed => bincode::serialize(e).unwrap_or_else(|_| bincode::serialize(&Error::Peer(e.to_string())).expect("a string encodes")),
        _ => Vec::new(),
    };
    comm.bcast_bytes(failed, &mut msg);
    match local {
        Err(e) if comm.rank() == failed => Err(e),
        _ => Err(bincode::deserialize(&msg).unwrap_or_else(|e| Error::Peer(format!("rank {failed} failed (its error could not be decoded: {e})")))),
    }
}

/// Every rank's `value`, in rank order, on every rank (any serde type; bincode on the wire).
pub fn allgather<T: serde::Serialize + serde::de::DeserializeOwned>(comm: &dyn Comm, value: &T) -> Vec<T> {
    let mine = bincode::serialize(value).expect("value encodes");
    comm.allgather_bytes(&mine).iter().map(|b| bincode::deserialize(b).expect("a value this build encoded")).collect()
}

/// Rank `root`'s `value` on every rank (any serde type; bincode on the wire). `value` is
/// read on the root only: the other ranks may pass `None`.
pub fn broadcast<T: serde::Serialize + serde::de::DeserializeOwned>(comm: &dyn Comm, root: usize, value: Option<&T>) -> T {
    let mut bytes = match value {
        Some(v) if comm.rank() == root => bincode::serialize(v).expect("value encodes"),
        _ => Vec::new(),
    };
    comm.bcast_bytes(root, &mut bytes);
    bincode::deserialize(&bytes).expect("a value this build encoded")
}

/// Gather one `f64` from each rank, in rank order, on every rank.
pub fn allgather_f64(comm: &dyn Comm, x: f64) -> Vec<f64> {
    comm.allgather_bytes(&x.to_le_bytes()).iter().map(|b| f64::from_le_bytes(b[..8].try_into().expect("8 bytes"))).collect()
}

/// Reduce by gathering every rank's buffer and folding in rank order: deterministic and
/// identical on every rank. Used by the in-process communicators.
pub(crate) fn fold_gathered(comm: &dyn Comm, buf: &mut [f64], op: fn(f64, f64) -> f64) {
    let bytes: Vec<u8> = buf.iter().flat_map(|v| v.to_le_bytes()).collect();
    let all = comm.allgather_bytes(&bytes);
    for (i, slot) in buf.iter_mut().enumerate() {
        let at = |r: usize| f64::from_le_bytes(all[r][i * 8..i * 8 + 8].try_into().unwrap());
        let mut acc = at(0);
        for r in 1..all.len() {
            acc = op(acc, at(r));
        }
        *slot = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_reports_lowest_failing_rank_everywhere() {
        let out = run_threads(4, |c| {
            let local: Result<()> = if c.rank() == 1 || c.rank() == 3 { Err(Error::Fit(format!("boom on {}", c.rank()))) } else { Ok(()) };
            agree(c, local).unwrap_err().to_string()
        });
        assert!(out.iter().all(|m| m == "boom on 1"), "{out:?}");
    }

    #[test]
    fn every_rank_gets_the_failing_ranks_error_itself_with_its_location() {
        let out = run_threads(3, |c| {
            let local: Result<()> = if c.rank() == 2 { Err(Error::data(2, "part2.csv", Some(7), "bad number")) } else { Ok(()) };
            match agree(c, local) {
                Err(Error::Data { loc, msg }) => (loc, msg),
                other => panic!("rank {}: {other:?}", c.rank()),
            }
        });
        for (loc, msg) in &out {
            assert_eq!((loc.rank, loc.path.as_str(), loc.line, msg.as_str()), (2, "part2.csv", Some(7), "bad number"));
        }
    }

    #[test]
    fn reductions_are_identical_on_all_ranks() {
        let out = run_threads(3, |c| {
            let mut s = [c.rank() as f64 + 0.1, 1.0];
            c.allreduce_sum(&mut s);
            let mut m = [c.rank() as f64];
            c.allreduce_max(&mut m);
            let mut n = [c.rank() as f64];
            c.allreduce_min(&mut n);
            let mut b = if c.rank() == 2 { b"hi".to_vec() } else { vec![] };
            c.bcast_bytes(2, &mut b);
            (s, m[0], n[0], b)
        });
        for o in &out {
            assert_eq!(o, &out[0]);
        }
        assert!((out[0].0[0] - 3.3).abs() < 1e-12);
        assert_eq!(out[0].0[1], 3.0);
        assert_eq!(out[0].1, 2.0);
        assert_eq!(out[0].2, 0.0);
        assert_eq!(out[0].3, b"hi".to_vec());
    }
}
