//! Event-output helpers: ring buffers (`bpf_ringbuf_*`) and perf event arrays
//! (`bpf_perf_event_output`, `bpf_perf_event_read`, `bpf_perf_event_read_value`).
//!
//! A reserved ring-buffer record becomes a shared region of the run (the program writes
//! it atomically, the consumer reads it after the commit) and a pending obligation of the
//! run: submitting or discarding removes both; a run that ends first has its records
//! discarded by [`RunState::cleanup`].

use std::sync::Arc;

use super::builtin::{BuiltinHelper, all, tracing, tracing_or_packet};
use super::{HelperContext, HelperFn};
use crate::maps::{F_CTXLEN_MASK, F_INDEX_MASK, PerfEventArrayMap, RingBuf, RingBufMap};
use crate::run::{Pending, RunState};
use crate::{FaultKind, ProgramType, RegionKind};

const fn h(
    id: u32,
    name: &'static str,
    func: HelperFn,
    available: fn(bpfvm_abi::ProgramType) -> bool,
) -> BuiltinHelper {
    BuiltinHelper {
        id,
        name,
        func,
        available,
    }
}

/// This area's helpers.
pub(super) const HELPERS: &[BuiltinHelper] = &[
    h(22, "perf_event_read", perf_event_read, tracing),
    h(
        25,
        "perf_event_output",
        perf_event_output,
        tracing_or_packet,
    ),
    h(55, "perf_event_read_value", perf_event_read_value, tracing),
    h(130, "ringbuf_output", ringbuf_output, all),
    h(131, "ringbuf_reserve", ringbuf_reserve, all),
    h(132, "ringbuf_submit", ringbuf_submit, all),
    h(133, "ringbuf_discard", ringbuf_discard, all),
    h(134, "ringbuf_query", ringbuf_query, all),
];

/// `struct bpf_perf_event_value`'s size.
const PERF_VALUE_SIZE: u64 = 24;
/// `EFAULT`, for packet bytes asked past the packet.
const EFAULT: i64 = 14;

fn ring(ctx: &HelperContext<'_, '_>, handle: u64) -> Result<Arc<RingBuf>, FaultKind> {
    let map = ctx.run.map(handle).ok_or(RunState::no_map(ctx.id))?;
    map.as_any()
        .downcast_ref::<RingBufMap>()
        .map(|m| Arc::clone(m.ring()))
        .ok_or(ctx.fail("the map is not a ring buffer"))
}

fn perf_map<'c>(
    ctx: &'c HelperContext<'_, '_>,
    handle: u64,
) -> Result<&'c PerfEventArrayMap, FaultKind> {
    let map = ctx.run.map(handle).ok_or(RunState::no_map(ctx.id))?;
    map.as_any()
        .downcast_ref::<PerfEventArrayMap>()
        .ok_or(ctx.fail("the map is not a perf event array"))
}

/// `bpf_ringbuf_reserve(map, size, flags)`: the record's address, or 0.
fn ringbuf_reserve(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let ring = ring(ctx, a[0])?;
    let Some(rec) = ring.reserve(a[1], a[2]) else {
        return Ok(0);
    };
    // The run pins now if it has not yet (runs pin lazily): every map pointer a run
    // holds is taken under its guard.
    ctx.run.guard();
    // SAFETY: the record lies in the ring's block, which stays allocated while `ring` (an
    // `Arc` kept in the run's pending list until the commit, and by the program's map
    // for the whole run) lives, and is freed after that only through the epoch collector,
    // after the run's guard, pinned above; the ring and its consumer access record memory
    // only atomically (the ring's access invariant).
    let addr = unsafe {
        ctx.regions
            .add_shared(RegionKind::RingBuf, rec.as_ptr(), rec.len(), true)
    };
    ctx.run.pending.push((ring as Arc<dyn Pending>, addr));
    Ok(addr)
}

/// Submit or discard the record at `addr`, which this run must have reserved.
fn commit(
    ctx: &mut HelperContext<'_, '_>,
    addr: u64,
    flags: u64,
    discard: bool,
) -> Result<u64, FaultKind> {
    let i = ctx
        .run
        .pending
        .iter()
        .position(|(_, a)| *a == addr)
        .ok_or(ctx.fail("not a ring-buffer record reserved by this run"))?;
    let (owner, _) = ctx.run.pending.swap_remove(i);
    ctx.regions.remove_shared(addr);
    let ring = owner
        .as_any()
        .and_then(|a| a.downcast_ref::<RingBuf>())
        .ok_or(ctx.fail("not a ring-buffer record reserved by this run"))?;
    let r = if discard {
        ring.discard(addr, flags)
    } else {
        ring.submit(addr, flags)
    };
    r.map_err(|_| ctx.fail("the ring-buffer record is not reserved"))?;
    Ok(0)
}

fn ringbuf_submit(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    commit(ctx, a[0], a[1], false)
}

fn ringbuf_discard(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    commit(ctx, a[0], a[1], true)
}

/// `bpf_ringbuf_output(map, data, size, flags)`: 0, `-EINVAL` or `-EAGAIN`.
fn ringbuf_output(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let ring = ring(ctx, a[0])?;
    let len = usize::try_from(a[2]).map_err(|_| ctx.fail("size too large"))?;
    let data = ctx.read_vec(a[1], len)?;
    Ok(match ring.output(&data, a[3]) {
        Ok(()) => 0,
        Err(e) => e.helper_return(),
    })
}

fn ringbuf_query(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(ring(ctx, a[0])?.query(a[1]))
}

/// `bpf_perf_event_output(ctx, map, flags, data, size)`; for packet programs (the
/// kernel's `bpf_skb_event_output`/`bpf_xdp_event_output`) the upper 32 bits of `flags`
/// (`BPF_F_CTXLEN_MASK`) ask for that many packet bytes after `data`.
fn perf_event_output(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let flags = a[2];
    perf_map(ctx, a[1])?;
    let packet_type = matches!(
        ctx.run.program().program_type(),
        ProgramType::Kernel(t) if super::builtin::packet(t)
    );
    let len = usize::try_from(a[4]).map_err(|_| ctx.fail("size too large"))?;
    let data = ctx.read_vec(a[3], len)?;
    let mut extra = Vec::new();
    let mut index_flags = flags;
    if packet_type {
        if flags & !(F_CTXLEN_MASK | F_INDEX_MASK) != 0 {
            return Ok((-22i64) as u64);
        }
        let ctx_len = ((flags & F_CTXLEN_MASK) >> 32) as usize;
        if ctx_len > 0 {
            let Some(b) = ctx.regions.packet_bounds() else {
                return Ok((-EFAULT) as u64);
            };
            if ctx_len > b.end.saturating_sub(b.data) {
                return Ok((-EFAULT) as u64);
            }
            extra.resize(ctx_len, 0);
            if ctx.regions.packet_buffer_read(b.data, &mut extra).is_err() {
                return Ok((-EFAULT) as u64);
            }
        }
        index_flags &= F_INDEX_MASK;
    }
    let cpu = ctx.run.cpu;
    let map = perf_map(ctx, a[1])?;
    Ok(match map.output(cpu, index_flags, &[&data, &extra]) {
        Ok(()) => 0,
        Err(e) => e.helper_return(),
    })
}

/// `bpf_perf_event_read(map, flags)`: the count, or a negative errno.
fn perf_event_read(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let cpu = ctx.run.cpu;
    Ok(match perf_map(ctx, a[0])?.read_value(cpu, a[1]) {
        Ok(v) => v.counter,
        Err(e) => e.helper_return(),
    })
}

/// `bpf_perf_event_read_value(map, flags, buf, size)`: fills `struct
/// bpf_perf_event_value` (zeroed on error); `-EINVAL` unless `size` is 24.
fn perf_event_read_value(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let len = usize::try_from(a[3]).map_err(|_| ctx.fail("size too large"))?;
    ctx.regions.check(a[2], len, true)?;
    let cpu = ctx.run.cpu;
    let r = if a[3] != PERF_VALUE_SIZE {
        Err((-22i64) as u64)
    } else {
        perf_map(ctx, a[0])?
            .read_value(cpu, a[1])
            .map_err(|e| e.helper_return())
    };
    match r {
        Ok(v) => {
            ctx.regions.write_bytes(a[2], &v.to_bytes())?;
            Ok(0)
        }
        Err(ret) => {
            ctx.regions.write_bytes(a[2], &vec![0u8; len])?;
            Ok(ret)
        }
    }
}
