//! Checks on where a job writes, made before any work (collective, so every rank stops alike):
//! the directory exists, no two ranks write one file, no output is an input file or another
//! output, also under another name (a hard link, on the same host).

use super::{expand_pattern, resolve_path, same_file, Dataset};
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Collective: fail early (before hours of training) when rank 0 could not write `path`.
pub fn check_output_dir(comm: &dyn Comm, path: &Path, what: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty() && comm.rank() == 0);
    let local = match dir {
        Some(dir) if !dir.is_dir() => {
            Err(Error::Output { rank: comm.rank(), path: path.display().to_string(), msg: format!("the {what} directory {} does not exist", dir.display()) })
        }
        _ => Ok(()),
    };
    agree(comm, local)
}

/// Collective: refuse a file that rank 0 alone writes (`flag`: the model, a checkpoint) when it
/// is one of any rank's input files, also under another name (a hard link).
pub fn check_not_an_input(comm: &dyn Comm, flag: &str, out: &Path, data: &Dataset) -> Result<()> {
    let local = match data.sources.iter().find(|s| same_file(&s.path, out)) {
        Some(s) => Err(Error::Param(format!(
            "{flag} {}: that is the input file {} that rank {} reads; write it elsewhere",
            out.display(),
            s.path.display(),
            comm.rank()
        ))),
        None => Ok(()),
    };
    agree(comm, local)
}

/// This rank's file of the output pattern `pattern` (option `flag`), which needs a {rank} when
/// there are several ranks.
pub fn rank_path(comm: &dyn Comm, flag: &str, pattern: &str) -> Result<PathBuf> {
    if comm.size() > 1 && !pattern.contains("{rank}") && !pattern.contains("{}") {
        return Err(Error::Param(format!("{flag} {pattern:?} has no {{rank}}: with {} ranks every rank would write the same file", comm.size())));
    }
    Ok(PathBuf::from(expand_pattern(pattern, comm.rank(), comm.size())))
}

/// Refuse an output `out` (of option `flag`) that two ranks share, that is `other` (what, path)
/// or that is an input file, also under another name (collective).
pub fn check_output_paths(comm: &dyn Comm, flag: &str, out: &Path, other: Option<(&str, &Path)>, data: &Dataset) -> Result<()> {
    let mine = resolve_path(out);
    let outs: Vec<PathBuf> =
        comm.allgather_bytes(mine.as_os_str().as_encoded_bytes()).into_iter().map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned())).collect();
    // The same file under another name (a hard link) has the same host, device and inode.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let id = |p: &Path| -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| format!("{}\0{}\0{}", host.trim(), m.dev(), m.ino()))
    };
    let out_ids: Vec<Vec<u8>> = comm.allgather_bytes(id(out).unwrap_or_default().as_bytes());
    let same_file = |p: &Path| id(p).and_then(|i| out_ids.iter().position(|o| *o == i.as_bytes()));
    let rank = comm.rank();
    let clash = |what: String| Err(Error::Param(format!("{flag}: {what}; give every rank its own file, e.g. 'out/part{{rank}}.csv'")));
    let local = (|| {
        if let Some(r) = outs[..rank].iter().position(|o| *o == mine).or_else(|| {
            let me = &out_ids[rank];
            (!me.is_empty()).then(|| out_ids[..rank].iter().position(|o| o == me)).flatten()
        }) {
            return clash(format!("ranks {r} and {rank} would both write {}", mine.display()));
        }
        if let Some((what, path)) = other {
            if let Some(r) = (mine == resolve_path(path)).then_some(rank).or_else(|| same_file(path)) {
                return clash(format!("rank {r} would overwrite {what} {}", path.display()));
            }
        }
        for s in &data.sources {
            let input = resolve_path(&s.path);
            if let Some(r) = outs.iter().position(|o| *o == input).or_else(|| same_file(&s.path)) {
                return clash(format!("rank {r} would overwrite the input file {} that rank {rank} reads", s.path.display()));
            }
        }
        Ok(())
    })();
    agree(comm, local)
}
