//! The ELF fixtures' runnable programs (the Results table of
//! `conformance-tests/elf/README.md`) run in bpfvm through the embedding API and in the
//! kernel through `bpfvm-kernel`, on every packet of `conformance-tests/elf/packets/`:
//! both must give the same return value, packet out and map contents. bpfvm's results
//! are also checked against the README's numbers, which the kernel computed for the same
//! objects loaded by libbpf: an independent truth that keeps the test meaningful where
//! `bpf()` is unavailable (there the kernel half skips, saying why; under
//! `BPFVM_REQUIRE_KERNEL=1` it fails instead).
//!
//! How bpfvm is given a packet, copying `BPF_PROG_TEST_RUN` (`bpf_prog_test_run_xdp` and
//! `bpf_prog_test_run_skb` in `net/bpf/test_run.c`):
//! - XDP: the whole packet in an XDP frame (256 bytes of headroom), `ingress_ifindex` 1
//!   (the loopback device), `rx_queue_index` 0.
//! - `__sk_buff` programs: the kernel runs `eth_type_trans` on the loopback device, so
//!   `skb->protocol` is the Ethernet type (network byte order in the u32 field: the
//!   `__be16` loaded as it sits in memory), or `ETH_P_802_3`/`ETH_P_802_2` for a type
//!   below 0x600; `pkt_type` is `PACKET_OTHERHOST` (the fixtures' destination MAC is not
//!   the loopback's all-zero address and not multicast); `ifindex` is 1. A tc program
//!   sees the packet from the Ethernet header; a socket filter from the IPv4 header
//!   (the kernel pulled the 14-byte Ethernet header, so `skb->len` = length − 14).
//!
//! Normalisations (what the kernel reports, mirrored on bpfvm's side):
//! - Packet out of a socket filter: the kernel pushes the Ethernet header back before
//!   copying the packet out and zeroes it (`memset(__skb_push(skb, hh_len), 0, hh_len)`),
//!   so bpfvm's packet is compared with 14 zero bytes in front.
//! - Maps: `KernelObject::run` reads back only the hash and array kinds (hash, array,
//!   per-CPU hash and array, LRU hashes) — `.rodata` is an array and is included;
//!   ring buffers, program arrays and maps of maps are not — so bpfvm's
//!   `map_contents()` is filtered to the same types. None of these fixtures has a
//!   per-CPU map (the kernel lays per-CPU values out per *possible* CPU, 8-byte
//!   aligned, which would need normalising): the test asserts that.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bpfvm::Object;
use bpfvm_abi::MapType;
use bpfvm_btf::TypeKind;
use bpfvm_object::{MapContents, ObjectRun};
use bpfvm_runtime::{Context, Packet, RunOptions, SkBuff, XdpMd};

fn elf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/elf")
}

fn hex(text: &str) -> Vec<u8> {
    let t = text.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex"))
        .collect()
}

fn packet(name: &str) -> Vec<u8> {
    hex(
        &std::fs::read_to_string(elf_dir().join("packets").join(format!("{name}.hex")))
            .expect("packet"),
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Xdp,
    SocketFilter,
    Tc,
}

/// Every program of the README's Results table that these tests run (`core.o`,
/// `kconfig.o`, `maps_btf.o` and `maps_legacy.o` need CO-RE against vmlinux, kernel
/// externs, ring buffers or a legacy map section and are covered elsewhere).
const PROGRAMS: &[(&str, &str, Kind)] = &[
    ("runnable.o", "xdp_filter", Kind::Xdp),
    ("runnable.o", "sock_snap", Kind::SocketFilter),
    ("runnable.o", "tc_ttl", Kind::Tc),
    ("globals.o", "xdp_globals", Kind::Xdp),
    ("subprogs_v2.o", "xdp_calls", Kind::Xdp),
    ("subprogs_v2.o", "sock_calls", Kind::SocketFilter),
    ("subprogs_v3.o", "xdp_calls", Kind::Xdp),
    ("subprogs_v3.o", "sock_calls", Kind::SocketFilter),
    ("subprogs_v4.o", "xdp_calls", Kind::Xdp),
    ("subprogs_v4.o", "sock_calls", Kind::SocketFilter),
    ("callbacks.o", "xdp_loop", Kind::Xdp),
    ("callbacks.o", "xdp_for_each", Kind::Xdp),
    ("tail_globals.o", "xdp_dispatch", Kind::Xdp),
    ("tail_globals.o", "xdp_count", Kind::Xdp),
];

/// Programs bpfvm cannot run yet: (object, program, the missing helper's name as
/// bpfvm's error names it, why). Such a program must fail in bpfvm with an error naming
/// that helper; if it starts passing it is compared in full like any other, and the test
/// says to remove it from this list. Empty since `bpf_for_each_map_elem` (164) landed.
const EXPECTED_TO_FAIL: &[(&str, &str, &str, &str)] = &[];

/// `eth_type_trans`'s `skb->protocol` for a frame (as the u32 field reads it: the
/// `__be16` as it sits in memory, zero-extended).
fn eth_protocol(frame: &[u8]) -> u32 {
    const ETH_P_802_3: u16 = 0x0001;
    const ETH_P_802_2: u16 = 0x0004;
    let ty = u16::from_be_bytes([frame[12], frame[13]]);
    let proto = if ty >= 0x600 {
        ty
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        ETH_P_802_3
    } else {
        ETH_P_802_2
    };
    u32::from(u16::from_ne_bytes(proto.to_be_bytes()))
}

/// The kernel's readable map kinds (`KernelObject::snapshot`).
fn kernel_reads(t: MapType) -> bool {
    matches!(
        t,
        MapType::Hash
            | MapType::Array
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruHash
            | MapType::LruPercpuHash
    )
}

/// A fresh load of `object` in bpfvm, `program` run once on `frame` as
/// `BPF_PROG_TEST_RUN` would present it; the result as the kernel side reports it.
fn run_bpfvm(object: &str, program: &str, kind: Kind, frame: &[u8]) -> Result<ObjectRun, String> {
    let obj = Object::load_file(elf_dir().join(object)).map_err(|e| e.to_string())?;
    let prog = obj.program(program).map_err(|e| e.to_string())?;
    let opts = RunOptions::new();
    let (retval, packet_out) = match kind {
        Kind::Xdp => {
            let mut packet = Packet::xdp(frame);
            let mut ctx = Context::Xdp {
                md: XdpMd {
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                },
                packet: &mut packet,
            };
            let r = prog.run(&mut ctx, &opts).map_err(|e| e.to_string())?;
            (r, packet.data().to_vec())
        }
        Kind::SocketFilter | Kind::Tc => {
            let mut skb = SkBuff::new();
            skb.set_field(4, 3) // pkt_type = PACKET_OTHERHOST
                .set_field(16, eth_protocol(frame))
                .set_field(40, 1); // ifindex: the loopback device
            let start = if kind == Kind::SocketFilter { 14 } else { 0 };
            let mut packet = Packet::new(&frame[start..], 0, 0);
            let mut ctx = Context::SkBuff {
                skb: &mut skb,
                packet: &mut packet,
            };
            let r = prog.run(&mut ctx, &opts).map_err(|e| e.to_string())?;
            let mut out = vec![0u8; start];
            out.extend_from_slice(packet.data());
            (r, out)
        }
    };
    let mut maps = BTreeMap::new();
    let contents = obj.map_contents();
    for m in obj.maps() {
        let t = m.spec().map_type;
        if !kernel_reads(t) {
            continue;
        }
        assert!(
            !matches!(
                t,
                MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash
            ),
            "{object}: per-CPU map `{}` needs a layout normalisation this test lacks",
            m.name()
        );
        let c = contents.get(m.name()).cloned().unwrap_or_default();
        maps.insert(m.name().to_string(), c);
    }
    Ok(ObjectRun {
        retval: retval as u32,
        packet: packet_out,
        maps,
    })
}

/// Where the global `var` of `object` lives: (map name, offset, size).
fn global(object: &str, var: &str) -> (String, usize, usize) {
    let open = bpfvm::OpenObject::open_file(elf_dir().join(object)).expect("open");
    let spec = open.spec();
    let btf = spec.btf.as_ref().expect("BTF");
    for (_, t) in btf.types() {
        let TypeKind::Datasec { vars, .. } = &t.kind else {
            continue;
        };
        let section = btf.string(t.name_off).expect("section name");
        for v in vars {
            if btf.name_of(v.ty) == Some(var) {
                let map = spec
                    .maps
                    .iter()
                    .find(|m| m.section == section)
                    .expect("section map");
                return (map.name.clone(), v.offset as usize, v.size as usize);
            }
        }
    }
    panic!("{object}: no global `{var}`")
}

/// A map's expected non-zero entries, complete: (map, [(u32 key, u64 words of the value)]).
type MapEntries = (&'static str, &'static [(u32, &'static [u64])]);

/// A row of the README's Results table: what the kernel computed.
struct Expect {
    object: &'static str,
    program: &'static str,
    packet: &'static str,
    retval: u32,
    /// Packet out, in hex; `None`: unchanged.
    packet_out: Option<&'static str>,
    /// Maps' non-zero entries.
    maps: &'static [MapEntries],
    /// Globals (little-endian integers of the variable's size).
    globals: &'static [(&'static str, u64)],
}

const fn row(
    object: &'static str,
    program: &'static str,
    packet: &'static str,
    retval: u32,
) -> Expect {
    Expect {
        object,
        program,
        packet,
        retval,
        packet_out: None,
        maps: &[],
        globals: &[],
    }
}

const RUNS0: MapEntries = ("runs", &[(0, &[1])]);
const RUNS1: MapEntries = ("runs", &[(1, &[1])]);
const RUNS2: MapEntries = ("runs", &[(2, &[1])]);

const README: &[Expect] = &[
    Expect {
        maps: &[("proto_count", &[(6, &[1, 40])]), RUNS0],
        globals: &[("xdp_passed", 1), ("xdp_dropped", 0), ("last_ttl", 64)],
        ..row("runnable.o", "xdp_filter", "tcp_syn", 2)
    },
    Expect {
        maps: &[("proto_count", &[(17, &[1, 32])]), RUNS0],
        globals: &[("xdp_passed", 0), ("xdp_dropped", 1), ("last_ttl", 64)],
        ..row("runnable.o", "xdp_filter", "udp_port9", 1)
    },
    Expect {
        maps: &[("proto_count", &[(17, &[1, 32])]), RUNS0],
        globals: &[("xdp_passed", 1), ("xdp_dropped", 0), ("last_ttl", 64)],
        ..row("runnable.o", "xdp_filter", "udp_port53", 2)
    },
    Expect {
        maps: &[("proto_count", &[(6, &[1, 40])]), RUNS0],
        globals: &[("xdp_passed", 0), ("xdp_dropped", 1), ("last_ttl", 1)],
        ..row("runnable.o", "xdp_filter", "tcp_ttl1", 1)
    },
    Expect {
        maps: &[("proto_count", &[]), RUNS0],
        globals: &[
            ("xdp_passed", 1),
            ("xdp_dropped", 0),
            ("last_ttl", 0xffff_ffff),
        ],
        ..row("runnable.o", "xdp_filter", "arp", 2)
    },
    Expect {
        maps: &[RUNS1],
        ..row("runnable.o", "sock_snap", "tcp_syn", 0)
    },
    Expect {
        maps: &[RUNS1],
        ..row("runnable.o", "sock_snap", "udp_port9", 24)
    },
    Expect {
        maps: &[RUNS1],
        ..row("runnable.o", "sock_snap", "arp", 0)
    },
    Expect {
        packet_out: Some(
            "020000000002020000000001080045000028000100003f06fa7bc0a80001c0a800023039005000000001000000005002ffff00000000",
        ),
        maps: &[RUNS2],
        ..row("runnable.o", "tc_ttl", "tcp_syn", 0)
    },
    Expect {
        maps: &[RUNS2],
        ..row("runnable.o", "tc_ttl", "arp", 0)
    },
    Expect {
        globals: &[
            ("run_count", 1),
            ("last_result", 12409),
            ("custom_data", 8),
            ("data_seed", 42),
        ],
        ..row("globals.o", "xdp_globals", "tcp_syn", 12409)
    },
    Expect {
        globals: &[
            ("run_count", 1),
            ("last_result", 33_908_088),
            ("custom_data", 8),
        ],
        ..row("globals.o", "xdp_globals", "magic", 33_908_088)
    },
    row("subprogs_v2.o", "xdp_calls", "tcp_syn", 6111),
    row("subprogs_v2.o", "xdp_calls", "magic", 31776),
    row("subprogs_v2.o", "sock_calls", "tcp_syn", 16328),
    row("subprogs_v3.o", "xdp_calls", "tcp_syn", 6111),
    row("subprogs_v3.o", "xdp_calls", "magic", 31776),
    row("subprogs_v3.o", "sock_calls", "tcp_syn", 16328),
    row("subprogs_v4.o", "xdp_calls", "tcp_syn", 6111),
    row("subprogs_v4.o", "xdp_calls", "magic", 31776),
    row("subprogs_v4.o", "sock_calls", "tcp_syn", 16328),
    row("callbacks.o", "xdp_loop", "tcp_syn", 196_609),
    row("callbacks.o", "xdp_loop", "magic", 393_246),
    Expect {
        maps: &[(
            "values",
            &[
                (0, &[2]),
                (1, &[3]),
                (2, &[4]),
                (3, &[5]),
                (4, &[6]),
                (5, &[7]),
                (6, &[8]),
                (7, &[9]),
            ],
        )],
        ..row("callbacks.o", "xdp_for_each", "tcp_syn", 100_663_408)
    },
    Expect {
        maps: &[(
            "values",
            &[
                (0, &[165]),
                (1, &[166]),
                (2, &[167]),
                (3, &[168]),
                (4, &[169]),
                (5, &[170]),
                (6, &[171]),
                (7, &[172]),
            ],
        )],
        ..row("callbacks.o", "xdp_for_each", "magic", 100_666_831)
    },
    // The dispatcher holds no globals; xdp_count, entered by its tail call, reads and
    // writes the object's .data and .bss, then tail-calls itself until seen = limit.
    Expect {
        globals: &[("total", 216), ("seen", 4), ("step", 1), ("limit", 4)],
        ..row("tail_globals.o", "xdp_dispatch", "tcp_syn", 262_360)
    },
    Expect {
        globals: &[("total", 64), ("seen", 4)],
        ..row("tail_globals.o", "xdp_dispatch", "magic", 262_208)
    },
    Expect {
        globals: &[("total", 216), ("seen", 4)],
        ..row("tail_globals.o", "xdp_count", "tcp_syn", 262_360)
    },
];

fn kind_of(object: &str, program: &str) -> Kind {
    PROGRAMS
        .iter()
        .find(|(o, p, _)| *o == object && *p == program)
        .map(|(_, _, k)| *k)
        .expect("program listed in PROGRAMS")
}

/// The missing helper and the reason, for a program listed in [`EXPECTED_TO_FAIL`].
fn expected_failure(object: &str, program: &str) -> Option<(&'static str, &'static str)> {
    EXPECTED_TO_FAIL
        .iter()
        .find(|(o, p, _, _)| *o == object && *p == program)
        .map(|(_, _, helper, why)| (*helper, *why))
}

/// The differences between bpfvm's run and the README's row (empty: agree).
fn readme_differences(e: &Expect, run: &ObjectRun) -> Vec<String> {
    let mut out = Vec::new();
    if run.retval != e.retval {
        out.push(format!(
            "return value {} (README: {})",
            run.retval, e.retval
        ));
    }
    let frame = packet(e.packet);
    let want_packet = e.packet_out.map(hex).unwrap_or_else(|| {
        let mut p = frame.clone();
        if kind_of(e.object, e.program) == Kind::SocketFilter {
            p[..14].fill(0);
        }
        p
    });
    if run.packet != want_packet {
        out.push(format!(
            "packet {:02x?} (README: {want_packet:02x?})",
            run.packet
        ));
    }
    for (map, entries) in e.maps {
        let Some(contents) = run.maps.get(*map) else {
            out.push(format!("no map `{map}`"));
            continue;
        };
        let non_zero: MapContents = contents
            .iter()
            .filter(|(_, v)| v.iter().any(|b| *b != 0))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want: MapContents = entries
            .iter()
            .map(|(k, words)| {
                (
                    k.to_le_bytes().to_vec(),
                    words.iter().flat_map(|w| w.to_le_bytes()).collect(),
                )
            })
            .collect();
        if non_zero != want {
            out.push(format!(
                "map `{map}` non-zero entries {non_zero:02x?} (README: {want:02x?})"
            ));
        }
    }
    for (var, value) in e.globals {
        let (map, offset, size) = global(e.object, var);
        let got = run
            .maps
            .get(&map)
            .and_then(|c| c.get(0u32.to_le_bytes().as_slice()))
            .and_then(|v| v.get(offset..offset + size))
            .map(|b| {
                let mut w = [0u8; 8];
                w[..size].copy_from_slice(b);
                u64::from_le_bytes(w)
            });
        if got != Some(*value) {
            out.push(format!("global `{var}` = {got:?} (README: {value})"));
        }
    }
    out
}

#[test]
fn bpfvm_computes_the_readme_results() {
    let mut failures = Vec::new();
    let mut expected = Vec::new();
    for e in README {
        let kind = kind_of(e.object, e.program);
        let what = format!("{} {} {}", e.object, e.program, e.packet);
        match (
            run_bpfvm(e.object, e.program, kind, &packet(e.packet)),
            expected_failure(e.object, e.program),
        ) {
            (Ok(run), why) => {
                let d = readme_differences(e, &run);
                if d.is_empty() {
                    if let Some((_, why)) = why {
                        eprintln!(
                            "note: {what} now passes; remove it from EXPECTED_TO_FAIL ({why})"
                        );
                    }
                } else {
                    failures.push(format!("{what}: {}", d.join("; ")));
                }
            }
            (Err(err), Some((helper, why))) if err.contains(helper) => {
                expected.push(format!("{what}: expected to fail: {why} ({err})"));
            }
            (Err(err), _) => failures.push(format!("{what}: bpfvm error: {err}")),
        }
    }
    for line in &expected {
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::*;
    use bpfvm_kernel::{
        Bpf, KernelLoadOptions, host_load_options, kernel_available_for_test, vmlinux_btf,
    };
    use std::path::Path;

    /// Every packet of `conformance-tests/elf/packets/`.
    const PACKETS: [&str; 6] = [
        "tcp_syn",
        "udp_port9",
        "udp_port53",
        "tcp_ttl1",
        "arp",
        "magic",
    ];

    /// A fresh kernel load of `object` and one `BPF_PROG_TEST_RUN` of `program`.
    fn run_kernel(object: &str, program: &str, frame: &[u8]) -> ObjectRun {
        static VMLINUX: std::sync::OnceLock<bpfvm_btf::Btf> = std::sync::OnceLock::new();
        let vmlinux = VMLINUX.get_or_init(|| vmlinux_btf().expect("/sys/kernel/btf/vmlinux"));
        let bytes = std::fs::read(elf_dir().join(object)).expect("fixture");
        let stem = Path::new(object)
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        // The host's kallsyms, config and version are read once for all loads.
        static HOST: std::sync::OnceLock<bpfvm_object::LoadOptions<'static>> =
            std::sync::OnceLock::new();
        let opts = bpfvm_object::LoadOptions {
            name: stem,
            ..HOST.get_or_init(|| host_load_options("", vmlinux)).clone()
        };
        let obj = bpfvm_object::load(&bytes, &opts).unwrap_or_else(|e| panic!("{object}: {e}"));
        let loaded = Bpf::new()
            .load_object(&obj, Some(vmlinux), &KernelLoadOptions::default())
            .unwrap_or_else(|e| panic!("{object}: {e}\n{}", e.log().unwrap_or_default()));
        loaded
            .run(&obj, program, frame)
            .unwrap_or_else(|e| panic!("{object} {program}: {e}"))
    }

    #[test]
    fn bpfvm_and_the_kernel_agree_on_every_fixture_program_and_packet() {
        if !kernel_available_for_test(
            "bpfvm_and_the_kernel_agree_on_every_fixture_program_and_packet",
        ) {
            return;
        }
        let mut table = Vec::new();
        let mut on_disk: Vec<String> = std::fs::read_dir(elf_dir().join("packets"))
            .expect("packets")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "hex"))
            .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = PACKETS.iter().map(|p| p.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "PACKETS must list every packet file");
        let mut failures = Vec::new();
        for (object, program, kind) in PROGRAMS {
            for name in PACKETS {
                let frame = packet(name);
                let k = run_kernel(object, program, &frame);
                let what = format!("{object} {program} {name}");
                let verdict = match (
                    run_bpfvm(object, program, *kind, &frame),
                    expected_failure(object, program),
                ) {
                    (Ok(b), why) => {
                        let d = k.differences(&b);
                        if d.is_empty() {
                            if let Some((_, why)) = why {
                                eprintln!(
                                    "note: {what} now agrees; remove it from EXPECTED_TO_FAIL ({why})"
                                );
                            }
                            "same".to_string()
                        } else {
                            failures.push(format!("{what}: kernel vs bpfvm: {}", d.join("; ")));
                            "DIFFERENT".to_string()
                        }
                    }
                    (Err(err), Some((helper, why))) if err.contains(helper) => {
                        format!("expected failure: {why}")
                    }
                    (Err(err), _) => {
                        failures.push(format!("{what}: bpfvm error: {err}"));
                        "bpfvm ERROR".to_string()
                    }
                };
                // The kernel against the README too, where the README has the row.
                if let Some(e) = README
                    .iter()
                    .find(|e| e.object == *object && e.program == *program && e.packet == name)
                {
                    let d = readme_differences(e, &k);
                    if !d.is_empty() {
                        failures.push(format!("{what}: kernel vs README: {}", d.join("; ")));
                    }
                }
                table.push(format!(
                    "| {object} | {program} | {name} | {} | {verdict} |",
                    k.retval
                ));
            }
        }
        eprintln!("| object | program | packet | kernel returns | bpfvm |");
        eprintln!("|---|---|---|---|---|");
        for line in &table {
            eprintln!("{line}");
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// One call of checksum helper `helper` (10: `bpf_l3_csum_replace`, 11:
    /// `bpf_l4_csum_replace`) from a tc program on `tcp_syn`, in the kernel and in bpfvm:
    /// (return value, packet out).
    fn csum_call(helper: u32, offset: u64, from: u64, to: u64, flags: u64) -> [(u32, Vec<u8>); 2] {
        use bpfvm_isa::asm::{Dialect, assemble};
        use bpfvm_kernel::{ProgLoad, ProgType, TestRun};
        let src = format!(
            "r2 = {offset} ll\nr3 = {from} ll\nr4 = {to} ll\nr5 = {flags} ll\ncall {helper}\nexit"
        );
        let slots = assemble(&src, Dialect::Llvm).expect("assembles");
        let frame = packet("tcp_syn");

        let prog = Bpf::new()
            .prog_load(&ProgLoad::new(ProgType(3), &slots))
            .unwrap_or_else(|e| panic!("{src}: {e}\n{}", e.log().unwrap_or_default()));
        let mut out = vec![0u8; frame.len() + 64];
        let r = prog
            .test_run(&mut TestRun {
                data_in: &frame,
                data_out: Some(&mut out),
                repeat: 1,
                ..TestRun::default()
            })
            .expect("test run");
        out.truncate(r.data_size_out as usize);

        let loaded = bpfvm_runtime::LoadedProgram::new(
            bpfvm_isa::Program::from_slots(slots).expect("valid"),
            bpfvm_runtime::ProgramType::Kernel(bpfvm_abi::ProgramType::SchedCls),
        )
        .expect("loads");
        let prog = bpfvm::Program::from_loaded("csum", std::sync::Arc::new(loaded));
        let mut skb = SkBuff::new();
        skb.set_field(16, eth_protocol(&frame));
        let mut pkt = Packet::new(&frame, 0, 0);
        let ret = prog
            .run(
                &mut Context::SkBuff {
                    skb: &mut skb,
                    packet: &mut pkt,
                },
                &RunOptions::new(),
            )
            .expect("bpfvm run");
        [(r.retval, out), (ret as u32, pkt.data().to_vec())]
    }

    #[test]
    fn checksum_helpers_match_the_kernel() {
        if !kernel_available_for_test("checksum_helpers_match_the_kernel") {
            return;
        }
        const PSEUDO: u64 = 1 << 4;
        const MANGLED_0: u64 = 1 << 5;
        const ENFORCE: u64 = 1 << 6;
        const IPV6: u64 = 1 << 7;
        // tcp_syn: IPv4 checksum at 24 (f97b), TCP checksum at 50 (0000), length 54.
        let ttl_old = u64::from(u16::from_ne_bytes([0x40, 0x06]));
        let ttl_new = u64::from(u16::from_ne_bytes([0x3f, 0x06]));
        let saddr = u64::from(u32::from_ne_bytes([0xc0, 0xa8, 0, 1]));
        let new_addr = u64::from(u32::from_ne_bytes([10, 1, 2, 3]));
        let cases: &[(&str, u32, u64, u64, u64, u64)] = &[
            ("l3 2-byte field", 10, 24, ttl_old, ttl_new, 2),
            ("l3 4-byte field", 10, 24, saddr, new_addr, 4),
            ("l3 difference", 10, 24, 0, 0x1234_5678, 0),
            ("l3 difference with from", 10, 24, 1, 0x1234_5678, 0),
            ("l3 size 3", 10, 24, 0, 1, 3),
            ("l3 size 8", 10, 24, 0, 1, 8),
            ("l3 pseudo-header flag", 10, 24, saddr, new_addr, 4 | PSEUDO),
            ("l3 odd offset", 10, 25, 0, 1, 2),
            ("l3 offset past 0xffff", 10, 0x1_0000, 0, 1, 2),
            ("l3 last two bytes", 10, 52, 0, 1, 2),
            ("l3 past the end", 10, 54, 0, 1, 2),
            (
                "l3 from/to wider than the field",
                10,
                24,
                0xdead_0000 | ttl_old,
                0xbeef_0000 | ttl_new,
                2,
            ),
            ("l4 pseudo 4-byte", 11, 50, saddr, new_addr, 4 | PSEUDO),
            ("l4 2-byte", 11, 50, ttl_old, ttl_new, 2),
            ("l4 difference", 11, 50, 0, 0x8765_4321, PSEUDO),
            (
                "l4 mangled-0 on a zero checksum",
                11,
                50,
                saddr,
                new_addr,
                4 | MANGLED_0,
            ),
            (
                "l4 mangled-0 enforced",
                11,
                50,
                saddr,
                new_addr,
                4 | MANGLED_0 | ENFORCE,
            ),
            (
                "l4 mangled-0 result zero",
                11,
                50,
                0,
                0,
                2 | MANGLED_0 | ENFORCE,
            ),
            ("l4 result zero unmangled", 11, 50, 0, 0, 2),
            (
                "l4 mangled-0 on a non-zero checksum",
                11,
                24,
                ttl_old,
                ttl_new,
                2 | MANGLED_0,
            ),
            ("l4 IPv6 flag", 11, 50, 0, 0x1111, IPV6 | PSEUDO),
            ("l4 unknown flag", 11, 50, 0, 1, 2 | (1 << 8)),
            ("l4 size 1", 11, 50, 0, 1, 1),
            ("l4 past the end", 11, 54, 0, 1, 2),
            ("l4 odd offset", 11, 51, 0, 1, 2),
        ];
        let mut failures = Vec::new();
        for &(what, helper, offset, from, to, flags) in cases {
            let [kernel, bpfvm] = csum_call(helper, offset, from, to, flags);
            if kernel != bpfvm {
                failures.push(format!(
                    "{what}: kernel returned {:#x} packet {:02x?}, bpfvm {:#x} packet {:02x?}",
                    kernel.0, kernel.1, bpfvm.0, bpfvm.1
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
