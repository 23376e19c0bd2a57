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

#[expect(
    clippy::suspicious_command_arg_space,
    reason = "the public runner passes all plugin options as one argument"
)]
fn drive(mut cmd: Command, mem: &[u8], program: &[u8]) -> (bool, String) {
    // The public runner always passes the memory and the options arguments, empty or not.
    let mut child = cmd
        .arg(hex(mem))
        .arg("--engine interp")
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

#[test]
fn both_plugin_commands_pass_our_suite() {
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
        let mut via_sub = Command::new(env!("CARGO_BIN_EXE_bpfvm"));
        via_sub.arg("plugin");
        for (which, cmd) in [
            ("bpfvm plugin", via_sub),
            (
                "bpfvm-plugin",
                Command::new(env!("CARGO_BIN_EXE_bpfvm-plugin")),
            ),
        ] {
            let (ok, out) = drive(cmd, &case.mem, &program);
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
