//! What the commands print on standard output: a reader that goes away (`| head -n1`) ends
//! every command quietly, with the status SIGPIPE gives (141), and no panic.

mod common;
use common::*;
use std::process::{Command, Stdio};

/// `flowmpi args` (one rank) with its stdout a pipe whose reader is already gone: the exit code
/// and stderr.
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start flowmpi");
    // Only the child holds the pipe's write end now: its first write fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let dir = scratch("closed-pipe");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    single(&["train", "--data", "data/example", "--flow", "moments | covariance | pca(n=3)", "--model", m], &[]).ok();
    let reg = dir.join("reg.json");
    single(&["train", "--data", "tests/data/reg", "--flow", "linreg(target=y0)", "--model", reg.to_str().unwrap()], &[]).ok();
    for args in [
        vec!["inspect", m],
        vec!["inspect", "--full", m],
        vec!["inspect", "--json", m],
        vec!["stats", "--data", "data/example"],
        vec!["stats", "--json", "--data", "data/example"],
        vec!["stats", "--hist", "--data", "data/example"],
        vec!["score", "--model", reg.to_str().unwrap(), "--data", "tests/data/reg"],
    ] {
        let (code, stderr) = with_closed_stdout(&args);
        assert_eq!(code, 141, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{args:?}: {stderr}");
    }
}
