//! The kernel's side of `benches/maps.rs`: the same programs loaded with `BPF_PROG_LOAD`
//! (socket filters, map `i` of `map[idx:i]` passed in `fd_array`), kernel maps filled as
//! bpfvm's are, and a ring buffer consumer over the kernel's `mmap()`ed ring (what
//! libbpf's `ring_buffer__consume` does).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bpfvm_kernel::{Bpf, KernelError, Map, MapCreate, MapType, Prog, ProgLoad, ProgType};

use crate::maps::{HASH_ENTRIES, RING_SIZE, assemble_source, fill_value};

/// `BPF_RINGBUF_BUSY_BIT`.
const BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`.
const DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
const HDR_SZ: u64 = 8;

/// `source` loaded in the kernel as a socket filter with `maps` as its `fd_array`.
pub fn load(bpf: &Bpf, source: &str, maps: &[&Map]) -> Result<Prog, KernelError> {
    let slots = assemble_source(source)
        .map_err(|e| KernelError::Invalid(format!("assembling a benchmark program: {e}")))?;
    let fds: Vec<BorrowedFd<'_>> = maps.iter().map(|m| m.fd()).collect();
    bpf.prog_load(
        &ProgLoad::new(ProgType::SOCKET_FILTER, &slots)
            .with_license("GPL")
            .with_fd_array(&fds, false),
    )
}

/// A kernel hash map (`u32` → `u64`, [`HASH_ENTRIES`] entries) filled with
/// [`fill_value`].
pub fn filled_hash(bpf: &Bpf) -> Result<Map, KernelError> {
    let map = bpf.map_create(&MapCreate::new(MapType::HASH, 4, 8, HASH_ENTRIES))?;
    for k in 0..HASH_ENTRIES {
        map.update(&k.to_le_bytes(), &fill_value(k).to_le_bytes(), 0)?;
    }
    Ok(map)
}

/// A kernel ring buffer of [`RING_SIZE`] bytes, mapped for consuming.
#[derive(Debug)]
pub struct KernelRing {
    map: Map,
    /// The consumer page (read-write).
    cons: NonNull<u8>,
    /// The producer page, then the data pages mapped twice (read-only).
    prod: NonNull<u8>,
    page: usize,
}

impl KernelRing {
    /// Creates the ring and maps it as libbpf does: the consumer page read-write at
    /// offset 0; the producer page and twice the data read-only from offset one page.
    pub fn new(bpf: &Bpf) -> Result<KernelRing, KernelError> {
        let map = bpf.map_create(&MapCreate::new(MapType::RINGBUF, 0, 0, RING_SIZE))?;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| KernelError::Invalid("sysconf(_SC_PAGESIZE) failed".into()))?;
        let fd = map.fd().as_fd().as_raw_fd();
        let mmap = |len: usize, prot: i32, offset: usize| {
            // SAFETY: a fresh shared mapping of the ring's own file; the kernel checks
            // the length and protection against what the ring allows.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd,
                    offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                let e = std::io::Error::last_os_error();
                return Err(KernelError::Invalid(format!(
                    "mmap of {len} bytes of the kernel ring at offset {offset}: {e}"
                )));
            }
            NonNull::new(p.cast::<u8>())
                .ok_or_else(|| KernelError::Invalid("mmap returned null".into()))
        };
        let cons = mmap(page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let prod = match mmap(page + 2 * RING_SIZE as usize, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: `cons` is the mapping made just above, with its length.
                unsafe { libc::munmap(cons.as_ptr().cast(), page) };
                return Err(e);
            }
        };
        Ok(KernelRing {
            map,
            cons,
            prod,
            page,
        })
    }

    /// The map, for a program's `fd_array`.
    pub fn map(&self) -> &Map {
        &self.map
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer position is the first 8 bytes of the consumer page
        // (page-aligned, so 8-aligned), mapped read-write for as long as `self` lives;
        // the kernel reads it atomically.
        unsafe { AtomicU64::from_ptr(self.cons.as_ptr().cast()) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as `consumer_pos`, on the read-only producer page: only loaded.
        unsafe { AtomicU64::from_ptr(self.prod.as_ptr().cast()) }
    }

    /// Passes every committed record to `f` in order, skipping discarded ones, and
    /// advances the consumer position (libbpf's `ringbuf_process_ring`). Returns the
    /// records passed to `f`.
    pub fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let mask = u64::from(RING_SIZE) - 1;
        // SAFETY: the data starts one page into the producer mapping.
        let data = unsafe { self.prod.as_ptr().add(self.page) };
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let mut n = 0;
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons >= prod {
                return n;
            }
            while cons < prod {
                let off = (cons & mask) as usize;
                // SAFETY: `off < RING_SIZE`, 8-aligned (records are 8-aligned), inside
                // the data mapping; the kernel writes the header atomically.
                let hdr = unsafe { AtomicU32::from_ptr(data.add(off).cast()) };
                let len = hdr.load(Ordering::Acquire);
                if len & BUSY_BIT != 0 {
                    return n;
                }
                let size = u64::from(len & !DISCARD_BIT);
                let total = (size + HDR_SZ).next_multiple_of(8);
                if total > prod - cons || total > u64::from(RING_SIZE) {
                    return n;
                }
                if len & DISCARD_BIT == 0 {
                    // SAFETY: a committed record: `off < RING_SIZE` and
                    // `8 + size <= total <= prod - cons <= RING_SIZE`, so its bytes lie
                    // inside the data's double mapping (`2 * RING_SIZE` bytes), which
                    // makes a wrapping record contiguous.
                    let sample = unsafe {
                        std::slice::from_raw_parts(data.add(off + HDR_SZ as usize), size as usize)
                    };
                    f(sample);
                    n += 1;
                }
                cons += total;
                self.consumer_pos().store(cons, Ordering::Release);
            }
        }
    }
}

impl Drop for KernelRing {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in `new`, with their lengths; no reference into
        // them outlives `self` (`consume` hands out slices only for the callback).
        unsafe {
            libc::munmap(self.cons.as_ptr().cast(), self.page);
            libc::munmap(
                self.prod.as_ptr().cast(),
                self.page + 2 * RING_SIZE as usize,
            );
        }
    }
}

/// `source` loaded in the kernel as a `tc` classifier (`BPF_PROG_TYPE_SCHED_CLS`, which
/// may read the packet directly): the kernel side of `benches/engines.rs`.
pub fn load_tc(bpf: &Bpf, source: &str) -> Result<Prog, KernelError> {
    let slots = assemble_source(source)
        .map_err(|e| KernelError::Invalid(format!("assembling a benchmark program: {e}")))?;
    bpf.prog_load(&ProgLoad::new(ProgType::SCHED_CLS, &slots).with_license("GPL"))
}

/// The packet a kernel engine run gets for `input`: the input itself, or 64 zero bytes
/// when the program reads nothing (a test run needs at least an Ethernet header).
pub fn packet_for(input: &crate::engines::Input) -> Vec<u8> {
    match input {
        crate::engines::Input::None => vec![0; crate::maps::PACKET_LEN],
        crate::engines::Input::Packet(b) => b.clone(),
    }
}

/// Runs `prog` `iters` times on `packet` with `BPF_PROG_TEST_RUN` (`repeat` up to 2²⁰
/// per call) and returns the kernel's own time for them: its per-run average (whole ns)
/// × runs. This excludes the syscall and building the `sk_buff`.
pub fn in_kernel_time(
    prog: &Prog,
    packet: &[u8],
    iters: u64,
) -> Result<std::time::Duration, KernelError> {
    const MAX_REPEAT: u64 = 1 << 20;
    let mut total = std::time::Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(MAX_REPEAT);
        let r = prog.test_run(&mut bpfvm_kernel::TestRun {
            data_in: packet,
            repeat: n as u32,
            ..bpfvm_kernel::TestRun::default()
        })?;
        total += r.duration * n as u32;
        left -= n;
    }
    Ok(total)
}
