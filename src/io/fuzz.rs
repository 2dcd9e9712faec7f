//! Randomised tests of the shard readers.

//! Random and mutated inputs for the CSV and NPY readers, a fixed number of cases so CI runs
//! them every time: reading must end in rows or in an error, never in a panic, and must not
//! allocate beyond a small multiple of the file (a header's claims are not trusted).
use super::*;

/// xorshift64*: reproducible cases without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn read_all(path: &Path, opts: &DataOptions) -> Result<u64> {
    let data = Dataset::open(&crate::comm::SingleComm, opts)?;
    let mut n = 0u64;
    data.for_each_chunk(&mut |c| {
        n += c.rows() as u64;
        assert!(c.x.iter().all(|v| v.is_finite()), "{}: a non-finite value reached a node", path.display());
        Ok(())
    })?;
    Ok(n)
}

fn seeds() -> Vec<Vec<u8>> {
    let mut npy = Vec::new();
    let mut w = npy::NpyWriter::create(tempfile::tempfile().unwrap(), 3).unwrap();
    w.write_rows(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    drop(w);
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    npy.extend_from_slice(b"\x93NUMPY\x01\x00");
    npy.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
    npy.extend_from_slice(dict.as_bytes());
    npy.push(b'\n');
    for v in [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0] {
        npy.extend_from_slice(&v.to_le_bytes());
    }
    vec![b"a,b,c\n1,2,3\n4.5,-6e3,\"7\"\n# c\n\n8,NA,9\r\n".to_vec(), b"\xef\xbb\xbf1;2\n3;4\n".to_vec(), b"x,label\n1,cat\n2,\"dog, big\"\n".to_vec(), npy]
}

#[test]
fn readers_survive_random_and_mutated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let seeds = seeds();
    for case in 0..1500 {
        let mut bytes = seeds[case % seeds.len()].clone();
        match rng.below(3) {
            // Flip, insert and delete bytes.
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
                        1 => bytes.insert(at, b",;\n\"#.-e0123456789NA\xff\x00"[rng.below(21)]),
                        _ if !bytes.is_empty() => {
                            bytes.remove(at);
                        }
                        _ => {}
                    }
                }
            }
            // Truncate.
            1 => bytes.truncate(rng.below(bytes.len() + 1)),
            // Random bytes.
            _ => bytes = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        }
        let ext = if case % seeds.len() == 3 { "npy" } else { "csv" };
        let path = dir.path().join(format!("f{case}.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        for (label, nan) in [(None, NanPolicy::Error), (Some("1".to_string()), NanPolicy::Skip)] {
            let mut opts = DataOptions::new(path.display().to_string());
            opts.block_bytes = 16 + rng.below(64);
            opts.threads = 1 + rng.below(3);
            opts.nan = nan;
            if ext == "csv" {
                opts.delimiter = Some(if case % seeds.len() == 1 { b';' } else { b',' });
                opts.label = label;
            }
            let got = std::panic::catch_unwind(|| read_all(&path, &opts));
            let res = got.unwrap_or_else(|_| panic!("case {case}: the reader panicked on {bytes:?}"));
            if let Err(e) = res {
                // Every error is a sentence, not a dump of the input.
                assert!(e.to_string().len() < 1000, "case {case}: {e}");
            }
        }
    }
}
