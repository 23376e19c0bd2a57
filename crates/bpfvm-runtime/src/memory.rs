//! The memory a run may touch: a table of regions over host memory, the call-frame stack,
//! and checked loads, stores and atomics.
//!
//! Programs see real host addresses, as in the kernel. Every access goes through
//! [`Regions`], which proves the bytes lie inside one region before touching them. This
//! module holds the runtime's only `unsafe` code: the accesses after that proof.
//!
//! **Invariant:** every region of a `Regions<'a>` is borrowed for `'a` (exclusively when
//! writable), its bytes are initialized, and nothing but the table touches them while it
//! exists. Hence a pointer that [`Regions`] proved in-bounds is valid for the access.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use bpfvm_isa::AtomicOp;

use crate::FaultKind;

/// Bytes of stack per call frame.
pub const STACK_FRAME_SIZE: usize = 512;
/// The most call frames a run may have (the outermost one included), as in the kernel.
pub const MAX_CALL_FRAMES: usize = 8;
/// Bytes of stack memory for all frames.
pub const STACK_SIZE: usize = STACK_FRAME_SIZE * MAX_CALL_FRAMES;
/// Capacity of a [`Regions`] table.
pub const MAX_REGIONS: usize = 16;

/// What a region holds. Later program types add context, packet and map-value regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionKind {
    /// The run's memory buffer (the test ABI's `mem`, also the packet of legacy packet loads).
    Memory,
    /// The active call frames' stacks.
    Stack,
    /// Memory a host added for its own helpers or contexts.
    Host,
}

/// One contiguous range of host memory the program may access.
#[derive(Debug, Clone, Copy)]
pub struct MemoryRegion {
    /// Pointer to the first byte, carrying the provenance of the borrow it came from; its
    /// address is the region's address.
    ptr: *mut u8,
    /// Length in bytes.
    len: u64,
    writable: bool,
    kind: RegionKind,
}

impl MemoryRegion {
    const EMPTY: MemoryRegion = MemoryRegion {
        len: 0,
        ptr: ptr::null_mut(),
        writable: false,
        kind: RegionKind::Host,
    };

    /// Host address of the first byte.
    #[inline(always)]
    pub fn addr(&self) -> u64 {
        self.ptr.addr() as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether stores are allowed.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// What the region holds.
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// Whether `[addr, addr + size)` lies inside the region.
    #[inline(always)]
    pub fn contains(&self, addr: u64, size: u64) -> bool {
        let off = addr.wrapping_sub(self.addr());
        off < self.len && self.len - off >= size
    }
}

/// Stack memory for [`MAX_CALL_FRAMES`] frames of [`STACK_FRAME_SIZE`] bytes, 16-byte
/// aligned. Frame 0 is at the top (highest addresses); the stack grows down.
///
/// It starts uninitialized: [`Regions::add_stack`] zeroes a frame the first time it becomes
/// reachable, so creating one per run costs nothing. Keep it on the Rust stack of the run.
#[repr(C, align(16))]
pub struct StackMemory {
    bytes: [MaybeUninit<u8>; STACK_SIZE],
}

impl StackMemory {
    /// Uninitialized stack memory (nothing is written).
    pub const fn new() -> StackMemory {
        StackMemory {
            bytes: [MaybeUninit::uninit(); STACK_SIZE],
        }
    }
}

impl Default for StackMemory {
    fn default() -> Self {
        StackMemory::new()
    }
}

impl std::fmt::Debug for StackMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackMemory")
            .field("size", &STACK_SIZE)
            .finish_non_exhaustive()
    }
}

/// Applies an [`AtomicOp`] to an atomic cell, returning the old value.
macro_rules! rmw {
    ($a:expr, $op:expr, $value:expr, $expected:expr) => {{
        let ord = Ordering::SeqCst;
        match $op {
            AtomicOp::Add { .. } => $a.fetch_add($value, ord),
            AtomicOp::Or { .. } => $a.fetch_or($value, ord),
            AtomicOp::And { .. } => $a.fetch_and($value, ord),
            AtomicOp::Xor { .. } => $a.fetch_xor($value, ord),
            AtomicOp::Xchg => $a.swap($value, ord),
            AtomicOp::CmpXchg => match $a.compare_exchange($expected, $value, ord, ord) {
                Ok(old) | Err(old) => old,
            },
        }
    }};
}

/// Where the stack region lives inside the table and how deep the calls are.
#[derive(Debug, Clone, Copy)]
struct StackState {
    /// Index of the stack region in the table.
    index: usize,
    /// Pointer to the lowest byte of the whole stack memory.
    base: *mut u8,
    /// Its address.
    base_addr: u64,
    /// Frames `0..initialized` have been zeroed.
    initialized: usize,
}

/// The table of memory regions of one run, with checked accesses.
///
/// A run builds one on its own stack (no heap allocation): the stack frames, the memory
/// buffer, and whatever else its program type exposes. The most recently hit region is
/// checked first, so loops over one buffer cost one comparison per access.
///
/// ```
/// use bpfvm_runtime::{FaultKind, RegionKind, Regions, StackMemory};
/// let mut mem = [1u8, 2, 3, 4];
/// let mut stack = StackMemory::new();
/// let addr = mem.as_ptr() as u64;
/// let mut regions = Regions::new();
/// let fp = regions.add_stack(&mut stack).unwrap();
/// regions.add_mut(RegionKind::Memory, &mut mem).unwrap();
/// assert_eq!(regions.load::<u16>(addr + 2), Ok(u16::from_ne_bytes([3, 4])));
/// regions.store::<u64>(fp - 8, 7).unwrap();
/// assert_eq!(regions.load::<u64>(fp - 8), Ok(7));
/// assert_eq!(
///     regions.load::<u32>(addr + 2),
///     Err(FaultKind::OutOfBounds { addr: addr + 2, size: 4, write: false })
/// );
/// ```
#[derive(Debug)]
pub struct Regions<'a> {
    /// Copy of the most recently hit region (or an empty one).
    hot: MemoryRegion,
    table: [MemoryRegion; MAX_REGIONS],
    len: usize,
    stack: Option<StackState>,
    _borrow: PhantomData<&'a mut [u8]>,
}

/// The table is full, or a second stack was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// More than [`MAX_REGIONS`] regions.
    #[error("too many memory regions (at most {MAX_REGIONS})")]
    TableFull,
    /// [`Regions::add_stack`] was called twice.
    #[error("the run already has a stack")]
    StackAlreadyAdded,
}

impl Default for Regions<'_> {
    fn default() -> Self {
        Regions::new()
    }
}

impl<'a> Regions<'a> {
    /// An empty table: every access faults.
    #[inline]
    pub fn new() -> Regions<'a> {
        Regions {
            hot: MemoryRegion::EMPTY,
            table: [MemoryRegion::EMPTY; MAX_REGIONS],
            len: 0,
            stack: None,
            _borrow: PhantomData,
        }
    }

    #[inline]
    fn push(&mut self, region: MemoryRegion) -> Result<usize, RegionError> {
        let slot = self.table.get_mut(self.len).ok_or(RegionError::TableFull)?;
        *slot = region;
        self.len += 1;
        Ok(self.len - 1)
    }

    /// Adds a readable and writable region over `mem`. An empty slice adds nothing.
    #[inline]
    pub fn add_mut(&mut self, kind: RegionKind, mem: &'a mut [u8]) -> Result<(), RegionError> {
        if mem.is_empty() {
            return Ok(());
        }
        let ptr = mem.as_mut_ptr();
        self.push(MemoryRegion {
            len: mem.len() as u64,
            ptr,
            writable: true,
            kind,
        })
        .map(drop)
    }

    /// Adds a read-only region over `mem`. An empty slice adds nothing.
    #[inline]
    pub fn add_read_only(&mut self, kind: RegionKind, mem: &'a [u8]) -> Result<(), RegionError> {
        if mem.is_empty() {
            return Ok(());
        }
        // Never written through: the region is not writable, so `translate` refuses stores.
        let ptr = mem.as_ptr().cast_mut();
        self.push(MemoryRegion {
            len: mem.len() as u64,
            ptr,
            writable: false,
            kind,
        })
        .map(drop)
    }

    /// Adds the call-frame stack with frame 0 active (zeroed) and returns frame 0's frame
    /// pointer (the `r10` of the outermost function: one past its highest byte).
    #[inline]
    pub fn add_stack(&mut self, stack: &'a mut StackMemory) -> Result<u64, RegionError> {
        if self.stack.is_some() {
            return Err(RegionError::StackAlreadyAdded);
        }
        let base = stack.bytes.as_mut_ptr().cast::<u8>();
        let index = self.push(MemoryRegion {
            len: 0,
            ptr: base,
            writable: true,
            kind: RegionKind::Stack,
        })?;
        self.stack = Some(StackState {
            index,
            base,
            base_addr: base.addr() as u64,
            initialized: 0,
        });
        Ok(self.activate_frames(0))
    }

    /// Makes frames `0..=depth` the reachable stack (frame `depth` being the current
    /// function's) and returns frame `depth`'s frame pointer. A frame is zeroed the first
    /// time it becomes reachable. Faults with [`FaultKind::CallDepthExceeded`] when
    /// `depth >= MAX_CALL_FRAMES`; without a stack, returns 0.
    #[inline]
    pub fn set_stack_depth(&mut self, depth: usize) -> Result<u64, FaultKind> {
        if depth >= MAX_CALL_FRAMES {
            return Err(FaultKind::CallDepthExceeded);
        }
        Ok(self.activate_frames(depth))
    }

    /// `set_stack_depth` for a depth already known to be below [`MAX_CALL_FRAMES`].
    #[inline]
    fn activate_frames(&mut self, depth: usize) -> u64 {
        let depth = depth.min(MAX_CALL_FRAMES - 1);
        let Some(stack) = self.stack.as_mut() else {
            return 0;
        };
        while stack.initialized <= depth {
            let offset = STACK_SIZE - (stack.initialized + 1) * STACK_FRAME_SIZE;
            // SAFETY: `base` points to the `STACK_SIZE` bytes of the `StackMemory` borrowed
            // for 'a, and `offset + STACK_FRAME_SIZE <= STACK_SIZE`; only this table
            // accesses them (module invariant).
            unsafe { ptr::write_bytes(stack.base.add(offset), 0, STACK_FRAME_SIZE) };
            stack.initialized += 1;
        }
        let reachable = (depth + 1) * STACK_FRAME_SIZE;
        let floor = STACK_SIZE - reachable;
        let region = MemoryRegion {
            len: reachable as u64,
            ptr: stack.base.wrapping_add(floor),
            writable: true,
            kind: RegionKind::Stack,
        };
        let top = stack.base_addr + (STACK_SIZE - depth * STACK_FRAME_SIZE) as u64;
        if let Some(slot) = self.table.get_mut(stack.index) {
            *slot = region;
        }
        if self.hot.kind == RegionKind::Stack {
            self.hot = region;
        }
        top
    }

    /// The regions, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.table.iter().take(self.len)
    }

    /// Proves `[addr, addr + size)` lies in one region (a writable one when `write`) and
    /// returns a pointer to its first byte, derived from that region's borrow.
    #[inline(always)]
    fn translate(&mut self, addr: u64, size: u64, write: bool) -> Result<*mut u8, FaultKind> {
        let hot = &self.hot;
        let off = addr.wrapping_sub(hot.addr());
        if off < hot.len && hot.len - off >= size && (hot.writable || !write) {
            return Ok(hot.ptr.wrapping_add(off as usize));
        }
        self.translate_slow(addr, size, write)
    }

    #[cold]
    #[inline(never)]
    fn translate_slow(&mut self, addr: u64, size: u64, write: bool) -> Result<*mut u8, FaultKind> {
        for region in self.table.iter().take(self.len) {
            if region.contains(addr, size) && (region.writable || !write) {
                self.hot = *region;
                return Ok(region
                    .ptr
                    .wrapping_add(addr.wrapping_sub(region.addr()) as usize));
            }
        }
        Err(FaultKind::OutOfBounds {
            addr,
            size: size as usize,
            write,
        })
    }

    /// Loads a `T` (native byte order, any alignment) from `addr`.
    #[inline(always)]
    pub fn load<T: Scalar>(&mut self, addr: u64) -> Result<T, FaultKind> {
        let p = self.translate(addr, T::SIZE as u64, false)?;
        // SAFETY: `translate` proved the `T::SIZE` bytes at `p` lie inside one region; by
        // the module invariant they are initialized and valid to read for 'a. Every bit
        // pattern is a valid `T` (an unsigned integer), and the read is unaligned.
        Ok(unsafe { p.cast::<T>().read_unaligned() })
    }

    /// Stores a `T` (native byte order, any alignment) at `addr`.
    #[inline(always)]
    pub fn store<T: Scalar>(&mut self, addr: u64, value: T) -> Result<(), FaultKind> {
        let p = self.translate(addr, T::SIZE as u64, true)?;
        // SAFETY: `translate` proved the `T::SIZE` bytes at `p` lie inside one writable
        // region, which is exclusively borrowed for 'a (module invariant); the write is
        // unaligned.
        unsafe { p.cast::<T>().write_unaligned(value) };
        Ok(())
    }

    /// Copies `out.len()` bytes starting at `addr` into `out` (for helpers).
    pub fn read_bytes(&mut self, addr: u64, out: &mut [u8]) -> Result<(), FaultKind> {
        if out.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, out.len() as u64, false)?;
        // SAFETY: `translate` proved the `out.len()` bytes at `p` lie in one region, valid
        // to read (module invariant); `out` is a distinct Rust allocation borrowed
        // mutably, so the ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `data` to `addr` (for helpers).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), FaultKind> {
        if data.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, data.len() as u64, true)?;
        // SAFETY: `translate` proved the `data.len()` bytes at `p` lie in one writable,
        // exclusively borrowed region (module invariant). `data` cannot alias it: a Rust
        // reference into a region would contradict that exclusive borrow.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Translates an atomic access: in bounds, writable when `write`, naturally aligned.
    #[inline(always)]
    fn translate_atomic(
        &mut self,
        addr: u64,
        size: u64,
        write: bool,
    ) -> Result<*mut u8, FaultKind> {
        let p = self.translate(addr, size, write)?;
        if p.addr() as u64 & (size - 1) != 0 {
            return Err(FaultKind::MisalignedAtomic {
                addr,
                size: size as usize,
            });
        }
        Ok(p)
    }

    /// Atomic read-modify-write of the 32-bit word at `addr`; returns the old value. For
    /// [`AtomicOp::CmpXchg`], `expected` is compared with the word (otherwise ignored).
    /// Sequentially consistent.
    pub fn atomic32(
        &mut self,
        addr: u64,
        op: AtomicOp,
        value: u32,
        expected: u32,
    ) -> Result<u32, FaultKind> {
        let p = self.translate_atomic(addr, 4, true)?;
        // SAFETY: `p` is 4-byte aligned and the 4 bytes lie in one writable region,
        // exclusively borrowed for 'a (module invariant), so no other thread accesses them
        // during the run; every access during the run goes through this table.
        let a = unsafe { AtomicU32::from_ptr(p.cast::<u32>()) };
        Ok(rmw!(a, op, value, expected))
    }

    /// Atomic read-modify-write of the 64-bit word at `addr`; see [`Regions::atomic32`].
    pub fn atomic64(
        &mut self,
        addr: u64,
        op: AtomicOp,
        value: u64,
        expected: u64,
    ) -> Result<u64, FaultKind> {
        let p = self.translate_atomic(addr, 8, true)?;
        // SAFETY: as in `atomic32`, with 8-byte alignment checked.
        let a = unsafe { AtomicU64::from_ptr(p.cast::<u64>()) };
        Ok(rmw!(a, op, value, expected))
    }

    /// Load-acquire of `size` bytes (1, 2, 4 or 8) at `addr`, zero-extended.
    pub fn load_acquire(&mut self, addr: u64, size: usize) -> Result<u64, FaultKind> {
        let size = normalize_size(size);
        let p = self.translate_atomic(addr, size as u64, false)?;
        let acq = Ordering::Acquire;
        // In each arm, `p` is aligned to `size` and the `size` bytes lie in one region valid
        // for 'a that nothing else accesses during the run (module invariant).
        Ok(match size {
            // SAFETY: see above; 1 byte.
            1 => u64::from(unsafe { AtomicU8::from_ptr(p) }.load(acq)),
            // SAFETY: see above; 2 bytes, 2-aligned.
            2 => u64::from(unsafe { AtomicU16::from_ptr(p.cast()) }.load(acq)),
            // SAFETY: see above; 4 bytes, 4-aligned.
            4 => u64::from(unsafe { AtomicU32::from_ptr(p.cast()) }.load(acq)),
            // SAFETY: see above; 8 bytes, 8-aligned.
            _ => unsafe { AtomicU64::from_ptr(p.cast()) }.load(acq),
        })
    }

    /// Store-release of the low `size` bytes (1, 2, 4 or 8) of `value` at `addr`.
    pub fn store_release(&mut self, addr: u64, size: usize, value: u64) -> Result<(), FaultKind> {
        let size = normalize_size(size);
        let p = self.translate_atomic(addr, size as u64, true)?;
        let rel = Ordering::Release;
        // In each arm, `p` is aligned to `size` and the `size` bytes lie in one writable
        // region, exclusively borrowed for 'a (module invariant).
        match size {
            // SAFETY: see above; 1 byte.
            1 => unsafe { AtomicU8::from_ptr(p) }.store(value as u8, rel),
            // SAFETY: see above; 2 bytes, 2-aligned.
            2 => unsafe { AtomicU16::from_ptr(p.cast()) }.store(value as u16, rel),
            // SAFETY: see above; 4 bytes, 4-aligned.
            4 => unsafe { AtomicU32::from_ptr(p.cast()) }.store(value as u32, rel),
            // SAFETY: see above; 8 bytes, 8-aligned.
            _ => unsafe { AtomicU64::from_ptr(p.cast()) }.store(value, rel),
        }
        Ok(())
    }
}

/// Maps a size to 1, 2, 4 or 8 (anything else is treated as 8).
fn normalize_size(size: usize) -> usize {
    match size {
        1 | 2 | 4 => size,
        _ => 8,
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// An unsigned integer a program can load or store: `u8`, `u16`, `u32`, `u64`.
pub trait Scalar: Copy + sealed::Sealed {
    /// Size in bytes.
    const SIZE: usize;
    /// Zero-extends to 64 bits.
    fn to_u64(self) -> u64;
    /// Truncates from 64 bits.
    fn from_u64(v: u64) -> Self;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    )*};
}
scalar!(u8, u16, u32, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_window_follows_depth_and_zeroes_new_frames() {
        let mut stack = StackMemory::new();
        let mut r = Regions::new();
        let fp0 = r.add_stack(&mut stack).expect("must succeed");
        assert_eq!(fp0 % 16, 0);
        assert_eq!(r.load::<u64>(fp0 - 8), Ok(0));
        assert_eq!(r.load::<u8>(fp0 - 512), Ok(0));
        // Below frame 0 is not reachable yet, nor is the frame pointer itself.
        assert!(r.load::<u8>(fp0 - 513).is_err());
        assert!(r.load::<u8>(fp0).is_err());
        r.store::<u64>(fp0 - 8, u64::MAX).expect("must succeed");
        let fp1 = r.set_stack_depth(1).expect("must succeed");
        assert_eq!(fp1, fp0 - 512);
        assert_eq!(r.load::<u64>(fp1 - 8), Ok(0));
        // The caller's frame stays reachable (pointers to it may be passed down).
        assert_eq!(r.load::<u64>(fp0 - 8), Ok(u64::MAX));
        r.store::<u32>(fp1 - 4, 5).expect("must succeed");
        assert_eq!(r.set_stack_depth(0), Ok(fp0));
        assert!(r.load::<u32>(fp1 - 4).is_err());
        // Re-entering frame 1 keeps what it held: frames are zeroed once per run.
        r.set_stack_depth(1).expect("must succeed");
        assert_eq!(r.load::<u32>(fp1 - 4), Ok(5));
        assert_eq!(r.set_stack_depth(7), Ok(fp0 - 7 * 512));
        assert_eq!(r.load::<u8>(fp0 - 4096), Ok(0));
        assert_eq!(r.set_stack_depth(8), Err(FaultKind::CallDepthExceeded));
    }

    #[test]
    fn read_only_regions_refuse_stores() {
        let data = [9u8; 8];
        let addr = data.as_ptr() as u64;
        let mut r = Regions::new();
        r.add_read_only(RegionKind::Host, &data)
            .expect("must succeed");
        assert_eq!(r.load::<u64>(addr), Ok(u64::from_ne_bytes([9; 8])));
        assert_eq!(
            r.store::<u8>(addr, 1),
            Err(FaultKind::OutOfBounds {
                addr,
                size: 1,
                write: true
            })
        );
    }

    #[test]
    fn wrapping_addresses_do_not_match() {
        let mut mem = [0u8; 4];
        let addr = mem.as_ptr() as u64;
        let mut r = Regions::new();
        r.add_mut(RegionKind::Memory, &mut mem)
            .expect("must succeed");
        assert!(r.load::<u8>(addr.wrapping_sub(1)).is_err());
        assert!(r.load::<u64>(u64::MAX - 3).is_err());
        assert!(r.load::<u32>(addr + 1).is_err());
        assert!(r.load::<u32>(addr).is_ok());
        let mut buf = [0u8; 5];
        assert!(r.read_bytes(addr, &mut buf).is_err());
        assert!(r.write_bytes(addr, &[1, 2, 3, 4]).is_ok());
        assert!(r.read_bytes(addr, &mut buf[..4]).is_ok());
        assert_eq!(buf, [1, 2, 3, 4, 0]);
    }

    #[test]
    fn atomics_check_alignment() {
        let mut stack = StackMemory::new();
        let mut r = Regions::new();
        let fp = r.add_stack(&mut stack).expect("must succeed");
        let a = fp - 16;
        assert_eq!(r.atomic64(a, AtomicOp::Add { fetch: true }, 5, 0), Ok(0));
        assert_eq!(r.atomic64(a, AtomicOp::CmpXchg, 9, 5), Ok(5));
        assert_eq!(r.load::<u64>(a), Ok(9));
        assert_eq!(r.atomic32(a, AtomicOp::CmpXchg, 1, 0), Ok(9));
        assert_eq!(r.load::<u64>(a), Ok(9));
        assert_eq!(
            r.atomic32(a + 2, AtomicOp::Xchg, 1, 0),
            Err(FaultKind::MisalignedAtomic {
                addr: a + 2,
                size: 4
            })
        );
        r.store_release(a + 1, 1, 0x1ff).expect("must succeed");
        assert_eq!(r.load_acquire(a, 2), Ok(0xff09));
        assert_eq!(
            r.load_acquire(a + 1, 2),
            Err(FaultKind::MisalignedAtomic {
                addr: a + 1,
                size: 2
            })
        );
        let mut r = Regions::new();
        assert_eq!(r.set_stack_depth(3), Ok(0));
        assert_eq!(r.regions_len(), 0);
    }

    #[test]
    fn table_capacity() {
        let mut bufs = [[0u8; 1]; MAX_REGIONS + 1];
        let mut r = Regions::new();
        let mut results = Vec::new();
        for b in bufs.iter_mut() {
            results.push(r.add_mut(RegionKind::Host, b));
        }
        assert_eq!(results.last(), Some(&Err(RegionError::TableFull)));
        assert!(results[..MAX_REGIONS].iter().all(Result::is_ok));
    }

    impl Regions<'_> {
        fn regions_len(&self) -> usize {
            self.iter().count()
        }
    }
}
