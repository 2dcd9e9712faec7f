//! MDP nodes under real `mpirun -n 1..4` against MDP 3.6 and numpy
//! (tests/expected/mdp.json, made by scripts/make_mdp_refs.py).

mod common;
use common::*;
use serde_json::Value;

const RANKS: [usize; 4] = [1, 2, 3, 4];

fn refs() -> Value {
    expected("mdp")
}

#[test]
fn sfa_and_sfa2_match_mdp_with_shard_breaks_and_contiguous() {
    let dir = scratch("sfa");
    let r = refs();
    for n in RANKS {
        // Shards of 300, 0, 200 and 100 rows; each shard is a separate piece of the series.
        let m = train_model(n, "tests/data/sfa/part*.csv", "sfa(n=3)", &[], &dir);
        assert_close(&format!("{n} sfa delta"), &node(&m, 0)["delta"], &r["sfa"]["delta"], 1e-8);
        assert_close(&format!("{n} sfa projection"), &node(&m, 0)["projection"], &r["sfa"]["projection"], 1e-7);
        assert_close(&format!("{n} sfa mean"), &node(&m, 0)["mean"], &r["sfa"]["mean"], 1e-12);
        let m = train_model(n, "tests/data/sfa/part*.csv", "sfa(n=3, contiguous=true)", &[], &dir);
        assert_close(&format!("{n} contiguous delta"), &node(&m, 0)["delta"], &r["sfa_contiguous"]["delta"], 1e-8);
        assert_close(&format!("{n} contiguous projection"), &node(&m, 0)["projection"], &r["sfa_contiguous"]["projection"], 1e-7);
        let m = train_model(n, "tests/data/sfa/part*.csv", "sfa2(n=3)", &[], &dir);
        assert_close(&format!("{n} sfa2 delta"), &node(&m, 0)["sfa"]["delta"], &r["sfa2"]["delta"], 1e-8);
        assert_close(&format!("{n} sfa2 projection"), &node(&m, 0)["sfa"]["projection"], &r["sfa2"]["projection"], 1e-6);
    }
}

#[test]
fn a_file_split_among_ranks_is_one_series_for_sfa() {
    // The four shards as one file: split among 1..4 ranks (and with fewer files than ranks), it
    // is still one series, so plain sfa gives MDP's result on the whole series.
    let dir = scratch("sfa-split");
    let mut text = String::new();
    for k in 0..4 {
        let part = std::fs::read_to_string(format!("tests/data/sfa/part{k}.csv")).unwrap();
        let body = part.split_once('\n').unwrap();
        if k == 0 {
            text.push_str(body.0);
            text.push('\n');
        }
        text.push_str(body.1);
    }
    let one = dir.join("series.csv");
    std::fs::write(&one, text).unwrap();
    let r = refs();
    for n in RANKS {
        let m = train_model(n, one.to_str().unwrap(), "sfa(n=3)", &[], &dir);
        assert_close(&format!("{n} delta"), &node(&m, 0)["delta"], &r["sfa_contiguous"]["delta"], 1e-8);
        assert_close(&format!("{n} projection"), &node(&m, 0)["projection"], &r["sfa_contiguous"]["projection"], 1e-7);
    }
}

#[test]
fn quadratic_expansion_follows_mdp_order() {
    let dir = scratch("quad");
    let m = dir.join("q.json");
    mpirun(2, &["train", "--data", "tests/data/sfa/part*.csv", "--flow", "quadratic", "--model", m.to_str().unwrap()]).ok();
    let out = dir.join("q{rank}.csv");
    mpirun(4, &["execute", "--model", m.to_str().unwrap(), "--data", "tests/data/sfa/part{rank}.csv", "--out", out.to_str().unwrap()]).ok();
    let rows = read_out_csv(&dir.join("q0.csv"));
    assert_eq!(rows[0].len(), 14);
    assert_close("quadratic rows", &Value::from(rows[..3].to_vec()), &refs()["quadratic_first_rows"], 1e-14);
}

#[test]
fn pca_svd_and_histograms_match_mdp_and_numpy() {
    let dir = scratch("pcasvd");
    let r = refs();
    for n in RANKS {
        let m = train_model(n, "tests/data/sfa/part*.csv", "pca(n=2) | svd | hist(bins=7)", &["--cache-data"], &dir);
        assert_close("pca eigenvalues", &Value::from(nums(&node(&m, 0)["eigenvalues"])[..2].to_vec()), &r["pca"]["eigenvalues"], 1e-10);
        assert_close("pca components", &node(&m, 0)["components"], &r["pca"]["components"], 1e-9);
        // svd and hist see the PCA output here; check them on the raw data below.
        let m = train_model(n, "tests/data/sfa/part*.csv", "svd | hist(bins=7)", &[], &dir);
        assert_close("singular values", &node(&m, 0)["singular_values"], &r["svd"]["singular_values"], 1e-10);
        assert_close("right singular vectors", &node(&m, 0)["components"], &r["svd"]["components"], 1e-8);
        let m = train_model(n, "tests/data/sfa/part*.csv", "hist(bins=7)", &[], &dir);
        assert_eq!(node(&m, 0)["counts"], r["hist"]["counts"], "{n} ranks");
        assert_close("edges", &node(&m, 0)["edges"], &r["hist"]["edges"], 1e-15);
    }
    let s = mpirun(3, &["stats", "--hist", "--bins", "7", "--json", "--data", "tests/data/sfa/part*.csv"]);
    let v: Value = serde_json::from_str(&s.ok().stdout).unwrap();
    assert_eq!(v["hist"]["counts"], r["hist"]["counts"]);
}

#[test]
fn fda_matches_mdp_in_two_phases() {
    let dir = scratch("fda");
    let r = refs();
    for n in RANKS {
        for cache in [&[][..], &["--cache-data"][..]] {
            let m = train_model(n, "tests/data/fda/part*.csv", "fda(n=2, label=label)", cache, &dir);
            assert_close(&format!("{n} fda eigenvalues"), &node(&m, 0)["eigenvalues"], &r["fda"]["eigenvalues"], 1e-8);
            assert_close(&format!("{n} fda projection"), &node(&m, 0)["projection"], &r["fda"]["projection"], 1e-7);
            assert_close(&format!("{n} fda mean"), &node(&m, 0)["mean"], &r["fda"]["mean"], 1e-12);
        }
    }
}

#[test]
fn mdp_parallel_documentation_flow_gives_the_same_model_on_1_2_and_4_ranks() {
    let dir = scratch("mdpflow");
    let r = refs();
    let mut models = Vec::new();
    for n in [1, 2, 4] {
        let data = if n == 4 { "tests/data/mdpflow/x{rank}.npy" } else { "tests/data/mdpflow/*.npy" };
        let m = train_model(n, data, "pca(n=10) | sfa2(n=10)", &[], &dir);
        assert_close(&format!("{n} pca"), &Value::from(nums(&node(&m, 0)["eigenvalues"])[..10].to_vec()), &r["mdpflow"]["pca_eigenvalues"], 1e-9);
        assert_close(&format!("{n} sfa2 delta"), &node(&m, 1)["sfa"]["delta"], &r["mdpflow"]["sfa2_delta"], 1e-7);
        models.push(m);
    }
    for m in &models[1..] {
        assert_close("same model", &node(m, 1)["sfa"]["projection"], &node(&models[0], 1)["sfa"]["projection"], 1e-8);
    }
}

fn fails(n: usize, data: &str, flow: &str, must: &[&str]) {
    let dir = scratch("mdperr");
    let model = dir.join("model.json");
    one_error(&mpirun(n, &["train", "--data", data, "--flow", flow, "--model", model.to_str().unwrap()]), must);
    assert!(!model.exists());
}

#[test]
fn mdp_nodes_bad_input() {
    fails(2, "tests/data/sfa/part*.csv", "sfa(n=5)", &["n=5 is larger than the input dimension 4"]);
    fails(2, "tests/data/sfa/part*.csv", "sfa2(n=15)", &["n=15 is larger than the input dimension 14"]);
    fails(2, "tests/data/sfa_single/part*.csv", "sfa(n=2)", &["rank 1", "single row"]);
    fails(3, "tests/data/fda_one_class/part0.csv", "fda(n=1, label=label)", &["at least 2 classes"]);
    fails(2, "tests/data/sfa/part*.csv", "svd(k=9)", &["k=9 is larger"]);
    // Rank-deficient input (a column that is a copy of another): a clear error, not garbage.
    let dir = scratch("sfasingular");
    let text: String = std::iter::once("a,b,c\n".to_string())
        .chain((0..100).map(|i| {
            let t = i as f64;
            format!("{},{},{}\n", (t * 0.1).sin(), (t * 0.37).cos(), (t * 0.1).sin())
        }))
        .collect();
    std::fs::write(dir.join("x.csv"), text).unwrap();
    let data = dir.join("x.csv");
    fails(2, data.to_str().unwrap(), "sfa(n=2)", &["singular", "pca"]);
}

#[test]
fn svd_execute_writes_the_rows_of_u() {
    let dir = scratch("svdu");
    let m = dir.join("s.json");
    mpirun(3, &["train", "--data", "tests/data/sfa/part*.csv", "--flow", "svd(k=3)", "--model", m.to_str().unwrap()]).ok();
    let out = dir.join("u{rank}.csv");
    mpirun(4, &["execute", "--model", m.to_str().unwrap(), "--data", "tests/data/sfa/part{rank}.csv", "--out", out.to_str().unwrap()]).ok();
    let mut u = Vec::new();
    for r in 0..4 {
        u.extend(read_out_csv(&dir.join(format!("u{r}.csv"))));
    }
    assert_eq!(u.len(), 600);
    // U has orthonormal columns over all ranks' rows.
    for a in 0..3 {
        for b in 0..3 {
            let dot: f64 = u.iter().map(|row| row[a] * row[b]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-10, "UᵀU[{a}][{b}] = {dot}");
        }
    }
}
