//! The engine trait and the per-run options every engine honours.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bpfvm_isa::RawInsn;

use crate::env::{Environment, SystemEnvironment};
use crate::{Context, Fault, LoadedProgram};

/// Why [`Engine::run`] returned no `r0`.
///
/// A [`Fault`] is the program's doing: it did something the run forbids, at an
/// instruction. The other variants are the engine's: it refused the program before
/// running it (the kernel's verifier said no) or could not do its job (a syscall failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The run faulted at an instruction.
    #[error("fault: {0}")]
    Fault(#[from] Fault),
    /// The engine refused to run the program (for the kernel: its verifier rejected it).
    #[error("{engine} refused the program: {reason}")]
    Refused {
        /// The engine's [`Engine::name`].
        engine: &'static str,
        /// Why, in the engine's words (for the kernel: the errno and the verifier's verdict).
        reason: String,
    },
    /// The engine failed for reasons of its own, not the program's.
    #[error("{engine} failed: {reason}")]
    Failed {
        /// The engine's [`Engine::name`].
        engine: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl RunError {
    /// The fault, if the program faulted.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            RunError::Fault(f) => Some(f),
            _ => None,
        }
    }
}

/// Something that runs a [`LoadedProgram`]: the interpreter, a JIT, the kernel.
///
/// **Test ABI** of [`Engine::run`]: `r1` holds the host address of `mem` (0 when `mem` is
/// empty), `r2` its length, `r10` the top of the first 512-byte stack frame; every other
/// register starts at 0. The program reads and writes `mem` in place; the result is `r0`
/// at the outermost `exit`.
///
/// Engines may refuse a program the interpreter would run (the kernel verifies it first);
/// that is a [`RunError::Refused`], not a fault. Engines that cannot count instructions or
/// poll from inside a run (the kernel) honour [`RunOptions`] as far as they can and say
/// how in their documentation.
pub trait Engine: Send + Sync {
    /// A short name for reports (`"interp"`, `"jit"`, `"kernel"`).
    fn name(&self) -> &'static str;

    /// Runs `prog` once over `mem` with the test ABI.
    fn run(&self, prog: &LoadedProgram, mem: &mut [u8], opts: &RunOptions)
    -> Result<u64, RunError>;

    /// Does the once-per-program work (pre-decoding, compiling) now instead of in the
    /// first run, so that runs can be timed alone; an engine that cannot take the program
    /// says why. The default does nothing.
    fn prepare(&self, prog: &LoadedProgram) -> Result<(), RunError> {
        let _ = prog;
        Ok(())
    }

    /// Runs `prog` once with `ctx` in `r1` (the test ABI for [`Context::Memory`]). Engines
    /// that only implement the test ABI refuse other contexts.
    fn run_context(
        &self,
        prog: &LoadedProgram,
        ctx: &mut Context<'_>,
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        match ctx {
            Context::Memory(mem) => self.run(prog, mem, opts),
            other => Err(RunError::Refused {
                engine: self.name(),
                reason: format!(
                    "this engine runs only the test ABI, not a {} context",
                    other.name()
                ),
            }),
        }
    }

    /// Runs slots that bpfvm's loader has not validated, for engines that judge bytecode
    /// themselves (the kernel's verifier): differential testing needs their own verdict on
    /// programs bpfvm rejects. Engines that rely on bpfvm's loader return `None`.
    fn run_unvalidated(
        &self,
        slots: &[RawInsn],
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Option<Result<u64, RunError>> {
        let _ = (slots, mem, opts);
        None
    }
}

/// Limits and surroundings of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The most instructions the run may execute (`lddw` counts once); `None` is unlimited.
    /// The instruction that would exceed it faults with
    /// [`FaultKind::BudgetExhausted`](crate::FaultKind::BudgetExhausted) instead of running.
    pub budget: Option<u64>,
    /// Polled at backward jumps and at calls; once cancelled the run faults with
    /// [`FaultKind::Cancelled`](crate::FaultKind::Cancelled).
    pub cancel: Option<CancelToken>,
    /// The per-CPU slot the run uses (what `bpf_get_smp_processor_id` returns): the
    /// worker's index. Per-CPU maps with fewer slots make per-CPU lookups fail.
    pub cpu: usize,
    /// Clocks, random numbers, the current task and the trace sink; `None` is the
    /// process-wide [`SystemEnvironment`].
    pub env: Option<Arc<dyn Environment>>,
}

impl RunOptions {
    /// Unlimited, not cancellable.
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// Sets the instruction budget.
    pub fn with_budget(mut self, budget: u64) -> RunOptions {
        self.budget = Some(budget);
        self
    }

    /// Sets the cancellation token.
    pub fn with_cancel(mut self, token: CancelToken) -> RunOptions {
        self.cancel = Some(token);
        self
    }

    /// Sets the per-CPU slot.
    pub fn with_cpu(mut self, cpu: usize) -> RunOptions {
        self.cpu = cpu;
        self
    }

    /// Sets the environment.
    pub fn with_env(mut self, env: Arc<dyn Environment>) -> RunOptions {
        self.env = Some(env);
        self
    }

    /// The environment of the run.
    pub fn environment(&self) -> &dyn Environment {
        static SYSTEM: std::sync::LazyLock<SystemEnvironment> =
            std::sync::LazyLock::new(SystemEnvironment::default);
        match &self.env {
            Some(e) => &**e,
            None => &*SYSTEM,
        }
    }
}

/// A shared flag a host sets to stop runs from another thread.
///
/// Clones share the flag. Cancelling is permanent: every later run that polls this token
/// stops too.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks every run polling this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for engines that poll it without going through the `Arc` each time.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}
