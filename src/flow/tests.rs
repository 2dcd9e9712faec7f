//! Flow specs and flow files.
use super::*;

#[test]
fn flow_spec_roundtrip() {
    let f = Flow::parse("moments | covariance | pca(n=2) | whitening").unwrap();
    assert_eq!(f.spec(), "moments | covariance | pca(n=2) | whitening");
    assert!(Flow::parse("pca(n=2) || whitening").is_err());
}

#[test]
fn flow_file_forms() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("f.toml");
    std::fs::write(&t, "[[node]]\nkind = \"pca\"\nn = 3\n[[node]]\nkind = \"whitening\"\n").unwrap();
    assert_eq!(read_flow_file(&t).unwrap(), "pca(n=3) | whitening");
    let j = dir.path().join("f.json");
    std::fs::write(&j, r#"{"flow": "moments | pca(var=0.9)"}"#).unwrap();
    assert_eq!(read_flow_file(&j).unwrap(), "moments | pca(var=0.9)");
}
