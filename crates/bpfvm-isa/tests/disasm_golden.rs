//! Our objdump model against real `llvm-objdump-19` output, byte for byte.
//!
//! `isa-spec/golden/regen.sh` assembles `corpus.s` (every row of
//! `isa-spec/opcodes.csv`) and `probe.s` (encodings beyond valid programs)
//! with `llvm-mc-19` and commits the `.text` bytes and both dumps; no LLVM is
//! needed here.
//!
//! Allowed divergence (the only one): load-acquire and store-release
//! (`BPF_ATOMIC` with imm 0x100 / 0x110). LLVM 19 prints them as
//! `<unknown>`, or for the 32/64-bit forms as `lock ... +=` because it checks
//! only bits 4-7 of `imm`; we print LLVM 21's `load_acquire(...)` /
//! `store_release(...)`.

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::disasm::{objdump_listing, objdump_listing_generic};
use bpfvm_isa::spec::OPCODES;
use bpfvm_isa::{RawInsn, decode_one, slots_from_bytes};

const CORPUS_BIN: &[u8] = include_bytes!("../../../isa-spec/golden/corpus.bin");
const CORPUS_V4: &str = include_str!("../../../isa-spec/golden/corpus.objdump-v4.txt");
const CORPUS_GENERIC: &str = include_str!("../../../isa-spec/golden/corpus.objdump.txt");
const CORPUS_SRC: &str = include_str!("../../../isa-spec/golden/corpus.s");
const PROBE_BIN: &[u8] = include_bytes!("../../../isa-spec/golden/probe.bin");
const PROBE_V4: &str = include_str!("../../../isa-spec/golden/probe.objdump-v4.txt");
const PROBE_GENERIC: &str = include_str!("../../../isa-spec/golden/probe.objdump.txt");
const PROBE_SRC: &str = include_str!("../../../isa-spec/golden/probe.s");

fn slots(bin: &[u8]) -> Vec<RawInsn> {
    slots_from_bytes(bin).expect("golden .bin is whole slots")
}

/// The dump from the section's symbol line on (what `objdump_listing` covers).
fn body(dump: &str) -> &str {
    let start = dump
        .find("0000000000000000 <.text>:")
        .expect("dump has the .text symbol line");
    &dump[start..]
}

/// Bytes of a listing line (`   12:\t61 10 ...\ttext`).
fn line_bytes(line: &str) -> Vec<u8> {
    line.split('\t')
        .nth(1)
        .unwrap_or("")
        .split(' ')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// A load-acquire / store-release slot, printed in LLVM 21 syntax by us.
fn allowed(expected: &str, ours: &str) -> bool {
    let b = line_bytes(expected);
    if b.len() != 8 || b != line_bytes(ours) {
        return false;
    }
    let imm = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let atomic = matches!(b[0], 0xc3 | 0xcb | 0xd3 | 0xdb);
    let ext = match imm {
        0x100 => ours.contains(" = load_acquire(("),
        0x110 => ours.contains("\tstore_release(("),
        _ => false,
    };
    atomic && ext
}

/// Compares line by line; returns the number of allowed divergences.
fn compare(name: &str, expected: &str, ours: &str) -> usize {
    let exp: Vec<&str> = expected.lines().collect();
    let got: Vec<&str> = ours.lines().collect();
    let mut bad = Vec::new();
    let mut allowed_count = 0;
    for (i, (e, g)) in exp.iter().zip(&got).enumerate() {
        if e == g {
            continue;
        }
        if allowed(e, g) {
            allowed_count += 1;
        } else {
            bad.push(format!(
                "line {}:\n  objdump: {e:?}\n  ours:    {g:?}",
                i + 1
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} lines differ, first ones:\n{}",
        bad.len(),
        bad.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(exp.len(), got.len(), "{name}: line count");
    allowed_count
}

#[test]
fn corpus_matches_objdump_v4() {
    let ours = objdump_listing(&slots(CORPUS_BIN), ".text");
    // 4 sizes x 3 operand sets x (acquire, release) in corpus.s.
    assert_eq!(compare("corpus v4", body(CORPUS_V4), &ours), 24);
}

#[test]
fn corpus_matches_objdump_generic() {
    let ours = objdump_listing_generic(&slots(CORPUS_BIN), ".text");
    assert_eq!(compare("corpus generic", body(CORPUS_GENERIC), &ours), 24);
}

#[test]
fn probe_matches_objdump_v4() {
    let ours = objdump_listing(&slots(PROBE_BIN), ".text");
    compare("probe v4", body(PROBE_V4), &ours);
}

#[test]
fn probe_matches_objdump_generic() {
    let ours = objdump_listing_generic(&slots(PROBE_BIN), ".text");
    compare("probe generic", body(PROBE_GENERIC), &ours);
}

#[test]
fn corpus_covers_every_spec_row() {
    let slots = slots(CORPUS_BIN);
    let mut seen = vec![false; OPCODES.len()];
    let mut pc = 0;
    while pc < slots.len() {
        let insn = decode_one(&slots[pc..]).unwrap_or_else(|e| panic!("corpus pc {pc}: {e}"));
        let row = insn.info().expect("decoded instructions have a row");
        let i = OPCODES
            .iter()
            .position(|r| std::ptr::eq(r, row))
            .expect("row is in OPCODES");
        seen[i] = true;
        pc += insn.slots();
    }
    let missing: Vec<_> = OPCODES
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(r, _)| format!("{:#04x} {}", r.opcode, r.mnemonic))
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from corpus.s: {missing:?}"
    );
}

/// Our LLVM-dialect assembler reads llvm-mc's input and produces llvm-mc's bytes.
#[test]
fn llvm_dialect_assembles_the_corpus_like_llvm_mc() {
    for (name, src, bin) in [
        ("corpus.s", CORPUS_SRC, CORPUS_BIN),
        ("probe.s", PROBE_SRC, PROBE_BIN),
    ] {
        let ours = assemble(src, Dialect::Llvm).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = slots(bin);
        for (pc, (a, b)) in ours.iter().zip(&expected).enumerate() {
            assert_eq!(a, b, "{name}: slot {pc}");
        }
        assert_eq!(ours.len(), expected.len(), "{name}: slot count");
    }
}
