//! A flat DOUBLE column chunk decoded from its pages by our own code, for the encodings nearly
//! every writer uses: PLAIN values, or dictionary indices (RLE_DICTIONARY, PLAIN_DICTIONARY)
//! into a PLAIN dictionary page; definition levels in the RLE/bit-packed hybrid; data pages v1
//! and v2, any codec the `parquet` crate decompresses. Anything else (BYTE_STREAM_SPLIT, the
//! deprecated BIT_PACKED levels) is left to the crate's column reader ([`usable`] says which).
//!
//! Why not the crate's reader for these too: on a dictionary-encoded column it zero-fills and
//! copies the whole dictionary (a MiB for pyarrow's default row groups of random doubles) per
//! column chunk, and decodes every definition level one by one even when a chunk has no nulls.
//! That was a third of a rank's time on pyarrow's default files. Here the dictionary is read in
//! place from the page, and a run of "present" levels is taken whole.

use bytes::Bytes;
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;

/// Whether [`Doubles`] reads this column chunk (else the crate's reader does): a flat column
/// whose chunk lists only the encodings we decode.
pub(super) fn usable(chunk: &ColumnChunkMetaData, max_def: i16, max_rep: i16) -> bool {
    max_rep == 0
        && chunk.encodings().all(|e| match e {
            Encoding::PLAIN | Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY | Encoding::RLE => true,
            // Old writers list BIT_PACKED for the (absent) repetition levels of a flat column;
            // it only matters when there are definition levels.
            #[allow(deprecated)]
            Encoding::BIT_PACKED => max_def == 0,
            _ => false,
        })
}

/// The rows of a DOUBLE column chunk, a tile at a time.
pub(super) struct Doubles {
    pages: Box<dyn PageReader>,
    /// Definition level of a present value (0: the column holds no nulls).
    max_def: i16,
    /// The dictionary page's values (PLAIN: 8 bytes each, little-endian), once read.
    dict: Option<Bytes>,
    /// The data page being read.
    page: Option<DataPage>,
    /// Rows handed on, and rows the row group says it has (for the error when pages run out).
    read: usize,
    rows: usize,
    /// Scratch: a tile's definition levels, dictionary indices.
    levels: Vec<u32>,
    indices: Vec<u32>,
}

/// What is left of a data page.
struct DataPage {
    /// Rows (levels) not yet read.
    left: usize,
    /// The definition levels; None when the column holds no nulls.
    defs: Option<Hybrid>,
    values: Values,
}

/// A data page's values.
enum Values {
    /// PLAIN: 8 bytes each, from byte `at` on.
    Plain { buf: Bytes, at: usize },
    /// Indices into the dictionary.
    Dict(Hybrid),
}

impl Doubles {
    /// The chunk read from `pages`; it holds `rows` rows whose values are present at level
    /// `max_def`.
    pub(super) fn new(pages: Box<dyn PageReader>, max_def: i16, rows: usize) -> Self {
        Doubles { pages, max_def, dict: None, page: None, read: 0, rows, levels: Vec::new(), indices: Vec::new() }
    }

    /// The next `n` rows appended to `out` (NaN for a null).
    pub(super) fn tile(&mut self, n: usize, out: &mut Vec<f64>) -> Result<(), String> {
        let mut done = 0;
        while done < n {
            if self.page.as_ref().is_none_or(|p| p.left == 0) {
                self.page = Some(self.next_page()?);
            }
            let page = self.page.as_mut().expect("just opened");
            let k = (n - done).min(page.left);
            let all_present = match &mut page.defs {
                None => true,
                Some(defs) => defs.take_repeat(self.max_def as u32, k)?,
            };
            let present = match &mut page.defs {
                Some(defs) if !all_present => {
                    self.levels.resize(k, 0);
                    defs.get(&mut self.levels)?;
                    if let Some(&bad) = self.levels.iter().find(|&&l| l > self.max_def as u32) {
                        return Err(format!("a definition level of {bad}, above the column's {}", self.max_def));
                    }
                    self.levels.iter().filter(|&&l| l == self.max_def as u32).count()
                }
                _ => k,
            };
            let start = out.len();
            match &mut page.values {
                Values::Plain { buf, at } => {
                    let bytes = buf.get(*at..*at + 8 * present).ok_or("a data page holds fewer values than its levels say")?;
                    out.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))));
                    *at += 8 * present;
                }
                Values::Dict(indices) => {
                    let dict = self.dict.as_deref().ok_or("dictionary-encoded values without a dictionary page")?;
                    self.indices.resize(present, 0);
                    indices.get(&mut self.indices)?;
                    let dict = dict.as_chunks::<8>().0;
                    if let Some(&i) = self.indices.iter().find(|&&i| i as usize >= dict.len()) {
                        return Err(format!("dictionary index {i} past the dictionary's {} values", dict.len()));
                    }
                    out.resize(start + present, 0.0);
                    for (v, &i) in out[start..].iter_mut().zip(&self.indices) {
                        *v = f64::from_le_bytes(dict[i as usize]);
                    }
                }
            }
            if present < k {
                let (levels, max_def) = (&self.levels, self.max_def as u32);
                spread_nulls(out, start, k, |i| levels[i] == max_def);
            }
            page.left -= k;
            done += k;
            self.read += k;
        }
        Ok(())
    }

    /// The next data page with rows, after any dictionary page.
    fn next_page(&mut self) -> Result<DataPage, String> {
        loop {
            let page = self.pages.get_next_page().map_err(|e| e.to_string())?;
            let page = page.ok_or_else(|| format!("the row group says {} rows but holds {}", self.rows, self.read))?;
            let (buf, rows, encoding, levels) = match page {
                Page::DictionaryPage { buf, num_values, encoding, .. } => {
                    if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                        return Err(format!("a dictionary page in the {encoding} encoding"));
                    }
                    let len = 8 * num_values as usize;
                    if buf.len() < len {
                        return Err(format!("a dictionary page of {} bytes for {num_values} doubles", buf.len()));
                    }
                    self.dict = Some(buf.slice(..len));
                    continue;
                }
                // v1: the levels (RLE, behind their 4-byte length) come first in `buf`.
                Page::DataPage { buf, num_values, encoding, def_level_encoding, .. } => {
                    let len = if self.max_def == 0 {
                        0
                    } else if def_level_encoding != Encoding::RLE {
                        return Err(format!("definition levels in the {def_level_encoding} encoding"));
                    } else {
                        let head = buf.get(..4).ok_or("a data page too short for its definition levels")?;
                        u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize
                    };
                    let start = if self.max_def == 0 { 0 } else { 4 };
                    let end = start + len;
                    if end > buf.len() {
                        return Err("a data page too short for its definition levels".into());
                    }
                    (buf, num_values as usize, encoding, start..end)
                }
                // v2: the levels' lengths are in the header; the levels are never compressed.
                Page::DataPageV2 { buf, num_values, encoding, def_levels_byte_len, rep_levels_byte_len, .. } => {
                    let start = rep_levels_byte_len as usize;
                    let end = start + def_levels_byte_len as usize;
                    if end > buf.len() {
                        return Err("a data page too short for its definition levels".into());
                    }
                    (buf, num_values as usize, encoding, start..end)
                }
            };
            if rows == 0 {
                continue;
            }
            let width = 16 - (self.max_def as u16).leading_zeros();
            let defs = (self.max_def > 0).then(|| Hybrid::new(buf.slice(levels.clone()), width));
            let values = match encoding {
                Encoding::PLAIN => Values::Plain { buf: buf.slice(levels.end..), at: 0 },
                Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY => {
                    let &width = buf.get(levels.end).ok_or("a data page without its index width")?;
                    if width > 32 {
                        return Err(format!("dictionary indices {width} bits wide"));
                    }
                    Values::Dict(Hybrid::new(buf.slice(levels.end + 1..), width as u32))
                }
                other => return Err(format!("values in the {other} encoding")),
            };
            return Ok(DataPage { left: rows, defs, values });
        }
    }
}

/// `out[start..]` holds the values of the next `rows` rows, packed: one for each row `i` (from
/// 0) where `present(i)`. Spread them to their rows, NaN for the others.
pub(super) fn spread_nulls(out: &mut Vec<f64>, start: usize, rows: usize, present: impl Fn(usize) -> bool) {
    let mut next = out.len();
    out.resize(start + rows, f64::NAN);
    // From the back, so that no value is overwritten before it has moved.
    for i in (0..rows).rev() {
        if present(i) {
            next -= 1;
            out[start + i] = out[next];
        } else {
            out[start + i] = f64::NAN;
        }
    }
}

/// Parquet's RLE/bit-packed hybrid encoding of small unsigned integers (levels, dictionary
/// indices): runs, each either one value repeated or groups of 8 values packed `width` bits
/// each, least significant bit first.
struct Hybrid {
    buf: Bytes,
    width: u32,
    /// Byte offset of the next run's header.
    at: usize,
    run: Run,
}

/// The run being read.
enum Run {
    Repeat {
        value: u32,
        left: usize,
    },
    /// Packed values from bit `bit` of `buf` on.
    Packed {
        bit: usize,
        left: usize,
    },
}

impl Hybrid {
    fn new(buf: Bytes, width: u32) -> Self {
        Hybrid { buf, width, at: 0, run: Run::Repeat { value: 0, left: 0 } }
    }

    /// Read the next run's header.
    fn next_run(&mut self) -> Result<(), String> {
        let ended = || "encoded levels or indices end early".to_string();
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let &b = self.buf.get(self.at).ok_or_else(ended)?;
            self.at += 1;
            header |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 35 {
                return Err("a run header too long".into());
            }
        }
        let count = (header >> 1) as usize;
        if header & 1 == 0 {
            let bytes = self.width.div_ceil(8) as usize;
            let v = self.buf.get(self.at..self.at + bytes).ok_or_else(ended)?;
            let value = v.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            self.at += bytes;
            self.run = Run::Repeat { value, left: count };
        } else {
            let bytes = count * self.width as usize;
            if self.at + bytes > self.buf.len() {
                return Err(ended());
            }
            self.run = Run::Packed { bit: 8 * self.at, left: 8 * count };
            self.at += bytes;
        }
        Ok(())
    }

    /// If the next `n` values are all `value` within one repeated run, take them and say so.
    fn take_repeat(&mut self, value: u32, n: usize) -> Result<bool, String> {
        if matches!(self.run, Run::Repeat { left: 0, .. } | Run::Packed { left: 0, .. }) {
            self.next_run()?;
        }
        Ok(match &mut self.run {
            Run::Repeat { value: v, left } if *v == value && *left >= n => {
                *left -= n;
                true
            }
            _ => false,
        })
    }

    /// Fill `out` with the next values.
    fn get(&mut self, out: &mut [u32]) -> Result<(), String> {
        let mut done = 0;
        while done < out.len() {
            match &mut self.run {
                Run::Repeat { left: 0, .. } | Run::Packed { left: 0, .. } => self.next_run()?,
                Run::Repeat { value, left } => {
                    let k = (*left).min(out.len() - done);
                    out[done..done + k].fill(*value);
                    (*left, done) = (*left - k, done + k);
                }
                Run::Packed { bit, left } => {
                    let (k, w) = ((*left).min(out.len() - done), self.width as usize);
                    let out = &mut out[done..done + k];
                    // Whole groups of 8 (a run is whole groups: `left % 8` values remain of the
                    // group begun) by the unpacker for this width, the rest value by value.
                    let head = (*left % 8).min(k);
                    let whole = (k - head) / 8 * 8;
                    unpack(&self.buf, *bit, self.width, &mut out[..head]);
                    let from = (*bit + head * w) / 8;
                    unpack_groups(&self.buf[from..from + whole / 8 * w], self.width, &mut out[head..head + whole]);
                    unpack(&self.buf, *bit + (head + whole) * w, self.width, &mut out[head + whole..]);
                    (*bit, *left, done) = (*bit + k * w, *left - k, done + k);
                }
            }
        }
        Ok(())
    }
}

/// Values `width` bits each (at most 32) from bit `bit` of `buf` on, least significant first.
fn unpack(buf: &[u8], bit: usize, width: u32, out: &mut [u32]) {
    let mask = if width == 0 { 0 } else { u64::MAX >> (64 - width) };
    // A value is read from the 8 bytes starting at its first byte (its bits end within them:
    // 7 + 32 < 64); near the end of `buf`, from a zero-padded copy.
    let word = |byte: usize| match buf.get(byte..byte + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        None => {
            let mut pad = [0u8; 8];
            let tail = &buf[byte.min(buf.len())..];
            pad[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(pad)
        }
    };
    for (i, v) in out.iter_mut().enumerate() {
        let b = bit + i * width as usize;
        *v = ((word(b / 8) >> (b % 8)) & mask) as u32;
    }
}

/// Groups of 8 values `width` bits each (at most 32) from `bytes` (`width` bytes per group).
fn unpack_groups(bytes: &[u8], width: u32, out: &mut [u32]) {
    macro_rules! by_width {
        ($($w:literal)*) => {
            match width {
                0 => out.fill(0),
                $($w => groups::<$w>(bytes, out),)*
                _ => unreachable!("widths are at most 32"),
            }
        };
    }
    by_width!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
}

/// [`unpack_groups`] for width `W`: every shift and byte offset a constant, the loop over a
/// group unrolled.
fn groups<const W: usize>(bytes: &[u8], out: &mut [u32]) {
    let mask = u64::MAX >> (64 - W);
    for (g, o) in bytes.chunks_exact(W).zip(out.chunks_exact_mut(8)) {
        for (j, v) in o.iter_mut().enumerate() {
            let (lo, shift) = (j * W / 8, j * W % 8);
            // A 64-bit load from the value's first byte on; near the group's end, the group's
            // last 8 bytes moved down instead (the bits above the group are not used).
            let word = if lo + 8 <= W {
                u64::from_le_bytes(g[lo..lo + 8].try_into().expect("8 bytes"))
            } else if W >= 8 {
                u64::from_le_bytes(g[W - 8..].try_into().expect("8 bytes")) >> (8 * (lo + 8 - W))
            } else {
                u64::from_le_bytes(std::array::from_fn(|i| if lo + i < W { g[lo + i] } else { 0 }))
            };
            *v = ((word >> shift) & mask) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hybrid encoding of `values`, written the plain way: a bit-packed run of whole groups
    /// of 8 for the first `packed` values (the last group padded with zeros), then repeated
    /// runs for the rest.
    fn encode(values: &[u32], width: u32, packed: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let varint = |out: &mut Vec<u8>, mut v: u64| loop {
            if v < 0x80 {
                out.push(v as u8);
                break;
            }
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        };
        let groups = packed.div_ceil(8);
        if groups > 0 {
            varint(&mut out, (groups as u64) << 1 | 1);
            let mut bits = vec![0u8; groups * width as usize];
            for (i, &v) in values[..packed].iter().enumerate() {
                for j in 0..width as usize {
                    if v >> j & 1 == 1 {
                        let b = i * width as usize + j;
                        bits[b / 8] |= 1 << (b % 8);
                    }
                }
            }
            out.extend(bits);
        }
        let mut rest = &values[packed..];
        while let Some(&v) = rest.first() {
            let n = rest.iter().take_while(|&&x| x == v).count();
            varint(&mut out, (n as u64) << 1);
            out.extend(&v.to_le_bytes()[..width.div_ceil(8) as usize]);
            rest = &rest[n..];
        }
        out
    }

    #[test]
    fn the_hybrid_encoding_decodes_to_its_values_in_any_cut() {
        // Every width, packed and repeated runs, read in slices of several sizes that cut runs
        // and groups anywhere, against the values encoded bit by bit above.
        for width in 0..=32u32 {
            let max = if width == 0 { 0 } else { u32::MAX >> (32 - width) };
            let values: Vec<u32> = (0..301u64).map(|i| if i > 150 && i % 40 < 25 { max } else { ((i * 2654435761) % (u64::from(max) + 1)) as u32 }).collect();
            // Bit-packed runs hold whole groups of 8, except a last run, padded.
            for packed in [0, 8, 64, 152, 301] {
                let bytes = Bytes::from(encode(&values, width, packed));
                for cut in [1, 3, 8, 13, 301] {
                    let mut h = Hybrid::new(bytes.clone(), width);
                    let mut got = Vec::new();
                    for part in values.chunks(cut) {
                        let mut out = vec![u32::MAX; part.len()];
                        h.get(&mut out).unwrap();
                        got.extend(out);
                    }
                    assert_eq!(got, values, "width {width}, packed {packed}, cut {cut}");
                    if packed < values.len() {
                        assert!(h.get(&mut [0; 1]).is_err(), "reading past the end is an error");
                    }
                }
            }
        }
    }

    /// The values pyarrow wrote into tests/data/parquet_pages (scripts/make_parquet_data.py),
    /// a column at a time (NaN for a null).
    fn written() -> Vec<Vec<f64>> {
        let text = std::fs::read_to_string("tests/data/parquet_pages/values.csv").unwrap();
        let rows: Vec<Vec<f64>> =
            text.lines().skip(1).map(|l| l.split(',').map(|v| if v.is_empty() { f64::NAN } else { v.parse().unwrap() }).collect()).collect();
        (0..4).map(|j| rows.iter().map(|r| r[j]).collect()).collect()
    }

    /// The same bits, or both NaN (a null, or pyarrow's NaN).
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
    }

    #[test]
    fn pages_decode_to_the_values_pyarrow_wrote_in_every_layout_and_cut() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let want = written();
        for (name, ours) in [("v1", true), ("v2_snappy", true), ("plain_zstd", true), ("byte_stream_split", false)] {
            let file = std::fs::File::open(format!("tests/data/parquet_pages/{name}.parquet")).unwrap();
            let reader = SerializedFileReader::new(file).unwrap();
            let schema = reader.metadata().file_metadata().schema_descr_ptr();
            for (j, want) in want.iter().enumerate() {
                let (max_def, mut start) = (schema.column(j).max_def_level(), 0);
                for g in 0..reader.num_row_groups() {
                    let group = reader.get_row_group(g).unwrap();
                    let rows = group.metadata().num_rows() as usize;
                    assert_eq!(usable(group.metadata().column(j), max_def, 0), ours, "{name}");
                    if ours {
                        for cut in [1, 7, 600] {
                            let mut doubles = Doubles::new(group.get_column_page_reader(j).unwrap(), max_def, rows);
                            let mut got = Vec::new();
                            for at in (0..rows).step_by(cut) {
                                doubles.tile(cut.min(rows - at), &mut got).unwrap();
                            }
                            assert!(same(&got, &want[start..start + rows]), "{name}, column {j}, row group {g}, cut {cut}");
                        }
                    }
                    start += rows;
                }
            }
        }
        // The layouts hold what the file names say: in v1, column r's dictionary fills up and
        // its pages go on in PLAIN; v2's pages are v2; q holds no levels.
        let reader = SerializedFileReader::new(std::fs::File::open("tests/data/parquet_pages/v1.parquet").unwrap()).unwrap();
        let group = reader.get_row_group(0).unwrap();
        let encodings: Vec<Encoding> = group.get_column_page_reader(1).unwrap().map(|p| p.unwrap().encoding()).collect();
        assert!(encodings.contains(&Encoding::RLE_DICTIONARY) && encodings.ends_with(&[Encoding::PLAIN]), "{encodings:?}");
        let reader = SerializedFileReader::new(std::fs::File::open("tests/data/parquet_pages/v2_snappy.parquet").unwrap()).unwrap();
        let group = reader.get_row_group(0).unwrap();
        assert!(group.get_column_page_reader(0).unwrap().any(|p| matches!(p.unwrap(), Page::DataPageV2 { .. })));
    }

    /// Pages handed out from a list, as a column chunk's page reader would.
    struct Listed(std::collections::VecDeque<Page>);

    impl Iterator for Listed {
        type Item = parquet::errors::Result<Page>;
        fn next(&mut self) -> Option<Self::Item> {
            self.0.pop_front().map(Ok)
        }
    }

    impl PageReader for Listed {
        fn get_next_page(&mut self) -> parquet::errors::Result<Option<Page>> {
            Ok(self.0.pop_front())
        }
        fn peek_next_page(&mut self) -> parquet::errors::Result<Option<parquet::column::page::PageMetadata>> {
            unreachable!("the decoder only takes pages")
        }
        fn skip_next_page(&mut self) -> parquet::errors::Result<()> {
            unreachable!("the decoder only takes pages")
        }
    }

    fn dictionary(values: &[f64]) -> Page {
        Page::DictionaryPage {
            buf: values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into(),
            num_values: values.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        }
    }

    /// A v1 data page of `rows` rows from its bytes.
    fn raw_v1(buf: Vec<u8>, rows: u32, encoding: Encoding) -> Page {
        Page::DataPage { buf: buf.into(), num_values: rows, encoding, def_level_encoding: Encoding::RLE, rep_level_encoding: Encoding::RLE, statistics: None }
    }

    /// A v1 data page: definition levels (1: present) behind their length, then `values`.
    fn v1(levels: &[u32], encoding: Encoding, values: Vec<u8>) -> Page {
        let packed = encode(levels, 1, levels.len() / 8 * 8);
        let buf: Vec<u8> = (packed.len() as u32).to_le_bytes().into_iter().chain(packed).chain(values).collect();
        raw_v1(buf, levels.len() as u32, encoding)
    }

    /// Dictionary indices, `width` bits each, bit-packed as far as they fill groups of 8.
    fn indices(values: &[u32], width: u32) -> Vec<u8> {
        std::iter::once(width as u8).chain(encode(values, width, values.len() / 8 * 8)).collect()
    }

    fn read(pages: Vec<Page>, max_def: i16, rows: usize) -> Result<Vec<f64>, String> {
        let mut doubles = Doubles::new(Box::new(Listed(pages.into())), max_def, rows);
        let mut out = Vec::new();
        doubles.tile(rows, &mut out).map(|()| out)
    }

    #[test]
    fn nulls_are_spread_to_their_rows_across_pages_of_either_kind() {
        let levels = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1];
        let plain: Vec<u8> = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0].iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
        let pages = vec![
            dictionary(&[-1.0, -2.0, -3.0]),
            v1(&levels, Encoding::RLE_DICTIONARY, indices(&[2, 0, 1, 1, 0, 2, 2], 2)),
            v1(&levels, Encoding::PLAIN, plain),
        ];
        let n = f64::NAN;
        let want = [-3.0, n, -1.0, -2.0, n, n, -2.0, -1.0, -3.0, n, -3.0, 10.0, n, 20.0, 30.0, n, n, 40.0, 50.0, 60.0, n, 70.0];
        assert!(same(&read(pages, 1, 22).unwrap(), &want));
    }

    #[test]
    fn broken_pages_are_clear_errors() {
        let dict_page = |idx: &[u32]| v1(&vec![1; idx.len()], Encoding::RLE_DICTIONARY, indices(idx, 2));
        let err = read(vec![dictionary(&[1.0, 2.0]), dict_page(&[0, 1, 3])], 1, 3).unwrap_err();
        assert_eq!(err, "dictionary index 3 past the dictionary's 2 values");
        let err = read(vec![dict_page(&[0, 1])], 1, 2).unwrap_err();
        assert_eq!(err, "dictionary-encoded values without a dictionary page");
        let err = read(vec![dictionary(&[1.0]), dict_page(&[0, 0, 0])], 1, 5).unwrap_err();
        assert_eq!(err, "the row group says 5 rows but holds 3");
        let err = read(vec![v1(&[1, 1, 1], Encoding::PLAIN, vec![0; 16])], 1, 3).unwrap_err();
        assert_eq!(err, "a data page holds fewer values than its levels say");
        let cut = raw_v1(vec![100, 0, 0, 0, 4, 1], 2, Encoding::PLAIN);
        assert_eq!(read(vec![cut], 1, 2).unwrap_err(), "a data page too short for its definition levels");
        // Levels of 2 for a column whose values are present at level 1 (a run of two 2s).
        let high = raw_v1(vec![2, 0, 0, 0, 4, 2], 2, Encoding::PLAIN);
        assert_eq!(read(vec![high], 1, 2).unwrap_err(), "a definition level of 2, above the column's 1");
    }

    #[test]
    fn a_repeated_run_is_taken_whole_only_when_it_holds_the_value_throughout() {
        let bytes = Bytes::from(encode(&[1, 1, 1, 1, 0, 1, 1], 1, 0));
        let mut h = Hybrid::new(bytes, 1);
        assert!(h.take_repeat(1, 3).unwrap());
        assert!(!h.take_repeat(1, 2).unwrap(), "one 1 left in the run");
        let mut out = [9; 4];
        h.get(&mut out).unwrap();
        assert_eq!(out, [1, 0, 1, 1]);
    }
}
