# Sourced by the A/B benchmarks (bench_gate.sh, bench_balance.sh): builds this checkout and
# BASE (a git revision) in a worktree, and sets NEW and OLD to the two binaries and TMP to a
# scratch directory; the worktree and TMP are removed on exit. BASE_TARGET is where BASE builds
# (kept between runs, so a second run with the same BASE is quick).
cargo build --release --quiet
WT=$(mktemp -d); TMP=$(mktemp -d)
# A copy, so that a rebuild while the benchmark runs does not change what is measured.
NEW=$TMP/flowmpi; cp target/release/flowmpi "$NEW"
trap 'git worktree remove --force "$WT" >/dev/null 2>&1 || true; rm -rf "$WT" "$TMP"' EXIT
git worktree add --detach -f "$WT" "$BASE" >/dev/null 2>&1
(cd "$WT" && CARGO_TARGET_DIR=${BASE_TARGET:-/tmp/flowmpi-bench-base-target} cargo build --release --quiet --bin flowmpi)
OLD=${BASE_TARGET:-/tmp/flowmpi-bench-base-target}/release/flowmpi
