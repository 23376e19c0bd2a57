//! Where engines knowingly differ from RFC 9669 and from bpfvm: the one list.
//!
//! A conformance test whose outcome on an engine differs from its expectation (or from
//! the first engine) is a failure, unless an entry here explains it. An entry names the
//! engine, says why, and recognizes its cases from the program and from what the engine
//! did, never from test names, so the list carries over to any suite. Every use is shown
//! in the report as a "known divergence"; nothing is dropped silently.

use bpfvm_isa::{DecodeErrorKind, RawInsn, decode_one};

use crate::run::Observed;

/// One known divergence.
#[derive(Debug)]
pub struct Divergence {
    /// Short id shown in reports.
    pub id: &'static str,
    /// The engine that diverges.
    pub engine: &'static str,
    /// Why, for the reader of a report.
    pub reason: &'static str,
    /// Whether this divergence explains what the engine did with this program.
    pub applies: fn(&[RawInsn], &Observed) -> bool,
}

/// Every known divergence.
pub static DIVERGENCES: &[Divergence] = &[
    Divergence {
        id: "kernel-helper-ids",
        engine: "kernel",
        reason: "Helper ids are the kernel's: `call 5` is bpf_ktime_get_ns there, not the \
                 bpf_conformance helper that returns its first argument.",
        applies: |slots, obs| obs.result.is_ok() && slots.iter().any(|s| is_helper_call(s, 5)),
    },
    Divergence {
        id: "kernel-callx",
        engine: "kernel",
        reason: "Linux does not accept `callx` (opcode 0x8d) from user space: the verifier \
                 answers `unknown opcode 8d`.",
        applies: |slots, obs| {
            slots.iter().any(|s| s.opcode == 0x8d) && refused_with(obs, "unknown opcode 8d")
        },
    },
    Divergence {
        id: "kernel-div-by-zero-imm",
        engine: "kernel",
        reason: "The verifier rejects division and modulo by an immediate 0 (`div by zero`); \
                 RFC 9669 defines the result (0 for division, the dividend for modulo).",
        applies: |slots, obs| {
            slots.iter().any(is_div_by_zero_imm) && refused_with(obs, "div by zero")
        },
    },
    Divergence {
        id: "kernel-shift-imm-width",
        engine: "kernel",
        reason: "The verifier rejects shifts by an immediate >= the operand width \
                 (`invalid shift`); RFC 9669 masks the shift amount to the width.",
        applies: |slots, obs| {
            slots.iter().any(is_wide_shift_imm) && refused_with(obs, "invalid shift")
        },
    },
    Divergence {
        id: "kernel-call-depth",
        engine: "kernel",
        reason: "The kernel bounds call depth statically, over every call chain, and the test \
                 wrapper's own call takes one of its 8 frames; bpfvm counts frames at run \
                 time, so bounded recursion and 8-deep chains run.",
        applies: |_, obs| refused_with(obs, "frames is too deep"),
    },
    Divergence {
        id: "kernel-combined-stack",
        engine: "kernel",
        reason: "The kernel allows 512 bytes of stack for a whole call chain; bpfvm gives each \
                 frame its own 512 bytes at run time (bpfvm's verifier will enforce the total).",
        applies: |_, obs| refused_with(obs, "combined stack size"),
    },
    Divergence {
        id: "kernel-func-info",
        engine: "kernel",
        reason: "The kernel wants BTF func info for a program that takes a function's address \
                 (`lddw src=4`, as bpf_loop callbacks do); raw bytecode has no BTF.",
        applies: |slots, obs| {
            slots.iter().any(|s| s.opcode == 0x18 && s.src == 4)
                && refused_with(obs, "missing btf func_info")
        },
    },
    Divergence {
        id: "kernel-may-goto-budget",
        engine: "kernel",
        reason: "On x86-64 the kernel bounds may_goto loops by time (timed may_goto), not by a \
                 fixed 8,388,608 iterations per call, so where a loop gives up differs.",
        applies: |slots, obs| obs.result.is_ok() && slots.iter().any(|s| s.opcode == 0xe5),
    },
    Divergence {
        id: "kernel-unchecked-reserved-field",
        engine: "kernel",
        reason: "The kernel does not check every field RFC 9669 reserves (it runs `exit` with a \
                 non-zero offset); bpfvm rejects such programs as the RFC requires.",
        applies: |slots, obs| obs.result.is_ok() && has_reserved_field(slots),
    },
];

/// The engine's own loader refused the program with a message containing `text`.
fn refused_with(obs: &Observed, text: &str) -> bool {
    matches!(&obs.result, Err(f) if f.refused_by_engine && f.text.contains(text))
}

fn is_helper_call(s: &RawInsn, id: i32) -> bool {
    s.opcode == 0x85 && s.src == 0 && s.imm == id
}

/// `div`/`mod` (signed or not, 32 or 64 bits) by the immediate 0.
fn is_div_by_zero_imm(s: &RawInsn) -> bool {
    let alu = matches!(s.opcode & 0x07, 0x04 | 0x07);
    let imm = s.opcode & 0x08 == 0;
    alu && imm && matches!(s.opcode & 0xf0, 0x30 | 0x90) && s.imm == 0
}

/// `lsh`/`rsh`/`arsh` by an immediate outside `0..width`.
fn is_wide_shift_imm(s: &RawInsn) -> bool {
    let width = match s.opcode & 0x07 {
        0x04 => 32,
        0x07 => 64,
        _ => return false,
    };
    let imm = s.opcode & 0x08 == 0;
    imm && matches!(s.opcode & 0xf0, 0x60 | 0x70 | 0xc0) && !(0..width).contains(&s.imm)
}

/// Whether some instruction has a non-zero field RFC 9669 reserves.
fn has_reserved_field(slots: &[RawInsn]) -> bool {
    let mut pc = 0;
    while pc < slots.len() {
        match decode_one(&slots[pc..]) {
            Ok(insn) => pc += insn.slots(),
            Err(DecodeErrorKind::ReservedField { .. }) => return true,
            Err(_) => pc += 1,
        }
    }
    false
}

/// The divergence that explains what `engine` did with `slots`, if one does.
pub fn explain(engine: &str, slots: &[RawInsn], obs: &Observed) -> Option<&'static Divergence> {
    DIVERGENCES
        .iter()
        .find(|d| d.engine == engine && (d.applies)(slots, obs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_predicates() {
        // div64 r0, 0 / mod32 w0, 0 / div64 r0, r1 / div64 r0, 3
        assert!(is_div_by_zero_imm(&RawInsn::new(0x37, 0, 0, 0, 0)));
        assert!(is_div_by_zero_imm(&RawInsn::new(0x94, 0, 0, 0, 0)));
        assert!(!is_div_by_zero_imm(&RawInsn::new(0x3f, 0, 1, 0, 0)));
        assert!(!is_div_by_zero_imm(&RawInsn::new(0x37, 0, 0, 0, 3)));
        // lsh r0, 64 / rsh32 w0, 32 / arsh r0, 63 / lsh r0, -1
        assert!(is_wide_shift_imm(&RawInsn::new(0x67, 0, 0, 0, 64)));
        assert!(is_wide_shift_imm(&RawInsn::new(0x74, 0, 0, 0, 32)));
        assert!(!is_wide_shift_imm(&RawInsn::new(0xc7, 0, 0, 0, 63)));
        assert!(is_wide_shift_imm(&RawInsn::new(0x67, 0, 0, 0, -1)));
        // exit with off = 1 reserves a field; a plain exit does not.
        assert!(has_reserved_field(&[RawInsn::new(0x95, 0, 0, 1, 0)]));
        assert!(!has_reserved_field(&[RawInsn::new(0x95, 0, 0, 0, 0)]));
    }
}
