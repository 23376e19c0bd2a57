//! `BPF_MAP_TYPE_RINGBUF` (`kernel/bpf/ringbuf.c`): one multi-producer, single-consumer
//! byte ring shared by every CPU, with the kernel's record format and position rules.
//!
//! ## Layout
//! The ring has `max_entries` data bytes (a power of two, a page multiple). Records start
//! at 8-byte aligned positions; each has the kernel's 8-byte header, `struct
//! bpf_ringbuf_hdr { u32 len; u32 pg_off; }`, then the sample:
//! - `len` is the sample size, with [`RINGBUF_BUSY_BIT`] (bit 31) while reserved and
//!   [`RINGBUF_DISCARD_BIT`] (bit 30) once discarded;
//! - `pg_off` is the kernel's page offset of the header from the start of its `struct
//!   bpf_ringbuf`: [`RINGBUF_META_PAGES`] (the struct's own page, the consumer page and
//!   the producer page) plus the data offset in 4 KiB pages;
//! - a record takes `round_up(size + 8, 8)` bytes of positions.
//!
//! Positions (`consumer_pos`, `producer_pos`) only grow; a byte position `p` lives at data
//! offset `p & (size - 1)`. The kernel maps the data pages twice so that a record
//! crossing the end stays contiguous; here the block is `2 * size` bytes and a record that
//! crosses the end simply runs on into the second half (no two live records overlap:
//! a record is shorter than the ring, and producers never pass the consumer by `size`).
//!
//! ## Kernel rules kept
//! - Reserve fails (the helper returns `NULL`) for non-zero flags, a size past
//!   `UINT_MAX / 4`, a record longer than the ring, or when the producer would run
//!   `size` or more bytes ahead of the consumer.
//! - Reservation is serialized (the kernel's spinlock: a `Mutex` here); commits are not,
//!   and may come in any order. The consumer stops at the first record still busy.
//! - Wakeups: `BPF_RB_FORCE_WAKEUP` always wakes the consumer, `BPF_RB_NO_WAKEUP` never,
//!   and by default a commit wakes it only when the consumer has caught up with that
//!   record (`consumer_pos & mask == record offset`).
//! - `bpf_ringbuf_output` returns `-EINVAL` for flags other than the two wakeup flags and
//!   `-EAGAIN` when there is no room; `bpf_ringbuf_query` answers 0 for an unknown flag.
//! - The `bpf(2)` element operations are `ENOTSUPP`, as for the kernel's ring buffer.
//!
//! ## Memory
//! The block is charged to the config's accountant and freed through the epoch collector
//! once the last holder (the map, a consumer, a run's pending record) lets go, so a record
//! a run reserved stays valid for the run. Records are read and written only atomically
//! (headers with `AtomicU32`, samples through the block's atomic word views; programs
//! through their shared regions).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bpfvm_abi::{F_NUMA_NODE, MapError, MapSpec};

use super::buf::ValueBuf;
use super::{Map, MapConfig, MemoryAccountant, not_supported};
use crate::run::Pending;

/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved, not yet committed.
pub const RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; consumers skip it.
pub const RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: bytes of a record header.
pub const RINGBUF_HDR_SZ: u64 = 8;
/// `RINGBUF_MAX_RECORD_SZ`: the largest sample a reservation may ask for.
pub const RINGBUF_MAX_RECORD_SZ: u64 = (u32::MAX / 4) as u64;
/// Pages of `struct bpf_ringbuf` before its data (`RINGBUF_NR_META_PAGES`): the
/// struct's first page, the consumer page and the producer page. The base of `pg_off`.
pub const RINGBUF_META_PAGES: u32 = 3;
/// `BPF_RB_NO_WAKEUP`: do not wake the consumer.
pub const RB_NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`: wake the consumer whatever its position.
pub const RB_FORCE_WAKEUP: u64 = 2;
/// `BPF_RB_AVAIL_DATA`: query the bytes between consumer and producer.
pub const RB_AVAIL_DATA: u64 = 0;
/// `BPF_RB_RING_SIZE`: query the data size.
pub const RB_RING_SIZE: u64 = 1;
/// `BPF_RB_CONS_POS`: query the consumer position.
pub const RB_CONS_POS: u64 = 2;
/// `BPF_RB_PROD_POS`: query the producer position.
pub const RB_PROD_POS: u64 = 3;

const PAGE_SHIFT: u32 = 12;

/// Why `bpf_ringbuf_output` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingBufError {
    /// Flags other than `BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP` (`EINVAL`).
    #[error("invalid ring buffer flags {0:#x} (EINVAL)")]
    InvalidFlags(u64),
    /// No room for the record, or a size past the limits (`EAGAIN`).
    #[error("no room in the ring buffer (EAGAIN)")]
    NoSpace,
}

impl RingBufError {
    /// The errno (`EINVAL` 22, `EAGAIN` 11).
    pub fn errno(&self) -> i32 {
        match self {
            RingBufError::InvalidFlags(_) => 22,
            RingBufError::NoSpace => 11,
        }
    }

    /// What the helper returns: the negative errno as a 64-bit register.
    pub fn helper_return(&self) -> u64 {
        (-i64::from(self.errno())) as u64
    }
}

/// A reserved record: where its sample lives (`len` bytes, 8-byte aligned).
#[derive(Debug, Clone, Copy)]
pub struct RingRecord {
    ptr: NonNull<u8>,
    len: usize,
}

impl RingRecord {
    /// The sample's address (what `bpf_ringbuf_reserve` returns).
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr().addr() as u64
    }

    /// The sample's pointer, with the provenance of the ring's block. Dereferencing it is
    /// the caller's business: only atomically, and only until the record is committed.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The sample size asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the sample has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The shared ring: positions, the block, the reservation lock and the consumer's wakeup.
/// Programs reach it through the helpers, the host through [`RingBufMap`] and
/// [`RingBufConsumer`].
#[derive(Debug)]
pub struct RingBuf {
    /// `size - 1`.
    mask: u64,
    /// `2 * size` bytes; `None` only during `drop`.
    buf: Option<ValueBuf>,
    producer_pos: AtomicU64,
    consumer_pos: AtomicU64,
    /// The kernel's `rb->spinlock`: serializes reservations.
    reserve_lock: Mutex<()>,
    /// One consumer at a time.
    consumer_lock: Mutex<()>,
    /// Wakeup generation, bumped by every wakeup.
    wake_gen: Mutex<u64>,
    wake_cv: Condvar,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record_len(size: u64) -> u64 {
    (size + RINGBUF_HDR_SZ).next_multiple_of(8)
}

impl RingBuf {
    fn new(size: u64, config: &MapConfig) -> Result<RingBuf, MapError> {
        let total = size
            .checked_mul(2)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= isize::MAX as usize)
            .ok_or_else(|| MapError::TooBig(format!("ringbuf of {size} bytes")))?;
        let charged = total as u64;
        config.memory.charge(charged)?;
        let buf = match ValueBuf::zeroed(total) {
            Ok(b) => b,
            Err(e) => {
                config.memory.uncharge(charged);
                return Err(e);
            }
        };
        Ok(RingBuf {
            mask: size - 1,
            buf: Some(buf),
            producer_pos: AtomicU64::new(0),
            consumer_pos: AtomicU64::new(0),
            reserve_lock: Mutex::new(()),
            consumer_lock: Mutex::new(()),
            wake_gen: Mutex::new(0),
            wake_cv: Condvar::new(),
            charged,
            memory: Arc::clone(&config.memory),
        })
    }

    fn buf(&self) -> &ValueBuf {
        // The block is taken only in `drop`.
        self.buf.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Data bytes of the ring (`BPF_RB_RING_SIZE`).
    pub fn size(&self) -> u64 {
        self.mask + 1
    }

    /// The header's `len` word of the record at data offset `off`.
    fn hdr_len(&self, off: u64) -> &AtomicU32 {
        debug_assert!(off <= self.mask && off.is_multiple_of(8));
        let p = self.buf().ptr_at((off & self.mask) as usize & !7);
        // SAFETY: `off & mask` rounded down to 8 is inside the first half of the block,
        // which is 8-aligned and at least 8 bytes past that point; the block lives as long
        // as `self`. Header words are accessed only atomically: by the ring (here) and by
        // nobody else (programs' regions start after the header).
        unsafe { &*p.as_ptr().cast::<AtomicU32>() }
    }

    fn hdr_pg_off(&self, off: u64) -> &AtomicU32 {
        let p = self.buf().ptr_at(((off & self.mask) as usize & !7) + 4);
        // SAFETY: as in `hdr_len`, 4 bytes further (still inside the header, 4-aligned).
        unsafe { &*p.as_ptr().cast::<AtomicU32>() }
    }

    /// The kernel's `__bpf_ringbuf_reserve`: a busy record of `size` bytes, or `None`.
    pub fn reserve(&self, size: u64, flags: u64) -> Option<RingRecord> {
        if flags != 0 || size > RINGBUF_MAX_RECORD_SZ {
            return None;
        }
        let len = record_len(size);
        if len > self.size() {
            return None;
        }
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let _g = lock(&self.reserve_lock);
        let prod = self.producer_pos.load(Ordering::Relaxed);
        let new_prod = prod + len;
        if new_prod - cons > self.mask {
            return None;
        }
        let off = prod & self.mask;
        self.hdr_len(off)
            .store(size as u32 | RINGBUF_BUSY_BIT, Ordering::Relaxed);
        let pg_off = RINGBUF_META_PAGES + (off >> PAGE_SHIFT) as u32;
        self.hdr_pg_off(off).store(pg_off, Ordering::Relaxed);
        // Pairs with the consumer's acquire load: it sees the busy header first.
        self.producer_pos.store(new_prod, Ordering::Release);
        Some(RingRecord {
            ptr: self.buf().ptr_at((off + RINGBUF_HDR_SZ) as usize),
            len: size as usize,
        })
    }

    /// The data offset of the header of the record whose sample is at `addr`, if `addr`
    /// is the sample address of a busy record of this ring.
    fn busy_record(&self, addr: u64) -> Option<u64> {
        let base = self.buf().ptr_at(0).as_ptr().addr() as u64;
        let off = addr.checked_sub(base)?.checked_sub(RINGBUF_HDR_SZ)?;
        if off > self.mask || !off.is_multiple_of(8) {
            return None;
        }
        (self.hdr_len(off).load(Ordering::Acquire) & RINGBUF_BUSY_BIT != 0).then_some(off)
    }

    /// The kernel's `bpf_ringbuf_commit`: clears the busy bit (sets the discard bit for a
    /// discard) and wakes the consumer per `flags`. `Invalid` when `addr` is not a
    /// reserved record of this ring.
    fn commit(&self, addr: u64, flags: u64, discard: bool) -> Result<(), MapError> {
        let off = self.busy_record(addr).ok_or_else(|| {
            MapError::Invalid(format!("{addr:#x} is not a reserved record of this ring"))
        })?;
        let h = self.hdr_len(off);
        let mut new = h.load(Ordering::Relaxed) ^ RINGBUF_BUSY_BIT;
        if discard {
            new |= RINGBUF_DISCARD_BIT;
        }
        h.swap(new, Ordering::AcqRel);
        let cons = self.consumer_pos.load(Ordering::Acquire) & self.mask;
        if flags & RB_FORCE_WAKEUP != 0 || (cons == off && flags & RB_NO_WAKEUP == 0) {
            self.wake();
        }
        Ok(())
    }

    /// `bpf_ringbuf_submit`.
    pub fn submit(&self, addr: u64, flags: u64) -> Result<(), MapError> {
        self.commit(addr, flags, false)
    }

    /// `bpf_ringbuf_discard`.
    pub fn discard(&self, addr: u64, flags: u64) -> Result<(), MapError> {
        self.commit(addr, flags, true)
    }

    /// Host-side write into a reserved record at `offset` (a multiple of 8) of its sample.
    pub fn write_reserved(&self, addr: u64, offset: usize, data: &[u8]) -> Result<(), MapError> {
        let off = self.busy_record(addr).ok_or_else(|| {
            MapError::Invalid(format!("{addr:#x} is not a reserved record of this ring"))
        })?;
        let size = (self.hdr_len(off).load(Ordering::Relaxed) & !RINGBUF_BUSY_BIT) as usize;
        if !offset.is_multiple_of(8) || offset.checked_add(data.len()).is_none_or(|e| e > size) {
            return Err(MapError::Invalid(format!(
                "{} bytes at offset {offset} do not fit a {size}-byte record",
                data.len()
            )));
        }
        self.buf()
            .write(off as usize + RINGBUF_HDR_SZ as usize + offset, data);
        Ok(())
    }

    /// The header (`len` with its busy and discard bits, `pg_off`) of the record at
    /// position `pos` (any position: it is masked), as a consumer would read it.
    pub fn record_header(&self, pos: u64) -> (u32, u32) {
        let off = pos & self.mask & !7;
        (
            self.hdr_len(off).load(Ordering::Acquire),
            self.hdr_pg_off(off).load(Ordering::Acquire),
        )
    }

    /// `bpf_ringbuf_output`: reserve, copy `data`, submit.
    pub fn output(&self, data: &[u8], flags: u64) -> Result<(), RingBufError> {
        if flags & !(RB_NO_WAKEUP | RB_FORCE_WAKEUP) != 0 {
            return Err(RingBufError::InvalidFlags(flags));
        }
        let rec = self
            .reserve(data.len() as u64, 0)
            .ok_or(RingBufError::NoSpace)?;
        let off = rec.addr() - self.buf().ptr_at(0).as_ptr().addr() as u64;
        self.buf().write(off as usize, data);
        self.commit(rec.addr(), flags, false)
            .map_err(|_| RingBufError::NoSpace)
    }

    /// `bpf_ringbuf_query`: `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE`, `BPF_RB_CONS_POS`,
    /// `BPF_RB_PROD_POS`; 0 for any other flag.
    pub fn query(&self, flags: u64) -> u64 {
        let cons = || self.consumer_pos.load(Ordering::Acquire);
        let prod = || self.producer_pos.load(Ordering::Acquire);
        match flags {
            RB_AVAIL_DATA => {
                let c = cons();
                prod() - c
            }
            RB_RING_SIZE => self.size(),
            RB_CONS_POS => cons(),
            RB_PROD_POS => prod(),
            _ => 0,
        }
    }

    fn wake(&self) {
        *lock(&self.wake_gen) += 1;
        self.wake_cv.notify_all();
    }

    /// Calls `f` on each committed record from the consumer position up to the first busy
    /// one, skipping discarded ones, and advances the consumer (libbpf's
    /// `ringbuf_process_ring`). Returns the records passed to `f`. Do not consume the same
    /// ring from inside `f` (the consumer is held).
    pub fn consume(&self, f: &mut dyn FnMut(&[u8])) -> usize {
        let _c = lock(&self.consumer_lock);
        let mut cons = self.consumer_pos.load(Ordering::Acquire);
        let mut n = 0;
        let mut sample = Vec::new();
        loop {
            let prod = self.producer_pos.load(Ordering::Acquire);
            if cons >= prod {
                return n;
            }
            while cons < prod {
                let off = cons & self.mask;
                let len = self.hdr_len(off).load(Ordering::Acquire);
                if len & RINGBUF_BUSY_BIT != 0 {
                    return n;
                }
                let size = u64::from(len & !RINGBUF_DISCARD_BIT);
                let total = record_len(size);
                if total > prod - cons {
                    // Not a header this ring wrote (a host commit of a forged address);
                    // stop rather than read past the records.
                    return n;
                }
                if len & RINGBUF_DISCARD_BIT == 0 {
                    sample.clear();
                    sample.resize(size as usize, 0);
                    self.buf()
                        .read((off + RINGBUF_HDR_SZ) as usize, &mut sample);
                    f(&sample);
                    n += 1;
                }
                cons += total;
                self.consumer_pos.store(cons, Ordering::Release);
            }
        }
    }

    /// Consumes what is there; if nothing was, waits up to `timeout` for a wakeup and
    /// consumes again (libbpf's `ring_buffer__poll`: one wait, then the records).
    pub fn poll(&self, timeout: Duration, f: &mut dyn FnMut(&[u8])) -> usize {
        let generation = *lock(&self.wake_gen);
        let n = self.consume(f);
        if n > 0 {
            return n;
        }
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.wake_gen);
        while *g == generation {
            let now = Instant::now();
            if now >= deadline {
                return 0;
            }
            g = self
                .wake_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(g);
        self.consume(f)
    }
}

impl Pending for RingBuf {
    /// A record reserved by a run that ended without committing it is discarded.
    fn abandon(&self, addr: u64) {
        let _ = self.commit(addr, 0, true);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
        // Runs may still hold record pointers under their guards: free after them.
        if let Some(buf) = self.buf.take() {
            crossbeam_epoch::pin().defer(move || drop(buf));
        }
    }
}

/// A `BPF_MAP_TYPE_RINGBUF` map.
#[derive(Debug)]
pub struct RingBufMap {
    spec: MapSpec,
    ring: Arc<RingBuf>,
}

impl RingBufMap {
    /// Creates the ring (`max_entries` data bytes) charging `config`'s accountant. `spec`
    /// must have passed `validate`; the only create flag the kernel accepts is
    /// `BPF_F_NUMA_NODE`.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<RingBufMap, MapError> {
        if spec.flags & !F_NUMA_NODE != 0 {
            return Err(MapError::Invalid(format!(
                "ringbuf map: unsupported flags {:#x}",
                spec.flags & !F_NUMA_NODE
            )));
        }
        Ok(RingBufMap {
            spec: spec.clone(),
            ring: Arc::new(RingBuf::new(u64::from(spec.max_entries), config)?),
        })
    }

    /// The ring (programs' side and host's side).
    pub fn ring(&self) -> &Arc<RingBuf> {
        &self.ring
    }

    /// A consumer for the host (libbpf's `ring_buffer`).
    pub fn consumer(&self) -> RingBufConsumer {
        RingBufConsumer {
            ring: Arc::clone(&self.ring),
        }
    }
}

/// The host's reader of a ring buffer; keeps the ring alive.
#[derive(Debug, Clone)]
pub struct RingBufConsumer {
    ring: Arc<RingBuf>,
}

impl RingBufConsumer {
    /// See [`RingBuf::poll`].
    pub fn poll(&self, timeout: Duration, mut f: impl FnMut(&[u8])) -> usize {
        self.ring.poll(timeout, &mut f)
    }

    /// See [`RingBuf::consume`].
    pub fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        self.ring.consume(&mut f)
    }

    /// The ring.
    pub fn ring(&self) -> &Arc<RingBuf> {
        &self.ring
    }
}

impl Map for RingBufMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        0
    }

    fn lookup(&self, _key: &[u8]) -> Result<Vec<u8>, MapError> {
        Err(not_supported(&self.spec, "lookup"))
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(not_supported(&self.spec, "update"))
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(not_supported(&self.spec, "delete"))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        Err(not_supported(&self.spec, "get_next_key"))
    }
}
