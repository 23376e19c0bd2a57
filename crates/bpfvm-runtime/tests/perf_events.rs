//! BPF_MAP_TYPE_PERF_EVENT_ARRAY: per-CPU output with the kernel's error codes and lost
//! counting, and counters read with `bpf_perf_event_read{,_value}`.

use std::sync::Arc;
use std::time::Duration;

use bpfvm_abi::{MapSpec, MapType};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_runtime::maps::{
    Map, MapConfig, PerfCounter, PerfEventArrayMap, create_map, perf_sample_record_len,
};
use bpfvm_runtime::{Context, HelperRegistry, LoadedProgram, ProgramType, RunOptions};

fn load(src: &str, map: &Arc<dyn Map>) -> LoadedProgram {
    let slots = assemble(src, Dialect::Llvm).expect("assembles");
    let t = ProgramType::Kernel(bpfvm_abi::ProgramType::Kprobe);
    LoadedProgram::with_maps(
        Program::from_slots(slots).expect("valid"),
        t,
        Arc::new(HelperRegistry::for_program_type(t)),
        vec![Arc::clone(map)],
    )
    .expect("loads")
}

fn run_on(prog: &LoadedProgram, cpu: usize, ctx: &mut [u8]) -> u64 {
    let mut ctx = Context::Struct {
        bytes: ctx,
        writable: true,
    };
    Interpreter::new()
        .run_context(prog, &mut ctx, &RunOptions::new().with_cpu(cpu))
        .expect("runs")
}

/// Outputs the 8 bytes `0x0807060504030201` + `tag` with the flags in `r7`... built per
/// flags value.
fn output_prog(flags: u64, size: u32) -> String {
    format!(
        "r1 = 0x0807060504030201 ll
         *(u64 *)(r10 - 8) = r1
         r3 = {flags:#x} ll
         r2 = map[idx:0]
         r4 = r10
         r4 += -8
         r5 = {size}
         call 25
         exit"
    )
}

fn errno(e: i64) -> u64 {
    (-e) as u64
}

#[test]
fn output_goes_to_the_running_cpus_buffer_and_counts_losses() {
    let config = MapConfig::new(2, 1 << 20);
    let spec = MapSpec::new(MapType::PerfEventArray, 4, 4, 4);
    // 8-byte samples take round_up(8 + 4 + 8, 8) = 24 bytes: two fit in 60.
    assert_eq!(perf_sample_record_len(8), 24);
    let map: Arc<dyn Map> =
        Arc::new(PerfEventArrayMap::with_buffer_size(&spec, &config, 60).expect("creates"));
    let perf = map
        .as_any()
        .downcast_ref::<PerfEventArrayMap>()
        .expect("perf")
        .perf_buffer();
    let mut ctx = [0u8; 16];
    let current = load(&output_prog(0xffff_ffff, 8), &map);
    assert_eq!(run_on(&current, 0, &mut ctx), 0);
    assert_eq!(run_on(&current, 1, &mut ctx), 0);
    assert_eq!(run_on(&current, 0, &mut ctx), 0);
    assert_eq!(
        run_on(&current, 0, &mut ctx),
        errno(28),
        "third on CPU 0: ENOSPC"
    );
    assert_eq!(run_on(&current, 0, &mut ctx), errno(28));
    // Explicit indices: this CPU's is fine, another CPU's buffer is EOPNOTSUPP, an empty
    // entry ENOENT, past the end E2BIG; flag bits above the index EINVAL.
    assert_eq!(
        run_on(&load(&output_prog(1, 8), &map), 1, &mut ctx),
        0,
        "index 1 from CPU 1"
    );
    assert_eq!(
        run_on(&load(&output_prog(1, 8), &map), 0, &mut ctx),
        errno(95)
    );
    assert_eq!(
        run_on(&load(&output_prog(3, 8), &map), 0, &mut ctx),
        errno(2)
    );
    assert_eq!(
        run_on(&load(&output_prog(4, 8), &map), 0, &mut ctx),
        errno(7)
    );
    assert_eq!(
        run_on(&load(&output_prog(1 << 32, 8), &map), 0, &mut ctx),
        errno(22)
    );
    // What the host sees: CPU 0's two samples then 2 lost, CPU 1's two samples.
    let events = std::cell::RefCell::new(Vec::new());
    let n = perf.poll(
        Duration::from_millis(10),
        |cpu, s| events.borrow_mut().push(format!("{cpu}:{s:?}")),
        |cpu, lost| events.borrow_mut().push(format!("{cpu}:lost {lost}")),
    );
    let events = events.into_inner();
    assert_eq!(n, 4);
    let s = "[1, 2, 3, 4, 5, 6, 7, 8]";
    assert_eq!(
        events,
        [
            format!("0:{s}"),
            format!("0:{s}"),
            "0:lost 2".to_string(),
            format!("1:{s}"),
            format!("1:{s}"),
        ]
    );
    // Consuming frees the room.
    assert_eq!(run_on(&current, 0, &mut ctx), 0);
    assert_eq!(perf.consume(|_, s| assert_eq!(s.len(), 8), |_, _| {}), 1);
    // The host API: entries delete like the kernel's fd arrays.
    assert!(map.lookup(&0u32.to_ne_bytes()).is_err());
    assert_eq!(map.delete(&0u32.to_ne_bytes()), Ok(()));
    assert_eq!(
        map.delete(&0u32.to_ne_bytes()).map_err(|e| e.errno()),
        Err(2)
    );
    assert_eq!(
        map.delete(&9u32.to_ne_bytes()).map_err(|e| e.errno()),
        Err(7)
    );
    assert_eq!(run_on(&current, 0, &mut ctx), errno(2), "entry 0 is gone");
}

#[test]
fn a_waiting_poll_wakes_on_output() {
    let config = MapConfig::new(1, 1 << 20);
    let map: Arc<dyn Map> = Arc::from(
        create_map(&MapSpec::new(MapType::PerfEventArray, 4, 4, 1), &config).expect("creates"),
    );
    let perf = map
        .as_any()
        .downcast_ref::<PerfEventArrayMap>()
        .expect("perf")
        .perf_buffer();
    let waiter = std::thread::spawn(move || {
        let mut got = Vec::new();
        let n = perf.poll(
            Duration::from_secs(10),
            |cpu, s| got.push((cpu, s.to_vec())),
            |_, _| {},
        );
        (n, got)
    });
    std::thread::sleep(Duration::from_millis(50));
    let prog = load(&output_prog(0xffff_ffff, 3), &map);
    assert_eq!(run_on(&prog, 0, &mut [0u8; 8]), 0);
    let (n, got) = waiter.join().expect("poll");
    assert_eq!((n, got), (1, vec![(0, vec![1, 2, 3])]));
}

/// Reads entry 0 with `bpf_perf_event_read_value` into the context's first 24 bytes and
/// with `bpf_perf_event_read` into the next 8; returns the first helper's result.
const READ_VALUE: &str = "r6 = r1
     r1 = map[idx:0]
     r2 = 0xffffffff ll
     r3 = r10
     r3 += -24
     r4 = 24
     call 55
     r7 = r0
     r1 = *(u64 *)(r10 - 24)
     *(u64 *)(r6 + 0) = r1
     r1 = *(u64 *)(r10 - 16)
     *(u64 *)(r6 + 8) = r1
     r1 = *(u64 *)(r10 - 8)
     *(u64 *)(r6 + 16) = r1
     r1 = map[idx:0]
     r2 = 0
     call 22
     *(u64 *)(r6 + 24) = r0
     r0 = r7
     exit";

fn words(ctx: &[u8]) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_ne_bytes(ctx[i * 8..i * 8 + 8].try_into().expect("8")))
}

#[test]
fn perf_event_read_value_over_a_task_clock() {
    let counter = match PerfCounter::task_clock() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // perf_event_open can be forbidden (perf_event_paranoid, seccomp): say so.
            eprintln!("perf_event_read_value_over_a_task_clock: skipped: {e}");
            assert!(
                !cfg!(target_os = "linux")
                    || std::env::var("BPFVM_REQUIRE_KERNEL").as_deref() != Ok("1"),
                "perf_event_open failed: {e}"
            );
            return;
        }
    };
    let config = MapConfig::new(1, 1 << 20);
    let spec = MapSpec::new(MapType::PerfEventArray, 4, 4, 2);
    let perf = PerfEventArrayMap::new(&spec, &config).expect("creates");
    perf.set_counter(0, Arc::clone(&counter)).expect("index 0");
    let map: Arc<dyn Map> = Arc::new(perf);
    let prog = load(READ_VALUE, &map);
    let mut ctx = [0u8; 32];
    assert_eq!(run_on(&prog, 0, &mut ctx), 0);
    let first = words(&ctx);
    // Spend some CPU time on this thread.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    assert_eq!(run_on(&prog, 0, &mut ctx), 0);
    let second = words(&ctx);
    assert!(second[0] > first[0], "counter {first:?} -> {second:?}");
    assert!(second[1] > first[1], "enabled time grows");
    assert!(
        second[2] > 0 && second[2] <= second[1],
        "running <= enabled"
    );
    assert!(second[3] >= second[0], "bpf_perf_event_read reads later");
    // A wrong size is EINVAL with the buffer zeroed; an output buffer reads as zero.
    let bad = load(&READ_VALUE.replace("r4 = 24", "r4 = 16"), &map);
    assert_eq!(run_on(&bad, 0, &mut ctx), errno(22));
    assert_eq!(words(&ctx)[..2], [0, 0]);
    let map2: Arc<dyn Map> = Arc::new(PerfEventArrayMap::new(&spec, &config).expect("creates"));
    let prog2 = load(READ_VALUE, &map2);
    assert_eq!(run_on(&prog2, 0, &mut ctx), 0);
    assert_eq!(words(&ctx), [0, 0, 0, 0]);
    // A counter where output is expected: EINVAL.
    let out = load(&output_prog(0, 8), &map);
    assert_eq!(run_on(&out, 0, &mut ctx), errno(22));
}
