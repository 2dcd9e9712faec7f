//! Helpers for the multi-process tests: run the real binary under `mpirun -n N` with a timeout,
//! read model files and compare against the numpy references in tests/expected.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_flowmpi");
/// No test may hang: every launch is killed after this many seconds.
pub const TIMEOUT_S: u32 = 120;

/// Result of one launch.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

fn mpi_env(c: &mut Command) -> PathBuf {
    // Tests launch mpirun concurrently; Open MPI 4.1 races on creating its shared session
    // directory under /tmp ("mkdir ... File exists"), so every launch gets its own base.
    static LAUNCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = LAUNCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("flowmpi-ompi-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&base).expect("session directory base");
    c.env("OMPI_MCA_orte_tmpdir_base", &base).env("TMPDIR", &base);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        // Containers often forbid the cross-memory-attach single copy; plain shared memory works.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("OPENBLAS_NUM_THREADS", "1");
    base
}

/// `mpirun -n n flowmpi args...` with a hard timeout (exit code 124 = hung).
pub fn mpirun(n: usize, args: &[&str]) -> Run {
    mpirun_with(n, args, &[])
}

/// [`mpirun`] with extra environment variables (every rank inherits them).
pub fn mpirun_with(n: usize, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", &TIMEOUT_S.to_string(), "mpirun", "--oversubscribe", "-n", &n.to_string(), BIN]);
    c.args(args);
    let base = mpi_env(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = Run::from(c.output().expect("cannot start timeout/mpirun: is Open MPI installed?"));
    let _ = std::fs::remove_dir_all(base);
    assert_ne!(r.code, 137, "mpirun -n {n} {args:?} hung and was killed after {TIMEOUT_S} s\n{}", r.stderr);
    r
}

/// `mpirun -n n flowmpi args...` started in the background (stderr piped), for tests that
/// signal the job while it runs. The caller waits for it.
pub fn mpirun_spawn(n: usize, args: &[&str]) -> std::process::Child {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-n", &n.to_string(), BIN]).args(args).stderr(std::process::Stdio::piped());
    mpi_env(&mut c);
    c.spawn().expect("cannot start mpirun: is Open MPI installed?")
}

/// The rank processes (by rank) whose command line contains `marker` (a unique path): Open MPI
/// puts each one's rank in its environment.
pub fn rank_pids(marker: &str) -> Vec<(usize, i32)> {
    let out = Command::new("pgrep").args(["-f", &format!("^{BIN} .*{marker}")]).output().unwrap();
    let mut ranks: Vec<(usize, i32)> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| {
            let pid: i32 = p.parse().ok()?;
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let rank = env.split(|b| *b == 0).find_map(|v| v.strip_prefix(b"OMPI_COMM_WORLD_RANK="))?;
            Some((std::str::from_utf8(rank).ok()?.parse().ok()?, pid))
        })
        .collect();
    ranks.sort();
    ranks
}

/// Send `sig` to process `pid`.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a vanished pid only returns ESRCH.
    unsafe { libc::kill(pid, sig) };
}

/// Wait for `child` at most `limit`; None when it is still running then (it is killed).
pub fn wait_at_most(child: &mut std::process::Child, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The binary alone (one rank, MPI singleton), with a timeout.
pub fn single(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", &TIMEOUT_S.to_string(), BIN]);
    c.args(args);
    let base = mpi_env(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = Run::from(c.output().expect("cannot start flowmpi"));
    let _ = std::fs::remove_dir_all(base);
    assert_ne!(r.code, 137, "flowmpi {args:?} hung\n{}", r.stderr);
    r
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("flowmpi-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// A test's scratch directory: removed when the test passes (some hold a gigabyte, and repeated
/// runs filled /tmp), kept when it fails, to look at.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

pub fn expected(name: &str) -> Value {
    read_json(Path::new(&format!("tests/expected/{name}.json")))
}

/// Flatten numbers / nested arrays of numbers.
pub fn nums(v: &Value) -> Vec<f64> {
    match v {
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Array(a) => a.iter().flat_map(nums).collect(),
        Value::Null => vec![f64::NAN],
        other => panic!("not numeric: {other}"),
    }
}

/// Every entry within `rel` of the reference, relative to the largest reference magnitude.
pub fn assert_close(what: &str, got: &Value, want: &Value, rel: f64) {
    let (g, w) = (nums(got), nums(want));
    assert_eq!(g.len(), w.len(), "{what}: length {} vs {}", g.len(), w.len());
    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= rel * scale, "{what}[{i}]: got {a:e}, want {b:e} (rel {rel:e} of {scale:e})");
    }
}

/// The model hashes rank 0 logs with -v; asserts every rank printed the same one.
pub fn assert_same_hash_on_all_ranks(r: &Run, n: usize) {
    let hashes: Vec<&str> = r.stderr.lines().filter(|l| l.contains("model hash")).map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(hashes.len(), n, "expected {n} hashes in\n{}", r.stderr);
    assert!(hashes.iter().all(|h| *h == hashes[0]), "ranks hold different models: {hashes:?}");
}

/// Node `i` of a model file.
pub fn node(model: &Value, i: usize) -> &Value {
    &model["nodes"][i]
}

/// Read a CSV written by `execute` (header + numbers).
pub fn read_out_csv(p: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// `mpirun -n n flowmpi -v train ...` into `dir/m<n>.json`; checks every rank holds the same
/// model and returns the model file.
pub fn train_model(n: usize, data: &str, flow: &str, extra: &[&str], dir: &Path) -> Value {
    let model = dir.join(format!("m{n}.json"));
    let mut args = vec!["-v", "train", "--data", data, "--flow", flow, "--model", model.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = mpirun(n, &args);
    r.ok();
    assert_same_hash_on_all_ranks(&r, n);
    read_json(&model)
}

/// The one `flowmpi: error:` line of a failed run, checked to contain every string of `must`.
pub fn one_error(r: &Run, must: &[&str]) -> String {
    assert_ne!(r.code, 0, "expected a failure\n{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("flowmpi: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error message expected:\n{}", r.stderr);
    for m in must {
        assert!(errors[0].contains(m), "message {:?} lacks {m:?}", errors[0]);
    }
    errors[0].to_string()
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The start of an NPY v1 file whose header is the dict literal `dict`, padded as numpy pads it.
pub fn npy_header(dict: &str) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes
}

/// A `rows × cols` NPY file of hashed uniform values in [0, 1).
pub fn write_npy(path: &Path, rows: usize, cols: usize) {
    let mut bytes = npy_header(&format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"));
    let mut state = 0x2545F4914F6CDD1Du64;
    for _ in 0..rows * cols {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend(((state >> 11) as f64 / (1u64 << 53) as f64).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// A scratch directory `name` with `rows` × 8 NPY data `x.npy`, and the k-means `flow` trained
/// on it undisturbed by `ranks` ranks (its node), which must run all `max_iter` iterations so
/// that a fault can come while it trains.
pub fn kmeans_reference(name: &str, rows: usize, ranks: usize, flow: &str, max_iter: u64) -> (Scratch, PathBuf, Value) {
    let dir = scratch(name);
    let data = dir.join("x.npy");
    write_npy(&data, rows, 8);
    let full = dir.join("full.json");
    mpirun(ranks, &["train", "--data", data.to_str().unwrap(), "--flow", flow, "--model", full.to_str().unwrap()]).ok();
    let want = node(&read_json(&full), 0).clone();
    assert_eq!(want["n_iter"], max_iter, "the run must not converge before the faults can come");
    (dir, data, want)
}

/// Two models of the same flow agree to round-off, each array to a bound from its conditioning:
/// an array's entries within `rel` of its largest magnitude (the norm-wise error a change of
/// summation order or BLAS kernel makes), and eigenvectors (`components` beside `eigenvalues`)
/// within `rel · λmax / gap`: by Davis–Kahan a perturbation of size ε·λmax moves the k-th
/// eigenvector by about ε·λmax over the distance from λk to the nearest other eigenvalue, which
/// is large for nearly repeated or tiny eigenvalues of a matrix with a large norm.
pub fn assert_models_agree(what: &str, got: &Value, want: &Value, rel: f64) {
    let (g, w) = (got["nodes"].as_array().expect("nodes"), want["nodes"].as_array().expect("nodes"));
    assert_eq!(g.len(), w.len(), "{what}: node count");
    for (i, (a, b)) in g.iter().zip(w).enumerate() {
        for (key, wv) in b.as_object().expect("a node is an object") {
            let gv = &a[key];
            if let Value::Object(_) = wv {
                // Nested statistics (moments' table, per-class blocks): compare as a node.
                let wrap = |v: &Value| serde_json::json!({ "nodes": [v] });
                assert_models_agree(&format!("{what} node {i}.{key}"), &wrap(gv), &wrap(wv), rel);
                continue;
            }
            if !is_numeric(wv) {
                assert_eq!(gv, wv, "{what} node {i}.{key}");
                continue;
            }
            let scale = if key == "components" { eigenvector_scale(b) } else { 1.0 };
            assert_close(&format!("{what} node {i}.{key}"), gv, wv, rel * scale);
        }
    }
}

fn is_numeric(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::Array(a) => !a.is_empty() && a.iter().all(is_numeric),
        _ => false,
    }
}

/// λmax over the smallest gap between a kept eigenvalue (the first `components.len()`) and any
/// other: how much an eigenvector may move per unit of norm-wise perturbation.
fn eigenvector_scale(node: &Value) -> f64 {
    let kept = node["components"].as_array().map_or(0, Vec::len);
    let lambda = match node.get("eigenvalues") {
        Some(v) if is_numeric(v) => nums(v),
        _ => return 1.0,
    };
    let top = lambda.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut gap = f64::INFINITY;
    for k in 0..kept.min(lambda.len()) {
        for (j, l) in lambda.iter().enumerate() {
            if j != k {
                gap = gap.min((lambda[k] - l).abs());
            }
        }
    }
    if gap.is_finite() && gap > 0.0 {
        (top / gap).max(1.0)
    } else {
        1.0
    }
}

/// Asserts a `moments | covariance` model of tests/data/nasty's rows (mean 1e8, std 1e-2..10)
/// against numpy's reference: every covariance within 1e-8 of its scale sqrt(var_i var_j) (a
/// change of summation order moves it by about that times the rounding of the shifted sums),
/// the variances within 1e-8 relative, the mean within 1e-15 of its magnitude.
pub fn assert_nasty_model(what: &str, m: &Value) {
    let want = expected("nasty");
    let var: Vec<f64> = nums(&want["variance"]);
    let d = var.len();
    assert_eq!(m["training_rows"], 1002, "{what}");
    let (cov, wcov) = (nums(&node(m, 1)["covariance"]), nums(&want["covariance"]));
    for i in 0..d {
        for j in 0..d {
            let s = (var[i] * var[j]).sqrt();
            let (a, b) = (cov[i * d + j], wcov[i * d + j]);
            assert!((a - b).abs() <= 1e-8 * s, "{what}: cov[{i}][{j}] {a:e} vs {b:e}");
        }
    }
    let v = nums(&node(m, 0)["moments"]["variance"]);
    for j in 0..d {
        assert!((v[j] - var[j]).abs() <= 1e-8 * var[j], "{what}: variance[{j}] {} vs {}", v[j], var[j]);
    }
    assert_close(&format!("{what}: mean"), &node(m, 1)["mean"], &want["mean"], 1e-15);
}
