//! [`KernelMap`]: a real kernel map behind `bpfvm-runtime`'s [`RtMap`] trait, so programs
//! run by bpfvm and programs run by the kernel share state.
//!
//! ## What goes where
//! - **Host API** (`lookup`, `update`, `delete`, `next_key`, `push`, `pop`, `peek`): the
//!   `bpf(2)` element commands, through the typed [`Map`] layer. Kernel errnos become the
//!   [`MapError`] variants the user-space maps use (`ENOENT` → `NotFound`, `EEXIST` →
//!   `Exists`, `E2BIG` → `TooBig`, `EINVAL` → `Invalid`, `ENOMEM` → `NoMemory`,
//!   `EPERM`/`EACCES` → `NotPermitted`, `ENOTSUPP`/`EOPNOTSUPP` → `NotSupported`, `EBUSY`
//!   → `Busy`; any other errno is `Invalid` with the errno in the message).
//! - **Program side, shared memory:** a `BPF_MAP_TYPE_ARRAY` created with `BPF_F_MMAPABLE`
//!   is `mmap()`ed (`MAP_SHARED`, read-write unless the map is frozen, read-only for
//!   user space or `BPF_F_RDONLY_PROG`) with the kernel's layout (`array_map_mmap`): element
//!   `i` at offset `i * round_up(value_size, 8)` from offset 0, the mapping
//!   `PAGE_ALIGN(max_entries * elem_size)` bytes long. [`RtMap::lookup_value`] returns a
//!   pointer into that mapping, so a bpfvm program's loads, stores and atomics hit the very
//!   memory kernel programs use, and [`RtMap::direct_value`] works for single-element
//!   arrays (global data).
//! - **Program side, copy semantics (every other kind):** [`RtMap::lookup_value`] copies
//!   the value out of the kernel (`BPF_MAP_LOOKUP_ELEM`) into a fresh 8-aligned buffer
//!   that stays valid while the run's [`RunGuard`] lives. **Writes a program makes to that
//!   copy are not propagated to the kernel**: programs must call `bpf_map_update_elem`.
//!   Each lookup allocates (nothing is charged to a memory accountant); the buffer is
//!   freed through the epoch collector once the run's guard is dropped.
//!   [`RtMap::prog_update`] / [`RtMap::prog_delete`] are the syscalls.
//! - **Per-CPU kinds:** the syscall value is one slot per *possible* CPU of the kernel
//!   (`round_up(value_size, 8)` each). A bpfvm run on slot `cpu` sees kernel CPU `cpu`'s
//!   slot: `lookup_value` copies slot `cpu` (`None` past the possible CPUs), and
//!   `prog_update` reads all slots, replaces slot `cpu` and writes them all back (not
//!   atomic against a concurrent kernel writer of other slots; a new element's other
//!   slots are zero).
//! - **Not here:** ring buffers (mapping the kernel's consumer/producer/data pages is not
//!   implemented: a `KernelMap` of a ring buffer answers the host element commands with
//!   the kernel's errors only), map-in-map `lookup_inner` and program arrays.
//!
//! ## Memory safety
//! - A pointer handed out by `lookup_value` is into either the mapping or a copy buffer.
//!   Neither is released directly: dropping the `KernelMap` hands the mapping to
//!   `crossbeam_epoch`'s `defer`, and every copy buffer is handed to `defer` right after
//!   it is filled. The run's [`RunGuard`] is a pinned epoch on the same thread, so neither
//!   is unmapped or freed before every run that could hold the pointer has ended.
//! - The mapping keeps the kernel map alive on its own (the VMA holds the map's file),
//!   so closing the descriptor on drop never pulls the pages out from under a run.
//! - The host side never touches the mapping directly: host reads and writes are
//!   syscalls, where the kernel copies as it does for its own programs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;

use bpfvm_runtime::maps::{Map as RtMap, MapError, MapSpec, MapType, RunGuard, ValueRef};

use crate::error::KernelError;
use crate::map::{F_MMAPABLE, F_RDONLY_PROG, Map, MapCreate, MapType as KMapType, possible_cpus};
use crate::sys::{Attr, Bpf, Cmd, Errno};

/// `BPF_F_RDONLY`: the map's descriptors are read-only for user space.
const F_RDONLY: u32 = 1 << 3;

/// A kernel map usable by bpfvm programs and the host through [`RtMap`]; see the module
/// documentation for which operations share memory and which copy.
#[derive(Debug)]
pub struct KernelMap {
    map: Map,
    spec: MapSpec,
    /// Possible CPUs, for per-CPU kinds (1 otherwise).
    cpus: usize,
    /// The shared mapping of an mmapable array.
    mapping: Option<Mapping>,
}

/// An `mmap()` of a kernel array's values; unmapped on drop (only ever through the epoch
/// collector, see [`KernelMap`]'s `Drop`).
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: the mapping is plain shared memory owned by this value; the only operation on it
// through `&Mapping` or by moving it is handing out the address and unmapping it once.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned and mapped, unmapped only
        // here, once; by the time this runs every run that could use it has ended.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A copy of a value handed to a program, freed through the epoch collector.
struct CopyBuf(NonNull<[u64]>);

// SAFETY: `CopyBuf` owns a boxed `[u64]` (which is `Send`); it is only moved into a
// deferred function that frees it.
unsafe impl Send for CopyBuf {}

impl Drop for CopyBuf {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::into_raw` and is reconstructed only here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The [`MapError`] for a kernel failure, by errno (the user-space maps' variants).
fn map_error(e: KernelError) -> MapError {
    let Some(errno) = e.errno() else {
        return MapError::Invalid(e.to_string());
    };
    match errno {
        Errno::ENOENT => MapError::NotFound,
        Errno::EEXIST => MapError::Exists,
        Errno::E2BIG => MapError::TooBig(e.to_string()),
        Errno::EINVAL => MapError::Invalid(e.to_string()),
        Errno::ENOMEM => MapError::NoMemory(e.to_string()),
        Errno::EPERM | Errno::EACCES => MapError::NotPermitted(e.to_string()),
        Errno::ENOTSUPP | Errno::EOPNOTSUPP => MapError::NotSupported(e.to_string()),
        Errno(16) => MapError::Busy,
        _ => MapError::Invalid(e.to_string()),
    }
}

fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096).max(1)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl KernelMap {
    /// Creates a kernel map from `spec` (`BPF_MAP_CREATE`; an inner-map template is
    /// created and closed again for map-in-map specs). An mmapable array is mapped.
    pub fn create(bpf: &Bpf, spec: &MapSpec) -> Result<KernelMap, MapError> {
        let inner = match &spec.inner {
            Some(inner) => Some(KernelMap::create(bpf, inner)?),
            None => None,
        };
        let mut create = MapCreate::new(
            KMapType(spec.map_type as u32),
            spec.key_size,
            spec.value_size,
            spec.max_entries,
        )
        .with_flags(spec.flags)
        .with_map_extra(spec.map_extra);
        if let Some(inner) = &inner {
            create = create.with_inner_map(inner.map.fd());
        }
        let map = bpf.map_create(&create).map_err(map_error)?;
        KernelMap::with_spec(map, spec.clone())
    }

    /// Adopts a map of the typed layer (its flags from `BPF_OBJ_GET_INFO_BY_FD`).
    pub fn from_map(map: Map) -> Result<KernelMap, MapError> {
        let info = map.info().map_err(map_error)?;
        let map_type = MapType::from_u32(info.map_type.0).ok_or_else(|| {
            MapError::NotSupported(format!("kernel map type {} is unknown", info.map_type.0))
        })?;
        let mut spec = MapSpec::new(map_type, info.key_size, info.value_size, info.max_entries);
        spec.flags = info.flags;
        KernelMap::with_spec(map, spec)
    }

    /// Adopts an open map file descriptor (a program loader's, another process's).
    pub fn from_fd(bpf: &Bpf, fd: OwnedFd) -> Result<KernelMap, MapError> {
        KernelMap::from_map(bpf.map_from_fd(fd).map_err(map_error)?)
    }

    /// Opens the map pinned at `path` in a BPF filesystem (`BPF_OBJ_GET`).
    pub fn from_pin(bpf: &Bpf, path: &Path) -> Result<KernelMap, MapError> {
        use std::os::unix::ffi::OsStrExt;
        let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            MapError::Invalid(format!("pin path {} contains a NUL byte", path.display()))
        })?;
        let mut a = Attr::new(16);
        a.set_ptr(0, cpath.as_bytes_with_nul());
        let fd = bpf.call_fd(Cmd::OBJ_GET, &mut a).map_err(|errno| {
            map_error(KernelError::Syscall {
                cmd: Cmd::OBJ_GET,
                errno,
            })
        })?;
        KernelMap::from_fd(bpf, fd)
    }

    fn with_spec(map: Map, spec: MapSpec) -> Result<KernelMap, MapError> {
        let cpus = if spec.map_type.is_per_cpu() {
            possible_cpus().map_err(map_error)?
        } else {
            1
        };
        let mapping = if spec.map_type == MapType::Array && spec.flags & F_MMAPABLE != 0 {
            Some(Self::mmap(&map, &spec)?)
        } else {
            None
        };
        Ok(KernelMap {
            map,
            spec,
            cpus,
            mapping,
        })
    }

    /// Maps an mmapable array's values: read-write when the kernel allows it (not frozen,
    /// not `BPF_F_RDONLY_PROG`, a writable descriptor), read-only otherwise.
    fn mmap(map: &Map, spec: &MapSpec) -> Result<Mapping, MapError> {
        let elem = (spec.value_size as usize).next_multiple_of(8);
        let len = (spec.max_entries as usize)
            .checked_mul(elem)
            .and_then(|n| n.checked_next_multiple_of(page_size()))
            .filter(|&n| n > 0)
            .ok_or_else(|| MapError::TooBig("the array's mapping size overflows".into()))?;
        let try_map = |prot: i32| {
            // SAFETY: a fresh shared mapping of the map's file at offset 0, of the length
            // the kernel's `array_map_mmap` accepts; it aliases no Rust object.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    map.fd().as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                Err(last_errno())
            } else {
                Ok(p.cast::<u8>())
            }
        };
        let want_write = spec.flags & (F_RDONLY_PROG | F_RDONLY) == 0;
        let rw = if want_write {
            try_map(libc::PROT_READ | libc::PROT_WRITE)
        } else {
            Err(libc::EACCES)
        };
        let (ptr, writable) = match rw {
            Ok(p) => (p, true),
            // Frozen (EPERM) or read-only: programs may still read through the mapping.
            Err(libc::EPERM | libc::EACCES) => {
                let p = try_map(libc::PROT_READ).map_err(|errno| mmap_error(errno, len))?;
                (p, false)
            }
            Err(errno) => return Err(mmap_error(errno, len)),
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| mmap_error(0, len))?;
        Ok(Mapping { ptr, len, writable })
    }

    /// The typed kernel map (its descriptor, for loading kernel programs that use it).
    pub fn kernel_map(&self) -> &Map {
        &self.map
    }

    /// Whether program lookups point into memory shared with the kernel (an mmapable
    /// array) rather than into copies.
    pub fn is_shared_memory(&self) -> bool {
        self.mapping.is_some()
    }

    /// The number of per-CPU slots (the kernel's possible CPUs), 1 for other kinds.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    fn slot_len(&self) -> usize {
        (self.spec.value_size as usize).next_multiple_of(8)
    }

    fn check_prog_write(&self) -> Result<(), MapError> {
        if self.spec.flags & F_RDONLY_PROG != 0 {
            return Err(MapError::NotPermitted(
                "the map is read-only for programs (BPF_F_RDONLY_PROG)".into(),
            ));
        }
        Ok(())
    }

    /// A copy of `bytes` in a fresh 8-aligned buffer freed through the epoch collector.
    fn copy_for_run<'a>(&'a self, bytes: &[u8], _guard: &'a RunGuard) -> Option<ValueRef<'a>> {
        let mut words = vec![0u64; bytes.len().div_ceil(8).max(1)].into_boxed_slice();
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        let raw = NonNull::from(Box::leak(words));
        let ptr = raw.cast::<u8>();
        // The run's guard is pinned on this thread, so the free waits for it to unpin.
        let owned = CopyBuf(raw);
        crossbeam_epoch::pin().defer(move || drop(owned));
        let writable = self.spec.flags & F_RDONLY_PROG == 0;
        // SAFETY: the buffer is `bytes.len()` (rounded up to 8) bytes, 8-aligned, owned by
        // the deferred `CopyBuf` alone, freed only once `_guard` (pinned before the
        // `defer`) has been dropped; nothing else accesses it.
        Some(unsafe { ValueRef::from_raw(ptr, bytes.len(), writable) })
    }
}

fn mmap_error(errno: i32, len: usize) -> MapError {
    let msg = format!(
        "mmap of {len} bytes of the array failed: {}",
        std::io::Error::from_raw_os_error(errno)
    );
    match errno {
        libc::ENOMEM => MapError::NoMemory(msg),
        libc::EPERM | libc::EACCES => MapError::NotPermitted(msg),
        _ => MapError::Invalid(msg),
    }
}

impl Drop for KernelMap {
    fn drop(&mut self) {
        if let Some(mapping) = self.mapping.take() {
            // Runs may still hold pointers into the mapping under their guards.
            crossbeam_epoch::pin().defer(move || drop(mapping));
        }
    }
}

impl RtMap for KernelMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn value_len(&self) -> usize {
        self.map.value_len()
    }

    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.map
            .lookup(key)
            .map_err(map_error)?
            .ok_or(MapError::NotFound)
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.map.update(key, value, flags).map_err(map_error)
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        match self.map.delete(key).map_err(map_error)? {
            true => Ok(()),
            false => Err(MapError::NotFound),
        }
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        self.map
            .next_key(key)
            .map_err(map_error)?
            .ok_or(MapError::NotFound)
    }

    fn lookup_value<'a>(
        &'a self,
        key: &[u8],
        cpu: usize,
        guard: &'a RunGuard,
    ) -> Option<ValueRef<'a>> {
        if let Some(m) = &self.mapping {
            let index = u32::from_ne_bytes(key.try_into().ok()?);
            if index >= self.spec.max_entries {
                return None;
            }
            let offset = index as usize * self.slot_len();
            // SAFETY: `offset + value_size <= max_entries * elem_size <= len`: inside the
            // mapping.
            let ptr = unsafe { m.ptr.add(offset) };
            // SAFETY: the mapping stays mapped until the guard is dropped (it is unmapped
            // only through the epoch collector); programs, here and in the kernel, access
            // it as BPF programs access array values.
            return Some(unsafe {
                ValueRef::from_raw(ptr, self.spec.value_size as usize, m.writable)
            });
        }
        let value = self.map.lookup(key).ok()??;
        if self.spec.map_type.is_per_cpu() {
            if cpu >= self.cpus {
                return None;
            }
            let start = cpu * self.slot_len();
            let slot = value.get(start..start + self.spec.value_size as usize)?;
            return self.copy_for_run(slot, guard);
        }
        self.copy_for_run(&value, guard)
    }

    fn prog_update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        self.check_prog_write()?;
        if !self.spec.map_type.is_per_cpu() {
            return self.map.update(key, value, flags).map_err(map_error);
        }
        if cpu >= self.cpus {
            return Err(MapError::Invalid(format!(
                "cpu {cpu} is not one of the kernel's {} possible CPUs",
                self.cpus
            )));
        }
        if value.len() != self.spec.value_size as usize {
            return Err(MapError::Invalid(format!(
                "value is {} bytes, the map's is {}",
                value.len(),
                self.spec.value_size
            )));
        }
        let mut all = match self.map.lookup(key).map_err(map_error)? {
            Some(v) => v,
            None => vec![0; self.map.value_len()],
        };
        let start = cpu * self.slot_len();
        all[start..start + value.len()].copy_from_slice(value);
        self.map.update(key, &all, flags).map_err(map_error)
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_prog_write()?;
        self.delete(key)
    }

    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.map.update(&[], value, flags).map_err(map_error)
    }

    fn pop(&self, out: &mut [u8]) -> Result<(), MapError> {
        let v = self
            .map
            .lookup_and_delete(&[], 0)
            .map_err(map_error)?
            .ok_or(MapError::NotFound)?;
        if v.len() != out.len() {
            return Err(MapError::Invalid(format!(
                "output is {} bytes, the map's values are {}",
                out.len(),
                v.len()
            )));
        }
        out.copy_from_slice(&v);
        Ok(())
    }

    fn peek(&self, value: &mut [u8]) -> Result<(), MapError> {
        // Queues and stacks write the next element into `value`; a bloom filter reads it.
        match self.map.lookup_into(&[], value, 0).map_err(map_error)? {
            true => Ok(()),
            false => Err(MapError::NotFound),
        }
    }

    fn direct_value(&self) -> Option<(NonNull<u8>, usize, bool)> {
        let m = self.mapping.as_ref()?;
        (self.spec.max_entries == 1).then_some((m.ptr, self.spec.value_size as usize, m.writable))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
