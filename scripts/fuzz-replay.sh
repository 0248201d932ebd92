#!/usr/bin/env bash
# Replays each fuzz target's committed corpus (fuzz/corpus/<target>/) once.
set -eu
for bin in "$@"; do
  name=$(basename "$bin")
  dir="fuzz/corpus/${name#fuzz_}"
  [ -d "$dir" ] || { echo "fuzz-replay: no corpus at $dir" >&2; exit 1; }
  n=$(find "$dir" -type f | wc -l)
  "$bin" -runs=0 "$dir" >/dev/null 2>&1 || { "$bin" -runs=0 "$dir"; exit 1; }
  echo "fuzz-replay: $name replayed $n inputs"
done
