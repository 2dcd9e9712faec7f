//! flowmpi's parallel map and friends, the MPI versions of `Pool.map`, `Parallelize(data, f)`
//! and `sharedmem.MapReduce`:
//!
//! ```text
//! cargo build --release --examples
//! mpirun -n 4 target/release/examples/parallel_map      # alone: one rank
//! FLOWMPI_SERIAL=1 target/release/examples/parallel_map # debug mode: a plain loop
//! ```
//!
//! Every call is checked against a plain serial loop; the example exits non-zero on a mismatch.

use flowmpi::par::{self, Options, Schedule};
use flowmpi::{Comm, Context};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// An item's work, with uneven costs (every 10th item is slow).
fn simulate(subject: &u64) -> f64 {
    let steps = if subject.is_multiple_of(10) { 200_000 } else { 2_000 };
    (0..steps).fold(*subject as f64, |acc, k| (acc + k as f64).sqrt())
}

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("parallel_map: MISMATCH: {what}");
        std::process::exit(1);
    }
}

fn main() {
    let ctx = Context::init();
    let comm = ctx.comm();
    let subjects: Vec<u64> = (0..500).collect();
    let serial: Vec<f64> = subjects.iter().map(simulate).collect();

    // Pool.map / Parallelize: results in input order, on every rank.
    for schedule in [Schedule::Static, Schedule::Dynamic { chunk: 1 }, Schedule::Guided { chunk: 4 }] {
        let opts = Options { schedule, ..Options::default() };
        let got = par::parallelize_with(comm, &subjects, &opts, |_, s| Ok::<_, String>(simulate(s))).unwrap();
        check(got == serial, &format!("parallelize {schedule:?}"));
    }

    // map_reduce: an associative reduce folded in item order (same bits on every rank and run).
    // Big results: gathered on rank 0 only.
    let opts = Options { schedule: Schedule::Guided { chunk: 8 }, ..Options::default() };
    let big = par::parallelize_to_root(comm, &subjects, &opts, |_, s| Ok::<_, String>(vec![simulate(s); 100])).unwrap();
    match big {
        Some(rows) => check(rows.iter().zip(&serial).all(|(r, v)| r.len() == 100 && r.iter().all(|x| x == v)), "to_root results"),
        None => check(comm.rank() != 0, "rank 0 gets the results"),
    }

    let total = par::map_reduce(comm, &subjects, &Options::default(), |_, s| Ok::<_, String>(simulate(s)), |a, b| a + b).unwrap();
    check(total == serial.iter().copied().reduce(|a, b| a + b), "map_reduce");

    // sharedmem's MapReduce: a serial reduce on rank 0, seeing results in item order.
    let mut seen = Vec::new();
    par::map_reduce_serial(comm, &subjects, &Options::default(), |_, s| Ok::<_, String>(simulate(s)), |i, r| seen.push((i, r))).unwrap();
    if comm.rank() == 0 {
        check(seen.iter().map(|p| p.0).eq(0..subjects.len()) && seen.iter().map(|p| p.1).eq(serial.iter().copied()), "map_reduce_serial");
    }

    // `with pool.ordered:` — append to one file in item order, whoever runs the item; and
    // `with pool.critical:` — one worker of the whole job at a time. Per-thread state (sharedmem's
    // tls): a slot per worker thread, indexed by ctx.thread().
    let path = std::env::temp_dir().join(format!("flowmpi-ordered-{}.txt", std::process::id()));
    // Rank 0's pid names the file for everyone.
    let mut name = path.display().to_string().into_bytes();
    comm.bcast_bytes(0, &mut name);
    let path = std::path::PathBuf::from(String::from_utf8(name).unwrap());
    if comm.rank() == 0 {
        std::fs::write(&path, "").unwrap();
    }
    comm.barrier();
    let inside = AtomicUsize::new(0);
    let per_thread: Vec<Mutex<u64>> = (0..64).map(|_| Mutex::new(0)).collect();
    par::parallelize(comm, &subjects, |ctx, s| {
        let v = simulate(s);
        *per_thread[ctx.thread() % 64].lock().unwrap() += 1;
        ctx.ordered(|| {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            writeln!(f, "{} {v}", ctx.index()).unwrap();
        });
        ctx.critical(|| {
            // Within a rank this counter sees overlapping threads; across ranks the lock holds too.
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two workers inside critical");
            inside.fetch_sub(1, Ordering::SeqCst);
        });
        Ok::<_, String>(())
    })
    .unwrap();
    comm.barrier();
    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    let want: Vec<String> = serial.iter().enumerate().map(|(i, v)| format!("{i} {v}")).collect();
    check(lines == want, "ordered appends");
    let mine: u64 = per_thread.iter().map(|c| *c.lock().unwrap()).sum();
    let mut all = [mine as f64];
    comm.allreduce_sum(&mut all);
    check(all[0] as usize == subjects.len(), "per-thread counts add up to the items");
    comm.barrier();
    if comm.rank() == 0 {
        let _ = std::fs::remove_file(&path);
    }

    // A failing item: every rank gets the lowest failing item's message.
    let err = par::parallelize(comm, &subjects, |_, &s| if s == 321 || s == 400 { Err(format!("subject {s} has no data")) } else { Ok(s) }).unwrap_err();
    check(err.to_string().contains("item 321") && err.to_string().contains("subject 321 has no data"), &format!("error: {err}"));

    // sharedmem's parallel argsort, across ranks: each rank brings its rows (uneven here: rank r
    // has 100·r + 7 of them) and ends with one contiguous slice of the stable sorted order.
    let mine: Vec<f64> = (0..100 * comm.rank() + 7).map(|i| ((i * 37 + comm.rank() * 11) % 23) as f64).collect();
    let sorted = par::sort_by_key(comm, &mine, mine.clone()).unwrap();
    let all: Vec<f64> = (0..comm.size()).flat_map(|r| (0..100 * r + 7).map(move |i| ((i * 37 + r * 11) % 23) as f64)).collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b])); // stable: ties keep their input order
    let slice = sorted.start as usize..sorted.start as usize + sorted.index.len();
    check(sorted.index.iter().map(|&i| i as usize).eq(order[slice].iter().copied()), "argsort slice");
    check(sorted.items.iter().zip(&sorted.index).all(|(v, &i)| *v == all[i as usize]), "items travel with their keys");
    check(par::argsort(comm, &mine).unwrap() == sorted.index, "argsort = sort_by_key's index");
    let rows = ndarray::Array2::from_shape_fn((mine.len(), 2), |(i, j)| if j == 0 { mine[i] } else { i as f64 });
    let (sorted_rows, index) = par::sort_by_column(comm, rows.view(), 0).unwrap();
    check(index == sorted.index && sorted_rows.column(0).iter().eq(sorted.keys.iter()), "sort_by_column");

    // Outside a map: rank by rank.
    par::ordered(comm, || println!("rank {} of {}: all checks passed", comm.rank(), comm.size()));
}
