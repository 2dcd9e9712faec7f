//! Ctrl-C in an interactive caller ([`flowmpi::stop::interrupt`]): a training or a parallel map
//! under way ends with `Error::Interrupted` on every rank, nothing hangs, and the next call
//! works. Its own test binary: the flag is process-wide, and would stop the other tests' work.

use flowmpi::comm::{run_threads, Comm};
use flowmpi::flow::Flow;
use flowmpi::{par, Error};
use ndarray::Array2;

/// Rows `rank`'s share of a fixed table (rank 2 has none).
fn rows(comm: &dyn Comm) -> Array2<f64> {
    let n = if comm.rank() == 2 { 0 } else { 50 + 10 * comm.rank() };
    Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 3 + comm.rank()) % 11) as f64 + 0.1 * j as f64)
}

#[test]
fn an_interrupt_ends_training_and_maps_on_every_rank_and_the_next_call_works() {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    flowmpi::stop::interrupt();
    let outcomes = run_threads(3, |comm| {
        let x = rows(comm);
        let trained = Flow::parse("pca(n=2)").unwrap().fit(comm, x.view(), &names).map(|r| r.rows);
        let kmeans = Flow::parse("kmeans(k=2, init=random)").unwrap().fit(comm, x.view(), &names).map(|r| r.rows);
        let mapped = par::parallelize(comm, &[1, 2, 3], |_, &i: &i32| Ok::<_, String>(i * 2));
        (trained, kmeans, mapped)
    });
    for (trained, kmeans, mapped) in outcomes {
        assert!(matches!(trained, Err(Error::Interrupted)), "{trained:?}");
        assert!(matches!(kmeans, Err(Error::Interrupted)), "{kmeans:?}");
        let err = mapped.expect_err("interrupted").to_string();
        assert!(err.starts_with("item 0 ") && err.ends_with("failed: interrupted (Ctrl-C)"), "{err}");
    }
    flowmpi::stop::clear_interrupt();
    let outcomes = run_threads(3, |comm| {
        let trained = Flow::parse("pca(n=2)").unwrap().fit(comm, rows(comm).view(), &names).map(|r| r.rows);
        (trained.unwrap(), par::parallelize(comm, &[1, 2, 3], |_, &i: &i32| Ok::<_, String>(i * 2)).unwrap())
    });
    for (n, doubled) in outcomes {
        assert_eq!(n, 50 + 60);
        assert_eq!(doubled, vec![2, 4, 6]);
    }
}
