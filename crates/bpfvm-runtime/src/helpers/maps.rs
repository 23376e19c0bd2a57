//! Map helpers: lookup, update, delete, push, pop, peek.

use bpfvm_abi::MapType;

use super::builtin::{BuiltinHelper, all};
use super::{HelperContext, HelperFn};
use crate::run::RunState;
use crate::{FaultKind, Map, RegionKind, Regions};

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
    h(1, "map_lookup_elem", map_lookup_elem),
    h(2, "map_update_elem", map_update_elem),
    h(3, "map_delete_elem", map_delete_elem),
    h(87, "map_push_elem", map_push_elem),
    h(88, "map_pop_elem", map_pop_elem),
    h(89, "map_peek_elem", map_peek_elem),
];

/// A helper's return value for a map result: 0, or the negative errno.
pub(super) fn ret(r: Result<(), bpfvm_abi::MapError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e.helper_return() as u64,
    }
}

/// Room for a helper's key or value: 64 bytes on the stack, the heap past that.
struct Scratch {
    small: [u8; 64],
    large: Vec<u8>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            small: [0; 64],
            large: Vec::new(),
        }
    }

    /// Reads the `len` bytes at `addr`. A long range is checked before anything is
    /// allocated, so a program-chosen length never asks the host for more memory than
    /// the region it names.
    fn read(
        &mut self,
        regions: &mut Regions<'_>,
        addr: u64,
        len: usize,
    ) -> Result<&[u8], FaultKind> {
        let buf = match self.small.get_mut(..len) {
            Some(buf) => buf,
            None => {
                regions.check(addr, len, false)?;
                self.large.resize(len, 0);
                &mut self.large[..]
            }
        };
        regions.read_bytes(addr, buf)?;
        Ok(buf)
    }
}

/// Reads `len` bytes at `addr` ([`Scratch`]) and calls `f` with them.
pub(super) fn with_bytes<R>(
    ctx: &mut HelperContext<'_, '_>,
    addr: u64,
    len: usize,
    f: impl FnOnce(&mut HelperContext<'_, '_>, &[u8]) -> R,
) -> Result<R, FaultKind> {
    let mut scratch = Scratch::new();
    let bytes = scratch.read(ctx.regions, addr, len)?;
    Ok(f(ctx, bytes))
}

fn map_lookup_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    // The map is looked up once and the key read with the regions alone, both borrowed
    // beside each other (this helper is the hot path of most programs).
    let run = &*ctx.run;
    let map = run.map(a[0]).ok_or(RunState::no_map(ctx.id))?;
    let mut scratch = Scratch::new();
    let key = scratch.read(ctx.regions, a[1], map.spec().key_size as usize)?;
    if matches!(
        map.spec().map_type,
        MapType::ArrayOfMaps | MapType::HashOfMaps
    ) {
        let inner = map.lookup_inner(key);
        return Ok(inner.map_or(0, |m| ctx.run.acquire(m)));
    }
    // SAFETY: the map is one of the run's (`RunState::map`), alive until the run ends.
    Ok(unsafe { lookup_in_run(run, ctx.regions, map, key) })
}

/// What `bpf_map_lookup_elem` does once it holds the map and the key: finds the value
/// under the run's guard and adds it to the run's regions; returns its address, or 0 when
/// the key is absent. For maps of values (a map of maps returns an inner map instead).
/// Engines that resolve the map and read the key themselves call this directly (the
/// JIT, for a map the program names with `lddw` and a key in the current frame) and stay
/// exactly the helper.
///
/// Generic so that an engine holding a concrete map (the JIT, for hash maps and arrays)
/// gets the map's lookup inline instead of through the `Map` vtable.
///
/// # Safety
/// `map` must stay alive until the run ends: a map of one of the run's programs, or one
/// the run acquired, as [`RunState::map`] returns.
#[inline]
pub unsafe fn lookup_in_run<M: Map + ?Sized>(
    run: &RunState<'_>,
    regions: &mut Regions<'_>,
    map: &M,
    key: &[u8],
) -> u64 {
    let Some(v) = map.lookup_value(key, run.cpu, run.guard()) else {
        return 0;
    };
    // SAFETY: the value was found under the run's guard, which outlives the run's
    // regions, so its memory stays allocated for them even if it is deleted (the maps'
    // reclamation invariant), and the map outlives the run (this function's contract);
    // programs, other runs and the host access map values only atomically (the maps'
    // access invariant).
    unsafe { regions.add_shared(RegionKind::MapValue, v.as_ptr(), v.len(), v.is_writable()) }
}

fn map_update_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let id = ctx.id;
    let (key_size, value_size) = {
        let map = ctx.run.map(a[0]).ok_or(RunState::no_map(id))?;
        (map.spec().key_size as usize, map.spec().value_size as usize)
    };
    // The key read beside the value, with no `Vec` for it (there used to be one per call).
    let mut scratch = Scratch::new();
    let key = scratch.read(ctx.regions, a[1], key_size)?;
    with_bytes(ctx, a[2], value_size, |ctx, value| {
        let run = &*ctx.run;
        let map = run.map(a[0]).ok_or(RunState::no_map(id))?;
        Ok(update_in_run(run, map, key, value, a[3]))
    })?
}

/// What `bpf_map_update_elem` does once it holds the map, the key and the value: the
/// map's program-side update from the run's CPU slot; returns 0 or the negative errno.
/// Engines that resolve the map and read the key and value themselves call this directly
/// and stay exactly the helper.
pub fn update_in_run(
    run: &RunState<'_>,
    map: &dyn Map,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> u64 {
    ret(map.prog_update(key, value, flags, run.cpu))
}

/// What `bpf_map_delete_elem` does once it holds the map and the key: returns 0 or the
/// negative errno.
pub fn delete_in_run(map: &dyn Map, key: &[u8]) -> u64 {
    ret(map.prog_delete(key))
}

fn map_delete_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let id = ctx.id;
    let key_size = ctx
        .run
        .map(a[0])
        .ok_or(RunState::no_map(id))?
        .spec()
        .key_size as usize;
    with_bytes(ctx, a[1], key_size, |ctx, key| {
        let map = ctx.run.map(a[0]).ok_or(RunState::no_map(id))?;
        Ok(delete_in_run(map, key))
    })?
}

fn value_size(ctx: &HelperContext<'_, '_>, handle: u64) -> Result<usize, FaultKind> {
    Ok(ctx
        .run
        .map(handle)
        .ok_or(RunState::no_map(ctx.id))?
        .spec()
        .value_size as usize)
}

fn map_push_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let id = ctx.id;
    let len = value_size(ctx, a[0])?;
    with_bytes(ctx, a[1], len, |ctx, value| {
        let map = ctx.run.map(a[0]).ok_or(RunState::no_map(id))?;
        Ok(ret(map.push(value, a[2])))
    })?
}

fn map_pop_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let id = ctx.id;
    let len = value_size(ctx, a[0])?;
    ctx.regions.check(a[1], len, true)?;
    let mut out = vec![0u8; len];
    let r = ctx.run.map(a[0]).ok_or(RunState::no_map(id))?.pop(&mut out);
    // The kernel zeroes the buffer of an empty queue or stack (`ENOENT`).
    if matches!(r, Ok(()) | Err(bpfvm_abi::MapError::NotFound)) {
        ctx.regions.write_bytes(a[1], &out)?;
    }
    Ok(ret(r))
}

fn map_peek_elem(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let id = ctx.id;
    let len = value_size(ctx, a[0])?;
    let bloom = ctx.run.map(a[0]).map(|m| m.spec().map_type) == Some(MapType::BloomFilter);
    if bloom {
        let mut value = ctx.read_vec(a[1], len)?;
        let map = ctx.run.map(a[0]).ok_or(RunState::no_map(id))?;
        return Ok(ret(map.peek(&mut value)));
    }
    ctx.regions.check(a[1], len, true)?;
    let mut out = vec![0u8; len];
    let r = ctx
        .run
        .map(a[0])
        .ok_or(RunState::no_map(id))?
        .peek(&mut out);
    // The kernel zeroes the buffer of an empty queue or stack (`ENOENT`).
    if matches!(r, Ok(()) | Err(bpfvm_abi::MapError::NotFound)) {
        ctx.regions.write_bytes(a[1], &out)?;
    }
    Ok(ret(r))
}
