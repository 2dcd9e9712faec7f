//! Two models trained at once on the two halves of `MPI_COMM_WORLD`, each through its own
//! flowmpi communicator — the way a simulation that runs two ensembles (or a host that gives
//! flowmpi a sub-group of its ranks) embeds flowmpi:
//!
//! ```text
//! mpirun -n 4 target/release/examples/split_communicator
//! ```
//!
//! The program owns MPI and splits the world itself. Each half hands its communicator to
//! flowmpi ([`MpiComm::from_communicator`], a duplicate: flowmpi's messages never meet the
//! program's), and the first half trains `moments | covariance` while the second trains
//! `pca(n=1)` on their own rows. The world is also handed over as a raw handle
//! ([`MpiComm::from_raw`], what a C or mpi4py caller has) to compare the halves' results. Each
//! model is checked against a serial computation on the half's rows, and on every rank of the
//! half; exits non-zero on a mismatch.

use flowmpi::comm::MpiComm;
use flowmpi::{Comm, Flow, Model};
use mpi::traits::*;
use ndarray::Array2;

/// Rank `r`'s rows (a different count on each; on 4 ranks, rank 2 none: an empty rank in a half).
fn rows_of(r: usize, size: usize) -> Array2<f64> {
    let n = if r == 2 && size == 4 { 0 } else { 3 + 2 * r };
    Array2::from_shape_fn((n, 3), |(i, j)| ((r * 31 + i * 7 + j * 3) % 11) as f64 + 0.25 * j as f64 * i as f64)
}

fn fail(what: &str) -> ! {
    eprintln!("split_communicator: MISMATCH: {what}");
    std::process::exit(1);
}

fn main() {
    let universe = mpi::initialize().expect("the program initialises MPI");
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let half = usize::from(rank >= size.div_ceil(2));
    let group = world.split_by_color(mpi::topology::Color::with_value(half as i32)).expect("a color for every rank");
    let members: Vec<usize> = (0..size).filter(|r| usize::from(*r >= size.div_ceil(2)) == half).collect();

    // flowmpi on this half: a duplicate of the program's communicator.
    let comm = MpiComm::from_communicator(&group);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let spec = if half == 0 { "moments | covariance" } else { "pca(n=1)" };
    let mut flow = Flow::parse(spec).expect("flow");
    let report = flow.fit(&comm, rows_of(rank, size).view(), &names).unwrap_or_else(|e| fail(&format!("training: {e}")));
    let model = Model::new(&flow, None, names.clone(), report.rows, comm.size());

    // The program's own messages on its communicator, between flowmpi's collectives.
    let mut total = 0u64;
    group.all_reduce_into(&(rows_of(rank, size).nrows() as u64), &mut total, mpi::collective::SystemOperation::sum());

    // The serial reference on the half's rows: the covariance (first half) or the leading
    // eigenvalue of it (second half).
    let all: Vec<Array2<f64>> = members.iter().map(|r| rows_of(*r, size)).collect();
    let x = ndarray::concatenate(ndarray::Axis(0), &all.iter().map(|a| a.view()).collect::<Vec<_>>()).unwrap();
    let n = x.nrows() as f64;
    let mean = x.mean_axis(ndarray::Axis(0)).unwrap();
    let centred = &x - &mean;
    let cov = centred.t().dot(&centred) / (n - 1.0);
    if report.rows != total || total != x.nrows() as u64 {
        fail(&format!("rank {rank}: {} rows trained, {total} counted by the program, {} in the half", report.rows, x.nrows()));
    }
    let node = model.nodes.last().unwrap();
    let scale = cov.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if half == 0 {
        let got: Vec<f64> = node["covariance"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap())).collect();
        let worst = got.iter().zip(cov.iter()).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        if got.len() != 9 || worst > 1e-12 * scale {
            fail(&format!("rank {rank}: covariance off by {worst:e} (scale {scale})"));
        }
    } else {
        // The largest eigenvalue by power iteration on the 3x3 covariance.
        let mut v = ndarray::Array1::from_elem(3, 1.0);
        for _ in 0..500 {
            let w = cov.dot(&v);
            v = &w / w.dot(&w).sqrt();
        }
        let lambda = v.dot(&cov.dot(&v));
        let got = node["eigenvalues"][0].as_f64().unwrap();
        if (got - lambda).abs() > 1e-9 * scale {
            fail(&format!("rank {rank}: leading eigenvalue {got} vs {lambda}"));
        }
    }

    // The whole world through a raw handle: every rank of a half holds the same model.
    // SAFETY: the world's handle is live until `universe` is dropped, after `whole`.
    let whole = unsafe { MpiComm::from_raw(world.as_raw()) }.expect("the world as a raw handle");
    let hashes = model.rank_hashes(&whole);
    for (r, h) in hashes.iter().enumerate() {
        let same_half = usize::from(r >= size.div_ceil(2)) == half;
        if same_half && *h != hashes[members[0]] {
            fail(&format!("rank {r}'s model differs from rank {}'s in the same half", members[0]));
        }
    }
    println!("rank {rank}: half {half} ({} ranks) trained {spec} on {} rows; the same model on every rank of the half", comm.size(), report.rows);
}
