//! Parquet shards, made by pyarrow (`scripts/make_parquet_data.py`, checked in): tests/data/nasty's
//! rows (700, 0, 300 and 2 rows; mean 1e8, std 1e-2..10) in row groups of 128 (snappy), none,
//! 100 (zstd) and 1 (uncompressed). On 1..4 ranks the model matches numpy's reference within the
//! data's conditioning; one file is split among the ranks by row groups; under `--reproducible`
//! the model is the same bits on every rank count; a string label column trains a classifier as
//! the same CSV does; int32/int64/float/boolean columns read as their values; a null is a
//! missing value; a text column among the features or a file that is not Parquet is one clear
//! error on every rank.
mod common;
use common::*;

const RANKS: [usize; 4] = [1, 2, 3, 4];
const PARQUET: &str = "tests/data/parquet/part*.parquet";

#[test]
fn parquet_shards_give_the_csv_rows_model_on_1_to_4_ranks() {
    let dir = scratch("parquet");
    for n in RANKS {
        let m = train_model(n, PARQUET, "moments | covariance", &[], &dir);
        assert_nasty_model(&format!("{n} ranks"), &m);
    }
}

#[test]
fn reproducible_models_are_the_same_bits_on_1_to_4_ranks_also_for_one_file_split_by_row_groups() {
    let flow = "moments | covariance | pca(n=2)";
    for (name, data) in [("parquet-repro", PARQUET), ("parquet-one", "tests/data/parquet/part0.parquet")] {
        let dir = scratch(name);
        let one = train_model(1, data, flow, &["--reproducible"], &dir);
        for n in 2..=4 {
            assert_eq!(train_model(n, data, flow, &["--reproducible"], &dir)["nodes"], one["nodes"], "{data}: {n} ranks");
        }
    }
    // One file of six row groups over 4 ranks without --reproducible: every row once.
    let m = train_model(4, "tests/data/parquet/part0.parquet", "moments", &[], &scratch("parquet-split"));
    assert_eq!(m["training_rows"], 700);
}

#[test]
fn a_string_label_column_trains_the_classifier_the_csv_trains() {
    let dir = scratch("parquet-gnb");
    for n in [1, 3] {
        let csv = train_model(n, "tests/data/gnb/part*.csv", "gnb(label=label)", &[], &dir);
        let parquet = train_model(n, "tests/data/parquet_gnb/part*.parquet", "gnb(label=label)", &[], &dir);
        assert_models_agree(&format!("{n} ranks"), &parquet, &csv, 1e-13);
    }
}

#[test]
fn integer_float_and_boolean_columns_read_as_their_values() {
    let dir = scratch("parquet-types");
    let m = train_model(2, "tests/data/parquet_bad/types.parquet", "moments", &["--exclude", "name"], &dir);
    let moments = &node(&m, 0)["moments"];
    // i32 1,-2,3,-4,5,-6; i64 1e12,2..6; f32 0.5,0.25,-1.5,2,3,4 (exact in float32); flag T,F,T,T,F,T.
    assert_eq!(nums(&moments["sum"]), vec![-3.0, 1e12 + 20.0, 8.25, 4.0]);
    assert_eq!(nums(&moments["minimum"]), vec![-6.0, 2.0, -1.5, 0.0]);
    assert_eq!(nums(&moments["maximum"]), vec![5.0, 1e12, 4.0, 1.0]);
}

#[test]
fn nulls_text_columns_and_other_files_are_one_clear_error() {
    let dir = scratch("parquet-bad");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    let train = |n: usize, data: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", data, "--flow", "moments", "--model", m];
        args.extend_from_slice(extra);
        mpirun(n, &args)
    };
    one_error(&train(2, "tests/data/parquet_bad/nulls.parquet", &[]), &["nulls.parquet", "row 5 column 1 ('b') holds NaN", "--nan skip"]);
    one_error(&train(2, "tests/data/parquet_bad/types.parquet", &[]), &["types.parquet", "column 'name' holds text", "--exclude"]);
    let not_parquet = dir.join("fake.parquet");
    std::fs::write(&not_parquet, "a,b\n1,2\n").unwrap();
    one_error(&train(2, not_parquet.to_str().unwrap(), &[]), &["rank 0", "fake.parquet", "not a readable Parquet file"]);
    std::fs::remove_file(&not_parquet).unwrap();
    assert!(files_in(&dir).is_empty(), "no model, nothing left behind: {:?}", files_in(&dir));
    // --nan skip drops the null's row.
    let skipped = train_model(2, "tests/data/parquet_bad/nulls.parquet", "moments", &["--nan", "skip"], &dir);
    assert_eq!(skipped["training_rows"], 9);
    assert_eq!(nums(&node(&skipped, 0)["moments"]["sum"]), vec![45.0 - 4.0, 450.0 - 40.0]);
}

#[test]
fn execute_and_sort_write_parquet_that_reads_back_as_their_csv() {
    let dir = scratch("parquet-out");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    mpirun(2, &["train", "--data", "tests/data/gnb/part*.csv", "--flow", "pca(n=2) | gnb(label=label)", "--model", m]).ok();
    for n in [1, 3, 4] {
        let (pq, csv) = (dir.join(format!("pq{n}/part{{rank}}.parquet")), dir.join(format!("csv{n}/part{{rank}}.csv")));
        for out in [&pq, &csv] {
            mpirun(n, &["execute", "--model", m, "--data", "tests/data/gnb/part*.csv", "--keep", "label", "--out", out.to_str().unwrap()]).ok();
        }
        for r in 0..n {
            let bytes = std::fs::read(dir.join(format!("pq{n}/part{r}.parquet"))).unwrap();
            assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "{n} ranks, part {r}");
        }
        // Read back by flowmpi and written as CSV again: the same text as the CSV output, every
        // number (shortest round-trip) and class name.
        let pq_glob = dir.join(format!("pq{n}/part*.parquet"));
        let csv_glob = dir.join(format!("csv{n}/part*.csv"));
        let copy = dir.join(format!("copy{n}.json"));
        let (c, keep) = (copy.to_str().unwrap(), "label,label_pred");
        mpirun(1, &["train", "--data", csv_glob.to_str().unwrap(), "--flow", "moments", "--exclude", keep, "--model", c]).ok();
        let back = |from: &std::path::Path, to: &str| {
            let out = dir.join(to);
            mpirun(1, &["execute", "--model", c, "--data", from.to_str().unwrap(), "--keep", keep, "--out", out.to_str().unwrap()]).ok();
            std::fs::read_to_string(out).unwrap()
        };
        let (a, b) = (back(&pq_glob, &format!("a{n}.csv")), back(&csv_glob, &format!("b{n}.csv")));
        assert_eq!(a.lines().count(), 654);
        assert_eq!(a, b, "{n} ranks");
    }
    // sort: the sorted rows and the argsort indices (INT64) as Parquet.
    let (rows, idx) = (dir.join("s/part{rank}.parquet"), dir.join("s/idx{rank}.parquet"));
    mpirun(3, &["sort", "--data", "tests/data/gnb/part*.csv", "--by", "f0", "--out", rows.to_str().unwrap(), "--argsort", idx.to_str().unwrap()]).ok();
    let sorted = train_model(2, dir.join("s/part*.parquet").to_str().unwrap(), "moments", &[], &dir);
    let plain = train_model(2, "tests/data/gnb/part*.csv", "moments", &[], &dir);
    assert_eq!(node(&sorted, 0)["moments"]["maximum"], node(&plain, 0)["moments"]["maximum"]);
    let index = train_model(1, dir.join("s/idx*.parquet").to_str().unwrap(), "moments", &[], &dir);
    // The indices are a permutation of 0..653: their sum and square sum say so (with the count).
    assert_eq!(nums(&node(&index, 0)["moments"]["sum"]), vec![(652 * 653 / 2) as f64]);
    assert_eq!(nums(&node(&index, 0)["moments"]["maximum"]), vec![652.0]);
}
