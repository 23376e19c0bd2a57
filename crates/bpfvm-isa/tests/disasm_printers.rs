//! Snapshot tests of the four printers, with hand-written expectations.
//! Each row: the instruction in the conformance dialect (the input), then
//! its text in `Llvm`, `LlvmGeneric`, `Kernel` and `Conformance` syntax.
//! The LLVM columns were checked against `llvm-objdump-19`; the kernel
//! column follows `kernel/bpf/disasm.c`.

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::disasm::{
    KernelPrinter, Syntax, disassemble, format_insn, objdump_listing, objdump_listing_generic,
};
use bpfvm_isa::{CallKind, Insn, RawInsn, decode_one};

const TABLE: &[[&str; 5]] = &[
    // ALU
    [
        "add32 %r1, 5",
        "w1 += 0x5",
        "w1 += 0x5",
        "w1 += 5",
        "add32 %r1, 5",
    ],
    [
        "sub %r1, -1",
        "r1 -= -0x1",
        "r1 -= -0x1",
        "r1 -= -1",
        "sub %r1, -1",
    ],
    [
        "mov32 %r0, 0xffffffff",
        "w0 = -0x1",
        "w0 = -0x1",
        "w0 = -1",
        "mov32 %r0, -1",
    ],
    [
        "mov %r0, %r10",
        "r0 = r10",
        "r0 = r10",
        "r0 = r10",
        "mov %r0, %r10",
    ],
    [
        "sdiv %r1, %r2",
        "r1 s/= r2",
        "r1 s/= r2",
        "r1 s/= r2",
        "sdiv %r1, %r2",
    ],
    [
        "smod32 %r1, 3",
        "w1 s%= 0x3",
        "w1 s%= 0x3",
        "w1 s%= 3",
        "smod32 %r1, 3",
    ],
    [
        "arsh %r3, 63",
        "r3 s>>= 0x3f",
        "r3 s>>= 0x3f",
        "r3 s>>= 63",
        "arsh %r3, 63",
    ],
    [
        "lsh32 %r9, %r8",
        "w9 <<= w8",
        "w9 <<= w8",
        "w9 <<= w8",
        "lsh32 %r9, %r8",
    ],
    [
        "movsx832 %r1, %r2",
        "w1 = (s8)w2",
        "w1 = (s8)w2",
        "w1 = (s8)w2",
        "movsx832 %r1, %r2",
    ],
    [
        "movsx3264 %r1, %r2",
        "r1 = (s32)r2",
        "r1 = (s32)r2",
        "r1 = (s32)r2",
        "movsx3264 %r1, %r2",
    ],
    ["neg32 %r4", "w4 = -w4", "w4 = -w4", "w4 = -w4", "neg32 %r4"],
    ["neg %r4", "r4 = -r4", "r4 = -r4", "r4 = -r4", "neg %r4"],
    [
        "be16 %r1",
        "r1 = be16 r1",
        "r1 = be16 r1",
        "r1 = be16 r1",
        "be16 %r1",
    ],
    [
        "le64 %r1",
        "r1 = le64 r1",
        "r1 = le64 r1",
        "r1 = le64 r1",
        "le64 %r1",
    ],
    [
        "swap32 %r1",
        "r1 = bswap32 r1",
        "r1 = bswap32 r1",
        "r1 = bswap32 r1",
        "bswap32 %r1",
    ],
    // 64-bit immediates
    [
        "lddw %r0, 0x123456789",
        "r0 = 0x123456789 ll",
        "r0 = 0x123456789 ll",
        "r0 = 0x123456789 ll",
        "lddw %r0, 0x123456789",
    ],
    [
        "lddw %r0, -1",
        "r0 = -0x1 ll",
        "r0 = -0x1 ll",
        "r0 = 0xffffffffffffffff ll",
        "lddw %r0, 0xffffffffffffffff",
    ],
    [
        "lddw_map_fd %r1, 3",
        "ld_pseudo\tr1, 0x1, 0x3",
        "ld_pseudo\tr1, 0x1, 0x3",
        "r1 = map[id:3]",
        "lddw_map_fd %r1, 3",
    ],
    [
        "lddw_map_value %r1, 3, 16",
        "ld_pseudo\tr1, 0x2, 0x3",
        "ld_pseudo\tr1, 0x2, 0x3",
        "r1 = map[id:3][0]+16",
        "lddw_map_value %r1, 3, 16",
    ],
    [
        "lddw_btf_var %r2, -1",
        "ld_pseudo\tr2, 0x3, 0xffffffff",
        "ld_pseudo\tr2, 0x3, 0xffffffff",
        "r2 = btf_var[-1]",
        "lddw_btf_var %r2, -1",
    ],
    [
        "lddw_func %r3, +4",
        "ld_pseudo\tr3, 0x4, 0x4",
        "ld_pseudo\tr3, 0x4, 0x4",
        "r3 = subprog[+4]",
        "lddw_func %r3, +4",
    ],
    [
        "lddw_map_idx %r4, 0, 9",
        "ld_pseudo\tr4, 0x5, 0x0",
        "ld_pseudo\tr4, 0x5, 0x0",
        "r4 = map[idx:0] next_imm=9",
        "lddw_map_idx %r4, 0, 9",
    ],
    [
        "lddw_map_idx_value %r5, 1, -8",
        "ld_pseudo\tr5, 0x6, 0x1",
        "ld_pseudo\tr5, 0x6, 0x1",
        "r5 = map[idx:1]+-8",
        "lddw_map_idx_value %r5, 1, -8",
    ],
    // Memory
    [
        "ldxw %r0, [%r1+4]",
        "w0 = *(u32 *)(r1 + 0x4)",
        "r0 = *(u32 *)(r1 + 0x4)",
        "r0 = *(u32 *)(r1 +4)",
        "ldxw %r0, [%r1+4]",
    ],
    [
        "ldxdw %r0, [%r10-8]",
        "r0 = *(u64 *)(r10 - 0x8)",
        "r0 = *(u64 *)(r10 - 0x8)",
        "r0 = *(u64 *)(r10 -8)",
        "ldxdw %r0, [%r10-8]",
    ],
    [
        "ldxsh %r0, [%r1]",
        "r0 = *(s16 *)(r1 + 0x0)",
        "r0 = *(s16 *)(r1 + 0x0)",
        "r0 = *(s16 *)(r1 +0)",
        "ldxsh %r0, [%r1+0]",
    ],
    [
        "stb [%r10-8], 3",
        "*(u8 *)(r10 - 0x8) = 0x3",
        "*(u8 *)(r10 - 0x8) = 0x3",
        "*(u8 *)(r10 -8) = 3",
        "stb [%r10-8], 3",
    ],
    [
        "stdw [%r10-32768], -3",
        "*(u64 *)(r10 - 0x8000) = -0x3",
        "*(u64 *)(r10 - 0x8000) = -0x3",
        "*(u64 *)(r10 -32768) = -3",
        "stdw [%r10-32768], -3",
    ],
    [
        "stxh [%r1+32767], %r2",
        "*(u16 *)(r1 + 0x7fff) = w2",
        "*(u16 *)(r1 + 0x7fff) = r2",
        "*(u16 *)(r1 +32767) = r2",
        "stxh [%r1+32767], %r2",
    ],
    [
        "stxdw [%r10-8], %r1",
        "*(u64 *)(r10 - 0x8) = r1",
        "*(u64 *)(r10 - 0x8) = r1",
        "*(u64 *)(r10 -8) = r1",
        "stxdw [%r10-8], %r1",
    ],
    // Atomics
    [
        "lock add [%r0+0], %r1",
        "lock *(u64 *)(r0 + 0x0) += r1",
        "lock *(u64 *)(r0 + 0x0) += r1",
        "lock *(u64 *)(r0 +0) += r1",
        "lock add [%r0+0], %r1",
    ],
    [
        "lock or32 [%r0+0], %r1",
        "lock *(u32 *)(r0 + 0x0) |= w1",
        "<unknown>",
        "lock *(u32 *)(r0 +0) |= r1",
        "lock or32 [%r0+0], %r1",
    ],
    [
        "lock fetch add32 [%r0+8], %r1",
        "w1 = atomic_fetch_add((u32 *)(r0 + 0x8), w1)",
        "lock *(u32 *)(r0 + 0x8) += r1",
        "r1 = atomic_fetch_add((u32 *)(r0 +8), r1)",
        "lock fetch add32 [%r0+8], %r1",
    ],
    [
        "lock fetch and [%r0+8], %r1",
        "r1 = atomic_fetch_and((u64 *)(r0 + 0x8), r1)",
        "r1 = atomic_fetch_and((u64 *)(r0 + 0x8), r1)",
        "r1 = atomic64_fetch_and((u64 *)(r0 +8), r1)",
        "lock fetch and [%r0+8], %r1",
    ],
    [
        "lock xchg [%r1+8], %r2",
        "r2 = xchg_64(r1 + 0x8, r2)",
        "r2 = xchg_64(r1 + 0x8, r2)",
        "r2 = atomic64_xchg((u64 *)(r1 +8), r2)",
        "lock xchg [%r1+8], %r2",
    ],
    [
        "lock xchg32 [%r1+8], %r2",
        "w2 = xchg32_32(r1 + 0x8, w2)",
        "<unknown>",
        "r2 = atomic_xchg((u32 *)(r1 +8), r2)",
        "lock xchg32 [%r1+8], %r2",
    ],
    [
        "lock cmpxchg [%r1+8], %r2",
        "r0 = cmpxchg_64(r1 + 0x8, r0, r2)",
        "r0 = cmpxchg_64(r1 + 0x8, r0, r2)",
        "r0 = atomic64_cmpxchg((u64 *)(r1 +8), r0, r2)",
        "lock cmpxchg [%r1+8], %r2",
    ],
    [
        "lock cmpxchg32 [%r1+8], %r2",
        "w0 = cmpxchg32_32(r1 + 0x8, w0, w2)",
        "<unknown>",
        "r0 = atomic_cmpxchg((u32 *)(r1 +8), r0, r2)",
        "lock cmpxchg32 [%r1+8], %r2",
    ],
    [
        "ldacqdw %r0, [%r1+0]",
        "r0 = load_acquire((u64 *)(r1 + 0x0))",
        "r0 = load_acquire((u64 *)(r1 + 0x0))",
        "r0 = load_acquire((u64 *)(r1 +0))",
        "ldacqdw %r0, [%r1+0]",
    ],
    [
        "ldacqb %r0, [%r1-1]",
        "w0 = load_acquire((u8 *)(r1 - 0x1))",
        "r0 = load_acquire((u8 *)(r1 - 0x1))",
        "r0 = load_acquire((u8 *)(r1 -1))",
        "ldacqb %r0, [%r1-1]",
    ],
    [
        "strelh [%r1+2], %r3",
        "store_release((u16 *)(r1 + 0x2), w3)",
        "store_release((u16 *)(r1 + 0x2), r3)",
        "store_release((u16 *)(r1 +2), r3)",
        "strelh [%r1+2], %r3",
    ],
    // Legacy packet access
    [
        "ldabsb 4",
        "r0 = *(u8 *)skb[0x4]",
        "r0 = *(u8 *)skb[0x4]",
        "r0 = *(u8 *)skb[4]",
        "ldabsb 4",
    ],
    [
        "ldindh %r1, -4",
        "r0 = *(u16 *)skb[r1]",
        "r0 = *(u16 *)skb[r1]",
        "r0 = *(u16 *)skb[r1 + -4]",
        "ldindh %r1, -4",
    ],
    // Control flow
    ["ja +3", "goto +0x3", "goto +0x3", "goto pc+3", "ja +3"],
    ["ja -1", "goto -0x1", "goto -0x1", "goto pc-1", "ja -1"],
    [
        "ja32 +100000",
        "gotol +0x186a0",
        "gotol +0x186a0",
        "gotol pc+100000",
        "ja32 +100000",
    ],
    [
        "jgt %r1, %r2, +3",
        "if r1 > r2 goto +0x3",
        "if r1 > r2 goto +0x3",
        "if r1 > r2 goto pc+3",
        "jgt %r1, %r2, +3",
    ],
    [
        "jslt32 %r1, -5, -1",
        "if w1 s< -0x5 goto -0x1",
        "if w1 s< -0x5 goto -0x1",
        "if w1 s< 0xfffffffb goto pc-1",
        "jslt32 %r1, -5, -1",
    ],
    [
        "jset %r1, 0x7fffffff, +0",
        "if r1 & 0x7fffffff goto +0x0",
        "if r1 & 0x7fffffff goto +0x0",
        "if r1 & 0x7fffffff goto pc+0",
        "jset %r1, 2147483647, +0",
    ],
    ["call 5", "call 0x5", "call 0x5", "call unknown#5", "call 5"],
    [
        "call local -3",
        "call -0x3",
        "call -0x3",
        "call pc-3",
        "call local -3",
    ],
    [
        "call runtime 77",
        "call 0x4d",
        "call 0x4d",
        "call kernel-function#77",
        "call runtime 77",
    ],
    ["call %r2", "callx r2", "callx r2", "callx r2", "callx %r2"],
    [
        "may_goto +1",
        "may_goto +0x1",
        "may_goto +0x1",
        "may_goto pc+1",
        "may_goto +1",
    ],
    ["exit", "exit", "exit", "exit", "exit"],
];

fn insn_of(src: &str) -> Insn {
    let slots = assemble(src, Dialect::Conformance).unwrap_or_else(|e| panic!("{src}: {e}"));
    decode_one(&slots).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn printers_match_hand_written_text() {
    let syntaxes = [
        Syntax::Llvm,
        Syntax::LlvmGeneric,
        Syntax::Kernel,
        Syntax::Conformance,
    ];
    let mut bad = Vec::new();
    for row in TABLE {
        let insn = insn_of(row[0]);
        for (syntax, expected) in syntaxes.iter().zip(&row[1..]) {
            let got = format_insn(&insn, *syntax);
            if got != *expected {
                bad.push(format!("{}: {syntax:?}: {got:?} != {expected:?}", row[0]));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn kernel_printer_names_helpers() {
    let names = |id: i32| match id {
        1 => Some("bpf_map_lookup_elem"),
        5 => Some("bpf_ktime_get_ns"),
        _ => None,
    };
    let p = KernelPrinter {
        helper_name: Some(&names),
    };
    let call = |imm| Insn::Call {
        kind: CallKind::Helper,
        imm,
    };
    assert_eq!(p.format_insn(&call(1)), "call bpf_map_lookup_elem#1");
    assert_eq!(p.format_insn(&call(9)), "call unknown#9");
    // Names are for helpers only: a local call at the same imm is not one.
    let local = Insn::Call {
        kind: CallKind::Local,
        imm: 1,
    };
    assert_eq!(p.format_insn(&local), "call pc+1");
    let slots = assemble("r1 = 0x5 ll\ncall 5\nexit", Dialect::Llvm).expect("assembles");
    assert_eq!(
        p.disassemble(&slots),
        "   0: (18) r1 = 0x5 ll\n   2: (85) call bpf_ktime_get_ns#5\n   3: (95) exit\n"
    );
    assert!(format!("{p:?}").contains("KernelPrinter"));
}

const PROGRAM: &str = "\
mov %r0, 0
lddw %r1, 0x100000002
loop:
add %r0, 1
jlt %r0, 3, loop
call local func
exit
func:
mov32 %r0, 7
exit
";

#[test]
fn whole_program_listings() {
    let slots = assemble(PROGRAM, Dialect::Conformance).expect("assembles");
    assert_eq!(
        disassemble(&slots, Syntax::Conformance),
        "   0: mov %r0, 0
   1: lddw %r1, 0x100000002
   3: add %r0, 1
   4: jlt %r0, 3, -2
   5: call local +1
   6: exit
   7: mov32 %r0, 7
   8: exit
"
    );
    assert_eq!(
        disassemble(&slots, Syntax::Llvm),
        "   0: r0 = 0x0
   1: r1 = 0x100000002 ll
   3: r0 += 0x1
   4: if r0 < 0x3 goto -0x2
   5: call 0x1
   6: exit
   7: w0 = 0x7
   8: exit
"
    );
    assert_eq!(
        disassemble(&slots, Syntax::Kernel),
        "   0: (b7) r0 = 0
   1: (18) r1 = 0x100000002 ll
   3: (07) r0 += 1
   4: (a5) if r0 < 0x3 goto pc-2
   5: (85) call pc+1
   6: (95) exit
   7: (b4) w0 = 7
   8: (95) exit
"
    );
    assert_eq!(
        objdump_listing(&slots, ".text"),
        "0000000000000000 <.text>:
       0:\tb7 00 00 00 00 00 00 00\tr0 = 0x0
       1:\t18 01 00 00 02 00 00 00 00 00 00 00 01 00 00 00\tr1 = 0x100000002 ll
       3:\t07 00 00 00 01 00 00 00\tr0 += 0x1
       4:\ta5 00 fe ff 03 00 00 00\tif r0 < 0x3 goto -0x2 <.text+0x18>
       5:\t85 10 00 00 01 00 00 00\tcall 0x1
       6:\t95 00 00 00 00 00 00 00\texit
       7:\tb4 00 00 00 07 00 00 00\tw0 = 0x7
       8:\t95 00 00 00 00 00 00 00\texit
"
    );
    // Every listing reads back (pc prefixes and opcode annotations skipped).
    for (syntax, dialect) in [
        (Syntax::Conformance, Dialect::Conformance),
        (Syntax::Kernel, Dialect::Llvm),
    ] {
        let text = disassemble(&slots, syntax);
        assert_eq!(assemble(&text, dialect), Ok(slots.clone()), "{syntax:?}");
    }
}

#[test]
fn objdump_quirks() {
    // Zero runs: `...`, and a restart in the middle of a slot.
    let slots = [
        RawInsn::new(0x95, 0, 0, 0, 0),
        RawInsn::default(),
        RawInsn::new(0, 0, 0, 0, 0x95),
        RawInsn::new(0xb7, 11, 0, 0, 1),
        RawInsn::new(0x18, 0, 0, 0, 1),
    ];
    assert_eq!(
        objdump_listing(&slots, ".text"),
        "0000000000000000 <.text>:
       0:\t95 00 00 00 00 00 00 00\texit
\t\t...
       2:\t95 00 00 00 b7 0b 00 00\t<unknown>
       3:\t01 00 00 00 18 00 00 00\t<unknown>
       4:\t01\t<unknown>
       4:\t00\t<unknown>
       4:\t00\t<unknown>
       4:\t00\t<unknown>
"
    );
    // A jump before the section start wraps, as objdump's u64 arithmetic does;
    // `r11` exists for LLVM.
    let slots = [
        RawInsn::new(0x05, 0, 0, -2, 0),
        RawInsn::new(0xbf, 11, 1, 0, 0),
    ];
    assert_eq!(
        objdump_listing_generic(&slots, "xdp"),
        "0000000000000000 <xdp>:
       0:\t05 00 fe ff 00 00 00 00\tgoto -0x2 <xdp+0xfffffffffffffff8>
       1:\tbf 1b 00 00 00 00 00 00\tr11 = r1
"
    );
    assert_eq!(objdump_listing(&[], ".text"), "0000000000000000 <.text>:\n");
}

#[test]
fn hand_built_nonsense_prints_unknown() {
    let bad = Insn::Endian {
        op: bpfvm_isa::EndianOp::ToLe,
        bits: 8,
        dst: bpfvm_isa::Reg::R1,
    };
    assert_eq!(format_insn(&bad, Syntax::Llvm), "<unknown>");
    assert_eq!(format_insn(&bad, Syntax::Conformance), "le8 %r1");
}
