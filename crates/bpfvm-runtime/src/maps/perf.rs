//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: an array of perf events, indexed like the kernel's by
//! CPU. An entry is either a per-CPU output buffer (the kernel's `PERF_COUNT_SW_BPF_OUTPUT`
//! event that bcc's `BPF_PERF_OUTPUT` and libbpf's `perf_buffer` open on every CPU) or a
//! counter the host opened with `perf_event_open` ([`PerfCounter`]).
//!
//! ## Kernel rules kept (`kernel/trace/bpf_trace.c`, `__bpf_perf_event_output`)
//! - The index is `flags & BPF_F_INDEX_MASK`, `BPF_F_CURRENT_CPU` meaning the run's CPU;
//!   an index `>= max_entries` is `-E2BIG`, an empty entry `-ENOENT`, a counter where an
//!   output buffer is expected `-EINVAL`, and a buffer of another CPU `-EOPNOTSUPP` (a
//!   perf event is bound to its CPU). Other flag bits are `-EINVAL`.
//! - A sample takes the kernel's `PERF_SAMPLE_RAW` record size in the buffer:
//!   `round_up(8 + 4 + size, 8)` (header, raw size, data); when it does not fit, the
//!   sample is lost, counted, and the helper returns `-ENOSPC`. Lost counts are delivered
//!   in stream order, like `PERF_RECORD_LOST`.
//! - `bpf_perf_event_read{,_value}`: the same index rules; a counter is read with
//!   `PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING`; an output buffer
//!   of the run's CPU reads as 0, of another CPU `-EINVAL` (`perf_event_read_local`).
//!   (The kernel also refuses a task counter read from another task; here any thread
//!   may read the host's counter.)
//! - `bpf(2)`: lookup is `ENOTSUPP`, delete empties an entry (`E2BIG` past the end,
//!   `ENOENT` when empty), keys iterate like an array's. Entries are set with
//!   [`PerfEventArrayMap::set_counter`] and [`PerfEventArrayMap::set_output`] rather than
//!   by file descriptor, so `update` is `ENOTSUPP`.
//!
//! At creation, entry `i` is CPU `i`'s output buffer for every `i` below both
//! `max_entries` and the config's CPU slots (what bcc and libbpf set up).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bpfvm_abi::{F_NUMA_NODE, F_RDONLY, F_WRONLY, MapError, MapSpec};

use super::{Map, MapConfig, MemoryAccountant, check_len, not_supported};

/// `BPF_F_INDEX_MASK`.
pub const F_INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CURRENT_CPU`: the index of the running CPU.
pub const F_CURRENT_CPU: u64 = F_INDEX_MASK;
/// `BPF_F_CTXLEN_MASK`: for packet programs, bytes of the packet appended to a sample.
pub const F_CTXLEN_MASK: u64 = 0xfffff << 32;
/// Default bytes of one CPU's output buffer: 8 pages, bcc's and libbpf's usual `page_cnt`.
pub const DEFAULT_PERF_BUFFER_BYTES: usize = 8 * 4096;

/// `struct bpf_perf_event_value`: what `bpf_perf_event_read_value` fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerfValue {
    /// The count.
    pub counter: u64,
    /// Time enabled, in ns.
    pub enabled: u64,
    /// Time running, in ns.
    pub running: u64,
}

impl PerfValue {
    /// The struct's 24 bytes in native order.
    pub fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.counter.to_ne_bytes());
        b[8..16].copy_from_slice(&self.enabled.to_ne_bytes());
        b[16..].copy_from_slice(&self.running.to_ne_bytes());
        b
    }
}

/// Why a perf operation failed; [`PerfError::errno`] is what a helper returns negated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerfError {
    /// Perf counters need Linux's `perf_event_open`.
    #[error("perf counters are not supported on this system")]
    Unsupported,
    /// A system call failed.
    #[error("{op} failed: errno {errno}")]
    Os {
        /// The call.
        op: &'static str,
        /// Its errno.
        errno: i32,
    },
    /// Index past `max_entries` (`E2BIG`).
    #[error("index {0} is past the array (E2BIG)")]
    TooBig(u64),
    /// Empty entry (`ENOENT`).
    #[error("no perf event at index {0} (ENOENT)")]
    NotFound(u64),
    /// Bad flags, or the wrong kind of event for the operation (`EINVAL`).
    #[error("{0} (EINVAL)")]
    Invalid(&'static str),
    /// The output buffer belongs to another CPU (`EOPNOTSUPP`).
    #[error("the event at index {0} is bound to another CPU (EOPNOTSUPP)")]
    OtherCpu(u64),
    /// The sample did not fit: it was counted as lost (`ENOSPC`).
    #[error("no room in the perf buffer; the sample is lost (ENOSPC)")]
    NoSpace,
}

impl PerfError {
    /// The errno.
    pub fn errno(&self) -> i32 {
        match self {
            PerfError::Unsupported => 95,
            PerfError::Os { errno, .. } => *errno,
            PerfError::TooBig(_) => 7,
            PerfError::NotFound(_) => 2,
            PerfError::Invalid(_) => 22,
            PerfError::OtherCpu(_) => 95,
            PerfError::NoSpace => 28,
        }
    }

    /// What a helper returns: the negative errno as a 64-bit register.
    pub fn helper_return(&self) -> u64 {
        (-i64::from(self.errno())) as u64
    }
}

/// A perf counter the host opened for the calling thread (`perf_event_open(pid 0, cpu
/// -1)`), read with `PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING`.
#[derive(Debug)]
pub struct PerfCounter {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    _none: (),
}

/// `PERF_TYPE_SOFTWARE`.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_COUNT_SW_CPU_CLOCK`.
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `PERF_COUNT_SW_TASK_CLOCK`.
pub const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;

impl PerfCounter {
    /// Opens an enabled counter of `type_`/`config` for the calling thread on any CPU.
    #[cfg(target_os = "linux")]
    pub fn open(type_: u32, config: u64) -> Result<PerfCounter, PerfError> {
        use std::os::fd::FromRawFd;
        /// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER0` (64 bytes).
        #[repr(C)]
        struct Attr {
            type_: u32,
            size: u32,
            config: u64,
            sample_period: u64,
            sample_type: u64,
            read_format: u64,
            flags: u64,
            wakeup_events: u32,
            bp_type: u32,
            config1: u64,
        }
        const READ_FORMAT: u64 = 1 | 2; // TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING
        const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
        let attr = Attr {
            type_,
            size: std::mem::size_of::<Attr>() as u32,
            config,
            sample_period: 0,
            sample_type: 0,
            read_format: READ_FORMAT,
            flags: 0,
            wakeup_events: 0,
            bp_type: 0,
            config1: 0,
        };
        // SAFETY: `attr` is a live, initialized `perf_event_attr` of the size it declares;
        // the other arguments are plain integers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const Attr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(PerfError::Os {
                op: "perf_event_open",
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        // SAFETY: the kernel returned a new file descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) };
        Ok(PerfCounter { fd })
    }

    /// Perf counters need Linux: always `Unsupported` here.
    #[cfg(not(target_os = "linux"))]
    pub fn open(type_: u32, config: u64) -> Result<PerfCounter, PerfError> {
        let _ = (type_, config);
        Err(PerfError::Unsupported)
    }

    /// A `PERF_COUNT_SW_TASK_CLOCK` counter (ns of CPU time of the calling thread).
    pub fn task_clock() -> Result<PerfCounter, PerfError> {
        PerfCounter::open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK)
    }

    /// Reads count, time enabled and time running.
    #[cfg(target_os = "linux")]
    pub fn read(&self) -> Result<PerfValue, PerfError> {
        use std::os::fd::AsRawFd;
        let mut words = [0u64; 3];
        // SAFETY: `words` is 24 writable bytes, the length passed; the fd is open.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                words.as_mut_ptr().cast::<libc::c_void>(),
                std::mem::size_of_val(&words),
            )
        };
        if n != 24 {
            return Err(PerfError::Os {
                op: "read",
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(5),
            });
        }
        Ok(PerfValue {
            counter: words[0],
            enabled: words[1],
            running: words[2],
        })
    }

    /// Perf counters need Linux: always `Unsupported` here.
    #[cfg(not(target_os = "linux"))]
    pub fn read(&self) -> Result<PerfValue, PerfError> {
        Err(PerfError::Unsupported)
    }
}

#[derive(Debug, Clone)]
enum Entry {
    /// The output buffer of this CPU.
    Output(usize),
    Counter(Arc<PerfCounter>),
}

#[derive(Debug)]
enum Item {
    Sample(Vec<u8>),
    Lost(u64),
}

#[derive(Debug, Default)]
struct CpuBuffer {
    items: VecDeque<Item>,
    /// Bytes in use, in the kernel's record sizes.
    used: usize,
}

/// What the host polls: every CPU's output buffer and the wakeup.
#[derive(Debug)]
struct Shared {
    cpus: Vec<Mutex<CpuBuffer>>,
    capacity: usize,
    wake_gen: Mutex<u64>,
    wake_cv: Condvar,
    charged: u64,
    memory: Arc<MemoryAccountant>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.memory.uncharge(self.charged);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kernel's record size of a raw sample of `size` bytes.
pub fn perf_sample_record_len(size: usize) -> usize {
    (8 + 4 + size).next_multiple_of(8)
}

/// A `BPF_MAP_TYPE_PERF_EVENT_ARRAY` map.
#[derive(Debug)]
pub struct PerfEventArrayMap {
    spec: MapSpec,
    entries: RwLock<Vec<Option<Entry>>>,
    shared: Arc<Shared>,
}

impl PerfEventArrayMap {
    /// Creates the array with [`DEFAULT_PERF_BUFFER_BYTES`] per CPU buffer.
    pub fn new(spec: &MapSpec, config: &MapConfig) -> Result<PerfEventArrayMap, MapError> {
        PerfEventArrayMap::with_buffer_size(spec, config, DEFAULT_PERF_BUFFER_BYTES)
    }

    /// Creates the array with `buffer_bytes` per CPU output buffer (charged to `config`'s
    /// accountant for every CPU slot). The kernel accepts `BPF_F_NUMA_NODE`,
    /// `BPF_F_RDONLY` and `BPF_F_WRONLY` here.
    pub fn with_buffer_size(
        spec: &MapSpec,
        config: &MapConfig,
        buffer_bytes: usize,
    ) -> Result<PerfEventArrayMap, MapError> {
        let allowed = F_NUMA_NODE | F_RDONLY | F_WRONLY;
        if spec.flags & !allowed != 0 {
            return Err(MapError::Invalid(format!(
                "perf_event_array map: unsupported flags {:#x}",
                spec.flags & !allowed
            )));
        }
        let cpus = config.cpus.max(1);
        let entries_n = spec.max_entries as usize;
        let charged = (buffer_bytes as u64)
            .checked_mul(cpus as u64)
            .and_then(|n| n.checked_add(entries_n as u64 * 16))
            .ok_or_else(|| MapError::TooBig("perf buffers overflow".into()))?;
        config.memory.charge(charged)?;
        let shared = Shared {
            cpus: (0..cpus)
                .map(|_| Mutex::new(CpuBuffer::default()))
                .collect(),
            capacity: buffer_bytes,
            wake_gen: Mutex::new(0),
            wake_cv: Condvar::new(),
            charged,
            memory: Arc::clone(&config.memory),
        };
        let mut entries = Vec::new();
        entries
            .try_reserve_exact(entries_n)
            .map_err(|_| MapError::NoMemory(format!("{entries_n} perf_event_array entries")))?;
        entries.extend((0..entries_n).map(|i| (i < cpus).then_some(Entry::Output(i))));
        Ok(PerfEventArrayMap {
            spec: spec.clone(),
            entries: RwLock::new(entries),
            shared: Arc::new(shared),
        })
    }

    fn entry(&self, index: u64) -> Result<Entry, PerfError> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let e = entries
            .get(index as usize)
            .ok_or(PerfError::TooBig(index))?;
        e.clone().ok_or(PerfError::NotFound(index))
    }

    fn set(&self, index: u32, entry: Option<Entry>) -> Result<(), MapError> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let slot = entries
            .get_mut(index as usize)
            .ok_or_else(|| MapError::TooBig(format!("index {index} is past the array")))?;
        *slot = entry;
        Ok(())
    }

    /// Stores a counter at `index` (the kernel: an update with a perf event fd).
    pub fn set_counter(&self, index: u32, counter: Arc<PerfCounter>) -> Result<(), MapError> {
        self.set(index, Some(Entry::Counter(counter)))
    }

    /// Stores CPU `index`'s output buffer at `index` (`Invalid` when there is no such
    /// CPU slot).
    pub fn set_output(&self, index: u32) -> Result<(), MapError> {
        if index as usize >= self.shared.cpus.len() {
            return Err(MapError::Invalid(format!("no CPU slot {index}")));
        }
        self.set(index, Some(Entry::Output(index as usize)))
    }

    /// `bpf_perf_event_output` from a run on `cpu`: appends `data` to the buffer at the
    /// index `flags` names.
    pub fn output(&self, cpu: usize, flags: u64, data: &[&[u8]]) -> Result<(), PerfError> {
        if flags & !F_INDEX_MASK != 0 {
            return Err(PerfError::Invalid("flags outside BPF_F_INDEX_MASK"));
        }
        let index = match flags & F_INDEX_MASK {
            F_CURRENT_CPU => cpu as u64,
            i => i,
        };
        let target = match self.entry(index)? {
            Entry::Output(c) => c,
            Entry::Counter(_) => return Err(PerfError::Invalid("not a BPF output event")),
        };
        if target != cpu {
            return Err(PerfError::OtherCpu(index));
        }
        let buf = self
            .shared
            .cpus
            .get(target)
            .ok_or(PerfError::OtherCpu(index))?;
        let size: usize = data.iter().map(|d| d.len()).sum();
        let rec = perf_sample_record_len(size);
        let mut b = lock(buf);
        let fits =
            size <= u16::MAX as usize - 16 && rec <= self.shared.capacity.saturating_sub(b.used);
        let mut sample = Vec::new();
        if !fits || sample.try_reserve_exact(size).is_err() {
            match b.items.back_mut() {
                Some(Item::Lost(n)) => *n += 1,
                _ => b.items.push_back(Item::Lost(1)),
            }
            drop(b);
            self.wake();
            return Err(PerfError::NoSpace);
        }
        for d in data {
            sample.extend_from_slice(d);
        }
        b.items.push_back(Item::Sample(sample));
        b.used += rec;
        drop(b);
        self.wake();
        Ok(())
    }

    /// `bpf_perf_event_read_value` from a run on `cpu`.
    pub fn read_value(&self, cpu: usize, flags: u64) -> Result<PerfValue, PerfError> {
        if flags & !F_INDEX_MASK != 0 {
            return Err(PerfError::Invalid("flags outside BPF_F_INDEX_MASK"));
        }
        let index = match flags & F_INDEX_MASK {
            F_CURRENT_CPU => cpu as u64,
            i => i,
        };
        match self.entry(index)? {
            Entry::Output(c) if c == cpu => Ok(PerfValue::default()),
            Entry::Output(_) => Err(PerfError::Invalid("the event is on another CPU")),
            Entry::Counter(counter) => counter.read(),
        }
    }

    fn wake(&self) {
        *lock(&self.shared.wake_gen) += 1;
        self.shared.wake_cv.notify_all();
    }

    /// The host's reader of every CPU's buffer (libbpf's `perf_buffer`).
    pub fn perf_buffer(&self) -> PerfBuffer {
        PerfBuffer {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The host's reader of a perf event array's output buffers; keeps them alive.
#[derive(Debug, Clone)]
pub struct PerfBuffer {
    shared: Arc<Shared>,
}

impl PerfBuffer {
    /// Drains every CPU's buffer in CPU order: `on_sample(cpu, bytes)` per sample and
    /// `on_lost(cpu, count)` where samples were lost. Returns the samples delivered.
    pub fn consume(
        &self,
        mut on_sample: impl FnMut(usize, &[u8]),
        mut on_lost: impl FnMut(usize, u64),
    ) -> usize {
        let mut n = 0;
        for (cpu, buf) in self.shared.cpus.iter().enumerate() {
            let items = {
                let mut b = lock(buf);
                b.used = 0;
                std::mem::take(&mut b.items)
            };
            for item in items {
                match item {
                    Item::Sample(s) => {
                        on_sample(cpu, &s);
                        n += 1;
                    }
                    Item::Lost(k) => on_lost(cpu, k),
                }
            }
        }
        n
    }

    /// Consumes what is there; if nothing was, waits up to `timeout` for an output and
    /// consumes again (libbpf's `perf_buffer__poll`). Returns the samples delivered.
    pub fn poll(
        &self,
        timeout: Duration,
        mut on_sample: impl FnMut(usize, &[u8]),
        mut on_lost: impl FnMut(usize, u64),
    ) -> usize {
        let generation = *lock(&self.shared.wake_gen);
        let n = self.consume(&mut on_sample, &mut on_lost);
        if n > 0 {
            return n;
        }
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.shared.wake_gen);
        while *g == generation {
            let now = Instant::now();
            if now >= deadline {
                return 0;
            }
            g = self
                .shared
                .wake_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(g);
        self.consume(on_sample, on_lost)
    }
}

impl Map for PerfEventArrayMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn value_len(&self) -> usize {
        4
    }

    fn lookup(&self, _key: &[u8]) -> Result<Vec<u8>, MapError> {
        Err(not_supported(&self.spec, "lookup"))
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(MapError::NotSupported(
            "perf_event_array entries are set with set_counter/set_output".into(),
        ))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        check_len("key", key.len(), 4)?;
        let i = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let slot = entries
            .get_mut(i as usize)
            .ok_or_else(|| MapError::TooBig(format!("index {i} is past the array")))?;
        slot.take().map(drop).ok_or(MapError::NotFound)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let n = self.spec.max_entries;
        let next = match key {
            None => 0,
            Some(k) => {
                check_len("key", k.len(), 4)?;
                let i = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
                if i >= n {
                    0
                } else if i + 1 == n {
                    return Err(MapError::NotFound);
                } else {
                    i + 1
                }
            }
        };
        Ok(next.to_ne_bytes().to_vec())
    }
}
