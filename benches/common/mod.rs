//! Helpers shared by the benchmarks.

use std::time::Instant;

/// The best (least) wall time of `runs` runs of `f`, in seconds: the least disturbed run on a
/// noisy machine.
pub fn best<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
