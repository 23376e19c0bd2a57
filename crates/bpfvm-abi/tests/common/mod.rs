//! What the bpfvm-abi kernel tests share: the running kernel's BTF through bpftool, and the
//! rule for when it is missing.

use std::io::Write;
use std::process::Command;

/// Prints a SKIP line past the harness's capture, or fails under `BPFVM_REQUIRE_KERNEL=1`
/// (CI installs bpftool and must not skip).
pub fn skip_or_fail(why: &str) {
    if std::env::var("BPFVM_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!("BPFVM_REQUIRE_KERNEL=1 but {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP live kernel BTF comparison: {why}");
}

/// `bpftool btf dump file /sys/kernel/btf/vmlinux format <format>`, or None after
/// [`skip_or_fail`].
pub fn bpftool_btf(format: &str) -> Option<String> {
    let out = Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            format,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => {
            skip_or_fail(&format!(
                "bpftool failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
            None
        }
        Err(e) => {
            skip_or_fail(&format!("bpftool not runnable: {e}"));
            None
        }
    }
}
