//! # bpfvm-object: clang-compiled, libbpf-style BPF objects
//!
//! This crate owns turning an ELF object into what engines consume: linked, relocated
//! programs and the maps they use. It follows libbpf's conventions:
//!
//! - programs are the global functions of sections named by `SEC()`; the section name
//!   gives the program type ([`sections::classify`]);
//! - maps come from BTF-defined `.maps`, the legacy `maps` section, and one internal
//!   array map per global-data section (`.data`, `.rodata`, `.bss`, `.data.*`,
//!   `.rodata.*`) holding its initial contents, plus `.kconfig` for `__kconfig` externs;
//! - each program is its entry function with every function it calls or takes the address
//!   of appended after it (`.text` subprograms, static and global), calls and callback
//!   `lddw src=4` relocated;
//! - map references become `lddw src=5` (`BPF_PSEUDO_MAP_IDX`, imm = index in
//!   [`Object::maps`]) and global-data references `lddw src=6`
//!   (`BPF_PSEUDO_MAP_IDX_VALUE`, offset in the second slot): the kernel resolves them
//!   through `fd_array`, bpfvm through its own map table, so the same program serves
//!   every engine;
//! - CO-RE relocations are resolved against a target BTF: the kernel's for the kernel
//!   engine, bpfvm's own context types ([`context_btf`]) by default; `__kconfig` and
//!   `__ksym` externs against host-supplied values and the target BTF;
//! - source lines per instruction come from `.BTF.ext` line info, or from DWARF
//!   `.debug_line` (read with `gimli`) when the object has no BTF line info.
//!
//! It does not create maps or run anything.
//!
//! ## Invariants
//! - **Architecture Invariant:** no input makes the loader panic or allocate beyond
//!   [`Limits`]: every problem is an [`ObjectError`] naming what and where.
//! - Every relocation of a program section is applied or rejected; none is ignored.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod dwarf;
mod elf;
mod error;
mod limits;
mod link;
mod load;
mod maps;
pub mod sections;

pub use error::ObjectError;
pub use limits::Limits;
pub use link::{
    PSEUDO_BTF_ID, PSEUDO_FUNC, PSEUDO_KFUNC_CALL, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE,
};
pub use load::{
    ExternKind, ExternSpec, KconfigValue, LineEntry, LoadOptions, Object, ProgramSpec,
    RelocationSummary, SectionSummary, load,
};
pub use maps::{DataKind, MAP_TYPE_NAMES, MapOrigin, MapSpec, SlotValue};
pub use sections::ProgramKind;

mod run;
pub use run::{MapContents, ObjectRun};

/// The BTF of the context types of the program types bpfvm runs — the kernel UAPI's
/// `struct xdp_md`, `struct __sk_buff`, `struct bpf_sock`… as `context/context.c`
/// declares them (`context/build.sh` rebuilds it). It is the CO-RE target for bpfvm's own
/// engines, as `/sys/kernel/btf/vmlinux` is for the kernel.
pub fn context_btf() -> &'static bpfvm_btf::Btf {
    static BTF: std::sync::OnceLock<bpfvm_btf::Btf> = std::sync::OnceLock::new();
    BTF.get_or_init(|| {
        // The blob is part of the source tree; a test parses it, so this cannot fail in a
        // build that passed its tests.
        bpfvm_btf::Btf::parse(include_bytes!("../context/context.btf"))
            .expect("context/context.btf is valid BTF")
    })
}
