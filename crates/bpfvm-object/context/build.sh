#!/usr/bin/env bash
# Rebuilds context.btf, the BTF of the UAPI context types in context.c (installs clang-19,
# llvm-19 and the kernel headers if missing). Deterministic: same headers, same bytes.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v clang-19 >/dev/null || ! command -v llvm-objcopy-19 >/dev/null; then
  apt-get update -qq && apt-get install -y -qq clang-19 llvm-19 linux-libc-dev
fi
multiarch="/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
clang-19 -O2 -g -target bpf -c context.c -I "$multiarch" -ffile-prefix-map="$PWD"=. -o "$tmp/context.o"
llvm-objcopy-19 --dump-section .BTF=context.btf "$tmp/context.o"
echo "built context.btf ($(stat -c %s context.btf) bytes)"
