//! `train --cache DIR` under real mpirun: 32 shards; a warm run reads none of them and gives
//! the cold run's bits; a changed shard is the only one read again; a damaged entry is ignored;
//! `--cache-verify` catches a change that keeps size and modification time; another rank count
//! uses the same entries; results equal a run without the cache to round-off.

mod common;
use common::*;
use std::path::Path;

const FLOW: &str = "moments | covariance | pca(n=3)";

fn write_shard(dir: &Path, s: usize, seed: f64) {
    let mut text = String::from("a,b,c,d\n");
    for i in 0..(20 + (s * 7) % 31) {
        let t = (s * 100 + i) as f64 + seed;
        text.push_str(&format!("{},{},{},{}\n", 1e6 + (t * 0.37).sin(), (t * 1.3).cos() * 2.0 + (t * 0.37).sin(), (t * 0.05).cos(), t * 0.001));
    }
    std::fs::write(dir.join(format!("part{s:02}.csv")), text).unwrap();
}

fn train(n: usize, data: &Path, model: &Path, extra: &[&str]) -> String {
    let spec = format!("{}/part*.csv", data.display());
    let mut args = vec!["train", "--data", &spec, "--flow", FLOW, "--model", model.to_str().unwrap()];
    args.extend_from_slice(extra);
    mpirun(n, &args).ok().stderr.clone()
}

/// Every number of every node, in order.
fn numbers(p: &Path) -> Vec<f64> {
    fn walk(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&read_json(p)["nodes"], &mut out);
    out
}

fn assert_round_off(a: &Path, b: &Path) {
    let (x, y) = (numbers(a), numbers(b));
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        assert!((p - q).abs() <= 1e-10 * q.abs().max(1.0), "{p} vs {q}");
    }
}

#[test]
fn a_warm_cache_reads_only_changed_shards_and_gives_the_same_model() {
    let dir = scratch("cache");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    (0..32).for_each(|s| write_shard(&data, s, 0.0));
    let cache = dir.join("cache");
    let c = cache.to_str().unwrap();
    let m = |name: &str| dir.join(name);

    let log = train(3, &data, &m("cold.json"), &["--cache", c]);
    assert!(log.contains("0 of 32 shards from the cache"), "{log}");
    let log = train(3, &data, &m("warm.json"), &["--cache", c]);
    assert!(log.contains("32 of 32 shards from the cache"), "{log}");
    assert_eq!(std::fs::read(m("cold.json")).unwrap(), std::fs::read(m("warm.json")).unwrap(), "warm and cold runs differ");
    train(3, &data, &m("plain.json"), &[]);
    assert_round_off(&m("warm.json"), &m("plain.json"));
    // Another rank count uses the same entries.
    let log = train(4, &data, &m("four.json"), &["--cache", c]);
    assert!(log.contains("32 of 32 shards from the cache"), "{log}");
    assert_round_off(&m("four.json"), &m("plain.json"));

    // One shard changes: only it is read again, and the model is a cold run's on the new data.
    write_shard(&data, 17, 0.5);
    let log = train(3, &data, &m("changed.json"), &["--cache", c]);
    assert!(log.contains("31 of 32 shards from the cache"), "{log}");
    let log = train(3, &data, &m("fresh.json"), &["--cache", dir.join("cache2").to_str().unwrap()]);
    assert!(log.contains("0 of 32 shards from the cache"), "{log}");
    assert_eq!(std::fs::read(m("changed.json")).unwrap(), std::fs::read(m("fresh.json")).unwrap());
    assert_ne!(numbers(&m("changed.json")), numbers(&m("cold.json")), "the change must show");

    // A damaged entry is ignored (and rewritten), never trusted: the newest (in use) one.
    let entry = std::fs::read_dir(&cache).unwrap().flatten().max_by_key(|e| e.metadata().unwrap().modified().unwrap()).unwrap().path();
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
    let log = train(3, &data, &m("repaired.json"), &["--cache", c]);
    assert!(log.contains("31 of 32 shards from the cache (1 damaged entries ignored and rewritten)"), "{log}");
    assert_eq!(std::fs::read(m("repaired.json")).unwrap(), std::fs::read(m("fresh.json")).unwrap());

    // A multi-pass node is read without the cache, with a note.
    let spec = format!("{}/part*.csv", data.display());
    let r = mpirun(2, &["train", "--data", &spec, "--flow", "hist(bins=4)", "--model", m("h.json").to_str().unwrap(), "--cache", c]);
    assert!(r.ok().stderr.contains("keeps no per-shard statistics"), "{}", r.stderr);
}

#[test]
fn cache_verify_catches_a_change_that_keeps_size_and_time() {
    let dir = scratch("cache-verify");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    (0..32).for_each(|s| write_shard(&data, s, 0.0));
    let cache = dir.join("cache");
    let c = cache.to_str().unwrap();
    train(2, &data, &dir.join("a.json"), &["--cache", c, "--cache-verify"]);
    // Same length, same modification time, other numbers.
    let p = data.join("part05.csv");
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&p).unwrap().replacen("a,b,c,d\n1", "a,b,c,d\n2", 1);
    std::fs::write(&p, text).unwrap();
    std::fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
    let log = train(2, &data, &dir.join("b.json"), &["--cache", c, "--cache-verify"]);
    assert!(log.contains("31 of 32 shards from the cache"), "{log}");
    train(2, &data, &dir.join("plain.json"), &[]);
    assert_round_off(&dir.join("b.json"), &dir.join("plain.json"));
}
