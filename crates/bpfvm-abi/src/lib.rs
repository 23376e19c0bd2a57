//! # bpfvm-abi: the contract between a program and its host
//!
//! This crate owns the vocabulary every other part of bpfvm shares about what a program
//! may ask for, with the kernel's numbering so that objects built for Linux mean the same
//! thing here:
//!
//! - [`MapType`], [`MapSpec`] and the map flags: what a map is, and the kernel's rules for
//!   which specs are valid ([`MapSpec::validate`]);
//! - [`MapError`]: how map operations fail, with the errno a helper returns;
//! - [`HELPERS`], [`HelperProto`], [`ArgKind`], [`RetKind`]: every helper's id and name
//!   (`enum bpf_func_id`) and the prototype the kernel's verifier checks calls against;
//! - [`ProgramType`] (`enum bpf_prog_type`) and [`context_layout`]: the context each program
//!   type bpfvm runs receives, field by field, with the kernel's read/write rules.
//!
//! It owns no implementation: maps live in `bpfvm-runtime`, helpers in the engines' support
//! code.
//!
//! ## Invariants
//! - Numbers are the kernel's (`enum bpf_map_type`, `BPF_*` flags, errno values): a spec
//!   read from an ELF object or sent to `bpf(2)` needs no translation.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod helpers;
mod maps;
mod progtypes;

pub use helpers::{
    ArgKind, HELPERS, HelperId, HelperProto, RetKind, TypeFlags, helper_by_id, helper_by_name,
};
pub use maps::{
    F_LOCK, F_MMAPABLE, F_NO_COMMON_LRU, F_NO_PREALLOC, F_NUMA_NODE, F_RDONLY, F_RDONLY_PROG,
    F_WRONLY, F_WRONLY_PROG, F_ZERO_SEED, MapError, MapSpec, MapType, UPDATE_ANY, UPDATE_EXIST,
    UPDATE_NOEXIST,
};
pub use progtypes::{
    AccessWidth, CONFORMANCE_CONTEXT, ContextField, ContextLayout, ProgramType,
    RAW_TRACEPOINT_CONTEXT, Rewrite, SOCKET_FILTER_CONTEXT, TC_CONTEXT, XDP_CONTEXT,
    context_layout,
};
