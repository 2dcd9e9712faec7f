//! HDF5 shards, made by h5py (`scripts/make_hdf5_data.py`, checked in): tests/data/nasty's rows
//! (700, 0, 300 and 2 rows; mean 1e8, std 1e-2..10) as dataset /run/x, chunked + gzip,
//! empty, contiguous, and chunked + shuffle + gzip with byte-string names; and one file written
//! by the C library's own `h5import`. On 1..4 ranks the model matches numpy's reference within
//! the data's conditioning; one file is split among the ranks by rows; under `--reproducible`
//! the model is the same bits on every rank count; a numeric label column trains a classifier as
//! the same CSV does; integer datasets read as their values; bad files are one clear error on
//! every rank.
mod common;
use common::*;

const RANKS: [usize; 4] = [1, 2, 3, 4];
const HDF5: &str = "tests/data/hdf5/part*.h5:/run/x";

#[test]
fn hdf5_shards_give_the_csv_rows_model_on_1_to_4_ranks() {
    let dir = scratch("hdf5");
    for n in RANKS {
        let m = train_model(n, HDF5, "moments | covariance", &[], &dir);
        assert_nasty_model(&format!("{n} ranks"), &m);
    }
    // The dataset by --dataset instead of in --data: the same rows.
    let m = train_model(2, "tests/data/hdf5/part*.h5", "moments | covariance", &["--dataset", "/run/x"], &dir);
    assert_nasty_model("--dataset", &m);
}

/// `x.npy`'s values (write_npy) as an HDF5 dataset /x, contiguous or chunked + gzip.
fn npy_as_hdf5(npy: &std::path::Path, h5: &std::path::Path, rows: usize, cols: usize, gzip: bool) {
    let bytes = std::fs::read(npy).unwrap();
    let vals: Vec<f64> = bytes[bytes.len() - rows * cols * 8..].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
    let x = ndarray::Array2::from_shape_vec((rows, cols), vals).unwrap();
    let f = hdf5_metno::File::create(h5).unwrap();
    let b = f.new_dataset_builder();
    let b = if gzip { b.chunk((4096, cols)).deflate(4) } else { b };
    b.with_data(&x).create("x").unwrap();
}

#[test]
fn reproducible_models_are_the_same_bits_on_1_to_4_ranks_and_as_the_same_rows_in_npy() {
    let flow = "moments | covariance | pca(n=2)";
    // One file split among the ranks: ~10 MB, so several 1 MiB leaves (hyperslab blocks).
    let dir = scratch("hdf5-repro");
    let (rows, cols) = (200_000, 6);
    let npy = dir.join("big.npy");
    write_npy(&npy, rows, cols);
    let (plain, packed) = (dir.join("big.h5"), dir.join("packed.h5"));
    npy_as_hdf5(&npy, &plain, rows, cols, false);
    npy_as_hdf5(&npy, &packed, rows, cols, true);
    let repro = |n: usize, data: &std::path::Path| train_model(n, data.to_str().unwrap(), flow, &["--reproducible"], &dir)["nodes"].clone();
    // A contiguous dataset is cut into as many leaves as the NPY file, at the same rows.
    let from_npy = repro(1, &npy);
    for n in RANKS {
        assert_eq!(repro(n, &plain), from_npy, "contiguous HDF5 on {n} ranks vs NPY");
    }
    let one = repro(1, &packed);
    for n in 2..=4 {
        assert_eq!(repro(n, &packed), one, "chunked + gzip HDF5 on {n} ranks");
    }
    // The small checked-in shards too, and one file over 4 ranks without --reproducible: every row once.
    let dir = scratch("hdf5-repro-small");
    let one = train_model(1, HDF5, flow, &["--reproducible"], &dir);
    for n in 2..=4 {
        assert_eq!(train_model(n, HDF5, flow, &["--reproducible"], &dir)["nodes"], one["nodes"], "{n} ranks");
    }
    let m = train_model(4, "tests/data/hdf5/part0.h5", "moments", &[], &scratch("hdf5-split"));
    assert_eq!(m["training_rows"], 700);
}

#[test]
fn a_numeric_label_column_trains_the_classifier_the_csv_trains() {
    let dir = scratch("hdf5-gnb");
    for n in [1, 3] {
        let csv = train_model(n, "tests/data/gnb/part*.csv", "gnb(label=label)", &[], &dir);
        let h5 = train_model(n, "tests/data/hdf5_gnb/part*.h5", "gnb(label=label)", &[], &dir);
        assert_models_agree(&format!("{n} ranks"), &h5, &csv, 1e-13);
    }
}

#[test]
fn integer_datasets_and_the_c_tools_file_read_as_their_values() {
    let dir = scratch("hdf5-types");
    let sums = |data: &str| {
        let m = train_model(2, data, "moments", &[], &dir);
        let mo = &node(&m, 0)["moments"];
        (nums(&mo["sum"]), nums(&mo["minimum"]), nums(&mo["maximum"]))
    };
    // int16 [[1,-2],[3,-4],[5,-6]]; uint8 [0,7,255]; float32 [[.5,.25],[-1.5,2],[3,4]].
    assert_eq!(sums("tests/data/hdf5_bad/types.h5:/i16"), (vec![9.0, -12.0], vec![1.0, -6.0], vec![5.0, -2.0]));
    assert_eq!(sums("tests/data/hdf5_bad/types.h5:/u8"), (vec![262.0], vec![0.0], vec![255.0]));
    assert_eq!(sums("tests/data/hdf5_bad/types.h5:/f32"), (vec![2.0, 6.25], vec![-1.5, 0.25], vec![3.0, 4.0]));
    // float16 [1.5, -2, 65504] (its largest finite value); bool (h5py's enum) [T, F, T].
    assert_eq!(sums("tests/data/hdf5_bad/types.h5:/f16"), (vec![65503.5], vec![-2.0], vec![65504.0]));
    assert_eq!(sums("tests/data/hdf5_bad/types.h5:/flag"), (vec![2.0], vec![0.0], vec![1.0]));
    // h5import's 4 x 3 grid from grid.txt: -1, -0.75, ..., 1.75 row by row (exact in binary).
    let text = std::fs::read_to_string("tests/data/hdf5_c/grid.txt").unwrap();
    let rows: Vec<Vec<f64>> = text.lines().map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect()).collect();
    let want: Vec<f64> = (0..3).map(|j| rows.iter().map(|r| r[j]).sum()).collect();
    let m = train_model(3, "tests/data/hdf5_c/grid.h5", "moments", &[], &dir);
    assert_eq!(nums(&node(&m, 0)["moments"]["sum"]), want);
    assert_eq!(m["training_rows"], 4);
    assert_eq!(m["input_columns"], serde_json::json!(["x0", "x1", "x2"]), "no names attribute: x0, x1, ...");
}

#[test]
fn hdf5_input_runs_execute_and_an_hdf5_output_is_refused() {
    let dir = scratch("hdf5-execute");
    let model = dir.join("m.json");
    let r = mpirun(2, &["train", "--data", HDF5, "--flow", "pca(n=2)", "--model", model.to_str().unwrap()]);
    r.ok();
    let out = dir.join("out{rank}.csv");
    let r = mpirun(2, &["execute", "--model", model.to_str().unwrap(), "--data", HDF5, "--out", out.to_str().unwrap()]);
    r.ok();
    let rows: usize = (0..2).map(|k| read_out_csv(&dir.join(format!("out{k}.csv"))).len()).sum();
    assert_eq!(rows, 1002);
    let bad = dir.join("out{rank}.h5");
    let r = mpirun(2, &["execute", "--model", model.to_str().unwrap(), "--data", HDF5, "--out", bad.to_str().unwrap()]);
    one_error(&r, &["out0.h5", "read, not written"]);
    assert!(!dir.join("out0.h5").exists() && !dir.join("out1.h5").exists());
}

#[test]
fn bad_hdf5_files_are_one_clear_error() {
    let dir = scratch("hdf5-bad");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    let train = |n: usize, data: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", data, "--flow", "moments", "--model", m];
        args.extend_from_slice(extra);
        mpirun(n, &args)
    };
    let b = "tests/data/hdf5_bad/";
    one_error(&train(2, &format!("{b}several.h5"), &[]), &["several.h5", "several datasets (/a, /deep/b)", "--dataset"]);
    one_error(&train(2, &format!("{b}several.h5:/c"), &[]), &["several.h5", "no dataset \"/c\"", "/a, /deep/b"]);
    one_error(&train(2, &format!("{b}cube.h5"), &[]), &["cube.h5", "3 dimensions"]);
    one_error(&train(2, &format!("{b}text.h5"), &[]), &["text.h5", "holds string", "not numbers"]);
    one_error(&train(2, &format!("{b}badnames.h5"), &[]), &["badnames.h5", "attribute 'columns' names 3 columns but the dataset has 2"]);
    one_error(&train(2, &format!("{b}several.h5:/a"), &["--dataset", "/deep/b"]), &["dataset \"/a\"", "--dataset \"/deep/b\""]);
    let fake = dir.join("fake.h5");
    std::fs::write(&fake, "a,b\n1,2\n").unwrap();
    one_error(&train(2, fake.to_str().unwrap(), &[]), &["rank 0", "fake.h5", "cannot open it as HDF5", "looks like text"]);
    std::fs::remove_file(&fake).unwrap();
    assert!(files_in(&dir).is_empty(), "no model, nothing left behind: {:?}", files_in(&dir));
}
