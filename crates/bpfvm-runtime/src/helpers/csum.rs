//! Checksum fix-up helpers of `__sk_buff` programs: `bpf_l3_csum_replace` and
//! `bpf_l4_csum_replace`, as `net/core/filter.c` implements them.
//!
//! Both rewrite the 16-bit ones'-complement checksum at `offset` (from the start of the
//! packet data) incrementally for a field that changed `from` → `to`, where the low four
//! bits of `flags` (`BPF_F_HDR_FIELD_MASK`) give the field's size: 2 or 4 bytes, or 0
//! when `to` is already a checksum difference (`bpf_csum_diff`'s result) and `from` must
//! be 0. Values are taken as the bytes sit in the packet (network order), so the
//! arithmetic is done on native-endian loads of those bytes, as the kernel does.
//!
//! The skb's `ip_summed` is not modelled: it is `CHECKSUM_NONE` for a packet given to
//! `BPF_PROG_TEST_RUN` (and for any packet a host hands bpfvm), so `BPF_F_PSEUDO_HDR`
//! changes nothing in the packet (the kernel only uses it to fix `skb->csum` under
//! `CHECKSUM_COMPLETE` or the pseudo-header seed under `CHECKSUM_PARTIAL`).

use super::builtin::BuiltinHelper;
use super::{HelperContext, HelperFn};
use crate::FaultKind;
use bpfvm_abi::ProgramType as KernelType;

const fn h(
    id: u32,
    name: &'static str,
    func: HelperFn,
    available: fn(KernelType) -> bool,
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
    h(10, "l3_csum_replace", l3_csum_replace, csum_types),
    h(11, "l4_csum_replace", l4_csum_replace, csum_types),
];

/// The program types whose `func_proto` offers the two helpers: tc
/// (`tc_cls_act_func_proto`) and `lwt_xmit` (`lwt_xmit_func_proto`). Socket filters
/// (`sk_filter_func_proto`) do not get them.
fn csum_types(t: KernelType) -> bool {
    matches!(
        t,
        KernelType::SchedCls | KernelType::SchedAct | KernelType::LwtXmit
    )
}

const EINVAL: u64 = (-22i64) as u64;
const EFAULT: u64 = (-14i64) as u64;

/// `BPF_F_HDR_FIELD_MASK`: the size of the changed field (0, 2 or 4).
const F_HDR_FIELD_MASK: u64 = 0xf;
/// `BPF_F_PSEUDO_HDR`: the field is part of the L4 pseudo-header.
const F_PSEUDO_HDR: u64 = 1 << 4;
/// `BPF_F_MARK_MANGLED_0`: a zero checksum means "none" (UDP); a result of 0 is stored
/// as `CSUM_MANGLED_0`.
const F_MARK_MANGLED_0: u64 = 1 << 5;
/// `BPF_F_MARK_ENFORCE`: update even a zero checksum.
const F_MARK_ENFORCE: u64 = 1 << 6;
/// `BPF_F_IPV6` (Linux 6.16+): the packet is IPv6 (only matters for `skb->csum`).
const F_IPV6: u64 = 1 << 7;
/// `CSUM_MANGLED_0`.
const CSUM_MANGLED_0: u16 = 0xffff;

/// `bpf_l3_csum_replace(skb, offset, from, to, flags)`.
fn l3_csum_replace(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let flags = a[4];
    if flags & !F_HDR_FIELD_MASK != 0 {
        return Ok(EINVAL);
    }
    let Some(at) = checksum_at(ctx, a[1] as u32)? else {
        return Ok(EFAULT);
    };
    let sum = read16(ctx, at)?;
    let new = match replace(sum, a[2], a[3], flags & F_HDR_FIELD_MASK) {
        Some(new) => new,
        None => return Ok(EINVAL),
    };
    write16(ctx, at, new)?;
    Ok(0)
}

/// `bpf_l4_csum_replace(skb, offset, from, to, flags)`.
fn l4_csum_replace(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let flags = a[4];
    let allowed = F_MARK_MANGLED_0 | F_MARK_ENFORCE | F_PSEUDO_HDR | F_HDR_FIELD_MASK | F_IPV6;
    if flags & !allowed != 0 {
        return Ok(EINVAL);
    }
    let Some(at) = checksum_at(ctx, a[1] as u32)? else {
        return Ok(EFAULT);
    };
    let mangled_0 = flags & F_MARK_MANGLED_0 != 0;
    let sum = read16(ctx, at)?;
    if mangled_0 && flags & F_MARK_ENFORCE == 0 && sum == 0 {
        return Ok(0);
    }
    // With `ip_summed` CHECKSUM_NONE, `inet_proto_csum_replace{2,4,_by_diff}` are
    // `csum_replace{2,4,_by_diff}` on the packet whatever BPF_F_PSEUDO_HDR says.
    let mut new = match replace(sum, a[2], a[3], flags & F_HDR_FIELD_MASK) {
        Some(new) => new,
        None => return Ok(EINVAL),
    };
    if mangled_0 && new == 0 {
        new = CSUM_MANGLED_0;
    }
    write16(ctx, at, new)?;
    Ok(0)
}

/// The buffer offset of the checksum at packet offset `offset`, or `None` for the
/// kernel's `-EFAULT` cases: an offset above 0xffff or odd, or a checksum that does not
/// lie inside the packet (`bpf_try_make_writable` cannot pull `offset + 2` bytes).
fn checksum_at(ctx: &HelperContext<'_, '_>, offset: u32) -> Result<Option<usize>, FaultKind> {
    let b = ctx
        .regions
        .packet_bounds()
        .ok_or(ctx.fail("the run has no packet"))?;
    if offset > 0xffff || offset & 1 != 0 {
        return Ok(None);
    }
    let at = b.data + offset as usize;
    Ok((at + 2 <= b.end).then_some(at))
}

fn read16(ctx: &HelperContext<'_, '_>, at: usize) -> Result<u16, FaultKind> {
    let mut b = [0u8; 2];
    ctx.regions
        .packet_buffer_read(at, &mut b)
        .map_err(|_| ctx.fail("packet checksum"))?;
    Ok(u16::from_ne_bytes(b))
}

fn write16(ctx: &mut HelperContext<'_, '_>, at: usize, v: u16) -> Result<(), FaultKind> {
    ctx.regions
        .packet_buffer_write(at, &v.to_ne_bytes())
        .map_err(|_| ctx.fail("packet checksum"))
}

/// The new checksum for a field of `size` bytes changed `from` → `to` (`size` 0: `to` is
/// a 32-bit checksum difference and `from` must be 0); `None` for the kernel's `-EINVAL`.
fn replace(sum: u16, from: u64, to: u64, size: u64) -> Option<u16> {
    match size {
        0 if from != 0 => None,
        0 => Some(csum_replace_by_diff(sum, to as u32)),
        2 => Some(csum_replace2(sum, from as u16, to as u16)),
        4 => Some(csum_replace4(sum, from as u32, to as u32)),
        _ => None,
    }
}

/// `csum_add`: 32-bit ones'-complement addition (end-around carry).
fn csum_add(a: u32, b: u32) -> u32 {
    let (r, carry) = a.overflowing_add(b);
    r.wrapping_add(u32::from(carry))
}

/// `csum_sub`.
fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

/// `csum_fold`: folds a 32-bit partial sum to 16 bits and complements it.
fn csum_fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `csum16_add`: 16-bit ones'-complement addition.
fn csum16_add(a: u16, b: u16) -> u16 {
    let (r, carry) = a.overflowing_add(b);
    r.wrapping_add(u16::from(carry))
}

/// `csum_replace2(sum, old, new)`: `~csum16_add(csum16_sub(~sum, old), new)`.
fn csum_replace2(sum: u16, old: u16, new: u16) -> u16 {
    !csum16_add(csum16_add(!sum, !old), new)
}

/// `csum_replace4(sum, from, to)`: `csum_fold(csum_add(csum_sub(~csum_unfold(sum), from), to))`.
fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    csum_fold(csum_add(csum_sub(!u32::from(sum), from), to))
}

/// `csum_replace_by_diff(sum, diff)`: `csum_fold(csum_add(diff, ~csum_unfold(sum)))`.
/// (`~csum_unfold(sum)` is the complement of the zero-extended 16 bits, a full 32-bit
/// value; `csum_fold` then folds it back.)
fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !u32::from(sum)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum (RFC 1071) of `hdr` computed from scratch, as stored.
    fn ipv4_checksum(hdr: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for (i, w) in hdr.chunks_exact(2).enumerate() {
            if i != 5 {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    // tcp_syn's IPv4 header (conformance-tests/elf/packets): TTL 64, checksum f97b.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0xf9, 0x7b, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0x02,
    ];

    fn stored(hdr: &[u8]) -> u16 {
        u16::from_ne_bytes([hdr[10], hdr[11]])
    }

    #[test]
    fn ttl_decrement_matches_a_full_recompute() {
        assert_eq!(ipv4_checksum(&HDR), 0xf97b);
        let mut new = HDR;
        new[8] = 0x3f;
        // The README's kernel result: f97b -> fa7b.
        assert_eq!(ipv4_checksum(&new), 0xfa7b);
        let old_word = u16::from_ne_bytes([HDR[8], HDR[9]]);
        let new_word = u16::from_ne_bytes([new[8], new[9]]);
        let want = 0xfa7bu16.to_be();
        assert_eq!(csum_replace2(stored(&HDR), old_word, new_word), want);
        assert_eq!(
            replace(stored(&HDR), u64::from(old_word), u64::from(new_word), 2),
            Some(want)
        );
        // The same change as a 4-byte field (TTL, protocol, checksum-less half word).
        let old4 = u32::from_ne_bytes([HDR[8], HDR[9], 0, 0]);
        let new4 = u32::from_ne_bytes([new[8], new[9], 0, 0]);
        assert_eq!(csum_replace4(stored(&HDR), old4, new4), want);
        // And as a difference: ~old + new, as bpf_csum_diff gives it.
        let diff = csum_add(!old4, new4);
        assert_eq!(replace(stored(&HDR), 0, u64::from(diff), 0), Some(want));
    }

    #[test]
    fn address_rewrite_matches_a_full_recompute() {
        let mut new = HDR;
        new[12..16].copy_from_slice(&[10, 1, 2, 3]);
        let from = u32::from_ne_bytes([HDR[12], HDR[13], HDR[14], HDR[15]]);
        let to = u32::from_ne_bytes([10, 1, 2, 3]);
        assert_eq!(
            csum_replace4(stored(&HDR), from, to),
            ipv4_checksum(&new).to_be()
        );
    }

    #[test]
    fn bad_sizes_and_diff_with_from_are_einval() {
        assert_eq!(replace(0x1234, 0, 0, 1), None);
        assert_eq!(replace(0x1234, 0, 0, 8), None);
        assert_eq!(replace(0x1234, 5, 0, 0), None);
        // Only the low 16/32 bits of from and to count, as the kernel's casts.
        assert_eq!(
            replace(0x1234, 0xffff_0001, 0xffff_0002, 2),
            replace(0x1234, 1, 2, 2)
        );
    }
}
