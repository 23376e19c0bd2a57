//! The table of bpfvm's own helper implementations, with the program types the kernel
//! offers each to. The implementations live in the sibling modules by area.

use bpfvm_abi::ProgramType as KernelType;

use super::{HelperFn, is_tracing};

/// One of bpfvm's helper implementations.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinHelper {
    /// The kernel's id.
    pub id: u32,
    /// The kernel's name without `bpf_`.
    pub name: &'static str,
    /// The implementation.
    pub func: HelperFn,
    /// Whether the kernel offers it to a program type.
    pub available: fn(KernelType) -> bool,
}

/// Every program type.
pub(crate) fn all(_: KernelType) -> bool {
    true
}

/// Tracing program types (kprobe, tracepoint, raw tracepoint, perf event, tracing, LSM).
pub(crate) fn tracing(t: KernelType) -> bool {
    is_tracing(t)
}

/// Types whose context carries a packet (XDP, socket filter, tc).
pub(crate) fn packet(t: KernelType) -> bool {
    matches!(
        t,
        KernelType::Xdp | KernelType::SocketFilter | KernelType::SchedCls | KernelType::SchedAct
    )
}

/// `__sk_buff` types.
pub(crate) fn skb(t: KernelType) -> bool {
    matches!(
        t,
        KernelType::SocketFilter | KernelType::SchedCls | KernelType::SchedAct
    )
}

/// XDP only.
pub(crate) fn xdp(t: KernelType) -> bool {
    t == KernelType::Xdp
}

/// Tracing and packet types (`bpf_perf_event_output`).
pub(crate) fn tracing_or_packet(t: KernelType) -> bool {
    tracing(t) || packet(t)
}

/// Every builtin helper, from each area's table, by increasing id within an area.
pub static BUILTIN_HELPERS: std::sync::LazyLock<Vec<BuiltinHelper>> =
    std::sync::LazyLock::new(|| {
        let mut v: Vec<BuiltinHelper> = [
            super::maps::HELPERS,
            super::basic::HELPERS,
            super::control::HELPERS,
            super::packet::HELPERS,
            super::csum::HELPERS,
            super::printk::HELPERS,
            super::memory::HELPERS,
            super::events::HELPERS,
        ]
        .concat();
        v.sort_by_key(|h| h.id);
        v
    });
