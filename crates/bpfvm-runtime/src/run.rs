//! The state of one run that helpers share with the engine: the program and its maps, the
//! epoch guard, the CPU slot, the environment, and what helpers leave for the engine or
//! for cleanup (a requested tail call, held spin locks, pending ring-buffer records).

use std::cell::OnceCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::env::Environment;
use crate::maps::{Map, RunGuard};
use crate::{FaultKind, LoadedProgram, RegionKind, Regions};

/// The kernel's `MAX_TAIL_CALL_CNT`: a run may tail-call at most 33 times.
pub const MAX_TAIL_CALLS: u32 = 33;

/// What a run may still need to clean up after its program stops, whatever way it stops.
pub trait Pending: Send + Sync + fmt::Debug {
    /// Undoes the pending operation (a ring-buffer record is discarded).
    fn abandon(&self, addr: u64);

    /// The owner as `Any`, so the helper that completes the operation (`bpf_ringbuf_submit`)
    /// can reach its concrete type; `None` when it has no such use.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// The state of one run, shared by the engine and the helpers it calls.
#[derive(Debug)]
pub struct RunState<'a> {
    root: &'a LoadedProgram,
    /// Programs entered by tail calls, kept alive for the run (program `i + 1`).
    tail_programs: Vec<Arc<LoadedProgram>>,
    /// Which program runs now: 0 the root, `i + 1` the `i`th tail-called one.
    current: usize,
    /// The epoch, pinned from the first time the run needs it ([`RunState::guard`]) to
    /// the end of the run: value memory found under it stays valid.
    guard: OnceCell<RunGuard>,
    /// The per-CPU slot of this run (what `bpf_get_smp_processor_id` returns).
    pub cpu: usize,
    /// Clocks, random numbers, the task, the trace sink.
    pub env: &'a dyn Environment,
    /// Maps reached during the run through map-in-map lookups, kept alive for it.
    acquired: Vec<Arc<dyn Map>>,
    /// Set by `bpf_tail_call`: the program to continue with. The engine takes it.
    pub tail_call: Option<Arc<LoadedProgram>>,
    /// Tail calls made so far.
    pub tail_calls: u32,
    /// The address of the `bpf_spin_lock` this run holds (the kernel allows one at a time).
    pub held_lock: Option<u64>,
    /// Reserved ring-buffer records not yet submitted or discarded.
    pub pending: Vec<(Arc<dyn Pending>, u64)>,
    /// A request from a callback-taking helper (`bpf_loop`) for the engine.
    pub callback: Option<CallbackRequest>,
    /// `bpf_for_each_map_elem` walks of this run (kept to the end: programs may hold
    /// pointers to their key buffers).
    walks: Vec<ForEachWalk>,
}

/// A callback-taking helper asks the engine to call a function of the program
/// repeatedly, until it returns non-zero or the iterations run out; the helper's result
/// is the number of calls made.
/// - `bpf_loop(nr_loops, callback, ctx, flags)`: `callback(i, ctx)` for `i` in
///   `0..nr_loops` (`for_each` is `None`).
/// - `bpf_for_each_map_elem(map, callback, ctx, flags)`: `callback(map, key, value, ctx)`
///   for each element (`for_each` names the walk; arguments from
///   [`RunState::for_each_args`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackRequest {
    /// The pc of the callback function.
    pub pc: usize,
    /// Iterations to make (elements to visit).
    pub iterations: u64,
    /// The callback's context argument.
    pub ctx: u64,
    /// The map walk, for `bpf_for_each_map_elem`.
    pub for_each: Option<usize>,
}

/// A `bpf_for_each_map_elem` walk: the map and the keys it had when the walk began.
#[derive(Debug)]
struct ForEachWalk {
    map: u64,
    keys: Vec<Vec<u8>>,
    /// Where the current key is put for the callback (kept for the whole run).
    key_buf: Box<[AtomicU8]>,
}

impl<'a> RunState<'a> {
    /// The state of a run of `program` on slot `cpu`.
    pub fn new(program: &'a LoadedProgram, cpu: usize, env: &'a dyn Environment) -> RunState<'a> {
        RunState {
            root: program,
            tail_programs: Vec::new(),
            current: 0,
            guard: OnceCell::new(),
            cpu,
            env,
            acquired: Vec::new(),
            tail_call: None,
            tail_calls: 0,
            held_lock: None,
            pending: Vec::new(),
            callback: None,
            walks: Vec::new(),
        }
    }

    /// The run's epoch guard, pinning this thread now if the run has not yet: whoever
    /// takes a map pointer for the run (a value looked up, a ring-buffer record) gets the
    /// guard here first, and it stays pinned until the state is dropped, after the run's
    /// regions. A run that takes none never pins: pinning is a fence, 5 to 8 ns of a JIT
    /// run of about 70.
    #[inline]
    pub fn guard(&self) -> &RunGuard {
        self.guard.get_or_init(RunGuard::pin)
    }

    /// Pins now if `prog` has global data, which goes into the run's regions next (its
    /// blocks are kept by the program's maps anyway; this keeps "every map pointer a run
    /// holds was taken under its guard" true without exceptions).
    #[inline]
    fn pin_for_globals(&self, prog: &LoadedProgram) {
        if prog.has_direct_values() {
            self.guard();
        }
    }

    /// Starts a map walk over `keys` of map `handle`; its id for [`CallbackRequest`].
    pub fn start_for_each(&mut self, handle: u64, keys: Vec<Vec<u8>>, key_size: usize) -> usize {
        self.walks.push(ForEachWalk {
            map: handle,
            keys,
            key_buf: (0..key_size.max(1)).map(|_| AtomicU8::new(0)).collect(),
        });
        self.walks.len() - 1
    }

    /// The callback arguments `(map, key, value)` for element `index` of walk `walk`, or
    /// of the next element still present (keys deleted since the walk began are
    /// skipped), with the index used; `None` when the walk is over.
    pub fn for_each_args(
        &self,
        walk: usize,
        mut index: usize,
        regions: &mut Regions<'a>,
    ) -> Option<(usize, [u64; 3])> {
        let w = self.walks.get(walk)?;
        let map = self.map(w.map)?;
        loop {
            let key = w.keys.get(index)?;
            if let Some(v) = map.lookup_value(key, self.cpu, self.guard()) {
                for (d, b) in w.key_buf.iter().zip(key) {
                    d.store(*b, Ordering::Relaxed);
                }
                let key_ptr = w.key_buf.as_ptr().cast::<u8>().cast_mut();
                // SAFETY: the key buffer is owned by this state, which lives longer than
                // the run's regions (the engine declares the state first), is never
                // reallocated, and is written only atomically. The value was found under
                // the run's guard (the maps' reclamation and access invariants, as in
                // helper `bpf_map_lookup_elem`).
                let (k, val) = unsafe {
                    let k = regions.add_shared(RegionKind::Host, key_ptr, key.len(), false);
                    let val = regions.add_shared(
                        RegionKind::MapValue,
                        v.as_ptr(),
                        v.len(),
                        v.is_writable(),
                    );
                    (k, val)
                };
                return Some((index, [w.map, k, val]));
            }
            index += 1;
        }
    }

    /// The program running now.
    pub fn program(&self) -> &LoadedProgram {
        self.current
            .checked_sub(1)
            .and_then(|i| self.tail_programs.get(i))
            .map_or(self.root, |p| p)
    }

    /// The index of the program running now (0: the first; see [`RunState::program_at`]).
    pub fn current(&self) -> usize {
        self.current
    }

    /// Program `index` of the run (0: the first, `i + 1`: the `i`th tail-called), shared.
    /// `None` for index 0 (the first is borrowed, not shared) or an unknown index.
    pub fn program_at(&self, index: usize) -> Option<Arc<LoadedProgram>> {
        self.tail_programs.get(index.checked_sub(1)?).cloned()
    }

    /// Makes program `index` the running one (engines, when returning into a frame of
    /// another program).
    pub fn set_current(&mut self, index: usize) {
        if index <= self.tail_programs.len() {
            self.current = index;
        }
    }

    /// Makes `next` the running program (the engine, on a tail call), keeps it alive for
    /// the rest of the run, adds its global data to `regions` (the run's: its own maps
    /// need not be the caller's), and returns its index. A full region table is the
    /// fault. Like [`RunState::for_each_args`], relies on the engine dropping the regions
    /// before this state (as [`with_run`] does).
    pub fn enter_tail_call(
        &mut self,
        next: Arc<LoadedProgram>,
        regions: &mut Regions<'_>,
    ) -> Result<usize, FaultKind> {
        self.pin_for_globals(&next);
        // SAFETY: `next` is kept in `tail_programs` until this state is dropped, after the
        // regions (the engines' order), so its maps outlive the table.
        unsafe { regions.add_direct_values_of(&next) }.map_err(FaultKind::from)?;
        self.tail_programs.push(next);
        self.current = self.tail_programs.len();
        Ok(self.current)
    }

    /// The map a program holds as `handle` (the value its `lddw` map reference loaded, or
    /// a map-in-map lookup returned).
    pub fn map(&self, handle: u64) -> Option<&dyn Map> {
        if let Some(m) = self.program().map_by_handle(handle) {
            return Some(m);
        }
        if let Some(m) = self.root.map_by_handle(handle) {
            return Some(m);
        }
        self.acquired
            .iter()
            .find(|m| map_handle(m) == handle)
            .map(|m| &**m)
    }

    /// The `Arc` of the map `handle`, for helpers that keep it beyond the call.
    pub fn map_arc(&self, handle: u64) -> Option<Arc<dyn Map>> {
        self.program()
            .maps()
            .iter()
            .chain(self.root.maps())
            .chain(&self.acquired)
            .find(|m| map_handle(m) == handle)
            .cloned()
    }

    /// Keeps `map` alive for the run and returns its handle (a map-in-map lookup).
    pub fn acquire(&mut self, map: Arc<dyn Map>) -> u64 {
        let handle = map_handle(&map);
        if self.map(handle).is_none() {
            self.acquired.push(map);
        }
        handle
    }

    /// Ends the run's obligations after the program stopped (normally or by a fault):
    /// pending ring-buffer records are discarded, a held spin lock is released.
    #[inline]
    pub fn cleanup(&mut self, regions: &mut Regions<'_>) {
        if self.pending.is_empty() && self.held_lock.is_none() {
            return; // the common case, without a call
        }
        self.cleanup_held(regions);
    }

    /// [`RunState::cleanup`] when there is something to clean up.
    fn cleanup_held(&mut self, regions: &mut Regions<'_>) {
        for (owner, addr) in self.pending.drain(..) {
            owner.abandon(addr);
            regions.remove_shared(addr);
        }
        if let Some(addr) = self.held_lock.take() {
            // Releasing is a store of 0 to the lock word; if the program's memory is gone
            // there is nothing to release.
            let _ = regions.store_release(addr, 4, 0);
        }
    }

    /// Drops the state, without the drop glue's calls when it owns nothing (most runs:
    /// no tail call, map walk, ring-buffer record or pinned epoch; about 90 instructions
    /// of a run of an empty program). The engines call it after dropping the regions.
    #[inline]
    pub fn finish(self) {
        // Destructured, so that a field added to the state has to be considered here.
        let RunState {
            root: _,
            tail_programs,
            current: _,
            guard,
            cpu: _,
            env: _,
            acquired,
            tail_call,
            tail_calls: _,
            held_lock: _,
            pending,
            callback: _,
            walks,
        } = self;
        // In the order of the fields (drop glue's order).
        drop_unless_empty(tail_programs);
        drop(guard.into_inner());
        drop_unless_empty(acquired);
        drop(tail_call);
        drop_unless_empty(pending);
        drop_unless_empty(walks);
    }

    /// Faults a helper can raise for a missing map handle.
    pub fn no_map(id: u32) -> FaultKind {
        FaultKind::HelperFailed {
            id,
            reason: "the map argument is not a map of this program",
        }
    }
}

/// Drops `v` when it has an allocation; an empty one owns nothing and is forgotten
/// (dropping it would be a call that frees nothing).
#[inline(always)]
fn drop_unless_empty<T>(v: Vec<T>) {
    if v.capacity() == 0 {
        std::mem::forget(v);
    } else {
        drop(v);
    }
}

/// The handle a program sees for a map: the address of the map object, as the kernel's
/// `struct bpf_map *`. Programs never dereference it; helpers look it up.
pub fn map_handle(map: &Arc<dyn Map>) -> u64 {
    Arc::as_ptr(map).cast::<u8>().addr() as u64
}

/// What a run works on, set up by [`with_run`] the same way for every engine.
#[derive(Debug)]
pub struct RunSetup<'r, 'a> {
    /// The run's memory: the stack, the context, global data, and later the regions
    /// helpers add.
    pub regions: &'r mut Regions<'a>,
    /// The state helpers share with the engine.
    pub state: &'r mut RunState<'a>,
    /// `r10` of frame 0.
    pub fp: u64,
    /// The program's `r1` and `r2` ([`crate::InstalledContext`]).
    pub r1: u64,
    /// See `r1`.
    pub r2: u64,
    /// The packet of legacy packet loads (`ldabs`/`ldind`): its address and length.
    pub packet_addr: u64,
    /// See `packet_addr`.
    pub packet_len: u64,
}

/// Sets up a run of `prog` with `ctx` as every engine must, so that all see the same
/// memory: creates the run state (which pins the epoch when the run first needs it, so
/// that map values a program reads stay allocated until the run ends) and the stack,
/// installs the context ([`crate::Context::install`]) and the global data sections.
/// Then calls `body` with all of it, and afterwards cleans up (spin locks still held,
/// pending ring-buffer records) and writes the packet's bounds back into `ctx`. A setup
/// that fails is the fault every engine reports at pc 0.
pub fn with_run<R>(
    prog: &LoadedProgram,
    ctx: &mut crate::Context<'_>,
    opts: &crate::RunOptions,
    body: impl for<'r, 'a> FnOnce(RunSetup<'r, 'a>) -> R,
) -> Result<R, FaultKind> {
    let mut state = RunState::new(prog, opts.cpu, opts.environment());
    let mut stack = crate::StackMemory::new();
    let mut ctx_bytes = [0u8; 24];
    let mut regions = Regions::new();
    let fp = regions.add_stack(&mut stack).map_err(FaultKind::from)?;
    let installed = set_up_after_stack(&state, &mut regions, prog, ctx, &mut ctx_bytes)?;
    let result = body(RunSetup {
        regions: &mut regions,
        state: &mut state,
        fp,
        r1: installed.r1,
        r2: installed.r2,
        packet_addr: installed.packet_addr,
        packet_len: installed.packet_len,
    });
    end_run(state, regions, installed.bounds);
    Ok(result)
}

/// The part of a run's setup that follows its stack, in [`with_run`] and in an engine
/// that builds the same setup later (the JIT, at its code's first call into the
/// runtime), so that both come out the same: pins the epoch if `prog` has global data,
/// installs the context ([`crate::Context::install`]), then adds the global data.
#[inline]
pub fn set_up_after_stack<'a>(
    state: &RunState<'a>,
    regions: &mut Regions<'a>,
    prog: &'a LoadedProgram,
    ctx: &'a mut crate::Context<'_>,
    ctx_bytes: &'a mut [u8; 24],
) -> Result<crate::InstalledContext<'a>, FaultKind> {
    state.pin_for_globals(prog);
    let installed = ctx.install(prog.program_type(), regions, ctx_bytes)?;
    regions.add_direct_values(prog).map_err(FaultKind::from)?;
    Ok(installed)
}

/// What [`with_run`] does after the program stopped, for an engine that set up the run
/// itself (the same way): cleans up (spin locks still held, pending ring-buffer records),
/// writes the packet's bounds back to `bounds` (the context's, when it has a packet),
/// and drops the regions, then the state, whose guard keeps the map memory the regions
/// point to.
#[inline]
pub fn end_run<'a>(
    mut state: RunState<'a>,
    mut regions: Regions<'a>,
    bounds: Option<&mut crate::PacketBounds>,
) {
    state.cleanup(&mut regions);
    if let (Some(bounds), Some(b)) = (bounds, regions.packet_bounds()) {
        *bounds = b;
    }
    drop(regions);
    state.finish();
}
