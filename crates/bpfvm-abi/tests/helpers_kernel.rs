//! The helper table against independent truth:
//! - ids and names against the kernel's own BTF (`enum bpf_func_id`), from a committed
//!   excerpt of `bpftool btf dump file /sys/kernel/btf/vmlinux format c` (Linux 6.18) and,
//!   when bpftool is present, from the running kernel;
//! - the encoding of argument/return kinds against the kernel's `enum bpf_arg_type`,
//!   `enum bpf_return_type` and `enum bpf_type_flag` (same excerpt);
//! - argument counts and pointer-ness against libbpf 1.1's `bpf_helper_defs.h` (committed
//!   copy of `/usr/include/bpf/bpf_helper_defs.h`).

use std::collections::BTreeMap;

mod common;
use common::bpftool_btf;

use bpfvm_abi::{ArgKind, HELPERS, HelperId, RetKind, TypeFlags, helper_by_id, helper_by_name};

const BTF_ENUMS: &str = include_str!("data/vmlinux_btf_enums.h");
const HELPER_DEFS: &str = include_str!("data/bpf_helper_defs.h");

/// `NAME = value` pairs of one `enum <name> { ... };` in C as bpftool prints it.
fn c_enum(text: &str, name: &str) -> Vec<(String, u64)> {
    let start = format!("enum {name} {{");
    let body = text
        .split_once(&start)
        .unwrap_or_else(|| panic!("enum {name} not found"))
        .1;
    let body = body.split_once("};").expect("unterminated enum").0;
    body.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().trim_end_matches(',').split_once(" = ")?;
            Some((k.to_string(), v.parse().expect("enum value")))
        })
        .collect()
}

/// `name -> id` of the kernel's helpers (`BPF_FUNC_<name>`), without `unspec` and the max.
fn func_ids(text: &str) -> BTreeMap<String, u32> {
    c_enum(text, "bpf_func_id")
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("BPF_FUNC_")?;
            (name != "unspec").then(|| (name.to_string(), u32::try_from(v).expect("id")))
        })
        .collect()
}

fn assert_table_matches(kernel: &BTreeMap<String, u32>, what: &str) {
    for (name, &id) in kernel {
        let h = helper_by_name(name).unwrap_or_else(|| panic!("{what}: {name} missing"));
        assert_eq!(h.id, HelperId(id), "{what}: id of {name}");
        assert_eq!(
            helper_by_id(HelperId(id)).map(|h| h.name),
            Some(name.as_str())
        );
    }
    for h in HELPERS {
        assert_eq!(
            kernel.get(h.name),
            Some(&h.id.0),
            "{what}: {} not in kernel",
            h.name
        );
    }
    assert_eq!(kernel.len(), HELPERS.len());
}

#[test]
fn ids_and_names_match_golden_btf() {
    let kernel = func_ids(BTF_ENUMS);
    assert_eq!(kernel.len(), 211);
    assert_table_matches(&kernel, "golden BTF");
}

#[test]
fn ids_and_names_match_live_btf() {
    let Some(text) = bpftool_btf("c") else { return };
    assert_table_matches(&func_ids(&text), "live BTF");
}

#[test]
fn kind_encodings_match_kernel_enums() {
    let arg: BTreeMap<_, _> = c_enum(BTF_ENUMS, "bpf_arg_type").into_iter().collect();
    let ret: BTreeMap<_, _> = c_enum(BTF_ENUMS, "bpf_return_type").into_iter().collect();
    let flag: BTreeMap<_, _> = c_enum(BTF_ENUMS, "bpf_type_flag").into_iter().collect();
    let a = |k: &str| u32::try_from(arg[k]).expect("u32");
    let r = |k: &str| u32::try_from(ret[k]).expect("u32");
    let f = |k: &str| u32::try_from(flag[k]).expect("u32");

    for (name, flags) in [
        ("PTR_MAYBE_NULL", TypeFlags::MAYBE_NULL),
        ("MEM_RDONLY", TypeFlags::RDONLY),
        ("MEM_RINGBUF", TypeFlags::RINGBUF),
        ("MEM_USER", TypeFlags::USER),
        ("MEM_PERCPU", TypeFlags::PERCPU),
        ("OBJ_RELEASE", TypeFlags::RELEASE),
        ("PTR_UNTRUSTED", TypeFlags::UNTRUSTED),
        ("MEM_UNINIT", TypeFlags::UNINIT),
        ("DYNPTR_TYPE_LOCAL", TypeFlags::DYNPTR_LOCAL),
        ("DYNPTR_TYPE_RINGBUF", TypeFlags::DYNPTR_RINGBUF),
        ("MEM_FIXED_SIZE", TypeFlags::FIXED_SIZE),
        ("MEM_ALLOC", TypeFlags::ALLOC),
        ("PTR_TRUSTED", TypeFlags::TRUSTED),
        ("MEM_RCU", TypeFlags::RCU),
        ("MEM_ALIGNED", TypeFlags::ALIGNED),
        ("MEM_WRITE", TypeFlags::WRITE),
    ] {
        assert_eq!(flags.bits(), f(name), "{name}");
    }

    let n = TypeFlags::NONE;
    for (name, kind) in [
        ("ARG_DONTCARE", ArgKind::DontCare),
        ("ARG_CONST_MAP_PTR", ArgKind::ConstMapPtr),
        ("ARG_PTR_TO_MAP_KEY", ArgKind::PtrToMapKey(n)),
        ("ARG_PTR_TO_MAP_VALUE", ArgKind::PtrToMapValue(n)),
        ("ARG_PTR_TO_MEM", ArgKind::PtrToMem(n)),
        ("ARG_PTR_TO_ARENA", ArgKind::PtrToArena),
        ("ARG_CONST_SIZE", ArgKind::ConstSize),
        ("ARG_CONST_SIZE_OR_ZERO", ArgKind::ConstSizeOrZero),
        ("ARG_PTR_TO_CTX", ArgKind::PtrToCtx(n)),
        ("ARG_ANYTHING", ArgKind::Anything),
        ("ARG_PTR_TO_SPIN_LOCK", ArgKind::PtrToSpinLock),
        ("ARG_PTR_TO_SOCK_COMMON", ArgKind::PtrToSockCommon),
        ("ARG_PTR_TO_SOCKET", ArgKind::PtrToSocket(n)),
        ("ARG_PTR_TO_BTF_ID", ArgKind::PtrToBtfId(n)),
        ("ARG_PTR_TO_RINGBUF_MEM", ArgKind::PtrToRingbufMem(n)),
        (
            "ARG_CONST_ALLOC_SIZE_OR_ZERO",
            ArgKind::ConstAllocSizeOrZero,
        ),
        (
            "ARG_PTR_TO_BTF_ID_SOCK_COMMON",
            ArgKind::PtrToBtfIdSockCommon,
        ),
        ("ARG_PTR_TO_PERCPU_BTF_ID", ArgKind::PtrToPercpuBtfId),
        ("ARG_PTR_TO_FUNC", ArgKind::PtrToFunc),
        ("ARG_PTR_TO_STACK", ArgKind::PtrToStack(n)),
        ("ARG_PTR_TO_CONST_STR", ArgKind::PtrToConstStr),
        ("ARG_PTR_TO_TIMER", ArgKind::PtrToTimer),
        ("ARG_KPTR_XCHG_DEST", ArgKind::KptrXchgDest),
        ("ARG_PTR_TO_DYNPTR", ArgKind::PtrToDynptr(n)),
        (
            "ARG_PTR_TO_MAP_VALUE_OR_NULL",
            ArgKind::PtrToMapValue(TypeFlags::MAYBE_NULL),
        ),
        (
            "ARG_PTR_TO_MEM_OR_NULL",
            ArgKind::PtrToMem(TypeFlags::MAYBE_NULL),
        ),
        (
            "ARG_PTR_TO_CTX_OR_NULL",
            ArgKind::PtrToCtx(TypeFlags::MAYBE_NULL),
        ),
        (
            "ARG_PTR_TO_SOCKET_OR_NULL",
            ArgKind::PtrToSocket(TypeFlags::MAYBE_NULL),
        ),
        ("ARG_PTR_TO_STACK_OR_NULL", ArgKind::PTR_TO_STACK_OR_NULL),
        (
            "ARG_PTR_TO_BTF_ID_OR_NULL",
            ArgKind::PtrToBtfId(TypeFlags::MAYBE_NULL),
        ),
        ("ARG_PTR_TO_UNINIT_MEM", ArgKind::PTR_TO_UNINIT_MEM),
        (
            "ARG_PTR_TO_FIXED_SIZE_MEM",
            ArgKind::PtrToFixedSizeMem { size: 8, flags: n },
        ),
    ] {
        assert_eq!(kind.kernel_code(), a(name), "{name}");
    }
    for (name, kind) in [
        ("RET_INTEGER", RetKind::Integer),
        ("RET_VOID", RetKind::Void),
        ("RET_PTR_TO_MAP_VALUE", RetKind::PtrToMapValue(n)),
        ("RET_PTR_TO_SOCKET", RetKind::PtrToSocket(n)),
        ("RET_PTR_TO_TCP_SOCK", RetKind::PtrToTcpSock(n)),
        ("RET_PTR_TO_SOCK_COMMON", RetKind::PtrToSockCommon(n)),
        ("RET_PTR_TO_MEM", RetKind::PtrToMem(n)),
        ("RET_PTR_TO_MEM_OR_BTF_ID", RetKind::PtrToMemOrBtfId(n)),
        ("RET_PTR_TO_BTF_ID", RetKind::PtrToBtfId(n)),
        (
            "RET_PTR_TO_MAP_VALUE_OR_NULL",
            RetKind::PtrToMapValue(TypeFlags::MAYBE_NULL),
        ),
        (
            "RET_PTR_TO_RINGBUF_MEM_OR_NULL",
            RetKind::PtrToMem(TypeFlags::RINGBUF.union(TypeFlags::MAYBE_NULL)),
        ),
        (
            "RET_PTR_TO_DYNPTR_MEM_OR_NULL",
            RetKind::PtrToMem(TypeFlags::MAYBE_NULL),
        ),
        (
            "RET_PTR_TO_BTF_ID_OR_NULL",
            RetKind::PtrToBtfId(TypeFlags::MAYBE_NULL),
        ),
        (
            "RET_PTR_TO_BTF_ID_TRUSTED",
            RetKind::PtrToBtfId(TypeFlags::TRUSTED),
        ),
    ] {
        assert_eq!(kind.kernel_code(), r(name), "{name}");
    }
}

/// One declaration of `bpf_helper_defs.h`.
#[derive(Debug)]
struct CDecl {
    id: u32,
    ret_is_pointer: bool,
    /// For each named parameter: whether its C type is a pointer.
    params: Vec<bool>,
    variadic: bool,
}

/// `name -> declaration` from lines `static <ret> (*bpf_<name>)(<params>) = (void *) <id>;`.
fn helper_defs(text: &str) -> BTreeMap<String, CDecl> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("static ")) {
        let Some((decl, id)) = line.split_once(" = (void *) ") else {
            continue;
        };
        let id: u32 = id.trim_end_matches(';').parse().expect("helper id");
        let (ret, rest) = decl.split_once("(*bpf_").expect("(*bpf_");
        let (name, params) = rest.split_once(")(").expect(")(");
        let params = params.strip_suffix(')').expect("closing paren");
        let mut variadic = false;
        let params = if params == "void" {
            Vec::new()
        } else {
            params
                .split(", ")
                .filter(|p| {
                    let dots = *p == "...";
                    variadic |= dots;
                    !dots
                })
                .map(|p| p.contains('*'))
                .collect()
        };
        let ret_is_pointer = ret.contains('*');
        out.insert(
            name.to_string(),
            CDecl {
                id,
                ret_is_pointer,
                params,
                variadic,
            },
        );
    }
    out
}

/// (helper, argument index) where the kernel's prototype says `ARG_ANYTHING` for a parameter
/// the C declaration types as a pointer: the helper reads an address it does not let the
/// verifier check (unsafe kernel/user pointers, opaque cookies).
const ANYTHING_FOR_C_POINTER: &[(&str, usize)] = &[
    ("probe_read", 2),
    ("probe_read_str", 2),
    ("probe_read_user", 2),
    ("probe_read_user_str", 2),
    ("probe_read_kernel", 2),
    ("probe_read_kernel_str", 2),
    ("probe_write_user", 0),
    ("copy_from_user", 2),
    ("copy_from_user_task", 2),
];

/// Helpers whose kernel prototype declares fewer arguments than the C declaration: the
/// verifier leaves the trailing registers unchecked, though the helper reads them.
/// `bpf_get_branch_snapshot_proto` (kernel/trace/bpf_trace.c) declares `buf` and `size` but
/// not `flags`.
const KERNEL_DECLARES_FEWER: &[(&str, usize)] = &[("get_branch_snapshot", 2)];

#[test]
fn prototypes_agree_with_libbpf_helper_defs() {
    let defs = helper_defs(HELPER_DEFS);
    assert_eq!(defs.len(), 211, "libbpf 1.1 declares helpers 1..=211");
    let mut checked = 0;
    for (name, c) in &defs {
        let h = helper_by_name(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(h.id.0, c.id, "id of {name}");
        if !h.known {
            continue;
        }
        checked += 1;
        let expected = KERNEL_DECLARES_FEWER
            .iter()
            .find(|(n, _)| n == name)
            .map_or(c.params.len(), |&(_, count)| count);
        assert_eq!(h.arg_count(), expected, "argument count of {name}");
        if c.variadic {
            // trace_printk: the kernel checks fmt and its size; the rest are raw values.
            assert!(h.arg_count() < 5, "{name}");
        }
        for (i, (&c_ptr, kind)) in c.params.iter().zip(h.args).enumerate() {
            if c_ptr {
                let allowed = kind.is_pointer()
                    || (kind == ArgKind::Anything && ANYTHING_FOR_C_POINTER.contains(&(name, i)));
                assert!(allowed, "{name} arg {}: C pointer but {kind:?}", i + 1);
            } else {
                assert!(
                    !kind.is_pointer(),
                    "{name} arg {}: C integer but {kind:?}",
                    i + 1
                );
            }
        }
        // A helper that returns a pointer kind is declared returning a pointer. (Some declared
        // as returning pointers are RET_INTEGER to the verifier, so only this direction.)
        // libbpf declares `bpf_task_pt_regs` as returning `long`.
        if h.ret.is_pointer() && *name != "task_pt_regs" {
            assert!(c.ret_is_pointer, "{name} returns {:?}", h.ret);
        }
    }
    for (name, i) in ANYTHING_FOR_C_POINTER {
        let h = helper_by_name(name).expect("listed helper exists");
        assert!(h.known && h.args[*i] == ArgKind::Anything, "{name} {i}");
    }
    assert!(checked >= 80, "only {checked} prototypes checked");
}

/// The helpers the engines need first must all have prototypes.
#[test]
fn required_helpers_are_known() {
    for name in [
        "map_lookup_elem",
        "map_update_elem",
        "map_delete_elem",
        "map_push_elem",
        "map_pop_elem",
        "map_peek_elem",
        "ktime_get_ns",
        "ktime_get_boot_ns",
        "get_prandom_u32",
        "get_smp_processor_id",
        "trace_printk",
        "snprintf",
        "tail_call",
        "perf_event_output",
        "ringbuf_output",
        "ringbuf_reserve",
        "ringbuf_submit",
        "ringbuf_discard",
        "ringbuf_query",
        "probe_read_user",
        "probe_read_kernel",
        "probe_read_user_str",
        "probe_read_kernel_str",
        "get_current_pid_tgid",
        "get_current_uid_gid",
        "get_current_comm",
        "loop",
        "strncmp",
        "csum_diff",
        "xdp_adjust_head",
        "xdp_adjust_tail",
        "xdp_adjust_meta",
        "skb_load_bytes",
        "spin_lock",
        "spin_unlock",
        "perf_event_read_value",
        "for_each_map_elem",
        "l3_csum_replace",
    ] {
        assert!(helper_by_name(name).is_some_and(|h| h.known), "{name}");
    }
}

/// A few prototypes spelled out, as the kernel source states them.
#[test]
fn spot_checks() {
    let get = |n: &str| helper_by_name(n).expect("helper");
    let lookup = get("map_lookup_elem");
    assert_eq!(lookup.id, HelperId(1));
    assert_eq!(lookup.ret, RetKind::PtrToMapValue(TypeFlags::MAYBE_NULL));
    assert_eq!(
        lookup.args[..2],
        [ArgKind::ConstMapPtr, ArgKind::PtrToMapKey(TypeFlags::NONE)]
    );
    let reserve = get("ringbuf_reserve");
    assert!(reserve.ret.flags().maybe_null() && reserve.ret.flags().contains(TypeFlags::RINGBUF));
    assert_eq!(reserve.args[1], ArgKind::ConstAllocSizeOrZero);
    assert!(get("ringbuf_submit").args[0].flags().release());
    assert_eq!(get("ringbuf_submit").ret, RetKind::Void);
    assert_eq!(get("tail_call").ret, RetKind::Void);
    assert!(get("trace_printk").gpl_only && get("probe_read_kernel").gpl_only);
    assert!(!get("map_lookup_elem").gpl_only && !get("ktime_get_ns").gpl_only);
    let comm = get("get_current_comm").args[0];
    assert!(comm.flags().uninit() && comm.flags().write());
    assert!(
        get("csum_diff").args[0].flags().maybe_null() && get("csum_diff").args[0].flags().rdonly()
    );
    assert_eq!(get("loop").args[2], ArgKind::PTR_TO_STACK_OR_NULL);
    // pkt_access: map helpers and csum_diff take packet pointers; pop/peek do not.
    assert!(get("map_lookup_elem").pkt_access && get("csum_diff").pkt_access);
    assert!(!get("map_pop_elem").pkt_access && !get("skb_store_bytes").pkt_access);
    assert_eq!(
        get("strtol").args[3],
        ArgKind::PtrToFixedSizeMem {
            size: 8,
            flags: TypeFlags::UNINIT
                .union(TypeFlags::WRITE)
                .union(TypeFlags::ALIGNED),
        }
    );
}
