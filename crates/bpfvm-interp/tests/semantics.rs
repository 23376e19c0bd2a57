//! Whole programs exercising the RFC 9669 corners, with values computed by hand.

mod common;

use bpfvm_interp::Interpreter;
use bpfvm_isa::{AluOp, AtomicOp, EndianOp, Insn, JmpOp, LdDwKind, Size, Width};
use bpfvm_runtime::{Engine, RunOptions};
use common::*;

#[test]
fn immediates_are_sign_extended_for_alu64_and_truncated_for_alu32() {
    assert_eq!(r0(&[mov(R0, -1), EXIT]), u64::MAX);
    assert_eq!(r0(&[alu32(AluOp::Mov, R0, -1), EXIT]), 0xffff_ffff);
    // ALU64 div by the immediate -1 divides by u64::MAX.
    assert_eq!(r0(&[mov(R0, 5), alu64(AluOp::Div, R0, -1), EXIT]), 0);
    // ALU32 div by the immediate -1 divides by 0xffff_ffff (imm as u32)...
    assert_eq!(
        r0(&[alu32(AluOp::Mov, R0, -2), alu32(AluOp::Div, R0, -1), EXIT]),
        0
    );
    // ...while sdiv32 reads it as s32: -2 / -1 = 2.
    assert_eq!(
        r0(&[alu32(AluOp::Mov, R0, -2), alu32(AluOp::SDiv, R0, -1), EXIT]),
        2
    );
    // add32 wraps and zero-extends: 0xffff_ffff + 1 = 0 with the upper bits cleared.
    assert_eq!(
        r0(&[
            lddw(R0, 0x1234_5678_ffff_ffff),
            alu32(AluOp::Add, R0, 1),
            EXIT
        ]),
        0
    );
}

#[test]
fn division_and_modulo_by_zero() {
    let big = 0xdead_beef_0000_0007;
    assert_eq!(
        r0(&[lddw(R0, big), mov(R1, 0), alu64r(AluOp::Div, R0, R1), EXIT]),
        0
    );
    assert_eq!(
        r0(&[lddw(R0, big), mov(R1, 0), alu64r(AluOp::Mod, R0, R1), EXIT]),
        big
    );
    assert_eq!(
        r0(&[lddw(R0, big), mov(R1, 0), alu32r(AluOp::Mod, R0, R1), EXIT]),
        7
    );
    assert_eq!(
        r0(&[lddw(R0, big), mov(R1, 0), alu32r(AluOp::Div, R0, R1), EXIT]),
        0
    );
    assert_eq!(
        r0(&[lddw(R0, big), mov(R1, 0), alu64r(AluOp::SMod, R0, R1), EXIT]),
        big
    );
    assert_eq!(r0(&[lddw(R0, big), alu32(AluOp::SMod, R0, 0), EXIT]), 7);
    // A 32-bit divisor of 0x1_0000_0000 is zero.
    assert_eq!(
        r0(&[
            mov(R0, 9),
            lddw(R1, 0x1_0000_0000),
            alu32r(AluOp::Mod, R0, R1),
            EXIT
        ]),
        9
    );
}

#[test]
fn signed_division_overflow_and_truncation() {
    let min = i64::MIN as u64;
    assert_eq!(r0(&[lddw(R0, min), alu64(AluOp::SDiv, R0, -1), EXIT]), min);
    assert_eq!(r0(&[lddw(R0, min), alu64(AluOp::SMod, R0, -1), EXIT]), 0);
    assert_eq!(
        r0(&[
            alu32(AluOp::Mov, R0, i32::MIN),
            alu32(AluOp::SDiv, R0, -1),
            EXIT
        ]),
        0x8000_0000
    );
    assert_eq!(
        r0(&[
            alu32(AluOp::Mov, R0, i32::MIN),
            alu32(AluOp::SMod, R0, -1),
            EXIT
        ]),
        0
    );
    // -13 % 3 = -1 and 13 % -3 = 1, truncating like C.
    assert_eq!(
        r0(&[mov(R0, -13), alu64(AluOp::SMod, R0, 3), EXIT]),
        (-1i64) as u64
    );
    assert_eq!(r0(&[mov(R0, 13), alu64(AluOp::SMod, R0, -3), EXIT]), 1);
    assert_eq!(
        r0(&[mov(R0, -13), alu32(AluOp::SMod, R0, 3), EXIT]),
        0xffff_ffff
    );
}

#[test]
fn shifts_mask_their_amount() {
    assert_eq!(
        r0(&[mov(R0, 1), mov(R1, 65), alu64r(AluOp::Lsh, R0, R1), EXIT]),
        2
    );
    assert_eq!(
        r0(&[mov(R0, 1), mov(R1, 33), alu32r(AluOp::Lsh, R0, R1), EXIT]),
        2
    );
    assert_eq!(
        r0(&[
            alu32(AluOp::Mov, R0, i32::MIN),
            alu32(AluOp::Arsh, R0, 4),
            EXIT
        ]),
        0xf800_0000
    );
    assert_eq!(
        r0(&[mov(R0, i32::MIN), alu64(AluOp::Arsh, R0, 4), EXIT]),
        0xffff_ffff_f800_0000
    );
    assert_eq!(r0(&[mov(R0, -1), alu64(AluOp::Rsh, R0, 60), EXIT]), 0xf);
    // rsh32 works on the low 32 bits only.
    assert_eq!(r0(&[mov(R0, -1), alu32(AluOp::Rsh, R0, 28), EXIT]), 0xf);
}

#[test]
fn negation() {
    assert_eq!(r0(&[mov(R0, 1), neg(Width::W64, R0), EXIT]), u64::MAX);
    assert_eq!(r0(&[mov(R0, 1), neg(Width::W32, R0), EXIT]), 0xffff_ffff);
    assert_eq!(
        r0(&[mov(R0, i32::MIN), neg(Width::W32, R0), EXIT]),
        0x8000_0000
    );
}

#[test]
fn sign_extending_moves() {
    assert_eq!(
        r0(&[mov(R1, 0x80), alu64r(AluOp::MovSx8, R0, R1), EXIT]),
        0xffff_ffff_ffff_ff80
    );
    assert_eq!(
        r0(&[mov(R1, 0x80), alu32r(AluOp::MovSx8, R0, R1), EXIT]),
        0xffff_ff80
    );
    assert_eq!(
        r0(&[mov(R1, 0x1_8000), alu64r(AluOp::MovSx16, R0, R1), EXIT]),
        0xffff_ffff_ffff_8000
    );
    assert_eq!(
        r0(&[mov(R1, 0x1_8000), alu32r(AluOp::MovSx16, R0, R1), EXIT]),
        0xffff_8000
    );
    assert_eq!(
        r0(&[
            lddw(R1, 0x7fff_ffff_8000_0000),
            alu64r(AluOp::MovSx32, R0, R1),
            EXIT
        ]),
        0xffff_ffff_8000_0000
    );
    // mov32 reg zero-extends even onto itself.
    assert_eq!(
        r0(&[mov(R0, -1), alu32r(AluOp::Mov, R0, R0), EXIT]),
        0xffff_ffff
    );
}

#[test]
fn byte_order() {
    let v = 0x0123_4567_89ab_cdef;
    let run1 = |op, bits| r0(&[lddw(R0, v), endian(op, bits, R0), EXIT]);
    assert_eq!(run1(EndianOp::Swap, 16), 0xefcd);
    assert_eq!(run1(EndianOp::Swap, 32), 0xefcd_ab89);
    assert_eq!(run1(EndianOp::Swap, 64), 0xefcd_ab89_6745_2301);
    if cfg!(target_endian = "little") {
        assert_eq!(run1(EndianOp::ToBe, 16), 0xefcd);
        assert_eq!(run1(EndianOp::ToBe, 32), 0xefcd_ab89);
        assert_eq!(run1(EndianOp::ToBe, 64), 0xefcd_ab89_6745_2301);
        assert_eq!(run1(EndianOp::ToLe, 16), 0xcdef);
        assert_eq!(run1(EndianOp::ToLe, 32), 0x89ab_cdef);
        assert_eq!(run1(EndianOp::ToLe, 64), v);
    }
}

#[test]
fn jumps_compare_the_right_width_and_signedness() {
    // if r0 == 0 (low 32 bits) goto +1; JMP32 ignores the upper half.
    let taken =
        |cmp: Insn, setup: Insn| r0(&[setup, mov(R1, 0), cmp, mov(R1, 1), movr(R0, R1), EXIT]);
    assert_eq!(
        taken(jmp32(JmpOp::Eq, R0, 0, 1), lddw(R0, 0x1_0000_0000)),
        0
    );
    assert_eq!(taken(jmp(JmpOp::Eq, R0, 0, 1), lddw(R0, 0x1_0000_0000)), 1);
    // The immediate -1 is sign-extended to 64 bits for JMP.
    assert_eq!(taken(jmp(JmpOp::Eq, R0, -1, 1), mov(R0, -1)), 0);
    assert_eq!(taken(jmp(JmpOp::Eq, R0, -1, 1), lddw(R0, 0xffff_ffff)), 1);
    assert_eq!(taken(jmp32(JmpOp::Eq, R0, -1, 1), lddw(R0, 0xffff_ffff)), 0);
    // Unsigned vs signed: -1 > 1 unsigned, -1 < 1 signed.
    assert_eq!(taken(jmp(JmpOp::Gt, R0, 1, 1), mov(R0, -1)), 0);
    assert_eq!(taken(jmp(JmpOp::Sgt, R0, 1, 1), mov(R0, -1)), 1);
    assert_eq!(taken(jmp(JmpOp::Slt, R0, 1, 1), mov(R0, -1)), 0);
    assert_eq!(taken(jmp32(JmpOp::Slt, R0, 0, 1), lddw(R0, 0x8000_0000)), 0);
    assert_eq!(taken(jmp(JmpOp::Slt, R0, 0, 1), lddw(R0, 0x8000_0000)), 1);
    assert_eq!(taken(jmp(JmpOp::Set, R0, 6, 1), mov(R0, 4)), 0);
    assert_eq!(taken(jmp(JmpOp::Set, R0, 3, 1), mov(R0, 4)), 1);
    assert_eq!(taken(jmpr(JmpOp::Le, R0, R1, 1), mov(R0, 0)), 0);
    // gotol takes its offset from imm.
    assert_eq!(
        r0(&[
            mov(R0, 1),
            Insn::Ja { off: 1, long: true },
            mov(R0, 2),
            EXIT
        ]),
        1
    );
}

#[test]
fn loads_and_stores_touch_memory_in_place() {
    let mut mem = [0x80, 0xff, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let prog = [
        ldxs(Size::B, R3, R1, 0),   // r3 = (s8) 0x80
        ldxs(Size::H, R4, R1, 2),   // r4 = (s16) 0x8000
        ldxs(Size::W, R5, R1, 0),   // r5 = (s32) 0x8000ff80
        ldx(Size::H, R0, R1, 0),    // r0 = 0xff80
        stx(Size::DW, R1, 8, R3),   // mem[8..16] = r3
        st(Size::B, R1, 4, -2),     // mem[4] = 0xfe
        st(Size::W, R1, 5, 0x0102), // mem[5..9] = 02 01 00 00 (overwrites mem[8])
        alu64r(AluOp::Add, R0, R3),
        alu64r(AluOp::Add, R0, R4),
        alu64r(AluOp::Add, R0, R5),
        EXIT,
    ];
    let r = run_mem(&prog, &mut mem).expect("runs");
    let expected = 0xff80u64
        .wrapping_add(0xffff_ffff_ffff_ff80)
        .wrapping_add(0xffff_ffff_ffff_8000)
        .wrapping_add(0xffff_ffff_8000_ff80);
    assert_eq!(r, expected);
    // stx dw wrote 0xff..80 at 8..16, then st w wrote 02 01 00 00 at 5..9.
    assert_eq!(
        mem,
        [
            0x80, 0xff, 0x00, 0x80, 0xfe, 0x02, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff
        ]
    );
}

#[test]
fn stack_is_zeroed_and_private_per_run() {
    let prog = [
        ldx(Size::DW, R0, R10, -8),
        st(Size::DW, R10, -8, 7),
        ldx(Size::B, R1, R10, -512),
        alu64r(AluOp::Add, R0, R1),
        EXIT,
    ];
    assert_eq!(r0(&prog), 0);
    assert_eq!(r0(&prog), 0);
}

#[test]
fn lddw_loads_64_bits() {
    assert_eq!(
        r0(&[lddw(R0, 0x1122_3344_5566_7788), EXIT]),
        0x1122_3344_5566_7788
    );
}

#[test]
fn atomics() {
    let add = AtomicOp::Add { fetch: false };
    let fetch_add = AtomicOp::Add { fetch: true };
    // 64-bit fetch-add puts the old value in src.
    let prog = [
        st(Size::DW, R10, -8, 40),
        mov(R1, 2),
        atomic(Size::DW, fetch_add, R10, -8, R1),
        atomic(Size::DW, add, R10, -8, R1),
        ldx(Size::DW, R0, R10, -8),
        alu64(AluOp::Lsh, R0, 8),
        alu64r(AluOp::Or, R0, R1),
        EXIT,
    ];
    assert_eq!(r0(&prog), (82 << 8) | 40); // 40 + 2, then + 40 (r1 got the old value)
    // 32-bit fetch ops zero-extend the old value and leave the upper word alone.
    let prog = [
        lddw(R2, 0xaaaa_aaaa_ffff_fff0),
        stx(Size::DW, R10, -8, R2),
        lddw(R1, 0xffff_ffff_0000_000f),
        atomic(Size::W, AtomicOp::Or { fetch: true }, R10, -8, R1),
        ldx(Size::DW, R0, R10, -8),
        alu64r(AluOp::Xor, R0, R1), // r0 = new ^ old
        EXIT,
    ];
    assert_eq!(r0(&prog), 0xaaaa_aaaa_ffff_ffff ^ 0xffff_fff0);
    let fetch = |op| {
        r0(&[
            st(Size::DW, R10, -8, 0b1100),
            mov(R1, 0b1010),
            atomic(Size::DW, op, R10, -8, R1),
            ldx(Size::DW, R0, R10, -8),
            alu64(AluOp::Lsh, R0, 8),
            alu64r(AluOp::Or, R0, R1),
            EXIT,
        ])
    };
    assert_eq!(fetch(AtomicOp::And { fetch: true }), (0b1000 << 8) | 0b1100);
    assert_eq!(fetch(AtomicOp::Xor { fetch: true }), (0b0110 << 8) | 0b1100);
    assert_eq!(fetch(AtomicOp::Or { fetch: false }), (0b1110 << 8) | 0b1010);
    assert_eq!(fetch(AtomicOp::Xchg), (0b1010 << 8) | 0b1100);
}

#[test]
fn cmpxchg_compares_with_r0() {
    // Success: memory == r0, so memory gets src; r0 gets the old value.
    let prog = |r0_value: u64, size: Size| {
        [
            lddw(R2, 0x1_0000_0005),
            stx(Size::DW, R10, -8, R2),
            lddw(R0, r0_value),
            mov(R1, 9),
            atomic(size, AtomicOp::CmpXchg, R10, -8, R1),
            ldx(Size::DW, R3, R10, -8),
            alu64(AluOp::Lsh, R3, 8),
            alu64r(AluOp::Or, R0, R3),
            EXIT,
        ]
    };
    // 64-bit: equal → stored.
    assert_eq!(r0(&prog(0x1_0000_0005, Size::DW)), (9 << 8) | 0x1_0000_0005);
    // 64-bit: not equal → unchanged, r0 = old.
    assert_eq!(
        r0(&prog(5, Size::DW)),
        (0x1_0000_0005u64 << 8) | 0x1_0000_0005
    );
    // 32-bit: compares the low 32 bits of r0 only; r0 = old low word, zero-extended.
    assert_eq!(
        r0(&prog(0xffff_ffff_0000_0005, Size::W)),
        (0x1_0000_0009u64 << 8) | 5
    );
    assert_eq!(r0(&prog(0x6, Size::W)), (0x1_0000_0005u64 << 8) | 5);
}

#[test]
fn load_acquire_store_release() {
    let prog = [
        lddw(R1, 0x8877_6655_4433_2211),
        Insn::StoreRelease {
            size: Size::DW,
            dst: R10,
            src: R1,
            off: -8,
        },
        Insn::StoreRelease {
            size: Size::B,
            dst: R10,
            src: R1,
            off: -7,
        },
        Insn::LoadAcquire {
            size: Size::H,
            dst: R0,
            src: R10,
            off: -8,
        },
        EXIT,
    ];
    if cfg!(target_endian = "little") {
        assert_eq!(r0(&prog), 0x1111);
    }
}

#[test]
fn legacy_packet_loads_are_big_endian_and_end_with_0_out_of_bounds() {
    let mem = [0x12, 0x34, 0x56, 0x78];
    let run = |prog: &[Insn]| run_mem(prog, &mut mem.clone()).expect("runs");
    let abs = |size, imm| Insn::LdAbs { size, imm };
    let ind = |size, src, imm| Insn::LdInd { size, src, imm };
    assert_eq!(run(&[abs(Size::W, 0), EXIT]), 0x1234_5678);
    assert_eq!(run(&[abs(Size::H, 2), EXIT]), 0x5678);
    assert_eq!(run(&[abs(Size::B, 3), EXIT]), 0x78);
    assert_eq!(run(&[mov(R6, 1), ind(Size::H, R6, 1), EXIT]), 0x5678);
    // r6 = -1: offset -1 + 1 = 0.
    assert_eq!(run(&[mov(R6, -1), ind(Size::B, R6, 1), EXIT]), 0x12);
    // Out of bounds: the program ends at once with 0, whatever r0 held.
    let oob = [mov(R0, 7), abs(Size::W, 1), mov(R0, 9), EXIT];
    assert_eq!(run(&oob), 0);
    assert_eq!(run(&[mov(R0, 7), abs(Size::B, -1), EXIT]), 0);
    assert_eq!(
        run(&[mov(R0, 7), mov(R6, -2), ind(Size::B, R6, 1), EXIT]),
        0
    );
    // Also from inside a local function.
    assert_eq!(
        run(&[mov(R0, 7), call_local(1), EXIT, abs(Size::W, 4), EXIT]),
        0
    );
    // Without memory every packet load is out of bounds.
    assert_eq!(r0(&[mov(R0, 7), abs(Size::B, 0), EXIT]), 0);
}

#[test]
fn helper_call_returns_r0_and_scratches_r1_to_r5() {
    let prog = [
        mov(R1, 42),
        mov(R2, 2),
        mov(R6, 6),
        call(5),
        alu64r(AluOp::Add, R0, R1), // r1 is 0 after the call
        alu64r(AluOp::Add, R0, R2),
        alu64r(AluOp::Add, R0, R6),
        EXIT,
    ];
    assert_eq!(r0(&prog), 48);
    // callx with a helper id, as bpf_conformance's callx test does.
    let callx = Insn::Callx { reg: R2 };
    assert_eq!(r0(&[mov(R1, -1), mov(R2, 5), callx, EXIT]), u64::MAX);
}

#[test]
fn callx_on_a_code_address_is_a_local_call() {
    let func = Insn::LdDw {
        dst: R2,
        kind: LdDwKind::Func,
        imm: 3, // pc 0 + 1 + 3 = pc 4
        next_imm: 0,
    };
    let prog = [
        func,                    // 0-1
        Insn::Callx { reg: R2 }, // 2
        EXIT,                    // 3
        mov(R0, 77),             // 4
        EXIT,                    // 5
    ];
    assert_eq!(r0(&prog), 77);
}

#[test]
fn local_calls_save_r6_to_r9_and_get_their_own_stack() {
    let prog = [
        mov(R6, 6),
        mov(R9, 9),
        st(Size::DW, R10, -8, 100),
        movr(R1, R10),
        alu64(AluOp::Add, R1, -8),  // r1 = &caller's slot
        call_local(5),              // -> pc 11
        ldx(Size::DW, R2, R10, -8), // caller's slot: 100 + 1 written by the callee
        alu64r(AluOp::Add, R0, R2),
        alu64r(AluOp::Add, R0, R6),
        alu64r(AluOp::Add, R0, R9),
        EXIT,
        // pc 11: callee
        ldx(Size::DW, R0, R10, -8), // its own frame: zeroed
        mov(R6, 1000),
        mov(R9, 1000),
        ldx(Size::DW, R3, R1, 0), // reads the caller's frame through the pointer
        alu64(AluOp::Add, R3, 1),
        stx(Size::DW, R1, 0, R3),
        st(Size::DW, R10, -8, 5000),
        EXIT,
    ];
    // r0 = 0 (callee's slot) + 101 + 6 + 9
    assert_eq!(r0(&prog), 116);
}

#[test]
fn eight_frames_are_allowed() {
    // Each function calls the next one; the innermost (depth 7) returns 8.
    let mut prog = Vec::new();
    for _ in 0..7 {
        prog.push(call_local(1));
        prog.push(EXIT);
    }
    prog.push(mov(R0, 8));
    prog.push(EXIT);
    assert_eq!(r0(&prog), 8);
}

#[test]
fn may_goto_counts_per_function_invocation() {
    // Each call of the function at pc 7 loops until its own counter is spent and returns
    // how often `may_goto` fell through: the full budget, twice. The caller's counter is
    // untouched, so its own `may_goto` falls through once more.
    let prog = [
        call_local(6),              // 0 -> 7
        movr(R6, R0),               // 1
        call_local(4),              // 2 -> 7
        alu64r(AluOp::Add, R0, R6), // 3
        Insn::MayGoto { off: 1 },   // 4 -> 6 when exhausted
        alu64(AluOp::Add, R0, 1),   // 5
        EXIT,                       // 6
        mov(R0, 0),                 // 7
        Insn::MayGoto { off: 2 },   // 8 -> 11 when exhausted
        alu64(AluOp::Add, R0, 1),   // 9
        ja(-3),                     // 10 -> 8
        EXIT,                       // 11
    ];
    assert_eq!(r0(&prog), 2 * bpfvm_runtime::MAY_GOTO_BUDGET + 1);
}

#[test]
fn budget_counts_every_instruction_once() {
    let prog = load(&[lddw(R0, 1), mov(R1, 2), EXIT]);
    let interp = Interpreter::new();
    let (r, n) = interp.run_with_count(&prog, &mut [], &RunOptions::new());
    assert_eq!((r, n), (Ok(1), 3));
    assert_eq!(
        interp.run(&prog, &mut [], &RunOptions::new().with_budget(3)),
        Ok(1)
    );
    // The sum loop of the benchmark: 3 + 3N instructions.
    let sum = load(&[
        mov(R0, 0),
        mov(R1, 1),
        alu64r(AluOp::Add, R0, R1),
        alu64(AluOp::Add, R1, 1),
        jmp(JmpOp::Le, R1, 100, -3),
        EXIT,
    ]);
    let (r, n) = interp.run_with_count(&sum, &mut [], &RunOptions::new());
    assert_eq!((r, n), (Ok(5050), 2 + 3 * 100 + 1));
}

#[test]
fn trace_reports_changes_and_frames() {
    let prog = load(&[mov(R1, 3), call_local(1), EXIT, movr(R0, R1), EXIT]);
    let mut steps = Vec::new();
    let r = Interpreter::new().run_traced(&prog, &mut [], &RunOptions::new(), &mut |s| {
        steps.push((s.pc, s.frame, s.changed.as_slice().to_vec()))
    });
    assert_eq!(r, Ok(3));
    let fp_changes: Vec<_> = steps
        .iter()
        .map(|(pc, frame, ch)| (*pc, *frame, ch.len()))
        .collect();
    // mov r1 (r1); call (r10); mov r0 (r0); exit (r10); exit (nothing).
    assert_eq!(
        fp_changes,
        [(0, 0, 1), (1, 0, 1), (3, 1, 1), (4, 1, 1), (2, 0, 0)]
    );
    assert_eq!(steps[0].2, [(R1, 3)]);
    assert_eq!(steps[2].2, [(R0, 3)]);
    assert_eq!(steps[1].2[0].0, R10);
}

#[test]
fn engine_name() {
    assert_eq!(Interpreter::new().name(), "interp");
}
