//! The CSV reader's tests: number parsing, lines, quoting, byte ranges.

use super::number::parse_plain;
use super::*;

#[test]
fn plain_parser_agrees_with_fast_float_bit_for_bit() {
    let mut state = 12345u64;
    let mut samples: Vec<String> = [
        "0",
        "-0",
        "+1.5",
        "1.",
        "123456789012345678",
        "9007199254740993",
        "0.1",
        "-2.718281828459045",
        "12345678",
        "123456789",
        "0.12345678",
        "1234567812345678",
        "00000000000000000001.5",
        "3.0000000000000000001",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..20000 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let digits = (state >> 60) as usize + 1;
        let dec = ((state >> 40) % 12) as i32;
        let m = (state >> 3) % 10u64.pow(digits.min(18) as u32);
        samples.push(format!("{}{}", if state & 1 == 1 { "-" } else { "" }, m as f64 / 10f64.powi(dec)));
        samples.push(format!("{:.*}", dec as usize, (state >> 11) as f64 / 1e9));
    }
    for s in &samples {
        let want: f64 = fast_float2::parse(s.as_bytes()).unwrap();
        if let Some((v, n)) = parse_plain(s.as_bytes()) {
            assert_eq!(n, s.len(), "{s}");
            assert_eq!(v.to_bits(), want.to_bits(), "{s}");
        }
    }
    for s in ["1e5", "nan", "inf", " 1", "", "-", "."] {
        assert!(parse_plain(s.as_bytes()).is_none_or(|(_, n)| n < s.len()), "{s}");
    }
}

fn plan(ncols: usize) -> FieldPlan {
    FieldPlan::new(ncols, (0..ncols).map(Some).collect(), ncols, (0..ncols).map(|j| format!("c{j}")).collect(), None)
}

#[test]
fn block_parsing_handles_quotes_comments_and_reports_offsets() {
    let mut out = Rows::default();
    let text = b"1,2,3\n# note\n\"4\", 5 ,6e0\r\n\n7,8,9";
    assert_eq!(parse_block(text, 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap(), (3, 0));
    assert_eq!(out.vals, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let e = parse_block(b"1,2,3\n1,2\n", 100, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
    assert_eq!((e.offset, e.msg.as_str()), (106, "expected 3 fields, found 2"));
    let e = parse_block(b"1,2,3,4\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
    assert_eq!(e.msg, "expected 3 fields, found 4");
    let e = parse_block(b"1,x,3\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.contains("cannot parse 'x'"), "{}", e.msg);
    let e = parse_block(b"1,,3\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.contains("empty field"), "{}", e.msg);
    out.clear();
    assert_eq!(parse_block(b"1,nan,3\n4,5,6\n", 0, b',', &plan(3), NanPolicy::Skip, &mut out).unwrap(), (1, 1));
    assert_eq!(out.vals, vec![4.0, 5.0, 6.0]);
}

#[test]
fn a_file_read_with_the_wrong_delimiter_is_told_which_one_to_pass() {
    let mut out = Rows::default();
    let e = parse_block(b"1;2;3\n", 0, b',', &plan(1), NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.starts_with("cannot parse '1;2;3' as a number"), "{}", e.msg);
    assert!(e.msg.ends_with("; if ';' separates the fields, pass --delimiter ';'"), "{}", e.msg);
    // Decimal commas: the comma splits the line, so the count is what fails.
    let e = parse_block(b"1,5;2\n", 0, b',', &plan(1), NanPolicy::Error, &mut out).unwrap_err();
    assert_eq!(e.msg, "expected 1 field, found 2; if ';' separates the fields, pass --delimiter ';'");
    let e = parse_block(b"1\t2\n", 0, b',', &plan(1), NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.ends_with("; if tabs separate the fields, pass --delimiter tab"), "{}", e.msg);
    let e = parse_block(b"1,2\n", 0, b'\t', &plan(1), NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.ends_with("pass --delimiter ','"), "{}", e.msg);
    // Several columns: the delimiter was right, so no hint.
    let e = parse_block(b"1,x;y,3\n", 0, b',', &plan(3), NanPolicy::Error, &mut out).unwrap_err();
    assert!(!e.msg.contains("--delimiter"), "{}", e.msg);
    let e = parse_block(b"x\n", 0, b',', &plan(1), NanPolicy::Error, &mut out).unwrap_err();
    assert!(!e.msg.contains("--delimiter"), "{}", e.msg);
}

#[test]
fn parallel_parsing_keeps_order_and_reports_the_first_error() {
    let mut text = Vec::new();
    for i in 0..40_000 {
        text.extend_from_slice(format!("{i},{}.5,-{}\n", i * 3, i % 7).as_bytes());
    }
    let (mut one, mut par) = (Rows::default(), Rows::default());
    parse_block(&text, 0, b',', &plan(3), NanPolicy::Error, &mut one).unwrap();
    let parsed = parse_parallel(&text, 0, 3, b',', &plan(3), NanPolicy::Error, &mut par, &mut Vec::new()).unwrap();
    assert_eq!(parsed.rows, 40_000);
    assert_eq!(one, par);
    // Errors in the second and third pieces: the earlier one is reported.
    let at1 = text.len() / 2;
    let at2 = text.len() * 5 / 6;
    for at in [at2, at1] {
        let line = at + memchr::memchr(b'\n', &text[at..]).unwrap() + 1;
        text[line] = b'x';
    }
    let first_bad = at1 + memchr::memchr(b'\n', &text[at1..]).unwrap() + 1;
    let e = parse_parallel(&text, 1000, 3, b',', &plan(3), NanPolicy::Error, &mut par, &mut Vec::new()).unwrap_err();
    assert_eq!(e.offset, 1000 + first_bad as u64);
}

#[test]
fn label_fields_are_kept_as_text_on_both_paths() {
    let mut p = plan(3);
    p.slot = vec![Some(0), None, Some(1)];
    p.width = 2;
    p.label = Some(1);
    p.text[1] = true;
    let mut out = Rows::default();
    let text = b"1,cat,2\n3,\"dog, big\",4\r\n5, 7 ,6\n7,nan,8\n";
    assert_eq!(parse_block(text, 0, b',', &p, NanPolicy::Error, &mut out).unwrap(), (4, 0));
    assert_eq!(out.vals, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(out.labels, vec!["cat", "dog, big", "7", "nan"]);
    let e = parse_block(b"1,,2\n", 0, b',', &p, NanPolicy::Error, &mut out).unwrap_err();
    assert!(e.msg.contains("empty label"), "{}", e.msg);
}

#[test]
fn kept_fields_are_text_in_field_order_and_may_also_be_features() {
    // Fields 0 (also a feature) and 2 kept as text; an empty kept field is fine.
    let mut p = plan(3);
    p.slot = vec![Some(0), Some(1), None];
    p.width = 2;
    p.text = vec![true, false, true];
    for text in [&b"1.50,2,id-7\n3,4,\n"[..], b"1.50, 2,\"id-7\"\n3,4,\n"] {
        let mut out = Rows::default();
        assert_eq!(parse_block(text, 0, b',', &p, NanPolicy::Error, &mut out).unwrap(), (2, 0));
        assert_eq!(out.vals, vec![1.5, 2.0, 3.0, 4.0]);
        assert_eq!(out.labels, vec!["1.50", "id-7", "3", ""]);
    }
}
