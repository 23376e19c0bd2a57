//! Memory-probing and string helpers: `bpf_probe_read*`, `bpf_strncmp`, `bpf_strtol`,
//! `bpf_strtoul`.
//!
//! The probe helpers read any address of the host process, as the kernel's read any
//! address of the kernel or of the current task. A source inside one of the run's
//! regions is read through [`Regions`](crate::Regions); any other address is read with a
//! checked copy that fails cleanly on unmapped memory (on Linux, `process_vm_readv` on
//! our own process, which answers `EFAULT` instead of faulting). On failure the
//! destination is zeroed and the helper returns `-EFAULT`, as the kernel's do. User and
//! kernel variants behave alike: in a user-space runtime both mean "this process".

use super::builtin::{BuiltinHelper, all, tracing};
use super::{HelperContext, HelperFn};
use crate::FaultKind;

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
    h(4, "probe_read", probe_read, tracing),
    h(45, "probe_read_str", probe_read_str, tracing),
    h(105, "strtol", strtol, all),
    h(106, "strtoul", strtoul, all),
    h(112, "probe_read_user", probe_read, tracing),
    h(113, "probe_read_kernel", probe_read, tracing),
    h(114, "probe_read_user_str", probe_read_str, tracing),
    h(115, "probe_read_kernel_str", probe_read_str, tracing),
    h(182, "strncmp", strncmp, all),
];

const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const ERANGE: i64 = -34;

/// Copies `out.len()` bytes at host address `addr` into `out`: through the regions when
/// the run has the bytes, else with a checked copy. `false` when some byte is unmapped.
fn host_read(ctx: &mut HelperContext<'_, '_>, addr: u64, out: &mut [u8]) -> bool {
    if out.is_empty() || ctx.regions.read_bytes(addr, out).is_ok() {
        return true;
    }
    checked_copy(addr, out) == out.len()
}

/// Copies bytes at host address `addr` into `out` without faulting; returns how many
/// leading bytes were readable.
#[cfg(target_os = "linux")]
fn checked_copy(addr: u64, out: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(addr) else {
        return 0;
    };
    if start.checked_add(out.len()).is_none() {
        return 0;
    }
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: start as *mut libc::c_void,
        iov_len: out.len(),
    };
    // SAFETY: `local` describes `out`, a writable buffer we own exclusively; the kernel
    // reads `remote` in our own address space as a foreign access and reports unmapped
    // pages as EFAULT or a short count instead of faulting; no Rust reference covers
    // what it reads from, and it writes only `out`.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(n).unwrap_or(0)
}

/// Without a checked copy, only the run's regions can be read.
#[cfg(not(target_os = "linux"))]
fn checked_copy(_addr: u64, _out: &mut [u8]) -> usize {
    0
}

/// The kernel's `strncpy_from_*_nofault` over host memory: at most `size` bytes, the
/// string and its NUL or `size - 1` bytes and a NUL; the count copied (NUL included), or
/// `None` when a byte before the end faulted.
fn host_read_str(ctx: &mut HelperContext<'_, '_>, addr: u64, size: usize) -> Option<Vec<u8>> {
    let mut s = Vec::new();
    if let Ok(found) = ctx.regions.read_cstr(addr, size, &mut s)
        && (found || s.len() == size)
    {
        return Some(finish_str(s, size));
    }
    // Page by page, so that the bytes past the NUL are never asked for.
    const PAGE: u64 = 4096;
    s.clear();
    let mut cur = addr;
    while s.len() < size {
        let page_left = (PAGE - cur % PAGE) as usize;
        let mut chunk = vec![0u8; page_left.min(size - s.len())];
        let got = checked_copy(cur, &mut chunk);
        if let Some(n) = chunk[..got].iter().position(|&b| b == 0) {
            s.extend_from_slice(&chunk[..n]);
            return Some(finish_str(s, size));
        }
        if got < chunk.len() {
            return None;
        }
        s.extend_from_slice(&chunk);
        cur = cur.checked_add(chunk.len() as u64)?;
    }
    Some(finish_str(s, size))
}

/// `s` (without NUL, at most `size` bytes) as the kernel's copy leaves it: truncated to
/// `size - 1` bytes when it filled `size`, then NUL-terminated.
fn finish_str(mut s: Vec<u8>, size: usize) -> Vec<u8> {
    s.truncate(size - 1);
    s.push(0);
    s
}

/// `bpf_probe_read{,_user,_kernel}(dst, size, unsafe_ptr)`: 0, or `-EFAULT` with `dst`
/// zeroed.
fn probe_read(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let size = usize::try_from(a[1] as u32).map_err(|_| ctx.fail("size too large"))?;
    ctx.regions.check(a[0], size, true)?;
    let mut buf = vec![0u8; size];
    let ok = host_read(ctx, a[2], &mut buf);
    if !ok {
        buf.fill(0);
    }
    ctx.regions.write_bytes(a[0], &buf)?;
    Ok(if ok { 0 } else { EFAULT as u64 })
}

/// `bpf_probe_read{,_user,_kernel}_str(dst, size, unsafe_ptr)`: the length copied with
/// its NUL (`dst` always NUL-terminated when `size > 0`; bytes past the NUL untouched),
/// 0 when `size` is 0, or `-EFAULT` with `dst` zeroed.
fn probe_read_str(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let size = usize::try_from(a[1] as u32).map_err(|_| ctx.fail("size too large"))?;
    if size == 0 {
        return Ok(0);
    }
    ctx.regions.check(a[0], size, true)?;
    match host_read_str(ctx, a[2], size) {
        Some(s) => {
            ctx.regions.write_bytes(a[0], &s)?;
            Ok(s.len() as u64)
        }
        None => {
            ctx.regions.write_bytes(a[0], &vec![0u8; size])?;
            Ok(EFAULT as u64)
        }
    }
}

/// `bpf_strncmp(s1, s1_sz, s2)`: the kernel's `strncmp(s1, s2, s1_sz)`, -1, 0 or 1
/// comparing bytes as unsigned. `s2` must be a NUL-terminated string (in the kernel a
/// read-only constant the verifier checked; here a fault when its region has no NUL).
fn strncmp(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let n = usize::try_from(a[1] as u32).map_err(|_| ctx.fail("size too large"))?;
    let s1 = ctx.read_vec(a[0], n)?;
    let mut s2 = Vec::new();
    if !ctx.regions.read_cstr(a[2], usize::MAX, &mut s2)? {
        return Err(ctx.fail("s2 is not NUL-terminated"));
    }
    s2.push(0);
    for (i, &c1) in s1.iter().enumerate() {
        let c2 = s2.get(i).copied().unwrap_or(0);
        if c1 != c2 {
            return Ok(if c1 < c2 { u64::MAX } else { 1 });
        }
        if c1 == 0 {
            break;
        }
    }
    Ok(0)
}

/// Flags bits that hold the base of `bpf_strtol`/`bpf_strtoul`.
const BPF_STRTOX_BASE_MASK: u64 = 0x1f;

/// The kernel's `__bpf_strtoull`: bytes consumed, the magnitude, and whether a `-`
/// preceded it; or the negative errno.
fn parse_strtoull(buf: &[u8], flags: u64) -> Result<(usize, u64, bool), i64> {
    let mut base = flags & BPF_STRTOX_BASE_MASK;
    if buf.is_empty() || !matches!(base, 0 | 8 | 10 | 16) || flags & !BPF_STRTOX_BASE_MASK != 0 {
        return Err(EINVAL);
    }
    let mut i = buf
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(buf.len());
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    if i == buf.len() {
        return Err(EINVAL);
    }
    // Copied into a 64-byte NUL-terminated buffer.
    let mut s: Vec<u8> = buf[i..buf.len().min(i + 63)].to_vec();
    if let Some(n) = s.iter().position(|&b| b == 0) {
        s.truncate(n);
    }
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    // _parse_integer_fixup_radix
    if base == 0 {
        base = if at(0) == b'0' {
            if at(1).eq_ignore_ascii_case(&b'x') && at(2).is_ascii_hexdigit() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    let mut p = 0;
    if base == 16 && at(0) == b'0' && at(1).eq_ignore_ascii_case(&b'x') {
        p = 2;
    }
    // _parse_integer
    let mut value: u64 = 0;
    let mut digits = 0;
    let mut overflow = false;
    while let Some(d) = (at(p + digits) as char).to_digit(16) {
        let d = u64::from(d);
        if d >= base {
            break;
        }
        match value.checked_mul(base).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => overflow = true,
        }
        digits += 1;
    }
    if overflow {
        return Err(ERANGE);
    }
    if digits == 0 {
        return Err(EINVAL);
    }
    Ok((i + p + digits, value, negative))
}

/// Reads the `buf`/`buf_len` argument and zeroes `*res` (the kernel does first).
fn strtox_args(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<Vec<u8>, FaultKind> {
    let len = usize::try_from(a[1]).map_err(|_| ctx.fail("size too large"))?;
    ctx.regions.check(a[0], len, false)?;
    ctx.regions.check(a[3], 8, true)?;
    let buf = ctx.read_vec(a[0], len)?;
    ctx.regions.store::<u64>(a[3], 0)?;
    Ok(buf)
}

/// `bpf_strtol(buf, buf_len, flags, res)`: bytes consumed with `*res` set, or a negative
/// errno with `*res` 0.
fn strtol(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let buf = strtox_args(ctx, a)?;
    let r = parse_strtoull(&buf, a[2]).and_then(|(n, v, neg)| {
        if neg {
            if (v.wrapping_neg() as i64) > 0 {
                return Err(ERANGE);
            }
            Ok((n, v.wrapping_neg()))
        } else {
            if (v as i64) < 0 {
                return Err(ERANGE);
            }
            Ok((n, v))
        }
    });
    match r {
        Ok((n, v)) => {
            ctx.regions.store::<u64>(a[3], v)?;
            Ok(n as u64)
        }
        Err(e) => Ok(e as u64),
    }
}

/// `bpf_strtoul(buf, buf_len, flags, res)`: as `bpf_strtol`, and `-EINVAL` for a `-`.
fn strtoul(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let buf = strtox_args(ctx, a)?;
    match parse_strtoull(&buf, a[2]) {
        Ok((_, _, true)) => Ok(EINVAL as u64),
        Ok((n, v, false)) => {
            ctx.regions.store::<u64>(a[3], v)?;
            Ok(n as u64)
        }
        Err(e) => Ok(e as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_follows_the_kernel() {
        assert_eq!(parse_strtoull(b"  -123abc", 0), Ok((6, 123, true)));
        assert_eq!(parse_strtoull(b"0x1F", 0), Ok((4, 31, false)));
        assert_eq!(parse_strtoull(b"0x1F", 16), Ok((4, 31, false)));
        assert_eq!(parse_strtoull(b"0x", 0), Ok((1, 0, false)));
        assert_eq!(parse_strtoull(b"017", 0), Ok((3, 15, false)));
        assert_eq!(parse_strtoull(b"19", 8), Ok((1, 1, false)));
        assert_eq!(parse_strtoull(b"12\x0034", 10), Ok((2, 12, false)));
        assert_eq!(parse_strtoull(b"18446744073709551616", 10), Err(ERANGE));
        assert_eq!(parse_strtoull(b"   ", 10), Err(EINVAL));
        assert_eq!(parse_strtoull(b"x", 10), Err(EINVAL));
        assert_eq!(parse_strtoull(b"1", 2), Err(EINVAL));
        assert_eq!(parse_strtoull(b"1", 0x20 | 10), Err(EINVAL));
    }
}
