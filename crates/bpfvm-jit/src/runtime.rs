//! What generated code sees of a run ([`JitRun`]) and the `extern "C"` shims it calls for
//! everything that is not straight-line arithmetic: slow-path memory accesses through
//! [`Regions`], helpers, kfuncs, `callx`, tail calls, `bpf_loop` callbacks, frame changes
//! and faults.
//!
//! Protocol between generated code and the shims:
//! - A shim that fails records a [`Fault`] (with the pc the code passed, in the current
//!   program's slots), sets [`JitRun::status`] to [`STATUS_UNWIND`] and returns 0. After
//!   every call the code loads `status`; non-zero means "return at once": each function
//!   returns 0 to its caller, which sees the same status, up to the runner. (A function
//!   of the internal convention, which only direct calls reach, returns its fuel too, and
//!   −1 when it unwinds: its caller loads `status` only when that fuel is negative.)
//! - A helper call whose helper asked for a tail call returns the tail-called program's
//!   `r0` with [`STATUS_TAIL_RETURN`]: the calling function clears the status and
//!   returns that `r0` itself (the callee replaced it).
//! - `r0` and `r6`–`r9` go into a function through [`JitRun::in_regs`] and `r1`–`r5`
//!   come out of one through [`JitRun::ret_regs`], so that registers a callee does not
//!   define read exactly as in the interpreter, which shares one register file. Only
//!   those a liveness analysis finds readable go through them (`liveness.rs`); the
//!   runtime, which cannot know, stores all of `in_regs` (zeros on entering a program)
//!   and, for callbacks, reads `r5` from `ret_regs` (every function of a program with
//!   callbacks stores all of them).
//! - Every shim ends by copying the last plain region [`Regions`] hit into the fast-path
//!   window ([`JitRun::fast_base`] and [`JitRun::fast_limits`]), and the last region hit
//!   if shared into the shared window, which the code reloads after each call (or reads
//!   at the test, for coalesced groups' accesses); a direct map call copies only what it
//!   can have changed ([`Touched`]), and a direct lookup in a hash map or array
//!   ([`jit_lookup_in`]) copies nothing: the code makes the value it found the shared
//!   window itself. After a run's first such lookup ([`JitRun::walk_ready`]), a lookup
//!   in a hash map whose chains the code may walk (`HashTabMap::walk`) calls nothing:
//!   the code logs the value it found ([`JitRun::values`]), and the runtime adds the
//!   logged values to the regions before it next looks at them.

use std::any::Any;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bpfvm_isa::AtomicOp;
use bpfvm_runtime::{
    CallbackRequest, Fault, FaultKind, Helper, HelperContext, HelperRegistry, LoadedProgram,
    MAX_CALL_FRAMES, MAX_DYNAMIC_REGIONS, MemoryRegion, RegionKind, Regions, RunState,
    delete_in_run, lookup_in_run, update_in_run,
};

use crate::code::{CompiledProgram, JitFn, with_code};
use crate::map_calls::MapHelper;

/// The run goes on.
pub(crate) const STATUS_OK: u64 = 0;
/// Unwind: a fault, an early end of the program or a host panic is recorded.
pub(crate) const STATUS_UNWIND: u64 = 1;
/// The helper call just made ended in a completed tail call; the caller returns its `r0`.
pub(crate) const STATUS_TAIL_RETURN: u64 = 2;

/// `jit_raise` reasons.
pub(crate) const RAISE_DEPTH: u64 = 1;
pub(crate) const RAISE_PC: u64 = 2;

/// Instructions generated code runs between two visits to the runtime's poll (when its
/// fuel runs out): the longest a cancellation waits, in instructions, beyond one stretch
/// of straight-line code.
pub(crate) const FUEL_CHUNK: u64 = 1 << 16;

/// The bank of runs without a budget: never drawn down.
pub(crate) const UNLIMITED: u64 = u64::MAX;

/// Never set: the cancel flag of runs without a token.
pub(crate) static NEVER_CANCELLED: AtomicBool = AtomicBool::new(false);

/// How a run ended, besides `r0`.
pub(crate) enum Ending {
    /// The program faulted.
    Fault(Fault),
    /// A legacy packet load went out of bounds: the program ends returning this.
    Exit(u64),
    /// A host helper panicked; the runner resumes the panic after cleaning up.
    Panic(Box<dyn Any + Send>),
}

/// How many values the code's hash-map walks log before the runtime takes them in
/// ([`JitRun::values`]): as many as the run's regions keep ([`MAX_DYNAMIC_REGIONS`]).
pub(crate) const VALUE_LOG: usize = MAX_DYNAMIC_REGIONS;

/// The state of one JIT run. The fields up to `values_len`, and `values`, are read and
/// written by generated code at the offsets [`JitRun::OFFSETS`] gives (`repr(C)`).
#[repr(C)]
pub(crate) struct JitRun {
    /// The fast-path window: the address of the plain region the run hit last.
    pub fast_base: u64,
    /// For each access kind (`[load 1, 2, 4, 8 bytes, store 1, 2, 4, 8 bytes]`), one past
    /// the last offset from `fast_base` where such an access fits in the window
    /// (`len - size + 1`), or 0 when none does: the code's test is one unsigned compare,
    /// `addr - fast_base < limit`. Shared regions (map values, which other threads
    /// access too) get 0, so they go through the runtime, which accesses them atomically;
    /// read-only ones get 0 for stores.
    pub fast_limits: [u64; 8],
    /// The shared window: the last region hit if it is shared (a map value), accessed
    /// inline only with atomic instructions and only when naturally aligned (as the
    /// runtime's shared accesses are atomic); limits as `fast_limits`, all 0 otherwise.
    pub shared_base: u64,
    /// Its limits.
    pub shared_limits: [u64; 8],
    /// Fuel: instructions the code may run before it calls [`jit_poll`]. Generated code
    /// subtracts each block's length at its entry and tests the sign at back-edges and
    /// calls; the poll checks the cancel flag and refills from [`JitRun::bank`] (the budget
    /// fault comes when the bank is empty too).
    pub remaining: i64,
    /// The cancel flag polled when the fuel runs out.
    pub cancel: *const AtomicBool,
    /// Frames `0..frames_ready` are zeroed (frame 0 of a program that never names `r10`:
    /// once the runtime builds the regions, before any code can reach it): a local call
    /// to a deeper frame asks the runtime first ([`jit_enter`]); other calls compute the
    /// frame pointer inline.
    pub frames_ready: u64,
    /// [`STATUS_OK`], [`STATUS_UNWIND`] or [`STATUS_TAIL_RETURN`].
    pub status: u64,
    /// `r0`, `r6`–`r9` for the function being entered.
    pub in_regs: [u64; 5],
    /// `r1`–`r5` as the last function or helper left them.
    pub ret_regs: [u64; 5],
    /// The arguments of a slow-path shim, after the run pointer: generated code stores
    /// them here and calls the shim's trampoline with the run pointer alone, so the cold
    /// call pins no register but the first.
    pub slow_args: [u64; 6],
    /// What the last slow-path shim called through a trampoline returned (trampolines
    /// preserve every register and so return nothing themselves).
    pub result: u64,
    /// The constant-blinding key of the code running now (0 when it is not blinded):
    /// blinded code holds each immediate as `imm ^ key` and XORs this back in at run
    /// time (see `translate`).
    pub blind_key: u64,
    /// Non-zero once a direct lookup has run ([`jit_lookup_in`]): the run holds the
    /// epoch pinned from then to its end, so the code may walk a hash map's chains itself
    /// (`HashTabMap::walk`); before, it calls the shim, which pins.
    pub walk_ready: u64,
    /// How many entries of [`JitRun::values`] the code has logged since the runtime last
    /// took them in.
    pub values_len: u64,
    /// The call depth of the function running now, for the slow paths of its checked
    /// accesses: a function with such accesses writes it at its entry and again after
    /// each call (which may have run others); other functions leave it.
    pub depth_now: u64,
    /// Frame 0's frame pointer (`r10` of the outermost function): frame `d`'s is
    /// `stack_top - 512 * d`.
    pub stack_top: u64,

    // Rust side only.
    /// The run's memory; null until the first shim call of a run whose setup was
    /// deferred ([`Deferred`]).
    regions: *mut Regions<'static>,
    /// The run's helper-visible state; null when `regions` is.
    state: *mut RunState<'static>,
    /// What builds `regions` and `state` on the first shim call, for a run that started
    /// without them (null for the others).
    deferred: *mut Deferred,
    /// The program running now, and its code.
    prog: *const LoadedProgram,
    code: *const CompiledProgram,
    /// The budget as given (for the fault).
    budget: u64,
    /// Budget not yet handed out as fuel ([`UNLIMITED`] for runs without a budget).
    bank: u64,
    /// The call depth the regions' stack is set to (frames `0..=depth` reachable); the
    /// shims set it to the calling function's depth before touching memory.
    depth_synced: u64,
    /// The legacy packet of `ldabs`/`ldind`.
    packet_addr: u64,
    packet_len: u64,
    /// Why the run unwound.
    pub(crate) ending: Option<Ending>,

    /// Values the code's walks of hash maps found (`Cx::walk`), not yet added to the
    /// regions: the address and the descriptor (the length, bit 32 set when programs may
    /// write it), entries `0..values_len` set. The runtime adds them, in order, as the
    /// map's lookup would have at the time ([`JitRun::take_values`]), before it next
    /// looks at the regions: on entering any shim, and when code it called returns.
    /// Until then only the code can reach them, and it reaches the newest through the
    /// shared window, which it sets itself. The code calls [`jit_take_values`] when
    /// the log is full.
    values: [MaybeUninit<[u64; 2]>; VALUE_LOG],
}

/// Offsets of the fields generated code touches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offsets {
    pub fast_base: i32,
    pub fast_limits: i32,
    pub shared_base: i32,
    pub shared_limits: i32,
    pub remaining: i32,
    pub frames_ready: i32,
    pub status: i32,
    pub in_regs: i32,
    pub ret_regs: i32,
    pub slow_args: i32,
    pub result: i32,
    pub blind_key: i32,
    pub walk_ready: i32,
    pub values_len: i32,
    pub values: i32,
    pub depth_now: i32,
    pub stack_top: i32,
}

impl JitRun {
    pub(crate) const OFFSETS: Offsets = Offsets {
        fast_base: std::mem::offset_of!(JitRun, fast_base) as i32,
        fast_limits: std::mem::offset_of!(JitRun, fast_limits) as i32,
        shared_base: std::mem::offset_of!(JitRun, shared_base) as i32,
        shared_limits: std::mem::offset_of!(JitRun, shared_limits) as i32,
        remaining: std::mem::offset_of!(JitRun, remaining) as i32,
        frames_ready: std::mem::offset_of!(JitRun, frames_ready) as i32,
        status: std::mem::offset_of!(JitRun, status) as i32,
        in_regs: std::mem::offset_of!(JitRun, in_regs) as i32,
        ret_regs: std::mem::offset_of!(JitRun, ret_regs) as i32,
        slow_args: std::mem::offset_of!(JitRun, slow_args) as i32,
        result: std::mem::offset_of!(JitRun, result) as i32,
        blind_key: std::mem::offset_of!(JitRun, blind_key) as i32,
        walk_ready: std::mem::offset_of!(JitRun, walk_ready) as i32,
        values_len: std::mem::offset_of!(JitRun, values_len) as i32,
        values: std::mem::offset_of!(JitRun, values) as i32,
        depth_now: std::mem::offset_of!(JitRun, depth_now) as i32,
        stack_top: std::mem::offset_of!(JitRun, stack_top) as i32,
    };

    /// A run over `parts` of `prog`, whose code is `code`, starting with `windows`, with
    /// frame 0's frame pointer `stack_top`.
    ///
    /// The pointers must stay valid, and be used by nothing else, until the run's entry
    /// function has returned (the runner keeps them borrowed for that long).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn new(
        parts: Parts,
        windows: Windows,
        prog: &LoadedProgram,
        code: &CompiledProgram,
        budget: Option<u64>,
        cancel: Option<&AtomicBool>,
        packet_addr: u64,
        packet_len: u64,
        stack_top: u64,
    ) -> JitRun {
        let (total, budget) = match budget {
            Some(b) => (b, b),
            None => (UNLIMITED, u64::MAX),
        };
        let fuel = total.min(FUEL_CHUNK);
        // The record as the function's value, built in place: a record built in a local
        // and then changed is copied out whole (~50 instructions of every run).
        let Windows {
            fast: (fast_base, fast_limits),
            shared: (shared_base, shared_limits),
        } = windows;
        JitRun {
            fast_base,
            fast_limits,
            shared_base,
            shared_limits,
            remaining: fuel as i64,
            cancel: cancel.unwrap_or(&NEVER_CANCELLED),
            frames_ready: 1,
            status: STATUS_OK,
            in_regs: [0; 5],
            ret_regs: [0; 5],
            slow_args: [0; 6],
            result: 0,
            blind_key: code.blind_key(),
            walk_ready: 0,
            values_len: 0,
            depth_now: 0,
            stack_top,
            regions: parts.regions,
            state: parts.state,
            deferred: parts.deferred,
            prog,
            code,
            budget,
            bank: if total == UNLIMITED {
                UNLIMITED
            } else {
                total - fuel
            },
            depth_synced: 0,
            packet_addr,
            packet_len,
            ending: None,
            values: [const { MaybeUninit::uninit() }; VALUE_LOG],
        }
    }

    /// How the run ended besides `r0`, once the entry function returned: `None` when
    /// it returned normally.
    #[inline(always)]
    pub(crate) fn ending(&mut self) -> Option<Ending> {
        if self.status == STATUS_OK {
            None
        } else {
            self.ending.take()
        }
    }

    /// Builds the regions and the state of a run that started without them
    /// ([`Deferred`]), as `with_run` would have at its start: its stack (whose frame 0
    /// was zeroed then, and which the code may have written since, or for a program
    /// that never names `r10`, zeroed now), its memory, no global data. Every shim does
    /// this first ([`guarded_with`]), so that the others find them built.
    #[cold]
    #[inline(never)]
    fn build_parts(&mut self) -> Result<(), FaultKind> {
        // SAFETY: `deferred` is the runner's, alive and otherwise untouched until the
        // entry function returns (`JitRun::new`); the parts are built once (`regions`
        // is null only until then).
        let d = unsafe { &mut *self.deferred };
        // SAFETY: the program, the options and the memory are the runner's, borrowed
        // for the whole run. The `'static`s are lies confined to the run: the regions
        // and the state built from them are dropped with the setup, before the runner
        // returns, as `with_run` drops its own.
        let (prog, opts, mem) = unsafe {
            (
                &*d.prog,
                &*d.opts,
                std::slice::from_raw_parts_mut(d.mem, d.len),
            )
        };
        let built = d.built.write(Built {
            ctx: bpfvm_runtime::Context::Memory(mem),
            ctx_bytes: [0; 24],
            regions: Regions::new(),
            state: RunState::new(prog, opts.cpu, opts.environment()),
        });
        d.is_built = true;
        // SAFETY: as above: the stack is the deferred setup's, which outlives the
        // regions; the context and its bytes are beside the regions in `built`, which
        // is neither moved nor dropped before them (`Deferred`'s drop).
        let (stack, ctx, ctx_bytes) = unsafe {
            (
                &mut *std::ptr::addr_of_mut!(d.stack),
                &mut *std::ptr::addr_of_mut!(built.ctx),
                &mut *std::ptr::addr_of_mut!(built.ctx_bytes),
            )
        };
        let (regions, state) = (&mut built.regions, &mut built.state);
        let added = if d.stack_zeroed {
            // SAFETY: the runner zeroed frame 0 with `zero_outermost` before the run
            // (`Deferred::zero_stack`).
            unsafe { regions.add_zeroed_stack(stack) }
        } else {
            // The program never names `r10`: nothing has touched the stack (the code's
            // stack test is left out: `translate`), and it is zeroed now.
            regions.add_stack(stack)
        };
        let result = added.map_err(FaultKind::from).and_then(|_| {
            bpfvm_runtime::set_up_after_stack(state, regions, prog, ctx, ctx_bytes).map(drop)
        });
        self.regions = std::ptr::from_mut(regions);
        self.state = std::ptr::from_mut(state);
        // The windows the run started with are the ones these regions give.
        debug_assert_eq!(
            (self.fast_base, self.fast_limits),
            fast_window(regions.hot_plain())
        );
        result
    }

    fn regions(&mut self) -> &mut Regions<'static> {
        // SAFETY: `regions` outlives the run (`JitRun::new`), and while generated code or a
        // shim runs nothing else holds a reference to it: the runner only touches it again
        // after the entry function returned. The `'static` is a lie confined to this
        // module: no reference handed out here escapes a shim call.
        unsafe { &mut *self.regions }
    }

    /// The run state and the regions at once (helpers need both).
    fn parts(&mut self) -> (&mut RunState<'static>, &mut Regions<'static>) {
        // SAFETY: as in `regions`; `state` and `regions` are distinct objects.
        unsafe { (&mut *self.state, &mut *self.regions) }
    }

    fn prog(&self) -> &LoadedProgram {
        // SAFETY: the program is the run's root (borrowed by the runner for the whole run)
        // or a tail-called one kept alive by the run state until the run ends.
        unsafe { &*self.prog }
    }

    fn code(&self) -> &CompiledProgram {
        // SAFETY: the code belongs to `prog` (its engine data) or is kept alive by the
        // shim that entered it for as long as it runs.
        unsafe { &*self.code }
    }

    /// Adds the values the code logged to the regions, in the order it found them, as
    /// `lookup_in_run` adds what a lookup finds ([`JitRun::values`]).
    #[cold]
    #[inline(never)]
    fn take_values(&mut self) {
        let len = (self.values_len as usize).min(VALUE_LOG);
        self.values_len = 0;
        for i in 0..len {
            // SAFETY: the code wrote entries `0..values_len` before counting them.
            let [addr, desc] = unsafe { self.values[i].assume_init() };
            let size = desc as u32 as usize;
            let writable = desc & (1 << 32) != 0;
            // SAFETY: the code found `addr` in a chain of one of the running program's
            // hash maps, walked after this run pinned the epoch (`walk_ready`), and the
            // length and writability are the map's, as its `lookup_value` would give
            // them: what `lookup_in_run` relies on holds (the guard outlives the regions,
            // the map the run, and map memory is accessed only atomically).
            unsafe {
                self.regions()
                    .add_shared(RegionKind::MapValue, addr as *mut u8, size, writable)
            };
        }
    }

    /// Adds the logged values before the runtime looks at the regions.
    #[inline(always)]
    fn sync_values(&mut self) {
        if self.values_len != 0 {
            self.take_values();
        }
    }

    /// Copies the last plain region hit into the fast-path window.
    pub(crate) fn refresh_fast(&mut self) {
        // The last plain region hit: a map value in between does not evict the packet or
        // the memory the program walks.
        (self.fast_base, self.fast_limits) = fast_window(self.regions().hot_plain());
        self.refresh_shared();
    }

    /// The shared half of [`JitRun::refresh_fast`], alone: after a call that can only
    /// have changed the last region hit (a direct map lookup adds the value it found),
    /// not the last plain one.
    fn refresh_shared(&mut self) {
        (self.shared_base, self.shared_limits) = shared_window(self.regions().hot());
    }

    /// Records a fault at `pc` of the current program; returns the 0 shims return.
    fn fault(&mut self, pc: u64, kind: FaultKind) -> u64 {
        let slots = self.prog().program().slots();
        let fault = Fault::at(slots, pc as usize, kind);
        self.unwind(Ending::Fault(fault))
    }

    fn unwind(&mut self, ending: Ending) -> u64 {
        self.ending = Some(ending);
        self.status = STATUS_UNWIND;
        0
    }

    fn cancelled(&self) -> bool {
        // SAFETY: `cancel` is the run's token's flag or the static, both alive for the run.
        unsafe { &*self.cancel }.load(Ordering::Relaxed)
    }

    /// Makes frames `0..=depth` reachable; returns frame `depth`'s frame pointer.
    fn enter(&mut self, depth: u64) -> Result<u64, FaultKind> {
        let fp = self.regions().set_stack_depth(depth as usize)?;
        self.depth_synced = depth;
        self.frames_ready = self.frames_ready.max(depth + 1);
        self.refresh_fast();
        Ok(fp)
    }

    /// Sets the regions' stack to the calling function's depth before the runtime looks
    /// at memory (generated code returns from calls without telling the runtime).
    fn sync(&mut self, depth: u64) {
        if depth != self.depth_synced && depth < MAX_CALL_FRAMES as u64 {
            let _ = self.regions().set_stack_depth(depth as usize);
            self.depth_synced = depth;
        }
    }

    /// Calls local function `func` at `depth + 1` as the interpreter's `call_local` does
    /// (depth check, frame, cancel poll), then returns to `depth`. `in_regs` must hold the
    /// caller's `r0`, `r6`–`r9`.
    fn call_local(&mut self, func: JitFn, args: [u64; 5], depth: u64, pc: u64) -> u64 {
        if depth + 1 >= MAX_CALL_FRAMES as u64 {
            return self.fault(pc, FaultKind::CallDepthExceeded);
        }
        let fp = match self.enter(depth + 1) {
            Ok(fp) => fp,
            Err(kind) => return self.fault(pc, kind),
        };
        if self.cancelled() {
            return self.fault(pc, FaultKind::Cancelled);
        }
        let [a1, a2, a3, a4, a5] = args;
        // SAFETY: `func` is a finalized function of the current program's code, which is
        // alive (see `code`); its signature is `JitFn`; `self` is the run it expects.
        let r0 = unsafe { func(self, a1, a2, a3, a4, a5, fp, depth + 1) };
        self.sync_values();
        if self.status != STATUS_OK {
            return 0;
        }
        if let Err(kind) = self.enter(depth) {
            return self.fault(pc, kind);
        }
        r0
    }
}

/// Where a run's regions and state are: built by `with_run`, or deferred.
pub(crate) struct Parts {
    pub regions: *mut Regions<'static>,
    pub state: *mut RunState<'static>,
    pub deferred: *mut Deferred,
}

impl Parts {
    /// The parts `with_run` built.
    pub(crate) fn built<'a>(regions: &mut Regions<'a>, state: &mut RunState<'a>) -> Parts {
        Parts {
            regions: std::ptr::from_mut(regions).cast(),
            state: std::ptr::from_mut(state).cast(),
            deferred: std::ptr::null_mut(),
        }
    }
}

/// The windows a run starts with: base and limits of the fast-path and shared windows.
pub(crate) struct Windows {
    pub fast: (u64, [u64; 8]),
    pub shared: (u64, [u64; 8]),
}

impl Windows {
    /// The windows over the regions as set up.
    #[inline(always)]
    pub(crate) fn of(regions: &Regions<'_>) -> Windows {
        Windows {
            fast: fast_window(regions.hot_plain()),
            shared: shared_window(regions.hot()),
        }
    }
}

/// The setup of a run whose context is plain memory and whose program has no global
/// data, deferred until the code first calls the runtime (most runs of such programs
/// never do): until then the code needs only its stack, whose frame 0 is zeroed before
/// it starts if the program names `r10` (otherwise when the regions are built: no code
/// reaches the stack before), and the window over the memory, the first plain region
/// `with_run` would add (so its first window too). The runner keeps it on its stack;
/// the first shim call builds the regions and the state in it
/// ([`JitRun::build_parts`]), as `with_run` would have at the start, and dropping it
/// ends them as `with_run` does.
pub(crate) struct Deferred {
    prog: *const LoadedProgram,
    opts: *const bpfvm_runtime::RunOptions,
    /// The memory: the context's bytes.
    mem: *mut u8,
    len: usize,
    /// Whether `built` was written.
    is_built: bool,
    /// Whether frame 0 was zeroed before the run ([`Deferred::zero_stack`]).
    stack_zeroed: bool,
    stack: bpfvm_runtime::StackMemory,
    /// Written once, by the first shim call. (Nothing of it is written before: a
    /// compiler may turn an uninitialized field next to one it zeroes into a larger
    /// `memset`, as it did here with the context bytes and the regions.)
    built: MaybeUninit<Built>,
}

/// The parts a deferred setup builds (`JitRun::build_parts`).
struct Built {
    ctx: bpfvm_runtime::Context<'static>,
    ctx_bytes: [u8; 24],
    regions: Regions<'static>,
    state: RunState<'static>,
}

impl Deferred {
    /// The deferred setup of a run of `prog` over `mem` with `opts`; the runner zeroes
    /// frame 0 once the setup is in its place ([`Deferred::zero_stack`]).
    #[inline(always)]
    pub(crate) fn new(
        prog: &LoadedProgram,
        opts: &bpfvm_runtime::RunOptions,
        mem: &mut [u8],
    ) -> Deferred {
        Deferred {
            prog,
            opts,
            mem: mem.as_mut_ptr(),
            len: mem.len(),
            is_built: false,
            stack_zeroed: false,
            stack: bpfvm_runtime::StackMemory::new(),
            built: MaybeUninit::uninit(),
        }
    }

    /// Zeroes frame 0 of the stack, as `with_run` does at the start, when the code may
    /// reach it directly (`names_fp`: the program names `r10`); returns `r10` of frame 0.
    /// Otherwise the frame is zeroed when the regions are built, before anything can
    /// read it. (The setup must not move afterwards: the code and the regions point into
    /// it.)
    #[inline(always)]
    pub(crate) fn zero_stack(&mut self, names_fp: bool) -> u64 {
        self.stack_zeroed = names_fp;
        if names_fp {
            self.stack.zero_outermost()
        } else {
            self.stack.outermost_fp()
        }
    }

    /// [`Drop::drop`]'s work for a run that built its parts, out of line, so that the
    /// drop of one that did not (most) is a test at the end of the runner.
    #[cold]
    #[inline(never)]
    fn end_built(&mut self) {
        self.is_built = false;
        // SAFETY: `is_built` said `built` was written; it is read out once, here.
        let Built { regions, state, .. } = unsafe { self.built.assume_init_read() };
        bpfvm_runtime::end_run(state, regions, None);
    }

    /// The windows of the run's start: the memory is the first plain region (when not
    /// empty), and nothing shared.
    #[inline(always)]
    pub(crate) fn windows(&self) -> Windows {
        let addr = if self.len == 0 {
            0
        } else {
            self.mem.addr() as u64
        };
        let len = self.len as u64;
        Windows {
            fast: (addr, limits(len, len)),
            shared: (0, [0; 8]),
        }
    }

    /// The parts of a run over this setup: not built yet.
    pub(crate) fn parts(&mut self) -> Parts {
        Parts {
            regions: std::ptr::null_mut(),
            state: std::ptr::null_mut(),
            deferred: self,
        }
    }
}

impl Drop for Deferred {
    /// After the run: ends the regions and the state if a shim built them, as `with_run`
    /// does (plain memory has no packet bounds to write back).
    #[inline(always)]
    fn drop(&mut self) {
        if self.is_built {
            self.end_built();
        }
    }
}

/// The fast-path window over `hot` (the last plain region hit): its base and limits.
/// The stack is not a window: generated code tests it against its own depth, while the
/// regions' copy may be longer (set for a callee that has returned).
#[inline(always)]
fn fast_window(hot: MemoryRegion) -> (u64, [u64; 8]) {
    let load_len = if hot.shared() || hot.kind() == RegionKind::Stack {
        0
    } else {
        hot.len()
    };
    let store_len = if hot.writable() { load_len } else { 0 };
    (hot.addr(), limits(load_len, store_len))
}

/// The shared window over `last` (the last region hit) when it is shared, else empty.
#[inline(always)]
fn shared_window(last: MemoryRegion) -> (u64, [u64; 8]) {
    if last.shared() {
        let store_len = if last.writable() { last.len() } else { 0 };
        (last.addr(), limits(last.len(), store_len))
    } else {
        (0, [0; 8])
    }
}

/// Window limits for loads and stores of 1, 2, 4 and 8 bytes: one past the last offset
/// where such an access fits (`len - size + 1`), 0 when none does. Always inline: an
/// array returned from a call is stored as eight words and then copied into the run
/// record with wider loads, which cannot be forwarded from those stores (a stall of
/// about a tenth of a run of an empty program).
#[inline(always)]
pub(crate) fn limits(load_len: u64, store_len: u64) -> [u64; 8] {
    let mut out = [0; 8];
    for (i, size) in [1u64, 2, 4, 8].into_iter().enumerate() {
        out[i] = (load_len + 1).saturating_sub(size);
        out[i + 4] = (store_len + 1).saturating_sub(size);
    }
    out
}

/// Runs a shim body, turning a host panic (a host helper's) into an unwind that the runner
/// resumes after cleaning up: a panic must not cross generated code.
fn guarded(run: *mut JitRun, body: impl FnOnce(&mut JitRun) -> u64) -> u64 {
    guarded_with(run, |run| (body(run), Touched::Any))
}

/// Which of the windows' sources a shim body may have changed.
#[derive(Clone, Copy)]
enum Touched {
    /// Anything: both windows are computed again.
    Any,
    /// Only the last region hit (a lookup added the value it found).
    Shared,
    /// No region (a map update or delete).
    Nothing,
}

/// [`guarded`] for a body that says what it changed, so that only that window is
/// computed again (each is eight limits, a sizeable part of a direct map call).
#[inline(always)]
fn guarded_with(run: *mut JitRun, body: impl FnOnce(&mut JitRun) -> (u64, Touched)) -> u64 {
    // SAFETY: generated code passes the `JitRun` its runner created, alive and not
    // otherwise borrowed during the call.
    let run = unsafe { &mut *run };
    // First the regions, if the run started without them, and the values the code
    // logged: the body may look at the regions.
    let call = || {
        if run.regions.is_null()
            && let Err(kind) = run.build_parts()
        {
            // As `with_run`'s setup failing (it cannot for a deferred setup: a stack
            // and one region in a table of 16).
            return (run.fault(0, kind), Touched::Nothing);
        }
        run.sync_values();
        body(&mut *run)
    };
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok((v, touched)) => {
            if run.status != STATUS_UNWIND {
                match touched {
                    Touched::Any => run.refresh_fast(),
                    Touched::Shared => run.refresh_shared(),
                    Touched::Nothing => {}
                }
            }
            v
        }
        Err(payload) => run.unwind(Ending::Panic(payload)),
    }
}

/// Slow-path load of `size` bytes at `addr`, zero-extended.
pub(crate) extern "C" fn jit_load(
    run: *mut JitRun,
    addr: u64,
    size: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        run.sync(depth);
        let r = match size {
            1 => run.regions().load_zx::<u8>(addr),
            2 => run.regions().load_zx::<u16>(addr),
            4 => run.regions().load_zx::<u32>(addr),
            _ => run.regions().load_zx::<u64>(addr),
        };
        r.unwrap_or_else(|kind| run.fault(pc, kind))
    })
}

/// Slow-path store of the low `size` bytes of `value` at `addr`.
pub(crate) extern "C" fn jit_store(
    run: *mut JitRun,
    addr: u64,
    size: u64,
    value: u64,
    depth: u64,
    pc: u64,
) {
    guarded(run, |run| {
        run.sync(depth);
        let r = match size {
            1 => run.regions().store::<u8>(addr, value as u8),
            2 => run.regions().store::<u16>(addr, value as u16),
            4 => run.regions().store::<u32>(addr, value as u32),
            _ => run.regions().store::<u64>(addr, value),
        };
        r.map_or_else(|kind| run.fault(pc, kind), |()| 0)
    });
}

/// Slow-path atomic: `op` is the instruction's `imm` (`AtomicOp::imm`) plus `0x1000` for
/// 64 bits; returns the old value (the code writes it back).
pub(crate) extern "C" fn jit_atomic(
    run: *mut JitRun,
    addr: u64,
    op: u64,
    value: u64,
    expected: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        run.sync(depth);
        let Some(aop) = AtomicOp::from_imm((op & 0xfff) as i32) else {
            return run.fault(pc, FaultKind::PcOutOfRange);
        };
        let r = if op & 0x1000 != 0 {
            run.regions().atomic64(addr, aop, value, expected)
        } else {
            run.regions()
                .atomic32(addr, aop, value as u32, expected as u32)
                .map(u64::from)
        };
        r.unwrap_or_else(|kind| run.fault(pc, kind))
    })
}

/// Slow-path load-acquire.
pub(crate) extern "C" fn jit_load_acquire(
    run: *mut JitRun,
    addr: u64,
    size: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        run.sync(depth);
        let r = run.regions().load_acquire(addr, size as usize);
        r.unwrap_or_else(|kind| run.fault(pc, kind))
    })
}

/// Slow-path store-release.
pub(crate) extern "C" fn jit_store_release(
    run: *mut JitRun,
    addr: u64,
    size: u64,
    value: u64,
    depth: u64,
    pc: u64,
) {
    guarded(run, |run| {
        run.sync(depth);
        let r = run.regions().store_release(addr, size as usize, value);
        r.map_or_else(|kind| run.fault(pc, kind), |()| 0)
    });
}

/// Legacy packet load (`ldabs`/`ldind`) of `size` bytes at packet offset `offset` (an
/// `i32`), big-endian; out of bounds ends the program returning 0.
pub(crate) extern "C" fn jit_ld_packet(run: *mut JitRun, offset: u64, size: u64, pc: u64) -> u64 {
    guarded(run, |run| {
        let offset = offset as i32;
        let in_bounds = offset >= 0 && offset as u64 + size <= run.packet_len;
        if !in_bounds {
            return run.unwind(Ending::Exit(0));
        }
        let addr = run.packet_addr + offset as u64;
        let r = match size {
            1 => run.regions().load::<u8>(addr).map(u64::from),
            2 => run
                .regions()
                .load::<u16>(addr)
                .map(|v| u64::from(u16::from_be(v))),
            _ => run
                .regions()
                .load::<u32>(addr)
                .map(|v| u64::from(u32::from_be(v))),
        };
        r.unwrap_or_else(|kind| run.fault(pc, kind))
    })
}

/// A local call from a function at `caller_depth` to a frame not yet ready (the code
/// checked the depth): makes frames `0..=caller_depth + 1` reachable (zeroing those
/// reached for the first time) and returns the callee frame's pointer.
pub(crate) extern "C" fn jit_enter(run: *mut JitRun, caller_depth: u64, pc: u64) -> u64 {
    guarded(run, |run| {
        run.enter(caller_depth + 1)
            .unwrap_or_else(|kind| run.fault(pc, kind))
    })
}

/// The fuel ran out at a back-edge or call (`pc`): a cancellation is a fault, otherwise
/// the fuel is refilled from the bank, and a budget spent is a fault.
pub(crate) extern "C" fn jit_poll(run: *mut JitRun, pc: u64) {
    guarded(run, |run| {
        if run.cancelled() {
            return run.fault(pc, FaultKind::Cancelled);
        }
        (run.remaining, run.bank) = refill(run.remaining, run.bank);
        if run.remaining < 0 {
            return run.fault(pc, FaultKind::BudgetExhausted { budget: run.budget });
        }
        0
    });
}

/// The fuel and bank after a refill: a chunk, or the deficit if a block longer than a
/// chunk left the fuel further below zero, as far as the bank allows. Fuel still below zero
/// afterwards means the budget is spent.
pub(crate) fn refill(fuel: i64, bank: u64) -> (i64, u64) {
    let deficit = fuel.min(0).unsigned_abs();
    let want = FUEL_CHUNK.max(deficit);
    let (take, bank) = if bank == UNLIMITED {
        (want, bank)
    } else {
        let take = bank.min(want);
        (take, bank - take)
    };
    let fuel = fuel.saturating_add(i64::try_from(take).unwrap_or(i64::MAX));
    (fuel, bank)
}

/// Records the fault the code found: [`RAISE_DEPTH`] or [`RAISE_PC`].
pub(crate) extern "C" fn jit_raise(run: *mut JitRun, why: u64, pc: u64) {
    guarded(run, |run| {
        let kind = match why {
            RAISE_DEPTH => FaultKind::CallDepthExceeded,
            _ => FaultKind::PcOutOfRange,
        };
        run.fault(pc, kind)
    });
}

/// `call` of helper `id`.
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn jit_helper(
    run: *mut JitRun,
    id: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        call_by_id(
            run,
            HelperRegistry::get,
            id,
            [a1, a2, a3, a4, a5],
            depth,
            pc,
        )
    })
}

/// `call` of kfunc `id` (a BTF id the load resolved).
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn jit_kfunc(
    run: *mut JitRun,
    id: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        call_by_id(
            run,
            HelperRegistry::kfunc,
            id,
            [a1, a2, a3, a4, a5],
            depth,
            pc,
        )
    })
}

/// Looks `id` up in the current program's registry (helpers or kfuncs) and calls it; an
/// id the registry lacks is the interpreter's `UnknownHelper` fault.
fn call_by_id(
    run: &mut JitRun,
    lookup: fn(&HelperRegistry, i64) -> Option<&Helper>,
    id: u64,
    args: [u64; 5],
    depth: u64,
    pc: u64,
) -> u64 {
    let id = id as i64;
    let prog = run.prog;
    // SAFETY: see `JitRun::prog`; a separate borrow so the helper can borrow the run.
    let Some(helper) = lookup(unsafe { &*prog }.helpers(), id) else {
        return run.fault(pc, FaultKind::UnknownHelper { id });
    };
    call_helper(run, helper, id, args, depth, pc)
}

/// The shims of the map helpers made directly (`map_calls`): `map` is the index of the
/// map `r1` holds in the running program's map list; the key (`r2`) and, for an update,
/// the value (`r3`) are where the translator found them, in the current frame.
macro_rules! direct_map_shims {
    ($($(#[$doc:meta])* $name:ident => $helper:expr;)*) => {$(
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) extern "C" fn $name(
            run: *mut JitRun,
            map: u64,
            r1: u64,
            r2: u64,
            r3: u64,
            r4: u64,
            r5: u64,
            depth: u64,
            pc: u64,
        ) -> u64 {
            let args = [r1, r2, r3, r4, r5];
            guarded_with(run, |run| direct_map_call(run, $helper, map, args, depth, pc))
        }
    )*};
}

direct_map_shims! {
    /// `bpf_map_lookup_elem` made directly.
    jit_map_lookup => MapHelper::Lookup;
    /// `bpf_map_update_elem` made directly (the flags in `r4`).
    jit_map_update => MapHelper::Update;
    /// `bpf_map_delete_elem` made directly.
    jit_map_delete => MapHelper::Delete;
}

/// `bpf_map_lookup_elem` made directly on a map whose type the translator knew: `map` is
/// the map itself (a hash-family map or an array of the running program, whose `Arc` the
/// program holds), `key` the key's address, which the translator computed from the
/// frame pointer (`DirectCall::key`: the whole key inside the current frame). What the
/// helper does, through the same function ([`lookup_in_run`]), with the map's own lookup
/// inline instead of behind the `Map` vtable, and nothing else: no registry, no search
/// for the map or the key's region, no fuel or registers through the run record (a
/// lookup runs no program code). Only the shared window can change (the value found
/// becomes the last region hit), and the code sets it itself when the lookup found a
/// value (its length and writability are the map's, known when it was compiled): the
/// shim leaves both windows alone.
pub(crate) extern "C" fn jit_lookup_in<M: bpfvm_runtime::Map>(
    run: *mut JitRun,
    map: *const M,
    key: *const u8,
) -> u64 {
    guarded_with(run, |run| {
        // SAFETY: the translator put the address of one of the running program's maps
        // here, and the program keeps its maps alive for as long as its code exists.
        let map = unsafe { &*map };
        let len = map.spec().key_size as usize;
        // SAFETY: `key..key + len` lies in the current frame (`map_calls` proved it from
        // the straight-line code, and the translator added the offset to the frame
        // pointer itself). The current frame is always reachable and initialized (frames
        // are zeroed before code first uses them), only this run writes it, and nothing
        // writes it while this call runs; the slice ends with the call.
        let key = unsafe { std::slice::from_raw_parts(key, len) };
        let (state, regions) = run.parts();
        // SAFETY: `map` is one of the running program's maps, alive until the run ends.
        let r0 = unsafe { lookup_in_run(state, regions, map, key) };
        // `lookup_in_run` took the run's guard (`RunState::guard`), which stays pinned
        // until the run ends.
        run.walk_ready = 1;
        (r0, Touched::Nothing)
    })
}

/// Called by the code when its log of values is full ([`JitRun::values`]): takes them
/// in, as every shim does on entry, and does nothing else.
pub(crate) extern "C" fn jit_take_values(run: *mut JitRun) -> u64 {
    guarded_with(run, |_| (0, Touched::Nothing))
}

/// A map helper called directly: what the helper does, without finding the helper, the
/// map by its handle or the key's (and value's) region, through the same function the
/// helper ends in. Should the map index or an argument in the frame not be what the
/// translator found, the helper is called as usual. Inlined into each shim, where
/// `helper` is a constant. Says what it changed of the regions: made directly, a lookup
/// adds the value (the last region hit), an update or delete adds nothing.
#[inline(always)]
fn direct_map_call(
    run: &mut JitRun,
    helper: MapHelper,
    map: u64,
    args: [u64; 5],
    depth: u64,
    pc: u64,
) -> (u64, Touched) {
    let prog = run.prog;
    // SAFETY: see `JitRun::prog`; a separate borrow so the map can be used while the run
    // is. Code runs only as its own program, so this is the list the translator took the
    // index from.
    let map = usize::try_from(map)
        .ok()
        .and_then(|i| unsafe { &*prog }.maps().get(i));
    let found = map.and_then(|map| {
        let spec = map.spec();
        let (key_size, value_size) = (spec.key_size as usize, spec.value_size as usize);
        let key = run.regions().stack_ptr(args[1], key_size)?;
        let value = match helper {
            MapHelper::Update => run.regions().stack_ptr(args[2], value_size)?,
            MapHelper::Lookup | MapHelper::Delete => std::ptr::null(),
        };
        Some((map, key, key_size, value, value_size))
    });
    let Some((map, key, key_size, value, value_size)) = found else {
        let id = i64::from(helper.id()) as u64;
        let r0 = call_by_id(run, HelperRegistry::get, id, args, depth, pc);
        return (r0, Touched::Any);
    };
    // SAFETY: `stack_ptr` checked these bytes are initialized stack memory, which only
    // this run writes; the slices end with this call, before the program runs on, and the
    // map operations below touch the map and the region table, never the stack.
    let key = unsafe { std::slice::from_raw_parts(key, key_size) };
    run.ret_regs = [0; 5];
    let (state, regions) = run.parts();
    match helper {
        MapHelper::Lookup => {
            // SAFETY: `map` is one of the running program's maps, alive until the run
            // ends.
            let r0 = unsafe { lookup_in_run(state, regions, &**map, key) };
            (r0, Touched::Shared)
        }
        MapHelper::Update => {
            // SAFETY: as for the key.
            let value = unsafe { std::slice::from_raw_parts(value, value_size) };
            let r0 = update_in_run(state, &**map, key, value, args[3]);
            (r0, Touched::Nothing)
        }
        MapHelper::Delete => (delete_in_run(&**map, key), Touched::Nothing),
    }
}

/// `callx`: a code address of this program calls that local function, anything else
/// the helper with that id.
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn jit_callx(
    run: *mut JitRun,
    value: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    guarded(run, |run| {
        let args = [a1, a2, a3, a4, a5];
        if let Some(target) = run.prog().pc_of_code_address(value) {
            let Some(func) = run.code().function_at(target) else {
                return run.fault(
                    pc,
                    FaultKind::HelperFailed {
                        id: 0,
                        reason: "callx to an instruction that starts no function (the JIT \
                                 compiles calls only to function entries)",
                    },
                );
            };
            return run.call_local(func, args, depth, pc);
        }
        call_by_id(run, HelperRegistry::get, value, args, depth, pc)
    })
}

/// Calls a helper, then does what it asked of the engine: a tail call, or callbacks.
fn call_helper(
    run: &mut JitRun,
    helper: &Helper,
    id: i64,
    args: [u64; 5],
    depth: u64,
    pc: u64,
) -> u64 {
    run.sync(depth);
    let (state, regions) = run.parts();
    let mut hctx = HelperContext {
        regions,
        run: state,
        id: id as u32,
    };
    let r0 = match helper.call(&mut hctx, args) {
        Ok(v) => v,
        Err(kind) => return run.fault(pc, kind),
    };
    run.ret_regs = [0; 5];
    let (state, _) = run.parts();
    if let Some(next) = state.tail_call.take() {
        return tail_call(run, next, args[0], depth, pc);
    }
    if let Some(request) = state.callback.take() {
        return callbacks(run, request, r0, depth, pc);
    }
    r0
}

/// A tail call: `next` replaces the calling function in its frame, `r1` = `ctx` and every
/// other register 0; its `r0` is the caller's.
fn tail_call(run: &mut JitRun, next: Arc<LoadedProgram>, ctx: u64, depth: u64, pc: u64) -> u64 {
    // The target runs blinded when the caller does.
    let blind = run.code().blind_key() != 0;
    with_code(&next, blind, |code| match code {
        Ok(code) => tail_call_into(run, &next, code, ctx, depth, pc),
        Err(_) => run.fault(
            pc,
            FaultKind::HelperFailed {
                id: 12,
                reason: "the JIT could not compile the tail-called program",
            },
        ),
    })
}

/// `tail_call` once the target's code is at hand.
fn tail_call_into(
    run: &mut JitRun,
    next: &Arc<LoadedProgram>,
    code: &CompiledProgram,
    ctx: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    let fp = match run.enter(depth) {
        Ok(fp) => fp,
        Err(kind) => return run.fault(pc, kind),
    };
    let (state, regions) = run.parts();
    let caller_index = state.current();
    if let Err(kind) = state.enter_tail_call(Arc::clone(next), regions) {
        return run.fault(pc, kind);
    }
    let saved = (run.prog, run.code, run.blind_key);
    run.prog = Arc::as_ptr(next);
    run.code = code;
    run.blind_key = code.blind_key();
    run.in_regs = [0; 5];
    let entry = code.entry();
    // SAFETY: `entry` is the finalized entry function of `code`, borrowed from the engine
    // data that `with_code` (in `tail_call`) holds until this function has returned;
    // `next` is kept alive by the caller and the run state; the signature is `JitFn`.
    let r0 = unsafe { entry(run, ctx, 0, 0, 0, 0, fp, depth) };
    run.sync_values();
    // The tail-called program leaves no `r1`–`r5` to the caller (see `liveness`).
    run.ret_regs = [0; 5];
    (run.prog, run.code, run.blind_key) = saved;
    let (state, _) = run.parts();
    state.set_current(caller_index);
    if run.status == STATUS_OK {
        run.status = STATUS_TAIL_RETURN;
    }
    r0
}

/// Runs the callbacks a `bpf_loop` or `bpf_for_each_map_elem` asked for, as the
/// interpreter does: until one returns non-zero or the iterations run out; the helper's
/// result is then the number of calls made.
fn callbacks(
    run: &mut JitRun,
    request: CallbackRequest,
    helper_r0: u64,
    depth: u64,
    pc: u64,
) -> u64 {
    let CallbackRequest {
        pc: callback,
        iterations,
        ctx,
        for_each,
    } = request;
    let next_args = |run: &mut JitRun, index: usize, done: u64| -> Option<(usize, [u64; 4])> {
        match for_each {
            None => (done < iterations).then_some((index, [done, ctx, 0, 0])),
            Some(walk) => {
                let (state, regions) = run.parts();
                state
                    .for_each_args(walk, index, regions)
                    .map(|(i, [map, key, value])| (i, [map, key, value, ctx]))
            }
        }
    };
    let Some(mut current) = next_args(run, 0, 0) else {
        return helper_r0;
    };
    let Some(func) = run.code().function_at(callback) else {
        return run.fault(
            pc,
            FaultKind::HelperFailed {
                id: 0,
                reason: "the callback is not a function entry of this program",
            },
        );
    };
    // The first call sees the helper's r0 and the caller's r6–r9 (stored by the code
    // before the helper call); calls nested in a callback overwrite `in_regs`.
    let caller = run.in_regs;
    let mut r0_before = helper_r0;
    let mut done = 0u64;
    let mut r5 = 0;
    loop {
        let (index, [a1, a2, a3, a4]) = current;
        done += 1;
        run.in_regs = caller;
        run.in_regs[0] = r0_before;
        let r0 = run.call_local(func, [a1, a2, a3, a4, r5], depth, pc);
        if run.status != STATUS_OK {
            return 0;
        }
        if r0 != 0 || done >= iterations {
            break;
        }
        match next_args(run, index + 1, done) {
            Some(next) => current = next,
            None => break,
        }
        // The next call sees the registers as this one left them: r0 (zero, or the loop
        // would have stopped), the caller's r6–r9, r5 from the callee.
        r0_before = r0;
        r5 = run.ret_regs[4];
    }
    done
}
