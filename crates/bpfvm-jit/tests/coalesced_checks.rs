//! Coalesced window tests (`coalesce.rs`): where the JIT tests a run of accesses through
//! one register once, results and faults stay exactly the interpreter's, and match
//! values and fault pcs computed by hand, for every memory length around the span.

use bpfvm_interp::Interpreter;
use bpfvm_jit::Jit;
use bpfvm_runtime::{Engine, FaultKind, LoadedProgram, RunError, RunOptions};

mod common;
use common::load_asm as load;

/// `r0`, or the pc of the out-of-bounds access, on one engine.
fn outcome(engine: &dyn Engine, prog: &LoadedProgram, mem: &[u8]) -> Result<u64, usize> {
    let mut buf = mem.to_vec();
    match engine.run(prog, &mut buf, &RunOptions::new()) {
        Ok(r0) => Ok(r0),
        Err(RunError::Fault(f)) => {
            assert!(
                matches!(f.kind, FaultKind::OutOfBounds { .. }),
                "unexpected fault {f}"
            );
            Err(f.pc)
        }
        Err(e) => panic!("run failed: {e}"),
    }
}

/// Runs `src` over memories of every length in `lens` (bytes `i * 7 + 1`), on the
/// interpreter, the JIT and the blinded JIT, and checks all three against `expected`.
fn check(src: &str, lens: std::ops::Range<usize>, expected: impl Fn(&[u8]) -> Result<u64, usize>) {
    let prog = load(src);
    let jit = Jit::new();
    let blinded = Jit::new().with_constant_blinding();
    for len in lens {
        let mem: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        let want = expected(&mem);
        let engines: [(&str, &dyn Engine); 3] = [
            ("interpreter", &Interpreter::new()),
            ("jit", &jit),
            ("blinded jit", &blinded),
        ];
        for (name, engine) in engines {
            assert_eq!(
                outcome(engine, &prog, &mem),
                want,
                "{name}, memory of {len} bytes"
            );
        }
    }
}

fn u16_at(m: &[u8], i: usize) -> u64 {
    u64::from(u16::from_le_bytes([m[i], m[i + 1]]))
}

fn u32_at(m: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]))
}

#[test]
fn a_short_memory_faults_at_the_first_access_past_its_end() {
    // One group (pcs 0, 1, 3 through r1, span 0..14). Without a bounds check in the
    // program, a memory shorter than the span fails the group's test, and each access
    // is tested on its own: the fault is at the first one that does not fit.
    let src = "r0 = *(u8 *)(r1 + 0)
        r3 = *(u16 *)(r1 + 4)
        r0 += r3
        r3 = *(u32 *)(r1 + 10)
        r0 += r3
        exit";
    check(src, 0..20, |m| match m.len() {
        0 => Err(0),
        1..6 => Err(1),
        6..14 => Err(3),
        _ => Ok(u64::from(m[0]) + u16_at(m, 4) + u32_at(m, 10)),
    });
}

#[test]
fn a_write_of_the_base_is_tested_again() {
    // r1 moves 100 bytes between the loads: the second load is not covered by the
    // first one's test (a JIT that took it as covered would read past the memory).
    let src = "r0 = *(u8 *)(r1 + 0)
        r1 += 100
        r3 = *(u8 *)(r1 + 0)
        r0 += r3
        exit";
    check(src, 95..105, |m| {
        if m.len() > 100 {
            Ok(u64::from(m[0]) + u64::from(m[100]))
        } else {
            Err(2)
        }
    });
}

#[test]
fn a_member_after_an_access_elsewhere_still_reads_the_memory() {
    // Between the group's two loads through r1, a store and a load on the stack through
    // r3 (not r10, so they are tested against the regions too).
    let src = "r3 = r10
        r3 += -8
        r0 = *(u8 *)(r1 + 0)
        *(u64 *)(r3 + 0) = r0
        r4 = *(u64 *)(r3 + 0)
        r0 += r4
        r4 = *(u8 *)(r1 + 7)
        r0 += r4
        exit";
    check(src, 0..10, |m| match m.len() {
        0 => Err(2),
        1..8 => Err(6),
        _ => Ok(2 * u64::from(m[0]) + u64::from(m[7])),
    });
}

#[test]
fn a_parser_loop_counts_the_same_over_truncated_input() {
    // 20-byte records, each checked against the end (r2 = r1 + length) before its
    // fields are read: one group per record (offsets 2, 5, 12..16). Records whose byte
    // 2 is odd add their u32 at 12 and their byte 5. The last record may be cut short:
    // the program's own check stops there, before any access can fault.
    let src = "r2 += r1
        r0 = 0
        next:
        r3 = r1
        r3 += 20
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 2)
        r4 &= 1
        if r4 == 0 goto skip
        r4 = *(u32 *)(r1 + 12)
        r0 += r4
        r4 = *(u8 *)(r1 + 5)
        r0 += r4
        skip:
        r1 += 20
        goto next
        out:
        exit";
    check(src, 0..70, |m| {
        let mut sum = 0u64;
        for rec in m.chunks_exact(20) {
            if rec[2] & 1 == 1 {
                sum += u32_at(rec, 12) + u64::from(rec[5]);
            }
        }
        Ok(sum)
    });
}
