//! What a run is given in `r1`: the test ABI's memory, an XDP or `__sk_buff` context over
//! a packet, or a host-defined struct.

use bpfvm_abi::{ContextLayout, SOCKET_FILTER_CONTEXT, TC_CONTEXT, XDP_CONTEXT};

use crate::helpers::{XDP_PACKET_HEADROOM, XDP_SHARED_INFO};
use crate::{FaultKind, PacketBounds, RegionKind, Regions};

/// A packet in a buffer with headroom and tailroom, as the kernel's `xdp_buff`: programs
/// see `meta..end`, and the adjust helpers move the bounds inside the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    buf: Vec<u8>,
    bounds: PacketBounds,
}

impl Packet {
    /// `data` with `headroom` bytes before it and `tailroom` after (zeroed), no metadata.
    pub fn new(data: &[u8], headroom: usize, tailroom: usize) -> Packet {
        let mut buf = vec![0u8; headroom + data.len() + tailroom];
        buf[headroom..headroom + data.len()].copy_from_slice(data);
        let capacity = buf.len();
        Packet {
            buf,
            bounds: PacketBounds {
                meta: headroom,
                data: headroom,
                end: headroom + data.len(),
                capacity,
            },
        }
    }

    /// An XDP frame as `BPF_PROG_TEST_RUN` builds it: `XDP_PACKET_HEADROOM` (256) bytes of
    /// headroom, and the tail room of a 4 KiB page minus `skb_shared_info` (at least that
    /// room, for packets past a page).
    pub fn xdp(data: &[u8]) -> Packet {
        let used = XDP_PACKET_HEADROOM + data.len() + XDP_SHARED_INFO;
        let tailroom = used.next_multiple_of(4096) - XDP_PACKET_HEADROOM - data.len();
        Packet::new(data, XDP_PACKET_HEADROOM, tailroom)
    }

    /// The packet data.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.bounds.data..self.bounds.end]
    }

    /// The packet data, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.bounds.data..self.bounds.end]
    }

    /// The metadata in front of the data (`bpf_xdp_adjust_meta`).
    pub fn meta(&self) -> &[u8] {
        &self.buf[self.bounds.meta..self.bounds.data]
    }

    /// Where metadata and data are in the buffer.
    pub fn bounds(&self) -> PacketBounds {
        self.bounds
    }

    /// The buffer and bounds, for engines.
    pub fn parts_mut(&mut self) -> (&mut [u8], &mut PacketBounds) {
        (&mut self.buf, &mut self.bounds)
    }
}

/// `struct xdp_md`'s host-set fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpMd {
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
}

impl XdpMd {
    /// The 24 bytes of `struct xdp_md` (the pointer fields are rewritten on load).
    pub fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[12..16].copy_from_slice(&self.ingress_ifindex.to_ne_bytes());
        b[16..20].copy_from_slice(&self.rx_queue_index.to_ne_bytes());
        b
    }
}

/// The bytes of a `struct __sk_buff` (192) with accessors for the fields a host sets.
/// `len`, `data`, `data_end` and `data_meta` are filled from the packet by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkBuff {
    bytes: [u8; 192],
}

impl Default for SkBuff {
    fn default() -> Self {
        SkBuff { bytes: [0; 192] }
    }
}

impl SkBuff {
    /// A `__sk_buff` with every field 0.
    pub fn new() -> SkBuff {
        SkBuff::default()
    }

    /// The `u32` field at `offset` of the UAPI struct (`len` 0, `mark` 8, `protocol` 16 —
    /// in network byte order, as the kernel stores it — `priority` 32, `ifindex` 40,
    /// `cb[i]` 48 + 4i, `hash` 68, `tc_classid` 72…).
    pub fn field(&self, offset: usize) -> u32 {
        let b = &self.bytes[offset..offset + 4];
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Sets the `u32` field at `offset`.
    pub fn set_field(&mut self, offset: usize, value: u32) -> &mut SkBuff {
        self.bytes[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    /// The raw bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8; 192] {
        &mut self.bytes
    }
}

/// What `r1` points to in a run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Context<'a> {
    /// The test ABI: `r1` = the buffer, `r2` = its length; any in-bounds access.
    Memory(&'a mut [u8]),
    /// `BPF_PROG_TYPE_XDP`: `r1` = `struct xdp_md`, whose `data`/`data_end`/`data_meta`
    /// read as the packet's addresses.
    Xdp {
        /// The host-set fields.
        md: XdpMd,
        /// The packet; its bounds after the run are the program's adjustments.
        packet: &'a mut Packet,
    },
    /// Socket filter or tc (`sched_cls`/`sched_act`): `r1` = `struct __sk_buff`.
    SkBuff {
        /// The struct; writable fields (`mark`, `priority`, `cb`…) keep what the program
        /// wrote.
        skb: &'a mut SkBuff,
        /// The packet.
        packet: &'a mut Packet,
    },
    /// A host-defined struct (raw tracepoint arguments, a kprobe's registers, any event):
    /// `r1` = its bytes, read-only unless `writable`.
    Struct {
        /// The struct's bytes.
        bytes: &'a mut [u8],
        /// Whether the program may write it.
        writable: bool,
    },
}

impl Context<'_> {
    /// The field rules of this context for `program_type` (XDP and `__sk_buff`).
    pub fn layout(&self, program_type: crate::ProgramType) -> Option<&'static ContextLayout> {
        match self {
            Context::Xdp { .. } => Some(&XDP_CONTEXT),
            Context::SkBuff { .. } => Some(
                if program_type == crate::ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter)
                {
                    &SOCKET_FILTER_CONTEXT
                } else {
                    &TC_CONTEXT
                },
            ),
            _ => None,
        }
    }

    /// A short name for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Context::Memory(_) => "memory",
            Context::Xdp { .. } => "xdp_md",
            Context::SkBuff { .. } => "__sk_buff",
            Context::Struct { .. } => "struct",
        }
    }
}

/// What an engine gets from putting a [`Context`] into a run's [`Regions`]
/// ([`Context::install`]).
#[derive(Debug)]
pub struct InstalledContext<'a> {
    /// The program's `r1`: the address of the memory, the context struct or the host struct.
    pub r1: u64,
    /// The program's `r2`: the memory's length under the test ABI, else 0.
    pub r2: u64,
    /// Address of the packet of legacy packet loads (`ldabs`/`ldind`): the memory, or the
    /// packet data.
    pub packet_addr: u64,
    /// Its length.
    pub packet_len: u64,
    /// Where the packet's bounds go back after the run (XDP and `__sk_buff` contexts), so
    /// that head/tail adjustments reach the host's [`Packet`].
    pub bounds: Option<&'a mut PacketBounds>,
}

impl<'a> Context<'_> {
    /// Puts this context into `regions` for a run of a program of `program_type`: the
    /// memory or host struct as a region, or the packet and the context struct with its
    /// field rules (`ctx_bytes` holds an `xdp_md` while the run lasts). Every engine sets a
    /// run up through this, so all see the same memory.
    #[inline]
    pub fn install(
        &'a mut self,
        program_type: crate::ProgramType,
        regions: &mut Regions<'a>,
        ctx_bytes: &'a mut [u8; 24],
    ) -> Result<InstalledContext<'a>, FaultKind> {
        // Plain memory, the most common context, inline (every run installs one).
        if let Context::Memory(mem) = self {
            return install_memory(mem, regions);
        }
        self.install_other(program_type, regions, ctx_bytes)
    }

    /// [`Context::install`] of the contexts other than plain memory.
    fn install_other(
        &'a mut self,
        program_type: crate::ProgramType,
        regions: &mut Regions<'a>,
        ctx_bytes: &'a mut [u8; 24],
    ) -> Result<InstalledContext<'a>, FaultKind> {
        let layout = self.layout(program_type);
        let no_layout = FaultKind::HelperFailed {
            id: 0,
            reason: "this program type has no context of that kind",
        };
        Ok(match self {
            Context::Memory(mem) => install_memory(mem, regions)?,
            Context::Xdp { md, packet } => {
                *ctx_bytes = md.to_bytes();
                let (buf, bounds) = packet.parts_mut();
                let b = *bounds;
                regions.set_packet(buf, b)?;
                let r1 = regions.set_context(layout.ok_or(no_layout)?, ctx_bytes)?;
                InstalledContext {
                    r1,
                    r2: 0,
                    packet_addr: regions.packet_addr(b.data),
                    packet_len: (b.end - b.data) as u64,
                    bounds: Some(bounds),
                }
            }
            Context::SkBuff { skb, packet } => {
                let (buf, bounds) = packet.parts_mut();
                let b = *bounds;
                skb.set_field(0, (b.end - b.data) as u32);
                regions.set_packet(buf, b)?;
                let r1 = regions.set_context(layout.ok_or(no_layout)?, skb.bytes_mut())?;
                InstalledContext {
                    r1,
                    r2: 0,
                    packet_addr: regions.packet_addr(b.data),
                    packet_len: (b.end - b.data) as u64,
                    bounds: Some(bounds),
                }
            }
            Context::Struct { bytes, writable } => {
                let r1 = addr_of(bytes);
                if *writable {
                    regions.add_mut(RegionKind::Host, bytes)?;
                } else {
                    regions.add_read_only(RegionKind::Host, bytes)?;
                }
                InstalledContext {
                    r1,
                    r2: 0,
                    packet_addr: 0,
                    packet_len: 0,
                    bounds: None,
                }
            }
        })
    }
}

/// Plain memory as the context: one writable region, its start and length in `r1` and
/// `r2`, and the packet of legacy packet loads.
#[inline]
fn install_memory<'a>(
    mem: &'a mut [u8],
    regions: &mut Regions<'a>,
) -> Result<InstalledContext<'a>, FaultKind> {
    let (addr, len) = (addr_of(mem), mem.len() as u64);
    regions.add_mut(RegionKind::Memory, mem)?;
    Ok(InstalledContext {
        r1: addr,
        r2: len,
        packet_addr: addr,
        packet_len: len,
        bounds: None,
    })
}

/// The address a slice of context bytes passes in a register: 0 for an empty one.
fn addr_of(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        0
    } else {
        bytes.as_ptr().addr() as u64
    }
}
