//! Real multi-process runs: `mpirun -n 1..4 flowmpi ...` against numpy references
//! (tests/expected, made by scripts/make_test_data.py).

mod common;
use common::*;
use serde_json::Value;

const RANKS: [usize; 4] = [1, 2, 3, 4];

#[test]
fn example_moments_covariance_pca_on_1_to_4_ranks() {
    let dir = scratch("example");
    let want = expected("example");
    for n in RANKS {
        // A glob: the 4 shards are cut into blocks (3 ranks: 1 + 1 + 2 files).
        let m = train_model(n, "data/example/part*.csv", "moments | covariance | pca(n=3)", &[], &dir);
        assert_eq!(m["training_rows"], 4000);
        assert_eq!(m["input_columns"], want["columns"]);
        let mo = &node(&m, 0)["moments"];
        for key in [
            "minimum",
            "maximum",
            "sum",
            "sum_squares",
            "sum_squares_centered",
            "mean",
            "second_order_raw_moment",
            "variance",
            "standard_deviation",
            "variation",
        ] {
            assert_close(&format!("{n} ranks moments.{key}"), &mo[key], &want["moments"][key], 1e-10);
        }
        assert_eq!(mo["count"], 4000);
        let cov = node(&m, 1);
        for key in ["mean", "covariance", "correlation"] {
            assert_close(&format!("{n} ranks {key}"), &cov[key], &want["covariance"][key], 1e-10);
        }
        let pca = node(&m, 2);
        assert_close("eigenvalues", &pca["eigenvalues"], &want["pca"]["eigenvalues"], 1e-10);
        let comps: Vec<Value> = want["pca"]["components"].as_array().unwrap()[..3].to_vec();
        assert_close("components", &pca["components"], &Value::Array(comps), 1e-9);
        let ratios: Vec<Value> = want["pca"]["explained_variance_ratio"].as_array().unwrap()[..3].to_vec();
        assert_close("explained_variance_ratio", &pca["explained_variance_ratio"], &Value::Array(ratios), 1e-10);
    }
    // The {rank} pattern on 4 ranks reads the same shards.
    let m = train_model(4, "data/example/part{rank}.csv", "covariance", &[], &dir);
    assert_close("pattern covariance", &node(&m, 0)["covariance"], &want["covariance"]["covariance"], 1e-10);
}

#[test]
fn pca_by_variance_fraction_and_by_correlation() {
    let dir = scratch("pcavar");
    let want = expected("example");
    for n in [1, 3] {
        let m = train_model(n, "data/example", "pca(var=0.95)", &[], &dir);
        let k = node(&m, 0)["components"].as_array().unwrap().len();
        assert_eq!(k as u64, want["pca"]["k_for_var_0.95"].as_u64().unwrap());
        let m = train_model(n, "data/example", "pca(method=corr)", &[], &dir);
        let p = node(&m, 0);
        assert_close("corr eigenvalues", &p["eigenvalues"], &want["pca_corr"]["eigenvalues"], 1e-10);
        assert_close("corr components", &p["components"], &want["pca_corr"]["components"], 1e-9);
        assert_close("corr scale", &p["scale"], &want["pca_corr"]["scale"], 1e-10);
    }
}

#[test]
fn single_file_split_by_byte_ranges() {
    let dir = scratch("single");
    let want = expected("example");
    for n in RANKS {
        let m = train_model(n, "tests/data/single/all.csv", "covariance", &["--block-bytes", "4096"], &dir);
        assert_eq!(m["training_rows"], 4000);
        assert_close(&format!("{n} ranks split covariance"), &node(&m, 0)["covariance"], &want["covariance"]["covariance"], 1e-10);
    }
}

#[test]
fn nasty_data_csv_and_npy_with_empty_and_tiny_shards() {
    // Shards of 700, 0, 300 and 2 rows (2 < 5 columns); mean 1e8, std 1e-2..10.
    let dir = scratch("nasty");
    for data in ["tests/data/nasty/*.csv", "tests/data/nasty_npy/*.npy"] {
        for n in RANKS {
            let m = train_model(n, data, "moments | covariance", &["--block-bytes", "2048"], &dir);
            assert_nasty_model(&format!("{data} {n} ranks"), &m);
        }
    }
}

#[test]
fn flow_whitening_then_execute_writes_rows_in_order() {
    let dir = scratch("execute");
    let want = expected("example");
    let m = dir.join("w.json");
    mpirun(3, &["train", "--data", "data/example", "--flow", "pca(n=3) | whitening", "--model", m.to_str().unwrap()]).ok();
    let pm = dir.join("p.json");
    mpirun(2, &["train", "--data", "data/example", "--flow", "pca(n=3)", "--model", pm.to_str().unwrap()]).ok();
    for (model, key, ext) in
        [(&pm, "pca3_first_rows_per_shard", "csv"), (&m, "whitening3_first_rows_per_shard", "csv"), (&m, "whitening3_first_rows_per_shard", "npy")]
    {
        let out = dir.join(format!("out-{key}-{{rank}}.{ext}"));
        let r = mpirun(4, &["execute", "--model", model.to_str().unwrap(), "--data", "data/example/part{rank}.csv", "--out", out.to_str().unwrap()]);
        r.ok();
        let sizes = nums(&want["shard_sizes"]);
        for s in 0..4 {
            let p = dir.join(format!("out-{key}-{s}.{ext}"));
            let rows: Vec<Vec<f64>> = if ext == "csv" { read_out_csv(&p) } else { read_npy(&p) };
            assert_eq!(rows.len() as f64, sizes[s], "rank {s} row count");
            let first = Value::from(rows[..3].to_vec());
            assert_close(&format!("{key} shard {s}"), &first, &want[key][s.to_string()], 1e-9);
        }
    }
    // Whitened outputs over all shards: zero mean, unit variance.
    let mut all = Vec::new();
    for s in 0..4 {
        all.extend(read_out_csv(&dir.join(format!("out-whitening3_first_rows_per_shard-{s}.csv"))));
    }
    let n = all.len() as f64;
    for j in 0..3 {
        let mean = all.iter().map(|r| r[j]).sum::<f64>() / n;
        let var = all.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-9, "column {j}: mean {mean}, var {var}");
    }
}

fn read_npy(p: &std::path::Path) -> Vec<Vec<f64>> {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]).into_owned();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap().to_string();
    let dims: Vec<usize> = shape.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let vals: Vec<f64> = b[10 + hlen..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals.len(), dims[0] * dims[1]);
    vals.chunks(dims[1]).map(|r| r.to_vec()).collect()
}

#[test]
fn columns_selection_by_name_and_range() {
    let dir = scratch("columns");
    let want = expected("example");
    let full = nums(&want["covariance"]["covariance"]);
    let pick = [0usize, 4, 5, 6]; // temperature_c, pm25-no2
    for n in [1, 2] {
        let m = train_model(n, "data/example", "covariance", &["--columns", "temperature_c,pm25-no2"], &dir);
        let got = nums(&node(&m, 0)["covariance"]);
        for (a, &i) in pick.iter().enumerate() {
            for (b, &j) in pick.iter().enumerate() {
                assert!((got[a * 4 + b] - full[i * 8 + j]).abs() <= 1e-10 * full[i * 8 + i].max(full[j * 8 + j]));
            }
        }
        let m2 = train_model(n, "data/example", "covariance", &["--columns", "0,4-6"], &dir);
        assert_eq!(node(&m2, 0)["covariance"], node(&m, 0)["covariance"]);
    }
}

#[test]
fn stats_reads_quirky_csv_and_float32_npy() {
    let want = expected("quirky");
    let r = single(&["stats", "--json", "--data", "tests/data/quirky/q.csv", "--delimiter", ";"], &[]);
    r.ok();
    let got: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(got["columns"], serde_json::json!(["a", "b col", "c"]));
    for key in ["minimum", "maximum", "mean", "variance", "sum_squares"] {
        assert_close(key, &got["moments"][key], &want["quirky"][key], 1e-12);
    }
    for n in [1, 2] {
        let r = mpirun(n, &["stats", "--json", "--data", "tests/data/f32/x.npy"]);
        r.ok();
        let got: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_close("f32 mean", &got["moments"]["mean"], &want["f32"]["mean"], 1e-12);
        assert_close("f32 variance", &got["moments"]["variance"], &want["f32"]["variance"], 1e-12);
    }
    let table = mpirun(2, &["stats", "--data", "data/example/part{rank}.csv", "--allow-unread"]);
    table.ok();
    assert!(table.stdout.contains("rows: 2300") && table.stdout.contains("standard_deviation"), "{}", table.stdout);
}

/// A wide file (a 1.5 MB header, longer than the 64 KiB the header is read by): the table,
/// printed line by line, agrees with the serial moments of the concatenated rows, every line
/// as wide as the others, on 1..3 ranks (a rank may get no rows).
#[test]
fn stats_of_a_wide_file_prints_every_column() {
    let dir = scratch("widestats");
    let (cols, rows) = (150_000usize, 2usize);
    let value = |i: usize, j: usize| ((i * 7 + j * 13) % 101) as f64 - 50.0 + if j.is_multiple_of(1000) { 1e-7 } else { 0.0 };
    let mut text = (0..cols).map(|j| format!("column_{j}")).collect::<Vec<_>>().join(",");
    for i in 0..rows {
        text.push('\n');
        text.push_str(&(0..cols).map(|j| value(i, j).to_string()).collect::<Vec<_>>().join(","));
    }
    text.push('\n');
    let path = dir.join("wide.csv");
    std::fs::write(&path, text).unwrap();
    for n in 1..=3 {
        let r = mpirun(n, &["stats", "--data", path.to_str().unwrap()]);
        r.ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines[0], format!("rows: {rows}"));
        assert_eq!(lines.len(), 2 + cols, "{n} ranks");
        let width = lines[1].chars().count();
        for (j, line) in lines[2..].iter().enumerate() {
            assert_eq!(line.chars().count(), width, "{n} ranks: line of column {j} is not as wide as the head");
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f[0], format!("column_{j}"));
            let x: Vec<f64> = (0..rows).map(|i| value(i, j)).collect();
            let mean = x.iter().sum::<f64>() / rows as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (rows - 1) as f64;
            let want = [x.iter().cloned().fold(f64::INFINITY, f64::min), x.iter().cloned().fold(f64::NEG_INFINITY, f64::max), x.iter().sum(), mean, var];
            let got: Vec<f64> = [1, 2, 3, 6, 8].iter().map(|k| f[*k].parse().unwrap()).collect();
            for (g, w) in got.iter().zip(want) {
                // Six digits after the point: relative 5e-7, against the column's scale (50).
                assert!((g - w).abs() <= 5e-7 * w.abs().max(50.0), "{n} ranks, column {j}: {g} vs {w} in {line}");
            }
        }
    }
}

#[test]
fn flow_file_inspect_and_one_rank_without_mpirun() {
    let dir = scratch("inspect");
    let flow = dir.join("flow.toml");
    std::fs::write(&flow, "[[node]]\nkind = \"moments\"\n[[node]]\nkind = \"pca\"\nvar = 0.9\n").unwrap();
    let m = dir.join("m.json");
    single(&["train", "--data", "data/example", "--flow-file", flow.to_str().unwrap(), "--model", m.to_str().unwrap()], &[]).ok();
    let r = single(&["inspect", m.to_str().unwrap()], &[]);
    r.ok();
    assert!(r.stdout.contains("moments | pca(var=0.9)") && r.stdout.contains("4000 rows") && r.stdout.contains("explained variance"), "{}", r.stdout);
    let j = single(&["inspect", "--json", m.to_str().unwrap()], &[]);
    let v: Value = serde_json::from_str(&j.ok().stdout).unwrap();
    assert_eq!(v["flowmpi_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["training_rows"], 4000);
}

#[test]
fn one_node_takes_shared_memory_unless_a_pml_is_chosen() {
    let dir = scratch("pml");
    let m = dir.join("m.json");
    let args = ["train", "-v", "--data", "data/example", "--flow", "moments", "--model", m.to_str().unwrap()];
    let r = mpirun(2, &args);
    r.ok();
    assert!(r.stderr.contains("pml ob1"), "{}", r.stderr);
    // A pml chosen by the user is left alone (here the same one, so that the run works).
    let r = single(&args, &[("OMPI_MCA_pml", "ob1")]);
    r.ok();
    assert!(!r.stderr.contains("pml ob1"), "{}", r.stderr);
}

#[test]
fn launcher_and_mpi_world_disagreeing_is_an_error_unless_allowed() {
    let dir = scratch("launch");
    let m = dir.join("m.json");
    let args = ["train", "--data", "data/example", "--flow", "moments", "--model", m.to_str().unwrap()];
    for var in ["SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
        let r = single(&args, &[(var, "4")]);
        one_error(&r, &[&format!("{var}=4 but the MPI world has 1 rank"), "--allow-launch-mismatch"]);
        assert!(!m.exists(), "{var}: no model may be written");
    }
    let mut allowed = args.to_vec();
    allowed.push("--allow-launch-mismatch");
    let r = single(&allowed, &[("SLURM_NTASKS", "4")]);
    r.ok();
    assert!(r.stderr.contains("warning: SLURM_NTASKS=4 but the MPI world has 1 rank"), "{}", r.stderr);
    // In a batch script outside srun, SLURM_NTASKS is the allocation's size: not an error.
    single(&args, &[("SLURM_NTASKS", "4"), ("SLURM_JOB_ID", "7")]).ok();
}

#[test]
fn execute_inverse_reconstructs_the_input() {
    let dir = scratch("inverse");
    let m = dir.join("m.json");
    mpirun(2, &["train", "--data", "data/example", "--flow", "moments | whitening", "--model", m.to_str().unwrap()]).ok();
    let fwd = dir.join("w{rank}.npy");
    mpirun(4, &["execute", "--model", m.to_str().unwrap(), "--data", "data/example/part{rank}.csv", "--out", fwd.to_str().unwrap()]).ok();
    let back = dir.join("x{rank}.csv");
    mpirun(4, &["execute", "--inverse", "--model", m.to_str().unwrap(), "--data", fwd.to_str().unwrap(), "--out", back.to_str().unwrap()]).ok();
    for s in 0..4 {
        let orig = read_out_csv(std::path::Path::new(&format!("data/example/part{s}.csv")));
        let got = read_out_csv(&dir.join(format!("x{s}.csv")));
        assert_eq!(orig.len(), got.len());
        for (a, b) in orig.iter().flatten().zip(got.iter().flatten()) {
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "shard {s}: {a} vs {b}");
        }
    }
}

#[test]
fn a_layer_trains_each_node_as_if_alone_on_1_to_4_ranks() {
    let dir = scratch("layer");
    // tests/data/nasty: shards of 700, 0, 300 and 2 rows, mean ~1e8.
    for n in [1usize, 2, 3, 4] {
        let layer = dir.join(format!("layer{n}.json"));
        let r = mpirun(
            n,
            &["train", "--data", "tests/data/nasty/part*.csv", "--flow", "layer(pca(n=2) @ 0-2, moments @ [3; 4])", "--model", layer.to_str().unwrap(), "-v"],
        );
        assert_same_hash_on_all_ranks(r.ok(), n);
        let alone = dir.join(format!("alone{n}.json"));
        mpirun(n, &["train", "--data", "tests/data/nasty/part*.csv", "--columns", "0-2", "--flow", "pca(n=2)", "--model", alone.to_str().unwrap()]).ok();
        let moments = dir.join(format!("moments{n}.json"));
        mpirun(n, &["train", "--data", "tests/data/nasty/part*.csv", "--columns", "3,4", "--flow", "moments", "--model", moments.to_str().unwrap()]).ok();
        let l = read_json(&layer);
        assert_eq!(node(&l, 0)["nodes"][0], *node(&read_json(&alone), 0), "{n} ranks: the layer's pca");
        assert_eq!(node(&l, 0)["nodes"][1], *node(&read_json(&moments), 0), "{n} ranks: the layer's moments");
        let out = dir.join(format!("out{n}/p{{rank}}.csv"));
        mpirun(n, &["execute", "--model", layer.to_str().unwrap(), "--data", "tests/data/nasty/part*.csv", "--out", out.to_str().unwrap()]).ok();
    }
}

#[test]
fn collectives_in_tiny_pieces_give_the_same_models() {
    // MPI counts are 32-bit, so every collective goes in pieces (a 50,000-column covariance is
    // 2.5e9 doubles). FLOWMPI_COMM_PIECE forces pieces of a few bytes: the allreduces, the
    // allgathers of serialised partials and the broadcasts must give the same bits. They can
    // because our sums add the ranks' values in an order of our own (a tree over the ranks),
    // not in the order MPI_Reduce picks by message size.
    let dir = scratch("pieces");
    for flow in [
        "moments | covariance | pca(n=3) | whitening",
        "svd(k=3) | kmeans(k=4, seed=2)",
        "hist(bins=7) | sfa(n=2, contiguous=true)",
        "linreg(target=o3, method=qr)",
    ] {
        for n in [3, 4] {
            let models: Vec<Vec<u8>> = [None, Some("24"), Some("8")]
                .into_iter()
                .map(|piece| {
                    let m = dir.join("m.json");
                    let args = ["-v", "train", "--data", "data/example", "--flow", flow, "--model", m.to_str().unwrap()];
                    let env: Vec<(&str, &str)> = piece.map(|p| ("FLOWMPI_COMM_PIECE", p)).into_iter().collect();
                    let r = mpirun_with(n, &args, &env);
                    r.ok();
                    assert_same_hash_on_all_ranks(&r, n);
                    std::fs::read(&m).unwrap()
                })
                .collect();
            assert!(models.iter().all(|m| *m == models[0]), "{flow} on {n} ranks: the model changes with the piece size");
        }
    }
}

#[test]
fn an_expansion_before_a_node_costs_no_pass_of_its_own() {
    // quadratic learns nothing from rows: `quadratic | covariance` read the data twice.
    let dir = scratch("expansion-pass");
    let m = dir.join("m.json");
    for n in [1, 3] {
        let r = mpirun(n, &["-v", "train", "--data", "data/example", "--flow", "quadratic | covariance", "--model", m.to_str().unwrap()]);
        let passes: Vec<&str> = r.ok().stderr.lines().filter(|l| l.starts_with("flowmpi: trained ")).collect();
        assert_eq!(passes.len(), 1, "{n} ranks: {passes:?}");
        assert!(passes[0].starts_with("flowmpi: trained covariance: 4000 rows"), "{passes:?}");
        assert_eq!(read_json(&m)["training_rows"], 4000);
    }
    // The same covariance as of the expanded rows written out and read back (ryu's shortest
    // round-trip: the same numbers).
    let expanded = dir.join("q{rank}.csv");
    mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", "data/example", "--out", expanded.to_str().unwrap()]).ok();
    let q = dir.join("q.json");
    let spec = format!("{}/q*.csv", dir.display());
    mpirun(2, &["train", "--data", &spec, "--flow", "covariance", "--model", q.to_str().unwrap()]).ok();
    let (got, want) = (read_json(&m), read_json(&q));
    assert_close("covariance", &node(&got, 1)["covariance"], &node(&want, 0)["covariance"], 1e-12);
    // A flow that is only an expansion still reads (and counts) its rows once.
    let r = mpirun(2, &["-v", "train", "--data", "data/example", "--flow", "quadratic", "--model", m.to_str().unwrap()]);
    assert_eq!(r.ok().stderr.lines().filter(|l| l.starts_with("flowmpi: trained ")).count(), 1);
    assert_eq!(read_json(&m)["training_rows"], 4000);
}

#[test]
fn text_columns_are_left_out_with_exclude() {
    // An ID and a timestamp column stopped stats and train until --columns listed every numeric
    // column; --exclude names the text ones instead.
    let dir = scratch("exclude");
    let mut parts = [String::from("id,x,when,y\n"), String::from("id,x,when,y\n")];
    let mut rows = Vec::new();
    for i in 0..40 {
        let (x, y) = (i as f64 * 0.5, (i as f64 * 0.3).sin() * 2.0);
        parts[i % 2].push_str(&format!("s{i},{x},2026-01-{:02}T10:00,{y}\n", i % 28 + 1));
        rows.push([x, y]);
    }
    for (k, p) in parts.iter().enumerate() {
        std::fs::write(dir.join(format!("p{k}.csv")), p).unwrap();
    }
    let spec = format!("{}/p*.csv", dir.display());
    let r = mpirun(2, &["stats", "--data", &spec]);
    one_error(&r, &["column 'id'", "--exclude leaves a text column out"]);
    let r = mpirun(2, &["stats", "--json", "--data", &spec, "--exclude", "id,when"]);
    let s: Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_eq!(s["columns"], serde_json::json!(["x", "y"]));
    let mean = [rows.iter().map(|r| r[0]).sum::<f64>() / 40.0, rows.iter().map(|r| r[1]).sum::<f64>() / 40.0];
    assert_close("mean", &s["moments"]["mean"], &serde_json::json!(mean), 1e-14);
    // By index and range too; a model trained so executes with the IDs kept.
    let m = dir.join("m.json");
    for n in [1, 3] {
        mpirun(n, &["train", "--data", &spec, "--exclude", "0,2-2", "--flow", "pca(n=1)", "--model", m.to_str().unwrap()]).ok();
        assert_eq!(read_json(&m)["input_columns"], serde_json::json!(["x", "y"]));
    }
    let out = dir.join("o{rank}.csv");
    mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", &spec, "--keep", "id", "--out", out.to_str().unwrap()]).ok();
    let text = std::fs::read_to_string(dir.join("o0.csv")).unwrap();
    assert!(text.starts_with("id,pc0\ns0,"), "{text}");
    let r = mpirun(2, &["stats", "--data", &spec, "--exclude", "nope"]);
    one_error(&r, &["--exclude: no column named 'nope'"]);
}
