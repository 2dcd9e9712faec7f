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
    let dir = std::env::temp_dir().join(format!("flowmpi-flowfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("f.toml");
    std::fs::write(&t, "[[node]]\nkind = \"pca\"\nn = 3\n[[node]]\nkind = \"whitening\"\n").unwrap();
    assert_eq!(read_flow_file(&t).unwrap(), "pca(n=3) | whitening");
    let j = dir.join("f.json");
    std::fs::write(&j, r#"{"flow": "moments | pca(var=0.9)"}"#).unwrap();
    assert_eq!(read_flow_file(&j).unwrap(), "moments | pca(var=0.9)");
    std::fs::remove_dir_all(&dir).unwrap();
}
