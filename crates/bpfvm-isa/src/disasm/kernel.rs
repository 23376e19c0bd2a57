//! The kernel printer: the notation of the Linux verifier log and of
//! `bpftool prog dump xlated` (`kernel/bpf/disasm.c`).
//!
//! Followed exactly: `r0 = *(u32 *)(r1 +4)` (offsets as `%+d`), decimal ALU
//! and store immediates, jump immediates as unsigned hex
//! (`if r1 > 0xfffffffb goto pc+3`), `goto pc+2`, `gotol pc+2`,
//! `may_goto pc+1`, `call pc+2` for local calls, `call NAME#ID` for helpers
//! (`unknown#ID` without a name), `call kernel-function#ID` for kfuncs,
//! `lock *(u64 *)(r0 +0) += r1`, `r1 = atomic64_fetch_add((u64 *)(r0 +8), r1)`,
//! `r0 = atomic_cmpxchg((u32 *)(r1 +8), r0, r2)`, `r1 = load_acquire(...)`,
//! `r0 = *(u8 *)skb[4]`, `r0 = *(u16 *)skb[r1 + 4]`.
//!
//! Deliberate departures, because the kernel's text is ambiguous there and
//! ours must assemble back to the same bytes:
//! - `lddw` of a constant ends in ` ll` (`r1 = 0x5 ll`); the kernel prints
//!   `r1 = 0x5`, which reads as a 32-bit `mov`.
//! - The pseudo `lddw` forms use bpftool's notation (`map[id:N]`,
//!   `map[id:N][0]+M`, `map[idx:N]+M`, `subprog[+N]`), extended with
//!   `map[idx:N]` and `btf_var[N]` for the kinds bpftool prints as a bare
//!   number; a `next_imm` the kind does not use is appended as
//!   ` next_imm=M`.
//! - `callx r2`: the kernel rejects 0x8d and would print `call bpf_unspec#0`.

use std::fmt;

use crate::{AluOp, AtomicOp, CallKind, EndianOp, Insn, LdDwKind, Size, Source, Width};

/// Prints instructions in the kernel's notation, optionally naming helpers.
///
/// ```
/// use bpfvm_isa::disasm::KernelPrinter;
/// use bpfvm_isa::{CallKind, Insn};
/// let names = |id: i32| (id == 1).then_some("bpf_map_lookup_elem");
/// let printer = KernelPrinter { helper_name: Some(&names) };
/// let call = Insn::Call { kind: CallKind::Helper, imm: 1 };
/// assert_eq!(printer.format_insn(&call), "call bpf_map_lookup_elem#1");
/// let other = Insn::Call { kind: CallKind::Helper, imm: 7 };
/// assert_eq!(printer.format_insn(&other), "call unknown#7");
/// ```
#[derive(Clone, Copy, Default)]
pub struct KernelPrinter<'a> {
    /// Names a helper by id (`bpf_map_lookup_elem` for 1…); `None`, or a
    /// `None` answer, prints `unknown`.
    pub helper_name: Option<&'a dyn Fn(i32) -> Option<&'a str>>,
}

impl fmt::Debug for KernelPrinter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelPrinter")
            .field("helper_name", &self.helper_name.map(|_| "<fn>"))
            .finish()
    }
}

fn size(s: Size) -> &'static str {
    match s {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    }
}

fn ssize(s: Size) -> &'static str {
    match s {
        Size::B => "s8",
        Size::H => "s16",
        Size::W => "s32",
        Size::DW => "s64",
    }
}

/// `(r1 +4)` without the parentheses.
fn mem(base: crate::Reg, off: i16) -> String {
    format!("{base} {off:+}")
}

pub(crate) fn alu_symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::SDiv => "s/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::SMod => "s%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32 => "=",
        AluOp::Arsh => "s>>=",
    }
}

pub(crate) fn jmp_symbol(op: crate::JmpOp) -> &'static str {
    use crate::JmpOp::*;
    match op {
        Eq => "==",
        Gt => ">",
        Ge => ">=",
        Set => "&",
        Ne => "!=",
        Sgt => "s>",
        Sge => "s>=",
        Lt => "<",
        Le => "<=",
        Slt => "s<",
        Sle => "s<=",
    }
}

impl KernelPrinter<'_> {
    /// The text of one instruction, without the verifier log's `(op) ` prefix.
    pub fn format_insn(&self, insn: &Insn) -> String {
        let wr = |w: Width| if w == Width::W32 { 'w' } else { 'r' };
        match *insn {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let c = wr(width);
                let d = dst.index();
                let sym = alu_symbol(op);
                match src {
                    Source::Reg(s) => {
                        let cast = match op {
                            AluOp::MovSx8 => "(s8)",
                            AluOp::MovSx16 => "(s16)",
                            AluOp::MovSx32 => "(s32)",
                            _ => "",
                        };
                        format!("{c}{d} {sym} {cast}{c}{}", s.index())
                    }
                    Source::Imm(imm) => format!("{c}{d} {sym} {imm}"),
                }
            }
            Insn::Neg { width, dst } => {
                let c = wr(width);
                format!("{c}{0} = -{c}{0}", dst.index())
            }
            Insn::Endian { op, bits, dst } => {
                let name = match op {
                    EndianOp::ToLe => "le",
                    EndianOp::ToBe => "be",
                    EndianOp::Swap => "bswap",
                };
                format!("{dst} = {name}{bits} {dst}")
            }
            Insn::LdDw {
                dst,
                kind,
                imm,
                next_imm,
            } => {
                let value = Insn::lddw_value(imm, next_imm);
                let (text, uses_next) = match kind {
                    LdDwKind::Imm => (format!("0x{value:x} ll"), true),
                    LdDwKind::MapFd => (format!("map[id:{imm}]"), false),
                    LdDwKind::MapValue => (format!("map[id:{imm}][0]+{next_imm}"), true),
                    LdDwKind::BtfId => (format!("btf_var[{imm}]"), false),
                    LdDwKind::Func => (format!("subprog[{imm:+}]"), false),
                    LdDwKind::MapIdx => (format!("map[idx:{imm}]"), false),
                    LdDwKind::MapIdxValue => (format!("map[idx:{imm}]+{next_imm}"), true),
                };
                if !uses_next && next_imm != 0 {
                    format!("{dst} = {text} next_imm={next_imm}")
                } else {
                    format!("{dst} = {text}")
                }
            }
            Insn::Load {
                size: sz,
                signed,
                dst,
                src,
                off,
            } => {
                let ty = if signed { ssize(sz) } else { size(sz) };
                format!("{dst} = *({ty} *)({})", mem(src, off))
            }
            Insn::Store {
                size: sz,
                dst,
                off,
                src,
            } => {
                let value = match src {
                    Source::Reg(r) => r.to_string(),
                    Source::Imm(i) => i.to_string(),
                };
                format!("*({} *)({}) = {value}", size(sz), mem(dst, off))
            }
            Insn::Atomic {
                size: sz,
                op,
                dst,
                src,
                off,
            } => {
                let addr = format!("({} *)({})", size(sz), mem(dst, off));
                let w64 = if sz == Size::DW { "64" } else { "" };
                let (name, sym, fetch) = match op {
                    AtomicOp::Add { fetch } => ("add", "+=", fetch),
                    AtomicOp::Or { fetch } => ("or", "|=", fetch),
                    AtomicOp::And { fetch } => ("and", "&=", fetch),
                    AtomicOp::Xor { fetch } => ("xor", "^=", fetch),
                    AtomicOp::Xchg => return format!("{src} = atomic{w64}_xchg({addr}, {src})"),
                    AtomicOp::CmpXchg => {
                        return format!("r0 = atomic{w64}_cmpxchg({addr}, r0, {src})");
                    }
                };
                if fetch {
                    format!("{src} = atomic{w64}_fetch_{name}({addr}, {src})")
                } else {
                    format!("lock *{addr} {sym} {src}")
                }
            }
            Insn::LoadAcquire {
                size: sz,
                dst,
                src,
                off,
            } => format!("{dst} = load_acquire(({} *)({}))", size(sz), mem(src, off)),
            Insn::StoreRelease {
                size: sz,
                dst,
                src,
                off,
            } => format!("store_release(({} *)({}), {src})", size(sz), mem(dst, off)),
            Insn::LdAbs { size: sz, imm } => format!("r0 = *({} *)skb[{imm}]", size(sz)),
            Insn::LdInd { size: sz, src, imm } => {
                format!("r0 = *({} *)skb[{src} + {imm}]", size(sz))
            }
            Insn::Ja { off, long: false } => format!("goto pc{off:+}"),
            Insn::Ja { off, long: true } => format!("gotol pc{off:+}"),
            Insn::Jmp {
                width,
                op,
                dst,
                src,
                off,
            } => {
                let c = wr(width);
                let rhs = match src {
                    Source::Reg(r) => format!("{c}{}", r.index()),
                    Source::Imm(i) => format!("0x{:x}", i as u32),
                };
                format!(
                    "if {c}{} {} {rhs} goto pc{off:+}",
                    dst.index(),
                    jmp_symbol(op)
                )
            }
            Insn::Call { kind, imm } => match kind {
                CallKind::Local => format!("call pc{imm:+}"),
                CallKind::Kfunc => format!("call kernel-function#{imm}"),
                CallKind::Helper => {
                    let name = self.helper_name.and_then(|f| f(imm)).unwrap_or("unknown");
                    format!("call {name}#{imm}")
                }
            },
            Insn::Callx { reg } => format!("callx {reg}"),
            Insn::Exit => "exit".to_string(),
            Insn::MayGoto { off } => format!("may_goto pc{off:+}"),
        }
    }

    /// A verifier-log style listing, `   0: (b7) r0 = 0`, one line per
    /// instruction; undecodable slots as in [`super::disassemble`].
    pub fn disassemble(&self, slots: &[crate::RawInsn]) -> String {
        super::listing(slots, |pc, insn, raw| {
            format!("{pc:>4}: ({:02x}) {}", raw.opcode, self.format_insn(insn))
        })
    }
}
