#!/usr/bin/env bash
# The README's pictures (data/plots/*.png): one figure per kind of node, drawn by `flowmpi
# plot` from models trained on the shipped example data (and the test data for the supervised
# nodes and SFA), plus a scatter of a sample of the example rows through `pca | kmeans`.
#   bash scripts/make_plot_pictures.sh        # after cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/flowmpi
[ -x "$B" ] || cargo build --release
out=data/plots
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
size=800x560
ex='data/example/part*.csv'
draw() { # name data flow [plot options]
  local name=$1 data=$2 flow=$3
  shift 3
  "$B" train -q --data "$data" --flow "$flow" --model "$tmp/$name.json"
  "$B" plot -q "$tmp/$name.json" -o "$out/$name.png" --size "$size" "$@"
}
draw pca "$ex" "pca(n=3)"
draw correlation "$ex" "covariance"
draw moments "$ex" "moments"
draw hist "$ex" "hist(bins=20)"
draw kmeans "$ex" "kmeans(k=4)"
draw sfa 'tests/data/sfa/part*.csv' "sfa(n=3)"
draw linreg 'tests/data/reg/part*.csv' "linreg(target=[y0,y1])"
draw gnb 'tests/data/gnb/part*.csv' "gnb(label=label)"
"$B" train -q --data "$ex" --flow "pca(n=2) | kmeans(k=3)" --model "$tmp/scatter.json"
"$B" plot -q --model "$tmp/scatter.json" --data "$ex" --sample 2000 -o "$out/scatter.png" --size "$size"
ls -la "$out"
