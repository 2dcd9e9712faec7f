//! flowmpi as a library, in daal4py's init/fini style:
//!
//! ```text
//! cargo build --release --examples
//! mpirun -n 4 target/release/examples/library      # or run it alone: one rank
//! ```
//!
//! Every rank builds its own rows of one global data set (uneven blocks; rank 1 gets none when
//! there are several ranks), fits covariance and PCA collectively, and checks that the model it
//! holds equals a plain single-process computation on all rows; then fits a whole flow from the
//! same arrays, saves it, loads it and executes it. Exits non-zero on mismatch.

use flowmpi::nodes::{CovarianceNode, Node, PcaNode, PcaParams};
use flowmpi::stats::two_pass_covariance;
use flowmpi::{Comm, Context};
use ndarray::{s, Array2};

/// Global row i of the data set (deterministic, so every rank can rebuild any row).
fn global_data(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 4), |(i, j)| {
        let t = i as f64 * 0.01;
        match j {
            0 => 1e3 + (3.0 * t).sin() * 5.0,
            1 => (3.0 * t).sin() * 2.0 + (11.0 * t).cos(),
            2 => (0.5 * t).cos() + 0.1 * (17.0 * t).sin(),
            _ => (7.0 * t).sin() * (2.0 * t).cos(),
        }
    })
}

fn main() {
    let ctx = Context::init(); // like daalinit(): MPI_Init unless the caller already did
    let comm = ctx.comm();
    let (rank, size) = (comm.rank(), comm.size());

    let n = 1000;
    let all = global_data(n);
    // Uneven contiguous blocks, rank 1 empty when size > 1.
    let weights: Vec<usize> = (0..size).map(|r| if size > 1 && r == 1 { 0 } else { r + 1 }).collect();
    let total: usize = weights.iter().sum();
    let lo: usize = weights[..rank].iter().sum::<usize>() * n / total;
    let hi: usize = weights[..=rank].iter().sum::<usize>() * n / total;
    let local = all.slice(s![lo..hi, ..]);
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();

    let mut cov = CovarianceNode::default();
    cov.fit(comm, local, &names).expect("covariance");
    let mut pca = PcaNode::new(PcaParams { n: Some(2), ..Default::default() });
    pca.fit(comm, local, &names).expect("pca");

    // Check against the single-process two-pass reference on all rows.
    let (cov, pca) = (cov.model().expect("trained"), pca.model().expect("trained"));
    let (mean, reference) = two_pass_covariance(all.view());
    let err = (&cov.covariance - &reference).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mean_err = cov.mean.iter().zip(mean.iter()).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    let ok = err <= 1e-10 * scale && mean_err <= 1e-10 && cov.count == n as u64;
    println!(
        "rank {rank}/{size}: {} local rows, covariance max error {err:.2e}, PCA eigenvalues {:.6?}, {}",
        local.nrows(),
        &pca.eigenvalues[..2],
        if ok { "ok" } else { "MISMATCH" }
    );
    // A whole flow from the same in-memory rows, saved, loaded and executed.
    let mut flow = flowmpi::Flow::parse("covariance | pca(n=2) | whitening").expect("flow");
    let report = flow.fit(comm, local, &names).expect("flow fit");
    let model = flowmpi::Model::new(&flow, None, names.clone(), report.rows, size);
    let path = std::env::temp_dir().join("flowmpi_library_example.json");
    model.save(comm, &path).expect("save"); // rank 0 writes, atomically
    let loaded = flowmpi::Model::load(&path).and_then(|m| m.flow()).expect("load");
    let white = loaded.execute(local).expect("execute");
    // Whitened outputs over all ranks: mean 0, unit variance.
    let mut sums = [white.column(0).sum(), white.column(0).mapv(|v| v * v).sum(), white.nrows() as f64];
    comm.allreduce_sum(&mut sums);
    let flow_ok = report.rows == n as u64 && sums[0].abs() < 1e-8 && (sums[1] / (sums[2] - 1.0) - 1.0).abs() < 1e-8;
    if rank == 0 {
        println!(
            "flow {}: {} rows, whitened output variance {:.12}, {}",
            flow.spec(),
            report.rows,
            sums[1] / (sums[2] - 1.0),
            if flow_ok { "ok" } else { "MISMATCH" }
        );
        let _ = std::fs::remove_file(&path);
    }
    let ok = ok && flow_ok;
    drop(ctx); // like daalfini(): MPI_Finalize if we initialised it
    if !ok {
        std::process::exit(1);
    }
}
