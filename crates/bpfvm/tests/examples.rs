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

#[path = "../examples/xdp_lb.rs"]
mod xdp_lb;

/// The README's hash (FNV-1a over saddr, daddr, sport, dport, protocol as in the packet).
fn flow_hash(p: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in p[26..34].iter().chain(&p[34..38]).chain(&[p[23]]) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

#[test]
fn xdp_lb_balances_a_pcap_by_the_documented_hash() {
    let dir = std::env::temp_dir().join(format!("bpfvm-xdp-lb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("traffic.pcap");
    let written = xdp_lb::write_traffic(&pcap, 300).expect("pcap written");
    let packets = xdp_lb::read_pcap(&pcap).expect("pcap read");
    assert_eq!(packets, written);
    let report = xdp_lb::balance(&xdp_lb::object_path(), &packets).expect("runs");
    let backends = xdp_lb::backends();
    let mut per_backend = vec![0u64; 16];
    let mut stats = [0u64; 3];
    for (p, (action, out)) in packets.iter().zip(&report.decisions) {
        let to_vip = p.len() >= 38 && p[12..14] == [8, 0] && p[30..34] == xdp_lb::VIP;
        let l4_header = if to_vip && p[23] == 17 { 8 } else { 20 };
        if to_vip && p.len() >= 34 + l4_header {
            let i = (flow_hash(p) % 3) as usize;
            assert_eq!(*action, 3, "XDP_TX");
            assert_eq!(out[30..34], backends[i].ip, "daddr = backend {i}");
            assert_eq!(out[0..6], backends[i].mac);
            assert_eq!(out[6..12], p[0..6], "source MAC = the old destination");
            per_backend[i] += 1;
            stats[2] += 1;
        } else if to_vip {
            assert_eq!(*action, 1, "truncated: XDP_DROP");
            stats[1] += 1;
        } else {
            assert_eq!((*action, out), (2, p), "XDP_PASS, unchanged");
            stats[0] += 1;
        }
    }
    assert_eq!(report.per_backend, per_backend);
    assert_eq!(report.stats, stats);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(target_os = "linux")]
#[test]
fn xdp_lb_decides_as_the_kernel_on_the_same_packets() {
    use bpfvm_kernel::{Bpf, KernelLoadOptions, TestRun, kernel_available_for_test};
    if !kernel_available_for_test("xdp_lb_decides_as_the_kernel_on_the_same_packets") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bpfvm-xdp-lb-k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let packets = xdp_lb::write_traffic(&dir.join("t.pcap"), 200).expect("pcap");
    let report = xdp_lb::balance(&xdp_lb::object_path(), &packets).expect("runs");
    // The same object and configuration in the kernel.
    let mut open = bpfvm::OpenObject::open_file(xdp_lb::object_path()).expect("opens");
    open.set_global_value("vip", &xdp_lb::VIP).expect("vip");
    open.set_global_value("vport", &xdp_lb::VPORT.to_be())
        .expect("vport");
    open.set_global_value("num_backends", &3u32)
        .expect("num_backends");
    let spec = open.spec();
    let k = Bpf::new()
        .load_object(spec, None, &KernelLoadOptions::default())
        .expect("the kernel loads xdp_lb.o");
    let map = k.map(spec, "backends").expect("backends");
    for (i, b) in xdp_lb::backends().iter().enumerate() {
        map.update(&(i as u32).to_ne_bytes(), bytemuck::bytes_of(b), 0)
            .expect("update");
    }
    let prog = k.program("xdp_lb").expect("program");
    for (p, (action, out)) in packets.iter().zip(&report.decisions) {
        let mut kout = vec![0; p.len() + 256];
        let r = prog
            .test_run(&mut TestRun {
                data_in: p,
                data_out: Some(&mut kout),
                repeat: 1,
                ..TestRun::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        kout.truncate(r.data_size_out as usize);
        assert_eq!((r.retval, &kout), (*action, out), "packet {p:02x?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
