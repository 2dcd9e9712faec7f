//! A communicator that simulates N ranks with N threads of one process.
//!
//! Lets `cargo test` run whole SPMD flows with 1..8 ranks without mpirun, the way oneDAL tests
//! its SPMD kernels. Reductions gather all buffers and fold them in rank order.

use super::{fold_gathered, Comm};
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
}

/// One simulated rank; create a group with [`run_threads`].
pub struct ThreadComm {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl Comm for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn allreduce_sum(&self, buf: &mut [f64]) {
        fold_gathered(self, buf, |a, b| a + b)
    }
    fn allreduce_min(&self, buf: &mut [f64]) {
        fold_gathered(self, buf, f64::min)
    }
    fn allreduce_max(&self, buf: &mut [f64]) {
        fold_gathered(self, buf, f64::max)
    }
    fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        self.shared.slots.lock().unwrap()[self.rank] = mine.to_vec();
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().unwrap().clone();
        // Second barrier: nobody may overwrite a slot before everyone has read it.
        self.shared.barrier.wait();
        all
    }
    fn bcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        let mine = if self.rank == root { buf.clone() } else { Vec::new() };
        *buf = self.allgather_bytes(&mine).swap_remove(root);
    }
    fn barrier(&self) {
        self.shared.barrier.wait();
    }
}

/// Run `f` on `n` simulated ranks (threads) and return each rank's result, in rank order.
pub fn run_threads<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(&ThreadComm) -> R + Sync,
{
    let shared = Arc::new(Shared { barrier: Barrier::new(n), slots: Mutex::new(vec![Vec::new(); n]) });
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let comm = ThreadComm { rank, size: n, shared: shared.clone() };
                let f = &f;
                s.spawn(move || f(&comm))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("simulated rank panicked")).collect()
    })
}
