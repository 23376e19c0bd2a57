//! # bpfvm-jit: the Cranelift JIT
//!
//! This crate owns the translation of a [`LoadedProgram`] to native code for the host
//! (through Cranelift, so nothing here is specific to x86_64) and the [`Jit`] engine that
//! runs it. The instruction semantics are the interpreter's (`bpfvm-interp`), bit for bit:
//! division by zero, `INT_MIN / -1`, shift masking, 32-bit zero extension, byte swaps,
//! every atomic, `lddw` of every kind, local calls, `callx`, helpers, kfuncs, tail calls
//! and `bpf_loop` / `bpf_for_each_map_elem` callbacks.
//!
//! How a program becomes code: every BPF function (pc 0, each local call target, each
//! code address a `lddw src=4` loads) becomes one Cranelift function, in a `JITModule`
//! of the program's own. Those the runtime enters have the native signature
//! `(run, r1, r2, r3, r4, r5, fp, depth) -> r0`; those only direct calls reach take an
//! internal one, `(run, the caller's fp and depth, fuel, the argument registers they
//! read) -> (r0, fuel)`. A liveness analysis over the whole program decides which registers must
//! cross a call through memory to keep the interpreter's shared register file exact
//! (for compiled code: none). A small local call with no memory access and no loop is
//! made inline instead, keeping the call's depth check and fuel test at the call's pc.
//! Helpers, kfuncs, `callx`, tail calls and callbacks go through `extern "C"` shims into
//! the runtime; a map lookup, update or delete of a map the program names with `lddw`,
//! with its key (and value) in the frame, skips the helper table and goes to the map
//! through the function the helper itself ends in (`map_calls`); after a run's first
//! lookup, a lookup in a plain hash map walks the bucket's chain in the generated code
//! (`HashTabMap::walk`) and logs the value it found for the run's regions, which the
//! runtime adds before it next looks at them. The code is built on
//! first use and cached in the program ([`LoadedProgram::engine_data`]); it is freed
//! when the program is dropped. A run is set up as the interpreter's ([`with_run`]);
//! over plain memory, for a program without global data, the same setup waits for the
//! code's first call into the runtime, which most runs of such programs never make
//! (`runtime::Deferred`).
//!
//! ## Checked mode
//! Until the static verifier lands, every program runs *checked*, as in the interpreter:
//! - memory accesses outside the current stack frame are tested inline (one subtract and
//!   one compare each) against a copy of the plain region the run hit last, the reachable
//!   stack, and the map value it hit last (aligned accesses only, with atomic
//!   instructions, as other threads share it); anything else calls, through a
//!   register-preserving trampoline built once per process, into
//!   [`bpfvm_runtime::Regions`], which finds the region or faults exactly as the
//!   interpreter does. Where several accesses go through one unchanged register, the
//!   span of all of them is tested once against the window, before the first; only
//!   when it fits does the code continue in a copy where they are untested (otherwise
//!   each is tested on its own, so a fault keeps its pc);
//! - the instruction budget is counted per basic block as *fuel*: back-edges and calls
//!   test its sign (one compare), and when it runs out the runtime checks the cancel flag
//!   and hands out the next 65,536 instructions of the budget, or faults. So a budget or
//!   cancellation fault names the pc of the back-edge or call that noticed; a run may go
//!   past its budget by at most one stretch of straight-line code, and a cancellation is
//!   noticed within 65,536 instructions of it (the interpreter faults at the exact
//!   instruction and polls the flag at every backward jump and call). A loop of one
//!   block that only computes on registers and steps a counter by one towards a bound
//!   is *strip-mined* (`counted`): at its head the code works out how many trips the
//!   fuel pays for and runs them without the test, charging them at once, so the
//!   faults and the pcs that notice them stay where they were. A small join block
//!   (`tails`: up to four register-only instructions, not a loop's head) gets a copy
//!   for each `goto` and conditional jump into it, with the same pcs and the same fuel
//!   charge, which saves a switch's arms a jump per trip and a parser's checks the fuel
//!   value each would carry to the join. A tree of unsigned compares of one register
//!   with constants (`switches`: how clang compiles a dense `switch` for BPF) becomes
//!   one jump through a table, each case charging the compares it skipped;
//! - faults come back as the interpreter's typed [`Fault`], never as a signal or a crash.
//!
//! [`Jit::with_constant_blinding`] adds hardening for untrusted bytecode: no immediate of
//! the program appears as such in the machine code.
//!
//! ## Invariants
//! - **Architecture Invariant:** code memory is never writable and executable at once:
//!   Cranelift's JIT module writes code into read-write pages and makes them read-execute
//!   (`mprotect`) before any function pointer is taken.
//! - Generated code only touches memory that a test proved to be inside a region of the
//!   run (an inline test of the access itself, a span test covering it, or the runtime's
//!   own check), the current frame, or the run's own `JitRun` record (`runtime.rs`).
//! - A panic in a host helper never unwinds through generated code: the shims catch it and
//!   the engine resumes it after the run has cleaned up.
//!
//! ```
//! use bpfvm_isa::Program;
//! use bpfvm_jit::Jit;
//! use bpfvm_runtime::{Engine, FaultKind, LoadedProgram, ProgramType, RunError, RunOptions};
//!
//! // r0 = *(u8 *)(r1 + 1) ; exit
//! let bytes = [0x71, 0x10, 1, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let prog = LoadedProgram::new(Program::from_bytes(&bytes)?, ProgramType::Conformance)?;
//! let jit = Jit::new();
//! assert_eq!(jit.run(&prog, &mut [7, 42], &RunOptions::default()), Ok(42));
//! // One byte of memory: the second is out of bounds, a fault at pc 0 as in the interpreter.
//! let Err(RunError::Fault(fault)) = jit.run(&prog, &mut [7], &RunOptions::default()) else {
//!     panic!("expected a fault");
//! };
//! assert_eq!(fault.pc, 0);
//! assert!(matches!(fault.kind, FaultKind::OutOfBounds { size: 1, write: false, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod coalesce;
mod code;
mod counted;
mod liveness;
mod map_calls;
mod runtime;
mod switches;
mod tails;
#[cfg(test)]
mod test_cfg;
mod translate;

use std::sync::atomic::AtomicBool;

use bpfvm_runtime::{
    Context, Engine, Fault, FaultKind, LoadedProgram, RunError, RunOptions, with_run,
};

pub use code::{CompiledProgram, FunctionDump};

use runtime::{Deferred, Ending, JitRun, Parts, Windows};

/// Why the JIT could not compile a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JitError {
    /// Cranelift does not support this host, or refused a setting.
    #[error("no JIT for this host: {0}")]
    Isa(String),
    /// Cranelift failed on a function (an engine bug: every loaded program translates).
    #[error("JIT compilation of the function at pc {entry} failed: {reason}")]
    Codegen {
        /// The function's entry pc.
        entry: usize,
        /// Cranelift's message.
        reason: String,
    },
}

/// The JIT engine. Stateless apart from the per-process ISA: one value serves any number
/// of programs and threads; each program's code is cached in the program.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jit {
    blind: bool,
}

impl Jit {
    /// The JIT.
    pub fn new() -> Jit {
        Jit { blind: false }
    }

    /// The JIT with *constant blinding*, hardening for untrusted bytecode (the kernel's
    /// `bpf_jit_harden`): no immediate of the program (ALU, jump, store, `lddw`,
    /// `ldabs`/`ldind`) appears as such in the machine code. Each is emitted XORed with a
    /// random key drawn for the program's compilation, and the key is XORed back in at run
    /// time from the run record, so a program cannot plant chosen bytes in executable
    /// memory (JIT spraying). Same semantics; a little slower (an extra `xor` per
    /// immediate, and one register for the key). Blinded code is cached in the program
    /// separately from plain code.
    ///
    /// ```
    /// use bpfvm_isa::Program;
    /// use bpfvm_jit::Jit;
    /// use bpfvm_runtime::{Engine, LoadedProgram, ProgramType, RunOptions};
    ///
    /// // r0 = 0x3c3c3c3c ; r0 += 1 ; exit
    /// let bytes = [
    ///     0xb7, 0, 0, 0, 0x3c, 0x3c, 0x3c, 0x3c, 0x07, 0, 0, 0, 1, 0, 0, 0,
    ///     0x95, 0, 0, 0, 0, 0, 0, 0,
    /// ];
    /// let prog = LoadedProgram::new(Program::from_bytes(&bytes)?, ProgramType::Conformance)?;
    /// let hardened = Jit::new().with_constant_blinding();
    /// assert_eq!(hardened.run(&prog, &mut [], &RunOptions::default()), Ok(0x3c3c_3c3d));
    /// assert_eq!(hardened.name(), "jit-blinded");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_constant_blinding(self) -> Jit {
        Jit { blind: true }
    }

    /// Compiles `prog` now (runs compile on first use anyway); reports what Cranelift
    /// could not do as an error instead of a refused run.
    pub fn compile(&self, prog: &LoadedProgram) -> Result<(), JitError> {
        code::with_code(prog, self.blind, |code| {
            code.map(|_| ()).map_err(Clone::clone)
        })
    }

    /// Compiles `prog` afresh, keeping each function's Cranelift IR and disassembly: what
    /// `bpfvm run --dump-ir` / `--dump-asm` print.
    pub fn dump(&self, prog: &LoadedProgram) -> Result<Vec<FunctionDump>, JitError> {
        Ok(CompiledProgram::compile(prog, true, self.blind)?
            .dumps()
            .to_vec())
    }

    /// Runs `prog` with `ctx` in `r1` (see [`Engine::run_context`]).
    #[inline]
    pub fn run_context(
        &self,
        prog: &LoadedProgram,
        ctx: &mut Context<'_>,
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        code::with_code(prog, self.blind, |code| match code {
            Ok(code) => execute(prog, code, ctx, opts).map_err(RunError::Fault),
            Err(e) => Err(RunError::Failed {
                engine: self.name(),
                reason: e.to_string(),
            }),
        })
    }
}

/// One run of `prog`'s `code`: the interpreter's setup and cleanup ([`with_run`]), or
/// the same deferred ([`Deferred`]), around the entry function. The layers from
/// [`Engine::run`] down to the entry's call are inline (with [`JitRun::new`] and the
/// window limits): each one out of line cost about ten instructions of every run, and
/// their results copied back and forth.
#[inline]
fn execute(
    prog: &LoadedProgram,
    code: &CompiledProgram,
    ctx: &mut Context<'_>,
    opts: &RunOptions,
) -> Result<u64, Fault> {
    let slots = prog.program().slots();
    let cancel: Option<&AtomicBool> = opts.cancel.as_ref().map(|t| t.flag());
    if opts.cancel.as_ref().is_some_and(|t| t.is_cancelled()) {
        return Err(Fault::at(slots, 0, FaultKind::Cancelled));
    }

    let entry = code.entry();
    let outcome = match ctx {
        // Plain memory and no global data: the regions and the state wait for the
        // code's first call into the runtime (`Deferred`), which most runs never make.
        Context::Memory(mem) if !prog.has_direct_values() => {
            let mut deferred = Deferred::new(prog, opts, mem);
            let fp = deferred.zero_stack(code.names_fp());
            let windows = deferred.windows();
            let (r1, r2) = (windows.fast.0, mem.len() as u64);
            let mut run = JitRun::new(
                deferred.parts(),
                windows,
                prog,
                code,
                opts.budget,
                cancel,
                r1,
                r2,
                fp,
            );
            // SAFETY: as below, with `deferred` for the regions and the state, in place
            // and otherwise untouched until the call returns.
            let r0 = unsafe { entry(&mut run, r1, r2, 0, 0, 0, fp, 0) };
            // `deferred` ends the regions and the state, if built, as this arm ends (in
            // place: `drop(deferred)` would copy its 4 KiB stack first).
            Ok(run.ending().map_or(Ok(r0), |e| Err(Box::new(e))))
        }
        _ => with_run(prog, ctx, opts, |setup| {
            let windows = Windows::of(setup.regions);
            let mut run = JitRun::new(
                Parts::built(setup.regions, setup.state),
                windows,
                prog,
                code,
                opts.budget,
                cancel,
                setup.packet_addr,
                setup.packet_len,
                setup.fp,
            );
            // SAFETY: `entry` is the finalized entry function of `code`, which `prog`'s
            // engine data (or this caller) keeps alive for the call; `run` points to the
            // regions, state and program `with_run` set up, all alive and otherwise
            // untouched until the call returns; the signature is `JitFn`.
            let r0 = unsafe { entry(&mut run, setup.r1, setup.r2, 0, 0, 0, setup.fp, 0) };
            // Boxed, so that what `with_run` hands back is two words: copying a larger
            // result out through vector registers stalled on the fields just stored
            // (store forwarding fails), several ns of every run; a run that unwinds is
            // rare.
            run.ending().map_or(Ok(r0), |e| Err(Box::new(e)))
        }),
    };
    // A panic resumes only now, after the run was cleaned up (by `with_run`, or by
    // `Deferred`'s drop).
    let ended = outcome.map_err(|kind| Fault::at(slots, 0, kind))?;
    match ended.map_err(|e| *e) {
        Ok(r0) => Ok(r0),
        Err(Ending::Fault(f)) => Err(f),
        Err(Ending::Exit(v)) => Ok(v),
        Err(Ending::Panic(payload)) => std::panic::resume_unwind(payload),
    }
}

impl Engine for Jit {
    fn name(&self) -> &'static str {
        if self.blind { "jit-blinded" } else { "jit" }
    }

    fn prepare(&self, prog: &LoadedProgram) -> Result<(), RunError> {
        self.compile(prog).map_err(|e| RunError::Failed {
            engine: self.name(),
            reason: e.to_string(),
        })
    }

    #[inline]
    fn run(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        self.run_context(prog, &mut Context::Memory(mem), opts)
    }

    fn run_context(
        &self,
        prog: &LoadedProgram,
        ctx: &mut Context<'_>,
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        Jit::run_context(self, prog, ctx, opts)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bpfvm_isa::Program;
    use bpfvm_runtime::{CancelToken, ProgramType};

    use super::*;

    fn load(words: &[[u8; 8]]) -> LoadedProgram {
        let prog = Program::from_bytes(words.as_flattened()).expect("valid");
        LoadedProgram::new(prog, ProgramType::Conformance).expect("loads")
    }

    /// `r0 += 1 ; goto -2` forever (pc 1 is the back-edge).
    fn spin() -> LoadedProgram {
        load(&[
            [0x07, 0, 0, 0, 1, 0, 0, 0],
            [0x05, 0, 0xfe, 0xff, 0, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ])
    }

    fn fault(r: Result<u64, RunError>) -> Fault {
        match r {
            Err(RunError::Fault(f)) => f,
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn budgets_end_loops_at_the_back_edge_beyond_many_refills() {
        let prog = spin();
        // 1,000,001 instructions: 15 refills of fuel, then the bank is empty.
        let budget = 1_000_001;
        let f = fault(Jit::new().run(&prog, &mut [], &RunOptions::new().with_budget(budget)));
        assert_eq!(f.kind, FaultKind::BudgetExhausted { budget });
        assert_eq!(f.pc, 1);
        // A budget that the program fits in is not a fault.
        let exits = load(&[[0xb7, 0, 0, 0, 7, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]]);
        let opts = RunOptions::new().with_budget(2);
        assert_eq!(Jit::new().run(&exits, &mut [], &opts), Ok(7));
    }

    #[test]
    fn refills_cover_blocks_longer_than_a_chunk() {
        use runtime::{FUEL_CHUNK, UNLIMITED, refill};
        let chunk = FUEL_CHUNK as i64;
        // Without a budget: a chunk, or the whole deficit of a very long block.
        assert_eq!(refill(-3, UNLIMITED), (chunk - 3, UNLIMITED));
        assert_eq!(refill(-3 * chunk, UNLIMITED), (0, UNLIMITED));
        // With one: drawn from the bank while it lasts; negative fuel afterwards means the
        // budget is spent.
        assert_eq!(refill(-10, 100_000), (chunk - 10, 100_000 - FUEL_CHUNK));
        assert_eq!(refill(-10, 5), (-5, 0));
        assert_eq!(refill(-2 * chunk, 3 * FUEL_CHUNK), (0, FUEL_CHUNK));
    }

    #[test]
    fn cancellation_from_another_thread_stops_an_endless_loop() {
        let prog = spin();
        // Compile first: the run must be spinning when the token is cancelled (a run that
        // starts cancelled faults at pc 0 without running).
        Jit::new().compile(&prog).expect("compiles");
        let token = CancelToken::new();
        let canceller = bpfvm_testkit::cancel_after(&token, Duration::from_millis(200));
        let f = fault(Jit::new().run(&prog, &mut [], &RunOptions::new().with_cancel(token)));
        canceller.join().expect("canceller");
        assert_eq!((f.kind, f.pc), (FaultKind::Cancelled, 1));
    }

    #[test]
    fn the_ninth_frame_is_a_fault_and_callees_see_zeroed_frames() {
        // f: r0 = *(u64 *)(r10 - 8) (zero in a fresh frame); *(r10 - 8) = 5; call f.
        let deep = load(&[
            [0x79, 0xa0, 0xf8, 0xff, 0, 0, 0, 0],
            [0x7a, 0x0a, 0xf8, 0xff, 5, 0, 0, 0],
            [0x85, 0x10, 0, 0, 0xfd, 0xff, 0xff, 0xff],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ]);
        let f = fault(Jit::new().run(&deep, &mut [], &RunOptions::new()));
        assert_eq!((f.kind, f.pc), (FaultKind::CallDepthExceeded, 2));
        // r0 = call g ; exit ; g: r0 = *(u64 *)(r10 - 8) ; exit — twice in one run, the
        // second call after the frame was written: the interpreter zeroes a frame once per
        // run, when first reached, so the second call sees the first one's store.
        let twice = load(&[
            [0x85, 0x10, 0, 0, 4, 0, 0, 0],
            [0xbf, 0x06, 0, 0, 0, 0, 0, 0],
            [0x85, 0x10, 0, 0, 2, 0, 0, 0],
            [0x0f, 0x60, 0, 0, 0, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
            [0x79, 0xa0, 0xf8, 0xff, 0, 0, 0, 0],
            [0x7a, 0x0a, 0xf8, 0xff, 9, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ]);
        let interp = bpfvm_interp::Interpreter::new();
        let want = interp.run(&twice, &mut [], &RunOptions::new());
        assert_eq!(want, Ok(9));
        assert_eq!(Jit::new().run(&twice, &mut [], &RunOptions::new()), Ok(9));
    }

    /// Runs LLVM-syntax `src` on the interpreter and the JIT; both results.
    fn both(src: &str) -> (Result<u64, Fault>, Result<u64, RunError>) {
        use bpfvm_isa::asm::{Dialect, assemble};
        let slots = assemble(src, Dialect::Llvm).expect("test program assembles");
        let prog = Program::from_slots(slots).expect("valid");
        let prog = LoadedProgram::new(prog, ProgramType::Conformance).expect("loads");
        // A budget, so that a wrong register cannot make a test loop for ever.
        let opts = RunOptions::new().with_budget(10_000);
        let interp = bpfvm_interp::Interpreter::new().run(&prog, &mut [], &opts);
        (interp, Jit::new().run(&prog, &mut [], &opts))
    }

    #[test]
    fn registers_cross_local_calls_as_in_one_register_file() {
        // f reads the caller's r6 (an input through `in_regs`), g writes r2 and the
        // caller reads it after the call (an output through `ret_regs`): 5 + 17 = 22.
        let (interp, jit) = both(
            "r6 = 5
             r2 = 7
             call f
             r0 += r2
             exit
             f: r0 = r6
             call g
             exit
             g: r3 = 1
             r2 += 10
             exit",
        );
        assert_eq!(interp, Ok(22));
        assert_eq!(jit, Ok(22));
        // r4 is read after each call but never written by the callee: the caller's value
        // goes in and comes back out. r3 counts 0, 1, 2 through f; r4 counts down 3, 2, 1;
        // r0 sums r3 + r4 before each call: (0+3) + (1+2) + (2+1) = 9.
        let (interp, jit) = both(
            "r3 = 0
             r4 = 3
             r6 = 0
             l: r0 = r3
             r0 += r4
             r6 += r0
             call f
             r4 += -1
             if r4 != 0 goto l
             r0 = r6
             exit
             f: r3 += 1
             exit",
        );
        assert_eq!(interp, Ok(9));
        assert_eq!(jit, Ok(9));
    }

    #[test]
    fn a_returned_callees_frame_is_out_of_reach_of_its_caller() {
        // f hands back a pointer into its own frame (frame 1) after writing 7 there
        // through it; once f has returned, the caller's load through that pointer is
        // outside every region (the stack reaches frame 0 only): a fault at pc 2, on
        // both engines. The caller's slow path must test against its own depth, not
        // the depth f left behind.
        let (interp, jit) = both(
            "r1 = 0
             call f
             r0 = *(u64 *)(r0 + 0)
             exit
             f: r0 = r10
             r0 += -8
             r2 = 7
             *(u64 *)(r0 + 0) = r2
             exit",
        );
        // (The address differs: each engine has its own stack.)
        for f in [interp.expect_err("the interpreter faults"), fault(jit)] {
            assert!(
                matches!(
                    f.kind,
                    FaultKind::OutOfBounds {
                        size: 8,
                        write: false,
                        ..
                    }
                ) && f.pc == 2,
                "{f:?}"
            );
        }
    }

    #[test]
    fn constant_blinding_hides_every_immediate_and_keeps_the_results() {
        use bpfvm_isa::asm::{Dialect, assemble};
        let src = "r0 = *(u32 *)(r1 + 0)
             if r0 == 0x1b2b3b4b goto skip
             r0 += 0x5a5a5a5a
             r0 ^= 0x6b6b6b6b
             skip:
             *(u32 *)(r10 - 4) = 0x7c7c7c7c
             r1 = *(u32 *)(r10 - 4)
             r0 += r1
             r2 = 0x1122334455667788 ll
             r0 ^= r2
             w3 = w0
             w3 += 0x2d2d2d2d
             r0 += r3
             exit";
        // By hand: the memory holds 0x04030201, which is not 0x1b2b3b4b.
        let mut x: u64 = 0x0403_0201 + 0x5a5a_5a5a;
        x ^= 0x6b6b_6b6b;
        x += 0x7c7c_7c7c;
        x ^= 0x1122_3344_5566_7788;
        x += u64::from((x as u32).wrapping_add(0x2d2d_2d2d));
        let prog = LoadedProgram::new(
            Program::from_slots(assemble(src, Dialect::Llvm).expect("assembles")).expect("valid"),
            ProgramType::Conformance,
        )
        .expect("loads");
        let plain = Jit::new();
        let blinded = Jit::new().with_constant_blinding();
        for jit in [plain, blinded] {
            assert_eq!(jit.run(&prog, &mut [1, 2, 3, 4], &RunOptions::new()), Ok(x));
        }
        let immediates: [&[u8]; 6] = [
            &0x5a5a_5a5au32.to_le_bytes(),
            &0x1b2b_3b4bu32.to_le_bytes(),
            &0x6b6b_6b6bu32.to_le_bytes(),
            &0x7c7c_7c7cu32.to_le_bytes(),
            &0x1122_3344_5566_7788u64.to_le_bytes(),
            &0x2d2d_2d2du32.to_le_bytes(),
        ];
        // x86-64 encodes a 32-bit immediate as its four bytes; other architectures build
        // constants piecewise (aarch64: 16 bits per `movz`/`movk`), where a byte scan finds
        // nothing even in plain code. The blinded runs above are their check.
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let contains = |code: &[&[u8]], pattern: &[u8]| {
            code.iter()
                .any(|f| f.windows(pattern.len()).any(|w| w == pattern))
        };
        code::with_code(&prog, false, |code| {
            let bytes = code.expect("compiles").code_bytes();
            for imm in immediates {
                // The scan finds them in plain code (so it can fail below).
                assert!(contains(&bytes, imm), "{imm:02x?} not in the plain code");
            }
        });
        code::with_code(&prog, true, |code| {
            let code = code.expect("compiles");
            assert_ne!(code.blind_key(), 0);
            let bytes = code.code_bytes();
            for imm in immediates {
                assert!(!contains(&bytes, imm), "{imm:02x?} in the blinded code");
            }
        });
    }
}
