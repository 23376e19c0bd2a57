//! Every fixture of `conformance-tests/elf/` goes through bpfvm's loader into the kernel:
//! the verifier accepts every program, and the programs that run under
//! `BPF_PROG_TEST_RUN` return what the kernel computed for the same objects loaded by
//! libbpf (the table in `conformance-tests/elf/README.md`), with the same map contents.
//! Skips, saying why, without `bpf()`; fails under `BPFVM_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bpfvm_btf::Btf;
use bpfvm_kernel::{
    Bpf, Errno, KernelLoadOptions, KernelObject, host_load_options, kernel_available_for_test,
    vmlinux_btf,
};
use bpfvm_object::{LoadOptions, Object, load};

fn elf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/elf")
}

fn vmlinux() -> &'static Btf {
    static V: OnceLock<Btf> = OnceLock::new();
    V.get_or_init(|| vmlinux_btf().expect("/sys/kernel/btf/vmlinux"))
}

fn object(name: &str) -> Object {
    let path = elf_dir().join(name);
    let bytes = std::fs::read(&path).expect("fixture");
    let stem = Path::new(name)
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    // The host's kallsyms, config and version are read once for all loads.
    static HOST: OnceLock<LoadOptions<'static>> = OnceLock::new();
    let opts = LoadOptions {
        name: stem,
        ..HOST
            .get_or_init(|| host_load_options("", vmlinux()))
            .clone()
    };
    load(&bytes, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn packet(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(elf_dir().join("packets").join(format!("{name}.hex")))
        .expect("packet");
    (0..text.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text.trim()[i..i + 2], 16).expect("hex"))
        .collect()
}

fn in_kernel(obj: &Object) -> KernelObject {
    Bpf::new()
        .load_object(obj, Some(vmlinux()), &KernelLoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", obj.name, e.log().unwrap_or_default()))
}

/// A fresh load per run, as the README's table was computed.
fn run(name: &str, program: &str, pkt: &str) -> bpfvm_object::ObjectRun {
    let obj = object(name);
    in_kernel(&obj)
        .run(&obj, program, &packet(pkt))
        .unwrap_or_else(|e| panic!("{name} {program}: {e}"))
}

macro_rules! require_kernel {
    ($t:ident) => {
        if !kernel_available_for_test(stringify!($t)) {
            return;
        }
    };
}

#[test]
fn the_kernel_accepts_every_fixture_through_our_loader() {
    require_kernel!(the_kernel_accepts_every_fixture_through_our_loader);
    let mut loaded = 0;
    for entry in std::fs::read_dir(elf_dir()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "o") {
            continue;
        }
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let obj = object(&name);
        for p in &obj.programs {
            let result = Bpf::new().load_object_programs(
                &obj,
                Some(vmlinux()),
                &KernelLoadOptions::default(),
                &|q| q.name == p.name,
            );
            match result {
                Ok(k) => {
                    assert!(k.program(&p.name).is_some());
                    loaded += 1;
                }
                // libbpf cannot guess a type for a custom section either.
                Err(e) if p.kind.prog_type == 0 => {
                    assert!(e.to_string().contains("names no program type"), "{e}");
                }
                // Trampoline programs (fentry, lsm) need BPF trampolines, which this
                // machine refuses before verification (EPERM, no log) even for a bare
                // `return 0`; conformance-tests/elf/README.md records the same with libbpf.
                Err(e)
                    if p.kind.needs_attach_btf_id
                        && e.errno() == Some(Errno::EPERM)
                        && e.log().is_none_or(str::is_empty) =>
                {
                    eprintln!(
                        "note: {name} {}: {e} (trampolines are refused on this machine)",
                        p.name
                    );
                }
                Err(e) => panic!("{name} {}: {e}\n{}", p.name, e.log().unwrap_or_default()),
            }
        }
    }
    assert!(loaded >= 30, "only {loaded} programs loaded");
}

#[test]
fn runnable_programs_return_what_the_kernel_computed_via_libbpf() {
    require_kernel!(runnable_programs_return_what_the_kernel_computed_via_libbpf);
    let r = run("runnable.o", "xdp_filter", "tcp_syn");
    assert_eq!(r.retval, 2);
    // proto_count {6: {packets 1, bytes 40}}
    let mut stats = 1u64.to_le_bytes().to_vec();
    stats.extend(40u64.to_le_bytes());
    assert_eq!(
        r.maps["proto_count"].get(6u32.to_le_bytes().as_slice()),
        Some(&stats)
    );
    assert_eq!(run("runnable.o", "xdp_filter", "udp_port9").retval, 1);
    assert_eq!(run("runnable.o", "xdp_filter", "tcp_ttl1").retval, 1);
    assert_eq!(run("runnable.o", "sock_snap", "udp_port9").retval, 24);
    let tc = run("runnable.o", "tc_ttl", "tcp_syn");
    assert_eq!(tc.retval, 0);
    // TTL 0x40 -> 0x3f and the checksum fixed: f97b -> fa7b.
    assert_eq!(
        (tc.packet[22], tc.packet[24], tc.packet[25]),
        (0x3f, 0xfa, 0x7b)
    );

    assert_eq!(run("globals.o", "xdp_globals", "tcp_syn").retval, 12409);
    assert_eq!(run("globals.o", "xdp_globals", "magic").retval, 33_908_088);
    for o in ["subprogs_v2.o", "subprogs_v3.o", "subprogs_v4.o"] {
        assert_eq!(run(o, "xdp_calls", "tcp_syn").retval, 6111, "{o}");
        assert_eq!(run(o, "xdp_calls", "magic").retval, 31776, "{o}");
        assert_eq!(run(o, "sock_calls", "tcp_syn").retval, 16328, "{o}");
    }
    assert_eq!(run("callbacks.o", "xdp_loop", "tcp_syn").retval, 196_609);
    assert_eq!(run("callbacks.o", "xdp_loop", "magic").retval, 393_246);
    assert_eq!(
        run("callbacks.o", "xdp_for_each", "tcp_syn").retval,
        100_663_408
    );
    assert_eq!(run("core.o", "core_xdp", "tcp_syn").retval, 65590);
    assert_eq!(run("kconfig.o", "sock_weak", "tcp_syn").retval, 81);
    assert_eq!(run("maps_legacy.o", "sock_len_hist", "tcp_syn").retval, 40);
    assert_eq!(run("maps_legacy.o", "xdp_first_byte", "magic").retval, 2);
    assert_eq!(run("maps_btf.o", "xdp_maps", "tcp_syn").retval, 2);
    // The tail call through jump_table[1], which the loader filled from the static
    // initializer: XDP_TX from xdp_tail.
    assert_eq!(run("maps_btf.o", "xdp_maps", "magic").retval, 3);
}

#[test]
fn kconfig_externs_carry_the_running_kernels_version() {
    require_kernel!(kconfig_externs_carry_the_running_kernels_version);
    let r = run("kconfig.o", "xdp_kconfig", "tcp_syn");
    let version = bpfvm_kernel::running_kernel_version().expect("osrelease");
    let bss = r
        .maps
        .iter()
        .find(|(n, _)| n.ends_with(".bss"))
        .map(|(_, m)| m)
        .expect(".bss");
    let value = bss.get(0u32.to_le_bytes().as_slice()).expect("key 0");
    assert_eq!(
        u32::from_le_bytes(value[..4].try_into().expect("4")),
        version
    );
}

#[test]
fn pinned_maps_are_pinned_then_reused() {
    require_kernel!(pinned_maps_are_pinned_then_reused);
    // A private BPF file system, so the test leaves nothing in /sys/fs/bpf.
    let root = std::env::temp_dir().join(format!("bpfvm-pin-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("mkdir");
    let status = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf"])
        .arg(&root)
        .status()
        .expect("mount runs");
    assert!(status.success(), "mounting a bpffs at {}", root.display());
    let opts = KernelLoadOptions {
        pin_root: Some(root.clone()),
        ..KernelLoadOptions::default()
    };
    let obj = object("maps_btf.o");
    let first = Bpf::new()
        .load_object(&obj, Some(vmlinux()), &opts)
        .expect("loads");
    let pinned = root.join("pinned_counter");
    assert!(pinned.exists(), "pinned at {}", pinned.display());
    first
        .map(&obj, "pinned_counter")
        .expect("map")
        .update(&0u32.to_le_bytes(), &77u64.to_le_bytes(), 0)
        .expect("update");
    drop(first);
    // A second load reuses the pinned map, contents included.
    let second = Bpf::new()
        .load_object(&obj, Some(vmlinux()), &opts)
        .expect("loads again");
    let value = second
        .map(&obj, "pinned_counter")
        .expect("map")
        .lookup(&0u32.to_le_bytes())
        .expect("lookup");
    assert_eq!(value, Some(77u64.to_le_bytes().to_vec()));
    drop(second);
    let _ = std::process::Command::new("umount").arg(&root).status();
    let _ = std::fs::remove_dir(&root);
}
