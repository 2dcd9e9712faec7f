//! flowmpi inside a program that manages MPI itself: the caller initialises MPI, flowmpi's
//! `Context` borrows it (and does not finalise it), and the caller keeps using MPI afterwards.
//!
//! ```text
//! mpirun -n 2 target/release/examples/borrowed_mpi
//! ```

use flowmpi::nodes::{MomentsNode, Node};
use flowmpi::Context;
use mpi::traits::*;
use ndarray::Array2;

fn main() {
    let universe = mpi::initialize().expect("the caller initialises MPI");
    let world = universe.world();
    let rank = world.rank() as usize;

    let mean = {
        let ctx = Context::init(); // borrows the caller's MPI
        let local = Array2::from_shape_fn((rank + 1, 2), |(i, j)| (rank * 10 + i + j) as f64);
        let mut m = MomentsNode::default();
        m.fit(ctx.comm(), local.view(), &["a".into(), "b".into()]).expect("moments");
        m.model().expect("trained").moments.mean.clone()
        // ctx dropped here: MPI must stay initialised for the caller
    };

    // MPI still works after flowmpi is done.
    assert!(mpi::environment::is_initialized() && !mpi::environment::is_finalized());
    let mut rows = 0u64;
    world.all_reduce_into(&(rank as u64 + 1), &mut rows, mpi::collective::SystemOperation::sum());
    let size = world.size() as usize;
    let n: usize = (1..=size).sum();
    let want: f64 = (0..size).flat_map(|r| (0..=r).map(move |i| (r * 10 + i) as f64)).sum::<f64>() / n as f64;
    let ok = rows as usize == n && (mean[0] - want).abs() < 1e-12;
    println!("rank {rank}: borrowed MPI, mean {:.4} (want {want:.4}), MPI alive afterwards: {}", mean[0], if ok { "ok" } else { "MISMATCH" });
    if !ok {
        std::process::exit(1);
    }
}
