#!/usr/bin/env bash
# Replays each fuzz target's committed corpus (fuzz/corpus/<target>/) once,
# then, when FUZZ_SECONDS is set, fuzzes each target that long on a scratch
# copy of the corpus (the committed corpus is never modified here).
set -eu
secs=${FUZZ_SECONDS:-0}
for bin in "$@"; do
  name=$(basename "$bin")
  dir="fuzz/corpus/${name#fuzz_}"
  [ -d "$dir" ] || { echo "fuzz: no corpus at $dir" >&2; exit 1; }
  n=$(find "$dir" -type f | wc -l)
  # A failing input is written out, and not into the checkout.
  arts=$(mktemp -d)
  if ! "$bin" -runs=0 -artifact_prefix="$arts/" "$dir" >/dev/null 2>&1; then
    "$bin" -runs=0 -artifact_prefix="$arts/" "$dir" || true
    echo "fuzz: $name failed on its corpus; the input is in $arts" >&2
    exit 1
  fi
  rmdir "$arts"
  echo "fuzz: $name replayed $n inputs"
  if [ "$secs" -gt 0 ]; then
    work=$(mktemp -d)
    cp -r "$dir"/. "$work"/
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
      tail -n 40 "$work.log"
      echo "fuzz: $name found a crash; the input is in $work" >&2
      exit 1
    fi
    echo "fuzz: $name ran $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | grep -o '[0-9]*$' || echo '?') executions in ${secs}s"
    rm -rf "$work" "$work.log"
  fi
done
