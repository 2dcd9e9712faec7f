//! Whole flows over the in-process thread Comm: 1..8 simulated ranks reading real shard files
//! (uneven, one empty, one with a single row) give the single-rank model.
use super::*;
use crate::comm::{run_threads, Comm};
use crate::io::DataOptions;
use crate::model::Model;

fn write_shards(dir: &std::path::Path) {
    let sizes = [37usize, 0, 1, 120, 9];
    let mut row = 0usize;
    for (s, &n) in sizes.iter().enumerate() {
        let mut text = String::from("a,b,c,d\n");
        for _ in 0..n {
            let t = row as f64;
            text.push_str(&format!(
                "{},{},{},{}\n",
                (t * 0.37).sin() * 3.0 + 100.0,
                (t * 0.37).sin() + (t * 1.3).cos(),
                (t * 0.05).cos() * 0.5,
                (t * 2.1).sin() * 0.25 - 7.0
            ));
            row += 1;
        }
        std::fs::write(dir.join(format!("part{s}.csv")), text).unwrap();
    }
}

/// Every row of the shards `write_shards` wrote, read plainly, in order.
fn all_rows(dir: &std::path::Path) -> Array2<f64> {
    let mut rows: Vec<f64> = Vec::new();
    for s in 0..5 {
        let text = std::fs::read_to_string(dir.join(format!("part{s}.csv"))).unwrap();
        text.lines().skip(1).for_each(|l| rows.extend(l.split(',').map(|v| v.parse::<f64>().unwrap())));
    }
    Array2::from_shape_vec((rows.len() / 4, 4), rows).unwrap()
}

use crate::testing::numbers;

/// The shards in a fresh directory (removed on drop, also when a test fails) and options
/// reading them.
fn shards() -> (tempfile::TempDir, DataOptions) {
    let tmp = tempfile::tempdir().unwrap();
    write_shards(tmp.path());
    let opts = DataOptions::new(tmp.path().join("part*.csv").to_str().unwrap());
    (tmp, opts)
}

/// Flow `spec` trained on rank `c`'s share of the files, and its model.
fn train_files(c: &dyn crate::comm::Comm, opts: &DataOptions, spec: &str) -> (Flow, Model) {
    let data = crate::io::Dataset::open(c, opts).unwrap();
    let mut flow = Flow::parse(spec).unwrap();
    let report = flow.train(c, &data, &TrainOptions::default()).unwrap();
    let model = Model::new(&flow, None, data.names(), report.rows, c.size());
    (flow, model)
}

/// The models of one run agree on every rank and their numbers are within `tol` (relative) of
/// `want`.
fn assert_models_near(models: &[Model], want: &[f64], tol: f64) {
    let ranks = models.len();
    for m in models {
        assert_eq!(m.hash(), models[0].hash(), "{ranks} ranks disagree");
    }
    let mut got = Vec::new();
    numbers(&serde_json::Value::Array(models[0].nodes.clone()), &mut got);
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{ranks} ranks, value {i}: {a} vs {b}");
    }
}

#[test]
fn flows_on_1_to_8_simulated_ranks_equal_the_single_rank_model() {
    let (_tmp, mut opts) = shards();
    opts.block_bytes = 1024; // many chunks per shard
    let spec = "moments | covariance | pca(n=3) | whitening";
    let train = |ranks: usize| run_threads(ranks, |c| train_files(c, &opts, spec).1);
    let one = train(1).remove(0);
    let mut reference = Vec::new();
    numbers(&serde_json::Value::Array(one.nodes.clone()), &mut reference);
    assert_eq!(one.training_rows, 167);
    for ranks in 2..=8 {
        assert_models_near(&train(ranks), &reference, 1e-10);
    }
}

#[test]
fn saved_models_load_back_bit_for_bit() {
    // serde_json parses floats exactly only with its float_roundtrip feature: without it a
    // loaded model was off in the last bit, so `execute` differed from the trained flow.
    let (tmp, opts) = shards();
    for spec in [
        "moments | covariance | pca(n=3) | whitening",
        "sfa(n=2, contiguous=true)",
        "kmeans(k=3, seed=1)",
        "poly(degree=2) | svd(k=2)",
        "layer(pca(n=2) @ a-b, whitening @ [c; d])",
        "clone(pca(n=1), groups=2) | covariance",
    ] {
        let (flow, model) = run_threads(1, |c| train_files(c, &opts, spec)).remove(0);
        let path = tmp.path().join("m.json");
        std::fs::write(&path, model.to_bytes()).unwrap();
        let loaded = Model::load(&path).unwrap();
        assert_eq!(loaded.to_bytes(), model.to_bytes(), "{spec}: the model changes on a save/load cycle");
        let x = ndarray::Array2::from_shape_fn((7, 4), |(i, j)| 100.0 * u8::from(j == 0) as f64 + (i * 4 + j) as f64 * 0.173);
        let (a, b) = (flow.execute(x.view()).unwrap(), loaded.flow().unwrap().execute(x.view()).unwrap());
        assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "{spec}: execute differs after loading");
    }
}

#[test]
fn a_flow_fitted_from_arrays_equals_one_trained_on_the_files() {
    let (tmp, opts) = shards();
    let spec = "moments | covariance | pca(n=3) | whitening";
    let (_, files) = run_threads(1, |c| train_files(c, &opts, spec)).remove(0);
    let all = all_rows(tmp.path());
    let mut want = Vec::new();
    numbers(&serde_json::Value::Array(files.nodes.clone()), &mut want);
    for ranks in 1..=6 {
        let models = run_threads(ranks, |c| {
            // Uneven blocks, the last rank's empty.
            let n = all.nrows();
            let cut = |r: usize| if r >= ranks - 1 && ranks > 1 { n } else { n * r * r / (ranks * ranks) };
            let mine = all.slice(ndarray::s![cut(c.rank())..cut(c.rank() + 1).max(cut(c.rank())), ..]);
            let mut flow = Flow::parse(spec).unwrap();
            let r = flow.fit(c, mine, &files.input_columns).unwrap();
            Model::new(&flow, None, files.input_columns.clone(), r.rows, ranks)
        });
        assert!(models.iter().all(|m| m.training_rows == 167));
        assert_models_near(&models, &want, 1e-10);
    }
}

#[test]
fn layers_equal_their_nodes_trained_alone_on_each_group() {
    let (tmp, opts) = shards();
    let train = |ranks: usize, spec: &str, columns: Option<&str>| {
        let mut opts = opts.clone();
        opts.columns = columns.map(String::from);
        opts.block_bytes = 1024;
        run_threads(ranks, |c| train_files(c, &opts, spec).0)
    };
    let x = ndarray::Array2::from_shape_fn((9, 4), |(i, j)| 100.0 * u8::from(j == 0) as f64 + (i * 4 + j) as f64 * 0.31);
    // A multi-pass node (hist) beside a one-pass one, against each trained alone.
    for ranks in 1..=4 {
        let layer = train(ranks, "layer(pca(n=2) @ a-b, hist(bins=5) @ [c; d])", None);
        let pca = train(ranks, "pca(n=2)", Some("a,b")).remove(0);
        let hist = train(ranks, "hist(bins=5)", Some("c,d")).remove(0);
        for f in &layer {
            let v = f.nodes[0].to_json();
            assert_eq!(v["nodes"][0], pca.nodes[0].to_json(), "{ranks} ranks: the layer's pca");
            assert_eq!(v["nodes"][1], hist.nodes[0].to_json(), "{ranks} ranks: the layer's hist");
        }
        let want = ndarray::concatenate(
            ndarray::Axis(1),
            &[pca.execute(x.slice(ndarray::s![.., 0..2])).unwrap().view(), hist.execute(x.slice(ndarray::s![.., 2..4])).unwrap().view()],
        )
        .unwrap();
        assert_eq!(layer[0].execute(x.view()).unwrap(), want);
        assert_eq!(layer[0].output_names(&[]), ["pc0", "pc1", "c", "d"]);
    }
    // A clone layer: one node on the groups' rows stacked.
    let all = all_rows(tmp.path());
    let stacked = ndarray::concatenate(ndarray::Axis(0), &[all.slice(ndarray::s![.., 0..2]), all.slice(ndarray::s![.., 2..4])]).unwrap();
    let alone = run_threads(1, |c| {
        let mut f = Flow::parse("covariance").unwrap();
        f.fit(c, stacked.view(), &["a".into(), "b".into()]).unwrap();
        f
    })
    .remove(0);
    let (mut want, mut got) = (Vec::new(), Vec::new());
    numbers(&alone.nodes[0].to_json(), &mut want);
    for ranks in [1, 3] {
        let clone = train(ranks, "clone(covariance, groups=2)", None).remove(0);
        got.clear();
        numbers(&clone.nodes[0].to_json()["nodes"][0], &mut got);
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{ranks} ranks: clone {a} vs stacked {b}");
        }
        assert_eq!(clone.output_names(&[]), ["g0_a", "g0_b", "g1_a", "g1_b"]);
    }
}

#[test]
fn reproducible_training_gives_the_same_bits_on_1_to_8_simulated_ranks() {
    // Five uneven shards (one empty, one of a single row) for up to eight ranks: some ranks read
    // several files, some part of one; every rank count must give the same model, bit for bit.
    let (_tmp, mut opts) = shards();
    opts.block_bytes = 1024; // many chunks per shard
                             // Statistics, k-means' iterations, and a layer of a two-pass node beside one keeping rows.
    for spec in ["moments | covariance | pca(n=3) | whitening", "kmeans(k=3, init=parallel) | layer(hist(bins=4) @ 0-1, kmeans(k=2, init=random) @ 2-4)"] {
        let train = |ranks: usize| {
            run_threads(ranks, |c| {
                let data = crate::io::Dataset::open(c, &opts).unwrap();
                let mut flow = Flow::parse(spec).unwrap();
                flow.train(c, &data, &TrainOptions { reproducible: true, ..Default::default() }).unwrap();
                serde_json::Value::Array(flow.nodes.iter().map(|n| n.to_json()).collect())
            })
        };
        let one = train(1).remove(0);
        for ranks in 2..=8 {
            for (r, got) in train(ranks).iter().enumerate() {
                assert!(*got == one, "{spec}: {ranks} ranks, rank {r}: the model differs from one rank's");
            }
        }
    }
}

#[test]
fn sfa_on_one_file_split_among_ranks_is_one_series() {
    // A file split among ranks is one time series: every rank count gives one rank's model
    // (to round-off), as with a glob of that one file, and under --reproducible the same bits.
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,c\n");
    for t in 0..400 {
        let t = t as f64;
        text.push_str(&format!("{},{},{}\n", (t / 40.0).sin(), (t / 3.0).sin() + 0.3 * (t * 7.1).cos(), (t * 1.7).sin() * (t / 90.0).cos()));
    }
    std::fs::write(tmp.path().join("series.csv"), text).unwrap();
    for data in ["series.csv", "s*.csv"] {
        let mut opts = DataOptions::new(tmp.path().join(data).to_str().unwrap());
        opts.block_bytes = 512; // several chunks per rank
        for spec in ["sfa(n=2)", "sfa2(n=2)"] {
            let (_, one) = run_threads(1, |c| train_files(c, &opts, spec)).remove(0);
            let mut want = Vec::new();
            numbers(&serde_json::Value::Array(one.nodes.clone()), &mut want);
            for ranks in 2..=5 {
                let models: Vec<Model> = run_threads(ranks, |c| train_files(c, &opts, spec)).into_iter().map(|(_, m)| m).collect();
                assert_models_near(&models, &want, 1e-8);
            }
        }
    }
}

#[test]
fn sfa_counts_a_files_rows_over_every_rank_that_read_part_of_it() {
    // Two rows split between two ranks are one series of one difference: no single-row error.
    // One row is, whichever rank reads it.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("two.csv"), "a,b\n1,2\n3,5\n").unwrap();
    std::fs::write(tmp.path().join("one.csv"), "a,b\n1,2\n").unwrap();
    // Every rank's error training sfa(n=1) on `file` over `ranks` ranks.
    let errors = |file: &str, ranks: usize| {
        let opts = DataOptions::new(tmp.path().join(file).to_str().unwrap());
        run_threads(ranks, |c| {
            let data = crate::io::Dataset::open(c, &opts).unwrap();
            Flow::parse("sfa(n=1)").unwrap().train(c, &data, &TrainOptions::default()).map(|_| ()).unwrap_err().to_string()
        })
    };
    for ranks in 1..=3 {
        // One difference: the time-derivative covariance needs two, but it is not "a single row".
        for e in errors("two.csv", ranks) {
            assert!(e.contains("fewer than 2 time differences"), "{ranks} ranks: {e}");
        }
        for e in errors("one.csv", ranks) {
            assert!(e.contains("single row") && e.contains("one.csv"), "{ranks} ranks: {e}");
        }
    }
}

#[test]
fn ranks_asking_for_different_thread_counts_train_the_same_model_or_fail_together() {
    let x = Array2::from_shape_fn((30_000, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin() + j as f64);
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let train = |threads: [usize; 3]| {
        run_threads(3, |c| {
            let rows = x.slice(ndarray::s![c.rank() * 10_000..(c.rank() + 1) * 10_000, ..]);
            let mut flow = Flow::parse("covariance | pca(n=2)").unwrap();
            let opts = TrainOptions { threads: threads[c.rank()], ..Default::default() };
            let schema = crate::io::Schema::features(&names);
            flow.train(c, Rows::Memory(&crate::io::Chunk::new(rows), &schema), &opts).map(|_| flow.nodes[1].to_json())
        })
    };
    let models = |threads| train(threads).into_iter().map(|m| m.unwrap()).collect::<Vec<_>>();
    let same = models([1, 1, 1]);
    assert!(same.iter().all(|m| *m == same[0]));
    assert_eq!(models([2, 1, 3]), same, "the thread counts changed the model");
    // One rank's count out of range: every rank stops with its error (none waits in a join).
    for out in train([1, 1_000_000, 2]) {
        let e = out.unwrap_err().to_string();
        assert!(e.contains("threads 1000000"), "{e}");
    }
}
