//! Tests of the shard layer: sources, layouts, columns, chunks.

use super::*;
use std::path::PathBuf;

#[test]
fn column_selection() {
    let l = Layout { ncols: 6, names: Some(["a", "b", "c", "d-e", "e", "f"].map(String::from).to_vec()) };
    assert_eq!(select_columns(None, &l).unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(select_columns(Some("b,e-f"), &l).unwrap(), vec![1, 4, 5]);
    assert_eq!(select_columns(Some("0-2, 5"), &l).unwrap(), vec![0, 1, 2, 5]);
    assert_eq!(select_columns(Some("d-e"), &l).unwrap(), vec![3]); // a name with a dash
    assert!(select_columns(Some("a,a"), &l).unwrap_err().contains("twice"));
    assert!(select_columns(Some("6"), &l).unwrap_err().contains("out of range"));
    assert!(select_columns(Some("zz"), &l).unwrap_err().contains("no column named 'zz'"));
    let anon = Layout { ncols: 3, names: None };
    assert_eq!(select_columns(Some("x1,2"), &anon).unwrap(), vec![1, 2]);
}

#[test]
fn a_header_name_given_twice_is_never_resolved_to_one_of_its_columns() {
    // Before, `--columns a` silently took the first 'a', and training on both gave a model that
    // `execute` could not apply ("selected twice").
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dup.csv");
    std::fs::write(&path, "a,y,a,id\n1,2,3,9\n4,5,6,8\n").unwrap();
    let open = |columns: Option<&str>, targets: &[&str], keep: &[&str]| {
        let mut o = DataOptions::new(path.display().to_string());
        o.columns = columns.map(String::from);
        o.targets = targets.iter().map(|t| t.to_string()).collect();
        o.keep = keep.iter().map(|k| k.to_string()).collect();
        Dataset::open(&crate::comm::SingleComm, &o).map(|d| d.columns).map_err(|e| e.to_string())
    };
    let e = open(Some("a"), &[], &[]).unwrap_err();
    assert!(e.contains("--columns: the header names columns 0 and 2 both 'a'"), "{e}");
    let e = open(None, &["y"], &[]).unwrap_err();
    assert!(e.contains("dup.csv, line 1: columns 0 and 2 (0-based) are both named 'a'"), "{e}");
    let e = open(Some("1"), &["a"], &[]).unwrap_err();
    assert!(e.contains("target: the header names columns 0 and 2 both 'a'"), "{e}");
    assert_eq!(open(Some("2,3"), &["y"], &[]).unwrap(), vec![2, 3]);
    // A kept column may be a target too (the true value beside the prediction): not a clash.
    assert_eq!(open(Some("0,3"), &["y"], &["y"]).unwrap(), vec![0, 3]);
}

#[test]
fn a_bad_value_in_any_part_of_a_large_block_is_found_on_threads() {
    // Blocks of many parts, their finiteness checked part by part on the pool's threads: an
    // infinity or NaN in a late part is an error naming its row, or its row is dropped.
    let (n, d) = (40_000, 4);
    assert!(crate::threads::parts(n, d).len() >= 3);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.npy");
    for (bad, row) in [(f64::INFINITY, 39_000), (f64::NAN, 20_000)] {
        let vals: Vec<f64> = (0..n * d).map(|i| if i == row * d + 2 { bad } else { i as f64 }).collect();
        let mut w = npy::NpyWriter::create(std::fs::File::create(&path).unwrap(), d).unwrap();
        w.write_rows(&vals).unwrap();
        w.finish().unwrap();
        for (nan, map) in [(NanPolicy::Error, true), (NanPolicy::Error, false), (NanPolicy::Skip, true)] {
            let mut opts = DataOptions::new(path.display().to_string());
            opts.nan = nan;
            let data = Dataset::open(&crate::comm::SingleComm, &opts).unwrap();
            let mut sum = 0.0;
            let read = crate::threads::Pool::new(3).unwrap().run(|| {
                let mut add = |c: &crate::io::Chunk| {
                    sum += c.x.sum();
                    Ok(())
                };
                if map {
                    data.for_each_chunk_mapped(&mut add)
                } else {
                    data.for_each_chunk(&mut add)
                }
            });
            match nan {
                NanPolicy::Skip => {
                    assert_eq!(read.unwrap(), (n as u64 - 1, 1));
                    let kept: f64 = vals.chunks(d).enumerate().filter(|(i, _)| *i != row).map(|(_, r)| r.iter().sum::<f64>()).sum();
                    assert_eq!(sum, kept);
                }
                _ => {
                    let e = read.unwrap_err().to_string();
                    assert!(e.contains(&format!("row {} column 2 ('x2') holds", row + 1)), "{e}");
                }
            }
        }
    }
}

#[test]
fn npy_rows_after_skipped_nan_rows_keep_their_file_row_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let vals: Vec<f64> = (0..21).map(|i| if i == 4 * 3 + 1 || i == 1 { f64::NAN } else { i as f64 }).collect();
    let mut w = npy::NpyWriter::create(std::fs::File::create(dir.join("x.npy")).unwrap(), 3).unwrap();
    w.write_rows(&vals).unwrap();
    w.finish().unwrap();
    let mut opts = DataOptions::new(dir.join("x.npy").display().to_string());
    opts.nan = NanPolicy::Skip;
    let data = Dataset::open(&crate::comm::SingleComm, &opts).unwrap();
    let mut seen = Vec::new();
    let (rows, skipped) = data
        .for_each_chunk(&mut |c| {
            let start = c.origin.unwrap().start as usize;
            for (i, r) in c.x.rows().into_iter().enumerate() {
                // Row i of the chunk is the file's row start + i.
                assert_eq!(r.to_vec(), vals[(start + i) * 3..(start + i + 1) * 3].to_vec());
                seen.push(start + i);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!((rows, skipped), (5, 2));
    assert_eq!(seen, [1, 2, 3, 5, 6]);
}

#[test]
fn npy_and_csv_read_the_same_selected_columns_and_nan_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 7 rows x 5 columns; row 4 has a NaN in column 2.
    let vals: Vec<f64> = (0..35).map(|i| if i == 4 * 5 + 2 { f64::NAN } else { i as f64 * 0.5 - 3.0 }).collect();
    let mut w = npy::NpyWriter::create(std::fs::File::create(dir.join("x.npy")).unwrap(), 5).unwrap();
    w.write_rows(&vals).unwrap();
    w.finish().unwrap();
    let text: String = vals.chunks(5).map(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
    std::fs::write(dir.join("x.csv"), text).unwrap();
    // (values, rows skipped, chunks handed out as views of a memory map, chunks)
    let stream = |file: &str, columns: &str, nan: NanPolicy, map: bool| -> Result<(Vec<f64>, u64, usize, usize)> {
        let mut opts = DataOptions::new(dir.join(file).display().to_string());
        opts.columns = Some(columns.to_string());
        opts.nan = nan;
        opts.block_bytes = 64; // several blocks
        let data = Dataset::open(&crate::comm::SingleComm, &opts)?;
        let (mut got, mut mapped, mut chunks) = (Vec::new(), 0, 0);
        let mut visit = |c: &Chunk| {
            got.extend(c.x.iter());
            chunks += 1;
            if let Some(m) = c.mapped {
                // The view really lies in the map, at the offset the map reports.
                let at = m.offset_of(c.x.as_ptr()).unwrap();
                assert_eq!(m.values()[at], c.x[[0, 0]]);
                mapped += 1;
            }
            Ok(())
        };
        let (_, skipped) = if map { data.for_each_chunk_mapped(&mut visit)? } else { data.for_each_chunk(&mut visit)? };
        Ok((got, skipped, mapped, chunks))
    };
    let read = |file: &str, columns: &str, nan: NanPolicy| stream(file, columns, nan, false).map(|r| (r.0, r.1));
    for columns in ["1-3", "3,2", "0-4"] {
        let want = read("x.csv", columns, NanPolicy::Skip).unwrap();
        assert_eq!(read("x.npy", columns, NanPolicy::Skip).unwrap(), want, "{columns}");
        // Mapped: the same values; contiguous selections are views of the map (the one-row
        // block holding the NaN row hands on nothing); others are copies.
        let (got, skipped, mapped, chunks) = stream("x.npy", columns, NanPolicy::Skip, true).unwrap();
        assert_eq!((got, skipped), want, "{columns} mapped");
        assert_eq!(mapped, if columns == "3,2" { 0 } else { chunks }, "{columns}: {mapped} of {chunks} chunks mapped");
        assert!(stream("x.npy", columns, NanPolicy::Error, true).unwrap_err().to_string().contains("row 5 column 2 ('x2') holds NaN"));
        let width = want.0.len() / 6;
        assert_eq!(want.1, 1, "{columns}");
        let sel = select_columns(Some(columns), &Layout { ncols: 5, names: None }).unwrap();
        assert_eq!(want.0[..width], sel.iter().map(|&j| vals[j]).collect::<Vec<_>>()[..], "{columns}");
        let e = read("x.npy", columns, NanPolicy::Error).unwrap_err().to_string();
        assert!(e.contains("row 5 column 2 ('x2') holds NaN"), "{e}");
    }
    // Columns without the NaN: nothing skipped.
    assert_eq!(read("x.npy", "3-4", NanPolicy::Error).unwrap().1, 0);
    // One file split by rows over 1..4 ranks: the pieces in rank order are the whole file.
    for ranks in 1..=4 {
        let mut opts = DataOptions::new(dir.join("x.npy").display().to_string());
        opts.columns = Some("3-4".into());
        let parts = crate::comm::run_threads(ranks, |c| {
            let mut got: Vec<f64> = Vec::new();
            Dataset::open(c, &opts)
                .unwrap()
                .for_each_chunk(&mut |ch| {
                    got.extend(ch.x.iter());
                    Ok(())
                })
                .unwrap();
            got
        });
        let want: Vec<f64> = vals.chunks(5).flat_map(|r| r[3..5].to_vec()).collect();
        assert_eq!(parts.concat(), want, "{ranks} ranks");
    }
}

#[test]
fn shard_assignment_is_contiguous_and_covers_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for k in 0..5 {
        std::fs::write(dir.join(format!("s{k}.csv")), "a\n1\n").unwrap();
    }
    let spec = dir.join("s*.csv").display().to_string();
    for size in 1..=7 {
        let mut all: Vec<PathBuf> = (0..size).flat_map(|r| shard_sources(&spec, r, size, false).unwrap()).map(|s| s.path).collect();
        all.dedup(); // a file split among ranks (fewer files than ranks)
        let want: Vec<PathBuf> = (0..5).map(|k| dir.join(format!("s{k}.csv"))).collect();
        assert_eq!(all, want, "{size} ranks");
    }
    let one = shard_sources(&dir.join("s3.csv").display().to_string(), 2, 4, false).unwrap();
    assert_eq!(one[0].part, Some((2, 4)));
    // A glob or a directory that holds one file is that file: every rank reads its part.
    std::fs::create_dir(dir.join("only")).unwrap();
    std::fs::write(dir.join("only/x.csv"), "a\n1\n").unwrap();
    for spec in [dir.join("s3*.csv"), dir.join("only")] {
        for r in 0..3 {
            let got = shard_sources(&spec.display().to_string(), r, 3, false).unwrap();
            assert_eq!(got.len(), 1, "{}", spec.display());
            assert_eq!(got[0].part, Some((r, 3)), "{}", spec.display());
        }
    }
    // Fewer files than ranks (all of one size): each file is split among consecutive ranks.
    let got: Vec<(PathBuf, Option<(usize, usize)>)> = (0..7).map(|r| shard_sources(&spec, r, 7, false).unwrap().remove(0)).map(|s| (s.path, s.part)).collect();
    let s = |k: usize| dir.join(format!("s{k}.csv"));
    assert_eq!(got, [(s(0), None), (s(1), Some((0, 2))), (s(1), Some((1, 2))), (s(2), None), (s(3), Some((0, 2))), (s(3), Some((1, 2))), (s(4), None)]);
    assert_eq!(expand_pattern("p{rank}of{size}_{}.csv", 3, 8), "p3of8_3.csv");
    assert!(shard_sources(&dir.join("nope{rank}.csv").display().to_string(), 1, 2, false).unwrap_err().to_string().contains("rank 1"));
}

#[test]
fn shared_files_are_dealt_out_by_bytes_in_file_order() {
    use super::shards::{assign, Listing, SizedFile};
    let listing =
        |bytes: &[u64]| Listing::Files(bytes.iter().enumerate().map(|(k, &b)| SizedFile { path: PathBuf::from(format!("f{k}")), bytes: b }).collect());
    let names = |l: &Listing, r: usize, n: usize| assign(l, r, n).into_iter().map(|s| (s.path.display().to_string(), s.part)).collect::<Vec<_>>();
    // One big file and three small ones on 4 ranks: the big one is read by all four.
    let l = listing(&[100, 1, 1, 1]);
    assert_eq!(names(&l, 0, 4), [("f0".to_string(), Some((0, 4)))]);
    assert_eq!(names(&l, 3, 4), [("f0".to_string(), Some((3, 4))), ("f1".into(), None), ("f2".into(), None), ("f3".into(), None)]);
    // Any sizes, any rank count: every rank reads something, the ranks' sources in rank order
    // are the files in order (a split file's parts 0..n on consecutive ranks), and no rank
    // reads much more than its share.
    let mut state = 7u64;
    for case in 0..300 {
        let files = 1 + case % 11;
        let bytes: Vec<u64> = (0..files)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                [0, 1, 10, 1000, 1_000_000][(state >> 33) as usize % 5] * (1 + (state >> 40) % 3)
            })
            .collect();
        let l = listing(&bytes);
        let total = bytes.iter().sum::<u64>() as f64;
        for n in 1..=9 {
            let all: Vec<Vec<super::Source>> = (0..n).map(|r| assign(&l, r, n)).collect();
            let mut seen: Vec<(String, usize, usize)> = Vec::new();
            for (r, sources) in all.iter().enumerate() {
                assert!(!sources.is_empty(), "{bytes:?} on {n}: rank {r} reads nothing");
                let read: f64 = sources
                    .iter()
                    .map(|s| {
                        let b = bytes[s.path.display().to_string()[1..].parse::<usize>().unwrap()] as f64;
                        s.part.map_or(b, |(_, k)| b / k as f64)
                    })
                    .sum();
                let biggest_whole =
                    sources.iter().filter(|s| s.part.is_none()).map(|s| bytes[s.path.display().to_string()[1..].parse::<usize>().unwrap()]).max().unwrap_or(0)
                        as f64;
                assert!(read <= 2.0 * total / n as f64 + biggest_whole + 1.0, "{bytes:?} on {n}: rank {r} reads {read} of {total}");
                for s in sources {
                    let (i, k) = s.part.unwrap_or((0, 1));
                    seen.push((s.path.display().to_string(), i, k));
                }
            }
            let want: Vec<String> = (0..files).map(|k| format!("f{k}")).collect();
            let mut got: Vec<String> = Vec::new();
            for (k, (name, i, parts)) in seen.iter().enumerate() {
                if *i == 0 {
                    got.push(name.clone());
                } else {
                    assert_eq!(seen[k - 1], (name.clone(), i - 1, *parts), "{bytes:?} on {n}: parts out of order");
                }
                if i + 1 == *parts {
                    continue;
                }
                assert_eq!(seen.get(k + 1).map(|s| (&s.0, s.1)), Some((name, i + 1)), "{bytes:?} on {n}: a part missing");
            }
            assert_eq!(got, want, "{bytes:?} on {n}");
        }
    }
}

#[test]
fn a_file_that_changes_after_it_was_listed_is_an_error_not_other_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("a.csv"), "x,y\n1,2\n3,4\n").unwrap();
    std::fs::write(dir.join("b.csv"), "x,y\n5,6\n").unwrap();
    for spec in ["*.csv", "a.csv"] {
        let data = Dataset::open(&crate::comm::SingleComm, &DataOptions::new(dir.join(spec).display().to_string())).unwrap();
        assert_eq!(data.for_each_chunk(&mut |_| Ok(())).unwrap().0, if spec == "a.csv" { 2 } else { 3 });
        // Another program appends rows while the job runs.
        std::fs::write(dir.join("a.csv"), "x,y\n1,2\n3,4\n7,8\n").unwrap();
        let err = data.for_each_chunk(&mut |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("rank 0") && err.contains("a.csv") && err.contains("changed while the job read it (12 bytes when listed, 16 now)"), "{err}");
        std::fs::write(dir.join("a.csv"), "x,y\n1,2\n3,4\n").unwrap();
    }
}

#[test]
fn a_listed_file_another_rank_cannot_see_says_why() {
    let src = super::Source { path: PathBuf::from("/nonexistent/node-local/part7.csv"), part: None, bytes: 10 };
    let err = super::shards::seen_as_listed(&src, 3).unwrap_err().to_string();
    assert!(
        err.contains("rank 3")
            && err.contains("part7.csv")
            && err.contains("no such file")
            && err.contains("rank 0 listed it")
            && err.contains("{rank} pattern"),
        "{err}"
    );
    let tmp = tempfile::NamedTempFile::new().unwrap();
    super::shards::seen_as_listed(&super::Source { path: tmp.path().to_path_buf(), part: None, bytes: 0 }, 3).unwrap();
}

#[test]
fn messages_escape_what_a_terminal_would_act_on_or_hide() {
    assert_eq!(crate::io::quote(b"\x1b]0;owned\x07\x1b[2J15"), r"'\u{1b}]0;owned\u{7}\u{1b}[2J15'");
    assert_eq!(crate::io::quote("1\u{a0}5".as_bytes()), r"'1\u{a0}5'");
    assert_eq!(crate::io::quote("\u{feff}15\r".as_bytes()), r"'\u{feff}15\r'");
    assert_eq!(crate::io::quote("a\u{200b}b\tc".as_bytes()), r"'a\u{200b}b\tc'");
    assert_eq!(crate::io::quote("naïve – ok".as_bytes()), "'naïve – ok'");
}

#[test]
fn an_hdf5_dataset_path_is_taken_off_the_spec_only_after_an_hdf5_name() {
    let split = |spec: &str| {
        let o = super::DataOptions::new(spec).split_dataset().unwrap();
        (o.spec, o.dataset)
    };
    assert_eq!(split("runs/*.h5:/sim/T"), ("runs/*.h5".into(), Some("/sim/T".into())));
    assert_eq!(split("run{rank}.HDF5:/x"), ("run{rank}.HDF5".into(), Some("/x".into())));
    assert_eq!(split("odd:/dir/data.csv"), ("odd:/dir/data.csv".into(), None));
    assert_eq!(split("run.h5"), ("run.h5".into(), None));
    let mut o = super::DataOptions::new("run.h5:/a");
    o.dataset = Some("/b".into());
    assert!(o.split_dataset().unwrap_err().to_string().contains("give one"));
    o.dataset = Some("/a".into());
    assert_eq!(o.split_dataset().unwrap().dataset.as_deref(), Some("/a"));
}

#[test]
fn parquet_row_groups_split_by_rows_and_leaves_are_one_group_each() {
    use super::parquet::groups_of;
    // One big row group and five small ones: two ranks get 1000 and 50 rows, not 1020 and 30.
    let rows = [1000, 10, 10, 10, 10, 10];
    assert_eq!((groups_of(Some((0, 2)), &rows), groups_of(Some((1, 2)), &rows)), (0..1, 1..6));
    // Even groups split evenly; every group read once for any part count.
    let even = [100u64; 7];
    for n in 1..=9 {
        let parts: Vec<_> = (0..n).map(|i| groups_of(Some((i, n)), &even)).collect();
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), 7, "{n} parts");
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start) && parts[0].start == 0, "{n}: {parts:?}");
        if n <= 7 {
            assert!(parts.iter().all(|p| p.len() >= 7 / n && p.len() <= 7usize.div_ceil(n)), "{n}: {parts:?}");
        }
    }
    // Part g of G is row group g, whatever the sizes (the --reproducible leaves).
    for (g, _) in rows.iter().enumerate() {
        assert_eq!(groups_of(Some((g, rows.len())), &rows), g..g + 1);
    }
    assert_eq!(groups_of(None, &rows), 0..6);
    assert_eq!(groups_of(Some((0, 2)), &[0, 0, 0]), 0..1, "empty groups: by count");
}

#[test]
fn parquet_rows_are_the_csv_rows_whatever_the_tiles_and_pieces() {
    use super::parquet::{footer, read_sized};
    // Every row of a Parquet file (pyarrow wrote it from the CSV) in the row order, for tiles and
    // pieces that cut row groups and pages anywhere; the CSV parsed here line by line.
    let csv_rows = |path: &str, cols: usize| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().skip(1).map(|l| l.split(',').take(cols).map(String::from).collect()).collect()
    };
    let read_all = |path: &str, numeric: &[usize], text: &[usize], sizes| {
        let foot = footer(std::path::Path::new(path), 0).unwrap();
        let (mut vals, mut fields, mut next) = (Vec::new(), Vec::new(), 0u64);
        read_sized(std::path::Path::new(path), &foot, 0..foot.groups.len(), numeric, text, 0, sizes, &mut |v, t, n, first| {
            assert_eq!((first, v.len(), t.len()), (next, n * numeric.len(), n * text.len()), "pieces follow each other");
            next += n as u64;
            vals.extend_from_slice(v);
            fields.extend_from_slice(t);
            Ok(())
        })
        .unwrap();
        (vals, fields)
    };
    for sizes in [(1024, 1 << 20), (7, 13), (1, 1), (3, 1000)] {
        let want: Vec<f64> = csv_rows("tests/data/nasty/part0.csv", 5).concat().iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(read_all("tests/data/parquet/part0.parquet", &[0, 1, 2, 3, 4], &[], sizes).0, want, "{sizes:?}");
        let gnb = csv_rows("tests/data/gnb/part0.csv", 4);
        let (vals, labels) = read_all("tests/data/parquet_gnb/part0.parquet", &[2, 0], &[3], sizes);
        let want: Vec<f64> = gnb.iter().flat_map(|r| [r[2].parse::<f64>().unwrap(), r[0].parse().unwrap()]).collect();
        assert_eq!((vals, labels), (want, gnb.iter().map(|r| r[3].clone()).collect::<Vec<_>>()), "{sizes:?}");
        // Other types are decoded whole and cut into the tiles (values as pyarrow wrote them).
        let (vals, names) = read_all("tests/data/parquet_bad/types.parquet", &[0, 1, 2, 3], &[4], sizes);
        #[rustfmt::skip]
        let want = [1.0, 1e12, 0.5, 1.0, -2.0, 2.0, 0.25, 0.0, 3.0, 3.0, -1.5, 1.0, -4.0, 4.0, 2.0, 1.0, 5.0, 5.0, 3.0, 0.0, -6.0, 6.0, 4.0, 1.0];
        assert_eq!((vals, names), (want.to_vec(), ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec()), "{sizes:?}");
        // Column b is null on row 5 alone.
        let (vals, _) = read_all("tests/data/parquet_bad/nulls.parquet", &[1], &[], sizes);
        assert_eq!(vals.iter().map(|v| v.is_nan()).collect::<Vec<_>>(), (1..=10).map(|r| r == 5).collect::<Vec<_>>(), "{sizes:?}");
    }
}
