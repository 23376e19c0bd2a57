//! The disassembler: instruction text in four notations, whole-program
//! listings, and a byte-exact model of `llvm-objdump -d` output.
//!
//! | [`Syntax`] | matches | example |
//! |---|---|---|
//! | [`Syntax::Llvm`] | `llvm-objdump-19 -d --mcpu=v4` | `w0 = *(u32 *)(r1 + 0x4)` |
//! | [`Syntax::LlvmGeneric`] | `llvm-objdump-19 -d` | `r0 = *(u32 *)(r1 + 0x4)` |
//! | [`Syntax::Kernel`] | the verifier log, `bpftool prog dump xlated` | `r0 = *(u32 *)(r1 +4)` |
//! | [`Syntax::Conformance`] | bpf_conformance `.data` files | `ldxw %r0, [%r1+4]` |
//!
//! Every notation except [`Syntax::LlvmGeneric`] assembles back to the same
//! bytes with [`crate::asm::assemble`] (Kernel text with the LLVM dialect),
//! with three exceptions in [`Syntax::Llvm`], where objdump's text itself
//! loses information: it prints local calls and kfunc calls as `call IMM`
//! (the `src` field is lost), `ld_pseudo` without the second slot's
//! immediate, and `r0 = *(u16 *)skb[r1]` without the immediate of an
//! indirect packet load.
//!
//! Jump offsets are printed relative, as the instruction holds them.
//! [`objdump_listing`] adds objdump's address, bytes and target
//! annotations (`goto +0x3 <.text+0x58>`).
//!
//! ```
//! use bpfvm_isa::disasm::{Syntax, format_insn};
//! use bpfvm_isa::{Insn, Reg, Size};
//! let load = Insn::Load { size: Size::W, signed: false, dst: Reg::R0, src: Reg::R1, off: -4 };
//! assert_eq!(format_insn(&load, Syntax::Llvm), "w0 = *(u32 *)(r1 - 0x4)");
//! assert_eq!(format_insn(&load, Syntax::LlvmGeneric), "r0 = *(u32 *)(r1 - 0x4)");
//! assert_eq!(format_insn(&load, Syntax::Kernel), "r0 = *(u32 *)(r1 -4)");
//! assert_eq!(format_insn(&load, Syntax::Conformance), "ldxw %r0, [%r1-4]");
//! ```

pub(crate) mod conformance;
pub(crate) mod kernel;
pub(crate) mod llvm;

pub use kernel::KernelPrinter;

use crate::{Insn, RawInsn, decode_one, slots_to_bytes};

/// An instruction notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// `llvm-objdump-19 -d --mcpu=v4`, byte for byte (`w` registers for
    /// 32-bit loads, stores and atomics). Load-acquire and store-release,
    /// which LLVM 19 cannot print, use LLVM 21's syntax.
    Llvm,
    /// Plain `llvm-objdump-19 -d` (no ALU32 decoder): `r` registers for
    /// 32-bit memory access, `<unknown>` for 32-bit atomics other than add.
    LlvmGeneric,
    /// The kernel verifier log's notation (see [`KernelPrinter`]).
    Kernel,
    /// The bpf_conformance assembly dialect.
    Conformance,
}

/// The text of one instruction, jumps relative, without address or
/// annotations. Never panics; an `Insn` built by hand with fields no
/// encoding allows prints as `<unknown>` in the LLVM syntaxes.
pub fn format_insn(insn: &Insn, syntax: Syntax) -> String {
    match syntax {
        Syntax::Llvm => llvm_text(insn, llvm::Mode::Alu32),
        Syntax::LlvmGeneric => llvm_text(insn, llvm::Mode::Generic),
        Syntax::Kernel => KernelPrinter::default().format_insn(insn),
        Syntax::Conformance => conformance::format(insn),
    }
}

fn llvm_text(insn: &Insn, mode: llvm::Mode) -> String {
    let bytes = slots_to_bytes(insn.encode().as_slice());
    llvm::text_of(&bytes, mode).unwrap_or_else(|| "<unknown>".to_string())
}

/// A listing of `slots`, one line per instruction (a `lddw` is one line),
/// each prefixed with its pc: `   3: r0 = 0x1`. [`Syntax::Kernel`] also
/// prints the opcode byte, as the verifier log does: `   3: (b7) r0 = 1`.
///
/// A slot that does not decode is printed as a raw word the assemblers
/// accept back, with the reason in a comment:
/// `   4: .quad 0x00000000000000ff # invalid: unknown opcode 0xff`.
/// Decoding resumes at the next slot. Never panics.
pub fn disassemble(slots: &[RawInsn], syntax: Syntax) -> String {
    match syntax {
        Syntax::Kernel => KernelPrinter::default().disassemble(slots),
        _ => listing(slots, |pc, insn, _| {
            format!("{pc:>4}: {}", format_insn(insn, syntax))
        }),
    }
}

/// Shared line loop of the listings: decodes with [`decode_one`] and prints
/// undecodable slots as `.quad` lines.
pub(crate) fn listing(
    slots: &[RawInsn],
    line: impl Fn(usize, &Insn, &RawInsn) -> String,
) -> String {
    let mut out = String::new();
    let mut pc = 0;
    while let Some(rest) = slots.get(pc..) {
        let Some(&raw) = rest.first() else { break };
        match decode_one(rest) {
            Ok(insn) => {
                out.push_str(&line(pc, &insn, &raw));
                pc += insn.slots();
            }
            Err(e) => {
                out.push_str(&format!(
                    "{pc:>4}: .quad 0x{:016x} # invalid: {e}",
                    raw.to_u64()
                ));
                pc += 1;
            }
        }
        out.push('\n');
    }
    out
}

/// Exactly what `llvm-objdump-19 -d --mcpu=v4` prints for a section
/// holding `slots` in a relocatable object with no symbols of its own,
/// starting at the symbol line and ending with a newline:
///
/// ```text
/// 0000000000000000 <.text>:
///        0:<TAB>b7 00 00 00 01 00 00 00<TAB>r0 = 0x1
///        1:<TAB>05 00 ff ff 00 00 00 00<TAB>goto -0x1 <.text+0x8>
/// ```
///
/// (`<TAB>` stands for a tab character.)
///
/// The file header (`file format elf64-bpf`, `Disassembly of section`) and
/// the blank lines around the symbol line are not included. Undecodable
/// bytes print as `<unknown>`, runs of eight or more zero bytes as `...`
/// (decoding then resumes at a multiple of four bytes, possibly mid-slot,
/// as objdump does). The one divergence from LLVM 19 is load-acquire and
/// store-release, printed in LLVM 21's syntax.
pub fn objdump_listing(slots: &[RawInsn], section: &str) -> String {
    llvm::listing(&slots_to_bytes(slots), section, llvm::Mode::Alu32)
}

/// [`objdump_listing`] for plain `llvm-objdump-19 -d` (generic CPU, no
/// `--mcpu`), the notation of [`Syntax::LlvmGeneric`].
pub fn objdump_listing_generic(slots: &[RawInsn], section: &str) -> String {
    llvm::listing(&slots_to_bytes(slots), section, llvm::Mode::Generic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallKind, Reg};

    #[test]
    fn listing_marks_invalid_slots_and_resumes() {
        let slots = [
            RawInsn::new(0xb7, 0, 0, 0, 1),
            RawInsn::new(0xff, 0, 0, 0, 0),
            RawInsn::new(0x18, 1, 0, 0, 5),
        ];
        let text = disassemble(&slots, Syntax::Conformance);
        assert_eq!(
            text,
            "   0: mov %r0, 1\n\
             \x20  1: .quad 0x00000000000000ff # invalid: unknown opcode 0xff\n\
             \x20  2: .quad 0x0000000500000118 # invalid: lddw is missing its second slot\n"
        );
    }

    #[test]
    fn kernel_listing_has_opcode_bytes() {
        let call = Insn::Call {
            kind: CallKind::Local,
            imm: 2,
        };
        let slots: Vec<_> = [call, Insn::Exit]
            .iter()
            .flat_map(|i| i.encode().as_slice().to_vec())
            .collect();
        assert_eq!(
            disassemble(&slots, Syntax::Kernel),
            "   0: (85) call pc+2\n   1: (95) exit\n"
        );
        let _ = Reg::R0;
    }
}
