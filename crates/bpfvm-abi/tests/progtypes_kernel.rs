//! Program types and context layouts against independent truth:
//! - numbering and names against the kernel's BTF `enum bpf_prog_type` (committed excerpt
//!   of `bpftool btf dump ... format c`, and the running kernel when bpftool is present);
//! - every context field's offset and size against the kernel's BTF for `struct xdp_md`,
//!   `struct __sk_buff` and `struct bpf_raw_tracepoint_args` (committed excerpt of
//!   `bpftool btf dump file /sys/kernel/btf/vmlinux format raw`, and live);
//! - access rules against facts stated by `net/core/filter.c`'s `*_is_valid_access`.

use std::collections::BTreeMap;

mod common;
use common::bpftool_btf;

use bpfvm_abi::{
    CONFORMANCE_CONTEXT, ContextLayout, ProgramType, RAW_TRACEPOINT_CONTEXT, Rewrite,
    SOCKET_FILTER_CONTEXT, TC_CONTEXT, XDP_CONTEXT, context_layout,
};

const BTF_ENUMS: &str = include_str!("data/vmlinux_btf_enums.h");
const BTF_STRUCTS: &str = include_str!("data/vmlinux_ctx_structs.txt");

/// `BPF_PROG_TYPE_<NAME> = n` pairs, without `__MAX_BPF_PROG_TYPE`.
fn prog_types(text: &str) -> Vec<(String, u32)> {
    let body = text
        .split_once("enum bpf_prog_type {")
        .expect("enum bpf_prog_type")
        .1;
    let body = body.split_once("};").expect("enum end").0;
    body.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().trim_end_matches(',').split_once(" = ")?;
            let name = k.strip_prefix("BPF_PROG_TYPE_")?;
            Some((name.to_string(), v.parse().expect("value")))
        })
        .collect()
}

fn check_prog_types(kernel: &[(String, u32)], what: &str) {
    assert_eq!(kernel.len(), ProgramType::ALL.len(), "{what}");
    for (name, value) in kernel {
        let t = ProgramType::from_u32(*value).unwrap_or_else(|| panic!("{what}: {value}"));
        assert_eq!(t.name(), name.to_lowercase(), "{what}: {value}");
    }
}

#[test]
fn program_types_match_golden_btf() {
    check_prog_types(&prog_types(BTF_ENUMS), "golden");
}

#[test]
fn program_types_match_live_btf() {
    if let Some(text) = bpftool_btf("c") {
        check_prog_types(&prog_types(&text), "live");
    }
}

/// A raw BTF dump: type lines by id, and member lines of each struct.
struct RawBtf {
    types: BTreeMap<u32, String>,
    members: BTreeMap<u32, Vec<String>>,
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
}

fn num(line: &str, key: &str) -> u32 {
    attr(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {line}"))
}

impl RawBtf {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut members: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut current = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                let (id, _) = rest.split_once(']').expect("]");
                let id: u32 = id.parse().expect("type id");
                types.insert(id, line.to_string());
                current = Some(id);
            } else if let (true, Some(id)) = (line.starts_with('\t'), current) {
                members.entry(id).or_default().push(line.trim().to_string());
            }
        }
        Self { types, members }
    }

    fn size_of(&self, id: u32) -> u32 {
        let line = &self.types[&id];
        let kind = line.split_whitespace().nth(1).expect("kind");
        match kind {
            "INT" | "STRUCT" | "UNION" | "ENUM" => num(line, "size"),
            "TYPEDEF" | "CONST" | "VOLATILE" => self.size_of(num(line, "type_id")),
            "ARRAY" => num(line, "nr_elems") * self.size_of(num(line, "type_id")),
            _ => panic!("unexpected kind in {line}"),
        }
    }

    /// For an array type, its element's size.
    fn elem_size(&self, id: u32) -> Option<u32> {
        let line = &self.types[&id];
        (line.split_whitespace().nth(1) == Some("ARRAY"))
            .then(|| self.size_of(num(line, "type_id")))
    }

    /// `name -> (offset, size, element size if array)` of a struct's named members.
    fn struct_fields(&self, name: &str) -> BTreeMap<String, (u32, u32, Option<u32>)> {
        let tag = format!(" STRUCT '{name}' ");
        let (&id, _) = self
            .types
            .iter()
            .find(|(_, l)| l.contains(&tag))
            .unwrap_or_else(|| panic!("struct {name}"));
        self.members[&id]
            .iter()
            .filter(|m| !m.starts_with("'(anon)'"))
            .map(|m| {
                let fname = m.split('\'').nth(1).expect("member name").to_string();
                let ty = num(m, "type_id");
                let bits = num(m, "bits_offset");
                assert_eq!(bits % 8, 0, "{name}.{fname} is a bitfield");
                (fname, (bits / 8, self.size_of(ty), self.elem_size(ty)))
            })
            .collect()
    }
}

fn check_layout(btf: &RawBtf, layout: &ContextLayout, what: &str) {
    let kernel = btf.struct_fields(layout.struct_name);
    for f in layout.fields {
        let &(offset, size, elem) = kernel
            .get(f.name)
            .unwrap_or_else(|| panic!("{what}: {}.{} not in BTF", layout.struct_name, f.name));
        assert_eq!(
            f.offset, offset,
            "{what}: offset of {}.{}",
            layout.struct_name, f.name
        );
        if layout.struct_name == "bpf_raw_tracepoint_args" {
            // `__u64 args[0]`: a flexible array of u64; the layout bounds it at 12 arguments.
            assert_eq!(elem, Some(8));
            assert_eq!(f.size, 12 * 8);
        } else {
            assert_eq!(
                f.size, size,
                "{what}: size of {}.{}",
                layout.struct_name, f.name
            );
        }
    }
}

fn check_all_layouts(btf: &RawBtf, what: &str) {
    for layout in [
        &XDP_CONTEXT,
        &SOCKET_FILTER_CONTEXT,
        &TC_CONTEXT,
        &RAW_TRACEPOINT_CONTEXT,
    ] {
        check_layout(btf, layout, what);
    }
    let xdp = btf.struct_fields("xdp_md");
    assert_eq!(
        xdp.len(),
        XDP_CONTEXT.fields.len(),
        "{what}: every xdp_md field is described"
    );
}

#[test]
fn layouts_match_golden_btf() {
    check_all_layouts(&RawBtf::parse(BTF_STRUCTS), "golden");
}

#[test]
fn layouts_match_live_btf() {
    if let Some(text) = bpftool_btf("raw") {
        check_all_layouts(&RawBtf::parse(&text), "live");
    }
}

#[test]
fn struct_sizes_match_golden_btf() {
    let btf = RawBtf::parse(BTF_STRUCTS);
    for (name, layout) in [("xdp_md", &XDP_CONTEXT), ("__sk_buff", &TC_CONTEXT)] {
        let line = btf
            .types
            .values()
            .find(|l| l.contains(&format!(" STRUCT '{name}' ")))
            .expect("struct");
        assert_eq!(num(line, "size"), layout.size, "{name}");
    }
}

#[test]
fn context_layout_per_type() {
    assert_eq!(context_layout(ProgramType::Xdp), Some(&XDP_CONTEXT));
    assert_eq!(
        context_layout(ProgramType::SocketFilter),
        Some(&SOCKET_FILTER_CONTEXT)
    );
    assert_eq!(context_layout(ProgramType::SchedCls), Some(&TC_CONTEXT));
    assert_eq!(context_layout(ProgramType::SchedAct), Some(&TC_CONTEXT));
    assert_eq!(
        context_layout(ProgramType::RawTracepoint),
        Some(&RAW_TRACEPOINT_CONTEXT)
    );
    assert_eq!(context_layout(ProgramType::Kprobe), None);
    assert!(CONFORMANCE_CONTEXT.raw_memory && CONFORMANCE_CONTEXT.fields.is_empty());
}

/// Facts stated by `net/core/filter.c` (Linux 6.18).
#[test]
fn access_rules_follow_filter_c() {
    let x = &XDP_CONTEXT;
    // xdp_is_valid_access: writes are refused (rx_queue_index only when dev-bound).
    for f in x.fields {
        assert!(
            x.check_access(f.offset, 4, true).is_none(),
            "xdp write {}",
            f.name
        );
    }
    // data/data_meta/data_end become PTR_TO_PACKET / _META / _END; only u32 access.
    assert_eq!(
        x.check_access(0, 4, false).map(|f| f.rewrite),
        Some(Rewrite::PacketStart)
    );
    assert_eq!(
        x.check_access(4, 4, false).map(|f| f.rewrite),
        Some(Rewrite::PacketEnd)
    );
    assert_eq!(
        x.check_access(8, 4, false).map(|f| f.rewrite),
        Some(Rewrite::PacketMeta)
    );
    assert!(
        x.check_access(0, 2, false).is_none(),
        "__is_valid_xdp_access: size == 4"
    );
    assert!(x.check_access(0, 8, false).is_none());
    // egress_ifindex only for BPF_XDP_DEVMAP.
    assert!(x.check_access(20, 4, false).is_none());
    assert!(
        x.check_access(24, 4, false).is_none(),
        "off >= sizeof(struct xdp_md)"
    );

    let s = &SOCKET_FILTER_CONTEXT;
    let off = |l: &ContextLayout, n: &str| l.field(n).expect("field").offset;
    // sk_filter_is_valid_access: writes only to cb[0..4].
    for i in 0..5 {
        assert!(
            s.check_access(off(s, "cb") + 4 * i, 4, true).is_some(),
            "cb[{i}]"
        );
    }
    assert!(
        s.check_access(off(s, "cb"), 8, true).is_some(),
        "cb: off + size <= end of cb[4]"
    );
    assert!(
        s.check_access(off(s, "cb") + 16, 8, false).is_none(),
        "past cb[4]"
    );
    assert!(
        s.check_access(off(s, "mark"), 4, true).is_none(),
        "socket filter writes mark"
    );
    assert!(s.check_access(off(s, "mark"), 4, false).is_some());
    assert!(s.check_access(off(s, "priority"), 4, true).is_none());
    // No packet pointers, tc_classid, tstamp, wire_len or socket fields.
    for n in [
        "data",
        "data_end",
        "data_meta",
        "tc_classid",
        "tstamp",
        "wire_len",
        "family",
    ] {
        assert!(
            s.check_access(off(s, n), s.field(n).expect("f").size, false)
                .is_none(),
            "{n}"
        );
    }
    // Narrow reads of plain u32 fields (bpf_ctx_narrow_access_ok); writes are full-size.
    assert!(s.check_access(off(s, "len"), 1, false).is_some());
    assert!(s.check_access(off(s, "len") + 2, 2, false).is_some());
    assert!(s.check_access(off(s, "cb") + 2, 2, true).is_some());

    let t = &TC_CONTEXT;
    // tc_cls_act_is_valid_access: writable mark, tc_index, priority, tc_classid, cb,
    // tstamp, queue_mapping; nothing else.
    for n in [
        "mark",
        "tc_index",
        "priority",
        "tc_classid",
        "queue_mapping",
    ] {
        assert!(
            t.check_access(off(t, n), 4, true).is_some(),
            "tc writes {n}"
        );
    }
    assert!(t.check_access(off(t, "tstamp"), 8, true).is_some());
    for n in [
        "len",
        "protocol",
        "ifindex",
        "hash",
        "data",
        "data_end",
        "data_meta",
    ] {
        assert!(
            t.check_access(off(t, n), 4, true).is_none(),
            "tc must not write {n}"
        );
    }
    assert_eq!(
        t.field("data").map(|f| f.rewrite),
        Some(Rewrite::PacketStart)
    );
    assert_eq!(
        t.field("data_meta").map(|f| f.rewrite),
        Some(Rewrite::PacketMeta)
    );
    assert!(
        t.check_access(off(t, "data"), 2, false).is_none(),
        "data: size == 4 only"
    );
    assert!(t.check_access(off(t, "tstamp_type"), 1, false).is_some());
    assert!(t.check_access(off(t, "family"), 4, false).is_none());
    assert!(
        t.check_access(148, 4, false).is_none(),
        "anonymous flow_keys union"
    );

    let r = &RAW_TRACEPOINT_CONTEXT;
    assert!(r.check_access(8 * 11, 8, false).is_some());
    assert!(
        r.check_access(8 * 12, 8, false).is_none(),
        "MAX_BPF_FUNC_ARGS = 12"
    );
    assert!(
        r.check_access(0, 8, true).is_none(),
        "raw tracepoint context is read-only"
    );
}
