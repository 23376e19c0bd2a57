//! # bpfvm-runtime: what every engine shares
//!
//! This crate owns the contract between a program and the engines that run it, and the
//! execution context of one run. It does not own instruction semantics (those live in
//! the engines: `bpfvm-interp`, `bpfvm-jit` and the kernel backend).
//!
//! - [`LoadedProgram`]: a validated [`bpfvm_isa::Program`] checked against its
//!   [`ProgramType`] (map references resolved to its maps, kfunc calls to registered
//!   functions, code addresses that land on instructions, no BTF-id loads), with its
//!   [`HelperRegistry`] and a per-program cache where engines keep what they derive once
//!   ([`LoadedProgram::engine_data`]).
//! - [`Engine`]: `run(&LoadedProgram, &mut [u8], &RunOptions) -> Result<u64, RunError>`,
//!   with the test ABI documented on the trait; a [`RunError`] is a [`Fault`] or the engine
//!   refusing the program. [`RunOptions`] carries an instruction budget and
//!   a [`CancelToken`].
//! - [`Fault`] / [`FaultKind`]: every way a run can end abnormally, with the pc.
//! - [`with_run`]: a run's setup and cleanup (epoch pin, [`RunState`], stack, context,
//!   global data; spin locks and pending records afterwards), written once so that every
//!   engine runs a program over the same memory; [`set_up_after_stack`] and [`end_run`]
//!   are its parts, for an engine that builds the same setup later (the JIT, at its
//!   code's first call into the runtime).
//! - [`Regions`]: the memory a run may touch (stack frames, the memory buffer, the
//!   context with its field rules, the packet, map values) and the checked loads, stores
//!   and atomics on it; [`StackMemory`] is the 8 × 512-byte frame stack; [`Context`] is
//!   what `r1` points to.
//! - [`Helper`] / [`HelperRegistry`] / [`HelperContext`]: helpers by kernel id, kfuncs by
//!   BTF id, and what they see of a run ([`RunState`], the [`Environment`]).
//! - [`maps`]: user-space BPF maps with the kernel's semantics, their memory accounting
//!   and the epoch scheme that keeps value memory valid while runs hold pointers into it.
//!
//! ## Invariants
//! - **Architecture Invariant:** a [`LoadedProgram`] never contains an instruction its
//!   program type cannot resolve at load; what remains to fail at run time (unknown helper
//!   ids, bad addresses, budgets) fails as a [`Fault`], never a panic.
//! - **Architecture Invariant:** programs see real host addresses, and every access goes
//!   through [`Regions`], which proves it in bounds first; the access after that proof is
//!   in module `memory`. The other `unsafe` code (map value memory, ring-buffer records,
//!   helpers handing map values to [`Regions`]) states its reasoning in `SAFETY` comments.
//! - A run of a program that touches no maps allocates nothing on the heap: [`Regions`]
//!   and [`StackMemory`] live on the Rust stack of the run. Map values a run looks up go in
//!   a ring of [`MAX_DYNAMIC_REGIONS`] allocated once, on the first one.
//!
//! ```
//! use bpfvm_isa::Program;
//! use bpfvm_runtime::{CancelToken, LoadedProgram, ProgramType, RunOptions};
//! // mov r0, r2 ; exit
//! let bytes = [0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let prog = LoadedProgram::new(Program::from_bytes(&bytes)?, ProgramType::Conformance)?;
//! let opts = RunOptions::new().with_budget(1_000).with_cancel(CancelToken::new());
//! assert_eq!(prog.program_type(), ProgramType::Conformance);
//! assert_eq!(opts.budget, Some(1_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod context;
mod engine;
mod env;
mod fault;
mod helpers;
pub mod maps;
mod memory;
mod program;
mod run;

pub use context::{Context, InstalledContext, Packet, SkBuff, XdpMd};
pub use engine::{CancelToken, Engine, RunError, RunOptions};
pub use env::{Environment, FixedEnvironment, SystemEnvironment, Task};
pub use fault::{Fault, FaultKind};
pub use helpers::{
    BUILTIN_HELPERS, BuiltinHelper, ETH_HLEN, Helper, HelperContext, HelperFn, HelperIdOutOfRange,
    HelperImpl, HelperRegistry, HostFn, MAX_HELPER_ID, MAX_LOOPS, XDP_META_MAX,
    XDP_PACKET_HEADROOM, XDP_SHARED_INFO, delete_in_run, lookup_in_run, update_in_run,
};
pub use maps::{
    ArrayMap, HashTabMap, Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, create_map,
};
pub use memory::{
    MAX_CALL_FRAMES, MAX_DYNAMIC_REGIONS, MAX_REGIONS, MemoryRegion, PacketBounds, RegionError,
    RegionKind, Regions, STACK_FRAME_SIZE, STACK_SIZE, Scalar, StackMemory,
};
pub use program::{EngineData, LoadError, LoadErrorKind, LoadedProgram, ProgramType};
pub use run::{
    CallbackRequest, MAX_TAIL_CALLS, Pending, RunSetup, RunState, end_run, map_handle,
    set_up_after_stack, with_run,
};

/// The `may_goto` budget of each function invocation (the kernel's `BPF_MAX_LOOPS`,
/// 8 × 1024 × 1024): the kernel initializes a hidden per-frame counter to it at every
/// function entry; `may_goto` jumps when it is 0 and otherwise decrements it.
pub const MAY_GOTO_BUDGET: u64 = 8 * 1024 * 1024;
