//! `train --reproducible`: the model is the same, bit for bit, on 1, 2, 3 and 4 ranks, for every
//! node kind that keeps no rows (one pass, and hist's and fda's two), on uneven shards (an empty one, a one-row one, more files than
//! ranks and fewer) and on one file split among the ranks, CSV and NPY; and what it cannot do
//! is refused with one clear error.
mod common;
use common::*;

/// The trained nodes (the model without its rank count) for `n` ranks.
fn nodes(n: usize, data: &str, flow: &str, dir: &std::path::Path) -> serde_json::Value {
    let m = dir.join(format!("m{n}.json"));
    let r = mpirun(n, &["-v", "train", "--reproducible", "--data", data, "--flow", flow, "--model", m.to_str().unwrap()]);
    r.ok();
    assert_same_hash_on_all_ranks(&r, n);
    read_json(&m)["nodes"].clone()
}

#[test]
fn every_kind_but_kmeans_and_layers_gives_the_same_bits_on_1_to_4_ranks() {
    let dir = scratch("repro");
    // Three NPY files for four ranks: one rank reads nothing.
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
    ];
    for (data, flow) in cases {
        let one = nodes(1, data, flow, &dir);
        for n in 2..=4 {
            assert!(nodes(n, data, flow, &dir) == one, "{flow} on {data}: {n} ranks differ from 1 rank");
        }
    }
}

#[test]
fn what_it_cannot_do_is_refused() {
    let dir = scratch("repro-refused");
    let m = dir.join("m.json");
    let m = m.to_str().unwrap();
    one_error(&mpirun(2, &["train", "--reproducible", "--data", "tests/data/nasty/part*.csv", "--flow", "kmeans(k=2)", "--model", m]), &["--reproducible", "kmeans(k=2", "keeps no per-file statistics"]);
    let r = mpirun(1, &["train", "--reproducible", "--cache-data", "--data", "tests/data/nasty/part*.csv", "--flow", "moments", "--model", m]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert_eq!(files_in(&dir), Vec::<String>::new());
}
