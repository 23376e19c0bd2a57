//! # bpfvm-btf: BTF, BTF.ext and CO-RE
//!
//! This crate owns the BPF Type Format as it appears in compiled BPF objects
//! and in the kernel (`/sys/kernel/btf/vmlinux`):
//!
//! - [`Btf`]: parsing a little-endian `.BTF` section (every kind up to
//!   `ENUM64`, including the Linux 6.14+ `kind_flag` on decl/type tags),
//!   type queries ([`Btf::find`], [`Btf::size_of`],
//!   [`Btf::skip_mods_and_typedefs`], ...), edits for loader fixups
//!   ([`Btf::type_mut`], [`Btf::add_type`], [`Btf::add_string`]),
//!   serialization back to bytes ([`Btf::to_bytes`]), bpftool's raw dump
//!   ([`Btf::dump_raw`]) and C declarations in libbpf `btf_dump` style
//!   ([`Btf::format_c`]);
//! - [`BtfExt`]: the `.BTF.ext` section: func info, line info and CO-RE
//!   relocation records per ELF section;
//! - [`core`]: CO-RE relocation resolution against a target BTF (libbpf's
//!   `relo_core.c` logic, candidates by essential name) and instruction
//!   patching ([`core::patch`]), including libbpf's poisoning.
//!
//! It does no ELF handling: the loader hands it section bytes. It does no
//! I/O.
//!
//! ## Invariants
//! - Malformed input (truncated, bad magic, out-of-range type ids or string
//!   offsets, wrong record sizes, loops in type chains, absurd counts) is a
//!   [`BtfError`] naming the byte offset and/or type id, never a panic.
//!   Every count read from the input is checked against the bytes that
//!   remain before anything is allocated for it, so memory use is bounded
//!   by a small multiple of the input length.
//! - A [`Btf`] from [`Btf::parse`] satisfies the invariants documented on
//!   the type (references in range, names valid, no type loops);
//!   `Btf::parse(&b.to_bytes()) == Ok(b)`. For compiler and kernel output
//!   `to_bytes` reproduces the input bytes exactly.
//! - Every query terminates, also on BTF edited into an invalid state, and
//!   the work is bounded even for valid but adversarial BTF (types shared
//!   along exponentially many paths): [`Btf::format_c`] stops after a step
//!   budget or 4 MiB of output (marking the cut with `/* ... */`), CO-RE
//!   type comparison after a step budget ([`core::CoreError::TooComplex`]).
//!
//! ## What a loader must do itself
//! - `insn_off` in [`BtfExt`] records is a byte offset within the ELF
//!   section; the kernel wants func/line info in instruction indices
//!   relative to the loaded program (after subprograms are appended).
//! - Compiler BTF has `DATASEC` sizes and `VAR` offsets of 0: libbpf sets
//!   each `DATASEC` size from the ELF section size and each variable's
//!   offset from its symbol value (use [`Btf::type_mut`]) before the kernel
//!   will accept it, and replaces kinds an older kernel lacks (decl/type
//!   tags, enum64, float, func linkage...) with ones it has.
//!
//! ```
//! use bpfvm_btf::{Btf, Kind, Type, TypeKind, IntEncoding, TypeId};
//! let mut btf = Btf::new();
//! let int = btf.add_string("int");
//! let int = btf.add_type(Type::new(int, TypeKind::Int {
//!     size: 4, encoding: IntEncoding { signed: true, ..Default::default() },
//!     bit_offset: 0, bits: 32 }));
//! let arr = btf.add_type(Type::new(0, TypeKind::Array { elem: int, index: int, nelems: 4 }));
//! assert_eq!(btf.size_of(arr).unwrap(), 16);
//! assert_eq!(btf.format_c(arr), "int[4]");
//! let again = Btf::parse(&btf.to_bytes()).unwrap();
//! assert_eq!(again, btf);
//! assert_eq!(again.find(Kind::Int, "int"), Some(TypeId(1)));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod btf;
mod cfmt;
pub mod core;
mod dump;
mod error;
mod ext;
mod types;

pub use btf::{BTF_HEADER_LEN, BTF_MAGIC, Btf};
pub use error::BtfError;
pub use ext::{BtfExt, CoreRelo, CoreReloKind, ExtSection, FuncInfo, LineInfo};
pub use types::{
    EnumValue, IntEncoding, Kind, Linkage, Member, Param, Type, TypeId, TypeKind, VarLinkage,
    VarSecinfo,
};
