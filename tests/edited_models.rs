//! Model files edited by hand or damaged: every array a command reads is checked when the model
//! is loaded, so `inspect`, `execute` and `score` refuse it with one clear message instead of
//! indexing out of bounds (exit 101) or writing NaN columns.

mod common;
use common::*;
use serde_json::Value;

/// Every (node, key) of a model holding an array of numbers (or of rows of numbers).
fn arrays(model: &Value) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, node) in model["nodes"].as_array().unwrap().iter().enumerate() {
        for (k, v) in node.as_object().unwrap() {
            if v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|x| x.is_number() || x.is_array())) {
                out.push((i, k.clone()));
            }
        }
    }
    out
}

#[test]
fn a_shortened_array_is_refused_by_every_command_that_reads_it() {
    let dir = scratch("edited");
    let cases = [
        ("data/example", "moments | covariance | pca(n=3) | whitening"),
        ("data/example", "pca(n=2, method=corr) | svd(k=2)"),
        ("data/example", "hist(bins=5) | quadratic | covariance"),
        ("tests/data/reg", "linreg(target=[y0,y1])"),
        ("tests/data/reg", "ridge(target=y0, alpha=[0.1,1])"),
        ("tests/data/nb", "mnb(label=label)"),
        ("tests/data/gnb", "gnb(label=label)"),
        ("tests/data/fda", "fda(label=label, n=2)"),
        ("tests/data/km", "kmeans(k=3, seed=1)"),
        ("tests/data/sfa", "sfa(n=2) | sfa2(n=2)"),
    ];
    let mut checked = 0;
    for (c, (data, flow)) in cases.iter().enumerate() {
        let good = dir.join(format!("good{c}.json"));
        single(&["train", "--data", data, "--flow", flow, "--model", good.to_str().unwrap()], &[]).ok();
        let model = read_json(&good);
        for (i, key) in arrays(&model) {
            let mut m = model.clone();
            let a = m["nodes"][i][key.as_str()].as_array_mut().unwrap();
            // One entry fewer (a row fewer for a matrix).
            a.pop();
            let edited = dir.join("edited.json");
            std::fs::write(&edited, serde_json::to_string(&m).unwrap()).unwrap();
            let e = edited.to_str().unwrap();
            let out = dir.join("o.csv");
            for args in [
                vec!["inspect", e],
                vec!["inspect", "--full", e],
                vec!["execute", "--model", e, "--data", data, "--out", out.to_str().unwrap()],
                vec!["score", "--model", e, "--data", data],
            ] {
                let r = single(&args, &[]);
                let what = format!("{flow}: node {i}.{key} one shorter, {args:?}");
                assert!(!r.stderr.contains("panicked") && r.code != 101 && r.code != 134, "{what}\n{}", r.stderr);
                if r.code == 0 {
                    // Accepted only where the array is not read at that length by anything:
                    // then the command must not have read garbage either (score's "not a
                    // scored flow" is fine).
                    assert!(args[0] != "execute" || !std::fs::read_to_string(&out).unwrap_or_default().contains("NaN"), "{what}");
                } else {
                    assert!(r.stderr.lines().filter(|l| l.starts_with("flowmpi: error:")).count() == 1, "{what}\n{}", r.stderr);
                }
                let _ = std::fs::remove_file(&out);
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}
