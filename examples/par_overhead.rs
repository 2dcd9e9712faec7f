//! Per-item overhead of `par::parallelize` on 100,000 tiny items (a few ns of work each), for
//! each schedule, against a plain serial loop measured in the same run. Run by
//! `scripts/bench_map.sh` under `mpirun -n 1, 2, 4`:
//!
//! ```text
//! mpirun -n 2 target/release/examples/par_overhead [ITEMS]
//! ```

use flowmpi::par::{self, Options, Schedule};
use flowmpi::{Comm, Context};
use std::time::Instant;

fn tiny(x: &u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn main() {
    let ctx = Context::init();
    let comm = ctx.comm();
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let items: Vec<u64> = (0..n as u64).collect();
    let t = Instant::now();
    let serial: Vec<u64> = items.iter().map(tiny).collect();
    let loop_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let schedules = [
        ("static", Schedule::Static),
        ("guided(1)", Schedule::Guided { chunk: 1 }),
        ("guided(100)", Schedule::Guided { chunk: 100 }),
        ("dynamic(100)", Schedule::Dynamic { chunk: 100 }),
    ];
    for (name, schedule) in schedules {
        let opts = Options { schedule, ..Options::default() };
        comm.barrier();
        let t = Instant::now();
        let got = par::parallelize_with(comm, &items, &opts, |_, x| Ok::<_, String>(tiny(x))).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(got == serial, "{name}: results differ from the serial loop");
        if comm.rank() == 0 {
            println!("{} ranks  {name:<13} {n} items  {:.3} s  {:.3} µs/item  (serial loop {:.4} µs/item)", comm.size(), secs, secs * 1e6 / n as f64, loop_us);
        }
    }
}
