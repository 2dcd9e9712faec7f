//! Model files of format v1 (written by the build before the built-in nodes became Params →
//! Partial → Model; see tests/data/v1/README.md) are read by today's flowmpi: `execute` gives
//! that build's output bit for bit, `inspect` reads them, and `--update` adds new shards to
//! their kept partials as a training on all shards would.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Every number of every node (training statistics and arrays), in a fixed order.
fn node_numbers(model: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Number(n) => out.push(n.as_f64().unwrap()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.iter().filter(|(k, _)| k.as_str() != "partials").for_each(|(_, x)| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&model["nodes"], &mut out);
    out
}

#[test]
fn v1_models_execute_bit_for_bit_as_the_build_that_wrote_them() {
    let dir = scratch("v1exec");
    for (model, data, flag) in [
        ("unsup", "data/example/part2.csv", None),
        ("white", "data/example/part2.csv", None),
        ("ridge", "tests/data/reg/part2.csv", None),
        ("gnb", "tests/data/gnb/part2.csv", Some("--proba")),
        ("mnb", "tests/data/nb/part2.csv", Some("--proba")),
        ("linreg", "tests/data/reg/part2.csv", None),
        ("linreg_qr", "tests/data/reg/part2.csv", None),
        ("sfa", "tests/data/sfa/part2.csv", None),
        ("fda", "tests/data/fda/part2.csv", None),
        ("kmeans", "tests/data/km/part2.csv", None),
        ("layer", "data/example/part2.csv", None),
    ] {
        let want = format!("{model}_part2.npy");
        let out = dir.join(&want);
        let m = format!("tests/data/v1/{model}.json");
        let mut args = vec!["execute", "--model", &m, "--data", data, "--out", out.to_str().unwrap()];
        args.extend(flag);
        single(&args, &[]).ok();
        let (got, reference) = (std::fs::read(&out).unwrap(), std::fs::read(Path::new("tests/data/v1").join(want)).unwrap());
        assert!(got == reference, "{model}: execute differs from the v1 build's output");
        let r = single(&["inspect", &m], &[]);
        r.ok();
        assert!(r.stdout.contains("format v1"), "{}", r.stdout);
    }
}

#[test]
fn v1_models_with_kept_partials_take_new_shards() {
    let dir = scratch("v1update");
    for (model, new, all) in
        [("white", "data/example/part[23].csv", "data/example/part*.csv"), ("ridge", "tests/data/reg/part[23].csv", "tests/data/reg/part*.csv")]
    {
        let old = format!("tests/data/v1/{model}.json");
        for n in [1, 3] {
            let updated = dir.join(format!("{model}{n}.json"));
            let r = mpirun(n, &["-v", "train", "--data", new, "--update", &old, "--model", updated.to_str().unwrap()]);
            r.ok();
            assert_same_hash_on_all_ranks(&r, n);
            let flow = read_json(Path::new(&old))["flow"].as_str().unwrap().to_string();
            let whole = dir.join(format!("{model}_all{n}.json"));
            mpirun(n, &["train", "--data", all, "--flow", &flow, "--model", whole.to_str().unwrap()]).ok();
            let (u, w) = (read_json(&updated), read_json(&whole));
            assert_eq!(u["training_rows"], w["training_rows"]);
            assert_eq!(u["format_version"], 2);
            let (a, b) = (node_numbers(&u), node_numbers(&w));
            assert_eq!(a.len(), b.len(), "{model}");
            let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert!((p - q).abs() <= 1e-10 * scale || (p.is_nan() && q.is_nan()), "{model} on {n} ranks, number {i}: {p} vs {q}");
            }
        }
    }
}
