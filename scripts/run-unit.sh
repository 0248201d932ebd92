#!/usr/bin/env bash
# Runs each cmocka unit-test binary and prints one closing summary line.
set -u
passed=0; failed=0
for t in "$@"; do
  if out=$("$t" 2>&1); then
    n=$(printf '%s\n' "$out" | grep -o '\[  PASSED  \] [0-9]*' | grep -o '[0-9]*$' | tail -1)
    passed=$((passed + ${n:-0}))
  else
    printf '%s\n' "$out"
    n=$(printf '%s\n' "$out" | grep -o '\[  FAILED  \] [0-9]*' | grep -o '[0-9]*$' | tail -1)
    failed=$((failed + ${n:-1}))
    echo "unit: $t failed" >&2
  fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
