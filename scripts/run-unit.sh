#!/usr/bin/env bash
# Runs each cmocka unit-test binary and prints one closing summary line.
set -u
passed=0; failed=0
for t in "$@"; do
  if out=$("$t" 2>&1); then
    n=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${n:-0}))
  else
    printf '%s\n' "$out"
    n=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    failed=$((failed + ${n:-1}))
    echo "unit: $t failed" >&2
  fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
