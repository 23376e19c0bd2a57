// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_lb: an XDP layer-4 load balancer in the style of Katran.
 *
 * Packets for the virtual service (vip, vport; TCP or UDP) are spread over
 * num_backends backends by a hash of their 5-tuple: the destination MAC and
 * IPv4 address are rewritten to the chosen backend's, the IPv4 header and
 * TCP/UDP checksums are fixed up, and the packet is sent back out (XDP_TX).
 * Everything else is passed to the stack; packets too short for their own
 * headers are dropped. The contract (maps, order of the checks, the hash) is
 * in README.md; the host example and the kernel test reproduce it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 16

enum stat_index {
	STAT_PASSED = 0,
	STAT_DROPPED = 1,
	STAT_BALANCED = 2,
};

/* Configuration, set by the host before loading (frozen afterwards). */
const volatile __u32 vip = 0;          /* network byte order */
const volatile __u16 vport = 0;        /* network byte order */
const volatile __u32 num_backends = 0; /* backends[0..num_backends) are used */

struct backend {
	__u32 ip; /* network byte order */
	__u8 mac[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(max_entries, MAX_BACKENDS);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, MAX_BACKENDS);
} backend_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} stats SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &index);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline int pass(void)
{
	count(STAT_PASSED);
	return XDP_PASS;
}

static __always_inline int drop(void)
{
	count(STAT_DROPPED);
	return XDP_DROP;
}

/* FNV-1a (32 bits) of one byte. */
static __always_inline __u32 fnv1a_byte(__u32 h, __u8 b)
{
	return (h ^ b) * 16777619u; /* FNV prime 0x01000193 */
}

/*
 * FNV-1a over the 13 bytes saddr, daddr, sport, dport, protocol, each taken
 * as the bytes appear in the packet (addresses and ports in network order).
 */
static __always_inline __u32 flow_hash(const __u8 saddr[4], const __u8 daddr[4],
				       const __u8 sport[2], const __u8 dport[2],
				       __u8 protocol)
{
	__u32 h = 2166136261u; /* FNV offset basis 0x811c9dc5 */
	int i;

#pragma unroll
	for (i = 0; i < 4; i++)
		h = fnv1a_byte(h, saddr[i]);
#pragma unroll
	for (i = 0; i < 4; i++)
		h = fnv1a_byte(h, daddr[i]);
	h = fnv1a_byte(h, sport[0]);
	h = fnv1a_byte(h, sport[1]);
	h = fnv1a_byte(h, dport[0]);
	h = fnv1a_byte(h, dport[1]);
	return fnv1a_byte(h, protocol);
}

/*
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a checksum covering a 32-bit
 * field that changes from old to new. All values are as stored in the packet;
 * the one's complement sum does not depend on the byte order used to read
 * them, as long as it is the same for all.
 */
static __always_inline __u16 csum_replace4(__u16 check, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(old & 0xffff);
	sum += (__u16)~(old >> 16);
	sum += new & 0xffff;
	sum += new >> 16;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct backend *be;
	__u8 *ports; /* sport, dport: the first 4 bytes of TCP and UDP headers */
	__u32 ihl_bytes, hash, idx, old_daddr;
	__u64 *bp;

	if ((void *)(eth + 1) > data_end)
		return drop();
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return pass();

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return drop();
	ihl_bytes = iph->ihl * 4;
	if (ihl_bytes < sizeof(*iph))
		return drop();
	if ((void *)iph + ihl_bytes > data_end)
		return drop();
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return pass();
	if (iph->daddr != vip)
		return pass();

	ports = (void *)iph + ihl_bytes;
	if (iph->protocol == IPPROTO_TCP) {
		if ((void *)ports + sizeof(struct tcphdr) > data_end)
			return drop();
	} else {
		if ((void *)ports + sizeof(struct udphdr) > data_end)
			return drop();
	}
	if (*(__u16 *)(ports + 2) != vport)
		return pass();

	if (num_backends == 0)
		return drop();
	hash = flow_hash((__u8 *)&iph->saddr, (__u8 *)&iph->daddr, ports,
			 ports + 2, iph->protocol);
	idx = hash % num_backends;
	be = bpf_map_lookup_elem(&backends, &idx);
	if (!be) /* num_backends > MAX_BACKENDS */
		return drop();

	/* L2: to the backend, from whoever the packet was addressed to. */
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);

	/* L3: new destination, checksum updated incrementally. */
	old_daddr = iph->daddr;
	iph->daddr = be->ip;
	iph->check = csum_replace4(iph->check, old_daddr, be->ip);

	/* L4: the pseudo-header's destination changed too. */
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ports;

		if ((void *)(tcp + 1) > data_end) /* re-proved for the verifier */
			return drop();
		tcp->check = csum_replace4(tcp->check, old_daddr, be->ip);
	} else {
		struct udphdr *udp = (void *)ports;

		if ((void *)(udp + 1) > data_end)
			return drop();
		/* 0: no checksum, and it stays so; a computed 0 is sent as 0xffff. */
		if (udp->check) {
			udp->check = csum_replace4(udp->check, old_daddr, be->ip);
			if (!udp->check)
				udp->check = 0xffff;
		}
	}

	count(STAT_BALANCED);
	bp = bpf_map_lookup_elem(&backend_packets, &idx);
	if (bp)
		__sync_fetch_and_add(bp, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
