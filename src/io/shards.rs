//! Which files (or parts of a file) each rank reads: `{rank}` patterns, globs and directories
//! dealt out in order by bytes, and one file split among the ranks.

use super::compressed::Codec;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One piece of input a rank reads: a whole file, or part `i` of `n` of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// `Some((i, n))` when the file is split among `n` ranks and this is part `i`.
    pub part: Option<(usize, usize)>,
    /// The file's size when it was listed: the parts were cut from it, and reading checks it.
    pub bytes: u64,
}

const DATA_EXTENSIONS: [&str; 9] = ["csv", "tsv", "txt", "npy", "parquet", "pq", "h5", "hdf5", "he5"];

/// Substitute `{rank}`, `{}` and `{size}` in a pattern.
pub fn expand_pattern(spec: &str, rank: usize, size: usize) -> String {
    spec.replace("{rank}", &rank.to_string()).replace("{}", &rank.to_string()).replace("{size}", &size.to_string())
}

/// Why `path` cannot be read as a shard, if it cannot: it does not exist, or it is not a regular
/// file after following symlinks (a directory, a FIFO, a dangling or looping symlink, ...).
pub fn not_a_shard(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let link = std::fs::symlink_metadata(path);
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("is a directory, not a data file".into()),
        Ok(m) if m.file_type().is_fifo() => Some("is a FIFO (named pipe), not a data file".into()),
        Ok(m) if m.file_type().is_socket() => Some("is a socket, not a data file".into()),
        Ok(_) => Some("is a device, not a data file".into()),
        Err(e) if e.raw_os_error() == Some(40) => Some("is a symlink loop (ELOOP)".into()),
        Err(_) if link.as_ref().is_ok_and(|l| l.file_type().is_symlink()) => {
            let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            Some(format!("is a symlink to {to:?}, which does not exist"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file or directory".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// For a `{rank}` pattern: the files that match it for ranks `size, size+1, ...`, which a job of
/// `size` ranks would silently leave unread (found with a glob, so `part7` counts even when
/// `part4..6` are absent).
fn unread_rank_files(spec: &str, size: usize) -> Vec<(usize, PathBuf)> {
    let spec = spec.replace("{size}", &size.to_string()).replace("{}", "{rank}");
    let literal: Vec<String> = spec.split("{rank}").map(glob::Pattern::escape).collect();
    let Ok(paths) = glob::glob(&literal.join("[0-9]*")) else { return Vec::new() };
    let prefix = spec.split("{rank}").next().unwrap_or("");
    let mut out: Vec<(usize, PathBuf)> = paths
        .flatten()
        .filter_map(|p| {
            let text = p.to_str()?;
            let digits: String = text.strip_prefix(prefix)?.chars().take_while(char::is_ascii_digit).collect();
            let k = digits.parse::<usize>().ok()?;
            // Exactly the pattern's expansion for rank k (every `{rank}` agrees, no leading zeros).
            (k >= size && spec.replace("{rank}", &k.to_string()) == text).then_some((k, p))
        })
        .collect();
    out.sort();
    out
}

/// The sources rank `rank` of `size` reads for `spec`: [`list`], then [`assign`]. Local; a
/// job lists shared files on one rank and sends the listing to all ([`crate::io::Dataset::open`]).
pub fn shard_sources(spec: &str, rank: usize, size: usize, allow_unread: bool) -> Result<Vec<Source>> {
    Ok(assign(&list(spec, rank, size, allow_unread)?, rank, size))
}

/// Whether `spec` names one file per rank (`{rank}` or `{}`): each rank lists its own.
pub fn per_rank(spec: &str) -> bool {
    spec.contains("{rank}") || spec.contains("{}")
}

/// What a `--data` spec names. Paths travel between ranks as bytes: a file name need not be
/// UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Listing {
    /// A `{rank}` pattern: this rank's file.
    PerRank(SizedFile),
    /// A glob or a directory: its files in name order.
    Files(Vec<SizedFile>),
    /// One file, which the ranks split among themselves.
    One(SizedFile),
}

/// A file of a [`Listing`] and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizedFile {
    /// The file.
    #[serde(with = "path_bytes")]
    pub path: PathBuf,
    /// Its size in bytes when listed.
    pub bytes: u64,
}

mod path_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(p.as_os_str().as_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Ok(PathBuf::from(std::ffi::OsString::from_vec(Vec::<u8>::deserialize(d)?)))
    }
}

/// What `spec` names for rank `rank` of `size`. With `allow_unread` false, a `{rank}` pattern
/// that also matches files for ranks beyond the last is an error (those files would silently
/// not be read).
pub fn list(spec: &str, rank: usize, size: usize, allow_unread: bool) -> Result<Listing> {
    let spec_x = expand_pattern(spec, rank, size);
    let bad = |p: &Path, why: String| Error::data(rank, p.display().to_string(), None, why);
    if per_rank(spec) {
        let p = PathBuf::from(&spec_x);
        if let Some(why) = not_a_shard(&p) {
            return Err(bad(&p, why));
        }
        let unread = if allow_unread { Vec::new() } else { unread_rank_files(spec, size) };
        if let Some((_, first)) = unread.first() {
            let top = unread.iter().map(|(k, _)| *k).max().unwrap_or(0);
            return Err(Error::Param(format!(
                "--data {spec:?} also matches {} file(s) for ranks {size} and above ({}{}), which a job of {size} rank(s) \
                 would not read: run with `mpirun -n {}`, give a glob (e.g. {:?}) to share the files among the ranks, \
                 or pass --allow-unread to read only the first {size}",
                unread.len(),
                first.display(),
                if unread.len() > 1 { ", ..." } else { "" },
                top + 1,
                spec.replace("{rank}", "*").replace("{}", "*"),
            )));
        }
        return Ok(Listing::PerRank(sized(p, rank)?));
    }
    let files: Vec<PathBuf> = if spec_x.contains(['*', '?', '[']) {
        let paths = glob::glob(&spec_x).map_err(|e| Error::Param(format!("bad glob {spec_x:?}: {e}")))?;
        let mut v = Vec::new();
        for p in paths {
            let p = p.map_err(|e| bad(e.path(), format!("cannot be read: {}", e.error())))?;
            if let Some(why) = not_a_shard(&p) {
                return Err(bad(&p, format!("{why} (it matches --data {spec_x:?})")));
            }
            v.push(p);
        }
        if v.is_empty() {
            return Err(Error::data(rank, spec_x, None, "no files match this pattern"));
        }
        v.sort();
        v
    } else {
        let p = PathBuf::from(&spec_x);
        if p.is_dir() {
            let rd = std::fs::read_dir(&p).map_err(|e| Error::data(rank, &spec_x, None, e.to_string()))?;
            let mut v: Vec<PathBuf> = Vec::new();
            for e in rd {
                let e = e.map_err(|e| Error::data(rank, &spec_x, None, e.to_string()))?;
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                // Hidden entries (editor swap files, our own temporaries) are not data.
                if name.starts_with('.') {
                    continue;
                }
                let data_ext = super::compressed::inner(&path)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
                match not_a_shard(&path) {
                    None if data_ext => v.push(path),
                    // Other regular files (README, notes) are not shards.
                    None => {}
                    Some(why) if path.is_dir() => {
                        return Err(bad(
                            &path,
                            format!(
                                "{why}; directory mode reads the .csv/.tsv/.txt/.npy/.parquet files (and .csv.gz, .csv.zst) of {spec_x} and does not descend \
                             into sub-directories (give a glob such as '{spec_x}/*/*.csv', or move the entry)"
                            ),
                        ))
                    }
                    Some(why) => return Err(bad(&path, format!("{why}; in --data {spec_x} every entry must be readable (remove or fix it)"))),
                }
            }
            if v.is_empty() {
                return Err(Error::data(rank, spec_x, None, "directory holds no .csv/.tsv/.txt/.npy/.parquet files (nor .csv.gz, .csv.zst)"));
            }
            v.sort();
            v
        } else if let Some(why) = not_a_shard(&p) {
            return Err(bad(&p, why));
        } else {
            return Ok(Listing::One(sized(p, rank)?));
        }
    };
    Ok(Listing::Files(files.into_iter().map(|p| sized(p, rank)).collect::<Result<_>>()?))
}

fn sized(path: PathBuf, rank: usize) -> Result<SizedFile> {
    let bytes = std::fs::metadata(&path).map_err(|e| Error::data(rank, path.display().to_string(), None, format!("cannot be read: {e}")))?.len();
    Ok(SizedFile { path, bytes })
}

/// Stop when a file rank 0 listed is not there for this rank: most likely the ranks do not
/// share one file system (node-local scratch), which wants a `{rank}` pattern.
pub fn seen_as_listed(src: &Source, rank: usize) -> Result<()> {
    match not_a_shard(&src.path) {
        None => Ok(()),
        Some(why) => Err(Error::data(
            rank,
            src.path.display().to_string(),
            None,
            format!("{why}, though rank 0 listed it: do all nodes see the same file system? (files on each node's own disk want a {{rank}} pattern)"),
        )),
    }
}

/// Stop when `src`'s file no longer has the size it was listed with: a file that grows or
/// shrinks while the job reads it gives rows no rank agreed on (ranks splitting it cut it at
/// other places), read twice or not at all.
pub fn unchanged(src: &Source, rank: usize) -> Result<()> {
    match std::fs::metadata(&src.path).map(|m| m.len()) {
        Ok(now) if now == src.bytes => Ok(()),
        now => Err(Error::data(
            rank,
            src.path.display().to_string(),
            None,
            format!(
                "changed while the job read it ({} bytes when listed, {} now): its rows would be read twice or not at all; train on files that are complete",
                src.bytes,
                now.map_or_else(|e| e.to_string(), |n| n.to_string())
            ),
        )),
    }
}

/// Rank `rank`'s sources of `size`, in file order. Shared files are dealt out by bytes: the
/// files' bytes, one after the other, are cut into `size` equal stretches. A file holding the
/// middle byte of several stretches is split among those ranks (a part each); every other
/// file goes whole to the rank whose stretch holds its own middle byte. So ranks read about
/// equal bytes, none idles while a big file is read by one, and the ranks' sources follow
/// each other in file order, which keeps the global row order whatever the rank count.
pub fn assign(listing: &Listing, rank: usize, size: usize) -> Vec<Source> {
    let files = match listing {
        Listing::PerRank(f) => return vec![Source { path: f.path.clone(), part: None, bytes: f.bytes }],
        // A compressed file cannot be cut: rank 0 reads it whole.
        Listing::One(f) if Codec::of(&f.path).is_some() => {
            return if rank == 0 { vec![Source { path: f.path.clone(), part: None, bytes: f.bytes }] } else { Vec::new() };
        }
        Listing::One(f) => return vec![Source { path: f.path.clone(), part: Some((rank, size)), bytes: f.bytes }],
        Listing::Files(files) => files,
    };
    // Empty files weigh nothing; when all are empty, count files instead.
    let weigh_files = files.iter().all(|f| f.bytes == 0);
    let weight = |bytes: u64| if weigh_files { 1 } else { bytes as u128 };
    let total: u128 = files.iter().map(|f| weight(f.bytes)).sum();
    let (ranks, mut start, mut out) = (size as u128, 0u128, Vec::new());
    for SizedFile { path, bytes } in files {
        let end = start + weight(*bytes);
        // The ranks whose stretch's middle, (r + ½)·total/size, lies in [start, end): the
        // first r with (2r + 1)·total ≥ 2·start·size, up to the first one at or past `end`.
        let from = |at: u128| (2 * at * ranks).saturating_sub(total).div_ceil(2 * total).min(ranks);
        let (first, past) = (from(start), from(end));
        let owners = past - first;
        // A compressed file cannot be cut: it goes whole to the rank holding its middle.
        let owners = if Codec::of(path).is_some() { 0 } else { owners };
        let mine = match owners {
            0 => ((start + end) * ranks / (2 * total)).min(ranks - 1) == rank as u128,
            _ => (first..past).contains(&(rank as u128)),
        };
        if mine {
            let part = (owners > 1).then(|| ((rank as u128 - first) as usize, owners as usize));
            out.push(Source { path: path.clone(), part, bytes: *bytes });
        }
        start = end;
    }
    out
}
