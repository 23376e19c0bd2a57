//! Helpers that steer the run: `bpf_tail_call`, `bpf_loop`, `bpf_spin_lock`/`unlock`.
//! The first two leave a request in the [`RunState`](crate::RunState) for the engine.

use bpfvm_isa::AtomicOp;

use super::builtin::{BuiltinHelper, all};
use super::{HelperContext, HelperFn};
use crate::FaultKind;
use crate::run::{CallbackRequest, MAX_TAIL_CALLS, RunState};

const fn h(id: u32, name: &'static str, func: HelperFn) -> BuiltinHelper {
    BuiltinHelper {
        id,
        name,
        func,
        available: all,
    }
}

/// This area's helpers.
pub(super) const HELPERS: &[BuiltinHelper] = &[
    h(12, "tail_call", tail_call),
    h(93, "spin_lock", spin_lock),
    h(94, "spin_unlock", spin_unlock),
    h(164, "for_each_map_elem", for_each_map_elem),
    h(181, "loop", bpf_loop),
];

/// The kernel's `BPF_MAX_LOOPS`: the most iterations `bpf_loop` makes.
pub const MAX_LOOPS: u64 = 1 << 23;

const EINVAL: u64 = (-22i64) as u64;
const E2BIG: u64 = (-7i64) as u64;
const ENOENT: u64 = (-2i64) as u64;

/// `bpf_tail_call(ctx, prog_array, index)`: on success the engine continues with the
/// program at `index` from its first instruction, `r1` = `ctx`, and never returns here.
/// As in the kernel, an index out of range, an empty slot, or a 34th tail call make the
/// call fall through (here returning `-ENOENT`).
fn tail_call(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let map = ctx.run.map(a[1]).ok_or(RunState::no_map(ctx.id))?;
    if map.spec().map_type != bpfvm_abi::MapType::ProgArray {
        return Err(ctx.fail("the map argument is not a program array"));
    }
    if ctx.run.tail_calls >= MAX_TAIL_CALLS {
        return Ok(ENOENT);
    }
    let Ok(index) = u32::try_from(a[2]) else {
        return Ok(ENOENT);
    };
    let Some(next) = map.program_at(index) else {
        return Ok(ENOENT);
    };
    ctx.run.tail_calls += 1;
    ctx.run.tail_call = Some(next);
    Ok(0)
}

/// `bpf_loop(nr_loops, callback, callback_ctx, flags)`: the engine calls
/// `callback(i, callback_ctx)` for `i` in `0..nr_loops` until it returns 1, and the
/// helper returns the number of calls made. `-EINVAL` for flags, `-E2BIG` past
/// [`MAX_LOOPS`].
fn bpf_loop(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    if a[0] > MAX_LOOPS {
        return Ok(E2BIG);
    }
    let Some(pc) = ctx.run.program().pc_of_code_address(a[1]) else {
        return Err(ctx.fail("the callback is not a function of this program"));
    };
    ctx.run.callback = Some(CallbackRequest {
        pc,
        iterations: a[0],
        ctx: a[2],
        for_each: None,
    });
    Ok(0)
}

/// `bpf_for_each_map_elem(map, callback, callback_ctx, flags)`: the engine calls
/// `callback(map, key, value, callback_ctx)` for each element present when the walk
/// began (still present when reached) until it returns non-zero; the helper returns the
/// number of calls. `-EINVAL` for flags; per-CPU maps give this CPU's value.
fn for_each_map_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    let Some(pc) = ctx.run.program().pc_of_code_address(a[1]) else {
        return Err(ctx.fail("the callback is not a function of this program"));
    };
    let map = ctx.run.map(a[0]).ok_or(RunState::no_map(ctx.id))?;
    let key_size = map.spec().key_size as usize;
    let keys = map
        .keys()
        .map_err(|_| ctx.fail("the map cannot be walked"))?;
    let n = keys.len() as u64;
    let walk = ctx.run.start_for_each(a[0], keys, key_size);
    ctx.run.callback = Some(CallbackRequest {
        pc,
        iterations: n,
        ctx: a[2],
        for_each: Some(walk),
    });
    Ok(0)
}

/// `bpf_spin_lock(lock)`: spins on the 4-byte lock word (0 free, 1 held) with an atomic
/// compare-and-exchange. A run holds at most one lock, as the verifier enforces; a lock
/// still held when the run ends (a fault) is released by the run's cleanup.
fn spin_lock(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    if ctx.run.held_lock.is_some() {
        return Err(ctx.fail("a spin lock is already held (nested bpf_spin_lock)"));
    }
    let mut spins = 0u32;
    loop {
        let old = ctx.regions.atomic32(a[0], AtomicOp::CmpXchg, 1, 0)?;
        if old == 0 {
            break;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    ctx.run.held_lock = Some(a[0]);
    Ok(0)
}

/// `bpf_spin_unlock(lock)`: releases the lock this run holds.
fn spin_unlock(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    if ctx.run.held_lock != Some(a[0]) {
        return Err(ctx.fail("bpf_spin_unlock of a lock this run does not hold"));
    }
    ctx.regions.store_release(a[0], 4, 0)?;
    ctx.run.held_lock = None;
    Ok(0)
}
