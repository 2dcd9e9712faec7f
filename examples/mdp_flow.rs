//! The flow of MDP's parallel documentation, trained over MPI: PCA 100 → 10, then quadratic
//! SFA (SFA2) 10 → 10, each rank on its own block of a 100-column series.
//!
//! ```text
//! mpirun -n 4 target/release/examples/mdp_flow
//! ```
//! (The CLI version: `mpirun -n 4 flowmpi train --data 'tests/data/mdpflow/x{rank}.npy'
//! --flow 'pca(n=10) | sfa2(n=10)' --model m.json`.)
//!
//! Every rank makes its rows of the same global data set (800 rows; rank r of N gets a
//! contiguous block), trains the flow collectively, and checks that it holds the same model as
//! a one-process training on all rows. Exits non-zero on mismatch.

use flowmpi::io::{Chunk, Schema};
use flowmpi::nodes::{Node, NodeSpec, PcaNode, PcaParams, Sfa2Node};
use flowmpi::{Comm, Context};
use ndarray::{s, Array2};

fn global_data() -> Array2<f64> {
    let periods = [400.0, 170.0, 90.0, 40.0, 21.0, 13.0, 9.0, 7.0, 5.0, 3.3, 2.7, 2.2];
    Array2::from_shape_fn((800, 100), |(t, j)| {
        periods
            .iter()
            .enumerate()
            .map(|(k, p)| (2.0 * std::f64::consts::PI * t as f64 / p).sin() * (((k * 31 + j * 17) % 23) as f64 - 11.0) / 11.0)
            .sum::<f64>()
            + 0.01 * (((t * 7919 + j * 104729) % 1000) as f64 / 1000.0 - 0.5)
    })
}

/// Train PCA then SFA2 on `x` (this rank's rows), collectively.
fn train(comm: &dyn Comm, x: ndarray::ArrayView2<f64>) -> (PcaNode, Sfa2Node) {
    let names: Vec<String> = (0..100).map(|j| format!("x{j}")).collect();
    let mut pca = PcaNode::new(PcaParams { n: Some(10), ..Default::default() });
    pca.fit(comm, x, &names).expect("pca");
    let y = pca.execute(x).expect("execute");
    let mut sfa2 = Sfa2Node::from_spec(&NodeSpec::parse("sfa2(n=10)").unwrap()).unwrap();
    // One chunk = one segment of the series (a break before it), as one MDP data chunk.
    sfa2.fit_chunk(comm, &Chunk::new(y.view()), &Schema::features(&pca.output_names())).expect("sfa2");
    (pca, sfa2)
}

fn main() {
    let ctx = Context::init();
    let comm = ctx.comm();
    let (rank, size) = (comm.rank(), comm.size());
    let all = global_data();
    let (lo, hi) = (rank * 800 / size, (rank + 1) * 800 / size);
    let (_, sfa2) = train(comm, all.slice(s![lo..hi, ..]));

    // Reference: one process, the same blocks as separate segments of the series.
    let single = flowmpi::comm::SingleComm;
    let names: Vec<String> = (0..100).map(|j| format!("x{j}")).collect();
    let mut pca1 = PcaNode::new(PcaParams { n: Some(10), ..Default::default() });
    pca1.fit(&single, all.view(), &names).expect("pca");
    let mut sfa1 = Sfa2Node::from_spec(&NodeSpec::parse("sfa2(n=10)").unwrap()).unwrap();
    sfa1.begin(&Schema::features(&pca1.output_names())).unwrap();
    for r in 0..size {
        let block = pca1.execute(all.slice(s![r * 800 / size..(r + 1) * 800 / size, ..])).expect("execute");
        sfa1.update(&Chunk::new(block.view())).unwrap();
    }
    sfa1.join(&single).unwrap();

    let err =
        sfa2.model().expect("trained").sfa.delta.iter().zip(&sfa1.model().expect("trained").sfa.delta).fold(0.0f64, |m, (a, b)| m.max((a - b).abs() / b.abs()));
    let ok = err < 1e-8;
    println!(
        "rank {rank}/{size}: slowest delta values {:.6?}, max rel. difference to one process {err:.1e}: {}",
        &sfa2.model().expect("trained").sfa.delta[..3],
        if ok { "ok" } else { "MISMATCH" }
    );
    drop(ctx);
    if !ok {
        std::process::exit(1);
    }
}
