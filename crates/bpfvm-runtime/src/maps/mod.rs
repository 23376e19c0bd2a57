//! User-space BPF maps with the kernel's semantics: array, hash, per-CPU array, per-CPU
//! hash, LRU hash, LRU per-CPU hash, queue, stack, bloom filter, LPM trie, program array,
//! array and hash of maps, ring buffer and perf event array. The semantics below are those
//! of the first six; each other kind's module documents its own.
//!
//! ## What this module owns
//! - The [`Map`] trait: the host API (what `bpf(2)` offers user space: lookup, update
//!   with `BPF_ANY/NOEXIST/EXIST`, delete, get-next-key) and the program-side API the
//!   engines' helpers use ([`Map::lookup_value`], [`Map::prog_update`], [`Map::prog_delete`]).
//! - [`create_map`]: a [`MapSpec`] checked as the kernel's `map_alloc_check` does, then
//!   built as the map of its type.
//! - [`MapConfig`]: the number of per-CPU slots and the [`MemoryAccountant`] every map's
//!   memory is charged to (shared across maps through an `Arc`).
//!
//! ## Kernel semantics kept
//! - Errors carry the kernel's errno ([`MapError::errno`]): `ENOENT` for a missing key
//!   (and at the end of an iteration), `EEXIST` for `NOEXIST` on a present key, `E2BIG`
//!   when a (non-LRU) hash is full on insert (it holds exactly `max_entries`) and for an
//!   array index `>= max_entries` on update, `EINVAL` for delete on arrays, unknown update
//!   flags and `BPF_F_LOCK` (no value here has a `bpf_spin_lock`), `EPERM` for host writes
//!   to a `BPF_F_RDONLY` map and host reads of a `BPF_F_WRONLY` one.
//! - Iteration: arrays in index order (`next_key(None)` or an index out of range gives 0);
//!   hash maps in key-byte order (the kernel's order is its bucket order: compare as
//!   sets), a key that is not present restarts from the first, and deleting during an
//!   iteration is allowed.
//! - Per-CPU values, on the host side, are all slots at once, each slot `value_size`
//!   rounded up to 8 bytes ([`Map::value_len`]), as the kernel's user-space view. On the
//!   program side a per-CPU update touches only the current CPU's slot (a new element's
//!   other slots are zeroed).
//! - LRU hash maps never fail with `E2BIG`: inserting into a full one evicts the least
//!   recently used elements (by an exact use clock, where the kernel approximates it): one
//!   for maps under 64 elements, `len / 32` at once for larger ones, so the eviction scan
//!   is amortized. Program-side lookups and all updates mark an element used;
//!   host lookups do not (the kernel's `htab_lru_map_lookup_elem_sys`).
//! - `BPF_F_NO_PREALLOC` is accepted on hash maps and means the same as preallocation
//!   here: elements are allocated per insert in both cases, and the capacity is
//!   `max_entries` in both.
//!
//! ## Memory
//! Every map charges its memory to the [`MemoryAccountant`] of its config before
//! allocating it, and allocates fallibly: arrays their whole value block at creation,
//! hash maps their bucket array at creation and each element on insert (value bytes,
//! key bytes and a fixed overhead for its chain node and its place in the ordered key
//! set). A hash map whose bucket array and `max_entries` elements could never fit under
//! the cap together is refused at creation, as a kernel preallocation would be; one of
//! more than 2^27 entries is refused before that with `E2BIG`, the kernel's limit on its
//! bucket array. Sizes that overflow give [`MapError::TooBig`], a refused charge or
//! allocation [`MapError::NoMemory`]; nothing aborts the process. (A hash element's chain
//! node and its entry in the ordered key set are allocated infallibly, by `Box` and the
//! standard B-tree; their size is covered by the per-element overhead charge, so the cap
//! bounds them too.) The accountant is credited when an element leaves its map, and for
//! the buckets when the map is dropped, even though the bytes may live on for a grace
//! period (below).
//!
//! ## Memory-safety scheme: stable value addresses and deferred reclamation
//! Programs keep raw pointers into map values and do atomics on them, so value memory
//! must stay valid, at the same address, while any run that obtained it is running.
//! - Every value lives in a `ValueBuf` (submodule `buf`): one heap block, 8-byte aligned, zeroed at
//!   allocation, that never moves or grows. Arrays have one block for all elements; each
//!   hash element has its own.
//! - A run pins a [`RunGuard`] (a `crossbeam-epoch` guard) before it first takes a pointer
//!   into a map (`RunState::guard`: a value looked up, a ring-buffer record; at its start
//!   when it has global data) and keeps it until it ends, and passes it to
//!   [`Map::lookup_value`]; the [`ValueRef`] it gets borrows the guard and the map, and
//!   the address it carries is valid until the guard is dropped.
//! - **Invariant:** value memory is freed only through the epoch collector: a hash element
//!   that is deleted, replaced or evicted is first unlinked from its bucket's chain (by a
//!   writer, under the map's writers' mutex), then its node, value block included, is
//!   handed to `Guard::defer_destroy`; a map that is dropped hands all its blocks (arrays'
//!   included, and a hash map's chains) to `defer` the same way. The collector runs a
//!   deferred free only once every guard pinned before the unlink has been dropped, and a
//!   reader, which takes no lock but walks the chain under its guard, can only find a
//!   block while it is linked (or through a node unlinked after the reader pinned, whose
//!   link writers leave as it was), so no run ever sees its value memory freed.
//!   Consequently a pointer obtained under a guard stays valid even if the map itself is
//!   dropped during the run.
//! - **Invariant:** the host side touches value memory only with atomic loads and stores
//!   (8-byte words, bytes for a tail), so it never races non-atomically with programs'
//!   atomics. As in the kernel, a host copy is not atomic as a whole: a concurrent reader
//!   may see a mix of old and new words. Replacing a (non per-CPU) hash value with
//!   `update` allocates a new element, as the kernel does, so readers of the old one
//!   keep seeing a consistent old value.
//! - The `unsafe` code of this scheme is in the `buf` submodule (allocation, the atomic
//!   views, deallocation) and the `hash` submodule (chain nodes reached under a guard,
//!   unlinked nodes handed to the collector). [`ValueRef`] hands out raw pointers safely;
//!   dereferencing them is the engine's business (through its `Regions`) and its proof
//!   obligation.
//!
//! ```
//! use bpfvm_abi::{MapError, MapSpec, MapType, UPDATE_ANY, UPDATE_NOEXIST};
//! use bpfvm_runtime::maps::{MapConfig, RunGuard, create_map};
//!
//! let config = MapConfig::new(2, 1 << 20); // 2 per-CPU slots, a 1 MiB cap
//! let map = create_map(&MapSpec::new(MapType::Hash, 4, 8, 2), &config)?;
//! let key = 7u32.to_ne_bytes();
//! map.update(&key, &1u64.to_ne_bytes(), UPDATE_ANY)?;
//! assert_eq!(map.update(&key, &[0; 8], UPDATE_NOEXIST), Err(MapError::Exists));
//!
//! // An engine: pin once per run, hand the address to the program.
//! let run = RunGuard::pin();
//! let value = map.lookup_value(&key, 0, &run).expect("present");
//! assert_eq!((value.len(), value.addr() % 8), (8, 0));
//! map.delete(&key)?; // `value`'s memory stays valid until `run` is dropped
//! drop(run);
//! assert_eq!(map.lookup(&key), Err(MapError::NotFound));
//! # Ok::<(), MapError>(())
//! ```

mod array;
mod bloom;
mod buf;
mod hash;
mod lpm;
mod mapinmap;
mod perf;
mod progarray;
mod queue;
mod ringbuf;

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use array::ArrayMap;
pub use bloom::{BloomFilterMap, jhash, jhash2};
pub use bpfvm_abi::{MapError, MapSpec, MapType};
pub use hash::{HashTabMap, HashWalk, short_hash};
pub use lpm::LpmTrieMap;
pub use mapinmap::{MapOfMaps, inner_matches};
pub use perf::{
    DEFAULT_PERF_BUFFER_BYTES, F_CTXLEN_MASK, F_CURRENT_CPU, F_INDEX_MASK, PERF_COUNT_SW_CPU_CLOCK,
    PERF_COUNT_SW_TASK_CLOCK, PERF_TYPE_SOFTWARE, PerfBuffer, PerfCounter, PerfError,
    PerfEventArrayMap, PerfValue, perf_sample_record_len,
};
pub use progarray::ProgArrayMap;
pub use queue::QueueStackMap;
pub use ringbuf::{
    RB_AVAIL_DATA, RB_CONS_POS, RB_FORCE_WAKEUP, RB_NO_WAKEUP, RB_PROD_POS, RB_RING_SIZE,
    RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ, RINGBUF_MAX_RECORD_SZ,
    RINGBUF_META_PAGES, RingBuf, RingBufConsumer, RingBufError, RingBufMap, RingRecord,
};

use bpfvm_abi::{
    F_LOCK, F_MMAPABLE, F_NO_COMMON_LRU, F_NO_PREALLOC, F_NUMA_NODE, F_RDONLY, F_RDONLY_PROG,
    F_WRONLY, F_WRONLY_PROG, F_ZERO_SEED, UPDATE_EXIST,
};

/// `BPF_F_PRESERVE_ELEMS` (not in `bpfvm-abi`): accepted by the kernel on arrays.
pub const F_PRESERVE_ELEMS: u32 = 1 << 11;
/// `BPF_F_INNER_MAP` (not in `bpfvm-abi`): accepted by the kernel on arrays.
pub const F_INNER_MAP: u32 = 1 << 12;

/// The default memory cap of a [`MemoryAccountant`]: 512 MiB.
pub const DEFAULT_MEMORY_CAP: u64 = 512 << 20;

/// Counts the bytes of map memory in use against a cap set by the host. Share one through
/// an `Arc` (in [`MapConfig`]) to cap several maps together.
#[derive(Debug)]
pub struct MemoryAccountant {
    cap: u64,
    used: AtomicU64,
}

impl MemoryAccountant {
    /// An accountant allowing `cap` bytes.
    pub fn new(cap: u64) -> MemoryAccountant {
        MemoryAccountant {
            cap,
            used: AtomicU64::new(0),
        }
    }

    /// The cap in bytes.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Bytes currently charged.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes`, or fails with `NoMemory` when that would pass the cap.
    pub fn charge(&self, bytes: u64) -> Result<(), MapError> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.cap)
            })
            .map(drop)
            .map_err(|used| {
                MapError::NoMemory(format!(
                    "{bytes} more bytes with {used} in use would pass the cap of {}",
                    self.cap
                ))
            })
    }

    /// Credits `bytes` charged before.
    pub fn uncharge(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Charges `bytes`, then allocates `n` elements made by `fill`: a map's fixed
    /// storage at creation. Fails with `NoMemory` when the charge passes the cap or the
    /// allocator refuses (the charge is then credited back); `what` names the elements
    /// in that error.
    pub fn charged_vec<T>(
        &self,
        bytes: u64,
        n: usize,
        fill: impl FnMut() -> T,
        what: &str,
    ) -> Result<Vec<T>, MapError> {
        self.charge(bytes)?;
        let mut v = Vec::new();
        if v.try_reserve_exact(n).is_err() {
            self.uncharge(bytes);
            return Err(MapError::NoMemory(format!(
                "the allocator refused {n} {what} ({bytes} bytes)"
            )));
        }
        v.resize_with(n, fill);
        Ok(v)
    }
}

/// How maps are built: per-CPU slot count and the memory accountant.
#[derive(Debug, Clone)]
pub struct MapConfig {
    /// Slots of per-CPU maps (bpfvm's "CPUs": worker slots); at least 1.
    pub cpus: usize,
    /// Where map memory is charged.
    pub memory: Arc<MemoryAccountant>,
}

impl MapConfig {
    /// A config with `cpus` per-CPU slots (at least 1) and a fresh accountant of `cap` bytes.
    pub fn new(cpus: usize, cap: u64) -> MapConfig {
        MapConfig {
            cpus: cpus.max(1),
            memory: Arc::new(MemoryAccountant::new(cap)),
        }
    }

    /// The same config charging `memory` instead.
    pub fn with_accountant(mut self, memory: Arc<MemoryAccountant>) -> MapConfig {
        self.memory = memory;
        self
    }
}

impl Default for MapConfig {
    /// `std::thread::available_parallelism()` slots and a [`DEFAULT_MEMORY_CAP`] accountant.
    fn default() -> MapConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        MapConfig::new(cpus, DEFAULT_MEMORY_CAP)
    }
}

/// A pinned epoch for the duration of one run: while it lives, no value memory found
/// through [`Map::lookup_value`] under it is freed. Not `Send`: pin it on the thread of
/// the run, and drop it when the run ends (a long-lived guard delays reclamation).
pub struct RunGuard {
    /// Held for its pin (hash-map lookups walk their chains under it); unpinned on drop.
    pin: crossbeam_epoch::Guard,
}

impl RunGuard {
    /// Pins the current thread.
    pub fn pin() -> RunGuard {
        RunGuard {
            pin: crossbeam_epoch::pin(),
        }
    }

    /// The epoch guard, for maps whose readers walk epoch-protected structures under it.
    #[inline]
    pub(crate) fn epoch(&self) -> &crossbeam_epoch::Guard {
        &self.pin
    }

    /// Pushes this thread's deferred frees to the collector and tries to run due ones
    /// (hosts may call it between runs; frees also happen on their own over time).
    pub fn flush(&self) {
        self.pin.flush();
    }
}

impl fmt::Debug for RunGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunGuard")
    }
}

/// Where a value lives, for a program: its address and length. The memory stays valid
/// and at this address while the [`RunGuard`] it was found under lives (and the borrow
/// of `'a` ends no later than that guard and the map borrow).
#[derive(Debug, Clone, Copy)]
pub struct ValueRef<'a> {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// Bounded by the guard and the map it was found under.
    _life: PhantomData<&'a ()>,
}

// SAFETY: a `ValueRef` is an address, a length and a flag; it never dereferences the
// pointer itself, so sending or sharing it cannot cause a data race. (Its `'a` still ties
// it to the guard, which stays on its thread.)
unsafe impl Send for ValueRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for ValueRef<'_> {}

impl<'a> ValueRef<'a> {
    #[inline]
    fn new(ptr: NonNull<u8>, len: usize, writable: bool) -> ValueRef<'a> {
        ValueRef {
            ptr,
            len,
            writable,
            _life: PhantomData,
        }
    }

    /// A value reference for a [`Map`] implemented outside this crate (kernel-backed maps).
    ///
    /// # Safety
    /// `ptr` must point to `len` bytes (8-byte aligned) that stay allocated, at this
    /// address, until the [`RunGuard`] the reference is handed out under is dropped, and
    /// that everything else accesses only atomically (or, for memory the kernel shares,
    /// as the kernel's own programs do); when `writable`, programs may write them.
    pub unsafe fn from_raw(ptr: NonNull<u8>, len: usize, writable: bool) -> ValueRef<'a> {
        ValueRef::new(ptr, len, writable)
    }

    /// Address of the first byte (8-byte aligned).
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr().addr() as u64
    }

    /// Pointer to the first byte, with the provenance of the value's allocation.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (`value_size`; one slot for per-CPU maps).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value has no bytes (never: value sizes are at least 1).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether programs may write it (false for `BPF_F_RDONLY_PROG` maps).
    pub fn is_writable(&self) -> bool {
        self.writable
    }
}

/// A BPF map: the host (`bpf(2)`) API and the program-side API.
///
/// Keys and values are byte slices of exactly `key_size` and [`Map::value_len`] bytes on
/// the host side; a slice of another length is `EINVAL`.
pub trait Map: Send + Sync + fmt::Debug {
    /// The spec the map was created from.
    fn spec(&self) -> &MapSpec;

    /// Bytes of a value as the host sees it: `value_size`, or for per-CPU maps
    /// `value_size` rounded up to 8 times the number of slots.
    fn value_len(&self) -> usize;

    /// `BPF_MAP_LOOKUP_ELEM`: a copy of the value.
    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError>;

    /// `BPF_MAP_UPDATE_ELEM` with `flags` (`UPDATE_ANY`, `UPDATE_NOEXIST`, `UPDATE_EXIST`).
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError>;

    /// `BPF_MAP_DELETE_ELEM`.
    fn delete(&self, key: &[u8]) -> Result<(), MapError>;

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (or the first), `NotFound` at the end.
    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError>;

    /// Helper `bpf_map_lookup_elem` for a program running on slot `cpu`: the value's
    /// memory (this slot's, for per-CPU maps), or `None` when the key is absent, has the
    /// wrong size, or `cpu` is not a slot of the map's config. The default, for maps
    /// without values programs point into (ring buffers, program arrays…), is `None`.
    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        cpu: usize,
        guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        let _ = (key, cpu, guard);
        None
    }

    /// Helper `bpf_map_update_elem` from slot `cpu`: `value` is `value_size` bytes; per-CPU
    /// maps update only slot `cpu`. `NotPermitted` for `BPF_F_RDONLY_PROG` maps. The
    /// default is `NotSupported`.
    fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        let _ = (key, value, flags, cpu);
        Err(not_supported(self.spec(), "updates from programs"))
    }

    /// Helper `bpf_map_delete_elem`. `NotPermitted` for `BPF_F_RDONLY_PROG` maps. The
    /// default is `NotSupported`.
    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let _ = key;
        Err(not_supported(self.spec(), "deletes from programs"))
    }

    /// `BPF_MAP_UPDATE_ELEM` without a key, and helper `bpf_map_push_elem`: adds `value`
    /// to a queue, stack or bloom filter (`flags`: `BPF_ANY`, or `BPF_EXIST` to make room
    /// in a full queue or stack by dropping its oldest element).
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        let _ = (value, flags);
        Err(not_supported(self.spec(), "push"))
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` without a key, and helper `bpf_map_pop_elem`:
    /// removes the next element of a queue or stack into `out`.
    fn pop(&self, out: &mut [u8]) -> Result<(), MapError> {
        let _ = out;
        Err(not_supported(self.spec(), "pop"))
    }

    /// `BPF_MAP_LOOKUP_ELEM` without a key, and helper `bpf_map_peek_elem`: copies the next
    /// element of a queue or stack into `value`; for a bloom filter, `value` is the input
    /// and the answer is `Ok` (maybe present) or `NotFound` (certainly absent).
    fn peek(&self, value: &mut [u8]) -> Result<(), MapError> {
        let _ = value;
        Err(not_supported(self.spec(), "peek"))
    }

    /// For map-in-map types: the inner map stored at `key` (helper `bpf_map_lookup_elem`
    /// on an array or hash of maps returns it).
    fn lookup_inner(&self, key: &[u8]) -> Option<std::sync::Arc<dyn Map>> {
        let _ = key;
        None
    }

    /// For program arrays: the program at `index` (what `bpf_tail_call` jumps to).
    fn program_at(&self, index: u32) -> Option<std::sync::Arc<crate::LoadedProgram>> {
        let _ = index;
        None
    }

    /// For array maps that support direct value access (`lddw src=2/6`, global data):
    /// the value block of element 0 and whether programs may write it.
    fn direct_value(&self) -> Option<(NonNull<u8>, usize, bool)> {
        None
    }

    /// The map as `Any`, so hosts and helpers can reach a concrete map type's own API
    /// (a ring buffer's consumer, a program array's setter).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Every key, by iterating with [`Map::next_key`] (a convenience for hosts and tests).
    fn keys(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let mut keys = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        loop {
            match self.next_key(cur.as_deref()) {
                Ok(k) => {
                    keys.push(k.clone());
                    cur = Some(k);
                }
                Err(MapError::NotFound) => return Ok(keys),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Creates a map from `spec`, checked as the kernel checks it, with `config`'s slots and
/// accountant. Supported types: array, hash, per-CPU array, per-CPU hash, LRU hash, LRU
/// per-CPU hash, queue, stack, bloom filter, LPM trie, program array, array and hash of
/// maps, ring buffer, perf event array; others are `NotSupported`.
pub fn create_map(spec: &MapSpec, config: &MapConfig) -> Result<Box<dyn Map>, MapError> {
    spec.validate()?;
    check_create_flags(spec)?;
    match spec.map_type {
        MapType::Array | MapType::PercpuArray => Ok(Box::new(ArrayMap::new(spec, config)?)),
        MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
            Ok(Box::new(HashTabMap::new(spec, config)?))
        }
        MapType::Queue | MapType::Stack => Ok(Box::new(QueueStackMap::new(spec, config)?)),
        MapType::BloomFilter => {
            use std::hash::{BuildHasher, Hasher};
            // A random seed per map, as the kernel's `get_random_u32` (unless
            // `BPF_F_ZERO_SEED`).
            let seed = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish() as u32;
            Ok(Box::new(BloomFilterMap::new(spec, config, seed)?))
        }
        MapType::LpmTrie => Ok(Box::new(LpmTrieMap::new(spec, config)?)),
        MapType::ProgArray => Ok(Box::new(ProgArrayMap::new(spec, config)?)),
        MapType::ArrayOfMaps | MapType::HashOfMaps => Ok(Box::new(MapOfMaps::new(spec, config)?)),
        MapType::Ringbuf => Ok(Box::new(RingBufMap::new(spec, config)?)),
        MapType::PerfEventArray => Ok(Box::new(PerfEventArrayMap::new(spec, config)?)),
        other => Err(MapError::NotSupported(format!(
            "{other} maps are not implemented in user space"
        ))),
    }
}

/// `NotSupported` for an operation a map type does not have.
pub(crate) fn not_supported(spec: &MapSpec, op: &str) -> MapError {
    MapError::NotSupported(format!("{} maps do not support {op}", spec.map_type))
}

const ACCESS_FLAGS: u32 = F_RDONLY | F_WRONLY | F_RDONLY_PROG | F_WRONLY_PROG;

/// The kernel's create-flag masks (`ARRAY_CREATE_FLAG_MASK`, `HTAB_CREATE_FLAG_MASK`),
/// access-flag pairs and per-type size limits.
fn check_create_flags(spec: &MapSpec) -> Result<(), MapError> {
    let invalid = |why: &str| Err(MapError::Invalid(format!("{} map: {why}", spec.map_type)));
    let f = spec.flags;
    if f & (F_RDONLY | F_WRONLY) == (F_RDONLY | F_WRONLY) {
        return invalid("BPF_F_RDONLY and BPF_F_WRONLY together");
    }
    if f & (F_RDONLY_PROG | F_WRONLY_PROG) == (F_RDONLY_PROG | F_WRONLY_PROG) {
        return invalid("BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together");
    }
    let allowed = match spec.map_type {
        // `array_map_alloc_check`: `BPF_F_INNER_MAP` (and `BPF_F_MMAPABLE`) only on plain
        // arrays, `BPF_F_PRESERVE_ELEMS` only on perf event arrays.
        MapType::Array => F_NUMA_NODE | F_MMAPABLE | ACCESS_FLAGS | F_INNER_MAP,
        MapType::PercpuArray => F_NUMA_NODE | ACCESS_FLAGS,
        MapType::Hash | MapType::PercpuHash | MapType::HashOfMaps => {
            F_NO_PREALLOC | F_NUMA_NODE | ACCESS_FLAGS | F_ZERO_SEED
        }
        // `fd_array_map_alloc_check`: no program access flags, no mmap, preserve or
        // inner-map flag.
        MapType::ProgArray | MapType::ArrayOfMaps => F_NUMA_NODE | F_RDONLY | F_WRONLY,
        MapType::Queue | MapType::Stack => F_NUMA_NODE | ACCESS_FLAGS,
        MapType::BloomFilter => F_NUMA_NODE | F_ZERO_SEED | ACCESS_FLAGS,
        MapType::LpmTrie => F_NO_PREALLOC | F_NUMA_NODE | ACCESS_FLAGS,
        _ => F_NO_PREALLOC | F_NO_COMMON_LRU | F_NUMA_NODE | ACCESS_FLAGS | F_ZERO_SEED,
    };
    if f & !allowed != 0 {
        return invalid(&format!("unsupported flags {:#x}", f & !allowed));
    }
    if spec.map_type == MapType::LpmTrie {
        // `trie_alloc`: never preallocated; a prefix length and 1..=256 data bytes.
        if f & F_NO_PREALLOC == 0 {
            return invalid("BPF_F_NO_PREALLOC is required");
        }
        if !(5..=260).contains(&spec.key_size) {
            return invalid("key_size must be 4 + 1..=256 bytes");
        }
    }
    if spec.map_type == MapType::BloomFilter && spec.map_extra & !0xf != 0 {
        return invalid("map_extra holds only the number of hashes (0..=15)");
    }
    if spec.map_type == MapType::PercpuArray && f & F_MMAPABLE != 0 {
        return invalid("BPF_F_MMAPABLE on a per-CPU array");
    }
    if matches!(spec.map_type, MapType::LruHash | MapType::LruPercpuHash) && f & F_NO_PREALLOC != 0
    {
        return Err(MapError::NotSupported(
            "LRU hash maps are always preallocated".into(),
        ));
    }
    let too_big = |why: String| Err(MapError::TooBig(format!("{} map: {why}", spec.map_type)));
    // (Linux 6.18 no longer limits hash keys to `MAX_BPF_STACK`: a 513-byte key is fine.)
    // The kernel's per-CPU allocator unit (`PCPU_MIN_UNIT_SIZE`).
    if spec.map_type.is_per_cpu() && u64::from(spec.value_size).next_multiple_of(8) > 32 << 10 {
        return too_big(format!(
            "per-CPU value_size {} exceeds 32768",
            spec.value_size
        ));
    }
    Ok(())
}

/// The kernel's `(flags & ~BPF_F_LOCK) > BPF_EXIST` check, and `BPF_F_LOCK` refused (no
/// value has a spin lock).
fn check_update_flags(flags: u64) -> Result<(), MapError> {
    if (flags & !F_LOCK) > UPDATE_EXIST {
        return Err(MapError::Invalid(format!(
            "unknown update flags {flags:#x}"
        )));
    }
    if flags & F_LOCK != 0 {
        return Err(MapError::Invalid(
            "BPF_F_LOCK on a value without a bpf_spin_lock".into(),
        ));
    }
    Ok(())
}

fn check_host_write(spec: &MapSpec) -> Result<(), MapError> {
    if spec.flags & F_RDONLY != 0 {
        return Err(MapError::NotPermitted(
            "the map is read-only for user space (BPF_F_RDONLY)".into(),
        ));
    }
    Ok(())
}

fn check_host_read(spec: &MapSpec) -> Result<(), MapError> {
    if spec.flags & F_WRONLY != 0 {
        return Err(MapError::NotPermitted(
            "the map is write-only for user space (BPF_F_WRONLY)".into(),
        ));
    }
    Ok(())
}

fn check_prog_write(spec: &MapSpec) -> Result<(), MapError> {
    if spec.flags & F_RDONLY_PROG != 0 {
        return Err(MapError::NotPermitted(
            "the map is read-only for programs (BPF_F_RDONLY_PROG)".into(),
        ));
    }
    Ok(())
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), MapError> {
    if got != want {
        return Err(MapError::Invalid(format!(
            "{what} is {got} bytes, the map's is {want}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map's fixed storage: charged and filled, or refused by the cap with nothing
    /// left charged (a charge that fails charges nothing, and no vector is made).
    #[test]
    fn charged_vec_charges_fills_and_refuses_past_the_cap() {
        let m = MemoryAccountant::new(100);
        let mut next = 0u32;
        let v = m
            .charged_vec(
                64,
                4,
                || {
                    next += 1;
                    next
                },
                "slots",
            )
            .expect("fits");
        assert_eq!(v, vec![1, 2, 3, 4]);
        assert_eq!(m.used(), 64);
        let e = m
            .charged_vec(64, 4, || 0u8, "slots")
            .expect_err("passes the cap");
        assert!(matches!(e, MapError::NoMemory(_)), "{e:?}");
        assert_eq!(m.used(), 64);
    }
}
