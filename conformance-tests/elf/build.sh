#!/usr/bin/env bash
# Rebuilds the ELF fixtures of conformance-tests/elf/ from src/*.c: the
# objects (<name>.o), their disassembly (<name>.objdump, compared by the
# loader's tests) and section/symbol/relocation listings (<name>.sections),
# then the broken objects (broken/make-broken.py).
#
# Reproducible: the objects depend only on the sources and the toolchain
# (Debian 12's clang-19 and libbpf-dev 1.1), not on where the checkout is, so
# running this twice, or in another clone, leaves `git status` clean.
# Needs root (or the packages already installed) on Debian 12.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

CLANG=clang-19
OBJDUMP=llvm-objdump-19
READELF=llvm-readelf-19

# --- toolchain -------------------------------------------------------------
missing=0
for tool in "$CLANG" "$OBJDUMP" "$READELF" bpftool python3; do
	command -v "$tool" >/dev/null 2>&1 || missing=1
done
[ -f /usr/include/bpf/bpf_helpers.h ] || missing=1
if [ "$missing" = 1 ]; then
	echo "build.sh: installing clang-19, llvm-19, libbpf-dev, bpftool" >&2
	apt-get update
	apt-get install -y clang-19 llvm-19 libbpf-dev bpftool python3
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
common_flags=(-O2 -target bpf -c -Wall -Werror
	-ffile-prefix-map="$here"=.
	-I src -I "$multiarch_include")

# compile <source> <object> <extra flags...>
compile_only() {
	local src="$1" obj="$2"
	shift 2
	"$CLANG" "${common_flags[@]}" "$@" "$src" -o "$obj"
}

# compile <source> <object> <extra flags...>, then write the listings
compile() {
	local obj="$2"
	compile_only "$@"
	local stem="${obj%.o}"
	"$OBJDUMP" -d -r "$obj" >"$stem.objdump"
	"$READELF" -S -s -r "$obj" >"$stem.sections"
	echo "built $obj"
}

for src in src/*.c; do
	name="$(basename "$src" .c)"
	case "$name" in
	maps_legacy)
		# legacy maps: no -g, so no BTF at all
		compile "$src" "$name.o" -mcpu=v3
		;;
	subprogs)
		for v in 2 3 4; do
			compile "$src" "${name}_v$v.o" -g -mcpu=v$v
		done
		;;
	*)
		compile "$src" "$name.o" -g -mcpu=v3
		;;
	esac
done

# globals.o without its BTF: the loader's line numbers then come from DWARF .debug_line.
llvm-objcopy-19 --remove-section=.BTF --remove-section=.rel.BTF \
	--remove-section=.BTF.ext --remove-section=.rel.BTF.ext globals.o globals_dwarf_only.o
"$OBJDUMP" -d -r globals_dwarf_only.o >globals_dwarf_only.objdump
"$READELF" -S -s -r globals_dwarf_only.o >globals_dwarf_only.sections
echo "built globals_dwarf_only.o"

# C sources of broken objects (they compile; the loader must refuse them)
for src in broken/src/*.c; do
	name="$(basename "$src" .c)"
	compile_only "$src" "broken/$name.o" -g -mcpu=v3
	echo "built broken/$name.o"
done

python3 broken/make-broken.py
