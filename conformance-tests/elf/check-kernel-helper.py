#!/usr/bin/env python3
"""The parts of check-kernel.sh that bpftool cannot do (Python 3 stdlib only).

  per-program OBJ [--type SEC=TYPE]... [--as-tp-btf SEC]...
      Loads each program of OBJ on its own through libbpf (libbpf.so.1, via
      ctypes): the other programs get autoload off. --type sets the type of a
      program whose section libbpf does not know; --as-tp-btf additionally
      loads the program of SEC as tp_btf/sys_enter, a stand-in check of its
      instructions where the kernel refuses the real type. Prints one line per
      program: "ok" or "FAIL <errno>" (the stand-in loads as
      "<section>=>tp_btf/sys_enter").

  legacy OBJ PACKET.hex...
      Loads an object with legacy SEC("maps") definitions (which libbpf 1.0+
      refuses) with a minimal loader of its own, straight through bpf(2):
      creates the maps, points each map relocation's lddw at its map
      (src_reg = BPF_PSEUDO_MAP_FD), loads the programs by section name
      ("socket", "xdp"), then, for each packet, runs every program once with
      BPF_PROG_TEST_RUN on freshly created maps and prints the return value
      and the non-zero map entries.

  libbpf-run OBJ PROG PACKET.hex
      Loads OBJ through libbpf and prints PROG's return value on PACKET with
      the object still open (for tail calls: see libbpf_run).

  prog-maps PINNED_PROG
      Prints the non-empty maps of a pinned program (bpftool -j map dump),
      one line each, following maps of maps into their inner maps; skips
      frozen (read-only) maps, ring buffers and program arrays.

Exits non-zero if anything fails to load.
"""

import ctypes
import errno
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

# --- libbpf through ctypes ---------------------------------------------------

PROG_TYPES = {"socket_filter": 1, "kprobe": 2, "sched_cls": 3, "xdp": 6, "tracing": 26}
BPF_TRACE_RAW_TP = 23


def libbpf():
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, res, args in [
        ("bpf_object__open_file", vp, [cp, vp]),
        ("libbpf_get_error", ctypes.c_long, [vp]),
        ("bpf_object__next_program", vp, [vp, vp]),
        ("bpf_object__load", ci, [vp]),
        ("bpf_object__close", None, [vp]),
        ("bpf_program__section_name", cp, [vp]),
        ("bpf_program__name", cp, [vp]),
        ("bpf_program__type", ci, [vp]),
        ("bpf_program__set_type", ci, [vp, ci]),
        ("bpf_program__set_expected_attach_type", ci, [vp, ci]),
        ("bpf_program__set_attach_target", ci, [vp, ci, cp]),
        ("bpf_program__set_autoload", ci, [vp, ctypes.c_bool]),
        ("libbpf_bpf_prog_type_str", cp, [ci]),
        ("bpf_program__fd", ci, [vp]),
    ]:
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


def programs(lib, obj):
    out = []
    p = lib.bpf_object__next_program(obj, None)
    while p:
        out.append(p)
        p = lib.bpf_object__next_program(obj, p)
    return out


def load_one(lib, path, index, set_types, as_tp_btf):
    """Loads program number `index` of `path` alone; returns (section, name, type, error)."""
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    if not obj or lib.libbpf_get_error(obj):
        sys.exit(f"libbpf could not open {path}")
    try:
        progs = programs(lib, obj)
        for i, p in enumerate(progs):
            lib.bpf_program__set_autoload(p, i == index)
        p = progs[index]
        sec = lib.bpf_program__section_name(p).decode()
        name = lib.bpf_program__name(p).decode()
        if sec in set_types:
            lib.bpf_program__set_type(p, PROG_TYPES[set_types[sec]])
        if as_tp_btf:
            lib.bpf_program__set_type(p, PROG_TYPES["tracing"])
            lib.bpf_program__set_expected_attach_type(p, BPF_TRACE_RAW_TP)
            lib.bpf_program__set_attach_target(p, 0, b"sys_enter")
        ptype = lib.libbpf_bpf_prog_type_str(lib.bpf_program__type(p))
        ptype = ptype.decode() if ptype else "unspec"
        err = lib.bpf_object__load(obj)
        return sec, name, ptype, err
    finally:
        lib.bpf_object__close(obj)


def per_program(args):
    path = Path(args[0])
    set_types, tp_btf = {}, set()
    i = 1
    while i < len(args):
        if args[i] == "--type":
            sec, typ = args[i + 1].split("=")
            set_types[sec] = typ
        elif args[i] == "--as-tp-btf":
            tp_btf.add(args[i + 1])
        else:
            sys.exit(f"unknown option {args[i]}")
        i += 2
    lib = libbpf()
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    count = len(programs(lib, obj))
    lib.bpf_object__close(obj)
    failed = 0
    for index in range(count):
        sec, name, ptype, err = load_one(lib, path, index, set_types, False)
        verdict = "ok" if err == 0 else f"FAIL {errno.errorcode.get(-err, err)}"
        failed += err != 0
        print(f"  {sec:<40} {name:<22} {ptype:<16} {verdict}")
        if sec in tp_btf:
            _, _, ptype, err = load_one(lib, path, index, set_types, True)
            verdict = "ok" if err == 0 else f"FAIL {errno.errorcode.get(-err, err)}"
            failed += err != 0
            print(f"  {sec + '=>tp_btf/sys_enter':<40} {name:<22} {ptype:<16} {verdict}")
    return failed


def libbpf_run(args):
    """Loads OBJ through libbpf and runs PROG once on PACKET while the object,
    and so every map fd, is still open (the kernel empties a program array
    when its last user reference goes, as happens when bpftool exits)."""
    path, prog_name, packet = args
    lib = libbpf()
    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj or lib.libbpf_get_error(obj) or lib.bpf_object__load(obj):
        sys.exit(f"libbpf could not load {path}")
    fd = next(lib.bpf_program__fd(p) for p in programs(lib, obj)
              if lib.bpf_program__name(p).decode() == prog_name)
    data = bytes.fromhex(Path(packet).read_text())
    d_p, _ = ptr(data)
    _, out = bpf(BPF_PROG_TEST_RUN, struct.pack("<IIIIQQII", fd, 0, len(data), 0, d_p, 0, 1, 0))
    print(struct.unpack_from("<I", out, 4)[0])
    lib.bpf_object__close(obj)
    return 0


# --- a minimal bpf(2) loader for legacy maps ---------------------------------

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_bpf = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY = 0, 1, 4
BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 5, 10
BPF_PSEUDO_MAP_FD = 1
PERCPU_TYPES = {5, 6, 10}  # percpu hash, percpu array, lru percpu hash
LEGACY_TYPES = {"socket": ("socket_filter", 1), "xdp": ("xdp", 6)}
keep_alive = []


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr.ljust(144, b"\0"), 144)
    ret = libc.syscall(SYS_bpf, cmd, buf, 144)
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf({cmd}): {os.strerror(e)}")
    return ret, buf.raw


def ptr(data):
    b = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    keep_alive.append(b)
    return ctypes.addressof(b), b


def possible_cpus():
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


class LegacyObject:
    def __init__(self, path):
        d = path.read_bytes()
        self.d = d
        shoff, = struct.unpack_from("<Q", d, 0x28)
        _, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        self.sh = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + 64 * i) for i in range(shnum)]
        names = self.sh[shstrndx]
        self.names = [self.cstr(names[4] + s[0]) for s in self.sh]
        sym = next(i for i, s in enumerate(self.sh) if s[1] == 2)
        self.symstr = self.sh[self.sh[sym][6]][4]
        self.syms = []
        for off in range(self.sh[sym][4], self.sh[sym][4] + self.sh[sym][5], 24):
            st_name, st_info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", d, off)
            self.syms.append((self.cstr(self.symstr + st_name), st_info, shndx, value, size))
        self.maps_idx = self.names.index("maps")
        self.license = self.section("license").split(b"\0")[0] + b"\0"

    def cstr(self, off):
        return self.d[off:self.d.index(b"\0", off)].decode()

    def section(self, name):
        s = self.sh[self.names.index(name)]
        return self.d[s[4]:s[4] + s[5]]

    def map_defs(self):
        """name -> (offset in maps, (type, key_size, value_size, max_entries, flags))"""
        data = self.section("maps")
        out = {}
        for name, info, shndx, value, size in self.syms:
            if shndx == self.maps_idx and info & 0xF == 1:  # STT_OBJECT
                out[name] = (value, struct.unpack_from("<IIIII", data, value))
        return out

    def programs(self):
        """(section name, function name, instructions, relocations)"""
        out = []
        for i, (name, s) in enumerate(zip(self.names, self.sh)):
            if s[1] == 1 and s[2] & 0x4 and s[5]:  # PROGBITS, EXECINSTR, non-empty
                func = next(n for n, info, shndx, v, _ in self.syms if shndx == i and info & 0xF == 2 and v == 0)
                rels = []
                for r in self.sh:
                    if r[1] == 9 and r[7] == i:
                        for off in range(r[4], r[4] + r[5], 16):
                            r_offset, r_info = struct.unpack_from("<QQ", self.d, off)
                            rels.append((r_offset, self.syms[r_info >> 32]))
                out.append((name, func, bytearray(self.d[s[4]:s[4] + s[5]]), rels))
        return out


def create_maps(defs):
    fds = {}
    for name, (_, (mtype, ks, vs, n, flags)) in defs.items():
        attr = struct.pack("<IIIIIII16s", mtype, ks, vs, n, flags, 0, 0, name[:15].encode())
        fds[name], _ = bpf(BPF_MAP_CREATE, attr)
    return fds


def load_legacy_program(obj, defs, fds, sec, func, insns, rels):
    """Patches the map relocations of one program and loads it; returns its fd."""
    by_offset = {off: name for name, (off, _) in defs.items()}
    insns = bytearray(insns)
    for r_offset, (sname, _, shndx, value, _) in rels:
        if shndx != obj.maps_idx:
            sys.exit(f"{sec}: relocation against {sname}, not a map")
        insns[r_offset + 1] = (insns[r_offset + 1] & 0x0F) | (BPF_PSEUDO_MAP_FD << 4)
        struct.pack_into("<i", insns, r_offset + 4, fds[by_offset[value]])
    ins_p, _ = ptr(insns)
    lic_p, _ = ptr(obj.license)
    log_p, log = ptr(bytes(1 << 20))
    attr = struct.pack("<IIQQIIQII16s", LEGACY_TYPES[sec][1], len(insns) // 8, ins_p, lic_p,
                       1, 1 << 20, log_p, 0, 0, func[:15].encode())
    try:
        fd, _ = bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        print(log.value.decode(errors="replace"), file=sys.stderr)
        print(f"  {sec:<10} {func:<16} FAIL {errno.errorcode.get(e.errno)}")
        return None
    return fd


def dump_map(fd, mtype, ks, vs):
    """non-zero entries of a map as {key: value} of little-endian integers."""
    cpus = possible_cpus() if mtype in PERCPU_TYPES else 1
    vsize = ((vs + 7) // 8) * 8 * cpus if mtype in PERCPU_TYPES else vs
    out = {}
    key_p, key = ptr(bytes(ks))
    next_p, nxt = ptr(bytes(ks))
    val_p, val = ptr(bytes(vsize))
    first = True
    while True:
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, struct.pack("<IIQQ", fd, 0, 0 if first else key_p, next_p))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return out
            raise
        first = False
        ctypes.memmove(key, nxt.raw, ks)
        bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("<IIQQQ", fd, 0, key_p, val_p, 0))
        k = int.from_bytes(key.raw[:ks], "little")
        if mtype in PERCPU_TYPES:
            stride = ((vs + 7) // 8) * 8
            v = sum(int.from_bytes(val.raw[c * stride:c * stride + vs], "little") for c in range(cpus))
        else:
            v = int.from_bytes(val.raw[:vs], "little")
        if v:
            out[k] = v


def legacy(args):
    path = Path(args[0])
    obj = LegacyObject(path)
    defs = obj.map_defs()
    for name, (off, d) in defs.items():
        print(f"  map {name}: offset {off}, type {d[0]}, key {d[1]}, value {d[2]}, max {d[3]}, flags {d[4]:#x}")
    failed = 0
    fds = create_maps(defs)
    for sec, func, insns, rels in obj.programs():
        fd = load_legacy_program(obj, defs, fds, sec, func, insns, rels)
        if fd is None:
            failed += 1
            continue
        print(f"  {sec:<40} {func:<22} {LEGACY_TYPES[sec][0]:<16} ok")
        os.close(fd)
    for fd in fds.values():
        os.close(fd)
    if failed:
        return 1
    # each (packet, program) on fresh maps: run once, then read the maps
    for pkt in args[1:]:
        data = bytes.fromhex(Path(pkt).read_text())
        for sec, func, insns, rels in obj.programs():
            fds = create_maps(defs)
            fd = load_legacy_program(obj, defs, fds, sec, func, insns, rels)
            d_p, _ = ptr(data)
            _, out = bpf(BPF_PROG_TEST_RUN, struct.pack("<IIIIQQII", fd, 0, len(data), 0, d_p, 0, 1, 0))
            ret = struct.unpack_from("<I", out, 4)[0]
            maps = []
            for name, (_, (mtype, ks, vs, _, _)) in defs.items():
                entries = dump_map(fds[name], mtype, ks, vs)
                if entries:
                    maps.append(f"{name} {{" + ", ".join(f"{k}: {v}" for k, v in sorted(entries.items())) + "}")
            print(f"  run {func} {Path(pkt).stem}: {ret}; " + ("; ".join(maps) or "maps all zero"))
            for f in [fd, *fds.values()]:
                os.close(f)
    return 0


# --- bpftool map dumps -------------------------------------------------------


def fmt(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        if all(isinstance(x, str) and x.startswith("0x") for x in v):
            return "0x" + "".join(x[2:] for x in reversed(v)) if len(v) <= 8 else "[" + " ".join(x[2:] for x in v) + "]"
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) else str(v)


def nonzero(v):
    if isinstance(v, dict):
        return any(nonzero(x) for x in v.values())
    if isinstance(v, list):
        return any(nonzero(x) for x in v)
    if isinstance(v, str):
        return v not in ("0x00", "", "0")
    return bool(v)


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


SKIPPED_MAP_TYPES = {"ringbuf", "prog_array"}


def map_lines(map_id, label=None):
    """One line per non-empty map, following maps of maps into their inner maps."""
    info = bpftool_json("map", "show", "id", str(map_id))
    if info.get("frozen") or info["type"] in SKIPPED_MAP_TYPES:
        return []  # read-only data, or contents that are ids of this run
    label = label or info["name"]
    lines, parts = [], []
    for e in bpftool_json("map", "dump", "id", str(map_id)):
        if info["type"] in ("array_of_maps", "hash_of_maps"):
            key = int.from_bytes(bytes(int(x, 16) for x in e["key"]), "little")
            inner = int.from_bytes(bytes(int(x, 16) for x in e["value"]), "little")
            lines += map_lines(inner, f"{label}[{key}]")
            continue
        e = e.get("formatted", e)
        if "values" in e:  # per-CPU: the sum over CPUs
            vals = [x["value"] for x in e["values"]]
            e = {"key": e["key"], "value": sum(vals) if all(isinstance(x, int) for x in vals) else vals[0]}
        if "value" not in e or not nonzero(e["value"]):
            continue
        if info["name"].endswith((".bss", ".data")) or ".data." in info["name"]:
            parts.append(fmt(e["value"]))
        else:
            parts.append(f"{fmt(e['key'])}: {fmt(e['value'])}")
    if parts:
        lines.append(f"{label} ({info['type']}): " + ", ".join(parts))
    return lines


def prog_maps(args):
    """The non-empty maps of a pinned program."""
    prog = bpftool_json("prog", "show", "pinned", args[0])
    for map_id in prog.get("map_ids", []):
        for line in map_lines(map_id):
            print(f"      {line}")
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "per-program":
        sys.exit(1 if per_program(args) else 0)
    if cmd == "legacy":
        sys.exit(legacy(args))
    if cmd == "libbpf-run":
        sys.exit(libbpf_run(args))
    if cmd == "prog-maps":
        sys.exit(prog_maps(args))
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
