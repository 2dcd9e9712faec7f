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

/// Round-off apart, the same model: each array to its conditioning (tests/common).
fn assert_round_off(a: &Path, b: &Path) {
    assert_models_agree(&format!("{} vs {}", a.display(), b.display()), &read_json(a), &read_json(b), 1e-10);
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
    assert_ne!(read_json(&m("changed.json"))["nodes"], read_json(&m("cold.json"))["nodes"], "the change must show");

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

#[test]
fn update_adds_new_shards_to_a_model_that_kept_its_partials() {
    let dir = scratch("update");
    let (old, new, more, all) = (dir.join("old"), dir.join("new"), dir.join("more"), dir.join("all"));
    for (d, range) in [(&old, 0..12), (&new, 12..20), (&more, 20..32), (&all, 0..32)] {
        std::fs::create_dir_all(d).unwrap();
        range.for_each(|s| write_shard(d, s, 0.0));
    }
    let m = |name: &str| dir.join(name);
    train(2, &old, &m("old.json"), &["--keep-partials"]);
    // Another rank count, twice in a row (each update keeps the partials again).
    let log = train(3, &new, &m("mid.json"), &["--update", m("old.json").to_str().unwrap()]);
    assert!(log.contains("--update: "), "{log}");
    let spec = format!("{}/part*.csv", more.display());
    let r = mpirun(4, &["train", "--data", &spec, "--update", m("mid.json").to_str().unwrap(), "--model", m("mid.json").to_str().unwrap()]);
    r.ok();
    train(2, &all, &m("all.json"), &[]);
    assert_round_off(&m("mid.json"), &m("all.json"));
    assert_eq!(read_json(&m("mid.json"))["training_rows"], read_json(&m("all.json"))["training_rows"]);

    // What cannot be continued says why.
    let (all_json, old_json, x_json) = (m("all.json"), m("old.json"), m("x.json"));
    let (all_json, old_json, x) = (all_json.to_str().unwrap(), old_json.to_str().unwrap(), x_json.to_str().unwrap());
    let cases: &[(&[&str], &str)] = &[
        (&["--update", all_json], "trained without --keep-partials"),
        (&["--update", old_json, "--flow", "pca(n=2)"], "leave out --flow"),
        (&["--flow", "hist(bins=3)", "--keep-partials"], "hist(bins=3) keeps no partial statistics"),
    ];
    let spec = format!("{}/part*.csv", new.display());
    for (extra, msg) in cases {
        let mut args = vec!["train", "--data", &spec, "--model", x];
        args.extend_from_slice(extra);
        let r = mpirun(2, &args);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains(msg), "{extra:?}: {}", r.stderr);
        assert!(!x_json.exists());
    }
    // A flow that could never be updated is refused when it is trained with --keep-partials,
    // not only at the --update (it trained, and the refusal came later).
    let old_spec = format!("{}/part*.csv", old.display());
    for n in [1, 3] {
        let r = mpirun(n, &["train", "--data", &old_spec, "--flow", "pca(n=2) | whitening", "--keep-partials", "--model", x]);
        one_error(&r, &["--keep-partials: pca(n=2) feeds later nodes", "pca(n=2) | whitening cannot be updated"]);
        assert!(!x_json.exists());
    }
}

#[test]
fn update_keeps_every_parameter_even_one_an_old_flow_line_left_out() {
    // Models written before specs named every parameter have `gnb(label=label)` as their flow
    // line for a gnb trained with var_smoothing and priors; --update trains on from the
    // nodes' recorded parameters, so the result still equals training on all shards at once.
    let dir = scratch("update-params");
    let m = |name: &str| dir.join(name);
    for (flow, old_line) in [
        ("gnb(label=label, var_smoothing=0.25, priors=[0.2,0.3,0.5])", "gnb(label=label)"),
        ("mnb(label=label, alpha=0.5, fit_prior=false)", "mnb(label=label, alpha=0.5)"),
    ] {
        let data = if flow.starts_with("gnb") { "tests/data/gnb" } else { "tests/data/nb" };
        let (first, rest, all) = (format!("{data}/part[01].csv"), format!("{data}/part[23].csv"), format!("{data}/part[0-3].csv"));
        mpirun(2, &["train", "--data", &first, "--flow", flow, "--keep-partials", "--model", m("old.json").to_str().unwrap()]).ok();
        let mut old = read_json(&m("old.json"));
        old["flow"] = old_line.into();
        std::fs::write(m("old.json"), serde_json::to_vec(&old).unwrap()).unwrap();
        mpirun(3, &["train", "--data", &rest, "--update", m("old.json").to_str().unwrap(), "--model", m("new.json").to_str().unwrap()]).ok();
        mpirun(2, &["train", "--data", &all, "--flow", flow, "--model", m("all.json").to_str().unwrap()]).ok();
        let (new, whole) = (read_json(&m("new.json")), read_json(&m("all.json")));
        assert_eq!(new["nodes"][0]["params"], whole["nodes"][0]["params"], "{flow}");
        assert_eq!(new["flow"], flow, "{flow}");
        assert_round_off(&m("new.json"), &m("all.json"));
    }
}
