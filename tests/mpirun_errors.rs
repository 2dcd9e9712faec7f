//! Bad input under real mpirun: every rank exits non-zero within the timeout, one clear message
//! names rank, file and line, and the model file is not written (an existing one is untouched).

mod common;
use common::*;

/// Train with a pre-existing model file; the run must fail and leave the file as it was.
fn fails(n: usize, data: &str, flow: &str, extra: &[&str], must_contain: &[&str]) -> String {
    let dir = scratch(&format!("err-{}", data.replace(['/', '{', '}', '*', '.'], "_")));
    let model = dir.join("model.json");
    std::fs::write(&model, "OLD").unwrap();
    let mut args = vec!["train", "--data", data, "--flow", flow, "--model", model.to_str().unwrap()];
    args.extend_from_slice(extra);
    let message = one_error(&mpirun(n, &args), must_contain);
    assert_eq!(std::fs::read_to_string(&model).unwrap(), "OLD", "model file was touched");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != "model.json").collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    message
}

#[test]
fn missing_shard_file() {
    fails(2, "tests/data/bad/only{rank}.csv", "moments", &[], &["rank 1", "tests/data/bad/only1.csv", "no such file"]);
}

#[test]
fn unparsable_value_names_rank_file_and_line() {
    fails(2, "tests/data/bad/parse{rank}.csv", "covariance", &[], &["rank 1", "parse1.csv", "line 4", "'abc'"]);
    // Two files over five ranks by glob, dealt out by bytes: ranks 0-2 split parse0.csv (92
    // bytes), ranks 3 and 4 parse1.csv (42 bytes), whose line 4 is in rank 3's half: the line is
    // counted from the file's start.
    fails(5, "tests/data/bad/parse*.csv", "covariance", &[], &["rank 3", "parse1.csv", "line 4", "'abc'"]);
}

#[test]
fn wrong_number_of_fields() {
    fails(2, "tests/data/bad/fields{rank}.csv", "moments", &[], &["rank 1", "fields1.csv", "line 6", "expected 4 fields, found 3"]);
}

#[test]
fn a_file_read_with_the_wrong_delimiter_is_told_which_one_to_pass() {
    // semi0.csv is its header alone: rank 0 has no row to fail on, rank 1 does.
    fails(2, "tests/data/bad/semi{rank}.csv", "moments", &[], &["rank 1", "semi1.csv", "line 2", "'1;2;3'", "pass --delimiter ';'"]);
}

#[test]
fn different_column_counts_on_different_ranks() {
    fails(2, "tests/data/bad/cols{rank}.csv", "moments", &[], &["rank 1", "cols1.csv", "5 columns", "4"]);
}

#[test]
fn nan_is_an_error_by_default_and_skippable() {
    fails(2, "tests/data/bad/nan{rank}.csv", "moments", &[], &["rank 1", "nan1.csv", "line 3", "--nan skip"]);
    let dir = scratch("nanskip");
    let m = dir.join("m.json");
    let r = mpirun(2, &["train", "--data", "tests/data/bad/nan{rank}.csv", "--flow", "moments", "--nan", "skip", "--model", m.to_str().unwrap()]);
    r.ok();
    assert!(r.stderr.contains("1 skipped"), "{}", r.stderr);
    let got = read_json(&m);
    let want = expected("nan_skip");
    for key in ["mean", "variance", "minimum", "maximum"] {
        assert_close(key, &node(&got, 0)["moments"][key], &want[key], 1e-12);
    }
    assert_eq!(node(&got, 0)["moments"]["count"], want["count"]);
}

#[test]
fn zero_rows_in_total() {
    fails(2, "tests/data/bad/empty{rank}.csv", "covariance", &[], &["no data rows"]);
}

#[test]
fn n_larger_than_dimension() {
    fails(3, "tests/data/bad/parse0.csv", "pca(n=7)", &[], &["n=7", "larger than the input dimension 4"]);
}

#[test]
fn bad_flow_and_columns_are_parameter_errors() {
    fails(2, "data/example", "pca(n=2) | nosuchnode", &[], &["unknown node 'nosuchnode'"]);
    fails(2, "data/example", "covariance", &["--columns", "temperature_c,nope"], &["no column named 'nope'"]);
}

#[test]
fn execute_failure_leaves_no_output() {
    let dir = scratch("execfail");
    let m = dir.join("m.json");
    mpirun(2, &["train", "--data", "tests/data/bad/parse0.csv", "--flow", "pca(n=2)", "--model", m.to_str().unwrap()]).ok();
    let out = dir.join("out{rank}.csv");
    let r = mpirun(2, &["execute", "--model", m.to_str().unwrap(), "--data", "tests/data/bad/parse{rank}.csv", "--out", out.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("parse1.csv, line 4"), "{}", r.stderr);
    let files: Vec<String> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, vec!["m.json".to_string()], "no output (and no temporary) may remain");
}

#[test]
fn a_usage_error_is_printed_once_and_fails_every_rank() {
    let r = mpirun(3, &["train", "--no-such-option", "--data", "x.csv"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches("unexpected argument '--no-such-option'").count(), 1, "{}", r.stderr);
}

#[test]
fn train_never_writes_over_an_input_file() {
    // The model or the checkpoint naming a data file (also through a hard link, on any rank)
    // would overwrite the data: refused, the data file untouched.
    let dir = scratch("train-over-input");
    for f in ["part0.csv", "part1.csv", "part2.csv"] {
        std::fs::copy(format!("tests/data/km/{f}"), dir.join(f)).unwrap();
    }
    std::fs::hard_link(dir.join("part2.csv"), dir.join("link.csv")).unwrap();
    let before = std::fs::read(dir.join("part2.csv")).unwrap();
    let spec = format!("{}/part*.csv", dir.display());
    let (p2, link) = (dir.join("part2.csv"), dir.join("link.csv"));
    let (p2, link) = (p2.to_str().unwrap(), link.to_str().unwrap());
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    for n in [1, 3] {
        for (args, flag) in [
            (vec!["--flow", "kmeans(k=2)", "--model", p2], "--model"),
            (vec!["--flow", "kmeans(k=2)", "--model", link], "--model"),
            (vec!["--flow", "kmeans(k=2)", "--model", m, "--checkpoint", p2], "--checkpoint"),
        ] {
            let mut full = vec!["train", "--data", &spec];
            full.extend_from_slice(&args);
            let r = mpirun(n, &full);
            one_error(&r, &[flag, "that is the input file", "part2.csv"]);
            assert_eq!(std::fs::read(dir.join("part2.csv")).unwrap(), before, "{n} ranks, {args:?}");
            assert!(!model.exists());
        }
    }
}

#[test]
fn a_checkpoint_that_no_node_would_write_is_refused() {
    let dir = scratch("checkpoint-unused");
    let (m, c) = (dir.join("m.json"), dir.join("c.bin"));
    let r = mpirun(2, &["train", "--data", "data/example", "--flow", "pca(n=2)", "--model", m.to_str().unwrap(), "--checkpoint", c.to_str().unwrap()]);
    one_error(&r, &["--checkpoint: no node of the flow 'pca(n=2)' checkpoints"]);
    assert!(!m.exists() && !c.exists());
}

#[test]
fn a_model_edited_to_a_scale_that_cannot_divide_is_refused() {
    // pca(method=corr) divides by its column scales: a zero, negative, NaN-free but huge or
    // tiny one executed to NaN/inf columns with exit 0.
    let dir = scratch("bad-scale");
    let good = dir.join("good.json");
    mpirun(2, &["train", "--data", "data/example", "--flow", "pca(n=2, method=corr)", "--model", good.to_str().unwrap()]).ok();
    let out = dir.join("o{rank}.csv");
    mpirun(2, &["execute", "--model", good.to_str().unwrap(), "--data", "data/example", "--out", out.to_str().unwrap()]).ok();
    for (i, bad) in ["0.0", "-2.5", "1e308", "1e-320"].iter().enumerate() {
        let mut m = read_json(&good);
        m["nodes"][0]["scale"][3] = serde_json::from_str(bad).unwrap();
        let edited = dir.join(format!("bad{i}.json"));
        std::fs::write(&edited, serde_json::to_string(&m).unwrap()).unwrap();
        let out = dir.join(format!("b{i}_{{rank}}.csv"));
        let r = mpirun(2, &["execute", "--model", edited.to_str().unwrap(), "--data", "data/example", "--out", out.to_str().unwrap()]);
        one_error(&r, &["scale holds", "at position 3", "damaged or was edited"]);
        assert!(!dir.join(format!("b{i}_0.csv")).exists(), "{bad}: output written");
    }
}

#[test]
fn thread_counts_out_of_range_are_refused_and_odd_progress_intervals_ignored() {
    // 100000 threads aborted spawning; an infinite progress interval panicked.
    for (args, env, msg) in [
        (vec!["stats", "--data", "data/example", "--threads", "100000"], vec![], "--threads 100000: give 1 to"),
        (vec!["stats", "--data", "data/example", "--threads", "0"], vec![], "--threads 0: give 1 to"),
        (vec!["stats", "--data", "data/example"], vec![("FLOWMPI_THREADS", "100000")], "FLOWMPI_THREADS 100000: give 1 to"),
        (vec!["stats", "--data", "data/example"], vec![("FLOWMPI_THREADS", "many")], "FLOWMPI_THREADS=\"many\" is not a thread count"),
        (vec!["map", "--threads", "100000", "--tasks", "/dev/null", "--", "true"], vec![], "--threads 100000: give 1 to"),
    ] {
        let r = mpirun_with(2, &args, &env);
        one_error(&r, &[msg]);
    }
    for every in ["inf", "NaN", "1e300", "-1"] {
        let r = mpirun_with(2, &["--progress", "always", "stats", "--data", "data/example"], &[("FLOWMPI_PROGRESS_EVERY", every)]);
        r.ok();
        assert!(r.stdout.contains("rows: 4000"), "{every}: {}", r.stdout);
    }
}

#[test]
fn messages_never_echo_control_characters_or_a_stray_files_first_line() {
    let dir = scratch("echo");
    // A value holding an ESC sequence and a no-break space: escaped in the message.
    std::fs::write(dir.join("part0.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(dir.join("part1.csv"), "a,b\n3,\x1b]0;pwned\x07\u{a0}4\n").unwrap();
    let m = dir.join("m.json");
    let spec = format!("{}/part*.csv", dir.display());
    let r = mpirun(2, &["train", "--data", &spec, "--flow", "moments", "--model", m.to_str().unwrap()]);
    let e = one_error(&r, &["part1.csv, line 2", r"'\u{1b}]0;pwned\u{7}\u{a0}4'"]);
    assert!(!r.stderr.contains('\x1b') && !r.stderr.contains('\u{a0}'), "{e}");
    // A symlink among the data to a secret: its first line never reaches the log.
    let secret = dir.join("token");
    std::fs::write(&secret, "s3cr3t-t0ken,x\n1,2\n").unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("part2.csv")).unwrap();
    std::fs::write(dir.join("part1.csv"), "a,b\n3,4\n").unwrap();
    for n in [1, 3] {
        let r = mpirun(n, &["train", "--data", &spec, "--flow", "moments", "--model", m.to_str().unwrap()]);
        one_error(&r, &["part2.csv, line 1", "header differs", "column 1 is 'a' there but another name here (12 bytes)"]);
        assert!(!r.stderr.contains("s3cr3t"), "{}", r.stderr);
    }
    // A reordered header is still named.
    std::fs::remove_file(dir.join("part2.csv")).unwrap();
    std::fs::write(dir.join("part1.csv"), "b,a\n3,4\n").unwrap();
    let r = mpirun(2, &["train", "--data", &spec, "--flow", "moments", "--model", m.to_str().unwrap()]);
    one_error(&r, &["column 1 is 'a' there but 'b' here (column 2 there)"]);
}

#[test]
fn messages_a_new_user_met_say_what_is_wrong() {
    let dir = scratch("clear-messages");
    let m = dir.join("m.json");
    let m = m.to_str().unwrap();
    std::fs::write(dir.join("cr.csv"), "a,b\r1,2\r3,4\r").unwrap();
    std::fs::write(dir.join("flat.csv"), "x,y\n1,1\n1,1\n1,1\n").unwrap();
    let (cr, flat) = (dir.join("cr.csv"), dir.join("flat.csv"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["stats", "--data", ""], "--data is empty"),
        (vec!["stats", "--data", "data/example", "--delimiter", "\""], "the double quote is CSV's quoting character"),
        (vec!["stats", "--data", cr.to_str().unwrap()], "cr.csv, line 1: lines end in a carriage return alone"),
        (vec!["train", "--data", flat.to_str().unwrap(), "--flow", "whitening", "--model", m], "the data have no variance in any direction"),
    ];
    for (args, msg) in cases {
        let e = one_error(&mpirun(2, &args), &[msg]);
        assert!(!e.contains("n=0"), "{e}");
    }
    // --resume with a journal of a longer task list.
    let (long, short, journal) = (dir.join("long.txt"), dir.join("short.txt"), dir.join("j.tsv"));
    std::fs::write(&long, "a\nb\nc\n").unwrap();
    std::fs::write(&short, "a\n").unwrap();
    let j = journal.to_str().unwrap();
    mpirun(2, &["map", "--tasks", long.to_str().unwrap(), "--journal", j, "--", "true"]).ok();
    let r = mpirun(2, &["map", "--tasks", short.to_str().unwrap(), "--journal", j, "--resume", "--", "true"]);
    one_error(&r, &["but the task list has only 1 task: it was written for another task list"]);
}

#[test]
fn a_flow_parse_error_points_at_its_place() {
    let dir = scratch("caret");
    let m = dir.join("m.json");
    let r = mpirun(2, &["train", "--data", "data/example", "--flow", "layer(pca(n=2) @ 0-3; pca(n=2) @ 4-7)", "--model", m.to_str().unwrap()]);
    let e = one_error(&r, &["two nodes in one group: separate a layer's nodes with ','"]);
    assert!(!e.contains("cannot use"), "{e}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "layer(pca(n=2) @ 0-3; pca(n=2) @ 4-7)").expect("the spec is shown");
    assert_eq!(lines[at + 1].find('^'), lines[at].find(';'), "the caret points at the ';'\n{}", r.stderr);
    let r = mpirun(2, &["train", "--data", "data/example", "--flow", "moments | pca(n=2 | whitening", "--model", m.to_str().unwrap()]);
    one_error(&r, &["missing ')' in 'pca(n=2'"]);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "moments | pca(n=2 | whitening").expect("the flow is shown");
    assert_eq!(lines[at + 1].find('^'), lines[at].find("pca"), "{}", r.stderr);
    assert!(!m.exists());
}

#[test]
fn echoed_values_are_bounded_and_a_missing_tmpdir_is_named() {
    let dir = scratch("bounded");
    // A 2,000-column file and a column that is not there: the message lists a few names, not
    // all of them.
    let names: Vec<String> = (0..2000).map(|j| format!("column_number_{j}")).collect();
    let row: Vec<String> = (0..2000).map(|j| j.to_string()).collect();
    std::fs::write(dir.join("wide.csv"), format!("{}\n{}\n{}\n", names.join(","), row.join(","), row.join(","))).unwrap();
    let r = mpirun(2, &["stats", "--data", dir.join("wide.csv").to_str().unwrap(), "--columns", "nope"]);
    let e = one_error(&r, &["no column named 'nope' (the 2000 columns are column_number_0", "… 1988 more"]);
    assert!(e.len() < 600, "{} bytes", e.len());
    // A flow file of megabytes is not echoed whole.
    let flow = dir.join("flow.toml");
    std::fs::write(&flow, format!("flow = \"pca(n={})\"\n", "9".repeat(3_000_000))).unwrap();
    let m = dir.join("m.json");
    let r = mpirun(2, &["train", "--data", "data/example", "--flow-file", flow.to_str().unwrap(), "--model", m.to_str().unwrap()]);
    let e = one_error(&r, &["pca: cannot use '999"]);
    assert!(r.stderr.len() < 2000, "{} bytes of stderr", r.stderr.len());
    assert!(e.contains("(3000000 bytes)"), "{e}");
    // Without --logs, map needs a temporary directory: a missing TMPDIR is named, not every
    // task "not started: No such file or directory".
    let tasks = dir.join("t.txt");
    std::fs::write(&tasks, "a\nb\n").unwrap();
    let gone = dir.join("no-such-dir");
    let r = mpirun_with(2, &["map", "--tasks", tasks.to_str().unwrap(), "--", "true"], &[("TMPDIR", gone.to_str().unwrap())]);
    one_error(&r, &["no-such-dir", "cannot create a temporary file for the tasks' output", "set TMPDIR"]);
}
