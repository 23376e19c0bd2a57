//! The loader against the objects clang builds in `conformance-tests/elf/`: every fixture
//! loads; every linked instruction matches what `llvm-objdump-19 -d -r` shows for the
//! object, relocations resolved to the symbols it names; source lines are the lines of
//! the C files; every broken object fails with its expected error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpfvm_isa::disasm::{Syntax, format_insn};
use bpfvm_isa::{RawInsn, decode_one};
use bpfvm_object::{LoadOptions, Object, PSEUDO_FUNC, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, load};

fn elf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/elf")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(elf_dir())
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    assert!(v.len() >= 11, "{v:?}");
    v
}

fn options(path: &Path) -> LoadOptions<'static> {
    LoadOptions {
        name: path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned(),
        kernel_version: Some(0x0006_1200),
        allow_unresolved_externs: true,
        ..LoadOptions::default()
    }
}

fn load_fixture(path: &Path) -> Object {
    let bytes = std::fs::read(path).expect("read");
    load(&bytes, &options(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One instruction line of an `llvm-objdump -d -r` listing.
#[derive(Debug)]
struct DumpInsn {
    bytes: Vec<u8>,
    text: String,
    reloc: Option<(String, String)>,
}

/// Functions of a listing: (section, function) -> instructions, in order.
fn parse_objdump(text: &str) -> BTreeMap<(String, String), Vec<DumpInsn>> {
    let mut out: BTreeMap<(String, String), Vec<DumpInsn>> = BTreeMap::new();
    let mut section = String::new();
    let mut func = String::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("Disassembly of section ") {
            section = s.trim_end_matches(':').to_string();
        } else if let Some(start) = line.find(" <").filter(|_| line.ends_with(">:")) {
            func = line[start + 2..line.len() - 2].to_string();
        } else if line.starts_with("\t\t") && line.contains("R_BPF_") {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let (Some(kind), Some(sym)) = (words.get(1), words.get(2))
                && let Some(last) = out
                    .get_mut(&(section.clone(), func.clone()))
                    .and_then(|v| v.last_mut())
            {
                last.reloc = Some((kind.to_string(), sym.to_string()));
            }
        } else if let Some((_, rest)) = line.split_once(":\t") {
            let Some((hex, text)) = rest.split_once('\t') else {
                continue;
            };
            let bytes = hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                .collect();
            // The symbolic target `<func+0x..>` llvm-objdump appends is not part of the
            // instruction's text.
            let text = match text.rfind(" <").filter(|_| text.ends_with('>')) {
                Some(i) => text[..i].to_string(),
                None => text.to_string(),
            };
            out.entry((section.clone(), func.clone()))
                .or_default()
                .push(DumpInsn {
                    bytes,
                    text,
                    reloc: None,
                });
        }
    }
    out
}

/// The function of `prog` containing `pc`.
fn function_at(prog: &bpfvm_object::ProgramSpec, pc: usize) -> &str {
    prog.functions
        .iter()
        .rev()
        .find(|(start, _)| *start <= pc)
        .map(|(_, n)| n.as_str())
        .expect("a function")
}

#[test]
fn every_linked_instruction_matches_llvm_objdump() {
    let mut checked = 0;
    for path in fixtures() {
        let obj = load_fixture(&path);
        let dump_text =
            std::fs::read_to_string(path.with_extension("objdump")).expect("objdump golden");
        let dump = parse_objdump(&dump_text);
        for prog in &obj.programs {
            for (fi, (base, fname)) in prog.functions.iter().enumerate() {
                let (_, insns) = dump
                    .iter()
                    .find(|((_, f), _)| f == fname)
                    .unwrap_or_else(|| panic!("{}: `{fname}` not in the listing", path.display()));
                let end = prog
                    .functions
                    .get(fi + 1)
                    .map_or(prog.insns.len(), |(pc, _)| *pc);
                let mut pc = *base;
                for d in insns {
                    let ctx = format!("{} {} pc {pc} ({})", path.display(), prog.name, d.text);
                    assert!(pc < end, "{ctx}: program shorter than the function");
                    let ours = prog.insns[pc];
                    let theirs = RawInsn::from_bytes(d.bytes[..8].try_into().expect("8 bytes"));
                    let slots = if d.bytes.len() == 16 { 2 } else { 1 };
                    match (&d.reloc, ours.opcode) {
                        (None, 0x85) if theirs.src == 1 => {
                            // A local call: same target function, wherever it was placed.
                            // Same callee as in the section: the function holding the
                            // instruction the original offset reached.
                            let target = (pc as i64 + 1 + i64::from(ours.imm)) as usize;
                            let orig_target_in_func =
                                (pc - base) as i64 + 1 + i64::from(theirs.imm);
                            assert_eq!(ours.src, 1, "{ctx}");
                            let callee = function_at(prog, target);
                            if (0..(end - base) as i64).contains(&orig_target_in_func) {
                                assert_eq!(callee, fname, "{ctx}: call within the function");
                            } else {
                                assert_ne!(callee, fname, "{ctx}: call to another function");
                            }
                        }
                        (Some((kind, sym)), 0x85) => {
                            assert_eq!(kind, "R_BPF_64_32", "{ctx}");
                            if ours.src == 1 {
                                let target = (pc as i64 + 1 + i64::from(ours.imm)) as usize;
                                let callee = function_at(prog, target);
                                if sym != ".text" {
                                    assert_eq!(callee, sym, "{ctx}: call target");
                                }
                            } else {
                                assert_eq!(
                                    ours.src, 2,
                                    "{ctx}: a call to an extern is a kfunc call"
                                );
                            }
                        }
                        (Some((kind, sym)), 0x18) => {
                            assert_eq!(kind, "R_BPF_64_64", "{ctx}");
                            match ours.src {
                                PSEUDO_MAP_IDX => {
                                    assert_eq!(
                                        obj.maps[ours.imm as usize].name, *sym,
                                        "{ctx}: map"
                                    );
                                }
                                PSEUDO_MAP_IDX_VALUE => {
                                    let map = &obj.maps[ours.imm as usize];
                                    assert!(
                                        map.section == *sym
                                            || obj.externs.iter().any(|e| e.name == *sym)
                                            || data_symbol_in(&path, sym, &map.section),
                                        "{ctx}: `{sym}` is not in map `{}` ({})",
                                        map.name,
                                        map.section
                                    );
                                }
                                PSEUDO_FUNC => {
                                    let target = (pc as i64 + 1 + i64::from(ours.imm)) as usize;
                                    assert!(
                                        prog.functions.iter().any(|(s, _)| *s == target),
                                        "{ctx}: callback at a function start"
                                    );
                                }
                                _ => {
                                    assert!(
                                        obj.externs.iter().any(|e| e.name == *sym),
                                        "{ctx}: src {} for `{sym}`",
                                        ours.src
                                    );
                                }
                            }
                            assert_eq!(
                                (ours.opcode, ours.dst),
                                (theirs.opcode, theirs.dst),
                                "{ctx}"
                            );
                        }
                        (Some(r), _) => panic!("{ctx}: unexpected relocation {r:?}"),
                        (None, _) => {
                            let ours_bytes: Vec<u8> = prog.insns[pc..pc + slots]
                                .iter()
                                .flat_map(|s| s.to_bytes())
                                .collect();
                            // CO-RE sites carry the target's values, not clang's.
                            if !prog.core_relocations.contains(&pc) {
                                assert_eq!(ours_bytes, d.bytes, "{ctx}: bytes");
                                let insn = decode_one(&prog.insns[pc..])
                                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                                assert_eq!(
                                    format_insn(&insn, Syntax::LlvmGeneric),
                                    d.text,
                                    "{ctx}: disassembly"
                                );
                            }
                        }
                    }
                    pc += slots;
                    checked += 1;
                }
                assert_eq!(pc, end, "{} {fname}: function length", path.display());
            }
        }
    }
    assert!(checked > 1000, "only {checked} instructions compared");
}

/// Whether the object's symbol `sym` lives in section `section` (from the `.sections`
/// listing llvm-readelf made).
fn data_symbol_in(path: &Path, sym: &str, section: &str) -> bool {
    let text = std::fs::read_to_string(path.with_extension("sections")).expect("sections listing");
    let index: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('[')?;
            let (num, rest) = rest.split_once(']')?;
            Some((
                num.trim().to_string(),
                rest.split_whitespace().next()?.to_string(),
            ))
        })
        .collect();
    text.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 8 && w[7] == sym && index.get(w[6]).is_some_and(|s| s == section)
    })
}

#[test]
fn source_lines_are_the_lines_of_the_c_files() {
    let mut checked = 0;
    for path in fixtures() {
        let obj = load_fixture(&path);
        for prog in &obj.programs {
            // Lines from DWARF carry no text (globals_dwarf_only.o).
            for l in prog.line_info.iter().filter(|l| !l.text.is_empty()) {
                let file = elf_dir().join(&l.file);
                let Ok(src) = std::fs::read_to_string(&file) else {
                    continue; // a system header
                };
                let line = src
                    .lines()
                    .nth(l.line as usize - 1)
                    .unwrap_or_else(|| panic!("{} has no line {}", file.display(), l.line));
                assert_eq!(line.trim_end(), l.text.trim_end(), "{}:{}", l.file, l.line);
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "only {checked} lines checked");
}

#[test]
fn core_resolves_against_bpfvm_context_types_by_default() {
    let obj = load_fixture(&elf_dir().join("core.o"));
    let xdp = obj.program("core_xdp").expect("core_xdp");
    assert!(
        xdp.core_relocations.len() >= 4,
        "{:?}",
        xdp.core_relocations
    );
    // `xdp_md___shuffled` puts rx_queue_index first; in the UAPI struct xdp_md bpfvm
    // follows it is at offset 16 (data 0, data_end 4, data_meta 8, ingress_ifindex 12).
    let offsets: Vec<i16> = xdp
        .insns
        .iter()
        .filter(|i| i.opcode == 0x61 && i.src == 1)
        .map(|i| i.off)
        .collect();
    assert!(
        offsets.contains(&16),
        "loads from the context at {offsets:?}"
    );
    // core_task reads kernel types bpfvm does not have: its CO-RE reads are poisoned
    // (libbpf's `call 0xbad2310`), and the load still succeeds.
    let task = obj.program("core_task").expect("core_task");
    assert!(
        task.insns
            .iter()
            .any(|i| i.opcode == 0x85 && i.imm == 0x0bad_2310),
        "no poison call"
    );
}

#[test]
fn the_context_btf_has_the_uapi_context_types() {
    let btf = bpfvm_object::context_btf();
    for name in [
        "xdp_md",
        "__sk_buff",
        "bpf_sock",
        "bpf_sock_addr",
        "bpf_perf_event_data",
    ] {
        assert!(btf.find(bpfvm_btf::Kind::Struct, name).is_some(), "{name}");
    }
    let xdp = btf.find(bpfvm_btf::Kind::Struct, "xdp_md").expect("xdp_md");
    assert_eq!(btf.size_of(xdp).expect("size"), 24);
}

#[test]
fn dwarf_lines_agree_with_btf_lines() {
    // The same object with and without its BTF: DWARF's rows give the file and line BTF
    // line info gives, at every instruction BTF names.
    let with_btf = load_fixture(&elf_dir().join("globals.o"));
    let dwarf_only = load_fixture(&elf_dir().join("globals_dwarf_only.o"));
    assert!(dwarf_only.btf.is_none());
    let (a, b) = (&with_btf.programs[0], &dwarf_only.programs[0]);
    assert_eq!(a.insns, b.insns);
    assert!(b.line_info.len() >= 20, "{} DWARF rows", b.line_info.len());
    // At a function's first instruction LLVM's BTF names the signature's line, DWARF the
    // opening brace's; elsewhere they agree. BTF writes `./src/x.c`, DWARF `src/x.c`.
    let mut same = 0;
    for l in a
        .line_info
        .iter()
        .filter(|l| !a.functions.iter().any(|(pc, _)| *pc == l.pc))
    {
        let d = b.line_at(l.pc).expect("a DWARF line");
        assert_eq!(
            (d.file.trim_start_matches("./"), d.line),
            (l.file.trim_start_matches("./"), l.line),
            "pc {}",
            l.pc
        );
        same += 1;
    }
    assert!(same >= 20, "{same}");
}

#[test]
fn fixtures_have_the_programs_and_maps_libbpf_sees() {
    let obj = load_fixture(&elf_dir().join("multi.o"));
    let kinds: BTreeMap<&str, (&str, u32)> = obj
        .programs
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                (p.kind.type_name(), p.kind.expected_attach_type),
            )
        })
        .collect();
    assert_eq!(obj.programs.len(), 14);
    assert_eq!(kinds["multi_xdp"], ("xdp", 37));
    assert_eq!(kinds["multi_classifier"], ("sched_cls", 0));
    assert_eq!(kinds["multi_fentry"], ("tracing", 24));
    assert_eq!(kinds["multi_lsm"], ("lsm", 27));
    assert_eq!(kinds["multi_custom"], ("unspec", 0));
    assert_eq!((obj.license.as_str(), obj.kern_version), ("GPL", Some(1)));

    let maps = load_fixture(&elf_dir().join("maps_btf.o"));
    let flows = maps.map("flows").expect("flows");
    assert_eq!(
        (
            flows.type_name(),
            flows.key_size,
            flows.value_size,
            flows.max_entries
        ),
        ("hash", 8, 16, 1024)
    );
    assert_eq!(maps.map("no_prealloc").expect("map").flags, 1);
    assert_eq!(maps.map("pinned_counter").expect("map").pinning, 1);
    let outer = maps.map("outer_array").expect("map");
    assert_eq!(
        outer
            .inner
            .as_ref()
            .map(|i| (i.key_size, i.value_size, i.max_entries)),
        Some((4, 4, 4))
    );
    assert_eq!(maps.map("events").expect("map").type_name(), "ringbuf");
    // outer_array = { &inner_a, &inner_b }; jump_table[1] = xdp_tail.
    let index = |name: &str| maps.maps.iter().position(|m| m.name == name).expect("map");
    assert_eq!(
        outer.initial_slots,
        vec![
            (0, bpfvm_object::SlotValue::Map(index("inner_a"))),
            (1, bpfvm_object::SlotValue::Map(index("inner_b")))
        ]
    );
    assert_eq!(
        maps.map("jump_table").expect("map").initial_slots,
        vec![(1, bpfvm_object::SlotValue::Program("xdp_tail".into()))]
    );

    let legacy = load_fixture(&elf_dir().join("maps_legacy.o"));
    let scratch = legacy.map("scratch").expect("scratch");
    assert_eq!(
        (scratch.type_name(), scratch.value_size),
        ("percpu_array", 16)
    );
    assert!(legacy.btf.is_none());

    let globals = load_fixture(&elf_dir().join("globals.o"));
    let data = globals
        .maps
        .iter()
        .find(|m| m.section == ".data")
        .expect(".data");
    // data_seed = 42 first, then data_weights {1, 10, 100, 1000} as u16.
    assert_eq!(
        data.initial_data.as_ref().map(|d| d[..4].to_vec()),
        Some(42u32.to_le_bytes().to_vec())
    );
    let rodata = globals
        .maps
        .iter()
        .find(|m| m.section == ".rodata")
        .expect(".rodata");
    assert!(rodata.frozen && rodata.flags & (1 << 7) != 0);
    let strs = globals
        .maps
        .iter()
        .find(|m| m.section == ".rodata.str1.1")
        .expect("strings");
    assert!(
        strs.initial_data
            .as_ref()
            .is_some_and(|d| d.windows(5).any(|w| w == b"bpfvm"))
    );
}

#[test]
fn broken_objects_fail_with_their_expected_error() {
    let dir = elf_dir().join("broken");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("broken dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "o") {
            continue;
        }
        let want = std::fs::read_to_string(path.with_extension("expect")).expect("expect file");
        let bytes = std::fs::read(&path).expect("read");
        let err = load(&bytes, &options(&path)).expect_err(&path.display().to_string());
        assert!(
            err.to_string().contains(want.trim()),
            "{}: `{err}` lacks `{}`",
            path.display(),
            want.trim()
        );
        n += 1;
    }
    assert!(n >= 8);
}

#[test]
fn limits_are_typed_errors() {
    let path = elf_dir().join("maps_btf.o");
    let bytes = std::fs::read(&path).expect("read");
    let mut opts = options(&path);
    opts.limits.max_map_entries = 100;
    let e = load(&bytes, &opts).expect_err("flows has 1024 entries");
    assert!(
        e.to_string()
            .contains("limit exceeded: max_entries is 1024"),
        "{e}"
    );
    let mut opts = options(&path);
    opts.limits.max_section_bytes = 64;
    assert!(
        load(&bytes, &opts)
            .expect_err("sections are larger")
            .to_string()
            .contains("section size")
    );
}

mod mutation {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<Vec<u8>> {
        fixtures()
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Flipped bytes and cut files anywhere in a real object: a typed error or a
        /// loaded object, never a panic.
        #[test]
        fn mutated_objects_never_panic(
            which in 0usize..11,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let corpus = corpus();
            let mut bytes = corpus[which % corpus.len()].clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len()));
            }
            let _ = load(&bytes, &LoadOptions { allow_unresolved_externs: true, ..LoadOptions::default() });
        }
    }
}
