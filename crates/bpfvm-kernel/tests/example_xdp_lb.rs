//! The XDP load balancer of bpfvm's examples (`crates/bpfvm/examples/bpf/xdp_lb.o`) in the
//! kernel: loaded through bpfvm's loader with its `.rodata` configuration patched in, run
//! with `BPF_PROG_TEST_RUN` on packets built here, and checked against the contract of
//! `crates/bpfvm/examples/bpf/README.md`: the backend the README's FNV-1a hash picks, the
//! rewritten packet byte for byte (checksums recomputed from scratch here), and the counts.
//! Skips, saying why, without `bpf()`; fails under `BPFVM_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::PathBuf;

use bpfvm_btf::{Kind, TypeKind};
use bpfvm_kernel::{Bpf, KernelLoadOptions, KernelObject, TestRun, kernel_available_for_test};
use bpfvm_object::{LoadOptions, Object, load};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

const VIP: [u8; 4] = [10, 0, 0, 100];
const VPORT: u16 = 80;
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xcc];

/// `struct backend { __u32 ip; __u8 mac[6]; __u16 pad; }`
struct Backend {
    ip: [u8; 4],
    mac: [u8; 6],
}

impl Backend {
    fn to_bytes(&self) -> [u8; 12] {
        let mut v = [0; 12];
        v[..4].copy_from_slice(&self.ip);
        v[4..10].copy_from_slice(&self.mac);
        v
    }
}

fn backends() -> Vec<Backend> {
    (0..3u8)
        .map(|i| Backend {
            ip: [10, 1, 0, 10 + i],
            mac: [0x02, 0xbe, 0, 0, 0, i],
        })
        .collect()
}

/// The README's hash: FNV-1a (32 bits) over saddr, daddr, sport, dport (network order,
/// as in the packet) and the protocol byte.
fn flow_hash(saddr: [u8; 4], daddr: [u8; 4], sport: u16, dport: u16, proto: u8) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let bytes = saddr
        .into_iter()
        .chain(daddr)
        .chain(sport.to_be_bytes())
        .chain(dport.to_be_bytes())
        .chain([proto]);
    for b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

/// One's complement sum of `data` as big-endian 16-bit words, folded, not inverted.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        acc += hi | lo;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// A TCP or UDP packet in Ethernet + IPv4 (no options), with correct checksums.
#[derive(Clone)]
struct Flow {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
    /// UDP only: send checksum 0 ("none").
    udp_no_csum: bool,
    payload: Vec<u8>,
}

impl Flow {
    fn build(&self) -> Vec<u8> {
        let l4_len = match self.proto {
            TCP => 20,
            UDP => 8,
            _ => 0,
        } + self.payload.len();
        let mut p = Vec::with_capacity(14 + 20 + l4_len);
        p.extend_from_slice(&self.dst_mac);
        p.extend_from_slice(&self.src_mac);
        p.extend_from_slice(&0x0800u16.to_be_bytes());
        // IPv4 header
        let total = (20 + l4_len) as u16;
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, self.proto, 0, 0]);
        p.extend_from_slice(&self.saddr);
        p.extend_from_slice(&self.daddr);
        let ip_csum = !(ones_sum(0, &p[14..34]) as u16);
        p[24..26].copy_from_slice(&ip_csum.to_be_bytes());
        // L4 header
        let l4 = p.len();
        if matches!(self.proto, TCP | UDP) {
            p.extend_from_slice(&self.sport.to_be_bytes());
            p.extend_from_slice(&self.dport.to_be_bytes());
        }
        match self.proto {
            TCP => {
                p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff]);
                p.extend_from_slice(&[0, 0, 0, 0]); // check, urg
            }
            UDP => {
                p.extend_from_slice(&(l4_len as u16).to_be_bytes());
                p.extend_from_slice(&[0, 0]);
            }
            _ => {}
        }
        p.extend_from_slice(&self.payload);
        if matches!(self.proto, TCP | UDP) && !(self.proto == UDP && self.udp_no_csum) {
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&self.saddr);
            pseudo.extend_from_slice(&self.daddr);
            pseudo.extend_from_slice(&[0, self.proto]);
            pseudo.extend_from_slice(&(l4_len as u16).to_be_bytes());
            let sum = ones_sum(ones_sum(0, &pseudo), &p[l4..]);
            let mut csum = !(sum as u16);
            if self.proto == UDP && csum == 0 {
                csum = 0xffff;
            }
            let at = l4 + if self.proto == TCP { 16 } else { 6 };
            p[at..at + 2].copy_from_slice(&csum.to_be_bytes());
        }
        p
    }
}

fn vip_flow(i: u32) -> Flow {
    let proto = if i.is_multiple_of(2) { TCP } else { UDP };
    Flow {
        src_mac: CLIENT_MAC,
        dst_mac: LB_MAC,
        saddr: [192, 168, (i / 7) as u8, (i * 37 % 251) as u8 + 1],
        daddr: VIP,
        sport: 1024 + (i * 7919 % 60000) as u16,
        dport: VPORT,
        proto,
        udp_no_csum: proto == UDP && i % 10 == 3,
        payload: (0..(i % 23) as u8).collect(),
    }
}

fn elf_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bpfvm/examples/bpf/xdp_lb.o")
}

/// `xdp_lb.o` with its `.rodata` (`vip`, `vport`, `num_backends`) set, as a skeleton's
/// `rodata->x = ...` before load would: the initial data of the `.rodata` map is patched
/// at the offsets the object's BTF `DATASEC` gives. (bpfvm's loader has no `.rodata`
/// override of its own.)
fn configured_object(vip: [u8; 4], vport: u16, num_backends: u32) -> Object {
    let bytes = std::fs::read(elf_path()).expect("xdp_lb.o (crates/bpfvm/examples/bpf)");
    let opts = LoadOptions {
        name: "xdp_lb".into(),
        ..LoadOptions::default()
    };
    let mut obj = load(&bytes, &opts).expect("bpfvm loads xdp_lb.o");
    let btf = obj.btf.as_ref().expect("xdp_lb.o has BTF");
    let sec = btf.find(Kind::Datasec, ".rodata").expect(".rodata DATASEC");
    let TypeKind::Datasec { vars, .. } = &btf.type_by_id(sec).expect("datasec").kind else {
        panic!(".rodata is not a DATASEC");
    };
    let offsets: Vec<(String, usize, usize)> = vars
        .iter()
        .map(|v| {
            let name = btf.name_of(v.ty).expect("var name").to_string();
            (name, v.offset as usize, v.size as usize)
        })
        .collect();
    let rodata = obj
        .maps
        .iter_mut()
        .find(|m| m.section == ".rodata")
        .expect(".rodata map");
    let data = rodata.initial_data.as_mut().expect(".rodata initial data");
    for (name, off, size) in offsets {
        let value: Vec<u8> = match name.as_str() {
            "vip" => vip.to_vec(),
            "vport" => vport.to_be_bytes().to_vec(),
            "num_backends" => num_backends.to_le_bytes().to_vec(),
            other => panic!("unexpected .rodata variable `{other}`"),
        };
        assert_eq!(value.len(), size, "{name}");
        data[off..off + size].copy_from_slice(&value);
    }
    obj
}

fn in_kernel(obj: &Object) -> KernelObject {
    let k = Bpf::new()
        .load_object(obj, None, &KernelLoadOptions::default())
        .unwrap_or_else(|e| panic!("xdp_lb.o: {e}\n{}", e.log().unwrap_or_default()));
    let map = k.map(obj, "backends").expect("backends map");
    for (i, b) in backends().iter().enumerate() {
        map.update(&(i as u32).to_le_bytes(), &b.to_bytes(), 0)
            .expect("backends update");
    }
    k
}

fn run(k: &KernelObject, packet: &[u8]) -> (u32, Vec<u8>) {
    let prog = k.program("xdp_lb").expect("xdp_lb program");
    let mut out = vec![0; packet.len() + 256];
    let r = prog
        .test_run(&mut TestRun {
            data_in: packet,
            data_out: Some(&mut out),
            repeat: 1,
            ..TestRun::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.retval, out)
}

fn counter(k: &KernelObject, obj: &Object, map: &str, index: u32) -> u64 {
    let value = k
        .map(obj, map)
        .expect("map")
        .lookup(&index.to_le_bytes())
        .expect("lookup")
        .expect("array element");
    u64::from_le_bytes(value.try_into().expect("u64 value"))
}

macro_rules! require_kernel {
    ($t:ident) => {
        if !kernel_available_for_test(stringify!($t)) {
            return;
        }
    };
}

#[test]
fn vip_traffic_is_spread_by_the_documented_hash_and_the_rest_passes_or_drops() {
    require_kernel!(vip_traffic_is_spread_by_the_documented_hash_and_the_rest_passes_or_drops);
    let obj = configured_object(VIP, VPORT, 3);
    let k = in_kernel(&obj);
    let bes = backends();

    // 200 flows to the VIP: TCP and UDP, many sources, some UDP without checksum.
    let mut per_backend = [0u64; 3];
    for i in 0..200 {
        let flow = vip_flow(i);
        let packet = flow.build();
        let idx =
            (flow_hash(flow.saddr, flow.daddr, flow.sport, flow.dport, flow.proto) % 3) as usize;
        per_backend[idx] += 1;
        let (action, out) = run(&k, &packet);
        assert_eq!(action, XDP_TX, "flow {i}");

        // What it must become, built from scratch: the backend's MAC and address, the
        // balancer's MAC as source, every checksum computed over the new bytes.
        let expected = Flow {
            src_mac: LB_MAC,
            dst_mac: bes[idx].mac,
            daddr: bes[idx].ip,
            ..flow.clone()
        }
        .build();
        assert_eq!(&out[30..34], &bes[idx].ip, "flow {i}: daddr");
        assert_eq!(&out[0..6], &bes[idx].mac, "flow {i}: eth dst");
        assert_eq!(&out[6..12], &LB_MAC, "flow {i}: eth src");
        assert_eq!(ones_sum(0, &out[14..34]), 0xffff, "flow {i}: IPv4 checksum");
        if flow.udp_no_csum {
            assert_eq!(&out[40..42], &[0, 0], "flow {i}: UDP checksum 0 stays 0");
        }
        assert_eq!(out, expected, "flow {i}: rewritten packet");
    }
    assert!(
        per_backend.iter().all(|&n| n > 30),
        "the hash spreads flows: {per_backend:?}"
    );

    // Not for the balancer: passed.
    let mut not_ours = vec![
        Flow {
            daddr: [10, 0, 0, 101],
            ..vip_flow(1)
        }
        .build(),
        Flow {
            dport: 443,
            ..vip_flow(2)
        }
        .build(),
        Flow {
            dport: 443,
            ..vip_flow(3)
        }
        .build(),
        Flow {
            proto: ICMP,
            payload: vec![8, 0, 0, 0, 0, 1, 0, 1],
            ..vip_flow(4)
        }
        .build(),
    ];
    let mut arp = vip_flow(5).build();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    not_ours.push(arp);
    // The ports sit past the header's options (ihl = 6): dport is 443 there, while the
    // bytes where it would be without options read 80.
    let mut with_options = vip_flow(6).build();
    with_options.splice(34..34, [1, 1, 0, 80]);
    with_options[14] = 0x46;
    with_options[38..40].copy_from_slice(&VPORT.to_be_bytes()); // sport = 80
    with_options[40..42].copy_from_slice(&443u16.to_be_bytes());
    not_ours.push(with_options);
    for (i, p) in not_ours.iter().enumerate() {
        let (action, out) = run(&k, p);
        assert_eq!(action, XDP_PASS, "not-ours packet {i}");
        assert_eq!(&out, p, "not-ours packet {i} is untouched");
    }

    // Too short for their own headers: dropped.
    let tcp = vip_flow(0).build();
    let udp = vip_flow(1).build();
    let mut bad_ihl = vip_flow(2).build();
    bad_ihl[14] = 0x44;
    let mut long_ihl = vip_flow(8).build();
    long_ihl[14] = 0x4f; // 60-byte header, packet has 20 + 20 + 8 after Ethernet
    let truncated = [
        tcp[..14 + 10].to_vec(),      // half an IPv4 header
        tcp[..14 + 20 + 12].to_vec(), // TCP header cut
        udp[..14 + 20 + 6].to_vec(),  // UDP header cut
        bad_ihl,
        long_ihl,
    ];
    for (i, p) in truncated.iter().enumerate() {
        assert_eq!(run(&k, p).0, XDP_DROP, "truncated packet {i}");
    }

    assert_eq!(
        counter(&k, &obj, "stats", 0),
        not_ours.len() as u64,
        "passed"
    );
    assert_eq!(
        counter(&k, &obj, "stats", 1),
        truncated.len() as u64,
        "dropped"
    );
    assert_eq!(counter(&k, &obj, "stats", 2), 200, "balanced");
    assert_eq!(counter(&k, &obj, "stats", 3), 0, "unused slot");
    for (i, n) in per_backend.iter().enumerate() {
        assert_eq!(
            counter(&k, &obj, "backend_packets", i as u32),
            *n,
            "backend {i}"
        );
    }
    assert_eq!(counter(&k, &obj, "backend_packets", 3), 0);
}

#[test]
fn without_usable_backends_vip_traffic_is_dropped() {
    require_kernel!(without_usable_backends_vip_traffic_is_dropped);
    // num_backends = 0: nothing to balance to.
    let obj = configured_object(VIP, VPORT, 0);
    let k = in_kernel(&obj);
    assert_eq!(run(&k, &vip_flow(0).build()).0, XDP_DROP);
    let other = Flow {
        dport: 22,
        ..vip_flow(0)
    }
    .build();
    assert_eq!(run(&k, &other).0, XDP_PASS);
    assert_eq!(counter(&k, &obj, "stats", 1), 1);
    assert_eq!(counter(&k, &obj, "stats", 0), 1);

    // num_backends = 100 > 16 entries: a flow hashed past the array is dropped, one
    // hashed inside it is balanced.
    let obj = configured_object(VIP, VPORT, 100);
    let k = in_kernel(&obj);
    let (mut outside, mut inside) = (None, None);
    for i in 0..200 {
        let f = vip_flow(i);
        let idx = flow_hash(f.saddr, f.daddr, f.sport, f.dport, f.proto) % 100;
        match idx {
            0..=2 if inside.is_none() => inside = Some(f),
            16.. if outside.is_none() => outside = Some(f),
            _ => {}
        }
    }
    let (outside, inside) = (
        outside.expect("a flow past 16"),
        inside.expect("a flow < 3"),
    );
    assert_eq!(run(&k, &outside.build()).0, XDP_DROP);
    assert_eq!(run(&k, &inside.build()).0, XDP_TX);
    assert_eq!(counter(&k, &obj, "stats", 1), 1);
    assert_eq!(counter(&k, &obj, "stats", 2), 1);
}
