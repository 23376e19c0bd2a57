//! The map, ring buffer and hook benchmark programs (`benches/maps.rs`), with bpfvm's side
//! of the setup: the same LLVM-syntax source is assembled once and runs in bpfvm's
//! interpreter and, through [`crate::kernel`], in the kernel.
//!
//! Every program is a socket filter that ignores its context. The map operations are
//! unrolled (no loop), so the kernel's verifier sees straight-line code and both engines
//! execute exactly the same instructions.
//!
//! ```
//! use bpfvm_benches::maps::{PROG_OPS, lookup_sum, prog_key};
//! assert_eq!(prog_key(3), 30);
//! assert_eq!(lookup_sum(PROG_OPS), 346_800);
//! ```

use std::sync::Arc;

use bpfvm_abi::{MapSpec, MapType};
use bpfvm_isa::Program;
use bpfvm_isa::asm::{AsmError, Dialect, assemble};
use bpfvm_runtime::maps::{Map, MapConfig, MapError, create_map};
use bpfvm_runtime::{HelperRegistry, LoadError, LoadedProgram, ProgramType};

/// Entries pre-filled in the benchmark hash maps (keys `0..HASH_ENTRIES`).
pub const HASH_ENTRIES: u32 = 1024;
/// Map operations one run of the lookup/update programs makes.
pub const PROG_OPS: u32 = 100;
/// Records one run of the ring buffer program writes.
pub const RING_RECORDS: u32 = 100;
/// Bytes of each ring buffer record (the sample, without the 8-byte header).
pub const RECORD_LEN: u32 = 64;
/// Ring buffer size: room for several runs' records, so a run never finds it full.
pub const RING_SIZE: u32 = 256 * 1024;
/// `BPF_RB_NO_WAKEUP`: both engines skip waking a consumer (the benchmark's consumer
/// polls nothing; it consumes after each run).
pub const RB_NO_WAKEUP: u64 = 1;
/// Bytes of the packet the socket filters get (the kernel wants at least an Ethernet
/// header).
pub const PACKET_LEN: usize = 64;

/// `BPF_FUNC_map_lookup_elem`.
const MAP_LOOKUP_ELEM: u32 = 1;
/// `BPF_FUNC_map_update_elem`.
const MAP_UPDATE_ELEM: u32 = 2;
/// `BPF_FUNC_ringbuf_output`.
const RINGBUF_OUTPUT: u32 = 130;

/// The value stored under `key` when the benchmark maps are filled.
pub const fn fill_value(key: u32) -> u64 {
    key as u64 * 7 + 3
}

/// The key the `i`-th map operation of a program uses: spread over the map.
pub const fn prog_key(i: u32) -> u32 {
    i * 10
}

/// What [`hash_lookup_source`]`(n)` returns on a map filled with [`fill_value`]: the sum
/// of the values it looked up.
pub fn lookup_sum(n: u32) -> u64 {
    (0..n).map(|i| fill_value(prog_key(i))).sum()
}

/// `n` lookups of keys [`prog_key`]`(0..n)` in map 0, returning the sum of the `u64`
/// values found (9 instructions per lookup; see [`crate::engines::lookups_insns`]).
pub fn hash_lookup_source(n: u32) -> String {
    let mut s = String::from("r6 = 0\n");
    for i in 0..n {
        s.push_str(&format!(
            "r1 = {key}
             *(u32 *)(r10 - 4) = r1
             r1 = map[idx:0]
             r2 = r10
             r2 += -4
             call {MAP_LOOKUP_ELEM}
             if r0 == 0 goto +2
             r1 = *(u64 *)(r0 + 0)
             r6 += r1\n",
            key = prog_key(i),
        ));
    }
    s.push_str("r0 = r6\nexit\n");
    s
}

/// `n` updates (`BPF_ANY`) of keys [`prog_key`]`(0..n)` in map 0, the `i`-th storing
/// value `i`; returns how many succeeded.
pub fn hash_update_source(n: u32) -> String {
    let mut s = String::from("r6 = 0\n");
    for i in 0..n {
        s.push_str(&format!(
            "r1 = {key}
             *(u32 *)(r10 - 4) = r1
             r1 = {i}
             *(u64 *)(r10 - 16) = r1
             r1 = map[idx:0]
             r2 = r10
             r2 += -4
             r3 = r10
             r3 += -16
             r4 = 0
             call {MAP_UPDATE_ELEM}
             if r0 != 0 goto +1
             r6 += 1\n",
            key = prog_key(i),
        ));
    }
    s.push_str("r0 = r6\nexit\n");
    s
}

/// The bytes of record `j` (`j` in the first byte, then a fixed pattern): what
/// [`ringbuf_source`] writes, for tests to check.
pub fn record(j: u32) -> Vec<u8> {
    let mut r: Vec<u8> = (0..RECORD_LEN).map(|b| (b * 3 + 1) as u8).collect();
    r[0] = j as u8;
    r
}

/// `n` `bpf_ringbuf_output` calls of [`RECORD_LEN`] bytes from the stack (record `j` is
/// [`record`]`(j)`) into map 0 with `BPF_RB_NO_WAKEUP`; returns how many succeeded.
pub fn ringbuf_source(n: u32) -> String {
    let mut s = String::from("r6 = 0\n");
    let base = record(0);
    for (k, chunk) in base.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        s.push_str(&format!(
            "r1 = {:#x} ll\n*(u64 *)(r10 - {}) = r1\n",
            u64::from_le_bytes(w),
            RECORD_LEN as usize - 8 * k
        ));
    }
    for j in 0..n {
        s.push_str(&format!(
            "r1 = {b}
             *(u8 *)(r10 - {len}) = r1
             r1 = map[idx:0]
             r2 = r10
             r2 += -{len}
             r3 = {len}
             r4 = {RB_NO_WAKEUP}
             call {RINGBUF_OUTPUT}
             if r0 != 0 goto +1
             r6 += 1\n",
            b = j as u8,
            len = RECORD_LEN,
        ));
    }
    s.push_str("r0 = r6\nexit\n");
    s
}

/// `r0 = 0; exit`.
pub fn empty_source() -> String {
    "r0 = 0\nexit\n".to_string()
}

/// Assembles a benchmark source.
pub fn assemble_source(src: &str) -> Result<Vec<bpfvm_isa::RawInsn>, AsmError> {
    assemble(src, Dialect::Llvm)
}

/// Why bpfvm's side of a benchmark could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The source did not assemble.
    #[error("assembling a benchmark program: {0}")]
    Asm(#[from] AsmError),
    /// The bytecode was not a program.
    #[error("benchmark bytecode: {0}")]
    Program(String),
    /// bpfvm refused to load it.
    #[error("loading a benchmark program: {0}")]
    Load(#[from] LoadError),
    /// A map operation failed.
    #[error("benchmark map: {0}")]
    Map(#[from] MapError),
}

/// The program type every benchmark program has.
pub const PROGRAM_TYPE: ProgramType = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);

/// `source` loaded in bpfvm with `maps` (map `i` is `map[idx:i]`).
pub fn load(source: &str, maps: Vec<Arc<dyn Map>>) -> Result<LoadedProgram, SetupError> {
    let slots = assemble_source(source)?;
    let program = Program::from_slots(slots).map_err(|e| SetupError::Program(e.to_string()))?;
    let helpers = Arc::new(HelperRegistry::for_program_type(PROGRAM_TYPE));
    Ok(LoadedProgram::with_maps(
        program,
        PROGRAM_TYPE,
        helpers,
        maps,
    )?)
}

/// A bpfvm hash map (`u32` → `u64`, [`HASH_ENTRIES`] entries) filled with [`fill_value`].
pub fn filled_hash() -> Result<Arc<dyn Map>, SetupError> {
    let spec = MapSpec::new(MapType::Hash, 4, 8, HASH_ENTRIES);
    let map: Arc<dyn Map> = Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 24))?);
    for k in 0..HASH_ENTRIES {
        map.update(&k.to_le_bytes(), &fill_value(k).to_le_bytes(), 0)?;
    }
    Ok(map)
}

/// A bpfvm ring buffer of [`RING_SIZE`] bytes.
pub fn ringbuf() -> Result<Arc<dyn Map>, SetupError> {
    let spec = MapSpec::new(MapType::Ringbuf, 0, 0, RING_SIZE);
    Ok(Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 24))?))
}
