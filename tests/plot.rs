//! `flowmpi plot`: every node kind's figure is a valid SVG (parsed) and PNG (decoded) holding
//! the titles and labels a reader needs; the data scatter is drawn from a sample gathered over
//! 1..4 ranks (an empty shard among them), the same for the same seed; wrong nodes, models
//! without a figure and unknown picture formats are one clear error and write nothing.
mod common;
use common::*;
use std::path::Path;

/// The texts of an SVG file (it must parse as XML with an `<svg>` root of the given size).
fn svg_texts(path: &Path, size: (u32, u32)) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!((root.attribute("width"), root.attribute("height")), (Some(&*size.0.to_string()), Some(&*size.1.to_string())));
    doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(|t| t.trim().to_string()).collect()
}

/// A PNG file's size, and whether any pixel is not white (something was drawn).
fn png_info(path: &Path) -> ((u32, u32), bool) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    ((info.width, info.height), buf[..info.buffer_size()].iter().any(|&b| b != 255))
}

fn plot(args: &[&str]) -> Run {
    single(&[&["plot"], args].concat(), &[])
}

fn assert_has(texts: &[String], want: &[&str], what: &str) {
    for w in want {
        assert!(texts.iter().any(|t| t.contains(w)), "{what}: no text {w:?} among {texts:?}");
    }
}

#[test]
fn every_kind_draws_a_valid_svg_and_png_with_its_titles_and_labels() {
    let dir = scratch("plot-kinds");
    let ex = "data/example/part*.csv";
    let cases: [(&str, &str, &str, &[&str]); 11] = [
        (ex, "moments | covariance | pca(n=3)", "", &["PCA", "PC1", "PC8", "cumulative", "fraction of the total variance", "3 of 8 kept"]),
        (ex, "covariance", "", &["Correlation matrix", "temperature_c", "o3", "Pearson correlation of 8 columns (4000 rows)"]),
        (ex, "moments", "", &["Column spread", "humidity_pct", "pressure_hpa"]),
        (ex, "hist(bins=12)", "", &["Histograms", "wind_ms", "pm25"]),
        (ex, "kmeans(k=3)", "", &["k-means, k = 3", "Cluster sizes (4000 rows)", "c1", "c3", "principal axes"]),
        (ex, "whitening", "", &["Whitening", "PC1"]),
        ("tests/data/sfa/part*.csv", "sfa(n=2)", "", &["SFA", "delta", "SF1"]),
        ("tests/data/reg/part*.csv", "linreg(target=[y0,y1])", "", &["Linear regression", "y0 (R²", "y1 (R²", "x4", "coefficient"]),
        ("tests/data/reg/part*.csv", "ridge(alpha=[0.1,10], target=y1)", "", &["Ridge", "y1, alpha 0.1", "y1, alpha 10"]),
        ("tests/data/gnb/part*.csv", "gnb(label=label)", "", &["Gaussian naive Bayes", "Class priors", "f0", "10"]),
        ("tests/data/gnb/part*.csv", "fda(label=label)", "", &["FDA", "Eigenvalues λ of S_W v = λ S_T v", "D1"]),
    ];
    for (i, (data, flow, _, want)) in cases.iter().enumerate() {
        let model = dir.join(format!("m{i}.json"));
        single(&["train", "-q", "--data", data, "--flow", flow, "--model", model.to_str().unwrap()], &[]).ok();
        let (svg, png) = (dir.join(format!("f{i}.svg")), dir.join(format!("f{i}.png")));
        plot(&[model.to_str().unwrap(), "-o", svg.to_str().unwrap()]).ok();
        plot(&[model.to_str().unwrap(), "-o", png.to_str().unwrap(), "--size", "800x600"]).ok();
        assert_has(&svg_texts(&svg, (1000, 700)), want, flow);
        assert_eq!(png_info(&png), ((800, 600), true), "{flow}");
    }
    // --node picks another node (0-based, as inspect numbers them).
    let m0 = dir.join("m0.json");
    let corr = dir.join("corr.svg");
    plot(&[m0.to_str().unwrap(), "--node", "1", "-o", corr.to_str().unwrap()]).ok();
    assert_has(&svg_texts(&corr, (1000, 700)), &["Correlation matrix — node 1: covariance", "no2"], "--node 1");
}

#[test]
fn a_hundred_long_column_names_stay_distinct_on_the_axes() {
    let dir = scratch("plot-wide");
    let names: Vec<String> = (0..100).map(|j| format!("sensor_measurement_{j:03}")).collect();
    let mut text = names.join(",") + "\n";
    for i in 0..50 {
        text += &(0..100).map(|j| format!("{}", ((i * 31 + j * 17) % 23) as f64 + j as f64 * 0.01 * i as f64)).collect::<Vec<_>>().join(",");
        text += "\n";
    }
    let data = dir.join("wide.csv");
    std::fs::write(&data, text).unwrap();
    let model = dir.join("m.json");
    single(&["train", "-q", "--data", data.to_str().unwrap(), "--flow", "covariance", "--model", model.to_str().unwrap()], &[]).ok();
    let svg = dir.join("corr.svg");
    plot(&[model.to_str().unwrap(), "-o", svg.to_str().unwrap()]).ok();
    let texts = svg_texts(&svg, (1000, 700));
    // Abbreviated in the middle, so they differ; thinned so that they do not overlap.
    let labels: Vec<&String> = texts.iter().filter(|t| t.starts_with("senso")).collect();
    assert!(labels.iter().any(|t| t.as_str() == "senso…ment_000"), "{labels:?}");
    let distinct: std::collections::HashSet<_> = labels.iter().collect();
    assert!(labels.len() <= 2 * 60 && distinct.len() * 2 >= labels.len(), "{} labels, {} distinct", labels.len(), distinct.len());
}

#[test]
fn the_data_scatter_gathers_a_sample_over_1_to_4_ranks() {
    let dir = scratch("plot-scatter");
    let model = dir.join("m.json");
    // tests/data/nasty: 700, 0, 300 and 2 rows (an empty shard).
    let data = "tests/data/nasty/part*.csv";
    single(&["train", "-q", "--data", data, "--flow", "pca(n=2) | kmeans(k=3)", "--model", model.to_str().unwrap()], &[]).ok();
    let m = model.to_str().unwrap();
    for n in [1, 2, 3, 4] {
        let out = dir.join(format!("s{n}.svg"));
        let r = mpirun(n, &["plot", "--model", m, "--data", data, "--sample", "400", "-o", out.to_str().unwrap()]);
        r.ok();
        assert!(r.stderr.contains("drew 400 of 1002 rows"), "{}", r.stderr);
        let texts = svg_texts(&out, (1000, 700));
        assert_has(&texts, &["400 of 1002 rows", "cluster 0", "cluster 2", "pc0", "pc1"], &format!("{n} ranks"));
        // Every point is a filled circle and its outline; the legend has one per cluster.
        let svg = std::fs::read_to_string(&out).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2 * 400 + 3, "{n} ranks");
        // The same seed draws the same sample again.
        let again = dir.join(format!("t{n}.svg"));
        mpirun(n, &["plot", "--model", m, "--data", data, "--sample", "400", "-o", again.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap(), "{n} ranks");
    }
    // A sample larger than the data: every row.
    let all = dir.join("all.png");
    let r = mpirun(3, &["plot", "--model", m, "--data", data, "-o", all.to_str().unwrap()]);
    assert!(r.ok().stderr.contains("drew 1002 of 1002 rows"), "{}", r.stderr);
    assert_eq!(png_info(&all), ((1000, 700), true));
}

#[test]
fn wrong_nodes_models_without_a_figure_and_other_formats_are_one_clear_error() {
    let dir = scratch("plot-bad");
    let model = dir.join("m.json");
    single(&["train", "-q", "--data", "data/example/part*.csv", "--flow", "poly(degree=2) | covariance", "--model", model.to_str().unwrap()], &[]).ok();
    let poly = dir.join("p.json");
    single(&["train", "-q", "--data", "data/example/part*.csv", "--flow", "poly(degree=2)", "--model", poly.to_str().unwrap()], &[]).ok();
    let out = dir.join("f.svg");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    one_error(&plot(&[m, "--node", "5", "-o", o]), &["--node 5", "2 node(s), numbered 0 to 1"]);
    one_error(&plot(&[m, "--node", "0", "-o", o]), &["node 0", "has no figure (a poly node", "pca"]);
    one_error(&plot(&[poly.to_str().unwrap(), "-o", o]), &["nodes (quadratic) have no figure"]);
    one_error(&plot(&[m, "-o", dir.join("f.jpg").to_str().unwrap()]), &["f.jpg", ".svg or .png"]);
    one_error(&plot(&[m, "-o", o, "--size", "50x50"]), &["--size 50x50", "200 to 10000"]);
    one_error(&plot(&[dir.join("none.json").to_str().unwrap(), "-o", o]), &["none.json"]);
    let r = mpirun(2, &["plot", "--model", m, "--data", "data/example/part*.csv", "--sample", "0", "-o", o]);
    one_error(&r, &["--sample 0"]);
    // A flow whose output has one column cannot be a scatter.
    let one = dir.join("one.json");
    single(&["train", "-q", "--data", "data/example/part*.csv", "--flow", "pca(n=1)", "--model", one.to_str().unwrap()], &[]).ok();
    one_error(&mpirun(2, &["plot", "--model", one.to_str().unwrap(), "--data", "data/example/part*.csv", "-o", o]), &["1 column", "needs two"]);
    let left: Vec<String> = files_in(&dir).into_iter().filter(|f| !f.ends_with(".json")).collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
