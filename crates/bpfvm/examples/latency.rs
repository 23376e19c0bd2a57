//! A latency tracer in the style of bcc's `biolatency`, over events the host defines.
//!
//! The host simulates operations (think: block I/O requests). When one starts it fires
//! the hook `op_start`, when it completes `op_end`, each with a `struct op_event`. The
//! programs of `bpf/latency.c` keep the start timestamp in a hash map and count the
//! microseconds in between in a log2 histogram (an array map), which the host prints as
//! bcc does. The clock is injected (a `FixedEnvironment` the host advances), so the run is
//! reproducible: the same seed gives the same histogram.
//!
//! Run it: `cargo run -p bpfvm --example latency [operations] [seed]`.

use std::sync::Arc;

use bpfvm::{Array, Hook, Object};
use bpfvm_runtime::{Context, FixedEnvironment, Task};

/// `struct op_event` of latency.c.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct OpEvent {
    id: u64,
    kind: u32,
    pad: u32,
}

/// What a simulation produced: the histogram the programs filled, and each operation's
/// latency in nanoseconds as the host simulated it.
#[derive(Debug)]
pub struct Report {
    /// `hist[slot]`: operations whose latency in µs has floor(log2) = slot (slot 0 also
    /// holds 0 µs; the last slot everything beyond).
    pub hist: Vec<u64>,
    /// Simulated latencies, ns.
    pub latencies: Vec<u64>,
}

/// A small deterministic generator (xorshift64*), so the example needs no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Simulates `ops` operations, up to 64 in flight, with log-uniform latencies between
/// 1 µs and ~67 ms.
pub fn simulate(object_path: &str, ops: usize, seed: u64) -> Result<Report, bpfvm::Error> {
    let object = Object::load_file(object_path)?;
    let clock = Arc::new(FixedEnvironment::new(
        1_000_000_000,
        0,
        seed,
        Task::with_comm(1, 1, 0, 0, "latency"),
    ));
    let start = Hook::new("op_start").with_env(clock.clone());
    let end = Hook::new("op_end").with_env(clock.clone());
    start.attach(&object.program("op_start")?);
    end.attach(&object.program("op_end")?);

    // Events ordered by time: (time, is_end, id).
    let mut rng = seed | 1;
    let mut events = Vec::with_capacity(ops * 2);
    let mut latencies = Vec::with_capacity(ops);
    let mut now = 1_000_000_000u64;
    for id in 0..ops as u64 {
        now += next(&mut rng) % 20_000; // arrivals every 0–20 µs
        let exp = next(&mut rng) % 16; // 2^0 .. 2^15 µs scale
        let latency_ns = (1000u64 << exp) + next(&mut rng) % (1000u64 << exp);
        events.push((now, false, id));
        events.push((now + latency_ns, true, id));
        latencies.push(latency_ns);
    }
    events.sort_unstable();
    for (t, is_end, id) in events {
        clock.set_time(t);
        let mut ev = OpEvent {
            id,
            kind: 0,
            pad: 0,
        };
        let bytes = bytemuck::bytes_of_mut(&mut ev);
        let mut ctx = Context::Struct {
            bytes,
            writable: false,
        };
        if is_end {
            end.fire(&mut ctx)?;
        } else {
            start.fire(&mut ctx)?;
        }
    }
    let hist: Array<u64> = Array::new(object.map("hist")?)?;
    Ok(Report {
        hist: hist.values()?,
        latencies,
    })
}

/// The object built by `bpf/build.sh`.
pub fn object_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bpf/latency.o").to_string()
}

#[allow(dead_code)] // the tests include this file as a module and call `simulate`
fn main() {
    let mut args = std::env::args().skip(1);
    let ops = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    match simulate(&object_path(), ops, seed) {
        Ok(report) => {
            println!("{ops} operations (seed {seed})\n");
            // libbpf-tools' slots (slot i = [2^i, 2^(i+1)) µs) are bcc's print_log2_hist
            // buckets shifted by one (bucket i+1 = [2^i, 2^(i+1)-1]).
            let mut buckets = vec![0u64];
            buckets.extend(&report.hist);
            print!("{}", bpfvm::hist::log2_hist(&buckets, "usecs", true));
        }
        Err(e) => {
            eprintln!("latency: {e}");
            std::process::exit(1);
        }
    }
}
