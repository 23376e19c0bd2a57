//! `BtfExt::parse` against independent truth: the ELF symbol table (func
//! info), llvm-objdump's BTF line-info disassembly of a DWARF-stripped copy
//! (line info) and llvm-objdump's CO-RE relocation listing (core relos),
//! plus malformed-input cases.

mod common;

use bpfvm_btf::{Btf, BtfError, BtfExt, CoreReloKind, TypeKind};
use common::*;

#[test]
fn func_info_matches_elf_symbols() {
    for obj in ["types.o", "core.o"] {
        let (btf, ext) = fixture(obj);
        assert_eq!(ext.func_info_rec_size, 8);
        let mut ours = Vec::new();
        for sec in &ext.func_info {
            for r in &sec.records {
                let name = btf.name_of(r.type_id).expect("FUNC name").to_string();
                ours.push((sec.section.clone(), u64::from(r.insn_off), name));
            }
        }
        ours.sort();
        assert_eq!(ours, func_symbols(obj), "{obj}");
    }
}

/// (section, instruction index, file, line, source text) from an
/// `llvm-objdump -d -l -S` listing.
fn objdump_lines(text: &str) -> Vec<(String, u32, String, u32, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, u32, String)> = None;
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(s) = l.strip_prefix("Disassembly of section ") {
            section = s.trim_end_matches(':').to_string();
        } else if let Some(loc) = l.strip_prefix("; ") {
            // "; file:line" followed by "; source text"
            let (file, line) = loc.rsplit_once(':').expect("file:line");
            let src = lines
                .next()
                .and_then(|s| s.strip_prefix(';'))
                .map(|s| s.strip_prefix(' ').unwrap_or(s))
                .expect("source line")
                .to_string();
            pending = Some((file.to_string(), line.parse().expect("line number"), src));
        } else if let Some((idx, _)) = l.trim_start().split_once(":\t")
            && let (Some((file, line, src)), Ok(idx)) = (pending.take(), idx.parse::<u32>())
        {
            out.push((section.clone(), idx, file, line, src));
        }
    }
    out
}

#[test]
fn line_info_matches_llvm_objdump() {
    for (obj, listing) in [("types.o", "types.lines"), ("core.o", "core.lines")] {
        let (btf, ext) = fixture(obj);
        assert_eq!(ext.line_info_rec_size, 16);
        // llvm-objdump prints a record's location unless the instruction
        // just before it has a record of its own for the same file and line.
        let mut ours = Vec::new();
        for sec in &ext.line_info {
            let starts = insn_starts(obj, &sec.section);
            let at = |slot: u32| sec.records.iter().find(|r| r.insn_off / 8 == slot);
            for r in &sec.records {
                let slot = r.insn_off / 8;
                let pos = starts
                    .iter()
                    .position(|&s| s == slot)
                    .expect("record at an insn start");
                let prev = pos.checked_sub(1).and_then(|p| at(starts[p]));
                if prev.is_some_and(|p| (p.file_name_off, p.line) == (r.file_name_off, r.line)) {
                    continue;
                }
                ours.push((
                    sec.section.clone(),
                    slot,
                    btf.string(r.file_name_off).expect("file name").to_string(),
                    r.line,
                    btf.string(r.line_off).expect("line text").to_string(),
                ));
                assert!(r.col < 1024);
            }
        }
        let theirs = objdump_lines(&golden(listing));
        assert!(theirs.len() > 10, "{listing}: parsed only {}", theirs.len());
        assert_eq!(ours, theirs, "{obj}");
    }
}

/// (section, byte offset, kind name, type id, rest of the line) of the
/// `CO-RE` lines of an `llvm-objdump -dr` listing.
fn objdump_core(text: &str) -> Vec<(String, u32, String, u32, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for l in text.lines() {
        if let Some(s) = l.strip_prefix("Disassembly of section ") {
            section = s.trim_end_matches(':').to_string();
            continue;
        }
        let Some((off, rest)) = l.trim().split_once(":  CO-RE <") else {
            continue;
        };
        let (kind, rest) = rest.split_once("> [").expect("kind");
        let (id, rest) = rest.split_once("] ").expect("type id");
        out.push((
            section.clone(),
            u32::from_str_radix(off, 16).expect("hex offset"),
            kind.to_string(),
            id.parse().expect("type id"),
            rest.to_string(),
        ));
    }
    out
}

#[test]
fn core_relos_match_llvm_objdump() {
    let (btf, ext) = fixture("core.o");
    let theirs = objdump_core(&golden("core.objdump"));
    let ours: Vec<_> = ext
        .core_relos
        .iter()
        .flat_map(|s| s.records.iter().map(move |r| (s.section.clone(), r)))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.len() > 40);
    let mut kinds = std::collections::BTreeSet::new();
    for ((sec, r), (tsec, off, kind, id, rest)) in ours.iter().zip(&theirs) {
        assert_eq!(sec, tsec);
        assert_eq!(r.insn_off, *off);
        assert_eq!(r.kind.name(), kind);
        assert_eq!(r.type_id.0, *id);
        kinds.insert(r.kind.raw());
        let access = btf.string(r.access_str_off).expect("access string");
        if r.kind.is_field_based() {
            // llvm-objdump ends field relocations with "(access string)"
            assert!(rest.ends_with(&format!("({access})")), "{rest} vs {access}");
        } else if r.kind.is_enumval_based() {
            // ... and names the enumerator the index selects
            let t = btf
                .type_by_id(btf.skip_mods_and_typedefs(r.type_id))
                .expect("enum");
            let e = t.kind.enum_values()[access.parse::<usize>().expect("index")];
            let want = format!("::{} = {}", btf.string(e.name_off).expect("name"), e.value);
            assert!(rest.contains(&want), "{rest} vs {want}");
        } else {
            assert_eq!(access, "0");
            let name = btf.name_of(r.type_id).expect("name");
            assert!(rest.ends_with(name), "{rest} vs {name}");
        }
    }
    // every kind clang can emit is in the fixture
    assert_eq!(kinds.len(), 13, "kinds seen: {kinds:?}");
    assert_eq!(ext.core_relos_for("kprobe/x").len(), ours.len());
    assert!(ext.core_relos_for("nope").is_empty());
}

#[test]
fn types_fixture_has_no_core_relos_section() {
    let (_, ext) = fixture("types.o");
    assert!(ext.core_relos.is_empty());
    assert_eq!(ext.core_relo_rec_size, 0);
    assert_eq!(ext.func_info_for(".text").len(), 2);
}

// ---- malformed .BTF.ext -------------------------------------------------

/// BTF with one FUNC ([3] 'f') and strings "", "f", "sec", "0".
fn base_btf() -> Btf {
    let mut btf = Btf::new();
    let int = btf.add_string("int");
    let int = btf.add_type(bpfvm_btf::Type::new(
        int,
        TypeKind::Int {
            size: 4,
            encoding: Default::default(),
            bit_offset: 0,
            bits: 32,
        },
    ));
    let proto = btf.add_type(bpfvm_btf::Type::new(
        0,
        TypeKind::FuncProto {
            ret: int,
            params: vec![],
        },
    ));
    let f = btf.add_string("f");
    btf.add_type(bpfvm_btf::Type::new(
        f,
        TypeKind::Func {
            proto,
            linkage: bpfvm_btf::Linkage::Global,
        },
    ));
    btf.add_string("sec");
    btf.add_string("0");
    Btf::parse(&btf.to_bytes()).expect("base BTF")
}

/// An ext section with the given func_info / line_info / core_relo blocks
/// (each: record size word + body words).
fn ext_bytes(func: &[u32], line: &[u32], core: &[u32]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut hdr = [0u32; 6];
    for (i, blk) in [func, line, core].iter().enumerate() {
        hdr[i * 2] = (body.len() * 4) as u32;
        hdr[i * 2 + 1] = (blk.len() * 4) as u32;
        body.extend_from_slice(blk);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&32u32.to_le_bytes());
    for w in hdr.iter().chain(&body) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

fn off(btf: &Btf, s: &str) -> u32 {
    let mut b = btf.clone();
    b.add_string(s)
}

#[test]
fn well_formed_ext_parses() {
    let btf = base_btf();
    let sec = off(&btf, "sec");
    let zero = off(&btf, "0");
    let ext = ext_bytes(
        &[8, sec, 2, 0, 3, 16, 3],
        &[16, sec, 1, 8, sec, sec, (42 << 10) | 7],
        &[16, sec, 1, 24, 1, zero, 8],
    );
    let ext = BtfExt::parse(&ext, &btf).expect("parses");
    assert_eq!(ext.func_info[0].section, "sec");
    assert_eq!(ext.func_info[0].records.len(), 2);
    assert_eq!(ext.func_info[0].records[1].insn_off, 16);
    let l = ext.line_info[0].records[0];
    assert_eq!(
        (l.insn_off, l.line, l.col, l.line_col()),
        (8, 42, 7, (42 << 10) | 7)
    );
    let c = ext.core_relos[0].records[0];
    assert_eq!(
        (c.insn_off, c.type_id.0, c.kind),
        (24, 1, CoreReloKind::TypeExists)
    );
    // larger records than known are accepted, the tail skipped
    let ext = ext_bytes(&[12, sec, 1, 0, 3, 0xdead], &[], &[]);
    let ext = BtfExt::parse(&ext, &btf).expect("parses");
    assert_eq!(ext.func_info_rec_size, 12);
    assert_eq!(ext.func_info[0].records[0].type_id.0, 3);
}

#[test]
fn malformed_ext_is_refused_with_location() {
    let btf = base_btf();
    let sec = off(&btf, "sec");
    let zero = off(&btf, "0");
    let bad = |e: Vec<u8>| BtfExt::parse(&e, &btf).expect_err("must fail");

    assert!(matches!(
        bad(vec![0x9f, 0xeb, 1]),
        BtfError::Truncated { .. }
    ));
    let mut e = ext_bytes(&[], &[], &[]);
    e[0] = 0;
    assert!(matches!(bad(e), BtfError::BadMagic { .. }));
    let mut e = ext_bytes(&[], &[], &[]);
    e[3] = 4;
    assert!(matches!(
        bad(e),
        BtfError::UnsupportedFlags { flags: 4, .. }
    ));
    let mut e = ext_bytes(&[], &[], &[]);
    e[4..8].copy_from_slice(&20u32.to_le_bytes());
    assert!(matches!(bad(e), BtfError::BadHeaderLen { hdr_len: 20, .. }));
    // record size smaller than bpf_func_info, or not a multiple of 4
    for rs in [4, 10] {
        match bad(ext_bytes(&[rs, sec, 1, 0, 3], &[], &[])) {
            BtfError::BadExt { what, offset, .. } => {
                assert_eq!((what, offset), ("func_info", 32));
            }
            other => panic!("{other:?}"),
        }
    }
    // zero records in a section
    assert!(matches!(
        bad(ext_bytes(&[8, sec, 0], &[], &[])),
        BtfError::BadExt {
            what: "func_info",
            offset: 36,
            ..
        }
    ));
    // absurd record count
    assert!(matches!(
        bad(ext_bytes(&[8, sec, u32::MAX, 0, 3], &[], &[])),
        BtfError::BadExt {
            what: "func_info",
            ..
        }
    ));
    // block running past the end
    let mut e = ext_bytes(&[8, sec, 1, 0, 3], &[], &[]);
    e[12..16].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        bad(e),
        BtfError::SectionOutOfBounds {
            what: "func_info",
            len: 1000,
            ..
        }
    ));
    // section name not a string
    assert!(matches!(
        bad(ext_bytes(&[8, 9999, 1, 0, 3], &[], &[])),
        BtfError::BadExt {
            what: "func_info",
            ..
        }
    ));
    // type id out of range, and not a FUNC
    for ty in [77, 1] {
        match bad(ext_bytes(&[8, sec, 1, 0, ty], &[], &[])) {
            BtfError::BadExt { what, offset, .. } => assert_eq!((what, offset), ("func_info", 44)),
            other => panic!("{other:?}"),
        }
    }
    // insn_off not at an instruction boundary
    assert!(matches!(
        bad(ext_bytes(&[8, sec, 1, 4, 3], &[], &[])),
        BtfError::BadExt {
            what: "func_info",
            ..
        }
    ));
    // line info string offsets
    assert!(matches!(
        bad(ext_bytes(&[], &[16, sec, 1, 0, 5000, sec, 0], &[])),
        BtfError::BadExt {
            what: "line_info",
            ..
        }
    ));
    // unknown CO-RE relocation kind
    match bad(ext_bytes(&[], &[], &[16, sec, 1, 0, 1, zero, 13])) {
        BtfError::BadExt { what, reason, .. } => {
            assert_eq!(what, "core_relo");
            assert!(reason.contains("unknown relocation kind 13"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // misaligned block offset
    let mut e = ext_bytes(&[8, sec, 1, 0, 3], &[], &[]);
    e[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        bad(e),
        BtfError::Misaligned {
            what: "func_info",
            ..
        }
    ));
}
