//! Helpers that read the environment: clocks, random numbers, the CPU slot, the task.

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
    h(5, "ktime_get_ns", |c, _| Ok(c.run.env.ktime_ns()), all),
    h(
        7,
        "get_prandom_u32",
        |c, _| Ok(u64::from(c.run.env.random_u32())),
        all,
    ),
    h(8, "get_smp_processor_id", |c, _| Ok(c.run.cpu as u64), all),
    h(14, "get_current_pid_tgid", get_current_pid_tgid, tracing),
    h(15, "get_current_uid_gid", get_current_uid_gid, tracing),
    h(16, "get_current_comm", get_current_comm, tracing),
    h(
        125,
        "ktime_get_boot_ns",
        |c, _| Ok(c.run.env.boot_ns()),
        all,
    ),
];

fn get_current_pid_tgid(ctx: &mut HelperContext<'_, '_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    let t = ctx.run.env.task();
    Ok(u64::from(t.tgid) << 32 | u64::from(t.pid))
}

fn get_current_uid_gid(ctx: &mut HelperContext<'_, '_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    let t = ctx.run.env.task();
    Ok(u64::from(t.gid) << 32 | u64::from(t.uid))
}

/// `bpf_get_current_comm(buf, size)`: the kernel's `strscpy_pad`: at most `size - 1`
/// bytes of the name, NUL-terminated, the rest of `buf` zeroed; 0.
fn get_current_comm(ctx: &mut HelperContext<'_, '_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let size = usize::try_from(a[1]).map_err(|_| ctx.fail("size too large"))?;
    if size == 0 {
        return Ok((-22i64) as u64);
    }
    // Check the destination before allocating a program-chosen size.
    ctx.regions.check(a[0], size, true)?;
    let comm = ctx.run.env.task().comm;
    let name_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let mut out = vec![0u8; size];
    let n = name_len.min(size - 1);
    out[..n].copy_from_slice(&comm[..n]);
    ctx.regions.write_bytes(a[0], &out)?;
    Ok(0)
}
