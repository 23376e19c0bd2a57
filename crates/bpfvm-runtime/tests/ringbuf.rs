//! BPF_MAP_TYPE_RINGBUF: record layout and positions (hand-computed from
//! `kernel/bpf/ringbuf.c`, and compared with a real kernel ring buffer), reservation
//! limits, out-of-order commits, wakeups, concurrency, and programs using the helpers.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bpfvm_abi::{MapSpec, MapType};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_runtime::maps::{
    Map, MapConfig, RB_AVAIL_DATA, RB_CONS_POS, RB_FORCE_WAKEUP, RB_NO_WAKEUP, RB_PROD_POS,
    RB_RING_SIZE, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RingBufMap, create_map,
};
use bpfvm_runtime::{Context, HelperRegistry, LoadedProgram, ProgramType, RunOptions};

fn ringbuf(size: u32) -> Arc<dyn Map> {
    let config = MapConfig::new(2, 1 << 24);
    Arc::from(create_map(&MapSpec::new(MapType::Ringbuf, 0, 0, size), &config).expect("ringbuf"))
}

fn rb(map: &Arc<dyn Map>) -> &RingBufMap {
    map.as_any()
        .downcast_ref::<RingBufMap>()
        .expect("a ringbuf")
}

#[test]
fn record_layout_and_positions_are_the_kernels() {
    let map = ringbuf(4096);
    let ring = rb(&map).ring();
    assert_eq!(ring.query(RB_RING_SIZE), 4096);
    // 5 bytes: header 8 + 5 -> 16 bytes of positions.
    ring.output(&[1, 2, 3, 4, 5], 0).expect("room");
    assert_eq!(ring.record_header(0), (5, 3));
    assert_eq!(ring.query(RB_PROD_POS), 16);
    assert_eq!(ring.query(RB_AVAIL_DATA), 16);
    // 0 bytes: just the header.
    ring.output(&[], 0).expect("room");
    assert_eq!(ring.query(RB_PROD_POS), 24);
    // A reserved record is busy; its sample starts 8 bytes after its header.
    let a = ring.reserve(8, 0).expect("room");
    let b = ring.reserve(1, 0).expect("room");
    assert_eq!(b.addr() - a.addr(), 16);
    assert_eq!(ring.record_header(24), (8 | RINGBUF_BUSY_BIT, 3));
    ring.discard(a.addr(), 0).expect("reserved");
    assert_eq!(
        ring.record_header(24),
        (8 | RINGBUF_DISCARD_BIT, 3),
        "discard clears busy, sets discard"
    );
    ring.submit(b.addr(), 0).expect("reserved");
    assert_eq!(ring.query(RB_PROD_POS), 24 + 16 + 16);
    // Unknown query flags answer 0.
    assert_eq!(ring.query(4), 0);
    let mut seen = Vec::new();
    assert_eq!(
        rb(&map).consumer().consume(|r| seen.push(r.to_vec())),
        3,
        "discarded records are skipped"
    );
    assert_eq!(seen, vec![vec![1, 2, 3, 4, 5], vec![], vec![0]]);
    assert_eq!(ring.query(RB_CONS_POS), 56);
    assert_eq!(ring.query(RB_AVAIL_DATA), 0);
}

#[test]
fn pg_off_counts_pages_of_the_data_offset() {
    let map = ringbuf(8192);
    let ring = rb(&map).ring();
    // Fill the first page with records of 4096 - 8 positions... in pieces: 4096 = 2 * 2048.
    ring.output(&[0; 2040], 0).expect("room");
    ring.output(&[0; 2040], 0).expect("room");
    assert_eq!(ring.query(RB_PROD_POS), 4096);
    ring.output(&[7], 0).expect("room");
    assert_eq!(ring.record_header(4096), (1, 4));
}

#[test]
fn reserve_limits_follow_the_kernel() {
    let map = ringbuf(4096);
    let ring = rb(&map).ring();
    // The producer may be at most size - 1 bytes ahead: a 4096-byte record never fits,
    // a 4088-byte one (4080 of sample) does.
    assert!(ring.reserve(4096 - 8, 0).is_none());
    assert!(ring.reserve(u64::from(u32::MAX), 0).is_none());
    assert!(
        ring.reserve(8, 1).is_none(),
        "any flag fails the reservation"
    );
    let big = ring.reserve(4080, 0).expect("4088 bytes fit");
    assert!(ring.reserve(0, 0).is_none(), "8 more would make 4096");
    assert_eq!(
        ring.output(&[1], 0).map_err(|e| e.errno()),
        Err(11),
        "EAGAIN"
    );
    assert_eq!(
        ring.output(&[1], 4).map_err(|e| e.errno()),
        Err(22),
        "EINVAL"
    );
    ring.submit(big.addr(), 0).expect("reserved");
    assert!(ring.submit(big.addr(), 0).is_err(), "committed twice");
    assert_eq!(
        rb(&map).consumer().consume(|r| assert_eq!(r.len(), 4080)),
        1
    );
    // Space is back, and the next record wraps around the end, contiguous.
    let wrap = ring.reserve(100, 0).expect("room after consuming");
    let data: Vec<u8> = (0..100).collect();
    ring.write_reserved(wrap.addr(), 0, &data).expect("fits");
    ring.submit(wrap.addr(), 0).expect("reserved");
    let mut got = Vec::new();
    rb(&map).consumer().consume(|r| got = r.to_vec());
    assert_eq!(got, data);
    assert_eq!(ring.query(RB_CONS_POS), 4088 + 112);
}

#[test]
fn consumer_stops_at_the_first_busy_record() {
    let map = ringbuf(4096);
    let ring = rb(&map).ring();
    let c = rb(&map).consumer();
    let a = ring.reserve(8, 0).expect("room");
    let b = ring.reserve(8, 0).expect("room");
    ring.write_reserved(b.addr(), 0, &2u64.to_ne_bytes())
        .expect("fits");
    ring.submit(b.addr(), 0).expect("reserved");
    assert_eq!(c.consume(|_| panic!("a is still busy")), 0);
    ring.write_reserved(a.addr(), 0, &1u64.to_ne_bytes())
        .expect("fits");
    ring.submit(a.addr(), 0).expect("reserved");
    let mut order = Vec::new();
    assert_eq!(
        c.consume(|r| order.push(u64::from_ne_bytes(r.try_into().expect("8 bytes")))),
        2
    );
    assert_eq!(order, [1, 2]);
}

#[test]
fn wakeups_follow_the_flags() {
    let map = ringbuf(4096);
    let ring = Arc::clone(rb(&map).ring());
    let consumer = rb(&map).consumer();
    // Default: the consumer has caught up, so the commit wakes it.
    let waiter = thread::spawn({
        let c = consumer.clone();
        move || {
            let t = Instant::now();
            (c.poll(Duration::from_secs(10), |_| {}), t.elapsed())
        }
    });
    thread::sleep(Duration::from_millis(50));
    ring.output(&[1], 0).expect("room");
    let (n, t) = waiter.join().expect("poll");
    assert_eq!(n, 1);
    assert!(t < Duration::from_secs(5));
    // BPF_RB_NO_WAKEUP: the waiting consumer sleeps to its timeout.
    let waiter = thread::spawn({
        let c = consumer.clone();
        move || {
            let t = Instant::now();
            (c.poll(Duration::from_millis(400), |_| {}), t.elapsed())
        }
    });
    thread::sleep(Duration::from_millis(50));
    ring.output(&[2], RB_NO_WAKEUP).expect("room");
    let (n, t) = waiter.join().expect("poll");
    assert_eq!(n, 0);
    assert!(t >= Duration::from_millis(400));
    assert_eq!(consumer.consume(|r| assert_eq!(r, [2])), 1);
    // Not caught up (a record before this one is unconsumed): no wakeup by default, but
    // BPF_RB_FORCE_WAKEUP wakes.
    let first = ring.reserve(1, 0).expect("room");
    let waiter = thread::spawn({
        let c = consumer.clone();
        move || {
            let t = Instant::now();
            (c.poll(Duration::from_secs(10), |_| {}), t.elapsed())
        }
    });
    thread::sleep(Duration::from_millis(50));
    ring.output(&[3], 0).expect("room"); // consumer is at `first`: no wakeup
    thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());
    ring.submit(first.addr(), RB_FORCE_WAKEUP)
        .expect("reserved");
    let (n, t) = waiter.join().expect("poll");
    assert_eq!(n, 2);
    assert!(t < Duration::from_secs(5));
}

#[test]
fn four_producers_100k_records_each_seen_once() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 25_000;
    let map = ringbuf(1 << 16);
    let consumer = rb(&map).consumer();
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let ring = Arc::clone(rb(&map).ring());
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let id = t * PER_THREAD + i;
                    let size = 8 + (id % 5) * 8;
                    let rec = loop {
                        if let Some(r) = ring.reserve(size, 0) {
                            break r;
                        }
                        thread::yield_now();
                    };
                    ring.write_reserved(rec.addr(), 0, &id.to_ne_bytes())
                        .expect("fits");
                    if id.is_multiple_of(7) {
                        ring.discard(rec.addr(), 0).expect("reserved");
                    } else {
                        ring.submit(rec.addr(), 0).expect("reserved");
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let expected = (0..THREADS * PER_THREAD)
        .filter(|i| !i.is_multiple_of(7))
        .count();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < expected && Instant::now() < deadline {
        consumer.poll(Duration::from_millis(10), |r| {
            let id = u64::from_ne_bytes(r[..8].try_into().expect("8 bytes"));
            assert_eq!(r.len() as u64, 8 + (id % 5) * 8);
            assert!(!id.is_multiple_of(7), "discarded record {id} delivered");
            assert!(seen.insert(id), "record {id} delivered twice");
        });
    }
    for p in producers {
        p.join().expect("producer");
    }
    consumer.consume(|r| {
        let id = u64::from_ne_bytes(r[..8].try_into().expect("8 bytes"));
        assert!(seen.insert(id), "record {id} delivered twice");
    });
    assert_eq!(seen.len(), expected);
}

fn load(src: &str, map: &Arc<dyn Map>) -> LoadedProgram {
    let slots = assemble(src, Dialect::Llvm).expect("assembles");
    let program = Program::from_slots(slots).expect("valid");
    let t = ProgramType::Kernel(bpfvm_abi::ProgramType::Kprobe);
    LoadedProgram::with_maps(
        program,
        t,
        Arc::new(HelperRegistry::for_program_type(t)),
        vec![Arc::clone(map)],
    )
    .expect("loads")
}

fn run(prog: &LoadedProgram) -> Result<u64, bpfvm_runtime::Fault> {
    let mut bytes = [0u8; 64];
    let mut ctx = Context::Struct {
        bytes: &mut bytes,
        writable: false,
    };
    Interpreter::new().run_context(prog, &mut ctx, &RunOptions::new())
}

#[test]
fn program_reserves_writes_and_submits() {
    let map = ringbuf(4096);
    let prog = load(
        "r1 = map[idx:0]
         r2 = 12
         r3 = 0
         call 131
         if r0 == 0 goto +9
         r6 = r0
         r1 = 0x1122334455667788 ll
         *(u64 *)(r6 + 0) = r1
         *(u32 *)(r6 + 8) = 42
         r1 = r6
         r2 = 0
         call 132
         r0 = 1
         exit",
        &map,
    );
    assert_eq!(run(&prog), Ok(1));
    let ring = rb(&map).ring();
    assert_eq!(ring.record_header(0), (12, 3));
    let mut got = Vec::new();
    assert_eq!(rb(&map).consumer().consume(|r| got = r.to_vec()), 1);
    let mut want = 0x1122334455667788u64.to_ne_bytes().to_vec();
    want.extend_from_slice(&42u32.to_ne_bytes());
    assert_eq!(got, want);
}

#[test]
fn a_record_reserved_by_a_faulting_run_is_discarded() {
    let map = ringbuf(4096);
    // Reserve 12 bytes, then read past them: the run faults with the record pending.
    let prog = load(
        "r1 = map[idx:0]
         r2 = 12
         r3 = 0
         call 131
         if r0 == 0 goto +2
         r0 = *(u64 *)(r0 + 8)
         exit
         r0 = 0
         exit",
        &map,
    );
    let fault = run(&prog).expect_err("reads past the record");
    assert!(
        fault.to_string().contains("out-of-bounds"),
        "unexpected fault: {fault}"
    );
    let ring = rb(&map).ring();
    assert_eq!(ring.record_header(0), (12 | RINGBUF_DISCARD_BIT, 3));
    assert_eq!(rb(&map).consumer().consume(|_| panic!("discarded")), 0);
    assert_eq!(ring.query(RB_CONS_POS), 24);
    // A record kept past the exit is discarded too (the kernel's verifier would refuse
    // the program; here cleanup releases it).
    let leak = load(
        "r1 = map[idx:0]
         r2 = 8
         r3 = 0
         call 131
         r0 = 0
         exit",
        &map,
    );
    assert_eq!(run(&leak), Ok(0));
    assert_eq!(ring.record_header(24), (8 | RINGBUF_DISCARD_BIT, 3));
}

#[test]
fn program_outputs_queries_and_faults_on_foreign_submit() {
    let map = ringbuf(4096);
    let prog = load(
        "r1 = 0x0807060504030201 ll
         *(u64 *)(r10 - 8) = r1
         r1 = map[idx:0]
         r2 = r10
         r2 += -8
         r3 = 6
         r4 = 0
         call 130
         if r0 != 0 goto +4
         r1 = map[idx:0]
         r2 = 3
         call 134
         exit",
        &map,
    );
    assert_eq!(
        run(&prog),
        Ok(16),
        "BPF_RB_PROD_POS after one 6-byte record"
    );
    let mut got = Vec::new();
    rb(&map).consumer().consume(|r| got = r.to_vec());
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    // Invalid output flags: -EINVAL.
    let bad = load(
        "r1 = map[idx:0]
         r2 = r10
         r2 += -8
         r3 = 0
         r4 = 4
         call 130
         exit",
        &map,
    );
    assert_eq!(run(&bad), Ok((-22i64) as u64));
    // Submitting a pointer that is not a reserved record is a fault (the kernel's
    // verifier would refuse it).
    let foreign = load(
        "r1 = r10
         r1 += -8
         r2 = 0
         call 132
         r0 = 0
         exit",
        &map,
    );
    assert!(run(&foreign).is_err());
}

/// The same program in the kernel (a socket filter through `BPF_PROG_TEST_RUN`) and in
/// bpfvm: the same query answers, and the same record header in the kernel's mmap'ed ring.
#[cfg(target_os = "linux")]
#[test]
fn kernel_ring_agrees() {
    use bpfvm_kernel::{Bpf, MapCreate, MapType as KMapType, ProgLoad, ProgType, TestRun};
    use std::os::fd::{AsFd, AsRawFd};
    if !bpfvm_kernel::kernel_available_for_test("kernel_ring_agrees") {
        return;
    }
    // Outputs 5 bytes, reserves and discards 20 bytes, reserves 0 and submits, then
    // returns query(flag) for the flag in the `imm` below.
    let src = |flag: u32| {
        format!(
            "r1 = 0x0807060504030201 ll
             *(u64 *)(r10 - 8) = r1
             r1 = map[idx:0]
             r2 = r10
             r2 += -8
             r3 = 5
             r4 = 0
             call 130
             r1 = map[idx:0]
             r2 = 20
             r3 = 0
             call 131
             if r0 == 0 goto +17
             r1 = r0
             r2 = 0
             call 133
             r1 = map[idx:0]
             r2 = 0
             r3 = 0
             call 131
             if r0 == 0 goto +8
             r1 = r0
             r2 = 0
             call 132
             r1 = map[idx:0]
             r2 = {flag}
             call 134
             exit
             r0 = 99
             exit"
        )
    };
    let bpf = Bpf::new();
    for flag in 0..5u32 {
        let kmap = bpf
            .map_create(&MapCreate::new(KMapType(27), 0, 0, 4096))
            .expect("kernel ringbuf");
        let slots = assemble(&src(flag), Dialect::Llvm).expect("assembles");
        let fds = [kmap.fd()];
        let kprog = bpf
            .prog_load(
                &ProgLoad::new(ProgType::SOCKET_FILTER, &slots)
                    .with_license("GPL")
                    .with_fd_array(&fds, false),
            )
            .expect("the kernel verifier accepts the program");
        let data = [0u8; 64];
        let kernel = kprog
            .test_run(&mut TestRun {
                data_in: &data,
                ..TestRun::default()
            })
            .expect("test run")
            .retval;
        let map = ringbuf(4096);
        let ours = run(&load(&src(flag), &map)).expect("runs");
        assert_eq!(u64::from(kernel), ours, "query flag {flag}");

        // The kernel's records, read from its mapping: consumer page, then the
        // producer page and the data.
        let page = 4096usize;
        // SAFETY: a fresh read-only shared mapping of the map's producer page and data
        // (offset one page), unmapped below; nothing else aliases it mutably.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                kmap.fd().as_fd().as_raw_fd(),
                page as libc::off_t,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap the kernel ring");
        let word = |off: usize| {
            // SAFETY: `off + 4 <= page + 4096`, inside the mapping, 4-aligned.
            unsafe { std::ptr::read_volatile(p.cast::<u8>().add(off).cast::<u32>()) }
        };
        let ring = rb(&map).ring();
        for pos in [0usize, 16, 48] {
            let k = (word(page + pos), word(page + pos + 4));
            assert_eq!(ring.record_header(pos as u64), k, "header at {pos}");
        }
        // SAFETY: `p` is the mapping made above, with its length.
        unsafe { libc::munmap(p, page + 4096) };
    }
}
