//! `flowmpi sort` under real `mpirun -n 1..4` against numpy's stable argsort
//! (tests/expected/sort.json, made by scripts/make_test_data.py): uneven shards and an empty
//! one, many ties and signed zeros, quoted text IDs carried along, CSV and NPY, forced small
//! all-to-all pieces, and the errors.

mod common;
use common::*;
use std::path::Path;

/// An int64 .npy vector (what --argsort writes).
fn read_i64_npy(p: &Path) -> Vec<u64> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]);
    assert!(header.contains("'descr': '<i8'") && header.contains("'shape': ("), "{header}");
    b[10 + hlen..].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u64).collect()
}

fn want(name: &str) -> Vec<u64> {
    expected("sort")[name].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

/// Rank r must hold rows N·r/P .. N·(r+1)/P.
fn assert_even(counts: &[usize], n: usize) {
    let p = counts.len();
    for (r, &c) in counts.iter().enumerate() {
        assert_eq!(c, n * (r + 1) / p - n * r / p, "rank {r} of {p} holds {c} rows: {counts:?}");
    }
}

#[test]
fn sorted_csv_shards_equal_numpys_stable_argsort_on_1_to_4_ranks() {
    let dir = scratch("sort-csv");
    let order = want("argsort_key");
    let ids: Vec<String> = expected("sort")["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let n = order.len();
    for p in 1..=4 {
        let out = dir.join(format!("n{p}/part{{rank}}.csv"));
        let idx = dir.join(format!("n{p}/idx{{rank}}.npy"));
        // A glob: the 4 files (one empty) are spread over the ranks in contiguous blocks.
        let r = mpirun(
            p,
            &[
                "sort",
                "--data",
                "tests/data/sort/part*.csv",
                "--by",
                "key",
                "--keep",
                "id",
                "--out",
                out.to_str().unwrap(),
                "--argsort",
                idx.to_str().unwrap(),
                "-v",
            ],
        )
        .ok()
        .stderr
        .clone();
        assert!(r.contains(&format!("sorted {n} rows by 'key'")), "{r}");
        let mut all_idx = Vec::new();
        let mut counts = Vec::new();
        for rank in 0..p {
            let i = read_i64_npy(&dir.join(format!("n{p}/idx{rank}.npy")));
            let text = std::fs::read_to_string(dir.join(format!("n{p}/part{rank}.csv"))).unwrap();
            let mut rd = csv::Reader::from_reader(text.as_bytes());
            assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), ["id", "key", "v"]);
            let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
            assert_eq!(rows.len(), i.len(), "rank {rank}: as many index entries as rows");
            for (row, &g) in rows.iter().zip(&i) {
                // The ID travels with its row, verbatim (quoted ones re-quoted by the reader).
                assert_eq!(row[0], ids[g as usize], "{p} ranks: row {g}");
            }
            counts.push(i.len());
            all_idx.extend(i);
        }
        assert_eq!(all_idx, order, "{p} ranks: not numpy's stable argsort");
        assert_even(&counts, n);
    }
}

#[test]
fn npy_input_sorts_by_another_column_and_tiny_alltoall_pieces_give_the_same() {
    let dir = scratch("sort-npy");
    let order = want("argsort_v");
    for p in [1usize, 2, 3, 4] {
        for piece in ["", "7"] {
            let out = dir.join(format!("n{p}{piece}/s{{rank}}.npy"));
            let idx = dir.join(format!("n{p}{piece}/i{{rank}}.csv"));
            let env: &[(&str, &str)] = if piece.is_empty() { &[] } else { &[("FLOWMPI_COMM_PIECE", piece)] };
            mpirun_with(p, &["sort", "--data", "tests/data/sort_npy/", "--by", "1", "--out", out.to_str().unwrap(), "--argsort", idx.to_str().unwrap()], env)
                .ok();
            let mut got = Vec::new();
            let mut values = Vec::new();
            for rank in 0..p {
                let text = std::fs::read_to_string(dir.join(format!("n{p}{piece}/i{rank}.csv"))).unwrap();
                let mut lines = text.lines();
                assert_eq!(lines.next(), Some("index"));
                got.extend(lines.map(|l| l.parse::<u64>().unwrap()));
                let hdr_and_rows = std::fs::read(dir.join(format!("n{p}{piece}/s{rank}.npy"))).unwrap();
                values.extend(hdr_and_rows[128..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())));
            }
            assert_eq!(got, order, "{p} ranks, piece {piece:?}");
            // Sorted by column 1 (v), two columns per row.
            let v: Vec<f64> = values.chunks_exact(2).map(|r| r[1]).collect();
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "{p} ranks: column v is not ascending");
            assert_eq!(v.len(), order.len());
        }
    }
}

#[test]
fn sort_errors_are_clear_and_leave_no_output() {
    let dir = scratch("sort-err");
    let out = dir.join("o/p{rank}.csv");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--data", "tests/data/sort/part*.csv", "--by", "nope", "--keep", "id", "--out", o], "--by: "),
        (&["--data", "tests/data/sort/part*.csv", "--by", "id", "--keep", "id", "--out", o], "is a --keep (text) column"),
        (&["--data", "tests/data/sort/part*.csv", "--by", "key", "--columns", "v", "--keep", "id", "--out", o], "is not among the selected --columns"),
        (&["--data", "tests/data/sort/part*.csv", "--by", "key", "--keep", "id", "--out", "one.csv"], "--out \"one.csv\" has no {rank}"),
        (&["--data", "tests/data/sort/part*.csv", "--by", "key", "--out", o], "part0.csv, line 2"),
        (&["--data", "tests/data/bad/nan*.csv", "--by", "a", "--out", o], "nan1.csv, line 3"),
        // Several keys are refused, never silently sorted by the first.
        (&["--data", "tests/data/sort/part*.csv", "--by", "v,key", "--keep", "id", "--out", o], "--by \"v,key\" names 2 columns"),
        (&["--data", "tests/data/sort/part*.csv", "--by", "1-2", "--keep", "id", "--out", o], "--by \"1-2\" names 2 columns"),
    ];
    for (args, msg) in cases {
        let mut full = vec!["sort"];
        full.extend_from_slice(args);
        let r = mpirun(2, &full);
        assert_ne!(r.code, 0, "{args:?} must fail");
        assert!(r.stderr.contains(msg), "{args:?}: expected {msg:?} in\n{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten()).collect();
        assert!(left.is_empty(), "{args:?} left files behind: {left:?}");
    }
    // --nan skip drops the NaN row; the others are sorted (row numbers count rows read).
    let r = mpirun(2, &["sort", "--data", "tests/data/bad/nan*.csv", "--by", "a", "--nan", "skip", "--argsort", "/dev/null/{rank}"]);
    assert_ne!(r.code, 0, "an unwritable --argsort fails");
    let idx = dir.join("i{rank}.csv");
    let r = mpirun(2, &["sort", "--data", "tests/data/bad/nan*.csv", "--by", "a", "--nan", "skip", "--argsort", idx.to_str().unwrap()]);
    assert!(r.ok().stderr.contains("1 row skipped for NaN/inf"), "{}", r.stderr);
    let got: Vec<u64> = (0..2)
        .flat_map(|k| std::fs::read_to_string(dir.join(format!("i{k}.csv"))).unwrap().lines().skip(1).map(|l| l.parse().unwrap()).collect::<Vec<u64>>())
        .collect();
    // Column a of nan0.csv then nan1.csv without its NaN row: 1..8, 1, 3, 2.
    assert_eq!(got, [0, 8, 1, 10, 2, 9, 3, 4, 5, 6, 7]);
}
