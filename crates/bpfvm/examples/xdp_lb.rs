//! An XDP L4 load balancer in the style of Katran, in user space.
//!
//! `bpf/xdp_lb.c` parses Ethernet/IPv4/TCP|UDP, hashes the 5-tuple of traffic to the
//! virtual IP, picks a backend from the `backends` map the host fills, rewrites the MACs
//! and the destination address (checksums updated) and returns `XDP_TX`. The host sets the
//! VIP, port and backend count as `.rodata` globals before load, reads packets from a pcap
//! file, fires a hook per packet, and prints the per-backend counts.
//!
//! Run it: `cargo run -p bpfvm --example xdp_lb [traffic.pcap]` (without a file it
//! generates synthetic traffic into a temporary pcap first).

use std::path::Path;

use bpfvm::{Array, Hook, OpenObject};
use bpfvm_runtime::{Context, Packet, XdpMd};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

/// The virtual IP and port the balancer serves.
pub const VIP: [u8; 4] = [10, 0, 0, 100];
/// The service port.
pub const VPORT: u16 = 80;

/// `struct backend { __u32 ip; __u8 mac[6]; __u16 pad; }`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Backend {
    /// IPv4 address, network order.
    pub ip: [u8; 4],
    /// MAC address.
    pub mac: [u8; 6],
    /// Padding.
    pub pad: u16,
}

/// Three backends, 10.1.0.10–12.
pub fn backends() -> Vec<Backend> {
    (0..3u8)
        .map(|i| Backend {
            ip: [10, 1, 0, 10 + i],
            mac: [0x02, 0xbe, 0, 0, 0, i],
            pad: 0,
        })
        .collect()
}

/// What balancing a capture did.
#[derive(Debug)]
pub struct Report {
    /// Per packet: the XDP action and the packet afterwards.
    pub decisions: Vec<(u32, Vec<u8>)>,
    /// `backend_packets[i]`.
    pub per_backend: Vec<u64>,
    /// `stats`: passed, dropped, balanced.
    pub stats: Vec<u64>,
}

/// Reads every packet of a pcap file.
pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut reader = PcapReader::new(std::fs::File::open(path)?)?;
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        out.push(p?.data.into_owned());
    }
    Ok(out)
}

/// Runs `xdp_lb.o` over `packets`.
pub fn balance(object: &Path, packets: &[Vec<u8>]) -> Result<Report, bpfvm::Error> {
    let backends = backends();
    let mut open = OpenObject::open_file(object)?;
    open.set_global_value("vip", &VIP)?;
    open.set_global_value("vport", &VPORT.to_be())?;
    open.set_global_value("num_backends", &(backends.len() as u32))?;
    let object = open.load()?;
    let table: Array<Backend> = Array::new(object.map("backends")?)?;
    for (i, b) in backends.iter().enumerate() {
        table.set(i as u32, b)?;
    }
    let rx = Hook::new("eth0 rx");
    rx.attach(&object.program("xdp_lb")?);
    let mut decisions = Vec::with_capacity(packets.len());
    for data in packets {
        let mut packet = Packet::xdp(data);
        let actions = rx.fire(&mut Context::Xdp {
            md: XdpMd {
                ingress_ifindex: 1,
                rx_queue_index: 0,
            },
            packet: &mut packet,
        })?;
        decisions.push((
            actions.first().copied().unwrap_or(0) as u32,
            packet.data().to_vec(),
        ));
    }
    let per_backend: Array<u64> = Array::new(object.map("backend_packets")?)?;
    let stats: Array<u64> = Array::new(object.map("stats")?)?;
    Ok(Report {
        decisions,
        per_backend: per_backend.values()?,
        stats: stats.values()?[..3].to_vec(),
    })
}

/// One's complement sum of big-endian 16-bit words, folded.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        acc += u32::from(pair[0]) << 8 | pair.get(1).copied().map_or(0, u32::from);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// An Ethernet/IPv4/TCP-or-UDP packet with valid checksums.
pub fn build_packet(saddr: [u8; 4], daddr: [u8; 4], sport: u16, dport: u16, udp: bool) -> Vec<u8> {
    let proto = if udp { 17u8 } else { 6 };
    let l4_len: usize = if udp { 8 + 4 } else { 20 };
    let mut p = vec![0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xcc, 0x08, 0x00];
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&saddr);
    p.extend_from_slice(&daddr);
    let c = !(ones_sum(0, &p[14..34]) as u16);
    p[24..26].copy_from_slice(&c.to_be_bytes());
    let l4 = p.len();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    if udp {
        p.extend_from_slice(&(l4_len as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(b"ping");
    } else {
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    }
    let mut pseudo = saddr.to_vec();
    pseudo.extend_from_slice(&daddr);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4_len as u16).to_be_bytes());
    let mut c = !(ones_sum(ones_sum(0, &pseudo), &p[l4..]) as u16);
    if udp && c == 0 {
        c = 0xffff;
    }
    let at = l4 + if udp { 6 } else { 16 };
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    p
}

/// Synthetic traffic: `n` flows to the VIP (TCP and UDP from many clients), some to
/// another address, an ARP request, and truncated frames; written as a pcap.
pub fn write_traffic(path: &Path, n: u32) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut packets = Vec::new();
    for i in 0..n {
        let saddr = [192, 168, (i / 200) as u8, (i % 200) as u8 + 1];
        let sport = 1024 + (i * 7919 % 60000) as u16;
        packets.push(build_packet(saddr, VIP, sport, VPORT, i % 3 == 0));
        if i % 10 == 0 {
            packets.push(build_packet(saddr, [10, 0, 0, 7], sport, VPORT, false));
        }
        if i % 25 == 0 {
            let mut t = build_packet(saddr, VIP, sport, VPORT, false);
            t.truncate(40); // the TCP header is cut short
            packets.push(t);
        }
    }
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xcc, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    packets.push(arp);
    let mut writer = PcapWriter::new(std::fs::File::create(path)?)?;
    for (i, p) in packets.iter().enumerate() {
        let ts = std::time::Duration::from_micros(i as u64 * 10);
        writer.write_packet(&PcapPacket::new(ts, p.len() as u32, p))?;
    }
    Ok(packets)
}

/// The object built by `bpf/build.sh`.
pub fn object_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bpf/xdp_lb.o")
}

#[allow(dead_code)] // the tests include this file as a module
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pcap = match std::env::args().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("bpfvm-xdp-lb-traffic.pcap");
            write_traffic(&p, 1000)?;
            println!("generated {}", p.display());
            p
        }
    };
    let packets = read_pcap(&pcap)?;
    let report = balance(&object_path(), &packets)?;
    println!("{} packets from {}", packets.len(), pcap.display());
    for (i, (b, n)) in backends().iter().zip(&report.per_backend).enumerate() {
        let ip = b.ip.map(|o| o.to_string()).join(".");
        println!("backend {i} ({ip}): {n} packets");
    }
    println!(
        "passed {}, dropped {}, balanced {}",
        report.stats[0], report.stats[1], report.stats[2]
    );
    Ok(())
}
