//! # bpfvm: eBPF as an application feature
//!
//! The embedding API: an application loads an ELF object, sets its configuration
//! globals, picks programs, attaches them to hooks it defines, fires the hooks with event
//! contexts, and reads what the programs left in maps — the same objects, built by clang,
//! and the same semantics as in the kernel.
//!
//! ```no_run
//! use bpfvm::{Array, Hook, OpenObject};
//! use bpfvm_runtime::Context;
//!
//! let mut open = OpenObject::open_file("latency.o")?;
//! open.set_global_value("min_us", &10u64)?; // .rodata config, before load
//! let object = open.load()?;
//! let start = Hook::new("op_start");
//! start.attach(&object.program("op_start")?);
//! let mut event = 42u64.to_ne_bytes();
//! start.fire(&mut Context::Struct { bytes: &mut event, writable: false })?;
//! let hist: Array<u64> = Array::new(object.map("hist")?)?;
//! println!("{:?}", hist.values()?);
//! # Ok::<(), bpfvm::Error>(())
//! ```
//!
//! - [`OpenObject`] / [`Object`]: libbpf's open/load split; [`Program`]: a program on an
//!   engine: the interpreter by default, the Cranelift JIT with [`Program::with_jit`];
//!   both in checked mode until the static verifier lands.
//! - [`Hook`]: a named event; `fire` runs every attached program in order, on the calling
//!   thread, with a per-thread CPU slot; budgets, deadlines and cancellation through
//!   [`FireOptions`].
//! - Typed map handles: [`HashMap`], [`Array`], [`PerCpuArray`], [`PerCpuHashMap`],
//!   [`LpmTrie`] (with [`lpm_trie::Key`]), [`Queue`], [`Stack`], [`BloomFilter`],
//!   [`ProgArray`]; host consumers of programs' output: [`RingBuf`], [`PerfBuffer`].
//! - [`hist`]: bcc's log2 and linear histogram printers.
//!
//! ## Invariants
//! - Every failure is an [`Error`] naming the object part (program, map, global, kfunc)
//!   and the cause; nothing a program or an object does panics the host.
//! - Host-side printers are pure functions of the map contents: no I/O, no clock.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod hist;
mod hook;
mod object;
mod typed;
mod typed_more;

/// LPM trie keys, as aya's `maps::lpm_trie`.
pub mod lpm_trie {
    pub use crate::typed_more::Key;
}

pub use error::Error;
pub use hook::{AttachId, FireOptions, Hook};
pub use object::{Kfunc, KfuncType, MapRef, Object, OpenObject, Program};
pub use typed::{Array, HashMap, PerCpuArray, PerCpuHashMap};
pub use typed_more::{BloomFilter, LpmTrie, PerfBuffer, ProgArray, Queue, RingBuf, Stack};
