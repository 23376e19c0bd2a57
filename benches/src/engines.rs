//! The programs of `benches/engines.rs`: every engine (bpfvm's interpreter and JIT,
//! `rbpf`'s interpreter, x86 JIT and Cranelift JIT, the kernel's JIT) runs **the same
//! bytes**, next to a native Rust version of each.
//!
//! Each program is LLVM-syntax assembler (ISA v1 only, so `rbpf` accepts it) and starts
//! with a two-instruction *entry* that puts the input's start in `r1` and its end in `r2`;
//! only these two instructions differ between the engines:
//! - bpfvm and `rbpf` pass the input in `r1`, so the entry is `r2 = r1; r2 += LEN`
//!   ([`EngineProgram::source`]);
//! - the kernel runs the program as a `tc` classifier (`BPF_PROG_TYPE_SCHED_CLS`), whose
//!   packet bounds are in the `__sk_buff`: `r2 = *(u32 *)(r1 + 80); r1 = *(u32 *)(r1 + 76)`
//!   ([`EngineProgram::kernel_source`]).
//!
//! Every program the kernel runs must pass its verifier: loops have constant trip counts
//! and every packet access is checked against the end first (bpfvm's and `rbpf`'s runs
//! do those checks too, as native Rust does its slice bounds checks).
//!
//! ```
//! use bpfvm_benches::engines::{Input, programs};
//! let all = programs();
//! assert_eq!(all.len(), 5);
//! assert!(all.iter().all(|p| p.insns > 500));
//! assert!(all.iter().any(|p| matches!(p.input, Input::Packet(_))));
//! ```

use std::collections::HashMap;
use std::hint::black_box;

use bpfvm_isa::RawInsn;
use bpfvm_isa::asm::AsmError;

use crate::maps::assemble_source;

/// Iterations of [`sum_loop_source`] (the kernel's verifier walks every iteration and
/// stops at 1 million processed instructions, so 10⁶ iterations cannot load there).
pub const SUM_N: u32 = 100_000;
/// Bytes hashed by [`fnv1a_source`].
pub const FNV_LEN: u32 = 1024;
/// Packets in the parser's input.
pub const PACKETS: u32 = 32;
/// Bytes per packet slot in the parser's input.
pub const PACKET_SLOT: u32 = 64;
/// Iterations (two local calls each) of [`calls_source`].
pub const CALLS_N: u32 = 1000;
/// Iterations (one 16-way switch each) of [`switch_source`].
pub const SWITCH_N: u32 = 1000;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// What a program reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing (the kernel still gets a minimal packet, which the program ignores).
    None,
    /// These bytes: memory in `r1` for bpfvm and `rbpf`, the packet for the kernel.
    Packet(Vec<u8>),
}

impl Input {
    /// The bytes (empty for [`Input::None`]).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Input::None => &[],
            Input::Packet(b) => b,
        }
    }
}

/// One benchmark program of `benches/engines.rs`.
#[derive(Debug, Clone)]
pub struct EngineProgram {
    /// Criterion group name.
    pub name: &'static str,
    /// The program after the two-instruction entry (it expects `r1` = input start,
    /// `r2` = input end).
    pub body: String,
    /// What it reads.
    pub input: Input,
    /// Instructions one run executes, the entry included (the same for every engine:
    /// both entries are two instructions).
    pub insns: u64,
    /// What it returns (the kernel's `retval` is the low 32 bits).
    pub expected: u64,
    /// The same computation in Rust, on the same input.
    pub native: fn(&[u8]) -> u64,
}

impl EngineProgram {
    /// The source bpfvm and `rbpf` run: the input in `r1`.
    pub fn source(&self) -> String {
        let len = self.input.bytes().len();
        format!("r2 = r1\nr2 += {len}\n{}", self.body)
    }

    /// The source the kernel runs as a `tc` classifier: the packet from the `__sk_buff`.
    pub fn kernel_source(&self) -> String {
        format!(
            "r2 = *(u32 *)(r1 + 80)\nr1 = *(u32 *)(r1 + 76)\n{}",
            self.body
        )
    }

    /// [`EngineProgram::source`] assembled.
    pub fn slots(&self) -> Result<Vec<RawInsn>, AsmError> {
        assemble_source(&self.source())
    }

    /// [`EngineProgram::slots`] as bytes (what `rbpf` takes).
    pub fn bytes(&self) -> Result<Vec<u8>, AsmError> {
        Ok(bpfvm_isa::slots_to_bytes(&self.slots()?))
    }
}

/// The five programs every engine runs (the map-lookup program is separate: `rbpf` has
/// no maps; see [`crate::maps::hash_lookup_source`]).
pub fn programs() -> Vec<EngineProgram> {
    let fnv_input = crate::fnv_input(FNV_LEN as usize);
    let packets = parser_input();
    vec![
        EngineProgram {
            name: "sum_loop_1e5",
            body: sum_loop_source(SUM_N),
            input: Input::None,
            insns: 2 + 2 + 3 * u64::from(SUM_N) + 1,
            expected: u64::from(SUM_N) * (u64::from(SUM_N) + 1) / 2,
            native: |_| sum_native(SUM_N),
        },
        EngineProgram {
            name: "fnv1a_1KiB",
            body: fnv1a_source(FNV_LEN),
            input: Input::Packet(fnv_input.clone()),
            insns: 2 + 6 + 6 * u64::from(FNV_LEN) + 1,
            expected: crate::fnv1a_native(&fnv_input),
            native: fnv1a_checked_native,
        },
        EngineProgram {
            name: "packet_parser_32",
            body: parser_source(),
            input: Input::Packet(packets.clone()),
            insns: 2 + 2 + parser_insns_model(&packets) + 2,
            expected: parser_native(&packets),
            native: parser_native,
        },
        EngineProgram {
            name: "local_calls_1000",
            body: calls_source(CALLS_N),
            input: Input::None,
            insns: 2 + 2 + 13 * u64::from(CALLS_N) + 2,
            expected: calls_native_n(CALLS_N),
            native: |_| calls_native_n(CALLS_N),
        },
        EngineProgram {
            name: "switch_16_1000",
            body: switch_source(SWITCH_N),
            input: Input::None,
            insns: 2 + 3 + 14 * u64::from(SWITCH_N) + 1,
            expected: switch_native_n(SWITCH_N),
            native: |_| switch_native_n(SWITCH_N),
        },
    ]
}

/// `r0 = n + (n-1) + … + 1`, counting down.
pub fn sum_loop_source(n: u32) -> String {
    format!(
        "r0 = 0
         r3 = {n}
         sum_loop:
         r0 += r3
         r3 += -1
         if r3 != 0 goto sum_loop
         exit\n"
    )
}

/// The sum loop in Rust; every counter value passes through [`black_box`] (otherwise
/// LLVM replaces the loop by `n(n+1)/2`).
pub fn sum_native(n: u32) -> u64 {
    let mut sum = 0u64;
    let mut i = u64::from(n);
    while i != 0 {
        sum = sum.wrapping_add(black_box(i));
        i -= 1;
    }
    sum
}

/// FNV-1a 64 over the first `len` input bytes, after one bounds check (returns the offset
/// basis if the input is shorter). The loop counts down in a register, as the kernel's
/// verifier needs a known trip count.
pub fn fnv1a_source(len: u32) -> String {
    format!(
        "r0 = {FNV_OFFSET:#x} ll
         r4 = {FNV_PRIME:#x} ll
         r3 = r1
         r3 += {len}
         if r3 > r2 goto fnv_out
         r3 = {len}
         fnv_loop:
         r5 = *(u8 *)(r1 + 0)
         r0 ^= r5
         r0 *= r4
         r1 += 1
         r3 += -1
         if r3 != 0 goto fnv_loop
         fnv_out:
         exit\n"
    )
}

/// FNV-1a in Rust over the first [`FNV_LEN`] bytes, with the same length check.
pub fn fnv1a_checked_native(data: &[u8]) -> u64 {
    match data.get(..FNV_LEN as usize) {
        Some(d) => crate::fnv1a_native(d),
        None => FNV_OFFSET,
    }
}

/// Counts, over [`PACKETS`] slots of [`PACKET_SLOT`] bytes, the TCP SYNs (SYN set, ACK
/// clear) to port 80 or 443 in unfragmented IPv4 packets without options:
/// Ethernet type, IP version and header length, fragment bits, protocol, port and flags
/// are checked in that order, each packet's 54 header bytes against the input's end first.
pub fn parser_source() -> String {
    format!(
        "r6 = 0
         r7 = {PACKETS}
         parse:
         r3 = r1
         r3 += 54
         if r3 > r2 goto parse_out
         r4 = *(u16 *)(r1 + 12)
         if r4 != 0x0008 goto parse_next
         r4 = *(u8 *)(r1 + 14)
         if r4 != 0x45 goto parse_next
         r4 = *(u16 *)(r1 + 20)
         r4 &= 0xff3f
         if r4 != 0 goto parse_next
         r4 = *(u8 *)(r1 + 23)
         if r4 != 6 goto parse_next
         r4 = *(u16 *)(r1 + 36)
         r4 = be16 r4
         if r4 == 80 goto parse_port
         if r4 != 443 goto parse_next
         parse_port:
         r4 = *(u8 *)(r1 + 47)
         r4 &= 0x12
         if r4 != 2 goto parse_next
         r6 += 1
         parse_next:
         r1 += {PACKET_SLOT}
         r7 += -1
         if r7 != 0 goto parse
         parse_out:
         r0 = r6
         exit\n"
    )
}

/// What one packet is, for the parser's input and its models.
fn packet(kind: u32) -> [u8; PACKET_SLOT as usize] {
    let mut p = [0u8; PACKET_SLOT as usize];
    p[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    p[14] = 0x45;
    p[16..18].copy_from_slice(&40u16.to_be_bytes());
    p[22] = 64; // TTL
    p[23] = 6; // TCP
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&40000u16.to_be_bytes());
    p[36..38].copy_from_slice(&80u16.to_be_bytes());
    p[46] = 0x50; // data offset 5
    p[47] = 0x02; // SYN
    match kind % 8 {
        0 => {}                                                   // SYN to 80: counted
        1 => p[36..38].copy_from_slice(&443u16.to_be_bytes()),    // SYN to 443: counted
        2 => p[47] = 0x12,                                        // SYN-ACK
        3 => p[23] = 17,                                          // UDP
        4 => p[12..14].copy_from_slice(&0x86ddu16.to_be_bytes()), // IPv6
        5 => p[20..22].copy_from_slice(&0x2000u16.to_be_bytes()), // more fragments
        6 => p[14] = 0x46,                                        // IP options
        _ => p[36..38].copy_from_slice(&22u16.to_be_bytes()),     // SYN to 22
    }
    p
}

/// The parser's input: [`PACKETS`] packets cycling through eight kinds (two of which
/// count).
pub fn parser_input() -> Vec<u8> {
    (0..PACKETS).flat_map(packet).collect()
}

/// The parser in Rust (slices, so bounds-checked).
pub fn parser_native(data: &[u8]) -> u64 {
    let mut count = 0;
    for p in data.chunks(PACKET_SLOT as usize).take(PACKETS as usize) {
        if p.len() < 54 {
            break;
        }
        if u16::from_be_bytes([p[12], p[13]]) != 0x0800
            || p[14] != 0x45
            || u16::from_be_bytes([p[20], p[21]]) & 0x3fff != 0
            || p[23] != 6
        {
            continue;
        }
        let port = u16::from_be_bytes([p[36], p[37]]);
        if (port == 80 || port == 443) && p[47] & 0x12 == 0x02 {
            count += 1;
        }
    }
    count
}

/// Instructions [`parser_source`]'s loop executes on `data` (without the two before and
/// the two after it): the path each packet takes, counted from the source.
pub fn parser_insns_model(data: &[u8]) -> u64 {
    let mut n = 0;
    for p in data.chunks(PACKET_SLOT as usize).take(PACKETS as usize) {
        n += 3; // bounds check
        if p.len() < 54 {
            return n;
        }
        let checks: [(bool, u64); 4] = [
            (u16::from_be_bytes([p[12], p[13]]) == 0x0800, 2),
            (p[14] == 0x45, 2),
            (u16::from_be_bytes([p[20], p[21]]) & 0x3fff == 0, 3),
            (p[23] == 6, 2),
        ];
        let mut ok = true;
        for (pass, cost) in checks {
            n += cost;
            if !pass {
                ok = false;
                break;
            }
        }
        if ok {
            let port = u16::from_be_bytes([p[36], p[37]]);
            n += 3; // load, be16, == 80
            if port != 80 {
                n += 1; // != 443
            }
            if port == 80 || port == 443 {
                n += 3; // flags
                if p[47] & 0x12 == 0x02 {
                    n += 1;
                }
            }
        }
        n += 3; // next
    }
    n
}

/// `CALLS_N` iterations of `r6 += f(i)` where `f(x) = g(3x) + 1` and
/// `g(y) = (y ^ 0x5a) << 1` are BPF functions (local calls, `src` 1): two calls and 13
/// instructions per iteration.
pub fn calls_source(n: u32) -> String {
    format!(
        "r6 = 0
         r7 = {n}
         calls_loop:
         r1 = r7
         call calls_f
         r6 += r0
         r7 += -1
         if r7 != 0 goto calls_loop
         r0 = r6
         exit
         calls_f:
         r1 *= 3
         call calls_g
         r0 += 1
         exit
         calls_g:
         r0 = r1
         r0 ^= 0x5a
         r0 <<= 1
         exit\n"
    )
}

#[inline(never)]
fn calls_g(y: u64) -> u64 {
    (black_box(y) ^ 0x5a) << 1
}

#[inline(never)]
fn calls_f(x: u64) -> u64 {
    calls_g(x.wrapping_mul(3)) + 1
}

/// [`calls_source`] in Rust, with `f` and `g` not inlined.
pub fn calls_native_n(n: u32) -> u64 {
    (1..=u64::from(n)).fold(0u64, |s, i| s.wrapping_add(calls_f(i)))
}

/// The constant of switch case `k`.
const fn case_const(k: u64) -> u64 {
    (k * 0x9e37_79b9 + 0x1234_5678) & 0x7fff_ffff
}

/// `n` rounds of: step a 64-bit LCG, take 4 bits of it, and switch on them over 16
/// cases, each updating the accumulator `r0` differently (add, xor or multiply by a
/// per-case constant). The switch is a binary tree of compares (4 per round), as LLVM
/// compiles a dense C `switch` for BPF, which has no jump tables.
pub fn switch_source(n: u32) -> String {
    fn tree(s: &mut String, lo: u64, hi: u64) {
        if hi - lo == 1 {
            let c = case_const(lo);
            let op = match lo % 3 {
                0 => format!("r0 += {c}"),
                1 => format!("r0 ^= {c}"),
                _ => format!("r0 *= {}", c | 1),
            };
            s.push_str(&format!("case_{lo}:\n{op}\nr0 += r4\ngoto switch_join\n"));
            return;
        }
        let mid = (lo + hi) / 2;
        s.push_str(&format!("if r4 > {} goto case_{mid}_{hi}\n", mid - 1));
        tree(s, lo, mid);
        s.push_str(&format!("case_{mid}_{hi}:\n"));
        tree(s, mid, hi);
    }
    let mut s = format!(
        "r0 = 0
         r3 = 12345
         r7 = {n}
         switch_loop:
         r3 *= 1103515245
         r3 += 12345
         r4 = r3
         r4 >>= 16
         r4 &= 15\n"
    );
    tree(&mut s, 0, 16);
    s.push_str(
        "switch_join:
         r7 += -1
         if r7 != 0 goto switch_loop
         exit\n",
    );
    // `case_8_16:` and a leaf label may coincide; the assembler takes several labels.
    s
}

/// [`switch_source`] in Rust: the same 16-way switch, each case with its own constant
/// as a literal, as in the BPF program. LLVM compiles the `match` to a jump table.
///
/// (An earlier version grouped the cases by operation and computed each constant from
/// the case number at run time: fewer, better-predicted branches, 3–5× faster than this,
/// but not the program's algorithm.)
pub fn switch_native_n(n: u32) -> u64 {
    let mut acc = 0u64;
    let mut x: u64 = black_box(12345);
    for _ in 0..n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let v = (x >> 16) & 15;
        acc = match v {
            0 => acc.wrapping_add(const { case_const(0) }),
            1 => acc ^ const { case_const(1) },
            2 => acc.wrapping_mul(const { case_const(2) | 1 }),
            3 => acc.wrapping_add(const { case_const(3) }),
            4 => acc ^ const { case_const(4) },
            5 => acc.wrapping_mul(const { case_const(5) | 1 }),
            6 => acc.wrapping_add(const { case_const(6) }),
            7 => acc ^ const { case_const(7) },
            8 => acc.wrapping_mul(const { case_const(8) | 1 }),
            9 => acc.wrapping_add(const { case_const(9) }),
            10 => acc ^ const { case_const(10) },
            11 => acc.wrapping_mul(const { case_const(11) | 1 }),
            12 => acc.wrapping_add(const { case_const(12) }),
            13 => acc ^ const { case_const(13) },
            14 => acc.wrapping_mul(const { case_const(14) | 1 }),
            _ => acc.wrapping_add(const { case_const(15) }),
        }
        .wrapping_add(v);
    }
    acc
}

/// The map-lookup program's work in Rust: [`crate::maps::PROG_OPS`] lookups in a
/// `HashMap<u32, u64>` filled as the benchmark maps are, summing the values.
pub fn lookups_native(map: &HashMap<u32, u64>) -> u64 {
    let mut sum = 0u64;
    for i in 0..crate::maps::PROG_OPS {
        if let Some(v) = map.get(&black_box(crate::maps::prog_key(i))) {
            sum = sum.wrapping_add(*v);
        }
    }
    sum
}

/// The native side of the map-lookup benchmark: a `HashMap` filled with
/// [`crate::maps::fill_value`].
pub fn native_map() -> HashMap<u32, u64> {
    (0..crate::maps::HASH_ENTRIES)
        .map(|k| (k, crate::maps::fill_value(k)))
        .collect()
}

/// Instructions one run of [`crate::maps::hash_lookup_source`]`(PROG_OPS)` executes
/// when every key is present: 1 + 9 per lookup + 2.
pub const fn lookups_insns() -> u64 {
    1 + 9 * crate::maps::PROG_OPS as u64 + 2
}

/// A straight program of exactly `n` instructions (`n >= 2`) for the compile-time
/// benchmark: blocks of ten (ALU, a stack store and load, a forward branch), padded
/// with `r0 += 1`, then `exit`.
pub fn compile_source(n: usize) -> String {
    let mut s = String::from("r0 = 0\nr2 = 1\n");
    let mut len = 2;
    while len + 10 < n {
        s.push_str(
            "r0 += 7
             r3 = r0
             r3 <<= 3
             r0 ^= r3
             *(u64 *)(r10 - 8) = r0
             r4 = *(u64 *)(r10 - 8)
             if r4 > 1000 goto +1
             r0 += r2
             r0 &= 0xffff
             r2 += 1\n",
        );
        len += 10;
    }
    while len + 1 < n {
        s.push_str("r0 += 1\n");
        len += 1;
    }
    s.push_str("exit\n");
    s
}
