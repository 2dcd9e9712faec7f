//! The per-shard cache of `train --cache DIR` (joblib.Memory's idea for sharded data): each
//! shard's partial statistics, keyed by what they depend on, so a re-run reads only the shards
//! that changed.
//!
//! The key of an entry is a hash of its *context* — the node specs, the trained upstream flow
//! (its JSON), the data options that change what is read, flowmpi's version — and of the
//! shard's identity: resolved path, part of the file, size, modification time, device and inode
//! (with `verify`, also a hash of the file's contents, for file systems whose times cannot be
//! trusted). The entry repeats the context and the identity, so a hash collision is a miss, not
//! a wrong answer. A damaged entry is ignored (and counted), never trusted.

use crate::error::{Error, Result};
use crate::io::Source;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"FLOWMPI-SHARD-PARTIAL 1\n";

/// A cache directory.
#[derive(Debug, Clone)]
pub struct ShardCache {
    /// Where the entries live (created on first store).
    pub dir: PathBuf,
    /// Add a hash of each file's contents to its identity.
    pub verify: bool,
}

/// What is stored for one shard and one group of nodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Rows read from the shard.
    pub rows: u64,
    /// Rows skipped for NaN/inf.
    pub skipped: u64,
    /// Each node's partial statistics ([`crate::nodes::Node::take_partial`]).
    pub parts: Vec<Vec<u8>>,
}

/// A shard's key.
pub struct Key {
    /// Context and identity, as text (stored in the entry and compared on load).
    text: String,
    /// Its hash: the entry's file name.
    hash: u64,
}

/// What a lookup found.
pub enum Lookup {
    /// A valid entry.
    Hit(Entry),
    /// No entry.
    Miss,
    /// An entry that cannot be used (damaged, truncated, or another context under the same
    /// hash): ignored.
    Damaged,
}

/// FNV-1a, 64 bits.
pub fn fnv(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

impl ShardCache {
    /// The key of `src` in `context`.
    pub fn key(&self, context: &str, src: &Source, rank: usize) -> Result<Key> {
        use std::os::unix::fs::MetadataExt;
        let err = |e: std::io::Error| Error::data(rank, src.path.display().to_string(), None, format!("--cache: {e}"));
        let m = std::fs::metadata(&src.path).map_err(err)?;
        let mut text = format!(
            "{context}\n{}\npart {:?}\nsize {} mtime {}.{:09} dev {} ino {}",
            crate::io::resolve_path(&src.path).display(),
            src.part,
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.dev(),
            m.ino()
        );
        if self.verify {
            let bytes = std::fs::read(&src.path).map_err(err)?;
            text.push_str(&format!("\ncontent {:016x}", fnv(&bytes, 0xcbf29ce484222325)));
        }
        Ok(Key { hash: fnv(text.as_bytes(), 0xcbf29ce484222325), text })
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{:016x}.partial", key.hash))
    }

    /// Look `key` up.
    pub fn load(&self, key: &Key) -> Lookup {
        let Ok(bytes) = std::fs::read(self.path(key)) else { return Lookup::Miss };
        let decoded = bytes
            .strip_prefix(MAGIC)
            .and_then(|rest| bincode::deserialize::<(String, Entry)>(rest).ok());
        match decoded {
            Some((text, entry)) if text == key.text => Lookup::Hit(entry),
            _ => Lookup::Damaged,
        }
    }

    /// Store `entry` under `key` (atomically: a reader never sees half an entry).
    pub fn store(&self, key: &Key, entry: &Entry, rank: usize) -> Result<()> {
        let path = self.path(key);
        let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend(bincode::serialize(&(&key.text, entry)).expect("entry encodes"));
        crate::io::write_atomic(&path, &bytes, rank)
    }

    /// The directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
