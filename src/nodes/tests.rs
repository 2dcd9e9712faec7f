//! Tests of the node layer as a whole: spec parsing, the registry, partials' merge.

use super::*;

#[test]
fn spec_parsing() {
    let s = NodeSpec::parse(" PCA( n = 3, method=corr ) ").unwrap();
    assert_eq!(s.kind, "pca");
    assert_eq!(s.params["n"], "3");
    assert_eq!(s.params["method"], "corr");
    assert!(NodeSpec::parse("pca(n=3").is_err());
    let r = NodeSpec::parse("ridge(alpha=[0.1, 1,10], target=\"y0,y1\", intercept=false)").unwrap();
    assert_eq!(r.get_list("alpha").unwrap(), vec!["0.1", "1", "10"]);
    assert_eq!(r.get_list("target").unwrap(), vec!["y0", "y1"]);
    assert!(!r.get_bool("intercept", true).unwrap());
    assert!(NodeSpec::parse("pca(3)").is_err());
    assert!(build(&NodeSpec::parse("pca(m=3)").unwrap()).is_err());
    assert!(build(&NodeSpec::parse("nope").unwrap()).is_err());
}

use crate::testing::numbers;

#[test]
fn the_help_lists_every_kind_and_every_kind_builds() {
    let help = help();
    for k in kinds() {
        assert!(help.lines().any(|l| l.trim_start().starts_with(k) || l.contains(&format!("| {k}("))), "{k} missing from:\n{help}");
    }
    for registry::Entry { kind, .. } in defined() {
        assert!(!kind.usage.is_empty() && kind.usage.contains(':'), "{}: no usage line", kind.name);
        // Every name a usage line starts with parses (with the parameters it needs).
        for name in std::iter::once(kind.name).chain(kind.aliases.iter().copied()) {
            let err = build(&NodeSpec::parse(name).unwrap()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!err.contains("unknown node"), "{name}: {err}");
        }
        // Every key the usage line shows is one the driver lets through, and no other is.
        let shown = kind.usage.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '='));
        for key in shown.filter_map(|w| w.strip_suffix('=').or_else(|| w.split_once('=').map(|(k, _)| k))) {
            assert!(kind.keys.contains(&key), "{}: usage shows '{key}', which is not in its keys {:?}", kind.name, kind.keys);
        }
        let err = build(&NodeSpec::parse(&format!("{}(no_such_key=1)", kind.name)).unwrap()).err().unwrap().to_string();
        assert!(err.contains("unknown parameter 'no_such_key'"), "{}: {err}", kind.name);
    }
}

#[test]
fn partials_merge_to_the_union_on_random_splits() {
    // merge(partial(A), partial(B), ...) = partial(A ∪ B ∪ ...): the property the per-shard
    // cache and --update rest on, for every node that keeps partials, with empty pieces and
    // merges in any order.
    let n = 211;
    let x = ndarray::Array2::from_shape_fn((n, 4), |(i, j)| {
        1e4 * (j == 0) as u8 as f64 + ((i * 37 + j * 11) % 17) as f64 * 0.3 + (i as f64 * 0.7 + j as f64).sin() + 1.0
    });
    let y = ndarray::Array2::from_shape_fn((n, 1), |(i, _)| 2.0 * x[[i, 1]] - x[[i, 2]] + (i as f64).cos());
    let labels: Vec<String> = (0..n).map(|i| ["p", "q", "r"][(i * i) % 7 % 3].to_string()).collect();
    let schema = Schema { x: ["a", "b", "c", "d"].map(String::from).to_vec(), y: vec!["t".into()], label: Some("k".into()) };
    let chunk = |r: std::ops::Range<usize>| Chunk {
        x: x.slice(ndarray::s![r.clone(), ..]),
        y: y.slice(ndarray::s![r.clone(), ..]),
        labels: &labels[r],
        ..Chunk::new(x.view())
    };
    let comm = crate::comm::SingleComm;
    let mut state = 12345u64;
    let mut rand = |m: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % m
    };
    for spec in [
        "moments",
        "covariance",
        "pca(n=2)",
        "whitening(n=2)",
        "ridge(alpha=0.5, target=t)",
        "gnb(label=k)",
        "mnb(label=k)",
        "linreg(target=t)",
        "linreg(target=t, method=qr)",
        "linreg(target=t, method=qr, intercept=false)",
        "svd(k=3)",
        "sfa(n=2, contiguous=true)",
        "sfa2(n=2, contiguous=true)",
    ] {
        // SFA's rows are a time series: its pieces merge in time order (a piece boundary
        // is a shard boundary, which without `contiguous` breaks the series).
        let ordered = spec.starts_with("sfa");
        // sfa2 expands a column near 1e4 to 1e8-sized products: its ill-conditioned
        // generalised eigenproblem turns the sums' round-off into ~4e-6 of each entry (a
        // seam difference lost would move them by ~1e-3).
        let rel = if spec.starts_with("sfa2") { 2e-5 } else { 0.0 };
        let mut whole = build(&NodeSpec::parse(spec).unwrap()).unwrap();
        whole.begin(&schema).unwrap();
        whole.update(&chunk(0..n)).unwrap();
        whole.join(&comm).unwrap();
        let mut want = Vec::new();
        numbers(&whole.to_json(), &mut want);
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for _ in 0..6 {
            let mut cuts: Vec<usize> = (0..rand(6)).map(|_| rand(n + 1)).chain([0, n]).collect();
            cuts.sort();
            let mut node = build(&NodeSpec::parse(spec).unwrap()).unwrap();
            node.begin(&schema).unwrap();
            let mut parts = Vec::new();
            for w in cuts.windows(2) {
                node.update(&chunk(w[0]..w[1])).unwrap();
                parts.push(node.take_partial().unwrap());
            }
            if rand(2) == 1 && !ordered {
                parts.reverse();
            }
            for p in &parts {
                node.merge_partial(p).unwrap();
            }
            node.join(&comm).unwrap();
            let mut got = Vec::new();
            numbers(&node.to_json(), &mut got);
            assert_eq!(got.len(), want.len(), "{spec}");
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-11 * scale + rel * b.abs(), "{spec}, cuts {cuts:?}: {a} vs {b}");
            }
        }
    }
}

/// Every pass of `params` on `rows` rows, each pass's partial built from random pieces merged
/// in random order; the model's numbers.
fn passes_in_pieces<P: define::NodeParams>(
    params: &P,
    schema: &Schema,
    rows: usize,
    chunk: &dyn Fn(std::ops::Range<usize>) -> Chunk<'static>,
    rand: &mut dyn FnMut(usize) -> usize,
) -> Vec<f64> {
    use define::Partial;
    let comm = crate::comm::SingleComm;
    let mut partial = params.partial(schema);
    for pass in 0..P::PASSES {
        let mut cuts: Vec<usize> = (0..rand(6)).map(|_| rand(rows + 1)).chain([0, rows]).collect();
        cuts.sort();
        let mut pieces: Vec<P::Partial> = cuts
            .windows(2)
            .map(|w| {
                let mut p = P::Partial::decode(&partial.encode().unwrap()).unwrap();
                p.update(&chunk(w[0]..w[1])).unwrap();
                p
            })
            .collect();
        if rand(2) == 1 {
            pieces.reverse();
        }
        let mut merged = pieces.remove(0);
        pieces.into_iter().for_each(|p| merged.merge(p));
        let joined = merged.join(&comm).unwrap();
        partial = if pass + 1 < P::PASSES { params.next_pass(pass + 1, joined, schema).unwrap() } else { joined };
    }
    let mut out = Vec::new();
    numbers(&serde_json::to_value(params.finalize(partial, schema).unwrap()).unwrap(), &mut out);
    out
}

#[test]
fn every_pass_of_a_multi_pass_node_merges_to_the_union() {
    // hist and fda keep no per-shard partials (their later passes depend on the earlier ones'
    // joined results), but the driver's join still merges each pass's partials.
    let n = 173;
    let x: &'static ndarray::Array2<f64> = Box::leak(Box::new(ndarray::Array2::from_shape_fn((n, 3), |(i, j)| {
        ((i * 31 + j * 7) % 23) as f64 * 0.4 + (i as f64 * 0.3 + j as f64).cos() + 50.0 * (j == 1) as u8 as f64
    })));
    let labels: &'static [String] = Box::leak((0..n).map(|i| ["u", "v", "w"][(i * 5 + i / 7) % 3].to_string()).collect::<Vec<_>>().into_boxed_slice());
    let schema = Schema { x: ["a", "b", "c"].map(String::from).to_vec(), y: vec![], label: Some("k".into()) };
    let chunk = |r: std::ops::Range<usize>| Chunk {
        x: x.slice(ndarray::s![r.clone(), ..]),
        labels: &labels[r.clone()],
        y: ndarray::ArrayView2::from_shape((r.len(), 0), &[]).unwrap(),
        ..Chunk::new(x.view())
    };
    let mut state = 777u64;
    let mut rand = |m: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % m
    };
    let whole = |rand: &mut dyn FnMut(usize) -> usize, pieces: bool| -> (Vec<f64>, Vec<f64>) {
        let hist = HistParams::new(5).unwrap();
        let fda = FdaParams { n: Some(2), label: Some("k".into()) };
        // One piece: rand(…) = 0 cuts nothing.
        let mut none = |_: usize| 0;
        let r: &mut dyn FnMut(usize) -> usize = if pieces { rand } else { &mut none };
        (passes_in_pieces(&hist, &schema, n, &chunk, r), passes_in_pieces(&fda, &schema, n, &chunk, r))
    };
    let (hist_want, fda_want) = whole(&mut rand, false);
    assert!(hist_want.iter().sum::<f64>() > n as f64, "counts and edges");
    for _ in 0..8 {
        let (hist_got, fda_got) = whole(&mut rand, true);
        assert_eq!(hist_got, hist_want, "hist: counts and edges are exact");
        let scale = fda_want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert_eq!(fda_got.len(), fda_want.len());
        for (a, b) in fda_got.iter().zip(&fda_want) {
            assert!((a - b).abs() <= 1e-11 * scale, "fda: {a} vs {b}");
        }
    }
}

#[test]
fn target_and_label_columns_are_resolved_read_and_checked_by_the_driver() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let name_of = |c: &str| if c == "3" { "y3".to_string() } else { c.to_string() };
    for (spec, targets, label) in [
        ("linreg(target=[3,y1])", names(&["y3", "y1"]), None),
        ("ridge(target=3)", names(&["y3"]), None),
        ("gnb(label=3)", vec![], Some("y3")),
        ("mnb(label=k)", vec![], Some("k")),
        ("fda(label=3)", vec![], Some("y3")),
        ("pca(n=1)", vec![], None),
    ] {
        let mut node = build(&NodeSpec::parse(spec).unwrap()).unwrap();
        node.resolve_columns(&name_of);
        assert_eq!(node.targets(), targets, "{spec}");
        assert_eq!(node.label().as_deref(), label, "{spec}");
        assert!(node.spec().contains(targets.first().map(|s| s.as_str()).or(label).unwrap_or("pca")), "{spec}: {}", node.spec());
        let x = names(&["a", "b"]);
        let mut right = Schema { x: x.clone(), y: targets.clone(), label: label.map(String::from) };
        node.begin(&right).unwrap_or_else(|e| panic!("{spec}: {e}"));
        if targets.is_empty() && label.is_none() {
            continue;
        }
        // The same node on input without its target or with another label column.
        right.y.retain(|t| t != "y1");
        right.y.truncate(right.y.len().saturating_sub(1));
        right.label = right.label.map(|l| l + "_other");
        let err = build(&NodeSpec::parse(spec).unwrap()).and_then(|mut n| {
            n.resolve_columns(&name_of);
            n.begin(&right)
        });
        let err = err.err().unwrap_or_else(|| panic!("{spec}: trained without its column")).to_string();
        let kind = spec.split('(').next().unwrap();
        assert!(err.contains(&format!("{kind}: ")) && err.contains("column") && err.contains("is not in the data"), "{spec}: {err}");
    }
    for kind in ["gnb", "mnb", "fda"] {
        let err = build(&NodeSpec::parse(kind).unwrap()).and_then(|mut n| n.begin(&Schema { x: names(&["a"]), y: vec![], label: Some("k".into()) }));
        assert!(err.err().unwrap().to_string().contains(&format!("give the label column, e.g. {kind}(label=class)")), "{kind}");
    }
}

#[test]
fn a_spec_written_back_reads_as_the_same_parameters() {
    // The spec is the model's `flow` line and a cache key: it must name every parameter that
    // differs from its default, or a flow re-run from a model file trains another model.
    for spec in [
        "moments",
        "covariance",
        "pca(var=0.9, method=corr)",
        "whitening(n=2, method=corr)",
        "sfa(n=2, contiguous=true)",
        "sfa2(n=1, contiguous=true)",
        "hist(bins=7)",
        "poly(degree=3)",
        "svd(k=2)",
        "linreg(target=[y0,y1], method=qr, intercept=false)",
        "ridge(alpha=[1,2.5], target=y0, intercept=false)",
        "gnb(label=c, var_smoothing=0.1, priors=[0.25,0.75])",
        "mnb(label=c, alpha=2, fit_prior=false)",
        "mnb(label=c, priors=[0.5,0.5])",
        "fda(n=1, label=c)",
        "kmeans(k=2, init=++, n_init=2, max_iter=5, tol=0.1, seed=3)",
        "kmeans(k=3, init=parallel, oversampling=4, rounds=2)",
    ] {
        let first = build(&NodeSpec::parse(spec).unwrap()).unwrap();
        let written = first.spec();
        let again = build(&NodeSpec::parse(&written).unwrap()).unwrap_or_else(|e| panic!("{spec} -> {written}: {e}"));
        assert_eq!(first.to_json()["params"], again.to_json()["params"], "{spec} was written back as {written}");
    }
}

/// Parameters made as structs (a library caller's way) are refused as the same spec would be,
/// on every rank; the `Default`s are real, trainable parameters.
#[test]
fn params_made_as_structs_are_validated_like_specs() {
    use crate::comm::run_threads;
    type Make = Box<dyn Fn() -> Box<dyn Node> + Sync>;
    let x = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 5) % 13) as f64 + 0.1 * j as f64);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let fit = |make: &Make| -> Vec<Result<()>> {
        run_threads(2, |comm| {
            let rows = if comm.rank() == 0 { x.slice(ndarray::s![..25, ..]) } else { x.slice(ndarray::s![25.., ..]) };
            make().fit(comm, rows, &names)
        })
    };
    let bad: Vec<(Make, &str, &str)> = vec![
        (Box::new(|| Box::new(PcaNode::new(PcaParams { n: Some(0), ..Default::default() }))), "pca(n=0)", "pca: n must be at least 1"),
        (Box::new(|| Box::new(PcaNode::new(PcaParams { var: Some(1.5), ..Default::default() }))), "pca(var=1.5)", "var must be in (0, 1]"),
        (Box::new(|| Box::new(KmeansNode::new(KmeansParams { k: 0, ..Default::default() }))), "kmeans(k=0)", "give k >= 1"),
        (Box::new(|| Box::new(KmeansNode::new(KmeansParams { max_iter: 0, ..Default::default() }))), "kmeans(k=8, max_iter=0)", "max_iter must be at least 1"),
        (Box::new(|| Box::new(HistNode::new(HistParams { bins: 0 }))), "hist(bins=0)", "bins must be at least 1"),
        (Box::new(|| Box::new(SfaNode::new(SfaParams { n: Some(0), ..Default::default() }))), "sfa(n=0)", "n must be at least 1"),
    ];
    for (make, spec, want) in &bad {
        let from_spec = crate::flow::Flow::parse(spec).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(from_spec.contains(want), "{spec}: {from_spec}");
        for (r, got) in fit(make).into_iter().enumerate() {
            let e = got.expect_err(spec).to_string();
            assert!(e.contains(want), "{spec}, rank {r}: {e}");
        }
    }
    // The defaults train: k-means' 8 clusters (40 rows), hist's 10 bins, pca.
    let good: Vec<Make> =
        vec![Box::new(|| Box::new(KmeansNode::default())), Box::new(|| Box::new(HistNode::default())), Box::new(|| Box::new(PcaNode::default()))];
    for make in &good {
        for got in fit(make) {
            got.unwrap();
        }
    }
}

/// `inspect --full` is a parameter of the summary, not a process-wide switch: two summaries of
/// one node, cut and full, side by side.
#[test]
fn summaries_are_cut_or_full_as_asked() {
    let x = ndarray::Array2::from_shape_fn((50, 9), |(i, j)| ((i * (j + 3)) % 17) as f64 + j as f64);
    let names: Vec<String> = (0..9).map(|j| format!("c{j}")).collect();
    let mut pca = PcaNode::new(PcaParams { n: Some(2), ..Default::default() });
    pca.fit(&crate::comm::SingleComm, x.view(), &names).unwrap();
    let cut = pca.summary(false).join("\n");
    let full = pca.summary(true).join("\n");
    assert!(cut.contains("(3 more; inspect --full shows all)"), "{cut}");
    assert!(!full.contains("more;"), "{full}");
    let eig = |s: &str| s.lines().find(|l| l.starts_with("eigenvalues")).unwrap().matches(", ").count() + 1;
    assert_eq!(eig(&full), 9);
}

/// Executing an untrained node or flow, or rows of the wrong width, is an error naming the
/// node, not a panic.
#[test]
fn execute_untrained_or_on_the_wrong_width_is_an_error() {
    let x = ndarray::Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f64 * 0.5 + (i % 3) as f64);
    let flow = crate::flow::Flow::parse("moments | pca(n=2)").unwrap();
    let e = flow.execute(x.view()).unwrap_err().to_string();
    assert!(e.contains("pca node is not trained"), "{e}");
    let mut flow = crate::flow::Flow::parse("moments | pca(n=2)").unwrap();
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    flow.fit(&crate::comm::SingleComm, x.view(), &names).unwrap();
    assert_eq!(flow.execute(x.view()).unwrap().dim(), (10, 2));
    let e = flow.execute(x.slice(ndarray::s![.., ..2])).unwrap_err().to_string();
    assert!(e.contains("pca: rows of 2 columns, but it was trained on 3"), "{e}");
    let e = KmeansNode::default().predict(x.view()).unwrap_err().to_string();
    assert!(e.contains("kmeans node is not trained"), "{e}");
}
