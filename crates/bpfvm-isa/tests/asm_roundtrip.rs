//! Property tests: printing then assembling gives back the encoding, for
//! every row of the opcode table with arbitrary operands; and no input
//! makes the assembler or the disassembler panic.

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::disasm::{Syntax, disassemble, format_insn, objdump_listing};
use bpfvm_isa::spec::OPCODES;
use bpfvm_isa::{CallKind, Insn, LdDwKind, RawInsn, decode_one};
use proptest::prelude::*;

/// A valid instruction from a spec row, with arbitrary operands.
fn any_insn() -> impl Strategy<Value = Insn> {
    (
        0..OPCODES.len(),
        any::<u8>(),
        any::<u8>(),
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
    )
        .prop_map(|(row, dst, src, off, imm, next)| {
            let first = OPCODES[row].example(dst, src, off, imm);
            decode_one(&[first, RawInsn::new(0, 0, 0, 0, next)])
                .unwrap_or_else(|e| panic!("row {row} example {first:?}: {e}"))
        })
}

fn encode(i: &Insn) -> Vec<RawInsn> {
    i.encode().as_slice().to_vec()
}

/// Whether objdump's text for `i` keeps every field (see `disasm` docs).
fn llvm_text_is_lossless(i: &Insn) -> bool {
    match *i {
        Insn::Call { kind, .. } => kind == CallKind::Helper,
        Insn::LdDw { kind, next_imm, .. } => kind == LdDwKind::Imm || next_imm == 0,
        Insn::LdInd { imm, .. } => imm == 0,
        _ => true,
    }
}

fn roundtrip(i: &Insn, syntax: Syntax, dialect: Dialect) -> Result<(), TestCaseError> {
    let text = format_insn(i, syntax);
    let slots = assemble(&text, dialect)
        .map_err(|e| TestCaseError::fail(format!("{syntax:?} {text:?}: {e}")))?;
    prop_assert_eq!(slots, encode(i), "{:?} text {:?}", syntax, text);
    Ok(())
}

/// Deterministic coverage: every row of the spec, with operands at the
/// edges, in every syntax that reads back.
#[test]
fn every_spec_row_is_expressible_in_both_dialects() {
    let samples: [(u8, u8, i16, i32, i32); 5] = [
        (0, 0, 0, 0, 0),
        (1, 2, 3, 4, 5),
        (10, 9, -1, -1, -1),
        (5, 10, i16::MIN, i32::MIN, i32::MAX),
        (7, 3, i16::MAX, i32::MAX, i32::MIN),
    ];
    let mut checked = 0;
    for row in OPCODES {
        for (dst, src, off, imm, next) in samples {
            let first = row.example(dst, src, off, imm);
            let i = decode_one(&[first, RawInsn::new(0, 0, 0, 0, next)])
                .unwrap_or_else(|e| panic!("{}: {e}", row.mnemonic));
            for (syntax, dialect) in [
                (Syntax::Conformance, Dialect::Conformance),
                (Syntax::Kernel, Dialect::Llvm),
                (Syntax::Llvm, Dialect::Llvm),
            ] {
                if syntax == Syntax::Llvm && !llvm_text_is_lossless(&i) {
                    continue;
                }
                roundtrip(&i, syntax, dialect)
                    .unwrap_or_else(|e| panic!("{} ({syntax:?}): {e}", row.mnemonic));
                checked += 1;
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn conformance_text_assembles_back(i in any_insn()) {
        roundtrip(&i, Syntax::Conformance, Dialect::Conformance)?;
    }

    #[test]
    fn kernel_text_assembles_back(i in any_insn()) {
        roundtrip(&i, Syntax::Kernel, Dialect::Llvm)?;
    }

    #[test]
    fn llvm_text_assembles_back(i in any_insn()) {
        if llvm_text_is_lossless(&i) {
            roundtrip(&i, Syntax::Llvm, Dialect::Llvm)?;
        } else {
            // Lossy, but still a fixed point: it reads back as an
            // instruction that prints the same.
            let text = format_insn(&i, Syntax::Llvm);
            let slots = assemble(&text, Dialect::Llvm)
                .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            let back = decode_one(&slots).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(format_insn(&back, Syntax::Llvm), text);
        }
    }

    #[test]
    fn listings_assemble_back(insns in prop::collection::vec(any_insn(), 1..20)) {
        let slots: Vec<RawInsn> = insns.iter().flat_map(encode).collect();
        for (syntax, dialect) in [
            (Syntax::Conformance, Dialect::Conformance),
            (Syntax::Kernel, Dialect::Llvm),
        ] {
            let text = disassemble(&slots, syntax);
            prop_assert_eq!(assemble(&text, dialect), Ok(slots.clone()), "{}", text);
        }
    }

    #[test]
    fn disassemblers_never_panic(words in prop::collection::vec(any::<u64>(), 0..40)) {
        let slots: Vec<RawInsn> = words.into_iter().map(RawInsn::from_u64).collect();
        for syntax in [Syntax::Llvm, Syntax::LlvmGeneric, Syntax::Kernel, Syntax::Conformance] {
            let text = disassemble(&slots, syntax);
            prop_assert!(text.lines().count() <= slots.len());
        }
        let listing = objdump_listing(&slots, ".text");
        prop_assert!(listing.starts_with("0000000000000000 <.text>:\n"));
        // Undecodable slots are printed as `.quad`, which reads back.
        let text = disassemble(&slots, Syntax::Conformance);
        prop_assert_eq!(assemble(&text, Dialect::Conformance), Ok(slots.clone()));
        let text = disassemble(&slots, Syntax::Kernel);
        prop_assert_eq!(assemble(&text, Dialect::Llvm), Ok(slots));
    }

    #[test]
    fn assemblers_never_panic_on_random_text(src in "\\PC{0,200}") {
        let _ = assemble(&src, Dialect::Llvm);
        let _ = assemble(&src, Dialect::Conformance);
    }

    #[test]
    fn assemblers_never_panic_on_near_miss_text(
        i in any_insn(),
        syntax in prop::sample::select(vec![Syntax::Llvm, Syntax::Kernel, Syntax::Conformance]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..4),
        pool in prop::sample::select(vec![' ', '+', '-', '(', ')', '[', ']', ',', '#', ';', ':', '*', '%', 'r', 'w', '0', '9', 'x', 's', '=', '<', '>']),
    ) {
        let mut chars: Vec<char> = format_insn(&i, syntax).chars().collect();
        for (at, how, c) in edits {
            let n = chars.len();
            let k = if n == 0 { 0 } else { at.index(n) };
            match how {
                0 if n > 0 => { chars.remove(k); }
                1 => chars.insert(k, c),
                2 => chars.insert(k, pool),
                _ if n > 0 => chars[k] = pool,
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        for dialect in [Dialect::Llvm, Dialect::Conformance] {
            if let Err(e) = assemble(&text, dialect) {
                // Errors point inside the text (or just past a line's end).
                let line = text.lines().nth(e.line.wrapping_sub(1));
                prop_assert!(line.is_some(), "{}", e);
                let width = line.map_or(0, |l| l.chars().count());
                prop_assert!(e.column >= 1 && e.column <= width + 1, "{}", e);
            }
        }
    }
}
