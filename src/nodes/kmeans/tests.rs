//! k-means tests.

use super::*;
use crate::comm::run_threads;
use crate::io::Chunk;
use crate::nodes::Node;
use ndarray::Array;

fn blobs() -> Array2<f64> {
    Array::from_shape_fn((300, 2), |(i, j)| {
        let c = [(0.0, 0.0), (5.0, 5.0), (0.0, 6.0)][i % 3];
        let u = uniform(42, j as u64, i as u64) - 0.5;
        (if j == 0 { c.0 } else { c.1 }) + u
    })
}

fn fit(ranks: usize, spec: &str, x: &Array2<f64>, cuts: &[usize]) -> Vec<KmeansModel> {
    let schema = Schema::features(&["a".into(), "b".into()]);
    run_threads(ranks, |c| {
        let (lo, hi) = (cuts[c.rank()], cuts[c.rank() + 1]);
        let mut n = crate::nodes::KmeansNode::from_spec(&NodeSpec::parse(spec).unwrap()).unwrap();
        n.fit_chunk(c, &Chunk::new(x.slice(s![lo..hi, ..])), &schema).unwrap();
        n.model().expect("trained").clone()
    })
}

#[test]
fn init_is_the_same_for_any_rank_count_and_split() {
    let x = blobs();
    for init in ["random", "++", "parallel"] {
        let spec = format!("kmeans(k=3, init={init}, seed=7, max_iter=1)");
        let one = fit(1, &spec, &x, &[0, 300]).remove(0);
        for cuts in [vec![0, 150, 300], vec![0, 0, 299, 300], vec![0, 10, 20, 200, 300]] {
            let out = fit(cuts.len() - 1, &spec, &x, &cuts);
            for n in &out {
                assert_eq!(n.initial_centroids, one.initial_centroids, "{init} with cuts {cuts:?}");
            }
        }
    }
}

#[test]
fn lloyd_finds_the_blobs_and_agrees_across_ranks() {
    let x = blobs();
    let out = fit(3, "kmeans(k=3, init=++, seed=1)", &x, &[0, 50, 50, 300]);
    let n = &out[0];
    assert!(out.iter().all(|o| o.centroids == n.centroids && o.n_iter == n.n_iter));
    let mut cs: Vec<(f64, f64)> = n.centroids.rows().into_iter().map(|r| (r[0], r[1])).collect();
    cs.sort_by_key(|c| (c.0.round() as i64, c.1.round() as i64));
    for (got, want) in cs.iter().zip([(0.0, 0.0), (0.0, 6.0), (5.0, 5.0)]) {
        assert!((got.0 - want.0).abs() < 0.1 && (got.1 - want.1).abs() < 0.1, "{cs:?}");
    }
    // Inertia is the sum of squared distances to the final centroids.
    let p = Predict::predict(n, x.view());
    let direct: f64 = p.column(1).iter().map(|v| v * v).sum();
    assert!((direct - n.inertia).abs() < 1e-9 * n.inertia);
}

#[test]
fn nearest_agrees_with_brute_force_over_several_blocks() {
    // 2.5 blocks of rows, 5 columns (not a multiple of the 8 lanes); k up to 16 takes the
    // kernel without BLAS (lanes of 4, 8, 16), beyond it the gemm; rows contiguous, and rows
    // 7 values apart (a memory-mapped file with more columns).
    let (n, d) = (2 * BLOCK + BLOCK / 2 + 3, 5);
    for (k, stride) in [(1, 5), (3, 5), (7, 5), (7, 7), (16, 5), (17, 5), (17, 7), (40, 5)] {
        let x: Vec<f64> = (0..n * stride).map(|i| uniform(1, 0, i as u64) * 10.0).collect();
        let c = Array::from_shape_fn((k, d), |(j, t)| uniform(2, j as u64, t as u64) * 10.0);
        let mut seen = Vec::new();
        let xv = ArrayView2::from_shape((n, d).strides((stride, 1)), &x).unwrap();
        nearest(xv, &c, |i, row, j| seen.push((i, row.to_vec(), j)));
        assert_eq!(seen.len(), n);
        // The portable build of the kernel gives the same labels as the dispatched one.
        let mut portable = Vec::new();
        nearest_any(xv, &c, |_, _, j| portable.push(j));
        assert_eq!(portable, seen.iter().map(|s| s.2).collect::<Vec<_>>());
        for (want_i, (i, row, j)) in seen.into_iter().enumerate() {
            assert_eq!(i, want_i);
            assert_eq!(row, &x[i * stride..i * stride + d]);
            let dist: Vec<f64> = c.rows().into_iter().map(|cr| row.iter().zip(cr).map(|(a, b)| (a - b) * (a - b)).sum()).collect();
            let best = (0..k).fold(0, |b, t| if dist[t] < dist[b] { t } else { b });
            // Scores ‖c‖² − 2x·c of values up to 10 in 5 columns round at about 1e-13.
            assert!(j == best || (dist[j] - dist[best]).abs() < 1e-9, "k {k}, row {i}: got {j}, want {best} ({dist:?})");
            assert!((sq_dist(&row, c.row(j).as_slice().unwrap()) - dist[j]).abs() < 1e-9);
        }
    }
}

#[test]
fn the_few_centroid_dot_products_are_the_same_bits_on_every_path() {
    // AVX2 registers (where the CPU has them) and portable code: fused multiply-adds in column
    // order either way.
    fn check<const L: usize>() {
        let d: usize = 37;
        let rows: Vec<Vec<f64>> = (0..4u64).map(|q| (0..d).map(|t| uniform(3, q, t as u64) * 20.0 - 10.0).collect()).collect();
        let ct: Vec<f64> = (0..d * L).map(|i| uniform(4, 0, i as u64) * 2e3 - 1e3).collect();
        let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
        let fast = dots4::<L>(r, &ct);
        assert_eq!(fast, dots4_portable::<L>(r, &ct), "L = {L}");
        let direct: f64 = (0..d).map(|t| rows[2][t] * ct[t * L + L - 1]).sum();
        assert!((fast[2][L - 1] - direct).abs() < 1e-9 * 1e4 * d as f64, "L = {L}");
    }
    check::<4>();
    check::<8>();
    check::<16>();
}

/// An `init=` centroid file holding `csv`, in a directory removed when the first value drops.
fn centroid_file(csv: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let init = tmp.path().join("init.csv");
    std::fs::write(&init, csv).unwrap();
    (tmp, init)
}

/// k-means trained on one rank from the chunks of `x` cut at `cuts`, on `threads` threads.
fn fit_chunks(spec: &NodeSpec, x: &Array2<f64>, cuts: &[usize], threads: usize) -> KmeansModel {
    let schema = Schema::features(&["a".into(), "b".into()]);
    crate::threads::Pool::new(threads).unwrap().run(|| {
        let mut node = crate::nodes::KmeansNode::from_spec(spec).unwrap();
        node.begin(&schema).unwrap();
        for w in cuts.windows(2) {
            node.update(&Chunk::new(x.slice(s![w[0]..w[1], ..]))).unwrap();
        }
        node.join(&crate::comm::SingleComm).unwrap();
        node.model().expect("trained").clone()
    })
}

#[test]
fn the_first_step_taken_while_reading_chunks_matches_one_pass() {
    // Known centroids (a file): the first Lloyd step and the tol variances are accumulated
    // chunk by chunk in update(); the result must not depend on how the rows were chunked.
    let x = blobs();
    let (_tmp, init) = centroid_file("a,b\n1,1\n4,4\n0,5\n");
    let spec = NodeSpec::parse(&format!("kmeans(init={}, tol=1e-3)", init.display())).unwrap();
    let one = fit_chunks(&spec, &x, &[0, 300], 1);
    let many = fit_chunks(&spec, &x, &[0, 1, 7, 7, 150, 299, 300], 1);
    assert_eq!(one.n_iter, many.n_iter);
    assert!(one.centroids.iter().zip(&many.centroids).all(|(a, b)| (a - b).abs() < 1e-12));
    assert!((one.inertia - many.inertia).abs() < 1e-9 * one.inertia);
}

#[test]
fn rows_kept_in_parts_on_threads_give_the_same_bits_for_any_thread_count() {
    // Enough rows for several parts per chunk ([`crate::threads::parts`]): each part's copy of
    // the rows, first step and variances are formed on a thread and kept in part order.
    let n = 70_000;
    let x = Array::from_shape_fn((n, 2), |(i, j)| [[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]][i % 3][j] + uniform(3, j as u64, i as u64) - 0.5);
    assert!(crate::threads::parts(n, 2).len() >= 3);
    let (_tmp, init) = centroid_file("a,b\n1,1\n4,4\n0,5\n");
    let spec = NodeSpec::parse(&format!("kmeans(init={}, tol=1e-6)", init.display())).unwrap();
    let schema = Schema::features(&["a".into(), "b".into()]);
    // Lloyd's steps done plainly, from the same centroids, until no row changes cluster.
    let mut c = vec![[1.0, 1.0], [4.0, 4.0], [0.0, 5.0]];
    for _ in 0..100 {
        let mut sums = [[0.0, 0.0, 0.0]; 3];
        for r in x.rows() {
            let d = |c: &[f64; 2]| (r[0] - c[0]).powi(2) + (r[1] - c[1]).powi(2);
            let j = (0..3).min_by(|&a, &b| d(&c[a]).total_cmp(&d(&c[b]))).unwrap();
            sums[j] = [sums[j][0] + r[0], sums[j][1] + r[1], sums[j][2] + 1.0];
        }
        c = sums.iter().map(|s| [s[0] / s[2], s[1] / s[2]]).collect();
    }
    for cuts in [vec![0, n], vec![0, 40_000, 40_001, n]] {
        // The rows are kept in their order, whatever the threads.
        for threads in [1, 3] {
            let params = KmeansParams::from_spec(&spec).unwrap();
            let mut partial = crate::nodes::define::NodeParams::partial(&params, &schema);
            crate::threads::Pool::new(threads).unwrap().run(|| {
                for w in cuts.windows(2) {
                    crate::nodes::define::Partial::update(&mut partial, &Chunk::new(x.slice(s![w[0]..w[1], ..]))).unwrap();
                }
            });
            assert!(partial.rows.iter().zip(x.rows()).all(|(a, b)| a == b.as_slice().unwrap()) && partial.rows.len() == n);
            assert!(partial.rows.blocks.len() >= 3, "copied in parts");
        }
        let one = fit_chunks(&spec, &x, &cuts, 1);
        for (got, want) in one.centroids.rows().into_iter().zip(&c) {
            assert!((got[0] - want[0]).abs() < 1e-9 && (got[1] - want[1]).abs() < 1e-9, "{got} vs {want:?}");
        }
        for threads in [2, 3] {
            let m = fit_chunks(&spec, &x, &cuts, threads);
            assert_eq!((&m.centroids, m.n_iter, m.inertia.to_bits()), (&one.centroids, one.n_iter, one.inertia.to_bits()), "{threads} threads, cuts {cuts:?}");
        }
    }
}

#[test]
fn mapped_npy_rows_are_kept_as_one_block_per_file_without_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (cols, rows_per_file) = (5, [7usize, 4]);
    let mut want = Vec::new();
    for (f, &n) in rows_per_file.iter().enumerate() {
        let vals: Vec<f64> = (0..n * cols).map(|i| (f * 100 + i) as f64).collect();
        want.extend(vals.chunks(cols).map(|r| r[1..4].to_vec()));
        let mut w = crate::io::npy::NpyWriter::create(std::fs::File::create(dir.join(format!("p{f}.npy"))).unwrap(), cols).unwrap();
        w.write_rows(&vals).unwrap();
        w.finish().unwrap();
    }
    let mut opts = crate::io::DataOptions::new(dir.join("p*.npy").display().to_string());
    opts.columns = Some("1-3".into());
    opts.block_bytes = 80; // two rows per chunk
    let data = crate::io::Dataset::open(&crate::comm::SingleComm, &opts).unwrap();
    let mut kept = Rows::new(3);
    data.for_each_chunk_mapped(&mut |c| {
        kept.push(c.x, c.mapped);
        Ok(())
    })
    .unwrap();
    assert_eq!(kept.len(), 11);
    assert_eq!(kept.blocks.len(), 2);
    assert!(kept.blocks.iter().all(|b| matches!(b, Block::Mapped { .. })));
    assert_eq!(kept.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), want);
    assert_eq!(kept.row(7), &want[7][..]);
    // The same rows copied from plain chunks: one owned block.
    let mut copied = Rows::new(3);
    data.for_each_chunk(&mut |c| {
        copied.push(c.x, c.mapped);
        Ok(())
    })
    .unwrap();
    assert!(matches!(copied.blocks[..], [Block::Owned(_)]));
    assert_eq!(copied.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), want);
}

#[test]
fn k_larger_than_rows_is_an_error_everywhere() {
    let x = blobs();
    let schema = Schema::features(&["a".into(), "b".into()]);
    let out = run_threads(2, |c| {
        let mut n = crate::nodes::KmeansNode::from_spec(&NodeSpec::parse("kmeans(k=500)").unwrap()).unwrap();
        n.fit_chunk(c, &Chunk::new(x.slice(s![c.rank() * 150..(c.rank() + 1) * 150, ..])), &schema).unwrap_err().to_string()
    });
    assert!(out.iter().all(|m| m.contains("larger than the number of rows")), "{out:?}");
}

#[test]
fn an_empty_cluster_takes_the_farthest_row() {
    let x = blobs();
    // The third start is far from every row: its cluster is empty after the first step.
    let (_tmp, init) = centroid_file("a,b\n0,0\n5,5\n100,100\n");
    let spec = format!("kmeans(init={}, max_iter=1)", init.display());
    let n = fit(2, &spec, &x, &[0, 100, 300]).remove(0);
    // With one iteration, the empty cluster's centroid is the row farthest from its centroid.
    let c = n.centroids.row(2).to_owned();
    assert!(x.rows().into_iter().any(|r| r == c), "{c:?} is not a data row");
    assert!(c[1] > 5.0, "the farthest rows are in the blob at (0, 6): {c:?}");
}

#[test]
fn fewer_distinct_points_than_k_is_warned_on_every_rank() {
    // Rows of two distinct points only, spread over 3 ranks (one empty): some of the 3
    // centroids must coincide.
    let x = Array::from_shape_fn((9, 2), |(i, j)| if i % 3 == 0 { 4.0 + j as f64 } else { 1.0 });
    for init in ["random", "++", "parallel"] {
        let out = fit(3, &format!("kmeans(k=3, init={init})"), &x, &[0, 4, 4, 9]);
        for m in &out {
            let w = m.warnings();
            assert!(w.iter().any(|w| w.contains("kmeans found 2 distinct centroids for k=3")), "{init}: {w:?}");
        }
    }
    let apart = fit(2, "kmeans(k=3)", &blobs(), &[0, 100, 300]);
    assert!(apart[0].warnings().is_empty(), "{:?}", apart[0].warnings());
}
