#!/usr/bin/env bash
# Writes a C file defining `const char NAME[]` (NUL-terminated) and
# `const size_t NAME_len` with the bytes of FILE, so data such as the price
# table ships inside the binary.  Usage: embed.sh NAME FILE > out.c
set -euo pipefail
name=$1 file=$2
echo "/* Generated from $file by scripts/embed.sh; do not edit. */"
echo "#include <stddef.h>"
echo "const char ${name}[] = {"
od -An -v -tx1 "$file" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/  /'
echo "  0x00};"
echo "const size_t ${name}_len = sizeof ${name} - 1;"
