//! Hardening (issue 9): inputs and situations that used to give a silently wrong answer, a panic,
//! an allocation failure or a stray file. Every run is under a timeout; failures must print one
//! message, exit non-zero on every rank and leave no file behind.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn copy_example(dir: &Path) {
    for k in 0..4 {
        std::fs::copy(format!("data/example/part{k}.csv"), dir.join(format!("part{k}.csv"))).unwrap();
    }
}

fn rows_of(model: &Path) -> u64 {
    read_json(model)["training_rows"].as_u64().unwrap()
}

/// A `.npy` file with the given dtype, shape text and raw data.
fn npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let len = (dict.len() + 1 + 10).div_ceil(64) * 64 - 10;
    h.extend_from_slice(&(len as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(10 + len - 1, b' ');
    h.push(b'\n');
    h.extend_from_slice(data);
    std::fs::write(path, h).unwrap();
}

/// A scratch directory `name` holding a data directory `d` of the CSV files `p0.csv`, `p1.csv`,
/// ... with these texts, and the path of its model `m.json`.
fn csv_shards(name: &str, texts: &[&str]) -> (Scratch, PathBuf, PathBuf) {
    let dir = scratch(name);
    let data = dir.join("d");
    std::fs::create_dir(&data).unwrap();
    for (i, t) in texts.iter().enumerate() {
        std::fs::write(data.join(format!("p{i}.csv")), t).unwrap();
    }
    let m = dir.join("m.json");
    (dir, data, m)
}

#[test]
fn every_files_header_is_checked_whatever_the_rank_count() {
    let (_dir, data, m) = csv_shards("hdr", &["a,b\n1,2\n3,5\n4,4\n", "a,b\n7,8\n", "b,a\n10,1\n20,2\n"]);
    for n in 1..=3 {
        let r = mpirun(n, &["train", "--data", data.to_str().unwrap(), "--flow", "covariance", "--model", m.to_str().unwrap()]);
        one_error(&r, &["p2.csv", "header differs", "column 1 is 'a' there but 'b' here (column 2 there)"]);
        assert!(!m.exists(), "{n} ranks");
    }
}

#[test]
fn a_header_naming_two_columns_alike_is_refused_on_every_rank() {
    // Uneven shards and an empty one; rank 0 may hold no rows and still name the file.
    let (_dir, data, m) = csv_shards("dupname", &["a,b,a\n", "a,b,a\n1,2,3\n4,5,6\n7,8,9\n", "a,b,a\n1,1,1\n"]);
    for n in 1..=4 {
        let d = data.to_str().unwrap();
        one_error(
            &mpirun(n, &["train", "--data", d, "--flow", "moments", "--model", m.to_str().unwrap()]),
            &["line 1", "columns 0 and 2 (0-based) are both named 'a'"],
        );
        one_error(
            &mpirun(n, &["train", "--data", d, "--columns", "a,b", "--flow", "moments", "--model", m.to_str().unwrap()]),
            &["the header names columns 0 and 2 both 'a'"],
        );
        assert!(!m.exists(), "{n} ranks");
    }
    // Chosen by index, the columns have distinct names and train.
    mpirun(3, &["train", "--data", data.to_str().unwrap(), "--columns", "1,2", "--flow", "moments", "--model", m.to_str().unwrap()]).ok();
    assert_eq!(rows_of(&m), 4);
}

#[test]
fn a_rank_pattern_that_leaves_files_unread_is_an_error() {
    let dir = scratch("unread");
    copy_example(&dir);
    let pat = dir.join("part{rank}.csv");
    let m = dir.join("m.json");
    let args = |extra: &[&'static str]| {
        let mut a =
            vec!["train".to_string(), "--data".into(), pat.display().to_string(), "--flow".into(), "moments".into(), "--model".into(), m.display().to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for n in [1, 3] {
        let a = args(&[]);
        let r = mpirun(n, &a.iter().map(String::as_str).collect::<Vec<_>>());
        one_error(&r, &["matches", &format!("ranks {n} and above"), "mpirun -n 4", "--allow-unread"]);
        assert!(!m.exists());
    }
    let a = args(&["--allow-unread"]);
    mpirun(2, &a.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert_eq!(rows_of(&m), 1300 + 1000);
    // Exactly as many files as ranks: fine.
    let a = args(&[]);
    mpirun(4, &a.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert_eq!(rows_of(&m), 4000);
}

#[test]
fn directory_entries_that_are_not_regular_files_are_named_errors() {
    let dir = scratch("direntries");
    let data = dir.join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy("data/example/part0.csv", data.join("a.csv")).unwrap();
    // A good symlink is followed: its rows count.
    std::os::unix::fs::symlink(std::fs::canonicalize("data/example/part1.csv").unwrap(), data.join("b.csv")).unwrap();
    std::fs::write(data.join("README.md"), "not data").unwrap();
    let m = dir.join("m.json");
    let train = |n: usize| mpirun(n, &["train", "--data", data.to_str().unwrap(), "--flow", "moments", "--model", m.to_str().unwrap()]);
    train(2).ok();
    assert_eq!(rows_of(&m), 2300);
    std::fs::remove_file(&m).unwrap();
    // (entry name, how to plant it, the message expected)
    type Plant = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Plant, &str)> = vec![
        ("c.csv", Box::new(|p| std::os::unix::fs::symlink("nowhere.csv", p).unwrap()), "does not exist"),
        ("c.csv", Box::new(|p| std::os::unix::fs::symlink(p, p).unwrap()), "symlink loop"),
        ("c.csv", Box::new(|p| assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success())), "FIFO"),
        ("sub", Box::new(|p| std::fs::create_dir(p).unwrap()), "is a directory"),
    ];
    for (name, make, why) in cases {
        let p = data.join(name);
        make(&p);
        for n in [1, 2] {
            one_error(&train(n), &[&p.display().to_string(), why]);
            assert!(!m.exists());
        }
        let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir(&p));
    }
    // A sub-directory beside the shards.
    let r = mpirun(2, &["train", "--data", dir.to_str().unwrap(), "--flow", "moments", "--model", m.to_str().unwrap()]);
    one_error(&r, &["d: is a directory"]);
}

#[test]
fn execute_refuses_outputs_that_collide_or_overwrite_inputs() {
    let dir = scratch("collide");
    copy_example(&dir);
    let m = dir.join("m.json");
    mpirun(2, &["train", "--data", dir.join("part{rank}.csv").to_str().unwrap(), "--flow", "pca(n=2)", "--model", m.to_str().unwrap(), "--allow-unread"]).ok();
    let before = files_in(&dir);
    let data = dir.join("part{rank}.csv");
    let exec = |n: usize, out: &str| mpirun(n, &["execute", "--model", m.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out, "--allow-unread"]);
    let same = dir.join("o/r{rank}/../x.csv");
    one_error(&exec(2, same.to_str().unwrap()), &["ranks 0 and 1 would both write", "o/x.csv"]);
    let onto_input = dir.join("part{rank}.csv");
    one_error(&exec(2, onto_input.to_str().unwrap()), &["would overwrite the input file"]);
    // Rank 0's output is rank 1's input.
    let shifted = dir.join("sub/../part{size}.csv").display().to_string().replace("{size}", "1");
    let r = mpirun(
        2,
        &[
            "execute",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--allow-unread",
            "--out",
            &shifted.replace("part1", "part{rank}").replace("sub/../part{rank}", "q{rank}/../part1"),
        ],
    );
    one_error(&r, &["would both write"]);
    one_error(&exec(1, m.to_str().unwrap()), &["would overwrite the model"]);
    // Hard links: the same file under other names (an input, the model, another rank's output).
    let links = dir.join("links");
    std::fs::create_dir(&links).unwrap();
    std::fs::hard_link(dir.join("part1.csv"), links.join("h0.csv")).unwrap();
    one_error(&exec(2, links.join("h{rank}.csv").to_str().unwrap()), &["rank 0 would overwrite the input file", "part1.csv"]);
    std::fs::remove_file(links.join("h0.csv")).unwrap();
    std::fs::hard_link(&m, links.join("h1.csv")).unwrap();
    one_error(&exec(2, links.join("h{rank}.csv").to_str().unwrap()), &["rank 1 would overwrite the model"]);
    std::fs::remove_file(links.join("h1.csv")).unwrap();
    std::fs::write(links.join("g0.csv"), "OLD").unwrap();
    std::fs::hard_link(links.join("g0.csv"), links.join("g1.csv")).unwrap();
    one_error(&exec(2, links.join("g{rank}.csv").to_str().unwrap()), &["ranks 0 and 1 would both write"]);
    std::fs::remove_dir_all(&links).unwrap();
    assert_eq!(files_in(&dir), before, "nothing may be written");
    assert_eq!(std::fs::read(dir.join("part0.csv")).unwrap(), std::fs::read("data/example/part0.csv").unwrap());
}

#[test]
fn outputs_change_all_together_or_not_at_all() {
    let dir = scratch("allornothing");
    let m = dir.join("m.json");
    mpirun(1, &["train", "--data", "data/example", "--flow", "pca(n=2)", "--model", m.to_str().unwrap()]).ok();
    let out = dir.join("o");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("p0.csv"), "OLD").unwrap();
    std::fs::create_dir(out.join("p1.csv")).unwrap(); // rank 1 cannot write its shard
    let r = mpirun(
        2,
        &[
            "execute",
            "--model",
            m.to_str().unwrap(),
            "--data",
            "data/example/part{rank}.csv",
            "--allow-unread",
            "--out",
            out.join("p{rank}.csv").to_str().unwrap(),
        ],
    );
    one_error(&r, &["rank 1", "p1.csv", "directory"]);
    assert_eq!(std::fs::read_to_string(out.join("p0.csv")).unwrap(), "OLD");
    assert_eq!(files_in(&out), vec!["p0.csv", "p1.csv"], "no temporary may remain");
}

#[test]
fn a_replaced_model_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    let m = dir.join("m.json");
    std::fs::write(&m, "OLD").unwrap();
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o600)).unwrap();
    mpirun(2, &["train", "--data", "data/example", "--flow", "moments", "--model", m.to_str().unwrap()]).ok();
    assert_eq!(std::fs::metadata(&m).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(files_in(&dir), vec!["m.json"]);
}

#[test]
fn sigterm_during_execute_leaves_no_temporary() {
    let dir = scratch("sigterm");
    // ~60 MB of CSV, so the outputs are being written when the signal comes.
    let mut text = String::from("a,b,c,d\n");
    for i in 0..1_500_000u64 {
        text.push_str(&format!("{}.25,{}.5,{},{}.125\n", i % 977, i % 13, i % 101, i % 7));
    }
    std::fs::write(dir.join("big.csv"), text).unwrap();
    let m = dir.join("m.json");
    mpirun(1, &["train", "--data", dir.join("big.csv").to_str().unwrap(), "--flow", "pca(n=2)", "--model", m.to_str().unwrap()]).ok();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut c = std::process::Command::new("mpirun");
    c.args(["--oversubscribe", "-n", "2", BIN, "execute", "--model", m.to_str().unwrap(), "--data", dir.join("big.csv").to_str().unwrap(), "--out"])
        .arg(out.join("p{rank}.csv"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // Wait until both temporaries exist, then send what a batch system's time limit sends.
    let t0 = std::time::Instant::now();
    while files_in(&out).iter().filter(|f| f.ends_with(".tmp")).count() < 2 {
        assert!(t0.elapsed().as_secs() < 60, "temporaries never appeared: {:?}", files_in(&out));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(files_in(&out).iter().all(|f| f.starts_with('.')), "finished before the signal: {:?}", files_in(&out));
    // The ranks and mpirun all get it, as from a batch system (`pkill -f` on the unique path).
    let _ = std::process::Command::new("pkill").args(["-TERM", "-f", out.to_str().unwrap()]).status();
    let _ = child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(files_in(&out), Vec::<String>::new(), "temporaries left after SIGTERM");
}

#[test]
fn npy_headers_with_impossible_shapes_fail_fast() {
    let dir = scratch("npyshape");
    let m = dir.join("m.json");
    for (shape, why) in [
        ("(0, 1099511627776)", "1 to 1048576 columns"),
        ("(3, 2305843009213693952)", "1 to 1048576 columns"),
        ("(2305843009213693952, 2)", "impossibly large"),
        ("(1000, 2)", "truncated"),
    ] {
        let p = dir.join("x.npy");
        npy(&p, "<f8", shape, &[0u8; 16]);
        for n in [1, 2] {
            one_error(&mpirun(n, &["train", "--data", p.to_str().unwrap(), "--flow", "moments", "--model", m.to_str().unwrap()]), &["x.npy", why]);
        }
    }
    // A header length beyond the file.
    let mut h = b"\x93NUMPY\x02\x00\xff\xff\xff\x7f".to_vec();
    h.extend_from_slice(&[b' '; 100]);
    std::fs::write(dir.join("y.npy"), h).unwrap();
    one_error(&mpirun(1, &["stats", "--data", dir.join("y.npy").to_str().unwrap()]), &["y.npy", "truncated .npy header"]);
    assert_eq!(files_in(&dir), vec!["x.npy", "y.npy"]);
}

#[test]
fn size_parameters_beyond_memory_are_clear_errors() {
    let dir = scratch("sizes");
    let m = dir.join("m.json");
    for flow in ["hist(bins=100000000000)", "kmeans(k=1000000000000)", "poly(degree=40)"] {
        one_error(
            &mpirun(2, &["train", "--data", "data/example", "--flow", flow, "--model", m.to_str().unwrap()]),
            &["training it needs about", "GiB of this"],
        );
    }
    one_error(&mpirun(1, &["stats", "--hist", "--bins", "100000000000", "--data", "data/example"]), &["training it needs about", "GiB of this"]);
    assert!(files_in(&dir).is_empty());
}

#[test]
fn score_of_transform_flows_and_damaged_models() {
    let dir = scratch("score");
    let m = dir.join("pca.json");
    mpirun(1, &["train", "--data", "data/example", "--flow", "pca(n=2)", "--model", m.to_str().unwrap()]).ok();
    // On the training data, the explained variance of the reconstruction is the sum of the
    // kept components' explained-variance ratios (which are checked against numpy elsewhere).
    let want: f64 = nums(&node(&read_json(&m), 0)["explained_variance_ratio"])[..2].iter().sum();
    for n in 1..=3 {
        let r = mpirun(n, &["score", "--json", "--model", m.to_str().unwrap(), "--data", "data/example"]);
        r.ok();
        let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(s["task"], "reconstruction");
        assert_eq!(s["rows"], 4000);
        assert!((s["explained_variance"].as_f64().unwrap() - want).abs() < 1e-10, "{n} ranks: {s}");
    }
    for flow in ["moments", "sfa(n=2)", "covariance"] {
        let mm = dir.join("t.json");
        mpirun(1, &["train", "--data", "data/example", "--flow", flow, "--model", mm.to_str().unwrap()]).ok();
        one_error(&mpirun(2, &["score", "--model", mm.to_str().unwrap(), "--data", "data/example"]), &["nothing to score"]);
    }
    // A model whose arrays disagree: one clear error from execute, score and inspect.
    let mut v = read_json(&m);
    v["nodes"][0]["mean"] = serde_json::json!([1.0]);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = dir.join("o{rank}.csv");
    one_error(
        &mpirun(2, &["execute", "--model", bad.to_str().unwrap(), "--data", "data/example", "--out", out.to_str().unwrap()]),
        &["mean has 1 entries, expected 8"],
    );
    one_error(&mpirun(2, &["score", "--model", bad.to_str().unwrap(), "--data", "data/example"]), &["mean has 1 entries, expected 8"]);
    one_error(&single(&["inspect", bad.to_str().unwrap()], &[]), &["mean has 1 entries, expected 8"]);
    v["nodes"][0]["mean"] = serde_json::json!([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    v["nodes"][0]["components"][0][3] = serde_json::Value::Null;
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    one_error(&mpirun(1, &["execute", "--model", bad.to_str().unwrap(), "--data", "data/example", "--out", out.to_str().unwrap()]), &["model"]);
    // --proba on a transform.
    one_error(
        &mpirun(2, &["execute", "--proba", "--model", m.to_str().unwrap(), "--data", "data/example", "--out", out.to_str().unwrap()]),
        &["--proba", "not a classifier"],
    );
    assert_eq!(files_in(&dir), vec!["bad.json", "pca.json", "t.json"]);
}

#[test]
fn messages_quote_little_and_name_file_and_line() {
    let dir = scratch("messages");
    let m = dir.join("m.json");
    // A 100,000-byte field is quoted with its first 80 characters and its size.
    let long = "z".repeat(100_000);
    std::fs::write(dir.join("long.csv"), format!("a,b\n1,2\n3,{long}\n")).unwrap();
    let e = one_error(
        &mpirun(1, &["train", "--data", dir.join("long.csv").to_str().unwrap(), "--flow", "moments", "--model", m.to_str().unwrap()]),
        &["long.csv, line 3", "(100000 bytes)"],
    );
    assert!(e.len() < 400, "{} characters", e.len());
    // A non-UTF-8 header.
    std::fs::write(dir.join("latin1.csv"), b"temp\xe9rature,b\n1,2\n").unwrap();
    one_error(&mpirun(1, &["stats", "--data", dir.join("latin1.csv").to_str().unwrap()]), &["latin1.csv, line 1", "not UTF-8", "0xe9", "'temp'"]);
    // mnb's negative counts: rank, file and line.
    let nb = dir.join("nb");
    std::fs::create_dir(&nb).unwrap();
    std::fs::write(nb.join("p0.csv"), "w0,w1,label\n1,2,a\n3,4,b\n").unwrap();
    std::fs::write(nb.join("p1.csv"), "w0,w1,label\n# comment\n1,2,a\n\n5,-1,b\n").unwrap();
    for n in [1, 2] {
        one_error(
            &mpirun(n, &["train", "--data", nb.to_str().unwrap(), "--flow", "mnb(label=label)", "--model", m.to_str().unwrap()]),
            &["p1.csv, line 5", "negative value -1"],
        );
    }
    // SFA's single-row shard names the file.
    one_error(
        &mpirun(2, &["train", "--data", "tests/data/sfa_single/part*.csv", "--flow", "sfa(n=2)", "--model", m.to_str().unwrap()]),
        &["single row", "tests/data/sfa_single/part"],
    );
    // kmeans(init=) takes a model; other JSON says what it expects.
    let km = dir.join("km.json");
    mpirun(1, &["train", "--data", "data/example", "--flow", "kmeans(k=3, seed=1)", "--model", km.to_str().unwrap()]).ok();
    mpirun(2, &["train", "--data", "data/example", "--flow", &format!("kmeans(init={}, max_iter=1)", km.display()), "--model", m.to_str().unwrap()]).ok();
    assert_eq!(node(&read_json(&m), 0)["initial_centroids"], node(&read_json(&km), 0)["centroids"]);
    let pca = dir.join("pca.json");
    mpirun(1, &["train", "--data", "data/example", "--flow", "pca(n=2)", "--model", pca.to_str().unwrap()]).ok();
    one_error(
        &mpirun(1, &["train", "--data", "data/example", "--flow", &format!("kmeans(init={})", pca.display()), "--model", m.to_str().unwrap()]),
        &["has no kmeans node"],
    );
    // The model's columns missing from the data: not blamed on --columns.
    std::fs::write(dir.join("xy.csv"), "x,y\n1,2\n").unwrap();
    let e = one_error(
        &mpirun(
            1,
            &["execute", "--model", pca.to_str().unwrap(), "--data", dir.join("xy.csv").to_str().unwrap(), "--out", dir.join("o.csv").to_str().unwrap()],
        ),
        &["model was trained on these columns", "no column named 'temperature_c'"],
    );
    assert!(!e.contains("--columns"), "{e}");
}

#[test]
fn missing_values_as_pandas_reads_them_and_a_bom_without_header() {
    let dir = scratch("na");
    let f = dir.join("na.csv");
    std::fs::write(&f, "a,b\n1,10\nNA,1\n2,N/A\nNULL,3\n3,nan\nNaN,4\n,5\n4,null\n5,None\n6,20\n").unwrap();
    let r = mpirun(2, &["stats", "--json", "--nan", "skip", "--data", f.to_str().unwrap()]);
    r.ok();
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["skipped"], 8);
    assert_eq!(s["moments"]["count"], 2);
    assert_close("mean", &s["moments"]["mean"], &serde_json::json!([3.5, 15.0]), 1e-15);
    assert!(r.stderr.contains("8 rows with NaN/inf/missing values skipped"), "{}", r.stderr);
    let t = mpirun(1, &["stats", "--nan", "skip", "--data", f.to_str().unwrap()]);
    assert!(t.ok().stdout.contains("skipped: 8 rows"), "{}", t.stdout);
    one_error(&mpirun(1, &["stats", "--data", f.to_str().unwrap()]), &["na.csv, line 3", "'NA'", "--nan skip"]);
    // A byte-order mark before a headerless file's first number.
    let bom = dir.join("bom.csv");
    std::fs::write(&bom, b"\xef\xbb\xbf1.5,2\n2.5,4\n").unwrap();
    let r = mpirun(1, &["stats", "--json", "--data", bom.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_eq!(s["columns"], serde_json::json!(["x0", "x1"]));
    assert_close("mean", &s["moments"]["mean"], &serde_json::json!([2.0, 3.0]), 1e-15);
}

#[test]
fn npy_of_every_numeric_dtype_and_targets_by_index() {
    let dir = scratch("dtypes");
    // 4 rows x 2 columns; the reference values are the same numbers as f64.
    let vals: [[f64; 2]; 4] = [[1.0, 0.0], [2.0, 1.0], [100.0, 1.0], [7.0, 0.0]];
    let flat: Vec<f64> = vals.iter().flatten().copied().collect();
    let mean = [27.5, 0.5];
    type Enc = fn(f64) -> Vec<u8>;
    let encs: [(&str, Enc); 12] = [
        ("|i1", |v| (v as i8).to_le_bytes().to_vec()),
        ("<i2", |v| (v as i16).to_le_bytes().to_vec()),
        (">i4", |v| (v as i32).to_be_bytes().to_vec()),
        ("<i8", |v| (v as i64).to_le_bytes().to_vec()),
        ("|u1", |v| (v as u8).to_le_bytes().to_vec()),
        ("<u2", |v| (v as u16).to_le_bytes().to_vec()),
        ("<u4", |v| (v as u32).to_le_bytes().to_vec()),
        (">u8", |v| (v as u64).to_be_bytes().to_vec()),
        ("<f4", |v| (v as f32).to_le_bytes().to_vec()),
        (">f8", |v| v.to_be_bytes().to_vec()),
        // float16: these values are exact in half precision (sign 0, exponent, 10-bit fraction).
        ("<f2", |v| {
            let h: u16 = if v == 0.0 {
                0
            } else {
                let e = v.log2().floor() as i32;
                (((e + 15) as u16) << 10) | ((v / 2f64.powi(e) - 1.0) * 1024.0) as u16
            };
            h.to_le_bytes().to_vec()
        }),
        ("<i8", |v| (-(v as i64)).to_le_bytes().to_vec()),
    ];
    for (k, (descr, enc)) in encs.iter().enumerate() {
        let data: Vec<u8> = flat.iter().flat_map(|v| enc(*v)).collect();
        let p = dir.join(format!("t{k}.npy"));
        npy(&p, descr, "(4, 2)", &data);
        let r = mpirun(2, &["stats", "--json", "--data", p.to_str().unwrap()]);
        let s: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
        let sign = if k == 11 { -1.0 } else { 1.0 };
        assert_close(descr, &s["moments"]["mean"], &serde_json::json!([sign * mean[0], sign * mean[1]]), 1e-15);
    }
    let b = dir.join("b.npy");
    npy(&b, "|b1", "(4,)", &[1, 0, 1, 1]);
    let r = mpirun(1, &["stats", "--json", "--data", b.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_close("bool", &s["moments"]["mean"], &serde_json::json!([0.75]), 1e-15);
    one_error(
        &mpirun(
            1,
            &[
                "stats",
                "--data",
                {
                    npy(&dir.join("c.npy"), "<c16", "(1, 1)", &[0u8; 16]);
                    dir.join("c.npy").to_str().unwrap().to_string()
                }
                .as_str(),
            ],
        ),
        &["dtype '<c16' is not supported"],
    );
    // A target given by its column index is the same model as by its name.
    let by_name = train_model(2, "tests/data/reg/part*.csv", "linreg(target=y0)", &["--columns", "x0-x4"], &dir);
    std::fs::rename(dir.join("m2.json"), dir.join("named.json")).unwrap();
    let by_index = train_model(2, "tests/data/reg/part*.csv", "linreg(target=5)", &["--columns", "0-4"], &dir);
    assert_eq!(node(&by_index, 0)["coefficients"], node(&by_name, 0)["coefficients"]);
}

#[test]
fn files_in_other_formats_say_what_they_look_like() {
    let dir = scratch("formats");
    let m = dir.join("m.json");
    for (name, bytes, what) in [
        ("a.parquet", b"PAR1\x15\x04\x15\x10".to_vec(), "Parquet"),
        ("a.csv.gz", b"\x1f\x8b\x08\x00\x00\x00".to_vec(), "gzip"),
        ("a.npz", b"PK\x03\x04\x14\x00".to_vec(), "ZIP archive"),
        ("a.bin", b"\x01\x02\x00\x00\x05".to_vec(), "binary data"),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let e = one_error(&mpirun(2, &["train", "--data", p.to_str().unwrap(), "--flow", "moments", "--model", m.to_str().unwrap()]), &[name, what]);
        assert!(e.len() < 300, "{e}");
        std::fs::remove_file(&p).unwrap();
    }
    std::fs::write(dir.join("t.npy"), "a,b\n1,2\n").unwrap();
    one_error(&mpirun(1, &["stats", "--data", dir.join("t.npy").to_str().unwrap()]), &["not a .npy file"]);
}

#[test]
fn kmeans_says_when_max_iter_stopped_it() {
    let dir = scratch("maxiter");
    let m = dir.join("m.json");
    let r = mpirun(2, &["train", "--data", "data/example", "--flow", "kmeans(k=4, max_iter=1)", "--model", m.to_str().unwrap()]);
    r.ok();
    assert_eq!(r.stderr.matches("kmeans stopped at max_iter=1 without converging").count(), 1, "{}", r.stderr);
    assert_eq!(node(&read_json(&m), 0)["converged"], false);
    let r = mpirun(2, &["train", "--data", "data/example", "--flow", "kmeans(k=4)", "--model", m.to_str().unwrap()]);
    assert!(!r.ok().stderr.contains("without converging"), "{}", r.stderr);
    assert_eq!(node(&read_json(&m), 0)["converged"], true);
}

/// Progress lines: rank 0 only, estimated over all ranks' bytes, off by default when stderr is
/// not a terminal and with -q; k-means at -v prints one line per iteration.
#[test]
fn progress_lines_and_kmeans_iterations() {
    let dir = scratch("progress");
    let m = dir.join("m.json");
    let data = "tests/data/blobs/part*.csv";
    let total: u64 = (0..4).map(|s| std::fs::metadata(format!("tests/data/blobs/part{s}.csv")).unwrap().len()).sum();
    let now = [("FLOWMPI_PROGRESS_EVERY", "0")];
    let train = ["train", "--data", data, "--flow", "covariance", "--model", m.to_str().unwrap(), "--block-bytes", "20000"];
    let with = |pre: &[&str]| -> Vec<String> {
        let args: Vec<&str> = pre.iter().copied().chain(train).collect();
        let r = mpirun_with(3, &args, &now);
        r.ok();
        r.stderr.lines().filter(|l| l.contains("reading for covariance")).map(String::from).collect()
    };
    let lines = with(&["--progress", "always"]);
    assert!(lines.len() >= 3, "{lines:?}");
    // "X of ~T (P%)": the total is every rank's bytes; the percentages only grow.
    let mut last = -1.0;
    for l in &lines {
        assert!(l.contains(&format!("of ~{:.1} kB", total as f64 / 1e3)), "{l}");
        let pct: f64 = l.split('(').nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
        assert!(pct >= last && pct <= 100.0, "{lines:?}");
        last = pct;
        assert!(l.contains("rows/s") && l.contains("ETA"), "{l}");
    }
    // Not a terminal: nothing by default; -q and never silence it.
    assert!(with(&[]).is_empty());
    assert!(with(&["-q", "--progress", "always"]).is_empty());
    assert!(with(&["--progress", "never"]).is_empty());

    // k-means -v: one line per iteration, as many as the model's n_iter, inertia never rising.
    let r = mpirun(2, &["-v", "train", "--data", data, "--flow", "kmeans(k=5, init=random, n_init=1, seed=1)", "--model", m.to_str().unwrap()]);
    r.ok();
    let inertia: Vec<f64> = r
        .stderr
        .lines()
        .filter(|l| l.contains("kmeans iteration"))
        .map(|l| l.split("inertia ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap())
        .collect();
    let km = node(&read_json(&m), 0).clone();
    assert_eq!(inertia.len() as u64, km["n_iter"].as_u64().unwrap(), "{}", r.stderr);
    assert!(inertia.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-6)), "{inertia:?}");
    assert!(*inertia.last().unwrap() >= km["inertia"].as_f64().unwrap() * (1.0 - 1e-6));
    let r = mpirun(2, &["train", "--data", data, "--flow", "kmeans(k=5)", "--model", m.to_str().unwrap()]);
    assert!(!r.ok().stderr.contains("kmeans iteration"), "{}", r.stderr);
}

/// Every record of a CSV file after its header, as text fields.
fn csv_records(p: &std::path::Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    r.records().map(|rec| rec.unwrap().iter().map(String::from).collect()).collect()
}

/// `execute --keep`: chosen input columns (text IDs, the true target) go into the output first,
/// copied verbatim, next to exactly what execute writes without them; on 1..4 ranks, uneven
/// shards and an empty one.
#[test]
fn execute_keeps_input_columns_next_to_the_predictions() {
    let dir = scratch("keep");
    let sizes = [5usize, 0, 2, 1];
    let mut rows = Vec::new();
    for (s, n) in sizes.iter().enumerate() {
        let mut text = String::from("id,x0,x1,y\n");
        for i in 0..*n {
            let k = rows.len();
            let id = if k % 3 == 1 { format!("\"S,{k:03} \"\"q\"\"\"") } else { format!("S{k:03}") };
            let (x0, x1) = (k as f64 * 0.5, (k * k % 7) as f64);
            let y = format!("{:.2}", 1.0 + 2.0 * x0 - x1 + if i % 2 == 0 { 0.25 } else { -0.25 });
            text.push_str(&format!("{id},{x0},{x1},{y}\n"));
            rows.push((if k % 3 == 1 { format!("S,{k:03} \"q\"") } else { format!("S{k:03}") }, y));
        }
        std::fs::write(dir.join(format!("in{s}.csv")), text).unwrap();
    }
    let data = dir.join("in*.csv");
    let data = data.to_str().unwrap();
    let m = dir.join("m.json");
    mpirun(2, &["train", "--data", data, "--columns", "x0,x1", "--flow", "linreg(target=y)", "--model", m.to_str().unwrap()]).ok();
    let outputs = |n: usize, stem: &str| -> Vec<std::path::PathBuf> { (0..n).map(|r| dir.join(format!("{stem}{r}.csv"))).collect() };
    for n in [1, 2, 3, 4] {
        let plain = dir.join("plain{rank}.csv");
        let kept = dir.join("kept{rank}.csv");
        mpirun(n, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", plain.to_str().unwrap()]).ok();
        mpirun(n, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", kept.to_str().unwrap(), "--keep", "id,y"]).ok();
        let header = csv::Reader::from_path(dir.join("kept0.csv")).unwrap().headers().unwrap().iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(header, ["id", "y", "x0", "x1", "y_pred"]);
        let a: Vec<Vec<String>> = outputs(n, "plain").iter().flat_map(|p| csv_records(p)).collect();
        let b: Vec<Vec<String>> = outputs(n, "kept").iter().flat_map(|p| csv_records(p)).collect();
        assert_eq!(b.len(), rows.len(), "{n} ranks");
        for ((want, plain), got) in rows.iter().zip(&a).zip(&b) {
            assert_eq!((&got[0], &got[1]), (&want.0, &want.1), "{n} ranks");
            assert_eq!(&got[2..], &plain[..], "{n} ranks");
        }
    }
    // .npy output: numeric kept columns become numbers; text IDs are an error at their line.
    let npy = dir.join("k{rank}.npy");
    mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", npy.to_str().unwrap(), "--keep", "3"]).ok();
    for r in 0..2 {
        let _ = std::fs::remove_file(dir.join(format!("k{r}.npy")));
    }
    let e = one_error(
        &mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", npy.to_str().unwrap(), "--keep", "id"]),
        &["in0.csv, line 2", "'S000' is not a number", "write CSV"],
    );
    assert!(e.contains("rank 0"), "{e}");
    assert!(!dir.join("k0.npy").exists() && !dir.join("k1.npy").exists());
    one_error(
        &mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", npy.to_str().unwrap(), "--keep", "nope"]),
        &["--keep", "no column named 'nope'"],
    );
    one_error(
        &mpirun(1, &["execute", "--model", m.to_str().unwrap(), "--data", data, "--out", npy.to_str().unwrap(), "--keep", "x0"]),
        &["output already has a column 'x0'"],
    );
}

#[test]
fn an_npy_header_is_read_as_the_python_dict_it_is() {
    // 'descr' inside another key's string was taken for the dtype ('<i1' here: 8 times the rows).
    let dir = scratch("npy-dict");
    let mut bytes = npy_header("{'note': \"'descr': '<i1', 'shape': (9, 9)\", 'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }");
    for v in [1.0f64, 10.0, 2.0, 20.0, 6.0, 30.0] {
        bytes.extend(v.to_le_bytes());
    }
    let p = dir.join("x.npy");
    std::fs::write(&p, bytes).unwrap();
    let r = mpirun(2, &["stats", "--json", "--data", p.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_close("mean", &s["moments"]["mean"], &serde_json::json!([3.0, 20.0]), 1e-15);
    assert_eq!(s["moments"]["count"], 3);
}
