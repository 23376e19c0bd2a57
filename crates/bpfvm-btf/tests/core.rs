//! CO-RE resolution and patching against independent truth:
//! - the compiler's own values: resolving an object against its own BTF
//!   must reproduce the immediates/offsets clang put in the instructions;
//! - the running kernel as bpftool describes it (offsets, sizes, ids, enum
//!   values read from `bpftool btf dump file /sys/kernel/btf/vmlinux`);
//! - libbpf's answers for `conformance-tests/elf/core.o` on this machine's
//!   kernel (recorded from libbpf's debug log in that directory's README);
//! - hand-built target BTFs with a known expected outcome (moved, resized,
//!   bitfield, missing fields; changed and missing enumerators; flavors;
//!   ambiguity), and hand-built instructions for `patch`.

mod common;

use std::collections::HashMap;

use bpfvm_btf::core::{self, CoreError, CoreResolution, POISON_HELPER_ID};
use bpfvm_btf::{
    Btf, BtfExt, CoreRelo, CoreReloKind, EnumValue, IntEncoding, Kind, Member, Type, TypeId,
    TypeKind,
};
use bpfvm_isa::RawInsn;
use common::*;

// ---- helpers --------------------------------------------------------------

/// The value an instruction carries for a relocation: ALU immediate,
/// memory offset, or the 64-bit immediate of a `lddw`.
fn insn_value(slots: &[RawInsn], idx: usize) -> u64 {
    let i = slots[idx];
    match i.opcode & 7 {
        0 => u64::from(i.imm as u32) | (u64::from(slots[idx + 1].imm as u32) << 32),
        1..=3 => i.off as i64 as u64,
        _ => i.imm as i64 as u64,
    }
}

fn code(obj: &str, sec: &str) -> Vec<RawInsn> {
    bpfvm_isa::slots_from_bytes(&section_at(obj, sec)).expect("whole slots")
}

fn section_at(obj: &str, sec: &str) -> Vec<u8> {
    if obj.starts_with('/') {
        use object::{Object, ObjectSection};
        let bytes = std::fs::read(obj).expect("object");
        let file = object::File::parse(&*bytes).expect("ELF");
        file.section_by_name(sec)
            .expect("section")
            .data()
            .expect("data")
            .to_vec()
    } else {
        section(obj, sec)
    }
}

fn parse_obj(obj: &str) -> (Btf, BtfExt) {
    let btf = Btf::parse(&section_at(obj, ".BTF")).expect(".BTF");
    let ext = BtfExt::parse(&section_at(obj, ".BTF.ext"), &btf).expect(".BTF.ext");
    (btf, ext)
}

fn conformance_core() -> Option<String> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance-tests/elf/core.o"
    );
    match std::fs::metadata(p) {
        Ok(_) => Some(p.to_string()),
        Err(_) => {
            eprintln!("SKIP: {p} not present");
            None
        }
    }
}

/// Number of types in `btf` sharing the essential name of `id` (flavors).
fn flavors(btf: &Btf, id: TypeId) -> usize {
    let name = btf.name_of(id).unwrap_or("");
    let ess = &name[..core::essential_name_len(name)];
    btf.types()
        .filter(|(_, t)| {
            let n = btf.string(t.name_off).unwrap_or("");
            !n.is_empty() && &n[..core::essential_name_len(n)] == ess
        })
        .count()
}

// ---- resolution against the object's own BTF ------------------------------

fn check_against_self(obj: &str) {
    let (btf, ext) = parse_obj(obj);
    let mut exact = 0;
    let mut ambiguous = 0;
    let mut unvalidated = 0;
    for sec in &ext.core_relos {
        let mut slots = code(obj, &sec.section);
        for r in &sec.records {
            let idx = (r.insn_off / 8) as usize;
            // resolve_local never searches candidates: always the identity
            let own = core::resolve_local(&btf, r).expect("resolve_local");
            assert_eq!(own.target, Some(own.local), "{obj} #{idx} {r:?}");
            if own.validate {
                assert_eq!(insn_value(&slots, idx), own.local, "{obj} #{idx} {r:?}");
            }
            match core::resolve(&btf, r, &btf) {
                Ok(res) => {
                    assert_eq!(res.target, Some(res.local), "{obj} #{idx} {r:?}");
                    assert_eq!(res.local_size, res.target_size);
                    let before = insn_value(&slots, idx);
                    core::patch(&mut slots, idx, &res).expect("patch");
                    if res.validate {
                        // clang computed the same value from the same types,
                        // and patching leaves it alone
                        assert_eq!(before, res.local, "{obj} #{idx} {r:?}");
                        exact += 1;
                    } else {
                        // libbpf does not check bitfield offsets/sizes/left
                        // shifts and type ids against the compiler (they may
                        // legitimately differ: clang picks 8-byte loads for
                        // some bitfields); the instruction gets our value
                        assert!(
                            matches!(
                                r.kind,
                                CoreReloKind::FieldByteOffset
                                    | CoreReloKind::FieldByteSize
                                    | CoreReloKind::FieldLshiftU64
                                    | CoreReloKind::TypeIdLocal
                                    | CoreReloKind::TypeIdTarget
                            ),
                            "{obj} #{idx} {r:?}"
                        );
                        unvalidated += 1;
                    }
                    assert_eq!(insn_value(&slots, idx), res.local, "{obj} #{idx} {r:?}");
                }
                Err(CoreError::Ambiguous { .. }) => {
                    let mut tmp = slots.clone();
                    core::patch(&mut tmp, idx, &own).expect("identity patch");
                    // libbpf refuses too: the object has flavors of the root
                    // type (task_struct and task_struct___new, ...) and they
                    // disagree; a kernel never has both.
                    assert!(flavors(&btf, r.type_id) > 1, "{obj} #{idx} {r:?}");
                    ambiguous += 1;
                }
                Err(e) => panic!("{obj} #{idx} {r:?}: {e}"),
            }
        }
    }
    eprintln!(
        "{obj}: {exact} equal to clang's, {unvalidated} not validated, {ambiguous} ambiguous"
    );
    assert!(exact > 20, "{obj}: only {exact} exact");
}

#[test]
fn own_btf_reproduces_compiler_values() {
    check_against_self("core.o");
    if let Some(p) = conformance_core() {
        check_against_self(&p);
    }
}

#[test]
fn enum_value_is_sign_extended_like_libbpf() {
    // `enum local_enum { LE_B = -1 }`: clang puts 0xffff_ffff_ffff_ffff in
    // the lddw, libbpf reads the 32-bit value as __s32 into a __u64.
    let (btf, ext) = parse_obj("core.o");
    let slots = code("core.o", "kprobe/x");
    let r = ext.core_relos[0]
        .records
        .iter()
        .find(|r| {
            r.kind == CoreReloKind::EnumvalValue && btf.name_of(r.type_id) == Some("local_enum")
        })
        .expect("relo");
    let res = core::resolve(&btf, r, &btf).expect("resolves");
    assert_eq!(res.local, u64::MAX);
    assert_eq!(insn_value(&slots, (r.insn_off / 8) as usize), u64::MAX);
}

// ---- resolution against the running kernel --------------------------------

/// member name -> (bits_offset, bitfield_size)
type Members = HashMap<String, (u32, u32)>;

/// What `bpftool btf dump file /sys/kernel/btf/vmlinux` says about a few
/// kernel types (parsed from its text, not from our parser).
struct KernelFacts {
    /// struct name -> (id, size, members)
    structs: HashMap<String, (u32, u32, Members)>,
    /// enumerator name -> value
    enumerators: HashMap<String, i64>,
}

fn kernel_facts(raw: &str) -> KernelFacts {
    let mut structs = HashMap::new();
    let mut enumerators = HashMap::new();
    let mut cur: Option<(String, u32, u32, Members)> = None;
    let mut in_enum = false;
    for line in raw.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if let Some((_, _, _, members)) = cur.as_mut() {
                let mut it = rest.split(' ');
                let name = it.next().unwrap_or("").trim_matches('\'').to_string();
                let mut off = 0;
                let mut bits = 0;
                for kv in it {
                    if let Some(v) = kv.strip_prefix("bits_offset=") {
                        off = v.parse().expect("offset");
                    }
                    if let Some(v) = kv.strip_prefix("bitfield_size=") {
                        bits = v.parse().expect("bits");
                    }
                }
                members.insert(name, (off, bits));
            } else if in_enum && let Some((name, val)) = rest.split_once(" val=") {
                let v = val.trim_end_matches("ULL").trim_end_matches("LL");
                let v: i128 = v.parse().expect("value");
                enumerators.insert(name.trim_matches('\'').to_string(), v as i64);
            }
            continue;
        }
        if let Some((name, id, size, members)) = cur.take() {
            structs.entry(name).or_insert((id, size, members));
        }
        in_enum = line.contains("] ENUM ") || line.contains("] ENUM64 ");
        if line.contains("] STRUCT '") {
            let id: u32 = line[1..line.find(']').expect("]")].parse().expect("id");
            let name = line.split('\'').nth(1).expect("name").to_string();
            let size = line
                .split(" size=")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .expect("size")
                .parse()
                .expect("size");
            cur = Some((name, id, size, HashMap::new()));
        }
    }
    if let Some((name, id, size, members)) = cur.take() {
        structs.entry(name).or_insert((id, size, members));
    }
    KernelFacts {
        structs,
        enumerators,
    }
}

/// Reads `size` bytes at `byte_off` of `buf` as a little-endian u64 and
/// extracts a bitfield the way BPF_CORE_READ_BITFIELD does.
fn extract(buf: &[u8], byte_off: u64, size: u64, lshift: u64, rshift: u64, signed: bool) -> u64 {
    let mut v = 0u64;
    for i in (0..size).rev() {
        v = (v << 8) | u64::from(buf[(byte_off + i) as usize]);
    }
    v <<= lshift;
    if signed {
        ((v as i64) >> rshift) as u64
    } else {
        v >> rshift
    }
}

#[test]
fn kernel_values_match_bpftool() {
    let test = "kernel_values_match_bpftool";
    let Some(bytes) = vmlinux_bytes(test) else {
        return;
    };
    let Some(raw) = bpftool_dump(test, VMLINUX, false) else {
        return;
    };
    let facts = kernel_facts(&raw);
    let vmlinux = Btf::parse(&bytes).expect("vmlinux");
    let (btf, ext) = parse_obj("core.o");
    let (task_id, task_size, task) = &facts.structs["task_struct"];
    let byte = |m: &str| u64::from(task[m].0 / 8);
    let mut res_by: HashMap<(String, String, &'static str), CoreResolution> = HashMap::new();
    for r in &ext.core_relos[0].records {
        let res = core::resolve(&btf, r, &vmlinux).expect("resolves against vmlinux");
        let key = (
            btf.name_of(r.type_id).expect("name").to_string(),
            btf.string(r.access_str_off).expect("access").to_string(),
            r.kind.name(),
        );
        if let Some(prev) = res_by.insert(key.clone(), res) {
            assert_eq!(
                prev.target, res.target,
                "{key:?} resolved twice differently"
            );
        }
    }
    let get = |ty: &str, acc: &str, kind: &'static str| {
        res_by
            .get(&(ty.to_string(), acc.to_string(), kind))
            .unwrap_or_else(|| panic!("no {kind} relocation on {ty} {acc}"))
            .target
    };
    // local task_struct: flags prio se in_execve pid tgid real_parent children comm
    assert_eq!(get("task_struct", "0:4", "byte_off"), Some(byte("pid")));
    assert_eq!(
        get("task_struct", "0:6", "byte_off"),
        Some(byte("real_parent"))
    );
    assert_eq!(
        get("task_struct", "0:7", "byte_off"),
        Some(byte("children"))
    );
    assert_eq!(
        get("task_struct", "0:8:3", "byte_off"),
        Some(byte("comm") + 3)
    );
    assert_eq!(get("task_struct", "0:8", "byte_sz"), Some(16));
    // `t->se.vruntime` was compiled as an 8-byte load of the local 8-byte
    // `struct sched_entity`; the kernel's is larger, so, as libbpf, the
    // load must not be resized and gets poisoned instead
    let se = res_by[&("task_struct".to_string(), "0:2".to_string(), "byte_off")];
    assert_eq!(se.target, Some(byte("se")));
    assert!(se.fail_memsz_adjust);
    let mut slots = code("core.o", "kprobe/x");
    let se_idx = ext.core_relos[0]
        .records
        .iter()
        .find(|r| {
            btf.string(r.access_str_off) == Some("0:2") && r.kind == CoreReloKind::FieldByteOffset
        })
        .map(|r| (r.insn_off / 8) as usize)
        .expect("se relocation");
    core::patch(&mut slots, se_idx, &se).expect("poisons");
    assert_eq!(
        (slots[se_idx].opcode, slots[se_idx].imm),
        (0x85, POISON_HELPER_ID)
    );
    assert_eq!(get("task_struct", "0:1", "field_exists"), Some(1));
    assert_eq!(get("task_struct___new", "0:0", "field_exists"), Some(0));
    // the guarded read of the missing field is poisoned
    assert_eq!(get("task_struct___new", "0:0", "byte_off"), None);
    assert_eq!(get("task_struct", "0", "type_exists"), Some(1));
    assert_eq!(
        get("task_struct", "0", "type_size"),
        Some(u64::from(*task_size))
    );
    assert_eq!(
        get("task_struct", "0", "target_type_id"),
        Some(u64::from(*task_id))
    );
    assert_eq!(get("task_struct", "0", "local_type_id"), Some(2));
    assert_eq!(get("list_head", "0", "type_matches"), Some(1));
    assert_eq!(get("task_struct___new", "0", "type_exists"), Some(1));
    let ringbuf = facts.enumerators["BPF_MAP_TYPE_RINGBUF"] as u64;
    let hash = facts.enumerators["BPF_MAP_TYPE_HASH"] as u64;
    assert_eq!(
        get("bpf_map_type___local", "1", "enumval_value"),
        Some(ringbuf)
    );
    assert_eq!(
        get("bpf_map_type___local", "0", "enumval_value"),
        Some(hash)
    );
    assert_eq!(get("bpf_map_type___local", "1", "enumval_exists"), Some(1));
    assert_eq!(get("bpf_map_type___local", "2", "enumval_exists"), Some(0));
    // types the kernel does not have
    assert_eq!(get("local_bits", "0:3", "byte_off"), None);
    assert_eq!(get("local_bits_t", "0", "type_size"), Some(0));
    assert_eq!(get("local_bits", "0", "type_matches"), Some(0));
    assert_eq!(get("local_enum", "1", "enumval_value"), None);

    // The bitfield: whatever offset/size/shifts we computed must extract
    // exactly bits [off, off + size) of the kernel struct.
    let (bit_off, bit_sz) = task["in_execve"];
    assert!(bit_sz > 0);
    let off = get("task_struct", "0:3", "byte_off").expect("offset");
    let size = get("task_struct", "0:3", "byte_sz").expect("size");
    let lshift = get("task_struct", "0:3", "lshift_u64").expect("lshift");
    let rshift = get("task_struct", "0:3", "rshift_u64").expect("rshift");
    assert_eq!(get("task_struct", "0:3", "signed"), Some(0));
    let mut buf = vec![0u8; *task_size as usize];
    for pattern in [0x5a_u8, 0xa5, 0xff, 0x00, 0x3c] {
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = pattern ^ (i as u8));
        let want = (bit_off..bit_off + bit_sz).rev().fold(0u64, |acc, b| {
            (acc << 1) | u64::from(buf[(b / 8) as usize] >> (b % 8) & 1)
        });
        assert_eq!(extract(&buf, off, size, lshift, rshift, false), want);
    }
}

/// libbpf's results for `conformance-tests/elf/core.o` against this
/// kernel, as recorded in `conformance-tests/elf/README.md` (from libbpf's
/// debug log on Linux 6.18.44).
#[test]
fn agrees_with_libbpf_on_this_kernel() {
    let Some(obj) = conformance_core() else {
        return;
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !release.starts_with("6.18.44") {
        eprintln!(
            "SKIP agrees_with_libbpf_on_this_kernel: libbpf's answers are for 6.18.44, this is {release}"
        );
        return;
    }
    let Some(bytes) = vmlinux_bytes("agrees_with_libbpf_on_this_kernel") else {
        return;
    };
    let vmlinux = Btf::parse(&bytes).expect("vmlinux");
    let (btf, ext) = parse_obj(&obj);
    // (root type, access string, kind) -> libbpf's value (None = poisoned)
    let libbpf: &[(&str, &str, CoreReloKind, Option<u64>)] = &[
        (
            "task_struct",
            "0:0",
            CoreReloKind::FieldByteOffset,
            Some(1264),
        ),
        (
            "task_struct",
            "0:1",
            CoreReloKind::FieldByteOffset,
            Some(1268),
        ),
        (
            "task_struct",
            "0:2",
            CoreReloKind::FieldByteOffset,
            Some(1280),
        ),
        (
            "task_struct",
            "0:3:0",
            CoreReloKind::FieldByteOffset,
            Some(1752),
        ),
        (
            "task_struct",
            "0:4",
            CoreReloKind::FieldByteOffset,
            Some(1192),
        ),
        ("task_struct", "0:4", CoreReloKind::FieldByteSize, Some(4)),
        ("task_struct", "0:4", CoreReloKind::FieldLshiftU64, Some(60)),
        ("task_struct", "0:4", CoreReloKind::FieldRshiftU64, Some(63)),
        (
            "task_struct",
            "0:5",
            CoreReloKind::FieldByteOffset,
            Some(1192),
        ),
        ("task_struct", "0:5", CoreReloKind::FieldByteSize, Some(4)),
        ("task_struct", "0:5", CoreReloKind::FieldLshiftU64, Some(55)),
        ("task_struct", "0:5", CoreReloKind::FieldRshiftU64, Some(63)),
        ("task_struct", "0:2", CoreReloKind::FieldExists, Some(1)),
        ("task_struct", "0:6", CoreReloKind::FieldExists, Some(0)),
        ("task_struct", "0:6", CoreReloKind::FieldByteOffset, None),
        ("task_struct", "0:3", CoreReloKind::FieldByteSize, Some(16)),
        ("task_struct", "0", CoreReloKind::TypeExists, Some(1)),
        ("bpfvm_no_such_type", "0", CoreReloKind::TypeExists, Some(0)),
        ("task_struct", "0", CoreReloKind::TypeSize, Some(3264)),
        (
            "task_struct___pids",
            "0",
            CoreReloKind::TypeMatches,
            Some(1),
        ),
        (
            "task_struct___wrong",
            "0",
            CoreReloKind::TypeMatches,
            Some(0),
        ),
        ("pid_type", "1", CoreReloKind::EnumvalExists, Some(1)),
        ("pid_type", "5", CoreReloKind::EnumvalExists, Some(0)),
        ("pid_type", "1", CoreReloKind::EnumvalValue, Some(1)),
        ("pid_type", "3", CoreReloKind::EnumvalValue, Some(3)),
        ("xdp_md", "0:1", CoreReloKind::FieldByteOffset, Some(4)),
        ("xdp_md", "0:0", CoreReloKind::FieldByteOffset, Some(0)),
        ("xdp_md", "0:3", CoreReloKind::FieldByteOffset, Some(12)),
        (
            "xdp_md___shuffled",
            "0:0",
            CoreReloKind::FieldByteOffset,
            Some(16),
        ),
    ];
    let mut seen = vec![false; libbpf.len()];
    for sec in &ext.core_relos {
        let mut slots = code(&obj, &sec.section);
        for r in &sec.records {
            let name = btf.name_of(r.type_id).expect("name");
            let access = btf.string(r.access_str_off).expect("access");
            let res = core::resolve(&btf, r, &vmlinux).expect("resolves");
            if let Some(i) = libbpf
                .iter()
                .position(|(n, a, k, _)| *n == name && *a == access && *k == r.kind)
            {
                assert_eq!(res.target, libbpf[i].3, "{name} {access} {:?}", r.kind);
                seen[i] = true;
            }
            core::patch(&mut slots, (r.insn_off / 8) as usize, &res).expect("patches");
        }
        // the program after relocation: every relocated immediate/offset
        // now carries libbpf's value; the missing field's read is poisoned
        for r in &sec.records {
            let idx = (r.insn_off / 8) as usize;
            let res = core::resolve(&btf, r, &vmlinux).expect("resolves");
            let mem = matches!(slots[idx].opcode & 7, 1..=3);
            match res.target {
                Some(v) if !(mem && res.fail_memsz_adjust) => {
                    assert_eq!(insn_value(&slots, idx), v, "#{idx}");
                }
                _ => {
                    assert_eq!(slots[idx].opcode, 0x85, "#{idx}");
                    assert_eq!(slots[idx].imm, POISON_HELPER_ID, "#{idx}");
                }
            }
        }
    }
    assert!(
        seen.iter().all(|s| *s),
        "not all of libbpf's answers were checked: {seen:?}"
    );
}

// ---- hand-built local/target BTFs -----------------------------------------

/// A tiny BTF builder for tests.
struct B(Btf);

impl B {
    fn new() -> B {
        B(Btf::new())
    }
    fn int(&mut self, name: &str, size: u32, signed: bool) -> TypeId {
        let n = self.0.add_string(name);
        self.0.add_type(Type::new(
            n,
            TypeKind::Int {
                size,
                encoding: IntEncoding {
                    signed,
                    ..Default::default()
                },
                bit_offset: 0,
                bits: (size * 8) as u8,
            },
        ))
    }
    /// `fields`: (name, type, bit offset, bitfield size)
    fn strukt(&mut self, name: &str, size: u32, fields: &[(&str, TypeId, u32, u32)]) -> TypeId {
        let n = self.0.add_string(name);
        let members = fields
            .iter()
            .map(|&(f, ty, bit_offset, bitfield_size)| Member {
                name_off: self.0.add_string(f),
                ty,
                bit_offset,
                bitfield_size,
            })
            .collect();
        self.0
            .add_type(Type::new(n, TypeKind::Struct { size, members }))
    }
    fn union(&mut self, size: u32, fields: &[(&str, TypeId)]) -> TypeId {
        let members = fields
            .iter()
            .map(|&(f, ty)| Member {
                name_off: self.0.add_string(f),
                ty,
                bit_offset: 0,
                bitfield_size: 0,
            })
            .collect();
        self.0
            .add_type(Type::new(0, TypeKind::Union { size, members }))
    }
    fn enm(&mut self, name: &str, values: &[(&str, i64)]) -> TypeId {
        let n = self.0.add_string(name);
        let values = values
            .iter()
            .map(|&(v, value)| EnumValue {
                name_off: self.0.add_string(v),
                value,
            })
            .collect();
        self.0.add_type(Type::new(
            n,
            TypeKind::Enum {
                size: 4,
                signed: false,
                values,
            },
        ))
    }
    fn ptr(&mut self, target: TypeId) -> TypeId {
        self.0.add_type(Type::new(0, TypeKind::Ptr { target }))
    }
    fn array(&mut self, elem: TypeId, nelems: u32) -> TypeId {
        self.0.add_type(Type::new(
            0,
            TypeKind::Array {
                elem,
                index: elem,
                nelems,
            },
        ))
    }
    fn done(self) -> Btf {
        Btf::parse(&self.0.to_bytes()).expect("test BTF is valid")
    }
}

/// Local: `struct s { int a; unsigned int b; unsigned int c: 3; int d; }`
/// and `enum e { X = 1, Y = 2 }`.
fn local() -> (Btf, TypeId, TypeId, TypeId) {
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let uint = b.int("unsigned int", 4, false);
    let s = b.strukt(
        "s",
        16,
        &[
            ("a", int, 0, 0),
            ("b", uint, 32, 0),
            ("c", uint, 64, 3),
            ("d", int, 96, 0),
        ],
    );
    let e = b.enm("e", &[("X", 1), ("Y", 2)]);
    let ptr = b.ptr(s);
    (b.done(), s, e, ptr)
}

fn resolve(
    local: &Btf,
    ty: TypeId,
    access: &str,
    kind: CoreReloKind,
    target: &Btf,
) -> CoreResolution {
    let mut l = local.clone();
    let relo = CoreRelo {
        insn_off: 0,
        type_id: ty,
        access_str_off: l.add_string(access),
        kind,
    };
    core::resolve(&l, &relo, target).expect("resolves")
}

#[test]
fn moved_resized_bitfield_and_missing_fields() {
    let (lbtf, s, _, _) = local();
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let ulong = t.int("unsigned long", 8, false);
    let int = t.int("int", 4, true);
    let uchar = t.int("unsigned char", 1, false);
    // target: struct s { long pad; long a; unsigned long b; unsigned char c: 5 (at 200); int z; }
    // a: moved and grown (signed), b: moved and grown (unsigned), c: moved
    // bitfield, d: gone
    t.strukt(
        "s",
        40,
        &[
            ("pad", long, 0, 0),
            ("a", long, 64, 0),
            ("b", ulong, 128, 0),
            ("c", uchar, 200, 5),
            ("z", int, 256, 0),
        ],
    );
    let tbtf = t.done();
    use CoreReloKind::*;
    let r = resolve(&lbtf, s, "0:0", FieldByteOffset, &tbtf);
    assert_eq!((r.local, r.target), (0, Some(8)));
    assert_eq!((r.local_size, r.target_size), (Some(4), Some(8)));
    // int -> long is signed: libbpf refuses to resize the load
    assert!(r.fail_memsz_adjust);
    let r = resolve(&lbtf, s, "0:1", FieldByteOffset, &tbtf);
    assert_eq!((r.local, r.target), (4, Some(16)));
    assert!(
        !r.fail_memsz_adjust,
        "unsigned widening may resize the load"
    );
    assert_eq!(
        resolve(&lbtf, s, "0:1", FieldByteSize, &tbtf).target,
        Some(8)
    );
    assert_eq!(resolve(&lbtf, s, "0:0", FieldSigned, &tbtf).target, Some(1));
    assert_eq!(resolve(&lbtf, s, "0:1", FieldSigned, &tbtf).target, Some(0));
    // the bitfield: 5 bits at bit 200, an unsigned char: byte 25, 1 byte
    let off = resolve(&lbtf, s, "0:2", FieldByteOffset, &tbtf);
    assert_eq!((off.local, off.target), (8, Some(25)));
    assert!(!off.validate, "bitfield offsets are not validated");
    assert_eq!(
        resolve(&lbtf, s, "0:2", FieldByteSize, &tbtf).target,
        Some(1)
    );
    let l = resolve(&lbtf, s, "0:2", FieldLshiftU64, &tbtf);
    assert_eq!((l.local, l.target), (64 - 3, Some(64 - 5)));
    assert_eq!(
        resolve(&lbtf, s, "0:2", FieldRshiftU64, &tbtf).target,
        Some(64 - 5)
    );
    // the missing field: exists 0, everything else poisoned
    assert_eq!(resolve(&lbtf, s, "0:3", FieldExists, &tbtf).target, Some(0));
    assert_eq!(
        resolve(&lbtf, s, "0:3", FieldByteOffset, &tbtf).target,
        None
    );
    assert_eq!(resolve(&lbtf, s, "0:3", FieldByteSize, &tbtf).target, None);
    assert_eq!(resolve(&lbtf, s, "0:0", FieldExists, &tbtf).target, Some(1));
    // a field that became a bitfield: a whole-field load cannot follow it
    let mut t2 = B::new();
    let int = t2.int("int", 4, true);
    t2.strukt("s", 4, &[("a", int, 0, 7)]);
    let r = resolve(&lbtf, s, "0:0", FieldByteOffset, &t2.done());
    assert_eq!((r.target, r.target_size), (Some(0), None));
    assert!(r.fail_memsz_adjust);
}

#[test]
fn fields_inside_anonymous_members_arrays_and_pointers() {
    // local: struct q { int x; int arr[4]; }, relocating q->arr[2] ("0:1:2")
    // and x through a pointer-to-q typedef root.
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let arr = b.array(int, 4);
    let q = b.strukt("q", 20, &[("x", int, 0, 0), ("arr", arr, 32, 0)]);
    let lbtf = b.done();
    // target: struct q { long pad; union { int x; char c; }; int arr[8]; }
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let int = t.int("int", 4, true);
    let ch = t.int("char", 1, true);
    let u = t.union(4, &[("x", int), ("c", ch)]);
    let arr8 = t.array(int, 8);
    t.strukt(
        "q",
        48,
        &[("pad", long, 0, 0), ("", u, 64, 0), ("arr", arr8, 128, 0)],
    );
    let tbtf = t.done();
    use CoreReloKind::*;
    assert_eq!(
        resolve(&lbtf, q, "0:0", FieldByteOffset, &tbtf).target,
        Some(8)
    );
    let r = resolve(&lbtf, q, "0:1:2", FieldByteOffset, &tbtf);
    assert_eq!((r.local, r.target), (12, Some(24)));
    assert_eq!(
        resolve(&lbtf, q, "0:1", FieldByteSize, &tbtf).target,
        Some(32)
    );
    // q[1].x: the root index scales by the target's size
    assert_eq!(
        resolve(&lbtf, q, "1:0", FieldByteOffset, &tbtf).target,
        Some(56)
    );
    // an index past the target array's end does not match: poison
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let arr2 = t.array(int, 2);
    t.strukt("q", 12, &[("x", int, 0, 0), ("arr", arr2, 32, 0)]);
    let small = t.done();
    assert_eq!(
        resolve(&lbtf, q, "0:1:2", FieldByteOffset, &small).target,
        None
    );
    assert_eq!(
        resolve(&lbtf, q, "0:1:1", FieldByteOffset, &small).target,
        Some(8)
    );
}

#[test]
fn flavors_ambiguity_and_type_relocations() {
    let (lbtf, s, _, _) = local();
    use CoreReloKind::*;
    // a local flavor `s___v2` finds target `s`
    let mut lb = B(lbtf.clone());
    let int = lbtf.find(Kind::Int, "int").expect("int");
    let flavor = lb.strukt("s___v2", 4, &[("a", int, 0, 0)]);
    let lbtf2 = lb.done();
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let ts = t.strukt("s", 8, &[("z", tint, 0, 0), ("a", tint, 32, 0)]);
    let tbtf = t.done();
    assert_eq!(
        resolve(&lbtf2, flavor, "0:0", FieldByteOffset, &tbtf).target,
        Some(4)
    );
    assert_eq!(
        core::candidates(&lbtf2, flavor, &tbtf),
        vec![ts],
        "essential name of s___v2 is s"
    );
    assert_eq!(
        resolve(&lbtf2, flavor, "0", TypeIdTarget, &tbtf).target,
        Some(u64::from(ts.0))
    );
    assert_eq!(
        resolve(&lbtf2, flavor, "0", TypeSize, &tbtf).target,
        Some(8)
    );
    assert_eq!(
        resolve(&lbtf2, flavor, "0", TypeExists, &tbtf).target,
        Some(1)
    );
    // type_matches: all local members must exist with matching types
    assert_eq!(
        resolve(&lbtf2, flavor, "0", TypeMatches, &tbtf).target,
        Some(1)
    );
    assert_eq!(resolve(&lbtf, s, "0", TypeMatches, &tbtf).target, Some(0));
    assert_eq!(resolve(&lbtf, s, "0", TypeExists, &tbtf).target, Some(1));
    let r = resolve(&lbtf, s, "0", TypeIdLocal, &tbtf);
    assert_eq!(
        (r.local, r.target, r.validate),
        (u64::from(s.0), Some(u64::from(s.0)), false)
    );
    // two target flavors that disagree: ambiguous, as libbpf
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("s___x", 4, &[("a", int, 0, 0)]);
    t.strukt("s___y", 8, &[("p", int, 0, 0), ("a", int, 32, 0)]);
    let two = t.done();
    let mut l = lbtf.clone();
    let relo = CoreRelo {
        insn_off: 0,
        type_id: s,
        access_str_off: l.add_string("0:0"),
        kind: FieldByteOffset,
    };
    assert!(matches!(
        core::resolve(&l, &relo, &two),
        Err(CoreError::Ambiguous { .. })
    ));
    // two that agree are fine
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("s___x", 4, &[("a", int, 0, 0)]);
    t.strukt("s___y", 8, &[("a", int, 0, 0), ("q", int, 32, 0)]);
    assert_eq!(
        core::resolve(&l, &relo, &t.done()).expect("agree").target,
        Some(0)
    );
    // no candidate at all
    assert_eq!(
        resolve(&lbtf, s, "0", TypeExists, &Btf::new()).target,
        Some(0)
    );
    assert_eq!(
        resolve(&lbtf, s, "0", TypeSize, &Btf::new()).target,
        Some(0)
    );
}

#[test]
fn enum_values_that_differ_or_vanish() {
    let (lbtf, _, e, _) = local();
    use CoreReloKind::*;
    let mut t = B::new();
    t.enm("e___kernel", &[("Z", 0), ("Y", 20), ("X___old", 10)]);
    let tbtf = t.done();
    let r = resolve(&lbtf, e, "0", EnumvalValue, &tbtf);
    assert_eq!((r.local, r.target), (1, Some(10)));
    assert_eq!(resolve(&lbtf, e, "1", EnumvalValue, &tbtf).target, Some(20));
    assert_eq!(resolve(&lbtf, e, "1", EnumvalExists, &tbtf).target, Some(1));
    let mut t = B::new();
    t.enm("e", &[("Y", 7)]);
    let tbtf = t.done();
    assert_eq!(resolve(&lbtf, e, "0", EnumvalExists, &tbtf).target, Some(0));
    assert_eq!(resolve(&lbtf, e, "0", EnumvalValue, &tbtf).target, None);
    assert_eq!(resolve(&lbtf, e, "1", EnumvalValue, &tbtf).target, Some(7));
}

#[test]
fn bad_relocations_are_errors() {
    let (lbtf, s, e, ptr) = local();
    let mut l = lbtf.clone();
    let relo = |l: &mut Btf, ty, access: &str, kind| CoreRelo {
        insn_off: 0,
        type_id: ty,
        access_str_off: l.add_string(access),
        kind,
    };
    use CoreReloKind::*;
    for (ty, access, kind) in [
        (s, "", FieldByteOffset),
        (s, ":0", FieldByteOffset),
        (s, "0:", FieldByteOffset),
        (s, "0:x", FieldByteOffset),
        (s, "0:-1", FieldByteOffset),
        (s, "0:9", FieldByteOffset),
        (s, "1", TypeExists),
        (e, "5", EnumvalValue),
        (e, "0:0", EnumvalValue),
        (s, "0", EnumvalValue),
        (ptr, "0:0", FieldByteOffset),
    ] {
        let r = relo(&mut l, ty, access, kind);
        assert!(
            matches!(
                core::resolve(&l, &r, &lbtf),
                Err(CoreError::BadAccessString { .. })
            ),
            "{access:?} {kind:?}: {:?}",
            core::resolve(&l, &r, &lbtf)
        );
    }
    let long: String = std::iter::repeat_n("0", 65).collect::<Vec<_>>().join(":");
    let r = relo(&mut l, s, &long, FieldByteOffset);
    assert!(matches!(
        core::resolve(&l, &r, &lbtf),
        Err(CoreError::TooDeep { .. })
    ));
    let r = relo(&mut l, TypeId(999), "0", TypeExists);
    assert!(matches!(
        core::resolve(&l, &r, &lbtf),
        Err(CoreError::UnknownLocalType { type_id: 999 })
    ));
    // an anonymous root type has no candidates to search
    let r = relo(&mut l, ptr, "0", TypeExists);
    assert!(matches!(
        core::resolve(&l, &r, &lbtf),
        Err(CoreError::AnonymousType { .. })
    ));
    // shifts are meaningless on array elements
    let r = relo(&mut l, s, "0", FieldLshiftU64);
    assert!(matches!(
        core::resolve(&l, &r, &lbtf),
        Err(CoreError::Unsupported { .. })
    ));
}

// ---- patch ---------------------------------------------------------------

fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn {
        opcode,
        dst,
        src,
        off,
        imm,
    }
}

fn res(kind: CoreReloKind, local: u64, target: Option<u64>) -> CoreResolution {
    CoreResolution {
        kind,
        local,
        target,
        target_type: None,
        target_size: None,
        local_size: None,
        validate: true,
        fail_memsz_adjust: false,
    }
}

#[test]
fn patch_alu_ldx_st_stx_and_lddw() {
    use CoreReloKind::*;
    // r1 = 4 (mov64 imm) -> 8
    let mut p = vec![insn(0xb7, 1, 0, 0, 4)];
    core::patch(&mut p, 0, &res(FieldByteOffset, 4, Some(8))).expect("alu");
    assert_eq!(p[0], insn(0xb7, 1, 0, 0, 8));
    // r1 += 4 (add32 imm) -> 0xffff_fff0 (stored as the low 32 bits)
    let mut p = vec![insn(0x04, 1, 0, 0, 4)];
    core::patch(&mut p, 0, &res(FieldByteOffset, 4, Some(0xffff_fff0))).expect("alu32");
    assert_eq!(p[0].imm, -16);
    // r0 = *(u32 *)(r1 + 20) -> + 1264
    let mut p = vec![insn(0x61, 0, 1, 20, 0)];
    core::patch(&mut p, 0, &res(FieldByteOffset, 20, Some(1264))).expect("ldx");
    assert_eq!(p[0], insn(0x61, 0, 1, 1264, 0));
    // *(u64 *)(r1 + 8) = r2 (stx) and *(u8 *)(r1 + 1) = 7 (st)
    let mut p = vec![insn(0x7b, 1, 2, 8, 0), insn(0x72, 1, 0, 1, 7)];
    core::patch(&mut p, 0, &res(FieldByteOffset, 8, Some(16))).expect("stx");
    core::patch(&mut p, 1, &res(FieldByteOffset, 1, Some(3))).expect("st");
    assert_eq!((p[0].off, p[1].off, p[1].imm), (16, 3, 7));
    // lddw r2 = 200 -> 0x1_0000_001b
    let mut p = vec![insn(0x18, 2, 0, 0, 200), insn(0, 0, 0, 0, 0)];
    core::patch(&mut p, 0, &res(EnumvalValue, 200, Some(0x1_0000_001b))).expect("lddw");
    assert_eq!((p[0].imm, p[1].imm), (0x1b, 1));
}

#[test]
fn patch_changes_the_load_size() {
    use CoreReloKind::*;
    // r0 = *(u32 *)(r1 + 4): the unsigned field grew to 8 bytes at 16
    let mut p = vec![insn(0x61, 0, 1, 4, 0)];
    let mut r = res(FieldByteOffset, 4, Some(16));
    r.local_size = Some(4);
    r.target_size = Some(8);
    core::patch(&mut p, 0, &r).expect("resize");
    assert_eq!(p[0], insn(0x79, 0, 1, 16, 0), "LDX|MEM|DW");
    // ... and shrank to 2 bytes
    let mut p = vec![insn(0x61, 0, 1, 4, 0)];
    r.target_size = Some(2);
    core::patch(&mut p, 0, &r).expect("resize");
    assert_eq!(p[0].opcode, 0x69, "LDX|MEM|H");
    // the instruction's size must be the local field's
    let mut p = vec![insn(0x71, 0, 1, 4, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &r),
        Err(CoreError::UnexpectedMemSize {
            found: 1,
            expected: 4,
            ..
        })
    ));
    r.target_size = Some(3);
    let mut p = vec![insn(0x61, 0, 1, 4, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &r),
        Err(CoreError::InvalidMemSize { size: 3, .. })
    ));
    // a resize libbpf considers unsafe poisons the load instead
    let mut p = vec![insn(0x61, 0, 1, 4, 0)];
    r.target_size = Some(8);
    r.fail_memsz_adjust = true;
    core::patch(&mut p, 0, &r).expect("poisons");
    assert_eq!(p[0], insn(0x85, 0, 0, 0, 0x0bad_2310));
    // ... but an ALU immediate does not care about sizes
    let mut p = vec![insn(0xb7, 1, 0, 0, 4)];
    core::patch(&mut p, 0, &r).expect("alu");
    assert_eq!(p[0].imm, 16);
}

#[test]
fn patch_poisons() {
    use CoreReloKind::*;
    let poison = insn(0x85, 0, 0, 0, POISON_HELPER_ID);
    let mut p = vec![insn(0x61, 3, 1, 0, 0), insn(0x95, 0, 0, 0, 0)];
    core::patch(&mut p, 0, &res(FieldByteOffset, 0, None)).expect("poison");
    assert_eq!(p, vec![poison, insn(0x95, 0, 0, 0, 0)]);
    // both halves of a lddw
    let mut p = vec![insn(0x18, 2, 0, 0, 5), insn(0, 0, 0, 0, 0)];
    core::patch(&mut p, 0, &res(EnumvalValue, 5, None)).expect("poison lddw");
    assert_eq!(p, vec![poison, poison]);
    assert_eq!(POISON_HELPER_ID, 195_896_080);
}

#[test]
fn patch_refuses_what_libbpf_refuses() {
    use CoreReloKind::*;
    // value not what the local BTF predicts
    let mut p = vec![insn(0xb7, 1, 0, 0, 5)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(FieldByteOffset, 4, Some(8))),
        Err(CoreError::UnexpectedValue {
            found: 5,
            expected: 4,
            new: 8,
            ..
        })
    ));
    // ... unless validation is off (bitfields, type ids)
    let mut r = res(TypeIdTarget, 4, Some(8));
    r.validate = false;
    core::patch(&mut p, 0, &r).expect("not validated");
    assert_eq!(p[0].imm, 8);
    // ALU with a register source
    let mut p = vec![insn(0x0f, 1, 2, 0, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(FieldByteOffset, 0, Some(8))),
        Err(CoreError::UnsupportedInsn { opcode: 0x0f, .. })
    ));
    // jumps
    let mut p = vec![insn(0x05, 0, 0, 0, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(FieldByteOffset, 0, Some(8))),
        Err(CoreError::UnsupportedInsn { .. })
    ));
    // offsets beyond 16 bits
    let mut p = vec![insn(0x61, 0, 1, 4, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(FieldByteOffset, 4, Some(40_000))),
        Err(CoreError::OffsetTooBig { value: 40_000, .. })
    ));
    // a lddw with a pseudo source or without its second slot
    let mut p = vec![insn(0x18, 2, 1, 0, 5), insn(0, 0, 0, 0, 0)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(EnumvalValue, 5, Some(6))),
        Err(CoreError::MalformedLdImm64 { idx: 0 })
    ));
    let mut p = vec![insn(0x18, 2, 0, 0, 5)];
    assert!(matches!(
        core::patch(&mut p, 0, &res(EnumvalValue, 5, Some(6))),
        Err(CoreError::MalformedLdImm64 { idx: 0 })
    ));
    assert!(matches!(
        core::patch(&mut p, 0, &res(EnumvalValue, 5, None)),
        Err(CoreError::InsnOutOfRange { idx: 1, len: 1 })
    ));
    assert!(matches!(
        core::patch(&mut p, 7, &res(EnumvalValue, 5, Some(6))),
        Err(CoreError::InsnOutOfRange { idx: 7, len: 1 })
    ));
    // nothing was changed by the failed attempts
    assert_eq!(p, vec![insn(0x18, 2, 0, 0, 5)]);
}

#[test]
fn essential_names() {
    for (name, ess) in [
        ("task_struct", "task_struct"),
        ("task_struct___new", "task_struct"),
        ("a___b___c", "a___b"),
        ("x____y", "x____y"),
        ("___x", "___x"),
        ("a___", "a___"),
        ("", ""),
    ] {
        assert_eq!(&name[..core::essential_name_len(name)], ess, "{name}");
    }
}

/// Matching types that share members along exponentially many paths is
/// cut off by a step budget instead of running for hours.
#[test]
fn type_comparison_is_bounded() {
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let mut prev = int;
    // 28 levels: within libbpf's 32-level bound, but 2^28 paths
    for _ in 0..28 {
        prev = b.strukt("", 4, &[("a", prev, 0, 0), ("b", prev, 0, 0)]);
    }
    let top = b.strukt("top", 4, &[("a", prev, 0, 0), ("b", prev, 0, 0)]);
    let btf = b.done();
    let mut l = btf.clone();
    let relo = CoreRelo {
        insn_off: 0,
        type_id: top,
        access_str_off: l.add_string("0"),
        kind: CoreReloKind::TypeMatches,
    };
    let start = std::time::Instant::now();
    let err = core::resolve(&l, &relo, &btf).expect_err("too complex");
    assert!(matches!(err, CoreError::TooComplex { .. }), "{err}");
    assert!(start.elapsed().as_secs() < 30);
    // the cheaper compatibility check is still fine
    let relo = CoreRelo {
        kind: CoreReloKind::TypeExists,
        ..relo
    };
    assert_eq!(core::resolve(&l, &relo, &btf).expect("ok").target, Some(1));
}
