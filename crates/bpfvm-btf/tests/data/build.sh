#!/bin/sh
# Rebuilds the BTF fixtures and the golden files the tests compare against.
#
#   x.c            source
#   x.o            clang-19 -O2 -g -target bpf object (has .BTF and .BTF.ext)
#   x.btf.raw      `bpftool btf dump file x.o`            (raw type dump)
#   x.btf.h        `bpftool btf dump file x.o format c`   (C header)
#   x.objdump      `llvm-objdump-19 -dr x.o`              (shows CO-RE relocations)
#   x.lines        `llvm-objdump-19 -d -l -S` of x.o with DWARF stripped, so
#                  llvm-objdump falls back to the .BTF.ext line info
#   tools.txt      versions of the tools that produced the goldens
#
# Run from anywhere; needs root (or the tools already installed) on Debian 12.
set -eu
cd "$(dirname "$0")"

need() {
	command -v "$1" >/dev/null 2>&1
}
if ! need clang-19 || ! need llvm-objdump-19 || ! need llvm-objcopy-19 || ! need bpftool \
	|| [ ! -f /usr/include/bpf/bpf_helpers.h ]; then
	apt-get update
	apt-get install -y clang-19 llvm-19 bpftool libbpf-dev
fi

# <asm/types.h> lives in the multiarch directory on Debian.
ARCH_INC="/usr/include/$(uname -m)-linux-gnu"
# Keep absolute paths of this checkout out of the objects.
PREFIX_MAP="-fdebug-prefix-map=$(pwd)=."

for src in types.c core.c; do
	base="${src%.c}"
	clang-19 -O2 -g -target bpf -I"$ARCH_INC" "$PREFIX_MAP" -c "$src" -o "$base.o"
	bpftool btf dump file "$base.o" > "$base.btf.raw"
	bpftool btf dump file "$base.o" format c > "$base.btf.h"
	llvm-objdump-19 -dr --no-show-raw-insn "$base.o" > "$base.objdump"
	tmp="$(mktemp)"
	llvm-objcopy-19 --strip-debug "$base.o" "$tmp"
	llvm-objdump-19 -d -l -S --no-show-raw-insn "$tmp" | sed "s|$tmp|$base.o|" > "$base.lines"
	rm -f "$tmp"
done

{
	clang-19 --version | head -1
	bpftool version | head -1
	llvm-objdump-19 --version | grep -i version | head -1
} > tools.txt
