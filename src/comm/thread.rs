//! A communicator that simulates N ranks with N threads of one process.
//!
//! Lets `cargo test` run whole SPMD flows with 1..8 ranks without mpirun, the way oneDAL tests
//! its SPMD kernels. Reductions gather all buffers and fold them in rank order.

use super::{fold_gathered, Comm};
use std::collections::VecDeque;
use std::sync::{Arc, Barrier, Condvar, Mutex};

/// One rank's point-to-point mailbox: (source, tag, bytes) in arrival order.
type Mailbox = VecDeque<(usize, u16, Vec<u8>)>;

struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
    /// Point-to-point mailboxes, one per rank: (source, tag, bytes) in arrival order.
    mail: Mutex<Vec<Mailbox>>,
    arrived: Condvar,
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
    fn send_bytes(&self, dest: usize, tag: u16, buf: &[u8]) {
        self.shared.mail.lock().unwrap()[dest].push_back((self.rank, tag, buf.to_vec()));
        self.shared.arrived.notify_all();
    }
    fn try_recv_bytes(&self, tag: u16) -> Option<(usize, Vec<u8>)> {
        let mut mail = self.shared.mail.lock().unwrap();
        let at = mail[self.rank].iter().position(|m| m.1 == tag)?;
        mail[self.rank].remove(at).map(|(src, _, b)| (src, b))
    }
    fn recv_bytes(&self, src: usize, tag: u16) -> Vec<u8> {
        let mut mail = self.shared.mail.lock().unwrap();
        loop {
            if let Some(at) = mail[self.rank].iter().position(|m| m.0 == src && m.1 == tag) {
                return mail[self.rank].remove(at).unwrap().2;
            }
            mail = self.shared.arrived.wait(mail).unwrap();
        }
    }
}

/// Run `f` on `n` simulated ranks (threads) and return each rank's result, in rank order.
pub fn run_threads<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(&ThreadComm) -> R + Sync,
{
    let shared = Arc::new(Shared {
        barrier: Barrier::new(n),
        slots: Mutex::new(vec![Vec::new(); n]),
        mail: Mutex::new(vec![VecDeque::new(); n]),
        arrived: Condvar::new(),
    });
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
