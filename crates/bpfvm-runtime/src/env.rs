//! The sources of nondeterminism a run sees — clocks, random numbers, the current task —
//! and where `bpf_trace_printk` output goes, behind one trait the host can replace.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The task a program runs "in": what `bpf_get_current_pid_tgid`, `_uid_gid` and `_comm`
/// report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// Thread id (the kernel's `pid`).
    pub pid: u32,
    /// Process id (the kernel's `tgid`).
    pub tgid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Command name, NUL-padded (the kernel's `TASK_COMM_LEN` of 16).
    pub comm: [u8; 16],
}

impl Task {
    /// A task with this command name (truncated to 15 bytes and NUL-terminated).
    pub fn with_comm(pid: u32, tgid: u32, uid: u32, gid: u32, comm: &str) -> Task {
        let mut c = [0u8; 16];
        for (d, s) in c.iter_mut().zip(comm.bytes().take(15)) {
            *d = s;
        }
        Task {
            pid,
            tgid,
            uid,
            gid,
            comm: c,
        }
    }
}

/// Everything outside the program and its maps that a helper may observe. Replace it to
/// make runs reproducible ([`FixedEnvironment`]) or to feed a simulation's own clock.
pub trait Environment: Send + Sync + fmt::Debug {
    /// `CLOCK_MONOTONIC` in nanoseconds (`bpf_ktime_get_ns`).
    fn ktime_ns(&self) -> u64;
    /// `CLOCK_BOOTTIME` in nanoseconds (`bpf_ktime_get_boot_ns`).
    fn boot_ns(&self) -> u64;
    /// A pseudo-random number (`bpf_get_prandom_u32`).
    fn random_u32(&self) -> u32;
    /// The current task.
    fn task(&self) -> Task;
    /// One line of `bpf_trace_printk` output, formatted, without the trailing newline.
    fn trace(&self, line: &str);
}

/// The host as it is: real clocks, a xorshift generator seeded from the clock, the calling
/// thread's ids, and trace output on standard error (as lines of `trace_pipe` would be).
#[derive(Debug)]
pub struct SystemEnvironment {
    rng: AtomicU64,
}

impl Default for SystemEnvironment {
    fn default() -> Self {
        let seed = clock_ns(Clock::Monotonic) | 1;
        SystemEnvironment {
            rng: AtomicU64::new(seed),
        }
    }
}

impl Environment for SystemEnvironment {
    fn ktime_ns(&self) -> u64 {
        clock_ns(Clock::Monotonic)
    }

    fn boot_ns(&self) -> u64 {
        clock_ns(Clock::Boottime)
    }

    fn random_u32(&self) -> u32 {
        next_random(&self.rng)
    }

    fn task(&self) -> Task {
        current_task()
    }

    fn trace(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// A reproducible environment: clocks that advance by a fixed step per reading, a seeded
/// generator, a fixed task, and trace lines collected in memory.
#[derive(Debug)]
pub struct FixedEnvironment {
    clock: AtomicU64,
    step: u64,
    rng: AtomicU64,
    task: Task,
    lines: Mutex<Vec<String>>,
}

impl FixedEnvironment {
    /// Clocks starting at `start_ns` and advancing `step_ns` at each reading, random
    /// numbers from `seed`, and `task` as the current task.
    pub fn new(start_ns: u64, step_ns: u64, seed: u64, task: Task) -> FixedEnvironment {
        FixedEnvironment {
            clock: AtomicU64::new(start_ns),
            step: step_ns,
            rng: AtomicU64::new(seed | 1),
            task,
            lines: Mutex::new(Vec::new()),
        }
    }

    /// Sets the clock (both clocks read the same value).
    pub fn set_time(&self, ns: u64) {
        self.clock.store(ns, Ordering::SeqCst);
    }

    /// The trace lines so far, taken out.
    pub fn take_trace(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Environment for FixedEnvironment {
    fn ktime_ns(&self) -> u64 {
        self.clock.fetch_add(self.step, Ordering::SeqCst)
    }

    fn boot_ns(&self) -> u64 {
        self.ktime_ns()
    }

    fn random_u32(&self) -> u32 {
        next_random(&self.rng)
    }

    fn task(&self) -> Task {
        self.task
    }

    fn trace(&self, line: &str) {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    }
}

/// xorshift64* over a shared state.
fn next_random(state: &AtomicU64) -> u32 {
    let mut old = state.load(Ordering::Relaxed);
    loop {
        let mut x = old;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        match state.compare_exchange_weak(old, x, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32,
            Err(cur) => old = cur,
        }
    }
}

#[derive(Clone, Copy)]
enum Clock {
    Monotonic,
    Boottime,
}

#[cfg(target_os = "linux")]
fn clock_ns(clock: Clock) -> u64 {
    let id = match clock {
        Clock::Monotonic => libc::CLOCK_MONOTONIC,
        Clock::Boottime => libc::CLOCK_BOOTTIME,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn clock_ns(_clock: Clock) -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(target_os = "linux")]
fn current_task() -> Task {
    // SAFETY: these calls take no arguments and cannot fail.
    let (pid, tgid, uid, gid) = unsafe {
        (
            libc::gettid() as u32,
            libc::getpid() as u32,
            libc::getuid(),
            libc::getgid(),
        )
    };
    let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
    Task::with_comm(pid, tgid, uid, gid, comm.trim_end())
}

#[cfg(not(target_os = "linux"))]
fn current_task() -> Task {
    Task::with_comm(std::process::id(), std::process::id(), 0, 0, "bpfvm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_environment_is_reproducible() {
        let task = Task::with_comm(7, 5, 1000, 100, "a-very-long-command-name");
        assert_eq!(&task.comm, b"a-very-long-com\0");
        let a = FixedEnvironment::new(100, 10, 42, task);
        let b = FixedEnvironment::new(100, 10, 42, task);
        assert_eq!((a.ktime_ns(), a.ktime_ns(), a.boot_ns()), (100, 110, 120));
        let ra: Vec<u32> = (0..4).map(|_| a.random_u32()).collect();
        let rb: Vec<u32> = (0..4).map(|_| b.random_u32()).collect();
        assert_eq!(ra, rb);
        assert_ne!(ra[0], ra[1]);
        a.trace("hello");
        assert_eq!(a.take_trace(), vec!["hello".to_string()]);
        assert!(a.take_trace().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn system_clocks_advance_and_task_is_this_thread() {
        let env = SystemEnvironment::default();
        let t0 = env.ktime_ns();
        let t1 = env.ktime_ns();
        assert!(t0 > 0 && t1 >= t0);
        assert!(env.boot_ns() >= t0);
        let task = env.task();
        assert_eq!(task.tgid, std::process::id());
    }
}
