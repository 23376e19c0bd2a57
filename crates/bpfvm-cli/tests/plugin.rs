//! The plugin protocol end to end: both `bpfvm plugin` and `bpfvm-plugin`
//! are spawned on every test of our suite, exactly as the public
//! bpf_conformance runner drives a plugin (memory as the first argument, an
//! options argument, the program as hex on stdin, r0 in hex on stdout).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bpfvm_conformance::data::Expectation;
use bpfvm_conformance::suite::load_suite;
use bpfvm_isa::slots_to_bytes;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}  ")).collect()
}

fn drive(mut cmd: Command, engine: &str, mem: &[u8], program: &[u8]) -> (bool, String) {
    // The public runner always passes the memory and the options arguments, empty or not,
    // and all options as one argument.
    let mut child = cmd
        .arg(hex(mem))
        .arg(format!("--engine {engine}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("plugin starts");
    {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        writeln!(stdin, "{}", hex(program)).expect("program written");
    }
    let out = child.wait_with_output().expect("plugin finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Both plugin commands, in the order the public runner can name them.
fn plugins() -> [(&'static str, Command); 2] {
    let mut via_sub = Command::new(env!("CARGO_BIN_EXE_bpfvm"));
    via_sub.arg("plugin");
    [
        ("bpfvm plugin", via_sub),
        (
            "bpfvm-plugin",
            Command::new(env!("CARGO_BIN_EXE_bpfvm-plugin")),
        ),
    ]
}

#[test]
fn both_plugin_commands_pass_our_suite_on_the_interpreter_and_the_jit() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests");
    let tests = load_suite(&dir).expect("suite readable");
    assert!(tests.len() >= 300);
    let mut failures = Vec::new();
    for t in &tests {
        let (Ok(case), Ok(slots)) = (&t.case, &t.slots) else {
            failures.push(format!("{}: does not build", t.name));
            continue;
        };
        let program = slots_to_bytes(slots);
        for ((which, cmd), engine) in plugins().into_iter().zip(["interp", "jit"]) {
            // `bpfvm plugin` on the interpreter, `bpfvm-plugin` on the JIT.
            let which = format!("{which} --engine {engine}");
            let (ok, out) = drive(cmd, engine, &case.mem, &program);
            let good = match &case.expect {
                Expectation::Result(want) => {
                    ok && u64::from_str_radix(&out, 16).ok() == Some(*want)
                }
                Expectation::Error(want) => {
                    !ok && out.contains(want.as_str()) && !out.contains('\n')
                }
            };
            if !good {
                failures.push(format!(
                    "{} via {which}: exit ok={ok}, output `{out}`, expected {:?}",
                    t.name, case.expect
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same suite through the plugin protocol on the kernel engine: every test passes or
/// is explained by a listed divergence. Skips, saying why, without `bpf()`; fails under
/// `BPFVM_REQUIRE_KERNEL=1`.
#[cfg(target_os = "linux")]
#[test]
fn both_plugin_commands_drive_the_kernel() {
    use bpfvm_conformance::divergence::explain;
    use bpfvm_conformance::run::{Observed, Outcome, RunFailure, judge};

    if !bpfvm_kernel::kernel_available_for_test("both_plugin_commands_drive_the_kernel") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests");
    let tests = load_suite(&dir).expect("suite readable");
    let mut failures = Vec::new();
    let mut passes = 0;
    for t in &tests {
        let (Ok(case), Ok(slots)) = (&t.case, &t.slots) else {
            failures.push(format!("{}: does not build", t.name));
            continue;
        };
        let program = slots_to_bytes(slots);
        for (which, cmd) in plugins() {
            let (ok, out) = drive(cmd, "kernel", &case.mem, &program);
            let result = if ok {
                u64::from_str_radix(&out, 16).map_err(|_| RunFailure {
                    text: format!("not hex: {out}"),
                    refused_by_engine: false,
                })
            } else {
                Err(RunFailure {
                    refused_by_engine: out.contains("kernel refused the program"),
                    text: out.clone(),
                })
            };
            let observed = Observed {
                result,
                mem: case.mem.clone(),
            };
            match judge(&case.expect, &observed.result) {
                Outcome::Pass => passes += 1,
                outcome => {
                    if explain("kernel", slots, &observed).is_none() {
                        failures.push(format!("{} via {which}: {outcome:?}", t.name));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passes >= tests.len() * 2 * 9 / 10, "only {passes} passes");
}
