//! The two assembler dialects on hand-written programs: the same program in
//! both gives the same slots; labels, implicit `exit`, fake registers,
//! error positions.

use bpfvm_isa::asm::{AsmError, AsmErrorKind, Dialect, assemble};
use bpfvm_isa::{Program, ProgramErrorKind, RawInsn};

fn asm(src: &str, d: Dialect) -> Vec<RawInsn> {
    assemble(src, d).unwrap_or_else(|e| panic!("{d:?}: {e}\n{src}"))
}

fn err(src: &str, d: Dialect) -> AsmError {
    match assemble(src, d) {
        Ok(s) => panic!("{d:?} accepted {src:?} as {s:?}"),
        Err(e) => e,
    }
}

/// One program per dialect covering every kind of statement.
const CONFORMANCE: &str = "\
# comment
start:
mov32 %r0, 0xffffffff
add %r1, -4
sdiv32 %r2, %r3
movsx1664 %r4, %r5
neg %r6
be32 %r7
swap64 %r8
bswap16 %r8
lddw %r9, 0x1122334455667788
lddw_map_fd %r1, 7
lddw_map_value %r1, 7, 24
lddw_func %r2, start
ldxh %r0, [%r1-2]
ldxsw %r0, [%r1]
stw [%r10-4], 0x7fffffff
stxdw [%r10+0x10], %r1
lock fetch xor32 [%r1+8], %r2
lock cmpxchg [%r1-8], %r3
ldacqw %r1, [%r2+4]
streldw [%r1+4], %r2
ldabsh 12
ldindw %r3, 0x10
jsge %r1, -1, start
jne32 %r1, %r2, +1
ja32 exit
gotol start
may_goto exit
call 1
call helper 2
call runtime 3
call local start
callx %r4
exit
";

const LLVM: &str = "\
// comment
start:
  w0 = 0xffffffff
  r1 += -4
  w2 s/= w3
  r4 = (s16)r5
  r6 = -r6
  r7 = be32 r7
  r8 = bswap64 r8 ; r8 = bswap16 r8
  r9 = 0x1122334455667788 ll
  r1 = map[fd:7]
  r1 = map[id:7][0]+24
  r2 = subprog[start]
  w0 = *(u16 *)(r1 - 2)
  r0 = *(s32 *)(r1)
  *(u32 *)(r10 -4) = 2147483647
  *(u64 *)(r10 + 0x10) = r1
  w2 = atomic_fetch_xor((u32 *)(r1 + 8), w2)
  r0 = atomic64_cmpxchg((u64 *)(r1 -8), r0, r3)
  w1 = load_acquire((u32 *)(r2 + 4))
  store_release((u64 *)(r1 + 4), r2)
  r0 = *(u16 *)skb[12]
  r0 = *(u32 *)skb[r3 + 0x10]
  if r1 s>= -1 goto start
  if w1 != w2 goto pc+1
  gotol exit
  gotol start
  may_goto exit
  call bpf_map_lookup_elem#1
  call 2
  call kernel-function#3
  call start
  callx r4
exit:
  exit
";

#[test]
fn both_dialects_agree() {
    let a = asm(CONFORMANCE, Dialect::Conformance);
    let b = asm(LLVM, Dialect::Llvm);
    assert_eq!(a.len(), 37);
    for (pc, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "slot {pc}");
    }
    assert_eq!(a.len(), b.len());
    // Spot checks of the encodings.
    assert_eq!(a[0], RawInsn::new(0xb4, 0, 0, 0, -1));
    assert_eq!(a[14], RawInsn::new(0x18, 2, 4, 0, -15), "lddw_func start");
    assert_eq!(a[35], RawInsn::new(0x8d, 4, 0, 0, 0), "callx");
    assert_eq!(a[28], RawInsn::new(0x06, 0, 0, 0, 7), "ja32 exit");
    assert!(Program::from_slots(a).is_ok());
}

#[test]
fn labels_and_implicit_exit() {
    // The first exit is a label in the conformance dialect…
    let a = asm("ja exit\nmov %r0, 1\nexit\nexit", Dialect::Conformance);
    assert_eq!(a[0], RawInsn::new(0x05, 0, 0, 1, 0));
    // …unless the source defines one.
    let a = asm(
        "ja exit\nexit\nexit:\nmov %r0, 1\nexit",
        Dialect::Conformance,
    );
    assert_eq!(a[0].off, 1);
    // Labels may share a line, come before their definition, and stack.
    let a = asm("a: b: goto c\nc: exit", Dialect::Llvm);
    assert_eq!(a[0].off, 0);
    let e = err("goto nowhere", Dialect::Llvm);
    assert_eq!(
        (e.line, e.column, e.kind),
        (
            1,
            6,
            AsmErrorKind::UndefinedLabel {
                label: "nowhere".into()
            }
        )
    );
    let e = err("x:\nexit\n  x: exit", Dialect::Conformance);
    assert_eq!((e.line, e.column), (3, 3));
    assert!(matches!(
        e.kind,
        AsmErrorKind::DuplicateLabel { first_line: 1, .. }
    ));
}

#[test]
fn upstream_conformance_programs() {
    // From bpf_conformance's tests: call_local.data, callx.data, ldxb-all.data.
    let call_local = asm(
        "mov %r0, 0\nstdw [%r10-4], 0x44332211\ncall local func1\njne %r0, 15, failed\n\
         mov %r0, 1\nexit\nfailed:\nmov %r0, -1\nexit\nfunc1:\nmov %r0, 0\nexit\n",
        Dialect::Conformance,
    );
    assert_eq!(call_local[2], RawInsn::new(0x85, 0, 1, 0, 5));
    assert_eq!(call_local[3], RawInsn::new(0x55, 0, 0, 2, 15));
    let callx = asm(
        "mov %r1, -1\nmov %r2, 5\ncall %r2\nmov %r0, 2\nexit",
        Dialect::Conformance,
    );
    assert_eq!(callx[2], RawInsn::new(0x8d, 2, 0, 0, 0));
    let no_percent = asm("mov r0, r1\nldxb r9, [r0+0]\nexit", Dialect::Conformance);
    assert_eq!(no_percent[1], RawInsn::new(0x71, 9, 0, 0, 0));
}

#[test]
fn negative_test_material_assembles() {
    // Fake registers and jumps out of the program are the point of some tests.
    let slots = asm(
        "mov %r11, 1\nmov %r0, %r15\nja +5\nexit",
        Dialect::Conformance,
    );
    assert_eq!(slots[0], RawInsn::new(0xb7, 11, 0, 0, 1));
    assert_eq!(slots[1], RawInsn::new(0xbf, 0, 15, 0, 0));
    let e = Program::from_slots(slots.clone()).expect_err("r11 is rejected");
    assert_eq!(e.pc, 0);
    let e = Program::from_slots(slots[2..].to_vec()).expect_err("jump out");
    assert!(matches!(e.kind, ProgramErrorKind::JumpOutOfRange { .. }));
    let llvm = asm("r11 = 1\nr0 = r15\ngoto +5\nexit", Dialect::Llvm);
    assert_eq!(llvm, slots);
    // A raw slot, as the disassembler prints undecodable ones.
    let raw = asm(".quad 0x00000000000000ff # invalid", Dialect::Conformance);
    assert_eq!(raw, vec![RawInsn::new(0xff, 0, 0, 0, 0)]);
}

#[test]
fn kernel_verifier_log_lines_assemble() {
    let log = "\
0: (b7) r0 = 0
1: (61) r2 = *(u32 *)(r1 +4)
2: (bf) r3 = r10
3: (07) r3 += -8
4: (7a) *(u64 *)(r10 -8) = 0
5: (18) r1 = map[id:4]
7: (85) call bpf_map_lookup_elem#1
8: (15) if r0 == 0x0 goto pc+1
9: (db) r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)
10: (c3) lock *(u32 *)(r0 +0) += r1
11: (95) exit
";
    let slots = asm(log, Dialect::Llvm);
    assert_eq!(slots.len(), 12);
    assert_eq!(slots[1], RawInsn::new(0x61, 2, 1, 4, 0));
    assert_eq!(slots[5], RawInsn::new(0x18, 1, 1, 0, 4));
    assert_eq!(slots[8], RawInsn::new(0x15, 0, 0, 1, 0));
    assert_eq!(slots[10], RawInsn::new(0xc3, 0, 1, 0, 0));
}

#[test]
fn error_positions_and_kinds() {
    use AsmErrorKind::*;
    let cases: &[(&str, Dialect, usize, usize, AsmErrorKind)] = &[
        (
            "exit\nfoo %r1",
            Dialect::Conformance,
            2,
            1,
            UnknownMnemonic {
                mnemonic: "foo".into(),
            },
        ),
        (
            "mov %r16, 1",
            Dialect::Conformance,
            1,
            5,
            Expected {
                expected: "register",
                found: "`%r16`".into(),
            },
        ),
        (
            "add32 %r1, 0x100000000",
            Dialect::Conformance,
            1,
            12,
            OutOfRange {
                what: "32-bit immediate",
                value: 0x1_0000_0000,
                min: -0x8000_0000,
                max: 0xffff_ffff,
            },
        ),
        (
            "ldxw %r0, [%r1+32768]",
            Dialect::Conformance,
            1,
            15,
            OutOfRange {
                what: "offset",
                value: 32768,
                min: -32768,
                max: 32767,
            },
        ),
        (
            "ja +40000",
            Dialect::Conformance,
            1,
            4,
            OutOfRange {
                what: "jump offset",
                value: 40000,
                min: -32768,
                max: 32767,
            },
        ),
        (
            "mov %r0, 1 extra",
            Dialect::Conformance,
            1,
            12,
            Expected {
                expected: "end of statement",
                found: "`extra`".into(),
            },
        ),
        (
            "  w1 += r2",
            Dialect::Llvm,
            1,
            9,
            WidthMismatch {
                expected: "32-bit (w)",
                found: "r2".into(),
            },
        ),
        (
            "r1 = -r2",
            Dialect::Llvm,
            1,
            7,
            RegisterMismatch {
                expected: "r1".into(),
                found: "r2".into(),
            },
        ),
        (
            "w1 = (s32)w2",
            Dialect::Llvm,
            1,
            7,
            Unsupported {
                what: "a 32-bit move sign-extends only from 8 or 16 bits",
            },
        ),
        (
            "r0 = *(u32 *)(r1 + 4",
            Dialect::Llvm,
            1,
            21,
            Expected {
                expected: "`)`",
                found: "end of line".into(),
            },
        ),
        ("r0 = 1 @", Dialect::Llvm, 1, 8, UnexpectedChar { ch: '@' }),
        (
            "if r1 > r2 goto",
            Dialect::Llvm,
            1,
            16,
            Expected {
                expected: "jump target",
                found: "end of line".into(),
            },
        ),
        (
            "lock *(u8 *)(r1 + 0) += r2",
            Dialect::Llvm,
            1,
            7,
            Unsupported {
                what: "atomic operations are 32- or 64-bit",
            },
        ),
    ];
    for (src, d, line, column, kind) in cases {
        let e = err(src, *d);
        assert_eq!(
            (e.line, e.column, &e.kind),
            (*line, *column, kind),
            "{src:?}: {e}"
        );
    }
    let e = err("exit\n\n  r1 = 2 ll x", Dialect::Llvm);
    assert_eq!(
        e.to_string(),
        "line 3, column 13: expected end of statement, found `x`"
    );
}

#[test]
fn far_labels_need_the_long_forms() {
    let mut src = String::from("ja far\n");
    for _ in 0..40_000 {
        src.push_str("mov %r0, 0\n");
    }
    src.push_str("far:\nexit\n");
    let e = err(&src, Dialect::Conformance);
    assert_eq!((e.line, e.column), (1, 4));
    assert_eq!(
        e.kind,
        AsmErrorKind::TargetOutOfRange {
            label: "far".into(),
            offset: 40_000,
            bits: 16
        }
    );
    let long = src.replacen("ja far", "ja32 far", 1);
    assert_eq!(asm(&long, Dialect::Conformance)[0].imm, 40_000);
}
