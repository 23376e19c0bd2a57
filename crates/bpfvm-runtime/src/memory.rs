//! The memory a run may touch: a table of regions over host memory, the call-frame stack,
//! and checked loads, stores and atomics.
//!
//! Programs see real host addresses, as in the kernel. Every access goes through
//! [`Regions`], which proves the bytes lie inside one region before touching them. This
//! module holds the runtime's only `unsafe` code: the accesses after that proof.
//!
//! **Invariant:** every region of a `Regions<'a>` is either *owned* — borrowed for `'a`
//! (exclusively when writable), its bytes initialized, nothing but the table touching them
//! while it exists — or *shared* (map values, ring-buffer records, global data): added
//! through the `unsafe` [`Regions::add_shared`] / [`Regions::add_shared_fixed`], whose
//! callers promise the bytes stay allocated and initialized for `'a` and that everyone
//! else accesses them only atomically; the table too accesses shared regions only with
//! atomic operations (relaxed for plain loads and stores). Hence a pointer that [`Regions`]
//! proved in-bounds is valid for the access, and no access is a data race.
//!
//! The context of a program type with field rules (`xdp_md`, `__sk_buff`) is not a plain
//! region: every access to it is checked against its [`ContextLayout`] and loads of the
//! packet-pointer fields give the packet's current addresses, as the kernel's context
//! rewrite does.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use bpfvm_abi::{ContextLayout, Rewrite};
use bpfvm_isa::AtomicOp;

use crate::FaultKind;

/// Bytes of stack per call frame.
pub const STACK_FRAME_SIZE: usize = 512;
/// The most call frames a run may have (the outermost one included), as in the kernel.
pub const MAX_CALL_FRAMES: usize = 8;
/// Bytes of stack memory for all frames.
pub const STACK_SIZE: usize = STACK_FRAME_SIZE * MAX_CALL_FRAMES;
/// Capacity of the fixed part of a [`Regions`] table (stack, memory, context, packet,
/// global data, host regions).
pub const MAX_REGIONS: usize = 16;
/// How many map values and ring-buffer records a run keeps access to at once: the most
/// recently obtained ones (older ones are forgotten first, and faults name the access).
pub const MAX_DYNAMIC_REGIONS: usize = 256;

/// What a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionKind {
    /// The run's memory buffer (the test ABI's `mem`, also the packet of legacy packet loads).
    Memory,
    /// The active call frames' stacks.
    Stack,
    /// Memory a host added for its own helpers or contexts.
    Host,
    /// Packet data (`data_meta..data_end`) of an XDP or `__sk_buff` context.
    Packet,
    /// A map value (or a map's global-data block) shared with other runs and the host.
    MapValue,
    /// A ring-buffer record reserved by this run.
    RingBuf,
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
    /// Other threads and the host may access the bytes concurrently: every access is an
    /// atomic one.
    shared: bool,
    kind: RegionKind,
}

impl MemoryRegion {
    /// No bytes (an empty region's kind is never looked at).
    const EMPTY: MemoryRegion = MemoryRegion {
        len: 0,
        ptr: ptr::null_mut(),
        writable: false,
        shared: false,
        kind: RegionKind::Memory,
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

    /// Whether other threads may access the bytes during the run (map values): the run
    /// then accesses them only atomically.
    pub fn shared(&self) -> bool {
        self.shared
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

    /// Zeroes frame 0 now, as [`Regions::add_stack`] would, and returns its frame pointer
    /// (one past its highest byte): for an engine that runs code on the stack before it
    /// builds the run's regions (if ever), with [`Regions::add_zeroed_stack`], which
    /// does not zero the frame again. Out of line: inlined next to the uninitialized
    /// rest, the compiler may zero all 4 KiB.
    #[inline(never)]
    pub fn zero_outermost(&mut self) -> u64 {
        let frame = &mut self.bytes[STACK_SIZE - STACK_FRAME_SIZE..];
        frame.fill(MaybeUninit::new(0));
        self.outermost_fp()
    }

    /// Frame 0's frame pointer (one past the stack's highest byte), where
    /// [`Regions::add_stack`] will put it; nothing is written.
    #[inline]
    pub fn outermost_fp(&self) -> u64 {
        (self.bytes.as_ptr().addr() + STACK_SIZE) as u64
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
    /// Copy of the most recently hit region that is not shared (or an empty one): a JIT's
    /// inline window, which map values must not take over.
    hot_plain: MemoryRegion,
    /// The fixed regions: entries `0..len` are set, the rest never read (left
    /// uninitialized, so that a run does not write the whole table to start).
    table: [MaybeUninit<MemoryRegion>; MAX_REGIONS],
    len: usize,
    /// Map values and ring-buffer records obtained during the run, a ring of at most
    /// [`MAX_DYNAMIC_REGIONS`] (allocated on the first one).
    dynamic: Vec<MemoryRegion>,
    /// Where the next dynamic region goes once the ring is full.
    next_dynamic: usize,
    stack: Option<StackState>,
    ctx: Option<ContextState>,
    packet: Option<PacketState>,
    _borrow: PhantomData<&'a mut [u8]>,
}

/// The context struct of a program type with field rules.
#[derive(Debug, Clone, Copy)]
struct ContextState {
    ptr: *mut u8,
    len: u64,
    layout: &'static ContextLayout,
}

/// A packet buffer: headroom, metadata, data, tailroom. Offsets are into `ptr..ptr+len`.
#[derive(Debug, Clone, Copy)]
struct PacketState {
    ptr: *mut u8,
    len: usize,
    /// Index of the packet region (covering `meta..end`) in the table.
    index: usize,
    meta: usize,
    data: usize,
    end: usize,
}

/// Where the bytes of a packet are inside its buffer: `meta <= data <= end <= capacity`.
/// Metadata is `meta..data`, packet data `data..end`; before `meta` is headroom, after
/// `end` tailroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketBounds {
    /// Start of the metadata area (equals `data` when there is none).
    pub meta: usize,
    /// First byte of packet data.
    pub data: usize,
    /// One past the last byte of packet data.
    pub end: usize,
    /// Size of the whole buffer.
    pub capacity: usize,
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
    /// A context or packet was set twice, or packet bounds are not inside the buffer.
    #[error("invalid context or packet setup: {0}")]
    BadSetup(&'static str),
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
            hot_plain: MemoryRegion::EMPTY,
            table: [const { MaybeUninit::uninit() }; MAX_REGIONS],
            len: 0,
            dynamic: Vec::new(),
            next_dynamic: 0,
            stack: None,
            ctx: None,
            packet: None,
            _borrow: PhantomData,
        }
    }

    #[inline]
    fn push(&mut self, region: MemoryRegion) -> Result<usize, RegionError> {
        let slot = self.table.get_mut(self.len).ok_or(RegionError::TableFull)?;
        slot.write(region);
        self.len += 1;
        Ok(self.len - 1)
    }

    /// Adds a plain region of the run's setup (its memory, packet or context bytes); the
    /// first one starts as the hot region, before any access: a program's first access
    /// usually goes to its input, which is then checked first, and a JIT's inline window
    /// covers it from the start instead of after a slow-path search.
    #[inline]
    fn push_plain(&mut self, region: MemoryRegion) -> Result<usize, RegionError> {
        let index = self.push(region)?;
        if self.hot_plain.len == 0 {
            self.hot_plain = region;
            self.hot = region;
        }
        Ok(index)
    }

    /// Adds a shared region (a map value, a ring-buffer record) for the rest of the run,
    /// or until [`MAX_DYNAMIC_REGIONS`] newer ones have been added. Adding the region that
    /// was added last again adds nothing. Returns the region's address.
    ///
    /// The region becomes the hot one (checked first), as if the program had just
    /// accessed it: a program reads the value a helper returned next, and a JIT can then
    /// access it inline instead of through its runtime.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay allocated and initialized for `'a`, and every other thread
    /// and the host must access it only atomically while this table exists.
    pub unsafe fn add_shared(
        &mut self,
        kind: RegionKind,
        ptr: *mut u8,
        len: usize,
        writable: bool,
    ) -> u64 {
        let region = MemoryRegion {
            ptr,
            len: len as u64,
            writable,
            shared: true,
            kind,
        };
        let newest = if self.next_dynamic == 0 {
            self.dynamic.last()
        } else {
            self.dynamic.get(self.next_dynamic - 1)
        };
        if let Some(&r) = newest
            && r.ptr == ptr
            && r.len == len as u64
            && r.writable == writable
        {
            self.hot = r;
            return region.addr();
        }
        if self.dynamic.len() < self.dynamic.capacity() {
            self.dynamic.push(region);
        } else if self.dynamic.len() < MAX_DYNAMIC_REGIONS {
            self.grow_dynamic(region);
        } else {
            // Forget the oldest. (The hot copy, which must not outlive the region it
            // copies, becomes the new one below.)
            if let Some(slot) = self.dynamic.get_mut(self.next_dynamic) {
                *slot = region;
            }
            self.next_dynamic = (self.next_dynamic + 1) % MAX_DYNAMIC_REGIONS;
        }
        self.hot = region;
        region.addr()
    }

    /// The first dynamic region of a run: allocates the ring (out of line, so that the
    /// common case saves no registers for the allocator's call).
    #[cold]
    #[inline(never)]
    fn grow_dynamic(&mut self, region: MemoryRegion) {
        self.dynamic.reserve_exact(MAX_DYNAMIC_REGIONS);
        self.dynamic.push(region);
    }

    /// Adds a shared region for the whole run in the fixed table (a map's global-data
    /// block). An empty range adds nothing.
    ///
    /// # Safety
    /// As for [`Regions::add_shared`].
    pub unsafe fn add_shared_fixed(
        &mut self,
        kind: RegionKind,
        ptr: *mut u8,
        len: usize,
        writable: bool,
    ) -> Result<(), RegionError> {
        if len == 0 {
            return Ok(());
        }
        self.push(MemoryRegion {
            ptr,
            len: len as u64,
            writable,
            shared: true,
            kind,
        })
        .map(drop)
    }

    /// Adds the value blocks `prog` addresses directly (its global data maps) for the
    /// whole run, writable unless the map is read-only for programs.
    #[inline]
    pub fn add_direct_values(&mut self, prog: &'a crate::LoadedProgram) -> Result<(), RegionError> {
        // SAFETY: `prog` holds its maps for 'a.
        unsafe { self.add_direct_values_of(prog) }
    }

    /// [`Regions::add_direct_values`] for a program entered during the run (a tail call),
    /// skipping the blocks the table has already (programs of one object share their
    /// global data maps, and a run may tail-call 33 times).
    ///
    /// # Safety
    /// `prog`'s maps must stay alive while this table exists (a tail-called program is
    /// kept by the run state, which the engines drop after the regions).
    #[inline]
    pub unsafe fn add_direct_values_of(
        &mut self,
        prog: &crate::LoadedProgram,
    ) -> Result<(), RegionError> {
        if !prog.has_direct_values() {
            return Ok(()); // most programs: without a call
        }
        // SAFETY: this function's contract.
        unsafe { self.add_direct_values_slow(prog) }
    }

    /// [`Regions::add_direct_values_of`] of a program with global data.
    ///
    /// # Safety
    /// As [`Regions::add_direct_values_of`].
    unsafe fn add_direct_values_slow(
        &mut self,
        prog: &crate::LoadedProgram,
    ) -> Result<(), RegionError> {
        for map in prog.direct_value_maps() {
            if let Some((ptr, len, writable)) = map.direct_value() {
                let ptr = ptr.as_ptr();
                if self.iter().any(|r| r.ptr == ptr && r.len == len as u64) {
                    continue;
                }
                // SAFETY: the maps outlive the table (this function's contract), and a
                // map's value block never moves and is freed only after the map is
                // dropped; programs and the host access map memory only atomically (the
                // maps' access invariant).
                unsafe { self.add_shared_fixed(RegionKind::MapValue, ptr, len, writable)? };
            }
        }
        Ok(())
    }

    /// Forgets the dynamic region starting at `addr` (a ring-buffer record once submitted
    /// or discarded: the consumer may read it now).
    pub fn remove_shared(&mut self, addr: u64) {
        if self.hot.shared && self.hot.addr() == addr {
            self.hot = MemoryRegion::EMPTY;
        }
        for r in self.dynamic.iter_mut() {
            if r.addr() == addr {
                *r = MemoryRegion::EMPTY;
            }
        }
    }

    /// Sets the program's context struct, accessed under `layout`'s field rules (pointer
    /// fields read as the packet's addresses). Returns its address.
    pub fn set_context(
        &mut self,
        layout: &'static ContextLayout,
        ctx: &'a mut [u8],
    ) -> Result<u64, RegionError> {
        if self.ctx.is_some() {
            return Err(RegionError::BadSetup("the run already has a context"));
        }
        if (ctx.len() as u64) < u64::from(layout.size) {
            return Err(RegionError::BadSetup(
                "the context is shorter than its struct",
            ));
        }
        let ptr = ctx.as_mut_ptr();
        self.ctx = Some(ContextState {
            ptr,
            len: u64::from(layout.size),
            layout,
        });
        Ok(ptr.addr() as u64)
    }

    /// Sets the packet: `buf` is the whole buffer (headroom and tailroom included),
    /// `bounds` where metadata and data are. The program may access `meta..end`.
    pub fn set_packet(
        &mut self,
        buf: &'a mut [u8],
        bounds: PacketBounds,
    ) -> Result<(), RegionError> {
        if self.packet.is_some() {
            return Err(RegionError::BadSetup("the run already has a packet"));
        }
        check_bounds(bounds, buf.len())?;
        let ptr = buf.as_mut_ptr();
        let index = self.push_plain(MemoryRegion {
            ptr: ptr.wrapping_add(bounds.meta),
            len: (bounds.end - bounds.meta) as u64,
            writable: true,
            shared: false,
            kind: RegionKind::Packet,
        })?;
        self.packet = Some(PacketState {
            ptr,
            len: buf.len(),
            index,
            meta: bounds.meta,
            data: bounds.data,
            end: bounds.end,
        });
        Ok(())
    }

    /// The packet's current bounds, if the run has a packet.
    pub fn packet_bounds(&self) -> Option<PacketBounds> {
        self.packet.map(|p| PacketBounds {
            meta: p.meta,
            data: p.data,
            end: p.end,
            capacity: p.len,
        })
    }

    /// The host address of byte `offset` of the packet buffer (0 without a packet).
    pub fn packet_addr(&self, offset: usize) -> u64 {
        self.packet
            .map_or(0, |p| p.ptr.addr().wrapping_add(offset) as u64)
    }

    /// Moves the packet's bounds inside its buffer (`bpf_xdp_adjust_head/tail/meta`).
    /// Bytes that become packet data keep what the buffer held there.
    pub fn adjust_packet(&mut self, bounds: PacketBounds) -> Result<(), RegionError> {
        let Some(p) = self.packet.as_mut() else {
            return Err(RegionError::BadSetup("the run has no packet"));
        };
        check_bounds(bounds, p.len)?;
        p.meta = bounds.meta;
        p.data = bounds.data;
        p.end = bounds.end;
        let region = MemoryRegion {
            ptr: p.ptr.wrapping_add(bounds.meta),
            len: (bounds.end - bounds.meta) as u64,
            writable: true,
            shared: false,
            kind: RegionKind::Packet,
        };
        if let Some(slot) = self.table.get_mut(p.index) {
            slot.write(region);
        }
        if self.hot_plain.kind == RegionKind::Packet {
            self.hot_plain = MemoryRegion::EMPTY;
        }
        if self.hot.kind == RegionKind::Packet {
            self.hot = MemoryRegion::EMPTY;
        }
        Ok(())
    }

    /// Copies bytes of the packet buffer (any part of it, headroom included) for helpers.
    pub fn packet_buffer_read(&self, offset: usize, out: &mut [u8]) -> Result<(), RegionError> {
        let p = self
            .packet
            .ok_or(RegionError::BadSetup("the run has no packet"))?;
        if offset.checked_add(out.len()).is_none_or(|e| e > p.len) {
            return Err(RegionError::BadSetup("outside the packet buffer"));
        }
        // SAFETY: the packet buffer is owned by the table for 'a (module invariant) and
        // `offset..offset+out.len()` lies inside it; `out` is a distinct allocation.
        unsafe { ptr::copy_nonoverlapping(p.ptr.add(offset), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Writes bytes anywhere in the packet buffer (for helpers moving packet data).
    pub fn packet_buffer_write(&mut self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        let p = self
            .packet
            .ok_or(RegionError::BadSetup("the run has no packet"))?;
        if offset.checked_add(data.len()).is_none_or(|e| e > p.len) {
            return Err(RegionError::BadSetup("outside the packet buffer"));
        }
        // SAFETY: as in `packet_buffer_read`; the buffer is exclusively borrowed and
        // `data` cannot alias it (a Rust reference into it would contradict that borrow).
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p.ptr.add(offset), data.len()) };
        Ok(())
    }

    /// Adds a readable and writable region over `mem`. An empty slice adds nothing.
    #[inline]
    pub fn add_mut(&mut self, kind: RegionKind, mem: &'a mut [u8]) -> Result<(), RegionError> {
        if mem.is_empty() {
            return Ok(());
        }
        let ptr = mem.as_mut_ptr();
        self.push_plain(MemoryRegion {
            len: mem.len() as u64,
            ptr,
            writable: true,
            shared: false,
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
        self.push_plain(MemoryRegion {
            len: mem.len() as u64,
            ptr,
            writable: false,
            shared: false,
            kind,
        })
        .map(drop)
    }

    /// Adds the call-frame stack with frame 0 active (zeroed) and returns frame 0's frame
    /// pointer (the `r10` of the outermost function: one past its highest byte).
    #[inline]
    pub fn add_stack(&mut self, stack: &'a mut StackMemory) -> Result<u64, RegionError> {
        self.add_stack_from(stack, 0)
    }

    /// [`Regions::add_stack`] of a stack whose frame 0 [`StackMemory::zero_outermost`]
    /// zeroed: the frame is not zeroed again (code may have run on it since).
    ///
    /// # Safety
    /// `stack`'s frame 0 must have been zeroed by [`StackMemory::zero_outermost`] (its
    /// bytes are read as initialized).
    #[inline]
    pub unsafe fn add_zeroed_stack(
        &mut self,
        stack: &'a mut StackMemory,
    ) -> Result<u64, RegionError> {
        self.add_stack_from(stack, 1)
    }

    /// Adds the stack, frames `0..zeroed` already zeroed (an invariant the callers keep).
    #[inline(always)]
    fn add_stack_from(
        &mut self,
        stack: &'a mut StackMemory,
        zeroed: usize,
    ) -> Result<u64, RegionError> {
        if self.stack.is_some() {
            return Err(RegionError::StackAlreadyAdded);
        }
        let base = stack.bytes.as_mut_ptr().cast::<u8>();
        let index = self.push(MemoryRegion {
            len: 0,
            ptr: base,
            writable: true,
            shared: false,
            kind: RegionKind::Stack,
        })?;
        self.stack = Some(StackState {
            index,
            base,
            base_addr: base.addr() as u64,
            initialized: zeroed,
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

    /// A pointer to the `len` bytes at `addr` when they lie in stack frames zeroed so far
    /// (the frames of every depth the run has reached), `None` anywhere else: for an
    /// engine that placed a helper's argument in a frame (a map key) and reads it in
    /// place, without a region search. Which frames are reachable now is not checked.
    /// The bytes are initialized; only the run writes them, and a shared reference made
    /// from the pointer must end before the program runs on.
    #[inline]
    pub fn stack_ptr(&self, addr: u64, len: usize) -> Option<*const u8> {
        let stack = self.stack.as_ref()?;
        let floor = STACK_SIZE - stack.initialized * STACK_FRAME_SIZE;
        let start = usize::try_from(addr.checked_sub(stack.base_addr)?).ok()?;
        let end = start.checked_add(len)?;
        (start >= floor && end <= STACK_SIZE).then(|| stack.base.wrapping_add(start).cast_const())
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
            shared: false,
            kind: RegionKind::Stack,
        };
        let top = stack.base_addr + (STACK_SIZE - depth * STACK_FRAME_SIZE) as u64;
        if let Some(slot) = self.table.get_mut(stack.index) {
            slot.write(region);
        }
        if self.hot_plain.kind == RegionKind::Stack {
            self.hot_plain = region;
        }
        if self.hot.kind == RegionKind::Stack {
            self.hot = region;
        }
        top
    }

    /// The most recently hit region, which accesses check first (before the first hit,
    /// the first plain region set up, or empty; empty after the region it copied went
    /// away). When it is shared (a map value), a JIT may access it inline with atomic
    /// instructions.
    #[inline]
    pub fn hot(&self) -> MemoryRegion {
        self.hot
    }

    /// The most recently hit region that is not shared (before the first hit, the first
    /// plain region set up, or empty; empty after the region it copied changed): what a
    /// JIT's inline window may cover. Unlike the hot region, map values hit in between
    /// do not replace it; it is updated and invalidated as the hot region is when frames
    /// or the packet change.
    #[inline]
    pub fn hot_plain(&self) -> MemoryRegion {
        self.hot_plain
    }

    /// The regions, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.fixed().iter()
    }

    /// The fixed regions set so far.
    #[inline]
    fn fixed(&self) -> &[MemoryRegion] {
        let set = &self.table[..self.len.min(MAX_REGIONS)];
        // SAFETY: entries `0..len` have been written (`push` writes entry `len` before
        // counting it; the others rewrite set entries), and `MaybeUninit<T>` has `T`'s
        // layout.
        unsafe { &*(ptr::from_ref(set) as *const [MemoryRegion]) }
    }

    /// Proves `[addr, addr + size)` lies in one region (a writable one when `write`) and
    /// returns a pointer to its first byte, derived from that region's borrow, and whether
    /// the region is shared.
    #[inline(always)]
    fn translate(
        &mut self,
        addr: u64,
        size: u64,
        write: bool,
    ) -> Result<(*mut u8, bool), FaultKind> {
        let hot = &self.hot;
        let off = addr.wrapping_sub(hot.addr());
        if off < hot.len && hot.len - off >= size && (hot.writable || !write) {
            return Ok((hot.ptr.wrapping_add(off as usize), hot.shared));
        }
        self.translate_slow(addr, size, write)
    }

    #[cold]
    #[inline(never)]
    fn translate_slow(
        &mut self,
        addr: u64,
        size: u64,
        write: bool,
    ) -> Result<(*mut u8, bool), FaultKind> {
        // The last plain region hit, before the scan: a helper's pointer argument (a key
        // on the stack) after the program last touched a map value.
        let plain = self.hot_plain;
        let off = addr.wrapping_sub(plain.addr());
        if off < plain.len && plain.len - off >= size && (plain.writable || !write) {
            self.hot = plain;
            return Ok((plain.ptr.wrapping_add(off as usize), plain.shared));
        }
        // Fixed regions, then dynamic ones newest first.
        let (older, newer) = self
            .dynamic
            .split_at(self.next_dynamic.min(self.dynamic.len()));
        let found = self
            .fixed()
            .iter()
            .chain(older.iter().rev())
            .chain(newer.iter().rev())
            .find(|r| r.contains(addr, size) && (r.writable || !write))
            .copied();
        if let Some(region) = found {
            self.hot = region;
            if !region.shared {
                self.hot_plain = region;
            }
            return Ok((
                region
                    .ptr
                    .wrapping_add(addr.wrapping_sub(region.addr()) as usize),
                region.shared,
            ));
        }
        if let Some(ctx) = self.ctx {
            let off = addr.wrapping_sub(ctx.ptr.addr() as u64);
            if off < ctx.len {
                return Err(FaultKind::ContextAccess {
                    offset: off as u32,
                    size: size as usize,
                    write,
                });
            }
        }
        Err(FaultKind::OutOfBounds {
            addr,
            size: size as usize,
            write,
        })
    }

    /// The context field access at `addr`, if `addr` is inside the context: `Ok(Some(v))`
    /// for a load, the field checked against the layout.
    #[cold]
    #[inline(never)]
    fn context_load(&mut self, addr: u64, size: usize) -> Option<Result<u64, FaultKind>> {
        let ctx = self.ctx?;
        let off = addr.wrapping_sub(ctx.ptr.addr() as u64);
        if off >= ctx.len {
            return None;
        }
        let offset = off as u32;
        let bad = FaultKind::ContextAccess {
            offset,
            size,
            write: false,
        };
        let Some(field) = ctx.layout.check_access(offset, size as u32, false) else {
            return Some(Err(bad));
        };
        let packet = |at: fn(&PacketState) -> usize| {
            self.packet
                .map_or(0, |p| p.ptr.addr().wrapping_add(at(&p)) as u64)
        };
        Some(Ok(match field.rewrite {
            Rewrite::PacketStart => packet(|p| p.data),
            Rewrite::PacketEnd => packet(|p| p.end),
            Rewrite::PacketMeta => packet(|p| p.meta),
            Rewrite::None => {
                let mut bytes = [0u8; 8];
                // SAFETY: `off + size <= ctx.len` (check_access keeps the access inside a
                // field, and fields end inside the struct); the context is owned by the
                // table for 'a (module invariant); `bytes` is a distinct local.
                unsafe {
                    ptr::copy_nonoverlapping(ctx.ptr.add(off as usize), bytes.as_mut_ptr(), size)
                };
                match size {
                    1 => u64::from(bytes[0]),
                    2 => u64::from(u16::from_ne_bytes([bytes[0], bytes[1]])),
                    4 => u64::from(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
                    _ => u64::from_ne_bytes(bytes),
                }
            }
        }))
    }

    /// A store to the context, if `addr` is inside it: checked against the layout.
    #[cold]
    #[inline(never)]
    fn context_store(
        &mut self,
        addr: u64,
        size: usize,
        value: u64,
    ) -> Option<Result<(), FaultKind>> {
        let ctx = self.ctx?;
        let off = addr.wrapping_sub(ctx.ptr.addr() as u64);
        if off >= ctx.len {
            return None;
        }
        let offset = off as u32;
        let Some(field) = ctx.layout.check_access(offset, size as u32, true) else {
            return Some(Err(FaultKind::ContextAccess {
                offset,
                size,
                write: true,
            }));
        };
        debug_assert!(!field.rewrite.is_pointer());
        let bytes = value.to_ne_bytes();
        let src = if cfg!(target_endian = "big") {
            &bytes[8 - size..]
        } else {
            &bytes[..size]
        };
        // SAFETY: as in `context_load`: in bounds of the owned context, `src` is a local.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), ctx.ptr.add(off as usize), size) };
        Some(Ok(()))
    }

    /// Loads a `T` (native byte order, any alignment) from `addr`, zero-extended to 64
    /// bits. Loads of a context's packet-pointer fields give the packet's addresses.
    #[inline(always)]
    pub fn load_zx<T: Scalar>(&mut self, addr: u64) -> Result<u64, FaultKind> {
        match self.translate(addr, T::SIZE as u64, false) {
            Ok((p, false)) => {
                // SAFETY: `translate` proved the `T::SIZE` bytes at `p` lie inside one
                // owned region; by the module invariant they are initialized and valid to
                // read for 'a. Every bit pattern is a valid `T`; the read is unaligned.
                Ok(unsafe { p.cast::<T>().read_unaligned() }.to_u64())
            }
            // SAFETY: `p` lies in a shared region, accessed atomically (module invariant).
            Ok((p, true)) => Ok(unsafe { shared_load(p, T::SIZE) }),
            Err(e) => match self.context_load(addr, T::SIZE) {
                Some(r) => r,
                None => Err(e),
            },
        }
    }

    /// Loads a `T` (native byte order, any alignment) from `addr`.
    #[inline(always)]
    pub fn load<T: Scalar>(&mut self, addr: u64) -> Result<T, FaultKind> {
        self.load_zx::<T>(addr).map(T::from_u64)
    }

    /// Stores a `T` (native byte order, any alignment) at `addr`.
    #[inline(always)]
    pub fn store<T: Scalar>(&mut self, addr: u64, value: T) -> Result<(), FaultKind> {
        match self.translate(addr, T::SIZE as u64, true) {
            Ok((p, false)) => {
                // SAFETY: `translate` proved the `T::SIZE` bytes at `p` lie inside one
                // writable owned region, exclusively borrowed for 'a (module invariant);
                // the write is unaligned.
                unsafe { p.cast::<T>().write_unaligned(value) };
                Ok(())
            }
            Ok((p, true)) => {
                // SAFETY: `p` lies in a writable shared region, accessed atomically.
                unsafe { shared_store(p, T::SIZE, value.to_u64()) };
                Ok(())
            }
            Err(e) => match self.context_store(addr, T::SIZE, value.to_u64()) {
                Some(r) => r,
                None => Err(e),
            },
        }
    }

    /// Reads bytes from `addr` up to and including the first NUL, at most `max` bytes
    /// and never past the end of the region holding `addr`; returns them without the NUL,
    /// and whether a NUL was found. For string helpers (`%s`, `strncmp`).
    pub fn read_cstr(
        &mut self,
        addr: u64,
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool, FaultKind> {
        out.clear();
        let (p, shared) = self.translate(addr, 1, false)?;
        let region = self.hot;
        let avail = region.len - addr.wrapping_sub(region.addr());
        let n = max.min(usize::try_from(avail).unwrap_or(usize::MAX));
        for i in 0..n {
            let q = p.wrapping_add(i);
            let b = if shared {
                // SAFETY: `q` lies inside the shared region (`i < avail`), read atomically.
                unsafe { AtomicU8::from_ptr(q) }.load(Ordering::Relaxed)
            } else {
                // SAFETY: `q` lies inside the owned region (`i < avail`).
                unsafe { q.read() }
            };
            if b == 0 {
                return Ok(true);
            }
            out.push(b);
        }
        Ok(false)
    }

    /// Copies `out.len()` bytes starting at `addr` into `out` (for helpers).
    pub fn read_bytes(&mut self, addr: u64, out: &mut [u8]) -> Result<(), FaultKind> {
        if out.is_empty() {
            return Ok(());
        }
        let (p, shared) = self.translate(addr, out.len() as u64, false)?;
        if shared {
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: byte `i` lies in the shared region `translate` proved; atomic.
                *o = unsafe { AtomicU8::from_ptr(p.add(i)) }.load(Ordering::Relaxed);
            }
            return Ok(());
        }
        // SAFETY: `translate` proved the `out.len()` bytes at `p` lie in one owned region,
        // valid to read (module invariant); `out` is a distinct Rust allocation borrowed
        // mutably, so the ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `data` to `addr` (for helpers).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), FaultKind> {
        if data.is_empty() {
            return Ok(());
        }
        let (p, shared) = self.translate(addr, data.len() as u64, true)?;
        if shared {
            for (i, b) in data.iter().enumerate() {
                // SAFETY: byte `i` lies in the writable shared region; atomic store.
                unsafe { AtomicU8::from_ptr(p.add(i)) }.store(*b, Ordering::Relaxed);
            }
            return Ok(());
        }
        // SAFETY: `translate` proved the `data.len()` bytes at `p` lie in one writable,
        // exclusively borrowed region (module invariant). `data` cannot alias it: a Rust
        // reference into a region would contradict that exclusive borrow.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Checks that `[addr, addr + len)` may be read (or written) as a whole, for helpers
    /// that validate an argument before acting.
    pub fn check(&mut self, addr: u64, len: usize, write: bool) -> Result<(), FaultKind> {
        if len == 0 {
            return Ok(());
        }
        self.translate(addr, len as u64, write).map(drop)
    }

    /// Translates an atomic access: in bounds, writable when `write`, naturally aligned.
    #[inline(always)]
    fn translate_atomic(
        &mut self,
        addr: u64,
        size: u64,
        write: bool,
    ) -> Result<*mut u8, FaultKind> {
        let (p, _) = self.translate(addr, size, write)?;
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
        // SAFETY: `p` is 4-byte aligned and the 4 bytes lie in one writable region: owned
        // (nothing else accesses it during the run) or shared (everyone accesses it
        // atomically), by the module invariant.
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
        // for 'a, owned or accessed only atomically by others (module invariant).
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
        // region, owned or accessed only atomically by others (module invariant).
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

fn check_bounds(b: PacketBounds, len: usize) -> Result<(), RegionError> {
    if b.meta <= b.data && b.data <= b.end && b.end <= len && b.capacity == len {
        Ok(())
    } else {
        Err(RegionError::BadSetup(
            "packet bounds must satisfy meta <= data <= end <= capacity",
        ))
    }
}

/// A relaxed atomic load of `size` (1, 2, 4 or 8) bytes at `p`, zero-extended: one atomic
/// access when aligned, byte by byte otherwise.
///
/// # Safety
/// `p..p+size` lies in a shared region (valid for reads, accessed only atomically).
#[inline]
unsafe fn shared_load(p: *mut u8, size: usize) -> u64 {
    let r = Ordering::Relaxed;
    if p.addr().is_multiple_of(size) {
        // In each arm `p` is aligned to `size` and inside the region (the caller's promise).
        return match size {
            // SAFETY: see above.
            1 => u64::from(unsafe { AtomicU8::from_ptr(p) }.load(r)),
            // SAFETY: see above.
            2 => u64::from(unsafe { AtomicU16::from_ptr(p.cast()) }.load(r)),
            // SAFETY: see above.
            4 => u64::from(unsafe { AtomicU32::from_ptr(p.cast()) }.load(r)),
            // SAFETY: see above.
            _ => unsafe { AtomicU64::from_ptr(p.cast()) }.load(r),
        };
    }
    let mut bytes = [0u8; 8];
    let dst = if cfg!(target_endian = "big") {
        &mut bytes[8 - size..]
    } else {
        &mut bytes[..size]
    };
    for (i, b) in dst.iter_mut().enumerate() {
        // SAFETY: byte `i < size` of the range the caller vouches for.
        *b = unsafe { AtomicU8::from_ptr(p.add(i)) }.load(r);
    }
    u64::from_ne_bytes(bytes)
}

/// A relaxed atomic store of the low `size` (1, 2, 4 or 8) bytes of `value` at `p`.
///
/// # Safety
/// `p..p+size` lies in a writable shared region (accessed only atomically).
#[inline]
unsafe fn shared_store(p: *mut u8, size: usize, value: u64) {
    let r = Ordering::Relaxed;
    if p.addr().is_multiple_of(size) {
        // In each arm `p` is aligned to `size` and inside the region (the caller's promise).
        match size {
            // SAFETY: see above.
            1 => unsafe { AtomicU8::from_ptr(p) }.store(value as u8, r),
            // SAFETY: see above.
            2 => unsafe { AtomicU16::from_ptr(p.cast()) }.store(value as u16, r),
            // SAFETY: see above.
            4 => unsafe { AtomicU32::from_ptr(p.cast()) }.store(value as u32, r),
            // SAFETY: see above.
            _ => unsafe { AtomicU64::from_ptr(p.cast()) }.store(value, r),
        }
        return;
    }
    let bytes = value.to_ne_bytes();
    let src = if cfg!(target_endian = "big") {
        &bytes[8 - size..]
    } else {
        &bytes[..size]
    };
    for (i, b) in src.iter().enumerate() {
        // SAFETY: byte `i < size` of the range the caller vouches for.
        unsafe { AtomicU8::from_ptr(p.add(i)) }.store(*b, r);
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
    fn stack_ptr_covers_the_zeroed_frames_only() {
        let mut r = Regions::new();
        assert_eq!(r.stack_ptr(0x1000, 4), None, "no stack yet");
        let mut stack = StackMemory::new();
        let fp0 = r.add_stack(&mut stack).expect("stack");
        r.store::<u32>(fp0 - 4, 0xdead_beef).expect("in frame 0");
        let p = r.stack_ptr(fp0 - 4, 4).expect("frame 0");
        assert_eq!(p.addr() as u64, fp0 - 4);
        // SAFETY: `stack_ptr` vouched for 4 initialized bytes; nothing writes them here.
        let bytes = unsafe { std::slice::from_raw_parts(p, 4) };
        assert_eq!(bytes, 0xdead_beef_u32.to_ne_bytes());
        // The whole frame, and nothing past its ends.
        assert!(r.stack_ptr(fp0 - 512, 512).is_some());
        assert_eq!(r.stack_ptr(fp0 - 4, 5), None, "past the top of the stack");
        assert_eq!(r.stack_ptr(fp0 - 513, 4), None, "frame 1 not zeroed yet");
        assert_eq!(r.stack_ptr(fp0 - 8, usize::MAX), None, "length overflow");
        assert_eq!(r.stack_ptr(0, 4), None);
        // Frame 1 once a call reached it, and still after the call returned.
        let fp1 = r.set_stack_depth(1).expect("depth 1");
        assert!(r.stack_ptr(fp1 - 512, 1024).is_some());
        r.set_stack_depth(0).expect("depth 0");
        assert!(r.stack_ptr(fp1 - 4, 4).is_some());
        assert_eq!(r.stack_ptr(fp1 - 513, 4), None, "frame 2 not zeroed yet");
    }

    /// The ring of shared regions: the newest `MAX_DYNAMIC_REGIONS` stay, an older one
    /// is forgotten (the interpreter and the JIT fault on it alike), and adding the
    /// newest again adds nothing.
    #[test]
    fn shared_regions_keep_the_newest_256() {
        // One 8-byte word per region, atomics only (as the contract asks).
        let words: Vec<std::sync::atomic::AtomicU64> = (0..MAX_DYNAMIC_REGIONS as u64 + 2)
            .map(std::sync::atomic::AtomicU64::new)
            .collect();
        let addr = |i: usize| words[i].as_ptr().addr() as u64;
        let mut r = Regions::new();
        let add = |r: &mut Regions<'_>, i: usize| {
            // SAFETY: `words` outlives `r`, and is accessed only atomically meanwhile.
            unsafe { r.add_shared(RegionKind::MapValue, words[i].as_ptr().cast(), 8, false) }
        };
        for i in 0..=MAX_DYNAMIC_REGIONS {
            assert_eq!(add(&mut r, i), addr(i));
        }
        // 257 added: region 0 is gone, 1..=256 are readable, newest first or not.
        assert!(r.load::<u64>(addr(0)).is_err());
        for i in (1..=MAX_DYNAMIC_REGIONS).rev().step_by(51) {
            assert_eq!(r.load::<u64>(addr(i)), Ok(i as u64), "region {i}");
        }
        // The newest again: no slot taken, so region 1 survives; the next new one evicts
        // it.
        add(&mut r, MAX_DYNAMIC_REGIONS);
        assert_eq!(r.load::<u64>(addr(1)), Ok(1));
        add(&mut r, MAX_DYNAMIC_REGIONS + 1);
        assert!(r.load::<u64>(addr(1)).is_err());
        assert_eq!(r.load::<u64>(addr(2)), Ok(2));
        assert_eq!(r.hot().addr(), addr(2), "the last region hit");
    }

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

    /// A stack whose frame 0 was zeroed before any table took it (a JIT run that
    /// builds its regions late): what the code wrote there before is still there once a
    /// table takes the stack, and deeper frames are zeroed when first reached.
    #[test]
    fn a_zeroed_stack_keeps_what_was_written_before_the_table_took_it() {
        let mut stack = StackMemory::new();
        let fp = stack.zero_outermost();
        let frame0 = stack.bytes[STACK_SIZE - STACK_FRAME_SIZE..].as_mut_ptr();
        // What code running on the stack does: writes frame 0 through its address.
        // SAFETY: the 8 bytes below `fp` are inside frame 0, which `zero_outermost`
        // initialized; nothing else borrows the stack here.
        unsafe {
            frame0
                .cast::<u8>()
                .add(STACK_FRAME_SIZE - 8)
                .cast::<u64>()
                .write_unaligned(7)
        };
        let mut r = Regions::new();
        // SAFETY: frame 0 was zeroed by `zero_outermost` just above.
        let fp0 = unsafe { r.add_zeroed_stack(&mut stack) }.expect("must succeed");
        assert_eq!(fp0, fp);
        assert_eq!(r.load::<u64>(fp0 - 8), Ok(7));
        assert_eq!(r.load::<u64>(fp0 - 16), Ok(0));
        let fp1 = r.set_stack_depth(1).expect("must succeed");
        assert_eq!(r.load::<u64>(fp1 - 8), Ok(0));
        assert_eq!(r.load::<u64>(fp0 - 8), Ok(7));
    }

    #[test]
    fn the_first_plain_region_set_up_is_hot_before_any_access() {
        let (mut a, mut b) = ([0u8; 8], [0u8; 4]);
        let (a_addr, b_addr) = (a.as_ptr() as u64, b.as_ptr() as u64);
        let mut stack = StackMemory::new();
        let mut r = Regions::new();
        assert!(r.hot().is_empty() && r.hot_plain().is_empty());
        // The stack is not an input: nothing is hot yet.
        r.add_stack(&mut stack).expect("must succeed");
        assert!(r.hot().is_empty() && r.hot_plain().is_empty());
        r.add_mut(RegionKind::Memory, &mut a).expect("must succeed");
        r.add_mut(RegionKind::Host, &mut b).expect("must succeed");
        for hot in [r.hot(), r.hot_plain()] {
            assert_eq!(
                (hot.addr(), hot.len(), hot.kind()),
                (a_addr, 8, RegionKind::Memory)
            );
        }
        // The first access elsewhere takes over, as ever.
        assert_eq!(r.load::<u32>(b_addr), Ok(0));
        assert_eq!((r.hot().addr(), r.hot_plain().addr()), (b_addr, b_addr));
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
