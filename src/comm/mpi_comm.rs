//! The MPI communicator (rsmpi) and the library's init/fini guard.
//!
//! This file is the only place that talks to MPI.

use super::Comm;
use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

/// rsmpi counts are 32-bit: large buffers go in pieces of at most this many elements.
const MAX_PIECE: usize = 1 << 27;

/// Elements per piece of the fixed-size collectives: [`MAX_PIECE`], or fewer when
/// FLOWMPI_COMM_PIECE (bytes) asks for small pieces, so tests exercise them.
fn piece_elems() -> usize {
    std::env::var("FLOWMPI_COMM_PIECE").ok().and_then(|v| v.parse::<usize>().ok()).map_or(MAX_PIECE, |b| (b / 8).clamp(1, MAX_PIECE))
}

/// The tag of [`MpiComm::tree_sum_to_root`]'s messages (the parallel map's control messages
/// use 71xx).
const TAG_TREE_SUM: i32 = 7201;

/// A communicator over MPI: MPI_COMM_WORLD (the [`Context`]'s), or a duplicate of any
/// communicator the caller has, so that flowmpi's messages never meet the caller's.
///
/// A duplicate is freed (`MPI_Comm_free`) when the `MpiComm` is dropped: drop it before MPI is
/// finalised.
pub struct MpiComm {
    comm: SimpleCommunicator,
}

impl MpiComm {
    /// flowmpi over the ranks of `comm` (any rsmpi communicator: a split of the world, a
    /// sub-group): a duplicate (`MPI_Comm_dup`, collective over `comm`), which the caller's
    /// communicator does not share messages with. The caller keeps `comm`.
    pub fn from_communicator<C: Communicator>(comm: &C) -> MpiComm {
        MpiComm { comm: comm.duplicate() }
    }

    /// flowmpi over this process alone (a duplicate of MPI_COMM_SELF).
    pub fn self_() -> MpiComm {
        Self::from_communicator(&SimpleCommunicator::self_comm())
    }

    /// flowmpi over the ranks of a raw `MPI_Comm` handle (from C, Fortran via `MPI_Comm_f2c`,
    /// or mpi4py's `comm.handle`): duplicated (collective over it), and the caller keeps the
    /// handle. Refused: MPI not initialised, a null handle, an inter-communicator.
    ///
    /// # Safety
    /// `handle` must be a live communicator of this process's MPI (or `MPI_COMM_NULL`, refused).
    pub unsafe fn from_raw(handle: mpi::ffi::MPI_Comm) -> crate::error::Result<MpiComm> {
        use crate::error::Error;
        if !mpi::is_initialized() || mpi::environment::is_finalized() {
            return Err(Error::Param("MpiComm::from_raw: MPI is not initialised (or already finalised)".into()));
        }
        // SAFETY (of the calls below): the caller promises a live handle; the null handle and
        // inter-communicators are refused before the dup.
        unsafe {
            if handle == mpi::ffi::RSMPI_COMM_NULL {
                return Err(Error::Param("MpiComm::from_raw: the handle is MPI_COMM_NULL".into()));
            }
            let mut inter = 0;
            if mpi::ffi::MPI_Comm_test_inter(handle, &mut inter) != 0 || inter != 0 {
                return Err(Error::Param("MpiComm::from_raw: not an intra-communicator (flowmpi needs one group of ranks)".into()));
            }
            let mut dup = mpi::ffi::RSMPI_COMM_NULL;
            if mpi::ffi::MPI_Comm_dup(handle, &mut dup) != 0 {
                return Err(Error::Param("MpiComm::from_raw: MPI_Comm_dup failed".into()));
            }
            Ok(MpiComm { comm: SimpleCommunicator::from_raw(dup) })
        }
    }

    /// The raw handle of flowmpi's communicator (for a caller that passes it on to C).
    pub fn as_raw(&self) -> mpi::ffi::MPI_Comm {
        self.comm.as_raw()
    }

    fn pieces(len: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
        let piece = piece_elems();
        (0..len).step_by(piece).map(move |s| s..(s + piece).min(len))
    }

    /// Sum `buf` over all ranks into rank 0's `buf` along a binomial tree: at step `s` (1, 2,
    /// 4, ...) rank `r` with `r % 2s == s` sends its subtree's sum to `r - s` and is done, and
    /// rank `r % 2s == 0` adds `r + s`'s sum to its own, `mine + theirs`, always in that order.
    /// Other ranks' `buf` is left holding a partial sum. `theirs` is scratch space.
    fn tree_sum_to_root(&self, buf: &mut [f64], theirs: &mut Vec<f64>) {
        let (me, n) = (self.rank(), self.size());
        let mut step = 1;
        while step < n {
            if me % (2 * step) == step {
                self.comm.process_at_rank((me - step) as i32).send_with_tag(&buf[..], TAG_TREE_SUM);
                return;
            }
            if me + step < n {
                theirs.resize(buf.len(), 0.0);
                self.comm.process_at_rank((me + step) as i32).receive_into_with_tag(&mut theirs[..], TAG_TREE_SUM);
                for (a, b) in buf.iter_mut().zip(theirs.iter()) {
                    *a += *b;
                }
            }
            step *= 2;
        }
    }

    fn allreduce(&self, buf: &mut [f64], op: SystemOperation) {
        for r in Self::pieces(buf.len()) {
            let send = buf[r.clone()].to_vec();
            self.comm.all_reduce_into(&send[..], &mut buf[r], op);
        }
    }
}

/// Bytes per rank pair and round of the variable-count collectives. MPI counts and
/// displacements are 32-bit: with at most 1 GiB ÷ ranks per pair, a round's whole receive buffer
/// stays below 1 GiB whatever the rank count. FLOWMPI_COMM_PIECE (bytes) forces small pieces,
/// so tests exercise the rounds.
fn piece_bytes(ranks: usize) -> usize {
    std::env::var("FLOWMPI_COMM_PIECE").ok().and_then(|v| v.parse().ok()).unwrap_or((1usize << 30) / ranks).max(1)
}

/// Offsets of consecutive blocks of `counts` elements.
fn displacements(counts: &[Count]) -> Vec<Count> {
    counts
        .iter()
        .scan(0 as Count, |acc, &c| {
            let d = *acc;
            *acc += c;
            Some(d)
        })
        .collect()
}

// Not Sync, and Comm does not ask for it: MPI runs at level Funneled, so only the thread that
// owns the communicator calls it; worker threads talk to it through channels (`par`).

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }
    fn size(&self) -> usize {
        self.comm.size() as usize
    }
    fn allreduce_sum(&self, buf: &mut [f64]) {
        // Our own binomial tree to rank 0, then a broadcast, instead of MPI_Allreduce or
        // MPI_Reduce: the standard does not promise every rank the same rounding from an
        // allreduce, and MPI_Reduce picks its algorithm (so the order of the additions) by
        // message size, Open MPI version and tuning. The tree fixes the order: the bits depend
        // on the rank count only, never on the piece size or the MPI library.
        let root = self.comm.process_at_rank(0);
        let mut theirs = Vec::new();
        for r in Self::pieces(buf.len()) {
            self.tree_sum_to_root(&mut buf[r.clone()], &mut theirs);
            root.broadcast_into(&mut buf[r]);
        }
    }
    fn allreduce_min(&self, buf: &mut [f64]) {
        self.allreduce(buf, SystemOperation::min())
    }
    fn allreduce_max(&self, buf: &mut [f64]) {
        self.allreduce(buf, SystemOperation::max())
    }
    fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        let n = self.size();
        let mut lens = vec![0u64; n];
        self.comm.all_gather_into(&(mine.len() as u64), &mut lens[..]);
        // In rounds of at most `piece` bytes per rank, like gather_bytes: counts and
        // displacements stay 32-bit for payloads of any size.
        let piece = piece_bytes(n);
        let rounds = (lens.iter().copied().max().unwrap_or(0) as usize).div_ceil(piece);
        let mut got: Vec<Vec<u8>> = lens.iter().map(|&l| Vec::with_capacity(l as usize)).collect();
        for k in 0..rounds {
            let span = |len: usize| (k * piece).min(len)..((k + 1) * piece).min(len);
            let counts: Vec<Count> = lens.iter().map(|&l| span(l as usize).len() as Count).collect();
            let displs = displacements(&counts);
            let total = counts.iter().sum::<Count>() as usize;
            // Buffers with at least one byte of capacity: an empty Rust slice's address (1) is
            // MPI_IN_PLACE to Open MPI.
            // Capacity for this round's bytes (not a whole piece: 1 GiB on one rank, which
            // aborted every command under an address-space limit such as `ulimit -v`).
            let mut send = Vec::with_capacity(1 + span(mine.len()).len());
            send.extend_from_slice(&mine[span(mine.len())]);
            let mut recv = vec![0u8; total + 1];
            {
                let mut part = PartitionMut::new(&mut recv[..total], &counts[..], &displs[..]);
                self.comm.all_gather_varcount_into(&send[..], &mut part);
            }
            for r in 0..n {
                got[r].extend_from_slice(&recv[displs[r] as usize..(displs[r] + counts[r]) as usize]);
            }
        }
        got
    }
    fn bcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        let root = self.comm.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        buf.resize(len as usize, 0);
        for r in Self::pieces(buf.len()) {
            root.broadcast_into(&mut buf[r]);
        }
    }
    fn barrier(&self) {
        self.comm.barrier();
    }
    fn gather_bytes(&self, root: usize, mine: &[u8]) -> Vec<Vec<u8>> {
        let n = self.size();
        let at = self.comm.process_at_rank(root as i32);
        let is_root = self.rank() == root;
        let mut lens = vec![0u64; n];
        if is_root {
            at.gather_into_root(&(mine.len() as u64), &mut lens[..]);
        } else {
            at.gather_into(&(mine.len() as u64));
        }
        // In rounds of at most `piece` bytes per rank, like alltoall_bytes.
        let piece = piece_bytes(n);
        let mut longest = [mine.len() as f64];
        self.allreduce(&mut longest, SystemOperation::max());
        let rounds = (longest[0] as usize).div_ceil(piece);
        let mut got: Vec<Vec<u8>> = if is_root { lens.iter().map(|&l| Vec::with_capacity(l as usize)).collect() } else { Vec::new() };
        for k in 0..rounds {
            let span = |len: usize| (k * piece).min(len)..((k + 1) * piece).min(len);
            // Capacity for this round's bytes (not a whole piece: 1 GiB on one rank, which
            // aborted every command under an address-space limit such as `ulimit -v`).
            let mut send = Vec::with_capacity(1 + span(mine.len()).len());
            send.extend_from_slice(&mine[span(mine.len())]);
            if !is_root {
                at.gather_varcount_into(&send[..]);
                continue;
            }
            let counts: Vec<Count> = lens.iter().map(|&l| span(l as usize).len() as Count).collect();
            let displs = displacements(&counts);
            let total = counts.iter().sum::<Count>() as usize;
            let mut recv = vec![0u8; total + 1];
            {
                let mut part = PartitionMut::new(&mut recv[..total], &counts[..], &displs[..]);
                at.gather_varcount_into_root(&send[..], &mut part);
            }
            for r in 0..n {
                got[r].extend_from_slice(&recv[displs[r] as usize..(displs[r] + counts[r]) as usize]);
            }
        }
        got
    }
    fn alltoall_bytes(&self, out: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let n = self.size();
        assert_eq!(out.len(), n, "alltoall needs one buffer per rank");
        let lens: Vec<u64> = out.iter().map(|b| b.len() as u64).collect();
        let mut incoming = vec![0u64; n];
        self.comm.all_to_all_into(&lens[..], &mut incoming[..]);
        let piece = piece_bytes(n);
        let mut longest = [out.iter().map(Vec::len).max().unwrap_or(0) as f64];
        self.allreduce(&mut longest, SystemOperation::max());
        let rounds = (longest[0] as usize).div_ceil(piece);
        let mut got: Vec<Vec<u8>> = incoming.iter().map(|&l| Vec::with_capacity(l as usize)).collect();
        for k in 0..rounds {
            let span = |len: usize| (k * piece).min(len)..((k + 1) * piece).min(len);
            let send_counts: Vec<Count> = out.iter().map(|b| span(b.len()).len() as Count).collect();
            let recv_counts: Vec<Count> = incoming.iter().map(|&l| span(l as usize).len() as Count).collect();
            // Buffers with at least one byte of capacity: an empty Rust slice's address (1) is
            // MPI_IN_PLACE to Open MPI.
            let mut send = Vec::with_capacity(1 + send_counts.iter().sum::<Count>() as usize);
            for b in out {
                send.extend_from_slice(&b[span(b.len())]);
            }
            let total = recv_counts.iter().sum::<Count>() as usize;
            let mut recv = vec![0u8; total + 1];
            let (sd, rd) = (displacements(&send_counts), displacements(&recv_counts));
            {
                let part = Partition::new(&send[..], &send_counts[..], &sd[..]);
                let mut rpart = PartitionMut::new(&mut recv[..total], &recv_counts[..], &rd[..]);
                self.comm.all_to_all_varcount_into(&part, &mut rpart);
            }
            for r in 0..n {
                got[r].extend_from_slice(&recv[rd[r] as usize..(rd[r] + recv_counts[r]) as usize]);
            }
        }
        got
    }
    fn send_bytes(&self, dest: usize, tag: u16, buf: &[u8]) {
        // Control messages are a few bytes: every MPI sends those eagerly, so the send does not
        // wait for its receive (two ranks may send to each other at once).
        debug_assert!(buf.len() <= 1024, "point-to-point is for small control messages");
        static NOTHING: [u8; 1] = [0];
        let buf = if buf.is_empty() { &NOTHING[..0] } else { buf };
        self.comm.process_at_rank(dest as i32).send_with_tag(buf, tag as i32);
    }
    fn try_recv_bytes(&self, tag: u16) -> Option<(usize, Vec<u8>)> {
        let probed = self.comm.any_process().immediate_matched_probe_with_tag(tag as i32)?;
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        Some((status.source_rank() as usize, bytes))
    }
    fn recv_bytes(&self, src: usize, tag: u16) -> Vec<u8> {
        self.comm.process_at_rank(src as i32).receive_vec_with_tag::<u8>(tag as i32).0
    }
}

/// The init/fini guard, like daal4py's `daalinit()` / `daalfini()`.
///
/// `Context::init()` initialises MPI (threading level Funneled) unless the caller already did,
/// in which case it borrows MPI_COMM_WORLD and leaves finalisation to the caller. Dropping the
/// guard finalises MPI if, and only if, this guard initialised it. Works without mpirun too
/// (a world of one rank).
///
/// ```no_run
/// let ctx = flowmpi::Context::init();
/// let comm = ctx.comm();
/// println!("rank {} of {}", flowmpi::Comm::rank(comm), flowmpi::Comm::size(comm));
/// ```
pub struct Context {
    comm: MpiComm,
    // Dropped last: finalises MPI when we initialised it.
    _universe: Option<Universe>,
}

impl Context {
    /// Initialise (or borrow) MPI. Nothing process-wide is installed: no panic hook, no signal
    /// handler (a host program keeps its own); see [`crate::panics`] for what a panic does.
    pub fn init() -> Context {
        let universe = if mpi::is_initialized() {
            None
        } else {
            let (u, _provided) = mpi::initialize_with_threading(mpi::Threading::Funneled).expect("MPI initialisation failed");
            Some(u)
        };
        Context { comm: MpiComm { comm: SimpleCommunicator::world() }, _universe: universe }
    }

    /// The communicator over all ranks (MPI_COMM_WORLD).
    pub fn comm(&self) -> &MpiComm {
        &self.comm
    }

    /// What ends the whole job (`MPI_Abort` on MPI_COMM_WORLD, exit code 70) when several ranks
    /// run, for a program's panic hook ([`crate::panics::install_hook`]): a rank that dies
    /// alone would leave its peers waiting in a collective. `None` for a single rank.
    pub fn job_abort(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        (self.comm.size() > 1).then(|| Box::new(|| SimpleCommunicator::world().abort(70)) as Box<dyn Fn() + Send + Sync>)
    }
}
