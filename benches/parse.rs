//! `cargo bench --bench parse`: in-memory CSV parsing and gram accumulation throughput, without
//! I/O or MPI noise. Prints MB/s and rows/s (best of several runs) for the pieces of the
//! single-pass hot path: parse a block, then update a moments / covariance accumulator.

use flowmpi::io::csv::{parse_block, FieldPlan, NanPolicy, Rows};
use flowmpi::stats::Scatter;
use ndarray::ArrayView2;

mod common;
use common::best;

fn main() {
    let (rows, d) = (300_000usize, 33usize);
    // Values like the benchmark data: 6 decimals, magnitudes 0.01..30, mixed signs.
    let mut state = 7u64;
    let mut text = Vec::new();
    for _ in 0..rows {
        for j in 0..d {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.45) * (1.0 + j as f64);
            if j > 0 {
                text.push(b',');
            }
            text.extend_from_slice(format!("{}", (v * 1e6).round() / 1e6).as_bytes());
        }
        text.push(b'\n');
    }
    let plan = FieldPlan::new(d, (0..d).map(Some).collect(), d, (0..d).map(|j| format!("x{j}")).collect(), None);
    let mut out = Rows { vals: Vec::with_capacity(rows * d), labels: Vec::new() };
    let mb = text.len() as f64 / 1e6;
    let t = best(10, || {
        out.vals.clear();
        parse_block(&text, 0, b',', &plan, NanPolicy::Error, &mut out).unwrap();
    });
    println!("parse_block      {:8.0} MB/s {:8.2} Mrows/s  ({mb:.0} MB, {rows} rows x {d})", mb / t, rows as f64 / t / 1e6);
    let x = ArrayView2::from_shape((rows, d), &out.vals).unwrap();
    for (name, full) in [("moments update", false), ("covariance upd.", true)] {
        let t = best(10, || {
            let mut s = Scatter::new(d, full);
            for c in x.axis_chunks_iter(ndarray::Axis(0), 16384) {
                s.update(c);
            }
            std::hint::black_box(&s);
        });
        println!("{name:16} {:8.0} MB/s {:8.2} Mrows/s  (MB of the CSV text it came from)", mb / t, rows as f64 / t / 1e6);
    }
}
