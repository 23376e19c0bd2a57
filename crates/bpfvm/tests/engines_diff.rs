//! The interpreter and the JIT through the embedding API: every program of every ELF
//! fixture that bpfvm can run (`conformance-tests/elf/*.o`) and the examples' programs
//! (`examples/bpf/*.o`), on the same inputs, give the same return value or fault, the same
//! packet or context out, the same map contents, ring-buffer records and trace lines.
//!
//! Each engine gets its own load of the object (the same bytes, the same host setup), so
//! the maps start equal; a program then runs on a sequence of inputs on each side, so
//! map state carried from one run to the next is compared too. Clocks and random numbers
//! come from a [`FixedEnvironment`] per side with the same start, step and seed.
//!
//! Covered: XDP, tc and socket-filter programs over the fixture packets (globals,
//! BPF-to-BPF calls at cpu v2/v3/v4, `bpf_loop` and `bpf_for_each_map_elem` callbacks,
//! BTF and legacy maps of every kind, tail calls (into a program with globals of its
//! own too), ring buffers, maps of maps, checksum
//! helpers), the other program types of `multi.o`, and the three examples: `xdp_lb` on
//! generated traffic, `latency` on a simulated operation stream, `policy` on its events.

#[path = "../examples/policy.rs"]
mod policy;
#[allow(dead_code)] // the example's report is not used here
#[path = "../examples/xdp_lb.rs"]
mod xdp_lb;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bpfvm::{Array, Object, OpenObject, RingBuf};
use bpfvm_abi::MapType;
use bpfvm_runtime::{
    Context, FaultKind, FixedEnvironment, Packet, RunError, RunOptions, SkBuff, Task, XdpMd,
};

/// Enough for any of these programs; a runaway one fails instead of hanging.
const BUDGET: u64 = 10_000_000;

fn elf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance-tests/elf")
        .join(name)
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/bpf")
        .join(name)
}

fn hex(text: &str) -> Vec<u8> {
    let t = text.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every packet of `conformance-tests/elf/packets/`, by name.
fn fixture_packets() -> Vec<(String, Vec<u8>)> {
    let dir = elf("packets");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("packets/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, hex(&std::fs::read_to_string(&p).expect("packet")))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 6, "packets: {out:?}");
    out
}

/// One run's input: how the program is given its context.
#[derive(Debug, Clone)]
enum Input {
    /// An XDP frame (`ingress_ifindex` 1).
    Xdp(Vec<u8>),
    /// An `__sk_buff` over a frame: a tc program sees it from the Ethernet header, a
    /// socket filter from the IPv4 header (as `BPF_PROG_TEST_RUN` presents them).
    Skb { frame: Vec<u8>, socket: bool },
    /// A host struct (tracing programs, the examples' events).
    Struct { bytes: Vec<u8>, writable: bool },
}

/// What one run did: the return value or the error, and the context's bytes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    result: Result<u64, String>,
    out: Vec<u8>,
}

/// The error of a run, with addresses left out: each engine's packet lives in its own
/// buffer.
fn describe(e: &bpfvm::Error) -> String {
    if let bpfvm::Error::Run {
        source: RunError::Fault(f),
        ..
    } = e
    {
        let mut f = *f;
        if let FaultKind::OutOfBounds { addr, .. } | FaultKind::MisalignedAtomic { addr, .. } =
            &mut f.kind
        {
            *addr = 0;
        }
        return format!("fault {f}");
    }
    e.to_string()
}

fn run(prog: &bpfvm::Program, input: &Input, opts: &RunOptions) -> Run {
    match input {
        Input::Xdp(frame) => {
            let mut packet = Packet::xdp(frame);
            let mut ctx = Context::Xdp {
                md: XdpMd {
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                },
                packet: &mut packet,
            };
            let result = prog.run(&mut ctx, opts).map_err(|e| describe(&e));
            Run {
                result,
                out: packet.data().to_vec(),
            }
        }
        Input::Skb { frame, socket } => {
            let ty = u16::from_be_bytes([frame[12], frame[13]]);
            let mut skb = SkBuff::new();
            skb.set_field(4, 3) // pkt_type = PACKET_OTHERHOST
                .set_field(16, u32::from(u16::from_ne_bytes(ty.to_be_bytes())))
                .set_field(40, 1); // ifindex
            let start = if *socket { 14 } else { 0 };
            let mut packet = Packet::new(&frame[start..], 0, 0);
            let result = prog
                .run(
                    &mut Context::SkBuff {
                        skb: &mut skb,
                        packet: &mut packet,
                    },
                    opts,
                )
                .map_err(|e| describe(&e));
            let mut out = packet.data().to_vec();
            out.extend_from_slice(skb.bytes_mut());
            Run { result, out }
        }
        Input::Struct { bytes, writable } => {
            let mut bytes = bytes.clone();
            let result = prog
                .run(
                    &mut Context::Struct {
                        bytes: &mut bytes,
                        writable: *writable,
                    },
                    opts,
                )
                .map_err(|e| describe(&e));
            Run { result, out: bytes }
        }
    }
}

/// One side: an object, its environment, and the engine its programs run on.
struct Side {
    object: Object,
    env: Arc<FixedEnvironment>,
    jit: bool,
}

impl Side {
    fn new(object: Object, jit: bool) -> Side {
        Side {
            object,
            env: Arc::new(FixedEnvironment::new(
                1_000_000_000,
                1_000,
                7,
                Task::with_comm(42, 42, 1000, 1000, "engines_diff"),
            )),
            jit,
        }
    }

    fn program(&self, name: &str) -> bpfvm::Program {
        let p = self.object.program(name).expect("program");
        let p = if self.jit {
            p.with_engine(Arc::new(bpfvm_jit::Jit::new()))
        } else {
            p
        };
        assert_eq!(p.engine_name(), if self.jit { "jit" } else { "interp" });
        p
    }

    fn run(&self, program: &str, input: &Input) -> Run {
        let opts = RunOptions::new()
            .with_budget(BUDGET)
            .with_env(self.env.clone());
        run(&self.program(program), input, &opts)
    }

    /// Map contents, ring-buffer records drained since the last call, and trace lines.
    fn state(
        &self,
    ) -> (
        BTreeMap<String, bpfvm_object::MapContents>,
        Vec<Vec<u8>>,
        Vec<String>,
    ) {
        let mut records = Vec::new();
        for m in self.object.maps() {
            if m.spec().map_type == MapType::Ringbuf {
                let rb = RingBuf::new(m).expect("ring buffer");
                rb.consume(|r| records.push(r.to_vec()));
            }
        }
        (self.object.map_contents(), records, self.env.take_trace())
    }
}

/// Two loads of one object (interpreter, JIT) that run the same inputs.
struct Pair {
    what: String,
    interp: Side,
    jit: Side,
    /// Runs compared, and runs that returned a value on the interpreter.
    runs: usize,
    ok: usize,
    failures: Vec<String>,
}

impl Pair {
    fn new(what: &str, load: impl Fn() -> Object) -> Pair {
        Pair {
            what: what.to_string(),
            interp: Side::new(load(), false),
            jit: Side::new(load(), true),
            runs: 0,
            ok: 0,
            failures: Vec::new(),
        }
    }

    /// Both sides' clocks to `ns`.
    fn set_time(&self, ns: u64) {
        self.interp.env.set_time(ns);
        self.jit.env.set_time(ns);
    }

    fn check(&mut self, program: &str, label: &str, input: &Input) {
        let a = self.interp.run(program, input);
        let b = self.jit.run(program, input);
        self.runs += 1;
        let what = format!("{} {program} {label}", self.what);
        match &a.result {
            Ok(_) => self.ok += 1,
            Err(e) => eprintln!("{what}: both engines: {e}"),
        }
        if a.result != b.result {
            self.failures.push(format!(
                "{what}: interpreter {:?}, jit {:?}",
                a.result, b.result
            ));
        }
        if a.out != b.out {
            self.failures.push(format!(
                "{what}: context out differs:\ninterpreter {:02x?}\njit         {:02x?}",
                a.out, b.out
            ));
        }
        let (ma, ra, ta) = self.interp.state();
        let (mb, rb, tb) = self.jit.state();
        for (name, ca) in &ma {
            let cb = mb.get(name);
            if cb != Some(ca) {
                self.failures.push(format!(
                    "{what}: map `{name}` differs:\ninterpreter {ca:02x?}\njit         {cb:02x?}"
                ));
            }
        }
        if ma.len() != mb.len() {
            self.failures
                .push(format!("{what}: maps {:?} vs {:?}", ma.keys(), mb.keys()));
        }
        if ra != rb {
            self.failures.push(format!(
                "{what}: ring-buffer records differ:\ninterpreter {ra:02x?}\njit         {rb:02x?}"
            ));
        }
        if ta != tb {
            self.failures
                .push(format!("{what}: trace differs: {ta:?} vs {tb:?}"));
        }
    }

    /// Asserts no difference and that at least `min_ok` runs returned a value (so the
    /// comparison is not of two identical errors).
    fn finish(self, min_ok: usize) {
        eprintln!(
            "{}: {} runs compared, {} returned a value",
            self.what, self.runs, self.ok
        );
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
        assert!(
            self.ok >= min_ok,
            "{}: only {} of {} runs returned a value",
            self.what,
            self.ok,
            self.runs
        );
    }
}

fn load_elf(name: &str) -> impl Fn() -> Object + '_ {
    move || Object::load_file(elf(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Each program on every fixture packet, in sequence on one pair of loads.
fn packets_through(object: &str, programs: &[(&str, Option<bool>)]) {
    let mut pair = Pair::new(object, load_elf(object));
    let packets = fixture_packets();
    for &(program, skb) in programs {
        for (name, frame) in &packets {
            let input = match skb {
                None => Input::Xdp(frame.clone()),
                Some(socket) => Input::Skb {
                    frame: frame.clone(),
                    socket,
                },
            };
            pair.check(program, name, &input);
        }
    }
    let n = programs.len() * packets.len();
    pair.finish(n);
}

const XDP: Option<bool> = None;
const TC: Option<bool> = Some(false);
const SOCKET: Option<bool> = Some(true);

#[test]
fn runnable_programs_agree() {
    packets_through(
        "runnable.o",
        &[("xdp_filter", XDP), ("sock_snap", SOCKET), ("tc_ttl", TC)],
    );
}

#[test]
fn globals_agree() {
    packets_through("globals.o", &[("xdp_globals", XDP)]);
}

#[test]
fn subprograms_agree_at_every_cpu_version() {
    for object in ["subprogs_v2.o", "subprogs_v3.o", "subprogs_v4.o"] {
        packets_through(object, &[("xdp_calls", XDP), ("sock_calls", SOCKET)]);
    }
}

#[test]
fn callbacks_agree() {
    packets_through("callbacks.o", &[("xdp_loop", XDP), ("xdp_for_each", XDP)]);
}

#[test]
fn btf_maps_and_the_tail_call_agree() {
    // xdp_maps on `magic` tail-calls xdp_tail through jump_table.
    packets_through("maps_btf.o", &[("xdp_maps", XDP), ("xdp_tail", XDP)]);
}

#[test]
fn tail_calls_into_a_program_with_its_own_globals_agree() {
    // xdp_dispatch (no globals) tail-calls xdp_count, which uses .data and .bss and
    // tail-calls itself; the globals carry over from one packet to the next.
    packets_through(
        "tail_globals.o",
        &[("xdp_dispatch", XDP), ("xdp_count", XDP)],
    );
}

#[test]
fn legacy_maps_agree() {
    packets_through(
        "maps_legacy.o",
        &[("sock_len_hist", SOCKET), ("xdp_first_byte", XDP)],
    );
}

/// CO-RE against bpfvm's own types (`kconfig.o` is not here: the embedding API has no
/// way to supply its `__kconfig` externs yet).
#[test]
fn core_programs_agree() {
    let mut pair = Pair::new("core.o", load_elf("core.o"));
    let packets = fixture_packets();
    for (name, frame) in &packets {
        pair.check("core_xdp", name, &Input::Xdp(frame.clone()));
    }
    for round in 0..2 {
        pair.check(
            "core_task",
            &format!("round {round}"),
            &Input::Struct {
                bytes: vec![0; 64],
                writable: false,
            },
        );
    }
    pair.finish(packets.len());
}

#[test]
fn multi_section_programs_agree() {
    let load = || {
        OpenObject::open_file(elf("multi.o"))
            .expect("opens")
            .with_program_type("multi_custom", bpfvm_abi::ProgramType::SocketFilter)
            .load()
            .expect("loads")
    };
    let mut pair = Pair::new("multi.o", load);
    let packets = fixture_packets();
    let frame = &packets[0].1;
    let names: Vec<String> = pair
        .interp
        .object
        .program_names()
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 14, "{names:?}");
    for name in &names {
        let ty = pair
            .interp
            .object
            .program(name)
            .expect("program")
            .program_type();
        let input = match ty.kernel() {
            Some(bpfvm_abi::ProgramType::Xdp) => Input::Xdp(frame.clone()),
            Some(bpfvm_abi::ProgramType::SchedCls) => Input::Skb {
                frame: frame.clone(),
                socket: false,
            },
            Some(bpfvm_abi::ProgramType::SocketFilter) => Input::Skb {
                frame: frame.clone(),
                socket: true,
            },
            // Tracing types read a host struct (pt_regs, tracepoint args…).
            _ => Input::Struct {
                bytes: (0..=255u8).collect(),
                writable: false,
            },
        };
        pair.check(name, "", &input);
        pair.check(name, "again", &input);
    }
    pair.finish(2 * names.len());
}

#[test]
fn xdp_lb_agrees_on_generated_traffic() {
    let load = || {
        let backends = xdp_lb::backends();
        let mut open = OpenObject::open_file(example("xdp_lb.o")).expect("opens");
        open.set_global_value("vip", &xdp_lb::VIP).expect("vip");
        open.set_global_value("vport", &xdp_lb::VPORT.to_be())
            .expect("vport");
        open.set_global_value("num_backends", &(backends.len() as u32))
            .expect("num_backends");
        let object = open.load().expect("loads");
        let table: Array<xdp_lb::Backend> =
            Array::new(object.map("backends").expect("backends")).expect("array");
        for (i, b) in backends.iter().enumerate() {
            table.set(i as u32, b).expect("set");
        }
        object
    };
    let mut pair = Pair::new("xdp_lb.o", load);
    let mut packets = Vec::new();
    for i in 0..150u32 {
        let saddr = [192, 168, (i / 200) as u8, (i % 200) as u8 + 1];
        let sport = 1024 + (i * 7919 % 60000) as u16;
        packets.push(xdp_lb::build_packet(
            saddr,
            xdp_lb::VIP,
            sport,
            xdp_lb::VPORT,
            i % 3 == 0,
        ));
        if i % 10 == 0 {
            packets.push(xdp_lb::build_packet(saddr, [10, 0, 0, 7], sport, 80, false));
        }
        if i % 25 == 0 {
            let mut t = xdp_lb::build_packet(saddr, xdp_lb::VIP, sport, xdp_lb::VPORT, false);
            t.truncate(40);
            packets.push(t);
            // Every shorter prefix too: the bounds checks at each header.
            let full = xdp_lb::build_packet(saddr, xdp_lb::VIP, sport, xdp_lb::VPORT, true);
            for len in [0, 1, 13, 14, 33, 34, 37, 41] {
                packets.push(full[..len].to_vec());
            }
        }
    }
    for (i, p) in packets.iter().enumerate() {
        pair.check("xdp_lb", &format!("packet {i}"), &Input::Xdp(p.clone()));
    }
    let n = packets.len();
    pair.finish(n);
}

#[test]
fn latency_agrees_on_a_simulated_stream() {
    /// `struct op_event` of latency.c.
    fn event(id: u64) -> Input {
        let mut bytes = id.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        Input::Struct {
            bytes,
            writable: false,
        }
    }
    let mut pair = Pair::new("latency.o", || {
        Object::load_file(example("latency.o")).expect("loads")
    });
    let mut rng = 11u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut events = Vec::new();
    let mut now = 1_000_000_000u64;
    for id in 0..300u64 {
        now += next() % 20_000;
        let latency = (1000u64 << (next() % 16)) + next() % 1000;
        events.push((now, false, id));
        events.push((now + latency, true, id));
    }
    // An end without a start, and a start never ended.
    events.push((now + 5, true, 9_999));
    events.push((now + 6, false, 10_000));
    events.sort_unstable();
    for (t, is_end, id) in events {
        pair.set_time(t);
        let program = if is_end { "op_end" } else { "op_start" };
        pair.check(program, &format!("id {id}"), &event(id));
    }
    pair.finish(600);
}

#[test]
fn policy_agrees_on_its_events() {
    let load = || {
        let object = Object::load_file(policy::object_path()).expect("loads");
        policy::install(&object, &policy::example_policy()).expect("policy installed");
        object
    };
    let mut pair = Pair::new("policy.o", load);
    let mut events = policy::example_events();
    // Unpolicied users and paths, a path filling all 64 bytes, an unknown kind.
    events.push(policy::FileEvent::new(7, 4242, policy::KIND_OPEN, "/tmp/x"));
    events.push(policy::FileEvent::new(
        7,
        4242,
        policy::KIND_EXEC,
        &"/a".repeat(40),
    ));
    events.push(policy::FileEvent::new(7, 0, 9, "/etc/shadow"));
    for (i, ev) in events.iter().enumerate() {
        let input = Input::Struct {
            bytes: bytemuck::bytes_of(ev).to_vec(),
            writable: false,
        };
        pair.check("check_event", &format!("event {i}"), &input);
    }
    let n = events.len();
    pair.finish(n);
}
