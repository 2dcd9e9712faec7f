#!/usr/bin/env bash
# Makes tests/data/compressed (checked in): tests/data/nasty's shards compressed by the gzip and
# zstd command-line tools, not by flowmpi's own code, so that the reader is tested against files
# the usual tools write. part0.csv.gz (gzip -9), part1.csv (plain, header only: an empty
# shard), part2.csv.zst (zstd -19), part3.csv.gz (two gzip members, as `cat a.gz b.gz` makes),
# part4.tsv.gz (a header-only tab-separated file: an empty compressed shard); and in
# tests/data/compressed_bad: bad.csv.gz (a text value on line 5 after a comment line),
# truncated.csv.zst (cut short) and gzipped.csv (gzip data under a .csv name).
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/data/nasty out=tests/data/compressed bad=tests/data/compressed_bad
rm -rf "$out" "$bad"
mkdir -p "$out" "$bad"
gzip -n -9 -c "$src/part0.csv" > "$out/part0.csv.gz"
cp "$src/part1.csv" "$out/part1.csv"
zstd -q -19 -c "$src/part2.csv" > "$out/part2.csv.zst"
{ head -n 2 "$src/part3.csv" | gzip -n -c; tail -n +3 "$src/part3.csv" | gzip -n -c; } > "$out/part3.csv.gz"
head -n 1 "$src/part0.csv" | tr ',' '\t' | gzip -n -c > "$out/part4.tsv.gz"
printf 'a,b\n1,2\n3,4\n# a comment\n5,x\n6,7\n' | gzip -n -c > "$bad/bad.csv.gz"
zstd -q -c "$src/part0.csv" | head -c 3000 > "$bad/truncated.csv.zst"
gzip -n -c "$src/part3.csv" > "$bad/gzipped.csv"
ls -l "$out" "$bad"
