//! # bpfvm-interp: the interpreter
//!
//! This crate owns the instruction semantics of RFC 9669 (ISA v1–v4, every conformance
//! group, and the Linux extensions `callx`, `may_goto`, load-acquire/store-release) as
//! an [`Engine`] running in *checked* mode: every load, store and atomic is checked
//! against the run's memory regions, so any program [`bpfvm_isa::Program`] accepts runs
//! safely on any memory.
//!
//! How a run goes: on first use a [`LoadedProgram`] is pre-decoded into a flat array of
//! 16-byte operations (one concrete operation per entry: immediates pre-extended, jump
//! targets absolute), cached in the program; each run then sets up its registers, a
//! [`bpfvm_runtime::StackMemory`] of 8 × 512-byte frames and a
//! [`bpfvm_runtime::Regions`] table on the Rust stack, and loops: fetch, count down the
//! budget, dispatch on a `u8`.
//!
//! ## Invariants
//! - **Architecture Invariant:** no bytecode and no memory contents make a run panic or
//!   misbehave: every way to fail is a [`Fault`]. This crate has no `unsafe` code; memory
//!   accesses go through [`bpfvm_runtime::Regions`].
//! - A run of a program that calls no helpers allocates nothing on the heap (tracing
//!   included); helpers may (a map value's region ring, a tail call's program handle).
//! - Semantics choices where the RFC leaves room, all shared with the kernel unless said:
//!   `r1`–`r5` are zeroed after a helper call; `callx` calls the helper whose id is in the
//!   register, or, when the register holds a `lddw src=4` code address of this program,
//!   that local function; a misaligned atomic is [`FaultKind::MisalignedAtomic`]; a
//!   legacy packet load (`mem` is the packet) out of bounds ends the program returning 0;
//!   each function invocation gets its own `may_goto` counter of
//!   [`bpfvm_runtime::MAY_GOTO_BUDGET`].
//!
//! ```
//! use bpfvm_interp::Interpreter;
//! use bpfvm_isa::Program;
//! use bpfvm_runtime::{FaultKind, LoadedProgram, ProgramType, RunOptions};
//!
//! // r0 = *(u8 *)(r1 + 1) ; exit
//! let bytes = [0x71, 0x10, 1, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let prog = LoadedProgram::new(Program::from_bytes(&bytes)?, ProgramType::Conformance)?;
//! let interp = Interpreter::new();
//! assert_eq!(interp.run(&prog, &mut [7, 42], &RunOptions::default()), Ok(42));
//!
//! // One byte of memory: reading the second one faults, naming the access.
//! let fault = interp.run(&prog, &mut [7], &RunOptions::default()).unwrap_err();
//! assert_eq!(fault.pc, 0);
//! assert!(matches!(fault.kind, FaultKind::OutOfBounds { size: 1, write: false, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod compile;
mod exec;
mod semantics;
mod trace;

use bpfvm_runtime::{Context, Engine, Fault, LoadedProgram, RunError, RunOptions};

pub use bpfvm_runtime::FaultKind;
pub use trace::{ChangedRegs, TraceStep};

use trace::{FnTrace, NoTrace};

/// The interpreter engine. Stateless: one value serves any number of programs and
/// threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Interpreter;

impl Interpreter {
    /// The interpreter.
    pub fn new() -> Self {
        Interpreter
    }

    /// Runs `prog` once over `mem` with the test ABI of [`Engine::run`]. The interpreter
    /// never refuses a loaded program, so the only way to fail is a [`Fault`].
    pub fn run(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Result<u64, Fault> {
        self.run_with_count(prog, mem, opts).0
    }

    /// Like [`Interpreter::run`], also returning how many instructions were executed (the
    /// faulting one included; one `lddw` counts once).
    pub fn run_with_count(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> (Result<u64, Fault>, u64) {
        exec::run(prog, &mut Context::Memory(mem), opts, &mut NoTrace)
    }

    /// Runs `prog` once with `ctx` in `r1`: the test ABI, an XDP or `__sk_buff` context
    /// over a packet, or a host struct. Packet adjustments and context writes are left in
    /// `ctx`.
    pub fn run_context(
        &self,
        prog: &LoadedProgram,
        ctx: &mut Context<'_>,
        opts: &RunOptions,
    ) -> Result<u64, Fault> {
        exec::run(prog, ctx, opts, &mut NoTrace).0
    }

    /// Like [`Engine::run`], calling `on_step` after every executed instruction with the
    /// registers it changed. A faulting instruction is not reported; the fault names it.
    pub fn run_traced(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
        on_step: &mut dyn FnMut(&TraceStep),
    ) -> Result<u64, Fault> {
        let mut tracer = FnTrace {
            program: prog.program(),
            on_step,
        };
        exec::run(prog, &mut Context::Memory(mem), opts, &mut tracer).0
    }
}

impl Engine for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn prepare(&self, prog: &LoadedProgram) -> Result<(), RunError> {
        prog.engine_data(compile::Compiled::new);
        Ok(())
    }

    fn run(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        Ok(Interpreter::run(self, prog, mem, opts)?)
    }

    fn run_context(
        &self,
        prog: &LoadedProgram,
        ctx: &mut Context<'_>,
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        Ok(Interpreter::run_context(self, prog, ctx, opts)?)
    }
}
