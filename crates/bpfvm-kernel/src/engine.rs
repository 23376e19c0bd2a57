//! The kernel as an [`Engine`]: raw bytecode with the test ABI, run through
//! `BPF_PROG_LOAD` and `BPF_PROG_TEST_RUN`.
//!
//! The kernel has no "run this bytecode with r1 = memory, r2 = length" program type, so
//! the program goes in behind a wrapper ([`wrap`]) that sets up the test ABI in a way the
//! verifier accepts, calls the program as a local function, and stores the 64-bit `r0` in
//! a one-entry array map (a program's own return value reaches user space truncated to 32
//! bits). Where the memory lives depends on the program ([`Placement`]).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bpfvm_isa::RawInsn;
use bpfvm_runtime::{Engine, Fault, FaultKind, LoadedProgram, RunError, RunOptions};

use crate::error::KernelError;
use crate::map::{Map, MapCreate, MapType};
use crate::probe::{Unavailable, probe};
use crate::prog::{Prog, ProgLoad, ProgType, TestRun};
use crate::sys::Bpf;
use crate::verdict::Verdict;

/// Where the test memory lives in the kernel, and so what kind of pointer `r1` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// XDP packet data (`BPF_PROG_TEST_RUN`'s `data_in`, padded to the 14-byte Ethernet
    /// header the kernel insists on); the wrapper checks `data + len <= data_end` so the
    /// verifier knows `r1` has `len` readable and writable bytes. The default.
    Packet,
    /// The value of a one-entry array map of exactly `len` bytes, written before and read
    /// back after the run. Used when the program has atomic instructions (the verifier
    /// refuses atomics on packet pointers) or when the memory is larger than an XDP
    /// test-run packet can be.
    MapValue,
    /// The packet of a socket filter, for programs with legacy packet loads (`ldabs`,
    /// `ldind`), which only socket-buffer program types allow and which need the context
    /// in `r6`. The program is inlined rather than called (the kernel forbids legacy loads
    /// in programs with local calls); `r1` is 0, as direct packet access is not allowed.
    SocketFilter,
}

/// The largest memory passed as XDP packet data: a test-run packet must fit a page along
/// with the kernel's 256 bytes of headroom and its shared-info tailroom.
pub const MAX_PACKET_MEMORY: usize = 3000;

/// Ethernet header length: the least data `BPF_PROG_TEST_RUN` accepts for XDP and
/// socket filters.
const ETH_HLEN: usize = 14;

/// XDP's "pass" verdict, returned by the wrapper on the normal path.
const XDP_PASS: i32 = 2;

fn is_atomic(s: &RawInsn) -> bool {
    s.opcode & 0x07 == 0x03 && s.opcode & 0xe0 == 0xc0
}

fn is_legacy_packet_load(s: &RawInsn) -> bool {
    s.opcode & 0x07 == 0x00 && matches!(s.opcode & 0xe0, 0x20 | 0x40)
}

impl Placement {
    /// The placement for `slots` with `mem_len` bytes of memory.
    pub fn choose(slots: &[RawInsn], mem_len: usize) -> Placement {
        if slots.iter().any(is_legacy_packet_load) {
            Placement::SocketFilter
        } else if mem_len > MAX_PACKET_MEMORY || (mem_len > 0 && slots.iter().any(is_atomic)) {
            Placement::MapValue
        } else {
            Placement::Packet
        }
    }

    /// The kernel program type it loads as.
    pub fn prog_type(self) -> ProgType {
        match self {
            Placement::Packet | Placement::MapValue => ProgType::XDP,
            Placement::SocketFilter => ProgType::SOCKET_FILTER,
        }
    }
}

/// A wrapped program, ready for `BPF_PROG_LOAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// How the memory is passed.
    pub placement: Placement,
    /// Wrapper and program, as loaded.
    pub insns: Vec<RawInsn>,
    /// Slot index where the program's own instructions start.
    pub program_start: usize,
}

fn mov_imm(dst: u8, imm: i32) -> RawInsn {
    RawInsn::new(0xb7, dst, 0, 0, imm)
}

/// `lddw dst, map_value(fd) + 0` (`src` = `BPF_PSEUDO_MAP_VALUE`).
fn map_value(dst: u8, fd: i32) -> [RawInsn; 2] {
    [
        RawInsn::new(0x18, dst, 2, 0, fd),
        RawInsn::new(0, 0, 0, 0, 0),
    ]
}

/// Builds the wrapper around `slots` for `mem_len` bytes of memory. `result_fd` is the
/// one-entry array map (8-byte value) receiving `r0`; `mem_fd` the map holding the memory
/// for [`Placement::MapValue`].
///
/// For [`Placement::Packet`] (the program starts at slot 17):
/// ```text
///  0: r2 = *(u32 *)(r1 + 0)      ; xdp_md->data
///  1: r3 = *(u32 *)(r1 + 4)      ; xdp_md->data_end
///  2: r1 = r2
///  3: r2 += LEN
///  4: if r2 > r3 goto +10        ; the verifier now knows r1 has LEN bytes
///  5: r2 = LEN
///  6: r3 = 0 ; r4 = 0 ; r5 = 0
///  9: call +7                    ; the program, as a local function
/// 10: r1 = map_value(result) ll
/// 12: *(u64 *)(r1 + 0) = r0
/// 13: r0 = 2                     ; XDP_PASS: the normal path
/// 14: exit
/// 15: r0 = 0 ; exit              ; XDP_ABORTED: the packet was too short
/// ```
pub fn wrap(
    slots: &[RawInsn],
    mem_len: usize,
    result_fd: i32,
    mem_fd: Option<i32>,
) -> Result<Wrapped, KernelError> {
    let placement = Placement::choose(slots, mem_len);
    let len = i32::try_from(mem_len)
        .map_err(|_| KernelError::Invalid(format!("{mem_len} bytes of memory")))?;
    let epilog = |w: &mut Vec<RawInsn>, verdict: i32| {
        w.extend(map_value(1, result_fd));
        w.push(RawInsn::new(0x7b, 1, 0, 0, 0)); // *(u64 *)(r1 + 0) = r0
        w.push(mov_imm(0, verdict));
        w.push(RawInsn::new(0x95, 0, 0, 0, 0));
    };
    let mut w = Vec::new();
    match placement {
        Placement::Packet | Placement::MapValue => {
            let mut abort_jump = None;
            if placement == Placement::MapValue {
                let fd = mem_fd.ok_or_else(|| {
                    KernelError::Invalid("map-value placement needs the memory map".into())
                })?;
                w.extend(map_value(1, fd));
                w.push(mov_imm(2, len));
            } else if mem_len == 0 {
                w.push(mov_imm(1, 0));
                w.push(mov_imm(2, 0));
            } else {
                w.push(RawInsn::new(0x61, 2, 1, 0, 0)); // r2 = data
                w.push(RawInsn::new(0x61, 3, 1, 4, 0)); // r3 = data_end
                w.push(RawInsn::new(0xbf, 1, 2, 0, 0)); // r1 = r2
                w.push(RawInsn::new(0x07, 2, 0, 0, len)); // r2 += len
                abort_jump = Some(w.len());
                w.push(RawInsn::new(0x2d, 2, 3, 0, 0)); // if r2 > r3 goto abort
                w.push(mov_imm(2, len));
            }
            for r in 3..=5 {
                w.push(mov_imm(r, 0));
            }
            let call = w.len();
            w.push(RawInsn::new(0x85, 0, 1, 0, 0)); // call local (patched below)
            epilog(&mut w, XDP_PASS);
            if let Some(j) = abort_jump {
                w[j].off = (w.len() - (j + 1)) as i16;
                w.push(mov_imm(0, 0));
                w.push(RawInsn::new(0x95, 0, 0, 0, 0));
            }
            w[call].imm = (w.len() - (call + 1)) as i32;
            let program_start = w.len();
            w.extend_from_slice(slots);
            Ok(Wrapped {
                placement,
                insns: w,
                program_start,
            })
        }
        Placement::SocketFilter => {
            w.push(RawInsn::new(0xbf, 6, 1, 0, 0)); // r6 = ctx (legacy loads read it)
            w.push(mov_imm(1, 0));
            w.push(mov_imm(2, len));
            for r in [0, 3, 4, 5, 7, 8, 9] {
                w.push(mov_imm(r, 0));
            }
            let program_start = w.len();
            let epilog_at = program_start + slots.len();
            for (i, s) in slots.iter().enumerate() {
                let pc = program_start + i;
                if s.opcode == 0x95 {
                    // exit -> goto epilog (gotol when the distance needs 32 bits)
                    let dist = epilog_at as i64 - (pc as i64 + 1);
                    w.push(match i16::try_from(dist) {
                        Ok(off) => RawInsn::new(0x05, 0, 0, off, 0),
                        Err(_) => RawInsn::new(0x06, 0, 0, 0, dist as i32),
                    });
                } else {
                    w.push(*s);
                }
            }
            // Socket filters return 0 when a legacy load is out of bounds; 1 says "ran to
            // the end".
            epilog(&mut w, 1);
            Ok(Wrapped {
                placement,
                insns: w,
                program_start,
            })
        }
    }
}

/// A wrapped program loaded in the kernel with its maps.
#[derive(Debug)]
struct Prepared {
    placement: Placement,
    prog: Prog,
    result: Map,
    mem: Option<Map>,
    mem_len: usize,
    /// Runs share the result map: one at a time.
    lock: Mutex<()>,
}

/// A prepared program, or why the kernel refused it (kept so it is not verified again).
type CacheEntry = Arc<Result<Prepared, RunError>>;

/// Per-program cache: one prepared program per engine and memory length (the length is
/// a constant of the wrapper, so the verifier can check accesses against it).
#[derive(Default)]
struct KernelCache {
    entries: Mutex<HashMap<(u64, usize), CacheEntry>>,
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(0);

/// The kernel engine: runs programs with the test ABI of [`Engine::run`] in the real
/// kernel.
///
/// - The kernel verifies the program first; a rejection is [`RunError::Refused`] with
///   the errno and the verifier's reason.
/// - Helper ids are the kernel's (`call 5` is `ktime_get_ns` there, not the conformance
///   suite's "return r1"); the program's [`bpfvm_runtime::HelperRegistry`] is not used.
/// - The instruction budget of [`RunOptions`] cannot be enforced inside the kernel (the
///   verifier has proven termination instead); a cancellation is honoured before the run.
/// - Loaded programs are cached in the [`LoadedProgram`] per memory length; runs of one
///   program are serialized (they share the result map).
#[derive(Debug)]
pub struct KernelEngine {
    bpf: Bpf,
    id: u64,
}

impl KernelEngine {
    /// The engine on the real kernel, if [`probe`] says `bpf()` works here.
    pub fn new() -> Result<KernelEngine, Unavailable> {
        probe()?;
        Ok(KernelEngine::with_bpf(Bpf::new()))
    }

    /// The engine on `bpf` (a fake, in tests), without probing.
    pub fn with_bpf(bpf: Bpf) -> KernelEngine {
        KernelEngine {
            bpf,
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn refused(e: KernelError) -> RunError {
        RunError::Refused {
            engine: "kernel",
            reason: e.to_string(),
        }
    }

    fn failed(what: &str, e: KernelError) -> RunError {
        RunError::Failed {
            engine: "kernel",
            reason: format!("{what}: {e}"),
        }
    }

    /// The maps a wrapped program needs (the result map, and the memory map for
    /// [`Placement::MapValue`]) and the wrapped program referring to them.
    fn wrap_with_maps(
        &self,
        slots: &[RawInsn],
        mem_len: usize,
    ) -> Result<(Wrapped, Map, Option<Map>), RunError> {
        let result = self
            .bpf
            .map_create(&MapCreate::new(MapType::ARRAY, 4, 8, 1).with_name("bpfvm_r0"))
            .map_err(|e| Self::failed("creating the result map", e))?;
        let mem = if Placement::choose(slots, mem_len) == Placement::MapValue {
            let size = u32::try_from(mem_len).map_err(|_| {
                Self::failed("memory", KernelError::Invalid(format!("{mem_len} bytes")))
            })?;
            Some(
                self.bpf
                    .map_create(&MapCreate::new(MapType::ARRAY, 4, size, 1).with_name("bpfvm_mem"))
                    .map_err(|e| Self::failed("creating the memory map", e))?,
            )
        } else {
            None
        };
        let wrapped = wrap(
            slots,
            mem_len,
            result.fd().as_raw_fd(),
            mem.as_ref().map(|m| m.fd().as_raw_fd()),
        )
        .map_err(Self::refused)?;
        Ok((wrapped, result, mem))
    }

    /// The kernel verifier's verdict on `slots` as this engine loads them: behind the
    /// test-ABI wrapper for `mem_len` bytes of memory. `extra_level` adds log bits (see
    /// [`Bpf::verify`]).
    pub fn verify(
        &self,
        slots: &[RawInsn],
        mem_len: usize,
        extra_level: u32,
    ) -> Result<(Wrapped, Verdict), RunError> {
        let (wrapped, _result, _mem) = self.wrap_with_maps(slots, mem_len)?;
        let req =
            ProgLoad::new(wrapped.placement.prog_type(), &wrapped.insns).with_name("bpfvm_test");
        let verdict = self
            .bpf
            .verify(&req, extra_level)
            .map_err(|e| Self::failed("BPF_PROG_LOAD", e))?;
        Ok((wrapped, verdict))
    }

    fn prepare(&self, slots: &[RawInsn], mem_len: usize) -> Result<Prepared, RunError> {
        let (wrapped, result, mem) = self.wrap_with_maps(slots, mem_len)?;
        let prog = self
            .bpf
            .prog_load(
                &ProgLoad::new(wrapped.placement.prog_type(), &wrapped.insns)
                    .with_name("bpfvm_test"),
            )
            .map_err(Self::refused)?;
        Ok(Prepared {
            placement: wrapped.placement,
            prog,
            result,
            mem,
            mem_len,
            lock: Mutex::new(()),
        })
    }

    /// Runs raw, unvalidated bytecode with the test ABI: the kernel alone judges it. This
    /// is how the conformance runner asks the kernel about programs bpfvm's own loader
    /// rejects.
    pub fn run_slots(&self, slots: &[RawInsn], mem: &mut [u8]) -> Result<u64, RunError> {
        let prepared = self.prepare(slots, mem.len())?;
        prepared.run(mem)
    }
}

impl Prepared {
    fn run(&self, mem: &mut [u8]) -> Result<u64, RunError> {
        debug_assert_eq!(mem.len(), self.mem_len);
        let fail = KernelEngine::failed;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = 0u32.to_le_bytes();
        let retval = match self.placement {
            Placement::Packet => {
                let mut data = mem.to_vec();
                data.resize(mem.len().max(ETH_HLEN), 0);
                let mut out = vec![0; data.len()];
                let r = self
                    .prog
                    .test_run(&mut TestRun {
                        data_in: &data,
                        data_out: Some(&mut out),
                        repeat: 1,
                        ..TestRun::default()
                    })
                    .map_err(|e| fail("BPF_PROG_TEST_RUN", e))?;
                if r.data_size_out as usize != data.len() {
                    // bpf_xdp_adjust_head/tail moved the packet's edges: the memory the
                    // test ABI promised is no longer where it was.
                    return Err(fail(
                        "the program",
                        KernelError::Invalid(format!(
                            "changed the packet from {} to {} bytes",
                            data.len(),
                            r.data_size_out
                        )),
                    ));
                }
                mem.copy_from_slice(&out[..mem.len()]);
                r.retval
            }
            Placement::MapValue => {
                let map = self.mem.as_ref().ok_or_else(|| {
                    fail(
                        "map-value placement",
                        KernelError::Invalid("no memory map".into()),
                    )
                })?;
                map.update(&key, mem, 0)
                    .map_err(|e| fail("writing the memory map", e))?;
                let r = self
                    .prog
                    .test_run(&mut TestRun {
                        data_in: &[0; ETH_HLEN],
                        repeat: 1,
                        ..TestRun::default()
                    })
                    .map_err(|e| fail("BPF_PROG_TEST_RUN", e))?;
                map.lookup_into(&key, mem, 0)
                    .map_err(|e| fail("reading the memory map", e))?;
                r.retval
            }
            Placement::SocketFilter => {
                // The kernel pulls the Ethernet header: the program's packet starts after it.
                let mut data = vec![0; ETH_HLEN];
                data.extend_from_slice(mem);
                let r = self
                    .prog
                    .test_run(&mut TestRun {
                        data_in: &data,
                        repeat: 1,
                        ..TestRun::default()
                    })
                    .map_err(|e| fail("BPF_PROG_TEST_RUN", e))?;
                if r.retval == 0 {
                    // A legacy load was out of bounds: the kernel ended the program with 0.
                    return Ok(0);
                }
                r.retval
            }
        };
        let expected = match self.placement {
            Placement::SocketFilter => 1,
            _ => XDP_PASS as u32,
        };
        if retval != expected {
            return Err(fail(
                "the wrapper",
                KernelError::Invalid(format!("returned {retval}, expected {expected}")),
            ));
        }
        let mut r0 = [0u8; 8];
        self.result
            .lookup_into(&key, &mut r0, 0)
            .map_err(|e| fail("reading r0 from the result map", e))?;
        Ok(u64::from_le_bytes(r0))
    }
}

impl Engine for KernelEngine {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn run(
        &self,
        prog: &LoadedProgram,
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Result<u64, RunError> {
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Fault::at(prog.program().slots(), 0, FaultKind::Cancelled).into());
        }
        let cache = prog.engine_data(|_| KernelCache::default());
        let entry = {
            let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                entries
                    .entry((self.id, mem.len()))
                    .or_insert_with(|| Arc::new(self.prepare(prog.program().slots(), mem.len()))),
            )
        };
        match entry.as_ref() {
            Ok(prepared) => prepared.run(mem),
            Err(e) => Err(e.clone()),
        }
    }

    fn run_unvalidated(
        &self,
        slots: &[RawInsn],
        mem: &mut [u8],
        opts: &RunOptions,
    ) -> Option<Result<u64, RunError>> {
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Some(Err(Fault::at(slots, 0, FaultKind::Cancelled).into()));
        }
        Some(self.run_slots(slots, mem))
    }
}
