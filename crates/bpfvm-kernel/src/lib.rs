//! # bpfvm-kernel: the Linux kernel as bpfvm's oracle
//!
//! This crate owns everything that talks to the real kernel through `bpf(2)`:
//!
//! - a typed layer over the syscall ([`Bpf`]): maps ([`Bpf::map_create`], [`Map`] with
//!   element, freeze and batch operations), BTF ([`Bpf::btf_load`]), programs
//!   ([`Bpf::prog_load`] with everything libbpf passes, [`Prog::test_run`], [`Prog::info`]),
//!   with every object an [`std::os::fd::OwnedFd`];
//! - the capability [`probe`] and the rule kernel-backed tests follow
//!   ([`kernel_available_for_test`]);
//! - the kernel [`KernelEngine`], running programs with the test ABI behind a wrapper
//!   ([`wrap`]);
//! - the verifier's verdict as data ([`Bpf::verify`], [`Verdict`]);
//! - loading a whole ELF object as libbpf would ([`Bpf::load_object`]).
//!
//! It does not execute anything in user space.
//!
//! ## Invariants
//! - **Architecture Invariant:** every raw syscall goes through one function
//!   ([`Syscall::bpf`], reached only via `Bpf::call`), so tests can fake the kernel with
//!   [`Bpf::with_syscall`].
//! - Every pointer handed to the kernel points at a live buffer of exactly the size the
//!   kernel will use: sizes are checked against the map or request first, and a mismatch
//!   is a [`KernelError::Invalid`], never a stray access.
//! - Every failure is a typed [`KernelError`] carrying the errno, and for loads the
//!   kernel's log; nothing here panics on bad input.
//! - File descriptors are owned: dropping a [`Map`], [`Prog`] or [`Btf`] closes it.
//!
//! The crate is Linux-only: elsewhere it compiles to nothing, and the rest of the
//! workspace builds without it.
//!
//! ```no_run
//! use bpfvm_isa::RawInsn;
//! use bpfvm_kernel::{Bpf, ProgLoad, ProgType, TestRun};
//! let insns = [RawInsn::new(0xb7, 0, 0, 0, 2), RawInsn::new(0x95, 0, 0, 0, 0)];
//! let prog = Bpf::new().prog_load(&ProgLoad::new(ProgType::XDP, &insns))?;
//! let run = prog.test_run(&mut TestRun { data_in: &[0; 14], ..TestRun::default() })?;
//! assert_eq!(run.retval, 2);
//! # Ok::<(), bpfvm_kernel::KernelError>(())
//! ```
#![cfg(target_os = "linux")]
#![deny(missing_docs)]

mod btf;
mod engine;
mod error;
mod log;
mod map;
mod object;
mod probe;
mod prog;
mod shared_map;
mod sys;
mod verdict;

pub use btf::Btf;
pub use engine::{KernelEngine, MAX_PACKET_MEMORY, Placement, Wrapped, wrap};
pub use error::{KernelError, LoadFailure};
pub use log::{LOG_LEVEL1, LOG_LEVEL2, LOG_STATS, LogOptions, LogPolicy};
pub use map::{
    Batch, BatchToken, F_LOCK, F_MMAPABLE, F_NO_PREALLOC, F_NUMA_NODE, F_RDONLY_PROG, Map,
    MapCreate, MapInfo, MapType, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST, possible_cpus,
};
pub use object::{
    KernelLoadOptions, KernelObject, host_load_options, kallsyms, running_kernel_config,
    running_kernel_version, vmlinux_btf,
};
pub use probe::{REQUIRE_KERNEL_VAR, Unavailable, kernel_available_for_test, probe, probe_with};
pub use prog::{
    AttachType, BtfRecords, F_ANY_ALIGNMENT, F_SLEEPABLE, F_STRICT_ALIGNMENT, F_TEST_RND_HI32,
    F_XDP_HAS_FRAGS, Prog, ProgInfo, ProgLoad, ProgType, TestRun, TestRunResult,
};
pub use shared_map::KernelMap;
pub use sys::{ATTR_SIZE, Attr, Bpf, Cmd, Errno, Syscall};
pub use verdict::{Verdict, VerifierStats};
