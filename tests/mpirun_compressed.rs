//! Compressed CSV shards (`.csv.gz`, `.csv.zst`, `.tsv.gz`; made by the gzip and zstd tools,
//! `scripts/make_compressed_data.sh`): tests/data/nasty's rows (shards of 700, 0, 300 and 2 rows,
//! mean 1e8, std 1e-2..10) as gzip, zstd, a two-member gzip, a plain header-only file and a
//! compressed header-only one. On 1..4 ranks (each compressed file read whole by one rank, so
//! some ranks read nothing) the model matches numpy's reference within the data's conditioning,
//! and under `--reproducible` it is bit-identical on every rank count.
//! A bad value names its line in the decompressed text; a truncated or mislabelled file is one
//! clear error on every rank.
mod common;
use common::*;

const COMPRESSED: &str = "tests/data/compressed/part*";
const FLOW: &str = "moments | covariance";
const RANKS: [usize; 4] = [1, 2, 3, 4];

#[test]
fn compressed_shards_give_the_plain_rows_model_on_1_to_4_ranks() {
    let dir = scratch("compressed");
    for n in RANKS {
        let m = train_model(n, COMPRESSED, FLOW, &["--block-bytes", "2048"], &dir);
        assert_nasty_model(&format!("{n} ranks"), &m);
    }
}

#[test]
fn reproducible_models_are_the_same_bits_on_1_to_4_ranks() {
    let flow = "moments | covariance | pca(n=2)";
    let dir = scratch("compressed-repro");
    let one = train_model(1, COMPRESSED, flow, &["--reproducible"], &dir);
    for n in 2..=4 {
        assert_eq!(train_model(n, COMPRESSED, flow, &["--reproducible"], &dir)["nodes"], one["nodes"], "{n} ranks");
    }
    // The plain files' model to round-off: the compressed set has one more (empty) file, so
    // another tree of leaves, whose merges may round differently.
    let plain = train_model(1, "tests/data/nasty/part*.csv", flow, &["--reproducible"], &scratch("compressed-plain"));
    assert_models_agree("compressed vs plain", &one, &plain, 1e-12);
}

#[test]
fn one_compressed_file_is_read_whole_by_rank_0() {
    let dir = scratch("compressed-one");
    let one = train_model(1, "tests/data/compressed/part0.csv.gz", FLOW, &["--reproducible"], &dir);
    let three = mpirun(
        3,
        &["-v", "train", "--reproducible", "--data", "tests/data/compressed/part0.csv.gz", "--flow", FLOW, "--model", dir.join("m.json").to_str().unwrap()],
    );
    three.ok();
    assert_same_hash_on_all_ranks(&three, 3);
    assert_eq!(read_json(&dir.join("m.json"))["nodes"], one["nodes"]);
    assert_eq!(one["training_rows"], 700);
}

#[test]
fn bad_compressed_input_is_one_error_naming_rank_file_and_line() {
    let dir = scratch("compressed-bad");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    let train = |n: usize, data: &str| mpirun(n, &["train", "--data", data, "--flow", "covariance", "--model", m]);
    // Line 5 of the decompressed text, after a comment line, on the rank that reads it.
    one_error(&train(2, "tests/data/compressed_bad/bad.csv.gz"), &["rank 0", "bad.csv.gz", "line 5", "'x'"]);
    one_error(&train(2, "tests/data/compressed_bad/truncated.csv.zst"), &["rank 0", "truncated.csv.zst", "cannot decompress it as zstd"]);
    one_error(&train(1, "tests/data/compressed_bad/gzipped.csv"), &["gzipped.csv", "gzip-compressed", "name it .csv.gz"]);
    assert!(!model.exists(), "no model is written");
    assert!(files_in(&dir).is_empty(), "nothing is left behind: {:?}", files_in(&dir));
}
