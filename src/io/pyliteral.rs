//! The `.npy` header: a Python dict literal, `{'descr': '<f8', 'fortran_order': False,
//! 'shape': (3, 4), }`, read as the literal it is. Looking for `'descr'` as text found it inside
//! another key's string too, and read the wrong value.

use std::collections::HashMap;

/// A value of the header dict.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    Str(String),
    /// `True` or `False`.
    Bool(bool),
    /// A tuple of whole numbers (a shape).
    Tuple(Vec<u64>),
    /// Anything else (a list: a structured dtype), as written.
    Other(String),
}

/// Parse `{'key': value, ...}`; an error says what is wrong. Keys must be strings and appear
/// once.
pub fn parse_dict(text: &str) -> Result<HashMap<String, Value>, String> {
    let mut p = Parser { s: text.trim().as_bytes(), at: 0 };
    p.expect(b'{')?;
    let mut out = HashMap::new();
    loop {
        p.skip_space();
        if p.eat(b'}') {
            break;
        }
        let key = match p.value()? {
            Value::Str(k) => k,
            other => return Err(format!("a key is not a string: {other:?}")),
        };
        p.skip_space();
        p.expect(b':')?;
        let v = p.value()?;
        if out.insert(key.clone(), v).is_some() {
            return Err(format!("the key '{key}' appears twice"));
        }
        p.skip_space();
        if !p.eat(b',') {
            p.skip_space();
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_space();
    if p.at != p.s.len() {
        return Err("text after the closing '}'".into());
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        let yes = self.s.get(self.at) == Some(&c);
        self.at += usize::from(yes);
        yes
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            return Ok(());
        }
        Err(format!("expected '{}' at byte {}", c as char, self.at))
    }
    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.s.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.at) {
                        None => return Err("a string is not closed".into()),
                        Some(b'\\') => {
                            out.extend(self.s.get(self.at + 1));
                            self.at += 2;
                        }
                        Some(&c) if c == q => {
                            self.at += 1;
                            return Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()));
                        }
                        Some(&c) => {
                            out.push(c);
                            self.at += 1;
                        }
                    }
                }
            }
            Some(b'(') => {
                self.at += 1;
                let mut dims = Vec::new();
                loop {
                    self.skip_space();
                    if self.eat(b')') {
                        return Ok(Value::Tuple(dims));
                    }
                    let start = self.at;
                    while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                        self.at += 1;
                    }
                    let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default();
                    dims.push(digits.parse::<u64>().map_err(|_| format!("a shape holds something other than a whole number at byte {start}"))?);
                    self.eat(b'L');
                    self.skip_space();
                    if !self.eat(b',') {
                        self.skip_space();
                        self.expect(b')')?;
                        return Ok(Value::Tuple(dims));
                    }
                }
            }
            _ => {
                // True, False, or something this reader does not take apart (a list: nested
                // brackets are skipped whole).
                let start = self.at;
                let mut depth = 0i32;
                while let Some(&c) = self.s.get(self.at) {
                    match c {
                        b'[' | b'(' | b'{' => depth += 1,
                        b']' | b')' | b'}' if depth > 0 => depth -= 1,
                        b',' | b'}' if depth == 0 => break,
                        _ => {}
                    }
                    self.at += 1;
                }
                let word = String::from_utf8_lossy(&self.s[start..self.at]).trim().to_string();
                Ok(match word.as_str() {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "" => return Err(format!("a value is missing at byte {start}")),
                    _ => Value::Other(word),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpys_headers_and_tricky_ones() {
        let d = parse_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   ").unwrap();
        assert_eq!(d["descr"], Value::Str("<f8".into()));
        assert_eq!(d["fortran_order"], Value::Bool(false));
        assert_eq!(d["shape"], Value::Tuple(vec![3, 4]));
        assert_eq!(parse_dict("{'shape': (7,), 'descr': \"|b1\", 'fortran_order': True}").unwrap()["shape"], Value::Tuple(vec![7]));
        assert_eq!(parse_dict("{'shape': (2L, 3L), }").unwrap()["shape"], Value::Tuple(vec![2, 3]));
        // 'descr' inside another key's string is not the descr.
        let d = parse_dict("{'note': \"'descr': '<i1'\", 'descr': '<f4', 'shape': (1, 1), 'fortran_order': False}").unwrap();
        assert_eq!(d["descr"], Value::Str("<f4".into()));
        // A structured dtype is a list: kept as written, refused by the reader.
        assert!(matches!(&parse_dict("{'descr': [('a', '<f8'), ('b', '<i4')], 'shape': (2,)}").unwrap()["descr"], Value::Other(_)));
        for bad in ["{'descr': '<f8'", "{'descr' '<f8'}", "{'shape': (3, x)}", "{'a': 1, 'a': 2}", "{'descr': '<f8'} junk", "{3: 4}"] {
            assert!(parse_dict(bad).is_err(), "{bad}");
        }
    }
}
