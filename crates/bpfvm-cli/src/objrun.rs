//! `bpfvm run OBJ.o` and `bpfvm map dump`: `bpftool prog run` and `bpftool map dump` for
//! userspace.
//!
//! A program of an ELF object runs on a context built the way `BPF_PROG_TEST_RUN` builds
//! it for its type (`net/bpf/test_run.c`):
//! - XDP: the packet in an XDP frame (256 bytes of headroom), `ingress_ifindex` 1 (the
//!   loopback device), `rx_queue_index` 0; `--ctx-in` may set the two (bytes 12..20 of
//!   `struct xdp_md`), the pointer fields must be 0 as the kernel requires.
//! - tc (`sched_cls`, `sched_act`): `__sk_buff` on the whole frame; socket filters and
//!   `cgroup_skb` see it from the network header (the kernel pulled the 14-byte Ethernet
//!   header), and their packet out has 14 zero bytes in front, as the kernel copies it
//!   out. `protocol` is `eth_type_trans`'s, `pkt_type` `PACKET_OTHERHOST`, `ifindex` 1;
//!   `--ctx-in` bytes are laid over the struct first.
//! - Every other type: a context struct from `--ctx HEX` or `--ctx-json`, read-only
//!   (writable for `syscall` programs, whose context the kernel copies back).
//!
//! Maps live as long as the process; `--state FILE` keeps them across processes, as a
//! pinned map does in the kernel: loaded before the run when the file exists, saved after.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bpfvm::{Object, OpenObject, Program};
use bpfvm_abi::ProgramType as KernelType;
use bpfvm_btf::{Btf, TypeId, TypeKind};
use bpfvm_object::MapContents;
use bpfvm_runtime::{Context, Packet, RunError, RunOptions, SkBuff, XdpMd};
use serde_json::{Value, json};

use crate::{Failure, RunArgs, btf_value};

/// `println!` that ignores a closed stdout (`bpfvm run ... | head`): the run still
/// finishes and saves its `--state`, and nothing panics.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!`, likewise.
macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// What a context of the program's type is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CtxKind {
    /// `struct xdp_md` on a packet.
    Xdp,
    /// `struct __sk_buff` on a packet; `l2`: the packet starts at the Ethernet header.
    Skb { l2: bool },
    /// A plain struct.
    Struct,
}

fn ctx_kind(t: KernelType) -> CtxKind {
    match t {
        KernelType::Xdp => CtxKind::Xdp,
        KernelType::SchedCls | KernelType::SchedAct => CtxKind::Skb { l2: true },
        KernelType::SocketFilter | KernelType::CgroupSkb => CtxKind::Skb { l2: false },
        _ => CtxKind::Struct,
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure(msg.into(), 2)
}

/// Hex bytes: `0a 00 00 00`, `0a000000` or `0x0a000000`; whitespace is ignored.
pub fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, Failure> {
    let t: String = text.split_whitespace().collect();
    let t = t.strip_prefix("0x").unwrap_or(&t);
    if !t.len().is_multiple_of(2) {
        return Err(bad(format!(
            "{what}: `{text}` has an odd number of hex digits"
        )));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            t.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "{what}: `{}` is not a hex byte",
                        t.get(i..i + 2).unwrap_or(t)
                    ))
                })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bpftool`'s `fprint_hex`: bytes separated by a space, two after every 8th, a newline
/// after every 16th.
fn fprint_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(if i % 16 == 0 {
                "\n"
            } else if i % 8 == 0 {
                "  "
            } else {
                " "
            });
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `bpftool prog run`'s `hex_print` of a packet: offset, 16 bytes in pairs, ASCII.
fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:07x}\t", row * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x}{}", if j % 2 == 1 { " " } else { "" });
                }
                None => out.push_str(if j % 2 == 1 { "   " } else { "  " }),
            }
        }
        out.push_str("| ");
        out.extend(chunk.iter().map(|&c| {
            if (b' '..=b'~').contains(&c) {
                c as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

/// What `bpftool map dump` needs to know about a map.
#[derive(Debug, Clone)]
struct MapInfo {
    type_name: String,
    key_size: usize,
    value_size: usize,
    percpu: bool,
    frozen: bool,
    btf_key: u32,
    btf_value: u32,
}

fn map_infos(open: &OpenObject) -> BTreeMap<String, MapInfo> {
    open.spec()
        .maps
        .iter()
        .map(|m| {
            let type_name = m.type_name().to_string();
            (
                m.name.clone(),
                MapInfo {
                    percpu: type_name.contains("percpu"),
                    type_name,
                    key_size: m.key_size as usize,
                    value_size: m.value_size as usize,
                    frozen: m.frozen,
                    btf_key: m.btf_key_type_id,
                    btf_value: m.btf_value_type_id,
                },
            )
        })
        .collect()
}

/// One entry as `bpftool map dump` prints it (plain output).
fn entry_plain(info: &MapInfo, key: &[u8], value: &[u8]) -> String {
    let break_names = info.key_size > 16 || info.value_size > 16;
    let single_line = info.key_size + info.value_size <= 24 && !break_names;
    let sep_name = if break_names { "\n" } else { " " };
    let mut out = format!("key:{sep_name}{}", fprint_hex(key));
    if info.percpu {
        for (cpu, slot) in percpu_slots(info, value).enumerate() {
            let _ = write!(out, "\nvalue (CPU {cpu:02}):{sep_name}{}", fprint_hex(slot));
        }
    } else {
        out.push_str(if single_line { "  " } else { "\n" });
        let _ = write!(out, "value:{sep_name}{}", fprint_hex(value));
    }
    out
}

/// The BTF-formatted key and value (`bpftool map dump` with BTF), when the object has
/// BTF for the map.
fn formatted(btf: Option<&Btf>, info: &MapInfo, key: &[u8], value: &[u8]) -> Option<Value> {
    let btf = btf?;
    if info.btf_value == 0 {
        return None;
    }
    let k = if info.btf_key == 0 {
        // Data sections (`.bss`, `.data`, `.rodata`) have only a value type: key 0.
        json!(u32::from_le_bytes(key.try_into().ok()?))
    } else {
        btf_value::format(btf, TypeId(info.btf_key), key)
    };
    if info.percpu {
        let values: Vec<Value> = percpu_slots(info, value)
            .enumerate()
            .map(|(cpu, slot)| {
                json!({"cpu": cpu, "value": btf_value::format(btf, TypeId(info.btf_value), slot)})
            })
            .collect();
        return Some(json!({"key": k, "values": values}));
    }
    Some(json!({"key": k, "value": btf_value::format(btf, TypeId(info.btf_value), value)}))
}

/// A per-CPU value's slots (each `value_size` rounded up to 8, as the syscall lays them
/// out), each cut to `value_size`.
fn percpu_slots<'a>(info: &MapInfo, value: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let size = info.value_size;
    value
        .chunks(size.next_multiple_of(8).max(1))
        .map(move |slot| &slot[..size.min(slot.len())])
}

fn hex_array(bytes: &[u8]) -> Value {
    Value::Array(bytes.iter().map(|b| json!(format!("{b:#04x}"))).collect())
}

/// A map's entries as `bpftool -j map dump` prints them.
fn entries_json(btf: Option<&Btf>, info: &MapInfo, contents: &MapContents) -> Value {
    Value::Array(
        contents
            .iter()
            .map(|(k, v)| {
                // Per-CPU maps: one value per slot, as `bpftool -j` prints them.
                let mut e = if info.percpu {
                    let values: Vec<Value> = percpu_slots(info, v)
                        .enumerate()
                        .map(|(cpu, slot)| json!({"cpu": cpu, "value": hex_array(slot)}))
                        .collect();
                    json!({"key": hex_array(k), "values": values})
                } else {
                    json!({"key": hex_array(k), "value": hex_array(v)})
                };
                if let Some(f) = formatted(btf, info, k, v)
                    && let Some(obj) = e.as_object_mut()
                {
                    obj.insert("formatted".into(), f);
                }
                e
            })
            .collect(),
    )
}

/// The saved state: the object it belongs to and every map's entries.
struct State {
    object: PathBuf,
    maps: BTreeMap<String, MapContents>,
}

fn read_state(path: &Path) -> Result<Option<State>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("--state {}: {e}", path.display()))),
    };
    let what = format!("--state {}", path.display());
    let v: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("{what}: not JSON: {e}")))?;
    let object = v
        .get("object")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{what}: no \"object\" path")))?;
    let mut maps = BTreeMap::new();
    let Some(m) = v.get("maps").and_then(Value::as_object) else {
        return Err(bad(format!("{what}: no \"maps\" object")));
    };
    for (name, entries) in m {
        let mut contents = MapContents::new();
        let entries = entries
            .as_array()
            .ok_or_else(|| bad(format!("{what}: map `{name}` is not an array of entries")))?;
        for e in entries {
            let field = |f: &str| {
                e.get(f)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("{what}: map `{name}`: an entry has no \"{f}\"")))
                    .and_then(|s| parse_hex(&format!("{what}: map `{name}` {f}"), s))
            };
            contents.insert(field("key")?, field("value")?);
        }
        maps.insert(name.clone(), contents);
    }
    Ok(Some(State {
        object: PathBuf::from(object),
        maps,
    }))
}

fn write_state(
    path: &Path,
    object: &Path,
    maps: &BTreeMap<String, MapContents>,
) -> Result<(), Failure> {
    let maps: serde_json::Map<String, Value> = maps
        .iter()
        .map(|(name, c)| {
            let entries = c
                .iter()
                .map(|(k, v)| json!({"key": hex(k), "value": hex(v)}))
                .collect();
            (name.clone(), Value::Array(entries))
        })
        .collect();
    let object = std::path::absolute(object).unwrap_or_else(|_| object.to_path_buf());
    let doc = json!({"object": object.to_string_lossy(), "maps": maps});
    let text = serde_json::to_string_pretty(&doc).map_err(|e| bad(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| bad(format!("--state {}: {e}", path.display())))
}

/// Writes `state` into the object's maps (frozen ones — `.rodata`, `.kconfig` — keep
/// what the object and `--global` gave them; program arrays and maps of maps keep their
/// static slots). Keys the state lacks are deleted.
fn restore(
    object: &Object,
    infos: &BTreeMap<String, MapInfo>,
    state: &State,
) -> Result<(), Failure> {
    for (name, entries) in &state.maps {
        let map = object
            .map(name)
            .map_err(|e| bad(format!("--state: {e}; is the state from another object?")))?;
        // Frozen maps keep the object's contents; slots of program arrays and maps of
        // maps refer to this process's programs and maps, which the object's own
        // initialisation set up again.
        if infos.get(name).is_some_and(|i| {
            i.frozen || i.type_name == "prog_array" || i.type_name.ends_with("of_maps")
        }) {
            continue;
        }
        let m = map.map();
        let err = |e: bpfvm_abi::MapError| bad(format!("--state: map `{name}`: {e}"));
        for key in m.keys().map_err(err)? {
            if !entries.contains_key(&key) {
                // Arrays cannot delete; their keys are always in a saved state.
                let _ = m.delete(&key);
            }
        }
        for (k, v) in entries {
            m.update(k, v, 0).map_err(err)?;
        }
    }
    Ok(())
}

/// `eth_type_trans`'s `skb->protocol` for a frame, as the u32 field reads it.
fn eth_protocol(frame: &[u8]) -> u32 {
    let ty = match frame.get(12..14) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => return 0,
    };
    let proto = if ty >= 0x600 {
        ty
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    u32::from(u16::from_ne_bytes(proto.to_be_bytes()))
}

fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let file =
        std::fs::File::open(path).map_err(|e| bad(format!("--pcap {}: {e}", path.display())))?;
    let mut reader = pcap_file::pcap::PcapReader::new(file)
        .map_err(|e| bad(format!("--pcap {}: not a pcap file: {e}", path.display())))?;
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.map_err(|e| {
            bad(format!(
                "--pcap {}: packet {}: {e}",
                path.display(),
                out.len() + 1
            ))
        })?;
        out.push(p.data.into_owned());
    }
    Ok(out)
}

/// The program to run: `--program`, `--section`, or the only one.
fn pick_program<'a>(
    spec: &'a bpfvm_object::Object,
    path: &Path,
    a: &RunArgs,
) -> Result<&'a bpfvm_object::ProgramSpec, Failure> {
    let list = || {
        spec.programs
            .iter()
            .map(|p| format!("{} (section {})", p.name, p.section))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matching: Vec<_> = spec
        .programs
        .iter()
        .filter(|p| a.program.as_ref().is_none_or(|n| *n == p.name))
        .filter(|p| a.section.as_ref().is_none_or(|s| *s == p.section))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(bad(format!(
            "{}: no program {}{}(the object has: {})",
            path.display(),
            a.program
                .as_ref()
                .map(|n| format!("named `{n}` "))
                .unwrap_or_default(),
            a.section
                .as_ref()
                .map(|s| format!("in section `{s}` "))
                .unwrap_or_default(),
            list()
        ))),
        _ => Err(bad(format!(
            "{}: several programs match; choose one with --program or --section: {}",
            path.display(),
            matching
                .iter()
                .map(|p| format!("{} (section {})", p.name, p.section))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The context struct's BTF type: the program function's first parameter, through the
/// pointer.
fn ctx_type(btf: &Btf, p: &bpfvm_object::ProgramSpec) -> Option<TypeId> {
    let (_, func) = p.func_info.iter().find(|(pc, _)| *pc == 0)?;
    let TypeKind::Func { proto, .. } = &btf.type_by_id(*func)?.kind else {
        return None;
    };
    let TypeKind::FuncProto { params, .. } = &btf.type_by_id(*proto)?.kind else {
        return None;
    };
    let ptr = btf.skip_mods_and_typedefs(params.first()?.ty);
    let TypeKind::Ptr { target } = btf.type_by_id(ptr)?.kind else {
        return None;
    };
    let target = btf.skip_mods_and_typedefs(target);
    match btf.type_by_id(target)?.kind {
        TypeKind::Struct { .. } | TypeKind::Union { .. } => Some(target),
        _ => None,
    }
}

/// The context bytes from `--ctx` or `--ctx-json`.
fn struct_ctx(
    a: &RunArgs,
    btf: Option<&Btf>,
    p: &bpfvm_object::ProgramSpec,
) -> Result<Vec<u8>, Failure> {
    if let Some(h) = &a.ctx {
        return parse_hex("--ctx", h);
    }
    let Some(arg) = &a.ctx_json else {
        return Err(bad(format!(
            "program `{}` is a {} program: give its context with --ctx HEX or --ctx-json",
            p.name,
            p.kind.type_name()
        )));
    };
    let text = if arg.trim_start().starts_with(['{', '[']) {
        arg.clone()
    } else {
        std::fs::read_to_string(arg).map_err(|e| bad(format!("--ctx-json {arg}: {e}")))?
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("--ctx-json: not JSON: {e}")))?;
    if let Value::Array(items) = &v
        && items.iter().all(Value::is_u64)
    {
        return items
            .iter()
            .map(|b| {
                b.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(|| bad(format!("--ctx-json: {b} is not a byte")))
            })
            .collect();
    }
    let ty = btf.and_then(|b| ctx_type(b, p).map(|t| (b, t)));
    let Some((btf, ty)) = ty else {
        return Err(bad(format!(
            "--ctx-json: program `{}` has no BTF context struct to name fields by; give a JSON array of bytes",
            p.name
        )));
    };
    btf_value::encode(btf, ty, &v).map_err(|e| bad(format!("--ctx-json: {e}")))
}

/// The result of one program run on one input.
struct Outcome {
    retval: u64,
    packet: Option<Vec<u8>>,
    nanos: u128,
}

fn fault_failure(prog: &Program, e: bpfvm::Error) -> Failure {
    match e {
        bpfvm::Error::Run {
            source: RunError::Fault(f),
            ..
        } => {
            let text = prog
                .loaded()
                .program()
                .get(f.pc)
                .map(|i| crate::insn_text(&i))
                .unwrap_or_default();
            Failure(format!("fault: {f}\n    at pc {}: {text}", f.pc), 1)
        }
        other => Failure(other.to_string(), 1),
    }
}

struct Runner<'a> {
    prog: Program,
    kind: CtxKind,
    ctx_in: Option<Vec<u8>>,
    opts: RunOptions,
    repeat: u32,
    args: &'a RunArgs,
}

impl Runner<'_> {
    fn run_packet(&self, frame: &[u8]) -> Result<Outcome, Failure> {
        let mut last = None;
        let start = Instant::now();
        for _ in 0..self.repeat {
            last = Some(self.run_packet_once(frame)?);
        }
        let nanos = start.elapsed().as_nanos() / u128::from(self.repeat);
        let (retval, packet) = last.ok_or_else(|| bad("--repeat must be at least 1"))?;
        Ok(Outcome {
            retval,
            packet: Some(packet),
            nanos,
        })
    }

    fn run_packet_once(&self, frame: &[u8]) -> Result<(u64, Vec<u8>), Failure> {
        let run = |ctx: &mut Context<'_>| {
            self.prog
                .run(ctx, &self.opts)
                .map_err(|e| fault_failure(&self.prog, e))
        };
        match self.kind {
            CtxKind::Xdp => {
                let mut md = XdpMd {
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                };
                if let Some(c) = &self.ctx_in {
                    if c.len() > 24 {
                        return Err(bad(format!(
                            "--ctx-in: {} bytes; struct xdp_md has 24",
                            c.len()
                        )));
                    }
                    let mut b = [0u8; 24];
                    b[..c.len()].copy_from_slice(c);
                    if b[..12].iter().any(|&x| x != 0) || b[20..].iter().any(|&x| x != 0) {
                        return Err(bad(
                            "--ctx-in: data, data_end, data_meta and egress_ifindex must be 0, as the kernel requires",
                        ));
                    }
                    let word = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                    md.ingress_ifindex = word(12);
                    md.rx_queue_index = word(16);
                }
                let mut packet = Packet::xdp(frame);
                let r = run(&mut Context::Xdp {
                    md,
                    packet: &mut packet,
                })?;
                Ok((r, packet.data().to_vec()))
            }
            CtxKind::Skb { l2 } => {
                let mut skb = SkBuff::new();
                if let Some(c) = &self.ctx_in {
                    let bytes = skb.bytes_mut();
                    if c.len() > bytes.len() {
                        return Err(bad(format!(
                            "--ctx-in: {} bytes; struct __sk_buff has {}",
                            c.len(),
                            bytes.len()
                        )));
                    }
                    bytes[..c.len()].copy_from_slice(c);
                }
                skb.set_field(4, 3) // pkt_type = PACKET_OTHERHOST
                    .set_field(16, eth_protocol(frame));
                if skb.field(40) == 0 {
                    skb.set_field(40, 1); // ifindex: the loopback device
                }
                let start = if l2 { 0 } else { 14.min(frame.len()) };
                let mut packet = Packet::new(&frame[start..], 0, 0);
                let r = run(&mut Context::SkBuff {
                    skb: &mut skb,
                    packet: &mut packet,
                })?;
                let mut out = vec![0u8; start];
                out.extend_from_slice(packet.data());
                Ok((r, out))
            }
            CtxKind::Struct => Err(bad("internal: a struct context is not a packet")),
        }
    }

    fn run_struct(&self, bytes: &[u8], writable: bool) -> Result<Outcome, Failure> {
        let mut last = None;
        let start = Instant::now();
        for _ in 0..self.repeat {
            let mut b = bytes.to_vec();
            let r = self
                .prog
                .run(
                    &mut Context::Struct {
                        bytes: &mut b,
                        writable,
                    },
                    &self.opts,
                )
                .map_err(|e| fault_failure(&self.prog, e))?;
            last = Some((r, b));
        }
        let nanos = start.elapsed().as_nanos() / u128::from(self.repeat);
        let (retval, out) = last.ok_or_else(|| bad("--repeat must be at least 1"))?;
        Ok(Outcome {
            retval,
            packet: (writable && self.args.data_out.is_some()).then_some(out),
            nanos,
        })
    }
}

/// `bpftool prog run`'s line: the return value as the kernel reports it (`__u32 retval`)
/// and the wall time per run (the interpreter's, not comparable with the kernel's).
fn print_outcome(o: &Outcome, label: &str, repeat: u32) {
    let avg = if repeat > 1 { " (average)" } else { "" };
    out!(
        "{label}Return value: {}, duration{avg}: {}ns",
        o.retval as u32,
        o.nanos
    );
    if let Some(p) = &o.packet {
        out!("Packet out ({} bytes):", p.len());
        out_raw!("{}", hex_dump(p));
    }
}

/// Prints the maps whose entries differ between `before` and `after`.
fn print_changes(
    btf: Option<&Btf>,
    infos: &BTreeMap<String, MapInfo>,
    before: &BTreeMap<String, MapContents>,
    after: &BTreeMap<String, MapContents>,
) {
    let empty = MapContents::new();
    let mut any = false;
    for (name, now) in after {
        let was = before.get(name).unwrap_or(&empty);
        if was == now {
            continue;
        }
        let Some(info) = infos.get(name) else {
            continue;
        };
        if !any {
            out!("\nMaps changed by the run:");
            any = true;
        }
        let added = now.keys().filter(|k| !was.contains_key(*k)).count();
        let removed = was.keys().filter(|k| !now.contains_key(*k)).count();
        let changed = now
            .iter()
            .filter(|(k, v)| was.get(*k).is_some_and(|w| w != *v))
            .count();
        out!(
            "{name} ({}): {added} added, {changed} changed, {removed} removed",
            info.type_name
        );
        let show = |mark: &str, k: &[u8], v: &[u8]| {
            for (i, line) in entry_plain(info, k, v).lines().enumerate() {
                out!("{}{line}", if i == 0 { mark } else { "  " });
            }
            if let Some(f) = formatted(btf, info, k, v) {
                out!("  = {f}");
            }
        };
        for (k, v) in now {
            match was.get(k) {
                None => show("+ ", k, v),
                Some(w) if w != v => {
                    show("- ", k, w);
                    show("+ ", k, v);
                }
                Some(_) => {}
            }
        }
        for (k, v) in was {
            if !now.contains_key(k) {
                show("- ", k, v);
            }
        }
    }
    if !any {
        out!("\nNo map changed.");
    }
}

/// `bpfvm run OBJ.o ...`.
pub fn cmd_run_object(a: &RunArgs, bytes: Vec<u8>) -> Result<(), Failure> {
    let path = a.input.input.clone();
    if a.trace {
        return Err(bad("--trace runs bytecode, not objects (yet)"));
    }
    // The kernel engine runs raw bytecode behind the test ABI; objects with maps and
    // contexts go to the kernel through bpftool.
    if a.engine == "kernel" {
        return Err(bad(
            "objects run on `interp` or `jit`; to run an object in the kernel use `bpftool prog run`",
        ));
    }
    let engine: std::sync::Arc<dyn bpfvm_runtime::Engine> =
        bpfvm_conformance::engines::engine_by_name(&a.engine)
            .map_err(bad)?
            .into();
    if a.mem.is_some() {
        return Err(bad(
            "--mem is for bytecode; give an object's program a --packet, --pcap, --data, --ctx or --ctx-json",
        ));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut open = OpenObject::open_bytes(&name, bytes)
        .map_err(|e| Failure(format!("{}: {e}", path.display()), 1))?;
    for g in &a.global {
        let (var, value) = g
            .split_once('=')
            .ok_or_else(|| bad(format!("--global `{g}`: expected NAME=HEX")))?;
        let value = parse_hex(&format!("--global {var}"), value)?;
        open.set_global(var, &value)
            .map_err(|e| bad(e.to_string()))?;
    }
    let spec_prog = pick_program(open.spec(), &path, a)?.clone();
    let btf = open.spec().btf.clone();
    let infos = map_infos(&open);
    let kind =
        ctx_kind(KernelType::from_u32(spec_prog.kind.prog_type).unwrap_or(KernelType::Unspec));
    let object = open
        .load()
        .map_err(|e| Failure(format!("{}: {e}", path.display()), 1))?;
    let prog = object
        .program(&spec_prog.name)
        .map_err(|e| Failure(e.to_string(), 1))?
        .with_engine(engine);
    // Compile (or pre-decode) before the clock starts: the duration is of the runs.
    prog.prepare().map_err(|e| Failure(e.to_string(), 1))?;
    crate::print_jit_dump(prog.loaded(), &a.engine, a.dump_ir, a.dump_asm)?;

    let state = match &a.state {
        Some(s) => read_state(s)?,
        None => None,
    };
    if let Some(st) = &state {
        restore(&object, &infos, st)?;
    }
    let before = object.map_contents();

    let mut opts = RunOptions::new();
    opts.budget = a.budget;
    let runner = Runner {
        prog,
        kind,
        ctx_in: a
            .ctx_in
            .as_deref()
            .map(|h| parse_hex("--ctx-in", h))
            .transpose()?,
        opts,
        repeat: a.repeat,
        args: a,
    };
    if a.repeat == 0 {
        return Err(bad("--repeat must be at least 1"));
    }
    let inputs = [a.packet.is_some(), a.pcap.is_some(), a.data.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    let ctx_given = a.ctx.is_some() || a.ctx_json.is_some();
    let mut last_out = None;
    let header = || {
        out!(
            "{} (section {}, {} program)",
            spec_prog.name,
            spec_prog.section,
            spec_prog.kind.type_name()
        )
    };
    match kind {
        CtxKind::Xdp | CtxKind::Skb { .. } => {
            if ctx_given {
                return Err(bad(format!(
                    "program `{}` is a {} program: it runs on a packet (--packet, --pcap or --data), --ctx-in sets its {} fields",
                    spec_prog.name,
                    spec_prog.kind.type_name(),
                    if kind == CtxKind::Xdp {
                        "xdp_md"
                    } else {
                        "__sk_buff"
                    }
                )));
            }
            let packets = match (&a.packet, &a.pcap, &a.data) {
                _ if inputs > 1 => {
                    return Err(bad("give one of --packet, --pcap and --data"));
                }
                (Some(f), _, _) => vec![
                    std::fs::read(f).map_err(|e| bad(format!("--packet {}: {e}", f.display())))?,
                ],
                (_, Some(f), _) => read_pcap(f)?,
                (_, _, Some(h)) => vec![parse_hex("--data", h)?],
                _ => {
                    return Err(bad(format!(
                        "program `{}` is a {} program: give a packet with --packet FILE, --pcap FILE or --data HEX",
                        spec_prog.name,
                        spec_prog.kind.type_name()
                    )));
                }
            };
            if packets.is_empty() {
                return Err(bad("--pcap: the capture has no packets"));
            }
            let many = packets.len() > 1;
            header();
            for (i, p) in packets.iter().enumerate() {
                let label = if many {
                    format!("packet {}: ", i + 1)
                } else {
                    String::new()
                };
                let o = runner.run_packet(p)?;
                print_outcome(&o, &label, a.repeat);
                last_out = o.packet;
            }
        }
        CtxKind::Struct => {
            if inputs > 0 || a.ctx_in.is_some() {
                return Err(bad(format!(
                    "program `{}` is a {} program: it runs on a context struct (--ctx HEX or --ctx-json), not a packet",
                    spec_prog.name,
                    spec_prog.kind.type_name()
                )));
            }
            let bytes = struct_ctx(a, btf.as_ref(), &spec_prog)?;
            if let Some(ty) = btf
                .as_ref()
                .and_then(|b| ctx_type(b, &spec_prog).map(|t| (b, t)))
                && let Ok(size) = ty.0.size_of(ty.1)
                && bytes.len() as u64 > size
            {
                return Err(bad(format!(
                    "context of {} bytes; the program's context struct `{}` has {size}",
                    bytes.len(),
                    ty.0.name_of(ty.1).unwrap_or("?")
                )));
            }
            let writable =
                KernelType::from_u32(spec_prog.kind.prog_type) == Some(KernelType::Syscall);
            if a.data_out.is_some() && !writable {
                return Err(bad(format!(
                    "--data-out: a {} program has no packet out and cannot write its context",
                    spec_prog.kind.type_name()
                )));
            }
            header();
            let o = runner.run_struct(&bytes, writable)?;
            print_outcome(&o, "", a.repeat);
            last_out = o.packet;
        }
    }
    if let (Some(f), Some(out)) = (&a.data_out, &last_out) {
        std::fs::write(f, out).map_err(|e| bad(format!("--data-out {}: {e}", f.display())))?;
    }
    let after = object.map_contents();
    print_changes(btf.as_ref(), &infos, &before, &after);
    if let Some(s) = &a.state {
        write_state(s, &path, &after)?;
    }
    Ok(())
}

/// `bpfvm map dump` arguments.
#[derive(Debug, clap::Args)]
pub struct MapDumpArgs {
    /// The state file a `bpfvm run OBJ.o --state FILE` saved.
    #[arg(long)]
    state: PathBuf,
    /// Only this map (default: every map, each under its name).
    name: Option<String>,
    /// Print JSON as `bpftool -j map dump` does (with BTF: a `formatted` key and value).
    #[arg(long)]
    json: bool,
}

/// `bpfvm map dump --state FILE [NAME]`.
pub fn cmd_map_dump(a: &MapDumpArgs) -> Result<(), Failure> {
    let state = read_state(&a.state)?
        .ok_or_else(|| bad(format!("--state {}: no such file", a.state.display())))?;
    // The object gives the maps' sizes, types and BTF.
    let open = OpenObject::open_file(&state.object)
        .map_err(|e| bad(format!("--state {}: its object: {e}", a.state.display())))?;
    let infos = map_infos(&open);
    let btf = open.spec().btf.as_ref();
    let names: Vec<&String> = match &a.name {
        Some(n) => vec![state.maps.get_key_value(n).map(|(k, _)| k).ok_or_else(|| {
            bad(format!(
                "no map named `{n}` in the state (it has: {})",
                state.maps.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?],
        None => state.maps.keys().collect(),
    };
    let mut json_out = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        let (Some(contents), Some(info)) = (state.maps.get(*name), infos.get(*name)) else {
            return Err(bad(format!("map `{name}` is not in the state's object")));
        };
        // `bpfvm run --state` loads through the map, which checks sizes; a dump reads the
        // file alone, so an edited or stale state is caught here, not shown as if real.
        for (k, v) in contents {
            let value_ok = if info.percpu {
                v.len() >= info.value_size
            } else {
                v.len() == info.value_size
            };
            if k.len() != info.key_size || !value_ok {
                return Err(bad(format!(
                    "--state {}: map `{name}`: an entry of a {}-byte key and {}-byte value; the map's are {} and {}",
                    a.state.display(),
                    k.len(),
                    v.len(),
                    info.key_size,
                    info.value_size
                )));
            }
        }
        if a.json {
            json_out.insert((*name).clone(), entries_json(btf, info, contents));
            continue;
        }
        if a.name.is_none() {
            if i > 0 {
                out!("");
            }
            out!("{name} ({}):", info.type_name);
        }
        for (k, v) in contents {
            out!("{}", entry_plain(info, k, v));
        }
        let n = contents.len();
        out!("Found {n} element{}", if n == 1 { "" } else { "s" });
    }
    if a.json {
        let doc = match &a.name {
            Some(n) => json_out.remove(n).unwrap_or(Value::Null),
            None => Value::Object(json_out),
        };
        out!(
            "{}",
            serde_json::to_string(&doc).map_err(|e| bad(e.to_string()))?
        );
    }
    Ok(())
}
