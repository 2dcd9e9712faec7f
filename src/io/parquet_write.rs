//! Parquet output shards (`execute --out 'o/part{rank}.parquet'`, `sort --out`): numbers as
//! DOUBLE columns, class names and `--keep` columns as UTF-8 strings, argsort indices as INT64;
//! snappy-compressed (pandas' and pyarrow's default), rows buffered into row groups of
//! [`GROUP_ROWS`], so memory stays one row group whatever the output's size.

use parquet::basic::{Compression, ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::fs::File;
use std::io::{BufWriter, Result};
use std::sync::Arc;

/// Rows per row group: 65,536 rows of 32 doubles is 16 MB, enough for fast reads, little memory.
pub const GROUP_ROWS: usize = 65_536;

/// What one column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Numbers.
    Double,
    /// Text (class names, kept columns).
    Text,
    /// Row indices.
    Index,
}

enum Buffer {
    Double(Vec<f64>),
    Text(Vec<ByteArray>),
    Index(Vec<i64>),
}

/// A Parquet file being written, a row group at a time.
pub struct ParquetWriter {
    writer: SerializedFileWriter<BufWriter<File>>,
    columns: Vec<Buffer>,
    rows: usize,
}

fn other<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl ParquetWriter {
    /// Start `file` with columns `names` of the given kinds.
    pub fn create(file: File, names: &[String], kinds: &[Kind]) -> Result<Self> {
        let fields = names
            .iter()
            .zip(kinds)
            .map(|(name, kind)| {
                let b = match kind {
                    Kind::Double => Type::primitive_type_builder(name, Physical::DOUBLE),
                    Kind::Index => Type::primitive_type_builder(name, Physical::INT64),
                    Kind::Text => Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
                        .with_logical_type(Some(LogicalType::String))
                        .with_converted_type(ConvertedType::UTF8),
                };
                b.with_repetition(Repetition::REQUIRED).build().map(Arc::new)
            })
            .collect::<parquet::errors::Result<Vec<_>>>()
            .map_err(other)?;
        let schema = Type::group_type_builder("schema").with_fields(fields).build().map_err(other)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(GROUP_ROWS)
            .set_created_by(format!("flowmpi {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(BufWriter::with_capacity(1 << 20, file), Arc::new(schema), Arc::new(props)).map_err(other)?;
        let columns = kinds
            .iter()
            .map(|k| match k {
                Kind::Double => Buffer::Double(Vec::new()),
                Kind::Text => Buffer::Text(Vec::new()),
                Kind::Index => Buffer::Index(Vec::new()),
            })
            .collect();
        Ok(ParquetWriter { writer, columns, rows: 0 })
    }

    /// Append one row: `value(j)` is column `j`'s number, `text(j)` its text (by its kind).
    pub fn push_row(&mut self, number: impl Fn(usize) -> f64, text: impl Fn(usize) -> String) -> Result<()> {
        for (j, c) in self.columns.iter_mut().enumerate() {
            match c {
                Buffer::Double(v) => v.push(number(j)),
                Buffer::Text(v) => v.push(ByteArray::from(text(j).into_bytes())),
                Buffer::Index(v) => v.push(number(j) as i64),
            }
        }
        self.rows += 1;
        if self.rows == GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Append row indices (a file of one INT64 column).
    pub fn push_indices(&mut self, idx: &[u64]) -> Result<()> {
        for &i in idx {
            if let Buffer::Index(v) = &mut self.columns[0] {
                v.push(i as i64);
            }
            self.rows += 1;
            if self.rows == GROUP_ROWS {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Write the buffered rows as one row group.
    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(other)?;
        for c in &mut self.columns {
            let mut col = group.next_column().map_err(other)?.ok_or_else(|| other("fewer columns than the schema"))?;
            let written = match (col.untyped(), &*c) {
                (ColumnWriter::DoubleColumnWriter(w), Buffer::Double(v)) => w.write_batch(v, None, None),
                (ColumnWriter::ByteArrayColumnWriter(w), Buffer::Text(v)) => w.write_batch(v, None, None),
                (ColumnWriter::Int64ColumnWriter(w), Buffer::Index(v)) => w.write_batch(v, None, None),
                _ => return Err(other("a column's type differs from the schema's")),
            };
            written.map_err(other)?;
            col.close().map_err(other)?;
            match c {
                Buffer::Double(v) => v.clear(),
                Buffer::Text(v) => v.clear(),
                Buffer::Index(v) => v.clear(),
            }
        }
        group.close().map_err(other)?;
        self.rows = 0;
        Ok(())
    }

    /// Write the last row group and the footer, and sync the file.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        let buf = self.writer.into_inner().map_err(other)?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}
