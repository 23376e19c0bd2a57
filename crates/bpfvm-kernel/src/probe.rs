//! Can this process use `bpf()` for real? The capability probe, and the rule kernel-backed
//! tests follow.

use std::io::Write;
use std::sync::OnceLock;

use bpfvm_isa::RawInsn;

use crate::error::KernelError;
use crate::map::{MapCreate, MapType};
use crate::prog::{ProgLoad, ProgType, TestRun};
use crate::sys::{Bpf, Errno};

/// Why the kernel backend cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The process may not use `bpf()`.
    #[error(
        "bpf() is not permitted here, {errno}: run as root, or with CAP_BPF plus CAP_NET_ADMIN and CAP_PERFMON"
    )]
    NotPermitted {
        /// `EPERM` or `EACCES`.
        errno: Errno,
    },
    /// There is no `bpf()` here.
    #[error(
        "this kernel has no usable bpf() syscall, {errno}: built without CONFIG_BPF_SYSCALL, or blocked by a seccomp filter (as in many containers)"
    )]
    NoSyscall {
        /// `ENOSYS`.
        errno: Errno,
    },
    /// A step of the probe failed otherwise.
    #[error("bpf() is present but {step} failed: {error}")]
    StepFailed {
        /// What the probe was doing.
        step: &'static str,
        /// How it failed.
        error: KernelError,
    },
    /// The probe program ran but returned something else.
    #[error("BPF_PROG_TEST_RUN of the probe program returned {got}, not {want}")]
    WrongResult {
        /// What it returned.
        got: u32,
        /// What `r0 = 2; exit` returns.
        want: u32,
    },
}

fn classify(step: &'static str, error: KernelError) -> Unavailable {
    match error.errno() {
        Some(e @ (Errno::EPERM | Errno::EACCES)) => Unavailable::NotPermitted { errno: e },
        Some(e @ Errno::ENOSYS) => Unavailable::NoSyscall { errno: e },
        _ => Unavailable::StepFailed { step, error },
    }
}

/// Probes `bpf` by doing what the kernel backend does: create an array map, load an XDP
/// program (`r0 = 2; exit`) and run it once with `BPF_PROG_TEST_RUN`.
pub fn probe_with(bpf: &Bpf) -> Result<(), Unavailable> {
    bpf.map_create(&MapCreate::new(MapType::ARRAY, 4, 8, 1).with_name("bpfvm_probe"))
        .map_err(|e| classify("creating an array map", e))?;
    let insns = [
        RawInsn::new(0xb7, 0, 0, 0, 2), // r0 = 2 (XDP_PASS)
        RawInsn::new(0x95, 0, 0, 0, 0), // exit
    ];
    let prog = bpf
        .prog_load(&ProgLoad::new(ProgType::XDP, &insns).with_name("bpfvm_probe"))
        .map_err(|e| classify("loading an XDP program", e))?;
    let data = [0u8; 64];
    let result = prog
        .test_run(&mut TestRun {
            data_in: &data,
            repeat: 1,
            ..TestRun::default()
        })
        .map_err(|e| classify("BPF_PROG_TEST_RUN", e))?;
    if result.retval != 2 {
        return Err(Unavailable::WrongResult {
            got: result.retval,
            want: 2,
        });
    }
    Ok(())
}

/// [`probe_with`] on the real `bpf()`, done once per process.
pub fn probe() -> Result<(), Unavailable> {
    static PROBE: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    PROBE.get_or_init(|| probe_with(&Bpf::new())).clone()
}

/// The environment variable that makes a missing kernel a test failure (`.ci/run` sets it).
pub const REQUIRE_KERNEL_VAR: &str = "BPFVM_REQUIRE_KERNEL";

/// For kernel-backed tests: `true` when `bpf()` works here. Otherwise prints why and
/// returns `false` (the test should return early), or, when `BPFVM_REQUIRE_KERNEL=1`,
/// panics with the reason, so CI cannot skip silently.
pub fn kernel_available_for_test(test: &str) -> bool {
    match probe() {
        Ok(()) => true,
        Err(why) => {
            let required = std::env::var(REQUIRE_KERNEL_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{test}: {REQUIRE_KERNEL_VAR}=1 but the kernel backend is unavailable: {why}"
            );
            // Straight to the stream, not through `eprintln!`, which the test harness
            // captures and hides for passing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: the kernel backend is unavailable: {why}"
            );
            false
        }
    }
}
