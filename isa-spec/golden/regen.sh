#!/usr/bin/env bash
# Regenerates the golden disassembly corpus from its assembler sources.
#
#   corpus.s  every row of isa-spec/opcodes.csv with varied operands
#   probe.s   encodings beyond valid programs (ignored fields, r11-r15,
#             unknown opcodes, zero runs, a lddw cut off by the section end)
#
# For each NAME it writes, next to this script:
#   NAME.bin              the raw .text bytes (what the tests read)
#   NAME.objdump-v4.txt   llvm-objdump-19 -d --mcpu=v4
#   NAME.objdump.txt      llvm-objdump-19 -d
# and TOOLS.txt with the LLVM version used.
#
# crates/bpfvm-isa/tests/disasm_golden.rs checks our listing against the
# dumps byte for byte and needs no LLVM at test time. Run this script after
# editing a .s file; installs llvm-19 with apt-get when it is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools=(llvm-mc-19 llvm-objdump-19 llvm-objcopy-19)

missing=0
for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
    echo "installing llvm-19 (needs root)" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update
    $sudo apt-get install -y llvm-19
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for name in corpus probe; do
    cp "$here/$name.s" "$work/"
    (
        cd "$work"
        llvm-mc-19 -triple bpfel -mcpu=v4 -filetype=obj "$name.s" -o "$name.o"
        llvm-objcopy-19 -O binary --only-section=.text "$name.o" "$name.bin"
        # Run from the work directory so the header names just NAME.o.
        llvm-objdump-19 -d --mcpu=v4 "$name.o" >"$name.objdump-v4.txt"
        llvm-objdump-19 -d "$name.o" >"$name.objdump.txt"
    )
    cp "$work/$name.bin" "$work/$name.objdump-v4.txt" "$work/$name.objdump.txt" "$here/"
    echo "$name: $(($(stat -c %s "$here/$name.bin") / 8)) slots"
done

{
    echo "llvm-objdump-19: $(llvm-objdump-19 --version | grep -m1 -i 'llvm version')"
    echo "llvm-mc-19: $(llvm-mc-19 --version | grep -m1 -i 'llvm version')"
} >"$here/TOOLS.txt"
