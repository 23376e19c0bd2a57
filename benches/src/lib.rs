//! # bpfvm-benches: the benchmark programs
//!
//! The bytecode every engine runs in `benches/interp.rs`, with a native Rust version of
//! each and the exact number of instructions one run executes (so that a time per run
//! becomes a time per instruction). The programs use only ISA v1 instructions, so that
//! `rbpf` runs the very same bytes.
//!
//! [`maps`] holds the programs of `benches/maps.rs` (map lookups and updates, ring buffer
//! output, the empty program of the hook benchmark) and bpfvm's setup for them; `kernel`
//! (Linux only) loads the same programs and maps into the kernel and consumes a kernel
//! ring buffer.
//!
//! ```
//! use bpfvm_benches::{sum_loop, sum_loop_native, sum_loop_insns};
//! let bytes = sum_loop(100);
//! assert_eq!(bytes.len() % 8, 0);
//! assert_eq!(sum_loop_native(100), 5050);
//! assert_eq!(sum_loop_insns(100), 303);
//! ```
#![deny(missing_docs)]
// Only `kernel`'s ring buffer mapping needs unsafe code.
#![deny(unsafe_code)]

pub mod engines;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod kernel;
pub mod maps;

use std::hint::black_box;

use bpfvm_isa::{RawInsn, slots_to_bytes};

/// `n` of the sum-loop benchmark: about 3 million instructions.
pub const SUM_N: i32 = 1_000_000;
/// Bytes hashed by the FNV-1a benchmark.
pub const FNV_LEN: usize = 1024;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const EXIT: RawInsn = RawInsn::new(0x95, 0, 0, 0, 0);

/// `lddw dst, value` (two slots).
fn lddw(dst: u8, value: u64) -> [RawInsn; 2] {
    [
        RawInsn::new(0x18, dst, 0, 0, value as u32 as i32),
        RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
    ]
}

/// Sums `n + (n-1) + … + 1`, counting down (`jne` is ISA v1).
pub fn sum_loop(n: i32) -> Vec<u8> {
    slots_to_bytes(&[
        RawInsn::new(0xb7, 0, 0, 0, 0),  // mov r0, 0
        RawInsn::new(0xb7, 1, 0, 0, n),  // mov r1, n
        RawInsn::new(0x0f, 0, 1, 0, 0),  // loop: add r0, r1
        RawInsn::new(0x07, 1, 0, 0, -1), // add r1, -1
        RawInsn::new(0x55, 1, 0, -3, 0), // jne r1, 0, loop
        EXIT,
    ])
}

/// Instructions one run of [`sum_loop`] executes (`n >= 1`).
pub const fn sum_loop_insns(n: i32) -> u64 {
    2 + 3 * n as u64 + 1
}

/// The sum loop in Rust. Each counter value passes through [`black_box`], or LLVM would
/// replace the loop by `n * (n + 1) / 2`.
pub fn sum_loop_native(n: i32) -> u64 {
    let mut sum = 0u64;
    let mut i = n as u64;
    while i != 0 {
        sum = sum.wrapping_add(black_box(i));
        i -= 1;
    }
    sum
}

/// FNV-1a (64-bit) over the `len` bytes at `r1` (`len >= 1`); the length is part of
/// the program because `rbpf` passes only `r1`.
pub fn fnv1a(len: i32) -> Vec<u8> {
    let mut slots = Vec::new();
    slots.extend(lddw(0, FNV_OFFSET)); // r0 = offset basis
    slots.extend(lddw(4, FNV_PRIME)); // r4 = prime
    slots.extend([
        RawInsn::new(0xbf, 3, 1, 0, 0),   // mov r3, r1
        RawInsn::new(0x07, 3, 0, 0, len), // add r3, len      (end pointer)
        RawInsn::new(0x71, 5, 1, 0, 0),   // loop: ldxb r5, [r1+0]
        RawInsn::new(0xaf, 0, 5, 0, 0),   // xor r0, r5
        RawInsn::new(0x2f, 0, 4, 0, 0),   // mul r0, r4
        RawInsn::new(0x07, 1, 0, 0, 1),   // add r1, 1
        RawInsn::new(0x5d, 1, 3, -5, 0),  // jne r1, r3, loop
        EXIT,
    ]);
    slots_to_bytes(&slots)
}

/// Instructions one run of [`fnv1a`] executes.
pub const fn fnv1a_insns(len: usize) -> u64 {
    4 + 5 * len as u64 + 1
}

/// FNV-1a in Rust.
pub fn fnv1a_native(data: &[u8]) -> u64 {
    data.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The FNV input: `len` bytes of a fixed pseudo-random pattern.
pub fn fnv_input(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}

/// `mov r0, 0; exit`: the cost of a run itself.
pub fn empty() -> Vec<u8> {
    slots_to_bytes(&[RawInsn::new(0xb7, 0, 0, 0, 0), EXIT])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_interp::Interpreter;
    use bpfvm_isa::Program;
    use bpfvm_runtime::{LoadedProgram, ProgramType, RunOptions};

    fn interp(bytes: &[u8], mem: &mut [u8]) -> (u64, u64) {
        let program = Program::from_bytes(bytes).expect("valid bytecode");
        let prog = LoadedProgram::new(program, ProgramType::Conformance).expect("loads");
        let (r, n) = Interpreter::new().run_with_count(&prog, mem, &RunOptions::new());
        (r.expect("runs"), n)
    }

    fn rbpf(bytes: &[u8], mem: &[u8]) -> u64 {
        let vm = rbpf::EbpfVmMbuff::new(Some(bytes)).expect("rbpf accepts it");
        vm.execute_program(mem, &[]).expect("rbpf runs it")
    }

    #[test]
    fn every_engine_agrees_with_native_and_counts_match() {
        let n = 1000;
        let bytes = sum_loop(n);
        assert_eq!(sum_loop_native(n), 500_500);
        assert_eq!(interp(&bytes, &mut []), (500_500, sum_loop_insns(n)));
        assert_eq!(rbpf(&bytes, &[]), 500_500);

        let data = fnv_input(FNV_LEN);
        let bytes = fnv1a(FNV_LEN as i32);
        let expected = fnv1a_native(&data);
        assert_eq!(
            interp(&bytes, &mut data.clone()),
            (expected, fnv1a_insns(FNV_LEN))
        );
        assert_eq!(rbpf(&bytes, &data), expected);
        // Known FNV-1a 64 value: "a" hashes to 0xaf63dc4c8601ec8c.
        assert_eq!(fnv1a_native(b"a"), 0xaf63_dc4c_8601_ec8c);

        assert_eq!(interp(&empty(), &mut []), (0, 2));
        assert_eq!(rbpf(&empty(), &[]), 0);
    }

    #[test]
    fn benchmark_sizes() {
        assert_eq!(sum_loop_insns(SUM_N), 3_000_003);
        assert_eq!(fnv1a_insns(FNV_LEN), 5_125);
        assert_eq!(sum_loop_native(SUM_N), 500_000_500_000);
    }
}
