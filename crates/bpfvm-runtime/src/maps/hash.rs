//! Hash, per-CPU hash, LRU hash and LRU per-CPU hash maps (`kernel/bpf/hashtab.c`).
//!
//! The index, under a `RwLock` (lookups share it, writers take it exclusively), is a hash
//! table from key bytes to elements, which lookups use, and the set of keys in byte
//! order, which iteration uses; each element owns a [`ValueBuf`] whose address never
//! changes. Unlinked elements are freed through the epoch collector (see the `maps`
//! module doc).
//!
//! The table hashes with `foldhash`, seeded at random per map: keys come from programs
//! and from whoever feeds them, so a fixed hash function would let them pick colliding
//! keys. (It is several times faster than the standard library's SipHash on short
//! keys, and a lookup no longer walks a B-tree comparing key slices.) The table is
//! `hashbrown`'s raw `HashTable`, so that a lookup compares keys its own way: each entry
//! keeps its key's first 8 bytes as an integer, and a key of up to 8 bytes is found
//! without reading the key's own allocation or calling `memcmp`.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use bpfvm_abi::{F_RDONLY_PROG, MapError, MapSpec, MapType, UPDATE_EXIST, UPDATE_NOEXIST};

use super::buf::{ValueBuf, round8};
use super::{
    Map, MapConfig, MemoryAccountant, RunGuard, ValueRef, check_host_read, check_host_write,
    check_len, check_prog_write, check_update_flags,
};

/// A full LRU map of `n` elements evicts `max(1, n / EVICT_FRACTION)` at once.
const EVICT_FRACTION: usize = 32;

/// Bytes charged per element on top of its key and value: the index entry.
const ELEM_OVERHEAD: u64 = 64;

#[derive(Debug)]
struct Elem {
    value: ValueBuf,
    /// Last use, from the map's clock (LRU maps).
    used: AtomicU64,
}

/// A key, shared by the table and the ordered set.
type Key = Arc<[u8]>;

/// An element under its key, as the table holds it.
#[derive(Debug)]
struct Entry {
    /// The key's first 8 bytes ([`head`]): compared before the key itself, whose bytes
    /// are another allocation (a cache miss a lookup spends on every 4- or 8-byte key).
    head: u64,
    key: Key,
    elem: Elem,
}

/// The elements by key, and the keys in byte order.
#[derive(Debug, Default)]
struct Index {
    /// What lookups use: a raw table, so that key comparison is ours ([`Probe`]).
    elems: HashTable<Entry>,
    /// The table's hash function, seeded at random per map.
    hasher: foldhash::fast::RandomState,
    /// The same keys in byte order: what iteration (`next_key`) walks.
    order: BTreeSet<Key>,
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
/// the entry's key bytes; longer ones compare their first 8 bytes that way, then the
/// rest (a slice comparison of unknown length is a call to `memcmp`, once a sixth of a
/// lookup's time).
struct Probe<'k> {
    key: &'k [u8],
    head: u64,
}

impl<'k> Probe<'k> {
    fn new(key: &'k [u8]) -> Probe<'k> {
        Probe {
            key,
            head: head(key),
        }
    }

    #[inline]
    fn matches(&self, e: &Entry) -> bool {
        e.head == self.head
            && e.key.len() == self.key.len()
            && (self.key.len() <= 8 || e.key.get(8..) == self.key.get(8..))
    }
}

/// [`Index::hash`], for the table's rehash too.
#[inline]
fn key_hash(hasher: &foldhash::fast::RandomState, key: &[u8], head: u64) -> u64 {
    if key.len() <= 8 {
        hasher.hash_one(head)
    } else {
        hasher.hash_one(key)
    }
}

impl Index {
    fn len(&self) -> usize {
        self.elems.len()
    }

    fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// A key's hash: a key of up to 8 bytes hashes as its [`head`], one integer (a map's
    /// keys all have one length, so no two lengths meet in a table), which is several
    /// times cheaper than hashing a byte slice; a longer key hashes as its bytes.
    fn hash(&self, key: &[u8], head: u64) -> u64 {
        key_hash(&self.hasher, key, head)
    }

    fn probe<'k>(&self, key: &'k [u8]) -> (u64, Probe<'k>) {
        let probe = Probe::new(key);
        (self.hash(key, probe.head), probe)
    }

    fn get(&self, key: &[u8]) -> Option<&Elem> {
        let (hash, probe) = self.probe(key);
        let entry = self.elems.find(hash, |e| probe.matches(e))?;
        Some(&entry.elem)
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Elem> {
        let (hash, probe) = self.probe(key);
        let entry = self.elems.find_mut(hash, |e| probe.matches(e))?;
        Some(&mut entry.elem)
    }

    fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds an element under a key not present.
    fn insert(&mut self, key: &[u8], elem: Elem) {
        let (hash, probe) = self.probe(key);
        let entry = Entry {
            head: probe.head,
            key: key.into(),
            elem,
        };
        self.order.insert(Arc::clone(&entry.key));
        let hasher = &self.hasher;
        self.elems
            .insert_unique(hash, entry, |e| key_hash(hasher, &e.key, e.head));
    }

    fn remove(&mut self, key: &[u8]) -> Option<Elem> {
        let (hash, probe) = self.probe(key);
        let (entry, _) = self
            .elems
            .find_entry(hash, |e| probe.matches(e))
            .ok()?
            .remove();
        self.order.remove(key);
        Some(entry.elem)
    }
}

/// A hash, per-CPU hash, LRU hash or LRU per-CPU hash map.
#[derive(Debug)]
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
    index: RwLock<Index>,
    clock: AtomicU64,
    memory: Arc<MemoryAccountant>,
}

/// Which update: from the host (all slots) or a program on a slot.
#[derive(Clone, Copy)]
enum Writer {
    Host,
    Prog(usize),
}

impl HashTabMap {
    /// An empty map. `spec` must be a hash-family spec that passed `validate`; nothing is
    /// allocated until inserts, but the sizes are checked now.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<HashTabMap, MapError> {
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
        // A map that can never hold max_entries elements under the cap is refused now,
        // as the kernel refuses a preallocation it cannot make.
        if charge
            .checked_mul(u64::from(spec.max_entries))
            .is_none_or(|n| n > config.memory.cap())
        {
            return Err(MapError::NoMemory(format!(
                "{} map: {} elements of {charge} bytes pass the cap of {}",
                spec.map_type,
                spec.max_entries,
                config.memory.cap()
            )));
        }
        Ok(HashTabMap {
            spec: spec.clone(),
            per_cpu,
            lru,
            slots,
            elem,
            block,
            charge,
            index: RwLock::new(Index::default()),
            clock: AtomicU64::new(0),
            memory: Arc::clone(&config.memory),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn touch(&self, e: &Elem) {
        if self.lru {
            e.used.store(self.tick(), Ordering::Relaxed);
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the map has no elements.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Unlinks `old` (already removed from the index) for reclamation after a grace period.
    fn retire(&self, old: Elem) {
        self.memory.uncharge(self.charge);
        crossbeam_epoch::pin().defer(move || drop(old));
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
        let mut index = self.write();
        if let Some(old) = index.get_mut(key) {
            if flags & UPDATE_NOEXIST != 0 {
                return Err(MapError::Exists);
            }
            if self.per_cpu {
                // The kernel updates per-CPU values in place.
                self.fill(old, value, who);
                self.touch(old);
                return Ok(());
            }
            // Replace with a fresh element, as the kernel does, so readers of the old
            // value keep a consistent copy; the count does not change.
            let new = match ValueBuf::zeroed(self.block) {
                Ok(value) => Elem {
                    value,
                    used: AtomicU64::new(self.tick()),
                },
                Err(e) => return Err(e),
            };
            self.fill(&new, value, who);
            let old = std::mem::replace(old, new);
            drop(index);
            crossbeam_epoch::pin().defer(move || drop(old));
            return Ok(());
        }
        if flags & UPDATE_EXIST != 0 {
            return Err(MapError::NotFound);
        }
        if index.len() >= self.spec.max_entries as usize {
            if !self.lru {
                return Err(MapError::TooBig(format!(
                    "the map is full ({} entries)",
                    self.spec.max_entries
                )));
            }
            self.evict(&mut index);
        }
        let new = self.alloc()?;
        self.fill(&new, value, who);
        index.insert(key, new);
        Ok(())
    }

    /// Evicts the least recently used elements of a full LRU map: one for small maps,
    /// `len / EVICT_FRACTION` for large ones, so the O(len) scan is amortized over a
    /// batch of inserts (the kernel also frees LRU nodes in batches).
    fn evict(&self, index: &mut Index) {
        let batch = (index.len() / EVICT_FRACTION).max(1);
        let mut by_age: Vec<(u64, &Key)> = index
            .elems
            .iter()
            .map(|e| (e.elem.used.load(Ordering::Relaxed), &e.key))
            .collect();
        let batch = batch.min(by_age.len());
        if batch == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(batch - 1, |(used, _)| *used);
        let victims: Vec<Key> = by_age[..batch].iter().map(|(_, k)| Arc::clone(k)).collect();
        for k in victims {
            if let Some(old) = index.remove(&k) {
                self.retire(old);
            }
        }
    }

    fn delete_key(&self, key: &[u8]) -> Result<(), MapError> {
        check_len("key", key.len(), self.spec.key_size as usize)?;
        let old = self.write().remove(key).ok_or(MapError::NotFound)?;
        self.retire(old);
        Ok(())
    }
}

impl Map for HashTabMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

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
        let index = self.read();
        // Host lookups do not mark LRU elements used (the kernel's
        // `map_lookup_elem_sys_only`); program lookups do.
        let e = index.get(key).ok_or(MapError::NotFound)?;
        let mut out = vec![0; self.value_len()];
        e.value.read(0, &mut out);
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
        let index = self.read();
        let next = match key {
            Some(k) => {
                check_len("key", k.len(), self.spec.key_size as usize)?;
                if index.contains_key(k) {
                    index
                        .order
                        .range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded))
                        .next()
                } else {
                    // The kernel restarts from the first element.
                    index.order.first()
                }
            }
            None => index.order.first(),
        };
        next.map(|k| k.to_vec()).ok_or(MapError::NotFound)
    }

    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        cpu: usize,
        _guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        if cpu >= self.slots && self.per_cpu {
            return None;
        }
        let slot = if self.per_cpu { cpu } else { 0 };
        let index = self.read();
        let e = index.get(key)?;
        self.touch(e);
        // The block stays valid after the lock is released: it is freed only through the
        // epoch collector, after `_guard` (pinned before this lookup) is dropped.
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
        let all = std::mem::take(self.index.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.memory.uncharge(self.charge * all.len() as u64);
        // Runs may still hold pointers into these blocks under their guards.
        crossbeam_epoch::pin().defer(move || drop(all));
    }
}

#[cfg(test)]
mod tests {
    use super::{Elem, Entry, Probe, head};
    use std::sync::atomic::AtomicU64;

    fn entry(key: &[u8]) -> Entry {
        Entry {
            head: head(key),
            key: key.into(),
            elem: Elem {
                value: super::ValueBuf::zeroed(8).unwrap(),
                used: AtomicU64::new(0),
            },
        }
    }

    /// The comparison itself, since distinct keys rarely share a hash and a table test
    /// would seldom reach it: every key differing from another in one byte, at every
    /// size (the 4- and 8-byte heads, the byte-by-byte head, and bytes past the head),
    /// and keys of different sizes with equal heads.
    #[test]
    fn a_probe_matches_only_the_same_key() {
        for size in [0usize, 1, 3, 4, 5, 7, 8, 9, 16] {
            let zero = vec![0u8; size];
            assert!(Probe::new(&zero).matches(&entry(&zero)), "size {size}");
            for pos in 0..size {
                let mut other = zero.clone();
                other[pos] = 1;
                assert!(
                    !Probe::new(&zero).matches(&entry(&other)),
                    "size {size}, byte {pos}"
                );
                assert!(
                    !Probe::new(&other).matches(&entry(&zero)),
                    "size {size}, byte {pos}"
                );
            }
        }
        assert!(!Probe::new(&[0; 4]).matches(&entry(&[0; 8])));
        assert!(!Probe::new(&[0; 8]).matches(&entry(&[0; 4])));
        assert!(!Probe::new(&[0; 3]).matches(&entry(&[0; 4])));
        // The heads are little-endian: byte 0 is the low byte at every size.
        assert_eq!(head(&[1, 2, 3, 4]), 0x0403_0201);
        assert_eq!(head(&[1, 2, 3]), 0x03_0201);
        assert_eq!(head(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), 0x0807_0605_0403_0201);
    }
}
