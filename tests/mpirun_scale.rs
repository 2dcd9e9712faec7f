//! Scale on a 2-core machine: 16 ranks (oversubscribed) over 256 shard files, and a
//! 4,096-column covariance, each against a plain serial computation.
mod common;
use common::*;

/// Sample mean and covariance (n − 1) of `rows`, two passes, in f64.
fn serial_cov(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let (n, d) = (rows.len() as f64, rows[0].len());
    let mean: Vec<f64> = (0..d).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect();
    let cov = (0..d).map(|i| (0..d).map(|j| rows.iter().map(|r| (r[i] - mean[i]) * (r[j] - mean[j])).sum::<f64>() / (n - 1.0)).collect()).collect();
    (mean, cov)
}

#[test]
fn sixteen_ranks_over_256_shards() {
    let dir = scratch("256shards");
    let mut all = Vec::new();
    for s in 0..256usize {
        // Uneven shards (0 to 40 rows; every 37th empty), shifted columns.
        let n = if s % 37 == 5 { 0 } else { (s * 7919) % 41 };
        let mut text = String::from("a,b,c,d,e\n");
        for i in 0..n {
            let t = (s * 41 + i) as f64;
            let row = vec![1e3 + (t * 0.11).sin(), (t * 0.7).cos() * 3.0, t.sqrt(), (t * 1.3).sin() * (t * 0.01).cos(), -5.0 + (t % 17.0)];
            text.push_str(&row.iter().map(|v| format!("{v:.17e}")).collect::<Vec<_>>().join(","));
            text.push('\n');
            all.push(row);
        }
        std::fs::write(dir.join(format!("s{s:03}.csv")), text).unwrap();
    }
    let m = dir.join("m.json");
    let r = mpirun(16, &["-v", "train", "--data", dir.join("s*.csv").to_str().unwrap(), "--flow", "moments | covariance", "--model", m.to_str().unwrap()]);
    r.ok();
    assert_same_hash_on_all_ranks(&r, 16);
    let model = read_json(&m);
    assert_eq!(model["training_rows"], all.len() as u64);
    let (mean, cov) = serial_cov(&all);
    assert_close("mean", &node(&model, 1)["mean"], &serde_json::json!(mean), 1e-13);
    assert_close("covariance", &node(&model, 1)["covariance"], &serde_json::json!(cov), 1e-11);
}

#[test]
fn a_4096_column_covariance() {
    let dir = scratch("wide");
    let (rows, cols) = (600, 4096);
    let x = dir.join("x.npy");
    write_npy(&x, rows, cols);
    let m = dir.join("m.json");
    let r = mpirun(4, &["-v", "train", "--data", x.to_str().unwrap(), "--flow", "covariance", "--model", m.to_str().unwrap()]);
    r.ok();
    assert_same_hash_on_all_ranks(&r, 4);
    // The file's values, as write_npy made them, and a sample of entries computed directly.
    let bytes = std::fs::read(&x).unwrap();
    let data: Vec<f64> = bytes[bytes.len() - rows * cols * 8..].chunks(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
    let data = &data;
    let col = |j: usize| (0..rows).map(move |i| data[i * cols + j]);
    let model = read_json(&m);
    let cov = &node(&model, 0)["covariance"];
    assert_eq!(cov.as_array().unwrap().len(), cols);
    for (i, j) in [(0, 0), (0, 4095), (4095, 4095), (17, 2048), (2048, 17), (1234, 3999), (4000, 5)] {
        let (mi, mj) = (col(i).sum::<f64>() / rows as f64, col(j).sum::<f64>() / rows as f64);
        let want = col(i).zip(col(j)).map(|(a, b)| (a - mi) * (b - mj)).sum::<f64>() / (rows - 1) as f64;
        let got = cov[i][j].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-12, "cov[{i}][{j}] = {got}, want {want}");
    }
}
