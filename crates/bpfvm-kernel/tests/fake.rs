//! The kernel layer against a fake `bpf()`: what the layer sends, and how it turns the
//! kernel's answers into typed results. Runs without a kernel.
#![cfg(target_os = "linux")]

use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex};

use bpfvm_isa::RawInsn;
use bpfvm_kernel::{
    Attr, Bpf, Cmd, Errno, KernelError, LogOptions, LogPolicy, MapCreate, MapType, ProgLoad,
    ProgType, Syscall, Unavailable, probe_with,
};

/// Answers each call with the next scripted result; records (command, log level, log
/// size) of every call.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<Vec<Result<i32, (Errno, u32)>>>,
    calls: Mutex<Vec<(Cmd, u32, u32)>>,
}

impl Scripted {
    fn new(mut answers: Vec<Result<i32, (Errno, u32)>>) -> Arc<Scripted> {
        answers.reverse();
        Arc::new(Scripted {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(Cmd, u32, u32)> {
        self.calls.lock().expect("lock").clone()
    }
}

// SAFETY: every Ok answer for an fd-returning command is a freshly opened /dev/null.
unsafe impl Syscall for Scripted {
    fn bpf(&self, cmd: Cmd, attr: &mut Attr) -> Result<i32, Errno> {
        // BPF_PROG_LOAD's log_level and log_size are at offsets 24 and 28.
        self.calls
            .lock()
            .expect("lock")
            .push((cmd, attr.u32(24), attr.u32(28)));
        match self.answers.lock().expect("lock").pop() {
            Some(Ok(_)) if cmd.returns_fd() => Ok(std::fs::File::open("/dev/null")
                .expect("/dev/null")
                .into_raw_fd()),
            Some(Ok(v)) => Ok(v),
            Some(Err((errno, true_size))) => {
                attr.set_output_u32(140, true_size); // log_true_size
                Err(errno)
            }
            None => Err(Errno::ENOSYS),
        }
    }
}

const PROG: [RawInsn; 2] = [
    RawInsn::new(0xb7, 0, 0, 0, 0),
    RawInsn::new(0x95, 0, 0, 0, 0),
];

#[test]
fn a_failed_load_is_retried_once_with_a_log() {
    let fake = Scripted::new(vec![Err((Errno::EACCES, 0)), Err((Errno::EACCES, 0))]);
    let e = Bpf::with_syscall(fake.clone())
        .prog_load(&ProgLoad::new(ProgType::XDP, &PROG))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].1, calls[0].2),
        (0, 0),
        "first attempt without a log"
    );
    assert_eq!(
        (calls[1].1, calls[1].2),
        (1, 64 * 1024),
        "then level 1, 64 KiB"
    );
}

#[test]
fn enospc_grows_the_log_to_the_size_the_kernel_asks_for() {
    let fake = Scripted::new(vec![
        Err((Errno::ENOSPC, 100_000)),
        Err((Errno::ENOSPC, 0)),
        Ok(3),
    ]);
    let log = LogOptions {
        policy: LogPolicy::Always(1),
        initial_size: 1000,
        max_size: 1 << 20,
    };
    Bpf::with_syscall(fake.clone())
        .prog_load(&ProgLoad::new(ProgType::XDP, &PROG).with_log(log))
        .expect("third attempt loads");
    let sizes: Vec<u32> = fake.calls().iter().map(|c| c.2).collect();
    // The kernel's own figure first, then doubling when it gives none.
    assert_eq!(sizes, vec![1000, 100_000, 200_000]);
}

#[test]
fn the_log_stops_growing_at_the_cap() {
    let fake = Scripted::new(vec![Err((Errno::ENOSPC, 0)); 10]);
    let log = LogOptions {
        policy: LogPolicy::Always(1),
        initial_size: 1000,
        max_size: 3000,
    };
    let e = Bpf::with_syscall(fake.clone())
        .prog_load(&ProgLoad::new(ProgType::XDP, &PROG).with_log(log))
        .unwrap_err();
    let KernelError::Load(f) = e else {
        panic!("load failure")
    };
    assert!(f.log_truncated);
    let sizes: Vec<u32> = fake.calls().iter().map(|c| c.2).collect();
    assert_eq!(sizes, vec![1000, 2000, 3000]);
}

#[test]
fn syscall_errors_are_typed_with_command_and_errno() {
    let fake = Scripted::new(vec![Err((Errno::ENOMEM, 0))]);
    let e = Bpf::with_syscall(fake)
        .map_create(&MapCreate::new(MapType::HASH, 4, 4, 1))
        .unwrap_err();
    assert_eq!(
        e,
        KernelError::Syscall {
            cmd: Cmd::MAP_CREATE,
            errno: Errno::ENOMEM
        }
    );
    assert_eq!(
        e.to_string(),
        "BPF_MAP_CREATE failed: ENOMEM (Cannot allocate memory)"
    );
}

#[test]
fn the_probe_explains_why_bpf_is_unusable() {
    let eperm = probe_with(&Bpf::with_syscall(Scripted::new(vec![Err((
        Errno::EPERM,
        0,
    ))])));
    assert!(
        matches!(eperm, Err(Unavailable::NotPermitted { .. })),
        "{eperm:?}"
    );
    let enosys = probe_with(&Bpf::with_syscall(Scripted::new(vec![])));
    let Err(why) = enosys else {
        panic!("no syscall")
    };
    assert!(matches!(why, Unavailable::NoSyscall { .. }));
    assert!(why.to_string().contains("seccomp"), "{why}");
    // Map and program load fine, but the run fails.
    let no_run = probe_with(&Bpf::with_syscall(Scripted::new(vec![
        Ok(3),
        Ok(4),
        Err((Errno::EINVAL, 0)),
    ])));
    assert!(
        matches!(
            &no_run,
            Err(Unavailable::StepFailed {
                step: "BPF_PROG_TEST_RUN",
                ..
            })
        ),
        "{no_run:?}"
    );
}
