use super::draw::number;
use super::figure::{abbreviate, grid_columns};

#[test]
fn axis_numbers_are_short_and_exact_enough() {
    assert_eq!(number(0.0), "0");
    assert_eq!(number(0.25), "0.25");
    assert_eq!(number(1.0 / 3.0), "0.3333");
    assert_eq!(number(-12.5), "-12.5");
    assert_eq!(number(100.0), "100");
    assert_eq!(number(1.5e8), "1.5e8");
    assert_eq!(number(2.0e-5), "2e-5");
    assert_eq!(number(-0.00001), "-1e-5");
}

#[test]
fn long_names_are_abbreviated_and_grids_are_near_square() {
    assert_eq!(abbreviate("temperature_c", 20), "temperature_c");
    assert_eq!(abbreviate("a_very_long_column_name", 8), "a_…_name");
    assert_eq!(abbreviate("sensor_measurement_042", 14), "senso…ment_042");
    assert_eq!((grid_columns(1), grid_columns(4), grid_columns(5), grid_columns(100)), (1, 2, 3, 10));
}

#[test]
fn sizes_parse_and_are_checked() {
    assert_eq!(super::parse_size("800x600"), Ok((800, 600)));
    assert_eq!(super::parse_size("1200X900"), Ok((1200, 900)));
    assert!(super::parse_size("800").unwrap_err().contains("WIDTHxHEIGHT"));
    assert!(super::check_size((100, 600)).is_err() && super::check_size((800, 600)).is_ok());
}
