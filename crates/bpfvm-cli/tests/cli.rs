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
    for sub in [
        "asm",
        "disasm",
        "run",
        "conformance",
        "kernel-verify",
        "plugin",
        "map",
    ] {
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
        "--engine",
        "interp",
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
        ["total", "1", "1", "0", "0"]
    );
}

#[test]
fn unknown_engines_say_so() {
    // The public runner reads the failure message from stdout, on one line.
    let (code, out, _) = bpfvm(&["plugin", "", "--engine warp"]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("unknown engine `warp`"), "{out}");
}

#[test]
fn jit_runs_bytecode_and_objects_and_dumps_its_code() {
    // Sum of 100 reads of mem[0] = 5: 500, with the loop's back-edge polling.
    let src = tmp(
        "jit_sum.s",
        "r0 = 0\nr2 = 100\nloop:\nr3 = *(u8 *)(r1 + 0)\nr0 += r3\nr2 += -1\nif r2 != 0 goto loop\nexit\n",
    );
    let src = src.to_str().expect("utf-8");
    let (code, out, err) = bpfvm(&["run", src, "--mem", "05", "--engine", "jit"]);
    assert_eq!((code, out.as_str()), (0, "r0 = 0x1f4 (500)\n"), "{err}");
    let (code, out, err) = bpfvm(&["run", src, "--mem", "05", "--engine", "jit", "--dump-ir"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("; Cranelift IR of the BPF function at pc 0\nfunction "),
        "{out}"
    );
    // The byte load has its inline window check, and the runtime call behind it goes
    // through a register-preserving trampoline.
    assert!(
        out.contains("uload8.i64") && out.contains("preserve_all"),
        "{out}"
    );
    let (code, out, err) = bpfvm(&["run", src, "--mem", "05", "--dump-asm"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("; machine code ("), "{out}");
    assert!(out.ends_with("r0 = 0x1f4 (500)\n"), "{out}");

    // An object on the JIT: the interpreter's (and the kernel's) result, same maps.
    let obj = fixture("runnable.o");
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--section",
        "xdp",
        "--engine",
        "jit",
        "--data",
        &packet_hex("tcp_syn"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 2, duration: "), "{out}");
    assert!(out.contains("proto_count (hash): 1 added, 0 changed, 0 removed\n+ key: 06 00 00 00  value: 01 00 00 00 00 00 00 00  28 00 00 00 00 00 00 00"), "{out}");
    let (code, _, err) = bpfvm(&["run", &obj, "--section", "xdp", "--engine", "kernel"]);
    assert_eq!(code, 2);
    assert!(err.contains("objects run on `interp` or `jit`"), "{err}");
}

/// Kernel-backed: skips, saying why, without `bpf()`; fails under `BPFVM_REQUIRE_KERNEL=1`.
#[cfg(target_os = "linux")]
fn kernel() -> bool {
    bpfvm_kernel::kernel_available_for_test("bpfvm-cli kernel test")
}

#[cfg(target_os = "linux")]
#[test]
fn run_on_the_kernel_and_hear_its_verdict() {
    if !kernel() {
        return;
    }
    let ok = tmp(
        "kernel-ok.data",
        "-- asm\nldxh %r0, [%r1+1]\nadd %r0, %r2\nexit\n-- mem\n00 34 12\n-- result\n0x1237\n",
    );
    let (code, out, err) = bpfvm(&["run", ok.to_str().expect("utf-8"), "--engine", "kernel"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("r0 = 0x1237") && out.contains("as expected"),
        "{out}"
    );

    // Out of bounds: the verifier refuses, naming why; bpfvm's interpreter would fault.
    let oob = tmp(
        "kernel-oob.data",
        "-- asm\nldxw %r0, [%r1+4]\nexit\n-- mem\n00 00\n-- result\n0x0\n",
    );
    let (code, _, err) = bpfvm(&["run", oob.to_str().expect("utf-8"), "--engine", "kernel"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("kernel refused the program") && err.contains("outside of the packet"),
        "{err}"
    );

    let (code, out, _) = bpfvm(&["kernel-verify", ok.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict:      accepted"), "{out}");
    // The verifier's count, as the log states it and as the program's info reports it.
    let processed = out
        .lines()
        .find_map(|l| l.strip_prefix("processed:    "))
        .and_then(|l| l.split_whitespace().next())
        .expect("processed line");
    assert!(
        out.contains(&format!("verified_insns {processed},")),
        "{out}"
    );
    let (code, out, _) = bpfvm(&["kernel-verify", oob.to_str().expect("utf-8"), "--log"]);
    assert_eq!(code, 1);
    assert!(out.contains("verdict:      rejected, EACCES"), "{out}");
    assert!(out.contains("--- verifier log ---"), "{out}");

    let asm = tmp("kernel-socket.s", "r0 = 1\nexit\n");
    let (code, out, _) = bpfvm(&[
        "kernel-verify",
        asm.to_str().expect("utf-8"),
        "--prog-type",
        "socket",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("as a socket program") && out.contains("processed:    2 instructions"),
        "{out}"
    );
    let (code, _, err) = bpfvm(&[
        "kernel-verify",
        asm.to_str().expect("utf-8"),
        "--prog-type",
        "nope",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a program type"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn conformance_shows_both_engines_and_the_known_divergences() {
    if !kernel() {
        return;
    }
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/base64");
    let (code, out, err) = bpfvm(&["conformance", dir.to_str().expect("utf-8"), "--no-progress"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("interp") && out.contains("kernel"), "{out}");
    assert!(
        out.contains("unexplained") && out.contains(", 0 unexplained."),
        "{out}"
    );
    assert!(
        out.contains("kernel-shift-imm-width [kernel], 3 tests"),
        "{out}"
    );
}

fn fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance-tests/elf")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn inspect_shows_programs_maps_and_relocations() {
    let (code, out, err) = bpfvm(&["inspect", &fixture("runnable.o")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("license \"GPL\""), "{out}");
    assert!(
        out.contains("xdp_filter") && out.contains("type sched_cls"),
        "{out}"
    );
    assert!(
        out.contains("hash proto_count key 4 value 16 max_entries 256"),
        "{out}"
    );
    assert!(
        out.contains("runnable.rodata") && out.contains("frozen"),
        "{out}"
    );
    assert!(
        out.contains("R_BPF_64_64") && out.contains("proto_count"),
        "{out}"
    );
    let (code, out, _) = bpfvm(&["inspect", &fixture("runnable.o"), "--btf"]);
    assert_eq!(code, 0);
    assert!(out.contains("struct proto_stats"), "{out}");
    let (code, _, err) = bpfvm(&["inspect", &fixture("broken/wrong_machine.o")]);
    assert_eq!(code, 1);
    assert!(err.contains("not a BPF object: e_machine is 62"), "{err}");
}

#[test]
fn disasm_of_an_object_interleaves_source_lines() {
    let (code, out, err) = bpfvm(&[
        "disasm",
        &fixture("subprogs_v3.o"),
        "--section",
        "socket",
        "--source",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("sock_calls (section socket, socket_filter program):"),
        "{out}"
    );
    assert!(!out.contains("xdp_calls"), "{out}");
    // Functions of .text appended after the program, each labelled.
    assert!(out.contains("<chain>:") && out.contains("<leaf>:"), "{out}");
    // Source lines precede the instructions they produced.
    let source_lines = out.lines().filter(|l| l.starts_with("; ")).count();
    assert!(source_lines >= 10, "{out}");
    let (code, _, err) = bpfvm(&["disasm", &fixture("subprogs_v3.o"), "--section", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no program in section `nope`"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn kernel_notation_matches_the_verifier_log() {
    if !kernel() {
        return;
    }
    // Every line `bpfvm disasm --syntax kernel` prints appears in the kernel's own log of
    // the same program, helper names included.
    let src = tmp(
        "kernel-notation.s",
        "call 5\nr1 = r0\nr0 = 0\nif r1 > 7 goto +1\nr0 += 1\nexit\n",
    );
    let (code, listing, err) = bpfvm(&[
        "disasm",
        src.to_str().expect("utf-8"),
        "--input-format",
        "asm",
        "--syntax",
        "kernel",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, log, err) = bpfvm(&[
        "kernel-verify",
        src.to_str().expect("utf-8"),
        "--prog-type",
        "xdp",
        "--states",
    ]);
    assert_eq!(code, 0, "{log}{err}");
    assert!(listing.contains("call bpf_ktime_get_ns#5"), "{listing}");
    for line in listing.lines() {
        let line = line.trim_start();
        assert!(
            log.lines().any(|l| l.starts_with(line)),
            "`{line}` not in the kernel's log:\n{log}"
        );
    }
}

fn packet_hex(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("packets/{name}.hex")))
        .expect("packet fixture")
        .trim()
        .to_string()
}

fn example_object(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../bpfvm/examples/bpf")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The kernel's results for `runnable.o` (conformance-tests/elf/README.md, Results).
#[test]
fn run_object_programs_give_the_kernels_results() {
    let obj = fixture("runnable.o");
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--section",
        "xdp",
        "--data",
        &packet_hex("tcp_syn"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("xdp_filter (section xdp, xdp program)\nReturn value: 2, duration: "),
        "{out}"
    );
    // proto_count {6: {packets 1, bytes 40}}, runs {0: 1}, .data last_ttl 64.
    assert!(out.contains("proto_count (hash): 1 added, 0 changed, 0 removed\n+ key: 06 00 00 00  value: 01 00 00 00 00 00 00 00  28 00 00 00 00 00 00 00\n  = {\"key\":6,\"value\":{\"packets\":1,\"bytes\":40}}"), "{out}");
    assert!(
        out.contains(
            "+ key: 00 00 00 00  value: 01 00 00 00 00 00 00 00\n  = {\"key\":0,\"value\":1}"
        ),
        "{out}"
    );
    assert!(
        out.contains("= {\"key\":0,\"value\":{\"last_ttl\":64}}"),
        "{out}"
    );

    // tc_ttl: TTL 0x40 -> 0x3f, checksum f97b -> fa7b, the README's packet out.
    let data_out = tmp("tc_ttl.out", "");
    let frame = tmp("tcp_syn.bin", "");
    std::fs::write(&frame, unhex(&packet_hex("tcp_syn"))).expect("write frame");
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--program",
        "tc_ttl",
        "--packet",
        frame.to_str().expect("utf-8"),
        "--data-out",
        data_out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 0, duration"), "{out}");
    assert!(
        out.contains("0000010\t0028 0001 0000 3f06 fa7b c0a8 0001 c0a8 | .(....?..{......"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&data_out).expect("data out"),
        unhex(
            "020000000002020000000001080045000028000100003f06fa7bc0a80001c0a800023039005000000001000000005002ffff00000000"
        )
    );

    // sock_snap on udp_port9: 24 (skb->len 32 capped at cfg_snaplen); the packet out
    // has the 14 bytes the kernel pushes back, zeroed.
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--program",
        "sock_snap",
        "--data",
        &packet_hex("udp_port9"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 24,"), "{out}");
    assert!(
        out.contains("0000000\t0000 0000 0000 0000 0000 0000 0000 4500 |"),
        "{out}"
    );
}

#[test]
fn run_object_with_globals_pcap_and_repeat() {
    let obj = fixture("runnable.o");
    // udp_port53 passes (2); with cfg_blocked_port = 53 (a __u16, little-endian) it drops (1).
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--section",
        "xdp",
        "--data",
        &packet_hex("udp_port53"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 2,"), "{out}");
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--section",
        "xdp",
        "--data",
        &packet_hex("udp_port53"),
        "--global",
        "cfg_blocked_port=3500",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 1,"), "{out}");

    // A pcap of tcp_syn and udp_port9: 2 then 1; runs[0] ends at 2 × 3 with --repeat 3.
    let pcap = std::env::temp_dir().join(format!("bpfvm-cli-test-{}/two.pcap", std::process::id()));
    let file = std::fs::File::create(&pcap).expect("pcap file");
    let mut w = pcap_file::pcap::PcapWriter::new(file).expect("pcap writer");
    for name in ["tcp_syn", "udp_port9"] {
        let data = unhex(&packet_hex(name));
        w.write_packet(&pcap_file::pcap::PcapPacket::new(
            std::time::Duration::ZERO,
            data.len() as u32,
            &data,
        ))
        .expect("write packet");
    }
    drop(w);
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--section",
        "xdp",
        "--pcap",
        pcap.to_str().expect("utf-8"),
        "--repeat",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("packet 1: Return value: 2, duration (average): "),
        "{out}"
    );
    assert!(
        out.contains("packet 2: Return value: 1, duration (average): "),
        "{out}"
    );
    assert!(
        out.contains("+ key: 00 00 00 00  value: 06 00 00 00 00 00 00 00"),
        "{out}"
    );
}

#[test]
fn run_object_state_persists_maps_and_map_dump_prints_them() {
    let obj = fixture("runnable.o");
    let state =
        std::env::temp_dir().join(format!("bpfvm-cli-test-{}/state.json", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let state_s = state.to_str().expect("utf-8");
    for (run, count) in [(1, "01"), (2, "02")] {
        let (code, out, err) = bpfvm(&[
            "run",
            &obj,
            "--section",
            "xdp",
            "--data",
            &packet_hex("tcp_syn"),
            "--state",
            state_s,
        ]);
        assert_eq!(code, 0, "run {run}: {err}");
        assert!(
            out.contains(&format!("+ key: 00 00 00 00  value: {count} 00 00 00 00 00 00 00\n  = {{\"key\":0,\"value\":{run}}}")),
            "run {run}: {out}"
        );
    }
    let (code, out, err) = bpfvm(&["map", "dump", "--state", state_s, "runs"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "key: 00 00 00 00  value: 02 00 00 00 00 00 00 00\n\
         key: 01 00 00 00  value: 00 00 00 00 00 00 00 00\n\
         key: 02 00 00 00  value: 00 00 00 00 00 00 00 00\n\
         Found 3 elements\n"
    );
    let (code, out, err) = bpfvm(&["map", "dump", "--state", state_s, "proto_count", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"formatted\":{\"key\":6,\"value\":{\"packets\":2,\"bytes\":80}}"),
        "{out}"
    );
    let (code, out, _) = bpfvm(&["map", "dump", "--state", state_s]);
    assert_eq!(code, 0);
    assert!(
        out.contains("proto_count (hash):\nkey: 06 00 00 00  value: 02 00"),
        "{out}"
    );
    let (code, _, err) = bpfvm(&["map", "dump", "--state", state_s, "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no map named `nope`"), "{err}");
}

#[test]
fn run_object_struct_context_from_json_by_btf() {
    let obj = example_object("latency.o");
    // op_start stores bpf_ktime_get_ns() under the event's id.
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--program",
        "op_start",
        "--ctx-json",
        r#"{"id": 7, "kind": 1}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "start (hash): 1 added, 0 changed, 0 removed\n+ key: 07 00 00 00 00 00 00 00  value: "
        ),
        "{out}"
    );
    let (code, out, err) = bpfvm(&[
        "run",
        &obj,
        "--program",
        "op_start",
        "--ctx",
        "0800000000000000 00000000 00000000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+ key: 08 00 00 00"), "{out}");
}

#[test]
fn run_object_bad_inputs_are_errors_not_panics() {
    let obj = fixture("runnable.o");
    let lat = example_object("latency.o");
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", &obj, "--data", "00"],
            "several programs match; choose one with --program or --section: xdp_filter (section xdp)",
        ),
        (
            &["run", &obj, "--section", "kprobe/x", "--data", "00"],
            "no program in section `kprobe/x` (the object has: xdp_filter (section xdp)",
        ),
        (
            &["run", &obj, "--section", "xdp", "--data", "0g"],
            "--data: `0g` is not a hex byte",
        ),
        (
            &["run", &obj, "--section", "xdp"],
            "give a packet with --packet FILE, --pcap FILE or --data HEX",
        ),
        (
            &[
                "run",
                &obj,
                "--section",
                "xdp",
                "--pcap",
                "/nonexistent.pcap",
            ],
            "--pcap /nonexistent.pcap: No such file",
        ),
        (
            &[
                "run",
                &obj,
                "--section",
                "xdp",
                "--pcap",
                &fixture("runnable.o"),
            ],
            "not a pcap file",
        ),
        (
            &[
                "run",
                &obj,
                "--section",
                "xdp",
                "--data",
                "00",
                "--global",
                "nope=00",
            ],
            "global `nope`",
        ),
        (
            &[
                "run",
                &obj,
                "--section",
                "xdp",
                "--data",
                "00",
                "--global",
                "cfg_blocked_port=00",
            ],
            "the variable is 2 bytes, the value 1",
        ),
        (
            &[
                "run",
                &obj,
                "--section",
                "xdp",
                "--data",
                "00",
                "--ctx",
                "00",
            ],
            "it runs on a packet",
        ),
        (
            &[
                "run",
                &lat,
                "--program",
                "op_start",
                "--ctx-json",
                "{\"id\": ",
            ],
            "--ctx-json: not JSON",
        ),
        (
            &[
                "run",
                &lat,
                "--program",
                "op_start",
                "--ctx-json",
                "{\"idx\": 1}",
            ],
            "struct op_event has no field `idx` (it has: id, kind, pad)",
        ),
        (
            &[
                "run",
                &lat,
                "--program",
                "op_start",
                "--ctx",
                &"00".repeat(17),
            ],
            "context of 17 bytes; the program's context struct `op_event` has 16",
        ),
        (
            &["run", &lat, "--program", "op_start", "--data", "00"],
            "runs on a context struct",
        ),
        (
            &["run", &lat, "--program", "op_start"],
            "give its context with --ctx HEX or --ctx-json",
        ),
        (
            &[
                "run",
                &lat,
                "--program",
                "op_start",
                "--ctx-json",
                "{\"id\": 1}",
                "--data-out",
                "/tmp/x",
            ],
            "--data-out: a raw_tracepoint program has no packet out",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = bpfvm(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A fault is a run failure (1) naming the instruction.
    let (code, _, err) = bpfvm(&["run", &lat, "--program", "op_start", "--ctx", "0102"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("fault: ") && err.contains("at pc 0: r1 = *(u64 *)(r1 + 0x0)"),
        "{err}"
    );
}

#[test]
fn map_dump_of_per_cpu_maps_prints_each_slot() {
    // maps_legacy.o xdp_first_byte on tcp_syn: `scratch` {0: byte 0 = 2} (README), on
    // the running slot, CPU 0.
    let state =
        std::env::temp_dir().join(format!("bpfvm-cli-test-{}/percpu.json", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let state_s = state.to_str().expect("utf-8");
    let (code, out, err) = bpfvm(&[
        "run",
        &fixture("maps_legacy.o"),
        "--program",
        "xdp_first_byte",
        "--data",
        &packet_hex("tcp_syn"),
        "--state",
        state_s,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Return value: 2,"), "{out}");
    let (code, out, err) = bpfvm(&["map", "dump", "--state", state_s, "scratch"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "key: 00 00 00 00\nvalue (CPU 00): 02 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("Found 1 element\n"), "{out}");
    let (code, out, _) = bpfvm(&["map", "dump", "--state", state_s, "scratch", "--json"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\"values\":[{\"cpu\":0,\"value\":[\"0x02\","),
        "{out}"
    );
}

/// `bpfvm run OBJ.o` builds each program type's context as `BPF_PROG_TEST_RUN` does:
/// the return value and packet out of every runnable.o program on every fixture packet
/// are the kernel's.
#[cfg(target_os = "linux")]
#[test]
fn run_object_agrees_with_the_kernels_test_run() {
    if !kernel() {
        return;
    }
    use bpfvm_kernel::{Bpf, KernelLoadOptions, host_load_options, vmlinux_btf};
    let vmlinux = vmlinux_btf().expect("/sys/kernel/btf/vmlinux");
    let bytes = std::fs::read(fixture("runnable.o")).expect("fixture");
    let opts = bpfvm_object::LoadOptions {
        name: "runnable".into(),
        ..host_load_options("", &vmlinux)
    };
    let obj = bpfvm_object::load(&bytes, &opts).expect("load");
    let out_file = tmp("kernel-cmp.out", "");
    let mut failures = Vec::new();
    for program in ["xdp_filter", "sock_snap", "tc_ttl"] {
        for name in [
            "tcp_syn",
            "udp_port9",
            "udp_port53",
            "tcp_ttl1",
            "arp",
            "magic",
        ] {
            let frame = unhex(&packet_hex(name));
            // A fresh kernel load per run, as bpfvm loads the object afresh.
            let loaded = Bpf::new()
                .load_object(&obj, Some(&vmlinux), &KernelLoadOptions::default())
                .expect("kernel load");
            let k = loaded.run(&obj, program, &frame).expect("kernel run");
            let (code, out, err) = bpfvm(&[
                "run",
                &fixture("runnable.o"),
                "--program",
                program,
                "--data",
                &packet_hex(name),
                "--data-out",
                out_file.to_str().expect("utf-8"),
            ]);
            assert_eq!(code, 0, "{program} {name}: {err}");
            let retval: u32 = out
                .lines()
                .find_map(|l| l.strip_prefix("Return value: "))
                .and_then(|l| l.split(',').next())
                .and_then(|n| n.parse().ok())
                .expect("Return value line");
            let packet = std::fs::read(&out_file).expect("data out");
            if (retval, &packet) != (k.retval, &k.packet) {
                failures.push(format!(
                    "{program} {name}: bpfvm {retval} {packet:02x?}, kernel {} {:02x?}",
                    k.retval, k.packet
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn cli_data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn run_object_ctx_json_sets_a_16_byte_integer() {
    // wide() returns (int)(big >> 64) + (int)big + (int)small; --ctx-json had panicked
    // copying 8 bytes into the 16-byte `unsigned __int128` member.
    let obj = cli_data("wide.o");
    for (json, want) in [
        (r#"{"big": 5, "small": 2}"#, 7u32),
        // -1 sign-extends over all 16 bytes: -1 + -1 + 2.
        (r#"{"big": -1, "small": 2}"#, 0),
        // u64::MAX leaves the high half 0: 0 + -1 + 2.
        (r#"{"big": 18446744073709551615, "small": 2}"#, 1),
    ] {
        let (code, out, err) = bpfvm(&["run", &obj, "--ctx-json", json]);
        assert_eq!(code, 0, "{json}: {err}");
        assert!(
            out.contains(&format!("Return value: {want},")),
            "{json}: {out}"
        );
    }
}

#[test]
fn run_object_formats_a_16_byte_integer_as_bpftool() {
    // bpftool prints __int128 as a hex string (btf_int128_print); the run stores
    // ctx->big in the global last_big, which had been shown cut to its low 8 bytes.
    let obj = cli_data("wide.o");
    let (code, out, err) = bpfvm(&["run", &obj, "--ctx-json", r#"{"big": -2, "small": 2}"#]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(r#"= {"key":0,"value":{"last_big":"0xfffffffffffffffffffffffffffffffe"}}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"= {"key":0,"value":{"last_big":"0x0"}}"#),
        "{out}"
    );
}

#[test]
fn run_object_formats_an_array_of_zero_size_elements_in_bounded_time() {
    // `struct empty e[2000000000]` is 0 bytes; formatting it had made two billion
    // JSON values (minutes and gigabytes). The child is killed after 30 s.
    let obj = cli_data("empty.o");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["run", &obj, "--ctx", ""])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bpfvm runs");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("bpfvm run empty.o did not finish in 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains(
            r#"+ key: 00 00 00 00  value: 01 00 00 00
  = {"key":0,"value":{"g":{"n":1,"e":""}}}"#
        ),
        "{out}"
    );
}

#[test]
fn map_dump_rejects_entries_of_the_wrong_size() {
    // A state file edited by hand (or from another build of the object): `runs` has 4-byte
    // keys and 8-byte values. The dump had printed a 1-byte key, formatted as key 0.
    let obj = fixture("runnable.o");
    let state = tmp(
        "wrong-size-state.json",
        &format!(
            r#"{{"object": "{obj}", "maps": {{"runs": [{{"key": "00", "value": "0100000000000000"}}]}}}}"#
        ),
    );
    let state = state.to_string_lossy();
    for json in [false, true] {
        let mut args = vec!["map", "dump", "--state", &state, "runs"];
        if json {
            args.push("--json");
        }
        let (code, out, err) = bpfvm(&args);
        assert_eq!(code, 2, "{out}");
        assert!(
            err.contains(
                "map `runs`: an entry of a 1-byte key and 8-byte value; the map's are 4 and 8"
            ),
            "{err}"
        );
    }
}
