#!/usr/bin/env bash
# Rebuilds the BPF objects of bpfvm's examples (<name>.o) from <name>.c with
# the flags of conformance-tests/elf/build.sh: clang-19 -O2 -g -target bpf
# -mcpu=v3, UAPI headers from linux-libc-dev and libbpf's bpf_helpers.h /
# bpf_endian.h from libbpf-dev (no vmlinux.h).
#
# Reproducible: the objects depend only on the sources and the toolchain
# (Debian 12's clang-19 and libbpf-dev 1.1), not on where the checkout is, so
# running this twice, or in another clone, leaves `git status` clean.
# Needs root (or the packages already installed) on Debian 12.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

CLANG=clang-19

# --- toolchain -------------------------------------------------------------
missing=0
command -v "$CLANG" >/dev/null 2>&1 || missing=1
[ -f /usr/include/bpf/bpf_helpers.h ] || missing=1
[ -f /usr/include/linux/bpf.h ] || missing=1
if [ "$missing" = 1 ]; then
	echo "build.sh: installing clang-19, libbpf-dev, linux-libc-dev" >&2
	apt-get update
	apt-get install -y clang-19 libbpf-dev linux-libc-dev
fi

# <linux/types.h> includes <asm/types.h>, which Debian keeps in the multiarch
# directory that clang does not search for -target bpf.
asm_types=(/usr/include/*-linux-gnu*/asm/types.h)
if [ ! -f "${asm_types[0]}" ]; then
	echo "build.sh: no /usr/include/<multiarch>/asm/types.h (linux-libc-dev)" >&2
	exit 1
fi
multiarch_include="$(dirname "$(dirname "${asm_types[0]}")")"

# -ffile-prefix-map: DWARF and BTF name files relative to this directory, so
# the checkout's location does not leak into the objects.
flags=(-O2 -g -target bpf -mcpu=v3 -c -Wall -Werror
	-ffile-prefix-map="$here"=.
	-I "$multiarch_include")

for src in xdp_lb.c latency.c policy.c; do
	obj="${src%.c}.o"
	"$CLANG" "${flags[@]}" "$src" -o "$obj"
	echo "built $obj"
done
