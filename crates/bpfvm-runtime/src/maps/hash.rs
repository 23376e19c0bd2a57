//! Hash, per-CPU hash, LRU hash and LRU per-CPU hash maps (`kernel/bpf/hashtab.c`).
//!
//! ## Layout
//! As in the kernel, a fixed array of buckets allocated when the map is created:
//! `max_entries` rounded up to a power of two (at least 1), each bucket the head of a
//! singly linked chain of nodes. A key's bucket is its hash masked to the bucket count.
//! A node holds the key's first 8 bytes as an integer ([`head`]), the key, the element
//! (a [`ValueBuf`] whose address never changes, and the LRU use clock) and the link to
//! the next node. The map also keeps the set of its keys in byte order, which iteration
//! (`next_key`) walks, so iteration order does not depend on the hash.
//!
//! The hash is seeded at random per map ([`KeyHash`]): keys come from programs and from
//! whoever feeds them, so a fixed hash function would let them pick colliding keys. A
//! key of up to 8 bytes hashes as its head, one integer, with one folded multiply
//! ([`short_hash`], which a JIT can emit: [`HashWalk`]); a longer key with `foldhash`.
//! A lookup compares heads first: a 4- or 8-byte key is found without reading the key's
//! own allocation or calling `memcmp`.
//!
//! ## Readers take no lock
//! Lookups (program lookups under the run's [`RunGuard`], host lookups under a guard of
//! their own) walk a chain with `Acquire` loads and take no lock, as the kernel's
//! lookups walk their buckets under RCU. Writers (update, delete, LRU eviction) take one
//! mutex, which also holds what only writers need: the ordered key set, whose length is
//! the element count. Under it they change chains with `Release` stores, each store
//! publishing a node whose fields, value included, were all written before it:
//! - insert: the new node's link is set to the bucket's first node, then the bucket to
//!   the new node;
//! - replace (not per-CPU): a new node, filled, takes the old one's link, then the link
//!   that pointed at the old node is set to it; the old node is unlinked, its own link
//!   left as it was. Per-CPU values are updated in place, as the kernel does;
//! - delete and eviction: the link that pointed at the node is set to the node's link.
//!
//! **Invariants.** A node is freed only through the epoch collector (`defer_destroy`
//! after it is unlinked, or the map's drop deferring the whole set of chains), never
//! while a guard pinned before its unlink lives. Writers never change the link of a node
//! that is no longer linked. So a reader that pinned before starting its walk reaches
//! only nodes that were linked at some moment after it pinned (an unlinked node's link
//! still points where it did at its unlink, at a node linked then), whose memory its
//! guard keeps. A reader concurrent with a replace finds the old element or the new one,
//! each with a complete value (the new one is filled before it is published; readers of
//! the old one keep it, unchanged by the replace, until their guard goes); concurrent
//! with a delete, the element or nothing; never a freed element, and never a gap where a
//! key that stays in the map is missing. (Value words a program or the host writes in
//! place are another matter: see the `maps` module doc.)
//!
//! ## Memory
//! The bucket array is charged to the accountant when the map is created (the kernel
//! charges its bucket array too) and allocated fallibly; each element is charged on
//! insert (value block, key and [`ELEM_OVERHEAD`]). A map whose buckets and
//! `max_entries` elements together could never fit under the cap is refused at creation.
//! The kernel's own bound on the bucket array (`htab_map_alloc`) comes first: a map of
//! more than 2^27 entries is `E2BIG`, so no `max_entries` makes us allocate more than
//! 1 GiB of buckets, or try to.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use bpfvm_abi::{F_RDONLY_PROG, MapError, MapSpec, MapType, UPDATE_EXIST, UPDATE_NOEXIST};

use super::buf::{VALUE_PTR, ValueBuf, round8};
use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write, check_update_flags,
};

/// A full LRU map of `n` elements evicts `max(1, n / EVICT_FRACTION)` at once.
const EVICT_FRACTION: usize = 32;

/// Bytes charged per element on top of its key and value block: its chain node (a
/// [`Node`], 56 bytes on 64-bit targets, so a 64-byte allocation; a test keeps it at most
/// 64), the 16-byte header of the key's `Arc`, and the key's share of the ordered set's
/// B-tree (16-byte slots in leaves of 11, about 192 bytes, usually two-thirds full:
/// about 32 bytes a key, internal nodes included). The kernel's own per-element
/// overhead, `sizeof(struct htab_elem)`, is 48 bytes; the ordered set is our extra.
const ELEM_OVERHEAD: u64 = 64 + 16 + 32;

/// The kernel's `sizeof(struct bucket)` on 64-bit: an `hlist_nulls_head` (8 bytes) and a
/// 4-byte spinlock, padded to 16.
const KERNEL_BUCKET_SIZE: u64 = 16;

/// The most buckets the kernel allows. `htab_map_alloc` (`kernel/bpf/hashtab.c`), with
/// `err = -E2BIG`:
///
/// ```c
/// /* check for u32 overflow */
/// if (htab->n_buckets > U32_MAX / sizeof(struct bucket))
///         goto free_htab;
/// ```
///
/// Bucket counts are powers of two, so the largest is 2^27, for up to 2^27 entries
/// (its other `E2BIG` before that, `max_entries > 1UL << 31`, is within this one).
const MAX_BUCKETS: u64 = u32::MAX as u64 / KERNEL_BUCKET_SIZE;

/// Bytes of one of our buckets (a pointer), as charged.
const BUCKET_SIZE: u64 = size_of::<Atomic<Node>>() as u64;

#[derive(Debug)]
struct Elem {
    value: ValueBuf,
    /// Last use, from the map's clock (LRU maps).
    used: AtomicU64,
}

/// A key, shared by its node and the ordered set.
type Key = Arc<[u8]>;

/// One element in its bucket's chain. Every field but `next` is written before the node
/// is published and never changes after (the value's words and the use clock aside,
/// which are atomics); `next` changes only while the node is linked, and only under the
/// writers' mutex. Laid out in this order (`repr(C)`): a walk reads `head` and `next`,
/// the first 16 bytes, which the allocator's 16-byte alignment keeps in one cache line
/// (in the default layout they could straddle two).
#[derive(Debug)]
#[repr(C)]
struct Node {
    /// The key's first 8 bytes ([`head`]): compared before the key itself, whose bytes
    /// are another allocation (a cache miss a lookup would spend on every short key).
    head: u64,
    /// The next node of the chain, or null.
    next: Atomic<Node>,
    key: Key,
    elem: Elem,
}

/// What only writers need, under the writers' mutex.
#[derive(Debug, Default)]
struct Writers {
    /// The map's keys in byte order: what iteration (`next_key`) walks. Its length is
    /// the element count.
    order: BTreeSet<Key>,
}

/// A node found in a chain: the link that points at it, and the node.
struct Found<'g> {
    link: &'g Atomic<Node>,
    ptr: Shared<'g, Node>,
    node: &'g Node,
}

/// A key's first 8 bytes as an integer, zero-padded when it is shorter.
#[inline]
fn head(key: &[u8]) -> u64 {
    if let Some(first) = key.first_chunk::<8>() {
        u64::from_le_bytes(*first)
    } else if let Ok(word) = <[u8; 4]>::try_from(key) {
        u64::from(u32::from_le_bytes(word))
    } else {
        key.iter().rev().fold(0, |w, &b| (w << 8) | u64::from(b))
    }
}

/// A key being looked for. Keys of up to 8 bytes compare as one integer and never read
/// the node's key bytes; longer ones compare their first 8 bytes that way, then the
/// rest (a slice comparison of unknown length is a call to `memcmp`, once a sixth of a
/// lookup's time).
struct Probe<'k> {
    key: &'k [u8],
    head: u64,
}

impl<'k> Probe<'k> {
    #[inline]
    fn new(key: &'k [u8]) -> Probe<'k> {
        Probe {
            key,
            head: head(key),
        }
    }

    #[inline]
    fn matches(&self, n: &Node) -> bool {
        n.head == self.head
            && n.key.len() == self.key.len()
            && (self.key.len() <= 8 || n.key.get(8..) == self.key.get(8..))
    }
}

/// A map's hash function, seeded at random per map. A key of up to 8 bytes hashes as
/// its [`head`], one integer (a map's keys all have one length, so no two lengths meet in
/// a map): a folded multiply, `lo ^ hi` of the 128-bit product `(head ^ s0) * s1`, as
/// `foldhash` mixes (several times cheaper than hashing a byte slice, and a few
/// instructions a JIT can emit: [`HashWalk`]). A longer key hashes as its bytes with
/// `foldhash`.
struct KeyHash {
    long: foldhash::fast::RandomState,
    /// `s0` and `s1` (odd, so the multiply loses no bits of `head ^ s0`).
    seeds: [u64; 2],
}

impl KeyHash {
    fn new() -> KeyHash {
        let long = foldhash::fast::RandomState::default();
        // Two more random words from the same per-map seed.
        let seeds = [long.hash_one(0u64), long.hash_one(1u64) | 1];
        KeyHash { long, seeds }
    }

    #[inline]
    fn hash(&self, key: &[u8], head: u64) -> u64 {
        if key.len() <= 8 {
            short_hash(self.seeds, head)
        } else {
            self.long.hash_one(key)
        }
    }
}

/// The hash of a key of up to 8 bytes, from its head (its bytes as a little-endian
/// number): `lo ^ hi` of the 128-bit product `(head ^ seeds[0]) * seeds[1]`, with a map's
/// random seeds ([`HashWalk::seeds`]).
#[inline]
pub fn short_hash(seeds: [u64; 2], head: u64) -> u64 {
    let product = u128::from(head ^ seeds[0]) * u128::from(seeds[1]);
    (product as u64) ^ ((product >> 64) as u64)
}

/// What a JIT needs to find a key in a hash map itself, without calling the map: the
/// kernel's JITs call the map's `__htab_map_lookup_elem` directly; bpfvm's JIT walks the
/// chain in the generated code ([`HashTabMap::walk`]).
///
/// The lookup, for a key of `key_size` bytes (at most 8), whose head is its bytes as a
/// little-endian number: the bucket is word `short_hash(seeds, head) & mask` of the
/// array at `buckets` (each word the address of its chain's first node, or 0); a node at
/// address `n` holds its key's head at `n + head_offset`, the address of the next node
/// (or 0) at `n + next_offset`, and the address of its value at `n + value_offset`. Every
/// link must be read with an acquire load. The key is the node whose head equals the
/// key's (the map's keys all have `key_size` bytes), or absent at the chain's end.
///
/// The walker must hold the epoch pinned (a [`RunGuard`]) from before it reads the
/// bucket until it is done with the value, and the map must outlive the walk: what
/// [`Map::lookup_value`] asks, for what it returns. The value is `value_size` bytes,
/// writable unless the map is `BPF_F_RDONLY_PROG`, as `lookup_value` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashWalk {
    /// The bucket array's address.
    pub buckets: usize,
    /// The bucket count minus one (a power of two minus one).
    pub mask: u64,
    /// [`short_hash`]'s seeds.
    pub seeds: [u64; 2],
    /// Bytes of a key.
    pub key_size: u32,
    /// Where in a node its key's head is.
    pub head_offset: i32,
    /// Where in a node the next node's address is.
    pub next_offset: i32,
    /// Where in a node its value's address is.
    pub value_offset: i32,
}

// A bucket and a node's link are one word: the next node's address, or 0 (the map never
// tags its pointers).
const _: () = assert!(size_of::<Atomic<Node>>() == size_of::<usize>());

/// A hash, per-CPU hash, LRU hash or LRU per-CPU hash map.
pub struct HashTabMap {
    spec: MapSpec,
    per_cpu: bool,
    lru: bool,
    /// Slots per element: 1, or the config's CPUs for per-CPU types.
    slots: usize,
    /// `round8(value_size)`: the stride of per-CPU slots.
    elem: usize,
    /// Bytes of one element's value block.
    block: usize,
    /// Bytes charged per element.
    charge: u64,
    /// The chains' heads; the length is a power of two (empty only once dropped).
    buckets: Vec<Atomic<Node>>,
    /// `buckets.len() - 1`: a hash's bucket is `hash & mask`.
    mask: u64,
    /// The hash function, seeded at random per map.
    hash: KeyHash,
    /// Writers take it; readers never do.
    writers: Mutex<Writers>,
    clock: AtomicU64,
    memory: Arc<MemoryAccountant>,
}

impl fmt::Debug for HashTabMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashTabMap")
            .field("spec", &self.spec)
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

/// Which update: from the host (all slots) or a program on a slot.
#[derive(Clone, Copy)]
enum Writer {
    Host,
    Prog(usize),
}

impl HashTabMap {
    /// An empty map. `spec` must be a hash-family spec that passed `validate`. The bucket
    /// array is allocated (and charged) now; elements on insert, but the sizes are
    /// checked now.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<HashTabMap, MapError> {
        let n_buckets = u64::from(spec.max_entries).max(1).next_power_of_two();
        if n_buckets > MAX_BUCKETS {
            return Err(MapError::TooBig(format!(
                "{} map: {} entries need {n_buckets} buckets, more than the kernel allows \
                 ({} entries at most)",
                spec.map_type,
                spec.max_entries,
                MAX_BUCKETS.next_power_of_two() / 2
            )));
        }
        HashTabMap::with_buckets(spec, config, n_buckets)
    }

    /// [`HashTabMap::new`] with `n_buckets` buckets (a power of two; tests use fewer
    /// than `max_entries` to make chains).
    fn with_buckets(
        spec: &MapSpec,
        config: &MapConfig,
        n_buckets: u64,
    ) -> Result<HashTabMap, MapError> {
        let per_cpu = spec.map_type.is_per_cpu();
        let lru = matches!(spec.map_type, MapType::LruHash | MapType::LruPercpuHash);
        let slots = if per_cpu { config.cpus.max(1) } else { 1 };
        let too_big = || {
            MapError::TooBig(format!(
                "{} map: values of {} bytes × {slots} slots overflow",
                spec.map_type, spec.value_size
            ))
        };
        let elem = round8(spec.value_size as usize).ok_or_else(too_big)?;
        let block = elem.checked_mul(slots).ok_or_else(too_big)?;
        let charge = (block as u64)
            .checked_add(u64::from(spec.key_size) + ELEM_OVERHEAD)
            .ok_or_else(too_big)?;
        let bucket_bytes = n_buckets.checked_mul(BUCKET_SIZE).ok_or_else(too_big)?;
        // A map that can never hold max_entries elements under the cap is refused now,
        // as the kernel refuses a preallocation it cannot make. The buckets count too:
        // they are charged for the map's whole life.
        if charge
            .checked_mul(u64::from(spec.max_entries))
            .and_then(|n| n.checked_add(bucket_bytes))
            .is_none_or(|n| n > config.memory.cap())
        {
            return Err(MapError::NoMemory(format!(
                "{} map: {n_buckets} buckets of {BUCKET_SIZE} bytes and {} elements of \
                 {charge} bytes pass the cap of {}",
                spec.map_type,
                spec.max_entries,
                config.memory.cap()
            )));
        }
        let n = usize::try_from(n_buckets).map_err(|_| too_big())?;
        let buckets = config
            .memory
            .charged_vec(bucket_bytes, n, Atomic::null, "buckets")?;
        Ok(HashTabMap {
            spec: spec.clone(),
            per_cpu,
            lru,
            slots,
            elem,
            block,
            charge,
            buckets,
            mask: n_buckets.saturating_sub(1),
            hash: KeyHash::new(),
            writers: Mutex::new(Writers::default()),
            clock: AtomicU64::new(0),
            memory: Arc::clone(&config.memory),
        })
    }

    /// Bytes charged for the bucket array.
    fn bucket_bytes(&self) -> u64 {
        (self.buckets.len() as u64).saturating_mul(BUCKET_SIZE)
    }

    /// How to find a key in this map without calling it ([`HashWalk`]), for a map whose
    /// lookup is only that: not for LRU maps (a program's lookup marks the element used),
    /// per-CPU maps (the value is a slot of the element's block) or keys of more than 8
    /// bytes.
    pub fn walk(&self) -> Option<HashWalk> {
        if self.lru || self.per_cpu || self.spec.key_size > 8 {
            return None;
        }
        let offset = |o: usize| i32::try_from(o).ok();
        Some(HashWalk {
            buckets: self.buckets.as_ptr().addr(),
            mask: self.mask,
            seeds: self.hash.seeds,
            key_size: self.spec.key_size,
            head_offset: offset(std::mem::offset_of!(Node, head))?,
            next_offset: offset(std::mem::offset_of!(Node, next))?,
            value_offset: offset(
                std::mem::offset_of!(Node, elem) + std::mem::offset_of!(Elem, value) + VALUE_PTR,
            )?,
        })
    }

    /// The node holding `key`, and the link pointing at it, walking its bucket's chain
    /// under `guard` without a lock. What the node holds stays valid while `guard` lives.
    #[inline]
    fn find<'g>(&'g self, key: &[u8], guard: &'g Guard) -> Option<Found<'g>> {
        let probe = Probe::new(key);
        let hash = self.hash.hash(key, probe.head);
        // Never `None`: `mask < buckets.len()` (the map is not dropped while borrowed).
        let mut link = self.buckets.get((hash & self.mask) as usize)?;
        loop {
            let ptr = link.load(Ordering::Acquire, guard);
            // SAFETY: `ptr` is null or a node allocated by `Owned::new`, loaded with
            // `Acquire` from a link that a writer set with `Release` after writing all of
            // the node's fields, so they are initialized and visible here. The link is a
            // bucket or the `next` of a node reached the same way; each such node was
            // linked at some moment after `guard` was pinned (writers never change an
            // unlinked node's link, which keeps pointing at the node that followed it when
            // it was unlinked). A node is destroyed only through the epoch: deferred once
            // unlinked (or, with every other node, by the map's drop, which cannot run
            // while `self` is borrowed), so after `guard` is dropped. Nothing mutates a
            // node through this shared reference but its atomics. (Every guard passed
            // here is pinned: a `RunGuard`'s or our own `pin()`, never `unprotected`.)
            let node = unsafe { ptr.as_ref() }?;
            if probe.matches(node) {
                return Some(Found { link, ptr, node });
            }
            link = &node.next;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Writers> {
        self.writers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    #[inline]
    fn touch(&self, e: &Elem) {
        if self.lru {
            e.used.store(self.tick(), Ordering::Relaxed);
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether the map has no elements.
    pub fn is_empty(&self) -> bool {
        self.lock().order.is_empty()
    }

    /// Allocates a new element, charging the accountant.
    fn alloc(&self) -> Result<Elem, MapError> {
        self.memory.charge(self.charge)?;
        match ValueBuf::zeroed(self.block) {
            Ok(value) => Ok(Elem {
                value,
                used: AtomicU64::new(self.tick()),
            }),
            Err(e) => {
                self.memory.uncharge(self.charge);
                Err(e)
            }
        }
    }

    /// Writes `value` into `e` for `who`.
    fn fill(&self, e: &Elem, value: &[u8], who: Writer) {
        match who {
            Writer::Host => e.value.write(0, value),
            Writer::Prog(cpu) => e.value.write(cpu * self.elem, value),
        }
    }

    /// The update of both sides, in the kernel's order: flags, then `EEXIST`/`ENOENT`,
    /// then room (`E2BIG`, or an LRU eviction), then memory.
    fn update_as(&self, key: &[u8], value: &[u8], flags: u64, who: Writer) -> Result<(), MapError> {
        check_update_flags(flags)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let want = match who {
            Writer::Host => self.value_len(),
            Writer::Prog(cpu) => {
                if cpu >= self.slots {
                    return Err(MapError::Invalid(format!("no CPU slot {cpu}")));
                }
                self.spec.value_size as usize
            }
        };
        check_len("value", value.len(), want)?;
        let mut writers = self.lock();
        let guard = crossbeam_epoch::pin();
        if let Some(old) = self.find(key, &guard) {
            if flags & UPDATE_NOEXIST != 0 {
                return Err(MapError::Exists);
            }
            if self.per_cpu {
                // The kernel updates per-CPU values in place.
                self.fill(&old.node.elem, value, who);
                self.touch(&old.node.elem);
                return Ok(());
            }
            // Replace with a fresh node, as the kernel does, so readers of the old value
            // keep a consistent copy; the count does not change. It is filled and takes
            // the old node's place in the chain before the `Release` store publishes it.
            let new = Owned::new(Node {
                head: old.node.head,
                key: Arc::clone(&old.node.key),
                next: Atomic::from(old.node.next.load(Ordering::Acquire, &guard)),
                elem: Elem {
                    value: ValueBuf::zeroed(self.block)?,
                    used: AtomicU64::new(self.tick()),
                },
            });
            self.fill(&new.elem, value, who);
            old.link.store(new, Ordering::Release);
            // SAFETY: the old node is unlinked (the only link that pointed at it now
            // points at its replacement, and writers, serialized by the mutex we hold,
            // unlink a node once), so no reader that pins from now on can reach it, and
            // its destruction waits for the guards pinned before: those of the readers
            // that may still hold it.
            unsafe { guard.defer_destroy(old.ptr) };
            return Ok(());
        }
        if flags & UPDATE_EXIST != 0 {
            return Err(MapError::NotFound);
        }
        if writers.order.len() >= self.spec.max_entries as usize {
            if !self.lru {
                return Err(MapError::TooBig(format!(
                    "the map is full ({} entries)",
                    self.spec.max_entries
                )));
            }
            self.evict(&mut writers, &guard);
        }
        let head = head(key);
        let bucket = self
            .buckets
            .get((self.hash.hash(key, head) & self.mask) as usize)
            .ok_or_else(|| MapError::Invalid("the map has no buckets".into()))?;
        let elem = self.alloc()?;
        self.fill(&elem, value, who);
        let key: Key = key.into();
        // Linked at the head of its chain (after the eviction, which may have changed
        // that head), published by the `Release` store once complete.
        let new = Owned::new(Node {
            head,
            key: Arc::clone(&key),
            next: Atomic::from(bucket.load(Ordering::Acquire, &guard)),
            elem,
        });
        bucket.store(new, Ordering::Release);
        writers.order.insert(key);
        Ok(())
    }

    /// Unlinks the node holding `key` and hands it to the epoch, crediting its charge;
    /// false when there is none. Called with the writers' mutex held (`writers`).
    fn unlink(&self, writers: &mut Writers, key: &[u8], guard: &Guard) -> bool {
        let Some(old) = self.find(key, guard) else {
            return false;
        };
        old.link.store(
            old.node.next.load(Ordering::Acquire, guard),
            Ordering::Release,
        );
        writers.order.remove(key);
        self.memory.uncharge(self.charge);
        // SAFETY: as for a replaced node in `update_as`: the node is unlinked, once, under
        // the mutex, and its destruction waits for every guard that may still reach it.
        unsafe { guard.defer_destroy(old.ptr) };
        true
    }

    /// Evicts the least recently used elements of a full LRU map: one for small maps,
    /// `len / EVICT_FRACTION` for large ones, so the O(len) scan of every bucket is
    /// amortized over a batch of inserts (the kernel also frees LRU nodes in batches).
    fn evict(&self, writers: &mut Writers, guard: &Guard) {
        let batch = (writers.order.len() / EVICT_FRACTION).max(1);
        let mut by_age: Vec<(u64, &Key)> = Vec::with_capacity(writers.order.len());
        for bucket in &self.buckets {
            let mut ptr = bucket.load(Ordering::Acquire, guard);
            // SAFETY: as in `find`: a node reached from a bucket under `guard`, published
            // with `Release`, destroyed only after `guard` is dropped. (Under the mutex no
            // node of these chains is unlinked until this walk is over.)
            while let Some(node) = unsafe { ptr.as_ref() } {
                by_age.push((node.elem.used.load(Ordering::Relaxed), &node.key));
                ptr = node.next.load(Ordering::Acquire, guard);
            }
        }
        let batch = batch.min(by_age.len());
        if batch == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(batch - 1, |(used, _)| *used);
        let victims: Vec<Key> = by_age
            .get(..batch)
            .unwrap_or_default()
            .iter()
            .map(|(_, k)| Arc::clone(k))
            .collect();
        for k in victims {
            self.unlink(writers, &k, guard);
        }
    }

    fn delete_key(&self, key: &[u8]) -> Result<(), MapError> {
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let mut writers = self.lock();
        if self.unlink(&mut writers, key, &crossbeam_epoch::pin()) {
            Ok(())
        } else {
            Err(MapError::NotFound)
        }
    }
}

impl Map for HashTabMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    #[inline]
    fn value_len(&self) -> usize {
        if self.per_cpu {
            self.block
        } else {
            self.spec.value_size as usize
        }
    }

    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let guard = crossbeam_epoch::pin();
        // Host lookups do not mark LRU elements used (the kernel's
        // `map_lookup_elem_sys_only`); program lookups do.
        let found = self.find(key, &guard).ok_or(MapError::NotFound)?;
        let mut out = vec![0; self.value_len()];
        found.node.elem.value.read(0, &mut out);
        Ok(out)
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        self.update_as(key, value, flags, Writer::Host)
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_host_write(&self.spec)?;
        self.delete_key(key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        check_host_read(&self.spec)?;
        let writers = self.lock();
        let next = match key {
            Some(k) => {
                check_len("key", k.len(), self.spec.key_size as usize)?;
                if writers.order.contains(k) {
                    writers
                        .order
                        .range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded))
                        .next()
                } else {
                    // The kernel restarts from the first element.
                    writers.order.first()
                }
            }
            None => writers.order.first(),
        };
        next.map(|k| k.to_vec()).ok_or(MapError::NotFound)
    }

    #[inline]
    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        cpu: usize,
        guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        if cpu >= self.slots && self.per_cpu {
            return None;
        }
        let slot = if self.per_cpu { cpu } else { 0 };
        let e = &self.find(key, guard.epoch())?.node.elem;
        self.touch(e);
        // The block stays valid while `guard` (pinned before this lookup) lives: it is
        // freed only with its node, through the epoch collector.
        let ptr = e.value.ptr_at(slot * self.elem);
        let writable = self.spec.flags & F_RDONLY_PROG == 0;
        Some(ValueRef::new(ptr, self.spec.value_size as usize, writable))
    }

    fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        // Maps that are not per-CPU have one value whatever the CPU.
        let slot = if self.per_cpu { cpu } else { 0 };
        self.update_as(key, value, flags, Writer::Prog(slot))
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_prog_write(&self.spec)?;
        self.delete_key(key)
    }
}

impl Drop for HashTabMap {
    fn drop(&mut self) {
        let count = self
            .writers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .len();
        self.memory.uncharge(
            self.charge
                .saturating_mul(count as u64)
                .saturating_add(self.bucket_bytes()),
        );
        let buckets = std::mem::take(&mut self.buckets);
        // Runs may still hold pointers into these values under their guards.
        crossbeam_epoch::pin().defer(move || free_chains(buckets));
    }
}

/// Frees every node linked from `buckets`, the chains of a dropped map. Runs through the
/// epoch only, once no guard that could reach them is left.
fn free_chains(buckets: Vec<Atomic<Node>>) {
    // SAFETY: nothing else can reach these chains: the map that held them is gone and
    // every guard pinned before it went has been dropped (this runs as a deferred
    // function), so no thread reads these nodes or frees them concurrently, which is
    // what `unprotected` requires.
    let guard = unsafe { crossbeam_epoch::unprotected() };
    for bucket in buckets {
        let mut ptr = bucket.load(Ordering::Relaxed, guard);
        while !ptr.is_null() {
            // SAFETY: `ptr` is a node allocated by `Owned::new` and linked in this chain
            // alone, which owns it now; linked chains never share a node (an unlinked
            // node, already handed to `defer_destroy`, is reachable from no chain), so
            // each is taken once.
            let node = unsafe { ptr.into_owned() };
            ptr = node.next.load(Ordering::Relaxed, guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Atomic, BUCKET_SIZE, Elem, HashTabMap, KERNEL_BUCKET_SIZE, MAX_BUCKETS, Map, MapConfig,
        MapError, MapSpec, MapType, Node, Probe, RunGuard, head,
    };
    use bpfvm_abi::{UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    fn node(key: &[u8]) -> Node {
        Node {
            head: head(key),
            key: key.into(),
            next: Atomic::null(),
            elem: Elem {
                value: super::ValueBuf::zeroed(8).unwrap(),
                used: AtomicU64::new(0),
            },
        }
    }

    /// `walk` describes the map as it is: following its recipe by hand (what a JIT
    /// emits) finds, for every key, the address `lookup_value` gives, and nothing for
    /// absent keys, in chains of several nodes (16 keys in 4 buckets), at every key size a
    /// walk takes; and it is refused where a lookup does more than find (LRU, per-CPU) or
    /// keys are longer than 8 bytes.
    #[test]
    fn a_walk_by_its_recipe_finds_what_a_lookup_finds() {
        let config = MapConfig::new(2, 1 << 24);
        for key_size in [1u32, 2, 4, 8] {
            let spec = MapSpec::new(MapType::Hash, key_size, 8, 16);
            let map = HashTabMap::with_buckets(&spec, &config, 4).unwrap();
            let key = |k: u64| k.to_le_bytes()[..key_size as usize].to_vec();
            for k in 0..16 {
                map.update(&key(k * 3), &k.to_le_bytes(), UPDATE_ANY)
                    .unwrap();
            }
            let walk = map.walk().expect("a plain hash map with short keys");
            assert_eq!((walk.mask, walk.key_size), (3, key_size));
            let guard = RunGuard::pin();
            let by_recipe = |k: &[u8]| -> Option<usize> {
                let head = k.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
                let bucket = (super::short_hash(walk.seeds, head) & walk.mask) as usize;
                let word = |addr: usize| {
                    // SAFETY: `addr` is a bucket of the live bucket array or a field of a
                    // node reached from one under `guard` (the recipe's contract); an
                    // atomic load, as writers may store there.
                    unsafe { (*(addr as *const AtomicU64)).load(Ordering::Acquire) as usize }
                };
                let mut node = word(walk.buckets + 8 * bucket);
                while node != 0 {
                    if word(node + walk.head_offset as usize) as u64 == head {
                        return Some(word(node + walk.value_offset as usize));
                    }
                    node = word(node + walk.next_offset as usize);
                }
                None
            };
            for k in 0..48u64.min(1 << (8 * key_size.min(4))) {
                let found = map
                    .lookup_value(&key(k), 0, &guard)
                    .map(|v| v.addr() as usize);
                assert_eq!(by_recipe(&key(k)), found, "key {k} of {key_size} bytes");
                assert_eq!(found.is_some(), k % 3 == 0 && k < 48, "key {k}");
            }
        }
        for (map_type, key_size) in [
            (MapType::LruHash, 4),
            (MapType::PercpuHash, 4),
            (MapType::LruPercpuHash, 4),
            (MapType::Hash, 9),
        ] {
            let spec = MapSpec::new(map_type, key_size, 8, 16);
            assert_eq!(
                HashTabMap::new(&spec, &config).unwrap().walk(),
                None,
                "{map_type:?}"
            );
        }
    }

    /// The comparison itself, since distinct keys rarely share a hash and a map test
    /// would seldom reach it: every key differing from another in one byte, at every
    /// size (the 4- and 8-byte heads, the byte-by-byte head, and bytes past the head),
    /// and keys of different sizes with equal heads.
    #[test]
    fn a_probe_matches_only_the_same_key() {
        for size in [0usize, 1, 3, 4, 5, 7, 8, 9, 16] {
            let zero = vec![0u8; size];
            assert!(Probe::new(&zero).matches(&node(&zero)), "size {size}");
            for pos in 0..size {
                let mut other = zero.clone();
                other[pos] = 1;
                assert!(
                    !Probe::new(&zero).matches(&node(&other)),
                    "size {size}, byte {pos}"
                );
                assert!(
                    !Probe::new(&other).matches(&node(&zero)),
                    "size {size}, byte {pos}"
                );
            }
        }
        assert!(!Probe::new(&[0; 4]).matches(&node(&[0; 8])));
        assert!(!Probe::new(&[0; 8]).matches(&node(&[0; 4])));
        assert!(!Probe::new(&[0; 3]).matches(&node(&[0; 4])));
        // The heads are little-endian: byte 0 is the low byte at every size.
        assert_eq!(head(&[1, 2, 3, 4]), 0x0403_0201);
        assert_eq!(head(&[1, 2, 3]), 0x03_0201);
        assert_eq!(head(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), 0x0807_0605_0403_0201);
    }

    /// `ELEM_OVERHEAD` counts a node as one allocation of at most 64 bytes.
    #[test]
    fn a_node_fits_the_overhead_charged_for_it() {
        assert!(size_of::<Node>() <= 64, "{}", size_of::<Node>());
        assert_eq!(BUCKET_SIZE, 8);
    }

    fn key(k: u32) -> [u8; 4] {
        k.to_ne_bytes()
    }

    /// A value of 8 words, each `k << 32 | version`: a reader can tell a complete value
    /// of one version from a mix, a zeroed block or another key's value.
    fn pattern(k: u32, version: u32) -> Vec<u8> {
        let word = (u64::from(k) << 32) | u64::from(version);
        word.to_ne_bytes().repeat(8)
    }

    /// The keys of bucket 0's chain, first to last.
    fn chain(map: &HashTabMap) -> Vec<u32> {
        let guard = crossbeam_epoch::pin();
        let mut out = Vec::new();
        let mut ptr = map.buckets[0].load(Ordering::Acquire, &guard);
        // SAFETY: nodes reached from a bucket under a guard, while the map is borrowed.
        while let Some(n) = unsafe { ptr.as_ref() } {
            out.push(u32::from_ne_bytes(n.key[..4].try_into().unwrap()));
            ptr = n.next.load(Ordering::Acquire, &guard);
        }
        out
    }

    /// Sets its flag when dropped: when the writer is done, or when it panics (so readers
    /// waiting for the flag stop, and the test fails instead of hanging).
    struct StopOnDrop<'a>(&'a AtomicBool);

    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    fn one_bucket(map_type: MapType, max_entries: u32, config: &MapConfig) -> HashTabMap {
        let spec = MapSpec::new(map_type, 4, 64, max_entries);
        HashTabMap::with_buckets(&spec, config, 1).expect("map")
    }

    /// Every key of a one-bucket map shares a chain: replace, delete and reinsert the
    /// node at its head, in its middle and at its tail, and check every key and the
    /// chain's order after each step.
    #[test]
    fn replace_and_delete_at_every_position_of_a_chain() {
        let config = MapConfig::new(2, 1 << 20);
        for pos in 0..5usize {
            let map = one_bucket(MapType::Hash, 5, &config);
            for k in 0..5 {
                map.update(&key(k), &pattern(k, 0), UPDATE_NOEXIST)
                    .expect("insert");
            }
            // Inserted at the head: the chain is 4, 3, 2, 1, 0.
            assert_eq!(chain(&map), [4, 3, 2, 1, 0]);
            let k = 4 - pos as u32;
            let expect = |map: &HashTabMap, versions: [Option<u32>; 5]| {
                for (j, v) in versions.iter().enumerate() {
                    let j = j as u32;
                    let got = map.lookup(&key(j));
                    match v {
                        Some(v) => assert_eq!(got, Ok(pattern(j, *v)), "pos {pos}, key {j}"),
                        None => assert_eq!(got, Err(MapError::NotFound), "pos {pos}, key {j}"),
                    }
                }
            };
            let mut versions = [Some(0); 5];
            // A replace keeps the node's place in the chain.
            map.update(&key(k), &pattern(k, 1), UPDATE_EXIST)
                .expect("replace");
            versions[k as usize] = Some(1);
            expect(&map, versions);
            assert_eq!(chain(&map), [4, 3, 2, 1, 0], "pos {pos}");
            let guard = RunGuard::pin();
            let v = map.lookup_value(&key(k), 0, &guard).expect("value");
            assert_eq!(v.len(), 64);
            drop(guard);
            // A delete takes it out and only it.
            map.delete(&key(k)).expect("delete");
            versions[k as usize] = None;
            expect(&map, versions);
            let mut left = vec![4, 3, 2, 1, 0];
            left.retain(|&j| j != k);
            assert_eq!(chain(&map), left, "pos {pos}");
            assert_eq!(map.len(), 4);
            assert_eq!(map.delete(&key(k)), Err(MapError::NotFound));
            // Reinserted, it is the new head.
            map.update(&key(k), &pattern(k, 2), UPDATE_NOEXIST)
                .expect("reinsert");
            versions[k as usize] = Some(2);
            expect(&map, versions);
            left.insert(0, k);
            assert_eq!(chain(&map), left, "pos {pos}");
            assert_eq!(
                map.keys().expect("keys"),
                (0..5).map(|j| key(j).to_vec()).collect::<Vec<_>>()
            );
            drop(map);
            assert_eq!(config.memory.used(), 0);
        }
    }

    /// Per-CPU updates stay in place (same node, same value memory); LRU eviction in a
    /// single chain takes the least recently used node wherever it is.
    #[test]
    fn per_cpu_updates_in_place_and_lru_evicts_from_a_chain() {
        let config = MapConfig::new(2, 1 << 20);
        let map = one_bucket(MapType::PercpuHash, 3, &config);
        let value = vec![1; map.value_len()];
        for k in 0..3 {
            map.update(&key(k), &value, UPDATE_ANY).expect("insert");
        }
        let guard = RunGuard::pin();
        let before = map.lookup_value(&key(1), 1, &guard).expect("value").addr();
        map.prog_update(&key(1), &pattern(1, 7), UPDATE_EXIST, 1)
            .expect("update");
        let after = map.lookup_value(&key(1), 1, &guard).expect("value").addr();
        assert_eq!(before, after);
        assert_eq!(chain(&map), [2, 1, 0]);

        let lru = one_bucket(MapType::LruHash, 3, &config);
        for k in 0..3 {
            lru.update(&key(k), &pattern(k, 0), UPDATE_ANY)
                .expect("insert");
        }
        // Use 0 (the tail) and 2 (the head): 1, in the middle, is the oldest.
        assert!(lru.lookup_value(&key(0), 0, &guard).is_some());
        assert!(lru.lookup_value(&key(2), 0, &guard).is_some());
        lru.update(&key(3), &pattern(3, 0), UPDATE_ANY)
            .expect("evicting insert");
        assert_eq!(chain(&lru), [3, 2, 0]);
        assert_eq!(lru.lookup(&key(1)), Err(MapError::NotFound));
        assert_eq!(lru.len(), 3);
    }

    /// Two readers look every key up under run guards, keeping what they find for the
    /// whole pass as a program keeps its pointers, while a writer replaces every key of
    /// `map` (holding `keys` keys) and deletes and reinserts those from `stable` on: each
    /// value a reader holds is one complete version of its own key, a key the writer only
    /// replaces is never missing (from program or host lookups), and at the end every key
    /// holds its last version and the memory is all credited back.
    fn race(map: HashTabMap, keys: u32, stable: u32, config: &MapConfig) {
        let rounds: u32 = if cfg!(miri) { 3 } else { 2000 };
        let t = map.spec.map_type;
        for k in 0..keys {
            map.update(&key(k), &pattern(k, 0), UPDATE_NOEXIST)
                .expect("insert");
        }
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|cpu| {
                    let (map, done) = (&map, &done);
                    s.spawn(move || {
                        let mut seen = 0u64;
                        loop {
                            let finished = done.load(Ordering::Relaxed);
                            let guard = RunGuard::pin();
                            let mut held = Vec::new();
                            for k in 0..keys {
                                match map.lookup_value(&key(k), cpu, &guard) {
                                    Some(v) => held.push((k, v)),
                                    None => assert!(k >= stable, "{t}: key {k} went missing"),
                                }
                            }
                            for (k, v) in &held {
                                // SAFETY: 64 bytes, 8-aligned, valid while `guard` lives;
                                // every access to value words is atomic.
                                let words: Vec<u64> = (0..8)
                                    .map(|i| unsafe {
                                        AtomicU64::from_ptr(v.as_ptr().cast::<u64>().add(i))
                                            .load(Ordering::Relaxed)
                                    })
                                    .collect();
                                assert!(
                                    words.iter().all(|w| *w == words[0])
                                        && words[0] >> 32 == u64::from(*k),
                                    "{t}: key {k}: {words:x?}"
                                );
                            }
                            seen += held.len() as u64;
                            let Ok(v) = map.lookup(&key(stable - 1)) else {
                                panic!("{t}: key {} went missing from a host lookup", stable - 1);
                            };
                            assert_eq!(v[..8].repeat(8), v);
                            if finished {
                                break seen;
                            }
                        }
                    })
                })
                .collect();
            let stop = StopOnDrop(&done);
            for round in 1..=rounds {
                for k in 0..keys {
                    map.update(&key(k), &pattern(k, round), UPDATE_EXIST)
                        .expect("replace");
                }
                for k in stable..keys {
                    if (round + k) % 2 == 0 {
                        map.delete(&key(k)).expect("delete");
                        map.update(&key(k), &pattern(k, round), UPDATE_NOEXIST)
                            .expect("reinsert");
                    }
                }
            }
            drop(stop);
            for r in readers {
                assert!(r.join().expect("reader") > 0);
            }
        });
        assert_eq!(map.len(), keys as usize);
        for k in 0..keys {
            assert_eq!(map.lookup(&key(k)), Ok(pattern(k, rounds)), "{t}");
        }
        drop(map);
        assert_eq!(config.memory.used(), 0);
    }

    /// [`race`] with every key in one chain, then as the maps are made (`max_entries`
    /// keys in as many buckets: chains of several nodes all but certain), hash and LRU.
    #[test]
    fn readers_see_old_or_new_values_never_a_torn_or_missing_one() {
        let config = MapConfig::new(2, 1 << 20);
        race(one_bucket(MapType::Hash, 6, &config), 6, 3, &config);
        for t in [MapType::Hash, MapType::LruHash] {
            let map = HashTabMap::new(&MapSpec::new(t, 4, 64, 16), &config).expect("map");
            race(map, 16, 8, &config);
        }
    }

    /// The kernel refuses a hash map whose bucket array would pass `U32_MAX` bytes
    /// (`htab_map_alloc`, 16-byte buckets): more than 2^27 entries is `E2BIG`, whatever
    /// the cap; up to 2^27 it is the cap that decides.
    #[test]
    fn the_kernel_bucket_limit_is_too_big_before_memory() {
        assert_eq!(MAX_BUCKETS, u64::from(u32::MAX) / KERNEL_BUCKET_SIZE);
        let unlimited = MapConfig::new(1, u64::MAX);
        let capped = MapConfig::new(1, 1 << 20);
        for t in [
            MapType::Hash,
            MapType::PercpuHash,
            MapType::LruHash,
            MapType::LruPercpuHash,
        ] {
            for n in [(1 << 27) + 1, 1 << 28, 1 << 31, (1 << 31) + 1, u32::MAX] {
                let spec = MapSpec::new(t, 4, 8, n);
                for config in [&unlimited, &capped] {
                    let err = HashTabMap::new(&spec, config).expect_err("too big");
                    assert!(matches!(err, MapError::TooBig(_)), "{t} {n}: {err:?}");
                    assert_eq!(err.errno(), 7, "E2BIG");
                }
            }
            let spec = MapSpec::new(t, 4, 8, 1 << 27);
            let err = HashTabMap::new(&spec, &capped).expect_err("over the cap");
            assert!(matches!(err, MapError::NoMemory(_)), "{t}: {err:?}");
        }
        assert_eq!(unlimited.memory.used() + capped.memory.used(), 0);
    }

    /// The bucket array is charged at creation and credited on drop; a map is refused
    /// when its buckets and `max_entries` elements could not fit under the cap together.
    #[test]
    fn buckets_are_charged_with_the_map() {
        let spec = MapSpec::new(MapType::Hash, 4, 8, 1000);
        let config = MapConfig::new(1, 1 << 20);
        let map = HashTabMap::new(&spec, &config).expect("map");
        assert_eq!(config.memory.used(), 1024 * BUCKET_SIZE);
        map.update(&key(1), &[0; 8], UPDATE_ANY).expect("insert");
        assert_eq!(config.memory.used(), 1024 * BUCKET_SIZE + map.charge);
        let full = 1024 * BUCKET_SIZE + 1000 * map.charge;
        drop(map);
        assert_eq!(config.memory.used(), 0);
        assert!(HashTabMap::new(&spec, &MapConfig::new(1, full)).is_ok());
        let err = HashTabMap::new(&spec, &MapConfig::new(1, full - 1)).expect_err("cap");
        assert!(matches!(err, MapError::NoMemory(_)), "{err:?}");
        // One entry, one bucket; zero entries (refused by `validate` before) still one.
        let one = MapConfig::new(1, 1 << 20);
        let map = HashTabMap::new(&MapSpec::new(MapType::Hash, 4, 8, 1), &one).expect("map");
        assert_eq!(map.buckets.len(), 1);
        drop(map);
        let map = HashTabMap::new(&MapSpec::new(MapType::Hash, 4, 8, 0), &one).expect("map");
        assert_eq!(map.buckets.len(), 1);
    }
}
