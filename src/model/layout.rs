//! The model file's JSON layout: serde_json's pretty layout, except that the numbers and strings
//! of an array stay on one line. A matrix is then one line per row instead of one line per
//! number, which is a third of the bytes of a wide model (and of the time to write and read
//! them); objects and nested arrays still get a line and an indent each, so the file reads as
//! before. The values are the same JSON, so every reader (Python's `json`, older flowmpi) reads it.

use serde_json::ser::{CompactFormatter, Formatter};
use std::io::{Result, Write};

/// The formatter; see the module docs.
#[derive(Default)]
pub(super) struct Layout {
    /// Open arrays and objects.
    depth: usize,
    /// Per open array or object: has it put anything on a line of its own (so its closing
    /// bracket needs one too)?
    broken: Vec<bool>,
    /// An array element is about to be written: `Some(first)`, until its first byte.
    pending: Option<bool>,
}

impl Layout {
    /// Before a number, string, `true`, `false` or `null`: inline in an array.
    fn scalar<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        match self.pending.take() {
            // After a nested array or object, the rest of the array goes a line each too.
            Some(false) if self.broken.last() == Some(&true) => {
                w.write_all(b",\n")?;
                self.indent(w)
            }
            Some(false) => w.write_all(b", "),
            _ => Ok(()),
        }
    }

    /// Before an array or object: on a line of its own in an array.
    fn nested<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        if let Some(first) = self.pending.take() {
            w.write_all(if first { b"\n" } else { b",\n" })?;
            self.indent(w)?;
            if let Some(b) = self.broken.last_mut() {
                *b = true;
            }
        }
        Ok(())
    }

    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> Result<()> {
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> Result<()> {
        self.nested(w)?;
        self.depth += 1;
        self.broken.push(false);
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> Result<()> {
        self.depth -= 1;
        if self.broken.pop() == Some(true) {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }
}

/// The scalar writers: the compact formatter's, after [`Layout::scalar`].
macro_rules! scalars {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> Result<()> {
            self.scalar(w)?;
            CompactFormatter.$name(w $(, $arg)*)
        }
    )*};
}

impl Formatter for Layout {
    scalars! {
        write_null();
        write_bool(v: bool);
        write_i8(v: i8);
        write_i16(v: i16);
        write_i32(v: i32);
        write_i64(v: i64);
        write_i128(v: i128);
        write_u8(v: u8);
        write_u16(v: u16);
        write_u32(v: u32);
        write_u64(v: u64);
        write_u128(v: u128);
        write_f32(v: f32);
        write_f64(v: f64);
        write_number_str(v: &str);
        begin_string();
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, _w: &mut W, first: bool) -> Result<()> {
        self.pending = Some(first);
        Ok(())
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> Result<()> {
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        if let Some(b) = self.broken.last_mut() {
            *b = true;
        }
        self.indent(w)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    fn text<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        v.serialize(&mut serde_json::Serializer::with_formatter(&mut out, Layout::default())).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn arrays_of_scalars_stay_on_one_line_and_the_rest_is_indented() {
        let v = serde_json::json!({
            "kind": "pca",
            "empty": [], "none": {},
            "mean": [1.5, -2.0, 1e-300],
            "names": ["a", "b\"c"],
            "m": [[1.0, 2.0], [3.0, 4.0]],
            "nested": [{"k": [true, null]}, 7, [[]]],
        });
        let want = r#"{
  "empty": [],
  "kind": "pca",
  "m": [
    [1.0, 2.0],
    [3.0, 4.0]
  ],
  "mean": [1.5, -2.0, 1e-300],
  "names": ["a", "b\"c"],
  "nested": [
    {
      "k": [true, null]
    },
    7,
    [
      []
    ]
  ],
  "none": {}
}"#;
        assert_eq!(text(&v), want);
        // The same values, bit for bit, as any JSON reader sees them.
        assert_eq!(serde_json::from_str::<serde_json::Value>(want).unwrap(), v);
    }
}
