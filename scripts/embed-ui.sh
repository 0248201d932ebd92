#!/usr/bin/env bash
# Builds the web UI (web/ -> web/dist, see docs/ui.md) and writes OUT, a C
# file with every file of web/dist (and its precompressed .gz) as a byte
# array plus the lt_ui_assets table src/ui/static.c serves from.
# Usage: embed-ui.sh OUT.c
set -euo pipefail
out=$1
cd "$(dirname "$0")/.."
exec 9<"$0"
flock 9 # one build of web/dist at a time, however many makes run
bash scripts/deps-node.sh
(cd web && node build.mjs)

bytes() { od -An -v -tx1 "$1" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/  /'; }
tmp="$out.tmp.$$"
{
  echo "/* Generated from web/dist by scripts/embed-ui.sh; do not edit. */"
  echo '#include "ui/static.h"'
  i=0
  table=""
  while IFS= read -r f; do
    rel=${f#web/dist}
    echo "static const unsigned char a${i}[] = {"
    bytes "$f"
    echo "  0x00};"
    gz="NULL, 0"
    if [ -f "$f.gz" ]; then
      echo "static const unsigned char a${i}_gz[] = {"
      bytes "$f.gz"
      echo "  0x00};"
      gz="a${i}_gz, sizeof a${i}_gz - 1"
    fi
    table+="  {\"$rel\", a${i}, sizeof a${i} - 1, $gz},"$'\n'
    i=$((i + 1))
  done < <(find web/dist -type f ! -name '*.gz' | LC_ALL=C sort)
  echo "const lt_ui_asset_t lt_ui_assets[] = {"
  printf '%s' "$table"
  echo "  {NULL, NULL, 0, NULL, 0}};"
} > "$tmp"
mv "$tmp" "$out"
