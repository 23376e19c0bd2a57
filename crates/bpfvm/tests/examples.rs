//! The examples of `examples/`, run by the test suite on their committed objects, with
//! expectations computed independently in Rust from the same inputs.

#[path = "../examples/latency.rs"]
mod latency;

/// libbpf-tools' `log2l` slot of a latency in ns, as latency.c computes it.
fn slot(latency_ns: u64) -> usize {
    let us = latency_ns / 1000;
    let s = if us == 0 {
        0
    } else {
        63 - us.leading_zeros() as usize
    };
    s.min(26)
}

#[test]
fn latency_histogram_matches_the_simulated_latencies() {
    let report = latency::simulate(&latency::object_path(), 5_000, 11).expect("runs");
    let mut expected = vec![0u64; 27];
    for &l in &report.latencies {
        expected[slot(l)] += 1;
    }
    assert_eq!(report.hist, expected);
    assert_eq!(report.hist.iter().sum::<u64>(), 5_000);
    // Reproducible: the same seed gives the same histogram; another seed another one.
    let again = latency::simulate(&latency::object_path(), 5_000, 11).expect("runs");
    assert_eq!(again.hist, report.hist);
    let other = latency::simulate(&latency::object_path(), 5_000, 12).expect("runs");
    assert_ne!(other.hist, report.hist);
}
