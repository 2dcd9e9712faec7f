//! `cargo bench --bench kmeans`: in-memory k-means Lloyd throughput on one rank, without I/O or
//! MPI noise: 2,000,000 rows x 32 features (one rank's half of the issue #3 benchmark), k = 8,
//! 10 iterations from given centroids. Prints the time of update + join (copying the rows in,
//! with the first Lloyd step taken on the way, the other iterations, and the final
//! relabelling) next to a baseline measured in the same run: one plain pass summing the rows
//! (the memory-bandwidth floor of one Lloyd iteration).

use flowmpi::comm::SingleComm;
use flowmpi::io::{Chunk, Schema};
use flowmpi::nodes::{build, NodeSpec};
use ndarray::Array2;
use std::time::Instant;

mod common;
use common::best;

fn main() {
    let n: usize = std::env::var("ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let (d, k, iters) = (32usize, 8usize, 10usize);
    let mut state = 11u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // k blobs in 32 dimensions, rows in random blob order.
    let centres: Vec<f64> = (0..k * d).map(|_| next() * 10.0).collect();
    let x = Array2::from_shape_fn((n, d), |(_, _)| next());
    let mut x = x;
    for mut row in x.rows_mut() {
        let b = (row[0] * k as f64) as usize % k;
        for (j, v) in row.iter_mut().enumerate() {
            *v = centres[b * d + j] + 2.0 * (*v - 0.5);
        }
    }
    let names: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    let init = std::env::temp_dir().join(format!("flowmpi-bench-init-{}.csv", std::process::id()));
    let mut text = names.join(",") + "\n";
    for i in 0..k {
        text += &x.row(i).iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        text += "\n";
    }
    std::fs::write(&init, text).unwrap();
    let spec = NodeSpec::parse(&format!("kmeans(init={}, max_iter={iters}, tol=0)", init.display())).unwrap();
    let schema = Schema::features(&names);

    let floor = best(5, || {
        let mut s = vec![0.0; d];
        for row in x.rows() {
            for (a, v) in s.iter_mut().zip(row) {
                *a += v;
            }
        }
        std::hint::black_box(&s);
    });
    let mut join = f64::INFINITY;
    let mut n_iter = 0;
    for _ in 0..3 {
        let mut node = build(&spec).unwrap();
        node.begin(&schema).unwrap();
        let t = Instant::now();
        node.update(&Chunk::new(x.view())).unwrap();
        node.join(&SingleComm).unwrap();
        join = join.min(t.elapsed().as_secs_f64());
        n_iter = node.to_json()["n_iter"].as_u64().unwrap();
    }
    let _ = std::fs::remove_file(&init);
    let passes = n_iter as f64 + 1.0;
    println!("sum pass (floor)  {:7.1} ms/pass  {:6.1} Mrows/s", floor * 1e3, n as f64 / floor / 1e6);
    println!(
        "kmeans fit        {:7.3} s for copy + {n_iter} iterations + relabel: {:7.1} ms/pass, {:.2}x the floor ({n} rows x {d}, k={k})",
        join,
        join / passes * 1e3,
        join / passes / floor
    );
}
