//! Differential tests of the formatting and string helpers: the same XDP program runs in
//! the kernel (`BPF_PROG_TEST_RUN`) and in bpfvm's interpreter, and must leave the same
//! bytes in the packet and return the same value.
//!
//! The programs copy the packet to a stack buffer, call `bpf_snprintf` (or `bpf_strncmp`)
//! on it with the arguments on the stack, and the format (a constant string, as the kernel
//! requires) in a frozen `BPF_F_RDONLY_PROG` array map addressed by `lddw src=6`, then
//! copy the buffer back and store the helper's return value after it. A format the kernel's verifier
//! rejects at load (it runs `bpf_bprintf_prepare` on constant formats) must be one for
//! which bpfvm's helper returns `-EINVAL`.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm_abi::{F_RDONLY_PROG, MapSpec, MapType};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_kernel::{Bpf, MapCreate, ProgLoad, ProgType, TestRun};
use bpfvm_runtime::maps::{Map, MapConfig, create_map};
use bpfvm_runtime::{
    Context, HelperRegistry, LoadedProgram, Packet, ProgramType, RunOptions, XdpMd,
};

const VALUE_SIZE: usize = 256;
/// Output bytes in the packet, then the 8-byte return value.
const OUT: usize = 128;
const PACKET: usize = OUT + 8;

/// Offsets of the data in the map value.
const FMT_AT: usize = 0;
const WORLD_AT: usize = 96;
const IP4_AT: usize = 104;
const IP6_AT: usize = 112;
const LONG_AT: usize = 128;

/// An argument: a number, or the address of a byte of the map value.
#[derive(Clone, Copy)]
enum A {
    N(u64),
    P(usize),
}

fn neg(v: i64) -> A {
    A::N(v as u64)
}

fn map_value(fmt: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_SIZE];
    v[FMT_AT..FMT_AT + fmt.len()].copy_from_slice(fmt);
    v[WORLD_AT..WORLD_AT + 6].copy_from_slice(b"world\0");
    v[IP4_AT..IP4_AT + 4].copy_from_slice(&[10, 0, 0, 1]);
    v[IP6_AT..IP6_AT + 16].copy_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0, 1,
    ]);
    for b in &mut v[LONG_AT..VALUE_SIZE - 1] {
        *b = b'q';
    }
    v
}

/// The start of every program: `r7` = packet (136 bytes checked), and its first 128
/// bytes copied to the stack buffer at `r10 - 224` (helpers may not write packets).
fn prologue() -> String {
    let mut s = String::from(
        "r6 = r1
         r7 = *(u32 *)(r6 + 0)
         r8 = *(u32 *)(r6 + 4)
         r2 = r7
         r2 += 136
         if r2 > r8 goto out\n",
    );
    for k in 0..OUT / 8 {
        s.push_str(&format!(
            "r1 = *(u64 *)(r7 + {})\n*(u64 *)(r10 - {}) = r1\n",
            8 * k,
            224 - 8 * k
        ));
    }
    s
}

/// The end: the stack buffer copied back to the packet, `r0` stored after it,
/// `XDP_PASS`.
fn epilogue() -> String {
    let mut s = String::new();
    for k in 0..OUT / 8 {
        s.push_str(&format!(
            "r1 = *(u64 *)(r10 - {})\n*(u64 *)(r7 + {}) = r1\n",
            224 - 8 * k,
            8 * k
        ));
    }
    s.push_str(
        "*(u64 *)(r7 + 128) = r0
         out:
         r0 = 2
         exit",
    );
    s
}

/// `r0 = snprintf(buf, size, fmt, stack args, n * 8)` with `buf` the stack copy of the
/// packet.
fn snprintf_source(args: &[A], size: usize) -> String {
    let mut s = prologue();
    for (k, a) in args.iter().enumerate() {
        match a {
            A::N(v) => s.push_str(&format!("r1 = {v:#x} ll\n")),
            A::P(off) => s.push_str(&format!("ld_pseudo r1, 6, 0, {off}\n")),
        }
        s.push_str(&format!("*(u64 *)(r10 - {}) = r1\n", 96 - 8 * k));
    }
    s.push_str(&format!(
        "r1 = r10
         r1 += -224
         r2 = {size}
         ld_pseudo r3, 6, 0, {FMT_AT}\n"
    ));
    if args.is_empty() {
        s.push_str("r4 = 0\n");
    } else {
        s.push_str("r4 = r10\nr4 += -96\n");
    }
    s.push_str(&format!("r5 = {}\ncall 165\n", args.len() * 8));
    s.push_str(&epilogue());
    s
}

/// `r0 = strncmp(buf, n, map value + s2)` with `buf` the stack copy of the packet.
fn strncmp_source(n: usize, s2: usize) -> String {
    let mut s = prologue();
    s.push_str(&format!(
        "r1 = r10
         r1 += -224
         r2 = {n}
         ld_pseudo r3, 6, 0, {s2}
         call 182\n"
    ));
    s.push_str(&epilogue());
    s
}

/// `r0 = strtol/strtoul(buf, n, flags, buf + 120)` with `buf` the stack copy of the
/// packet: the result lands in the packet's bytes 120..128.
fn strtox_source(id: u32, n: usize, flags: u64) -> String {
    let mut s = prologue();
    s.push_str(&format!(
        "r1 = r10
         r1 += -224
         r2 = {n}
         r3 = {flags}
         r4 = r10
         r4 += -104
         call {id}\n"
    ));
    s.push_str(&epilogue());
    s
}

/// The packet after the run, or `None` when the kernel's verifier rejected the program.
fn in_kernel(value: &[u8], src: &str, packet: &[u8]) -> Option<Vec<u8>> {
    let bpf = Bpf::new();
    let map = bpf
        .map_create(
            &MapCreate::new(bpfvm_kernel::MapType(2), 4, VALUE_SIZE as u32, 1)
                .with_flags(F_RDONLY_PROG),
        )
        .expect("kernel array map");
    map.update(&0u32.to_le_bytes(), value, 0).expect("update");
    map.freeze().expect("freeze");
    let slots = assemble(src, Dialect::Llvm).expect("assembles");
    let fds = [map.fd()];
    let prog = match bpf.prog_load(
        &ProgLoad::new(ProgType::XDP, &slots)
            .with_license("GPL")
            .with_fd_array(&fds, false),
    ) {
        Ok(p) => p,
        Err(e) => {
            let log = e.log().unwrap_or_default().to_string();
            assert!(
                log.contains("format") || log.contains("Invalid") || log.contains("invalid"),
                "rejected for another reason: {e}\n{log}"
            );
            return None;
        }
    };
    let mut out = vec![0u8; PACKET + 64];
    let r = prog
        .test_run(&mut TestRun {
            data_in: packet,
            data_out: Some(&mut out),
            ..TestRun::default()
        })
        .expect("test run");
    assert_eq!(r.retval, 2, "XDP_PASS");
    out.truncate(r.data_size_out as usize);
    Some(out)
}

/// The packet after the same run in bpfvm's interpreter.
fn in_bpfvm(value: &[u8], src: &str, packet: &[u8]) -> Vec<u8> {
    let spec = MapSpec {
        flags: F_RDONLY_PROG,
        ..MapSpec::new(MapType::Array, 4, VALUE_SIZE as u32, 1)
    };
    let map: Arc<dyn Map> =
        Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 20)).expect("array map"));
    map.update(&0u32.to_le_bytes(), value, 0).expect("update");
    let slots = assemble(src, Dialect::Llvm).expect("assembles");
    let t = ProgramType::Kernel(bpfvm_abi::ProgramType::Xdp);
    let prog = LoadedProgram::with_maps(
        Program::from_slots(slots).expect("valid program"),
        t,
        Arc::new(HelperRegistry::for_program_type(t)),
        vec![map],
    )
    .expect("loads");
    let mut pkt = Packet::xdp(packet);
    let mut ctx = Context::Xdp {
        md: XdpMd::default(),
        packet: &mut pkt,
    };
    let r = Interpreter::new()
        .run_context(&prog, &mut ctx, &RunOptions::new())
        .expect("runs");
    assert_eq!(r, 2, "XDP_PASS");
    pkt.data().to_vec()
}

fn ret_of(packet: &[u8]) -> i64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&packet[OUT..OUT + 8]);
    i64::from_le_bytes(w)
}

fn show(packet: &[u8]) -> String {
    let n = packet[..OUT].iter().position(|&b| b == 0xee).unwrap_or(OUT);
    format!(
        "{:?} -> {}",
        String::from_utf8_lossy(&packet[..n]),
        ret_of(packet)
    )
}

#[test]
fn snprintf_matches_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("snprintf_matches_the_kernel") {
        return;
    }
    let c = |ch: u8| A::N(u64::from(ch));
    let cases: Vec<(&str, Vec<A>, usize)> = vec![
        (
            "%d %d %i",
            vec![neg(-5), A::N(123), A::N(0x1_8000_0000)],
            OUT,
        ),
        ("%u %u", vec![neg(-1), A::N(7)], OUT),
        (
            "%x %X %lx %llX",
            vec![
                A::N(0xdead_beef),
                A::N(0xabc),
                A::N(1 << 32),
                A::N(u64::MAX),
            ],
            OUT,
        ),
        (
            "%lld %llu %ld %li",
            vec![neg(-9_000_000_000), A::N(u64::MAX), neg(i64::MIN), A::N(5)],
            OUT,
        ),
        (
            "[%5d][%-5d][%05d][%+d][% d][%-05d][%+u]",
            vec![
                neg(-42),
                A::N(7),
                neg(-42),
                A::N(3),
                A::N(3),
                A::N(9),
                A::N(4),
            ],
            OUT,
        ),
        (
            "%c%c%c [%3c][%-3c]",
            vec![c(b'a'), A::N(0x162), c(b'c'), c(b'x'), c(b'y')],
            OUT,
        ),
        (
            "[%s] [%8s] [%-8s]",
            vec![A::P(WORLD_AT), A::P(WORLD_AT), A::P(WORLD_AT)],
            OUT,
        ),
        ("[%s]", vec![A::N(0)], OUT),
        ("100%% %%d", vec![], OUT),
        ("%pI4 %pi4", vec![A::P(IP4_AT), A::P(IP4_AT)], OUT),
        ("%pI6", vec![A::P(IP6_AT)], OUT),
        ("%pi6", vec![A::P(IP6_AT)], OUT),
        ("%pI4", vec![A::N(0)], OUT),
        (
            "%px %20px|%-8px|",
            vec![A::N(0x1234), A::N(0x42), A::N(0x42)],
            OUT,
        ),
        ("%p %pK", vec![A::N(0), A::N(0)], OUT),
        ("%ps %pS", vec![A::N(0x1234), A::N(0x10)], OUT),
        ("%pI4x!", vec![A::P(IP4_AT)], OUT),
        // Preformatted addresses ignore the width; symbols do not.
        (
            "[%20pI4][%-20pi4][%12ps]",
            vec![A::P(IP4_AT), A::P(IP4_AT), A::N(0x1234)],
            OUT,
        ),
        (
            "twelve %d%d%d%d%d%d%d%d%d%d%d%d",
            (1..=12).map(A::N).collect(),
            OUT,
        ),
        // Truncation: the size is what the whole output needs.
        ("%d-%d", vec![A::N(12345), A::N(678)], 4),
        ("%d-%d", vec![A::N(12345), A::N(678)], 0),
        ("%s", vec![A::P(LONG_AT)], 64),
        ("abc%pI4", vec![A::P(IP4_AT)], 3),
        ("abc%pI4", vec![A::P(IP4_AT)], 5),
        ("%s|%d", vec![A::P(LONG_AT), A::N(1)], OUT),
        // Formats the kernel rejects.
        ("%o", vec![A::N(1)], OUT),
        ("%hd", vec![A::N(1)], OUT),
        ("%5.2d", vec![A::N(1)], OUT),
        ("%#x", vec![A::N(1)], OUT),
        ("%d %d", vec![A::N(1)], OUT),
        ("%sx", vec![A::P(WORLD_AT)], OUT),
        ("%pz", vec![A::N(1)], OUT),
        ("%lc", vec![A::N(1)], OUT),
    ];
    let packet = vec![0xeeu8; PACKET];
    let mut failures = Vec::new();
    for (fmt, args, size) in &cases {
        let mut f = fmt.as_bytes().to_vec();
        f.push(0);
        let value = map_value(&f);
        let src = snprintf_source(args, *size);
        let ours = in_bpfvm(&value, &src, &packet);
        match in_kernel(&value, &src, &packet) {
            Some(kernel) => {
                if kernel != ours {
                    failures.push(format!(
                        "{fmt:?} size {size}: kernel {} bpfvm {}",
                        show(&kernel),
                        show(&ours)
                    ));
                }
            }
            None => {
                if ret_of(&ours) != -22 {
                    failures.push(format!(
                        "{fmt:?}: the kernel rejects it at load, bpfvm returned {}",
                        ret_of(&ours)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn strncmp_matches_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("strncmp_matches_the_kernel") {
        return;
    }
    // s2 candidates in the map value: "world" at 96, "qqq…" at 128, "" at 255.
    let value = map_value(b"\0");
    let cases: &[(&[u8], usize, usize)] = &[
        (b"world", 5, WORLD_AT),
        (b"world", 6, WORLD_AT),
        (b"worle", 5, WORLD_AT),
        (b"workd", 5, WORLD_AT),
        (b"worldx", 6, WORLD_AT),
        (b"wor", 3, WORLD_AT),
        (b"w\0rld", 5, WORLD_AT),
        (b"\xff", 1, WORLD_AT),
        (b"a", 1, VALUE_SIZE - 1),
        (b"qqqq", 4, LONG_AT),
        (b"qqqr", 4, LONG_AT),
    ];
    let mut failures = Vec::new();
    for (s1, n, s2) in cases {
        let mut packet = vec![0xeeu8; PACKET];
        packet[..s1.len()].copy_from_slice(s1);
        let src = strncmp_source(*n, *s2);
        let ours = in_bpfvm(&value, &src, &packet);
        let kernel = in_kernel(&value, &src, &packet).expect("the kernel accepts strncmp");
        if kernel != ours {
            failures.push(format!(
                "{s1:?} n {n} s2 at {s2}: kernel {} bpfvm {}",
                ret_of(&kernel),
                ret_of(&ours)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn strtol_and_strtoul_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("strtol_and_strtoul_match_the_kernel") {
        return;
    }
    let value = map_value(b"\0");
    let inputs: &[&[u8]] = &[
        b"123",
        b"  -42xyz",
        b"0x1F",
        b"0X",
        b"0777",
        b"-0",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"9223372036854775808",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-1",
        b"   ",
        b"abc",
        b"12\x0034",
        b"000000000000000000000000000000000000000000000000000000000000000000001",
    ];
    let mut failures = Vec::new();
    for id in [105u32, 106] {
        for input in inputs {
            for flags in [0u64, 8, 10, 16, 7, 0x20 | 10] {
                let mut packet = vec![0xeeu8; PACKET];
                packet[..input.len()].copy_from_slice(input);
                let src = strtox_source(id, input.len(), flags);
                let ours = in_bpfvm(&value, &src, &packet);
                let kernel = in_kernel(&value, &src, &packet).expect("the kernel accepts strtol");
                if kernel != ours {
                    failures.push(format!(
                        "helper {id} {:?} flags {flags:#x}: kernel {} res {:?}, bpfvm {} res {:?}",
                        String::from_utf8_lossy(input),
                        ret_of(&kernel),
                        &kernel[120..128],
                        ret_of(&ours),
                        &ours[120..128]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
