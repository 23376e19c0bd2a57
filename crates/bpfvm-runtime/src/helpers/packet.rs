//! Packet helpers: `bpf_xdp_adjust_head/tail/meta`, `bpf_skb_load_bytes`, `bpf_csum_diff`.

use super::builtin::{BuiltinHelper, packet, skb, xdp};
use super::{HelperContext, HelperFn};
use crate::{FaultKind, PacketBounds};

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
    h(26, "skb_load_bytes", skb_load_bytes, skb),
    h(28, "csum_diff", csum_diff, packet),
    h(44, "xdp_adjust_head", xdp_adjust_head, xdp),
    h(54, "xdp_adjust_meta", xdp_adjust_meta, xdp),
    h(65, "xdp_adjust_tail", xdp_adjust_tail, xdp),
];

const EINVAL: u64 = (-22i64) as u64;
const EFAULT: u64 = (-14i64) as u64;

/// The kernel's `ETH_HLEN`: XDP data may not shrink below an Ethernet header.
pub const ETH_HLEN: usize = 14;
/// The kernel's `XDP_PACKET_HEADROOM`.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Room the kernel keeps at the end of an XDP frame for `struct skb_shared_info`
/// (its size on x86_64, `SKB_DATA_ALIGN`ed): the tail may not grow into it.
pub const XDP_SHARED_INFO: usize = 320;
/// The most metadata in front of an XDP packet (the kernel's `METADATA_SIZE_MAX`-ish 32).
pub const XDP_META_MAX: usize = 32;

fn bounds(ctx: &HelperContext<'_, '_>) -> Result<PacketBounds, FaultKind> {
    ctx.regions
        .packet_bounds()
        .ok_or(ctx.fail("the run has no packet"))
}

/// `bpf_xdp_adjust_head(xdp, delta)`: moves the packet start by `delta` (negative grows
/// into the headroom). The kernel's rules: the new start may not go below the metadata's
/// room (`xdp_frame` in the headroom is ignored here, there is none) and the packet must
/// keep at least `ETH_HLEN` bytes; metadata moves with the start (it is dropped when the
/// start moves, as the kernel invalidates it).
fn xdp_adjust_head(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let b = bounds(ctx)?;
    let delta = a[1] as i32 as i64;
    let meta_len = b.data - b.meta;
    let new_data = b.data as i64 + delta;
    if new_data < meta_len as i64 || new_data + (ETH_HLEN as i64) > b.end as i64 {
        return Ok(EINVAL);
    }
    let new_data = new_data as usize;
    // Metadata moves along with the data start (the kernel memmoves it).
    if meta_len > 0 {
        let mut meta = vec![0u8; meta_len];
        ctx.regions
            .packet_buffer_read(b.meta, &mut meta)
            .map_err(|_| ctx.fail("packet metadata"))?;
        ctx.regions
            .packet_buffer_write(new_data - meta_len, &meta)
            .map_err(|_| ctx.fail("packet metadata"))?;
    }
    let nb = PacketBounds {
        meta: new_data - meta_len,
        data: new_data,
        ..b
    };
    ctx.regions
        .adjust_packet(nb)
        .map_err(|_| ctx.fail("packet bounds"))?;
    Ok(0)
}

/// `bpf_xdp_adjust_meta(xdp, delta)`: moves the metadata start; the metadata must stay a
/// multiple of 4 bytes and at most 32.
fn xdp_adjust_meta(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let b = bounds(ctx)?;
    let delta = a[1] as i32 as i64;
    let new_meta = b.meta as i64 + delta;
    if new_meta < 0 || new_meta > b.data as i64 {
        return Ok(EINVAL);
    }
    let meta_len = b.data - new_meta as usize;
    if !meta_len.is_multiple_of(4) || meta_len > XDP_META_MAX {
        return Ok(EINVAL);
    }
    ctx.regions
        .adjust_packet(PacketBounds {
            meta: new_meta as usize,
            ..b
        })
        .map_err(|_| ctx.fail("packet bounds"))?;
    Ok(0)
}

/// `bpf_xdp_adjust_tail(xdp, delta)`: moves the packet end; it may not pass the frame's
/// end minus the shared-info room, and the packet keeps at least `ETH_HLEN` bytes. Grown
/// bytes are zeroed, as the kernel does.
fn xdp_adjust_tail(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let b = bounds(ctx)?;
    let delta = a[1] as i32 as i64;
    let new_end = b.end as i64 + delta;
    let max_end = b.capacity.saturating_sub(XDP_SHARED_INFO) as i64;
    if new_end > max_end || new_end < (b.data + ETH_HLEN) as i64 {
        return Ok(EINVAL);
    }
    let new_end = new_end as usize;
    if new_end > b.end {
        let zeros = vec![0u8; new_end - b.end];
        ctx.regions
            .packet_buffer_write(b.end, &zeros)
            .map_err(|_| ctx.fail("packet tail"))?;
    }
    ctx.regions
        .adjust_packet(PacketBounds { end: new_end, ..b })
        .map_err(|_| ctx.fail("packet bounds"))?;
    Ok(0)
}

/// `bpf_skb_load_bytes(skb, offset, to, len)`: copies packet bytes (from the start of
/// packet data); `-EFAULT` when the range is outside the packet (and `to` is zeroed).
fn skb_load_bytes(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let b = bounds(ctx)?;
    let offset = a[1] as u32 as usize;
    let len = a[3] as u32 as usize;
    ctx.regions.check(a[2], len, true)?;
    let mut out = vec![0u8; len];
    let ok = len > 0
        && (a[1] as u32) < 0xffff
        && b.data
            .checked_add(offset)
            .and_then(|s| s.checked_add(len))
            .is_some_and(|e| e <= b.end);
    if !ok {
        ctx.regions.write_bytes(a[2], &out)?;
        return Ok(if len == 0 { EINVAL } else { EFAULT });
    }
    ctx.regions
        .packet_buffer_read(b.data + offset, &mut out)
        .map_err(|_| ctx.fail("packet"))?;
    ctx.regions.write_bytes(a[2], &out)?;
    Ok(0)
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)`: the ones'-complement sum of `to`
/// minus that of `from`, added to `seed`, as the kernel's `csum_partial` computes it (a
/// 32-bit unfolded checksum over 32-bit words). Sizes must be multiples of 4 and at most
/// 512; `-EINVAL` otherwise.
fn csum_diff(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let from_size = a[1] as u32 as usize;
    let to_size = a[3] as u32 as usize;
    if !from_size.is_multiple_of(4) || !to_size.is_multiple_of(4) || from_size + to_size > 512 {
        return Ok(EINVAL);
    }
    let from = ctx.read_vec(a[0], from_size)?;
    let to = ctx.read_vec(a[2], to_size)?;
    // diff = ~from words followed by to words, summed with the seed.
    let mut sum = u64::from(a[4] as u32);
    for w in from.chunks_exact(4) {
        sum += u64::from(!u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    for w in to.chunks_exact(4) {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    Ok(u64::from(fold64(sum)))
}

/// Folds a 64-bit sum of 32-bit words to 32 bits with end-around carry (`csum_partial`'s
/// result before `csum_fold`).
fn fold64(mut sum: u64) -> u32 {
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}
