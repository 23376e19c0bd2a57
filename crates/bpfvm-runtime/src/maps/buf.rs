//! [`ValueBuf`]: one fallibly allocated, zeroed, 8-byte aligned block of value memory with
//! a stable address, read and written by the host only through atomic operations.
//!
//! This file holds the maps' `unsafe` code. **Invariant:** `ptr` points to an allocation
//! of `len` bytes (`len` a non-zero multiple of 8) made with `Layout(len, 8)` by
//! `alloc_zeroed`, owned by this `ValueBuf` alone and freed only by its `Drop`. All host
//! accesses go through `AtomicU64` (whole 8-byte words) or `AtomicU8` (the tail of a
//! value whose size is not a multiple of 8), so programs doing atomics on the same
//! memory through raw pointers never race with a non-atomic host access.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use bpfvm_abi::MapError;

/// Owned value memory; see the module doc for the invariant.
#[derive(Debug)]
pub(crate) struct ValueBuf {
    ptr: NonNull<u8>,
    len: usize,
}

/// Where in a [`ValueBuf`] the address of its block is (a JIT reads it: `HashWalk`).
pub(crate) const VALUE_PTR: usize = std::mem::offset_of!(ValueBuf, ptr);

// SAFETY: a `ValueBuf` owns its allocation like a `Box<[AtomicU64]>`; every access through
// `&ValueBuf` is atomic, so sharing and sending it across threads is sound.
unsafe impl Send for ValueBuf {}
// SAFETY: as above: shared access is atomic only.
unsafe impl Sync for ValueBuf {}

impl ValueBuf {
    /// Allocates `len` zeroed bytes (`len` is rounded up to a multiple of 8), or fails with
    /// `TooBig` (the size cannot be a layout) or `NoMemory` (the allocator refused).
    pub(crate) fn zeroed(len: usize) -> Result<ValueBuf, MapError> {
        let len = round8(len.max(1))
            .ok_or_else(|| MapError::TooBig(format!("{len} bytes of values overflow")))?;
        let layout = Layout::from_size_align(len, 8)
            .map_err(|_| MapError::TooBig(format!("{len} bytes of values is too large")))?;
        // SAFETY: `layout` has a non-zero size (`len >= 8`).
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| {
            MapError::NoMemory(format!("the allocator refused {len} bytes of values"))
        })?;
        Ok(ValueBuf { ptr, len })
    }

    /// The address of byte `offset` (which must be `<= len`), with the allocation's
    /// provenance, for programs.
    pub(crate) fn ptr_at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset <= self.len, "value offset out of bounds");
        // SAFETY: `offset <= len`, so the result stays inside (or one past) the allocation.
        unsafe { self.ptr.add(offset) }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the allocation is `len` initialized (zeroed) bytes, 8-aligned, `len` a
        // multiple of 8, alive as long as `self`; `AtomicU64` has the size and alignment of
        // `u64`, and every access through this view is atomic.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8) }
    }

    fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: as in `words`; `AtomicU8` has the layout of `u8`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }

    /// Copies `src` into the buffer at `offset` (a multiple of 8). Panics when out of
    /// bounds (callers check sizes first).
    pub(crate) fn write(&self, offset: usize, src: &[u8]) {
        assert!(offset.is_multiple_of(8) && offset + src.len() <= self.len);
        let words = &self.words()[offset / 8..];
        let mut chunks = src.chunks_exact(8);
        for (w, chunk) in words.iter().zip(&mut chunks) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
        let tail = chunks.remainder();
        let start = offset + src.len() - tail.len();
        for (b, v) in self.bytes()[start..].iter().zip(tail) {
            b.store(*v, Ordering::Relaxed);
        }
    }

    /// Copies the buffer's bytes at `offset` (a multiple of 8) into `dst`.
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset.is_multiple_of(8) && offset + dst.len() <= self.len);
        let words = &self.words()[offset / 8..];
        let n = dst.len();
        let mut chunks = dst.chunks_exact_mut(8);
        for (w, chunk) in words.iter().zip(&mut chunks) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        let tail = chunks.into_remainder();
        let start = offset + n - tail.len();
        for (v, b) in tail.iter_mut().zip(&self.bytes()[start..]) {
            *v = b.load(Ordering::Relaxed);
        }
    }
}

impl Drop for ValueBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by `alloc_zeroed` with exactly this layout (checked
        // in `zeroed`) and is freed only here, once.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.len, 8),
            )
        }
    }
}

/// `n` rounded up to a multiple of 8, or `None` on overflow.
pub(crate) fn round8(n: usize) -> Option<usize> {
    n.checked_add(7).map(|n| n & !7)
}
