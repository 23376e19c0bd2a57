//! The `bpfvm` command as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn bpfvm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .expect("bpfvm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write temp file");
    p
}

#[test]
fn help_lists_every_subcommand_with_a_description() {
    let (code, out, _) = bpfvm(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["asm", "disasm", "run", "conformance", "plugin"] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(sub))
            .unwrap_or_else(|| panic!("{sub} in help"));
        assert!(
            line.trim().len() > sub.len() + 10,
            "{sub} has a description: {line}"
        );
        let (code, sub_help, _) = bpfvm(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub} --help");
        // Every option is documented: its description follows on the same
        // line or, when clap wraps, on the next one.
        let lines: Vec<&str> = sub_help.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            if !(t.starts_with("--")
                || t.starts_with("-h")
                || t.starts_with("-o")
                || t.starts_with("-v"))
            {
                continue;
            }
            let words_after_flag = t.split("  ").filter(|w| !w.trim().is_empty()).count();
            let next_is_text = lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
            assert!(
                words_after_flag >= 2 || next_is_text,
                "{sub}: undocumented option `{t}`"
            );
        }
    }
}

#[test]
fn asm_then_run_with_memory() {
    // r0 = memory length + first byte
    let src = tmp("len.s", "r0 = r2\nr3 = *(u8 *)(r1 + 0)\nr0 += r3\nexit\n");
    let (code, words, err) = bpfvm(&["asm", src.to_str().expect("utf8 path")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(words.lines().count(), 4);
    assert_eq!(words.lines().next(), Some("0x00000000000020bf"));
    let bin = src.with_extension("bin");
    let (code, _, err) = bpfvm(&[
        "asm",
        src.to_str().unwrap_or_default(),
        "--format",
        "bin",
        "-o",
        bin.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = bpfvm(&["run", bin.to_str().unwrap_or_default(), "--mem", "05 00 00"]);
    assert_eq!(
        (code, out.lines().next()),
        (0, Some("r0 = 0x8 (8)")),
        "{err}"
    );
}

#[test]
fn run_trace_shows_each_step_and_changed_registers() {
    let t = tmp(
        "t.data",
        "-- asm\nmov %r0, 1\nadd %r0, 2\nexit\n-- result\n0x3\n",
    );
    let (code, out, err) = bpfvm(&["run", t.to_str().unwrap_or_default(), "--trace"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("r0 = 0x1"), "{out}");
    assert!(out.contains("r0 += 0x2"), "{out}");
    assert!(out.contains("r0=0x3"), "{out}");
    assert!(out.contains("expected r0 = 0x3: as expected"), "{out}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let t = tmp("bad.bin", "123456789");
    let (code, _, err) = bpfvm(&["run", t.to_str().unwrap_or_default()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a multiple of 8"), "{err}");
    let ok = tmp("ok.data", "-- asm\nexit\n-- result\n0x0\n");
    let (code, _, err) = bpfvm(&["run", ok.to_str().unwrap_or_default(), "--mem", "zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("`zz` is not a hex byte"), "{err}");
    let s = tmp("bad.s", "r0 = 1\nr0 +== 2\n");
    let (code, _, err) = bpfvm(&["asm", s.to_str().unwrap_or_default()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn conformance_reports_failures_and_exits_nonzero() {
    let dir = std::env::temp_dir().join(format!("bpfvm-suite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("ok.data"),
        "-- asm\nmov %r0, 2\nexit\n-- result\n0x2\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("wrong.data"),
        "-- asm\nmov %r0, 2\nexit\n-- result\n0x3\n",
    )
    .expect("write");
    let (code, out, _) = bpfvm(&[
        "conformance",
        dir.to_str().unwrap_or_default(),
        "--no-progress",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL wrong.data [interp]: expected r0 = 0x3, got 0x2"),
        "{out}"
    );
    let total = out
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total row");
    assert_eq!(
        total.split_whitespace().collect::<Vec<_>>(),
        ["total", "1", "1", "0"]
    );
}

#[test]
fn unavailable_engines_say_so() {
    // The public runner reads the failure message from stdout, on one line.
    let (code, out, _) = bpfvm(&["plugin", "", "--engine jit"]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("engine `jit` is not available"), "{out}");
}
