//! libbpf's `SEC()` names: which program type (and expected attach type) a section means.

/// What a program section says about its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramKind {
    /// The libbpf section-name prefix that matched (`"xdp"`, `"kprobe"`…), or `None` for a
    /// custom section name.
    pub sec_def: Option<&'static str>,
    /// The kernel's program type (`enum bpf_prog_type`), 0 when the name says nothing.
    pub prog_type: u32,
    /// The kernel's expected attach type (`enum bpf_attach_type`), 0 when none applies.
    pub expected_attach_type: u32,
    /// What follows the prefix: the kprobe's function, the tracepoint, the BTF target of
    /// `fentry`/`lsm`/`tp_btf`…
    pub attach_target: Option<String>,
    /// `.s` sections: the program may sleep (`BPF_F_SLEEPABLE`).
    pub sleepable: bool,
    /// `xdp.frags` and friends: `BPF_F_XDP_HAS_FRAGS`.
    pub frags: bool,
    /// The attach target is resolved by BTF id in the kernel (`fentry`, `lsm`, `tp_btf`…).
    pub needs_attach_btf_id: bool,
}

impl ProgramKind {
    /// A short name of the program type (`xdp`, `kprobe`, …, or `unspec`).
    pub fn type_name(&self) -> &'static str {
        PROG_TYPE_NAMES
            .get(self.prog_type as usize)
            .copied()
            .unwrap_or("unknown")
    }
}

/// `enum bpf_prog_type`, by value.
pub const PROG_TYPE_NAMES: [&str; 33] = [
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// How a table entry matches a section name.
#[derive(Clone, Copy)]
enum Match {
    /// The name itself, or the name followed by `/anything`.
    Name,
    /// A prefix; what follows is the attach target.
    Prefix,
}

struct SecDef {
    name: &'static str,
    how: Match,
    prog_type: u32,
    attach: u32,
    sleepable: bool,
    btf_id: bool,
    frags: bool,
}

const fn def(name: &'static str, how: Match, prog_type: u32, attach: u32) -> SecDef {
    SecDef {
        name,
        how,
        prog_type,
        attach,
        sleepable: false,
        btf_id: false,
        frags: false,
    }
}

const fn btf(name: &'static str, prog_type: u32, attach: u32, sleepable: bool) -> SecDef {
    SecDef {
        name,
        how: Match::Prefix,
        prog_type,
        attach,
        sleepable,
        btf_id: true,
        frags: false,
    }
}

// Program types.
const SOCKET_FILTER: u32 = 1;
const KPROBE: u32 = 2;
const SCHED_CLS: u32 = 3;
const SCHED_ACT: u32 = 4;
const TRACEPOINT: u32 = 5;
const XDP: u32 = 6;
const PERF_EVENT: u32 = 7;
const CGROUP_SKB: u32 = 8;
const CGROUP_SOCK: u32 = 9;
const SOCK_OPS: u32 = 13;
const SK_SKB: u32 = 14;
const CGROUP_DEVICE: u32 = 15;
const SK_MSG: u32 = 16;
const RAW_TRACEPOINT: u32 = 17;
const CGROUP_SOCK_ADDR: u32 = 18;
const FLOW_DISSECTOR: u32 = 22;
const CGROUP_SYSCTL: u32 = 23;
const RAW_TRACEPOINT_WRITABLE: u32 = 24;
const CGROUP_SOCKOPT: u32 = 25;
const TRACING: u32 = 26;
const STRUCT_OPS: u32 = 27;
const EXT: u32 = 28;
const LSM: u32 = 29;
const SK_LOOKUP: u32 = 30;
const SYSCALL: u32 = 31;
const NETFILTER: u32 = 32;

// Attach types.
const INGRESS: u32 = 0;
const EGRESS: u32 = 1;
const SOCK_CREATE: u32 = 2;
const CGROUP_SOCK_OPS: u32 = 3;
const STREAM_PARSER: u32 = 4;
const STREAM_VERDICT: u32 = 5;
const DEVICE: u32 = 6;
const MSG_VERDICT: u32 = 7;
const INET4_BIND: u32 = 8;
const INET6_BIND: u32 = 9;
const INET4_CONNECT: u32 = 10;
const INET6_CONNECT: u32 = 11;
const SYSCTL: u32 = 18;
const GETSOCKOPT: u32 = 21;
const SETSOCKOPT: u32 = 22;
const TRACE_RAW_TP: u32 = 23;
const FENTRY: u32 = 24;
const FEXIT: u32 = 25;
const MODIFY_RETURN: u32 = 26;
const LSM_MAC: u32 = 27;
const TRACE_ITER: u32 = 28;
const SOCK_RELEASE: u32 = 34;
const ATTACH_SK_LOOKUP: u32 = 36;
const ATTACH_XDP: u32 = 37;
const ATTACH_FLOW_DISSECTOR: u32 = 17;
const ATTACH_NETFILTER: u32 = 45;

/// libbpf's table, most specific names first (the first match wins).
const SEC_DEFS: &[SecDef] = &[
    def("socket", Match::Name, SOCKET_FILTER, 0),
    def("sk_reuseport", Match::Name, 21, 0),
    def("kprobe.multi", Match::Prefix, KPROBE, 42),
    def("kretprobe.multi", Match::Prefix, KPROBE, 42),
    def("uprobe.multi", Match::Prefix, KPROBE, 48),
    def("kprobe", Match::Name, KPROBE, 0),
    def("kretprobe", Match::Name, KPROBE, 0),
    def("uprobe.s", Match::Name, KPROBE, 0),
    def("uretprobe.s", Match::Name, KPROBE, 0),
    def("uprobe", Match::Name, KPROBE, 0),
    def("uretprobe", Match::Name, KPROBE, 0),
    def("ksyscall", Match::Name, KPROBE, 0),
    def("kretsyscall", Match::Name, KPROBE, 0),
    def("usdt", Match::Name, KPROBE, 0),
    def("tc/ingress", Match::Name, SCHED_CLS, 46),
    def("tc/egress", Match::Name, SCHED_CLS, 47),
    def("tcx/ingress", Match::Name, SCHED_CLS, 46),
    def("tcx/egress", Match::Name, SCHED_CLS, 47),
    def("tc", Match::Name, SCHED_CLS, 0),
    def("classifier", Match::Name, SCHED_CLS, 0),
    def("action", Match::Name, SCHED_ACT, 0),
    def("tracepoint", Match::Name, TRACEPOINT, 0),
    def("tp", Match::Name, TRACEPOINT, 0),
    def("raw_tracepoint.w", Match::Name, RAW_TRACEPOINT_WRITABLE, 0),
    def("raw_tp.w", Match::Name, RAW_TRACEPOINT_WRITABLE, 0),
    def("raw_tracepoint", Match::Name, RAW_TRACEPOINT, 0),
    def("raw_tp", Match::Name, RAW_TRACEPOINT, 0),
    btf("tp_btf/", TRACING, TRACE_RAW_TP, false),
    btf("fentry.s/", TRACING, FENTRY, true),
    btf("fmod_ret.s/", TRACING, MODIFY_RETURN, true),
    btf("fexit.s/", TRACING, FEXIT, true),
    btf("fentry/", TRACING, FENTRY, false),
    btf("fmod_ret/", TRACING, MODIFY_RETURN, false),
    btf("fexit/", TRACING, FEXIT, false),
    btf("freplace/", EXT, 0, false),
    btf("lsm.s/", LSM, LSM_MAC, true),
    btf("lsm_cgroup/", LSM, 43, false),
    btf("lsm/", LSM, LSM_MAC, false),
    btf("iter.s/", TRACING, TRACE_ITER, true),
    btf("iter/", TRACING, TRACE_ITER, false),
    def("syscall", Match::Name, SYSCALL, 0),
    def("xdp.frags/devmap", Match::Name, XDP, 33),
    def("xdp/devmap", Match::Name, XDP, 33),
    def("xdp.frags/cpumap", Match::Name, XDP, 35),
    def("xdp/cpumap", Match::Name, XDP, 35),
    SecDef {
        frags: true,
        ..def("xdp.frags", Match::Name, XDP, ATTACH_XDP)
    },
    def("xdp", Match::Name, XDP, ATTACH_XDP),
    def("perf_event", Match::Name, PERF_EVENT, 0),
    def("cgroup_skb/ingress", Match::Name, CGROUP_SKB, INGRESS),
    def("cgroup_skb/egress", Match::Name, CGROUP_SKB, EGRESS),
    def("cgroup/skb", Match::Name, CGROUP_SKB, 0),
    def("cgroup/sock_create", Match::Name, CGROUP_SOCK, SOCK_CREATE),
    def(
        "cgroup/sock_release",
        Match::Name,
        CGROUP_SOCK,
        SOCK_RELEASE,
    ),
    def("cgroup/sock", Match::Name, CGROUP_SOCK, SOCK_CREATE),
    def("cgroup/dev", Match::Name, CGROUP_DEVICE, DEVICE),
    def("sockops", Match::Name, SOCK_OPS, CGROUP_SOCK_OPS),
    def("sk_skb/stream_parser", Match::Name, SK_SKB, STREAM_PARSER),
    def("sk_skb/stream_verdict", Match::Name, SK_SKB, STREAM_VERDICT),
    def("sk_skb", Match::Name, SK_SKB, 0),
    def("sk_msg", Match::Name, SK_MSG, MSG_VERDICT),
    def(
        "flow_dissector",
        Match::Name,
        FLOW_DISSECTOR,
        ATTACH_FLOW_DISSECTOR,
    ),
    def("cgroup/bind4", Match::Name, CGROUP_SOCK_ADDR, INET4_BIND),
    def("cgroup/bind6", Match::Name, CGROUP_SOCK_ADDR, INET6_BIND),
    def(
        "cgroup/connect4",
        Match::Name,
        CGROUP_SOCK_ADDR,
        INET4_CONNECT,
    ),
    def(
        "cgroup/connect6",
        Match::Name,
        CGROUP_SOCK_ADDR,
        INET6_CONNECT,
    ),
    def("cgroup/sysctl", Match::Name, CGROUP_SYSCTL, SYSCTL),
    def("cgroup/getsockopt", Match::Name, CGROUP_SOCKOPT, GETSOCKOPT),
    def("cgroup/setsockopt", Match::Name, CGROUP_SOCKOPT, SETSOCKOPT),
    def("struct_ops.s", Match::Name, STRUCT_OPS, 0),
    def("struct_ops", Match::Name, STRUCT_OPS, 0),
    def("sk_lookup", Match::Name, SK_LOOKUP, ATTACH_SK_LOOKUP),
    def("netfilter", Match::Name, NETFILTER, ATTACH_NETFILTER),
];

/// What libbpf would make of a program in section `name`.
pub fn classify(name: &str) -> ProgramKind {
    for d in SEC_DEFS {
        let target = match d.how {
            Match::Prefix => name.strip_prefix(d.name).map(str::to_string),
            Match::Name if name == d.name => Some(String::new()),
            Match::Name => name
                .strip_prefix(d.name)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(str::to_string),
        };
        if let Some(target) = target {
            let sleepable = d.sleepable || d.name.ends_with(".s");
            return ProgramKind {
                sec_def: Some(d.name.trim_end_matches('/')),
                prog_type: d.prog_type,
                expected_attach_type: d.attach,
                attach_target: (!target.is_empty()).then_some(target),
                sleepable,
                frags: d.frags || name.starts_with("xdp.frags"),
                needs_attach_btf_id: d.btf_id,
            };
        }
    }
    ProgramKind {
        sec_def: None,
        prog_type: 0,
        expected_attach_type: 0,
        attach_target: None,
        sleepable: false,
        frags: false,
        needs_attach_btf_id: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_section_names() {
        let k = classify("xdp");
        assert_eq!((k.type_name(), k.expected_attach_type), ("xdp", 37));
        assert_eq!(classify("socket").type_name(), "socket_filter");
        assert_eq!(classify("tc").type_name(), "sched_cls");
        assert_eq!(classify("classifier").type_name(), "sched_cls");
        let k = classify("kprobe/do_sys_openat2");
        assert_eq!(
            (k.type_name(), k.attach_target.as_deref()),
            ("kprobe", Some("do_sys_openat2"))
        );
        let k = classify("tracepoint/syscalls/sys_enter_openat");
        assert_eq!(
            (k.type_name(), k.attach_target.as_deref()),
            ("tracepoint", Some("syscalls/sys_enter_openat"))
        );
        let k = classify("fentry/do_sys_openat2");
        assert_eq!(
            (k.type_name(), k.expected_attach_type, k.needs_attach_btf_id),
            ("tracing", 24, true)
        );
        let k = classify("lsm.s/file_open");
        assert_eq!(
            (k.type_name(), k.sleepable, k.expected_attach_type),
            ("lsm", true, 27)
        );
        assert_eq!(classify("raw_tp/sys_enter").type_name(), "raw_tracepoint");
        assert_eq!(classify("tp_btf/sched_switch").expected_attach_type, 23);
        assert!(classify("xdp.frags").frags);
        // Not a prefix match on a longer word.
        assert_eq!(classify("xdpfoo").prog_type, 0);
        assert_eq!(classify("my_custom_section").sec_def, None);
        assert_eq!(classify("perf_event").type_name(), "perf_event");
    }
}
