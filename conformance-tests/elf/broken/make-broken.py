#!/usr/bin/env python3
"""Writes the broken ELF objects of conformance-tests/elf/broken/.

Each broken object is a good fixture with a few bytes patched (or, for
missing_symbol.o and no_programs.o, compiled by build.sh from broken/src/),
next to a <name>.expect file holding one line: a substring the loader's error
message must contain. Python 3 standard library only; the output depends only
on the input objects, so running it twice changes nothing.

The ELF is parsed here by hand (ELF64, little endian): the header's e_shoff at
0x28, e_shentsize at 0x3a, e_shnum at 0x3c, e_shstrndx at 0x3e; section
headers of 64 bytes; .rel* entries are Elf64_Rel, 16 bytes (r_offset, r_info).
"""

import struct
import sys
from pathlib import Path

BROKEN = Path(__file__).resolve().parent
FIXTURES = BROKEN.parent

EM_BPF = 247
EM_X86_64 = 62
SHT_SYMTAB = 2
SHT_REL = 9
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
BTF_MAGIC = 0xEB9F


class Section:
    """One section header, with the file offset of the header itself."""

    def __init__(self, index, header_offset, raw):
        (
            self.name_offset,
            self.type,
            self.flags,
            self.addr,
            self.offset,
            self.size,
            self.link,
            self.info,
            self.addralign,
            self.entsize,
        ) = struct.unpack("<IIQQQQIIQQ", raw)
        self.index = index
        self.header_offset = header_offset
        self.name = ""


class Elf:
    """The little of an ELF64 little-endian object this script needs."""

    def __init__(self, path):
        self.path = path
        self.data = bytearray(path.read_bytes())
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            fail(f"{path}: not an ELF64 little-endian object")
        (self.machine,) = struct.unpack_from("<H", d, 0x12)
        (self.shoff,) = struct.unpack_from("<Q", d, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        if shentsize != 64:
            fail(f"{path}: e_shentsize {shentsize}, expected 64")
        self.sections = []
        for i in range(shnum):
            off = self.shoff + i * shentsize
            self.sections.append(Section(i, off, bytes(d[off : off + shentsize])))
        strtab = self.sections[shstrndx]
        for s in self.sections:
            start = strtab.offset + s.name_offset
            end = d.index(b"\0", start)
            s.name = d[start:end].decode()

    def section(self, name):
        for s in self.sections:
            if s.name == name:
                return s
        fail(f"{self.path}: no section {name}")

    def rels(self, rel_section):
        """(file offset of the entry, r_offset, symbol index, type) of each Elf64_Rel."""
        out = []
        for off in range(rel_section.offset, rel_section.offset + rel_section.size, 16):
            r_offset, r_info = struct.unpack_from("<QQ", self.data, off)
            out.append((off, r_offset, r_info >> 32, r_info & 0xFFFFFFFF))
        return out

    def symbol(self, index):
        """(name, st_shndx) of a symbol of .symtab."""
        symtab = next(s for s in self.sections if s.type == SHT_SYMTAB)
        strtab = self.sections[symtab.link]
        off = symtab.offset + index * 24
        st_name, _info, _other, st_shndx = struct.unpack_from("<IBBH", self.data, off)
        start = strtab.offset + st_name
        name = self.data[start : self.data.index(b"\0", start)].decode()
        return name, st_shndx


def fail(message):
    sys.exit(f"make-broken.py: {message}")


def write(name, data, expect):
    (BROKEN / f"{name}.o").write_bytes(bytes(data))
    (BROKEN / f"{name}.expect").write_text(expect + "\n")
    print(f"wrote broken/{name}.o ({expect!r})")


def first_program_rel(elf):
    """The first relocation section that applies to an executable section, and that section."""
    for s in elf.sections:
        if s.type == SHT_REL:
            target = elf.sections[s.info]
            if target.flags & SHF_EXECINSTR and s.size >= 16:
                return s, target
    fail(f"{elf.path}: no relocation section for a program section")


def main():
    # truncated.o: globals.o cut in half; the section header table, at the
    # end of the file, is gone
    good = Elf(FIXTURES / "globals.o")
    half = len(good.data) // 2
    if good.shoff < half:
        fail("globals.o: section headers in the first half, truncation would keep them")
    write("truncated", good.data[:half], "malformed ELF")

    # wrong_machine.o: runnable.o with e_machine EM_BPF (247) -> EM_X86_64 (62)
    elf = Elf(FIXTURES / "runnable.o")
    if elf.machine != EM_BPF:
        fail(f"runnable.o: e_machine {elf.machine}, expected {EM_BPF}")
    struct.pack_into("<H", elf.data, 0x12, EM_X86_64)
    write("wrong_machine", elf.data, "not a BPF object")

    # bad_reloc_offset.o: maps_btf.o, the first relocation of the first
    # program section's .rel section moved to r_offset = section size (the
    # first byte past the end; still a multiple of 8)
    elf = Elf(FIXTURES / "maps_btf.o")
    rel, target = first_program_rel(elf)
    entry_off, r_offset, _, _ = elf.rels(rel)[0]
    if target.size % 8:
        fail(f"maps_btf.o: {target.name} size {target.size} not a multiple of 8")
    struct.pack_into("<Q", elf.data, entry_off, target.size)
    write("bad_reloc_offset", elf.data, "relocation")

    # misaligned_reloc.o: the same relocation moved by 4 bytes, inside the
    # section but not on an instruction boundary
    elf = Elf(FIXTURES / "maps_btf.o")
    rel, target = first_program_rel(elf)
    entry_off, r_offset, _, _ = elf.rels(rel)[0]
    if r_offset % 8 or r_offset + 4 >= target.size:
        fail(f"maps_btf.o: unexpected first r_offset {r_offset:#x} in {rel.name}")
    struct.pack_into("<Q", elf.data, entry_off, r_offset + 4)
    write("misaligned_reloc", elf.data, "relocation")

    # missing_symbol.o: compiled by build.sh from broken/src/missing_symbol.c;
    # check that a program relocation does target an undefined symbol
    elf = Elf(BROKEN / "missing_symbol.o")
    rel, _ = first_program_rel(elf)
    undefined = [
        elf.symbol(sym)[0]
        for _, _, sym, _ in elf.rels(rel)
        if elf.symbol(sym)[1] == SHN_UNDEF
    ]
    if undefined != ["no_such_thing"]:
        fail(f"missing_symbol.o: relocations against undefined symbols: {undefined}")
    (BROKEN / "missing_symbol.expect").write_text("undefined symbol\n")
    print("checked broken/missing_symbol.o ('undefined symbol')")

    # corrupted_btf.o: maps_btf.o with the .BTF header's type_len (offset 12)
    # set to the section's size + 1: the type area runs past the section
    elf = Elf(FIXTURES / "maps_btf.o")
    btf = elf.section(".BTF")
    (magic,) = struct.unpack_from("<H", elf.data, btf.offset)
    if magic != BTF_MAGIC:
        fail(f"maps_btf.o: .BTF magic {magic:#x}")
    struct.pack_into("<I", elf.data, btf.offset + 12, btf.size + 1)
    write("corrupted_btf", elf.data, "BTF")

    # bad_btf_magic.o: maps_btf.o with the two .BTF magic bytes zeroed
    elf = Elf(FIXTURES / "maps_btf.o")
    btf = elf.section(".BTF")
    struct.pack_into("<H", elf.data, btf.offset, 0)
    write("bad_btf_magic", elf.data, "BTF")

    # no_programs.o: compiled by build.sh from broken/src/no_programs.c;
    # check that no section holds code
    elf = Elf(BROKEN / "no_programs.o")
    code = [s.name for s in elf.sections if s.flags & SHF_EXECINSTR and s.size]
    if code:
        fail(f"no_programs.o: has code in {code}")
    elf.section(".maps")
    (BROKEN / "no_programs.expect").write_text("no programs\n")
    print("checked broken/no_programs.o ('no programs')")


if __name__ == "__main__":
    main()
