//! Compressed text shards: `.gz` (gzip, several members too, as `cat a.gz b.gz` makes) and
//! `.zst` (zstd) after a text extension (`part0.csv.gz`, `part1.tsv.zst`), streamed through a
//! decoder. A compressed file cannot be cut at a byte offset, so it is never split: it goes
//! whole to one rank ([`crate::io::shards::assign`]) and is one `--reproducible` leaf. Offsets
//! and line numbers in it count the decompressed text.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How a file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Codec {
    /// The codec a path's last extension names; None for an uncompressed file.
    pub fn of(path: &Path) -> Option<Codec> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "gz" => Some(Codec::Gzip),
            "zst" => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// The path without its compression extension (`x.tsv.gz` → `x.tsv`), for the format and
/// delimiter its inner extension names; other paths as they are.
pub fn inner(path: &Path) -> PathBuf {
    match Codec::of(path) {
        Some(_) => path.with_extension(""),
        None => path.to_path_buf(),
    }
}

/// The text of `path` from text offset `pos` on: a seek in a plain file; in a compressed one,
/// decoded from the start and the first `pos` bytes dropped.
pub fn open_at(path: &Path, pos: u64) -> std::io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let mut text: Box<dyn Read + Send> = match Codec::of(path) {
        None => {
            f.seek(SeekFrom::Start(pos))?;
            return Ok(Box::new(f));
        }
        Some(Codec::Gzip) => Box::new(Decoding { codec: "gzip", text: flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, f)) }),
        Some(Codec::Zstd) => Box::new(Decoding { codec: "zstd", text: zstd::stream::read::Decoder::new(f)? }),
    };
    if pos > 0 {
        let skipped = std::io::copy(&mut text.by_ref().take(pos), &mut std::io::sink())?;
        if skipped < pos {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the decompressed text is shorter than when it was probed"));
        }
    }
    Ok(text)
}

/// A decoder whose errors say that decompressing failed, and how the file was taken.
struct Decoding<R> {
    codec: &'static str,
    text: R,
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.text
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot decompress it as {} ({e}): is it complete, and {}?", self.codec, self.codec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_come_from_the_last_extension_and_the_inner_one_names_the_format() {
        assert_eq!(Codec::of(Path::new("a/part0.csv.gz")), Some(Codec::Gzip));
        assert_eq!(Codec::of(Path::new("part0.TSV.ZST")), Some(Codec::Zstd));
        assert_eq!(Codec::of(Path::new("part0.csv")), None);
        assert_eq!(Codec::of(Path::new("gz")), None);
        assert_eq!(inner(Path::new("a/x.tsv.gz")), PathBuf::from("a/x.tsv"));
        assert_eq!(inner(Path::new("a/x.csv")), PathBuf::from("a/x.csv"));
    }
}
