//! `train --reproducible`: the model is the same, bit for bit, on 1, 2, 3 and 4 ranks, for every
//! node kind (one pass, hist's and fda's two, k-means' iterations, layers of them), on uneven
//! shards (an empty one, a one-row one, more files than ranks and fewer) and on one file split
//! among the ranks, CSV and NPY; a k-means stopped and resumed on other rank counts ends where
//! an uninterrupted one does; and what it cannot do is refused with one clear error.
mod common;
use common::*;

/// The model file trained on `n` ranks: the same bytes for any `n` (it records no rank count).
fn model_file(n: usize, data: &str, flow: &str, dir: &std::path::Path) -> Vec<u8> {
    trained(n, &["--reproducible"], data, flow, &dir.join(format!("m{n}.json")))
}

/// The model file `train` writes to `path` on `ranks` ranks with arguments `extra`; every
/// rank says it holds the same model.
fn trained(ranks: usize, extra: &[&str], data: &str, flow: &str, path: &std::path::Path) -> Vec<u8> {
    let mut args = vec!["-v", "train", "--data", data, "--flow", flow, "--model", path.to_str().unwrap()];
    args.extend(extra);
    let r = mpirun(ranks, &args);
    r.ok();
    assert_same_hash_on_all_ranks(&r, ranks);
    std::fs::read(path).unwrap()
}

/// The trained nodes of [`model_file`].
fn nodes(n: usize, data: &str, flow: &str, dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(&model_file(n, data, flow, dir)).unwrap()["nodes"].clone()
}

/// Data and a flow for every node kind (one pass, hist's and fda's two, k-means' iterations,
/// layers), on uneven shards and on one big file, CSV and NPY, written into `dir`.
fn every_kind(dir: &std::path::Path) -> Vec<(String, String)> {
    // Three NPY files for four ranks: one file is split between two of them.
    for (f, rows) in [5000usize, 1, 1200].into_iter().enumerate() {
        write_npy(&dir.join(format!("w{f}.npy")), rows, 6);
    }
    let w = dir.join("w*.npy");
    // One file split among the ranks: 10 MB of NPY and ~3 MB of CSV, so several 1 MiB leaves.
    let big = dir.join("big.npy");
    write_npy(&big, 200_000, 6);
    let mut text = String::from("a,b,c,label\n");
    for i in 0..60_000u64 {
        text.push_str(&format!("{}.{:03},{},{:e},{}\n", i % 9973, i % 997, (i * 7) % 13, (i as f64 * 0.37).sin(), ["x", "y", "z"][(i % 3) as usize]));
    }
    let csv = dir.join("big.csv");
    std::fs::write(&csv, text).unwrap();
    // k-means from given centroids takes its first step while the rows are read.
    let init = dir.join("init.csv");
    std::fs::write(&init, "0,0,0,0,0,0\n1,1,1,1,1,1\n-1,2,-3,4,-5,6\n").unwrap();
    let from_file = format!("kmeans(k=3, init={}, tol=0)", init.display());
    let cases = [
        ("tests/data/nasty/part*.csv", "moments | covariance | pca(n=2) | whitening"),
        ("tests/data/nasty_npy/part*.npy", "svd(k=2)"),
        ("tests/data/nasty/part*.csv", "poly(degree=2) | covariance"),
        (w.to_str().unwrap(), "covariance | pca(var=0.9, method=corr)"),
        ("tests/data/reg/part*.csv", "linreg(target=[y0,y1])"),
        ("tests/data/reg/part*.csv", "linreg(target=y0, method=qr)"),
        ("tests/data/reg/part*.csv", "ridge(alpha=[0.1,10], target=y1)"),
        ("tests/data/gnb/part*.csv", "gnb(label=label)"),
        ("tests/data/nb/part*.csv", "mnb(label=label)"),
        ("tests/data/sfa/part*.csv", "sfa(n=2, contiguous=true)"),
        ("tests/data/sfa/part*.csv", "sfa2(n=3)"),
        (big.to_str().unwrap(), "moments | covariance | pca(n=2)"),
        (csv.to_str().unwrap(), "gnb(label=label) | covariance"),
        // Two passes each: the second pass's leaves start from what the first found.
        ("tests/data/nasty/part*.csv", "hist(bins=6)"),
        (big.to_str().unwrap(), "moments | hist(bins=9)"),
        ("tests/data/fda/part*.csv", "fda(n=1, label=label)"),
        (big.to_str().unwrap(), "sfa(n=2, contiguous=true)"),
        // Without contiguous: the files are separate series, a split file's leaves one.
        ("tests/data/sfa/part*.csv", "sfa(n=2)"),
        (big.to_str().unwrap(), "sfa(n=2)"),
        // Iterations over the rows each rank keeps (memory-mapped NPY, copied CSV rows): every
        // initialisation, several starts, and the first step taken while reading.
        (w.to_str().unwrap(), "kmeans(k=3, init=parallel)"),
        (big.to_str().unwrap(), "kmeans(k=4, init=random, n_init=2)"),
        (big.to_str().unwrap(), from_file.as_str()),
        ("tests/data/nasty/part*.csv", "kmeans(k=3)"),
        // Layers: members of one and two passes side by side, one that keeps its rows, and a
        // clone layer's shared node.
        ("tests/data/nasty/part*.csv", "layer(pca(n=1) @ 0-1, hist(bins=4) @ 2-3)"),
        (big.to_str().unwrap(), "moments | layer(kmeans(k=2) @ 0-2, covariance @ 3-5)"),
        (w.to_str().unwrap(), "clone(covariance, groups=3)"),
    ];
    cases.into_iter().map(|(d, f)| (d.to_string(), f.to_string())).collect()
}

#[test]
fn every_kind_gives_the_same_bits_on_1_to_4_ranks() {
    let dir = scratch("repro");
    for (data, flow) in every_kind(&dir) {
        let one = model_file(1, &data, &flow, &dir);
        for n in 2..=4 {
            assert!(model_file(n, &data, &flow, &dir) == one, "{flow} on {data}: the model file on {n} ranks differs from 1 rank's");
        }
    }
}

/// The model file trained on `ranks` ranks of `threads` threads each (`--reproducible` or not).
fn model_with_threads(ranks: usize, threads: usize, reproducible: bool, data: &str, flow: &str, dir: &std::path::Path) -> Vec<u8> {
    let t = threads.to_string();
    let extra = if reproducible { vec!["--threads", &t, "--reproducible"] } else { vec!["--threads", &t] };
    trained(ranks, &extra, data, flow, &dir.join(format!("t{ranks}x{threads}.json")))
}

#[test]
fn the_thread_count_changes_no_bit() {
    // Each rank's threads take fixed parts of its rows and merge them in order: 1..4 threads
    // give the same model file on the same ranks, and under --reproducible on any layout of
    // ranks x threads.
    let dir = scratch("repro-threads");
    for (data, flow) in every_kind(&dir) {
        let one = model_with_threads(2, 1, false, &data, &flow, &dir);
        assert!(model_with_threads(2, 3, false, &data, &flow, &dir) == one, "{flow} on {data}: 2 ranks of 3 threads differ from 1 thread each");
        let one = model_with_threads(1, 1, true, &data, &flow, &dir);
        for (ranks, t) in [(1, 4), (3, 2)] {
            assert!(
                model_with_threads(ranks, t, true, &data, &flow, &dir) == one,
                "{flow} on {data}: --reproducible on {ranks} x {t} threads differs from 1 x 1"
            );
        }
    }
}

#[test]
fn a_kmeans_resumed_on_other_rank_counts_ends_where_an_uninterrupted_one_does() {
    let dir = scratch("repro-resume");
    let data = dir.join("x.npy");
    write_npy(&data, 50_000, 5);
    let (data, ck) = (data.to_str().unwrap(), dir.join("ck.json"));
    let ck = ck.to_str().unwrap();
    let flow = "kmeans(k=5, init=random, n_init=1, seed=3, tol=0)";
    let whole = nodes(4, data, flow, &dir);
    assert!(whole[0]["n_iter"].as_u64().unwrap() > 4, "the reference must iterate: {}", whole[0]["n_iter"]);
    // Four iterations on three ranks, the rest on two.
    let m = dir.join("m.json");
    let m = m.to_str().unwrap();
    mpirun(
        3,
        &[
            "train",
            "--reproducible",
            "--checkpoint",
            ck,
            "--data",
            data,
            "--flow",
            "kmeans(k=5, init=random, n_init=1, seed=3, tol=0, max_iter=4)",
            "--model",
            m,
        ],
    )
    .ok();
    mpirun(2, &["train", "--reproducible", "--checkpoint", ck, "--resume", "--data", data, "--flow", flow, "--model", m]).ok();
    let resumed = read_json(std::path::Path::new(m))["nodes"][0].clone();
    for key in ["centroids", "inertia", "n_iter", "converged", "initial_centroids"] {
        assert!(resumed[key] == whole[0][key], "{key}: resumed {} but uninterrupted {}", resumed[key], whole[0][key]);
    }
}

#[test]
fn what_it_cannot_do_is_refused() {
    let dir = scratch("repro-refused");
    let m = dir.join("m.json");
    let m = m.to_str().unwrap();
    let r = mpirun(1, &["train", "--reproducible", "--cache-data", "--data", "tests/data/nasty/part*.csv", "--flow", "moments", "--model", m]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert_eq!(files_in(&dir), Vec::<String>::new());
}

#[test]
fn execute_and_score_give_the_same_output_for_any_thread_count() {
    // A rank's threads map fixed parts of each block and stack them in order: the output files
    // and the scores are the same bytes for 1 and 3 threads.
    let dir = scratch("threads-execute");
    let data = dir.join("x.npy");
    write_npy(&data, 150_000, 6);
    let (data, m) = (data.to_str().unwrap(), dir.join("m.json"));
    let m = m.to_str().unwrap();
    mpirun(2, &["train", "--data", data, "--flow", "whitening | pca(n=3)", "--model", m]).ok();
    let run = |threads: &str| {
        let out = dir.join(format!("out{threads}_{{rank}}.npy"));
        let out = out.to_str().unwrap();
        mpirun(2, &["execute", "--threads", threads, "--model", m, "--data", data, "--out", out]).ok();
        let files: Vec<Vec<u8>> = (0..2).map(|r| std::fs::read(out.replace("{rank}", &r.to_string())).unwrap()).collect();
        let score = mpirun(2, &["score", "--json", "--threads", threads, "--model", m, "--data", data]);
        (files, score.ok().stdout.clone())
    };
    let (one, score) = run("1");
    assert!(one.iter().all(|f| f.len() > 1_000_000), "the outputs hold the rows");
    assert!(score.contains("explained"), "{score}");
    assert_eq!(run("3"), (one, score), "execute/score with 3 threads differ from 1");
}
