//! The command line's jobs as library functions (`flowmpi::jobs`), on 1..4 in-process ranks:
//! `train` with `update` equals training on all the rows, `execute` writes what the flow computes
//! row by row, `sort` writes numpy's stable argsort; bad options are one error on every rank.
//! References are computed serially here, on the concatenated rows.

use flowmpi::comm::run_threads;
use flowmpi::io::DataOptions;
use flowmpi::jobs::{self, ExecuteJob, SortJob, TrainJob};
use flowmpi::Comm;
use ndarray::Array2;
use std::path::Path;

/// Rows of `n` lines of 3 columns (`id` a text-like integer, `a`, `b`), deterministic.
fn rows(start: usize, n: usize) -> Vec<[f64; 3]> {
    (start..start + n).map(|i| [i as f64, ((i * 37) % 11) as f64 * 0.5 - 2.0, (i as f64 * 0.7).sin() * 3.0 + 10.0]).collect()
}

/// Shard files part{k}.csv of the given sizes (one may be empty) under `dir`, from row `start`.
fn shards(dir: &Path, start: usize, sizes: &[usize]) -> Vec<[f64; 3]> {
    std::fs::create_dir_all(dir).unwrap();
    let mut all = Vec::new();
    let mut at = start;
    for (k, &n) in sizes.iter().enumerate() {
        let r = rows(at, n);
        let text: String = std::iter::once("id,a,b\n".to_string()).chain(r.iter().map(|x| format!("{},{},{}\n", x[0], x[1], x[2]))).collect();
        std::fs::write(dir.join(format!("part{k}.csv")), text).unwrap();
        all.extend(r);
        at += n;
    }
    all
}

fn data(dir: &Path) -> DataOptions {
    DataOptions::new(dir.join("part*.csv").display().to_string())
}

/// The covariance matrix (ddof 1) of columns a, b, serially.
fn covariance(rows: &[[f64; 3]]) -> [[f64; 2]; 2] {
    let n = rows.len() as f64;
    let mean = [1, 2].map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n);
    let mut c = [[0.0; 2]; 2];
    for (p, &i) in [1, 2].iter().enumerate() {
        for (q, &j) in [1, 2].iter().enumerate() {
            c[p][q] = rows.iter().map(|r| (r[i] - mean[p]) * (r[j] - mean[q])).sum::<f64>() / (n - 1.0);
        }
    }
    c
}

fn node_matrix(model: &flowmpi::Model, node: usize, field: &str) -> Vec<Vec<f64>> {
    serde_json::from_value(model.nodes[node][field].clone()).unwrap()
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap().split(',').map(String::from).collect();
    (head, lines.map(|l| l.split(',').map(String::from).collect()).collect())
}

#[test]
fn train_then_update_equals_training_on_all_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let old = shards(&tmp.path().join("old"), 0, &[40, 0, 7, 23]);
    let new = shards(&tmp.path().join("new"), 70, &[5, 31, 0]);
    let all: Vec<[f64; 3]> = old.iter().chain(&new).cloned().collect();
    let expect = covariance(&all);
    let scale = expect[0][0].abs().max(expect[1][1].abs());
    for ranks in 1..=4 {
        run_threads(ranks, |comm| {
            let opts = DataOptions { columns: Some("a,b".into()), ..data(&tmp.path().join("old")) };
            let job = TrainJob { flow: Some("moments | covariance".into()), keep_partials: true, ..Default::default() };
            let first = jobs::train(comm, opts, &job).unwrap().model;
            assert_eq!(first.training_rows, old.len() as u64);
            let save = tmp.path().join(format!("updated{ranks}.json"));
            let job = TrainJob { update: Some(first), save: Some(save.clone()), ..Default::default() };
            let updated = jobs::train(comm, data(&tmp.path().join("new")), &job).unwrap();
            let m = &updated.model;
            assert_eq!((m.training_rows, updated.report.rows), (all.len() as u64, new.len() as u64), "rank {}", comm.rank());
            assert_eq!(m.input_columns, ["a", "b"], "the old model's columns are read");
            let c = node_matrix(m, 1, "covariance");
            for p in 0..2 {
                for q in 0..2 {
                    assert!((c[p][q] - expect[p][q]).abs() <= 1e-13 * scale, "{ranks} ranks: cov[{p}][{q}] {} vs {}", c[p][q], expect[p][q]);
                }
            }
            comm.barrier();
            let saved = flowmpi::Model::load(&save).unwrap();
            assert_eq!(saved.hash(), m.hash(), "the file holds the returned model");
        });
    }
}

#[test]
fn an_update_of_a_model_without_partials_is_refused_on_every_rank() {
    let tmp = tempfile::tempdir().unwrap();
    shards(tmp.path(), 0, &[9, 4]);
    let errors = run_threads(3, |comm| {
        let first = jobs::train(comm, data(tmp.path()), &TrainJob { flow: Some("covariance".into()), ..Default::default() }).unwrap().model;
        jobs::train(comm, data(tmp.path()), &TrainJob { update: Some(first), ..Default::default() }).err().map(|e| e.to_string())
    });
    for e in errors {
        assert!(e.as_deref().is_some_and(|e| e.contains("without --keep-partials")), "{e:?}");
    }
}

#[test]
fn execute_writes_the_flows_output_of_every_row_with_kept_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let all = shards(&tmp.path().join("in"), 0, &[12, 0, 30, 5]);
    for ranks in 1..=4 {
        let model = tmp.path().join(format!("pca{ranks}.json"));
        let out = tmp.path().join(format!("out{ranks}"));
        std::fs::create_dir_all(&out).unwrap();
        let pattern = out.join("part{rank}.csv").display().to_string();
        let written = run_threads(ranks, |comm| {
            let opts = DataOptions { columns: Some("a,b".into()), ..data(&tmp.path().join("in")) };
            jobs::train(comm, opts, &TrainJob { flow: Some("pca(n=1)".into()), save: Some(model.clone()), ..Default::default() }).unwrap();
            let job = ExecuteJob { model: model.clone(), out: pattern.clone(), keep: vec!["id".into()], ..Default::default() };
            jobs::execute(comm, data(&tmp.path().join("in")), &job).unwrap()
        });
        assert!(written.iter().all(|w| w.rows == written[0].rows && w.columns == ["id", "pc0"]), "{ranks} ranks");
        assert_eq!(written[0].rows.iter().sum::<u64>(), all.len() as u64);
        // The flow, applied serially to the concatenated rows.
        let flow = flowmpi::Model::load(&model).unwrap().flow().unwrap();
        let x = Array2::from_shape_fn((all.len(), 2), |(i, j)| all[i][j + 1]);
        let y = flow.execute(x.view()).unwrap();
        let mut got = Vec::new();
        for r in 0..ranks {
            let (head, lines) = read_csv(&out.join(format!("part{r}.csv")));
            assert_eq!(head, ["id", "pc0"]);
            got.extend(lines);
        }
        assert_eq!(got.len(), all.len());
        for (i, line) in got.iter().enumerate() {
            assert_eq!(line[0], format!("{}", all[i][0]), "{ranks} ranks: row {i}'s id, as text");
            assert_eq!(line[1].parse::<f64>().unwrap(), y[[i, 0]], "{ranks} ranks: row {i}");
        }
    }
}

#[test]
fn sort_writes_the_stable_argsort_and_the_sorted_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let all = shards(&tmp.path().join("in"), 0, &[17, 0, 3, 44]);
    // numpy.argsort(a, kind="stable"): column a has many equal keys.
    let mut expect: Vec<usize> = (0..all.len()).collect();
    expect.sort_by(|&i, &j| all[i][1].total_cmp(&all[j][1]));
    for ranks in 1..=4 {
        let out = tmp.path().join(format!("sorted{ranks}"));
        std::fs::create_dir_all(&out).unwrap();
        let job = SortJob {
            by: "a".into(),
            out: Some(out.join("rows{rank}.csv").display().to_string()),
            argsort: Some(out.join("idx{rank}.csv").display().to_string()),
            keep: vec!["id".into()],
            ..Default::default()
        };
        let sorted = run_threads(ranks, |comm| jobs::sort(comm, DataOptions { columns: Some("a,b".into()), ..data(&tmp.path().join("in")) }, &job).unwrap());
        assert_eq!(sorted[0].by, "a");
        assert_eq!(sorted[0].rows.iter().sum::<u64>(), all.len() as u64);
        let (mut index, mut rows) = (Vec::new(), Vec::new());
        for r in 0..ranks {
            index.extend(read_csv(&out.join(format!("idx{r}.csv"))).1.into_iter().map(|l| l[0].parse::<usize>().unwrap()));
            rows.extend(read_csv(&out.join(format!("rows{r}.csv"))).1);
        }
        assert_eq!(index, expect, "{ranks} ranks");
        for (line, &i) in rows.iter().zip(&expect) {
            assert_eq!(line[0], format!("{}", all[i][0]));
            assert_eq!(line[1].parse::<f64>().unwrap(), all[i][1]);
            assert_eq!(line[2].parse::<f64>().unwrap(), all[i][2]);
        }
    }
}

#[test]
fn bad_outputs_are_one_error_on_every_rank_before_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    shards(&tmp.path().join("in"), 0, &[5, 5]);
    let model = tmp.path().join("m.json");
    let shared = tmp.path().join("one.csv").display().to_string();
    let errors = run_threads(2, |comm| {
        jobs::train(comm, data(&tmp.path().join("in")), &TrainJob { flow: Some("pca(n=1)".into()), save: Some(model.clone()), ..Default::default() }).unwrap();
        let no_rank = jobs::execute(comm, data(&tmp.path().join("in")), &ExecuteJob { model: model.clone(), out: shared.clone(), ..Default::default() });
        let nowhere = jobs::sort(comm, data(&tmp.path().join("in")), &SortJob { by: "a".into(), ..Default::default() });
        let onto_input = jobs::train(
            comm,
            data(&tmp.path().join("in")),
            &TrainJob { flow: Some("pca(n=1)".into()), save: Some(tmp.path().join("in/part1.csv")), ..Default::default() },
        );
        [no_rank.err(), nowhere.err(), onto_input.err()].map(|e| e.map(|e| e.to_string()).unwrap_or_default())
    });
    for e in &errors {
        assert!(e[0].contains("has no {rank}"), "{e:?}");
        assert!(e[1].contains("give --out"), "{e:?}");
        assert!(e[2].contains("that is the input file"), "{e:?}");
    }
    assert!(!Path::new(&shared).exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2, "only in/ and m.json");
}
