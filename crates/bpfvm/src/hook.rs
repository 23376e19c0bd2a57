//! Hooks: named events a host defines, programs attach to, and the host fires.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bpfvm_runtime::{CancelToken, Context, Environment, RunOptions};

use crate::error::Error;
use crate::object::Program;

/// Where a fire stops early: an instruction budget, a deadline, a host cancellation.
#[derive(Debug, Clone, Default)]
pub struct FireOptions {
    /// The most instructions each program may execute.
    pub budget: Option<u64>,
    /// How long the whole fire may take; past it, the running program faults with
    /// `Cancelled`: on the interpreter at its next back-edge or call, on the JIT at the
    /// first back-edge or call after at most 65,536 more instructions.
    pub deadline: Option<Duration>,
    /// A token the host can cancel from another thread.
    pub cancel: Option<CancelToken>,
}

/// An attachment's handle: detach with [`Hook::detach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttachId(u64);

/// A named event of the host. Programs attach in order; [`Hook::fire`] runs every attached
/// program with the event's context, on the calling thread. A hook is `Sync`: fire it
/// from many threads at once — each thread gets its own per-CPU slot (0, 1, … in the
/// order threads first fire, modulo [`Hook::with_cpus`]).
///
/// ```
/// use bpfvm::Hook;
/// let hook = Hook::new("file_open");
/// assert_eq!(hook.name(), "file_open");
/// assert!(hook.programs().is_empty());
/// ```
#[derive(Debug)]
pub struct Hook {
    name: String,
    programs: RwLock<Vec<(AttachId, Program)>>,
    next_id: AtomicU64,
    cpus: usize,
    env: Option<Arc<dyn Environment>>,
}

thread_local! {
    /// This thread's worker index, assigned on its first fire.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_WORKER: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's worker index.
fn worker() -> usize {
    WORKER.with(|w| match w.get() {
        Some(i) => i,
        None => {
            let i = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
            w.set(Some(i));
            i
        }
    })
}

impl Hook {
    /// A hook with no programs, `available_parallelism` per-CPU slots and the system
    /// environment.
    pub fn new(name: &str) -> Hook {
        Hook {
            name: name.to_string(),
            programs: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(0),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            env: None,
        }
    }

    /// Uses `cpus` per-CPU slots (match the objects' `MapConfig::cpus`).
    pub fn with_cpus(mut self, cpus: usize) -> Hook {
        self.cpus = cpus.max(1);
        self
    }

    /// Gives programs this environment (clock, random numbers, task, trace sink) instead
    /// of the system's: tests and replays become reproducible.
    pub fn with_env(mut self, env: Arc<dyn Environment>) -> Hook {
        self.env = Some(env);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Attaches `program` after the ones attached before.
    pub fn attach(&self, program: &Program) -> AttachId {
        let id = AttachId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.programs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, program.clone()));
        id
    }

    /// Detaches a program; whether it was attached.
    pub fn detach(&self, id: AttachId) -> bool {
        let mut programs = self.programs.write().unwrap_or_else(|e| e.into_inner());
        let before = programs.len();
        programs.retain(|(i, _)| *i != id);
        programs.len() != before
    }

    /// The attached programs, in order.
    pub fn programs(&self) -> Vec<Program> {
        self.programs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Runs every attached program with `ctx`, in order; the return values. Stops at the
    /// first program that faults.
    pub fn fire(&self, ctx: &mut Context<'_>) -> Result<Vec<u64>, Error> {
        self.fire_with(ctx, &FireOptions::default())
    }

    /// [`Hook::fire`] with a budget, a deadline or a cancellation token.
    pub fn fire_with(
        &self,
        ctx: &mut Context<'_>,
        options: &FireOptions,
    ) -> Result<Vec<u64>, Error> {
        let programs = self.programs();
        let mut opts = RunOptions::new().with_cpu(worker() % self.cpus);
        opts.budget = options.budget;
        opts.env = self.env.clone();
        let cancel = match (&options.cancel, options.deadline) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => Some(CancelToken::new()),
            (None, None) => None,
        };
        opts.cancel = cancel.clone();
        let _watch = match (options.deadline, &cancel) {
            (Some(d), Some(c)) => Some(watchdog().watch(Instant::now() + d, c.clone())),
            _ => None,
        };
        let mut out = Vec::with_capacity(programs.len());
        for p in &programs {
            out.push(p.run(ctx, &opts)?);
        }
        Ok(out)
    }
}

/// One process-wide thread that cancels tokens whose deadline has passed.
struct Watchdog {
    state: Mutex<WatchState>,
    wake: Condvar,
}

#[derive(Default)]
struct WatchState {
    /// (deadline, id) of pending watches.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    tokens: std::collections::HashMap<u64, CancelToken>,
    next: u64,
}

/// Stops watching when dropped (the fire finished in time).
struct Watch {
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut s = watchdog().state.lock().unwrap_or_else(|e| e.into_inner());
        s.tokens.remove(&self.id);
    }
}

impl Watchdog {
    fn watch(&'static self, at: Instant, token: CancelToken) -> Watch {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let id = s.next;
        s.next += 1;
        s.heap.push(Reverse((at, id)));
        s.tokens.insert(id, token);
        self.wake.notify_one();
        Watch { id }
    }

    fn run(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, id))) = s.heap.peek().copied() {
                if at > now {
                    break;
                }
                s.heap.pop();
                if let Some(t) = s.tokens.remove(&id) {
                    t.cancel();
                }
            }
            s = match s.heap.peek() {
                Some(Reverse((at, _))) => {
                    let wait = at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(s, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

fn watchdog() -> &'static Watchdog {
    static W: OnceLock<&'static Watchdog> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            state: Mutex::new(WatchState::default()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("bpfvm-watchdog".into())
            .spawn(move || w.run())
            .map(drop)
            .unwrap_or_else(|e| eprintln!("bpfvm: no watchdog thread, deadlines off: {e}"));
        w
    })
}
