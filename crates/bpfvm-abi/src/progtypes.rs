//! Program types (`enum bpf_prog_type`) and the layout of the context a program of each type
//! receives in `r1`, with the kernel's rules for which context fields it may read and write.
//!
//! Offsets and sizes are those of the UAPI structs (`struct xdp_md`, `struct __sk_buff`,
//! `struct bpf_raw_tracepoint_args`); the tests compare them with the kernel's BTF. The
//! read/write rules are those of the `*_is_valid_access` functions in `net/core/filter.c` and
//! `kernel/trace/bpf_trace.c` (Linux 6.18), for the fields that make sense in user space.

/// A program type, with the kernel's numbering (`enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(missing_docs)] // the variants are the kernel's BPF_PROG_TYPE_* names
pub enum ProgramType {
    Unspec = 0,
    SocketFilter = 1,
    Kprobe = 2,
    SchedCls = 3,
    SchedAct = 4,
    Tracepoint = 5,
    Xdp = 6,
    PerfEvent = 7,
    CgroupSkb = 8,
    CgroupSock = 9,
    LwtIn = 10,
    LwtOut = 11,
    LwtXmit = 12,
    SockOps = 13,
    SkSkb = 14,
    CgroupDevice = 15,
    SkMsg = 16,
    RawTracepoint = 17,
    CgroupSockAddr = 18,
    LwtSeg6local = 19,
    LircMode2 = 20,
    SkReuseport = 21,
    FlowDissector = 22,
    CgroupSysctl = 23,
    RawTracepointWritable = 24,
    CgroupSockopt = 25,
    Tracing = 26,
    StructOps = 27,
    Ext = 28,
    Lsm = 29,
    SkLookup = 30,
    Syscall = 31,
    Netfilter = 32,
}

impl ProgramType {
    /// Every program type, in numbering order (`ALL[n] as u32 == n`).
    pub const ALL: [Self; 33] = [
        Self::Unspec,
        Self::SocketFilter,
        Self::Kprobe,
        Self::SchedCls,
        Self::SchedAct,
        Self::Tracepoint,
        Self::Xdp,
        Self::PerfEvent,
        Self::CgroupSkb,
        Self::CgroupSock,
        Self::LwtIn,
        Self::LwtOut,
        Self::LwtXmit,
        Self::SockOps,
        Self::SkSkb,
        Self::CgroupDevice,
        Self::SkMsg,
        Self::RawTracepoint,
        Self::CgroupSockAddr,
        Self::LwtSeg6local,
        Self::LircMode2,
        Self::SkReuseport,
        Self::FlowDissector,
        Self::CgroupSysctl,
        Self::RawTracepointWritable,
        Self::CgroupSockopt,
        Self::Tracing,
        Self::StructOps,
        Self::Ext,
        Self::Lsm,
        Self::SkLookup,
        Self::Syscall,
        Self::Netfilter,
    ];

    /// The kernel's number.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The program type with this kernel number.
    pub fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(value).ok()?).copied()
    }

    /// The name libbpf (`libbpf_bpf_prog_type_str`) and bpftool print: the enum name without
    /// `BPF_PROG_TYPE_`, in lower case.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unspec => "unspec",
            Self::SocketFilter => "socket_filter",
            Self::Kprobe => "kprobe",
            Self::SchedCls => "sched_cls",
            Self::SchedAct => "sched_act",
            Self::Tracepoint => "tracepoint",
            Self::Xdp => "xdp",
            Self::PerfEvent => "perf_event",
            Self::CgroupSkb => "cgroup_skb",
            Self::CgroupSock => "cgroup_sock",
            Self::LwtIn => "lwt_in",
            Self::LwtOut => "lwt_out",
            Self::LwtXmit => "lwt_xmit",
            Self::SockOps => "sock_ops",
            Self::SkSkb => "sk_skb",
            Self::CgroupDevice => "cgroup_device",
            Self::SkMsg => "sk_msg",
            Self::RawTracepoint => "raw_tracepoint",
            Self::CgroupSockAddr => "cgroup_sock_addr",
            Self::LwtSeg6local => "lwt_seg6local",
            Self::LircMode2 => "lirc_mode2",
            Self::SkReuseport => "sk_reuseport",
            Self::FlowDissector => "flow_dissector",
            Self::CgroupSysctl => "cgroup_sysctl",
            Self::RawTracepointWritable => "raw_tracepoint_writable",
            Self::CgroupSockopt => "cgroup_sockopt",
            Self::Tracing => "tracing",
            Self::StructOps => "struct_ops",
            Self::Ext => "ext",
            Self::Lsm => "lsm",
            Self::SkLookup => "sk_lookup",
            Self::Syscall => "syscall",
            Self::Netfilter => "netfilter",
        }
    }

    /// The program type with this libbpf name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// What the kernel turns a context field into when the program loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rewrite {
    /// None: the program reads (or writes) the value stored at the field's offset.
    None,
    /// A 32-bit field in the UAPI struct whose load gives the program a 64-bit pointer to
    /// the first byte of packet data (`PTR_TO_PACKET`).
    PacketStart,
    /// As [`PacketStart`](Self::PacketStart), one past the last byte (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// As [`PacketStart`](Self::PacketStart), the start of the metadata area in front of the
    /// packet (`PTR_TO_PACKET_META`; equals the packet start when there is none).
    PacketMeta,
}

impl Rewrite {
    /// Whether loading the field yields a packet pointer rather than its stored value.
    pub const fn is_pointer(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Which access widths a field admits (offsets must always be aligned to the access size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessWidth {
    /// Exactly the field's size.
    Exact,
    /// The field's size; reads may also be narrower (1 or 2 bytes of a 4-byte field, at any
    /// aligned offset inside it). Writes are always the full size.
    NarrowRead,
    /// Any aligned 1, 2, 4 or 8-byte access inside the field (`cb[]`, tracepoint arguments).
    Any,
}

/// One field of a context struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContextField {
    /// The UAPI field name (`cb` for the whole `cb[5]` array).
    pub name: &'static str,
    /// Offset in bytes from the start of the context.
    pub offset: u32,
    /// Size in bytes (of the whole array for array fields).
    pub size: u32,
    /// Whether the program may read it.
    pub read: bool,
    /// Whether the program may write it.
    pub write: bool,
    /// What a load of the field gives the program.
    pub rewrite: Rewrite,
    /// Which access widths are accepted.
    pub width: AccessWidth,
}

impl ContextField {
    /// The offset one past the field.
    pub const fn end(&self) -> u32 {
        self.offset + self.size
    }
}

/// The context a program type receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLayout {
    /// The C struct (`xdp_md`, `__sk_buff`, …); for the conformance type, `"raw memory"`.
    pub struct_name: &'static str,
    /// The size of the region the program may access through the context pointer. For
    /// [`raw_memory`](Self::raw_memory) layouts this is 0: the size is the buffer's.
    pub size: u32,
    /// The fields. Offsets not covered by a field are never accessible.
    pub fields: &'static [ContextField],
    /// The context is a plain buffer the host passes (the conformance-test convention:
    /// `r1` = buffer, `r2` = its length); any in-bounds access is allowed and there are no
    /// fields.
    pub raw_memory: bool,
}

impl ContextLayout {
    /// The field containing byte `offset`.
    pub fn field_at(&self, offset: u32) -> Option<&'static ContextField> {
        self.fields
            .iter()
            .find(|f| f.offset <= offset && offset < f.end())
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static ContextField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether an access of `size` bytes at `offset` is allowed by the field rules, returning
    /// the field. Not meaningful for [`raw_memory`](Self::raw_memory) layouts (no fields).
    pub fn check_access(
        &self,
        offset: u32,
        size: u32,
        write: bool,
    ) -> Option<&'static ContextField> {
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(size) {
            return None;
        }
        let field = self.field_at(offset)?;
        if offset.checked_add(size)? > field.end() {
            return None;
        }
        if (write && !field.write) || (!write && !field.read) {
            return None;
        }
        let ok = match field.width {
            AccessWidth::Exact => size == field.size && offset == field.offset,
            AccessWidth::NarrowRead => {
                (size == field.size && offset == field.offset) || (!write && size < field.size)
            }
            AccessWidth::Any => true,
        };
        ok.then_some(field)
    }
}

const fn f(
    name: &'static str,
    offset: u32,
    size: u32,
    read: bool,
    write: bool,
    rewrite: Rewrite,
    width: AccessWidth,
) -> ContextField {
    ContextField {
        name,
        offset,
        size,
        read,
        write,
        rewrite,
        width,
    }
}

use AccessWidth::{Any, Exact, NarrowRead};
use Rewrite::{None as Plain, PacketEnd, PacketMeta, PacketStart};

/// `struct xdp_md` for `BPF_PROG_TYPE_XDP` (`xdp_is_valid_access`): every field is read-only
/// and accessed as a whole `u32`; `egress_ifindex` is readable only by programs attached to
/// devmap entries (`BPF_XDP_DEVMAP`), so not here; `rx_queue_index` is writable only by
/// device-offloaded programs, so not here.
pub static XDP_CONTEXT: ContextLayout = ContextLayout {
    struct_name: "xdp_md",
    size: 24,
    raw_memory: false,
    fields: &[
        f("data", 0, 4, true, false, PacketStart, Exact),
        f("data_end", 4, 4, true, false, PacketEnd, Exact),
        f("data_meta", 8, 4, true, false, PacketMeta, Exact),
        f("ingress_ifindex", 12, 4, true, false, Plain, Exact),
        f("rx_queue_index", 16, 4, true, false, Plain, Exact),
        f("egress_ifindex", 20, 4, false, false, Plain, Exact),
    ],
};

/// `struct __sk_buff` for `BPF_PROG_TYPE_SOCKET_FILTER` (`sk_filter_is_valid_access` then
/// `bpf_skb_is_valid_access`): no packet pointers, no `tc_classid`, socket fields, `tstamp`,
/// `wire_len` or `hwtstamp`; only `cb[]` is writable.
pub static SOCKET_FILTER_CONTEXT: ContextLayout = ContextLayout {
    struct_name: "__sk_buff",
    size: 192,
    raw_memory: false,
    fields: &[
        f("len", 0, 4, true, false, Plain, NarrowRead),
        f("pkt_type", 4, 4, true, false, Plain, NarrowRead),
        f("mark", 8, 4, true, false, Plain, NarrowRead),
        f("queue_mapping", 12, 4, true, false, Plain, NarrowRead),
        f("protocol", 16, 4, true, false, Plain, NarrowRead),
        f("vlan_present", 20, 4, true, false, Plain, NarrowRead),
        f("vlan_tci", 24, 4, true, false, Plain, NarrowRead),
        f("vlan_proto", 28, 4, true, false, Plain, NarrowRead),
        f("priority", 32, 4, true, false, Plain, NarrowRead),
        f("ingress_ifindex", 36, 4, true, false, Plain, NarrowRead),
        f("ifindex", 40, 4, true, false, Plain, NarrowRead),
        f("tc_index", 44, 4, true, false, Plain, NarrowRead),
        f("cb", 48, 20, true, true, Plain, Any),
        f("hash", 68, 4, true, false, Plain, NarrowRead),
        f("tc_classid", 72, 4, false, false, Plain, NarrowRead),
        f("data", 76, 4, false, false, PacketStart, Exact),
        f("data_end", 80, 4, false, false, PacketEnd, Exact),
        f("napi_id", 84, 4, true, false, Plain, NarrowRead),
        f("family", 88, 4, false, false, Plain, NarrowRead),
        f("remote_ip4", 92, 4, false, false, Plain, Exact),
        f("local_ip4", 96, 4, false, false, Plain, Exact),
        f("remote_ip6", 100, 16, false, false, Plain, Exact),
        f("local_ip6", 116, 16, false, false, Plain, Exact),
        f("remote_port", 132, 4, false, false, Plain, NarrowRead),
        f("local_port", 136, 4, false, false, Plain, NarrowRead),
        f("data_meta", 140, 4, false, false, PacketMeta, Exact),
        f("tstamp", 152, 8, false, false, Plain, Exact),
        f("wire_len", 160, 4, false, false, Plain, NarrowRead),
        f("gso_segs", 164, 4, true, false, Plain, NarrowRead),
        f("gso_size", 176, 4, true, false, Plain, NarrowRead),
        f("tstamp_type", 180, 1, false, false, Plain, Exact),
        f("hwtstamp", 184, 8, false, false, Plain, Exact),
    ],
};

/// `struct __sk_buff` for `BPF_PROG_TYPE_SCHED_CLS` and `BPF_PROG_TYPE_SCHED_ACT`
/// (`tc_cls_act_is_valid_access` then `bpf_skb_is_valid_access`): packet pointers
/// including `data_meta`; writable `mark`, `tc_index`, `priority`, `tc_classid`, `cb[]`,
/// `tstamp`, `queue_mapping`; no socket fields; `tstamp_type` is a 1-byte read.
pub static TC_CONTEXT: ContextLayout = ContextLayout {
    struct_name: "__sk_buff",
    size: 192,
    raw_memory: false,
    fields: &[
        f("len", 0, 4, true, false, Plain, NarrowRead),
        f("pkt_type", 4, 4, true, false, Plain, NarrowRead),
        f("mark", 8, 4, true, true, Plain, NarrowRead),
        f("queue_mapping", 12, 4, true, true, Plain, NarrowRead),
        f("protocol", 16, 4, true, false, Plain, NarrowRead),
        f("vlan_present", 20, 4, true, false, Plain, NarrowRead),
        f("vlan_tci", 24, 4, true, false, Plain, NarrowRead),
        f("vlan_proto", 28, 4, true, false, Plain, NarrowRead),
        f("priority", 32, 4, true, true, Plain, NarrowRead),
        f("ingress_ifindex", 36, 4, true, false, Plain, NarrowRead),
        f("ifindex", 40, 4, true, false, Plain, NarrowRead),
        f("tc_index", 44, 4, true, true, Plain, NarrowRead),
        f("cb", 48, 20, true, true, Plain, Any),
        f("hash", 68, 4, true, false, Plain, NarrowRead),
        f("tc_classid", 72, 4, true, true, Plain, NarrowRead),
        f("data", 76, 4, true, false, PacketStart, Exact),
        f("data_end", 80, 4, true, false, PacketEnd, Exact),
        f("napi_id", 84, 4, true, false, Plain, NarrowRead),
        f("family", 88, 4, false, false, Plain, NarrowRead),
        f("remote_ip4", 92, 4, false, false, Plain, Exact),
        f("local_ip4", 96, 4, false, false, Plain, Exact),
        f("remote_ip6", 100, 16, false, false, Plain, Exact),
        f("local_ip6", 116, 16, false, false, Plain, Exact),
        f("remote_port", 132, 4, false, false, Plain, NarrowRead),
        f("local_port", 136, 4, false, false, Plain, NarrowRead),
        f("data_meta", 140, 4, true, false, PacketMeta, Exact),
        f("tstamp", 152, 8, true, true, Plain, Exact),
        f("wire_len", 160, 4, true, false, Plain, NarrowRead),
        f("gso_segs", 164, 4, true, false, Plain, NarrowRead),
        f("gso_size", 176, 4, true, false, Plain, NarrowRead),
        f("tstamp_type", 180, 1, true, false, Plain, Exact),
        f("hwtstamp", 184, 8, true, false, Plain, Exact),
    ],
};

/// `struct bpf_raw_tracepoint_args { __u64 args[0]; }` for `BPF_PROG_TYPE_RAW_TRACEPOINT`
/// (`bpf_tracing_ctx_access`): up to `MAX_BPF_FUNC_ARGS` (12) `u64` arguments, read-only, any
/// aligned width. How many the tracepoint really passes depends on the tracepoint.
pub static RAW_TRACEPOINT_CONTEXT: ContextLayout = ContextLayout {
    struct_name: "bpf_raw_tracepoint_args",
    size: 96,
    raw_memory: false,
    fields: &[f("args", 0, 96, true, false, Plain, Any)],
};

/// The conformance-test context: `r1` points to a plain memory buffer (`r2` holds its
/// length) that the program may read and write anywhere in bounds. Not a kernel type.
pub static CONFORMANCE_CONTEXT: ContextLayout = ContextLayout {
    struct_name: "raw memory",
    size: 0,
    raw_memory: true,
    fields: &[],
};

/// The context layout bpfvm implements for a kernel program type, if any.
pub fn context_layout(program_type: ProgramType) -> Option<&'static ContextLayout> {
    match program_type {
        ProgramType::Xdp => Some(&XDP_CONTEXT),
        ProgramType::SocketFilter => Some(&SOCKET_FILTER_CONTEXT),
        ProgramType::SchedCls | ProgramType::SchedAct => Some(&TC_CONTEXT),
        ProgramType::RawTracepoint => Some(&RAW_TRACEPOINT_CONTEXT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_and_names_round_trip() {
        for (n, t) in ProgramType::ALL.iter().enumerate() {
            assert_eq!(t.as_u32() as usize, n);
            assert_eq!(ProgramType::from_u32(t.as_u32()), Some(*t));
            assert_eq!(ProgramType::from_name(t.name()), Some(*t));
        }
        assert_eq!(ProgramType::from_u32(33), None);
    }

    #[test]
    fn fields_are_sorted_and_disjoint() {
        for l in [
            &XDP_CONTEXT,
            &SOCKET_FILTER_CONTEXT,
            &TC_CONTEXT,
            &RAW_TRACEPOINT_CONTEXT,
        ] {
            for w in l.fields.windows(2) {
                assert!(w[0].end() <= w[1].offset, "{} {}", l.struct_name, w[1].name);
            }
            assert!(l.fields.iter().all(|f| f.end() <= l.size));
        }
    }
}
