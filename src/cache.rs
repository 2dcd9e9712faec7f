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
use crate::io::{Dataset, Source};
use crate::nodes::Node;
use std::path::{Path, PathBuf};

/// Version 2 ends with a checksum of everything before it (version 1 entries had none: one
/// changed byte could pass for other numbers). Entries of version 1 are damaged to this build,
/// so they are read again and rewritten.
const MAGIC: &[u8] = b"FLOWMPI-SHARD-PARTIAL 2\n";
/// Seed of FNV-1a 64.
const FNV_SEED: u64 = 0xcbf29ce484222325;

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
            text.push_str(&format!("\ncontent {:016x}", fnv(&bytes, FNV_SEED)));
        }
        Ok(Key { hash: fnv(text.as_bytes(), FNV_SEED), text })
    }

    /// The file of `key`'s entry.
    pub fn entry_path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{:016x}.partial", key.hash))
    }

    /// Look `key` up. The checksum is checked before anything is decoded, so a damaged length
    /// cannot make the decoder allocate what it says either.
    pub fn load(&self, key: &Key) -> Lookup {
        let Ok(bytes) = std::fs::read(self.entry_path(key)) else { return Lookup::Miss };
        let decoded = bytes
            .split_last_chunk::<8>()
            .filter(|(body, sum)| fnv(body, FNV_SEED) == u64::from_le_bytes(**sum))
            .and_then(|(body, _)| body.strip_prefix(MAGIC))
            .and_then(|rest| bincode::deserialize::<(String, Entry)>(rest).ok());
        match decoded {
            Some((text, entry)) if text == key.text => Lookup::Hit(entry),
            _ => Lookup::Damaged,
        }
    }

    /// Store `entry` under `key` (atomically: a reader never sees half an entry).
    pub fn store(&self, key: &Key, entry: &Entry, rank: usize) -> Result<()> {
        let path = self.entry_path(key);
        let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend(bincode::serialize(&(&key.text, entry)).expect("entry encodes"));
        let sum = fnv(&bytes, FNV_SEED);
        bytes.extend(sum.to_le_bytes());
        crate::io::write_atomic(&path, &bytes, rank)
    }

    /// The directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What a group's cached partials depend on besides the shard: flowmpi's version, the nodes
/// (their specs, and their recorded parameters: a user node's `spec()` may leave one out),
/// the trained flow before them, and the options that change what is read.
pub fn context(done: &[Box<dyn Node>], group: &[Box<dyn Node>], data: &Dataset) -> String {
    let upstream = serde_json::to_vec(&done.iter().map(|n| n.to_json()).collect::<Vec<_>>()).expect("json");
    let params = serde_json::to_vec(&group.iter().map(|n| n.to_json()).collect::<Vec<_>>()).expect("json");
    let mut opts = serde_json::to_value(&data.opts).expect("options serialise");
    if let Some(o) = opts.as_object_mut() {
        o.remove("spec"); // the shard's identity is its file, however the glob was written
    }
    format!(
        "flowmpi {}\nnodes {} ({:016x})\nupstream {:016x}\ncolumns {:?} targets {:?} label {:?}\noptions {opts} nan {:?}",
        env!("CARGO_PKG_VERSION"),
        group.iter().map(|n| n.spec()).collect::<Vec<_>>().join(" | "),
        crate::cache::fnv(&params, FNV_SEED),
        crate::cache::fnv(&upstream, FNV_SEED),
        data.columns,
        data.targets,
        data.label,
        data.opts.nan
    )
}

#[cfg(test)]
mod tests {
    use crate::io::{DataOptions, Dataset, Schema};
    use crate::nodes::define::{Defined, Kind, NodeParams};
    use crate::nodes::moments::{Moments, MomentsModel};
    use crate::nodes::{Node, NodeSpec};
    use crate::stats::Scatter;
    use serde::{Deserialize, Serialize};

    /// A user node whose `spec()` leaves its parameter out.
    #[derive(Clone, Serialize, Deserialize)]
    struct Forgetful {
        scale: f64,
    }

    impl NodeParams for Forgetful {
        const KIND: Kind = Kind::new("forgetful", &["scale"], "forgetful(scale=1): a spec without its parameter");
        type Partial = Scatter;
        type Model = MomentsModel;
        fn from_spec(_: &NodeSpec) -> crate::Result<Self> {
            Ok(Forgetful { scale: 1.0 })
        }
        fn spec(&self) -> String {
            "forgetful".into()
        }
        fn partial(&self, schema: &Schema) -> Scatter {
            Scatter::new(schema.x.len(), false)
        }
        fn finalize(&self, all: Scatter, _: &Schema) -> crate::Result<MomentsModel> {
            Ok(MomentsModel { moments: Moments::from_scatter(&all) })
        }
    }

    #[test]
    fn any_changed_byte_makes_an_entry_damaged_never_other_numbers() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.csv");
        std::fs::write(&file, "x,y\n1,2\n").unwrap();
        let data = Dataset::open(&crate::comm::SingleComm, &DataOptions::new(file.display().to_string())).unwrap();
        let cache = super::ShardCache { dir: tmp.path().join("cache"), verify: false };
        let key = cache.key("context", &data.sources[0], 0).unwrap();
        let entry = super::Entry { rows: 7, skipped: 1, parts: vec![vec![1, 2, 3, 4, 5, 6, 7, 8], vec![]] };
        cache.store(&key, &entry, 0).unwrap();
        assert!(matches!(cache.load(&key), super::Lookup::Hit(e) if e == entry));
        let path = cache.entry_path(&key);
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                std::fs::write(&path, &bad).unwrap();
                assert!(matches!(cache.load(&key), super::Lookup::Damaged), "byte {at} ^ {flip:#x} was trusted");
            }
        }
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(cache.load(&key), super::Lookup::Damaged));
    }

    #[test]
    fn the_key_holds_the_parameters_a_spec_leaves_out() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.csv");
        std::fs::write(&file, "x,y\n1,2\n").unwrap();
        let data = Dataset::open(&crate::comm::SingleComm, &DataOptions::new(file.display().to_string())).unwrap();
        let key = |scale: f64| {
            let group: Vec<Box<dyn Node>> = vec![Box::new(Defined::new(Forgetful { scale }))];
            super::context(&[], &group, &data)
        };
        assert_eq!(key(1.0), key(1.0));
        assert_ne!(key(1.0), key(2.0), "the same cached partials for other parameters");
    }
}
